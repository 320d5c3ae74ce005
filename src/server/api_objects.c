/* Object routes (accept a mask with a label, list, relabel, reject, mask PNG) and the
 * project export: COCO JSON (RLE segmentations, categories from the labels) and PNG
 * masks (a JSON index, or a tar holding the index and every mask). */
#include "server/internal.h"
#include "io/image.h"
#include "io/rle.h"

#ifdef SAM2C_HAVE_SERVER
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LABEL 200          /* bytes */
#define MAX_PROMPT_JSON 65536  /* bytes of the stored source prompt */

/* Writes one object record. */
static void write_object(s2_jw *w, const s2_store_object *o) {
    s2_jw_obj_begin(w);
    s2_jw_key(w, "id"); s2_jw_int(w, o->id);
    s2_jw_key(w, "image_id"); s2_jw_int(w, o->image_id);
    s2_jw_key(w, "label"); s2_jw_str(w, o->label);
    s2_jw_key(w, "status"); s2_jw_str(w, o->rejected ? "rejected" : "accepted");
    s2_jw_key(w, "area"); s2_jw_int(w, o->area);
    s2_jw_key(w, "bbox");
    s2_jw_arr_begin(w);
    for (int i = 0; i < 4; i++) s2_jw_num(w, o->bbox[i]);
    s2_jw_arr_end(w);
    s2_jw_key(w, "iou_pred");
    if (isfinite(o->iou_pred)) s2_jw_num(w, o->iou_pred); else s2_jw_null(w);
    s2_jw_key(w, "segmentation");
    s2_jw_obj_begin(w);
    s2_jw_key(w, "size");
    s2_jw_arr_begin(w); s2_jw_int(w, o->h); s2_jw_int(w, o->w); s2_jw_arr_end(w);
    s2_jw_key(w, "counts"); s2_jw_str(w, o->counts);
    s2_jw_obj_end(w);
    s2_jw_key(w, "prompt");
    if (o->prompt) s2_jw_raw(w, o->prompt); else s2_jw_null(w);
    s2_jw_key(w, "created"); s2_jw_num(w, o->created);
    s2_jw_key(w, "updated"); s2_jw_num(w, o->updated);
    s2_jw_obj_end(w);
}

/* Answers with one object read back from the store. */
static void answer_object(s2_server *sv, int64_t id, int status, s2_resp *rs) {
    s2_store_object o;
    int rc = s2_store_get_object(sv->store, id, &o);
    if (rc < 0) {
        s2_resp_lib_error(rs, rc);
        return;
    }
    s2_jw w;
    s2_jw_init(&w);
    write_object(&w, &o);
    s2_store_object_clear(&o);
    s2_resp_json(rs, status, &w);
}

const char *s2_check_label(const s2_json *v) {
    if (!v || v->type != S2_JSTR) return "'label' must be a string";
    if (v->str_len == 0 || v->str_len > MAX_LABEL) return "'label' must be 1 to 200 bytes long";
    for (size_t i = 0; i < v->str_len; i++)
        if ((unsigned char)v->str[i] < 0x20 || v->str[i] == 0x7f) return "'label' contains a control character";
    return NULL;
}

