/* Few-shot fine-tuning of the SAM heads (prompt encoder + mask decoder, conv_s0 /
 * conv_s1, no_mem_embed) on frozen image-encoder features, as the official training
 * code (training/model/sam2.py SAM2Train, training/loss_fns.py, training/optimizer.py)
 * trains them. Private to the library and the CLI.
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

typedef struct s2_trainable {
    const sam2c_model *base;
    unsigned modules;       /* S2_TRAIN_* flags */
    sam2c_model *m;         /* the clone: forward code reads its weights from here */
    int n_train;            /* trainable tensors */
    int *idx;               /* [n_train] indices into m->w */
    int64_t *off;           /* [n_train] float offsets into the flat buffers below */
    int64_t n_flat;         /* floats in each flat buffer (tensors padded to 16) */
    float **grad;           /* [m->n_w] gradient of each weight, NULL when frozen */
    float *grad_flat;       /* [n_flat] every gradient */
} s2_trainable;

int s2_trainable_create(const sam2c_model *base, s2_trainable **out); /* S2_TRAIN_HEADS */
int s2_trainable_create_sel(const sam2c_model *base, unsigned modules, s2_trainable **out);
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
} s2_adamw;

/* Defaults: betas (0.9, 0.999), eps 1e-8 (torch), weight decay as given (YAML: 0.1). */
int s2_adamw_init(s2_adamw *o, const s2_trainable *t, double weight_decay);
void s2_adamw_free(s2_adamw *o);
/* One AdamW step at learning rate lr on every trainable tensor (f32 master weights). */
void s2_adamw_step(s2_adamw *o, s2_trainable *t, double lr);
/* ref: torch.nn.utils.clip_grad_norm_ (norm 2): scales every gradient by
 * min(1, max_norm / (total + 1e-6)); returns the total norm before clipping. */
double s2_clip_grad_norm(s2_trainable *t, double max_norm);
/* ref: fvcore CosineParamScheduler: end + 0.5 (start - end) (1 + cos(pi where)),
 * where in [0, 1] the progress of training. */
double s2_cosine_schedule(double start, double end, double where);

#endif
