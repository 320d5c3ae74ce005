/* Live streams and bounded memory of the video predictor (micro model, sample clips).
 *
 *  - a stream pushed frame by frame gives bitwise the whole-video results on a clip of
 *    16 frames or more (the official pointer normalisation min(num_frames, 16) - 1 is the
 *    same), and the bounded window gives bitwise the keep-all results;
 *  - what a stream holds stops growing: after 30 and after 60 frames the same decoded
 *    frames (= the window), the same stored outputs (1 conditioning + window + pointer
 *    reach) and the same bytes; keeping every output grows by one output per frame;
 *  - errors: push before open, another frame size, prompts / tracking on a frame the
 *    stream dropped (the kept frames named), no objects yet;
 *  - a folder video in bounded mode with a window of 2: a correction whose memories are
 *    still held, then a re-propagation over frames decoded again from their files, gives
 *    bitwise the keep-all results; a correction far from every kept memory still works;
 *  - a video file read backwards and out of order (seeking to the key frame before the
 *    frame, or re-opening, then decoding forward) gives the frames a sequential decode
 *    gives: a lossless FFV1 clip (= the folder's frames) and a 36-frame clip with a key
 *    frame every 12 frames. */
#include "harness.h"
#include "core/s2.h"
#include "io/image.h"
#include "io/video_decode.h"
#include "model/model.h"
#include "predict/video.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

s2_video *s2_video_api_inner(sam2c_video *v); /* predict/video_api.c */

#define MAX_FRAMES 128

/* Hashes of every returned frame (logits and scores), in order. */
typedef struct frame_log {
    uint64_t hash[MAX_FRAMES * 2];
    int frame[MAX_FRAMES * 2];
    int n;
} frame_log;

/* FNV-1a of a frame's logits and object scores: equal hashes = bitwise equal outputs. */
static void log_frame(frame_log *l, const sam2c_video_frame *f) {
    uint64_t h = 1469598103934665603ULL;
    const uint8_t *b = (const uint8_t *)f->logits;
    for (size_t i = 0; i < sizeof(float) * (size_t)f->n_obj * f->width * f->height; i++) h = (h ^ b[i]) * 1099511628211ULL;
    b = (const uint8_t *)f->object_scores;
    for (size_t i = 0; i < sizeof(float) * (size_t)f->n_obj; i++) h = (h ^ b[i]) * 1099511628211ULL;
    if (l->n < MAX_FRAMES * 2) {
        l->hash[l->n] = h;
        l->frame[l->n++] = f->frame_idx;
    }
}

/* Propagation callback: logs the frame. */
static int on_frame(void *user, const sam2c_video_frame *f) {
    log_frame(user, f);
    return 0;
}

/* Number of entries equal (same frame, same hash) at the same position of two logs. */
static int same_frames(const frame_log *a, const frame_log *b) {
    int n = 0;
    for (int i = 0; i < a->n && i < b->n; i++) n += a->frame[i] == b->frame[i] && a->hash[i] == b->hash[i];
    return n;
}

/* Frames 0..n-1 of a sample clip folder (e.g. "videos/bedroom"), decoded. */
static int load_clip(const char *rel, int n, s2_image *ims) {
    s2_image_opts o;
    s2_image_opts_default(&o);
    o.apply_exif = false;
    for (int i = 0; i < n; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%05d.jpg", rel, i);
        if (s2_image_load(p, &o, &ims[i]) < 0) return -1;
    }
    return 0;
}

/* A session with the given bounded-memory settings. */
static sam2c_video *session(const sam2c_model *m, int keep_all, int window) {
    sam2c_video_params p = sam2c_video_default_params();
    p.keep_all_outputs = keep_all;
    p.window = window;
    sam2c_video *v = NULL;
    CHECK_MSG(sam2c_video_create(m, &p, &v) == 0, "%s", sam2c_last_error());
    return v;
}

/* The micro model, or NULL (skipped) without fixtures. */
static sam2c_model *micro(void) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return NULL; }
    sam2c_model *m = NULL;
    CHECK_MSG(sam2c_model_load(s2t_fx("micro/model.safetensors"), NULL, &m) == 0, "%s", sam2c_last_error());
    return m;
}

/* Pushes n frames, prompting object 1 (a click) and 2 (a box) on frame 0 and tracking
 * each frame as it arrives; logs every tracked frame. */
