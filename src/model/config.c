/* Model configuration: official defaults, the eight official layouts, config JSON.
 * ref: sam2/configs/sam2.1/sam2.1_hiera_*.yaml, sam2/modeling/sam2_base.py SAM2Base.__init__,
 *      sam2/build_sam.py (apply_postprocessing overrides) */
#include "model/config.h"
#include "io/json.h"
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* SAM 2.1 tiny + build_sam2(apply_postprocessing=True) + video predictor defaults. */
void s2_config_defaults(s2_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "custom");
    c->version = 2;
    c->image_size = 1024;
    c->backbone_stride = 16;
    s2_hiera_cfg *h = &c->hiera;
    h->embed_dim = 96;
    h->num_heads = 1;
    h->n_stages = 4;
    memcpy(h->stages, (int[]){1, 2, 7, 2}, sizeof h->stages);
    h->q_pool = 3;
    h->q_stride[0] = h->q_stride[1] = 2;
    h->dim_mul = h->head_mul = 2.0;
    memcpy(h->global_att_blocks, (int[]){5, 7, 9}, 3 * sizeof(int));
    h->n_global = 3;
    memcpy(h->window_spec, (int[]){8, 4, 14, 7}, sizeof h->window_spec);
    h->bkg_pe[0] = h->bkg_pe[1] = 7;
    h->patch_kernel = 7;
    h->patch_stride = 4;
    h->patch_padding = 3;

    c->d_model = 256;
    memcpy(c->backbone_channel_list, (int[]){768, 384, 192, 96}, sizeof c->backbone_channel_list);
    c->fpn_top_down_levels[0] = 2;
    c->fpn_top_down_levels[1] = 3;
    c->n_fpn_top_down = 2;
    c->scalp = 1;
    c->neck_pe_num_pos_feats = 256;
    c->neck_pe_temperature = 10000;

    c->dynamic_multimask_via_stability = true;
    c->dynamic_multimask_stability_delta = 0.05f;
    c->dynamic_multimask_stability_thresh = 0.98f;
    c->mask_in_chans = 16;
    c->dec_num_heads = 8;
    c->dec_mlp_dim = 2048;
    c->dec_depth = 2;
    c->iou_head_depth = 3;
    c->iou_head_hidden_dim = 256;
    c->num_multimask_outputs = 3;

    c->mem_out_dim = 64;
    c->mem_in_dim = 256;
    c->mds_embed_dim = 256;
    c->mds_kernel = 3;
    c->mds_stride = 2;
    c->mds_padding = 1;
    c->mds_total_stride = 16;
    c->fuser_layers = 2;
    c->fuser_dim = 256;
    c->cx_kernel = 7;
    c->cx_padding = 3;
    c->cx_dwconv = true;
    c->mem_pe_num_pos_feats = 64;
    c->mem_pe_temperature = 10000;

    c->ma_d_model = 256;
    c->ma_num_layers = 4;
    c->ma_dim_ff = 2048;
    c->ma_num_heads = 1;
    c->ma_kv_in_dim = 64;
    c->ma_rope_theta = 10000;
    c->ma_feat_sizes[0] = c->ma_feat_sizes[1] = 64;
    c->ma_pos_enc_at_input = true;
    c->ma_pos_enc_at_attn = false;
    c->ma_pos_enc_at_cross_attn_keys = true;
    c->ma_pos_enc_at_cross_attn_queries = false;
    c->ma_rope_k_repeat = true;

    c->num_maskmem = 7;
    c->sigmoid_scale_for_mem_enc = 20.0f;
    c->sigmoid_bias_for_mem_enc = -10.0f;
    c->binarize_mask_from_pts_for_mem_enc = true; /* as build_sam2_video_predictor sets it */
    c->use_mask_input_as_output_without_sam = true;
    c->max_cond_frames_in_attn = -1;
    c->directly_add_no_mem_embed = true;
    c->no_obj_embed_spatial = true;
    c->use_high_res_features_in_sam = true;
    c->multimask_output_in_sam = true;
    c->multimask_min_pt_num = 0;
    c->multimask_max_pt_num = 1;
    c->multimask_output_for_tracking = true;
    c->use_multimask_token_for_obj_ptr = true;
    c->iou_prediction_use_sigmoid = true;
    c->memory_temporal_stride_for_eval = 1;
    c->non_overlap_masks_for_mem_enc = false;
    c->use_obj_ptrs_in_encoder = true;
    c->max_obj_ptrs_in_encoder = 16;
    c->add_tpos_enc_to_obj_ptrs = true;
    c->proj_tpos_enc_in_obj_ptrs = true;
    c->use_signed_tpos_enc_to_obj_ptrs = true;
    c->only_obj_ptrs_in_the_past_for_eval = true;
    c->pred_obj_scores = true;
    c->pred_obj_scores_mlp = true;
    c->fixed_no_obj_ptr = true;
    c->soft_no_obj_ptr = false;
    c->use_mlp_for_obj_ptr_proj = true;

    c->fill_hole_area = 8;
    c->non_overlap_masks = false;
    c->clear_non_cond_mem_around_input = false;
    c->add_all_frames_to_correct_as_cond = true; /* sam2c keeps corrections; official: false */
    c->mask_threshold = 0.0f;
}

