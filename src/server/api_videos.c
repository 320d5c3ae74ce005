/* Video routes on the official SAM 2 video predictor (src/predict/video.h). A video is
 * an ordered list of uploaded images of one size (its frames). One video session is
 * kept in memory (the "slot"); clicks on a frame prompt an object (track), propagation
 * runs as a background job, per-frame masks are kept in the slot until a track is
 * accepted, which stores one object per frame on the frame images (so the COCO export
 * holds them like any other object). */
#include "server/internal.h"
#include "io/image.h"
#include "io/rle.h"

#ifdef SAM2C_HAVE_SERVER
#include "predict/video.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES 2000
#define MAX_FRAME_BYTES ((int64_t)3 << 30) /* decoded frames held while loading */
#define MAX_OBJ_ID 1000000

typedef struct vmask {             /* one object's mask on one frame */
    int obj_id;
    char *counts;                  /* COCO RLE string, owned */
    int64_t area;
    double bbox[4];
} vmask;

typedef struct vframe {
    vmask *m;
    int n, cap;
} vframe;

struct s2_vslot {
    pthread_mutex_t mu;
    pthread_cond_t cv;             /* busy cleared */
    int64_t video_id;              /* 0: empty */
    s2_video *v;
    int n, w, h;
    int64_t *frames;               /* [n] image ids */
    vframe *res;                   /* [n] latest masks per frame */
    bool busy, propagating;
};

int s2_vslot_create(struct s2_vslot **out) {
    struct s2_vslot *vs = s2_calloc(1, sizeof *vs);
    if (!vs) return SAM2C_ERR_NOMEM;
    pthread_mutex_init(&vs->mu, NULL);
    pthread_cond_init(&vs->cv, NULL);
    *out = vs;
    return SAM2C_OK;
}

/* Forgets the loaded video (slot held busy or being freed). */
static void unload(struct s2_vslot *vs) {
    s2_video_free(vs->v);
    for (int f = 0; vs->res && f < vs->n; f++) {
        for (int k = 0; k < vs->res[f].n; k++) free(vs->res[f].m[k].counts);
        free(vs->res[f].m);
    }
    free(vs->res);
    free(vs->frames);
    vs->v = NULL;
    vs->res = NULL;
    vs->frames = NULL;
    vs->n = vs->w = vs->h = 0;
    vs->video_id = 0;
}

void s2_vslot_free(struct s2_vslot *vs) {
    if (!vs) return;
    unload(vs);
    pthread_cond_destroy(&vs->cv);
    pthread_mutex_destroy(&vs->mu);
    free(vs);
}

/* Decodes every frame and starts a video session on them. */
static int load_video(s2_server *sv, int64_t vid, struct s2_vslot *vs) {
    s2_store_video info;
    int64_t *frames = NULL;
    S2_CHECK(s2_store_get_video(sv->store, vid, &info, &frames));
    int n = info.n_frames, rc = SAM2C_OK;
    s2_image *ims = s2_calloc((size_t)S2_MAX(n, 1), sizeof *ims);
    const uint8_t **px = s2_calloc((size_t)S2_MAX(n, 1), sizeof *px);
    if (!ims || !px) rc = SAM2C_ERR_NOMEM;
    for (int f = 0; f < n && rc == SAM2C_OK; f++) {
        rc = s2_server_load_image(sv, frames[f], &ims[f]);
        if (rc == SAM2C_OK && (ims[f].w != ims[0].w || ims[f].h != ims[0].h))
            rc = s2_err(SAM2C_ERR_SHAPE, "video %lld: frame %d is %d x %d, frame 0 is %d x %d", (long long)vid, f,
                        ims[f].w, ims[f].h, ims[0].w, ims[0].h);
        if (rc == SAM2C_OK) px[f] = ims[f].px;
    }
    s2_video *v = NULL;
    /* The panel keeps corrections as conditioning frames (they stick through later
     * propagations) and, holding every frame anyway, every output (exact corrections
     * anywhere in the video). */
    s2_video_params vp = s2_video_default_params(sv->m);
    vp.add_all_frames_to_correct_as_cond = true;
    vp.keep_all_outputs = true;
    if (rc == SAM2C_OK) rc = s2_video_create(sv->m, &vp, &v);
    if (rc == SAM2C_OK) rc = s2_video_set_frames(v, n, px, ims[0].w, ims[0].h);
    if (rc == SAM2C_OK && !(vs->res = s2_calloc((size_t)n, sizeof *vs->res))) rc = SAM2C_ERR_NOMEM;
    if (rc == SAM2C_OK) {
        vs->v = v;
        vs->n = n;
        vs->w = ims[0].w;
        vs->h = ims[0].h;
        vs->frames = frames;
        vs->video_id = vid;
    } else {
        s2_video_free(v);
        free(frames);
    }
    for (int f = 0; ims && f < n; f++) s2_image_free(&ims[f]);
    free(ims);
    free(px);
    return rc;
}

