/* SAM 2 video predictor: session state, prompts, per-object outputs, propagation.
 * ref: sam2/sam2_video_predictor.py SAM2VideoPredictor (current, per-object version).
 * Letters: S model input size, LH = LW = S/4 low-res mask side, VH, VW video size,
 * C hidden dim, Cm memory dim, H, W top-level feature size. */
#include "predict/video_internal.h"
#include "predict/video_frames.h"
#include "model/image_encoder.h"
#include "predict/postprocess.h"
#include "predict/preprocess.h"
#include "io/image.h"
#include "model/memory.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void s2_video_reset(s2_video *v) {
    if (!v) return;
    for (int i = 0; i < v->n_obj; i++) s2v_obj_free(v, &v->objs[i]);
    v->n_obj = 0;
    v->last_tracked = -1;
}

/* ---------------------------------------------------------------------------- */
/* Session                                                                      */
/* ---------------------------------------------------------------------------- */

s2_video_params s2_video_default_params(const sam2c_model *m) {
    s2_video_params p = {0};
    if (!m) return p;
    p.fill_hole_area = m->cfg.fill_hole_area;
    p.non_overlap_masks = m->cfg.non_overlap_masks;
    p.clear_non_cond_mem_around_input = m->cfg.clear_non_cond_mem_around_input;
    p.add_all_frames_to_correct_as_cond = m->cfg.add_all_frames_to_correct_as_cond;
    return p;
}

int s2_video_create(const sam2c_model *m, const s2_video_params *p, s2_video **out) {
    if (!m || !out) return s2_err(SAM2C_ERR_ARG, "video: missing model");
    *out = NULL;
    const s2_config *cfg = &m->cfg;
    if (cfg->image_size <= 0 || cfg->image_size % 16 != 0 || s2_backbone_out_floats(cfg) == 0)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "video: image size %d is not supported", cfg->image_size);
    s2_video *v = s2_calloc(1, sizeof *v);
    if (!v) return SAM2C_ERR_NOMEM;
    v->m = m;
    v->p = p ? *p : s2_video_default_params(m);
    v->S = cfg->image_size;
    v->LH = v->S / 4;
    v->C = cfg->d_model;
    v->Cm = s2_memory_dim(m);
    v->H = v->W = s2_cfg_feat_side(cfg);
    v->cached_frame = -1;
    v->bb_buf = s2_aligned_alloc(s2_backbone_out_floats(cfg) * sizeof(float));
    v->img = s2_aligned_alloc(sizeof(float) * 3 * (size_t)v->S * v->S);
    if (!v->bb_buf || !v->img || s2_arena_init(&v->arena, (size_t)16 << 20) < 0) {
        s2_video_free(v);
        return SAM2C_ERR_NOMEM;
    }
    s2_backbone_out_carve(cfg, v->bb_buf, &v->bb);
    if (v->bb.n_levels < 1 || v->bb.h[v->bb.n_levels - 1] != v->H || 4 * v->H != v->LH) {
        s2_video_free(v);
        return s2_err(SAM2C_ERR_UNSUPPORTED, "video: backbone levels do not match image size %d", v->S);
    }
    v->ctx.scratch = &v->arena;
    if (s2v_window_init(v) < 0) {
        s2_video_free(v);
        return SAM2C_ERR_NOMEM;
    }
    *out = v;
    return 0;
}

void s2_video_free(s2_video *v) {
    if (!v) return;
    s2_video_reset(v);
    free(v->objs);
    s2_vsource_free(v->src);
    free(v->anchors);
    free(v->hidden);
    free(v->hidden_at);
    free(v->out_logits);
    free(v->out_ids);
    s2_aligned_free(v->bb_buf);
    s2_aligned_free(v->img);
    s2_arena_free(&v->arena);
    free(v);
}

int s2_video_num_frames(const s2_video *v) { return v ? v->num_frames : 0; }
int s2_video_first_kept(const s2_video *v) { return v ? s2_vsource_first_kept(v->src) : 0; }
bool s2_video_is_stream(const s2_video *v) { return v && v->src && s2_vsource_kind(v->src) == S2_VSRC_STREAM; }

const uint8_t *s2_video_frame_rgb(s2_video *v, int frame_idx) {
    const uint8_t *rgb = NULL;
    if (!v || !v->src || frame_idx < 0 || frame_idx >= v->num_frames) return NULL;
    return s2_vsource_get(v->src, frame_idx, &rgb) == 0 ? rgb : NULL;
}

