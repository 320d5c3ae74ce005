/* Image routes: upload, list, fetch, predict (points / box -> masks as COCO RLE),
 * background encode jobs. A request is checked completely before it can start an
 * encode, so a bad prompt never costs an image encoding. */
#include "server/internal.h"
#include "io/image.h"
#include "io/rle.h"

#ifdef SAM2C_HAVE_SERVER
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int s2_server_load_image(void *user, int64_t id, s2_image *out) {
    s2_server *sv = user;
    uint8_t *data = NULL;
    size_t len = 0;
    s2_store_image info;
    S2_CHECK(s2_store_get_image(sv->store, id, &info, &data, &len));
    s2_image_opts o;
    s2_image_opts_default(&o);
    o.max_pixels = sv->p.max_pixels;
    int rc = s2_image_decode(data, len, info.name, &o, out);
    free(data);
    return rc;
}

/* Cuts at a UTF-8 boundary, so that a name is never a broken sequence. */
void s2_sanitize_name(const char *in, const char *fallback, char *out, size_t cap) {
    const char *base = in ? in : "";
    for (const char *p = base; *p; p++)
        if (*p == '/' || *p == '\\') base = p + 1;
    size_t n = 0, lim = S2_MIN(cap - 1, (size_t)200);
    for (const unsigned char *p = (const unsigned char *)base; *p && n < lim; p++) {
        unsigned char ch = *p;
        if (ch < 0x20 || ch == 0x7f) continue;
        out[n++] = (ch == '"' || ch == ';') ? '_' : (char)ch;
    }
    while (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0x80) n--;     /* drop a cut sequence */
    if (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0xC0) n--;
    out[n] = 0;
    if (n == 0 || !strcmp(out, ".") || !strcmp(out, "..")) snprintf(out, cap, "%s", fallback);
}

/* The image type from the first bytes (the Content-Type is only a hint). */
static const char *sniff_mime(const char *b, size_t n) {
    const unsigned char *u = (const unsigned char *)b;
    if (n >= 3 && u[0] == 0xFF && u[1] == 0xD8 && u[2] == 0xFF) return "image/jpeg";
    if (n >= 8 && !memcmp(u, "\x89PNG\r\n\x1a\n", 8)) return "image/png";
    return NULL;
}

/* Writes one image record. */
static void write_image(s2_server *sv, s2_jw *w, const s2_store_image *im, int64_t job) {
    s2_jw_obj_begin(w);
    s2_jw_key(w, "id"); s2_jw_int(w, im->id);
    s2_jw_key(w, "name"); s2_jw_str(w, im->name);
    s2_jw_key(w, "mime"); s2_jw_str(w, im->mime);
    s2_jw_key(w, "width"); s2_jw_int(w, im->w);
    s2_jw_key(w, "height"); s2_jw_int(w, im->h);
    s2_jw_key(w, "bytes"); s2_jw_int(w, im->bytes);
    s2_jw_key(w, "objects"); s2_jw_int(w, im->n_objects);
    s2_jw_key(w, "encoded"); s2_jw_bool(w, s2_cache_is_encoded(sv->cache, im->id));
    s2_jw_key(w, "created"); s2_jw_num(w, im->created);
    if (job > 0) { s2_jw_key(w, "job"); s2_jw_int(w, job); }
    s2_jw_obj_end(w);
}

/* POST /api/images[?name=FILE][&encode=1], body = the JPEG or PNG file. */
void s2_h_images_upload(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    const char *ct = rq->ctype;
    if (!ct || !(strncasecmp(ct, "image/", 6) == 0 || strncasecmp(ct, "application/octet-stream", 24) == 0))
        { s2_resp_error(rs, 415, "expected an image body (Content-Type image/jpeg, image/png or "
                                      "application/octet-stream)"); return; }
    if (rq->len == 0) { s2_resp_error(rs, 400, "empty body: the image file is expected"); return; }
    const char *mime = sniff_mime(rq->body, rq->len);
    if (!mime) { s2_resp_error(rs, 415, "the body is not a JPEG or PNG file"); return; }
    char name[256];
    s2_sanitize_name(s2_req_query(rq, "name"), !strcmp(mime, "image/png") ? "image.png" : "image.jpg", name, sizeof name);
    s2_image_opts o;
    s2_image_opts_default(&o);
    o.max_pixels = sv->p.max_pixels;
    s2_image im = {0};
    int rc = s2_image_decode((const uint8_t *)rq->body, rq->len, name, &o, &im);
    if (rc < 0) { s2_resp_lib_error(rs, rc == SAM2C_ERR_IO ? SAM2C_ERR_FORMAT : rc); return; }
    int w = im.w, h = im.h;
    s2_image_free(&im);
    s2_store_image info = {0};
    rc = s2_store_add_image(sv->store, name, mime, w, h, (const uint8_t *)rq->body, rq->len, &info.id);
    if (rc < 0) { s2_resp_lib_error(rs, rc); return; }
    int64_t job = 0;
    const char *enc = s2_req_query(rq, "encode");
    if (enc && strcmp(enc, "0") && strcmp(enc, "false") && s2_cache_submit(sv->cache, info.id, &job) < 0) job = 0;
    rc = s2_store_get_image(sv->store, info.id, &info, NULL, NULL);
    if (rc < 0) { s2_resp_lib_error(rs, rc); return; }
    s2_jw jw;
    s2_jw_init(&jw);
    write_image(sv, &jw, &info, job);
    s2_resp_json(rs, 201, &jw);
}

