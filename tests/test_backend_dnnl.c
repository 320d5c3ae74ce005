/* The fast CPU backends against the reference kernels: oneDNN f32 (tight tolerance)
 * and bf16 (bf16 tolerance) for linear / matmul / conv2d, the flash attention kernel
 * (f32 and bf16), the micro-model image predictor on the dnnl f32 backend under the
 * parity rule of test_image_predictor.c (bf16 against f32 masks: test_bf16_agreement.c), and the
 * reference encoder bit-identical for 1 and 2 threads. Tests needing oneDNN skip when
 * the build has none; fixture tests skip when the fixtures are missing. */
#include "harness.h"
#include "backend/dnnl.h"
#include "io/json.h"
#include "io/tensorfile.h"
#include "model/image_encoder.h"
#include "model/model.h"
#include "model/sam2_base.h"
#include "predict/preprocess.h"
#include "tensor/tensor.h"
#include "predict/image.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define RTOL_F32 1e-5   /* max|d| <= RTOL * max|ref| (+ ATOL) for f32 backends */
#define ATOL_F32 1e-7
#define RTOL_BF16 1.5e-2 /* bf16 inputs: 8-bit mantissa, f32 accumulation */

/* Deterministic values in [-1, 1). */
static void fill(float *x, int64_t n, uint64_t seed) {
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(seed >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
}

static float *vec(int64_t n, uint64_t seed) {
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    fill(x, n, seed);
    return x;
}

static const s2_backend *dnnl_or_skip(s2_dnnl_mode mode) {
#ifndef SAM2C_HAVE_DNNL
    (void)mode;
    s2t_skip("built without oneDNN");
    return NULL;
#else
    const s2_backend *be = s2_backend_dnnl(mode);
    if (!be) s2t_fail(__FILE__, __LINE__, "oneDNN backend: %s", sam2c_last_error());
    return be;
#endif
}

/* ============================== linear / matmul ============================== */

// One linear shape on `be` against s2_ref_linear (twice: the second run uses the caches).
static void check_linear(const s2_backend *be, int64_t M, int64_t K, int64_t N, bool bias, double rtol) {
    float *x = vec(M * K, 1 + M), *w = vec(N * K, 2 + K), *b = bias ? vec(N, 3) : NULL;
    float *ref = vec(M * N, 4), *got = vec(M * N, 5);
    s2_ref_linear(ref, x, w, b, M, K, N);
    s2_ctx c = {.be = be};
    char what[96];
    for (int r = 0; r < 2; r++) {
        s2_op_linear(&c, got, x, w, b, M, K, N);
        snprintf(what, sizeof what, "%s linear %lldx%lldx%lld run %d", be->name, (long long)M, (long long)K,
                 (long long)N, r);
        CHECK(s2t_allclose(what, got, ref, M * N, rtol, ATOL_F32, NULL));
    }
    free(x), free(w), free(b), free(ref), free(got);
}

TEST(dnnl_f32_linear_matches_reference) {
    const s2_backend *be = dnnl_or_skip(S2_DNNL_F32);
    if (!be) return;
    check_linear(be, 37, 70, 45, true, RTOL_F32);
    check_linear(be, 1, 256, 256, true, RTOL_F32);
    check_linear(be, 4096, 96, 288, true, RTOL_F32);
    check_linear(be, 300, 384, 1536, false, RTOL_F32);
    check_linear(be, 513, 1536, 384, true, RTOL_F32);
}

TEST(dnnl_bf16_linear_within_bf16_tolerance) {
    const s2_backend *be = dnnl_or_skip(S2_DNNL_BF16);
    if (!be) return;
    check_linear(be, 37, 70, 45, true, RTOL_BF16);
    check_linear(be, 4096, 96, 288, true, RTOL_BF16);
    check_linear(be, 513, 1536, 384, true, RTOL_BF16);
}

TEST(dnnl_matmul_matches_reference) {
    const s2_backend *be = dnnl_or_skip(S2_DNNL_F32);
    if (!be) return;
    const int64_t M = 5, K = 33, N = 1000;
    float *a = vec(M * K, 7), *b = vec(K * N, 8), *ref = vec(M * N, 9), *got = malloc(sizeof(float) * M * N);
    s2_ctx c = {.be = be};
    for (int tb = 0; tb < 2; tb++) {
        float alpha = tb ? 0.5f : 1.0f, beta = tb ? 0.25f : 0.0f;
        fill(ref, M * N, 9);
        memcpy(got, ref, sizeof(float) * M * N);
        s2_ref_matmul(ref, a, b, M, K, N, tb, alpha, beta);
        s2_op_matmul(&c, got, a, b, M, K, N, tb, alpha, beta);
        CHECK(s2t_allclose(tb ? "matmul trans_b alpha beta" : "matmul", got, ref, M * N, RTOL_F32, ATOL_F32, NULL));
    }
    free(a), free(b), free(ref), free(got);
}

/* ============================== conv2d ============================== */

// One convolution on `be` against s2_ref_conv2d.
static void check_conv(const s2_backend *be, s2_conv2d_desc d, bool bias, double rtol) {
    int OH, OW;
    s2_conv2d_out_hw(&d, &OH, &OW);
    int64_t nx = (int64_t)d.N * d.C * d.H * d.W, nw = (int64_t)d.OC * (d.C / d.groups) * d.KH * d.KW;
    int64_t ny = (int64_t)d.N * d.OC * OH * OW;
    float *x = vec(nx, 11 + d.C), *w = vec(nw, 12 + d.KH), *b = bias ? vec(d.OC, 13) : NULL;
    float *ref = vec(ny, 14), *got = vec(ny, 15);
    s2_ref_conv2d(ref, x, w, b, &d);
    s2_ctx c = {.be = be};
    s2_op_conv2d(&c, got, x, w, b, &d);
    char what[128];
    snprintf(what, sizeof what, "%s conv C%d %dx%d -> OC%d k%dx%d s%d p%d g%d", be->name, d.C, d.H, d.W, d.OC,
             d.KH, d.KW, d.sh, d.ph, d.groups);
    CHECK(s2t_allclose(what, got, ref, ny, rtol, ATOL_F32, NULL));
    free(x), free(w), free(b), free(ref), free(got);
}

// The convolutions SAM 2 runs (patch embed, 1x1, mask downsampler, depthwise, ...).
static void conv_suite(const s2_backend *be, double rtol) {
    check_conv(be, (s2_conv2d_desc){1, 3, 64, 64, 32, 7, 7, 4, 4, 3, 3, 1}, true, rtol);   // patch embed
    check_conv(be, (s2_conv2d_desc){1, 64, 32, 32, 16, 1, 1, 1, 1, 0, 0, 1}, true, rtol);  // conv_s1
    check_conv(be, (s2_conv2d_desc){1, 4, 64, 64, 16, 3, 3, 2, 2, 1, 1, 1}, true, rtol);   // downsampler
    check_conv(be, (s2_conv2d_desc){1, 48, 16, 16, 48, 7, 7, 1, 1, 3, 3, 48}, true, rtol); // depthwise
    check_conv(be, (s2_conv2d_desc){2, 8, 13, 11, 12, 3, 3, 1, 1, 1, 1, 2}, false, rtol);  // grouped
    check_conv(be, (s2_conv2d_desc){1, 1, 64, 64, 1, 4, 4, 4, 4, 0, 0, 1}, true, rtol);    // mask_downsample
    check_conv(be, (s2_conv2d_desc){1, 3, 33, 31, 5, 3, 3, 2, 2, 1, 1, 1}, true, rtol);    // odd sizes
}

TEST(dnnl_f32_conv2d_matches_reference) {
    const s2_backend *be = dnnl_or_skip(S2_DNNL_F32);
    if (be) conv_suite(be, RTOL_F32);
}

TEST(dnnl_bf16_conv2d_within_bf16_tolerance) {
    const s2_backend *be = dnnl_or_skip(S2_DNNL_BF16);
    if (be) conv_suite(be, RTOL_BF16);
}

/* ============================== attention ============================== */

// Flash attention (through `be` when given, else directly) against s2_ref_attention.
static void check_attn(const s2_backend *be, bool bf16, int B, int H, int64_t Nq, int64_t Nk, int d,
                       double rtol) {
    int64_t ld = 3LL * H * d; // packed qkv rows, as Hiera's qkv projection
    float *q = vec(B * Nq * ld, 21 + d), *kv = vec(B * Nk * ld, 22 + Nk);
    for (int64_t i = 0; i < B * Nq * ld; i++) q[i] *= 3.0f; // peaky softmax
    int64_t no = (int64_t)B * Nq * H * d;
    float *ref = vec(no, 23), *got = vec(no, 24);
    s2_ref_attention(ref, H * d, q, ld, kv + H * d, ld, kv + 2 * H * d, ld, B, H, Nq, Nk, d);
    if (be) {
        s2_ctx c = {.be = be};
        s2_op_attention(&c, got, H * d, q, ld, kv + H * d, ld, kv + 2 * H * d, ld, B, H, Nq, Nk, d);
    } else {
        size_t n = s2_flash_attention_ws(B, H, Nq, Nk, d, bf16, omp_get_max_threads());
        void *ws = malloc(n);
        s2_flash_attention(got, H * d, q, ld, kv + H * d, ld, kv + 2 * H * d, ld, B, H, Nq, Nk, d, bf16, ws, n);
        free(ws);
    }
    char what[128];
    snprintf(what, sizeof what, "%s attention B%d H%d Nq%lld Nk%lld d%d", be ? be->name : (bf16 ? "flash-bf16" : "flash-f32"),
             B, H, (long long)Nq, (long long)Nk, d);
    CHECK(s2t_allclose(what, got, ref, no, rtol, ATOL_F32, NULL));
    free(q), free(kv), free(ref), free(got);
}

// Shapes of Hiera windows and global blocks, the two-way transformer and memory attention.
static void attn_suite(const s2_backend *be, bool bf16, double rtol) {
    check_attn(be, bf16, 16, 1, 64, 64, 96, rtol);   // 8x8 windows
    check_attn(be, bf16, 9, 2, 4, 16, 72, rtol);     // q-pooled windows, d 72
    check_attn(be, bf16, 1, 4, 300, 300, 96, rtol);  // global
    check_attn(be, bf16, 2, 8, 7, 200, 16, rtol);    // token -> image
    check_attn(be, bf16, 1, 8, 130, 7, 32, rtol);    // image -> token
    check_attn(be, bf16, 1, 1, 70, 1100, 256, rtol); // memory cross-attention
    check_attn(be, bf16, 3, 2, 33, 65, 56, rtol);    // odd everything
    check_attn(be, bf16, 1, 1, 5, 1, 8, rtol);       // a single key
}

TEST(flash_attention_f32_matches_reference) {
    attn_suite(NULL, false, RTOL_F32);
    int n = omp_get_max_threads();
    omp_set_num_threads(1);
    attn_suite(NULL, false, RTOL_F32);
    omp_set_num_threads(n);
}

/* The plain C and AVX-512F paths (SAM2C_FLASH_ISA caps the CPU's), whatever the CPU. */
TEST(flash_attention_portable_paths_match_reference) {
    int isa = s2_flash_attention_isa();
    for (int cap = 0; cap < isa; cap++) {
        char v[2] = {(char)('0' + cap), 0};
        setenv("SAM2C_FLASH_ISA", v, 1);
        REQUIRE(s2_flash_attention_isa() == cap);
        attn_suite(NULL, false, RTOL_F32);
        attn_suite(NULL, true, cap < 2 ? RTOL_F32 : RTOL_BF16); // bf16 runs f32 below AVX512-BF16
    }
    unsetenv("SAM2C_FLASH_ISA");
    if (isa == 0) fprintf(stderr, "  (plain C is this CPU's only path: covered by the tests above)\n");
}

TEST(flash_attention_bf16_within_bf16_tolerance) {
    if (s2_flash_attention_isa() < 2) fprintf(stderr, "  (no AVX512-BF16: bf16 runs the f32 kernel)\n");
    attn_suite(NULL, true, RTOL_BF16);
}

TEST(dnnl_backends_attention) {
    const s2_backend *f = dnnl_or_skip(S2_DNNL_F32), *b = f ? dnnl_or_skip(S2_DNNL_BF16) : NULL;
    if (!f || !b) return;
    attn_suite(f, false, RTOL_F32);
    attn_suite(b, true, RTOL_BF16);
}

// The few-keys kernel directly, at the decoder's sizes and the edges.
TEST(small_attention_matches_reference) {
    const int64_t shapes[][5] = {{1, 8, 4096, 8, 16}, {2, 8, 7, 8, 32}, {1, 2, 17, 16, 64},
                                 {1, 2, 33, 5, 48}, {3, 1, 1, 1, 16}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const int64_t *sh = shapes[i];
        if (!s2_small_attention_fits(sh[2], sh[3], (int)sh[4])) {
            fprintf(stderr, "  (no AVX-512: the small attention kernel is off)\n");
            return;
        }
        int B = (int)sh[0], H = (int)sh[1], d = (int)sh[4];
        int64_t Nq = sh[2], Nk = sh[3], ld = 3LL * H * d, no = B * Nq * H * d;
        float *q = vec(B * Nq * ld, 31), *kv = vec(B * Nk * ld, 32), *ref = vec(no, 33), *got = vec(no, 34);
        for (int64_t j = 0; j < B * Nq * ld; j++) q[j] *= 3.0f;
        s2_ref_attention(ref, H * d, q, ld, kv + H * d, ld, kv + 2 * H * d, ld, B, H, Nq, Nk, d);
        s2_small_attention(got, H * d, q, ld, kv + H * d, ld, kv + 2 * H * d, ld, B, H, Nq, Nk, d);
        char what[96];
        snprintf(what, sizeof what, "small attention B%d H%d Nq%lld Nk%lld d%d", B, H, (long long)Nq, (long long)Nk, d);
        CHECK(s2t_allclose(what, got, ref, no, RTOL_F32, ATOL_F32, NULL));
        free(q), free(kv), free(ref), free(got);
    }
}

/* =========================== fused and element-wise slots =========================== */

// linear_act, mlp, gelu, layernorm(2d) and conv_transpose2d of `be` against the reference
// composition (the decoder's and Hiera's shapes).
static void fused_suite(const s2_backend *be, double rtol) {
    s2_ctx c = {.be = be}, r = {.be = NULL};
    const int64_t M = 300, K = 96, N = 384;
    float *x = vec(M * K, 41), *w = vec(N * K, 42), *b = vec(N, 43), *ref = vec(M * N, 44), *got = vec(M * N, 45);
    for (int act = 1; act <= 2; act++) {
        s2_op_linear_act(&r, ref, x, w, b, M, K, N, (s2_act)act);
        s2_op_linear_act(&c, got, x, w, b, M, K, N, (s2_act)act);
        CHECK(s2t_allclose(act == 1 ? "linear+gelu" : "linear+relu", got, ref, M * N, rtol, 1e-6, NULL));
    }
    { /* two-layer MLP (bf16 mode keeps the hidden layer in bf16) */
        s2_arena ar;
        REQUIRE(s2_arena_init(&ar, 0) == 0);
        s2_ctx cm = {.be = be, .scratch = &ar}, rm = {.scratch = &ar};
        float *w2 = vec(K * N, 51), *o1 = vec(M * K, 52), *o2 = vec(M * K, 53);
        s2_op_mlp(&rm, o1, x, w, b, w2, b, M, K, N, K, S2_ACT_GELU);
        s2_op_mlp(&cm, o2, x, w, b, w2, b, M, K, N, K, S2_ACT_GELU);
        CHECK(s2t_allclose("mlp linear-gelu-linear", o2, o1, M * K, rtol, 1e-5, NULL));
        free(w2), free(o1), free(o2);
        s2_arena_free(&ar);
    }
    s2_op_layernorm(&r, ref, x, b, b + 1, M, K, 1e-6f);
    s2_op_layernorm(&c, got, x, b, b + 1, M, K, 1e-6f);
    CHECK(s2t_allclose("layernorm", got, ref, M * K, RTOL_F32, 1e-5, NULL));
    s2_op_layernorm2d(&r, ref, x, b, b + 1, 3, 32, 300, 1e-6f);
    s2_op_layernorm2d(&c, got, x, b, b + 1, 3, 32, 300, 1e-6f);
    CHECK(s2t_allclose("layernorm2d", got, ref, M * K, RTOL_F32, 1e-5, NULL));
    /* the decoder's upscaling: NHWC in + add, then NCHW in + add + GELU, batch 2 */
    for (int k = 0; k < 2; k++) {
        int Cin = k ? 16 : 64, Hh = k ? 16 : 8, OC = k ? 8 : 16;
        int64_t ny = 2LL * OC * Hh * Hh * 4;
        float *xi = vec(2LL * Cin * Hh * Hh, 46), *wi = vec((int64_t)Cin * OC * 4, 47), *add = vec(ny, 48);
        float *yr = vec(ny, 49), *yg = vec(ny, 50);
        s2_convt_desc d = {.N = 2, .C = Cin, .H = Hh, .W = Hh, .OC = OC, .K = 2, .x_nhwc = !k, .add = add,
                           .add_shared = k == 1, .act = k ? S2_ACT_GELU : S2_ACT_NONE};
        s2_op_conv_transpose2d(&r, yr, xi, wi, b, &d);
        s2_op_conv_transpose2d(&c, yg, xi, wi, b, &d);
        CHECK(s2t_allclose(k ? "convT nchw+add+gelu" : "convT nhwc+add", yg, yr, ny, rtol, 1e-6, NULL));
        free(xi), free(wi), free(add), free(yr), free(yg);
    }
    free(x), free(w), free(b), free(ref), free(got);
}

TEST(dnnl_fused_slots_match_reference) {
    const s2_backend *f = dnnl_or_skip(S2_DNNL_F32), *b = f ? dnnl_or_skip(S2_DNNL_BF16) : NULL;
    if (!f || !b) return;
    fused_suite(f, RTOL_F32);
    fused_suite(b, RTOL_BF16);
}

/* ============================== selection ============================== */

TEST(backend_selection_from_args) {
    const s2_backend *be = NULL;
    CHECK(s2_backend_from_args("ref", "f32", &be) == 0 && be == s2_backend_reference());
    CHECK(s2_backend_from_args("ref", "bf16", &be) == SAM2C_ERR_UNSUPPORTED);
    CHECK(strstr(sam2c_last_error(), "f32 only") != NULL);
    CHECK(s2_backend_from_args("cuda", NULL, &be) == SAM2C_ERR_ARG);
    CHECK(s2_backend_from_args(NULL, "f16", &be) == SAM2C_ERR_ARG);
    CHECK(s2_backend_by_name("nope") == NULL);
    CHECK(s2_backend_from_args(NULL, NULL, &be) == 0 && be != NULL);
#ifdef SAM2C_HAVE_DNNL
    CHECK(s2_backend_from_args("dnnl", "bf16", &be) == 0 && be == s2_backend_dnnl(S2_DNNL_BF16));
    CHECK(s2_backend_from_args("dnnl", NULL, &be) == 0 && be == s2_backend_dnnl(S2_DNNL_F32));
    CHECK(s2_backend_by_name("dnnl-bf16") == s2_backend_dnnl(S2_DNNL_BF16));
#else
    CHECK(s2_backend_from_args("dnnl", NULL, &be) == SAM2C_ERR_UNSUPPORTED);
#endif
}

/* A weight freed and replaced by different values at the same address must not be served
 * from the cache (fingerprint check). bf16 mode: the one that keeps converted Linear
 * weights (f32 reads them in place); the two weight sets differ far beyond bf16 rounding. */
TEST(dnnl_weight_cache_detects_new_values) {
    const s2_backend *be = dnnl_or_skip(S2_DNNL_BF16);
    if (!be) return;
    const int64_t M = 8, K = 64, N = 32;
    float *x = vec(M * K, 31), *w = vec(N * K, 32), *ref = vec(M * N, 33), *got = vec(M * N, 34);
    s2_ctx c = {.be = be};
    s2_op_linear(&c, got, x, w, NULL, M, K, N);
    fill(w, N * K, 35); // "another model" at the same address
    s2_ref_linear(ref, x, w, NULL, M, K, N);
    s2_op_linear(&c, got, x, w, NULL, M, K, N);
    CHECK(s2t_allclose("linear after weight change", got, ref, M * N, RTOL_BF16, ATOL_F32, NULL));
    free(x), free(w), free(ref), free(got);
}

/* ============================== micro model ============================== */

/* Dump hook state: tensors compared with the fixture as they are produced. */
typedef struct cmp_ctx {
    const s2_tensorfile *ref[2];
    int compared, failed;
    double worst;
    char worst_name[96];
} cmp_ctx;

// Compares a produced tensor with the fixture's under the parity rule.
static void compare_dump(void *user, const char *name, const float *data, int nd, const int64_t *sh) {
    cmp_ctx *c = user;
    const s2_tf_entry *e = NULL;
    for (int i = 0; i < 2 && !e; i++) e = c->ref[i] ? s2_tensorfile_find(c->ref[i], name) : NULL;
    if (!e || e->t.dtype != S2_F32) return;
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= sh[i];
    double rel = 0;
    if (n != s2_tensor_numel(&e->t) || !s2t_allclose(name, data, e->t.data, n, 1e-4, 1e-5, &rel)) {
        s2t_fail(__FILE__, __LINE__, "%s differs from the official output", name);
        c->failed++;
    }
    c->compared++;
    if (rel > c->worst) {
        c->worst = rel;
        snprintf(c->worst_name, sizeof c->worst_name, "%s", name);
    }
}

/* One fixture case's prompt (points, boxes, mask input flag) from cases.json. */
typedef struct case_prompt {
    float pts[64], bx[64];
    int32_t lab[32];
    sam2c_prompt p;
    bool mask_in;
} case_prompt;

static void read_case(const s2_json *cs, case_prompt *cp) {
    memset(cp, 0, sizeof *cp);
    const s2_json *a = s2_json_get(cs, "predict_args"), *pc = s2_json_get(a, "point_coords");
    const s2_json *pl = s2_json_get(a, "point_labels"), *bx = s2_json_get(a, "box");
    int np = 0, nb = 0;
    for (int i = 0; pc && pc->type == S2_JARR && i < pc->n && i < 32; i++, np++) {
        cp->pts[2 * i] = (float)pc->items[i].items[0].num;
        cp->pts[2 * i + 1] = (float)pc->items[i].items[1].num;
        cp->lab[i] = (int32_t)pl->items[i].num;
    }
    if (bx && bx->type == S2_JARR && bx->n > 0) {
        if (bx->items[0].type == S2_JNUM) {
            for (int k = 0; k < 4; k++) cp->bx[k] = (float)bx->items[k].num;
            nb = 1;
        } else {
            for (; nb < bx->n && nb < 16; nb++)
                for (int k = 0; k < 4; k++) cp->bx[4 * nb + k] = (float)bx->items[nb].items[k].num;
        }
    }
    bool mm = false;
    s2_json_bool(a, "multimask_output", &mm);
    const s2_json *mi = s2_json_get(a, "mask_input");
    cp->mask_in = mi && mi->type == S2_JSTR;
    cp->p = (sam2c_prompt){.n_points = np, .points = cp->pts, .labels = cp->lab, .n_boxes = nb,
                           .boxes = cp->bx, .multimask = mm, .return_logits = 1};
}

/* The truck fixture: model, image, cases; NULL model when fixtures are missing. */
typedef struct truck {
    sam2c_model *m;
    s2_tensorfile *img, *consts;
    s2_json *cases;
    float *prev;   /* case 0's best low-res mask, the mask input of case 4 */
    int side;
} truck;

static void truck_free(truck *t) {
    sam2c_model_free(t->m);
    s2_tensorfile_free(t->img);
    s2_tensorfile_free(t->consts);
    s2_json_free(t->cases);
    free(t->prev);
}

// Loads everything the truck cases need (false + skip/fail when unavailable).
static bool truck_open(truck *t) {
    memset(t, 0, sizeof *t);
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return false; }
    if (sam2c_model_load(s2t_fx("micro/model.safetensors"), NULL, &t->m) < 0 ||
        s2_tensorfile_open(s2t_fx("micro/image/truck/image.safetensors"), &t->img) < 0 ||
        s2_tensorfile_open(s2t_fx("micro/image/constants.safetensors"), &t->consts) < 0 ||
        s2_json_parse_file(s2t_fx("micro/image/truck/cases.json"), NULL, &t->cases) < 0) {
        s2t_fail(__FILE__, __LINE__, "truck fixture: %s", sam2c_last_error());
        truck_free(t);
        return false;
    }
    t->side = 4 * s2_cfg_feat_side(&t->m->cfg);
    t->prev = calloc((size_t)t->side * t->side, sizeof(float));
    const s2_json *c0 = &s2_json_get(t->cases, "cases")->items[0];
    char rel[256];
    snprintf(rel, sizeof rel, "micro/image/truck/%s", s2_json_str(c0, "file"));
    s2_tensorfile *f0 = NULL;
    if (s2_tensorfile_open(s2t_fx(rel), &f0) == 0) {
        const s2_tf_entry *low = s2_tensorfile_find(f0, "output.low_res_masks");
        const float *io = s2_tensorfile_find(f0, "output.iou_predictions")->t.data;
        int best = 0;
        for (int i = 1; i < 3; i++) best = io[i] > io[best] ? i : best;
        memcpy(t->prev, (const float *)low->t.data + (int64_t)best * t->side * t->side,
               sizeof(float) * (size_t)t->side * t->side);
        s2_tensorfile_free(f0);
    }
    return true;
}

