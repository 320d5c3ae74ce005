/* SAM 2 image encoder: Hiera trunk + FPN neck + sine position encodings, and the
 * conv_s0 / conv_s1 projections SAM2Base.forward_image applies to the two highest
 * resolution levels. Batch 1. Dimension letters: S image side, C = d_model,
 * level k has h[k] x w[k] cells (level 0 = highest resolution).
 * ref: sam2/modeling/backbones/{hieradet,image_encoder,utils}.py,
 *      sam2/modeling/position_encoding.py, sam2/modeling/sam2_base.py forward_image */
#ifndef S2_IMAGE_ENCODER_H
#define S2_IMAGE_ENCODER_H

#include "model/model.h"

/* Everything the encoder hands on. Pointers are carved out of one caller buffer by
 * s2_backbone_out_carve (no ownership). */
typedef struct s2_backbone_out {
    int n_levels;          /* levels kept after scalp (3 for official configs) */
    int C;                 /* d_model */
    int h[4], w[4];        /* per kept level, level 0 = highest resolution */
    float *fpn[4];         /* [1,C,h,w] NCHW neck outputs after scalp, BEFORE conv_s0/s1 */
    float *pos[4];         /* [1,C,h,w] sine position encodings of those levels */
    float *high_res[2];    /* conv_s0(fpn[0]) [1,C/8,h0,w0], conv_s1(fpn[1]) [1,C/4,h1,w1]
                              when use_high_res_features_in_sam, else NULL */
    int hr_c[2];           /* channels of high_res[0/1] (C/8, C/4), 0 when absent */
    bool pos_ready;        /* pos[] already hold the encodings (they depend only on the
                              config): set by the encoder, cleared by carve; later
                              encodes into the same buffers skip them */
} s2_backbone_out;

/* Geometry of the trunk derived from the config and validated against what the
 * official code can run (window / pooling / top-down sizes that line up). */
typedef struct s2_hiera_geom {
    int n_blocks, n_stages;
    s2_hiera_block blk[S2_MAX_BLOCKS];
    int stage_end[4];            /* index of the last block of each stage */
    int qs;                      /* q_stride (square) */
    int h0, w0;                  /* patch-embed grid */
    int bh[S2_MAX_BLOCKS], bw[S2_MAX_BLOCKS]; /* grid after each block */
    int lh[4], lw[4], lc[4];     /* stage outputs: grid and channels */
} s2_hiera_geom;

/* Fills g from c; SAM2C_ERR_UNSUPPORTED / ERR_ARG with a message when the config
 * describes a trunk or neck the official code could not run. */
int s2_hiera_geom_init(const s2_config *c, s2_hiera_geom *g);

/* Total floats a caller provides for s2_backbone_out_carve (0 for an invalid config). */
size_t s2_backbone_out_floats(const s2_config *c);
/* Points o's arrays into buf (s2_backbone_out_floats(c) floats, 64-byte aligned
 * pieces when buf is). Sets n_levels = 0 for an invalid config. */
void s2_backbone_out_carve(const s2_config *c, float *buf, s2_backbone_out *o);

/* Runs the whole encoder on img [1,3,S,S] (normalised, S = image_size) into out (carved
 * beforehand). Temporaries come from ctx->scratch; dumps every intermediate under its
 * fixture name when ctx->dump is set. 0 or a negative status with a message. */
/* Upper bound of the scratch-arena bytes one s2_image_encoder_forward takes at its peak
 * (trunk blocks, neck temporaries), so a session can reserve its arena up front: a
 * reservation is address space until touched, and growing by chunks instead leaves
 * freed chunks behind in the C heap (resident). 0 for an invalid config. */
size_t s2_image_encoder_scratch_bytes(const s2_config *c);
int64_t s2_hiera_scratch_floats(const s2_config *c, const s2_hiera_geom *g);
int s2_image_encoder_forward(s2_ctx *ctx, const sam2c_model *m, const float *img,
                             s2_backbone_out *out);

/* Hiera trunk only: stage outputs NHWC, stage_out[k] [1, lh[k], lw[k], lc[k]] in
 * ctx->scratch (valid until the caller releases the scratch). */
int s2_hiera_forward(s2_ctx *ctx, const sam2c_model *m, const s2_hiera_geom *g,
                     const float *img, float *stage_out[4]);

/* PositionEmbeddingSine.forward (normalize=True, scale=2*pi) for a [C,H,W] map:
 * out [C,H,W], channels [0,C/2) encode y, [C/2,C) encode x, each as interleaved
 * sin/cos pairs. C must be a positive multiple of 4 (as the official stack requires). */
int s2_pos_embed_sine(float *out /*[C,H,W]*/, int num_pos_feats /*C*/, int H, int W,
                      double temperature);

#endif
