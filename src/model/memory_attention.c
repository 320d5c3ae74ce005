/* Memory attention: the current frame's top-level feature (N = H*W tokens of C
 * channels) attends to itself and then to the memory bank (M tokens of Cm channels),
 * both with 2-D axial rotary position encoding (RoPE).
 * Letters: N = H*W query tokens, M = memory tokens, Ci = attention internal dim,
 * hd = Ci / heads, P = hd / 2 complex pairs per head. */
#include "model/memory.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#define MA_PFX "memory_attention."

/* cos/sin of the axial RoPE angles for an (H, W) grid: (N, P) each. */
typedef struct rope_tab {
    float *cos, *sin;
    int64_t n_tok;
    int n_pair;
} rope_tab;

// ref: sam2/modeling/position_encoding.py compute_axial_cis
/* Pairs [0, hd/4) rotate by x * f_j, pairs [hd/4, hd/2) by y * f_j, with
 * f_j = 1 / theta^(4j / hd), computed in float as the official code does. */
static int rope_build(s2_ctx *c, rope_tab *t, int hd, int H, int W, double theta) {
    if (hd % 4 != 0)
        return s2_err(SAM2C_ERR_SHAPE, "memory attention: head dim %d is not a multiple of 4 (RoPE)", hd);
    const int q4 = hd / 4;
    t->n_tok = (int64_t)H * W;
    t->n_pair = hd / 2;
    t->cos = s2_scratch_f32(c, t->n_tok * t->n_pair);
    t->sin = s2_scratch_f32(c, t->n_tok * t->n_pair);
#pragma omp parallel for schedule(static)
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
    return 0;
}

// ref: sam2/modeling/position_encoding.py apply_rotary_enc
/* Rotates the first n_tok rows of x (row stride ld, `heads` heads of hd channels) as
 * complex pairs; row r uses the angles of grid token r % N (rope_k_repeat tiling). */
static void rope_apply(float *x, int64_t ld, int64_t n_tok, int heads, int hd,
                       const rope_tab *t) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n_tok; r++) {
        const float *cs = t->cos + (r % t->n_tok) * t->n_pair;
        const float *sn = t->sin + (r % t->n_tok) * t->n_pair;
        for (int h = 0; h < heads; h++) {
            float *p = x + r * ld + (int64_t)h * hd;
            for (int j = 0; j < t->n_pair; j++) {
                float a = p[2 * j], b = p[2 * j + 1];
                p[2 * j] = a * cs[j] - b * sn[j];
                p[2 * j + 1] = a * sn[j] + b * cs[j];
            }
        }
    }
}

/* One RoPE attention call: its inputs, sizes and where to write. */
typedef struct rope_call {
    const char *pfx;          /* "memory_attention.layers.0.self_attn" */
    const float *q_in;        /* (Nq, C) */
    const float *k_in;        /* (Nk, kv_dim) */
    const float *v_in;        /* (Nk, kv_dim) */
    int64_t Nq, Nk;
    int C, kv_dim;
    int num_k_exclude_rope;   /* trailing keys without rotation */
    bool k_repeat;            /* rope_k_repeat */
} rope_call;

// ref: sam2/modeling/sam/transformer.py RoPEAttention.forward
/* Projections, RoPE on q and on the first Nk - excluded keys, SDPA, out_proj.
 * out (Nq, C). */
