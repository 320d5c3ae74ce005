/* Tensor metadata helpers and dtype conversions. */
#include "tensor/tensor.h"
#include "core/s2.h"
#include <stdio.h>
#include <string.h>

static const struct { const char *name; size_t size; } g_dtypes[S2_DTYPE_COUNT] = {
    [S2_F32] = {"F32", 4}, [S2_F16] = {"F16", 2}, [S2_BF16] = {"BF16", 2},
    [S2_F64] = {"F64", 8}, [S2_U8] = {"U8", 1}, [S2_I8] = {"I8", 1},
    [S2_U16] = {"U16", 2}, [S2_I16] = {"I16", 2}, [S2_U32] = {"U32", 4},
    [S2_I32] = {"I32", 4}, [S2_U64] = {"U64", 8}, [S2_I64] = {"I64", 8},
    [S2_BOOL] = {"BOOL", 1}, [S2_F8_E4M3] = {"F8_E4M3", 1}, [S2_F8_E5M2] = {"F8_E5M2", 1},
};

size_t s2_dtype_size(s2_dtype t) { return (unsigned)t < S2_DTYPE_COUNT ? g_dtypes[t].size : 0; }
const char *s2_dtype_name(s2_dtype t) {
    return (unsigned)t < S2_DTYPE_COUNT ? g_dtypes[t].name : "?";
}

int s2_dtype_from_name(const char *name, s2_dtype *out) {
    for (int i = 0; i < S2_DTYPE_COUNT; i++)
        if (strcmp(name, g_dtypes[i].name) == 0) { *out = (s2_dtype)i; return 0; }
    return -1;
}

int64_t s2_tensor_numel(const s2_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t s2_tensor_nbytes(const s2_tensor *t) {
    return (size_t)s2_tensor_numel(t) * s2_dtype_size(t->dtype);
}

char *s2_shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
    size_t used = 0;
    used += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}

bool s2_shape_eq(const int64_t *a, int na, const int64_t *b, int nb) {
    if (na != nb) return false;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i]) return false;
    return true;
}

float s2_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t s2_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float s2_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (exp == 0) {
        if (man == 0) u = sign;
        else { /* subnormal: normalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400u));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) u = sign | 0x7f800000u | (man << 13);
    else u = sign | ((exp + 112u) << 23) | (man << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t s2_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* overflow -> inf */
    if (a < 0x38800000u) { /* subnormal or zero in f16 */
        if (a < 0x33000000u) return (uint16_t)sign;
        uint32_t man = (a & 0x7fffffu) | 0x800000u;
        int shift = 113 - (int)(a >> 23) + 13;
        uint32_t r = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((a >> 13) - (112u << 10));
    uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

int s2_convert_to_f32(float *dst, const void *src, s2_dtype t, int64_t n) {
    const uint16_t *h = src;
    switch (t) {
    case S2_F32: memmove(dst, src, (size_t)n * 4); return 0;
    case S2_F16: for (int64_t i = 0; i < n; i++) dst[i] = s2_f16_to_f32(h[i]); return 0;
    case S2_BF16: for (int64_t i = 0; i < n; i++) dst[i] = s2_bf16_to_f32(h[i]); return 0;
    default: return s2_err(SAM2C_ERR_SHAPE, "cannot convert dtype %s to F32", s2_dtype_name(t));
    }
}

int s2_convert_from_f32(void *dst, s2_dtype t, const float *src, int64_t n) {
    uint16_t *h = dst;
    switch (t) {
    case S2_F32: memmove(dst, src, (size_t)n * 4); return 0;
    case S2_F16: for (int64_t i = 0; i < n; i++) h[i] = s2_f32_to_f16(src[i]); return 0;
    case S2_BF16: for (int64_t i = 0; i < n; i++) h[i] = s2_f32_to_bf16(src[i]); return 0;
    default: return s2_err(SAM2C_ERR_SHAPE, "cannot convert F32 to dtype %s", s2_dtype_name(t));
    }
}
