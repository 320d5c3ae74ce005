/* The video fine-tuning loop (see video_train.h): clip split and feature cache, samples
 * of consecutive frames with their objects and prompts, clip steps with backward through
 * time, gradient clipping, AdamW on a cosine schedule, validation with the video
 * predictor's tracking step, checkpoints.
 * Letters: C d_model, h top-level side, S model input side, T frames of a sample,
 * K objects of a clip, B objects of a sample, SS = S * S.
 * ref: training/trainer.py (loop, clipping), training/dataset/vos_sampler.py
 *      RandomUniformSampler, training/model/sam2.py SAM2Train.prepare_prompt_inputs */
#include "train/video_train.h"
#include "train/video_data.h"
#include "train/clip_step.h"
#include "train/step.h"
#include "train/ckpt.h"
#include "model/sam2_base.h"
#include "model/memory.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OBJ 64

/* The sam2.1 fine-tuning YAML where it applies, a few-shot learning rate and sizes. */
void s2_video_finetune_default(s2_video_finetune_params *p) {
    *p = (s2_video_finetune_params){.epochs = 10, .lr = 1e-4, .lr_end = -1.0, .weight_decay = 0.1,
                                    .clip = 0.1, .batch = 1, .val_split = 0.2, .num_frames = 8,
                                    .max_frames = 24, .max_objects = 3, .n_correct = 7, .prob_pt = 0.5,
                                    .prob_box = 0.5, .prob_from_gt = 0.1, .n_init_cond = 2,
                                    .n_frames_to_correct = 2, .add_corrected_as_cond = true,
                                    .w_focal = 20.0, .w_dice = 1.0};
}

typedef struct vt_state {
    const sam2c_model *base;
    const s2_video_finetune_params *p;
    s2_vclip *clips;                 /* [n_train + n_val]: training clips first */
    int n_train, n_val;
    float *pos;                      /* (C, h, w) top-level PE (the same for every frame) */
    s2_arena scratch, tape;
    s2_ctx c;
    s2_trainable *tp;
    s2_adamw opt;
    s2_tctx t;
    uint64_t rng;
    s2_loss_cfg lc;
    s2_epoch_stats *hist;            /* [epochs + 1]: epoch 0 = before training */
} vt_state;

/* Sends one formatted message to the log callback. */
static void logf_(const vt_state *st, const char *fmt, ...) S2_PRINTF(2, 3);
static void logf_(const vt_state *st, const char *fmt, ...) {
    if (!st->p->log) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st->p->log(st->p->user, msg);
}

