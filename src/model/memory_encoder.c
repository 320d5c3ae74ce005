/* Memory encoder: fuses the top-level image feature of a frame with the predicted mask
 * into a compact memory feature (Cm channels) plus its sine position encoding.
 * Letters: C = in_dim (hidden), Cm = out_dim, H,W = feature size, S = mask size. */
#include "model/memory.h"
#include "model/image_encoder.h"
#include <math.h>
#include <string.h>

#define MEM_PFX "memory_encoder."

/* Conv output extent for one axis (PyTorch floor semantics). */
static int conv_out(int n, int k, int s, int p) { return (n + 2 * p - k) / s + 1; }

/* Channels of the memory feature: out_proj's output when present, else in_dim. */
int s2_memory_dim(const sam2c_model *m) {
    const s2_tensor *t = s2_w_opt(m, MEM_PFX "out_proj.weight");
    if (t) return (int)t->shape[0];
    return (int)s2_wt(m, MEM_PFX "pix_feat_proj.weight")->shape[0];
}

/* The memory position encoding only depends on the grid and the config. */
// ref: sam2/modeling/memory_encoder.py MemoryEncoder.forward (position_encoding)
int s2_memory_pos_enc(const sam2c_model *m, int H, int W, float *out) {
    int npf = m->cfg.mem_pe_num_pos_feats > 0 ? m->cfg.mem_pe_num_pos_feats : s2_memory_dim(m);
    if (npf != s2_memory_dim(m))
        return s2_err(SAM2C_ERR_SHAPE, "memory encoder: position encoding of %d channels for %d-channel memories",
                      npf, s2_memory_dim(m));
    return s2_pos_embed_sine(out, npf, H, W, 10000.0);
}

/* Number of strided conv stages of the mask downsampler; -1 when stride^n != total. */
static int mds_layers(const s2_config *cfg) {
    if (cfg->mds_stride < 2 || cfg->mds_total_stride < 1) return -1;
    int n = 0;
    long s = 1;
    while (s < cfg->mds_total_stride) { s *= cfg->mds_stride; n++; }
    return s == cfg->mds_total_stride ? n : -1;
}

// ref: sam2/modeling/memory_encoder.py MaskDownSampler.forward
/* mask (1, S, S) -> (Cin, H, W) through n x [conv k s p, LayerNorm2d, GELU] + 1x1 conv.
 * The result lands in a scratch buffer returned through *out. */
