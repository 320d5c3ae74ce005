/* Golden tests of the prompt encoder, two-way transformer and mask decoder against the
 * official SAM 2 code (fixtures/micro/image): every case of both images, all tensors
 * before and after the mask selection, the selection decisions, and the dense PE.
 * Rule per tensor: max|ours - ref| <= 1e-4 * max|ref| + 1e-5. Sizes come from the
 * fixtures and the model config only. */
#include "harness.h"

#include <string.h>
#include <stdlib.h>

#include "io/json.h"
#include "io/tensorfile.h"
#include "model/model.h"
#include "model/sam_heads.h"

#define RTOL 1e-4
#define ATOL 1e-5

/* Worst relative difference seen per tensor name over all cases (printed at the end). */
typedef struct worst_entry {
    char name[64];
    double rel;
    int n;
} worst_entry;
static worst_entry g_worst[32];
static int g_n_worst;

/* Records a relative figure under `name`. */
static void note_rel(const char *name, double rel) {
    for (int i = 0; i < g_n_worst; i++)
        if (!strcmp(g_worst[i].name, name)) {
            if (rel > g_worst[i].rel) g_worst[i].rel = rel;
            g_worst[i].n++;
            return;
        }
    if (g_n_worst < 32) {
        snprintf(g_worst[g_n_worst].name, sizeof g_worst[0].name, "%s", name);
        g_worst[g_n_worst].rel = rel;
        g_worst[g_n_worst++].n = 1;
    }
}

static void print_worst(const char *title) {
    fprintf(stderr, "  %s: worst max|diff|/max|ref| per tensor\n", title);
    for (int i = 0; i < g_n_worst; i++)
        fprintf(stderr, "    %-30s %.3e  (%d comparisons)\n", g_worst[i].name, g_worst[i].rel,
                g_worst[i].n);
}

/* F32 entry of a fixture file with its element count, or NULL (test failure). */
static const s2_tf_entry *f32_entry(const s2_tensorfile *f, const char *name) {
    const s2_tf_entry *e = s2_tensorfile_find(f, name);
    CHECK_MSG(e != NULL, "%s: missing tensor %s", f->path, name);
    if (e && e->t.dtype != S2_F32) {
        CHECK_MSG(false, "%s: %s is not F32", f->path, name);
        return NULL;
    }
    return e;
}

/* Compares got against the named reference tensor (same element count). */
static void compare(const s2_tensorfile *f, const char *tag, const char *name,
                    const float *got, int64_t n) {
    const s2_tf_entry *e = f32_entry(f, name);
    if (!e) return;
    int64_t nr = s2_tensor_numel(&e->t);
    CHECK_MSG(nr == n, "%s %s: %lld elements, reference %lld", tag, name, (long long)n,
              (long long)nr);
    if (nr != n) return;
    char what[160];
    snprintf(what, sizeof what, "%s %s", tag, name);
    double rel = 0;
    bool ok = s2t_allclose(what, got, (const float *)e->t.data, n, RTOL, ATOL, &rel);
    CHECK_MSG(ok, "%s outside tolerance", what);
    note_rel(name, rel);
}

/* Dump hook: every dumped tensor that the case file holds is compared there. */
typedef struct dump_state {
    const s2_tensorfile *ref;
    const char *tag;
    int n_compared;
} dump_state;

static void on_dump(void *user, const char *name, const float *data, int ndim,
                    const int64_t *shape) {
    dump_state *st = user;
    const s2_tf_entry *e = s2_tensorfile_find(st->ref, name);
    if (!e) return;
    CHECK_MSG(s2_shape_eq(shape, ndim, e->t.shape, e->t.ndim), "%s %s: shape mismatch",
              st->tag, name);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    compare(st->ref, st->tag, name, data, n);
    st->n_compared++;
}

/* Loads the micro model, or marks the test skipped when fixtures are absent. */
static sam2c_model *load_micro(void) {
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return NULL;
    }
    sam2c_model *m = NULL;
    int rc = sam2c_model_load(s2t_fx("micro/model.safetensors"), NULL, &m);
    CHECK_MSG(rc == 0, "model load: %s", sam2c_last_error());
    return m;
}

/* Expected mask-token index of selected slot j, from the case's recorded decisions. */
static int expected_token(const s2_json *decision, bool multimask, int j) {
    if (multimask) return 1 + j;
    bool stable = false;
    int64_t argmax = -1;
    s2_json_bool(decision, "stability_is_stable", &stable);
    s2_json_int(decision, "multimask_iou_argmax", &argmax);
    return stable ? 0 : 1 + (int)argmax;
}

