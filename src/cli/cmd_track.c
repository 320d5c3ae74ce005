/* `sam2c track`: track objects through a video (a folder of JPEG frames or a video file)
 * from clicks, boxes and masks, writing per-object PNG masks in the SA-V layout as each
 * frame is tracked. Prompts come from a call script (the format of
 * fixtures/micro/video/script.json, so a fixture replays from the command line) or from
 * --point / --box options. --stream pushes the frames one at a time (track_stream.c). */
#include "cli/cli.h"
#include "cli/track.h"
#include "cli/output.h"
#include "core/s2.h"
#include "io/image.h"
#include "io/json.h"
#include "io/tensorfile.h"
#include "io/video_decode.h"
#include "model/model.h"
#include "model/sam2_base.h"
#include "predict/video.h"
#include "predict/video_frames.h"
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

s2_video *s2_video_api_inner(sam2c_video *v); /* predict/video_api.c */

/* Last object score of one object on one frame. */
typedef struct obj_score { int id; float score; } obj_score;

/* Everything a run writes. */
typedef struct track {
    const track_args *a;
    const sam2c_model *m;
    sam2c_video *v;
    const char *video_path;      /* resolved source (for the overlay pass) */
    int nf, vw, vh;
    obj_score **scores;          /* [nf] -> [n_scores[f]] */
    int *n_scores;
    int *ids, n_ids;             /* every object id seen, first-seen order */
    uint8_t *mask;               /* (vh, vw) scratch */
    int step, n_tracked;
    s2_st_item *dump;            /* tensors of the current step */
    int n_dump, cap_dump;
    double t0;                   /* progress */
    const char *phase;
    double last_print;
    bool tty;
} track;

static volatile sig_atomic_t g_interrupted; /* set by SIGINT, polled by the cancel hook */

/* Ctrl-C: stop at the next frame, keeping what was written. */
static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

int track_interrupted(void) { return g_interrupted != 0; }

/* --help text. */
static void track_usage(FILE *f) {
    fprintf(f,
            "usage: sam2c track -m MODEL --video PATH (--prompts SCRIPT.json | PROMPTS) -o OUTDIR\n"
            "                   [--overlay] [--overlay-video FILE.mp4] [--dump DIR] [--config FILE]\n"
            "                   [--corrections-as-cond on|off] [--skip-bad-frames] [--max-frames N]\n"
            "                   [--window N] [--unbounded] [--threads N] [--quiet]\n"
            "       sam2c track --stream -m MODEL --video PATH|- [--raw WxH] PROMPTS -o OUTDIR [...]\n"
            "PATH is a folder of JPEG frames (named by number) or a video file.\n"
            "--stream: frames are pushed and tracked one at a time, as from a camera or a pipe (PATH '-':\n"
            "stdin, a container FFmpeg reads, or raw RGB24 frames of WxH with --raw); each prompt is applied\n"
            "when its frame arrives, each frame's masks are written as it is tracked. Only the last --window\n"
            "frames are kept, so a live stream cannot be corrected further back.\n"
            "Memory is bounded: outputs the memory bank can no longer read are freed (--window N: frames\n"
            "kept whole around the last tracked and each prompted frame, default the model's memory window);\n"
            "--unbounded keeps every output (the official predictor's state).\n"
            "PROMPTS: [--obj ID] (--point FRAME,X,Y[,LABEL] | --box FRAME,X0,Y0,X1,Y1)... ; each prompt\n"
            "belongs to the most recent --obj (object 1 before any); then tracking runs forward from\n"
            "the earliest prompted frame. LABEL 1 = positive (default), 0 = negative.\n"
            "SCRIPT.json: {\"predictor\": {...}, \"steps\": [{\"op\": ..., \"args\": {...}}]} with the official\n"
            "SAM2VideoPredictor calls (add_new_points_or_box, add_new_mask, clear_all_prompts_in_frame,\n"
            "remove_object, reset_state, propagate_in_video); a mask is FILE.safetensors:TENSOR or a PNG.\n"
            "Writes OUTDIR/<obj as %%03d>/<frame>.png (0/255), OUTDIR/scores.json, --overlay OUTDIR/overlay/.\n");
}

/* ------------------------------------------------------------------ options ---- */

/* --point FRAME,X,Y[,LABEL] / --box FRAME,X0,Y0,X1,Y1 for the current object. */
static int parse_prompt(track_args *a, const char *s, int is_box) {
    double v[5];
    int n;
    if (a->n_pr == MAX_PROMPTS) return cli_fail("track", "too many prompts (limit %d)", MAX_PROMPTS);
    bool ok = is_box ? cli_parse_floats(s, v, 5, 5, &n) : cli_parse_floats(s, v, 3, 4, &n);
    if (ok) ok = v[0] >= 0 && v[0] <= 1e9 && v[0] == (double)(long)v[0];
    if (ok && !is_box && n == 4) ok = v[3] == 0 || v[3] == 1;
    if (!ok)
        return cli_fail("track", is_box ? "bad --box '%s' (expected FRAME,X0,Y0,X1,Y1)"
                                        : "bad --point '%s' (expected FRAME,X,Y or FRAME,X,Y,LABEL with LABEL 0 or 1)", s);
    cli_prompt *p = &a->pr[a->n_pr++];
    memset(p, 0, sizeof *p);
    p->obj = a->cur_obj;
    p->frame = (int)v[0];
    p->is_box = is_box;
    p->label = !is_box && n == 4 ? (int)v[3] : 1;
    for (int i = 0; i < (is_box ? 4 : 2); i++) p->v[i] = (float)v[1 + i];
    a->obj_pending = 0;
    return 0;
}

