/* FPN neck with saved activations and its backward pass, and the whole image encoder
 * (trunk + neck) for training. Mirrors src/model/fpn_neck.c: lateral 1x1 convolutions
 * of the NHWC stage outputs, nearest x2 top-down sums on fpn_top_down_levels, scalp.
 * The sine position encodings and conv_s0 / conv_s1 are not here (the first has no
 * parameters; the second belongs to the mask decoder, see decoder_train.c).
 * Letters: D = d_model, level k has lh x lw cells and Ck trunk channels (level 0 = the
 * highest resolution). */
#include "train/encoder_train.h"
#include "train/grad_ops.h"

#include <string.h>

#define NECK "image_encoder.neck.convs.%d.conv."

/* True when level i takes the top-down path. */
static bool is_top_down(const s2_config *c, int i) {
    for (int j = 0; j < c->n_fpn_top_down; j++)
        if (c->fpn_top_down_levels[j] == i) return true;
    return false;
}

/* Checks that lateral conv j is a Ck -> D 1x1 convolution. */
static int check_lateral(const sam2c_model *m, int j, int Ck) {
    const s2_tensor *wt = s2_wt(m, NECK "weight", j); // (D, Ck, 1, 1)
    if (wt->ndim != 4 || wt->shape[0] != m->cfg.d_model || wt->shape[1] != Ck ||
        wt->shape[2] != 1 || wt->shape[3] != 1)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "neck: convs.%d is not a %d->%d 1x1 conv", j, Ck,
                      m->cfg.d_model);
    return SAM2C_OK;
}

// ref: sam2/modeling/backbones/image_encoder.py FpnNeck.forward (deepest level first)
static int neck_forward(s2_tctx *t, s2_enc_tape *et) {
    const sam2c_model *m = t->m;
    const s2_hiera_geom *g = &et->g;
    int L = et->L, D = et->D;
    for (int i = L - 1; i >= 0; i--) {
        int h = g->lh[i], w = g->lw[i], j = L - 1 - i;
        int64_t n = (int64_t)D * h * w;
        S2_CHECK(check_lateral(m, j, g->lc[i]));
        et->out[i] = s2_tape_f32(t, n); // (D, h, w)
        s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
        float *tmp = s2_scratch_f32(t->c, n); // (h, w, D), then the upsampled level above
        s2_op_linear(t->c, tmp, et->stage[i], s2_w(m, NECK "weight", j), s2_w(m, NECK "bias", j),
                     (int64_t)h * w, g->lc[i], D);
        s2_ref_nhwc_to_nchw(et->out[i], tmp, 1, h, w, D);
        if (i < L - 1 && is_top_down(&m->cfg, i)) { // out += nearest x2 (out[i + 1])
            s2_ref_interp_nearest(tmp, et->out[i + 1], D, g->lh[i + 1], g->lw[i + 1], h, w);
            s2_ref_add(et->out[i], et->out[i], tmp, n);
        }
        s2_arena_release(t->c->scratch, mk);
    }
    return SAM2C_OK;
}

// ref: FpnNeck.forward (autograd): d_lvl[i] (D, lh, lw) of every level (modified: the
// top-down paths add into the coarser levels) -> d_stage[i] (lh, lw, lc) +=
static void neck_backward(s2_tctx *t, const s2_enc_tape *et, float *const d_lvl[4],
                          float *const d_stage[4]) {
    const s2_hiera_geom *g = &et->g;
    int L = et->L, D = et->D;
    for (int i = 0; i < L; i++) {
        int h = g->lh[i], w = g->lw[i], j = L - 1 - i;
        int64_t hw = (int64_t)h * w;
        if (i < L - 1 && is_top_down(&t->m->cfg, i))
            s2_interp_nearest_backward(d_lvl[i], d_lvl[i + 1], D, g->lh[i + 1], g->lw[i + 1], h, w);
        s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
        float *dt = s2_scratch_f32(t->c, hw * D); // (h, w, D)
        s2_ref_nchw_to_nhwc(dt, d_lvl[i], 1, D, h, w);
        s2_linear_backward(t->c, et->stage[i], s2_w(t->m, NECK "weight", j), dt, d_stage[i],
                           s2_grad_opt(t->p, NECK "weight", j), s2_grad_opt(t->p, NECK "bias", j),
                           hw, g->lc[i], D);
        s2_arena_release(t->c->scratch, mk);
    }
}

// ref: sam2/modeling/backbones/image_encoder.py ImageEncoder.forward
int s2_encoder_forward_train(s2_tctx *t, const float *img, s2_enc_tape *et) {
    if (!t || !t->m || !img || !et) return s2_err(SAM2C_ERR_ARG, "encoder: missing model or image");
    const s2_config *c = &t->m->cfg;
    memset(et, 0, sizeof *et);
    S2_CHECK(s2_hiera_geom_init(c, &et->g));
    if (!s2_backbone_out_floats(c))
        return s2_err_prefix(SAM2C_ERR_UNSUPPORTED, "encoder: ");
    et->S = c->image_size, et->L = et->g.n_stages, et->D = c->d_model;
    et->kept = et->L - c->scalp;
    et->img = img;
    S2_CHECK(s2_hiera_forward_train(t, et));
    return neck_forward(t, et);
}

// ref: ImageEncoder.forward (autograd)
void s2_encoder_backward(s2_tctx *t, const s2_enc_tape *et, const float *const d_out[4]) {
    const s2_hiera_geom *g = &et->g;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    float *d_lvl[4] = {0}, *d_stage[4] = {0};
    for (int i = 0; i < et->L; i++) {
        int64_t n = (int64_t)et->D * g->lh[i] * g->lw[i], ns = (int64_t)g->lh[i] * g->lw[i] * g->lc[i];
        d_lvl[i] = s2_scratch_f32(t->c, n);
        d_stage[i] = s2_scratch_f32(t->c, ns);
        if (i < et->kept && d_out[i]) memcpy(d_lvl[i], d_out[i], sizeof(float) * (size_t)n);
        else memset(d_lvl[i], 0, sizeof(float) * (size_t)n);
        memset(d_stage[i], 0, sizeof(float) * (size_t)ns);
    }
    neck_backward(t, et, d_lvl, d_stage);
    s2_hiera_backward(t, et, d_stage);
    s2_arena_release(t->c->scratch, mk);
}

/* Dense encoder training, or adapters not yet merged. */
bool s2_trainable_has_encoder(const s2_trainable *t) {
    return t && ((t->modules & S2_TRAIN_IMAGE_ENCODER) || (t->n_lora > 0 && !t->lora_merged));
}