/* Checks the parameters before anything is loaded. */
static int check_params(const sam2c_model *m, const s2_video_finetune_params *p) {
    if (!m || !p || !p->data_dir) return s2_err(SAM2C_ERR_ARG, "video finetune: no model or data folder");
    if (p->epochs < 0 || p->epochs > 100000) return s2_err(SAM2C_ERR_ARG, "video finetune: epochs %d not in [0, 100000]", p->epochs);
    if (!(p->lr > 0.0) || p->lr > 1.0) return s2_err(SAM2C_ERR_ARG, "video finetune: learning rate %g not in (0, 1]", p->lr);
    if (p->batch < 1 || p->batch > 4096) return s2_err(SAM2C_ERR_ARG, "video finetune: batch %d not in [1, 4096]", p->batch);
    if (!(p->val_split >= 0.0 && p->val_split < 1.0)) return s2_err(SAM2C_ERR_ARG, "video finetune: val split %g not in [0, 1)", p->val_split);
    if (p->num_frames < 1 || p->num_frames > S2_CLIP_MAX_FRAMES)
        return s2_err(SAM2C_ERR_ARG, "video finetune: %d frames per sample not in [1, %d]", p->num_frames, S2_CLIP_MAX_FRAMES);
    if (p->max_frames < 0) return s2_err(SAM2C_ERR_ARG, "video finetune: max frames %d is negative", p->max_frames);
    if (p->max_objects < 1 || p->max_objects > MAX_OBJ) return s2_err(SAM2C_ERR_ARG, "video finetune: max objects %d not in [1, %d]", p->max_objects, MAX_OBJ);
    if (p->n_correct < 0 || p->n_correct > 64) return s2_err(SAM2C_ERR_ARG, "video finetune: %d corrective clicks not in [0, 64]", p->n_correct);
    if (p->n_init_cond < 1 || p->n_init_cond > p->num_frames || p->n_frames_to_correct < p->n_init_cond ||
        p->n_frames_to_correct > p->num_frames)
        return s2_err(SAM2C_ERR_ARG, "video finetune: need 1 <= initial conditioning frames (%d) <= frames to correct (%d) <= frames (%d)",
                      p->n_init_cond, p->n_frames_to_correct, p->num_frames);
    const double pr[3] = {p->prob_pt, p->prob_box, p->prob_from_gt};
    for (int i = 0; i < 3; i++)
        if (!(pr[i] >= 0.0 && pr[i] <= 1.0)) return s2_err(SAM2C_ERR_ARG, "video finetune: probability %g not in [0, 1]", pr[i]);
    if (!(p->w_focal >= 0.0 && p->w_focal <= 1e4 && p->w_dice >= 0.0 && p->w_dice <= 1e4))
        return s2_err(SAM2C_ERR_ARG, "video finetune: loss weights %g, %g not in [0, 1e4]", p->w_focal, p->w_dice);
    if (p->resume && !p->ckpt_path) return s2_err(SAM2C_ERR_ARG, "video finetune: resume needs a checkpoint path");
    if (m->cfg.num_maskmem <= 0) return s2_err(SAM2C_ERR_UNSUPPORTED, "video finetune: the model has no memory (num_maskmem 0)");
    if (!m->cfg.use_high_res_features_in_sam)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "video finetune: models without high-res features are not supported");
    return SAM2C_OK;
}

/* Shuffles a[0..n) with the state's generator (Fisher-Yates). */
static void shuffle(int *a, int n, uint64_t *rng) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)s2_rng_below(rng, i + 1), t = a[i];
        a[i] = a[j], a[j] = t;
    }
}

/* Ground truth of object k on frame t of clip v. */
static const uint8_t *clip_gt(const vt_state *st, const s2_vclip *v, int t, int k) {
    const int64_t SS = (int64_t)st->base->cfg.image_size * st->base->cfg.image_size;
    return v->gt + ((int64_t)t * v->K + k) * SS;
}

/* True when the mask has a pixel. */
static bool visible(const uint8_t *g, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (g[i]) return true;
    return false;
}

/* ============================ data ============================ */

/* Loads the clips of names[0..n) from root into st->clips + at. */
static int load_clips(vt_state *st, const char *root, char **names, int n, int at) {
    for (int i = 0; i < n; i++) {
        logf_(st, "encoding clip %d/%d (%s/%s)", at + i + 1, st->n_train + st->n_val, root, names[i]);
        S2_CHECK(s2_vclip_load(&st->c, st->base, root, names[i], st->p->max_frames, &st->clips[at + i], st->pos));
    }
    return SAM2C_OK;
}