/* A strict integer option in [lo, hi]. */
static int int_opt(const char *o, const char *v, long lo, long hi, int *out) {
    long t;
    if (!cli_parse_int(v, &t) || t < lo || t > hi) return cli_fail("track", "bad %s '%s' (an integer in [%ld, %ld])", o, v, lo, hi);
    *out = (int)t;
    return 0;
}

/* Options into *a; a usage mistake prints one message and returns nonzero. */
static int parse_args(int argc, char **argv, track_args *a) {
    memset(a, 0, sizeof *a);
    a->cac = -1;
    a->cur_obj = 1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int used = 1, rc = 0;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) { track_usage(stdout); exit(0); }
        else if (!strcmp(o, "--overlay")) { a->overlay = 1; used = 0; }
        else if (!strcmp(o, "--skip-bad-frames")) { a->skip_bad = 1; used = 0; }
        else if (!strcmp(o, "--quiet")) { a->quiet = 1; used = 0; }
        else if (!strcmp(o, "--stream")) { a->stream = 1; used = 0; }
        else if (!strcmp(o, "--unbounded")) { a->unbounded = 1; used = 0; }
        else if (!v) return cli_fail("track", "option '%s' needs a value (see --help)", o);
        else if (!strcmp(o, "-m") || !strcmp(o, "--model")) a->model = v;
        else if (!strcmp(o, "--config")) a->config = v;
        else if (!strcmp(o, "--video") || !strcmp(o, "-i")) a->video = v;
        else if (!strcmp(o, "--prompts")) a->prompts = v;
        else if (!strcmp(o, "-o") || !strcmp(o, "--out")) a->outdir = v;
        else if (!strcmp(o, "--dump")) a->dump = v;
        else if (!strcmp(o, "--overlay-video")) a->overlay_video = v;
        else if (!strcmp(o, "--point")) rc = parse_prompt(a, v, 0);
        else if (!strcmp(o, "--box")) rc = parse_prompt(a, v, 1);
        else if (!strcmp(o, "--obj")) { rc = int_opt(o, v, -1000000, 1000000, &a->cur_obj); a->obj_pending = 1; }
        else if (!strcmp(o, "--threads")) rc = int_opt(o, v, 0, 1024, &a->threads);
        else if (!strcmp(o, "--max-frames")) rc = int_opt(o, v, 1, 100000000, &a->max_frames);
        else if (!strcmp(o, "--window")) rc = int_opt(o, v, 1, 100000, &a->window);
        else if (!strcmp(o, "--raw")) {
            char x;
            int end = 0;
            if (sscanf(v, "%d%c%d%n", &a->raw_w, &x, &a->raw_h, &end) != 3 || x != 'x' || v[end] || a->raw_w <= 0 || a->raw_h <= 0 ||
                a->raw_w > 65536 || a->raw_h > 65536)
                return cli_fail("track", "bad --raw '%s' (expected WIDTHxHEIGHT, e.g. 640x480)", v);
        }
        else if (!strcmp(o, "--corrections-as-cond")) {
            if (strcmp(v, "on") && strcmp(v, "off")) return cli_fail("track", "bad --corrections-as-cond '%s' (on or off)", v);
            a->cac = !strcmp(v, "on");
        } else return cli_fail("track", "unknown option '%s' (see --help)", o);
        if (rc) return rc;
        i += used;
    }
    if (!a->model) return cli_fail("track", "no model given (-m MODEL)");
    if (!a->outdir) return cli_fail("track", "no output folder given (-o OUTDIR)");
    if (a->prompts && a->n_pr) return cli_fail("track", "give either --prompts or --point/--box, not both");
    if (!a->prompts && !a->n_pr) return cli_fail("track", "no prompt: give --prompts SCRIPT.json or --point/--box");
    if (a->obj_pending) return cli_fail("track", "--obj %d is not followed by a --point or --box", a->cur_obj);
    if (!a->prompts && !a->video) return cli_fail("track", "no video given (--video PATH)");
    if (a->raw_w && !a->stream) return cli_fail("track", "--raw needs --stream");
    if (a->stream && (a->prompts || a->dump))
        return cli_fail("track", "--stream takes --point / --box prompts (no --prompts script, no --dump)");
    if (a->stream && !a->video) return cli_fail("track", "no video given (--video PATH, or - for stdin)");
    return 0;
}

/* ------------------------------------------------------------------ progress ---- */

/* Progress bar on stderr with frames/s: a rewritten line on a terminal, else a line
 * every few seconds; Ctrl-C cancels at the next frame. */
static int on_progress(void *user, int done, int total) {
    track *t = user;
    double now = s2_now_s();
    if (t->a->quiet || (now - t->last_print < (t->tty ? 0.2 : 5.0) && done != total)) return g_interrupted;
    t->last_print = now;
    double fps = done / (now - t->t0 > 1e-9 ? now - t->t0 : 1e-9);
    char bar[33] = {0};
    for (int i = 0; i < 30; i++) bar[i] = total > 0 && i < 30 * done / total ? '#' : '.';
    fprintf(stderr, t->tty ? "\r  %-9s [%s] %d/%d frames %.2f frames/s " : "  %-9s [%s] %d/%d frames %.2f frames/s\n",
            t->phase, bar, done, total, fps);
    fflush(stderr);
    return g_interrupted;
}

