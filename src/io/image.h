/* Images: decoding JPEG/PNG into 8-bit RGB (EXIF orientation applied on request),
 * writing PNG (grey masks, RGB overlays), and the u8 resize that the official video
 * predictor uses (PIL's bicubic with support-scaled antialiasing). */
#ifndef S2_IMAGE_H
#define S2_IMAGE_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

typedef struct s2_image {
    int w, h;         /* pixels */
    uint8_t *px;      /* RGB, row-major HWC, w*h*3 bytes; owned (free with s2_image_free) */
} s2_image;

typedef struct s2_image_opts {
    bool apply_exif;        /* rotate/flip by EXIF orientation (default true) */
    int64_t max_pixels;     /* refuse larger images (default 50,000,000) */
} s2_image_opts;
void s2_image_opts_default(s2_image_opts *o);

/* Decodes JPEG or PNG (8/16-bit, grey, grey+alpha, RGB, RGBA, palette) by content.
 * 16-bit samples are reduced to 8 bits (>> 8), alpha is dropped, grey is replicated. */
int s2_image_load(const char *path, const s2_image_opts *o, s2_image *out);
int s2_image_decode(const uint8_t *buf, size_t len, const char *name,
                    const s2_image_opts *o, s2_image *out);
void s2_image_free(s2_image *im);

/* Single-channel 8-bit load (for masks): RGB/RGBA/16-bit reduced to grey by taking the
 * first channel's high byte. *px owned by caller (free()).
 * Palette images give their palette indices (as np.array(Image.open(p)) in the SA-V
 * evaluator); 1/2/4-bit grey is scaled to 0..255. At most 50,000,000 pixels. */
int s2_png_load_gray(const char *path, uint8_t **px, int *w, int *h);
int s2_png_decode_gray(const uint8_t *buf, size_t len, const char *name, uint8_t **px,
                       int *w, int *h);

/* PNG writers, atomic (temporary name then rename). channels 1 (grey) or 3 (RGB). */
int s2_png_write(const char *path, const uint8_t *px, int w, int h, int channels);
/* Encodes to memory (caller frees *out). */
int s2_png_encode(const uint8_t *px, int w, int h, int channels, uint8_t **out, size_t *len);

/* PIL Image.resize((ow, oh)) with Image.BICUBIC (a = -0.5, support scaled by the
 * downscale factor, rounded and clipped to u8) on interleaved channels. */
void s2_pil_resize_bicubic_u8(uint8_t *dst, int ow, int oh, const uint8_t *src, int w,
                              int h, int channels);
/* The same with a status: SAM2C_ERR_ARG on bad sizes / channels (1..4), SAM2C_ERR_NOMEM.
 * (The void form above zero-fills dst when it fails.) Channels are resampled
 * independently (no alpha premultiplication). */
int s2_pil_resize_bicubic_u8_checked(uint8_t *dst, int ow, int oh, const uint8_t *src,
                                     int w, int h, int channels);

/* EXIF orientation (tag 0x0112 of IFD0) from TIFF data ("II*\0" / "MM\0*" header, as
 * after the "Exif\0\0" prefix of a JPEG APP1 segment or in a PNG eXIf chunk); the prefix
 * itself is skipped when present. Returns 1..8, or 0 when absent or malformed. */
int s2_exif_orientation(const uint8_t *tiff, size_t len);
/* Applies an EXIF orientation in place, as PIL.ImageOps.exif_transpose: 2 mirror,
 * 3 rotate 180, 4 flip vertical, 5 transpose, 6 rotate 90 CW, 7 transverse,
 * 8 rotate 90 CCW; 1 and unknown values leave the image as is. */
int s2_image_apply_orientation(s2_image *im, int orientation);

/* PNG to RGB (used by s2_image_decode); *exif_orientation gets the eXIf chunk's
 * orientation (0 when none). */
int s2_png_decode_rgb(const uint8_t *buf, size_t len, const char *name,
                      const s2_image_opts *o, s2_image *out, int *exif_orientation);

#endif
