/* `sam2c eval`: scores masks against ground truth with the field's standard numbers —
 * per-mask IoU / boundary F (images), COCO mask AP (coco), SA-V / DAVIS J&F (video) —
 * prints a table and optionally writes the JSON that `sam2c report` reads. */
#include "cli/cli.h"
#include "core/s2.h"
#include "eval/eval.h"
#include "io/json.h"
#include "report/run_info.h"
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_eval(int argc, char **argv);

typedef struct {
    const char *kind, *gt, *pred, *json, *layout;
    double boundary;
    int threads, quiet, strict, keep_ends, worst;
} eval_args;

/* --help text. */
static void eval_usage(FILE *f) {
    fprintf(f,
            "usage: sam2c eval images --gt DIR|COCO.json --pred DIR|COCO.json [--json OUT.json]\n"
            "       sam2c eval coco   --gt GT.json --pred RESULTS.json [--json OUT.json]\n"
            "       sam2c eval video  --gt DIR --pred DIR [--json OUT.json]\n"
            "Scores predicted masks against the ground truth and prints a table.\n"
            "  images  each reference mask against its prediction: IoU (J) and boundary F.\n"
            "          Folders: every *.png under --gt (recursively) with the PNG of the same\n"
            "          path under --pred (missing = empty). COCO files: the k-th annotation of\n"
            "          each (image, category) in both files.\n"
            "  coco    COCO instance segmentation AP/AR (pycocotools COCOeval, iouType segm);\n"
            "          --pred is a results list [{image_id, category_id, segmentation, score}].\n"
            "  video   J&F of the official SA-V evaluator: a root of video folders, or one video\n"
            "          folder (SA-V <video>/<obj>/<frame>.png or DAVIS <video>/<frame>.png).\n"
            "options:\n"
            "  --json FILE      write the results as JSON (atomically; input for `sam2c report`)\n"
            "  --boundary X     boundary tolerance, fraction of the image diagonal (0.008)\n"
            "  --threads N      threads (0 = all cores)\n"
            "  --worst N        images: list the N lowest-IoU masks (default 10)\n"
            "  --quiet          no progress on stderr\n"
            "video only:\n"
            "  --strict         fail unless both folders hold the same videos\n"
            "  --do-not-skip-first-and-last-frame   count every annotated frame\n"
            "  --layout auto|root|video   --gt is a root of videos or one video (auto)\n");
}

/* Strict non-negative integer option. */
static int int_opt(const char *o, const char *v, long hi, int *out) {
    long t;
    if (!cli_parse_int(v, &t) || t < 0 || t > hi)
        return cli_fail("eval", "bad %s '%s' (an integer in [0, %ld])", o, v, hi);
    *out = (int)t;
    return 0;
}

/* Options after the kind. */
static int parse_args(int argc, char **argv, eval_args *a) {
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int used = 1;
        double x[1];
        int n;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) { eval_usage(stdout); exit(0); }
        else if (!strcmp(o, "--quiet") || !strcmp(o, "-q")) { a->quiet = 1; used = 0; }
        else if (!strcmp(o, "--strict") || !strcmp(o, "-s")) { a->strict = 1; used = 0; }
        else if (!strcmp(o, "--do-not-skip-first-and-last-frame")) { a->keep_ends = 1; used = 0; }
        else if (!v) return cli_fail("eval", "option '%s' needs a value (see --help)", o);
        else if (!strcmp(o, "--gt")) a->gt = v;
        else if (!strcmp(o, "--pred")) a->pred = v;
        else if (!strcmp(o, "--json")) a->json = v;
        else if (!strcmp(o, "--layout")) a->layout = v;
        else if (!strcmp(o, "--threads")) { if (int_opt(o, v, 1024, &a->threads)) return 1; }
        else if (!strcmp(o, "--worst")) { if (int_opt(o, v, 100000, &a->worst)) return 1; }
        else if (!strcmp(o, "--boundary")) {
            if (!cli_parse_floats(v, x, 1, 1, &n) || !(x[0] > 0 && x[0] < 1))
                return cli_fail("eval", "bad --boundary '%s' (a number in (0, 1))", v);
            a->boundary = x[0];
        } else return cli_fail("eval", "unknown option '%s' (see --help)", o);
        i += used;
    }
    if (!a->gt) return cli_fail("eval", "no ground truth given (--gt)");
    if (!a->pred) return cli_fail("eval", "no predictions given (--pred)");
    if (strcmp(a->layout, "auto") && strcmp(a->layout, "root") && strcmp(a->layout, "video"))
        return cli_fail("eval", "bad --layout '%s' (auto, root or video)", a->layout);
    if (strcmp(a->kind, "video") && (a->strict || a->keep_ends || strcmp(a->layout, "auto")))
        return cli_fail("eval", "--strict, --layout and --do-not-skip-first-and-last-frame are for 'eval video'");
    return 0;
}