void s2_video_size(const s2_video *v, int *w, int *h) {
    if (w) *w = v ? v->vw : 0;
    if (h) *h = v ? v->vh : 0;
}

/* Forwards intermediate tensors with the current frame / object in the name. */
static void video_dump(void *user, const char *name, const float *data, int ndim, const int64_t *shape) {
    s2_video *v = user;
    char full[160];
    snprintf(full, sizeof full, "f%d.o%d.%s", v->cur_frame, v->cur_obj, name);
    v->dump(v->dump_user, full, data, ndim, shape);
}

void s2_video_set_dump(s2_video *v, s2_dump_fn fn, void *user) {
    if (!v) return;
    v->dump = fn;
    v->dump_user = user;
    v->ctx.dump = fn ? video_dump : NULL;
    v->ctx.dump_user = fn ? v : NULL;
}

void s2_video_set_backend(s2_video *v, const s2_backend *be) {
    if (v) v->ctx.be = be;
}

/* Frames replaced: every object and cached feature refers to the old ones. */
int s2_video_set_source(s2_video *v, s2_vsource *src, int w, int h) {
    if (!v || !src || w <= 0 || h <= 0) {
        s2_vsource_free(src);
        return s2_err(SAM2C_ERR_ARG, "video: no frames given");
    }
    s2_video_reset(v);
    s2_vsource_free(v->src);
    v->src = src;
    v->num_frames = s2_vsource_count(src);
    v->cap_frames = 0;
    v->vw = w;
    v->vh = h;
    v->cached_frame = -1;
    free(v->out_logits);
    v->out_logits = NULL;
    return s2v_reserve_frames(v, S2_MAX(v->num_frames, 1));
}

int s2_video_open_stream(s2_video *v, int w, int h) {
    if (!v) return s2_err(SAM2C_ERR_ARG, "open stream: no session");
    if (w <= 0 || h <= 0) return s2_err(SAM2C_ERR_ARG, "open stream: bad frame size %dx%d", w, h);
    s2_vsource *src = NULL;
    S2_CHECK(s2_vsource_stream(v->S, v->window, &src));
    return s2_video_set_source(v, src, w, h);
}

int s2_video_push_frame(s2_video *v, const uint8_t *rgb, int w, int h, int *frame_idx) {
    if (!v) return s2_err(SAM2C_ERR_ARG, "push frame: no session");
    if (!s2_video_is_stream(v)) return s2_err(SAM2C_ERR_STATE, "push frame: no stream open (open a stream first)");
    if (w != v->vw || h != v->vh)
        return s2_err(SAM2C_ERR_SHAPE, "push frame: frame is %dx%d but the stream is %dx%d", w, h, v->vw, v->vh);
    S2_CHECK(s2v_reserve_frames(v, v->num_frames + 1));
    int idx = s2_vsource_push(v->src, rgb, w, h);
    if (idx < 0) return idx;
    if (v->cached_frame == idx) v->cached_frame = -1;
    v->num_frames = idx + 1;
    if (frame_idx) *frame_idx = idx;
    return 0;
}

/* ---------------------------------------------------------------------------- */
/* Per-frame inference                                                          */
/* ---------------------------------------------------------------------------- */

// ref: SAM2VideoPredictor._get_image_feature (cache of the most recent frame)
static int frame_features(s2_video *v, int frame_idx) {
    if (v->cached_frame == frame_idx) return 0;
    v->cached_frame = -1;
    const uint8_t *rgb = NULL;
    S2_CHECK(s2_vsource_get(v->src, frame_idx, &rgb));
    S2_CHECK(s2_preprocess_video_frame(v->img, rgb, v->S));
    s2_arena_reset(&v->arena);
    int rc = s2_image_encoder_forward(&v->ctx, v->m, v->img, &v->bb);
    s2_arena_reset(&v->arena);
    if (rc < 0) return rc;
    v->cached_frame = frame_idx;
    return 0;
}

/* Prompt inputs of one single-frame inference. */
typedef struct frame_call {
    int obj;                   /* object index */
    int frame_idx;
    bool is_init_cond_frame;
    const s2_vpoints *points;  /* NULL = none */
    const float *mask;         /* (S, S) or NULL */
    bool reverse, run_mem_encoder;
    const float *prev_logits;  /* (LH, LW) clamped, or NULL */
} frame_call;

