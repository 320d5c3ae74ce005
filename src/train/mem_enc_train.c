/* Memory encoder with saved activations and its backward pass, and the general
 * convolution backward it needs (strided 3x3 of the mask downsampler, depthwise 7x7 of
 * the CXBlocks). Mirrors src/model/memory_encoder.c and sam2_base.c
 * s2_encode_new_memory step by step (same kernels, same order).
 * Letters: see mem_train.h (S, H, W, HW = H*W, Cin, Cm, hid); for the convolution
 * N, C, H, W input, OC, KH, KW weights, OH x OW = P output pixels, Cg = C / groups,
 * CKK = Cg*KH*KW im2col rows.
 * ref: sam2/modeling/memory_encoder.py, sam2/modeling/sam2_base.py _encode_new_memory */
#include "train/mem_train.h"
#include "train/grad_ops.h"

#include <math.h>
#include <string.h>

#define ME "memory_encoder."

/* Zeroed scratch floats (gradient temporaries). */
static float *zeros(s2_tctx *t, int64_t n) {
    float *p = s2_scratch_f32(t->c, n);
    memset(p, 0, (size_t)n * sizeof(float));
    return p;
}

/* ========================= convolution backward ========================= */

/* im2col of one item x [C, H, W] -> col [CKK, P] (zero padding), or the transposed
 * scatter col2im (dx += col) when scatter. */
static void im2col(const s2_conv2d_desc *d, int OH, int OW, float *x, float *col, bool scatter) {
    const int64_t P = (int64_t)OH * OW;
#pragma omp parallel for schedule(static) if ((int64_t)d->C * d->KH * d->KW * P > 65536)
    for (int ch = 0; ch < d->C; ch++)
        for (int ky = 0; ky < d->KH; ky++)
            for (int kx = 0; kx < d->KW; kx++) {
                float *row = col + (((int64_t)ch * d->KH + ky) * d->KW + kx) * P;
                for (int oy = 0; oy < OH; oy++) {
                    int iy = oy * d->sh - d->ph + ky;
                    for (int ox = 0; ox < OW; ox++) {
                        int ix = ox * d->sw - d->pw + kx;
                        bool in = iy >= 0 && iy < d->H && ix >= 0 && ix < d->W;
                        float *xv = in ? &x[((int64_t)ch * d->H + iy) * d->W + ix] : NULL;
                        if (scatter) { if (in) *xv += row[oy * OW + ox]; }
                        else row[oy * OW + ox] = in ? *xv : 0.0f;
                    }
                }
            }
}

// ref: torch.nn.Conv2d backward (groups = 1): dW = dY col^T, dcol = W^T dY, col2im
static void conv_backward_gemm(s2_ctx *c, const s2_conv2d_desc *d, int OH, int OW,
                               const float *x, const float *w, const float *dy, float *dx,
                               float *dw) {
    const int64_t P = (int64_t)OH * OW, CKK = (int64_t)d->C * d->KH * d->KW;
    s2_arena_mark mk = s2_arena_get_mark(c->scratch);
    float *col = s2_scratch_f32(c, CKK * P); // (CKK, P)
    float *wt = dx ? s2_scratch_f32(c, CKK * d->OC) : NULL; // (CKK, OC)
    if (wt) s2_transpose(wt, w, d->OC, CKK);
    for (int n = 0; n < d->N; n++) {
        const float *dyn = dy + (int64_t)n * d->OC * P;
        if (dw) {
            im2col(d, OH, OW, (float *)x + (int64_t)n * d->C * d->H * d->W, col, false);
            s2_op_matmul(c, dw, dyn, col, d->OC, P, CKK, true, 1.0f, 1.0f); // (OC,P)(CKK,P)^T
        }
        if (dx) {
            s2_op_matmul(c, col, wt, dyn, CKK, d->OC, P, false, 1.0f, 0.0f); // (CKK,OC)(OC,P)
            im2col(d, OH, OW, dx + (int64_t)n * d->C * d->H * d->W, col, true);
        }
    }
    s2_arena_release(c->scratch, mk);
}

