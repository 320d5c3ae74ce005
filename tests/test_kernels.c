/* Reference kernels against naive f64 loops written here (tiny sizes, fixed-seed random
 * inputs), known answers computed by hand from PyTorch's formulas, thread-count
 * invariance, and the Hiera pos-embed bicubic upsampling against the official
 * fixture. The GEMM-based kernels are also checked bit for bit against the naive
 * sequential f32 sum they are documented to equal. */
#include "harness.h"
#include "kernels/kernels.h"
#include "io/tensorfile.h"
#include "backend/backend.h"
#include "kernels/fast.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

// Uniform in [-1, 1) from a fixed-seed xorshift64*.
static float frand(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t r = rng_state * 2685821657736338717ull;
    return (float)((double)(r >> 40) / (double)(1ull << 23) - 1.0);
}

static float *rand_buf(int64_t n, float scale) {
    float *p = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}

// Worst |got - ref| over n values, each allowed tol_abs + tol_rel * bound[i] (bound may be NULL).
static double worst_err(const float *got, const double *ref, const double *bound, int64_t n,
                        double tol_rel, double tol_abs, int64_t *bad) {
    double worst = 0.0;
    *bad = -1;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        double tol = tol_abs + tol_rel * (bound ? bound[i] : fabs(ref[i]));
        if (!(e <= tol) && *bad < 0) *bad = i;
        if (e > worst || isnan(e)) worst = e;
    }
    return worst;
}

#define CHECK_ARRAY(what, got, ref, bound, n, rel, abs_)                                \
    do {                                                                                \
        int64_t bad_;                                                                   \
        double w_ = worst_err(got, ref, bound, n, rel, abs_, &bad_);                    \
        CHECK_MSG(bad_ < 0, "%s: index %lld: %.9g vs %.9g (worst abs err %.3g)", what,  \
                  (long long)bad_, bad_ >= 0 ? (double)(got)[bad_] : 0.0,               \
                  bad_ >= 0 ? (ref)[bad_] : 0.0, w_);                                   \
        printf("  %-28s worst abs err %.3g\n", what, w_);                               \
    } while (0)

static const double EPS32 = 5.960464477539063e-08; /* 2^-24 */

/* ---- linear / matmul --------------------------------------------------------- */

// Naive f64 linear with the sum of |terms| as error bound, and the naive f32 sum.
static void naive_linear(double *ref, double *bound, float *f32, const float *x,
                         const float *w, const float *b, int64_t M, int64_t K, int64_t N) {
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = b ? b[n] : 0.0, a = b ? fabs(b[n]) : 0.0;
            float sf = b ? b[n] : 0.0f;
            for (int64_t k = 0; k < K; k++) {
                s += (double)x[m * K + k] * w[n * K + k];
                a += fabs((double)x[m * K + k] * w[n * K + k]);
                sf += x[m * K + k] * w[n * K + k];
            }
            ref[m * N + n] = s;
            bound[m * N + n] = a * (double)(K + 1);
            f32[m * N + n] = sf;
        }
}

TEST(linear_matches_naive) {
    const int64_t sizes[][3] = {{37, 70, 45}, {1, 256, 7}, {130, 300, 129}, {5, 3, 2}};
    for (int t = 0; t < 4; t++) {
        int64_t M = sizes[t][0], K = sizes[t][1], N = sizes[t][2];
        float *x = rand_buf(M * K, 1), *w = rand_buf(N * K, 1), *b = rand_buf(N, 1);
        float *y = malloc(M * N * 4), *f = malloc(M * N * 4);
        double *ref = malloc(M * N * 8), *bd = malloc(M * N * 8);
        for (int wb = 0; wb < 2; wb++) {
            naive_linear(ref, bd, f, x, w, wb ? b : NULL, M, K, N);
            s2_ref_linear(y, x, w, wb ? b : NULL, M, K, N);
            CHECK_ARRAY("linear vs f64", y, ref, bd, M * N, EPS32, 0);
            CHECK(memcmp(y, f, M * N * 4) == 0); /* the sequential f32 sum, bit for bit */
        }
        free(x), free(w), free(b), free(y), free(f), free(ref), free(bd);
    }
}

TEST(matmul_trans_alpha_beta) {
    int64_t M = 19, K = 33, N = 70;
    float *a = rand_buf(M * K, 1), *bkn = rand_buf(K * N, 1), *bnk = malloc(N * K * 4);
    for (int64_t k = 0; k < K; k++)
        for (int64_t n = 0; n < N; n++) bnk[n * K + k] = bkn[k * N + n];
    float *c0 = rand_buf(M * N, 1), *c = malloc(M * N * 4), *c2 = malloc(M * N * 4);
    double *ref = malloc(M * N * 8), *bd = malloc(M * N * 8);
    const float alpha = 0.37f, beta = -1.5f;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = 0, ab = 0;
            for (int64_t k = 0; k < K; k++) {
                s += (double)a[m * K + k] * bkn[k * N + n];
                ab += fabs((double)a[m * K + k] * bkn[k * N + n]);
            }
            ref[m * N + n] = alpha * s + (double)beta * c0[m * N + n];
            bd[m * N + n] = (K + 2) * (fabs(alpha) * ab + fabs(beta * c0[m * N + n]));
        }
    memcpy(c, c0, M * N * 4);
    s2_ref_matmul(c, a, bkn, M, K, N, false, alpha, beta);
    CHECK_ARRAY("matmul b[K,N]", c, ref, bd, M * N, EPS32, 0);
    memcpy(c2, c0, M * N * 4);
    s2_ref_matmul(c2, a, bnk, M, K, N, true, alpha, beta);
    CHECK(memcmp(c, c2, M * N * 4) == 0);
    /* beta = 0 never reads c (NaN there must not leak) */
    for (int64_t i = 0; i < M * N; i++) c[i] = NAN;
    s2_ref_matmul(c, a, bkn, M, K, N, false, 1.0f, 0.0f);
    for (int64_t i = 0; i < M * N; i++) ref[i] = (ref[i] - beta * c0[i]) / alpha;
    CHECK_ARRAY("matmul beta=0", c, ref, bd, M * N, EPS32 / 0.37, 0);
    free(a), free(bkn), free(bnk), free(c0), free(c), free(c2), free(ref), free(bd);
}