static int stream_run(sam2c_video *v, const s2_image *ims, int n_ims, int n, frame_log *log) {
    const float pt[2] = {210, 350}, box[4] = {300, 10, 524, 400};
    const int32_t lab[1] = {1};
    int rc = sam2c_video_open_stream(v, ims[0].w, ims[0].h);
    for (int i = 0; i < n && rc == 0; i++) {
        int t = -1;
        sam2c_video_frame f;
        rc = sam2c_video_push_frame(v, ims[i % n_ims].px, ims[0].w, ims[0].h, &t);
        if (rc == 0 && t != i) rc = s2_err(SAM2C_ERR_STATE, "pushed frame %d got index %d", i, t);
        if (rc == 0 && i == 0) rc = sam2c_video_add_points(v, 0, 1, 1, pt, lab, NULL, 0, NULL);
        if (rc == 0 && i == 0) rc = sam2c_video_add_points(v, 0, 2, 0, NULL, NULL, box, 0, NULL);
        if (rc == 0) rc = sam2c_video_track_frame(v, t, &f);
        if (rc == 0 && log) log_frame(log, &f);
    }
    return rc;
}

/* Pushed one by one, 20 bedroom frames track as the whole clip does (default window and
 * a window of 2: forward tracking never reads what the window freed). */
TEST(stream_equals_whole_video) {
    if (!s2t_data()) { s2t_skip("sample data missing"); return; }
    sam2c_model *m = micro();
    if (!m) return;
    enum { N = 20 };
    static s2_image ims[N];
    REQUIRE(load_clip(s2t_dat("videos/bedroom"), N, ims) == 0);
    const uint8_t *px[N];
    for (int i = 0; i < N; i++) px[i] = ims[i].px;
    static frame_log whole, st_default, st_small;
    const float pt[2] = {210, 350}, box[4] = {300, 10, 524, 400};
    const int32_t lab[1] = {1};
    sam2c_video *v = session(m, 1, 0);
    REQUIRE(v && sam2c_video_set_frames(v, N, px, ims[0].w, ims[0].h) == 0);
    CHECK(sam2c_video_add_points(v, 0, 1, 1, pt, lab, NULL, 0, NULL) == 0);
    CHECK(sam2c_video_add_points(v, 0, 2, 0, NULL, NULL, box, 0, NULL) == 0);
    CHECK_MSG(sam2c_video_propagate(v, -1, -1, 0, on_frame, &whole) == 0, "%s", sam2c_last_error());
    sam2c_video_free(v);
    v = session(m, 0, 0);
    CHECK_MSG(v && stream_run(v, ims, N, N, &st_default) == 0, "%s", sam2c_last_error());
    sam2c_video_free(v);
    v = session(m, 0, 2);
    CHECK_MSG(v && stream_run(v, ims, N, N, &st_small) == 0, "%s", sam2c_last_error());
    sam2c_video_free(v);
    CHECK_EQ_INT(whole.n, N);
    CHECK_EQ_INT(same_frames(&whole, &st_default), N);
    CHECK_EQ_INT(same_frames(&whole, &st_small), N);
    printf("    %d frames: stream (window 16 / 2) bitwise equal to the whole clip: %d / %d\n", N,
           same_frames(&whole, &st_default), same_frames(&whole, &st_small));
    for (int i = 0; i < N; i++) s2_image_free(&ims[i]);
    sam2c_model_free(m);
}

/* Resident frames / outputs / bytes after n pushed frames of the micro clip (cycled). */
static void resident_after(const sam2c_model *m, int keep_all, int window, const s2_image *ims, int n,
                           int *frames, int *outputs, size_t *bytes, frame_log *log) {
    sam2c_video *v = session(m, keep_all, window);
    if (!v) return;
    CHECK_MSG(stream_run(v, ims, 12, n, log) == 0, "%s", sam2c_last_error());
    CHECK(sam2c_video_resident(v, frames, outputs, bytes) == 0);
    sam2c_video_free(v);
}

