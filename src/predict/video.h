/* SAM 2 video predictor (ref: sam2/sam2_video_predictor.py SAM2VideoPredictor, the
 * current per-object one, not the legacy one): a session over the frames of one video
 * holding every object's prompts and per-frame outputs (conditioning, non-conditioning
 * and temporary ones), with the official calls: add_new_points_or_box, add_new_mask,
 * clear_all_prompts_in_frame, remove_object, reset_state, propagate_in_video.
 *
 * Storage: frames come from a source (predict/video_source.h) that keeps only a few of
 * them decoded (model-input-sized u8 RGB, as the official loader makes them) and
 * re-reads the others on use; a live stream is pushed frame by frame. The backbone
 * features of the most recent frame are cached. Every stored output owns its bf16
 * memory, low-res logits and object pointer; in bounded mode (the default) the outputs
 * no later step can read are freed as tracking goes on (predict/video_memory.c says
 * exactly which), so memory does not grow with the length of the video.
 *
 * Coordinates are video pixels (x, y); masks are row-major [h, w]. One thread at a
 * time per session; the model is only read. */
#ifndef S2_PREDICT_VIDEO_H
#define S2_PREDICT_VIDEO_H

#include <stdbool.h>
#include <stdint.h>
#include "model/model.h"
#include "model/sam2_base.h"
#include "backend/backend.h"
#include "predict/video_source.h"

typedef struct s2_video s2_video;

/* Predictor options (official SAM2VideoPredictor constructor arguments). */
typedef struct s2_video_params {
    int fill_hole_area;                   /* official 8 (0 = off): holes <= area -> 0.1 */
    bool non_overlap_masks;               /* official false */
    bool clear_non_cond_mem_around_input; /* official false */
    bool add_all_frames_to_correct_as_cond; /* official false */
    bool keep_all_outputs;                /* false: bounded memory; true: every output is
                                             kept (the official behaviour) */
    int window;                           /* bounded mode: frames around the last tracked
                                             frame and each prompted frame whose outputs
                                             stay whole (and, for a live stream, frames
                                             kept to be prompted); 0: the memory window,
                                             max(memory reach, pointer reach) + 1 (16) */
} s2_video_params;

/* The model configuration's predictor settings (fill_hole_area, non_overlap_masks, ...). */
s2_video_params s2_video_default_params(const sam2c_model *m);

/* An empty session (no frames yet). p may be NULL for the defaults. Caller frees with
 * s2_video_free. */
int s2_video_create(const sam2c_model *m, const s2_video_params *p, s2_video **out);
void s2_video_free(s2_video *v);

/* ref: sam2/utils/misc.py load_video_frames: the .jpg/.jpeg/.JPG/.JPEG files of `dir`
 * sorted by the integer of their name, decoded (no EXIF rotation, as PIL.Image.open),
 * resized to S x S with PIL's bicubic filter. The video size is the last frame's. */
int s2_video_load_dir(s2_video *v, const char *dir);
/* Frames already decoded (RGB HWC, all w x h), e.g. from a video decoder. All are
 * resized and kept in memory (never retained). */
int s2_video_set_frames(s2_video *v, int n, const uint8_t *const *rgb, int w, int h);
/* Any frame source (takes it, also on failure); the video size is w x h. */
int s2_video_set_source(s2_video *v, s2_vsource *src, int w, int h);
/* A live stream of w x h frames, empty until frames are pushed. Its length being
 * unknown, a track step takes it as at least max_obj_ptrs_in_encoder frames (the
 * official code normalises pointer distances by min(num_frames, that) - 1): on a video
 * of that many frames or more, streaming gives the whole-video results. Memories of
 * prompted stream frames are encoded at once (the frame may be dropped before the next
 * track call). */
int s2_video_open_stream(s2_video *v, int w, int h);
/* Appends a frame (h, w, 3) RGB of the stream's size (never retained); *frame_idx (may be
 * NULL) gets its index. The frames older than the window are dropped. */
int s2_video_push_frame(s2_video *v, const uint8_t *rgb, int w, int h, int *frame_idx);

