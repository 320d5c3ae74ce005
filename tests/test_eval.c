/* Evaluation library: video J&F against the official SA-V evaluator's numbers
 * (fixtures/eval/reference.json: global, per object, per frame), DAVIS layout, the
 * boundary F engine against a naive dilation, hand-computed J/F and COCO mAP cases
 * (pycocotools semantics), a synthetic COCO set from the SA-V masklets, image folders
 * and COCO pairs, JSON reports. */
#include "harness.h"
#include "eval/eval.h"
#include "eval/eval_internal.h"
#include "io/image.h"
#include "io/json.h"
#include "io/rle.h"
#include "core/s2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static double reldiff(double a, double b) {
    double d = fabs(a - b), m = fabs(b) > 1e-300 ? fabs(b) : 1.0;
    return d / m;
}

/* "<tmpdir>/<rel>" created as a folder; static rotating buffers. */
static const char *tmp_mkdir(const char *rel) {
    static char buf[8][600];
    static int k;
    char *b = buf[k++ & 7];
    snprintf(b, 600, "%s/%s", s2t_tmpdir(), rel);
    mkdir(b, 0755);
    return b;
}

/* Writes a parsed document to path and frees it. */
static int write_doc(const char *path, s2_json *doc) {
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_value(&w, doc);
    int rc = doc ? s2_write_file_atomic(path, w.buf, w.len) : -1;
    s2_jw_free(&w);
    s2_json_free(doc);
    return rc;
}

/* ============================== primitives ============================== */

TEST(numpy_pairwise_sum) {
    double v[10];
    for (int i = 0; i < 10; i++) v[i] = 0.1;
    CHECK(s2e_sum(v, 10) == 1.0);          /* np.sum([0.1]*10) == 1.0 (Python sum: 0.999..) */
    double w[5] = {0.1, 0.1, 0.1, 0.1, 0.1};
    CHECK(s2e_sum(w, 5) == 0.1 + 0.1 + 0.1 + 0.1 + 0.1); /* n < 8: sequential */
    CHECK(isnan(s2e_mean(v, 0)));
}

/* Single pixels: _seg2bmap marks the 2x2 block up-left of a pixel; on the last column
 * only the lower neighbour counts. 5x5 -> disk radius ceil(0.008 * 7.07) = 1 (a plus). */
TEST(mask_pair_hand_computed) {
    uint8_t g[25] = {0}, p[25] = {0};
    g[2 * 5 + 2] = 1;
    p[2 * 5 + 4] = 1;  /* (y 2, x 4): last column */
    s2_eval_pair r;
    REQUIRE(s2_eval_mask_pair(g, p, 5, 5, 0.008, &r) == 0);
    CHECK_NEAR(r.iou, 0.0, 0);
    CHECK_NEAR(r.precision, 0.5, 1e-15); /* pred boundary (1,3),(2,3) near gt (1,2),(2,2) */
    CHECK_NEAR(r.recall, 0.5, 1e-15);
    CHECK_NEAR(r.f, 0.5, 1e-15);
    /* bottom band rows 3-4: boundary = row 2 only (image borders are not boundaries) */
    uint8_t b1[25] = {0}, b2[25] = {0}, b3[25] = {0};
    for (int x = 0; x < 5; x++) {
        b1[15 + x] = b1[20 + x] = 1;
        b2[10 + x] = b2[15 + x] = b2[20 + x] = 1;
        b3[5 + x] = b3[10 + x] = b3[15 + x] = b3[20 + x] = 1;
    }
    REQUIRE(s2_eval_mask_pair(b1, b2, 5, 5, 0.008, &r) == 0);
    CHECK_NEAR(r.iou, 10.0 / 15.0, 1e-15);
    CHECK_NEAR(r.f, 1.0, 0);              /* boundary rows 2 and 1 are 1 px apart */
    REQUIRE(s2_eval_mask_pair(b1, b3, 5, 5, 0.008, &r) == 0);
    CHECK_NEAR(r.f, 0.0, 0);              /* rows 2 and 0: 2 px > radius 1 */
    /* empty rules */
    uint8_t z[25] = {0};
    REQUIRE(s2_eval_mask_pair(z, z, 5, 5, 0.008, &r) == 0);
    CHECK(r.iou == 1 && r.f == 1);
    REQUIRE(s2_eval_mask_pair(z, b1, 5, 5, 0.008, &r) == 0);
    CHECK(r.iou == 0 && r.f == 0);
    REQUIRE(s2_eval_mask_pair(b1, z, 5, 5, 0.008, &r) == 0);
    CHECK(r.iou == 0 && r.f == 0 && r.precision == 1 && r.recall == 0);
}

/* Naive reference: full _seg2bmap image and cv2.dilate with the whole disk per pixel. */
static void naive_bmap(const uint8_t *s, int h, int w, uint8_t *b) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t v = s[y * w + x], e = x + 1 < w ? s[y * w + x + 1] : 0;
            uint8_t so = y + 1 < h ? s[(y + 1) * w + x] : 0;
            uint8_t se = (x + 1 < w && y + 1 < h) ? s[(y + 1) * w + x + 1] : 0;
            uint8_t bb = (v ^ e) | (v ^ so) | (v ^ se);
            if (y == h - 1) bb = v ^ e;
            if (x == w - 1) bb = v ^ so;
            if (y == h - 1 && x == w - 1) bb = 0;
            b[y * w + x] = bb;
        }
}

static double naive_f(const uint8_t *g, const uint8_t *p, int h, int w, int r) {
    uint8_t *gb = calloc((size_t)h * w, 1), *pb = calloc((size_t)h * w, 1);
    naive_bmap(g, h, w, gb);
    naive_bmap(p, h, w, pb);
    long ng = 0, np = 0, fm = 0, gm = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int gd = 0, pd = 0;
            for (int dy = -r; dy <= r; dy++)
                for (int dx = -r; dx <= r; dx++) {
                    int yy = y + dy, xx = x + dx;
                    if (dx * dx + dy * dy > r * r || yy < 0 || xx < 0 || yy >= h || xx >= w) continue;
                    gd |= gb[yy * w + xx];
                    pd |= pb[yy * w + xx];
                }
            ng += gb[y * w + x];
            np += pb[y * w + x];
            fm += pb[y * w + x] && gd;
            gm += gb[y * w + x] && pd;
        }
    free(gb);
    free(pb);
    double pr, rc;
    if (np == 0 && ng > 0) pr = 1, rc = 0;
    else if (np > 0 && ng == 0) pr = 0, rc = 1;
    else if (np == 0 && ng == 0) pr = 1, rc = 1;
    else pr = (double)fm / np, rc = (double)gm / ng;
    return pr + rc == 0 ? 0 : 2 * pr * rc / (pr + rc);
}

