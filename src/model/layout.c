/* The state_dict a configuration implies, in the order PyTorch's model.state_dict()
 * yields it (a module's own parameters first, then its children in registration order).
 * ref: sam2/modeling/sam2_base.py SAM2Base.__init__ and every submodule's __init__ */
#include "model/model.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    s2_layout *l;
    int rc;
} lay;

/* Appends one tensor; shape given as a -1 terminated list. */
static void add(lay *L, const int64_t *shape, const char *fmt, ...) S2_PRINTF(3, 4);
static void add(lay *L, const int64_t *shape, const char *fmt, ...) {
    if (L->rc < 0) return;
    s2_layout *l = L->l;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 256;
        s2_layout_entry *e = s2_realloc(l->e, (size_t)cap * sizeof *e);
        if (!e) { L->rc = SAM2C_ERR_NOMEM; return; }
        l->e = e;
        l->cap = cap;
    }
    s2_layout_entry *e = &l->e[l->n++];
    memset(e, 0, sizeof *e);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->name, sizeof e->name, fmt, ap);
    va_end(ap);
    while (shape[e->ndim] >= 0 && e->ndim < 5) { e->shape[e->ndim] = shape[e->ndim]; e->ndim++; }
}

#define SH(...) ((const int64_t[]){__VA_ARGS__, -1})

/* nn.Linear(in, out) under prefix. */
static void linear(lay *L, const char *p, int64_t in, int64_t out) {
    add(L, SH(out, in), "%s.weight", p);
    add(L, SH(out), "%s.bias", p);
}
static void norm(lay *L, const char *p, int64_t c) {
    add(L, SH(c), "%s.weight", p);
    add(L, SH(c), "%s.bias", p);
}
static void conv(lay *L, const char *p, int64_t in, int64_t out, int64_t k) {
    add(L, SH(out, in, k, k), "%s.weight", p);
    add(L, SH(out), "%s.bias", p);
}
/* sam2_utils.MLP(input_dim, hidden_dim, output_dim, num_layers). */
static void mlp(lay *L, const char *p, int64_t in, int64_t hid, int64_t out, int n) {
    char b[256];
    for (int i = 0; i < n; i++) {
        snprintf(b, sizeof b, "%s.layers.%d", p, i);
        linear(L, b, i == 0 ? in : hid, i == n - 1 ? out : hid);
    }
}
/* sam/transformer.py Attention / RoPEAttention: q, k, v, out projections. */
static void attention(lay *L, const char *p, int64_t dim, int64_t internal, int64_t kv_in) {
    char b[256];
    snprintf(b, sizeof b, "%s.q_proj", p); linear(L, b, dim, internal);
    snprintf(b, sizeof b, "%s.k_proj", p); linear(L, b, kv_in, internal);
    snprintf(b, sizeof b, "%s.v_proj", p); linear(L, b, kv_in, internal);
    snprintf(b, sizeof b, "%s.out_proj", p); linear(L, b, internal, dim);
}

static void layout_trunk(lay *L, const s2_config *c) {
    const s2_hiera_cfg *h = &c->hiera;
    int E = h->embed_dim;
    add(L, SH(1, E, h->bkg_pe[0], h->bkg_pe[1]), "image_encoder.trunk.pos_embed");
    add(L, SH(1, E, h->window_spec[0], h->window_spec[0]), "image_encoder.trunk.pos_embed_window");
    conv(L, "image_encoder.trunk.patch_embed.proj", 3, E, h->patch_kernel);
    s2_hiera_block bl[S2_MAX_BLOCKS];
    int n = s2_hiera_blocks(c, bl, S2_MAX_BLOCKS);
    char b[160];
    for (int i = 0; i < n; i++) {
        int d = bl[i].dim, o = bl[i].dim_out;
        snprintf(b, sizeof b, "image_encoder.trunk.blocks.%d.norm1", i); norm(L, b, d);
        snprintf(b, sizeof b, "image_encoder.trunk.blocks.%d.attn.qkv", i); linear(L, b, d, 3 * o);
        snprintf(b, sizeof b, "image_encoder.trunk.blocks.%d.attn.proj", i); linear(L, b, o, o);
        snprintf(b, sizeof b, "image_encoder.trunk.blocks.%d.norm2", i); norm(L, b, o);
        snprintf(b, sizeof b, "image_encoder.trunk.blocks.%d.mlp", i); mlp(L, b, o, bl[i].mlp_hidden, o, 2);
        if (d != o) { snprintf(b, sizeof b, "image_encoder.trunk.blocks.%d.proj", i); linear(L, b, d, o); }
    }
    for (int i = 0; i < 4; i++) {
        snprintf(b, sizeof b, "image_encoder.neck.convs.%d.conv", i);
        conv(L, b, c->backbone_channel_list[i], c->d_model, 1);
    }
}

