/* Public video tracking API (sam2c_video_*): frame loading from folders and video files
 * (scanned once, then decoded on use), live streams pushed frame by frame, frame names,
 * limits, progress / cancel, and the per-frame object scores, around the video
 * predictor (predict/video.h). */
#include "sam2c.h"
#include "core/limits.h"
#include "core/s2.h"
#include "io/image.h"
#include "io/video_decode.h"
#include "predict/video.h"
#include "predict/video_frames.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct sam2c_video {
    const sam2c_model *m;
    sam2c_video_params p;
    s2_video *vid;
    s2_limits lim;            /* effective limits at creation */
    char **names;             /* [n_names] frame names */
    int n_names;
    char **skipped;           /* [n_skipped] "name: reason" */
    int n_skipped;
    int *ids;                 /* [n_ids] object ids in prompt order */
    int n_ids, cap_ids;
    float *scores;            /* [cap_scores] object scores of the last returned frame */
    int cap_scores;
    char name_buf[32];        /* name of a stream frame (stream frames keep no names) */
    atomic_int cancel;
};

/* The frames a scan found readable: names and where to read each again. */
typedef struct frame_set {
    char **names;             /* [n] frame names */
    char **files;             /* [n] folder: file names inside it */
    int *pos;                 /* [n] video file: stream positions */
    int64_t *pts;             /* [n] video file: timestamps (INT64_MIN unknown) */
    bool *key;                /* [n] video file: key frames */
    int n, cap, w, h;
    char *first_name;         /* for size mismatch messages */
} frame_set;

/* Decoded frames a video file source keeps: a reverse pass re-opens the file once per
 * this many frames. */
#define S2V_FILE_CACHE 8
#define S2V_DIR_CACHE 2

sam2c_video_params sam2c_video_default_params(void) {
    sam2c_video_params p;
    memset(&p, 0, sizeof p);
    p.corrections_as_cond = 1;
    p.fill_hole_area = -1;
    p.non_overlap_masks = -1;
    p.clear_non_cond_mem_around_input = -1;
    return p;
}

int sam2c_video_create(const sam2c_model *model, const sam2c_video_params *params, sam2c_video **out) {
    if (!out) return s2_err(SAM2C_ERR_ARG, "video: no output pointer");
    *out = NULL;
    if (!model) return s2_err(SAM2C_ERR_ARG, "video: no model");
    sam2c_video_params p = params ? *params : sam2c_video_default_params();
    if (p.max_frames < 0) return s2_err(SAM2C_ERR_ARG, "video: max_frames %d < 0", p.max_frames);
    s2_video_params sp = s2_video_default_params(model);
    sp.add_all_frames_to_correct_as_cond = p.corrections_as_cond != 0;
    if (p.fill_hole_area >= 0) sp.fill_hole_area = p.fill_hole_area;
    if (p.non_overlap_masks >= 0) sp.non_overlap_masks = p.non_overlap_masks != 0;
    if (p.clear_non_cond_mem_around_input >= 0) sp.clear_non_cond_mem_around_input = p.clear_non_cond_mem_around_input != 0;
    if (p.window < 0) return s2_err(SAM2C_ERR_ARG, "video: window %d < 0", p.window);
    sp.keep_all_outputs = p.keep_all_outputs != 0;
    sp.window = p.window;
    sam2c_video *v = s2_calloc(1, sizeof *v);
    if (!v) return SAM2C_ERR_NOMEM;
    v->m = model;
    v->p = p;
    s2_limits_effective(&v->lim);
    atomic_init(&v->cancel, 0);
    int rc = s2_video_create(model, &sp, &v->vid);
    if (rc < 0) { free(v); return rc; }
    *out = v;
    return 0;
}

/* Frees a list of n strings. */
static void free_strs(char **s, int n) {
    for (int i = 0; s && i < n; i++) free(s[i]);
    free(s);
}

void sam2c_video_free(sam2c_video *v) {
    if (!v) return;
    s2_video_free(v->vid);
    free_strs(v->names, v->n_names);
    free_strs(v->skipped, v->n_skipped);
    free(v->ids);
    free(v->scores);
    free(v);
}

/* Internal access for the command-line tool (dump hooks, raw calls). */
s2_video *s2_video_api_inner(sam2c_video *v);
s2_video *s2_video_api_inner(sam2c_video *v) { return v ? v->vid : NULL; }

/* ---------------------------------------------------------------------------- */
/* Loading                                                                      */
/* ---------------------------------------------------------------------------- */

