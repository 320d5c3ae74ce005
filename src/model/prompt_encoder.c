/* SAM 2 prompt encoder: random-Fourier point encodings, label embeddings, mask
 * downscaling. Dimension letters: see sam_heads.h (B, N, Ns, C, h, w, H, W).
 * ref: sam2/modeling/sam/prompt_encoder.py, sam2/modeling/position_encoding.py */
#include "model/sam_heads.h"

#include <math.h>
#include <string.h>

#define PE "sam_prompt_encoder."

/* 2*pi as PyTorch applies it to a float32 tensor (the scalar is rounded to float). */
static const float S2_TWO_PI_F = 6.28318530717958647692f;

// ref: sam2/modeling/position_encoding.py PositionEmbeddingRandom._pe_encoding
/* One point (x, y) normalised to [0, 1] -> [sin(2pi((2c-1) @ G)), cos(...)], written
 * with a stride so that both [.., 2F] rows and [2F, h, w] planes can be filled. */
static void pe_encode(const float *G /* [2, F] */, int F, float x, float y, float *out,
                      int64_t stride) {
    float cx = 2.0f * x - 1.0f, cy = 2.0f * y - 1.0f;
    for (int j = 0; j < F; j++) {
        float v = cx * G[j] + cy * G[F + j];
        v = S2_TWO_PI_F * v;
        out[(int64_t)j * stride] = sinf(v);
        out[(int64_t)(F + j) * stride] = cosf(v);
    }
}

/* The Gaussian matrix of the prompt encoder's PE layer and its width F = C / 2. */
static const float *pe_matrix(const sam2c_model *m, int *F) {
    const s2_tensor *g = s2_wt(m, PE "pe_layer.positional_encoding_gaussian_matrix");
    *F = (int)g->shape[1];
    return (const float *)g->data;
}

// ref: sam2/modeling/sam/prompt_encoder.py PromptEncoder.get_dense_pe
// ref: sam2/modeling/position_encoding.py PositionEmbeddingRandom.forward
void s2_prompt_dense_pe(const sam2c_model *m, float *out) {
    int F;
    const float *G = pe_matrix(m, &F);
    int h = s2_cfg_feat_side(&m->cfg), w = h;
    int64_t hw = (int64_t)h * w;
    for (int i = 0; i < h; i++) {
        float y = ((float)i + 0.5f) / (float)h;
        for (int j = 0; j < w; j++) {
            float x = ((float)j + 0.5f) / (float)w;
            pe_encode(G, F, x, y, out + (int64_t)i * w + j, hw);
        }
    }
}

/* Checks the prompt arrays before anything is computed. */
static int check_prompt(const sam2c_model *m, const s2_prompt *p) {
    if (!p) return s2_err(SAM2C_ERR_ARG, "prompt encoder: NULL prompt");
    if (p->B < 1 || p->N < 0)
        return s2_err(SAM2C_ERR_ARG, "prompt encoder: bad sizes B=%d N=%d", p->B, p->N);
    if (p->N > 0 && (!p->coords || !p->labels))
        return s2_err(SAM2C_ERR_ARG, "prompt encoder: %d points but NULL coords/labels",
                      p->N);
    if (p->mask && p->mask_B != 1 && p->mask_B != p->B)
        return s2_err(SAM2C_ERR_ARG, "prompt encoder: mask batch %d is neither 1 nor %d",
                      p->mask_B, p->B);
    for (int64_t i = 0; i < (int64_t)p->B * p->N; i++) {
        int l = p->labels[i];
        if (l < -1 || l > 3)
            return s2_err(SAM2C_ERR_ARG, "prompt encoder: point label %d not in [-1, 3]", l);
        if (!isfinite(p->coords[2 * i]) || !isfinite(p->coords[2 * i + 1]))
            return s2_err(SAM2C_ERR_ARG, "prompt encoder: non-finite point coordinate");
    }
    (void)m;
    return SAM2C_OK;
}

// ref: sam2/modeling/sam/prompt_encoder.py PromptEncoder._embed_points
/* sparse [B, Ns, C]: PE of (p + 0.5) / S plus the label's embedding; padding points
 * (label -1) carry only not_a_point_embed. */
static void embed_points(const sam2c_model *m, const s2_prompt *p, int Ns, float *sparse) {
    int F;
    const float *G = pe_matrix(m, &F);
    int C = 2 * F;
    float S = (float)m->cfg.image_size;
    const float *not_a_point = s2_w(m, PE "not_a_point_embed.weight"); // [1, C]
    const float *label_emb[4];                                         // [1, C] each
    for (int k = 0; k < 4; k++) label_emb[k] = s2_w(m, PE "point_embeddings.%d.weight", k);
    for (int b = 0; b < p->B; b++) {
        for (int n = 0; n < Ns; n++) {
            float *o = sparse + ((int64_t)b * Ns + n) * C;
            int label = -1;
            if (n < p->N) {
                int64_t i = (int64_t)b * p->N + n;
                label = p->labels[i];
                float x = (p->coords[2 * i] + 0.5f) / S;
                float y = (p->coords[2 * i + 1] + 0.5f) / S;
                pe_encode(G, F, x, y, o, 1);
            }
            if (label == -1) {
                memcpy(o, not_a_point, (size_t)C * sizeof(float));
                continue;
            }
            for (int ch = 0; ch < C; ch++) o[ch] += label_emb[label][ch];
        }
    }
}

