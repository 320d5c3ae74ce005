/* Loading a fine-tuning folder: COCO annotations (RLE / polygons) or per-image mask
 * folders. Letters: w x h image pixels, K objects of an image. */
#include "train/data.h"
#include "core/s2.h"
#include "io/json.h"
#include "io/rle.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* True for an existing regular file. */
static bool is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Image file extensions the decoder reads. */
static bool is_image_name(const char *n) {
    const char *e = strrchr(n, '.');
    return e && (!strcasecmp(e, ".jpg") || !strcasecmp(e, ".jpeg") || !strcasecmp(e, ".png"));
}

/* Appends one image entry (path copied, masks taken over). */
static int add_image(s2_dataset *d, const char *path, int w, int h, int K, uint8_t *masks) {
    s2_ds_image *im = s2_realloc(d->im, sizeof *im * (size_t)(d->n + 1));
    if (!im) return SAM2C_ERR_NOMEM;
    d->im = im;
    char *p = s2_strdup(path);
    if (!p) return SAM2C_ERR_NOMEM;
    d->im[d->n++] = (s2_ds_image){.path = p, .w = w, .h = h, .n_obj = K, .masks = masks};
    return SAM2C_OK;
}

/* ======================= COCO annotations.json ======================= */

/* ORs one annotation's segmentation into mask (h x w). */
static int coco_segmentation(const s2_json *seg, int h, int w, uint8_t *mask, const char *name) {
    s2_rle r = {0};
    uint8_t *tmp = s2_malloc((size_t)h * w);
    if (!tmp) return SAM2C_ERR_NOMEM;
    int rc = SAM2C_OK;
    if (seg && seg->type == S2_JOBJ) { // RLE {"size": [h, w], "counts": str | [int]}
        const s2_json *cnt = s2_json_get(seg, "counts"), *sz = s2_json_get(seg, "size");
        int sh = sz && sz->n == 2 ? (int)sz->items[0].num : -1, sw = sz && sz->n == 2 ? (int)sz->items[1].num : -1;
        if (sh != h || sw != w)
            rc = s2_err(SAM2C_ERR_FORMAT, "%s: RLE size [%d, %d] differs from the image's [%d, %d]", name, sh, sw, h, w);
        else if (cnt && cnt->type == S2_JSTR)
            rc = s2_rle_from_string(cnt->str, h, w, &r);
        else if (cnt && cnt->type == S2_JARR) {
            int64_t *c = s2_malloc(sizeof(int64_t) * (size_t)(cnt->n + 1));
            if (!c) rc = SAM2C_ERR_NOMEM;
            for (int i = 0; c && i < cnt->n; i++) c[i] = (int64_t)cnt->items[i].num;
            if (c) rc = s2_rle_from_counts(c, cnt->n, h, w, &r);
            free(c);
        } else rc = s2_err(SAM2C_ERR_FORMAT, "%s: RLE without counts", name);
        if (rc == SAM2C_OK) rc = s2_rle_decode(&r, tmp);
        for (int64_t i = 0; rc == SAM2C_OK && i < (int64_t)h * w; i++) mask[i] |= tmp[i];
        s2_rle_free(&r);
    } else if (seg && seg->type == S2_JARR) { // polygons [[x0, y0, x1, y1, ...], ...]
        for (int p = 0; rc == SAM2C_OK && p < seg->n; p++) {
            const s2_json *poly = &seg->items[p];
            if (poly->type != S2_JARR || poly->n < 6 || poly->n % 2) {
                rc = s2_err(SAM2C_ERR_FORMAT, "%s: polygon %d is not a list of >= 3 points", name, p);
                break;
            }
            double *xy = s2_malloc(sizeof(double) * (size_t)poly->n);
            if (!xy) { rc = SAM2C_ERR_NOMEM; break; }
            for (int i = 0; i < poly->n; i++) xy[i] = poly->items[i].num;
            rc = s2_rle_from_polygon(xy, poly->n / 2, h, w, &r);
            free(xy);
            if (rc == SAM2C_OK) rc = s2_rle_decode(&r, tmp);
            for (int64_t i = 0; rc == SAM2C_OK && i < (int64_t)h * w; i++) mask[i] |= tmp[i];
            s2_rle_free(&r);
        }
    } else rc = s2_err(SAM2C_ERR_FORMAT, "%s: annotation without segmentation", name);
    free(tmp);
    return rc;
}

