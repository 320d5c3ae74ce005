/* Fine-tuning tests: every backward kernel against central finite differences of a
 * double-precision forward written here (tiny sizes); the loss gradient against finite
 * differences; the whole heads backward (mask input included) against finite differences
 * of the training forward; the training forward against the inference decoder; the
 * official single training step of fixtures/train (losses, outputs, every gradient);
 * AdamW against hand-computed PyTorch steps; and `sam2c finetune` end to end.
 * Gradient rule: max|ours - ref| <= rtol * max|ref| + atol, the worst figures printed. */
#include "harness.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "io/tensorfile.h"
#include "model/model.h"
#include "model/sam_heads.h"
#include "train/grad_ops.h"
#include "train/heads_train.h"
#include "train/loss.h"
#include "train/step.h"
#include "train/finetune.h"
#include "io/image.h"

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t g_rng = 0x243F6A8885A308D3ull;

/* Uniform in [-1, 1) from a fixed-seed generator. */
static double urand(void) { return 2.0 * s2_rng_uniform(&g_rng) - 1.0; }

/* n random floats in [-scale, scale) (caller frees). */
static float *rbuf(int64_t n, double scale) {
    float *p = malloc((size_t)(n ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = (float)(urand() * scale);
    return p;
}

static float *zbuf(int64_t n) { return calloc((size_t)(n ? n : 1), sizeof(float)); }

/* A double copy of n floats (caller frees). */
static double *dcopy(const float *x, int64_t n) {
    double *d = malloc((size_t)(n ? n : 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* An f64 forward of one op: reads its inputs (double copies) and returns
 * L = sum_i w[i] y[i] for the fixed weights w. */
typedef double (*loss_fn)(void *op);

/* Central finite differences of L w.r.t. every element of x [n] (h step), compared with
 * the analytic gradient g under max|g - fd| <= rtol * max|fd| + atol. */
static double fd_compare(const char *what, double *x, int64_t n, const float *g, loss_fn L,
                         void *op, double h, double rtol, double atol) {
    double maxref = 0.0, maxdiff = 0.0;
    int64_t worst = 0;
    double wfd = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        x[i] = v + h;
        double lp = L(op);
        x[i] = v - h;
        double lm = L(op);
        x[i] = v;
        double fd = (lp - lm) / (2.0 * h);
        if (fabs(fd) > maxref) maxref = fabs(fd);
        if (fabs(fd - g[i]) > maxdiff) maxdiff = fabs(fd - g[i]), worst = i, wfd = fd;
    }
    double rel = maxref > 0 ? maxdiff / maxref : maxdiff;
    fprintf(stderr, "    %-34s worst |analytic - fd| / max|fd| = %.2e\n", what, rel);
    CHECK_MSG(maxdiff <= rtol * maxref + atol, "%s: [%lld] analytic %.8g fd %.8g (max|fd| %.4g)",
              what, (long long)worst, g[worst], wfd, maxref);
    return rel;
}

/* A context with a reference backend and a growing scratch arena. */
typedef struct test_ctx {
    s2_arena arena, tape;
    s2_ctx c;
} test_ctx;

static void ctx_init(test_ctx *t) {
    s2_arena_init(&t->arena, 1 << 20);
    s2_arena_init(&t->tape, 1 << 20);
    t->c = (s2_ctx){.be = NULL, .scratch = &t->arena};
}

static void ctx_free(test_ctx *t) {
    s2_arena_free(&t->arena);
    s2_arena_free(&t->tape);
}

#define FD_RTOL 1e-4
#define FD_ATOL 1e-6

/* ---- Linear ------------------------------------------------------------------- */

typedef struct lin_op {
    int M, K, N;
    double *x, *w, *b;
    const float *dy;
} lin_op;

static double lin_loss(void *p) {
    lin_op *o = p;
    double L = 0.0;
    for (int m = 0; m < o->M; m++)
        for (int n = 0; n < o->N; n++) {
            double y = o->b[n];
            for (int k = 0; k < o->K; k++) y += o->x[m * o->K + k] * o->w[n * o->K + k];
            L += o->dy[m * o->N + n] * y;
        }
    return L;
}

TEST(grad_linear) {
    test_ctx tc;
    ctx_init(&tc);
    int M = 5, K = 7, N = 4;
    float *x = rbuf(M * K, 1), *w = rbuf(N * K, 1), *b = rbuf(N, 1), *dy = rbuf(M * N, 1);
    float *dx = zbuf(M * K), *dw = zbuf(N * K), *db = zbuf(N);
    s2_linear_backward(&tc.c, x, w, dy, dx, dw, db, M, K, N);
    lin_op o = {M, K, N, dcopy(x, M * K), dcopy(w, N * K), dcopy(b, N), dy};
    fd_compare("linear dx", o.x, M * K, dx, lin_loss, &o, 1e-4, FD_RTOL, FD_ATOL);
    fd_compare("linear dw", o.w, N * K, dw, lin_loss, &o, 1e-4, FD_RTOL, FD_ATOL);
    fd_compare("linear db", o.b, N, db, lin_loss, &o, 1e-4, FD_RTOL, FD_ATOL);
    free(x), free(w), free(b), free(dy), free(dx), free(dw), free(db);
    free(o.x), free(o.w), free(o.b);
    ctx_free(&tc);
}

/* ---- LayerNorm / LayerNorm2d --------------------------------------------------- */

typedef struct ln_op {
    int N, C;
    int64_t HW;         /* 1 for LayerNorm over the last dim: rows = N */
    double *x, *g, *b;
    double eps;
    const float *dy;
} ln_op;

/* Normalises over C values at stride HW for each (n, p) pixel. */
static double ln_loss(void *p) {
    ln_op *o = p;
    double L = 0.0;
    for (int n = 0; n < o->N; n++)
        for (int64_t q = 0; q < o->HW; q++) {
            const double *x = o->x + (int64_t)n * o->C * o->HW + q;
            double mu = 0, var = 0;
            for (int c = 0; c < o->C; c++) mu += x[c * o->HW];
            mu /= o->C;
            for (int c = 0; c < o->C; c++) var += (x[c * o->HW] - mu) * (x[c * o->HW] - mu);
            var /= o->C;
            for (int c = 0; c < o->C; c++) {
                double y = (x[c * o->HW] - mu) / sqrt(var + o->eps) * o->g[c] + o->b[c];
                L += o->dy[(int64_t)n * o->C * o->HW + c * o->HW + q] * y;
            }
        }
    return L;
}

TEST(grad_layernorm) {
    test_ctx tc;
    ctx_init(&tc);
    int R = 3, C = 8, N = 2, C2 = 5, HW = 6;
    float *x = rbuf(R * C, 2), *g = rbuf(C, 1), *b = rbuf(C, 1), *dy = rbuf(R * C, 1);
    float *dx = zbuf(R * C), *dg = zbuf(C), *db = zbuf(C);
    s2_layernorm_backward(x, g, dy, dx, dg, db, R, C, 1e-5f);
    ln_op o = {R, C, 1, dcopy(x, R * C), dcopy(g, C), dcopy(b, C), 1e-5, dy};
    fd_compare("layernorm dx", o.x, R * C, dx, ln_loss, &o, 1e-4, FD_RTOL, FD_ATOL);
    fd_compare("layernorm dgamma", o.g, C, dg, ln_loss, &o, 1e-4, FD_RTOL, FD_ATOL);
    fd_compare("layernorm dbeta", o.b, C, db, ln_loss, &o, 1e-4, FD_RTOL, FD_ATOL);
    float *x2 = rbuf(N * C2 * HW, 2), *g2 = rbuf(C2, 1), *b2 = rbuf(C2, 1), *dy2 = rbuf(N * C2 * HW, 1);
    float *dx2 = zbuf(N * C2 * HW), *dg2 = zbuf(C2), *db2 = zbuf(C2);
    s2_layernorm2d_backward(&tc.c, x2, g2, dy2, dx2, dg2, db2, N, C2, HW, 1e-6f);
    ln_op o2 = {N, C2, HW, dcopy(x2, N * C2 * HW), dcopy(g2, C2), dcopy(b2, C2), 1e-6, dy2};
    fd_compare("layernorm2d dx", o2.x, N * C2 * HW, dx2, ln_loss, &o2, 1e-4, FD_RTOL, FD_ATOL);
    fd_compare("layernorm2d dgamma", o2.g, C2, dg2, ln_loss, &o2, 1e-4, FD_RTOL, FD_ATOL);
    fd_compare("layernorm2d dbeta", o2.b, C2, db2, ln_loss, &o2, 1e-4, FD_RTOL, FD_ATOL);
    free(x), free(g), free(b), free(dy), free(dx), free(dg), free(db);
    free(x2), free(g2), free(b2), free(dy2), free(dx2), free(dg2), free(db2);
    free(o.x), free(o.g), free(o.b), free(o2.x), free(o2.g), free(o2.b);
    ctx_free(&tc);
}

/* ---- activations ---------------------------------------------------------------- */

typedef struct act_op {
    int n, kind; /* 0 gelu, 1 relu, 2 sigmoid */
    double *x;
    const float *dy;
} act_op;

static double act_loss(void *p) {
    act_op *o = p;
    double L = 0.0;
    for (int i = 0; i < o->n; i++) {
        double v = o->x[i], y;
        if (o->kind == 0) y = 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
        else if (o->kind == 1) y = v > 0 ? v : 0;
        else y = 1.0 / (1.0 + exp(-v));
        L += o->dy[i] * y;
    }
    return L;
}

TEST(grad_activations) {
    int n = 24;
    float *x = rbuf(n, 3), *dy = rbuf(n, 1), *dx = zbuf(n), *y = zbuf(n), *d = zbuf(n);
    act_op o = {n, 0, dcopy(x, n), dy};
    s2_gelu_backward(x, dy, dx, n);
    fd_compare("gelu dx", o.x, n, dx, act_loss, &o, 1e-5, FD_RTOL, FD_ATOL);
    memcpy(y, x, sizeof(float) * n);
    s2_ref_relu(y, n);
    memcpy(d, dy, sizeof(float) * n);
    s2_relu_backward(y, d, n);
    o.kind = 1;
    fd_compare("relu dx", o.x, n, d, act_loss, &o, 1e-5, FD_RTOL, FD_ATOL);
    memcpy(y, x, sizeof(float) * n);
    s2_ref_sigmoid(y, n);
    memcpy(d, dy, sizeof(float) * n);
    s2_sigmoid_backward(y, d, n);
    o.kind = 2;
    fd_compare("sigmoid dx", o.x, n, d, act_loss, &o, 1e-5, FD_RTOL, FD_ATOL);
    free(x), free(dy), free(dx), free(y), free(d), free(o.x);
}

/* ---- attention ------------------------------------------------------------------- */

typedef struct att_op {
    int B, H, d;
    int64_t Nq, Nk;
    double *q, *k, *v;
    const float *dy;
} att_op;

static double att_loss(void *p) {
    att_op *o = p;
    int ld = o->H * o->d;
    double L = 0.0, s[16];
    for (int b = 0; b < o->B; b++)
        for (int h = 0; h < o->H; h++)
            for (int64_t i = 0; i < o->Nq; i++) {
                const double *q = o->q + (b * o->Nq + i) * ld + h * o->d;
                double mx = -1e300, sum = 0;
                for (int64_t j = 0; j < o->Nk; j++) {
                    const double *k = o->k + (b * o->Nk + j) * ld + h * o->d;
                    s[j] = 0;
                    for (int e = 0; e < o->d; e++) s[j] += q[e] * k[e];
                    s[j] /= sqrt((double)o->d);
                    if (s[j] > mx) mx = s[j];
                }
                for (int64_t j = 0; j < o->Nk; j++) sum += (s[j] = exp(s[j] - mx));
                for (int e = 0; e < o->d; e++) {
                    double y = 0;
                    for (int64_t j = 0; j < o->Nk; j++)
                        y += s[j] / sum * o->v[(b * o->Nk + j) * ld + h * o->d + e];
                    L += o->dy[(b * o->Nq + i) * ld + h * o->d + e] * y;
                }
            }
    return L;
}

TEST(grad_attention) {
    test_ctx tc;
    ctx_init(&tc);
    int B = 2, H = 2, d = 3, Nq = 4, Nk = 5, ld = H * d;
    float *q = rbuf(B * Nq * ld, 1.5), *k = rbuf(B * Nk * ld, 1.5), *v = rbuf(B * Nk * ld, 1);
    float *dy = rbuf(B * Nq * ld, 1), *dq = zbuf(B * Nq * ld), *dk = zbuf(B * Nk * ld), *dv = zbuf(B * Nk * ld);
    s2_attention_backward(&tc.c, q, ld, k, ld, v, ld, dy, ld, dq, dk, dv, B, H, Nq, Nk, d);
    att_op o = {B, H, d, Nq, Nk, dcopy(q, B * Nq * ld), dcopy(k, B * Nk * ld), dcopy(v, B * Nk * ld), dy};
    fd_compare("attention dq", o.q, B * Nq * ld, dq, att_loss, &o, 1e-5, FD_RTOL, FD_ATOL);
    fd_compare("attention dk", o.k, B * Nk * ld, dk, att_loss, &o, 1e-5, FD_RTOL, FD_ATOL);
    fd_compare("attention dv", o.v, B * Nk * ld, dv, att_loss, &o, 1e-5, FD_RTOL, FD_ATOL);
    free(q), free(k), free(v), free(dy), free(dq), free(dk), free(dv);
    free(o.q), free(o.k), free(o.v);
    ctx_free(&tc);
}

/* ---- convolutions ----------------------------------------------------------------- */

typedef struct conv_op {
    int N, C, H, W, OC, K;
    bool transposed;
    double *x, *w, *b;
    const float *dy;
} conv_op;

/* Conv2d (stride = kernel) or ConvTranspose2d (stride = kernel), f64, weighted sum. */
static double conv_loss(void *p) {
    conv_op *o = p;
    int K = o->K;
    double L = 0.0;
    if (!o->transposed) {
        int OH = o->H / K, OW = o->W / K;
        for (int n = 0; n < o->N; n++)
            for (int oc = 0; oc < o->OC; oc++)
                for (int y = 0; y < OH; y++)
                    for (int x = 0; x < OW; x++) {
                        double s = o->b[oc];
                        for (int c = 0; c < o->C; c++)
                            for (int ky = 0; ky < K; ky++)
                                for (int kx = 0; kx < K; kx++)
                                    s += o->w[((oc * o->C + c) * K + ky) * K + kx] *
                                         o->x[((n * o->C + c) * o->H + y * K + ky) * o->W + x * K + kx];
                        L += o->dy[((n * o->OC + oc) * OH + y) * OW + x] * s;
                    }
        return L;
    }
    int OH = o->H * K, OW = o->W * K;
    for (int n = 0; n < o->N; n++)
        for (int oc = 0; oc < o->OC; oc++)
            for (int y = 0; y < OH; y++)
                for (int x = 0; x < OW; x++) {
                    double s = o->b[oc];
                    for (int c = 0; c < o->C; c++)
                        s += o->w[((c * o->OC + oc) * K + y % K) * K + x % K] *
                             o->x[((n * o->C + c) * o->H + y / K) * o->W + x / K];
                    L += o->dy[((n * o->OC + oc) * OH + y) * OW + x] * s;
                }
    return L;
}

/* Checks dx, dw, db of one convolution case. */
static void conv_case(const char *tag, int N, int C, int H, int W, int OC, int K, bool tr) {
    test_ctx tc;
    ctx_init(&tc);
    int64_t nx = (int64_t)N * C * H * W, nw = (int64_t)OC * C * K * K;
    int64_t ny = tr ? (int64_t)N * OC * H * K * W * K : (int64_t)N * OC * (H / K) * (W / K);
    float *x = rbuf(nx, 1), *w = rbuf(nw, 1), *b = rbuf(OC, 1), *dy = rbuf(ny, 1);
    float *dx = zbuf(nx), *dw = zbuf(nw), *db = zbuf(OC);
    if (tr) s2_conv_transpose_k_eq_s_backward(&tc.c, x, w, dy, dx, dw, db, N, C, H, W, OC, K);
    else s2_conv_k_eq_s_backward(&tc.c, x, w, dy, dx, dw, db, N, C, H, W, OC, K);
    conv_op o = {N, C, H, W, OC, K, tr, dcopy(x, nx), dcopy(w, nw), dcopy(b, OC), dy};
    char what[64];
    snprintf(what, sizeof what, "%s dx", tag);
    fd_compare(what, o.x, nx, dx, conv_loss, &o, 1e-4, FD_RTOL, FD_ATOL);
    snprintf(what, sizeof what, "%s dw", tag);
    fd_compare(what, o.w, nw, dw, conv_loss, &o, 1e-4, FD_RTOL, FD_ATOL);
    snprintf(what, sizeof what, "%s db", tag);
    fd_compare(what, o.b, OC, db, conv_loss, &o, 1e-4, FD_RTOL, FD_ATOL);
    free(x), free(w), free(b), free(dy), free(dx), free(dw), free(db);
    free(o.x), free(o.w), free(o.b);
    ctx_free(&tc);
}

TEST(grad_convolutions) {
    conv_case("conv 2x2/2", 2, 3, 4, 6, 2, 2, false);
    conv_case("conv 1x1", 2, 4, 3, 3, 3, 1, false);
    conv_case("conv-transpose 2x2/2", 2, 3, 2, 3, 2, 2, true);
}

/* ---- bilinear upsampling (a linear map: differences with a unit step are exact) ---- */

typedef struct interp_op {
    int C, H, W, OH, OW;
    double *x;
    const float *dy;
    float *xf, *yf;
} interp_op;

static double interp_loss(void *p) {
    interp_op *o = p;
    for (int64_t i = 0; i < (int64_t)o->C * o->H * o->W; i++) o->xf[i] = (float)o->x[i];
    s2_ref_interp_bilinear(o->yf, o->xf, o->C, o->H, o->W, o->OH, o->OW, false, false);
    double L = 0.0;
    for (int64_t i = 0; i < (int64_t)o->C * o->OH * o->OW; i++) L += (double)o->dy[i] * o->yf[i];
    return L;
}

TEST(grad_bilinear) {
    int sizes[2][4] = {{3, 4, 7, 9}, {4, 4, 16, 16}};
    for (int s = 0; s < 2; s++) {
        int C = 2, H = sizes[s][0], W = sizes[s][1], OH = sizes[s][2], OW = sizes[s][3];
        int64_t nx = (int64_t)C * H * W, ny = (int64_t)C * OH * OW;
        float *x = zbuf(nx), *dy = rbuf(ny, 1), *dx = zbuf(nx);
        s2_interp_bilinear_backward(dy, dx, C, H, W, OH, OW);
        interp_op o = {C, H, W, OH, OW, dcopy(x, nx), dy, zbuf(nx), zbuf(ny)};
        fd_compare(s ? "bilinear 4x dx" : "bilinear dx", o.x, nx, dx, interp_loss, &o, 1.0, 1e-5, 1e-6);
        free(x), free(dy), free(dx), free(o.x), free(o.xf), free(o.yf);
    }
}

/* ---- the official training step of fixtures/train --------------------------------- */

/* F32 (or other) entry of a fixture file; a test failure when missing. */
static const s2_tf_entry *fx_entry(const s2_tensorfile *f, const char *name) {
    const s2_tf_entry *e = s2_tensorfile_find(f, name);
    CHECK_MSG(e != NULL, "%s: missing tensor %s", f->path, name);
    return e;
}

/* Compares n floats with the named F32 reference under the gradient rule. */
static double fx_compare(const s2_tensorfile *f, const char *name, const float *got, int64_t n,
                         double rtol, double atol) {
    const s2_tf_entry *e = fx_entry(f, name);
    if (!e) return 1e9;
    CHECK_MSG(s2_tensor_numel(&e->t) == n, "%s: %lld elements, ours %lld", name,
              (long long)s2_tensor_numel(&e->t), (long long)n);
    if (s2_tensor_numel(&e->t) != n) return 1e9;
    double rel = 0;
    CHECK_MSG(s2t_allclose(name, got, (const float *)e->t.data, n, rtol, atol, &rel),
              "%s outside tolerance", name);
    return rel;
}

/* Relative difference of a scalar with the named [1] reference; checked <= tol. */
static void fx_scalar(const s2_tensorfile *f, const char *name, double got, double tol) {
    const s2_tf_entry *e = fx_entry(f, name);
    if (!e) return;
    double ref = ((const float *)e->t.data)[0], rel = fabs(got - ref) / fmax(fabs(ref), 1e-30);
    fprintf(stderr, "    %-28s ours %.9g ref %.9g rel %.2e\n", name, got, ref, rel);
    CHECK_MSG(rel <= tol, "%s: %.9g vs %.9g", name, got, ref);
}

/* A training context on a fresh trainable copy of m. */
typedef struct train_env {
    test_ctx tc;
    s2_trainable *p;
    s2_tctx t;
} train_env;

static int env_init(train_env *e, const sam2c_model *m) {
    ctx_init(&e->tc);
    int rc = s2_trainable_create(m, &e->p);
    e->t = (s2_tctx){.c = &e->tc.c, .tape = {.scratch = &e->tc.tape}, .m = e->p ? e->p->m : NULL,
                     .p = e->p};
    return rc;
}

static void env_free(train_env *e) {
    s2_trainable_free(e->p);
    ctx_free(&e->tc);
}

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

/* Compares every grad.<name> of grads.safetensors with our gradient of <name>; prints
 * the worst relative figure among tensors with max|ref| > 1e-3 and the worst absolute
 * difference among the (near-)zero ones. */
static void compare_grads(const s2_trainable *p, const s2_tensorfile *g) {
    double worst = 0.0, worst_abs = 0.0;
    const char *wname = "", *aname = "";
    int n = 0;
    for (int i = 0; i < g->n_entries; i++) {
        const s2_tf_entry *e = &g->entries[i];
        if (strncmp(e->name, "grad.", 5) != 0) continue;
        const float *ours = s2_grad(p, "%s", e->name + 5), *ref = e->t.data;
        int64_t k = s2_tensor_numel(&e->t);
        fx_compare(g, e->name, ours, k, 1e-4, 1e-6);
        double mr = 0.0, md = 0.0;
        for (int64_t j = 0; j < k; j++) {
            mr = fmax(mr, fabs(ref[j]));
            md = fmax(md, fabs((double)ours[j] - ref[j]));
        }
        if (mr > 1e-3 && md / mr > worst) worst = md / mr, wname = e->name;
        if (mr <= 1e-3 && md > worst_abs) worst_abs = md, aname = e->name;
        n++;
    }
    fprintf(stderr, "    %d gradients; worst max|diff|/max|ref| %.3e (%s); near-zero ones: worst "
            "max|diff| %.2e (%s)\n", n, worst, wname, worst_abs, aname);
    CHECK_EQ_INT(n, 148);
}

TEST(train_fixture_step) {
    sam2c_model *m = load_micro();
    if (!m) return;
    s2_tensorfile *fi = NULL, *fo = NULL, *fg = NULL;
    REQUIRE(s2_tensorfile_open(s2t_fx("train/inputs.safetensors"), &fi) == 0);
    REQUIRE(s2_tensorfile_open(s2t_fx("train/outputs.safetensors"), &fo) == 0);
    REQUIRE(s2_tensorfile_open(s2t_fx("train/grads.safetensors"), &fg) == 0);
    train_env env;
    REQUIRE(env_init(&env, m) == 0);
    s2_loss_cfg lc;
    s2_loss_cfg_default(&lc);
    double focal[3], dice[3], l1[3], act[3];
    int best = -1;
    s2_loss_detail det = {focal, dice, l1, act, &best};
    s2_sample_in in = {
        .fpn = {fx_entry(fi, "backbone_fpn.0")->t.data, fx_entry(fi, "backbone_fpn.1")->t.data,
                fx_entry(fi, "backbone_fpn.2")->t.data},
        .B = 1, .gt = fx_entry(fi, "gt_mask_u8")->t.data, .N0 = 1,
        .coords = fx_entry(fi, "point_coords")->t.data,
        .labels = fx_entry(fi, "point_labels")->t.data, .num_objects = 1.0, .det0 = &det};
    s2_sample_out out;
    int rc = s2_train_sample(&env.t, &lc, &in, true, &out);
    REQUIRE(rc == 0);
    fx_scalar(fo, "loss.loss_mask", out.loss.mask, 1e-5);
    fx_scalar(fo, "loss.loss_dice", out.loss.dice, 1e-5);
    fx_scalar(fo, "loss.loss_iou", out.loss.iou, 1e-5);
    fx_scalar(fo, "loss.loss_class", out.loss.cls, 1e-5);
    fx_scalar(fo, "loss.core_loss", out.loss.core, 1e-5);
    CHECK_EQ_INT(best, 0);
    float pm[4][3];
    for (int j = 0; j < 3; j++)
        pm[0][j] = (float)focal[j], pm[1][j] = (float)dice[j], pm[2][j] = (float)l1[j], pm[3][j] = (float)act[j];
    fx_compare(fo, "loss.per_mask_focal", pm[0], 3, 1e-5, 0);
    fx_compare(fo, "loss.per_mask_dice", pm[1], 3, 1e-5, 0);
    fx_compare(fo, "loss.per_mask_iou_l1", pm[2], 3, 1e-5, 0);
    fx_compare(fo, "loss.actual_iou", pm[3], 3, 1e-5, 1e-7);
    const s2_heads_tape *ht = out.first;
    fx_compare(fo, "prompt_encoder.sparse", ht->sparse, 2 * 64, 1e-4, 1e-5);
    fx_compare(fo, "decoder.all_low_res_logits", ht->all_logits, 4 * 64 * 64, 1e-4, 1e-5);
    fx_compare(fo, "decoder.all_iou", ht->all_iou, 4, 1e-4, 1e-5);
    fx_compare(fo, "decoder.object_score_logits", ht->obj, 1, 1e-4, 1e-5);
    fx_compare(fo, "pred_multimasks_low_res", ht->low, 3 * 64 * 64, 1e-4, 1e-5);
    fx_compare(fo, "pred_multimasks_high_res", out.first_high, 3 * 256 * 256, 1e-4, 1e-5);
    fx_compare(fo, "pred_ious", ht->iou, 3, 1e-4, 1e-5);
    compare_grads(env.p, fg);
    env_free(&env);
    s2_tensorfile_free(fi), s2_tensorfile_free(fo), s2_tensorfile_free(fg);
    sam2c_model_free(m);
}

/* ---- the loss gradient ------------------------------------------------------------ */

typedef struct loss_op {
    s2_loss_cfg cfg;
    int B, M;
    int64_t HW;
    double *x, *iou, *obj;   /* differentiated inputs (double copies) */
    float *xf, *iouf, *objf;
    const uint8_t *tgt;
} loss_op;

static double loss_loss(void *p) {
    loss_op *o = p;
    for (int64_t i = 0; i < (int64_t)o->B * o->M * o->HW; i++) o->xf[i] = (float)o->x[i];
    for (int i = 0; i < o->B * o->M; i++) o->iouf[i] = (float)o->iou[i];
    for (int i = 0; i < o->B; i++) o->objf[i] = (float)o->obj[i];
    s2_loss_parts acc = {0};
    s2_loss_step(&o->cfg, o->B, o->M, o->HW, o->xf, o->iouf, o->objf, o->tgt, 2.0, &acc, NULL,
                 NULL, NULL, NULL);
    return acc.core;
}

TEST(grad_loss) {
    int B = 2, M = 3, HW = 40;
    loss_op o = {.B = B, .M = M, .HW = HW};
    s2_loss_cfg_default(&o.cfg);
    uint8_t tgt[80];
    for (int i = 0; i < B * HW; i++) tgt[i] = i < HW ? (i % 3 == 0) : 0; // object 1 absent
    float *x = rbuf(B * M * HW, 4), *iou = rbuf(B * M, 0.5), *obj = rbuf(B, 2);
    for (int i = 0; i < B * M * HW; i++) // keep logits off 0: IoU targets are piecewise constant
        if (fabsf(x[i]) < 0.05f) x[i] = 0.5f;
    for (int i = 0; i < B * M; i++) iou[i] += 0.5f;
    float *dx = zbuf(B * M * HW), *diou = zbuf(B * M), *dobj = zbuf(B);
    s2_loss_parts acc = {0};
    s2_loss_step(&o.cfg, B, M, HW, x, iou, obj, tgt, 2.0, &acc, dx, diou, dobj, NULL);
    o.x = dcopy(x, B * M * HW), o.iou = dcopy(iou, B * M), o.obj = dcopy(obj, B);
    o.xf = zbuf(B * M * HW), o.iouf = zbuf(B * M), o.objf = zbuf(B), o.tgt = tgt;
    fd_compare("loss d masks", o.x, B * M * HW, dx, loss_loss, &o, 1e-3, 1e-3, 1e-6);
    fd_compare("loss d ious", o.iou, B * M, diou, loss_loss, &o, 1e-3, 1e-3, 1e-6);
    fd_compare("loss d object score", o.obj, B, dobj, loss_loss, &o, 1e-3, 1e-3, 1e-6);
    CHECK_NEAR(acc.core, loss_loss(&o), 1e-6 * fabs(acc.core));
    free(x), free(iou), free(obj), free(dx), free(diou), free(dobj);
    free(o.x), free(o.iou), free(o.obj), free(o.xf), free(o.iouf), free(o.objf);
}

/* ---- the heads: training forward vs inference, and finite differences ------------- */

/* Image features of the train fixture (neck outputs of the truck). */
typedef struct feats {
    s2_tensorfile *f;
    const float *fpn[3];
} feats;

static bool load_feats(feats *x) {
    if (s2_tensorfile_open(s2t_fx("train/inputs.safetensors"), &x->f) < 0) return false;
    for (int k = 0; k < 3; k++) {
        char nm[32];
        snprintf(nm, sizeof nm, "backbone_fpn.%d", k);
        const s2_tf_entry *e = fx_entry(x->f, nm);
        if (!e) return false;
        x->fpn[k] = e->t.data;
    }
    return true;
}

/* A prompt of B = 2 objects with N points each, and a smooth random mask input. */
typedef struct prompt_case {
    float xy[2 * 2 * 2];
    int32_t lab[2 * 2];
    float *mask; /* (2, 1, 64, 64) */
} prompt_case;

static void make_prompt(prompt_case *pc, int H) {
    float pts[8] = {79, 157, 120, 60, 30, 200, 79, 150};
    int32_t lab[4] = {1, 0, 2, 3};
    memcpy(pc->xy, pts, sizeof pts);
    memcpy(pc->lab, lab, sizeof lab);
    pc->mask = zbuf(2 * H * H);
    for (int b = 0; b < 2; b++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < H; x++)
                pc->mask[(b * H + y) * H + x] = (float)(3.0 * sin(0.13 * x + 0.7 * b) * cos(0.09 * y) - 0.5);
}

TEST(train_forward_matches_inference) {
    sam2c_model *m = load_micro();
    if (!m) return;
    feats fx;
    REQUIRE(load_feats(&fx));
    train_env env;
    REQUIRE(env_init(&env, m) == 0);
    s2_img_tape it;
    REQUIRE(s2_img_forward_train(&env.t, fx.fpn[0], fx.fpn[1], fx.fpn[2], &it) == 0);
    prompt_case pc;
    make_prompt(&pc, 4 * it.h);
    for (int mm = 0; mm < 2; mm++) {
        int N = mm ? 1 : 2;
        float xy1[4] = {79, 157, 30, 200};
        int32_t lab1[2] = {1, 2};
        s2_heads_in hi = {2, N, mm ? xy1 : pc.xy, mm ? lab1 : pc.lab, mm ? NULL : pc.mask, mm == 1};
        s2_heads_tape ht;
        REQUIRE(s2_heads_forward_train(&env.t, &it, &hi, &ht) == 0);
        s2_prompt p = {2, N, hi.coords, hi.labels, true, hi.mask, 2};
        s2_prompt_out po;
        REQUIRE(s2_prompt_encoder_forward(&env.tc.c, m, &p, &po) == 0);
        s2_dec_in d = {2, po.Ns, it.pix, it.pe, po.sparse, po.dense, it.s0, it.s1, hi.multimask, true, true};
        s2_dec_out o;
        REQUIRE(s2_mask_decoder_forward(&env.tc.c, m, &d, &o) == 0);
        double rel;
        int64_t n_logits = (int64_t)2 * ht.T * ht.H * ht.W;
        CHECK(s2t_allclose("dense", ht.dense, po.dense, (int64_t)2 * ht.C * it.h * it.w, 1e-6, 0, &rel));
        CHECK(s2t_allclose("all_logits", ht.all_logits, o.all_logits, n_logits, 1e-6, 0, &rel));
        fprintf(stderr, "    %s: all_logits rel %.2e\n", mm ? "multimask" : "mask input", rel);
        CHECK(s2t_allclose("all_iou", ht.all_iou, o.all_iou, 2 * ht.T, 1e-6, 0, &rel));
        CHECK(s2t_allclose("obj", ht.obj, o.obj_score, 2, 1e-6, 0, &rel));
        CHECK(s2t_allclose("masks", ht.low, o.masks, 2 * ht.M * ht.H * ht.W, 1e-6, 0, &rel) ||
              !ht.is_obj[0] || !ht.is_obj[1]);
    }
    free(pc.mask);
    env_free(&env);
    s2_tensorfile_free(fx.f);
    sam2c_model_free(m);
}

/* The heads as one function of the weights and the mask input:
 * L = sum w_low * low + sum w_iou * iou + sum w_obj * obj (f32 forward, f64 sum). */
typedef struct heads_op {
    train_env *env;
    feats *fx;
    s2_heads_in hi;
    const float *w_low, *w_iou, *w_obj;
    float *target;       /* the perturbed float */
    double *tv;          /* its double value */
} heads_op;

static double heads_loss(void *p) {
    heads_op *o = p;
    *o->target = (float)*o->tv;
    s2_arena_reset(&o->env->tc.tape);
    s2_img_tape it;
    s2_heads_tape ht;
    if (s2_img_forward_train(&o->env->t, o->fx->fpn[0], o->fx->fpn[1], o->fx->fpn[2], &it) < 0 ||
        s2_heads_forward_train(&o->env->t, &it, &o->hi, &ht) < 0)
        return NAN;
    double L = 0.0;
    for (int64_t i = 0; i < (int64_t)ht.B * ht.M * ht.H * ht.W; i++) L += (double)o->w_low[i] * ht.low[i];
    for (int i = 0; i < ht.B * ht.M; i++) L += (double)o->w_iou[i] * ht.iou[i];
    for (int i = 0; i < ht.B; i++) L += (double)o->w_obj[i] * ht.obj[i];
    return L;
}

/* Central difference of L at element i of a tensor with step h * max(1, |v|). */
static double heads_fd(heads_op *o, float *data, int64_t i, double h) {
    double v0 = data[i], v = v0;
    h *= fmax(1.0, fabs(v0));
    o->target = &data[i];
    o->tv = &v;
    v = v0 + h;
    double lp = heads_loss(o);
    v = v0 - h;
    double lm = heads_loss(o);
    data[i] = (float)v0;
    return (lp - lm) / (2.0 * h);
}

/* One element of a tensor: analytic vs central differences D(h) with h = 1e-3. The
 * forward is f32 through ~30 layers with ReLU kinks, so D(h) carries noise and kink
 * error; their size is estimated as |D(h) - D(2h)| and allowed on top of
 * 1e-2 (|D(h)| + max|grad of the tensor|) + 1e-3 max|any weight gradient| (the f32
 * floor: zero gradients such as the key biases' read a few 1e-3). This checks the
 * wiring of the graph (a missing or doubled path is off by O(1)); every kernel's
 * derivative is checked tightly against f64 above. */
static void heads_probe(heads_op *o, const char *name, float *data, const float *grad,
                        int64_t n, double *worst, double gmax, double floor_, int *n_noisy) {
    int64_t i = 7919 % n;
    double fd = heads_fd(o, data, i, 1e-3), fd2 = heads_fd(o, data, i, 2e-3);
    double d = fabs(fd - grad[i]), base = 1e-2 * (fabs(fd) + gmax) + floor_;
    double est = 2.0 * fabs(fd - fd2);
    if (est > base) (*n_noisy)++;
    if (d / (base + est) > *worst) *worst = d / (base + est);
    CHECK_MSG(d <= base + est, "%s[%lld]: analytic %.7g fd %.7g (2h: %.7g)", name, (long long)i,
              grad[i], fd, fd2);
}

TEST(grad_heads_finite_differences) {
    sam2c_model *m = load_micro();
    if (!m) return;
    int threads = omp_get_max_threads();
    omp_set_num_threads(1); // hundreds of tiny forwards
    feats fx;
    REQUIRE(load_feats(&fx));
    train_env env;
    REQUIRE(env_init(&env, m) == 0);
    prompt_case pc;
    make_prompt(&pc, 64);
    for (int mm = 0; mm < 2; mm++) {
        float xy1[4] = {79, 157, 30, 200};
        int32_t lab1[2] = {1, 1};
        heads_op o = {&env, &fx, {2, mm ? 1 : 2, mm ? xy1 : pc.xy, mm ? lab1 : pc.lab,
                                  mm ? NULL : pc.mask, mm == 1}, NULL, NULL, NULL, NULL, NULL};
        int M = mm ? 3 : 1;
        float *wl = rbuf(2 * M * 64 * 64, 1e-2), *wi = rbuf(2 * M, 1), *wo = rbuf(2, 1);
        o.w_low = wl, o.w_iou = wi, o.w_obj = wo;
        // analytic gradients
        s2_trainable_zero_grad(env.p);
        s2_arena_reset(&env.tc.tape);
        s2_img_tape it;
        s2_heads_tape ht;
        REQUIRE(s2_img_forward_train(&env.t, fx.fpn[0], fx.fpn[1], fx.fpn[2], &it) == 0);
        REQUIRE(s2_heads_forward_train(&env.t, &it, &o.hi, &ht) == 0);
        REQUIRE(ht.is_obj[0] && ht.is_obj[1]);
        float *dmask = zbuf(2 * 64 * 64);
        s2_heads_backward(&env.t, &it, &ht, wl, wi, wo, mm ? NULL : dmask);
        s2_img_backward(&env.t, &it);
        double worst = 0.0, floor_ = 0.0;
        int n_noisy = 0;
        for (int64_t i = 0; i < env.p->n_flat; i++) floor_ = fmax(floor_, 1e-3 * fabs(env.p->grad_flat[i]));
        int n_probed = 0;
        for (int k = 0; k < env.p->n_train; k++) {
            s2_weight *w = &env.p->m->w[env.p->idx[k]];
            // multimask case: the parts whose use depends on the selection
            if (mm && !strstr(w->name, "hypernetworks_mlps.1") && !strstr(w->name, "iou_prediction") &&
                !strstr(w->name, "mask_tokens") && !strstr(w->name, "point_embeddings.1"))
                continue;
            const float *g = env.p->grad[env.p->idx[k]];
            double gmax = 0.0;
            for (int64_t i = 0; i < s2_tensor_numel(&w->t); i++) gmax = fmax(gmax, fabs(g[i]));
            heads_probe(&o, w->name, w->t.data, g, s2_tensor_numel(&w->t), &worst, gmax, floor_,
                        &n_noisy);
            n_probed++;
        }
        for (int j = 0; !mm && j < 4; j++) { // mask input entries
            double gm = 0.0;
            for (int i = 0; i < 2 * 64 * 64; i++) gm = fmax(gm, fabs(dmask[i]));
            heads_probe(&o, "mask input", pc.mask + j * 1031, dmask + j * 1031, 2 * 64 * 64 - j * 1031,
                        &worst, gm, 1e-3 * gm, &n_noisy);
        }
        fprintf(stderr, "    %s: %d tensors probed, worst |analytic - fd| / tolerance = %.2f "
                "(%d probes where |D(h) - D(2h)| widened it)\n",
                mm ? "multimask, points" : "single mask, mask input", n_probed, worst, n_noisy);
        free(wl), free(wi), free(wo), free(dmask);
    }
    omp_set_num_threads(threads);
    free(pc.mask);
    env_free(&env);
    s2_tensorfile_free(fx.f);
    sam2c_model_free(m);
}

/* ---- AdamW, clipping, schedule against hand-computed PyTorch steps -------------- */

TEST(adamw_matches_torch) {
    sam2c_model *m = load_micro();
    if (!m) return;
    s2_trainable *t = NULL;
    REQUIRE(s2_trainable_create(m, &t) == 0);
    s2_adamw o;
    REQUIRE(s2_adamw_init(&o, t, 0.1) == 0);
    float *w = (float *)s2_wt(t->m, "sam_mask_decoder.iou_token.weight")->data;       // decayed
    float *b = (float *)s2_wt(t->m, "sam_mask_decoder.conv_s0.bias")->data;          // no decay
    float *n = (float *)s2_wt(t->m, "sam_mask_decoder.transformer.norm_final_attn.weight")->data;
    float *l2 = (float *)s2_wt(t->m, "sam_mask_decoder.output_upscaling.1.weight")->data;
    CHECK(!s2_train_no_decay("sam_mask_decoder.iou_token.weight"));
    CHECK(s2_train_no_decay("sam_mask_decoder.conv_s0.bias"));
    CHECK(s2_train_no_decay("sam_mask_decoder.transformer.layers.0.norm2.weight"));
    CHECK(!s2_train_no_decay("sam_mask_decoder.output_upscaling.1.weight")); // LayerNorm2d
    float w0 = w[0], b0 = b[0], n0 = n[0], l0 = l2[0];
    float g1[2] = {0.5f, -2.0f};
    double lr = 1e-3, pw = w0, pb = b0, mw = 0, vw = 0, mb = 0, vb = 0;
    for (int step = 1; step <= 2; step++) {
        s2_trainable_zero_grad(t);
        s2_grad(t, "sam_mask_decoder.iou_token.weight")[0] = g1[step - 1];
        s2_grad(t, "sam_mask_decoder.conv_s0.bias")[0] = g1[step - 1];
        s2_adamw_step(&o, t, lr);
        // torch.optim.AdamW by hand (f64)
        double g = g1[step - 1], bc1 = 1 - pow(0.9, step), bc2 = 1 - pow(0.999, step);
        pw *= 1 - lr * 0.1;
        mw = 0.9 * mw + 0.1 * g, vw = 0.999 * vw + 0.001 * g * g;
        pw -= lr / bc1 * mw / (sqrt(vw) / sqrt(bc2) + 1e-8);
        mb = 0.9 * mb + 0.1 * g, vb = 0.999 * vb + 0.001 * g * g;
        pb -= lr / bc1 * mb / (sqrt(vb) / sqrt(bc2) + 1e-8);
    }
    CHECK_NEAR(w[0], pw, 1e-6 * fabs(pw) + 1e-9);
    CHECK_NEAR(b[0], pb, 1e-6 * fabs(pb) + 1e-9);
    CHECK_NEAR(n[0], n0, 0.0);                              // no gradient, no decay
    CHECK_NEAR(l2[0], l0 * (1 - lr * 0.1) * (1 - lr * 0.1), 1e-7); // no gradient, decayed
    // base model untouched
    CHECK(s2_w(m, "sam_mask_decoder.iou_token.weight")[0] == w0);
    // clip_grad_norm_: norm 5 -> scaled to 0.1 (coef 0.1 / (5 + 1e-6))
    s2_trainable_zero_grad(t);
    s2_grad(t, "sam_mask_decoder.iou_token.weight")[0] = 3.0f;
    s2_grad(t, "no_mem_embed")[1] = 4.0f;
    CHECK_NEAR(s2_clip_grad_norm(t, 0.1), 5.0, 1e-9);
    CHECK_NEAR(s2_grad(t, "no_mem_embed")[1], 4.0 * 0.1 / (5.0 + 1e-6), 1e-8);
    CHECK_NEAR(s2_clip_grad_norm(t, 1.0), 0.1, 1e-6); // below max: unchanged
    CHECK_NEAR(s2_grad(t, "no_mem_embed")[1], 4.0 * 0.1 / (5.0 + 1e-6), 1e-8);
    // fvcore cosine: start at where 0, end at 1, mid-way the mean
    CHECK_NEAR(s2_cosine_schedule(1e-4, 1e-5, 0.0), 1e-4, 1e-15);
    CHECK_NEAR(s2_cosine_schedule(1e-4, 1e-5, 0.5), 5.5e-5, 1e-15);
    CHECK_NEAR(s2_cosine_schedule(1e-4, 1e-5, 1.0), 1e-5, 1e-15);
    s2_adamw_free(&o);
    s2_trainable_free(t);
    sam2c_model_free(m);
}

/* ---- prompt samplers -------------------------------------------------------------- */

TEST(prompt_samplers) {
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return;
    }
    s2_tensorfile *fi = NULL;
    REQUIRE(s2_tensorfile_open(s2t_fx("train/inputs.safetensors"), &fi) == 0);
    const uint8_t *gt = fx_entry(fi, "gt_mask_u8")->t.data;
    float xy[4];
    int32_t lab[2];
    // the fixture's click: get_next_point(gt, None, "center") = (79, 157), positive
    REQUIRE(s2_sample_point_center(gt, NULL, 256, 256, xy, lab) == 0);
    CHECK_NEAR(xy[0], 79, 0);
    CHECK_NEAR(xy[1], 157, 0);
    CHECK_EQ_INT(lab[0], 1);
    // uniform clicks fall inside the false-negative region (the whole mask here)
    uint64_t rng = 7;
    for (int i = 0; i < 50; i++) {
        s2_sample_point_uniform(gt, NULL, 256, 256, &rng, xy, lab);
        CHECK(lab[0] == 1 && gt[(int)xy[1] * 256 + (int)xy[0]]);
    }
    // prediction = gt except a 3x3 false positive block: the click is negative there
    uint8_t *pred = malloc(65536);
    memcpy(pred, gt, 65536);
    for (int y = 10; y < 13; y++)
        for (int x = 20; x < 23; x++) pred[y * 256 + x] = 1;
    s2_sample_point_uniform(gt, pred, 256, 256, &rng, xy, lab);
    CHECK(lab[0] == 0 && xy[0] >= 20 && xy[0] < 23 && xy[1] >= 10 && xy[1] < 13);
    REQUIRE(s2_sample_point_center(gt, pred, 256, 256, xy, lab) == 0);
    CHECK(lab[0] == 0 && xy[0] == 21 && xy[1] == 11);
    // noisy boxes: within 10% of the box side (<= 20 px) of the mask's box [60, 128, 99, 186]
    for (int i = 0; i < 20; i++) {
        s2_sample_box(gt, 256, 256, &rng, xy, lab);
        CHECK(lab[0] == 2 && lab[1] == 3);
        CHECK(fabsf(xy[0] - 60) <= 3.9f + 1e-4f && fabsf(xy[2] - 99) <= 3.9f + 1e-4f);
        CHECK(fabsf(xy[1] - 128) <= 5.8f + 1e-4f && fabsf(xy[3] - 186) <= 5.8f + 1e-4f);
    }
    free(pred);
    s2_tensorfile_free(fi);
}

/* ---- sam2c finetune end to end ---------------------------------------------------- */

/* Writes n synthetic images DIR/img<i>.png (textured background, one or two coloured
 * ellipses) with their masks DIR/masks/img<i>/<k>.png. */
static bool make_dataset(const char *dir, int n) {
    char path[1024];
    snprintf(path, sizeof path, "mkdir -p %s/masks", dir);
    if (s2t_run(path, NULL, 0) != 0) return false;
    int W = 128, H = 96;
    uint8_t *rgb = malloc((size_t)W * H * 3), *m = malloc((size_t)W * H);
    uint64_t rng = 99;
    bool ok = true;
    for (int i = 0; ok && i < n; i++) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                uint8_t *p = rgb + 3 * (y * W + x);
                p[0] = (uint8_t)(60 + 40 * sin(0.2 * x + i) + 20 * s2_rng_uniform(&rng));
                p[1] = (uint8_t)(120 + 30 * cos(0.15 * y) + 20 * s2_rng_uniform(&rng));
                p[2] = (uint8_t)(90 + 20 * s2_rng_uniform(&rng));
            }
        int n_obj = 1 + i % 2;
        snprintf(path, sizeof path, "%s/masks/img%d", dir, i);
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "mkdir -p %s", path);
        ok = s2t_run(cmd, NULL, 0) == 0;
        for (int k = 0; ok && k < n_obj; k++) {
            double cx = 30 + 70 * s2_rng_uniform(&rng), cy = 25 + 45 * s2_rng_uniform(&rng);
            double rx = 12 + 10 * s2_rng_uniform(&rng), ry = 10 + 8 * s2_rng_uniform(&rng);
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    double u = (x + 0.5 - cx) / rx, v = (y + 0.5 - cy) / ry;
                    m[y * W + x] = u * u + v * v <= 1.0 ? 255 : 0;
                    if (m[y * W + x]) {
                        uint8_t *p = rgb + 3 * (y * W + x);
                        p[0] = (uint8_t)(k ? 40 : 220), p[1] = (uint8_t)(k ? 60 : 40 + 30 * ((x / 4) % 2));
                        p[2] = (uint8_t)(k ? 230 : 50);
                    }
                }
            snprintf(cmd, sizeof cmd, "%s/%d.png", path, k);
            ok = s2_png_write(cmd, m, W, H, 1) == 0;
        }
        snprintf(path, sizeof path, "%s/img%d.png", dir, i);
        ok = ok && s2_png_write(path, rgb, W, H, 3) == 0;
    }
    free(rgb), free(m);
    return ok;
}

