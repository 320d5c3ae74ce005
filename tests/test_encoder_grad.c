/* Image-encoder training (issue 8): every new backward kernel (max-pool, window
 * partition / unpartition, nearest upsampling, bicubic position embedding, patch-embed
 * convolution weights) and whole Hiera blocks (LayerNorm, windows with padding,
 * attention with q-pooling, the dim-changing shortcut, GELU MLP) against central finite
 * differences of double-precision forwards written here from the official semantics;
 * the training forward of the micro model's encoder against the inference forward; the
 * whole encoder's gradient (dense and LoRA) against finite differences of the training
 * forward on sampled weights; LoRA merging and a LoRA training step.
 * Gradient rule: max|ours - fd| <= rtol * max|fd| + atol, the worst figures printed. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include "model/image_encoder.h"
#include "model/model.h"
#include "train/encoder_train.h"
#include "train/finetune.h"
#include "train/grad_ops.h"
#include "train/step.h"

#define FD_RTOL 1e-4
#define FD_ATOL 1e-6

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

/* Uniform in [-1, 1) from a fixed-seed generator. */
static double urand(void) { return 2.0 * s2_rng_uniform(&g_rng) - 1.0; }

/* n doubles in [-scale, scale), each exactly representable as a float (caller frees). */
static double *drand_f(int64_t n, double scale) {
    double *p = malloc((size_t)(n ? n : 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++) p[i] = (float)(urand() * scale);
    return p;
}

/* A float copy of n doubles (caller frees). */
static float *fcopy(const double *x, int64_t n) {
    float *f = malloc((size_t)(n ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

static float *zbuf(int64_t n) { return calloc((size_t)(n ? n : 1), sizeof(float)); }

/* An f64 forward: L = sum w y of the op at its current (double) inputs. */
typedef double (*loss_fn)(void *op);

/* Central differences of L w.r.t. x[0..n) (step h) against the analytic g. */
static double fd_compare(const char *what, double *x, int64_t n, const float *g, loss_fn L,
                         void *op, double h, double rtol, double atol) {
    double maxref = 0.0, maxdiff = 0.0, wfd = 0.0;
    int64_t worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        x[i] = v + h;
        double lp = L(op);
        x[i] = v - h;
        double lm = L(op);
        x[i] = v;
        double fd = (lp - lm) / (2.0 * h);
        maxref = fmax(maxref, fabs(fd));
        if (fabs(fd - g[i]) > maxdiff) maxdiff = fabs(fd - g[i]), worst = i, wfd = fd;
    }
    double rel = maxref > 0 ? maxdiff / maxref : maxdiff;
    fprintf(stderr, "    %-36s worst |analytic - fd| / max|fd| = %.2e\n", what, rel);
    CHECK_MSG(maxdiff <= rtol * maxref + atol, "%s: [%lld] analytic %.8g fd %.8g (max|fd| %.4g)",
              what, (long long)worst, n ? g[worst] : 0.0f, wfd, maxref);
    return rel;
}

/* Scratch + tape arenas and a training context without weights. */
typedef struct test_ctx {
    s2_arena arena, tape;
    s2_ctx c;
    s2_tctx t;
} test_ctx;

static void ctx_init(test_ctx *t) {
    s2_arena_init(&t->arena, 1 << 20);
    s2_arena_init(&t->tape, 1 << 20);
    t->c = (s2_ctx){.be = NULL, .scratch = &t->arena};
    t->t = (s2_tctx){.c = &t->c, .tape = {.scratch = &t->tape}};
}

static void ctx_free(test_ctx *t) {
    s2_arena_free(&t->arena);
    s2_arena_free(&t->tape);
}

/* sum w y over n values. */
static double dot(const double *w, const double *y, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += w[i] * y[i];
    return s;
}

/* ---- f64 reference ops (official semantics) ------------------------------------ */

/* nn.MaxPool2d(k, k) on NHWC [N, H, W, C] (floor). */
static void d_maxpool(double *y, const double *x, int N, int H, int W, int C, int k) {
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < H / k; oy++)
            for (int ox = 0; ox < W / k; ox++)
                for (int c = 0; c < C; c++) {
                    double m = -INFINITY;
                    for (int i = 0; i < k; i++)
                        for (int j = 0; j < k; j++)
                            m = fmax(m, x[(((int64_t)n * H + oy * k + i) * W + ox * k + j) * C + c]);
                    y[(((int64_t)n * (H / k) + oy) * (W / k) + ox) * C + c] = m;
                }
}

/* utils.py window_partition: pad to multiples of ws, [nWh*nWw, ws, ws, C]. */
static void d_partition(double *win, const double *x, int H, int W, int C, int ws) {
    int nh = (H + ws - 1) / ws, nw = (W + ws - 1) / ws;
    for (int wy = 0; wy < nh; wy++)
        for (int wx = 0; wx < nw; wx++)
            for (int i = 0; i < ws; i++)
                for (int j = 0; j < ws; j++)
                    for (int c = 0; c < C; c++) {
                        int y = wy * ws + i, xx = wx * ws + j;
                        win[((((int64_t)wy * nw + wx) * ws + i) * ws + j) * C + c] =
                            y < H && xx < W ? x[((int64_t)y * W + xx) * C + c] : 0.0;
                    }
}

/* utils.py window_unpartition: [nW, ws, ws, C] -> [H, W, C] (padding dropped). */
static void d_unpartition(double *y, const double *win, int H, int W, int C, int ws) {
    int nw = (W + ws - 1) / ws;
    for (int r = 0; r < H; r++)
        for (int c = 0; c < W; c++)
            for (int j = 0; j < C; j++)
                y[((int64_t)r * W + c) * C + j] =
                    win[(((int64_t)(r / ws) * nw + c / ws) * ws * ws + (r % ws) * ws + c % ws) * C + j];
}

/* LayerNorm over the last dim. */
static void d_layernorm(double *y, const double *x, const double *g, const double *b, int64_t rows,
                        int C, double eps) {
    for (int64_t r = 0; r < rows; r++) {
        double mu = 0.0, var = 0.0;
        for (int c = 0; c < C; c++) mu += x[r * C + c];
        mu /= C;
        for (int c = 0; c < C; c++) var += (x[r * C + c] - mu) * (x[r * C + c] - mu);
        double rs = 1.0 / sqrt(var / C + eps);
        for (int c = 0; c < C; c++) y[r * C + c] = (x[r * C + c] - mu) * rs * g[c] + b[c];
    }
}

/* y [M, N] = x [M, K] w [N, K]^T + b. */
static void d_linear(double *y, const double *x, const double *w, const double *b, int64_t M,
                     int K, int N) {
    for (int64_t m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = b ? b[n] : 0.0;
            for (int k = 0; k < K; k++) s += x[m * K + k] * w[(int64_t)n * K + k];
            y[m * N + n] = s;
        }
}

/* softmax(q k^T / sqrt(d)) v per batch and head: q (B, Nq, Cq), k / v (B, Nk, ld) with
 * head h at columns h*d of q and k0 / v0 of k / v rows. */
static void d_attention(double *o, const double *q, int64_t q_ld, const double *k,
                        const double *v, int64_t kv_ld, int B, int nh, int64_t Nq, int64_t Nk, int d) {
    double *s = malloc(sizeof(double) * (size_t)Nk);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < nh; h++)
            for (int64_t i = 0; i < Nq; i++) {
                const double *qi = q + (b * Nq + i) * q_ld + h * d;
                double mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j < Nk; j++) {
                    double a = 0.0;
                    for (int e = 0; e < d; e++) a += qi[e] * k[(b * Nk + j) * kv_ld + h * d + e];
                    s[j] = a / sqrt((double)d);
                    mx = fmax(mx, s[j]);
                }
                for (int64_t j = 0; j < Nk; j++) sum += s[j] = exp(s[j] - mx);
                for (int e = 0; e < d; e++) {
                    double a = 0.0;
                    for (int64_t j = 0; j < Nk; j++) a += s[j] * v[(b * Nk + j) * kv_ld + h * d + e];
                    o[(b * Nq + i) * (int64_t)nh * d + h * d + e] = a / sum;
                }
            }
    free(s);
}

