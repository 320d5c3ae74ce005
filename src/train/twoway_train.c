/* Two-way transformer and MLP with saved activations, and their backward passes.
 * Mirrors src/model/two_way_transformer.c step by step (same kernels), writing every
 * intermediate to the tape instead of updating in place.
 * Letters: B, Nt, HW, C, Ci (see heads_train.h).
 * ref: sam2/modeling/sam/transformer.py, sam2/modeling/sam2_utils.py MLP */
#include "train/heads_train.h"
#include "train/grad_ops.h"

#include <stdio.h>
#include <string.h>

#define LN_EPS 1e-5f

/* Zeroed scratch floats (gradient temporaries). */
static float *zeros(s2_tctx *t, int64_t n) {
    float *p = s2_scratch_f32(t->c, n);
    memset(p, 0, (size_t)n * sizeof(float));
    return p;
}

/* y = a + b into a new tape buffer; b is (n_b) floats repeated over the B items when
 * shared (the key PE), else as long as a. */
static float *tape_add(s2_tctx *t, const float *a, const float *b, int B, int64_t n_b,
                       bool shared) {
    float *y = s2_tape_f32(t, B * n_b);
    for (int i = 0; i < B; i++)
        s2_ref_add(y + i * n_b, a + i * n_b, b + (shared ? 0 : i * n_b), n_b);
    return y;
}

/* dst += src over n floats. */
static void acc(float *dst, const float *src, int64_t n) { s2_ref_add(dst, dst, src, n); }

// ref: sam2/modeling/sam2_utils.py MLP.forward
int s2_mlp_forward_train(s2_tctx *t, const char *prefix, int n_layers, bool sigmoid,
                         const float *x, int64_t rows, s2_mlp_tape *tp) {
    if (n_layers < 1 || n_layers > S2_MLP_MAX_LAYERS)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "%s: %d MLP layers", prefix, n_layers);
    *tp = (s2_mlp_tape){.n_layers = n_layers, .sigmoid = sigmoid, .rows = rows, .x = x};
    snprintf(tp->prefix, sizeof tp->prefix, "%s", prefix);
    const float *cur = x;
    for (int i = 0; i < n_layers; i++) {
        const s2_tensor *wt = s2_wt(t->m, "%s.layers.%d.weight", prefix, i); // (out, in)
        int64_t K = wt->shape[1], N = wt->shape[0];
        tp->h[i] = s2_tape_f32(t, rows * N);
        s2_op_linear(t->c, tp->h[i], cur, (const float *)wt->data,
                     s2_w(t->m, "%s.layers.%d.bias", prefix, i), rows, K, N);
        if (i < n_layers - 1) s2_ref_relu(tp->h[i], rows * N);
        else if (sigmoid) s2_ref_sigmoid(tp->h[i], rows * N);
        cur = tp->h[i];
    }
    return SAM2C_OK;
}

// ref: MLP.forward (autograd)
void s2_mlp_backward(s2_tctx *t, const s2_mlp_tape *tp, const float *dy, float *dx) {
    s2_arena_mark mark = s2_arena_get_mark(t->c->scratch);
    const s2_tensor *wl = s2_wt(t->m, "%s.layers.%d.weight", tp->prefix, tp->n_layers - 1);
    int64_t n_out = tp->rows * wl->shape[0];
    float *d = s2_scratch_f32(t->c, n_out);
    memcpy(d, dy, (size_t)n_out * sizeof(float));
    for (int i = tp->n_layers - 1; i >= 0; i--) {
        const s2_tensor *wt = s2_wt(t->m, "%s.layers.%d.weight", tp->prefix, i);
        int64_t K = wt->shape[1], N = wt->shape[0];
        if (i == tp->n_layers - 1 && tp->sigmoid) s2_sigmoid_backward(tp->h[i], d, tp->rows * N);
        if (i < tp->n_layers - 1) s2_relu_backward(tp->h[i], d, tp->rows * N);
        const float *in = i ? tp->h[i - 1] : tp->x;
        float *dprev = i ? zeros(t, tp->rows * K) : dx;
        s2_linear_backward(t->c, in, (const float *)wt->data, d, dprev,
                           s2_grad(t->p, "%s.layers.%d.weight", tp->prefix, i),
                           s2_grad(t->p, "%s.layers.%d.bias", tp->prefix, i), tp->rows, K, N);
        d = dprev;
    }
    s2_arena_release(t->c->scratch, mark);
}