/* Random blobs: union of discs with speckle, deterministic LCG. */
static void random_mask(uint8_t *m, int h, int w, unsigned *seed) {
    memset(m, 0, (size_t)h * w);
    for (int k = 0; k < 4; k++) {
        *seed = *seed * 1103515245u + 12345u;
        int cy = (int)(*seed >> 8) % h, cx = (int)(*seed >> 4) % w, rr = 2 + (int)(*seed >> 20) % 12;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if ((y - cy) * (y - cy) + (x - cx) * (x - cx) <= rr * rr) m[y * w + x] = 1;
    }
    for (int k = 0; k < h * w / 40; k++) {
        *seed = *seed * 1103515245u + 12345u;
        m[(*seed >> 8) % (unsigned)(h * w)] ^= 1;
    }
}

TEST(boundary_f_vs_naive_dilation) {
    const int sizes[4][2] = {{37, 53}, {120, 90}, {64, 300}, {9, 11}};
    const double ths[3] = {0.008, 0.02, 0.05};
    unsigned seed = 7;
    double worst = 0;
    for (int si = 0; si < 4; si++)
        for (int ti = 0; ti < 3; ti++) {
            int h = sizes[si][0], w = sizes[si][1];
            uint8_t *g = malloc((size_t)h * w), *p = malloc((size_t)h * w);
            random_mask(g, h, w, &seed);
            random_mask(p, h, w, &seed);
            s2_eval_pair r;
            REQUIRE(s2_eval_mask_pair(g, p, h, w, ths[ti], &r) == 0);
            int rad = (int)ceil(ths[ti] * sqrt((double)h * h + (double)w * w));
            double want = naive_f(g, p, h, w, rad);
            worst = fmax(worst, fabs(r.f - want));
            CHECK_MSG(r.f == want, "%dx%d th %g: F %.17g, naive %.17g", h, w, ths[ti], r.f, want);
            free(g);
            free(p);
        }
    fprintf(stderr, "  boundary F vs naive dilation: worst |diff| %g over 12 cases\n", worst);
}

/* ============================== video J&F ============================== */

static const char *k_sets[6] = {"dilate3", "erode2", "shift_r6_u4", "drop", "false_blob", "mixed"};

/* Compares one prediction set's result with reference.json; returns the worst relative
 * difference of the global and per-object numbers. */
static double check_against_reference(const s2_vos_result *r, const s2_json *ref,
                                      const char *name, double *worst_frame) {
    const s2_json *p = s2_json_get(s2_json_get(ref, "predictions"), name);
    const s2_json *gl = s2_json_get(p, "global"), *po = s2_json_get(p, "per_object");
    const s2_json *pf = s2_json_get(p, "per_frame");
    double worst = 0, gj, gf, gjf;
    if (!gl || !po || !pf || !s2_json_num(gl, "J", &gj) || !s2_json_num(gl, "F", &gf) ||
        !s2_json_num(gl, "J&F", &gjf)) {
        CHECK_MSG(0, "%s: reference entry missing", name);
        return 1;
    }
    worst = fmax(worst, fmax(reldiff(r->J, gj), fmax(reldiff(r->F, gf), reldiff(r->JF, gjf))));
    CHECK_EQ_INT(r->n_objects, po->n);
    for (int i = 0; i < r->n_objects && i < po->n; i++) {
        const s2_vos_object *o = &r->objects[i];
        const s2_json *ro = s2_json_get(po, o->object), *rf = s2_json_get(pf, o->object);
        double j, f, jf;
        if (!ro || !rf || !s2_json_num(ro, "J", &j) || !s2_json_num(ro, "F", &f) ||
            !s2_json_num(ro, "J&F", &jf)) {
            CHECK_MSG(0, "%s: object %s not in the reference", name, o->object);
            continue;
        }
        worst = fmax(worst, fmax(reldiff(o->J, j), fmax(reldiff(o->F, f), reldiff(o->JF, jf))));
        const s2_json *fr = s2_json_get(rf, "frames_counted"), *fj = s2_json_get(rf, "J"),
                      *ff = s2_json_get(rf, "F");
        if (!fr || !fj || !ff || fr->n != o->n_frames) {
            CHECK_MSG(0, "%s/%s: %d frames counted, reference %d", name, o->object, o->n_frames,
                      fr ? fr->n : -1);
            continue;
        }
        for (int k = 0; k < o->n_frames; k++) {
            CHECK_MSG(strcmp(fr->items[k].str, o->frames[k]) == 0, "%s/%s frame %d: %s vs %s",
                      name, o->object, k, o->frames[k], fr->items[k].str);
            *worst_frame = fmax(*worst_frame, fabs(o->j[k] - fj->items[k].num));
            *worst_frame = fmax(*worst_frame, fabs(o->f[k] - ff->items[k].num));
        }
    }
    return worst;
}

static int g_prog_calls, g_prog_last, g_prog_total;
static void count_progress(void *user, int done, int total) {
    (void)user;
    g_prog_calls++;
    g_prog_last = done;
    g_prog_total = total;
}

TEST(video_sav_reference) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    s2_json *ref = NULL;
    REQUIRE(s2_json_parse_file(s2t_fx("eval/reference.json"), NULL, &ref) == 0);
    double worst = 0, worst_frame = 0;
    for (int s = 0; s < 6; s++) {
        char pred[4096];
        snprintf(pred, sizeof pred, "%s", s2t_fx("eval/pred"));
        snprintf(pred + strlen(pred), sizeof pred - strlen(pred), "/%s", k_sets[s]);
        s2_eval_opts o;
        s2_eval_opts_default(&o);
        o.progress = count_progress;
        g_prog_calls = 0;
        s2_vos_result r;
        double t0 = s2_now_s();
        int rc = s2_eval_video(s2t_fx("eval/gt"), pred, &o, &r);
        CHECK_MSG(rc == 0, "%s: %s", k_sets[s], sam2c_last_error());
        if (rc) continue;
        double w = check_against_reference(&r, ref, k_sets[s], &worst_frame);
        fprintf(stderr, "  %-12s J&F %.10f J %.10f F %.10f  worst rel diff %.3g  (%.2f s)\n",
                k_sets[s], r.JF, r.J, r.F, w, s2_now_s() - t0);
        worst = fmax(worst, w);
        CHECK(g_prog_calls > 0 && g_prog_last == g_prog_total && g_prog_total == 5 * 119);
        s2_vos_free(&r);
    }
    fprintf(stderr, "  video J&F: worst relative diff (global + per object) %.3g, per-frame "
            "abs %.3g\n", worst, worst_frame);
    CHECK(worst <= 1e-12);
    CHECK(worst_frame <= 1e-15);
    s2_json_free(ref);
}

