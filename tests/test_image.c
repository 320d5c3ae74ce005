/* Images: JPEG decoding byte-identical to PIL 9.4 (truck, video frames), PIL's bicubic
 * resize bit-exact on the video frames, EXIF orientations, grey / CMYK JPEGs, every PNG
 * layout, PNG writing, and hostile inputs (truncation, corruption, limits). */
#include "harness.h"
#include "io/image.h"
#include "io/tensorfile.h"
#include "core/s2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

/* Opens a fixture safetensors file and returns the U8 tensor `name` of the given rank. */
static const s2_tf_entry *fx_u8(s2_tensorfile **f, const char *rel, const char *name, int ndim) {
    if (!*f && s2_tensorfile_open(s2t_fx(rel), f) != 0) {
        s2t_fail(__FILE__, __LINE__, "open %s: %s", rel, sam2c_last_error());
        return NULL;
    }
    const s2_tf_entry *e = s2_tensorfile_find(*f, name);
    if (!e || e->t.dtype != S2_U8 || e->t.ndim != ndim) {
        s2t_fail(__FILE__, __LINE__, "%s: %s missing or not U8 rank %d", rel, name, ndim);
        return NULL;
    }
    return e;
}

/* Counts differing bytes and prints the first one. */
static int64_t count_diff(const char *what, const uint8_t *got, const uint8_t *ref, int64_t n) {
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++)
        if (got[i] != ref[i]) {
            if (first < 0) first = i;
            bad++;
        }
    if (bad)
        fprintf(stderr, "  %s: %lld of %lld bytes differ; first at %lld: %d vs %d\n", what,
                (long long)bad, (long long)n, (long long)first, got[first], ref[first]);
    return bad;
}

TEST(jpeg_truck_matches_pil) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    s2_tensorfile *f = NULL;
    const s2_tf_entry *e = fx_u8(&f, "micro/image/truck/image.safetensors", "input.rgb_u8", 3);
    s2_image im;
    s2_image_opts o;
    s2_image_opts_default(&o);
    if (e && s2_image_load(s2t_fx("micro/image/truck/truck_450x300.jpg"), &o, &im) == 0) {
        CHECK_EQ_INT(im.w, 450);
        CHECK_EQ_INT(im.h, 300);
        CHECK(e->t.shape[0] == im.h && e->t.shape[1] == im.w && e->t.shape[2] == 3);
        CHECK_EQ_INT(count_diff("truck", im.px, e->t.data, (int64_t)im.w * im.h * 3), 0);
        s2_image_free(&im);
    } else if (e) {
        s2t_fail(__FILE__, __LINE__, "decode: %s", sam2c_last_error());
    }
    s2_tensorfile_free(f);
}

/* Decodes every video frame like PIL and resizes it to 256x256 like PIL's resize:
 * frame 0's decode and all 12 resized frames must be byte-identical. */
TEST(jpeg_frames_and_pil_resize_bit_exact) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    s2_tensorfile *f = NULL;
    const s2_tf_entry *dec = fx_u8(&f, "micro/video/inputs.safetensors", "frame0.decoded_rgb_u8", 3);
    const s2_tf_entry *rs = fx_u8(&f, "micro/video/inputs.safetensors", "frames.resized_u8", 4);
    if (!dec || !rs) { s2_tensorfile_free(f); return; }
    CHECK(rs->t.shape[0] == 12 && rs->t.shape[1] == 256 && rs->t.shape[2] == 256);
    uint8_t *out = malloc(256 * 256 * 3);
    int64_t bad_total = 0;
    for (int k = 0; k < 12; k++) {
        char rel[64];
        snprintf(rel, sizeof rel, "micro/video/frames/%05d.jpg", k);
        s2_image im;
        if (s2_image_load(s2t_fx(rel), NULL, &im) != 0) {
            s2t_fail(__FILE__, __LINE__, "%s: %s", rel, sam2c_last_error());
            continue;
        }
        CHECK(im.w == 480 && im.h == 270);
        if (k == 0)
            CHECK_EQ_INT(count_diff("frame0 decode", im.px, dec->t.data, 270 * 480 * 3), 0);
        CHECK_EQ_INT(s2_pil_resize_bicubic_u8_checked(out, 256, 256, im.px, im.w, im.h, 3), 0);
        bad_total += count_diff(rel, out, (const uint8_t *)rs->t.data + (size_t)k * 256 * 256 * 3,
                                256 * 256 * 3);
        s2_image_free(&im);
    }
    CHECK_EQ_INT(bad_total, 0);
    free(out);
    s2_tensorfile_free(f);
}