/* ---- convolutions -------------------------------------------------------------- */

// Naive conv2d: f64 result + bound, and the f32 sum in (c, kh, kw) order skipping padding.
static void naive_conv(double *ref, double *bound, float *f32, const float *x, const float *w,
                       const float *b, const s2_conv2d_desc *d) {
    int OH, OW;
    s2_conv2d_out_hw(d, &OH, &OW);
    int Cg = d->C / d->groups, OCg = d->OC / d->groups;
    for (int n = 0; n < d->N; n++)
        for (int oc = 0; oc < d->OC; oc++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    int g = oc / OCg;
                    double s = b ? b[oc] : 0, a = b ? fabs(b[oc]) : 0;
                    float sf = b ? b[oc] : 0.0f;
                    for (int c = 0; c < Cg; c++)
                        for (int kh = 0; kh < d->KH; kh++)
                            for (int kw = 0; kw < d->KW; kw++) {
                                int ih = oh * d->sh - d->ph + kh, iw = ow * d->sw - d->pw + kw;
                                if (ih < 0 || ih >= d->H || iw < 0 || iw >= d->W) continue;
                                float xv = x[(((int64_t)n * d->C + g * Cg + c) * d->H + ih) * d->W + iw];
                                float wv = w[(((int64_t)oc * Cg + c) * d->KH + kh) * d->KW + kw];
                                s += (double)xv * wv;
                                a += fabs((double)xv * wv);
                                sf += xv * wv;
                            }
                    int64_t o = (((int64_t)n * d->OC + oc) * OH + oh) * OW + ow;
                    ref[o] = s;
                    bound[o] = a * (Cg * d->KH * d->KW + 1);
                    f32[o] = sf;
                }
}

TEST(conv2d_matches_naive) {
    const s2_conv2d_desc cases[] = {
        {2, 4, 9, 11, 6, 3, 3, 2, 2, 1, 1, 2},     /* grouped, strided, padded */
        {1, 3, 20, 17, 8, 7, 7, 4, 4, 3, 3, 1},    /* Hiera patch embed shape */
        {2, 5, 6, 7, 9, 1, 1, 1, 1, 0, 0, 1},      /* 1x1 (direct operand) */
        {1, 6, 10, 9, 6, 7, 7, 1, 1, 3, 3, 6},     /* depthwise 7x7 (CXBlock) */
        {1, 4, 9, 9, 8, 3, 3, 2, 2, 1, 1, 4},      /* depthwise x2 multiplier, stride 2 */
        {1, 70, 5, 5, 66, 3, 3, 2, 2, 1, 1, 1},    /* K and OC beyond one block */
    };
    for (int t = 0; t < (int)(sizeof cases / sizeof cases[0]); t++) {
        const s2_conv2d_desc *d = &cases[t];
        int OH, OW;
        s2_conv2d_out_hw(d, &OH, &OW);
        int64_t nx = (int64_t)d->N * d->C * d->H * d->W;
        int64_t nw = (int64_t)d->OC * (d->C / d->groups) * d->KH * d->KW;
        int64_t ny = (int64_t)d->N * d->OC * OH * OW;
        float *x = rand_buf(nx, 1), *w = rand_buf(nw, 1), *b = rand_buf(d->OC, 1);
        float *y = malloc(ny * 4), *f = malloc(ny * 4);
        double *ref = malloc(ny * 8), *bd = malloc(ny * 8);
        naive_conv(ref, bd, f, x, w, t % 2 ? NULL : b, d);
        s2_ref_conv2d(y, x, w, t % 2 ? NULL : b, d);
        char what[64];
        snprintf(what, sizeof what, "conv2d case %d", t);
        CHECK_ARRAY(what, y, ref, bd, ny, EPS32, 0);
        CHECK_MSG(memcmp(y, f, ny * 4) == 0, "%s: not the sequential f32 sum", what);
        free(x), free(w), free(b), free(y), free(f), free(ref), free(bd);
    }
}

TEST(conv_transpose_k_eq_s) {
    int N = 2, C = 5, H = 3, W = 4, OC = 3, K = 2;
    float *x = rand_buf(N * C * H * W, 1), *w = rand_buf(C * OC * K * K, 1), *b = rand_buf(OC, 1);
    int64_t ny = (int64_t)N * OC * H * K * W * K;
    float *y = malloc(ny * 4);
    double *ref = malloc(ny * 8), *bd = malloc(ny * 8);
    for (int n = 0; n < N; n++)
        for (int oc = 0; oc < OC; oc++)
            for (int oy = 0; oy < H * K; oy++)
                for (int ox = 0; ox < W * K; ox++) {
                    double s = b[oc], a = fabs(b[oc]);
                    for (int c = 0; c < C; c++) {
                        double p = (double)x[((n * C + c) * H + oy / K) * W + ox / K] *
                                   w[((c * OC + oc) * K + oy % K) * K + ox % K];
                        s += p, a += fabs(p);
                    }
                    int64_t o = (((int64_t)n * OC + oc) * H * K + oy) * W * K + ox;
                    ref[o] = s, bd[o] = a * (C + 1);
                }
    s2_ref_conv_transpose2d_k_eq_s(y, x, w, b, N, C, H, W, OC, K);
    CHECK_ARRAY("conv_transpose k=s=2", y, ref, bd, ny, EPS32, 0);
    free(x), free(w), free(b), free(y), free(ref), free(bd);
}