typedef struct {
    const char *name, *alias;
    int version, embed_dim, num_heads, stages[4], n_global, global[3], window_spec[4], bkg;
    int channels[4];
} s2_official;

static const s2_official g_official[] = {
    {"sam2.1_hiera_tiny", "sam2.1_hiera_t", 2, 96, 1, {1, 2, 7, 2}, 3, {5, 7, 9}, {8, 4, 14, 7}, 7, {768, 384, 192, 96}},
    {"sam2.1_hiera_small", "sam2.1_hiera_s", 2, 96, 1, {1, 2, 11, 2}, 3, {7, 10, 13}, {8, 4, 14, 7}, 7, {768, 384, 192, 96}},
    {"sam2.1_hiera_base_plus", "sam2.1_hiera_b+", 2, 112, 2, {2, 3, 16, 3}, 3, {12, 16, 20}, {8, 4, 14, 7}, 14, {896, 448, 224, 112}},
    {"sam2.1_hiera_large", "sam2.1_hiera_l", 2, 144, 2, {2, 6, 36, 4}, 3, {23, 33, 43}, {8, 4, 16, 8}, 7, {1152, 576, 288, 144}},
    {"sam2_hiera_tiny", "sam2_hiera_t", 1, 96, 1, {1, 2, 7, 2}, 3, {5, 7, 9}, {8, 4, 14, 7}, 7, {768, 384, 192, 96}},
    {"sam2_hiera_small", "sam2_hiera_s", 1, 96, 1, {1, 2, 11, 2}, 3, {7, 10, 13}, {8, 4, 14, 7}, 7, {768, 384, 192, 96}},
    {"sam2_hiera_base_plus", "sam2_hiera_b+", 1, 112, 2, {2, 3, 16, 3}, 3, {12, 16, 20}, {8, 4, 14, 7}, 14, {896, 448, 224, 112}},
    {"sam2_hiera_large", "sam2_hiera_l", 1, 144, 2, {2, 6, 36, 4}, 3, {23, 33, 43}, {8, 4, 16, 8}, 7, {1152, 576, 288, 144}},
};

int s2_config_official_count(void) { return (int)(sizeof g_official / sizeof g_official[0]); }
const char *s2_config_official_name(int i) { return g_official[i].name; }

/* Applies one official layout on top of the defaults. */
static void apply_official(const s2_official *o, s2_config *c) {
    s2_config_defaults(c);
    snprintf(c->name, sizeof c->name, "%s", o->name);
    c->version = o->version;
    c->hiera.embed_dim = o->embed_dim;
    c->hiera.num_heads = o->num_heads;
    memcpy(c->hiera.stages, o->stages, sizeof o->stages);
    c->hiera.n_global = o->n_global;
    memcpy(c->hiera.global_att_blocks, o->global, sizeof o->global);
    memcpy(c->hiera.window_spec, o->window_spec, sizeof o->window_spec);
    c->hiera.bkg_pe[0] = c->hiera.bkg_pe[1] = o->bkg;
    memcpy(c->backbone_channel_list, o->channels, sizeof o->channels);
    if (o->version == 1) { /* SAM 2.0: no tpos projection, no spatial no-object embedding */
        c->no_obj_embed_spatial = false;
        c->add_tpos_enc_to_obj_ptrs = false;
        c->proj_tpos_enc_in_obj_ptrs = false;
        c->use_signed_tpos_enc_to_obj_ptrs = false;
    }
}

int s2_config_official(const char *name, s2_config *c) {
    static const struct { const char *short_name, *full; } aliases[] = {
        {"tiny", "sam2.1_hiera_tiny"}, {"small", "sam2.1_hiera_small"},
        {"base+", "sam2.1_hiera_base_plus"}, {"base_plus", "sam2.1_hiera_base_plus"},
        {"large", "sam2.1_hiera_large"}, {"t", "sam2.1_hiera_tiny"}, {"s", "sam2.1_hiera_small"},
        {"b+", "sam2.1_hiera_base_plus"}, {"l", "sam2.1_hiera_large"},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(name, aliases[i].short_name) == 0) name = aliases[i].full;
    for (int i = 0; i < s2_config_official_count(); i++) {
        if (strcmp(name, g_official[i].name) == 0 || strcmp(name, g_official[i].alias) == 0) {
            apply_official(&g_official[i], c);
            return SAM2C_OK;
        }
    }
    return s2_err(SAM2C_ERR_ARG, "unknown model '%s' (expected tiny, small, base+, large or an official name such as sam2.1_hiera_t)", name);
}

/* ---- derived Hiera block table ---- */

void s2_hiera_stage_ends(const s2_config *c, int ends[4]) {
    int acc = 0;
    for (int i = 0; i < c->hiera.n_stages && i < 4; i++) {
        acc += c->hiera.stages[i];
        ends[i] = acc - 1;
    }
}

