/* The fine-tuning loop: dataset split, frozen-encoder feature cache (one entry per image
 * and augmented copy), epochs of simulated-prompt samples, gradient accumulation over
 * a batch of images, clipping, AdamW on a cosine schedule, validation, checkpoint.
 * Letters: S model input side, K objects of an image, B objects of one sample.
 * ref: training/trainer.py (train loop, clipping, where = progress), training/model/
 *      sam2.py SAM2Train.prepare_prompt_inputs (prompt choice for static images) */
#include "train/finetune.h"
#include "train/step.h"
#include "train/ckpt.h"
#include "train/encoder_train.h"
#include "io/tensorfile.h"
#include "model/image_encoder.h"
#include "predict/preprocess.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The sam2.1 training YAML where it applies, a few-shot learning rate and sizes. */
void s2_finetune_default(s2_finetune_params *p) {
    *p = (s2_finetune_params){.epochs = 10, .lr = 1e-4, .lr_end = -1.0, .weight_decay = 0.1,
                              .clip = 0.1, .batch = 1, .val_split = 0.2, .seed = 0,
                              .n_correct = 7, .augment = 3, .max_objects = 3, .prob_box = 0.5,
                              .prob_from_gt = 0.1, .w_focal = 20.0, .w_dice = 1.0};
    s2_aug_default(&p->aug);
}

/* Cached encoder output (frozen encoder) or image (trained encoder) of one image
 * variant and its masks at S x S. */
typedef struct cache_item {
    float *feat;           /* the three neck levels, contiguous (owned), or NULL */
    const float *fpn[3];   /* (C,4h,4w), (C,2h,2w), (C,h,w) into feat */
    s2_image im;           /* the variant's pixels (owned) when the encoder trains */
    uint8_t *gt;           /* [K, S, S] (owned) */
    int K;
} cache_item;

typedef struct cache_img {
    cache_item *v;
    int n_var;
} cache_img;

typedef struct ft_state {
    const sam2c_model *base;
    const s2_finetune_params *p;
    s2_dataset ds;
    int *order, n_train, n_val;        /* order[0..n_train) train, then val */
    cache_img *cache;                  /* [n_train + n_val] in order's order */
    float *bb_buf, *img_buf;           /* encoder output / input scratch */
    s2_arena scratch, tape;
    s2_ctx c;
    s2_trainable *tp;
    s2_adamw opt;
    s2_tctx t;
    bool enc;                          /* the encoder trains: no feature cache */
    s2_enc_tape *et;                   /* its activations of the current sample */
    uint64_t rng;
    s2_loss_cfg lc;
    size_t cache_bytes;
    s2_epoch_stats *hist;              /* [epochs + 1]: epoch 0 = before training */
} ft_state;

/* Sends one formatted message to the log callback. */
static void logf_(const ft_state *st, const char *fmt, ...) S2_PRINTF(2, 3);
static void logf_(const ft_state *st, const char *fmt, ...) {
    if (!st->p->log) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st->p->log(st->p->user, msg);
}

