/* `sam2c eval` and `sam2c report` through the built command: video J&F against the
 * official SA-V evaluator's numbers (fixtures/eval/reference.json), image masks and COCO
 * AP on small generated cases with hand-derived results, bad inputs (one error line,
 * exit 1, no JSON left behind), run.json, and the HTML report (metric values, PNG data
 * URIs that decode). */
#include "harness.h"
#include "core/s2.h"
#include "eval/eval.h"
#include "io/image.h"
#include "io/json.h"
#include "io/rle.h"
#include "report/plot.h"
#include "report/run_info.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_out[65536]; /* output of the last command */

/* Runs `sam2c ARGS` (combined output in g_out); returns the exit status. */
static int sam2c(const char *args) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s", s2t_bin(), args);
    return s2t_run(cmd, g_out, sizeof g_out);
}

/* "<tmpdir>/<rel>" (rotating static buffers). */
static const char *tmp(const char *rel) {
    static char buf[8][1024];
    static int k;
    char *b = buf[k++ & 7];
    snprintf(b, 1024, "%s/%s", s2t_tmpdir(), rel);
    return b;
}

/* mkdir -p. */
static void mkdirs(const char *path) {
    char p[1024];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') { *s = 0; mkdir(p, 0755); *s = '/'; }
    mkdir(p, 0755);
}

/* Whether a path exists. */
static bool exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* A w x h 0/255 PNG with rows [r0, r1] filled (r0 > r1: empty). */
static void write_band(const char *path, int w, int h, int r0, int r1) {
    uint8_t *m = calloc((size_t)w * h, 1);
    for (int y = r0; y <= r1; y++)
        for (int x = 0; x < w; x++) m[y * w + x] = 255;
    CHECK(s2_png_write(path, m, w, h, 1) == 0);
    free(m);
}

/* Parses a JSON file (NULL + failed check when it does not parse). */
static s2_json *load_json(const char *path) {
    s2_json *j = NULL;
    if (s2_json_parse_file(path, NULL, &j) < 0) {
        CHECK_MSG(0, "%s: %s", path, sam2c_last_error());
        return NULL;
    }
    return j;
}

/* Bad input: exit 1, one line naming the command, and `absent` (may be NULL) not created. */
static void check_fails(const char *args, const char *absent, const char *needle) {
    int st = sam2c(args);
    CHECK_MSG(st == 1, "'%s': exit %d, want 1: %s", args, st, g_out);
    size_t len = strlen(g_out);
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += g_out[i] == '\n';
    CHECK_MSG(lines == 1 && g_out[len - 1] == '\n', "'%s': want one line, got: %s", args, g_out);
    CHECK_MSG(!strncmp(g_out, "sam2c ", 6), "'%s': %s", args, g_out);
    if (needle) CHECK_MSG(strstr(g_out, needle) != NULL, "'%s': no '%s' in: %s", args, needle, g_out);
    if (absent) CHECK_MSG(!exists(absent), "'%s' left %s behind", args, absent);
}

/* ==================================================================== video ==== */

static const char *k_sets[6] = {"dilate3", "erode2", "shift_r6_u4", "drop", "false_blob", "mixed"};

/* Global and per-object J&F, J, F of an eval JSON against reference.json (points). */
static double compare_video(const s2_json *got, const s2_json *ref, const char *set) {
    const s2_json *p = s2_json_get(s2_json_get(ref, "predictions"), set);
    const s2_json *gl = s2_json_get(p, "global"), *po = s2_json_get(p, "per_object");
    const s2_json *objs = s2_json_get(got, "objects");
    static const char *keys[3] = {"J&F", "J", "F"};
    double worst = 0, a, b;
    if (!gl || !po || !objs) {
        CHECK_MSG(0, "%s: reference or result incomplete", set);
        return 1e9;
    }
    for (int k = 0; k < 3; k++) {
        CHECK(s2_json_num(got, keys[k], &a) && s2_json_num(gl, keys[k], &b));
        CHECK_MSG(fabs(a - b) <= 0.01, "%s %s: %.6f vs reference %.6f", set, keys[k], a, b);
        worst = fmax(worst, fabs(a - b));
    }
    CHECK_EQ_INT(objs->n, po->n);
    for (int i = 0; i < objs->n; i++) {
        const s2_json *o = &objs->items[i], *r = s2_json_get(po, s2_json_str(o, "object"));
        CHECK_MSG(r != NULL, "%s: object %s not in the reference", set, s2_json_str(o, "object"));
        for (int k = 0; r && k < 3; k++) {
            CHECK(s2_json_num(o, keys[k], &a) && s2_json_num(r, keys[k], &b));
            CHECK_MSG(fabs(a - b) <= 0.01, "%s/%s %s: %.6f vs %.6f", set, s2_json_str(o, "object"), keys[k], a, b);
            worst = fmax(worst, fabs(a - b));
        }
    }
    return worst;
}

