/* sam2c.h — the one public header of sam2c, SAM 2 (Segment Anything Model 2) in C.
 *
 * What is not in this file is private. Conventions:
 *  - every function returns an int status (0 = SAM2C_OK, negative = error) unless stated;
 *  - sam2c_last_error() gives a one-line message for the last failure on this thread;
 *  - every object has a create/free pair; free(NULL) is a no-op;
 *  - the caller owns the buffers it passes; pointers returned are "borrowed until the
 *    next call on the same object" unless the comment says "caller frees".
 *  - a sam2c_model is read-only after load and may be shared by many sessions on many
 *    threads; a session (image or video) is used by one thread at a time.
 */
#ifndef SAM2C_H
#define SAM2C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SAM2C_VERSION "0.1.0"

/* Status codes: one table yields the enum and sam2c_strerror(). */
#define SAM2C_STATUS_MAP(X)                                        \
    X(OK, 0, "ok")                                                 \
    X(ERR_IO, -1, "input/output error")                            \
    X(ERR_FORMAT, -2, "malformed or unsupported file")             \
    X(ERR_NOMEM, -3, "out of memory")                              \
    X(ERR_ARG, -4, "invalid argument")                             \
    X(ERR_SHAPE, -5, "tensor shape or dtype mismatch")             \
    X(ERR_MISSING, -6, "missing tensor or entry")                  \
    X(ERR_UNSUPPORTED, -7, "unsupported feature")                  \
    X(ERR_LIMIT, -8, "configured limit exceeded")                  \
    X(ERR_STATE, -9, "call not valid in this state")               \
    X(ERR_CANCELLED, -10, "cancelled")

typedef enum {
#define SAM2C_X_ENUM(name, code, msg) SAM2C_##name = code,
    SAM2C_STATUS_MAP(SAM2C_X_ENUM)
#undef SAM2C_X_ENUM
} sam2c_status;

/* Static description of a status code. Never NULL. */
const char *sam2c_strerror(int status);
/* One-line message of the last failure on the calling thread (file and problem named).
 * Borrowed until the next failing call on this thread. Never NULL. */
const char *sam2c_last_error(void);

/* ---- Model: weights + configuration, read-only after load, shareable ---- */
typedef struct sam2c_model sam2c_model;

typedef struct sam2c_model_params {
    const char *config_path; /* explicit config JSON (schema of fixtures/micro/config.json);
                                NULL: config.json beside the checkpoint, then safetensors
                                metadata, then recognition of the 8 official layouts */
} sam2c_model_params;
sam2c_model_params sam2c_model_default_params(void);

/* Loads an official PyTorch checkpoint (.pt) or a safetensors file. Every tensor's name,
 * dtype and shape is checked against the configuration; on failure the message names
 * the file and the tensor. Caller frees with sam2c_model_free. */
int sam2c_model_load(const char *path, const sam2c_model_params *params, sam2c_model **out);
/* A model of an official architecture ("tiny", "small", "base+", "large", or any
 * official name such as "sam2_hiera_s") with seeded random weights (for benchmarks). */
int sam2c_model_random(const char *arch, uint64_t seed, sam2c_model **out);
void sam2c_model_free(sam2c_model *model);
/* "sam2.1_hiera_tiny", "micro", ... Borrowed for the model's lifetime. */
const char *sam2c_model_name(const sam2c_model *model);
int sam2c_model_image_size(const sam2c_model *model);
int64_t sam2c_model_param_count(const sam2c_model *model);

/* ---- Image predictor (official SAM2ImagePredictor semantics) ---- */
typedef struct sam2c_image_session sam2c_image_session;

/* One session per image stream; uses the model read-only. Caller frees. */
int sam2c_image_session_create(const sam2c_model *model, sam2c_image_session **out);
void sam2c_image_session_free(sam2c_image_session *s);
/* set_image: 8-bit RGB, row-major HWC (w*h*3 bytes, copied as needed, never retained).
 * Encodes the image once; any number of predictions follow. */
int sam2c_image_set_rgb(sam2c_image_session *s, const uint8_t *rgb, int width, int height);
/* Decodes a JPEG/PNG file (EXIF orientation applied unless apply_exif is 0) and sets it. */
int sam2c_image_set_file(sam2c_image_session *s, const char *path, int apply_exif);
/* Refuse images with more pixels than this (default 50,000,000). */
void sam2c_image_set_max_pixels(sam2c_image_session *s, int64_t max_pixels);

typedef struct sam2c_prompt {
    int n_points;
    const float *points;     /* [n_points, 2] (x, y) in original-image pixels */
    const int32_t *labels;   /* [n_points]: 1 positive, 0 negative */
    int n_boxes;             /* several boxes = one batched prediction per box */
    const float *boxes;      /* [n_boxes, 4] x0, y0, x1, y1 in original-image pixels */
    const float *mask_input; /* [1, 4*h, 4*w] low-res logits (e.g. a previous
                                low_res_masks), or NULL */
    int mask_input_h, mask_input_w;
    int multimask;           /* 1: three masks per prompt, 0: one */
    int return_logits;       /* 1: masks are logits, 0: masks are 0/1 (as floats) */
} sam2c_prompt;

/* Output of one prediction, owned by the session: borrowed until the next call. */
typedef struct sam2c_masks {
    int n_prompts;      /* B: 1, or n_boxes for batched boxes */
    int n_masks;        /* M per prompt: 3 with multimask, else 1 */
    int width, height;  /* original image size */
    int low_w, low_h;   /* low-res mask size (4 * feature side) */
    const float *masks;        /* [B, M, height, width] logits or 0/1 */
    const float *iou;          /* [B, M] predicted IoU */
    const float *low_res;      /* [B, M, low_h, low_w] logits clamped to [-32, 32] */
    const float *object_score; /* [B] object-score logits (not used for gating, as the
                                  official image predictor) */
} sam2c_masks;

/* predict(): points (+ labels), boxes, mask input, in the official order and semantics.
 * Errors: no prompt, points with several boxes, coordinates outside the image, boxes
 * with x1 < x0 or y1 < y0, mask input of the wrong size, no image set. */
int sam2c_image_predict(sam2c_image_session *s, const sam2c_prompt *prompt, sam2c_masks *out);

/* Number of threads used by compute kernels (0 = all cores). Process-wide. */
void sam2c_set_num_threads(int n);
int sam2c_get_num_threads(void);

#ifdef __cplusplus
}
#endif
#endif /* SAM2C_H */