/* Writes object `obj` of fixture set `src` ("gt" or "pred/<name>") as a DAVIS video
 * whose label is `label`. */
static int write_davis(const char *src, const char *obj, const char *dst, uint8_t label) {
    char in[4096], out[4096];
    snprintf(in, sizeof in, "%s/sav_000001/%s", s2t_fx(src), obj);
    mkdir(dst, 0755);
    char **fr;
    int nf;
    if (s2e_list_dir(in, S2E_FILES, ".png", &fr, &nf) < 0) return -1;
    for (int i = 0; i < nf; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", in, fr[i]);
        uint8_t *px;
        int w, h;
        if (s2_png_load_gray(p, &px, &w, &h) < 0) return -1;
        for (int k = 0; k < w * h; k++) px[k] = px[k] ? label : 0;
        snprintf(out, sizeof out, "%s/%s", dst, fr[i]);
        int rc = s2_png_write(out, px, w, h, 1);
        free(px);
        if (rc < 0) return -1;
    }
    s2e_free_names(fr, nf);
    return 0;
}

/* DAVIS layout (label PNGs per video): two videos built from objects 000 and 004 of the
 * "mixed" set must give the reference's per-object numbers. */
TEST(video_davis_layout_matches_sav) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    const char *g = tmp_mkdir("davis"), *p;
    g = tmp_mkdir("davis/gt");
    p = tmp_mkdir("davis/pred");
    char d[700];
    const char *objs[2] = {"000", "004"};
    const uint8_t labels[2] = {1, 7};
    for (int i = 0; i < 2; i++) {
        snprintf(d, sizeof d, "%s/v%s", g, objs[i]);
        REQUIRE(write_davis("eval/gt", objs[i], d, labels[i]) == 0);
        snprintf(d, sizeof d, "%s/v%s", p, objs[i]);
        REQUIRE(write_davis("eval/pred/mixed", objs[i], d, labels[i]) == 0);
    }
    s2_json *ref = NULL;
    REQUIRE(s2_json_parse_file(s2t_fx("eval/reference.json"), NULL, &ref) == 0);
    s2_vos_result r;
    REQUIRE(s2_eval_video(g, p, NULL, &r) == 0);
    REQUIRE(r.n_objects == 2);
    CHECK(strcmp(r.objects[0].object, "1") == 0 && strcmp(r.objects[1].object, "7") == 0);
    for (int i = 0; i < 2; i++) {
        char key[64];
        snprintf(key, sizeof key, "predictions.mixed.per_object.%s", objs[i]);
        double j = -1, f = -1;
        s2_json_num(s2_json_path(ref, key), "J", &j);
        s2_json_num(s2_json_path(ref, key), "F", &f);
        CHECK(reldiff(r.objects[i].J, j) <= 1e-12);
        CHECK(reldiff(r.objects[i].F, f) <= 1e-12);
    }
    s2_vos_free(&r);
    s2_json_free(ref);
}

/* Writes an 8x8 label frame. */
static void put_frame(const char *dir, const char *name, const uint8_t *lab) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    s2_png_write(p, lab, 8, 8, 1);
}

/* DAVIS rules by hand: object 1 perfect; object 2 only in the prediction (not reported);
 * object 3 in the GT on the last frame only, never predicted -> J = F = 0 there. */
TEST(video_davis_rules_hand_computed) {
    tmp_mkdir("davis_hand");
    const char *gr = tmp_mkdir("davis_hand/gt"), *pr = tmp_mkdir("davis_hand/pred");
    const char *g = tmp_mkdir("davis_hand/gt/v"), *p = tmp_mkdir("davis_hand/pred/v");
    for (int t = 0; t < 3; t++) {
        uint8_t gl[64] = {0}, pl[64] = {0};
        for (int y = 1; y < 4; y++)
            for (int x = 1; x < 4; x++) gl[y * 8 + x] = pl[y * 8 + x] = 1;
        if (t == 1) pl[6 * 8 + 6] = 2;
        if (t == 2) gl[6 * 8 + 6] = gl[6 * 8 + 7] = 3;
        char nm[16];
        snprintf(nm, sizeof nm, "%05d.png", t);
        put_frame(g, nm, gl);
        put_frame(p, nm, pl);
    }
    s2_eval_opts o;
    s2_eval_opts_default(&o);
    o.skip_first_last = false;
    s2_vos_result r;
    REQUIRE(s2_eval_video(gr, pr, &o, &r) == 0);
    REQUIRE(r.n_objects == 2);
    CHECK(strcmp(r.objects[0].object, "1") == 0 && r.objects[0].n_frames == 3);
    CHECK_NEAR(r.objects[0].J, 100, 0);
    CHECK_NEAR(r.objects[0].F, 100, 0);
    CHECK(strcmp(r.objects[1].object, "3") == 0 && r.objects[1].n_frames == 1);
    CHECK_NEAR(r.objects[1].J, 0, 0);
    CHECK_NEAR(r.objects[1].F, 0, 0);
    CHECK_NEAR(r.J, 50, 0);
    CHECK_NEAR(r.JF, 50, 0);
    s2_vos_free(&r);
    o.skip_first_last = true; /* only frame 1: object 3 never seen in the GT -> absent */
    REQUIRE(s2_eval_video(gr, pr, &o, &r) == 0);
    CHECK(r.n_objects == 1 && r.objects[0].n_frames == 1);
    s2_vos_free(&r);
}