/* Clip lists, split (a separate folder or val_split of data_dir) and feature cache. */
static int load_split(vt_state *st) {
    char **tr = NULL, **va = NULL;
    int ntr = 0, nva = 0, rc = s2_vclip_list(st->p->data_dir, &tr, &ntr);
    if (rc == SAM2C_OK && st->p->val_dir) rc = s2_vclip_list(st->p->val_dir, &va, &nva);
    int *ord = rc == SAM2C_OK ? s2_malloc(sizeof(int) * (size_t)(ntr + 1)) : NULL;
    if (rc == SAM2C_OK && !ord) rc = SAM2C_ERR_NOMEM;
    char **sorted = rc == SAM2C_OK ? s2_malloc(sizeof(char *) * (size_t)(ntr + 1)) : NULL;
    if (rc == SAM2C_OK && !sorted) rc = SAM2C_ERR_NOMEM;
    if (rc == SAM2C_OK) {
        for (int i = 0; i < ntr; i++) ord[i] = i;
        st->n_train = ntr, st->n_val = nva;
        if (!st->p->val_dir) { // random split of data_dir
            shuffle(ord, ntr, &st->rng);
            st->n_val = (int)lround(st->p->val_split * ntr);
            if (st->n_val >= ntr) st->n_val = ntr - 1;
            st->n_train = ntr - st->n_val;
        }
        for (int i = 0; i < ntr; i++) sorted[i] = tr[ord[i]];
        st->clips = s2_calloc((size_t)(st->n_train + st->n_val), sizeof *st->clips);
        if (!st->clips) rc = SAM2C_ERR_NOMEM;
    }
    if (rc == SAM2C_OK) rc = load_clips(st, st->p->data_dir, sorted, ntr, 0);
    if (rc == SAM2C_OK && va) rc = load_clips(st, st->p->val_dir, va, nva, ntr);
    size_t bytes = 0;
    for (int i = 0; rc == SAM2C_OK && i < st->n_train + st->n_val; i++) bytes += s2_vclip_bytes(st->base, &st->clips[i]);
    if (rc == SAM2C_OK)
        logf_(st, "feature cache: %d training clips, %d validation clips, %.1f MB", st->n_train, st->n_val,
              (double)bytes / 1048576.0);
    free(ord), free(sorted);
    s2_vclip_list_free(tr, ntr);
    s2_vclip_list_free(va, nva);
    return rc;
}

/* ============================ samples ============================ */

/* One training sample: frames [t0, t0 + T) of a clip, B objects, the prompt plan. */
typedef struct sample {
    const s2_vclip *v;
    int t0, T, B;
    int obj[MAX_OBJ];
    bool use_pt, box[S2_CLIP_MAX_FRAMES];
    bool init[S2_CLIP_MAX_FRAMES], correct[S2_CLIP_MAX_FRAMES];
} sample;

// ref: training/dataset/vos_sampler.py RandomUniformSampler (consecutive frames, the
// objects visible on the first one, at most max_objects of them)
static void sample_window(vt_state *st, const s2_vclip *v, sample *s) {
    const int64_t SS = (int64_t)st->base->cfg.image_size * st->base->cfg.image_size;
    s->v = v, s->B = 0;
    s->T = st->p->num_frames < v->T ? st->p->num_frames : v->T;
    int vis[MAX_OBJ * 4], nv = 0;
    for (int tries = 0; tries < v->T && nv == 0; tries++) {
        s->t0 = (int)s2_rng_below(&st->rng, v->T - s->T + 1);
        nv = 0;
        for (int k = 0; k < v->K && nv < MAX_OBJ * 4; k++)
            if (visible(clip_gt(st, v, s->t0, k), SS)) vis[nv++] = k;
    }
    shuffle(vis, nv, &st->rng);
    s->B = nv < st->p->max_objects ? nv : st->p->max_objects;
    memcpy(s->obj, vis, sizeof(int) * (size_t)s->B);
}

/* k distinct values of [1, T) into out (random order of a partial shuffle). */
static void pick_frames(uint64_t *rng, int T, const bool *exclude, int k, int *out) {
    int pool[S2_CLIP_MAX_FRAMES], n = 0;
    for (int t = 1; t < T; t++)
        if (!exclude[t]) pool[n++] = t;
    for (int i = 0; i < k && i < n; i++) {
        int j = i + (int)s2_rng_below(rng, n - i), tmp = pool[i];
        pool[i] = pool[j], pool[j] = tmp;
        out[i] = pool[i];
    }
}

