/* Model-input preprocessing of the official predictors: u8 RGB -> normalised f32
 * [3, S, S] planes (S = model image size). */
#ifndef S2_PREPROCESS_H
#define S2_PREPROCESS_H

#include <stdint.h>

/* ImageNet statistics used by both predictors (as f32 tensors in PyTorch). */
#define S2_IMG_MEAN_R 0.485f
#define S2_IMG_MEAN_G 0.456f
#define S2_IMG_MEAN_B 0.406f
#define S2_IMG_STD_R 0.229f
#define S2_IMG_STD_G 0.224f
#define S2_IMG_STD_B 0.225f

/* SAM2ImagePredictor (SAM2Transforms): ToTensor (u8 / 255 in f32), resize to (S, S)
 * with F.interpolate bilinear, align_corners=False, antialias=True (aspect ratio NOT
 * kept), then (x - mean) / std in f32. rgb is row-major HWC [h, w, 3]; out is
 * [3, S, S]. Returns 0, or SAM2C_ERR_ARG (message set) for bad arguments. */
int s2_preprocess_image(float *out, const uint8_t *rgb, int w, int h, int S);

/* SAM2VideoPredictor frame loading after PIL's resize to (S, S) (done by the caller
 * with s2_pil_resize_bicubic_u8): x / 255.0 in f64 rounded to f32, then
 * (x - mean) / std in f32. rgb_SxS is HWC [S, S, 3]; out is [3, S, S]. */
int s2_preprocess_video_frame(float *out, const uint8_t *rgb_SxS, int S);

#endif
