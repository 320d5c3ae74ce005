/* Pieces of the automatic mask generator that stand alone: crop boxes, point grids,
 * torchvision NMS, mask boxes, the crop-edge filter, stability scores, and the fused
 * mask upsampling + stability counts (the generator's hot loop).
 * ref: sam2/utils/amg.py, torchvision/csrc/ops/cpu/nms_kernel.cpp,
 *      aten/src/ATen/native/cpu/UpSampleKernel.cpp (bilinear, align_corners=False) */
#include "predict/amg.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define AMG_X86 1
#endif

/* ---- pieces of sam2/utils/amg.py ---- */

int s2_amg_n_crops(int n_layers) {
    int n = 1;
    for (int i = 1; i <= n_layers; i++) n += 1 << (2 * i);
    return n;
}

// ref: sam2/utils/amg.py generate_crop_boxes (crop_len, products x0-major)
int s2_amg_crop_boxes(int w, int h, int n_layers, double ratio, int (*boxes)[4], int *layers,
                      int cap) {
    if (w <= 0 || h <= 0 || n_layers < 0 || n_layers > S2_AMG_MAX_CROP_LAYERS)
        return s2_err(SAM2C_ERR_ARG, "crop boxes: bad image %d x %d or layer count %d", w, h, n_layers);
    if (cap < s2_amg_n_crops(n_layers)) return s2_err(SAM2C_ERR_ARG, "crop boxes: no room");
    int n = 0, shorter = S2_MIN(w, h);
    boxes[n][0] = 0, boxes[n][1] = 0, boxes[n][2] = w, boxes[n][3] = h;
    layers[n++] = 0;
    for (int i = 0; i < n_layers; i++) {
        int k = 1 << (i + 1);
        int overlap = (int)(ratio * shorter * (2.0 / k));
        int cw = (int)ceil((double)(overlap * (k - 1) + w) / k);
        int chh = (int)ceil((double)(overlap * (k - 1) + h) / k);
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) {
                int x0 = (cw - overlap) * a, y0 = (chh - overlap) * b;
                int *bx = boxes[n];
                bx[0] = x0, bx[1] = y0, bx[2] = S2_MIN(x0 + cw, w), bx[3] = S2_MIN(y0 + chh, h);
                if (x0 < 0 || y0 < 0 || bx[2] <= x0 || bx[3] <= y0)
                    return s2_err(SAM2C_ERR_ARG, "crop layer %d of a %d x %d image gives an empty crop "
                                  "(%d, %d, %d, %d): fewer crop layers or a smaller overlap ratio",
                                  i + 1, w, h, bx[0], bx[1], bx[2], bx[3]);
                layers[n++] = i + 1;
            }
    }
    return n;
}

// ref: sam2/utils/amg.py build_point_grid (numpy.linspace: start + i * step, last = stop)
void s2_amg_point_grid(int n, double *xy) {
    double off = 1.0 / (2 * n), stop = 1.0 - off, step = n > 1 ? (stop - off) / (n - 1) : 0.0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double *p = xy + 2 * ((int64_t)i * n + j);
            p[0] = (n > 1 && j == n - 1) ? stop : j * step + off;
            p[1] = (n > 1 && i == n - 1) ? stop : i * step + off;
        }
}