static void layout_memory_attention(lay *L, const s2_config *c) {
    int D = c->ma_d_model;
    char b[160];
    for (int i = 0; i < c->ma_num_layers; i++) {
        snprintf(b, sizeof b, "memory_attention.layers.%d.self_attn", i); attention(L, b, D, D, D);
        snprintf(b, sizeof b, "memory_attention.layers.%d.cross_attn_image", i);
        attention(L, b, D, D, c->ma_kv_in_dim);
        snprintf(b, sizeof b, "memory_attention.layers.%d.linear1", i); linear(L, b, D, c->ma_dim_ff);
        snprintf(b, sizeof b, "memory_attention.layers.%d.linear2", i); linear(L, b, c->ma_dim_ff, D);
        for (int k = 1; k <= 3; k++) {
            snprintf(b, sizeof b, "memory_attention.layers.%d.norm%d", i, k); norm(L, b, D);
        }
    }
    norm(L, "memory_attention.norm", D);
}

/* ref: memory_encoder.py MaskDownSampler: log2(total_stride)/log2(stride) conv+LN+GELU
 * stages multiplying channels by stride^2, then a 1x1 conv to embed_dim. */
int s2_mds_num_layers(const s2_config *c) {
    int n = 0;
    for (int s = 1; s < c->mds_total_stride; s *= c->mds_stride) n++;
    return n;
}

static void layout_memory_encoder(lay *L, const s2_config *c) {
    char b[160];
    int nl = s2_mds_num_layers(c), in = 1;
    for (int i = 0; i < nl; i++) {
        int out = in * c->mds_stride * c->mds_stride;
        snprintf(b, sizeof b, "memory_encoder.mask_downsampler.encoder.%d", 3 * i);
        conv(L, b, in, out, c->mds_kernel);
        snprintf(b, sizeof b, "memory_encoder.mask_downsampler.encoder.%d", 3 * i + 1);
        norm(L, b, out);
        in = out;
    }
    snprintf(b, sizeof b, "memory_encoder.mask_downsampler.encoder.%d", 3 * nl);
    conv(L, b, in, c->mds_embed_dim, 1);
    conv(L, "memory_encoder.pix_feat_proj", c->mem_in_dim, c->mem_in_dim, 1);
    int D = c->fuser_dim;
    for (int i = 0; i < c->fuser_layers; i++) {
        snprintf(b, sizeof b, "memory_encoder.fuser.layers.%d.gamma", i);
        add(L, SH(D), "%s", b);
        snprintf(b, sizeof b, "memory_encoder.fuser.layers.%d.dwconv.weight", i);
        add(L, SH(D, c->cx_dwconv ? 1 : D, c->cx_kernel, c->cx_kernel), "%s", b);
        snprintf(b, sizeof b, "memory_encoder.fuser.layers.%d.dwconv.bias", i);
        add(L, SH(D), "%s", b);
        snprintf(b, sizeof b, "memory_encoder.fuser.layers.%d.norm", i); norm(L, b, D);
        snprintf(b, sizeof b, "memory_encoder.fuser.layers.%d.pwconv1", i); linear(L, b, D, 4 * D);
        snprintf(b, sizeof b, "memory_encoder.fuser.layers.%d.pwconv2", i); linear(L, b, 4 * D, D);
    }
    if (c->mem_out_dim != c->mem_in_dim)
        conv(L, "memory_encoder.out_proj", c->mem_in_dim, c->mem_out_dim, 1);
}

static void layout_prompt_encoder(lay *L, const s2_config *c) {
    int D = c->d_model, mc = c->mask_in_chans;
    add(L, SH(2, D / 2), "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix");
    for (int i = 0; i < 4; i++) add(L, SH(1, D), "sam_prompt_encoder.point_embeddings.%d.weight", i);
    add(L, SH(1, D), "sam_prompt_encoder.not_a_point_embed.weight");
    conv(L, "sam_prompt_encoder.mask_downscaling.0", 1, mc / 4, 2);
    norm(L, "sam_prompt_encoder.mask_downscaling.1", mc / 4);
    conv(L, "sam_prompt_encoder.mask_downscaling.3", mc / 4, mc, 2);
    norm(L, "sam_prompt_encoder.mask_downscaling.4", mc);
    conv(L, "sam_prompt_encoder.mask_downscaling.6", mc, D, 1);
    add(L, SH(1, D), "sam_prompt_encoder.no_mask_embed.weight");
}

