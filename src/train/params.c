/* The trainable parameter set: a clone of a model's weight table whose trainable
 * tensors are private f32 copies, plus one flat gradient buffer laid out like them.
 * ref: training/optimizer.py construct_optimizer (which parameters get weight decay) */
#include "train/train.h"
#include "train/encoder_train.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* True when name starts with prefix. */
static bool starts(const char *name, const char *prefix) {
    return strncmp(name, prefix, strlen(prefix)) == 0;
}

/* Which state_dict entries fine-tuning updates for the selected modules (the prompt
 * encoder's PE matrix is a buffer, never trained). */
static bool is_trainable(const char *name, unsigned mods) {
    if (mods & S2_TRAIN_MASK_DECODER)
        if (starts(name, "sam_mask_decoder.") || !strcmp(name, "no_mem_embed")) return true;
    if ((mods & S2_TRAIN_PROMPT_ENCODER) && starts(name, "sam_prompt_encoder."))
        return strstr(name, "positional_encoding_gaussian_matrix") == NULL;
    if ((mods & S2_TRAIN_IMAGE_ENCODER) && starts(name, "image_encoder.")) return true;
    if (mods & S2_TRAIN_MEMORY) {
        static const char *const mem[] = {"memory_attention.", "memory_encoder.",
                                          "maskmem_tpos_enc", "obj_ptr_proj.",
                                          "obj_ptr_tpos_proj.", "no_obj_ptr",
                                          "no_obj_embed_spatial", "mask_downsample.",
                                          "no_mem_pos_enc"};
        for (size_t i = 0; i < sizeof mem / sizeof *mem; i++)
            if (starts(name, mem[i])) return true;
    }
    return false;
}

// ref: sam2.1_hiera_b+_MOSE_finetune.yaml optim.options.weight_decay
bool s2_train_no_decay(const char *name) {
    if (strstr(name, "bias")) return true;
    /* torch.nn.LayerNorm modules of SAM 2 are all named norm* (norm1..4,
     * norm_final_attn, trunk norms); LayerNorm2d sits at numbered Sequential slots. */
    const char *end = strrchr(name, '.');
    if (!end || strcmp(end, ".weight") != 0) return false;
    const char *mod = end;
    while (mod > name && mod[-1] != '.') mod--;
    return strncmp(mod, "norm", 4) == 0;
}

/* Copies the weight table of base into m (names duplicated, data borrowed) and its
 * lookup table (same names in the same order give the same slots). */
static int clone_table(const sam2c_model *base, sam2c_model *m) {
    m->cfg = base->cfg;
    m->w = s2_calloc((size_t)base->n_w, sizeof *m->w);
    m->hash = s2_malloc((size_t)base->hash_cap * sizeof(int));
    if (!m->w || !m->hash) return SAM2C_ERR_NOMEM;
    m->n_w = base->n_w;
    m->hash_cap = base->hash_cap;
    memcpy(m->hash, base->hash, (size_t)base->hash_cap * sizeof(int));
    for (int i = 0; i < base->n_w; i++) {
        m->w[i].t = base->w[i].t;
        if (!(m->w[i].name = s2_strdup(base->w[i].name))) return SAM2C_ERR_NOMEM;
    }
    snprintf(m->source_format, sizeof m->source_format, "%s", "trainable");
    m->src_dtype = S2_F32;
    return SAM2C_OK;
}

/* True when slot i trains: a selected module's tensor or a LoRA adapter. */
static bool slot_trains(const s2_trainable *t, int i) {
    return i >= t->n_base_w || is_trainable(t->m->w[i].name, t->modules);
}

/* Lays the trainable tensors out in flat buffers (16-float aligned pieces). */
static int layout_trainable(s2_trainable *t) {
    const sam2c_model *m = t->m;
    int n = 0;
    for (int i = 0; i < m->n_w; i++) n += slot_trains(t, i);
    t->idx = s2_calloc((size_t)(n ? n : 1), sizeof(int));
    t->off = s2_calloc((size_t)(n ? n : 1), sizeof(int64_t));
    t->grad = s2_calloc((size_t)m->n_w, sizeof(float *));
    if (!t->idx || !t->off || !t->grad) return SAM2C_ERR_NOMEM;
    int64_t off = 0;
    for (int i = 0, k = 0; i < m->n_w; i++) {
        if (!slot_trains(t, i)) continue;
        t->idx[k] = i;
        t->off[k++] = off;
        off += (s2_tensor_numel(&m->w[i].t) + 15) & ~(int64_t)15;
    }
    t->n_train = n;
    t->n_flat = off;
    return SAM2C_OK;
}

