/* One object's clip, forward and backward through time (see clip_step.h): frames in the
 * official processing order (initial conditioning frames, then the others in time
 * order), per frame the memory-conditioned feature, the decoder passes (initial prompt,
 * corrective clicks fed the previous low-res mask, not detached), the object pointer
 * and the new memory; then the backward in reverse processing order, each frame
 * receiving the gradients of its memory and pointer from the frames that read them.
 * Letters: see clip_internal.h (C, Cm, h, w, N, LH, S, T); M masks of a pass,
 * HW4 = LH * LW, SS = S * S.
 * ref: training/model/sam2.py SAM2Train.forward_tracking / track_step /
 *      _iter_correct_pt_sampling; sam2/modeling/sam2_base.py SAM2Base._track_step,
 *      _use_mask_as_output, _encode_new_memory, _use_multimask */
#include "train/clip_internal.h"
#include "train/step.h"
#include "train/grad_ops.h"

#include <math.h>
#include <string.h>

// ref: sam2/modeling/sam2_base.py SAM2Base._use_multimask
static bool use_multimask(const s2_config *c, bool init_cond, int n_pts) {
    return c->multimask_output_in_sam && (init_cond || c->multimask_output_for_tracking) &&
           c->multimask_min_pt_num <= n_pts && n_pts <= c->multimask_max_pt_num;
}

/* IoU of (x > 0) with gt over n pixels (1 when both are empty). */
static double mask_iou(const float *x, const uint8_t *gt, int64_t n) {
    int64_t i_ = 0, u = 0;
    for (int64_t i = 0; i < n; i++) {
        bool p = x[i] > 0.0f, g = gt[i] != 0;
        i_ += p && g;
        u += p || g;
    }
    return u ? (double)i_ / (double)u : 1.0;
}

/* ============================ decoder passes ============================ */

/* Pass k of frame f: decoder on its points (or the padding point) and mask input, the
 * upsampled masks into *high [M, S, S], the loss and its gradients w.r.t. the pass's
 * low-res masks, IoU and object score. */
static int run_pass(s2_clip_ctx *cc, int f, int k, const float *xy, const int32_t *lab, int n,
                    const float *mask_in, bool multimask, float **high) {
    s2_clip_fstate *s = &cc->fs[f];
    s2_tctx *t = cc->t;
    static const float pad_xy[2] = {0.0f, 0.0f};
    static const int32_t pad_lab[1] = {-1};
    s2_heads_in hi = {1, n ? n : 1, n ? xy : pad_xy, n ? lab : pad_lab, mask_in, multimask};
    s2_heads_tape *ht = &s->ht[k];
    S2_CHECK(s2_heads_forward_train(t, &s->it, &hi, ht));
    const int M = ht->M;
    *high = s2_tape_f32(t, M * cc->SS);
    s2_ref_interp_bilinear(*high, ht->low, M, ht->H, ht->W, cc->S, cc->S, false, false);
    s->d_iou[k] = s2_tape_f32(t, M), s->d_obj[k] = s2_tape_f32(t, 1);
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    float *dm = cc->backward ? s2_scratch_f32(t->c, M * cc->SS) : NULL;
    s2_loss_step(cc->lc, 1, M, cc->SS, *high, ht->iou, ht->obj, cc->in->f[f].gt,
                 cc->in->num_objects, &cc->out->loss, dm, s->d_iou[k], s->d_obj[k], NULL);
    if (cc->backward) {
        s->d_low[k] = s2_clip_tape_zeros(t, M * cc->HW4);
        s2_interp_bilinear_backward(dm, s->d_low[k], M, ht->H, ht->W, cc->S, cc->S);
    }
    s2_arena_release(t->c->scratch, mk);
    return SAM2C_OK;
}

/* The mask prompt of an init_cond frame given to the decoder (no mask-as-output):
 * the ground truth resized (antialiased bilinear) to the decoder's mask input size. */
