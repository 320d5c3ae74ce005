/* Synthetic inspection data: same seed -> same bytes (in memory and on disk, for any
 * thread count), masks non-empty / inside / disjoint, occluded parts lose exactly the
 * pixels of the parts above them, holes are not part, the lighting ramp has the
 * configured strength, anti-aliasing touches only edges, COCO RLE == PNG masks and the
 * trainer's loader reads the set, and the `sam2c synth` command end to end. */
#include "harness.h"
#include "synth/synth.h"
#include "core/s2.h"
#include "io/image.h"
#include "io/json.h"
#include "io/rle.h"
#include "train/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static s2_synth_params params(int w, int h) {
    s2_synth_params p;
    s2_synth_default(&p);
    p.w = w, p.h = h;
    return p;
}

static int64_t count(const uint8_t *m, size_t n) {
    int64_t c = 0;
    for (size_t i = 0; i < n; i++) c += m[i] != 0;
    return c;
}

/* Whole file into memory (NULL when missing). */
static uint8_t *slurp(const char *path, size_t *len) {
    uint8_t *b = NULL;
    return s2_read_file(path, &b, len) == SAM2C_OK ? b : NULL;
}

static bool same_file(const char *a, const char *b) {
    size_t la = 0, lb = 0;
    uint8_t *x = slurp(a, &la), *y = slurp(b, &lb);
    bool same = x && y && la == lb && !memcmp(x, y, la);
    free(x), free(y);
    return same;
}

TEST(synth_deterministic) {
    s2_synth_params p = params(256, 256);
    s2_synth_sample a, b, c;
    REQUIRE(s2_synth_generate(&p, 7, &a) == SAM2C_OK);
    REQUIRE(s2_synth_generate(&p, 7, &b) == SAM2C_OK);
    REQUIRE(s2_synth_generate(&p, 8, &c) == SAM2C_OK);
    size_t n = (size_t)256 * 256;
    CHECK_EQ_INT(a.n, b.n);
    CHECK(!memcmp(a.rgb, b.rgb, n * 3));
    CHECK(!memcmp(a.masks, b.masks, n * 4));
    CHECK(!memcmp(a.amodal, b.amodal, n * 4));
    CHECK(!memcmp(a.kind, b.kind, sizeof a.kind));
    CHECK(memcmp(a.rgb, c.rgb, n * 3) != 0);
    s2_synth_free(&a), s2_synth_free(&b), s2_synth_free(&c);

    // on disk: two thread counts, byte-identical files
    char d1[512], d2[512], f1[700], f2[700];
    snprintf(d1, sizeof d1, "%s/det1", s2t_tmpdir());
    snprintf(d2, sizeof d2, "%s/det2", s2t_tmpdir());
    s2_synth_write_params wp;
    s2_synth_write_default(&wp);
    p = params(96, 80);
    wp.threads = 1;
    REQUIRE(s2_synth_write_set(d1, &p, 42, 4, &wp) > 0);
    wp.threads = 2;
    REQUIRE(s2_synth_write_set(d2, &p, 42, 4, &wp) > 0);
    const char *rel[] = {"annotations.json", "images/synth_000000.jpg", "images/synth_000003.jpg",
                         "masks/synth_000002/0.png"};
    for (int i = 0; i < 4; i++) {
        snprintf(f1, sizeof f1, "%s/%s", d1, rel[i]);
        snprintf(f2, sizeof f2, "%s/%s", d2, rel[i]);
        CHECK_MSG(same_file(f1, f2), "%s differs between runs", rel[i]);
    }
}