// ref: torch.nn.Conv2d backward (groups > 1, e.g. depthwise): direct loops per channel
static void conv_backward_grouped(const s2_conv2d_desc *d, int OH, int OW, const float *x,
                                  const float *w, const float *dy, float *dx, float *dw) {
    const int Cg = d->C / d->groups, OCg = d->OC / d->groups;
#pragma omp parallel for schedule(static) if (d->OC > 1)
    for (int oc = 0; oc < d->OC; oc++) {
        const int g = oc / OCg;
        for (int n = 0; n < d->N; n++)
            for (int ci = 0; ci < Cg; ci++) {
                const int ch = g * Cg + ci;
                const float *xp = x + ((int64_t)n * d->C + ch) * d->H * d->W;
                const float *gp = dy + ((int64_t)n * d->OC + oc) * OH * OW;
                const float *wp = w + ((int64_t)oc * Cg + ci) * d->KH * d->KW;
                float *dwp = dw ? dw + ((int64_t)oc * Cg + ci) * d->KH * d->KW : NULL;
                float *dxp = dx ? dx + ((int64_t)n * d->C + ch) * d->H * d->W : NULL;
                for (int ky = 0; ky < d->KH; ky++)
                    for (int kx = 0; kx < d->KW; kx++) {
                        double s = 0.0;
                        for (int oy = 0; oy < OH; oy++) {
                            int iy = oy * d->sh - d->ph + ky;
                            if (iy < 0 || iy >= d->H) continue;
                            for (int ox = 0; ox < OW; ox++) {
                                int ix = ox * d->sw - d->pw + kx;
                                if (ix < 0 || ix >= d->W) continue;
                                float gv = gp[oy * OW + ox];
                                s += (double)gv * xp[iy * d->W + ix];
                                // groups with OCg > 1 share an input channel across threads
                                if (dxp && OCg == 1) dxp[iy * d->W + ix] += gv * wp[ky * d->KW + kx];
                            }
                        }
                        if (dwp) dwp[ky * d->KW + kx] += (float)s;
                    }
            }
    }
    if (!dx || OCg == 1) return;
    for (int oc = 0; oc < d->OC; oc++) // shared inputs: serial scatter
        for (int n = 0; n < d->N; n++)
            for (int ci = 0; ci < Cg; ci++) {
                const int ch = (oc / OCg) * Cg + ci;
                const float *gp = dy + ((int64_t)n * d->OC + oc) * OH * OW;
                const float *wp = w + ((int64_t)oc * Cg + ci) * d->KH * d->KW;
                float *dxp = dx + ((int64_t)n * d->C + ch) * d->H * d->W;
                for (int ky = 0; ky < d->KH; ky++)
                    for (int kx = 0; kx < d->KW; kx++)
                        for (int oy = 0; oy < OH; oy++) {
                            int iy = oy * d->sh - d->ph + ky;
                            for (int ox = 0; iy >= 0 && iy < d->H && ox < OW; ox++) {
                                int ix = ox * d->sw - d->pw + kx;
                                if (ix >= 0 && ix < d->W) dxp[iy * d->W + ix] += gp[oy * OW + ox] * wp[ky * d->KW + kx];
                            }
                        }
            }
}

// ref: torch.nn.Conv2d backward
void s2_conv2d_backward(s2_ctx *c, const s2_conv2d_desc *d, const float *x, const float *w,
                        const float *dy, float *dx, float *dw, float *db) {
    int OH, OW;
    s2_conv2d_out_hw(d, &OH, &OW);
    if (OH <= 0 || OW <= 0 || d->N <= 0) return;
    if (db) {
        const int64_t P = (int64_t)OH * OW;
        for (int oc = 0; oc < d->OC; oc++) {
            double s = 0.0;
            for (int n = 0; n < d->N; n++)
                for (int64_t p = 0; p < P; p++) s += dy[((int64_t)n * d->OC + oc) * P + p];
            db[oc] += (float)s;
        }
    }
    if (d->groups <= 1) conv_backward_gemm(c, d, OH, OW, x, w, dy, dx, dw);
    else conv_backward_grouped(d, OH, OW, x, w, dy, dx, dw);
}

/* ============================ forward ============================ */

