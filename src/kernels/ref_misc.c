/* Reference element-wise activations, max pooling and layout changes. Element-wise
 * functions are evaluated in f64 and rounded once to f32 (within 1 ulp of the exact
 * value; PyTorch's vectorised f32 versions are within ~1-2 ulp). Max pooling and the
 * layout changes select or copy values, so their AVX-512 paths give the same bits. */
#include "kernels/kernels.h"
#include "kernels/ref_internal.h"
#include "kernels/fast.h"
#include "kernels/fast_simd.h"

#include <math.h>

// ref: torch.nn.GELU() (approximate="none"): 0.5 x (1 + erf(x / sqrt 2)), evaluated as
// 0.5 x erfc(-x / sqrt 2) so that the negative tail keeps its relative accuracy.
void s2_ref_gelu(float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        x[i] = (float)(0.5 * v * erfc(-v * M_SQRT1_2));
    }
}

// ref: torch.relu (NaN stays NaN)
void s2_ref_relu(float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        if (x[i] < 0.0f) x[i] = 0.0f;
}

// ref: torch.sigmoid: 1 / (1 + exp(-x))
void s2_ref_sigmoid(float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
}

// y = a + b element-wise (in place on either operand is fine)
void s2_ref_add(float *y, const float *a, const float *b, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

// One output pixel of max pooling: yp[c] = max over the k x k pixels at xp (pixel stride
// ldx, row stride row); a NaN in a window gives the first NaN seen, as PyTorch does.
static void pool_px_c(float *yp, const float *xp, int64_t ldx, int64_t row, int C, int k) {
    for (int c = 0; c < C; c++) yp[c] = -INFINITY;
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) {
            const float *p = xp + i * row + j * ldx;
            for (int c = 0; c < C; c++)
                if (p[c] > yp[c] || isnan(p[c])) yp[c] = isnan(yp[c]) ? yp[c] : p[c];
        }
}

#ifdef S2_FAST_X86
// The same 16 channels at a time, with the same selections (so the same bits).
static S2_TGT512 void pool_px_512(float *yp, const float *xp, int64_t ldx, int64_t row, int C, int k) {
    for (int c = 0; c < C; c += 16) {
        __mmask16 km = C - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (C - c)) - 1), nan = 0;
        __m512 m = _mm512_set1_ps(-INFINITY);
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++) {
                __m512 x = _mm512_maskz_loadu_ps(km, xp + i * row + j * ldx + c);
                __mmask16 take = (_mm512_cmp_ps_mask(x, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q)) & ~nan;
                m = _mm512_mask_mov_ps(m, take, x);
                nan |= _mm512_cmp_ps_mask(m, m, _CMP_UNORD_Q);
            }
        _mm512_mask_storeu_ps(yp + c, km, m);
    }
}
#endif

// ref: torch.nn.MaxPool2d(kernel_size=k, stride=k) applied to NHWC (Hiera do_pool) whose
// pixels are ldx floats apart (a slice of a wider row, e.g. q inside qkv)
void s2_ref_maxpool_nhwc_ld(float *y, const float *x, int64_t ldx, int N, int H, int W, int C, int k) {
    int OH = H / k, OW = W / k;
    int64_t rows = (int64_t)N * OH;
    bool v = false;
#ifdef S2_FAST_X86
    v = s2_fast_avx512();
#endif
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t n = r / OH, oh = r % OH;
        for (int ow = 0; ow < OW; ow++) {
            float *yp = y + ((r * OW) + ow) * C; // (C)
            const float *xp = x + ((n * H + oh * k) * W + (int64_t)ow * k) * ldx;
#ifdef S2_FAST_X86
            if (v) { pool_px_512(yp, xp, ldx, (int64_t)W * ldx, C, k); continue; }
#endif
            pool_px_c(yp, xp, ldx, (int64_t)W * ldx, C, k);
        }
    }
    (void)v;
}

// ref: torch.nn.MaxPool2d(kernel_size=k, stride=k) applied to NHWC (Hiera do_pool);
// a NaN in a window gives NaN, as PyTorch's max pooling does.
void s2_ref_maxpool_nhwc(float *y, const float *x, int N, int H, int W, int C, int k) {
    s2_ref_maxpool_nhwc_ld(y, x, C, N, H, W, C, k);
}

/* ---- layout changes: a transpose of [R, S] planes into [S, R], tiled 16 x 16 (one
 * in-register transpose per tile with AVX-512, plain loops otherwise); pure copies, so
 * every path gives the same bits. */

#ifdef S2_FAST_X86
// Transposes the 16 x 16 tile of x (row stride ldx) into y (row stride ldy).
static S2_TGT512 void tile16(float *y, int64_t ldy, const float *x, int64_t ldx) {
    __m512 r[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(x + i * ldx);
    s2_tr16x16(r);
    for (int i = 0; i < 16; i++) _mm512_storeu_ps(y + i * ldy, r[i]);
}
#endif

// y [S, R] = x [R, S]^T for rows r0..r1 of one plane (all columns), tiles of 16.
static void transpose_rows(float *y, const float *x, int64_t R, int64_t S, int64_t r0, int64_t r1, bool v) {
    for (int64_t s0 = 0; s0 < S; s0 += 16) {
        int64_t rr = r0;
#ifdef S2_FAST_X86
        if (v && s0 + 16 <= S)
            for (; rr + 16 <= r1; rr += 16) tile16(y + s0 * R + rr, R, x + rr * S + s0, S);
#endif
        for (int64_t r = rr; r < r1; r++)
            for (int64_t c = s0; c < S2_REF_MIN(s0 + 16, S); c++) y[c * R + r] = x[r * S + c];
    }
}

// N planes x [R, S] -> y [S, R], threaded over (plane, block of 64 rows).
static void transpose_planes(float *y, const float *x, int64_t N, int64_t R, int64_t S) {
    int64_t nb = (R + 63) / 64, tasks = N * nb;
    bool v = false;
#ifdef S2_FAST_X86
    v = s2_fast_avx512();
#endif
#pragma omp parallel for schedule(static) if (tasks > 1 && N * R * S > 16384)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t n = t / nb, r0 = (t % nb) * 64;
        transpose_rows(y + n * R * S, x + n * R * S, R, S, r0, S2_REF_MIN(r0 + 64, R), v);
    }
}

// x (N, C, H, W) -> y (N, H, W, C)
void s2_ref_nchw_to_nhwc(float *y, const float *x, int N, int C, int H, int W) {
    transpose_planes(y, x, N, C, (int64_t)H * W);
}

// x (N, H, W, C) -> y (N, C, H, W)
void s2_ref_nhwc_to_nchw(float *y, const float *x, int N, int H, int W, int C) {
    transpose_planes(y, x, N, (int64_t)H * W, C);
}