/* Takes the slot for video `vid` (loading it when another one is there). Refused
 * while a propagation runs, unless `wait_propagation`. Release with release_slot. */
static int acquire_slot(s2_server *sv, int64_t vid, bool wait_propagation) {
    struct s2_vslot *vs = sv->vslot;
    pthread_mutex_lock(&vs->mu);
    while (vs->busy) {
        if (vs->propagating && !wait_propagation) {
            pthread_mutex_unlock(&vs->mu);
            return s2_err(SAM2C_ERR_STATE, "a propagation is running on video %lld; wait for its job",
                          (long long)vs->video_id);
        }
        pthread_cond_wait(&vs->cv, &vs->mu);
    }
    vs->busy = true;
    bool need = vs->video_id != vid;
    pthread_mutex_unlock(&vs->mu);
    if (!need) return SAM2C_OK;
    pthread_mutex_lock(&vs->mu);
    unload(vs);
    pthread_mutex_unlock(&vs->mu);
    int rc = load_video(sv, vid, vs);
    if (rc < 0) {
        pthread_mutex_lock(&vs->mu);
        vs->busy = false;
        pthread_cond_broadcast(&vs->cv);
        pthread_mutex_unlock(&vs->mu);
    }
    return rc;
}

static void release_slot(s2_server *sv) {
    struct s2_vslot *vs = sv->vslot;
    pthread_mutex_lock(&vs->mu);
    vs->busy = false;
    vs->propagating = false;
    pthread_cond_broadcast(&vs->cv);
    pthread_mutex_unlock(&vs->mu);
}

/* Stores a frame's output as the latest masks of its objects. */
static int record(struct s2_vslot *vs, const s2_video_masks *m) {
    int64_t hw = (int64_t)m->w * m->h;
    uint8_t *bin = s2_malloc((size_t)S2_MAX(hw, 1));
    if (!bin) return SAM2C_ERR_NOMEM;
    int rc = SAM2C_OK;
    for (int k = 0; k < m->n_obj && rc == SAM2C_OK; k++) {
        for (int64_t i = 0; i < hw; i++) bin[i] = m->logits[k * hw + i] > 0.0f;
        s2_rle rle = {0};
        vmask vm = {.obj_id = m->obj_ids[k]};
        rc = s2_rle_encode(bin, m->h, m->w, &rle);
        if (rc == SAM2C_OK && !(vm.counts = s2_rle_to_string(&rle))) rc = SAM2C_ERR_NOMEM;
        if (rc == SAM2C_OK) {
            vm.area = s2_rle_area(&rle);
            s2_rle_bbox(&rle, vm.bbox);
            pthread_mutex_lock(&vs->mu);
            vframe *fr = &vs->res[m->frame_idx];
            int j = 0;
            while (j < fr->n && fr->m[j].obj_id != vm.obj_id) j++;
            if (j == fr->n && fr->n == fr->cap) {
                int cap = fr->cap ? 2 * fr->cap : 4;
                vmask *g = s2_realloc(fr->m, (size_t)cap * sizeof *g);
                if (g) { fr->m = g; fr->cap = cap; }
                else rc = SAM2C_ERR_NOMEM;
            }
            if (rc == SAM2C_OK) {
                if (j < fr->n) free(fr->m[j].counts);
                else fr->n++;
                fr->m[j] = vm;
                vm.counts = NULL;
            }
            pthread_mutex_unlock(&vs->mu);
        }
        free(vm.counts);
        s2_rle_free(&rle);
    }
    free(bin);
    return rc;
}