// ref: SAM2Train.prepare_prompt_inputs (training): point input with prob_pt (else the
// GT mask), 1..n_init_cond initial conditioning frames (frame 0 first), a box with
// prob_box on each of them, corrections on n_init..n_frames_to_correct frames
static void sample_plan(vt_state *st, sample *s) {
    const s2_video_finetune_params *p = st->p;
    const int T = s->T;
    memset(s->init, 0, sizeof s->init), memset(s->correct, 0, sizeof s->correct), memset(s->box, 0, sizeof s->box);
    s->use_pt = T == 1 || s2_rng_uniform(&st->rng) < p->prob_pt;
    int n_init = T == 1 ? 1 : (p->n_init_cond > 1 ? 1 + (int)s2_rng_below(&st->rng, p->n_init_cond) : 1);
    if (n_init > T) n_init = T;
    int n_corr = n_init;
    if (s->use_pt && p->n_frames_to_correct > n_init && T > 1)
        n_corr = n_init + (int)s2_rng_below(&st->rng, p->n_frames_to_correct - n_init + 1);
    if (n_corr > T) n_corr = T;
    int picked[S2_CLIP_MAX_FRAMES];
    s->init[0] = true;
    pick_frames(&st->rng, T, s->init, n_init - 1, picked);
    for (int i = 0; i < n_init - 1; i++) s->init[picked[i]] = true;
    for (int t = 0; t < T; t++)
        if (s->init[t]) s->box[t] = s->use_pt && s2_rng_uniform(&st->rng) < p->prob_box;
    if (!s->use_pt) return; // mask inputs: no corrections
    for (int t = 0; t < T; t++) s->correct[t] = s->init[t];
    pick_frames(&st->rng, T, s->init, n_corr - n_init, picked);
    for (int i = 0; i < n_corr - n_init; i++) s->correct[picked[i]] = true;
}

/* The clip-step frames of object b of sample s (prompts drawn from its GT). */
static void sample_frames(vt_state *st, const sample *s, int b, s2_clip_frame_in *fr) {
    const int S = st->base->cfg.image_size;
    for (int f = 0; f < s->T; f++) {
        const int t = s->t0 + f;
        fr[f] = (s2_clip_frame_in){.fpn = {s->v->fpn[3 * t], s->v->fpn[3 * t + 1], s->v->fpn[3 * t + 2]},
                                   .gt = clip_gt(st, s->v, t, s->obj[b]), .init_cond = s->init[f],
                                   .correct = s->correct[f]};
        if (!s->init[f] || !s->use_pt) continue;
        if (s->box[f]) {
            s2_sample_box(fr[f].gt, S, S, &st->rng, fr[f].xy, fr[f].lab);
            fr[f].n_pts = 2;
        } else {
            s2_sample_point_uniform(fr[f].gt, NULL, S, S, &st->rng, fr[f].xy, fr[f].lab);
            fr[f].n_pts = 1;
        }
    }
}

/* ============================ training ============================ */

/* Sums of one epoch. */
typedef struct epoch_acc {
    double loss, norm, iou;
    s2_loss_parts parts;
    int64_t n_obj;
} epoch_acc;

/* Forward + backward of every object of one sample (gradients added). */
static int train_sample(vt_state *st, const sample *s, double num_objects, epoch_acc *acc) {
    s2_clip_frame_in fr[S2_CLIP_MAX_FRAMES];
    for (int b = 0; b < s->B; b++) {
        sample_frames(st, s, b, fr);
        s2_clip_in in = {.T = s->T, .f = fr, .pos = st->pos, .n_correct = st->p->n_correct,
                         .prob_from_gt = st->p->prob_from_gt, .rng = &st->rng,
                         .num_objects = num_objects, .add_corrected_as_cond = st->p->add_corrected_as_cond};
        s2_clip_out out;
        int rc = s2_clip_step(&st->t, &st->lc, &in, true, &out);
        s2_arena_reset(&st->tape);
        if (rc < 0) return rc;
        acc->loss += out.loss.core;
        acc->parts.mask += out.loss.mask, acc->parts.dice += out.loss.dice;
        acc->parts.iou += out.loss.iou, acc->parts.cls += out.loss.cls, acc->parts.core += out.loss.core;
        acc->iou += out.miou;
        acc->n_obj++;
    }
    return SAM2C_OK;
}

