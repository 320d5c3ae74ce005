/* `sam2c bench`: timings of the image encoder (set_image), one prompt decode and one
 * video tracking step (1 and 3 objects, full memory bank), with GFLOP/s of the encoder
 * from an analytic FLOP count, peak RSS, and with --profile where the time goes (per
 * module through the dump hook, per op kind through the oneDNN backend's counters). */
#include "backend/dnnl.h"
#include "cli/cli.h"
#include "model/image_encoder.h"
#include "model/memory.h"
#include "model/model.h"
#include "model/sam2_base.h"
#include "predict/image.h"
#include "predict/preprocess.h"
#include "tensor/tensor.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MAX_RUNS 1000
#define MAX_MODS 128

typedef struct bench_args {
    const char *model, *random, *dtype, *backend, *config;
    int size, threads, runs;
    bool json, profile, peak, no_track;
} bench_args;

typedef struct stat3 { double median, min, max; bool valid; } stat3;

// Usage text.
static void bench_usage(FILE *f) {
    fprintf(f, "usage: sam2c bench (-m MODEL | --random tiny|small|base+|large) [--size 1024]\n"
               "                   [--threads N] [--dtype f32|bf16] [--backend ref|dnnl|auto]\n"
               "                   [--runs 10] [--json] [--profile] [--peak] [--no-track]\n"
               "Times set_image, one multimask click decode and one tracking step (1 and 3\n"
               "objects, full memory bank): median, min, max of --runs runs after a warm-up.\n"
               "--profile: time per module and per op kind; --peak: oneDNN matmul peak.\n"
               "sam2c bench --track-frames N -m MODEL: RSS and frames/s of bounded-memory\n"
               "tracking over N streamed frames (--help there for its options).\n");
}

// Strict integer option in [lo, hi].
static int opt_int(const char *name, const char *v, int lo, int hi, int *out) {
    long x;
    if (!v || !cli_parse_int(v, &x) || x < lo || x > hi)
        return cli_fail("bench", "%s expects an integer in [%d, %d]", name, lo, hi);
    *out = (int)x;
    return 0;
}

// Parses argv into a (exit code on error, -1 after --help).
static int parse_args(int argc, char **argv, bench_args *a) {
    *a = (bench_args){.size = 0, .runs = 10};
    static const char *with_value[] = {"-m", "--model", "--config", "--random", "--dtype", "--backend",
                                       "--size", "--threads", "--runs"};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = NULL;
        int rc = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
            if (!strcmp(o, with_value[k])) {
                if (i + 1 >= argc) return cli_fail("bench", "%s needs a value", o);
                v = argv[++i];
            }
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) { bench_usage(stdout); return -1; }
        else if (!strcmp(o, "--json")) a->json = true;
        else if (!strcmp(o, "--profile")) a->profile = true;
        else if (!strcmp(o, "--peak")) a->peak = true;
        else if (!strcmp(o, "--no-track")) a->no_track = true;
        else if (!strcmp(o, "-m") || !strcmp(o, "--model")) a->model = v;
        else if (!strcmp(o, "--config")) a->config = v;
        else if (!strcmp(o, "--random")) a->random = v;
        else if (!strcmp(o, "--dtype")) a->dtype = v;
        else if (!strcmp(o, "--backend")) a->backend = v;
        else if (!strcmp(o, "--size")) rc = opt_int(o, v, 64, 8192, &a->size);
        else if (!strcmp(o, "--threads")) rc = opt_int(o, v, 1, 1024, &a->threads);
        else if (!strcmp(o, "--runs")) rc = opt_int(o, v, 1, MAX_RUNS, &a->runs);
        else { bench_usage(stderr); return cli_fail("bench", "unknown option '%s'", o); }
        if (rc) return rc;
    }
    if (!a->model == !a->random) { bench_usage(stderr); return cli_fail("bench", "give -m MODEL or --random ARCH"); }
    if (a->size && !a->random) return cli_fail("bench", "--size applies to --random models only");
    return 0;
}

/* ============================== statistics ============================== */

// qsort order of doubles.
static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Median, min and max of n samples (sorted in place).
static stat3 stats(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_dbl);
    double med = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    return (stat3){med, t[0], t[n - 1], true};
}