TEST(pil_resize_identity_and_args) {
    uint8_t src[2 * 3 * 3], dst[2 * 3 * 3];
    for (int i = 0; i < 18; i++) src[i] = (uint8_t)(i * 13);
    CHECK_EQ_INT(s2_pil_resize_bicubic_u8_checked(dst, 3, 2, src, 3, 2, 3), 0);
    CHECK(memcmp(src, dst, sizeof src) == 0);
    /* a constant image stays constant whatever the scale (coefficients sum to 1) */
    uint8_t flat[40 * 30];
    memset(flat, 77, sizeof flat);
    uint8_t small[7 * 5];
    CHECK_EQ_INT(s2_pil_resize_bicubic_u8_checked(small, 7, 5, flat, 40, 30, 1), 0);
    for (int i = 0; i < 35; i++) CHECK_EQ_INT(small[i], 77);
    CHECK(s2_pil_resize_bicubic_u8_checked(dst, 0, 2, src, 3, 2, 3) == SAM2C_ERR_ARG);
    CHECK(s2_pil_resize_bicubic_u8_checked(dst, 3, 2, src, 3, 2, 5) == SAM2C_ERR_ARG);
}

/* ---- EXIF ---- */

/* A TIFF block (optionally with the "Exif\0\0" prefix) holding IFD0 with one orientation
 * entry of the given type; returns its length. */
static size_t make_exif(uint8_t *b, bool le, int orient, int type, bool prefix) {
    size_t p = 0;
    if (prefix) { memcpy(b, "Exif\0\0", 6); p = 6; }
    uint8_t *t = b + p;
#define W16(o, v) (le ? (t[o] = (uint8_t)(v), t[o + 1] = (uint8_t)((v) >> 8)) \
                      : (t[o] = (uint8_t)((v) >> 8), t[o + 1] = (uint8_t)(v)))
#define W32(o, v) (le ? (W16(o, (v) & 0xffff), W16(o + 2, (uint32_t)(v) >> 16)) \
                      : (W16(o, (uint32_t)(v) >> 16), W16(o + 2, (v) & 0xffff)))
    memcpy(t, le ? "II*\0" : "MM\0*", 4);
    W32(4, 8);
    W16(8, 2);                                  /* two entries */
    W16(10, 0x010f); W16(12, 2); W32(14, 4); memcpy(t + 18, "Cam", 4); /* Make */
    W16(22, 0x0112); W16(24, type); W32(26, 1);
    memset(t + 30, 0, 4);
    if (type == 3) W16(30, orient);
    else W32(30, orient);
    W32(34, 0);
#undef W16
#undef W32
    return p + 38;
}

TEST(exif_orientation_parse) {
    uint8_t b[64];
    for (int o = 1; o <= 8; o++) {
        CHECK_EQ_INT(s2_exif_orientation(b, make_exif(b, true, o, 3, true)), o);
        CHECK_EQ_INT(s2_exif_orientation(b, make_exif(b, false, o, 3, false)), o);
        CHECK_EQ_INT(s2_exif_orientation(b, make_exif(b, false, o, 4, true)), o);
    }
    size_t n = make_exif(b, true, 6, 3, false);
    for (size_t cut = 0; cut < n; cut++) /* truncated: entry incomplete -> none */
        CHECK(s2_exif_orientation(b, cut) == (cut >= 34 ? 6 : 0));
    CHECK_EQ_INT(s2_exif_orientation(b, make_exif(b, true, 6, 5, false)), 0); /* RATIONAL */
    CHECK_EQ_INT(s2_exif_orientation(b, make_exif(b, true, 9, 3, false)), 0);
    n = make_exif(b, true, 6, 3, false);
    b[4] = 0xf0; /* IFD offset past the end */
    CHECK_EQ_INT(s2_exif_orientation(b, n), 0);
    b[4] = 8; b[8] = 0xff; b[9] = 0xff; /* 65535 entries claimed */
    CHECK_EQ_INT(s2_exif_orientation(b, n), 6);
    memcpy(b, "XX*\0", 4);
    CHECK_EQ_INT(s2_exif_orientation(b, n), 0);
    CHECK_EQ_INT(s2_exif_orientation(NULL, 0), 0);
}

