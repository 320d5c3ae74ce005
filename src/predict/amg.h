/* Private pieces of the automatic mask generator (amg_ops.c; the generator itself is
 * amg.c, public API in sam2c.h "automatic masks"), exposed for unit tests.
 * ref: sam2/automatic_mask_generator.py SAM2AutomaticMaskGenerator, sam2/utils/amg.py,
 *      torchvision.ops batched_nms / nms (CPU kernel)
 * Boxes are XYXY. Mask boxes follow batched_mask_to_box: x1 / y1 are the last mask
 * column / row (inclusive); crop boxes have exclusive x1 / y1. */
#ifndef S2_PREDICT_AMG_H
#define S2_PREDICT_AMG_H

#include "sam2c.h"
#include "backend/backend.h"
#include <stdbool.h>
#include <stdint.h>

/* Most crop layers accepted (layer i has 4^i crops). */
#define S2_AMG_MAX_CROP_LAYERS 6

/* ref: amg.py generate_crop_boxes. Fills boxes [n][4] (XYXY) and layer index per box;
 * returns the number of boxes, or a negative status (more than cap boxes, a crop of no
 * pixels). The first box is the whole image. */
int s2_amg_crop_boxes(int w, int h, int n_layers, double overlap_ratio, int (*boxes)[4],
                      int *layers, int cap);
/* Number of crop boxes for n_layers layers (1 + 4 + 16 + ...). */
int s2_amg_n_crops(int n_layers);

/* ref: amg.py build_point_grid: n*n points (x, y) in [0, 1], row by row (y outer),
 * coordinates as numpy.linspace(1/(2n), 1 - 1/(2n), n). xy: [n*n, 2]. */
void s2_amg_point_grid(int n, double *xy);

/* ref: torchvision nms (CPU kernel): visits boxes by score descending (stable sort),
 * keeps a box unless an already kept one overlaps it with IoU > thresh (float math;
 * zero-area pairs give NaN and never suppress). boxes [n][4] XYXY, scores [n].
 * keep gets the kept indices in visiting order; returns their count or
 * SAM2C_ERR_NOMEM. */
int s2_amg_nms(const float *boxes, const float *scores, int n, double thresh, int *keep);

/* ref: amg.py batched_mask_to_box on one column-major mask [w][h] (byte per pixel):
 * box[4] = {x0, y0, x1, y1} inclusive, {0, 0, 0, 0} when empty. */
void s2_amg_mask_box_colmajor(const uint8_t *cm, int h, int w, int box[4]);

/* ref: amg.py is_box_near_crop_edge (atol 20): box (XYXY, image pixels) within 20 px of
 * a crop edge that is not also within 20 px of the image edge. */
bool s2_amg_box_near_crop_edge(const int box[4], const int crop[4], int img_w, int img_h);

/* ref: amg.py calculate_stability_score on one logit map of n pixels:
 * #(x > thr + off) / #(x > thr - off), cut-offs rounded to f32 as PyTorch compares a
 * f32 tensor with a Python float; NaN when the union is empty. */
float s2_amg_stability(const float *logits, int64_t n, double thr, double off);

/* Bilinear resize (align_corners=False, no antialias) of one [lh, lw] plane to [oh, ow],
 * bit-identical to s2_ref_interp_bilinear (same taps, same fma order) but separable
 * (horizontal pass on the lh source rows, then vertical), with the stability counts of
 * the output fused in: n_hi = #(y > hi), n_lo = #(y > lo). Tables built once per size. */
typedef struct s2_amg_resize {
    int lh, lw, oh, ow;
    int *iy, *ix;       /* [oh][2], [ow][2] source indices */
    float *wy, *wx;     /* [oh][2], [ow][2] weights */
    float *rows;        /* [lh, ow] horizontal pass */
    bool portable;      /* skip the AVX2/FMA path (tests compare both) */
} s2_amg_resize;
int s2_amg_resize_init(s2_amg_resize *r, int lh, int lw, int oh, int ow);
void s2_amg_resize_free(s2_amg_resize *r);
void s2_amg_resize_run(s2_amg_resize *r, const float *x, float *y, float hi, float lo,
                       int64_t *n_hi, int64_t *n_lo);

/* Compute backend for the image encoder and decoder (NULL = reference). */
void s2_amg_set_backend(sam2c_amg *g, const s2_backend *be);

#endif
