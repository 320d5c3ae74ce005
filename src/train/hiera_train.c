/* Hiera trunk with saved activations and its backward pass: patch embedding, position
 * embeddings (bicubic background + tiled window), then multi-scale blocks (LayerNorm,
 * windows, attention with q-pooling, the dim-changing shortcut, GELU MLP). Mirrors
 * src/model/hiera.c op for op (same kernels in the same order), batch 1, NHWC.
 * Letters: see encoder_train.h. */
#include "train/encoder_train.h"
#include "train/grad_ops.h"

#include <string.h>

#define LN_EPS 1e-6f /* norm_layer = partial(nn.LayerNorm, eps=1e-6) */
#define TB "image_encoder.trunk.blocks.%d."

/* Ceil division for positive ints. */
static int cdiv(int a, int b) { return (a + b - 1) / b; }

/* Zeroed scratch floats (gradient temporaries). */
static float *zeros(s2_tctx *t, int64_t n) {
    float *p = s2_scratch_f32(t->c, n > 0 ? n : 1);
    memset(p, 0, sizeof(float) * (size_t)(n > 0 ? n : 1));
    return p;
}

// ref: sam2/modeling/backbones/hieradet.py Hiera.__init__ (per-block window, q_stride)
s2_hblock_dims s2_hblock_dims_of(const s2_hiera_geom *g, int i) {
    const s2_hiera_block *b = &g->blk[i];
    int H = i ? g->bh[i - 1] : g->h0, W = i ? g->bw[i - 1] : g->w0;
    return (s2_hblock_dims){H, W, b->dim, g->bh[i], g->bw[i], b->dim_out, b->num_heads,
                            b->window_size, g->qs, b->mlp_hidden, b->q_pool};
}

/* Window grid and token counts of a block (global attention: one H x W "window"). */
static void tape_geom(const s2_hblock_dims *k, s2_hblock_tape *tp) {
    tp->k = *k;
    tp->nWh = tp->nWw = 1, tp->sh = k->H, tp->sw = k->W;
    if (k->ws > 0) tp->nWh = cdiv(k->H, k->ws), tp->nWw = cdiv(k->W, k->ws), tp->sh = tp->sw = k->ws;
    tp->nW = (int64_t)tp->nWh * tp->nWw;
    tp->T = (int64_t)tp->sh * tp->sw;
    tp->Tq = k->pool ? (int64_t)(tp->sh / k->qs) * (tp->sw / k->qs) : tp->T;
}

/* Checks the shapes the block ops rely on (the inference geometry checks the rest). */
static int check_dims(const s2_hblock_dims *k) {
    if (k->H <= 0 || k->W <= 0 || k->C <= 0 || k->Co <= 0 || k->nh <= 0 || k->Co % k->nh ||
        k->Hd <= 0 || k->ws < 0 || (k->pool && k->qs <= 0))
        return s2_err(SAM2C_ERR_UNSUPPORTED, "hiera block: dims %dx%dx%d -> %d, %d heads, window %d",
                      k->H, k->W, k->C, k->Co, k->nh, k->ws);
    int Ho = k->pool ? k->H / k->qs : k->H, Wo = k->pool ? k->W / k->qs : k->W;
    if (Ho != k->Ho || Wo != k->Wo || (k->pool && k->C == k->Co))
        return s2_err(SAM2C_ERR_UNSUPPORTED, "hiera block: %dx%d does not pool to %dx%d", k->H,
                      k->W, k->Ho, k->Wo);
    if (k->pool && k->ws > 0 && (cdiv(k->H, k->ws) != cdiv(Ho, k->ws / k->qs) ||
                                 cdiv(k->W, k->ws) != cdiv(Wo, k->ws / k->qs)))
        return s2_err(SAM2C_ERR_UNSUPPORTED, "hiera block: window %d on %dx%d does not pool onto its grid",
                      k->ws, k->H, k->W);
    return SAM2C_OK;
}

