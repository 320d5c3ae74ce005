/* FPN neck + ImageEncoder wrapper + SAM2Base.forward_image's high-res projections.
 * Dimension letters: D = d_model (neck width), L = number of trunk stages (= neck
 * levels), level k has h x w cells and Ck trunk channels; level 0 = highest resolution.
 * Neck outputs are NCHW (batch 1). */
#include "model/image_encoder.h"

#include <stdio.h>
#include <string.h>

/* ============================ validation / layout ============================ */

/* Checks that the neck and scalp fit the trunk the way the official asserts require.
 * ref: sam2/modeling/backbones/image_encoder.py ImageEncoder.__init__, FpnNeck.forward */
static int neck_check(const s2_config *c, const s2_hiera_geom *g) {
    int L = g->n_stages, D = c->d_model;
    for (int k = 0; k < L; k++)
        if (c->backbone_channel_list[k] != g->lc[L - 1 - k])
            return s2_err(SAM2C_ERR_UNSUPPORTED,
                          "neck: backbone_channel_list[%d] = %d but the trunk gives %d", k,
                          c->backbone_channel_list[k], g->lc[L - 1 - k]);
    if (D <= 0 || c->neck_pe_num_pos_feats != D)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "neck: d_model %d with %d position features", D,
                      c->neck_pe_num_pos_feats);
    if (c->scalp < 0 || c->scalp >= L)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "image encoder: scalp %d with %d levels", c->scalp, L);
    for (int j = 0; j < c->n_fpn_top_down; j++) {
        int i = c->fpn_top_down_levels[j];
        if (i < 0 || i >= L - 1) continue; // the deepest level has no coarser one above it
        if (g->lh[i] != 2 * g->lh[i + 1] || g->lw[i] != 2 * g->lw[i + 1])
            return s2_err(SAM2C_ERR_UNSUPPORTED,
                          "neck: level %d is %dx%d, not twice level %d (%dx%d)", i, g->lh[i],
                          g->lw[i], i + 1, g->lh[i + 1], g->lw[i + 1]);
    }
    if (c->use_high_res_features_in_sam && (L - c->scalp < 2 || D < 8))
        return s2_err(SAM2C_ERR_UNSUPPORTED,
                      "image encoder: high-res features need 2 levels and d_model >= 8");
    return 0;
}

/* Geometry plus the neck checks. */
static int encoder_geom(const s2_config *c, s2_hiera_geom *g) {
    S2_CHECK(s2_hiera_geom_init(c, g));
    return neck_check(c, g);
}

/* Floats rounded up to 64 bytes, so every carved piece stays aligned. */
static size_t pad16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Carves (or, with buf NULL, only measures) the output pieces; returns the floats used. */
static size_t carve(const s2_config *c, const s2_hiera_geom *g, float *buf, s2_backbone_out *o) {
    size_t off = 0;
    int D = c->d_model, n = g->n_stages - c->scalp;
    if (o) memset(o, 0, sizeof *o);
    for (int k = 0; k < n; k++) {
        size_t sz = pad16((size_t)D * g->lh[k] * g->lw[k]);
        if (o) {
            o->h[k] = g->lh[k], o->w[k] = g->lw[k];
            o->fpn[k] = buf + off, o->pos[k] = buf + off + sz;
        }
        off += 2 * sz;
    }
    if (c->use_high_res_features_in_sam) {
        for (int k = 0; k < 2; k++) {
            int ch = D / (k == 0 ? 8 : 4); // conv_s0: D/8, conv_s1: D/4
            if (o) o->high_res[k] = buf + off, o->hr_c[k] = ch;
            off += pad16((size_t)ch * g->lh[k] * g->lw[k]);
        }
    }
    if (o) o->n_levels = n, o->C = D;
    return off;
}

size_t s2_backbone_out_floats(const s2_config *c) {
    s2_hiera_geom g;
    if (!c || encoder_geom(c, &g) < 0) return 0;
    return carve(c, &g, NULL, NULL);
}

void s2_backbone_out_carve(const s2_config *c, float *buf, s2_backbone_out *o) {
    s2_hiera_geom g;
    if (!o) return;
    memset(o, 0, sizeof *o);
    if (!c || !buf || encoder_geom(c, &g) < 0) return;
    carve(c, &g, buf, o);
}