// Peak resident set size of the process so far (ru_maxrss).
static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* ============================== FLOP count ============================== */

/* Multiply-accumulates of the image encoder (forward_image, conv_s0/s1 included):
 * every Linear, Conv2d and attention product, windows padded as executed. */
static double encoder_macs(const s2_config *c) {
    s2_hiera_geom g;
    if (s2_hiera_geom_init(c, &g) < 0) return 0;
    const s2_hiera_cfg *h = &c->hiera;
    double macs = (double)g.h0 * g.w0 * h->embed_dim * 3 * h->patch_kernel * h->patch_kernel;
    int H = g.h0, W = g.w0;
    for (int i = 0; i < g.n_blocks; i++) {
        const s2_hiera_block *b = &g.blk[i];
        int ws = b->window_size, Ho = g.bh[i], Wo = g.bw[i];
        double N = (double)H * W, No = (double)Ho * Wo;
        double nW = ws ? (double)((H + ws - 1) / ws) * ((W + ws - 1) / ws) : 1;
        double T = ws ? (double)ws * ws : N, Tq = b->q_pool ? T / (g.qs * g.qs) : T;
        if (b->dim != b->dim_out) macs += N * b->dim * b->dim_out;        // shortcut proj
        macs += nW * T * b->dim * 3.0 * b->dim_out;                        // qkv
        macs += 2.0 * nW * Tq * T * b->dim_out;                            // q k^T, p v
        macs += nW * Tq * (double)b->dim_out * b->dim_out;                 // proj
        macs += 2.0 * No * b->dim_out * b->mlp_hidden;                     // mlp
        H = Ho, W = Wo;
    }
    for (int s = 0; s < g.n_stages; s++) macs += (double)g.lh[s] * g.lw[s] * g.lc[s] * c->d_model;
    if (c->use_high_res_features_in_sam)
        macs += (double)g.lh[0] * g.lw[0] * c->d_model * (c->d_model / 8) +
                (double)g.lh[1] * g.lw[1] * c->d_model * (c->d_model / 4);
    return macs;
}

/* ============================== module profile ============================== */

/* Time between consecutive dump calls, attributed to the tensor then produced. */
typedef struct mod_prof {
    double t_last;
    int n;
    char name[MAX_MODS][40];
    double sec[MAX_MODS];
} mod_prof;

// Dump hook: charges the time since the previous dump to this tensor's name.
static void prof_hook(void *user, const char *name, const float *d, int nd, const int64_t *sh) {
    mod_prof *p = user;
    double t = s2_now_s();
    int i = 0;
    while (i < p->n && strcmp(p->name[i], name)) i++;
    if (i == p->n && p->n < MAX_MODS) snprintf(p->name[p->n++], sizeof p->name[0], "%s", name);
    if (i < MAX_MODS) p->sec[i] += t - p->t_last;
    p->t_last = s2_now_s();
}

// Modules that took at least half a millisecond.
static void print_modules(FILE *f, const mod_prof *p, const char *what) {
    fprintf(f, "  per module (%s; time until each tensor is ready):\n", what);
    for (int i = 0; i < p->n; i++)
        if (p->sec[i] >= 0.0005) fprintf(f, "    %-28s %8.1f ms\n", p->name[i], p->sec[i] * 1e3);
}

// The backend's per-op-kind counters, and the rest as "other".
static void print_ops(FILE *f, const char *what, double total) {
    s2_op_stats st;
    s2_dnnl_profile_get(&st);
    double sum = 0;
    fprintf(f, "  per op kind (%s, oneDNN backend counters; all zero on the reference backend):\n", what);
    for (int k = 0; k < S2_OPK_COUNT; k++) {
        sum += st.seconds[k];
        fprintf(f, "    %-10s %8.1f ms %6lld calls %8.1f GFLOP %7.1f GFLOP/s\n", s2_op_kind_name((s2_op_kind)k),
               st.seconds[k] * 1e3, (long long)st.calls[k], st.flops[k] * 1e-9,
               st.seconds[k] > 0 ? st.flops[k] / st.seconds[k] * 1e-9 : 0.0);
    }
    fprintf(f, "    %-10s %8.1f ms (norms, GELU, layout, resize, ...)\n", "other", (total - sum) * 1e3);
}

