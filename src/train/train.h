/* Few-shot fine-tuning of SAM 2: the heads (prompt encoder + mask decoder, conv_s0 /
 * conv_s1, no_mem_embed) on frozen image-encoder features, optionally the image encoder
 * itself (dense, or through LoRA adapters, see encoder_train.h), as the official
 * training code (training/model/sam2.py SAM2Train, training/loss_fns.py,
 * training/optimizer.py) trains them. Private to the library and the CLI.
 *
 * Dimension letters (as model/sam_heads.h): B objects (prompts) of one image, N points
 * per object, Ns = N + 1 sparse tokens (padding point), C = d_model, h x w image-embedding
 * side, H x W = 4h x 4w low-res masks, S model input side, T mask tokens, M masks kept. */
#ifndef S2_TRAIN_H
#define S2_TRAIN_H

#include <stdbool.h>
#include <stdint.h>
#include "model/model.h"
#include "backend/backend.h"

/* ---- the trainable parameter set ---- */

/* A clone of a model whose trainable tensors are the clone's own f32 copies (the master
 * weights); every other tensor is borrowed from the base model, which must outlive it.
 * Trainable (s2_trainable_create): sam_prompt_encoder.* (not the PE Gaussian buffer), sam_mask_decoder.*
 * (conv_s0 / conv_s1 included) and no_mem_embed. */
/* Modules that can be trained (bit flags). */
enum {
    S2_TRAIN_PROMPT_ENCODER = 1u << 0, /* sam_prompt_encoder.* (not the PE buffer) */
    S2_TRAIN_MASK_DECODER = 1u << 1,   /* sam_mask_decoder.* (conv_s0/s1) + no_mem_embed */
    S2_TRAIN_IMAGE_ENCODER = 1u << 2,  /* image_encoder.* (trunk and neck) */
    S2_TRAIN_MEMORY = 1u << 3,         /* memory_attention.*, memory_encoder.*,
                                        * maskmem_tpos_enc, obj_ptr_proj.*,
                                        * obj_ptr_tpos_proj.*, no_obj_ptr,
                                        * no_obj_embed_spatial, mask_downsample.* */
    S2_TRAIN_HEADS = S2_TRAIN_PROMPT_ENCODER | S2_TRAIN_MASK_DECODER,
};

/* One LoRA adapter: W [out, in] gets + scale B A with A [R, in], B [out, R]. */
typedef struct s2_lora {
    int target;             /* slot of W in m->w (a frozen base weight) */
    int a, b;               /* slots of lora_A / lora_B (trainable, after the base's) */
} s2_lora;

typedef struct s2_trainable {
    const sam2c_model *base;
    unsigned modules;       /* S2_TRAIN_* flags (dense training) */
    sam2c_model *m;         /* the clone: forward code reads its weights from here */
    int n_train;            /* trainable tensors */
    int *idx;               /* [n_train] indices into m->w */
    int64_t *off;           /* [n_train] float offsets into the flat buffers below */
    int64_t n_flat;         /* floats in each flat buffer (tensors padded to 16) */
    float **grad;           /* [m->n_w] gradient of each weight, NULL when frozen */
    float *grad_flat;       /* [n_flat] every gradient */
    /* frozen heads tensors get a write-only sink so the heads' backward can run when
     * only other modules train (never read, never stepped) */
    float *sink;
    int64_t n_sink;
    /* LoRA (s2_trainable_create_lora): adapters appended to m->w after the base's
     * n_base_w weights, named "<target without .weight>.lora_A.weight" / "lora_B" */
    int n_base_w;           /* weights of the base model (what a saved model holds) */
    int lora_rank;          /* R (0: no adapters) */
    double lora_alpha;      /* scale = alpha / R */
    float lora_scale;
    int n_lora;
    s2_lora *lora;          /* [n_lora] */
    bool lora_merged;       /* adapters folded into private copies of their targets */
    float *lora_buf;        /* those copies (owned) */
} s2_trainable;

