/* `sam2c track --stream`: frames pushed one at a time through the live-stream API
 * (sam2c_video_open_stream / push_frame / track_frame), from a folder of JPEGs, a video
 * file, a container on stdin (FFmpeg's pipe:0) or raw RGB24 frames (--raw WxH, stdin or
 * a file). Each --point / --box is applied when its frame arrives; each frame's masks
 * are written as soon as it is tracked (OUTDIR/<obj %03d>/<frame>.png, a line of
 * OUTDIR/scores.json, the overlay), so nothing accumulates over a long stream. */
#include "cli/cli.h"
#include "cli/output.h"
#include "cli/track.h"
#include "core/s2.h"
#include "io/image.h"
#include "io/json.h"
#include "io/video_decode.h"
#include "predict/video_frames.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where the pushed frames come from. */
typedef struct frame_reader {
    const char *path;          /* as given ("-" = stdin) */
    FILE *raw;                 /* --raw: RGB24 frames */
    s2_vreader *vr;            /* a container (file or stdin) */
    s2_frame_file *files;      /* a folder's frames */
    int n_files, next_file;
    uint8_t *buf;              /* (h, w, 3) the current raw / folder frame */
    int w, h;                  /* frame size (0 until known) */
    int skip_bad, n_read;
    double fps;
} frame_reader;

/* Everything one streaming run holds: never more than one frame of anything. */
typedef struct stream_run {
    const track_args *a;
    sam2c_video *v;
    frame_reader rd;
    FILE *scores;              /* OUTDIR/scores.json, written frame by frame */
    int n_scored;
    int *ids, n_ids;           /* objects seen, first-seen order (colours, folders) */
    uint8_t *mask, *over;      /* (h, w) mask scratch; (h, w, 3) overlay */
    s2_vwriter *ovw;
    bool *applied;             /* [n_pr] prompts already applied */
    int n_frames;
    double t0, last_print;
    bool tty;
} stream_run;

/* ------------------------------------------------------------------ reader ---- */

/* Opens the source: raw frames, a folder, or a container FFmpeg reads. */
static int reader_open(frame_reader *r, const track_args *a) {
    r->path = a->video;
    r->skip_bad = a->skip_bad;
    const bool in = !strcmp(a->video, "-");
    if (a->raw_w) {
        r->w = a->raw_w;
        r->h = a->raw_h;
        r->raw = in ? stdin : fopen(a->video, "rb");
        if (!r->raw) return s2_err(SAM2C_ERR_IO, "%s: cannot open", a->video);
        r->buf = s2_malloc((size_t)r->w * r->h * 3);
        return r->buf ? 0 : SAM2C_ERR_NOMEM;
    }
    struct stat st;
    if (!in && stat(a->video, &st) == 0 && S_ISDIR(st.st_mode))
        return s2_list_frame_files(a->video, &r->files, &r->n_files);
    S2_CHECK(s2_vreader_open(in ? "pipe:0" : a->video, &r->vr));
    s2_vreader_info(r->vr, &r->w, &r->h, &r->fps);
    return 0;
}

static void reader_close(frame_reader *r) {
    if (r->raw && r->raw != stdin) fclose(r->raw);
    s2_vreader_free(r->vr);
    s2_frame_files_free(r->files, r->n_files);
    free(r->buf);
}

/* One raw RGB24 frame: 1, 0 at the end, an error on a truncated frame. */
static int next_raw(frame_reader *r, const uint8_t **rgb) {
    const size_t want = (size_t)r->w * r->h * 3;
    size_t got = 0;
    while (got < want) {
        size_t n = fread(r->buf + got, 1, want - got, r->raw);
        if (n == 0) break;
        got += n;
    }
    if (got == 0 && feof(r->raw)) return 0;
    if (got < want)
        return s2_err(SAM2C_ERR_IO, "%s: frame %d is truncated (%zu of %zu bytes of a %dx%d RGB24 frame)",
                      r->path, r->n_read, got, want, r->w, r->h);
    *rgb = r->buf;
    return 1;
}