/* The image path of a COCO file_name: DIR/name, else DIR/images/name. */
static void coco_path(const char *dir, const char *file, char *out, size_t n) {
    snprintf(out, n, "%s/%s", dir, file);
    if (!is_file(out)) snprintf(out, n, "%s/images/%s", dir, file);
}

/* Builds one image's K masks from the annotations pointing at image id. */
static int coco_image(s2_dataset *d, const char *dir, const s2_json *img, const s2_json *anns,
                      const char *jpath) {
    int64_t id = -1, w = 0, h = 0;
    const char *file = s2_json_str(img, "file_name");
    if (!file || !s2_json_int(img, "id", &id) || !s2_json_int(img, "width", &w) ||
        !s2_json_int(img, "height", &h) || w < 1 || h < 1 || w * h > 50000000)
        return s2_err(SAM2C_ERR_FORMAT, "%s: image entry without file_name / id / valid size", jpath);
    int K = 0;
    for (int i = 0; anns && i < anns->n; i++) {
        int64_t iid;
        K += s2_json_int(&anns->items[i], "image_id", &iid) && iid == id;
    }
    if (K == 0) {
        d->n_skipped++;
        return SAM2C_OK;
    }
    uint8_t *masks = s2_calloc((size_t)K, (size_t)(w * h));
    if (!masks) return SAM2C_ERR_NOMEM;
    int k = 0, rc = SAM2C_OK;
    for (int i = 0; rc == SAM2C_OK && i < anns->n; i++) {
        int64_t iid;
        if (!s2_json_int(&anns->items[i], "image_id", &iid) || iid != id) continue;
        rc = coco_segmentation(s2_json_get(&anns->items[i], "segmentation"), (int)h, (int)w,
                               masks + (int64_t)k++ * w * h, jpath);
    }
    char path[4096];
    coco_path(dir, file, path, sizeof path);
    if (rc == SAM2C_OK) rc = add_image(d, path, (int)w, (int)h, K, masks);
    if (rc < 0) free(masks);
    return rc;
}

// COCO instances format (annotations.json)
static int load_coco(const char *dir, const char *jpath, s2_dataset *d) {
    s2_json *j = NULL;
    S2_CHECK(s2_json_parse_file(jpath, NULL, &j));
    const s2_json *imgs = s2_json_get(j, "images"), *anns = s2_json_get(j, "annotations");
    int rc = SAM2C_OK;
    if (!imgs || imgs->type != S2_JARR || (anns && anns->type != S2_JARR))
        rc = s2_err(SAM2C_ERR_FORMAT, "%s: no \"images\" list (COCO format expected)", jpath);
    for (int i = 0; rc == SAM2C_OK && i < imgs->n; i++) rc = coco_image(d, dir, &imgs->items[i], anns, jpath);
    s2_json_free(j);
    snprintf(d->source, sizeof d->source, "annotations.json");
    return rc;
}

/* ======================= masks/<stem>/<k>.png ======================= */

/* Sorted names of the entries of dir that pass keep (caller frees each and the list). */
static int list_dir(const char *dir, bool (*keep)(const char *), char ***out, int *n) {
    *out = NULL, *n = 0;
    DIR *dp = opendir(dir);
    if (!dp) return SAM2C_OK;
    struct dirent *e;
    int rc = SAM2C_OK;
    while (rc == SAM2C_OK && (e = readdir(dp))) {
        if (e->d_name[0] == '.' || !keep(e->d_name)) continue;
        char **l = s2_realloc(*out, sizeof(char *) * (size_t)(*n + 1));
        if (!l || !(l[*n] = s2_strdup(e->d_name))) rc = SAM2C_ERR_NOMEM;
        if (l) *out = l;
        if (rc == SAM2C_OK) (*n)++;
    }
    closedir(dp);
    return rc;
}

/* Order of mask files: by the number k in "<k>.png", then by name. */
static int cmp_mask_name(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    long kx = strtol(x, NULL, 10), ky = strtol(y, NULL, 10);
    return kx != ky ? (kx < ky ? -1 : 1) : strcmp(x, y);
}

/* Plain name order for images. */
static int cmp_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Mask files are PNG. */
static bool is_png_name(const char *n) {
    const char *e = strrchr(n, '.');
    return e && !strcasecmp(e, ".png");
}

