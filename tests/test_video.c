/* Video predictor: replays fixtures/micro/video/script.json (the official
 * SAM2VideoPredictor call sequence) step by step on the micro model and compares every
 * step, frame and object with the official outputs.
 *
 * Tolerances (the official code run with another thread count differs by up to 0.18 on
 * tracked logits, 0.012 on pointers, 0.005 on scores, 0.007 on memory attention):
 *  - outputs that read no memory (conditioning outputs of the first prompts):
 *    max|d| <= 1e-4 * max|ref| + 1e-5 on logits, scores and pointers, and no more
 *    video-mask pixels differing than the reference has logits within 1e-3 of 0;
 *  - every other output: low-res logits within 0.5, object-score logits within 0.02,
 *    pointers within 0.1 (2% of their magnitude), video-mask IoU >= 0.98 (two empty
 *    masks: IoU 1);
 *  - memory-attention outputs (first call of each step and object) within 0.5: one
 *    1-ulp bf16 flip of a single memory value moves them by up to 0.07 (measured on
 *    s03.f01.o1) and flips compound over the tracked frames;
 *  - never a different decision: object present / absent, multimask IoU argmax,
 *    stability of the single-mask token (all 93 decoder calls). */
#include "harness.h"
#include "io/json.h"
#include "io/tensorfile.h"
#include "predict/postprocess.h"
#include "predict/video.h"
#include "model/sam_heads.h"

#include <stdlib.h>
#include <string.h>

#define RTOL 1e-4
#define ATOL 1e-5
#define LOGIT_TOL 0.5
#define SCORE_TOL 0.02
#define PTR_TOL 0.1
#define MEMATTN_TOL 0.5
#define IOU_MIN 0.98

/* Replay state and the worst figures reached. */
typedef struct replay {
    const s2_json *script;
    s2_tensorfile *outs, *mem, *inp;
    const sam2c_model *m;
    s2_video *v;
    int step;
    const char *op;
    int yield_i;                  /* next yield of a propagate step */
    const s2_json *yields;
    /* decoder capture of the current call */
    float iou[8], stab0;
    int n_tok;
    int decisions, memattn_cmp;
    /* worst figures */
    double strict_rel, loose_logit, loose_score, loose_ptr, min_iou, memattn_abs;
    int compared, strict_pix_extra;
    uint64_t hash[256];           /* every returned mask set, in order (bounded vs keep-all) */
    int n_hash;
} replay;

/* FNV-1a of the returned logits and scores: equal hashes = bitwise equal outputs. */
static void note_hash(replay *rp, const s2_video_masks *res) {
    uint64_t h = 1469598103934665603ULL;
    const uint8_t *b = (const uint8_t *)res->logits;
    const size_t n = sizeof(float) * (size_t)res->n_obj * res->w * res->h;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    for (int k = 0; k < res->n_obj; k++) {
        const s2_frame_out *fo = s2_video_output(rp->v, res->obj_ids[k], res->frame_idx, NULL);
        if (!fo) continue;
        const uint8_t *sb = (const uint8_t *)&fo->object_score;
        for (size_t i = 0; i < sizeof(float); i++) h = (h ^ sb[i]) * 1099511628211ULL;
    }
    if (rp->n_hash < 256) rp->hash[rp->n_hash++] = h ^ (uint64_t)res->frame_idx;
}

/* A fixture tensor from outputs.safetensors with n values of dtype dt, or NULL. */
static const void *ref_tensor(const s2_tensorfile *f, const char *name, s2_dtype dt, int64_t n) {
    const s2_tf_entry *e = name ? s2_tensorfile_find(f, name) : NULL;
    CHECK_MSG(e != NULL, "fixture tensor %s missing", name ? name : "(null)");
    if (!e) return NULL;
    bool ok = e->t.dtype == dt && s2_tensor_numel(&e->t) == n;
    CHECK_MSG(ok, "%s: unexpected dtype or size", name);
    return ok ? e->t.data : NULL;
}

/* max |a - b| and max |b| over n values. */
static double max_abs_diff(const float *a, const float *b, int64_t n, double *maxref) {
    double d = 0, r = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = fabs((double)a[i] - (double)b[i]);
        if (x > d || isnan(x)) d = isnan(x) ? INFINITY : x;
        if (fabs((double)b[i]) > r) r = fabs((double)b[i]);
    }
    if (maxref) *maxref = r;
    return d;
}

/* Strict comparison (no memory read); keeps the worst relative figure. */
static void cmp_strict(replay *rp, const char *what, const float *got, const float *ref, int64_t n) {
    double rel = 0;
    bool ok = s2t_allclose(what, got, ref, n, RTOL, ATOL, &rel);
    CHECK_MSG(ok, "step %d %s differs from the official tensor", rp->step, what);
    if (rel > rp->strict_rel) rp->strict_rel = rel;
}

