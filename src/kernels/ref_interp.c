/* Reference resampling of NCHW planes with PyTorch's F.interpolate semantics (CPU,
 * float32, as aten/src/ATen/native/cpu/UpSampleKernel.cpp and UpSample.h compute it):
 * bilinear (align_corners False/True, with or without antialias), bicubic (A = -0.75,
 * border clamp) and nearest. Letters: C planes, H x W input, OH x OW output.
 *
 * Every mode is separable: per output axis a table of taps (source index, f32
 * weight) is computed exactly as PyTorch computes it (same f32/f64 mix), and
 * out(oy, ox) = sum_ty wy * (sum_tx wx * x(iy, ix)) (the antialiased kernel's
 * horizontal pass first, then its vertical pass), each sum rounded like PyTorch's
 * x86-64 build (see wsum). Bit-exact with the fixtures for the antialiased resizes
 * (image preprocessing, mask prompts), bicubic (Hiera pos-embed) and the generic
 * bilinear kernel (multi-channel masks). PyTorch runs single-channel contiguous
 * bilinear inputs through its channels-last kernel, which rounds differently (within
 * 1 ulp of these results). The horizontal sums of each source row are computed once
 * (a row buffer), then each output row sums those vertically; with AVX-512 + FMA both
 * passes run 16 columns at a time with the same operations in the same order (vfmadd
 * rounds as fmaf), so the bits do not depend on the path. Threads split rows; results
 * do not depend on the thread count. Needs -ffp-contract=off (the default with -std=c11). */
#include "kernels/kernels.h"
#include "kernels/ref_internal.h"
#include "kernels/fast.h"
#include "kernels/fast_simd.h"

#include <math.h>
#include <stdlib.h>

/* Taps of one axis: output i reads n[i] source indices idx[i*T + t] with weights
 * w[i*T + t]. */
typedef struct taps {
    int T;
    int64_t *idx;
    float *w;
    int *n;
} taps;

/* Where resample() reads its input: f32 planes (C, H, W) or interleaved u8 (H, W, C)
 * converted as v / 255.0f (torchvision ToTensor). */
typedef struct src_img {
    const float *f;
    const uint8_t *u8;
    int C, H, W;
} src_img;

// Allocates a table of `out` outputs with T taps each.
static void taps_alloc(taps *t, int out, int T) {
    t->T = T;
    t->idx = s2_kernel_alloc((size_t)out * T * sizeof(int64_t), "interpolation taps");
    t->w = s2_kernel_alloc((size_t)out * T * sizeof(float), "interpolation weights");
    t->n = s2_kernel_alloc((size_t)out * sizeof(int), "interpolation taps");
}

// Frees a table made by taps_alloc.
static void taps_free(taps *t) {
    free(t->idx);
    free(t->w);
    free(t->n);
}

// ref: UpSample.h area_pixel_compute_scale (no scale_factor given: in / out in f32)
static float area_scale(int in, int out, bool align_corners) {
    if (align_corners) return out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    return (float)in / (float)out;
}

// ref: UpSample.h area_pixel_compute_source_index
static float source_index(float scale, int i, bool align_corners, bool cubic) {
    if (align_corners) return scale * (float)i;
    float s = (float)((double)scale * ((double)i + 0.5) - 0.5);
    return (!cubic && s < 0.0f) ? 0.0f : s;
}

// ref: UpSampleKernel.cpp compute_source_index_and_lambda (bilinear, no antialias):
// f32 scale, source index and lambda in f64 (acc_type), lambdas stored as f32
// (bit-exact with the image predictor's mask upsampling fixtures).
static void taps_linear(taps *t, int in, int out, bool align_corners) {
    taps_alloc(t, out, 2);
    float scale = area_scale(in, out, align_corners);
    for (int i = 0; i < out; i++) {
        int64_t i0 = i, i1 = i;
        float l0 = 1.0f, l1 = 0.0f;
        if (in != out) {
            double r = align_corners ? (double)scale * i : (double)scale * (i + 0.5) - 0.5;
            if (r < 0.0) r = 0.0;
            i0 = (int64_t)r;
            i1 = i0 + (i0 < in - 1 ? 1 : 0);
            l1 = (float)(r - (double)i0);
            l0 = 1.0f - l1;
        }
        t->n[i] = 2;
        t->idx[2 * i] = i0;
        t->idx[2 * i + 1] = i1;
        t->w[2 * i] = l0;
        t->w[2 * i + 1] = l1;
    }
}

