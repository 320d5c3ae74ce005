/* `sam2c track`, the public video API and video files.
 *
 *  - replay of fixtures/micro/video/script.json through the built command: the PNG masks
 *    of the final step against the official video_mask tensors (IoU >= 0.98 per
 *    object-frame, two empty masks count as 1) and scores.json against the official
 *    object_score_logits (within 0.02), the --dump tensors against the PNGs / scores;
 *  - the --point / --box form on the real bedroom clip (first 8 frames) writes the SA-V
 *    layout;
 *  - video files: a lossless FFV1 / PNG video of bedroom frames 0..11 decodes to exactly
 *    the JPEG-decoded frames and gives the predictor exactly the same model-input frames;
 *    a YUV 4:4:4 and an H.264 round trip stay close; frame limit; not-a-video error;
 *  - errors: frame out of range, unknown object id, prompts before frames, an unreadable
 *    frame (named, or skipped), frames of different sizes, a file that is not a video;
 *    cancellation and early stop of a propagation;
 *  - --stream from a folder, raw RGB24 frames on stdin and an FFV1 container on stdin:
 *    bitwise the same masks and scores.json; a truncated raw frame, a prompt after the
 *    end of the stream, bad options. */
#include "harness.h"
#include "core/s2.h"
#include "io/image.h"
#include "io/json.h"
#include "io/tensorfile.h"
#include "io/video_decode.h"
#include "model/model.h"
#include "predict/video.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define IOU_MIN 0.98
#define SCORE_TOL 0.02

s2_video *s2_video_api_inner(sam2c_video *v); /* predict/video_api.c */

/* Output of the last command run (for messages). */
static char g_out[16384];

/* Runs the built sam2c with arguments; returns its exit status, output in g_out. */
static int run_track(const char *args) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "%s track -m %s --quiet %s", s2t_bin(), s2t_fx("micro/model.pt"), args);
    int rc = s2t_run(cmd, g_out, sizeof g_out);
    return rc;
}

/* "<tmp>/<name>" in a rotating buffer. */
static const char *tmp_path(const char *name) {
    static char buf[4][1024];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 1024, "%s/%s", s2t_tmpdir(), name);
    return b;
}

/* Copies a file (frames folders built by the tests). */
static bool copy_file(const char *from, const char *to) {
    uint8_t *d;
    size_t n;
    if (s2_read_file(from, &d, &n) < 0) return false;
    bool ok = s2_write_file_atomic(to, d, n) == 0;
    free(d);
    return ok;
}

/* A folder with copies of the micro clip's frames 0..n-1. */
static const char *micro_frames_copy(const char *name, int n) {
    const char *dir = tmp_path(name);
    mkdir(dir, 0755);
    for (int i = 0; i < n; i++) {
        char a[1024], b[1200];
        snprintf(a, sizeof a, "micro/video/frames/%05d.jpg", i);
        snprintf(b, sizeof b, "%s/%05d.jpg", dir, i);
        if (!copy_file(s2t_fx(a), b)) return NULL;
    }
    return dir;
}

/* IoU of a 0/255 PNG mask and a 0/1 reference; two empty masks: 1. */
static double mask_iou(const uint8_t *png, const uint8_t *ref, int64_t n) {
    int64_t inter = 0, uni = 0;
    for (int64_t i = 0; i < n; i++) {
        bool a = png[i] != 0, b = ref[i] != 0;
        inter += a && b;
        uni += a || b;
    }
    return uni ? (double)inter / (double)uni : 1.0;
}

/* ------------------------------------------------------------------ replay ---- */

