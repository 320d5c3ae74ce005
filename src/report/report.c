/* The HTML report page: style, header, the kind's sections (report_images.c,
 * report_video.c), speed, model and settings, inputs, glossary. */
#include "report/report_internal.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void s2_report_opts_default(s2_report_opts *o) {
    memset(o, 0, sizeof *o);
    o->worst = 6;
}

static const char k_css[] =
    "body{font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#222;"
    "max-width:1000px;margin:24px auto;padding:0 16px;line-height:1.45}"
    "h1{font-size:1.8em;margin-bottom:0}.sub{color:#666;margin-top:4px}"
    "h2{border-bottom:2px solid #e3e6ea;padding-bottom:4px;margin-top:2em}"
    ".lead{font-size:1.1em}"
    ".cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}"
    ".card{flex:1 1 170px;border:1px solid #e3e6ea;border-radius:8px;padding:10px 14px;background:#fafbfc}"
    ".card .big{font-size:2em;font-weight:600}.card .lbl{color:#555;font-size:.92em}"
    "table{border-collapse:collapse;width:100%;margin:8px 0}"
    "th,td{border-bottom:1px solid #e3e6ea;padding:6px 8px;text-align:left;vertical-align:top}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "figure{margin:12px 0}figure img{max-width:100%;border:1px solid #e3e6ea}"
    "figcaption{color:#555;font-size:.9em}"
    ".cases{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:16px}"
    ".cases.wide{grid-template-columns:repeat(auto-fill,minmax(440px,1fr))}"
    ".case{border:1px solid #e3e6ea;border-radius:8px;padding:10px}.case h3{margin:0 0 4px;font-size:1em;"
    "word-break:break-all}.case img{max-width:100%}.case figure{margin:6px 0}"
    ".legend .sw{display:inline-block;width:14px;height:14px;border-radius:3px;vertical-align:middle;"
    "margin:0 4px 0 12px}.ok{background:#22A04B}.miss{background:#FF8C00}.extra{background:#2F6BFF}"
    ".rating{display:inline-block;padding:1px 10px;border-radius:12px;font-weight:600;font-size:.9em}"
    ".r-excellent{background:#d8f3dc}.r-good{background:#e3f2fd}.r-fair{background:#fff3cd}"
    ".r-needs{background:#f8d7da}.r-not{background:#eee}"
    ".note{color:#666;font-size:.92em}code{background:#f3f4f6;padding:1px 4px;border-radius:4px;"
    "word-break:break-all}dl dt{font-weight:600;margin-top:8px}dl dd{margin-left:16px}";

/* Page head, title and the line saying what was read. */
static void page_header(s2r_page *p) {
    const char *title = p->o->title ? p->o->title : "Segmentation quality report";
    char date[64] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm)) strftime(date, sizeof date, "%Y-%m-%d %H:%M", &tm);
    s2r_puts(p->b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
    s2r_esc(p->b, title);
    s2r_printf(p->b, "</title><style>%s</style></head><body>\n<h1>", k_css);
    s2r_esc(p->b, title);
    s2r_printf(p->b, "</h1>\n<p class=\"sub\">Made by sam2c %s on %s from <code>", SAM2C_VERSION, date);
    s2r_esc(p->b, p->o->eval_json);
    s2r_puts(p->b, "</code>. sam2c is a C implementation of Meta's SAM 2 (Segment Anything Model 2), "
                   "which outlines objects in images and follows them through videos. This page compares "
                   "the outlines it produced (&ldquo;predictions&rdquo;) with reference outlines drawn by "
                   "people (&ldquo;ground truth&rdquo;).</p>\n");
}

/* Seconds in a readable unit. */
static const char *fmt_time(char *buf, size_t n, double s) {
    if (isnan(s) || s < 0) snprintf(buf, n, "n/a");
    else if (s < 1) snprintf(buf, n, "%.0f ms", s * 1e3);
    else if (s < 120) snprintf(buf, n, "%.2f s", s);
    else snprintf(buf, n, "%.1f min", s / 60);
    return buf;
}

