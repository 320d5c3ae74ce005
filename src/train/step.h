/* One training sample as SAM2Train runs it on a static image: initial click or noisy box,
 * a decoder pass, then corrective clicks sampled from the error region, each pass fed
 * the previous low-res mask; the loss of every pass; backward through all of them.
 * Also the prompt samplers (training/model/sam2.py, sam2/modeling/sam2_utils.py).
 * Letters: B objects, S model input side, N points. */
#ifndef S2_TRAIN_STEP_H
#define S2_TRAIN_STEP_H

#include "train/heads_train.h"
#include "train/loss.h"

/* ---- random numbers (seeded, reproducible; no global state) ---- */
uint64_t s2_rng_next(uint64_t *state);
double s2_rng_uniform(uint64_t *state);          /* [0, 1) */
int64_t s2_rng_below(uint64_t *state, int64_t n); /* [0, n) for n >= 1 */

/* ---- prompt samplers on an S x S (H x W) binary ground truth ---- */

/* ref: sam2_utils.py sample_random_points_from_errors (num_pt 1): a point uniform over
 * the false-negative (label 1) and false-positive (label 0) pixels of pred (NULL = empty
 * prediction); when pred is exactly right, a negative point from the background. */
void s2_sample_point_uniform(const uint8_t *gt, const uint8_t *pred, int H, int W,
                             uint64_t *rng, float xy[2], int32_t *label);
/* ref: sam2_utils.py sample_one_point_from_error_center (RITM, padding=True): the error
 * pixel farthest from the error region's border (exact Euclidean distance transform,
 * as cv2.distanceTransform(DIST_L2, 0)); ties to the first in row-major order. */
int s2_sample_point_center(const uint8_t *gt, const uint8_t *pred, int H, int W, float xy[2],
                           int32_t *label);
/* ref: sam2_utils.py sample_box_points (noise 0.1, noise_bound 20): the mask's box
 * corners with uniform noise, labels 2 / 3. xy = x0, y0, x1, y1. */
void s2_sample_box(const uint8_t *gt, int H, int W, uint64_t *rng, float xy[4],
                   int32_t labels[2]);

/* ---- one sample ---- */

typedef struct s2_sample_in {
    const float *fpn[3];     /* frozen neck outputs (C,4h,4w), (C,2h,2w), (C,h,w) */
    int B;                   /* objects */
    const uint8_t *gt;       /* [B, S, S] ground truth (non-zero = object) */
    int N0;                  /* initial points per object (1 click or 2 box corners) */
    const float *coords;     /* [B, N0, 2] model-input pixels */
    const int32_t *labels;   /* [B, N0] */
    int n_correct;           /* corrective clicks (official 7; 0 = one pass) */
    double prob_from_gt;     /* correction sampled from the GT instead of errors (0.1) */
    bool center_clicks;      /* corrections by s2_sample_point_center (evaluation) */
    uint64_t *rng;           /* for corrections (may be NULL when n_correct = 0) */
    double num_objects;      /* loss normalisation: objects in the whole batch */
    const s2_loss_detail *det0; /* optional per-mask loss values of the first pass */
    float *d_fpn[3];         /* optional: gradients of fpn[0..2] added here (backward) */
} s2_sample_in;

typedef struct s2_sample_out {
    s2_loss_parts loss;      /* summed over passes */
    int n_steps;
    s2_heads_tape *first;    /* first pass (on the tape) */
    float *first_high;       /* [B, M, S, S] first pass's upsampled masks (on the tape) */
    double iou_first;        /* mean over objects of IoU(best-IoU mask of pass 0 > 0, gt) */
    double iou_last;         /* the same after the last pass */
} s2_sample_out;

/* Forward (and with backward = true, gradients added to t->p) of one sample. The tape
 * must be reset by the caller afterwards. */
int s2_train_sample(s2_tctx *t, const s2_loss_cfg *lc, const s2_sample_in *in, bool backward,
                    s2_sample_out *out);

#endif