/* Every object-frame of the script's last step against the written outputs. */
static void check_replay(const char *out, const s2_json *script, const s2_tensorfile *ref) {
    const s2_json *steps = s2_json_get(script, "steps");
    const s2_json *last = s2_json_at(steps, steps->n - 1);
    const s2_json *yields = s2_json_get(last, "yields");
    REQUIRE(yields && yields->n == 12);
    char path[2048];
    snprintf(path, sizeof path, "%s/scores.json", out);
    s2_json *scores = NULL;
    REQUIRE(s2_json_parse_file(path, NULL, &scores) == 0);
    snprintf(path, sizeof path, "%s/dump/s%02d.safetensors", out, steps->n);
    s2_tensorfile *dump = NULL;
    CHECK_MSG(s2_tensorfile_open(path, &dump) == 0, "%s", sam2c_last_error());
    double min_iou = 1, worst_score = 0;
    int compared = 0;
    for (int y = 0; y < yields->n; y++) {
        const s2_json *yi = s2_json_at(yields, y), *objs = s2_json_get(yi, "objects");
        int64_t fi;
        REQUIRE(s2_json_int(yi, "frame_idx", &fi) && objs);
        for (int k = 0; k < objs->n; k++) {
            const s2_json *tn = s2_json_get(&objs->items[k], "tensors");
            const s2_tf_entry *vm = s2_tensorfile_find(ref, s2_json_str(tn, "video_mask"));
            const s2_tf_entry *os = s2_tensorfile_find(ref, s2_json_str(tn, "object_score_logits"));
            REQUIRE(vm && os && vm->t.dtype == S2_U8 && vm->t.shape[0] == 270 && vm->t.shape[1] == 480);
            snprintf(path, sizeof path, "%s/%03d/%05d.png", out, atoi(objs->keys[k]), (int)fi);
            uint8_t *px = NULL;
            int w = 0, h = 0;
            CHECK_MSG(s2_png_load_gray(path, &px, &w, &h) == 0, "%s", sam2c_last_error());
            if (!px) continue;
            CHECK(w == 480 && h == 270);
            double iou = mask_iou(px, vm->t.data, 480 * 270);
            CHECK_MSG(iou >= IOU_MIN, "frame %d object %s: IoU %.4f", (int)fi, objs->keys[k], iou);
            min_iou = iou < min_iou ? iou : min_iou;
            char fk[16];
            snprintf(fk, sizeof fk, "%05d", (int)fi);
            double sc = NAN;
            CHECK(s2_json_num(s2_json_get(scores, fk), objs->keys[k], &sc));
            double d = fabs(sc - ((const float *)os->t.data)[0]);
            CHECK_MSG(d <= SCORE_TOL, "frame %d object %s: score %.5f vs %.5f", (int)fi, objs->keys[k], sc,
                      ((const float *)os->t.data)[0]);
            worst_score = d > worst_score ? d : worst_score;
            if (dump) { // the dump holds the same mask (0/1) and score under the fixture names
                char nm[96];
                snprintf(nm, sizeof nm, "s%02d.f%02d.o%s.video_mask", steps->n, (int)fi, objs->keys[k]);
                const s2_tf_entry *dm = s2_tensorfile_find(dump, nm);
                CHECK_MSG(dm && dm->t.dtype == S2_U8 && s2_tensor_numel(&dm->t) == 480 * 270, "dump %s", nm);
                for (int64_t i = 0; dm && i < 480 * 270; i++)
                    if (((const uint8_t *)dm->t.data)[i] * 255 != px[i]) { CHECK_MSG(0, "dump %s differs at %lld", nm, (long long)i); break; }
                snprintf(nm, sizeof nm, "s%02d.f%02d.o%s.object_score_logits", steps->n, (int)fi, objs->keys[k]);
                const s2_tf_entry *ds = s2_tensorfile_find(dump, nm);
                CHECK_MSG(ds && ds->t.dtype == S2_F32 && ((const float *)ds->t.data)[0] == (float)sc, "dump %s", nm);
            }
            free(px);
            compared++;
        }
    }
    CHECK_EQ_INT(compared, 48);
    printf("    replay: %d object-frames, min IoU %.5f, worst |d score| %.5f\n", compared, min_iou, worst_score);
    s2_tensorfile_free(dump);
    s2_json_free(scores);
}

TEST(track_replays_fixture_script) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    const char *out = tmp_path("replay");
    char args[4096];
    snprintf(args, sizeof args, "--prompts %s -o %s --dump %s/dump --overlay", s2t_fx("micro/video/script.json"), out, out);
    double t0 = s2_now_s();
    int rc = run_track(args);
    double dt = s2_now_s() - t0;
    REQUIRE(rc == 0 || (printf("%s\n", g_out), 0));
    printf("    replay of 8 steps (12 frames, 3 propagations) in %.1f s\n", dt);
    s2_json *script = NULL;
    s2_tensorfile *ref = NULL;
    REQUIRE(s2_json_parse_file(s2t_fx("micro/video/script.json"), NULL, &script) == 0);
    REQUIRE(s2_tensorfile_open(s2t_fx("micro/video/outputs.safetensors"), &ref) == 0);
    check_replay(out, script, ref);
    for (int f = 0; f < 12; f++) { // overlay: one RGB frame of the video size per frame
        char p[1200];
        snprintf(p, sizeof p, "%s/overlay/%05d.png", out, f);
        s2_image im = {0};
        CHECK_MSG(s2_image_load(p, NULL, &im) == 0 && im.w == 480 && im.h == 270, "%s", p);
        s2_image_free(&im);
    }
    s2_tensorfile_free(ref);
    s2_json_free(script);
}

/* ------------------------------------------------------------------ simple form ---- */