/* Loose comparison (memory read): absolute bound; keeps the worst figure in *worst. */
static void cmp_loose(replay *rp, const char *what, const float *got, const float *ref, int64_t n,
                      double tol, double *worst) {
    double d = max_abs_diff(got, ref, n, NULL);
    CHECK_MSG(d <= tol, "step %d %s: max|d| %.4g > %.4g", rp->step, what, d, tol);
    if (d > *worst) *worst = d;
    if (getenv("S2T_VERBOSE")) printf("      step %d %-8s max abs %.4g\n", rp->step, what, d);
}

/* Compares one object's outputs on one frame with the reference entry of the script. */
static void cmp_object(replay *rp, int frame, int obj_id, const s2_json *ref, const s2_video_masks *res) {
    const char *storage = s2_json_str(ref, "storage");
    const s2_json *tn = s2_json_get(ref, "tensors");
    REQUIRE(storage && tn);
    const bool strict = !strcmp(storage, "cond_frame_outputs") || !strcmp(storage, "temp_cond_frame_outputs");
    const int LH = rp->m->cfg.image_size / 4, C = rp->m->cfg.d_model;
    const s2_frame_out *fo = s2_video_output(rp->v, obj_id, frame, NULL);
    CHECK_MSG(fo != NULL, "step %d frame %d object %d: no output", rp->step, frame, obj_id);
    int k = -1;
    for (int i = 0; i < res->n_obj; i++)
        if (res->obj_ids[i] == obj_id) k = i;
    CHECK_MSG(k >= 0, "step %d frame %d: object %d not returned", rp->step, frame, obj_id);
    if (!fo || k < 0) return;
    const int64_t nv = (int64_t)res->w * res->h;
    const float *low = ref_tensor(rp->outs, s2_json_str(tn, "low_res_logits"), S2_F32, (int64_t)LH * LH);
    const float *sc = ref_tensor(rp->outs, s2_json_str(tn, "object_score_logits"), S2_F32, 1);
    const float *ptr = ref_tensor(rp->outs, s2_json_str(tn, "obj_ptr"), S2_F32, C);
    const uint8_t *vm = ref_tensor(rp->outs, s2_json_str(tn, "video_mask"), S2_U8, nv);
    char what[96];
    snprintf(what, sizeof what, "f%02d.o%d", frame, obj_id);
    if (low && sc && ptr) {
        CHECK_MSG((fo->object_score > 0) == (sc[0] > 0), "step %d %s: presence decision differs (%g vs %g)",
                  rp->step, what, fo->object_score, sc[0]);
        if (strict) {
            cmp_strict(rp, what, fo->pred_masks, low, (int64_t)LH * LH);
            cmp_strict(rp, what, &fo->object_score, sc, 1);
            cmp_strict(rp, what, fo->obj_ptr, ptr, C);
        } else {
            cmp_loose(rp, what, fo->pred_masks, low, (int64_t)LH * LH, LOGIT_TOL, &rp->loose_logit);
            cmp_loose(rp, what, &fo->object_score, sc, 1, SCORE_TOL, &rp->loose_score);
            cmp_loose(rp, what, fo->obj_ptr, ptr, C, PTR_TOL, &rp->loose_ptr);
        }
    }
    if (vm) {
        const float *lg = res->logits + (int64_t)k * nv;
        int64_t inter = 0, uni = 0, diff = 0;
        for (int64_t i = 0; i < nv; i++) {
            bool a = lg[i] > 0, b = vm[i] != 0;
            inter += a && b;
            uni += a || b;
            diff += a != b;
        }
        double iou = uni ? (double)inter / (double)uni : 1.0;
        CHECK_MSG(iou >= IOU_MIN, "step %d %s: video mask IoU %.4f", rp->step, what, iou);
        if (iou < rp->min_iou) rp->min_iou = iou;
        double near0 = 0;
        s2_json_num(ref, "video_logits_abs_lt_1e-3", &near0);
        if (strict) {
            CHECK_MSG(diff <= (int64_t)near0, "step %d %s: %lld video-mask pixels differ", rp->step, what, (long long)diff);
            if (diff > rp->strict_pix_extra) rp->strict_pix_extra = (int)diff;
        }
    }
    rp->compared++;
}

/* Compares every object listed in `objects` (a map obj_id -> reference entry). */
static void cmp_objects(replay *rp, int frame, const s2_json *objects, const s2_video_masks *res) {
    note_hash(rp, res);
    REQUIRE(objects && objects->type == S2_JOBJ);
    CHECK_EQ_INT(res->n_obj, objects->n);
    for (int i = 0; i < objects->n; i++)
        cmp_object(rp, frame, atoi(objects->keys[i]), &objects->items[i], res);
}

/* The reference decision of a decoder call of this step, or NULL. */
static const s2_json *find_decision(const replay *rp, int frame, int obj) {
    const s2_json *d = s2_json_get(rp->script, "decoder_decisions");
    for (int i = 0; d && i < d->n; i++) {
        int64_t st, f, o;
        const s2_json *e = &d->items[i];
        if (s2_json_int(e, "step", &st) && s2_json_int(e, "frame", &f) && s2_json_int(e, "obj_id", &o) &&
            st == rp->step && f == frame && o == obj)
            return e;
    }
    return NULL;
}

