/* Reference GEMM: Linear, matmul and the engine that conv2d and attention reuse.
 *
 * Blocking: the output is cut into MB x NB tiles (threads take whole tiles); for each
 * tile, K is walked in KB-deep blocks whose B part is packed as wt[KB][NB] (k-major,
 * so the inner loop over n is a plain vectorisable axpy); a 4-row x 16-column
 * register block accumulates acc[m][n] += a[m][k] * wt[k][n] for k in order.
 * Every output is therefore the sequential f32 sum over k, independent of the tiling
 * and of the number of threads (no cross-thread reduction). Letters: M rows of A,
 * K reduction, N columns of B. */
#include "kernels/kernels.h"
#include "kernels/ref_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MB = 64, NB = 64, KB = 128, MR = 4, NR = 16 };

// Out of memory in a kernel temporary cannot be reported through a void kernel.
void *s2_kernel_alloc(size_t n, const char *what) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "sam2c: out of memory allocating %zu bytes for %s\n", n, what);
        abort();
    }
    return p;
}

// Packs B(k0 + k, n0 + n) into wt[k][n] for the im2col operand (zero padding).
static void pack_im2col(float wt[KB][NB], const s2_gemm_b *b, int64_t k0, int64_t kk,
                        int64_t n0, int64_t nn) {
    for (int64_t k = 0; k < kk; k++) {
        int64_t kg = k0 + k;
        int kw = (int)(kg % b->KW), kh = (int)((kg / b->KW) % b->KH);
        int c = (int)(kg / ((int64_t)b->KW * b->KH));
        const float *plane = b->p + (int64_t)c * b->H * b->W; // (H, W)
        int64_t oh = n0 / b->OW, ow = n0 % b->OW;
        for (int64_t n = 0; n < nn; n++) {
            int64_t ih = oh * b->sh - b->ph + kh, iw = ow * b->sw - b->pw + kw;
            bool in = ih >= 0 && ih < b->H && iw >= 0 && iw < b->W;
            wt[k][n] = in ? plane[ih * b->W + iw] : 0.0f;
            if (++ow == b->OW) { ow = 0; oh++; }
        }
        for (int64_t n = nn; n < NB; n++) wt[k][n] = 0.0f;
    }
}

// Packs the KB x NB block of B starting at (k0, n0) k-major, zero-filling past nn.
static void pack_b(float wt[KB][NB], const s2_gemm_b *b, int64_t k0, int64_t kk,
                   int64_t n0, int64_t nn) {
    switch (b->kind) {
    case S2_GB_NK:
        for (int64_t n = 0; n < nn; n++) {
            const float *src = b->p + (n0 + n) * b->ld + k0;
            for (int64_t k = 0; k < kk; k++) wt[k][n] = src[k];
        }
        for (int64_t k = 0; k < kk; k++)
            for (int64_t n = nn; n < NB; n++) wt[k][n] = 0.0f;
        break;
    case S2_GB_KN:
        for (int64_t k = 0; k < kk; k++) {
            memcpy(wt[k], b->p + (k0 + k) * b->ld + n0, (size_t)nn * sizeof(float));
            for (int64_t n = nn; n < NB; n++) wt[k][n] = 0.0f;
        }
        break;
    case S2_GB_IM2COL:
        pack_im2col(wt, b, k0, kk, n0, nn);
        break;
    }
}

// acc[0..3][nc..nc+15] += a rows (r0..r0+3) x wt[0..kk) with 4x16 register blocking.
static void micro_4x16(float acc[MB][NB], int r0, int nc, const float *a, int64_t lda,
                       const float wt[KB][NB], int64_t kk) {
    const float *x0 = a, *x1 = a + lda, *x2 = a + 2 * lda, *x3 = a + 3 * lda;
    float c0[NR], c1[NR], c2[NR], c3[NR];
    for (int n = 0; n < NR; n++) {
        c0[n] = acc[r0][nc + n];
        c1[n] = acc[r0 + 1][nc + n];
        c2[n] = acc[r0 + 2][nc + n];
        c3[n] = acc[r0 + 3][nc + n];
    }
    for (int64_t k = 0; k < kk; k++) {
        const float *w = &wt[k][nc];
        float v0 = x0[k], v1 = x1[k], v2 = x2[k], v3 = x3[k];
#pragma omp simd
        for (int n = 0; n < NR; n++) {
            float wv = w[n];
            c0[n] += v0 * wv;
            c1[n] += v1 * wv;
            c2[n] += v2 * wv;
            c3[n] += v3 * wv;
        }
    }
    for (int n = 0; n < NR; n++) {
        acc[r0][nc + n] = c0[n];
        acc[r0 + 1][nc + n] = c1[n];
        acc[r0 + 2][nc + n] = c2[n];
        acc[r0 + 3][nc + n] = c3[n];
    }
}

