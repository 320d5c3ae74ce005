/* Private AVX-512 helpers of the fast kernels (src/kernels/fast_*.c only): the target
 * attribute that lets one function use AVX-512 in a library built without -march, and
 * the vector exp / GELU shared by the element-wise kernels and the epilogues. */
#ifndef S2_KERNELS_FAST_SIMD_H
#define S2_KERNELS_FAST_SIMD_H

#include <math.h>
#include <stdint.h>

#define S2_FAST_MINI(a, b) ((a) < (b) ? (a) : (b))

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define S2_FAST_X86 1
#define S2_TGT512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define S2_VINLINE static inline __attribute__((always_inline))

// In-register transpose of a 16 x 16 tile: r[i] (row i) becomes column i.
S2_VINLINE S2_TGT512 void s2_tr16x16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    }
}

// exp(x) for x <= 0 (the GELU tail): n = round(x log2 e), r = x - n ln 2 (two steps),
// degree-6 polynomial, scaled by 2^n with vscalefps (underflows smoothly to 0).
S2_VINLINE S2_TGT512 __m512 s2_exp512_neg(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504089f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

// gelu(x) = x/2 (1 + erf(x/sqrt 2)); erfc(|z|) by Abramowitz & Stegun 7.1.26 and
// 1 + erf(z) = 2 - erfc(|z|) for z >= 0, erfc(|z|) for z < 0 (no cancellation).
S2_VINLINE S2_TGT512 __m512 s2_gelu512(__m512 x) {
    __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
    __m512 az = _mm512_abs_ps(z);
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
                             _mm512_fmadd_ps(az, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    __m512 q = _mm512_mul_ps(_mm512_mul_ps(p, t), s2_exp512_neg(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), az), az)));
    __mmask16 pos = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_GE_OQ);
    __m512 onep = _mm512_mask_sub_ps(q, pos, _mm512_set1_ps(2.0f), q);
    return _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)), onep);
}
#endif

// Scalar twin of s2_gelu512 (plain C paths and loop tails).
static inline float s2_gelu_as(float x) {
    float z = x * 0.70710678118654752f, az = fabsf(z);
    float t = 1.0f / (1.0f + 0.3275911f * az);
    float p = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t +
               0.254829592f) * t;
    float q = p * expf(-az * az);
    return 0.5f * x * (z >= 0.0f ? 2.0f - q : q);
}

#endif
