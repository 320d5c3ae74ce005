/* Prompt simulation for training: uniform clicks from the error region, RITM "center"
 * clicks (exact Euclidean distance transform), noisy boxes; and the seeded generator.
 * Letters: H x W mask side (the model input S x S).
 * ref: sam2/modeling/sam2_utils.py, sam2/utils/misc.py mask_to_box */
#include "train/step.h"

#include <math.h>
#include <stdlib.h>

// splitmix64 step: reproducible from the seed, no global state.
uint64_t s2_rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* 53 random bits as a double in [0, 1). */
double s2_rng_uniform(uint64_t *s) { return (double)(s2_rng_next(s) >> 11) / 9007199254740992.0; }

/* Modulo reduction: the bias is negligible for the sizes used (n << 2^64). */
int64_t s2_rng_below(uint64_t *s, int64_t n) {
    return n <= 1 ? 0 : (int64_t)(s2_rng_next(s) % (uint64_t)n);
}

/* Whether pixel i may hold a click and with which label (0 neg from FP / background
 * when all correct, 1 pos from FN); -1 when not. */
static int error_label(const uint8_t *gt, const uint8_t *pred, int64_t i, bool all_correct) {
    bool g = gt[i] != 0, p = pred && pred[i] != 0;
    if (g && !p) return 1;
    if ((!g && p) || (all_correct && !g)) return 0;
    return -1;
}

// ref: sam2_utils.py sample_random_points_from_errors (argmax of masked uniform noise
// = a uniform choice among the allowed (pixel, label) entries)
void s2_sample_point_uniform(const uint8_t *gt, const uint8_t *pred, int H, int W,
                             uint64_t *rng, float xy[2], int32_t *label) {
    int64_t n = (int64_t)H * W, allowed = 0;
    bool all_correct = true;
    for (int64_t i = 0; i < n && all_correct; i++) all_correct = (gt[i] != 0) == (pred && pred[i] != 0);
    for (int64_t i = 0; i < n; i++) allowed += error_label(gt, pred, i, all_correct) >= 0;
    xy[0] = xy[1] = 0.0f;
    *label = 0;
    if (allowed == 0) return; // argmax of all-zero noise: index 0, negative
    int64_t k = s2_rng_below(rng, allowed);
    for (int64_t i = 0; i < n; i++) {
        int l = error_label(gt, pred, i, all_correct);
        if (l < 0 || k-- > 0) continue;
        xy[0] = (float)(i % W);
        xy[1] = (float)(i / W);
        *label = l;
        return;
    }
}

/* 1-D squared distance transform (Felzenszwalb & Huttenlocher, lower envelope of
 * parabolas) of f [n] into d [n]; v [n] and z [n + 1] are workspaces. */
static void edt_1d(const double *f, double *d, int n, int *v, double *z) {
    int k = 0;
    v[0] = 0;
    z[0] = -INFINITY, z[1] = INFINITY;
    for (int q = 1; q < n; q++) {
        double s;
        for (;;) {
            int p = v[k];
            s = ((f[q] + (double)q * q) - (f[p] + (double)p * p)) / (2.0 * (q - p));
            if (s > z[k]) break;
            k--;
        }
        k++;
        v[k] = q;
        z[k] = s;
        z[k + 1] = INFINITY;
    }
    k = 0;
    for (int q = 0; q < n; q++) {
        while (z[k + 1] < q) k++;
        double dq = q - v[k];
        d[q] = dq * dq + f[v[k]];
    }
}

/* Euclidean distance of every pixel of the (H x W) region mask to the nearest pixel
 * outside it, the image padded by one background pixel (cv2 DIST_L2, precise), as f32
 * values; out [H*W]. Returns SAM2C_ERR_NOMEM on allocation failure. */
