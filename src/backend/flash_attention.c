/* Flash-style scaled dot-product attention: softmax(q k^T / sqrt(d)) v without any
 * score matrix larger than one (query block x key block) tile per thread.
 *
 * Same contract and layout as s2_ref_attention (kernels.h). Letters: B batch, H heads,
 * Nq queries, Nk keys, d head dim, dp = d rounded up to 16 (one AVX-512 vector), d2 =
 * ceil(d/2) bf16 pairs; QB query block (one task), KB key block, BH = B*H.
 *
 * Algorithm (per task = (b, h, block of QB queries)), online softmax over key blocks:
 *   s    = (q * scale) k_blk^T                 (QB, KB), f32 accumulation
 *   m'   = max(m, rowmax s);  c = exp(m - m')
 *   p    = exp(s - m');       l = l c + rowsum p
 *   acc  = acc c + p v_blk                     (QB, dp)
 * and o = acc / l at the end. K and V are packed (K transposed per key block so that 16
 * keys form one vector, V padded to dp columns; in bf16 mode both as bf16 pairs for
 * vdpbf16ps): once per call for all heads when a head has several query blocks (global
 * attention, memory attention), else by the task itself into thread memory (windows,
 * the decoder's token attention), so small windows need no copy of all K/V. Tasks are
 * independent, so the result does not depend on the thread count.
 *
 * Paths: AVX-512F (f32) and AVX512-BF16 (bf16 products, f32 accumulation), chosen at
 * run time from the CPU; plain C (f32) elsewhere. */
#include "backend/dnnl.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define S2_FA_X86 1
#define S2_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define S2_AVX512BF __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx512bf16")))
#define S2_INLINE static inline __attribute__((always_inline))
#endif

enum { QB = 128, KB = 64, MR_QK = 8, MR_PV = 4 };

/* Sizes of one call's packed operands and per-thread tiles. */
typedef struct fa_dims {
    int64_t BH, Nq, Nk, nkb; /* nkb key blocks of KB */
    int d, dp, d2;
    bool bf16;
    size_t esz;              /* element size of the packed K/V (4 or 2) */
    size_t k_blk, v_blk;     /* elements of one packed key block of K / of V */
    size_t bh_bytes;         /* packed K and V of one (b, h) */
    bool local;              /* one query block per head: each task packs its own head's
                                K/V into thread memory (windowed attention: no copy of all
                                K/V), else K/V of every head are packed once up front */
    size_t thr_bytes;        /* per-thread tiles (+ one head's K/V when local) */
} fa_dims;

