/* Evaluation of segmentation results with the numbers the field's standard tools give:
 *  - image masks: per-mask IoU (J) and boundary F-measure, their means;
 *  - COCO instance segmentation: pycocotools COCOeval(iouType='segm') port (12 stats);
 *  - video object segmentation J&F: the official SA-V evaluator
 *    (sav_dataset/sav_evaluator.py + utils/sav_benchmark.py), SA-V and DAVIS layouts.
 * Every evaluation takes paths + options and fills a result struct that the caller frees
 * with the matching *_free; a writer turns each result into JSON (s2_jw).
 * Scales follow the tools: image IoU/F and COCO AP/AR in [0, 1]; video J, F, J&F x100
 * (per-frame values in [0, 1]). -1 marks "absent" as COCOeval does. */
#ifndef S2_EVAL_H
#define S2_EVAL_H

#include <stdbool.h>
#include <stdint.h>
#include "io/json.h"

/* Progress of a long evaluation: done out of total units (frames, images, masks).
 * Always called on the thread that called the evaluation; last call has done == total. */
typedef void (*s2_eval_progress_fn)(void *user, int done, int total);

typedef struct s2_eval_opts {
    s2_eval_progress_fn progress; /* may be NULL */
    void *user;                   /* passed to progress */
    double boundary_th;           /* boundary F tolerance: disk of radius
                                     ceil(th * sqrt(H^2 + W^2)) px; default 0.008 */
    bool skip_first_last;         /* video: skip every object's first and last annotated
                                     frame (default true, as SA-V val/test and DAVIS) */
    bool strict;                  /* video: fail unless GT and prediction hold the same
                                     videos (default false: evaluate the intersection, as
                                     sav_evaluator.py without -s) */
} s2_eval_opts;
void s2_eval_opts_default(s2_eval_opts *o);

/* ------------------------------------------------------------------ image masks ---- */

/* One ground-truth / prediction mask pair. Masks are binary: nonzero = foreground. */
typedef struct s2_eval_pair {
    char *name;            /* relative PNG path, or "image_id/category_id/k" (COCO) */
    int64_t gt_area, pred_area, inter, uni;
    double iou;            /* J = inter / union; 1 when both masks are empty */
    double f;              /* boundary F-measure (DAVIS / SA-V rules, see s2_eval_mask_pair) */
    double precision, recall; /* of the boundary */
    bool missing_pred;     /* no prediction for this GT: scored as an empty prediction */
    bool extra_pred;       /* prediction without GT: scored against an empty GT (COCO only) */
} s2_eval_pair;

typedef struct s2_eval_images_result {
    int n;                 /* pairs */
    s2_eval_pair *pairs;   /* sorted by name (folders) or by image id, category id, k */
    int n_missing_pred;    /* GT masks without prediction (scored as empty) */
    int n_extra_pred;      /* predictions without GT (folders: ignored; COCO: scored) */
    double mean_iou;       /* mean of pairs[].iou (numpy mean) */
    double mean_f;         /* mean of pairs[].f */
    double overall_iou;    /* sum inter / sum union over all pairs (1 if all empty) */
} s2_eval_images_result;

/* J and boundary F of one pair of row-major h x w masks (nonzero = foreground). F uses
 * _seg2bmap boundaries, a disk of radius ceil(boundary_th * sqrt(h^2 + w^2)) and the
 * official empty rules: both empty -> F = 1; one empty -> F = 0. Fills everything but
 * name / missing_pred / extra_pred. */
int s2_eval_mask_pair(const uint8_t *gt, const uint8_t *pred, int h, int w,
                      double boundary_th, s2_eval_pair *out);

/* Every *.png under gt_dir (recursively, relative paths) against the PNG of the same
 * relative path under pred_dir. Sizes must agree; a missing prediction counts as empty. */
int s2_eval_images_dirs(const char *gt_dir, const char *pred_dir, const s2_eval_opts *o,
                        s2_eval_images_result *out);
/* Two COCO JSON files: gt_json a dataset ({"images", "annotations"}), pred_json a
 * dataset or a results list ([{image_id, category_id, segmentation, ...}]). Pairing:
 * within each (image_id, category_id), the k-th annotation of the GT file (file order)
 * pairs with the k-th prediction of that key in the prediction file (file order;
 * scores are not used). Unpaired GT -> empty prediction (missing_pred); unpaired
 * prediction -> empty GT (extra_pred). iscrowd is not special here. Segmentations:
 * polygons, uncompressed or compressed RLE; polygon sizes come from gt "images". */
int s2_eval_images_coco(const char *gt_json, const char *pred_json, const s2_eval_opts *o,
                        s2_eval_images_result *out);
void s2_eval_images_free(s2_eval_images_result *r);
/* The two masks of the COCO pair named "image_id/category_id/k" (as named by
 * s2_eval_images_coco) from the parsed files: h x w bytes, 0/1, an absent side all zero
 * (caller frees both); *file_name is the GT image's file_name (borrowed) or NULL. */
int s2_eval_coco_pair_masks(const s2_json *gt, const s2_json *pred, const char *name,
                            uint8_t **gt_mask, uint8_t **pred_mask, int *h, int *w,
                            const char **file_name);
/* {"kind":"images","count","mean_iou","mean_boundary_f","overall_iou",
 *  "missing_predictions","extra_predictions","items":[{name, iou, boundary_f, ...}]} */
void s2_eval_images_write_json(const s2_eval_images_result *r, s2_jw *w);

