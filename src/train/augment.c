/* Training augmentations on 8-bit RGB images and their masks: horizontal flip, zoom into
 * a random crop, colour jitter (brightness / contrast / saturation in random order, as
 * torchvision's ColorJitter), random greyscale and a linear lighting ramp.
 * Letters: w x h input pixels, ow x oh output pixels, K masks.
 * ref: training/dataset/transforms.py (RandomHorizontalFlip, ColorJitter,
 *      RandomGrayscale), torchvision/transforms/functional_tensor.py (adjust_*) */
#include "train/data.h"
#include "train/step.h"
#include "core/s2.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Flips, crops and a colour jitter a little wider than the YAML's (few-shot data). */
void s2_aug_default(s2_aug_params *a) {
    *a = (s2_aug_params){.p_flip = 0.5, .p_crop = 0.5, .crop_min = 0.6, .brightness = 0.15,
                         .contrast = 0.15, .saturation = 0.15, .p_gray = 0.05,
                         .p_gradient = 0.3, .gradient = 0.25};
}

// ref: torch.nn.functional.interpolate(mode="nearest") index rule
void s2_masks_resize_nearest(uint8_t *dst, int oh, int ow, const uint8_t *src, int h, int w,
                             int K) {
    float sy = (float)h / (float)oh, sx = (float)w / (float)ow;
    for (int k = 0; k < K; k++)
        for (int y = 0; y < oh; y++) {
            int iy = (int)floorf((float)y * sy);
            if (iy > h - 1) iy = h - 1;
            const uint8_t *row = src + ((int64_t)k * h + iy) * w;
            uint8_t *o = dst + ((int64_t)k * oh + y) * ow;
            for (int x = 0; x < ow; x++) {
                int ix = (int)floorf((float)x * sx);
                o[x] = row[ix > w - 1 ? w - 1 : ix];
            }
        }
}

/* Copies the (x0, y0, cw, ch) window of the image and masks, mirrored when flip. */
static int crop_flip(const s2_image *img, const uint8_t *masks, int K, int x0, int y0, int cw,
                     int ch, bool flip, s2_image *oi, uint8_t **om) {
    oi->w = cw, oi->h = ch;
    oi->px = s2_malloc((size_t)cw * ch * 3);
    *om = s2_malloc((size_t)K * cw * ch + 1);
    if (!oi->px || !*om) {
        free(oi->px), free(*om);
        oi->px = NULL, *om = NULL;
        return SAM2C_ERR_NOMEM;
    }
    for (int y = 0; y < ch; y++)
        for (int x = 0; x < cw; x++) {
            int sx = x0 + (flip ? cw - 1 - x : x), sy = y0 + y;
            memcpy(oi->px + ((int64_t)y * cw + x) * 3, img->px + ((int64_t)sy * img->w + sx) * 3, 3);
            for (int k = 0; k < K; k++)
                (*om)[((int64_t)k * ch + y) * cw + x] = masks[((int64_t)k * img->h + sy) * img->w + sx];
        }
    return SAM2C_OK;
}

/* True when some object keeps a pixel inside the window. */
static bool window_has_object(const uint8_t *masks, int K, int w, int h, int x0, int y0, int cw,
                              int ch) {
    for (int k = 0; k < K; k++)
        for (int y = y0; y < y0 + ch; y++)
            for (int x = x0; x < x0 + cw; x++)
                if (masks[((int64_t)k * h + y) * w + x]) return true;
    return false;
}

/* Random factor in [1 - x, 1 + x] (ColorJitter's uniform draw), 1 when x = 0. */
static double jitter(uint64_t *rng, double x) {
    return x > 0.0 ? 1.0 - x + 2.0 * x * s2_rng_uniform(rng) : 1.0;
}

/* ITU-R 601-2 luma, as torchvision rgb_to_grayscale. */
static double luma(const double *p) { return 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]; }

