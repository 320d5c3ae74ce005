/* Backward kernels of the ops the SAM heads use (reference C, f32 with f64 statistics).
 * Every kernel ACCUMULATES (+=) into its gradient outputs, so several uses of one
 * tensor add up; an output pointer may be NULL when that gradient is not wanted.
 * Layouts mirror the forward kernels of kernels/kernels.h: row-major, NCHW images,
 * Linear weights [N, K], Conv weights [OC, C, K, K], ConvTranspose weights [C, OC, K, K].
 * Letters: M rows, K inputs, N outputs, C / OC channels, H x W input pixels. */
#ifndef S2_TRAIN_GRAD_OPS_H
#define S2_TRAIN_GRAD_OPS_H

#include <stdbool.h>
#include <stdint.h>
#include "backend/backend.h"

/* y[M,N] = x[M,K] w[N,K]^T + b:  dx += dy w,  dw += dy^T x,  db += sum_rows dy.
 * Temporaries come from c->scratch (released before returning). */
void s2_linear_backward(s2_ctx *c, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db, int64_t M, int64_t K, int64_t N);

/* LayerNorm over the last dimension, recomputing the statistics from its input x
 * [rows, C]: dx += d/dx, dgamma += sum dy * xhat, dbeta += sum dy. */
void s2_layernorm_backward(const float *x, const float *gamma, const float *dy, float *dx,
                           float *dgamma, float *dbeta, int64_t rows, int64_t C, float eps);
/* LayerNorm2d over the channels of NCHW x [N, C, HW] (per-pixel statistics in
 * c->scratch, released before returning). */
void s2_layernorm2d_backward(s2_ctx *c, const float *x, const float *gamma, const float *dy,
                             float *dx, float *dgamma, float *dbeta, int N, int C,
                             int64_t HW, float eps);

/* Exact (erf) GELU from its input x: dx += dy * (Phi(x) + x phi(x)); with dx == dy the
 * gradient is converted in place (dy = dy * GELU'(x)). */
void s2_gelu_backward(const float *x, const float *dy, float *dx, int64_t n);
/* In place on dy: dy *= (y > 0) from the ReLU output y. */
void s2_relu_backward(const float *y, float *dy, int64_t n);
/* In place on dy: dy *= y (1 - y) from the sigmoid output y. */
void s2_sigmoid_backward(const float *y, float *dy, int64_t n);

/* Scaled dot-product attention softmax(q k^T / sqrt(d)) v on the row-strided layout of
 * s2_ref_attention; P is recomputed from q and k. dq / dk / dv share the lds of q / k /
 * v (q_ld, k_ld, v_ld) and are accumulated; dout has o_ld. The probabilities of every
 * (batch, head) come from c->scratch (2 B H Nq Nk floats, released before returning). */
void s2_attention_backward(s2_ctx *c, const float *q, int64_t q_ld, const float *k,
                           int64_t k_ld, const float *v, int64_t v_ld, const float *dout,
                           int64_t o_ld, float *dq, float *dk, float *dv, int B, int H,
                           int64_t Nq, int64_t Nk, int d);

/* Conv2d with stride == kernel K and no padding (x [N,C,H,W], w [OC,C,K,K], y
 * [N,OC,H/K,W/K]); 1x1 convolutions are the K = 1 case. */
void s2_conv_k_eq_s_backward(s2_ctx *c, const float *x, const float *w, const float *dy,
                             float *dx, float *dw, float *db, int N, int C, int H, int W,
                             int OC, int K);
/* ConvTranspose2d with stride == kernel K, no padding (x [N,C,H,W], w [C,OC,K,K],
 * y [N,OC,H*K,W*K]). */
void s2_conv_transpose_k_eq_s_backward(s2_ctx *c, const float *x, const float *w,
                                       const float *dy, float *dx, float *dw, float *db,
                                       int N, int C, int H, int W, int OC, int K);

/* F.interpolate(mode="bilinear", align_corners=False, antialias=False) from (H, W) to
 * (OH, OW) on C planes: dx [C, H, W] += the transpose of the resampling applied to dy
 * [C, OH, OW] (same taps and f32 weights as s2_ref_interp_bilinear). */
void s2_interp_bilinear_backward(const float *dy, float *dx, int C, int H, int W, int OH,
                                 int OW);

/* dst [N, M] = src [M, N]^T. */
void s2_transpose(float *dst, const float *src, int64_t M, int64_t N);

#endif