/* Checks the parameters before anything is loaded. */
static int check_params(const sam2c_model *m, const s2_finetune_params *p) {
    if (!m || !p || !p->data_dir) return s2_err(SAM2C_ERR_ARG, "finetune: no model or data folder");
    if (p->epochs < 0 || p->epochs > 100000) return s2_err(SAM2C_ERR_ARG, "finetune: epochs %d not in [0, 100000]", p->epochs);
    if (!(p->lr > 0.0) || p->lr > 1.0) return s2_err(SAM2C_ERR_ARG, "finetune: learning rate %g not in (0, 1]", p->lr);
    if (!(p->lr_encoder <= 1.0)) return s2_err(SAM2C_ERR_ARG, "finetune: encoder learning rate %g not <= 1", p->lr_encoder);
    if (p->batch < 1 || p->batch > 4096) return s2_err(SAM2C_ERR_ARG, "finetune: batch %d not in [1, 4096]", p->batch);
    if (!(p->val_split >= 0.0 && p->val_split < 1.0)) return s2_err(SAM2C_ERR_ARG, "finetune: val split %g not in [0, 1)", p->val_split);
    if (p->n_correct < 0 || p->n_correct > 64) return s2_err(SAM2C_ERR_ARG, "finetune: %d corrective clicks not in [0, 64]", p->n_correct);
    if (p->augment < 0 || p->augment > 256) return s2_err(SAM2C_ERR_ARG, "finetune: %d augmented copies not in [0, 256]", p->augment);
    if (p->max_objects < 1 || p->max_objects > 64) return s2_err(SAM2C_ERR_ARG, "finetune: max objects %d not in [1, 64]", p->max_objects);
    if (!(p->w_focal >= 0.0 && p->w_focal <= 1e4 && p->w_dice >= 0.0 && p->w_dice <= 1e4))
        return s2_err(SAM2C_ERR_ARG, "finetune: loss weights %g, %g not in [0, 1e4]", p->w_focal, p->w_dice);
    if (p->lora < 0 || p->lora > 4096) return s2_err(SAM2C_ERR_ARG, "finetune: LoRA rank %d not in [0, 4096]", p->lora);
    if (!(p->lora_alpha <= 1e6)) return s2_err(SAM2C_ERR_ARG, "finetune: LoRA alpha %g not <= 1e6", p->lora_alpha);
    if (p->modules & ~(unsigned)(S2_TRAIN_HEADS | S2_TRAIN_IMAGE_ENCODER | S2_TRAIN_MEMORY))
        return s2_err(SAM2C_ERR_ARG, "finetune: unknown module flags 0x%x", p->modules);
    if (p->modules & S2_TRAIN_MEMORY)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "finetune: the memory modules train on video clips, "
                      "not on images (train prompt_encoder, mask_decoder, image_encoder or LoRA)");
    if (p->resume && !p->ckpt_path) return s2_err(SAM2C_ERR_ARG, "finetune: resume needs a checkpoint path");
    if (!m->cfg.use_high_res_features_in_sam)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "finetune: models without high-res features are not supported");
    return SAM2C_OK;
}

/* Shuffles a[0..n) with the state's generator (Fisher-Yates). */
static void shuffle(int *a, int n, uint64_t *rng) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)s2_rng_below(rng, i + 1), t = a[i];
        a[i] = a[j], a[j] = t;
    }
}

/* ============================ feature cache ============================ */

/* Keeps one image variant (u8 RGB, ownership taken) + masks [K, h, w] for a trained
 * encoder. */
static int keep_variant(ft_state *st, s2_image *img, const uint8_t *masks, int K,
                        cache_item *out) {
    int S = st->base->cfg.image_size;
    out->gt = s2_malloc((size_t)K * S * S);
    if (!out->gt) return SAM2C_ERR_NOMEM;
    s2_masks_resize_nearest(out->gt, S, S, masks, img->h, img->w, K);
    out->im = *img;
    *img = (s2_image){0};
    out->K = K;
    st->cache_bytes += (size_t)out->im.w * out->im.h * 3 + (size_t)K * S * S;
    return SAM2C_OK;
}

/* Encodes one image variant (u8 RGB + masks [K, h, w]) into a cache item. */
static int encode_variant(ft_state *st, const s2_image *img, const uint8_t *masks, int K,
                          cache_item *out) {
    const s2_config *cfg = &st->base->cfg;
    int S = cfg->image_size, h = s2_cfg_feat_side(cfg), C = cfg->d_model;
    s2_backbone_out bb;
    s2_backbone_out_carve(cfg, st->bb_buf, &bb);
    S2_CHECK(s2_preprocess_image(st->img_buf, img->px, img->w, img->h, S));
    int rc = s2_image_encoder_forward(&st->c, st->base, st->img_buf, &bb);
    s2_arena_reset(&st->scratch);
    if (rc < 0) return rc;
    if (bb.n_levels < 3 || bb.h[2] != h || bb.h[1] != 2 * h || bb.h[0] != 4 * h)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "finetune: neck levels do not match the decoder");
    int64_t n[3] = {(int64_t)C * 16 * h * h, (int64_t)C * 4 * h * h, (int64_t)C * h * h};
    out->feat = s2_aligned_alloc(sizeof(float) * (size_t)(n[0] + n[1] + n[2]));
    out->gt = s2_malloc((size_t)K * S * S);
    if (!out->feat || !out->gt) return SAM2C_ERR_NOMEM;
    float *cur = out->feat;
    for (int k = 0; k < 3; k++) {
        memcpy(cur, bb.fpn[k], sizeof(float) * (size_t)n[k]);
        out->fpn[k] = cur;
        cur += n[k];
    }
    s2_masks_resize_nearest(out->gt, S, S, masks, img->h, img->w, K);
    out->K = K;
    st->cache_bytes += sizeof(float) * (size_t)(n[0] + n[1] + n[2]) + (size_t)K * S * S;
    return SAM2C_OK;
}

