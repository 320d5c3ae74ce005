/* SAM 2's video memory modules with saved activations ("forward with tape") and their
 * backward passes: the memory attention (RoPE self- and cross-attention layers) and the
 * memory encoder (mask downsampler, pixel projection, CXBlock fuser, output projection,
 * with SAM2Base._encode_new_memory's sigmoid scale / bias and no-object embedding).
 * Each forward calls the same kernels in the same order as src/model/memory_attention.c
 * and memory_encoder.c, so it reproduces the inference forward; tests/test_memory_grad.c
 * checks that and every backward against finite differences.
 *
 * Letters (as model/memory.h): C hidden dim, Cm memory dim, H x W feature grid,
 * N = H*W query tokens, M memory tokens, S model input side, Ci attention width,
 * hd = Ci / heads, P = hd / 2 rotation pairs, FF the FFN width, Cin = the encoder's
 * in_dim, hid = 4 Cin (CXBlock pwconv1). Batch size 1 (one object). */
#ifndef S2_TRAIN_MEM_TRAIN_H
#define S2_TRAIN_MEM_TRAIN_H

#include "train/train.h"
#include "model/memory.h"

/* ---- new backward kernels ---- */

/* cos / sin of the axial RoPE angles of an (H, W) grid: (N, P) each. */
typedef struct s2_rope_tab {
    float *cos, *sin;
    int64_t n_tok;
    int n_pair;
} s2_rope_tab;

/* ref: sam2/modeling/position_encoding.py compute_axial_cis (carved from c->scratch). */
int s2_rope_build(s2_ctx *c, s2_rope_tab *t, int hd, int H, int W, double theta);
/* ref: position_encoding.py apply_rotary_enc on the first n_rows rows of x (row stride
 * ld, heads of hd channels); row r uses grid token r % N (rope_k_repeat). With inverse
 * the rotation by minus the angle: the transpose, i.e. the backward pass dx = R^T dy. */
void s2_rope_rotate(float *x, int64_t ld, int64_t n_rows, int heads, int hd,
                    const s2_rope_tab *t, bool inverse);

/* Backward of any s2_conv2d_desc convolution (stride, padding, groups; dilation 1):
 * dx [N,C,H,W], dw [OC,C/groups,KH,KW], db [OC] accumulated (+=; each may be NULL).
 * groups == 1 runs im2col + GEMM, grouped / depthwise ones plain loops. */
void s2_conv2d_backward(s2_ctx *c, const s2_conv2d_desc *d, const float *x, const float *w,
                        const float *dy, float *dx, float *dw, float *db);

/* ---- memory attention ---- */

/* One RoPEAttention call's saved activations. */
typedef struct s2_rope_attn_tape {
    char pfx[96];
    int C, kv_dim, Ci, heads;
    int64_t Nq, Nk, nk_rope;       /* rotated keys: Nk - num_k_exclude_rope */
    const float *q_in, *k_in, *v_in; /* (Nq,C), (Nk,kv_dim), (Nk,kv_dim) */
    float *q, *k, *v, *o;            /* (Nq,Ci) rotated, (Nk,Ci) rotated, (Nk,Ci), (Nq,Ci) */
} s2_rope_attn_tape;

/* One MemoryAttentionLayer: inputs of every residual branch. */
typedef struct s2_ma_layer_tape {
    float *x0, *n1, *qk1;       /* (N,C) layer input, norm1 out, self-attn q/k input */
    float *x1, *n2, *q2;        /* after self-attn, norm2 out, cross-attn query input */
    float *x2, *n3, *h;         /* after cross-attn, norm3 out, relu(linear1) (N,FF) */
    s2_rope_attn_tape sa, ca;
} s2_ma_layer_tape;

typedef struct s2_memattn_tape {
    int H, W, C, Cm, L, FF;
    int64_t N, M;
    const float *memory;        /* (M, Cm) borrowed */
    float *kin;                 /* (M, Cm) cross-attention keys input */
    s2_rope_tab tab;
    s2_ma_layer_tape *lay;      /* [L] */
    float *xl;                  /* (N, C) before the final norm */
    float *out;                 /* (N, C) the output (seq-first, B = 1) */
} s2_memattn_tape;

/* ref: sam2/modeling/memory_attention.py MemoryAttention.forward (dropout = identity).
 * Output in tp->out. The inputs must outlive the tape. */
int s2_memattn_forward_train(s2_tctx *t, const s2_memattn_in *in, s2_memattn_tape *tp);
/* d_out (N, C) -> weight gradients, d_curr (N, C) +=, d_memory (M, Cm) +=,
 * d_memory_pos (M, Cm) += (each may be NULL). */
void s2_memattn_backward(s2_tctx *t, const s2_memattn_tape *tp, const float *d_out,
                         float *d_curr, float *d_memory, float *d_memory_pos);

/* ---- memory encoder ---- */

#define S2_MDS_MAX 8 /* mask downsampler stages */
#define S2_CX_MAX 8  /* fuser layers */

typedef struct s2_cx_tape {
    float *x;                   /* (Cin, HW) block input */
    float *dw, *ln;             /* (Cin, HW) dwconv out, LayerNorm2d out */
    float *t, *h1, *g1, *t2;    /* (HW,Cin) ln token-major, (HW,hid) pwconv1 out, GELU,
                                 * (HW,Cin) pwconv2 out */
    int hid;
} s2_cx_tape;

typedef struct s2_memenc_tape {
    int S, H, W, Cin, Cm, nl, n_cx;
    bool binarized;             /* mask_for_mem = (logits > 0): no gradient to the mask */
    float lam;                  /* is_obj_appearing (0 / 1) */
    const float *pix;           /* (C, H, W) top-level feature, borrowed */
    float *sig;                 /* (S, S) sigmoid of the logits */
    float *mask;                /* (S, S) mask_for_mem (scaled and biased) */
    float *ds_y[S2_MDS_MAX], *ds_n[S2_MDS_MAX], *ds_g[S2_MDS_MAX]; /* conv, LN2d, GELU */
    int ds_c[S2_MDS_MAX], ds_s[S2_MDS_MAX]; /* channels / side after stage i */
    float *x0;                  /* (Cin, HW) pix_feat_proj(pix) + downsampled mask */
    s2_cx_tape cx[S2_CX_MAX];
    float *xf;                  /* (Cin, HW) fuser output */
    float *feat;                /* (Cm, H, W) the memory feature (no-object embedding in) */
} s2_memenc_tape;

/* ref: sam2/modeling/sam2_base.py SAM2Base._encode_new_memory + memory_encoder.py
 * MemoryEncoder.forward(skip_mask_sigmoid=True). high (S, S) mask logits; binarize as
 * the eval-mode predictor does for masks from points (training never binarizes).
 * Output in tp->feat (f32, before any bf16 storage). */
int s2_memenc_forward_train(s2_tctx *t, const float *pix, int H, int W, const float *high,
                            int S, float object_score, bool binarize, s2_memenc_tape *tp);
/* d_feat (Cm, H, W) -> weight gradients, d_high (S, S) += (may be NULL). */
void s2_memenc_backward(s2_tctx *t, const s2_memenc_tape *tp, const float *d_feat,
                        float *d_high);

#endif