/* 3 x 2 image, pixel value = letter a..f (row-major), and PIL's result per orientation. */
TEST(exif_orientation_transforms) {
    static const char *want[9] = {
        "", "abcdef", "cbafed", "fedcba", "defabc", "adbecf", "daebfc", "fcebda", "cfbead"};
    for (int o = 1; o <= 8; o++) {
        s2_image im = {3, 2, malloc(18)};
        for (int i = 0; i < 6; i++) memset(im.px + 3 * i, 'a' + i, 3);
        REQUIRE(s2_image_apply_orientation(&im, o) == 0);
        CHECK_EQ_INT(im.w, o >= 5 ? 2 : 3);
        CHECK_EQ_INT(im.h, o >= 5 ? 3 : 2);
        char got[7] = {0};
        for (int i = 0; i < 6; i++) {
            got[i] = (char)im.px[3 * i];
            CHECK(im.px[3 * i + 1] == im.px[3 * i] && im.px[3 * i + 2] == im.px[3 * i]);
        }
        CHECK_MSG(strcmp(got, want[o]) == 0, "orientation %d: %s, want %s", o, got, want[o]);
        s2_image_free(&im);
    }
}

/* ---- synthetic JPEGs ---- */

/* Compresses (h, w, comps) pixels to JPEG in memory; app1 (may be NULL) is written as an
 * APP1 segment, then the g_extra APP1 segments. space: JCS_GRAYSCALE / JCS_RGB / JCS_CMYK
 * input; jpeg_space the coded one. */
static const uint8_t *g_extra[4];
static size_t g_extra_len[4];
static int g_n_extra;
static bool g_progressive; /* make_jpeg writes progressive scans when set */
static uint8_t *make_jpeg(const uint8_t *px, int w, int h, int comps, J_COLOR_SPACE space,
                          J_COLOR_SPACE jpeg_space, const uint8_t *app1, size_t app1_len,
                          unsigned long *len) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    unsigned char *buf = NULL;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = space;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, jpeg_space);
    jpeg_set_quality(&c, 100, TRUE);
    for (int i = 0; i < c.num_components; i++) c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
    if (g_progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    if (app1) jpeg_write_marker(&c, JPEG_APP0 + 1, app1, (unsigned)app1_len);
    for (int i = 0; i < g_n_extra; i++)
        jpeg_write_marker(&c, JPEG_APP0 + 1, g_extra[i], (unsigned)g_extra_len[i]);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = (JSAMPROW)(px + (size_t)c.next_scanline * w * comps);
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return buf;
}

/* A 16 x 8 RGB pattern whose every pixel differs from its neighbours. */
static uint8_t *pattern(int w, int h) {
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = p + ((size_t)y * w + x) * 3;
            q[0] = (uint8_t)(x * 16), q[1] = (uint8_t)(y * 32), q[2] = (uint8_t)((x + y) * 8);
        }
    return p;
}

TEST(jpeg_exif_orientation_6) {
    uint8_t *p = pattern(16, 8), app1[64];
    for (int le = 0; le < 2; le++) {
        size_t n = make_exif(app1, le, 6, 3, true);
        unsigned long len = 0;
        uint8_t *jpg = make_jpeg(p, 16, 8, 3, JCS_RGB, JCS_YCbCr, app1, n, &len);
        s2_image a, b;
        s2_image_opts o;
        s2_image_opts_default(&o);
        REQUIRE(s2_image_decode(jpg, len, "exif.jpg", &o, &a) == 0);
        o.apply_exif = false;
        REQUIRE(s2_image_decode(jpg, len, "exif.jpg", &o, &b) == 0);
        CHECK(a.w == 8 && a.h == 16 && b.w == 16 && b.h == 8);
        int bad = 0; /* rotated 90 CW: out(x, y) = in(y, H - 1 - x) */
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 8; x++)
                bad += memcmp(a.px + (y * 8 + x) * 3, b.px + ((7 - x) * 16 + y) * 3, 3) != 0;
        CHECK_EQ_INT(bad, 0);
        s2_image_free(&a);
        s2_image_free(&b);
        free(jpg);
    }
    free(p);
}

