/* SAM's two-way transformer: tokens attend to the image, the image attends back.
 * Dimension letters: see sam_heads.h (B, Nt, C); HW = h*w image tokens, Ci = C / rate
 * the attention's internal width.
 * ref: sam2/modeling/sam/transformer.py, sam2/modeling/sam2_utils.py MLP */
#include "model/sam_heads.h"

#include <stdio.h>
#include <string.h>

#define TR "sam_mask_decoder.transformer"
#define LN_EPS 1e-5f

// ref: sam2/modeling/sam2_utils.py MLP.forward
void s2_sam_mlp(s2_ctx *c, const sam2c_model *m, const char *prefix, int n_layers,
                bool sigmoid_output, const float *x, int64_t rows, float *y) {
    s2_arena_mark mark = s2_arena_get_mark(c->scratch);
    const float *cur = x;
    for (int i = 0; i < n_layers; i++) {
        const s2_tensor *wt = s2_wt(m, "%s.layers.%d.weight", prefix, i); // [out, in]
        const float *b = s2_w(m, "%s.layers.%d.bias", prefix, i);          // [out]
        int64_t K = wt->shape[1], N = wt->shape[0];
        float *nxt = i == n_layers - 1 ? y : s2_scratch_f32(c, rows * N);
        s2_op_linear_act(c, nxt, cur, (const float *)wt->data, b, rows, K, N,
                         i < n_layers - 1 ? S2_ACT_RELU : S2_ACT_NONE);
        if (i == n_layers - 1 && sigmoid_output) s2_ref_sigmoid(nxt, rows * N);
        cur = nxt;
    }
    s2_arena_release(c->scratch, mark);
}

// ref: sam2/modeling/sam/transformer.py Attention.forward
/* q_in [B, Nq, C], k_in / v_in [B, Nk, C] -> out [B, Nq, C]: projections to Ci, heads
 * side by side in each row (_separate_heads), SDPA, out_proj. */
static int attention(s2_ctx *c, const sam2c_model *m, const char *prefix, float *out,
                     const float *q_in, const float *k_in, const float *v_in, int B,
                     int64_t Nq, int64_t Nk) {
    const s2_tensor *wq = s2_wt(m, "%s.q_proj.weight", prefix); // [Ci, C]
    int64_t Ci = wq->shape[0], C = wq->shape[1];
    int heads = m->cfg.dec_num_heads;
    if (heads < 1 || Ci % heads != 0)
        return s2_err(SAM2C_ERR_FORMAT, "%s: %d heads do not divide width %lld", prefix, heads,
                      (long long)Ci);
    s2_arena_mark mark = s2_arena_get_mark(c->scratch);
    float *q = s2_scratch_f32(c, B * Nq * Ci); // (B, Nq, Ci)
    float *k = s2_scratch_f32(c, B * Nk * Ci); // (B, Nk, Ci)
    float *v = s2_scratch_f32(c, B * Nk * Ci); // (B, Nk, Ci)
    float *o = s2_scratch_f32(c, B * Nq * Ci); // (B, Nq, Ci)
    s2_op_linear(c, q, q_in, wq->data, s2_w(m, "%s.q_proj.bias", prefix), B * Nq, C, Ci);
    s2_op_linear(c, k, k_in, s2_w(m, "%s.k_proj.weight", prefix),
                 s2_w(m, "%s.k_proj.bias", prefix), B * Nk, C, Ci);
    s2_op_linear(c, v, v_in, s2_w(m, "%s.v_proj.weight", prefix),
                 s2_w(m, "%s.v_proj.bias", prefix), B * Nk, C, Ci);
    s2_op_attention(c, o, Ci, q, Ci, k, Ci, v, Ci, B, heads, Nq, Nk, (int)(Ci / heads));
    s2_op_linear(c, out, o, s2_w(m, "%s.out_proj.weight", prefix),
                 s2_w(m, "%s.out_proj.bias", prefix), B * Nq, Ci, C);
    s2_arena_release(c->scratch, mark);
    return SAM2C_OK;
}

/* y = x + pe: pe [n_pe, C] repeated over B (x [B, n_pe, C]), or pe [B, n_pe, C]. */
static void add_pe(float *y, const float *x, const float *pe, int B, int64_t n, bool shared) {
    for (int b = 0; b < B; b++) {
        const float *pb = shared ? pe : pe + b * n;
        s2_ref_add(y + b * n, x + b * n, pb, n);
    }
}

/* LayerNorm over C in place with the named weights. x [rows, C]. */
static void norm(s2_ctx *c, const sam2c_model *m, const char *name, float *x, int64_t rows, int C) {
    s2_op_layernorm(c, x, x, s2_w(m, "%s.weight", name), s2_w(m, "%s.bias", name), rows, C,
                     LN_EPS);
}

/* x = LayerNorm(x + r): the residual add of every sub-block. */
static void add_norm(s2_ctx *c, const sam2c_model *m, const char *name, float *x, const float *r,
                     int64_t rows, int C) {
    s2_ref_add(x, x, r, rows * C);
    norm(c, m, name, x, rows, C);
}

