/* `sam2c bench --track-frames N`: memory and speed of tracking a long live stream.
 * Pushes N generated frames (a textured square moving over a textured background)
 * through the streaming API (sam2c_video_open_stream / push_frame / track_frame) with
 * the square clicked on frame 0, and prints the process's resident memory (VmRSS) and
 * its peak (VmHWM) at frames 100, 500, 1000, 2000, 5000, 10000, ... and the last one,
 * with what the session holds and the frames/s. --unbounded keeps every output (the
 * official state) to show the contrast. */
#include "cli/cli.h"
#include "core/s2.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vbench_args {
    const char *model, *config, *random;
    long frames, size, window, threads;
    int unbounded;
} vbench_args;

/* --help text. */
static void vbench_usage(FILE *f) {
    fprintf(f, "usage: sam2c bench --track-frames N (-m MODEL | --random ARCH) [--size S] [--window W]\n"
               "                   [--unbounded] [--threads T] [--config FILE]\n"
               "Pushes N generated S x S frames (default: the model input size) through the live-stream\n"
               "API, one object clicked on frame 0, and prints resident memory (VmRSS, peak VmHWM) at\n"
               "frames 100, 500, 1000, 2000, 5000, ... with frames/s. --unbounded keeps every output.\n");
}

/* A strict integer option in [lo, hi]. */
static int long_opt(const char *o, const char *v, long lo, long hi, long *out) {
    if (!cli_parse_int(v, out) || *out < lo || *out > hi)
        return cli_fail("bench", "%s expects an integer in [%ld, %ld], not '%s'", o, lo, hi, v);
    return 0;
}

/* Options; 1 = usage error (message printed), -1 = --help. */
static int parse_vargs(int argc, char **argv, vbench_args *a) {
    *a = (vbench_args){0};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) { vbench_usage(stdout); return -1; }
        if (!strcmp(o, "--unbounded")) { a->unbounded = 1; continue; }
        if (!v) return cli_fail("bench", "option '%s' needs a value", o);
        if (!strcmp(o, "-m") || !strcmp(o, "--model")) a->model = v;
        else if (!strcmp(o, "--config")) a->config = v;
        else if (!strcmp(o, "--random")) a->random = v;
        else if (!strcmp(o, "--track-frames")) rc = long_opt(o, v, 1, 100000000, &a->frames);
        else if (!strcmp(o, "--size")) rc = long_opt(o, v, 16, 8192, &a->size);
        else if (!strcmp(o, "--window")) rc = long_opt(o, v, 1, 100000, &a->window);
        else if (!strcmp(o, "--threads")) rc = long_opt(o, v, 0, 1024, &a->threads);
        else return cli_fail("bench", "unknown option '%s' with --track-frames (see --track-frames --help)", o);
        if (rc) return 1;
        i++;
    }
    if (!a->frames) return cli_fail("bench", "--track-frames N is required here");
    if (!a->model == !a->random) return cli_fail("bench", "give -m MODEL or --random ARCH");
    return 0;
}

/* VmRSS and VmHWM of this process in MiB (0 where /proc is missing). */
static void rss_mib(double *rss, double *peak) {
    *rss = *peak = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    long kb;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) *rss = kb / 1024.0;
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) *peak = kb / 1024.0;
    }
    fclose(f);
}

/* A small integer hash (deterministic texture). */
static uint32_t hash2(uint32_t x, uint32_t y) {
    uint32_t h = x * 374761393u + y * 668265263u;
    h = (h ^ (h >> 13)) * 1274126177u;
    return h ^ (h >> 16);
}

/* Top-left corner of the square on frame t: bouncing diagonally inside the frame. */
static void square_at(long t, int S, int side, int *x, int *y) {
    const int range = S - side;
    long px = (t * 3) % (2 * range), py = (t * 2 + range / 3) % (2 * range);
    *x = (int)(px < range ? px : 2 * range - px);
    *y = (int)(py < range ? py : 2 * range - py);
}

/* Frame t (S, S, 3): a noisy grey-blue gradient and an orange striped square. */
static void make_frame(uint8_t *rgb, long t, int S) {
    const int side = S / 4;
    int sx, sy;
    square_at(t, S, side, &sx, &sy);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            uint8_t *p = rgb + ((size_t)y * S + x) * 3;
            int n = (int)(hash2((uint32_t)x / 4, (uint32_t)y / 4) & 31);
            if (x >= sx && x < sx + side && y >= sy && y < sy + side) {
                int stripe = ((x - sx + y - sy) / 6) & 1;
                p[0] = (uint8_t)(stripe ? 235 : 190);
                p[1] = (uint8_t)(stripe ? 120 : 70);
                p[2] = (uint8_t)(20 + n);
            } else {
                p[0] = (uint8_t)(40 + n + x * 60 / S);
                p[1] = (uint8_t)(60 + n + y * 60 / S);
                p[2] = (uint8_t)(110 + n);
            }
        }
}

