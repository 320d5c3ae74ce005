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

/* ---- automatic masks ---- */
/* "Segment everything": official SAM2AutomaticMaskGenerator semantics and defaults.
 * A grid of single-point prompts over the image (and over crops of it), masks filtered
 * by predicted IoU and stability, de-duplicated by box NMS. */

/* Progress: called after each batch of points with the points done so far and the
 * total over all crops; a nonzero return cancels (generate returns SAM2C_ERR_CANCELLED). */
typedef int (*sam2c_progress_fn)(void *user, int done, int total);

typedef struct sam2c_amg_params {
    int points_per_side;                /* 32; 0 when point_grids are given */
    int points_per_batch;               /* 64 prompts decoded together */
    double pred_iou_thresh;             /* 0.8: keep predicted IoU > this (0 disables) */
    double stability_score_thresh;      /* 0.95: keep stability >= this (0 disables) */
    double stability_score_offset;      /* 1.0 */
    double mask_threshold;              /* 0.0: mask = logit > this */
    double box_nms_thresh;              /* 0.7: NMS within a crop */
    int crop_n_layers;                  /* 0: layer i has (2^i)^2 crops */
    double crop_nms_thresh;             /* 0.7: NMS across crops */
    double crop_overlap_ratio;          /* 512 / 1500 */
    int crop_n_points_downscale_factor; /* 1: layer i uses points_per_side / f^i */
    int n_point_grids;                  /* 0 (None), else >= crop_n_layers + 1 grids */
    const int *point_grid_sizes;        /* [n_point_grids] points per grid */
    const double *const *point_grids;   /* [n_point_grids] -> [size, 2] (x, y) in [0, 1];
                                           copied by sam2c_amg_create */
    int min_mask_region_area;           /* 0: > 0 fills holes and removes islands of at
                                           most this area (official: the predictor's
                                           max_hole_area / max_sprinkle_area, low-res) */
    int use_m2m;                        /* 0: 1 refines every mask once with itself as
                                           mask input */
    int multimask_output;               /* 1: three masks per point */
    sam2c_progress_fn progress;         /* NULL, or called after each batch */
    void *progress_user;
} sam2c_amg_params;
sam2c_amg_params sam2c_amg_default_params(void);

typedef struct sam2c_amg sam2c_amg;
/* Checks the parameters (message names the bad one); uses the model read-only.
 * Caller frees with sam2c_amg_free. */
int sam2c_amg_create(const sam2c_model *model, const sam2c_amg_params *params, sam2c_amg **out);
void sam2c_amg_free(sam2c_amg *g);

/* One mask record, as the official generator's dict (output_mode "uncompressed_rle"). */
typedef struct sam2c_amg_mask {
    int64_t area;
    double bbox[4];           /* XYWH with the official inclusive x1 / y1: w = x1 - x0 */
    double predicted_iou;
    double point_coords[2];   /* (x, y) image pixels of the prompt */
    double stability_score;
    double crop_box[4];       /* XYWH */
    int height, width;        /* image size */
    int n_counts;
    const uint32_t *counts;   /* COCO RLE runs, column-major, first run = background */
} sam2c_amg_mask;

typedef struct sam2c_amg_result {
    int n_masks;
    const sam2c_amg_mask *masks; /* in the official order; borrowed until the next
                                    generate or free */
    int width, height;
} sam2c_amg_result;

/* generate(): rgb is 8-bit RGB, row-major HWC, never retained. */
int sam2c_amg_generate(sam2c_amg *g, const uint8_t *rgb, int width, int height,
                       sam2c_amg_result *out);
/* Decodes a record's RLE into height*width bytes (row-major, 1 = mask). */
int sam2c_amg_mask_decode(const sam2c_amg_mask *m, uint8_t *out);

/* ---- video ---- */
/* Video tracking: official SAM2VideoPredictor semantics (init_state, add_new_points_or_box,
 * add_new_mask, clear_all_prompts_in_frame, remove_object, reset_state,
 * propagate_in_video) over a folder of JPEG frames, a video file, decoded frames, or a
 * live stream of frames pushed one at a time. Coordinates are video pixels (x, y); frame
 * indices count the loaded (or pushed) frames.
 *
 * Bounded memory (the default): frames are decoded on use (a few kept), and per-frame
 * outputs that the memory bank can no longer read are freed as tracking goes on, so
 * memory does not grow with the video's length. Outputs stay whole within `window`
 * frames of the last tracked frame and of every prompted frame; beyond, only what the
 * next frames read (memories of the last num_maskmem - 1 frames, object pointers of the
 * last max_obj_ptrs_in_encoder - 1), then nothing. So the usual calls give the official
 * results: a propagation from a prompted frame (the default start) or on from the last
 * tracked frame, and prompts within `window` frames of those. A prompt, or a propagation
 * start, farther from both reads only the memories still held (the official code skips
 * absent frames the same way). keep_all_outputs = 1 keeps every output (exactly the
 * official state, memory growing with the video). A live stream keeps only its last
 * `window` frames: prompts and tracking are possible on those only (an older frame fails
 * with SAM2C_ERR_LIMIT, naming the frames kept). */