size_t s2_image_encoder_scratch_bytes(const s2_config *c) {
    s2_hiera_geom g;
    if (!c || encoder_geom(c, &g) < 0) return 0;
    int64_t trunk = s2_hiera_scratch_floats(c, &g), stages = 0, neck = 0;
    for (int k = 0; k < g.n_stages; k++) stages += (int64_t)g.lh[k] * g.lw[k] * g.lc[k];
    for (int k = 0; k < g.n_stages; k++) { // scalped outputs + one level's temporaries
        int64_t lvl = (int64_t)c->d_model * g.lh[k] * g.lw[k];
        neck = S2_MAX(neck, (k >= g.n_stages - c->scalp ? 0 : 2 * lvl) + 2 * lvl);
    }
    return (size_t)(S2_MAX(trunk, stages + neck) * (int64_t)sizeof(float));
}

/* ================================ neck ================================ */

/* out [D, h, w] = lateral 1x1 conv of the NHWC stage output x [h, w, Ck].
 * ref: sam2/modeling/backbones/image_encoder.py FpnNeck.__init__ (convs.<j>.conv) */
static int lateral(s2_ctx *ctx, const sam2c_model *m, int j, const float *x, int h, int w,
                   int Ck, float *out) {
    int D = m->cfg.d_model;
    const s2_tensor *wt = s2_wt(m, "image_encoder.neck.convs.%d.conv.weight", j); // (D, Ck, 1, 1)
    if (wt->ndim != 4 || wt->shape[0] != D || wt->shape[1] != Ck || wt->shape[2] != 1 ||
        wt->shape[3] != 1)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "neck: convs.%d is not a %d->%d 1x1 conv", j, Ck, D);
    s2_arena_mark mk = s2_arena_get_mark(ctx->scratch);
    float *t = s2_scratch_f32(ctx, (int64_t)h * w * D); // (h, w, D)
    if (!t) return SAM2C_ERR_NOMEM;
    s2_op_linear(ctx, t, x, (const float *)wt->data,
                 s2_w(m, "image_encoder.neck.convs.%d.conv.bias", j), (int64_t)h * w, Ck, D);
    s2_ref_nhwc_to_nchw(out, t, 1, h, w, D);
    s2_arena_release(ctx->scratch, mk);
    return 0;
}

/* True when level i takes the top-down path. */
static bool is_top_down(const s2_config *c, int i) {
    for (int j = 0; j < c->n_fpn_top_down; j++)
        if (c->fpn_top_down_levels[j] == i) return true;
    return false;
}

/* Dumps a [1, C, h, w] map as "<prefix>.<k>". */
static void dump_nchw(s2_ctx *ctx, const char *prefix, int k, const float *x, int C, int h,
                      int w) {
    char name[48];
    snprintf(name, sizeof name, "%s.%d", prefix, k);
    s2_dump(ctx, name, x, 4, (int64_t[]){1, C, h, w});
}

/* Neck over all L levels, deepest first; kept levels land in out, the scalped ones in
 * scratch (dumped as neck.out.<k> / neck.pos.<k>).
 * ref: sam2/modeling/backbones/image_encoder.py FpnNeck.forward + ImageEncoder.forward */
static int fpn_neck(s2_ctx *ctx, const sam2c_model *m, const s2_hiera_geom *g,
                    float *const feats[4], s2_backbone_out *out) {
    const s2_config *c = &m->cfg;
    int L = g->n_stages, D = c->d_model, kept = L - c->scalp;
    const float *prev = NULL; // (D, h_{i+1}, w_{i+1})
    for (int i = L - 1; i >= 0; i--) {
        int h = g->lh[i], w = g->lw[i];
        int64_t n = (int64_t)D * h * w;
        float *o = i < kept ? out->fpn[i] : s2_scratch_f32(ctx, n);  // (D, h, w)
        float *p = i < kept ? out->pos[i] : s2_scratch_f32(ctx, n);  // (D, h, w)
        if (!o || !p) return SAM2C_ERR_NOMEM;
        S2_CHECK(lateral(ctx, m, L - 1 - i, feats[i], h, w, g->lc[i], o));
        if (prev && is_top_down(c, i)) { // o += nearest x2 (prev)
            s2_arena_mark mk = s2_arena_get_mark(ctx->scratch);
            float *up = s2_scratch_f32(ctx, n);
            if (!up) return SAM2C_ERR_NOMEM;
            s2_ref_interp_nearest(up, prev, D, g->lh[i + 1], g->lw[i + 1], h, w);
            s2_ref_add(o, o, up, n);
            s2_arena_release(ctx->scratch, mk);
        }
        prev = o;
        if (i >= kept || !out->pos_ready) S2_CHECK(s2_pos_embed_sine(p, D, h, w, c->neck_pe_temperature));
        dump_nchw(ctx, i < kept ? "backbone_fpn" : "neck.out", i, o, D, h, w);
        dump_nchw(ctx, i < kept ? "vision_pos_enc" : "neck.pos", i, p, D, h, w);
    }
    out->pos_ready = true;
    return 0;
}