static bool int_in(int x, const int *list, int n) {
    for (int i = 0; i < n; i++)
        if (list[i] == x) return true;
    return false;
}

/* ref: sam2/modeling/backbones/hieradet.py Hiera.__init__ (block loop): the window size is
 * taken from the current stage BEFORE the stage counter moves, so the first block of a
 * new stage keeps the previous stage's window. */
int s2_hiera_blocks(const s2_config *c, s2_hiera_block *out, int max) {
    const s2_hiera_cfg *h = &c->hiera;
    int ends[4] = {0}, qpool[4], nq = 0, depth = 0;
    s2_hiera_stage_ends(c, ends);
    for (int i = 0; i < h->n_stages; i++) depth += h->stages[i];
    for (int i = 0; i < h->n_stages - 1 && nq < h->q_pool; i++) qpool[nq++] = ends[i] + 1;
    int embed = h->embed_dim, heads = h->num_heads, stage = 1;
    for (int i = 0; i < depth && i < max; i++) {
        int dim_out = embed;
        int win = h->window_spec[stage - 1];
        if (int_in(i, h->global_att_blocks, h->n_global)) win = 0;
        if (int_in(i - 1, ends, h->n_stages)) {
            dim_out = (int)(embed * h->dim_mul);
            heads = (int)(heads * h->head_mul);
            stage++;
        }
        out[i] = (s2_hiera_block){embed, dim_out, heads, win, int_in(i, qpool, nq), dim_out * 4};
        embed = dim_out;
    }
    return depth;
}

/* ---- config JSON (schema of fixtures/micro/config.json) ---- */

/* JSON number to int without undefined behaviour: NaN and values beyond int become
 * INT_MIN (what x86 produced before), which validation then refuses where it matters. */
static int json_to_int(double d) {
    return d >= -2147483648.0 && d <= 2147483647.0 ? (int)d : INT_MIN;
}

/* Reads an integer array of up to max entries; returns the count or -1 when absent. */
static int json_int_array(const s2_json *o, const char *key, int *out, int max) {
    const s2_json *a = s2_json_get(o, key);
    if (!a || a->type != S2_JARR) return -1;
    int n = 0;
    for (int i = 0; i < a->n && n < max; i++) {
        if (a->items[i].type != S2_JNUM) return -1;
        out[n++] = json_to_int(a->items[i].num);
    }
    return n;
}

static void get_int(const s2_json *o, const char *key, int *v) {
    double d;
    if (o && s2_json_num(o, key, &d)) *v = json_to_int(d);
}
static void get_dbl(const s2_json *o, const char *key, double *v) {
    double d;
    if (o && s2_json_num(o, key, &d)) *v = d;
}
static void get_flt(const s2_json *o, const char *key, float *v) {
    double d;
    if (o && s2_json_num(o, key, &d)) *v = (float)d;
}
static void get_bool(const s2_json *o, const char *key, bool *v) {
    bool b;
    if (o && s2_json_bool(o, key, &b)) *v = b;
}

/* Finds an object member whose key starts with prefix ("image_model_overrides (...)"). */
static const s2_json *get_prefixed(const s2_json *o, const char *prefix) {
    if (!o || o->type != S2_JOBJ) return NULL;
    for (int i = 0; i < o->n; i++)
        if (strncmp(o->keys[i], prefix, strlen(prefix)) == 0) return &o->items[i];
    return NULL;
}

static void read_trunk(const s2_json *t, s2_config *c) {
    s2_hiera_cfg *h = &c->hiera;
    int n;
    get_int(t, "embed_dim", &h->embed_dim);
    get_int(t, "num_heads", &h->num_heads);
    if ((n = json_int_array(t, "stages", h->stages, 4)) > 0) h->n_stages = n;
    /* The official Hiera default global blocks are (12, 16, 20) when absent. */
    if ((n = json_int_array(t, "global_att_blocks", h->global_att_blocks, S2_MAX_GLOBAL)) >= 0)
        h->n_global = n;
    json_int_array(t, "window_spec", h->window_spec, 4);
    json_int_array(t, "window_pos_embed_bkg_spatial_size", h->bkg_pe, 2);
    get_int(t, "q_pool", &h->q_pool);
    json_int_array(t, "q_stride", h->q_stride, 2);
    get_dbl(t, "dim_mul", &h->dim_mul);
    get_dbl(t, "head_mul", &h->head_mul);
}

static void read_neck(const s2_json *nk, s2_config *c) {
    int n;
    get_int(nk, "d_model", &c->d_model);
    json_int_array(nk, "backbone_channel_list", c->backbone_channel_list, 4);
    if ((n = json_int_array(nk, "fpn_top_down_levels", c->fpn_top_down_levels, 4)) >= 0)
        c->n_fpn_top_down = n;
    const s2_json *pe = s2_json_get(nk, "position_encoding");
    get_int(pe, "num_pos_feats", &c->neck_pe_num_pos_feats);
    get_dbl(pe, "temperature", &c->neck_pe_temperature);
}