/* Checks the selection of item b against the decisions recorded by the generator. */
static void check_decisions(const s2_dec_out *o, const s2_json *decisions, bool multimask,
                            const sam2c_model *m, const char *tag) {
    for (int b = 0; b < o->B; b++) {
        const s2_json *d = s2_json_at(decisions, b);
        CHECK_MSG(d != NULL, "%s: no decision for item %d", tag, b);
        if (!d) continue;
        for (int j = 0; j < o->M; j++)
            CHECK_MSG(o->token_idx[b * o->M + j] == expected_token(d, multimask, j),
                      "%s item %d slot %d: token %d, expected %d", tag, b, j,
                      o->token_idx[b * o->M + j], expected_token(d, multimask, j));
        double ref_st;
        if (s2_json_num(d, "stability_score", &ref_st)) {
            float st = s2_mask_stability(o->all_logits + (int64_t)b * o->T * o->H * o->W,
                                         (int64_t)o->H * o->W,
                                         m->cfg.dynamic_multimask_stability_delta);
            CHECK_NEAR(st, ref_st, 1e-6);
        }
    }
}

/* Image-side decoder inputs of one image (borrowed from the fixture files). */
typedef struct image_inputs {
    const float *embed, *pe, *s0, *s1;
} image_inputs;

/* One predict call of a case: prompt encoder + decoder, all tensors compared. */
static void run_case(const sam2c_model *m, s2_ctx *c, const image_inputs *im,
                     const s2_json *cs, const char *dir, const char *tag) {
    const char *file = s2_json_str(cs, "file");
    bool multimask = false;
    s2_json_bool(s2_json_get(cs, "predict_args"), "multimask_output", &multimask);
    REQUIRE(file != NULL);
    char path[512];
    snprintf(path, sizeof path, "micro/image/%s/%s", dir, file);
    s2_tensorfile *f = NULL;
    REQUIRE(s2_tensorfile_open(s2t_fx(path), &f) == 0);
    dump_state st = {.ref = f, .tag = tag};
    c->dump = on_dump;
    c->dump_user = &st;

    const s2_tf_entry *pc = f32_entry(f, "prompt.point_coords");   // [B, N, 2]
    const s2_tf_entry *pl = s2_tensorfile_find(f, "prompt.point_labels"); // [B, N] I32
    const s2_tf_entry *mi = s2_tensorfile_find(f, "prompt.mask_input");   // [Bm, 1, H, W]
    if (!pc || !pl || pl->t.dtype != S2_I32) {
        CHECK_MSG(false, "%s: bad prompt tensors", tag);
        goto done;
    }
    s2_prompt p = {.B = (int)pc->t.shape[0], .N = (int)pc->t.shape[1],
                   .coords = pc->t.data, .labels = pl->t.data, .pad = true,
                   .mask = mi ? mi->t.data : NULL, .mask_B = mi ? (int)mi->t.shape[0] : 0};
    s2_prompt_out po;
    int rc = s2_prompt_encoder_forward(c, m, &p, &po);
    CHECK_MSG(rc == 0, "%s prompt encoder: %s", tag, sam2c_last_error());
    if (rc) goto done;

    s2_dec_in in = {.B = p.B, .Ns = po.Ns, .sparse = po.sparse, .dense = po.dense,
                    .image_embed = im->embed, .image_pe = im->pe, .feat_s0 = im->s0,
                    .feat_s1 = im->s1, .multimask_output = multimask, .repeat_image = p.B > 1};
    s2_dec_out o;
    rc = s2_mask_decoder_forward(c, m, &in, &o);
    CHECK_MSG(rc == 0, "%s decoder: %s", tag, sam2c_last_error());
    if (rc) goto done;
    // sparse, (dense), all logits, all iou, object score went through the dump hook
    CHECK_MSG(st.n_compared >= 4, "%s: only %d dumped tensors compared", tag, st.n_compared);

    int64_t nm = (int64_t)o.B * o.M * o.H * o.W;
    for (int64_t i = 0; i < nm; i++) o.masks[i] = fminf(fmaxf(o.masks[i], -32.0f), 32.0f);
    compare(f, tag, "output.low_res_masks", o.masks, nm);
    compare(f, tag, "output.iou_predictions", o.iou, (int64_t)o.B * o.M);
    check_decisions(&o, s2_json_get(cs, "decisions"), multimask, m, tag);
done:
    c->dump = NULL;
    s2_tensorfile_free(f);
}