// ref: sam2/modeling/sam/transformer.py Attention.forward
/* q_in (B,Nq,C), k_in / v_in (B,Nk,C) -> out (B,Nq,C); projections saved on the tape. */
static int attn_forward(s2_tctx *t, const char *prefix, const float *q_in, const float *k_in,
                        const float *v_in, int B, int64_t Nq, int64_t Nk, float *out,
                        s2_attn_tape *a) {
    const s2_tensor *wq = s2_wt(t->m, "%s.q_proj.weight", prefix); // (Ci, C)
    int64_t Ci = wq->shape[0], C = wq->shape[1];
    int heads = t->m->cfg.dec_num_heads;
    if (heads < 1 || Ci % heads != 0)
        return s2_err(SAM2C_ERR_FORMAT, "%s: %d heads do not divide width %lld", prefix, heads,
                      (long long)Ci);
    *a = (s2_attn_tape){.B = B, .C = (int)C, .Ci = (int)Ci, .heads = heads, .Nq = Nq, .Nk = Nk,
                        .q_in = q_in, .k_in = k_in, .v_in = v_in};
    snprintf(a->prefix, sizeof a->prefix, "%s", prefix);
    a->q = s2_tape_f32(t, B * Nq * Ci);
    a->k = s2_tape_f32(t, B * Nk * Ci);
    a->v = s2_tape_f32(t, B * Nk * Ci);
    a->o = s2_tape_f32(t, B * Nq * Ci);
    const sam2c_model *m = t->m;
    s2_op_linear(t->c, a->q, q_in, wq->data, s2_w(m, "%s.q_proj.bias", prefix), B * Nq, C, Ci);
    s2_op_linear(t->c, a->k, k_in, s2_w(m, "%s.k_proj.weight", prefix),
                 s2_w(m, "%s.k_proj.bias", prefix), B * Nk, C, Ci);
    s2_op_linear(t->c, a->v, v_in, s2_w(m, "%s.v_proj.weight", prefix),
                 s2_w(m, "%s.v_proj.bias", prefix), B * Nk, C, Ci);
    s2_op_attention(t->c, a->o, Ci, a->q, Ci, a->k, Ci, a->v, Ci, B, heads, Nq, Nk,
                    (int)(Ci / heads));
    s2_op_linear(t->c, out, a->o, s2_w(m, "%s.out_proj.weight", prefix),
                 s2_w(m, "%s.out_proj.bias", prefix), B * Nq, Ci, C);
    return SAM2C_OK;
}

/* One projection's backward: x (rows, C) -> y (rows, Ci) with the named weights. */
static void proj_backward(s2_tctx *t, const char *prefix, const char *proj, const float *x,
                          const float *dy, float *dx, int64_t rows, int64_t K, int64_t N) {
    s2_linear_backward(t->c, x, s2_w(t->m, "%s.%s.weight", prefix, proj), dy, dx,
                       s2_grad(t->p, "%s.%s.weight", prefix, proj),
                       s2_grad(t->p, "%s.%s.bias", prefix, proj), rows, K, N);
}

// ref: Attention.forward (autograd)
/* dout (B,Nq,C) -> dq_in (B,Nq,C) +=, dk_in / dv_in (B,Nk,C) += (may alias). */
static void attn_backward(s2_tctx *t, const s2_attn_tape *a, const float *dout, float *dq_in,
                          float *dk_in, float *dv_in) {
    s2_arena_mark mark = s2_arena_get_mark(t->c->scratch);
    int64_t B = a->B, Ci = a->Ci, C = a->C;
    float *d_o = zeros(t, B * a->Nq * Ci); // (B,Nq,Ci)
    float *dq = zeros(t, B * a->Nq * Ci);
    float *dk = zeros(t, B * a->Nk * Ci);
    float *dv = zeros(t, B * a->Nk * Ci);
    proj_backward(t, a->prefix, "out_proj", a->o, dout, d_o, B * a->Nq, Ci, C);
    s2_attention_backward(t->c, a->q, Ci, a->k, Ci, a->v, Ci, d_o, Ci, dq, dk, dv, a->B,
                          a->heads, a->Nq, a->Nk, (int)(Ci / a->heads));
    proj_backward(t, a->prefix, "q_proj", a->q_in, dq, dq_in, B * a->Nq, C, Ci);
    proj_backward(t, a->prefix, "k_proj", a->k_in, dk, dk_in, B * a->Nk, C, Ci);
    proj_backward(t, a->prefix, "v_proj", a->v_in, dv, dv_in, B * a->Nk, C, Ci);
    s2_arena_release(t->c->scratch, mark);
}

