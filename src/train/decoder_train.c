/* Prompt encoder + mask decoder with saved activations and their backward pass, plus
 * the image-level pieces inside the differentiated graph (conv_s0 / conv_s1 and
 * no_mem_embed). Mirrors src/model/prompt_encoder.c and mask_decoder.c; the sparse
 * point embeddings are produced by s2_prompt_encoder_forward itself (their only
 * parameters are added label embeddings, whose gradient needs just the labels).
 * Letters: see heads_train.h (B, Ns, Nt, T, M, C, C4, C8, h, w, H, W, HW = h*w).
 * ref: sam2/modeling/sam/prompt_encoder.py, sam2/modeling/sam/mask_decoder.py,
 *      sam2/modeling/sam2_base.py */
#include "train/heads_train.h"
#include "train/grad_ops.h"
#include "model/sam_heads.h"

#include <stdio.h>
#include <string.h>

#define PE "sam_prompt_encoder."
#define MD "sam_mask_decoder."

/* Zeroed floats on the tape. */
static float *tape_zeros(s2_tctx *t, int64_t n) {
    float *p = s2_tape_f32(t, n);
    memset(p, 0, (size_t)n * sizeof(float));
    return p;
}

/* Zeroed scratch floats (gradient temporaries). */
static float *zeros(s2_tctx *t, int64_t n) {
    float *p = s2_scratch_f32(t->c, n);
    memset(p, 0, (size_t)n * sizeof(float));
    return p;
}

/* dst[c] += sum over n of src[c, n]: gradient of a per-channel broadcast. */
static void sum_planes(float *dst, const float *src, int C, int64_t n) {
    for (int ch = 0; ch < C; ch++) {
        double s = 0.0;
        for (int64_t i = 0; i < n; i++) s += src[(int64_t)ch * n + i];
        dst[ch] += (float)s;
    }
}

/* ============================== image level ============================== */

/* conv_s<k> (1x1) of a neck level into a new tape buffer. x (C, hh, ww). */
static float *hr_conv(s2_tctx *t, int k, const float *x, int C, int hh, int ww, int *oc) {
    const s2_tensor *wt = s2_wt(t->m, MD "conv_s%d.weight", k); // (OC, C, 1, 1)
    *oc = (int)wt->shape[0];
    if (wt->shape[1] != C || wt->shape[2] != 1 || wt->shape[3] != 1) return NULL;
    float *y = s2_tape_f32(t, (int64_t)*oc * hh * ww);
    s2_conv2d_desc d = {1, C, hh, ww, *oc, 1, 1, 1, 1, 0, 0, 1};
    s2_op_conv2d(t->c, y, x, (const float *)wt->data, s2_w(t->m, MD "conv_s%d.bias", k), &d);
    return y;
}

// ref: sam2/modeling/sam2_base.py SAM2Base.forward_image (conv_s0 / conv_s1) and
//      SAM2Base._prepare_memory_conditioned_features (directly_add_no_mem_embed)
int s2_img_forward_train(s2_tctx *t, const float *fpn0, const float *fpn1, const float *fpn2,
                         s2_img_tape *it) {
    const s2_config *cfg = &t->m->cfg;
    int C = cfg->d_model, h = s2_cfg_feat_side(cfg);
    int64_t HW = (int64_t)h * h;
    *it = (s2_img_tape){.C = C, .h = h, .w = h, .fpn = {fpn0, fpn1, fpn2}};
    if (!fpn2) return s2_err(SAM2C_ERR_ARG, "train: missing image features");
    if (cfg->num_maskmem > 0 && !cfg->directly_add_no_mem_embed)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "train: fine-tuning needs directly_add_no_mem_embed");
    it->pix = s2_tape_f32(t, C * HW);
    const float *e = cfg->num_maskmem > 0 ? s2_w(t->m, "no_mem_embed") : NULL; // (1,1,C)
    for (int ch = 0; ch < C; ch++)
        for (int64_t p = 0; p < HW; p++)
            it->pix[ch * HW + p] = fpn2[ch * HW + p] + (e ? e[ch] : 0.0f);
    if (cfg->use_high_res_features_in_sam) {
        if (!fpn0 || !fpn1) return s2_err(SAM2C_ERR_ARG, "train: missing high-res features");
        it->s0 = hr_conv(t, 0, fpn0, C, 4 * h, 4 * h, &it->hr_c[0]);
        it->s1 = hr_conv(t, 1, fpn1, C, 2 * h, 2 * h, &it->hr_c[1]);
        if (!it->s0 || !it->s1) return s2_err(SAM2C_ERR_UNSUPPORTED, "train: conv_s0/s1 are not 1x1");
        it->d_s0 = tape_zeros(t, (int64_t)it->hr_c[0] * 16 * HW);
        it->d_s1 = tape_zeros(t, (int64_t)it->hr_c[1] * 4 * HW);
    }
    it->pe = s2_tape_f32(t, C * HW);
    it->kpe = s2_tape_f32(t, C * HW);
    s2_prompt_dense_pe(t->m, it->pe);
    s2_ref_nchw_to_nhwc(it->kpe, it->pe, 1, C, h, h);
    it->d_pix = tape_zeros(t, C * HW);
    return SAM2C_OK;
}

