/* Fast GELU, LayerNorm and LayerNorm2d (see fast.h for the numerics). Letters: rows x C
 * for LayerNorm over the last dimension; N images of C channels and HW pixels for
 * LayerNorm2d. Threads split rows (LayerNorm) or pixel blocks (LayerNorm2d). */
#include "kernels/fast.h"
#include "kernels/fast_simd.h"

#include <stdlib.h>
#include <string.h>

enum { GELU_CHUNK = 1 << 14, PIXB = 16 };

// CPU check once: AVX-512 F/BW/DQ/VL + FMA, unless SAM2C_FAST_ISA=0 asks for plain C.
static int detect_isa(void) {
#ifdef S2_FAST_X86
    const char *e = getenv("SAM2C_FAST_ISA");
    if (e && e[0] == '0') return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

bool s2_fast_avx512(void) {
    static int isa = -1; // benign race: every thread computes the same value
    if (__atomic_load_n(&isa, __ATOMIC_RELAXED) < 0) __atomic_store_n(&isa, detect_isa(), __ATOMIC_RELAXED);
    return __atomic_load_n(&isa, __ATOMIC_RELAXED) == 1;
}

/* ================================ GELU ================================ */

#ifdef S2_FAST_X86
// GELU of n values, 16 per step, masked tail.
static S2_TGT512 void gelu_512(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, s2_gelu512(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, k, s2_gelu512(_mm512_maskz_loadu_ps(k, x + i)));
    }
}
#endif

void s2_fast_gelu_serial(float *x, int64_t n) {
#ifdef S2_FAST_X86
    if (s2_fast_avx512()) { gelu_512(x, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) x[i] = s2_gelu_as(x[i]);
}

void s2_fast_gelu(float *x, int64_t n) {
    int64_t nch = (n + GELU_CHUNK - 1) / GELU_CHUNK;
#pragma omp parallel for schedule(static) if (nch > 1)
    for (int64_t c = 0; c < nch; c++) {
        int64_t i0 = c * GELU_CHUNK;
        s2_fast_gelu_serial(x + i0, S2_FAST_MINI(GELU_CHUNK, n - i0));
    }
}

/* ============================== LayerNorm ============================== */

// Normalises one row of C values with f32 two-pass statistics (plain C).
static void ln_row_c(float *y, const float *x, const float *g, const float *b, int64_t C, float eps) {
    float s = 0.0f, v = 0.0f;
    for (int64_t c = 0; c < C; c++) s += x[c];
    float mean = s / (float)C;
    for (int64_t c = 0; c < C; c++) v += (x[c] - mean) * (x[c] - mean);
    float rstd = 1.0f / sqrtf(v / (float)C + eps);
    for (int64_t c = 0; c < C; c++) {
        float o = (x[c] - mean) * rstd;
        y[c] = (g ? o * g[c] : o) + (b ? b[c] : 0.0f);
    }
}

#ifdef S2_FAST_X86
// The same with 16 channels per step (masked tail).
static S2_TGT512 void ln_row_512(float *y, const float *x, const float *g, const float *b, int64_t C,
                                 float eps) {
    __m512 s = _mm512_setzero_ps(), v = _mm512_setzero_ps();
    int64_t c;
    for (c = 0; c + 16 <= C; c += 16) s = _mm512_add_ps(s, _mm512_loadu_ps(x + c));
    __mmask16 kt = (__mmask16)((1u << (C - c)) - 1);
    if (c < C) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(kt, x + c));
    __m512 mean = _mm512_set1_ps(_mm512_reduce_add_ps(s) / (float)C);
    for (c = 0; c + 16 <= C; c += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + c), mean);
        v = _mm512_fmadd_ps(d, d, v);
    }
    if (c < C) {
        __m512 d = _mm512_maskz_sub_ps(kt, _mm512_maskz_loadu_ps(kt, x + c), mean);
        v = _mm512_fmadd_ps(d, d, v);
    }
    __m512 rstd = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(v) / (float)C + eps));
    for (c = 0; c < C; c += 16) {
        __mmask16 k = c + 16 <= C ? (__mmask16)0xffff : kt;
        __m512 o = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + c), mean), rstd);
        if (g) o = _mm512_mul_ps(o, _mm512_maskz_loadu_ps(k, g + c));
        if (b) o = _mm512_add_ps(o, _mm512_maskz_loadu_ps(k, b + c));
        _mm512_mask_storeu_ps(y + c, k, o);
    }
}
#endif