typedef struct ft_record {
    double train[8], val[8], miou[8];
    int n;
} ft_record;

static void record_epoch(void *user, const s2_epoch_stats *s) {
    ft_record *r = user;
    if (r->n < 8) r->train[r->n] = s->train_loss, r->val[r->n] = s->val_loss, r->miou[r->n] = s->val_miou, r->n++;
    fprintf(stderr, "    epoch %d: train loss %.4f val loss %.4f val mIoU %.4f |g| %.3g\n", s->epoch,
            s->train_loss, s->val_loss, s->val_miou, s->grad_norm);
}

TEST(finetune_end_to_end) {
    sam2c_model *m = load_micro();
    if (!m) return;
    char dir[300], out[400], cmd[2048], log[8192];
    snprintf(dir, sizeof dir, "%s/ft_data", s2t_tmpdir());
    REQUIRE(make_dataset(dir, 5));
    s2_finetune_params p;
    s2_finetune_default(&p);
    p.data_dir = dir;
    p.epochs = 2;
    p.lr = 1e-3;
    p.seed = 3;
    p.n_correct = 2;
    p.augment = 1;
    ft_record rec = {0};
    p.progress = record_epoch;
    p.user = &rec;
    s2_trainable *t = NULL;
    int threads = omp_get_max_threads();
    omp_set_num_threads(1); // tiny sizes: threads only add overhead (results do not change)
    int rc = s2_finetune(m, &p, &t);
    omp_set_num_threads(threads);
    REQUIRE(rc == 0);
    REQUIRE(rec.n == 3);
    CHECK_MSG(rec.train[2] < rec.train[1], "training loss did not decrease: %g -> %g", rec.train[1], rec.train[2]);
    CHECK_MSG(rec.val[2] < rec.val[0], "validation loss did not decrease: %g -> %g", rec.val[0], rec.val[2]);
    snprintf(out, sizeof out, "%s/ft.safetensors", s2t_tmpdir());
    REQUIRE(s2_trainable_save(t, out, NULL, 0) == 0);
    sam2c_model *m2 = NULL;
    rc = sam2c_model_load(out, NULL, &m2);
    CHECK_MSG(rc == 0, "reload: %s", sam2c_last_error());
    if (m2) {
        const char *nm = "sam_mask_decoder.iou_token.weight";
        CHECK(memcmp(s2_w(m2, "%s", nm), s2_w(t->m, "%s", nm), 64 * sizeof(float)) == 0);
        CHECK(memcmp(s2_w(m2, "%s", nm), s2_w(m, "%s", nm), 64 * sizeof(float)) != 0);
        CHECK(s2_w(m2, "image_encoder.trunk.pos_embed")[3] == s2_w(m, "image_encoder.trunk.pos_embed")[3]);
    }
    sam2c_model_free(m2);
    s2_trainable_free(t);
    // the command: one epoch, the checkpoint loads
    snprintf(out, sizeof out, "%s/ft_cli.safetensors", s2t_tmpdir());
    snprintf(cmd, sizeof cmd, "%s finetune -m %s --data %s -o %s --epochs 1 --corrections 1 --augment 0 --seed 5 --threads 1",
             s2t_bin(), s2t_fx("micro/model.pt"), dir, out);
    rc = s2t_run(cmd, log, sizeof log);
    CHECK_MSG(rc == 0, "finetune command failed: %s", log);
    CHECK(strstr(log, "epoch   1/1") != NULL);
    m2 = NULL;
    CHECK(sam2c_model_load(out, NULL, &m2) == 0);
    sam2c_model_free(m2);
    snprintf(cmd, sizeof cmd, "%s finetune -m %s --data %s/nope -o %s", s2t_bin(), s2t_fx("micro/model.pt"), dir, out);
    CHECK(s2t_run(cmd, log, sizeof log) != 0 && strstr(log, "not a folder"));
    snprintf(cmd, sizeof cmd, "rm -rf %s %s/ft.safetensors %s", dir, s2t_tmpdir(), out);
    s2t_run(cmd, NULL, 0);
    sam2c_model_free(m);
}

