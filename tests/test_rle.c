/* COCO RLE: pycocotools known answers (strings, polygons, bbox), the 1,694 SA-V RLEs
 * re-encoded byte for byte, decoded masks against the evaluator's ground-truth PNGs,
 * the AMG fixture's areas / boxes, and hostile strings. */
#include "harness.h"
#include "io/rle.h"
#include "io/image.h"
#include "io/json.h"
#include "core/s2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Expects an RLE with exactly these runs. */
static void check_runs(const s2_rle *r, const uint32_t *want, int n) {
    CHECK_EQ_INT(r->n, n);
    for (int i = 0; i < n && i < r->n; i++)
        CHECK_MSG(r->counts[i] == want[i], "run %d: %u, want %u", i, r->counts[i], want[i]);
}

/* The pixel bounding box of a row-major mask, [x, y, w, h] (zeros when empty). */
static void mask_bbox(const uint8_t *m, int h, int w, double bb[4]) {
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (m[(size_t)y * w + x]) {
                x0 = S2_MIN(x0, x), x1 = S2_MAX(x1, x);
                y0 = S2_MIN(y0, y), y1 = S2_MAX(y1, y);
            }
    if (x1 < 0) { bb[0] = bb[1] = bb[2] = bb[3] = 0; return; }
    bb[0] = x0, bb[1] = y0, bb[2] = x1 - x0 + 1, bb[3] = y1 - y0 + 1;
}

TEST(rle_encode_known) {
    /* 2 x 3 mask, row-major; column-major order: (0,0)=0 (1,0)=1 | 1 1 | 0 0 */
    const uint8_t m[6] = {0, 1, 0,
                          1, 1, 0};
    s2_rle r;
    REQUIRE(s2_rle_encode(m, 2, 3, &r) == 0);
    check_runs(&r, (const uint32_t[]){1, 3, 2}, 3);
    char *s = s2_rle_to_string(&r);
    CHECK(s && strcmp(s, "132") == 0);
    free(s);
    CHECK_EQ_INT(s2_rle_area(&r), 3);
    double bb[4];
    s2_rle_bbox(&r, bb);
    CHECK(bb[0] == 0 && bb[1] == 0 && bb[2] == 2 && bb[3] == 2);
    uint8_t back[6];
    REQUIRE(s2_rle_decode(&r, back) == 0);
    CHECK(memcmp(back, m, 6) == 0);
    s2_rle_free(&r);
    const uint8_t ones[4] = {1, 7, 255, 1}; /* nonzero = foreground; starts with a 0 run */
    REQUIRE(s2_rle_encode(ones, 2, 2, &r) == 0);
    check_runs(&r, (const uint32_t[]){0, 4}, 2);
    s = s2_rle_to_string(&r);
    CHECK(s && strcmp(s, "04") == 0);
    free(s);
    s2_rle_free(&r);
    REQUIRE(s2_rle_encode(NULL, 0, 5, &r) == 0); /* empty mask: one zero run */
    check_runs(&r, (const uint32_t[]){0}, 1);
    s2_rle_free(&r);
}

/* Strings from pycocotools' rleToString (deltas from counts[i-2] for i > 2, negative
 * deltas, multi-chunk values); decoding gives the runs back. */
TEST(rle_string_known) {
    static const struct { const char *s; int h, w; uint32_t c[16]; int n; } k[] = {
        {"123O", 1, 7, {1, 2, 3, 1}, 4},
        {"0h3", 10, 12, {0, 120}, 2},
        {"g05500000i1", 10, 12, {23, 5, 5, 5, 5, 5, 5, 5, 62}, 9},
        {";194L3MO2M2O1OW1", 10, 12, {11, 1, 9, 5, 5, 8, 2, 7, 4, 4, 6, 3, 7, 2, 46}, 15},
        {"`[T253ka`n0OP^_QO5", 1, 1070017, {70000, 5, 3, 1000000, 2, 0, 7}, 7},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        s2_rle r;
        if (s2_rle_from_string(k[i].s, k[i].h, k[i].w, &r) != 0) {
            s2t_fail(__FILE__, __LINE__, "%s: %s", k[i].s, sam2c_last_error());
            continue;
        }
        check_runs(&r, k[i].c, k[i].n);
        char *s = s2_rle_to_string(&r);
        CHECK_MSG(s && strcmp(s, k[i].s) == 0, "re-encoded %s as %s", k[i].s, s ? s : "(null)");
        free(s);
        s2_rle_free(&r);
    }
}

