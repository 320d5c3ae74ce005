/* libFuzzer target: COCO RLE primitives on raw bytes. Layout: mode (1 byte), h and w
 * (2 bytes each, little-endian, up to 1023), then a payload:
 *   mode 0: compressed counts string (pycocotools rleFrString);
 *   mode 1: polygon of int16 pairs / 4 (frPoly within the coordinate range);
 *   mode 2: polygon of raw doubles (NaN, infinities, huge values: the range checks);
 *   mode 3: uncompressed counts, uint32 each.
 * A decoded RLE must decode to a mask whose encoding decodes to the same mask. Sizes are
 * capped at 1023 so that each run (decode, encode, decode) stays fast. */
#include "fuzz_common.h"
#include "io/rle.h"
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* decode -> encode -> decode reproduces the mask; area and IoU agree with the pixels. */
static void check(const s2_rle *r) {
    size_t hw = (size_t)r->h * (size_t)r->w;
    uint8_t *m = malloc(hw + 1), *m2 = malloc(hw + 1);
    FZ_ASSERT(m && m2);
    if (s2_rle_decode(r, m) == 0) {
        int64_t fg = 0;
        for (size_t i = 0; i < hw; i++) fg += m[i];
        FZ_ASSERT(fg == s2_rle_area(r));
        s2_rle e;
        FZ_ASSERT(s2_rle_encode(m, r->h, r->w, &e) == 0);
        FZ_ASSERT(s2_rle_decode(&e, m2) == 0 && memcmp(m, m2, hw) == 0);
        int64_t inter, uni;
        FZ_ASSERT(s2_rle_inter_union(r, &e, &inter, &uni) == 0 && inter == fg && uni == fg);
        double b1[4], b2[4];
        s2_rle_bbox(&e, b2);
        s2_rle_bbox(r, b1);
        (void)b1;
        s2_rle_free(&e);
    }
    free(m);
    free(m2);
}

/* Compressed string payload (NUL-terminated copy). */
static int from_string(const uint8_t *p, size_t n, int h, int w, s2_rle *r) {
    char *s = malloc(n + 1);
    FZ_ASSERT(s);
    memcpy(s, p, n);
    s[n] = 0;
    int rc = s2_rle_from_string(s, h, w, r);
    free(s);
    return rc;
}

/* Polygon payload: int16 pairs scaled by 1/4, or raw doubles. */
static int from_polygon(const uint8_t *p, size_t n, int h, int w, bool raw, s2_rle *r) {
    size_t k = raw ? n / 8 : n / 2;
    double *xy = malloc((k ? k : 1) * sizeof *xy);
    FZ_ASSERT(xy);
    for (size_t i = 0; i < k; i++) {
        if (raw) memcpy(&xy[i], p + 8 * i, 8);
        else xy[i] = (int16_t)(p[2 * i] | p[2 * i + 1] << 8) / 4.0;
    }
    int rc = s2_rle_from_polygon(xy, (int)(k / 2), h, w, r);
    free(xy);
    return rc;
}

/* Uncompressed counts payload. */
static int from_counts(const uint8_t *p, size_t n, int h, int w, s2_rle *r) {
    size_t k = n / 4;
    int64_t *c = malloc((k ? k : 1) * sizeof *c);
    FZ_ASSERT(c);
    for (size_t i = 0; i < k; i++)
        c[i] = (int64_t)((uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                         (uint32_t)p[4 * i + 3] << 24);
    int rc = s2_rle_from_counts(c, (int)k, h, w, r);
    free(c);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 5) return 0;
    int mode = data[0] & 3;
    int h = (data[1] | data[2] << 8) & 1023, w = (data[3] | data[4] << 8) & 1023;
    const uint8_t *p = data + 5;
    size_t n = size - 5;
    s2_rle r;
    int rc = mode == 0 ? from_string(p, n, h, w, &r)
           : mode == 3 ? from_counts(p, n, h, w, &r)
                       : from_polygon(p, n, h, w, mode == 2, &r);
    if (rc != 0) {
        FZ_ASSERT(strchr(sam2c_last_error(), '\n') == NULL);
        return 0;
    }
    FZ_ASSERT(r.h == h && r.w == w);
    check(&r);
    char *s = s2_rle_to_string(&r);
    FZ_ASSERT(s);
    s2_rle back;
    FZ_ASSERT(s2_rle_from_string(s, h, w, &back) == 0 && back.n == r.n);
    s2_rle_free(&back);
    free(s);
    s2_rle_free(&r);
    return 0;
}
