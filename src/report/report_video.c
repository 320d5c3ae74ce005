/* Report sections of `sam2c eval video`: J&F (SA-V / DAVIS), per object, and the worst
 * objects with the overlay of their worst frame and their J over time. */
#include "report/report_internal.h"
#include "eval/eval.h"
#include "eval/eval_internal.h"
#include "io/image.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define C_BLUE 0x4C78A8u
#define C_GREEN 0x54A24Bu
#define C_RED 0xE45756u
#define OVERLAY_SIDE 480

/* The folder of one video under a root, or the folder itself for a one-video evaluation. */
static void video_dir(const char *base, bool one, const char *video, char *out, size_t n) {
    if (one) snprintf(out, n, "%s", base);
    else snprintf(out, n, "%s/%s", base, video);
}

/* Binary mask of one object on one frame: SA-V <dir>/<obj>/<frame>.png (nonzero) or
 * DAVIS <dir>/<frame>.png (label == obj). Missing file -> NULL. */
static uint8_t *object_mask(const char *dir, const char *obj, const char *frame, int *w, int *h) {
    char path[4400];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, obj);
    bool sav = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    if (sav) snprintf(path, sizeof path, "%s/%s/%s.png", dir, obj, frame);
    else snprintf(path, sizeof path, "%s/%s.png", dir, frame);
    uint32_t *lab = NULL;
    size_t cap = 0;
    if (stat(path, &st) != 0 || s2e_png_labels(path, &lab, &cap, w, h) < 0) return NULL;
    uint8_t *m = malloc((size_t)*w * *h);
    unsigned long id = strtoul(obj, NULL, 10);
    for (size_t i = 0; m && i < (size_t)*w * *h; i++) m[i] = sav ? lab[i] != 0 : lab[i] == id;
    free(lab);
    return m;
}

/* Overlay of one object's frame, or a note. */
static void frame_overlay(const s2r_page *p, bool one, const char *video, const char *obj, const char *frame) {
    char gd[4200], pd[4200];
    video_dir(p->gt, one, video, gd, sizeof gd);
    video_dir(p->pred, one, video, pd, sizeof pd);
    int w = 0, h = 0, pw = 0, ph = 0;
    uint8_t *g = object_mask(gd, obj, frame, &w, &h), *pr = object_mask(pd, obj, frame, &pw, &ph), *rgb = NULL;
    if (g && !pr) pr = calloc((size_t)w * h, 1), pw = w, ph = h; /* no prediction file: empty */
    s2_canvas c;
    if (g && pr && pw == w && ph == h) {
        char rel[4200];
        snprintf(rel, sizeof rel, "%s/%s.png", video, frame);
        s2r_find_image(p->o->images, rel, w, h, &rgb);
        snprintf(rel, sizeof rel, "%s.png", frame);
        if (!rgb) s2r_find_image(p->o->images, rel, w, h, &rgb);
        if (s2r_overlay(rgb, g, pr, w, h, OVERLAY_SIDE, &c) >= 0) s2r_figure(p->b, &c, frame, NULL);
    } else {
        s2r_puts(p->b, "<p class=\"note\">(the masks of this frame could not be read)</p>");
    }
    free(g);
    free(pr);
    free(rgb);
}

/* Index of the lowest value of a JSON number array, or -1. */
static int argmin(const s2_json *a) {
    int best = -1;
    for (int i = 0; a && a->type == S2_JARR && i < a->n; i++)
        if (a->items[i].type == S2_JNUM && (best < 0 || a->items[i].num < a->items[best].num)) best = i;
    return best;
}

/* J of every counted frame of an object as a series plot. */
static void j_series(const s2r_page *p, const s2_json *js) {
    if (!js || js->type != S2_JARR || js->n < 2) return;
    double *v = malloc(sizeof(double) * (size_t)js->n);
    if (!v) return;
    for (int i = 0; i < js->n; i++) v[i] = js->items[i].type == S2_JNUM ? js->items[i].num : NAN;
    s2_canvas c;
    if (s2_plot_series(v, js->n, 0, 1, "Overlap (J) on each frame", "frames in order (dashed: average)", C_RED, &c) >= 0)
        s2r_figure(p->b, &c, "J per frame", NULL);
    free(v);
}

