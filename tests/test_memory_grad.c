/* Memory training tests: the new backward kernels (RoPE rotation, strided / 1x1 /
 * grouped / depthwise convolution) against central finite differences of a
 * double-precision forward written here; the training forwards of the memory attention,
 * the memory encoder and a whole clip (eval mode) against the inference code of
 * src/model/ on the micro model (max|ours - ref| <= 1e-4 max|ref| + 1e-5); the memory
 * attention, the memory encoder and one whole memory-conditioned clip step (official
 * loss, backward through time) against finite differences of their f32 forwards.
 * Kernel rule: max|analytic - fd| <= 1e-4 max|fd| + 1e-6 (worst figures printed).
 * Whole-graph rule (as tests/test_train.c heads_probe): one element per tensor,
 * |analytic - D(h)| <= 1e-2 (|D(h)| + max|grad of the tensor|) + 1e-3 max|any grad|
 * + 2 |D(h) - D(2h)| (f32 forward noise and kink estimate). */
#include "harness.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "io/tensorfile.h"
#include "model/image_encoder.h"
#include "model/memory.h"
#include "model/sam2_base.h"
#include "predict/preprocess.h"
#include "train/clip_step.h"
#include "train/grad_ops.h"
#include "train/mem_train.h"
#include "train/step.h"

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t g_rng;

/* Every test reseeds, so its data does not depend on which tests ran before. */
static void reseed(uint64_t s) { g_rng = 0x13198A2E03707344ull ^ (s * 0x9E3779B97F4A7C15ull); }

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

typedef double (*loss_fn)(void *op);

/* Central differences of L w.r.t. every x[i] against g under
 * max|g - fd| <= rtol max|fd| + atol; returns the worst ratio max|g - fd| / max|fd|. */
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
        if (fabs(fd) > maxref) maxref = fabs(fd);
        if (fabs(fd - g[i]) > maxdiff) maxdiff = fabs(fd - g[i]), worst = i, wfd = fd;
    }
    double rel = maxref > 0 ? maxdiff / maxref : maxdiff;
    fprintf(stderr, "    %-40s worst |analytic - fd| / max|fd| = %.2e\n", what, rel);
    CHECK_MSG(maxdiff <= rtol * maxref + atol, "%s: [%lld] analytic %.8g fd %.8g (max|fd| %.4g)",
              what, (long long)worst, g[worst], wfd, maxref);
    return rel;
}

#define FD_RTOL 1e-4
#define FD_ATOL 1e-6

/* A reference-backend context with growing scratch and tape arenas. */
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

/* ---- RoPE ------------------------------------------------------------------- */

typedef struct rope_op {
    int64_t rows;
    int heads, hd;
    const s2_rope_tab *tab;
    double *x;
    const float *w;
} rope_op;

/* L = sum w * R x in f64 with the table's angles. */
static double rope_loss(void *p) {
    rope_op *o = p;
    const int ld = o->heads * o->hd;
    double L = 0.0;
    for (int64_t r = 0; r < o->rows; r++)
        for (int h = 0; h < o->heads; h++)
            for (int j = 0; j < o->tab->n_pair; j++) {
                int64_t i = r * ld + h * o->hd + 2 * j, tk = r % o->tab->n_tok;
                double c = o->tab->cos[tk * o->tab->n_pair + j], s = o->tab->sin[tk * o->tab->n_pair + j];
                L += o->w[i] * (o->x[i] * c - o->x[i + 1] * s) + o->w[i + 1] * (o->x[i] * s + o->x[i + 1] * c);
            }
    return L;
}

TEST(grad_rope) {
    reseed(1);
    test_ctx tc;
    ctx_init(&tc);
    s2_rope_tab tab;
    const int heads = 2, hd = 8, H = 3, W = 4;
    REQUIRE(s2_rope_build(&tc.c, &tab, hd, H, W, 10000.0) == 0);
    const int64_t rows = 3 * H * W, n = rows * heads * hd; // rope_k_repeat: 3 grid copies
    float *x = rbuf(n, 1), *w = rbuf(n, 1), *dx = malloc(sizeof(float) * (size_t)n);
    memcpy(dx, w, sizeof(float) * (size_t)n);
    s2_rope_rotate(dx, heads * hd, rows, heads, hd, &tab, true); // dx = R^T w
    rope_op o = {rows, heads, hd, &tab, dcopy(x, n), w};
    fd_compare("rope (k_repeat x3) dx", o.x, n, dx, rope_loss, &o, 1e-4, FD_RTOL, FD_ATOL);
    // forward then inverse is the identity
    float *y = malloc(sizeof(float) * (size_t)n);
    memcpy(y, x, sizeof(float) * (size_t)n);
    s2_rope_rotate(y, heads * hd, rows, heads, hd, &tab, false);
    s2_rope_rotate(y, heads * hd, rows, heads, hd, &tab, true);
    double rel;
    CHECK(s2t_allclose("rope round trip", y, x, n, 1e-6, 0, &rel));
    free(x), free(w), free(dx), free(y), free(o.x);
    ctx_free(&tc);
}

