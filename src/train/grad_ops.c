/* Reference backward kernels of the SAM heads' ops (see grad_ops.h). GEMM-shaped work
 * (Linear and the stride == kernel convolutions) goes through s2_op_matmul; the rest
 * are plain loops with f64 statistics, threaded over independent rows or planes.
 * Letters: M rows, K inputs, N outputs, C / OC channels, H x W input pixels, P pixels
 * of one convolution phase. */
#include "train/grad_ops.h"

#include <math.h>
#include <string.h>

// dst [N, M] = src [M, N]^T, in 32 x 32 tiles.
void s2_transpose(float *dst, const float *src, int64_t M, int64_t N) {
    enum { T = 32 };
#pragma omp parallel for schedule(static) if (M * N > 65536)
    for (int64_t i0 = 0; i0 < M; i0 += T)
        for (int64_t j0 = 0; j0 < N; j0 += T)
            for (int64_t i = i0; i < i0 + T && i < M; i++)
                for (int64_t j = j0; j < j0 + T && j < N; j++) dst[j * M + i] = src[i * N + j];
}

// ref: torch.nn.Linear backward (autograd of addmm)
void s2_linear_backward(s2_ctx *c, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db, int64_t M, int64_t K, int64_t N) {
    if (M <= 0) return;
    if (dx) s2_op_matmul(c, dx, dy, w, M, N, K, false, 1.0f, 1.0f); // (M,N)(N,K)
    if (dw) {
        s2_arena_mark mark = s2_arena_get_mark(c->scratch);
        float *dyt = s2_scratch_f32(c, N * M); // (N, M)
        s2_transpose(dyt, dy, M, N);
        s2_op_matmul(c, dw, dyt, x, N, M, K, false, 1.0f, 1.0f); // (N,M)(M,K)
        s2_arena_release(c->scratch, mark);
    }
    if (db) {
#pragma omp parallel for schedule(static) if (M * N > 65536)
        for (int64_t n = 0; n < N; n++) {
            double s = 0.0;
            for (int64_t m = 0; m < M; m++) s += dy[m * N + n];
            db[n] += (float)s;
        }
    }
}

/* Mean and 1/std of one row of n values at stride st (f64, biased variance). */
static void row_stats(const float *x, int64_t n, int64_t st, float eps, double *mean,
                      double *rstd) {
    double mu = 0.0, var = 0.0;
    for (int64_t i = 0; i < n; i++) mu += x[i * st];
    mu /= (double)n;
    for (int64_t i = 0; i < n; i++) {
        double d = x[i * st] - mu;
        var += d * d;
    }
    *mean = mu;
    *rstd = 1.0 / sqrt(var / (double)n + (double)eps);
}

/* dx of one normalised vector (n values at stride st) given dy, gamma and the stats:
 * dx += rstd (g dy - mean(g dy) - xhat mean(g dy xhat)). */
static void norm_vec_backward(const float *x, const float *gamma, const float *dy, float *dx,
                              int64_t n, int64_t st, double mu, double rstd) {
    double s1 = 0.0, s2 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double g = gamma ? gamma[i] : 1.0, xh = (x[i * st] - mu) * rstd;
        double gd = g * dy[i * st];
        s1 += gd;
        s2 += gd * xh;
    }
    s1 /= (double)n;
    s2 /= (double)n;
    for (int64_t i = 0; i < n; i++) {
        double g = gamma ? gamma[i] : 1.0, xh = (x[i * st] - mu) * rstd;
        dx[i * st] += (float)(rstd * (g * dy[i * st] - s1 - xh * s2));
    }
}

// ref: torch.nn.LayerNorm backward (over the last dimension)
void s2_layernorm_backward(const float *x, const float *gamma, const float *dy, float *dx,
                           float *dgamma, float *dbeta, int64_t rows, int64_t C, float eps) {
    if (dx) {
#pragma omp parallel for schedule(static) if (rows * C > 65536)
        for (int64_t r = 0; r < rows; r++) {
            double mu, rstd;
            row_stats(x + r * C, C, 1, eps, &mu, &rstd);
            norm_vec_backward(x + r * C, gamma, dy + r * C, dx + r * C, C, 1, mu, rstd);
        }
    }
    if (!dgamma && !dbeta) return;
    for (int64_t r = 0; r < rows; r++) {
        double mu, rstd;
        row_stats(x + r * C, C, 1, eps, &mu, &rstd);
        for (int64_t ch = 0; ch < C; ch++) {
            float g = dy[r * C + ch];
            if (dgamma) dgamma[ch] += (float)(g * (x[r * C + ch] - mu) * rstd);
            if (dbeta) dbeta[ch] += g;
        }
    }
}

