/* Synthetic "inspection" data: images of one to four industrial parts (washers, plates,
 * hex nuts, L-brackets, gears, cables) on textured benches under uneven factory light,
 * with exact per-object masks, for fine-tuning tests and the embedded demo model.
 * Everything is a pure function of (params, seed): same seed, same bytes.
 * Letters: w x h image pixels, K parts of an image (drawn bottom to top). */
#ifndef S2_SYNTH_H
#define S2_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

/* Part kinds; COCO category id = kind + 1. */
typedef enum {
    S2_PART_DISC,     /* washer / flange: disc with a centre hole or bolt circle */
    S2_PART_PLATE,    /* rounded rectangle with bolt holes */
    S2_PART_NUT,      /* hex nut */
    S2_PART_BRACKET,  /* L-bracket with holes */
    S2_PART_GEAR,     /* spur gear with teeth and a bore */
    S2_PART_CABLE,    /* thick insulated cable (a cubic curve with round ends) */
    S2_PART_COUNT
} s2_part_kind;

/* Bench surfaces. */
typedef enum {
    S2_BG_WOOD, S2_BG_METAL, S2_BG_CONVEYOR, S2_BG_SPECKLE, S2_BG_FABRIC, S2_BG_COUNT
} s2_bg_kind;

const char *s2_part_name(int kind);     /* "disc", ...; NULL when out of range */
const char *s2_bg_name(int kind);       /* "wood", "metal", "conveyor", "speckle", "fabric" */
/* "disc,gear" -> bit mask of kinds (1u << kind); SAM2C_ERR_ARG names an unknown word. */
int s2_part_mask_parse(const char *list, unsigned *mask);
int s2_bg_mask_parse(const char *list, unsigned *mask);

typedef struct s2_synth_params {
    int w, h;                 /* image size (256 x 256; 1024 for full-size models) */
    int min_parts, max_parts; /* parts per image, 1 <= min <= max <= 4 (1, 4) */
    unsigned kinds;           /* allowed part kinds, bit mask (all) */
    unsigned backgrounds;     /* allowed bench surfaces, bit mask (all) */
    double gradient;          /* lighting ramp: gain 1 - g .. 1 + g across the image (0.25) */
    double gradient_angle;    /* ramp direction in degrees (0: brighter to the right);
                               * NAN: random per image (default) */
    double vignette;          /* corner darkening: gain 1 - v * (r / r_corner)^2 (0.25) */
    double noise;             /* sensor noise sigma in grey levels at mid-grey (3) */
    double blur;              /* optical blur: Gaussian sigma in pixels (0.6) */
    double shadow;            /* shadow darkness 0..1 (0.45) */
    double p_overlap;         /* chance that a part is placed against an earlier one (0.5) */
    bool antialias;           /* anti-aliased part edges in the image (true); masks never are */
} s2_synth_params;
void s2_synth_default(s2_synth_params *p);
/* SAM2C_ERR_ARG with a message when a field is out of range. */
int s2_synth_check(const s2_synth_params *p);

typedef struct s2_synth_sample {
    int w, h;
    uint8_t *rgb;             /* (h, w, 3) */
    int n;                    /* K, in drawing order (index K-1 on top) */
    int kind[4];              /* s2_part_kind of each part */
    uint8_t *masks;           /* (K, h, w) 0 / 1: visible pixels (occluded parts lose the
                               * pixels of the parts above them; holes are not part) */
    uint8_t *amodal;          /* (K, h, w) 0 / 1: each part's whole shape */
    int background;           /* s2_bg_kind */
    double gradient_angle;    /* degrees, the direction actually used */
} s2_synth_sample;

/* Renders one image. Every visible mask keeps at least ~0.4% of the image and 35% of
 * its part, and no part touches the image border. Free with s2_synth_free. */
int s2_synth_generate(const s2_synth_params *p, uint64_t seed, s2_synth_sample *out);
void s2_synth_free(s2_synth_sample *s);

/* ---- data sets on disk (synth_write.c) ---- */

typedef struct s2_synth_write_params {
    const char *format;       /* "jpg" (default) or "png" */
    int quality;              /* JPEG quality 1..100 (92) */
    const char *prefix;       /* file stems "<prefix>_000000" ("synth") */
    int threads;              /* 0: OpenMP's default */
    /* Called after each image, under a lock, possibly from a worker thread. */
    void (*progress)(void *user, int done, int total);
    void *user;
} s2_synth_write_params;
void s2_synth_write_default(s2_synth_write_params *wp);

/* Seed of image i of a set: mixes the set seed, the prefix and i, so a "train" and a
 * "val" set of one seed share no image. */
uint64_t s2_synth_image_seed(uint64_t seed, const char *prefix, int i);

/* Writes n images into dir (created with its parents):
 *   dir/images/<stem>.jpg|png, dir/masks/<stem>/<k>.png (0 / 255, k = 0..K-1 in the
 *   order of the annotations), dir/annotations.json (COCO instances: compressed RLE
 *   segmentations, area, bbox, category = part kind).
 * Every file is written atomically; annotations.json comes last, so a set without it
 * is incomplete. Returns the number of objects written, or a negative status. */
int s2_synth_write_set(const char *dir, const s2_synth_params *p, uint64_t seed, int n,
                       const s2_synth_write_params *wp);

#endif