/* ---- kernels ------------------------------------------------------------------ */

typedef struct pool_op {
    int N, H, W, C, k;
    double *x, *w, *y;
} pool_op;

static double pool_loss(void *p) {
    pool_op *o = p;
    d_maxpool(o->y, o->x, o->N, o->H, o->W, o->C, o->k);
    return dot(o->w, o->y, (int64_t)o->N * (o->H / o->k) * (o->W / o->k) * o->C);
}

TEST(grad_maxpool) {
    int shapes[2][5] = {{2, 6, 4, 3, 2}, {1, 7, 5, 2, 3}}; // N H W C k (5 and 7 not multiples)
    for (int s = 0; s < 2; s++) {
        pool_op o = {.N = shapes[s][0], .H = shapes[s][1], .W = shapes[s][2], .C = shapes[s][3], .k = shapes[s][4]};
        int64_t n = (int64_t)o.N * o.H * o.W * o.C, ny = (int64_t)o.N * (o.H / o.k) * (o.W / o.k) * o.C;
        o.x = drand_f(n, 1.0), o.w = drand_f(ny, 1.0), o.y = malloc(sizeof(double) * (size_t)ny);
        float *x = fcopy(o.x, n), *dy = fcopy(o.w, ny), *dx = zbuf(n), *y = zbuf(ny);
        s2_ref_maxpool_nhwc(y, x, o.N, o.H, o.W, o.C, o.k);
        pool_loss(&o);
        for (int64_t i = 0; i < ny; i++) CHECK(y[i] == (float)o.y[i]);
        s2_maxpool_nhwc_backward(x, dy, dx, o.N, o.H, o.W, o.C, o.k);
        fd_compare(s ? "maxpool k3 (floor)" : "maxpool k2", o.x, n, dx, pool_loss, &o, 1e-6, FD_RTOL, FD_ATOL);
        // ties: the first maximum in scan order takes the gradient (PyTorch's CPU kernel)
        float tx[4] = {1, 3, 3, 2}, tdy[1] = {5}, tdx[4] = {0};
        s2_maxpool_nhwc_backward(tx, tdy, tdx, 1, 2, 2, 1, 2);
        CHECK(tdx[0] == 0 && tdx[1] == 5 && tdx[2] == 0 && tdx[3] == 0);
        free(o.x), free(o.w), free(o.y), free(x), free(dy), free(dx), free(y);
    }
}

typedef struct win_op {
    int H, W, C, ws;
    bool un;          /* unpartition (x is windows) instead of partition */
    double *x, *w, *y;
} win_op;

static int64_t n_windows(int H, int W, int ws) { return (int64_t)((H + ws - 1) / ws) * ((W + ws - 1) / ws); }

static double win_loss(void *p) {
    win_op *o = p;
    int64_t nw = n_windows(o->H, o->W, o->ws) * o->ws * o->ws * o->C, ng = (int64_t)o->H * o->W * o->C;
    if (o->un) d_unpartition(o->y, o->x, o->H, o->W, o->C, o->ws);
    else d_partition(o->y, o->x, o->H, o->W, o->C, o->ws);
    return dot(o->w, o->y, o->un ? ng : nw);
}