int s2_video_num_frames(const s2_video *v);
/* Oldest frame that can still be prompted or tracked (0 unless a live stream). */
int s2_video_first_kept(const s2_video *v);
bool s2_video_is_stream(const s2_video *v);
/* The model-input frame (S x S x 3 RGB after PIL's resize), decoded as needed; NULL when
 * out of range or unreadable (message set). Borrowed until the next call on the session. */
const uint8_t *s2_video_frame_rgb(s2_video *v, int frame_idx);
void s2_video_size(const s2_video *v, int *w, int *h);

/* Video-resolution output of one frame: logits [n_obj, h, w] (positive = inside), in
 * the order objects were first prompted. Borrowed until the next call on the session. */
typedef struct s2_video_masks {
    int frame_idx;
    int n_obj;
    const int *obj_ids;   /* [n_obj] */
    int w, h;             /* video size */
    const float *logits;  /* [n_obj, h, w] */
} s2_video_masks;

/* ref: SAM2VideoPredictor.add_new_points_or_box. points [n, 2] + labels [n] (1 pos,
 * 0 neg) and/or box [4] = (x0, y0, x1, y1); with normalize_coords = false the
 * coordinates are already in [0, 1]. out may be NULL. */
int s2_video_add_points_or_box(s2_video *v, int frame_idx, int obj_id, const float *points,
                               const int32_t *labels, int n_points, const float *box,
                               bool clear_old_points, bool normalize_coords,
                               s2_video_masks *out);
/* ref: SAM2VideoPredictor.add_new_mask. mask [mh, mw], nonzero = object. */
int s2_video_add_mask(s2_video *v, int frame_idx, int obj_id, const uint8_t *mask, int mw,
                      int mh, s2_video_masks *out);
/* ref: SAM2VideoPredictor.clear_all_prompts_in_frame. out may be NULL. An unknown
 * object id is an error (the official code would create an empty object). */
int s2_video_clear_prompts(s2_video *v, int frame_idx, int obj_id, s2_video_masks *out);
/* ref: SAM2VideoPredictor.remove_object. Unknown id: error when strict, else no-op. */
int s2_video_remove_object(s2_video *v, int obj_id, bool strict);
/* ref: SAM2VideoPredictor.reset_state: forgets every object, prompt and output. */
void s2_video_reset(s2_video *v);

/* Called once per propagated frame: 0 continues, > 0 stops (propagate returns 0),
 * < 0 aborts (propagate returns that status). */
typedef int (*s2_video_frame_fn)(void *user, const s2_video_masks *m);
/* ref: SAM2VideoPredictor.propagate_in_video. start_frame_idx < 0: the earliest
 * conditioning frame; max_frame_num_to_track < 0: the whole video. */
int s2_video_propagate(s2_video *v, int start_frame_idx, int max_frame_num_to_track,
                       bool reverse, s2_video_frame_fn fn, void *user);

/* Tracks frame_idx forward for every object (propagate_in_video from frame_idx over 0
 * further frames): a stream's per-frame step. No object yet: out gets no masks. */
int s2_video_track_frame(s2_video *v, int frame_idx, s2_video_masks *out);

/* What the session holds now: decoded frames, stored outputs (every kind), and their
 * bytes (frames + outputs). Any pointer may be NULL. */
void s2_video_resident(const s2_video *v, int *frames_held, int *outputs_held, size_t *bytes);

/* Inspection (tests, tools): an object's output on a frame, looked up as the official
 * consolidation does (temporary conditioning, temporary non-conditioning, conditioning,
 * non-conditioning). NULL when absent or freed by the bounded window; pred_masks (and
 * maskmem) NULL when the window kept only the memory (or the pointer). *where (may be
 * NULL) gets 0..3 in that order. */
const s2_frame_out *s2_video_output(const s2_video *v, int obj_id, int frame_idx, int *where);

/* Optional observer of intermediate tensors: names are prefixed "f<frame>.o<obj_id>."
 * ("f1.o2.memory_attention.out"). */
void s2_video_set_dump(s2_video *v, s2_dump_fn fn, void *user);
void s2_video_set_backend(s2_video *v, const s2_backend *be);

#endif