/* Checks one sample's masks: non-empty, 0/1, off the border, disjoint, enough visible. */
static void check_masks(const s2_synth_sample *s, const s2_synth_params *p, unsigned kinds) {
    int w = s->w, h = s->h;
    size_t n = (size_t)w * h;
    int64_t min_px = S2_MAX(12, (int64_t)(0.004 * w * h));
    CHECK(s->n >= p->min_parts && s->n <= p->max_parts);
    uint8_t *cover = calloc(n, 1);
    for (int k = 0; k < s->n; k++) {
        const uint8_t *m = s->masks + k * n, *am = s->amodal + k * n;
        int64_t vis = count(m, n), all = count(am, n);
        CHECK_MSG(vis >= min_px, "part %d: %lld visible pixels", k, (long long)vis);
        CHECK_MSG(vis >= 0.35 * all, "part %d: %lld of %lld visible", k, (long long)vis, (long long)all);
        CHECK(kinds & (1u << s->kind[k]));
        bool border = false, binary = true;
        for (int x = 0; x < w; x++)
            border |= m[x] || m[(size_t)(h - 1) * w + x] || am[x] || am[(size_t)(h - 1) * w + x];
        for (int y = 0; y < h; y++) border |= m[(size_t)y * w] || m[(size_t)y * w + w - 1];
        int64_t overlap = 0;
        for (size_t i = 0; i < n; i++) {
            binary &= m[i] <= 1 && am[i] <= 1;
            overlap += m[i] && cover[i];
            if (m[i]) cover[i] = 1;
        }
        CHECK_MSG(overlap == 0, "part %d overlaps earlier masks in %lld pixels", k, (long long)overlap);
        CHECK_MSG(!border, "part %d touches the image border", k);
        CHECK(binary);
    }
    for (int k = s->n; k < 4; k++) CHECK_EQ_INT(count(s->masks + k * n, n) + count(s->amodal + k * n, n), 0);
    free(cover);
}

TEST(synth_masks_valid) {
    const int sizes[3][2] = {{256, 256}, {200, 150}, {64, 96}};
    for (int z = 0; z < 3; z++)
        for (uint64_t seed = 0; seed < 20; seed++) {
            s2_synth_params p = params(sizes[z][0], sizes[z][1]);
            if (seed % 4 == 1) p.kinds = (1u << S2_PART_CABLE) | (1u << S2_PART_NUT);
            if (seed % 4 == 2) p.min_parts = 3, p.max_parts = 4;
            if (seed % 4 == 3) p.min_parts = p.max_parts = 1, p.kinds = 1u << S2_PART_BRACKET;
            s2_synth_sample s;
            REQUIRE(s2_synth_generate(&p, seed, &s) == SAM2C_OK);
            check_masks(&s, &p, p.kinds);
            s2_synth_free(&s);
        }
    s2_synth_params p = params(1024, 1024); // the size of real models
    s2_synth_sample s;
    REQUIRE(s2_synth_generate(&p, 3, &s) == SAM2C_OK);
    check_masks(&s, &p, p.kinds);
    s2_synth_free(&s);
}

TEST(synth_occlusion) {
    int occluded = 0, holes = 0;
    for (uint64_t seed = 0; seed < 40; seed++) {
        s2_synth_params p = params(160, 160);
        if (seed >= 30) p.kinds = 1u << S2_PART_NUT; // every nut has a bore
        s2_synth_sample s;
        REQUIRE(s2_synth_generate(&p, seed, &s) == SAM2C_OK);
        size_t n = (size_t)s.w * s.h;
        for (int k = 0; k < s.n; k++) {
            const uint8_t *m = s.masks + k * n, *am = s.amodal + k * n;
            int64_t bad = 0, hidden = 0;
            for (size_t i = 0; i < n; i++) {
                bool above = false;
                for (int j = k + 1; j < s.n; j++) above |= s.amodal[j * n + i] != 0;
                bad += m[i] != (am[i] && !above);
                hidden += am[i] && above;
            }
            CHECK_MSG(bad == 0, "seed %llu part %d: %lld pixels differ from shape minus parts above",
                      (unsigned long long)seed, k, (long long)bad);
            occluded += hidden > 0;
            if (s.kind[k] == S2_PART_NUT && !hidden) { // the bore's centre is not part of the nut
                int x0 = s.w, x1 = -1, y0 = s.h, y1 = -1;
                for (int y = 0; y < s.h; y++)
                    for (int x = 0; x < s.w; x++)
                        if (m[(size_t)y * s.w + x])
                            x0 = S2_MIN(x0, x), x1 = S2_MAX(x1, x), y0 = S2_MIN(y0, y), y1 = S2_MAX(y1, y);
                CHECK(!m[(size_t)((y0 + y1) / 2) * s.w + (x0 + x1) / 2]);
                holes++;
            }
        }
        s2_synth_free(&s);
    }
    printf("  %d occluded parts in 40 images, %d whole nuts with an empty bore\n", occluded, holes);
    CHECK(occluded >= 10);
    CHECK(holes >= 5);
}