/* Checks one decoder call's decisions: presence, IoU argmax of tokens 1..3, stability. */
static void check_decision(replay *rp, int frame, int obj, float score) {
    const s2_json *e = find_decision(rp, frame, obj);
    CHECK_MSG(e != NULL, "step %d f%d o%d: decoder call without a reference", rp->step, frame, obj);
    if (!e || rp->n_tok < 2) return;
    double ref_score = 0;
    int64_t ref_arg = -1;
    bool ref_stable = false;
    s2_json_num(e, "object_score_logit", &ref_score);
    s2_json_int(e, "multimask_iou_argmax", &ref_arg);
    s2_json_bool(e, "stability_is_stable", &ref_stable);
    int arg = 1;
    for (int t = 2; t < rp->n_tok; t++)
        if (rp->iou[t] > rp->iou[arg]) arg = t;
    CHECK_MSG((score > 0) == (ref_score > 0), "step %d f%d o%d: object score %g vs %g", rp->step, frame, obj, score, ref_score);
    CHECK_MSG(arg - 1 == ref_arg, "step %d f%d o%d: IoU argmax %d vs %lld", rp->step, frame, obj, arg - 1, (long long)ref_arg);
    bool stable = rp->stab0 >= rp->m->cfg.dynamic_multimask_stability_thresh;
    CHECK_MSG(stable == ref_stable, "step %d f%d o%d: stability %g", rp->step, frame, obj, rp->stab0);
    rp->decisions++;
}

/* Compares a memory-attention output with its anchor, if this call is one. */
static void check_memattn(replay *rp, int frame, int obj, const float *data, int64_t n) {
    char nm[64];
    snprintf(nm, sizeof nm, "memattn.s%02d.f%02d.o%d", rp->step, frame, obj);
    const s2_tf_entry *e = s2_tensorfile_find(rp->mem, nm);
    if (!e) return;
    REQUIRE(e->t.dtype == S2_F32 && s2_tensor_numel(&e->t) == n);
    double ref = 0, d = max_abs_diff(data, e->t.data, n, &ref);
    CHECK_MSG(d <= MEMATTN_TOL, "%s: max|d| %.4g", nm, d);
    printf("    %-22s max|d| %.3g (max|ref| %.3g)\n", nm, d, ref);
    if (d > rp->memattn_abs) rp->memattn_abs = d;
    rp->memattn_cmp++;
}

/* Dump hook: decoder decisions and memory-attention anchors ("f<frame>.o<obj>.<name>"). */
static void on_dump(void *user, const char *name, const float *data, int ndim, const int64_t *shape) {
    replay *rp = user;
    int frame, obj, used = 0;
    if (sscanf(name, "f%d.o%d.%n", &frame, &obj, &used) != 2 || used == 0) return;
    const char *what = name + used;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    if (!strcmp(what, "decoder.all_iou") && ndim == 2 && shape[0] == 1) {
        rp->n_tok = (int)S2_MIN(shape[1], 8);
        memcpy(rp->iou, data, sizeof(float) * (size_t)rp->n_tok);
    } else if (!strcmp(what, "decoder.all_low_res_logits") && ndim == 4 && shape[0] == 1) {
        rp->stab0 = s2_mask_stability(data, shape[2] * shape[3], rp->m->cfg.dynamic_multimask_stability_delta);
    } else if (!strcmp(what, "decoder.object_score_logits") && n == 1) {
        check_decision(rp, frame, obj, data[0]);
    } else if (!strcmp(what, "memory_attention.out")) {
        check_memattn(rp, frame, obj, data, n);
    }
}

/* Propagation callback: compares the yield of this frame. */
static int on_frame(void *user, const s2_video_masks *res) {
    replay *rp = user;
    const s2_json *y = s2_json_at(rp->yields, rp->yield_i++);
    CHECK_MSG(y != NULL, "step %d: more frames than the reference yields", rp->step);
    if (!y) return -1;
    int64_t f = -1;
    s2_json_int(y, "frame_idx", &f);
    CHECK_EQ_INT(res->frame_idx, f);
    cmp_objects(rp, res->frame_idx, s2_json_get(y, "objects"), res);
    return 0;
}

/* The mask argument of add_new_mask: a named input tensor or an empty mask. */
static uint8_t *step_mask(replay *rp, const char *desc, int w, int h) {
    uint8_t *mask = calloc((size_t)w * h, 1);
    if (!mask || strncmp(desc, "inputs.safetensors:", 19)) return mask; // "all-False ... (empty)"
    char name[64];
    size_t i = 0;
    for (const char *p = desc + 19; *p && *p != ' ' && i + 1 < sizeof name; p++) name[i++] = *p;
    name[i] = 0;
    const uint8_t *src = ref_tensor(rp->inp, name, S2_U8, (int64_t)w * h);
    if (src) memcpy(mask, src, (size_t)w * h);
    return mask;
}