// ref: SAM2VideoPredictor._run_single_frame_inference
/* Runs track_step for one object and returns a new stored output (bf16 memory, filled
 * holes in the low-res logits) through *out. */
static int run_single_frame(s2_video *v, const frame_call *fc, s2_frame_out **out) {
    *out = NULL;
    S2_CHECK(frame_features(v, fc->frame_idx));
    s2_vobj *o = &v->objs[fc->obj];
    s2_mem_bank bank = {v->num_frames, o->cond, o->non_cond};
    // a live stream's length is unknown: at least max_obj_ptrs_in_encoder frames, so that
    // pointer distances are normalised as in any video that long (min(num_frames, max) - 1)
    const int nf = s2_video_is_stream(v) ? S2_MAX(v->num_frames, v->m->cfg.max_obj_ptrs_in_encoder) : v->num_frames;
    s2_track_in in = {fc->frame_idx, fc->is_init_cond_frame, &v->bb,
                      fc->points ? fc->points->n : 0, fc->points ? fc->points->xy : NULL,
                      fc->points ? fc->points->lab : NULL, fc->mask, &bank, nf,
                      fc->reverse, fc->run_mem_encoder, fc->prev_logits};
    s2_track_out to;
    v->cur_frame = fc->frame_idx;
    v->cur_obj = o->id;
    s2_arena_reset(&v->arena);
    s2v_hide_memoryless(v, o, fc->frame_idx, fc->reverse);
    int rc = s2_track_step(&v->ctx, v->m, &in, &to);
    s2v_unhide(v, o);
    s2_frame_out *fo = rc == 0 ? s2v_out_new(v) : NULL;
    if (rc == 0 && !fo) rc = SAM2C_ERR_NOMEM;
    if (rc == 0) {
        const int64_t nl = (int64_t)v->LH * v->LH;
        memcpy(fo->pred_masks, to.pred_masks, sizeof(float) * (size_t)nl);
        memcpy(fo->obj_ptr, to.obj_ptr, sizeof(float) * (size_t)v->C);
        fo->object_score = to.object_score;
        if (to.maskmem) {
            fo->maskmem = s2v_mem_slot(v, fo);
            s2_to_bf16(fo->maskmem, to.maskmem, (int64_t)v->Cm * v->H * v->W);
        }
        if (v->p.fill_hole_area > 0)
            rc = s2_fill_holes_in_mask_scores(fo->pred_masks, v->LH, v->LH, v->p.fill_hole_area);
    }
    s2_arena_reset(&v->arena);
    if (rc < 0) { s2v_out_free(v, fo); return rc; }
    *out = fo;
    return 0;
}

// ref: SAM2VideoPredictor._run_memory_encoder (on the bilinear upsampling of pred_masks)
static int encode_stored(s2_video *v, int obj, int frame_idx, s2_frame_out *fo) {
    S2_CHECK(frame_features(v, frame_idx));
    v->cur_frame = frame_idx;
    v->cur_obj = v->objs[obj].id;
    s2_arena_reset(&v->arena);
    const int S = v->S;
    float *high = s2_scratch_f32(&v->ctx, (int64_t)S * S);                  // (S, S)
    float *feat = s2_scratch_f32(&v->ctx, (int64_t)v->Cm * v->H * v->W);    // (Cm, H, W)
    s2_ref_interp_bilinear(high, fo->pred_masks, 1, v->LH, v->LH, S, S, false, false);
    int rc = s2_encode_new_memory(&v->ctx, v->m, &v->bb, high, fo->object_score, true, feat);
    if (rc == 0) {
        fo->maskmem = s2v_mem_slot(v, fo);
        s2_to_bf16(fo->maskmem, feat, (int64_t)v->Cm * v->H * v->W);
    }
    s2_arena_reset(&v->arena);
    return rc;
}

/* ---------------------------------------------------------------------------- */
/* Video-resolution outputs                                                     */
/* ---------------------------------------------------------------------------- */

// ref: SAM2Base._apply_non_overlapping_constraints over objects at each pixel
static void non_overlap(float *planes, int n_obj, int64_t n) {
    if (n_obj <= 1) return;
    for (int64_t p = 0; p < n; p++) {
        int best = 0;
        for (int k = 1; k < n_obj; k++)
            if (planes[(int64_t)k * n + p] > planes[(int64_t)best * n + p]) best = k;
        for (int k = 0; k < n_obj; k++)
            if (k != best && planes[(int64_t)k * n + p] > -10.0f) planes[(int64_t)k * n + p] = -10.0f;
    }
}