/* Loads image order[j] and caches its variants (training images: 1 + augment). */
static int cache_image(ft_state *st, int j) {
    const s2_ds_image *e = &st->ds.im[st->order[j]];
    bool train = j < st->n_train;
    int nv = train ? 1 + st->p->augment : 1;
    cache_img *ci = &st->cache[j];
    ci->v = s2_calloc((size_t)nv, sizeof *ci->v);
    if (!ci->v) return SAM2C_ERR_NOMEM;
    s2_image img;
    S2_CHECK(s2_dataset_image(&st->ds, st->order[j], &img));
    int rc = SAM2C_OK;
    for (int v = 0; rc == SAM2C_OK && v < nv; v++) {
        if (v == 0 && st->enc) {
            s2_image cp = {img.w, img.h, s2_malloc((size_t)img.w * img.h * 3)};
            rc = cp.px ? SAM2C_OK : SAM2C_ERR_NOMEM;
            if (rc == SAM2C_OK) memcpy(cp.px, img.px, (size_t)img.w * img.h * 3);
            if (rc == SAM2C_OK) rc = keep_variant(st, &cp, e->masks, e->n_obj, &ci->v[0]);
            s2_image_free(&cp);
        } else if (v == 0) {
            rc = encode_variant(st, &img, e->masks, e->n_obj, &ci->v[0]);
        } else {
            s2_image ai = {0};
            uint8_t *am = NULL;
            rc = s2_augment(&img, e->masks, e->n_obj, &st->p->aug, &st->rng, &ai, &am);
            if (rc == SAM2C_OK)
                rc = st->enc ? keep_variant(st, &ai, am, e->n_obj, &ci->v[v])
                             : encode_variant(st, &ai, am, e->n_obj, &ci->v[v]);
            s2_image_free(&ai);
            free(am);
        }
        if (rc == SAM2C_OK) ci->n_var = v + 1;
    }
    s2_image_free(&img);
    return rc;
}

/* Encodes every image (and augmented copy) once; training reads only the cache. */
static int build_cache(ft_state *st) {
    const s2_config *cfg = &st->base->cfg;
    size_t nbb = s2_backbone_out_floats(cfg);
    if (!nbb) return s2_err(SAM2C_ERR_UNSUPPORTED, "finetune: encoder layout not supported");
    st->bb_buf = st->enc ? NULL : s2_aligned_alloc(sizeof(float) * nbb); // frozen encoder only
    st->img_buf = s2_aligned_alloc(sizeof(float) * 3 * (size_t)cfg->image_size * cfg->image_size);
    st->cache = s2_calloc((size_t)(st->n_train + st->n_val), sizeof *st->cache);
    if ((!st->enc && !st->bb_buf) || !st->img_buf || !st->cache) return SAM2C_ERR_NOMEM;
    for (int j = 0; j < st->n_train + st->n_val; j++) {
        logf_(st, "%s image %d/%d (%s)", st->enc ? "loading" : "encoding", j + 1,
              st->n_train + st->n_val, st->ds.im[st->order[j]].path);
        S2_CHECK(cache_image(st, j));
    }
    logf_(st, "%s: %d train images x %d variants, %d val images, %.1f MB",
          st->enc ? "image cache (the encoder trains: encoded per sample)" : "feature cache",
          st->n_train, 1 + st->p->augment, st->n_val, (double)st->cache_bytes / 1048576.0);
    return SAM2C_OK;
}