/* Frees the names and places still owned by the set. */
static void frame_set_free(frame_set *fs) {
    free_strs(fs->names, fs->n);
    free_strs(fs->files, fs->n);
    free(fs->pos);
    free(fs->pts);
    free(fs->key);
    free(fs->first_name);
    memset(fs, 0, sizeof *fs);
}

/* Room for one more frame in every list of the set. */
static int frame_set_grow(frame_set *fs) {
    if (fs->n < fs->cap) return 0;
    int cap = fs->cap ? 2 * fs->cap : 64;
    char **nn = s2_realloc(fs->names, sizeof *nn * (size_t)cap);
    if (nn) fs->names = nn;
    char **nf = nn ? s2_realloc(fs->files, sizeof *nf * (size_t)cap) : NULL;
    if (nf) fs->files = nf;
    int *np = nf ? s2_realloc(fs->pos, sizeof *np * (size_t)cap) : NULL;
    if (np) fs->pos = np;
    int64_t *nt = np ? s2_realloc(fs->pts, sizeof *nt * (size_t)cap) : NULL;
    if (nt) fs->pts = nt;
    bool *nk = nt ? s2_realloc(fs->key, sizeof *nk * (size_t)cap) : NULL;
    if (nk) fs->key = nk;
    if (!nk) return SAM2C_ERR_NOMEM;
    fs->cap = cap;
    return 0;
}

/* Appends one readable frame named `name`, read again from `file` (folder) or stream
 * position `pos` (video file); frames must all have the first one's size (`label`: the
 * frame as messages name it, e.g. its file). */
static int frame_set_add(frame_set *fs, int w, int h, const char *name, const char *file, int pos,
                         const char *label, const char *where) {
    if (fs->n == 0) {
        fs->w = w;
        fs->h = h;
        if (!(fs->first_name = s2_strdup(label))) return SAM2C_ERR_NOMEM;
    } else if (w != fs->w || h != fs->h) {
        return s2_err(SAM2C_ERR_SHAPE, "%s: %s: frame is %dx%d but frame %s is %dx%d (frames of different sizes)", where,
                      label, w, h, fs->first_name, fs->w, fs->h);
    }
    S2_CHECK(frame_set_grow(fs));
    char *nm = s2_strdup(name), *fl = file ? s2_strdup(file) : NULL;
    if (!nm || (file && !fl)) { free(nm); free(fl); return SAM2C_ERR_NOMEM; }
    fs->names[fs->n] = nm;
    fs->files[fs->n] = fl;
    fs->pts[fs->n] = INT64_MIN;
    fs->key[fs->n] = false;
    fs->pos[fs->n++] = pos;
    return 0;
}

/* Records a frame left out by skip_bad_frames with the current error message. */
static int note_skipped(sam2c_video *v, const char *name) {
    char **ns = s2_realloc(v->skipped, sizeof *ns * (size_t)(v->n_skipped + 1));
    if (!ns) return SAM2C_ERR_NOMEM;
    v->skipped = ns;
    size_t n = strlen(name) + strlen(sam2c_last_error()) + 3;
    char *s = s2_malloc(n);
    if (!s) return SAM2C_ERR_NOMEM;
    snprintf(s, n, "%s: %s", name, sam2c_last_error());
    v->skipped[v->n_skipped++] = s;
    return 0;
}

/* Progress and cancellation at a frame boundary: SAM2C_ERR_CANCELLED when asked. */
static int frame_boundary(sam2c_video *v, int done, int total, const char *what) {
    int stop = atomic_exchange(&v->cancel, 0);
    if (!stop && v->p.progress) stop = v->p.progress(v->p.progress_user, done, total);
    if (!stop && v->p.cancel) stop = v->p.cancel(v->p.cancel_user);
    return stop ? s2_err(SAM2C_ERR_CANCELLED, "%s: cancelled after %d frame(s)", what, done) : 0;
}

/* A decode failure: skipped (0) when skip_bad_frames allows, else the error. */
static int bad_frame(sam2c_video *v, int rc, const char *name) {
    if (!v->p.skip_bad_frames || (rc != SAM2C_ERR_FORMAT && rc != SAM2C_ERR_IO)) return rc;
    return note_skipped(v, name);
}

