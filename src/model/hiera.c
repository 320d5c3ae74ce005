/* Hiera trunk of the SAM 2 image encoder (batch 1). Activations are NHWC as the
 * official code keeps them.
 * Dimension letters: S image side; H, W token grid entering a block, Ho, Wo leaving it;
 * C block dim, Co dim_out; ws window side (0 = global); nW windows; T tokens per
 * window (ws*ws, or H*W when global); Tq query tokens per window after q-pooling;
 * nh heads, d = Co/nh head dim; qs q_stride. */
#include "model/image_encoder.h"

#include <stdio.h>
#include <string.h>

#define LN_EPS 1e-6f /* norm_layer = partial(nn.LayerNorm, eps=1e-6) */

/* ============================ geometry / validation ============================ */

/* Ceil division for positive ints. */
static int cdiv(int a, int b) { return (a + b - 1) / b; }

/* Checks that a windowed, q-pooled block unpartitions onto the same window grid the
 * partition produced (the official reshape otherwise mixes windows silently).
 * ref: sam2/modeling/backbones/hieradet.py MultiScaleBlock.forward (q_stride branch) */
static int check_pool_windows(int i, int ws, int qs, int H, int W, int Ho, int Wo) {
    int ws2 = ws / qs;
    if (ws2 <= 0)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "hiera block %d: window %d smaller than q_stride %d",
                      i, ws, qs);
    if (cdiv(H, ws) != cdiv(Ho, ws2) || cdiv(W, ws) != cdiv(Wo, ws2))
        return s2_err(SAM2C_ERR_UNSUPPORTED,
                      "hiera block %d: window %d on %dx%d does not pool onto window %d on %dx%d",
                      i, ws, H, W, ws2, Ho, Wo);
    return 0;
}

/* Derives the per-block grid of every block and the stage outputs from the config.
 * ref: sam2/modeling/backbones/hieradet.py Hiera.__init__ */
static int geom_blocks(const s2_config *c, s2_hiera_geom *g) {
    int H = g->h0, W = g->w0, C = c->hiera.embed_dim, stage = 0, acc = 0;
    for (int s = 0; s < g->n_stages; s++) {
        acc += c->hiera.stages[s];
        g->stage_end[s] = acc - 1;
    }
    for (int i = 0; i < g->n_blocks; i++) {
        const s2_hiera_block *b = &g->blk[i];
        if (b->dim != C || b->dim_out <= 0 || b->num_heads <= 0 || b->dim_out % b->num_heads)
            return s2_err(SAM2C_ERR_UNSUPPORTED, "hiera block %d: dim %d->%d with %d heads", i,
                          b->dim, b->dim_out, b->num_heads);
        if (b->window_size < 0 || b->mlp_hidden <= 0)
            return s2_err(SAM2C_ERR_UNSUPPORTED, "hiera block %d: window %d, mlp %d", i,
                          b->window_size, b->mlp_hidden);
        if (b->q_pool && b->dim == b->dim_out)
            return s2_err(SAM2C_ERR_UNSUPPORTED,
                          "hiera block %d: q-pooling without a channel change (official "
                          "shortcut is not pooled then)", i);
        int Ho = b->q_pool ? H / g->qs : H, Wo = b->q_pool ? W / g->qs : W;
        if (Ho <= 0 || Wo <= 0)
            return s2_err(SAM2C_ERR_UNSUPPORTED, "hiera block %d: grid %dx%d pools to nothing",
                          i, H, W);
        if (b->q_pool && b->window_size > 0)
            S2_CHECK(check_pool_windows(i, b->window_size, g->qs, H, W, Ho, Wo));
        H = Ho, W = Wo, C = b->dim_out;
        g->bh[i] = H, g->bw[i] = W;
        if (i == g->stage_end[stage]) {
            g->lh[stage] = H, g->lw[stage] = W, g->lc[stage] = C;
            stage++;
        }
    }
    return 0;
}