// ref: torchvision adjust_brightness / adjust_contrast / adjust_saturation (_blend)
/* Applies op (0 brightness, 1 contrast, 2 saturation) with factor f to px [n, 3] in [0,1]. */
static void color_op(double *px, int64_t n, int op, double f) {
    double mean = 0.0;
    if (op == 1) {
        for (int64_t i = 0; i < n; i++) mean += luma(px + 3 * i);
        mean /= (double)(n ? n : 1);
    }
    for (int64_t i = 0; i < n; i++) {
        double *p = px + 3 * i, g = op == 2 ? luma(p) : (op == 1 ? mean : 0.0);
        for (int c = 0; c < 3; c++) p[c] = fmin(1.0, fmax(0.0, f * p[c] + (1.0 - f) * g));
    }
}

/* Colour jitter (random order), greyscale and lighting ramp on the image in place. */
static int photometric(s2_image *im, const s2_aug_params *a, uint64_t *rng) {
    int64_t n = (int64_t)im->w * im->h;
    double *px = s2_malloc(sizeof(double) * (size_t)(3 * n + 1));
    if (!px) return SAM2C_ERR_NOMEM;
    for (int64_t i = 0; i < 3 * n; i++) px[i] = im->px[i] / 255.0;
    int order[3] = {0, 1, 2};
    for (int i = 2; i > 0; i--) { // random permutation as ColorJitter's fn_idx
        int j = (int)s2_rng_below(rng, i + 1), t = order[i];
        order[i] = order[j], order[j] = t;
    }
    double f[3] = {jitter(rng, a->brightness), jitter(rng, a->contrast), jitter(rng, a->saturation)};
    for (int i = 0; i < 3; i++) color_op(px, n, order[i], f[order[i]]);
    if (s2_rng_uniform(rng) < a->p_gray) color_op(px, n, 2, 0.0);
    if (s2_rng_uniform(rng) < a->p_gradient) {
        double ang = 2.0 * M_PI * s2_rng_uniform(rng), g = a->gradient * s2_rng_uniform(rng);
        double dx = cos(ang), dy = sin(ang), span = fabs(dx) * im->w + fabs(dy) * im->h;
        double cx = 0.5 * im->w, cy = 0.5 * im->h;
        for (int y = 0; y < im->h; y++)
            for (int x = 0; x < im->w; x++) {
                double gain = 1.0 + g * 2.0 * ((x - cx) * dx + (y - cy) * dy) / fmax(span, 1.0);
                double *p = px + 3 * ((int64_t)y * im->w + x);
                for (int c = 0; c < 3; c++) p[c] = fmin(1.0, fmax(0.0, p[c] * gain));
            }
    }
    for (int64_t i = 0; i < 3 * n; i++) im->px[i] = (uint8_t)lround(px[i] * 255.0);
    free(px);
    return SAM2C_OK;
}

/* Geometry first (flip, crop: masks follow), then photometric changes (image only). */
int s2_augment(const s2_image *img, const uint8_t *masks, int K, const s2_aug_params *a,
               uint64_t *rng, s2_image *out_img, uint8_t **out_masks) {
    *out_img = (s2_image){0};
    *out_masks = NULL;
    if (!img || !img->px || img->w < 1 || img->h < 1 || !masks || K < 1 || !a || !rng)
        return s2_err(SAM2C_ERR_ARG, "augment: bad arguments");
    bool flip = s2_rng_uniform(rng) < a->p_flip;
    int x0 = 0, y0 = 0, cw = img->w, ch = img->h;
    if (s2_rng_uniform(rng) < a->p_crop) {
        double s = a->crop_min + (1.0 - a->crop_min) * s2_rng_uniform(rng);
        int tw = (int)lround(img->w * s), th = (int)lround(img->h * s);
        tw = tw < 1 ? 1 : tw, th = th < 1 ? 1 : th;
        int tx = (int)s2_rng_below(rng, img->w - tw + 1), ty = (int)s2_rng_below(rng, img->h - th + 1);
        if (window_has_object(masks, K, img->w, img->h, tx, ty, tw, th))
            x0 = tx, y0 = ty, cw = tw, ch = th;
    }
    S2_CHECK(crop_flip(img, masks, K, x0, y0, cw, ch, flip, out_img, out_masks));
    int rc = photometric(out_img, a, rng);
    if (rc < 0) {
        s2_image_free(out_img);
        free(*out_masks);
        *out_masks = NULL;
    }
    return rc;
}