/* Writes {"frame", "image_id", "objects": [...]} from the slot's results (mutex held). */
static void write_frame(s2_jw *w, const struct s2_vslot *vs, int f) {
    s2_jw_obj_begin(w);
    s2_jw_key(w, "frame"); s2_jw_int(w, f);
    s2_jw_key(w, "image_id"); s2_jw_int(w, vs->frames[f]);
    s2_jw_key(w, "objects");
    s2_jw_arr_begin(w);
    for (int k = 0; k < vs->res[f].n; k++) {
        const vmask *m = &vs->res[f].m[k];
        s2_jw_obj_begin(w);
        s2_jw_key(w, "obj_id"); s2_jw_int(w, m->obj_id);
        s2_jw_key(w, "area"); s2_jw_int(w, m->area);
        s2_jw_key(w, "bbox");
        s2_jw_arr_begin(w);
        for (int i = 0; i < 4; i++) s2_jw_num(w, m->bbox[i]);
        s2_jw_arr_end(w);
        s2_jw_key(w, "segmentation");
        s2_jw_obj_begin(w);
        s2_jw_key(w, "size");
        s2_jw_arr_begin(w); s2_jw_int(w, vs->h); s2_jw_int(w, vs->w); s2_jw_arr_end(w);
        s2_jw_key(w, "counts"); s2_jw_str(w, m->counts);
        s2_jw_obj_end(w);
        s2_jw_obj_end(w);
    }
    s2_jw_arr_end(w);
    s2_jw_obj_end(w);
}

/* ---- routes ---- */

static void write_video(s2_jw *w, const s2_store_video *v, const int64_t *frames, int width, int height) {
    s2_jw_obj_begin(w);
    s2_jw_key(w, "id"); s2_jw_int(w, v->id);
    s2_jw_key(w, "name"); s2_jw_str(w, v->name);
    s2_jw_key(w, "n_frames"); s2_jw_int(w, v->n_frames);
    if (frames) {
        s2_jw_key(w, "frames");
        s2_jw_arr_begin(w);
        for (int i = 0; i < v->n_frames; i++) s2_jw_int(w, frames[i]);
        s2_jw_arr_end(w);
        s2_jw_key(w, "width"); s2_jw_int(w, width);
        s2_jw_key(w, "height"); s2_jw_int(w, height);
    }
    s2_jw_obj_end(w);
}

/* GET /api/videos */
void s2_h_videos_list(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    (void)rq;
    s2_store_video *vs = NULL;
    int n = 0, rc = s2_store_list_videos(sv->store, &vs, &n);
    if (rc < 0) { s2_resp_lib_error(rs, rc); return; }
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "videos");
    s2_jw_arr_begin(&w);
    for (int i = 0; i < n; i++) write_video(&w, &vs[i], NULL, 0, 0);
    s2_jw_arr_end(&w);
    s2_jw_obj_end(&w);
    free(vs);
    s2_resp_json(rs, 200, &w);
}

/* Checks a frame list: existing images of one size. */
static int check_frames(s2_server *sv, const s2_json *fr, int64_t *ids, int *w, int *h) {
    int64_t bytes = 0;
    for (int i = 0; i < fr->n; i++) {
        const s2_json *e = s2_json_at(fr, i);
        if (e->type != S2_JNUM || e->num < 1 || e->num > 1e15 || e->num != (double)(int64_t)e->num)
            return s2_err(SAM2C_ERR_ARG, "frames[%d] is not an image id", i);
        ids[i] = (int64_t)e->num;
        s2_store_image im;
        S2_CHECK(s2_store_get_image(sv->store, ids[i], &im, NULL, NULL));
        if (i == 0) { *w = im.w; *h = im.h; }
        else if (im.w != *w || im.h != *h)
            return s2_err(SAM2C_ERR_ARG, "frame %d (image %lld) is %d x %d, frame 0 is %d x %d", i,
                          (long long)ids[i], im.w, im.h, *w, *h);
        bytes += (int64_t)im.w * im.h * 3;
    }
    if (bytes > MAX_FRAME_BYTES) return s2_err(SAM2C_ERR_LIMIT, "the frames are too large to hold decoded (%lld bytes)", (long long)bytes);
    return SAM2C_OK;
}

