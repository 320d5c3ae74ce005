/* Listing and ordering the frame files of a video folder. */
#include "predict/video_frames.h"
#include "core/s2.h"
#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* By frame number, then by name (deterministic where Python's order is listdir's). */
static int cmp_frame_file(const void *a, const void *b) {
    const s2_frame_file *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Python int() of a file stem: blanks around, optional sign, digits with single '_'
 * separators. False when the stem is not an integer. */
static bool parse_frame_number(const char *s, size_t n, long long *out) {
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    while (n > i && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    long long v = 0;
    int digits = 0;
    for (; i < n; i++) {
        if (s[i] == '_' && digits > 0 && i + 1 < n && s[i + 1] != '_') continue;
        if (s[i] < '0' || s[i] > '9' || v > (LLONG_MAX - 9) / 10) return false;
        v = v * 10 + (s[i] - '0');
        digits++;
    }
    *out = neg ? -v : v;
    return digits > 0;
}

/* True for the extensions load_video_frames accepts (os.path.splitext semantics). */
static bool jpeg_name(const char *name, size_t *stem_len) {
    const char *dot = strrchr(name, '.');
    if (!dot) return false;
    const char *p = name;
    while (p < dot && *p == '.') p++; // leading dots belong to the stem, not the extension
    if (p == dot) return false;
    *stem_len = (size_t)(dot - name);
    return !strcmp(dot, ".jpg") || !strcmp(dot, ".jpeg") || !strcmp(dot, ".JPG") || !strcmp(dot, ".JPEG");
}

// ref: sam2/utils/misc.py load_video_frames (os.listdir, extension filter, sort by int)
int s2_list_frame_files(const char *dir, s2_frame_file **out, int *n_out) {
    DIR *d = opendir(dir);
    if (!d) return s2_err(SAM2C_ERR_IO, "%s: cannot open the frames folder", dir);
    s2_frame_file *list = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        size_t sl;
        if (!jpeg_name(e->d_name, &sl)) continue;
        long long key;
        if (!parse_frame_number(e->d_name, sl, &key)) {
            rc = s2_err(SAM2C_ERR_FORMAT, "%s/%s: frame files must be named by their frame number", dir, e->d_name);
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            s2_frame_file *nl = s2_realloc(list, sizeof *nl * (size_t)cap);
            if (!nl) { rc = SAM2C_ERR_NOMEM; break; }
            list = nl;
        }
        list[n].key = key;
        list[n].name = s2_strdup(e->d_name);
        if (!list[n++].name) rc = SAM2C_ERR_NOMEM;
    }
    closedir(d);
    if (rc == 0 && n == 0) rc = s2_err(SAM2C_ERR_FORMAT, "%s: no images found", dir);
    if (rc < 0) {
        for (int i = 0; i < n; i++) free(list[i].name);
        free(list);
        return rc;
    }
    qsort(list, (size_t)n, sizeof *list, cmp_frame_file);
    *out = list;
    *n_out = n;
    return 0;
}

void s2_frame_files_free(s2_frame_file *list, int n) {
    for (int i = 0; list && i < n; i++) free(list[i].name);
    free(list);
}
