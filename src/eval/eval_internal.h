/* Private helpers shared by the evaluation files: numpy-exact means, label PNG loading,
 * folder listing, the boundary F-measure engine, COCO segmentation decoding. */
#ifndef S2_EVAL_INTERNAL_H
#define S2_EVAL_INTERNAL_H

#include "eval/eval.h"
#include "io/rle.h"
#include <stddef.h>

/* numpy add.reduce (pairwise summation, 8 accumulators, blocks of 128) and mean:
 * the same rounding as np.mean on a contiguous float64 array. mean of 0 items = NaN. */
double s2e_sum(const double *v, int64_t n);
double s2e_mean(const double *v, int64_t n);

/* PNG decoded as PIL's np.array(Image.open(p)) values: palette index, grey value (8 or
 * 16 bit; 1/2/4-bit grey scaled to 8 bit), RGB(A) packed as r<<16|g<<8|b (alpha dropped).
 * *labels (h*w, row-major) is allocated by the callee or reused when *cap >= h*w. */
int s2e_png_labels(const char *path, uint32_t **labels, size_t *cap, int *w, int *h);

/* Sorted (strcmp = Python's sorted on str) names in a folder: S2E_ANY every entry,
 * S2E_DIRS directories, S2E_FILES regular files; suffix (NULL: any) filters names.
 * Hidden entries (".*") are skipped. */
enum { S2E_ANY = 0, S2E_DIRS = 1, S2E_FILES = 2 };
int s2e_list_dir(const char *path, int kind, const char *suffix, char ***names, int *n);
void s2e_free_names(char **names, int n);
char *s2e_join(const char *a, const char *b); /* "a/b", NULL + message on OOM */
bool s2e_is_dir(const char *path);
bool s2e_is_file(const char *path);

/* Boundary F engine for one image size: disk spans, generation-stamped dilation map and
 * boundary point lists, so a frame costs O(boundary points * disk rows). */
typedef struct s2e_bf {
    int h, w, r;          /* image size, disk radius */
    int *half;            /* (2r+1) half widths of the disk rows, dy = -r..r */
    uint32_t *stamp;      /* (h*w) dilation marks: == gen means "dilated" */
    uint32_t gen;
    int32_t *pa, *pb;     /* (h*w) boundary point indices of the two masks */
} s2e_bf;
int s2e_bf_init(s2e_bf *b, int h, int w, double th);
void s2e_bf_free(s2e_bf *b);
/* Official boundary F of binary masks gt / pred (nonzero = fg), with precision/recall. */
double s2e_bf_measure(s2e_bf *b, const uint8_t *gt, const uint8_t *pred, double *prec,
                      double *rec);
/* Official get_iou: inter / (sum - inter), 1 when both are empty. */
double s2e_iou(int64_t inter, int64_t sum);

/* COCO segmentation (polygon list, uncompressed or compressed RLE) as pycocotools
 * COCO.annToRLE with image size h x w; `what` names the annotation in messages. */
int s2e_seg_to_rle(const s2_json *seg, int h, int w, const char *what, s2_rle *out);
/* Union of two RLEs of the same size (pycocotools rleMerge, intersect = 0). */
int s2e_rle_union(const s2_rle *a, const s2_rle *b, s2_rle *out);
/* A JSON number that is an integer (ids). */
bool s2e_json_id(const s2_json *obj, const char *key, int64_t *out);

/* Sorted table of int64 ids with lookup (binary search): index or -1. */
typedef struct s2e_idmap { int64_t *id; int *idx; int n; } s2e_idmap;
int s2e_idmap_build(s2e_idmap *m, const int64_t *ids, int n); /* last duplicate wins */
int s2e_idmap_find(const s2e_idmap *m, int64_t id);
void s2e_idmap_free(s2e_idmap *m);

#endif
