/* Stored outputs, per-object frame slots and the bounded-memory window of the video
 * predictor.
 *
 * Bounded memory (the default; s2_video_params.keep_all_outputs keeps everything, the
 * official behaviour). A track step on frame t reads, besides the conditioning outputs,
 * the memories of the frames at most span_mem away (the num_maskmem - 1 previous frames,
 * every memory_temporal_stride_for_eval-th: 1 + (num_maskmem - 2) * stride) and the
 * object pointers of the frames at most span_ptr away (max_obj_ptrs_in_encoder - 1)
 * (ref: sam2/modeling/sam2_base.py SAM2Base._prepare_memory_conditioned_features).
 * Every stored non-conditioning output is kept at a level set by its distance d to the
 * nearest anchor (the last tracked frame and, unless the source is a live stream, every
 * conditioning frame), with K = the window:
 *   d < K             whole (memory, pointer, low-res logits for corrections),
 *   d < K + span_mem  memory and pointer,
 *   d < K + span_ptr  pointer only,
 *   else              freed.
 * Conditioning and temporary outputs are never freed. So a propagation from a prompted
 * frame or on from the last tracked frame never changes a result, and a prompt within K
 * frames of the last tracked frame or of a prompted frame reads exactly what the
 * official code reads; a prompt or a propagation start farther away skips the frames
 * that were freed as the official code skips absent frames (the one deviation). A step
 * whose memory frames kept only their pointer skips those frames entirely (their memory
 * is gone; the bank must not see a frame without one). */
#include "predict/video_internal.h"
#include "model/memory.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* An output's block: this header, the pointer, the memory, the low-res logits, each part
 * 64-byte aligned, so that dropping the tail parts is a shrink of the same block. */
typedef struct vout {
    s2_frame_out fo;
    size_t bytes;
} vout;

enum { LV_NONE, LV_PTR, LV_MEM, LV_FULL };

/* Bytes of n rounded up to a 64-byte multiple. */
static size_t al64(size_t n) { return (n + 63) & ~(size_t)63; }
static size_t seg_hdr(void) { return al64(sizeof(vout)); }
static size_t seg_ptr(const s2_video *v) { return al64((size_t)v->C * sizeof(float)); }
static size_t seg_mem(const s2_video *v) { return al64((size_t)v->Cm * v->H * v->W * sizeof(uint16_t)); }
static size_t seg_low(const s2_video *v) { return (size_t)v->LH * v->LH * sizeof(float); }

/* ---------------------------------------------------------------------------- */
/* Stored outputs                                                               */
/* ---------------------------------------------------------------------------- */

s2_frame_out *s2v_out_new(s2_video *v) {
    const size_t sz = seg_hdr() + seg_ptr(v) + seg_mem(v) + seg_low(v);
    vout *b = s2_aligned_alloc(sz);
    if (!b) return NULL;
    memset(b, 0, sz);
    uint8_t *p = (uint8_t *)b;
    b->bytes = sz;
    b->fo.obj_ptr = (float *)(p + seg_hdr());
    b->fo.pred_masks = (float *)(p + seg_hdr() + seg_ptr(v) + seg_mem(v));
    b->fo.maskmem = NULL; // set when the memory is encoded (s2v_mem_slot)
    v->n_outputs++;
    v->out_bytes += sz;
    return &b->fo;
}

void s2v_out_free(s2_video *v, s2_frame_out *o) {
    if (!o) return;
    vout *b = (vout *)o;
    v->n_outputs--;
    v->out_bytes -= b->bytes;
    s2_aligned_free(b);
}

uint16_t *s2v_mem_slot(const s2_video *v, s2_frame_out *o) {
    return (uint16_t *)((uint8_t *)o + seg_hdr() + seg_ptr(v));
}

void s2v_slot_set(s2_video *v, s2_frame_out **dst, s2_frame_out *o) {
    if (*dst && *dst != o) s2v_out_free(v, *dst);
    *dst = o;
}