TEST(eval_video_reference) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    if (access(s2t_bin(), X_OK) != 0) { s2t_skip("sam2c binary not built"); return; }
    s2_json *ref = load_json(s2t_fx("eval/reference.json"));
    REQUIRE(ref);
    double worst = 0;
    for (int s = 0; s < 6; s++) {
        char args[4096], gt[1024], out[1024];
        snprintf(gt, sizeof gt, "%s", s2t_fx("eval/gt"));
        snprintf(out, sizeof out, "%s", tmp(k_sets[s]));
        strcat(out, ".json");
        snprintf(args, sizeof args, "eval video --gt '%s' --pred '%s/%s' --json '%s' --quiet", gt,
                 s2t_fx("eval/pred"), k_sets[s], out);
        int st = sam2c(args);
        CHECK_MSG(st == 0, "%s: exit %d: %s", k_sets[s], st, g_out);
        CHECK_MSG(strstr(g_out, "Global score") != NULL, "%s: no table: %s", k_sets[s], g_out);
        s2_json *got = load_json(out);
        if (!got) continue;
        CHECK(!strcmp(s2_json_str(got, "kind"), "video"));
        worst = fmax(worst, compare_video(got, ref, k_sets[s]));
        s2_json_free(got);
    }
    /* one video folder instead of the root: same numbers, layout recorded */
    char args[4096];
    snprintf(args, sizeof args, "eval video --gt '%s/sav_000001' --pred '%s/mixed/sav_000001' --json '%s' --quiet",
             s2t_fx("eval/gt"), s2t_fx("eval/pred"), tmp("one.json"));
    CHECK_MSG(sam2c(args) == 0, "one video: %s", g_out);
    s2_json *one = load_json(tmp("one.json"));
    if (one) {
        worst = fmax(worst, compare_video(one, ref, "mixed"));
        CHECK(!strcmp(s2_json_str(s2_json_get(one, "inputs"), "layout"), "video"));
        const s2_json *o0 = s2_json_at(s2_json_get(one, "objects"), 0);
        CHECK(s2_json_get(s2_json_get(o0, "per_frame"), "J") != NULL);
    }
    s2_json_free(one);
    printf("  eval video: 6 prediction sets, worst |J&F, J, F - reference| = %.2e points\n", worst);
    s2_json_free(ref);
}

/* ==================================================================== images ==== */

/* 5 x 5 masks (disk radius ceil(0.008 * 7.07) = 1) with bands of rows:
 *   a.png      gt rows 3-4, pred rows 2-4: IoU 10/15; boundaries 1 px apart -> F 1
 *   c.png      gt rows 3-4, no prediction: IoU 0, F 0 (missing)
 *   d.png      both empty: IoU 1, F 1
 *   e.png      gt rows 3-4, pred rows 1-4: IoU 10/20; boundaries 2 px apart -> F 0
 *   sub/b.png  identical rows 2-4: IoU 1, F 1
 *   pred x.png without ground truth: extra (ignored in the means) */
static void make_image_case(void) {
    mkdirs(tmp("img/gt/sub"));
    mkdirs(tmp("img/pred/sub"));
    mkdirs(tmp("img/images"));
    write_band(tmp("img/gt/a.png"), 5, 5, 3, 4);
    write_band(tmp("img/pred/a.png"), 5, 5, 2, 4);
    write_band(tmp("img/gt/c.png"), 5, 5, 3, 4);
    write_band(tmp("img/gt/d.png"), 5, 5, 1, 0);
    write_band(tmp("img/pred/d.png"), 5, 5, 1, 0);
    write_band(tmp("img/gt/e.png"), 5, 5, 3, 4);
    write_band(tmp("img/pred/e.png"), 5, 5, 1, 4);
    write_band(tmp("img/gt/sub/b.png"), 5, 5, 2, 4);
    write_band(tmp("img/pred/sub/b.png"), 5, 5, 2, 4);
    write_band(tmp("img/pred/x.png"), 5, 5, 0, 4);
    uint8_t rgb[75];
    for (int i = 0; i < 75; i++) rgb[i] = (uint8_t)(i * 3);
    CHECK(s2_png_write(tmp("img/images/a.png"), rgb, 5, 5, 3) == 0);
}

