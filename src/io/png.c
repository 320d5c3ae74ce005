/* PNG through libpng: decoding to RGB (images) or one 8-bit channel (masks) from memory,
 * encoding grey / RGB to memory and, atomically, to files. libpng errors longjmp back
 * here; a short buffer is reported as a truncated PNG. */
#include "io/image.h"
#include "core/s2.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PNG_DEFAULT_MAX_PIXELS 50000000

/* Everything the decoder changes after setjmp lives here (not in locals), so nothing
 * is lost when libpng longjmps back. */
typedef struct png_job {
    const char *name;
    const uint8_t *buf;
    size_t len, pos;
    bool gray;             /* one channel out (masks) instead of RGB */
    int64_t max_pixels;
    int stage;             /* 0 header, 1 pixels, 2 trailing chunks */
    char msg[256];
    uint8_t *px;           /* (h, w, C_out) */
    png_bytep *rows;
    int w, h, orientation;
} png_job;

// libpng error callback: keep the message, jump back to the decoder.
static void png_on_error(png_structp png, png_const_charp msg) {
    png_job *j = png_get_error_ptr(png);
    if (j) snprintf(j->msg, sizeof j->msg, "%s", msg ? msg : "error");
    png_longjmp(png, 1);
}

// Warnings (bad ancillary chunks, ...) are ignored, as PIL ignores them.
static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

// Bounds-checked read from the in-memory buffer.
static void png_read_mem(png_structp png, png_bytep dst, png_size_t n) {
    png_job *j = png_get_io_ptr(png);
    if (n > j->len - j->pos) png_error(png, "truncated PNG");
    memcpy(dst, j->buf + j->pos, n);
    j->pos += n;
}

// Transformations for RGB output: palette expanded, 16 -> 8 bits by the high byte,
// alpha (and tRNS) dropped, grey replicated.
static void png_setup_rgb(png_structp png, png_infop info) {
    int ct = png_get_color_type(png, info), bd = png_get_bit_depth(png, info);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (!(ct & PNG_COLOR_MASK_COLOR) && bd < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bd == 16) png_set_strip_16(png);
    png_set_strip_alpha(png);
    if (!(ct & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
}

// Transformations for one-channel output: palette indices kept (one per byte), low-depth
// grey scaled to 8 bits, 16 -> 8 bits by the high byte; other channels dropped later.
static void png_setup_gray(png_structp png, png_infop info) {
    int ct = png_get_color_type(png, info), bd = png_get_bit_depth(png, info);
    if (ct == PNG_COLOR_TYPE_PALETTE && bd < 8) png_set_packing(png);
    if (ct == PNG_COLOR_TYPE_GRAY && bd < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bd == 16) png_set_strip_16(png);
}

// Orientation from an eXIf chunk, when libpng has seen one.
static int png_exif_orientation(png_structp png, png_infop info) {
#ifdef PNG_eXIf_SUPPORTED
    png_uint_32 n = 0;
    png_bytep data = NULL;
    if (png_get_eXIf_1(png, info, &n, &data) && data && n > 0)
        return s2_exif_orientation(data, n);
#else
    (void)png;
    (void)info;
#endif
    return 0;
}

// Keeps the first byte of each pixel: (h*w*C) -> (h*w).
static void keep_first_channel(uint8_t *px, size_t npix, int c) {
    if (c == 1) return;
    for (size_t i = 0; i < npix; i++) px[i] = px[i * (size_t)c];
}

// Reads header, checks the size, sets transformations and reads all pixels.
static int png_run(png_job *j, png_structp png, png_infop info) {
    png_set_read_fn(png, j, png_read_mem);
    png_set_sig_bytes(png, 0);
    png_read_info(png, info);
    int64_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (w <= 0 || h <= 0)
        return s2_err(SAM2C_ERR_FORMAT, "%s: empty image (%lld x %lld)", j->name,
                      (long long)w, (long long)h);
    if (w * h > j->max_pixels)
        return s2_err(SAM2C_ERR_LIMIT, "%s: image of %lld x %lld = %lld pixels exceeds the limit of %lld",
                      j->name, (long long)w, (long long)h, (long long)(w * h),
                      (long long)j->max_pixels);
    if (j->gray) png_setup_gray(png, info);
    else png_setup_rgb(png, info);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int c = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if ((!j->gray && c != 3) || c < 1 || c > 4 || png_get_bit_depth(png, info) != 8 ||
        rowbytes != (size_t)w * (size_t)c)
        return s2_err(SAM2C_ERR_FORMAT, "%s: unexpected PNG layout after conversion", j->name);
    j->w = (int)w;
    j->h = (int)h;
    j->px = s2_malloc((size_t)h * rowbytes);
    j->rows = s2_malloc((size_t)h * sizeof(png_bytep));
    if (!j->px || !j->rows) return SAM2C_ERR_NOMEM;
    for (int64_t y = 0; y < h; y++) j->rows[y] = j->px + (size_t)y * rowbytes;
    j->stage = 1;
    png_read_image(png, j->rows);
    j->stage = 2;
    png_read_end(png, info);
    if (j->gray) keep_first_channel(j->px, (size_t)w * (size_t)h, c);
    return SAM2C_OK;
}

// Decodes with libpng; on a failure in the trailing chunks the image is kept (PIL too
// stops reading there without error).
static int png_decode(png_job *j) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, j, png_on_error,
                                             png_on_warning);
    if (!png) return s2_err(SAM2C_ERR_NOMEM, "%s: cannot create PNG decoder", j->name);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return s2_err(SAM2C_ERR_NOMEM, "%s: cannot create PNG decoder", j->name);
    }
    int rc;
    if (setjmp(png_jmpbuf(png))) {
        if (j->stage == 2) rc = SAM2C_OK;
        else if (strcmp(j->msg, "truncated PNG") == 0)
            rc = s2_err(SAM2C_ERR_FORMAT, "%s: truncated PNG", j->name);
        else rc = s2_err(SAM2C_ERR_FORMAT, "%s: PNG: %s", j->name, j->msg);
    } else {
        rc = png_run(j, png, info);
    }
    if (rc == SAM2C_OK && !j->gray) j->orientation = png_exif_orientation(png, info);
    png_destroy_read_struct(&png, &info, NULL);
    free(j->rows);
    j->rows = NULL;
    if (rc != SAM2C_OK) {
        free(j->px);
        j->px = NULL;
    }
    return rc;
}