TEST(grad_window_partition) {
    for (int un = 0; un < 2; un++) {
        win_op o = {.H = 5, .W = 7, .C = 2, .ws = 3, .un = un == 1};
        int64_t nw = n_windows(o.H, o.W, o.ws) * o.ws * o.ws * o.C, ng = (int64_t)o.H * o.W * o.C;
        int64_t nx = un ? nw : ng, ny = un ? ng : nw;
        o.x = drand_f(nx, 1.0), o.w = drand_f(ny, 1.0), o.y = malloc(sizeof(double) * (size_t)ny);
        float *x = fcopy(o.x, nx), *dy = fcopy(o.w, ny), *dx = zbuf(nx), *y = zbuf(ny);
        win_loss(&o);
        if (un) s2_window_unpartition(y, x, o.H, o.W, o.C, o.ws);
        else s2_window_partition(y, x, o.H, o.W, o.C, o.ws);
        for (int64_t i = 0; i < ny; i++) CHECK(y[i] == (float)o.y[i]);
        if (un) s2_window_unpartition_backward(dy, dx, o.H, o.W, o.C, o.ws);
        else s2_window_partition_backward(dy, dx, o.H, o.W, o.C, o.ws);
        fd_compare(un ? "window unpartition 5x7 ws3" : "window partition 5x7 ws3 (padded)", o.x, nx, dx,
                   win_loss, &o, 1e-3, FD_RTOL, FD_ATOL);
        free(o.x), free(o.w), free(o.y), free(x), free(dy), free(dx), free(y);
    }
}

typedef struct interp_op {
    int C, H, W, OH, OW;
    bool cubic;
    double *x, *w, *y;
} interp_op;

/* PyTorch's cubic convolution weights (A = -0.75) of fraction t. */
static void cubic_w(double t, double w[4]) {
    const double A = -0.75;
    double x1 = t + 1, x2 = t, x3 = 1 - t, x4 = 2 - t;
    w[0] = ((A * x1 - 5 * A) * x1 + 8 * A) * x1 - 4 * A;
    w[1] = ((A + 2) * x2 - (A + 3)) * x2 * x2 + 1;
    w[2] = ((A + 2) * x3 - (A + 3)) * x3 * x3 + 1;
    w[3] = ((A * x4 - 5 * A) * x4 + 8 * A) * x4 - 4 * A;
}

/* F.interpolate bicubic (align_corners=False, clamped taps) or nearest, f64. */
static double interp_loss(void *p) {
    interp_op *o = p;
    for (int c = 0; c < o->C; c++)
        for (int oy = 0; oy < o->OH; oy++)
            for (int ox = 0; ox < o->OW; ox++) {
                const double *xc = o->x + (int64_t)c * o->H * o->W;
                double v = 0.0;
                if (!o->cubic) {
                    v = xc[(oy * o->H / o->OH) * o->W + ox * o->W / o->OW];
                } else {
                    double sy = (oy + 0.5) * o->H / o->OH - 0.5, sx = (ox + 0.5) * o->W / o->OW - 0.5;
                    int iy = (int)floor(sy), ix = (int)floor(sx);
                    double wy[4], wx[4];
                    cubic_w(sy - iy, wy);
                    cubic_w(sx - ix, wx);
                    for (int a = 0; a < 4; a++)
                        for (int b = 0; b < 4; b++) {
                            int yy = iy - 1 + a, xx = ix - 1 + b;
                            yy = yy < 0 ? 0 : yy >= o->H ? o->H - 1 : yy;
                            xx = xx < 0 ? 0 : xx >= o->W ? o->W - 1 : xx;
                            v += wy[a] * wx[b] * xc[yy * o->W + xx];
                        }
                }
                o->y[((int64_t)c * o->OH + oy) * o->OW + ox] = v;
            }
    return dot(o->w, o->y, (int64_t)o->C * o->OH * o->OW);
}

TEST(grad_interpolations) {
    test_ctx tc;
    ctx_init(&tc);
    interp_op ops[3] = {{.C = 3, .H = 3, .W = 4, .OH = 6, .OW = 8},
                        {.C = 2, .H = 7, .W = 7, .OH = 16, .OW = 16, .cubic = true},
                        {.C = 2, .H = 7, .W = 7, .OH = 64, .OW = 64, .cubic = true}};
    const char *names[3] = {"nearest x2 (neck top-down)", "bicubic 7x7 -> 16x16 (pos_embed)",
                            "bicubic 7x7 -> 64x64 (pos_embed)"};
    for (int s = 0; s < 3; s++) {
        interp_op o = ops[s];
        int64_t nx = (int64_t)o.C * o.H * o.W, ny = (int64_t)o.C * o.OH * o.OW;
        o.x = drand_f(nx, 1.0), o.w = drand_f(ny, 1.0), o.y = malloc(sizeof(double) * (size_t)ny);
        float *x = fcopy(o.x, nx), *dy = fcopy(o.w, ny), *dx = zbuf(nx), *y = zbuf(ny);
        interp_loss(&o);
        if (o.cubic) s2_ref_interp_bicubic(y, x, o.C, o.H, o.W, o.OH, o.OW, false);
        else s2_ref_interp_nearest(y, x, o.C, o.H, o.W, o.OH, o.OW);
        double md = 0.0;
        for (int64_t i = 0; i < ny; i++) md = fmax(md, fabs(y[i] - o.y[i]));
        CHECK_MSG(md < 1e-5, "%s: forward differs from the f64 formula by %g", names[s], md);
        if (o.cubic) s2_interp_bicubic_backward(&tc.c, dy, dx, o.C, o.H, o.W, o.OH, o.OW);
        else s2_interp_nearest_backward(dy, dx, o.C, o.H, o.W, o.OH, o.OW);
        fd_compare(names[s], o.x, nx, dx, interp_loss, &o, 1e-3, FD_RTOL, FD_ATOL);
        free(o.x), free(o.w), free(o.y), free(x), free(dy), free(dx), free(y);
    }
    ctx_free(&tc);
}

typedef struct conv_op {
    s2_conv2d_desc d;
    double *x, *wt, *b, *w, *y;
} conv_op;