/* Number of strided stages of the mask downsampler; -1 when stride^n != total. */
static int mds_layers(const s2_config *cfg) {
    if (cfg->mds_stride < 2 || cfg->mds_total_stride < 1) return -1;
    int n = 0;
    long s = 1;
    while (s < cfg->mds_total_stride) { s *= cfg->mds_stride; n++; }
    return s == cfg->mds_total_stride ? n : -1;
}

/* The descriptor of mask downsampler stage i on a (ch, side, side) input. */
static s2_conv2d_desc mds_desc(const s2_config *cfg, int ch, int side, int oc) {
    return (s2_conv2d_desc){1, ch, side, side, oc, cfg->mds_kernel, cfg->mds_kernel,
                            cfg->mds_stride, cfg->mds_stride, cfg->mds_padding, cfg->mds_padding, 1};
}

// ref: sam2/modeling/memory_encoder.py MaskDownSampler.forward
/* tp->mask (1, S, S) -> (Cin, H, W) returned (on the tape). */
static int mask_downsample_forward(s2_tctx *t, s2_memenc_tape *tp, float **out) {
    const s2_config *cfg = &t->m->cfg;
    if ((tp->nl = mds_layers(cfg)) < 0 || tp->nl > S2_MDS_MAX)
        return s2_err(SAM2C_ERR_FORMAT, "memory encoder: total_stride %d is not a power of stride %d",
                      cfg->mds_total_stride, cfg->mds_stride);
    const float *x = tp->mask;
    int ch = 1, side = tp->S;
    for (int i = 0; i < tp->nl; i++) {
        const s2_tensor *wt = s2_wt(t->m, ME "mask_downsampler.encoder.%d.weight", 3 * i);
        int oc = (int)wt->shape[0], oh, ow;
        s2_conv2d_desc d = mds_desc(cfg, ch, side, oc);
        s2_conv2d_out_hw(&d, &oh, &ow);
        if (oh <= 0 || oh != ow || wt->shape[1] != ch)
            return s2_err(SAM2C_ERR_SHAPE, "memory encoder: mask downsampler stage %d does not fit a %dx%d mask", i, tp->S, tp->S);
        int64_t n = (int64_t)oc * oh * ow;
        tp->ds_y[i] = s2_tape_f32(t, n), tp->ds_n[i] = s2_tape_f32(t, n), tp->ds_g[i] = s2_tape_f32(t, n);
        s2_op_conv2d(t->c, tp->ds_y[i], x, (const float *)wt->data,
                     s2_w(t->m, ME "mask_downsampler.encoder.%d.bias", 3 * i), &d);
        s2_ref_layernorm2d(tp->ds_n[i], tp->ds_y[i], s2_w(t->m, ME "mask_downsampler.encoder.%d.weight", 3 * i + 1),
                           s2_w(t->m, ME "mask_downsampler.encoder.%d.bias", 3 * i + 1), 1, oc,
                           (int64_t)oh * ow, 1e-6f);
        memcpy(tp->ds_g[i], tp->ds_n[i], sizeof(float) * (size_t)n);
        s2_ref_gelu(tp->ds_g[i], n);
        x = tp->ds_g[i], ch = oc, side = oh;
        tp->ds_c[i] = oc, tp->ds_s[i] = oh;
    }
    if (side != tp->H || side != tp->W)
        return s2_err(SAM2C_ERR_SHAPE, "memory encoder: a %dx%d mask downsamples to %dx%d, features are %dx%d",
                      tp->S, tp->S, side, side, tp->H, tp->W);
    const s2_tensor *wp = s2_wt(t->m, ME "mask_downsampler.encoder.%d.weight", 3 * tp->nl);
    if (wp->shape[0] != tp->Cin || wp->shape[1] != ch)
        return s2_err(SAM2C_ERR_SHAPE, "memory encoder: mask projection is %lldx%lld, expected %dx%d",
                      (long long)wp->shape[0], (long long)wp->shape[1], tp->Cin, ch);
    *out = s2_tape_f32(t, (int64_t)tp->Cin * tp->H * tp->W);
    s2_conv2d_desc d = {1, ch, tp->H, tp->W, tp->Cin, 1, 1, 1, 1, 0, 0, 1};
    s2_op_conv2d(t->c, *out, x, (const float *)wp->data,
                 s2_w(t->m, ME "mask_downsampler.encoder.%d.bias", 3 * tp->nl), &d);
    return SAM2C_OK;
}