// ref: UpSampleKernel.cpp HelperInterpLinear::aa_filter (triangle)
static float aa_filter(float x) {
    if (x < 0.0f) x = -x;
    if (x < 1.0f) return (float)(1.0 - (double)x);
    return 0.0f;
}

// ref: UpSampleKernel.cpp HelperInterpBase::_compute_weights_aa (scalar_t = float):
// support scale (downscale) or 1, window [xmin, xmin + xsize), weights normalised.
static void taps_aa(taps *t, int in, int out, bool align_corners) {
    float scale = area_scale(in, out, align_corners);
    float support = scale >= 1.0f ? scale : 1.0f;
    float invscale = scale >= 1.0f ? (float)(1.0 / (double)scale) : 1.0f;
    taps_alloc(t, out, (int)ceilf(support) * 2 + 1);
    for (int i = 0; i < out; i++) {
        float center = (float)((double)scale * ((double)i + 0.5));
        int64_t xmin = (int64_t)((double)(center - support) + 0.5);
        if (xmin < 0) xmin = 0;
        int64_t xmax = (int64_t)((double)(center + support) + 0.5);
        int64_t xsize = S2_REF_MIN(xmax, (int64_t)in) - xmin;
        xsize = S2_REF_MAX((int64_t)0, S2_REF_MIN(xsize, (int64_t)t->T));
        float *w = t->w + (int64_t)i * t->T, total = 0.0f;
        for (int64_t j = 0; j < xsize; j++) {
            double arg = ((double)((float)(j + xmin) - center) + 0.5) * (double)invscale;
            w[j] = aa_filter((float)arg);
            total += w[j];
            t->idx[(int64_t)i * t->T + j] = xmin + j;
        }
        for (int64_t j = 0; j < xsize; j++)
            if (total != 0.0f) w[j] /= total;
        t->n[i] = (int)xsize;
    }
}

// ref: UpSample.h cubic_convolution1 / cubic_convolution2 (f32)
static float cubic1(float x, float A) { return ((A + 2.0f) * x - (A + 3.0f)) * x * x + 1.0f; }
static float cubic2(float x, float A) {
    return ((A * x - 5.0f * A) * x + 8.0f * A) * x - 4.0f * A;
}

// ref: UpSampleKernel.cpp HelperInterpCubic::compute_indices_weights (A = -0.75)
static void taps_cubic(taps *t, int in, int out, bool align_corners) {
    taps_alloc(t, out, 4);
    float scale = area_scale(in, out, align_corners);
    const float A = -0.75f;
    for (int i = 0; i < out; i++) {
        float r = source_index(scale, i, align_corners, true);
        int64_t i0 = (int64_t)floorf(r);
        float x1 = r - (float)i0, x2 = (float)(1.0 - (double)x1);
        float *w = t->w + 4 * (int64_t)i;
        w[0] = cubic2((float)((double)x1 + 1.0), A);
        w[1] = cubic1(x1, A);
        w[2] = cubic1(x2, A);
        w[3] = cubic2((float)((double)x2 + 1.0), A);
        for (int j = 0; j < 4; j++)
            t->idx[4 * (int64_t)i + j] = S2_REF_MAX((int64_t)0, S2_REF_MIN(i0 - 1 + j, (int64_t)in - 1));
        t->n[i] = 4;
    }
}

// Reads input value (c, iy, ix) from either source layout.
static inline float src_at(const src_img *s, int64_t c, int64_t iy, int64_t ix) {
    if (s->u8) return (float)s->u8[(iy * s->W + ix) * s->C + c] / 255.0f;
    return s->f[(c * s->H + iy) * s->W + ix];
}