static float *mask_prompt(s2_clip_ctx *cc, s2_clip_fstate *s, const uint8_t *gt) {
    s->mask_f = s2_tape_f32(cc->t, cc->SS);
    for (int64_t i = 0; i < cc->SS; i++) s->mask_f[i] = gt[i] ? 1.0f : 0.0f;
    float *mi = s2_tape_f32(cc->t, cc->HW4);
    s2_ref_interp_bilinear(mi, s->mask_f, 1, cc->S, cc->S, cc->LH, cc->LH, false, true);
    return mi;
}

// ref: SAM2Train.track_step + _iter_correct_pt_sampling: the first pass, then one
// corrective click per pass (from the errors of the previous best mask, or from the GT
// with prob_from_gt), each pass fed the previous best low-res mask. *high_out = the
// final pass's best upsampled mask; *n_pts_out = its number of points.
static int frame_passes(s2_clip_ctx *cc, int f, float **high_out, int *n_pts_out) {
    const s2_clip_frame_in *fi = &cc->in->f[f];
    const s2_config *cfg = &cc->t->m->cfg;
    s2_clip_fstate *s = &cc->fs[f];
    s2_tctx *t = cc->t;
    const int K = fi->correct ? cc->in->n_correct : 0, cap = 2 + K;
    s->ht = (s2_heads_tape *)s2_tape_f32(t, (int64_t)(sizeof(s2_heads_tape) * (size_t)(K + 1) / 4 + 1));
    s->d_low = (float **)s2_tape_f32(t, 6 * (int64_t)(K + 1));
    s->d_iou = s->d_low + (K + 1), s->d_obj = s->d_iou + (K + 1);
    float *xy = s2_tape_f32(t, 2 * cap);
    int32_t *lab = (int32_t *)s2_tape_f32(t, cap);
    uint8_t *pred = (uint8_t *)s2_tape_f32(t, cc->SS / 4 + 1);
    int n = fi->init_cond ? fi->n_pts : 0;
    memcpy(xy, fi->xy, sizeof(float) * 2 * (size_t)n);
    memcpy(lab, fi->lab, sizeof(int32_t) * (size_t)n);
    const float *mask_in = fi->init_cond && n == 0 ? mask_prompt(cc, s, fi->gt) : NULL;
    float *high = NULL;
    for (int k = 0; k <= K; k++) {
        S2_CHECK(run_pass(cc, f, k, xy, lab, n, mask_in, use_multimask(cfg, fi->init_cond, n), &high));
        s->n_pass = k + 1;
        const s2_heads_tape *ht = &s->ht[k];
        high += (int64_t)ht->best[0] * cc->SS;
        if (k == K) break;
        bool from_gt = cc->in->prob_from_gt > 0.0 && s2_rng_uniform(cc->in->rng) < cc->in->prob_from_gt;
        for (int64_t i = 0; i < cc->SS; i++) pred[i] = high[i] > 0.0f;
        if (cc->in->center_clicks) S2_CHECK(s2_sample_point_center(fi->gt, from_gt ? NULL : pred, cc->S, cc->S, xy + 2 * n, lab + n));
        else s2_sample_point_uniform(fi->gt, from_gt ? NULL : pred, cc->S, cc->S, cc->in->rng, xy + 2 * n, lab + n);
        n++;
        float *mi = s2_tape_f32(t, cc->HW4); // low_res_masks (1, 1, LH, LW)
        memcpy(mi, ht->low + (int64_t)ht->best[0] * cc->HW4, sizeof(float) * (size_t)cc->HW4);
        mask_in = mi;
    }
    *high_out = high;
    *n_pts_out = n;
    return SAM2C_OK;
}

