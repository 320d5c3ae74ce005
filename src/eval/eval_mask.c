/* Mask-level evaluation primitives: numpy-exact means, the official boundary F-measure
 * (_seg2bmap + disk dilation, davis2017-evaluation / SA-V rules), label PNG loading with
 * PIL's values, folder listing. */
#include "eval/eval_internal.h"
#include "core/s2.h"
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void s2_eval_opts_default(s2_eval_opts *o) {
    memset(o, 0, sizeof *o);
    o->boundary_th = 0.008;
    o->skip_first_last = true;
    o->strict = false;
}

/* ============================== numpy sums ============================== */

/* ref: numpy/core/src/umath/loops_utils.h.src DOUBLE_pairwise_sum (PW_BLOCKSIZE 128) */
static double pairwise(const double *a, int64_t n) {
    if (n < 8) {
        double res = -0.0;
        for (int64_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        int64_t i;
        for (int k = 0; k < 8; k++) r[k] = a[k];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int k = 0; k < 8; k++) r[k] += a[i + k];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise(a, n2) + pairwise(a + n2, n - n2);
}

/* np.add.reduce on a contiguous float64 array: identity 0, then pairwise sums over the
 * iterator's buffer-sized chunks (8192 elements). */
double s2e_sum(const double *v, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i += 8192) s += pairwise(v + i, S2_MIN(8192, n - i));
    return s;
}

double s2e_mean(const double *v, int64_t n) {
    if (n <= 0) return NAN;
    return s2e_sum(v, n) / (double)n;
}

/* ref: sav_dataset/utils/sav_benchmark.py get_iou */
double s2e_iou(int64_t inter, int64_t sum) {
    if (inter == sum) return 1.0; /* both empty */
    return (double)inter / (double)(sum - inter);
}

/* ============================== boundary F ============================== */

int s2e_bf_init(s2e_bf *b, int h, int w, double th) {
    memset(b, 0, sizeof *b);
    if (h <= 0 || w <= 0) return s2_err(SAM2C_ERR_ARG, "boundary F: empty image %dx%d", w, h);
    if (!(th >= 0 && th < 1e6)) return s2_err(SAM2C_ERR_ARG, "boundary F: bad tolerance %g", th);
    /* ref: sav_benchmark.py Evaluator.feed_frame: np.ceil(boundary * norm(shape)) */
    double rr = ceil(th * sqrt((double)h * h + (double)w * w));
    int r = rr > (double)(h + w) ? h + w : (int)rr;
    b->h = h;
    b->w = w;
    b->r = r;
    size_t n = (size_t)h * (size_t)w;
    b->half = s2_malloc(sizeof(int) * (size_t)(2 * r + 1));
    b->stamp = s2_calloc(n, sizeof(uint32_t));
    b->pa = s2_malloc(n * sizeof(int32_t));
    b->pb = s2_malloc(n * sizeof(int32_t));
    if (!b->half || !b->stamp || !b->pa || !b->pb) {
        s2e_bf_free(b);
        return SAM2C_ERR_NOMEM;
    }
    /* skimage.morphology.disk(r): dx^2 + dy^2 <= r^2 */
    for (int dy = -r; dy <= r; dy++) {
        int hw = 0;
        while ((int64_t)(hw + 1) * (hw + 1) + (int64_t)dy * dy <= (int64_t)r * r) hw++;
        b->half[dy + r] = hw;
    }
    return SAM2C_OK;
}

void s2e_bf_free(s2e_bf *b) {
    free(b->half);
    free(b->stamp);
    free(b->pa);
    free(b->pb);
    memset(b, 0, sizeof *b);
}

/* True when the 9 bytes p[0..8] all equal v (0 or 1): a run without any change. */
static inline bool same9(const uint8_t *p, uint8_t v) {
    uint64_t q;
    memcpy(&q, p, 8);
    return q == (v ? 0x0101010101010101ull : 0) && p[8] == v;
}

/* ref: sav_benchmark.py _seg2bmap: a pixel is boundary when it differs from its right,
 * lower or lower-right neighbour; the last row compares to the right only, the last
 * column to the lower only, the corner is never boundary. s is 0/1. Returns the count
 * of boundary pixel indices written to pts. */
static int32_t seg2bmap(const uint8_t *s, int h, int w, int32_t *pts) {
    int32_t n = 0;
    for (int y = 0; y < h; y++) {
        const uint8_t *r = s + (size_t)y * w;
        if (y + 1 < h) {
            const uint8_t *d = r + w;
            int x = 0;
            while (x < w - 1) {
                uint8_t v = r[x];
                if (x + 9 <= w && same9(r + x, v) && same9(d + x, v)) { x += 8; continue; }
                if (v != r[x + 1] || v != d[x] || v != d[x + 1]) pts[n++] = y * w + x;
                x++;
            }
            if (r[w - 1] != d[w - 1]) pts[n++] = y * w + w - 1;
        } else {
            for (int x = 0; x < w - 1; x++)
                if (r[x] != r[x + 1]) pts[n++] = y * w + x;
        }
    }
    return n;
}