/* Output buffers sized for the current object count. */
static int out_reserve(s2_video *v) {
    size_t need = (size_t)(v->n_obj ? v->n_obj : 1);
    if (need <= v->out_cap && v->out_logits) return 0;
    float *l = s2_realloc(v->out_logits, need * (size_t)v->vw * v->vh * sizeof(float));
    if (!l) return SAM2C_ERR_NOMEM;
    v->out_logits = l;
    int *ids = s2_realloc(v->out_ids, need * sizeof(int));
    if (!ids) return SAM2C_ERR_NOMEM;
    v->out_ids = ids;
    v->out_cap = need;
    return 0;
}

// ref: SAM2VideoPredictor._get_orig_video_res_output (+ per-object bilinear resize)
/* Fills *res from per-object low-res logits (NULL = missing object: NO_OBJ_SCORE). */
static int video_res_output(s2_video *v, int frame_idx, const float *const *low, s2_video_masks *res) {
    S2_CHECK(out_reserve(v));
    const int64_t n = (int64_t)v->vw * v->vh;
    for (int k = 0; k < v->n_obj; k++) {
        float *dst = v->out_logits + (int64_t)k * n;
        v->out_ids[k] = v->objs[k].id;
        if (!low[k]) {
            for (int64_t i = 0; i < n; i++) dst[i] = S2_NO_OBJ_SCORE;
        } else if (v->LH == v->vh && v->LH == v->vw) {
            memcpy(dst, low[k], sizeof(float) * (size_t)n);
        } else {
            s2_ref_interp_bilinear(dst, low[k], 1, v->LH, v->LH, v->vh, v->vw, false, false);
        }
    }
    if (v->p.non_overlap_masks) non_overlap(v->out_logits, v->n_obj, n);
    if (res) *res = (s2_video_masks){frame_idx, v->n_obj, v->out_ids, v->vw, v->vh, v->out_logits};
    return 0;
}

// ref: SAM2VideoPredictor._consolidate_temp_output_across_obj (consolidate_at_video_res)
static int consolidate(s2_video *v, int frame_idx, bool is_cond, s2_video_masks *res) {
    const float **low = s2_calloc((size_t)(v->n_obj ? v->n_obj : 1), sizeof *low);
    if (!low) return SAM2C_ERR_NOMEM;
    for (int k = 0; k < v->n_obj; k++) {
        const s2_vobj *o = &v->objs[k];
        const s2_frame_out *fo = is_cond ? o->tmp_cond[frame_idx] : o->tmp_non_cond[frame_idx];
        if (!fo) fo = o->cond[frame_idx];
        if (!fo) fo = o->non_cond[frame_idx];
        low[k] = fo ? fo->pred_masks : NULL;
    }
    int rc = video_res_output(v, frame_idx, low, res);
    free(low);
    return rc;
}

const s2_frame_out *s2_video_output(const s2_video *v, int obj_id, int frame_idx, int *where) {
    int k = v ? s2v_obj_find(v, obj_id) : -1;
    if (k < 0 || frame_idx < 0 || frame_idx >= v->num_frames) return NULL;
    const s2_vobj *o = &v->objs[k];
    s2_frame_out *const *order[4] = {o->tmp_cond, o->tmp_non_cond, o->cond, o->non_cond};
    for (int i = 0; i < 4; i++)
        if (order[i][frame_idx]) {
            if (where) *where = i;
            return order[i][frame_idx];
        }
    return NULL;
}

/* ---------------------------------------------------------------------------- */
/* Prompts                                                                      */
/* ---------------------------------------------------------------------------- */

/* Shared tail of the add_* calls: run the frame, store it as a temporary output, and
 * return the consolidated video-resolution masks. */
