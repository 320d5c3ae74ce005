/* The memory side of a clip step: which earlier frames a tracking frame attends to, the
 * memory tokens and their position encodings, the memory attention, and the backward of
 * all of it into the earlier frames' memories and pointers; the object pointer
 * (obj_ptr_proj + no-object mixing) and the backward of the decoder's pointer token.
 * The memory selection mirrors src/model/sam2_base.c plan_memory (training mode: stride
 * 1 and every selected conditioning frame's pointer; eval mode: as the predictor).
 * Letters: see clip_internal.h; M memory tokens, P pointers, k = C / Cm tokens per
 * pointer, Nt decoder tokens, HW = h*w.
 * ref: sam2/modeling/sam2_base.py SAM2Base._prepare_memory_conditioned_features,
 *      _forward_sam_heads; sam2/modeling/sam2_utils.py select_closest_cond_frames */
#include "train/clip_internal.h"
#include "train/grad_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PE "sam_prompt_encoder."
#define MD "sam_mask_decoder."

float *s2_clip_tape_zeros(s2_tctx *t, int64_t n) {
    float *p = s2_tape_f32(t, n);
    memset(p, 0, (size_t)n * sizeof(float));
    return p;
}

/* Zeroed scratch floats (gradient temporaries). */
static float *zeros(s2_tctx *t, int64_t n) {
    float *p = s2_scratch_f32(t->c, n);
    memset(p, 0, (size_t)n * sizeof(float));
    return p;
}

