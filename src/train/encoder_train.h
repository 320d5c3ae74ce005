/* The SAM 2 image encoder (Hiera trunk + FPN neck) with saved activations ("forward
 * with tape") and its backward pass, plus the backward kernels only the encoder needs
 * and the LoRA adapters on the blocks' attention projections. Each forward mirrors the
 * inference code of src/model/hiera.c / fpn_neck.c (same kernels, same order) and is
 * checked against it in tests/test_encoder_grad.c; activations live on the tape arena.
 * Activations are NHWC inside the trunk (as the official code), NCHW in the neck.
 * Letters: S image side; H x W token grid entering a block, Ho x Wo leaving it; C block
 * dim, Co dim_out, Hd MLP hidden; ws window side (0 = global), nW windows, T tokens per
 * window, Tq after q-pooling; nh heads; D neck width (d_model); L trunk stages; R LoRA
 * rank. ref: sam2/modeling/backbones/{hieradet,image_encoder,utils}.py */
#ifndef S2_TRAIN_ENCODER_H
#define S2_TRAIN_ENCODER_H

#include "train/train.h"
#include "model/image_encoder.h"

/* ---- backward kernels (accumulate +=, reference C) ---- */

/* nn.MaxPool2d(k, stride k) on NHWC x [N, H, W, C] (floor): dx += dy [N, H/k, W/k, C]
 * routed to the first maximum of each window in scan order (a NaN wins), as PyTorch's
 * CPU kernel picks it. */
void s2_maxpool_nhwc_backward(const float *x, const float *dy, float *dx, int N, int H,
                              int W, int C, int k);
/* win [nWh * nWw, ws, ws, C] = zero-padded windows of x [H, W, C] (nWh = ceil(H / ws)).
 * ref: sam2/modeling/backbones/utils.py window_partition */
void s2_window_partition(float *win, const float *x, int H, int W, int C, int ws);
/* dx [H, W, C] += the gradient of the windows at the positions they copied. */
void s2_window_partition_backward(const float *dwin, float *dx, int H, int W, int C, int ws);
/* y [H, W, C] = unpartition(win) (padding dropped).
 * ref: sam2/modeling/backbones/utils.py window_unpartition */
void s2_window_unpartition(float *y, const float *win, int H, int W, int C, int ws);
/* dwin [nW, ws, ws, C] += dy at the kept positions (padding positions untouched). */
void s2_window_unpartition_backward(const float *dy, float *dwin, int H, int W, int C, int ws);
/* F.interpolate(mode="nearest") from (H, W) to (OH, OW) on C planes: dx += the
 * transpose applied to dy [C, OH, OW] (same source indices as s2_ref_interp_nearest). */
void s2_interp_nearest_backward(const float *dy, float *dx, int C, int H, int W, int OH,
                                int OW);
/* F.interpolate(mode="bicubic", align_corners=False) from (H, W) to (OH, OW) on C planes:
 * dx [C, H, W] += its transpose applied to dy [C, OH, OW]. The map's matrix is taken
 * from s2_ref_interp_bicubic itself (one-hot inputs), so forward and backward share
 * every tap and weight. Temporaries from c->scratch. */
void s2_interp_bicubic_backward(s2_ctx *c, const float *dy, float *dx, int C, int H, int W,
                                int OH, int OW);
/* Conv2d weight and bias gradients (groups 1, any stride and zero padding) of
 * y = conv(x, w) + b: dw [OC, C, KH, KW] += dy (x) im2col, db [OC] += sum dy (either
 * may be NULL). x [N, C, H, W], dy [N, OC, OH, OW]. The input gradient is not
 * computed (the patch embedding reads the image). Temporaries from c->scratch. */
void s2_conv2d_weight_backward(s2_ctx *c, const float *x, const float *dy, float *dw,
                               float *db, const s2_conv2d_desc *d);

/* s2_attention_backward (grad_ops.h) in GEMM form for the encoder's large windows:
 * same arguments and result, f32 accumulation as PyTorch's math path (the heads keep
 * the f64-accumulating kernel). (batch, head) pairs run in parallel on contiguous
 * copies; one workspace per thread (2 Nq Nk + 5 Nq d + 4 Nk d floats) from c->scratch. */
void s2_attention_backward_gemm(s2_ctx *c, const float *q, int64_t q_ld, const float *k,
                                int64_t k_ld, const float *v, int64_t v_ld, const float *dout,
                                int64_t o_ld, float *dq, float *dk, float *dv, int B, int H,
                                int64_t Nq, int64_t Nk, int d);

/* ---- one Hiera block ---- */

typedef struct s2_hblock_dims {
    int H, W, C;          /* input grid and dim */
    int Ho, Wo, Co;       /* output grid and dim */
    int nh, ws, qs, Hd;   /* heads, window (0 = global), q_stride, MLP hidden */
    bool pool;            /* q-pooling in this block */
} s2_hblock_dims;

/* Weights of one block (NULL sc_* when C == Co). Linear weights [out, in]. */
typedef struct s2_hblock_w {
    const float *n1_w, *n1_b;   /* norm1 (C) */
    const float *qkv_w, *qkv_b; /* attn.qkv (3Co, C), (3Co) */
    const float *ap_w, *ap_b;   /* attn.proj (Co, Co), (Co) */
    const float *sc_w, *sc_b;   /* proj (Co, C), (Co): the shortcut's channel change */
    const float *n2_w, *n2_b;   /* norm2 (Co) */
    const float *f1_w, *f1_b;   /* mlp.layers.0 (Hd, Co), (Hd) */
    const float *f2_w, *f2_b;   /* mlp.layers.1 (Co, Hd), (Co) */
} s2_hblock_w;

