/* Image encoder (Hiera trunk + FPN neck + sine position encodings + conv_s0/s1) against
 * the official code's tensors on the micro model. Rule for every tensor:
 * max|ours - ref| <= 1e-4 * max|ref| + 1e-5. */
#include "harness.h"
#include "model/image_encoder.h"
#include "io/tensorfile.h"

#include <stdlib.h>
#include <string.h>

#define RTOL 1e-4
#define ATOL 1e-5

/* Dump hook state: the fixture files to compare against and what was compared. */
typedef struct cmp_state {
    const s2_tensorfile *files[2];
    char seen[32][48];
    int n_seen;
    double worst_rel;
} cmp_state;

/* Compares one dumped tensor with the fixture tensor of the same name, if any. */
static void cmp_dump(void *user, const char *name, const float *data, int ndim,
                     const int64_t *shape) {
    cmp_state *st = user;
    const s2_tf_entry *e = NULL;
    for (int f = 0; f < 2 && !e; f++)
        if (st->files[f]) e = s2_tensorfile_find(st->files[f], name);
    if (!e) return;
    char a[64], b[64];
    if (e->t.dtype != S2_F32 || !s2_shape_eq(e->t.shape, e->t.ndim, shape, ndim)) {
        s2t_fail(__FILE__, __LINE__, "%s: shape %s vs fixture %s", name,
                 s2_shape_str(shape, ndim, a, sizeof a),
                 s2_shape_str(e->t.shape, e->t.ndim, b, sizeof b));
        return;
    }
    double rel = 0;
    bool ok = s2t_allclose(name, data, e->t.data, s2_tensor_numel(&e->t), RTOL, ATOL, &rel);
    CHECK_MSG(ok, "%s differs from the official tensor", name);
    printf("    %-20s %-16s max|d|/max|ref| = %.3g\n", name,
           s2_shape_str(shape, ndim, a, sizeof a), rel);
    if (rel > st->worst_rel) st->worst_rel = rel;
    if (st->n_seen < 32) snprintf(st->seen[st->n_seen++], 48, "%s", name);
}

/* True when the hook compared `name`. */
static bool was_seen(const cmp_state *st, const char *name) {
    for (int i = 0; i < st->n_seen; i++)
        if (!strcmp(st->seen[i], name)) return true;
    return false;
}

/* Runs the encoder on <case>/image.safetensors input.tensor with the comparing hook and
 * checks that every name in `expect` was compared. */
static void run_case(const char *rel_image, const char *const *expect, int n_expect) {
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return;
    }
    sam2c_model *m = NULL;
    s2_tensorfile *img = NULL, *cst = NULL;
    int rc = sam2c_model_load(s2t_fx("micro/model.safetensors"), NULL, &m);
    CHECK_MSG(rc == 0, "model load: %s", sam2c_last_error());
    rc = s2_tensorfile_open(s2t_fx(rel_image), &img);
    CHECK_MSG(rc == 0, "image fixture: %s", sam2c_last_error());
    rc = s2_tensorfile_open(s2t_fx("micro/image/constants.safetensors"), &cst);
    CHECK_MSG(rc == 0, "constants fixture: %s", sam2c_last_error());
    const s2_tf_entry *in = img ? s2_tensorfile_find(img, "input.tensor") : NULL;
    if (m && in && cst) {
        int S = m->cfg.image_size;
        int64_t want[4] = {1, 3, S, S};
        REQUIRE(s2_shape_eq(in->t.shape, in->t.ndim, want, 4) && in->t.dtype == S2_F32);
        size_t nf = s2_backbone_out_floats(&m->cfg);
        REQUIRE(nf > 0);
        float *buf = s2_aligned_alloc(nf * sizeof(float));
        REQUIRE(buf);
        s2_backbone_out out;
        s2_backbone_out_carve(&m->cfg, buf, &out);
        CHECK_EQ_INT(out.n_levels, 3);
        s2_arena arena;
        REQUIRE(s2_arena_init(&arena, (size_t)64 << 20) == 0);
        cmp_state st = {{img, cst}, {{0}}, 0, 0};
        s2_ctx ctx = {NULL, &arena, cmp_dump, &st};
        double t0 = s2_now_s();
        rc = s2_image_encoder_forward(&ctx, m, in->t.data, &out);
        CHECK_MSG(rc == 0, "forward: %s", sam2c_last_error());
        printf("    forward %.3f s, worst relative difference %.3g\n", s2_now_s() - t0,
               st.worst_rel);
        for (int i = 0; i < n_expect; i++)
            CHECK_MSG(was_seen(&st, expect[i]), "%s was not dumped", expect[i]);
        s2_arena_free(&arena);
        s2_aligned_free(buf);
    }
    s2_tensorfile_free(cst);
    s2_tensorfile_free(img);
    sam2c_model_free(m);
}