static int rope_attention(s2_ctx *c, const sam2c_model *m, const rope_call *a,
                          const rope_tab *tab, int heads, float *out) {
    const s2_tensor *wq = s2_wt(m, "%s.q_proj.weight", a->pfx);
    const int Ci = (int)wq->shape[0];
    if (heads <= 0 || Ci % heads != 0)
        return s2_err(SAM2C_ERR_SHAPE, "%s: %d heads do not divide %d", a->pfx, heads, Ci);
    const int hd = Ci / heads;
    if (hd / 2 != tab->n_pair || a->Nq != tab->n_tok)
        return s2_err(SAM2C_ERR_SHAPE, "%s: query grid does not match the RoPE table", a->pfx);
    int64_t nk_rope = a->Nk - a->num_k_exclude_rope;
    if (nk_rope < 0 || (nk_rope != a->Nq && (!a->k_repeat || nk_rope % a->Nq != 0)))
        return s2_err(SAM2C_ERR_SHAPE, "%s: %lld rotated keys for %lld queries", a->pfx,
                      (long long)nk_rope, (long long)a->Nq);
    s2_arena_mark mk = s2_arena_get_mark(c->scratch);
    float *q = s2_scratch_f32(c, a->Nq * Ci); // (Nq, Ci)
    float *k = s2_scratch_f32(c, a->Nk * Ci); // (Nk, Ci)
    float *v = s2_scratch_f32(c, a->Nk * Ci); // (Nk, Ci)
    float *o = s2_scratch_f32(c, a->Nq * Ci); // (Nq, Ci)
    s2_op_linear(c, q, a->q_in, (const float *)wq->data, s2_w(m, "%s.q_proj.bias", a->pfx),
                 a->Nq, a->C, Ci);
    s2_op_linear(c, k, a->k_in, s2_w(m, "%s.k_proj.weight", a->pfx),
                 s2_w(m, "%s.k_proj.bias", a->pfx), a->Nk, a->kv_dim, Ci);
    s2_op_linear(c, v, a->v_in, s2_w(m, "%s.v_proj.weight", a->pfx),
                 s2_w(m, "%s.v_proj.bias", a->pfx), a->Nk, a->kv_dim, Ci);
    rope_apply(q, Ci, a->Nq, heads, hd, tab);
    rope_apply(k, Ci, nk_rope, heads, hd, tab);
    s2_op_attention(c, o, Ci, q, Ci, k, Ci, v, Ci, 1, heads, a->Nq, a->Nk, hd);
    s2_op_linear(c, out, o, s2_w(m, "%s.out_proj.weight", a->pfx),
                 s2_w(m, "%s.out_proj.bias", a->pfx), a->Nq, Ci, a->C);
    s2_arena_release(c->scratch, mk);
    return 0;
}

/* y = x + p (row-wise, same shapes), or a plain copy when p is NULL. */
static void add_opt(float *y, const float *x, const float *p, int64_t n) {
    if (p) s2_ref_add(y, x, p, n);
    else memcpy(y, x, sizeof(float) * (size_t)n);
}

/* x += y over n values. */
static void add_inplace(float *x, const float *y, int64_t n) {
    s2_ref_add(x, x, y, n);
}

// ref: sam2/modeling/memory_attention.py MemoryAttentionLayer.forward
/* tgt (N, C) updated in place: self-attn, cross-attn to memory, ReLU FFN. */
static int ma_layer(s2_ctx *c, const sam2c_model *m, int li, float *tgt,
                    const s2_memattn_in *in, const rope_tab *tab, int C, int Cm) {
    const s2_config *cfg = &m->cfg;
    const int64_t N = (int64_t)in->H * in->W, M = in->n_mem;
    char pfx[96];
    s2_arena_mark mk = s2_arena_get_mark(c->scratch);
    float *t2 = s2_scratch_f32(c, N * C);   // (N, C) normed
    float *qk = s2_scratch_f32(c, N * C);   // (N, C) query input
    float *ao = s2_scratch_f32(c, N * C);   // (N, C) attention output
    float *kin = s2_scratch_f32(c, M * Cm); // (M, Cm) keys input
    // ref: MemoryAttentionLayer._forward_sa
    s2_op_layernorm(c, t2, tgt, s2_w(m, MA_PFX "layers.%d.norm1.weight", li),
                     s2_w(m, MA_PFX "layers.%d.norm1.bias", li), N, C, 1e-5f);
    add_opt(qk, t2, cfg->ma_pos_enc_at_attn ? in->curr_pos : NULL, N * C);
    snprintf(pfx, sizeof pfx, MA_PFX "layers.%d.self_attn", li);
    rope_call sa = {pfx, qk, qk, t2, N, N, C, C, 0, false};
    int rc = rope_attention(c, m, &sa, tab, cfg->ma_num_heads, ao);
    if (rc < 0) goto done;
    add_inplace(tgt, ao, N * C);
    // ref: MemoryAttentionLayer._forward_ca
    s2_op_layernorm(c, t2, tgt, s2_w(m, MA_PFX "layers.%d.norm2.weight", li),
                     s2_w(m, MA_PFX "layers.%d.norm2.bias", li), N, C, 1e-5f);
    add_opt(qk, t2, cfg->ma_pos_enc_at_cross_attn_queries ? in->curr_pos : NULL, N * C);
    add_opt(kin, in->memory, cfg->ma_pos_enc_at_cross_attn_keys ? in->memory_pos : NULL, M * Cm);
    snprintf(pfx, sizeof pfx, MA_PFX "layers.%d.cross_attn_image", li);
    rope_call ca = {pfx, qk, kin, in->memory, N, M, C, Cm, in->num_obj_ptr_tokens,
                    cfg->ma_rope_k_repeat};
    rc = rope_attention(c, m, &ca, tab, cfg->ma_num_heads, ao);
    if (rc < 0) goto done;
    add_inplace(tgt, ao, N * C);
    // MLP: linear2(relu(linear1(norm3(tgt))))
    const s2_tensor *w1 = s2_wt(m, MA_PFX "layers.%d.linear1.weight", li);
    const int ff = (int)w1->shape[0];
    s2_op_layernorm(c, t2, tgt, s2_w(m, MA_PFX "layers.%d.norm3.weight", li),
                     s2_w(m, MA_PFX "layers.%d.norm3.bias", li), N, C, 1e-5f);
    s2_op_mlp(c, ao, t2, (const float *)w1->data, s2_w(m, MA_PFX "layers.%d.linear1.bias", li),
              s2_w(m, MA_PFX "layers.%d.linear2.weight", li), s2_w(m, MA_PFX "layers.%d.linear2.bias", li),
              N, C, ff, C, S2_ACT_RELU); // (N, FF) hidden
    add_inplace(tgt, ao, N * C);
done:
    s2_arena_release(c->scratch, mk);
    return rc;
}

