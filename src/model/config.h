/* Every hyper-parameter of a SAM 2 model, named as in the official YAML configs
 * (sam2/configs/sam2.1/sam2.1_hiera_*.yaml) and SAM2Base's constructor. Nothing in the
 * model code may assume official or fixture sizes: everything comes from here. */
#ifndef S2_CONFIG_H
#define S2_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include "core/s2.h"

#define S2_MAX_BLOCKS 64
#define S2_MAX_GLOBAL 16

typedef struct s2_hiera_cfg {
    int embed_dim;                 /* trunk.embed_dim (96 for tiny) */
    int num_heads;                 /* trunk.num_heads (1) */
    int stages[4];                 /* blocks per stage */
    int n_stages;                  /* 4 */
    int q_pool;                    /* number of q-pool stages (3) */
    int q_stride[2];               /* (2, 2) */
    double dim_mul, head_mul;      /* 2.0, 2.0 */
    int global_att_blocks[S2_MAX_GLOBAL];
    int n_global;
    int window_spec[4];            /* (8, 4, 14, 7) */
    int bkg_pe[2];                 /* window_pos_embed_bkg_spatial_size (7, 7) */
    int patch_kernel, patch_stride, patch_padding; /* 7, 4, 3 */
} s2_hiera_cfg;

/* One Hiera block as the trunk builds it (derived from s2_hiera_cfg). */
typedef struct s2_hiera_block {
    int dim, dim_out, num_heads, window_size; /* window 0 = global attention */
    bool q_pool;                              /* q_stride applied in this block */
    int mlp_hidden;
} s2_hiera_block;

typedef struct s2_config {
    char name[64];                 /* "sam2.1_hiera_tiny", "micro", "custom" */
    int version;                   /* 1 = SAM 2, 2 = SAM 2.1 (no_obj_embed_spatial etc.) */
    int image_size;                /* 1024 */
    int backbone_stride;           /* 16 */

    s2_hiera_cfg hiera;
    /* neck (FpnNeck) */
    int d_model;                   /* neck.d_model = hidden_dim (256) */
    int backbone_channel_list[4];  /* (768, 384, 192, 96): deepest first */
    int fpn_top_down_levels[4];
    int n_fpn_top_down;
    int scalp;                     /* 1 */
    int neck_pe_num_pos_feats;     /* 256 */
    double neck_pe_temperature;    /* 10000 */

    /* mask decoder extras */
    bool dynamic_multimask_via_stability;
    float dynamic_multimask_stability_delta;  /* 0.05 */
    float dynamic_multimask_stability_thresh; /* 0.98 */
    int mask_in_chans;             /* 16 (hard-coded in SAM2Base) */
    int dec_num_heads;             /* 8 */
    int dec_mlp_dim;               /* 2048 */
    int dec_depth;                 /* 2 */
    int iou_head_depth, iou_head_hidden_dim; /* 3, 256 */
    int num_multimask_outputs;     /* 3 */

    /* memory encoder */
    int mem_out_dim;               /* memory_encoder.out_dim = mem_dim (64) */
    int mem_in_dim;                /* 256 */
    int mds_embed_dim;             /* mask_downsampler.embed_dim (256) */
    int mds_kernel, mds_stride, mds_padding, mds_total_stride; /* 3, 2, 1, 16 */
    int fuser_layers;              /* 2 */
    int fuser_dim;                 /* CXBlock dim (256) */
    int cx_kernel, cx_padding;     /* 7, 3 */
    bool cx_dwconv;                /* true */
    int mem_pe_num_pos_feats;      /* 64 */
    double mem_pe_temperature;     /* 10000 */

    /* memory attention */
    int ma_d_model;                /* 256 */
    int ma_num_layers;             /* 4 */
    int ma_dim_ff;                 /* 2048 */
    int ma_num_heads;              /* 1 */
    int ma_kv_in_dim;              /* 64 */
    double ma_rope_theta;          /* 10000 */
    int ma_feat_sizes[2];          /* (64, 64) for 1024 input */
    bool ma_pos_enc_at_input, ma_pos_enc_at_attn;
    bool ma_pos_enc_at_cross_attn_keys, ma_pos_enc_at_cross_attn_queries;
    bool ma_rope_k_repeat;         /* cross-attention */

    /* SAM2Base */
    int num_maskmem;               /* 7 */
    float sigmoid_scale_for_mem_enc, sigmoid_bias_for_mem_enc; /* 20, -10 */
    bool binarize_mask_from_pts_for_mem_enc;
    bool use_mask_input_as_output_without_sam;
    int max_cond_frames_in_attn;   /* -1 */
    bool directly_add_no_mem_embed;
    bool no_obj_embed_spatial;
    bool use_high_res_features_in_sam;
    bool multimask_output_in_sam;
    int multimask_min_pt_num, multimask_max_pt_num;
    bool multimask_output_for_tracking;
    bool use_multimask_token_for_obj_ptr;
    bool iou_prediction_use_sigmoid;
    int memory_temporal_stride_for_eval;  /* 1 */
    bool non_overlap_masks_for_mem_enc;
    bool use_obj_ptrs_in_encoder;
    int max_obj_ptrs_in_encoder;          /* 16 */
    bool add_tpos_enc_to_obj_ptrs;
    bool proj_tpos_enc_in_obj_ptrs;
    bool use_signed_tpos_enc_to_obj_ptrs;
    bool only_obj_ptrs_in_the_past_for_eval;
    bool pred_obj_scores, pred_obj_scores_mlp, fixed_no_obj_ptr;
    bool soft_no_obj_ptr;
    bool use_mlp_for_obj_ptr_proj;
    bool sam_mask_decoder_extra_args_present;

    /* video predictor */
    int fill_hole_area;                   /* 8 */
    bool non_overlap_masks;               /* false */
    bool clear_non_cond_mem_around_input; /* false */
    bool add_all_frames_to_correct_as_cond; /* official false; sam2c's own default true */

    /* image predictor */
    float mask_threshold;          /* 0 */
    float max_hole_area, max_sprinkle_area; /* 0, 0 */
} s2_config;

/* Defaults of the official sam2.1_hiera_t YAML + build_sam2(apply_postprocessing=True). */
void s2_config_defaults(s2_config *c);
/* The eight official layouts: "sam2_hiera_t" ... "sam2.1_hiera_l" (also "tiny", "small",
 * "base+", "large" for sam2.1). Returns SAM2C_ERR_ARG for unknown names. */
int s2_config_official(const char *name, s2_config *c);
int s2_config_official_count(void);
const char *s2_config_official_name(int i);
/* Reads the schema of fixtures/micro/config.json: model_cfg_yaml_equivalent plus the
 * image / video override and image_predictor blocks beside it. */
struct s2_json;
int s2_config_from_json(const struct s2_json *root, const char *name, s2_config *c);
int s2_config_load_file(const char *path, s2_config *c);
/* Writes the config as JSON in the same schema (for safetensors metadata). Caller frees. */
char *s2_config_to_json(const s2_config *c);
/* Checks internal consistency (positive sizes, divisibility); message names the field. */
int s2_config_validate(const s2_config *c);

/* Derived per-block table of the Hiera trunk. Returns the number of blocks. */
int s2_hiera_blocks(const s2_config *c, s2_hiera_block *out, int max);
/* Indices of the last block of each stage. */
void s2_hiera_stage_ends(const s2_config *c, int ends[4]);
/* Feature map side after the backbone (image_size / backbone_stride). */
static inline int s2_cfg_feat_side(const s2_config *c) { return c->image_size / c->backbone_stride; }

#endif