// ref: SAM2Base._use_mask_as_output: the GT mask as the output (+-10 logits), its
// pointer from a decoder pass on mask_downsample(mask) over the raw feature.
static int mask_as_output(s2_clip_ctx *cc, int f) {
    const s2_config *cfg = &cc->t->m->cfg;
    s2_clip_fstate *s = &cc->fs[f];
    s2_clip_frame_out *fo = &cc->out->f[f];
    s2_tctx *t = cc->t;
    s->mask_out = true;
    (void)mask_prompt(cc, s, cc->in->f[f].gt);
    fo->high = s2_tape_f32(t, cc->SS), fo->low = s2_tape_f32(t, cc->HW4);
    bool any = false;
    for (int64_t i = 0; i < cc->SS; i++) fo->high[i] = s->mask_f[i] * 20.0f + -10.0f, any |= s->mask_f[i] > 0.0f;
    s2_ref_interp_bilinear(fo->low, fo->high, 1, cc->S, cc->S, cc->S / 4, cc->S / 4, false, true);
    const float lam = any ? 1.0f : 0.0f, one = 1.0f;
    fo->score = 20.0f * lam + -10.0f;
    fo->n_pass = 1;
    s2_loss_step(cc->lc, 1, 1, cc->SS, fo->high, &one, &fo->score, cc->in->f[f].gt,
                 cc->in->num_objects, &cc->out->loss, NULL, NULL, NULL, NULL);
    fo->obj_ptr = s2_tape_f32(t, cc->C);
    if (!cfg->use_obj_ptrs_in_encoder) {
        s->proj = s2_clip_tape_zeros(t, cc->C);
        s->pa = 1.0f, s->pb = 0.0f;
    } else {
        const int q = (cc->S - 4) / 4 + 1;
        if (q != cc->LH) return s2_err(SAM2C_ERR_SHAPE, "clip step: mask_downsample gives %dx%d, the decoder takes %dx%d", q, q, cc->LH, cc->LH);
        float *md = s2_tape_f32(t, cc->HW4); // (LH, LW)
        s2_conv2d_desc d = {1, 1, cc->S, cc->S, 1, 4, 4, 4, 4, 0, 0, 1};
        s2_op_conv2d(t->c, md, s->mask_f, s2_w(t->m, "mask_downsample.weight"), s2_w(t->m, "mask_downsample.bias"), &d);
        memcpy(s->it.pix, cc->in->f[f].fpn[2], sizeof(float) * (size_t)(cc->C * cc->N)); // raw feature
        s->ht = (s2_heads_tape *)s2_tape_f32(t, (int64_t)(sizeof(s2_heads_tape) / 4 + 1));
        static const float pad_xy[2] = {0.0f, 0.0f};
        static const int32_t pad_lab[1] = {-1};
        s2_heads_in hi = {1, 1, pad_xy, pad_lab, md, false};
        S2_CHECK(s2_heads_forward_train(t, &s->it, &hi, &s->ht[0]));
        s->tok = 0;
        S2_CHECK(s2_clip_pointer(cc, s, s->ht[0].tok_rows + 2 * cc->C, s->ht[0].obj[0], fo->obj_ptr));
    }
    s2_clip_pointer_mix(cc, s, lam, fo->obj_ptr);
    return SAM2C_OK;
}

/* ============================ one frame ============================ */

// ref: SAM2Base._encode_new_memory: the final mask into the frame's memory (bf16
// rounded in eval mode, as the predictor stores it).
static int encode_memory(s2_clip_ctx *cc, int f, const float *high, bool from_pts) {
    const s2_config *cfg = &cc->t->m->cfg;
    s2_clip_fstate *s = &cc->fs[f];
    s2_clip_frame_out *fo = &cc->out->f[f];
    bool binarize = cc->in->eval && cfg->binarize_mask_from_pts_for_mem_enc && from_pts;
    S2_CHECK(s2_memenc_forward_train(cc->t, cc->in->f[f].fpn[2], cc->h, cc->w, high, cc->S,
                                     fo->score, binarize, &s->me));
    fo->maskmem = s->me.feat;
    if (cc->in->eval) {
        fo->maskmem = s2_tape_f32(cc->t, cc->Cm * cc->N);
        for (int64_t i = 0; i < cc->Cm * cc->N; i++) fo->maskmem[i] = s2_bf16_to_f32(s2_f32_to_bf16(s->me.feat[i]));
    }
    return SAM2C_OK;
}

