/* Private state of a clip step shared by clip_step.c (frames, decoder passes, backward
 * through time) and clip_memory.c (memory gathering, object pointers, the pointer
 * token's backward). Letters: see clip_step.h (C, Cm, h, w, N = h*w, LH, S, T). */
#ifndef S2_TRAIN_CLIP_INTERNAL_H
#define S2_TRAIN_CLIP_INTERNAL_H

#include "train/clip_step.h"

/* One frame's saved state. */
typedef struct s2_clip_fstate {
    bool done, cond, mask_out, tracking;
    s2_img_tape it;                /* conv_s0/s1, PE; .pix = what the decoder read */
    /* memory attention (tracking frames) */
    s2_memattn_tape ma;
    int n_sp, n_ptr, ptr_k;        /* spatial memories, pointers, tokens per pointer */
    int *sp_f, *sp_tpos, *ptr_f;   /* their frames, t_pos */
    float *tpe;                    /* (n_ptr, C or Cm) sine PE of the pointer distances */
    /* decoder passes */
    int n_pass;
    s2_heads_tape *ht;             /* [n_pass] */
    float **d_low, **d_iou, **d_obj; /* loss gradients per pass (backward) */
    float *mask_f;                 /* (S, S) ground truth as the mask input (0 / 1) */
    /* object pointer: ptr = pa * proj + pb * no_obj_ptr */
    int tok;                       /* mask token behind the pointer */
    const float *ptr_in;           /* (C) the token row (obj_ptr_proj input) */
    s2_mlp_tape ptr_tp;
    float *proj;                   /* (C) obj_ptr_proj output */
    float pa, pb;
    s2_memenc_tape me;
    float *d_maskmem, *d_ptr;      /* (Cm, N), (C) gradients from later frames */
} s2_clip_fstate;

typedef struct s2_clip_ctx {
    s2_tctx *t;
    const s2_loss_cfg *lc;
    const s2_clip_in *in;
    s2_clip_out *out;
    bool backward;
    s2_clip_fstate *fs;            /* [T] */
    int C, Cm, h, w, S, LH;
    int64_t N, SS, HW4;
    float *pos_tok;                /* (N, C) top-level PE, token-major */
    float *mem_pos;                /* (Cm, N) memory PE */
} s2_clip_ctx;

/* Zeroed tape floats. */
float *s2_clip_tape_zeros(s2_tctx *t, int64_t n);

/* Memory of tracking frame f (selected conditioning frames, previous frames, object
 * pointers) through the memory attention into fs[f].it.pix. */
int s2_clip_attend(s2_clip_ctx *cc, int f);
/* d of fs[f].it.pix -> earlier frames' d_maskmem / d_ptr, maskmem_tpos_enc,
 * obj_ptr_tpos_proj and the memory attention's weights; clears it.d_pix. */
void s2_clip_attend_backward(s2_clip_ctx *cc, int f);

/* obj_ptr_proj of the token row, mixed with no_obj_ptr by (score > 0): into out (C). */
int s2_clip_pointer(s2_clip_ctx *cc, s2_clip_fstate *s, const float *token, float score,
                    float *out);
/* A further no-object mixing by lam (0 / 1), recomputing out (C). */
void s2_clip_pointer_mix(s2_clip_ctx *cc, s2_clip_fstate *s, float lam, float *out);
/* d_ptr (C) -> obj_ptr_proj and no_obj_ptr gradients, d_tok (C) +=. */
void s2_clip_pointer_backward(s2_clip_ctx *cc, const s2_clip_fstate *s, const float *d_ptr,
                              float *d_tok);
/* d_tok (C) on the output of mask token `tok` of one decoder pass (B = 1) -> decoder /
 * prompt encoder gradients, it->d_pix +=, d_mask_in (LH, LW) += when the pass had a
 * mask input (may be NULL). */
void s2_clip_token_backward(s2_tctx *t, s2_img_tape *it, const s2_heads_tape *ht, int tok,
                            const float *d_tok, float *d_mask_in);

#endif