// acc[r][0..ncols) += one a row x wt[0..kk) (remainder rows of a tile).
static void micro_1xn(float *acc_row, const float *a, const float wt[KB][NB], int64_t kk,
                      int ncols) {
    for (int64_t k = 0; k < kk; k++) {
        float v = a[k];
        const float *w = wt[k];
#pragma omp simd
        for (int n = 0; n < ncols; n++) acc_row[n] += v * w[n];
    }
}

// Initial accumulator values of a tile: the bias (row or column) or zero.
static void tile_init(float acc[MB][NB], const s2_gemm *g, int64_t m0, int64_t mm,
                      int64_t n0, int64_t nn) {
    for (int64_t m = 0; m < mm; m++)
        for (int64_t n = 0; n < NB; n++) {
            float v = 0.0f;
            if (n < nn && g->bias_n) v = g->bias_n[n0 + n];
            else if (n < nn && g->bias_m) v = g->bias_m[m0 + m];
            acc[m][n] = v;
        }
}

// Writes a finished tile: c = alpha * acc + beta * c (with the documented shortcuts).
static void tile_store(const float acc[MB][NB], const s2_gemm *g, int64_t m0, int64_t mm,
                       int64_t n0, int64_t nn) {
    for (int64_t m = 0; m < mm; m++) {
        float *c = g->c + (m0 + m) * g->ldc + n0;
        const float *s = acc[m];
        if (g->alpha == 1.0f && g->beta == 0.0f) {
            memcpy(c, s, (size_t)nn * sizeof(float));
        } else if (g->beta == 0.0f) {
            for (int64_t n = 0; n < nn; n++) c[n] = g->alpha * s[n];
        } else {
            for (int64_t n = 0; n < nn; n++) c[n] = g->alpha * s[n] + g->beta * c[n];
        }
    }
}

// Computes output tile (tm, tn): rows [tm*MB, +MB), columns [tn*NB, +NB).
static void gemm_tile(const s2_gemm *g, int64_t tm, int64_t tn) {
    float wt[KB][NB];   // packed B block, k-major
    float acc[MB][NB];  // running sums of the tile
    int64_t m0 = tm * MB, n0 = tn * NB;
    int64_t mm = S2_REF_MIN(MB, g->M - m0), nn = S2_REF_MIN(NB, g->N - n0);
    int ncols = (int)((nn + NR - 1) / NR) * NR;
    tile_init(acc, g, m0, mm, n0, nn);
    for (int64_t k0 = 0; k0 < g->K; k0 += KB) {
        int64_t kk = S2_REF_MIN(KB, g->K - k0);
        pack_b(wt, &g->b, k0, kk, n0, nn);
        int64_t m = 0;
        for (; m + MR <= mm; m += MR)
            for (int nc = 0; nc < ncols; nc += NR)
                micro_4x16(acc, (int)m, nc, g->a + (m0 + m) * g->lda + k0, g->lda, wt, kk);
        for (; m < mm; m++) micro_1xn(acc[m], g->a + (m0 + m) * g->lda + k0, wt, kk, ncols);
    }
    tile_store(acc, g, m0, mm, n0, nn);
}

// Whole product on the calling thread.
void s2_gemm_serial(const s2_gemm *g) {
    int64_t tms = (g->M + MB - 1) / MB, tns = (g->N + NB - 1) / NB;
    for (int64_t tm = 0; tm < tms; tm++)
        for (int64_t tn = 0; tn < tns; tn++) gemm_tile(g, tm, tn);
}

// Whole product, output tiles shared among OpenMP threads.
void s2_gemm_parallel(const s2_gemm *g) {
    int64_t tms = (g->M + MB - 1) / MB, tns = (g->N + NB - 1) / NB;
    int64_t tiles = tms * tns;
#pragma omp parallel for schedule(static) if (tiles > 1)
    for (int64_t t = 0; t < tiles; t++) gemm_tile(g, t / tns, t % tns);
}

// ref: torch.nn.Linear.forward (y = x w^T + b)
void s2_ref_linear(float *y, const float *x, const float *w, const float *b, int64_t M,
                   int64_t K, int64_t N) {
    if (M <= 0 || N <= 0) return;
    s2_gemm g = {.M = M, .N = N, .K = K, .a = x, .lda = K,
                 .b = {.kind = S2_GB_NK, .p = w, .ld = K},
                 .c = y, .ldc = N, .bias_n = b, .alpha = 1.0f, .beta = 0.0f};
    s2_gemm_parallel(&g);
}

// c = alpha * a op(b) + beta * c (torch.addmm / baddbmm semantics, beta 0 ignores c).
void s2_ref_matmul(float *c, const float *a, const float *b, int64_t M, int64_t K,
                   int64_t N, bool trans_b, float alpha, float beta) {
    if (M <= 0 || N <= 0) return;
    s2_gemm g = {.M = M, .N = N, .K = K, .a = a, .lda = K,
                 .b = {.kind = trans_b ? S2_GB_NK : S2_GB_KN, .p = b, .ld = trans_b ? K : N},
                 .c = c, .ldc = N, .alpha = alpha, .beta = beta};
    s2_gemm_parallel(&g);
}
