/* Backward kernels the image encoder needs beyond the heads' (grad_ops.c): q-pooling,
 * window partition / unpartition, the neck's nearest upsampling, the position
 * embedding's bicubic resize and the patch embedding's weight gradient. Reference C,
 * accumulating (+=), threaded over independent rows or planes.
 * Letters: see encoder_train.h; P output pixels, Kc = C*KH*KW im2col rows. */
#include "train/encoder_train.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* Ceil division for positive ints. */
static int cdiv(int a, int b) { return (a + b - 1) / b; }

// ref: aten/src/ATen/native/cpu/MaxPoolKernel.cpp cpu_max_pool (argmax: first strictly
// greater value in scan order, or a NaN) + max_pool2d_backward (scatter to the argmax)
void s2_maxpool_nhwc_backward(const float *x, const float *dy, float *dx, int N, int H,
                              int W, int C, int k) {
    int OH = H / k, OW = W / k;
    int64_t rows = (int64_t)N * OH;
#pragma omp parallel for schedule(static) if (rows * OW * C > 65536)
    for (int64_t r = 0; r < rows; r++) {
        int64_t n = r / OH, oh = r % OH;
        for (int ow = 0; ow < OW; ow++)
            for (int c = 0; c < C; c++) {
                float best = -INFINITY;
                int64_t arg = ((n * H + oh * k) * W + (int64_t)ow * k) * C + c;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) {
                        int64_t at = ((n * H + oh * k + i) * W + (int64_t)ow * k + j) * C + c;
                        if (x[at] > best || isnan(x[at])) best = x[at], arg = at;
                    }
                dx[arg] += dy[((r * OW) + ow) * C + c];
            }
    }
}

/* Offset (in tokens) of pixel (y, x) inside the windows of side ws over a W-wide grid. */
static int64_t win_token(int y, int x, int W, int ws) {
    int64_t w = (int64_t)(y / ws) * cdiv(W, ws) + x / ws;
    return w * ws * ws + (int64_t)(y % ws) * ws + x % ws;
}

// ref: sam2/modeling/backbones/utils.py window_partition (F.pad with zeros, then view)
void s2_window_partition(float *win, const float *x, int H, int W, int C, int ws) {
    int64_t nW = (int64_t)cdiv(H, ws) * cdiv(W, ws);
    memset(win, 0, sizeof(float) * (size_t)(nW * ws * ws * C));
#pragma omp parallel for schedule(static) if ((int64_t)H * W * C > 65536)
    for (int y = 0; y < H; y++)
        for (int xx = 0; xx < W; xx++)
            memcpy(win + win_token(y, xx, W, ws) * C, x + ((int64_t)y * W + xx) * C,
                   sizeof(float) * (size_t)C);
}

// ref: window_partition backward (the padding's gradient is dropped)
void s2_window_partition_backward(const float *dwin, float *dx, int H, int W, int C, int ws) {
#pragma omp parallel for schedule(static) if ((int64_t)H * W * C > 65536)
    for (int y = 0; y < H; y++)
        for (int xx = 0; xx < W; xx++) {
            const float *s = dwin + win_token(y, xx, W, ws) * C;
            float *d = dx + ((int64_t)y * W + xx) * C;
            for (int c = 0; c < C; c++) d[c] += s[c];
        }
}

// ref: sam2/modeling/backbones/utils.py window_unpartition (padding sliced off)
void s2_window_unpartition(float *y, const float *win, int H, int W, int C, int ws) {
#pragma omp parallel for schedule(static) if ((int64_t)H * W * C > 65536)
    for (int r = 0; r < H; r++)
        for (int c = 0; c < W; c++)
            memcpy(y + ((int64_t)r * W + c) * C, win + win_token(r, c, W, ws) * C,
                   sizeof(float) * (size_t)C);
}

// ref: window_unpartition backward (zero gradient at the padding)
void s2_window_unpartition_backward(const float *dy, float *dwin, int H, int W, int C, int ws) {
#pragma omp parallel for schedule(static) if ((int64_t)H * W * C > 65536)
    for (int r = 0; r < H; r++)
        for (int c = 0; c < W; c++) {
            const float *s = dy + ((int64_t)r * W + c) * C;
            float *d = dwin + win_token(r, c, W, ws) * C;
            for (int j = 0; j < C; j++) d[j] += s[j];
        }
}

/* Source index of output i, as s2_ref_interp_nearest computes it (UpSampleKernel.cpp
 * nearest_idx: exact for out == in and out == 2 in, else floor(i * in / out) in f32). */
static int nearest_src(int i, int in, int out) {
    if (out == in) return i;
    if (out == 2 * in) return i >> 1;
    int s = (int)floorf((float)i * ((float)in / (float)out));
    return s < in - 1 ? s : in - 1;
}

