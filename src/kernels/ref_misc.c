/* Reference element-wise activations, max pooling and layout changes. Element-wise
 * functions are evaluated in f64 and rounded once to f32 (within 1 ulp of the exact
 * value; PyTorch's vectorised f32 versions are within ~1-2 ulp). */
#include "kernels/kernels.h"
#include "kernels/ref_internal.h"

#include <math.h>

// ref: torch.nn.GELU() (approximate="none"): 0.5 x (1 + erf(x / sqrt 2)), evaluated as
// 0.5 x erfc(-x / sqrt 2) so that the negative tail keeps its relative accuracy.
void s2_ref_gelu(float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        x[i] = (float)(0.5 * v * erfc(-v * M_SQRT1_2));
    }
}

// ref: torch.relu (NaN stays NaN)
void s2_ref_relu(float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        if (x[i] < 0.0f) x[i] = 0.0f;
}

// ref: torch.sigmoid: 1 / (1 + exp(-x))
void s2_ref_sigmoid(float *x, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
}

// y = a + b element-wise (in place on either operand is fine)
void s2_ref_add(float *y, const float *a, const float *b, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

// ref: torch.nn.MaxPool2d(kernel_size=k, stride=k) applied to NHWC (Hiera do_pool);
// a NaN in a window gives NaN, as PyTorch's max pooling does.
void s2_ref_maxpool_nhwc(float *y, const float *x, int N, int H, int W, int C, int k) {
    int OH = H / k, OW = W / k;
    int64_t rows = (int64_t)N * OH;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t n = r / OH, oh = r % OH;
        for (int ow = 0; ow < OW; ow++) {
            float *yp = y + ((r * OW) + ow) * C; // (C)
            for (int c = 0; c < C; c++) yp[c] = -INFINITY;
            for (int i = 0; i < k; i++)
                for (int j = 0; j < k; j++) {
                    const float *xp = x + ((n * H + oh * k + i) * W + (int64_t)ow * k + j) * C;
                    for (int c = 0; c < C; c++)
                        if (xp[c] > yp[c] || isnan(xp[c])) yp[c] = isnan(yp[c]) ? yp[c] : xp[c];
                }
        }
    }
}

// x (N, C, H, W) -> y (N, H, W, C)
void s2_ref_nchw_to_nhwc(float *y, const float *x, int N, int C, int H, int W) {
    int64_t HW = (int64_t)H * W, rows = (int64_t)N * HW;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t n = r / HW, p = r % HW;
        const float *xp = x + n * C * HW + p;
        float *yp = y + r * C;
        for (int c = 0; c < C; c++) yp[c] = xp[c * HW];
    }
}

// x (N, H, W, C) -> y (N, C, H, W)
void s2_ref_nhwc_to_nchw(float *y, const float *x, int N, int H, int W, int C) {
    int64_t HW = (int64_t)H * W, planes = (int64_t)N * C;
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
        int64_t n = pl / C, c = pl % C;
        const float *xp = x + n * HW * C + c;
        float *yp = y + pl * HW;
        for (int64_t p = 0; p < HW; p++) yp[p] = xp[p * C];
    }
}
