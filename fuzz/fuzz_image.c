/* libFuzzer target: image decoding by content (JPEG through libjpeg, PNG through libpng,
 * EXIF orientation from APP1 / eXIf and its application) and the one-channel PNG mask
 * decoder. The pixel limit is lowered to 4 Mpixels to keep each run fast; the limit
 * check itself is the same code. */
#include "fuzz_common.h"
#include "io/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    s2_image_opts o;
    s2_image_opts_default(&o);
    o.max_pixels = 1 << 22;
    s2_image im;
    if (s2_image_decode(data, size, "fuzz.img", &o, &im) == 0) {
        FZ_ASSERT(im.w > 0 && im.h > 0 && (int64_t)im.w * im.h <= o.max_pixels);
        fz_touch(im.px, (size_t)im.w * (size_t)im.h * 3);
        s2_image_free(&im);
    } else {
        FZ_ASSERT(im.px == NULL && strchr(sam2c_last_error(), '\n') == NULL);
    }
    uint8_t *px = NULL;
    int w = 0, h = 0;
    if (s2_png_decode_gray(data, size, "fuzz.png", &px, &w, &h) == 0) {
        FZ_ASSERT(w > 0 && h > 0);
        fz_touch(px, (size_t)w * (size_t)h);
        free(px);
    }
    int orient = s2_exif_orientation(data, size);
    FZ_ASSERT(orient >= 0 && orient <= 8);
    return 0;
}