/* Reads up to max (x, y) pairs of a JSON array of pairs. */
static int json_points(const s2_json *a, float *xy, int max) {
    int n = 0;
    for (int i = 0; a && a->type == S2_JARR && i < a->n && n < max; i++, n++) {
        xy[2 * n] = (float)s2_json_at(&a->items[i], 0)->num;
        xy[2 * n + 1] = (float)s2_json_at(&a->items[i], 1)->num;
    }
    return n;
}

/* Runs one add_new_points_or_box step and compares its return. */
static void step_points(replay *rp, const s2_json *st) {
    const s2_json *a = s2_json_get(st, "args");
    int64_t frame, obj;
    REQUIRE(s2_json_int(a, "frame_idx", &frame) && s2_json_int(a, "obj_id", &obj));
    float xy[32], box[4];
    int32_t lab[16];
    int n = json_points(s2_json_get(a, "points"), xy, 16);
    const s2_json *jl = s2_json_get(a, "labels");
    for (int i = 0; i < n; i++) lab[i] = (int32_t)s2_json_at(jl, i)->num;
    const s2_json *jb = s2_json_get(a, "box");
    bool has_box = jb && jb->type == S2_JARR && jb->n == 4;
    for (int i = 0; has_box && i < 4; i++) box[i] = (float)jb->items[i].num;
    bool clear = true, norm = true;
    s2_json_bool(a, "clear_old_points", &clear);
    s2_json_bool(a, "normalize_coords", &norm);
    s2_video_masks res;
    int rc = s2_video_add_points_or_box(rp->v, (int)frame, (int)obj, n ? xy : NULL, n ? lab : NULL, n,
                                        has_box ? box : NULL, clear, norm, &res);
    CHECK_MSG(rc == 0, "step %d: %s", rp->step, sam2c_last_error());
    if (rc == 0) cmp_objects(rp, (int)frame, s2_json_get(st, "objects"), &res);
}

/* Runs one add_new_mask step and compares its return. */
static void step_mask_add(replay *rp, const s2_json *st) {
    const s2_json *a = s2_json_get(st, "args");
    int64_t frame, obj;
    REQUIRE(s2_json_int(a, "frame_idx", &frame) && s2_json_int(a, "obj_id", &obj));
    int w, h;
    s2_video_size(rp->v, &w, &h);
    const char *desc = s2_json_str(a, "mask");
    uint8_t *mask = step_mask(rp, desc ? desc : "", w, h);
    REQUIRE(mask);
    s2_video_masks res;
    int rc = s2_video_add_mask(rp->v, (int)frame, (int)obj, mask, w, h, &res);
    CHECK_MSG(rc == 0, "step %d: %s", rp->step, sam2c_last_error());
    if (rc == 0) cmp_objects(rp, (int)frame, s2_json_get(st, "objects"), &res);
    free(mask);
}

/* Runs one propagate_in_video step; the callback compares every yield. */
static void step_propagate(replay *rp, const s2_json *st) {
    const s2_json *a = s2_json_get(st, "args");
    int64_t start = -1, maxf = -1;
    bool reverse = false;
    s2_json_int(a, "start_frame_idx", &start);
    s2_json_int(a, "max_frame_num_to_track", &maxf);
    s2_json_bool(a, "reverse", &reverse);
    rp->yields = s2_json_get(st, "yields");
    rp->yield_i = 0;
    int rc = s2_video_propagate(rp->v, (int)start, (int)maxf, reverse, on_frame, rp);
    CHECK_MSG(rc == 0, "step %d: %s", rp->step, sam2c_last_error());
    CHECK_EQ_INT(rp->yield_i, rp->yields ? rp->yields->n : 0);
}

/* Predictor settings the script states. */
static s2_video_params script_params(const replay *rp) {
    s2_video_params p = s2_video_default_params(rp->m);
    const s2_json *pr = s2_json_get(rp->script, "predictor");
    double fha = 0;
    s2_json_bool(pr, "add_all_frames_to_correct_as_cond", &p.add_all_frames_to_correct_as_cond);
    s2_json_bool(pr, "clear_non_cond_mem_around_input", &p.clear_non_cond_mem_around_input);
    if (s2_json_num(s2_json_get(pr, "post_processing"), "fill_hole_area", &fha)) p.fill_hole_area = (int)fha;
    p.non_overlap_masks = false; // official default (README)
    return p;
}

/* The whole script, step by step, with every output kept (keep_all) or the bounded
 * window; the returned outputs are hashed into rp->hash. */