/* ---- convolutions ------------------------------------------------------------- */

typedef struct conv_op {
    s2_conv2d_desc d;
    double *x, *w, *b;
    const float *dy;
} conv_op;

/* L = sum dy * conv(x, w, b) in f64 (zero padding, groups). */
static double conv_loss(void *p) {
    conv_op *o = p;
    const s2_conv2d_desc *d = &o->d;
    int OH, OW;
    s2_conv2d_out_hw(d, &OH, &OW);
    const int Cg = d->C / d->groups, OCg = d->OC / d->groups;
    double L = 0.0;
    for (int n = 0; n < d->N; n++)
        for (int oc = 0; oc < d->OC; oc++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    double y = o->b[oc];
                    for (int ci = 0; ci < Cg; ci++)
                        for (int ky = 0; ky < d->KH; ky++)
                            for (int kx = 0; kx < d->KW; kx++) {
                                int iy = oy * d->sh - d->ph + ky, ix = ox * d->sw - d->pw + kx;
                                if (iy < 0 || iy >= d->H || ix < 0 || ix >= d->W) continue;
                                int ch = (oc / OCg) * Cg + ci;
                                y += o->x[(((int64_t)n * d->C + ch) * d->H + iy) * d->W + ix] *
                                     o->w[(((int64_t)oc * Cg + ci) * d->KH + ky) * d->KW + kx];
                            }
                    L += o->dy[(((int64_t)n * d->OC + oc) * OH + oy) * OW + ox] * y;
                }
    return L;
}

/* One convolution case: analytic dx, dw, db against f64 finite differences. */
static double conv_case(const char *tag, s2_conv2d_desc d) {
    test_ctx tc;
    ctx_init(&tc);
    int OH, OW;
    s2_conv2d_out_hw(&d, &OH, &OW);
    int64_t nx = (int64_t)d.N * d.C * d.H * d.W, nw = (int64_t)d.OC * (d.C / d.groups) * d.KH * d.KW;
    int64_t ny = (int64_t)d.N * d.OC * OH * OW;
    float *x = rbuf(nx, 1), *w = rbuf(nw, 1), *b = rbuf(d.OC, 1), *dy = rbuf(ny, 1);
    float *dx = zbuf(nx), *dw = zbuf(nw), *db = zbuf(d.OC);
    s2_conv2d_backward(&tc.c, &d, x, w, dy, dx, dw, db);
    conv_op o = {d, dcopy(x, nx), dcopy(w, nw), dcopy(b, d.OC), dy};
    char nm[96];
    double worst = 0.0;
    snprintf(nm, sizeof nm, "%s dx", tag);
    worst = fmax(worst, fd_compare(nm, o.x, nx, dx, conv_loss, &o, 1e-4, FD_RTOL, FD_ATOL));
    snprintf(nm, sizeof nm, "%s dw", tag);
    worst = fmax(worst, fd_compare(nm, o.w, nw, dw, conv_loss, &o, 1e-4, FD_RTOL, FD_ATOL));
    snprintf(nm, sizeof nm, "%s db", tag);
    worst = fmax(worst, fd_compare(nm, o.b, d.OC, db, conv_loss, &o, 1e-4, FD_RTOL, FD_ATOL));
    free(x), free(w), free(b), free(dy), free(dx), free(dw), free(db);
    free(o.x), free(o.w), free(o.b);
    ctx_free(&tc);
    return worst;
}

TEST(grad_convolutions_general) {
    reseed(2);
    // {N, C, H, W, OC, KH, KW, sh, sw, ph, pw, groups}
    conv_case("conv 3x3/2 pad 1 (mask downsampler)", (s2_conv2d_desc){2, 3, 9, 9, 4, 3, 3, 2, 2, 1, 1, 1});
    conv_case("conv 3x3/2 pad 1, 1 input channel", (s2_conv2d_desc){1, 1, 8, 8, 4, 3, 3, 2, 2, 1, 1, 1});
    conv_case("conv 1x1", (s2_conv2d_desc){1, 5, 4, 3, 3, 1, 1, 1, 1, 0, 0, 1});
    conv_case("depthwise 7x7 pad 3 (CXBlock)", (s2_conv2d_desc){2, 4, 8, 7, 4, 7, 7, 1, 1, 3, 3, 4});
    conv_case("grouped 3x3 (2 groups, 3 out each)", (s2_conv2d_desc){1, 4, 6, 6, 6, 3, 3, 1, 1, 1, 1, 2});
    conv_case("conv 4x4/4 (mask_downsample)", (s2_conv2d_desc){1, 1, 12, 12, 1, 4, 4, 4, 4, 0, 0, 1});
}

/* ---- the micro model ---------------------------------------------------------- */

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