/* Sum of one channel-mean over columns [x0, x1) for every row. */
static double col_sum(const uint8_t *rgb, int w, int h, int x0, int x1) {
    double s = 0;
    for (int y = 0; y < h; y++)
        for (int x = x0; x < x1; x++)
            for (int c = 0; c < 3; c++) s += rgb[((size_t)y * w + x) * 3 + c];
    return s;
}

TEST(synth_gradient) {
    const double g = 0.2;
    double worst_col = 0, worst_half = 0;
    for (uint64_t seed = 0; seed < 6; seed++) {
        s2_synth_params p = params(256, 192);
        p.noise = 0, p.blur = 0, p.vignette = 0, p.gradient_angle = 0, p.gradient = g;
        s2_synth_params flat = p;
        flat.gradient = 0;
        s2_synth_sample a, b;
        REQUIRE(s2_synth_generate(&p, seed, &a) == SAM2C_OK);
        REQUIRE(s2_synth_generate(&flat, seed, &b) == SAM2C_OK);
        CHECK_NEAR(a.gradient_angle, 0, 0);
        // every column is lit by 1 + g * (x + 0.5 - w/2) / (w/2)
        for (int x = 0; x < 256; x++) {
            double want = 1 + g * (x + 0.5 - 128) / 128;
            double got = col_sum(a.rgb, 256, 192, x, x + 1) / col_sum(b.rgb, 256, 192, x, x + 1);
            worst_col = fmax(worst_col, fabs(got - want));
        }
        // halves: 1 - g/2 on the left, 1 + g/2 on the right
        double l = col_sum(a.rgb, 256, 192, 0, 128) / col_sum(b.rgb, 256, 192, 0, 128);
        double r = col_sum(a.rgb, 256, 192, 128, 256) / col_sum(b.rgb, 256, 192, 128, 256);
        worst_half = fmax(worst_half, fmax(fabs(l - (1 - g / 2)), fabs(r - (1 + g / 2))));
        CHECK(col_sum(a.rgb, 256, 192, 128, 256) > col_sum(a.rgb, 256, 192, 0, 128) * (1 + g / 2));
        s2_synth_free(&a), s2_synth_free(&b);
    }
    printf("  lighting ramp %.2f: worst column gain error %.4f, worst half-mean error %.4f\n", g,
           worst_col, worst_half);
    CHECK(worst_col < 0.01);
    CHECK(worst_half < 0.01);
    s2_synth_params p = params(128, 128); // random directions by default
    s2_synth_sample s;
    REQUIRE(s2_synth_generate(&p, 5, &s) == SAM2C_OK);
    CHECK(s.gradient_angle >= 0 && s.gradient_angle < 360);
    s2_synth_free(&s);
}