typedef struct sam2c_video sam2c_video;

/* Polled at every frame boundary; nonzero cancels (SAM2C_ERR_CANCELLED). */
typedef int (*sam2c_cancel_fn)(void *user);

typedef struct sam2c_video_params {
    int corrections_as_cond;  /* 1 (sam2c default): clicks on an already tracked frame are
                                 kept as conditioning frames, so the next propagation
                                 uses them. 0 = official default
                                 (add_all_frames_to_correct_as_cond=False): they are stored
                                 as non-conditioning outputs and overwritten by it. */
    int fill_hole_area;       /* -1: the model configuration's (official 8); 0: off */
    int non_overlap_masks;    /* -1: the configuration's (official 0) */
    int clear_non_cond_mem_around_input; /* -1: the configuration's (official 0) */
    int max_frames;           /* 0: every frame; else load the first max_frames only */
    int skip_bad_frames;      /* 0: an unreadable frame fails the open (its name in the
                                 message); 1: it is left out (sam2c_video_skipped) */
    sam2c_progress_fn progress; /* NULL, or called as frames are loaded (done, total; total
                                   0 when unknown) and tracked; nonzero cancels */
    void *progress_user;
    sam2c_cancel_fn cancel;   /* NULL, or polled between frames; nonzero cancels */
    void *cancel_user;
    int keep_all_outputs;     /* 0 (default): bounded memory (above); 1: every per-frame
                                 output is kept, as the official predictor */
    int window;               /* 0: the memory window of the model (16 frames for the
                                 official ones); else the frames around the last tracked
                                 and each prompted frame whose outputs stay whole, and the
                                 frames a live stream keeps */
} sam2c_video_params;
sam2c_video_params sam2c_video_default_params(void);

/* A session without frames; uses the model read-only. params NULL: the defaults.
 * Caller frees with sam2c_video_free. */
int sam2c_video_create(const sam2c_model *model, const sam2c_video_params *params,
                       sam2c_video **out);
void sam2c_video_free(sam2c_video *v);

/* Loads the frames (init_state): a folder of .jpg/.jpeg frames sorted by the number in
 * their name (official order), or a video file any FFmpeg decoder reads (when sam2c is
 * built with FFmpeg). Every frame is decoded once to check it; frames are then decoded
 * again when used (a folder frame from its file; a video file forward from the current
 * position, or from the key frame before the frame wanted, or from the start when the
 * file cannot seek) and resized to the model input as the
 * official loader does (PIL bicubic). Replaces earlier frames and forgets every object.
 * Errors: a frame that cannot be read (unless skip_bad_frames), frames of different
 * sizes (named), a file that is not a video, more frames or pixels than the limits
 * allow. The file must not change while the session uses it. */
int sam2c_video_open(sam2c_video *v, const char *path);
/* The same from decoded frames: n pointers to (height, width, 3) RGB, never retained. */
int sam2c_video_set_frames(sam2c_video *v, int n, const uint8_t *const *rgb, int width,
                           int height);
int sam2c_video_num_frames(const sam2c_video *v);
void sam2c_video_size(const sam2c_video *v, int *width, int *height);
/* Name of a loaded frame: its file name without extension ("00042") for folders,
 * "%05d" of its position in the stream for video files, "%05d" of its index for a live
 * stream. Borrowed until the frames are replaced (live stream: until the next call);
 * NULL when out of range. */
const char *sam2c_video_frame_name(const sam2c_video *v, int frame_idx);
/* Frames left out by skip_bad_frames: "name: reason" for i in [0, count), else NULL. */
const char *sam2c_video_skipped(const sam2c_video *v, int i);

/* Masks of one frame for every object, in the order objects were first prompted.
 * Borrowed until the next call on the session. */