/* y = LayerNorm(x) into a new tape buffer with the named weights. x (rows, C). */
static float *tape_norm(s2_tctx *t, const char *name, const float *x, int64_t rows, int C) {
    float *y = s2_tape_f32(t, rows * C);
    s2_ref_layernorm(y, x, s2_w(t->m, "%s.weight", name), s2_w(t->m, "%s.bias", name), rows, C,
                     LN_EPS);
    return y;
}

/* dx += LayerNorm backward from its input x and dy, with the named weights. */
static void norm_backward(s2_tctx *t, const char *name, const float *x, const float *dy,
                          float *dx, int64_t rows, int C) {
    s2_layernorm_backward(x, s2_w(t->m, "%s.weight", name), dy, dx,
                          s2_grad(t->p, "%s.weight", name), s2_grad(t->p, "%s.bias", name),
                          rows, C, LN_EPS);
}

// ref: sam2/modeling/sam/transformer.py TwoWayAttentionBlock.forward
static int block_forward(s2_tctx *t, int layer, const float *Q, const float *K,
                         const float *QP, const float *KP, int B, int Nt, int64_t HW,
                         s2_block_tape *bt) {
    int C = t->m->cfg.d_model;
    int64_t nq = (int64_t)Nt * C, nk = HW * C;
    char pre[128], name[160];
    snprintf(pre, sizeof pre, "sam_mask_decoder.transformer.layers.%d", layer);
    *bt = (s2_block_tape){.layer = layer, .Q = Q, .K = K};
    // Self attention block (layer 0: no PE, no residual)
    snprintf(name, sizeof name, "%s.self_attn", pre);
    bt->a1 = s2_tape_f32(t, B * nq);
    if (layer == 0) {
        S2_CHECK(attn_forward(t, name, Q, Q, Q, B, Nt, Nt, bt->a1, &bt->sa));
        bt->x1 = bt->a1;
    } else {
        bt->qq = tape_add(t, Q, QP, B, nq, false);
        S2_CHECK(attn_forward(t, name, bt->qq, bt->qq, Q, B, Nt, Nt, bt->a1, &bt->sa));
        bt->x1 = tape_add(t, Q, bt->a1, B, nq, false);
    }
    snprintf(name, sizeof name, "%s.norm1", pre);
    bt->q1 = tape_norm(t, name, bt->x1, (int64_t)B * Nt, C);
    // Cross attention, tokens to image
    bt->qq2 = tape_add(t, bt->q1, QP, B, nq, false);
    bt->kk = tape_add(t, K, KP, B, nk, true);
    bt->a2 = s2_tape_f32(t, B * nq);
    snprintf(name, sizeof name, "%s.cross_attn_token_to_image", pre);
    S2_CHECK(attn_forward(t, name, bt->qq2, bt->kk, K, B, Nt, HW, bt->a2, &bt->t2i));
    bt->x2 = tape_add(t, bt->q1, bt->a2, B, nq, false);
    snprintf(name, sizeof name, "%s.norm2", pre);
    bt->q2 = tape_norm(t, name, bt->x2, (int64_t)B * Nt, C);
    // MLP block
    snprintf(name, sizeof name, "%s.mlp", pre);
    S2_CHECK(s2_mlp_forward_train(t, name, 2, false, bt->q2, (int64_t)B * Nt, &bt->mlp));
    bt->x3 = tape_add(t, bt->q2, bt->mlp.h[1], B, nq, false);
    snprintf(name, sizeof name, "%s.norm3", pre);
    bt->q3 = tape_norm(t, name, bt->x3, (int64_t)B * Nt, C);
    // Cross attention, image to tokens
    bt->qq3 = tape_add(t, bt->q3, QP, B, nq, false);
    bt->a4 = s2_tape_f32(t, B * nk);
    snprintf(name, sizeof name, "%s.cross_attn_image_to_token", pre);
    S2_CHECK(attn_forward(t, name, bt->kk, bt->qq3, bt->q3, B, HW, Nt, bt->a4, &bt->i2t));
    bt->x4 = tape_add(t, K, bt->a4, B, nk, false);
    snprintf(name, sizeof name, "%s.norm4", pre);
    bt->k4 = tape_norm(t, name, bt->x4, (int64_t)B * HW, C);
    return SAM2C_OK;
}