static int mask_downsample(s2_ctx *c, const sam2c_model *m, const float *mask, int S,
                           int H, int W, int Cin, float **out) {
    const s2_config *cfg = &m->cfg;
    int nl = mds_layers(cfg);
    if (nl < 0)
        return s2_err(SAM2C_ERR_FORMAT, "memory encoder: total_stride %d is not a power of stride %d",
                      cfg->mds_total_stride, cfg->mds_stride);
    const float *x = mask;
    int ch = 1, h = S, w = S;
    for (int i = 0; i < nl; i++) {
        const s2_tensor *wt = s2_wt(m, MEM_PFX "mask_downsampler.encoder.%d.weight", 3 * i);
        int oc = (int)wt->shape[0];
        s2_conv2d_desc d = {1, ch, h, w, oc, cfg->mds_kernel, cfg->mds_kernel, cfg->mds_stride,
                            cfg->mds_stride, cfg->mds_padding, cfg->mds_padding, 1};
        int oh = conv_out(h, d.KH, d.sh, d.ph), ow = conv_out(w, d.KW, d.sw, d.pw);
        if (oh <= 0 || ow <= 0 || wt->shape[1] != ch)
            return s2_err(SAM2C_ERR_SHAPE, "memory encoder: mask downsampler stage %d does not fit a %dx%d mask", i, S, S);
        float *y = s2_scratch_f32(c, (int64_t)oc * oh * ow); // (oc, oh, ow)
        s2_op_conv2d(c, y, x, (const float *)wt->data,
                     s2_w(m, MEM_PFX "mask_downsampler.encoder.%d.bias", 3 * i), &d);
        s2_op_layernorm2d(c, y, y, s2_w(m, MEM_PFX "mask_downsampler.encoder.%d.weight", 3 * i + 1),
                           s2_w(m, MEM_PFX "mask_downsampler.encoder.%d.bias", 3 * i + 1), 1, oc,
                           (int64_t)oh * ow, 1e-6f);
        s2_op_gelu(c, y, (int64_t)oc * oh * ow);
        x = y; ch = oc; h = oh; w = ow;
    }
    if (h != H || w != W)
        return s2_err(SAM2C_ERR_SHAPE, "memory encoder: a %dx%d mask downsamples to %dx%d, features are %dx%d",
                      S, S, h, w, H, W);
    const s2_tensor *wp = s2_wt(m, MEM_PFX "mask_downsampler.encoder.%d.weight", 3 * nl);
    if (wp->shape[0] != Cin || wp->shape[1] != ch)
        return s2_err(SAM2C_ERR_SHAPE, "memory encoder: mask projection is %lldx%lld, expected %dx%d",
                      (long long)wp->shape[0], (long long)wp->shape[1], Cin, ch);
    float *y = s2_scratch_f32(c, (int64_t)Cin * H * W); // (Cin, H, W)
    s2_conv2d_desc d = {1, ch, H, W, Cin, 1, 1, 1, 1, 0, 0, 1};
    s2_op_conv2d(c, y, x, (const float *)wp->data,
                 s2_w(m, MEM_PFX "mask_downsampler.encoder.%d.bias", 3 * nl), &d);
    *out = y;
    return 0;
}

/* 1x1 convolution (C_in -> C_out) of a (C_in, H, W) map: a plain conv2d call. */
static void conv1x1(s2_ctx *c, float *y, const float *x, const float *w, const float *b,
                    int cin, int cout, int H, int W) {
    s2_conv2d_desc d = {1, cin, H, W, cout, 1, 1, 1, 1, 0, 0, 1};
    s2_op_conv2d(c, y, x, w, b, &d);
}

// ref: sam2/modeling/memory_encoder.py CXBlock.forward
/* ConvNeXt block in place on x (C, H, W): dwconv -> LayerNorm2d(1e-6) -> Linear(C, 4C)
 * -> GELU -> Linear(4C, C) -> gamma -> residual. */
static void cx_block(s2_ctx *c, const sam2c_model *m, int li, float *x, int C, int H, int W) {
    const s2_config *cfg = &m->cfg;
    const int64_t HW = (int64_t)H * W;
    const s2_tensor *w1 = s2_wt(m, MEM_PFX "fuser.layers.%d.pwconv1.weight", li);
    const int hid = (int)w1->shape[0];
    s2_arena_mark mk = s2_arena_get_mark(c->scratch);
    float *dw = s2_scratch_f32(c, C * HW);   // (C, H, W)
    float *t = s2_scratch_f32(c, C * HW);    // (HW, C)
    s2_conv2d_desc d = {1, C, H, W, C, cfg->cx_kernel, cfg->cx_kernel, 1, 1,
                        cfg->cx_padding, cfg->cx_padding, cfg->cx_dwconv ? C : 1};
    s2_op_conv2d(c, dw, x, s2_w(m, MEM_PFX "fuser.layers.%d.dwconv.weight", li),
                 s2_w(m, MEM_PFX "fuser.layers.%d.dwconv.bias", li), &d);
    s2_op_layernorm2d(c, dw, dw, s2_w(m, MEM_PFX "fuser.layers.%d.norm.weight", li),
                       s2_w(m, MEM_PFX "fuser.layers.%d.norm.bias", li), 1, C, HW, 1e-6f);
    s2_ref_nchw_to_nhwc(t, dw, 1, C, H, W);
    s2_op_mlp(c, t, t, (const float *)w1->data, s2_w(m, MEM_PFX "fuser.layers.%d.pwconv1.bias", li),
              s2_w(m, MEM_PFX "fuser.layers.%d.pwconv2.weight", li),
              s2_w(m, MEM_PFX "fuser.layers.%d.pwconv2.bias", li), HW, C, hid, C, S2_ACT_GELU); // (HW, 4C) hidden
    const s2_tensor *g = s2_w_opt(m, MEM_PFX "fuser.layers.%d.gamma", li);
    const float *gamma = g ? (const float *)g->data : NULL;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < C; ch++) {
        float gm = gamma ? gamma[ch] : 1.0f;
        for (int64_t p = 0; p < HW; p++) x[ch * HW + p] += gm * t[p * C + ch];
    }
    s2_arena_release(c->scratch, mk);
}