// ref: SAM2Base.forward_image / _prepare_memory_conditioned_features (autograd)
void s2_img_backward(s2_tctx *t, const s2_img_tape *it) {
    int64_t HW = (int64_t)it->h * it->w;
    if (t->m->cfg.num_maskmem > 0) sum_planes(s2_grad(t->p, "no_mem_embed"), it->d_pix, it->C, HW);
    if (it->d_fpn[2]) s2_ref_add(it->d_fpn[2], it->d_fpn[2], it->d_pix, it->C * HW); // pix = fpn2 + e
    for (int k = 0; k < 2 && it->s0; k++) {
        int side = (k == 0 ? 4 : 2) * it->h;
        s2_conv_k_eq_s_backward(t->c, it->fpn[k], s2_w(t->m, MD "conv_s%d.weight", k),
                                k == 0 ? it->d_s0 : it->d_s1, it->d_fpn[k],
                                s2_grad(t->p, MD "conv_s%d.weight", k),
                                s2_grad(t->p, MD "conv_s%d.bias", k), 1, it->C, side, side,
                                it->hr_c[k], 1);
    }
}

/* ============================ prompt encoder ============================ */

/* One stride == kernel convolution of mask_downscaling into a new tape buffer.
 * x (B, IC, hh, ww) -> (B, OC, hh/K, ww/K). */
static float *mask_conv(s2_tctx *t, int idx, const float *x, int B, int *ch, int *hh, int *ww) {
    const s2_tensor *wt = s2_wt(t->m, PE "mask_downscaling.%d.weight", idx); // (OC, IC, K, K)
    int K = (int)wt->shape[2], OH, OW;
    s2_conv2d_desc d = {.N = B, .C = *ch, .H = *hh, .W = *ww, .OC = (int)wt->shape[0], .KH = K,
                        .KW = K, .sh = K, .sw = K, .ph = 0, .pw = 0, .groups = 1};
    s2_conv2d_out_hw(&d, &OH, &OW);
    float *y = s2_tape_f32(t, (int64_t)B * d.OC * OH * OW);
    s2_op_conv2d(t->c, y, x, (const float *)wt->data,
                 s2_w(t->m, PE "mask_downscaling.%d.bias", idx), &d);
    *ch = d.OC, *hh = OH, *ww = OW;
    return y;
}

/* LayerNorm2d (eps 1e-6) of mask_downscaling.<idx> into a new tape buffer. */
static float *mask_norm(s2_tctx *t, int idx, const float *x, int B, int ch, int64_t n) {
    float *y = s2_tape_f32(t, (int64_t)B * ch * n);
    s2_ref_layernorm2d(y, x, s2_w(t->m, PE "mask_downscaling.%d.weight", idx),
                       s2_w(t->m, PE "mask_downscaling.%d.bias", idx), B, ch, n, 1e-6f);
    return y;
}

/* GELU into a new tape buffer. */
static float *tape_gelu(s2_tctx *t, const float *x, int64_t n) {
    float *y = s2_tape_f32(t, n);
    memcpy(y, x, (size_t)n * sizeof(float));
    s2_ref_gelu(y, n);
    return y;
}

// ref: sam2/modeling/sam/prompt_encoder.py PromptEncoder._embed_masks
static int mask_forward(s2_tctx *t, const float *mask, s2_heads_tape *ht) {
    int B = ht->B, ch = 1, hh = ht->H, ww = ht->W;
    ht->mask = s2_tape_f32(t, (int64_t)B * hh * ww);
    memcpy(ht->mask, mask, sizeof(float) * (size_t)B * hh * ww);
    ht->m_c1 = mask_conv(t, 0, ht->mask, B, &ch, &hh, &ww);
    ht->mc1 = ch;
    ht->m_n1 = mask_norm(t, 1, ht->m_c1, B, ch, (int64_t)hh * ww);
    ht->m_g1 = tape_gelu(t, ht->m_n1, (int64_t)B * ch * hh * ww);
    ht->m_c2 = mask_conv(t, 3, ht->m_g1, B, &ch, &hh, &ww);
    ht->mc2 = ch;
    ht->m_n2 = mask_norm(t, 4, ht->m_c2, B, ch, (int64_t)hh * ww);
    ht->m_g2 = tape_gelu(t, ht->m_n2, (int64_t)B * ch * hh * ww);
    ht->dense = mask_conv(t, 6, ht->m_g2, B, &ch, &hh, &ww);
    if (ch != ht->C || hh != ht->h || ww != ht->w)
        return s2_err(SAM2C_ERR_SHAPE, "train: mask embedding [%d,%d,%d] != [%d,%d,%d]", ch, hh,
                      ww, ht->C, ht->h, ht->w);
    return SAM2C_OK;
}