static double conv_loss(void *p) {
    conv_op *o = p;
    const s2_conv2d_desc *d = &o->d;
    int OH, OW;
    s2_conv2d_out_hw(d, &OH, &OW);
    for (int n = 0; n < d->N; n++)
        for (int oc = 0; oc < d->OC; oc++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    double s = o->b[oc];
                    for (int c = 0; c < d->C; c++)
                        for (int ky = 0; ky < d->KH; ky++)
                            for (int kx = 0; kx < d->KW; kx++) {
                                int iy = oy * d->sh - d->ph + ky, ix = ox * d->sw - d->pw + kx;
                                if (iy < 0 || iy >= d->H || ix < 0 || ix >= d->W) continue;
                                s += o->wt[((oc * d->C + c) * d->KH + ky) * d->KW + kx] *
                                     o->x[(((int64_t)n * d->C + c) * d->H + iy) * d->W + ix];
                            }
                    o->y[(((int64_t)n * d->OC + oc) * OH + oy) * OW + ox] = s;
                }
    return dot(o->w, o->y, (int64_t)d->N * d->OC * OH * OW);
}

TEST(grad_patch_embed_conv) {
    test_ctx tc;
    ctx_init(&tc);
    s2_conv2d_desc ds[2] = {{1, 3, 13, 13, 4, 7, 7, 4, 4, 3, 3, 1}, {2, 2, 6, 5, 3, 3, 3, 2, 2, 1, 1, 1}};
    for (int s = 0; s < 2; s++) {
        conv_op o = {.d = ds[s]};
        const s2_conv2d_desc *d = &o.d;
        int OH, OW;
        s2_conv2d_out_hw(d, &OH, &OW);
        int64_t nx = (int64_t)d->N * d->C * d->H * d->W, nw = (int64_t)d->OC * d->C * d->KH * d->KW;
        int64_t ny = (int64_t)d->N * d->OC * OH * OW;
        o.x = drand_f(nx, 1.0), o.wt = drand_f(nw, 0.3), o.b = drand_f(d->OC, 0.3);
        o.w = drand_f(ny, 1.0), o.y = malloc(sizeof(double) * (size_t)ny);
        float *x = fcopy(o.x, nx), *wt = fcopy(o.wt, nw), *b = fcopy(o.b, d->OC), *y = zbuf(ny);
        float *dy = fcopy(o.w, ny), *dw = zbuf(nw), *db = zbuf(d->OC);
        conv_loss(&o);
        s2_ref_conv2d(y, x, wt, b, d);
        double md = 0.0;
        for (int64_t i = 0; i < ny; i++) md = fmax(md, fabs(y[i] - o.y[i]));
        CHECK(md < 1e-5);
        s2_conv2d_weight_backward(&tc.c, x, dy, dw, db, d);
        fd_compare(s ? "conv 3x3/2 pad 1 weight (batch 2)" : "patch embed 7x7/4 pad 3 weight", o.wt, nw,
                   dw, conv_loss, &o, 1e-3, FD_RTOL, FD_ATOL);
        fd_compare(s ? "conv 3x3/2 pad 1 bias" : "patch embed 7x7/4 pad 3 bias", o.b, d->OC, db,
                   conv_loss, &o, 1e-3, FD_RTOL, FD_ATOL);
        free(o.x), free(o.wt), free(o.b), free(o.w), free(o.y);
        free(x), free(wt), free(b), free(y), free(dy), free(dw), free(db);
    }
    ctx_free(&tc);
}

/* ---- attention in GEMM form (windows x heads, q-pooled rows, strided k / v) ---------- */

typedef struct attn_op {
    int B, H, d;
    int64_t Nq, Nk, kv_ld;
    double *q, *kv, *w, *o;   /* q (B*Nq, H*d), kv (B*Nk, kv_ld) holding k then v */
} attn_op;

static double attn_loss(void *p) {
    attn_op *a = p;
    d_attention(a->o, a->q, (int64_t)a->H * a->d, a->kv, a->kv + (int64_t)a->H * a->d, a->kv_ld,
                a->B, a->H, a->Nq, a->Nk, a->d);
    return dot(a->w, a->o, (int64_t)a->B * a->Nq * a->H * a->d);
}

TEST(grad_attention_gemm) {
    test_ctx tc;
    ctx_init(&tc);
    attn_op a = {.B = 3, .H = 2, .d = 4, .Nq = 3, .Nk = 7, .kv_ld = 3 * 2 * 4};
    int64_t C = (int64_t)a.H * a.d, nq = a.B * a.Nq * C, nkv = a.B * a.Nk * a.kv_ld;
    a.q = drand_f(nq, 1.0), a.kv = drand_f(nkv, 1.0), a.w = drand_f(nq, 1.0);
    a.o = malloc(sizeof(double) * (size_t)nq);
    float *q = fcopy(a.q, nq), *kv = fcopy(a.kv, nkv), *dy = fcopy(a.w, nq);
    float *dq = zbuf(nq), *dkv = zbuf(nkv), *o = zbuf(nq);
    s2_ref_attention(o, C, q, C, kv, a.kv_ld, kv + C, a.kv_ld, a.B, a.H, a.Nq, a.Nk, a.d);
    attn_loss(&a);
    double md = 0.0;
    for (int64_t i = 0; i < nq; i++) md = fmax(md, fabs(o[i] - a.o[i]));
    CHECK(md < 1e-5);
    s2_attention_backward_gemm(&tc.c, q, C, kv, a.kv_ld, kv + C, a.kv_ld, dy, C, dq, dkv, dkv + C,
                               a.B, a.H, a.Nq, a.Nk, a.d);
    fd_compare("attention (gemm) dq", a.q, nq, dq, attn_loss, &a, 1e-4, FD_RTOL, FD_ATOL);
    fd_compare("attention (gemm) dk, dv (strided)", a.kv, nkv, dkv, attn_loss, &a, 1e-4, FD_RTOL, FD_ATOL);
    for (int64_t r = 0; r < a.B * a.Nk; r++) // the unused third of each row stays zero
        for (int64_t j = 2 * C; j < a.kv_ld; j++) CHECK(dkv[r * a.kv_ld + j] == 0.0f);
    free(a.q), free(a.kv), free(a.w), free(a.o), free(q), free(kv), free(dy), free(dq), free(dkv), free(o);
    ctx_free(&tc);
}

