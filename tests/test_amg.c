/* Automatic mask generation against the official SAM2AutomaticMaskGenerator
 * (fixtures/amg: micro model, groceries 400x267, settings in amg.json), through the C API
 * and through `sam2c auto`; plus the pieces of sam2/utils/amg.py and torchvision NMS on
 * known answers, a crop-layer run checked against the generate_crop_boxes formula, and
 * bad parameters / flags.
 * Rule (fixtures README "amg/"): same count and order; mask IoU >= 0.999 leaving out the
 * listed ambiguous pixels; predicted_iou and stability_score within 1e-4; bbox,
 * point_coords and crop_box equal. */
#include "harness.h"
#include "io/image.h"
#include "io/json.h"
#include "io/rle.h"
#include "predict/amg.h"
#include "predict/image.h"
#include "kernels/kernels.h"
#include <stdlib.h>
#include <string.h>

/* One record, from the C API or from a masks.json. */
typedef struct rec {
    uint8_t *mask; /* [H, W] 0/1 */
    int64_t area;
    double bbox[4], iou, stab, pt[2], crop[4];
} rec;

static void free_recs(rec *r, int n) {
    for (int i = 0; r && i < n; i++) free(r[i].mask);
    free(r);
}

/* Up to n numbers of a JSON array into out; returns how many were read. */
static int nums(const s2_json *a, double *out, int n) {
    int k = 0;
    for (; a && a->type == S2_JARR && k < a->n && k < n; k++) out[k] = a->items[k].num;
    return k;
}

/* Reads a masks.json list (official record layout, COCO compressed RLE). */
static rec *read_masks_json(const char *path, int *n_out) {
    s2_json *j = NULL;
    *n_out = -1;
    if (s2_json_parse_file(path, NULL, &j) < 0 || j->type != S2_JARR) {
        s2t_fail(__FILE__, __LINE__, "%s: %s", path, sam2c_last_error());
        s2_json_free(j);
        return NULL;
    }
    rec *r = calloc((size_t)j->n + 1, sizeof *r);
    for (int i = 0; i < j->n; i++) {
        const s2_json *o = &j->items[i], *seg = s2_json_get(o, "segmentation");
        double hw[2] = {0, 0};
        nums(s2_json_get(seg, "size"), hw, 2);
        s2_rle rle = {0};
        const char *counts = s2_json_str(seg, "counts");
        if (!counts || s2_rle_from_string(counts, (int)hw[0], (int)hw[1], &rle) < 0) {
            s2t_fail(__FILE__, __LINE__, "%s: record %d: bad segmentation", path, i);
            continue;
        }
        r[i].mask = malloc((size_t)(hw[0] * hw[1]));
        s2_rle_decode(&rle, r[i].mask);
        s2_rle_free(&rle);
        double v;
        if (s2_json_num(o, "area", &v)) r[i].area = (int64_t)v;
        s2_json_num(o, "predicted_iou", &r[i].iou);
        s2_json_num(o, "stability_score", &r[i].stab);
        nums(s2_json_get(o, "bbox"), r[i].bbox, 4);
        nums(s2_json_get(o, "crop_box"), r[i].crop, 4);
        nums(s2_json_at(s2_json_get(o, "point_coords"), 0), r[i].pt, 2);
    }
    *n_out = j->n;
    s2_json_free(j);
    return r;
}

/* Records of a C API result. */
static rec *from_result(const sam2c_amg_result *res) {
    rec *r = calloc((size_t)res->n_masks + 1, sizeof *r);
    for (int i = 0; i < res->n_masks; i++) {
        const sam2c_amg_mask *m = &res->masks[i];
        r[i].mask = malloc((size_t)m->width * m->height);
        CHECK(sam2c_amg_mask_decode(m, r[i].mask) == 0);
        r[i].area = m->area;
        r[i].iou = m->predicted_iou, r[i].stab = m->stability_score;
        memcpy(r[i].bbox, m->bbox, sizeof r[i].bbox);
        memcpy(r[i].crop, m->crop_box, sizeof r[i].crop);
        memcpy(r[i].pt, m->point_coords, sizeof r[i].pt);
    }
    return r;
}

/* IoU of two masks leaving out the ambiguous [y, x] pixels listed for record k. */
static double mask_iou(const uint8_t *a, const uint8_t *b, int h, int w, const s2_json *amb) {
    uint8_t *skip = calloc((size_t)h * w, 1);
    for (int i = 0; amb && i < amb->n; i++) {
        double yx[2];
        if (nums(&amb->items[i], yx, 2) == 2) skip[(int)yx[0] * w + (int)yx[1]] = 1;
    }
    int64_t inter = 0, uni = 0;
    for (int64_t i = 0; i < (int64_t)h * w; i++) {
        if (skip[i]) continue;
        inter += a[i] && b[i];
        uni += a[i] || b[i];
    }
    free(skip);
    return uni ? (double)inter / (double)uni : 1.0;
}