// ref: sam2/modeling/sam/transformer.py TwoWayAttentionBlock.forward
/* queries [B, Nt, C], keys [B, HW, C] updated in place; qpe = the original tokens
 * [B, Nt, C], kpe [HW, C]. */
static int two_way_block(s2_ctx *c, const sam2c_model *m, int layer, float *queries,
                         float *keys, const float *qpe, const float *kpe, int B, int Nt,
                         int64_t HW) {
    int C = m->cfg.d_model;
    int64_t nq = (int64_t)Nt * C, nk = HW * C;
    char pre[128], name[160];
    snprintf(pre, sizeof pre, TR ".layers.%d", layer);
    s2_arena_mark mark = s2_arena_get_mark(c->scratch);
    float *q = s2_scratch_f32(c, B * nq);    // (B, Nt, C) queries + query_pe
    float *k = s2_scratch_f32(c, B * nk);    // (B, HW, C) keys + key_pe
    float *att = s2_scratch_f32(c, B * S2_MAX(nq, nk)); // (B, max(Nt, HW), C) attn out
    float *mlp = s2_scratch_f32(c, B * nq);  // (B, Nt, C)
    int rc;

    // Self attention block (skip_first_layer_pe: layer 0 has no PE and no residual)
    snprintf(name, sizeof name, "%s.self_attn", pre);
    if (layer == 0) {
        rc = attention(c, m, name, queries, queries, queries, queries, B, Nt, Nt);
    } else {
        add_pe(q, queries, qpe, B, nq, false);
        rc = attention(c, m, name, att, q, q, queries, B, Nt, Nt);
        if (rc == SAM2C_OK) s2_ref_add(queries, queries, att, B * nq);
    }
    if (rc < 0) goto done;
    snprintf(name, sizeof name, "%s.norm1", pre);
    norm(c, m, name, queries, (int64_t)B * Nt, C);

    // Cross attention block, tokens attending to image embedding
    add_pe(q, queries, qpe, B, nq, false);
    add_pe(k, keys, kpe, B, nk, true);
    snprintf(name, sizeof name, "%s.cross_attn_token_to_image", pre);
    if ((rc = attention(c, m, name, att, q, k, keys, B, Nt, HW)) < 0) goto done;
    snprintf(name, sizeof name, "%s.norm2", pre);
    add_norm(c, m, name, queries, att, (int64_t)B * Nt, C);

    // MLP block
    snprintf(name, sizeof name, "%s.mlp", pre);
    s2_sam_mlp(c, m, name, 2, false, queries, (int64_t)B * Nt, mlp);
    snprintf(name, sizeof name, "%s.norm3", pre);
    add_norm(c, m, name, queries, mlp, (int64_t)B * Nt, C);

    // Cross attention block, image embedding attending to tokens (k still = keys + pe)
    add_pe(q, queries, qpe, B, nq, false);
    snprintf(name, sizeof name, "%s.cross_attn_image_to_token", pre);
    if ((rc = attention(c, m, name, att, k, q, queries, B, HW, Nt)) < 0) goto done;
    snprintf(name, sizeof name, "%s.norm4", pre);
    add_norm(c, m, name, keys, att, (int64_t)B * HW, C);
done:
    s2_arena_release(c->scratch, mark);
    return rc;
}

// ref: sam2/modeling/sam/transformer.py TwoWayTransformer.forward
int s2_two_way_transformer(s2_ctx *c, const sam2c_model *m, float *queries, float *keys,
                           const float *key_pe, int B, int Nt, int64_t HW) {
    int C = m->cfg.d_model;
    int64_t nq = (int64_t)Nt * C, nk = HW * C;
    s2_arena_mark mark = s2_arena_get_mark(c->scratch);
    float *qpe = s2_scratch_f32(c, B * nq); // (B, Nt, C) point_embedding (query PE)
    memcpy(qpe, queries, (size_t)(B * nq) * sizeof(float));
    int rc = SAM2C_OK;
    for (int i = 0; i < m->cfg.dec_depth && rc == SAM2C_OK; i++)
        rc = two_way_block(c, m, i, queries, keys, qpe, key_pe, B, Nt, HW);
    if (rc == SAM2C_OK) {
        // Final attention layer from the points to the image
        float *q = s2_scratch_f32(c, B * nq);   // (B, Nt, C)
        float *k = s2_scratch_f32(c, B * nk);   // (B, HW, C)
        float *att = s2_scratch_f32(c, B * nq); // (B, Nt, C)
        add_pe(q, queries, qpe, B, nq, false);
        add_pe(k, keys, key_pe, B, nk, true);
        rc = attention(c, m, TR ".final_attn_token_to_image", att, q, k, keys, B, Nt, HW);
        if (rc == SAM2C_OK) add_norm(c, m, TR ".norm_final_attn", queries, att, (int64_t)B * Nt, C);
    }
    s2_arena_release(c->scratch, mark);
    return rc;
}
