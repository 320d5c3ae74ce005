/* The SAM heads with saved activations ("forward with cache") and their backward passes:
 * MLP, two-way transformer, prompt encoder, mask decoder and the image-level pieces
 * that sit inside the differentiated graph (conv_s0 / conv_s1, no_mem_embed). Each
 * forward mirrors the inference code of src/model/ (same kernels, same order) and is
 * checked against it in tests/test_train.c; activations live on the tape arena.
 * Letters: see train.h; Nt decoder tokens, HW = h*w image tokens, Ci attention width,
 * C4 = C/4, C8 = C/8. */
#ifndef S2_TRAIN_HEADS_H
#define S2_TRAIN_HEADS_H

#include "train/train.h"

#define S2_NO_OBJ_SCORE_TRAIN (-1024.0f) /* sam2_base.py NO_OBJ_SCORE */
#define S2_MLP_MAX_LAYERS 8

/* ---- building blocks ---- */

typedef struct s2_mlp_tape {
    char prefix[112];
    int n_layers;
    bool sigmoid;
    int64_t rows;
    const float *x;                  /* (rows, in) */
    float *h[S2_MLP_MAX_LAYERS];     /* (rows, out_i) after ReLU (sigmoid on the last) */
} s2_mlp_tape;

/* ref: sam2/modeling/sam2_utils.py MLP.forward. Output in tp->h[n_layers - 1]. */
int s2_mlp_forward_train(s2_tctx *t, const char *prefix, int n_layers, bool sigmoid,
                         const float *x, int64_t rows, s2_mlp_tape *tp);
/* dy (rows, out) -> weight gradients, dx (rows, in) += (dx may be NULL). */
void s2_mlp_backward(s2_tctx *t, const s2_mlp_tape *tp, const float *dy, float *dx);

typedef struct s2_attn_tape {
    char prefix[112];
    int B, C, Ci, heads;
    int64_t Nq, Nk;
    const float *q_in, *k_in, *v_in; /* (B,Nq,C), (B,Nk,C), (B,Nk,C) */
    float *q, *k, *v, *o;            /* (B,Nq,Ci), (B,Nk,Ci), (B,Nk,Ci), (B,Nq,Ci) */
} s2_attn_tape;

typedef struct s2_block_tape {
    int layer;
    const float *Q, *K;              /* inputs (B,Nt,C), (B,HW,C) */
    float *qq, *a1, *x1, *q1;        /* self-attention: Q+QP, attn out, LN1 in / out */
    float *qq2, *kk, *a2, *x2, *q2;  /* token->image: Q1+QP, K+KP, attn, LN2 in / out */
    float *x3, *q3;                  /* MLP residual: LN3 in / out */
    float *qq3, *a4, *x4, *k4;       /* image->token: Q3+QP, attn (B,HW,C), LN4 in / out */
    s2_attn_tape sa, t2i, i2t;
    s2_mlp_tape mlp;
} s2_block_tape;

typedef struct s2_twoway_tape {
    int B, Nt, C, depth;
    int64_t HW;
    const float *tokens;             /* (B,Nt,C) queries in, also the query PE */
    const float *kpe;                /* (HW,C) */
    s2_block_tape *blk;              /* [depth] */
    float *qq, *kk, *a, *x;          /* final attention: inputs, output, LN input */
    s2_attn_tape fin;
    float *q_out, *k_out;            /* (B,Nt,C), (B,HW,C) */
} s2_twoway_tape;

/* ref: sam2/modeling/sam/transformer.py TwoWayTransformer.forward */
int s2_twoway_forward_train(s2_tctx *t, const float *tokens, const float *keys,
                            const float *kpe, int B, int Nt, int64_t HW, s2_twoway_tape *tp);
/* d_qout (B,Nt,C), d_kout (B,HW,C) -> weight gradients, d_tokens += (query input and
 * query PE), d_keys += (key input). */
void s2_twoway_backward(s2_tctx *t, const s2_twoway_tape *tp, const float *d_qout,
                        const float *d_kout, float *d_tokens, float *d_keys);

/* ---- image level ---- */