static void replay_script(replay *rp_out, bool keep_all) {
    replay rp = {0};
    rp.min_iou = 1.0;
    sam2c_model *m = NULL;
    s2_json *script = NULL;
    REQUIRE(sam2c_model_load(s2t_fx("micro/model.safetensors"), NULL, &m) == 0);
    rp.m = m;
    CHECK(s2_json_parse_file(s2t_fx("micro/video/script.json"), NULL, &script) == 0);
    CHECK(s2_tensorfile_open(s2t_fx("micro/video/outputs.safetensors"), &rp.outs) == 0);
    CHECK(s2_tensorfile_open(s2t_fx("micro/video/memory.safetensors"), &rp.mem) == 0);
    CHECK(s2_tensorfile_open(s2t_fx("micro/video/inputs.safetensors"), &rp.inp) == 0);
    rp.script = script;
    if (script && rp.outs && rp.mem && rp.inp) {
        s2_video_params p = script_params(&rp);
        p.keep_all_outputs = keep_all;
        CHECK(s2_video_create(m, &p, &rp.v) == 0);
        int rc = rp.v ? s2_video_load_dir(rp.v, s2t_fx("micro/video/frames")) : -1;
        CHECK_MSG(rc == 0, "frames: %s", sam2c_last_error());
        double nf = 0, vw = 0, vh = 0;
        const s2_json *vid = s2_json_get(script, "video");
        s2_json_num(vid, "num_frames", &nf);
        s2_json_num(vid, "video_width", &vw);
        s2_json_num(vid, "video_height", &vh);
        int w, h;
        s2_video_size(rp.v, &w, &h);
        CHECK_EQ_INT(s2_video_num_frames(rp.v), (int)nf);
        CHECK(w == (int)vw && h == (int)vh);
        s2_video_set_dump(rp.v, on_dump, &rp);
        const s2_json *steps = s2_json_get(script, "steps");
        for (int i = 0; rc == 0 && steps && i < steps->n && !s2t_cur_failed; i++) {
            const s2_json *st = &steps->items[i];
            int64_t sn = 0;
            s2_json_int(st, "step", &sn);
            rp.step = (int)sn;
            rp.op = s2_json_str(st, "op");
            double t0 = s2_now_s();
            if (!rp.op) CHECK(false);
            else if (!strcmp(rp.op, "add_new_points_or_box")) step_points(&rp, st);
            else if (!strcmp(rp.op, "add_new_mask")) step_mask_add(&rp, st);
            else if (!strcmp(rp.op, "propagate_in_video")) step_propagate(&rp, st);
            else CHECK_MSG(false, "unknown op %s", rp.op);
            printf("    step %d %-22s %.2f s\n", rp.step, rp.op ? rp.op : "?", s2_now_s() - t0);
        }
        printf("    compared %d object-frames, %d decoder decisions, %d memory-attention anchors\n",
               rp.compared, rp.decisions, rp.memattn_cmp);
        printf("    worst: no-memory rel %.3g (video pixels differing %d); tracked |d| logits %.4g, "
               "scores %.4g, pointers %.4g; min video IoU %.5f; memory attention |d| %.4g\n",
               rp.strict_rel, rp.strict_pix_extra, rp.loose_logit, rp.loose_score, rp.loose_ptr,
               rp.min_iou, rp.memattn_abs);
        if (!s2t_cur_failed) {
            CHECK_EQ_INT(rp.decisions, s2_json_get(script, "decoder_decisions")->n);
            CHECK_EQ_INT(rp.memattn_cmp, s2_json_get(script, "memory_attention_anchors")->n);
        }
    }
    s2_video_free(rp.v);
    s2_tensorfile_free(rp.inp);
    s2_tensorfile_free(rp.mem);
    s2_tensorfile_free(rp.outs);
    s2_json_free(script);
    sam2c_model_free(m);
    rp.v = NULL;
    *rp_out = rp;
}

/* The script in the default bounded mode, then keeping every output (the official
 * state): both match the official outputs, and give bitwise the same results (the
 * 12-frame clip lies within the memory window). */
TEST(video_script_replay) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    static replay bounded, keep_all;
    printf("    bounded memory (default window):\n");
    replay_script(&bounded, false);
    printf("    every output kept:\n");
    replay_script(&keep_all, true);
    CHECK_EQ_INT(bounded.n_hash, keep_all.n_hash);
    int same = 0;
    for (int i = 0; i < bounded.n_hash && i < keep_all.n_hash; i++) same += bounded.hash[i] == keep_all.hash[i];
    CHECK_EQ_INT(same, bounded.n_hash);
    printf("    %d of %d returned mask sets bitwise equal in both modes\n", same, bounded.n_hash);
}

/* ---- behaviour without a reference: options, errors, state changes ---- */

/* A session on the fixture frames with the given options (NULL: fixture settings). */
static s2_video *open_session(sam2c_model **m, const s2_video_params *p) {
    *m = NULL;
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return NULL; }
    if (sam2c_model_load(s2t_fx("micro/model.safetensors"), NULL, m) != 0) {
        CHECK_MSG(false, "model: %s", sam2c_last_error());
        return NULL;
    }
    s2_video_params d = s2_video_default_params(*m);
    d.fill_hole_area = 0;
    d.add_all_frames_to_correct_as_cond = false;
    s2_video *v = NULL;
    int rc = s2_video_create(*m, p ? p : &d, &v);
    if (rc == 0) rc = s2_video_load_dir(v, s2t_fx("micro/video/frames"));
    CHECK_MSG(rc == 0, "session: %s", sam2c_last_error());
    return v;
}