/* ============================ block forward ============================ */

/* q (nW*T, Co) copied out of qkv, then max-pooled per window into tp->qp (nW*Tq, Co). */
static void pool_q(s2_tctx *t, s2_hblock_tape *tp) {
    int Co = tp->k.Co;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    float *qf = s2_scratch_f32(t->c, tp->nW * tp->T * Co); // (nW, sh, sw, Co)
    for (int64_t r = 0; r < tp->nW * tp->T; r++) memcpy(qf + r * Co, tp->qkv + r * 3 * Co, sizeof(float) * (size_t)Co);
    s2_ref_maxpool_nhwc(tp->qp, qf, (int)tp->nW, tp->sh, tp->sw, Co, tp->k.qs);
    s2_arena_release(t->c->scratch, mk);
}

// ref: sam2/modeling/backbones/hieradet.py MultiScaleAttention.forward (qkv, q-pool,
// scaled_dot_product_attention, proj); a (nW*Tq, Co) into scratch
static float *attention_forward(s2_tctx *t, const s2_hblock_w *w, s2_hblock_tape *tp) {
    const s2_hblock_dims *k = &tp->k;
    int Co = k->Co;
    tp->qkv = s2_tape_f32(t, tp->nW * tp->T * 3 * Co);
    s2_op_linear(t->c, tp->qkv, tp->win, w->qkv_w, w->qkv_b, tp->nW * tp->T, k->C, 3 * Co);
    const float *q = tp->qkv;
    int64_t q_ld = 3 * (int64_t)Co;
    if (k->pool) {
        tp->qp = s2_tape_f32(t, tp->nW * tp->Tq * Co);
        pool_q(t, tp);
        q = tp->qp, q_ld = Co;
    }
    tp->o = s2_tape_f32(t, tp->nW * tp->Tq * Co);
    s2_op_attention(t->c, tp->o, Co, q, q_ld, tp->qkv + Co, 3 * Co, tp->qkv + 2 * Co, 3 * Co,
                    (int)tp->nW, k->nh, tp->Tq, tp->T, Co / k->nh);
    float *a = s2_scratch_f32(t->c, tp->nW * tp->Tq * Co);
    s2_op_linear(t->c, a, tp->o, w->ap_w, w->ap_b, tp->nW * tp->Tq, Co, Co);
    return a;
}

/* The shortcut (Ho*Wo, Co): x itself, or pool(proj(xn)) when the dim changes. */
static const float *shortcut_forward(s2_tctx *t, const s2_hblock_w *w, s2_hblock_tape *tp) {
    const s2_hblock_dims *k = &tp->k;
    if (k->C == k->Co) return tp->x;
    int64_t N = (int64_t)k->H * k->W;
    tp->sct = s2_tape_f32(t, N * k->Co);
    s2_op_linear(t->c, tp->sct, tp->xn, w->sc_w, w->sc_b, N, k->C, k->Co);
    if (!k->pool) return tp->sct;
    float *sp = s2_scratch_f32(t->c, (int64_t)k->Ho * k->Wo * k->Co);
    s2_ref_maxpool_nhwc(sp, tp->sct, 1, k->H, k->W, k->Co, k->qs);
    return sp;
}

// ref: sam2/modeling/backbones/hieradet.py MultiScaleBlock.forward (MLP branch) and
//      sam2/modeling/sam2_utils.py MLP (Linear, GELU, Linear)
static void mlp_forward(s2_tctx *t, const s2_hblock_w *w, s2_hblock_tape *tp) {
    const s2_hblock_dims *k = &tp->k;
    int64_t No = (int64_t)k->Ho * k->Wo;
    tp->xn2 = s2_tape_f32(t, No * k->Co);
    tp->h1 = s2_tape_f32(t, No * k->Hd);
    tp->g1 = s2_tape_f32(t, No * k->Hd);
    tp->y = s2_tape_f32(t, No * k->Co);
    s2_ref_layernorm(tp->xn2, tp->y1, w->n2_w, w->n2_b, No, k->Co, LN_EPS);
    s2_op_linear(t->c, tp->h1, tp->xn2, w->f1_w, w->f1_b, No, k->Co, k->Hd);
    memcpy(tp->g1, tp->h1, sizeof(float) * (size_t)(No * k->Hd));
    s2_ref_gelu(tp->g1, No * k->Hd);
    s2_op_linear(t->c, tp->y, tp->g1, w->f2_w, w->f2_b, No, k->Hd, k->Co);
    s2_ref_add(tp->y, tp->y, tp->y1, No * k->Co);
}

