/* `sam2c segment`: click points or draw boxes on an image, get masks. */
#include "cli/cli.h"
#include "cli/dump.h"
#include "cli/output.h"
#include "io/image.h"
#include "io/tensorfile.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "predict/image.h"
#include "backend/dnnl.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROMPTS 256

typedef struct {
    const char *model, *config, *image, *outdir, *mask_in, *dump, *backend, *dtype;
    float points[MAX_PROMPTS * 2];
    int32_t labels[MAX_PROMPTS];
    int n_points;
    float boxes[MAX_PROMPTS * 4];
    int n_boxes;
    int multimask, overlay, no_exif, threads;
    long max_pixels;
} seg_args;

static void seg_usage(FILE *f) {
    fprintf(f, "usage: sam2c segment -m MODEL -i IMAGE [--point X,Y[,LABEL]]... [--box X0,Y0,X1,Y1]...\n"
               "                     [--mask-in FILE] [--multimask] -o OUTDIR [--overlay]\n"
               "                     [--dump FILE.safetensors] [--config FILE] [--no-exif]\n"
               "                     [--threads N] [--max-pixels N] [--backend ref|dnnl|auto] [--dtype f32|bf16]\n"
               "Coordinates are pixels of the (upright) image; LABEL 1 = positive (default), 0 = negative.\n"
               "Writes OUTDIR/masks.json (COCO RLE), OUTDIR/mask_N.png and with --overlay OUTDIR/overlay.png.\n");
}

static int parse_point(seg_args *a, const char *s) {
    double v[3];
    int n;
    if (a->n_points == MAX_PROMPTS) return cli_fail("segment", "too many points (limit %d)", MAX_PROMPTS);
    if (!cli_parse_floats(s, v, 2, 3, &n) || (n == 3 && v[2] != 0 && v[2] != 1))
        return cli_fail("segment", "bad --point '%s' (expected X,Y or X,Y,LABEL with LABEL 0 or 1)", s);
    a->points[2 * a->n_points] = (float)v[0];
    a->points[2 * a->n_points + 1] = (float)v[1];
    a->labels[a->n_points++] = n == 3 ? (int32_t)v[2] : 1;
    return 0;
}

static int parse_box(seg_args *a, const char *s) {
    double v[4];
    int n;
    if (a->n_boxes == MAX_PROMPTS) return cli_fail("segment", "too many boxes (limit %d)", MAX_PROMPTS);
    if (!cli_parse_floats(s, v, 4, 4, &n)) return cli_fail("segment", "bad --box '%s' (expected X0,Y0,X1,Y1)", s);
    for (int i = 0; i < 4; i++) a->boxes[4 * a->n_boxes + i] = (float)v[i];
    a->n_boxes++;
    return 0;
}

static int parse_args(int argc, char **argv, seg_args *a) {
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int used = 1;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) { seg_usage(stdout); exit(0); }
        else if (!strcmp(o, "--multimask")) { a->multimask = 1; used = 0; }
        else if (!strcmp(o, "--overlay")) { a->overlay = 1; used = 0; }
        else if (!strcmp(o, "--no-exif")) { a->no_exif = 1; used = 0; }
        else if (!v) return cli_fail("segment", "option '%s' needs a value (see --help)", o);
        else if (!strcmp(o, "-m") || !strcmp(o, "--model")) a->model = v;
        else if (!strcmp(o, "--config")) a->config = v;
        else if (!strcmp(o, "-i") || !strcmp(o, "--image")) a->image = v;
        else if (!strcmp(o, "-o") || !strcmp(o, "--out")) a->outdir = v;
        else if (!strcmp(o, "--mask-in")) a->mask_in = v;
        else if (!strcmp(o, "--dump")) a->dump = v;
        else if (!strcmp(o, "--point")) { if (parse_point(a, v)) return 1; }
        else if (!strcmp(o, "--box")) { if (parse_box(a, v)) return 1; }
        else if (!strcmp(o, "--threads")) { long t; if (!cli_parse_int(v, &t) || t < 0 || t > 1024) return cli_fail("segment", "bad --threads '%s'", v); a->threads = (int)t; }
        else if (!strcmp(o, "--max-pixels")) { if (!cli_parse_int(v, &a->max_pixels) || a->max_pixels <= 0) return cli_fail("segment", "bad --max-pixels '%s'", v); }
        else if (!strcmp(o, "--dtype")) a->dtype = v;
        else if (!strcmp(o, "--backend")) a->backend = v;
        else return cli_fail("segment", "unknown option '%s' (see --help)", o);
        i += used;
    }
    if (!a->model) return cli_fail("segment", "no model given (-m MODEL)");
    if (!a->image) return cli_fail("segment", "no image given (-i IMAGE)");
    if (!a->outdir) return cli_fail("segment", "no output folder given (-o OUTDIR)");
    if (!a->n_points && !a->n_boxes && !a->mask_in)
        return cli_fail("segment", "no prompt: give --point, --box or --mask-in");
    return 0;
}

