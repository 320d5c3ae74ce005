/* `sam2c finetune --video`: fine-tuning of the memory modules (memory attention, memory
 * encoder, object-pointer and temporal projections, no-object embeddings) together with
 * the SAM heads on a folder of clips, as SAM2Train trains them on video: the image
 * encoder frozen (features cached per frame), samples of num_frames consecutive frames
 * with up to max_objects objects visible on the first, prompts as
 * SAM2Train.prepare_prompt_inputs draws them (the GT mask, or a click or a noisy box on
 * 1..n_init_cond initial conditioning frames, corrective clicks on 1..n_frames_to_correct
 * frames), every other frame tracked from memory, the official loss summed over frames,
 * backward through time, AdamW on a cosine schedule with gradient clipping.
 * Validation: the video predictor's own tracking step (src/model/sam2_base.c) on every
 * validation clip, one centre click per object visible on frame 0, then tracked to the
 * end: val_miou = mean over objects of the mean IoU (J) over the tracked frames 1..T-1;
 * val_loss = the official loss of the same clip (eval mode), per object.
 * Data layout: see train/video_data.h (<clip>/JPEGImages/<n>.jpg,
 * <clip>/Annotations/<obj>/<n>.png). */
#ifndef S2_TRAIN_VIDEO_TRAIN_H
#define S2_TRAIN_VIDEO_TRAIN_H

#include "train/finetune.h"

typedef struct s2_video_finetune_params {
    const char *data_dir;        /* training clips (all of them when val_dir is set) */
    const char *val_dir;         /* validation clips; NULL: val_split of data_dir */
    const char *ckpt_path;       /* written after every epoch (NULL: none) */
    bool resume;                 /* continue after the last epoch saved in ckpt_path */
    int epochs;                  /* 10 (0: validation of the starting weights only) */
    double lr;                   /* start of the cosine schedule (1e-4; YAML base_lr 5e-6) */
    double lr_end;               /* end (< 0: lr / 10, as the YAML) */
    double weight_decay;         /* 0.1 (YAML) */
    double clip;                 /* gradient clipping max norm (0.1, YAML); <= 0 none */
    int batch;                   /* clips per optimizer step (1, YAML train_batch_size) */
    double val_split;            /* fraction of clips held out (0.2; without val_dir) */
    uint64_t seed;
    int num_frames;              /* frames per training sample (8, YAML) */
    int max_frames;              /* frames cached per clip: its first max_frames (0: all) */
    int max_objects;             /* objects per sample (3, YAML max_num_objects) */
    int n_correct;               /* corrective clicks per frame to correct (7, YAML) */
    double prob_pt;              /* point / box input instead of the mask (0.5, YAML) */
    double prob_box;             /* box among point inputs (0.5, YAML) */
    double prob_from_gt;         /* correction sampled from the GT (0.1, YAML) */
    int n_init_cond;             /* initial conditioning frames: random 1..n (2, YAML) */
    int n_frames_to_correct;     /* frames with corrections: random n_init..n (2, YAML) */
    bool add_corrected_as_cond;  /* corrected frames become conditioning frames (YAML) */
    double w_focal, w_dice;      /* loss weights (YAML: 20, 1); the IoU and class 1 */
    /* Called after the caching and after every epoch (and with messages while caching);
     * both may be NULL. The library never prints. train_miou: mean IoU of the final
     * masks over the frames of the training samples. */
    void (*progress)(void *user, const s2_epoch_stats *st);
    void (*log)(void *user, const char *msg);
    void *user;
} s2_video_finetune_params;

void s2_video_finetune_default(s2_video_finetune_params *p);

/* Runs the fine-tuning of model m (read-only) and returns the trained parameter set
 * (S2_TRAIN_MEMORY | S2_TRAIN_HEADS; its ->m is a complete model, the rest borrowed
 * from m). Caller frees with s2_trainable_free before freeing m; save it with
 * s2_trainable_save. With resume, the epochs in the checkpoint are reported through
 * progress (restored = true) and training continues as an uninterrupted run would. */
int s2_video_finetune(const sam2c_model *m, const s2_video_finetune_params *p,
                      s2_trainable **out);

#endif