void s2v_cond_set(s2_video *v, s2_vobj *o, int t, s2_frame_out *fo) {
    o->n_cond += (fo != NULL) - (o->cond[t] != NULL);
    s2v_slot_set(v, &o->cond[t], fo);
    v->anchors_dirty = true;
}

s2_frame_out *s2v_cond_take(s2_video *v, s2_vobj *o, int t) {
    s2_frame_out *c = o->cond[t];
    if (c) o->n_cond--;
    o->cond[t] = NULL;
    v->anchors_dirty = true;
    return c;
}

/* What an output still holds. */
static int out_level(const s2_frame_out *o) {
    return o->pred_masks ? LV_FULL : o->maskmem ? LV_MEM : LV_PTR;
}

/* Lowers the output in *slot to `level`: drops its logits (and its memory), or frees it.
 * A failed shrink keeps the whole output (never an error: memory is only given back). */
static void shrink(s2_video *v, s2_frame_out **slot, int level) {
    if (level == LV_NONE) {
        s2v_slot_set(v, slot, NULL);
        return;
    }
    if (level >= out_level(*slot)) return;
    vout *old = (vout *)*slot;
    const size_t sz = seg_hdr() + seg_ptr(v) + (level == LV_MEM ? seg_mem(v) : 0);
    vout *b = s2_aligned_alloc(sz);
    if (!b) return;
    memcpy(b, old, sz); // the kept parts are a prefix of the block
    b->bytes = sz;
    b->fo.obj_ptr = (float *)((uint8_t *)b + seg_hdr());
    b->fo.pred_masks = NULL;
    b->fo.maskmem = level == LV_MEM && old->fo.maskmem ? s2v_mem_slot(v, &b->fo) : NULL;
    v->out_bytes += sz - old->bytes;
    s2_aligned_free(old);
    *slot = &b->fo;
}

/* ---------------------------------------------------------------------------- */
/* Objects                                                                      */
/* ---------------------------------------------------------------------------- */

/* Bytes of one object's slot arrays for cap frames. */
static size_t slots_bytes(size_t cap) {
    return cap * (4 * sizeof(s2_frame_out *) + sizeof(s2_vpoints) + sizeof(float *) + 1);
}

/* Points the object's arrays into block b of cap frames. */
static void carve_slots(s2_vobj *o, uint8_t *b, size_t cap) {
    o->cond = (s2_frame_out **)b;
    o->non_cond = o->cond + cap;
    o->tmp_cond = o->non_cond + cap;
    o->tmp_non_cond = o->tmp_cond + cap;
    o->pts = (s2_vpoints *)(o->tmp_non_cond + cap);
    o->mask_in = (float **)(o->pts + cap);
    o->tracked = (int8_t *)(o->mask_in + cap);
}

/* A zeroed block of slot arrays for cap frames (nothing tracked). */
static uint8_t *new_slots(size_t cap) {
    uint8_t *b = s2_calloc(1, slots_bytes(cap));
    if (b) memset(b + cap * (slots_bytes(1) - 1), 0xff, cap); // tracked = -1
    return b;
}

void s2v_obj_free(s2_video *v, s2_vobj *o) {
    for (int t = 0; o->cond && t < v->num_frames; t++) {
        s2v_out_free(v, o->cond[t]);
        s2v_out_free(v, o->non_cond[t]);
        s2v_out_free(v, o->tmp_cond[t]);
        s2v_out_free(v, o->tmp_non_cond[t]);
        free(o->pts[t].xy);
        free(o->pts[t].lab);
        free(o->mask_in[t]);
    }
    free(o->cond);
    o->cond = NULL;
    v->anchors_dirty = true;
}

int s2v_obj_find(const s2_video *v, int obj_id) {
    for (int i = 0; i < v->n_obj; i++)
        if (v->objs[i].id == obj_id) return i;
    return -1;
}