TEST(video_errors) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    s2_vos_result r;
    CHECK(s2_eval_video("/nonexistent/gt", s2t_fx("eval/gt"), NULL, &r) < 0);
    const char *empty = tmp_mkdir("empty_pred");
    CHECK(s2_eval_video(s2t_fx("eval/gt"), empty, NULL, &r) < 0); /* no common video */
    s2_eval_opts o;
    s2_eval_opts_default(&o);
    o.strict = true;
    CHECK(s2_eval_video(s2t_fx("eval/gt"), empty, &o, &r) < 0);
    fprintf(stderr, "  expected error: %s\n", sam2c_last_error());
    /* SA-V layout: a truncated prediction PNG, then a mask with 3 distinct values */
    const char *g = tmp_mkdir("sav_bad_gt"), *p = tmp_mkdir("sav_bad_pred");
    tmp_mkdir("sav_bad_gt/v"), tmp_mkdir("sav_bad_pred/v");
    const char *go = tmp_mkdir("sav_bad_gt/v/000"), *po = tmp_mkdir("sav_bad_pred/v/000");
    uint8_t lab[64] = {0};
    lab[9] = 255;
    for (int t = 0; t < 3; t++) {
        char nm[16];
        snprintf(nm, sizeof nm, "%05d.png", t);
        put_frame(go, nm, lab);
        put_frame(po, nm, lab);
    }
    int rc0 = s2_eval_video(g, p, NULL, &r);
    CHECK_MSG(rc0 == 0, "%s", sam2c_last_error());
    if (rc0) return;
    CHECK(r.n_objects == 1 && r.objects[0].J == 100 && r.objects[0].n_frames == 1);
    s2_vos_free(&r);
    char path[700];
    snprintf(path, sizeof path, "%s/00001.png", po);
    REQUIRE(truncate(path, 40) == 0);
    CHECK(s2_eval_video(g, p, NULL, &r) < 0);
    fprintf(stderr, "  expected error: %s\n", sam2c_last_error());
    lab[10] = 7;
    put_frame(po, "00001.png", lab);
    CHECK(s2_eval_video(g, p, NULL, &r) < 0);
    fprintf(stderr, "  expected error: %s\n", sam2c_last_error());
}


/* ============================== COCO mAP ============================== */

/* A rectangle annotation: rows [y0, y1), columns [x0, x1). */
typedef struct rect { int img, cat, y0, y1, x0, x1; double score; int crowd; int64_t id; } rect;

/* {"size": [h, w], "counts": ...} of a rectangle (compressed, or a list for crowds). */
static void jw_rect_rle(s2_jw *w, int h, int wd, const rect *r, bool list) {
    uint8_t *m = calloc((size_t)h * wd, 1);
    for (int y = r->y0; y < r->y1; y++)
        for (int x = r->x0; x < r->x1; x++) m[y * wd + x] = 1;
    s2_rle e;
    s2_rle_encode(m, h, wd, &e);
    s2_jw_obj_begin(w);
    s2_jw_key(w, "size");
    s2_jw_arr_begin(w);
    s2_jw_int(w, h);
    s2_jw_int(w, wd);
    s2_jw_arr_end(w);
    s2_jw_key(w, "counts");
    if (list) {
        s2_jw_arr_begin(w);
        for (int i = 0; i < e.n; i++) s2_jw_int(w, e.counts[i]);
        s2_jw_arr_end(w);
    } else {
        char *s = s2_rle_to_string(&e);
        s2_jw_str(w, s);
        free(s);
    }
    s2_jw_obj_end(w);
    s2_rle_free(&e);
    free(m);
}

static s2_json *parse_jw(s2_jw *w) {
    s2_json *j = NULL;
    if (w->failed || s2_json_parse(w->buf, w->len, "built", NULL, &j) < 0) j = NULL;
    s2_jw_free(w);
    return j;
}

static s2_json *make_gt(int h, int wd, int nimg, int ncat, const rect *a, int n) {
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "images");
    s2_jw_arr_begin(&w);
    for (int i = 1; i <= nimg; i++) {
        s2_jw_obj_begin(&w);
        s2_jw_key(&w, "id"); s2_jw_int(&w, i);
        s2_jw_key(&w, "height"); s2_jw_int(&w, h);
        s2_jw_key(&w, "width"); s2_jw_int(&w, wd);
        s2_jw_obj_end(&w);
    }
    s2_jw_arr_end(&w);
    s2_jw_key(&w, "categories");
    s2_jw_arr_begin(&w);
    for (int k = 1; k <= ncat; k++) {
        s2_jw_obj_begin(&w);
        s2_jw_key(&w, "id"); s2_jw_int(&w, k);
        s2_jw_key(&w, "name"); s2_jw_str(&w, k == 1 ? "thing" : "other");
        s2_jw_obj_end(&w);
    }
    s2_jw_arr_end(&w);
    s2_jw_key(&w, "annotations");
    s2_jw_arr_begin(&w);
    for (int i = 0; i < n; i++) {
        s2_jw_obj_begin(&w);
        s2_jw_key(&w, "id"); s2_jw_int(&w, a[i].id ? a[i].id : i + 1);
        s2_jw_key(&w, "image_id"); s2_jw_int(&w, a[i].img);
        s2_jw_key(&w, "category_id"); s2_jw_int(&w, a[i].cat);
        s2_jw_key(&w, "segmentation"); jw_rect_rle(&w, h, wd, &a[i], a[i].crowd);
        s2_jw_key(&w, "area"); s2_jw_int(&w, (a[i].y1 - a[i].y0) * (a[i].x1 - a[i].x0));
        s2_jw_key(&w, "iscrowd"); s2_jw_int(&w, a[i].crowd);
        s2_jw_obj_end(&w);
    }
    s2_jw_arr_end(&w);
    s2_jw_obj_end(&w);
    return parse_jw(&w);
}

/* Results list; with_bbox adds each rectangle's box ([x, y, w, h] of bbox[i] if given). */
static s2_json *make_res(int h, int wd, const rect *a, int n, const double (*bbox)[4]) {
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_arr_begin(&w);
    for (int i = 0; i < n; i++) {
        s2_jw_obj_begin(&w);
        s2_jw_key(&w, "image_id"); s2_jw_int(&w, a[i].img);
        s2_jw_key(&w, "category_id"); s2_jw_int(&w, a[i].cat);
        s2_jw_key(&w, "segmentation"); jw_rect_rle(&w, h, wd, &a[i], false);
        s2_jw_key(&w, "score"); s2_jw_num(&w, a[i].score);
        if (bbox) {
            s2_jw_key(&w, "bbox");
            s2_jw_arr_begin(&w);
            for (int j = 0; j < 4; j++) s2_jw_num(&w, bbox[i][j]);
            s2_jw_arr_end(&w);
        }
        s2_jw_obj_end(&w);
    }
    s2_jw_arr_end(&w);
    return parse_jw(&w);
}

/* Evaluates and frees the documents. */
static int run_coco(s2_json *gt, s2_json *res, s2_coco_eval_result *r) {
    int rc = (gt && res) ? s2_eval_coco_doc(gt, "gt", res, "res", NULL, r) : -1;
    if (rc) fprintf(stderr, "  coco: %s\n", sam2c_last_error());
    s2_json_free(gt);
    s2_json_free(res);
    return rc;
}