/* Cards of the worst objects: scores, worst frame overlay, J over time. */
static void video_worst(s2r_page *p, const s2_json *objs, bool one) {
    int k = S2_MIN(p->o->worst, objs->n);
    if (k <= 0) return;
    int *idx = s2r_order_by(objs, "J&F");
    if (!idx) return;
    s2r_sb *b = p->b;
    s2r_printf(b, "<h2>The %d weakest objects</h2>\n<p>The objects the model followed least well, worst "
                  "first. For each, the picture shows its worst frame and the chart shows how the "
                  "overlap changed over the video: a sudden drop usually means the model lost the object "
                  "(occlusion, fast motion, a similar-looking neighbour).</p>\n", k);
    if (p->gt) s2r_overlay_legend(b);
    else s2r_puts(b, "<p class=\"note\">Pictures are not shown: the mask folders were not found (give "
                     "<code>--gt</code> and <code>--pred</code>).</p>\n");
    s2r_puts(b, "<div class=\"cases wide\">\n");
    for (int i = 0; i < k; i++) {
        const s2_json *o = &objs->items[idx[i]], *pf = s2_json_get(o, "per_frame");
        const char *video = s2_json_str(o, "video"), *obj = s2_json_str(o, "object");
        const s2_json *fr = s2_json_get(pf, "frames"), *js = s2_json_get(pf, "J"), *fs = s2_json_get(pf, "F");
        char a[32], c[32], d[32];
        s2r_puts(b, "<div class=\"case\"><h3>video ");
        s2r_esc(b, video ? video : "?");
        s2r_puts(b, ", object ");
        s2r_esc(b, obj ? obj : "?");
        s2r_printf(b, "</h3><div>J&amp;F <b>%s</b> &middot; J %s &middot; F %s &middot; %.0f frames</div>\n",
                   s2r_fmt(a, sizeof a, s2r_num(o, "J&F"), 1), s2r_fmt(c, sizeof c, s2r_num(o, "J"), 1),
                   s2r_fmt(d, sizeof d, s2r_num(o, "F"), 1), s2r_num(o, "frames"));
        int w = argmin(js);
        if (w >= 0 && fr && fr->type == S2_JARR && w < fr->n && fr->items[w].type == S2_JSTR) {
            double fw = fs && fs->type == S2_JARR && w < fs->n && fs->items[w].type == S2_JNUM ? fs->items[w].num : NAN;
            s2r_puts(b, "<div>worst frame <b>");
            s2r_esc(b, fr->items[w].str);
            s2r_printf(b, "</b>: J %.3f, F %s</div>\n", js->items[w].num, s2r_fmt(a, sizeof a, fw, 3));
            if (p->gt && video && obj) frame_overlay(p, one, video, obj, fr->items[w].str);
        }
        j_series(p, js);
        s2r_puts(b, "</div>\n");
    }
    s2r_puts(b, "</div>\n");
    free(idx);
}

/* Histogram of J&F over objects, and one bar per object when they are few. */
static void video_figures(s2r_page *p, const s2_json *objs) {
    int n = objs->n;
    if (n < 1) return;
    double *v = malloc(sizeof(double) * (size_t)n);
    const char **lab = malloc(sizeof(char *) * (size_t)n);
    char (*names)[64] = malloc(64 * (size_t)n);
    if (v && lab && names) {
        for (int i = 0; i < n; i++) {
            const s2_json *o = &objs->items[i];
            v[i] = s2r_num(o, "J&F");
            snprintf(names[i], 64, "%s/%s", s2_json_str(o, "video") ? s2_json_str(o, "video") : "?",
                     s2_json_str(o, "object") ? s2_json_str(o, "object") : "?");
            lab[i] = names[i];
        }
        s2r_puts(p->b, "<h2>How the scores are spread</h2>\n<p>Each bar of the histogram counts the "
                       "objects whose J&amp;F falls in that range (100 = perfect on every frame).</p>\n");
        s2_hist_spec sp = {"J&F of each object", "J&F: 0 = lost, 100 = perfect", "objects", 0, 100, 20, 0, C_BLUE};
        s2_canvas c;
        if (s2_plot_histogram(v, n, &sp, &c) >= 0) s2r_figure(p->b, &c, "J&F histogram", NULL);
        if (n <= 40 && s2_plot_bars(lab, v, n, 0, 100, 1, "J&F per object (video/object)", C_GREEN, &c) >= 0)
            s2r_figure(p->b, &c, "J&F per object", NULL);
    }
    free(v);
    free(lab);
    free(names);
}

