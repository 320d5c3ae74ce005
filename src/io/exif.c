/* EXIF orientation: reading tag 0x0112 from a TIFF block (bounds-checked, both byte
 * orders) and applying the 8 orientations to an RGB image as PIL does. */
#include "io/image.h"
#include "core/s2.h"

#include <string.h>
#include <stdlib.h>

#define EXIF_TAG_ORIENTATION 0x0112
#define TIFF_SHORT 3
#define TIFF_LONG 4

// Reads a 16-bit value in the TIFF block's byte order.
static unsigned rd16(const uint8_t *p, bool le) {
    return le ? (unsigned)p[0] | (unsigned)p[1] << 8 : (unsigned)p[0] << 8 | (unsigned)p[1];
}

// Reads a 32-bit value in the TIFF block's byte order.
static uint32_t rd32(const uint8_t *p, bool le) {
    if (le) return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

// Scans IFD0 for the orientation tag; the last valid entry wins (PIL keeps a dict).
int s2_exif_orientation(const uint8_t *d, size_t n) {
    if (!d) return 0;
    if (n >= 6 && memcmp(d, "Exif\0\0", 6) == 0) {
        d += 6;
        n -= 6;
    }
    if (n < 8) return 0;
    bool le;
    if (memcmp(d, "II*\0", 4) == 0) le = true;
    else if (memcmp(d, "MM\0*", 4) == 0) le = false;
    else return 0;
    uint32_t ifd = rd32(d + 4, le);
    if (ifd > n || n - ifd < 2) return 0;
    unsigned count = rd16(d + ifd, le);
    size_t avail = (n - ifd - 2) / 12;
    if (count > avail) count = (unsigned)avail;
    int orient = 0;
    for (unsigned i = 0; i < count; i++) {
        const uint8_t *e = d + ifd + 2 + (size_t)i * 12;
        if (rd16(e, le) != EXIF_TAG_ORIENTATION || rd32(e + 4, le) != 1) continue;
        unsigned type = rd16(e + 2, le);
        uint32_t v;
        if (type == TIFF_SHORT) v = rd16(e + 8, le);
        else if (type == TIFF_LONG) v = rd32(e + 8, le);
        else continue;
        orient = (v >= 1 && v <= 8) ? (int)v : 0;
    }
    return orient;
}

// Source pixel of output (x, y) for an orientation; W, H are the input sizes.
// ref: PIL Image.transpose (FLIP_LEFT_RIGHT, ROTATE_180, FLIP_TOP_BOTTOM, TRANSPOSE,
//      ROTATE_270, TRANSVERSE, ROTATE_90) as chosen by ImageOps.exif_transpose
static void orient_src(int o, int x, int y, int W, int H, int *sx, int *sy) {
    switch (o) {
    case 2: *sx = W - 1 - x; *sy = y; break;
    case 3: *sx = W - 1 - x; *sy = H - 1 - y; break;
    case 4: *sx = x; *sy = H - 1 - y; break;
    case 5: *sx = y; *sy = x; break;
    case 6: *sx = y; *sy = H - 1 - x; break;
    case 7: *sx = W - 1 - y; *sy = H - 1 - x; break;
    case 8: *sx = W - 1 - y; *sy = x; break;
    default: *sx = x; *sy = y; break;
    }
}

// Replaces im->px by its oriented copy (width and height swap for 5..8).
int s2_image_apply_orientation(s2_image *im, int o) {
    if (o < 2 || o > 8 || !im || !im->px) return SAM2C_OK;
    int W = im->w, H = im->h;
    int ow = o >= 5 ? H : W, oh = o >= 5 ? W : H;
    uint8_t *dst = s2_malloc((size_t)W * (size_t)H * 3);
    if (!dst) return SAM2C_ERR_NOMEM;
    for (int y = 0; y < oh; y++) {
        uint8_t *row = dst + (size_t)y * ow * 3;
        for (int x = 0; x < ow; x++) {
            int sx, sy;
            orient_src(o, x, y, W, H, &sx, &sy);
            memcpy(row + (size_t)x * 3, im->px + ((size_t)sy * W + sx) * 3, 3);
        }
    }
    free(im->px);
    im->px = dst;
    im->w = ow;
    im->h = oh;
    return SAM2C_OK;
}
