/* `sam2c auto`: automatic mask generation ("segment everything") on one image, with every
 * setting of the official SAM2AutomaticMaskGenerator as a flag of the same name. */
#include "cli/cli.h"
#include "cli/output.h"
#include "core/s2.h"
#include "io/image.h"
#include "io/json.h"
#include "io/rle.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_auto(int argc, char **argv);

typedef struct {
    const char *model, *config, *image, *outdir;
    int overlay, no_exif, threads, quiet;
    sam2c_amg_params p;
} auto_args;

static void auto_usage(FILE *f) {
    sam2c_amg_params d = sam2c_amg_default_params();
    fprintf(f,
            "usage: sam2c auto -m MODEL [--config FILE] -i IMAGE -o OUTDIR [--overlay] [options]\n"
            "Segments everything: a grid of point prompts, filtered and de-duplicated as the official\n"
            "SAM2AutomaticMaskGenerator. Writes OUTDIR/masks.json (the generator's records, COCO RLE)\n"
            "and with --overlay OUTDIR/overlay.png.\n"
            "options (official defaults):\n"
            "  --points-per-side N                 %d\n"
            "  --points-per-batch N                %d\n"
            "  --pred-iou-thresh X                 %g\n"
            "  --stability-score-thresh X          %g\n"
            "  --stability-score-offset X          %g\n"
            "  --mask-threshold X                  %g\n"
            "  --box-nms-thresh X                  %g\n"
            "  --crop-n-layers N                   %d\n"
            "  --crop-nms-thresh X                 %g\n"
            "  --crop-overlap-ratio X              512/1500\n"
            "  --crop-n-points-downscale-factor N  %d\n"
            "  --min-mask-region-area N            %d\n"
            "  --use-m2m [true|false]              false\n"
            "  --multimask-output true|false       true\n"
            "  --no-exif        use the pixels as stored (the official code ignores EXIF)\n"
            "  --threads N      compute threads (0 = all cores)\n"
            "  --quiet          no progress on stderr\n",
            d.points_per_side, d.points_per_batch, d.pred_iou_thresh, d.stability_score_thresh,
            d.stability_score_offset, d.mask_threshold, d.box_nms_thresh, d.crop_n_layers,
            d.crop_nms_thresh, d.crop_n_points_downscale_factor, d.min_mask_region_area);
}

/* "true"/"false" (also 1/0). */
static bool parse_bool(const char *s, int *out) {
    if (!strcmp(s, "true") || !strcmp(s, "1")) return *out = 1, true;
    if (!strcmp(s, "false") || !strcmp(s, "0")) return *out = 0, true;
    return false;
}

/* Integer flag within [lo, hi]. */
static int int_flag(const char *o, const char *v, long lo, long hi, int *out) {
    long t;
    if (!cli_parse_int(v, &t) || t < lo || t > hi)
        return cli_fail("auto", "bad %s '%s' (an integer in [%ld, %ld])", o, v, lo, hi);
    *out = (int)t;
    return 0;
}

/* Number flag; "A/B" accepted (e.g. 512/1500). */
static int num_flag(const char *o, const char *v, double *out) {
    double a[1], b[1];
    int n;
    const char *slash = strchr(v, '/');
    if (slash) {
        char num[64];
        size_t len = (size_t)(slash - v);
        if (len >= sizeof num) return cli_fail("auto", "bad %s '%s' (a number)", o, v);
        memcpy(num, v, len);
        num[len] = 0;
        if (cli_parse_floats(num, a, 1, 1, &n) && cli_parse_floats(slash + 1, b, 1, 1, &n) && b[0] != 0) {
            *out = a[0] / b[0];
            return 0;
        }
        return cli_fail("auto", "bad %s '%s' (a number)", o, v);
    }
    if (!cli_parse_floats(v, a, 1, 1, &n)) return cli_fail("auto", "bad %s '%s' (a number)", o, v);
    *out = a[0];
    return 0;
}