TEST(track_points_on_bedroom_writes_sav_layout) {
    if (!s2t_data()) { s2t_skip("sample data missing"); return; }
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    const char *out = tmp_path("bedroom");
    char args[4096];
    snprintf(args, sizeof args, "--video %s --max-frames 8 --obj 1 --point 0,210,350 --obj 2 --box 0,300,10,524,400 -o %s%s%s",
             s2t_dat("videos/bedroom"), out, s2_vdec_available() ? " --overlay-video " : "",
             s2_vdec_available() ? tmp_path("bedroom_overlay.mp4") : "");
    int rc = run_track(args);
    REQUIRE(rc == 0 || (printf("%s\n", g_out), 0));
    s2_json *scores = NULL;
    char p[1200];
    snprintf(p, sizeof p, "%s/scores.json", out);
    REQUIRE(s2_json_parse_file(p, NULL, &scores) == 0);
    CHECK_EQ_INT(scores->n, 8);
    int64_t fg2 = 0;
    for (int obj = 1; obj <= 2; obj++)
        for (int f = 0; f < 9; f++) {
            snprintf(p, sizeof p, "%s/%03d/%05d.png", out, obj, f);
            struct stat st;
            if (f == 8) { CHECK_MSG(stat(p, &st) != 0, "%s beyond --max-frames", p); continue; }
            uint8_t *px = NULL;
            int w = 0, h = 0;
            CHECK_MSG(s2_png_load_gray(p, &px, &w, &h) == 0 && w == 960 && h == 540, "%s", p);
            for (int64_t i = 0; px && i < (int64_t)w * h; i++) {
                CHECK(px[i] == 0 || px[i] == 255);
                if (px[i] != 0 && px[i] != 255) break;
                fg2 += obj == 2 && px[i];
            }
            free(px);
            char fk[16], ok[8];
            snprintf(fk, sizeof fk, "%05d", f);
            snprintf(ok, sizeof ok, "%d", obj);
            double sc;
            CHECK(s2_json_num(s2_json_get(scores, fk), ok, &sc) && isfinite(sc));
        }
    CHECK_MSG(fg2 > 8 * 10000, "object 2 (box) tracked with %lld pixels over 8 frames", (long long)fg2);
    CHECK(strstr(g_out, "2 object(s) over 8 frame(s)") != NULL);
    s2_json_free(scores);
    s2_vreader *r = NULL; // the overlay video: 8 frames of the clip's size
    if (s2_vdec_available() && s2_vreader_open(tmp_path("bedroom_overlay.mp4"), &r) == 0) {
        int w, h, n = 0;
        const uint8_t *rgb;
        s2_vreader_info(r, &w, &h, NULL);
        while (s2_vreader_next(r, &rgb, NULL) == 1) n++;
        CHECK(w == 960 && h == 540 && n == 8);
        s2_vreader_free(r);
    } else {
        CHECK_MSG(!s2_vdec_available(), "overlay video: %s", sam2c_last_error());
    }
}

/* ------------------------------------------------------------------ video files ---- */

/* The first n frames of a folder, decoded as the predictor decodes them. */
static int load_frames(const char *dir, int n, s2_image *ims) {
    s2_image_opts o;
    s2_image_opts_default(&o);
    o.apply_exif = false;
    for (int i = 0; i < n; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%05d.jpg", dir, i);
        S2_CHECK(s2_image_load(p, &o, &ims[i]));
    }
    return 0;
}

/* Encodes frames into a video file. */
static int write_video(const char *path, const char *codec, const char *pix, const s2_image *ims, int n) {
    s2_vwriter *w = NULL;
    S2_CHECK(s2_vwriter_open(path, codec, pix, ims[0].w, ims[0].h, 24, &w));
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) rc = s2_vwriter_add(w, ims[i].px);
    if (rc == 0) rc = s2_vwriter_finish(w);
    s2_vwriter_free(w);
    return rc;
}

/* Decodes a video and compares it with the source frames: max and mean |d|. */
static int compare_video(const char *path, const s2_image *ims, int n, int *max_d, double *mean_d) {
    s2_vreader *r = NULL;
    S2_CHECK(s2_vreader_open(path, &r));
    int k = 0, rc = 0, idx;
    const uint8_t *rgb;
    double sum = 0;
    *max_d = 0;
    while (rc == 0 && (rc = s2_vreader_next(r, &rgb, &idx)) == 1) {
        CHECK_EQ_INT(idx, k);
        if (k >= n) { rc = s2_err(SAM2C_ERR_FORMAT, "too many frames"); break; }
        for (int64_t i = 0; i < (int64_t)ims[k].w * ims[k].h * 3; i++) {
            int d = abs((int)rgb[i] - (int)ims[k].px[i]);
            *max_d = d > *max_d ? d : *max_d;
            sum += d;
        }
        k++;
        rc = 0;
    }
    s2_vreader_free(r);
    if (rc < 0) return rc;
    *mean_d = sum / ((double)n * ims[0].w * ims[0].h * 3);
    return k;
}

