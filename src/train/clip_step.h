/* One clip training step for one object, as SAM2Train.forward_tracking runs it: the
 * initial conditioning frames first (a click, a noisy box or the ground-truth mask as
 * input), corrective clicks on the frames to correct, then every other frame tracked
 * from the memory of the frames before it (memory attention over spatial memories and
 * object pointers), each frame's final mask encoded into a new memory. The loss of every
 * decoder pass of every frame is summed; the backward pass runs through time (the memory
 * and pointer of frame t feed the frames after it). The image encoder is frozen: each
 * frame's neck outputs are inputs. Batch size 1 (one object): objects of a clip are
 * independent in SAM 2, so a batch is a loop over objects with a shared num_objects.
 * Letters: C hidden dim, Cm memory dim, h x w feature grid, LH x LW = 4h x 4w low-res
 * masks, S model input side, T frames.
 * ref: training/model/sam2.py SAM2Train, sam2/modeling/sam2_base.py SAM2Base */
#ifndef S2_TRAIN_CLIP_STEP_H
#define S2_TRAIN_CLIP_STEP_H

#include "train/mem_train.h"
#include "train/heads_train.h"
#include "train/loss.h"

#define S2_CLIP_MAX_FRAMES 256

typedef struct s2_clip_frame_in {
    const float *fpn[3];   /* frozen neck outputs (C,4h,4w), (C,2h,2w), (C,h,w) */
    const uint8_t *gt;     /* [S, S] the object's ground truth (non-zero = object) */
    bool init_cond;        /* initial conditioning frame (prompted; frame 0 must be one) */
    bool correct;          /* receives n_correct corrective clicks (point input) */
    int n_pts;             /* prompt of an init_cond frame: 1 click or 2 box corners
                            * (labels 2, 3); 0 = the ground-truth mask as input */
    float xy[4];           /* [n_pts, 2] model-input pixels */
    int32_t lab[2];        /* [n_pts] */
} s2_clip_frame_in;

typedef struct s2_clip_in {
    int T;                       /* frames */
    const s2_clip_frame_in *f;   /* [T] in time order */
    const float *pos;            /* (C, h, w) top-level position encoding of the neck */
    int n_correct;               /* corrective clicks per frame to correct (YAML: 7) */
    double prob_from_gt;         /* correction sampled from the GT alone (YAML: 0.1) */
    bool center_clicks;          /* corrections by s2_sample_point_center */
    uint64_t *rng;               /* for the corrections (may be NULL without them) */
    double num_objects;          /* loss normalisation: objects of the whole batch */
    bool add_corrected_as_cond;  /* add_all_frames_to_correct_as_cond (YAML: true) */
    bool eval;                   /* SAM2Base in eval mode, as the video predictor runs it:
                                  * memory_temporal_stride_for_eval, only past pointers,
                                  * binarised memory masks from points, bf16 memories */
} s2_clip_in;

/* What one frame ended with (arrays on the tape). */
typedef struct s2_clip_frame_out {
    float *low;            /* (LH, LW) final chosen low-res logits (gated) */
    float *high;           /* (S, S) their upsampling (the mask input's +-10 logits) */
    float *obj_ptr;        /* (C) object pointer */
    float *maskmem;        /* (Cm, h, w) the memory feature later frames read */
    float score;           /* object-score logit of the final pass */
    int n_pass;            /* decoder passes (1 + corrections; 1 for a mask input) */
    bool cond;             /* stored as a conditioning frame */
    double iou;            /* IoU(high > 0, gt) */
} s2_clip_frame_out;

typedef struct s2_clip_out {
    s2_loss_parts loss;    /* summed over frames and passes (each / num_objects) */
    s2_clip_frame_out *f;  /* [T] (on the tape) */
    double miou;           /* mean IoU over all frames */
    double miou_tracked;   /* mean IoU over the frames that were not init_cond (NAN: none) */
} s2_clip_out;

/* Forward (and with backward = true, gradients added to t->p, which must train
 * S2_TRAIN_MEMORY and S2_TRAIN_HEADS) of one object's clip. The tape must be reset by
 * the caller afterwards. */
int s2_clip_step(s2_tctx *t, const s2_loss_cfg *lc, const s2_clip_in *in, bool backward,
                 s2_clip_out *out);

#endif