static int add_prompt_tail(s2_video *v, int k, int frame_idx, bool use_prev, s2_video_masks *res) {
    s2_vobj *o = &v->objs[k];
    const bool is_init = o->tracked[frame_idx] < 0;
    const bool reverse = is_init ? false : o->tracked[frame_idx] == 1;
    const bool is_cond = is_init || v->p.add_all_frames_to_correct_as_cond;
    s2_frame_out **tmp = is_cond ? o->tmp_cond : o->tmp_non_cond;
    float *prev = NULL;
    const s2_frame_out *po = tmp[frame_idx];
    if (!po) po = o->cond[frame_idx];
    if (!po) po = o->non_cond[frame_idx];
    if (use_prev && po && po->pred_masks) { // clamp to +-32 against rare numerical issues
        const int64_t nl = (int64_t)v->LH * v->LH;
        prev = s2_malloc(sizeof(float) * (size_t)nl);
        if (!prev) return SAM2C_ERR_NOMEM;
        for (int64_t i = 0; i < nl; i++) prev[i] = fminf(fmaxf(po->pred_masks[i], -32.0f), 32.0f);
    }
    frame_call fc = {k, frame_idx, is_init, o->pts[frame_idx].n > 0 ? &o->pts[frame_idx] : NULL,
                     o->mask_in[frame_idx], reverse, false, prev};
    s2_frame_out *fo = NULL;
    int rc = run_single_frame(v, &fc, &fo);
    free(prev);
    if (rc < 0) return rc;
    s2v_slot_set(v, &tmp[frame_idx], fo);
    o->has_tmp = true;
    // a live stream may drop the frame before the next propagation: encode now (the same
    // memory the preflight would encode from the same features and logits)
    if (s2_video_is_stream(v)) S2_CHECK(encode_stored(v, k, frame_idx, fo));
    return consolidate(v, frame_idx, is_cond, res);
}

/* Video pixels (or [0, 1] coordinates) to model-input pixels, in f32 as the official
 * `points / tensor([W, H]) * image_size`. */
static void to_model_coords(const s2_video *v, float *xy, int n, bool normalize) {
    for (int i = 0; i < n; i++) {
        if (normalize) {
            xy[2 * i] = xy[2 * i] / (float)v->vw;
            xy[2 * i + 1] = xy[2 * i + 1] / (float)v->vh;
        }
        xy[2 * i] = xy[2 * i] * (float)v->S;
        xy[2 * i + 1] = xy[2 * i + 1] * (float)v->S;
    }
}

/* Argument checks shared by the prompt calls (a dropped stream frame included). */
static int check_frame(const s2_video *v, int frame_idx, const char *what) {
    if (!v) return s2_err(SAM2C_ERR_ARG, "%s: no session", what);
    return s2_vsource_check(v->src, frame_idx, what);
}

// ref: SAM2VideoPredictor.add_new_points_or_box
int s2_video_add_points_or_box(s2_video *v, int frame_idx, int obj_id, const float *points,
                               const int32_t *labels, int n_points, const float *box,
                               bool clear_old_points, bool normalize_coords,
                               s2_video_masks *out) {
    S2_CHECK(check_frame(v, frame_idx, "add points"));
    if (n_points < 0 || (n_points > 0 && (!points || !labels)))
        return s2_err(SAM2C_ERR_ARG, "add points: points and labels must be provided together");
    if (n_points == 0 && !box)
        return s2_err(SAM2C_ERR_ARG, "add points: at least one of points or box must be provided");
    if (box && !clear_old_points)
        return s2_err(SAM2C_ERR_ARG, "add points: cannot add a box without clearing old points");
    for (int i = 0; i < n_points; i++)
        if (labels[i] < -1 || labels[i] > 3 || !isfinite(points[2 * i]) || !isfinite(points[2 * i + 1]))
            return s2_err(SAM2C_ERR_ARG, "add points: bad point %d (label %d)", i, (int)labels[i]);
    int k = s2v_obj_get(v, obj_id);
    if (k < 0) return k;
    s2_vpoints *pp = &v->objs[k].pts[frame_idx];
    const int keep = clear_old_points ? 0 : pp->n, nb = box ? 2 : 0, n = keep + nb + n_points;
    float *xy = s2_malloc(sizeof(float) * 2 * (size_t)n);
    int32_t *lab = s2_malloc(sizeof(int32_t) * (size_t)n);
    if (!xy || !lab) { free(xy); free(lab); return SAM2C_ERR_NOMEM; }
    if (keep) { memcpy(xy, pp->xy, sizeof(float) * 2 * (size_t)keep); memcpy(lab, pp->lab, sizeof(int32_t) * (size_t)keep); }
    float *nxy = xy + 2 * keep; // new points: box corners (labels 2, 3) first
    if (box) { memcpy(nxy, box, sizeof(float) * 4); lab[keep] = 2; lab[keep + 1] = 3; }
    if (n_points) memcpy(nxy + 2 * nb, points, sizeof(float) * 2 * (size_t)n_points);
    for (int i = 0; i < n_points; i++) lab[keep + nb + i] = labels[i];
    to_model_coords(v, nxy, nb + n_points, normalize_coords);
    free(pp->xy);
    free(pp->lab);
    *pp = (s2_vpoints){n, xy, lab};
    free(v->objs[k].mask_in[frame_idx]);
    v->objs[k].mask_in[frame_idx] = NULL;
    return add_prompt_tail(v, k, frame_idx, true, out);
}