// ref: SAM2VideoPredictor._obj_id_to_idx (new objects allowed at any time)
int s2v_obj_get(s2_video *v, int obj_id) {
    int i = s2v_obj_find(v, obj_id);
    if (i >= 0) return i;
    if (v->n_obj == v->cap_obj) {
        int cap = v->cap_obj ? 2 * v->cap_obj : 4;
        s2_vobj *no = s2_realloc(v->objs, sizeof *no * (size_t)cap);
        if (!no) return SAM2C_ERR_NOMEM;
        v->objs = no;
        v->cap_obj = cap;
    }
    s2_vobj *o = &v->objs[v->n_obj];
    memset(o, 0, sizeof *o);
    uint8_t *b = new_slots((size_t)v->cap_frames);
    if (!b) return SAM2C_ERR_NOMEM;
    carve_slots(o, b, (size_t)v->cap_frames);
    o->id = obj_id;
    return v->n_obj++;
}

/* Moves one object's arrays into a block of cap frames (the first `have` are copied). */
static int grow_obj(s2_vobj *o, size_t have, size_t cap) {
    uint8_t *b = new_slots(cap);
    if (!b) return SAM2C_ERR_NOMEM;
    s2_vobj n = *o;
    carve_slots(&n, b, cap);
    memcpy(n.cond, o->cond, have * sizeof(s2_frame_out *));
    memcpy(n.non_cond, o->non_cond, have * sizeof(s2_frame_out *));
    memcpy(n.tmp_cond, o->tmp_cond, have * sizeof(s2_frame_out *));
    memcpy(n.tmp_non_cond, o->tmp_non_cond, have * sizeof(s2_frame_out *));
    memcpy(n.pts, o->pts, have * sizeof(s2_vpoints));
    memcpy(n.mask_in, o->mask_in, have * sizeof(float *));
    memcpy(n.tracked, o->tracked, have);
    free(o->cond);
    *o = n;
    return 0;
}

int s2v_reserve_frames(s2_video *v, int n) {
    if (n <= v->cap_frames) return 0;
    int cap = v->cap_frames > 0 ? v->cap_frames : 64;
    while (cap < n) cap = cap > INT_MAX / 2 ? n : 2 * cap;
    for (int k = 0; k < v->n_obj; k++) S2_CHECK(grow_obj(&v->objs[k], (size_t)v->cap_frames, (size_t)cap));
    v->cap_frames = cap;
    return 0;
}

/* ---------------------------------------------------------------------------- */
/* Bounded memory                                                               */
/* ---------------------------------------------------------------------------- */

int s2v_window_init(s2_video *v) {
    const s2_config *cfg = &v->m->cfg;
    const int r = cfg->memory_temporal_stride_for_eval > 0 ? cfg->memory_temporal_stride_for_eval : 1;
    v->span_mem = cfg->num_maskmem >= 2 ? 1 + (cfg->num_maskmem - 2) * r : 0;
    v->span_ptr = cfg->use_obj_ptrs_in_encoder ? S2_MAX(0, cfg->max_obj_ptrs_in_encoder - 1) : 0;
    v->window = v->p.window > 0 ? v->p.window : S2_MAX(v->span_mem, v->span_ptr) + 1;
    v->last_tracked = -1;
    v->hidden = s2_calloc((size_t)v->span_mem + 1, sizeof *v->hidden);
    v->hidden_at = s2_calloc((size_t)v->span_mem + 1, sizeof *v->hidden_at);
    return v->hidden && v->hidden_at ? 0 : SAM2C_ERR_NOMEM;
}