static void check_stats(const s2_coco_eval_result *r, const double want[12], double tol) {
    for (int i = 0; i < 12; i++)
        CHECK_MSG(fabs(r->stats[i] - want[i]) <= tol, "stat %d: %.17g, want %.17g", i,
                  r->stats[i], want[i]);
}

TEST(coco_perfect_detection) {
    rect g[1] = {{1, 1, 10, 30, 10, 30, 0, 0, 0}};
    rect d[1] = {{1, 1, 10, 30, 10, 30, 0.9, 0, 0}};
    s2_coco_eval_result r;
    REQUIRE(run_coco(make_gt(100, 100, 1, 1, g, 1), make_res(100, 100, d, 1, NULL), &r) == 0);
    /* one true positive has precision 1 / (1 + np.spacing(1)) = 1 - 2^-52 in
     * pycocotools, so "perfect" AP is 0.99999999999999978; AR is exactly 1 */
    const double want[12] = {1, 1, 1, 1, -1, -1, 1, 1, 1, 1, -1, -1}; /* area 400: small */
    check_stats(&r, want, 1e-15);
    CHECK(r.stats[0] < 1 && r.stats[8] == 1);
    CHECK(r.K == 1 && fabs(r.cat_ap[0] - 1) <= 1e-15 && r.n_gt == 1 && r.n_dt == 1);
    s2_coco_eval_free(&r);
}

/* IoU exactly 0.6 (180 / 300) passes thresholds .50, .55 and .60 (linspace gives .6
 * exactly and matching needs iou >= t): AP = 0.3. IoU 170/300 = 0.567 -> AP = 0.2. */
TEST(coco_iou_thresholds) {
    rect g[1] = {{1, 1, 0, 10, 0, 30, 0, 0, 0}};
    rect d[1] = {{1, 1, 0, 10, 0, 18, 0.9, 0, 0}};
    s2_coco_eval_result r;
    REQUIRE(run_coco(make_gt(64, 64, 1, 1, g, 1), make_res(64, 64, d, 1, NULL), &r) == 0);
    const double want[12] = {0.3, 1, 0, 0.3, -1, -1, 0.3, 0.3, 0.3, 0.3, -1, -1};
    check_stats(&r, want, 1e-15);
    s2_coco_eval_free(&r);
    d[0].x1 = 17;
    REQUIRE(run_coco(make_gt(64, 64, 1, 1, g, 1), make_res(64, 64, d, 1, NULL), &r) == 0);
    const double want2[12] = {0.2, 1, 0, 0.2, -1, -1, 0.2, 0.2, 0.2, 0.2, -1, -1};
    check_stats(&r, want2, 1e-15);
    s2_coco_eval_free(&r);
}

/* A duplicate of GT1 (score between the two true positives) becomes a false positive:
 * tp [1,1,2], fp [0,1,1], rc [.5,.5,1], interpolated pr [1, 2/3, 2/3] ->
 * AP = (51 * 1 + 50 * 2/3) / 101; AR1 = 0.5 (one detection per image). */
TEST(coco_duplicate_is_false_positive) {
    rect g[2] = {{1, 1, 0, 20, 0, 20, 0, 0, 0}, {1, 1, 40, 60, 40, 60, 0, 0, 0}};
    rect d[3] = {{1, 1, 0, 20, 0, 20, 0.9, 0, 0}, {1, 1, 0, 20, 0, 20, 0.8, 0, 0},
                 {1, 1, 40, 60, 40, 60, 0.7, 0, 0}};
    s2_coco_eval_result r;
    REQUIRE(run_coco(make_gt(100, 100, 1, 1, g, 2), make_res(100, 100, d, 3, NULL), &r) == 0);
    double ap = (51.0 + 50.0 * (2.0 / 3.0)) / 101.0;
    const double want[12] = {ap, ap, ap, ap, -1, -1, 0.5, 1, 1, 1, -1, -1};
    check_stats(&r, want, 1e-12);
    s2_coco_eval_free(&r);
}

/* Crowd region: detections inside it match it (IoU = inter / detection area = 1), are
 * ignored and do not consume it; without the crowd they are false positives ranked
 * above the true positive: AP = 1/3. */
TEST(coco_crowd_absorbs_detections) {
    rect g[2] = {{1, 1, 0, 20, 0, 20, 0, 0, 0}, {1, 1, 40, 100, 40, 100, 0, 1, 0}};
    rect d[3] = {{1, 1, 50, 60, 50, 60, 0.95, 0, 0}, {1, 1, 70, 80, 70, 80, 0.9, 0, 0},
                 {1, 1, 0, 20, 0, 20, 0.5, 0, 0}};
    s2_coco_eval_result r;
    REQUIRE(run_coco(make_gt(100, 100, 1, 1, g, 2), make_res(100, 100, d, 3, NULL), &r) == 0);
    CHECK_NEAR(r.stats[0], 1.0, 1e-15);
    CHECK_NEAR(r.stats[8], 1.0, 0);
    s2_coco_eval_free(&r);
    REQUIRE(run_coco(make_gt(100, 100, 1, 1, g, 1), make_res(100, 100, d, 3, NULL), &r) == 0);
    CHECK_NEAR(r.stats[0], 1.0 / 3.0, 1e-15);
    s2_coco_eval_free(&r);
}

/* Categories without GT give -1 (a detection alone does not make them count); unknown
 * categories are dropped; empty area ranges give -1. */
TEST(coco_empty_categories) {
    rect g[1] = {{1, 1, 0, 40, 0, 40, 0, 0, 0}}; /* 1600: medium */
    rect d[3] = {{1, 1, 0, 40, 0, 40, 0.9, 0, 0}, {1, 2, 50, 60, 50, 60, 0.8, 0, 0},
                 {1, 9, 50, 60, 50, 60, 0.8, 0, 0}};
    s2_coco_eval_result r;
    REQUIRE(run_coco(make_gt(100, 100, 1, 3, g, 1), make_res(100, 100, d, 3, NULL), &r) == 0);
    const double want[12] = {1, 1, 1, -1, 1, -1, 1, 1, 1, -1, 1, -1};
    check_stats(&r, want, 1e-15);
    REQUIRE(r.K == 3);
    CHECK(fabs(r.cat_ap[0] - 1) <= 1e-15 && r.cat_ap[1] == -1 && r.cat_ap[2] == -1 && r.cat_ap50[1] == -1);
    CHECK(r.n_dt == 2 && r.n_dt_skipped == 1);
    s2_coco_eval_free(&r);
}

/* Area ranges: out-of-range GT are ignored (matches to them ignored), unmatched
 * out-of-range detections are ignored. all: AP 2/3; small: 1; large: 1/2. */