/* Like PIL, the first APP1 segment starting "Exif\0\0" is the one used. */
TEST(jpeg_exif_first_segment_wins) {
    uint8_t *p = pattern(16, 8), e3[64], e6[64];
    static const uint8_t xmp[] = "http://ns.adobe.com/xap/1.0/\0<x:xmpmeta tiff:Orientation=\"6\"/>";
    size_t n3 = make_exif(e3, true, 3, 3, true), n6 = make_exif(e6, false, 6, 3, true);
    g_extra[0] = e3, g_extra_len[0] = n3, g_extra[1] = e6, g_extra_len[1] = n6;
    g_n_extra = 2;
    unsigned long len;
    uint8_t *jpg = make_jpeg(p, 16, 8, 3, JCS_RGB, JCS_YCbCr, xmp, sizeof xmp, &len);
    g_n_extra = 0;
    s2_image a, b;
    s2_image_opts o;
    s2_image_opts_default(&o);
    REQUIRE(s2_image_decode(jpg, len, "two.jpg", &o, &a) == 0);
    o.apply_exif = false;
    REQUIRE(s2_image_decode(jpg, len, "two.jpg", &o, &b) == 0);
    CHECK(a.w == 16 && a.h == 8);
    int bad = 0; /* rotated 180 */
    for (int i = 0; i < 16 * 8; i++) bad += memcmp(a.px + 3 * i, b.px + 3 * (16 * 8 - 1 - i), 3) != 0;
    CHECK_EQ_INT(bad, 0);
    s2_image_free(&a);
    s2_image_free(&b);
    free(jpg);
    free(p);
}

/* Progressive scans carry the same coefficients: the decode equals the baseline one. */
TEST(jpeg_progressive) {
    uint8_t *p = pattern(16, 8);
    unsigned long l1, l2;
    uint8_t *j1 = make_jpeg(p, 16, 8, 3, JCS_RGB, JCS_YCbCr, NULL, 0, &l1);
    g_progressive = true;
    uint8_t *j2 = make_jpeg(p, 16, 8, 3, JCS_RGB, JCS_YCbCr, NULL, 0, &l2);
    g_progressive = false;
    s2_image a, b;
    REQUIRE(s2_image_decode(j1, l1, "base.jpg", NULL, &a) == 0);
    REQUIRE(s2_image_decode(j2, l2, "prog.jpg", NULL, &b) == 0);
    CHECK(a.w == b.w && a.h == b.h && memcmp(a.px, b.px, 16 * 8 * 3) == 0);
    s2_image_free(&b);
    CHECK(s2_image_decode(j2, l2 - 40, "prog.jpg", NULL, &b) != 0);
    s2_image_free(&a);
    s2_image_free(&b);
    free(j1);
    free(j2);
    free(p);
}

