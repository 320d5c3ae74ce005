/* `sam2c synth`: writes synthetic inspection data sets (industrial parts on textured
 * benches, exact masks, COCO annotations) for fine-tuning tests and demo training. */
#include "cli/cli.h"
#include "core/s2.h"
#include "synth/synth.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_synth(int argc, char **argv);

typedef struct synth_args {
    const char *out;
    long train, val, n;     /* -1: not given */
    uint64_t seed;
    int quiet;
    s2_synth_params p;
    s2_synth_write_params wp;
} synth_args;

/* --help text. */
static void synth_usage(FILE *f) {
    fprintf(f,
            "usage: sam2c synth -o DIR (--train N [--val M] | -n N) [options]\n"
            "Writes synthetic inspection images: one to four industrial parts (washers, plates,\n"
            "hex nuts, L-brackets, gears, cables) on a textured bench under uneven light, with\n"
            "exact masks:\n"
            "  DIR/images/<stem>.jpg, DIR/masks/<stem>/<k>.png (0/255, one per object),\n"
            "  DIR/annotations.json (COCO instances, RLE; categories = part kinds).\n"
            "With --train/--val: DIR/train and DIR/val, each laid out so (no shared image).\n"
            "options:\n"
            "  -o, --out DIR        output folder (created)\n"
            "  --train N, --val M   images of the training / validation set\n"
            "  -n N                 N images directly in DIR\n"
            "  --size N | WxH       image size (256; 1024 for full-size models)\n"
            "  --seed S             random seed (1): the same seed writes the same bytes\n"
            "  --kinds LIST         disc,plate,nut,bracket,gear,cable (all)\n"
            "  --backgrounds LIST   wood,metal,conveyor,speckle,fabric (all)\n"
            "  --min-parts N, --max-parts N   parts per image (1, 4; at most 4)\n"
            "  --gradient G         lighting ramp: gain 1-G .. 1+G across the image (0.25)\n"
            "  --gradient-angle D   ramp direction in degrees, 0 = brighter right (random)\n"
            "  --vignette V         corner darkening (0.25)\n"
            "  --noise S            sensor noise sigma, grey levels (3)\n"
            "  --blur S             blur sigma in pixels (0.6)\n"
            "  --shadow S           shadow darkness 0..1 (0.45)\n"
            "  --overlap P          chance a part leans on an earlier one (0.5)\n"
            "  --no-antialias       hard part edges in the images (masks are always hard)\n"
            "  --format jpg|png     image files (jpg); --quality Q  JPEG quality (92)\n"
            "  --threads N          threads (0 = all cores)\n"
            "  --quiet              no progress on stderr\n");
}

/* A count option: integer in [0, hi]. */
static int count_opt(const char *o, const char *v, long hi, long *out) {
    if (!cli_parse_int(v, out) || *out < 0 || *out > hi)
        return cli_fail("synth", "bad %s '%s' (an integer in [0, %ld])", o, v, hi);
    return 0;
}

/* A real option in [lo, hi]. */
static int real_opt(const char *o, const char *v, double lo, double hi, double *out) {
    int n;
    if (!cli_parse_floats(v, out, 1, 1, &n) || !(*out >= lo && *out <= hi))
        return cli_fail("synth", "bad %s '%s' (a number in [%g, %g])", o, v, lo, hi);
    return 0;
}

/* "256" or "320x240". */
static int size_opt(const char *v, s2_synth_params *p) {
    char *end;
    errno = 0;
    long w = strtol(v, &end, 10), h = w;
    if (!errno && end != v && (*end == 'x' || *end == 'X')) {
        const char *s = end + 1;
        h = strtol(s, &end, 10);
        if (end == s) h = -1;
    }
    if (errno || end == v || *end || w < 32 || h < 32 || w > 8192 || h > 8192)
        return cli_fail("synth", "bad --size '%s' (N or WxH, 32..8192)", v);
    p->w = (int)w, p->h = (int)h;
    return 0;
}

/* --seed: a non-negative 64-bit integer. */
static int seed_opt(const char *v, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long s = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-')
        return cli_fail("synth", "bad --seed '%s' (a non-negative integer)", v);
    *out = s;
    return 0;
}