/* Every intermediate of the truck image: trunk, neck, positions, high-res features. */
TEST(image_encoder_truck) {
    static const char *const expect[] = {
        "trunk.patch_embed", "trunk.pos_embed", "trunk.block.0", "trunk.block.1",
        "trunk.block.2", "trunk.block.3", "trunk.block.4", "trunk.block.5", "trunk.block.6",
        "backbone_fpn.0", "backbone_fpn.1", "backbone_fpn.2", "neck.out.3", "neck.pos.3",
        "vision_pos_enc.0", "vision_pos_enc.1", "vision_pos_enc.2", "high_res_feats.0",
        "high_res_feats.1"};
    run_case("micro/image/truck/image.safetensors", expect, (int)(sizeof expect / sizeof *expect));
}

/* A second image: the neck outputs and high-res features. */
TEST(image_encoder_groceries) {
    static const char *const expect[] = {"backbone_fpn.0", "backbone_fpn.1", "backbone_fpn.2",
                                         "neck.out.3", "high_res_feats.0", "high_res_feats.1"};
    run_case("micro/image/groceries/image.safetensors", expect,
             (int)(sizeof expect / sizeof *expect));
}

/* Known answer: C=4 on a 1x2 grid. dim_t = (1, 1); y = 2*pi*1/(1+1e-6); x = pi, 2*pi. */
TEST(pos_embed_sine_known_values) {
    float out[4 * 1 * 2];
    REQUIRE(s2_pos_embed_sine(out, 4, 1, 2, 10000.0) == 0);
    const float want[8] = {0, 0, 1, 1, 0, 0, -1, 1}; // sin y, cos y, sin x, cos x
    for (int i = 0; i < 8; i++) CHECK_NEAR(out[i], want[i], 2e-5);
    CHECK(s2_pos_embed_sine(out, 6, 1, 2, 10000.0) < 0); // npf odd: the official stack fails
    CHECK(s2_pos_embed_sine(out, 4, 0, 2, 10000.0) < 0);
}

/* The frequency ladder: channel pairs share 10000^(2*floor(j/2)/npf). */
TEST(pos_embed_sine_frequencies) {
    enum { C = 8, H = 3, W = 5 };
    float out[C * H * W];
    REQUIRE(s2_pos_embed_sine(out, C, H, W, 10000.0) == 0);
    int npf = C / 2;
    for (int j = 0; j < npf; j++) {
        double dim_t = pow(10000.0, 2.0 * (j / 2) / npf);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double vy = (y + 1) / (H + 1e-6) * 2 * M_PI / dim_t;
                double vx = (x + 1) / (W + 1e-6) * 2 * M_PI / dim_t;
                CHECK_NEAR(out[(j * H + y) * W + x], j % 2 ? cos(vy) : sin(vy), 1e-5);
                CHECK_NEAR(out[((npf + j) * H + y) * W + x], j % 2 ? cos(vx) : sin(vx), 1e-5);
            }
    }
}

/* Official layouts: level grids of 1024 inputs; the micro grid; configs that cannot run. */
TEST(image_encoder_geometry) {
    static const char *const names[] = {"tiny", "small", "base+", "large", "sam2_hiera_l"};
    for (int i = 0; i < 5; i++) {
        s2_config c;
        REQUIRE(s2_config_official(names[i], &c) == 0);
        s2_hiera_geom g;
        CHECK_MSG(s2_hiera_geom_init(&c, &g) == 0, "%s: %s", names[i], sam2c_last_error());
        CHECK_EQ_INT(g.lh[0], 256);
        CHECK_EQ_INT(g.lh[3], 32);
        CHECK(s2_backbone_out_floats(&c) > 0);
    }
    s2_config c;
    s2_config_defaults(&c);
    c.image_size = 1000; // patch grid 250 is not a multiple of window_spec[0] = 8
    CHECK(s2_backbone_out_floats(&c) == 0);
    s2_config_defaults(&c);
    c.backbone_channel_list[0] = 100;
    CHECK(s2_backbone_out_floats(&c) == 0);
    s2_config_defaults(&c);
    c.scalp = 4;
    CHECK(s2_backbone_out_floats(&c) == 0);
    s2_backbone_out o;
    s2_backbone_out_carve(&c, NULL, &o);
    CHECK_EQ_INT(o.n_levels, 0);
}

