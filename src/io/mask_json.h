/* One mask as the COCO fields of a JSON record: "area", "bbox" [x, y, w, h] and
 * "segmentation" {"size": [H, W], "counts": compressed RLE}. Shared by the command-line
 * outputs and the server so both write the same records. */
#ifndef S2_MASK_JSON_H
#define S2_MASK_JSON_H

#include <stdint.h>
#include "io/json.h"

/* Appends the three keys to the open JSON object. mask: h*w bytes, nonzero = foreground. */
int s2_write_mask_rle(s2_jw *w, const uint8_t *mask, int h, int wd);

#endif