/* Name of a frame file without its extension. */
static void stem_of(const char *file, char *out, size_t n) {
    snprintf(out, n, "%s", file);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

// ref: sam2/utils/misc.py load_video_frames (folder listing and order, no EXIF rotation)
static int load_folder(sam2c_video *v, const char *dir, frame_set *fs) {
    s2_frame_file *list = NULL;
    int n = 0;
    S2_CHECK(s2_list_frame_files(dir, &list, &n));
    const int want = v->p.max_frames > 0 ? S2_MIN(v->p.max_frames, n) : n;
    int rc = s2_limit_check(&v->lim, S2_LIMIT_max_frames, want, dir);
    s2_image_opts opts;
    s2_image_opts_default(&opts);
    opts.apply_exif = false; // PIL.Image.open does not rotate
    opts.max_pixels = s2_limit_value(&v->lim, S2_LIMIT_max_pixels);
    for (int i = 0; i < n && rc == 0 && fs->n < want; i++) {
        char path[4096], stem[1024];
        snprintf(path, sizeof path, "%s/%s", dir, list[i].name);
        stem_of(list[i].name, stem, sizeof stem);
        s2_image im = {0};
        rc = s2_image_load(path, &opts, &im); // decoded once to check it; read again on use
        const int iw = im.w, ih = im.h;
        s2_image_free(&im);
        if (rc == SAM2C_ERR_LIMIT) break;
        if (rc < 0) { rc = bad_frame(v, rc, list[i].name); continue; }
        rc = frame_set_add(fs, iw, ih, stem, list[i].name, 0, list[i].name, dir);
        if (rc == 0) rc = frame_boundary(v, fs->n, want, "open");
    }
    s2_frame_files_free(list, n);
    return rc;
}

/* Frames of a video file, up to max_frames, named by their stream position. */
static int load_file(sam2c_video *v, const char *path, frame_set *fs) {
    s2_vreader *r = NULL;
    S2_CHECK(s2_vreader_open(path, &r));
    int w, h, rc = 0;
    s2_vreader_info(r, &w, &h, NULL);
    const int64_t lim = s2_limit_value(&v->lim, S2_LIMIT_max_frames);
    for (;;) {
        if (v->p.max_frames > 0 && fs->n >= v->p.max_frames) break;
        const uint8_t *rgb = NULL;
        int idx = 0;
        char name[32];
        rc = s2_vreader_next(r, &rgb, &idx);
        snprintf(name, sizeof name, "%05d", idx);
        if (rc == 0) break;
        if (rc < 0) {
            if (rc == SAM2C_ERR_SHAPE || (rc = bad_frame(v, rc, name)) < 0) break;
            continue;
        }
        if (fs->n >= lim) { rc = s2_limit_check(&v->lim, S2_LIMIT_max_frames, fs->n + 1, path); break; }
        if ((rc = frame_set_add(fs, w, h, name, NULL, idx, name, path)) < 0) break;
        s2_vreader_last(r, &fs->pts[fs->n - 1], &fs->key[fs->n - 1]); // to seek there again
        if ((rc = frame_boundary(v, fs->n, v->p.max_frames, "open")) < 0) break;
    }
    s2_vreader_free(r);
    return rc < 0 ? rc : 0;
}

/* Hands the predictor a source reading the scanned frames again and takes their names;
 * objects are forgotten. */
static int install(sam2c_video *v, const char *path, bool dir, frame_set *fs) {
    const int S = sam2c_model_image_size(v->m);
    s2_vsource *src = NULL;
    int rc = dir ? s2_vsource_dir(S, path, (const char *const *)fs->files, fs->n, S2V_DIR_CACHE, &src)
                 : s2_vsource_file(S, path, fs->pos, fs->pts, fs->key, fs->n, S2V_FILE_CACHE, &src);
    if (rc == 0) rc = s2_video_set_source(v->vid, src, fs->w, fs->h);
    if (rc < 0) return rc;
    free_strs(v->names, v->n_names);
    v->names = fs->names;
    v->n_names = fs->n;
    fs->names = NULL;
    v->n_ids = 0;
    return 0;
}

/* Forgets the names, skipped frames and objects of the previous frames. */
static void clear_frames_info(sam2c_video *v) {
    free_strs(v->skipped, v->n_skipped);
    v->skipped = NULL;
    v->n_skipped = 0;
}

int sam2c_video_open(sam2c_video *v, const char *path) {
    if (!v || !path) return s2_err(SAM2C_ERR_ARG, "open: no session or path");
    struct stat st;
    if (stat(path, &st) != 0) return s2_err(SAM2C_ERR_IO, "%s: no such file or folder", path);
    clear_frames_info(v);
    frame_set fs = {0};
    const bool dir = S_ISDIR(st.st_mode);
    int rc = dir ? load_folder(v, path, &fs) : load_file(v, path, &fs);
    if (rc == 0 && fs.n == 0) rc = s2_err(SAM2C_ERR_FORMAT, "%s: no frame could be read", path);
    if (rc == 0) rc = install(v, path, dir, &fs);
    frame_set_free(&fs);
    atomic_store(&v->cancel, 0);
    return rc;
}

int sam2c_video_set_frames(sam2c_video *v, int n, const uint8_t *const *rgb, int width, int height) {
    if (!v || n <= 0 || !rgb || width <= 0 || height <= 0)
        return s2_err(SAM2C_ERR_ARG, "set frames: no frames given (%d frames of %dx%d)", n, width, height);
    S2_CHECK(s2_limit_check(&v->lim, S2_LIMIT_max_frames, n, "set frames"));
    S2_CHECK(s2_limit_check(&v->lim, S2_LIMIT_max_pixels, (int64_t)width * height, "set frames"));
    char **names = s2_calloc((size_t)n, sizeof *names);
    if (!names) return SAM2C_ERR_NOMEM;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "%05d", i);
        if (!(names[i] = s2_strdup(nm))) rc = SAM2C_ERR_NOMEM;
    }
    if (rc == 0) rc = s2_video_set_frames(v->vid, n, rgb, width, height);
    if (rc < 0) { free_strs(names, n); return rc; }
    clear_frames_info(v);
    free_strs(v->names, v->n_names);
    v->names = names;
    v->n_names = n;
    v->n_ids = 0;
    return 0;
}

