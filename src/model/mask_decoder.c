/* SAM 2 mask decoder: output tokens + prompts through the two-way transformer, image
 * upscaling with the high-res features, hypernetwork masks, IoU and object-score heads,
 * then the official mask selection. Dimension letters: see sam_heads.h (B, Ns, Nt, T,
 * C, h, w, H, W); Bi = image batch (1 when repeat_image), C4 = C/4, C8 = C/8.
 * ref: sam2/modeling/sam/mask_decoder.py */
#include "model/sam_heads.h"

#include <stdio.h>
#include <string.h>

#define MD "sam_mask_decoder."

// ref: sam2/modeling/sam/mask_decoder.py MaskDecoder._get_stability_scores
float s2_mask_stability(const float *logits, int64_t n, float delta) {
    int64_t area_i = 0, area_u = 0;
    for (int64_t i = 0; i < n; i++) {
        area_i += logits[i] > delta;
        area_u += logits[i] > -delta;
    }
    return area_u > 0 ? (float)area_i / (float)area_u : 1.0f;
}

/* Checks the decoder inputs against the configuration before computing anything. */
static int check_inputs(const sam2c_model *m, const s2_dec_in *in) {
    if (!in || !in->image_embed || !in->image_pe || !in->dense || (in->Ns > 0 && !in->sparse))
        return s2_err(SAM2C_ERR_ARG, "mask decoder: NULL input");
    if (in->B < 1 || in->Ns < 0)
        return s2_err(SAM2C_ERR_ARG, "mask decoder: bad sizes B=%d Ns=%d", in->B, in->Ns);
    bool hr = m->cfg.use_high_res_features_in_sam;
    if (hr && (!in->feat_s0 || !in->feat_s1))
        return s2_err(SAM2C_ERR_ARG, "mask decoder: the model needs high-res features");
    if (!hr && (in->feat_s0 || in->feat_s1))
        return s2_err(SAM2C_ERR_ARG, "mask decoder: high-res features given to a model "
                                     "without use_high_res_features_in_sam");
    if (m->cfg.num_multimask_outputs < 1 &&
        (in->multimask_output || (m->cfg.dynamic_multimask_via_stability && !in->training)))
        return s2_err(SAM2C_ERR_ARG, "mask decoder: multimask selection needs "
                                     "num_multimask_outputs >= 1");
    return SAM2C_OK;
}

// ref: sam2/modeling/sam/mask_decoder.py MaskDecoder.predict_masks (output tokens)
/* tokens [B, Nt, C] = [obj_score_token], iou_token, mask_tokens [T], sparse [Ns]. */
static void build_tokens(const sam2c_model *m, const s2_dec_in *in, int T, int Nt,
                         float *tokens) {
    int C = m->cfg.d_model;
    size_t row = (size_t)C * sizeof(float);
    for (int b = 0; b < in->B; b++) {
        float *t = tokens + (int64_t)b * Nt * C;
        if (m->cfg.pred_obj_scores) {
            memcpy(t, s2_w(m, MD "obj_score_token.weight"), row);
            t += C;
        }
        memcpy(t, s2_w(m, MD "iou_token.weight"), row);
        memcpy(t + C, s2_w(m, MD "mask_tokens.weight"), row * T);
        if (in->Ns > 0)
            memcpy(t + (int64_t)(T + 1) * C, in->sparse + (int64_t)b * in->Ns * C, row * in->Ns);
    }
}

// ref: sam2/modeling/sam/mask_decoder.py MaskDecoder.predict_masks (src, pos_src)
/* keys [B, HW, C] = (image_embed (repeat_interleave) + dense) token-major; kpe [HW, C]. */
static void build_image_tokens(s2_ctx *c, const sam2c_model *m, const s2_dec_in *in,
                               float *keys, float *kpe) {
    int C = m->cfg.d_model, h = s2_cfg_feat_side(&m->cfg);
    int64_t per = (int64_t)C * h * h;
    float *src = s2_scratch_f32(c, per); // (C, h, w) one item of src + dense
    for (int b = 0; b < in->B; b++) {
        const float *img = in->image_embed + (in->repeat_image ? 0 : b * per);
        s2_ref_add(src, img, in->dense + b * per, per);
        s2_ref_nchw_to_nhwc(keys + b * per, src, 1, C, h, h);
    }
    s2_ref_nchw_to_nhwc(kpe, in->image_pe, 1, C, h, h);
}