// ref: SAM2VideoPredictor.add_new_mask
int s2_video_add_mask(s2_video *v, int frame_idx, int obj_id, const uint8_t *mask, int mw,
                      int mh, s2_video_masks *out) {
    S2_CHECK(check_frame(v, frame_idx, "add mask"));
    if (!mask || mw <= 0 || mh <= 0) return s2_err(SAM2C_ERR_ARG, "add mask: empty mask");
    const int S = v->S;
    float *orig = s2_malloc(sizeof(float) * (size_t)mw * mh);
    float *mi = s2_malloc(sizeof(float) * (size_t)S * S); // (S, S)
    if (!orig || !mi) { free(orig); free(mi); return SAM2C_ERR_NOMEM; }
    for (int64_t i = 0; i < (int64_t)mw * mh; i++) orig[i] = mask[i] ? 1.0f : 0.0f;
    if (mw != S || mh != S) { // antialiased bilinear resize, then >= 0.5
        s2_ref_interp_bilinear(mi, orig, 1, mh, mw, S, S, false, true);
        for (int64_t i = 0; i < (int64_t)S * S; i++) mi[i] = mi[i] >= 0.5f ? 1.0f : 0.0f;
    } else {
        memcpy(mi, orig, sizeof(float) * (size_t)S * S);
    }
    free(orig);
    int k = s2v_obj_get(v, obj_id);
    if (k < 0) { free(mi); return k; }
    s2_vobj *o = &v->objs[k];
    free(o->mask_in[frame_idx]);
    o->mask_in[frame_idx] = mi;
    free(o->pts[frame_idx].xy);
    free(o->pts[frame_idx].lab);
    o->pts[frame_idx] = (s2_vpoints){0, NULL, NULL};
    return add_prompt_tail(v, k, frame_idx, false, out);
}

// ref: SAM2VideoPredictor.clear_all_prompts_in_frame
static int clear_prompts(s2_video *v, int k, int frame_idx) {
    s2_vobj *o = &v->objs[k];
    free(o->pts[frame_idx].xy);
    free(o->pts[frame_idx].lab);
    o->pts[frame_idx] = (s2_vpoints){0, NULL, NULL};
    free(o->mask_in[frame_idx]);
    o->mask_in[frame_idx] = NULL;
    s2v_slot_set(v, &o->tmp_cond[frame_idx], NULL);
    s2v_slot_set(v, &o->tmp_non_cond[frame_idx], NULL);
    s2_frame_out *c = s2v_cond_take(v, o, frame_idx);
    if (c) { // no longer conditioning: downgrade to a non-conditioning output
        s2v_slot_set(v, &o->non_cond[frame_idx], c);
        o->tracked[frame_idx] = -1;
    }
    return 0;
}

int s2_video_clear_prompts(s2_video *v, int frame_idx, int obj_id, s2_video_masks *out) {
    S2_CHECK(check_frame(v, frame_idx, "clear prompts"));
    int k = s2v_obj_find(v, obj_id);
    if (k < 0) return s2_err(SAM2C_ERR_ARG, "clear prompts: unknown object id %d", obj_id);
    clear_prompts(v, k, frame_idx);
    if (!out) return 0;
    bool is_cond = false;
    for (int i = 0; i < v->n_obj; i++) is_cond |= v->objs[i].tmp_cond[frame_idx] != NULL;
    return consolidate(v, frame_idx, is_cond, out);
}