TEST(eval_images_folders) {
    if (access(s2t_bin(), X_OK) != 0) { s2t_skip("sam2c binary not built"); return; }
    make_image_case();
    char args[4096];
    snprintf(args, sizeof args, "eval images --gt '%s' --pred '%s' --json '%s'", tmp("img/gt"), tmp("img/pred"),
             tmp("img/eval.json"));
    int st = sam2c(args);
    CHECK_MSG(st == 0, "exit %d: %s", st, g_out);
    CHECK(strstr(g_out, "mean IoU (J)") && strstr(g_out, "0.6333"));
    s2_json *j = load_json(tmp("img/eval.json"));
    REQUIRE(j);
    double v;
    CHECK(!strcmp(s2_json_str(j, "kind"), "images"));
    CHECK(s2_json_num(j, "count", &v) && v == 5);
    CHECK(s2_json_num(j, "mean_iou", &v));
    CHECK_NEAR(v, (10.0 / 15 + 0 + 1 + 0.5 + 1) / 5, 1e-12);
    CHECK(s2_json_num(j, "mean_boundary_f", &v));
    CHECK_NEAR(v, 0.6, 1e-12);
    CHECK(s2_json_num(j, "overall_iou", &v));
    CHECK_NEAR(v, 35.0 / 60.0, 1e-12);
    CHECK(s2_json_num(j, "missing_predictions", &v) && v == 1);
    CHECK(s2_json_num(j, "extra_predictions", &v) && v == 1);
    static const char *names[5] = {"a.png", "c.png", "d.png", "e.png", "sub/b.png"};
    static const double iou[5] = {10.0 / 15, 0, 1, 0.5, 1}, f[5] = {1, 0, 1, 0, 1};
    const s2_json *items = s2_json_get(j, "items");
    REQUIRE(items && items->n == 5);
    for (int i = 0; i < 5; i++) {
        const s2_json *it = &items->items[i];
        CHECK_MSG(!strcmp(s2_json_str(it, "name"), names[i]), "item %d: %s", i, s2_json_str(it, "name"));
        CHECK(s2_json_num(it, "iou", &v));
        CHECK_NEAR(v, iou[i], 1e-12);
        CHECK(s2_json_num(it, "boundary_f", &v));
        CHECK_NEAR(v, f[i], 1e-12);
    }
    CHECK(!strcmp(s2_json_str(s2_json_get(j, "inputs"), "format"), "folders"));
    s2_json_free(j);
}

/* ==================================================================== COCO ==== */

/* {"size":[20,20],"counts":"..."} of a filled rectangle rows [r0, r1], cols [c0, c1]. */
static void rect_rle(char *out, size_t n, int r0, int r1, int c0, int c1) {
    uint8_t m[400] = {0};
    for (int y = r0; y <= r1; y++)
        for (int x = c0; x <= c1; x++) m[y * 20 + x] = 1;
    s2_rle r;
    char *s = NULL;
    if (s2_rle_encode(m, 20, 20, &r) == 0) s = s2_rle_to_string(&r);
    snprintf(out, n, "{\"size\":[20,20],\"counts\":\"%s\"}", s ? s : "");
    free(s);
    s2_rle_free(&r);
}

/* One 20 x 20 image, one category. GT: A rows/cols 2-5 (16 px), B rows/cols 10-14
 * (25 px). Detections: A exactly (0.9), rows/cols 10-13 inside B (IoU 16/25, 0.8), a
 * 3 x 3 false positive (0.7). */