/* A stream's memory stops growing: the same counts after 30 and 60 frames. */
TEST(stream_memory_is_bounded) {
    sam2c_model *m = micro();
    if (!m) return;
    static s2_image ims[12];
    REQUIRE(load_clip(s2t_fx("micro/video/frames"), 12, ims) == 0);
    const int W = 2, reach = m->cfg.max_obj_ptrs_in_encoder - 1;
    int f30 = 0, o30 = 0, f60 = 0, o60 = 0, fa = 0, oa = 0, fb = 0, ob = 0;
    size_t b30 = 0, b60 = 0, ba = 0, bb = 0;
    static frame_log bounded, kept;
    resident_after(m, 0, W, ims, 30, &f30, &o30, &b30, NULL);
    resident_after(m, 0, W, ims, 60, &f60, &o60, &b60, &bounded);
    resident_after(m, 1, W, ims, 15, &fa, &oa, &ba, NULL);
    resident_after(m, 1, W, ims, 30, &fb, &ob, &bb, &kept);
    printf("    bounded (window %d): after 30 frames %d frames, %d outputs, %zu bytes; after 60: %d, %d, %zu\n", W, f30,
           o30, b30, f60, o60, b60);
    printf("    keep-all: after 15 frames %d outputs, %zu bytes; after 30: %d, %zu\n", oa, ba, ob, bb);
    CHECK_EQ_INT(f30, W);
    CHECK_EQ_INT(f60, W);
    CHECK_EQ_INT(o30, 2 * (1 + W + reach)); // per object: frame 0 + the last W + reach frames
    CHECK_EQ_INT(o60, o30);
    CHECK_EQ_INT(b60, b30);
    CHECK_EQ_INT(ob - oa, 2 * 15);           // keep-all: one output per object and frame
    CHECK(bb > ba);
    CHECK_EQ_INT(same_frames(&bounded, &kept), 30); // the window never changes a result
    for (int i = 0; i < 12; i++) s2_image_free(&ims[i]);
    sam2c_model_free(m);
}

/* Bad stream calls fail with one clear message and leave the session usable. */
TEST(stream_errors) {
    sam2c_model *m = micro();
    if (!m) return;
    static s2_image ims[12];
    REQUIRE(load_clip(s2t_fx("micro/video/frames"), 6, ims) == 0);
    sam2c_video *v = session(m, 0, 3);
    REQUIRE(v);
    const int w = ims[0].w, h = ims[0].h;
    const float pt[2] = {105, 175};
    const int32_t lab[1] = {1};
    int t = -1;
    sam2c_video_frame f;
    CHECK_EQ_INT(sam2c_video_push_frame(v, ims[0].px, w, h, &t), SAM2C_ERR_STATE);
    CHECK_MSG(strstr(sam2c_last_error(), "no stream open"), "%s", sam2c_last_error());
    CHECK_EQ_INT(sam2c_video_open_stream(v, 0, h), SAM2C_ERR_ARG);
    REQUIRE(sam2c_video_open_stream(v, w, h) == 0);
    CHECK_EQ_INT(sam2c_video_add_points(v, 0, 1, 1, pt, lab, NULL, 0, NULL), SAM2C_ERR_STATE); // nothing pushed
    CHECK_EQ_INT(sam2c_video_push_frame(v, ims[0].px, w / 2, h, &t), SAM2C_ERR_SHAPE);
    CHECK_MSG(strstr(sam2c_last_error(), "frame is 240x270 but the stream is 480x270"), "%s", sam2c_last_error());
    CHECK_EQ_INT(sam2c_video_push_frame(v, NULL, w, h, &t), SAM2C_ERR_ARG);
    REQUIRE(sam2c_video_push_frame(v, ims[0].px, w, h, &t) == 0 && t == 0);
    CHECK(sam2c_video_track_frame(v, 0, &f) == 0 && f.n_obj == 0 && f.frame_idx == 0); // no object yet
    for (int i = 1; i < 6; i++) REQUIRE(sam2c_video_push_frame(v, ims[i].px, w, h, &t) == 0 && t == i);
    CHECK(!strcmp(sam2c_video_frame_name(v, 4), "00004") && !sam2c_video_frame_name(v, 6));
    CHECK_EQ_INT(sam2c_video_num_frames(v), 6);
    CHECK_EQ_INT(sam2c_video_add_points(v, 2, 1, 1, pt, lab, NULL, 0, NULL), SAM2C_ERR_LIMIT);
    CHECK_MSG(strstr(sam2c_last_error(), "add points: frame 2 of a live stream is outside the memory window (frames 3..5 are kept)"),
              "%s", sam2c_last_error());
    CHECK_EQ_INT(sam2c_video_track_frame(v, 0, &f), SAM2C_ERR_LIMIT);
    CHECK_EQ_INT(sam2c_video_track_frame(v, 6, &f), SAM2C_ERR_ARG);
    CHECK_EQ_INT(sam2c_video_objects(v, NULL, 0), 0); // the failed prompt created nothing
    // prompts and corrections inside the window work
    CHECK(sam2c_video_add_points(v, 3, 1, 1, pt, lab, NULL, 0, NULL) == 0);
    CHECK(sam2c_video_track_frame(v, 3, &f) == 0 && f.n_obj == 1);
    CHECK(sam2c_video_track_frame(v, 4, &f) == 0 && f.n_obj == 1 && f.frame_idx == 4 && !strcmp(f.frame_name, "00004"));
    const float neg[2] = {130, 200};
    const int32_t lab0[1] = {0};
    CHECK_MSG(sam2c_video_add_points(v, 4, 1, 1, neg, lab0, NULL, 1, &f) == 0, "%s", sam2c_last_error());
    CHECK(sam2c_video_track_frame(v, 5, &f) == 0 && f.n_obj == 1);
    // a session with frames from a folder is no stream
    sam2c_video *u = session(m, 0, 0);
    REQUIRE(u && sam2c_video_open(u, s2t_fx("micro/video/frames")) == 0);
    CHECK_EQ_INT(sam2c_video_push_frame(u, ims[0].px, w, h, &t), SAM2C_ERR_STATE);
    sam2c_video_free(u);
    sam2c_video_free(v);
    for (int i = 0; i < 6; i++) s2_image_free(&ims[i]);
    sam2c_model_free(m);
}

