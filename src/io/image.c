/* Image decoding by content: JPEG through libjpeg(-turbo) with the decoder settings
 * PIL 9.4 uses (ISLOW DCT, fancy upsampling: the library defaults), PNG in png.c.
 * Errors never exit: libjpeg's error_exit longjmps back here, and a premature end of
 * the data (libjpeg would fill grey and warn) is refused as a truncated file. */
#include "io/image.h"
#include "core/s2.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

#define S2_DEFAULT_MAX_PIXELS 50000000
#define JPEG_MAX_SCANS 1000 /* progressive scans; guards against decompression bombs */

// EXIF applied, 50 megapixels at most.
void s2_image_opts_default(s2_image_opts *o) {
    o->apply_exif = true;
    o->max_pixels = S2_DEFAULT_MAX_PIXELS;
}

// Frees the pixels; safe on an empty or already freed image.
void s2_image_free(s2_image *im) {
    if (!im) return;
    free(im->px);
    im->px = NULL;
    im->w = im->h = 0;
}

/* ---- JPEG ---- */

typedef struct jpeg_ctx {
    struct jpeg_error_mgr pub;             /* must be first: libjpeg casts to it */
    struct jpeg_progress_mgr progress;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX + 32];
    bool want_exif, have_exif;
    size_t exif_len;
    uint8_t exif[65536];                   /* first APP1 "Exif\0\0" segment */
} jpeg_ctx;

// Replaces libjpeg's exit(): keep the message and jump back to the decoder.
static void jpeg_on_error(j_common_ptr c) {
    jpeg_ctx *x = (jpeg_ctx *)c->err;
    c->err->format_message(c, x->msg);
    longjmp(x->jb, 1);
}

// Warnings are ignored (as PIL does) except running out of data: that is truncation.
static void jpeg_on_message(j_common_ptr c, int level) {
    jpeg_ctx *x = (jpeg_ctx *)c->err;
    if (level >= 0) return;
    if (c->err->msg_code == JWRN_JPEG_EOF) {
        snprintf(x->msg, sizeof x->msg, "truncated JPEG");
        longjmp(x->jb, 1);
    }
    c->err->num_warnings++;
}

// Bounds the number of progressive scans (each one re-reads the whole coefficient set).
static void jpeg_on_progress(j_common_ptr c) {
    if (!c->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_ctx *x = (jpeg_ctx *)c->err;
        snprintf(x->msg, sizeof x->msg, "more than %d progressive scans", JPEG_MAX_SCANS);
        longjmp(x->jb, 1);
    }
}

// Refuses empty images and images over the pixel limit, before anything is allocated.
static int check_size(const char *name, int64_t w, int64_t h, const s2_image_opts *o) {
    if (w <= 0 || h <= 0)
        return s2_err(SAM2C_ERR_FORMAT, "%s: empty image (%lld x %lld)", name, (long long)w,
                      (long long)h);
    int64_t limit = o ? o->max_pixels : S2_DEFAULT_MAX_PIXELS;
    if (w * h > limit)
        return s2_err(SAM2C_ERR_LIMIT, "%s: image of %lld x %lld = %lld pixels exceeds the limit of %lld",
                      name, (long long)w, (long long)h, (long long)(w * h), (long long)limit);
    return SAM2C_OK;
}

// Next byte of the JPEG data, or -1 if the source suspends (the memory source never does;
// at the end of data it warns, which jpeg_on_message turns into an error).
static int src_byte(j_decompress_ptr d) {
    struct jpeg_source_mgr *s = d->src;
    if (s->bytes_in_buffer == 0 && !s->fill_input_buffer(d)) return -1;
    s->bytes_in_buffer--;
    return *s->next_input_byte++;
}

// APP1 handler: keeps the first "Exif\0\0" segment (at most 64 KiB, once) and skips
// the rest, so a file of many APP1 segments cannot make libjpeg store them all.
static boolean jpeg_on_app1(j_decompress_ptr d) {
    jpeg_ctx *x = (jpeg_ctx *)d->err;
    int hi = src_byte(d), lo = src_byte(d);
    if (hi < 0 || lo < 0) return FALSE;
    long len = ((long)hi << 8 | lo) - 2;
    bool keep = x->want_exif && !x->have_exif;
    if (!keep && len > 0) {
        d->src->skip_input_data(d, len);
        return TRUE;
    }
    for (long i = 0; i < len; i++) {
        int c = src_byte(d);
        if (c < 0) return FALSE;
        x->exif[i] = (uint8_t)c;
    }
    if (keep && len >= 6 && memcmp(x->exif, "Exif\0\0", 6) == 0) {
        x->have_exif = true;
        x->exif_len = (size_t)len;
    }
    return TRUE;
}

// ref: Pillow 9.4 Convert.c cmyk2rgb after the "CMYK;I" unpacker (Adobe inverted CMYK):
//      nk = 255 - K, out = nk - C * nk / 255 with MULDIV255 rounding.
static void cmyk_inverted_to_rgb(uint8_t *dst, const uint8_t *src, int w) {
    for (int x = 0; x < w; x++, src += 4, dst += 3) {
        int nk = src[3]; /* 255 - (255 - stored K) */
        for (int c = 0; c < 3; c++) {
            int v = 255 - src[c];
            int t = v * nk + 128;
            int m = ((t >> 8) + t) >> 8;
            int r = nk - m;
            dst[c] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
        }
    }
}

