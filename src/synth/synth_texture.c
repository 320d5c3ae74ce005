/* Bench textures (wood grain, brushed metal, conveyor belt, speckled floor, woven mat)
 * and the camera model applied to the finished scene: uneven lighting, vignetting,
 * optical blur and sensor noise. Sizes scale with s = min(w, h) / 256 so a 1024-pixel
 * image shows the same bench as a 256-pixel one, in more detail. */
#include "synth/synth_internal.h"
#include "core/s2.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PI_F 3.14159265f

/* ======================= noise ======================= */

// Integer avalanche (murmur3 finaliser) of the lattice point and seed.
float sy_hash01(int32_t ix, int32_t iy, uint32_t seed) {
    uint32_t h = (uint32_t)ix * 0x8DA6B343u ^ (uint32_t)iy * 0xD8163841u ^ seed * 0xCB1AB31Fu;
    h ^= h >> 13;
    h *= 0x85EBCA6Bu;
    h ^= h >> 16;
    h *= 0xC2B2AE35u;
    h ^= h >> 15;
    return (float)(h >> 8) * (1.0f / 16777216.0f);
}

// Bilinear interpolation of lattice hashes with a smoothstep weight.
float sy_vnoise(float x, float y, uint32_t seed) {
    float fx = floorf(x), fy = floorf(y);
    int32_t ix = (int32_t)fx, iy = (int32_t)fy;
    float tx = x - fx, ty = y - fy;
    tx = tx * tx * (3 - 2 * tx), ty = ty * ty * (3 - 2 * ty);
    float a = sy_hash01(ix, iy, seed), b = sy_hash01(ix + 1, iy, seed);
    float c = sy_hash01(ix, iy + 1, seed), d = sy_hash01(ix + 1, iy + 1, seed);
    return (a + (b - a) * tx) * (1 - ty) + (c + (d - c) * tx) * ty;
}

// Octaves at double frequency and half amplitude, normalised back to [0, 1].
float sy_fbm(float x, float y, uint32_t seed, int octaves) {
    float sum = 0, amp = 1, norm = 0;
    for (int o = 0; o < octaves; o++) {
        sum += amp * sy_vnoise(x, y, seed + 101u * (uint32_t)o);
        norm += amp;
        amp *= 0.5f, x *= 2.03f, y *= 2.03f;
    }
    return sum / norm;
}

/* ======================= bench surfaces ======================= */

typedef struct bg_ctx {
    float cs, sn;       /* texture rotation */
    float s;            /* size scale: min(w, h) / 256 */
    float c0[3], c1[3]; /* two colours the texture mixes */
    float p0, p1;       /* kind-specific periods (px at 256) */
    uint32_t seed;
} bg_ctx;

// Wood: growth rings warped by noise, fibre streaks, plank seams.
static void bg_wood(const bg_ctx *c, float u, float v, float *rgb) {
    float s = c->s;
    float warp = (sy_fbm(u / (90 * s), v / (25 * s), c->seed, 3) - 0.5f) * 28 * s;
    float ring = 0.5f + 0.5f * sinf(2 * PI_F * (v + warp) / (c->p0 * s));
    ring = ring * ring * ring;
    float fibre = sy_vnoise(u / (30 * s), v / (0.8f * s), c->seed + 7);
    float t = 0.5f * ring + 0.3f * fibre + 0.2f * sy_fbm(u / (70 * s), v / (70 * s), c->seed + 9, 2);
    float pv = fmodf(v + 4096 * c->p1 * s, c->p1 * s);
    float seam = pv < 1.5f * s ? 0.55f : 1.0f;
    for (int k = 0; k < 3; k++) rgb[k] = (c->c0[k] + (c->c1[k] - c->c0[k]) * t) * seam;
}

// Brushed metal: long thin streaks along u, a broad sheen.
static void bg_metal(const bg_ctx *c, float u, float v, float *rgb) {
    float s = c->s;
    float streak = sy_fbm(u / (120 * s), v / (0.9f * s), c->seed, 3) - 0.5f;
    float sheen = sy_fbm(u / (110 * s), v / (110 * s), c->seed + 5, 2) - 0.5f;
    float g = 1 + 0.28f * streak + 0.22f * sheen;
    for (int k = 0; k < 3; k++) rgb[k] = c->c0[k] * g;
}