static int64_t rup(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

/* f32 -> bf16 with round to nearest even (NaN kept quiet), inlined for the packers. */
static inline uint16_t bf16_rne(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Fills the packing geometry of one call. */
static fa_dims fa_dims_of(int B, int H, int64_t Nq, int64_t Nk, int d, bool bf16) {
    fa_dims g = {.BH = (int64_t)B * H, .Nq = Nq, .Nk = Nk, .nkb = (Nk + KB - 1) / KB, .d = d,
                 .dp = (int)rup(d, 16), .d2 = (d + 1) / 2, .bf16 = bf16};
    g.esz = bf16 ? 2 : 4;
    g.k_blk = bf16 ? (size_t)g.d2 * KB * 2 : (size_t)d * KB;   // [d2][KB][2] or [d][KB]
    g.v_blk = (size_t)KB * g.dp;                                // [KB/2][dp][2] or [KB][dp]
    size_t q = bf16 ? (size_t)QB * g.d2 * 4 : (size_t)QB * d * 4; // packed queries
    size_t s = (size_t)QB * KB * 4, pb = (size_t)QB * KB * 2;     // scores, bf16 probs
    size_t acc = (size_t)QB * g.dp * 4, ml = (size_t)QB * 4 * 3;  // acc, m, l, corr
    g.bh_bytes = (size_t)g.nkb * (g.k_blk + g.v_blk) * g.esz;
    g.local = Nq <= QB;
    g.thr_bytes = (size_t)rup((int64_t)(q + s + pb + acc + ml), 64) + 256 + (g.local ? g.bh_bytes : 0);
    return g;
}

/* Bytes of workspace s2_flash_attention needs for these sizes and nthr threads. */
size_t s2_flash_attention_ws(int B, int H, int64_t Nq, int64_t Nk, int d, bool bf16, int nthr) {
    if (B <= 0 || H <= 0 || Nq <= 0 || Nk <= 0 || d <= 0) return 0;
    bf16 = bf16 && s2_flash_attention_isa() == 2;
    fa_dims g = fa_dims_of(B, H, Nq, Nk, d, bf16);
    size_t kv = g.local ? 0 : (size_t)g.BH * g.bh_bytes;
    return (size_t)rup((int64_t)kv, 64) + (size_t)(nthr > 0 ? nthr : 1) * g.thr_bytes + 64;
}

/* ============================== packing ============================== */

enum { D_MAX = 512 }; /* head dims above this run the reference kernel */

#ifdef S2_FA_X86
/* dst[0..n2x2) = bf16(src[0..n) * scale), zero past n: 32 values per step, masked
 * loads and stores only for the tail (they are slow on some cores). */
static S2_AVX512BF void cvt_row_bf16_512(uint16_t *dst, const float *src, int n, int n2x2, float scale) {
    __m512 sc = _mm512_set1_ps(scale);
    int c = 0;
    for (; c + 32 <= n; c += 32) {
        __m512bh h = _mm512_cvtne2ps_pbh(_mm512_mul_ps(_mm512_loadu_ps(src + c + 16), sc),
                                         _mm512_mul_ps(_mm512_loadu_ps(src + c), sc));
        _mm512_storeu_si512(dst + c, (__m512i)h);
    }
    for (; c < n2x2; c += 32) {
        int r0 = S2_MAX(0, S2_MIN(16, n - c)), r1 = S2_MAX(0, S2_MIN(16, n - c - 16));
        __m512 lo = _mm512_maskz_loadu_ps((__mmask16)((1u << r0) - 1), src + c);
        __m512 hi = _mm512_maskz_loadu_ps((__mmask16)((1u << r1) - 1), src + c + 16);
        __m512bh h = _mm512_cvtne2ps_pbh(_mm512_mul_ps(hi, sc), _mm512_mul_ps(lo, sc));
        int w = S2_MIN(32, n2x2 - c);
        _mm512_mask_storeu_epi16(dst + c, (__mmask32)(w == 32 ? 0xffffffffu : (1u << w) - 1), (__m512i)h);
    }
}

/* dst[c][2] = (bf16(a[c]), bf16(b[c])) for c < dp (b NULL = zeros), a/b hold d values. */
static S2_AVX512BF void interleave_rows_bf16_512(uint16_t *dst, const float *a, const float *b, int d, int dp) {
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                         23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int c = 0; c < dp; c += 16) {
        __m512 va, vb = _mm512_setzero_ps();
        if (c + 16 <= d) {
            va = _mm512_loadu_ps(a + c);
            if (b) vb = _mm512_loadu_ps(b + c);
        } else {
            __mmask16 m = (__mmask16)(d > c ? (1u << (d - c)) - 1 : 0);
            va = _mm512_maskz_loadu_ps(m, a + c);
            if (b) vb = _mm512_maskz_loadu_ps(m, b + c);
        }
        __m512i h = (__m512i)_mm512_cvtne2ps_pbh(vb, va);
        _mm512_storeu_si512(dst + 2 * c, _mm512_permutexvar_epi16(idx, h));
    }
}
#endif

/* dst[0..n2x2) = bf16(src * scale), zero past n (vector path when the CPU has it). */
static void cvt_row_bf16(uint16_t *dst, const float *src, int n, int n2x2, float scale, bool x512bf) {
#ifdef S2_FA_X86
    if (x512bf) { cvt_row_bf16_512(dst, src, n, n2x2, scale); return; }
#endif
    for (int c = 0; c < n2x2; c++) dst[c] = c < n ? bf16_rne(src[c] * scale) : 0;
}

/* K block kb of one head as kt[c][j] (f32) or kt[c2][j] pairs (bf16, one uint32 per
 * channel pair), zero-padded past nj keys: a transpose of 32-bit words. */
static void pack_k_block(void *dst, const fa_dims *g, const float *k, int64_t k_ld, int64_t kb, bool x512bf) {
    int64_t j0 = kb * KB, nj = S2_MIN((int64_t)KB, g->Nk - j0);
    if (!g->bf16) {
        float *kt = dst; // (d, KB)
        for (int c = 0; c < g->d; c++) {
            for (int64_t j = 0; j < nj; j++) kt[(int64_t)c * KB + j] = k[(j0 + j) * k_ld + c];
            for (int64_t j = nj; j < KB; j++) kt[(int64_t)c * KB + j] = 0.0f;
        }
        return;
    }
    uint32_t rows[KB * (D_MAX / 2)]; // (nj, d2) bf16 pairs of each key
    for (int64_t j = 0; j < nj; j++)
        cvt_row_bf16((uint16_t *)(rows + j * g->d2), k + (j0 + j) * k_ld, g->d, 2 * g->d2, 1.0f, x512bf);
    uint32_t *kt = dst; // (d2, KB)
    for (int c = 0; c < g->d2; c++) {
        for (int64_t j = 0; j < nj; j++) kt[(int64_t)c * KB + j] = rows[j * g->d2 + c];
        for (int64_t j = nj; j < KB; j++) kt[(int64_t)c * KB + j] = 0;
    }
}

/* V block kb as vp[j][c] (f32, dp columns) or vp[j/2][c][j%2] (bf16), zero-padded. */
static void pack_v_block(void *dst, const fa_dims *g, const float *v, int64_t v_ld, int64_t kb, bool x512bf) {
    int64_t j0 = kb * KB, nj = S2_MIN((int64_t)KB, g->Nk - j0);
    if (!g->bf16) {
        float *vp = dst; // (KB, dp)
        for (int64_t j = 0; j < KB; j++) {
            int n = j < nj ? g->d : 0;
            if (n) memcpy(vp + j * g->dp, v + (j0 + j) * v_ld, (size_t)n * sizeof(float));
            memset(vp + j * g->dp + n, 0, (size_t)(g->dp - n) * sizeof(float));
        }
        return;
    }
    uint16_t *vp = dst; // (KB/2, dp, 2)
    for (int64_t j = 0; j < KB; j += 2) {
        uint16_t *o = vp + (j / 2) * g->dp * 2;
        const float *a = j < nj ? v + (j0 + j) * v_ld : NULL, *b = j + 1 < nj ? v + (j0 + j + 1) * v_ld : NULL;
        if (!a) { memset(o, 0, (size_t)g->dp * 4); continue; }
#ifdef S2_FA_X86
        if (x512bf) { interleave_rows_bf16_512(o, a, b, g->d, g->dp); continue; }
#endif
        for (int c = 0; c < g->dp; c++) {
            o[2 * c] = c < g->d ? bf16_rne(a[c]) : 0;
            o[2 * c + 1] = (b && c < g->d) ? bf16_rne(b[c]) : 0;
        }
    }
}

/* Packs every key block of one head (k, v at its first key) into dst. */
static void pack_head(uint8_t *dst, const fa_dims *g, const float *k, int64_t k_ld, const float *v,
                      int64_t v_ld, bool x512bf) {
    size_t kbytes = g->k_blk * g->esz, vbytes = g->v_blk * g->esz;
    for (int64_t kb = 0; kb < g->nkb; kb++) {
        uint8_t *blk = dst + (size_t)kb * (kbytes + vbytes);
        pack_k_block(blk, g, k, k_ld, kb, x512bf);
        pack_v_block(blk + kbytes, g, v, v_ld, kb, x512bf);
    }
}

/* Packs K and V of every (b, h) and key block into kv (threads over blocks). */
static void pack_kv(uint8_t *kv, const fa_dims *g, const float *k, int64_t k_ld,
                    const float *v, int64_t v_ld, int H, bool x512bf) {
    int64_t n = g->BH * g->nkb;
    size_t kbytes = g->k_blk * g->esz, vbytes = g->v_blk * g->esz;
#pragma omp parallel for schedule(static) if (n > 1)
    for (int64_t t = 0; t < n; t++) {
        int64_t bh = t / g->nkb, kb = t % g->nkb, b = bh / H, h = bh % H;
        uint8_t *blk = kv + (size_t)t * (kbytes + vbytes);
        pack_k_block(blk, g, k + b * g->Nk * k_ld + h * g->d, k_ld, kb, x512bf);
        pack_v_block(blk + kbytes, g, v + b * g->Nk * v_ld + h * g->d, v_ld, kb, x512bf);
    }
}

/* ============================== one task ============================== */

/* Per-thread tiles carved from the workspace. */
typedef struct fa_tile {
    void *q;        /* (QB, d) f32 scaled queries, or (QB, d2) bf16 pairs */
    float *s;       /* (QB, KB) scores, then probabilities */
    uint16_t *pb;   /* (QB, KB) probabilities in bf16 */
    float *acc;     /* (QB, dp) unnormalised output */
    float *m, *l, *corr; /* (QB) running max, running sum, rescale of this block */
    uint8_t *kv;    /* one head's packed K/V (local mode) */
} fa_tile;

/* Carves thread ithr's tiles. */
static fa_tile fa_tile_at(uint8_t *base, const fa_dims *g, int ithr) {
    uint8_t *p = base + (size_t)ithr * g->thr_bytes;
    p = (uint8_t *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
    fa_tile t;
    t.q = p;
    p += g->bf16 ? (size_t)QB * g->d2 * 4 : (size_t)QB * g->d * 4;
    t.s = (float *)p;
    p += (size_t)QB * KB * 4;
    t.pb = (uint16_t *)p;
    p += (size_t)QB * KB * 2;
    t.acc = (float *)p;
    p += (size_t)QB * g->dp * 4;
    t.m = (float *)p;
    t.l = t.m + QB;
    t.corr = t.l + QB;
    t.kv = (uint8_t *)rup((int64_t)(uintptr_t)(t.corr + QB), 64);
    return t;
}

/* Loads nq query rows (scaled) into the tile, zero rows up to the rounded count. */
static void load_q(const fa_tile *t, const fa_dims *g, const float *q, int64_t q_ld,
                   int64_t nq, int64_t nq_pad, float scale, bool x512bf) {
    if (!g->bf16) {
        float *qs = t->q; // (QB, d)
        for (int64_t i = 0; i < nq_pad; i++)
            for (int c = 0; c < g->d; c++) qs[i * g->d + c] = i < nq ? q[i * q_ld + c] * scale : 0.0f;
        return;
    }
    uint16_t *qb = t->q; // (QB, d2, 2)
    for (int64_t i = 0; i < nq_pad; i++) {
        if (i < nq) cvt_row_bf16(qb + i * 2 * g->d2, q + i * q_ld, g->d, 2 * g->d2, scale, x512bf);
        else memset(qb + i * 2 * g->d2, 0, (size_t)g->d2 * 4);
    }
}

/* Online-softmax update of row i for the block's nj valid scores (s row -> p row). */
static void softmax_row_update(const fa_tile *t, int64_t i, int64_t nj) {
    float *s = t->s + i * KB, mx = t->m[i];
    for (int64_t j = 0; j < nj; j++) mx = s[j] > mx ? s[j] : mx;
    float c = expf(t->m[i] - mx), sum = 0.0f; // exp(-inf) = 0 on the first block
    for (int64_t j = 0; j < nj; j++) {
        s[j] = expf(s[j] - mx);
        sum += s[j];
    }
    for (int64_t j = nj; j < KB; j++) s[j] = 0.0f;
    t->l[i] = t->l[i] * c + sum;
    t->m[i] = mx;
    t->corr[i] = c;
}

/* Plain C block step (f32): scores, softmax update, acc = acc c + p v. */
static void block_step_c(const fa_tile *t, const fa_dims *g, const float *kt, const float *vp,
                         int64_t nq, int64_t nj) {
    const float *qs = t->q;
    for (int64_t i = 0; i < nq; i++) {
        float *s = t->s + i * KB;
        for (int64_t j = 0; j < KB; j++) s[j] = 0.0f;
        for (int c = 0; c < g->d; c++) {
            float a = qs[i * g->d + c];
            const float *kr = kt + (int64_t)c * KB;
            for (int64_t j = 0; j < KB; j++) s[j] += a * kr[j];
        }
        softmax_row_update(t, i, nj);
        float *acc = t->acc + i * g->dp;
        for (int c = 0; c < g->dp; c++) acc[c] *= t->corr[i];
        for (int64_t j = 0; j < nj; j++) {
            float p = s[j];
            const float *vr = vp + j * g->dp;
            for (int c = 0; c < g->dp; c++) acc[c] += p * vr[c];
        }
    }
}

#ifdef S2_FA_X86
/* exp(x) for x <= 0 (arguments below -87 flush towards 0): Cody-Waite reduction and a
 * degree-6 Taylor polynomial, about 1 ulp. */
S2_INLINE S2_AVX512 __m512 exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
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

/* s[r][32 strip] = q rows (8) . kt strip, f32: 16 accumulators, d steps. */
S2_INLINE S2_AVX512 void qk_8x32_f32(float *s, const float *qs, int d, const float *kt) {
    __m512 a[MR_QK][2];
#pragma GCC unroll 8
    for (int r = 0; r < MR_QK; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
    for (int c = 0; c < d; c++) {
        __m512 k0 = _mm512_load_ps(kt + (int64_t)c * KB), k1 = _mm512_load_ps(kt + (int64_t)c * KB + 16);
#pragma GCC unroll 8
        for (int r = 0; r < MR_QK; r++) {
            __m512 b = _mm512_set1_ps(qs[(int64_t)r * d + c]);
            a[r][0] = _mm512_fmadd_ps(b, k0, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(b, k1, a[r][1]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR_QK; r++) {
        _mm512_store_ps(s + (int64_t)r * KB, a[r][0]);
        _mm512_store_ps(s + (int64_t)r * KB + 16, a[r][1]);
    }
}

/* Same with bf16 pairs (vdpbf16ps): d2 steps of two channels. */
S2_INLINE S2_AVX512BF void qk_8x32_bf16(float *s, const uint32_t *qb, int d2, const uint16_t *kt) {
    __m512 a[MR_QK][2];
#pragma GCC unroll 8
    for (int r = 0; r < MR_QK; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
    for (int c = 0; c < d2; c++) {
        __m512bh k0 = (__m512bh)_mm512_load_si512(kt + (int64_t)c * KB * 2);
        __m512bh k1 = (__m512bh)_mm512_load_si512(kt + (int64_t)c * KB * 2 + 32);
#pragma GCC unroll 8
        for (int r = 0; r < MR_QK; r++) {
            __m512bh b = (__m512bh)_mm512_set1_epi32((int)qb[(int64_t)r * d2 + c]);
            a[r][0] = _mm512_dpbf16_ps(a[r][0], b, k0);
            a[r][1] = _mm512_dpbf16_ps(a[r][1], b, k1);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR_QK; r++) {
        _mm512_store_ps(s + (int64_t)r * KB, a[r][0]);
        _mm512_store_ps(s + (int64_t)r * KB + 16, a[r][1]);
    }
}

/* Online softmax of row i over nj valid scores (vectors of 16): p written back into s,
 * zero past nj; running max, sum and this block's rescale factor updated. */
S2_INLINE S2_AVX512 void softmax_row_512(const fa_tile *t, int64_t i, int64_t nj) {
    float *s = t->s + i * KB;
    __m512 mv = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < KB; j += 16) {
        __mmask16 k = nj - j >= 16 ? 0xffff : (nj > j ? (__mmask16)((1u << (nj - j)) - 1) : 0);
        mv = _mm512_mask_max_ps(mv, k, mv, _mm512_load_ps(s + j));
    }
    float mx = _mm512_reduce_max_ps(mv);
    mx = mx > t->m[i] ? mx : t->m[i];
    __m512 m = _mm512_set1_ps(mx), sum = _mm512_setzero_ps();
    for (int j = 0; j < KB; j += 16) {
        __mmask16 k = nj - j >= 16 ? 0xffff : (nj > j ? (__mmask16)((1u << (nj - j)) - 1) : 0);
        __m512 p = _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_load_ps(s + j), m)));
        sum = _mm512_add_ps(sum, p);
        _mm512_store_ps(s + j, p);
    }
    float c = expf(t->m[i] - mx);
    t->l[i] = t->l[i] * c + _mm512_reduce_add_ps(sum);
    t->m[i] = mx;
    t->corr[i] = c;
}

/* Row i of p in bf16 (round to nearest even) for the bf16 p v product. */
S2_INLINE S2_AVX512BF void p_row_bf16(const fa_tile *t, int64_t i) {
    const float *s = t->s + i * KB;
    for (int j = 0; j < KB; j += 32) {
        __m512bh h = _mm512_cvtne2ps_pbh(_mm512_load_ps(s + j + 16), _mm512_load_ps(s + j));
        _mm512_store_si512(t->pb + i * KB + j, (__m512i)h);
    }
}

/* acc rows r0..r0+3, column vectors cv..cv+NV: acc = acc corr + p v over nj keys (f32). */
S2_INLINE S2_AVX512 void pv_4xN_f32(const fa_tile *t, int dp, int64_t r0, int cv,
                                    const float *vp, int64_t nj, const int NV) {
    __m512 a[MR_PV][6];
#pragma GCC unroll 4
    for (int r = 0; r < MR_PV; r++) {
        __m512 c = _mm512_set1_ps(t->corr[r0 + r]);
#pragma GCC unroll 6
        for (int v = 0; v < NV; v++)
            a[r][v] = _mm512_mul_ps(c, _mm512_load_ps(t->acc + (r0 + r) * dp + (cv + v) * 16));
    }
    const float *p = t->s + r0 * KB;
    for (int64_t j = 0; j < nj; j++) {
        __m512 vv[6];
#pragma GCC unroll 6
        for (int v = 0; v < NV; v++) vv[v] = _mm512_load_ps(vp + j * dp + (cv + v) * 16);
#pragma GCC unroll 4
        for (int r = 0; r < MR_PV; r++) {
            __m512 b = _mm512_set1_ps(p[r * KB + j]);
#pragma GCC unroll 6
            for (int v = 0; v < NV; v++) a[r][v] = _mm512_fmadd_ps(b, vv[v], a[r][v]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < MR_PV; r++)
#pragma GCC unroll 6
        for (int v = 0; v < NV; v++) _mm512_store_ps(t->acc + (r0 + r) * dp + (cv + v) * 16, a[r][v]);
}

/* Same with bf16 pairs of keys (vdpbf16ps): nj2 = ceil(nj/2) steps. */
S2_INLINE S2_AVX512BF void pv_4xN_bf16(const fa_tile *t, int dp, int64_t r0, int cv,
                                       const uint16_t *vp, int64_t nj2, const int NV) {
    __m512 a[MR_PV][6];
#pragma GCC unroll 4
    for (int r = 0; r < MR_PV; r++) {
        __m512 c = _mm512_set1_ps(t->corr[r0 + r]);
#pragma GCC unroll 6
        for (int v = 0; v < NV; v++)
            a[r][v] = _mm512_mul_ps(c, _mm512_load_ps(t->acc + (r0 + r) * dp + (cv + v) * 16));
    }
    const uint32_t *p = (const uint32_t *)(t->pb + r0 * KB); // pairs of probabilities
    for (int64_t j = 0; j < nj2; j++) {
        __m512bh vv[6];
#pragma GCC unroll 6
        for (int v = 0; v < NV; v++)
            vv[v] = (__m512bh)_mm512_load_si512(vp + (j * dp + (cv + v) * 16) * 2);
#pragma GCC unroll 4
        for (int r = 0; r < MR_PV; r++) {
            __m512bh b = (__m512bh)_mm512_set1_epi32((int)p[r * (KB / 2) + j]);
#pragma GCC unroll 6
            for (int v = 0; v < NV; v++) a[r][v] = _mm512_dpbf16_ps(a[r][v], b, vv[v]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < MR_PV; r++)
#pragma GCC unroll 6
        for (int v = 0; v < NV; v++) _mm512_store_ps(t->acc + (r0 + r) * dp + (cv + v) * 16, a[r][v]);
}

/* p v over column chunks of 1..6 vectors with the unrolled f32 kernel. */
static S2_AVX512 void pv_rows_f32(const fa_tile *t, const fa_dims *g, int64_t r0, const float *v, int64_t nj) {
    int nvec = g->dp / 16;
    for (int cv = 0; cv < nvec; cv += 6) {
        switch (S2_MIN(6, nvec - cv)) {
        case 1: pv_4xN_f32(t, g->dp, r0, cv, v, nj, 1); break;
        case 2: pv_4xN_f32(t, g->dp, r0, cv, v, nj, 2); break;
        case 3: pv_4xN_f32(t, g->dp, r0, cv, v, nj, 3); break;
        case 4: pv_4xN_f32(t, g->dp, r0, cv, v, nj, 4); break;
        case 5: pv_4xN_f32(t, g->dp, r0, cv, v, nj, 5); break;
        default: pv_4xN_f32(t, g->dp, r0, cv, v, nj, 6); break;
        }
    }
}

/* Same with the bf16 kernel over ceil(nj/2) key pairs. */
static S2_AVX512BF void pv_rows_bf16(const fa_tile *t, const fa_dims *g, int64_t r0, const uint16_t *v,
                                     int64_t nj) {
    int nvec = g->dp / 16;
    int64_t n2 = (nj + 1) / 2;
    for (int cv = 0; cv < nvec; cv += 6) {
        switch (S2_MIN(6, nvec - cv)) {
        case 1: pv_4xN_bf16(t, g->dp, r0, cv, v, n2, 1); break;
        case 2: pv_4xN_bf16(t, g->dp, r0, cv, v, n2, 2); break;
        case 3: pv_4xN_bf16(t, g->dp, r0, cv, v, n2, 3); break;
        case 4: pv_4xN_bf16(t, g->dp, r0, cv, v, n2, 4); break;
        case 5: pv_4xN_bf16(t, g->dp, r0, cv, v, n2, 5); break;
        default: pv_4xN_bf16(t, g->dp, r0, cv, v, n2, 6); break;
        }
    }
}

/* AVX-512 f32 block step: 8-row score strips, row softmax, 4-row p v accumulation. */
static S2_AVX512 void block_step_f32(const fa_tile *t, const fa_dims *g, const float *kt, const float *vp,
                                     int64_t nq_pad, int64_t nj) {
    int strips = (int)((nj + 31) / 32);
    for (int64_t r = 0; r < nq_pad; r += MR_QK)
        for (int st = 0; st < strips; st++)
            qk_8x32_f32(t->s + r * KB + st * 32, (const float *)t->q + r * g->d, g->d, kt + st * 32);
    for (int64_t i = 0; i < nq_pad; i++) softmax_row_512(t, i, nj);
    for (int64_t r = 0; r < nq_pad; r += MR_PV) pv_rows_f32(t, g, r, vp, nj);
}

/* AVX512-BF16 block step: the same with bf16 products (f32 scores and softmax). */
static S2_AVX512BF void block_step_bf16(const fa_tile *t, const fa_dims *g, const uint16_t *kt,
                                        const uint16_t *vp, int64_t nq_pad, int64_t nj) {
    int strips = (int)((nj + 31) / 32);
    for (int64_t r = 0; r < nq_pad; r += MR_QK)
        for (int st = 0; st < strips; st++)
            qk_8x32_bf16(t->s + r * KB + st * 32, (const uint32_t *)t->q + r * g->d2, g->d2, kt + st * 64);
    for (int64_t i = 0; i < nq_pad; i++) {
        softmax_row_512(t, i, nj);
        p_row_bf16(t, i);
    }
    for (int64_t r = 0; r < nq_pad; r += MR_PV) pv_rows_bf16(t, g, r, vp, nj);
}
#endif

/* Runs one (b, h, query block) task against every packed key block. */
static void run_task(const fa_tile *t, const fa_dims *g, const uint8_t *kv_bh, const float *q,
                     int64_t q_ld, float *o, int64_t o_ld, int64_t nq, float scale, bool x512) {
    int64_t nq_pad = rup(nq, MR_QK);
    load_q(t, g, q, q_ld, nq, nq_pad, scale, x512 && g->bf16);
    for (int64_t i = 0; i < nq_pad; i++) t->m[i] = -INFINITY, t->l[i] = 0.0f;
    memset(t->acc, 0, (size_t)nq_pad * g->dp * sizeof(float));
    size_t kbytes = g->k_blk * g->esz, vbytes = g->v_blk * g->esz;
    for (int64_t kb = 0; kb < g->nkb; kb++) {
        const uint8_t *blk = kv_bh + (size_t)kb * (kbytes + vbytes);
        int64_t nj = S2_MIN((int64_t)KB, g->Nk - kb * KB);
#ifdef S2_FA_X86
        if (x512 && g->bf16) {
            block_step_bf16(t, g, (const uint16_t *)blk, (const uint16_t *)(blk + kbytes), nq_pad, nj);
            continue;
        }
        if (x512) {
            block_step_f32(t, g, (const float *)blk, (const float *)(blk + kbytes), nq_pad, nj);
            continue;
        }
#endif
        block_step_c(t, g, (const float *)blk, (const float *)(blk + kbytes), nq, nj);
    }
    for (int64_t i = 0; i < nq; i++) {
        float inv = 1.0f / t->l[i];
        for (int c = 0; c < g->d; c++) o[i * o_ld + c] = t->acc[i * g->dp + c] * inv;
    }
}

/* Which kernels this CPU runs: 0 plain C, 1 AVX-512F, 2 AVX-512F + BF16, capped by the
 * environment variable SAM2C_FLASH_ISA (0, 1, 2) for tests and comparisons. */
int s2_flash_attention_isa(void) {
    int isa = 0;
#ifdef S2_FA_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        isa = __builtin_cpu_supports("avx512bf16") ? 2 : 1;
#endif
    const char *cap = getenv("SAM2C_FLASH_ISA");
    if (cap && cap[0] >= '0' && cap[0] <= '2' && !cap[1] && cap[0] - '0' < isa) isa = cap[0] - '0';
    return isa;
}

// ref: torch.nn.functional.scaled_dot_product_attention (no mask, no dropout)
void s2_flash_attention(float *o, int64_t o_ld, const float *q, int64_t q_ld, const float *k,
                        int64_t k_ld, const float *v, int64_t v_ld, int B, int H, int64_t Nq,
                        int64_t Nk, int d, bool bf16, void *ws, size_t ws_bytes) {
    if (B <= 0 || H <= 0 || Nq <= 0 || d <= 0) return;
    int isa = s2_flash_attention_isa(), nthr = omp_get_max_threads();
    if (Nk <= 0 || d > D_MAX || !ws || ws_bytes < s2_flash_attention_ws(B, H, Nq, Nk, d, bf16, nthr)) {
        s2_ref_attention(o, o_ld, q, q_ld, k, k_ld, v, v_ld, B, H, Nq, Nk, d);
        return;
    }
    fa_dims g = fa_dims_of(B, H, Nq, Nk, d, bf16 && isa == 2);
    bool cvt512 = isa == 2 && g.bf16;
    uint8_t *kv = (uint8_t *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    uint8_t *thr = kv + (g.local ? 0 : rup((int64_t)(g.BH * g.bh_bytes), 64));
    if (!g.local) pack_kv(kv, &g, k, k_ld, v, v_ld, H, cvt512);
    float scale = (float)(1.0 / sqrt((double)d));
    int64_t nqb = (Nq + QB - 1) / QB, tasks = g.BH * nqb;
#pragma omp parallel num_threads(nthr) if (tasks > 1)
    {
        fa_tile t = fa_tile_at(thr, &g, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int64_t ti = 0; ti < tasks; ti++) {
            int64_t bh = ti / nqb, i0 = (ti % nqb) * QB, b = bh / H, h = bh % H;
            int64_t nq = S2_MIN((int64_t)QB, Nq - i0);
            const uint8_t *kvh = kv + (size_t)bh * g.bh_bytes;
            if (g.local) { // this task is the head's only one: pack its K/V here
                pack_head(t.kv, &g, k + b * Nk * k_ld + h * d, k_ld, v + b * Nk * v_ld + h * d, v_ld, cvt512);
                kvh = t.kv;
            }
            run_task(&t, &g, kvh, q + (b * Nq + i0) * q_ld + h * d, q_ld, o + (b * Nq + i0) * o_ld + h * d,
                     o_ld, nq, scale, isa >= 1);
        }
    }
}