TEST(jpeg_gray_and_cmyk) {
    uint8_t g[8 * 8];
    for (int i = 0; i < 64; i++) g[i] = 90;
    unsigned long len;
    uint8_t *jpg = make_jpeg(g, 8, 8, 1, JCS_GRAYSCALE, JCS_GRAYSCALE, NULL, 0, &len);
    s2_image im;
    REQUIRE(s2_image_decode(jpg, len, "g.jpg", NULL, &im) == 0);
    for (int i = 0; i < 64 * 3; i++) CHECK_EQ_INT(im.px[i], 90);
    s2_image_free(&im);
    free(jpg);
    /* Adobe CMYK stores inverted inks; C 0, M 100, Y 200, K 50 -> PIL's cmyk2rgb:
     * nk = 205, R = 205, G = 205 - round(100*205/255) = 125, B = 205 - 161 = 44 */
    uint8_t c[8 * 8 * 4];
    for (int i = 0; i < 64; i++) c[4 * i] = 255, c[4 * i + 1] = 155, c[4 * i + 2] = 55, c[4 * i + 3] = 205;
    jpg = make_jpeg(c, 8, 8, 4, JCS_CMYK, JCS_CMYK, NULL, 0, &len);
    REQUIRE(s2_image_decode(jpg, len, "cmyk.jpg", NULL, &im) == 0);
    for (int i = 0; i < 64; i++) {
        CHECK_EQ_INT(im.px[3 * i], 205);
        CHECK_EQ_INT(im.px[3 * i + 1], 125);
        CHECK_EQ_INT(im.px[3 * i + 2], 44);
    }
    s2_image_free(&im);
    free(jpg);
    /* YCCK: libjpeg converts back to (inverted) CMYK; the colour transform rounds, so
     * only the range of the result is known exactly: within 1 of the CMYK result. */
    jpg = make_jpeg(c, 8, 8, 4, JCS_CMYK, JCS_YCCK, NULL, 0, &len);
    REQUIRE(s2_image_decode(jpg, len, "ycck.jpg", NULL, &im) == 0);
    CHECK_NEAR(im.px[0], 205, 1);
    CHECK_NEAR(im.px[1], 125, 1);
    CHECK_NEAR(im.px[2], 44, 1);
    s2_image_free(&im);
    free(jpg);
}

/* Every truncation of a JPEG and many corruptions: errors (never crashes); a cut inside
 * the entropy-coded data must say "truncated JPEG". */
TEST(jpeg_hostile) {
    uint8_t *p = pattern(16, 8);
    unsigned long len;
    uint8_t *jpg = make_jpeg(p, 16, 8, 3, JCS_RGB, JCS_YCbCr, NULL, 0, &len);
    s2_image im;
    for (unsigned long cut = 0; cut < len - 2; cut++) {
        int rc = s2_image_decode(jpg, cut, "cut.jpg", NULL, &im);
        CHECK_MSG(rc != 0, "cut at %lu decoded", cut);
        if (cut > len / 2)
            CHECK_MSG(strstr(sam2c_last_error(), "cut.jpg: truncated JPEG") != NULL, "%s",
                      sam2c_last_error());
        CHECK(im.px == NULL);
    }
    uint8_t *bad = malloc(len);
    unsigned seed = 1;
    for (int t = 0; t < 300; t++) {
        memcpy(bad, jpg, len);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            bad[2 + (seed >> 8) % (len - 2)] ^= (uint8_t)(1u << ((seed >> 4) & 7));
        }
        if (s2_image_decode(bad, len, "flip.jpg", NULL, &im) == 0) s2_image_free(&im);
    }
    free(bad);
    s2_image_opts o;
    s2_image_opts_default(&o);
    o.max_pixels = 100;
    CHECK(s2_image_decode(jpg, len, "big.jpg", &o, &im) == SAM2C_ERR_LIMIT);
    CHECK_MSG(strcmp(sam2c_last_error(),
                     "big.jpg: image of 16 x 8 = 128 pixels exceeds the limit of 100") == 0,
              "%s", sam2c_last_error());
    for (unsigned long i = 2; i + 8 < len; i++) /* SOF0 claims 65000 x 65000 */
        if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
            jpg[i + 5] = jpg[i + 7] = 0xFD, jpg[i + 6] = jpg[i + 8] = 0xE8;
            break;
        }
    CHECK(s2_image_decode(jpg, len, "huge.jpg", NULL, &im) == SAM2C_ERR_LIMIT);
    CHECK_MSG(strstr(sam2c_last_error(), "65000 x 65000 = 4225000000 pixels exceeds the limit of 50000000"),
              "%s", sam2c_last_error());
    static const uint8_t junk[] = "GIF89a....";
    CHECK(s2_image_decode(junk, sizeof junk, "x.gif", NULL, &im) == SAM2C_ERR_FORMAT);
    CHECK(strcmp(sam2c_last_error(), "x.gif: not a JPEG or PNG image") == 0);
    static const uint8_t soi_only[] = {0xFF, 0xD8, 0xFF, 0xD9};
    CHECK(s2_image_decode(soi_only, 4, "e.jpg", NULL, &im) != 0);
    free(jpg);
    free(p);
    CHECK(s2_image_load("/nonexistent/x.jpg", NULL, &im) == SAM2C_ERR_IO);
}

