/* Video fine-tuning data: a folder of clips in the SA-V / DAVIS-like layout
 *     <root>/<clip>/JPEGImages/<frame>.jpg          frames named by their number
 *     <root>/<clip>/Annotations/<obj>/<frame>.png   one 0 / 255 (any non-zero) mask per
 *                                                   object and annotated frame
 * (a frame without <obj>/<frame>.png: the object is absent there), loaded into a cache
 * of frozen image-encoder outputs (the video predictor's preprocessing: PIL bicubic
 * resize to S x S, then normalisation) and S x S ground-truth masks.
 * Letters: C d_model, h x w top-level grid, S model input side, T frames, K objects. */
#ifndef S2_TRAIN_VIDEO_DATA_H
#define S2_TRAIN_VIDEO_DATA_H

#include <stdint.h>
#include <stddef.h>
#include "model/model.h"
#include "backend/backend.h"

typedef struct s2_vclip {
    char *name;            /* clip folder name */
    int T, K;              /* cached frames (the first max_frames), objects */
    float *feat;           /* per frame the three neck levels, contiguous (owned) */
    const float **fpn;     /* [T * 3]: (C,4h,4w), (C,2h,2w), (C,h,w) of frame t at 3t.. */
    uint8_t *gt;           /* [T, K, S, S] 0 / 1 (owned) */
} s2_vclip;

/* Sorted names of the sub-folders of root that hold a JPEGImages folder (caller frees
 * each name and the list). A root without any is an error naming it. */
int s2_vclip_list(const char *root, char ***names, int *n);
void s2_vclip_list_free(char **names, int n);

/* Loads clip root/name: lists the frames, encodes the first max_frames of them (0: all)
 * with m's image encoder on c (scratch reset between frames), reads every object's masks
 * (size must equal the frame's). pos (C, h, w) receives the top-level position encoding
 * when not NULL. Errors name the file. */
int s2_vclip_load(s2_ctx *c, const sam2c_model *m, const char *root, const char *name,
                  int max_frames, s2_vclip *out, float *pos);
void s2_vclip_free(s2_vclip *v);
/* Bytes the clip's cache holds. */
size_t s2_vclip_bytes(const sam2c_model *m, const s2_vclip *v);

#endif
