/* Model-input preprocessing, bit-exact with the official predictors' transforms. */
#include "predict/preprocess.h"
#include "kernels/kernels.h"
#include "core/s2.h"

static const float s2_mean[3] = {S2_IMG_MEAN_R, S2_IMG_MEAN_G, S2_IMG_MEAN_B};
static const float s2_std[3] = {S2_IMG_STD_R, S2_IMG_STD_G, S2_IMG_STD_B};

// torchvision Normalize: x.sub_(mean).div_(std) per channel, f32, on [3, n] planes.
static void normalize_planes(float *x, int64_t n) {
    for (int c = 0; c < 3; c++) {
        float *p = x + c * n, m = s2_mean[c], s = s2_std[c];
        for (int64_t i = 0; i < n; i++) p[i] = (p[i] - m) / s;
    }
}

// ref: sam2/utils/transforms.py SAM2Transforms.__call__ (ToTensor, Resize, Normalize)
int s2_preprocess_image(float *out, const uint8_t *rgb, int w, int h, int S) {
    if (!out || !rgb) return s2_err(SAM2C_ERR_ARG, "preprocess: NULL image buffer");
    if (w <= 0 || h <= 0 || S <= 0)
        return s2_err(SAM2C_ERR_ARG, "preprocess: bad sizes (image %dx%d, model input %d)",
                      w, h, S);
    s2_ref_interp_bilinear_u8hwc(out, rgb, 3, h, w, S, S, false, true);
    normalize_planes(out, (int64_t)S * S);
    return 0;
}

// ref: sam2/utils/misc.py _load_img_as_tensor + load_video_frames (img_mean / img_std)
int s2_preprocess_video_frame(float *out, const uint8_t *rgb_SxS, int S) {
    if (!out || !rgb_SxS) return s2_err(SAM2C_ERR_ARG, "preprocess: NULL frame buffer");
    if (S <= 0) return s2_err(SAM2C_ERR_ARG, "preprocess: bad model input size %d", S);
    int64_t n = (int64_t)S * S;
    for (int c = 0; c < 3; c++)
        for (int64_t i = 0; i < n; i++) out[c * n + i] = (float)(rgb_SxS[i * 3 + c] / 255.0);
    normalize_planes(out, n);
    return 0;
}