// A session on `be` with the truck image set (dump hook optional).
static sam2c_image_session *truck_session(truck *t, const s2_backend *be, cmp_ctx *cc) {
    sam2c_image_session *s = NULL;
    if (sam2c_image_session_create(t->m, &s) < 0) return NULL;
    s2_image_session_set_backend(s, be);
    if (cc) s2_image_session_set_dump(s, compare_dump, cc);
    const s2_tf_entry *rgb = s2_tensorfile_find(t->img, "input.rgb_u8");
    if (sam2c_image_set_rgb(s, rgb->t.data, (int)rgb->t.shape[1], (int)rgb->t.shape[0]) < 0) {
        sam2c_image_session_free(s);
        return NULL;
    }
    return s;
}

TEST(dnnl_f32_image_predictor_matches_official_truck) {
    const s2_backend *be = dnnl_or_skip(S2_DNNL_F32);
    truck t;
    if (!be || !truck_open(&t)) return;
    cmp_ctx cc = {{t.img, t.consts}, 0, 0, 0, ""};
    sam2c_image_session *s = truck_session(&t, be, &cc);
    REQUIRE(s != NULL);
    cc.ref[1] = NULL;
    const s2_json *list = s2_json_get(t.cases, "cases");
    for (int k = 0; k < list->n; k++) {
        case_prompt cp;
        read_case(&list->items[k], &cp);
        cp.p.mask_input = cp.mask_in ? t.prev : NULL;
        cp.p.mask_input_h = cp.p.mask_input_w = t.side;
        char rel[256];
        snprintf(rel, sizeof rel, "micro/image/truck/%s", s2_json_str(&list->items[k], "file"));
        s2_tensorfile *f = NULL;
        REQUIRE(s2_tensorfile_open(s2t_fx(rel), &f) == 0);
        cc.ref[0] = f;
        sam2c_masks r;
        CHECK_MSG(sam2c_image_predict(s, &cp.p, &r) == 0, "predict: %s", sam2c_last_error());
        cc.ref[0] = NULL;
        s2_tensorfile_free(f);
    }
    CHECK(cc.compared >= 10);
    fprintf(stderr, "  dnnl-f32: %d tensors compared, worst max|d|/max|ref| %.3g (%s)\n", cc.compared,
            cc.worst, cc.worst_name);
    sam2c_image_session_free(s);
    truck_free(&t);
}