typedef struct sam2c_video_frame {
    int frame_idx;
    const char *frame_name;
    int n_obj;
    const int *obj_ids;          /* [n_obj] */
    int width, height;           /* video size */
    const float *logits;         /* [n_obj, height, width]; > 0 = object */
    const float *object_scores;  /* [n_obj] object-score logits (> 0: present);
                                    -1024 for an object without output on this frame */
} sam2c_video_frame;

/* add_new_points_or_box: points [n_points, 2] + labels [n_points] (1 positive,
 * 0 negative) and/or box [4] = (x0, y0, x1, y1), on frame_idx for object obj_id (a new
 * id creates the object). keep_old_points 0 (official clear_old_points=True) replaces
 * the frame's earlier clicks; a box needs them cleared. out (may be NULL) gets the
 * frame's masks. */
int sam2c_video_add_points(sam2c_video *v, int frame_idx, int obj_id, int n_points,
                           const float *points, const int32_t *labels, const float *box,
                           int keep_old_points, sam2c_video_frame *out);
/* add_new_mask: mask [height, width] of any size (nonzero = object), resized to the
 * model input. */
int sam2c_video_add_mask(sam2c_video *v, int frame_idx, int obj_id, const uint8_t *mask,
                         int width, int height, sam2c_video_frame *out);
/* clear_all_prompts_in_frame; an unknown obj_id is an error. out may be NULL. */
int sam2c_video_clear_prompts(sam2c_video *v, int frame_idx, int obj_id,
                              sam2c_video_frame *out);
/* remove_object; an unknown obj_id is an error when strict, else nothing happens. */
int sam2c_video_remove_object(sam2c_video *v, int obj_id, int strict);
/* reset_state: forgets every object, prompt and output (frames stay). */
void sam2c_video_reset(sam2c_video *v);
/* Ids of the current objects in prompt order; returns their count (ids may be NULL). */
int sam2c_video_objects(const sam2c_video *v, int *ids, int max_ids);

/* Called once per tracked frame: 0 goes on, > 0 stops (propagate returns 0), < 0
 * aborts (propagate returns that status). */
typedef int (*sam2c_video_frame_fn)(void *user, const sam2c_video_frame *f);
/* propagate_in_video: from start_frame (-1: the earliest prompted frame) over at most
 * max_frames further frames (-1: to the end), backwards when reverse. */
int sam2c_video_propagate(sam2c_video *v, int start_frame, int max_frames, int reverse,
                          sam2c_video_frame_fn on_frame, void *user);
/* May be called from another thread: the running (or the next) open / propagate of
 * this session stops at the next frame boundary with SAM2C_ERR_CANCELLED. */
void sam2c_video_cancel(sam2c_video *v);

/* Live stream (camera, pipe): frames are pushed one at a time, prompted with the calls
 * above on any frame still kept, and tracked one by one:
 *   sam2c_video_open_stream(v, w, h);
 *   for each frame: sam2c_video_push_frame(v, rgb, w, h, &t);
 *                   [sam2c_video_add_points(v, t, obj, ...);]
 *                   sam2c_video_track_frame(v, t, &f);     // masks of frame t
 * Replaces earlier frames and forgets every object. The stream keeps its last `window`
 * frames (and the outputs the memory bank reads); a frame cannot be read again once
 * dropped, so prompts (corrections included) are possible within the window only. Its
 * length being unknown, tracking takes it as at least 16 frames long (the official
 * pointer encoding depends on the video length up to 16 frames): on a video of 16
 * frames or more, a stream gives the whole-video results frame by frame. */
int sam2c_video_open_stream(sam2c_video *v, int width, int height);
/* Appends a (height, width, 3) RGB frame of the stream's size (never retained);
 * *frame_idx (may be NULL) gets its index. Errors: no stream open, another size. */
int sam2c_video_push_frame(sam2c_video *v, const uint8_t *rgb, int width, int height,
                           int *frame_idx);
/* Tracks frame_idx for every object (propagate_in_video from frame_idx over 0 further
 * frames, forward): the frame's masks in *out (may be NULL), borrowed until the next
 * call. No object yet: no masks (n_obj 0). Works on any session, not only streams.
 * Progress gets (frame_idx + 1, 0); cancellation applies. */
int sam2c_video_track_frame(sam2c_video *v, int frame_idx, sam2c_video_frame *out);
/* What the session holds now (tests, benchmarks): decoded frames, stored per-frame
 * outputs, and their bytes (any pointer may be NULL). */
int sam2c_video_resident(const sam2c_video *v, int *frames_held, int *outputs_held,
                         size_t *bytes);

#ifdef __cplusplus
}
#endif
#endif /* SAM2C_H */
