/* SAM heads: the prompt encoder, the two-way transformer and the mask decoder.
 * ref: sam2/modeling/sam/prompt_encoder.py, sam2/modeling/sam/transformer.py,
 *      sam2/modeling/sam/mask_decoder.py, sam2/modeling/position_encoding.py
 *      (PositionEmbeddingRandom), sam2/modeling/sam2_utils.py (MLP, LayerNorm2d).
 *
 * Dimension letters used in every comment of these files:
 *   B   prompts in the batch (objects, or batched boxes)
 *   N   points per prompt (box corners included), Ns = N (+1 when padded)
 *   C   transformer_dim = cfg.d_model (256 official, 64 micro)
 *   h,w image-embedding side = image_size / backbone_stride (64 official, 16 micro)
 *   H,W low-res mask side = 4h, 4w
 *   T   mask tokens = num_multimask_outputs + 1 (token 0 = single-mask token)
 *   Nt  decoder tokens = [obj_score_token] + iou_token + T mask tokens + Ns
 *
 * Every output buffer is carved out of ctx->scratch: borrowed until the caller resets
 * that arena. Nothing is retained between calls; the model is only read.
 * The field order of s2_prompt and s2_dec_in is part of the API (callers use positional
 * initialisers): append new fields at the end. */
#ifndef S2_SAM_HEADS_H
#define S2_SAM_HEADS_H

#include <stdbool.h>
#include <stdint.h>
#include "model/model.h"
#include "backend/backend.h"

/* ---- prompt encoder ---- */

/* ref: PromptEncoder.get_dense_pe. out: [C, h, w] (caller-allocated, C*h*w floats). */
void s2_prompt_dense_pe(const sam2c_model *m, float *out);

typedef struct s2_prompt {
    int B;                  /* batch, >= 1 */
    int N;                  /* points per batch item, >= 0 */
    const float *coords;    /* [B, N, 2] (x, y) in model-input pixels (S x S); the +0.5
                               shift and /S normalisation happen inside. NULL if N == 0 */
    const int32_t *labels;  /* [B, N]: 1 pos, 0 neg, 2 / 3 box corners, -1 padding */
    bool pad;               /* append a (0, 0) point with label -1 (official: pad =
                               boxes is None, always true from the predictors) */
    const float *mask;      /* [mask_B, 1, H, W] mask logits, or NULL (no_mask_embed) */
    int mask_B;             /* 1 (broadcast to B) or B */
} s2_prompt;

typedef struct s2_prompt_out {
    int B, Ns, C, h, w;
    float *sparse;          /* [B, Ns, C], Ns = N + pad */
    float *dense;           /* [B, C, h, w] */
} s2_prompt_out;

/* ref: PromptEncoder.forward (points only; boxes arrive as labels 2 / 3 corners, as
 * the predictors send them). Dumps "prompt_encoder.sparse" and "prompt_encoder.dense".
 * Errors (SAM2C_ERR_ARG): bad sizes, NULL arrays, labels outside [-1, 3]. */
int s2_prompt_encoder_forward(s2_ctx *c, const sam2c_model *m, const s2_prompt *p,
                              s2_prompt_out *out);

/* ---- shared pieces ---- */

/* ref: sam2/modeling/sam2_utils.py MLP.forward: n_layers Linear layers named
 * "<prefix>.layers.<i>.{weight,bias}" (sizes read from the weights), ReLU between,
 * optional sigmoid on the output. x: [rows, in] -> y: [rows, out]. */
void s2_sam_mlp(s2_ctx *c, const sam2c_model *m, const char *prefix, int n_layers,
                bool sigmoid_output, const float *x, int64_t rows, float *y);

/* ref: sam2/modeling/sam/transformer.py TwoWayTransformer.forward.
 * queries: [B, Nt, C] in: the tokens (also used as query PE), out: processed tokens.
 * keys:    [B, HW, C] in: image embedding (src + dense, token-major), out: processed.
 * key_pe:  [HW, C] image PE, token-major, shared by the batch. */
int s2_two_way_transformer(s2_ctx *c, const sam2c_model *m, float *queries, float *keys,
                           const float *key_pe, int B, int Nt, int64_t HW);

/* ---- mask decoder ---- */

typedef struct s2_dec_in {
    int B;                      /* prompts in the batch */
    int Ns;                     /* sparse tokens per prompt */
    const float *image_embed;   /* [Bi, C, h, w], Bi = 1 when repeat_image, else B */
    const float *image_pe;      /* [1, C, h, w] (s2_prompt_dense_pe) */
    const float *sparse;        /* [B, Ns, C] */
    const float *dense;         /* [B, C, h, w] */
    const float *feat_s0;       /* [Bi, C/8, H, W]   high-res features (conv_s0 applied) */
    const float *feat_s1;       /* [Bi, C/4, 2h, 2w] (conv_s1 applied); both NULL unless
                                   cfg.use_high_res_features_in_sam */
    bool multimask_output;
    bool repeat_image;          /* one image embedding shared by B prompts */
    bool training;              /* disables the dynamic stability selection */
} s2_dec_in;

typedef struct s2_dec_out {
    int B, T, M, n_sam, C, H, W;
    float *all_logits;      /* [B, T, H, W] low-res logits of every mask token */
    float *all_iou;         /* [B, T] (sigmoid when cfg.iou_prediction_use_sigmoid) */
    float *all_tokens;      /* [B, T, C] mask tokens after the transformer */
    float *obj_score;       /* [B, 1] object-score logits (10.0 when !pred_obj_scores) */
    float *masks;           /* [B, M, H, W] selected logits, unclamped; M = T-1 when
                               multimask_output, else 1 */
    float *iou;             /* [B, M] IoU of the selected masks */
    int32_t *token_idx;     /* [B, M] mask-token index behind each selected mask */
    float *sam_tokens;      /* [B, n_sam, C] official sam_tokens_out: tokens 1..T-1 when
                               multimask_output && use_multimask_token_for_obj_ptr
                               (n_sam = T-1), else token 0 (n_sam = 1), even when the
                               stability fallback picked another mask */
} s2_dec_out;

/* ref: MaskDecoder.forward + predict_masks (+ _dynamic_multimask_via_stability).
 * Dumps "decoder.all_low_res_logits", "decoder.all_iou", "decoder.object_score_logits".
 * Errors (SAM2C_ERR_ARG): NULL inputs, B < 1, missing / unexpected high-res features. */
int s2_mask_decoder_forward(s2_ctx *c, const sam2c_model *m, const s2_dec_in *in,
                            s2_dec_out *out);

/* ref: MaskDecoder._get_stability_scores on one [n] logit map: #(x > delta) /
 * #(x > -delta), 1 when the union is empty. */
float s2_mask_stability(const float *logits, int64_t n, float delta);

#endif
