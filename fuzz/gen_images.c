/* Seed image generator for fuzz_image (run by fuzz/run.sh; plain cc, libjpeg + libpng):
 * small JPEGs (baseline, grey, CMYK, progressive, 4:2:0 / 4:4:4, restart markers,
 * arithmetic coding when the library has it, EXIF orientation) and PNGs (every colour
 * type and bit depth, palette + tRNS, Adam7, eXIf). Usage: gen_images OUTDIR */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <png.h>

/* A TIFF/EXIF block holding only Orientation = o, as a camera writes it (big-endian). */
static size_t exif_block(unsigned char *b, int o, int with_prefix) {
    static const unsigned char tiff[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3,
                                         0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    size_t n = 0;
    if (with_prefix) { memcpy(b, "Exif\0\0", 6); n = 6; }
    memcpy(b + n, tiff, sizeof tiff);
    b[n + 19] = (unsigned char)o; /* value (SHORT, left-justified) */
    return n + sizeof tiff;
}

/* Writes a w x h JPEG with `comps` components (1 grey, 3 RGB, 4 CMYK). */
static void jpeg(const char *dir, const char *name, int w, int h, int comps, int progressive,
                 int h0, int v0, int restart, int arith, int orient) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 75, TRUE);
    if (comps == 3) { c.comp_info[0].h_samp_factor = h0; c.comp_info[0].v_samp_factor = v0; }
    if (progressive) jpeg_simple_progression(&c);
    c.restart_interval = (unsigned)restart;
#ifdef C_ARITH_CODING_SUPPORTED
    c.arith_code = arith ? TRUE : FALSE;
#else
    (void)arith;
#endif
    jpeg_start_compress(&c, TRUE);
    if (orient) {
        unsigned char b[64];
        jpeg_write_marker(&c, JPEG_APP0 + 1, b, (unsigned)exif_block(b, orient, 1));
    }
    unsigned char *row = malloc((size_t)w * comps);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w * comps; x++) row[x] = (unsigned char)(x * 7 + y * 13 + (x % comps) * 50);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    fclose(f);
}

/* Writes a w x h PNG of colour type ct and bit depth bd (pixel bytes from a pattern). */
static void png(const char *dir, const char *name, int w, int h, int ct, int bd, int interlace,
                int trns, int orient) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(p);
    if (setjmp(png_jmpbuf(p))) { fclose(f); return; }
    png_init_io(p, f);
    png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, bd, ct,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (ct == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[16];
        for (int i = 0; i < 16; i++) pal[i] = (png_color){(png_byte)(i * 16), (png_byte)(255 - i * 16), (png_byte)(i * 5)};
        png_set_PLTE(p, info, pal, 1 << (bd < 4 ? bd : 4));
        if (trns) {
            png_byte t[2] = {0, 128};
            png_set_tRNS(p, info, t, 2, NULL);
        }
    }
#ifdef PNG_eXIf_SUPPORTED
    if (orient) {
        unsigned char b[64];
        png_set_eXIf_1(p, info, (png_uint_32)exif_block(b, orient, 0), b);
    }
#else
    (void)orient;
#endif
    png_write_info(p, info);
    int ch = ct == PNG_COLOR_TYPE_RGB ? 3 : ct == PNG_COLOR_TYPE_RGBA ? 4 : ct == PNG_COLOR_TYPE_GA ? 2 : 1;
    size_t rowbytes = ((size_t)w * ch * bd + 7) / 8;
    png_bytep *rows = malloc((size_t)h * sizeof *rows);
    for (int y = 0; y < h; y++) {
        rows[y] = malloc(rowbytes);
        for (size_t x = 0; x < rowbytes; x++) rows[y][x] = (png_byte)(x * 31 + y * 17);
        if (ct == PNG_COLOR_TYPE_PALETTE && bd == 8)
            for (size_t x = 0; x < rowbytes; x++) rows[y][x] &= 15;
    }
    png_write_image(p, rows);
    png_write_end(p, info);
    png_destroy_write_struct(&p, &info);
    for (int y = 0; y < h; y++) free(rows[y]);
    free(rows);
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: gen_images OUTDIR\n"); return 2; }
    const char *d = argv[1];
    jpeg(d, "rgb444.jpg", 16, 12, 3, 0, 1, 1, 0, 0, 0);
    jpeg(d, "rgb420.jpg", 17, 13, 3, 0, 2, 2, 0, 0, 0);
    jpeg(d, "rgb422_restart.jpg", 33, 9, 3, 0, 2, 1, 1, 0, 0);
    jpeg(d, "gray.jpg", 16, 12, 1, 0, 1, 1, 0, 0, 0);
    jpeg(d, "cmyk.jpg", 16, 12, 4, 0, 1, 1, 0, 0, 0);
    jpeg(d, "progressive.jpg", 24, 16, 3, 1, 2, 2, 0, 0, 0);
    jpeg(d, "progressive_gray.jpg", 24, 16, 1, 1, 1, 1, 0, 0, 0);
    jpeg(d, "arith.jpg", 16, 12, 3, 0, 2, 2, 0, 1, 0);
    for (int o = 2; o <= 8; o++) {
        char nm[32];
        snprintf(nm, sizeof nm, "exif%d.jpg", o);
        jpeg(d, nm, 7, 5, 3, 0, 1, 1, 0, 0, o);
    }
    png(d, "rgb8.png", 16, 12, PNG_COLOR_TYPE_RGB, 8, 0, 0, 0);
    png(d, "rgb16.png", 5, 4, PNG_COLOR_TYPE_RGB, 16, 0, 0, 0);
    png(d, "rgba8.png", 16, 12, PNG_COLOR_TYPE_RGBA, 8, 0, 0, 0);
    png(d, "rgba16_adam7.png", 9, 9, PNG_COLOR_TYPE_RGBA, 16, 1, 0, 0);
    png(d, "gray1.png", 16, 12, PNG_COLOR_TYPE_GRAY, 1, 0, 0, 0);
    png(d, "gray2.png", 16, 12, PNG_COLOR_TYPE_GRAY, 2, 0, 0, 0);
    png(d, "gray4_adam7.png", 11, 7, PNG_COLOR_TYPE_GRAY, 4, 1, 0, 0);
    png(d, "gray8.png", 16, 12, PNG_COLOR_TYPE_GRAY, 8, 0, 0, 0);
    png(d, "gray16.png", 16, 12, PNG_COLOR_TYPE_GRAY, 16, 0, 0, 0);
    png(d, "graya8.png", 16, 12, PNG_COLOR_TYPE_GA, 8, 0, 0, 0);
    png(d, "pal2.png", 16, 12, PNG_COLOR_TYPE_PALETTE, 2, 0, 0, 0);
    png(d, "pal8_trns.png", 16, 12, PNG_COLOR_TYPE_PALETTE, 8, 0, 1, 0);
    png(d, "pal4_adam7.png", 13, 6, PNG_COLOR_TYPE_PALETTE, 4, 1, 0, 0);
    png(d, "exif6.png", 6, 4, PNG_COLOR_TYPE_RGB, 8, 0, 0, 6);
    png(d, "exif8.png", 6, 4, PNG_COLOR_TYPE_RGB, 8, 0, 0, 8);
    return 0;
}
