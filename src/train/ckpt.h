/* Fine-tuning checkpoints for --resume: one safetensors file holding the trained tensors
 * (by their model names), the AdamW moments ("adamw.exp_avg.<name>",
 * "adamw.exp_avg_sq.<name>", as torch's optimizer state_dict calls them) and, in the
 * metadata key "sam2c_finetune_ckpt", the loop state (epoch, step, RNG, seed, split
 * sizes, trained modules, LoRA rank and alpha) and the per-epoch history. LoRA
 * adapters are trained tensors like any other ("...attn.qkv.lora_A.weight"). Private
 * to the trainer. */
#ifndef S2_TRAIN_CKPT_H
#define S2_TRAIN_CKPT_H

#include "train/finetune.h"

typedef struct s2_ft_ckpt {
    int epoch;                /* epochs completed */
    int64_t step;             /* optimizer steps completed (cosine-schedule position) */
    uint64_t rng, seed;       /* generator state after the epoch; the run's seed */
    int n_train, n_val;       /* split sizes (a changed data set is an error) */
    int n_hist;               /* epoch + 1 */
    s2_epoch_stats *hist;     /* [n_hist]: epoch 0 = validation before training (owned) */
    unsigned modules;         /* S2_TRAIN_* trained densely (older files: the heads) */
    int lora_rank;            /* LoRA adapters (0: none) */
    double lora_alpha;
} s2_ft_ckpt;

/* Writes the checkpoint atomically (safetensors, f32). */
int s2_ft_ckpt_save(const char *path, const s2_trainable *t, const s2_adamw *o,
                    const s2_ft_ckpt *ck);
/* Reads a checkpoint into t's trained tensors and o's moments (same model layout,
 * trained modules and LoRA rank / alpha required: every tensor is checked by name and
 * size) and *ck (hist allocated; free with s2_ft_ckpt_free). */
int s2_ft_ckpt_load(const char *path, s2_trainable *t, s2_adamw *o, s2_ft_ckpt *ck);
void s2_ft_ckpt_free(s2_ft_ckpt *ck);

#endif