/* Sort key of the NMS order: score descending (NaN first, as torch.sort), then index. */
typedef struct nms_key { float s; int i; } nms_key;
static int nms_cmp(const void *pa, const void *pb) {
    const nms_key *a = pa, *b = pb;
    bool na = isnan(a->s), nb = isnan(b->s);
    if (na != nb) return na ? -1 : 1;
    if (!na && a->s != b->s) return a->s > b->s ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

// ref: torchvision/csrc/ops/cpu/nms_kernel.cpp nms_kernel_impl
int s2_amg_nms(const float *bx, const float *scores, int n, double thresh, int *keep) {
    if (n <= 0) return 0;
    nms_key *ord = s2_malloc((size_t)n * sizeof *ord);
    float *area = s2_malloc((size_t)n * sizeof *area);
    uint8_t *sup = s2_calloc((size_t)n, 1);
    if (!ord || !area || !sup) {
        free(ord), free(area), free(sup);
        return SAM2C_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) {
        ord[i] = (nms_key){scores[i], i};
        const float *b = bx + 4 * i;
        area[i] = (b[2] - b[0]) * (b[3] - b[1]);
    }
    qsort(ord, (size_t)n, sizeof *ord, nms_cmp);
    int nk = 0;
    for (int a = 0; a < n; a++) {
        int i = ord[a].i;
        if (sup[i]) continue;
        keep[nk++] = i;
        const float *bi = bx + 4 * i;
        for (int c = a + 1; c < n; c++) {
            int j = ord[c].i;
            if (sup[j]) continue;
            const float *bj = bx + 4 * j;
            float w = fmaxf(0.0f, fminf(bi[2], bj[2]) - fmaxf(bi[0], bj[0]));
            float h = fmaxf(0.0f, fminf(bi[3], bj[3]) - fmaxf(bi[1], bj[1]));
            float inter = w * h, ovr = inter / (area[i] + area[j] - inter);
            if ((double)ovr > thresh) sup[j] = 1;
        }
    }
    free(ord), free(area), free(sup);
    return nk;
}

// ref: sam2/utils/amg.py batched_mask_to_box (one mask, inclusive max row / column)
void s2_amg_mask_box_colmajor(const uint8_t *cm, int h, int w, int box[4]) {
    int x0 = w, x1 = -1, y0 = h, y1 = -1;
    for (int x = 0; x < w; x++) {
        const uint8_t *col = cm + (int64_t)x * h;
        int first = 0;
        while (first < h && !col[first]) first++;
        if (first == h) continue;
        int last = h - 1;
        while (!col[last]) last--;
        x0 = S2_MIN(x0, x), x1 = x;
        y0 = S2_MIN(y0, first), y1 = S2_MAX(y1, last);
    }
    if (x1 < 0) box[0] = box[1] = box[2] = box[3] = 0;
    else box[0] = x0, box[1] = y0, box[2] = x1, box[3] = y1;
}

// ref: sam2/utils/amg.py is_box_near_crop_edge (torch.isclose, atol 20, rtol 0)
bool s2_amg_box_near_crop_edge(const int box[4], const int crop[4], int img_w, int img_h) {
    const int img[4] = {0, 0, img_w, img_h};
    for (int k = 0; k < 4; k++) {
        float b = (float)box[k];
        bool near_crop = fabsf(b - (float)crop[k]) <= 20.0f;
        bool near_img = fabsf(b - (float)img[k]) <= 20.0f;
        if (near_crop && !near_img) return true;
    }
    return false;
}

// ref: sam2/utils/amg.py calculate_stability_score (int counts, f32 quotient)
float s2_amg_stability(const float *x, int64_t n, double thr, double off) {
    float hi = (float)(thr + off), lo = (float)(thr - off);
    int64_t inter = 0, uni = 0;
    for (int64_t i = 0; i < n; i++) {
        inter += x[i] > hi;
        uni += x[i] > lo;
    }
    return (float)inter / (float)uni;
}

/* ---- mask upsampling (the hot loop) ---- */

// ref: aten UpSampleKernel.cpp compute_source_index_and_lambda, as ref_interp.c
// taps_linear: f32 scale, f64 source index, f32 lambdas.
static void linear_taps(int in, int out, int *idx, float *w) {
    float scale = (float)in / (float)out;
    for (int i = 0; i < out; i++) {
        int i0 = i, i1 = i;
        float l0 = 1.0f, l1 = 0.0f;
        if (in != out) {
            double r = (double)scale * (i + 0.5) - 0.5;
            if (r < 0.0) r = 0.0;
            i0 = (int)r;
            i1 = i0 + (i0 < in - 1 ? 1 : 0);
            l1 = (float)(r - (double)i0);
            l0 = 1.0f - l1;
        }
        idx[2 * i] = i0, idx[2 * i + 1] = i1;
        w[2 * i] = l0, w[2 * i + 1] = l1;
    }
}

int s2_amg_resize_init(s2_amg_resize *r, int lh, int lw, int oh, int ow) {
    memset(r, 0, sizeof *r);
    if (lh < 1 || lw < 1 || oh < 1 || ow < 1) return s2_err(SAM2C_ERR_ARG, "resize: empty plane");
    r->lh = lh, r->lw = lw, r->oh = oh, r->ow = ow;
    r->iy = s2_malloc((size_t)oh * 2 * sizeof(int));
    r->ix = s2_malloc((size_t)ow * 2 * sizeof(int));
    r->wy = s2_malloc((size_t)oh * 2 * sizeof(float));
    r->wx = s2_malloc((size_t)ow * 2 * sizeof(float));
    r->rows = s2_malloc((size_t)lh * ow * sizeof(float));
    if (!r->iy || !r->ix || !r->wy || !r->wx || !r->rows) {
        s2_amg_resize_free(r);
        return SAM2C_ERR_NOMEM;
    }
    linear_taps(lh, oh, r->iy, r->wy);
    linear_taps(lw, ow, r->ix, r->wx);
    return SAM2C_OK;
}

void s2_amg_resize_free(s2_amg_resize *r) {
    free(r->iy), free(r->ix), free(r->wy), free(r->wx), free(r->rows);
    memset(r, 0, sizeof *r);
}

/* Horizontal pass of one source row: h[ox] = fma(x[ix0], wx0, x[ix1] * wx1). */
static void hrow_scalar(const float *x, const int *ix, const float *wx, float *h, int ow) {
    for (int o = 0; o < ow; o++) h[o] = fmaf(x[ix[2 * o]], wx[2 * o], x[ix[2 * o + 1]] * wx[2 * o + 1]);
}

/* Vertical pass of one output row, y = fma(a, wa, b * wb), with the two counts. */
static void vrow_scalar(const float *a, const float *b, float wa, float wb, float *y, int n, float hi,
                        float lo, int64_t *nh, int64_t *nl) {
    int64_t h = 0, l = 0;
    for (int x = 0; x < n; x++) {
        float v = fmaf(a[x], wa, b[x] * wb);
        y[x] = v;
        h += v > hi;
        l += v > lo;
    }
    *nh += h, *nl += l;
}

#ifdef AMG_X86
/* The same two passes with FMA instructions (lane-wise the same rounding as fmaf). */
__attribute__((target("avx2,fma"))) static void hrow_fma(const float *x, const int *ix, const float *wx,
                                                         float *h, int ow) {
    for (int o = 0; o < ow; o++) h[o] = fmaf(x[ix[2 * o]], wx[2 * o], x[ix[2 * o + 1]] * wx[2 * o + 1]);
}

__attribute__((target("avx2,fma"))) static void vrow_fma(const float *a, const float *b, float wa, float wb,
                                                         float *y, int n, float hi, float lo, int64_t *nh,
                                                         int64_t *nl) {
    __m256 va = _mm256_set1_ps(wa), vb = _mm256_set1_ps(wb), vh = _mm256_set1_ps(hi), vl = _mm256_set1_ps(lo);
    int64_t h = 0, l = 0;
    int x = 0;
    for (; x + 8 <= n; x += 8) {
        __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(a + x), va, _mm256_mul_ps(_mm256_loadu_ps(b + x), vb));
        _mm256_storeu_ps(y + x, v);
        h += __builtin_popcount((unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, vh, _CMP_GT_OQ)));
        l += __builtin_popcount((unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, vl, _CMP_GT_OQ)));
    }
    for (; x < n; x++) {
        float v = fmaf(a[x], wa, b[x] * wb);
        y[x] = v;
        h += v > hi;
        l += v > lo;
    }
    *nh += h, *nl += l;
}
#endif