/* A training context on a fresh trainable copy (memory + heads) of m. */
typedef struct train_env {
    test_ctx tc;
    s2_trainable *p;
    s2_tctx t;
} train_env;

static int env_init(train_env *e, const sam2c_model *m) {
    ctx_init(&e->tc);
    int rc = s2_trainable_create_sel(m, S2_TRAIN_MEMORY | S2_TRAIN_HEADS, &e->p);
    e->t = (s2_tctx){.c = &e->tc.c, .tape = {.scratch = &e->tc.tape}, .m = e->p ? e->p->m : NULL,
                     .p = e->p};
    return rc;
}

static void env_free(train_env *e) {
    s2_trainable_free(e->p);
    ctx_free(&e->tc);
}

/* Random memory-attention inputs on the micro grid: 2 spatial memories + 4 pointers. */
typedef struct ma_case {
    float *curr, *pos, *mem, *mpos;
    s2_memattn_in in;
} ma_case;

static void ma_case_make(ma_case *k, const sam2c_model *m) {
    const int C = m->cfg.d_model, Cm = s2_memory_dim(m), h = s2_cfg_feat_side(&m->cfg);
    const int64_t N = (int64_t)h * h, n_ptr_tok = 4 * (C / Cm), M = 2 * N + n_ptr_tok;
    k->curr = rbuf(N * C, 1.0), k->pos = rbuf(N * C, 1.0);
    k->mem = rbuf(M * Cm, 1.0), k->mpos = rbuf(M * Cm, 1.0);
    k->in = (s2_memattn_in){k->curr, k->pos, h, h, k->mem, k->mpos, M, (int)n_ptr_tok};
}

static void ma_case_free(ma_case *k) { free(k->curr), free(k->pos), free(k->mem), free(k->mpos); }

TEST(memattn_forward_matches_inference) {
    reseed(3);
    sam2c_model *m = load_micro();
    if (!m) return;
    train_env env;
    REQUIRE(env_init(&env, m) == 0);
    ma_case k;
    ma_case_make(&k, m);
    const int64_t n = (int64_t)k.in.H * k.in.W * m->cfg.d_model;
    float *ref = malloc(sizeof(float) * (size_t)n);
    CHECK(s2_memory_attention_forward(&env.tc.c, m, &k.in, ref) == 0);
    s2_memattn_tape tp;
    REQUIRE(s2_memattn_forward_train(&env.t, &k.in, &tp) == 0);
    double rel;
    CHECK(s2t_allclose("memory attention (train vs inference)", tp.out, ref, n, 1e-4, 1e-5, &rel));
    fprintf(stderr, "    memory attention: max|train - inference| / max|ref| = %.2e\n", rel);
    // bad input: more pointer tokens than memory tokens
    s2_memattn_in bad = k.in;
    bad.num_obj_ptr_tokens = (int)bad.n_mem + 1;
    CHECK(s2_memattn_forward_train(&env.t, &bad, &tp) == SAM2C_ERR_ARG);
    free(ref);
    ma_case_free(&k);
    env_free(&env);
    sam2c_model_free(m);
}

/* Smooth mask logits (S, S) of amplitude a around a disc. */
static float *smooth_logits(int S, double a, double cx, double cy) {
    float *x = malloc(sizeof(float) * (size_t)S * S);
    for (int y = 0; y < S; y++)
        for (int xx = 0; xx < S; xx++) {
            double r = hypot(xx - cx, y - cy) / (0.25 * S);
            x[y * S + xx] = (float)(a * (1.0 - r) + 0.5 * sin(0.05 * xx) * cos(0.07 * y));
        }
    return x;
}

TEST(memenc_forward_matches_inference) {
    reseed(4);
    sam2c_model *m = load_micro();
    if (!m) return;
    train_env env;
    REQUIRE(env_init(&env, m) == 0);
    const int C = m->cfg.d_model, Cm = s2_memory_dim(m), h = s2_cfg_feat_side(&m->cfg), S = m->cfg.image_size;
    float *pix = rbuf((int64_t)C * h * h, 1.0), *dummy = zbuf((int64_t)C * h * h);
    float *high = smooth_logits(S, 6.0, 100, 140), *ref = malloc(sizeof(float) * (size_t)Cm * h * h);
    s2_backbone_out bb = {.n_levels = 1, .C = C, .h = {h}, .w = {h}, .fpn = {pix}, .pos = {dummy}};
    for (int cs = 0; cs < 3; cs++) { // object / no object / binarised mask from points
        float score = cs == 1 ? -0.5f : 0.7f;
        bool bin = cs == 2;
        CHECK(s2_encode_new_memory(&env.tc.c, m, &bb, high, score, bin, ref) == 0);
        s2_memenc_tape tp;
        REQUIRE(s2_memenc_forward_train(&env.t, pix, h, h, high, S, score, bin && m->cfg.binarize_mask_from_pts_for_mem_enc, &tp) == 0);
        double rel;
        CHECK(s2t_allclose("memory encoder (train vs inference)", tp.feat, ref, (int64_t)Cm * h * h, 1e-4, 1e-5, &rel));
        fprintf(stderr, "    memory encoder (%s): max|train - inference| / max|ref| = %.2e\n",
                cs == 0 ? "object" : cs == 1 ? "no object" : "binarised", rel);
        s2_arena_reset(&env.tc.tape);
    }
    // bad input: a mask that does not downsample to the feature grid
    s2_memenc_tape tp;
    CHECK(s2_memenc_forward_train(&env.t, pix, h, h, high, S / 2, 1.0f, false, &tp) == SAM2C_ERR_SHAPE);
    free(pix), free(dummy), free(high), free(ref);
    env_free(&env);
    sam2c_model_free(m);
}