static int distance_transform(const uint8_t *m, int H, int W, float *out) {
    int PH = H + 2, PW = W + 2, L = PH > PW ? PH : PW;
    double *g = calloc((size_t)PH * PW, sizeof(double));
    double *f = calloc((size_t)L, sizeof(double)), *d = calloc((size_t)L, sizeof(double));
    double *z = calloc((size_t)L + 1, sizeof(double));
    int *v = calloc((size_t)L, sizeof(int));
    if (!g || !f || !d || !z || !v) {
        free(g), free(f), free(d), free(z), free(v);
        return s2_err(SAM2C_ERR_NOMEM, "distance transform: out of memory");
    }
    for (int x = 0; x < PW; x++) { // columns
        for (int y = 0; y < PH; y++) {
            bool in = y > 0 && y <= H && x > 0 && x <= W && m[(int64_t)(y - 1) * W + x - 1];
            f[y] = in ? 1e12 : 0.0; // every column has padding: all finite after
        }
        edt_1d(f, d, PH, v, z);
        for (int y = 0; y < PH; y++) g[(int64_t)y * PW + x] = d[y];
    }
    for (int y = 1; y <= H; y++) { // rows
        edt_1d(g + (int64_t)y * PW, d, PW, v, z);
        for (int x = 1; x <= W; x++) out[(int64_t)(y - 1) * W + x - 1] = (float)sqrt(d[x]);
    }
    free(g), free(f), free(d), free(z), free(v);
    return SAM2C_OK;
}

// ref: sam2_utils.py sample_one_point_from_error_center (padding=True)
int s2_sample_point_center(const uint8_t *gt, const uint8_t *pred, int H, int W, float xy[2],
                           int32_t *label) {
    int64_t n = (int64_t)H * W;
    uint8_t *fn = malloc((size_t)n), *fp = malloc((size_t)n);
    float *dfn = malloc(sizeof(float) * (size_t)n), *dfp = malloc(sizeof(float) * (size_t)n);
    int rc = (fn && fp && dfn && dfp) ? SAM2C_OK : s2_err(SAM2C_ERR_NOMEM, "center click: out of memory");
    for (int64_t i = 0; rc == SAM2C_OK && i < n; i++) {
        bool g = gt[i] != 0, p = pred && pred[i] != 0;
        fn[i] = g && !p;
        fp[i] = !g && p;
    }
    if (rc == SAM2C_OK) rc = distance_transform(fn, H, W, dfn);
    if (rc == SAM2C_OK) rc = distance_transform(fp, H, W, dfp);
    if (rc == SAM2C_OK) {
        int64_t an = 0, ap = 0;
        for (int64_t i = 1; i < n; i++) {
            if (dfn[i] > dfn[an]) an = i;
            if (dfp[i] > dfp[ap]) ap = i;
        }
        bool pos = dfn[an] > dfp[ap];
        int64_t idx = pos ? an : ap;
        xy[0] = (float)(idx % W);
        xy[1] = (float)(idx / W);
        *label = pos ? 1 : 0;
    }
    free(fn), free(fp), free(dfn), free(dfp);
    return rc;
}

// ref: sam2_utils.py sample_box_points + sam2/utils/misc.py mask_to_box
void s2_sample_box(const uint8_t *gt, int H, int W, uint64_t *rng, float xy[4],
                   int32_t labels[2]) {
    int x0 = W, y0 = H, x1 = -1, y1 = -1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            if (gt[(int64_t)y * W + x]) {
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
            }
    float bw = (float)(x1 - x0), bh = (float)(y1 - y0);
    float mdx = fminf(bw * 0.1f, 20.0f), mdy = fminf(bh * 0.1f, 20.0f);
    float box[4] = {(float)x0, (float)y0, (float)x1, (float)y1};
    float md[4] = {mdx, mdy, mdx, mdy}, hi[4] = {(float)(W - 1), (float)(H - 1), (float)(W - 1), (float)(H - 1)};
    for (int k = 0; k < 4; k++) {
        float v = box[k] + (float)(2.0 * s2_rng_uniform(rng) - 1.0) * md[k];
        xy[k] = fminf(fmaxf(v, 0.0f), hi[k]);
    }
    labels[0] = 2;
    labels[1] = 3;
}