TEST(video_files_decode_exactly) {
    if (!s2t_data()) { s2t_skip("sample data missing"); return; }
    if (!s2_vdec_available()) { s2t_skip("built without FFmpeg"); return; }
    s2_image ims[12] = {{0}};
    REQUIRE(load_frames(s2t_dat("videos/bedroom"), 12, ims) == 0);
    REQUIRE(ims[0].w == 960 && ims[0].h == 540);
    static const struct { const char *file, *codec, *pix; int max_d; double mean_d; } cases[] = {
        {"bedroom_ffv1.mkv", "ffv1", "bgr0", 0, 0.0},      // lossless RGB
        {"bedroom_png.avi", "png", "rgb24", 0, 0.0},       // lossless RGB, another container
        {"bedroom_444.mkv", "ffv1", "yuv444p", 2, 0.40},   // lossless YUV: RGB->YUV->RGB rounding only
        {"bedroom_h264.mp4", NULL, NULL, 255, 2.0},        // lossy 4:2:0 (libx264 or mpeg4)
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *p = tmp_path(cases[c].file);
        int rc = write_video(p, cases[c].codec, cases[c].pix, ims, 12);
        CHECK_MSG(rc == 0, "%s: %s", cases[c].file, sam2c_last_error());
        if (rc) continue;
        int max_d = -1;
        double mean_d = -1;
        int n = compare_video(p, ims, 12, &max_d, &mean_d);
        CHECK_MSG(n == 12, "%s: %d frames (%s)", cases[c].file, n, n < 0 ? sam2c_last_error() : "");
        CHECK_MSG(max_d <= cases[c].max_d && mean_d <= cases[c].mean_d, "%s: max |d| %d mean %.3f", cases[c].file, max_d, mean_d);
        printf("    %-18s max |d| %3d  mean |d| %.4f\n", cases[c].file, max_d, mean_d);
    }
    // a damaged frame in the middle (bytes of frame 5 of the PNG-in-AVI overwritten): named,
    // or left out with skip_bad_frames
    const char *avi = tmp_path("bedroom_png.avi"), *bad = tmp_path("bedroom_bad.avi");
    uint8_t *d = NULL;
    size_t n = 0;
    if (s2_read_file(avi, &d, &n) == 0) {
        // 1000 bytes inside one IDAT chunk of frame 5 (chunk lengths intact, so FFmpeg's
        // PNG parser still splits the frames; the zlib data is broken)
        size_t at = n * 5 / 12 + n / 48;
        while (at + 1200 < n && memcmp(d + at, "IDAT", 4)) at++;
        for (size_t i = at + 104; i < at + 1104 && i < n; i++) d[i] = (uint8_t)(i * 7919u >> 3);
        CHECK(s2_write_file_atomic(bad, d, n) == 0);
        free(d);
        sam2c_model *m = NULL;
        sam2c_video *v = NULL;
        sam2c_video_params vp = sam2c_video_default_params();
        if (s2t_fixtures() && sam2c_model_load(s2t_fx("micro/model.pt"), NULL, &m) == 0 && sam2c_video_create(m, &vp, &v) == 0) {
            CHECK_EQ_INT(sam2c_video_open(v, bad), SAM2C_ERR_FORMAT);
            CHECK_MSG(strstr(sam2c_last_error(), "bedroom_bad.avi: frame 5"), "%s", sam2c_last_error());
            sam2c_video_free(v);
            vp.skip_bad_frames = 1;
            REQUIRE(sam2c_video_create(m, &vp, &v) == 0);
            CHECK_MSG(sam2c_video_open(v, bad) == 0, "%s", sam2c_last_error());
            CHECK_EQ_INT(sam2c_video_num_frames(v), 11);
            CHECK(sam2c_video_skipped(v, 0) && !strncmp(sam2c_video_skipped(v, 0), "00005: ", 7));
            CHECK(sam2c_video_frame_name(v, 5) && !strcmp(sam2c_video_frame_name(v, 5), "00006"));
            sam2c_video_free(v);
        }
        sam2c_model_free(m);
    }
    for (int i = 0; i < 12; i++) s2_image_free(&ims[i]);
}