/* ---- whole-graph finite differences -------------------------------------------- */

/* A forward of the whole graph as a function of one perturbed float. */
typedef struct probe_op {
    double (*loss)(struct probe_op *);
    void *user;
} probe_op;

/* Central difference of the loss at data[i] with step h * max(1, |v|) (the f32 values
 * actually set define the step). */
static double probe_fd(probe_op *o, float *data, int64_t i, double h) {
    float v0 = data[i];
    h *= fmax(1.0, fabs(v0));
    float vp = (float)(v0 + h), vm = (float)(v0 - h);
    data[i] = vp;
    double lp = o->loss(o);
    data[i] = vm;
    double lm = o->loss(o);
    data[i] = v0;
    return (lp - lm) / ((double)vp - (double)vm);
}

typedef struct probe_stats {
    double worst;
    int n, n_noisy;
} probe_stats;

/* One element (index 7919 % n + shift) of a tensor: analytic against D(h), h = 1e-3. */
static void probe(probe_op *o, const char *name, float *data, const float *grad, int64_t n,
                  double floor_, int shift, probe_stats *ps) {
    double gmax = 0.0;
    for (int64_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(grad[i]));
    int64_t i = (7919 + shift) % n;
    double fd = probe_fd(o, data, i, 1e-3), fd2 = probe_fd(o, data, i, 2e-3);
    double d = fabs(fd - grad[i]), base = 1e-2 * (fabs(fd) + gmax) + floor_;
    double est = 2.0 * fabs(fd - fd2);
    if (est > base) ps->n_noisy++;
    ps->worst = fmax(ps->worst, d / (base + est));
    ps->n++;
    if (getenv("S2T_VERBOSE")) fprintf(stderr, "      %-60s analytic %+.6e fd %+.6e 2h %+.6e ratio %.2f\n", name, grad[i], fd, fd2, d / (base + est));
    CHECK_MSG(d <= base + est, "%s[%lld]: analytic %.7g fd %.7g (2h: %.7g, max|grad| %.3g)", name,
              (long long)i, grad[i], fd, fd2, gmax);
}

/* Probes one element of every trainable tensor whose name starts with one of prefixes
 * (a full name selects one tensor). */
static void probe_params(probe_op *o, train_env *env, const char *const *prefixes, int np,
                         probe_stats *ps) {
    double floor_ = 0.0;
    for (int64_t i = 0; i < env->p->n_flat; i++) floor_ = fmax(floor_, 1e-3 * fabs(env->p->grad_flat[i]));
    for (int k = 0; k < env->p->n_train; k++) {
        s2_weight *w = &env->p->m->w[env->p->idx[k]];
        bool sel = false;
        for (int j = 0; j < np && !sel; j++) sel = strncmp(w->name, prefixes[j], strlen(prefixes[j])) == 0;
        if (sel) probe(o, w->name, w->t.data, env->p->grad[env->p->idx[k]], s2_tensor_numel(&w->t), floor_, k, ps);
    }
}

/* Memory attention: L = sum wo * out. */
typedef struct ma_fd {
    train_env *env;
    ma_case *k;
    const float *wo;
} ma_fd;

static double ma_loss(probe_op *o) {
    ma_fd *u = o->user;
    s2_arena_reset(&u->env->tc.tape);
    s2_memattn_tape tp;
    if (s2_memattn_forward_train(&u->env->t, &u->k->in, &tp) < 0) return NAN;
    double L = 0.0;
    for (int64_t i = 0; i < tp.N * tp.C; i++) L += (double)u->wo[i] * tp.out[i];
    return L;
}