// ref: sam2/modeling/backbones/hieradet.py MultiScaleBlock.forward
int s2_hblock_forward_train(s2_tctx *t, const s2_hblock_dims *k, const s2_hblock_w *w,
                            const float *x, s2_hblock_tape *tp) {
    S2_CHECK(check_dims(k));
    *tp = (s2_hblock_tape){0};
    tape_geom(k, tp);
    int64_t N = (int64_t)k->H * k->W, No = (int64_t)k->Ho * k->Wo;
    tp->x = x;
    tp->xn = s2_tape_f32(t, N * k->C);
    s2_ref_layernorm(tp->xn, x, w->n1_w, w->n1_b, N, k->C, LN_EPS);
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    const float *sc = shortcut_forward(t, w, tp); // (No, Co)
    tp->win = tp->xn;
    if (k->ws > 0) {
        tp->win = s2_tape_f32(t, tp->nW * tp->T * k->C);
        s2_window_partition(tp->win, tp->xn, k->H, k->W, k->C, k->ws);
    }
    float *a = attention_forward(t, w, tp); // (nW*Tq, Co)
    tp->y1 = s2_tape_f32(t, No * k->Co);
    if (k->ws > 0) {
        s2_window_unpartition(tp->y1, a, k->Ho, k->Wo, k->Co, k->pool ? k->ws / k->qs : k->ws);
        s2_ref_add(tp->y1, sc, tp->y1, No * k->Co);
    } else {
        s2_ref_add(tp->y1, sc, a, No * k->Co);
    }
    s2_arena_release(t->c->scratch, mk);
    mlp_forward(t, w, tp);
    return SAM2C_OK;
}

/* ============================ block backward ============================ */

// ref: MultiScaleBlock.forward MLP branch (autograd): dy (No,Co) -> dy1 (No,Co) +=
static void mlp_backward(s2_tctx *t, const s2_hblock_tape *tp, const s2_hblock_w *w,
                         const s2_hblock_g *g, const float *dy, float *dy1) {
    const s2_hblock_dims *k = &tp->k;
    int64_t No = (int64_t)k->Ho * k->Wo;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    float *dg = zeros(t, No * k->Hd), *dxn2 = zeros(t, No * k->Co);
    s2_linear_backward(t->c, tp->g1, w->f2_w, dy, dg, g->f2_w, g->f2_b, No, k->Hd, k->Co);
    s2_gelu_backward(tp->h1, dg, dg, No * k->Hd);
    s2_linear_backward(t->c, tp->xn2, w->f1_w, dg, dxn2, g->f1_w, g->f1_b, No, k->Co, k->Hd);
    s2_layernorm_backward(tp->y1, w->n2_w, dxn2, dy1, g->n2_w, g->n2_b, No, k->Co, LN_EPS);
    s2_arena_release(t->c->scratch, mk);
}