// ref: TwoWayAttentionBlock.forward (autograd)
/* dq3 (B,Nt,C), dk4 (B,HW,C) -> dQ +=, dK +=, dQP += (the query PE). */
static void block_backward(s2_tctx *t, const s2_block_tape *bt, const float *dq3_in,
                           const float *dk4, float *dQ, float *dK, float *dQP, int B, int Nt,
                           int64_t HW) {
    int C = t->m->cfg.d_model;
    int64_t nq = (int64_t)Nt * C, nk = HW * C;
    char pre[128], name[160];
    snprintf(pre, sizeof pre, "sam_mask_decoder.transformer.layers.%d", bt->layer);
    s2_arena_mark mark = s2_arena_get_mark(t->c->scratch);
    float *dq3 = s2_scratch_f32(t->c, B * nq);
    memcpy(dq3, dq3_in, (size_t)(B * nq) * sizeof(float));
    // image to tokens: k4 = LN4(K + A4), A4 = attn(kk, qq3, q3)
    float *dx4 = zeros(t, B * nk), *dkk = zeros(t, B * nk), *dqq = zeros(t, B * nq);
    snprintf(name, sizeof name, "%s.norm4", pre);
    norm_backward(t, name, bt->x4, dk4, dx4, (int64_t)B * HW, C);
    acc(dK, dx4, B * nk);
    attn_backward(t, &bt->i2t, dx4, dkk, dqq, dq3);
    acc(dq3, dqq, B * nq);
    acc(dQP, dqq, B * nq);
    // MLP: q3 = LN3(q2 + mlp(q2))
    float *dq2 = zeros(t, B * nq);
    snprintf(name, sizeof name, "%s.norm3", pre);
    norm_backward(t, name, bt->x3, dq3, dq2, (int64_t)B * Nt, C);
    float *dx3 = s2_scratch_f32(t->c, B * nq);
    memcpy(dx3, dq2, (size_t)(B * nq) * sizeof(float));
    s2_mlp_backward(t, &bt->mlp, dx3, dq2);
    // tokens to image: q2 = LN2(q1 + attn(q1 + QP, kk, K))
    float *dq1 = zeros(t, B * nq);
    snprintf(name, sizeof name, "%s.norm2", pre);
    norm_backward(t, name, bt->x2, dq2, dq1, (int64_t)B * Nt, C);
    float *dx2 = s2_scratch_f32(t->c, B * nq);
    memcpy(dx2, dq1, (size_t)(B * nq) * sizeof(float));
    memset(dqq, 0, (size_t)(B * nq) * sizeof(float));
    attn_backward(t, &bt->t2i, dx2, dqq, dkk, dK);
    acc(dq1, dqq, B * nq);
    acc(dQP, dqq, B * nq);
    acc(dK, dkk, B * nk); // kk = K + KP (the key PE has no parameters)
    // self attention: q1 = LN1(x1)
    float *dx1 = zeros(t, B * nq);
    snprintf(name, sizeof name, "%s.norm1", pre);
    norm_backward(t, name, bt->x1, dq1, dx1, (int64_t)B * Nt, C);
    if (bt->layer == 0) {
        attn_backward(t, &bt->sa, dx1, dQ, dQ, dQ);
    } else {
        acc(dQ, dx1, B * nq);
        memset(dqq, 0, (size_t)(B * nq) * sizeof(float));
        attn_backward(t, &bt->sa, dx1, dqq, dqq, dQ);
        acc(dQ, dqq, B * nq);
        acc(dQP, dqq, B * nq);
    }
    s2_arena_release(t->c->scratch, mark);
}