/* Starts a phase (a load or a propagation) of the progress display. */
static void phase_begin(track *t, const char *what) {
    t->phase = what;
    t->t0 = s2_now_s();
    t->last_print = 0;
}

/* Ends a phase: the summary line with the rate. */
static void phase_end(track *t, int frames) {
    double dt = s2_now_s() - t->t0;
    if (t->a->quiet) return;
    if (t->tty) fputc('\n', stderr);
    fprintf(stderr, "%s: %d frames in %.2f s (%.2f frames/s)\n", t->phase, frames, dt, frames / (dt > 1e-9 ? dt : 1e-9));
}

/* ------------------------------------------------------------------ outputs ---- */

/* Remembers an object id (output folder created on first sight). */
static int note_object(track *t, int id) {
    for (int i = 0; i < t->n_ids; i++)
        if (t->ids[i] == id) return 0;
    int *ni = s2_realloc(t->ids, sizeof *ni * (size_t)(t->n_ids + 1));
    if (!ni) return SAM2C_ERR_NOMEM;
    t->ids = ni;
    t->ids[t->n_ids++] = id;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%03d", t->a->outdir, id);
    return cli_mkdir_p(dir);
}

/* The object's last score on a frame. */
static int set_score(track *t, int f, int id, float s) {
    for (int i = 0; i < t->n_scores[f]; i++)
        if (t->scores[f][i].id == id) { t->scores[f][i].score = s; return 0; }
    obj_score *ns = s2_realloc(t->scores[f], sizeof *ns * (size_t)(t->n_scores[f] + 1));
    if (!ns) return SAM2C_ERR_NOMEM;
    t->scores[f] = ns;
    ns[t->n_scores[f]++] = (obj_score){id, s};
    return 0;
}

/* Keeps a copy of one tensor for the step's dump file. */
static int dump_add(track *t, const char *name, s2_dtype dt, const void *data, int ndim, const int64_t *shape) {
    if (t->n_dump == t->cap_dump) {
        int cap = t->cap_dump ? 2 * t->cap_dump : 64;
        s2_st_item *ni = s2_realloc(t->dump, sizeof *ni * (size_t)cap);
        if (!ni) return SAM2C_ERR_NOMEM;
        t->dump = ni;
        t->cap_dump = cap;
    }
    s2_st_item *it = &t->dump[t->n_dump];
    memset(it, 0, sizeof *it);
    it->t.dtype = dt;
    it->t.ndim = ndim;
    memcpy(it->t.shape, shape, sizeof(int64_t) * (size_t)ndim);
    size_t nb = s2_tensor_nbytes(&it->t);
    it->name = s2_strdup(name);
    it->t.data = s2_malloc(nb ? nb : 1);
    if (!it->name || !it->t.data) { free((char *)it->name); free(it->t.data); return SAM2C_ERR_NOMEM; }
    memcpy(it->t.data, data, nb);
    t->n_dump++;
    return 0;
}

/* Fixture names of one object's output: s<step>.f<frame>.o<obj>.<what>. */
static int dump_object(track *t, int f, int id, const uint8_t *mask01) {
    const s2_frame_out *o = s2_video_output(s2_video_api_inner(t->v), id, f, NULL);
    if (!o) return 0;
    char nm[128];
    const int64_t L = s2_lowres_side(t->m), C = t->m->cfg.d_model, one = 1, vs[2] = {t->vh, t->vw}, ls[2] = {L, L};
#define S2_DUMP_NAME(what) (snprintf(nm, sizeof nm, "s%02d.f%02d.o%d.%s", t->step, f, id, what), nm)
    S2_CHECK(dump_add(t, S2_DUMP_NAME("low_res_logits"), S2_F32, o->pred_masks, 2, ls));
    S2_CHECK(dump_add(t, S2_DUMP_NAME("object_score_logits"), S2_F32, &o->object_score, 1, &one));
    S2_CHECK(dump_add(t, S2_DUMP_NAME("obj_ptr"), S2_F32, o->obj_ptr, 1, &C));
    S2_CHECK(dump_add(t, S2_DUMP_NAME("video_mask"), S2_U8, mask01, 2, vs));
#undef S2_DUMP_NAME
    return 0;
}

/* Writes the step's dump file (DIR/s<step>.safetensors) and empties the list. */
static int dump_flush(track *t) {
    int rc = 0;
    if (t->a->dump && t->n_dump) {
        char path[4200];
        snprintf(path, sizeof path, "%s/s%02d.safetensors", t->a->dump, t->step);
        rc = s2_safetensors_write(path, t->dump, t->n_dump, NULL, 0);
    }
    for (int i = 0; i < t->n_dump; i++) { free((char *)t->dump[i].name); free(t->dump[i].t.data); }
    t->n_dump = 0;
    return rc;
}