/* Steps 1 and 2 of the script: a point on object 1 and a box on object 2, frame 0. */
static int prompt_two(s2_video *v, s2_video_masks *res) {
    const float pt[2] = {105, 175}, box[4] = {150, 5, 262, 200};
    const int32_t lab[1] = {1};
    int rc = s2_video_add_points_or_box(v, 0, 1, pt, lab, 1, NULL, true, true, res);
    return rc ? rc : s2_video_add_points_or_box(v, 0, 2, NULL, NULL, 0, box, true, true, res);
}

/* Records the frames a propagation yields; stops after `stop_after` when > 0. */
typedef struct seen_frames { int n, frames[64], stop_after; } seen_frames;
static int record_frame(void *user, const s2_video_masks *m) {
    seen_frames *s = user;
    if (s->n < 64) s->frames[s->n] = m->frame_idx;
    s->n++;
    return s->stop_after > 0 && s->n >= s->stop_after ? 1 : 0;
}

/* The frames in model-input size are the fixture's PIL resize of the decoded JPEGs. */
TEST(video_frames_resized_like_pil) {
    sam2c_model *m;
    s2_video *v = open_session(&m, NULL);
    s2_tensorfile *inp = NULL;
    if (v && s2_tensorfile_open(s2t_fx("micro/video/inputs.safetensors"), &inp) == 0) {
        const s2_tf_entry *e = s2_tensorfile_find(inp, "frames.resized_u8");
        REQUIRE(e && e->t.ndim == 4 && e->t.shape[0] == s2_video_num_frames(v));
        const int64_t per = e->t.shape[1] * e->t.shape[2] * e->t.shape[3];
        int64_t bad = 0;
        for (int f = 0; f < s2_video_num_frames(v); f++) {
            const uint8_t *ours = s2_video_frame_rgb(v, f), *ref = (const uint8_t *)e->t.data + f * per;
            for (int64_t i = 0; i < per; i++) bad += ours[i] != ref[i];
        }
        CHECK_MSG(bad == 0, "%lld resized frame bytes differ", (long long)bad);
        CHECK(s2_video_frame_rgb(v, -1) == NULL && s2_video_frame_rgb(v, s2_video_num_frames(v)) == NULL);
    }
    s2_tensorfile_free(inp);
    s2_video_free(v);
    sam2c_model_free(m);
}

/* Bad calls fail with a status and a message, and leave the session usable. */
TEST(video_bad_calls) {
    sam2c_model *m;
    s2_video *v = open_session(&m, NULL);
    if (!v) { sam2c_model_free(m); return; }
    const float pt[2] = {10, 10}, box[4] = {1, 2, 30, 40};
    const int32_t lab[1] = {1}, badlab[1] = {7};
    s2_video_masks res;
    CHECK(s2_video_propagate(v, -1, -1, false, NULL, NULL) == SAM2C_ERR_STATE);
    CHECK(s2_video_add_points_or_box(v, -1, 1, pt, lab, 1, NULL, true, true, &res) == SAM2C_ERR_ARG);
    CHECK(s2_video_add_points_or_box(v, 12, 1, pt, lab, 1, NULL, true, true, &res) == SAM2C_ERR_ARG);
    CHECK(s2_video_add_points_or_box(v, 0, 1, NULL, NULL, 0, NULL, true, true, &res) == SAM2C_ERR_ARG);
    CHECK(s2_video_add_points_or_box(v, 0, 1, pt, NULL, 1, NULL, true, true, &res) == SAM2C_ERR_ARG);
    CHECK(s2_video_add_points_or_box(v, 0, 1, pt, badlab, 1, NULL, true, true, &res) == SAM2C_ERR_ARG);
    CHECK(s2_video_add_points_or_box(v, 0, 1, NULL, NULL, 0, box, false, true, &res) == SAM2C_ERR_ARG);
    CHECK(s2_video_add_mask(v, 0, 1, NULL, 4, 4, &res) == SAM2C_ERR_ARG);
    CHECK(s2_video_clear_prompts(v, 0, 99, &res) == SAM2C_ERR_ARG);
    CHECK(s2_video_remove_object(v, 99, true) == SAM2C_ERR_ARG);
    CHECK(s2_video_remove_object(v, 99, false) == 0);
    CHECK(strlen(sam2c_last_error()) > 0);
    // nothing was created by the failed calls: still no object to propagate
    CHECK(s2_video_propagate(v, -1, -1, false, NULL, NULL) == SAM2C_ERR_STATE);
    CHECK(s2_video_add_points_or_box(v, 0, 1, pt, lab, 1, NULL, true, true, &res) == 0);
    CHECK(res.n_obj == 1 && res.obj_ids[0] == 1 && res.frame_idx == 0);
    CHECK(s2_video_propagate(v, 12, -1, false, NULL, NULL) == SAM2C_ERR_ARG);
    s2_video_free(v);
    sam2c_model_free(m);
    CHECK(s2_video_load_dir(NULL, "x") == SAM2C_ERR_ARG);
}