TEST(synth_image_stats) {
    double min_std = 1e9, min_contrast = 1e9;
    for (uint64_t seed = 0; seed < 20; seed++) {
        s2_synth_params p = params(192, 192);
        s2_synth_sample s;
        REQUIRE(s2_synth_generate(&p, seed, &s) == SAM2C_OK);
        size_t n = (size_t)s.w * s.h;
        double sum = 0, sq = 0;
        for (size_t i = 0; i < n * 3; i++) sum += s.rgb[i], sq += (double)s.rgb[i] * s.rgb[i];
        double mean = sum / (n * 3), sd = sqrt(sq / (n * 3) - mean * mean);
        CHECK_MSG(mean > 25 && mean < 230, "seed %llu: mean %.1f", (unsigned long long)seed, mean);
        min_std = fmin(min_std, sd);
        // each part against the bench right around it (within 3 px, no part)
        for (int k = 0; k < s.n; k++) {
            double in[3] = {0}, out[3] = {0};
            int64_t ni = 0, no = 0;
            for (int y = 0; y < s.h; y++)
                for (int x = 0; x < s.w; x++) {
                    size_t i = (size_t)y * s.w + x;
                    bool any = false, near = false;
                    for (int j = 0; j < s.n; j++) any |= s.amodal[j * n + i] != 0;
                    for (int dy = -3; dy <= 3 && !any && !near; dy++)
                        for (int dx = -3; dx <= 3 && !near; dx++) {
                            int xx = x + dx, yy = y + dy;
                            near = xx >= 0 && yy >= 0 && xx < s.w && yy < s.h &&
                                   s.masks[k * n + (size_t)yy * s.w + xx];
                        }
                    for (int c = 0; c < 3; c++) {
                        if (s.masks[k * n + i]) in[c] += s.rgb[i * 3 + c];
                        if (near && !any) out[c] += s.rgb[i * 3 + c];
                    }
                    ni += s.masks[k * n + i], no += near && !any;
                }
            double d = 0;
            for (int c = 0; c < 3; c++) d += pow(in[c] / ni - out[c] / S2_MAX(no, 1), 2);
            if (no > 0) min_contrast = fmin(min_contrast, sqrt(d));
        }
        s2_synth_free(&s);
    }
    printf("  lowest image std %.1f, lowest part-to-bench colour distance %.1f\n", min_std, min_contrast);
    CHECK(min_std > 10);
    CHECK(min_contrast > 15);
}

TEST(synth_antialias_edges_only) {
    s2_synth_params p = params(128, 128);
    p.blur = 0;
    s2_synth_params hard = p;
    hard.antialias = false;
    int64_t differ = 0;
    for (uint64_t seed = 0; seed < 6; seed++) {
        s2_synth_sample a, b;
        REQUIRE(s2_synth_generate(&p, seed, &a) == SAM2C_OK);
        REQUIRE(s2_synth_generate(&hard, seed, &b) == SAM2C_OK);
        size_t n = 128 * 128;
        CHECK(!memcmp(a.masks, b.masks, n * 4));
        for (int y = 1; y < 127; y++)
            for (int x = 1; x < 127; x++) {
                size_t i = (size_t)y * 128 + x;
                if (!memcmp(a.rgb + i * 3, b.rgb + i * 3, 3)) continue;
                differ++;
                bool edge = false; // some part's shape changes within the 3 x 3 neighbourhood
                for (int k = 0; k < a.n; k++)
                    for (int dy = -1; dy <= 1; dy++)
                        for (int dx = -1; dx <= 1; dx++)
                            edge |= a.amodal[k * n + i] != a.amodal[k * n + i + dy * 128 + dx];
                CHECK_MSG(edge, "seed %llu: pixel (%d, %d) changed away from any edge",
                          (unsigned long long)seed, x, y);
            }
        s2_synth_free(&a), s2_synth_free(&b);
    }
    CHECK(differ > 100);
}

/* Reads masks/<stem>/<k>.png as 0/1. */
static uint8_t *load_mask(const char *dir, const char *stem, int k, int w, int h, int64_t *area) {
    char path[700];
    snprintf(path, sizeof path, "%s/masks/%s/%d.png", dir, stem, k);
    uint8_t *px = NULL;
    int mw, mh;
    if (s2_png_load_gray(path, &px, &mw, &mh) != SAM2C_OK || mw != w || mh != h) { free(px); return NULL; }
    *area = 0;
    for (int i = 0; i < w * h; i++) {
        if (px[i] != 0 && px[i] != 255) { free(px); return NULL; }
        *area += px[i] = px[i] == 255;
    }
    return px;
}