/* Hostile strings must fail with a message, never crash or over-allocate. */
TEST(rle_string_hostile) {
    static const struct { const char *s; int h, w; const char *msg; } bad[] = {
        {"", 3, 4, "runs sum to 0, expected 3 x 4 = 12"},
        {"04", 1, 5, "runs sum to 4"},
        {"0h3", 10, 11, "runs exceed"},
        {"0h3!", 10, 12, "bad character 0x21 at offset 3"},
        {"0h3~", 10, 12, "bad character 0x7e"},
        {"0 h3", 10, 12, "bad character 0x20 at offset 1"},
        {"0h", 10, 12, "unterminated"},
        {"oooooooooooooo1", 10, 12, "value too long"},
        {"O", 10, 12, "out of range"},            /* -1 as the first run */
        {"oooooo?", 10, 12, "out of range"},      /* 2^34 - 1 */
        {"1O", 1, 1, "out of range"},             /* second run negative */
        {"\xc3\xa9", 1, 1, "bad character 0xc3"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s2_rle r = {.n = 99};
        int rc = s2_rle_from_string(bad[i].s, bad[i].h, bad[i].w, &r);
        CHECK_MSG(rc == SAM2C_ERR_FORMAT, "'%s' gave %d", bad[i].s, rc);
        CHECK_MSG(strstr(sam2c_last_error(), bad[i].msg) != NULL, "'%s': '%s' lacks '%s'",
                  bad[i].s, sam2c_last_error(), bad[i].msg);
        CHECK(r.counts == NULL && r.n == 0);
    }
    s2_rle r;
    CHECK(s2_rle_from_string("0", 70000, 70000, &r) == SAM2C_ERR_LIMIT);
    CHECK(s2_rle_from_string("0", -1, 3, &r) == SAM2C_ERR_ARG);
    CHECK(s2_rle_from_string(NULL, 1, 1, &r) == SAM2C_ERR_ARG);
    int64_t c1[] = {3, -1, 4}, c2[] = {3, 1, 4}, c3[] = {3, 5000000000LL};
    CHECK(s2_rle_from_counts(c1, 3, 2, 3, &r) == SAM2C_ERR_FORMAT);
    CHECK(s2_rle_from_counts(c2, 3, 2, 3, &r) == SAM2C_ERR_FORMAT);
    CHECK(s2_rle_from_counts(c3, 2, 2, 3, &r) == SAM2C_ERR_FORMAT);
    REQUIRE(s2_rle_from_counts(c2, 3, 2, 4, &r) == 0);
    check_runs(&r, (const uint32_t[]){3, 1, 4}, 3);
    s2_rle_free(&r);
    /* a hand-built RLE whose runs do not cover the mask is refused by decode */
    uint32_t runs[] = {2, 2};
    s2_rle hand = {.h = 2, .w = 3, .counts = runs, .n = 2};
    uint8_t m[6];
    CHECK(s2_rle_decode(&hand, m) == SAM2C_ERR_FORMAT);
}

/* Polygons rasterised as pycocotools' frPoly (answers from its C code). */
TEST(rle_polygon_known) {
    s2_rle r;
    const double tri[] = {1.2, 0.7, 8.6, 2.4, 3.1, 9.3};
    REQUIRE(s2_rle_from_polygon(tri, 3, 10, 12, &r) == 0);
    check_runs(&r, (const uint32_t[]){11, 1, 9, 5, 5, 8, 2, 7, 4, 4, 6, 3, 7, 2, 46}, 15);
    double bb[4];
    s2_rle_bbox(&r, bb);
    CHECK(bb[0] == 1 && bb[1] == 1 && bb[2] == 7 && bb[3] == 8);
    s2_rle_free(&r);
    /* frBbox([2, 3, 4, 5]) = polygon (2,3) (2,8) (6,8) (6,3): columns 2..5, rows 3..7 */
    const double box[] = {2, 3, 2, 8, 6, 8, 6, 3};
    REQUIRE(s2_rle_from_polygon(box, 4, 10, 12, &r) == 0);
    CHECK_EQ_INT(s2_rle_area(&r), 20);
    uint8_t m[120];
    REQUIRE(s2_rle_decode(&r, m) == 0);
    int bad = 0;
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 12; x++) bad += m[y * 12 + x] != (x >= 2 && x <= 5 && y >= 3 && y <= 7);
    CHECK_EQ_INT(bad, 0);
    /* IoU with columns 4..7, rows 5..9: intersection 2 x 3, union 20 + 20 - 6 */
    uint8_t m2[120] = {0};
    for (int y = 5; y <= 9; y++)
        for (int x = 4; x <= 7; x++) m2[y * 12 + x] = 1;
    s2_rle r2;
    REQUIRE(s2_rle_encode(m2, 10, 12, &r2) == 0);
    int64_t in, un;
    REQUIRE(s2_rle_inter_union(&r, &r2, &in, &un) == 0);
    CHECK_EQ_INT(in, 6);
    CHECK_EQ_INT(un, 34);
    s2_rle_free(&r2);
    REQUIRE(s2_rle_encode(m2, 12, 10, &r2) == 0);
    CHECK(s2_rle_inter_union(&r, &r2, &in, &un) == SAM2C_ERR_SHAPE);
    s2_rle_free(&r2);
    s2_rle_free(&r);
    const double cover[] = {-5, -5, 40, -5, 40, 40, -5, 40};
    REQUIRE(s2_rle_from_polygon(cover, 4, 10, 12, &r) == 0);
    check_runs(&r, (const uint32_t[]){0, 120}, 2);
    s2_rle_free(&r);
    const double huge[] = {0, 0, 1e300, 0, 5, 5};
    CHECK(s2_rle_from_polygon(huge, 3, 10, 12, &r) == SAM2C_ERR_FORMAT);
    const double nan_pt[] = {0, 0, NAN, 1};
    CHECK(s2_rle_from_polygon(nan_pt, 2, 10, 12, &r) == SAM2C_ERR_FORMAT);
}