TEST(video_file_gives_predictor_the_jpeg_frames) {
    if (!s2t_data()) { s2t_skip("sample data missing"); return; }
    if (!s2t_fixtures() || !s2_vdec_available()) { s2t_skip("fixtures or FFmpeg missing"); return; }
    s2_image ims[12] = {{0}};
    REQUIRE(load_frames(s2t_fx("micro/video/frames"), 12, ims) == 0);
    const char *p = tmp_path("micro_ffv1.mkv");
    REQUIRE(write_video(p, "ffv1", "bgr0", ims, 12) == 0);
    sam2c_model *m = NULL;
    REQUIRE(sam2c_model_load(s2t_fx("micro/model.pt"), NULL, &m) == 0);
    sam2c_video *a = NULL, *b = NULL;
    REQUIRE(sam2c_video_create(m, NULL, &a) == 0 && sam2c_video_create(m, NULL, &b) == 0);
    CHECK(sam2c_video_open(a, s2t_fx("micro/video/frames")) == 0);
    CHECK_MSG(sam2c_video_open(b, p) == 0, "%s", sam2c_last_error());
    CHECK_EQ_INT(sam2c_video_num_frames(b), 12);
    int w, h;
    sam2c_video_size(b, &w, &h);
    CHECK(w == 480 && h == 270);
    const int S = sam2c_model_image_size(m);
    for (int f = 0; f < 12 && sam2c_video_num_frames(b) == 12; f++) {
        const uint8_t *x = s2_video_frame_rgb(s2_video_api_inner(a), f), *y = s2_video_frame_rgb(s2_video_api_inner(b), f);
        CHECK_MSG(x && y && memcmp(x, y, (size_t)S * S * 3) == 0, "frame %d: model input differs", f);
        CHECK(!strcmp(sam2c_video_frame_name(b, f), sam2c_video_frame_name(a, f)));
    }
    // the official resized frames: the JPEG path is exact, so is the video path
    s2_tensorfile *inp = NULL;
    REQUIRE(s2_tensorfile_open(s2t_fx("micro/video/inputs.safetensors"), &inp) == 0);
    const s2_tf_entry *e = s2_tensorfile_find(inp, "frames.resized_u8");
    REQUIRE(e && s2_tensor_numel(&e->t) == 12LL * S * S * 3);
    for (int f = 0; f < 12; f++)
        CHECK_MSG(!memcmp(s2_video_frame_rgb(s2_video_api_inner(b), f), (uint8_t *)e->t.data + (size_t)f * S * S * 3, (size_t)S * S * 3),
                  "frame %d differs from frames.resized_u8", f);
    // frame limit
    sam2c_video_params vp = sam2c_video_default_params();
    vp.max_frames = 5;
    sam2c_video *c = NULL;
    REQUIRE(sam2c_video_create(m, &vp, &c) == 0);
    CHECK(sam2c_video_open(c, p) == 0 && sam2c_video_num_frames(c) == 5);
    CHECK(sam2c_video_frame_name(c, 4) && !strcmp(sam2c_video_frame_name(c, 4), "00004") && !sam2c_video_frame_name(c, 5));
    CHECK(sam2c_video_open(c, s2t_fx("micro/video/frames")) == 0 && sam2c_video_num_frames(c) == 5);
    // not a video: one clear error
    const char *txt = tmp_path("notavideo.mp4");
    s2_write_file_atomic(txt, "this is plain text, not a video\n", 32);
    CHECK_EQ_INT(sam2c_video_open(c, txt), SAM2C_ERR_FORMAT);
    CHECK_MSG(strstr(sam2c_last_error(), "not a video") && strstr(sam2c_last_error(), "notavideo.mp4"), "%s", sam2c_last_error());
    CHECK_EQ_INT(sam2c_video_open(c, s2t_fx("micro/video/frames/00000.jpg")), SAM2C_ERR_FORMAT);
    CHECK_MSG(strstr(sam2c_last_error(), "not a video"), "%s", sam2c_last_error());
    s2_tensorfile_free(inp);
    sam2c_video_free(a);
    sam2c_video_free(b);
    sam2c_video_free(c);
    sam2c_model_free(m);
    for (int i = 0; i < 12; i++) s2_image_free(&ims[i]);
}

/* ------------------------------------------------------------------ API ---- */

/* Callback state of the propagation tests. */
typedef struct cb_state { int frames, stop_after, cancel_after, last_frame; float score; } cb_state;
/* Frame callback: counts frames, stops (returns 1) after `stop_after`. */
static int count_frame(void *user, const sam2c_video_frame *f) {
    cb_state *s = user;
    s->frames++;
    s->last_frame = f->frame_idx;
    s->score = f->n_obj ? f->object_scores[0] : NAN;
    return s->stop_after && s->frames >= s->stop_after ? 1 : 0;
}
/* Progress callback: cancels once `cancel_after` frames are done. */
static int cancel_progress(void *user, int done, int total) {
    cb_state *s = user;
    (void)total;
    return s->cancel_after && done >= s->cancel_after;
}