/* Another input size on the same weights (every weight is size-independent): 288 gives
 * grids 72/36/18/9, so the 14-windows of blocks 5-6 pad 18 -> 28 and the pooled 7-window
 * pads 9 -> 14. Checks the level sizes, finiteness, and that the position encodings
 * and scalp follow the config. (No official tensors exist at this size.) */
TEST(image_encoder_other_size) {
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return;
    }
    sam2c_model *m = NULL;
    REQUIRE(sam2c_model_load(s2t_fx("micro/model.safetensors"), NULL, &m) == 0);
    sam2c_model mm = *m; // shallow copy: same weights, other input size
    mm.cfg.image_size = 288;
    size_t nf = s2_backbone_out_floats(&mm.cfg);
    float *buf = nf ? s2_aligned_alloc(nf * sizeof(float)) : NULL;
    float *img = s2_malloc(sizeof(float) * 3 * 288 * 288);
    s2_arena arena;
    if (buf && img && s2_arena_init(&arena, 1 << 20) == 0) {
        for (int i = 0; i < 3 * 288 * 288; i++) img[i] = (float)((i * 7919) % 1000) / 500.0f - 1;
        s2_backbone_out o;
        s2_backbone_out_carve(&mm.cfg, buf, &o);
        s2_ctx ctx = {NULL, &arena, NULL, NULL};
        CHECK_MSG(s2_image_encoder_forward(&ctx, &mm, img, &o) == 0, "%s", sam2c_last_error());
        const int side[3] = {72, 36, 18};
        CHECK_EQ_INT(o.n_levels, 3);
        for (int k = 0; k < 3; k++) {
            CHECK_EQ_INT(o.h[k], side[k]);
            CHECK_EQ_INT(o.w[k], side[k]);
            int64_t n = (int64_t)o.C * side[k] * side[k];
            bool finite = true;
            for (int64_t j = 0; j < n; j++) finite &= isfinite(o.fpn[k][j]) != 0;
            CHECK_MSG(finite, "level %d has non-finite values", k);
        }
        float *pos = s2_malloc(sizeof(float) * 64 * 18 * 18);
        REQUIRE(pos && s2_pos_embed_sine(pos, 64, 18, 18, 10000.0) == 0);
        CHECK(memcmp(pos, o.pos[2], sizeof(float) * 64 * 18 * 18) == 0);
        free(pos);
        s2_arena_free(&arena);
    }
    free(img);
    s2_aligned_free(buf);
    sam2c_model_free(m);
}

/* A mismatched model config or an uncarved output is refused, not crashed on. */
TEST(image_encoder_rejects_bad_input) {
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return;
    }
    sam2c_model *m = NULL;
    REQUIRE(sam2c_model_load(s2t_fx("micro/model.safetensors"), NULL, &m) == 0);
    s2_arena arena;
    REQUIRE(s2_arena_init(&arena, 1 << 20) == 0);
    s2_ctx ctx = {NULL, &arena, NULL, NULL};
    float img[4] = {0};
    s2_backbone_out out;
    memset(&out, 0, sizeof out);
    CHECK(s2_image_encoder_forward(&ctx, m, img, &out) == SAM2C_ERR_ARG); // not carved
    sam2c_model bad = *m;
    bad.cfg.image_size = 250; // grid 63: not a multiple of the pos-embed window
    CHECK(s2_image_encoder_forward(&ctx, &bad, img, &out) == SAM2C_ERR_UNSUPPORTED);
    CHECK(s2_image_encoder_forward(NULL, m, img, &out) == SAM2C_ERR_ARG);
    s2_arena_free(&arena);
    sam2c_model_free(m);
}