static void read_memory_attention(const s2_json *ma, s2_config *c) {
    get_int(ma, "d_model", &c->ma_d_model);
    get_int(ma, "num_layers", &c->ma_num_layers);
    get_bool(ma, "pos_enc_at_input", &c->ma_pos_enc_at_input);
    const s2_json *l = s2_json_get(ma, "layer");
    get_int(l, "dim_feedforward", &c->ma_dim_ff);
    get_bool(l, "pos_enc_at_attn", &c->ma_pos_enc_at_attn);
    get_bool(l, "pos_enc_at_cross_attn_keys", &c->ma_pos_enc_at_cross_attn_keys);
    get_bool(l, "pos_enc_at_cross_attn_queries", &c->ma_pos_enc_at_cross_attn_queries);
    const s2_json *sa = s2_json_get(l, "self_attention");
    get_int(sa, "num_heads", &c->ma_num_heads);
    get_dbl(sa, "rope_theta", &c->ma_rope_theta);
    json_int_array(sa, "feat_sizes", c->ma_feat_sizes, 2);
    const s2_json *ca = s2_json_get(l, "cross_attention");
    get_int(ca, "kv_in_dim", &c->ma_kv_in_dim);
    get_bool(ca, "rope_k_repeat", &c->ma_rope_k_repeat);
}

static void read_memory_encoder(const s2_json *me, s2_config *c) {
    get_int(me, "out_dim", &c->mem_out_dim);
    get_int(me, "in_dim", &c->mem_in_dim);
    const s2_json *pe = s2_json_get(me, "position_encoding");
    get_int(pe, "num_pos_feats", &c->mem_pe_num_pos_feats);
    get_dbl(pe, "temperature", &c->mem_pe_temperature);
    const s2_json *md = s2_json_get(me, "mask_downsampler");
    get_int(md, "embed_dim", &c->mds_embed_dim);
    get_int(md, "kernel_size", &c->mds_kernel);
    get_int(md, "stride", &c->mds_stride);
    get_int(md, "padding", &c->mds_padding);
    get_int(md, "total_stride", &c->mds_total_stride);
    const s2_json *fu = s2_json_get(me, "fuser");
    get_int(fu, "num_layers", &c->fuser_layers);
    const s2_json *cx = s2_json_get(fu, "layer");
    get_int(cx, "dim", &c->fuser_dim);
    get_int(cx, "kernel_size", &c->cx_kernel);
    get_int(cx, "padding", &c->cx_padding);
    get_bool(cx, "use_dwconv", &c->cx_dwconv);
}

/* SAM2Base constructor arguments at the top level of the model block. */
static void read_base_flags(const s2_json *m, s2_config *c) {
    get_int(m, "num_maskmem", &c->num_maskmem);
    get_int(m, "image_size", &c->image_size);
    get_int(m, "backbone_stride", &c->backbone_stride);
    get_flt(m, "sigmoid_scale_for_mem_enc", &c->sigmoid_scale_for_mem_enc);
    get_flt(m, "sigmoid_bias_for_mem_enc", &c->sigmoid_bias_for_mem_enc);
    get_bool(m, "binarize_mask_from_pts_for_mem_enc", &c->binarize_mask_from_pts_for_mem_enc);
    get_bool(m, "use_mask_input_as_output_without_sam", &c->use_mask_input_as_output_without_sam);
    get_int(m, "max_cond_frames_in_attn", &c->max_cond_frames_in_attn);
    get_bool(m, "directly_add_no_mem_embed", &c->directly_add_no_mem_embed);
    get_bool(m, "no_obj_embed_spatial", &c->no_obj_embed_spatial);
    get_bool(m, "use_high_res_features_in_sam", &c->use_high_res_features_in_sam);
    get_bool(m, "multimask_output_in_sam", &c->multimask_output_in_sam);
    get_int(m, "multimask_min_pt_num", &c->multimask_min_pt_num);
    get_int(m, "multimask_max_pt_num", &c->multimask_max_pt_num);
    get_bool(m, "multimask_output_for_tracking", &c->multimask_output_for_tracking);
    get_bool(m, "use_multimask_token_for_obj_ptr", &c->use_multimask_token_for_obj_ptr);
    get_bool(m, "iou_prediction_use_sigmoid", &c->iou_prediction_use_sigmoid);
    get_int(m, "memory_temporal_stride_for_eval", &c->memory_temporal_stride_for_eval);
    get_bool(m, "non_overlap_masks_for_mem_enc", &c->non_overlap_masks_for_mem_enc);
    get_bool(m, "use_obj_ptrs_in_encoder", &c->use_obj_ptrs_in_encoder);
    get_int(m, "max_obj_ptrs_in_encoder", &c->max_obj_ptrs_in_encoder);
    get_bool(m, "add_tpos_enc_to_obj_ptrs", &c->add_tpos_enc_to_obj_ptrs);
    get_bool(m, "proj_tpos_enc_in_obj_ptrs", &c->proj_tpos_enc_in_obj_ptrs);
    get_bool(m, "use_signed_tpos_enc_to_obj_ptrs", &c->use_signed_tpos_enc_to_obj_ptrs);
    get_bool(m, "only_obj_ptrs_in_the_past_for_eval", &c->only_obj_ptrs_in_the_past_for_eval);
    get_bool(m, "pred_obj_scores", &c->pred_obj_scores);
    get_bool(m, "pred_obj_scores_mlp", &c->pred_obj_scores_mlp);
    get_bool(m, "fixed_no_obj_ptr", &c->fixed_no_obj_ptr);
    get_bool(m, "soft_no_obj_ptr", &c->soft_no_obj_ptr);
    get_bool(m, "use_mlp_for_obj_ptr_proj", &c->use_mlp_for_obj_ptr_proj);
}