/* Python floor division (memory_temporal_stride arithmetic with negative frames). */
static int floordiv(int a, int b) {
    int q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* ============================ memory plan ============================ */

// ref: sam2/modeling/sam2_utils.py select_closest_cond_frames
/* Marks in sel[] the stored conditioning frames the memory attention uses: all of them,
 * or max_cond of them (closest before, closest at/after, then by distance). */
static void select_cond(const s2_clip_ctx *cc, int f, bool *sel) {
    const int T = cc->in->T, max_cond = cc->t->m->cfg.max_cond_frames_in_attn;
    int n = 0;
    for (int t = 0; t < T; t++) n += (sel[t] = cc->fs[t].done && cc->fs[t].cond);
    if (max_cond == -1 || n <= max_cond) return;
    int before = -1, after = -1, nsel = 0;
    for (int t = 0; t < T; t++) {
        if (!sel[t]) continue;
        if (t < f) before = t;
        if (t >= f && after < 0) after = t;
    }
    for (int t = 0; t < T; t++) sel[t] = false;
    if (before >= 0) sel[before] = true, nsel++;
    if (after >= 0) sel[after] = true, nsel++;
    while (nsel < max_cond) { // next closest by |t - f| (earlier frame on ties)
        int best = -1;
        for (int t = 0; t < T; t++)
            if (cc->fs[t].done && cc->fs[t].cond && !sel[t] && (best < 0 || abs(t - f) < abs(best - f)))
                best = t;
        if (best < 0) break;
        sel[best] = true, nsel++;
    }
}

/* A stored non-conditioning frame at t, else an unselected conditioning one; -1. */
static int non_cond_at(const s2_clip_ctx *cc, const bool *sel, int t) {
    if (t < 0 || t >= cc->in->T || !cc->fs[t].done) return -1;
    return (!cc->fs[t].cond || !sel[t]) ? t : -1;
}

// ref: sam2/modeling/sam2_utils.py get_1d_sine_pe
/* pe (n, dim): [sin(p / dim_t) for the first dim/2, cos for the rest]. */
static void sine_pe_1d(float *pe, const float *pos, int n, int dim) {
    const int half = dim / 2;
    for (int j = 0; j < half; j++) {
        float dim_t = powf(10000.0f, (float)(2 * (j / 2)) / (float)half);
        for (int i = 0; i < n; i++) {
            float v = pos[i] / dim_t;
            pe[(int64_t)i * dim + j] = sinf(v);
            pe[(int64_t)i * dim + half + j] = cosf(v);
        }
    }
}

/* Object pointers of frame f: every selected conditioning frame (only past ones in eval
 * mode) with its signed distance, then up to max_ptrs - 1 previous frames; their sine
 * PE of distance / (max_ptrs - 1) in s->tpe. */
static void plan_pointers(s2_clip_ctx *cc, int f, const bool *sel, s2_clip_fstate *s) {
    const s2_config *cfg = &cc->t->m->cfg;
    const int T = cc->in->T, max_ptrs = S2_MIN(T, cfg->max_obj_ptrs_in_encoder);
    s->n_ptr = 0;
    if (!cfg->use_obj_ptrs_in_encoder) return;
    s->ptr_f = (int *)s2_tape_f32(cc->t, T + max_ptrs + 1);
    float *pos = s2_tape_f32(cc->t, T + max_ptrs + 1);
    for (int t = 0; t < T; t++) {
        if (!sel[t] || (cc->in->eval && cfg->only_obj_ptrs_in_the_past_for_eval && t > f)) continue;
        pos[s->n_ptr] = (float)(cfg->use_signed_tpos_enc_to_obj_ptrs ? f - t : abs(f - t));
        s->ptr_f[s->n_ptr++] = t;
    }
    for (int td = 1; td < max_ptrs && f - td >= 0; td++) {
        int o = non_cond_at(cc, sel, f - td);
        if (o >= 0) pos[s->n_ptr] = (float)td, s->ptr_f[s->n_ptr++] = o;
    }
    if (!cfg->add_tpos_enc_to_obj_ptrs || s->n_ptr == 0) return;
    const int tdim = cfg->proj_tpos_enc_in_obj_ptrs ? cc->C : cc->Cm, tmax = max_ptrs - 1;
    for (int i = 0; i < s->n_ptr; i++) pos[i] = tmax > 0 ? pos[i] / (float)tmax : 0.0f;
    s->tpe = s2_tape_f32(cc->t, (int64_t)s->n_ptr * tdim);
    sine_pe_1d(s->tpe, pos, s->n_ptr, tdim);
}

// ref: SAM2Base._prepare_memory_conditioned_features (step 1, training stride 1)
static int plan_memory(s2_clip_ctx *cc, int f, s2_clip_fstate *s) {
    const s2_config *cfg = &cc->t->m->cfg;
    const int T = cc->in->T, cap = T + S2_MAX(cfg->num_maskmem, 1);
    bool *sel = (bool *)s2_tape_f32(cc->t, T / 4 + 1);
    select_cond(cc, f, sel);
    s->sp_f = (int *)s2_tape_f32(cc->t, cap), s->sp_tpos = (int *)s2_tape_f32(cc->t, cap);
    s->n_sp = 0;
    for (int t = 0; t < T; t++)
        if (sel[t]) s->sp_f[s->n_sp] = t, s->sp_tpos[s->n_sp++] = 0;
    if (s->n_sp == 0) return s2_err(SAM2C_ERR_STATE, "clip step: frame %d has no conditioning frame to attend to", f);
    int r = 1;
    if (cc->in->eval && cfg->memory_temporal_stride_for_eval > 0) r = cfg->memory_temporal_stride_for_eval;
    for (int t_pos = 1; t_pos < cfg->num_maskmem; t_pos++) {
        int t_rel = cfg->num_maskmem - t_pos;
        int prev = t_rel == 1 ? f - 1 : floordiv(f - 2, r) * r - (t_rel - 2) * r;
        int o = non_cond_at(cc, sel, prev);
        if (o >= 0) s->sp_f[s->n_sp] = o, s->sp_tpos[s->n_sp++] = t_pos;
    }
    plan_pointers(cc, f, sel, s);
    return SAM2C_OK;
}

/* ============================ memory tokens ============================ */

/* Spatial memory i's tokens (N, Cm) and their PE + maskmem_tpos_enc[num_maskmem - t_pos - 1]. */
static void spatial_tokens(const s2_clip_ctx *cc, const s2_clip_fstate *s, float *mem, float *mpos) {
    const sam2c_model *m = cc->t->m;
    const float *tpos = s2_w(m, "maskmem_tpos_enc");
    const int Cm = cc->Cm;
    const int64_t N = cc->N;
    for (int i = 0; i < s->n_sp; i++) {
        const float *mm = cc->out->f[s->sp_f[i]].maskmem;
        const float *tp = tpos + (int64_t)(m->cfg.num_maskmem - s->sp_tpos[i] - 1) * Cm;
        float *dm = mem + i * N * Cm, *dp = mpos + i * N * Cm;
        for (int ch = 0; ch < Cm; ch++)
            for (int64_t p = 0; p < N; p++) {
                dm[p * Cm + ch] = mm[ch * N + p];
                dp[p * Cm + ch] = cc->mem_pos[ch * N + p] + tp[ch];
            }
    }
}

/* Pointer tokens: pointer i split into k tokens of Cm channels, all with obj_pos[i]. */
static void pointer_tokens(s2_clip_ctx *cc, const s2_clip_fstate *s, float *mem, float *mpos) {
    const s2_config *cfg = &cc->t->m->cfg;
    const int P = s->n_ptr, k = s->ptr_k, Cm = cc->Cm;
    s2_arena_mark mk = s2_arena_get_mark(cc->t->c->scratch);
    float *obj_pos = zeros(cc->t, (int64_t)P * Cm); // (P, Cm)
    if (s->tpe && cfg->proj_tpos_enc_in_obj_ptrs)
        s2_op_linear(cc->t->c, obj_pos, s->tpe, s2_w(cc->t->m, "obj_ptr_tpos_proj.weight"),
                     s2_w(cc->t->m, "obj_ptr_tpos_proj.bias"), P, cc->C, Cm);
    else if (s->tpe)
        memcpy(obj_pos, s->tpe, sizeof(float) * (size_t)P * Cm);
    for (int i = 0; i < P; i++)
        for (int j = 0; j < k; j++) {
            memcpy(mem + ((int64_t)i * k + j) * Cm, cc->out->f[s->ptr_f[i]].obj_ptr + (int64_t)j * Cm,
                   sizeof(float) * (size_t)Cm);
            memcpy(mpos + ((int64_t)i * k + j) * Cm, obj_pos + (int64_t)i * Cm, sizeof(float) * (size_t)Cm);
        }
    s2_arena_release(cc->t->c->scratch, mk);
}

/* (C, N) channel-major <-> (N, C) token rows. */
static void chw_to_tokens(float *y, const float *x, int C, int64_t N) {
    for (int ch = 0; ch < C; ch++)
        for (int64_t p = 0; p < N; p++) y[p * C + ch] = x[(int64_t)ch * N + p];
}
static void tokens_to_chw(float *y, const float *x, int C, int64_t N) {
    for (int64_t p = 0; p < N; p++)
        for (int ch = 0; ch < C; ch++) y[(int64_t)ch * N + p] = x[p * C + ch];
}

// ref: SAM2Base._prepare_memory_conditioned_features (step 2: memory attention)
int s2_clip_attend(s2_clip_ctx *cc, int f) {
    s2_clip_fstate *s = &cc->fs[f];
    const int C = cc->C, Cm = cc->Cm;
    const int64_t N = cc->N;
    if (Cm > C || C % Cm != 0)
        return s2_err(SAM2C_ERR_SHAPE, "clip step: pointers of %d channels cannot split into %d-channel tokens", C, Cm);
    S2_CHECK(plan_memory(cc, f, s));
    s->ptr_k = C / Cm;
    const int64_t M = s->n_sp * N + (int64_t)s->n_ptr * s->ptr_k;
    float *mem = s2_tape_f32(cc->t, M * Cm), *mpos = s2_tape_f32(cc->t, M * Cm); // (M, Cm)
    spatial_tokens(cc, s, mem, mpos);
    if (s->n_ptr) pointer_tokens(cc, s, mem + s->n_sp * N * Cm, mpos + s->n_sp * N * Cm);
    float *cur = s2_tape_f32(cc->t, N * C); // (N, C)
    chw_to_tokens(cur, cc->in->f[f].fpn[2], C, N);
    s2_memattn_in in = {cur, cc->pos_tok, cc->h, cc->w, mem, mpos, M, s->n_ptr * s->ptr_k};
    S2_CHECK(s2_memattn_forward_train(cc->t, &in, &s->ma));
    tokens_to_chw(s->it.pix, s->ma.out, C, N);
    return SAM2C_OK;
}

/* Memory gradients of the spatial memories: transposed into the earlier frames'
 * d_maskmem, their PE rows summed into maskmem_tpos_enc. */
static void spatial_backward(s2_clip_ctx *cc, const s2_clip_fstate *s, const float *d_mem,
                             const float *d_mpos) {
    const int Cm = cc->Cm, nm = cc->t->m->cfg.num_maskmem;
    const int64_t N = cc->N;
    float *g_tpos = s2_grad(cc->t->p, "maskmem_tpos_enc");
    for (int i = 0; i < s->n_sp; i++) {
        float *dst = cc->fs[s->sp_f[i]].d_maskmem;
        float *gt = g_tpos + (int64_t)(nm - s->sp_tpos[i] - 1) * Cm;
        const float *dm = d_mem + i * N * Cm, *dp = d_mpos + i * N * Cm;
        for (int ch = 0; ch < Cm; ch++) {
            double acc = 0.0;
            for (int64_t p = 0; p < N; p++) {
                dst[ch * N + p] += dm[p * Cm + ch];
                acc += dp[p * Cm + ch];
            }
            gt[ch] += (float)acc;
        }
    }
}

/* Pointer token gradients into the earlier frames' d_ptr and obj_ptr_tpos_proj. */
static void pointer_backward(s2_clip_ctx *cc, const s2_clip_fstate *s, const float *d_mem,
                             const float *d_mpos) {
    const s2_config *cfg = &cc->t->m->cfg;
    const int P = s->n_ptr, k = s->ptr_k, Cm = cc->Cm;
    s2_arena_mark mk = s2_arena_get_mark(cc->t->c->scratch);
    float *d_pos = zeros(cc->t, (int64_t)P * Cm); // (P, Cm)
    for (int i = 0; i < P; i++)
        for (int j = 0; j < k; j++) {
            const float *dm = d_mem + ((int64_t)i * k + j) * Cm, *dp = d_mpos + ((int64_t)i * k + j) * Cm;
            float *dst = cc->fs[s->ptr_f[i]].d_ptr + (int64_t)j * Cm;
            s2_ref_add(dst, dst, dm, Cm);
            s2_ref_add(d_pos + (int64_t)i * Cm, d_pos + (int64_t)i * Cm, dp, Cm);
        }
    if (s->tpe && cfg->proj_tpos_enc_in_obj_ptrs)
        s2_linear_backward(cc->t->c, s->tpe, s2_w(cc->t->m, "obj_ptr_tpos_proj.weight"), d_pos, NULL,
                           s2_grad(cc->t->p, "obj_ptr_tpos_proj.weight"),
                           s2_grad(cc->t->p, "obj_ptr_tpos_proj.bias"), P, cc->C, Cm);
    s2_arena_release(cc->t->c->scratch, mk);
}

// ref: _prepare_memory_conditioned_features (autograd)
void s2_clip_attend_backward(s2_clip_ctx *cc, int f) {
    s2_clip_fstate *s = &cc->fs[f];
    const int64_t N = cc->N, MC = s->ma.M * cc->Cm;
    s2_arena_mark mk = s2_arena_get_mark(cc->t->c->scratch);
    float *d_out = s2_scratch_f32(cc->t->c, N * cc->C); // (N, C)
    float *d_mem = zeros(cc->t, MC), *d_mpos = zeros(cc->t, MC);
    chw_to_tokens(d_out, s->it.d_pix, cc->C, N);
    s2_memattn_backward(cc->t, &s->ma, d_out, NULL, d_mem, d_mpos);
    spatial_backward(cc, s, d_mem, d_mpos);
    if (s->n_ptr) pointer_backward(cc, s, d_mem + s->n_sp * N * cc->Cm, d_mpos + s->n_sp * N * cc->Cm);
    memset(s->it.d_pix, 0, sizeof(float) * (size_t)(cc->C * N));
    s2_arena_release(cc->t->c->scratch, mk);
}

/* =========================== object pointer =========================== */

/* out = pa * proj + pb * no_obj_ptr (proj alone without the no-object pointer). */
static void pointer_compose(const s2_clip_ctx *cc, const s2_clip_fstate *s, float *out) {
    const s2_tensor *nop = s2_w_opt(cc->t->m, "no_obj_ptr");
    for (int i = 0; i < cc->C; i++)
        out[i] = nop ? s->pa * s->proj[i] + s->pb * ((const float *)nop->data)[i] : s->proj[i];
}

// ref: SAM2Base._forward_sam_heads (obj_ptr: fixed_no_obj_ptr mixing by a hard lambda)
void s2_clip_pointer_mix(s2_clip_ctx *cc, s2_clip_fstate *s, float lam, float *out) {
    const s2_config *cfg = &cc->t->m->cfg;
    if (cfg->pred_obj_scores && s2_w_opt(cc->t->m, "no_obj_ptr")) {
        float fx = cfg->fixed_no_obj_ptr ? lam : 1.0f;
        s->pa = fx * s->pa;
        s->pb = fx * s->pb + (1.0f - lam);
    }
    pointer_compose(cc, s, out);
}

// ref: SAM2Base._forward_sam_heads (obj_ptr = obj_ptr_proj(sam_output_token), mixing)
int s2_clip_pointer(s2_clip_ctx *cc, s2_clip_fstate *s, const float *token, float score,
                    float *out) {
    const s2_config *cfg = &cc->t->m->cfg;
    s2_tctx *t = cc->t;
    s->ptr_in = token;
    s->proj = s2_tape_f32(t, cc->C);
    if (!cfg->use_obj_ptrs_in_encoder) {
        memcpy(s->proj, token, sizeof(float) * (size_t)cc->C);
    } else if (cfg->use_mlp_for_obj_ptr_proj) {
        S2_CHECK(s2_mlp_forward_train(t, "obj_ptr_proj", 3, false, token, 1, &s->ptr_tp));
        memcpy(s->proj, s->ptr_tp.h[2], sizeof(float) * (size_t)cc->C);
    } else {
        s2_op_linear(t->c, s->proj, token, s2_w(t->m, "obj_ptr_proj.weight"),
                     s2_w(t->m, "obj_ptr_proj.bias"), 1, cc->C, cc->C);
    }
    s->pa = 1.0f, s->pb = 0.0f;
    s2_clip_pointer_mix(cc, s, score > 0.0f ? 1.0f : 0.0f, out);
    return SAM2C_OK;
}

// ref: _forward_sam_heads obj_ptr (autograd)
void s2_clip_pointer_backward(s2_clip_ctx *cc, const s2_clip_fstate *s, const float *d_ptr,
                              float *d_tok) {
    const s2_config *cfg = &cc->t->m->cfg;
    s2_tctx *t = cc->t;
    const int C = cc->C;
    const bool mixed = s2_w_opt(t->m, "no_obj_ptr") != NULL;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    float *d_proj = s2_scratch_f32(t->c, C);
    for (int i = 0; i < C; i++) d_proj[i] = mixed ? s->pa * d_ptr[i] : d_ptr[i];
    if (mixed && cfg->pred_obj_scores) {
        float *g = s2_grad(t->p, "no_obj_ptr");
        for (int i = 0; i < C; i++) g[i] += s->pb * d_ptr[i];
    }
    if (!cfg->use_obj_ptrs_in_encoder) s2_ref_add(d_tok, d_tok, d_proj, C);
    else if (cfg->use_mlp_for_obj_ptr_proj) s2_mlp_backward(t, &s->ptr_tp, d_proj, d_tok);
    else s2_linear_backward(t->c, s->ptr_in, s2_w(t->m, "obj_ptr_proj.weight"), d_proj, d_tok,
                            s2_grad(t->p, "obj_ptr_proj.weight"), s2_grad(t->p, "obj_ptr_proj.bias"),
                            1, C, C);
    s2_arena_release(t->c->scratch, mk);
}

/* ===================== the pointer token's backward ===================== */

// ref: sam2/modeling/sam/prompt_encoder.py PromptEncoder._embed_masks (autograd):
// d_dense (C, h, w) -> d_mask (LH, LW) += (the heads tape's mask path)
static void mask_embed_backward(s2_tctx *t, const s2_heads_tape *ht, const float *d_dense,
                                float *d_mask) {
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    const int s1 = ht->H / 2, s2 = ht->h;
    const int64_t n1 = (int64_t)s1 * s1, n2 = (int64_t)s2 * s2;
    float *dg2 = zeros(t, ht->mc2 * n2), *dc2 = zeros(t, ht->mc2 * n2);
    float *dg1 = zeros(t, ht->mc1 * n1), *dc1 = zeros(t, ht->mc1 * n1);
    const s2_tensor *w6 = s2_wt(t->m, PE "mask_downscaling.6.weight");
    const s2_tensor *w3 = s2_wt(t->m, PE "mask_downscaling.3.weight");
    const s2_tensor *w0 = s2_wt(t->m, PE "mask_downscaling.0.weight");
    s2_conv_k_eq_s_backward(t->c, ht->m_g2, w6->data, d_dense, dg2, s2_grad(t->p, PE "mask_downscaling.6.weight"),
                            s2_grad(t->p, PE "mask_downscaling.6.bias"), 1, ht->mc2, s2, s2,
                            (int)w6->shape[0], (int)w6->shape[2]);
    s2_gelu_backward(ht->m_n2, dg2, dg2, ht->mc2 * n2);
    s2_layernorm2d_backward(t->c, ht->m_c2, s2_w(t->m, PE "mask_downscaling.4.weight"), dg2, dc2,
                            s2_grad(t->p, PE "mask_downscaling.4.weight"),
                            s2_grad(t->p, PE "mask_downscaling.4.bias"), 1, ht->mc2, n2, 1e-6f);
    s2_conv_k_eq_s_backward(t->c, ht->m_g1, w3->data, dc2, dg1, s2_grad(t->p, PE "mask_downscaling.3.weight"),
                            s2_grad(t->p, PE "mask_downscaling.3.bias"), 1, ht->mc1, s1, s1,
                            (int)w3->shape[0], (int)w3->shape[2]);
    s2_gelu_backward(ht->m_n1, dg1, dg1, ht->mc1 * n1);
    s2_layernorm2d_backward(t->c, ht->m_c1, s2_w(t->m, PE "mask_downscaling.1.weight"), dg1, dc1,
                            s2_grad(t->p, PE "mask_downscaling.1.weight"),
                            s2_grad(t->p, PE "mask_downscaling.1.bias"), 1, ht->mc1, n1, 1e-6f);
    s2_conv_k_eq_s_backward(t->c, ht->mask, w0->data, dc1, d_mask, s2_grad(t->p, PE "mask_downscaling.0.weight"),
                            s2_grad(t->p, PE "mask_downscaling.0.bias"), 1, 1, ht->H, ht->W,
                            (int)w0->shape[0], (int)w0->shape[2]);
    s2_arena_release(t->c->scratch, mk);
}

/* Gradients of the decoder's learned tokens and the sparse prompt rows (d_tok (Nt, C)). */
static void token_param_backward(s2_tctx *t, const s2_heads_tape *ht, const float *d_tok) {
    const int C = ht->C, T = ht->T, s = t->m->cfg.pred_obj_scores ? 1 : 0;
    float *g;
    if (s) g = s2_grad(t->p, MD "obj_score_token.weight"), s2_ref_add(g, g, d_tok, C);
    g = s2_grad(t->p, MD "iou_token.weight");
    s2_ref_add(g, g, d_tok + s * C, C);
    g = s2_grad(t->p, MD "mask_tokens.weight");
    s2_ref_add(g, g, d_tok + (s + 1) * C, (int64_t)T * C);
    for (int n = 0; n < ht->Ns; n++) {
        int l = ht->labels[n];
        g = l < 0 ? s2_grad(t->p, PE "not_a_point_embed.weight") : s2_grad(t->p, PE "point_embeddings.%d.weight", l);
        s2_ref_add(g, g, d_tok + (int64_t)(s + 1 + T + n) * C, C);
    }
}

// ref: MaskDecoder.predict_masks + PromptEncoder (autograd of mask_tokens_out[:, tok])
void s2_clip_token_backward(s2_tctx *t, s2_img_tape *it, const s2_heads_tape *ht, int tok,
                            const float *d_tok, float *d_mask_in) {
    const int C = ht->C, Nt = ht->Nt, s = t->m->cfg.pred_obj_scores ? 1 : 0;
    const int64_t HW = (int64_t)ht->h * ht->w;
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    float *d_q = zeros(t, (int64_t)Nt * C), *d_k = zeros(t, HW * C);
    float *d_tokens = zeros(t, (int64_t)Nt * C), *d_keys = zeros(t, HW * C);
    memcpy(d_q + (int64_t)(s + 1 + tok) * C, d_tok, sizeof(float) * (size_t)C);
    s2_twoway_backward(t, &ht->tw, d_q, d_k, d_tokens, d_keys);
    token_param_backward(t, ht, d_tokens);
    float *d_dense = s2_scratch_f32(t->c, HW * C); // keys = image + dense (token-major)
    s2_ref_nhwc_to_nchw(d_dense, d_keys, 1, ht->h, ht->w, C);
    s2_ref_add(it->d_pix, it->d_pix, d_dense, HW * C);
    if (!ht->mask) {
        float *g = s2_grad(t->p, PE "no_mask_embed.weight");
        for (int ch = 0; ch < C; ch++) {
            double acc = 0.0;
            for (int64_t p = 0; p < HW; p++) acc += d_dense[ch * HW + p];
            g[ch] += (float)acc;
        }
    } else {
        float *dm = d_mask_in ? d_mask_in : zeros(t, (int64_t)ht->H * ht->W);
        mask_embed_backward(t, ht, d_dense, dm);
    }
    s2_arena_release(t->c->scratch, mk);
}
