/* MultiStepMultiMasksAndIous and its gradient, computed in f64 per pixel (the sigmoid
 * rounded to f32 first, as PyTorch's f32 tensors hold it, where the dice loss compares
 * it with the target). Letters: B objects, M masks per object, HW pixels.
 * ref: training/loss_fns.py */
#include "train/loss.h"

#include <math.h>
#include <string.h>

// ref: sam2.1_hiera_b+_MOSE_finetune.yaml loss.all
void s2_loss_cfg_default(s2_loss_cfg *c) {
    *c = (s2_loss_cfg){.w_mask = 20.0f, .w_dice = 1.0f, .w_iou = 1.0f, .w_class = 1.0f,
                       .focal_alpha = 0.25f, .focal_gamma = 2.0f, .supervise_all_iou = true,
                       .iou_use_l1 = true, .pred_obj_scores = true, .focal_alpha_obj = -1.0f,
                       .focal_gamma_obj = 0.0f};
}

/* Sigmoid as an f32 tensor holds it. */
static double sigmoid_f32(double x) { return (double)(float)(1.0 / (1.0 + exp(-x))); }

// ref: training/loss_fns.py sigmoid_focal_loss (one element) and its derivative
static double focal_elem(double x, double t, double alpha, double gamma, double *grad) {
    double p = sigmoid_f32(x);
    double ce = fmax(x, 0.0) - x * t + log1p(exp(-fabs(x)));
    double q = 1.0 - (p * t + (1.0 - p) * (1.0 - t)); // 1 - p_t
    double mod = gamma == 0.0 ? 1.0 : pow(q, gamma);
    double at = alpha >= 0.0 ? alpha * t + (1.0 - alpha) * (1.0 - t) : 1.0;
    double g = (p - t) * mod;
    if (gamma != 0.0) g += ce * gamma * pow(q, gamma - 1.0) * (1.0 - 2.0 * t) * p * (1.0 - p);
    *grad = at * g;
    return at * ce * mod;
}

/* Focal loss of one mask (mean over pixels). */
static double focal_mask(const float *x, const uint8_t *t, int64_t HW, double alpha,
                         double gamma) {
    double sum = 0.0, d;
    for (int64_t i = 0; i < HW; i++) sum += focal_elem(x[i], t[i] ? 1.0 : 0.0, alpha, gamma, &d);
    return sum / (double)HW;
}

/* Sums of the dice loss of one mask: sigmoids + targets (den) and |sigmoid - target|. */
static void dice_sums(const float *x, const uint8_t *t, int64_t HW, double *den, double *diff) {
    double ssum = 0.0, tsum = 0.0, df = 0.0;
    for (int64_t i = 0; i < HW; i++) {
        double s = sigmoid_f32(x[i]), tt = t[i] ? 1.0 : 0.0;
        ssum += s, tsum += tt, df += fabs(s - tt);
    }
    *den = ssum + tsum, *diff = df;
}

// ref: training/loss_fns.py dice_loss (loss_on_multimask) for one mask
static double dice_mask(const float *x, const uint8_t *t, int64_t HW) {
    double den, diff;
    dice_sums(x, t, HW, &den, &diff);
    return 1.0 - (den - diff + 1.0) / (den + 1.0);
}

// ref: training/loss_fns.py iou_loss: IoU of (x > 0) with (t > 0)
static double actual_iou(const float *x, const uint8_t *t, int64_t HW) {
    int64_t inter = 0, uni = 0;
    for (int64_t i = 0; i < HW; i++) {
        bool p = x[i] > 0.0f, q = t[i] != 0;
        inter += p && q;
        uni += p || q;
    }
    return (double)inter / (double)(uni > 1 ? uni : 1);
}

/* Sign as torch's l1 / abs backward sees it (0 at 0). */
static double sgn(double v) { return v > 0.0 ? 1.0 : (v < 0.0 ? -1.0 : 0.0); }

/* Writes the scaled focal + dice gradient of one mask into dm [HW]:
 * wf d focal / dx + wd d dice / dx, with d dice / ds_i = -((1 - sign(s_i - t_i)) (den + 1)
 * - (num + 1)) / (den + 1)^2 and ds / dx = s (1 - s). */