/* ---- PNG ---- */

/* Writes a PNG with libpng directly: rows of rowbytes bytes as given; an eXIf chunk when
 * g_png_exif is set. */
static uint8_t *g_png_exif;
static size_t g_png_exif_len;
static bool g_png_trns; /* adds a tRNS chunk (palette alphas / a transparent grey) */
static uint8_t *make_png(const uint8_t *rows, int w, int h, int bit_depth, int color_type,
                         int interlace, const png_color *pal, int npal, size_t *len) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    char *mem = NULL;
    FILE *f = open_memstream(&mem, len);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, bit_depth, color_type, interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, info, pal, npal);
    if (g_png_trns) {
        static const png_byte alphas[2] = {0, 128};
        png_color_16 tc = {.gray = 1};
        if (pal) png_set_tRNS(png, info, alphas, 2, NULL);
        else png_set_tRNS(png, info, NULL, 0, &tc);
    }
    if (g_png_exif) png_set_eXIf_1(png, info, (png_uint_32)g_png_exif_len, g_png_exif);
    png_write_info(png, info);
    size_t rb = png_get_rowbytes(png, info);
    png_bytep *rp = malloc(sizeof(png_bytep) * (size_t)h);
    for (int y = 0; y < h; y++) rp[y] = (png_bytep)(uintptr_t)(rows + (size_t)y * rb);
    png_write_image(png, rp);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(rp);
    fclose(f);
    return (uint8_t *)mem;
}

/* Decodes a PNG to RGB and checks every pixel against (r, g, b) = want(x, y). */
static void check_png_rgb(const char *what, const uint8_t *png, size_t len, int w, int h,
                          const uint8_t *want) {
    s2_image im;
    int orient;
    if (s2_png_decode_rgb(png, len, what, NULL, &im, &orient) != 0) {
        s2t_fail(__FILE__, __LINE__, "%s: %s", what, sam2c_last_error());
        return;
    }
    CHECK(im.w == w && im.h == h);
    CHECK_MSG(count_diff(what, im.px, want, (int64_t)w * h * 3) == 0, "%s differs", what);
    s2_image_free(&im);
}