/* Histogram of per-item times (seconds) when run.json lists them. */
static void time_histogram(s2r_page *p, const s2_json *list, const char *what) {
    if (!list || list->type != S2_JARR || list->n < 2) return;
    double *v = malloc(sizeof(double) * (size_t)list->n), hi = 0;
    if (!v) return;
    int n = 0;
    for (int i = 0; i < list->n; i++)
        if (list->items[i].type == S2_JNUM) hi = fmax(hi, v[n++] = list->items[i].num * 1e3);
    char title[96], xl[96];
    snprintf(title, sizeof title, "Time per %s", what);
    snprintf(xl, sizeof xl, "milliseconds per %s", what);
    s2_hist_spec sp = {title, xl, what, 0, hi > 0 ? hi * 1.05 : 1, 20, hi * 1.05 >= 100 ? 0 : 1, 0x72B7B2u};
    s2_canvas c;
    if (n > 1 && s2_plot_histogram(v, n, &sp, &c) >= 0)
        s2r_figure(p->b, &c, title, "How long each item took. A narrow spread means steady speed.");
    free(v);
}

/* Speed: totals and per-item times from run.json. */
static void section_speed(s2r_page *p) {
    s2r_puts(p->b, "<h2>How fast was it?</h2>\n");
    const s2_json *t = s2_json_get(p->run, "timings");
    if (!t) {
        s2r_puts(p->b, "<p class=\"note\">Timings are not available: no run.json was found. Give "
                       "<code>--run OUTDIR/run.json</code> (written by the command that produced the "
                       "masks) to show them.</p>\n");
        return;
    }
    char a[64], c[64];
    s2r_sb *b = p->b;
    s2r_puts(b, "<table><tr><th>Measure</th><th>Value</th><th>What it means</th></tr>\n");
    s2r_metric_row(b, "Total run time", fmt_time(a, sizeof a, s2r_num(t, "total_s")),
                   "Wall-clock time of the whole command, start to finish.");
    double load = s2r_num(t, "model_load_s"), pi = s2r_num(t, "per_image_s"), pf = s2r_num(t, "per_frame_s");
    if (!isnan(load))
        s2r_metric_row(b, "Loading the model", fmt_time(a, sizeof a, load), "Reading the model weights, once per run.");
    if (!isnan(pi)) {
        snprintf(c, sizeof c, "%.0f", s2r_num(t, "images"));
        s2r_metric_row(b, "Images processed", c, "Pictures the model worked on.");
        s2r_metric_row(b, "Time per image", fmt_time(a, sizeof a, pi), "Average time to segment one image.");
    }
    if (!isnan(pf)) {
        snprintf(c, sizeof c, "%.0f", s2r_num(t, "frames"));
        s2r_metric_row(b, "Video frames processed", c, "Frames the model followed the objects through.");
        s2r_metric_row(b, "Time per frame", fmt_time(a, sizeof a, pf), "Average time per video frame.");
        snprintf(c, sizeof c, "%.2f", pf > 0 ? 1 / pf : 0);
        s2r_metric_row(b, "Frames per second", c, "Video frames handled each second (real-time video is 24 to 30).");
    }
    const s2_json *h = s2_json_get(p->run, "host");
    if (h) {
        snprintf(a, sizeof a, "%.0f of %.0f", s2r_num(h, "threads"), s2r_num(h, "logical_cpus"));
        s2r_metric_row(b, "Computer", s2_json_str(h, "cpu") ? s2_json_str(h, "cpu") : "unknown",
                       "The processor the run used (no GPU).");
        s2r_metric_row(b, "Threads used", a, "Parallel workers out of the processor's logical cores.");
    }
    s2r_puts(b, "</table>\n");
    time_histogram(p, s2_json_get(t, "frame_s"), "frame");
    time_histogram(p, s2_json_get(t, "image_s"), "image");
}

/* Command line as one shell-like string. */
static void put_argv(s2r_sb *b, const s2_json *argv) {
    for (int i = 0; argv && i < argv->n; i++) {
        const char *s = argv->items[i].type == S2_JSTR ? argv->items[i].str : "?";
        bool q = !*s || strpbrk(s, " \t'\"$&|;<>()*?") != NULL;
        if (i) s2r_puts(b, " ");
        if (q) s2r_puts(b, "'");
        s2r_esc(b, s);
        if (q) s2r_puts(b, "'");
    }
}