// Converts one decoded scanline (1 grey, 4 CMYK components) to RGB.
static void jpeg_row_to_rgb(uint8_t *dst, const uint8_t *row, int w, int comps) {
    if (comps == 1) {
        for (int x = 0; x < w; x++) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = row[x];
    } else {
        cmyk_inverted_to_rgb(dst, row, w);
    }
}

// Picks libjpeg's output colour space as PIL's JPEG plugin does (L, RGB, CMYK;I).
static int jpeg_pick_colorspace(j_decompress_ptr d, const char *name) {
    switch (d->num_components) {
    case 1: d->out_color_space = JCS_GRAYSCALE; return 1;
    case 3: d->out_color_space = JCS_RGB; return 3;
    case 4: d->out_color_space = JCS_CMYK; return 4;
    default:
        return s2_err(SAM2C_ERR_UNSUPPORTED, "%s: JPEG with %d components is not supported",
                      name, d->num_components);
    }
}

// Decodes a whole JPEG into RGB (EXIF orientation returned, not applied).
static int jpeg_decode(const uint8_t *buf, size_t len, const char *name,
                       const s2_image_opts *o, s2_image *out, int *orientation) {
    struct jpeg_decompress_struct d;
    jpeg_ctx x;
    uint8_t *volatile px = NULL;
    uint8_t *volatile row = NULL;
    volatile int rc = SAM2C_OK;
    memset(&d, 0, sizeof d);
    d.err = jpeg_std_error(&x.pub);
    x.pub.error_exit = jpeg_on_error;
    x.pub.emit_message = jpeg_on_message;
    x.msg[0] = 0;
    x.want_exif = o && o->apply_exif;
    x.have_exif = false;
    if (setjmp(x.jb)) {
        jpeg_destroy_decompress(&d);
        free(px);
        free(row);
        if (strcmp(x.msg, "truncated JPEG") == 0)
            return s2_err(SAM2C_ERR_FORMAT, "%s: truncated JPEG", name);
        return s2_err(SAM2C_ERR_FORMAT, "%s: JPEG: %s", name, x.msg);
    }
    jpeg_create_decompress(&d);
    x.progress.progress_monitor = jpeg_on_progress;
    d.progress = &x.progress;
    jpeg_mem_src(&d, buf, (unsigned long)len);
    jpeg_set_marker_processor(&d, JPEG_APP0 + 1, jpeg_on_app1);
    jpeg_read_header(&d, TRUE);
    int comps = jpeg_pick_colorspace(&d, name);
    if (comps < 0) rc = comps;
    if (rc == SAM2C_OK) rc = check_size(name, d.image_width, d.image_height, o);
    if (rc != SAM2C_OK) {
        jpeg_destroy_decompress(&d);
        return rc;
    }
    *orientation = x.have_exif ? s2_exif_orientation(x.exif, x.exif_len) : 0;
    jpeg_start_decompress(&d);
    int w = (int)d.output_width, h = (int)d.output_height;
    px = s2_malloc((size_t)w * (size_t)h * 3);
    if (comps != 3) row = s2_malloc((size_t)w * (size_t)comps);
    if (!px || (comps != 3 && !row)) {
        jpeg_destroy_decompress(&d);
        free(px);
        free(row);
        return SAM2C_ERR_NOMEM;
    }
    while (d.output_scanline < d.output_height) {
        int y = (int)d.output_scanline;
        JSAMPROW r = comps == 3 ? (JSAMPROW)(px + (size_t)y * w * 3) : (JSAMPROW)row;
        if (jpeg_read_scanlines(&d, &r, 1) != 1) {
            snprintf(x.msg, sizeof x.msg, "truncated JPEG");
            longjmp(x.jb, 1);
        }
        if (comps != 3) jpeg_row_to_rgb(px + (size_t)y * w * 3, row, w, comps);
    }
    jpeg_destroy_decompress(&d);
    free(row);
    out->w = w;
    out->h = h;
    out->px = px;
    return SAM2C_OK;
}

/* ---- entry points ---- */

// Sniffs the format by its magic bytes and decodes, then applies EXIF orientation.
int s2_image_decode(const uint8_t *buf, size_t len, const char *name,
                    const s2_image_opts *o, s2_image *out) {
    s2_image_opts def;
    if (!o) {
        s2_image_opts_default(&def);
        o = &def;
    }
    if (!name) name = "image";
    out->w = out->h = 0;
    out->px = NULL;
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    int orient = 0, rc;
    if (buf && len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF)
        rc = jpeg_decode(buf, len, name, o, out, &orient);
    else if (buf && len >= 8 && memcmp(buf, png_sig, 8) == 0)
        rc = s2_png_decode_rgb(buf, len, name, o, out, &orient);
    else
        return s2_err(SAM2C_ERR_FORMAT, "%s: not a JPEG or PNG image", name);
    if (rc != SAM2C_OK) return rc;
    if (o->apply_exif && orient > 1) {
        rc = s2_image_apply_orientation(out, orient);
        if (rc != SAM2C_OK) {
            s2_image_free(out);
            return rc;
        }
    }
    return SAM2C_OK;
}

// Reads the whole file, then decodes it by content.
int s2_image_load(const char *path, const s2_image_opts *o, s2_image *out) {
    out->w = out->h = 0;
    out->px = NULL;
    uint8_t *buf;
    size_t len;
    S2_CHECK(s2_read_file(path, &buf, &len));
    int rc = s2_image_decode(buf, len, path, o, out);
    free(buf);
    return rc;
}
