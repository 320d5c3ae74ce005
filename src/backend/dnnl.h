/* Fast CPU backends: oneDNN matmul / convolution primitives (f32 or bf16) and the
 * flash-style tiled attention kernel. Only the CLI, the predictors' owners and tests
 * include this header; model code sees nothing but backend.h.
 *
 * Everything here builds without oneDNN: s2_backend_dnnl() then returns NULL with a
 * message, and the flash attention kernel still works (it needs no library). */
#ifndef S2_BACKEND_DNNL_H
#define S2_BACKEND_DNNL_H

#include "backend/backend.h"

typedef enum {
    S2_DNNL_F32 = 0,  /* f32 everywhere (matches the reference within f32 rounding) */
    S2_DNNL_BF16 = 1  /* bf16 activations and weights, f32 accumulation and outputs */
} s2_dnnl_mode;

/* The process-wide oneDNN backend of that mode, created on first use (engine, primitive
 * cache and weight cache live until exit; the caches are shared by every session and
 * guarded by a mutex). NULL with a message (sam2c_last_error) when the library was
 * built without oneDNN or the engine cannot be created.
 *
 * Caches: primitives are keyed by shape, mode and OpenMP thread count; converted or
 * reordered weights by (pointer, shape, mode, layout) plus a fingerprint of sampled
 * values, so a model freed and another loaded at the same address is detected. */
const s2_backend *s2_backend_dnnl(s2_dnnl_mode mode);

/* "ref" / "reference", "dnnl" (f32), "dnnl-f32", "dnnl-bf16"; NULL + message else. */
const s2_backend *s2_backend_by_name(const char *name);

/* CLI helper: backend "ref" | "dnnl" | "auto" (or NULL = "auto") and dtype "f32" |
 * "bf16" (or NULL = f32) into *out. "auto" is the fastest backend that holds the bf16
 * agreement rule (bf16 masks at IoU >= 0.99 of f32 ones, IoU predictions within 0.02,
 * on the fixture cases whose decision margins exceed 0.01; tests/test_bf16_agreement.c
 * computes the margins): bf16 does not hold it on the micro fixtures (IoU down to 0.84
 * on well-margined groceries cases), so auto is oneDNN f32 when built in, else the
 * reference; bf16 must be asked for. "ref" with "bf16" is an error (the reference
 * kernels are f32 only). 0 or SAM2C_ERR_ARG / SAM2C_ERR_UNSUPPORTED with a message. */
int s2_backend_from_args(const char *backend, const char *dtype, const s2_backend **out);

/* One line describing oneDNN (version, CPU runtime, ISA) or why it is absent. */
const char *s2_dnnl_info(void);

/* Per-op-kind timing of oneDNN backend calls (process-wide, off by default; for
 * `sam2c bench --profile`). Counters are updated atomically. */
typedef enum { S2_OPK_LINEAR = 0, S2_OPK_MATMUL, S2_OPK_CONV, S2_OPK_ATTN, S2_OPK_COUNT } s2_op_kind;
typedef struct s2_op_stats {
    double seconds[S2_OPK_COUNT];
    double flops[S2_OPK_COUNT];   /* 2 x multiply-accumulates */
    int64_t calls[S2_OPK_COUNT];
} s2_op_stats;
void s2_dnnl_profile_enable(bool on);
void s2_dnnl_profile_get(s2_op_stats *out);
void s2_dnnl_profile_reset(void);
const char *s2_op_kind_name(s2_op_kind k);

/* ---- flash attention (src/backend/flash_attention.c) ---- */

/* Same contract as s2_ref_attention. bf16: q k^T and p v products in bf16 with f32
 * accumulation (only when the CPU has AVX512-BF16; else f32). ws: workspace of at least
 * s2_flash_attention_ws(...) bytes for the current OpenMP thread count; with less (or
 * NULL) the reference kernel runs instead. */
void s2_flash_attention(float *o, int64_t o_ld, const float *q, int64_t q_ld, const float *k,
                        int64_t k_ld, const float *v, int64_t v_ld, int B, int H, int64_t Nq,
                        int64_t Nk, int d, bool bf16, void *ws, size_t ws_bytes);
size_t s2_flash_attention_ws(int B, int H, int64_t Nq, int64_t Nk, int d, bool bf16, int nthr);
/* Kernels the CPU runs: 0 plain C, 1 AVX-512F, 2 AVX-512F with BF16 dot products;
 * the environment variable SAM2C_FLASH_ISA=0|1 caps it (tests, comparisons). */
int s2_flash_attention_isa(void);

/* ---- attention with few keys (src/backend/small_attention.c) ---- */

/* True when s2_small_attention handles the shape on this CPU: AVX-512, d a multiple of
 * 16 up to 64, Nk <= 16 (the mask decoder's image -> token attention). */
bool s2_small_attention_fits(int64_t Nq, int64_t Nk, int d);
/* Same contract as s2_ref_attention (f32, exact two-pass softmax), for shapes that fit. */
void s2_small_attention(float *o, int64_t o_ld, const float *q, int64_t q_ld, const float *k, int64_t k_ld,
                        const float *v, int64_t v_ld, int B, int H, int64_t Nq, int64_t Nk, int d);

#endif
