/* JSON reports of the evaluation results (s2_jw writer); NaN/Inf are written as null. */
#include "eval/eval_internal.h"
#include <string.h>

/* "k": number (NaN -> null). */
static void kv_num(s2_jw *w, const char *k, double v) {
    s2_jw_key(w, k);
    s2_jw_num(w, v);
}

/* "k": integer. */
static void kv_int(s2_jw *w, const char *k, int64_t v) {
    s2_jw_key(w, k);
    s2_jw_int(w, v);
}

/* One image-mask pair. */
static void write_pair(const s2_eval_pair *p, s2_jw *w) {
    s2_jw_obj_begin(w);
    s2_jw_key(w, "name");
    s2_jw_str(w, p->name ? p->name : "");
    kv_num(w, "iou", p->iou);
    kv_num(w, "boundary_f", p->f);
    kv_num(w, "boundary_precision", p->precision);
    kv_num(w, "boundary_recall", p->recall);
    kv_int(w, "gt_area", p->gt_area);
    kv_int(w, "pred_area", p->pred_area);
    kv_int(w, "intersection", p->inter);
    kv_int(w, "union", p->uni);
    if (p->missing_pred) { s2_jw_key(w, "missing_prediction"); s2_jw_bool(w, true); }
    if (p->extra_pred) { s2_jw_key(w, "extra_prediction"); s2_jw_bool(w, true); }
    s2_jw_obj_end(w);
}

void s2_eval_images_write_json(const s2_eval_images_result *r, s2_jw *w) {
    s2_jw_obj_begin(w);
    s2_jw_key(w, "kind");
    s2_jw_str(w, "images");
    kv_int(w, "count", r->n);
    kv_num(w, "mean_iou", r->mean_iou);
    kv_num(w, "mean_boundary_f", r->mean_f);
    kv_num(w, "overall_iou", r->overall_iou);
    kv_int(w, "missing_predictions", r->n_missing_pred);
    kv_int(w, "extra_predictions", r->n_extra_pred);
    s2_jw_key(w, "items");
    s2_jw_arr_begin(w);
    for (int i = 0; i < r->n; i++) write_pair(&r->pairs[i], w);
    s2_jw_arr_end(w);
    s2_jw_obj_end(w);
}

void s2_coco_eval_write_json(const s2_coco_eval_result *r, s2_jw *w) {
    static const char *names[12] = {"AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
                                    "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large"};
    s2_jw_obj_begin(w);
    s2_jw_key(w, "kind");
    s2_jw_str(w, "coco_segm");
    for (int i = 0; i < 12; i++) kv_num(w, names[i], r->stats[i]);
    s2_jw_key(w, "stats");
    s2_jw_arr_begin(w);
    for (int i = 0; i < 12; i++) s2_jw_num(w, r->stats[i]);
    s2_jw_arr_end(w);
    kv_int(w, "images", r->n_images);
    kv_int(w, "gt", r->n_gt);
    kv_int(w, "dt", r->n_dt);
    kv_int(w, "dt_unknown_category", r->n_dt_skipped);
    s2_jw_key(w, "per_category");
    s2_jw_arr_begin(w);
    for (int k = 0; k < r->K; k++) {
        s2_jw_obj_begin(w);
        kv_int(w, "id", r->cat_ids[k]);
        s2_jw_key(w, "name");
        s2_jw_str(w, r->cat_names && r->cat_names[k] ? r->cat_names[k] : "");
        kv_num(w, "AP", r->cat_ap[k]);
        kv_num(w, "AP50", r->cat_ap50[k]);
        s2_jw_obj_end(w);
    }
    s2_jw_arr_end(w);
    s2_jw_obj_end(w);
}

/* Counted frames of one object with their J and F. */
static void write_frames(const s2_vos_object *ob, s2_jw *w) {
    s2_jw_key(w, "per_frame");
    s2_jw_obj_begin(w);
    s2_jw_key(w, "frames");
    s2_jw_arr_begin(w);
    for (int i = 0; i < ob->n_frames; i++) s2_jw_str(w, ob->frames[i]);
    s2_jw_arr_end(w);
    s2_jw_key(w, "J");
    s2_jw_arr_begin(w);
    for (int i = 0; i < ob->n_frames; i++) s2_jw_num(w, ob->j[i]);
    s2_jw_arr_end(w);
    s2_jw_key(w, "F");
    s2_jw_arr_begin(w);
    for (int i = 0; i < ob->n_frames; i++) s2_jw_num(w, ob->f[i]);
    s2_jw_arr_end(w);
    s2_jw_obj_end(w);
}

void s2_vos_write_json(const s2_vos_result *r, bool per_frame, s2_jw *w) {
    s2_jw_obj_begin(w);
    s2_jw_key(w, "kind");
    s2_jw_str(w, "video");
    kv_num(w, "J&F", r->JF);
    kv_num(w, "J", r->J);
    kv_num(w, "F", r->F);
    kv_int(w, "videos", r->n_videos);
    s2_jw_key(w, "objects");
    s2_jw_arr_begin(w);
    for (int i = 0; i < r->n_objects; i++) {
        const s2_vos_object *ob = &r->objects[i];
        s2_jw_obj_begin(w);
        s2_jw_key(w, "video");
        s2_jw_str(w, ob->video);
        s2_jw_key(w, "object");
        s2_jw_str(w, ob->object);
        kv_num(w, "J&F", ob->JF);
        kv_num(w, "J", ob->J);
        kv_num(w, "F", ob->F);
        kv_int(w, "frames", ob->n_frames);
        if (per_frame) write_frames(ob, w);
        s2_jw_obj_end(w);
    }
    s2_jw_arr_end(w);
    s2_jw_obj_end(w);
}