TEST(png_layouts) {
    enum { W = 5, H = 4 };
    uint8_t want[W * H * 3], gw[W * H], rows[W * H * 8];
    size_t len;
    for (int il = 0; il < 2; il++) {
        /* 16-bit RGBA: high byte kept, alpha dropped */
        for (int i = 0; i < W * H; i++)
            for (int c = 0; c < 4; c++) {
                int v = (i * 37 + c * 71) & 0xffff;
                rows[i * 8 + 2 * c] = (uint8_t)(v * 3 >> 1), rows[i * 8 + 2 * c + 1] = (uint8_t)v;
                if (c < 3) want[i * 3 + c] = (uint8_t)(v * 3 >> 1);
            }
        uint8_t *p = make_png(rows, W, H, 16, PNG_COLOR_TYPE_RGB_ALPHA, il, NULL, 0, &len);
        check_png_rgb("rgba16", p, len, W, H, want);
        free(p);
        /* 8-bit grey + alpha: grey replicated; s2_png_decode_gray keeps the grey */
        for (int i = 0; i < W * H; i++) {
            rows[2 * i] = (uint8_t)(i * 11), rows[2 * i + 1] = 7;
            want[3 * i] = want[3 * i + 1] = want[3 * i + 2] = gw[i] = (uint8_t)(i * 11);
        }
        p = make_png(rows, W, H, 8, PNG_COLOR_TYPE_GRAY_ALPHA, il, NULL, 0, &len);
        check_png_rgb("la8", p, len, W, H, want);
        uint8_t *g;
        int gwid, ghei;
        REQUIRE(s2_png_decode_gray(p, len, "la8", &g, &gwid, &ghei) == 0);
        CHECK(gwid == W && ghei == H && memcmp(g, gw, W * H) == 0);
        free(g);
        free(p);
        /* 2-bit palette: colours looked up; the grey decode returns indices */
        png_color pal[4] = {{10, 20, 30}, {40, 50, 60}, {70, 80, 90}, {200, 210, 220}};
        memset(rows, 0, sizeof rows);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int idx = (x + 2 * y) & 3;
                rows[y * 2 + x / 4] |= (uint8_t)(idx << (6 - 2 * (x % 4)));
                memcpy(want + (y * W + x) * 3, &pal[idx], 3);
                gw[y * W + x] = (uint8_t)idx;
            }
        g_png_trns = il; /* transparency is dropped like alpha */
        p = make_png(rows, W, H, 2, PNG_COLOR_TYPE_PALETTE, il, pal, 4, &len);
        check_png_rgb("pal2", p, len, W, H, want);
        REQUIRE(s2_png_decode_gray(p, len, "pal2", &g, &gwid, &ghei) == 0);
        CHECK(memcmp(g, gw, W * H) == 0);
        free(g);
        free(p);
        /* 1-bit grey: 0 / 255 */
        memset(rows, 0, sizeof rows);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int bit = (x ^ y) & 1;
                rows[y * 1 + 0] |= (uint8_t)(bit << (7 - x));
                memset(want + (y * W + x) * 3, bit ? 255 : 0, 3);
            }
        p = make_png(rows, W, H, 1, PNG_COLOR_TYPE_GRAY, il, NULL, 0, &len);
        check_png_rgb("grey1", p, len, W, H, want);
        free(p);
        g_png_trns = false;
        /* 16-bit grey: high byte */
        for (int i = 0; i < W * H; i++) {
            rows[2 * i] = (uint8_t)(250 - i), rows[2 * i + 1] = 0xff;
            memset(want + 3 * i, 250 - i, 3);
            gw[i] = (uint8_t)(250 - i);
        }
        p = make_png(rows, W, H, 16, PNG_COLOR_TYPE_GRAY, il, NULL, 0, &len);
        check_png_rgb("grey16", p, len, W, H, want);
        REQUIRE(s2_png_decode_gray(p, len, "grey16", &g, &gwid, &ghei) == 0);
        CHECK(memcmp(g, gw, W * H) == 0);
        free(g);
        free(p);
    }
}

TEST(png_write_roundtrip) {
    enum { W = 31, H = 17 };
    uint8_t *rgb = pattern(W, H), grey[W * H];
    for (int i = 0; i < W * H; i++) grey[i] = (uint8_t)(i % 3 ? 255 : 0);
    uint8_t *buf;
    size_t len;
    REQUIRE(s2_png_encode(rgb, W, H, 3, &buf, &len) == 0);
    s2_image im;
    REQUIRE(s2_image_decode(buf, len, "mem.png", NULL, &im) == 0);
    CHECK(im.w == W && im.h == H && memcmp(im.px, rgb, W * H * 3) == 0);
    s2_image_free(&im);
    free(buf);
    char path[512];
    snprintf(path, sizeof path, "%s/mask.png", s2t_tmpdir());
    REQUIRE(s2_png_write(path, grey, W, H, 1) == 0);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    CHECK(access(tmp, F_OK) != 0);
    uint8_t *g;
    int w, h;
    REQUIRE(s2_png_load_gray(path, &g, &w, &h) == 0);
    CHECK(w == W && h == H && memcmp(g, grey, W * H) == 0);
    free(g);
    REQUIRE(s2_image_load(path, NULL, &im) == 0);
    CHECK(im.px[0] == 0 && im.px[3] == 255 && im.px[5] == 255);
    s2_image_free(&im);
    unlink(path);
    CHECK(s2_png_write("/nonexistent-dir/x.png", grey, W, H, 1) == SAM2C_ERR_IO);
    CHECK(s2_png_encode(grey, W, H, 2, &buf, &len) == SAM2C_ERR_ARG);
    CHECK(s2_png_encode(grey, 0, H, 1, &buf, &len) == SAM2C_ERR_ARG);
    free(rgb);
}