int sam2c_video_num_frames(const sam2c_video *v) { return v ? s2_video_num_frames(v->vid) : 0; }

void sam2c_video_size(const sam2c_video *v, int *width, int *height) {
    s2_video_size(v ? v->vid : NULL, width, height);
}

const char *sam2c_video_frame_name(const sam2c_video *v, int frame_idx) {
    if (v && s2_video_is_stream(v->vid)) { // "%05d" of its index, formatted on demand
        if (frame_idx < 0 || frame_idx >= s2_video_num_frames(v->vid)) return NULL;
        char *buf = ((sam2c_video *)v)->name_buf; // a formatting buffer, not session state
        snprintf(buf, sizeof v->name_buf, "%05d", frame_idx);
        return buf;
    }
    if (!v || frame_idx < 0 || frame_idx >= v->n_names) return NULL;
    return v->names[frame_idx];
}

const char *sam2c_video_skipped(const sam2c_video *v, int i) {
    if (!v || i < 0 || i >= v->n_skipped) return NULL;
    return v->skipped[i];
}

/* ---------------------------------------------------------------------------- */
/* Prompts and outputs                                                          */
/* ---------------------------------------------------------------------------- */

/* Public view of a predictor output, with each object's score on that frame. */
static int fill_frame(sam2c_video *v, const s2_video_masks *m, sam2c_video_frame *out) {
    if (m->n_obj > v->cap_scores) {
        float *s = s2_realloc(v->scores, sizeof *s * (size_t)m->n_obj);
        if (!s) return SAM2C_ERR_NOMEM;
        v->scores = s;
        v->cap_scores = m->n_obj;
    }
    for (int i = 0; i < m->n_obj; i++) {
        const s2_frame_out *o = s2_video_output(v->vid, m->obj_ids[i], m->frame_idx, NULL);
        v->scores[i] = o ? o->object_score : S2_NO_OBJ_SCORE;
    }
    *out = (sam2c_video_frame){m->frame_idx, sam2c_video_frame_name(v, m->frame_idx), m->n_obj, m->obj_ids,
                               m->w, m->h, m->logits, v->scores};
    return 0;
}

/* The object list follows the predictor's (every returned frame lists all objects). */
static int sync_ids(sam2c_video *v, const s2_video_masks *m) {
    if (m->n_obj > v->cap_ids) {
        int *ni = s2_realloc(v->ids, sizeof *ni * (size_t)m->n_obj);
        if (!ni) return SAM2C_ERR_NOMEM;
        v->ids = ni;
        v->cap_ids = m->n_obj;
    }
    if (m->n_obj) memcpy(v->ids, m->obj_ids, sizeof(int) * (size_t)m->n_obj);
    v->n_ids = m->n_obj;
    return 0;
}

