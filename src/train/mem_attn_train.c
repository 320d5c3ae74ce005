/* Memory attention with saved activations and its backward pass, plus the RoPE kernels.
 * Mirrors src/model/memory_attention.c step by step (same kernels, same order): the
 * residual stream is written to a new tape buffer per branch instead of updated in
 * place. Dropout is the identity (eval), as the issue asks.
 * Letters: see mem_train.h (N, M, C, Cm, Ci, hd, P, FF).
 * ref: sam2/modeling/memory_attention.py, sam2/modeling/sam/transformer.py RoPEAttention,
 *      sam2/modeling/position_encoding.py */
#include "train/mem_train.h"
#include "train/grad_ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MA "memory_attention."
#define LN_EPS 1e-5f

/* Zeroed scratch floats (gradient temporaries). */
static float *zeros(s2_tctx *t, int64_t n) {
    float *p = s2_scratch_f32(t->c, n);
    memset(p, 0, (size_t)n * sizeof(float));
    return p;
}

/* ============================== RoPE ============================== */

// ref: sam2/modeling/position_encoding.py compute_axial_cis
/* The same float arithmetic as the inference table (memory_attention.c rope_build):
 * pairs [0, hd/4) rotate by x f_j, pairs [hd/4, hd/2) by y f_j, f_j = theta^(-4j/hd). */
int s2_rope_build(s2_ctx *c, s2_rope_tab *t, int hd, int H, int W, double theta) {
    if (hd <= 0 || hd % 4 != 0)
        return s2_err(SAM2C_ERR_SHAPE, "memory attention: head dim %d is not a multiple of 4 (RoPE)", hd);
    const int q4 = hd / 4;
    t->n_tok = (int64_t)H * W;
    t->n_pair = hd / 2;
    t->cos = s2_scratch_f32(c, t->n_tok * t->n_pair);
    t->sin = s2_scratch_f32(c, t->n_tok * t->n_pair);
    for (int64_t n = 0; n < t->n_tok; n++) {
        float tx = (float)(n % W), ty = (float)(n / W);
        for (int j = 0; j < t->n_pair; j++) {
            int jj = j < q4 ? j : j - q4;
            float f = 1.0f / powf((float)theta, (float)(4 * jj) / (float)hd);
            float a = (j < q4 ? tx : ty) * f;
            t->cos[n * t->n_pair + j] = cosf(a);
            t->sin[n * t->n_pair + j] = sinf(a);
        }
    }
    return SAM2C_OK;
}

// ref: sam2/modeling/position_encoding.py apply_rotary_enc (and its autograd: R^T)
void s2_rope_rotate(float *x, int64_t ld, int64_t n_rows, int heads, int hd,
                    const s2_rope_tab *t, bool inverse) {
    const float sg = inverse ? -1.0f : 1.0f;
    for (int64_t r = 0; r < n_rows; r++) {
        const float *cs = t->cos + (r % t->n_tok) * t->n_pair;
        const float *sn = t->sin + (r % t->n_tok) * t->n_pair;
        for (int h = 0; h < heads; h++) {
            float *p = x + r * ld + (int64_t)h * hd;
            for (int j = 0; j < t->n_pair; j++) {
                float a = p[2 * j], b = p[2 * j + 1], s = sg * sn[j];
                p[2 * j] = a * cs[j] - b * s;
                p[2 * j + 1] = a * s + b * cs[j];
            }
        }
    }
}

/* ========================== RoPE attention ========================== */

/* What one RoPEAttention call reads. */
typedef struct rope_call {
    const float *q_in, *k_in, *v_in; /* (Nq,C), (Nk,kv_dim), (Nk,kv_dim) */
    int64_t Nq, Nk;
    int C, kv_dim, n_excl;           /* trailing keys without rotation */
    bool k_repeat;
} rope_call;

// ref: sam2/modeling/sam/transformer.py RoPEAttention.forward
/* Projections, RoPE on q and on the first Nk - n_excl keys, SDPA, out_proj; out (Nq, C)
 * on the tape, activations in a. */
