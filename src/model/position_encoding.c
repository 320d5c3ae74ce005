/* Sine position encoding of feature maps (DETR style), as the FPN neck and the memory
 * encoder use it. C channels, H x W cells; npf = C/2 features per axis.
 * Arithmetic is float32 step by step, as the official tensor code does it. */
#include "model/image_encoder.h"

#include <math.h>
#include <stdlib.h>

/* One axis: tab[j*n + p] = sin / cos of the normalised position p+1 over frequency j.
 * ref: sam2/modeling/position_encoding.py PositionEmbeddingSine.forward (y_embed /
 * x_embed normalisation, dim_t, stack(sin of even, cos of odd)) */
static void sine_axis(float *tab /*[npf, n]*/, int npf, int n, float temperature) {
    const float eps = 1e-6f, scale = (float)(2.0 * 3.14159265358979323846);
    float last = (float)n + eps; // y_embed[:, -1:, :] + eps
    for (int j = 0; j < npf; j++) {
        float e = 2.0f * floorf((float)j / 2.0f) / (float)npf;
        float dim_t = powf(temperature, e); // (npf,)
        for (int p = 0; p < n; p++) {
            float v = (float)(p + 1) / last * scale;
            float a = v / dim_t;
            tab[(int64_t)j * n + p] = (j % 2 == 0) ? sinf(a) : cosf(a);
        }
    }
}

/* ref: sam2/modeling/position_encoding.py PositionEmbeddingSine.forward
 * out = cat(pos_y, pos_x) over channels; the encoding is separable, so each axis is
 * computed once and broadcast (same values as the full-grid evaluation). */
int s2_pos_embed_sine(float *out /*[C,H,W]*/, int num_pos_feats, int H, int W,
                      double temperature) {
    if (!out || H <= 0 || W <= 0)
        return s2_err(SAM2C_ERR_ARG, "position encoding: bad size %dx%d", H, W);
    if (num_pos_feats <= 0 || num_pos_feats % 4 != 0)
        return s2_err(SAM2C_ERR_UNSUPPORTED,
                      "position encoding: num_pos_feats %d is not a positive multiple of 4",
                      num_pos_feats);
    if (!(temperature > 0.0))
        return s2_err(SAM2C_ERR_ARG, "position encoding: temperature %g", temperature);
    int npf = num_pos_feats / 2;
    float *ty = s2_malloc(sizeof(float) * (size_t)npf * (size_t)(H + W)); // [npf, H] + [npf, W]
    if (!ty) return SAM2C_ERR_NOMEM;
    float *tx = ty + (size_t)npf * (size_t)H;
    sine_axis(ty, npf, H, (float)temperature);
    sine_axis(tx, npf, W, (float)temperature);
    int64_t HW = (int64_t)H * W;
    for (int j = 0; j < npf; j++) {
        float *py = out + (int64_t)j * HW, *px = out + (int64_t)(npf + j) * HW;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                py[(int64_t)y * W + x] = ty[(int64_t)j * H + y];
                px[(int64_t)y * W + x] = tx[(int64_t)j * W + x];
            }
    }
    free(ty);
    return 0;
}