/* ============================== the runs ============================== */

/* A deterministic S x S test picture (smooth gradients and a disc). */
static uint8_t *test_image(int S) {
    uint8_t *p = malloc((size_t)S * S * 3);
    if (!p) return NULL;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int dx = x - S / 2, dy = y - S / 2;
            bool in = (int64_t)dx * dx + (int64_t)dy * dy < (int64_t)S * S / 16;
            uint8_t *q = p + ((size_t)y * S + x) * 3;
            q[0] = (uint8_t)(in ? 220 : x * 255 / S);
            q[1] = (uint8_t)(in ? 40 : y * 255 / S);
            q[2] = (uint8_t)((x + y) * 127 / S);
        }
    return p;
}

// Runs set_image warm-up + n timed runs.
static int time_encode(sam2c_image_session *s, const uint8_t *img, int S, int n, double *t) {
    for (int r = -1; r < n; r++) {
        double t0 = s2_now_s();
        if (sam2c_image_set_rgb(s, img, S, S) < 0) return cli_fail_lib("bench");
        if (r >= 0) t[r] = s2_now_s() - t0;
    }
    return 0;
}

// Runs one multimask click decode: warm-up + n timed runs.
static int time_decode(sam2c_image_session *s, int S, int n, double *t) {
    float pt[2] = {S * 0.5f, S * 0.5f};
    int32_t lab[1] = {1};
    sam2c_prompt p = {.n_points = 1, .points = pt, .labels = lab, .multimask = 1};
    sam2c_masks out;
    for (int r = -1; r < n; r++) {
        double t0 = s2_now_s();
        if (sam2c_image_predict(s, &p, &out) < 0) return cli_fail_lib("bench");
        if (r >= 0) t[r] = s2_now_s() - t0;
    }
    return 0;
}

/* Video state for the tracking step: one frame's features and a full memory bank made
 * of the frame-0 output repeated (cond frame 0, non-cond frames 1..F-1). */
typedef struct track_bench {
    s2_arena arena;
    s2_ctx ctx;
    float *feat;
    s2_backbone_out bb;
    s2_frame_out fo;
    s2_frame_out **cond;     /* [F] &fo at frame 0, else NULL */
    s2_frame_out **non_cond; /* [F] &fo at frames 1..F-1 */
    s2_mem_bank bank;
    int F;
} track_bench;

// Frees what track_setup allocated (safe on a zeroed struct).
static void track_free(track_bench *tb) {
    s2_arena_free(&tb->arena);
    s2_aligned_free(tb->feat);
    free(tb->fo.maskmem);
    free(tb->fo.pred_masks);
    free(tb->fo.obj_ptr);
    free(tb->cond);
    free(tb->non_cond);
}