/* The sorted conditioning frames of every object. */
static void rebuild_anchors(s2_video *v) {
    v->n_anchors = 0;
    v->anchors_dirty = false;
    for (int t = 0; t < v->num_frames; t++) {
        bool any = false;
        for (int k = 0; k < v->n_obj && !any; k++) any = v->objs[k].cond[t] != NULL;
        if (!any) continue;
        if (v->n_anchors == v->cap_anchors) {
            int cap = v->cap_anchors ? 2 * v->cap_anchors : 16;
            int *na = realloc(v->anchors, sizeof(int) * (size_t)cap);
            if (!na) { v->anchors_dirty = true; return; } // fewer anchors: frees more, never wrong
            v->anchors = na;
            v->cap_anchors = cap;
        }
        v->anchors[v->n_anchors++] = t;
    }
}

/* Distance from frame f to the nearest anchor. */
static int anchor_distance(const s2_video *v, int f) {
    int d = v->last_tracked >= 0 ? abs(f - v->last_tracked) : INT_MAX;
    if (v->src && s2_vsource_kind(v->src) == S2_VSRC_STREAM) return d;
    int lo = 0, hi = v->n_anchors; // first anchor >= f
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (v->anchors[mid] < f) lo = mid + 1;
        else hi = mid;
    }
    if (lo < v->n_anchors) d = S2_MIN(d, v->anchors[lo] - f);
    if (lo > 0) d = S2_MIN(d, f - v->anchors[lo - 1]);
    return d;
}

/* What a non-conditioning output on frame f keeps (the table at the top). */
static int level_at(const s2_video *v, int f) {
    const int d = anchor_distance(v, f);
    if (d < v->window) return LV_FULL;
    if (d - v->window < v->span_mem) return LV_MEM;
    if (d - v->window < v->span_ptr) return LV_PTR;
    return LV_NONE;
}

/* Applies the level of frame f to every object's non-conditioning output there. */
static void apply_level(s2_video *v, int f) {
    int lv = -1;
    for (int k = 0; k < v->n_obj; k++) {
        s2_frame_out **slot = &v->objs[k].non_cond[f];
        if (!*slot) continue;
        if (lv < 0) lv = level_at(v, f);
        shrink(v, slot, lv);
    }
}

void s2v_after_track(s2_video *v, int t, bool reverse) {
    if (v->p.keep_all_outputs) return;
    if (v->anchors_dirty) rebuild_anchors(v);
    const int dir = reverse ? -1 : 1;
    const bool step = v->last_tracked >= 0 && v->last_tracked == t - dir;
    v->last_tracked = t;
    if (!step) { // a jump: every frame may have moved away from the anchors
        for (int f = 0; f < v->num_frames; f++) apply_level(v, f);
        return;
    }
    // one step on: only the frames now exactly at a threshold distance behind change
    const int d[3] = {v->window, v->window + v->span_mem, v->window + v->span_ptr};
    for (int i = 0; i < 3; i++) {
        int f = t - dir * d[i];
        if (f >= 0 && f < v->num_frames) apply_level(v, f);
    }
}

void s2v_hide_memoryless(s2_video *v, s2_vobj *o, int t, bool reverse) {
    v->n_hidden = 0;
    for (int d = 1; d <= v->span_mem; d++) {
        int f = reverse ? t + d : t - d;
        if (f < 0 || f >= v->num_frames || !o->non_cond[f] || o->non_cond[f]->maskmem) continue;
        v->hidden[v->n_hidden] = o->non_cond[f];
        v->hidden_at[v->n_hidden++] = f;
        o->non_cond[f] = NULL;
    }
}

void s2v_unhide(s2_video *v, s2_vobj *o) {
    for (int i = 0; i < v->n_hidden; i++) o->non_cond[v->hidden_at[i]] = v->hidden[i];
    v->n_hidden = 0;
}

void s2_video_resident(const s2_video *v, int *frames_held, int *outputs_held, size_t *bytes) {
    int nf = 0;
    size_t fb = 0;
    if (v && v->src) s2_vsource_held(v->src, &nf, &fb);
    if (frames_held) *frames_held = nf;
    if (outputs_held) *outputs_held = v ? v->n_outputs : 0;
    if (bytes) *bytes = v ? fb + v->out_bytes : 0;
}