/* The CXBlock dwconv descriptor on a (C, H, W) map. */
static s2_conv2d_desc cx_desc(const s2_config *cfg, int C, int H, int W) {
    return (s2_conv2d_desc){1, C, H, W, C, cfg->cx_kernel, cfg->cx_kernel, 1, 1,
                            cfg->cx_padding, cfg->cx_padding, cfg->cx_dwconv ? C : 1};
}

// ref: sam2/modeling/memory_encoder.py CXBlock.forward
/* x (Cin, HW) -> the block output, returned (on the tape). */
static int cx_forward(s2_tctx *t, int li, const float *x, s2_memenc_tape *tp, float **out) {
    const s2_config *cfg = &t->m->cfg;
    const int C = tp->Cin;
    const int64_t HW = (int64_t)tp->H * tp->W;
    s2_cx_tape *b = &tp->cx[li];
    const s2_tensor *w1 = s2_wt(t->m, ME "fuser.layers.%d.pwconv1.weight", li);
    b->hid = (int)w1->shape[0];
    b->x = (float *)x;
    b->dw = s2_tape_f32(t, C * HW), b->ln = s2_tape_f32(t, C * HW), b->t = s2_tape_f32(t, C * HW);
    b->h1 = s2_tape_f32(t, b->hid * HW), b->g1 = s2_tape_f32(t, b->hid * HW);
    b->t2 = s2_tape_f32(t, C * HW);
    s2_conv2d_desc d = cx_desc(cfg, C, tp->H, tp->W);
    int oh, ow;
    s2_conv2d_out_hw(&d, &oh, &ow);
    if (oh != tp->H || ow != tp->W)
        return s2_err(SAM2C_ERR_SHAPE, "memory encoder: CXBlock %d changes the %dx%d grid", li, tp->H, tp->W);
    s2_op_conv2d(t->c, b->dw, x, s2_w(t->m, ME "fuser.layers.%d.dwconv.weight", li),
                 s2_w(t->m, ME "fuser.layers.%d.dwconv.bias", li), &d);
    s2_ref_layernorm2d(b->ln, b->dw, s2_w(t->m, ME "fuser.layers.%d.norm.weight", li),
                       s2_w(t->m, ME "fuser.layers.%d.norm.bias", li), 1, C, HW, 1e-6f);
    s2_ref_nchw_to_nhwc(b->t, b->ln, 1, C, tp->H, tp->W);
    s2_op_linear(t->c, b->h1, b->t, (const float *)w1->data,
                 s2_w(t->m, ME "fuser.layers.%d.pwconv1.bias", li), HW, C, b->hid);
    memcpy(b->g1, b->h1, sizeof(float) * (size_t)(b->hid * HW));
    s2_ref_gelu(b->g1, b->hid * HW);
    s2_op_linear(t->c, b->t2, b->g1, s2_w(t->m, ME "fuser.layers.%d.pwconv2.weight", li),
                 s2_w(t->m, ME "fuser.layers.%d.pwconv2.bias", li), HW, b->hid, C);
    const s2_tensor *g = s2_w_opt(t->m, ME "fuser.layers.%d.gamma", li);
    const float *gamma = g ? (const float *)g->data : NULL;
    float *y = s2_tape_f32(t, C * HW);
    for (int ch = 0; ch < C; ch++) {
        float gm = gamma ? gamma[ch] : 1.0f;
        for (int64_t p = 0; p < HW; p++) y[ch * HW + p] = x[ch * HW + p] + gm * b->t2[p * C + ch];
    }
    *out = y;
    return SAM2C_OK;
}

/* 1x1 convolution (cin -> cout) of a (cin, H, W) map into y. */
static void conv1x1(s2_ctx *c, float *y, const float *x, const float *w, const float *b,
                    int cin, int cout, int H, int W) {
    s2_conv2d_desc d = {1, cin, H, W, cout, 1, 1, 1, 1, 0, 0, 1};
    s2_op_conv2d(c, y, x, w, b, &d);
}

