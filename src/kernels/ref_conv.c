/* Reference convolutions, NCHW (PyTorch nn.Conv2d / nn.ConvTranspose2d semantics).
 * Letters: N images, C input channels, H x W input, OC output channels, KH x KW kernel,
 * OH x OW output, G groups (Cg = C/G inputs and OCg = OC/G outputs per group).
 *
 * General case: implicit im2col GEMM per image and group (the GEMM engine packs the
 * im2col blocks itself, so no im2col buffer is allocated); 1x1 stride-1 unpadded
 * convolutions read the input planes directly as the [C, H*W] operand; depthwise
 * convolutions (G == C) run a direct loop. Every output is bias + the sum of its
 * terms in (c, kh, kw) order, so all three paths agree with a naive loop bit for bit
 * and do not depend on the thread count. */
#include "kernels/kernels.h"
#include "kernels/ref_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// Output size of a convolution (dilation 1, floor), as nn.Conv2d computes it.
void s2_conv2d_out_hw(const s2_conv2d_desc *d, int *OH, int *OW) {
    if (d->sh <= 0 || d->sw <= 0) { // invalid stride: empty output (callers validate)
        *OH = *OW = 0;
        return;
    }
    *OH = (d->H + 2 * d->ph - d->KH) / d->sh + 1;
    *OW = (d->W + 2 * d->pw - d->KW) / d->sw + 1;
}

// Floor division for possibly negative numerators (positive divisor).
static int floordiv(int a, int b) {
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// One depthwise output plane: y (OH, OW) from plane x (H, W) and kernel w (KH, KW).
static void depthwise_plane(float *y, const float *x, const float *w, float bias,
                            const s2_conv2d_desc *d, int OH, int OW) {
    for (int64_t i = 0; i < (int64_t)OH * OW; i++) y[i] = bias;
    for (int kh = 0; kh < d->KH; kh++) {
        for (int kw = 0; kw < d->KW; kw++) {
            float wv = w[kh * d->KW + kw];
            // ow range with 0 <= ow*sw - pw + kw < W
            int ow_lo = S2_REF_MAX(0, -floordiv(kw - d->pw, d->sw));
            int ow_hi = S2_REF_MIN(OW - 1, floordiv(d->W - 1 + d->pw - kw, d->sw));
            for (int oh = 0; oh < OH; oh++) {
                int ih = oh * d->sh - d->ph + kh;
                if (ih < 0 || ih >= d->H) continue;
                int64_t off = (int64_t)ih * d->W - d->pw + kw; // x[off + ow*sw]
                float *yr = y + (int64_t)oh * OW;
                if (d->sw == 1) {
#pragma omp simd
                    for (int ow = ow_lo; ow <= ow_hi; ow++) yr[ow] += wv * x[off + ow];
                } else {
                    for (int ow = ow_lo; ow <= ow_hi; ow++)
                        yr[ow] += wv * x[off + (int64_t)ow * d->sw];
                }
            }
        }
    }
}

// ref: torch.nn.Conv2d with groups == in_channels (e.g. CXBlock's dwconv)
static void conv2d_depthwise(float *y, const float *x, const float *w, const float *b,
                             const s2_conv2d_desc *d, int OH, int OW) {
    int mult = d->OC / d->C; // output channels per input channel
    int64_t planes = (int64_t)d->N * d->OC;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; p++) {
        int n = (int)(p / d->OC), oc = (int)(p % d->OC);
        const float *xp = x + ((int64_t)n * d->C + oc / mult) * d->H * d->W;
        depthwise_plane(y + p * OH * OW, xp, w + (int64_t)oc * d->KH * d->KW,
                        b ? b[oc] : 0.0f, d, OH, OW);
    }
}

// ref: torch.nn.Conv2d.forward (zero padding, dilation 1)
void s2_ref_conv2d(float *y, const float *x, const float *w, const float *b,
                   const s2_conv2d_desc *d) {
    int OH, OW;
    s2_conv2d_out_hw(d, &OH, &OW);
    if (OH <= 0 || OW <= 0 || d->N <= 0 || d->OC <= 0) return;
    int G = d->groups > 0 ? d->groups : 1;
    if (G == d->C && G > 1 && d->OC % d->C == 0) {
        conv2d_depthwise(y, x, w, b, d, OH, OW);
        return;
    }
    int Cg = d->C / G, OCg = d->OC / G;
    int64_t K = (int64_t)Cg * d->KH * d->KW, HW = (int64_t)d->H * d->W;
    bool pointwise = d->KH == 1 && d->KW == 1 && d->sh == 1 && d->sw == 1 && d->ph == 0 &&
                     d->pw == 0;
    for (int n = 0; n < d->N; n++) {
        for (int g = 0; g < G; g++) {
            const float *xg = x + ((int64_t)n * d->C + (int64_t)g * Cg) * HW; // (Cg, H, W)
            s2_gemm gm = {.M = OCg, .N = (int64_t)OH * OW, .K = K,
                          .a = w + (int64_t)g * OCg * K, .lda = K,
                          .c = y + ((int64_t)n * d->OC + (int64_t)g * OCg) * OH * OW,
                          .ldc = (int64_t)OH * OW, .bias_m = b ? b + (int64_t)g * OCg : NULL,
                          .alpha = 1.0f, .beta = 0.0f};
            if (pointwise) {
                gm.b = (s2_gemm_b){.kind = S2_GB_KN, .p = xg, .ld = HW};
            } else {
                gm.b = (s2_gemm_b){.kind = S2_GB_IM2COL, .p = xg, .C = Cg, .H = d->H,
                                   .W = d->W, .KH = d->KH, .KW = d->KW, .sh = d->sh,
                                   .sw = d->sw, .ph = d->ph, .pw = d->pw, .OW = OW};
            }
            s2_gemm_parallel(&gm);
        }
    }
}