/* The neck levels of a variant: cached, or the trained encoder's forward on the tape
 * (activations kept in st->et for the backward). */
static int variant_feats(ft_state *st, const cache_item *it, const float *fpn[3]) {
    if (!st->enc) {
        for (int k = 0; k < 3; k++) fpn[k] = it->fpn[k];
        return SAM2C_OK;
    }
    S2_CHECK(s2_preprocess_image(st->img_buf, it->im.px, it->im.w, it->im.h, st->base->cfg.image_size));
    S2_CHECK(s2_encoder_forward_train(&st->t, st->img_buf, st->et));
    for (int k = 0; k < 3; k++) fpn[k] = st->et->out[k];
    return SAM2C_OK;
}

/* Zeroed tape buffers for the gradients of the three neck levels. */
static void feat_grads(ft_state *st, float *d[3]) {
    const s2_hiera_geom *g = &st->et->g;
    for (int k = 0; k < 3; k++) {
        int64_t n = (int64_t)st->et->D * g->lh[k] * g->lw[k];
        d[k] = s2_tape_f32(&st->t, n);
        memset(d[k], 0, sizeof(float) * (size_t)n);
    }
}

/* ============================ training ============================ */

/* Random prompt of B objects as SAM2Train on a static image: with prob_box a noisy box
 * (2 corners) for every object, else one click uniform inside each mask. */
static int random_prompt(ft_state *st, const uint8_t *gt, int B, int S, float *xy, int32_t *lab) {
    bool box = s2_rng_uniform(&st->rng) < st->p->prob_box;
    for (int b = 0; b < B; b++) {
        const uint8_t *g = gt + (int64_t)b * S * S;
        if (box) s2_sample_box(g, S, S, &st->rng, xy + 4 * b, lab + 2 * b);
        else s2_sample_point_uniform(g, NULL, S, S, &st->rng, xy + 2 * b, lab + b);
    }
    return box ? 2 : 1;
}

/* Sums of one epoch. */
typedef struct epoch_acc {
    double loss, norm, iou;
    s2_loss_parts parts;
    int64_t n_obj;
} epoch_acc;

/* One training sample: image variant, up to max_objects objects, prompts, passes,
 * gradients added. */
static int train_image(ft_state *st, const cache_img *ci, double num_objects, epoch_acc *acc) {
    int S = st->base->cfg.image_size;
    int64_t SS = (int64_t)S * S;
    const cache_item *it = &ci->v[s2_rng_below(&st->rng, ci->n_var)];
    int B = it->K < st->p->max_objects ? it->K : st->p->max_objects;
    int *idx = (int *)s2_tape_f32(&st->t, it->K); // the first B of a partial shuffle
    for (int k = 0; k < it->K; k++) idx[k] = k;
    for (int k = 0; k < B; k++) {
        int j = k + (int)s2_rng_below(&st->rng, it->K - k), tmp = idx[k];
        idx[k] = idx[j], idx[j] = tmp;
    }
    uint8_t *gt = (uint8_t *)s2_tape_f32(&st->t, (B * SS) / 4 + 1);
    for (int b = 0; b < B; b++) memcpy(gt + b * SS, it->gt + (int64_t)idx[b] * SS, (size_t)SS);
    float xy[64 * 4];
    int32_t lab[64 * 2];
    int N0 = random_prompt(st, gt, B, S, xy, lab);
    const float *fpn[3];
    int rc = variant_feats(st, it, fpn);
    s2_sample_in in = {.fpn = {fpn[0], fpn[1], fpn[2]}, .B = B, .gt = gt, .N0 = N0,
                       .coords = xy, .labels = lab, .n_correct = st->p->n_correct,
                       .prob_from_gt = st->p->prob_from_gt, .rng = &st->rng,
                       .num_objects = num_objects};
    if (rc == SAM2C_OK && st->enc) feat_grads(st, in.d_fpn);
    s2_sample_out out;
    if (rc == SAM2C_OK) rc = s2_train_sample(&st->t, &st->lc, &in, true, &out);
    if (rc == SAM2C_OK && st->enc)
        s2_encoder_backward(&st->t, st->et, (const float *const[4]){in.d_fpn[0], in.d_fpn[1], in.d_fpn[2], NULL});
    s2_arena_reset(&st->tape);
    if (rc < 0) return rc;
    acc->loss += out.loss.core;
    acc->parts.mask += out.loss.mask, acc->parts.dice += out.loss.dice;
    acc->parts.iou += out.loss.iou, acc->parts.cls += out.loss.cls, acc->parts.core += out.loss.core;
    acc->iou += out.iou_last * B;
    acc->n_obj += B;
    return SAM2C_OK;
}