static void make_coco_case(void) {
    char a[256], b[256], d2[256], d3[256], doc[4096];
    mkdirs(tmp("coco/images"));
    rect_rle(a, sizeof a, 2, 5, 2, 5);
    rect_rle(b, sizeof b, 10, 14, 10, 14);
    rect_rle(d2, sizeof d2, 10, 13, 10, 13);
    rect_rle(d3, sizeof d3, 2, 4, 14, 16);
    snprintf(doc, sizeof doc,
             "{\"images\":[{\"id\":1,\"width\":20,\"height\":20,\"file_name\":\"p.jpg\"}],"
             "\"categories\":[{\"id\":1,\"name\":\"thing\"}],\"annotations\":["
             "{\"id\":1,\"image_id\":1,\"category_id\":1,\"segmentation\":%s,\"area\":16,\"iscrowd\":0},"
             "{\"id\":2,\"image_id\":1,\"category_id\":1,\"segmentation\":%s,\"area\":25,\"iscrowd\":0}]}",
             a, b);
    CHECK(s2_write_file_atomic(tmp("coco/gt.json"), doc, strlen(doc)) == 0);
    snprintf(doc, sizeof doc,
             "[{\"image_id\":1,\"category_id\":1,\"segmentation\":%s,\"score\":0.9},"
             "{\"image_id\":1,\"category_id\":1,\"segmentation\":%s,\"score\":0.8},"
             "{\"image_id\":1,\"category_id\":1,\"segmentation\":%s,\"score\":0.7}]",
             a, d2, d3);
    CHECK(s2_write_file_atomic(tmp("coco/pred.json"), doc, strlen(doc)) == 0);
    uint8_t rgb[1200];
    for (int i = 0; i < 1200; i++) rgb[i] = (uint8_t)(i * 7);
    CHECK(s2_png_write(tmp("coco/images/p.png"), rgb, 20, 20, 3) == 0);
}

/* COCOeval by hand: at IoU thresholds .50/.55/.60 both GT are found (precision 1 at every
 * recall: AP 1, recall 1); at .65...95 only A (precision 1 up to recall .5: AP 51/101,
 * recall .5). AP = (3 + 7 * 51/101) / 10; all objects are small; AR1 sees one detection. */
TEST(eval_coco_hand) {
    if (access(s2t_bin(), X_OK) != 0) { s2t_skip("sam2c binary not built"); return; }
    make_coco_case();
    char args[4096];
    snprintf(args, sizeof args, "eval coco --gt '%s' --pred '%s' --json '%s' --quiet", tmp("coco/gt.json"),
             tmp("coco/pred.json"), tmp("coco/eval.json"));
    int st = sam2c(args);
    CHECK_MSG(st == 0, "exit %d: %s", st, g_out);
    CHECK(strstr(g_out, "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.653") != NULL);
    s2_json *j = load_json(tmp("coco/eval.json"));
    REQUIRE(j);
    const double ap = (3 + 7 * 51.0 / 101) / 10;
    const double want[12] = {ap, 1, 51.0 / 101, ap, -1, -1, 0.5, 0.65, 0.65, 0.65, -1, -1};
    const s2_json *stats = s2_json_get(j, "stats");
    REQUIRE(stats && stats->n == 12);
    for (int i = 0; i < 12; i++) CHECK_NEAR(stats->items[i].num, want[i], 1e-12);
    double v;
    CHECK(s2_json_num(j, "AP", &v));
    CHECK_NEAR(v, ap, 1e-12);
    CHECK(s2_json_num(j, "gt", &v) && v == 2);
    CHECK(s2_json_num(j, "dt", &v) && v == 3);
    s2_json_free(j);

    /* the same files as image-mask pairs: (A, det1) IoU 1, (B, det2) 16/25, det3 extra */
    snprintf(args, sizeof args, "eval images --gt '%s' --pred '%s' --json '%s' --quiet", tmp("coco/gt.json"),
             tmp("coco/pred.json"), tmp("coco/pairs.json"));
    st = sam2c(args);
    CHECK_MSG(st == 0, "exit %d: %s", st, g_out);
    j = load_json(tmp("coco/pairs.json"));
    REQUIRE(j);
    const s2_json *items = s2_json_get(j, "items");
    REQUIRE(items && items->n == 3);
    static const char *names[3] = {"1/1/0", "1/1/1", "1/1/2"};
    static const double iou[3] = {1, 0.64, 0};
    for (int i = 0; i < 3; i++) {
        CHECK(!strcmp(s2_json_str(&items->items[i], "name"), names[i]));
        CHECK(s2_json_num(&items->items[i], "iou", &v));
        CHECK_NEAR(v, iou[i], 1e-12);
    }
    CHECK(s2_json_num(&items->items[0], "boundary_f", &v) && v == 1);
    CHECK(s2_json_num(&items->items[2], "boundary_f", &v) && v == 0);
    CHECK(s2_json_num(j, "mean_iou", &v));
    CHECK_NEAR(v, 1.64 / 3, 1e-12);
    CHECK(s2_json_num(j, "overall_iou", &v));
    CHECK_NEAR(v, 32.0 / 50, 1e-12);
    CHECK(s2_json_num(j, "extra_predictions", &v) && v == 1);
    CHECK(!strcmp(s2_json_str(s2_json_get(j, "inputs"), "format"), "coco"));
    s2_json_free(j);
}