static void read_decoder_extra(const s2_json *ov, s2_config *c) {
    const s2_json *ex = s2_json_get(ov, "sam_mask_decoder_extra_args");
    if (!ex) return;
    c->sam_mask_decoder_extra_args_present = true;
    get_bool(ex, "dynamic_multimask_via_stability", &c->dynamic_multimask_via_stability);
    get_flt(ex, "dynamic_multimask_stability_delta", &c->dynamic_multimask_stability_delta);
    get_flt(ex, "dynamic_multimask_stability_thresh", &c->dynamic_multimask_stability_thresh);
}

/* Starting from defaults, every field present in the JSON wins. Fields absent from a
 * model block take the official class defaults, which differ from the tiny YAML in a
 * few places (Hiera's own defaults): those are set before reading. */
int s2_config_from_json(const s2_json *root, const char *name, s2_config *c) {
    s2_config_defaults(c);
    const s2_json *m = s2_json_get(root, "model_cfg_yaml_equivalent");
    if (!m) m = s2_json_get(root, "model");
    if (!m || m->type != S2_JOBJ)
        return s2_err(SAM2C_ERR_FORMAT, "%s: no 'model_cfg_yaml_equivalent' (or 'model') object", name);
    const char *nm = s2_json_str(root, "name");
    snprintf(c->name, sizeof c->name, "%s", nm ? nm : "custom");
    const s2_json *ie = s2_json_get(m, "image_encoder");
    const s2_json *t = s2_json_get(ie, "trunk");
    if (!t) return s2_err(SAM2C_ERR_FORMAT, "%s: missing image_encoder.trunk", name);
    /* Hiera class defaults where the YAML is silent. */
    c->hiera.n_global = 3;
    memcpy(c->hiera.global_att_blocks, (int[]){12, 16, 20}, 3 * sizeof(int));
    memcpy(c->hiera.stages, (int[]){2, 3, 16, 3}, 4 * sizeof(int));
    c->hiera.bkg_pe[0] = c->hiera.bkg_pe[1] = 14;
    c->hiera.embed_dim = 96;
    c->hiera.num_heads = 1;
    read_trunk(t, c);
    get_int(ie, "scalp", &c->scalp);
    read_neck(s2_json_get(ie, "neck"), c);
    read_memory_attention(s2_json_get(m, "memory_attention"), c);
    read_memory_encoder(s2_json_get(m, "memory_encoder"), c);
    /* A sam2.0 YAML sets none of these; SAM2Base defaults them to false. */
    c->no_obj_embed_spatial = c->add_tpos_enc_to_obj_ptrs = false;
    c->proj_tpos_enc_in_obj_ptrs = c->use_signed_tpos_enc_to_obj_ptrs = false;
    c->binarize_mask_from_pts_for_mem_enc = false;
    read_base_flags(m, c);
    c->version = c->no_obj_embed_spatial ? 2 : 1;
    c->dynamic_multimask_via_stability = false;
    read_decoder_extra(get_prefixed(root, "image_model_overrides"), c);
    const s2_json *vo = get_prefixed(root, "video_model_overrides");
    if (vo) {
        read_decoder_extra(vo, c);
        get_bool(vo, "binarize_mask_from_pts_for_mem_enc", &c->binarize_mask_from_pts_for_mem_enc);
        get_int(vo, "fill_hole_area", &c->fill_hole_area);
        get_bool(vo, "non_overlap_masks", &c->non_overlap_masks);
    }
    const s2_json *ip = s2_json_get(root, "image_predictor");
    get_flt(ip, "mask_threshold", &c->mask_threshold);
    get_flt(ip, "max_hole_area", &c->max_hole_area);
    get_flt(ip, "max_sprinkle_area", &c->max_sprinkle_area);
    /* SAM2Base sets hidden_dim from the neck; memory attention shares it. */
    return s2_config_validate(c) < 0 ? s2_err_prefix(SAM2C_ERR_FORMAT, "%s: ", name) : SAM2C_OK;
}

int s2_config_load_file(const char *path, s2_config *c) {
    s2_json *j = NULL;
    int rc = s2_json_parse_file(path, NULL, &j);
    if (rc < 0) return rc;
    rc = s2_config_from_json(j, path, c);
    s2_json_free(j);
    return rc;
}