/* One 2x2 stride-2 transposed convolution of output_upscaling (weights [IC, OC, K, K])
 * with its epilogue y = act(convT(x) + b + feat): x [B, IC, hh, ww] (or NHWC rows when
 * x_nhwc) -> y [B, OC, K*hh, K*ww]; feat NULL or [Bi, OC, K*hh, K*ww]. */
static float *upconv(s2_ctx *c, const sam2c_model *m, const s2_dec_in *in, int idx,
                     const float *x, bool x_nhwc, int hh, int ww, const float *feat,
                     s2_act act, int *OC, int *K) {
    const s2_tensor *wt = s2_wt(m, MD "output_upscaling.%d.weight", idx);
    *OC = (int)wt->shape[1];
    *K = (int)wt->shape[2];
    float *y = s2_scratch_f32(c, (int64_t)in->B * *OC * hh * *K * ww * *K);
    s2_convt_desc d = {.N = in->B, .C = (int)wt->shape[0], .H = hh, .W = ww, .OC = *OC, .K = *K,
                       .x_nhwc = x_nhwc, .add = feat, .add_shared = in->repeat_image, .act = act};
    s2_op_conv_transpose2d(c, y, x, (const float *)wt->data,
                           s2_w(m, MD "output_upscaling.%d.bias", idx), &d);
    return y;
}

// ref: sam2/modeling/sam/mask_decoder.py MaskDecoder.predict_masks (output_upscaling)
/* keys [B, HW, C] (token-major = NHWC) -> dc1 (+ feat_s1) -> LayerNorm2d -> GELU -> dc2
 * (+ feat_s0) -> GELU, the adds and the last GELU fused into the transposed convs.
 * Returns [B, C8, H, W]; *C8 set. */
static float *upscale(s2_ctx *c, const sam2c_model *m, const s2_dec_in *in,
                      const float *keys, int *C8) {
    int B = in->B, h = s2_cfg_feat_side(&m->cfg), C4, K1, K2;
    float *x = upconv(c, m, in, 0, keys, true, h, h, in->feat_s1, S2_ACT_NONE, &C4, &K1); // (B, C4, 2h, 2w)
    int h1 = h * K1;
    s2_op_layernorm2d(c, x, x, s2_w(m, MD "output_upscaling.1.weight"),
                      s2_w(m, MD "output_upscaling.1.bias"), B, C4, (int64_t)h1 * h1, 1e-6f);
    s2_op_gelu(c, x, (int64_t)B * C4 * h1 * h1);
    return upconv(c, m, in, 3, x, false, h1, h1, in->feat_s0, S2_ACT_GELU, C8, &K2); // (B, C8, H, W)
}

/* rows[b] = hs[b, tok, :] for b < B: one token of every batch item, contiguous. */
static void gather_token(float *rows, const float *hs, int B, int Nt, int tok, int C) {
    for (int b = 0; b < B; b++)
        memcpy(rows + (int64_t)b * C, hs + ((int64_t)b * Nt + tok) * C, (size_t)C * sizeof(float));
}

// ref: sam2/modeling/sam/mask_decoder.py MaskDecoder.predict_masks (heads)
/* From the transformer outputs hs [B, Nt, C] and the upscaled embedding up [B, C8, HW4]:
 * hypernetwork masks, IoU head and object score into out. */