/* Frees a list from list_dir. */
static void free_list(char **l, int n) {
    for (int i = 0; i < n; i++) free(l[i]);
    free(l);
}

/* Reads the masks of one image from mdir (every PNG, same size). */
static int folder_image(s2_dataset *d, const char *dir, const char *name) {
    char stem[1024], mdir[4200], path[4400];
    snprintf(stem, sizeof stem, "%s", name);
    *strrchr(stem, '.') = 0;
    snprintf(mdir, sizeof mdir, "%s/masks/%s", dir, stem);
    char **files;
    int n, rc = list_dir(mdir, is_png_name, &files, &n);
    if (rc < 0 || n == 0) {
        d->n_skipped += rc == SAM2C_OK;
        free_list(files, n);
        return rc;
    }
    qsort(files, (size_t)n, sizeof *files, cmp_mask_name);
    uint8_t *masks = NULL;
    int w0 = 0, h0 = 0;
    for (int k = 0; rc == SAM2C_OK && k < n; k++) {
        uint8_t *px = NULL;
        int w, h;
        snprintf(path, sizeof path, "%s/%s", mdir, files[k]);
        rc = s2_png_load_gray(path, &px, &w, &h);
        if (rc == SAM2C_OK && k == 0 && !(masks = s2_malloc((size_t)n * w * h))) rc = SAM2C_ERR_NOMEM;
        if (rc == SAM2C_OK && k == 0) w0 = w, h0 = h;
        if (rc == SAM2C_OK && (w != w0 || h != h0))
            rc = s2_err(SAM2C_ERR_FORMAT, "%s: mask is %dx%d, the first mask of %s is %dx%d", path, w, h, stem, w0, h0);
        for (int64_t i = 0; rc == SAM2C_OK && i < (int64_t)w * h; i++)
            masks[(int64_t)k * w * h + i] = px[i] != 0;
        free(px);
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (rc == SAM2C_OK) rc = add_image(d, path, w0, h0, n, masks);
    if (rc < 0) free(masks);
    free_list(files, n);
    return rc;
}

/* Every image of dir with a masks/<stem>/ folder, in name order. */
static int load_folders(const char *dir, s2_dataset *d) {
    char **names;
    int n;
    S2_CHECK(list_dir(dir, is_image_name, &names, &n));
    qsort(names, (size_t)n, sizeof *names, cmp_name);
    int rc = SAM2C_OK;
    for (int i = 0; rc == SAM2C_OK && i < n; i++) rc = folder_image(d, dir, names[i]);
    free_list(names, n);
    snprintf(d->source, sizeof d->source, "masks/");
    return rc;
}

/* annotations.json when present, else mask folders; at least one usable image. */
int s2_dataset_load(const char *dir, s2_dataset *out) {
    *out = (s2_dataset){0};
    if (!dir) return s2_err(SAM2C_ERR_ARG, "dataset: no folder given");
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return s2_err(SAM2C_ERR_IO, "%s: not a folder", dir);
    char jpath[4200];
    snprintf(jpath, sizeof jpath, "%s/annotations.json", dir);
    int rc = is_file(jpath) ? load_coco(dir, jpath, out) : load_folders(dir, out);
    if (rc == SAM2C_OK && out->n == 0)
        rc = s2_err(SAM2C_ERR_FORMAT, "%s: no image with masks (expected annotations.json or "
                    "masks/<image-stem>/<k>.png beside the images)", dir);
    if (rc < 0) s2_dataset_free(out);
    return rc;
}

/* Frees every path and mask; the struct is zeroed. */
void s2_dataset_free(s2_dataset *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) free(d->im[i].path), free(d->im[i].masks);
    free(d->im);
    *d = (s2_dataset){0};
}

/* Decodes image i with EXIF applied (masks are drawn on the upright image). */
int s2_dataset_image(const s2_dataset *d, int i, s2_image *out) {
    const s2_ds_image *e = &d->im[i];
    s2_image_opts o;
    s2_image_opts_default(&o);
    S2_CHECK(s2_image_load(e->path, &o, out));
    if (out->w != e->w || out->h != e->h) {
        s2_image_free(out);
        return s2_err(SAM2C_ERR_FORMAT, "%s: image is %dx%d but its masks are %dx%d", e->path,
                      out->w, out->h, e->w, e->h);
    }
    return SAM2C_OK;
}