// ref: SAM2Train.track_step (one frame: _track_step, corrections, memory encoding)
static int frame_forward(s2_clip_ctx *cc, int f) {
    const s2_clip_frame_in *fi = &cc->in->f[f];
    const s2_config *cfg = &cc->t->m->cfg;
    s2_clip_fstate *s = &cc->fs[f];
    s2_clip_frame_out *fo = &cc->out->f[f];
    S2_CHECK(s2_img_forward_train(cc->t, fi->fpn[0], fi->fpn[1], fi->fpn[2], &s->it));
    s->cond = fi->init_cond || (cc->in->add_corrected_as_cond && fi->correct);
    int n_pts = 0;
    if (fi->init_cond && fi->n_pts == 0 && cfg->use_mask_input_as_output_without_sam) {
        S2_CHECK(mask_as_output(cc, f));
    } else {
        if (!fi->init_cond) {
            s->tracking = true;
            S2_CHECK(s2_clip_attend(cc, f));
        }
        S2_CHECK(frame_passes(cc, f, &fo->high, &n_pts));
        const s2_heads_tape *ht = &cc->fs[f].ht[s->n_pass - 1];
        const int best = ht->best[0];
        bool multimask = ht->tok[0] == 1;
        s->tok = multimask && cfg->use_multimask_token_for_obj_ptr ? ht->tok[best] : 0;
        fo->low = ht->low + (int64_t)best * cc->HW4;
        fo->score = ht->obj[0];
        fo->n_pass = s->n_pass;
        fo->obj_ptr = s2_tape_f32(cc->t, cc->C);
        S2_CHECK(s2_clip_pointer(cc, s, ht->tok_rows + (int64_t)(2 + s->tok) * cc->C, fo->score, fo->obj_ptr));
    }
    S2_CHECK(encode_memory(cc, f, fo->high, n_pts > 0));
    fo->cond = s->cond;
    fo->iou = mask_iou(fo->high, fi->gt, cc->SS);
    s->done = true;
    return SAM2C_OK;
}

/* ============================ backward ============================ */

/* Adds g (LH, LW) into slot j of a pass's d_low [M, LH, LW]. */
static void add_slot(const s2_clip_ctx *cc, float *d_low, int j, const float *g) {
    float *dst = d_low + (int64_t)j * cc->HW4;
    s2_ref_add(dst, dst, g, cc->HW4);
}

// ref: _use_mask_as_output (autograd): pointer -> decoder on the raw feature ->
// mask_downsample (the mask itself is a constant)
static void mask_out_backward(s2_clip_ctx *cc, s2_clip_fstate *s, const float *d_tok) {
    s2_tctx *t = cc->t;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    float *d_md = s2_scratch_f32(t->c, cc->HW4);
    memset(d_md, 0, sizeof(float) * (size_t)cc->HW4);
    s2_clip_token_backward(t, &s->it, &s->ht[0], s->tok, d_tok, d_md);
    s2_conv_k_eq_s_backward(t->c, s->mask_f, s2_w(t->m, "mask_downsample.weight"), d_md, NULL,
                            s2_grad(t->p, "mask_downsample.weight"), s2_grad(t->p, "mask_downsample.bias"),
                            1, 1, cc->S, cc->S, 1, 4);
    s2_arena_release(t->c->scratch, mk);
}