/* Frozen neck outputs of one image and what the heads read from them. */
typedef struct s2_img_tape {
    int C, h, w, hr_c[2];
    const float *fpn[3];   /* (C,4h,4w), (C,2h,2w), (C,h,w): neck outputs, borrowed */
    float *pix;            /* (C,h,w) fpn[2] + no_mem_embed (initial conditioning frame) */
    float *s0, *s1;        /* (C8,4h,4w), (C4,2h,2w) conv_s0 / conv_s1 (NULL without) */
    float *kpe;            /* (HW,C) dense PE, token-major */
    float *pe;             /* (C,h,w) dense PE */
    float *d_pix, *d_s0, *d_s1; /* gradient accumulators, zeroed by the forward */
    float *d_fpn[3];       /* optional (set after the forward): s2_img_backward adds the
                            * gradients of fpn[0..2] here (the encoder's backward input) */
} s2_img_tape;

/* ref: SAM2Base.forward_image (conv_s0 / conv_s1) + _prepare_memory_conditioned_features
 * (directly_add_no_mem_embed on an initial conditioning frame). fpn0 / fpn1 may be NULL
 * when the model has no high-res features. */
int s2_img_forward_train(s2_tctx *t, const float *fpn0, const float *fpn1, const float *fpn2,
                         s2_img_tape *it);
/* d_pix / d_s0 / d_s1 -> gradients of no_mem_embed, conv_s0, conv_s1 and, when set,
 * d_fpn[k] += the gradients of the neck levels. */
void s2_img_backward(s2_tctx *t, const s2_img_tape *it);

/* ---- prompt encoder + mask decoder ---- */

typedef struct s2_heads_in {
    int B, N;               /* objects, points per object (>= 0) */
    const float *coords;    /* [B, N, 2] model-input pixels */
    const int32_t *labels;  /* [B, N] 1 pos, 0 neg, 2 / 3 box corners */
    const float *mask;      /* [B, 1, H, W] mask-input logits, or NULL */
    bool multimask;
} s2_heads_in;

typedef struct s2_heads_tape {
    int B, N, Ns, Nt, T, M, C, h, w, H, W, C4, C8;
    int32_t *labels;        /* [B, Ns] including the padding point */
    /* prompt encoder mask path (NULL without a mask input) */
    float *mask;            /* (B,1,H,W) */
    float *m_c1, *m_n1, *m_c2, *m_n2, *m_g2; /* conv1 out, LN1 out, conv2 out, LN2 out, GELU2 out */
    float *m_g1;            /* GELU1 out */
    int mc1, mc2;           /* channels after conv1 / conv2 */
    float *sparse, *dense;  /* (B,Ns,C), (B,C,h,w) */
    float *tokens, *keys;   /* (B,Nt,C), (B,HW,C) */
    s2_twoway_tape tw;
    float *src, *z1, *n1, *g1, *z2, *up; /* upscaling: (B,C,h,w), (B,C4,2h,2w) x3, (B,C8,H,W) x2 */
    s2_mlp_tape hyp[8];     /* per mask token, rows = B */
    float *hyper_in;        /* (B,T,C8) */
    s2_mlp_tape iou_tp, obj_tp;
    float *tok_rows;        /* (3+T, B, C) gathered head inputs: obj, iou, mask tokens */
    /* outputs */
    float *all_logits;      /* (B,T,H,W) */
    float *all_iou;         /* (B,T) */
    float *obj;             /* (B) object-score logits (10 without pred_obj_scores) */
    int tok[8];             /* token behind each kept mask slot (M of them) */
    float *low;             /* (B,M,H,W) kept masks gated by object score > 0 */
    float *iou;             /* (B,M) */
    int32_t *best;          /* (B) argmax of iou (first maximum) */
    bool *is_obj;           /* (B) */
} s2_heads_tape;

/* ref: SAM2Base._forward_sam_heads (prompt encoder, decoder in training mode, selection
 * of tokens 1..T-1 or 0, NO_OBJ_SCORE gating, best-IoU index) without the upsampling. */
int s2_heads_forward_train(s2_tctx *t, const s2_img_tape *it, const s2_heads_in *in,
                           s2_heads_tape *ht);
/* d_low (B,M,H,W) and d_iou (B,M), d_obj (B) (any may be NULL) -> weight gradients,
 * it->d_pix / d_s0 / d_s1 +=, d_mask_in (B,1,H,W) += when the step had a mask input
 * (may be NULL). */
void s2_heads_backward(s2_tctx *t, s2_img_tape *it, const s2_heads_tape *ht,
                       const float *d_low, const float *d_iou, const float *d_obj,
                       float *d_mask_in);

#endif