static void mask_grad(const s2_loss_cfg *cfg, const float *x, const uint8_t *t, int64_t HW,
                      double wf, double wd, float *dm) {
    double den, diff;
    dice_sums(x, t, HW, &den, &diff);
    double num = den - diff, den1 = den + 1.0;
    for (int64_t i = 0; i < HW; i++) {
        double d, s = sigmoid_f32(x[i]), tt = t[i] ? 1.0 : 0.0;
        focal_elem(x[i], tt, cfg->focal_alpha, cfg->focal_gamma, &d);
        double ds = -((1.0 - sgn(s - tt)) * den1 - (num + 1.0)) / (den1 * den1);
        dm[i] = (float)(wf * d / (double)HW + wd * ds * s * (1.0 - s));
    }
}

// ref: training/loss_fns.py MultiStepMultiMasksAndIous._update_losses
void s2_loss_step(const s2_loss_cfg *cfg, int B, int M, int64_t HW, const float *masks,
                  const float *ious, const float *obj, const uint8_t *targets,
                  double num_objects, s2_loss_parts *acc, float *dmasks, float *dious,
                  float *dobj, const s2_loss_detail *det) {
    double no = num_objects < 1.0 ? 1.0 : num_objects;
    s2_loss_parts add = {0};
    if (dmasks) memset(dmasks, 0, sizeof(float) * (size_t)B * M * HW);
    for (int b = 0; b < B; b++) {
        const uint8_t *t = targets + (int64_t)b * HW;
        bool present = !cfg->pred_obj_scores;
        for (int64_t i = 0; i < HW && !present; i++) present = t[i] != 0;
        double tobj = present ? 1.0 : 0.0;
        double focal[16], dice[16], l1[16], dl1[16], iou_sum = 0.0;
        int best = 0;
        for (int m = 0; m < M && m < 16; m++) {
            const float *x = masks + ((int64_t)b * M + m) * HW;
            focal[m] = focal_mask(x, t, HW, cfg->focal_alpha, cfg->focal_gamma) / no;
            dice[m] = dice_mask(x, t, HW) / no;
            double act = actual_iou(x, t, HW), d = ious[b * M + m] - act;
            l1[m] = (cfg->iou_use_l1 ? fabs(d) : d * d) / no;
            dl1[m] = (cfg->iou_use_l1 ? sgn(d) : 2.0 * d) / no;
            iou_sum += l1[m];
            double combo = focal[m] * cfg->w_mask + dice[m] * cfg->w_dice;
            double cbest = focal[best] * cfg->w_mask + dice[best] * cfg->w_dice;
            if (m > 0 && combo < cbest) best = m;
            if (det) {
                det->focal[b * M + m] = focal[m], det->dice[b * M + m] = dice[m];
                det->iou_l1[b * M + m] = l1[m], det->actual_iou[b * M + m] = act;
            }
        }
        if (det && det->best) det->best[b] = best;
        bool all_iou = M > 1 && cfg->supervise_all_iou;
        add.mask += focal[best] * tobj;
        add.dice += dice[best] * tobj;
        add.iou += (all_iou ? iou_sum / M : l1[best]) * tobj;
        for (int m = 0; dious && m < M; m++) {
            double w = all_iou ? 1.0 / M : (m == best ? 1.0 : 0.0);
            dious[b * M + m] = (float)(cfg->w_iou * tobj * w * dl1[m]);
        }
        if (dmasks && tobj != 0.0)
            mask_grad(cfg, masks + ((int64_t)b * M + best) * HW, t, HW, cfg->w_mask * tobj / no,
                      cfg->w_dice * tobj / no, dmasks + ((int64_t)b * M + best) * HW);
        double dc = 0.0;
        if (cfg->pred_obj_scores) {
            add.cls += focal_elem(obj[b], tobj, cfg->focal_alpha_obj, cfg->focal_gamma_obj, &dc) / no;
        }
        if (dobj) dobj[b] = (float)(cfg->w_class * dc / no);
    }
    add.core = add.mask * cfg->w_mask + add.dice * cfg->w_dice + add.iou * cfg->w_iou +
               add.cls * cfg->w_class;
    acc->mask += add.mask, acc->dice += add.dice, acc->iou += add.iou;
    acc->cls += add.cls, acc->core += add.core;
}