TEST(png_hostile) {
    uint8_t *rgb = pattern(12, 9);
    uint8_t *buf;
    size_t len;
    REQUIRE(s2_png_encode(rgb, 12, 9, 3, &buf, &len) == 0);
    s2_image im;
    for (size_t cut = 8; cut + 12 < len; cut++) { /* the IEND chunk is 12 bytes */
        int rc = s2_image_decode(buf, cut, "cut.png", NULL, &im);
        CHECK_MSG(rc != 0, "cut at %zu decoded", cut);
        if (rc == 0) s2_image_free(&im);
    }
    CHECK(s2_image_decode(buf, len - 30, "cut.png", NULL, &im) != 0);
    CHECK_MSG(strcmp(sam2c_last_error(), "cut.png: truncated PNG") == 0, "%s", sam2c_last_error());
    uint8_t *bad = malloc(len);
    memcpy(bad, buf, len);
    bad[20] ^= 1; /* IHDR width byte: CRC mismatch */
    CHECK(s2_image_decode(bad, len, "crc.png", NULL, &im) == SAM2C_ERR_FORMAT);
    unsigned seed = 7;
    for (int t = 0; t < 300; t++) {
        memcpy(bad, buf, len);
        seed = seed * 1103515245u + 12345u;
        bad[8 + (seed >> 8) % (len - 8)] = (uint8_t)(seed >> 3);
        if (s2_image_decode(bad, len, "flip.png", NULL, &im) == 0) s2_image_free(&im);
        uint8_t *g;
        int w, h;
        if (s2_png_decode_gray(bad, len, "flip.png", &g, &w, &h) == 0) free(g);
    }
    memcpy(bad, buf, len); /* IHDR claims 65000 x 65000 (CRC fixed up) */
    bad[18] = bad[22] = 0xFD, bad[19] = bad[23] = 0xE8;
    uint32_t crc = (uint32_t)crc32(0, bad + 12, 17);
    bad[29] = (uint8_t)(crc >> 24), bad[30] = (uint8_t)(crc >> 16), bad[31] = (uint8_t)(crc >> 8), bad[32] = (uint8_t)crc;
    CHECK(s2_image_decode(bad, len, "huge.png", NULL, &im) == SAM2C_ERR_LIMIT);
    CHECK_MSG(strstr(sam2c_last_error(), "huge.png: image of 65000 x 65000"), "%s", sam2c_last_error());
    s2_image_opts o;
    s2_image_opts_default(&o);
    o.max_pixels = 107;
    CHECK(s2_image_decode(buf, len, "big.png", &o, &im) == SAM2C_ERR_LIMIT);
    CHECK_MSG(strcmp(sam2c_last_error(),
                     "big.png: image of 12 x 9 = 108 pixels exceeds the limit of 107") == 0,
              "%s", sam2c_last_error());
    free(bad);
    free(buf);
    free(rgb);
}

/* A PNG eXIf chunk (TIFF data, no "Exif" prefix) with orientation 8: rotated 90 CCW. */
TEST(png_exif_orientation) {
    uint8_t *p = pattern(6, 4), exif[64];
    g_png_exif_len = make_exif(exif, false, 8, 3, false);
    g_png_exif = exif;
    size_t len;
    uint8_t *png = make_png(p, 6, 4, 8, PNG_COLOR_TYPE_RGB, 0, NULL, 0, &len);
    g_png_exif = NULL;
    s2_image a;
    REQUIRE(s2_image_decode(png, len, "exif.png", NULL, &a) == 0);
    CHECK(a.w == 4 && a.h == 6);
    int bad = 0; /* out(x, y) = in(W - 1 - y, x) */
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 4; x++) bad += memcmp(a.px + (y * 4 + x) * 3, p + (x * 6 + 5 - y) * 3, 3) != 0;
    CHECK_EQ_INT(bad, 0);
    s2_image_free(&a);
    free(png);
    free(p);
}
