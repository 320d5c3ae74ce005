/* Fast CPU kernels for the element-wise and normalisation glue between the big products
 * (GELU, LayerNorm, LayerNorm2d, the transposed-convolution epilogue). AVX-512 when the
 * CPU has it (checked once, at run time: the library is built without -march), plain C
 * otherwise. They are not the oracle: each has a reference twin in kernels.h that
 * tests/test_kernels.c compares it against, with a stated tolerance.
 *
 * Numerics: f32 throughout. GELU uses erf from Abramowitz & Stegun 7.1.26 (|error| <=
 * 1.5e-7, the formula PyTorch's vectorised CPU erf and oneDNN's gelu_erf use), evaluated
 * as 1 + erf(z) = erfc(-z) on the negative side so that the tail has no cancellation.
 * LayerNorm: two-pass mean / biased variance in f32. Every output element is computed
 * the same way whatever the thread count (threads split rows or pixel blocks only), so
 * results do not depend on it. Only backends call these (the oneDNN backend's slots). */
#ifndef S2_KERNELS_FAST_H
#define S2_KERNELS_FAST_H

#include <stdbool.h>
#include <stdint.h>

/* True when the AVX-512 paths run (AVX-512 F/BW/DQ/VL and FMA; SAM2C_FAST_ISA=0 turns
 * them off for comparisons). */
bool s2_fast_avx512(void);

/* x = gelu(x) in place (exact-erf GELU, approximate="none"), threaded. */
void s2_fast_gelu(float *x, int64_t n);
/* The same on the calling thread only (for use inside a parallel region). */
void s2_fast_gelu_serial(float *x, int64_t n);

/* LayerNorm over the last dimension, x [rows, C] (gamma / beta may be NULL; in place ok). */
void s2_fast_layernorm(float *y, const float *x, const float *gamma, const float *beta,
                       int64_t rows, int64_t C, float eps);
/* SAM's LayerNorm2d: over the channels of NCHW x [N, C, HW] at every pixel. */
void s2_fast_layernorm2d(float *y, const float *x, const float *gamma, const float *beta,
                         int N, int C, int64_t HW, float eps);

/* Epilogue of a kernel == stride transposed convolution computed as one GEMM per image:
 * t [N][OC*K*K][H*W] (rows (oc, i, j), columns the input pixels) is interleaved into
 * y [N, OC, H*K, W*K] with y = act(t + b[oc] + add): b may be NULL, add NULL or
 * [N or 1, OC, H*K, W*K] (add_shared: batch 1 broadcast), act 0 none or 1 GELU (the
 * fast GELU above). Threaded over output planes. */
void s2_fast_convt_scatter(float *y, const float *t, const float *b, const float *add,
                           bool add_shared, int act, int N, int OC, int H, int W, int K);

#endif