/* One 2-D convolution (stride = kernel, no padding) of the mask downscaler; sizes
 * from the weight [OC, IC, K, K]. x [N, IC, H, W] -> y [N, OC, H/K, W/K]. */
static float *mask_conv(s2_ctx *c, const sam2c_model *m, int idx, const float *x, int N,
                        int H, int W, int *OC, int *OH, int *OW) {
    const s2_tensor *wt = s2_wt(m, PE "mask_downscaling.%d.weight", idx);
    const float *bias = s2_w(m, PE "mask_downscaling.%d.bias", idx);
    s2_conv2d_desc d = {.N = N, .C = (int)wt->shape[1], .H = H, .W = W,
                        .OC = (int)wt->shape[0], .KH = (int)wt->shape[2],
                        .KW = (int)wt->shape[3], .sh = (int)wt->shape[2],
                        .sw = (int)wt->shape[3], .ph = 0, .pw = 0, .groups = 1};
    s2_conv2d_out_hw(&d, OH, OW);
    *OC = d.OC;
    float *y = s2_scratch_f32(c, (int64_t)N * d.OC * *OH * *OW);
    s2_op_conv2d(c, y, x, (const float *)wt->data, bias, &d);
    return y;
}

// ref: sam2/modeling/sam/prompt_encoder.py PromptEncoder._embed_masks (mask_downscaling)
/* mask [Bm, 1, H, W] -> conv 2x2/2 -> LayerNorm2d -> GELU -> conv 2x2/2 -> LayerNorm2d
 * -> GELU -> conv 1x1 -> dense [B, C, h, w] (a batch of 1 is broadcast to B). */
static int embed_mask(s2_ctx *c, const sam2c_model *m, const s2_prompt *p, float *dense,
                      int h, int w) {
    int Bm = p->mask_B, C = m->cfg.d_model, OC, OH, OW;
    s2_arena_mark mark = s2_arena_get_mark(c->scratch);
    float *x = mask_conv(c, m, 0, p->mask, Bm, 4 * h, 4 * w, &OC, &OH, &OW);
    s2_op_layernorm2d(c, x, x, s2_w(m, PE "mask_downscaling.1.weight"),
                       s2_w(m, PE "mask_downscaling.1.bias"), Bm, OC, (int64_t)OH * OW, 1e-6f);
    s2_op_gelu(c, x, (int64_t)Bm * OC * OH * OW);
    x = mask_conv(c, m, 3, x, Bm, OH, OW, &OC, &OH, &OW);
    s2_op_layernorm2d(c, x, x, s2_w(m, PE "mask_downscaling.4.weight"),
                       s2_w(m, PE "mask_downscaling.4.bias"), Bm, OC, (int64_t)OH * OW, 1e-6f);
    s2_op_gelu(c, x, (int64_t)Bm * OC * OH * OW);
    x = mask_conv(c, m, 6, x, Bm, OH, OW, &OC, &OH, &OW);
    if (OC != C || OH != h || OW != w) {
        s2_arena_release(c->scratch, mark);
        return s2_err(SAM2C_ERR_SHAPE, "prompt encoder: mask embedding [%d,%d,%d] != [%d,%d,%d]",
                      OC, OH, OW, C, h, w);
    }
    int64_t per = (int64_t)C * h * w;
    for (int b = 0; b < p->B; b++)
        memcpy(dense + b * per, x + (Bm == 1 ? 0 : b) * per, (size_t)per * sizeof(float));
    s2_arena_release(c->scratch, mark);
    return SAM2C_OK;
}

// ref: sam2/modeling/sam/prompt_encoder.py PromptEncoder.forward
int s2_prompt_encoder_forward(s2_ctx *c, const sam2c_model *m, const s2_prompt *p,
                              s2_prompt_out *out) {
    S2_CHECK(check_prompt(m, p));
    int C = m->cfg.d_model, h = s2_cfg_feat_side(&m->cfg), w = h;
    int Ns = p->N + (p->pad ? 1 : 0);
    int64_t per = (int64_t)C * h * w;
    *out = (s2_prompt_out){.B = p->B, .Ns = Ns, .C = C, .h = h, .w = w};
    out->sparse = s2_scratch_f32(c, (int64_t)p->B * Ns * C + 1);
    out->dense = s2_scratch_f32(c, (int64_t)p->B * per);
    embed_points(m, p, Ns, out->sparse);
    if (p->mask) {
        S2_CHECK(embed_mask(c, m, p, out->dense, h, w));
    } else {
        const float *nm = s2_w(m, PE "no_mask_embed.weight"); // [1, C]
        for (int b = 0; b < p->B; b++)
            for (int ch = 0; ch < C; ch++)
                for (int64_t i = 0; i < (int64_t)h * w; i++)
                    out->dense[b * per + ch * (int64_t)h * w + i] = nm[ch];
    }
    s2_dump(c, "prompt_encoder.sparse", out->sparse, 3, (int64_t[]){p->B, Ns, C});
    s2_dump(c, "prompt_encoder.dense", out->dense, 4, (int64_t[]){p->B, C, h, w});
    return SAM2C_OK;
}