/* The bf16 agreement rule and the default it decides: tests/test_bf16_agreement.c. */

/* Captures the encoder outputs of one set_image. */
typedef struct enc_cap {
    float *data[3];
    int64_t n[3];
} enc_cap;

static void capture(void *user, const char *name, const float *x, int nd, const int64_t *sh) {
    static const char *names[3] = {"image_embed", "high_res_feats.0", "high_res_feats.1"};
    enc_cap *c = user;
    for (int k = 0; k < 3; k++)
        if (!strcmp(name, names[k]) && !c->data[k]) {
            int64_t n = 1;
            for (int i = 0; i < nd; i++) n *= sh[i];
            c->data[k] = malloc(sizeof(float) * (size_t)n);
            memcpy(c->data[k], x, sizeof(float) * (size_t)n);
            c->n[k] = n;
        }
}

TEST(reference_encoder_bit_identical_1_and_2_threads) {
    truck t;
    if (!truck_open(&t)) return;
    int keep = omp_get_max_threads();
    enc_cap cap[2];
    memset(cap, 0, sizeof cap);
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r + 1);
        sam2c_image_session *s = NULL;
        REQUIRE(sam2c_image_session_create(t.m, &s) == 0);
        s2_image_session_set_backend(s, s2_backend_reference());
        s2_image_session_set_dump(s, capture, &cap[r]);
        const s2_tf_entry *rgb = s2_tensorfile_find(t.img, "input.rgb_u8");
        REQUIRE(sam2c_image_set_rgb(s, rgb->t.data, (int)rgb->t.shape[1], (int)rgb->t.shape[0]) == 0);
        sam2c_image_session_free(s);
    }
    omp_set_num_threads(keep);
    for (int k = 0; k < 3; k++) {
        REQUIRE(cap[0].data[k] && cap[1].data[k] && cap[0].n[k] == cap[1].n[k]);
        CHECK_MSG(!memcmp(cap[0].data[k], cap[1].data[k], sizeof(float) * (size_t)cap[0].n[k]),
                  "encoder output %d differs between 1 and 2 threads", k);
        free(cap[0].data[k]), free(cap[1].data[k]);
    }
    truck_free(&t);
}

