/* Private to src/synth: the seeded random stream, lattice noise, bench textures and
 * the camera effects (lighting, vignetting, blur, sensor noise). */
#ifndef S2_SYNTH_INTERNAL_H
#define S2_SYNTH_INTERNAL_H

#include "synth/synth.h"
#include <stdint.h>

/* splitmix64: one 64-bit state per purpose, so switching an effect off never shifts
 * the random numbers that another effect draws. */
typedef struct sy_rng { uint64_t s; } sy_rng;

static inline uint64_t sy_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline uint64_t sy_next(sy_rng *r) { return sy_mix(r->s += 0x9E3779B97F4A7C15ull); }
/* Uniform in [0, 1). */
static inline double sy_unif(sy_rng *r) { return (double)(sy_next(r) >> 11) * 0x1.0p-53; }
static inline double sy_range(sy_rng *r, double a, double b) { return a + (b - a) * sy_unif(r); }
/* Uniform integer in [0, n). */
static inline int sy_int(sy_rng *r, int n) { return (int)(sy_unif(r) * n); }
/* An independent stream for one purpose of one image. */
static inline sy_rng sy_stream(uint64_t seed, uint64_t purpose) {
    return (sy_rng){sy_mix(seed ^ sy_mix(purpose + 0x51ED27Aull))};
}

/* Lattice value noise in [0, 1] (smooth), and 1/f sums of it (octaves >= 1). */
float sy_vnoise(float x, float y, uint32_t seed);
float sy_fbm(float x, float y, uint32_t seed, int octaves);
/* Hash of a lattice point to [0, 1). */
float sy_hash01(int32_t ix, int32_t iy, uint32_t seed);

/* Fills img (h, w, 3) with a bench surface of the given kind (values 0..255). */
void sy_background(float *img, int w, int h, int kind, sy_rng *r);

/* Camera: lighting ramp and vignetting (gains), blur, sensor noise, then rounding to
 * u8 into out (h, w, 3). tmp: scratch of (h + 1) * (w + 30) * 3 floats. */
void sy_camera(float *img, float *tmp, int w, int h, const s2_synth_params *p,
               double angle_deg, uint64_t seed, uint8_t *out);

#endif