/* Decodes one {"size": [h, w], "counts": "..."} object; returns 0 on success. */
static int json_rle(const s2_json *o, s2_rle *r, const char **str) {
    const s2_json *size = s2_json_get(o, "size");
    *str = s2_json_str(o, "counts");
    if (!size || size->type != S2_JARR || size->n != 2 || !*str) return -1;
    return s2_rle_from_string(*str, (int)s2_json_at(size, 0)->num, (int)s2_json_at(size, 1)->num, r);
}

/* Every RLE of both SA-V example files: decode, re-encode the mask, same string. */
TEST(rle_sav_roundtrip) {
    if (!s2t_data()) { s2t_skip("sample data missing"); return; }
    const char *files[2] = {"sav/sav_000001_manual.json", "sav/sav_000001_auto.json"};
    int total = 0, same = 0;
    for (int fi = 0; fi < 2; fi++) {
        s2_json *j;
        if (s2_json_parse_file(s2t_dat(files[fi]), NULL, &j) != 0) {
            s2t_fail(__FILE__, __LINE__, "%s", sam2c_last_error());
            continue;
        }
        const s2_json *ml = s2_json_get(j, "masklet");
        for (int t = 0; ml && t < ml->n; t++) {
            const s2_json *fr = s2_json_at(ml, t);
            for (int k = 0; k < fr->n; k++) {
                s2_rle r, e;
                const char *str;
                total++;
                if (json_rle(s2_json_at(fr, k), &r, &str) != 0) {
                    s2t_fail(__FILE__, __LINE__, "%s [%d][%d]: %s", files[fi], t, k, sam2c_last_error());
                    continue;
                }
                uint8_t *m = malloc((size_t)r.h * r.w);
                if (s2_rle_decode(&r, m) == 0 && s2_rle_encode(m, r.h, r.w, &e) == 0) {
                    char *s = s2_rle_to_string(&e);
                    same += s && strcmp(s, str) == 0;
                    free(s);
                    s2_rle_free(&e);
                }
                free(m);
                s2_rle_free(&r);
            }
        }
        s2_json_free(j);
    }
    CHECK_EQ_INT(total, 1694);
    CHECK_EQ_INT(same, total);
}