/* ---- data: COCO annotations, augmentation alignment ------------------------------- */

TEST(dataset_coco_and_augment) {
    char dir[300], path[400];
    snprintf(dir, sizeof dir, "%s/coco_data", s2t_tmpdir());
    snprintf(path, sizeof path, "mkdir -p %s/images", dir);
    REQUIRE(s2t_run(path, NULL, 0) == 0);
    int W = 20, H = 10;
    uint8_t rgb[600];
    for (int i = 0; i < W * H; i++) rgb[3 * i] = 200, rgb[3 * i + 1] = 10, rgb[3 * i + 2] = 30;
    snprintf(path, sizeof path, "%s/images/a.png", dir);
    REQUIRE(s2_png_write(path, rgb, W, H, 3) == 0);
    snprintf(path, sizeof path, "%s/annotations.json", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fprintf(f, "{\"images\": [{\"id\": 7, \"file_name\": \"a.png\", \"width\": 20, \"height\": 10},"
               " {\"id\": 8, \"file_name\": \"none.png\", \"width\": 4, \"height\": 4}],"
               " \"annotations\": [{\"image_id\": 7, \"segmentation\": {\"size\": [10, 20],"
               " \"counts\": [22, 5, 5, 5, 163]}},"
               " {\"image_id\": 7, \"segmentation\": [[2, 2, 8, 2, 8, 6, 2, 6]]}]}");
    fclose(f);
    s2_dataset ds;
    int rc = s2_dataset_load(dir, &ds);
    REQUIRE(rc == 0);
    CHECK_EQ_INT(ds.n, 1);
    CHECK_EQ_INT(ds.n_skipped, 1);
    CHECK_EQ_INT(ds.im[0].n_obj, 2);
    int64_t a0 = 0, a1 = 0, outside = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t v0 = ds.im[0].masks[y * W + x], v1 = ds.im[0].masks[W * H + y * W + x];
            CHECK_EQ_INT(v0, (x == 2 || x == 3) && y >= 2 && y <= 6); // column-major runs
            a0 += v0, a1 += v1;
            outside += v1 && (x < 2 || x > 8 || y < 2 || y > 6);
        }
    CHECK_EQ_INT(a0, 10);
    CHECK(a1 >= 24 && outside == 0); // the 6 x 4 square (COCO rasterisation)
    s2_image img;
    CHECK(s2_dataset_image(&ds, 0, &img) == 0);
    s2_image_free(&img);
    s2_dataset_free(&ds);
    // augmentation keeps masks on their pixels: red object on a blue background
    int AW = 64, AH = 48;
    s2_image im = {AW, AH, malloc((size_t)AW * AH * 3)};
    uint8_t *mk = malloc((size_t)AW * AH);
    for (int y = 0; y < AH; y++)
        for (int x = 0; x < AW; x++) {
            int in = (x - 40) * (x - 40) / 144.0 + (y - 20) * (y - 20) / 64.0 <= 1.0;
            mk[y * AW + x] = (uint8_t)in;
            uint8_t *p = im.px + 3 * (y * AW + x);
            p[0] = in ? 220 : 10, p[1] = 20, p[2] = in ? 10 : 200;
        }
    s2_aug_params ap;
    s2_aug_default(&ap);
    ap.p_gray = 0.0;
    uint64_t rng = 11;
    for (int r = 0; r < 20; r++) {
        s2_image ai;
        uint8_t *am = NULL;
        REQUIRE(s2_augment(&im, mk, 1, &ap, &rng, &ai, &am) == 0);
        int bad = 0, area = 0;
        for (int i = 0; i < ai.w * ai.h; i++) {
            bool red = ai.px[3 * i] > ai.px[3 * i + 2];
            bad += red != (am[i] != 0);
            area += am[i] != 0;
        }
        CHECK_MSG(bad == 0 && area > 0, "augmentation %d: %d misaligned pixels, area %d", r, bad, area);
        s2_image_free(&ai);
        free(am);
    }
    free(im.px), free(mk);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    s2t_run(path, NULL, 0);
}