// Conveyor belt: dark rubber with raised ridges across it, grain and wear.
static void bg_conveyor(const bg_ctx *c, float u, float v, float *rgb) {
    float s = c->s, p = c->p0 * s;
    float ph = fmodf(v + 4096 * p, p) / p;
    float ridge = powf(0.5f + 0.5f * cosf(2 * PI_F * ph), 4.0f);
    float edge = powf(0.5f + 0.5f * cosf(2 * PI_F * (ph - 0.12f)), 16.0f); /* lit ridge side */
    float grain = sy_hash01((int32_t)(u / s), (int32_t)(v / s), c->seed) - 0.5f;
    float wear = sy_fbm(u / (60 * s), v / (40 * s), c->seed + 3, 3) - 0.5f;
    float g = 1 + 0.45f * ridge + 0.5f * edge + 0.18f * grain + 0.5f * wear;
    for (int k = 0; k < 3; k++) rgb[k] = c->c0[k] * g;
}

// Speckled floor (concrete / epoxy): cloudy base with dark and light flecks.
static void bg_speckle(const bg_ctx *c, float u, float v, float *rgb) {
    float s = c->s;
    float cloud = sy_fbm(u / (80 * s), v / (80 * s), c->seed, 4) - 0.5f;
    float h = sy_hash01((int32_t)floorf(u / (1.5f * s)), (int32_t)floorf(v / (1.5f * s)), c->seed + 1);
    float fleck = h < 0.07f ? 0.55f : h > 0.965f ? 1.3f : 1.0f;
    float fine = sy_hash01((int32_t)u, (int32_t)v, c->seed + 2) - 0.5f;
    float g = (1 + 0.3f * cloud + 0.06f * fine) * fleck;
    for (int k = 0; k < 3; k++) rgb[k] = c->c0[k] * g;
}

// Woven mat: over-under threads with round profiles and per-thread colour jitter.
static void bg_fabric(const bg_ctx *c, float u, float v, float *rgb) {
    float p = c->p0 * c->s;
    float fu = u / p, fv = v / p;
    int32_t iu = (int32_t)floorf(fu), iv = (int32_t)floorf(fv);
    float warp = sinf(PI_F * (fu - floorf(fu))), weft = sinf(PI_F * (fv - floorf(fv)));
    bool over = ((iu + iv) & 1) != 0;
    float top = over ? warp : weft;
    float jit = over ? sy_hash01(iu, 0, c->seed) : sy_hash01(0, iv, c->seed + 1);
    float cloud = sy_fbm(u / (60 * c->s), v / (60 * c->s), c->seed + 2, 2) - 0.5f;
    float g = (0.62f + 0.38f * top) * (0.93f + 0.14f * jit) * (1 + 0.2f * cloud);
    for (int k = 0; k < 3; k++) rgb[k] = (over ? c->c0[k] : c->c1[k]) * g;
}

/* Picks the colours and periods of a surface. */
static void bg_setup(bg_ctx *c, int kind, sy_rng *r) {
    static const float wood[3][3] = {{205, 165, 115}, {185, 130, 80}, {150, 105, 70}};
    static const float metal[3][3] = {{150, 152, 156}, {125, 128, 132}, {170, 168, 160}};
    static const float rubber[3][3] = {{52, 54, 56}, {44, 52, 48}, {48, 50, 62}};
    static const float floor_[4][3] = {{150, 150, 145}, {175, 165, 140}, {120, 135, 125}, {95, 100, 110}};
    static const float mat[4][3] = {{60, 90, 145}, {60, 125, 95}, {120, 120, 126}, {185, 172, 145}};
    const float *base;
    switch (kind) {
    case S2_BG_WOOD:
        base = wood[sy_int(r, 3)], c->p0 = (float)sy_range(r, 8, 16), c->p1 = (float)sy_range(r, 60, 140);
        break;
    case S2_BG_METAL: base = metal[sy_int(r, 3)]; break;
    case S2_BG_CONVEYOR: base = rubber[sy_int(r, 3)]; c->p0 = (float)sy_range(r, 10, 22); break;
    case S2_BG_SPECKLE: base = floor_[sy_int(r, 4)]; break;
    default: base = mat[sy_int(r, 4)]; c->p0 = (float)sy_range(r, 3, 6); break;
    }
    float jit = (float)sy_range(r, 0.88, 1.1);
    for (int k = 0; k < 3; k++) {
        c->c0[k] = base[k] * jit;
        c->c1[k] = kind == S2_BG_WOOD ? c->c0[k] * 0.6f : c->c0[k] * (float)sy_range(r, 0.85, 1.0);
    }
    double ang = sy_range(r, -0.35, 0.35) + (sy_unif(r) < 0.5 ? 1.5707963 : 0.0);
    if (kind == S2_BG_FABRIC) ang *= 0.3;
    c->cs = (float)cos(ang), c->sn = (float)sin(ang);
    c->seed = (uint32_t)sy_next(r);
}