/* Frames loaded, and a new object stays within the object limit. */
static int check_add(const sam2c_video *v, int obj_id, const char *what) {
    if (!v) return s2_err(SAM2C_ERR_ARG, "%s: no session", what);
    if (s2_video_num_frames(v->vid) == 0)
        return s2_err(SAM2C_ERR_STATE, "%s: no frames loaded (open a video first)", what);
    for (int i = 0; i < v->n_ids; i++)
        if (v->ids[i] == obj_id) return 0;
    char ctx[64];
    snprintf(ctx, sizeof ctx, "%s: object %d", what, obj_id);
    return s2_limit_check(&v->lim, S2_LIMIT_max_objects, v->n_ids + 1, ctx);
}

/* Common tail of the add calls: object list, scores, public view. */
static int add_result(sam2c_video *v, int rc, const s2_video_masks *m, sam2c_video_frame *out) {
    if (rc < 0) return rc;
    S2_CHECK(sync_ids(v, m));
    return out ? fill_frame(v, m, out) : 0;
}

// ref: sam2/sam2_video_predictor.py SAM2VideoPredictor.add_new_points_or_box
int sam2c_video_add_points(sam2c_video *v, int frame_idx, int obj_id, int n_points, const float *points,
                           const int32_t *labels, const float *box, int keep_old_points, sam2c_video_frame *out) {
    s2_threads_apply();
    S2_CHECK(check_add(v, obj_id, "add points"));
    if (n_points < 0) return s2_err(SAM2C_ERR_ARG, "add points: %d points", n_points);
    S2_CHECK(s2_limit_check(&v->lim, S2_LIMIT_max_points, n_points, "add points"));
    s2_video_masks m;
    int rc = s2_video_add_points_or_box(v->vid, frame_idx, obj_id, points, labels, n_points, box, !keep_old_points,
                                        true, &m);
    return add_result(v, rc, &m, out);
}

// ref: sam2/sam2_video_predictor.py SAM2VideoPredictor.add_new_mask
int sam2c_video_add_mask(sam2c_video *v, int frame_idx, int obj_id, const uint8_t *mask, int width, int height,
                         sam2c_video_frame *out) {
    s2_threads_apply();
    S2_CHECK(check_add(v, obj_id, "add mask"));
    if (width > 0 && height > 0)
        S2_CHECK(s2_limit_check(&v->lim, S2_LIMIT_max_pixels, (int64_t)width * height, "add mask"));
    s2_video_masks m;
    int rc = s2_video_add_mask(v->vid, frame_idx, obj_id, mask, width, height, &m);
    return add_result(v, rc, &m, out);
}

// ref: sam2/sam2_video_predictor.py SAM2VideoPredictor.clear_all_prompts_in_frame
int sam2c_video_clear_prompts(sam2c_video *v, int frame_idx, int obj_id, sam2c_video_frame *out) {
    if (!v) return s2_err(SAM2C_ERR_ARG, "clear prompts: no session");
    s2_video_masks m;
    S2_CHECK(s2_video_clear_prompts(v->vid, frame_idx, obj_id, out ? &m : NULL));
    return out ? fill_frame(v, &m, out) : 0;
}

// ref: sam2/sam2_video_predictor.py SAM2VideoPredictor.remove_object
int sam2c_video_remove_object(sam2c_video *v, int obj_id, int strict) {
    if (!v) return s2_err(SAM2C_ERR_ARG, "remove object: no session");
    S2_CHECK(s2_video_remove_object(v->vid, obj_id, strict != 0));
    for (int i = 0; i < v->n_ids; i++)
        if (v->ids[i] == obj_id) {
            memmove(v->ids + i, v->ids + i + 1, sizeof(int) * (size_t)(v->n_ids - i - 1));
            v->n_ids--;
            break;
        }
    return 0;
}

// ref: sam2/sam2_video_predictor.py SAM2VideoPredictor.reset_state
void sam2c_video_reset(sam2c_video *v) {
    if (!v) return;
    s2_video_reset(v->vid);
    v->n_ids = 0;
}

int sam2c_video_objects(const sam2c_video *v, int *ids, int max_ids) {
    if (!v) return 0;
    for (int i = 0; ids && i < v->n_ids && i < max_ids; i++) ids[i] = v->ids[i];
    return v->n_ids;
}

void sam2c_video_cancel(sam2c_video *v) {
    if (v) atomic_store(&v->cancel, 1);
}