/* Model name, command line, settings and version from run.json. */
static void section_model(s2r_page *p) {
    s2r_sb *b = p->b;
    s2r_puts(b, "<h2>Which model and settings?</h2>\n");
    if (!p->run) {
        s2r_puts(b, "<p class=\"note\">Not recorded: no run.json was found.</p>\n");
        return;
    }
    const s2_json *m = s2_json_get(p->run, "model");
    s2r_puts(b, "<table>\n");
    s2r_metric_row(b, "Model", s2_json_str(m, "name") ? s2_json_str(m, "name") : "not recorded",
                   "SAM 2 comes in sizes (tiny, small, base+, large): larger is usually more accurate but slower.");
    if (s2_json_str(m, "path")) s2r_metric_row(b, "Model file", s2_json_str(m, "path"), "The checkpoint that was loaded.");
    const char *cmd = s2_json_str(p->run, "command");
    s2r_metric_row(b, "Command", cmd ? cmd : "?", "The sam2c command that produced the masks.");
    s2r_metric_row(b, "sam2c version", s2_json_str(p->run, "sam2c_version") ? s2_json_str(p->run, "sam2c_version") : "?", "");
    if (s2_json_str(p->run, "finished_at"))
        s2r_metric_row(b, "Finished at (UTC)", s2_json_str(p->run, "finished_at"), "");
    s2r_puts(b, "</table>\n<p>Command line: <code>");
    put_argv(b, s2_json_get(p->run, "argv"));
    s2r_puts(b, "</code></p>\n");
    const s2_json *st = s2_json_get(p->run, "settings");
    if (!st || st->type != S2_JOBJ || !st->n) return;
    s2r_puts(b, "<table><tr><th>Setting</th><th>Value</th></tr>\n");
    for (int i = 0; i < st->n; i++) {
        s2_jw w;
        s2_jw_init(&w);
        s2_jw_value(&w, &st->items[i]);
        s2r_puts(b, "<tr><td>");
        s2r_esc(b, st->keys[i]);
        s2r_puts(b, "</td><td><code>");
        s2r_esc(b, w.buf ? w.buf : "");
        s2r_puts(b, "</code></td></tr>\n");
        s2_jw_free(&w);
    }
    s2r_puts(b, "</table>\n");
}

/* Where the numbers came from: inputs and evaluation options. */
static void section_inputs(s2r_page *p) {
    s2r_sb *b = p->b;
    const s2_json *in = s2_json_get(p->ev, "inputs"), *op = s2_json_get(p->ev, "options");
    const s2_json *er = s2_json_get(p->ev, "run");
    char t[64];
    s2r_puts(b, "<h2>About this evaluation</h2>\n<table>\n");
    if (s2_json_str(in, "gt")) s2r_metric_row(b, "Reference (ground truth)", s2_json_str(in, "gt"), "Masks drawn by people.");
    if (s2_json_str(in, "pred")) s2r_metric_row(b, "Predictions", s2_json_str(in, "pred"), "Masks produced by the model.");
    if (!isnan(s2r_num(op, "boundary_th"))) {
        snprintf(t, sizeof t, "%g of the image diagonal", s2r_num(op, "boundary_th"));
        s2r_metric_row(b, "Boundary tolerance", t,
                       "How far (in pixels, relative to image size) an outline may be off and still count as right.");
    }
    bool skip;
    if (s2_json_bool(op, "skip_first_last", &skip))
        s2r_metric_row(b, "First and last frames", skip ? "not counted" : "counted",
                       "The standard video benchmark skips them: the first frame is given to the model as the example.");
    if (er && !isnan(s2r_num(s2_json_get(er, "timings"), "total_s")))
        s2r_metric_row(b, "Evaluation time", fmt_time(t, sizeof t, s2r_num(s2_json_get(er, "timings"), "total_s")),
                       "Time taken to compute these scores (not the model's speed).");
    if (p->run_path) s2r_metric_row(b, "Run record", p->run_path, "run.json read for speed and settings.");
    s2r_puts(b, "</table>\n");
}

