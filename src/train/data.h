/* Fine-tuning data: a folder of images with instance masks (COCO annotations.json with
 * RLE or polygons, or masks/<image-stem>/<k>.png), and the augmentations applied before
 * the frozen encoder runs. Letters: w x h image pixels, K objects of an image. */
#ifndef S2_TRAIN_DATA_H
#define S2_TRAIN_DATA_H

#include <stdbool.h>
#include <stdint.h>
#include "io/image.h"

typedef struct s2_ds_image {
    char *path;         /* image file */
    int w, h;           /* mask size = the decoded image's size (EXIF applied) */
    int n_obj;          /* K >= 1 */
    uint8_t *masks;     /* [K, h, w] 0 / 1 */
} s2_ds_image;

typedef struct s2_dataset {
    s2_ds_image *im;
    int n;
    int n_skipped;      /* images without any mask */
    char source[24];    /* "annotations.json" or "masks/" */
} s2_dataset;

/* Reads DIR/annotations.json (COCO: images[].file_name relative to DIR or DIR/images,
 * annotations[].segmentation as RLE (compressed or counts) or polygons) or, without it,
 * every .jpg/.jpeg/.png of DIR with its masks DIR/masks/<stem>/<k>.png (non-zero =
 * object; sorted by k). Errors name the file; a mask whose size differs from its
 * image's is an error. Caller frees with s2_dataset_free. */
int s2_dataset_load(const char *dir, s2_dataset *out);
void s2_dataset_free(s2_dataset *d);
/* Loads image i (RGB, EXIF applied) and checks its size against the masks. */
int s2_dataset_image(const s2_dataset *d, int i, s2_image *out);

/* ---- augmentation ---- */

typedef struct s2_aug_params {
    double p_flip;          /* horizontal flip (0.5) */
    double p_crop, crop_min; /* zoom into a random crop of side fraction [crop_min, 1] */
    double brightness, contrast, saturation; /* ColorJitter factors in [1 - x, 1 + x] */
    double p_gray;          /* RandomGrayscale (0.05) */
    double p_gradient, gradient; /* lighting ramp: gain from 1 - g to 1 + g across */
} s2_aug_params;
void s2_aug_default(s2_aug_params *a);

/* One random augmentation of an image and its K masks [K, h, w] into a new image and
 * masks [K, oh, ow] (*out_masks: caller frees; out_img: s2_image_free). A crop that
 * would leave no object pixel is not taken. */
int s2_augment(const s2_image *img, const uint8_t *masks, int K, const s2_aug_params *a,
               uint64_t *rng, s2_image *out_img, uint8_t **out_masks);

/* Nearest-neighbour resize of K masks [K, h, w] -> [K, oh, ow] (PyTorch "nearest":
 * source index floor(dst * in / out)). */
void s2_masks_resize_nearest(uint8_t *dst, int oh, int ow, const uint8_t *src, int h, int w,
                             int K);

#endif