/* Gradient of one mask_downscaling convolution (x its input, IC x side^2 per item). */
static void mask_conv_backward(s2_tctx *t, int idx, const float *x, const float *dy, float *dx,
                               int B, int IC, int side) {
    const s2_tensor *wt = s2_wt(t->m, PE "mask_downscaling.%d.weight", idx);
    s2_conv_k_eq_s_backward(t->c, x, (const float *)wt->data, dy, dx,
                            s2_grad(t->p, PE "mask_downscaling.%d.weight", idx),
                            s2_grad(t->p, PE "mask_downscaling.%d.bias", idx), B, IC, side,
                            side, (int)wt->shape[0], (int)wt->shape[2]);
}

/* Gradient of one mask_downscaling LayerNorm2d followed by its GELU: dg (GELU output
 * gradient) -> dx (LN input gradient, +=). */
static void mask_norm_backward(s2_tctx *t, int idx, const float *x, const float *n_out,
                               float *dg, float *dx, int B, int ch, int64_t n) {
    s2_gelu_backward(n_out, dg, dg, (int64_t)B * ch * n);
    s2_layernorm2d_backward(t->c, x, s2_w(t->m, PE "mask_downscaling.%d.weight", idx), dg, dx,
                            s2_grad(t->p, PE "mask_downscaling.%d.weight", idx),
                            s2_grad(t->p, PE "mask_downscaling.%d.bias", idx), B, ch, n, 1e-6f);
}

// ref: PromptEncoder._embed_masks (autograd): d_dense (B,C,h,w) -> d_mask (B,1,H,W) +=
static void mask_backward(s2_tctx *t, const s2_heads_tape *ht, const float *d_dense,
                          float *d_mask) {
    s2_arena_mark mark = s2_arena_get_mark(t->c->scratch);
    int B = ht->B, s1 = ht->H / 2, s2 = ht->h; // sides after conv 0 and conv 3
    int64_t n1 = (int64_t)s1 * s1, n2 = (int64_t)s2 * s2;
    float *dg2 = zeros(t, (int64_t)B * ht->mc2 * n2), *dc2 = zeros(t, (int64_t)B * ht->mc2 * n2);
    float *dg1 = zeros(t, (int64_t)B * ht->mc1 * n1), *dc1 = zeros(t, (int64_t)B * ht->mc1 * n1);
    mask_conv_backward(t, 6, ht->m_g2, d_dense, dg2, B, ht->mc2, s2);
    mask_norm_backward(t, 4, ht->m_c2, ht->m_n2, dg2, dc2, B, ht->mc2, n2);
    mask_conv_backward(t, 3, ht->m_g1, dc2, dg1, B, ht->mc1, s1);
    mask_norm_backward(t, 1, ht->m_c1, ht->m_n1, dg1, dc1, B, ht->mc1, n1);
    mask_conv_backward(t, 0, ht->mask, dc1, d_mask, B, 1, ht->H);
    s2_arena_release(t->c->scratch, mark);
}

// ref: PromptEncoder.forward (points via the inference code, mask path on the tape)
static int prompt_forward(s2_tctx *t, const s2_heads_in *in, s2_heads_tape *ht) {
    s2_arena_mark mark = s2_arena_get_mark(t->c->scratch);
    s2_prompt p = {in->B, in->N, in->coords, in->labels, true, NULL, in->B};
    s2_prompt_out po;
    int rc = s2_prompt_encoder_forward(t->c, t->m, &p, &po);
    if (rc == SAM2C_OK) {
        int64_t ns = (int64_t)in->B * po.Ns * ht->C, nd = (int64_t)in->B * ht->C * ht->h * ht->w;
        ht->Ns = po.Ns;
        ht->sparse = s2_tape_f32(t, ns);
        memcpy(ht->sparse, po.sparse, (size_t)ns * sizeof(float));
        if (!in->mask) {
            ht->dense = s2_tape_f32(t, nd);
            memcpy(ht->dense, po.dense, (size_t)nd * sizeof(float));
        }
    }
    s2_arena_release(t->c->scratch, mark);
    if (rc < 0) return rc;
    ht->labels = (int32_t *)s2_tape_f32(t, (int64_t)in->B * ht->Ns);
    for (int b = 0; b < in->B; b++)
        for (int n = 0; n < ht->Ns; n++)
            ht->labels[b * ht->Ns + n] = n < in->N ? in->labels[b * in->N + n] : -1;
    return in->mask ? mask_forward(t, in->mask, ht) : SAM2C_OK;
}