/* The weighted sums are evaluated with the roundings of PyTorch's x86-64 AVX2 build
 * (GCC, FMA contraction on), found bit-exact on the fixtures:
 * - antialiased kernel (run-time tap count n, interpolate_aa_single_dim): p0 = v0 w0,
 *   then taps 1..n-1 in order; GCC vectorised that loop 4 taps at a time (products
 *   rounded, then added in order) and fused the remaining (n-1) % 4 taps into FMAs;
 * - generic kernels (2 or 4 taps unrolled at compile time, Interpolate::eval):
 *   fma(v0, w0, v1 w1), then fma(v_j, w_j, acc) for the other taps. */
static inline float wsum_aa(float acc, float v, float w, int j, int n) {
    int blocked = ((n - 1) / 4) * 4;
    return j <= blocked ? acc + v * w : fmaf(v, w, acc);
}

// Sum of the n products v[i] w[i] (v gathered by the caller), rounded as described above.
static inline float wsum(const float *v, const float *w, int n, bool aa) {
    if (n <= 1) return n == 1 ? v[0] * w[0] : 0.0f;
    float acc;
    if (aa) {
        acc = v[0] * w[0];
        for (int j = 1; j < n; j++) acc = wsum_aa(acc, v[j], w[j], j, n);
    } else {
        acc = fmaf(v[0], w[0], v[1] * w[1]);
        for (int j = 2; j < n; j++) acc = fmaf(v[j], w[j], acc);
    }
    return acc;
}

enum { MAX_STACK_TAPS = 64 };

// One horizontal sum: source row iy of plane c through the taps of output column ox.
static inline float hsum(const src_img *s, int64_t c, int64_t iy, const int64_t *ix,
                         const float *wx, int nx, bool aa, float *xv) {
    for (int b = 0; b < nx; b++) xv[b] = src_at(s, c, iy, ix[b]);
    return wsum(xv, wx, nx, aa);
}

/* Horizontal pass of the source rows listed in rows[0..nr) of every plane into
 * hb [C][nr][OW]. Inlined into a plain and an FMA-enabled copy (fmaf becomes one
 * instruction there; the results are the same). */
static inline __attribute__((always_inline)) void hpass_body(float *hb, const src_img *s,
                                                            const int *rows, int nr, int OW,
                                                            const taps *tx, bool aa) {
    int64_t n = (int64_t)s->C * nr;
#pragma omp parallel
    {
        float stack_buf[MAX_STACK_TAPS];
        float *xv = tx->T <= MAX_STACK_TAPS ? stack_buf : s2_kernel_alloc((size_t)tx->T * sizeof(float), "interpolation row");
#pragma omp for schedule(static)
        for (int64_t r = 0; r < n; r++) {
            int64_t c = r / nr, iy = rows[r % nr];
            for (int ox = 0; ox < OW; ox++)
                hb[r * OW + ox] = hsum(s, c, iy, tx->idx + (int64_t)ox * tx->T,
                                       tx->w + (int64_t)ox * tx->T, tx->n[ox], aa, xv);
        }
        if (xv != stack_buf) free(xv);
    }
}

// Plain copy of the horizontal pass.
static void hpass_c(float *hb, const src_img *s, const int *rows, int nr, int OW, const taps *tx, bool aa) {
    hpass_body(hb, s, rows, nr, OW, tx, aa);
}

/* Vertical pass of one output row: y[ox] = wsum over the n taps of hv_a[ox] (rows of
 * the horizontal pass), v a buffer of n floats. */
static void vrow_c(float *y, const float *const *hv, const float *w, int n, bool aa, int OW, float *v,
                   const float *thr) {
    for (int ox = 0; ox < OW; ox++) {
        for (int a = 0; a < n; a++) v[a] = hv[a][ox];
        float r = wsum(v, w, n, aa);
        y[ox] = thr ? (float)(r > *thr) : r;
    }
}