// ref: SAM2Base._encode_new_memory (mask_for_mem: sigmoid or binarised, scale, bias)
static void mask_for_mem(const s2_config *cfg, const float *high, int64_t SS, bool binarize,
                         float *sig, float *mm) {
    for (int64_t i = 0; i < SS; i++) {
        float v = binarize ? (high[i] > 0.0f ? 1.0f : 0.0f) : 1.0f / (1.0f + expf(-high[i]));
        sig[i] = v;
        if (cfg->sigmoid_scale_for_mem_enc != 1.0f) v = v * cfg->sigmoid_scale_for_mem_enc;
        if (cfg->sigmoid_bias_for_mem_enc != 0.0f) v = v + cfg->sigmoid_bias_for_mem_enc;
        mm[i] = v;
    }
}

/* Sizes and the configurations the training forward does not cover. */
static int memenc_check(const sam2c_model *m, s2_memenc_tape *tp) {
    const s2_tensor *pw = s2_wt(m, ME "pix_feat_proj.weight");
    tp->Cin = (int)pw->shape[0];
    tp->Cm = s2_memory_dim(m);
    if (pw->shape[1] != tp->Cin) return s2_err(SAM2C_ERR_SHAPE, "memory encoder: pix_feat_proj is not square");
    if (s2_w_opt(m, ME "fuser.proj.weight"))
        return s2_err(SAM2C_ERR_UNSUPPORTED, "memory encoder: training a Fuser with an input projection is not supported");
    if (m->cfg.fuser_layers < 0 || m->cfg.fuser_layers > S2_CX_MAX)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "memory encoder: %d fuser layers (at most %d)", m->cfg.fuser_layers, S2_CX_MAX);
    tp->n_cx = m->cfg.fuser_layers;
    return SAM2C_OK;
}

// ref: SAM2Base._encode_new_memory + MemoryEncoder.forward(skip_mask_sigmoid=True)
int s2_memenc_forward_train(s2_tctx *t, const float *pix, int H, int W, const float *high,
                            int S, float object_score, bool binarize, s2_memenc_tape *tp) {
    *tp = (s2_memenc_tape){.S = S, .H = H, .W = W, .pix = pix, .binarized = binarize};
    if (!pix || !high || H <= 0 || W <= 0 || S <= 0) return s2_err(SAM2C_ERR_ARG, "memory encoder: missing input");
    S2_CHECK(memenc_check(t->m, tp));
    const int64_t HW = (int64_t)H * W, SS = (int64_t)S * S;
    tp->sig = s2_tape_f32(t, SS), tp->mask = s2_tape_f32(t, SS);
    mask_for_mem(&t->m->cfg, high, SS, binarize, tp->sig, tp->mask);
    float *ds = NULL;
    S2_CHECK(mask_downsample_forward(t, tp, &ds));
    tp->x0 = s2_tape_f32(t, tp->Cin * HW);
    conv1x1(t->c, tp->x0, pix, s2_w(t->m, ME "pix_feat_proj.weight"),
            s2_w(t->m, ME "pix_feat_proj.bias"), tp->Cin, tp->Cin, H, W);
    s2_ref_add(tp->x0, tp->x0, ds, tp->Cin * HW);
    float *x = tp->x0;
    for (int li = 0; li < tp->n_cx; li++) S2_CHECK(cx_forward(t, li, x, tp, &x));
    tp->xf = x;
    tp->feat = s2_tape_f32(t, tp->Cm * HW);
    if (s2_w_opt(t->m, ME "out_proj.weight"))
        conv1x1(t->c, tp->feat, x, s2_w(t->m, ME "out_proj.weight"), s2_w(t->m, ME "out_proj.bias"),
                tp->Cin, tp->Cm, H, W);
    else
        memcpy(tp->feat, x, sizeof(float) * (size_t)(tp->Cin * HW));
    tp->lam = object_score > 0.0f ? 1.0f : 0.0f;
    const s2_tensor *ne = s2_w_opt(t->m, "no_obj_embed_spatial");
    for (int ch = 0; ne && ch < tp->Cm; ch++)
        for (int64_t p = 0; p < HW; p++)
            tp->feat[ch * HW + p] += (1.0f - tp->lam) * ((const float *)ne->data)[ch];
    return SAM2C_OK;
}