/* The fixture rule, record by record. */
static void compare(const char *what, const rec *got, int n_got, const rec *ref, int n_ref,
                    const s2_json *amg, int h, int w) {
    CHECK_EQ_INT(n_got, n_ref);
    const s2_json *amb = s2_json_path(amg, "ambiguous_pixels.pixels");
    double worst_iou = 1, worst_piou = 0, worst_stab = 0;
    for (int i = 0; i < n_got && i < n_ref; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", i);
        const s2_json *ak = s2_json_get(amb, key);
        double iou = mask_iou(got[i].mask, ref[i].mask, h, w, ak);
        worst_iou = fmin(worst_iou, iou);
        worst_piou = fmax(worst_piou, fabs(got[i].iou - ref[i].iou));
        worst_stab = fmax(worst_stab, fabs(got[i].stab - ref[i].stab));
        CHECK_MSG(iou >= 0.999, "%s mask %d: IoU %.6f with the reference", what, i, iou);
        CHECK_NEAR(got[i].iou, ref[i].iou, 1e-4);
        CHECK_NEAR(got[i].stab, ref[i].stab, 1e-4);
        CHECK_MSG(llabs(got[i].area - ref[i].area) <= (ak ? ak->n : 0), "%s mask %d: area %lld vs %lld",
                  what, i, (long long)got[i].area, (long long)ref[i].area);
        for (int k = 0; k < 4; k++) {
            CHECK_MSG(got[i].bbox[k] == ref[i].bbox[k], "%s mask %d: bbox[%d] %g vs %g", what, i, k,
                      got[i].bbox[k], ref[i].bbox[k]);
            CHECK_MSG(got[i].crop[k] == ref[i].crop[k], "%s mask %d: crop_box[%d] %g vs %g", what, i, k,
                      got[i].crop[k], ref[i].crop[k]);
        }
        CHECK_MSG(got[i].pt[0] == ref[i].pt[0] && got[i].pt[1] == ref[i].pt[1],
                  "%s mask %d: point (%g, %g) vs (%g, %g)", what, i, got[i].pt[0], got[i].pt[1],
                  ref[i].pt[0], ref[i].pt[1]);
    }
    fprintf(stderr, "  %s: %d masks, min IoU %.6f, max |d predicted_iou| %.2g, max |d stability| %.2g\n",
            what, n_got, worst_iou, worst_piou, worst_stab);
}

/* amg.json "settings" -> parameters. */
static sam2c_amg_params params_from(const s2_json *amg) {
    sam2c_amg_params p = sam2c_amg_default_params();
    const s2_json *s = s2_json_get(amg, "settings");
    int64_t i;
    bool b;
    if (s2_json_int(s, "points_per_side", &i)) p.points_per_side = (int)i;
    if (s2_json_int(s, "points_per_batch", &i)) p.points_per_batch = (int)i;
    if (s2_json_int(s, "crop_n_layers", &i)) p.crop_n_layers = (int)i;
    if (s2_json_int(s, "crop_n_points_downscale_factor", &i)) p.crop_n_points_downscale_factor = (int)i;
    if (s2_json_int(s, "min_mask_region_area", &i)) p.min_mask_region_area = (int)i;
    s2_json_num(s, "pred_iou_thresh", &p.pred_iou_thresh);
    s2_json_num(s, "stability_score_thresh", &p.stability_score_thresh);
    s2_json_num(s, "stability_score_offset", &p.stability_score_offset);
    s2_json_num(s, "mask_threshold", &p.mask_threshold);
    s2_json_num(s, "box_nms_thresh", &p.box_nms_thresh);
    s2_json_num(s, "crop_nms_thresh", &p.crop_nms_thresh);
    s2_json_num(s, "crop_overlap_ratio", &p.crop_overlap_ratio);
    if (s2_json_bool(s, "use_m2m", &b)) p.use_m2m = b;
    if (s2_json_bool(s, "multimask_output", &b)) p.multimask_output = b;
    return p;
}

/* Fixture bundle: amg.json, micro model, decoded image. */
typedef struct fx { s2_json *amg; sam2c_model *m; s2_image im; } fx;

static bool load_fx(fx *f) {
    memset(f, 0, sizeof *f);
    sam2c_set_num_threads(1); /* results do not depend on it; keeps the test quick on a busy machine */
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return false;
    }
    if (s2_json_parse_file(s2t_fx("amg/amg.json"), NULL, &f->amg) < 0) {
        s2t_fail(__FILE__, __LINE__, "amg.json: %s", sam2c_last_error());
        return false;
    }
    sam2c_model_params mp = sam2c_model_default_params();
    mp.config_path = s2t_fx("micro/config.json");
    s2_image_opts io;
    s2_image_opts_default(&io);
    io.apply_exif = false; /* the official generator reads the pixels as stored */
    if (sam2c_model_load(s2t_fx("micro/model.pt"), &mp, &f->m) < 0 ||
        s2_image_load(s2t_fx(s2_json_str(f->amg, "image")), &io, &f->im) < 0) {
        s2t_fail(__FILE__, __LINE__, "fixture load: %s", sam2c_last_error());
        return false;
    }
    return true;
}