// Encodes the frame and runs the conditioning step that fills the bank.
static int track_setup(track_bench *tb, const sam2c_model *m, const s2_backend *be, const uint8_t *img) {
    const s2_config *c = &m->cfg;
    int S = c->image_size;
    memset(tb, 0, sizeof *tb);
    tb->F = S2_MAX(c->num_maskmem, c->max_obj_ptrs_in_encoder) + 1;
    if (s2_arena_init(&tb->arena, 0) < 0 || !(tb->feat = s2_aligned_alloc(s2_backbone_out_floats(c) * 4)))
        return cli_fail_lib("bench");
    tb->ctx = (s2_ctx){.be = be, .scratch = &tb->arena};
    s2_backbone_out_carve(c, tb->feat, &tb->bb);
    float *x = s2_scratch_f32(&tb->ctx, 3LL * S * S); // (3, S, S)
    s2_preprocess_image(x, img, S, S, S);
    if (s2_image_encoder_forward(&tb->ctx, m, x, &tb->bb) < 0) return cli_fail_lib("bench");
    s2_arena_reset(&tb->arena);
    float pt[2] = {S * 0.5f, S * 0.5f};
    int32_t lab[1] = {1};
    s2_track_in in = {.frame_idx = 0, .is_init_cond_frame = true, .bb = &tb->bb, .n_points = 1,
                      .point_coords = pt, .point_labels = lab, .num_frames = tb->F + 1, .run_mem_encoder = true};
    s2_track_out o;
    if (s2_track_step(&tb->ctx, m, &in, &o) < 0 || !o.maskmem) return cli_fail_lib("bench");
    int64_t nm = (int64_t)o.Cm * o.H * o.W, nl = (int64_t)o.LH * o.LW;
    tb->fo.maskmem = malloc((size_t)nm * 2);
    tb->fo.pred_masks = malloc((size_t)nl * 4);
    tb->fo.obj_ptr = malloc((size_t)o.C * 4);
    tb->cond = calloc((size_t)tb->F, sizeof *tb->cond);
    tb->non_cond = calloc((size_t)tb->F, sizeof *tb->non_cond);
    if (!tb->fo.maskmem || !tb->fo.pred_masks || !tb->fo.obj_ptr || !tb->cond || !tb->non_cond)
        return cli_fail("bench", "out of memory");
    for (int64_t i = 0; i < nm; i++) tb->fo.maskmem[i] = s2_f32_to_bf16(o.maskmem[i]);
    memcpy(tb->fo.pred_masks, o.pred_masks, (size_t)nl * 4);
    memcpy(tb->fo.obj_ptr, o.obj_ptr, (size_t)o.C * 4);
    tb->fo.object_score = o.object_score;
    for (int t = 1; t < tb->F; t++) tb->non_cond[t] = &tb->fo;
    tb->cond[0] = &tb->fo;
    tb->bank = (s2_mem_bank){tb->F, tb->cond, tb->non_cond};
    return 0;
}

// One tracking step per object on frame F (memory attention, heads, memory encoder).
static int track_once(track_bench *tb, const sam2c_model *m, int n_obj) {
    for (int k = 0; k < n_obj; k++) {
        s2_arena_reset(&tb->arena);
        s2_track_in in = {.frame_idx = tb->F, .bb = &tb->bb, .bank = &tb->bank, .num_frames = tb->F + 1,
                          .run_mem_encoder = true};
        s2_track_out o;
        if (s2_track_step(&tb->ctx, m, &in, &o) < 0) return cli_fail_lib("bench");
    }
    return 0;
}

// Warm-up + n timed tracking steps of n_obj objects.
static int time_track(track_bench *tb, const sam2c_model *m, int n_obj, int n, double *t) {
    for (int r = -1; r < n; r++) {
        double t0 = s2_now_s();
        if (track_once(tb, m, n_obj)) return 1;
        if (r >= 0) t[r] = s2_now_s() - t0;
    }
    return 0;
}

/* ============================== peak ============================== */

// GFLOP/s of a square M = K = N linear on the given backend (best of 3 after warm-up).
static double matmul_peak(const s2_backend *be, int n) {
    float *x = s2_aligned_alloc((size_t)n * n * 4), *w = s2_aligned_alloc((size_t)n * n * 4),
          *y = s2_aligned_alloc((size_t)n * n * 4);
    double best = 1e30;
    if (x && w && y) {
        for (int64_t i = 0; i < (int64_t)n * n; i++) x[i] = (float)(i % 7) * 0.1f, w[i] = (float)(i % 5) * 0.1f;
        s2_ctx c = {.be = be};
        for (int r = 0; r < 4; r++) {
            double t0 = s2_now_s();
            s2_op_linear(&c, y, x, w, NULL, n, n, n);
            if (r > 0 && s2_now_s() - t0 < best) best = s2_now_s() - t0;
        }
    }
    s2_aligned_free(x);
    s2_aligned_free(w);
    s2_aligned_free(y);
    return 2.0 * n * (double)n * n / best * 1e-9;
}

/* ============================== output ============================== */

// One "key":{median,min,max} (or null) member.
static void json_stat(const char *k, stat3 s, bool last) {
    if (s.valid) printf("\"%s\":{\"median\":%.6f,\"min\":%.6f,\"max\":%.6f}%s", k, s.median, s.min, s.max, last ? "" : ",");
    else printf("\"%s\":null%s", k, last ? "" : ",");
}

// One text line of a timing.
static void text_stat(const char *k, stat3 s, double scale, const char *unit) {
    if (s.valid) printf("%-22s median %9.3f %s  (min %.3f, max %.3f)\n", k, s.median * scale, unit, s.min * scale, s.max * scale);
    else printf("%-22s n/a\n", k);
}

