/* Memory encoder, bf16 memory storage and memory attention against the official code's
 * tensors (fixtures/micro/video/memory.safetensors) on the micro model.
 * Rule for calls that read exact inputs: max|ours - ref| <= 1e-4 * max|ref| + 1e-5.
 * bf16: our rounding of the reference pre-rounding features must equal the stored
 * bf16 bits; our own features must round to within one bf16 ulp of them. */
#include "harness.h"
#include "io/tensorfile.h"
#include "model/image_encoder.h"
#include "model/memory.h"
#include "model/sam2_base.h"
#include "predict/preprocess.h"

#include <stdlib.h>
#include <string.h>

#define RTOL 1e-4
#define ATOL 1e-5

/* Fixture files and model shared by the tests of this file. */
typedef struct fx {
    sam2c_model *m;
    s2_tensorfile *mem, *inp;
    s2_arena arena;
} fx;

/* Opens the model and the fixture files; false (test skipped or failed) when missing. */
static bool fx_open(fx *f) {
    memset(f, 0, sizeof *f);
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return false;
    }
    int rc = sam2c_model_load(s2t_fx("micro/model.safetensors"), NULL, &f->m);
    CHECK_MSG(rc == 0, "model load: %s", sam2c_last_error());
    rc = s2_tensorfile_open(s2t_fx("micro/video/memory.safetensors"), &f->mem);
    CHECK_MSG(rc == 0, "memory fixture: %s", sam2c_last_error());
    rc = s2_tensorfile_open(s2t_fx("micro/video/inputs.safetensors"), &f->inp);
    CHECK_MSG(rc == 0, "inputs fixture: %s", sam2c_last_error());
    CHECK(s2_arena_init(&f->arena, (size_t)32 << 20) == 0);
    return f->m && f->mem && f->inp;
}

static void fx_close(fx *f) {
    s2_arena_free(&f->arena);
    s2_tensorfile_free(f->inp);
    s2_tensorfile_free(f->mem);
    sam2c_model_free(f->m);
}

/* An F32 fixture tensor with exactly n values, or NULL (failure recorded). */
static const float *fx_f32(const s2_tensorfile *t, const char *name, int64_t n) {
    const s2_tf_entry *e = s2_tensorfile_find(t, name);
    CHECK_MSG(e != NULL, "fixture tensor %s missing", name);
    if (!e) return NULL;
    CHECK_MSG(e->t.dtype == S2_F32 && s2_tensor_numel(&e->t) == n, "%s: %lld values, expected %lld",
              name, (long long)s2_tensor_numel(&e->t), (long long)n);
    return (e->t.dtype == S2_F32 && s2_tensor_numel(&e->t) == n) ? e->t.data : NULL;
}

/* Compares and prints one tensor; returns the relative difference. */
static double cmp(const char *what, const float *got, const float *ref, int64_t n) {
    double rel = 0;
    bool ok = s2t_allclose(what, got, ref, n, RTOL, ATOL, &rel);
    CHECK_MSG(ok, "%s differs from the official tensor", what);
    printf("    %-40s max|d|/max|ref| = %.3g\n", what, rel);
    return rel;
}

/* Sizes of the micro model's memory, read from the model (no fixture sizes assumed). */
static void mem_sizes(const sam2c_model *m, int *C, int *Cm, int *H, int *W, int *S) {
    *C = m->cfg.d_model;
    *Cm = s2_memory_dim(m);
    *H = *W = s2_cfg_feat_side(&m->cfg);
    *S = m->cfg.image_size;
}

/* MemoryEncoder.forward on frame 0's level-2 feature and each object's mask_for_mem. */
TEST(memory_encoder_cond_frame0) {
    fx f;
    if (!fx_open(&f)) { fx_close(&f); return; }
    int C, Cm, H, W, S;
    mem_sizes(f.m, &C, &Cm, &H, &W, &S);
    const int64_t n = (int64_t)Cm * H * W;
    const float *pix = fx_f32(f.mem, "frame0.vision_feats.2", (int64_t)C * H * W);
    float *feat = malloc(sizeof(float) * (size_t)n), *pos = malloc(sizeof(float) * (size_t)n);
    s2_ctx ctx = {NULL, &f.arena, NULL, NULL};
    for (int obj = 1; obj <= 2 && pix; obj++) {
        char nm[96], nm2[96];
        snprintf(nm, sizeof nm, "cond_f00.o%d.mask_for_mem", obj);
        const float *mask = fx_f32(f.mem, nm, (int64_t)S * S);
        if (!mask) continue;
        int rc = s2_memory_encoder_forward(&ctx, f.m, pix, H, W, mask, S, feat, pos);
        CHECK_MSG(rc == 0, "memory encoder: %s", sam2c_last_error());
        snprintf(nm, sizeof nm, "cond_f00.o%d.memory_encoder_out", obj);
        snprintf(nm2, sizeof nm2, "cond_f00.o%d.maskmem_pos_enc", obj);
        const float *ref = fx_f32(f.mem, nm, n), *rpos = fx_f32(f.mem, nm2, n);
        if (ref) cmp(nm, feat, ref, n);
        if (rpos) cmp(nm2, pos, rpos, n);
        s2_arena_reset(&f.arena);
    }
    free(feat);
    free(pos);
    fx_close(&f);
}

