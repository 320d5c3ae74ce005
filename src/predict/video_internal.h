/* Private state of the video predictor, shared by video.c (session, prompts,
 * propagation) and video_memory.c (stored outputs, object slots, the bounded-memory
 * window). Letters: S model input size, LH = S/4 low-res side, C hidden dim, Cm memory
 * dim, H, W top-level feature size. */
#ifndef S2_PREDICT_VIDEO_INTERNAL_H
#define S2_PREDICT_VIDEO_INTERNAL_H

#include "predict/video.h"
#include "predict/video_source.h"
#include "core/s2.h"

/* Point prompt of one object on one frame (model-input pixels). */
typedef struct s2_vpoints {
    int n;
    float *xy;      /* (n, 2) */
    int32_t *lab;   /* (n) */
} s2_vpoints;

/* One object: its prompts and its outputs, all indexed by frame (NULL = none). The
 * slot arrays live in one block owned by `cond`, sized for v->cap_frames frames. */
typedef struct s2_vobj {
    int id;
    s2_frame_out **cond, **non_cond;          /* official output_dict_per_obj */
    s2_frame_out **tmp_cond, **tmp_non_cond;  /* official temp_output_dict_per_obj */
    s2_vpoints *pts;                          /* point_inputs_per_obj */
    float **mask_in;                          /* mask_inputs_per_obj, (S, S) each */
    int8_t *tracked;                          /* frames_tracked_per_obj: -1 no, 0 fwd, 1 rev */
    int n_cond;                               /* conditioning outputs held */
    bool has_tmp;                             /* temporary outputs since the last preflight */
} s2_vobj;

struct s2_video {
    const sam2c_model *m;
    s2_video_params p;
    int S, LH, C, Cm, H, W;      /* model sizes */
    int num_frames, vw, vh;      /* video (num_frames grows as a stream is pushed) */
    int cap_frames;              /* frames the object slot arrays hold */
    s2_vsource *src;             /* the frames (NULL: none loaded) */
    s2_vobj *objs;               /* in first-prompt order (official obj_idx) */
    int n_obj, cap_obj;
    int cached_frame;            /* frame whose features are in bb (-1 none) */
    float *bb_buf, *img;         /* backbone outputs; preprocessed frame (3, S, S) */
    s2_backbone_out bb;
    s2_arena arena;              /* scratch of every model call, reset between calls */
    s2_ctx ctx;
    s2_dump_fn dump;
    void *dump_user;
    int cur_frame, cur_obj;      /* for dump names */
    float *out_logits;           /* [n_obj, vh, vw] last returned masks */
    int *out_ids;
    size_t out_cap;
    /* bounded memory (video_memory.c) */
    int window;                  /* frames around the last tracked one kept whole */
    int span_mem, span_ptr;      /* farthest frame a track step reads a memory / pointer of */
    int last_tracked;            /* -1: none since the last sweep */
    int *anchors, n_anchors, cap_anchors; /* conditioning frames (sorted), not for streams */
    bool anchors_dirty;
    int n_outputs;               /* stored outputs and their bytes */
    size_t out_bytes;
    s2_frame_out **hidden;       /* [span_mem] outputs hidden during one step */
    int *hidden_at, n_hidden;    /* [span_mem] their frames */
};

/* ---- stored outputs (video_memory.c) ---- */
/* A new output with room for every part (pointer, memory, low-res logits). */
s2_frame_out *s2v_out_new(s2_video *v);
void s2v_out_free(s2_video *v, s2_frame_out *o);
/* Where an output's bf16 memory goes inside its block. */
uint16_t *s2v_mem_slot(const s2_video *v, s2_frame_out *o);
/* Replaces slot *dst by o (NULL clears), freeing the previous output. */
void s2v_slot_set(s2_video *v, s2_frame_out **dst, s2_frame_out *o);
/* Sets an object's conditioning output on frame t (NULL clears; the old one is freed). */
void s2v_cond_set(s2_video *v, s2_vobj *o, int t, s2_frame_out *fo);
/* Detaches and returns an object's conditioning output on frame t. */
s2_frame_out *s2v_cond_take(s2_video *v, s2_vobj *o, int t);

/* ---- objects (video_memory.c) ---- */
int s2v_obj_find(const s2_video *v, int obj_id);
/* The object's index, created with empty per-frame slots when new. */
int s2v_obj_get(s2_video *v, int obj_id);
void s2v_obj_free(s2_video *v, s2_vobj *o);
/* Grows every object's slot arrays to hold at least n frames. */
int s2v_reserve_frames(s2_video *v, int n);

/* ---- bounded memory (video_memory.c) ---- */
/* Window sizes from the model configuration and the parameters. */
int s2v_window_init(s2_video *v);
/* After frame t was tracked and delivered: frees what no later step can read. */
void s2v_after_track(s2_video *v, int t, bool reverse);
/* Outputs without a memory that a step on frame t would read as memories are hidden
 * (skipped, as absent frames) during that step, until s2v_unhide. */
void s2v_hide_memoryless(s2_video *v, s2_vobj *o, int t, bool reverse);
void s2v_unhide(s2_video *v, s2_vobj *o);

#endif