/* Copies the trainable tensors into the clone's own blob and points the table at them
 * (adapters, which have no data yet, start at zero). */
static int own_trainable(s2_trainable *t) {
    sam2c_model *m = t->m;
    m->blob = s2_aligned_alloc((size_t)(t->n_flat + 16) * sizeof(float));
    t->grad_flat = s2_aligned_alloc((size_t)(t->n_flat + 16) * sizeof(float));
    if (!m->blob || !t->grad_flat) return SAM2C_ERR_NOMEM;
    memset(t->grad_flat, 0, (size_t)t->n_flat * sizeof(float));
    for (int k = 0; k < t->n_train; k++) {
        s2_weight *w = &m->w[t->idx[k]];
        float *dst = (float *)m->blob + t->off[k];
        size_t bytes = (size_t)s2_tensor_numel(&w->t) * sizeof(float);
        if (w->t.data) memcpy(dst, w->t.data, bytes);
        else memset(dst, 0, bytes);
        w->t.data = dst;
        t->grad[t->idx[k]] = t->grad_flat + t->off[k];
    }
    return SAM2C_OK;
}

/* Write-only gradient sinks for the frozen heads tensors (the heads' backward runs
 * whenever anything trains, since the encoder's gradient passes through the heads). */
static int sink_frozen_heads(s2_trainable *t) {
    const sam2c_model *m = t->m;
    int64_t n = 0;
    for (int i = 0; i < t->n_base_w; i++)
        if (!t->grad[i] && is_trainable(m->w[i].name, S2_TRAIN_HEADS))
            n += (s2_tensor_numel(&m->w[i].t) + 15) & ~(int64_t)15;
    if (!n) return SAM2C_OK;
    t->sink = s2_aligned_alloc((size_t)(n + 16) * sizeof(float));
    if (!t->sink) return SAM2C_ERR_NOMEM;
    memset(t->sink, 0, (size_t)n * sizeof(float));
    t->n_sink = n;
    int64_t off = 0;
    for (int i = 0; i < t->n_base_w; i++)
        if (!t->grad[i] && is_trainable(m->w[i].name, S2_TRAIN_HEADS)) {
            t->grad[i] = t->sink + off;
            off += (s2_tensor_numel(&m->w[i].t) + 15) & ~(int64_t)15;
        }
    return SAM2C_OK;
}

/* Appends lora_A [R, in] / lora_B [out, R] entries (no data yet) after the base's
 * weights for every Hiera block's attn.qkv and attn.proj weight. */
static int add_adapters(s2_trainable *t, int rank) {
    sam2c_model *m = t->m;
    s2_hiera_block blk[S2_MAX_BLOCKS];
    int nb = s2_hiera_blocks(&m->cfg, blk, S2_MAX_BLOCKS);
    if (nb <= 0 || nb > S2_MAX_BLOCKS) return s2_err(SAM2C_ERR_UNSUPPORTED, "lora: %d Hiera blocks", nb);
    t->lora = s2_calloc((size_t)(2 * nb), sizeof *t->lora);
    s2_weight *w = s2_realloc(m->w, sizeof *w * (size_t)(m->n_w + 4 * nb));
    if (!t->lora || !w) return SAM2C_ERR_NOMEM;
    m->w = w;
    for (int i = 0; i < 2 * nb; i++) {
        const char *kind = i % 2 ? "proj" : "qkv";
        int tg = s2_weight_slot(m, "image_encoder.trunk.blocks.%d.attn.%s.weight", i / 2, kind);
        if (tg < 0 || m->w[tg].t.ndim != 2)
            return s2_err(SAM2C_ERR_UNSUPPORTED, "lora: block %d has no 2-D attn.%s weight", i / 2, kind);
        int64_t out = m->w[tg].t.shape[0], in = m->w[tg].t.shape[1];
        for (int ab = 0; ab < 2; ab++) {
            char name[160];
            snprintf(name, sizeof name, "image_encoder.trunk.blocks.%d.attn.%s.lora_%c.weight", i / 2, kind, ab ? 'B' : 'A');
            s2_weight *e = &m->w[m->n_w];
            *e = (s2_weight){.name = s2_strdup(name), .t = {.dtype = S2_F32, .ndim = 2}};
            if (!e->name) return SAM2C_ERR_NOMEM;
            e->t.shape[0] = ab ? out : rank;
            e->t.shape[1] = ab ? rank : in;
            m->n_w++;
        }
        t->lora[i] = (s2_lora){tg, m->n_w - 2, m->n_w - 1};
    }
    t->n_lora = 2 * nb;
    return SAM2C_OK;
}

