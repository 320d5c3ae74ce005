/* LoRA adapters on the image encoder's attention projections: a frozen Linear weight
 * W [out, in] is used as W + scale B A, A [R, in] and B [out, R] trained, scale =
 * alpha / R. The forward folds the adapter into a tape copy of W (one small GEMM per
 * projection), so the Linear kernels are unchanged; the backward turns the effective
 * weight's gradient dW into dA = scale B^T dW and dB = scale dW A^T.
 * ref: peft/tuners/lora/layer.py Linear.forward / reset_lora_parameters / merge */
#include "train/encoder_train.h"
#include "train/grad_ops.h"
#include "train/step.h"

#include <math.h>
#include <string.h>

/* The adapter whose target is slot widx, or NULL. */
static const s2_lora *find(const s2_trainable *p, int widx) {
    for (int i = 0; p && i < p->n_lora; i++)
        if (p->lora[i].target == widx) return &p->lora[i];
    return NULL;
}

/* y [out, in] = W + scale B A (reference GEMM: merged weights do not depend on the
 * backend). */
static void fold(float *y, const s2_trainable *p, const s2_lora *l) {
    const s2_tensor *W = &p->m->w[l->target].t;
    int64_t out = W->shape[0], in = W->shape[1];
    memcpy(y, W->data, sizeof(float) * (size_t)(out * in));
    s2_ref_matmul(y, p->m->w[l->b].t.data, p->m->w[l->a].t.data, out, p->lora_rank, in, false,
                  p->lora_scale, 1.0f);
}

// ref: peft/tuners/lora/layer.py Linear.forward (result + lora_B(lora_A(x)) * scaling)
const float *s2_lora_weight(s2_tctx *t, int widx) {
    const s2_lora *l = t->p && !t->p->lora_merged ? find(t->p, widx) : NULL;
    if (!l) return t->m->w[widx].t.data;
    float *y = s2_tape_f32(t, s2_tensor_numel(&t->m->w[widx].t));
    fold(y, t->p, l);
    return y;
}

// ref: autograd of W + scale B A: dB = scale dW A^T, dA = scale B^T dW
void s2_lora_backward(s2_tctx *t, int widx, const float *dW) {
    const s2_trainable *p = t->p;
    const s2_lora *l = p && !p->lora_merged ? find(p, widx) : NULL;
    if (!l || !dW) return;
    const s2_tensor *W = &p->m->w[l->target].t;
    int64_t out = W->shape[0], in = W->shape[1], R = p->lora_rank;
    const float *A = p->m->w[l->a].t.data, *B = p->m->w[l->b].t.data;
    s2_op_matmul(t->c, p->grad[l->b], dW, A, out, in, R, true, p->lora_scale, 1.0f); // (out,in)(R,in)^T
    s2_arena_mark mk = s2_arena_get_mark(t->c->scratch);
    float *bt = s2_scratch_f32(t->c, R * out); // (R, out)
    s2_transpose(bt, B, out, R);
    s2_op_matmul(t->c, p->grad[l->a], bt, dW, R, out, in, false, p->lora_scale, 1.0f);
    s2_arena_release(t->c->scratch, mk);
}

// ref: peft/tuners/lora/layer.py LoraLayer.reset_lora_parameters (init_lora_weights=True:
// kaiming_uniform_(A, a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), B zeros)
void s2_lora_init(s2_trainable *t, uint64_t seed) {
    uint64_t mix = seed ^ 0x632be59bd9b4e019ull, rng = s2_rng_next(&mix); // hashed seed
    for (int i = 0; i < t->n_lora; i++) {
        s2_tensor *A = &t->m->w[t->lora[i].a].t, *B = &t->m->w[t->lora[i].b].t;
        double bound = 1.0 / sqrt((double)A->shape[1]);
        float *a = A->data;
        for (int64_t j = 0; j < s2_tensor_numel(A); j++) a[j] = (float)((2.0 * s2_rng_uniform(&rng) - 1.0) * bound);
        memset(B->data, 0, sizeof(float) * (size_t)s2_tensor_numel(B));
    }
}

// ref: peft/tuners/lora/layer.py Linear.merge (W += delta_weight)
int s2_lora_merge(s2_trainable *t) {
    if (!t || !t->n_lora || t->lora_merged) return SAM2C_OK;
    int64_t n = 0;
    for (int i = 0; i < t->n_lora; i++) n += (s2_tensor_numel(&t->m->w[t->lora[i].target].t) + 15) & ~(int64_t)15;
    t->lora_buf = s2_aligned_alloc(sizeof(float) * (size_t)(n + 16));
    if (!t->lora_buf) return SAM2C_ERR_NOMEM;
    int64_t off = 0;
    for (int i = 0; i < t->n_lora; i++) {
        s2_tensor *W = &t->m->w[t->lora[i].target].t;
        fold(t->lora_buf + off, t, &t->lora[i]);
        W->data = t->lora_buf + off;
        off += (s2_tensor_numel(W) + 15) & ~(int64_t)15;
    }
    t->lora_merged = true;
    return SAM2C_OK;
}

/* Merged data of slot i without touching t. */
const float *s2_lora_merged_data(const s2_trainable *t, int i, float *buf) {
    const s2_lora *l = !t->lora_merged ? find(t, i) : NULL;
    if (!l) return t->m->w[i].t.data;
    fold(buf, t, l);
    return buf;
}