// ref: SAM2Train.track_step (autograd of one frame): memory encoder, pointer, passes in
// reverse (mask inputs chained), memory attention, conv_s0 / conv_s1, no_mem_embed
static void frame_backward(s2_clip_ctx *cc, int f) {
    s2_clip_fstate *s = &cc->fs[f];
    s2_tctx *t = cc->t;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    float *d_high = s2_scratch_f32(t->c, cc->SS), *d_tok = s2_scratch_f32(t->c, cc->C);
    memset(d_high, 0, sizeof(float) * (size_t)cc->SS);
    memset(d_tok, 0, sizeof(float) * (size_t)cc->C);
    s2_memenc_backward(t, &s->me, s->d_maskmem, s->mask_out ? NULL : d_high);
    s2_clip_pointer_backward(cc, s, s->d_ptr, d_tok);
    if (s->mask_out) {
        if (t->m->cfg.use_obj_ptrs_in_encoder) mask_out_backward(cc, s, d_tok);
        s2_arena_release(t->c->scratch, mk);
        return;
    }
    const int K = s->n_pass - 1;
    float *d_low = s2_scratch_f32(t->c, cc->HW4), *dmi = s2_scratch_f32(t->c, cc->HW4);
    memset(d_low, 0, sizeof(float) * (size_t)cc->HW4);
    s2_interp_bilinear_backward(d_high, d_low, 1, cc->LH, cc->LH, cc->S, cc->S);
    add_slot(cc, s->d_low[K], s->ht[K].best[0], d_low);
    for (int k = K; k >= 0; k--) {
        memset(dmi, 0, sizeof(float) * (size_t)cc->HW4);
        s2_heads_backward(t, &s->it, &s->ht[k], s->d_low[k], s->d_iou[k], s->d_obj[k], k ? dmi : NULL);
        if (k == K) s2_clip_token_backward(t, &s->it, &s->ht[k], s->tok, d_tok, k ? dmi : NULL);
        if (k) add_slot(cc, s->d_low[k - 1], s->ht[k - 1].best[0], dmi);
    }
    if (s->tracking) s2_clip_attend_backward(cc, f);
    s2_img_backward(t, &s->it);
    s2_arena_release(t->c->scratch, mk);
}

/* ============================ the clip ============================ */

/* Checks the clip description with one-line messages. */
static int clip_check(const s2_tctx *t, const s2_clip_in *in, bool backward) {
    if (!t || !t->m || !in || !in->f || !in->pos || in->T < 1 || in->T > S2_CLIP_MAX_FRAMES)
        return s2_err(SAM2C_ERR_ARG, "clip step: bad clip (1 to %d frames with features and a position encoding)", S2_CLIP_MAX_FRAMES);
    const unsigned need = S2_TRAIN_MEMORY | S2_TRAIN_HEADS;
    if (backward && (!t->p || (t->p->modules & need) != need))
        return s2_err(SAM2C_ERR_ARG, "clip step: backward needs the memory and head modules trainable");
    const s2_config *cfg = &t->m->cfg;
    if (cfg->num_maskmem <= 0) return s2_err(SAM2C_ERR_UNSUPPORTED, "clip step: the model has no memory (num_maskmem 0)");
    if (cfg->soft_no_obj_ptr) return s2_err(SAM2C_ERR_UNSUPPORTED, "clip step: soft_no_obj_ptr is not supported");
    if (!(in->num_objects > 0.0)) return s2_err(SAM2C_ERR_ARG, "clip step: num_objects must be positive");
    if (!in->f[0].init_cond) return s2_err(SAM2C_ERR_ARG, "clip step: frame 0 must be an initial conditioning frame");
    if (in->n_correct < 0 || in->n_correct > 64) return s2_err(SAM2C_ERR_ARG, "clip step: %d corrective clicks not in [0, 64]", in->n_correct);
    for (int f = 0; f < in->T; f++) {
        const s2_clip_frame_in *fi = &in->f[f];
        if (!fi->fpn[2] || !fi->gt) return s2_err(SAM2C_ERR_ARG, "clip step: frame %d has no features or ground truth", f);
        if (fi->init_cond && (fi->n_pts < 0 || fi->n_pts > 2))
            return s2_err(SAM2C_ERR_ARG, "clip step: frame %d has %d prompt points (0, 1 or 2)", f, fi->n_pts);
        if (fi->correct && in->n_correct > 0 && !in->rng && (!in->center_clicks || in->prob_from_gt > 0.0))
            return s2_err(SAM2C_ERR_ARG, "clip step: corrective clicks need a random generator");
    }
    return SAM2C_OK;
}