// ref: sam2/modeling/sam/transformer.py TwoWayTransformer.forward
int s2_twoway_forward_train(s2_tctx *t, const float *tokens, const float *keys,
                            const float *kpe, int B, int Nt, int64_t HW, s2_twoway_tape *tp) {
    int C = t->m->cfg.d_model, depth = t->m->cfg.dec_depth;
    int64_t nq = (int64_t)Nt * C, nk = HW * C;
    *tp = (s2_twoway_tape){.B = B, .Nt = Nt, .C = C, .depth = depth, .HW = HW,
                           .tokens = tokens, .kpe = kpe};
    tp->blk = (s2_block_tape *)s2_tape_f32(t, (int64_t)(sizeof(s2_block_tape) * (size_t)depth / 4 + 1));
    const float *Q = tokens, *K = keys;
    for (int i = 0; i < depth; i++) {
        S2_CHECK(block_forward(t, i, Q, K, tokens, kpe, B, Nt, HW, &tp->blk[i]));
        Q = tp->blk[i].q3;
        K = tp->blk[i].k4;
    }
    // Final attention layer from the points to the image
    tp->qq = tape_add(t, Q, tokens, B, nq, false);
    tp->kk = tape_add(t, K, kpe, B, nk, true);
    tp->a = s2_tape_f32(t, B * nq);
    S2_CHECK(attn_forward(t, "sam_mask_decoder.transformer.final_attn_token_to_image", tp->qq,
                          tp->kk, K, B, Nt, HW, tp->a, &tp->fin));
    tp->x = tape_add(t, Q, tp->a, B, nq, false);
    tp->q_out = tape_norm(t, "sam_mask_decoder.transformer.norm_final_attn", tp->x,
                          (int64_t)B * Nt, C);
    tp->k_out = (float *)K;
    return SAM2C_OK;
}

// ref: TwoWayTransformer.forward (autograd)
void s2_twoway_backward(s2_tctx *t, const s2_twoway_tape *tp, const float *d_qout,
                        const float *d_kout, float *d_tokens, float *d_keys) {
    int B = tp->B, Nt = tp->Nt, C = tp->C;
    int64_t nq = (int64_t)Nt * C, nk = tp->HW * C;
    s2_arena_mark mark = s2_arena_get_mark(t->c->scratch);
    float *dQ = zeros(t, B * nq), *dK = s2_scratch_f32(t->c, B * nk);
    float *dQP = zeros(t, B * nq), *dqq = zeros(t, B * nq), *dkk = zeros(t, B * nk);
    memcpy(dK, d_kout, (size_t)(B * nk) * sizeof(float));
    norm_backward(t, "sam_mask_decoder.transformer.norm_final_attn", tp->x, d_qout, dQ,
                  (int64_t)B * Nt, C);
    float *dx = s2_scratch_f32(t->c, B * nq);
    memcpy(dx, dQ, (size_t)(B * nq) * sizeof(float));
    attn_backward(t, &tp->fin, dx, dqq, dkk, dK);
    acc(dQ, dqq, B * nq);
    acc(dQP, dqq, B * nq);
    acc(dK, dkk, B * nk);
    float *dQin = zeros(t, B * nq), *dKin = zeros(t, B * nk);
    for (int i = tp->depth - 1; i >= 0; i--) {
        memset(dQin, 0, (size_t)(B * nq) * sizeof(float));
        memset(dKin, 0, (size_t)(B * nk) * sizeof(float));
        block_backward(t, &tp->blk[i], dQ, dK, dQin, dKin, dQP, B, Nt, tp->HW);
        memcpy(dQ, dQin, (size_t)(B * nq) * sizeof(float));
        memcpy(dK, dKin, (size_t)(B * nk) * sizeof(float));
    }
    acc(d_tokens, dQ, B * nq);
    acc(d_tokens, dQP, B * nq);
    acc(d_keys, dK, B * nk);
    s2_arena_release(t->c->scratch, mark);
}