/* Low-res logits from a previous --dump (best mask by predicted IoU) or a PNG mask
 * (resized to the low-res grid, binarised, mapped to +-10 logits). */
static int load_mask_in(const char *path, int side, float **out) {
    *out = malloc((size_t)side * side * sizeof(float));
    if (!*out) return s2_err(SAM2C_ERR_NOMEM, "out of memory");
    size_t n = strlen(path);
    if (n > 12 && !strcmp(path + n - 12, ".safetensors")) {
        s2_tensorfile *f = NULL;
        S2_CHECK(s2_tensorfile_open(path, &f));
        const s2_tf_entry *e = s2_tensorfile_find(f, "output.low_res_masks");
        const s2_tf_entry *iou = s2_tensorfile_find(f, "output.iou_predictions");
        int rc = SAM2C_OK;
        if (!e || e->t.dtype != S2_F32 || e->t.ndim < 2 || e->t.shape[e->t.ndim - 1] != side ||
            e->t.shape[e->t.ndim - 2] != side)
            rc = s2_err(SAM2C_ERR_SHAPE, "%s: no F32 'output.low_res_masks' of %d x %d masks", path, side, side);
        else {
            int64_t k = s2_tensor_numel(&e->t) / ((int64_t)side * side), best = 0;
            if (iou && iou->t.dtype == S2_F32 && s2_tensor_numel(&iou->t) == k)
                for (int64_t i = 1; i < k; i++)
                    if (((float *)iou->t.data)[i] > ((float *)iou->t.data)[best]) best = i;
            memcpy(*out, (float *)e->t.data + best * side * side, (size_t)side * side * sizeof(float));
        }
        s2_tensorfile_free(f);
        return rc;
    }
    uint8_t *px = NULL;
    int w, h;
    S2_CHECK(s2_png_load_gray(path, &px, &w, &h));
    float *f = malloc((size_t)w * h * sizeof(float));
    if (!f) { free(px); return s2_err(SAM2C_ERR_NOMEM, "out of memory"); }
    for (int64_t i = 0; i < (int64_t)w * h; i++) f[i] = px[i] > 127 ? 1.0f : 0.0f;
    s2_ref_interp_bilinear(*out, f, 1, h, w, side, side, false, true);
    for (int64_t i = 0; i < (int64_t)side * side; i++) (*out)[i] = (*out)[i] >= 0.5f ? 10.0f : -10.0f;
    free(px);
    free(f);
    return SAM2C_OK;
}