/* Input checks with one-line messages. */
static int ma_check(const sam2c_model *m, const s2_memattn_in *in, int *C, int *Cm) {
    if (!in || !in->curr || !in->curr_pos || !in->memory || !in->memory_pos || in->H <= 0 ||
        in->W <= 0 || in->n_mem <= 0)
        return s2_err(SAM2C_ERR_ARG, "memory attention: missing input");
    *C = (int)s2_wt(m, MA_PFX "norm.weight")->shape[0];
    *Cm = (int)s2_wt(m, MA_PFX "layers.0.cross_attn_image.k_proj.weight")->shape[1];
    if (in->num_obj_ptr_tokens < 0 || in->num_obj_ptr_tokens > in->n_mem)
        return s2_err(SAM2C_ERR_ARG, "memory attention: %d pointer tokens among %lld",
                      in->num_obj_ptr_tokens, (long long)in->n_mem);
    if (m->cfg.ma_num_layers <= 0)
        return s2_err(SAM2C_ERR_FORMAT, "memory attention: no layers");
    return 0;
}

// ref: sam2/modeling/memory_attention.py MemoryAttention.forward
int s2_memory_attention_forward(s2_ctx *c, const sam2c_model *m, const s2_memattn_in *in,
                                float *out) {
    if (!c || !c->scratch || !m || !out) return s2_err(SAM2C_ERR_ARG, "memory attention: missing input");
    int C = 0, Cm = 0;
    S2_CHECK(ma_check(m, in, &C, &Cm));
    const int64_t N = (int64_t)in->H * in->W;
    const int heads = m->cfg.ma_num_heads;
    const int Ci = (int)s2_wt(m, MA_PFX "layers.0.self_attn.q_proj.weight")->shape[0];
    if (heads <= 0 || Ci % heads != 0)
        return s2_err(SAM2C_ERR_SHAPE, "memory attention: %d heads do not divide %d", heads, Ci);
    s2_arena_mark mk = s2_arena_get_mark(c->scratch);
    rope_tab tab;
    int rc = rope_build(c, &tab, Ci / heads, in->H, in->W, m->cfg.ma_rope_theta);
    float *tgt = s2_scratch_f32(c, N * C); // (N, C)
    if (rc == 0) {
        // pos_enc_at_input: output = curr + 0.1 * curr_pos
        for (int64_t i = 0; i < N * C; i++)
            tgt[i] = m->cfg.ma_pos_enc_at_input ? in->curr[i] + 0.1f * in->curr_pos[i] : in->curr[i];
        for (int li = 0; li < m->cfg.ma_num_layers && rc == 0; li++)
            rc = ma_layer(c, m, li, tgt, in, &tab, C, Cm);
    }
    if (rc == 0) {
        s2_op_layernorm(c, out, tgt, s2_w(m, MA_PFX "norm.weight"), s2_w(m, MA_PFX "norm.bias"), N, C,
                         1e-5f);
        s2_dump(c, "memory_attention.out", out, 3, (int64_t[]){N, 1, C});
    }
    s2_arena_release(c->scratch, mk);
    return rc;
}
