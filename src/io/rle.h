/* COCO run-length encoding (column-major, as pycocotools): encode/decode binary masks,
 * the compressed "counts" string, polygons to masks, area, bbox, IoU. Masks here are
 * row-major H x W bytes, nonzero = foreground. */
#ifndef S2_RLE_H
#define S2_RLE_H

#include <stdint.h>
#include <stddef.h>

typedef struct s2_rle {
    int h, w;
    uint32_t *counts;  /* alternating runs, starting with background; owned */
    int n;
} s2_rle;

int s2_rle_encode(const uint8_t *mask, int h, int w, s2_rle *out);
/* Writes 0/1 bytes into mask (h*w, row-major). Fails if runs do not sum to h*w. */
int s2_rle_decode(const s2_rle *r, uint8_t *mask);
void s2_rle_free(s2_rle *r);
/* pycocotools rleToString: caller frees. */
char *s2_rle_to_string(const s2_rle *r);
/* pycocotools rleFrString; validates (no overflow, runs sum to h*w). */
int s2_rle_from_string(const char *s, int h, int w, s2_rle *out);
/* Uncompressed counts (list of ints in COCO JSON). */
int s2_rle_from_counts(const int64_t *counts, int n, int h, int w, s2_rle *out);
int64_t s2_rle_area(const s2_rle *r);
/* COCO bbox [x, y, w, h] of the foreground (pycocotools toBbox); zeros when empty. */
void s2_rle_bbox(const s2_rle *r, double bbox[4]);
/* Intersection and union areas of two RLEs of the same size. */
int s2_rle_inter_union(const s2_rle *a, const s2_rle *b, int64_t *inter, int64_t *uni);
/* pycocotools frPoly: polygon [x0,y0,x1,y1,...] rasterised to a mask exactly as COCO. */
int s2_rle_from_polygon(const double *xy, int n_points, int h, int w, s2_rle *out);

#endif