static void free_fx(fx *f) {
    s2_json_free(f->amg);
    sam2c_model_free(f->m);
    s2_image_free(&f->im);
}

typedef struct prog { int calls, done, total; bool monotonic; } prog;
static int on_progress(void *user, int done, int total) {
    prog *p = user;
    if (done < p->done) p->monotonic = false;
    p->calls++, p->done = done, p->total = total;
    return 0;
}

TEST(amg_fixture_c_api) {
    fx f;
    if (!load_fx(&f)) { free_fx(&f); return; }
    sam2c_amg_params p = params_from(f.amg);
    prog pr = {0, 0, 0, true};
    p.progress = on_progress, p.progress_user = &pr;
    sam2c_amg *g = NULL;
    sam2c_amg_result res;
    REQUIRE(sam2c_amg_create(f.m, &p, &g) == 0);
    double t0 = s2_now_s();
    int rc = sam2c_amg_generate(g, f.im.px, f.im.w, f.im.h, &res);
    CHECK_MSG(rc == 0, "generate: %s", sam2c_last_error());
    if (rc == 0) {
        fprintf(stderr, "  generate: %.2f s\n", s2_now_s() - t0);
        int n_ref;
        rec *ref = read_masks_json(s2t_fx("amg/masks.json"), &n_ref);
        rec *got = from_result(&res);
        int64_t n_amg = 0;
        s2_json_int(f.amg, "num_masks", &n_amg);
        CHECK_EQ_INT(n_ref, n_amg);
        compare("C API", got, res.n_masks, ref, n_ref, f.amg, f.im.h, f.im.w);
        free_recs(got, res.n_masks);
        free_recs(ref, n_ref);
    }
    CHECK_EQ_INT(pr.total, 64);
    CHECK_EQ_INT(pr.done, 64);
    CHECK(pr.monotonic);
    sam2c_amg_free(g);
    free_fx(&f);
}

/* Appends s to buf as one single-quoted shell word. */
static void shell_word(char *buf, size_t cap, const char *s) {
    size_t n = strlen(buf);
    n += (size_t)snprintf(buf + n, cap - n, " '");
    for (; *s && n + 5 < cap; s++) {
        if (*s == '\'') n += (size_t)snprintf(buf + n, cap - n, "'\\''");
        else buf[n++] = *s, buf[n] = 0;
    }
    snprintf(buf + n, cap - n, "'");
}

/* Replaces {REF} / {OUT} in an argv word. */
static void substitute(char *out, size_t cap, const char *w, const char *ref, const char *outdir) {
    size_t n = 0;
    out[0] = 0;
    while (*w && n + 1 < cap) {
        const char *rep = !strncmp(w, "{REF}", 5) ? ref : !strncmp(w, "{OUT}", 5) ? outdir : NULL;
        if (rep) n += (size_t)snprintf(out + n, cap - n, "%s", rep), w += 5;
        else out[n++] = *w++, out[n] = 0;
    }
}

TEST(amg_fixture_cli) {
    fx f;
    if (!load_fx(&f)) { free_fx(&f); return; }
    char outdir[512], cmd[8192], word[4096];
    snprintf(outdir, sizeof outdir, "%s/auto_out", s2t_tmpdir());
    snprintf(cmd, sizeof cmd, "'%s'", s2t_bin());
    const s2_json *argv = s2_json_get(f.amg, "argv");
    for (int i = 0; argv && i < argv->n; i++) {
        substitute(word, sizeof word, argv->items[i].str, s2t_fixtures(), outdir);
        shell_word(cmd, sizeof cmd, word);
    }
    shell_word(cmd, sizeof cmd, "--overlay");
    shell_word(cmd, sizeof cmd, "--threads");
    shell_word(cmd, sizeof cmd, "1");
    char log[4096];
    int st = s2t_run(cmd, log, sizeof log);
    CHECK_MSG(st == 0, "sam2c auto exited %d:\n%s", st, log);
    if (st == 0) {
        char path[600];
        snprintf(path, sizeof path, "%s/masks.json", outdir);
        int n_got, n_ref;
        rec *got = read_masks_json(path, &n_got);
        rec *ref = read_masks_json(s2t_fx("amg/masks.json"), &n_ref);
        if (got && ref) compare("sam2c auto", got, n_got, ref, n_ref, f.amg, f.im.h, f.im.w);
        free_recs(got, n_got);
        free_recs(ref, n_ref);
        uint8_t *px = NULL;
        int w = 0, h = 0;
        snprintf(path, sizeof path, "%s/overlay.png", outdir);
        CHECK_MSG(s2_png_load_gray(path, &px, &w, &h) == 0, "overlay.png: %s", sam2c_last_error());
        CHECK(w == f.im.w && h == f.im.h);
        free(px);
    }
    free_fx(&f);
}