/* Plain definitions of every number on the page. */
static void section_glossary(s2r_page *p) {
    s2r_puts(p->b,
             "<h2>Glossary</h2>\n<dl>"
             "<dt>Mask</dt><dd>The set of pixels that make up one object in one picture.</dd>"
             "<dt>IoU (Intersection over Union), also called J</dt><dd>Overlap between the predicted mask and "
             "the reference mask: the pixels both agree on, divided by the pixels either one covers. 1.0 (or "
             "100) means identical; 0.5 means the overlap is half of the combined area.</dd>"
             "<dt>Boundary F (F)</dt><dd>How well the outline follows the reference outline, allowing a small "
             "tolerance; 1.0 (or 100) means every outline point is within the tolerance.</dd>"
             "<dt>J&amp;F</dt><dd>The average of J and F, the headline score of the video benchmarks SA-V and "
             "DAVIS (0 to 100).</dd>"
             "<dt>AP (Average Precision)</dt><dd>The COCO benchmark's score for finding every object: it "
             "rewards masks that overlap the reference well and penalises missed and spurious objects, "
             "averaged over overlap thresholds from 0.50 to 0.95 (0 to 1; strong systems score around 0.4 to 0.5 on "
             "the COCO benchmark).</dd>"
             "<dt>AR (Average Recall)</dt><dd>The share of reference objects that were found, averaged over the "
             "same thresholds.</dd>"
             "<dt>Ratings</dt><dd>&ldquo;excellent&rdquo; (0.9 and up), &ldquo;good&rdquo; (0.8), &ldquo;fair&rdquo; "
             "(0.6), &ldquo;needs attention&rdquo; (below): rules of thumb for overlap scores, not a standard."
             "</dd></dl>\n");
}

/* run.json: the given file (errors are fatal) or <pred>/run.json when present. */
static int load_run(s2r_page *p, s2_json **run, char *found, size_t n) {
    *run = NULL;
    if (p->o->run_json) {
        S2_CHECK(s2_json_parse_file(p->o->run_json, NULL, run));
        if ((*run)->type != S2_JOBJ) return s2_err(SAM2C_ERR_FORMAT, "%s: not a run.json object", p->o->run_json);
        p->run_path = p->o->run_json;
        return SAM2C_OK;
    }
    struct stat st;
    if (!p->pred) return SAM2C_OK;
    snprintf(found, n, "%s/run.json", p->pred);
    if (stat(found, &st) != 0 || !S_ISREG(st.st_mode)) return SAM2C_OK;
    if (s2_json_parse_file(found, NULL, run) < 0 || (*run)->type != S2_JOBJ) {
        s2_json_free(*run);
        *run = NULL;
        return SAM2C_OK;
    }
    p->run_path = found;
    return SAM2C_OK;
}

/* Mask sources: the options, else the eval JSON's inputs when they still exist. */
static void pick_sources(s2r_page *p) {
    struct stat st;
    p->gt = p->o->gt;
    p->pred = p->o->pred;
    if (p->gt) return;
    const s2_json *in = s2_json_get(p->ev, "inputs");
    const char *g = s2_json_str(in, "gt"), *r = s2_json_str(in, "pred");
    if (g && r && stat(g, &st) == 0 && stat(r, &st) == 0) {
        p->gt = g;
        p->pred = r;
    }
}

int s2_report_html(const s2_report_opts *o, char **html, size_t *len) {
    if (!o || !o->eval_json || !html) return s2_err(SAM2C_ERR_ARG, "report: no evaluation JSON");
    *html = NULL;
    s2_json *ev = NULL, *run = NULL;
    S2_CHECK(s2_json_parse_file(o->eval_json, NULL, &ev));
    const char *kind = s2_json_str(ev, "kind");
    if (!kind || (strcmp(kind, "images") && strcmp(kind, "video") && strcmp(kind, "coco_segm"))) {
        s2_json_free(ev);
        return s2_err(SAM2C_ERR_FORMAT, "%s: not a result of `sam2c eval` (no known \"kind\")", o->eval_json);
    }
    s2r_sb b = {0};
    char found[4200];
    s2r_page p = {.o = o, .ev = ev, .b = &b};
    pick_sources(&p);
    int rc = load_run(&p, &run, found, sizeof found);
    p.run = run;
    if (rc >= 0) {
        page_header(&p);
        rc = !strcmp(kind, "images") ? s2r_images_sections(&p)
           : !strcmp(kind, "video") ? s2r_video_sections(&p) : s2r_coco_sections(&p);
    }
    if (rc >= 0) {
        section_speed(&p);
        section_model(&p);
        section_inputs(&p);
        section_glossary(&p);
        s2r_puts(&b, "</body></html>\n");
        if (b.failed) rc = s2_err(SAM2C_ERR_NOMEM, "report: out of memory");
    }
    s2_json_free(ev);
    s2_json_free(run);
    if (rc < 0) { free(b.buf); return rc; }
    *html = b.buf;
    if (len) *len = b.len;
    return SAM2C_OK;
}