static void layout_mask_decoder(lay *L, const s2_config *c) {
    int D = c->d_model, T = c->num_multimask_outputs + 1;
    char b[160];
    for (int i = 0; i < c->dec_depth; i++) {
        const char *p = "sam_mask_decoder.transformer.layers";
        snprintf(b, sizeof b, "%s.%d.self_attn", p, i); attention(L, b, D, D, D);
        snprintf(b, sizeof b, "%s.%d.norm1", p, i); norm(L, b, D);
        snprintf(b, sizeof b, "%s.%d.cross_attn_token_to_image", p, i); attention(L, b, D, D / 2, D);
        snprintf(b, sizeof b, "%s.%d.norm2", p, i); norm(L, b, D);
        snprintf(b, sizeof b, "%s.%d.mlp", p, i); mlp(L, b, D, c->dec_mlp_dim, D, 2);
        snprintf(b, sizeof b, "%s.%d.norm3", p, i); norm(L, b, D);
        snprintf(b, sizeof b, "%s.%d.norm4", p, i); norm(L, b, D);
        snprintf(b, sizeof b, "%s.%d.cross_attn_image_to_token", p, i); attention(L, b, D, D / 2, D);
    }
    attention(L, "sam_mask_decoder.transformer.final_attn_token_to_image", D, D / 2, D);
    norm(L, "sam_mask_decoder.transformer.norm_final_attn", D);
    add(L, SH(1, D), "sam_mask_decoder.iou_token.weight");
    add(L, SH(T, D), "sam_mask_decoder.mask_tokens.weight");
    if (c->pred_obj_scores) add(L, SH(1, D), "sam_mask_decoder.obj_score_token.weight");
    add(L, SH(D, D / 4, 2, 2), "sam_mask_decoder.output_upscaling.0.weight");
    add(L, SH(D / 4), "sam_mask_decoder.output_upscaling.0.bias");
    norm(L, "sam_mask_decoder.output_upscaling.1", D / 4);
    add(L, SH(D / 4, D / 8, 2, 2), "sam_mask_decoder.output_upscaling.3.weight");
    add(L, SH(D / 8), "sam_mask_decoder.output_upscaling.3.bias");
    if (c->use_high_res_features_in_sam) {
        conv(L, "sam_mask_decoder.conv_s0", D, D / 8, 1);
        conv(L, "sam_mask_decoder.conv_s1", D, D / 4, 1);
    }
    for (int i = 0; i < T; i++) {
        snprintf(b, sizeof b, "sam_mask_decoder.output_hypernetworks_mlps.%d", i);
        mlp(L, b, D, D, D / 8, 3);
    }
    mlp(L, "sam_mask_decoder.iou_prediction_head", D, c->iou_head_hidden_dim, T, c->iou_head_depth);
    if (c->pred_obj_scores) {
        if (c->pred_obj_scores_mlp) mlp(L, "sam_mask_decoder.pred_obj_score_head", D, D, 1, 3);
        else linear(L, "sam_mask_decoder.pred_obj_score_head", D, 1);
    }
}

int s2_layout_build(const s2_config *c, s2_layout *out) {
    memset(out, 0, sizeof *out);
    lay L = {out, 0};
    int D = c->d_model, M = c->mem_out_dim;
    add(&L, SH(c->num_maskmem, 1, 1, M), "maskmem_tpos_enc");
    add(&L, SH(1, 1, D), "no_mem_embed");
    add(&L, SH(1, 1, D), "no_mem_pos_enc");
    if (c->pred_obj_scores && c->use_obj_ptrs_in_encoder) add(&L, SH(1, D), "no_obj_ptr");
    if (c->no_obj_embed_spatial) add(&L, SH(1, M), "no_obj_embed_spatial");
    layout_trunk(&L, c);
    conv(&L, "mask_downsample", 1, 1, 4);
    layout_memory_attention(&L, c);
    layout_memory_encoder(&L, c);
    layout_prompt_encoder(&L, c);
    layout_mask_decoder(&L, c);
    if (c->use_obj_ptrs_in_encoder) {
        if (c->use_mlp_for_obj_ptr_proj) mlp(&L, "obj_ptr_proj", D, D, D, 3);
        else linear(&L, "obj_ptr_proj", D, D);
    }
    if (c->proj_tpos_enc_in_obj_ptrs) linear(&L, "obj_ptr_tpos_proj", D, M);
    if (L.rc < 0) s2_layout_free(out);
    return L.rc;
}

void s2_layout_free(s2_layout *l) {
    if (!l) return;
    free(l->e);
    memset(l, 0, sizeof *l);
}