// ref: PromptEncoder.forward (autograd): d_sparse (B,Ns,C), d_dense (B,C,h,w)
static void prompt_backward(s2_tctx *t, const s2_heads_tape *ht, const float *d_sparse,
                            const float *d_dense, float *d_mask) {
    int C = ht->C;
    for (int b = 0; b < ht->B; b++)
        for (int n = 0; n < ht->Ns; n++) {
            int l = ht->labels[b * ht->Ns + n];
            float *g = l < 0 ? s2_grad(t->p, PE "not_a_point_embed.weight")
                             : s2_grad(t->p, PE "point_embeddings.%d.weight", l);
            s2_ref_add(g, g, d_sparse + ((int64_t)b * ht->Ns + n) * C, C);
        }
    int64_t hw = (int64_t)ht->h * ht->w;
    if (!ht->mask) {
        float *g = s2_grad(t->p, PE "no_mask_embed.weight");
        for (int b = 0; b < ht->B; b++) sum_planes(g, d_dense + (int64_t)b * C * hw, C, hw);
        return;
    }
    s2_arena_mark mark = s2_arena_get_mark(t->c->scratch);
    float *dm = d_mask ? d_mask : zeros(t, (int64_t)ht->B * ht->H * ht->W);
    mask_backward(t, ht, d_dense, dm);
    s2_arena_release(t->c->scratch, mark);
}

/* ============================== mask decoder ============================== */

/* rows [B, C] <- hs[b, tok, :] (gather) or hs[b, tok, :] += rows (scatter). */
static void token_rows(float *rows, float *hs, int B, int Nt, int tok, int C, bool scatter) {
    for (int b = 0; b < B; b++) {
        float *r = rows + (int64_t)b * C, *x = hs + ((int64_t)b * Nt + tok) * C;
        if (scatter) s2_ref_add(x, x, r, C);
        else memcpy(r, x, (size_t)C * sizeof(float));
    }
}

// ref: MaskDecoder.predict_masks (output tokens, src = image + dense, pos_src)
static void decoder_inputs(s2_tctx *t, const s2_img_tape *it, s2_heads_tape *ht) {
    int B = ht->B, C = ht->C, T = ht->T, s = t->m->cfg.pred_obj_scores ? 1 : 0;
    int64_t HW = (int64_t)ht->h * ht->w, per = C * HW;
    size_t row = (size_t)C * sizeof(float);
    ht->tokens = s2_tape_f32(t, (int64_t)B * ht->Nt * C);
    for (int b = 0; b < B; b++) {
        float *tk = ht->tokens + (int64_t)b * ht->Nt * C;
        if (s) memcpy(tk, s2_w(t->m, MD "obj_score_token.weight"), row);
        memcpy(tk + s * C, s2_w(t->m, MD "iou_token.weight"), row);
        memcpy(tk + (s + 1) * C, s2_w(t->m, MD "mask_tokens.weight"), row * T);
        memcpy(tk + (int64_t)(s + 1 + T) * C, ht->sparse + (int64_t)b * ht->Ns * C, row * ht->Ns);
    }
    ht->keys = s2_tape_f32(t, B * per);
    s2_arena_mark mark = s2_arena_get_mark(t->c->scratch);
    float *src = s2_scratch_f32(t->c, per); // (C, h, w)
    for (int b = 0; b < B; b++) {
        s2_ref_add(src, it->pix, ht->dense + b * per, per);
        s2_ref_nchw_to_nhwc(ht->keys + b * per, src, 1, C, ht->h, ht->w);
    }
    s2_arena_release(t->c->scratch, mark);
}