/* GET /api/images */
void s2_h_images_list(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    (void)rq;
    s2_store_image *ims = NULL;
    int n = 0;
    int rc = s2_store_list_images(sv->store, &ims, &n);
    if (rc < 0) { s2_resp_lib_error(rs, rc); return; }
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "images");
    s2_jw_arr_begin(&w);
    for (int i = 0; i < n; i++) write_image(sv, &w, &ims[i], 0);
    s2_jw_arr_end(&w);
    s2_jw_obj_end(&w);
    free(ims);
    s2_resp_json(rs, 200, &w);
}

/* GET /api/images/{id}: the stored file; ?meta=1 gives its record instead. */
void s2_h_image_get(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    s2_store_image info;
    const char *meta = s2_req_query(rq, "meta");
    bool only_meta = meta && strcmp(meta, "0");
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = s2_store_get_image(sv->store, rq->id, &info, only_meta ? NULL : &data, &len);
    if (rc < 0) { s2_resp_lib_error(rs, rc); return; }
    if (only_meta) {
        s2_jw w;
        s2_jw_init(&w);
        write_image(sv, &w, &info, 0);
        { s2_resp_json(rs, 200, &w); return; }
    }
    rs->status = 200;
    rs->body = (char *)data;
    rs->len = len;
    rs->ctype = !strcmp(info.mime, "image/png") ? "image/png" : "image/jpeg";
    snprintf(rs->disposition, sizeof rs->disposition, "inline; filename=\"%.120s\"", info.name);
}

/* ---- predict ---- */

/* A finite JSON number at arr[i]. */
static bool num_at(const s2_json *arr, int i, double *v) {
    const s2_json *e = s2_json_at(arr, i);
    if (!e || e->type != S2_JNUM || !isfinite(e->num)) return false;
    *v = e->num;
    return true;
}

/* Formats a reason into err[256]; returns false. */
static bool fail(char *err, const char *fmt, ...) S2_PRINTF(2, 3);
static bool fail(char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, 256, fmt, ap);
    va_end(ap);
    return false;
}

/* A key the prompt reader knows, or one of `extra`. */
static bool known_key(const char *k, const char *const *extra) {
    static const char *const base[] = {"points", "labels", "box", "multimask", NULL};
    for (int i = 0; base[i]; i++)
        if (!strcmp(k, base[i])) return true;
    for (int i = 0; extra && extra[i]; i++)
        if (!strcmp(k, extra[i])) return true;
    return false;
}

void s2_prompt_in_free(s2_prompt_in *p) {
    free(p->points);
    free(p->labels);
    p->points = NULL;
    p->labels = NULL;
}