/* The default set: the SAM heads, as the default fine-tuning trains them. */
int s2_trainable_create(const sam2c_model *base, s2_trainable **out) {
    return s2_trainable_create_sel(base, S2_TRAIN_HEADS, out);
}

/* Clone + private copies of the trainable tensors + zeroed gradients. */
int s2_trainable_create_sel(const sam2c_model *base, unsigned modules, s2_trainable **out) {
    return s2_trainable_create_lora(base, modules, 0, 0.0, 0, out);
}

/* Clone, adapters (rank > 0), layout, private copies, sinks, adapter init. */
int s2_trainable_create_lora(const sam2c_model *base, unsigned modules, int rank,
                             double alpha, uint64_t seed, s2_trainable **out) {
    *out = NULL;
    if (!base || !base->hash) return s2_err(SAM2C_ERR_ARG, "trainable: no model");
    if (rank < 0 || rank > 4096) return s2_err(SAM2C_ERR_ARG, "trainable: LoRA rank %d not in [0, 4096]", rank);
    if (rank > 0) modules &= ~(unsigned)S2_TRAIN_IMAGE_ENCODER;
    if (!modules && !rank) return s2_err(SAM2C_ERR_ARG, "trainable: no module selected");
    s2_trainable *t = s2_calloc(1, sizeof *t);
    if (!t) return SAM2C_ERR_NOMEM;
    t->base = base;
    t->modules = modules;
    t->n_base_w = base->n_w;
    t->lora_rank = rank;
    t->lora_alpha = rank > 0 ? (alpha > 0.0 ? alpha : (double)rank) : 0.0;
    t->lora_scale = rank > 0 ? (float)(t->lora_alpha / rank) : 0.0f;
    t->m = s2_calloc(1, sizeof *t->m);
    int rc = t->m ? clone_table(base, t->m) : SAM2C_ERR_NOMEM;
    if (rc == SAM2C_OK && rank > 0) rc = add_adapters(t, rank);
    if (rc == SAM2C_OK) rc = layout_trainable(t);
    if (rc == SAM2C_OK) rc = own_trainable(t);
    if (rc == SAM2C_OK) rc = sink_frozen_heads(t);
    if (rc < 0) {
        s2_trainable_free(t);
        return rc;
    }
    if (rank > 0) s2_lora_init(t, seed);
    *out = t;
    return SAM2C_OK;
}

/* The clone owns names, table and trainable blob; the base model is untouched. */
void s2_trainable_free(s2_trainable *t) {
    if (!t) return;
    sam2c_model_free(t->m); /* frees the names, table, lookup and the trainable blob */
    free(t->idx);
    free(t->off);
    free(t->grad);
    s2_aligned_free(t->grad_flat);
    s2_aligned_free(t->sink);
    free(t->lora);
    s2_aligned_free(t->lora_buf);
    free(t);
}

/* Gradients accumulate (+=): cleared before every optimizer step. */
void s2_trainable_zero_grad(s2_trainable *t) {
    memset(t->grad_flat, 0, (size_t)t->n_flat * sizeof(float));
    if (t->sink) memset(t->sink, 0, (size_t)t->n_sink * sizeof(float));
}

/* Slot of a weight found by the lookup (the table's own entries only). */
static int slot_of(const sam2c_model *m, const char *name) {
    const s2_tensor *w = s2_w_opt(m, "%s", name);
    return w ? (int)((const s2_weight *)((const char *)w - offsetof(s2_weight, t)) - m->w) : -1;
}

/* Name -> slot through the clone's lookup (adapters, unhashed, by a scan). */
int s2_weight_slot(const sam2c_model *m, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int i = slot_of(m, name);
    for (int j = m->n_w - 1; i < 0 && j >= 0 && strstr(name, ".lora_"); j--)
        if (!strcmp(m->w[j].name, name)) i = j;
    return i;
}

/* Name -> weight slot -> gradient buffer, or NULL when frozen. */
float *s2_grad_opt(const s2_trainable *t, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int i = s2_weight_slot(t->m, "%s", name);
    return i >= 0 ? t->grad[i] : NULL;
}

/* Name -> weight slot (through the clone's lookup) -> gradient buffer. */
float *s2_grad(const s2_trainable *t, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int i = slot_of(t->m, name);
    if (i < 0 || !t->grad[i]) {
        /* Internal invariant: the training code asks only for trainable names. */
        fprintf(stderr, "sam2c: internal error: no gradient for weight '%s'\n", name);
        abort();
    }
    return t->grad[i];
}

/* Tape floats come from the tape context's arena. */
float *s2_tape_f32(s2_tctx *t, int64_t n) { return s2_scratch_f32(&t->tape, n); }