TEST(synth_coco_roundtrip) {
    char dir[512], path[700];
    snprintf(dir, sizeof dir, "%s/coco", s2t_tmpdir());
    s2_synth_params p = params(96, 80);
    s2_synth_write_params wp;
    s2_synth_write_default(&wp);
    wp.format = "png", wp.prefix = "part";
    int objects = s2_synth_write_set(dir, &p, 9, 5, &wp);
    REQUIRE(objects >= 5);
    snprintf(path, sizeof path, "%s/annotations.json", dir);
    s2_json *j = NULL;
    REQUIRE(s2_json_parse_file(path, NULL, &j) == SAM2C_OK);
    const s2_json *imgs = s2_json_get(j, "images"), *anns = s2_json_get(j, "annotations"),
                  *cats = s2_json_get(j, "categories");
    REQUIRE(imgs && anns && cats && imgs->n == 5 && anns->n == objects && cats->n == S2_PART_COUNT);
    for (int c = 0; c < cats->n; c++) CHECK(!strcmp(s2_json_str(&cats->items[c], "name"), s2_part_name(c)));
    int kseen[6] = {0}, checked = 0;
    for (int a = 0; a < anns->n; a++) {
        const s2_json *an = &anns->items[a], *seg = s2_json_get(an, "segmentation");
        int64_t iid, cat, area;
        REQUIRE(s2_json_int(an, "image_id", &iid) && s2_json_int(an, "category_id", &cat) &&
                s2_json_int(an, "area", &area) && iid >= 1 && iid <= 5 && cat >= 1 && cat <= 6);
        int k = kseen[iid]++;
        char stem[64];
        snprintf(stem, sizeof stem, "part_%06d", (int)iid - 1);
        int64_t png_area;
        uint8_t *m = load_mask(dir, stem, k, 96, 80, &png_area), *dec = malloc(96 * 80);
        s2_rle r = {0};
        REQUIRE(m && seg && s2_rle_from_string(s2_json_str(seg, "counts"), 80, 96, &r) == SAM2C_OK);
        REQUIRE(s2_rle_decode(&r, dec) == SAM2C_OK);
        CHECK_EQ_INT(area, png_area);
        CHECK_EQ_INT(s2_rle_area(&r), png_area);
        CHECK(!memcmp(m, dec, 96 * 80));
        double bb[4];
        s2_rle_bbox(&r, bb);
        const s2_json *jb = s2_json_get(an, "bbox");
        for (int c = 0; jb && c < 4; c++) CHECK_NEAR(jb->items[c].num, bb[c], 0);
        checked++;
        s2_rle_free(&r), free(m), free(dec);
    }
    CHECK_EQ_INT(checked, objects);
    // the image files are the generator's pixels (PNG: lossless), in the listed order
    for (int i = 0; i < 5; i++) {
        s2_synth_sample s;
        REQUIRE(s2_synth_generate(&p, s2_synth_image_seed(9, "part", i), &s) == SAM2C_OK);
        snprintf(path, sizeof path, "%s/images/%s", dir, s2_json_str(&imgs->items[i], "file_name"));
        s2_image im = {0};
        REQUIRE(s2_image_load(path, NULL, &im) == SAM2C_OK);
        CHECK(im.w == 96 && im.h == 80 && !memcmp(im.px, s.rgb, 96 * 80 * 3));
        CHECK_EQ_INT(kseen[i + 1], s.n);
        s2_image_free(&im), s2_synth_free(&s);
    }
    s2_json_free(j);
    // the fine-tuning loader reads it
    s2_dataset d;
    REQUIRE(s2_dataset_load(dir, &d) == SAM2C_OK);
    CHECK_EQ_INT(d.n, 5);
    int total = 0;
    for (int i = 0; i < d.n; i++) total += d.im[i].n_obj;
    CHECK_EQ_INT(total, objects);
    s2_image im;
    CHECK(s2_dataset_image(&d, 0, &im) == SAM2C_OK);
    s2_image_free(&im), s2_dataset_free(&d);
}