bool s2_read_prompt(s2_server *sv, const s2_json *j, int w, int h, const char *const *extra, s2_prompt_in *p,
                    char err[256]) {
    memset(p, 0, sizeof *p);
    const s2_json *pts = s2_json_get(j, "points"), *lab = s2_json_get(j, "labels"), *box = s2_json_get(j, "box");
    for (int i = 0; i < j->n; i++)
        if (!known_key(j->keys[i], extra)) return fail(err, "unknown key '%.40s'", j->keys[i]);
    if ((pts && pts->type != S2_JARR) || (s2_json_get(j, "points") == NULL && s2_json_get(j, "labels")))
        return fail(err, "'points' must be an array of [x, y] with 'labels' beside it");
    int n = pts ? pts->n : 0;
    if (n > sv->p.max_points) return fail(err, "too many points (%d, limit %d)", n, sv->p.max_points);
    if (n && (!lab || lab->type != S2_JARR || lab->n != n))
        return fail(err, "'labels' must be an array with one label per point");
    p->points = s2_malloc((size_t)S2_MAX(n, 1) * 2 * sizeof(float));
    p->labels = s2_malloc((size_t)S2_MAX(n, 1) * sizeof(int32_t));
    if (!p->points || !p->labels) return fail(err, "out of memory");
    for (int i = 0; i < n; i++) {
        const s2_json *pt = s2_json_at(pts, i);
        double x, y, l;
        if (!pt || pt->type != S2_JARR || pt->n != 2 || !num_at(pt, 0, &x) || !num_at(pt, 1, &y))
            return fail(err, "point %d: [x, y] with two numbers expected", i);
        if (!(x >= 0 && x <= w && y >= 0 && y <= h))
            return fail(err, "point %d (%g, %g) is outside the %d x %d image", i, x, y, w, h);
        if (!num_at(lab, i, &l) || (l != 0 && l != 1))
            return fail(err, "label %d: 1 (positive) or 0 (negative) expected", i);
        p->points[2 * i] = (float)x;
        p->points[2 * i + 1] = (float)y;
        p->labels[i] = (int32_t)l;
    }
    p->n_points = n;
    if (box && box->type != S2_JNULL) {
        double b[4];
        for (int k = 0; k < 4; k++)
            if (box->type != S2_JARR || box->n != 4 || !num_at(box, k, &b[k]))
                return fail(err, "'box' must be [x0, y0, x1, y1]");
        if (!(b[0] >= 0 && b[1] >= 0 && b[2] <= w && b[3] <= h && b[0] <= b[2] && b[1] <= b[3]))
            return fail(err, "box (%g, %g, %g, %g) is not inside the %d x %d image with x0 <= x1, y0 <= y1",
                                 b[0], b[1], b[2], b[3], w, h);
        for (int k = 0; k < 4; k++) p->box[k] = (float)b[k];
        p->has_box = true;
    }
    if (!n && !p->has_box) return fail(err, "no prompt: give 'points' (+ 'labels') or a 'box'");
    const s2_json *mm = s2_json_get(j, "multimask");
    if (mm && mm->type != S2_JBOOL) return fail(err, "'multimask' must be true or false");
    p->multimask = mm ? mm->b : (n == 1 && !p->has_box);
    return true;
}

/* Writes the masks of a prediction as COCO RLE records. */
static int write_masks(s2_jw *w, const sam2c_masks *r) {
    int64_t hw = (int64_t)r->width * r->height;
    uint8_t *bin = s2_malloc((size_t)hw);
    if (!bin) return SAM2C_ERR_NOMEM;
    int best = 0, rc = SAM2C_OK;
    for (int k = 1; k < r->n_masks; k++)
        if (r->iou[k] > r->iou[best]) best = k;
    s2_jw_key(w, "best"); s2_jw_int(w, best);
    s2_jw_key(w, "masks");
    s2_jw_arr_begin(w);
    for (int k = 0; k < r->n_masks && rc == SAM2C_OK; k++) {
        const float *m = r->masks + k * hw;
        for (int64_t i = 0; i < hw; i++) bin[i] = m[i] > 0.0f;
        s2_jw_obj_begin(w);
        s2_jw_key(w, "iou_pred"); s2_jw_num(w, r->iou[k]);
        rc = s2_write_mask_rle(w, bin, r->height, r->width);
        s2_jw_obj_end(w);
    }
    s2_jw_arr_end(w);
    free(bin);
    return rc;
}

