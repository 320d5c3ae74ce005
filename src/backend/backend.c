/* The reference backend and the s2_op_* dispatch: each op calls the context's backend
 * slot when there is one, else the reference kernel of src/kernels. */
#include "backend/backend.h"

#include <stdio.h>
#include <stdlib.h>

// Adapters from the backend slot signature (with `self`) to the reference kernels.
static void ref_linear(void *self, float *y, const float *x, const float *w, const float *b,
                       int64_t M, int64_t K, int64_t N) {
    s2_ref_linear(y, x, w, b, M, K, N);
}

static void ref_matmul(void *self, float *c, const float *a, const float *b, int64_t M,
                       int64_t K, int64_t N, bool trans_b, float alpha, float beta) {
    s2_ref_matmul(c, a, b, M, K, N, trans_b, alpha, beta);
}

static void ref_conv2d(void *self, float *y, const float *x, const float *w, const float *b,
                       const s2_conv2d_desc *d) {
    s2_ref_conv2d(y, x, w, b, d);
}

static void ref_attention(void *self, float *o, int64_t o_ld, const float *q, int64_t q_ld,
                          const float *k, int64_t k_ld, const float *v, int64_t v_ld, int B,
                          int H, int64_t Nq, int64_t Nk, int d) {
    s2_ref_attention(o, o_ld, q, q_ld, k, k_ld, v, v_ld, B, H, Nq, Nk, d);
}

static const s2_backend s2_reference_backend = {
    .name = "reference",
    .linear = ref_linear,
    .matmul = ref_matmul,
    .conv2d = ref_conv2d,
    .attention = ref_attention,
    .self = NULL,
};

// The plain C backend (immutable, shared by every session).
const s2_backend *s2_backend_reference(void) { return &s2_reference_backend; }

// y[M,N] = x[M,K] w[N,K]^T + b
void s2_op_linear(s2_ctx *c, float *y, const float *x, const float *w, const float *b,
                  int64_t M, int64_t K, int64_t N) {
    if (c && c->be && c->be->linear) c->be->linear(c->be->self, y, x, w, b, M, K, N);
    else s2_ref_linear(y, x, w, b, M, K, N);
}

// y = alpha a op(b) + beta y
void s2_op_matmul(s2_ctx *c, float *y, const float *a, const float *b, int64_t M,
                  int64_t K, int64_t N, bool trans_b, float alpha, float beta) {
    if (c && c->be && c->be->matmul)
        c->be->matmul(c->be->self, y, a, b, M, K, N, trans_b, alpha, beta);
    else s2_ref_matmul(y, a, b, M, K, N, trans_b, alpha, beta);
}

// NCHW convolution described by d
void s2_op_conv2d(s2_ctx *c, float *y, const float *x, const float *w, const float *b,
                  const s2_conv2d_desc *d) {
    if (c && c->be && c->be->conv2d) c->be->conv2d(c->be->self, y, x, w, b, d);
    else s2_ref_conv2d(y, x, w, b, d);
}

// softmax(q k^T / sqrt(d)) v on row-strided heads
void s2_op_attention(s2_ctx *c, float *o, int64_t o_ld, const float *q, int64_t q_ld,
                     const float *k, int64_t k_ld, const float *v, int64_t v_ld, int B,
                     int H, int64_t Nq, int64_t Nk, int d) {
    if (c && c->be && c->be->attention)
        c->be->attention(c->be->self, o, o_ld, q, q_ld, k, k_ld, v, v_ld, B, H, Nq, Nk, d);
    else s2_ref_attention(o, o_ld, q, q_ld, k, k_ld, v, v_ld, B, H, Nq, Nk, d);
}

// Reference activation in place.
static void ref_act(float *y, int64_t n, s2_act act) {
    if (act == S2_ACT_GELU) s2_ref_gelu(y, n);
    else if (act == S2_ACT_RELU) s2_ref_relu(y, n);
}

// y = act(x w^T + b): the fused slot, else linear then the reference activation
void s2_op_linear_act(s2_ctx *c, float *y, const float *x, const float *w, const float *b,
                      int64_t M, int64_t K, int64_t N, s2_act act) {
    if (c && c->be && c->be->linear_act) {
        c->be->linear_act(c->be->self, y, x, w, b, M, K, N, act);
        return;
    }
    s2_op_linear(c, y, x, w, b, M, K, N);
    ref_act(y, M * N, act);
}

// act(x w1^T + b1) w2^T + b2 with the hidden layer in the arena
void s2_op_mlp(s2_ctx *c, float *y, const float *x, const float *w1, const float *b1,
               const float *w2, const float *b2, int64_t M, int64_t K, int64_t Hd, int64_t N,
               s2_act act) {
    s2_arena_mark mk = s2_arena_get_mark(c->scratch);
    float *h = s2_scratch_f32(c, M * Hd); // (M, Hd)
    if (c->be && c->be->mlp) {
        c->be->mlp(c->be->self, y, x, w1, b1, w2, b2, M, K, Hd, N, act, h);
    } else {
        s2_op_linear_act(c, h, x, w1, b1, M, K, Hd, act);
        s2_op_linear(c, y, h, w2, b2, M, Hd, N);
    }
    s2_arena_release(c->scratch, mk);
}

// exact GELU in place
void s2_op_gelu(s2_ctx *c, float *x, int64_t n) {
    if (c && c->be && c->be->gelu) c->be->gelu(c->be->self, x, n);
    else s2_ref_gelu(x, n);
}

// LayerNorm over rows of C
void s2_op_layernorm(s2_ctx *c, float *y, const float *x, const float *g, const float *b,
                     int64_t rows, int64_t C, float eps) {
    if (c && c->be && c->be->layernorm) c->be->layernorm(c->be->self, y, x, g, b, rows, C, eps);
    else s2_ref_layernorm(y, x, g, b, rows, C, eps);
}

// LayerNorm2d over the channels of NCHW
void s2_op_layernorm2d(s2_ctx *c, float *y, const float *x, const float *g, const float *b,
                       int N, int C, int64_t HW, float eps) {
    if (c && c->be && c->be->layernorm2d) c->be->layernorm2d(c->be->self, y, x, g, b, N, C, HW, eps);
    else s2_ref_layernorm2d(y, x, g, b, N, C, HW, eps);
}

// kernel == stride transposed convolution with epilogue
void s2_op_conv_transpose2d(s2_ctx *c, float *y, const float *x, const float *w,
                            const float *b, const s2_convt_desc *d) {
    if (c && c->be && c->be->conv_transpose2d) c->be->conv_transpose2d(c->be->self, y, x, w, b, d);
    else s2_ref_conv_transpose2d(y, x, w, b, d);
}

/* n floats from the session arena (64-byte aligned; the arena grows by chaining
 * chunks). Running out of memory here is an internal invariant violation in the hot
 * path (activation sizes are fixed by the model and checked when a session is
 * created), so it prints a message and aborts instead of returning NULL. A NULL
 * context or arena is a programming error and aborts the same way. */
float *s2_scratch_f32(s2_ctx *c, int64_t n) {
    if (!c || !c->scratch || n < 0 || (uint64_t)n > SIZE_MAX / sizeof(float)) {
        fprintf(stderr, "sam2c: s2_scratch_f32: invalid request (%lld floats)\n",
                (long long)n);
        abort();
    }
    float *p = s2_arena_alloc(c->scratch, (size_t)n * sizeof(float));
    if (!p) {
        fprintf(stderr, "sam2c: out of memory: scratch arena cannot grow by %lld floats\n",
                (long long)n);
        abort();
    }
    return p;
}