/* The next decodable frame of a folder (unreadable ones skipped with --skip-bad-frames). */
static int next_file(frame_reader *r, const uint8_t **rgb) {
    s2_image_opts o;
    s2_image_opts_default(&o);
    o.apply_exif = false; // PIL.Image.open does not rotate
    while (r->next_file < r->n_files) {
        const char *name = r->files[r->next_file++].name;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", r->path, name);
        s2_image im = {0};
        int rc = s2_image_load(path, &o, &im);
        if (rc < 0 && r->skip_bad && (rc == SAM2C_ERR_FORMAT || rc == SAM2C_ERR_IO)) {
            fprintf(stderr, "sam2c track: skipped frame %s: %s\n", name, sam2c_last_error());
            continue;
        }
        if (rc < 0) return rc;
        if (r->w && (im.w != r->w || im.h != r->h)) {
            s2_image_free(&im);
            return s2_err(SAM2C_ERR_SHAPE, "%s: %s: frame is %dx%d but the stream is %dx%d (frames of different sizes)",
                          r->path, name, im.w, im.h, r->w, r->h);
        }
        free(r->buf);
        r->buf = im.px;
        r->w = im.w;
        r->h = im.h;
        *rgb = r->buf;
        return 1;
    }
    return 0;
}

/* The next frame of any source: 1 and *rgb (h, w, 3), borrowed until the next call;
 * 0 at the end. */
static int reader_next(frame_reader *r, const uint8_t **rgb) {
    int rc;
    if (r->raw) rc = next_raw(r, rgb);
    else if (r->files) rc = next_file(r, rgb);
    else {
        int idx = 0;
        while ((rc = s2_vreader_next(r->vr, rgb, &idx)) < 0 && r->skip_bad && rc == SAM2C_ERR_FORMAT)
            fprintf(stderr, "sam2c track: skipped frame %05d: %s\n", idx, sam2c_last_error());
    }
    if (rc > 0) r->n_read++;
    return rc;
}

/* ------------------------------------------------------------------ outputs ---- */

/* Remembers an object id; its output folder is created on first sight. */
static int note_object(stream_run *s, int id, int *k) {
    for (*k = 0; *k < s->n_ids; (*k)++)
        if (s->ids[*k] == id) return 0;
    int *ni = s2_realloc(s->ids, sizeof *ni * (size_t)(s->n_ids + 1));
    if (!ni) return SAM2C_ERR_NOMEM;
    s->ids = ni;
    s->ids[s->n_ids++] = id;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%03d", s->a->outdir, id);
    return cli_mkdir_p(dir) == 0 ? 0 : s2_err(SAM2C_ERR_IO, "%s: cannot create", dir);
}

/* One frame's line of scores.json: "<frame>": {"<obj_id>": score, ...} by object id. */
static int write_scores_line(stream_run *s, const sam2c_video_frame *f) {
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_obj_begin(&w);
    int done = 0, last = 0;
    while (done < f->n_obj) { // ascending ids without sorting the borrowed arrays
        int best = -1;
        for (int k = 0; k < f->n_obj; k++)
            if ((done == 0 || f->obj_ids[k] > last) && (best < 0 || f->obj_ids[k] < f->obj_ids[best])) best = k;
        char key[16];
        snprintf(key, sizeof key, "%d", f->obj_ids[best]);
        s2_jw_key(&w, key);
        s2_jw_num(&w, f->object_scores[best]);
        last = f->obj_ids[best];
        done++;
    }
    s2_jw_obj_end(&w);
    int rc = w.failed ? SAM2C_ERR_NOMEM : 0;
    if (rc == 0 && fprintf(s->scores, "%s\n  \"%s\": %.*s", s->n_scored ? "," : "", f->frame_name, (int)w.len, w.buf) < 0)
        rc = s2_err(SAM2C_ERR_IO, "%s/scores.json: write failed", s->a->outdir);
    fflush(s->scores);
    s2_jw_free(&w);
    s->n_scored++;
    return rc;
}