/* ------------------------------------------------------------------ progress ---- */

typedef struct {
    const char *what;
    double last, t0;
    bool tty, ended, printed;
} progress_state;

/* Progress on stderr: a rewritten line on a terminal, else a line every few seconds. */
static void on_progress(void *user, int done, int total) {
    progress_state *p = user;
    double now = s2_now_s();
    if (p->ended || (done < total && now - p->last < (p->tty ? 0.25 : 5.0))) return;
    p->last = now;
    int pct = total > 0 ? (int)(100.0 * done / total) : 100;
    fprintf(stderr, p->tty ? "\r  %s %d/%d (%d%%)" : "  %s %d/%d (%d%%)\n", p->what, done, total, pct);
    p->printed = true;
    if (done >= total) {
        p->ended = true;
        if (p->tty) fputc('\n', stderr);
    }
    fflush(stderr);
}

/* The library's error on its own line (ends a half-drawn progress line first). */
static int fail_lib(const s2_eval_opts *o) {
    progress_state *p = o->user;
    if (p && p->tty && p->printed && !p->ended) fputc('\n', stderr);
    return cli_fail_lib("eval");
}

/* ------------------------------------------------------------------ tables ---- */

/* n/a for COCOeval's -1 and NaN. */
static void print_val(const char *fmt, double v) {
    if (v != v || v < 0) printf("%8s", "n/a");
    else printf(fmt, v);
}

/* Summary of image-mask pairs and the lowest-IoU items. */
static void print_images(const s2_eval_images_result *r, int worst) {
    printf("%-26s %10d\n", "masks", r->n);
    printf("%-26s %10.4f\n", "mean IoU (J)", r->mean_iou);
    printf("%-26s %10.4f\n", "mean boundary F", r->mean_f);
    printf("%-26s %10.4f\n", "overall IoU (pixels)", r->overall_iou);
    printf("%-26s %10d\n", "missing predictions", r->n_missing_pred);
    printf("%-26s %10d\n", "extra predictions", r->n_extra_pred);
    int k = S2_MIN(worst, r->n);
    if (!k) return;
    int *idx = malloc(sizeof(int) * (size_t)r->n);
    if (!idx) return;
    for (int i = 0; i < r->n; i++) idx[i] = i;
    for (int i = 0; i < k; i++) /* partial selection: k smallest IoU, stable by name */
        for (int j = i + 1; j < r->n; j++)
            if (r->pairs[idx[j]].iou < r->pairs[idx[i]].iou) { int t = idx[i]; idx[i] = idx[j]; idx[j] = t; }
    printf("\nlowest IoU:\n%-40s %8s %8s\n", "mask", "IoU", "F");
    for (int i = 0; i < k; i++) {
        const s2_eval_pair *p = &r->pairs[idx[i]];
        printf("%-40s %8.4f %8.4f%s\n", p->name, p->iou, p->f,
               p->missing_pred ? "  (no prediction)" : p->extra_pred ? "  (no ground truth)" : "");
    }
    free(idx);
}

/* pycocotools COCOeval.summarize lines. */
static void print_coco(const s2_coco_eval_result *r) {
    static const char *lines[12] = {
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
        "Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]"};
    printf("%d images, %d ground-truth masks, %d detections (%d of unknown categories dropped)\n",
           r->n_images, r->n_gt, r->n_dt, r->n_dt_skipped);
    for (int i = 0; i < 12; i++) printf(" %s = %.3f\n", lines[i], r->stats[i]);
    if (r->K <= 1) return;
    printf("\n%-24s %8s %8s\n", "category", "AP", "AP50");
    for (int k = 0; k < r->K; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s", r->cat_names[k] && r->cat_names[k][0] ? r->cat_names[k] : "");
        if (!name[0]) snprintf(name, sizeof name, "%lld", (long long)r->cat_ids[k]);
        printf("%-24s ", name);
        print_val("%8.3f", r->cat_ap[k]);
        putchar(' ');
        print_val("%8.3f", r->cat_ap50[k]);
        putchar('\n');
    }
}