// ref: MultiScaleAttention.forward (autograd): da (nW*Tq,Co) -> dwin (nW*T,C) +=
static void attention_backward(s2_tctx *t, const s2_hblock_tape *tp, const s2_hblock_w *w,
                               const s2_hblock_g *g, const float *da, float *dwin) {
    const s2_hblock_dims *k = &tp->k;
    int Co = k->Co;
    int64_t R = tp->nW * tp->T, Rq = tp->nW * tp->Tq;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    float *d_o = zeros(t, Rq * Co), *dqkv = zeros(t, R * 3 * Co);
    s2_linear_backward(t->c, tp->o, w->ap_w, da, d_o, g->ap_w, g->ap_b, Rq, Co, Co);
    if (k->pool) {
        float *dqp = zeros(t, Rq * Co), *qf = s2_scratch_f32(t->c, R * Co), *dqf = zeros(t, R * Co);
        s2_attention_backward_gemm(t->c, tp->qp, Co, tp->qkv + Co, 3 * Co, tp->qkv + 2 * Co,
                                   3 * Co, d_o, Co, dqp, dqkv + Co, dqkv + 2 * Co, (int)tp->nW,
                                   k->nh, tp->Tq, tp->T, Co / k->nh);
        for (int64_t r = 0; r < R; r++) memcpy(qf + r * Co, tp->qkv + r * 3 * Co, sizeof(float) * (size_t)Co);
        s2_maxpool_nhwc_backward(qf, dqp, dqf, (int)tp->nW, tp->sh, tp->sw, Co, k->qs);
        for (int64_t r = 0; r < R; r++) memcpy(dqkv + r * 3 * Co, dqf + r * Co, sizeof(float) * (size_t)Co);
    } else {
        s2_attention_backward_gemm(t->c, tp->qkv, 3 * Co, tp->qkv + Co, 3 * Co,
                                   tp->qkv + 2 * Co, 3 * Co, d_o, Co, dqkv, dqkv + Co,
                                   dqkv + 2 * Co, (int)tp->nW, k->nh, tp->Tq, tp->T, Co / k->nh);
    }
    s2_linear_backward(t->c, tp->win, w->qkv_w, dqkv, dwin, g->qkv_w, g->qkv_b, R, k->C, 3 * Co);
    s2_arena_release(t->c->scratch, mk);
}

/* The shortcut's gradient dsc (No, Co): into dx directly, or through pool and proj
 * into dxn when the dim changes. */
static void shortcut_backward(s2_tctx *t, const s2_hblock_tape *tp, const s2_hblock_w *w,
                              const s2_hblock_g *g, const float *dsc, float *dxn, float *dx) {
    const s2_hblock_dims *k = &tp->k;
    int64_t N = (int64_t)k->H * k->W, No = (int64_t)k->Ho * k->Wo;
    if (k->C == k->Co) {
        if (dx) s2_ref_add(dx, dx, dsc, No * k->Co);
        return;
    }
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    const float *dt = dsc;
    if (k->pool) {
        float *d = zeros(t, N * k->Co);
        s2_maxpool_nhwc_backward(tp->sct, dsc, d, 1, k->H, k->W, k->Co, k->qs);
        dt = d;
    }
    s2_linear_backward(t->c, tp->xn, w->sc_w, dt, dxn, g->sc_w, g->sc_b, N, k->C, k->Co);
    s2_arena_release(t->c->scratch, mk);
}

// ref: MultiScaleBlock.forward (autograd)
void s2_hblock_backward(s2_tctx *t, const s2_hblock_tape *tp, const s2_hblock_w *w,
                        const s2_hblock_g *g, const float *dy, float *dx) {
    const s2_hblock_dims *k = &tp->k;
    int64_t N = (int64_t)k->H * k->W, No = (int64_t)k->Ho * k->Wo;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    float *dy1 = s2_scratch_f32(t->c, No * k->Co); // y = y1 + mlp(norm2(y1))
    memcpy(dy1, dy, sizeof(float) * (size_t)(No * k->Co));
    mlp_backward(t, tp, w, g, dy, dy1);
    float *dxn = zeros(t, N * k->C), *dwin = dxn;
    float *da = zeros(t, tp->nW * tp->Tq * k->Co); // y1 = shortcut + unpartition(a)
    if (k->ws > 0) {
        s2_window_unpartition_backward(dy1, da, k->Ho, k->Wo, k->Co, k->pool ? k->ws / k->qs : k->ws);
        dwin = zeros(t, tp->nW * tp->T * k->C);
    } else {
        memcpy(da, dy1, sizeof(float) * (size_t)(No * k->Co));
    }
    attention_backward(t, tp, w, g, da, dwin);
    if (k->ws > 0) s2_window_partition_backward(dwin, dxn, k->H, k->W, k->C, k->ws);
    shortcut_backward(t, tp, w, g, dy1, dxn, dx);
    if (dx || g->n1_w || g->n1_b)
        s2_layernorm_backward(tp->x, w->n1_w, dxn, dx, g->n1_w, g->n1_b, N, k->C, LN_EPS);
    s2_arena_release(t->c->scratch, mk);
}