static int rope_attn_forward(s2_tctx *t, const char *pfx, const rope_call *rc,
                             const s2_rope_tab *tab, int heads, float *out,
                             s2_rope_attn_tape *a) {
    const sam2c_model *m = t->m;
    const s2_tensor *wq = s2_wt(m, "%s.q_proj.weight", pfx); // (Ci, C)
    const int Ci = (int)wq->shape[0];
    if (heads <= 0 || Ci % heads != 0)
        return s2_err(SAM2C_ERR_SHAPE, "%s: %d heads do not divide %d", pfx, heads, Ci);
    const int hd = Ci / heads;
    int64_t nk_rope = rc->Nk - rc->n_excl;
    if (hd / 2 != tab->n_pair || rc->Nq != tab->n_tok)
        return s2_err(SAM2C_ERR_SHAPE, "%s: query grid does not match the RoPE table", pfx);
    if (nk_rope < 0 || (nk_rope != rc->Nq && (!rc->k_repeat || nk_rope % rc->Nq != 0)))
        return s2_err(SAM2C_ERR_SHAPE, "%s: %lld rotated keys for %lld queries", pfx,
                      (long long)nk_rope, (long long)rc->Nq);
    *a = (s2_rope_attn_tape){.C = rc->C, .kv_dim = rc->kv_dim, .Ci = Ci, .heads = heads,
                             .Nq = rc->Nq, .Nk = rc->Nk, .nk_rope = nk_rope, .q_in = rc->q_in,
                             .k_in = rc->k_in, .v_in = rc->v_in};
    snprintf(a->pfx, sizeof a->pfx, "%s", pfx);
    a->q = s2_tape_f32(t, rc->Nq * Ci);
    a->k = s2_tape_f32(t, rc->Nk * Ci);
    a->v = s2_tape_f32(t, rc->Nk * Ci);
    a->o = s2_tape_f32(t, rc->Nq * Ci);
    s2_op_linear(t->c, a->q, rc->q_in, (const float *)wq->data, s2_w(m, "%s.q_proj.bias", pfx),
                 rc->Nq, rc->C, Ci);
    s2_op_linear(t->c, a->k, rc->k_in, s2_w(m, "%s.k_proj.weight", pfx),
                 s2_w(m, "%s.k_proj.bias", pfx), rc->Nk, rc->kv_dim, Ci);
    s2_op_linear(t->c, a->v, rc->v_in, s2_w(m, "%s.v_proj.weight", pfx),
                 s2_w(m, "%s.v_proj.bias", pfx), rc->Nk, rc->kv_dim, Ci);
    s2_rope_rotate(a->q, Ci, rc->Nq, heads, hd, tab, false);
    s2_rope_rotate(a->k, Ci, nk_rope, heads, hd, tab, false);
    s2_op_attention(t->c, a->o, Ci, a->q, Ci, a->k, Ci, a->v, Ci, 1, heads, rc->Nq, rc->Nk, hd);
    s2_op_linear(t->c, out, a->o, s2_w(m, "%s.out_proj.weight", pfx),
                 s2_w(m, "%s.out_proj.bias", pfx), rc->Nq, Ci, rc->C);
    return SAM2C_OK;
}

// ref: RoPEAttention.forward (autograd): d_out (Nq, C) -> d_q_in, d_k_in, d_v_in +=
static void rope_attn_backward(s2_tctx *t, const s2_rope_attn_tape *a, const s2_rope_tab *tab,
                               const float *d_out, float *d_q_in, float *d_k_in, float *d_v_in) {
    const sam2c_model *m = t->m;
    const char *p = a->pfx;
    const int Ci = a->Ci, hd = Ci / a->heads;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    float *d_o = zeros(t, a->Nq * Ci), *d_q = zeros(t, a->Nq * Ci);
    float *d_k = zeros(t, a->Nk * Ci), *d_v = zeros(t, a->Nk * Ci);
    s2_linear_backward(t->c, a->o, s2_w(m, "%s.out_proj.weight", p), d_out, d_o,
                       s2_grad(t->p, "%s.out_proj.weight", p), s2_grad(t->p, "%s.out_proj.bias", p),
                       a->Nq, Ci, a->C);
    s2_attention_backward(t->c, a->q, Ci, a->k, Ci, a->v, Ci, d_o, Ci, d_q, d_k, d_v, 1, a->heads,
                          a->Nq, a->Nk, hd);
    s2_rope_rotate(d_q, Ci, a->Nq, a->heads, hd, tab, true);
    s2_rope_rotate(d_k, Ci, a->nk_rope, a->heads, hd, tab, true);
    s2_linear_backward(t->c, a->q_in, s2_w(m, "%s.q_proj.weight", p), d_q, d_q_in,
                       s2_grad(t->p, "%s.q_proj.weight", p), s2_grad(t->p, "%s.q_proj.bias", p),
                       a->Nq, a->C, Ci);
    s2_linear_backward(t->c, a->k_in, s2_w(m, "%s.k_proj.weight", p), d_k, d_k_in,
                       s2_grad(t->p, "%s.k_proj.weight", p), s2_grad(t->p, "%s.k_proj.bias", p),
                       a->Nk, a->kv_dim, Ci);
    s2_linear_backward(t->c, a->v_in, s2_w(m, "%s.v_proj.weight", p), d_v, d_v_in,
                       s2_grad(t->p, "%s.v_proj.weight", p), s2_grad(t->p, "%s.v_proj.bias", p),
                       a->Nk, a->kv_dim, Ci);
    s2_arena_release(t->c->scratch, mk);
}