// Evaluates the surface at every pixel centre in the texture's rotated frame.
void sy_background(float *img, int w, int h, int kind, sy_rng *r) {
    bg_ctx c = {.s = (float)S2_MIN(w, h) / 256.0f};
    bg_setup(&c, kind, r);
    void (*fn)(const bg_ctx *, float, float, float *) =
        kind == S2_BG_WOOD ? bg_wood : kind == S2_BG_METAL ? bg_metal :
        kind == S2_BG_CONVEYOR ? bg_conveyor : kind == S2_BG_SPECKLE ? bg_speckle : bg_fabric;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float px = x + 0.5f, py = y + 0.5f;
            float u = c.cs * px + c.sn * py + 8192, v = -c.sn * px + c.cs * py + 8192;
            fn(&c, u, v, img + ((size_t)y * w + x) * 3);
        }
}

/* ======================= camera ======================= */

// Lighting ramp (1 + g t, t in [-1, 1] along the angle) times vignetting.
static void camera_gain(float *img, int w, int h, const s2_synth_params *p, double angle_deg) {
    double a = angle_deg * 3.14159265358979 / 180.0, ca = cos(a), sa = sin(a);
    double half = 0.5 * w * fabs(ca) + 0.5 * h * fabs(sa);
    double rc2 = 0.25 * ((double)w * w + (double)h * h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double dx = x + 0.5 - 0.5 * w, dy = y + 0.5 - 0.5 * h;
            double t = (dx * ca + dy * sa) / half;
            double g = (1 + p->gradient * t) * (1 - p->vignette * (dx * dx + dy * dy) / rc2);
            float *px = img + ((size_t)y * w + x) * 3;
            for (int k = 0; k < 3; k++) px[k] = (float)(px[k] * g);
        }
}

// Separable Gaussian blur with clamped borders (radius ceil(3 sigma), at most 15):
// rows through a padded copy, then columns as weighted sums of whole rows.
static void camera_blur(float *img, float *tmp, float *pad, int w, int h, double sigma) {
    float k[31];
    int rad = S2_MIN(15, (int)ceil(3 * sigma)), row = w * 3;
    float sum = 0;
    for (int i = -rad; i <= rad; i++) sum += k[i + rad] = (float)exp(-0.5 * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * rad; i++) k[i] /= sum;
    for (int y = 0; y < h; y++) { // rows: img -> tmp
        const float *src = img + (size_t)y * row;
        for (int x = -rad; x < w + rad; x++)
            memcpy(pad + (size_t)(x + rad) * 3, src + (size_t)S2_MIN(w - 1, S2_MAX(0, x)) * 3, 3 * sizeof(float));
        float *dst = tmp + (size_t)y * row;
        for (int j = 0; j < row; j++) dst[j] = 0;
        for (int i = 0; i <= 2 * rad; i++)
            for (int j = 0; j < row; j++) dst[j] += k[i] * pad[j + i * 3];
    }
    for (int y = 0; y < h; y++) { // columns: tmp -> img
        float *dst = img + (size_t)y * row;
        for (int j = 0; j < row; j++) dst[j] = 0;
        for (int i = -rad; i <= rad; i++) {
            const float *src = tmp + (size_t)S2_MIN(h - 1, S2_MAX(0, y + i)) * row;
            for (int j = 0; j < row; j++) dst[j] += k[i + rad] * src[j];
        }
    }
}

/* Approximately standard normal: a centred sum of four uniforms, rescaled. */
static float gauss4(sy_rng *r) {
    uint64_t a = sy_next(r), b = sy_next(r);
    float s = (float)(a & 0xFFFFFFFFu) + (float)(a >> 32) + (float)(b & 0xFFFFFFFFu) + (float)(b >> 32);
    return (s * (1.0f / 4294967296.0f) - 2.0f) * 1.7320508f;
}

void sy_camera(float *img, float *tmp, int w, int h, const s2_synth_params *p,
               double angle_deg, uint64_t seed, uint8_t *out) {
    camera_gain(img, w, h, p, angle_deg);
    if (p->blur > 0.05) camera_blur(img, tmp, tmp + (size_t)w * h * 3, w, h, p->blur);
    sy_rng r = sy_stream(seed, 77);
    for (size_t i = 0; i < (size_t)w * h; i++) {
        float *px = img + i * 3;
        if (p->noise > 0) { // luma noise growing with brightness (shot noise) + a little chroma
            float lum = 0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2];
            float sd = (float)p->noise * sqrtf((S2_MAX(lum, 0.0f) + 16) / 144.0f);
            float l = gauss4(&r) * sd;
            for (int k = 0; k < 3; k++) px[k] += l + 0.35f * sd * gauss4(&r);
        }
        for (int k = 0; k < 3; k++) {
            float v = px[k] < 0 ? 0 : px[k] > 255 ? 255 : px[k];
            out[i * 3 + k] = (uint8_t)lrintf(v);
        }
    }
}