/* ================================================================ bad inputs ==== */

TEST(eval_bad_inputs) {
    if (access(s2t_bin(), X_OK) != 0) { s2t_skip("sam2c binary not built"); return; }
    make_image_case();
    mkdirs(tmp("bad"));
    char out[1024], a[4096];
    snprintf(out, sizeof out, "%s", tmp("bad/out.json"));
    check_fails("eval", NULL, "no kind given");
    check_fails("eval frames --gt a --pred b", NULL, "unknown kind");
    check_fails("eval images --pred x", NULL, "--gt");
    snprintf(a, sizeof a, "eval video --gt '%s' --pred '%s' --json '%s'", tmp("nope"), tmp("img/pred"), out);
    check_fails(a, out, "no such file or folder");
    CHECK(s2_write_file_atomic(tmp("bad/broken.json"), "{\"images\": [", 12) == 0);
    snprintf(a, sizeof a, "eval images --gt '%s' --pred '%s' --json '%s'", tmp("img/gt"), tmp("bad/broken.json"), out);
    check_fails(a, out, "both be folders");
    snprintf(a, sizeof a, "eval images --gt '%s' --pred '%s' --boundary 2", tmp("img/gt"), tmp("img/pred"));
    check_fails(a, NULL, "--boundary");
    snprintf(a, sizeof a, "eval images --gt '%s' --pred '%s' --strict", tmp("img/gt"), tmp("img/pred"));
    check_fails(a, NULL, "eval video");
    /* a prediction of another size */
    mkdirs(tmp("bad/pred"));
    write_band(tmp("bad/pred/a.png"), 6, 5, 0, 1);
    snprintf(a, sizeof a, "eval images --gt '%s' --pred '%s' --json '%s' --quiet", tmp("img/gt"), tmp("bad/pred"), out);
    check_fails(a, out, "a.png");
    /* broken COCO JSON */
    snprintf(a, sizeof a, "eval coco --gt '%s' --pred '%s' --json '%s' --quiet", tmp("bad/broken.json"),
             tmp("bad/broken.json"), out);
    check_fails(a, out, "broken.json");
    /* video: frames of another size, and a folder without videos */
    mkdirs(tmp("bad/vgt/v1/000"));
    mkdirs(tmp("bad/vpred/v1/000"));
    for (int f = 0; f < 3; f++) {
        char g[64], p[64];
        snprintf(g, sizeof g, "bad/vgt/v1/000/%05d.png", f);
        snprintf(p, sizeof p, "bad/vpred/v1/000/%05d.png", f);
        write_band(tmp(g), 8, 8, 2, 5);
        write_band(tmp(p), f == 1 ? 9 : 8, 8, 2, 5);
    }
    snprintf(a, sizeof a, "eval video --gt '%s' --pred '%s' --json '%s' --quiet", tmp("bad/vgt"), tmp("bad/vpred"), out);
    check_fails(a, out, "00001.png");
    snprintf(a, sizeof a, "eval video --gt '%s' --pred '%s' --json '%s' --quiet --layout root", tmp("bad/vgt/v1/000"),
             tmp("bad/vpred/v1/000"), out);
    check_fails(a, out, NULL);
    /* the JSON cannot be written: the table is printed, exit 1, nothing left */
    snprintf(a, sizeof a, "eval images --gt '%s' --pred '%s' --json '%s' --quiet", tmp("img/gt"), tmp("img/pred"),
             tmp("bad/no/such/dir/out.json"));
    CHECK(sam2c(a) == 1);
    CHECK(strstr(g_out, "sam2c eval: ") != NULL);
    CHECK(!exists(tmp("bad/no")));
}

/* ==================================================================== run.json ==== */