/* One returned frame: a 0/255 PNG per object, its score, and the dump tensors. */
static int write_frame(track *t, const sam2c_video_frame *f) {
    const int64_t hw = (int64_t)f->width * f->height;
    for (int k = 0; k < f->n_obj; k++) {
        const float *lg = f->logits + k * hw;
        S2_CHECK(note_object(t, f->obj_ids[k]));
        if (t->a->dump) {
            for (int64_t i = 0; i < hw; i++) t->mask[i] = lg[i] > 0.0f;
            S2_CHECK(dump_object(t, f->frame_idx, f->obj_ids[k], t->mask));
        }
        for (int64_t i = 0; i < hw; i++) t->mask[i] = lg[i] > 0.0f ? 255 : 0;
        char path[4400];
        snprintf(path, sizeof path, "%s/%03d/%s.png", t->a->outdir, f->obj_ids[k], f->frame_name);
        S2_CHECK(s2_png_write(path, t->mask, f->width, f->height, 1));
        S2_CHECK(set_score(t, f->frame_idx, f->obj_ids[k], f->object_scores[k]));
    }
    return 0;
}

/* Frame callback of the propagation. */
static int on_frame(void *user, const sam2c_video_frame *f) {
    track *t = user;
    t->n_tracked++;
    return write_frame(t, f);
}

/* By object id, for a stable scores.json. */
static int cmp_score(const void *x, const void *y) {
    const obj_score *a = x, *b = y;
    return (a->id > b->id) - (a->id < b->id);
}

/* OUTDIR/scores.json = {"<frame>": {"<obj_id>": object_score_logit}}, atomically. */
static int write_scores(track *t) {
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_obj_begin(&w);
    for (int f = 0; f < t->nf; f++) {
        if (!t->n_scores[f]) continue;
        qsort(t->scores[f], (size_t)t->n_scores[f], sizeof(obj_score), cmp_score);
        s2_jw_key(&w, sam2c_video_frame_name(t->v, f));
        s2_jw_obj_begin(&w);
        for (int i = 0; i < t->n_scores[f]; i++) {
            char k[16];
            snprintf(k, sizeof k, "%d", t->scores[f][i].id);
            s2_jw_key(&w, k);
            s2_jw_num(&w, t->scores[f][i].score);
        }
        s2_jw_obj_end(&w);
    }
    s2_jw_obj_end(&w);
    char path[4200];
    snprintf(path, sizeof path, "%s/scores.json", t->a->outdir);
    int rc = w.failed ? s2_err(SAM2C_ERR_NOMEM, "out of memory") : s2_write_file_atomic(path, w.buf, w.len);
    s2_jw_free(&w);
    return rc;
}

/* ------------------------------------------------------------------ calls ---- */

/* Runs propagate_in_video with outputs, progress and the rate summary. */
static int run_propagate(track *t, int start, int max_frames, bool reverse) {
    phase_begin(t, reverse ? "reverse" : "propagate");
    t->n_tracked = 0;
    int rc = sam2c_video_propagate(t->v, start, max_frames, reverse, on_frame, t);
    if (rc == 0) phase_end(t, t->n_tracked);
    return rc;
}

/* "dir/file" for a path relative to the script's folder (absolute paths kept). */
static void resolve(const char *script, const char *p, char *out, size_t n) {
    const char *slash = script ? strrchr(script, '/') : NULL;
    if (p[0] == '/' || !slash) snprintf(out, n, "%s", p);
    else snprintf(out, n, "%.*s/%s", (int)(slash - script), script, p);
}

/* A mask argument: "FILE.safetensors:TENSOR" (U8 or BOOL, [.., h, w]), a PNG path, or
 * the fixture's "all-False ... mask of shape [h, w]" (empty; video size without a
 * shape). Text after " (" is a comment. *out: h*w bytes, nonzero = object. */
static int load_mask_arg(const track *t, const char *script, const char *spec, uint8_t **out, int *w, int *h) {
    char s[4096], path[8200];
    snprintf(s, sizeof s, "%s", spec);
    char *c = strstr(s, " (");
    if (c) *c = 0;
    if (!strncmp(s, "all-False", 9) || !strncmp(s, "empty", 5)) {
        const char *b = strchr(spec, '[');
        *h = t->vh;
        *w = t->vw;
        if (b && sscanf(b, "[%d, %d]", h, w) != 2) { *h = t->vh; *w = t->vw; }
        if (*h <= 0 || *w <= 0 || (int64_t)*h * *w > 100000000) return s2_err(SAM2C_ERR_ARG, "mask '%s': bad shape", spec);
        *out = s2_calloc((size_t)*h * *w, 1);
        return *out ? 0 : SAM2C_ERR_NOMEM;
    }
    char *sep = strstr(s, ".safetensors:");
    if (!sep) {
        resolve(script, s, path, sizeof path);
        return s2_png_load_gray(path, out, w, h);
    }
    sep[12] = 0;
    const char *name = sep + 13;
    resolve(script, s, path, sizeof path);
    s2_tensorfile *f = NULL;
    S2_CHECK(s2_tensorfile_open(path, &f));
    const s2_tf_entry *e = s2_tensorfile_find(f, name);
    int rc = 0, nd = e ? e->t.ndim : 0;
    if (!e) rc = s2_err(SAM2C_ERR_MISSING, "%s: no tensor '%s'", path, name);
    else if ((e->t.dtype != S2_U8 && e->t.dtype != S2_BOOL) || nd < 2 || s2_tensor_numel(&e->t) != e->t.shape[nd - 1] * e->t.shape[nd - 2])
        rc = s2_err(SAM2C_ERR_SHAPE, "%s: '%s' is not a U8 / BOOL mask [h, w]", path, name);
    else {
        *h = (int)e->t.shape[nd - 2];
        *w = (int)e->t.shape[nd - 1];
        *out = s2_malloc((size_t)*h * *w);
        if (!*out) rc = SAM2C_ERR_NOMEM;
        else memcpy(*out, e->t.data, (size_t)*h * *w);
    }
    s2_tensorfile_free(f);
    return rc;
}