void s2_fast_layernorm(float *y, const float *x, const float *gamma, const float *beta,
                       int64_t rows, int64_t C, float eps) {
    bool v = false;
#ifdef S2_FAST_X86
    v = s2_fast_avx512();
#endif
#pragma omp parallel for schedule(static) if (rows * C > 32768)
    for (int64_t r = 0; r < rows; r++) {
#ifdef S2_FAST_X86
        if (v) { ln_row_512(y + r * C, x + r * C, gamma, beta, C, eps); continue; }
#endif
        ln_row_c(y + r * C, x + r * C, gamma, beta, C, eps);
    }
    (void)v;
}

// LayerNorm2d of np <= PIXB pixels at x (channel stride HW), plain C.
static void ln2d_block_c(float *y, const float *x, const float *g, const float *b, int C, int64_t HW,
                         int np, float eps) {
    float mean[PIXB] = {0}, var[PIXB] = {0};
    for (int c = 0; c < C; c++)
        for (int p = 0; p < np; p++) mean[p] += x[c * HW + p];
    for (int p = 0; p < np; p++) mean[p] /= (float)C;
    for (int c = 0; c < C; c++)
        for (int p = 0; p < np; p++) var[p] += (x[c * HW + p] - mean[p]) * (x[c * HW + p] - mean[p]);
    for (int p = 0; p < np; p++) var[p] = 1.0f / sqrtf(var[p] / (float)C + eps);
    for (int c = 0; c < C; c++)
        for (int p = 0; p < np; p++) {
            float o = (x[c * HW + p] - mean[p]) * var[p];
            y[c * HW + p] = (g ? o * g[c] : o) + (b ? b[c] : 0.0f);
        }
}

#ifdef S2_FAST_X86
// The same for one vector of 16 pixels (np < 16: masked).
static S2_TGT512 void ln2d_block_512(float *y, const float *x, const float *g, const float *b, int C,
                                     int64_t HW, int np, float eps) {
    __mmask16 k = np >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << np) - 1);
    __m512 s = _mm512_setzero_ps(), v = _mm512_setzero_ps(), inv = _mm512_set1_ps(1.0f / (float)C);
    for (int c = 0; c < C; c++) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(k, x + c * HW));
    __m512 mean = _mm512_div_ps(s, _mm512_set1_ps((float)C));
    for (int c = 0; c < C; c++) {
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + c * HW), mean);
        v = _mm512_fmadd_ps(d, d, v);
    }
    __m512 rstd = _mm512_div_ps(_mm512_set1_ps(1.0f),
                                _mm512_sqrt_ps(_mm512_fmadd_ps(v, inv, _mm512_set1_ps(eps))));
    for (int c = 0; c < C; c++) {
        __m512 o = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + c * HW), mean), rstd);
        if (g) o = _mm512_mul_ps(o, _mm512_set1_ps(g[c]));
        if (b) o = _mm512_add_ps(o, _mm512_set1_ps(b[c]));
        _mm512_mask_storeu_ps(y + c * HW, k, o);
    }
}
#endif

void s2_fast_layernorm2d(float *y, const float *x, const float *gamma, const float *beta,
                         int N, int C, int64_t HW, float eps) {
    int64_t nblk = (HW + PIXB - 1) / PIXB, tasks = (int64_t)N * nblk;
    bool v = false;
#ifdef S2_FAST_X86
    v = s2_fast_avx512();
#endif
#pragma omp parallel for schedule(static) if (tasks * C > 32768)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t n = t / nblk, p0 = (t % nblk) * PIXB;
        int np = (int)S2_FAST_MINI((int64_t)PIXB, HW - p0);
        int64_t off = n * C * HW + p0;
#ifdef S2_FAST_X86
        if (v) { ln2d_block_512(y + off, x + off, gamma, beta, C, HW, np, eps); continue; }
#endif
        ln2d_block_c(y + off, x + off, gamma, beta, C, HW, np, eps);
    }
    (void)v;
}