/* POST /api/videos {"name": "...", "frames": [image ids in order]} */
void s2_h_videos_create(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    s2_json *j = s2_req_json(sv, rq, rs);
    if (!j) return;
    const s2_json *fr = s2_json_get(j, "frames");
    const char *name = s2_json_str(j, "name");
    int64_t *ids = NULL, id = 0;
    int w = 0, h = 0, rc = SAM2C_OK;
    if (!fr || fr->type != S2_JARR || fr->n < 1 || fr->n > MAX_FRAMES)
        rc = s2_err(SAM2C_ERR_ARG, "'frames' must be an array of 1 to %d image ids", MAX_FRAMES);
    else if (s2_json_get(j, "name") && (!name || strlen(name) > 200))
        rc = s2_err(SAM2C_ERR_ARG, "'name' must be a string of at most 200 bytes");
    if (rc == SAM2C_OK) rc = (ids = s2_malloc((size_t)fr->n * sizeof *ids)) ? SAM2C_OK : SAM2C_ERR_NOMEM;
    if (rc == SAM2C_OK) rc = check_frames(sv, fr, ids, &w, &h);
    if (rc == SAM2C_ERR_MISSING) rc = s2_err_prefix(SAM2C_ERR_ARG, "frames: ");
    if (rc == SAM2C_OK) rc = s2_store_add_video(sv->store, name ? name : "video", ids, fr->n, &id);
    if (rc < 0) s2_resp_lib_error(rs, rc);
    else {
        s2_store_video v = {.id = id, .n_frames = fr->n};
        snprintf(v.name, sizeof v.name, "%s", name ? name : "video");
        s2_jw jw;
        s2_jw_init(&jw);
        write_video(&jw, &v, ids, w, h);
        s2_resp_json(rs, 201, &jw);
    }
    free(ids);
    s2_json_free(j);
}

/* GET /api/videos/{id} */
void s2_h_video_get(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    s2_store_video v;
    int64_t *frames = NULL;
    s2_store_image im = {0};
    int rc = s2_store_get_video(sv->store, rq->id, &v, &frames);
    if (rc == SAM2C_OK) rc = s2_store_get_image(sv->store, frames[0], &im, NULL, NULL);
    if (rc < 0) { free(frames); s2_resp_lib_error(rs, rc); return; }
    s2_jw w;
    s2_jw_init(&w);
    write_video(&w, &v, frames, im.w, im.h);
    free(frames);
    s2_resp_json(rs, 200, &w);
}

/* An integer member in [lo, hi]; false when absent or bad. */
static bool int_member(const s2_json *j, const char *key, int64_t lo, int64_t hi, int64_t *out) {
    return s2_json_int(j, key, out) && *out >= lo && *out <= hi;
}

/* Drops object `obj`'s mask on frame f (before a clear re-records the frame). */
static void forget_mask(struct s2_vslot *vs, int f, int obj) {
    pthread_mutex_lock(&vs->mu);
    vframe *fr = &vs->res[f];
    for (int k = 0; k < fr->n; k++)
        if (fr->m[k].obj_id == obj) {
            free(fr->m[k].counts);
            fr->m[k] = fr->m[--fr->n];
            break;
        }
    pthread_mutex_unlock(&vs->mu);
}