/* _encode_new_memory (binarised mask from the stored low-res logits, no-object
 * embedding for the absent object 1) and the bf16 storage rounding. */
TEST(encode_new_memory_bf16) {
    fx f;
    if (!fx_open(&f)) { fx_close(&f); return; }
    int C, Cm, H, W, S;
    mem_sizes(f.m, &C, &Cm, &H, &W, &S);
    const int64_t n = (int64_t)Cm * H * W, LH = S / 4;
    const float *pix = fx_f32(f.mem, "frame0.vision_feats.2", (int64_t)C * H * W);
    float *feat = malloc(sizeof(float) * (size_t)n), *high = malloc(sizeof(float) * (size_t)S * S);
    uint16_t *ours = malloc(sizeof(uint16_t) * (size_t)n), *refr = malloc(sizeof(uint16_t) * (size_t)n);
    s2_backbone_out bb = {0};
    bb.n_levels = 1;
    bb.C = C;
    bb.h[0] = H;
    bb.w[0] = W;
    bb.fpn[0] = (float *)pix;
    s2_ctx ctx = {NULL, &f.arena, NULL, NULL};
    for (int obj = 1; obj <= 2 && pix; obj++) {
        char nm[96];
        snprintf(nm, sizeof nm, "cond_f00.o%d.pred_masks", obj);
        const float *low = fx_f32(f.mem, nm, LH * LH);
        snprintf(nm, sizeof nm, "cond_f00.o%d.object_score_logits", obj);
        const float *score = fx_f32(f.mem, nm, 1);
        snprintf(nm, sizeof nm, "cond_f00.o%d.maskmem_features_f32_before_bf16", obj);
        const float *ref = fx_f32(f.mem, nm, n);
        snprintf(nm, sizeof nm, "cond_f00.o%d.maskmem_features_bf16", obj);
        const s2_tf_entry *rb = s2_tensorfile_find(f.mem, nm);
        if (!low || !score || !ref || !rb || rb->t.dtype != S2_BF16 || s2_tensor_numel(&rb->t) != n) {
            CHECK_MSG(false, "object %d: fixture tensors missing", obj);
            continue;
        }
        // the predictor's preflight: bilinear upsampling of the stored low-res logits
        s2_ref_interp_bilinear(high, low, 1, (int)LH, (int)LH, S, S, false, false);
        int rc = s2_encode_new_memory(&ctx, f.m, &bb, high, score[0], true, feat);
        CHECK_MSG(rc == 0, "encode: %s", sam2c_last_error());
        snprintf(nm, sizeof nm, "cond_f00.o%d.maskmem_features_f32_before_bf16", obj);
        cmp(nm, feat, ref, n);
        // rounding: ours of the reference must be bit-exact, ours of ours within 1 ulp
        s2_to_bf16(refr, ref, n);
        s2_to_bf16(ours, feat, n);
        const uint16_t *stored = rb->t.data;
        int64_t exact_bad = 0, ulp_bad = 0, differ = 0;
        for (int64_t i = 0; i < n; i++) {
            exact_bad += refr[i] != stored[i];
            int d = abs((int)ours[i] - (int)stored[i]);
            differ += d != 0;
            ulp_bad += d > 1;
        }
        CHECK_MSG(exact_bad == 0, "object %d: %lld reference values round to other bf16 bits", obj, (long long)exact_bad);
        CHECK_MSG(ulp_bad == 0, "object %d: %lld values more than 1 bf16 ulp away", obj, (long long)ulp_bad);
        printf("    object %d bf16: %lld of %lld values 1 ulp away (from f32 rounding noise)\n", obj,
               (long long)differ, (long long)n);
        s2_arena_reset(&f.arena);
    }
    free(feat); free(high); free(ours); free(refr);
    fx_close(&f);
}

/* Dump hook: keeps a copy of the memory-attention output. */
typedef struct grab { float *buf; int64_t n; int hits; } grab;
static void grab_dump(void *user, const char *name, const float *data, int ndim, const int64_t *shape) {
    grab *g = user;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    if (strcmp(name, "memory_attention.out") || n != g->n) return;
    memcpy(g->buf, data, sizeof(float) * (size_t)n);
    g->hits++;
}

