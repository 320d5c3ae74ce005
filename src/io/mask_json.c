/* COCO RLE fields of a mask record. */
#include "io/mask_json.h"
#include "core/s2.h"
#include "io/rle.h"
#include <stdlib.h>

int s2_write_mask_rle(s2_jw *w, const uint8_t *mask, int h, int wd) {
    s2_rle rle = {0};
    S2_CHECK(s2_rle_encode(mask, h, wd, &rle));
    char *counts = s2_rle_to_string(&rle);
    if (!counts) {
        s2_rle_free(&rle);
        return s2_err(SAM2C_ERR_NOMEM, "out of memory");
    }
    double bb[4];
    s2_rle_bbox(&rle, bb);
    s2_jw_key(w, "area"); s2_jw_int(w, s2_rle_area(&rle));
    s2_jw_key(w, "bbox");
    s2_jw_arr_begin(w);
    for (int i = 0; i < 4; i++) s2_jw_num(w, bb[i]);
    s2_jw_arr_end(w);
    s2_jw_key(w, "segmentation");
    s2_jw_obj_begin(w);
    s2_jw_key(w, "size");
    s2_jw_arr_begin(w); s2_jw_int(w, h); s2_jw_int(w, wd); s2_jw_arr_end(w);
    s2_jw_key(w, "counts"); s2_jw_str(w, counts);
    s2_jw_obj_end(w);
    free(counts);
    s2_rle_free(&rle);
    return SAM2C_OK;
}