TEST(synth_jpeg_files) {
    char dir[512], path[700];
    snprintf(dir, sizeof dir, "%s/jpg", s2t_tmpdir());
    s2_synth_params p = params(128, 96);
    REQUIRE(s2_synth_write_set(dir, &p, 3, 2, NULL) > 0);
    s2_synth_sample s;
    REQUIRE(s2_synth_generate(&p, s2_synth_image_seed(3, "synth", 1), &s) == SAM2C_OK);
    snprintf(path, sizeof path, "%s/images/synth_000001.jpg", dir);
    s2_image im = {0};
    REQUIRE(s2_image_load(path, NULL, &im) == SAM2C_OK);
    REQUIRE(im.w == 128 && im.h == 96);
    double mad = 0;
    for (int i = 0; i < 128 * 96 * 3; i++) mad += abs((int)im.px[i] - (int)s.rgb[i]);
    mad /= 128 * 96 * 3;
    printf("  JPEG q92 mean abs difference %.2f grey levels\n", mad);
    CHECK(mad < 4);
    s2_image_free(&im), s2_synth_free(&s);
}

TEST(synth_bad_params) {
    s2_synth_params p = params(16, 256);
    CHECK(s2_synth_check(&p) == SAM2C_ERR_ARG);
    p = params(256, 256), p.min_parts = 3, p.max_parts = 2;
    CHECK(s2_synth_check(&p) == SAM2C_ERR_ARG);
    p = params(256, 256), p.kinds = 0;
    CHECK(s2_synth_check(&p) == SAM2C_ERR_ARG);
    p = params(256, 256), p.gradient = 1.5;
    CHECK(s2_synth_check(&p) == SAM2C_ERR_ARG);
    p = params(256, 256), p.noise = NAN;
    CHECK(s2_synth_check(&p) == SAM2C_ERR_ARG);
    s2_synth_sample s;
    CHECK(s2_synth_generate(&p, 1, &s) == SAM2C_ERR_ARG && s.rgb == NULL);
    unsigned m;
    CHECK(s2_part_mask_parse("disc,GEAR", &m) == SAM2C_OK && m == ((1u << S2_PART_DISC) | (1u << S2_PART_GEAR)));
    CHECK(s2_part_mask_parse("disc,bolt", &m) == SAM2C_ERR_ARG);
    CHECK(strstr(sam2c_last_error(), "bolt") != NULL);
    CHECK(s2_part_mask_parse("disc,,nut", &m) == SAM2C_ERR_ARG);
    CHECK(s2_bg_mask_parse("wood,fabric", &m) == SAM2C_OK && m == ((1u << S2_BG_WOOD) | (1u << S2_BG_FABRIC)));
    p = params(64, 64);
    s2_synth_write_params wp;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/bad", s2t_tmpdir());
    s2_synth_write_default(&wp), wp.format = "bmp";
    CHECK(s2_synth_write_set(dir, &p, 1, 1, &wp) == SAM2C_ERR_ARG);
    s2_synth_write_default(&wp), wp.quality = 0;
    CHECK(s2_synth_write_set(dir, &p, 1, 1, &wp) == SAM2C_ERR_ARG);
    s2_synth_write_default(&wp), wp.prefix = "a/b";
    CHECK(s2_synth_write_set(dir, &p, 1, 1, &wp) == SAM2C_ERR_ARG);
    char file[600];
    snprintf(file, sizeof file, "%s/plainfile", s2t_tmpdir());
    FILE *f = fopen(file, "w");
    if (f) fclose(f);
    CHECK(s2_synth_write_set(file, &p, 1, 1, NULL) == SAM2C_ERR_IO);
}