/* Everything the model code divides by or loops over must be sane before any
 * allocation is sized from it. */
int s2_config_validate(const s2_config *c) {
#define NEED(cond, ...) do { if (!(cond)) return s2_err(SAM2C_ERR_FORMAT, __VA_ARGS__); } while (0)
    const s2_hiera_cfg *h = &c->hiera;
    NEED(c->image_size >= 32 && c->image_size <= 8192, "image_size %d out of range", c->image_size);
    NEED(c->backbone_stride > 0 && c->image_size % c->backbone_stride == 0,
         "image_size %d not divisible by backbone_stride %d", c->image_size, c->backbone_stride);
    NEED(h->embed_dim > 0 && h->num_heads > 0 && h->embed_dim % h->num_heads == 0,
         "trunk embed_dim %d / num_heads %d invalid", h->embed_dim, h->num_heads);
    /* bounds that keep the per-stage products (dim * dim_mul^3 * 4) inside int */
    NEED(h->embed_dim <= 65536 && h->num_heads <= 65536, "trunk embed_dim %d / num_heads %d too large",
         h->embed_dim, h->num_heads);
    NEED(h->dim_mul > 0 && h->dim_mul <= 16 && h->head_mul > 0 && h->head_mul <= 16,
         "trunk dim_mul %g / head_mul %g out of range (0, 16]", h->dim_mul, h->head_mul);
    NEED(h->n_stages == 4, "trunk needs 4 stages (got %d)", h->n_stages);
    int depth = 0;
    for (int i = 0; i < 4; i++) {
        NEED(h->stages[i] > 0 && h->stages[i] <= S2_MAX_BLOCKS, "trunk stage %d has %d blocks", i, h->stages[i]);
        NEED(h->window_spec[i] >= 0, "negative window size");
        depth += h->stages[i];
    }
    NEED(depth <= S2_MAX_BLOCKS, "trunk depth %d exceeds %d", depth, S2_MAX_BLOCKS);
    NEED(h->q_pool >= 0 && h->q_pool <= 3, "q_pool %d out of range", h->q_pool);
    NEED(h->bkg_pe[0] > 0 && h->bkg_pe[1] > 0, "window_pos_embed_bkg_spatial_size invalid");
    NEED(c->d_model > 0 && c->d_model % 8 == 0, "d_model %d must be a positive multiple of 8", c->d_model);
    NEED(c->d_model % c->dec_num_heads == 0 && (c->d_model / 2) % c->dec_num_heads == 0,
         "d_model %d not divisible by the decoder's %d heads", c->d_model, c->dec_num_heads);
    NEED(c->scalp >= 0 && c->scalp < 4, "scalp %d out of range", c->scalp);
    NEED(c->mem_out_dim > 0 && c->d_model % c->mem_out_dim == 0,
         "memory out_dim %d must divide hidden dim %d", c->mem_out_dim, c->d_model);
    NEED(c->ma_num_heads > 0 && c->ma_d_model % c->ma_num_heads == 0, "memory attention heads invalid");
    NEED(c->ma_num_layers >= 0 && c->ma_num_layers <= 64, "memory_attention.num_layers %d out of range",
         c->ma_num_layers);
    NEED(c->fuser_layers >= 0 && c->fuser_layers <= 64, "memory_encoder.fuser.num_layers %d out of range",
         c->fuser_layers);
    NEED(c->ma_d_model == c->d_model, "memory_attention.d_model %d != neck d_model %d", c->ma_d_model, c->d_model);
    NEED(c->num_maskmem >= 1 && c->num_maskmem <= 64, "num_maskmem %d out of range", c->num_maskmem);
    NEED(c->mds_stride >= 2 && c->mds_total_stride >= c->mds_stride, "mask downsampler strides invalid");
    NEED(c->mask_in_chans >= 4 && c->mask_in_chans % 4 == 0, "mask_in_chans invalid");
    NEED(c->neck_pe_num_pos_feats % 4 == 0 && c->mem_pe_num_pos_feats % 4 == 0,
         "sine position encodings need a multiple of 4 features");
#undef NEED
    return SAM2C_OK;
}

/* ---- config JSON writer (same schema, read back by s2_config_from_json) ---- */

static void jw_ints(s2_jw *w, const char *key, const int *v, int n) {
    s2_jw_key(w, key);
    s2_jw_arr_begin(w);
    for (int i = 0; i < n; i++) s2_jw_int(w, v[i]);
    s2_jw_arr_end(w);
}
static void jw_kint(s2_jw *w, const char *k, int64_t v) { s2_jw_key(w, k); s2_jw_int(w, v); }
static void jw_knum(s2_jw *w, const char *k, double v) { s2_jw_key(w, k); s2_jw_num(w, v); }
static void jw_kbool(s2_jw *w, const char *k, bool v) { s2_jw_key(w, k); s2_jw_bool(w, v); }

