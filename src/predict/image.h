/* Private extras of the image predictor (dump hook for --dump and parity tests). */
#ifndef S2_PREDICT_IMAGE_H
#define S2_PREDICT_IMAGE_H

#include "sam2c.h"
#include "backend/backend.h"

void s2_image_session_set_dump(sam2c_image_session *s, s2_dump_fn fn, void *user);
void s2_image_session_set_backend(sam2c_image_session *s, const s2_backend *be);
/* Post-processing areas (official SAM2ImagePredictor max_hole_area / max_sprinkle_area). */
void s2_image_session_set_postprocess(sam2c_image_session *s, float max_hole_area,
                                      float max_sprinkle_area);

#endif