TEST(coco_area_ranges) {
    rect g[2] = {{1, 1, 0, 20, 0, 20, 0, 0, 0}, {1, 1, 100, 200, 100, 200, 0, 0, 0}};
    rect d[3] = {{1, 1, 0, 100, 100, 200, 0.99, 0, 0}, {1, 1, 0, 20, 0, 20, 0.9, 0, 0},
                 {1, 1, 100, 200, 100, 200, 0.8, 0, 0}};
    s2_coco_eval_result r;
    REQUIRE(run_coco(make_gt(200, 200, 1, 1, g, 2), make_res(200, 200, d, 3, NULL), &r) == 0);
    CHECK_NEAR(r.stats[0], 2.0 / 3.0, 1e-12);
    CHECK_NEAR(r.stats[3], 1.0, 1e-15);
    CHECK_NEAR(r.stats[4], -1.0, 0);
    CHECK_NEAR(r.stats[5], 0.5, 1e-15);
    s2_coco_eval_free(&r);
}

/* loadRes: when the first result has a 'bbox', every area is the box area. A false
 * positive with a small mask but a medium box is ignored in the 'small' range. */
TEST(coco_result_area_from_bbox) {
    rect g[1] = {{1, 1, 0, 20, 0, 20, 0, 0, 0}};
    rect d[2] = {{1, 1, 60, 70, 60, 70, 0.9, 0, 0}, {1, 1, 0, 20, 0, 20, 0.5, 0, 0}};
    const double bb[2][4] = {{50, 50, 40, 40}, {0, 0, 20, 20}};
    s2_coco_eval_result r;
    REQUIRE(run_coco(make_gt(100, 100, 1, 1, g, 1), make_res(100, 100, d, 2, bb), &r) == 0);
    CHECK_NEAR(r.stats[3], 1.0, 1e-15);
    s2_coco_eval_free(&r);
    REQUIRE(run_coco(make_gt(100, 100, 1, 1, g, 1), make_res(100, 100, d, 2, NULL), &r) == 0);
    CHECK_NEAR(r.stats[3], 0.5, 1e-15);
    s2_coco_eval_free(&r);
}

/* maxDets 1 / 10 / 100 on 12 objects of one image. */
TEST(coco_max_dets) {
    rect g[12], d[12];
    for (int i = 0; i < 12; i++) {
        g[i] = (rect){1, 1, (i / 4) * 30, (i / 4) * 30 + 20, (i % 4) * 30, (i % 4) * 30 + 20, 0, 0, 0};
        d[i] = g[i];
        d[i].score = 0.99 - 0.01 * i;
    }
    s2_coco_eval_result r;
    REQUIRE(run_coco(make_gt(128, 128, 1, 1, g, 12), make_res(128, 128, d, 12, NULL), &r) == 0);
    CHECK_NEAR(r.stats[0], 1, 0);
    CHECK_NEAR(r.stats[6], 1.0 / 12, 1e-15);
    CHECK_NEAR(r.stats[7], 10.0 / 12, 1e-15);
    CHECK_NEAR(r.stats[8], 1, 0);
    s2_coco_eval_free(&r);
}

/* pycocotools quirk kept: a GT annotation with id 0 cannot be a true positive (its id
 * is stored as the match and 0 reads as "unmatched"). */
TEST(coco_gt_id_zero_quirk) {
    rect g[1] = {{1, 1, 0, 20, 0, 20, 0, 0, -1}};
    g[0].id = 0; /* make_gt writes i + 1 for id 0: use a dataset edit instead */
    s2_json *gt = make_gt(100, 100, 1, 1, g, 1);
    REQUIRE(gt);
    s2_json *ann = (s2_json *)s2_json_at(s2_json_get(gt, "annotations"), 0);
    ((s2_json *)s2_json_get(ann, "id"))->num = 0;
    rect d[1] = {{1, 1, 0, 20, 0, 20, 0.9, 0, 0}};
    s2_coco_eval_result r;
    REQUIRE(run_coco(gt, make_res(100, 100, d, 1, NULL), &r) == 0);
    CHECK_NEAR(r.stats[0], 0, 0);
    s2_coco_eval_free(&r);
}

/* Polygon GT, bbox-only results (the box polygon) and hostile inputs. */
TEST(coco_formats_and_errors) {
    const char *gt_txt =
        "{\"images\":[{\"id\":7,\"height\":50,\"width\":60}],\"categories\":[{\"id\":3}],"
        "\"annotations\":[{\"id\":1,\"image_id\":7,\"category_id\":3,\"iscrowd\":0,"
        "\"segmentation\":[[10,10,10,30,30,30,30,10]],\"area\":400}]}";
    const char *res_txt = "[{\"image_id\":7,\"category_id\":3,\"bbox\":[10,10,20,20],\"score\":0.5}]";
    s2_json *gt, *res;
    REQUIRE(s2_json_parse(gt_txt, strlen(gt_txt), "gt", NULL, &gt) == 0);
    REQUIRE(s2_json_parse(res_txt, strlen(res_txt), "res", NULL, &res) == 0);
    s2_coco_eval_result r;
    REQUIRE(s2_eval_coco_doc(gt, "gt", res, "res", NULL, &r) == 0);
    CHECK_NEAR(r.stats[0], 1, 1e-15);
    s2_coco_eval_free(&r);
    s2_json_free(res);
    const char *bad[4] = {
        "[{\"image_id\":8,\"category_id\":3,\"bbox\":[1,1,2,2],\"score\":0.5}]",  /* unknown image */
        "[{\"image_id\":7,\"category_id\":3,\"segmentation\":[[1,2]],\"score\":0.5}]",
        "[{\"image_id\":7,\"category_id\":3,\"segmentation\":{\"size\":[50,60],\"counts\":\"!!\"},\"score\":1}]",
        "[{\"image_id\":7,\"category_id\":3,\"segmentation\":[[1,2,3,4,5,6]]}]"}; /* no score */
    for (int i = 0; i < 4; i++) {
        REQUIRE(s2_json_parse(bad[i], strlen(bad[i]), "res", NULL, &res) == 0);
        CHECK_MSG(s2_eval_coco_doc(gt, "gt", res, "res", NULL, &r) < 0, "bad input %d accepted", i);
        fprintf(stderr, "  expected error: %s\n", sam2c_last_error());
        s2_json_free(res);
    }
    s2_json_free(gt);
}