/* masklet[t][obj] decoded equals the evaluator's ground truth gt/<obj>/<4t>.png (0/255). */
TEST(rle_sav_matches_gt_png) {
    if (!s2t_data() || !s2t_fixtures()) { s2t_skip("data or fixtures missing"); return; }
    s2_json *j;
    REQUIRE(s2_json_parse_file(s2t_dat("sav/sav_000001_manual.json"), NULL, &j) == 0);
    const s2_json *ml = s2_json_get(j, "masklet");
    int compared = 0;
    int64_t bad = 0, fg = 0;
    for (int t = 0; ml && t < ml->n; t += 3) {
        const s2_json *fr = s2_json_at(ml, t);
        for (int k = 0; k < fr->n; k++) {
            s2_rle r;
            const char *str;
            if (json_rle(s2_json_at(fr, k), &r, &str) != 0) { bad++; continue; }
            char rel[96];
            snprintf(rel, sizeof rel, "eval/gt/sav_000001/%03d/%05d.png", k, 4 * t);
            uint8_t *png = NULL, *m = malloc((size_t)r.h * r.w);
            int w, h;
            if (s2_png_load_gray(s2t_fx(rel), &png, &w, &h) == 0 && w == r.w && h == r.h &&
                s2_rle_decode(&r, m) == 0) {
                for (int64_t i = 0; i < (int64_t)w * h; i++) {
                    bad += (png[i] != 0) != (m[i] != 0) || (png[i] != 0 && png[i] != 255);
                    fg += m[i] != 0;
                }
                compared++;
            } else {
                s2t_fail(__FILE__, __LINE__, "%s: %s", rel, sam2c_last_error());
            }
            free(png);
            free(m);
            s2_rle_free(&r);
        }
    }
    CHECK_EQ_INT(compared, 41 * 5);
    CHECK_EQ_INT(bad, 0);
    CHECK(fg > 1000000); /* the comparison saw real objects */
    s2_json_free(j);
}

/* AMG fixture: area as recorded; s2_rle_bbox = the decoded mask's pixel box; the
 * record's box is batched_mask_to_box's (w = x1 - x0: one less than the extent). */
TEST(rle_amg_masks) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    s2_json *j;
    REQUIRE(s2_json_parse_file(s2t_fx("amg/masks.json"), NULL, &j) == 0);
    CHECK_EQ_INT(j->n, 13);
    for (int i = 0; i < j->n; i++) {
        const s2_json *rec = s2_json_at(j, i), *bbox = s2_json_get(rec, "bbox");
        s2_rle r;
        const char *str;
        double area;
        if (json_rle(s2_json_get(rec, "segmentation"), &r, &str) != 0 ||
            !s2_json_num(rec, "area", &area) || !bbox || bbox->n != 4) {
            s2t_fail(__FILE__, __LINE__, "mask %d: %s", i, sam2c_last_error());
            continue;
        }
        CHECK_EQ_INT(r.h, 267);
        CHECK_EQ_INT(r.w, 400);
        CHECK_EQ_INT(s2_rle_area(&r), (int64_t)area);
        uint8_t *m = malloc((size_t)r.h * r.w);
        REQUIRE(s2_rle_decode(&r, m) == 0);
        double got[4], want[4];
        s2_rle_bbox(&r, got);
        mask_bbox(m, r.h, r.w, want);
        for (int c = 0; c < 4; c++) CHECK_MSG(got[c] == want[c], "mask %d bbox[%d] %g vs %g", i, c, got[c], want[c]);
        for (int c = 0; c < 4; c++)
            CHECK_MSG(s2_json_at(bbox, c)->num == want[c] - (c >= 2), "mask %d record bbox[%d]", i, c);
        int64_t in, un;
        CHECK(s2_rle_inter_union(&r, &r, &in, &un) == 0 && in == (int64_t)area && un == in);
        free(m);
        s2_rle_free(&r);
    }
    s2_json_free(j);
}

/* toBbox against the pixel box on pseudo-random masks of many shapes. */
TEST(rle_bbox_random) {
    unsigned seed = 12345;
    for (int it = 0; it < 500; it++) {
        seed = seed * 1103515245u + 12345u;
        int h = 1 + (seed >> 8) % 23, w = 1 + (seed >> 16) % 19;
        uint8_t *m = calloc((size_t)h * w, 1);
        int density = (int)((seed >> 4) % 5);
        for (int i = 0; i < h * w; i++) {
            seed = seed * 1103515245u + 12345u;
            m[i] = density && ((seed >> 10) % 17) < (unsigned)density;
        }
        s2_rle r;
        REQUIRE(s2_rle_encode(m, h, w, &r) == 0);
        double got[4], want[4];
        s2_rle_bbox(&r, got);
        mask_bbox(m, h, w, want);
        CHECK(memcmp(got, want, sizeof got) == 0);
        s2_rle_free(&r);
        free(m);
    }
}