static void predict_heads(s2_ctx *c, const sam2c_model *m, const float *hs, int Nt,
                          const float *up, int C8, s2_dec_out *out) {
    int B = out->B, T = out->T, C = out->C, s = m->cfg.pred_obj_scores ? 1 : 0;
    int64_t HW4 = (int64_t)out->H * out->W;
    char name[96];
    float *tok = s2_scratch_f32(c, (int64_t)B * C);        // (B, C) one token per item
    float *hyp = s2_scratch_f32(c, (int64_t)B * C8);       // (B, C8)
    float *hyper_in = s2_scratch_f32(c, (int64_t)B * T * C8); // (B, T, C8)
    for (int i = 0; i < T; i++) {
        gather_token(tok, hs, B, Nt, s + 1 + i, C);
        for (int b = 0; b < B; b++)
            memcpy(out->all_tokens + ((int64_t)b * T + i) * C, tok + (int64_t)b * C,
                   (size_t)C * sizeof(float));
        snprintf(name, sizeof name, MD "output_hypernetworks_mlps.%d", i);
        s2_sam_mlp(c, m, name, 3, false, tok, B, hyp);
        for (int b = 0; b < B; b++)
            memcpy(hyper_in + ((int64_t)b * T + i) * C8, hyp + (int64_t)b * C8,
                   (size_t)C8 * sizeof(float));
    }
    for (int b = 0; b < B; b++) // masks = hyper_in @ upscaled.view(b, c, h*w)
        s2_op_matmul(c, out->all_logits + b * T * HW4, hyper_in + (int64_t)b * T * C8,
                     up + b * C8 * HW4, T, C8, HW4, false, 1.0f, 0.0f);
    gather_token(tok, hs, B, Nt, s, C);
    s2_sam_mlp(c, m, MD "iou_prediction_head", m->cfg.iou_head_depth,
               m->cfg.iou_prediction_use_sigmoid, tok, B, out->all_iou);
    if (!m->cfg.pred_obj_scores) {
        for (int b = 0; b < B; b++) out->obj_score[b] = 10.0f;
        return;
    }
    gather_token(tok, hs, B, Nt, 0, C);
    if (m->cfg.pred_obj_scores_mlp)
        s2_sam_mlp(c, m, MD "pred_obj_score_head", 3, false, tok, B, out->obj_score);
    else
        s2_op_linear(c, out->obj_score, tok, s2_w(m, MD "pred_obj_score_head.weight"),
                     s2_w(m, MD "pred_obj_score_head.bias"), B, C, 1);
}

/* Copies token `t` of item b into selected slot j (mask and IoU). */
static void select_token(s2_dec_out *o, int b, int j, int t) {
    int64_t HW4 = (int64_t)o->H * o->W;
    memcpy(o->masks + ((int64_t)b * o->M + j) * HW4, o->all_logits + ((int64_t)b * o->T + t) * HW4,
           (size_t)HW4 * sizeof(float));
    o->iou[b * o->M + j] = o->all_iou[b * o->T + t];
    o->token_idx[b * o->M + j] = t;
}

// ref: sam2/modeling/sam/mask_decoder.py MaskDecoder.forward (selection) and
//      MaskDecoder._dynamic_multimask_via_stability
static void select_outputs(const sam2c_model *m, const s2_dec_in *in, s2_dec_out *o) {
    const s2_config *cfg = &m->cfg;
    int64_t HW4 = (int64_t)o->H * o->W;
    for (int b = 0; b < o->B; b++) {
        if (in->multimask_output) {
            for (int j = 0; j < o->M; j++) select_token(o, b, j, 1 + j);
        } else if (cfg->dynamic_multimask_via_stability && !in->training) {
            const float *iou = o->all_iou + (int64_t)b * o->T;
            int best = 1; // argmax over tokens 1..T-1, first maximum wins
            for (int t = 2; t < o->T; t++)
                if (iou[t] > iou[best]) best = t;
            float st = s2_mask_stability(o->all_logits + (int64_t)b * o->T * HW4, HW4,
                                         cfg->dynamic_multimask_stability_delta);
            select_token(o, b, 0, st >= cfg->dynamic_multimask_stability_thresh ? 0 : best);
        } else {
            select_token(o, b, 0, 0);
        }
        int first = o->n_sam > 1 ? 1 : 0;
        memcpy(o->sam_tokens + (int64_t)b * o->n_sam * o->C,
               o->all_tokens + ((int64_t)b * o->T + first) * o->C,
               (size_t)o->n_sam * o->C * sizeof(float));
    }
}