/* ref: sam2/modeling/backbones/hieradet.py Hiera.__init__ / utils.py PatchEmbed */
int s2_hiera_geom_init(const s2_config *c, s2_hiera_geom *g) {
    const s2_hiera_cfg *h = &c->hiera;
    memset(g, 0, sizeof *g);
    if (h->n_stages < 1 || h->n_stages > 4)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "hiera: %d stages (1..4 supported)", h->n_stages);
    for (int s = 0; s < h->n_stages; s++)
        if (h->stages[s] <= 0)
            return s2_err(SAM2C_ERR_UNSUPPORTED, "hiera: stage %d has %d blocks", s, h->stages[s]);
    if (h->q_stride[0] <= 0 || h->q_stride[0] != h->q_stride[1])
        return s2_err(SAM2C_ERR_UNSUPPORTED, "hiera: q_stride (%d, %d) (square only)",
                      h->q_stride[0], h->q_stride[1]);
    if (h->embed_dim <= 0 || h->patch_kernel <= 0 || h->patch_stride <= 0 || h->patch_padding < 0)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "hiera: bad patch embed (dim %d, k%d s%d p%d)",
                      h->embed_dim, h->patch_kernel, h->patch_stride, h->patch_padding);
    if (h->window_spec[0] <= 0 || h->bkg_pe[0] <= 0 || h->bkg_pe[1] <= 0)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "hiera: pos-embed window %d, background %dx%d",
                      h->window_spec[0], h->bkg_pe[0], h->bkg_pe[1]);
    g->n_stages = h->n_stages;
    g->qs = h->q_stride[0];
    int S = c->image_size;
    g->h0 = g->w0 = (S + 2 * h->patch_padding - h->patch_kernel) / h->patch_stride + 1;
    if (S <= 0 || S + 2 * h->patch_padding < h->patch_kernel)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "hiera: image size %d too small for patch embed", S);
    if (g->h0 % h->window_spec[0] != 0)
        return s2_err(SAM2C_ERR_UNSUPPORTED,
                      "hiera: patch grid %d is not a multiple of the pos-embed window %d", g->h0,
                      h->window_spec[0]);
    g->n_blocks = s2_hiera_blocks(c, g->blk, S2_MAX_BLOCKS);
    if (g->n_blocks <= 0 || g->n_blocks > S2_MAX_BLOCKS)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "hiera: %d blocks (1..%d supported)", g->n_blocks,
                      S2_MAX_BLOCKS);
    return geom_blocks(c, g);
}

/* ================================ helpers ================================ */

/* Scratch floats or NULL with the message set (the caller returns SAM2C_ERR_NOMEM). */
static float *scratch(s2_ctx *ctx, int64_t n) { return s2_scratch_f32(ctx, n > 0 ? n : 1); }

/* Dumps an NHWC map under its fixture name. */
static void dump_nhwc(s2_ctx *ctx, const char *name, const float *x, int H, int W, int C) {
    s2_dump(ctx, name, x, 4, (int64_t[]){1, H, W, C});
}

/* ============================ patch + pos embed ============================ */

/* x [h0*w0, C] = patch_embed(img) (NHWC).
 * ref: sam2/modeling/backbones/utils.py PatchEmbed.forward */
static int patch_embed(s2_ctx *ctx, const sam2c_model *m, const s2_hiera_geom *g,
                       const float *img /*[1,3,S,S]*/, float *x /*[h0,w0,C]*/) {
    const s2_hiera_cfg *h = &m->cfg.hiera;
    int C = h->embed_dim, S = m->cfg.image_size;
    s2_arena_mark mk = s2_arena_get_mark(ctx->scratch);
    float *y = scratch(ctx, (int64_t)C * g->h0 * g->w0); // (C, h0, w0)
    if (!y) return SAM2C_ERR_NOMEM;
    s2_conv2d_desc d = {1, 3, S, S, C, h->patch_kernel, h->patch_kernel, h->patch_stride,
                        h->patch_stride, h->patch_padding, h->patch_padding, 1};
    s2_op_conv2d(ctx, y, img, s2_w(m, "image_encoder.trunk.patch_embed.proj.weight"),
                 s2_w(m, "image_encoder.trunk.patch_embed.proj.bias"), &d);
    s2_ref_nchw_to_nhwc(x, y, 1, C, g->h0, g->w0);
    s2_arena_release(ctx->scratch, mk);
    dump_nhwc(ctx, "trunk.patch_embed", x, g->h0, g->w0, C);
    return 0;
}