/* Points [[x, y], ...] and labels [...] of an add call (either may be null / absent). */
static int json_points(const s2_json *args, float **xy, int32_t **lab, int *n) {
    const s2_json *p = s2_json_get(args, "points"), *l = s2_json_get(args, "labels");
    *n = p && p->type == S2_JARR ? p->n : 0;
    int nl = l && l->type == S2_JARR ? l->n : 0;
    if (p && p->type != S2_JARR && p->type != S2_JNULL) return s2_err(SAM2C_ERR_ARG, "'points' must be [[x, y], ...] or null");
    if (*n != nl) return s2_err(SAM2C_ERR_ARG, "%d points but %d labels", *n, nl);
    if (*n == 0) return 0;
    *xy = s2_malloc(sizeof(float) * 2 * (size_t)*n);
    *lab = s2_malloc(sizeof(int32_t) * (size_t)*n);
    if (!*xy || !*lab) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < *n; i++) {
        const s2_json *q = &p->items[i], *li = &l->items[i];
        if (q->type != S2_JARR || q->n != 2 || q->items[0].type != S2_JNUM || q->items[1].type != S2_JNUM || li->type != S2_JNUM ||
            li->num != (double)(int32_t)li->num)
            return s2_err(SAM2C_ERR_ARG, "point %d: expected [x, y] and an integer label", i);
        (*xy)[2 * i] = (float)q->items[0].num;
        (*xy)[2 * i + 1] = (float)q->items[1].num;
        (*lab)[i] = (int32_t)li->num;
    }
    return 0;
}

/* Box [x0, y0, x1, y1] or [[x0, y0], [x1, y1]]; 0 absent, 1 present. */
static int json_box(const s2_json *args, float box[4]) {
    const s2_json *b = s2_json_get(args, "box");
    if (!b || b->type == S2_JNULL) return 0;
    double v[4];
    int k = 0;
    for (int i = 0; b->type == S2_JARR && i < b->n; i++) { // k counts every value, 4 are kept
        const s2_json *e = &b->items[i];
        if (e->type == S2_JNUM && k++ < 4) v[k - 1] = e->num;
        if (e->type != S2_JNUM && e->type != S2_JARR) k = 5;
        for (int j = 0; e->type == S2_JARR && j < e->n; j++)
            if (k++ < 4) v[k - 1] = e->items[j].type == S2_JNUM ? e->items[j].num : NAN;
    }
    if (k != 4 || v[0] != v[0] || v[1] != v[1] || v[2] != v[2] || v[3] != v[3])
        return s2_err(SAM2C_ERR_ARG, "'box' must be [x0, y0, x1, y1]");
    for (int i = 0; i < 4; i++) box[i] = (float)v[i];
    return 1;
}

/* A required integer argument. */
static int arg_int(const s2_json *args, const char *key, int *out) {
    int64_t v;
    if (!s2_json_int(args, key, &v) || v < -2147483647 || v > 2147483647)
        return s2_err(SAM2C_ERR_ARG, "missing or non-integer '%s'", key);
    *out = (int)v;
    return 0;
}

/* An optional integer argument (null / absent: def). */
static int arg_opt_int(const s2_json *args, const char *key, int def, int *out) {
    const s2_json *e = s2_json_get(args, key);
    *out = def;
    return !e || e->type == S2_JNULL ? 0 : arg_int(args, key, out);
}

/* An optional boolean argument. */
static bool arg_bool(const s2_json *args, const char *key, bool def) {
    bool b;
    return s2_json_bool(args, key, &b) ? b : def;
}

// ref: SAM2VideoPredictor.add_new_points_or_box (script step)
static int step_add_points(track *t, const s2_json *args) {
    int frame = 0, obj = 0, n = 0;
    float *xy = NULL, box[4];
    int32_t *lab = NULL;
    S2_CHECK(arg_int(args, "frame_idx", &frame));
    S2_CHECK(arg_int(args, "obj_id", &obj));
    int rc = json_points(args, &xy, &lab, &n), has_box = rc == 0 ? json_box(args, box) : 0;
    if (rc == 0 && has_box < 0) rc = has_box;
    if (rc == 0 && !arg_bool(args, "normalize_coords", true)) { // [0, 1] -> video pixels
        for (int i = 0; i < n; i++) { xy[2 * i] *= (float)t->vw; xy[2 * i + 1] *= (float)t->vh; }
        for (int i = 0; has_box && i < 4; i++) box[i] *= (float)(i % 2 ? t->vh : t->vw);
    }
    sam2c_video_frame f;
    if (rc == 0)
        rc = sam2c_video_add_points(t->v, frame, obj, n, xy, lab, has_box ? box : NULL,
                                    !arg_bool(args, "clear_old_points", true), &f);
    if (rc == 0) rc = write_frame(t, &f);
    free(xy);
    free(lab);
    return rc;
}