// ref: torch.nn.functional.interpolate(mode="nearest") backward (upsample_nearest2d_backward)
void s2_interp_nearest_backward(const float *dy, float *dx, int C, int H, int W, int OH,
                                int OW) {
#pragma omp parallel for schedule(static) if ((int64_t)C * OH * OW > 65536)
    for (int ch = 0; ch < C; ch++) {
        const float *g = dy + (int64_t)ch * OH * OW;
        float *o = dx + (int64_t)ch * H * W;
        for (int oy = 0; oy < OH; oy++) {
            int sy = nearest_src(oy, H, OH);
            for (int ox = 0; ox < OW; ox++) o[(int64_t)sy * W + nearest_src(ox, W, OW)] += g[(int64_t)oy * OW + ox];
        }
    }
}

// ref: torch.nn.functional.interpolate(mode="bicubic", align_corners=False) backward:
// dx (C, HW) += dy (C, P) · Bm (HW, P)^T with Bm[j] = bicubic(one-hot j)
void s2_interp_bicubic_backward(s2_ctx *c, const float *dy, float *dx, int C, int H, int W,
                                int OH, int OW) {
    int64_t HW = (int64_t)H * W, P = (int64_t)OH * OW;
    s2_arena_mark mark = s2_arena_get_mark(c->scratch);
    float *eye = s2_scratch_f32(c, HW * HW);  // (HW, H, W) one-hot planes
    float *basis = s2_scratch_f32(c, HW * P); // (HW, OH, OW)
    memset(eye, 0, sizeof(float) * (size_t)(HW * HW));
    for (int64_t j = 0; j < HW; j++) eye[j * HW + j] = 1.0f;
    s2_ref_interp_bicubic(basis, eye, (int)HW, H, W, OH, OW, false);
    s2_op_matmul(c, dx, dy, basis, C, P, HW, true, 1.0f, 1.0f); // (C,P)(HW,P)^T
    s2_arena_release(c->scratch, mark);
}

/* cols [Kc, P] = im2col of one image x [C, H, W] for the convolution d (zero padding). */
static void im2col(float *cols, const float *x, const s2_conv2d_desc *d, int OH, int OW) {
    int64_t Kc = (int64_t)d->C * d->KH * d->KW, P = (int64_t)OH * OW;
#pragma omp parallel for schedule(static) if (Kc * P > 65536)
    for (int64_t r = 0; r < Kc; r++) {
        int kx = (int)(r % d->KW), ky = (int)((r / d->KW) % d->KH), ch = (int)(r / ((int64_t)d->KW * d->KH));
        const float *plane = x + (int64_t)ch * d->H * d->W;
        float *row = cols + r * P;
        for (int oy = 0; oy < OH; oy++) {
            int iy = oy * d->sh - d->ph + ky;
            for (int ox = 0; ox < OW; ox++) {
                int ix = ox * d->sw - d->pw + kx;
                bool in = iy >= 0 && iy < d->H && ix >= 0 && ix < d->W;
                row[(int64_t)oy * OW + ox] = in ? plane[(int64_t)iy * d->W + ix] : 0.0f;
            }
        }
    }
}

// ref: torch.nn.Conv2d backward (weight and bias: convolution_backward)
void s2_conv2d_weight_backward(s2_ctx *c, const float *x, const float *dy, float *dw,
                               float *db, const s2_conv2d_desc *d) {
    int OH, OW;
    s2_conv2d_out_hw(d, &OH, &OW);
    int64_t Kc = (int64_t)d->C * d->KH * d->KW, P = (int64_t)OH * OW;
    for (int n = 0; n < d->N; n++) {
        const float *dyn = dy + (int64_t)n * d->OC * P; // (OC, P)
        if (db)
            for (int oc = 0; oc < d->OC; oc++) {
                double s = 0.0;
                for (int64_t p = 0; p < P; p++) s += dyn[oc * P + p];
                db[oc] += (float)s;
            }
        if (!dw) continue;
        s2_arena_mark mark = s2_arena_get_mark(c->scratch);
        float *cols = s2_scratch_f32(c, Kc * P); // (Kc, P)
        im2col(cols, x + (int64_t)n * d->C * d->H * d->W, d, OH, OW);
        s2_op_matmul(c, dw, dyn, cols, d->OC, P, Kc, true, 1.0f, 1.0f); // (OC,P)(Kc,P)^T
        s2_arena_release(c->scratch, mark);
    }
}

/* ============================ attention (GEMM form) ============================ */

/* Workspace of one thread: contiguous copies of one head's q / k / v / dout (and
 * transposes), the (Nq, Nk) probabilities and their gradient, the head's gradients. */
typedef struct attn_ws {
    float *q, *qt, *k, *v, *o, *ot;   /* (Nq,d), (d,Nq), (Nk,d), (Nk,d), (Nq,d), (d,Nq) */
    float *P, *G;                     /* (Nq, Nk) */
    float *dq, *dkt, *dvt;            /* (Nq,d), (d,Nk), (d,Nk) */
} attn_ws;

/* Floats of one workspace (64-byte multiple). */
static int64_t attn_ws_floats(int64_t Nq, int64_t Nk, int d) {
    return (5 * Nq * d + 4 * Nk * d + 2 * Nq * Nk + 15) & ~(int64_t)15;
}