/* ============================== command ============================== */

// Loads the model (or makes a random one, with the image size override).
static int bench_model(const bench_args *a, sam2c_model **m) {
    if (a->model) return cli_load_model("bench", a->model, a->config, m);
    if (sam2c_model_random(a->random, 0, m) < 0) return cli_fail_lib("bench");
    if (!a->size) return 0;
    s2_config *c = &(*m)->cfg;
    int old = c->image_size;
    c->image_size = a->size;
    c->ma_feat_sizes[0] = c->ma_feat_sizes[1] = a->size / c->backbone_stride;
    s2_hiera_geom g;
    if (a->size % 32 || s2_hiera_geom_init(c, &g) < 0) {
        int rc = cli_fail("bench", "--size %d does not fit the architecture (a multiple of 32 whose "
                          "windows line up, as %d does)%s%s", a->size, old, a->size % 32 ? "" : ": ",
                          a->size % 32 ? "" : sam2c_last_error());
        sam2c_model_free(*m);
        *m = NULL;
        return rc;
    }
    return 0;
}

/* What one bench run measured. */
typedef struct bench_res {
    stat3 enc, dec, tr1, tr3;
    double gflop;
} bench_res;

// Prints the results as one JSON object or as text.
static void print_results(const bench_args *a, const sam2c_model *m, const s2_backend *be,
                          const bench_res *r, const track_bench *tb, bool have_tb) {
    int S = m->cfg.image_size;
    if (a->json) {
        printf("{\"model\":\"%s\",\"backend\":\"%s\",\"dtype\":\"%s\",\"threads\":%d,\"size\":%d,",
               sam2c_model_name(m), be->name, strstr(be->name, "bf16") ? "bf16" : "f32", sam2c_get_num_threads(), S);
        json_stat("image_encode_s", r->enc, false);
        json_stat("prompt_decode_s", r->dec, false);
        json_stat("track_step_1obj_s", r->tr1, false);
        json_stat("track_step_3obj_s", r->tr3, false);
        printf("\"encoder_gflop\":%.3f,\"encoder_gflops_per_s\":%.2f,\"peak_rss_mb\":%.1f}\n", r->gflop,
               r->gflop / r->enc.median, peak_rss_mb());
        return;
    }
    printf("model %s (%s), image %d, backend %s, %d threads\n%s\n", sam2c_model_name(m),
           a->random ? "random weights" : a->model, S, be->name, sam2c_get_num_threads(), s2_dnnl_info());
    text_stat("image encode", r->enc, 1.0, "s ");
    printf("%-22s %.1f GFLOP -> %.1f GFLOP/s at the median\n", "  encoder FLOPs", r->gflop, r->gflop / r->enc.median);
    text_stat("prompt decode", r->dec, 1e3, "ms");
    text_stat("track step, 1 object", r->tr1, 1.0, "s ");
    text_stat("track step, 3 objects", r->tr3, 1.0, "s ");
    if (have_tb)
        printf("%-22s %d memory frames, %d pointers\n", "  memory bank", S2_MIN(tb->F, m->cfg.num_maskmem),
               S2_MIN(tb->F, m->cfg.max_obj_ptrs_in_encoder));
    printf("%-22s %.1f MB\n", "peak RSS", peak_rss_mb());
}

// --profile: one encode, one decode and one tracking step with the module and op timers.
static void run_profile(FILE *f, sam2c_image_session *s, const uint8_t *img, int S, track_bench *tb, bool have_tb,
                        const sam2c_model *m) {
    static mod_prof mp; // large; one profile at a time
    double t;
    s2_dnnl_profile_enable(true);
    for (int part = 0; part < 3; part++) {
        if (part == 2 && !have_tb) break;
        s2_dnnl_profile_reset();
        memset(&mp, 0, sizeof mp);
        if (part < 2) s2_image_session_set_dump(s, prof_hook, &mp);
        else tb->ctx.dump = prof_hook, tb->ctx.dump_user = &mp;
        double t0 = mp.t_last = s2_now_s();
        if (part == 0) sam2c_image_set_rgb(s, img, S, S);
        else if (part == 1) time_decode(s, S, 0, &t);
        else track_once(tb, m, 1);
        double tot = s2_now_s() - t0;
        if (part < 2) s2_image_session_set_dump(s, NULL, NULL);
        else tb->ctx.dump = NULL;
        static const char *what[3] = {"image encode", "prompt decode", "track step, 1 object"};
        fprintf(f, "profile of one %s (%.1f ms):\n", what[part], tot * 1e3);
        print_modules(f, &mp, what[part]);
        print_ops(f, what[part], tot);
    }
    s2_dnnl_profile_enable(false);
}