// ref: sam2/modeling/sam2_utils.py LayerNorm2d.forward (autograd)
void s2_layernorm2d_backward(s2_ctx *c, const float *x, const float *gamma, const float *dy,
                             float *dx, float *dgamma, float *dbeta, int N, int C,
                             int64_t HW, float eps) {
    int64_t tasks = (int64_t)N * HW;
    s2_arena_mark mark = s2_arena_get_mark(c->scratch);
    double *st = (double *)s2_scratch_f32(c, 4 * tasks); // (N*HW, 2) mean, rstd
#pragma omp parallel for schedule(static) if (tasks * C > 65536)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t off = (t / HW) * C * HW + t % HW;
        row_stats(x + off, C, HW, eps, &st[2 * t], &st[2 * t + 1]);
        if (dx) norm_vec_backward(x + off, gamma, dy + off, dx + off, C, HW, st[2 * t], st[2 * t + 1]);
    }
#pragma omp parallel for schedule(static) if (tasks * C > 65536)
    for (int ch = 0; ch < C; ch++) {
        double sg = 0.0, sb = 0.0;
        for (int64_t t = 0; t < tasks; t++) {
            int64_t i = (t / HW) * C * HW + (int64_t)ch * HW + t % HW;
            sg += dy[i] * (x[i] - st[2 * t]) * st[2 * t + 1];
            sb += dy[i];
        }
        if (dgamma) dgamma[ch] += (float)sg;
        if (dbeta) dbeta[ch] += (float)sb;
    }
    s2_arena_release(c->scratch, mark);
}

// ref: torch.nn.functional.gelu (approximate="none") backward
void s2_gelu_backward(const float *x, const float *dy, float *dx, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        double cdf = 0.5 * (1.0 + erf(v * M_SQRT1_2));
        double pdf = exp(-0.5 * v * v) * 0.39894228040143267794; // 1/sqrt(2 pi)
        dx[i] = (float)((dx == dy ? 0.0 : (double)dx[i]) + dy[i] * (cdf + v * pdf));
    }
}

// ref: torch.relu backward (threshold_backward: zero where the output is not > 0)
void s2_relu_backward(const float *y, float *dy, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!(y[i] > 0.0f)) dy[i] = 0.0f;
}

// ref: torch.sigmoid backward: dy * y * (1 - y)
void s2_sigmoid_backward(const float *y, float *dy, int64_t n) {
    for (int64_t i = 0; i < n; i++) dy[i] = dy[i] * (1.0f - y[i]) * y[i];
}

/* One (batch, head) of the attention backward. q (Nq rows), k / v (Nk rows) and dout
 * point at the head's first column; P and G are (Nq, Nk) workspaces. */
static void attention_head_backward(const float *q, int64_t q_ld, const float *k, int64_t k_ld,
                                    const float *v, int64_t v_ld, const float *dout,
                                    int64_t o_ld, float *dq, float *dk, float *dv, int64_t Nq,
                                    int64_t Nk, int d, double scale, float *P, float *G) {
    for (int64_t i = 0; i < Nq; i++) { // P = softmax(scale q k^T), G = dout v^T
        float *p = P + i * Nk, *g = G + i * Nk;
        double mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < Nk; j++) {
            double s = 0.0, t = 0.0;
            for (int e = 0; e < d; e++) {
                s += (double)q[i * q_ld + e] * k[j * k_ld + e];
                t += (double)dout[i * o_ld + e] * v[j * v_ld + e];
            }
            p[j] = (float)(s * scale);
            g[j] = (float)t;
            if (p[j] > mx) mx = p[j];
        }
        for (int64_t j = 0; j < Nk; j++) sum += exp(p[j] - mx);
        double dot = 0.0;
        for (int64_t j = 0; j < Nk; j++) {
            p[j] = (float)(exp(p[j] - mx) / sum);
            dot += (double)p[j] * g[j];
        }
        for (int64_t j = 0; j < Nk; j++) g[j] = (float)(p[j] * (g[j] - dot)); // dS
    }
    for (int64_t i = 0; i < Nq; i++) // dq = scale dS k
        for (int e = 0; e < d; e++) {
            double s = 0.0;
            for (int64_t j = 0; j < Nk; j++) s += (double)G[i * Nk + j] * k[j * k_ld + e];
            dq[i * q_ld + e] += (float)(s * scale);
        }
    for (int64_t j = 0; j < Nk; j++) // dk = scale dS^T q, dv = P^T dout
        for (int e = 0; e < d; e++) {
            double sk = 0.0, sv = 0.0;
            for (int64_t i = 0; i < Nq; i++) {
                sk += (double)G[i * Nk + j] * q[i * q_ld + e];
                sv += (double)P[i * Nk + j] * dout[i * o_ld + e];
            }
            dk[j * k_ld + e] += (float)(sk * scale);
            dv[j * v_ld + e] += (float)sv;
        }
}