/* ---- one Hiera block ---------------------------------------------------------------- */

/* Parameter tensors of a block in one double vector (offsets below), plus its input. */
enum { P_N1W, P_N1B, P_QKVW, P_QKVB, P_APW, P_APB, P_SCW, P_SCB, P_N2W, P_N2B, P_F1W,
       P_F1B, P_F2W, P_F2B, P_X, P_COUNT };
static const char *const p_names[P_COUNT] = {
    "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
    "attn.proj.bias", "proj.weight", "proj.bias", "norm2.weight", "norm2.bias",
    "mlp.layers.0.weight", "mlp.layers.0.bias", "mlp.layers.1.weight", "mlp.layers.1.bias",
    "input x"};

typedef struct block_op {
    s2_hblock_dims k;
    int64_t off[P_COUNT + 1];
    double *p;          /* every parameter and the input */
    double *wy;         /* loss weights (Ho*Wo, Co) */
} block_op;

/* Sizes of the parameter tensors of dims k. */
static void block_sizes(const s2_hblock_dims *k, int64_t n[P_COUNT]) {
    bool sc = k->C != k->Co;
    int64_t v[P_COUNT] = {k->C, k->C, 3LL * k->Co * k->C, 3LL * k->Co, (int64_t)k->Co * k->Co, k->Co,
                          sc ? (int64_t)k->Co * k->C : 0, sc ? k->Co : 0, k->Co, k->Co,
                          (int64_t)k->Hd * k->Co, k->Hd, (int64_t)k->Co * k->Hd, k->Co,
                          (int64_t)k->H * k->W * k->C};
    memcpy(n, v, sizeof v);
}

#define BP(o, i) ((o)->p + (o)->off[i])

/* hieradet.py MultiScaleBlock.forward in f64 into y (Ho*Wo, Co). */
static void d_block(const block_op *o, double *y) {
    const s2_hblock_dims *k = &o->k;
    int64_t N = (int64_t)k->H * k->W, No = (int64_t)k->Ho * k->Wo;
    int nWh = k->ws ? (k->H + k->ws - 1) / k->ws : 1, nWw = k->ws ? (k->W + k->ws - 1) / k->ws : 1;
    int sh = k->ws ? k->ws : k->H, sw = k->ws ? k->ws : k->W, nW = nWh * nWw;
    int64_t T = (int64_t)sh * sw, Tq = k->pool ? (int64_t)(sh / k->qs) * (sw / k->qs) : T;
    double *xn = malloc(sizeof(double) * N * k->C), *sc = malloc(sizeof(double) * N * k->Co);
    double *win = malloc(sizeof(double) * nW * T * k->C), *qkv = malloc(sizeof(double) * nW * T * 3 * k->Co);
    double *q = malloc(sizeof(double) * nW * T * k->Co), *qp = malloc(sizeof(double) * nW * T * k->Co);
    double *att = malloc(sizeof(double) * nW * Tq * k->Co), *a = malloc(sizeof(double) * nW * Tq * k->Co);
    double *y1 = malloc(sizeof(double) * No * k->Co), *h = malloc(sizeof(double) * No * k->Hd);
    double *t = malloc(sizeof(double) * N * k->Co);
    d_layernorm(xn, BP(o, P_X), BP(o, P_N1W), BP(o, P_N1B), N, k->C, 1e-6);
    if (k->C != k->Co) { // shortcut = do_pool(proj(norm1(x)))
        d_linear(t, xn, BP(o, P_SCW), BP(o, P_SCB), N, k->C, k->Co);
        if (k->pool) d_maxpool(sc, t, 1, k->H, k->W, k->Co, k->qs);
        else memcpy(sc, t, sizeof(double) * N * k->Co);
    } else {
        memcpy(sc, BP(o, P_X), sizeof(double) * N * k->C);
    }
    if (k->ws) d_partition(win, xn, k->H, k->W, k->C, k->ws);
    else memcpy(win, xn, sizeof(double) * N * k->C);
    d_linear(qkv, win, BP(o, P_QKVW), BP(o, P_QKVB), nW * T, k->C, 3 * k->Co);
    for (int64_t r = 0; r < nW * T; r++) memcpy(q + r * k->Co, qkv + r * 3 * k->Co, sizeof(double) * k->Co);
    if (k->pool) d_maxpool(qp, q, nW, sh, sw, k->Co, k->qs);
    else memcpy(qp, q, sizeof(double) * nW * T * k->Co);
    d_attention(att, qp, k->Co, qkv + k->Co, qkv + 2 * k->Co, 3 * k->Co, nW, k->nh, Tq, T, k->Co / k->nh);
    d_linear(a, att, BP(o, P_APW), BP(o, P_APB), nW * Tq, k->Co, k->Co);
    if (k->ws) d_unpartition(y1, a, k->Ho, k->Wo, k->Co, k->pool ? k->ws / k->qs : k->ws);
    else memcpy(y1, a, sizeof(double) * No * k->Co);
    for (int64_t i = 0; i < No * k->Co; i++) y1[i] += sc[i];
    d_layernorm(t, y1, BP(o, P_N2W), BP(o, P_N2B), No, k->Co, 1e-6);
    d_linear(h, t, BP(o, P_F1W), BP(o, P_F1B), No, k->Co, k->Hd);
    for (int64_t i = 0; i < No * k->Hd; i++) h[i] = 0.5 * h[i] * (1.0 + erf(h[i] / sqrt(2.0)));
    d_linear(y, h, BP(o, P_F2W), BP(o, P_F2B), No, k->Hd, k->Co);
    for (int64_t i = 0; i < No * k->Co; i++) y[i] += y1[i];
    free(xn), free(sc), free(win), free(qkv), free(q), free(qp), free(att), free(a), free(y1), free(h), free(t);
}