/* generate_crop_boxes computed here from its formula (sam2/utils/amg.py). */
static int expected_crops(int w, int h, int layers, double ratio, int (*b)[4]) {
    int n = 0, s = w < h ? w : h;
    b[n][0] = 0, b[n][1] = 0, b[n][2] = w, b[n][3] = h, n++;
    for (int i = 0; i < layers; i++) {
        int k = 1 << (i + 1), ov = (int)(ratio * s * (2.0 / k));
        int cw = (int)ceil((double)(ov * (k - 1) + w) / k), ch = (int)ceil((double)(ov * (k - 1) + h) / k);
        for (int a = 0; a < k; a++)
            for (int c = 0; c < k; c++) {
                int x0 = (cw - ov) * a, y0 = (ch - ov) * c;
                b[n][0] = x0, b[n][1] = y0, b[n][2] = x0 + cw < w ? x0 + cw : w;
                b[n][3] = y0 + ch < h ? y0 + ch : h;
                n++;
            }
    }
    return n;
}

TEST(amg_crop_layers) {
    fx f;
    if (!load_fx(&f)) { free_fx(&f); return; }
    sam2c_amg_params p = params_from(f.amg);
    p.crop_n_layers = 1;
    prog pr = {0, 0, 0, true};
    p.progress = on_progress, p.progress_user = &pr;
    int exp[5][4];
    int ne = expected_crops(f.im.w, f.im.h, 1, p.crop_overlap_ratio, exp);
    /* by hand for 400 x 267, ratio 512/1500: overlap int(91.136) = 91, crop 246 x 179 */
    const int hand[5][4] = {{0, 0, 400, 267}, {0, 0, 246, 179}, {0, 88, 246, 267},
                            {155, 0, 400, 179}, {155, 88, 400, 267}};
    REQUIRE(ne == 5);
    CHECK(memcmp(exp, hand, sizeof hand) == 0);
    sam2c_amg *g = NULL;
    sam2c_amg_result res;
    REQUIRE(sam2c_amg_create(f.m, &p, &g) == 0);
    int rc = sam2c_amg_generate(g, f.im.px, f.im.w, f.im.h, &res);
    CHECK_MSG(rc == 0, "generate: %s", sam2c_last_error());
    CHECK_EQ_INT(pr.total, 5 * 64);
    CHECK_EQ_INT(pr.done, 5 * 64);
    int per_crop[5] = {0};
    double prev_area = 0;
    for (int i = 0; rc == 0 && i < res.n_masks; i++) {
        const sam2c_amg_mask *m = &res.masks[i];
        int c = -1;
        for (int k = 0; k < ne; k++)
            if (m->crop_box[0] == exp[k][0] && m->crop_box[1] == exp[k][1] &&
                m->crop_box[2] == exp[k][2] - exp[k][0] && m->crop_box[3] == exp[k][3] - exp[k][1])
                c = k;
        CHECK_MSG(c >= 0, "mask %d: crop_box (%g, %g, %g, %g) is not a generate_crop_boxes box", i,
                  m->crop_box[0], m->crop_box[1], m->crop_box[2], m->crop_box[3]);
        if (c < 0) continue;
        per_crop[c]++;
        /* NMS across crops by 1 / crop area: smaller crops first */
        double area = m->crop_box[2] * m->crop_box[3];
        CHECK_MSG(area >= prev_area, "mask %d: crop area %g after %g", i, area, prev_area);
        prev_area = area;
        /* the prompt is a point of the crop's 8 x 8 grid: f32(grid * size) + offset */
        bool on_grid = false;
        int cw = exp[c][2] - exp[c][0], ch = exp[c][3] - exp[c][1];
        for (int a = 0; a < 8; a++)
            for (int b = 0; b < 8; b++)
                if ((float)((a + 0.5) / 8 * cw) + (float)exp[c][0] == (float)m->point_coords[0] &&
                    (float)((b + 0.5) / 8 * ch) + (float)exp[c][1] == (float)m->point_coords[1])
                    on_grid = true;
        CHECK_MSG(on_grid, "mask %d: point (%g, %g) is not on crop %d's grid", i, m->point_coords[0],
                  m->point_coords[1], c);
        CHECK(m->bbox[0] >= 0 && m->bbox[0] + m->bbox[2] < f.im.w && m->bbox[1] + m->bbox[3] < f.im.h);
    }
    fprintf(stderr, "  crop layers: %d masks, per crop %d %d %d %d %d\n", res.n_masks, per_crop[0],
            per_crop[1], per_crop[2], per_crop[3], per_crop[4]);
    CHECK(res.n_masks > 0);
    sam2c_amg_free(g);
    free_fx(&f);
}