// ref: SAM2VideoPredictor.remove_object
int s2_video_remove_object(s2_video *v, int obj_id, bool strict) {
    if (!v) return s2_err(SAM2C_ERR_ARG, "remove object: no session");
    int k = s2v_obj_find(v, obj_id);
    if (k < 0) return strict ? s2_err(SAM2C_ERR_ARG, "remove object: unknown object id %d", obj_id) : 0;
    if (v->n_obj == 1) {
        s2_video_reset(v);
        return 0;
    }
    for (int t = 0; t < v->num_frames; t++)
        if (v->objs[k].pts[t].n > 0 || v->objs[k].mask_in[t]) clear_prompts(v, k, t);
    s2v_obj_free(v, &v->objs[k]);
    memmove(&v->objs[k], &v->objs[k + 1], sizeof(s2_vobj) * (size_t)(v->n_obj - k - 1));
    v->n_obj--;
    return 0;
}

/* ---------------------------------------------------------------------------- */
/* Propagation                                                                  */
/* ---------------------------------------------------------------------------- */

// ref: SAM2VideoPredictor._clear_obj_non_cond_mem_around_input
static void clear_non_cond_around(s2_video *v, int k, int frame_idx) {
    const int r = v->m->cfg.memory_temporal_stride_for_eval > 0 ? v->m->cfg.memory_temporal_stride_for_eval : 1;
    const int span = r * v->m->cfg.num_maskmem;
    for (int t = frame_idx - span; t <= frame_idx + span; t++)
        if (t >= 0 && t < v->num_frames) s2v_slot_set(v, &v->objs[k].non_cond[t], NULL);
}

// ref: SAM2VideoPredictor.propagate_in_video_preflight (one object's temporary outputs)
/* Encodes the memories of the temporary outputs (binarised, as frames with user input)
 * and moves them into the object's output slots. */
static int move_temporary(s2_video *v, int k) {
    s2_vobj *o = &v->objs[k];
    for (int is_cond = 0; is_cond < 2; is_cond++) {
        s2_frame_out **tmp = is_cond ? o->tmp_cond : o->tmp_non_cond;
        for (int t = 0; t < v->num_frames; t++) {
            if (!tmp[t]) continue;
            if (!tmp[t]->maskmem) S2_CHECK(encode_stored(v, k, t, tmp[t]));
            if (is_cond) s2v_cond_set(v, o, t, tmp[t]);
            else s2v_slot_set(v, &o->non_cond[t], tmp[t]);
            tmp[t] = NULL;
            if (v->p.clear_non_cond_mem_around_input) clear_non_cond_around(v, k, t);
        }
    }
    for (int t = 0; t < v->num_frames; t++)
        if (o->cond[t]) s2v_slot_set(v, &o->non_cond[t], NULL);
    o->has_tmp = false;
    return 0;
}

// ref: SAM2VideoPredictor.propagate_in_video_preflight
/* Temporary outputs into the output slots; every object needs a conditioning frame. */
static int preflight(s2_video *v) {
    if (v->n_obj == 0)
        return s2_err(SAM2C_ERR_STATE, "propagate: no input points or masks are provided for any object");
    for (int k = 0; k < v->n_obj; k++) {
        if (v->objs[k].has_tmp) S2_CHECK(move_temporary(v, k));
        if (v->objs[k].n_cond == 0)
            return s2_err(SAM2C_ERR_STATE, "propagate: no input points or masks are provided for object id %d", v->objs[k].id);
    }
    return 0;
}

/* Tracks every object on one frame (stored conditioning outputs are reused) and hands
 * the video-resolution masks to the callback. */
static int propagate_frame(s2_video *v, int t, bool reverse, const float **low, s2_video_frame_fn fn, void *user) {
    for (int k = 0; k < v->n_obj; k++) {
        s2_vobj *o = &v->objs[k];
        if (o->cond[t]) {
            if (v->p.clear_non_cond_mem_around_input) clear_non_cond_around(v, k, t);
        } else {
            frame_call fc = {k, t, false, NULL, NULL, reverse, true, NULL};
            s2_frame_out *fo = NULL;
            S2_CHECK(run_single_frame(v, &fc, &fo));
            s2v_slot_set(v, &o->non_cond[t], fo);
        }
        o->tracked[t] = reverse ? 1 : 0;
        low[k] = o->cond[t] ? o->cond[t]->pred_masks : o->non_cond[t]->pred_masks;
    }
    s2_video_masks res;
    S2_CHECK(video_res_output(v, t, low, &res));
    int rc = fn ? fn(user, &res) : 0;
    s2v_after_track(v, t, reverse); // after the callback: it may still read this frame
    return rc;
}