/* Shifts an RLE right by s columns (column-major: s*h background pixels in front). */
static void rle_shift_right(s2_rle *r, int s) {
    uint64_t add = (uint64_t)s * r->h, drop = add;
    r->counts[0] += (uint32_t)add;
    while (drop > 0 && r->n > 0) {
        if (r->counts[r->n - 1] > drop) { r->counts[r->n - 1] -= (uint32_t)drop; drop = 0; }
        else { drop -= r->counts[r->n - 1]; r->n--; }
    }
}

/* GT / results documents from the SA-V masklets (121 frames = images, 5 objects =
 * categories), predictions = GT shifted right by `shift` px. */
/* {"size": [848, 480], "counts": "<s>"} */
static void jw_sav_rle(s2_jw *w, const char *cs) {
    s2_jw_obj_begin(w);
    s2_jw_key(w, "size");
    s2_jw_arr_begin(w);
    s2_jw_int(w, 848);
    s2_jw_int(w, 480);
    s2_jw_arr_end(w);
    s2_jw_key(w, "counts");
    s2_jw_str(w, cs);
    s2_jw_obj_end(w);
}

static int sav_coco(const s2_json *sav, int shift, s2_coco_eval_result *r) {
    const s2_json *ml = s2_json_get(sav, "masklet");
    s2_jw g, d;
    s2_jw_init(&g);
    s2_jw_init(&d);
    s2_jw_obj_begin(&g);
    s2_jw_key(&g, "categories");
    s2_jw_raw(&g, "[{\"id\":1},{\"id\":2},{\"id\":3},{\"id\":4},{\"id\":5}]");
    s2_jw_key(&g, "images");
    s2_jw_arr_begin(&g);
    for (int t = 0; t < ml->n; t++) {
        s2_jw_obj_begin(&g);
        s2_jw_key(&g, "id"); s2_jw_int(&g, t + 1);
        s2_jw_key(&g, "height"); s2_jw_int(&g, 848);
        s2_jw_key(&g, "width"); s2_jw_int(&g, 480);
        s2_jw_obj_end(&g);
    }
    s2_jw_arr_end(&g);
    s2_jw_key(&g, "annotations");
    s2_jw_arr_begin(&g);
    s2_jw_arr_begin(&d);
    int id = 0;
    for (int t = 0; t < ml->n; t++)
        for (int o = 0; o < ml->items[t].n; o++) {
            const char *cs = s2_json_str(&ml->items[t].items[o], "counts");
            s2_rle e;
            if (!cs || s2_rle_from_string(cs, 848, 480, &e) < 0) return -1;
            int64_t area = s2_rle_area(&e);
            if (area > 0) {
                s2_jw_obj_begin(&g);
                s2_jw_key(&g, "id"); s2_jw_int(&g, ++id);
                s2_jw_key(&g, "image_id"); s2_jw_int(&g, t + 1);
                s2_jw_key(&g, "category_id"); s2_jw_int(&g, o + 1);
                s2_jw_key(&g, "iscrowd"); s2_jw_int(&g, 0);
                s2_jw_key(&g, "area"); s2_jw_int(&g, area);
                s2_jw_key(&g, "segmentation"); jw_sav_rle(&g, cs);
                s2_jw_obj_end(&g);
                rle_shift_right(&e, shift);
                char *ps = s2_rle_to_string(&e);
                s2_jw_obj_begin(&d);
                s2_jw_key(&d, "image_id"); s2_jw_int(&d, t + 1);
                s2_jw_key(&d, "category_id"); s2_jw_int(&d, o + 1);
                s2_jw_key(&d, "score"); s2_jw_num(&d, 1.0 - 0.001 * ((t * 7 + o * 13) % 100));
                s2_jw_key(&d, "segmentation"); jw_sav_rle(&d, ps);
                s2_jw_obj_end(&d);
                free(ps);
            }
            s2_rle_free(&e);
        }
    s2_jw_arr_end(&g);
    s2_jw_obj_end(&g);
    s2_jw_arr_end(&d);
    return run_coco(parse_jw(&g), parse_jw(&d), r);
}

TEST(coco_sav_synthetic_invariants) {
    s2_json *sav = NULL;
    if (!s2t_data() || s2_json_parse_file(s2t_dat("sav/sav_000001_manual.json"), NULL, &sav) < 0) {
        s2t_skip("SA-V sample missing");
        return;
    }
    const int shifts[5] = {0, 2, 5, 10, 20};
    double prev[12];
    for (int i = 0; i < 5; i++) {
        s2_coco_eval_result r;
        double t0 = s2_now_s();
        REQUIRE(sav_coco(sav, shifts[i], &r) == 0);
        fprintf(stderr, "  SA-V as COCO, shift %2d px: AP %.4f AP50 %.4f AP75 %.4f APs %.3f APm "
                "%.3f APl %.3f AR100 %.4f (%d gt, %.2f s)\n", shifts[i], r.stats[0], r.stats[1],
                r.stats[2], r.stats[3], r.stats[4], r.stats[5], r.stats[8], r.n_gt, s2_now_s() - t0);
        if (i == 0) {
            for (int k = 0; k < 12; k++)
                CHECK_MSG(fabs(r.stats[k] - 1) <= 1e-15 || r.stats[k] == -1, "stat %d = %.17g", k, r.stats[k]);
            CHECK(r.stats[0] == 1 && r.stats[8] == 1 && r.n_gt == 480);
        } else {
            CHECK_MSG(r.stats[0] < prev[0], "AP must drop: %g after %g", r.stats[0], prev[0]);
            CHECK(r.stats[8] <= prev[8]);
        }
        CHECK(r.stats[2] <= r.stats[1] && r.stats[6] <= r.stats[7] && r.stats[7] <= r.stats[8]);
        memcpy(prev, r.stats, sizeof prev);
        s2_coco_eval_free(&r);
    }
    s2_json_free(sav);
}