// PNG to RGB for s2_image_decode (which applies the orientation).
int s2_png_decode_rgb(const uint8_t *buf, size_t len, const char *name,
                      const s2_image_opts *o, s2_image *out, int *exif_orientation) {
    png_job j;
    memset(&j, 0, sizeof j);
    j.name = name ? name : "image";
    j.buf = buf;
    j.len = buf ? len : 0;
    j.max_pixels = o ? o->max_pixels : PNG_DEFAULT_MAX_PIXELS;
    out->px = NULL;
    out->w = out->h = 0;
    *exif_orientation = 0;
    S2_CHECK(png_decode(&j));
    out->px = j.px;
    out->w = j.w;
    out->h = j.h;
    *exif_orientation = j.orientation;
    return SAM2C_OK;
}

// One channel per pixel for masks; the buffer is shrunk to h*w bytes.
int s2_png_decode_gray(const uint8_t *buf, size_t len, const char *name, uint8_t **px,
                       int *w, int *h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    *px = NULL;
    *w = *h = 0;
    if (!name) name = "mask";
    if (!buf || len < 8 || memcmp(buf, sig, 8) != 0)
        return s2_err(SAM2C_ERR_FORMAT, "%s: not a PNG image", name);
    png_job j;
    memset(&j, 0, sizeof j);
    j.name = name;
    j.buf = buf;
    j.len = len;
    j.gray = true;
    j.max_pixels = PNG_DEFAULT_MAX_PIXELS;
    S2_CHECK(png_decode(&j));
    uint8_t *shrunk = realloc(j.px, (size_t)j.w * (size_t)j.h);
    *px = shrunk ? shrunk : j.px;
    *w = j.w;
    *h = j.h;
    return SAM2C_OK;
}

// Reads the whole file, then decodes it as a mask.
int s2_png_load_gray(const char *path, uint8_t **px, int *w, int *h) {
    *px = NULL;
    *w = *h = 0;
    uint8_t *buf;
    size_t len;
    S2_CHECK(s2_read_file(path, &buf, &len));
    int rc = s2_png_decode_gray(buf, len, path, px, w, h);
    free(buf);
    return rc;
}

/* ---- writing ---- */

typedef struct png_wbuf {
    uint8_t *data;
    size_t len, cap;
    char msg[256];
} png_wbuf;

// Appends encoder output to the growable buffer.
static void png_write_mem(png_structp png, png_bytep src, png_size_t n) {
    png_wbuf *b = png_get_io_ptr(png);
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) png_error(png, "output too large");
            cap *= 2;
        }
        uint8_t *p = realloc(b->data, cap);
        if (!p) png_error(png, "out of memory");
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

// Nothing is buffered: flushing is a no-op.
static void png_flush_mem(png_structp png) { (void)png; }

// Error callback for the encoder (its error pointer is the output buffer).
static void png_on_write_error(png_structp png, png_const_charp msg) {
    png_wbuf *b = png_get_error_ptr(png);
    if (b) snprintf(b->msg, sizeof b->msg, "%s", msg ? msg : "error");
    png_longjmp(png, 1);
}

// Writes IHDR and the rows (8-bit grey or RGB, no interlace).
static void png_emit(png_structp png, png_infop info, const uint8_t *px, int w, int h,
                     int channels) {
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, px + (size_t)y * w * channels);
    png_write_end(png, info);
}

// Encodes to a malloc'd buffer (8-bit grey or RGB, zlib's default level).
int s2_png_encode(const uint8_t *px, int w, int h, int channels, uint8_t **out, size_t *len) {
    *out = NULL;
    *len = 0;
    if (!px || w <= 0 || h <= 0 || w > 1000000 || h > 1000000 || (channels != 1 && channels != 3))
        return s2_err(SAM2C_ERR_ARG, "PNG encode: bad image (%d x %d, %d channels)", w, h,
                      channels);
    png_wbuf b;
    memset(&b, 0, sizeof b);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &b, png_on_write_error,
                                              png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        return s2_err(SAM2C_ERR_NOMEM, "cannot create PNG encoder");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(b.data);
        return s2_err(SAM2C_ERR_NOMEM, "PNG encode: %s", b.msg);
    }
    png_set_write_fn(png, &b, png_write_mem, png_flush_mem);
    png_emit(png, info, px, w, h, channels);
    png_destroy_write_struct(&png, &info);
    *out = b.data;
    *len = b.len;
    return SAM2C_OK;
}

// Encodes in memory, then writes "path.tmp.<pid>" and renames it over path.
int s2_png_write(const char *path, const uint8_t *px, int w, int h, int channels) {
    uint8_t *data;
    size_t len;
    int rc = s2_png_encode(px, w, h, channels, &data, &len);
    if (rc != SAM2C_OK) return s2_err_prefix(rc, "%s: ", path);
    rc = s2_write_file_atomic(path, data, len);
    free(data);
    return rc;
}