/* One optimizer step over clips idx[0..n). */
static int train_step(vt_state *st, const int *idx, int n, double where, epoch_acc *acc, double *lr) {
    s2_trainable_zero_grad(st->tp);
    sample *ss = s2_calloc((size_t)n, sizeof *ss);
    if (!ss) return SAM2C_ERR_NOMEM;
    double num_objects = 0.0;
    for (int i = 0; i < n; i++) {
        sample_window(st, &st->clips[idx[i]], &ss[i]);
        sample_plan(st, &ss[i]);
        num_objects += ss[i].B;
    }
    int rc = SAM2C_OK;
    for (int i = 0; rc == SAM2C_OK && i < n && num_objects > 0; i++) rc = train_sample(st, &ss[i], num_objects, acc);
    free(ss);
    if (rc < 0) return rc;
    double norm = s2_clip_grad_norm(st->tp, st->p->clip > 0.0 ? st->p->clip : INFINITY);
    double end = st->p->lr_end >= 0.0 ? st->p->lr_end : st->p->lr / 10.0;
    *lr = s2_cosine_schedule(st->p->lr, end, where);
    if (num_objects > 0) s2_adamw_step(&st->opt, st->tp, *lr);
    acc->norm += norm;
    return SAM2C_OK;
}

/* ============================ validation ============================ */

/* The predictor's view of frame t of clip v: neck levels, PE, conv_s0 / conv_s1 with
 * the current weights into hr0 / hr1. */
static void frame_backbone(vt_state *st, const s2_vclip *v, int t, float *hr0, float *hr1,
                           s2_backbone_out *bb) {
    const sam2c_model *m = st->tp->m;
    const int C = m->cfg.d_model, h = s2_cfg_feat_side(&m->cfg);
    *bb = (s2_backbone_out){.n_levels = 3, .C = C, .h = {4 * h, 2 * h, h}, .w = {4 * h, 2 * h, h},
                            .fpn = {(float *)v->fpn[3 * t], (float *)v->fpn[3 * t + 1], (float *)v->fpn[3 * t + 2]},
                            .pos = {NULL, NULL, st->pos}};
    for (int k = 0; k < 2; k++) {
        const s2_tensor *w = s2_wt(m, "sam_mask_decoder.conv_s%d.weight", k);
        const int side = (k ? 2 : 4) * h;
        s2_conv2d_desc d = {1, C, side, side, (int)w->shape[0], 1, 1, 1, 1, 0, 0, 1};
        s2_op_conv2d(&st->c, k ? hr1 : hr0, bb->fpn[k], (const float *)w->data,
                     s2_w(m, "sam_mask_decoder.conv_s%d.bias", k), &d);
        bb->high_res[k] = k ? hr1 : hr0;
        bb->hr_c[k] = (int)w->shape[0];
    }
}

/* Stores one tracked frame's output (bf16 memory) into o, backed by buf. */
static void store_out(const s2_track_out *to, int64_t n_mem, int64_t n_low, int C, float *buf,
                      s2_frame_out *o) {
    o->pred_masks = buf, o->obj_ptr = buf + n_low;
    o->maskmem = (uint16_t *)(buf + n_low + C);
    memcpy(o->pred_masks, to->pred_masks, sizeof(float) * (size_t)n_low);
    memcpy(o->obj_ptr, to->obj_ptr, sizeof(float) * (size_t)C);
    s2_to_bf16(o->maskmem, to->maskmem, n_mem);
    o->object_score = to->object_score;
}

/* IoU of (x > 0) with gt over n pixels (1 when both are empty). */
static double mask_iou(const float *x, const uint8_t *gt, int64_t n) {
    int64_t i_ = 0, u = 0;
    for (int64_t i = 0; i < n; i++) {
        bool p = x[i] > 0.0f, g = gt[i] != 0;
        i_ += p && g, u += p || g;
    }
    return u ? (double)i_ / (double)u : 1.0;
}