/* The SA-V evaluator's table: global score, then one row per object. */
static void print_video(const s2_vos_result *r) {
    int wv = 12;
    for (int i = 0; i < r->n_objects; i++) wv = S2_MAX(wv, (int)strlen(r->objects[i].video) + 1);
    printf("%-*s %-5s %6s %6s %6s\n", wv, "sequence", "obj", "J&F", "J", "F");
    printf("%-*s %-5s %6.1f %6.1f %6.1f\n", wv, "Global score", "", r->JF, r->J, r->F);
    for (int i = 0; i < r->n_objects; i++) {
        const s2_vos_object *o = &r->objects[i];
        printf("%-*s %-5s %6.1f %6.1f %6.1f\n", wv, o->video, o->object, o->JF, o->J, o->F);
    }
    printf("\n%d video(s), %d object(s). Global score: J&F: %.1f J: %.1f F: %.1f\n", r->n_videos,
           r->n_objects, r->JF, r->J, r->F);
}

/* ------------------------------------------------------------------ JSON ---- */

/* Absolute path when it resolves, else the path as given (caller frees). */
static char *abs_path(const char *p) {
    char *r = realpath(p, NULL);
    return r ? r : strdup(p);
}

/* The library's result object with "inputs", "options" and "run" appended, written
 * atomically to a->json. */
static int write_json(const eval_args *a, const s2_jw *res, const char *format, bool one_video,
                      double seconds, int argc, char **argv) {
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "inputs");
    s2_jw_obj_begin(&w);
    char *gt = abs_path(a->gt), *pred = abs_path(a->pred);
    s2_jw_key(&w, "gt");
    s2_jw_str(&w, gt ? gt : a->gt);
    s2_jw_key(&w, "pred");
    s2_jw_str(&w, pred ? pred : a->pred);
    free(gt);
    free(pred);
    s2_jw_key(&w, "format");
    s2_jw_str(&w, format);
    if (!strcmp(a->kind, "video")) { s2_jw_key(&w, "layout"); s2_jw_str(&w, one_video ? "video" : "root"); }
    s2_jw_obj_end(&w);
    s2_jw_key(&w, "options");
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "boundary_th");
    s2_jw_num(&w, a->boundary);
    if (!strcmp(a->kind, "video")) {
        s2_jw_key(&w, "skip_first_last");
        s2_jw_bool(&w, !a->keep_ends);
        s2_jw_key(&w, "strict");
        s2_jw_bool(&w, a->strict);
    }
    s2_jw_obj_end(&w);
    s2_run_info ri;
    s2_run_info_init(&ri);
    ri.command = "eval";
    ri.argc = argc + 1;  /* include "sam2c" */
    ri.argv = argv - 1;
    ri.total_s = seconds;
    s2_jw_key(&w, "run");
    s2_run_info_write_json(&ri, &w);
    s2_jw_obj_end(&w);
    int rc = SAM2C_OK;
    char *doc = NULL;
    if (w.failed || res->failed || res->len < 2 || res->buf[res->len - 1] != '}')
        rc = s2_err(SAM2C_ERR_NOMEM, "out of memory writing the JSON");
    else if (!(doc = malloc(res->len + w.len + 2))) rc = s2_err(SAM2C_ERR_NOMEM, "out of memory");
    if (rc >= 0) { /* {lib...} + {extras...} -> {lib..., extras...} */
        size_t n = res->len - 1;
        memcpy(doc, res->buf, n);
        doc[n++] = ',';
        memcpy(doc + n, w.buf + 1, w.len - 1);
        n += w.len - 1;
        doc[n++] = '\n';
        rc = s2_write_file_atomic(a->json, doc, n);
    }
    free(doc);
    s2_jw_free(&w);
    return rc;
}

/* ------------------------------------------------------------------ kinds ---- */

/* 1 folder, 2 regular file, 0 missing / other. */
static int path_kind(const char *p) {
    struct stat st;
    if (stat(p, &st) != 0) return 0;
    return S_ISDIR(st.st_mode) ? 1 : S_ISREG(st.st_mode) ? 2 : 0;
}

/* Both inputs exist; returns their common kind (1 folders, 2 files) or fails. */
static int input_kinds(const eval_args *a, int *kind) {
    int kg = path_kind(a->gt), kp = path_kind(a->pred);
    if (!kg) return cli_fail("eval", "%s: no such file or folder", a->gt);
    if (!kp) return cli_fail("eval", "%s: no such file or folder", a->pred);
    if (kg != kp)
        return cli_fail("eval", "--gt and --pred must both be folders of PNG masks or both COCO JSON files");
    *kind = kg;
    return 0;
}