int s2_trainable_create(const sam2c_model *base, s2_trainable **out); /* S2_TRAIN_HEADS */
int s2_trainable_create_sel(const sam2c_model *base, unsigned modules, s2_trainable **out);
/* As s2_trainable_create_sel plus rank-R LoRA adapters (alpha <= 0: alpha = R) on every
 * Hiera block's attn.qkv and attn.proj, A kaiming-uniform from seed, B zero; the image
 * encoder's own weights stay frozen (S2_TRAIN_IMAGE_ENCODER is ignored with R > 0). */
int s2_trainable_create_lora(const sam2c_model *base, unsigned modules, int rank,
                             double alpha, uint64_t seed, s2_trainable **out);
/* Gradient buffer of the named weight, or NULL when it is frozen or absent. */
float *s2_grad_opt(const s2_trainable *t, const char *fmt, ...) S2_PRINTF(2, 3);
/* Slot of the named weight in m->w, or -1. */
int s2_weight_slot(const sam2c_model *m, const char *fmt, ...) S2_PRINTF(2, 3);
void s2_trainable_free(s2_trainable *t);
void s2_trainable_zero_grad(s2_trainable *t);
/* Gradient buffer of the named weight (printf-style). Unknown or frozen names are a
 * programming error (abort with the name, as s2_w). */
float *s2_grad(const s2_trainable *t, const char *fmt, ...) S2_PRINTF(2, 3);
/* True for tensors without weight decay in the sam2.1 training YAML: names matching
 * '*bias*' and parameters of torch.nn.LayerNorm modules (not LayerNorm2d). */
bool s2_train_no_decay(const char *name);

/* ---- training context ---- */

/* What every training-side forward / backward needs: the backend and scratch arena
 * (temporaries, released by marks), the tape arena (activations saved for backward,
 * reset by the caller between samples), the weights and their gradients. */
typedef struct s2_tctx {
    s2_ctx *c;
    s2_ctx tape;            /* .scratch = the tape arena; same backend as c */
    const sam2c_model *m;   /* the trainable clone (or any model for forward only) */
    s2_trainable *p;        /* gradients; NULL for forward only */
} s2_tctx;

/* Floats on the tape (never fails silently: aborts on exhaustion like s2_scratch_f32). */
float *s2_tape_f32(s2_tctx *t, int64_t n);

/* ---- optimisation ---- */

/* torch.optim.AdamW state over the flat trainable buffers, with the YAML's param groups
 * (weight decay 0 for s2_train_no_decay names). */
typedef struct s2_adamw {
    double beta1, beta2, eps, weight_decay;
    int64_t step;
    float *m, *v;           /* [n_flat] first / second moments */
    float *lr_scale;        /* [n_train] learning-rate multipliers, NULL = all 1 */
} s2_adamw;

/* Defaults: betas (0.9, 0.999), eps 1e-8 (torch), weight decay as given (YAML: 0.1). */
int s2_adamw_init(s2_adamw *o, const s2_trainable *t, double weight_decay);
void s2_adamw_free(s2_adamw *o);
/* Learning rate x scale for the trainable tensors whose names start with prefix (a
 * parameter group, as the YAML's separate vision-encoder learning rate). */
int s2_adamw_set_lr_scale(s2_adamw *o, const s2_trainable *t, const char *prefix, double scale);
/* One AdamW step at learning rate lr (x the tensor's scale) on every trainable tensor
 * (f32 master weights). */
void s2_adamw_step(s2_adamw *o, s2_trainable *t, double lr);
/* ref: torch.nn.utils.clip_grad_norm_ (norm 2): scales every gradient by
 * min(1, max_norm / (total + 1e-6)); returns the total norm before clipping. */
double s2_clip_grad_norm(s2_trainable *t, double max_norm);
/* ref: fvcore CosineParamScheduler: end + 0.5 (start - end) (1 + cos(pi where)),
 * where in [0, 1] the progress of training. */
double s2_cosine_schedule(double start, double end, double where);

#endif