/* Overlay of the frame (its masks blended in) as a PNG and / or a video frame. */
static int write_overlay(stream_run *s, const sam2c_video_frame *f, const uint8_t *rgb) {
    const track_args *a = s->a;
    const int64_t hw = (int64_t)f->width * f->height;
    memcpy(s->over, rgb, (size_t)hw * 3);
    for (int i = 0; i < f->n_obj; i++) {
        int k = 0;
        S2_CHECK(note_object(s, f->obj_ids[i], &k));
        for (int64_t p = 0; p < hw; p++) s->mask[p] = f->logits[i * hw + p] > 0.0f;
        track_blend(s->over, f->width, f->height, s->mask, k);
    }
    if (a->overlay) {
        char path[4400];
        snprintf(path, sizeof path, "%s/overlay/%s.png", a->outdir, f->frame_name);
        S2_CHECK(s2_png_write(path, s->over, f->width, f->height, 3));
    }
    if (a->overlay_video && !s->ovw) {
        int fps = s->rd.fps >= 1 && s->rd.fps <= 240 ? (int)(s->rd.fps + 0.5) : 25;
        S2_CHECK(s2_vwriter_open(a->overlay_video, NULL, NULL, f->width, f->height, fps, &s->ovw));
    }
    return s->ovw ? s2_vwriter_add(s->ovw, s->over) : 0;
}

/* A tracked frame: a 0/255 PNG per object, its scores line, the overlay. */
static int write_frame(stream_run *s, const sam2c_video_frame *f, const uint8_t *rgb) {
    const int64_t hw = (int64_t)f->width * f->height;
    for (int i = 0; i < f->n_obj; i++) {
        int k = 0;
        S2_CHECK(note_object(s, f->obj_ids[i], &k));
        for (int64_t p = 0; p < hw; p++) s->mask[p] = f->logits[i * hw + p] > 0.0f ? 255 : 0;
        char path[4400];
        snprintf(path, sizeof path, "%s/%03d/%s.png", s->a->outdir, f->obj_ids[i], f->frame_name);
        S2_CHECK(s2_png_write(path, s->mask, f->width, f->height, 1));
    }
    if (f->n_obj) S2_CHECK(write_scores_line(s, f));
    return s->a->overlay || s->a->overlay_video ? write_overlay(s, f, rgb) : 0;
}

/* ------------------------------------------------------------------ run ---- */

/* The prompts of frame t, one call per object (its clicks and box together). */
static int apply_prompts(stream_run *s, int t) {
    const track_args *a = s->a;
    float xy[2 * MAX_PROMPTS];
    int32_t lab[MAX_PROMPTS];
    for (int i = 0; i < a->n_pr; i++) {
        if (s->applied[i] || a->pr[i].frame != t) continue;
        const cli_prompt *p = &a->pr[i];
        int n = 0;
        const float *box = NULL;
        for (int j = i; j < a->n_pr; j++) {
            const cli_prompt *q = &a->pr[j];
            if (s->applied[j] || q->obj != p->obj || q->frame != t) continue;
            s->applied[j] = true;
            if (q->is_box && box) return s2_err(SAM2C_ERR_ARG, "object %d has two boxes on frame %d", p->obj, t);
            if (q->is_box) box = q->v;
            else { xy[2 * n] = q->v[0]; xy[2 * n + 1] = q->v[1]; lab[n++] = q->label; }
        }
        int rc = sam2c_video_add_points(s->v, t, p->obj, n, xy, lab, box, 0, NULL);
        if (rc < 0) return s2_err_prefix(rc, "prompt of object %d on frame %d: ", p->obj, t);
    }
    return 0;
}

/* Progress on stderr with frames/s: a rewritten line on a terminal, else every 5 s. */
static void progress(stream_run *s, bool last) {
    double now = s2_now_s(), dt = now - s->t0 > 1e-9 ? now - s->t0 : 1e-9;
    if (s->a->quiet || (!last && now - s->last_print < (s->tty ? 0.2 : 5.0))) return;
    s->last_print = now;
    if (last) {
        if (s->tty) fputc('\n', stderr);
        fprintf(stderr, "stream: %d frames in %.2f s (%.2f frames/s)\n", s->n_frames, dt, s->n_frames / dt);
    } else {
        fprintf(stderr, s->tty ? "\r  stream    %d frames %.2f frames/s " : "  stream    %d frames %.2f frames/s\n",
                s->n_frames, s->n_frames / dt);
    }
    fflush(stderr);
}