/* Paths API and the JSON report. */
TEST(coco_files_and_json_report) {
    rect g[2] = {{1, 1, 0, 20, 0, 20, 0, 0, 0}, {2, 1, 40, 60, 40, 60, 0, 0, 0}};
    rect d[2] = {{1, 1, 0, 20, 0, 20, 0.9, 0, 0}, {2, 1, 40, 60, 44, 60, 0.7, 0, 0}};
    char gp[600], rp[600];
    snprintf(gp, sizeof gp, "%s/gt.json", s2t_tmpdir());
    snprintf(rp, sizeof rp, "%s/res.json", s2t_tmpdir());
    REQUIRE(write_doc(gp, make_gt(100, 100, 2, 1, g, 2)) == 0);
    REQUIRE(write_doc(rp, make_res(100, 100, d, 2, NULL)) == 0);
    s2_coco_eval_result r;
    REQUIRE(s2_eval_coco(gp, rp, NULL, &r) == 0);
    /* second detection IoU 320/400 = 0.8: TP at .50 .. .80 (7 of 10 thresholds); at
     * the other 3 the precision is 1 up to recall .5 (51 of 101 recall points), then 0 */
    CHECK_NEAR(r.stats[1], 1, 0);
    CHECK_NEAR(r.stats[0], (7 + 3 * 51.0 / 101) / 10, 1e-15);
    s2_jw w;
    s2_jw_init(&w);
    s2_coco_eval_write_json(&r, &w);
    s2_json *rep = parse_jw(&w);
    double ap = -5;
    REQUIRE(rep);
    CHECK(s2_json_num(rep, "AP", &ap) && ap == r.stats[0]);
    CHECK(s2_json_get(rep, "per_category")->n == 1);
    s2_json_free(rep);
    s2_coco_eval_free(&r);
}

/* ============================== image masks ============================== */

static void write_mask(const char *dir, const char *rel, int h, int w, int y0, int y1, int x0, int x1) {
    char p[1024];
    uint8_t *m = calloc((size_t)h * w, 1);
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) m[y * w + x] = 255;
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    s2_png_write(p, m, w, h, 1);
    free(m);
}

TEST(images_folders) {
    const char *g = tmp_mkdir("img_gt"), *p = tmp_mkdir("img_pred");
    tmp_mkdir("img_gt/sub");
    tmp_mkdir("img_pred/sub");
    write_mask(g, "a.png", 40, 50, 5, 25, 5, 25);
    write_mask(p, "a.png", 40, 50, 5, 25, 5, 25);
    write_mask(g, "sub/b.png", 40, 50, 10, 30, 10, 30);
    write_mask(p, "sub/b.png", 40, 50, 10, 30, 14, 30);
    write_mask(g, "c.png", 40, 50, 0, 10, 0, 10);
    write_mask(p, "x.png", 40, 50, 0, 10, 0, 10);
    s2_eval_images_result r;
    REQUIRE(s2_eval_images_dirs(g, p, NULL, &r) == 0);
    REQUIRE(r.n == 3);
    CHECK(strcmp(r.pairs[0].name, "a.png") == 0 && strcmp(r.pairs[1].name, "c.png") == 0 &&
          strcmp(r.pairs[2].name, "sub/b.png") == 0);
    CHECK(r.pairs[0].iou == 1 && r.pairs[0].f == 1);
    CHECK(r.pairs[1].missing_pred && r.pairs[1].iou == 0 && r.pairs[1].f == 0);
    CHECK_NEAR(r.pairs[2].iou, 320.0 / 400.0, 1e-15);
    CHECK(r.n_missing_pred == 1 && r.n_extra_pred == 1);
    CHECK_NEAR(r.mean_iou, (1 + 0 + 0.8) / 3, 1e-15);
    CHECK_NEAR(r.overall_iou, (400.0 + 320) / (400 + 100 + 400), 1e-15);
    s2_jw w;
    s2_jw_init(&w);
    s2_eval_images_write_json(&r, &w);
    s2_json *rep = parse_jw(&w);
    double mi = -1;
    REQUIRE(rep);
    CHECK(s2_json_num(rep, "mean_iou", &mi) && mi == r.mean_iou);
    CHECK(s2_json_get(rep, "items")->n == 3);
    s2_json_free(rep);
    s2_eval_images_free(&r);
}

/* The image path on one SA-V object equals the official per-frame J and F. */
TEST(images_folders_match_video_reference) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    s2_json *ref = NULL;
    REQUIRE(s2_json_parse_file(s2t_fx("eval/reference.json"), NULL, &ref) == 0);
    char g[4096], p[4096];
    snprintf(g, sizeof g, "%s", s2t_fx("eval/gt/sav_000001/001"));
    snprintf(p, sizeof p, "%s", s2t_fx("eval/pred/erode2/sav_000001/001"));
    s2_eval_images_result r;
    REQUIRE(s2_eval_images_dirs(g, p, NULL, &r) == 0);
    const s2_json *pf = s2_json_path(ref, "predictions.erode2.per_frame.001");
    const s2_json *fr = s2_json_get(pf, "frames_counted"), *fj = s2_json_get(pf, "J"),
                  *ff = s2_json_get(pf, "F");
    REQUIRE(fr && fj && ff && r.n == 121);
    int matched = 0;
    for (int k = 0; k < fr->n; k++)
        for (int i = 0; i < r.n; i++)
            if (strncmp(r.pairs[i].name, fr->items[k].str, 5) == 0) {
                CHECK(r.pairs[i].iou == fj->items[k].num && r.pairs[i].f == ff->items[k].num);
                matched++;
            }
    CHECK_EQ_INT(matched, 119);
    s2_eval_images_free(&r);
    s2_json_free(ref);
}

TEST(images_coco_pairs) {
    rect g[3] = {{1, 1, 0, 20, 0, 20, 0, 0, 0}, {1, 1, 40, 60, 40, 60, 0, 0, 0},
                 {1, 2, 0, 10, 0, 10, 0, 0, 0}};
    rect d[2] = {{1, 1, 0, 20, 0, 10, 0.9, 0, 0}, {1, 3, 0, 10, 0, 10, 0.9, 0, 0}};
    char gp[600], rp[600];
    snprintf(gp, sizeof gp, "%s/pairs_gt.json", s2t_tmpdir());
    snprintf(rp, sizeof rp, "%s/pairs_res.json", s2t_tmpdir());
    REQUIRE(write_doc(gp, make_gt(64, 64, 1, 2, g, 3)) == 0);
    REQUIRE(write_doc(rp, make_res(64, 64, d, 2, NULL)) == 0);
    s2_eval_images_result r;
    REQUIRE(s2_eval_images_coco(gp, rp, NULL, &r) == 0);
    REQUIRE(r.n == 4);
    CHECK(strcmp(r.pairs[0].name, "1/1/0") == 0 && strcmp(r.pairs[1].name, "1/1/1") == 0 &&
          strcmp(r.pairs[2].name, "1/2/0") == 0 && strcmp(r.pairs[3].name, "1/3/0") == 0);
    CHECK_NEAR(r.pairs[0].iou, 0.5, 0);
    CHECK(r.pairs[1].missing_pred && r.pairs[2].missing_pred && r.pairs[3].extra_pred);
    CHECK(r.n_missing_pred == 2 && r.n_extra_pred == 1);
    CHECK_NEAR(r.mean_iou, 0.125, 0);
    s2_eval_images_free(&r);
}