/* run.json of a made-up image run: 4 images in 10 s with 2 s of model loading. */
static void write_run(const char *dir) {
    char *argv[] = {"sam2c", "segment", "-m", "sam2.1_hiera_tiny.pt", "-o", "out dir"};
    s2_run_info ri;
    s2_run_info_init(&ri);
    ri.command = "segment";
    ri.model = "sam2.1_hiera_tiny";
    ri.model_path = "sam2.1_hiera_tiny.pt";
    ri.argc = 6;
    ri.argv = argv;
    ri.settings_json = "{\"multimask\":true,\"points_per_side\":32}";
    ri.total_s = 10;
    ri.model_load_s = 2;
    ri.n_images = 4;
    ri.threads = 3;
    CHECK(s2_run_info_write(dir, &ri) == 0);
}

TEST(run_info_json) {
    mkdirs(tmp("run"));
    write_run(tmp("run"));
    s2_json *j = load_json(tmp("run/run.json"));
    REQUIRE(j);
    double v;
    CHECK(!strcmp(s2_json_str(j, "sam2c_version"), SAM2C_VERSION));
    CHECK(!strcmp(s2_json_str(j, "command"), "segment"));
    CHECK(!strcmp(s2_json_str(s2_json_get(j, "model"), "name"), "sam2.1_hiera_tiny"));
    const s2_json *argv = s2_json_get(j, "argv");
    CHECK(argv && argv->n == 6 && !strcmp(argv->items[5].str, "out dir"));
    const s2_json *t = s2_json_get(j, "timings");
    CHECK(s2_json_num(t, "total_s", &v) && v == 10);
    CHECK(s2_json_num(t, "model_load_s", &v) && v == 2);
    CHECK(s2_json_num(t, "images", &v) && v == 4);
    CHECK(s2_json_num(t, "per_image_s", &v) && v == 2); /* (10 - 2) / 4 */
    CHECK(s2_json_get(t, "frames") == NULL);
    bool b;
    CHECK(s2_json_bool(s2_json_get(j, "settings"), "multimask", &b) && b);
    const s2_json *h = s2_json_get(j, "host");
    CHECK(s2_json_str(h, "cpu") && s2_json_str(h, "cpu")[0]);
    CHECK(s2_json_num(h, "threads", &v) && v == 3);
    CHECK(s2_json_num(h, "logical_cpus", &v) && v >= 1);
    s2_json_free(j);
    /* per-frame times are averaged as given */
    double fs[3] = {0.5, 1.0, 1.5};
    s2_run_info ri;
    s2_run_info_init(&ri);
    ri.command = "track";
    ri.total_s = 5;
    ri.n_frames = 3;
    ri.frame_s = fs;
    mkdirs(tmp("run2"));
    REQUIRE(s2_run_info_write(tmp("run2"), &ri) == 0);
    j = load_json(tmp("run2/run.json"));
    REQUIRE(j);
    t = s2_json_get(j, "timings");
    CHECK(s2_json_num(t, "per_frame_s", &v) && v == 1.0);
    CHECK(s2_json_get(t, "frame_s") && s2_json_get(t, "frame_s")->n == 3);
    s2_json_free(j);
    ri.settings_json = "[1]";
    CHECK(s2_run_info_write(tmp("run2"), &ri) < 0); /* settings must be an object */
}

/* ==================================================================== report ==== */

/* Tallest run of colour `rgb` in the columns [x0, x1) of a canvas. */
static int colour_height(const s2_canvas *c, int x0, int x1, uint32_t rgb) {
    int best = 0;
    for (int x = x0; x < x1; x++) {
        int n = 0;
        for (int y = 0; y < c->h; y++) {
            const uint8_t *p = c->px + ((size_t)y * c->w + x) * 3;
            n += p[0] == (rgb >> 16 & 255) && p[1] == (rgb >> 8 & 255) && p[2] == (rgb & 255);
        }
        best = best > n ? best : n;
    }
    return best;
}

/* Bar heights follow the counts: values 0.1, 0.1, 0.2, 0.9 in 2 bins -> 3 : 1; bars
 * scale to a y axis of 5 when counts are small. */
TEST(plot_histogram_counts) {
    const double v[4] = {0.1, 0.1, 0.2, 0.9};
    s2_hist_spec sp = {"t", "x", "n", 0, 1, 2, 1, 0x123456u};
    s2_canvas c;
    REQUIRE(s2_plot_histogram(v, 4, &sp, &c) == 0);
    int left = colour_height(&c, c.w / 4, c.w / 4 + 4, sp.color);       /* inside bin 0 */
    int right = colour_height(&c, 3 * c.w / 4, 3 * c.w / 4 + 4, sp.color); /* inside bin 1 */
    CHECK_MSG(right > 0 && abs(left - 3 * right) <= 2, "bar heights %d and %d, want 3 : 1", left, right);
    s2_canvas_free(&c);
    char *b = s2_base64((const uint8_t *)"sam2c!", 6);
    CHECK(b && !strcmp(b, "c2FtMmMh"));
    free(b);
    b = s2_base64((const uint8_t *)"ab", 2);
    CHECK(b && !strcmp(b, "YWI="));
    free(b);
}

