/* SAM 2's video memory modules: the memory encoder (mask + image feature -> memory
 * feature) and the memory attention (current frame feature attending to the memory
 * bank with 2-D rotary position encoding). Batch size 1 (the video predictor runs
 * one object at a time, as the official one does).
 *
 * Dimension letters used in this file and its two .c files:
 *   C   = hidden dim (neck d_model = memory_attention.d_model, 256 for tiny)
 *   Cm  = mem_dim (memory_encoder.out_dim, 64 for tiny)
 *   H,W = low-resolution feature size (image_size / backbone_stride)
 *   S   = model input size (image_size); the mask fed to the encoder is (S, S)
 *   M   = memory tokens (spatial memories + object-pointer tokens)
 */
#ifndef S2_MEMORY_H
#define S2_MEMORY_H

#include <stdint.h>
#include "model/model.h"
#include "backend/backend.h"

/* ref: sam2/modeling/memory_encoder.py MemoryEncoder.forward (skip_mask_sigmoid=True:
 * the caller has already scaled the mask, as SAM2Base._encode_new_memory does).
 *   pix_feat  (C, H, W)   top-level image feature (no no_mem_embed)
 *   mask      (S, S)      mask_for_mem (sigmoid or binarised, *scale + bias)
 *   feat_out  (Cm, H, W)  memory feature before bf16 rounding and no-object embedding
 *   pos_out   (Cm, H, W)  sine position encoding (may be NULL)
 * S must downsample to (H, W) through the mask downsampler. */
int s2_memory_encoder_forward(s2_ctx *c, const sam2c_model *m, const float *pix_feat,
                              int H, int W, const float *mask, int S, float *feat_out,
                              float *pos_out);

/* Sine position encoding of the memory (PositionEmbeddingSine(Cm), normalised),
 * the same for every frame: out (Cm, H, W). */
int s2_memory_pos_enc(const sam2c_model *m, int H, int W, float *out);

/* Channels of the memory feature (Cm), read from the checkpoint layout. */
int s2_memory_dim(const sam2c_model *m);

/* Inputs of one memory-attention call (seq-first with B = 1, i.e. token rows). */
typedef struct s2_memattn_in {
    const float *curr;        /* (H*W, C) current frame feature */
    const float *curr_pos;    /* (H*W, C) its sine position encoding */
    int H, W;
    const float *memory;      /* (M, Cm) spatial memories then object-pointer tokens */
    const float *memory_pos;  /* (M, Cm) */
    int64_t n_mem;            /* M */
    int num_obj_ptr_tokens;   /* trailing tokens that RoPE leaves alone */
} s2_memattn_in;

/* ref: sam2/modeling/memory_attention.py MemoryAttention.forward.
 * out (H*W, C): the normed output, seq-first as the official code returns it. */
int s2_memory_attention_forward(s2_ctx *c, const sam2c_model *m, const s2_memattn_in *in,
                                float *out);

/* bfloat16 storage of memory features (round to nearest even), as the official
 * predictor's `maskmem_features.to(torch.bfloat16)`. */
void s2_to_bf16(uint16_t *dst, const float *src, int64_t n);
void s2_from_bf16(float *dst, const uint16_t *src, int64_t n);

#endif
