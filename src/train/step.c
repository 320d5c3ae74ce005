/* One training sample on a static image, as SAM2Train.forward runs it for num_frames = 1:
 * the initial prompt's decoder pass, then n_correct corrective clicks each fed the
 * previous pass's low-res mask (not detached: gradients flow back through the mask
 * input); every pass's high-res masks go into the loss; backward in reverse order.
 * Letters: B objects, M masks per pass, H x W low-res side, S model input side.
 * ref: training/model/sam2.py SAM2Train.track_step / _iter_correct_pt_sampling,
 *      sam2/modeling/sam2_base.py SAM2Base._use_multimask */
#include "train/step.h"
#include "train/grad_ops.h"

#include <string.h>

// ref: sam2/modeling/sam2_base.py SAM2Base._use_multimask (initial conditioning frame)
static bool use_multimask(const s2_config *c, int n_points) {
    return c->multimask_output_in_sam && c->multimask_min_pt_num <= n_points &&
           n_points <= c->multimask_max_pt_num;
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

/* Points of every object so far, contiguous [B, N, 2] / [B, N] copies on the tape. */
typedef struct point_set {
    int B, N, cap;
    float *xy;        /* [B, cap, 2] */
    int32_t *lab;     /* [B, cap] */
} point_set;

/* Contiguous [B, N, 2] and [B, N] views of the current points (tape copies). */
static void points_view(s2_tctx *t, const point_set *ps, float **xy, int32_t **lab) {
    *xy = s2_tape_f32(t, (int64_t)ps->B * ps->N * 2 + 1);
    *lab = (int32_t *)s2_tape_f32(t, (int64_t)ps->B * ps->N + 1);
    for (int b = 0; b < ps->B; b++) {
        memcpy(*xy + (int64_t)b * ps->N * 2, ps->xy + (int64_t)b * ps->cap * 2,
               sizeof(float) * 2 * (size_t)ps->N);
        memcpy(*lab + (int64_t)b * ps->N, ps->lab + (int64_t)b * ps->cap,
               sizeof(int32_t) * (size_t)ps->N);
    }
}

// ref: SAM2Train._iter_correct_pt_sampling (one new click per object from the errors of
// the best-IoU high-res mask, or with probability prob_from_gt from the GT alone)
static int add_correction(const s2_sample_in *in, const float *high, const s2_heads_tape *ht,
                          int S, point_set *ps, uint8_t *pred) {
    int64_t SS = (int64_t)S * S;
    for (int b = 0; b < in->B; b++) {
        const float *best = high + ((int64_t)b * ht->M + ht->best[b]) * SS;
        bool from_gt = in->prob_from_gt > 0.0 && s2_rng_uniform(in->rng) < in->prob_from_gt;
        for (int64_t i = 0; i < SS; i++) pred[i] = best[i] > 0.0f;
        const uint8_t *gt = in->gt + (int64_t)b * SS;
        float *xy = ps->xy + ((int64_t)b * ps->cap + ps->N) * 2;
        int32_t *lab = ps->lab + (int64_t)b * ps->cap + ps->N;
        if (in->center_clicks) S2_CHECK(s2_sample_point_center(gt, from_gt ? NULL : pred, S, S, xy, lab));
        else s2_sample_point_uniform(gt, from_gt ? NULL : pred, S, S, in->rng, xy, lab);
    }
    ps->N++;
    return SAM2C_OK;
}

/* Checks the sample description. */
static int check_sample(const s2_tctx *t, const s2_sample_in *in, bool backward) {
    if (backward && (!t || !t->p)) return s2_err(SAM2C_ERR_ARG, "train: backward without gradients");
    if (!t || !t->m || !in || in->B < 1 || in->N0 < 0 || in->n_correct < 0 || !in->gt ||
        (in->N0 > 0 && (!in->coords || !in->labels)))
        return s2_err(SAM2C_ERR_ARG, "train: bad sample");
    if (in->n_correct > 0 && !in->rng && (!in->center_clicks || in->prob_from_gt > 0.0))
        return s2_err(SAM2C_ERR_ARG, "train: corrective clicks need a random generator");
    return SAM2C_OK;
}

/* Every pass's saved activations and the loss gradients w.r.t. its outputs. */
typedef struct pass_state {
    s2_heads_tape *ht;
    float **d_low, **d_iou, **d_obj; /* per pass, on the tape */
} pass_state;

/* Forward + loss of pass k (and the gradient of the loss w.r.t. its low-res masks by
 * the transposed upsampling); high receives its upsampled masks [B, M, S, S]. */
static int run_pass(s2_tctx *t, const s2_loss_cfg *lc, const s2_sample_in *in,
                    const s2_img_tape *it, const point_set *ps, const float *mask_in, int k,
                    bool backward, pass_state *st, float **high, s2_sample_out *out) {
    const s2_config *cfg = &t->m->cfg;
    int S = cfg->image_size, B = in->B;
    int64_t SS = (int64_t)S * S;
    float *xy;
    int32_t *lab;
    points_view(t, ps, &xy, &lab);
    s2_heads_in hi = {B, ps->N, xy, lab, mask_in, use_multimask(cfg, ps->N)};
    s2_heads_tape *ht = &st->ht[k];
    S2_CHECK(s2_heads_forward_train(t, it, &hi, ht));
    int M = ht->M;
    int64_t HW4 = (int64_t)ht->H * ht->W;
    *high = s2_tape_f32(t, (int64_t)B * M * SS);
    s2_ref_interp_bilinear(*high, ht->low, B * M, ht->H, ht->W, S, S, false, false);
    st->d_iou[k] = s2_tape_f32(t, (int64_t)B * M);
    st->d_obj[k] = s2_tape_f32(t, B);
    s2_arena_mark mark = s2_arena_get_mark(t->c->scratch);
    float *dm = backward ? s2_scratch_f32(t->c, (int64_t)B * M * SS) : NULL;
    s2_loss_step(lc, B, M, SS, *high, ht->iou, ht->obj, in->gt, in->num_objects, &out->loss, dm,
                 st->d_iou[k], st->d_obj[k], k == 0 ? in->det0 : NULL);
    if (backward) {
        st->d_low[k] = s2_tape_f32(t, (int64_t)B * M * HW4);
        memset(st->d_low[k], 0, sizeof(float) * (size_t)(B * M * HW4));
        s2_interp_bilinear_backward(dm, st->d_low[k], B * M, ht->H, ht->W, S, S);
    }
    s2_arena_release(t->c->scratch, mark);
    double iou = 0.0;
    for (int b = 0; b < B; b++)
        iou += mask_iou(*high + ((int64_t)b * M + ht->best[b]) * SS, in->gt + (int64_t)b * SS, SS);
    if (k == 0) out->iou_first = iou / B;
    out->iou_last = iou / B;
    return SAM2C_OK;
}

// ref: SAM2Train.track_step + _iter_correct_pt_sampling (one frame, autograd)
int s2_train_sample(s2_tctx *t, const s2_loss_cfg *lc, const s2_sample_in *in, bool backward,
                    s2_sample_out *out) {
    S2_CHECK(check_sample(t, in, backward));
    *out = (s2_sample_out){0};
    int S = t->m->cfg.image_size, B = in->B, K = in->n_correct;
    s2_img_tape *it = (s2_img_tape *)s2_tape_f32(t, (int64_t)(sizeof *it / 4 + 1));
    S2_CHECK(s2_img_forward_train(t, in->fpn[0], in->fpn[1], in->fpn[2], it));
    for (int k = 0; k < 3; k++) it->d_fpn[k] = in->d_fpn[k];
    pass_state st;
    st.ht = (s2_heads_tape *)s2_tape_f32(t, (int64_t)(sizeof(s2_heads_tape) * (size_t)(K + 1) / 4 + 1));
    st.d_low = (float **)s2_tape_f32(t, 6 * (int64_t)(K + 1));
    st.d_iou = st.d_low + (K + 1);
    st.d_obj = st.d_iou + (K + 1);
    point_set ps = {B, in->N0, in->N0 + K, NULL, NULL};
    ps.xy = s2_tape_f32(t, (int64_t)B * ps.cap * 2 + 1);
    ps.lab = (int32_t *)s2_tape_f32(t, (int64_t)B * ps.cap + 1);
    for (int b = 0; b < B; b++) {
        memcpy(ps.xy + (int64_t)b * ps.cap * 2, in->coords + (int64_t)b * in->N0 * 2, sizeof(float) * 2 * (size_t)in->N0);
        memcpy(ps.lab + (int64_t)b * ps.cap, in->labels + (int64_t)b * in->N0, sizeof(int32_t) * (size_t)in->N0);
    }
    uint8_t *pred = (uint8_t *)s2_tape_f32(t, (int64_t)S * S / 4 + 1);
    const float *mask_in = NULL;
    for (int k = 0; k <= K; k++) {
        float *high;
        S2_CHECK(run_pass(t, lc, in, it, &ps, mask_in, k, backward, &st, &high, out));
        if (k == 0) out->first = &st.ht[0], out->first_high = high;
        out->n_steps = k + 1;
        if (k == K) break;
        S2_CHECK(add_correction(in, high, &st.ht[k], S, &ps, pred));
        const s2_heads_tape *ht = &st.ht[k];
        int64_t HW4 = (int64_t)ht->H * ht->W;
        float *mi = s2_tape_f32(t, (int64_t)B * HW4); // low_res_masks (B, 1, H, W)
        for (int b = 0; b < B; b++)
            memcpy(mi + b * HW4, ht->low + ((int64_t)b * ht->M + ht->best[b]) * HW4, sizeof(float) * (size_t)HW4);
        mask_in = mi;
    }
    if (!backward) return SAM2C_OK;
    for (int k = K; k >= 0; k--) {
        const s2_heads_tape *ht = &st.ht[k];
        int64_t HW4 = (int64_t)ht->H * ht->W;
        s2_arena_mark mark = s2_arena_get_mark(t->c->scratch);
        float *dmi = k > 0 ? s2_scratch_f32(t->c, (int64_t)B * HW4) : NULL;
        if (dmi) memset(dmi, 0, sizeof(float) * (size_t)(B * HW4));
        s2_heads_backward(t, it, ht, st.d_low[k], st.d_iou[k], st.d_obj[k], dmi);
        for (int b = 0; dmi && b < B; b++) { // mask input = previous best (gated) mask
            const s2_heads_tape *hp = &st.ht[k - 1];
            float *dl = st.d_low[k - 1] + ((int64_t)b * hp->M + hp->best[b]) * HW4;
            s2_ref_add(dl, dl, dmi + b * HW4, HW4);
        }
        s2_arena_release(t->c->scratch, mark);
    }
    s2_img_backward(t, it);
    return SAM2C_OK;
}