/* Decodes standard base64 into out (cap bytes); returns the length or -1. */
static long b64_decode(const char *s, size_t n, uint8_t *out, size_t cap) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            const char *p = s[i + k] == '=' ? NULL : strchr(tab, s[i + k]);
            if (s[i + k] == '=') pad++;
            else if (!p || !s[i + k] || pad) return -1;
            v = v << 6 | (p ? (uint32_t)(p - tab) : 0);
        }
        for (int k = 0; k < 3 - pad; k++) {
            if (o == cap) return -1;
            out[o++] = (uint8_t)(v >> (16 - 8 * k));
        }
    }
    return (long)o;
}

/* Every "data:image/png;base64," URI of the page decodes to a PNG image; returns how many. */
static int check_data_uris(const char *html) {
    static const char pre[] = "data:image/png;base64,";
    int n = 0;
    size_t cap = 8 << 20;
    uint8_t *buf = malloc(cap);
    for (const char *p = strstr(html, pre); p && buf; p = strstr(p, pre)) {
        p += sizeof pre - 1;
        size_t len = strcspn(p, "\"");
        long m = b64_decode(p, len, buf, cap);
        s2_image im;
        s2_image_opts o;
        s2_image_opts_default(&o);
        bool ok = m > 8 && !memcmp(buf, "\x89PNG\r\n\x1a\n", 8) && s2_image_decode(buf, (size_t)m, "uri", &o, &im) == 0;
        CHECK_MSG(ok, "data URI %d is not a valid PNG", n);
        if (ok) { CHECK(im.w > 0 && im.h > 0); s2_image_free(&im); }
        n++;
    }
    free(buf);
    return n;
}

/* Text of a file (caller frees; NULL + failed check when unreadable). */
static char *slurp(const char *path) {
    uint8_t *d = NULL;
    size_t n = 0;
    if (s2_read_file(path, &d, &n) < 0) { CHECK_MSG(0, "%s: %s", path, sam2c_last_error()); return NULL; }
    char *s = realloc(d, n + 1);
    if (!s) { free(d); return NULL; }
    s[n] = 0;
    return s;
}

/* Whether the page holds every string of a NULL-terminated list (reports the missing). */
static void check_has(const char *html, const char *const *want) {
    for (int i = 0; want[i]; i++) CHECK_MSG(strstr(html, want[i]) != NULL, "report lacks '%s'", want[i]);
}

TEST(report_images_with_run) {
    if (access(s2t_bin(), X_OK) != 0) { s2t_skip("sam2c binary not built"); return; }
    make_image_case();
    mkdirs(tmp("run"));
    write_run(tmp("run"));
    char a[4096];
    snprintf(a, sizeof a, "eval images --gt '%s' --pred '%s' --json '%s' --quiet", tmp("img/gt"), tmp("img/pred"),
             tmp("img/eval.json"));
    REQUIRE(sam2c(a) == 0);
    snprintf(a, sizeof a, "report '%s' --run '%s' --images '%s' -o '%s'", tmp("img/eval.json"), tmp("run/run.json"),
             tmp("img/images"), tmp("img/report.html"));
    int st = sam2c(a);
    CHECK_MSG(st == 0, "exit %d: %s", st, g_out);
    char *html = slurp(tmp("img/report.html"));
    REQUIRE(html);
    static const char *want[] = {"<!DOCTYPE html>", "0.6333", "0.6000", "0.5833", "sam2.1_hiera_tiny",
                                 "2.00 s", "Time per image", "The 5 weakest masks", "sub/b.png",
                                 "no prediction", "'out dir'", "points_per_side", NULL};
    check_has(html, want);
    int n = check_data_uris(html);
    CHECK_MSG(n == 2 + 5, "%d figures: 2 histograms + 5 overlays expected", n);
    CHECK(strstr(html, "<script") == NULL && strstr(html, "http://") == NULL && strstr(html, "https://") == NULL);
    free(html);
    printf("  report (images): %d PNG figures\n", n);
}