TEST(amg_crop_boxes_and_grid) {
    int b[32][4], l[32];
    int n = s2_amg_crop_boxes(400, 267, 1, 512.0 / 1500.0, b, l, 32);
    const int hand[5][4] = {{0, 0, 400, 267}, {0, 0, 246, 179}, {0, 88, 246, 267},
                            {155, 0, 400, 179}, {155, 88, 400, 267}};
    REQUIRE(n == 5);
    CHECK(memcmp(b, hand, sizeof hand) == 0);
    CHECK(l[0] == 0 && l[1] == 1 && l[4] == 1);
    int e[21][4];
    int ne = expected_crops(1500, 1000, 2, 512.0 / 1500.0, e);
    n = s2_amg_crop_boxes(1500, 1000, 2, 512.0 / 1500.0, b, l, 32);
    REQUIRE(n == 21 && ne == 21);
    CHECK(memcmp(b, e, sizeof e) == 0);
    CHECK(l[5] == 2 && l[20] == 2);
    CHECK(s2_amg_crop_boxes(400, 267, 2, 0.34, b, l, 5) < 0); /* no room */
    double xy[2 * 64];
    s2_amg_point_grid(8, xy);
    for (int i = 0; i < 64; i++) {
        CHECK(xy[2 * i] == (i % 8 + 0.5) / 8); /* exact for n = 8 */
        CHECK(xy[2 * i + 1] == (i / 8 + 0.5) / 8);
    }
    s2_amg_point_grid(1, xy);
    CHECK(xy[0] == 0.5 && xy[1] == 0.5);
    s2_amg_point_grid(3, xy); /* linspace(1/6, 5/6, 3) */
    CHECK(xy[0] == 1.0 / 6 && xy[2] == 1.0 / 6 + (5.0 / 6 - 1.0 / 6) / 2 && xy[4] == 1.0 - 1.0 / 6);
}

TEST(amg_nms_semantics) {
    const float bx[] = {
        0, 0, 10, 10,    /* 0 A  0.9 */
        1, 1, 10, 10,    /* 1 B  0.8: IoU 81/100 with A */
        20, 20, 20, 20,  /* 2 C  0.95, zero area */
        20, 20, 20, 20,  /* 3 D  0.5, zero area: 0/0 never suppresses */
        0, 0, 10, 10,    /* 4 E  0.9: tie with A, later index -> suppressed by A */
        0, 0, 10, 5,     /* 5 F  0.7: IoU exactly 0.5 with A */
    };
    const float sc[] = {0.9f, 0.8f, 0.95f, 0.5f, 0.9f, 0.7f};
    int keep[6];
    int n = s2_amg_nms(bx, sc, 6, 0.7, keep);
    REQUIRE(n == 4);
    CHECK(keep[0] == 2 && keep[1] == 0 && keep[2] == 5 && keep[3] == 3);
    n = s2_amg_nms(bx, sc, 6, 0.5, keep); /* IoU 0.5 is not > 0.5: F kept */
    CHECK(n == 4 && keep[2] == 5);
    n = s2_amg_nms(bx, sc, 6, 0.49, keep);
    CHECK(n == 3 && keep[0] == 2 && keep[1] == 0 && keep[2] == 3);
    CHECK(s2_amg_nms(bx, sc, 0, 0.7, keep) == 0);
}

TEST(amg_box_edge_stability) {
    uint8_t cm[6 * 5] = {0}; /* w 6 columns of h 5 */
    int box[4];
    s2_amg_mask_box_colmajor(cm, 5, 6, box);
    CHECK(box[0] == 0 && box[1] == 0 && box[2] == 0 && box[3] == 0);
    cm[2 * 5 + 1] = cm[4 * 5 + 3] = 1; /* (x 2, y 1), (x 4, y 3) */
    s2_amg_mask_box_colmajor(cm, 5, 6, box);
    CHECK(box[0] == 2 && box[1] == 1 && box[2] == 4 && box[3] == 3); /* inclusive */
    const int crop[4] = {0, 0, 246, 179};
    CHECK(s2_amg_box_near_crop_edge((int[]){10, 10, 230, 100}, crop, 400, 267));  /* x1 near 246 */
    CHECK(!s2_amg_box_near_crop_edge((int[]){0, 0, 100, 100}, crop, 400, 267));  /* image edges */
    CHECK(!s2_amg_box_near_crop_edge((int[]){10, 10, 225, 158}, crop, 400, 267)); /* 21 px away */
    CHECK(s2_amg_box_near_crop_edge((int[]){10, 10, 100, 159}, crop, 400, 267));  /* 20 px: near */
    const int full[4] = {0, 0, 400, 267};
    CHECK(!s2_amg_box_near_crop_edge((int[]){390, 250, 399, 266}, full, 400, 267));
    const float lg[] = {-3.0f, -0.5f, 0.5f, 1.0f, 1.5f, 6.0f};
    CHECK(s2_amg_stability(lg, 6, 0.0, 1.0) == 2.0f / 5.0f); /* > 1: {1.5, 6}; > -1: 5 */
    CHECK(s2_amg_stability(lg, 6, 4.0, 1.0) == 1.0f);       /* > 5: {6}; > 3: {6} */
    CHECK(isnan(s2_amg_stability(lg, 6, 10.0, 1.0)));       /* empty union */
}