TEST(video_api_states_and_cancel) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    sam2c_model *m = NULL;
    REQUIRE(sam2c_model_load(s2t_fx("micro/model.pt"), NULL, &m) == 0);
    CHECK_EQ_INT(sam2c_video_default_params().corrections_as_cond, 1);
    cb_state st = {0};
    sam2c_video_params vp = sam2c_video_default_params();
    vp.max_frames = 3;
    vp.progress = cancel_progress;
    vp.progress_user = &st;
    sam2c_video *v = NULL;
    REQUIRE(sam2c_video_create(m, &vp, &v) == 0);
    const float pt[2] = {105, 175}, box[4] = {150, 5, 262, 200};
    const int32_t lab[1] = {1};
    uint8_t mask[4] = {1, 0, 0, 1};
    // prompts before any frame is loaded
    CHECK_EQ_INT(sam2c_video_add_points(v, 0, 1, 1, pt, lab, NULL, 0, NULL), SAM2C_ERR_STATE);
    CHECK_MSG(strstr(sam2c_last_error(), "no frames loaded"), "%s", sam2c_last_error());
    CHECK_EQ_INT(sam2c_video_add_mask(v, 0, 1, mask, 2, 2, NULL), SAM2C_ERR_STATE);
    CHECK_EQ_INT(sam2c_video_propagate(v, -1, -1, 0, NULL, NULL), SAM2C_ERR_STATE);
    CHECK_EQ_INT(sam2c_video_clear_prompts(v, 0, 1, NULL), SAM2C_ERR_STATE);
    REQUIRE(sam2c_video_open(v, s2t_fx("micro/video/frames")) == 0);
    CHECK_EQ_INT(sam2c_video_num_frames(v), 3);
    // out of range, unknown objects
    CHECK_EQ_INT(sam2c_video_add_points(v, 3, 1, 1, pt, lab, NULL, 0, NULL), SAM2C_ERR_ARG);
    CHECK_MSG(strstr(sam2c_last_error(), "frame 3 outside [0, 3)"), "%s", sam2c_last_error());
    CHECK_EQ_INT(sam2c_video_clear_prompts(v, 0, 9, NULL), SAM2C_ERR_ARG);
    CHECK_MSG(strstr(sam2c_last_error(), "unknown object id 9"), "%s", sam2c_last_error());
    CHECK_EQ_INT(sam2c_video_remove_object(v, 9, 1), SAM2C_ERR_ARG);
    CHECK_EQ_INT(sam2c_video_remove_object(v, 9, 0), 0);
    CHECK_EQ_INT(sam2c_video_propagate(v, -1, -1, 0, NULL, NULL), SAM2C_ERR_STATE);
    // the fixture's step 2 (a box): frame 0 output with the official score
    sam2c_video_frame f;
    REQUIRE(sam2c_video_add_points(v, 0, 2, 0, NULL, NULL, box, 0, &f) == 0);
    CHECK(f.n_obj == 1 && f.obj_ids[0] == 2 && f.width == 480 && f.height == 270 && !strcmp(f.frame_name, "00000"));
    CHECK_NEAR(f.object_scores[0], 0.34063878655433655, 1e-4);
    int ids[4];
    CHECK(sam2c_video_objects(v, ids, 4) == 1 && ids[0] == 2);
    // cancel from the progress callback after the first frame
    st.cancel_after = 1;
    CHECK_EQ_INT(sam2c_video_propagate(v, -1, -1, 0, count_frame, &st), SAM2C_ERR_CANCELLED);
    CHECK_EQ_INT(st.frames, 1);
    // early stop from the frame callback; a frame limit
    st = (cb_state){.stop_after = 1};
    CHECK_EQ_INT(sam2c_video_propagate(v, -1, -1, 0, count_frame, &st), 0);
    CHECK_EQ_INT(st.frames, 1);
    CHECK_NEAR(st.score, 0.34063878655433655, 1e-4);
    st = (cb_state){0};
    CHECK_EQ_INT(sam2c_video_propagate(v, 0, 1, 0, count_frame, &st), 0);
    CHECK(st.frames == 2 && st.last_frame == 1);
    // cancel from another thread's flag, before the call: stops at the first frame
    sam2c_video_cancel(v);
    st = (cb_state){0};
    CHECK_EQ_INT(sam2c_video_propagate(v, 0, -1, 0, count_frame, &st), SAM2C_ERR_CANCELLED);
    CHECK_EQ_INT(st.frames, 1);
    sam2c_video_free(v);
    sam2c_model_free(m);
}

TEST(video_open_bad_frames) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    sam2c_model *m = NULL;
    REQUIRE(sam2c_model_load(s2t_fx("micro/model.pt"), NULL, &m) == 0);
    const char *dir = micro_frames_copy("badframe", 5);
    REQUIRE(dir);
    char p[1200];
    snprintf(p, sizeof p, "%s/00002.jpg", dir);
    REQUIRE(s2_write_file_atomic(p, "\xff\xd8\xff garbage", 12) == 0);
    sam2c_video_params vp = sam2c_video_default_params();
    sam2c_video *v = NULL;
    REQUIRE(sam2c_video_create(m, &vp, &v) == 0);
    CHECK(sam2c_video_open(v, dir) < 0);
    CHECK_MSG(strstr(sam2c_last_error(), "00002.jpg"), "%s", sam2c_last_error());
    sam2c_video_free(v);
    vp.skip_bad_frames = 1;
    vp.max_frames = 3;
    REQUIRE(sam2c_video_create(m, &vp, &v) == 0);
    CHECK_MSG(sam2c_video_open(v, dir) == 0, "%s", sam2c_last_error());
    CHECK_EQ_INT(sam2c_video_num_frames(v), 3);
    CHECK(sam2c_video_frame_name(v, 2) && !strcmp(sam2c_video_frame_name(v, 2), "00003"));
    CHECK(sam2c_video_skipped(v, 0) && !strncmp(sam2c_video_skipped(v, 0), "00002.jpg: ", 11) && !sam2c_video_skipped(v, 1));
    sam2c_video_free(v);
    sam2c_model_free(m);
}