/* start_frame_idx / max_frame_num_to_track / reverse give the official frame ranges. */
TEST(video_propagate_ranges) {
    sam2c_model *m;
    s2_video *v = open_session(&m, NULL);
    if (!v) { sam2c_model_free(m); return; }
    REQUIRE(prompt_two(v, NULL) == 0);
    seen_frames s = {0};
    CHECK(s2_video_propagate(v, -1, 3, false, record_frame, &s) == 0);
    CHECK(s.n == 4 && s.frames[0] == 0 && s.frames[3] == 3);
    s = (seen_frames){0};
    CHECK(s2_video_propagate(v, 5, 2, true, record_frame, &s) == 0);
    CHECK(s.n == 3 && s.frames[0] == 5 && s.frames[2] == 3);
    s = (seen_frames){0};
    CHECK(s2_video_propagate(v, 0, -1, true, record_frame, &s) == 0); // reverse from 0: nothing
    CHECK_EQ_INT(s.n, 0);
    s = (seen_frames){0};
    s.stop_after = 2;
    CHECK(s2_video_propagate(v, 10, -1, false, record_frame, &s) == 0); // stop from the callback
    CHECK(s.n == 2 && s.frames[0] == 10 && s.frames[1] == 11);
    s2_video_free(v);
    sam2c_model_free(m);
}

/* non_overlap_masks: at every pixel only the highest-scoring object stays positive,
 * the others are clamped to <= -10; the winner's logits are unchanged. */
TEST(video_non_overlap_masks) {
    sam2c_model *m;
    s2_video *a = open_session(&m, NULL);
    if (!a) { sam2c_model_free(m); return; }
    s2_video_params p = s2_video_default_params(m);
    p.fill_hole_area = 0;
    p.non_overlap_masks = true;
    s2_video *b = NULL;
    REQUIRE(s2_video_create(m, &p, &b) == 0);
    REQUIRE(s2_video_load_dir(b, s2t_fx("micro/video/frames")) == 0);
    const float box1[4] = {100, 20, 300, 250}, box2[4] = {150, 5, 262, 200};
    s2_video_masks ra, rb;
    REQUIRE(s2_video_add_points_or_box(a, 0, 1, NULL, NULL, 0, box1, true, true, &ra) == 0);
    REQUIRE(s2_video_add_points_or_box(a, 0, 2, NULL, NULL, 0, box2, true, true, &ra) == 0);
    REQUIRE(s2_video_add_points_or_box(b, 0, 1, NULL, NULL, 0, box1, true, true, &rb) == 0);
    REQUIRE(s2_video_add_points_or_box(b, 0, 2, NULL, NULL, 0, box2, true, true, &rb) == 0);
    const int64_t n = (int64_t)ra.w * ra.h;
    int64_t overlap_a = 0, overlap_b = 0, changed_winner = 0;
    for (int64_t i = 0; i < n; i++) {
        float a0 = ra.logits[i], a1 = ra.logits[n + i], b0 = rb.logits[i], b1 = rb.logits[n + i];
        overlap_a += a0 > 0 && a1 > 0;
        overlap_b += b0 > 0 && b1 > 0;
        int w = a1 > a0 ? 1 : 0;
        changed_winner += (w ? b1 != a1 : b0 != a0);
        CHECK(w ? b0 == fminf(a0, -10.0f) : b1 == fminf(a1, -10.0f));
        if (s2t_cur_failed) break;
    }
    CHECK_MSG(overlap_a > 0, "the two boxes should overlap without the option");
    CHECK_EQ_INT(overlap_b, 0);
    CHECK_EQ_INT(changed_winner, 0);
    s2_video_free(b);
    s2_video_free(a);
    sam2c_model_free(m);
}

/* fill_hole_area: the stored low-res logits are the unfilled ones with background
 * holes of area <= fill_hole_area set to 0.1 (on a call that reads no memory). */
