/* Tensors: a small struct in PyTorch order (outermost dimension first).
 * Data is borrowed (points into a weight arena, a mapped file or a session arena);
 * a tensor never owns memory. */
#ifndef S2_TENSOR_H
#define S2_TENSOR_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#define S2_MAX_DIMS 8 /* files may hold up to 8; model tensors use at most 5 */

/* Every safetensors dtype; the weight loader accepts F32, F16 and BF16. */
typedef enum {
    S2_F32 = 0, S2_F16, S2_BF16, S2_F64,
    S2_U8, S2_I8, S2_U16, S2_I16, S2_U32, S2_I32, S2_U64, S2_I64,
    S2_BOOL, S2_F8_E4M3, S2_F8_E5M2,
    S2_DTYPE_COUNT
} s2_dtype;

typedef struct s2_tensor {
    s2_dtype dtype;
    int ndim;
    int64_t shape[S2_MAX_DIMS];
    void *data;
} s2_tensor;

size_t s2_dtype_size(s2_dtype t);
const char *s2_dtype_name(s2_dtype t);            /* safetensors spelling: "F32", "BF16", ... */
int s2_dtype_from_name(const char *name, s2_dtype *out); /* -1 when unknown */
int64_t s2_tensor_numel(const s2_tensor *t);
size_t s2_tensor_nbytes(const s2_tensor *t);
/* "[1,3,256,256]" into buf; returns buf. */
char *s2_shape_str(const int64_t *shape, int ndim, char *buf, size_t n);
bool s2_shape_eq(const int64_t *a, int na, const int64_t *b, int nb);

/* Conversions (round to nearest even for bf16 and f16). */
float s2_bf16_to_f32(uint16_t h);
uint16_t s2_f32_to_bf16(float f);
float s2_f16_to_f32(uint16_t h);
uint16_t s2_f32_to_f16(float f);
/* Converts n elements of src (F32/F16/BF16) into f32 dst. */
int s2_convert_to_f32(float *dst, const void *src, s2_dtype t, int64_t n);
/* Converts n f32 values to dtype F32/F16/BF16. */
int s2_convert_from_f32(void *dst, s2_dtype t, const float *src, int64_t n);

#endif