/* One option with a value; 0 when handled, 1 on error, -1 when unknown. */
static int value_opt(synth_args *a, const char *o, const char *v) {
    long t;
    int rc = 0;
    if (!strcmp(o, "-o") || !strcmp(o, "--out")) a->out = v;
    else if (!strcmp(o, "--train")) rc = count_opt(o, v, 10000000, &a->train);
    else if (!strcmp(o, "--val")) rc = count_opt(o, v, 10000000, &a->val);
    else if (!strcmp(o, "-n")) rc = count_opt(o, v, 10000000, &a->n);
    else if (!strcmp(o, "--size")) rc = size_opt(v, &a->p);
    else if (!strcmp(o, "--seed")) rc = seed_opt(v, &a->seed);
    else if (!strcmp(o, "--kinds")) rc = s2_part_mask_parse(v, &a->p.kinds) < 0 ? cli_fail_lib("synth") : 0;
    else if (!strcmp(o, "--backgrounds"))
        rc = s2_bg_mask_parse(v, &a->p.backgrounds) < 0 ? cli_fail_lib("synth") : 0;
    else if (!strcmp(o, "--min-parts")) { rc = count_opt(o, v, 4, &t); a->p.min_parts = (int)t; }
    else if (!strcmp(o, "--max-parts")) { rc = count_opt(o, v, 4, &t); a->p.max_parts = (int)t; }
    else if (!strcmp(o, "--gradient")) rc = real_opt(o, v, 0, 0.95, &a->p.gradient);
    else if (!strcmp(o, "--gradient-angle")) rc = real_opt(o, v, -3600, 3600, &a->p.gradient_angle);
    else if (!strcmp(o, "--vignette")) rc = real_opt(o, v, 0, 0.95, &a->p.vignette);
    else if (!strcmp(o, "--noise")) rc = real_opt(o, v, 0, 100, &a->p.noise);
    else if (!strcmp(o, "--blur")) rc = real_opt(o, v, 0, 5, &a->p.blur);
    else if (!strcmp(o, "--shadow")) rc = real_opt(o, v, 0, 1, &a->p.shadow);
    else if (!strcmp(o, "--overlap")) rc = real_opt(o, v, 0, 1, &a->p.p_overlap);
    else if (!strcmp(o, "--format")) a->wp.format = v;
    else if (!strcmp(o, "--quality")) { rc = count_opt(o, v, 100, &t); a->wp.quality = (int)t; }
    else if (!strcmp(o, "--threads")) { rc = count_opt(o, v, 1024, &t); a->wp.threads = (int)t; }
    else return -1;
    return rc;
}

/* Parses argv; 0 to go on, otherwise the exit code (help: 0 after printing). */
static int parse_args(int argc, char **argv, synth_args *a, int *exit_code) {
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) { synth_usage(stdout); *exit_code = 0; return 1; }
        if (!strcmp(o, "--quiet") || !strcmp(o, "-q")) { a->quiet = 1; continue; }
        if (!strcmp(o, "--no-antialias")) { a->p.antialias = false; continue; }
        if (!v) { *exit_code = cli_fail("synth", "option '%s' needs a value (see --help)", o) + 1; return 1; }
        int rc = value_opt(a, o, v);
        if (rc < 0) { *exit_code = cli_fail("synth", "unknown option '%s' (see --help)", o) + 1; return 1; }
        if (rc) { *exit_code = 2; return 1; }
        i++;
    }
    const char *why = !a->out ? "no output folder (-o DIR)"
                    : a->n >= 0 && (a->train >= 0 || a->val >= 0) ? "-n and --train/--val exclude each other"
                    : a->n < 0 && a->train < 0 && a->val < 0 ? "how many images? (--train N [--val M] or -n N)"
                    : NULL;
    if (why) { *exit_code = cli_fail("synth", "%s", why) + 1; return 1; }
    if (s2_synth_check(&a->p) < 0) { *exit_code = cli_fail_lib("synth") + 1; return 1; }
    return 0;
}

typedef struct progress_ctx { const char *what; bool tty; } progress_ctx;

/* "\rsynth train: 12/40" on a terminal; quarter marks for long runs otherwise. */
static void on_progress(void *user, int done, int total) {
    const progress_ctx *c = user;
    if (c->tty) fprintf(stderr, "\rsynth %s: %d/%d", c->what, done, total);
    else if (total >= 200 && done % (total / 4) == 0) fprintf(stderr, "synth %s: %d/%d\n", c->what, done, total);
}

/* Writes one set (dir, n images, file prefix) and reports it. */
static int write_split(synth_args *a, const char *dir, const char *what, long n) {
    progress_ctx pc = {what, isatty(2) != 0};
    s2_synth_write_params wp = a->wp;
    wp.prefix = what, wp.progress = a->quiet ? NULL : on_progress, wp.user = &pc;
    double t0 = s2_now_s();
    int rc = s2_synth_write_set(dir, &a->p, a->seed, (int)n, &wp);
    if (!a->quiet && pc.tty && n > 0) fputc('\n', stderr);
    if (rc < 0) return cli_fail_lib("synth");
    if (!a->quiet)
        fprintf(stderr, "synth %s: %ld images, %d objects, %dx%d, in %s (%.2f s)\n", what, n, rc,
                a->p.w, a->p.h, dir, s2_now_s() - t0);
    return 0;
}

// -n: one set in DIR; --train/--val: DIR/train and DIR/val (prefixes keep them apart).
int cli_synth(int argc, char **argv) {
    synth_args a = {.train = -1, .val = -1, .n = -1, .seed = 1};
    s2_synth_default(&a.p);
    s2_synth_write_default(&a.wp);
    int code = 0;
    if (parse_args(argc, argv, &a, &code)) return code;
    if (a.n >= 0) return write_split(&a, a.out, "synth", a.n);
    char dir[4096];
    const char *names[2] = {"train", "val"};
    long counts[2] = {a.train, a.val};
    for (int s = 0; s < 2; s++) {
        if (counts[s] <= 0) continue;
        if (snprintf(dir, sizeof dir, "%s/%s", a.out, names[s]) >= (int)sizeof dir)
            return cli_fail("synth", "output path too long");
        if (write_split(&a, dir, names[s], counts[s])) return 1;
    }
    return 0;
}
