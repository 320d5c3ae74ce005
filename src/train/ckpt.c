/* Fine-tuning checkpoints: trained tensors + AdamW moments + loop state, so that
 * --resume continues exactly where an interrupted run stopped.
 * ref: torch.optim.Optimizer.state_dict (exp_avg / exp_avg_sq / step per parameter) */
#include "train/ckpt.h"
#include "io/json.h"
#include "io/tensorfile.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CKPT_KEY "sam2c_finetune_ckpt"

/* The per-epoch numbers kept in the history, in this order. */
enum { H_TRAIN_LOSS, H_VAL_LOSS, H_VAL_MIOU, H_TRAIN_MIOU, H_LR, H_GRAD, H_SECONDS, H_N };

/* One history row as numbers (NaN written as null). */
static void hist_row(const s2_epoch_stats *s, double v[H_N]) {
    v[H_TRAIN_LOSS] = s->train_loss, v[H_VAL_LOSS] = s->val_loss, v[H_VAL_MIOU] = s->val_miou;
    v[H_TRAIN_MIOU] = s->train_miou, v[H_LR] = s->lr, v[H_GRAD] = s->grad_norm;
    v[H_SECONDS] = s->seconds;
}

/* The loop state and history as the metadata JSON text (caller frees). */
static char *state_json(const s2_ft_ckpt *ck) {
    s2_jw w;
    s2_jw_init(&w);
    char rng[32], seed[32];
    snprintf(rng, sizeof rng, "%016" PRIx64, ck->rng);
    snprintf(seed, sizeof seed, "%" PRIu64, ck->seed);
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "epoch"), s2_jw_int(&w, ck->epoch);
    s2_jw_key(&w, "step"), s2_jw_int(&w, ck->step);
    s2_jw_key(&w, "rng"), s2_jw_str(&w, rng);
    s2_jw_key(&w, "seed"), s2_jw_str(&w, seed);
    s2_jw_key(&w, "n_train"), s2_jw_int(&w, ck->n_train);
    s2_jw_key(&w, "n_val"), s2_jw_int(&w, ck->n_val);
    s2_jw_key(&w, "modules"), s2_jw_int(&w, ck->modules);
    s2_jw_key(&w, "lora_rank"), s2_jw_int(&w, ck->lora_rank);
    s2_jw_key(&w, "lora_alpha"), s2_jw_num(&w, ck->lora_alpha);
    s2_jw_key(&w, "history"), s2_jw_arr_begin(&w);
    for (int e = 0; e < ck->n_hist; e++) {
        double v[H_N];
        hist_row(&ck->hist[e], v);
        s2_jw_arr_begin(&w);
        for (int k = 0; k < H_N; k++) s2_jw_num(&w, v[k]);
        s2_jw_int(&w, ck->hist[e].n_steps);
        s2_jw_arr_end(&w);
    }
    s2_jw_arr_end(&w);
    s2_jw_obj_end(&w);
    if (w.failed) {
        s2_jw_free(&w);
        return NULL;
    }
    return w.buf; /* ownership passes to the caller */
}

/* Tensor with t's shape over other data. */
static s2_tensor like(const s2_tensor *t, void *data) {
    s2_tensor r = *t;
    r.data = data;
    return r;
}