/* Sizes, tape arrays, the token-major PE and the memory PE. */
static int clip_setup(s2_clip_ctx *cc) {
    s2_tctx *t = cc->t;
    const s2_config *cfg = &t->m->cfg;
    const int T = cc->in->T;
    cc->C = cfg->d_model, cc->h = cc->w = s2_cfg_feat_side(cfg), cc->S = cfg->image_size;
    cc->Cm = s2_memory_dim(t->m), cc->LH = 4 * cc->h;
    cc->N = (int64_t)cc->h * cc->w, cc->SS = (int64_t)cc->S * cc->S, cc->HW4 = (int64_t)cc->LH * cc->LH;
    if (cc->LH * 4 != cc->S) return s2_err(SAM2C_ERR_SHAPE, "clip step: %dx%d features do not match image size %d", cc->h, cc->w, cc->S);
    cc->fs = (s2_clip_fstate *)s2_clip_tape_zeros(t, (int64_t)(sizeof(s2_clip_fstate) * (size_t)T / 4 + 1));
    cc->out->f = (s2_clip_frame_out *)s2_clip_tape_zeros(t, (int64_t)(sizeof(s2_clip_frame_out) * (size_t)T / 4 + 1));
    cc->pos_tok = s2_tape_f32(t, cc->N * cc->C);
    s2_ref_nchw_to_nhwc(cc->pos_tok, cc->in->pos, 1, cc->C, cc->h, cc->w);
    cc->mem_pos = s2_tape_f32(t, cc->Cm * cc->N);
    S2_CHECK(s2_memory_pos_enc(t->m, cc->h, cc->w, cc->mem_pos));
    for (int f = 0; cc->backward && f < T; f++) {
        cc->fs[f].d_maskmem = s2_clip_tape_zeros(t, cc->Cm * cc->N);
        cc->fs[f].d_ptr = s2_clip_tape_zeros(t, cc->C);
    }
    return SAM2C_OK;
}

/* Mean IoUs of the clip. */
static void clip_summary(const s2_clip_in *in, s2_clip_out *out) {
    double all = 0.0, tr = 0.0;
    int n_tr = 0;
    for (int f = 0; f < in->T; f++) {
        all += out->f[f].iou;
        if (!in->f[f].init_cond) tr += out->f[f].iou, n_tr++;
    }
    out->miou = all / in->T;
    out->miou_tracked = n_tr ? tr / n_tr : NAN;
}

// ref: SAM2Train.forward_tracking (+ the loss summed over frames, and its autograd)
int s2_clip_step(s2_tctx *t, const s2_loss_cfg *lc, const s2_clip_in *in, bool backward,
                 s2_clip_out *out) {
    S2_CHECK(clip_check(t, in, backward));
    *out = (s2_clip_out){0};
    s2_clip_ctx cc = {.t = t, .lc = lc, .in = in, .out = out, .backward = backward};
    S2_CHECK(clip_setup(&cc));
    int *order = (int *)s2_tape_f32(t, in->T), n = 0;
    for (int f = 0; f < in->T; f++) if (in->f[f].init_cond) order[n++] = f;
    for (int f = 0; f < in->T; f++) if (!in->f[f].init_cond) order[n++] = f;
    for (int i = 0; i < in->T; i++) S2_CHECK(frame_forward(&cc, order[i]));
    clip_summary(in, out);
    for (int i = in->T - 1; backward && i >= 0; i--) frame_backward(&cc, order[i]);
    return SAM2C_OK;
}