// ref: torch.nn.functional.scaled_dot_product_attention backward (math path)
void s2_attention_backward(s2_ctx *c, const float *q, int64_t q_ld, const float *k,
                           int64_t k_ld, const float *v, int64_t v_ld, const float *dout,
                           int64_t o_ld, float *dq, float *dk, float *dv, int B, int H,
                           int64_t Nq, int64_t Nk, int d) {
    if (B <= 0 || H <= 0 || Nq <= 0 || Nk <= 0) return;
    s2_arena_mark mark = s2_arena_get_mark(c->scratch);
    int64_t per = Nq * Nk, tasks = (int64_t)B * H;
    float *P = s2_scratch_f32(c, tasks * per); // (B*H, Nq, Nk)
    float *G = s2_scratch_f32(c, tasks * per); // (B*H, Nq, Nk)
    double scale = (double)(float)(1.0 / sqrt((double)d));
#pragma omp parallel for schedule(dynamic) if (tasks > 1)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t b = t / H, h = t % H;
        attention_head_backward(q + b * Nq * q_ld + h * d, q_ld, k + b * Nk * k_ld + h * d, k_ld,
                                v + b * Nk * v_ld + h * d, v_ld, dout + b * Nq * o_ld + h * d,
                                o_ld, dq + b * Nq * q_ld + h * d, dk + b * Nk * k_ld + h * d,
                                dv + b * Nk * v_ld + h * d, Nq, Nk, d, scale, P + t * per,
                                G + t * per);
    }
    s2_arena_release(c->scratch, mark);
}

/* The (ky, kx) phase of an [C, H, W] map on a grid of OH x OW cells of side K:
 * ph [C, OH*OW] = x[c, oy*K + ky, ox*K + kx] (gather) or x += ph (scatter, add). */
static void phase_copy(float *ph, float *x, int C, int H, int W, int OH, int OW, int K,
                       int ky, int kx, bool scatter) {
    for (int ch = 0; ch < C; ch++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                float *a = &ph[((int64_t)ch * OH + oy) * OW + ox];
                float *b = &x[((int64_t)ch * H + oy * K + ky) * W + ox * K + kx];
                if (scatter) *b += *a;
                else *a = *b;
            }
}

/* Sum over batch and pixels of dy [N, OC, P] into db [OC]. */
static void bias_grad(const float *dy, float *db, int N, int OC, int64_t P) {
#pragma omp parallel for schedule(static) if ((int64_t)N * OC * P > 65536)
    for (int oc = 0; oc < OC; oc++) {
        double s = 0.0;
        for (int n = 0; n < N; n++)
            for (int64_t p = 0; p < P; p++) s += dy[((int64_t)n * OC + oc) * P + p];
        db[oc] += (float)s;
    }
}

// ref: torch.nn.Conv2d(kernel_size=K, stride=K) backward
void s2_conv_k_eq_s_backward(s2_ctx *c, const float *x, const float *w, const float *dy,
                             float *dx, float *dw, float *db, int N, int C, int H, int W,
                             int OC, int K) {
    int OH = H / K, OW = W / K;
    int64_t P = (int64_t)OH * OW;
    if (db) bias_grad(dy, db, N, OC, P);
    s2_arena_mark mark = s2_arena_get_mark(c->scratch);
    float *xk = s2_scratch_f32(c, (int64_t)C * P);  // (C, P) one phase of x or dx
    float *wk = s2_scratch_f32(c, (int64_t)OC * C); // (OC, C)
    float *wt = s2_scratch_f32(c, (int64_t)C * OC); // (C, OC)
    for (int ky = 0; ky < K; ky++)
        for (int kx = 0; kx < K; kx++) {
            for (int o = 0; o < OC; o++)
                for (int i = 0; i < C; i++) wk[(int64_t)o * C + i] = w[(((int64_t)o * C + i) * K + ky) * K + kx];
            if (dw) memset(wt, 0, sizeof(float) * (size_t)C * OC); // wt reused as dW_k (OC, C)
            for (int n = 0; n < N; n++) {
                const float *dyn = dy + (int64_t)n * OC * P;
                float *xn = (float *)x + (int64_t)n * C * H * W;
                if (dw) {
                    phase_copy(xk, xn, C, H, W, OH, OW, K, ky, kx, false);
                    s2_op_matmul(c, wt, dyn, xk, OC, P, C, true, 1.0f, 1.0f); // (OC,P)(C,P)^T
                }
            }
            if (dw)
                for (int o = 0; o < OC; o++)
                    for (int i = 0; i < C; i++)
                        dw[(((int64_t)o * C + i) * K + ky) * K + kx] += wt[(int64_t)o * C + i];
            if (!dx) continue;
            s2_transpose(wt, wk, OC, C); // (C, OC)
            for (int n = 0; n < N; n++) {
                s2_op_matmul(c, xk, wt, dy + (int64_t)n * OC * P, C, OC, P, false, 1.0f, 0.0f);
                phase_copy(xk, dx + (int64_t)n * C * H * W, C, H, W, OH, OW, K, ky, kx, true);
            }
        }
    s2_arena_release(c->scratch, mark);
}

