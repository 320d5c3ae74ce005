/* Attention with few keys: the SAM mask decoder's image -> token attention (4096 image
 * tokens attending to ~8 prompt tokens, head dim 16 or 32), where the flash kernel's
 * 64-key blocks would be mostly padding.
 *
 * Same contract and layout as s2_ref_attention (kernels.h). Letters: B batch, H heads,
 * Nq queries, Nk keys, d head dim (a multiple of 16, at most 64: one to four vectors),
 * D = d / 16 vectors per row, scale = 1/sqrt(d). f32 throughout (also in bf16 mode: the
 * products are tiny), exact two-pass softmax per row.
 *
 * Nk <= 16: 16 queries at a time, transposed so that each vector holds one feature of
 * 16 queries; scores, softmax and p v are then plain vector arithmetic per key, and the
 * result is transposed back. (Few queries against many keys stay with the flash
 * kernel, measured faster there.) Tasks are independent: results do not depend on the
 * thread count. */
#include "backend/dnnl.h"
#include "kernels/fast.h"
#include "kernels/fast_simd.h"

#include <math.h>

enum { SK = 16 /* keys at most */ };

bool s2_small_attention_fits(int64_t Nq, int64_t Nk, int d) {
#ifdef S2_FAST_X86
    return s2_fast_avx512() && d % 16 == 0 && d >= 16 && d <= 64 && Nq > 0 && Nk > 0 && Nk <= SK;
#else
    (void)Nq, (void)Nk, (void)d;
    return false;
#endif
}

#ifdef S2_FAST_X86
/* Few keys: queries i0..i0+15 (n < 16 valid rows) of one (b, h). qt[c] holds feature c
 * of the 16 queries (D*16 vectors); returns nothing, writes o rows. */
static S2_TGT512 void few_keys_block(float *o, int64_t o_ld, const float *q, int64_t q_ld, const float *k,
                                     int64_t k_ld, const float *v, int64_t v_ld, int Nk, int D, int n, float scale) {
    __m512 qt[64], s[SK], r[16];
    for (int c = 0; c < D; c++) { // transpose 16 queries x 16 features, per chunk c
        for (int i = 0; i < 16; i++) r[i] = i < n ? _mm512_loadu_ps(q + i * q_ld + 16 * c) : _mm512_setzero_ps();
        s2_tr16x16(r);
        for (int f = 0; f < 16; f++) qt[16 * c + f] = r[f];
    }
    __m512 m = _mm512_set1_ps(-INFINITY), l = _mm512_setzero_ps();
    for (int j = 0; j < Nk; j++) {
        __m512 acc = _mm512_setzero_ps();
        for (int f = 0; f < 16 * D; f++) acc = _mm512_fmadd_ps(qt[f], _mm512_set1_ps(k[j * k_ld + f]), acc);
        s[j] = _mm512_mul_ps(acc, _mm512_set1_ps(scale));
        m = _mm512_max_ps(m, s[j]);
    }
    for (int j = 0; j < Nk; j++) {
        s[j] = s2_exp512_neg(_mm512_sub_ps(s[j], m));
        l = _mm512_add_ps(l, s[j]);
    }
    __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), l);
    for (int c = 0; c < D; c++) {
        for (int f = 0; f < 16; f++) {
            __m512 acc = _mm512_setzero_ps();
            for (int j = 0; j < Nk; j++) acc = _mm512_fmadd_ps(s[j], _mm512_set1_ps(v[j * v_ld + 16 * c + f]), acc);
            r[f] = _mm512_mul_ps(acc, inv);
        }
        s2_tr16x16(r);
        for (int i = 0; i < n; i++) _mm512_storeu_ps(o + i * o_ld + 16 * c, r[i]);
    }
}

#endif

void s2_small_attention(float *o, int64_t o_ld, const float *q, int64_t q_ld, const float *k, int64_t k_ld,
                        const float *v, int64_t v_ld, int B, int H, int64_t Nq, int64_t Nk, int d) {
#ifdef S2_FAST_X86
    int D = d / 16;
    float scale = 1.0f / sqrtf((float)d);
    int64_t nqb = (Nq + 15) / 16, tasks = (int64_t)B * H * nqb;
#pragma omp parallel for schedule(static) if (tasks > 1 && (double)Nq * Nk * d * B * H > 65536)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t bh = t / nqb, i0 = (t % nqb) * 16, b = bh / H, h = bh % H;
        int n = (int)(Nq - i0 < 16 ? Nq - i0 : 16);
        few_keys_block(o + (b * Nq + i0) * o_ld + h * d, o_ld, q + (b * Nq + i0) * q_ld + h * d, q_ld,
                       k + b * Nk * k_ld + h * d, k_ld, v + b * Nk * v_ld + h * d, v_ld, (int)Nk, D, n, scale);
    }
#else
    (void)o, (void)o_ld, (void)q, (void)q_ld, (void)k, (void)k_ld, (void)v, (void)v_ld;
    (void)B, (void)H, (void)Nq, (void)Nk, (void)d;
#endif
}