/* ---- two passes chained through the mask input ------------------------------------ */

typedef struct chain_op {
    train_env *env;
    s2_sample_in in;
    s2_loss_cfg lc;
    float *target;
    double *tv;
} chain_op;

static double chain_loss(void *p) {
    chain_op *o = p;
    *o->target = (float)*o->tv;
    s2_arena_reset(&o->env->tc.tape);
    s2_sample_out out;
    if (s2_train_sample(&o->env->t, &o->lc, &o->in, false, &out) < 0) return NAN;
    return out.loss.core;
}

TEST(grad_two_passes_chained) {
    sam2c_model *m = load_micro();
    if (!m) return;
    feats fx;
    REQUIRE(load_feats(&fx));
    train_env env;
    REQUIRE(env_init(&env, m) == 0);
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    chain_op o = {.env = &env};
    s2_loss_cfg_default(&o.lc);
    o.lc.w_iou = 0.0f; // the IoU target is piecewise constant in the weights
    float xy[2] = {79, 157};
    int32_t lab[1] = {1};
    o.in = (s2_sample_in){.fpn = {fx.fpn[0], fx.fpn[1], fx.fpn[2]}, .B = 1,
                          .gt = fx_entry(fx.f, "gt_mask_u8")->t.data, .N0 = 1, .coords = xy,
                          .labels = lab, .n_correct = 1, .center_clicks = true, .num_objects = 1};
    s2_sample_out out;
    s2_trainable_zero_grad(env.p);
    s2_arena_reset(&env.tc.tape);
    REQUIRE(s2_train_sample(&env.t, &o.lc, &o.in, true, &out) == 0);
    CHECK_EQ_INT(out.n_steps, 2);
    // pass 1 keeps token 3's mask (highest predicted IoU) but trains token 1's (lowest
    // focal + dice): token 3's hypernetwork is reached only through that mask fed back
    // as pass 2's mask input; the mask downscaling only in pass 2
    CHECK_EQ_INT(out.first->best[0], 2);
    const char *names[2] = {"sam_mask_decoder.output_hypernetworks_mlps.3.layers.2.bias",
                            "sam_prompt_encoder.mask_downscaling.0.bias"};
    double worst = 0.0;
    for (int k = 0; k < 2; k++) {
        float *w = (float *)s2_wt(env.p->m, "%s", names[k])->data;
        const float *g = s2_grad(env.p, "%s", names[k]);
        for (int i = 0; i < 4; i++) {
            double v0 = w[i], v, h = 1e-3 * fmax(1.0, fabs(v0)), fd[2];
            o.target = &w[i], o.tv = &v;
            for (int s = 0; s < 2; s++) {
                v = v0 + (s + 1) * h;
                double lp = chain_loss(&o);
                v = v0 - (s + 1) * h;
                fd[s] = (lp - chain_loss(&o)) / (2.0 * (s + 1) * h);
            }
            w[i] = (float)v0;
            double d = fabs(fd[0] - g[i]), tol = 1e-2 * fabs(fd[0]) + 2.0 * fabs(fd[0] - fd[1]) + 1e-4;
            worst = fmax(worst, d / tol);
            CHECK_MSG(d <= tol, "%s[%d]: analytic %.7g fd %.7g (2h %.7g)", names[k], i, g[i], fd[0], fd[1]);
            CHECK(fabs(g[i]) > 1e-4); // a real gradient reaches them
        }
    }
    fprintf(stderr, "    two passes: worst |analytic - fd| / tolerance = %.2f\n", worst);
    omp_set_num_threads(threads);
    env_free(&env);
    s2_tensorfile_free(fx.f);
    sam2c_model_free(m);
}