// ref: torch.nn.ConvTranspose2d(kernel_size=K, stride=K) backward
void s2_conv_transpose_k_eq_s_backward(s2_ctx *c, const float *x, const float *w,
                                       const float *dy, float *dx, float *dw, float *db,
                                       int N, int C, int H, int W, int OC, int K) {
    int64_t P = (int64_t)H * W;
    int OH = H * K, OW = W * K;
    if (db) bias_grad(dy, db, N, OC, P * K * K);
    s2_arena_mark mark = s2_arena_get_mark(c->scratch);
    float *dk = s2_scratch_f32(c, (int64_t)OC * P); // (OC, P) one phase of dy
    float *wk = s2_scratch_f32(c, (int64_t)C * OC); // (C, OC)
    float *gk = s2_scratch_f32(c, (int64_t)C * OC); // (C, OC) dW of the phase
    for (int ky = 0; ky < K; ky++)
        for (int kx = 0; kx < K; kx++) {
            for (int i = 0; i < C; i++)
                for (int o = 0; o < OC; o++) wk[(int64_t)i * OC + o] = w[(((int64_t)i * OC + o) * K + ky) * K + kx];
            memset(gk, 0, sizeof(float) * (size_t)C * OC);
            for (int n = 0; n < N; n++) {
                phase_copy(dk, (float *)dy + (int64_t)n * OC * OH * OW, OC, OH, OW, H, W, K, ky, kx, false);
                const float *xn = x + (int64_t)n * C * P;
                if (dw) s2_op_matmul(c, gk, xn, dk, C, P, OC, true, 1.0f, 1.0f); // (C,P)(OC,P)^T
                if (dx) s2_op_matmul(c, dx + (int64_t)n * C * P, wk, dk, C, OC, P, false, 1.0f, 1.0f);
            }
            if (dw)
                for (int i = 0; i < C; i++)
                    for (int o = 0; o < OC; o++)
                        dw[(((int64_t)i * OC + o) * K + ky) * K + kx] += gk[(int64_t)i * OC + o];
        }
    s2_arena_release(c->scratch, mark);
}

/* Bilinear taps of output index i (align_corners=False) as UpSample.h computes them:
 * source indices i0, i1 and f32 weights l0, l1. */
static void linear_tap(int in, int out, int i, int *i0, int *i1, float *l0, float *l1) {
    if (in == out) {
        *i0 = *i1 = i;
        *l0 = 1.0f, *l1 = 0.0f;
        return;
    }
    float scale = (float)in / (float)out;
    float r = (float)((double)scale * ((double)i + 0.5) - 0.5);
    if (r < 0.0f) r = 0.0f;
    *i0 = (int)r;
    *i1 = *i0 + (*i0 < in - 1 ? 1 : 0);
    *l1 = r - (float)*i0;
    *l0 = 1.0f - *l1;
}

// ref: torch.nn.functional.interpolate(mode="bilinear", align_corners=False) backward
void s2_interp_bilinear_backward(const float *dy, float *dx, int C, int H, int W, int OH,
                                 int OW) {
#pragma omp parallel for schedule(static) if (C > 1)
    for (int ch = 0; ch < C; ch++) {
        const float *g = dy + (int64_t)ch * OH * OW;
        float *o = dx + (int64_t)ch * H * W;
        for (int oy = 0; oy < OH; oy++) {
            int y0, y1, x0, x1;
            float wy0, wy1, wx0, wx1;
            linear_tap(H, OH, oy, &y0, &y1, &wy0, &wy1);
            for (int ox = 0; ox < OW; ox++) {
                linear_tap(W, OW, ox, &x0, &x1, &wx0, &wx1);
                float v = g[(int64_t)oy * OW + ox];
                o[(int64_t)y0 * W + x0] += wy0 * wx0 * v;
                o[(int64_t)y0 * W + x1] += wy0 * wx1 * v;
                o[(int64_t)y1 * W + x0] += wy1 * wx0 * v;
                o[(int64_t)y1 * W + x1] += wy1 * wx1 * v;
            }
        }
    }
}
