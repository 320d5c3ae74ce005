/* The official training loss of SAM 2 (MultiStepMultiMasksAndIous) with its gradient.
 * ref: training/loss_fns.py */
#ifndef S2_TRAIN_LOSS_H
#define S2_TRAIN_LOSS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct s2_loss_cfg {
    float w_mask, w_dice, w_iou, w_class;     /* weight_dict */
    float focal_alpha, focal_gamma;           /* mask focal loss */
    bool supervise_all_iou, iou_use_l1;
    bool pred_obj_scores;
    float focal_alpha_obj, focal_gamma_obj;   /* object-score loss (alpha < 0: none) */
} s2_loss_cfg;

/* The sam2.1 training YAML: weights 20 / 1 / 1 / 1, focal alpha 0.25 gamma 2,
 * supervise_all_iou, L1 IoU loss, object scores with gamma 0 and no alpha. */
void s2_loss_cfg_default(s2_loss_cfg *c);

/* Loss components summed over objects and steps (each already / num_objects). */
typedef struct s2_loss_parts {
    double mask, dice, iou, cls, core;
} s2_loss_parts;

/* Optional per-mask values of one step, arrays of B*M (best: B). */
typedef struct s2_loss_detail {
    double *focal, *dice, *iou_l1, *actual_iou;
    int *best;
} s2_loss_detail;

/* One prediction step (MultiStepMultiMasksAndIous._update_losses): masks [B, M, HW]
 * logits at the target resolution, ious [B, M] predicted IoUs, obj [B] object-score
 * logits, targets [B, HW] (non-zero = object). Adds the components to *acc (core
 * included) and WRITES d core / d input into dmasks [B, M, HW], dious [B, M] and dobj
 * [B] (each may be NULL). det may be NULL. */
void s2_loss_step(const s2_loss_cfg *cfg, int B, int M, int64_t HW, const float *masks,
                  const float *ious, const float *obj, const uint8_t *targets,
                  double num_objects, s2_loss_parts *acc, float *dmasks, float *dious,
                  float *dobj, const s2_loss_detail *det);

#endif