#ifdef S2_FAST_X86
// FMA copy of the horizontal pass.
static S2_TGT512 void hpass_fma(float *hb, const src_img *s, const int *rows, int nr, int OW, const taps *tx,
                                bool aa) {
    hpass_body(hb, s, rows, nr, OW, tx, aa);
}

/* AVX-512 horizontal pass for f32 sources and a fixed tap count (bilinear, bicubic):
 * tap j of 16 columns gathered at once (ix / wx: [T][OW] tap-major copies of the table),
 * summed as wsum does (fma(v0, w0, v1 w1), then fma(v_j, w_j, acc)): same bits. */
static S2_TGT512 void hpass_512(float *hb, const src_img *s, const int *rows, int nr, int OW, int T,
                                const int32_t *ix, const float *wx) {
    int64_t n = (int64_t)s->C * nr;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; r++) {
        const float *src = s->f + ((r / nr) * s->H + rows[r % nr]) * (int64_t)s->W;
        float *out = hb + r * OW;
        int ox = 0;
        for (; ox + 16 <= OW; ox += 16) {
            __m512 acc = _mm512_fmadd_ps(_mm512_i32gather_ps(_mm512_loadu_si512(ix + ox), src, 4),
                                         _mm512_loadu_ps(wx + ox),
                                         _mm512_mul_ps(_mm512_i32gather_ps(_mm512_loadu_si512(ix + OW + ox), src, 4),
                                                       _mm512_loadu_ps(wx + OW + ox)));
            for (int j = 2; j < T; j++)
                acc = _mm512_fmadd_ps(_mm512_i32gather_ps(_mm512_loadu_si512(ix + (int64_t)j * OW + ox), src, 4),
                                      _mm512_loadu_ps(wx + (int64_t)j * OW + ox), acc);
            _mm512_storeu_ps(out + ox, acc);
        }
        for (; ox < OW; ox++) {
            float acc = fmaf(src[ix[ox]], wx[ox], src[ix[OW + ox]] * wx[OW + ox]);
            for (int j = 2; j < T; j++) acc = fmaf(src[ix[(int64_t)j * OW + ox]], wx[(int64_t)j * OW + ox], acc);
            out[ox] = acc;
        }
    }
}

// Runs hpass_512 when the table allows it (f32 source, >= 2 taps everywhere, int32
// indices); false otherwise.
static bool hpass_try_512(float *hb, const src_img *s, const int *rows, int nr, int OW, const taps *tx, bool aa) {
    if (aa || s->u8 || tx->T < 2) return false;
    for (int ox = 0; ox < OW; ox++)
        if (tx->n[ox] != tx->T) return false;
    int32_t *ix = s2_kernel_alloc((size_t)tx->T * OW * (sizeof(int32_t) + sizeof(float)), "interpolation taps");
    float *wx = (float *)(ix + (int64_t)tx->T * OW);
    for (int ox = 0; ox < OW; ox++)
        for (int j = 0; j < tx->T; j++) {
            ix[(int64_t)j * OW + ox] = (int32_t)tx->idx[(int64_t)ox * tx->T + j];
            wx[(int64_t)j * OW + ox] = tx->w[(int64_t)ox * tx->T + j];
        }
    hpass_512(hb, s, rows, nr, OW, tx->T, ix, wx);
    free(ix);
    return true;
}

