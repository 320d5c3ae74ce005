/* Reference compute kernels in plain C (f32). They are the oracle for every faster
 * backend: readable loops, threaded over independent rows (OpenMP) so that results do
 * not depend on the thread count. Layouts follow PyTorch: row-major, NCHW for images,
 * Linear weights [out, in], Conv weights [OC, IC/groups, KH, KW]. */
#ifndef S2_KERNELS_H
#define S2_KERNELS_H

#include <stdint.h>
#include <stdbool.h>

/* y[M,N] = x[M,K] · w[N,K]^T + b[N]   (b may be NULL) */
void s2_ref_linear(float *y, const float *x, const float *w, const float *b,
                   int64_t M, int64_t K, int64_t N);

/* c[M,N] = alpha · a[M,K] · op(b) + beta · c, op(b) = b[K,N] or b[N,K]^T when trans_b */
void s2_ref_matmul(float *c, const float *a, const float *b, int64_t M, int64_t K,
                   int64_t N, bool trans_b, float alpha, float beta);

/* 2-D convolution, NCHW, weights [OC, C/groups, KH, KW], bias [OC] or NULL.
 * Output size OH = (H + 2*ph - KH)/sh + 1 (dilation 1). */
typedef struct s2_conv2d_desc {
    int N, C, H, W;     /* input */
    int OC, KH, KW;     /* weights */
    int sh, sw, ph, pw; /* stride, zero padding */
    int groups;
} s2_conv2d_desc;
void s2_conv2d_out_hw(const s2_conv2d_desc *d, int *OH, int *OW);
void s2_ref_conv2d(float *y, const float *x, const float *w, const float *b,
                   const s2_conv2d_desc *d);

/* Transposed convolution with kernel == stride, no padding (the mask decoder's and
 * upscalers' 2x2 stride-2 case). Weights [C, OC, K, K]. y is [N, OC, H*K, W*K]. */
void s2_ref_conv_transpose2d_k_eq_s(float *y, const float *x, const float *w,
                                    const float *b, int N, int C, int H, int W,
                                    int OC, int K);

/* Activation applied by a fused epilogue (linear_act, conv_transpose2d). */
typedef enum { S2_ACT_NONE = 0, S2_ACT_GELU = 1, S2_ACT_RELU = 2 } s2_act;

/* Transposed convolution, kernel == stride, no padding, with an epilogue:
 * y = act(convT(x) + b + add), y [N, OC, H*K, W*K] (NCHW). x is [N, C, H, W], or
 * [N, H, W, C] when x_nhwc; weights [C, OC, K, K]; b [OC] or NULL; add NULL or NCHW
 * [N, OC, H*K, W*K] ([1, ...] broadcast over N when add_shared). Each output is
 * bias + the sum over c in order, then + add, then act (reference GELU / ReLU), so it
 * equals s2_ref_conv_transpose2d_k_eq_s followed by s2_ref_add and the activation. */
typedef struct s2_convt_desc {
    int N, C, H, W;     /* input */
    int OC, K;          /* output channels, kernel = stride */
    bool x_nhwc;
    const float *add;
    bool add_shared;
    s2_act act;
} s2_convt_desc;
void s2_ref_conv_transpose2d(float *y, const float *x, const float *w, const float *b,
                             const s2_convt_desc *d);

/* LayerNorm over the last dimension: x [rows, C]. gamma/beta may be NULL. In place ok. */
void s2_ref_layernorm(float *y, const float *x, const float *gamma, const float *beta,
                      int64_t rows, int64_t C, float eps);
/* LayerNorm2d (SAM's): normalise over channels of NCHW at each pixel. In place ok. */
void s2_ref_layernorm2d(float *y, const float *x, const float *gamma, const float *beta,
                        int N, int C, int64_t HW, float eps);

void s2_ref_gelu(float *x, int64_t n);     /* exact erf GELU, in place */
void s2_ref_relu(float *x, int64_t n);
void s2_ref_sigmoid(float *x, int64_t n);
void s2_ref_add(float *y, const float *a, const float *b, int64_t n); /* y = a + b */
void s2_ref_softmax_rows(float *x, int64_t rows, int64_t n);         /* in place, stable */

/* Scaled dot-product attention, softmax(q k^T / sqrt(d)) v, per batch b and head h.
 * Element (b, h, i, c) of q is q[(b*Nq + i)*q_ld + h*d + c]: tokens are rows of width
 * q_ld holding all heads side by side, as a Linear projection produces them. Same for
 * k (Nk rows, k_ld), v (Nk rows, v_ld) and o (Nq rows, o_ld). */
void s2_ref_attention(float *o, int64_t o_ld, const float *q, int64_t q_ld,
                      const float *k, int64_t k_ld, const float *v, int64_t v_ld,
                      int B, int H, int64_t Nq, int64_t Nk, int d);

/* Resampling of NCHW planes (C = N*C planes), PyTorch F.interpolate semantics. */
void s2_ref_interp_bilinear(float *y, const float *x, int C, int H, int W, int OH, int OW,
                            bool align_corners, bool antialias);
/* (bilinear resize, align_corners False, no antialias) > thr as 0.0f / 1.0f: the same
 * values as thresholding s2_ref_interp_bilinear's output, in one pass. */
void s2_ref_interp_bilinear_gt(float *y, const float *x, int C, int H, int W, int OH, int OW,
                               float thr);
void s2_ref_interp_bicubic(float *y, const float *x, int C, int H, int W, int OH, int OW,
                           bool align_corners); /* A = -0.75, edge clamp, no antialias */
void s2_ref_interp_nearest(float *y, const float *x, int C, int H, int W, int OH, int OW);
/* The bilinear resize above reading interleaved u8 pixels x [H, W, C] converted as
 * v / 255.0f (torchvision ToTensor) without a float copy; y is [C, OH, OW]. Same
 * results as converting first and calling s2_ref_interp_bilinear. */
void s2_ref_interp_bilinear_u8hwc(float *y, const uint8_t *x, int C, int H, int W, int OH,
                                  int OW, bool align_corners, bool antialias);

/* Max pooling with kernel == stride (q-pooling), NHWC: x [N, H, W, C] -> [N, H/k, W/k, C]
 * (floor, as nn.MaxPool2d(kernel=k, stride=k)). */
void s2_ref_maxpool_nhwc(float *y, const float *x, int N, int H, int W, int C, int k);
/* The same reading pixels ldx >= C floats apart (channels 0..C-1 of wider rows). */
void s2_ref_maxpool_nhwc_ld(float *y, const float *x, int64_t ldx, int N, int H, int W, int C, int k);

/* Layout helpers */
void s2_ref_nchw_to_nhwc(float *y, const float *x, int N, int C, int H, int W);
void s2_ref_nhwc_to_nchw(float *y, const float *x, int N, int H, int W, int C);

#endif