/* Runs the prompt (or the clear) on the loaded video and records the frame. */
static int run_prompt(struct s2_vslot *vs, int frame, int obj, bool clear, const s2_prompt_in *p) {
    s2_video_masks out;
    if (clear) {
        S2_CHECK(s2_video_clear_prompts(vs->v, frame, obj, &out));
        forget_mask(vs, frame, obj);
    } else
        S2_CHECK(s2_video_add_points_or_box(vs->v, frame, obj, p->n_points ? p->points : NULL,
                                            p->n_points ? p->labels : NULL, p->n_points, p->has_box ? p->box : NULL,
                                            true, true, &out));
    return record(vs, &out);
}

/* POST /api/videos/{id}/prompt {"frame": k, "obj_id": n, "points": ..., "labels": ...,
 * "box": ...} (or {"frame", "obj_id", "clear": true} to drop that object's prompts on
 * the frame) -> the masks of every object on that frame. */
void s2_h_video_prompt(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    static const char *const extra[] = {"frame", "obj_id", "clear", NULL};
    s2_json *j = s2_req_json(sv, rq, rs);
    if (!j) return;
    s2_store_video info;
    s2_store_image im = {0};
    int64_t *frames = NULL, frame = -1, obj = -1;
    s2_prompt_in p = {0};
    char err[256] = "";
    int rc = s2_store_get_video(sv->store, rq->id, &info, &frames);
    if (rc == SAM2C_OK) rc = s2_store_get_image(sv->store, frames[0], &im, NULL, NULL);
    free(frames);
    if (rc < 0) { s2_json_free(j); s2_resp_lib_error(rs, rc); return; }
    if (!int_member(j, "frame", 0, info.n_frames - 1, &frame))
        snprintf(err, sizeof err, "'frame' must be an integer in 0..%d", info.n_frames - 1);
    else if (!int_member(j, "obj_id", 0, MAX_OBJ_ID, &obj))
        snprintf(err, sizeof err, "'obj_id' must be an integer in 0..%d", MAX_OBJ_ID);
    const s2_json *cl = s2_json_get(j, "clear");
    bool clear = cl && cl->type == S2_JBOOL && cl->b;
    if (!err[0] && cl && cl->type != S2_JBOOL) snprintf(err, sizeof err, "'clear' must be true or false");
    else if (!err[0] && !clear) s2_read_prompt(sv, j, im.w, im.h, extra, &p, err);
    s2_json_free(j);
    if (err[0]) { s2_prompt_in_free(&p); s2_resp_error(rs, 400, "%s", err); return; }
    rc = acquire_slot(sv, rq->id, false);
    if (rc < 0) { s2_prompt_in_free(&p); s2_resp_lib_error(rs, rc); return; }
    struct s2_vslot *vs = sv->vslot;
    rc = run_prompt(vs, (int)frame, (int)obj, clear, &p);
    s2_jw w;
    s2_jw_init(&w);
    if (rc == SAM2C_OK) {
        pthread_mutex_lock(&vs->mu);
        write_frame(&w, vs, (int)frame);
        pthread_mutex_unlock(&vs->mu);
    }
    release_slot(sv);
    s2_prompt_in_free(&p);
    if (rc < 0) { s2_jw_free(&w); s2_resp_lib_error(rs, rc); return; }
    s2_resp_json(rs, 200, &w);
}

typedef struct prop_ctx {
    s2_server *sv;
    int64_t job;
    int done, total;
} prop_ctx;

/* Per propagated frame: keep its masks, report progress. */
static int on_frame(void *user, const s2_video_masks *m) {
    prop_ctx *pc = user;
    if (atomic_load(&pc->sv->stopping)) return s2_err(SAM2C_ERR_CANCELLED, "propagation stopped: the server is shutting down");
    S2_CHECK(record(pc->sv->vslot, m));
    pc->done++;
    s2_cache_job_progress(pc->sv->cache, pc->job, (double)pc->done / pc->total);
    return 0;
}