int s2_ft_ckpt_save(const char *path, const s2_trainable *t, const s2_adamw *o,
                    const s2_ft_ckpt *ck) {
    int n = 3 * t->n_train;
    s2_st_item *items = s2_calloc((size_t)n, sizeof *items);
    char **names = s2_calloc((size_t)n, sizeof *names);
    char *meta_json = state_json(ck);
    int rc = (!items || !names || !meta_json) ? s2_err(SAM2C_ERR_NOMEM, "%s: out of memory", path)
                                              : SAM2C_OK;
    for (int k = 0; rc == SAM2C_OK && k < t->n_train; k++) {
        const s2_weight *w = &t->m->w[t->idx[k]];
        size_t len = strlen(w->name) + 32;
        names[3 * k + 1] = s2_malloc(len), names[3 * k + 2] = s2_malloc(len);
        if (!names[3 * k + 1] || !names[3 * k + 2]) {
            rc = s2_err(SAM2C_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        snprintf(names[3 * k + 1], len, "adamw.exp_avg.%s", w->name);
        snprintf(names[3 * k + 2], len, "adamw.exp_avg_sq.%s", w->name);
        items[3 * k] = (s2_st_item){.name = w->name, .t = w->t};
        items[3 * k + 1] = (s2_st_item){.name = names[3 * k + 1], .t = like(&w->t, o->m + t->off[k])};
        items[3 * k + 2] = (s2_st_item){.name = names[3 * k + 2], .t = like(&w->t, o->v + t->off[k])};
    }
    if (rc == SAM2C_OK) {
        char adam_step[32];
        snprintf(adam_step, sizeof adam_step, "%" PRId64, o->step);
        const char *meta[] = {CKPT_KEY, meta_json, "adamw_step", adam_step, "format", "pt"};
        rc = s2_safetensors_write(path, items, n, meta, 3);
    }
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
    free(items);
    free(meta_json);
    return rc;
}

/* Copies the f32 entry `name` of f (numel floats) into dst. */
static int read_f32(const s2_tensorfile *f, const char *name, float *dst, int64_t numel) {
    const s2_tf_entry *e = s2_tensorfile_find(f, name);
    if (!e) return s2_err(SAM2C_ERR_FORMAT, "%s: checkpoint lacks tensor '%s' (not made for this model?)", f->path, name);
    if (e->t.dtype != S2_F32 || s2_tensor_numel(&e->t) != numel)
        return s2_err(SAM2C_ERR_FORMAT, "%s: tensor '%s' has another dtype or size than the model's", f->path, name);
    memcpy(dst, e->t.data, sizeof(float) * (size_t)numel);
    return SAM2C_OK;
}

/* History row e of the metadata into ck->hist[e]. */
static int parse_hist_row(const s2_json *row, int e, s2_epoch_stats *s) {
    if (!row || row->type != S2_JARR || row->n != H_N + 1) return -1;
    double v[H_N + 1];
    for (int k = 0; k <= H_N; k++) {
        const s2_json *x = s2_json_at(row, k);
        v[k] = x && x->type == S2_JNUM ? x->num : NAN;
    }
    *s = (s2_epoch_stats){.epoch = e, .train_loss = v[H_TRAIN_LOSS], .val_loss = v[H_VAL_LOSS],
                          .val_miou = v[H_VAL_MIOU], .train_miou = v[H_TRAIN_MIOU],
                          .lr = v[H_LR], .grad_norm = v[H_GRAD], .seconds = v[H_SECONDS],
                          .n_steps = isnan(v[H_N]) ? 0 : (int)v[H_N], .restored = true};
    return 0;
}

/* The loop state from the metadata's JSON text. */
static int parse_state(const char *path, const char *text, s2_ft_ckpt *ck) {
    s2_json *j = NULL;
    S2_CHECK(s2_json_parse(text, strlen(text), path, NULL, &j));
    int64_t epoch, step, ntr, nva;
    const char *rng = s2_json_str(j, "rng"), *seed = s2_json_str(j, "seed");
    const s2_json *h = s2_json_get(j, "history");
    int rc = SAM2C_OK;
    if (!s2_json_int(j, "epoch", &epoch) || !s2_json_int(j, "step", &step) ||
        !s2_json_int(j, "n_train", &ntr) || !s2_json_int(j, "n_val", &nva) || !rng || !seed ||
        !h || h->type != S2_JARR || epoch < 0 || epoch > 100000 || h->n != epoch + 1)
        rc = s2_err(SAM2C_ERR_FORMAT, "%s: malformed fine-tuning state in the metadata", path);
    int64_t mods = S2_TRAIN_HEADS, rank = 0;
    double alpha = 0.0;
    s2_json_int(j, "modules", &mods); // absent in files of the heads-only trainer
    s2_json_int(j, "lora_rank", &rank);
    s2_json_num(j, "lora_alpha", &alpha);
    if (rc == SAM2C_OK && (mods < 0 || mods > 0xffff || rank < 0 || rank > 4096))
        rc = s2_err(SAM2C_ERR_FORMAT, "%s: malformed modules / LoRA rank in the metadata", path);
    if (rc == SAM2C_OK) {
        *ck = (s2_ft_ckpt){.epoch = (int)epoch, .step = step, .n_train = (int)ntr,
                           .n_val = (int)nva, .rng = strtoull(rng, NULL, 16),
                           .seed = strtoull(seed, NULL, 10), .n_hist = (int)epoch + 1,
                           .modules = (unsigned)mods, .lora_rank = (int)rank,
                           .lora_alpha = alpha};
        ck->hist = s2_calloc((size_t)ck->n_hist, sizeof *ck->hist);
        if (!ck->hist) rc = SAM2C_ERR_NOMEM;
    }
    for (int e = 0; rc == SAM2C_OK && e < ck->n_hist; e++)
        if (parse_hist_row(s2_json_at(h, e), e, &ck->hist[e]))
            rc = s2_err(SAM2C_ERR_FORMAT, "%s: malformed history row %d", path, e);
    s2_json_free(j);
    return rc;
}

/* The checkpoint's metadata key `key` (a JSON string value), or NULL. */
static char *meta_str(const s2_tensorfile *f, const char *key) {
    if (!f->metadata_json) return NULL;
    s2_json *j = NULL;
    if (s2_json_parse(f->metadata_json, strlen(f->metadata_json), f->path, NULL, &j) < 0) return NULL;
    const char *s = s2_json_str(j, key);
    char *r = s ? s2_strdup(s) : NULL;
    s2_json_free(j);
    return r;
}

int s2_ft_ckpt_load(const char *path, s2_trainable *t, s2_adamw *o, s2_ft_ckpt *ck) {
    *ck = (s2_ft_ckpt){0};
    s2_tensorfile *f = NULL;
    S2_CHECK(s2_safetensors_open(path, &f));
    char *state = meta_str(f, CKPT_KEY), *adam = meta_str(f, "adamw_step");
    int rc = (!state || !adam) ? s2_err(SAM2C_ERR_FORMAT, "%s: not a sam2c fine-tuning checkpoint (no %s metadata)", path, CKPT_KEY)
                               : parse_state(path, state, ck);
    if (rc == SAM2C_OK && (ck->modules != t->modules || ck->lora_rank != t->lora_rank ||
                           (ck->lora_rank && ck->lora_alpha != t->lora_alpha)))
        rc = s2_err(SAM2C_ERR_ARG, "%s: the checkpoint trains modules 0x%x with LoRA rank %d (alpha %g), "
                    "not 0x%x with LoRA rank %d (alpha %g)", path, ck->modules, ck->lora_rank,
                    ck->lora_alpha, t->modules, t->lora_rank, t->lora_alpha);
    for (int k = 0; rc == SAM2C_OK && k < t->n_train; k++) {
        s2_weight *w = &t->m->w[t->idx[k]];
        int64_t n = s2_tensor_numel(&w->t);
        char name[320];
        rc = read_f32(f, w->name, w->t.data, n);
        snprintf(name, sizeof name, "adamw.exp_avg.%s", w->name);
        if (rc == SAM2C_OK) rc = read_f32(f, name, o->m + t->off[k], n);
        snprintf(name, sizeof name, "adamw.exp_avg_sq.%s", w->name);
        if (rc == SAM2C_OK) rc = read_f32(f, name, o->v + t->off[k], n);
    }
    if (rc == SAM2C_OK) o->step = strtoll(adam, NULL, 10);
    if (rc < 0) s2_ft_ckpt_free(ck);
    free(state);
    free(adam);
    s2_tensorfile_free(f);
    return rc;
}

void s2_ft_ckpt_free(s2_ft_ckpt *ck) {
    if (!ck) return;
    free(ck->hist);
    ck->hist = NULL;
    ck->n_hist = 0;
}