/* One optimizer step over images order[i0 .. i0 + n). */
static int train_step(ft_state *st, const int *imgs, int n, double where, epoch_acc *acc,
                      double *lr) {
    s2_trainable_zero_grad(st->tp);
    double num_objects = 0.0;
    for (int i = 0; i < n; i++) {
        int K = st->cache[imgs[i]].v[0].K;
        num_objects += K < st->p->max_objects ? K : st->p->max_objects;
    }
    for (int i = 0; i < n; i++) S2_CHECK(train_image(st, &st->cache[imgs[i]], num_objects, acc));
    double norm = st->p->clip > 0.0 ? s2_clip_grad_norm(st->tp, st->p->clip)
                                    : s2_clip_grad_norm(st->tp, INFINITY);
    double end = st->p->lr_end >= 0.0 ? st->p->lr_end : st->p->lr / 10.0;
    *lr = s2_cosine_schedule(st->p->lr, end, where);
    s2_adamw_step(&st->opt, st->tp, *lr);
    acc->norm += norm;
    return SAM2C_OK;
}

/* Validation: one centre click per object (the official evaluation click), no
 * corrections; mean core loss per object and mean IoU of the best-IoU mask. */
static int validate(ft_state *st, double *loss, double *miou) {
    int S = st->base->cfg.image_size, CH = st->p->max_objects;
    int64_t SS = (int64_t)S * S, n_obj = 0;
    double ls = 0.0, is = 0.0;
    for (int j = st->n_train; j < st->n_train + st->n_val; j++) {
        const cache_item *it = &st->cache[j].v[0];
        const float *fpn[3];
        int rc = variant_feats(st, it, fpn);
        if (rc < 0) {
            s2_arena_reset(&st->tape);
            return rc;
        }
        s2_arena_mark mark = s2_arena_get_mark(&st->tape);
        for (int o0 = 0; o0 < it->K; o0 += CH) {
            int B = it->K - o0 < CH ? it->K - o0 : CH;
            float xy[128];
            int32_t lab[64];
            for (int b = 0; b < B; b++)
                S2_CHECK(s2_sample_point_center(it->gt + (int64_t)(o0 + b) * SS, NULL, S, S,
                                                xy + 2 * b, lab + b));
            s2_sample_in in = {.fpn = {fpn[0], fpn[1], fpn[2]}, .B = B,
                               .gt = it->gt + (int64_t)o0 * SS, .N0 = 1, .coords = xy,
                               .labels = lab, .num_objects = B};
            s2_sample_out out;
            rc = s2_train_sample(&st->t, &st->lc, &in, false, &out);
            s2_arena_release(&st->tape, mark);
            if (rc < 0) break;
            ls += out.loss.core * B, is += out.iou_first * B, n_obj += B;
        }
        s2_arena_reset(&st->tape);
        if (rc < 0) return rc;
    }
    *loss = n_obj ? ls / (double)n_obj : NAN;
    *miou = n_obj ? is / (double)n_obj : NAN;
    return SAM2C_OK;
}