/* One pushed frame: prompts of that frame, tracking, outputs. */
static int one_frame(stream_run *s, const uint8_t *rgb) {
    int t = 0;
    if (s->n_frames == 0) {
        S2_CHECK(sam2c_video_open_stream(s->v, s->rd.w, s->rd.h));
        s->mask = s2_malloc((size_t)s->rd.w * s->rd.h);
        s->over = s2_malloc((size_t)s->rd.w * s->rd.h * 3);
        if (!s->mask || !s->over) return SAM2C_ERR_NOMEM;
    }
    S2_CHECK(sam2c_video_push_frame(s->v, rgb, s->rd.w, s->rd.h, &t));
    S2_CHECK(apply_prompts(s, t));
    sam2c_video_frame f;
    S2_CHECK(sam2c_video_track_frame(s->v, t, &f));
    S2_CHECK(write_frame(s, &f, rgb));
    s->n_frames++;
    progress(s, false);
    return 0;
}

/* Pushes frames until the source ends, --max-frames, or Ctrl-C. */
static int stream_loop(stream_run *s) {
    for (;;) {
        if (s->a->max_frames && s->n_frames >= s->a->max_frames) return 0;
        if (track_interrupted()) {
            if (!s->a->quiet) fprintf(stderr, "\nsam2c track: stopped (Ctrl-C) after %d frames\n", s->n_frames);
            return 0;
        }
        const uint8_t *rgb = NULL;
        int rc = reader_next(&s->rd, &rgb);
        if (rc <= 0) return rc;
        S2_CHECK(one_frame(s, rgb));
    }
}

/* Session, output files, the loop, and the closing of scores.json / the overlay video. */
static int stream_run_all(stream_run *s, const sam2c_model *m) {
    const track_args *a = s->a;
    sam2c_video_params p = sam2c_video_default_params();
    if (a->cac >= 0) p.corrections_as_cond = a->cac;
    p.keep_all_outputs = a->unbounded;
    p.window = a->window;
    S2_CHECK(sam2c_video_create(m, &p, &s->v));
    char path[4200];
    if (cli_mkdir_p(a->outdir) != 0) return s2_err(SAM2C_ERR_IO, "%s: cannot create", a->outdir);
    snprintf(path, sizeof path, "%s/overlay", a->outdir);
    if (a->overlay && cli_mkdir_p(path) != 0) return s2_err(SAM2C_ERR_IO, "%s: cannot create", path);
    snprintf(path, sizeof path, "%s/scores.json", a->outdir);
    if (!(s->scores = fopen(path, "w"))) return s2_err(SAM2C_ERR_IO, "%s: cannot create", path);
    fputc('{', s->scores);
    S2_CHECK(reader_open(&s->rd, a));
    s->t0 = s2_now_s();
    int rc = stream_loop(s);
    fputs(s->n_scored ? "\n}\n" : "}\n", s->scores); // what was tracked stays valid JSON
    if (fclose(s->scores) != 0 && rc == 0) rc = s2_err(SAM2C_ERR_IO, "%s: write failed", path);
    s->scores = NULL;
    if (rc == 0 && s->ovw) rc = s2_vwriter_finish(s->ovw);
    if (s->n_frames) progress(s, true);
    for (int i = 0; rc == 0 && i < a->n_pr; i++)
        if (!s->applied[i])
            rc = s2_err(SAM2C_ERR_ARG, "prompt of object %d on frame %d: the stream ended after %d frames",
                        a->pr[i].obj, a->pr[i].frame, s->n_frames);
    return rc;
}

int track_stream(const track_args *a, const sam2c_model *m, int *n_frames, int *n_objects) {
    stream_run s = {.a = a, .tty = isatty(2) != 0};
    s.applied = s2_calloc((size_t)(a->n_pr ? a->n_pr : 1), sizeof(bool));
    int rc = s.applied ? stream_run_all(&s, m) : SAM2C_ERR_NOMEM;
    *n_frames = s.n_frames;
    *n_objects = s.n_ids;
    if (s.scores) fclose(s.scores);
    reader_close(&s.rd);
    s2_vwriter_free(s.ovw);
    sam2c_video_free(s.v);
    free(s.applied);
    free(s.ids);
    free(s.mask);
    free(s.over);
    return rc;
}