/* Points w's pieces into p (attn_ws_floats floats). */
static void attn_ws_carve(attn_ws *w, float *p, int64_t Nq, int64_t Nk, int d) {
    w->q = p, w->qt = w->q + Nq * d, w->k = w->qt + Nq * d, w->v = w->k + Nk * d;
    w->o = w->v + Nk * d, w->ot = w->o + Nq * d, w->P = w->ot + Nq * d, w->G = w->P + Nq * Nk;
    w->dq = w->G + Nq * Nk, w->dkt = w->dq + Nq * d, w->dvt = w->dkt + Nk * d;
}

/* dst (n, d) = the d columns of n rows at stride ld; with dt also its transpose (d, n). */
static void gather_head(float *dst, float *dt, const float *src, int64_t ld, int64_t n, int d) {
    for (int64_t i = 0; i < n; i++)
        for (int e = 0; e < d; e++) {
            float v = src[i * ld + e];
            dst[i * d + e] = v;
            if (dt) dt[(int64_t)e * n + i] = v;
        }
}

/* One (batch, head): P = softmax(scale q k^T), G = dout v^T, dS = P (G - rowsum(P G)),
 * dq += scale dS k, dk += scale dS^T q, dv += P^T dout, with reference GEMMs. */
static void head_backward(const float *q, int64_t q_ld, const float *k, int64_t k_ld,
                          const float *v, int64_t v_ld, const float *dout, int64_t o_ld,
                          float *dq, float *dk, float *dv, int64_t Nq, int64_t Nk, int d,
                          float scale, attn_ws *w) {
    gather_head(w->q, w->qt, q, q_ld, Nq, d);
    gather_head(w->k, NULL, k, k_ld, Nk, d);
    gather_head(w->v, NULL, v, v_ld, Nk, d);
    gather_head(w->o, w->ot, dout, o_ld, Nq, d);
    s2_ref_matmul(w->P, w->q, w->k, Nq, d, Nk, true, scale, 0.0f); // (Nq,d)(Nk,d)^T
    s2_ref_softmax_rows(w->P, Nq, Nk);
    s2_ref_matmul(w->G, w->o, w->v, Nq, d, Nk, true, 1.0f, 0.0f);  // (Nq,d)(Nk,d)^T
    for (int64_t i = 0; i < Nq; i++) {
        float *p = w->P + i * Nk, *g = w->G + i * Nk;
        double dot = 0.0;
        for (int64_t j = 0; j < Nk; j++) dot += (double)p[j] * g[j];
        for (int64_t j = 0; j < Nk; j++) g[j] = p[j] * (g[j] - (float)dot); // dS
    }
    s2_ref_matmul(w->dq, w->G, w->k, Nq, Nk, d, false, scale, 0.0f);   // (Nq,Nk)(Nk,d)
    s2_ref_matmul(w->dkt, w->qt, w->G, d, Nq, Nk, false, scale, 0.0f); // (d,Nq)(Nq,Nk)
    s2_ref_matmul(w->dvt, w->ot, w->P, d, Nq, Nk, false, 1.0f, 0.0f);  // (d,Nq)(Nq,Nk)
    for (int64_t i = 0; i < Nq; i++)
        for (int e = 0; e < d; e++) dq[i * q_ld + e] += w->dq[i * d + e];
    for (int64_t j = 0; j < Nk; j++)
        for (int e = 0; e < d; e++) {
            dk[j * k_ld + e] += w->dkt[(int64_t)e * Nk + j];
            dv[j * v_ld + e] += w->dvt[(int64_t)e * Nk + j];
        }
}

// ref: torch.nn.functional.scaled_dot_product_attention backward (math path, f32 GEMMs)
void s2_attention_backward_gemm(s2_ctx *c, const float *q, int64_t q_ld, const float *k,
                                int64_t k_ld, const float *v, int64_t v_ld, const float *dout,
                                int64_t o_ld, float *dq, float *dk, float *dv, int B, int H,
                                int64_t Nq, int64_t Nk, int d) {
    if (B <= 0 || H <= 0 || Nq <= 0 || Nk <= 0) return;
    s2_arena_mark mark = s2_arena_get_mark(c->scratch);
    int64_t tasks = (int64_t)B * H, per = attn_ws_floats(Nq, Nk, d);
    int nt = tasks > 1 ? omp_get_max_threads() : 1;
    if (nt > tasks) nt = (int)tasks;
    float *ws = s2_scratch_f32(c, per * nt); // one workspace per thread
    float scale = (float)(1.0 / sqrt((double)d));
#pragma omp parallel for schedule(dynamic) num_threads(nt) if (nt > 1)
    for (int64_t t = 0; t < tasks; t++) {
        attn_ws w;
        attn_ws_carve(&w, ws + per * omp_get_thread_num(), Nq, Nk, d);
        int64_t b = t / H, h = t % H;
        head_backward(q + b * Nq * q_ld + h * d, q_ld, k + b * Nk * k_ld + h * d, k_ld,
                      v + b * Nk * v_ld + h * d, v_ld, dout + b * Nq * o_ld + h * d, o_ld,
                      dq + b * Nq * q_ld + h * d, dk + b * Nk * k_ld + h * d,
                      dv + b * Nk * v_ld + h * d, Nq, Nk, d, scale, &w);
    }
    s2_arena_release(c->scratch, mark);
}