/* ---- normalisation, activations ------------------------------------------------ */

TEST(layernorm_both_layouts) {
    int64_t rows = 13, C = 96;
    float *x = rand_buf(rows * C, 3), *g = rand_buf(C, 1), *b = rand_buf(C, 1);
    for (int64_t i = 0; i < rows * C; i++) x[i] += 5.0f; /* non-zero mean */
    float *y = malloc(rows * C * 4);
    double *ref = malloc(rows * C * 8), *bd = malloc(rows * C * 8);
    for (int64_t r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (int64_t c = 0; c < C; c++) m += x[r * C + c];
        m /= C;
        for (int64_t c = 0; c < C; c++) v += (x[r * C + c] - m) * (x[r * C + c] - m);
        v /= C;
        for (int64_t c = 0; c < C; c++) {
            double z = (x[r * C + c] - m) / sqrt(v + 1e-6);
            ref[r * C + c] = z * g[c] + b[c];
            bd[r * C + c] = 4 * (fabs(z * g[c]) + fabs(b[c]));
        }
    }
    s2_ref_layernorm(y, x, g, b, rows, C, 1e-6f);
    CHECK_ARRAY("layernorm", y, ref, bd, rows * C, EPS32, 0);
    /* LayerNorm2d: the same rows laid out as channels of a [1, C, rows] image */
    float *xt = malloc(rows * C * 4), *yt = malloc(rows * C * 4);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < C; c++) xt[c * rows + r] = x[r * C + c];
    s2_ref_layernorm2d(yt, xt, g, b, 1, (int)C, rows, 1e-6f);
    int same = 1;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < C; c++) same &= yt[c * rows + r] == y[r * C + c];
    CHECK_MSG(same, "layernorm2d differs from layernorm on transposed data");
    s2_ref_layernorm(x, x, NULL, NULL, rows, C, 1e-6f); /* in place, no affine */
    for (int64_t i = 0; i < rows * C; i++) ref[i] = (ref[i] - b[i % C]) / g[i % C];
    CHECK_ARRAY("layernorm in place", x, ref, NULL, rows * C, 4 * EPS32, 4 * EPS32);
    free(x), free(g), free(b), free(y), free(ref), free(bd), free(xt), free(yt);
}

// Distance in units in the last place between two floats of the same sign.
static int64_t ulps(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4), memcpy(&ib, &b, 4);
    return llabs((long long)ia - ib);
}

TEST(activations_within_one_ulp) {
    int64_t n = 4001;
    float *x = malloc(n * 4), *g = malloc(n * 4), *s = malloc(n * 4);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(i - 2000) / 250.0f; /* [-8, 8] */
    memcpy(g, x, n * 4), memcpy(s, x, n * 4);
    s2_ref_gelu(g, n);
    s2_ref_sigmoid(s, n);
    int64_t worst_g = 0, worst_s = 0;
    for (int64_t i = 0; i < n; i++) {
        long double v = x[i];
        float rg = (float)(0.5L * v * erfcl(-v / sqrtl(2.0L))); /* = 1 + erf, no cancellation */
        float rs = (float)(1.0L / (1.0L + expl(-v)));
        if (rg != 0.0f) worst_g = ulps(g[i], rg) > worst_g ? ulps(g[i], rg) : worst_g;
        else CHECK(fabsf(g[i]) < 1e-30f);
        worst_s = ulps(s[i], rs) > worst_s ? ulps(s[i], rs) : worst_s;
    }
    printf("  gelu worst %lld ulp, sigmoid worst %lld ulp\n", (long long)worst_g,
           (long long)worst_s);
    CHECK(worst_g <= 1);
    CHECK(worst_s <= 1);
    float r[4] = {-1.5f, 0.0f, 2.0f, NAN};
    s2_ref_relu(r, 4);
    CHECK(r[0] == 0.0f && r[1] == 0.0f && r[2] == 2.0f && isnan(r[3]));
    float a[3] = {1, 2, 3}, b2[3] = {0.5f, -2, 4}, c[3];
    s2_ref_add(c, a, b2, 3);
    CHECK(c[0] == 1.5f && c[1] == 0.0f && c[2] == 7.0f);
    free(x), free(g), free(s);
}

TEST(softmax_rows_stable) {
    float x[2][4] = {{1000.0f, 1001.0f, 1002.0f, 999.0f}, {-INFINITY, 0.0f, 0.0f, -INFINITY}};
    s2_ref_softmax_rows(&x[0][0], 2, 4);
    double z = exp(-2.0) + exp(-1.0) + 1.0 + exp(-3.0);
    double e[4] = {exp(-2.0) / z, exp(-1.0) / z, 1.0 / z, exp(-3.0) / z};
    for (int i = 0; i < 4; i++) CHECK_NEAR(x[0][i], e[i], 2 * EPS32 * e[i]);
    CHECK(x[1][0] == 0.0f && x[1][1] == 0.5f && x[1][2] == 0.5f && x[1][3] == 0.0f);
}

/* ---- attention ------------------------------------------------------------------- */