/* One ConvTranspose 2x2/2 of output_upscaling into a new tape buffer. */
static float *upconv(s2_tctx *t, int idx, const float *x, int B, int side, int *OC) {
    const s2_tensor *wt = s2_wt(t->m, MD "output_upscaling.%d.weight", idx); // (IC, OC, K, K)
    int K = (int)wt->shape[2];
    *OC = (int)wt->shape[1];
    float *y = s2_tape_f32(t, (int64_t)B * *OC * side * K * side * K);
    s2_ref_conv_transpose2d_k_eq_s(y, x, (const float *)wt->data,
                                   s2_w(t->m, MD "output_upscaling.%d.bias", idx), B,
                                   (int)wt->shape[0], side, side, *OC, K);
    return y;
}

/* y[b] += f over B items of n floats (the shared high-res feature add). */
static void add_shared(float *y, const float *f, int B, int64_t n) {
    for (int b = 0; b < B; b++) s2_ref_add(y + b * n, y + b * n, f, n);
}

// ref: MaskDecoder.predict_masks (output_upscaling with the high-res features)
static void upscale_forward(s2_tctx *t, const s2_img_tape *it, s2_heads_tape *ht) {
    int B = ht->B, C = ht->C, h = ht->h;
    ht->src = s2_tape_f32(t, (int64_t)B * C * h * h);
    s2_ref_nhwc_to_nchw(ht->src, ht->tw.k_out, B, h, h, C);
    ht->z1 = upconv(t, 0, ht->src, B, h, &ht->C4); // (B, C4, 2h, 2w)
    int64_t n1 = (int64_t)ht->C4 * 4 * h * h;
    if (it->s1) add_shared(ht->z1, it->s1, B, n1);
    ht->n1 = s2_tape_f32(t, B * n1);
    s2_ref_layernorm2d(ht->n1, ht->z1, s2_w(t->m, MD "output_upscaling.1.weight"),
                       s2_w(t->m, MD "output_upscaling.1.bias"), B, ht->C4, 4 * h * h, 1e-6f);
    ht->g1 = tape_gelu(t, ht->n1, B * n1);
    ht->z2 = upconv(t, 3, ht->g1, B, 2 * h, &ht->C8); // (B, C8, H, W)
    int64_t n2 = (int64_t)ht->C8 * ht->H * ht->W;
    if (it->s0) add_shared(ht->z2, it->s0, B, n2);
    ht->up = tape_gelu(t, ht->z2, B * n2);
}

// ref: MaskDecoder.predict_masks (output_upscaling, autograd): d_up -> d_src (B,C,h,w) +=
static void upscale_backward(s2_tctx *t, s2_img_tape *it, const s2_heads_tape *ht,
                             float *d_up, float *d_src) {
    int B = ht->B, h = ht->h;
    int64_t n1 = (int64_t)ht->C4 * 4 * h * h, n2 = (int64_t)ht->C8 * ht->H * ht->W;
    s2_arena_mark mark = s2_arena_get_mark(t->c->scratch);
    s2_gelu_backward(ht->z2, d_up, d_up, B * n2); // d_up becomes d z2
    for (int b = 0; b < B && it->d_s0; b++) s2_ref_add(it->d_s0, it->d_s0, d_up + b * n2, n2);
    float *dg1 = zeros(t, B * n1), *dz1 = zeros(t, B * n1);
    const s2_tensor *w3 = s2_wt(t->m, MD "output_upscaling.3.weight"); // (C4, C8, K, K)
    const s2_tensor *w0 = s2_wt(t->m, MD "output_upscaling.0.weight"); // (C, C4, K, K)
    s2_conv_transpose_k_eq_s_backward(t->c, ht->g1, (const float *)w3->data, d_up, dg1,
                                      s2_grad(t->p, MD "output_upscaling.3.weight"),
                                      s2_grad(t->p, MD "output_upscaling.3.bias"), B, ht->C4,
                                      2 * h, 2 * h, ht->C8, (int)w3->shape[2]);
    s2_gelu_backward(ht->n1, dg1, dg1, B * n1);
    s2_layernorm2d_backward(t->c, ht->z1, s2_w(t->m, MD "output_upscaling.1.weight"), dg1, dz1,
                            s2_grad(t->p, MD "output_upscaling.1.weight"),
                            s2_grad(t->p, MD "output_upscaling.1.bias"), B, ht->C4, 4 * h * h,
                            1e-6f);
    for (int b = 0; b < B && it->d_s1; b++) s2_ref_add(it->d_s1, it->d_s1, dz1 + b * n1, n1);
    s2_conv_transpose_k_eq_s_backward(t->c, ht->src, (const float *)w0->data, dz1, d_src,
                                      s2_grad(t->p, MD "output_upscaling.0.weight"),
                                      s2_grad(t->p, MD "output_upscaling.0.bias"), B, ht->C, h,
                                      h, ht->C4, (int)w0->shape[2]);
    s2_arena_release(t->c->scratch, mark);
}