/* One epoch over the training images in a fresh random order. */
static int run_epoch(ft_state *st, int epoch, int64_t *step, int64_t total, s2_epoch_stats *es) {
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
                           .train_loss = acc.loss / n_steps, .lr = lr,
                           .grad_norm = acc.norm / n_steps,
                           .train_miou = acc.n_obj ? acc.iou / (double)acc.n_obj : NAN};
    es->train_parts = (s2_loss_parts){acc.parts.mask / n_steps, acc.parts.dice / n_steps,
                                      acc.parts.iou / n_steps, acc.parts.cls / n_steps,
                                      acc.parts.core / n_steps};
    S2_CHECK(validate(st, &es->val_loss, &es->val_miou));
    es->seconds = s2_now_s() - t0;
    return SAM2C_OK;
}

/* Appends the images of b to a (b is emptied). */
static int dataset_append(s2_dataset *a, s2_dataset *b) {
    s2_ds_image *im = s2_realloc(a->im, sizeof *im * (size_t)(a->n + b->n + 1));
    if (!im) return SAM2C_ERR_NOMEM;
    memcpy(im + a->n, b->im, sizeof *im * (size_t)b->n);
    a->im = im, a->n += b->n, a->n_skipped += b->n_skipped;
    free(b->im);
    *b = (s2_dataset){0};
    return SAM2C_OK;
}

/* Loads the data and splits it: a separate validation folder, or a random val_split
 * of data_dir. order[0..n_train) are training images, the rest validation images. */
static int load_split(ft_state *st) {
    S2_CHECK(s2_dataset_load(st->p->data_dir, &st->ds));
    int n_tr = st->ds.n;
    if (st->p->val_dir) {
        s2_dataset v;
        S2_CHECK(s2_dataset_load(st->p->val_dir, &v));
        int rc = dataset_append(&st->ds, &v);
        s2_dataset_free(&v);
        if (rc < 0) return rc;
    }
    int n = st->ds.n;
    st->order = s2_malloc(sizeof(int) * (size_t)n);
    if (!st->order) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < n; i++) st->order[i] = i;
    if (st->p->val_dir) {
        st->n_train = n_tr, st->n_val = n - n_tr;
        logf_(st, "%s: %d training images, %s: %d validation images (%s)%s", st->p->data_dir,
              n_tr, st->p->val_dir, n - n_tr, st->ds.source,
              st->ds.n_skipped ? " (images without masks skipped)" : "");
        return SAM2C_OK;
    }
    shuffle(st->order, n, &st->rng);
    st->n_val = (int)lround(st->p->val_split * n);
    if (st->n_val >= n) st->n_val = n - 1;
    st->n_train = n - st->n_val;
    logf_(st, "%s: %d images with masks (%s), %d for training, %d for validation%s",
          st->p->data_dir, n, st->ds.source, st->n_train, st->n_val,
          st->ds.n_skipped ? " (images without masks skipped)" : "");
    return SAM2C_OK;
}

/* Checks that the kept neck levels are the 4h, 2h, h maps the decoder reads. */
static int check_levels(const s2_config *cfg) {
    s2_hiera_geom g;
    S2_CHECK(s2_hiera_geom_init(cfg, &g));
    int h = s2_cfg_feat_side(cfg);
    if (g.n_stages - cfg->scalp < 3 || g.lh[2] != h || g.lh[1] != 2 * h || g.lh[0] != 4 * h)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "finetune: neck levels do not match the decoder");
    return SAM2C_OK;
}

/* The trainable set: dense modules (default heads) and LoRA adapters. */
static int make_trainable(ft_state *st) {
    unsigned mods = st->p->modules ? st->p->modules : (unsigned)S2_TRAIN_HEADS;
    S2_CHECK(s2_trainable_create_lora(st->base, mods, st->p->lora, st->p->lora_alpha,
                                      st->p->seed, &st->tp));
    st->enc = s2_trainable_has_encoder(st->tp);
    if (st->enc && !(st->et = s2_calloc(1, sizeof *st->et))) return SAM2C_ERR_NOMEM;
    if (st->enc)
        logf_(st, "training %d tensors (%lld values)%s; the image encoder runs forward + backward per sample",
              st->tp->n_train, (long long)st->tp->n_flat,
              st->tp->n_lora ? " incl. LoRA adapters" : "");
    return SAM2C_OK;
}

