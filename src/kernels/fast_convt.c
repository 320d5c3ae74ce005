/* Epilogue of the kernel == stride transposed convolution (see fast.h): t [N][OC*K*K][H*W]
 * (one GEMM row per (oc, i, j), one column per input pixel) is interleaved into NCHW y
 * with bias, optional add and GELU. Letters: N images, OC output channels, H x W input
 * pixels, K kernel = stride, OH = H*K, OW = W*K, KK = K*K, P = OH*OW pixels per plane.
 * Output row (oc, h*K + i) interleaves the K rows (oc, i, j = 0..K-1) of t at input row
 * h; every read and write is contiguous. Threads split output planes. */
#include "kernels/fast.h"
#include "kernels/fast_simd.h"

/* One output row yr [W*K] from the K rows tr[j] + j*HW (W values each at input row h),
 * plain C: yr[w*K + j] = act(t + bias + ar). */
static void zip_row_c(float *yr, const float *tr, int64_t HW, float bias, const float *ar, int act, int W, int K) {
    for (int w = 0; w < W; w++)
        for (int j = 0; j < K; j++) {
            int64_t o = (int64_t)w * K + j;
            float v = tr[j * HW + w] + bias;
            if (ar) v += ar[o];
            yr[o] = act == 1 ? s2_gelu_as(v) : v;
        }
}

#ifdef S2_FAST_X86
// The same for K = 2: 16 pixels of rows j = 0 and 1 interleave into 32 outputs.
static S2_TGT512 void zip_row_k2(float *yr, const float *tr, int64_t HW, float bias, const float *ar, int act,
                                 int W) {
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    const __m512 vb = _mm512_set1_ps(bias);
    int w = 0;
    for (; w + 16 <= W; w += 16) {
        __m512 a = _mm512_loadu_ps(tr + w), b = _mm512_loadu_ps(tr + HW + w);
        __m512 v[2] = {_mm512_add_ps(_mm512_permutex2var_ps(a, lo, b), vb),
                       _mm512_add_ps(_mm512_permutex2var_ps(a, hi, b), vb)};
        for (int u = 0; u < 2; u++) {
            if (ar) v[u] = _mm512_add_ps(v[u], _mm512_loadu_ps(ar + 2 * w + 16 * u));
            if (act == 1) v[u] = s2_gelu512(v[u]);
            _mm512_storeu_ps(yr + 2 * w + 16 * u, v[u]);
        }
    }
    if (w < W) zip_row_c(yr + 2 * w, tr + w, HW, bias, ar ? ar + 2 * w : NULL, act, W - w, 2);
}
#endif

void s2_fast_convt_scatter(float *y, const float *t, const float *b, const float *add,
                           bool add_shared, int act, int N, int OC, int H, int W, int K) {
    int64_t KK = (int64_t)K * K, HW = (int64_t)H * W, P = HW * KK, OW = (int64_t)W * K;
    int64_t planes = (int64_t)N * OC;
    bool v2 = false;
#ifdef S2_FAST_X86
    v2 = K == 2 && s2_fast_avx512();
#endif
#pragma omp parallel for schedule(static) if (planes > 1 && planes * P > 32768)
    for (int64_t p = 0; p < planes; p++) {
        int64_t n = p / OC, oc = p % OC;
        float bias = b ? b[oc] : 0.0f;
        const float *ap = add ? add + ((add_shared ? 0 : n * OC) + oc) * P : NULL;
        const float *tp = t + (n * OC + oc) * KK * HW; // rows (i, j) of this channel
        for (int h = 0; h < H; h++)
            for (int i = 0; i < K; i++) {
                int64_t oy = (int64_t)h * K + i;
                float *yr = y + p * P + oy * OW;
                const float *tr = tp + (int64_t)i * K * HW + (int64_t)h * W, *ar = ap ? ap + oy * OW : NULL;
#ifdef S2_FAST_X86
                if (v2) { zip_row_k2(yr, tr, HW, bias, ar, act, W); continue; }
#endif
                zip_row_c(yr, tr, HW, bias, ar, act, W, K);
            }
    }
    (void)v2;
}