TEST(attention_strided_heads) {
    const int B = 2, H = 3, d = 8;
    const int64_t Nq = 70, Nk = 37, q_ld = H * d + 5, k_ld = H * d, v_ld = H * d + 2, o_ld = H * d + 1;
    float *q = rand_buf(B * Nq * q_ld, 2), *k = rand_buf(B * Nk * k_ld, 2),
          *v = rand_buf(B * Nk * v_ld, 1), *o = malloc(B * Nq * o_ld * 4);
    for (int64_t i = 0; i < B * Nq * o_ld; i++) o[i] = 42.0f; /* gaps must stay */
    int64_t no = (int64_t)B * H * Nq * d;
    double *ref = malloc(no * 8), *bd = malloc(no * 8), *p = malloc(Nk * 8);
    float *got = malloc(no * 4);
    s2_ref_attention(o, o_ld, q, q_ld, k, k_ld, v, v_ld, B, H, Nq, Nk, d);
    int64_t t = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int64_t i = 0; i < Nq; i++) {
                double mx = -INFINITY, z = 0;
                for (int64_t j = 0; j < Nk; j++) {
                    double s = 0;
                    for (int c = 0; c < d; c++)
                        s += (double)q[(b * Nq + i) * q_ld + h * d + c] * k[(b * Nk + j) * k_ld + h * d + c];
                    p[j] = s / sqrt((double)d);
                    mx = p[j] > mx ? p[j] : mx;
                }
                for (int64_t j = 0; j < Nk; j++) z += p[j] = exp(p[j] - mx);
                for (int c = 0; c < d; c++, t++) {
                    double s = 0, a = 0;
                    for (int64_t j = 0; j < Nk; j++) {
                        s += p[j] / z * v[(b * Nk + j) * v_ld + h * d + c];
                        a += fabs(p[j] / z * v[(b * Nk + j) * v_ld + h * d + c]);
                    }
                    ref[t] = s, bd[t] = 64 * a;
                    got[t] = o[(b * Nq + i) * o_ld + h * d + c];
                }
            }
    CHECK_ARRAY("attention", got, ref, bd, no, EPS32, 0);
    for (int64_t r = 0; r < B * Nq; r++) CHECK(o[r * o_ld + H * d] == 42.0f);
    free(q), free(k), free(v), free(o), free(ref), free(bd), free(p), free(got);
}

/* ---- interpolation ------------------------------------------------------------------ */

TEST(interp_bilinear_known_answers) {
    /* ramp 0..7 downscaled 8 -> 3 with antialias: PyTorch's triangle filter with
     * support 8/3, worked by hand: weights (0.6875, 0.9375, 0.5625, 0.1875) / 2.375
     * on 0..3, symmetric 6 taps around 3.5, and the mirror of the first. */
    float ramp[8] = {0, 1, 2, 3, 4, 5, 6, 7}, y[8];
    s2_ref_interp_bilinear(y, ramp, 1, 1, 8, 1, 3, false, true);
    CHECK_NEAR(y[0], 2.625 / 2.375, 2e-7);
    CHECK_NEAR(y[1], 3.5, 2e-7);
    CHECK_NEAR(y[2], 14.0 / 2.375, 5e-7);
    /* same along H (the vertical pass) */
    s2_ref_interp_bilinear(y, ramp, 1, 8, 1, 3, 1, false, true);
    CHECK_NEAR(y[0], 2.625 / 2.375, 2e-7);
    CHECK_NEAR(y[2], 14.0 / 2.375, 5e-7);
    /* align_corners=True 3 -> 5 on a ramp is exact */
    float r3[3] = {0, 1, 2};
    s2_ref_interp_bilinear(y, r3, 1, 1, 3, 1, 5, true, false);
    for (int i = 0; i < 5; i++) CHECK(y[i] == 0.5f * i);
    /* align_corners=False 2 -> 4: src = (i + 0.5) / 2 - 0.5 clamped at 0 */
    float r2[2] = {0, 1};
    s2_ref_interp_bilinear(y, r2, 1, 1, 2, 1, 4, false, false);
    CHECK(y[0] == 0.0f && y[1] == 0.25f && y[2] == 0.75f && y[3] == 1.0f);
    /* antialias on an upscale is plain bilinear */
    s2_ref_interp_bilinear(y, r2, 1, 1, 2, 1, 4, false, true);
    CHECK(y[0] == 0.0f && y[1] == 0.25f && y[2] == 0.75f && y[3] == 1.0f);
}

// f64 bilinear (no antialias) on one plane for random checks.
static double bilin_ref(const float *x, int H, int W, int OH, int OW, int oy, int ox, bool ac) {
    double sy = ac ? (OH > 1 ? (double)(H - 1) / (OH - 1) : 0) : (double)H / OH;
    double sx = ac ? (OW > 1 ? (double)(W - 1) / (OW - 1) : 0) : (double)W / OW;
    double fy = ac ? sy * oy : fmax(sy * (oy + 0.5) - 0.5, 0);
    double fx = ac ? sx * ox : fmax(sx * (ox + 0.5) - 0.5, 0);
    int y0 = (int)fy, x0 = (int)fx, y1 = y0 < H - 1 ? y0 + 1 : y0, x1 = x0 < W - 1 ? x0 + 1 : x0;
    double ly = fy - y0, lx = fx - x0;
    return (1 - ly) * ((1 - lx) * x[y0 * W + x0] + lx * x[y0 * W + x1]) +
           ly * ((1 - lx) * x[y1 * W + x0] + lx * x[y1 * W + x1]);
}