static void write_image_encoder(s2_jw *w, const s2_config *c) {
    const s2_hiera_cfg *h = &c->hiera;
    s2_jw_key(w, "image_encoder");
    s2_jw_obj_begin(w);
    jw_kint(w, "scalp", c->scalp);
    s2_jw_key(w, "trunk");
    s2_jw_obj_begin(w);
    jw_kint(w, "embed_dim", h->embed_dim);
    jw_kint(w, "num_heads", h->num_heads);
    jw_ints(w, "stages", h->stages, h->n_stages);
    jw_ints(w, "global_att_blocks", h->global_att_blocks, h->n_global);
    jw_ints(w, "window_pos_embed_bkg_spatial_size", h->bkg_pe, 2);
    jw_ints(w, "window_spec", h->window_spec, 4);
    jw_kint(w, "q_pool", h->q_pool);
    jw_ints(w, "q_stride", h->q_stride, 2);
    jw_knum(w, "dim_mul", h->dim_mul);
    jw_knum(w, "head_mul", h->head_mul);
    s2_jw_obj_end(w);
    s2_jw_key(w, "neck");
    s2_jw_obj_begin(w);
    s2_jw_key(w, "position_encoding");
    s2_jw_obj_begin(w);
    jw_kint(w, "num_pos_feats", c->neck_pe_num_pos_feats);
    jw_knum(w, "temperature", c->neck_pe_temperature);
    s2_jw_obj_end(w);
    jw_kint(w, "d_model", c->d_model);
    jw_ints(w, "backbone_channel_list", c->backbone_channel_list, 4);
    jw_ints(w, "fpn_top_down_levels", c->fpn_top_down_levels, c->n_fpn_top_down);
    s2_jw_obj_end(w);
    s2_jw_obj_end(w);
}

static void write_memory(s2_jw *w, const s2_config *c) {
    s2_jw_key(w, "memory_attention");
    s2_jw_obj_begin(w);
    jw_kint(w, "d_model", c->ma_d_model);
    jw_kbool(w, "pos_enc_at_input", c->ma_pos_enc_at_input);
    jw_kint(w, "num_layers", c->ma_num_layers);
    s2_jw_key(w, "layer");
    s2_jw_obj_begin(w);
    jw_kint(w, "dim_feedforward", c->ma_dim_ff);
    jw_kbool(w, "pos_enc_at_attn", c->ma_pos_enc_at_attn);
    jw_kbool(w, "pos_enc_at_cross_attn_keys", c->ma_pos_enc_at_cross_attn_keys);
    jw_kbool(w, "pos_enc_at_cross_attn_queries", c->ma_pos_enc_at_cross_attn_queries);
    s2_jw_key(w, "self_attention");
    s2_jw_obj_begin(w);
    jw_knum(w, "rope_theta", c->ma_rope_theta);
    jw_ints(w, "feat_sizes", c->ma_feat_sizes, 2);
    jw_kint(w, "num_heads", c->ma_num_heads);
    s2_jw_obj_end(w);
    s2_jw_key(w, "cross_attention");
    s2_jw_obj_begin(w);
    jw_kbool(w, "rope_k_repeat", c->ma_rope_k_repeat);
    jw_kint(w, "kv_in_dim", c->ma_kv_in_dim);
    s2_jw_obj_end(w);
    s2_jw_obj_end(w);
    s2_jw_obj_end(w);

    s2_jw_key(w, "memory_encoder");
    s2_jw_obj_begin(w);
    jw_kint(w, "out_dim", c->mem_out_dim);
    jw_kint(w, "in_dim", c->mem_in_dim);
    s2_jw_key(w, "position_encoding");
    s2_jw_obj_begin(w);
    jw_kint(w, "num_pos_feats", c->mem_pe_num_pos_feats);
    jw_knum(w, "temperature", c->mem_pe_temperature);
    s2_jw_obj_end(w);
    s2_jw_key(w, "mask_downsampler");
    s2_jw_obj_begin(w);
    jw_kint(w, "embed_dim", c->mds_embed_dim);
    jw_kint(w, "kernel_size", c->mds_kernel);
    jw_kint(w, "stride", c->mds_stride);
    jw_kint(w, "padding", c->mds_padding);
    jw_kint(w, "total_stride", c->mds_total_stride);
    s2_jw_obj_end(w);
    s2_jw_key(w, "fuser");
    s2_jw_obj_begin(w);
    jw_kint(w, "num_layers", c->fuser_layers);
    s2_jw_key(w, "layer");
    s2_jw_obj_begin(w);
    jw_kint(w, "dim", c->fuser_dim);
    jw_kint(w, "kernel_size", c->cx_kernel);
    jw_kint(w, "padding", c->cx_padding);
    jw_kbool(w, "use_dwconv", c->cx_dwconv);
    s2_jw_obj_end(w);
    s2_jw_obj_end(w);
    s2_jw_obj_end(w);
}