// ref: sam2/sam2_video_predictor.py (one click on frame 0, propagate): the predictor's
// track step on every frame of clip v for object k; *J = mean IoU over frames 1..T-1
static int track_clip(vt_state *st, const s2_vclip *v, int k, const float xy[2],
                      const int32_t lab[1], double *J) {
    const sam2c_model *m = st->tp->m;
    const int C = m->cfg.d_model, h = s2_cfg_feat_side(&m->cfg), S = m->cfg.image_size, T = v->T;
    const int64_t n_mem = (int64_t)s2_memory_dim(m) * h * h, n_low = (int64_t)16 * h * h;
    const int64_t per = n_low + C + n_mem / 2 + 16;
    float *buf = s2_malloc(sizeof(float) * (size_t)(per * T + (int64_t)C * 20 * h * h));
    s2_frame_out *fo = s2_calloc((size_t)T, sizeof *fo);
    s2_frame_out **cond = s2_calloc((size_t)T, sizeof *cond), **nc = s2_calloc((size_t)T, sizeof *nc);
    int rc = buf && fo && cond && nc ? SAM2C_OK : SAM2C_ERR_NOMEM;
    s2_mem_bank bank = {T, cond, nc};
    double sum = 0.0;
    for (int t = 0; rc == SAM2C_OK && t < T; t++) {
        s2_backbone_out bb;
        float *hr = buf + per * T;
        frame_backbone(st, v, t, hr, hr + (int64_t)C * 16 * h * h, &bb);
        s2_track_in ti = {t, t == 0, &bb, t == 0 ? 1 : 0, xy, lab, NULL, &bank, T, false, true, NULL};
        s2_track_out to;
        rc = s2_track_step(&st->c, m, &ti, &to);
        if (rc == SAM2C_OK) {
            store_out(&to, n_mem, n_low, C, buf + per * t, &fo[t]);
            if (t == 0) cond[0] = &fo[0];
            else nc[t] = &fo[t];
            if (t > 0 || T == 1) sum += mask_iou(to.pred_masks_high_res, clip_gt(st, v, t, k), (int64_t)S * S);
        }
        s2_arena_reset(&st->scratch);
    }
    *J = T > 1 ? sum / (T - 1) : sum;
    free(buf), free(fo), free(cond), free(nc);
    return rc;
}

/* The official loss of clip v for object k with one click on frame 0 (eval mode). */
static int clip_loss(vt_state *st, const s2_vclip *v, int k, const float xy[2], double *loss) {
    const int T = v->T < S2_CLIP_MAX_FRAMES ? v->T : S2_CLIP_MAX_FRAMES;
    s2_clip_frame_in *fr = s2_calloc((size_t)T, sizeof *fr);
    if (!fr) return SAM2C_ERR_NOMEM;
    for (int t = 0; t < T; t++)
        fr[t] = (s2_clip_frame_in){.fpn = {v->fpn[3 * t], v->fpn[3 * t + 1], v->fpn[3 * t + 2]},
                                   .gt = clip_gt(st, v, t, k), .init_cond = t == 0,
                                   .n_pts = t == 0 ? 1 : 0, .xy = {xy[0], xy[1]}, .lab = {1}};
    s2_clip_in in = {.T = T, .f = fr, .pos = st->pos, .num_objects = 1.0, .eval = true};
    s2_clip_out out;
    int rc = s2_clip_step(&st->t, &st->lc, &in, false, &out);
    s2_arena_reset(&st->tape);
    *loss = out.loss.core;
    free(fr);
    return rc;
}

/* Validation: every validation clip, every object visible on its frame 0, one centre
 * click there, tracked to the end by the predictor. */
static int validate(vt_state *st, double *loss, double *miou) {
    const int S = st->base->cfg.image_size;
    double ls = 0.0, js = 0.0;
    int n = 0;
    for (int j = st->n_train; j < st->n_train + st->n_val; j++) {
        const s2_vclip *v = &st->clips[j];
        for (int k = 0; k < v->K; k++) {
            const uint8_t *g0 = clip_gt(st, v, 0, k);
            if (!visible(g0, (int64_t)S * S)) continue;
            float xy[2];
            int32_t lab[1];
            double J, L;
            S2_CHECK(s2_sample_point_center(g0, NULL, S, S, xy, lab));
            S2_CHECK(track_clip(st, v, k, xy, lab, &J));
            S2_CHECK(clip_loss(st, v, k, xy, &L));
            js += J, ls += L, n++;
        }
    }
    *loss = n ? ls / n : NAN;
    *miou = n ? js / n : NAN;
    return SAM2C_OK;
}

