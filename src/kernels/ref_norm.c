/* Reference normalisations: LayerNorm (last dimension), SAM's LayerNorm2d (channels
 * of NCHW) and the stable row softmax. Statistics use a two-pass mean / biased
 * variance accumulated in f64 (more accurate than PyTorch's f32 reductions; parity
 * is a few f32 ulps), the per-element affine part is f32. Threads split rows or
 * pixel blocks only, so results do not depend on the thread count. */
#include "kernels/kernels.h"
#include "kernels/ref_internal.h"

#include <math.h>

enum { PIX_BLOCK = 64 };

// ref: torch.nn.LayerNorm.forward over the last dimension (C)
void s2_ref_layernorm(float *y, const float *x, const float *gamma, const float *beta,
                      int64_t rows, int64_t C, float eps) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        double mean = 0.0, var = 0.0;
        for (int64_t c = 0; c < C; c++) mean += xr[c];
        mean /= (double)C;
        for (int64_t c = 0; c < C; c++) {
            double dv = xr[c] - mean;
            var += dv * dv;
        }
        var /= (double)C;
        double rstd = 1.0 / sqrt(var + (double)eps);
        for (int64_t c = 0; c < C; c++) {
            float v = (float)((xr[c] - mean) * rstd);
            if (gamma) v *= gamma[c];
            if (beta) v += beta[c];
            yr[c] = v;
        }
    }
}

// Normalises one block of np <= PIX_BLOCK pixels of an image (C, HW) over channels.
static void layernorm2d_block(float *y, const float *x, const float *gamma,
                              const float *beta, int C, int64_t HW, int np, float eps) {
    double mean[PIX_BLOCK] = {0}, var[PIX_BLOCK] = {0};
    for (int c = 0; c < C; c++)
        for (int p = 0; p < np; p++) mean[p] += x[c * HW + p];
    for (int p = 0; p < np; p++) mean[p] /= (double)C;
    for (int c = 0; c < C; c++)
        for (int p = 0; p < np; p++) {
            double dv = x[c * HW + p] - mean[p];
            var[p] += dv * dv;
        }
    for (int p = 0; p < np; p++) var[p] = 1.0 / sqrt(var[p] / (double)C + (double)eps);
    for (int c = 0; c < C; c++) {
        float g = gamma ? gamma[c] : 1.0f, b = beta ? beta[c] : 0.0f;
        for (int p = 0; p < np; p++) {
            float v = (float)((x[c * HW + p] - mean[p]) * var[p]);
            y[c * HW + p] = gamma ? (beta ? v * g + b : v * g) : (beta ? v + b : v);
        }
    }
}

// ref: sam2/modeling/sam2_utils.py LayerNorm2d.forward
void s2_ref_layernorm2d(float *y, const float *x, const float *gamma, const float *beta,
                        int N, int C, int64_t HW, float eps) {
    int64_t nblk = (HW + PIX_BLOCK - 1) / PIX_BLOCK, tasks = (int64_t)N * nblk;
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t n = t / nblk, p0 = (t % nblk) * PIX_BLOCK;
        int np = (int)S2_REF_MIN((int64_t)PIX_BLOCK, HW - p0);
        int64_t off = n * C * HW + p0;
        layernorm2d_block(y + off, x + off, gamma, beta, C, HW, np, eps);
    }
}

// Stable softmax of one row: exp(x - max) / sum, sum in f64; NaN in, NaN out.
void s2_softmax_row(float *x, int64_t n) {
    if (n <= 0) return;
    float mx = x[0];
    for (int64_t i = 1; i < n; i++)
        if (x[i] > mx || isnan(x[i])) mx = x[i]; // a NaN sticks: NaN in, NaN out
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    double inv = 1.0 / sum;
    for (int64_t i = 0; i < n; i++) x[i] = (float)(x[i] * inv);
}

// ref: torch.softmax(x, dim=-1)
void s2_ref_softmax_rows(float *x, int64_t rows, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) s2_softmax_row(x + r * n, n);
}