/* ------------------------------------------------------------------ CLI errors ---- */

/* The command fails (exit 1) with `needle` in its message. */
static void expect_fail(const char *args, const char *needle) {
    int rc = run_track(args);
    CHECK_MSG(rc != 0 && strstr(g_out, needle), "track %s: exit %d, expected '%s' in: %s", args, rc, needle, g_out);
}

TEST(track_errors) {
    if (!s2t_data()) { s2t_skip("sample data missing"); return; }
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    const char *frames = s2t_fx("micro/video/frames");
    char a[8192];
    snprintf(a, sizeof a, "--video %s --point 99,10,10 -o %s", frames, tmp_path("e1"));
    expect_fail(a, "frame 99 outside [0, 12)");
    const char *script = tmp_path("unknown_obj.json");
    const char *js = "{\"steps\": [{\"op\": \"clear_all_prompts_in_frame\", \"args\": {\"frame_idx\": 0, \"obj_id\": 7}}]}";
    REQUIRE(s2_write_file_atomic(script, js, strlen(js)) == 0);
    snprintf(a, sizeof a, "--video %s --prompts %s -o %s", frames, script, tmp_path("e2"));
    expect_fail(a, "step 1 (clear_all_prompts_in_frame): clear prompts: unknown object id 7");
    const char *script2 = tmp_path("bad_op.json");
    js = "{\"steps\": [{\"op\": \"remove_object\", \"args\": {\"obj_id\": 3, \"strict\": true}}]}";
    REQUIRE(s2_write_file_atomic(script2, js, strlen(js)) == 0);
    snprintf(a, sizeof a, "--video %s --prompts %s -o %s", frames, script2, tmp_path("e3"));
    expect_fail(a, "unknown object id 3");
    // an unreadable frame in the middle: named, or skipped
    const char *bad = micro_frames_copy("cli_bad", 4);
    REQUIRE(bad);
    char p[1200];
    snprintf(p, sizeof p, "%s/00001.jpg", bad);
    REQUIRE(s2_write_file_atomic(p, "not a jpeg at all", 17) == 0);
    snprintf(a, sizeof a, "--video %s --point 0,105,175 -o %s", bad, tmp_path("e4"));
    expect_fail(a, "00001.jpg");
    snprintf(a, sizeof a, "--video %s --point 0,240,100 --max-frames 2 --skip-bad-frames -o %s", bad, tmp_path("e5"));
    int rc = run_track(a);
    CHECK_MSG(rc == 0 && strstr(g_out, "skipped frame 00001.jpg"), "exit %d: %s", rc, g_out);
    struct stat st;
    snprintf(p, sizeof p, "%s/001/00002.png", tmp_path("e5"));
    CHECK_MSG(stat(p, &st) == 0, "%s missing", p);
    snprintf(p, sizeof p, "%s/001/00001.png", tmp_path("e5"));
    CHECK_MSG(stat(p, &st) != 0, "%s written for a skipped frame", p);
    // frames of different sizes
    const char *mixed = micro_frames_copy("mixed", 3);
    REQUIRE(mixed);
    snprintf(p, sizeof p, "%s/00001.jpg", mixed);
    REQUIRE(copy_file(s2t_dat("videos/bedroom/00001.jpg"), p));
    snprintf(a, sizeof a, "--video %s --point 0,105,175 -o %s", mixed, tmp_path("e6"));
    expect_fail(a, "00001.jpg: frame is 960x540 but frame 00000.jpg is 480x270 (frames of different sizes)");
    // a file that is not a video
    const char *txt = tmp_path("clip.mp4");
    REQUIRE(s2_write_file_atomic(txt, "hello", 5) == 0);
    snprintf(a, sizeof a, "--video %s --point 0,1,1 -o %s", txt, tmp_path("e7"));
    expect_fail(a, s2_vdec_available() ? "not a video" : "without FFmpeg");
    // usage mistakes
    snprintf(a, sizeof a, "--video %s --point 0,1,1 --obj 2 -o %s", frames, tmp_path("e8"));
    expect_fail(a, "--obj 2 is not followed by a --point or --box");
    snprintf(a, sizeof a, "--video %s -o %s", frames, tmp_path("e9"));
    expect_fail(a, "no prompt");
}