/* ============================ the loop ============================ */

/* One epoch over the training clips in a fresh random order. */
static int run_epoch(vt_state *st, int epoch, int64_t *step, int64_t total, s2_epoch_stats *es) {
    double t0 = s2_now_s();
    int *ord = s2_malloc(sizeof(int) * (size_t)st->n_train);
    if (!ord) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < st->n_train; i++) ord[i] = i;
    shuffle(ord, st->n_train, &st->rng);
    epoch_acc acc = {0};
    int rc = SAM2C_OK, n_steps = 0;
    double lr = st->p->lr;
    for (int i0 = 0; rc == SAM2C_OK && i0 < st->n_train; i0 += st->p->batch, n_steps++) {
        int n = st->n_train - i0 < st->p->batch ? st->n_train - i0 : st->p->batch;
        rc = train_step(st, ord + i0, n, (double)*step / (double)total, &acc, &lr);
        (*step)++;
    }
    free(ord);
    if (rc < 0) return rc;
    *es = (s2_epoch_stats){.epoch = epoch, .epochs = st->p->epochs, .n_steps = n_steps,
                           .train_loss = acc.loss / n_steps, .lr = lr, .grad_norm = acc.norm / n_steps,
                           .train_miou = acc.n_obj ? acc.iou / (double)acc.n_obj : NAN};
    es->train_parts = (s2_loss_parts){acc.parts.mask / n_steps, acc.parts.dice / n_steps,
                                      acc.parts.iou / n_steps, acc.parts.cls / n_steps,
                                      acc.parts.core / n_steps};
    S2_CHECK(validate(st, &es->val_loss, &es->val_miou));
    es->seconds = s2_now_s() - t0;
    return SAM2C_OK;
}

/* Data, cache, trainable copy (memory + heads), optimizer, loss. */
static int setup(vt_state *st) {
    const s2_config *cfg = &st->base->cfg;
    st->hist = s2_calloc((size_t)st->p->epochs + 1, sizeof *st->hist);
    st->pos = s2_aligned_alloc(sizeof(float) * (size_t)cfg->d_model * s2_cfg_feat_side(cfg) * s2_cfg_feat_side(cfg));
    if (!st->hist || !st->pos) return SAM2C_ERR_NOMEM;
    S2_CHECK(s2_arena_init(&st->scratch, (size_t)1 << 24));
    S2_CHECK(s2_arena_init(&st->tape, (size_t)1 << 24));
    st->c = (s2_ctx){.be = NULL, .scratch = &st->scratch};
    S2_CHECK(load_split(st));
    if (st->n_train < 1) return s2_err(SAM2C_ERR_ARG, "video finetune: no training clips");
    S2_CHECK(s2_trainable_create_sel(st->base, S2_TRAIN_MEMORY | S2_TRAIN_HEADS, &st->tp));
    S2_CHECK(s2_adamw_init(&st->opt, st->tp, st->p->weight_decay));
    st->t = (s2_tctx){.c = &st->c, .tape = {.scratch = &st->tape}, .m = st->tp->m, .p = st->tp};
    s2_loss_cfg_default(&st->lc);
    st->lc.pred_obj_scores = cfg->pred_obj_scores;
    st->lc.w_mask = (float)st->p->w_focal, st->lc.w_dice = (float)st->p->w_dice;
    return SAM2C_OK;
}

/* Frees everything setup() built (safe on a partial setup). */
static void teardown(vt_state *st) {
    for (int j = 0; st->clips && j < st->n_train + st->n_val; j++) s2_vclip_free(&st->clips[j]);
    free(st->clips);
    s2_aligned_free(st->pos);
    s2_adamw_free(&st->opt);
    s2_arena_free(&st->scratch);
    s2_arena_free(&st->tape);
    free(st->hist);
}