/* The propagation job: forward from the first prompted frame, then backward. */
static int propagate_task(void *user, int64_t vid, int64_t job) {
    s2_server *sv = user;
    S2_CHECK(acquire_slot(sv, vid, true));
    struct s2_vslot *vs = sv->vslot;
    pthread_mutex_lock(&vs->mu);
    vs->propagating = true;
    pthread_mutex_unlock(&vs->mu);
    prop_ctx pc = {.sv = sv, .job = job, .total = vs->n + 1};
    int rc = s2_video_propagate(vs->v, -1, -1, false, on_frame, &pc);
    if (rc == SAM2C_OK) rc = s2_video_propagate(vs->v, -1, -1, true, on_frame, &pc);
    release_slot(sv);
    return rc;
}

/* POST /api/videos/{id}/propagate -> 202 {job} */
void s2_h_video_propagate(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    s2_store_video info;
    int64_t job;
    s2_job_info ji;
    int rc = s2_store_get_video(sv->store, rq->id, &info, NULL);
    if (rc == SAM2C_OK) rc = s2_cache_submit_task(sv->cache, "propagate", rq->id, propagate_task, sv, &job);
    if (rc == SAM2C_OK) rc = s2_cache_job(sv->cache, job, &ji);
    if (rc < 0) { s2_resp_lib_error(rs, rc == SAM2C_ERR_LIMIT ? SAM2C_ERR_NOMEM : rc); return; }
    s2_jw w;
    s2_jw_init(&w);
    s2_write_job(sv, &w, &ji);
    s2_resp_json(rs, 202, &w);
}

/* The slot's state for video `vid` (mutex held): 0 when it holds another video. */
static bool slot_has(const struct s2_vslot *vs, int64_t vid) { return vs->video_id == vid && vs->res; }

/* GET /api/videos/{id}/masks?frame=k: the latest masks of frame k (empty when the
 * video is not the one in memory or nothing was tracked there). */
void s2_h_video_masks(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    s2_store_video info;
    int64_t *frames = NULL;
    int rc = s2_store_get_video(sv->store, rq->id, &info, &frames);
    if (rc < 0) { s2_resp_lib_error(rs, rc); return; }
    const char *fs = s2_req_query(rq, "frame");
    char *end = NULL;
    long f = fs ? strtol(fs, &end, 10) : -1;
    if (!fs || !*fs || *end || f < 0 || f >= info.n_frames) {
        free(frames);
        s2_resp_error(rs, 400, "?frame= must be an integer in 0..%d", info.n_frames - 1);
        return;
    }
    s2_jw w;
    s2_jw_init(&w);
    struct s2_vslot *vs = sv->vslot;
    pthread_mutex_lock(&vs->mu);
    if (slot_has(vs, rq->id)) write_frame(&w, vs, (int)f);
    pthread_mutex_unlock(&vs->mu);
    if (!w.len) {
        s2_jw_obj_begin(&w);
        s2_jw_key(&w, "frame"); s2_jw_int(&w, f);
        s2_jw_key(&w, "image_id"); s2_jw_int(&w, frames[f]);
        s2_jw_key(&w, "objects"); s2_jw_arr_begin(&w); s2_jw_arr_end(&w);
        s2_jw_obj_end(&w);
    }
    free(frames);
    s2_resp_json(rs, 200, &w);
}

/* Collects the non-empty masks of object `obj` as store objects (mutex held). */
static int collect_track(const struct s2_vslot *vs, int64_t vid, int obj, const char *label, s2_store_object *os,
                         int *n) {
    *n = 0;
    for (int f = 0; f < vs->n; f++)
        for (int k = 0; k < vs->res[f].n; k++) {
            const vmask *m = &vs->res[f].m[k];
            if (m->obj_id != obj || m->area == 0) continue;
            s2_store_object *o = &os[(*n)++];
            char prompt[128];
            snprintf(prompt, sizeof prompt, "{\"video_id\":%lld,\"obj_id\":%d,\"frame\":%d}", (long long)vid, obj, f);
            *o = (s2_store_object){.image_id = vs->frames[f], .label = (char *)label, .counts = s2_strdup(m->counts),
                                   .h = vs->h, .w = vs->w, .area = m->area, .iou_pred = NAN,
                                   .prompt = s2_strdup(prompt)};
            memcpy(o->bbox, m->bbox, sizeof o->bbox);
            if (!o->counts || !o->prompt) return SAM2C_ERR_NOMEM;
        }
    return SAM2C_OK;
}