/* Last path component without trailing slashes (buf >= PATH_MAX). */
static const char *base_name(const char *p, char *buf) {
    snprintf(buf, PATH_MAX, "%s", p);
    size_t l = strlen(buf);
    while (l > 1 && buf[l - 1] == '/') buf[--l] = 0;
    char *s = strrchr(buf, '/');
    return s && s[1] ? s + 1 : buf;
}

/* eval video: root or one video folder, table, JSON. */
static int run_video(const eval_args *a, s2_eval_opts *o, s2_jw *w, bool *one) {
    int kind;
    if (input_kinds(a, &kind)) return 1;
    if (kind != 1) return cli_fail("eval", "video: --gt and --pred must be folders");
    if (!strcmp(a->layout, "auto") && s2_eval_video_is_one(a->gt, one) < 0) return fail_lib(o);
    if (strcmp(a->layout, "auto")) *one = !strcmp(a->layout, "video");
    if (*one && !a->quiet && !strcmp(a->layout, "auto"))
        fprintf(stderr, "sam2c eval: %s is one video folder (--layout root reads it as a root of videos)\n", a->gt);
    s2_vos_result r;
    char name[PATH_MAX];
    int rc = *one ? s2_eval_video_one(a->gt, a->pred, base_name(a->gt, name), o, &r)
                  : s2_eval_video(a->gt, a->pred, o, &r);
    if (rc < 0) return fail_lib(o);
    print_video(&r);
    s2_vos_write_json(&r, true, w);
    s2_vos_free(&r);
    return 0;
}

/* eval images: folders or COCO files. */
static int run_images(const eval_args *a, s2_eval_opts *o, s2_jw *w, const char **format) {
    int kind;
    if (input_kinds(a, &kind)) return 1;
    s2_eval_images_result r;
    int rc = kind == 1 ? s2_eval_images_dirs(a->gt, a->pred, o, &r) : s2_eval_images_coco(a->gt, a->pred, o, &r);
    if (rc < 0) return fail_lib(o);
    *format = kind == 1 ? "folders" : "coco";
    print_images(&r, a->worst);
    s2_eval_images_write_json(&r, w);
    s2_eval_images_free(&r);
    return 0;
}

/* eval coco: COCOeval segm. */
static int run_coco(const eval_args *a, s2_eval_opts *o, s2_jw *w) {
    int kind;
    if (input_kinds(a, &kind)) return 1;
    if (kind != 2) return cli_fail("eval", "coco: --gt and --pred must be COCO JSON files");
    s2_coco_eval_result r;
    if (s2_eval_coco(a->gt, a->pred, o, &r) < 0) return fail_lib(o);
    print_coco(&r);
    s2_coco_eval_write_json(&r, w);
    s2_coco_eval_free(&r);
    return 0;
}

/* Entry point: argv[0] = "eval", argv[1] = the kind. */
int cli_eval(int argc, char **argv) {
    if (argc < 2) return cli_fail("eval", "no kind given: sam2c eval images|coco|video ... (see --help)");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        eval_usage(stdout);
        return 0;
    }
    eval_args a = {.kind = argv[1], .layout = "auto", .boundary = 0.008, .worst = 10};
    if (strcmp(a.kind, "images") && strcmp(a.kind, "coco") && strcmp(a.kind, "video"))
        return cli_fail("eval", "unknown kind '%s' (images, coco or video; see --help)", a.kind);
    if (parse_args(argc, argv, &a)) return 1;
    if (a.threads) sam2c_set_num_threads(a.threads);
    progress_state ps = {.what = "evaluating", .tty = isatty(2) != 0};
    ps.t0 = ps.last = s2_now_s();
    s2_eval_opts o;
    s2_eval_opts_default(&o);
    o.boundary_th = a.boundary;
    o.strict = a.strict;
    o.skip_first_last = !a.keep_ends;
    if (!a.quiet) { o.progress = on_progress; o.user = &ps; }
    s2_jw w;
    s2_jw_init(&w);
    const char *format = "folders";
    bool one = false;
    int rc = !strcmp(a.kind, "video") ? run_video(&a, &o, &w, &one)
           : !strcmp(a.kind, "images") ? run_images(&a, &o, &w, &format)
                                       : run_coco(&a, &o, &w);
    if (!strcmp(a.kind, "coco")) format = "coco";
    if (!rc && a.json) {
        if (write_json(&a, &w, format, one, s2_now_s() - ps.t0, argc, argv) < 0) rc = cli_fail_lib("eval");
        else if (!a.quiet) fprintf(stderr, "sam2c eval: results written to %s\n", a.json);
    }
    s2_jw_free(&w);
    return rc;
}