TEST(synth_speed) {
    s2_synth_params p = params(256, 256);
    clock_t c0 = clock();
    for (uint64_t i = 0; i < 60; i++) {
        s2_synth_sample s;
        REQUIRE(s2_synth_generate(&p, i, &s) == SAM2C_OK);
        s2_synth_free(&s);
    }
    double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    printf("  60 images of 256x256: %.2f s of CPU\n", cpu);
    CHECK(cpu < 2.0);
}

/* Runs the built command; output in log. */
static int run_cli(const char *args, char *log, size_t n) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' synth %s", s2t_bin(), args);
    return s2t_run(cmd, log, n);
}

TEST(synth_cli) {
    if (access(s2t_bin(), X_OK) != 0) { s2t_skip("sam2c binary not built"); return; }
    char d1[512], d2[512], args[1200], log[4096], a[700], b[700];
    snprintf(d1, sizeof d1, "%s/cli1", s2t_tmpdir());
    snprintf(d2, sizeof d2, "%s/cli2", s2t_tmpdir());
    const char *opts = "--train 3 --val 2 --size 64x48 --seed 5 --kinds disc,gear";
    snprintf(args, sizeof args, "-o '%s' %s", d1, opts);
    int rc = run_cli(args, log, sizeof log);
    CHECK_MSG(rc == 0, "rc %d: %s", rc, log);
    CHECK(strstr(log, "synth train: 3 images") && strstr(log, "synth val: 2 images"));
    snprintf(args, sizeof args, "-o '%s' %s --quiet --threads 1", d2, opts);
    CHECK_EQ_INT(run_cli(args, log, sizeof log), 0);
    CHECK_EQ_INT(strlen(log), 0);
    for (int s = 0; s < 2; s++) {
        const char *split = s ? "val" : "train";
        snprintf(a, sizeof a, "%s/%s/annotations.json", d1, split);
        snprintf(b, sizeof b, "%s/%s/annotations.json", d2, split);
        CHECK_MSG(same_file(a, b), "%s differs between two runs of one seed", split);
        s2_json *j = NULL;
        REQUIRE(s2_json_parse_file(a, NULL, &j) == SAM2C_OK);
        const s2_json *imgs = s2_json_get(j, "images"), *anns = s2_json_get(j, "annotations");
        REQUIRE(imgs && anns);
        CHECK_EQ_INT(imgs->n, s ? 2 : 3);
        CHECK(!strncmp(s2_json_str(&imgs->items[0], "file_name"), split, strlen(split)));
        for (int i = 0; i < anns->n; i++) {
            int64_t cat = 0;
            s2_json_int(&anns->items[i], "category_id", &cat);
            CHECK(cat == S2_PART_DISC + 1 || cat == S2_PART_GEAR + 1);
        }
        snprintf(a, sizeof a, "%s/%s/images/%s_000001.jpg", d1, split, split);
        CHECK(access(a, R_OK) == 0);
        snprintf(a, sizeof a, "%s/%s/masks/%s_000001/0.png", d1, split, split);
        CHECK(access(a, R_OK) == 0);
        s2_json_free(j);
    }
    snprintf(args, sizeof args, "-o '%s' -n 1 --kinds disc,bolt", d1);
    CHECK_EQ_INT(run_cli(args, log, sizeof log), 2);
    CHECK(strstr(log, "unknown part kind 'bolt'") != NULL);
    CHECK_EQ_INT(run_cli("--train 2", log, sizeof log), 2);
    CHECK(strstr(log, "-o DIR") != NULL);
    snprintf(args, sizeof args, "-o '%s' -n 1 --size 10", d1);
    CHECK_EQ_INT(run_cli(args, log, sizeof log), 2);
    CHECK_EQ_INT(run_cli("--help", log, sizeof log), 0);
    CHECK(strstr(log, "annotations.json") != NULL);
}