/* ============================ backward ============================ */

// ref: CXBlock.forward (autograd): d_x (Cin, HW) holds d(out) on entry, d(in) on exit
static void cx_backward(s2_tctx *t, int li, const s2_memenc_tape *tp, float *d_x) {
    const s2_cx_tape *b = &tp->cx[li];
    const int C = tp->Cin, hid = b->hid;
    const int64_t HW = (int64_t)tp->H * tp->W;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    float *d_t2 = s2_scratch_f32(t->c, C * HW), *d_g = zeros(t, hid * HW);
    float *d_t = zeros(t, C * HW), *d_ln = s2_scratch_f32(t->c, C * HW), *d_dw = zeros(t, C * HW);
    const s2_tensor *g = s2_w_opt(t->m, ME "fuser.layers.%d.gamma", li);
    float *dg = g ? s2_grad(t->p, ME "fuser.layers.%d.gamma", li) : NULL;
    for (int ch = 0; ch < C; ch++) { // layer scale: y = x + gamma t2
        float gm = g ? ((const float *)g->data)[ch] : 1.0f;
        double s = 0.0;
        for (int64_t p = 0; p < HW; p++) {
            d_t2[p * C + ch] = gm * d_x[ch * HW + p];
            s += (double)d_x[ch * HW + p] * b->t2[p * C + ch];
        }
        if (dg) dg[ch] += (float)s;
    }
    s2_linear_backward(t->c, b->g1, s2_w(t->m, ME "fuser.layers.%d.pwconv2.weight", li), d_t2, d_g,
                       s2_grad(t->p, ME "fuser.layers.%d.pwconv2.weight", li),
                       s2_grad(t->p, ME "fuser.layers.%d.pwconv2.bias", li), HW, hid, C);
    s2_gelu_backward(b->h1, d_g, d_g, hid * HW);
    s2_linear_backward(t->c, b->t, s2_w(t->m, ME "fuser.layers.%d.pwconv1.weight", li), d_g, d_t,
                       s2_grad(t->p, ME "fuser.layers.%d.pwconv1.weight", li),
                       s2_grad(t->p, ME "fuser.layers.%d.pwconv1.bias", li), HW, C, hid);
    s2_ref_nhwc_to_nchw(d_ln, d_t, 1, tp->H, tp->W, C);
    s2_layernorm2d_backward(t->c, b->dw, s2_w(t->m, ME "fuser.layers.%d.norm.weight", li), d_ln, d_dw,
                            s2_grad(t->p, ME "fuser.layers.%d.norm.weight", li),
                            s2_grad(t->p, ME "fuser.layers.%d.norm.bias", li), 1, C, HW, 1e-6f);
    s2_conv2d_desc d = cx_desc(&t->m->cfg, C, tp->H, tp->W);
    s2_conv2d_backward(t->c, &d, b->x, s2_w(t->m, ME "fuser.layers.%d.dwconv.weight", li), d_dw, d_x,
                       s2_grad(t->p, ME "fuser.layers.%d.dwconv.weight", li),
                       s2_grad(t->p, ME "fuser.layers.%d.dwconv.bias", li));
    s2_arena_release(t->c->scratch, mk);
}