/* x += bicubic(pos_embed -> h0 x w0) + tile(pos_embed_window), in NHWC rows.
 * ref: sam2/modeling/backbones/hieradet.py Hiera._get_pos_embed */
static int add_pos_embed(s2_ctx *ctx, const sam2c_model *m, const s2_hiera_geom *g,
                         float *x /*[h0,w0,C]*/) {
    const s2_hiera_cfg *h = &m->cfg.hiera;
    int C = h->embed_dim, H = g->h0, W = g->w0, ws = h->window_spec[0];
    const float *pe = s2_w(m, "image_encoder.trunk.pos_embed");         // (1, C, bh, bw)
    const float *pw = s2_w(m, "image_encoder.trunk.pos_embed_window");  // (1, C, ws, ws)
    s2_arena_mark mk = s2_arena_get_mark(ctx->scratch);
    float *p = scratch(ctx, (int64_t)C * H * W);  // (C, H, W)
    float *t = scratch(ctx, (int64_t)C * H * W);  // (H, W, C)
    float *pwn = scratch(ctx, (int64_t)C * ws * ws); // (ws, ws, C)
    if (!p || !t || !pwn) return SAM2C_ERR_NOMEM;
    s2_ref_interp_bicubic(p, pe, C, h->bkg_pe[0], h->bkg_pe[1], H, W, false);
    s2_ref_nchw_to_nhwc(t, p, 1, C, H, W);
    s2_ref_nchw_to_nhwc(pwn, pw, 1, C, ws, ws);
#pragma omp parallel for schedule(static)
    for (int y = 0; y < H; y++) // t += the window embedding tiled over the grid
        for (int xx = 0; xx < W; xx++) {
            float *tr = t + ((int64_t)y * W + xx) * C;
            const float *wr = pwn + ((int64_t)(y % ws) * ws + xx % ws) * C;
            for (int c = 0; c < C; c++) tr[c] += wr[c];
        }
    dump_nhwc(ctx, "trunk.pos_embed", t, H, W, C);
    s2_ref_add(x, x, t, (int64_t)H * W * C);
    s2_arena_release(ctx->scratch, mk);
    return 0;
}

/* ================================ one block ================================ */

/* One block's shapes, so the helpers below take few arguments. */
typedef struct blk_dims {
    int H, W, C, Ho, Wo, Co, ws, qs, nh;
    int nWh, nWw, sh, sw; /* window grid; side of one window (H, W when global) */
    bool pool;
} blk_dims;

/* win [nW, ws, ws, C] = zero-padded windows of xn [H, W, C].
 * ref: sam2/modeling/backbones/utils.py window_partition */
static void window_partition(float *win, const float *xn, const blk_dims *k) {
    int ws = k->ws, Hp = k->nWh * ws, Wp = k->nWw * ws;
#pragma omp parallel for schedule(static)
    for (int y = 0; y < Hp; y++) // every padded row: copies, or zeros outside the image
        for (int x = 0; x < Wp; x++) {
            int64_t w = (int64_t)(y / ws) * k->nWw + x / ws;
            int64_t t = w * ws * ws + (int64_t)(y % ws) * ws + x % ws;
            if (y < k->H && x < k->W)
                memcpy(win + t * k->C, xn + ((int64_t)y * k->W + x) * k->C, sizeof(float) * k->C);
            else
                memset(win + t * k->C, 0, sizeof(float) * k->C);
        }
}

