/* The narrow interface between model code and compute backends. Model code calls the
 * s2_op_* functions with an s2_ctx; the context's backend runs them (reference C, oneDNN
 * f32/bf16, later CUDA). A backend may leave any slot NULL: the reference kernel runs.
 * Model files include this header, never a backend's own. */
#ifndef S2_BACKEND_H
#define S2_BACKEND_H

#include "kernels/kernels.h"
#include "core/s2.h"

typedef struct s2_backend {
    const char *name;
    void (*linear)(void *self, float *y, const float *x, const float *w, const float *b,
                   int64_t M, int64_t K, int64_t N);
    void (*matmul)(void *self, float *c, const float *a, const float *b, int64_t M,
                   int64_t K, int64_t N, bool trans_b, float alpha, float beta);
    void (*conv2d)(void *self, float *y, const float *x, const float *w, const float *b,
                   const s2_conv2d_desc *d);
    void (*attention)(void *self, float *o, int64_t o_ld, const float *q, int64_t q_ld,
                      const float *k, int64_t k_ld, const float *v, int64_t v_ld, int B,
                      int H, int64_t Nq, int64_t Nk, int d);
    /* Optional slots (NULL: the s2_op_* below fall back to the slots above plus the
     * reference kernels, with the same results as the reference for NULL slots). */
    void (*linear_act)(void *self, float *y, const float *x, const float *w, const float *b,
                       int64_t M, int64_t K, int64_t N, s2_act act);
    void (*gelu)(void *self, float *x, int64_t n);
    void (*layernorm)(void *self, float *y, const float *x, const float *g, const float *b,
                      int64_t rows, int64_t C, float eps);
    void (*layernorm2d)(void *self, float *y, const float *x, const float *g, const float *b,
                        int N, int C, int64_t HW, float eps);
    void (*conv_transpose2d)(void *self, float *y, const float *x, const float *w,
                             const float *b, const s2_convt_desc *d);
    /* y = act(x w1^T + b1) w2^T + b2; hidden: M*Hd floats the slot may use as it likes */
    void (*mlp)(void *self, float *y, const float *x, const float *w1, const float *b1,
                const float *w2, const float *b2, int64_t M, int64_t K, int64_t Hd, int64_t N,
                s2_act act, float *hidden);
    void *self;
} s2_backend;

/* Optional observer of intermediate tensors (for --dump and parity tests): called with
 * the fixture name of a tensor ("trunk.block.3", "backbone_fpn.0", ...), its data (f32,
 * contiguous) and its shape. Never retains the pointer. */
typedef void (*s2_dump_fn)(void *user, const char *name, const float *data, int ndim,
                           const int64_t *shape);

/* Per-call context: the backend, the session's scratch arena, an optional dump hook. */
typedef struct s2_ctx {
    const s2_backend *be;   /* NULL = reference */
    s2_arena *scratch;      /* activations; reset by the caller between calls */
    s2_dump_fn dump;        /* NULL = no dumping */
    void *dump_user;
} s2_ctx;

/* Calls c->dump when set; shape given as a list: s2_dump(c, "x", p, 4, (int64_t[]){1,2,3,4}). */
static inline void s2_dump(s2_ctx *c, const char *name, const float *data, int ndim,
                           const int64_t *shape) {
    if (c && c->dump) c->dump(c->dump_user, name, data, ndim, shape);
}

const s2_backend *s2_backend_reference(void);

void s2_op_linear(s2_ctx *c, float *y, const float *x, const float *w, const float *b,
                  int64_t M, int64_t K, int64_t N);
void s2_op_matmul(s2_ctx *c, float *y, const float *a, const float *b, int64_t M,
                  int64_t K, int64_t N, bool trans_b, float alpha, float beta);
void s2_op_conv2d(s2_ctx *c, float *y, const float *x, const float *w, const float *b,
                  const s2_conv2d_desc *d);
void s2_op_attention(s2_ctx *c, float *o, int64_t o_ld, const float *q, int64_t q_ld,
                     const float *k, int64_t k_ld, const float *v, int64_t v_ld, int B,
                     int H, int64_t Nq, int64_t Nk, int d);
/* y = act(x w^T + b) (Linear with its activation fused where the backend can). */
void s2_op_linear_act(s2_ctx *c, float *y, const float *x, const float *w, const float *b,
                      int64_t M, int64_t K, int64_t N, s2_act act);
/* Two-layer MLP y = act(x w1^T + b1) w2^T + b2 (w1 [Hd, K], w2 [N, Hd]); the hidden
 * layer comes from the scratch arena and is released before returning. */
void s2_op_mlp(s2_ctx *c, float *y, const float *x, const float *w1, const float *b1,
               const float *w2, const float *b2, int64_t M, int64_t K, int64_t Hd, int64_t N,
               s2_act act);
/* Exact-erf GELU in place. */
void s2_op_gelu(s2_ctx *c, float *x, int64_t n);
/* LayerNorm over the last dimension / SAM's LayerNorm2d over NCHW channels (in place ok). */
void s2_op_layernorm(s2_ctx *c, float *y, const float *x, const float *g, const float *b,
                     int64_t rows, int64_t C, float eps);
void s2_op_layernorm2d(s2_ctx *c, float *y, const float *x, const float *g, const float *b,
                       int N, int C, int64_t HW, float eps);
/* Kernel == stride transposed convolution with its epilogue (see s2_convt_desc). */
void s2_op_conv_transpose2d(s2_ctx *c, float *y, const float *x, const float *w,
                            const float *b, const s2_convt_desc *d);
/* Scratch allocation that cannot fail silently: on exhaustion the arena grows. */
float *s2_scratch_f32(s2_ctx *c, int64_t n);

#endif