// --peak: large square oneDNN matmuls (the ceiling the encoder is compared with).
static void run_peak(FILE *f) {
    const s2_backend *bf = s2_backend_dnnl(S2_DNNL_BF16), *f32 = s2_backend_dnnl(S2_DNNL_F32);
    if (bf && f32)
        fprintf(f, "oneDNN matmul peak (4096^3): bf16 %.1f GFLOP/s, f32 %.1f GFLOP/s; flash attention ISA %d\n",
               matmul_peak(bf, 4096), matmul_peak(f32, 4096), s2_flash_attention_isa());
}

// Runs the timed parts into r (exit code on failure). The image session is freed before
// the tracking part (a video run holds no image session), so peak RSS is the larger of
// the two phases, not their sum; *s is NULL then.
static int run_timings(const bench_args *a, const sam2c_model *m, const s2_backend *be, sam2c_image_session **s,
                       const uint8_t *img, double *t, bench_res *r, track_bench *tb, bool *have_tb) {
    int S = m->cfg.image_size, n = a->runs, rc;
    if ((rc = time_encode(*s, img, S, n, t))) return rc;
    r->enc = stats(t, n);
    if ((rc = time_decode(*s, S, n, t))) return rc;
    r->dec = stats(t, n);
    if (a->no_track || m->cfg.num_maskmem <= 0) return 0;
    sam2c_image_session_free(*s);
    *s = NULL;
    *have_tb = true;
    if ((rc = track_setup(tb, m, be, img))) return rc;
    if ((rc = time_track(tb, m, 1, n, t))) return rc;
    r->tr1 = stats(t, n);
    if ((rc = time_track(tb, m, 3, n, t))) return rc;
    r->tr3 = stats(t, n);
    return 0;
}

int cli_bench(int argc, char **argv) {
    /* the bounded-memory tracking benchmark has its own options (bench_video.c) */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--track-frames")) return cli_bench_video(argc, argv);
    bench_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    if (a.threads) sam2c_set_num_threads(a.threads);
    const s2_backend *be;
    if (s2_backend_from_args(a.backend, a.dtype, &be) < 0) return cli_fail_lib("bench");
    sam2c_model *m = NULL;
    if ((rc = bench_model(&a, &m))) return rc;
    int S = m->cfg.image_size;
    double *t = malloc(sizeof(double) * (size_t)a.runs);
    uint8_t *img = test_image(S);
    sam2c_image_session *s = NULL;
    bench_res r = {.gflop = 2.0 * encoder_macs(&m->cfg) * 1e-9};
    track_bench tb;
    memset(&tb, 0, sizeof tb);
    bool have_tb = false;
    if (!t || !img || sam2c_image_session_create(m, &s) < 0) rc = cli_fail("bench", "setup failed: %s", sam2c_last_error());
    else {
        s2_image_session_set_backend(s, be);
        rc = run_timings(&a, m, be, &s, img, t, &r, &tb, &have_tb);
    }
    if (!rc) {
        print_results(&a, m, be, &r, &tb, have_tb);
        FILE *f = a.json ? stderr : stdout; // keep stdout one JSON object
        if (a.peak) run_peak(f);
        if (a.profile && !s && sam2c_image_session_create(m, &s) == 0) { // freed before tracking
            s2_image_session_set_backend(s, be);
            sam2c_image_set_rgb(s, img, S, S); // warm-up
        }
        if (a.profile && s) run_profile(f, s, img, S, &tb, have_tb, m);
    }
    if (have_tb) track_free(&tb);
    sam2c_image_session_free(s);
    sam2c_model_free(m);
    free(img);
    free(t);
    return rc;
}