/* Dataset, split, trainable copy, cache, optimizer. */
static int setup(ft_state *st) {
    S2_CHECK(check_levels(&st->base->cfg));
    S2_CHECK(load_split(st));
    st->hist = s2_calloc((size_t)st->p->epochs + 1, sizeof *st->hist);
    if (!st->hist) return SAM2C_ERR_NOMEM;
    S2_CHECK(s2_arena_init(&st->scratch, (size_t)1 << 24));
    S2_CHECK(s2_arena_init(&st->tape, (size_t)1 << 24));
    st->c = (s2_ctx){.be = NULL, .scratch = &st->scratch};
    S2_CHECK(make_trainable(st));
    S2_CHECK(build_cache(st));
    S2_CHECK(s2_adamw_init(&st->opt, st->tp, st->p->weight_decay));
    if (st->enc && st->p->lr_encoder > 0.0)
        S2_CHECK(s2_adamw_set_lr_scale(&st->opt, st->tp, "image_encoder.", st->p->lr_encoder / st->p->lr));
    st->t = (s2_tctx){.c = &st->c, .tape = {.scratch = &st->tape}, .m = st->tp->m, .p = st->tp};
    s2_loss_cfg_default(&st->lc);
    st->lc.pred_obj_scores = st->base->cfg.pred_obj_scores;
    st->lc.w_mask = (float)st->p->w_focal, st->lc.w_dice = (float)st->p->w_dice;
    return SAM2C_OK;
}

/* Frees everything setup() built (safe on a partial setup). */
static void teardown(ft_state *st) {
    for (int j = 0; st->cache && j < st->n_train + st->n_val; j++) {
        for (int v = 0; v < st->cache[j].n_var; v++) {
            s2_aligned_free(st->cache[j].v[v].feat);
            free(st->cache[j].v[v].gt);
            s2_image_free(&st->cache[j].v[v].im);
        }
        free(st->cache[j].v);
    }
    free(st->cache);
    free(st->order);
    s2_aligned_free(st->bb_buf);
    s2_aligned_free(st->img_buf);
    s2_adamw_free(&st->opt);
    s2_arena_free(&st->scratch);
    s2_arena_free(&st->tape);
    s2_dataset_free(&st->ds);
    free(st->hist);
    free(st->et);
}

/* Writes the checkpoint of epoch e (weights, moments, step, RNG, history). */
static int save_ckpt(ft_state *st, int e, int64_t step) {
    s2_ft_ckpt ck = {.epoch = e, .step = step, .rng = st->rng, .seed = st->p->seed,
                     .n_train = st->n_train, .n_val = st->n_val, .n_hist = e + 1,
                     .hist = st->hist, .modules = st->tp->modules,
                     .lora_rank = st->tp->lora_rank, .lora_alpha = st->tp->lora_alpha};
    return s2_ft_ckpt_save(st->p->ckpt_path, st->tp, &st->opt, &ck);
}

/* Restores the state saved after the checkpoint's epoch; the history is replayed
 * through the progress callback. Sets *e0 to the epochs done and *step. */