/* ============================ trunk ============================ */

/* The weights of block i as the forward uses them (LoRA-effective attention). */
static void block_weights(s2_tctx *t, int i, const s2_hiera_block *b, s2_hblock_w *w) {
    const sam2c_model *m = t->m;
    bool sc = b->dim != b->dim_out;
    *w = (s2_hblock_w){
        s2_w(m, TB "norm1.weight", i), s2_w(m, TB "norm1.bias", i),
        s2_lora_weight(t, s2_weight_slot(m, TB "attn.qkv.weight", i)), s2_w(m, TB "attn.qkv.bias", i),
        s2_lora_weight(t, s2_weight_slot(m, TB "attn.proj.weight", i)), s2_w(m, TB "attn.proj.bias", i),
        sc ? s2_w(m, TB "proj.weight", i) : NULL, sc ? s2_w(m, TB "proj.bias", i) : NULL,
        s2_w(m, TB "norm2.weight", i), s2_w(m, TB "norm2.bias", i),
        s2_w(m, TB "mlp.layers.0.weight", i), s2_w(m, TB "mlp.layers.0.bias", i),
        s2_w(m, TB "mlp.layers.1.weight", i), s2_w(m, TB "mlp.layers.1.bias", i)};
}

/* Gradient buffers of block i (NULL where frozen); with adapters, the attention
 * weights' gradients go to zeroed scratch for s2_lora_backward. */
static void block_grads(s2_tctx *t, int i, const s2_hblock_dims *k, s2_hblock_g *g) {
    const s2_trainable *p = t->p;
    bool sc = k->C != k->Co;
    *g = (s2_hblock_g){
        s2_grad_opt(p, TB "norm1.weight", i), s2_grad_opt(p, TB "norm1.bias", i),
        s2_grad_opt(p, TB "attn.qkv.weight", i), s2_grad_opt(p, TB "attn.qkv.bias", i),
        s2_grad_opt(p, TB "attn.proj.weight", i), s2_grad_opt(p, TB "attn.proj.bias", i),
        sc ? s2_grad_opt(p, TB "proj.weight", i) : NULL, sc ? s2_grad_opt(p, TB "proj.bias", i) : NULL,
        s2_grad_opt(p, TB "norm2.weight", i), s2_grad_opt(p, TB "norm2.bias", i),
        s2_grad_opt(p, TB "mlp.layers.0.weight", i), s2_grad_opt(p, TB "mlp.layers.0.bias", i),
        s2_grad_opt(p, TB "mlp.layers.1.weight", i), s2_grad_opt(p, TB "mlp.layers.1.bias", i)};
    if (p->n_lora && !p->lora_merged) {
        g->qkv_w = zeros(t, (int64_t)3 * k->Co * k->C);
        g->ap_w = zeros(t, (int64_t)k->Co * k->Co);
    }
}

/* True when any gradient buffer of g is set. */
static bool any_grad(const s2_hblock_g *g) {
    return g->n1_w || g->n1_b || g->qkv_w || g->qkv_b || g->ap_w || g->ap_b || g->sc_w ||
           g->sc_b || g->n2_w || g->n2_b || g->f1_w || g->f1_b || g->f2_w || g->f2_b;
}