/* Every case of one image of fixtures/micro/image. */
static void run_image(const char *dir) {
    sam2c_model *m = load_micro();
    if (!m) return;
    char path[512];
    s2_tensorfile *img = NULL, *cst = NULL;
    s2_json *cases = NULL;
    snprintf(path, sizeof path, "micro/image/%s/image.safetensors", dir);
    REQUIRE(s2_tensorfile_open(s2t_fx(path), &img) == 0);
    REQUIRE(s2_tensorfile_open(s2t_fx("micro/image/constants.safetensors"), &cst) == 0);
    snprintf(path, sizeof path, "micro/image/%s/cases.json", dir);
    REQUIRE(s2_json_parse_file(s2t_fx(path), NULL, &cases) == 0);
    const s2_tf_entry *emb = f32_entry(img, "image_embed");          // [1, C, h, w]
    const s2_tf_entry *pe = f32_entry(cst, "prompt_encoder.dense_pe"); // [1, C, h, w]
    const s2_tf_entry *s0 = f32_entry(img, "high_res_feats.0");       // [1, C/8, 4h, 4w]
    const s2_tf_entry *s1 = f32_entry(img, "high_res_feats.1");       // [1, C/4, 2h, 2w]
    REQUIRE(emb && pe && s0 && s1);
    bool hr = m->cfg.use_high_res_features_in_sam;
    image_inputs im = {emb->t.data, pe->t.data, hr ? s0->t.data : NULL,
                       hr ? s1->t.data : NULL};
    s2_arena arena;
    REQUIRE(s2_arena_init(&arena, 1 << 20) == 0);
    s2_ctx c = {.be = NULL, .scratch = &arena};
    const s2_json *list = s2_json_get(cases, "cases");
    REQUIRE(list && list->n > 0);
    for (int k = 0; k < list->n; k++) {
        char tag[96];
        snprintf(tag, sizeof tag, "%s/case%d", dir, k);
        run_case(m, &c, &im, s2_json_at(list, k), dir, tag);
        s2_arena_reset(&arena);
    }
    print_worst(dir);
    s2_arena_free(&arena);
    s2_json_free(cases);
    s2_tensorfile_free(cst);
    s2_tensorfile_free(img);
    sam2c_model_free(m);
}

TEST(dense_pe) {
    sam2c_model *m = load_micro();
    if (!m) return;
    s2_tensorfile *cst = NULL;
    REQUIRE(s2_tensorfile_open(s2t_fx("micro/image/constants.safetensors"), &cst) == 0);
    int h = s2_cfg_feat_side(&m->cfg);
    int64_t n = (int64_t)m->cfg.d_model * h * h;
    float *pe = malloc((size_t)n * sizeof(float));
    REQUIRE(pe != NULL);
    s2_prompt_dense_pe(m, pe);
    g_n_worst = 0;
    compare(cst, "constants", "prompt_encoder.dense_pe", pe, n);
    print_worst("dense_pe");
    free(pe);
    s2_tensorfile_free(cst);
    sam2c_model_free(m);
}

TEST(mask_decoder_truck) {
    g_n_worst = 0;
    run_image("truck");
}

TEST(mask_decoder_groceries) {
    g_n_worst = 0;
    run_image("groceries");
}

/* Bad input gives an error, never a crash. */
TEST(bad_inputs) {
    sam2c_model *m = load_micro();
    if (!m) return;
    s2_arena arena;
    REQUIRE(s2_arena_init(&arena, 1 << 16) == 0);
    s2_ctx c = {.scratch = &arena};
    float xy[2] = {10, 20};
    int32_t bad_label = 7;
    s2_prompt p = {.B = 1, .N = 1, .coords = xy, .labels = &bad_label, .pad = true};
    s2_prompt_out po;
    CHECK_EQ_INT(s2_prompt_encoder_forward(&c, m, &p, &po), SAM2C_ERR_ARG);
    p.labels = NULL;
    CHECK_EQ_INT(s2_prompt_encoder_forward(&c, m, &p, &po), SAM2C_ERR_ARG);
    p.B = 0;
    CHECK_EQ_INT(s2_prompt_encoder_forward(&c, m, &p, &po), SAM2C_ERR_ARG);
    int32_t ok_label = 1;
    p = (s2_prompt){.B = 1, .N = 1, .coords = xy, .labels = &ok_label, .pad = true};
    REQUIRE(s2_prompt_encoder_forward(&c, m, &p, &po) == 0);
    int h = s2_cfg_feat_side(&m->cfg);
    float *pe = s2_scratch_f32(&c, (int64_t)m->cfg.d_model * h * h);
    s2_prompt_dense_pe(m, pe);
    s2_dec_in in = {.B = 1, .Ns = po.Ns, .sparse = po.sparse, .dense = po.dense,
                    .image_embed = po.dense, .image_pe = pe};
    s2_dec_out o;
    int want = m->cfg.use_high_res_features_in_sam ? SAM2C_ERR_ARG : 0;
    CHECK_EQ_INT(s2_mask_decoder_forward(&c, m, &in, &o), want);
    in.image_embed = NULL;
    CHECK_EQ_INT(s2_mask_decoder_forward(&c, m, &in, &o), SAM2C_ERR_ARG);
    s2_arena_free(&arena);
    sam2c_model_free(m);
}