/* True at the frames a line is printed for: 100, 500, 1000, 2000, 5000, 10000, ... */
static bool checkpoint(long n) {
    for (long d = 100; d > 0 && d <= n; d *= 10)
        if (n == d || n == 5 * d || n == 10 * d || n == 20 * d) return true;
    return false;
}

/* One line of the table: memory now, what the session holds, rates. */
static void report(const sam2c_video *v, long n, double t0, double t_last, long n_last) {
    double rss, peak, now = s2_now_s();
    int frames = 0, outputs = 0;
    size_t bytes = 0;
    rss_mib(&rss, &peak);
    sam2c_video_resident(v, &frames, &outputs, &bytes);
    printf("%9ld %9.1f %9.1f %8d %8d %10.2f %10.2f %10.2f\n", n, rss, peak, frames, outputs, bytes / 1048576.0,
           n / (now - t0 > 1e-9 ? now - t0 : 1e-9), (n - n_last) / (now - t_last > 1e-9 ? now - t_last : 1e-9));
    fflush(stdout);
}

/* The stream: frame 0 clicked at the square's centre, every frame tracked as pushed. */
static int run_stream(const vbench_args *a, const sam2c_model *m, int S) {
    sam2c_video_params p = sam2c_video_default_params();
    p.keep_all_outputs = a->unbounded;
    p.window = (int)a->window;
    sam2c_video *v = NULL;
    uint8_t *rgb = s2_malloc((size_t)S * S * 3);
    if (!rgb || sam2c_video_create(m, &p, &v) < 0 || sam2c_video_open_stream(v, S, S) < 0) {
        free(rgb);
        sam2c_video_free(v);
        return cli_fail_lib("bench");
    }
    double rss0, peak0;
    rss_mib(&rss0, &peak0);
    printf("model %s, %dx%d frames, 1 object, %s, RSS before the first frame %.1f MiB\n", sam2c_model_name(m), S, S,
           a->unbounded ? "every output kept (--unbounded)" : "bounded memory", rss0);
    printf("%9s %9s %9s %8s %8s %10s %10s %10s\n", "frames", "RSS MiB", "peak MiB", "held fr", "outputs", "out MiB",
           "frames/s", "recent f/s");
    const double t0 = s2_now_s();
    double t_last = t0;
    long n_last = 0;
    int rc = 0;
    for (long t = 0; t < a->frames && rc == 0; t++) {
        int idx = 0;
        make_frame(rgb, t, S);
        rc = sam2c_video_push_frame(v, rgb, S, S, &idx);
        if (rc == 0 && t == 0) {
            int sx, sy;
            square_at(0, S, S / 4, &sx, &sy);
            const float pt[2] = {(float)(sx + S / 8), (float)(sy + S / 8)};
            const int32_t lab[1] = {1};
            rc = sam2c_video_add_points(v, 0, 1, 1, pt, lab, NULL, 0, NULL);
        }
        if (rc == 0) rc = sam2c_video_track_frame(v, idx, NULL);
        if (rc == 0 && (checkpoint(t + 1) || t + 1 == a->frames)) {
            report(v, t + 1, t0, t_last, n_last);
            t_last = s2_now_s();
            n_last = t + 1;
        }
    }
    if (rc < 0) cli_fail_lib("bench");
    free(rgb);
    sam2c_video_free(v);
    return rc < 0 ? 1 : 0;
}

int cli_bench_video(int argc, char **argv) {
    vbench_args a;
    int prc = parse_vargs(argc, argv, &a);
    if (prc) return prc < 0 ? 0 : 2;
    if (a.threads) sam2c_set_num_threads((int)a.threads);
    sam2c_model *m = NULL;
    if (a.model && cli_load_model("bench", a.model, a.config, &m)) return 1;
    if (a.random && sam2c_model_random(a.random, 0, &m) < 0) return cli_fail_lib("bench");
    const int S = a.size ? (int)a.size : sam2c_model_image_size(m);
    int rc = run_stream(&a, m, S);
    sam2c_model_free(m);
    return rc;
}