/* The fused resize is bit-identical to the reference kernel, both code paths, with the
 * stability counts of calculate_stability_score. */
TEST(amg_resize_bit_exact) {
    const int sz[][4] = {{64, 64, 267, 400}, {64, 64, 64, 64}, {64, 64, 30, 1001}, {16, 16, 5, 3}, {64, 32, 1200, 1800}};
    uint32_t seed = 12345;
    for (int c = 0; c < 5; c++) {
        int lh = sz[c][0], lw = sz[c][1], oh = sz[c][2], ow = sz[c][3];
        float *x = malloc(sizeof(float) * lh * lw), *ref = malloc(sizeof(float) * oh * ow),
              *got = malloc(sizeof(float) * oh * ow);
        for (int i = 0; i < lh * lw; i++) {
            seed = seed * 1664525u + 1013904223u;
            x[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * (i % 7 ? 20.0f : 2000.0f);
        }
        s2_ref_interp_bilinear(ref, x, 1, lh, lw, oh, ow, false, false);
        float st_ref = s2_amg_stability(ref, (int64_t)oh * ow, 0.5, 1.0);
        for (int portable = 0; portable < 2; portable++) {
            s2_amg_resize r;
            REQUIRE(s2_amg_resize_init(&r, lh, lw, oh, ow) == 0);
            r.portable = portable;
            int64_t nh, nl;
            memset(got, 0, sizeof(float) * oh * ow);
            s2_amg_resize_run(&r, x, got, 1.5f, -0.5f, &nh, &nl);
            CHECK_MSG(memcmp(got, ref, sizeof(float) * oh * ow) == 0, "%dx%d -> %dx%d (portable %d) differs",
                      lh, lw, oh, ow, portable);
            CHECK_MSG((float)nh / (float)nl == st_ref, "%dx%d -> %dx%d: stability %g vs %g", lh, lw, oh, ow,
                      (double)nh / (double)nl, (double)st_ref);
            s2_amg_resize_free(&r);
        }
        free(x), free(ref), free(got);
    }
}

TEST(amg_bad_params) {
    fx f;
    if (!load_fx(&f)) { free_fx(&f); return; }
    sam2c_amg *g = NULL;
    sam2c_amg_params p;
#define BAD(stmt)                                                                   \
    do {                                                                            \
        p = sam2c_amg_default_params();                                             \
        stmt;                                                                       \
        int rc_ = sam2c_amg_create(f.m, &p, &g);                                    \
        CHECK_MSG(rc_ == SAM2C_ERR_ARG && g == NULL, "%s: accepted (%d)", #stmt, rc_); \
        sam2c_amg_free(g);                                                          \
        g = NULL;                                                                   \
    } while (0)
    BAD(p.points_per_side = 0);
    BAD(p.points_per_side = -1);
    BAD(p.points_per_batch = 0);
    BAD(p.pred_iou_thresh = NAN);
    BAD(p.crop_n_layers = -1);
    BAD(p.crop_n_layers = S2_AMG_MAX_CROP_LAYERS + 1);
    BAD(p.crop_overlap_ratio = 1.0);
    BAD(p.crop_n_points_downscale_factor = 0);
    BAD((p.crop_n_layers = 2, p.crop_n_points_downscale_factor = 8, p.points_per_side = 32));
    BAD(p.min_mask_region_area = -5);
    const double grid[2] = {0.5, 0.5};
    const double *grids[1] = {grid};
    const int sizes[1] = {1};
    BAD((p.n_point_grids = 1, p.point_grids = grids, p.point_grid_sizes = sizes)); /* both given */
    BAD((p.points_per_side = 0, p.n_point_grids = 1, p.point_grids = grids, p.point_grid_sizes = sizes,
         p.crop_n_layers = 1)); /* one grid for two layers */
#undef BAD
    /* explicit grid: one point in the middle -> at most 3 masks, prompt at the centre */
    p = sam2c_amg_default_params();
    p.points_per_side = 0, p.n_point_grids = 1, p.point_grids = grids, p.point_grid_sizes = sizes;
    p.pred_iou_thresh = 0, p.stability_score_thresh = 0, p.box_nms_thresh = 1.0;
    REQUIRE(sam2c_amg_create(f.m, &p, &g) == 0);
    sam2c_amg_result res;
    CHECK(sam2c_amg_generate(g, f.im.px, f.im.w, f.im.h, &res) == 0);
    CHECK(res.n_masks >= 1 && res.n_masks <= 3);
    for (int i = 0; i < res.n_masks; i++)
        CHECK(res.masks[i].point_coords[0] == 200 && res.masks[i].point_coords[1] == 133.5);
    CHECK(sam2c_amg_generate(g, f.im.px, 0, 10, &res) == SAM2C_ERR_ARG);
    CHECK(res.n_masks == 0);
    sam2c_amg_free(g);
    free_fx(&f);
}

TEST(amg_cli_bad_flags) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    const char *bad[] = {"--points-per-side 0", "--pred-iou-thresh abc", "--multimask-output maybe",
                         "--crop-n-layers -1", "--frobnicate 3", "--box-nms-thresh"};
    for (int i = 0; i < 6; i++) {
        char cmd[4096], log[2048];
        snprintf(cmd, sizeof cmd, "'%s' auto -m '%s' -i '%s' -o '%s/bad' %s", s2t_bin(),
                 s2t_fx("micro/model.pt"), s2t_fx("micro/image/groceries/groceries_400x267.jpg"),
                 s2t_tmpdir(), bad[i]);
        int st = s2t_run(cmd, log, sizeof log);
        int lines = 0;
        for (const char *c = log; *c; c++) lines += *c == '\n';
        CHECK_MSG(st == 1 && lines == 1 && !strncmp(log, "sam2c auto: ", 12),
                  "'%s': exit %d, output:\n%s", bad[i], st, log);
    }
}

/* One prediction of the image predictor, turned into what the generator keeps. */
typedef struct pred { float iou, stab; uint8_t *mask; } pred;

static pred pred_from(const sam2c_masks *r, int k, double thr) {
    int64_t hw = (int64_t)r->width * r->height;
    const float *lg = r->masks + k * hw;
    pred p = {r->iou[k], s2_amg_stability(lg, hw, thr, 1.0), malloc((size_t)hw)};
    for (int64_t i = 0; i < hw; i++) p.mask[i] = lg[i] > (float)thr;
    return p;
}

/* The generator's record with that predicted IoU (records are sorted by it). */
static void check_same(const char *what, const sam2c_amg_result *res, const pred *p, int w, int h) {
    int best = -1;
    for (int i = 0; i < res->n_masks; i++)
        if (best < 0 || fabs(res->masks[i].predicted_iou - p->iou) < fabs(res->masks[best].predicted_iou - p->iou))
            best = i;
    REQUIRE(best >= 0);
    uint8_t *m = malloc((size_t)w * h);
    CHECK(sam2c_amg_mask_decode(&res->masks[best], m) == 0);
    double iou = mask_iou(m, p->mask, h, w, NULL);
    CHECK_MSG(fabs(res->masks[best].predicted_iou - p->iou) < 1e-5 && fabs(res->masks[best].stability_score - p->stab) < 1e-4 && iou >= 0.999,
              "%s: predicted IoU %.7f vs %.7f, stability %.6f vs %.6f, mask IoU %.6f", what,
              res->masks[best].predicted_iou, p->iou, res->masks[best].stability_score, p->stab, iou);
    free(m);
}

/* Generator settings that keep every mask of one prompt at the image centre. */
static sam2c_amg_params centre_params(const double *const *grids, const int *sizes) {
    sam2c_amg_params p = sam2c_amg_default_params();
    p.points_per_side = 0, p.n_point_grids = 1, p.point_grids = grids, p.point_grid_sizes = sizes;
    p.pred_iou_thresh = 0, p.stability_score_thresh = 0, p.box_nms_thresh = 1.0;
    return p;
}

/* Dump hook: keeps the decoder's unclamped low-res logits of every mask token. */
typedef struct grab { float *all; int64_t n; int T, side; } grab;
static void grab_dump(void *user, const char *name, const float *data, int ndim, const int64_t *shape) {
    grab *g = user;
    if (strcmp(name, "decoder.all_low_res_logits") || ndim != 4) return;
    g->n = shape[0] * shape[1] * shape[2] * shape[3];
    g->T = (int)shape[1], g->side = (int)shape[3];
    g->all = realloc(g->all, (size_t)g->n * sizeof(float));
    memcpy(g->all, data, (size_t)g->n * sizeof(float));
}

/* 8-connected component areas of x (h*w bytes): lab gets 1-based labels, area[label]. */
static int label8(const uint8_t *x, int h, int w, int *lab, int *area) {
    int n = 0, *stack = malloc(sizeof(int) * (size_t)h * w);
    memset(lab, 0, sizeof(int) * (size_t)h * w);
    for (int s0 = 0; s0 < h * w; s0++) {
        if (!x[s0] || lab[s0]) continue;
        int top = 0;
        lab[s0] = ++n, area[n] = 0, stack[top++] = s0;
        while (top) {
            int q = stack[--top], y = q / w, xx = q % w;
            area[n]++;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int yy = y + dy, xs = xx + dx;
                    if (yy < 0 || yy >= h || xs < 0 || xs >= w || !x[yy * w + xs] || lab[yy * w + xs]) continue;
                    lab[yy * w + xs] = n, stack[top++] = yy * w + xs;
                }
        }
    }
    free(stack);
    return n;
}