TEST(interp_bilinear_random) {
    const int C = 2, H = 7, W = 9;
    float *x = rand_buf(C * H * W, 1);
    const int outs[][2] = {{16, 20}, {3, 4}, {7, 9}, {1, 1}};
    for (int t = 0; t < 4; t++)
        for (int ac = 0; ac < 2; ac++) {
            int OH = outs[t][0], OW = outs[t][1];
            float *y = malloc(C * OH * OW * 4);
            double *ref = malloc(C * OH * OW * 8);
            s2_ref_interp_bilinear(y, x, C, H, W, OH, OW, ac, false);
            for (int c = 0; c < C; c++)
                for (int oy = 0; oy < OH; oy++)
                    for (int ox = 0; ox < OW; ox++)
                        ref[(c * OH + oy) * OW + ox] = bilin_ref(x + c * H * W, H, W, OH, OW, oy, ox, ac);
            CHECK_ARRAY("bilinear", y, ref, NULL, C * OH * OW, 0, 1e-6);
            free(y), free(ref);
        }
    free(x);
}

TEST(interp_bicubic_2x2) {
    /* 1-D weights of 2 -> 4 (A = -0.75) worked by hand: ramp (0, 1) gives
     * (-0.10546875, 0.2265625, 0.7734375, 1.10546875); x + 2y is separable. */
    const double f[4] = {-0.10546875, 0.2265625, 0.7734375, 1.10546875};
    float x[4] = {0, 1, 2, 3}, y[16];
    s2_ref_interp_bicubic(y, x, 1, 2, 2, 4, 4, false);
    for (int oy = 0; oy < 4; oy++)
        for (int ox = 0; ox < 4; ox++) CHECK_NEAR(y[oy * 4 + ox], f[ox] + 2 * f[oy], 4e-7);
}

TEST(interp_nearest) {
    float x[6] = {0, 1, 2, 3, 4, 5}, y[24];
    s2_ref_interp_nearest(y, x, 1, 2, 3, 4, 6); /* x2: i >> 1 */
    for (int oy = 0; oy < 4; oy++)
        for (int ox = 0; ox < 6; ox++) CHECK(y[oy * 6 + ox] == x[(oy / 2) * 3 + ox / 2]);
    float r5[5] = {0, 1, 2, 3, 4};
    s2_ref_interp_nearest(y, r5, 1, 1, 5, 1, 3); /* floor(i * 5/3) = 0, 1, 3 */
    CHECK(y[0] == 0 && y[1] == 1 && y[2] == 3);
    s2_ref_interp_nearest(y, r5, 1, 1, 5, 1, 7); /* floor(i * 5/7) */
    const float e7[7] = {0, 0, 1, 2, 2, 3, 4};
    for (int i = 0; i < 7; i++) CHECK(y[i] == e7[i]);
}

/* ---- pooling, layout ------------------------------------------------------------------ */

TEST(maxpool_and_layout) {
    const int N = 2, H = 5, W = 4, C = 3; /* H odd: floor mode drops the last row */
    float *x = rand_buf(N * H * W * C, 1), y[2 * 2 * 2 * 3];
    x[((1 * H + 2) * W + 3) * C + 1] = NAN;
    s2_ref_maxpool_nhwc(y, x, N, H, W, C, 2);
    for (int n = 0; n < N; n++)
        for (int oh = 0; oh < 2; oh++)
            for (int ow = 0; ow < 2; ow++)
                for (int c = 0; c < C; c++) {
                    float m = -INFINITY;
                    int nan = 0;
                    for (int i = 0; i < 2; i++)
                        for (int j = 0; j < 2; j++) {
                            float v = x[((n * H + oh * 2 + i) * W + ow * 2 + j) * C + c];
                            nan |= isnan(v);
                            m = v > m ? v : m;
                        }
                    float g = y[((n * 2 + oh) * 2 + ow) * C + c];
                    CHECK(nan ? isnan(g) : g == m);
                }
    float *t = malloc(N * H * W * C * 4), *back = malloc(N * H * W * C * 4);
    s2_ref_nhwc_to_nchw(t, x, N, H, W, C);
    CHECK(t[((1 * C + 2) * H + 4) * W + 1] == x[((1 * H + 4) * W + 1) * C + 2]);
    s2_ref_nchw_to_nhwc(back, t, N, C, H, W);
    CHECK(memcmp(back, x, N * H * W * C * 4) == 0);
    free(x), free(t), free(back);
}

/* ---- fast kernels (kernels/fast.h) against their reference twins ----------------------- */

// Worst |a - b| / (abs_tol + rel_tol |b|) over n values (> 1 means out of tolerance).
static double worst_ratio(const float *a, const float *b, int64_t n, double rel_tol, double abs_tol) {
    double w = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double r = fabs((double)a[i] - b[i]) / (abs_tol + rel_tol * fabs((double)b[i]));
        if (r > w || isnan(r)) w = isnan(r) ? INFINITY : r;
    }
    return w;
}

TEST(fast_gelu_and_norms_match_reference) {
    int64_t n = 40003, rows = 37, C = 100, HW = 53;
    float *x = malloc(n * 4), *g = malloc(n * 4);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(i - n / 2) / 2000.0f; /* [-10, 10] */
    memcpy(g, x, n * 4);
    s2_ref_gelu(x, n);
    s2_fast_gelu(g, n);
    double wg = worst_ratio(g, x, n, 4 * EPS32, 4e-7); /* A&S erf: 1.5e-7 absolute */
    printf("  fast gelu: worst error %.2f of (4e-7 + 4 eps |y|)\n", wg);
    CHECK(wg <= 1.0);
    float *a = rand_buf(rows * C, 3), *gm = rand_buf(C, 1), *bt = rand_buf(C, 1);
    for (int64_t i = 0; i < rows * C; i++) a[i] += 4.0f; /* non-zero mean */
    float *r1 = malloc(rows * C * 4), *r2 = malloc(rows * C * 4);
    s2_ref_layernorm(r1, a, gm, bt, rows, C, 1e-6f);
    s2_fast_layernorm(r2, a, gm, bt, rows, C, 1e-6f);
    double wl = worst_ratio(r2, r1, rows * C, 0, 2e-5);
    s2_ref_layernorm2d(r1, a, gm, bt, 2, (int)C / 2, HW / 2 + 1, 1e-6f); /* 2 images, odd HW */
    s2_fast_layernorm2d(r2, a, gm, bt, 2, (int)C / 2, HW / 2 + 1, 1e-6f);
    double w2 = worst_ratio(r2, r1, 2 * (C / 2) * (HW / 2 + 1), 0, 2e-5);
    printf("  fast layernorm / layernorm2d: worst %.2f / %.2f of 2e-5\n", wl, w2);
    CHECK(wl <= 1.0 && w2 <= 1.0);
    free(x), free(g), free(a), free(gm), free(bt), free(r1), free(r2);
}