static double block_loss(void *p) {
    block_op *o = p;
    int64_t n = (int64_t)o->k.Ho * o->k.Wo * o->k.Co;
    double *y = malloc(sizeof(double) * (size_t)n);
    d_block(o, y);
    double L = dot(o->wy, y, n);
    free(y);
    return L;
}

/* One block's forward against the f64 formula and every gradient against central
 * differences. */
static void check_block(const char *what, s2_hblock_dims k) {
    block_op o = {.k = k};
    int64_t n[P_COUNT];
    block_sizes(&k, n);
    for (int i = 0; i < P_COUNT; i++) o.off[i + 1] = o.off[i] + n[i];
    o.p = drand_f(o.off[P_COUNT], 0.5);
    for (int i = 0; i < k.C; i++) BP(&o, P_N1W)[i] = (float)(1.0 + 0.3 * urand());
    for (int i = 0; i < k.Co; i++) BP(&o, P_N2W)[i] = (float)(1.0 + 0.3 * urand());
    for (int64_t i = 0; i < n[P_X]; i++) BP(&o, P_X)[i] = (float)(2.0 * urand());
    int64_t No = (int64_t)k.Ho * k.Wo * k.Co;
    o.wy = drand_f(No, 1.0);
    float *pf = fcopy(o.p, o.off[P_COUNT]), *g = zbuf(o.off[P_COUNT]), *dy = fcopy(o.wy, No);
#define PF(i) (n[i] ? pf + o.off[i] : NULL)
#define PG(i) (n[i] ? g + o.off[i] : NULL)
    s2_hblock_w w = {PF(P_N1W), PF(P_N1B), PF(P_QKVW), PF(P_QKVB), PF(P_APW), PF(P_APB), PF(P_SCW),
                     PF(P_SCB), PF(P_N2W), PF(P_N2B), PF(P_F1W), PF(P_F1B), PF(P_F2W), PF(P_F2B)};
    s2_hblock_g gr = {PG(P_N1W), PG(P_N1B), PG(P_QKVW), PG(P_QKVB), PG(P_APW), PG(P_APB), PG(P_SCW),
                      PG(P_SCB), PG(P_N2W), PG(P_N2B), PG(P_F1W), PG(P_F1B), PG(P_F2W), PG(P_F2B)};
    test_ctx tc;
    ctx_init(&tc);
    s2_hblock_tape tp;
    REQUIRE(s2_hblock_forward_train(&tc.t, &k, &w, pf + o.off[P_X], &tp) == 0);
    double *yd = malloc(sizeof(double) * (size_t)No);
    d_block(&o, yd);
    float *yf = fcopy(yd, No);
    double rel;
    CHECK(s2t_allclose(what, tp.y, yf, No, 1e-5, 1e-6, &rel));
    s2_hblock_backward(&tc.t, &tp, &w, &gr, dy, g + o.off[P_X]);
    fprintf(stderr, "    %s: forward vs f64 %.1e\n", what, rel);
    for (int i = 0; i < P_COUNT; i++) {
        if (!n[i]) continue;
        char name[96];
        snprintf(name, sizeof name, "  %s", p_names[i]);
        fd_compare(name, o.p + o.off[i], n[i], g + o.off[i], block_loss, &o, 1e-5, FD_RTOL, FD_ATOL);
    }
#undef PF
#undef PG
    ctx_free(&tc);
    free(o.p), free(o.wy), free(pf), free(g), free(dy), free(yd), free(yf);
}

TEST(grad_hiera_blocks) {
    // windowed + padded (6 -> 8), q-pooled onto windows of 2, dim 4 -> 8, 2 heads
    check_block("window 4 + q-pool + proj", (s2_hblock_dims){6, 6, 4, 3, 3, 8, 2, 4, 2, 16, true});
    // global attention, same dim
    check_block("global", (s2_hblock_dims){4, 4, 8, 4, 4, 8, 2, 0, 2, 12, false});
    // windowed with padding (5 -> 6), no pooling, one head
    check_block("window 3 padded", (s2_hblock_dims){5, 5, 4, 5, 5, 4, 1, 3, 2, 8, false});
    // global attention with q-pooling and the dim change
    check_block("global + q-pool + proj", (s2_hblock_dims){4, 4, 4, 2, 2, 8, 2, 0, 2, 8, true});
    // the dims check refuses a pooling that does not land on the window grid
    test_ctx tc;
    ctx_init(&tc);
    s2_hblock_tape tp;
    s2_hblock_dims bad = {6, 6, 4, 3, 3, 8, 2, 2, 4, 16, true};
    CHECK(s2_hblock_forward_train(&tc.t, &bad, &(s2_hblock_w){0}, NULL, &tp) == SAM2C_ERR_UNSUPPORTED);
    ctx_free(&tc);
}

/* ---- the micro model's encoder ----------------------------------------------------- */

static sam2c_model *load_micro(void) {
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return NULL;
    }
    sam2c_model *m = NULL;
    int rc = sam2c_model_load(s2t_fx("micro/model.pt"), NULL, &m);
    CHECK_MSG(rc == 0, "model load: %s", sam2c_last_error());
    return m;
}

/* A normalised-looking random image (3, S, S): smooth colour fields plus noise. */
static float *rand_image(int S) {
    float *img = malloc(sizeof(float) * 3 * (size_t)S * S);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                img[((size_t)c * S + y) * S + x] =
                    (float)(1.2 * sin(0.05 * x + 0.9 * c) * cos(0.037 * y) + 0.3 * urand());
    return img;
}

/* A training context on a trainable copy of m (dense modules, LoRA rank). */
typedef struct enc_env {
    test_ctx tc;
    s2_trainable *p;
    s2_tctx t;
} enc_env;

static int env_init(enc_env *e, const sam2c_model *m, unsigned mods, int rank, double alpha) {
    ctx_init(&e->tc);
    int rc = s2_trainable_create_lora(m, mods, rank, alpha, 7, &e->p);
    e->t = (s2_tctx){.c = &e->tc.c, .tape = {.scratch = &e->tc.tape}, .m = e->p ? e->p->m : NULL,
                     .p = e->p};
    return rc;
}

