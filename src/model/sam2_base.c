/* SAM2Base tracking step for one object on one frame: memory-conditioned feature,
 * SAM heads (or mask-as-output), object pointer, new memory. Letters: see sam2_base.h
 * (C, Cm, H, W, LH, LW, S); N = H*W tokens, M = memory tokens, P = pointers. */
#include "model/sam2_base.h"
#include "model/memory.h"
#include "model/sam_heads.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Top level of the backbone: the feature the memory attention and the heads use. */
static void top_level(const s2_backbone_out *bb, const float **feat, const float **pos,
                      int *C, int *H, int *W) {
    int lv = bb->n_levels - 1;
    *feat = bb->fpn[lv];
    *pos = bb->pos[lv];
    *C = bb->C;
    *H = bb->h[lv];
    *W = bb->w[lv];
}

/* Untyped scratch bytes (flags, pointer lists) carved like the float buffers. */
static void *scratch_bytes(s2_ctx *c, size_t n) { return s2_scratch_f32(c, (int64_t)((n + 3) / 4)); }

/* Python floor division (memory_temporal_stride arithmetic with negative frames). */
static int floordiv(int a, int b) {
    int q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* ---------------------------------------------------------------------------- */
/* Memory selection                                                             */
/* ---------------------------------------------------------------------------- */

/* Which conditioning frames the memory attention uses, and the memory it gathers.
 * sel[t] marks selected conditioning frames; unselected ones can still serve as
 * non-conditioning memories / pointers (official unselected_cond_outputs). */
typedef struct mem_plan {
    int n_sp;                      /* spatial memories */
    const s2_frame_out **sp;       /* [n_sp] their outputs */
    int *sp_tpos;                  /* [n_sp] their t_pos (0 = conditioning) */
    int n_ptr;                     /* object pointers */
    const s2_frame_out **ptr;      /* [n_ptr] */
    int *ptr_pos;                  /* [n_ptr] temporal distance */
} mem_plan;

// ref: sam2/modeling/sam2_utils.py select_closest_cond_frames
/* Marks in sel[] at most max_cond conditioning frames closest to frame_idx (all when
 * max_cond == -1): the closest before, the closest at/after, then by distance. */
static void select_cond(const s2_mem_bank *bank, int frame_idx, int max_cond, bool *sel) {
    int n = 0;
    for (int t = 0; t < bank->num_frames; t++) n += bank->cond[t] != NULL;
    for (int t = 0; t < bank->num_frames; t++) sel[t] = bank->cond[t] != NULL;
    if (max_cond == -1 || n <= max_cond) return;
    memset(sel, 0, sizeof(bool) * (size_t)bank->num_frames);
    int before = -1, after = -1, nsel = 0;
    for (int t = 0; t < bank->num_frames; t++) {
        if (!bank->cond[t]) continue;
        if (t < frame_idx) before = t;
        if (t >= frame_idx && after < 0) after = t;
    }
    if (before >= 0) { sel[before] = true; nsel++; }
    if (after >= 0) { sel[after] = true; nsel++; }
    while (nsel < max_cond) { // next closest by |t - frame_idx| (earlier frame on ties)
        int best = -1;
        for (int t = 0; t < bank->num_frames; t++)
            if (bank->cond[t] && !sel[t] && (best < 0 || abs(t - frame_idx) < abs(best - frame_idx)))
                best = t;
        if (best < 0) break;
        sel[best] = true;
        nsel++;
    }
}

/* Non-conditioning output at frame t, else an unselected conditioning one. */
static const s2_frame_out *non_cond_at(const s2_mem_bank *bank, const bool *sel, int t) {
    if (t < 0 || t >= bank->num_frames) return NULL;
    if (bank->non_cond[t]) return bank->non_cond[t];
    return (bank->cond[t] && !sel[t]) ? bank->cond[t] : NULL;
}

// ref: sam2/modeling/sam2_base.py SAM2Base._prepare_memory_conditioned_features (step 1)
/* Fills the plan: selected conditioning frames (t_pos 0), the num_maskmem - 1 previous
 * frames (every r-th), and the object pointers with their temporal distances. */
static int plan_memory(s2_ctx *c, const sam2c_model *m, const s2_mem_bank *bank, int frame_idx,
                       int num_frames, bool reverse, mem_plan *pl) {
    const s2_config *cfg = &m->cfg;
    const int nf = bank->num_frames;
    bool *sel = scratch_bytes(c, (size_t)nf * sizeof(bool));
    select_cond(bank, frame_idx, cfg->max_cond_frames_in_attn, sel);
    const int cap = nf + S2_MAX(cfg->num_maskmem, 1);
    pl->sp = scratch_bytes(c, sizeof(*pl->sp) * (size_t)cap);
    pl->sp_tpos = scratch_bytes(c, sizeof(int) * (size_t)cap);
    pl->n_sp = 0;
    for (int t = 0; t < nf; t++)
        if (sel[t]) { pl->sp[pl->n_sp] = bank->cond[t]; pl->sp_tpos[pl->n_sp++] = 0; }
    if (pl->n_sp == 0)
        return s2_err(SAM2C_ERR_STATE, "track step: frame %d has no conditioning frame to attend to", frame_idx);
    const int r = cfg->memory_temporal_stride_for_eval > 0 ? cfg->memory_temporal_stride_for_eval : 1;
    for (int t_pos = 1; t_pos < cfg->num_maskmem; t_pos++) {
        int t_rel = cfg->num_maskmem - t_pos, prev;
        if (t_rel == 1) prev = reverse ? frame_idx + 1 : frame_idx - 1;
        else if (!reverse) prev = floordiv(frame_idx - 2, r) * r - (t_rel - 2) * r;
        else prev = -floordiv(-(frame_idx + 2), r) * r + (t_rel - 2) * r;
        const s2_frame_out *o = non_cond_at(bank, sel, prev);
        if (o) { pl->sp[pl->n_sp] = o; pl->sp_tpos[pl->n_sp++] = t_pos; }
    }
    pl->n_ptr = 0;
    if (!cfg->use_obj_ptrs_in_encoder) return 0;
    int max_ptrs = S2_MIN(num_frames, cfg->max_obj_ptrs_in_encoder);
    pl->ptr = scratch_bytes(c, sizeof(*pl->ptr) * (size_t)(nf + max_ptrs));
    pl->ptr_pos = scratch_bytes(c, sizeof(int) * (size_t)(nf + max_ptrs));
    for (int t = 0; t < nf; t++) {
        if (!sel[t]) continue;
        if (cfg->only_obj_ptrs_in_the_past_for_eval && (reverse ? t < frame_idx : t > frame_idx)) continue;
        int d = (frame_idx - t) * (reverse ? -1 : 1);
        pl->ptr_pos[pl->n_ptr] = cfg->use_signed_tpos_enc_to_obj_ptrs ? d : abs(frame_idx - t);
        pl->ptr[pl->n_ptr++] = bank->cond[t];
    }
    for (int td = 1; td < max_ptrs; td++) {
        int t = reverse ? frame_idx + td : frame_idx - td;
        if (t < 0 || t >= num_frames) break;
        const s2_frame_out *o = non_cond_at(bank, sel, t);
        if (o) { pl->ptr_pos[pl->n_ptr] = td; pl->ptr[pl->n_ptr++] = o; }
    }
    return 0;
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

/* Writes the pointer tokens and their temporal encodings into memory rows
 * [row0, row0 + P * C/Cm): each pointer split into C/Cm tokens of Cm channels. */
static int ptr_tokens(s2_ctx *c, const sam2c_model *m, const mem_plan *pl, int max_ptrs,
                      int C, int Cm, float *mem, float *mpos) {
    const s2_config *cfg = &m->cfg;
    const int P = pl->n_ptr, k = C / Cm;
    float *obj_pos = s2_scratch_f32(c, (int64_t)P * Cm); // (P, Cm)
    memset(obj_pos, 0, sizeof(float) * (size_t)P * Cm);
    if (cfg->add_tpos_enc_to_obj_ptrs) {
        const int tdim = cfg->proj_tpos_enc_in_obj_ptrs ? C : Cm;
        const int tmax = max_ptrs - 1;
        float *p = s2_scratch_f32(c, P);
        float *pe = s2_scratch_f32(c, (int64_t)P * tdim); // (P, tdim)
        for (int i = 0; i < P; i++) // official divides by 0 when num_frames == 1 (NaN); use 0
            p[i] = tmax > 0 ? (float)pl->ptr_pos[i] / (float)tmax : 0.0f;
        sine_pe_1d(pe, p, P, tdim);
        if (cfg->proj_tpos_enc_in_obj_ptrs)
            s2_op_linear(c, obj_pos, pe, s2_w(m, "obj_ptr_tpos_proj.weight"),
                         s2_w(m, "obj_ptr_tpos_proj.bias"), P, C, Cm);
        else
            memcpy(obj_pos, pe, sizeof(float) * (size_t)P * Cm);
    }
    for (int i = 0; i < P; i++)
        for (int j = 0; j < k; j++) {
            memcpy(mem + ((int64_t)i * k + j) * Cm, pl->ptr[i]->obj_ptr + (int64_t)j * Cm,
                   sizeof(float) * (size_t)Cm);
            memcpy(mpos + ((int64_t)i * k + j) * Cm, obj_pos + (int64_t)i * Cm,
                   sizeof(float) * (size_t)Cm);
        }
    return P * k;
}

/* Spatial memory tokens: bf16 features promoted to f32, (Cm, H, W) -> (HW, Cm), and
 * the position encoding plus maskmem_tpos_enc[num_maskmem - t_pos - 1]. */
static int spatial_tokens(const sam2c_model *m, const mem_plan *pl, const float *pos_enc,
                          int Cm, int64_t N, float *mem, float *mpos) {
    const float *tpos = s2_w(m, "maskmem_tpos_enc");
    for (int f = 0; f < pl->n_sp; f++) {
        const uint16_t *mm = pl->sp[f]->maskmem;
        if (!mm) return s2_err(SAM2C_ERR_STATE, "track step: a memory frame was never encoded");
        const float *tp = tpos + (int64_t)(m->cfg.num_maskmem - pl->sp_tpos[f] - 1) * Cm;
        float *dm = mem + (int64_t)f * N * Cm, *dp = mpos + (int64_t)f * N * Cm;
        for (int ch = 0; ch < Cm; ch++)
            for (int64_t p = 0; p < N; p++) {
                dm[p * Cm + ch] = s2_bf16_to_f32(mm[(int64_t)ch * N + p]);
                dp[p * Cm + ch] = pos_enc[(int64_t)ch * N + p] + tp[ch];
            }
    }
    return 0;
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

/* Builds the memory of a non-initial frame and runs the memory attention. */
static int attend_memory(s2_ctx *c, const sam2c_model *m, int frame_idx, const s2_backbone_out *bb,
                         const s2_mem_bank *bank, int num_frames, bool reverse, float *pix_out,
                         int *n_mem_out, int *n_ptr_out) {
    const float *feat, *fpos;
    int C, H, W;
    top_level(bb, &feat, &fpos, &C, &H, &W);
    const int Cm = s2_memory_dim(m);
    const int64_t N = (int64_t)H * W;
    if (!bank || bank->num_frames < 1)
        return s2_err(SAM2C_ERR_STATE, "track step: no memory bank for frame %d", frame_idx);
    if (Cm > C || C % Cm != 0)
        return s2_err(SAM2C_ERR_SHAPE, "track step: pointers of %d channels cannot split into %d-channel tokens", C, Cm);
    mem_plan pl = {0};
    S2_CHECK(plan_memory(c, m, bank, frame_idx, num_frames, reverse, &pl));
    const int max_ptrs = S2_MIN(num_frames, m->cfg.max_obj_ptrs_in_encoder);
    const int64_t M = pl.n_sp * N + (int64_t)pl.n_ptr * (C / Cm);
    float *mem = s2_scratch_f32(c, M * Cm), *mpos = s2_scratch_f32(c, M * Cm); // (M, Cm)
    float *pos_enc = s2_scratch_f32(c, (int64_t)Cm * N);                        // (Cm, H, W)
    S2_CHECK(s2_memory_pos_enc(m, H, W, pos_enc));
    S2_CHECK(spatial_tokens(m, &pl, pos_enc, Cm, N, mem, mpos));
    int n_ptr_tok = 0;
    if (pl.n_ptr > 0)
        n_ptr_tok = ptr_tokens(c, m, &pl, max_ptrs, C, Cm, mem + pl.n_sp * N * Cm, mpos + pl.n_sp * N * Cm);
    float *cur = s2_scratch_f32(c, N * C), *cpos = s2_scratch_f32(c, N * C), *o = s2_scratch_f32(c, N * C);
    chw_to_tokens(cur, feat, C, N);
    chw_to_tokens(cpos, fpos, C, N);
    s2_memattn_in in = {cur, cpos, H, W, mem, mpos, M, n_ptr_tok};
    S2_CHECK(s2_memory_attention_forward(c, m, &in, o));
    tokens_to_chw(pix_out, o, C, N);
    if (n_mem_out) *n_mem_out = (int)M;
    if (n_ptr_out) *n_ptr_out = n_ptr_tok;
    return 0;
}

// ref: sam2/modeling/sam2_base.py SAM2Base._prepare_memory_conditioned_features
int s2_prepare_memory_conditioned(s2_ctx *c, const sam2c_model *m, int frame_idx,
                                  bool is_init_cond_frame, const s2_backbone_out *bb,
                                  const s2_mem_bank *bank, int num_frames, bool reverse,
                                  float *pix_out, int *out_mem_tokens, int *out_ptr_tokens) {
    if (!c || !c->scratch || !m || !bb || !pix_out || bb->n_levels < 1)
        return s2_err(SAM2C_ERR_ARG, "track step: missing features");
    const float *feat, *fpos;
    int C, H, W;
    top_level(bb, &feat, &fpos, &C, &H, &W);
    const int64_t N = (int64_t)H * W;
    if (out_mem_tokens) *out_mem_tokens = 0;
    if (out_ptr_tokens) *out_ptr_tokens = 0;
    if (m->cfg.num_maskmem == 0) { // SAM on images: no fusion
        memcpy(pix_out, feat, sizeof(float) * (size_t)(C * N));
        return 0;
    }
    s2_arena_mark mk = s2_arena_get_mark(c->scratch);
    int rc = 0;
    if (!is_init_cond_frame) {
        rc = attend_memory(c, m, frame_idx, bb, bank, num_frames, reverse, pix_out,
                           out_mem_tokens, out_ptr_tokens);
    } else if (m->cfg.directly_add_no_mem_embed) {
        const float *e = s2_w(m, "no_mem_embed");
        for (int ch = 0; ch < C; ch++)
            for (int64_t p = 0; p < N; p++) pix_out[ch * N + p] = feat[ch * N + p] + e[ch];
    } else { // a dummy no-memory token (needs mem_dim == hidden_dim, as the official expand)
        const int Cm = s2_memory_dim(m);
        if (Cm != C) {
            rc = s2_err(SAM2C_ERR_UNSUPPORTED, "track step: no_mem_embed of %d channels for %d-channel memories", C, Cm);
        } else {
            float *cur = s2_scratch_f32(c, N * C), *cpos = s2_scratch_f32(c, N * C), *o = s2_scratch_f32(c, N * C);
            chw_to_tokens(cur, feat, C, N);
            chw_to_tokens(cpos, fpos, C, N);
            s2_memattn_in in = {cur, cpos, H, W, s2_w(m, "no_mem_embed"), s2_w(m, "no_mem_pos_enc"), 1, 0};
            rc = s2_memory_attention_forward(c, m, &in, o);
            if (rc == 0) tokens_to_chw(pix_out, o, C, N);
            if (out_mem_tokens) *out_mem_tokens = 1;
        }
    }
    s2_arena_release(c->scratch, mk);
    return rc;
}

/* ---------------------------------------------------------------------------- */
/* SAM heads                                                                    */
/* ---------------------------------------------------------------------------- */

/* What _forward_sam_heads returns for the chosen mask (B = 1). */
typedef struct heads_out {
    float *low;      /* (LH, LW) chosen low-res logits (gated) */
    float *high;     /* (S, S) bilinear upsampling of low */
    float *obj_ptr;  /* (C) */
    float score;
    int n_masks, best;
    float iou[4];
} heads_out;

/* Prompts the heads receive: points (or the (0,0) / -1 padding point) and a mask. */
typedef struct heads_in {
    const float *pix;           /* (C, H, W) image feature (memory-conditioned or raw) */
    const s2_backbone_out *bb;  /* for the high-res features */
    int n_points;
    const float *coords;        /* (n_points, 2) */
    const int32_t *labels;      /* (n_points) */
    const float *mask;          /* (mh, mw) mask logits or NULL */
    int mh, mw;
    bool multimask;
} heads_in;

/* Object pointer from the chosen SAM output token: obj_ptr_proj (MLP or Linear, or
 * identity without pointers), then the no-object mixing. */
static void object_pointer(s2_ctx *c, const sam2c_model *m, const float *token, float score,
                           int C, float *ptr) {
    const s2_config *cfg = &m->cfg;
    if (!cfg->use_obj_ptrs_in_encoder) memcpy(ptr, token, sizeof(float) * (size_t)C);
    else if (cfg->use_mlp_for_obj_ptr_proj) s2_sam_mlp(c, m, "obj_ptr_proj", 3, false, token, 1, ptr);
    else s2_op_linear(c, ptr, token, s2_w(m, "obj_ptr_proj.weight"), s2_w(m, "obj_ptr_proj.bias"), 1, C, C);
    const s2_tensor *nop = s2_w_opt(m, "no_obj_ptr");
    if (!cfg->pred_obj_scores || !nop) return;
    float lam = cfg->soft_no_obj_ptr ? 1.0f / (1.0f + expf(-score)) : (score > 0.0f ? 1.0f : 0.0f);
    const float *e = (const float *)nop->data;
    for (int i = 0; i < C; i++) {
        if (cfg->fixed_no_obj_ptr) ptr[i] = lam * ptr[i];
        ptr[i] = ptr[i] + (1.0f - lam) * e[i];
    }
}

// ref: sam2/modeling/sam2_base.py SAM2Base._forward_sam_heads
/* Prompt encoder + mask decoder, NO_OBJ_SCORE gating, best-IoU choice, pointer.
 * Output arrays must be allocated by the caller before its scratch mark. */
static int forward_sam_heads(s2_ctx *c, const sam2c_model *m, const heads_in *in, heads_out *out) {
    const s2_config *cfg = &m->cfg;
    const int C = in->bb->C, h = in->bb->h[in->bb->n_levels - 1], w = in->bb->w[in->bb->n_levels - 1];
    const int LH = 4 * h, LW = 4 * w, S = cfg->image_size;
    s2_arena_mark mk = s2_arena_get_mark(c->scratch);
    const float pad_xy[2] = {0.0f, 0.0f};
    const int32_t pad_lab[1] = {-1};
    s2_prompt p = {1, in->n_points ? in->n_points : 1, in->n_points ? in->coords : pad_xy,
                   in->n_points ? in->labels : pad_lab, true, NULL, 1};
    if (in->mask) { // antialiased bilinear resize to the prompt encoder's mask size
        if (in->mh == LH && in->mw == LW) p.mask = in->mask;
        else {
            float *mm = s2_scratch_f32(c, (int64_t)LH * LW);
            s2_ref_interp_bilinear(mm, in->mask, 1, in->mh, in->mw, LH, LW, false, true);
            p.mask = mm;
        }
    }
    s2_prompt_out po;
    int rc = s2_prompt_encoder_forward(c, m, &p, &po);
    if (rc < 0) goto done;
    float *pe = s2_scratch_f32(c, (int64_t)C * h * w);
    s2_prompt_dense_pe(m, pe);
    bool hr = cfg->use_high_res_features_in_sam;
    s2_dec_in d = {1, po.Ns, in->pix, pe, po.sparse, po.dense, hr ? in->bb->high_res[0] : NULL,
                   hr ? in->bb->high_res[1] : NULL, in->multimask, false, false};
    s2_dec_out dout;
    rc = s2_mask_decoder_forward(c, m, &d, &dout);
    if (rc < 0) goto done;
    if (dout.H != LH || dout.W != LW) { rc = s2_err(SAM2C_ERR_SHAPE, "track step: decoder masks are %dx%d", dout.H, dout.W); goto done; }
    out->score = dout.obj_score[0];
    const bool is_obj = !cfg->pred_obj_scores || out->score > 0.0f;
    out->n_masks = dout.M;
    out->best = 0;
    for (int i = 0; i < dout.M; i++) {
        if (i < 4) out->iou[i] = dout.iou[i];
        if (in->multimask && dout.iou[i] > dout.iou[out->best]) out->best = i;
    }
    const float *sel = dout.masks + (int64_t)out->best * LH * LW;
    for (int64_t i = 0; i < (int64_t)LH * LW; i++) out->low[i] = is_obj ? sel[i] : S2_NO_OBJ_SCORE;
    s2_ref_interp_bilinear(out->high, out->low, 1, LH, LW, S, S, false, false);
    const float *tok = dout.sam_tokens + (int64_t)(in->multimask && dout.n_sam > 1 ? out->best : 0) * C;
    object_pointer(c, m, tok, out->score, C, out->obj_ptr);
done:
    s2_arena_release(c->scratch, mk);
    return rc;
}

// ref: sam2/modeling/sam2_base.py SAM2Base._use_mask_as_output
/* A binary (S, S) mask prompt used directly as the output: logits +-10, low-res by
 * antialiased downscale; the pointer from a decoder pass on mask_downsample(mask). */
static int use_mask_as_output(s2_ctx *c, const sam2c_model *m, const s2_backbone_out *bb,
                              const float *mask, heads_out *out) {
    const s2_config *cfg = &m->cfg;
    const int S = cfg->image_size, C = bb->C;
    const int64_t SS = (int64_t)S * S;
    for (int64_t i = 0; i < SS; i++) out->high[i] = mask[i] * 20.0f + -10.0f;
    s2_ref_interp_bilinear(out->low, out->high, 1, S, S, S / 4, S / 4, false, true);
    out->n_masks = 1;
    out->best = 0;
    out->iou[0] = 1.0f;
    bool any = false;
    for (int64_t i = 0; i < SS && !any; i++) any = mask[i] > 0.0f;
    const float lam = any ? 1.0f : 0.0f;
    out->score = 20.0f * lam + -10.0f;
    if (!cfg->use_obj_ptrs_in_encoder) {
        memset(out->obj_ptr, 0, sizeof(float) * (size_t)C);
    } else {
        s2_arena_mark mk = s2_arena_get_mark(c->scratch);
        const int q = (S - 4) / 4 + 1;
        float *md = s2_scratch_f32(c, (int64_t)q * q); // (S/4, S/4)
        s2_conv2d_desc d = {1, 1, S, S, 1, 4, 4, 4, 4, 0, 0, 1};
        s2_op_conv2d(c, md, mask, s2_w(m, "mask_downsample.weight"), s2_w(m, "mask_downsample.bias"), &d);
        heads_out tmp = *out; // pointer only: keep low/high, reuse scratch for the rest
        tmp.low = s2_scratch_f32(c, (int64_t)16 * bb->h[bb->n_levels - 1] * bb->w[bb->n_levels - 1]);
        tmp.high = s2_scratch_f32(c, SS);
        heads_in hi = {bb->fpn[bb->n_levels - 1], bb, 0, NULL, NULL, md, q, q, false};
        int rc = forward_sam_heads(c, m, &hi, &tmp);
        s2_arena_release(c->scratch, mk);
        if (rc < 0) return rc;
    }
    const s2_tensor *nop = s2_w_opt(m, "no_obj_ptr");
    if (cfg->pred_obj_scores && nop) {
        const float *e = (const float *)nop->data;
        for (int i = 0; i < C; i++) {
            if (cfg->fixed_no_obj_ptr) out->obj_ptr[i] = lam * out->obj_ptr[i];
            out->obj_ptr[i] = out->obj_ptr[i] + (1.0f - lam) * e[i];
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------- */
/* New memory and the step                                                      */
/* ---------------------------------------------------------------------------- */

// ref: sam2/modeling/sam2_base.py SAM2Base._encode_new_memory
int s2_encode_new_memory(s2_ctx *c, const sam2c_model *m, const s2_backbone_out *bb,
                         const float *high_res_mask, float object_score,
                         bool is_mask_from_pts, float *feat_out) {
    if (!c || !c->scratch || !m || !bb || !high_res_mask || !feat_out || bb->n_levels < 1)
        return s2_err(SAM2C_ERR_ARG, "encode memory: missing input");
    const s2_config *cfg = &m->cfg;
    const float *feat, *fpos;
    int C, H, W;
    top_level(bb, &feat, &fpos, &C, &H, &W);
    const int S = cfg->image_size, Cm = s2_memory_dim(m);
    const int64_t SS = (int64_t)S * S, N = (int64_t)H * W;
    s2_arena_mark mk = s2_arena_get_mark(c->scratch);
    float *mm = s2_scratch_f32(c, SS); // (S, S) mask_for_mem
    const bool binarize = cfg->binarize_mask_from_pts_for_mem_enc && is_mask_from_pts;
    for (int64_t i = 0; i < SS; i++) {
        float v = binarize ? (high_res_mask[i] > 0.0f ? 1.0f : 0.0f) : 1.0f / (1.0f + expf(-high_res_mask[i]));
        if (cfg->sigmoid_scale_for_mem_enc != 1.0f) v = v * cfg->sigmoid_scale_for_mem_enc;
        if (cfg->sigmoid_bias_for_mem_enc != 0.0f) v = v + cfg->sigmoid_bias_for_mem_enc;
        mm[i] = v;
    }
    s2_dump(c, "mask_for_mem", mm, 4, (int64_t[]){1, 1, S, S});
    int rc = s2_memory_encoder_forward(c, m, feat, H, W, mm, S, feat_out, NULL);
    const s2_tensor *ne = s2_w_opt(m, "no_obj_embed_spatial");
    if (rc == 0 && ne) {
        const float lam = object_score > 0.0f ? 1.0f : 0.0f;
        const float *e = (const float *)ne->data;
        for (int ch = 0; ch < Cm; ch++)
            for (int64_t p = 0; p < N; p++) feat_out[ch * N + p] += (1.0f - lam) * e[ch];
    }
    s2_arena_release(c->scratch, mk);
    return rc;
}

// ref: sam2/modeling/sam2_base.py SAM2Base._use_multimask
static bool use_multimask(const s2_config *cfg, bool is_init_cond_frame, int n_points) {
    return cfg->multimask_output_in_sam &&
           (is_init_cond_frame || cfg->multimask_output_for_tracking) &&
           cfg->multimask_min_pt_num <= n_points && n_points <= cfg->multimask_max_pt_num;
}

/* Carves the step's outputs out of scratch (before any temporary mark). */
static void alloc_out(s2_ctx *c, const sam2c_model *m, const s2_backbone_out *bb, s2_track_out *o) {
    memset(o, 0, sizeof *o);
    o->C = bb->C;
    o->H = bb->h[bb->n_levels - 1];
    o->W = bb->w[bb->n_levels - 1];
    o->LH = 4 * o->H;
    o->LW = 4 * o->W;
    o->S = m->cfg.image_size;
    o->Cm = s2_memory_dim(m);
    o->pred_masks = s2_scratch_f32(c, (int64_t)o->LH * o->LW);
    o->pred_masks_high_res = s2_scratch_f32(c, (int64_t)o->S * o->S);
    o->obj_ptr = s2_scratch_f32(c, o->C);
}

// ref: sam2/modeling/sam2_base.py SAM2Base.track_step / _track_step
int s2_track_step(s2_ctx *c, const sam2c_model *m, const s2_track_in *in, s2_track_out *out) {
    if (!c || !c->scratch || !m || !in || !out || !in->bb || in->bb->n_levels < 1)
        return s2_err(SAM2C_ERR_ARG, "track step: missing input");
    if (in->n_points < 0 || (in->n_points > 0 && (!in->point_coords || !in->point_labels)))
        return s2_err(SAM2C_ERR_ARG, "track step: bad point prompt");
    const s2_config *cfg = &m->cfg;
    alloc_out(c, m, in->bb, out);
    if (out->LH * 4 != out->S || out->LW * 4 != out->S)
        return s2_err(SAM2C_ERR_SHAPE, "track step: %dx%d features do not match image size %d", out->H, out->W, out->S);
    heads_out ho = {out->pred_masks, out->pred_masks_high_res, out->obj_ptr, 0, 0, 0, {0}};
    int rc;
    s2_arena_mark mk = s2_arena_get_mark(c->scratch);
    if (in->mask_input && cfg->use_mask_input_as_output_without_sam) {
        rc = use_mask_as_output(c, m, in->bb, in->mask_input, &ho);
    } else {
        float *pix = s2_scratch_f32(c, (int64_t)out->C * out->H * out->W); // (C, H, W)
        rc = s2_prepare_memory_conditioned(c, m, in->frame_idx, in->is_init_cond_frame, in->bb,
                                           in->bank, in->num_frames, in->reverse, pix,
                                           &out->num_mem_tokens, &out->num_obj_ptr_tokens);
        const float *mask = in->mask_input;
        int mh = out->S, mw = out->S;
        if (in->prev_sam_mask_logits) { mask = in->prev_sam_mask_logits; mh = out->LH; mw = out->LW; }
        out->multimask = use_multimask(cfg, in->is_init_cond_frame, in->n_points);
        heads_in hi = {pix, in->bb, in->n_points, in->point_coords, in->point_labels, mask, mh, mw,
                       out->multimask};
        if (rc == 0) rc = forward_sam_heads(c, m, &hi, &ho);
    }
    s2_arena_release(c->scratch, mk);
    if (rc < 0) return rc;
    out->object_score = ho.score;
    out->best = ho.best;
    out->n_masks = ho.n_masks;
    memcpy(out->iou, ho.iou, sizeof out->iou);
    if (in->run_mem_encoder && cfg->num_maskmem > 0) {
        out->maskmem = s2_scratch_f32(c, (int64_t)out->Cm * out->H * out->W);
        rc = s2_encode_new_memory(c, m, in->bb, out->pred_masks_high_res, out->object_score,
                                  in->n_points > 0, out->maskmem);
    }
    return rc;
}
