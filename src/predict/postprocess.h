/* Mask post-processing shared by the predictors: small holes and sprinkles removed by
 * connected components on the CPU (the official code needs a CUDA extension for this and
 * silently skips it on CPU). */
#ifndef S2_POSTPROCESS_H
#define S2_POSTPROCESS_H

#include <stdbool.h>
#include <stdint.h>

/* Components (8-connectivity, as the official cc_torch extension) of the pixels where
 * (x > thr) == foreground, with area <= max_area, get `value`. plane [h, w]. Returns 0 or
 * SAM2C_ERR_NOMEM. */
int s2_fill_small_components(float *plane, int h, int w, bool foreground, float thr,
                             int64_t max_area, float value);

/* ref: SAM2Transforms.postprocess_masks: holes (x <= thr) of area <= max_hole get
 * hole_value and sprinkles (x > thr) of area <= max_sprinkle get sprinkle_value, both
 * classified on the unmodified plane. A max of 0 disables that half. */
int s2_fill_holes_and_sprinkles(float *plane, int h, int w, float thr, int64_t max_hole,
                                int64_t max_sprinkle, float hole_value, float sprinkle_value);

/* ref: sam2/utils/misc.py fill_holes_in_mask_scores: background holes (x <= 0) of area
 * <= max_area become 0.1. */
int s2_fill_holes_in_mask_scores(float *plane, int h, int w, int64_t max_area);

#endif