/* ----------------------------------------------------------------- COCO segm mAP ---- */

#define S2_COCO_T 10  /* IoU thresholds .50:.05:.95 (numpy linspace values) */
#define S2_COCO_R 101 /* recall thresholds 0:.01:1 */
#define S2_COCO_A 4   /* areas all, small (< 32^2), medium (< 96^2), large (GT 'area') */
#define S2_COCO_M 3   /* maxDets 1, 10, 100 */

typedef struct s2_coco_eval_result {
    /* COCOeval.stats: AP, AP50, AP75, AP_small, AP_medium, AP_large, AR1, AR10, AR100,
     * AR_small, AR_medium, AR_large; -1 when no GT counts for that setting. */
    double stats[12];
    int n_images;          /* GT images (evaluated image ids) */
    int n_gt;              /* GT annotations on those images and categories */
    int n_dt;              /* detections kept (category known to the GT) */
    int n_dt_skipped;      /* detections of categories absent from the GT (dropped) */
    int K;                 /* categories (sorted ids) */
    int64_t *cat_ids;      /* K */
    char **cat_names;      /* K ("" when absent) */
    double *cat_ap;        /* K: AP@[.5:.95] area all maxDets 100, -1 when no GT */
    double *cat_ap50;      /* K */
    double *precision;     /* [T][R][K][A][M] exactly COCOeval.eval['precision'] */
    double *recall;        /* [T][K][A][M] exactly COCOeval.eval['recall'] */
} s2_coco_eval_result;

/* COCOeval(cocoGt, cocoGt.loadRes(res), 'segm').evaluate/accumulate/summarize.
 * gt_json: COCO dataset with polygon / RLE segmentations, 'area', 'iscrowd';
 * res_json: list of {image_id, category_id, segmentation, score} (bbox-only entries use
 * the box polygon; when the first entry has a non-empty 'bbox', every detection's area
 * is its box area, as loadRes). Differences from pycocotools are only where it crashes:
 * a missing GT 'area' is the mask area, missing 'iscrowd' is 0, an empty list is
 * accepted; duplicate GT annotation ids are an error (pycocotools keeps the last). */
int s2_eval_coco(const char *gt_json, const char *res_json, const s2_eval_opts *o,
                 s2_coco_eval_result *out);
/* The same on parsed documents (names appear in messages). */
int s2_eval_coco_doc(const s2_json *gt, const char *gt_name, const s2_json *res,
                     const char *res_name, const s2_eval_opts *o, s2_coco_eval_result *out);
void s2_coco_eval_free(s2_coco_eval_result *r);
/* {"kind":"coco_segm","AP","AP50","AP75","AP_small","AP_medium","AP_large","AR1",
 *  "AR10","AR100","AR_small","AR_medium","AR_large","stats":[12],"images","gt","dt",
 *  "per_category":[{"id","name","AP","AP50"}]} */
void s2_coco_eval_write_json(const s2_coco_eval_result *r, s2_jw *w);

/* ------------------------------------------------------------------- video J&F ---- */

typedef struct s2_vos_object {
    char *video;
    char *object;          /* SA-V: the object folder name; DAVIS: the label value */
    double J, F, JF;       /* x100: means over the counted frames */
    int n_frames;          /* counted frames */
    char **frames;         /* counted frame file names, without ".png" */
    double *j, *f;         /* per counted frame, in [0, 1] */
} s2_vos_object;

typedef struct s2_vos_result {
    double J, F, JF;       /* x100: means over all objects of all videos */
    int n_videos;
    int n_objects;
    s2_vos_object *objects; /* videos sorted by name; objects by folder name / label */
} s2_vos_result;

/* Official SA-V / DAVIS J&F. Layouts, decided per video as the official scan does:
 * SA-V <root>/<video>/<obj>/<frame>.png (one binary object per PNG: more than two
 * distinct values is an error, as the official assert); DAVIS <root>/<video>/<frame>.png
 * (object ids = palette indices / grey values; 0 = background). Frames come from the GT
 * folder; each needs a prediction of the same size. Rules (copied): first and last GT
 * frame skipped; an object counts from the first evaluated frame where GT or prediction
 * shows it; both empty -> J = F = 1; one empty -> 0; only objects present in the GT are
 * reported; an SA-V object whose GT is empty on every evaluated frame is an error (the
 * official code fails there too). */
int s2_eval_video(const char *gt_root, const char *pred_root, const s2_eval_opts *o,
                  s2_vos_result *out);
/* The same for one video folder (SA-V <video>/<obj>/<frame>.png or DAVIS
 * <video>/<frame>.png), reported under `name`. */
int s2_eval_video_one(const char *gt_video, const char *pred_video, const char *name,
                      const s2_eval_opts *o, s2_vos_result *out);
/* Whether a GT folder is one video rather than a root of video folders: it holds PNG
 * frames (DAVIS video), or sub-folders with digit-only names ("000": SA-V objects) that
 * hold no folders. (A folder of frame folders is ambiguous between one SA-V video and a
 * DAVIS root; both readings give the same J and F, only the names differ.) */
int s2_eval_video_is_one(const char *dir, bool *one);
void s2_vos_free(s2_vos_result *r);
/* {"kind":"video","J&F","J","F","videos","objects":[{"video","object","J&F","J","F",
 *  "frames", and with per_frame: "per_frame":{"frames":[...],"J":[...],"F":[...]}}]} */
void s2_vos_write_json(const s2_vos_result *r, bool per_frame, s2_jw *w);

#endif