/* y [Ho, Wo, Co] = sc + unpartition(a [nW, ws2, ws2, Co]) (padding dropped); y may be sc.
 * ref: sam2/modeling/backbones/utils.py window_unpartition + MultiScaleBlock residual */
static void window_unpartition_add(float *y, const float *sc, const float *a, const blk_dims *k) {
    int ws2 = k->pool ? k->ws / k->qs : k->ws;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < k->Ho; r++)
        for (int c = 0; c < k->Wo; c++) {
            int64_t w = (int64_t)(r / ws2) * k->nWw + c / ws2;
            int64_t t = w * ws2 * ws2 + (int64_t)(r % ws2) * ws2 + c % ws2;
            int64_t o = ((int64_t)r * k->Wo + c) * k->Co;
            for (int j = 0; j < k->Co; j++) y[o + j] = sc[o + j] + a[t * k->Co + j];
        }
}

/* a [nW*Tq, Co] = proj(sdpa(pool(q), k, v)) on the windows win [nW*T, C].
 * ref: sam2/modeling/backbones/hieradet.py MultiScaleAttention.forward */
static int attention(s2_ctx *ctx, const sam2c_model *m, int i, const blk_dims *k,
                     const float *win, float *a, int64_t nW, int64_t T, int64_t Tq) {
    int Co = k->Co;
    float *qkv = scratch(ctx, nW * T * 3 * Co); // (nW, T, 3, nh, d)
    float *o = scratch(ctx, nW * Tq * Co);      // (nW, Tq, nh, d)
    if (!qkv || !o) return SAM2C_ERR_NOMEM;
    s2_op_linear(ctx, qkv, win, s2_w(m, "image_encoder.trunk.blocks.%d.attn.qkv.weight", i),
                 s2_w(m, "image_encoder.trunk.blocks.%d.attn.qkv.bias", i), nW * T, k->C, 3 * Co);
    const float *q = qkv;
    int64_t q_ld = 3 * (int64_t)Co;
    if (k->pool) { // q (nW, sh, sw, Co) of qkv rows -> max-pool -> (nW, sh/qs, sw/qs, Co)
        float *qp = scratch(ctx, nW * Tq * Co);
        if (!qp) return SAM2C_ERR_NOMEM;
        s2_ref_maxpool_nhwc_ld(qp, qkv, 3 * (int64_t)Co, (int)nW, k->sh, k->sw, Co, k->qs);
        q = qp, q_ld = Co;
    }
    s2_op_attention(ctx, o, Co, q, q_ld, qkv + Co, 3 * Co, qkv + 2 * Co, 3 * Co, (int)nW,
                    k->nh, Tq, T, Co / k->nh);
    s2_op_linear(ctx, a, o, s2_w(m, "image_encoder.trunk.blocks.%d.attn.proj.weight", i),
                 s2_w(m, "image_encoder.trunk.blocks.%d.attn.proj.bias", i), nW * Tq, Co, Co);
    return 0;
}

/* y += mlp(norm2(y)) on y [Ho*Wo, Co].
 * ref: sam2/modeling/backbones/hieradet.py MultiScaleBlock.forward (MLP branch),
 *      sam2/modeling/sam2_utils.py MLP (Linear, GELU, Linear) */