/* True when block i has a gradient to compute (adapters: every block). */
static bool block_trains(s2_tctx *t, int i, const s2_hblock_dims *k) {
    if (t->p->n_lora && !t->p->lora_merged) return true;
    s2_hblock_g g;
    block_grads(t, i, k, &g);
    return any_grad(&g);
}

/* x0 (h0*w0, C0) = patch_embed(img) (NHWC) + pos embed.
 * ref: sam2/modeling/backbones/utils.py PatchEmbed.forward, hieradet.py Hiera._get_pos_embed */
static void embed_forward(s2_tctx *t, s2_enc_tape *et) {
    const sam2c_model *m = t->m;
    const s2_hiera_cfg *h = &m->cfg.hiera;
    const s2_hiera_geom *g = &et->g;
    int C = h->embed_dim, H = g->h0, W = g->w0, ws = h->window_spec[0], S = et->S;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    float *y = s2_scratch_f32(t->c, (int64_t)C * H * W); // (C, h0, w0)
    s2_conv2d_desc d = {1, 3, S, S, C, h->patch_kernel, h->patch_kernel, h->patch_stride,
                        h->patch_stride, h->patch_padding, h->patch_padding, 1};
    s2_op_conv2d(t->c, y, et->img, s2_w(m, "image_encoder.trunk.patch_embed.proj.weight"),
                 s2_w(m, "image_encoder.trunk.patch_embed.proj.bias"), &d);
    et->x0 = s2_tape_f32(t, (int64_t)H * W * C);
    s2_ref_nchw_to_nhwc(et->x0, y, 1, C, H, W);
    const float *pw = s2_w(m, "image_encoder.trunk.pos_embed_window"); // (1, C, ws, ws)
    float *p = y, *tt = s2_scratch_f32(t->c, (int64_t)C * H * W);       // (C, H, W), (H, W, C)
    s2_ref_interp_bicubic(p, s2_w(m, "image_encoder.trunk.pos_embed"), C, h->bkg_pe[0], h->bkg_pe[1], H, W, false);
    for (int c = 0; c < C; c++)
        for (int yy = 0; yy < H; yy++)
            for (int xx = 0; xx < W; xx++)
                p[((int64_t)c * H + yy) * W + xx] += pw[((int64_t)c * ws + yy % ws) * ws + xx % ws];
    s2_ref_nchw_to_nhwc(tt, p, 1, C, H, W);
    s2_ref_add(et->x0, et->x0, tt, (int64_t)H * W * C);
    s2_arena_release(t->c->scratch, mk);
}

// ref: Hiera.forward + PatchEmbed / _get_pos_embed (autograd): dx0 (h0*w0, C0)
static void embed_backward(s2_tctx *t, const s2_enc_tape *et, const float *dx0) {
    const s2_hiera_cfg *h = &t->m->cfg.hiera;
    const s2_hiera_geom *g = &et->g;
    int C = h->embed_dim, H = g->h0, W = g->w0, ws = h->window_spec[0];
    float *gpe = s2_grad_opt(t->p, "image_encoder.trunk.pos_embed");
    float *gpw = s2_grad_opt(t->p, "image_encoder.trunk.pos_embed_window");
    float *gw = s2_grad_opt(t->p, "image_encoder.trunk.patch_embed.proj.weight");
    float *gb = s2_grad_opt(t->p, "image_encoder.trunk.patch_embed.proj.bias");
    if (!gpe && !gpw && !gw && !gb) return;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    float *d = s2_scratch_f32(t->c, (int64_t)C * H * W); // (C, H, W)
    s2_ref_nhwc_to_nchw(d, dx0, 1, H, W, C);
    if (gpe) s2_interp_bicubic_backward(t->c, d, gpe, C, h->bkg_pe[0], h->bkg_pe[1], H, W);
    for (int c = 0; gpw && c < C; c++)
        for (int yy = 0; yy < H; yy++)
            for (int xx = 0; xx < W; xx++)
                gpw[((int64_t)c * ws + yy % ws) * ws + xx % ws] += d[((int64_t)c * H + yy) * W + xx];
    s2_conv2d_desc cd = {1, 3, et->S, et->S, C, h->patch_kernel, h->patch_kernel, h->patch_stride,
                         h->patch_stride, h->patch_padding, h->patch_padding, 1};
    if (gw || gb) s2_conv2d_weight_backward(t->c, et->img, d, gw, gb, &cd);
    s2_arena_release(t->c->scratch, mk);
}