/* cv2.dilate(bmap, disk) restricted to the boundary points: marks every pixel within
 * the disk of a point with the current generation. */
static void stamp_points(s2e_bf *b, const int32_t *pts, int32_t n) {
    const int w = b->w, h = b->h, r = b->r;
    const uint32_t g = b->gen;
    for (int32_t i = 0; i < n; i++) {
        int y = pts[i] / w, x = pts[i] % w;
        int y0 = S2_MAX(0, y - r), y1 = S2_MIN(h - 1, y + r);
        for (int yy = y0; yy <= y1; yy++) {
            int hw = b->half[yy - y + r];
            int x0 = S2_MAX(0, x - hw), x1 = S2_MIN(w - 1, x + hw);
            uint32_t *row = b->stamp + (size_t)yy * w;
            for (int xx = x0; xx <= x1; xx++) row[xx] = g;
        }
    }
}

/* Next dilation generation; clears the map when the counter wraps. */
static void next_gen(s2e_bf *b) {
    if (++b->gen == 0) {
        memset(b->stamp, 0, (size_t)b->h * b->w * sizeof(uint32_t));
        b->gen = 1;
    }
}

/* Points that fall on the current dilation (np.sum of bmap * dilated). */
static int32_t count_marked(const s2e_bf *b, const int32_t *pts, int32_t n) {
    int32_t c = 0;
    for (int32_t i = 0; i < n; i++) c += b->stamp[pts[i]] == b->gen;
    return c;
}

/* ref: sav_benchmark.py Evaluator.feed_frame (boundary f-score, from davis2017) */
double s2e_bf_measure(s2e_bf *b, const uint8_t *gt, const uint8_t *pred, double *prec,
                      double *rec) {
    int32_t n_gt = seg2bmap(gt, b->h, b->w, b->pa);
    int32_t n_fg = seg2bmap(pred, b->h, b->w, b->pb);
    double p, r;
    if (n_fg == 0 && n_gt > 0) { p = 1; r = 0; }
    else if (n_fg > 0 && n_gt == 0) { p = 0; r = 1; }
    else if (n_fg == 0 && n_gt == 0) { p = 1; r = 1; }
    else {
        next_gen(b);
        stamp_points(b, b->pa, n_gt);               /* gt_dilated */
        int32_t fg_match = count_marked(b, b->pb, n_fg);
        next_gen(b);
        stamp_points(b, b->pb, n_fg);               /* mask_dilated */
        int32_t gt_match = count_marked(b, b->pa, n_gt);
        p = (double)fg_match / (double)n_fg;
        r = (double)gt_match / (double)n_gt;
    }
    if (prec) *prec = p;
    if (rec) *rec = r;
    if (p + r == 0) return 0.0;
    return 2 * p * r / (p + r);
}

int s2_eval_mask_pair(const uint8_t *gt, const uint8_t *pred, int h, int w,
                      double boundary_th, s2_eval_pair *out) {
    if (!gt || !pred || !out) return s2_err(SAM2C_ERR_ARG, "eval mask pair: NULL argument");
    memset(out, 0, sizeof *out);
    s2e_bf bf;
    S2_CHECK(s2e_bf_init(&bf, h, w, boundary_th));
    size_t n = (size_t)h * w;
    uint8_t *g = s2_malloc(2 * n);
    if (!g) { s2e_bf_free(&bf); return SAM2C_ERR_NOMEM; }
    uint8_t *p = g + n;
    int64_t ga = 0, pa = 0, in = 0;
    for (size_t i = 0; i < n; i++) {
        g[i] = gt[i] != 0;
        p[i] = pred[i] != 0;
        ga += g[i];
        pa += p[i];
        in += g[i] & p[i];
    }
    out->gt_area = ga;
    out->pred_area = pa;
    out->inter = in;
    out->uni = ga + pa - in;
    out->iou = s2e_iou(in, ga + pa);
    out->f = s2e_bf_measure(&bf, g, p, &out->precision, &out->recall);
    free(g);
    s2e_bf_free(&bf);
    return SAM2C_OK;
}

/* ============================== label PNGs ============================== */

typedef struct pngctx {
    const char *path;
    char msg[160];
} pngctx;