static int resume(ft_state *st, int *e0, int64_t *step) {
    s2_ft_ckpt ck;
    S2_CHECK(s2_ft_ckpt_load(st->p->ckpt_path, st->tp, &st->opt, &ck));
    int rc = SAM2C_OK;
    if (ck.seed != st->p->seed)
        rc = s2_err(SAM2C_ERR_ARG, "%s: the checkpoint was made with seed %llu, not %llu",
                    st->p->ckpt_path, (unsigned long long)ck.seed, (unsigned long long)st->p->seed);
    else if (ck.n_train != st->n_train || ck.n_val != st->n_val)
        rc = s2_err(SAM2C_ERR_ARG, "%s: the checkpoint was made on %d training / %d validation images, not %d / %d",
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

/* Epoch 0 validates the starting weights (or a checkpoint is resumed), then epochs of
 * training + validation, each followed by a checkpoint when asked. */
int s2_finetune(const sam2c_model *m, const s2_finetune_params *p, s2_trainable **out) {
    *out = NULL;
    S2_CHECK(check_params(m, p));
    uint64_t mix = p->seed ^ 0x5851f42d4c957f2dull; // hashed: seeds s and s + 1 must not
    ft_state st = {.base = m, .p = p, .rng = s2_rng_next(&mix)}; // share one shifted stream
    int rc = setup(&st), e0 = 0;
    int64_t step = 0, total = (int64_t)p->epochs * ((st.n_train + p->batch - 1) / p->batch);
    if (rc == SAM2C_OK && p->resume) {
        rc = resume(&st, &e0, &step);
    } else if (rc == SAM2C_OK) {
        st.hist[0] = (s2_epoch_stats){.epoch = 0, .epochs = p->epochs, .train_loss = NAN,
                                      .train_miou = NAN, .lr = NAN, .grad_norm = NAN};
        rc = validate(&st, &st.hist[0].val_loss, &st.hist[0].val_miou);
        if (rc == SAM2C_OK && p->progress) p->progress(p->user, &st.hist[0]);
    }
    for (int e = e0 + 1; rc == SAM2C_OK && e <= p->epochs; e++) {
        rc = run_epoch(&st, e, &step, total, &st.hist[e]);
        if (rc == SAM2C_OK && p->ckpt_path) rc = save_ckpt(&st, e, step);
        if (rc == SAM2C_OK && p->progress) p->progress(p->user, &st.hist[e]);
    }
    if (rc == SAM2C_OK) rc = s2_lora_merge(st.tp);
    if (rc == SAM2C_OK) *out = st.tp, st.tp = NULL;
    s2_trainable_free(st.tp);
    teardown(&st);
    return rc;
}

/* The same layout `sam2c convert` writes: every tensor f32, config in the metadata. */
int s2_trainable_save(const s2_trainable *t, const char *path, const char *const *meta_kv,
                      int n_meta) {
    const sam2c_model *m = t->m;
    int n = t->n_base_w ? t->n_base_w : m->n_w;
    int64_t nm = 0; // floats of the merged copies of adapted weights
    for (int i = 0; i < t->n_lora && !t->lora_merged; i++)
        nm += (s2_tensor_numel(&m->w[t->lora[i].target].t) + 15) & ~(int64_t)15;
    s2_st_item *items = s2_calloc((size_t)n, sizeof *items);
    const char **meta = s2_calloc((size_t)(2 * n_meta + 6), sizeof *meta);
    char *cfg = s2_config_to_json(&m->cfg);
    float *mbuf = nm ? s2_aligned_alloc(sizeof(float) * (size_t)nm) : NULL;
    int rc = (!items || !meta || !cfg || (nm && !mbuf)) ? s2_err(SAM2C_ERR_NOMEM, "%s: out of memory", path) : SAM2C_OK;
    int64_t off = 0;
    for (int i = 0; rc == SAM2C_OK && i < n; i++) {
        items[i] = (s2_st_item){.name = m->w[i].name, .t = m->w[i].t};
        const float *d = s2_lora_merged_data(t, i, mbuf ? mbuf + off : NULL);
        if (d != m->w[i].t.data) {
            items[i].t.data = (void *)d;
            off += (s2_tensor_numel(&m->w[i].t) + 15) & ~(int64_t)15;
        }
    }
    if (rc == SAM2C_OK) {
        const char *base[6] = {"sam2c_config", cfg, "format", "pt", "source", "sam2c finetune"};
        memcpy(meta, base, sizeof base);
        for (int i = 0; i < 2 * n_meta; i++) meta[6 + i] = meta_kv[i];
        rc = s2_safetensors_write(path, items, n, meta, 3 + n_meta);
    }
    s2_aligned_free(mbuf);
    free(items);
    free(meta);
    free(cfg);
    return rc;
}