/* The transposed convolution with its epilogue: the reference (NCHW and NHWC input)
 * equals k_eq_s + add + GELU bit for bit; the fast scatter of the same GEMM result
 * equals it within the GELU approximation (exactly without GELU). */
TEST(conv_transpose_epilogue_and_fast_scatter) {
    int N = 2, C = 24, H = 5, W = 16, OC = 8, K = 2;
    int64_t nx = (int64_t)N * C * H * W, ny = (int64_t)N * OC * H * K * W * K, NC = OC * K * K;
    float *x = rand_buf(nx, 1), *w = rand_buf(C * NC, 1), *b = rand_buf(OC, 1), *add = rand_buf(ny, 1);
    float *y0 = malloc(ny * 4), *y1 = malloc(ny * 4), *y2 = malloc(ny * 4), *xh = malloc(nx * 4);
    s2_ref_conv_transpose2d_k_eq_s(y0, x, w, b, N, C, H, W, OC, K);
    s2_ref_add(y0, y0, add, ny);
    s2_ref_gelu(y0, ny);
    s2_convt_desc d = {.N = N, .C = C, .H = H, .W = W, .OC = OC, .K = K, .add = add, .act = S2_ACT_GELU};
    s2_ref_conv_transpose2d(y1, x, w, b, &d);
    CHECK(memcmp(y0, y1, ny * 4) == 0);
    s2_ref_nchw_to_nhwc(xh, x, N, C, H, W);
    d.x_nhwc = true;
    s2_ref_conv_transpose2d(y2, xh, w, b, &d);
    CHECK(memcmp(y0, y2, ny * 4) == 0);
    /* t [N][NC][HW] = w^T x (no bias), then the scatter adds bias, add and GELU */
    float *t = malloc((size_t)N * H * W * NC * 4), *wt = malloc((size_t)C * NC * 4);
    for (int c = 0; c < C; c++)
        for (int j = 0; j < NC; j++) wt[j * C + c] = w[c * NC + j];
    for (int n = 0; n < N; n++) s2_ref_matmul(t + (int64_t)n * H * W * NC, wt, x + (int64_t)n * C * H * W, NC, C, (int64_t)H * W, false, 1, 0);
    d.act = S2_ACT_NONE, d.x_nhwc = false;
    s2_ref_conv_transpose2d(y1, x, w, b, &d);
    for (int act = 0; act < 2; act++) {
        s2_fast_convt_scatter(y2, t, b, add, false, act, N, OC, H, W, K);
        double wr = worst_ratio(y2, act ? y0 : y1, ny, 4 * EPS32, 1e-5);
        printf("  fast convT scatter (act %d): worst %.2f of tolerance\n", act, wr);
        CHECK(wr <= 1.0);
    }
    free(x), free(w), free(b), free(add), free(y0), free(y1), free(y2), free(xh), free(t), free(wt);
}

TEST(transposes_tiled_exact) {
    const int N = 2, C = 40, H = 9, W = 21; /* tiles of 16 plus ragged edges */
    int64_t n = (int64_t)N * C * H * W;
    float *x = rand_buf(n, 1), *y = malloc(n * 4), *z = malloc(n * 4);
    s2_ref_nchw_to_nhwc(y, x, N, C, H, W);
    int bad = 0;
    for (int b = 0; b < N; b++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < H * W; p++) bad += y[((int64_t)b * H * W + p) * C + c] != x[((int64_t)b * C + c) * H * W + p];
    s2_ref_nhwc_to_nchw(z, y, N, H, W, C);
    CHECK(bad == 0 && memcmp(z, x, n * 4) == 0);
    free(x), free(y), free(z);
}

/* ---- thread-count invariance ------------------------------------------------------------ */

TEST(thread_count_invariance) {
    int64_t M = 300, K = 200, N = 150;
    float *x = rand_buf(M * K, 1), *w = rand_buf(N * K, 1), *b = rand_buf(N, 1);
    float *y1 = malloc(M * N * 4), *y2 = malloc(M * N * 4);
    s2_conv2d_desc d = {2, 8, 30, 30, 16, 3, 3, 1, 1, 1, 1, 1};
    float *cx = rand_buf(2 * 8 * 30 * 30, 1), *cw = rand_buf(16 * 8 * 9, 1);
    float *c1 = malloc(2 * 16 * 900 * 4), *c2 = malloc(2 * 16 * 900 * 4);
    const int B = 2, H = 4, hd = 16;
    int64_t Nq = 200, Nk = 150;
    float *q = rand_buf(B * Nq * H * hd, 1), *k = rand_buf(B * Nk * H * hd, 1),
          *v = rand_buf(B * Nk * H * hd, 1);
    float *o1 = malloc(B * Nq * H * hd * 4), *o2 = malloc(B * Nq * H * hd * 4);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    s2_ref_linear(y1, x, w, b, M, K, N);
    s2_ref_conv2d(c1, cx, cw, b, &d);
    s2_ref_attention(o1, H * hd, q, H * hd, k, H * hd, v, H * hd, B, H, Nq, Nk, hd);
    omp_set_num_threads(2);
    s2_ref_linear(y2, x, w, b, M, K, N);
    s2_ref_conv2d(c2, cx, cw, b, &d);
    s2_ref_attention(o2, H * hd, q, H * hd, k, H * hd, v, H * hd, B, H, Nq, Nk, hd);
    omp_set_num_threads(saved);
    CHECK(memcmp(y1, y2, M * N * 4) == 0);
    CHECK(memcmp(c1, c2, 2 * 16 * 900 * 4) == 0);
    CHECK(memcmp(o1, o2, B * Nq * H * hd * 4) == 0);
    free(x), free(w), free(b), free(y1), free(y2), free(cx), free(cw), free(c1), free(c2);
    free(q), free(k), free(v), free(o1), free(o2);
}