/* ============================ the layers ============================ */

/* y = x + p into a new tape buffer, or x itself when p is NULL (no copy). */
static float *tape_add_opt(s2_tctx *t, float *x, const float *p, int64_t n) {
    if (!p) return x;
    float *y = s2_tape_f32(t, n);
    s2_ref_add(y, x, p, n);
    return y;
}

/* LayerNorm <norm> of layer li (or the final norm when li < 0) into a new tape buffer. */
static float *tape_norm(s2_tctx *t, int li, const char *norm, const float *x, int64_t N, int C) {
    float *y = s2_tape_f32(t, N * C);
    if (li < 0) s2_ref_layernorm(y, x, s2_w(t->m, MA "norm.weight"), s2_w(t->m, MA "norm.bias"), N, C, LN_EPS);
    else s2_ref_layernorm(y, x, s2_w(t->m, MA "layers.%d.%s.weight", li, norm),
                          s2_w(t->m, MA "layers.%d.%s.bias", li, norm), N, C, LN_EPS);
    return y;
}

/* y = x + a into a new tape buffer (the residual adds of the inference code). */
static float *tape_residual(s2_tctx *t, const float *x, const float *a, int64_t n) {
    float *y = s2_tape_f32(t, n);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] + a[i];
    return y;
}

// ref: sam2/modeling/memory_attention.py MemoryAttentionLayer.forward
/* x0 (N, C) -> the layer's output, returned (on the tape). */
static int ma_layer_forward(s2_tctx *t, int li, float *x0, const s2_memattn_in *in,
                            s2_memattn_tape *tp, float **out) {
    const s2_config *cfg = &t->m->cfg;
    const int64_t N = tp->N, C = tp->C;
    s2_ma_layer_tape *L = &tp->lay[li];
    char pfx[96];
    float *a = s2_tape_f32(t, N * C); // (N, C) branch output, reused (not needed backward)
    L->x0 = x0;
    // ref: MemoryAttentionLayer._forward_sa
    L->n1 = tape_norm(t, li, "norm1", x0, N, (int)C);
    L->qk1 = tape_add_opt(t, L->n1, cfg->ma_pos_enc_at_attn ? in->curr_pos : NULL, N * C);
    snprintf(pfx, sizeof pfx, MA "layers.%d.self_attn", li);
    rope_call sa = {L->qk1, L->qk1, L->n1, N, N, (int)C, (int)C, 0, false};
    S2_CHECK(rope_attn_forward(t, pfx, &sa, &tp->tab, cfg->ma_num_heads, a, &L->sa));
    L->x1 = tape_residual(t, x0, a, N * C);
    // ref: MemoryAttentionLayer._forward_ca
    L->n2 = tape_norm(t, li, "norm2", L->x1, N, (int)C);
    L->q2 = tape_add_opt(t, L->n2, cfg->ma_pos_enc_at_cross_attn_queries ? in->curr_pos : NULL, N * C);
    snprintf(pfx, sizeof pfx, MA "layers.%d.cross_attn_image", li);
    rope_call ca = {L->q2, tp->kin, in->memory, N, tp->M, (int)C, tp->Cm, in->num_obj_ptr_tokens,
                    cfg->ma_rope_k_repeat};
    S2_CHECK(rope_attn_forward(t, pfx, &ca, &tp->tab, cfg->ma_num_heads, a, &L->ca));
    L->x2 = tape_residual(t, L->x1, a, N * C);
    // MLP: linear2(relu(linear1(norm3(tgt))))
    L->n3 = tape_norm(t, li, "norm3", L->x2, N, (int)C);
    L->h = s2_tape_f32(t, N * tp->FF);
    s2_op_linear(t->c, L->h, L->n3, s2_w(t->m, MA "layers.%d.linear1.weight", li),
                 s2_w(t->m, MA "layers.%d.linear1.bias", li), N, C, tp->FF);
    s2_ref_relu(L->h, N * tp->FF);
    s2_op_linear(t->c, a, L->h, s2_w(t->m, MA "layers.%d.linear2.weight", li),
                 s2_w(t->m, MA "layers.%d.linear2.bias", li), N, tp->FF, C);
    *out = tape_residual(t, L->x2, a, N * C);
    return SAM2C_OK;
}