static int mlp(s2_ctx *ctx, const sam2c_model *m, int i, const s2_hiera_block *b, float *y,
               int64_t N) {
    int Co = b->dim_out, Hd = b->mlp_hidden;
    float *xn = scratch(ctx, N * Co), *o = scratch(ctx, N * Co);
    if (!xn || !o) return SAM2C_ERR_NOMEM;
    s2_op_layernorm(ctx, xn, y, s2_w(m, "image_encoder.trunk.blocks.%d.norm2.weight", i),
                    s2_w(m, "image_encoder.trunk.blocks.%d.norm2.bias", i), N, Co, LN_EPS);
    s2_op_mlp(ctx, o, xn, s2_w(m, "image_encoder.trunk.blocks.%d.mlp.layers.0.weight", i),
              s2_w(m, "image_encoder.trunk.blocks.%d.mlp.layers.0.bias", i),
              s2_w(m, "image_encoder.trunk.blocks.%d.mlp.layers.1.weight", i),
              s2_w(m, "image_encoder.trunk.blocks.%d.mlp.layers.1.bias", i), N, Co, Hd, Co, S2_ACT_GELU);
    s2_ref_add(y, y, o, N * Co);
    return 0;
}

/* Shapes of block i entering at H x W. */
static blk_dims block_dims(const s2_hiera_geom *g, int i, int H, int W) {
    const s2_hiera_block *b = &g->blk[i];
    blk_dims k = {H, W, b->dim, g->bh[i], g->bw[i], b->dim_out, b->window_size, g->qs,
                  b->num_heads, 1, 1, H, W, b->q_pool};
    if (k.ws > 0) k.nWh = cdiv(H, k.ws), k.nWw = cdiv(W, k.ws), k.sh = k.sw = k.ws;
    return k;
}

/* y [Ho, Wo, Co] = block_i(x [H, W, C]); y may be x when the shapes agree.
 * ref: sam2/modeling/backbones/hieradet.py MultiScaleBlock.forward */
static int hiera_block(s2_ctx *ctx, const sam2c_model *m, const s2_hiera_geom *g, int i,
                       const float *x, int H, int W, float *y) {
    const s2_hiera_block *b = &g->blk[i];
    blk_dims k = block_dims(g, i, H, W);
    int64_t N = (int64_t)H * W, No = (int64_t)k.Ho * k.Wo;
    int64_t nW = (int64_t)k.nWh * k.nWw, T = (int64_t)k.sh * k.sw;
    int64_t Tq = k.pool ? (int64_t)(k.sh / k.qs) * (k.sw / k.qs) : T;
    s2_arena_mark mk = s2_arena_get_mark(ctx->scratch);
    float *xn = scratch(ctx, N * k.C), *a = scratch(ctx, nW * Tq * k.Co); // (N, C), (nW*Tq, Co)
    if (!xn || !a) return SAM2C_ERR_NOMEM;
    s2_op_layernorm(ctx, xn, x, s2_w(m, "image_encoder.trunk.blocks.%d.norm1.weight", i),
                     s2_w(m, "image_encoder.trunk.blocks.%d.norm1.bias", i), N, k.C, LN_EPS);
    const float *sc = x; // shortcut (No, Co)
    if (k.C != k.Co) {   // shortcut = pool(proj(norm1(x)))
        float *t = scratch(ctx, N * k.Co), *tp = k.pool ? scratch(ctx, No * k.Co) : t;
        if (!t || !tp) return SAM2C_ERR_NOMEM;
        s2_op_linear(ctx, t, xn, s2_w(m, "image_encoder.trunk.blocks.%d.proj.weight", i),
                     s2_w(m, "image_encoder.trunk.blocks.%d.proj.bias", i), N, k.C, k.Co);
        if (k.pool) s2_ref_maxpool_nhwc(tp, t, 1, H, W, k.Co, k.qs);
        sc = tp;
    }
    const float *win = xn; // (nW*T, C)
    if (k.ws > 0) {
        float *wp = scratch(ctx, nW * T * k.C);
        if (!wp) return SAM2C_ERR_NOMEM;
        window_partition(wp, xn, &k);
        win = wp;
    }
    S2_CHECK(attention(ctx, m, i, &k, win, a, nW, T, Tq));
    if (k.ws > 0)
        window_unpartition_add(y, sc, a, &k);
    else
        s2_ref_add(y, sc, a, No * k.Co);
    s2_arena_release(ctx->scratch, mk);
    mk = s2_arena_get_mark(ctx->scratch);
    int rc = mlp(ctx, m, i, b, y, No);
    s2_arena_release(ctx->scratch, mk);
    return rc;
}