/* ------------------------------------------------------------------ --stream ---- */

/* True when two files have the same bytes. */
static bool same_file(const char *a, const char *b) {
    uint8_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    bool same = s2_read_file(a, &x, &nx) == 0 && s2_read_file(b, &y, &ny) == 0 && nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

/* Frames whose masks (object 1) and scores.json differ between two output folders. */
static int diff_outputs(const char *a, const char *b, int n) {
    int bad = 0;
    char pa[1200], pb[1200];
    for (int f = 0; f < n; f++) {
        snprintf(pa, sizeof pa, "%s/001/%05d.png", a, f);
        snprintf(pb, sizeof pb, "%s/001/%05d.png", b, f);
        bad += !same_file(pa, pb);
    }
    snprintf(pa, sizeof pa, "%s/scores.json", a);
    snprintf(pb, sizeof pb, "%s/scores.json", b);
    return bad + !same_file(pa, pb);
}

/* --stream from a folder, from raw RGB24 frames and from a container on stdin: the same
 * masks and scores (the same pixels pushed), written frame by frame; errors. */
TEST(track_stream_stdin) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    s2_image ims[12] = {{0}};
    REQUIRE(load_frames(s2t_fx("micro/video/frames"), 12, ims) == 0);
    char raw[1024];
    snprintf(raw, sizeof raw, "%s", tmp_path("frames.rgb"));
    FILE *f = fopen(raw, "wb");
    REQUIRE(f);
    for (int i = 0; i < 12; i++) fwrite(ims[i].px, 1, (size_t)ims[i].w * ims[i].h * 3, f);
    fclose(f);
    char a[8192];
    char o1[1024], o2[1024];
    snprintf(o1, sizeof o1, "%s", tmp_path("st_dir"));
    snprintf(o2, sizeof o2, "%s", tmp_path("st_raw"));
    snprintf(a, sizeof a, "--stream --video %s --point 0,105,175 --point 3,130,200,0 --overlay -o %s", s2t_fx("micro/video/frames"), o1);
    int rc = run_track(a);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, g_out);
    snprintf(a, sizeof a, "--stream --video - --raw 480x270 --point 0,105,175 --point 3,130,200,0 -o %s < %s", o2, raw);
    rc = run_track(a);
    CHECK_MSG(rc == 0 && strstr(g_out, "over 12 frame(s)"), "exit %d: %s", rc, g_out);
    CHECK_EQ_INT(diff_outputs(o1, o2, 12), 0);
    char p[1200];
    snprintf(p, sizeof p, "%s/scores.json", o2);
    s2_json *sc = NULL;
    CHECK_MSG(s2_json_parse_file(p, NULL, &sc) == 0 && sc->n == 12, "%s", sam2c_last_error());
    s2_json_free(sc);
    struct stat st;
    snprintf(p, sizeof p, "%s/overlay/00011.png", o1);
    CHECK_MSG(stat(p, &st) == 0, "%s missing", p);
    if (s2_vdec_available()) { // a container on stdin (FFmpeg's pipe:0)
        const char *mkv = tmp_path("stdin_ffv1.mkv"), *o3 = tmp_path("st_mkv");
        REQUIRE(write_video(mkv, "ffv1", "bgr0", ims, 12) == 0);
        snprintf(a, sizeof a, "--stream --video - --point 0,105,175 --point 3,130,200,0 -o %s < %s", o3, mkv);
        rc = run_track(a);
        CHECK_MSG(rc == 0, "exit %d: %s", rc, g_out);
        CHECK_EQ_INT(diff_outputs(o1, o3, 12), 0);
    }
    // errors: a truncated raw frame, a prompt after the end, options
    const char *half = tmp_path("half.rgb");
    REQUIRE(s2_write_file_atomic(half, ims[0].px, 480 * 270 * 3 + 100) == 0);
    snprintf(a, sizeof a, "--stream --video %s --raw 480x270 --point 0,105,175 -o %s", half, tmp_path("st_e1"));
    expect_fail(a, "frame 1 is truncated (100 of 388800 bytes of a 480x270 RGB24 frame)");
    snprintf(a, sizeof a, "--stream --video - --raw 480x270 --point 40,105,175 -o %s < %s", tmp_path("st_e2"), raw);
    expect_fail(a, "prompt of object 1 on frame 40: the stream ended after 12 frames");
    snprintf(a, sizeof a, "--video %s --raw 480x270 --point 0,1,1 -o %s", raw, tmp_path("st_e3"));
    expect_fail(a, "--raw needs --stream");
    snprintf(a, sizeof a, "--stream --video - --raw 480by270 --point 0,1,1 -o %s", tmp_path("st_e4"));
    expect_fail(a, "bad --raw '480by270'");
    for (int i = 0; i < 12; i++) s2_image_free(&ims[i]);
}