TEST(video_fill_hole_area) {
    sam2c_model *m;
    s2_video *a = open_session(&m, NULL);
    if (!a) { sam2c_model_free(m); return; }
    s2_video_params p = s2_video_default_params(m);
    p.fill_hole_area = 8;
    s2_video *b = NULL;
    REQUIRE(s2_video_create(m, &p, &b) == 0);
    REQUIRE(s2_video_load_dir(b, s2t_fx("micro/video/frames")) == 0);
    REQUIRE(prompt_two(a, NULL) == 0 && prompt_two(b, NULL) == 0);
    const int LH = m->cfg.image_size / 4;
    const s2_frame_out *fa = s2_video_output(a, 2, 0, NULL), *fb = s2_video_output(b, 2, 0, NULL);
    REQUIRE(fa && fb);
    float *want = malloc(sizeof(float) * (size_t)LH * LH);
    memcpy(want, fa->pred_masks, sizeof(float) * (size_t)LH * LH);
    REQUIRE(s2_fill_holes_in_mask_scores(want, LH, LH, 8) == 0);
    int64_t filled = 0, bad = 0;
    for (int64_t i = 0; i < (int64_t)LH * LH; i++) {
        filled += want[i] != fa->pred_masks[i];
        bad += want[i] != fb->pred_masks[i];
    }
    CHECK_EQ_INT(bad, 0);
    printf("    %lld low-res hole pixels filled\n", (long long)filled);
    free(want);
    s2_video_free(b);
    s2_video_free(a);
    sam2c_model_free(m);
}

/* add_all_frames_to_correct_as_cond: a correction click on a tracked frame becomes a
 * conditioning output that the next propagation keeps (and attends to). */
TEST(video_correction_as_cond) {
    sam2c_model *m;
    s2_video *a = open_session(&m, NULL);
    if (!a) { sam2c_model_free(m); return; }
    s2_video_params p = s2_video_default_params(m);
    p.fill_hole_area = 0;
    p.add_all_frames_to_correct_as_cond = true;
    s2_video *b = NULL;
    REQUIRE(s2_video_create(m, &p, &b) == 0);
    REQUIRE(s2_video_load_dir(b, s2t_fx("micro/video/frames")) == 0);
    const float neg[2] = {130, 200};
    const int32_t lab0[1] = {0};
    const int LH = m->cfg.image_size / 4;
    float *click = malloc(sizeof(float) * (size_t)LH * LH);
    for (int k = 0; k < 2; k++) {
        s2_video *v = k ? b : a;
        REQUIRE(prompt_two(v, NULL) == 0);
        REQUIRE(s2_video_propagate(v, -1, -1, false, NULL, NULL) == 0);
        REQUIRE(s2_video_add_points_or_box(v, 6, 1, neg, lab0, 1, NULL, true, true, NULL) == 0);
        int where = -1;
        const s2_frame_out *o = s2_video_output(v, 1, 6, &where);
        REQUIRE(o);
        CHECK_EQ_INT(where, k ? 0 : 1); // temporary conditioning vs non-conditioning
        memcpy(click, o->pred_masks, sizeof(float) * (size_t)LH * LH);
        REQUIRE(s2_video_propagate(v, -1, -1, false, NULL, NULL) == 0);
        o = s2_video_output(v, 1, 6, &where);
        REQUIRE(o);
        CHECK_EQ_INT(where, k ? 2 : 3);
        bool same = !memcmp(click, o->pred_masks, sizeof(float) * (size_t)LH * LH);
        CHECK_MSG(same == (k == 1), "correction %s after propagation", k ? "lost" : "kept");
    }
    free(click);
    s2_video_free(b);
    s2_video_free(a);
    sam2c_model_free(m);
}

/* clear_all_prompts_in_frame downgrades the conditioning output; an object without
 * conditioning frames blocks propagation until removed; reset forgets everything. */
TEST(video_clear_remove_reset) {
    sam2c_model *m;
    s2_video *v = open_session(&m, NULL);
    if (!v) { sam2c_model_free(m); return; }
    REQUIRE(prompt_two(v, NULL) == 0);
    REQUIRE(s2_video_propagate(v, -1, 2, false, NULL, NULL) == 0);
    s2_video_masks res;
    CHECK(s2_video_clear_prompts(v, 0, 2, &res) == 0);
    CHECK(res.n_obj == 2 && res.frame_idx == 0);
    int where = -1;
    CHECK(s2_video_output(v, 2, 0, &where) != NULL && where == 3);
    CHECK(s2_video_propagate(v, -1, -1, false, NULL, NULL) == SAM2C_ERR_STATE);
    CHECK(strstr(sam2c_last_error(), "object id 2") != NULL);
    CHECK(s2_video_remove_object(v, 2, true) == 0);
    seen_frames s = {0};
    s.stop_after = 1;
    CHECK(s2_video_propagate(v, -1, -1, false, record_frame, &s) == 0);
    CHECK(s2_video_output(v, 2, 0, NULL) == NULL && s2_video_output(v, 1, 0, NULL) != NULL);
    CHECK(s2_video_remove_object(v, 1, true) == 0); // the last one: reset
    CHECK(s2_video_output(v, 1, 0, NULL) == NULL);
    CHECK(s2_video_propagate(v, -1, -1, false, NULL, NULL) == SAM2C_ERR_STATE);
    REQUIRE(prompt_two(v, NULL) == 0);
    s2_video_reset(v);
    CHECK(s2_video_propagate(v, -1, -1, false, NULL, NULL) == SAM2C_ERR_STATE);
    s2_video_free(v);
    sam2c_model_free(m);
}