/* Carves every output of the decoder out of the scratch arena. */
static void alloc_outputs(s2_ctx *c, const sam2c_model *m, const s2_dec_in *in,
                          s2_dec_out *o) {
    int B = in->B, T = m->cfg.num_multimask_outputs + 1, C = m->cfg.d_model;
    int side = 4 * s2_cfg_feat_side(&m->cfg);
    int M = in->multimask_output ? T - 1 : 1;
    bool multi_tok = in->multimask_output && m->cfg.use_multimask_token_for_obj_ptr;
    *o = (s2_dec_out){.B = B, .T = T, .M = M, .n_sam = multi_tok ? T - 1 : 1, .C = C,
                      .H = side, .W = side};
    int64_t HW4 = (int64_t)side * side;
    o->all_logits = s2_scratch_f32(c, (int64_t)B * T * HW4);
    o->all_iou = s2_scratch_f32(c, (int64_t)B * T);
    o->all_tokens = s2_scratch_f32(c, (int64_t)B * T * C);
    o->obj_score = s2_scratch_f32(c, B);
    o->masks = s2_scratch_f32(c, (int64_t)B * M * HW4);
    o->iou = s2_scratch_f32(c, (int64_t)B * M);
    o->token_idx = (int32_t *)s2_scratch_f32(c, (int64_t)B * M); // same size as float
    o->sam_tokens = s2_scratch_f32(c, (int64_t)B * o->n_sam * C);
}

// ref: sam2/modeling/sam/mask_decoder.py MaskDecoder.forward + predict_masks
int s2_mask_decoder_forward(s2_ctx *c, const sam2c_model *m, const s2_dec_in *in,
                            s2_dec_out *out) {
    S2_CHECK(check_inputs(m, in));
    alloc_outputs(c, m, in, out);
    int B = in->B, T = out->T, C = out->C, h = s2_cfg_feat_side(&m->cfg), C8;
    int Nt = (m->cfg.pred_obj_scores ? 1 : 0) + 1 + T + in->Ns;
    int64_t HW = (int64_t)h * h;
    s2_arena_mark mark = s2_arena_get_mark(c->scratch);
    float *hs = s2_scratch_f32(c, (int64_t)B * Nt * C); // (B, Nt, C) tokens
    float *keys = s2_scratch_f32(c, B * HW * C);        // (B, HW, C) image tokens
    float *kpe = s2_scratch_f32(c, HW * C);             // (HW, C) image PE
    build_tokens(m, in, T, Nt, hs);
    build_image_tokens(c, m, in, keys, kpe);
    int rc = s2_two_way_transformer(c, m, hs, keys, kpe, B, Nt, HW);
    if (rc < 0) {
        s2_arena_release(c->scratch, mark);
        return rc;
    }
    float *up = upscale(c, m, in, keys, &C8); // (B, C8, H, W)
    predict_heads(c, m, hs, Nt, up, C8, out);
    s2_arena_release(c->scratch, mark);
    s2_dump(c, "decoder.all_low_res_logits", out->all_logits, 4,
            (int64_t[]){B, T, out->H, out->W});
    s2_dump(c, "decoder.all_iou", out->all_iou, 2, (int64_t[]){B, T});
    s2_dump(c, "decoder.object_score_logits", out->obj_score, 2, (int64_t[]){B, 1});
    select_outputs(m, in, out);
    return SAM2C_OK;
}