// ref: SAM2VideoPredictor.add_new_mask (script step)
static int step_add_mask(track *t, const s2_json *args, const char *script) {
    int frame = 0, obj = 0, w = 0, h = 0;
    S2_CHECK(arg_int(args, "frame_idx", &frame));
    S2_CHECK(arg_int(args, "obj_id", &obj));
    const char *spec = s2_json_str(args, "mask");
    if (!spec) return s2_err(SAM2C_ERR_ARG, "'mask' must be \"FILE.safetensors:TENSOR\" or a PNG path");
    uint8_t *mask = NULL;
    sam2c_video_frame f;
    int rc = load_mask_arg(t, script, spec, &mask, &w, &h);
    if (rc == 0) rc = sam2c_video_add_mask(t->v, frame, obj, mask, w, h, &f);
    if (rc == 0) rc = write_frame(t, &f);
    free(mask);
    return rc;
}

/* One script step: {"op": name, "args": {...}} with the official argument names. */
static int run_step(track *t, const s2_json *step, const char *script) {
    const char *op = s2_json_str(step, "op");
    const s2_json *args = s2_json_get(step, "args");
    int frame = 0, obj = 0, start = -1, maxf = -1;
    sam2c_video_frame f;
    if (!op) return s2_err(SAM2C_ERR_ARG, "no \"op\"");
    if (!strcmp(op, "add_new_points_or_box") || !strcmp(op, "add_new_points")) return step_add_points(t, args);
    if (!strcmp(op, "add_new_mask")) return step_add_mask(t, args, script);
    if (!strcmp(op, "clear_all_prompts_in_frame")) {
        S2_CHECK(arg_int(args, "frame_idx", &frame));
        S2_CHECK(arg_int(args, "obj_id", &obj));
        bool out = arg_bool(args, "need_output", true);
        S2_CHECK(sam2c_video_clear_prompts(t->v, frame, obj, out ? &f : NULL));
        return out ? write_frame(t, &f) : 0;
    }
    if (!strcmp(op, "remove_object")) {
        S2_CHECK(arg_int(args, "obj_id", &obj));
        return sam2c_video_remove_object(t->v, obj, arg_bool(args, "strict", false));
    }
    if (!strcmp(op, "reset_state")) {
        sam2c_video_reset(t->v);
        return 0;
    }
    if (!strcmp(op, "propagate_in_video")) {
        S2_CHECK(arg_opt_int(args, "start_frame_idx", -1, &start));
        S2_CHECK(arg_opt_int(args, "max_frame_num_to_track", -1, &maxf));
        return run_propagate(t, start, maxf, arg_bool(args, "reverse", false));
    }
    return s2_err(SAM2C_ERR_ARG, "unknown op (add_new_points_or_box, add_new_mask, clear_all_prompts_in_frame, "
                                 "remove_object, reset_state, propagate_in_video)");
}

/* Every step of the script, each followed by its dump file. */
static int run_script(track *t, const s2_json *script, const char *path) {
    const s2_json *steps = s2_json_get(script, "steps");
    if (!steps || steps->type != S2_JARR) return s2_err(SAM2C_ERR_FORMAT, "%s: no \"steps\" array", path);
    for (int i = 0; i < steps->n; i++) {
        int64_t no;
        t->step = s2_json_int(&steps->items[i], "step", &no) && no >= 0 && no < 1000000 ? (int)no : i + 1;
        int rc = run_step(t, &steps->items[i], path);
        if (rc < 0) {
            const char *op = s2_json_str(&steps->items[i], "op");
            return s2_err_prefix(rc, "%s: step %d (%s): ", path, t->step, op ? op : "?");
        }
        S2_CHECK(dump_flush(t));
    }
    return 0;
}

/* --point / --box: one call per object and frame (clicks of a frame together), then
 * forward tracking from the earliest prompted frame. */
static int run_simple(track *t) {
    const track_args *a = t->a;
    bool used[MAX_PROMPTS] = {0};
    float xy[2 * MAX_PROMPTS];
    int32_t lab[MAX_PROMPTS];
    t->step = 1;
    for (int i = 0; i < a->n_pr; i++) {
        if (used[i]) continue;
        const cli_prompt *p = &a->pr[i];
        int n = 0;
        const float *box = NULL;
        for (int j = i; j < a->n_pr; j++) {
            const cli_prompt *q = &a->pr[j];
            if (used[j] || q->obj != p->obj || q->frame != p->frame) continue;
            used[j] = true;
            if (q->is_box && box) return s2_err(SAM2C_ERR_ARG, "object %d has two boxes on frame %d", p->obj, p->frame);
            if (q->is_box) box = q->v;
            else { xy[2 * n] = q->v[0]; xy[2 * n + 1] = q->v[1]; lab[n++] = q->label; }
        }
        sam2c_video_frame f;
        int rc = sam2c_video_add_points(t->v, p->frame, p->obj, n, xy, lab, box, 0, &f);
        if (rc == 0) rc = write_frame(t, &f);
        if (rc < 0) return s2_err_prefix(rc, "prompt of object %d on frame %d: ", p->obj, p->frame);
        S2_CHECK(dump_flush(t));
        t->step++;
    }
    S2_CHECK(run_propagate(t, -1, -1, false));
    return dump_flush(t);
}