/* Writes the checkpoint of epoch e (weights, moments, step, RNG, history). */
static int save_ckpt(vt_state *st, int e, int64_t step) {
    s2_ft_ckpt ck = {.epoch = e, .step = step, .rng = st->rng, .seed = st->p->seed,
                     .n_train = st->n_train, .n_val = st->n_val, .n_hist = e + 1,
                     .hist = st->hist, .modules = st->tp->modules};
    return s2_ft_ckpt_save(st->p->ckpt_path, st->tp, &st->opt, &ck);
}

/* Restores the state saved after the checkpoint's epoch; replays its history. */
static int resume(vt_state *st, int *e0, int64_t *step) {
    s2_ft_ckpt ck;
    S2_CHECK(s2_ft_ckpt_load(st->p->ckpt_path, st->tp, &st->opt, &ck));
    int rc = SAM2C_OK;
    if (ck.seed != st->p->seed)
        rc = s2_err(SAM2C_ERR_ARG, "%s: the checkpoint was made with seed %llu, not %llu",
                    st->p->ckpt_path, (unsigned long long)ck.seed, (unsigned long long)st->p->seed);
    else if (ck.n_train != st->n_train || ck.n_val != st->n_val)
        rc = s2_err(SAM2C_ERR_ARG, "%s: the checkpoint was made on %d training / %d validation clips, not %d / %d",
                    st->p->ckpt_path, ck.n_train, ck.n_val, st->n_train, st->n_val);
    else if (ck.epoch > st->p->epochs)
        rc = s2_err(SAM2C_ERR_ARG, "%s: the checkpoint is at epoch %d, beyond the %d requested",
                    st->p->ckpt_path, ck.epoch, st->p->epochs);
    for (int e = 0; rc == SAM2C_OK && e < ck.n_hist; e++) {
        st->hist[e] = ck.hist[e];
        st->hist[e].epochs = st->p->epochs;
        if (st->p->progress) st->p->progress(st->p->user, &st->hist[e]);
    }
    if (rc == SAM2C_OK) {
        st->rng = ck.rng, *e0 = ck.epoch, *step = ck.step;
        logf_(st, "resumed from %s after epoch %d", st->p->ckpt_path, ck.epoch);
    }
    s2_ft_ckpt_free(&ck);
    return rc;
}

// ref: training/trainer.py Trainer.run (train_only: epochs of training + validation)
int s2_video_finetune(const sam2c_model *m, const s2_video_finetune_params *p,
                      s2_trainable **out) {
    if (!out) return s2_err(SAM2C_ERR_ARG, "video finetune: no output");
    *out = NULL;
    S2_CHECK(check_params(m, p));
    vt_state st = {.base = m, .p = p, .rng = p->seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull};
    int rc = setup(&st), e0 = 0;
    int64_t step = 0, total = (int64_t)p->epochs * ((st.n_train + p->batch - 1) / p->batch);
    if (rc == SAM2C_OK && p->resume) {
        rc = resume(&st, &e0, &step);
    } else if (rc == SAM2C_OK) {
        st.hist[0] = (s2_epoch_stats){.epoch = 0, .epochs = p->epochs, .train_loss = NAN,
                                      .train_miou = NAN, .lr = NAN, .grad_norm = NAN};
        double t0 = s2_now_s();
        rc = validate(&st, &st.hist[0].val_loss, &st.hist[0].val_miou);
        st.hist[0].seconds = s2_now_s() - t0;
        if (rc == SAM2C_OK && p->progress) p->progress(p->user, &st.hist[0]);
    }
    for (int e = e0 + 1; rc == SAM2C_OK && e <= p->epochs; e++) {
        rc = run_epoch(&st, e, &step, total, &st.hist[e]);
        if (rc == SAM2C_OK && p->ckpt_path) rc = save_ckpt(&st, e, step);
        if (rc == SAM2C_OK && p->progress) p->progress(p->user, &st.hist[e]);
    }
    if (rc == SAM2C_OK) *out = st.tp, st.tp = NULL;
    s2_trainable_free(st.tp);
    teardown(&st);
    return rc;
}