TEST(grad_memattn_finite_differences) {
    reseed(5);
    sam2c_model *m = load_micro();
    if (!m) return;
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    train_env env;
    REQUIRE(env_init(&env, m) == 0);
    ma_case k;
    ma_case_make(&k, m);
    const int C = m->cfg.d_model, Cm = s2_memory_dim(m);
    const int64_t N = (int64_t)k.in.H * k.in.W, M = k.in.n_mem;
    float *wo = rbuf(N * C, 1e-2), *dc = zbuf(N * C), *dm = zbuf(M * Cm), *dp = zbuf(M * Cm);
    s2_trainable_zero_grad(env.p);
    s2_memattn_tape tp;
    REQUIRE(s2_memattn_forward_train(&env.t, &k.in, &tp) == 0);
    s2_memattn_backward(&env.t, &tp, wo, dc, dm, dp);
    ma_fd u = {&env, &k, wo};
    probe_op o = {ma_loss, &u};
    probe_stats ps = {0};
    static const char *const pre[] = {"memory_attention.layers.0.", "memory_attention.norm"};
    probe_params(&o, &env, pre, 2, &ps);
    double gmax = 0.0;
    for (int64_t i = 0; i < M * Cm; i++) gmax = fmax(gmax, fmax(fabs(dm[i]), fabs(dp[i])));
    for (int j = 0; j < 6; j++) { // spatial rows, rotated keys, and pointer rows (no RoPE)
        int64_t row = j < 4 ? (int64_t)j * 131 : M - 1 - j;
        probe(&o, "memory", k.mem + row * Cm, dm + row * Cm, Cm, 1e-3 * gmax, j, &ps);
        probe(&o, "memory_pos", k.mpos + row * Cm, dp + row * Cm, Cm, 1e-3 * gmax, j, &ps);
        probe(&o, "curr", k.curr + (int64_t)j * 37 * C, dc + (int64_t)j * 37 * C, C, 1e-3 * gmax, j, &ps);
    }
    fprintf(stderr, "    memory attention: %d probes, worst |analytic - fd| / tolerance = %.2f (%d widened)\n",
            ps.n, ps.worst, ps.n_noisy);
    omp_set_num_threads(threads);
    free(wo), free(dc), free(dm), free(dp);
    ma_case_free(&k);
    env_free(&env);
    sam2c_model_free(m);
}

/* Memory encoder: L = sum wf * feat. */
typedef struct me_fd {
    train_env *env;
    const float *pix, *wf;
    float *high;
    float score;
} me_fd;

static double me_loss(probe_op *o) {
    me_fd *u = o->user;
    const sam2c_model *m = u->env->t.m;
    const int h = s2_cfg_feat_side(&m->cfg);
    s2_arena_reset(&u->env->tc.tape);
    s2_memenc_tape tp;
    if (s2_memenc_forward_train(&u->env->t, u->pix, h, h, u->high, m->cfg.image_size, u->score, false, &tp) < 0)
        return NAN;
    double L = 0.0;
    for (int64_t i = 0; i < (int64_t)tp.Cm * h * h; i++) L += (double)u->wf[i] * tp.feat[i];
    return L;
}

TEST(grad_memenc_finite_differences) {
    reseed(6);
    sam2c_model *m = load_micro();
    if (!m) return;
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    train_env env;
    REQUIRE(env_init(&env, m) == 0);
    const int C = m->cfg.d_model, Cm = s2_memory_dim(m), h = s2_cfg_feat_side(&m->cfg), S = m->cfg.image_size;
    float *pix = rbuf((int64_t)C * h * h, 1.0), *wf = rbuf((int64_t)Cm * h * h, 1e-2);
    float *high = smooth_logits(S, 0.4, 120, 110), *dh = zbuf((int64_t)S * S);
    me_fd u = {&env, pix, wf, high, -0.3f}; // no object: no_obj_embed_spatial gets a gradient
    s2_trainable_zero_grad(env.p);
    s2_memenc_tape tp;
    REQUIRE(s2_memenc_forward_train(&env.t, pix, h, h, high, S, u.score, false, &tp) == 0);
    s2_memenc_backward(&env.t, &tp, wf, dh);
    probe_op o = {me_loss, &u};
    probe_stats ps = {0};
    static const char *const pre[] = {"memory_encoder.", "no_obj_embed_spatial"};
    probe_params(&o, &env, pre, 2, &ps);
    double gmax = 0.0;
    for (int64_t i = 0; i < (int64_t)S * S; i++) gmax = fmax(gmax, fabs(dh[i]));
    for (int j = 0; j < 8; j++) // mask pixels (through sigmoid, scale and the downsampler)
        probe(&o, "mask logits", high, dh, (int64_t)S * S, 1e-3 * gmax, 4099 * j, &ps);
    fprintf(stderr, "    memory encoder: %d probes, worst |analytic - fd| / tolerance = %.2f (%d widened)\n",
            ps.n, ps.worst, ps.n_noisy);
    omp_set_num_threads(threads);
    free(pix), free(wf), free(high), free(dh);
    env_free(&env);
    sam2c_model_free(m);
}

/* ---- clips on real features ------------------------------------------------------ */

#define NF 3