/* masks.json, mask_N.png, overlay.png; files appear complete or not at all. */
static int write_outputs(const seg_args *a, const sam2c_masks *r, const s2_image *im) {
    S2_CHECK(cli_mkdir_p(a->outdir));
    int n = r->n_prompts * r->n_masks;
    int64_t hw = (int64_t)r->width * r->height;
    uint8_t **bin = calloc((size_t)n, sizeof *bin);
    if (!bin) return s2_err(SAM2C_ERR_NOMEM, "out of memory");
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "width"); s2_jw_int(&w, r->width);
    s2_jw_key(&w, "height"); s2_jw_int(&w, r->height);
    s2_jw_key(&w, "masks");
    s2_jw_arr_begin(&w);
    int rc = SAM2C_OK;
    char path[4200];
    for (int k = 0; k < n && rc == SAM2C_OK; k++) {
        if (!(bin[k] = malloc((size_t)hw))) { rc = s2_err(SAM2C_ERR_NOMEM, "out of memory"); break; }
        for (int64_t i = 0; i < hw; i++) bin[k][i] = r->masks[k * hw + i] > 0.0f ? 255 : 0;
        rc = cli_mask_record(&w, bin[k], r->height, r->width, r->iou[k], r->object_score[k / r->n_masks]);
        snprintf(path, sizeof path, "%s/mask_%d.png", a->outdir, k);
        if (rc == SAM2C_OK) rc = s2_png_write(path, bin[k], r->width, r->height, 1);
    }
    s2_jw_arr_end(&w);
    s2_jw_obj_end(&w);
    snprintf(path, sizeof path, "%s/masks.json", a->outdir);
    if (rc == SAM2C_OK) rc = w.failed ? s2_err(SAM2C_ERR_NOMEM, "out of memory") : s2_write_file_atomic(path, w.buf, w.len);
    snprintf(path, sizeof path, "%s/overlay.png", a->outdir);
    if (rc == SAM2C_OK && a->overlay)
        rc = cli_write_overlay(path, im->px, im->w, im->h, (const uint8_t *const *)bin, n);
    for (int k = 0; k < n; k++) free(bin[k]);
    free(bin);
    s2_jw_free(&w);
    return rc;
}

int cli_segment(int argc, char **argv) {
    seg_args a;
    double t0 = s2_now_s();
    if (parse_args(argc, argv, &a)) return 1;
    if (a.threads) sam2c_set_num_threads(a.threads);
    sam2c_model *m = NULL;
    if (cli_load_model("segment", a.model, a.config, &m)) return 1;
    double load_s = s2_now_s() - t0, t_img = s2_now_s();
    sam2c_image_session *s = NULL;
    cli_dump *dump = a.dump ? cli_dump_new() : NULL;
    s2_image im = {0};
    float *mask_in = NULL;
    int side = 4 * s2_cfg_feat_side(&m->cfg), rc;
    s2_image_opts io;
    s2_image_opts_default(&io);
    io.apply_exif = !a.no_exif;
    if (a.max_pixels) io.max_pixels = a.max_pixels;
    rc = s2_image_load(a.image, &io, &im);
    if (rc == 0) rc = sam2c_image_session_create(m, &s);
    if (rc == 0 && a.max_pixels) sam2c_image_set_max_pixels(s, a.max_pixels);
    if (rc == 0 && dump) s2_image_session_set_dump(s, cli_dump_add, dump);
    /* --dump compares with the official f32 tensors: f32 unless a dtype is given. */
    const s2_backend *be = NULL;
    if (rc == 0) rc = s2_backend_from_args(a.backend, a.dtype ? a.dtype : "f32", &be);
    if (rc == 0) s2_image_session_set_backend(s, be);
    if (rc == 0 && a.mask_in) rc = load_mask_in(a.mask_in, side, &mask_in);
    if (rc == 0) rc = sam2c_image_set_rgb(s, im.px, im.w, im.h);
    sam2c_masks r;
    if (rc == 0) {
        sam2c_prompt p = {.n_points = a.n_points, .points = a.points, .labels = a.labels,
                          .n_boxes = a.n_boxes, .boxes = a.boxes, .mask_input = mask_in,
                          .mask_input_h = side, .mask_input_w = side, .multimask = a.multimask,
                          .return_logits = 1};
        rc = sam2c_image_predict(s, &p, &r);
    }
    double image_s = s2_now_s() - t_img;
    if (rc == 0) rc = write_outputs(&a, &r, &im);
    if (rc == 0)
        rc = cli_write_run_info("segment", m, a.model, argc, argv, a.outdir, t0, load_s, 1, 0, a.threads);
    (void)image_s;
    if (rc == 0 && dump) rc = cli_dump_write(dump, a.dump);
    int exit_code = 0;
    if (rc < 0) exit_code = cli_fail_lib("segment");
    else
        printf("%d mask(s) for %s (%d x %d) written to %s\n", r.n_prompts * r.n_masks, a.image, im.w, im.h,
               a.outdir);
    free(mask_in);
    s2_image_free(&im);
    cli_dump_free(dump);
    sam2c_image_session_free(s);
    sam2c_model_free(m);
    return exit_code;
}