/* ---------------------------------------------------------------------------- */
/* Propagation                                                                  */
/* ---------------------------------------------------------------------------- */

/* The caller's callback plus progress accounting. */
typedef struct prop_call {
    sam2c_video *v;
    sam2c_video_frame_fn fn;
    void *user;
    int max_frames, reverse;
    int done, total;
} prop_call;

/* Frames propagate_in_video visits from `first` (the loop bounds of the official code). */
static int frames_to_track(int first, int max_frames, int reverse, int num_frames) {
    if (max_frames < 0) max_frames = num_frames;
    int last = reverse ? S2_MAX(first - max_frames, 0) : S2_MIN(first + max_frames, num_frames - 1);
    return (reverse ? first - last : last - first) + 1;
}

/* Per-frame hook: the caller's callback, then progress and cancellation. */
static int prop_frame(void *user, const s2_video_masks *m) {
    prop_call *pc = user;
    if (pc->done == 0)
        pc->total = frames_to_track(m->frame_idx, pc->max_frames, pc->reverse, s2_video_num_frames(pc->v->vid));
    S2_CHECK(sync_ids(pc->v, m));
    if (pc->fn) {
        sam2c_video_frame f;
        S2_CHECK(fill_frame(pc->v, m, &f));
        int r = pc->fn(pc->user, &f);
        if (r != 0) return r;
    }
    pc->done++;
    return frame_boundary(pc->v, pc->done, pc->total, "propagate");
}

// ref: sam2/sam2_video_predictor.py SAM2VideoPredictor.propagate_in_video
int sam2c_video_propagate(sam2c_video *v, int start_frame, int max_frames, int reverse, sam2c_video_frame_fn on_frame,
                          void *user) {
    s2_threads_apply();
    if (!v) return s2_err(SAM2C_ERR_ARG, "propagate: no session");
    const int nf = s2_video_num_frames(v->vid);
    if (nf > 0 && (start_frame < -1 || start_frame >= nf))
        return s2_err(SAM2C_ERR_ARG, "propagate: start frame %d outside [0, %d)", start_frame, nf);
    prop_call pc = {v, on_frame, user, max_frames, reverse != 0, 0, 0};
    int rc = s2_video_propagate(v->vid, start_frame, max_frames, reverse != 0, prop_frame, &pc);
    atomic_store(&v->cancel, 0);
    return rc;
}

/* ---------------------------------------------------------------------------- */
/* Live streams                                                                 */
/* ---------------------------------------------------------------------------- */

int sam2c_video_open_stream(sam2c_video *v, int width, int height) {
    if (!v) return s2_err(SAM2C_ERR_ARG, "open stream: no session");
    if (width <= 0 || height <= 0) return s2_err(SAM2C_ERR_ARG, "open stream: bad frame size %dx%d", width, height);
    S2_CHECK(s2_limit_check(&v->lim, S2_LIMIT_max_pixels, (int64_t)width * height, "open stream"));
    S2_CHECK(s2_video_open_stream(v->vid, width, height));
    clear_frames_info(v);
    free_strs(v->names, v->n_names);
    v->names = NULL;
    v->n_names = 0;
    v->n_ids = 0;
    atomic_store(&v->cancel, 0);
    return 0;
}

int sam2c_video_push_frame(sam2c_video *v, const uint8_t *rgb, int width, int height, int *frame_idx) {
    if (!v) return s2_err(SAM2C_ERR_ARG, "push frame: no session");
    return s2_video_push_frame(v->vid, rgb, width, height, frame_idx);
}

// ref: sam2/sam2_video_predictor.py SAM2VideoPredictor.propagate_in_video (one frame)
int sam2c_video_track_frame(sam2c_video *v, int frame_idx, sam2c_video_frame *out) {
    s2_threads_apply();
    if (!v) return s2_err(SAM2C_ERR_ARG, "track frame: no session");
    s2_video_masks m;
    S2_CHECK(s2_video_track_frame(v->vid, frame_idx, &m));
    S2_CHECK(sync_ids(v, &m));
    if (out) S2_CHECK(fill_frame(v, &m, out));
    return frame_boundary(v, frame_idx + 1, 0, "track frame");
}

int sam2c_video_resident(const sam2c_video *v, int *frames_held, int *outputs_held, size_t *bytes) {
    if (!v) return s2_err(SAM2C_ERR_ARG, "resident: no session");
    s2_video_resident(v->vid, frames_held, outputs_held, bytes);
    return 0;
}