/* Reads a COCO RLE {"size": [h, w], "counts": "..." or [...]} of an h x w image. */
static int read_rle(const s2_json *seg, int h, int w, s2_rle *out) {
    const s2_json *size = s2_json_get(seg, "size"), *counts = s2_json_get(seg, "counts");
    if (!seg || seg->type != S2_JOBJ || !size || size->type != S2_JARR || size->n != 2 || !counts)
        return s2_err(SAM2C_ERR_ARG, "'segmentation' must be a COCO RLE {\"size\": [h, w], \"counts\": ...}");
    const s2_json *sh = s2_json_at(size, 0), *sw = s2_json_at(size, 1);
    if (sh->type != S2_JNUM || sw->type != S2_JNUM || sh->num != h || sw->num != w)
        return s2_err(SAM2C_ERR_ARG, "segmentation size must be [%d, %d] (the image's height, width)", h, w);
    if (counts->type == S2_JSTR) return s2_rle_from_string(counts->str, h, w, out);
    if (counts->type != S2_JARR || counts->n > (int64_t)h * w + 1)
        return s2_err(SAM2C_ERR_ARG, "'counts' must be a string or an array of run lengths");
    int64_t *c = s2_malloc((size_t)S2_MAX(counts->n, 1) * sizeof *c);
    if (!c) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < counts->n; i++) {
        const s2_json *e = s2_json_at(counts, i);
        if (e->type != S2_JNUM || e->num < 0 || e->num != floor(e->num) || e->num > 1e15) {
            free(c);
            return s2_err(SAM2C_ERR_ARG, "counts[%d] is not a non-negative integer", i);
        }
        c[i] = (int64_t)e->num;
    }
    int rc = s2_rle_from_counts(c, counts->n, h, w, out);
    free(c);
    return rc;
}

/* Fills the object from the body (label, segmentation, iou_pred, prompt). */
static int read_object(const s2_json *j, const s2_store_image *im, s2_store_object *o, s2_rle *rle) {
    for (int i = 0; i < j->n; i++)
        if (strcmp(j->keys[i], "label") && strcmp(j->keys[i], "segmentation") && strcmp(j->keys[i], "iou_pred") &&
            strcmp(j->keys[i], "prompt"))
            return s2_err(SAM2C_ERR_ARG, "unknown key '%.40s' (label, segmentation, iou_pred, prompt)", j->keys[i]);
    const char *why = s2_check_label(s2_json_get(j, "label"));
    if (why) return s2_err(SAM2C_ERR_ARG, "%s", why);
    S2_CHECK(read_rle(s2_json_get(j, "segmentation"), im->h, im->w, rle));
    o->area = s2_rle_area(rle);
    if (o->area == 0) return s2_err(SAM2C_ERR_ARG, "the mask is empty");
    s2_rle_bbox(rle, o->bbox);
    o->counts = s2_rle_to_string(rle);
    if (!o->counts) return SAM2C_ERR_NOMEM;
    o->image_id = im->id;
    o->h = im->h;
    o->w = im->w;
    o->label = s2_json_get(j, "label")->str;
    const s2_json *iou = s2_json_get(j, "iou_pred");
    o->iou_pred = NAN;
    if (iou && iou->type == S2_JNUM) o->iou_pred = iou->num;
    else if (iou && iou->type != S2_JNULL) return s2_err(SAM2C_ERR_ARG, "'iou_pred' must be a number");
    const s2_json *pr = s2_json_get(j, "prompt");
    if (pr && pr->type != S2_JNULL) {
        s2_jw pw;
        s2_jw_init(&pw);
        s2_jw_value(&pw, pr);
        if (pw.failed || pw.len > MAX_PROMPT_JSON) {
            s2_jw_free(&pw);
            return s2_err(SAM2C_ERR_ARG, "'prompt' is over %d bytes", MAX_PROMPT_JSON);
        }
        o->prompt = pw.buf;
    }
    return SAM2C_OK;
}

/* POST /api/images/{id}/objects {"label": "...", "segmentation": RLE, "iou_pred": x,
 * "prompt": {...}} -> 201 with the stored object (committed before the answer). */
void s2_h_objects_create(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    s2_json *j = s2_req_json(sv, rq, rs);
    if (!j) return;
    s2_store_image im;
    s2_store_object o = {0};
    s2_rle rle = {0};
    int64_t id = 0;
    int rc = s2_store_get_image(sv->store, rq->id, &im, NULL, NULL);
    if (rc == SAM2C_OK) rc = read_object(j, &im, &o, &rle);
    if (rc == SAM2C_OK) rc = s2_store_add_object(sv->store, &o, &id);
    free(o.counts);
    free(o.prompt);
    s2_rle_free(&rle);
    s2_json_free(j);
    if (rc < 0) s2_resp_lib_error(rs, rc);
    else answer_object(sv, id, 201, rs);
}