/* Options that take a value; returns 0, 1 (error printed) or -1 (not one of them). */
static int value_flag(auto_args *a, const char *o, const char *v) {
    sam2c_amg_params *p = &a->p;
    if (!strcmp(o, "-m") || !strcmp(o, "--model")) a->model = v;
    else if (!strcmp(o, "--config")) a->config = v;
    else if (!strcmp(o, "-i") || !strcmp(o, "--image")) a->image = v;
    else if (!strcmp(o, "-o") || !strcmp(o, "--out")) a->outdir = v;
    else if (!strcmp(o, "--threads")) return int_flag(o, v, 0, 1024, &a->threads);
    else if (!strcmp(o, "--points-per-side")) return int_flag(o, v, 1, 1024, &p->points_per_side);
    else if (!strcmp(o, "--points-per-batch")) return int_flag(o, v, 1, 1024, &p->points_per_batch);
    else if (!strcmp(o, "--pred-iou-thresh")) return num_flag(o, v, &p->pred_iou_thresh);
    else if (!strcmp(o, "--stability-score-thresh")) return num_flag(o, v, &p->stability_score_thresh);
    else if (!strcmp(o, "--stability-score-offset")) return num_flag(o, v, &p->stability_score_offset);
    else if (!strcmp(o, "--mask-threshold")) return num_flag(o, v, &p->mask_threshold);
    else if (!strcmp(o, "--box-nms-thresh")) return num_flag(o, v, &p->box_nms_thresh);
    else if (!strcmp(o, "--crop-n-layers")) return int_flag(o, v, 0, 6, &p->crop_n_layers);
    else if (!strcmp(o, "--crop-nms-thresh")) return num_flag(o, v, &p->crop_nms_thresh);
    else if (!strcmp(o, "--crop-overlap-ratio")) return num_flag(o, v, &p->crop_overlap_ratio);
    else if (!strcmp(o, "--crop-n-points-downscale-factor"))
        return int_flag(o, v, 1, 1024, &p->crop_n_points_downscale_factor);
    else if (!strcmp(o, "--min-mask-region-area")) return int_flag(o, v, 0, 1 << 30, &p->min_mask_region_area);
    else if (!strcmp(o, "--multimask-output")) {
        if (!parse_bool(v, &p->multimask_output))
            return cli_fail("auto", "bad --multimask-output '%s' (true or false)", v);
    } else return -1;
    return 0;
}

static int parse_args(int argc, char **argv, auto_args *a) {
    memset(a, 0, sizeof *a);
    a->p = sam2c_amg_default_params();
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) { auto_usage(stdout); exit(0); }
        else if (!strcmp(o, "--overlay")) a->overlay = 1;
        else if (!strcmp(o, "--no-exif")) a->no_exif = 1;
        else if (!strcmp(o, "--quiet")) a->quiet = 1;
        else if (!strcmp(o, "--use-m2m")) { /* a switch, or followed by true / false */
            a->p.use_m2m = 1;
            if (v && parse_bool(v, &a->p.use_m2m)) i++;
        } else {
            if (!v || (v[0] == '-' && v[1] == '-'))
                return o[0] == '-' ? cli_fail("auto", "option '%s' needs a value (see --help)", o)
                                   : cli_fail("auto", "unexpected argument '%s' (see --help)", o);
            int r = value_flag(a, o, v);
            if (r > 0) return 1;
            if (r < 0) return cli_fail("auto", "unknown option '%s' (see --help)", o);
            i++;
        }
    }
    if (!a->model) return cli_fail("auto", "no model given (-m MODEL)");
    if (!a->image) return cli_fail("auto", "no image given (-i IMAGE)");
    if (!a->outdir) return cli_fail("auto", "no output folder given (-o OUTDIR)");
    return 0;
}

/* Progress line on stderr, rewritten in place. */
static int show_progress(void *user, int done, int total) {
    (void)user;
    fprintf(stderr, "\rsam2c auto: %d / %d points", done, total);
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
    return 0;
}

/* One record of the official generator's list (output_mode "coco_rle"). */
static int write_record(s2_jw *w, const sam2c_amg_mask *r) {
    s2_rle rle = {.h = r->height, .w = r->width, .counts = (uint32_t *)r->counts, .n = r->n_counts};
    char *counts = s2_rle_to_string(&rle);
    if (!counts) return SAM2C_ERR_NOMEM;
    s2_jw_obj_begin(w);
    s2_jw_key(w, "segmentation");
    s2_jw_obj_begin(w);
    s2_jw_key(w, "size");
    s2_jw_arr_begin(w); s2_jw_int(w, r->height); s2_jw_int(w, r->width); s2_jw_arr_end(w);
    s2_jw_key(w, "counts"); s2_jw_str(w, counts);
    s2_jw_obj_end(w);
    s2_jw_key(w, "area"); s2_jw_int(w, r->area);
    s2_jw_key(w, "bbox");
    s2_jw_arr_begin(w);
    for (int k = 0; k < 4; k++) s2_jw_num(w, r->bbox[k]);
    s2_jw_arr_end(w);
    s2_jw_key(w, "predicted_iou"); s2_jw_num(w, r->predicted_iou);
    s2_jw_key(w, "point_coords");
    s2_jw_arr_begin(w); s2_jw_arr_begin(w);
    s2_jw_num(w, r->point_coords[0]); s2_jw_num(w, r->point_coords[1]);
    s2_jw_arr_end(w); s2_jw_arr_end(w);
    s2_jw_key(w, "stability_score"); s2_jw_num(w, r->stability_score);
    s2_jw_key(w, "crop_box");
    s2_jw_arr_begin(w);
    for (int k = 0; k < 4; k++) s2_jw_num(w, r->crop_box[k]);
    s2_jw_arr_end(w);
    s2_jw_obj_end(w);
    free(counts);
    return SAM2C_OK;
}