/* Encoder outputs of the first NF fixture video frames (the base model's encoder). */
typedef struct clip_feats {
    float *buf[NF];
    s2_backbone_out bb[NF];
    uint8_t *gt;       /* [NF, S, S] a disc moving right */
    int S;
} clip_feats;

static bool clip_feats_load(clip_feats *cf, const sam2c_model *m) {
    memset(cf, 0, sizeof *cf);
    s2_tensorfile *inp = NULL;
    if (s2_tensorfile_open(s2t_fx("micro/video/inputs.safetensors"), &inp) < 0) return false;
    const s2_tf_entry *fr = s2_tensorfile_find(inp, "frames.resized_u8");
    const int S = m->cfg.image_size;
    cf->S = S;
    bool ok = fr && fr->t.dtype == S2_U8 && fr->t.shape[0] >= NF && fr->t.shape[1] == S;
    s2_arena a;
    s2_arena_init(&a, (size_t)32 << 20);
    s2_ctx c = {NULL, &a, NULL, NULL};
    float *img = malloc(sizeof(float) * 3 * (size_t)S * S);
    for (int f = 0; ok && f < NF; f++) {
        cf->buf[f] = s2_aligned_alloc(sizeof(float) * s2_backbone_out_floats(&m->cfg));
        s2_backbone_out_carve(&m->cfg, cf->buf[f], &cf->bb[f]);
        ok = s2_preprocess_video_frame(img, (const uint8_t *)fr->t.data + (size_t)f * S * S * 3, S) == 0 &&
             s2_image_encoder_forward(&c, m, img, &cf->bb[f]) == 0;
        s2_arena_reset(&a);
    }
    cf->gt = malloc((size_t)NF * S * S);
    for (int f = 0; f < NF; f++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                cf->gt[((size_t)f * S + y) * S + x] = hypot(x - (90.0 + 12 * f), y - 120.0) < 40.0;
    free(img);
    s2_arena_free(&a);
    s2_tensorfile_free(inp);
    return ok;
}

static void clip_feats_free(clip_feats *cf) {
    for (int f = 0; f < NF; f++) s2_aligned_free(cf->buf[f]);
    free(cf->gt);
}

/* The clip description. Variant 0: a click on frame 0, the others tracked (eval parity).
 * Variant 1: the GT mask on frame 0, the others tracked (eval parity). Variant 2: a click
 * + n_correct corrective clicks on frame 0, frame 1 tracked then corrected (so stored as
 * a conditioning frame), frame 2 tracked. Variant 3: the GT mask on frame 0 and a box on
 * frame 2 (two initial conditioning frames: frame 1 reads a pointer from the future). */
static void clip_make(const clip_feats *cf, int variant, int n_correct, s2_clip_frame_in *fr,
                      s2_clip_in *in) {
    const int S = cf->S;
    for (int f = 0; f < NF; f++) {
        fr[f] = (s2_clip_frame_in){.fpn = {cf->bb[f].fpn[0], cf->bb[f].fpn[1], cf->bb[f].fpn[2]},
                                   .gt = cf->gt + (size_t)f * S * S, .init_cond = f == 0};
    }
    bool mask = variant == 1 || variant == 3;
    fr[0].n_pts = mask ? 0 : 1;
    fr[0].xy[0] = 95.0f, fr[0].xy[1] = 118.0f, fr[0].lab[0] = 1;
    fr[0].correct = variant == 2;
    fr[1].correct = variant == 2;
    if (variant == 3) {
        fr[2].init_cond = true, fr[2].n_pts = 2;
        float box[4] = {70.0f, 78.0f, 150.0f, 162.0f};
        memcpy(fr[2].xy, box, sizeof box);
        fr[2].lab[0] = 2, fr[2].lab[1] = 3;
    }
    *in = (s2_clip_in){.T = NF, .f = fr, .pos = cf->bb[0].pos[2], .n_correct = n_correct,
                       .center_clicks = true, .num_objects = 1.0, .add_corrected_as_cond = true};
}

/* The video predictor's step on the same clip: frame outputs stored in a bank. */
static void compare_with_predictor(train_env *env, const sam2c_model *m, const clip_feats *cf,
                                   bool mask, const s2_clip_out *co) {
    const int S = cf->S, C = m->cfg.d_model, Cm = s2_memory_dim(m), h = s2_cfg_feat_side(&m->cfg);
    const int64_t HW4 = (int64_t)16 * h * h, nm = (int64_t)Cm * h * h;
    s2_frame_out st[NF] = {0};
    s2_frame_out *cond[NF] = {0}, *ncond[NF] = {0};
    s2_mem_bank bank = {NF, cond, ncond};
    float *mask_in = malloc(sizeof(float) * (size_t)S * S), *mm = malloc(sizeof(float) * (size_t)nm);
    for (int64_t i = 0; i < (int64_t)S * S; i++) mask_in[i] = cf->gt[i] ? 1.0f : 0.0f;
    const float xy[2] = {95.0f, 118.0f};
    const int32_t lab[1] = {1};
    double worst = 0.0, rel;
    for (int f = 0; f < NF; f++) {
        s2_track_in ti = {f, f == 0, &cf->bb[f], f == 0 && !mask ? 1 : 0, xy, lab,
                          f == 0 && mask ? mask_in : NULL, &bank, NF, false, true, NULL};
        s2_track_out to;
        int rc = s2_track_step(&env->tc.c, m, &ti, &to);
        CHECK_MSG(rc == 0, "frame %d: %s", f, sam2c_last_error());
        if (rc) break;
        const s2_clip_frame_out *fo = &co->f[f];
        char nm_[64];
        snprintf(nm_, sizeof nm_, "frame %d low-res mask", f);
        CHECK(s2t_allclose(nm_, fo->low, to.pred_masks, HW4, 1e-4, 1e-5, &rel));
        worst = fmax(worst, rel);
        snprintf(nm_, sizeof nm_, "frame %d object pointer", f);
        CHECK(s2t_allclose(nm_, fo->obj_ptr, to.obj_ptr, C, 1e-4, 1e-5, &rel));
        worst = fmax(worst, rel);
        CHECK_NEAR(fo->score, to.object_score, 1e-4 * fabs(to.object_score) + 1e-5);
        for (int64_t i = 0; i < nm; i++) mm[i] = s2_bf16_to_f32(s2_f32_to_bf16(to.maskmem[i]));
        snprintf(nm_, sizeof nm_, "frame %d memory (bf16)", f);
        CHECK(s2t_allclose(nm_, fo->maskmem, mm, nm, 1e-4, 1e-5, &rel));
        worst = fmax(worst, rel);
        st[f].maskmem = malloc(sizeof(uint16_t) * (size_t)nm);
        st[f].pred_masks = malloc(sizeof(float) * (size_t)HW4);
        st[f].obj_ptr = malloc(sizeof(float) * (size_t)C);
        s2_to_bf16(st[f].maskmem, to.maskmem, nm);
        memcpy(st[f].pred_masks, to.pred_masks, sizeof(float) * (size_t)HW4);
        memcpy(st[f].obj_ptr, to.obj_ptr, sizeof(float) * (size_t)C);
        st[f].object_score = to.object_score;
        if (f == 0) cond[0] = &st[0];
        else ncond[f] = &st[f];
        s2_arena_reset(&env->tc.arena);
    }
    fprintf(stderr, "    clip (%s on frame 0, %d frames): worst max|train - predictor| / max|ref| = %.2e\n",
            mask ? "mask" : "click", NF, worst);
    for (int f = 0; f < NF; f++) free(st[f].maskmem), free(st[f].pred_masks), free(st[f].obj_ptr);
    free(mask_in), free(mm);
}

TEST(clip_forward_matches_predictor) {
    reseed(7);
    sam2c_model *m = load_micro();
    if (!m) return;
    clip_feats cf;
    REQUIRE(clip_feats_load(&cf, m));
    train_env env;
    REQUIRE(env_init(&env, m) == 0);
    s2_loss_cfg lc;
    s2_loss_cfg_default(&lc);
    for (int mask = 0; mask < 2; mask++) {
        s2_clip_frame_in fr[NF];
        s2_clip_in in;
        clip_make(&cf, mask, 0, fr, &in);
        in.eval = true;
        s2_clip_out co;
        int rc = s2_clip_step(&env.t, &lc, &in, false, &co);
        CHECK_MSG(rc == 0, "clip step: %s", sam2c_last_error());
        if (rc == 0) compare_with_predictor(&env, m, &cf, mask, &co);
        s2_arena_reset(&env.tc.tape);
    }
    // bad input: frame 0 not prompted; backward without the memory modules trainable
    s2_clip_frame_in fr[NF];
    s2_clip_in in;
    clip_make(&cf, 0, 0, fr, &in);
    fr[0].init_cond = false;
    s2_clip_out co;
    CHECK(s2_clip_step(&env.t, &lc, &in, false, &co) == SAM2C_ERR_ARG);
    s2_trainable *heads = NULL;
    REQUIRE(s2_trainable_create(m, &heads) == 0);
    s2_tctx th = env.t;
    th.m = heads->m, th.p = heads;
    clip_make(&cf, 0, 0, fr, &in);
    CHECK(s2_clip_step(&th, &lc, &in, true, &co) == SAM2C_ERR_ARG);
    s2_trainable_free(heads);
    env_free(&env);
    clip_feats_free(&cf);
    sam2c_model_free(m);
}

/* The whole clip's official loss as a function of one weight. */
typedef struct clip_fd {
    train_env *env;
    const s2_loss_cfg *lc;
    const s2_clip_in *in;
} clip_fd;

static double clip_loss(probe_op *o) {
    clip_fd *u = o->user;
    s2_arena_reset(&u->env->tc.tape);
    s2_clip_out co;
    if (s2_clip_step(&u->env->t, u->lc, u->in, false, &co) < 0) return NAN;
    return co.loss.core;
}

/* Gradient check of one clip (variant 2 or 3 of clip_make) on a few tensors of every
 * module on the path: memory attention, memory encoder, temporal encodings, the
 * pointer path, the decoder (its memory-conditioned input and chained mask inputs). */
static void clip_grad_case(train_env *env, const clip_feats *cf, int variant) {
    s2_loss_cfg lc;
    s2_loss_cfg_default(&lc);
    s2_clip_frame_in fr[NF];
    s2_clip_in in;
    clip_make(cf, variant, 1, fr, &in);
    s2_trainable_zero_grad(env->p);
    s2_arena_reset(&env->tc.tape);
    s2_clip_out co;
    int rc = s2_clip_step(&env->t, &lc, &in, true, &co);
    CHECK_MSG(rc == 0, "clip step: %s", sam2c_last_error());
    if (rc) return;
    const char *what = variant == 2 ? "click + corrections on frames 0 and 1" : "mask on 0, box on 2";
    fprintf(stderr, "    clip (%s): loss %.4f, passes %d %d %d, IoU %.3f %.3f %.3f, scores %.2f %.2f %.2f\n",
            what, co.loss.core, co.f[0].n_pass, co.f[1].n_pass, co.f[2].n_pass, co.f[0].iou,
            co.f[1].iou, co.f[2].iou, co.f[0].score, co.f[1].score, co.f[2].score);
    clip_fd u = {env, &lc, &in};
    probe_op o = {clip_loss, &u};
    probe_stats ps = {0};
    static const char *const pre_click[] = {
        "memory_attention.layers.1.cross_attn_image.k_proj.weight",
        "memory_attention.layers.1.cross_attn_image.v_proj.bias",
        "memory_attention.layers.0.cross_attn_image.q_proj.weight",
        "memory_attention.layers.0.self_attn.k_proj.weight",
        "memory_attention.layers.1.norm2.weight", "memory_attention.layers.0.linear2.weight",
        "memory_attention.norm.bias",
        "memory_encoder.mask_downsampler.encoder.0.weight",
        "memory_encoder.mask_downsampler.encoder.7.bias",
        "memory_encoder.mask_downsampler.encoder.12.weight", "memory_encoder.pix_feat_proj.weight",
        "memory_encoder.fuser.layers.0.dwconv.weight", "memory_encoder.fuser.layers.1.gamma",
        "memory_encoder.fuser.layers.0.pwconv1.weight", "memory_encoder.out_proj.bias",
        "maskmem_tpos_enc", "obj_ptr_proj.layers.0.weight", "obj_ptr_proj.layers.2.bias",
        "obj_ptr_tpos_proj.weight", "no_obj_ptr",
        "sam_mask_decoder.transformer.layers.1.cross_attn_token_to_image.q_proj.weight",
        "sam_mask_decoder.mask_tokens.weight", "sam_mask_decoder.conv_s0.weight",
        "sam_prompt_encoder.mask_downscaling.0.weight", "sam_prompt_encoder.point_embeddings.1.weight",
        "no_mem_embed"};
    static const char *const pre_mask[] = {
        "mask_downsample.weight", "mask_downsample.bias", "obj_ptr_proj.layers.1.weight",
        "obj_ptr_tpos_proj.bias", "memory_attention.layers.0.cross_attn_image.k_proj.weight",
        "memory_encoder.fuser.layers.0.pwconv2.weight", "maskmem_tpos_enc",
        "sam_prompt_encoder.mask_downscaling.3.weight", "sam_prompt_encoder.point_embeddings.2.weight",
        "sam_mask_decoder.transformer.layers.0.self_attn.q_proj.weight"};
    int n = variant == 2 ? (int)(sizeof pre_click / sizeof *pre_click) : (int)(sizeof pre_mask / sizeof *pre_mask);
    probe_params(&o, env, variant == 2 ? pre_click : pre_mask, n, &ps);
    CHECK_EQ_INT(ps.n, n);
    fprintf(stderr, "    clip (%s): %d tensors probed, worst |analytic - fd| / tolerance = %.2f (%d widened)\n",
            what, ps.n, ps.worst, ps.n_noisy);
}

TEST(grad_clip_finite_differences) {
    reseed(8);
    sam2c_model *m = load_micro();
    if (!m) return;
    clip_feats cf;
    REQUIRE(clip_feats_load(&cf, m));
    int threads = omp_get_max_threads();
    omp_set_num_threads(1); // hundreds of small forwards
    train_env env;
    REQUIRE(env_init(&env, m) == 0);
    clip_grad_case(&env, &cf, 2);
    clip_grad_case(&env, &cf, 3);
    omp_set_num_threads(threads);
    env_free(&env);
    clip_feats_free(&cf);
    sam2c_model_free(m);
}

