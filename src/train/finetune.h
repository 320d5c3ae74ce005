/* `sam2c finetune`: few-shot fine-tuning of SAM 2 on a folder of images with masks:
 * by default the prompt encoder and mask decoder on a frozen image encoder (its
 * features computed once per image and augmented copy, then cached); optionally LoRA
 * adapters on the encoder's attention or the whole encoder (then the encoder runs
 * forward and backward on every sample instead of the cache); prompts simulated as the official training does (a click or a
 * noisy box, then corrective clicks), the official loss, AdamW with the YAML's
 * parameter groups, gradient clipping and a cosine schedule. */
#ifndef S2_TRAIN_FINETUNE_H
#define S2_TRAIN_FINETUNE_H

#include "train/train.h"
#include "train/loss.h"
#include "train/data.h"

/* What one epoch did (epoch 0: validation of the starting weights only). */
typedef struct s2_epoch_stats {
    int epoch, epochs;
    int n_steps;                 /* optimizer steps this epoch */
    double train_loss;           /* mean core loss per step (NAN at epoch 0) */
    s2_loss_parts train_parts;   /* means per step */
    double train_miou;           /* mean IoU after the last corrective click */
    double val_loss, val_miou;   /* one centre click per object; NAN without val images */
    double lr;                   /* learning rate of the epoch's last step */
    bool restored;               /* replayed from a checkpoint's history (--resume) */
    double grad_norm;            /* mean gradient norm before clipping */
    double seconds;
} s2_epoch_stats;

typedef struct s2_finetune_params {
    const char *data_dir;        /* training images (all of them when val_dir is set) */
    const char *val_dir;         /* validation images; NULL: val_split of data_dir */
    const char *ckpt_path;       /* written after every epoch: trained weights, AdamW
                                  * moments, step, RNG and history (NULL: none) */
    bool resume;                 /* continue after the last epoch saved in ckpt_path */
    unsigned modules;            /* S2_TRAIN_* trained densely (0: S2_TRAIN_HEADS);
                                  * S2_TRAIN_MEMORY needs video: SAM2C_ERR_UNSUPPORTED */
    int lora;                    /* rank of LoRA adapters on every Hiera block's
                                  * attn.qkv / attn.proj (0: none); the encoder's own
                                  * weights then stay frozen */
    double lora_alpha;           /* LoRA scale alpha / rank (<= 0: alpha = rank) */
    int epochs;                  /* 10 (0: validation of the starting weights only) */
    double lr;                   /* start of the cosine schedule (1e-4) */
    double lr_encoder;           /* the image encoder's (LoRA adapters included) when it
                                  * trains (<= 0: lr); same schedule, scaled */
    double lr_end;               /* end (< 0: lr / 10, as the YAML) */
    double weight_decay;         /* 0.1 (YAML) */
    double clip;                 /* gradient clipping max norm (0.1, YAML); <= 0 none */
    int batch;                   /* images per optimizer step (1) */
    double val_split;            /* fraction of images held out (0.2; without val_dir) */
    uint64_t seed;
    int n_correct;               /* corrective clicks per sample (7, as the YAML) */
    int augment;                 /* augmented copies per training image (3) */
    int max_objects;             /* objects per image per step (3, max_num_objects) */
    double prob_box;             /* box instead of click (0.5) */
    double prob_from_gt;         /* correction sampled from the GT (0.1) */
    double w_focal, w_dice;      /* loss weights (YAML: 20, 1); the IoU and class 1 */
    s2_aug_params aug;
    /* Called after the caching and after every epoch (and with messages while
     * caching); both may be NULL. The library never prints. */
    void (*progress)(void *user, const s2_epoch_stats *st);
    void (*log)(void *user, const char *msg);
    void *user;
} s2_finetune_params;

void s2_finetune_default(s2_finetune_params *p);

/* Runs the fine-tuning of model m (read-only) and returns the trained parameter set
 * (its ->m is a complete model: trained weights, LoRA adapters merged, the rest
 * borrowed from m). Caller frees
 * with s2_trainable_free before freeing m. With resume, the epochs already in the
 * checkpoint are reported through progress (restored = true) and training continues
 * exactly as an uninterrupted run would (same seed and data required). */
int s2_finetune(const sam2c_model *m, const s2_finetune_params *p, s2_trainable **out);

/* Writes every weight of the model t->m stands for (f32; LoRA adapters merged into
 * their weights, never written themselves) to a safetensors file with the
 * configuration in the metadata ("sam2c_config", as `sam2c convert`), plus meta_kv
 * pairs. */
int s2_trainable_save(const s2_trainable *t, const char *path, const char *const *meta_kv,
                      int n_meta);

#endif