// ref: torch.nn.ConvTranspose2d(C, OC, kernel_size=K, stride=K) (no overlap, no padding)
void s2_ref_conv_transpose2d_k_eq_s(float *y, const float *x, const float *w,
                                    const float *b, int N, int C, int H, int W, int OC,
                                    int K) {
    int64_t OW = (int64_t)W * K, HW = (int64_t)H * W, KK = (int64_t)K * K;
    int64_t planes = (int64_t)N * OC;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < planes; p++) {
        int n = (int)(p / OC), oc = (int)(p % OC);
        float *yp = y + p * HW * KK; // (H*K, W*K)
        float bias = b ? b[oc] : 0.0f;
        for (int64_t i = 0; i < HW * KK; i++) yp[i] = bias;
        for (int c = 0; c < C; c++) {
            const float *xp = x + ((int64_t)n * C + c) * HW; // (H, W)
            const float *wk = w + ((int64_t)c * OC + oc) * KK; // (K, K)
            for (int h = 0; h < H; h++) {
                for (int i = 0; i < K; i++) {
                    float *yr = yp + ((int64_t)h * K + i) * OW;
                    const float *xr = xp + (int64_t)h * W, *wr = wk + (int64_t)i * K;
                    for (int ww = 0; ww < W; ww++)
                        for (int j = 0; j < K; j++) yr[(int64_t)ww * K + j] += xr[ww] * wr[j];
                }
            }
        }
    }
}

// Reference activation of one value: the formulas of s2_ref_gelu / s2_ref_relu.
static float ref_act(float v, s2_act act) {
    if (act == S2_ACT_GELU) return (float)(0.5 * (double)v * erfc(-(double)v * M_SQRT1_2));
    if (act == S2_ACT_RELU && v < 0.0f) return 0.0f;
    return v;
}

// t [HW, OC*K*K] = bias + x^T w, one image: the GEMM engine with x^T read from NHWC
// pixels (rows of C) and the weights [C, OC*K*K] as the [K, N] operand.
static void convt_gemm(float *t, const float *xt, const float *w, const float *bias_n,
                       int64_t HW, int C, int64_t N) {
    s2_gemm gm = {.M = HW, .N = N, .K = C, .a = xt, .lda = C,
                  .b = {.kind = S2_GB_KN, .p = w, .ld = N}, .c = t, .ldc = N,
                  .bias_n = bias_n, .alpha = 1.0f, .beta = 0.0f};
    s2_gemm_parallel(&gm);
}

// ref: torch.nn.ConvTranspose2d(C, OC, kernel_size=K, stride=K) + residual add + act
void s2_ref_conv_transpose2d(float *y, const float *x, const float *w, const float *b,
                             const s2_convt_desc *d) {
    int K = d->K, OC = d->OC, C = d->C;
    int64_t HW = (int64_t)d->H * d->W, KK = (int64_t)K * K, NC = OC * KK, OW = (int64_t)d->W * K;
    if (d->N <= 0 || HW <= 0 || NC <= 0) return;
    float *t = s2_kernel_alloc((size_t)(HW * NC + NC + (d->x_nhwc ? 0 : HW * C)) * sizeof(float),
                               "transposed convolution");
    float *bias_n = t + HW * NC, *xt = bias_n + NC; // (OC*K*K), (HW, C)
    for (int64_t j = 0; j < NC; j++) bias_n[j] = b ? b[j / KK] : 0.0f;
    for (int n = 0; n < d->N; n++) {
        const float *xn = x + (int64_t)n * C * HW;
        if (!d->x_nhwc) s2_ref_nchw_to_nhwc(xt, xn, 1, C, d->H, d->W);
        convt_gemm(t, d->x_nhwc ? xn : xt, w, bias_n, HW, C, NC);
        float *yn = y + (int64_t)n * OC * HW * KK;
        const float *an = d->add ? d->add + (d->add_shared ? 0 : (int64_t)n * OC * HW * KK) : NULL;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < (int64_t)OC * d->H * K; r++) { // output rows (oc, oy)
            int64_t oc = r / (d->H * K), oy = r % (d->H * K), h = oy / K, i = oy % K;
            for (int64_t ox = 0; ox < OW; ox++) {
                int64_t o = r * OW + ox;
                float v = t[(h * d->W + ox / K) * NC + oc * KK + i * K + ox % K];
                if (an) v = v + an[o];
                yn[o] = ref_act(v, d->act);
            }
        }
    }
    free(t);
}