static void env_free(enc_env *e) {
    s2_trainable_free(e->p);
    ctx_free(&e->tc);
}

/* Compares the kept neck levels of a training tape with an inference output. */
static void compare_levels(const char *what, const s2_enc_tape *et, const s2_backbone_out *bb) {
    for (int k = 0; k < bb->n_levels; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s level %d", what, k);
        double rel;
        int64_t n = (int64_t)bb->C * bb->h[k] * bb->w[k];
        CHECK(s2t_allclose(name, et->out[k], bb->fpn[k], n, 1e-4, 1e-5, &rel));
        fprintf(stderr, "    %-32s max|diff| / max|ref| = %.2e\n", name, rel);
    }
}

/* The inference encoder of model m on img into a fresh output (caller frees buf). */
static int infer(test_ctx *tc, const sam2c_model *m, const float *img, s2_backbone_out *bb, float **buf) {
    *buf = malloc(sizeof(float) * s2_backbone_out_floats(&m->cfg));
    s2_backbone_out_carve(&m->cfg, *buf, bb);
    int rc = s2_image_encoder_forward(&tc->c, m, img, bb);
    s2_arena_reset(tc->c.scratch);
    return rc;
}

TEST(encoder_forward_matches_inference) {
    sam2c_model *m = load_micro();
    if (!m) return;
    enc_env env;
    REQUIRE(env_init(&env, m, S2_TRAIN_HEADS | S2_TRAIN_IMAGE_ENCODER, 0, 0) == 0);
    float *img = rand_image(m->cfg.image_size), *buf = NULL;
    s2_backbone_out bb;
    REQUIRE(infer(&env.tc, m, img, &bb, &buf) == 0);
    s2_enc_tape *et = calloc(1, sizeof *et);
    REQUIRE(s2_encoder_forward_train(&env.t, img, et) == 0);
    CHECK_EQ_INT(et->kept, 3);
    CHECK_EQ_INT(et->g.n_blocks, 7);
    compare_levels("train vs inference", et, &bb);
    free(et), free(img), free(buf);
    env_free(&env);
    sam2c_model_free(m);
}

/* The encoder as one function of its weights: L = sum_k sum w_k out_k over sparse w
 * (f32 forward, f64 sum). */
typedef struct enc_op {
    enc_env *env;
    const float *img;
    float *w[3];          /* (D, lh, lw) per kept level, mostly zero */
    s2_enc_tape *et;
} enc_op;

static double enc_loss(enc_op *o) {
    s2_arena_reset(&o->env->tc.tape);
    if (s2_encoder_forward_train(&o->env->t, o->img, o->et) < 0) return NAN;
    double L = 0.0;
    for (int k = 0; k < 3; k++) {
        int64_t n = (int64_t)o->et->D * o->et->g.lh[k] * o->et->g.lw[k];
        for (int64_t i = 0; i < n; i++)
            if (o->w[k][i] != 0.0f) L += (double)o->w[k][i] * o->et->out[k][i];
    }
    return L;
}

/* Central difference of L at data[i] with step h (relative to max(1, |v|) / 10). */
static double enc_fd(enc_op *o, float *data, int64_t i, double h) {
    float v0 = data[i];
    h *= fmax(0.1, fabs(v0));
    data[i] = (float)(v0 + h);
    double hp = (double)data[i] - v0, lp = enc_loss(o);
    data[i] = (float)(v0 - h);
    double hm = v0 - (double)data[i], lm = enc_loss(o);
    data[i] = v0;
    return (lp - lm) / (hp + hm);
}

/* Directional derivative of L along the unit gradient g / |g| of one tensor, as a ratio
 * to |g| (1 when the gradient is right), by central differences with step eps |w|. */
static double enc_dir_ratio(enc_op *o, float *data, const float *g, int64_t n, double eps) {
    double gn = 0.0, wn = 0.0;
    for (int64_t k = 0; k < n; k++) gn += (double)g[k] * g[k], wn += (double)data[k] * data[k];
    gn = sqrt(gn), wn = sqrt(wn);
    float *w0 = malloc(sizeof(float) * (size_t)n);
    memcpy(w0, data, sizeof(float) * (size_t)n);
    double t = eps * fmax(wn, 1e-2), L[2];
    for (int s = 0; s < 2; s++) {
        for (int64_t k = 0; k < n; k++) data[k] = (float)(w0[k] + (s ? -t : t) * g[k] / gn);
        L[s] = enc_loss(o);
    }
    memcpy(data, w0, sizeof(float) * (size_t)n);
    free(w0);
    return (L[0] - L[1]) / (2.0 * t) / gn;
}

/* One tensor's gradient: the directional derivative along it within 1% of |g| (the
 * better of two steps: the q-pools' max kinks and the f32 forward blur single
 * differences), and two elements (the largest gradient and a fixed one) whose central
 * differences at h = 1e-2, 3e-3, 1e-3 (x max(0.1, |v|)) have a median within
 * 2e-2 (|median| + max|grad|) + their spread of the analytic value. */
