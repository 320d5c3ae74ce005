/* PIL's Image.resize with BICUBIC on 8-bit images, bit for bit: separable filter whose
 * support grows with the downscale factor (antialiasing), coefficients normalised and
 * turned into 22-bit fixed point, horizontal pass (rounded to u8) on the rows the
 * vertical pass needs, then the vertical pass. The official video predictor feeds
 * frames through exactly this (PIL resize((S, S))). */
#include "io/image.h"
#include "core/s2.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 8 bits of result, 2 bits of headroom for coefficient sums outside [0, 1]. */
#define PRECISION_BITS (32 - 8 - 2)
#define BICUBIC_SUPPORT 2.0

/* One pass's filter: for output i, taps k[i*ksize .. +n[i]) over inputs xmin[i] .. */
typedef struct resample_coeffs {
    int ksize;
    int *xmin;      /* (out) first input index */
    int *n;         /* (out) tap count */
    int32_t *k;     /* (out, ksize) fixed-point taps */
} resample_coeffs;

// ref: Pillow 9.4 Resample.c bicubic_filter (a = -0.5)
static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

// Pillow's clip8: the accumulator's integer part clamped to 0..255.
static uint8_t clip8(int32_t v) {
    if (v < 0) return 0;
    v >>= PRECISION_BITS;
    return (uint8_t)(v > 255 ? 255 : v);
}

// Frees a pass's filter tables.
static void coeffs_free(resample_coeffs *c) {
    free(c->xmin);
    free(c->n);
    free(c->k);
    memset(c, 0, sizeof *c);
}

// ref: Pillow 9.4 Resample.c precompute_coeffs + normalize_coeffs_8bpc, box (0, in_size)
static int coeffs_init(resample_coeffs *c, int in_size, int out_size) {
    memset(c, 0, sizeof *c);
    double scale = (double)(float)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = BICUBIC_SUPPORT * filterscale;
    c->ksize = (int)ceil(support) * 2 + 1;
    double *kd = s2_calloc((size_t)c->ksize, sizeof(double));
    c->xmin = s2_calloc((size_t)out_size, sizeof(int));
    c->n = s2_calloc((size_t)out_size, sizeof(int));
    c->k = s2_calloc((size_t)out_size * (size_t)c->ksize, sizeof(int32_t));
    if (!kd || !c->xmin || !c->n || !c->k) {
        free(kd);
        coeffs_free(c);
        return SAM2C_ERR_NOMEM;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = 0.0 + (xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = bicubic((x + xmin - center + 0.5) * ss);
            kd[x] = w;
            ww += w;
        }
        int32_t *k = c->k + (size_t)xx * c->ksize;
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? kd[x] / ww : kd[x];
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                         : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        c->xmin[xx] = xmin;
        c->n[xx] = xmax < 0 ? 0 : xmax;
    }
    free(kd);
    return SAM2C_OK;
}

// ref: Pillow 9.4 Resample.c ImagingResampleHorizontal_8bpc
// dst (rows, ow, C) from src rows [row0, row0 + rows) of (h, w, C).
static void resample_h(uint8_t *dst, int ow, int rows, const uint8_t *src, int w, int row0,
                       int C, const resample_coeffs *c) {
    for (int y = 0; y < rows; y++) {
        const uint8_t *in = src + (size_t)(y + row0) * w * C;
        uint8_t *out = dst + (size_t)y * ow * C;
        for (int xx = 0; xx < ow; xx++) {
            const int32_t *k = c->k + (size_t)xx * c->ksize;
            const uint8_t *p = in + (size_t)c->xmin[xx] * C;
            for (int ch = 0; ch < C; ch++) {
                int32_t ss = 1 << (PRECISION_BITS - 1);
                for (int x = 0; x < c->n[xx]; x++) ss += p[x * C + ch] * k[x];
                out[xx * C + ch] = clip8(ss);
            }
        }
    }
}

// ref: Pillow 9.4 Resample.c ImagingResampleVertical_8bpc
// dst (oh, w, C) from src (*, w, C) whose row 0 is input row `row0`.
static void resample_v(uint8_t *dst, int oh, const uint8_t *src, int w, int row0, int C,
                       const resample_coeffs *c) {
    size_t stride = (size_t)w * C;
    for (int yy = 0; yy < oh; yy++) {
        const int32_t *k = c->k + (size_t)yy * c->ksize;
        const uint8_t *in = src + (size_t)(c->xmin[yy] - row0) * stride;
        uint8_t *out = dst + (size_t)yy * stride;
        for (size_t i = 0; i < stride; i++) {
            int32_t ss = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < c->n[yy]; y++) ss += in[(size_t)y * stride + i] * k[y];
            out[i] = clip8(ss);
        }
    }
}

// ref: Pillow 9.4 Resample.c ImagingResampleInner: horizontal pass first, restricted to
// the input rows the vertical filter reads; a pass is skipped when its size is unchanged.
static int resample(uint8_t *dst, int ow, int oh, const uint8_t *src, int w, int h, int C) {
    bool need_h = ow != w, need_v = oh != h;
    if (!need_h && !need_v) {
        memcpy(dst, src, (size_t)w * h * C);
        return SAM2C_OK;
    }
    resample_coeffs cv = {0}, ch = {0};
    uint8_t *tmp = NULL;
    int rc = SAM2C_OK;
    if (need_v) S2_CHECK(coeffs_init(&cv, h, oh));
    if (need_h) {
        int first = need_v ? cv.xmin[0] : 0;
        int last = need_v ? cv.xmin[oh - 1] + cv.n[oh - 1] : h;
        rc = coeffs_init(&ch, w, ow);
        if (rc == SAM2C_OK && need_v) {
            tmp = s2_malloc((size_t)ow * (size_t)(last - first) * C);
            if (!tmp) rc = SAM2C_ERR_NOMEM;
        }
        if (rc == SAM2C_OK) {
            if (need_v) resample_h(tmp, ow, last - first, src, w, first, C, &ch);
            else resample_h(dst, ow, h, src, w, 0, C, &ch);
        }
        if (rc == SAM2C_OK && need_v) resample_v(dst, oh, tmp, ow, first, C, &cv);
    } else {
        resample_v(dst, oh, src, w, 0, C, &cv);
    }
    free(tmp);
    coeffs_free(&ch);
    coeffs_free(&cv);
    return rc;
}

// ref: Pillow 9.4 Image.resize(size, BICUBIC) -> ImagingResample on a u8 image
int s2_pil_resize_bicubic_u8_checked(uint8_t *dst, int ow, int oh, const uint8_t *src,
                                     int w, int h, int channels) {
    if (!dst || !src || ow <= 0 || oh <= 0 || w <= 0 || h <= 0 || channels < 1 ||
        channels > 4 || w > (1 << 24) || h > (1 << 24) || ow > (1 << 24) || oh > (1 << 24))
        return s2_err(SAM2C_ERR_ARG, "resize: bad sizes (%d x %d -> %d x %d, %d channels)", w,
                      h, ow, oh, channels);
    return resample(dst, ow, oh, src, w, h, channels);
}

// The interface without a status: zero-filled output on failure.
void s2_pil_resize_bicubic_u8(uint8_t *dst, int ow, int oh, const uint8_t *src, int w,
                              int h, int channels) {
    int rc = s2_pil_resize_bicubic_u8_checked(dst, ow, oh, src, w, h, channels);
    if (rc != SAM2C_OK && dst && ow > 0 && oh > 0 && channels > 0 && channels <= 4)
        memset(dst, 0, (size_t)ow * oh * channels);
}