/* The folder scenario of one session: click frame 0, track frames 0..20, correct frame
 * 19 (its memories lie within the window of frame 20), re-propagate the whole clip. */
static void correct_and_repropagate(sam2c_video *v, frame_log *log, int *frames_held) {
    const float pt[2] = {210, 350}, fix[2] = {600, 200};
    const int32_t lab[1] = {1};
    CHECK_MSG(sam2c_video_add_points(v, 0, 1, 1, pt, lab, NULL, 0, NULL) == 0, "%s", sam2c_last_error());
    CHECK_MSG(sam2c_video_propagate(v, 0, 20, 0, on_frame, log) == 0, "%s", sam2c_last_error());
    sam2c_video_frame f;
    CHECK_MSG(sam2c_video_add_points(v, 19, 1, 1, fix, lab, NULL, 1, &f) == 0, "%s", sam2c_last_error());
    log_frame(log, &f);
    CHECK_MSG(sam2c_video_propagate(v, -1, -1, 0, on_frame, log) == 0, "%s", sam2c_last_error());
    CHECK(sam2c_video_resident(v, frames_held, NULL, NULL) == 0);
}

/* Bounded mode on a 30-frame folder clip with a window of 2 frames: the correction and
 * the re-propagation over frames decoded again from their files equal keep-all's. */
TEST(folder_correction_matches_keep_all) {
    if (!s2t_data()) { s2t_skip("sample data missing"); return; }
    sam2c_model *m = micro();
    if (!m) return;
    static frame_log bounded, kept;
    sam2c_video_params p = sam2c_video_default_params();
    p.max_frames = 30;
    p.window = 2;
    sam2c_video *a = NULL, *b = NULL;
    REQUIRE(sam2c_video_create(m, &p, &a) == 0);
    p.keep_all_outputs = 1;
    REQUIRE(sam2c_video_create(m, &p, &b) == 0);
    REQUIRE(sam2c_video_open(a, s2t_dat("videos/bedroom")) == 0 && sam2c_video_open(b, s2t_dat("videos/bedroom")) == 0);
    int fa = 0, fb = 0, oa = 0, ob = 0;
    size_t ba = 0, bb = 0;
    correct_and_repropagate(a, &bounded, &fa);
    correct_and_repropagate(b, &kept, &fb);
    sam2c_video_resident(a, NULL, &oa, &ba);
    sam2c_video_resident(b, NULL, &ob, &bb);
    printf("    bounded: %d decoded frames, %d outputs, %zu bytes held; keep-all: %d, %d, %zu\n", fa, oa, ba, fb, ob, bb);
    CHECK_EQ_INT(bounded.n, 21 + 1 + 30);
    CHECK_EQ_INT(same_frames(&bounded, &kept), bounded.n);
    CHECK(fa <= 2 && fb <= 2);      // frames are decoded again, not held
    CHECK_EQ_INT(ob, 30);            // one per frame (19 now a conditioning frame)
    CHECK(ba < bb);                  // far from frames 0, 19, 29: pointers only
    // far from every held memory (frames 8..11 kept only their pointers): still works
    const float fix[2] = {300, 300};
    const int32_t lab[1] = {1};
    sam2c_video_frame fr;
    CHECK_MSG(sam2c_video_add_points(a, 12, 1, 1, fix, lab, NULL, 1, &fr) == 0, "%s", sam2c_last_error());
    CHECK(fr.n_obj == 1 && fr.frame_idx == 12);
    sam2c_video_free(a);
    sam2c_video_free(b);
    sam2c_model_free(m);
}