// ref: F.interpolate(mode="bilinear", align_corners=False) in SAM2Transforms.postprocess_masks
void s2_amg_resize_run(s2_amg_resize *r, const float *x, float *y, float hi, float lo, int64_t *n_hi,
                       int64_t *n_lo) {
    bool fma = false;
#ifdef AMG_X86
    fma = !r->portable && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    int64_t nh = 0, nl = 0;
#pragma omp parallel for schedule(static)
    for (int a = 0; a < r->lh; a++) {
#ifdef AMG_X86
        if (fma) { hrow_fma(x + (int64_t)a * r->lw, r->ix, r->wx, r->rows + (int64_t)a * r->ow, r->ow); continue; }
#endif
        hrow_scalar(x + (int64_t)a * r->lw, r->ix, r->wx, r->rows + (int64_t)a * r->ow, r->ow);
    }
#pragma omp parallel for schedule(static) reduction(+ : nh, nl)
    for (int o = 0; o < r->oh; o++) {
        const float *a = r->rows + (int64_t)r->iy[2 * o] * r->ow, *b = r->rows + (int64_t)r->iy[2 * o + 1] * r->ow;
        float *yo = y + (int64_t)o * r->ow;
#ifdef AMG_X86
        if (fma) { vrow_fma(a, b, r->wy[2 * o], r->wy[2 * o + 1], yo, r->ow, hi, lo, &nh, &nl); continue; }
#endif
        vrow_scalar(a, b, r->wy[2 * o], r->wy[2 * o + 1], yo, r->ow, hi, lo, &nh, &nl);
    }
    (void)fma;
    *n_hi = nh, *n_lo = nl;
}