/* ============================== video tracking step ============================== */

/* One backend's run of the micro model's track step: the truck image encoded, a click
 * on frame 0 (conditioning, memory encoded), then frame 3 tracked from the memory of
 * frames 0 (cond), 1 and 2 (non-cond, frame 0's output reused). */
typedef struct track_res {
    float *low, *ptr, *mem; /* (LH*LW), (C), (Cm*H*W) of the tracked frame */
    int64_t n_low, n_ptr, n_mem;
} track_res;

static float *dup_f32(const float *x, int64_t n) {
    float *y = malloc(sizeof(float) * (size_t)n);
    memcpy(y, x, sizeof(float) * (size_t)n);
    return y;
}

static bool track_run(const sam2c_model *m, const s2_backend *be, const uint8_t *rgb, int w, int h, track_res *r) {
    const s2_config *c = &m->cfg;
    int S = c->image_size;
    s2_arena ar;
    if (s2_arena_init(&ar, 0) < 0) return false;
    s2_ctx ctx = {.be = be, .scratch = &ar};
    float *feat = s2_aligned_alloc(s2_backbone_out_floats(c) * sizeof(float));
    s2_backbone_out bb;
    s2_backbone_out_carve(c, feat, &bb);
    float *img = s2_scratch_f32(&ctx, 3LL * S * S);
    bool ok = s2_preprocess_image(img, rgb, w, h, S) == 0 && s2_image_encoder_forward(&ctx, m, img, &bb) == 0;
    float pt[2] = {S * 0.4f, S * 0.35f};
    int32_t lab[1] = {1};
    s2_track_in in = {.frame_idx = 0, .is_init_cond_frame = true, .bb = &bb, .n_points = 1, .point_coords = pt,
                      .point_labels = lab, .num_frames = 4, .run_mem_encoder = true};
    s2_track_out o;
    s2_frame_out fo = {0};
    ok = ok && s2_track_step(&ctx, m, &in, &o) == 0 && o.maskmem;
    if (ok) {
        int64_t nm = (int64_t)o.Cm * o.H * o.W;
        fo.maskmem = malloc(sizeof(uint16_t) * (size_t)nm);
        for (int64_t i = 0; i < nm; i++) fo.maskmem[i] = s2_f32_to_bf16(o.maskmem[i]);
        fo.pred_masks = dup_f32(o.pred_masks, (int64_t)o.LH * o.LW);
        fo.obj_ptr = dup_f32(o.obj_ptr, o.C);
        fo.object_score = o.object_score;
        s2_frame_out *cond[3] = {&fo, NULL, NULL}, *non[3] = {NULL, &fo, &fo};
        s2_mem_bank bank = {3, cond, non};
        s2_track_in t = {.frame_idx = 3, .bb = &bb, .bank = &bank, .num_frames = 4, .run_mem_encoder = true};
        ok = s2_track_step(&ctx, m, &t, &o) == 0 && o.maskmem;
    }
    if (ok) {
        r->n_low = (int64_t)o.LH * o.LW, r->n_ptr = o.C, r->n_mem = (int64_t)o.Cm * o.H * o.W;
        r->low = dup_f32(o.pred_masks, r->n_low);
        r->ptr = dup_f32(o.obj_ptr, r->n_ptr);
        r->mem = dup_f32(o.maskmem, r->n_mem);
    }
    free(fo.maskmem), free(fo.pred_masks), free(fo.obj_ptr);
    s2_aligned_free(feat);
    s2_arena_free(&ar);
    return ok;
}