/* ---- golden: Hiera pos-embed (bicubic 7x7 -> 64x64) ---------------------------------- */

// ref: sam2/modeling/backbones/hieradet.py Hiera._get_pos_embed
TEST(golden_hiera_pos_embed_bicubic) {
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return;
    }
    s2_tensorfile *mf = NULL, *cf = NULL;
    REQUIRE(s2_tensorfile_open(s2t_fx("micro/model.safetensors"), &mf) == 0);
    REQUIRE(s2_tensorfile_open(s2t_fx("micro/image/constants.safetensors"), &cf) == 0);
    const s2_tf_entry *pe = s2_tensorfile_find(mf, "image_encoder.trunk.pos_embed");
    const s2_tf_entry *pw = s2_tensorfile_find(mf, "image_encoder.trunk.pos_embed_window");
    const s2_tf_entry *want = s2_tensorfile_find(cf, "trunk.pos_embed");
    REQUIRE(pe && pw && want);
    int C = (int)pe->t.shape[1], h = (int)pe->t.shape[2], ww = (int)pw->t.shape[2];
    REQUIRE(C == 32 && h == 7 && ww == 8 && want->t.shape[1] == 64);
    float *up = malloc((size_t)C * 64 * 64 * 4), *nhwc = malloc((size_t)C * 64 * 64 * 4);
    s2_ref_interp_bicubic(up, pe->t.data, C, h, h, 64, 64, false);
    const float *win = pw->t.data; /* [1, C, 8, 8] tiled over 64x64 */
    for (int c = 0; c < C; c++)
        for (int i = 0; i < 64 * 64; i++) up[c * 4096 + i] += win[(c * 8 + (i / 64) % 8) * 8 + i % 8];
    s2_ref_nchw_to_nhwc(nhwc, up, 1, C, 64, 64);
    double rel;
    CHECK(s2t_allclose("trunk.pos_embed", nhwc, want->t.data, (int64_t)C * 4096, 0, 0, &rel));
    float worst = 0;
    int64_t ndiff = 0;
    for (int64_t i = 0; i < (int64_t)C * 4096; i++) {
        float e = fabsf(nhwc[i] - ((const float *)want->t.data)[i]);
        worst = fmaxf(worst, e);
        ndiff += e != 0.0f;
    }
    printf("  pos_embed max abs diff %.3g (%lld of %lld values differ)\n", worst,
           (long long)ndiff, (long long)C * 4096);
    free(up), free(nhwc);
    s2_tensorfile_free(mf);
    s2_tensorfile_free(cf);
}

/* ---- golden: image predictor mask upsampling (bilinear, align_corners=False) ------- */

// Upsamples the low-res logits of tokens [tok0, tok0 + nm) of a case file and returns the
// max abs difference to its output.masks (the official postprocess_masks).
static double mask_upsample_diff(const char *rel, int tok0, int64_t *ndiff) {
    s2_tensorfile *f = NULL;
    *ndiff = -1;
    if (s2_tensorfile_open(s2t_fx(rel), &f) != 0) return INFINITY;
    const s2_tf_entry *lr = s2_tensorfile_find(f, "decoder.all_low_res_logits"); /* [1,4,64,64] */
    const s2_tf_entry *om = s2_tensorfile_find(f, "output.masks");              /* [nm,H,W] */
    double worst = INFINITY;
    if (lr && om && om->t.ndim == 3 && lr->t.shape[2] == 64) {
        int nm = (int)om->t.shape[0], OH = (int)om->t.shape[1], OW = (int)om->t.shape[2];
        int64_t n = (int64_t)nm * OH * OW;
        float *y = malloc(n * sizeof(float));
        s2_ref_interp_bilinear(y, (const float *)lr->t.data + tok0 * 4096, nm, 64, 64, OH, OW,
                               false, false);
        worst = 0;
        *ndiff = 0;
        for (int64_t i = 0; i < n; i++) {
            double e = fabs((double)y[i] - ((const float *)om->t.data)[i]);
            worst = e > worst ? e : worst;
            *ndiff += e != 0;
        }
        free(y);
    }
    s2_tensorfile_free(f);
    return worst;
}