static void enc_check(enc_op *o, const char *name, float *data, const float *grad, int64_t n,
                      double *worst_dir, double *worst_el) {
    double gmax = 0.0;
    int64_t at[2] = {0, 7919 % n};
    for (int64_t i = 0; i < n; i++)
        if (fabs(grad[i]) > gmax) gmax = fabs(grad[i]), at[0] = i;
    CHECK_MSG(gmax > 0.0, "%s: zero gradient", name);
    if (gmax == 0.0) return;
    double r1 = enc_dir_ratio(o, data, grad, n, 1e-3), r2 = enc_dir_ratio(o, data, grad, n, 2.5e-4);
    double dr = fmin(fabs(r1 - 1.0), fabs(r2 - 1.0));
    *worst_dir = fmax(*worst_dir, dr);
    CHECK_MSG(dr <= 1e-2, "%s: directional derivative / |g| = %.5f, %.5f", name, r1, r2);
    for (int j = 0; j < 2; j++) {
        double fd[3] = {enc_fd(o, data, at[j], 1e-2), enc_fd(o, data, at[j], 3e-3), enc_fd(o, data, at[j], 1e-3)};
        double lo = fmin(fd[0], fmin(fd[1], fd[2])), hi = fmax(fd[0], fmax(fd[1], fd[2]));
        double med = fd[0] + fd[1] + fd[2] - lo - hi;
        double d = fabs(med - grad[at[j]]), tol = 2e-2 * (fabs(med) + gmax) + (hi - lo);
        *worst_el = fmax(*worst_el, d / tol);
        CHECK_MSG(d <= tol, "%s[%lld]: analytic %.7g fd %.7g %.7g %.7g", name, (long long)at[j],
                  grad[at[j]], fd[0], fd[1], fd[2]);
    }
}

/* Analytic gradients of L for env's trainable set. */
static void enc_grads(enc_op *o) {
    s2_trainable_zero_grad(o->env->p);
    s2_arena_reset(&o->env->tc.tape);
    REQUIRE(s2_encoder_forward_train(&o->env->t, o->img, o->et) == 0);
    s2_encoder_backward(&o->env->t, o->et, (const float *const[4]){o->w[0], o->w[1], o->w[2], NULL});
}

/* Sparse loss weights: one value in 97 per level is non-zero. */
static void enc_weights(enc_op *o, const s2_config *c) {
    s2_hiera_geom g;
    s2_hiera_geom_init(c, &g);
    for (int k = 0; k < 3; k++) {
        int64_t n = (int64_t)c->d_model * g.lh[k] * g.lw[k];
        o->w[k] = zbuf(n);
        for (int64_t i = 0; i < n; i += 97) o->w[k][i] = (float)urand();
    }
}

static const char *const enc_probed[] = {
    "image_encoder.trunk.patch_embed.proj.weight", "image_encoder.trunk.patch_embed.proj.bias",
    "image_encoder.trunk.pos_embed", "image_encoder.trunk.pos_embed_window",
    "image_encoder.trunk.blocks.0.attn.qkv.weight", "image_encoder.trunk.blocks.0.norm1.weight",
    "image_encoder.trunk.blocks.1.proj.weight", "image_encoder.trunk.blocks.1.attn.qkv.weight",
    "image_encoder.trunk.blocks.2.mlp.layers.1.weight", "image_encoder.trunk.blocks.3.attn.proj.weight",
    "image_encoder.trunk.blocks.4.attn.qkv.weight", "image_encoder.trunk.blocks.4.norm2.bias",
    "image_encoder.trunk.blocks.5.mlp.layers.0.weight", "image_encoder.trunk.blocks.6.attn.qkv.bias",
    "image_encoder.trunk.blocks.6.proj.weight", "image_encoder.neck.convs.0.conv.weight",
    "image_encoder.neck.convs.1.conv.bias", "image_encoder.neck.convs.3.conv.weight"};

TEST(grad_encoder_finite_differences) {
    sam2c_model *m = load_micro();
    if (!m) return;
    enc_env env;
    REQUIRE(env_init(&env, m, S2_TRAIN_IMAGE_ENCODER, 0, 0) == 0);
    enc_op o = {&env, rand_image(m->cfg.image_size), {0}, calloc(1, sizeof(s2_enc_tape))};
    enc_weights(&o, &m->cfg);
    enc_grads(&o);
    double wd = 0.0, we = 0.0;
    for (size_t j = 0; j < sizeof enc_probed / sizeof *enc_probed; j++) {
        int i = s2_weight_slot(env.p->m, "%s", enc_probed[j]);
        REQUIRE(i >= 0 && env.p->grad[i]);
        enc_check(&o, enc_probed[j], env.p->m->w[i].t.data, env.p->grad[i], s2_tensor_numel(&env.p->m->w[i].t), &wd, &we);
    }
    fprintf(stderr, "    dense: %zu tensors: worst |directional / |g| - 1| = %.1e, elements: worst "
            "|analytic - fd| / tolerance = %.2f\n", sizeof enc_probed / sizeof *enc_probed, wd, we);
    // LoRA rank 4, alpha 8 on random B (A alone has no gradient while B = 0)
    env_free(&env);
    REQUIRE(env_init(&env, m, S2_TRAIN_HEADS, 4, 8.0) == 0);
    o.env = &env;
    CHECK_EQ_INT(env.p->n_lora, 14);
    CHECK(env.p->lora_scale == 2.0f);
    for (int l = 0; l < env.p->n_lora; l++) {
        s2_tensor *B = &env.p->m->w[env.p->lora[l].b].t;
        for (int64_t i = 0; i < s2_tensor_numel(B); i++) ((float *)B->data)[i] = (float)(0.05 * urand());
    }
    enc_grads(&o);
    CHECK(s2_grad_opt(env.p, "image_encoder.trunk.blocks.0.attn.qkv.weight") == NULL);
    wd = we = 0.0;
    for (int l = 0; l < env.p->n_lora; l += 3)
        for (int ab = 0; ab < 2; ab++) {
            int i = ab ? env.p->lora[l].b : env.p->lora[l].a;
            enc_check(&o, env.p->m->w[i].name, env.p->m->w[i].t.data, env.p->grad[i], s2_tensor_numel(&env.p->m->w[i].t), &wd, &we);
        }
    fprintf(stderr, "    LoRA: 10 adapters: worst |directional / |g| - 1| = %.1e, elements: worst "
            "|analytic - fd| / tolerance = %.2f\n", wd, we);
    for (int k = 0; k < 3; k++) free(o.w[k]);
    free((float *)o.img), free(o.et);
    env_free(&env);
    sam2c_model_free(m);
}