/* Frames of a video file read backwards and out of order through a session that differ
 * from the same file decoded in order (and resized as the predictor does). */
static int gop_clip_mismatches(const sam2c_model *m, const char *path, int n) {
    const int S = sam2c_model_image_size(m);
    const size_t per = (size_t)S * S * 3;
    uint8_t *ref = malloc(per * (size_t)n);
    s2_vreader *r = NULL;
    int got = 0, w = 0, h = 0;
    if (!ref || s2_vreader_open(path, &r) < 0) { free(ref); return -1; }
    s2_vreader_info(r, &w, &h, NULL);
    const uint8_t *rgb;
    while (got < n && s2_vreader_next(r, &rgb, NULL) == 1) s2_pil_resize_bicubic_u8(ref + per * (size_t)got++, S, S, rgb, w, h, 3);
    s2_vreader_free(r);
    sam2c_video *v = session(m, 0, 0);
    int bad = got == n && v && sam2c_video_open(v, path) == 0 && sam2c_video_num_frames(v) == n ? 0 : n;
    for (int k = 0; bad == 0 && k < 2 * n; k++) {
        int f = k < n ? n - 1 - k : (k * 7) % n; // backwards, then jumping around
        const uint8_t *x = s2_video_frame_rgb(s2_video_api_inner(v), f);
        bad += !x || memcmp(x, ref + per * (size_t)f, per) != 0;
    }
    sam2c_video_free(v);
    free(ref);
    return bad;
}

/* A video file read backwards and out of order gives the folder's model inputs. */
TEST(file_frames_read_back) {
    sam2c_model *m = micro();
    if (!m) return;
    if (!s2_vdec_available()) { s2t_skip("FFmpeg missing"); sam2c_model_free(m); return; }
    static s2_image ims[12];
    REQUIRE(load_clip(s2t_fx("micro/video/frames"), 12, ims) == 0);
    char path[1024];
    snprintf(path, sizeof path, "%s/micro_ffv1_back.mkv", s2t_tmpdir());
    s2_vwriter *wr = NULL;
    REQUIRE(s2_vwriter_open(path, "ffv1", "bgr0", ims[0].w, ims[0].h, 25, &wr) == 0);
    for (int i = 0; i < 12; i++) REQUIRE(s2_vwriter_add(wr, ims[i].px) == 0);
    REQUIRE(s2_vwriter_finish(wr) == 0);
    s2_vwriter_free(wr);
    sam2c_video *a = session(m, 0, 0), *b = session(m, 0, 0);
    REQUIRE(a && b && sam2c_video_open(a, s2t_fx("micro/video/frames")) == 0 && sam2c_video_open(b, path) == 0);
    const size_t S = (size_t)sam2c_model_image_size(m);
    const int order[16] = {11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 5, 11, 0, 7};
    int bad = 0;
    for (int i = 0; i < 16; i++) {
        const uint8_t *y = s2_video_frame_rgb(s2_video_api_inner(b), order[i]);
        uint8_t *copy = y ? malloc(S * S * 3) : NULL;
        if (copy) memcpy(copy, y, S * S * 3);
        const uint8_t *x = s2_video_frame_rgb(s2_video_api_inner(a), order[i]);
        bad += !x || !copy || memcmp(x, copy, S * S * 3) != 0;
        free(copy);
    }
    CHECK_EQ_INT(bad, 0);
    int held = 0;
    sam2c_video_resident(b, &held, NULL, NULL);
    CHECK(held >= 1 && held <= 8);
    sam2c_video_free(a);
    sam2c_video_free(b);
    // a lossy clip with a key frame every 12 frames (seek to the key frame, decode on)
    snprintf(path, sizeof path, "%s/micro_gop12.mp4", s2t_tmpdir());
    REQUIRE(s2_vwriter_open(path, NULL, NULL, ims[0].w, ims[0].h, 25, &wr) == 0);
    for (int i = 0; i < 36; i++) REQUIRE(s2_vwriter_add(wr, ims[i % 12].px) == 0);
    REQUIRE(s2_vwriter_finish(wr) == 0);
    s2_vwriter_free(wr);
    CHECK_EQ_INT(gop_clip_mismatches(m, path, 36), 0);
    for (int i = 0; i < 12; i++) s2_image_free(&ims[i]);
    sam2c_model_free(m);
}