TEST(dnnl_f32_track_step_matches_reference_backend) {
    const s2_backend *be = dnnl_or_skip(S2_DNNL_F32);
    truck t;
    if (!be || !truck_open(&t)) return;
    const s2_tf_entry *rgb = s2_tensorfile_find(t.img, "input.rgb_u8");
    track_res a = {0}, b = {0};
    REQUIRE(track_run(t.m, s2_backend_reference(), rgb->t.data, (int)rgb->t.shape[1], (int)rgb->t.shape[0], &a));
    REQUIRE(track_run(t.m, be, rgb->t.data, (int)rgb->t.shape[1], (int)rgb->t.shape[0], &b));
    double r1 = 0, r2 = 0, r3 = 0;
    CHECK(s2t_allclose("tracked low-res masks", b.low, a.low, a.n_low, 1e-4, 1e-5, &r1));
    CHECK(s2t_allclose("tracked object pointer", b.ptr, a.ptr, a.n_ptr, 1e-4, 1e-5, &r2));
    CHECK(s2t_allclose("tracked memory features", b.mem, a.mem, a.n_mem, 1e-4, 1e-5, &r3));
    fprintf(stderr, "  dnnl-f32 vs reference: masks %.3g, pointer %.3g, memory %.3g (max|d|/max|ref|)\n", r1, r2, r3);
    free(a.low), free(a.ptr), free(a.mem), free(b.low), free(b.ptr), free(b.mem);
    truck_free(&t);
}