/* Gradient buffers of the same weights (NULL = frozen, not computed). */
typedef struct s2_hblock_g {
    float *n1_w, *n1_b, *qkv_w, *qkv_b, *ap_w, *ap_b, *sc_w, *sc_b;
    float *n2_w, *n2_b, *f1_w, *f1_b, *f2_w, *f2_b;
} s2_hblock_g;

typedef struct s2_hblock_tape {
    s2_hblock_dims k;
    int nWh, nWw, sh, sw;   /* window grid, side of one window (H, W when global) */
    int64_t nW, T, Tq;
    const float *x;         /* (H*W, C) input (borrowed: the previous block's output) */
    float *xn;              /* (H*W, C) norm1(x) */
    float *win;             /* (nW*T, C) zero-padded windows (= xn when global) */
    float *qkv;             /* (nW*T, 3Co) */
    float *qp;              /* (nW*Tq, Co) max-pooled q, NULL without pooling */
    float *o;               /* (nW*Tq, Co) attention output, heads side by side */
    float *sct;             /* (H*W, Co) proj(xn) before pooling, NULL when C == Co */
    float *y1;              /* (Ho*Wo, Co) shortcut + attention branch */
    float *xn2;             /* (Ho*Wo, Co) norm2(y1) */
    float *h1, *g1;         /* (Ho*Wo, Hd) mlp.layers.0 output, its GELU */
    float *y;               /* (Ho*Wo, Co) block output */
} s2_hblock_tape;

/* The shapes of block i of geometry g (entering at its input grid). */
s2_hblock_dims s2_hblock_dims_of(const s2_hiera_geom *g, int i);
/* ref: sam2/modeling/backbones/hieradet.py MultiScaleBlock.forward (+ MultiScaleAttention) */
int s2_hblock_forward_train(s2_tctx *t, const s2_hblock_dims *k, const s2_hblock_w *w,
                            const float *x, s2_hblock_tape *tp);
/* dy (Ho*Wo, Co) -> weight gradients into g (NULL entries skipped), dx (H*W, C) +=
 * (NULL: not computed). Temporaries from t->c->scratch. */
void s2_hblock_backward(s2_tctx *t, const s2_hblock_tape *tp, const s2_hblock_w *w,
                        const s2_hblock_g *g, const float *dy, float *dx);

/* ---- the whole encoder ---- */

typedef struct s2_enc_tape {
    s2_hiera_geom g;
    int S, L, kept, D;           /* image side, stages, levels kept after scalp, d_model */
    const float *img;            /* (3, S, S) borrowed */
    float *x0;                   /* (h0*w0, C0) patch embedding + position embedding */
    s2_hblock_w w[S2_MAX_BLOCKS];    /* weights each block used (LoRA-effective) */
    s2_hblock_tape blk[S2_MAX_BLOCKS];
    float *stage[4];             /* NHWC stage outputs (borrowed from blk[].y) */
    float *out[4];               /* (D, lh, lw) neck outputs of every level, NCHW */
} s2_enc_tape;

/* ref: hieradet.py Hiera.forward: et->g, et->S and et->img set by the caller; fills
 * x0, w, blk and stage. */
int s2_hiera_forward_train(s2_tctx *t, s2_enc_tape *et);
/* d_stage[s] (lh, lw, lc) NHWC gradients of the stage outputs (all non-NULL) -> the
 * trunk's weight / adapter gradients (blocks below the lowest trainable one skipped). */
void s2_hiera_backward(s2_tctx *t, const s2_enc_tape *et, float *const d_stage[4]);

/* ref: sam2/modeling/backbones/image_encoder.py ImageEncoder.forward (Hiera.forward +
 * FpnNeck.forward; scalp keeps out[0 .. kept)). img (3, S, S) normalised. LoRA adapters
 * of t->p (unless merged) are added to the attention projections. */
int s2_encoder_forward_train(s2_tctx *t, const float *img, s2_enc_tape *et);
/* d_out[k] (D, lh, lw) for the kept levels (NULL = no gradient) -> gradients of every
 * trainable encoder weight of t->p and of its LoRA adapters. */
void s2_encoder_backward(s2_tctx *t, const s2_enc_tape *et, const float *const d_out[4]);
/* True when t trains some part of the image encoder (dense or through adapters). */
bool s2_trainable_has_encoder(const s2_trainable *t);

/* ---- LoRA (rank-R adapters W x + (alpha / R) B A x on attn.qkv and attn.proj) ---- */

/* The weight the forward uses for slot widx of t->m: W + scale B A on the tape when it
 * carries an unmerged adapter, else W itself. */
const float *s2_lora_weight(s2_tctx *t, int widx);
/* From the gradient dW [out, in] of the effective weight: dA += scale B^T dW,
 * dB += scale dW A^T of the adapter on slot widx (no-op without one). */
void s2_lora_backward(s2_tctx *t, int widx, const float *dW);
/* Kaiming-uniform A (bound 1 / sqrt(in), as PEFT's a = sqrt(5)), zero B. */
void s2_lora_init(s2_trainable *t, uint64_t seed);
/* Folds every adapter into its weight (private merged copies; the clone then reads
 * W + scale B A and forwards skip the adapters). Idempotent. */
int s2_lora_merge(s2_trainable *t);
/* Data of weight slot i as a merged model holds it (merged into buf [numel] when it
 * carries an unmerged adapter, else the weight's own data). */
const float *s2_lora_merged_data(const s2_trainable *t, int i, float *buf);

#endif