// ref: MaskDecoder.predict_masks (hypernetworks, IoU head, object-score head)
static int heads_forward(s2_tctx *t, s2_heads_tape *ht) {
    const s2_config *cfg = &t->m->cfg;
    int B = ht->B, C = ht->C, T = ht->T, s = cfg->pred_obj_scores ? 1 : 0;
    int64_t HW4 = (int64_t)ht->H * ht->W;
    char name[96];
    ht->tok_rows = s2_tape_f32(t, (int64_t)(T + 2) * B * C); // (T+2, B, C)
    ht->hyper_in = s2_tape_f32(t, (int64_t)B * T * ht->C8);
    for (int i = 0; i < T; i++) {
        float *rows = ht->tok_rows + (int64_t)(2 + i) * B * C;
        token_rows(rows, ht->tw.q_out, B, ht->Nt, s + 1 + i, C, false);
        snprintf(name, sizeof name, MD "output_hypernetworks_mlps.%d", i);
        S2_CHECK(s2_mlp_forward_train(t, name, 3, false, rows, B, &ht->hyp[i]));
        for (int b = 0; b < B; b++)
            memcpy(ht->hyper_in + ((int64_t)b * T + i) * ht->C8, ht->hyp[i].h[2] + (int64_t)b * ht->C8,
                   (size_t)ht->C8 * sizeof(float));
    }
    ht->all_logits = s2_tape_f32(t, (int64_t)B * T * HW4);
    for (int b = 0; b < B; b++) // masks = hyper_in @ upscaled.view(b, c, h*w)
        s2_op_matmul(t->c, ht->all_logits + b * T * HW4, ht->hyper_in + (int64_t)b * T * ht->C8,
                     ht->up + b * ht->C8 * HW4, T, ht->C8, HW4, false, 1.0f, 0.0f);
    float *iou_rows = ht->tok_rows + (int64_t)B * C;
    token_rows(iou_rows, ht->tw.q_out, B, ht->Nt, s, C, false);
    S2_CHECK(s2_mlp_forward_train(t, MD "iou_prediction_head", cfg->iou_head_depth,
                                  cfg->iou_prediction_use_sigmoid, iou_rows, B, &ht->iou_tp));
    ht->all_iou = ht->iou_tp.h[cfg->iou_head_depth - 1];
    ht->obj = s2_tape_f32(t, B);
    if (!cfg->pred_obj_scores) {
        for (int b = 0; b < B; b++) ht->obj[b] = 10.0f;
        return SAM2C_OK;
    }
    token_rows(ht->tok_rows, ht->tw.q_out, B, ht->Nt, 0, C, false);
    if (cfg->pred_obj_scores_mlp) {
        S2_CHECK(s2_mlp_forward_train(t, MD "pred_obj_score_head", 3, false, ht->tok_rows, B,
                                      &ht->obj_tp));
        ht->obj = ht->obj_tp.h[2];
    } else {
        s2_op_linear(t->c, ht->obj, ht->tok_rows, s2_w(t->m, MD "pred_obj_score_head.weight"),
                     s2_w(t->m, MD "pred_obj_score_head.bias"), B, C, 1);
    }
    return SAM2C_OK;
}

// ref: MaskDecoder.forward (training: tokens 1..T-1 or token 0) and
//      SAM2Base._forward_sam_heads (NO_OBJ_SCORE gating, best-IoU index)
static void select_forward(s2_tctx *t, const s2_heads_in *in, s2_heads_tape *ht) {
    int B = ht->B, M = ht->M;
    int64_t HW4 = (int64_t)ht->H * ht->W;
    for (int j = 0; j < M; j++) ht->tok[j] = in->multimask ? 1 + j : 0;
    ht->low = s2_tape_f32(t, (int64_t)B * M * HW4);
    ht->iou = s2_tape_f32(t, (int64_t)B * M);
    ht->best = (int32_t *)s2_tape_f32(t, B);
    ht->is_obj = (bool *)s2_tape_f32(t, B);
    for (int b = 0; b < B; b++) {
        ht->is_obj[b] = !t->m->cfg.pred_obj_scores || ht->obj[b] > 0.0f;
        ht->best[b] = 0;
        for (int j = 0; j < M; j++) {
            const float *src = ht->all_logits + ((int64_t)b * ht->T + ht->tok[j]) * HW4;
            float *dst = ht->low + ((int64_t)b * M + j) * HW4;
            for (int64_t i = 0; i < HW4; i++) dst[i] = ht->is_obj[b] ? src[i] : S2_NO_OBJ_SCORE_TRAIN;
            ht->iou[b * M + j] = ht->all_iou[b * ht->T + ht->tok[j]];
            if (ht->iou[b * M + j] > ht->iou[b * M + ht->best[b]]) ht->best[b] = j;
        }
    }
}