/* libpng must not print: errors are kept and reported through s2_err. */
static void png_error_cb(png_structp png, png_const_charp msg) {
    pngctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "error");
    png_longjmp(png, 1);
}
/* Warnings are dropped (the library never prints). */
static void png_warn_cb(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

/* Converts decoded rows (after the transforms below) into label values. */
static void rows_to_labels(uint8_t *const *rows, int w, int h, int ch, int depth,
                           uint32_t *lab) {
    for (int y = 0; y < h; y++) {
        const uint8_t *r = rows[y];
        uint32_t *o = lab + (size_t)y * w;
        if (depth == 8 && ch == 1) {  /* grey / palette index: the common mask case */
            for (int x = 0; x < w; x++) o[x] = r[x];
            continue;
        }
        for (int x = 0; x < w; x++) {
            if (depth == 16) {
                const uint8_t *q = r + (size_t)x * ch * 2;
                if (ch >= 3) o[x] = (uint32_t)q[0] << 16 | (uint32_t)q[2] << 8 | q[4];
                else o[x] = (uint32_t)q[0] << 8 | q[1];
            } else {
                const uint8_t *q = r + (size_t)x * ch;
                o[x] = ch >= 3 ? (uint32_t)q[0] << 16 | (uint32_t)q[1] << 8 | q[2] : q[0];
            }
        }
    }
}

/* Reads the PNG behind fp into labels (see s2e_png_labels). */
static int png_read_labels(FILE *fp, pngctx *c, uint32_t **labels, size_t *cap, int *w,
                           int *h) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, png_error_cb,
                                             png_warn_cb);
    if (!png) return s2_err(SAM2C_ERR_NOMEM, "%s: cannot create PNG reader", c->path);
    png_infop info = png_create_info_struct(png);
    uint8_t *volatile pix = NULL;
    uint8_t **volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        free(pix);
        free(rows);
        return s2_err(SAM2C_ERR_FORMAT, "%s: bad PNG (%s)", c->path,
                      c->msg[0] ? c->msg : "out of memory");
    }
    png_set_user_limits(png, 1u << 16, 1u << 16);
    png_init_io(png, fp);
    png_read_info(png, info);
    int ct = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_packing(png);            /* raw indices */
    else if (ct == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (ct & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int W = (int)png_get_image_width(png, info), H = (int)png_get_image_height(png, info);
    int ch = png_get_channels(png, info), d2 = png_get_bit_depth(png, info);
    size_t rb = png_get_rowbytes(png, info);
    pix = malloc(rb * (size_t)H);
    rows = malloc(sizeof(uint8_t *) * (size_t)H);
    size_t need = (size_t)W * H;
    if (*cap < need) {
        uint32_t *nl = realloc(*labels, need * sizeof(uint32_t));
        if (nl) { *labels = nl; *cap = need; }
    }
    if (!pix || !rows || *cap < need) png_error(png, "out of memory");
    for (int y = 0; y < H; y++) rows[y] = pix + rb * (size_t)y;
    png_read_image(png, rows);
    rows_to_labels(rows, W, H, ch, d2, *labels);
    png_destroy_read_struct(&png, &info, NULL);
    free(pix);
    free(rows);
    *w = W;
    *h = H;
    return SAM2C_OK;
}

int s2e_png_labels(const char *path, uint32_t **labels, size_t *cap, int *w, int *h) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return s2_err(SAM2C_ERR_IO, "%s: cannot open", path);
    uint8_t sig[8];
    if (fread(sig, 1, 8, fp) != 8 || png_sig_cmp(sig, 0, 8)) {
        fclose(fp);
        return s2_err(SAM2C_ERR_FORMAT, "%s: not a PNG file", path);
    }
    rewind(fp);
    pngctx c = {.path = path};
    int rc = png_read_labels(fp, &c, labels, cap, w, h);
    fclose(fp);
    return rc;
}

/* ============================== folders ============================== */

char *s2e_join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *s = s2_malloc(la + lb + 2);
    if (!s) return NULL;
    memcpy(s, a, la);
    s[la] = '/';
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

bool s2e_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool s2e_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* strcmp order = Python's sorted() on str (code points). */
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void s2e_free_names(char **names, int n) {
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* Whether a directory entry passes the filter of s2e_list_dir. */
static bool keep_entry(const char *dir, const char *name, int kind, const char *sfx) {
    if (name[0] == '.') return false;
    size_t ln = strlen(name), ls = sfx ? strlen(sfx) : 0;
    if (sfx && (ln < ls || strcmp(name + ln - ls, sfx) != 0)) return false;
    if (kind == S2E_ANY) return true;
    char *full = s2e_join(dir, name);
    if (!full) return false;
    bool ok = kind == S2E_DIRS ? s2e_is_dir(full) : s2e_is_file(full);
    free(full);
    return ok;
}

int s2e_list_dir(const char *path, int kind, const char *suffix, char ***names, int *n) {
    *names = NULL;
    *n = 0;
    DIR *d = opendir(path);
    if (!d) return s2_err(SAM2C_ERR_IO, "%s: cannot open folder", path);
    char **v = NULL;
    int cnt = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!keep_entry(path, e->d_name, kind, suffix)) continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = s2_realloc(v, sizeof(char *) * (size_t)cap);
            if (!nv) goto oom;
            v = nv;
        }
        if (!(v[cnt] = s2_strdup(e->d_name))) goto oom;
        cnt++;
    }
    closedir(d);
    if (cnt) qsort(v, (size_t)cnt, sizeof(char *), cmp_str);
    *names = v;
    *n = cnt;
    return SAM2C_OK;
oom:
    closedir(d);
    s2e_free_names(v, cnt);
    return SAM2C_ERR_NOMEM;
}