/* overlay.png: every mask in its own colour over the image. */
static int write_overlay(const char *path, const sam2c_amg_result *res, const s2_image *im) {
    int n = res->n_masks, rc = SAM2C_OK;
    int64_t hw = (int64_t)im->w * im->h;
    uint8_t **bin = calloc((size_t)(n ? n : 1), sizeof *bin);
    if (!bin) return s2_err(SAM2C_ERR_NOMEM, "out of memory");
    for (int k = 0; k < n && rc == SAM2C_OK; k++) {
        if (!(bin[k] = malloc((size_t)hw))) rc = s2_err(SAM2C_ERR_NOMEM, "out of memory");
        else rc = sam2c_amg_mask_decode(&res->masks[k], bin[k]);
    }
    if (rc == SAM2C_OK) rc = cli_write_overlay(path, im->px, im->w, im->h, (const uint8_t *const *)bin, n);
    for (int k = 0; k < n; k++) free(bin[k]);
    free(bin);
    return rc;
}

/* masks.json (+ overlay.png); files appear complete or not at all. */
static int write_outputs(const auto_args *a, const sam2c_amg_result *res, const s2_image *im) {
    S2_CHECK(cli_mkdir_p(a->outdir));
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_arr_begin(&w);
    int rc = SAM2C_OK;
    for (int k = 0; k < res->n_masks && rc == SAM2C_OK; k++) rc = write_record(&w, &res->masks[k]);
    s2_jw_arr_end(&w);
    char path[4200];
    snprintf(path, sizeof path, "%s/masks.json", a->outdir);
    if (rc == SAM2C_OK)
        rc = w.failed ? s2_err(SAM2C_ERR_NOMEM, "out of memory") : s2_write_file_atomic(path, w.buf, w.len);
    s2_jw_free(&w);
    snprintf(path, sizeof path, "%s/overlay.png", a->outdir);
    if (rc == SAM2C_OK && a->overlay) rc = write_overlay(path, res, im);
    return rc;
}

int cli_auto(int argc, char **argv) {
    auto_args a;
    if (parse_args(argc, argv, &a)) return 1;
    if (a.threads) sam2c_set_num_threads(a.threads);
    if (!a.quiet) a.p.progress = show_progress;
    sam2c_model *m = NULL;
    double t_start = s2_now_s();
    if (cli_load_model("auto", a.model, a.config, &m)) return 1;
    double load_s = s2_now_s() - t_start;
    sam2c_amg *g = NULL;
    s2_image im = {0};
    s2_image_opts io;
    s2_image_opts_default(&io);
    io.apply_exif = !a.no_exif;
    sam2c_amg_result res = {0};
    double t0 = s2_now_s();
    int rc = sam2c_amg_create(m, &a.p, &g);
    if (rc == 0) rc = s2_image_load(a.image, &io, &im);
    if (rc == 0) rc = sam2c_amg_generate(g, im.px, im.w, im.h, &res);
    if (rc == 0) rc = write_outputs(&a, &res, &im);
    if (rc == 0)
        rc = cli_write_run_info("auto", m, a.model, argc, argv, a.outdir, t_start, load_s, 1, 0, a.threads);
    int exit_code = 0;
    if (rc < 0) exit_code = cli_fail_lib("auto");
    else
        printf("%d mask(s) for %s (%d x %d) in %.2f s written to %s\n", res.n_masks, a.image, im.w, im.h,
               s2_now_s() - t0, a.outdir);
    s2_image_free(&im);
    sam2c_amg_free(g);
    sam2c_model_free(m);
    return exit_code;
}