// ref: MaskDownSampler.forward (autograd): d_ds (Cin, H, W) -> d_mask (S, S) +=
static void mask_downsample_backward(s2_tctx *t, const s2_memenc_tape *tp, const float *d_ds,
                                     float *d_mask) {
    const s2_config *cfg = &t->m->cfg;
    const int nl = tp->nl;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    int ch = tp->ds_c[nl - 1];
    float *d_g = zeros(t, (int64_t)ch * tp->H * tp->W);
    s2_conv_k_eq_s_backward(t->c, tp->ds_g[nl - 1], s2_w(t->m, ME "mask_downsampler.encoder.%d.weight", 3 * nl),
                            d_ds, d_g, s2_grad(t->p, ME "mask_downsampler.encoder.%d.weight", 3 * nl),
                            s2_grad(t->p, ME "mask_downsampler.encoder.%d.bias", 3 * nl), 1, ch,
                            tp->H, tp->W, tp->Cin, 1);
    for (int i = nl - 1; i >= 0; i--) {
        int oc = tp->ds_c[i], side = tp->ds_s[i], in_c = i ? tp->ds_c[i - 1] : 1;
        int in_s = i ? tp->ds_s[i - 1] : tp->S;
        int64_t n = (int64_t)oc * side * side;
        float *d_y = zeros(t, n);
        s2_gelu_backward(tp->ds_n[i], d_g, d_g, n);
        s2_layernorm2d_backward(t->c, tp->ds_y[i], s2_w(t->m, ME "mask_downsampler.encoder.%d.weight", 3 * i + 1),
                                d_g, d_y, s2_grad(t->p, ME "mask_downsampler.encoder.%d.weight", 3 * i + 1),
                                s2_grad(t->p, ME "mask_downsampler.encoder.%d.bias", 3 * i + 1), 1, oc,
                                (int64_t)side * side, 1e-6f);
        float *d_in = i ? zeros(t, (int64_t)in_c * in_s * in_s) : d_mask;
        s2_conv2d_desc d = mds_desc(cfg, in_c, in_s, oc);
        s2_conv2d_backward(t->c, &d, i ? tp->ds_g[i - 1] : tp->mask,
                           s2_w(t->m, ME "mask_downsampler.encoder.%d.weight", 3 * i), d_y, d_in,
                           s2_grad(t->p, ME "mask_downsampler.encoder.%d.weight", 3 * i),
                           s2_grad(t->p, ME "mask_downsampler.encoder.%d.bias", 3 * i));
        d_g = d_in;
    }
    s2_arena_release(t->c->scratch, mk);
}

// ref: SAM2Base._encode_new_memory + MemoryEncoder.forward (autograd)
void s2_memenc_backward(s2_tctx *t, const s2_memenc_tape *tp, const float *d_feat,
                        float *d_high) {
    const s2_config *cfg = &t->m->cfg;
    const int64_t HW = (int64_t)tp->H * tp->W, SS = (int64_t)tp->S * tp->S;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    const s2_tensor *ne = s2_w_opt(t->m, "no_obj_embed_spatial");
    if (ne) {
        float *g = s2_grad(t->p, "no_obj_embed_spatial");
        for (int ch = 0; ch < tp->Cm; ch++) {
            double s = 0.0;
            for (int64_t p = 0; p < HW; p++) s += d_feat[ch * HW + p];
            g[ch] += (float)((1.0 - tp->lam) * s);
        }
    }
    float *d_x = zeros(t, tp->Cin * HW);
    if (s2_w_opt(t->m, ME "out_proj.weight"))
        s2_conv_k_eq_s_backward(t->c, tp->xf, s2_w(t->m, ME "out_proj.weight"), d_feat, d_x,
                                s2_grad(t->p, ME "out_proj.weight"), s2_grad(t->p, ME "out_proj.bias"),
                                1, tp->Cin, tp->H, tp->W, tp->Cm, 1);
    else
        memcpy(d_x, d_feat, sizeof(float) * (size_t)(tp->Cin * HW));
    for (int li = tp->n_cx - 1; li >= 0; li--) cx_backward(t, li, tp, d_x);
    s2_conv_k_eq_s_backward(t->c, tp->pix, s2_w(t->m, ME "pix_feat_proj.weight"), d_x, NULL,
                            s2_grad(t->p, ME "pix_feat_proj.weight"), s2_grad(t->p, ME "pix_feat_proj.bias"),
                            1, tp->Cin, tp->H, tp->W, tp->Cin, 1);
    float *d_mask = zeros(t, SS);
    mask_downsample_backward(t, tp, d_x, d_mask);
    if (d_high && !tp->binarized) {
        const float sc = cfg->sigmoid_scale_for_mem_enc;
        for (int64_t i = 0; i < SS; i++)
            d_high[i] += d_mask[i] * sc * tp->sig[i] * (1.0f - tp->sig[i]);
    }
    s2_arena_release(t->c->scratch, mk);
}