// AVX-512 vertical row, 16 columns per step: vfmadd rounds exactly like fmaf, so the
// bits equal vrow_c's (which does the tail).
static S2_TGT512 void vrow_512(float *y, const float *const *hv, const float *w, int n, bool aa, int OW,
                               float *v, const float *thr) {
    int ox = 0, blocked = ((n - 1) / 4) * 4;
    for (; ox + 16 <= OW && n >= 2; ox += 16) {
        __m512 acc;
        if (aa) {
            acc = _mm512_mul_ps(_mm512_loadu_ps(hv[0] + ox), _mm512_set1_ps(w[0]));
            for (int j = 1; j < n; j++) {
                __m512 p = _mm512_loadu_ps(hv[j] + ox), wj = _mm512_set1_ps(w[j]);
                acc = j <= blocked ? _mm512_add_ps(acc, _mm512_mul_ps(p, wj)) : _mm512_fmadd_ps(p, wj, acc);
            }
        } else {
            acc = _mm512_fmadd_ps(_mm512_loadu_ps(hv[0] + ox), _mm512_set1_ps(w[0]),
                                  _mm512_mul_ps(_mm512_loadu_ps(hv[1] + ox), _mm512_set1_ps(w[1])));
            for (int j = 2; j < n; j++)
                acc = _mm512_fmadd_ps(_mm512_loadu_ps(hv[j] + ox), _mm512_set1_ps(w[j]), acc);
        }
        if (thr)
            acc = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(acc, _mm512_set1_ps(*thr), _CMP_GT_OQ), _mm512_set1_ps(1.0f));
        _mm512_storeu_ps(y + ox, acc);
    }
    for (; ox < OW; ox++) {
        for (int a = 0; a < n; a++) v[a] = hv[a][ox];
        float r = wsum(v, w, n, aa);
        y[ox] = thr ? (float)(r > *thr) : r;
    }
}
#endif

/* Lists the source rows the vertical taps read (rows[], their count returned) and maps
 * each source row to its place in that list (map[iy], -1 when unread). */
static int used_rows(const taps *ty, int OH, int H, int *rows, int *map) {
    for (int iy = 0; iy < H; iy++) map[iy] = -1;
    for (int oy = 0; oy < OH; oy++)
        for (int a = 0; a < ty->n[oy]; a++) map[ty->idx[(int64_t)oy * ty->T + a]] = 0;
    int nr = 0;
    for (int iy = 0; iy < H; iy++)
        if (map[iy] == 0) rows[nr] = iy, map[iy] = nr++;
    return nr;
}

/* y (C, OH, OW) = separable weighted sums of the source with the two tap tables:
 * the horizontal sums of every source row that is read, once, then per output row the
 * vertical sum of those (the same values, summed in the same order, as evaluating
 * out(oy, ox) = wsum_a(wy_a * wsum_b(wx_b * x)) directly). */
static void resample(float *y, const src_img *s, int OH, int OW, const taps *ty,
                     const taps *tx, bool aa, const float *thr) {
    int *rows = s2_kernel_alloc(2 * (size_t)s->H * sizeof(int), "interpolation rows"), *map = rows + s->H;
    int nr = used_rows(ty, OH, s->H, rows, map);
    float *hb = s2_kernel_alloc((size_t)s->C * nr * OW * sizeof(float) + 64, "interpolation rows");
    bool v = false;
#ifdef S2_FAST_X86
    v = s2_fast_avx512();
    if (v && !hpass_try_512(hb, s, rows, nr, OW, tx, aa)) hpass_fma(hb, s, rows, nr, OW, tx, aa);
#endif
    if (!v) hpass_c(hb, s, rows, nr, OW, tx, aa);
    int64_t n = (int64_t)s->C * OH;
    int T = S2_REF_MAX(ty->T, 1);
#pragma omp parallel
    {
        const float **hv = s2_kernel_alloc((size_t)T * (sizeof(float *) + sizeof(float)), "interpolation taps");
        float *vb = (float *)(hv + T);
#pragma omp for schedule(static)
        for (int64_t r = 0; r < n; r++) {
            int64_t c = r / OH, oy = r % OH;
            int ny = ty->n[oy];
            for (int a = 0; a < ny; a++) hv[a] = hb + ((c * nr) + map[ty->idx[oy * ty->T + a]]) * OW;
#ifdef S2_FAST_X86
            if (v) { vrow_512(y + r * OW, hv, ty->w + oy * ty->T, ny, aa, OW, vb, thr); continue; }
#endif
            vrow_c(y + r * OW, hv, ty->w + oy * ty->T, ny, aa, OW, vb, thr);
        }
        free(hv);
    }
    free(hb);
    free(rows);
}

