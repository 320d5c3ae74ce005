/* Private helpers shared by the reference kernels (src/kernels/ref_*.c only): the
 * blocked f32 GEMM engine behind linear, matmul, conv2d and attention, and the
 * allocation helper for the few temporaries a kernel cannot avoid.
 *
 * Determinism: every output element is the sequential sum over k = 0..K-1 (starting
 * from its bias, else 0), whatever the blocking and the thread count, so results are
 * bit-identical for any number of threads and equal a naive f32 loop. */
#ifndef S2_REF_INTERNAL_H
#define S2_REF_INTERNAL_H

#include <stdint.h>
#include <stddef.h>

#define S2_REF_MIN(a, b) ((a) < (b) ? (a) : (b))
#define S2_REF_MAX(a, b) ((a) > (b) ? (a) : (b))

/* How the GEMM engine reads its right operand B (logically [K, N]). */
typedef enum {
    S2_GB_NK = 0,  /* B^T stored: element (k, n) at p[n*ld + k] (Linear weights)    */
    S2_GB_KN,      /* B stored:   element (k, n) at p[k*ld + n]                       */
    S2_GB_IM2COL   /* implicit im2col of one image/group: k = (c, kh, kw), n = (oh, ow) */
} s2_gemm_bkind;

typedef struct s2_gemm_b {
    s2_gemm_bkind kind;
    const float *p;      /* NK / KN data, or the first input plane for IM2COL */
    int64_t ld;
    /* IM2COL only: planes [C, H, W] of one image and group, conv geometry */
    int C, H, W, KH, KW, sh, sw, ph, pw, OW;
} s2_gemm_b;

/* c[m*ldc + n] = alpha * (init + sum_k a[m*lda + k] * B(k, n)) + beta * c, where
 * init = bias_n[n] or bias_m[m] (or 0). alpha == 1 and beta == 0 skip their
 * operations; beta == 0 never reads c. */
typedef struct s2_gemm {
    int64_t M, N, K;
    const float *a;
    int64_t lda;
    s2_gemm_b b;
    float *c;
    int64_t ldc;
    const float *bias_n;  /* [N] or NULL */
    const float *bias_m;  /* [M] or NULL */
    float alpha, beta;
} s2_gemm;

/* Runs the whole product on the calling thread (used inside parallel regions). */
void s2_gemm_serial(const s2_gemm *g);
/* Runs the product with OpenMP threads over independent output tiles. */
void s2_gemm_parallel(const s2_gemm *g);

/* malloc for kernel temporaries that the signature gives no scratch for. Out of
 * memory here is treated as an internal invariant violation: prints and aborts
 * (kernels have no error channel; see the report in backend.h). */
void *s2_kernel_alloc(size_t n, const char *what);

/* Stable softmax of one row in place (max subtracted, f64 sum), shared by
 * s2_ref_softmax_rows and s2_ref_attention. */
void s2_softmax_row(float *x, int64_t n);

#endif
