/* SAM2Base's tracking step: condition the current frame's feature on the memory bank,
 * run the SAM heads on the prompts, and encode the result into a new memory.
 * Batch size 1 (one object), as the official video predictor runs it.
 *
 * Dimension letters:
 *   C     hidden dim (d_model)         Cm   memory dim (memory_encoder.out_dim)
 *   H, W  top-level feature size       LH, LW low-res mask size (4H, 4W)
 *   S     model input size (image_size)
 */
#ifndef S2_SAM2_BASE_H
#define S2_SAM2_BASE_H

#include <stdbool.h>
#include <stdint.h>
#include "model/model.h"
#include "model/image_encoder.h"
#include "backend/backend.h"

/* a large negative placeholder score for missing objects (sam2_base.py NO_OBJ_SCORE) */
#define S2_NO_OBJ_SCORE (-1024.0f)

/* One object's stored output on one frame (the official "compact_current_out").
 * Owned by whoever stores it (the video predictor), one allocation per output. */
typedef struct s2_frame_out {
    uint16_t *maskmem;      /* (Cm, H, W) bf16 memory feature; NULL until encoded */
    float *pred_masks;      /* (LH, LW) low-res logits (after NO_OBJ_SCORE gating) */
    float *obj_ptr;         /* (C) object pointer */
    float object_score;     /* object-score logit */
} s2_frame_out;

/* One object's memory bank as _prepare_memory_conditioned_features reads it:
 * per-frame slots, NULL where the frame has no output. Borrowed. */
typedef struct s2_mem_bank {
    int num_frames;
    s2_frame_out *const *cond;      /* [num_frames] conditioning outputs */
    s2_frame_out *const *non_cond;  /* [num_frames] non-conditioning outputs */
} s2_mem_bank;

/* Inputs of one track_step (sam2_base.py SAM2Base.track_step). */
typedef struct s2_track_in {
    int frame_idx;
    bool is_init_cond_frame;
    const s2_backbone_out *bb;       /* the frame's features (conv_s0/s1 applied) */
    int n_points;                    /* 0 = no point prompt */
    const float *point_coords;       /* (n_points, 2) model-input pixels */
    const int32_t *point_labels;     /* (n_points) */
    const float *mask_input;         /* (S, S) binary mask prompt, or NULL */
    const s2_mem_bank *bank;         /* this object's outputs so far */
    int num_frames;
    bool reverse;                    /* track_in_reverse */
    bool run_mem_encoder;
    const float *prev_sam_mask_logits; /* (LH, LW), already clamped, or NULL */
} s2_track_in;

/* Outputs; every array is carved out of ctx->scratch (borrowed until released). */
typedef struct s2_track_out {
    int LH, LW, S, C, Cm, H, W;
    float *pred_masks;        /* (LH, LW) chosen low-res logits */
    float *pred_masks_high_res; /* (S, S) */
    float *obj_ptr;           /* (C) */
    float object_score;
    float *maskmem;           /* (Cm, H, W) f32 before bf16 rounding, NULL when not run */
    bool multimask;           /* decoder ran with multimask output */
    int best;                 /* index of the chosen mask among the returned ones */
    float iou[4];             /* IoU estimates of the returned masks (first 4) */
    int n_masks;
    int num_mem_tokens, num_obj_ptr_tokens; /* what the memory attention saw (0, 0: none) */
} s2_track_out;

/* ref: sam2/modeling/sam2_base.py SAM2Base.track_step (+ _track_step, _forward_sam_heads,
 * _use_mask_as_output, _prepare_memory_conditioned_features, _encode_memory_in_output). */
int s2_track_step(s2_ctx *c, const sam2c_model *m, const s2_track_in *in, s2_track_out *out);

/* ref: sam2/modeling/sam2_base.py SAM2Base._encode_new_memory.
 * high_res_mask (S, S) logits; feat_out (Cm, H, W) f32 with the no-object embedding
 * added when object_score <= 0 (bf16 rounding is the caller's storage step). */
int s2_encode_new_memory(s2_ctx *c, const sam2c_model *m, const s2_backbone_out *bb,
                         const float *high_res_mask, float object_score,
                         bool is_mask_from_pts, float *feat_out);

/* ref: sam2/modeling/sam2_base.py SAM2Base._prepare_memory_conditioned_features.
 * pix_out (C, H, W): the memory-conditioned feature the mask decoder receives.
 * Reports the memory / pointer token counts through out_mem_tokens / out_ptr_tokens
 * (may be NULL). */
int s2_prepare_memory_conditioned(s2_ctx *c, const sam2c_model *m, int frame_idx,
                                  bool is_init_cond_frame, const s2_backbone_out *bb,
                                  const s2_mem_bank *bank, int num_frames, bool reverse,
                                  float *pix_out, int *out_mem_tokens, int *out_ptr_tokens);

/* Low-res mask side of the model (image_size / 4). */
static inline int s2_lowres_side(const sam2c_model *m) { return m->cfg.image_size / 4; }

#endif