/* LayerNorm backward of layer li's <norm>: dy -> dx +=, its weight gradients. */
static void norm_backward(s2_tctx *t, int li, const char *norm, const float *x, const float *dy,
                          float *dx, int64_t N, int C) {
    s2_layernorm_backward(x, s2_w(t->m, MA "layers.%d.%s.weight", li, norm), dy, dx,
                          s2_grad(t->p, MA "layers.%d.%s.weight", li, norm),
                          s2_grad(t->p, MA "layers.%d.%s.bias", li, norm), N, C, LN_EPS);
}

// ref: MemoryAttentionLayer.forward (autograd): d_x (N, C) holds d(layer output) on
// entry and d(layer input) on exit; d_kin, d_mem (M, Cm) +=.
static void ma_layer_backward(s2_tctx *t, const s2_memattn_tape *tp, int li, float *d_x,
                              float *d_kin, float *d_mem) {
    const s2_ma_layer_tape *L = &tp->lay[li];
    const int64_t N = tp->N;
    const int C = tp->C, FF = tp->FF;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    float *d_h = zeros(t, N * FF), *d_n = zeros(t, N * C);
    s2_linear_backward(t->c, L->h, s2_w(t->m, MA "layers.%d.linear2.weight", li), d_x, d_h,
                       s2_grad(t->p, MA "layers.%d.linear2.weight", li),
                       s2_grad(t->p, MA "layers.%d.linear2.bias", li), N, FF, C);
    s2_relu_backward(L->h, d_h, N * FF);
    s2_linear_backward(t->c, L->n3, s2_w(t->m, MA "layers.%d.linear1.weight", li), d_h, d_n,
                       s2_grad(t->p, MA "layers.%d.linear1.weight", li),
                       s2_grad(t->p, MA "layers.%d.linear1.bias", li), N, C, FF);
    norm_backward(t, li, "norm3", L->x2, d_n, d_x, N, C);
    memset(d_n, 0, sizeof(float) * (size_t)(N * C)); // d(q2) = d(n2): the PE add is linear
    rope_attn_backward(t, &L->ca, &tp->tab, d_x, d_n, d_kin, d_mem);
    norm_backward(t, li, "norm2", L->x1, d_n, d_x, N, C);
    memset(d_n, 0, sizeof(float) * (size_t)(N * C)); // d(n1) = d(qk1) + d(v input)
    rope_attn_backward(t, &L->sa, &tp->tab, d_x, d_n, d_n, d_n);
    norm_backward(t, li, "norm1", L->x0, d_n, d_x, N, C);
    s2_arena_release(t->c->scratch, mk);
}

/* ============================ the module ============================ */