// ref: SAM2VideoPredictor.propagate_in_video
int s2_video_propagate(s2_video *v, int start_frame_idx, int max_frame_num_to_track,
                       bool reverse, s2_video_frame_fn fn, void *user) {
    if (!v) return s2_err(SAM2C_ERR_ARG, "propagate: no session");
    if (v->num_frames == 0) return s2_err(SAM2C_ERR_STATE, "propagate: no frames loaded");
    S2_CHECK(preflight(v));
    if (start_frame_idx < 0) { // the earliest conditioning frame of any object
        start_frame_idx = v->num_frames;
        for (int k = 0; k < v->n_obj; k++)
            for (int t = 0; t < start_frame_idx; t++)
                if (v->objs[k].cond[t]) { start_frame_idx = t; break; }
    }
    S2_CHECK(s2_vsource_check(v->src, start_frame_idx, "propagate: start"));
    if (max_frame_num_to_track < 0) max_frame_num_to_track = v->num_frames;
    int first = start_frame_idx, last, step = reverse ? -1 : 1;
    if (reverse) {
        last = S2_MAX(start_frame_idx - max_frame_num_to_track, 0);
        if (start_frame_idx == 0) return 0; // the official code skips reverse tracking from 0
    } else {
        last = S2_MIN(start_frame_idx + max_frame_num_to_track, v->num_frames - 1);
    }
    const float **low = s2_calloc((size_t)v->n_obj, sizeof *low);
    if (!low) return SAM2C_ERR_NOMEM;
    int rc = 0;
    for (int t = first; rc == 0; t += step) {
        rc = propagate_frame(v, t, reverse, low, fn, user);
        if (t == last) break;
    }
    free(low);
    return rc > 0 ? 0 : rc;
}

/* ---------------------------------------------------------------------------- */
/* Frames                                                                       */
/* ---------------------------------------------------------------------------- */

/* Frames of a folder are decoded on use, a couple kept (each decode is independent). */
#define S2V_DIR_CACHE 2

// ref: sam2/utils/misc.py load_video_frames / _load_img_as_tensor
/* Every frame is decoded once here (an unreadable one fails now, as the official
 * loader's); the video size is the last frame's. */
int s2_video_load_dir(s2_video *v, const char *dir) {
    if (!v || !dir) return s2_err(SAM2C_ERR_ARG, "video: no frames folder");
    s2_frame_file *list = NULL;
    int n = 0;
    S2_CHECK(s2_list_frame_files(dir, &list, &n));
    s2_image_opts opts;
    s2_image_opts_default(&opts);
    opts.apply_exif = false; // PIL.Image.open does not rotate
    const char **names = s2_malloc(sizeof(char *) * (size_t)n);
    int rc = names ? 0 : SAM2C_ERR_NOMEM, vw = 0, vh = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, list[i].name);
        s2_image im = {0};
        rc = s2_image_load(path, &opts, &im);
        vw = im.w;
        vh = im.h;
        names[i] = list[i].name;
        s2_image_free(&im);
    }
    s2_vsource *src = NULL;
    if (rc == 0) rc = s2_vsource_dir(v->S, dir, names, n, S2V_DIR_CACHE, &src);
    free(names);
    s2_frame_files_free(list, n);
    return rc < 0 ? rc : s2_video_set_source(v, src, vw, vh);
}

int s2_video_set_frames(s2_video *v, int n, const uint8_t *const *rgb, int w, int h) {
    if (!v) return s2_err(SAM2C_ERR_ARG, "video: no frames given");
    s2_vsource *src = NULL;
    S2_CHECK(s2_vsource_memory(v->S, n, rgb, w, h, &src));
    return s2_video_set_source(v, src, w, h);
}

/* Keeps the masks of the one frame a track_frame propagation yields. */
static int keep_masks(void *user, const s2_video_masks *m) {
    *(s2_video_masks *)user = *m;
    return 0;
}

int s2_video_track_frame(s2_video *v, int frame_idx, s2_video_masks *out) {
    if (!v) return s2_err(SAM2C_ERR_ARG, "track frame: no session");
    S2_CHECK(s2_vsource_check(v->src, frame_idx, "track frame"));
    s2_video_masks m = {0};
    if (v->n_obj == 0) S2_CHECK(video_res_output(v, frame_idx, NULL, &m));
    else S2_CHECK(s2_video_propagate(v, frame_idx, 0, false, keep_masks, &m));
    if (out) *out = m;
    return 0;
}