/* Answers {"objects": [...]} for one image (image_id > 0) or all. */
static void answer_objects(s2_server *sv, int64_t image_id, bool all, s2_resp *rs) {
    s2_store_object *os = NULL;
    int n = 0;
    int rc = s2_store_list_objects(sv->store, image_id, all, &os, &n);
    if (rc < 0) {
        s2_resp_lib_error(rs, rc);
        return;
    }
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "objects");
    s2_jw_arr_begin(&w);
    for (int i = 0; i < n; i++) write_object(&w, &os[i]);
    s2_jw_arr_end(&w);
    s2_jw_obj_end(&w);
    s2_store_objects_free(os, n);
    s2_resp_json(rs, 200, &w);
}

/* GET /api/images/{id}/objects[?all=1] (all: rejected ones too) */
void s2_h_objects_list(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    s2_store_image im;
    int rc = s2_store_get_image(sv->store, rq->id, &im, NULL, NULL);
    if (rc < 0) {
        s2_resp_lib_error(rs, rc);
        return;
    }
    const char *all = s2_req_query(rq, "all");
    answer_objects(sv, rq->id, all && strcmp(all, "0") && strcmp(all, "false"), rs);
}

/* GET /api/objects/{id} */
void s2_h_object_get(s2_server *sv, const s2_req *rq, s2_resp *rs) { answer_object(sv, rq->id, 200, rs); }

/* PATCH /api/objects/{id} {"label": "...", "status": "accepted" | "rejected"} */
void s2_h_object_patch(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    s2_json *j = s2_req_json(sv, rq, rs);
    if (!j) return;
    const s2_json *label = s2_json_get(j, "label");
    const char *status = s2_json_str(j, "status"), *why = NULL;
    int rejected = -1;
    for (int i = 0; i < j->n && !why; i++)
        if (strcmp(j->keys[i], "label") && strcmp(j->keys[i], "status")) why = "unknown key (label, status)";
    if (!why && !label && !s2_json_get(j, "status")) why = "nothing to change: give 'label' and/or 'status'";
    if (!why && label) why = s2_check_label(label);
    if (!why && s2_json_get(j, "status")) {
        if (status && !strcmp(status, "accepted")) rejected = 0;
        else if (status && !strcmp(status, "rejected")) rejected = 1;
        else why = "'status' must be \"accepted\" or \"rejected\"";
    }
    int rc = why ? SAM2C_OK : s2_store_update_object(sv->store, rq->id, label ? label->str : NULL, rejected);
    s2_json_free(j);
    if (why) s2_resp_error(rs, 400, "%s", why);
    else if (rc < 0) s2_resp_lib_error(rs, rc);
    else answer_object(sv, rq->id, 200, rs);
}

/* DELETE /api/objects/{id}: rejects the object (kept in the project, left out of the
 * export; PATCH status "accepted" restores it). */
void s2_h_object_delete(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    int rc = s2_store_update_object(sv->store, rq->id, NULL, 1);
    if (rc < 0) s2_resp_lib_error(rs, rc);
    else answer_object(sv, rq->id, 200, rs);
}

/* The object's mask as a 0/255 grey PNG (caller frees *png). */
static int object_png(const s2_store_object *o, uint8_t **png, size_t *len) {
    s2_rle r = {0};
    S2_CHECK(s2_rle_from_string(o->counts, o->h, o->w, &r));
    uint8_t *m = s2_malloc((size_t)o->h * o->w);
    int rc = m ? s2_rle_decode(&r, m) : SAM2C_ERR_NOMEM;
    if (rc == SAM2C_OK) {
        for (int64_t i = 0; i < (int64_t)o->h * o->w; i++) m[i] = m[i] ? 255 : 0;
        rc = s2_png_encode(m, o->w, o->h, 1, png, len);
    }
    free(m);
    s2_rle_free(&r);
    return rc;
}