/* POST /api/videos/{id}/accept {"obj_id": n, "label": "..."}: one object per frame
 * where the track has a mask, all in one transaction. */
void s2_h_video_accept(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    s2_json *j = s2_req_json(sv, rq, rs);
    if (!j) return;
    int64_t obj = -1;
    const s2_json *label = s2_json_get(j, "label");
    bool ok_label = s2_check_label(label) == NULL;
    if (!int_member(j, "obj_id", 0, MAX_OBJ_ID, &obj) || !ok_label) {
        s2_json_free(j);
        s2_resp_error(rs, 400, "'obj_id' (integer) and 'label' (1 to 200 bytes, no control characters) are expected");
        return;
    }
    struct s2_vslot *vs = sv->vslot;
    s2_store_object *os = NULL;
    int n = 0, rc = SAM2C_OK;
    pthread_mutex_lock(&vs->mu);
    if (!slot_has(vs, rq->id)) rc = s2_err(SAM2C_ERR_STATE, "video %lld is not loaded: prompt it first", (long long)rq->id);
    else if (vs->propagating) rc = s2_err(SAM2C_ERR_STATE, "a propagation is running; accept when its job is done");
    else if (!(os = s2_calloc((size_t)vs->n, sizeof *os))) rc = SAM2C_ERR_NOMEM;
    else rc = collect_track(vs, rq->id, (int)obj, label->str, os, &n);
    pthread_mutex_unlock(&vs->mu);
    int64_t *ids = rc == SAM2C_OK ? s2_calloc((size_t)S2_MAX(n, 1), sizeof *ids) : NULL;
    if (rc == SAM2C_OK && !n) rc = s2_err(SAM2C_ERR_STATE, "object %lld has no mask on any frame", (long long)obj);
    if (rc == SAM2C_OK && !ids) rc = SAM2C_ERR_NOMEM;
    if (rc == SAM2C_OK) rc = s2_store_add_objects(sv->store, os, n, ids);
    s2_jw w;
    s2_jw_init(&w);
    if (rc == SAM2C_OK) {
        s2_jw_obj_begin(&w);
        s2_jw_key(&w, "objects");
        s2_jw_arr_begin(&w);
        for (int i = 0; i < n; i++) s2_jw_int(&w, ids[i]);
        s2_jw_arr_end(&w);
        s2_jw_obj_end(&w);
    }
    for (int i = 0; os && i < n; i++) { free(os[i].counts); free(os[i].prompt); }
    free(os);
    free(ids);
    s2_json_free(j);
    if (rc < 0) { s2_jw_free(&w); s2_resp_lib_error(rs, rc); return; }
    s2_resp_json(rs, 201, &w);
}

/* POST /api/videos/{id}/reset: forgets every prompt, track and mask of the video. */
void s2_h_video_reset(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    s2_store_video info;
    int rc = s2_store_get_video(sv->store, rq->id, &info, NULL);
    if (rc == SAM2C_OK) rc = acquire_slot(sv, rq->id, false);
    if (rc < 0) { s2_resp_lib_error(rs, rc); return; }
    struct s2_vslot *vs = sv->vslot;
    s2_video_reset(vs->v);
    pthread_mutex_lock(&vs->mu);
    for (int f = 0; f < vs->n; f++) {
        for (int k = 0; k < vs->res[f].n; k++) free(vs->res[f].m[k].counts);
        vs->res[f].n = 0;
    }
    pthread_mutex_unlock(&vs->mu);
    release_slot(sv);
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "id"); s2_jw_int(&w, rq->id);
    s2_jw_key(&w, "reset"); s2_jw_bool(&w, true);
    s2_jw_obj_end(&w);
    s2_resp_json(rs, 200, &w);
}

#else

int s2_vslot_create(struct s2_vslot **out) { *out = NULL; return SAM2C_OK; }
void s2_vslot_free(struct s2_vslot *vs) { (void)vs; }

#endif
