/* Reference scaled dot-product attention: softmax(q k^T / sqrt(d)) v per batch b and
 * head h, on the row-strided layout of kernels.h (tokens are rows holding all heads).
 * Letters: B batch, H heads, Nq queries, Nk keys, d head dim, QB query block.
 *
 * One task = one (b, h, block of QB queries): the scores of that block only are
 * materialised (QB x Nk floats per thread), softmaxed row by row, and multiplied by
 * v. Each score is the sequential f32 dot product over d times 1/sqrt(d); each output
 * the sequential sum over keys; so results do not depend on the thread count. */
#include "kernels/kernels.h"
#include "kernels/ref_internal.h"

#include <math.h>
#include <stdlib.h>

enum { QB = 64 };

// One (b, h, query block) task: rows [i0, i0+nq) of head h in batch b.
static void attention_block(float *o, int64_t o_ld, const float *q, int64_t q_ld,
                            const float *k, int64_t k_ld, const float *v, int64_t v_ld,
                            int64_t Nk, int d, int64_t nq, float scale, float *s) {
    // s (nq, Nk) = scale * q_blk (nq, d) . k (Nk, d)^T
    s2_gemm qk = {.M = nq, .N = Nk, .K = d, .a = q, .lda = q_ld,
                  .b = {.kind = S2_GB_NK, .p = k, .ld = k_ld},
                  .c = s, .ldc = Nk, .alpha = scale, .beta = 0.0f};
    s2_gemm_serial(&qk);
    for (int64_t i = 0; i < nq; i++) s2_softmax_row(s + i * Nk, Nk);
    // o_blk (nq, d) = s (nq, Nk) . v (Nk, d)
    s2_gemm pv = {.M = nq, .N = d, .K = Nk, .a = s, .lda = Nk,
                  .b = {.kind = S2_GB_KN, .p = v, .ld = v_ld},
                  .c = o, .ldc = o_ld, .alpha = 1.0f, .beta = 0.0f};
    s2_gemm_serial(&pv);
}

// ref: torch.nn.functional.scaled_dot_product_attention (no mask, no dropout)
void s2_ref_attention(float *o, int64_t o_ld, const float *q, int64_t q_ld,
                      const float *k, int64_t k_ld, const float *v, int64_t v_ld,
                      int B, int H, int64_t Nq, int64_t Nk, int d) {
    if (B <= 0 || H <= 0 || Nq <= 0 || d <= 0) return;
    float scale = (float)(1.0 / sqrt((double)d));
    int64_t nblk = (Nq + QB - 1) / QB, tasks = (int64_t)B * H * nblk;
#pragma omp parallel if (tasks > 1)
    {
        float *s = s2_kernel_alloc((size_t)QB * (size_t)(Nk > 0 ? Nk : 1) * sizeof(float),
                                   "attention scores"); // (QB, Nk)
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tasks; t++) {
            int64_t b = t / (H * nblk), h = (t / nblk) % H, i0 = (t % nblk) * QB;
            int64_t nq = S2_REF_MIN((int64_t)QB, Nq - i0);
            attention_block(o + (b * Nq + i0) * o_ld + h * d, o_ld,
                            q + (b * Nq + i0) * q_ld + h * d, q_ld,
                            k + b * Nk * k_ld + h * d, k_ld, v + b * Nk * v_ld + h * d, v_ld,
                            Nk, d, nq, scale, s);
        }
        free(s);
    }
}