/* GET /api/objects/{id}/mask.png */
void s2_h_object_mask(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    s2_store_object o;
    uint8_t *png = NULL;
    size_t len = 0;
    int rc = s2_store_get_object(sv->store, rq->id, &o);
    if (rc == SAM2C_OK) rc = object_png(&o, &png, &len);
    s2_store_object_clear(&o);
    if (rc < 0) {
        s2_resp_lib_error(rs, rc);
        return;
    }
    rs->status = 200;
    rs->body = (char *)png;
    rs->len = len;
    rs->ctype = "image/png";
    snprintf(rs->disposition, sizeof rs->disposition, "inline; filename=\"object_%lld.png\"", (long long)rq->id);
}

/* ---- export ---- */

typedef struct project {
    s2_store_image *ims;
    int n_ims;
    s2_store_object *objs;
    int n_objs;
    const char **cats;  /* distinct labels, sorted; category id = index + 1 */
    int n_cats;
} project;

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Loads every image and accepted object, and the sorted distinct labels. */
static int load_project(s2_server *sv, project *p) {
    memset(p, 0, sizeof *p);
    S2_CHECK(s2_store_list_images(sv->store, &p->ims, &p->n_ims));
    S2_CHECK(s2_store_list_objects(sv->store, 0, false, &p->objs, &p->n_objs));
    p->cats = s2_malloc((size_t)S2_MAX(p->n_objs, 1) * sizeof *p->cats);
    if (!p->cats) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < p->n_objs; i++) p->cats[i] = p->objs[i].label;
    qsort(p->cats, (size_t)p->n_objs, sizeof *p->cats, cmp_str);
    for (int i = 0; i < p->n_objs; i++)
        if (p->n_cats == 0 || strcmp(p->cats[p->n_cats - 1], p->cats[i])) p->cats[p->n_cats++] = p->cats[i];
    return SAM2C_OK;
}

static void free_project(project *p) {
    free(p->ims);
    s2_store_objects_free(p->objs, p->n_objs);
    free(p->cats);
}

static int category_id(const project *p, const char *label) {
    const char **hit = bsearch(&label, p->cats, (size_t)p->n_cats, sizeof *p->cats, cmp_str);
    return hit ? (int)(hit - p->cats) + 1 : 0;
}

static void write_categories(s2_jw *w, const project *p) {
    s2_jw_key(w, "categories");
    s2_jw_arr_begin(w);
    for (int c = 0; c < p->n_cats; c++) {
        s2_jw_obj_begin(w);
        s2_jw_key(w, "id"); s2_jw_int(w, c + 1);
        s2_jw_key(w, "name"); s2_jw_str(w, p->cats[c]);
        s2_jw_key(w, "supercategory"); s2_jw_str(w, "");
        s2_jw_obj_end(w);
    }
    s2_jw_arr_end(w);
}