// ref: sam2/modeling/sam2_base.py SAM2Base._forward_sam_heads (training mode)
int s2_heads_forward_train(s2_tctx *t, const s2_img_tape *it, const s2_heads_in *in,
                           s2_heads_tape *ht) {
    const s2_config *cfg = &t->m->cfg;
    if (!in || in->B < 1 || in->N < 0 || (in->N > 0 && (!in->coords || !in->labels)))
        return s2_err(SAM2C_ERR_ARG, "train: bad decoder prompt");
    int T = cfg->num_multimask_outputs + 1;
    if (T > 8 || (in->multimask && T < 2))
        return s2_err(SAM2C_ERR_UNSUPPORTED, "train: %d mask tokens", T);
    *ht = (s2_heads_tape){.B = in->B, .N = in->N, .T = T, .M = in->multimask ? T - 1 : 1,
                          .C = cfg->d_model, .h = it->h, .w = it->w, .H = 4 * it->h,
                          .W = 4 * it->w};
    S2_CHECK(prompt_forward(t, in, ht));
    ht->Nt = (cfg->pred_obj_scores ? 1 : 0) + 1 + T + ht->Ns;
    decoder_inputs(t, it, ht);
    S2_CHECK(s2_twoway_forward_train(t, ht->tokens, ht->keys, it->kpe, ht->B, ht->Nt,
                                     (int64_t)ht->h * ht->w, &ht->tw));
    upscale_forward(t, it, ht);
    S2_CHECK(heads_forward(t, ht));
    select_forward(t, in, ht);
    return SAM2C_OK;
}

/* True when any of the n floats is non-zero. */
static bool any_nonzero(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (x[i] != 0.0f) return true;
    return false;
}

// ref: MaskDecoder.predict_masks heads (autograd): -> d_hs (B,Nt,C) +=, d_up (B,C8,HW4) +=
static void heads_backward(s2_tctx *t, const s2_heads_tape *ht, const float *d_logits,
                           const float *d_all_iou, const float *d_obj, float *d_hs, float *d_up) {
    const s2_config *cfg = &t->m->cfg;
    int B = ht->B, C = ht->C, T = ht->T, C8 = ht->C8, s = cfg->pred_obj_scores ? 1 : 0;
    int64_t HW4 = (int64_t)ht->H * ht->W;
    s2_arena_mark mark = s2_arena_get_mark(t->c->scratch);
    float *d_rows = s2_scratch_f32(t->c, (int64_t)B * C);
    if (s && d_obj && any_nonzero(d_obj, B)) {
        memset(d_rows, 0, sizeof(float) * (size_t)B * C);
        if (cfg->pred_obj_scores_mlp) {
            s2_mlp_backward(t, &ht->obj_tp, d_obj, d_rows);
        } else {
            s2_linear_backward(t->c, ht->tok_rows, s2_w(t->m, MD "pred_obj_score_head.weight"),
                               d_obj, d_rows, s2_grad(t->p, MD "pred_obj_score_head.weight"),
                               s2_grad(t->p, MD "pred_obj_score_head.bias"), B, C, 1);
        }
        token_rows(d_rows, d_hs, B, ht->Nt, 0, C, true);
    }
    if (any_nonzero(d_all_iou, (int64_t)B * T)) {
        memset(d_rows, 0, sizeof(float) * (size_t)B * C);
        s2_mlp_backward(t, &ht->iou_tp, d_all_iou, d_rows);
        token_rows(d_rows, d_hs, B, ht->Nt, s, C, true);
    }
    float *d_hyper = s2_scratch_f32(t->c, (int64_t)B * T * C8); // (B, T, C8)
    float *hyp_t = s2_scratch_f32(t->c, (int64_t)C8 * T);       // (C8, T)
    for (int b = 0; b < B; b++) {
        const float *dl = d_logits + b * T * HW4;
        s2_op_matmul(t->c, d_hyper + (int64_t)b * T * C8, dl, ht->up + b * C8 * HW4, T, HW4, C8,
                     true, 1.0f, 0.0f);
        s2_transpose(hyp_t, ht->hyper_in + (int64_t)b * T * C8, T, C8);
        s2_op_matmul(t->c, d_up + b * C8 * HW4, hyp_t, dl, C8, T, HW4, false, 1.0f, 1.0f);
    }
    float *d_h = s2_scratch_f32(t->c, (int64_t)B * C8); // (B, C8) one token's hypernet output
    for (int i = 0; i < T; i++) {
        for (int b = 0; b < B; b++)
            memcpy(d_h + (int64_t)b * C8, d_hyper + ((int64_t)b * T + i) * C8, sizeof(float) * (size_t)C8);
        if (!any_nonzero(d_h, (int64_t)B * C8)) continue;
        memset(d_rows, 0, sizeof(float) * (size_t)B * C);
        s2_mlp_backward(t, &ht->hyp[i], d_h, d_rows);
        token_rows(d_rows, d_hs, B, ht->Nt, s + 1 + i, C, true);
    }
    s2_arena_release(t->c->scratch, mark);
}