/* ============================ image encoder ============================ */

/* high_res[k] = conv_s<k>(fpn[k]), the projections SAM2Base precomputes for the decoder.
 * ref: sam2/modeling/sam2_base.py SAM2Base.forward_image */
static int high_res_feats(s2_ctx *ctx, const sam2c_model *m, s2_backbone_out *out) {
    int D = out->C;
    for (int k = 0; k < 2; k++) {
        const s2_tensor *wt = s2_wt(m, "sam_mask_decoder.conv_s%d.weight", k); // (OC, D, 1, 1)
        int oc = out->hr_c[k];
        if (wt->ndim != 4 || wt->shape[0] != oc || wt->shape[1] != D || wt->shape[2] != 1 ||
            wt->shape[3] != 1)
            return s2_err(SAM2C_ERR_UNSUPPORTED, "conv_s%d is not a %d->%d 1x1 conv", k, D, oc);
        s2_conv2d_desc d = {1, D, out->h[k], out->w[k], oc, 1, 1, 1, 1, 0, 0, 1};
        s2_op_conv2d(ctx, out->high_res[k], out->fpn[k], (const float *)wt->data,
                     s2_w(m, "sam_mask_decoder.conv_s%d.bias", k), &d);
        dump_nchw(ctx, "high_res_feats", k, out->high_res[k], oc, out->h[k], out->w[k]);
    }
    return 0;
}

/* Checks that out was carved for this model's config. */
static int check_out(const s2_config *c, const s2_hiera_geom *g, const s2_backbone_out *out) {
    int kept = g->n_stages - c->scalp;
    if (out->n_levels != kept || out->C != c->d_model)
        return s2_err(SAM2C_ERR_ARG, "image encoder: output carved for %d levels of %d, "
                      "model has %d of %d", out->n_levels, out->C, kept, c->d_model);
    for (int k = 0; k < kept; k++)
        if (!out->fpn[k] || !out->pos[k] || out->h[k] != g->lh[k] || out->w[k] != g->lw[k])
            return s2_err(SAM2C_ERR_ARG, "image encoder: output level %d not carved", k);
    if (c->use_high_res_features_in_sam && (!out->high_res[0] || !out->high_res[1]))
        return s2_err(SAM2C_ERR_ARG, "image encoder: high-res outputs not carved");
    return 0;
}

/* Trunk, neck and high-res projections, with the scratch released afterwards. */
static int encode(s2_ctx *ctx, const sam2c_model *m, const s2_hiera_geom *g, const float *img,
                  s2_backbone_out *out) {
    float *feats[4] = {0}; // stage outputs (lh, lw, lc) NHWC
    S2_CHECK(s2_hiera_forward(ctx, m, g, img, feats));
    S2_CHECK(fpn_neck(ctx, m, g, feats, out));
    if (m->cfg.use_high_res_features_in_sam) S2_CHECK(high_res_feats(ctx, m, out));
    return 0;
}

/* ref: sam2/modeling/backbones/image_encoder.py ImageEncoder.forward,
 *      sam2/modeling/sam2_base.py SAM2Base.forward_image */
int s2_image_encoder_forward(s2_ctx *ctx, const sam2c_model *m, const float *img,
                             s2_backbone_out *out) {
    if (!ctx || !ctx->scratch || !m || !img || !out)
        return s2_err(SAM2C_ERR_ARG, "image encoder: missing context, model, image or output");
    s2_hiera_geom g;
    S2_CHECK(encoder_geom(&m->cfg, &g));
    S2_CHECK(check_out(&m->cfg, &g, out));
    s2_arena_mark mk = s2_arena_get_mark(ctx->scratch);
    int rc = encode(ctx, m, &g, img, out);
    s2_arena_release(ctx->scratch, mk);
    return rc;
}