/* The COCO "instances" document of the project. */
static void write_coco(s2_server *sv, s2_jw *w, const project *p) {
    char date[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    s2_jw_obj_begin(w);
    s2_jw_key(w, "info");
    s2_jw_obj_begin(w);
    s2_jw_key(w, "description"); s2_jw_str(w, "sam2c annotation project");
    s2_jw_key(w, "version"); s2_jw_str(w, SAM2C_VERSION);
    s2_jw_key(w, "model"); s2_jw_str(w, sam2c_model_name(sv->m));
    s2_jw_key(w, "date_created"); s2_jw_str(w, date);
    s2_jw_obj_end(w);
    s2_jw_key(w, "licenses"); s2_jw_arr_begin(w); s2_jw_arr_end(w);
    s2_jw_key(w, "images");
    s2_jw_arr_begin(w);
    for (int i = 0; i < p->n_ims; i++) {
        s2_jw_obj_begin(w);
        s2_jw_key(w, "id"); s2_jw_int(w, p->ims[i].id);
        s2_jw_key(w, "file_name"); s2_jw_str(w, p->ims[i].name);
        s2_jw_key(w, "width"); s2_jw_int(w, p->ims[i].w);
        s2_jw_key(w, "height"); s2_jw_int(w, p->ims[i].h);
        s2_jw_obj_end(w);
    }
    s2_jw_arr_end(w);
    s2_jw_key(w, "annotations");
    s2_jw_arr_begin(w);
    for (int i = 0; i < p->n_objs; i++) {
        const s2_store_object *o = &p->objs[i];
        s2_jw_obj_begin(w);
        s2_jw_key(w, "id"); s2_jw_int(w, o->id);
        s2_jw_key(w, "image_id"); s2_jw_int(w, o->image_id);
        s2_jw_key(w, "category_id"); s2_jw_int(w, category_id(p, o->label));
        s2_jw_key(w, "segmentation");
        s2_jw_obj_begin(w);
        s2_jw_key(w, "size");
        s2_jw_arr_begin(w); s2_jw_int(w, o->h); s2_jw_int(w, o->w); s2_jw_arr_end(w);
        s2_jw_key(w, "counts"); s2_jw_str(w, o->counts);
        s2_jw_obj_end(w);
        s2_jw_key(w, "area"); s2_jw_int(w, o->area);
        s2_jw_key(w, "bbox");
        s2_jw_arr_begin(w);
        for (int k = 0; k < 4; k++) s2_jw_num(w, o->bbox[k]);
        s2_jw_arr_end(w);
        s2_jw_key(w, "iscrowd"); s2_jw_int(w, 0);
        if (isfinite(o->iou_pred)) { s2_jw_key(w, "score"); s2_jw_num(w, o->iou_pred); }
        s2_jw_obj_end(w);
    }
    s2_jw_arr_end(w);
    write_categories(w, p);
    s2_jw_obj_end(w);
}

/* The PNG-mask index: images, each with its objects' mask files and URLs. */
static void write_png_index(s2_jw *w, const project *p) {
    s2_jw_obj_begin(w);
    s2_jw_key(w, "images");
    s2_jw_arr_begin(w);
    for (int i = 0; i < p->n_ims; i++) {
        s2_jw_obj_begin(w);
        s2_jw_key(w, "id"); s2_jw_int(w, p->ims[i].id);
        s2_jw_key(w, "file_name"); s2_jw_str(w, p->ims[i].name);
        s2_jw_key(w, "width"); s2_jw_int(w, p->ims[i].w);
        s2_jw_key(w, "height"); s2_jw_int(w, p->ims[i].h);
        s2_jw_key(w, "objects");
        s2_jw_arr_begin(w);
        for (int k = 0; k < p->n_objs; k++) {
            const s2_store_object *o = &p->objs[k];
            if (o->image_id != p->ims[i].id) continue;
            char buf[96];
            s2_jw_obj_begin(w);
            s2_jw_key(w, "id"); s2_jw_int(w, o->id);
            s2_jw_key(w, "label"); s2_jw_str(w, o->label);
            s2_jw_key(w, "category_id"); s2_jw_int(w, category_id(p, o->label));
            snprintf(buf, sizeof buf, "masks/%lld_%lld.png", (long long)o->image_id, (long long)o->id);
            s2_jw_key(w, "file"); s2_jw_str(w, buf);
            snprintf(buf, sizeof buf, "/api/objects/%lld/mask.png", (long long)o->id);
            s2_jw_key(w, "url"); s2_jw_str(w, buf);
            s2_jw_key(w, "area"); s2_jw_int(w, o->area);
            s2_jw_obj_end(w);
        }
        s2_jw_arr_end(w);
        s2_jw_obj_end(w);
    }
    s2_jw_arr_end(w);
    write_categories(w, p);
    s2_jw_obj_end(w);
}

/* Appends one ustar member (name < 100 bytes). */
static void tar_add(FILE *f, const char *name, const void *data, size_t len) {
    char h[512];
    memset(h, 0, sizeof h);
    snprintf(h, 100, "%s", name);
    snprintf(h + 100, 8, "%07o", 0644);
    snprintf(h + 108, 8, "%07o", 0);
    snprintf(h + 116, 8, "%07o", 0);
    snprintf(h + 124, 12, "%011llo", (unsigned long long)len);
    snprintf(h + 136, 12, "%011llo", (unsigned long long)time(NULL));
    memset(h + 148, ' ', 8);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += (unsigned char)h[i];
    snprintf(h + 148, 8, "%06o", sum);
    h[155] = ' ';
    fwrite(h, 1, 512, f);
    fwrite(data, 1, len, f);
    static const char zero[512];
    if (len % 512) fwrite(zero, 1, 512 - len % 512, f);
}

/* A tar of index.json + masks/<image>_<object>.png. */
static int write_png_tar(const project *p, char **out, size_t *out_len) {
    FILE *f = open_memstream(out, out_len);
    if (!f) return s2_err(SAM2C_ERR_NOMEM, "out of memory");
    s2_jw w;
    s2_jw_init(&w);
    write_png_index(&w, p);
    int rc = w.failed ? s2_err(SAM2C_ERR_NOMEM, "out of memory") : SAM2C_OK;
    if (rc == SAM2C_OK) tar_add(f, "index.json", w.buf, w.len);
    s2_jw_free(&w);
    for (int k = 0; k < p->n_objs && rc == SAM2C_OK; k++) {
        uint8_t *png = NULL;
        size_t len = 0;
        char name[96];
        rc = object_png(&p->objs[k], &png, &len);
        snprintf(name, sizeof name, "masks/%lld_%lld.png", (long long)p->objs[k].image_id, (long long)p->objs[k].id);
        if (rc == SAM2C_OK) tar_add(f, name, png, len);
        free(png);
    }
    static const char end[1024];
    fwrite(end, 1, sizeof end, f);
    if (fclose(f) != 0 && rc == SAM2C_OK) rc = s2_err(SAM2C_ERR_NOMEM, "out of memory");
    if (rc < 0) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* GET /api/export?format=coco | png [&archive=tar] */
void s2_h_export(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    const char *fmt = s2_req_query(rq, "format"), *archive = s2_req_query(rq, "archive");
    if (!fmt) fmt = "coco";
    if (strcmp(fmt, "coco") && strcmp(fmt, "png")) {
        s2_resp_error(rs, 400, "unknown export format '%.20s' (coco, png)", fmt);
        return;
    }
    if (archive && (strcmp(archive, "tar") || strcmp(fmt, "png"))) {
        s2_resp_error(rs, 400, "archive=tar is the only archive, for format=png");
        return;
    }
    project p;
    int rc = load_project(sv, &p);
    if (rc == SAM2C_OK && archive) {
        char *buf = NULL;
        size_t len = 0;
        rc = write_png_tar(&p, &buf, &len);
        if (rc == SAM2C_OK) {
            rs->status = 200;
            rs->body = buf;
            rs->len = len;
            rs->ctype = "application/x-tar";
            snprintf(rs->disposition, sizeof rs->disposition, "attachment; filename=\"masks.tar\"");
        }
    } else if (rc == SAM2C_OK) {
        s2_jw w;
        s2_jw_init(&w);
        if (!strcmp(fmt, "coco")) write_coco(sv, &w, &p);
        else write_png_index(&w, &p);
        s2_resp_json(rs, 200, &w);
        snprintf(rs->disposition, sizeof rs->disposition, "attachment; filename=\"%s\"",
                 !strcmp(fmt, "coco") ? "instances.json" : "masks_index.json");
    }
    free_project(&p);
    if (rc < 0) s2_resp_lib_error(rs, rc);
}

#endif