// ref: sam2/utils/transforms.py SAM2Transforms.postprocess_masks
TEST(golden_mask_upsample_bilinear) {
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return;
    }
    const char *imgs[2] = {"truck", "groceries"};
    for (int i = 0; i < 2; i++) {
        char rel[128];
        int64_t nd;
        /* multimask: tokens 1..3, a [1,3,64,64] slice -> PyTorch's generic kernel: exact */
        snprintf(rel, sizeof rel, "micro/image/%s/case0_point_multimask.safetensors", imgs[i]);
        double w = mask_upsample_diff(rel, 1, &nd);
        printf("  %-10s multimask  max abs diff %.3g (%lld values differ)\n", imgs[i], w, (long long)nd);
        CHECK(w == 0.0);
        /* single stable mask (token 0), a contiguous [1,1,64,64] tensor -> PyTorch's
         * channels-last kernel, whose rounding order differs: within 1 ulp (|v| < 64) */
        snprintf(rel, sizeof rel, "micro/image/%s/case1_points_pos_neg_single.safetensors", imgs[i]);
        w = mask_upsample_diff(rel, 0, &nd);
        printf("  %-10s single     max abs diff %.3g (%lld values differ)\n", imgs[i], w, (long long)nd);
        CHECK(w <= 3.82e-6);
    }
}

TEST(interp_u8_matches_float) {
    const int H = 37, W = 53, C = 3, OH = 16, OW = 20;
    uint8_t *u8 = malloc(H * W * C);
    float *f = malloc(H * W * C * 4), *a = malloc(C * OH * OW * 4), *b = malloc(C * OH * OW * 4);
    for (int i = 0; i < H * W * C; i++) u8[i] = (uint8_t)(frand() * 127.5f + 127.5f);
    for (int c = 0; c < C; c++)
        for (int p = 0; p < H * W; p++) f[c * H * W + p] = (float)u8[p * C + c] / 255.0f;
    for (int aa = 0; aa < 2; aa++) {
        s2_ref_interp_bilinear(a, f, C, H, W, OH, OW, false, aa);
        s2_ref_interp_bilinear_u8hwc(b, u8, C, H, W, OH, OW, false, aa);
        CHECK(memcmp(a, b, C * OH * OW * 4) == 0);
    }
    free(u8), free(f), free(a), free(b);
}

/* ---- golden: video add_new_mask resize (antialiased bilinear on a binary f32 mask) - */

// ref: sam2/sam2_video_predictor.py SAM2VideoPredictor.add_new_mask (resize, >= 0.5)
TEST(golden_mask_prompt_antialias) {
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return;
    }
    s2_tensorfile *in = NULL, *out = NULL;
    REQUIRE(s2_tensorfile_open(s2t_fx("micro/video/inputs.safetensors"), &in) == 0);
    REQUIRE(s2_tensorfile_open(s2t_fx("micro/video/outputs.safetensors"), &out) == 0);
    const s2_tf_entry *m = s2_tensorfile_find(in, "obj3.mask_prompt_u8");   /* [270,480] 0/1 */
    const s2_tf_entry *w = s2_tensorfile_find(out, "s06.mask_inputs_256");  /* [256,256] 0/1 */
    REQUIRE(m && w && m->t.ndim == 2 && w->t.shape[0] == 256);
    int H = (int)m->t.shape[0], W = (int)m->t.shape[1];
    float *x = malloc((size_t)H * W * 4), *y = malloc(256 * 256 * 4);
    for (int i = 0; i < H * W; i++) x[i] = ((const uint8_t *)m->t.data)[i];
    s2_ref_interp_bilinear(y, x, 1, H, W, 256, 256, false, true);
    int bad = 0, on = 0, near = 0;
    for (int i = 0; i < 256 * 256; i++) {
        bad += (y[i] >= 0.5f) != (((const uint8_t *)w->t.data)[i] != 0);
        on += y[i] >= 0.5f;
        near += fabsf(y[i] - 0.5f) < 1e-6f;
    }
    printf("  mask prompt: %d pixels on, %d within 1e-6 of 0.5, %d differ\n", on, near, bad);
    CHECK(bad == 0);
    free(x), free(y);
    s2_tensorfile_free(in);
    s2_tensorfile_free(out);
}

/* ---- backend dispatch ---------------------------------------------------------------- */

static int fake_linear_calls;

// A backend slot that only counts its calls (and writes a marker).
static void fake_linear(void *self, float *y, const float *x, const float *w, const float *b,
                        int64_t M, int64_t K, int64_t N) {
    fake_linear_calls++;
    y[0] = 123.0f;
}

TEST(backend_dispatch_and_scratch) {
    const s2_backend *ref = s2_backend_reference();
    REQUIRE(ref && ref->linear && ref->matmul && ref->conv2d && ref->attention);
    CHECK(strcmp(ref->name, "reference") == 0);
    float x[6] = {1, 2, 3, 4, 5, 6}, w[6] = {1, 0, -1, 2, 1, 0}, b[2] = {0.5f, -1}, y[4];
    s2_op_linear(NULL, y, x, w, b, 2, 3, 2); /* no context: reference */
    CHECK(y[0] == -1.5f && y[1] == 3.0f && y[2] == -1.5f && y[3] == 12.0f);
    s2_backend fake = {.name = "fake", .linear = fake_linear};
    s2_arena arena;
    REQUIRE(s2_arena_init(&arena, 1 << 16) == 0);
    s2_ctx c = {.be = &fake, .scratch = &arena};
    s2_op_linear(&c, y, x, w, b, 2, 3, 2);
    CHECK(fake_linear_calls == 1 && y[0] == 123.0f);
    float m[4];
    s2_op_matmul(&c, m, x, w, 2, 3, 2, true, 1.0f, 0.0f); /* NULL slot: reference */
    CHECK(m[0] == -2.0f && m[1] == 4.0f && m[3] == 13.0f);
    float *p = s2_scratch_f32(&c, 1000), *q = s2_scratch_f32(&c, 100000); /* q overflows */
    CHECK(((uintptr_t)p % 64) == 0 && ((uintptr_t)q % 64) == 0);
    p[999] = 1.0f, q[99999] = 2.0f;
    CHECK(p[999] == 1.0f && q[99999] == 2.0f);
    s2_arena_free(&arena);
}