/* ------------------------------------------------------------------ overlay ---- */

/* Each object blended at 50 % in its colour (by first-seen order), solid on edges. */
void track_blend(uint8_t *rgb, int w, int h, const uint8_t *m, int k) {
    uint8_t col[3];
    cli_palette(k, col);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int64_t i = (int64_t)y * w + x;
            if (!m[i]) continue;
            bool edge = x == 0 || y == 0 || x == w - 1 || y == h - 1 || !m[i - 1] || !m[i + 1] || !m[i - w] || !m[i + w];
            for (int c = 0; c < 3; c++) rgb[i * 3 + c] = edge ? col[c] : (uint8_t)((rgb[i * 3 + c] + col[c]) / 2);
        }
}

/* Overlay of one frame from its written masks: OUTDIR/overlay/<frame>.png (+ video). */
static int overlay_frame(track *t, int f, uint8_t *rgb, s2_vwriter *vw) {
    const char *name = sam2c_video_frame_name(t->v, f);
    char path[4400];
    struct stat st;
    for (int k = 0; k < t->n_ids; k++) {
        snprintf(path, sizeof path, "%s/%03d/%s.png", t->a->outdir, t->ids[k], name);
        if (stat(path, &st) != 0) continue; // no output of this object on this frame
        uint8_t *m = NULL;
        int w, h;
        S2_CHECK(s2_png_load_gray(path, &m, &w, &h));
        if (w == t->vw && h == t->vh) track_blend(rgb, w, h, m, k);
        free(m);
    }
    if (t->a->overlay) {
        snprintf(path, sizeof path, "%s/overlay/%s.png", t->a->outdir, name);
        S2_CHECK(s2_png_write(path, rgb, t->vw, t->vh, 3));
    }
    return vw ? s2_vwriter_add(vw, rgb) : 0;
}

/* Re-reads the source frames (files of a folder, or the video's stream in order). */
static int overlay_all(track *t, s2_vwriter *vw) {
    struct stat st;
    if (stat(t->video_path, &st) != 0) return s2_err(SAM2C_ERR_IO, "%s: gone", t->video_path);
    int f = 0, rc = 0;
    if (S_ISDIR(st.st_mode)) {
        s2_frame_file *list = NULL;
        int n = 0;
        S2_CHECK(s2_list_frame_files(t->video_path, &list, &n));
        s2_image_opts o;
        s2_image_opts_default(&o);
        o.apply_exif = false;
        for (int i = 0; i < n && f < t->nf && rc == 0; i++) {
            const char *nm = sam2c_video_frame_name(t->v, f);
            size_t l = strlen(nm);
            if (strncmp(list[i].name, nm, l) || list[i].name[l] != '.') continue;
            char path[4400];
            snprintf(path, sizeof path, "%s/%s", t->video_path, list[i].name);
            s2_image im = {0};
            rc = s2_image_load(path, &o, &im);
            if (rc == 0) rc = overlay_frame(t, f++, im.px, vw);
            s2_image_free(&im);
        }
        s2_frame_files_free(list, n);
        return rc;
    }
    s2_vreader *r = NULL;
    S2_CHECK(s2_vreader_open(t->video_path, &r));
    uint8_t *buf = s2_malloc((size_t)t->vw * t->vh * 3);
    rc = buf ? 0 : SAM2C_ERR_NOMEM;
    while (rc == 0 && f < t->nf) {
        const uint8_t *rgb;
        int idx, got = s2_vreader_next(r, &rgb, &idx);
        char nm[32];
        snprintf(nm, sizeof nm, "%05d", idx);
        if (got == 0) break;
        if (got < 0 || strcmp(nm, sam2c_video_frame_name(t->v, f))) continue; // a skipped frame
        memcpy(buf, rgb, (size_t)t->vw * t->vh * 3);
        rc = overlay_frame(t, f++, buf, vw);
    }
    free(buf);
    s2_vreader_free(r);
    return rc;
}

/* --overlay (PNG sequence) and --overlay-video (encoded video). */
static int write_overlays(track *t) {
    const track_args *a = t->a;
    if (!a->overlay && !a->overlay_video) return 0;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/overlay", a->outdir);
    if (a->overlay) S2_CHECK(cli_mkdir_p(dir));
    s2_vwriter *vw = NULL;
    if (a->overlay_video) {
        double fps = 0;
        s2_vreader *r = NULL;
        if (s2_vreader_open(t->video_path, &r) == 0) s2_vreader_info(r, NULL, NULL, &fps);
        s2_vreader_free(r);
        int ifps = fps >= 1 && fps <= 240 ? (int)(fps + 0.5) : 25;
        S2_CHECK(s2_vwriter_open(a->overlay_video, NULL, NULL, t->vw, t->vh, ifps, &vw));
    }
    int rc = overlay_all(t, vw);
    if (rc == 0 && vw) rc = s2_vwriter_finish(vw);
    s2_vwriter_free(vw);
    return rc;
}

/* ------------------------------------------------------------------ main ---- */

/* Session options: command-line defaults, then the script's predictor block, then an
 * explicit --corrections-as-cond. */