/* Fills a stored frame output from the fixture (bf16 memory, pointer, score, masks). */
static bool load_cond_out(fx *f, int obj, int64_t n, int C, int64_t nlow, s2_frame_out *o) {
    char nm[96];
    snprintf(nm, sizeof nm, "cond_f00.o%d.maskmem_features_bf16", obj);
    const s2_tf_entry *e = s2_tensorfile_find(f->mem, nm);
    snprintf(nm, sizeof nm, "cond_f00.o%d.obj_ptr", obj);
    const float *ptr = fx_f32(f->mem, nm, C);
    snprintf(nm, sizeof nm, "cond_f00.o%d.object_score_logits", obj);
    const float *sc = fx_f32(f->mem, nm, 1);
    snprintf(nm, sizeof nm, "cond_f00.o%d.pred_masks", obj);
    const float *pm = fx_f32(f->mem, nm, nlow);
    if (!e || e->t.dtype != S2_BF16 || s2_tensor_numel(&e->t) != n || !ptr || !sc || !pm) return false;
    o->maskmem = e->t.data;
    o->obj_ptr = (float *)ptr;
    o->pred_masks = (float *)pm;
    o->object_score = sc[0];
    return true;
}

/* _prepare_memory_conditioned_features on frame 1 (step 3): memory = frame 0's stored
 * conditioning memory (exact bf16 from the fixture) + its pointer at distance 1; the
 * frame-1 features come from our image encoder on the fixture's resized frame. */
TEST(memory_attention_frame1) {
    fx f;
    if (!fx_open(&f)) { fx_close(&f); return; }
    int C, Cm, H, W, S;
    mem_sizes(f.m, &C, &Cm, &H, &W, &S);
    const int64_t n = (int64_t)Cm * H * W, N = (int64_t)H * W;
    const s2_tf_entry *fr = s2_tensorfile_find(f.inp, "frames.resized_u8");
    REQUIRE(fr && fr->t.dtype == S2_U8 && fr->t.ndim == 4 && fr->t.shape[1] == S && fr->t.shape[0] >= 2);
    const int num_frames = (int)fr->t.shape[0];
    float *img = malloc(sizeof(float) * 3 * (size_t)S * S);
    size_t nf = s2_backbone_out_floats(&f.m->cfg);
    float *bbuf = s2_aligned_alloc(nf * sizeof(float));
    REQUIRE(img && bbuf);
    s2_backbone_out bb;
    s2_backbone_out_carve(&f.m->cfg, bbuf, &bb);
    s2_ctx ctx = {NULL, &f.arena, NULL, NULL};
    CHECK(s2_preprocess_video_frame(img, (const uint8_t *)fr->t.data + (size_t)S * S * 3, S) == 0);
    int rc = s2_image_encoder_forward(&ctx, f.m, img, &bb);
    CHECK_MSG(rc == 0, "image encoder: %s", sam2c_last_error());
    s2_arena_reset(&f.arena);
    s2_frame_out *cond = calloc((size_t)num_frames, sizeof *cond);
    s2_frame_out **cslot = calloc((size_t)num_frames, sizeof *cslot), **ncslot = calloc((size_t)num_frames, sizeof *ncslot);
    float *pix = malloc(sizeof(float) * (size_t)C * N), *got = malloc(sizeof(float) * (size_t)C * N);
    for (int obj = 1; obj <= 2 && rc == 0; obj++) {
        if (!load_cond_out(&f, obj, n, C, (int64_t)(S / 4) * (S / 4), &cond[0])) {
            CHECK_MSG(false, "object %d: fixture memory missing", obj);
            continue;
        }
        cslot[0] = &cond[0];
        s2_mem_bank bank = {num_frames, cslot, ncslot};
        grab g = {got, N * C, 0};
        s2_ctx dctx = {NULL, &f.arena, grab_dump, &g};
        int n_mem = 0, n_ptr = 0;
        rc = s2_prepare_memory_conditioned(&dctx, f.m, 1, false, &bb, &bank, num_frames, false, pix, &n_mem, &n_ptr);
        CHECK_MSG(rc == 0, "memory attention: %s", sam2c_last_error());
        CHECK_EQ_INT(g.hits, 1);
        CHECK_EQ_INT(n_mem, N + C / Cm);
        CHECK_EQ_INT(n_ptr, C / Cm);
        char nm[64];
        snprintf(nm, sizeof nm, "memattn.s03.f01.o%d", obj);
        const float *ref = fx_f32(f.mem, nm, N * C);
        if (ref && g.hits == 1) cmp(nm, got, ref, N * C);
        s2_arena_reset(&f.arena);
    }
    free(pix); free(got); free(cond); free(cslot); free(ncslot); free(img);
    s2_aligned_free(bbuf);
    fx_close(&f);
}

/* Rounding helper: ties go to even, NaN stays NaN, a round trip keeps bf16 values. */
TEST(bf16_round_trip) {
    const float v[5] = {1.0f, 1.00390625f /* tie -> 1.0 */, 1.01171875f /* tie -> 1.015625 */, -3.5f, 0.0f};
    const float want[5] = {1.0f, 1.0f, 1.015625f, -3.5f, 0.0f};
    uint16_t b[5];
    float back[5];
    s2_to_bf16(b, v, 5);
    s2_from_bf16(back, b, 5);
    for (int i = 0; i < 5; i++) CHECK_NEAR(back[i], want[i], 0.0);
}