/* Parameter gradients of the decoder's learned tokens from d_tokens (B,Nt,C); returns
 * the sparse part's gradient rows in place (pointer into d_tokens). */
static const float *token_backward(s2_tctx *t, const s2_heads_tape *ht, const float *d_tok) {
    int C = ht->C, T = ht->T, s = t->m->cfg.pred_obj_scores ? 1 : 0;
    for (int b = 0; b < ht->B; b++) {
        const float *r = d_tok + (int64_t)b * ht->Nt * C;
        float *g;
        if (s) {
            g = s2_grad(t->p, MD "obj_score_token.weight");
            s2_ref_add(g, g, r, C);
        }
        g = s2_grad(t->p, MD "iou_token.weight");
        s2_ref_add(g, g, r + s * C, C);
        g = s2_grad(t->p, MD "mask_tokens.weight");
        s2_ref_add(g, g, r + (s + 1) * C, (int64_t)T * C);
    }
    return d_tok + (int64_t)(s + 1 + T) * C;
}

// ref: SAM2Base._forward_sam_heads + MaskDecoder + PromptEncoder (autograd)
void s2_heads_backward(s2_tctx *t, s2_img_tape *it, const s2_heads_tape *ht,
                       const float *d_low, const float *d_iou, const float *d_obj,
                       float *d_mask_in) {
    int B = ht->B, C = ht->C, T = ht->T, M = ht->M;
    int64_t HW4 = (int64_t)ht->H * ht->W, HW = (int64_t)ht->h * ht->w, per = C * HW;
    s2_arena_mark mark = s2_arena_get_mark(t->c->scratch);
    float *d_logits = zeros(t, (int64_t)B * T * HW4), *d_all_iou = zeros(t, (int64_t)B * T);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < M; j++) {
            float *dl = d_logits + ((int64_t)b * T + ht->tok[j]) * HW4;
            if (d_low && ht->is_obj[b]) s2_ref_add(dl, dl, d_low + ((int64_t)b * M + j) * HW4, HW4);
            if (d_iou) d_all_iou[b * T + ht->tok[j]] += d_iou[b * M + j];
        }
    float *d_hs = zeros(t, (int64_t)B * ht->Nt * C), *d_up = zeros(t, (int64_t)B * ht->C8 * HW4);
    heads_backward(t, ht, d_logits, d_all_iou, d_obj, d_hs, d_up);
    float *d_src = zeros(t, B * per), *d_kout = s2_scratch_f32(t->c, B * per);
    upscale_backward(t, it, ht, d_up, d_src);
    s2_ref_nchw_to_nhwc(d_kout, d_src, B, C, ht->h, ht->w);
    float *d_tok = zeros(t, (int64_t)B * ht->Nt * C), *d_keys = zeros(t, B * per);
    s2_twoway_backward(t, &ht->tw, d_hs, d_kout, d_tok, d_keys);
    const float *d_sparse = token_backward(t, ht, d_tok);
    float *d_dense = s2_scratch_f32(t->c, B * per); // keys = image + dense (token-major)
    s2_ref_nhwc_to_nchw(d_dense, d_keys, B, ht->h, ht->w, C);
    for (int b = 0; b < B; b++) s2_ref_add(it->d_pix, it->d_pix, d_dense + b * per, per);
    /* d_sparse rows are Ns tokens of stride Nt per item: gather them contiguous */
    float *ds = s2_scratch_f32(t->c, (int64_t)B * ht->Ns * C);
    for (int b = 0; b < B; b++)
        memcpy(ds + (int64_t)b * ht->Ns * C, d_sparse + (int64_t)b * ht->Nt * C,
               sizeof(float) * (size_t)ht->Ns * C);
    prompt_backward(t, ht, ds, d_dense, d_mask_in);
    s2_arena_release(t->c->scratch, mark);
}