/* ================================ trunk ================================ */

/* Floats one block i takes from the scratch arena at its peak (attention, then MLP),
 * entering at H x W; mirrors hiera_block / attention / mlp below. */
static int64_t block_scratch(const s2_hiera_geom *g, int i, int H, int W) {
    blk_dims k = block_dims(g, i, H, W);
    int64_t N = (int64_t)H * W, No = (int64_t)k.Ho * k.Wo, nW = (int64_t)k.nWh * k.nWw;
    int64_t T = (int64_t)k.sh * k.sw, Tq = k.pool ? (int64_t)(k.sh / k.qs) * (k.sw / k.qs) : T;
    int64_t att = N * k.C + nW * Tq * k.Co + (k.C != k.Co ? N * k.Co + No * k.Co : 0) +
                  (k.ws > 0 ? nW * T * k.C : 0) + nW * T * 3 * k.Co + 2 * nW * Tq * k.Co;
    int64_t mlp = No * (2 * k.Co + g->blk[i].mlp_hidden);
    return S2_MAX(att, mlp) + 16 * 64; // + alignment of each piece
}

int64_t s2_hiera_scratch_floats(const s2_config *c, const s2_hiera_geom *g) {
    int H = g->h0, W = g->w0, stage = 0;
    int64_t keep = (int64_t)H * W * c->hiera.embed_dim, peak = 3 * keep; // x, pos-embed temporaries
    for (int i = 0; i < g->n_blocks; i++) {
        const s2_hiera_block *b = &g->blk[i];
        bool starts_stage = stage > 0 && i - 1 == g->stage_end[stage - 1];
        if (b->dim != b->dim_out || b->q_pool || starts_stage) keep += (int64_t)g->bh[i] * g->bw[i] * b->dim_out;
        peak = S2_MAX(peak, keep + block_scratch(g, i, H, W));
        H = g->bh[i], W = g->bw[i];
        if (i == g->stage_end[stage]) stage++;
    }
    return S2_MAX(peak, keep);
}



/* ref: sam2/modeling/backbones/hieradet.py Hiera.forward */
int s2_hiera_forward(s2_ctx *ctx, const sam2c_model *m, const s2_hiera_geom *g,
                     const float *img, float *stage_out[4]) {
    if (!ctx || !ctx->scratch || !m || !g || !img)
        return s2_err(SAM2C_ERR_ARG, "hiera: missing context, model or image");
    int H = g->h0, W = g->w0, C = m->cfg.hiera.embed_dim, stage = 0;
    float *x = scratch(ctx, (int64_t)H * W * C); // (H, W, C)
    if (!x) return SAM2C_ERR_NOMEM;
    S2_CHECK(patch_embed(ctx, m, g, img, x));
    S2_CHECK(add_pos_embed(ctx, m, g, x));
    for (int i = 0; i < g->n_blocks; i++) {
        const s2_hiera_block *b = &g->blk[i];
        // in place unless the shape changes or x is the previous stage's output
        bool starts_stage = stage > 0 && i - 1 == g->stage_end[stage - 1];
        bool fresh = b->dim != b->dim_out || b->q_pool || starts_stage;
        float *y = fresh ? scratch(ctx, (int64_t)g->bh[i] * g->bw[i] * b->dim_out) : x;
        if (!y) return SAM2C_ERR_NOMEM;
        S2_CHECK(hiera_block(ctx, m, g, i, x, H, W, y));
        char name[32];
        snprintf(name, sizeof name, "trunk.block.%d", i);
        dump_nhwc(ctx, name, y, g->bh[i], g->bw[i], b->dim_out);
        x = y, H = g->bh[i], W = g->bw[i];
        if (i == g->stage_end[stage]) stage_out[stage++] = y;
    }
    return 0;
}