static sam2c_video_params session_params(const track_args *a, const s2_json *script, track *t) {
    sam2c_video_params p = sam2c_video_default_params();
    const s2_json *pr = script ? s2_json_get(script, "predictor") : NULL;
    const s2_json *pp = pr ? s2_json_get(pr, "post_processing") : NULL;
    bool b;
    double d;
    if (s2_json_bool(pr, "add_all_frames_to_correct_as_cond", &b)) p.corrections_as_cond = b;
    if (s2_json_bool(pr, "clear_non_cond_mem_around_input", &b)) p.clear_non_cond_mem_around_input = b;
    if (s2_json_bool(pr, "non_overlap_masks", &b)) p.non_overlap_masks = b;
    if (s2_json_num(pr, "fill_hole_area", &d) || s2_json_num(pp, "fill_hole_area", &d))
        p.fill_hole_area = d >= 0 && d < 1e9 ? (int)d : -1;
    if (a->cac >= 0) p.corrections_as_cond = a->cac;
    p.max_frames = a->max_frames;
    p.skip_bad_frames = a->skip_bad;
    p.keep_all_outputs = a->unbounded;
    p.window = a->window;
    p.progress = on_progress;
    p.progress_user = t;
    return p;
}

/* Opens the frames (progress, skipped-frame warnings) and sizes the outputs. */
static int open_frames(track *t) {
    phase_begin(t, "load");
    S2_CHECK(sam2c_video_open(t->v, t->video_path));
    t->nf = sam2c_video_num_frames(t->v);
    phase_end(t, t->nf);
    for (int i = 0; sam2c_video_skipped(t->v, i); i++) fprintf(stderr, "sam2c track: skipped frame %s\n", sam2c_video_skipped(t->v, i));
    sam2c_video_size(t->v, &t->vw, &t->vh);
    t->scores = s2_calloc((size_t)t->nf, sizeof *t->scores);
    t->n_scores = s2_calloc((size_t)t->nf, sizeof *t->n_scores);
    t->mask = s2_malloc((size_t)t->vw * t->vh);
    return t->scores && t->n_scores && t->mask ? 0 : SAM2C_ERR_NOMEM;
}

/* Frees what the run allocated (the session and model are the caller's). */
static void track_free(track *t) {
    for (int f = 0; t->scores && f < t->nf; f++) free(t->scores[f]);
    free(t->scores);
    free(t->n_scores);
    free(t->ids);
    free(t->mask);
    for (int i = 0; i < t->n_dump; i++) { free((char *)t->dump[i].name); free(t->dump[i].t.data); }
    free(t->dump);
}

/* Model, script, session, frames, prompts, outputs. */
static int track_run(track *t, track_args *a, const s2_json *script, char *video_buf, size_t vb_len) {
    if (script && !a->video) { // the fixture's own frames folder
        const s2_json *vid = s2_json_get(script, "video");
        const char *fd = vid ? s2_json_str(vid, "frames_dir") : NULL;
        if (!fd) return s2_err(SAM2C_ERR_ARG, "no video given (--video PATH) and the script names no video.frames_dir");
        resolve(a->prompts, fd, video_buf, vb_len);
    } else {
        snprintf(video_buf, vb_len, "%s", a->video);
    }
    t->video_path = video_buf;
    S2_CHECK(cli_mkdir_p(a->outdir));
    if (a->dump) S2_CHECK(cli_mkdir_p(a->dump));
    sam2c_video_params p = session_params(a, script, t);
    S2_CHECK(sam2c_video_create(t->m, &p, &t->v));
    S2_CHECK(open_frames(t));
    int rc = script ? run_script(t, script, a->prompts) : run_simple(t);
    if (rc == SAM2C_ERR_CANCELLED || rc == 0) S2_CHECK(write_scores(t)); // what was done stays usable
    if (rc == 0) rc = write_overlays(t);
    return rc;
}

/* Entry point of `sam2c track`: exit 0, 1 (failure) or 2 (usage). */
int cli_track(int argc, char **argv) {
    static track_args a; // large (prompt table)
    if (parse_args(argc, argv, &a)) return 2;
    if (a.threads) sam2c_set_num_threads(a.threads);
    s2_json *script = NULL;
    if (a.prompts && s2_json_parse_file(a.prompts, NULL, &script) < 0) return cli_fail_lib("track");
    sam2c_model *m = NULL;
    double t_start = s2_now_s();
    if (cli_load_model("track", a.model, a.config, &m)) { s2_json_free(script); return 1; }
    double load_s = s2_now_s() - t_start;
    track t = {.a = &a, .m = m, .tty = isatty(2) != 0};
    char video[4200];
    snprintf(video, sizeof video, "%s", a.video ? a.video : "");
    signal(SIGINT, on_sigint);
    int rc = a.stream ? track_stream(&a, m, &t.nf, &t.n_ids) : track_run(&t, &a, script, video, sizeof video), code = 0;
    signal(SIGINT, SIG_DFL);
    if (rc >= 0)
        rc = cli_write_run_info("track", m, a.model, argc, argv, a.outdir, t_start, load_s, 0, t.nf, a.threads);
    if (rc < 0) code = cli_fail_lib("track");
    else
        printf("%d object(s) over %d frame(s) of %s: masks in %s\n", t.n_ids, t.nf, video, a.outdir);
    track_free(&t);
    sam2c_video_free(t.v);
    sam2c_model_free(m);
    s2_json_free(script);
    return code;
}