/* Input checks with one-line messages; fills the tape's sizes. */
static int ma_check(const sam2c_model *m, const s2_memattn_in *in, s2_memattn_tape *tp) {
    if (!in || !in->curr || !in->curr_pos || !in->memory || !in->memory_pos || in->H <= 0 ||
        in->W <= 0 || in->n_mem <= 0)
        return s2_err(SAM2C_ERR_ARG, "memory attention: missing input");
    if (in->num_obj_ptr_tokens < 0 || in->num_obj_ptr_tokens > in->n_mem)
        return s2_err(SAM2C_ERR_ARG, "memory attention: %d pointer tokens among %lld",
                      in->num_obj_ptr_tokens, (long long)in->n_mem);
    if (m->cfg.ma_num_layers <= 0) return s2_err(SAM2C_ERR_FORMAT, "memory attention: no layers");
    tp->C = (int)s2_wt(m, MA "norm.weight")->shape[0];
    tp->Cm = (int)s2_wt(m, MA "layers.0.cross_attn_image.k_proj.weight")->shape[1];
    tp->FF = (int)s2_wt(m, MA "layers.0.linear1.weight")->shape[0];
    tp->L = m->cfg.ma_num_layers;
    tp->H = in->H, tp->W = in->W;
    tp->N = (int64_t)in->H * in->W, tp->M = in->n_mem;
    return SAM2C_OK;
}

// ref: sam2/modeling/memory_attention.py MemoryAttention.forward
int s2_memattn_forward_train(s2_tctx *t, const s2_memattn_in *in, s2_memattn_tape *tp) {
    *tp = (s2_memattn_tape){0};
    S2_CHECK(ma_check(t->m, in, tp));
    const s2_config *cfg = &t->m->cfg;
    const int64_t N = tp->N, C = tp->C, M = tp->M;
    const int heads = cfg->ma_num_heads;
    const int Ci = (int)s2_wt(t->m, MA "layers.0.self_attn.q_proj.weight")->shape[0];
    if (heads <= 0 || Ci % heads != 0)
        return s2_err(SAM2C_ERR_SHAPE, "memory attention: %d heads do not divide %d", heads, Ci);
    S2_CHECK(s2_rope_build(&t->tape, &tp->tab, Ci / heads, in->H, in->W, cfg->ma_rope_theta));
    tp->memory = in->memory;
    tp->kin = tape_add_opt(t, (float *)in->memory,
                           cfg->ma_pos_enc_at_cross_attn_keys ? in->memory_pos : NULL, M * tp->Cm);
    tp->lay = (s2_ma_layer_tape *)s2_tape_f32(t, (int64_t)(sizeof(s2_ma_layer_tape) * (size_t)tp->L / 4 + 1));
    float *x = s2_tape_f32(t, N * C); // pos_enc_at_input: curr + 0.1 * curr_pos
    for (int64_t i = 0; i < N * C; i++)
        x[i] = cfg->ma_pos_enc_at_input ? in->curr[i] + 0.1f * in->curr_pos[i] : in->curr[i];
    for (int li = 0; li < tp->L; li++) S2_CHECK(ma_layer_forward(t, li, x, in, tp, &x));
    tp->xl = x;
    tp->out = tape_norm(t, -1, NULL, x, N, (int)C);
    return SAM2C_OK;
}

// ref: MemoryAttention.forward (autograd)
void s2_memattn_backward(s2_tctx *t, const s2_memattn_tape *tp, const float *d_out,
                         float *d_curr, float *d_memory, float *d_memory_pos) {
    const s2_config *cfg = &t->m->cfg;
    const int64_t N = tp->N, C = tp->C, MC = tp->M * tp->Cm;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    float *d_x = zeros(t, N * C), *d_kin = zeros(t, MC), *d_mem = zeros(t, MC);
    s2_layernorm_backward(tp->xl, s2_w(t->m, MA "norm.weight"), d_out, d_x,
                          s2_grad(t->p, MA "norm.weight"), s2_grad(t->p, MA "norm.bias"), N, C,
                          LN_EPS);
    for (int li = tp->L - 1; li >= 0; li--) ma_layer_backward(t, tp, li, d_x, d_kin, d_mem);
    if (d_curr) s2_ref_add(d_curr, d_curr, d_x, N * C);
    if (d_memory) {
        s2_ref_add(d_memory, d_memory, d_mem, MC);
        s2_ref_add(d_memory, d_memory, d_kin, MC); // keys = memory (+ memory_pos)
    }
    if (d_memory_pos && cfg->ma_pos_enc_at_cross_attn_keys)
        s2_ref_add(d_memory_pos, d_memory_pos, d_kin, MC);
    s2_arena_release(t->c->scratch, mk);
}