/* Official SAM2Transforms.postprocess_masks fill on one low-res plane: background
 * components (logit <= 0) of area <= a become 10, then foreground components of the
 * ORIGINAL logits (> 0) of area <= a become -10. */
static void official_fill(float *pl, int side, int a) {
    int n = side * side, *lab = malloc(sizeof(int) * n), *area = malloc(sizeof(int) * (n + 1));
    uint8_t *bg = malloc((size_t)n), *fg = malloc((size_t)n);
    for (int i = 0; i < n; i++) bg[i] = pl[i] <= 0.0f, fg[i] = pl[i] > 0.0f;
    label8(bg, side, side, lab, area);
    for (int i = 0; i < n; i++)
        if (lab[i] && area[lab[i]] <= a) pl[i] = 10.0f;
    label8(fg, side, side, lab, area);
    for (int i = 0; i < n; i++)
        if (lab[i] && area[lab[i]] <= a) pl[i] = -10.0f;
    free(lab), free(area), free(bg), free(fg);
}

/* use_m2m, multimask_output false and min_mask_region_area, one prompt at the image
 * centre, against the image predictor driven by hand as the official generator drives
 * _predict (for the fill: the decoder's raw logits, the official fill, the upsampling). */
TEST(amg_matches_image_predictor) {
    fx f;
    if (!load_fx(&f)) { free_fx(&f); return; }
    const double grid[2] = {0.5, 0.5};
    const double *grids[1] = {grid};
    const int sizes[1] = {1};
    const float pt[2] = {200.0f, 133.5f};
    const int32_t lab[1] = {1};
    sam2c_image_session *s = NULL;
    grab gb = {0};
    REQUIRE(sam2c_image_session_create(f.m, &s) == 0);
    s2_image_session_set_postprocess(s, 0, 0);
    REQUIRE(sam2c_image_set_rgb(s, f.im.px, f.im.w, f.im.h) == 0);
    s2_image_session_set_dump(s, grab_dump, &gb);
    int64_t hw = (int64_t)f.im.w * f.im.h;
    float *up = malloc(sizeof(float) * (size_t)hw);
    for (int mode = 0; mode < 3; mode++) {
        const char *what = mode == 0 ? "use_m2m" : mode == 1 ? "multimask_output false" : "min_mask_region_area 30";
        sam2c_amg_params p = centre_params(grids, sizes);
        p.use_m2m = mode == 0;
        p.multimask_output = mode != 1;
        p.min_mask_region_area = mode == 2 ? 30 : 0;
        sam2c_amg *g = NULL;
        sam2c_amg_result res;
        REQUIRE(sam2c_amg_create(f.m, &p, &g) == 0);
        int rc = sam2c_amg_generate(g, f.im.px, f.im.w, f.im.h, &res);
        CHECK_MSG(rc == 0, "%s: %s", what, sam2c_last_error());
        CHECK_EQ_INT(res.n_masks, mode == 1 ? 1 : 3);
        sam2c_prompt pr = {.n_points = 1, .points = pt, .labels = lab, .multimask = mode != 1, .return_logits = 1};
        sam2c_masks r;
        REQUIRE(sam2c_image_predict(s, &pr, &r) == 0);
        int n = r.n_masks, side = r.low_w;
        REQUIRE(side * side <= 256 * 256 && gb.side == side);
        static float low[3][256 * 256];
        for (int k = 0; k < n; k++) memcpy(low[k], r.low_res + k * side * side, sizeof(float) * side * side);
        if (mode == 2) /* multimask: tokens 1..3 of the raw logits */
            for (int k = 0; k < n; k++) memcpy(low[k], gb.all + (k + 1) * side * side, sizeof(float) * side * side);
        for (int k = 0; rc == 0 && k < n; k++) {
            pred q;
            if (mode == 0) { /* refine_with_m2m: single mask with its own low-res logits as input */
                sam2c_prompt p2 = pr;
                p2.multimask = 0, p2.mask_input = low[k], p2.mask_input_h = side, p2.mask_input_w = side;
                REQUIRE(sam2c_image_predict(s, &p2, &r) == 0);
                q = pred_from(&r, 0, 0.0);
            } else if (mode == 1) {
                q = pred_from(&r, k, 0.0);
            } else {
                official_fill(low[k], side, 30);
                s2_ref_interp_bilinear(up, low[k], 1, side, side, f.im.h, f.im.w, false, false);
                sam2c_masks one = r;
                one.masks = up;
                one.iou = r.iou + k;
                q = pred_from(&one, 0, 0.0);
            }
            check_same(what, &res, &q, f.im.w, f.im.h);
            free(q.mask);
        }
        sam2c_amg_free(g);
    }
    free(up);
    free(gb.all);
    sam2c_image_session_free(s);
    free_fx(&f);
}