// Tap tables of one axis for the bilinear modes.
static void taps_bilinear(taps *t, int in, int out, bool align_corners, bool antialias) {
    if (antialias) taps_aa(t, in, out, align_corners);
    else taps_linear(t, in, out, align_corners);
}

// ref: F.interpolate(mode="bilinear", align_corners, antialias)
void s2_ref_interp_bilinear(float *y, const float *x, int C, int H, int W, int OH, int OW,
                            bool align_corners, bool antialias) {
    if (C <= 0 || OH <= 0 || OW <= 0 || H <= 0 || W <= 0) return;
    taps ty, tx;
    taps_bilinear(&ty, H, OH, align_corners, antialias);
    taps_bilinear(&tx, W, OW, align_corners, antialias);
    src_img s = {.f = x, .C = C, .H = H, .W = W};
    resample(y, &s, OH, OW, &ty, &tx, antialias, NULL);
    taps_free(&ty);
    taps_free(&tx);
}

// (F.interpolate(mode="bilinear", align_corners=False) > thr) as 0 / 1 floats
void s2_ref_interp_bilinear_gt(float *y, const float *x, int C, int H, int W, int OH, int OW,
                               float thr) {
    if (C <= 0 || OH <= 0 || OW <= 0 || H <= 0 || W <= 0) return;
    taps ty, tx;
    taps_bilinear(&ty, H, OH, false, false);
    taps_bilinear(&tx, W, OW, false, false);
    src_img s = {.f = x, .C = C, .H = H, .W = W};
    resample(y, &s, OH, OW, &ty, &tx, false, &thr);
    taps_free(&ty);
    taps_free(&tx);
}

// ToTensor (u8 / 255) fused with F.interpolate(mode="bilinear") on interleaved u8.
void s2_ref_interp_bilinear_u8hwc(float *y, const uint8_t *x, int C, int H, int W, int OH,
                                  int OW, bool align_corners, bool antialias) {
    if (C <= 0 || OH <= 0 || OW <= 0 || H <= 0 || W <= 0) return;
    taps ty, tx;
    taps_bilinear(&ty, H, OH, align_corners, antialias);
    taps_bilinear(&tx, W, OW, align_corners, antialias);
    src_img s = {.u8 = x, .C = C, .H = H, .W = W};
    resample(y, &s, OH, OW, &ty, &tx, antialias, NULL);
    taps_free(&ty);
    taps_free(&tx);
}

// ref: F.interpolate(mode="bicubic", align_corners) (no antialias)
void s2_ref_interp_bicubic(float *y, const float *x, int C, int H, int W, int OH, int OW,
                           bool align_corners) {
    if (C <= 0 || OH <= 0 || OW <= 0 || H <= 0 || W <= 0) return;
    taps ty, tx;
    taps_cubic(&ty, H, OH, align_corners);
    taps_cubic(&tx, W, OW, align_corners);
    src_img s = {.f = x, .C = C, .H = H, .W = W};
    resample(y, &s, OH, OW, &ty, &tx, false, NULL);
    taps_free(&ty);
    taps_free(&tx);
}

// ref: UpSampleKernel.cpp nearest_idx (exact copy for out == in and out == 2 in)
static int64_t nearest_idx(int i, int in, int out) {
    if (out == in) return i;
    if (out == 2 * in) return i >> 1;
    float scale = (float)in / (float)out;
    int64_t s = (int64_t)floorf((float)i * scale);
    return S2_REF_MIN(s, (int64_t)in - 1);
}

// ref: F.interpolate(mode="nearest")
void s2_ref_interp_nearest(float *y, const float *x, int C, int H, int W, int OH, int OW) {
    if (C <= 0 || OH <= 0 || OW <= 0 || H <= 0 || W <= 0) return;
    int64_t rows = (int64_t)C * OH;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t c = r / OH, oy = r % OH;
        const float *xr = x + (c * H + nearest_idx((int)oy, H, OH)) * W;
        for (int ox = 0; ox < OW; ox++) y[r * OW + ox] = xr[nearest_idx(ox, W, OW)];
    }
}