// ref: sam2/modeling/backbones/hieradet.py Hiera.forward
int s2_hiera_forward_train(s2_tctx *t, s2_enc_tape *et) {
    embed_forward(t, et);
    const float *x = et->x0;
    for (int i = 0, stage = 0; i < et->g.n_blocks; i++) {
        s2_hblock_dims k = s2_hblock_dims_of(&et->g, i);
        block_weights(t, i, &et->g.blk[i], &et->w[i]);
        S2_CHECK(s2_hblock_forward_train(t, &k, &et->w[i], x, &et->blk[i]));
        x = et->blk[i].y;
        if (i == et->g.stage_end[stage]) et->stage[stage++] = et->blk[i].y;
    }
    return SAM2C_OK;
}

/* Lowest block with a gradient to compute (-1: the embeddings train too). */
static int lowest_trained(s2_tctx *t, const s2_enc_tape *et) {
    if (s2_grad_opt(t->p, "image_encoder.trunk.pos_embed") ||
        s2_grad_opt(t->p, "image_encoder.trunk.pos_embed_window") ||
        s2_grad_opt(t->p, "image_encoder.trunk.patch_embed.proj.weight") ||
        s2_grad_opt(t->p, "image_encoder.trunk.patch_embed.proj.bias"))
        return -1;
    for (int i = 0; i < et->g.n_blocks; i++) {
        s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
        s2_hblock_dims k = s2_hblock_dims_of(&et->g, i);
        bool tr = block_trains(t, i, &k);
        s2_arena_release(t->c->scratch, mk);
        if (tr) return i;
    }
    return et->g.n_blocks;
}

// ref: Hiera.forward (autograd): d_stage[s] NHWC gradients of the stage outputs
void s2_hiera_backward(s2_tctx *t, const s2_enc_tape *et, float *const d_stage[4]) {
    const s2_hiera_geom *g = &et->g;
    int lo = lowest_trained(t, et), n = g->n_blocks, stage = g->n_stages - 1;
    if (lo >= n) return;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    const float *dcur = d_stage[stage];
    for (int i = n - 1; i >= (lo < 0 ? 0 : lo); i--) {
        s2_hblock_dims k = s2_hblock_dims_of(g, i);
        bool need_dx = i > lo;
        float *dx = need_dx ? zeros(t, (int64_t)k.H * k.W * k.C) : NULL;
        s2_arena_mark mg = s2_arena_get_mark(t->c->scratch);
        s2_hblock_g gr;
        block_grads(t, i, &k, &gr);
        s2_hblock_backward(t, &et->blk[i], &et->w[i], &gr, dcur, dx);
        if (t->p->n_lora && !t->p->lora_merged) {
            s2_lora_backward(t, s2_weight_slot(t->m, TB "attn.qkv.weight", i), gr.qkv_w);
            s2_lora_backward(t, s2_weight_slot(t->m, TB "attn.proj.weight", i), gr.ap_w);
        }
        s2_arena_release(t->c->scratch, mg);
        if (!need_dx) break;
        if (stage > 0 && i - 1 == g->stage_end[stage - 1]) { // block i-1 ends a stage
            stage--;
            s2_ref_add(dx, dx, d_stage[stage], (int64_t)k.H * k.W * k.C);
        }
        dcur = dx;
    }
    if (lo < 0) embed_backward(t, et, dcur);
    s2_arena_release(t->c->scratch, mk);
}