/* Whether the masks are one video folder (the eval's layout, or detected on --gt). */
static bool one_video(const s2r_page *p) {
    bool one = false;
    if (p->o->gt) {
        if (s2_eval_video_is_one(p->o->gt, &one) < 0) one = false;
        return one;
    }
    const char *l = s2_json_str(s2_json_get(p->ev, "inputs"), "layout");
    return l && !strcmp(l, "video");
}

int s2r_video_sections(s2r_page *p) {
    const s2_json *ev = p->ev, *objs = s2_json_get(ev, "objects");
    if (!objs || objs->type != S2_JARR)
        return s2_err(SAM2C_ERR_FORMAT, "%s: no \"objects\" list", p->o->eval_json);
    double jf = s2r_num(ev, "J&F"), j = s2r_num(ev, "J"), f = s2r_num(ev, "F");
    char v[64], t[64];
    s2r_sb *b = p->b;
    s2r_puts(b, "<h2>Summary</h2>\n<div class=\"cards\">\n");
    s2r_card(b, s2r_fmt(v, sizeof v, jf, 1), "J&F (headline score, out of 100)", jf / 100);
    s2r_card(b, s2r_fmt(v, sizeof v, j, 1), "J: region overlap", NAN);
    s2r_card(b, s2r_fmt(v, sizeof v, f, 1), "F: outline accuracy", NAN);
    snprintf(v, sizeof v, "%d in %.0f", objs->n, s2r_num(ev, "videos"));
    s2r_card(b, v, "objects followed in videos", NAN);
    s2r_puts(b, "</div>\n");
    s2r_printf(b, "<p class=\"lead\">The model followed %d object(s) through %.0f video(s). Its headline "
                  "score, J&amp;F, is <b>%s out of 100</b> (", objs->n, s2r_num(ev, "videos"), s2r_fmt(v, sizeof v, jf, 1));
    s2r_badge(b, jf / 100);
    s2r_puts(b, "): the average of how well the masks overlap the reference (J) and how well their "
                "outlines match (F), over every frame. This is the score of the SA-V and DAVIS video "
                "benchmarks, computed exactly as their official evaluator does.</p>\n");
    s2r_puts(b, "<h2>Key numbers</h2>\n<table><tr><th>Metric</th><th>Value</th><th>What it means</th></tr>\n");
    s2r_metric_row(b, "J&F", s2r_fmt(t, sizeof t, jf, 2), "Headline score: the mean of J and F, 0 to 100.");
    s2r_metric_row(b, "J (region similarity)", s2r_fmt(t, sizeof t, j, 2),
                   "Overlap (IoU) of predicted and reference masks, averaged over frames, then objects; 0 to 100.");
    s2r_metric_row(b, "F (contour accuracy)", s2r_fmt(t, sizeof t, f, 2),
                   "How closely the mask outlines follow the reference outlines, 0 to 100.");
    snprintf(t, sizeof t, "%.0f", s2r_num(ev, "videos"));
    s2r_metric_row(b, "Videos", t, "Video clips evaluated.");
    snprintf(t, sizeof t, "%d", objs->n);
    s2r_metric_row(b, "Objects", t, "Objects followed (each scored on its own, then averaged).");
    s2r_puts(b, "</table>\n");
    video_figures(p, objs);
    video_worst(p, objs, one_video(p));
    return SAM2C_OK;
}