/* Checks the pix feature channel count against the checkpoint. */
static int check_dims(const sam2c_model *m, int *Cin, int *Cm) {
    const s2_tensor *pw = s2_wt(m, MEM_PFX "pix_feat_proj.weight");
    *Cin = (int)pw->shape[0];
    *Cm = s2_memory_dim(m);
    if (pw->shape[1] != *Cin)
        return s2_err(SAM2C_ERR_SHAPE, "memory encoder: pix_feat_proj is not square");
    return 0;
}

// ref: sam2/modeling/memory_encoder.py MemoryEncoder.forward
int s2_memory_encoder_forward(s2_ctx *c, const sam2c_model *m, const float *pix_feat,
                              int H, int W, const float *mask, int S, float *feat_out,
                              float *pos_out) {
    if (!c || !c->scratch || !m || !pix_feat || !mask || !feat_out || H <= 0 || W <= 0 || S <= 0)
        return s2_err(SAM2C_ERR_ARG, "memory encoder: missing input");
    int Cin = 0, Cm = 0;
    S2_CHECK(check_dims(m, &Cin, &Cm));
    const int64_t HW = (int64_t)H * W;
    s2_arena_mark mk = s2_arena_get_mark(c->scratch);
    float *masks = NULL; // (Cin, H, W)
    int rc = mask_downsample(c, m, mask, S, H, W, Cin, &masks);
    if (rc < 0) { s2_arena_release(c->scratch, mk); return rc; }
    float *x = s2_scratch_f32(c, Cin * HW); // (Cin, H, W)
    conv1x1(c, x, pix_feat, s2_w(m, MEM_PFX "pix_feat_proj.weight"),
            s2_w(m, MEM_PFX "pix_feat_proj.bias"), Cin, Cin, H, W);
    s2_ref_add(x, x, masks, Cin * HW);
    const s2_tensor *fp = s2_w_opt(m, MEM_PFX "fuser.proj.weight");
    if (fp) { // Fuser(input_projection=True); no official config uses it
        float *y = s2_scratch_f32(c, Cin * HW);
        conv1x1(c, y, x, (const float *)fp->data, s2_w(m, MEM_PFX "fuser.proj.bias"), Cin, Cin, H, W);
        x = y;
    }
    for (int li = 0; li < m->cfg.fuser_layers; li++) cx_block(c, m, li, x, Cin, H, W);
    if (s2_w_opt(m, MEM_PFX "out_proj.weight"))
        conv1x1(c, feat_out, x, s2_w(m, MEM_PFX "out_proj.weight"),
                s2_w(m, MEM_PFX "out_proj.bias"), Cin, Cm, H, W);
    else
        memcpy(feat_out, x, sizeof(float) * (size_t)(Cin * HW));
    s2_dump(c, "memory_encoder.out", feat_out, 4, (int64_t[]){1, Cm, H, W});
    if (pos_out) rc = s2_memory_pos_enc(m, H, W, pos_out);
    s2_arena_release(c->scratch, mk);
    return rc;
}

/* Round-to-nearest-even storage; the tensor module owns the bit twiddling. */
void s2_to_bf16(uint16_t *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = s2_f32_to_bf16(src[i]);
}

void s2_from_bf16(float *dst, const uint16_t *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = s2_bf16_to_f32(src[i]);
}
