/* AdamW with the sam2.1 training YAML's parameter groups, gradient clipping by the
 * global L2 norm and the cosine learning-rate schedule.
 * ref: torch/optim/adamw.py (single-tensor path), torch/nn/utils/clip_grad.py,
 *      fvcore/common/param_scheduler.py CosineParamScheduler,
 *      sam2/configs/sam2.1_training/sam2.1_hiera_b+_MOSE_finetune.yaml optim */
#include "train/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Zeroed moments laid out like the trainable buffers. */
int s2_adamw_init(s2_adamw *o, const s2_trainable *t, double weight_decay) {
    *o = (s2_adamw){.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = weight_decay};
    o->m = s2_aligned_alloc((size_t)(t->n_flat + 16) * sizeof(float));
    o->v = s2_aligned_alloc((size_t)(t->n_flat + 16) * sizeof(float));
    if (!o->m || !o->v) {
        s2_adamw_free(o);
        return SAM2C_ERR_NOMEM;
    }
    memset(o->m, 0, (size_t)t->n_flat * sizeof(float));
    memset(o->v, 0, (size_t)t->n_flat * sizeof(float));
    return SAM2C_OK;
}

/* Frees the moments; the struct may be re-initialised. */
void s2_adamw_free(s2_adamw *o) {
    if (!o) return;
    s2_aligned_free(o->m);
    s2_aligned_free(o->v);
    free(o->lr_scale);
    o->m = o->v = NULL;
    o->lr_scale = NULL;
}

// ref: sam2.1 training YAML optim.options.lr (a scheduler per parameter group)
int s2_adamw_set_lr_scale(s2_adamw *o, const s2_trainable *t, const char *prefix, double scale) {
    if (!o->lr_scale) {
        o->lr_scale = s2_malloc(sizeof(float) * (size_t)(t->n_train ? t->n_train : 1));
        if (!o->lr_scale) return SAM2C_ERR_NOMEM;
        for (int k = 0; k < t->n_train; k++) o->lr_scale[k] = 1.0f;
    }
    for (int k = 0; k < t->n_train; k++)
        if (!strncmp(t->m->w[t->idx[k]].name, prefix, strlen(prefix))) o->lr_scale[k] = (float)scale;
    return SAM2C_OK;
}

// ref: torch/optim/adamw.py _single_tensor_adamw (amsgrad False, maximize False)
void s2_adamw_step(s2_adamw *o, s2_trainable *t, double lr) {
    o->step++;
    double bc1 = 1.0 - pow(o->beta1, (double)o->step), bc2 = 1.0 - pow(o->beta2, (double)o->step);
    float bc2_sqrt = (float)sqrt(bc2);
    float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
    for (int k = 0; k < t->n_train; k++) {
        double lr_k = o->lr_scale ? lr * o->lr_scale[k] : lr;
        float step_size = (float)(lr_k / bc1);
        s2_weight *w = &t->m->w[t->idx[k]];
        float *p = w->t.data, *g = t->grad[t->idx[k]];
        float *m = o->m + t->off[k], *v = o->v + t->off[k];
        double wd = s2_train_no_decay(w->name) ? 0.0 : o->weight_decay;
        float decay = (float)(1.0 - lr_k * wd);
        int64_t n = s2_tensor_numel(&w->t);
        for (int64_t i = 0; i < n; i++) {
            p[i] *= decay;
            m[i] = m[i] * b1 + g[i] * (1.0f - b1);
            v[i] = v[i] * b2 + g[i] * g[i] * (1.0f - b2);
            float denom = sqrtf(v[i]) / bc2_sqrt + eps;
            p[i] -= step_size * (m[i] / denom);
        }
    }
}

// ref: torch/nn/utils/clip_grad.py clip_grad_norm_ (norm_type 2, foreach off)
double s2_clip_grad_norm(s2_trainable *t, double max_norm) {
    double total = 0.0;
    for (int k = 0; k < t->n_train; k++) {
        const float *g = t->grad[t->idx[k]];
        int64_t n = s2_tensor_numel(&t->m->w[t->idx[k]].t);
        double s = 0.0;
        for (int64_t i = 0; i < n; i++) s += (double)g[i] * g[i];
        total += s;
    }
    total = sqrt(total);
    double coef = max_norm / (total + 1e-6);
    if (coef < 1.0)
        for (int64_t i = 0; i < t->n_flat; i++) t->grad_flat[i] *= (float)coef;
    return total;
}

// ref: fvcore CosineParamScheduler.__call__
double s2_cosine_schedule(double start, double end, double where) {
    if (where < 0.0) where = 0.0;
    if (where > 1.0) where = 1.0;
    return end + 0.5 * (start - end) * (1.0 + cos(M_PI * where));
}