TEST(report_coco_and_video) {
    if (access(s2t_bin(), X_OK) != 0) { s2t_skip("sam2c binary not built"); return; }
    make_coco_case();
    char a[4096];
    snprintf(a, sizeof a, "eval coco --gt '%s' --pred '%s' --json '%s' --quiet", tmp("coco/gt.json"),
             tmp("coco/pred.json"), tmp("coco/eval.json"));
    REQUIRE(sam2c(a) == 0);
    snprintf(a, sizeof a, "report '%s' -o '%s'", tmp("coco/eval.json"), tmp("coco/report.html"));
    CHECK_MSG(sam2c(a) == 0, "%s", g_out);
    char *html = slurp(tmp("coco/report.html"));
    REQUIRE(html);
    static const char *want[] = {"0.653", "0.505", "AP_small", "Timings are not available", NULL};
    check_has(html, want);
    CHECK(check_data_uris(html) == 1); /* the AP/AR bars (one category: no per-category chart) */
    free(html);
    /* COCO pairs with the picture under the overlays */
    snprintf(a, sizeof a, "eval images --gt '%s' --pred '%s' --json '%s' --quiet", tmp("coco/gt.json"),
             tmp("coco/pred.json"), tmp("coco/pairs.json"));
    REQUIRE(sam2c(a) == 0);
    snprintf(a, sizeof a, "report '%s' --images '%s' -o '%s'", tmp("coco/pairs.json"), tmp("coco/images"),
             tmp("coco/pairs.html"));
    CHECK_MSG(sam2c(a) == 0, "%s", g_out);
    html = slurp(tmp("coco/pairs.html"));
    REQUIRE(html);
    CHECK(strstr(html, "1/1/2") && strstr(html, "0.5467"));
    CHECK(check_data_uris(html) == 2 + 3);
    free(html);

    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    snprintf(a, sizeof a, "eval video --gt '%s/sav_000001' --pred '%s/mixed/sav_000001' --json '%s' --quiet",
             s2t_fx("eval/gt"), s2t_fx("eval/pred"), tmp("video.json"));
    REQUIRE(sam2c(a) == 0);
    snprintf(a, sizeof a, "report '%s' --worst 2 -o '%s'", tmp("video.json"), tmp("video.html"));
    CHECK_MSG(sam2c(a) == 0, "%s", g_out);
    html = slurp(tmp("video.html"));
    REQUIRE(html);
    static const char *wv[] = {"91.36", "86.14", "96.58", "The 2 weakest objects", "object 003", "worst frame", NULL};
    check_has(html, wv);
    int n = check_data_uris(html);
    CHECK_MSG(n == 2 + 2 * 2, "%d figures: histogram + bars + 2 x (overlay + J series) expected", n);
    free(html);
}

TEST(report_bad_inputs) {
    if (access(s2t_bin(), X_OK) != 0) { s2t_skip("sam2c binary not built"); return; }
    mkdirs(tmp("rbad"));
    char out[1024], a[4096];
    snprintf(out, sizeof out, "%s", tmp("rbad/r.html"));
    CHECK(s2_write_file_atomic(tmp("rbad/other.json"), "{\"a\":1}", 7) == 0);
    snprintf(a, sizeof a, "report '%s' -o '%s'", tmp("rbad/missing.json"), out);
    check_fails(a, out, "missing.json");
    snprintf(a, sizeof a, "report '%s' -o '%s'", tmp("rbad/other.json"), out);
    check_fails(a, out, "not a result of `sam2c eval`");
    snprintf(a, sizeof a, "report '%s'", tmp("rbad/other.json"));
    check_fails(a, NULL, "-o");
    make_image_case();
    snprintf(a, sizeof a, "eval images --gt '%s' --pred '%s' --json '%s' --quiet", tmp("img/gt"), tmp("img/pred"),
             tmp("rbad/eval.json"));
    REQUIRE(sam2c(a) == 0);
    snprintf(a, sizeof a, "report '%s' --run '%s' -o '%s'", tmp("rbad/eval.json"), tmp("rbad/other.txt"), out);
    check_fails(a, out, "other.txt");
    snprintf(a, sizeof a, "report '%s' --gt '%s' -o '%s'", tmp("rbad/eval.json"), tmp("img/gt"), out);
    check_fails(a, out, "--pred");
}