/* Runs the prediction on the image's session and writes the response. */
static void run_predict(s2_server *sv, int64_t id, const s2_prompt_in *p, s2_resp *rs) {
    s2_cache_entry *e = NULL;
    sam2c_image_session *s = NULL;
    int encoded = 0;
    double t0 = s2_now_s();
    int rc = s2_cache_acquire(sv->cache, id, &e, &s, &encoded);
    if (rc < 0) { s2_resp_lib_error(rs, rc); return; }
    double t1 = s2_now_s();
    sam2c_prompt sp = {.n_points = p->n_points, .points = p->points, .labels = p->labels,
                       .n_boxes = p->has_box ? 1 : 0, .boxes = p->box, .multimask = p->multimask,
                       .return_logits = 0};
    sam2c_masks r;
    rc = sam2c_image_predict(s, &sp, &r);
    double t2 = s2_now_s();
    s2_jw w;
    s2_jw_init(&w);
    if (rc == SAM2C_OK) {
        s2_jw_obj_begin(&w);
        s2_jw_key(&w, "image_id"); s2_jw_int(&w, id);
        s2_jw_key(&w, "width"); s2_jw_int(&w, r.width);
        s2_jw_key(&w, "height"); s2_jw_int(&w, r.height);
        s2_jw_key(&w, "multimask"); s2_jw_bool(&w, p->multimask);
        s2_jw_key(&w, "encoded_now"); s2_jw_bool(&w, encoded != 0);
        s2_jw_key(&w, "wait_ms"); s2_jw_num(&w, 1e3 * (t1 - t0));
        s2_jw_key(&w, "predict_ms"); s2_jw_num(&w, 1e3 * (t2 - t1));
        s2_jw_key(&w, "object_score"); s2_jw_num(&w, r.object_score[0]);
        rc = write_masks(&w, &r);
        s2_jw_obj_end(&w);
    }
    s2_cache_release(sv->cache, e);
    if (rc < 0) {
        s2_jw_free(&w);
        { s2_resp_lib_error(rs, rc); return; }
    }
    s2_metrics_predict(sv, t2 - t1);
    s2_resp_json(rs, 200, &w);
}

/* POST /api/images/{id}/predict {"points": [[x, y], ...], "labels": [1, 0, ...],
 * "box": [x0, y0, x1, y1], "multimask": bool} */
void s2_h_predict(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    s2_json *j = s2_req_json(sv, rq, rs);
    if (!j) return;
    s2_store_image info;
    int rc = s2_store_get_image(sv->store, rq->id, &info, NULL, NULL);
    s2_prompt_in p;
    memset(&p, 0, sizeof p);
    char err[256];
    if (rc < 0) s2_resp_lib_error(rs, rc);
    else if (!s2_read_prompt(sv, j, info.w, info.h, NULL, &p, err)) s2_resp_error(rs, strncmp(err, "out of memory", 13) ? 400 : 503, "%s", err);
    else run_predict(sv, rq->id, &p, rs);
    s2_prompt_in_free(&p);
    s2_json_free(j);
}

void s2_write_job(s2_server *sv, s2_jw *w, const s2_job_info *ji) {
    bool import = !strcmp(ji->kind, "video_import");
    s2_jw_obj_begin(w);
    s2_jw_key(w, "id"); s2_jw_int(w, ji->id);
    s2_jw_key(w, "kind"); s2_jw_str(w, ji->kind);
    s2_jw_key(w, !strcmp(ji->kind, "encode") ? "image_id" : import ? "import_id" : "video_id"); s2_jw_int(w, ji->ref);
    if (import && ji->state == S2_JOB_DONE) { s2_jw_key(w, "video_id"); s2_jw_int(w, s2_vimport_video(sv, ji->ref)); }
    s2_jw_key(w, "state"); s2_jw_str(w, s2_job_state_name(ji->state));
    s2_jw_key(w, "progress"); s2_jw_num(w, ji->progress);
    s2_jw_key(w, "elapsed_s"); s2_jw_num(w, ji->elapsed_s);
    s2_jw_key(w, "queue_pos"); s2_jw_int(w, ji->queue_pos);
    if (ji->state == S2_JOB_FAILED) { s2_jw_key(w, "error"); s2_jw_str(w, ji->error); }
    s2_jw_obj_end(w);
}

/* POST /api/images/{id}/encode -> 202 {"id": job, ...} */
void s2_h_encode(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    s2_store_image info;
    int64_t job;
    s2_job_info ji;
    int rc = s2_store_get_image(sv->store, rq->id, &info, NULL, NULL);
    if (rc == SAM2C_OK) rc = s2_cache_submit(sv->cache, rq->id, &job);
    if (rc == SAM2C_OK) rc = s2_cache_job(sv->cache, job, &ji);
    if (rc < 0) { s2_resp_lib_error(rs, rc == SAM2C_ERR_LIMIT ? SAM2C_ERR_NOMEM : rc); return; }
    s2_jw w;
    s2_jw_init(&w);
    s2_write_job(sv, &w, &ji);
    s2_resp_json(rs, ji.state == S2_JOB_DONE ? 200 : 202, &w);
}

/* GET /api/jobs/{id} */
void s2_h_job(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    s2_job_info ji;
    int rc = s2_cache_job(sv->cache, rq->id, &ji);
    if (rc < 0) { s2_resp_lib_error(rs, rc); return; }
    s2_jw w;
    s2_jw_init(&w);
    s2_write_job(sv, &w, &ji);
    s2_resp_json(rs, 200, &w);
}

#endif