static void write_base_flags(s2_jw *w, const s2_config *c) {
    jw_kint(w, "num_maskmem", c->num_maskmem);
    jw_kint(w, "image_size", c->image_size);
    jw_kint(w, "backbone_stride", c->backbone_stride);
    jw_knum(w, "sigmoid_scale_for_mem_enc", c->sigmoid_scale_for_mem_enc);
    jw_knum(w, "sigmoid_bias_for_mem_enc", c->sigmoid_bias_for_mem_enc);
    jw_kbool(w, "use_mask_input_as_output_without_sam", c->use_mask_input_as_output_without_sam);
    jw_kint(w, "max_cond_frames_in_attn", c->max_cond_frames_in_attn);
    jw_kbool(w, "directly_add_no_mem_embed", c->directly_add_no_mem_embed);
    jw_kbool(w, "no_obj_embed_spatial", c->no_obj_embed_spatial);
    jw_kbool(w, "use_high_res_features_in_sam", c->use_high_res_features_in_sam);
    jw_kbool(w, "multimask_output_in_sam", c->multimask_output_in_sam);
    jw_kint(w, "multimask_min_pt_num", c->multimask_min_pt_num);
    jw_kint(w, "multimask_max_pt_num", c->multimask_max_pt_num);
    jw_kbool(w, "multimask_output_for_tracking", c->multimask_output_for_tracking);
    jw_kbool(w, "use_multimask_token_for_obj_ptr", c->use_multimask_token_for_obj_ptr);
    jw_kbool(w, "iou_prediction_use_sigmoid", c->iou_prediction_use_sigmoid);
    jw_kint(w, "memory_temporal_stride_for_eval", c->memory_temporal_stride_for_eval);
    jw_kbool(w, "non_overlap_masks_for_mem_enc", c->non_overlap_masks_for_mem_enc);
    jw_kbool(w, "use_obj_ptrs_in_encoder", c->use_obj_ptrs_in_encoder);
    jw_kint(w, "max_obj_ptrs_in_encoder", c->max_obj_ptrs_in_encoder);
    jw_kbool(w, "add_tpos_enc_to_obj_ptrs", c->add_tpos_enc_to_obj_ptrs);
    jw_kbool(w, "proj_tpos_enc_in_obj_ptrs", c->proj_tpos_enc_in_obj_ptrs);
    jw_kbool(w, "use_signed_tpos_enc_to_obj_ptrs", c->use_signed_tpos_enc_to_obj_ptrs);
    jw_kbool(w, "only_obj_ptrs_in_the_past_for_eval", c->only_obj_ptrs_in_the_past_for_eval);
    jw_kbool(w, "pred_obj_scores", c->pred_obj_scores);
    jw_kbool(w, "pred_obj_scores_mlp", c->pred_obj_scores_mlp);
    jw_kbool(w, "fixed_no_obj_ptr", c->fixed_no_obj_ptr);
    jw_kbool(w, "soft_no_obj_ptr", c->soft_no_obj_ptr);
    jw_kbool(w, "use_mlp_for_obj_ptr_proj", c->use_mlp_for_obj_ptr_proj);
}

static void write_overrides(s2_jw *w, const s2_config *c) {
    s2_jw_key(w, "sam_mask_decoder_extra_args");
    s2_jw_obj_begin(w);
    jw_kbool(w, "dynamic_multimask_via_stability", c->dynamic_multimask_via_stability);
    jw_knum(w, "dynamic_multimask_stability_delta", c->dynamic_multimask_stability_delta);
    jw_knum(w, "dynamic_multimask_stability_thresh", c->dynamic_multimask_stability_thresh);
    s2_jw_obj_end(w);
}

char *s2_config_to_json(const s2_config *c) {
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "name");
    s2_jw_str(&w, c->name);
    s2_jw_key(&w, "model_cfg_yaml_equivalent");
    s2_jw_obj_begin(&w);
    write_image_encoder(&w, c);
    write_memory(&w, c);
    write_base_flags(&w, c);
    s2_jw_obj_end(&w);
    s2_jw_key(&w, "image_model_overrides");
    s2_jw_obj_begin(&w);
    write_overrides(&w, c);
    s2_jw_obj_end(&w);
    s2_jw_key(&w, "video_model_overrides");
    s2_jw_obj_begin(&w);
    write_overrides(&w, c);
    jw_kbool(&w, "binarize_mask_from_pts_for_mem_enc", c->binarize_mask_from_pts_for_mem_enc);
    jw_kint(&w, "fill_hole_area", c->fill_hole_area);
    jw_kbool(&w, "non_overlap_masks", c->non_overlap_masks);
    s2_jw_obj_end(&w);
    s2_jw_key(&w, "image_predictor");
    s2_jw_obj_begin(&w);
    jw_knum(&w, "mask_threshold", c->mask_threshold);
    jw_knum(&w, "max_hole_area", c->max_hole_area);
    jw_knum(&w, "max_sprinkle_area", c->max_sprinkle_area);
    s2_jw_obj_end(&w);
    s2_jw_obj_end(&w);
    if (w.failed) { s2_jw_free(&w); return NULL; }
    return w.buf; /* ownership moves to the caller */
}
