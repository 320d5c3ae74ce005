/* Report sections of `sam2c eval images` (per-mask IoU / boundary F, overlays of the
 * worst masks) and `sam2c eval coco` (COCO AP, per category). */
#include "report/report_internal.h"
#include "eval/eval.h"
#include "io/image.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define C_BLUE 0x4C78A8u
#define C_GREEN 0x54A24Bu
#define OVERLAY_SIDE 480

/* Masks of one folder pair (missing prediction = empty); false when unavailable. */
static bool folder_masks(const s2r_page *p, const char *name, uint8_t **g, uint8_t **pr, int *h, int *w) {
    char gp[4200], pp[4200];
    int ph, pw;
    snprintf(gp, sizeof gp, "%s/%s", p->gt, name);
    snprintf(pp, sizeof pp, "%s/%s", p->pred, name);
    *g = *pr = NULL;
    if (s2_png_load_gray(gp, g, w, h) < 0) return false;
    struct stat st;
    if (stat(pp, &st) != 0) *pr = calloc((size_t)*w * *h, 1);
    else if (s2_png_load_gray(pp, pr, &pw, &ph) < 0 || pw != *w || ph != *h) { free(*pr); *pr = NULL; }
    if (!*pr) { free(*g); *g = NULL; return false; }
    return true;
}

/* Lazily parsed COCO files for the overlays of COCO pairs. */
typedef struct coco_src { s2_json *gt, *pred; bool tried; } coco_src;

/* Overlay figure of one worst case, or a note why there is none. */
static void case_overlay(const s2r_page *p, coco_src *cs, const char *name) {
    uint8_t *g = NULL, *pr = NULL, *rgb = NULL;
    int h = 0, w = 0;
    bool ok = false;
    struct stat st;
    if (p->gt && stat(p->gt, &st) == 0 && S_ISREG(st.st_mode)) {
        if (!cs->tried) {
            cs->tried = true;
            if (s2_json_parse_file(p->gt, NULL, &cs->gt) < 0 || s2_json_parse_file(p->pred, NULL, &cs->pred) < 0) {
                s2_json_free(cs->gt);
                cs->gt = NULL;
            }
        }
        const char *file = NULL;
        ok = cs->gt && cs->pred && s2_eval_coco_pair_masks(cs->gt, cs->pred, name, &g, &pr, &h, &w, &file) >= 0;
        if (ok && file) s2r_find_image(p->o->images, file, w, h, &rgb);
    } else if (p->gt) {
        ok = folder_masks(p, name, &g, &pr, &h, &w);
        if (ok) s2r_find_image(p->o->images, name, w, h, &rgb);
    }
    s2_canvas c;
    if (ok && s2r_overlay(rgb, g, pr, w, h, OVERLAY_SIDE, &c) >= 0) s2r_figure(p->b, &c, name, NULL);
    else if (p->gt) s2r_puts(p->b, "<p class=\"note\">(masks could not be read for this picture)</p>");
    free(g);
    free(pr);
    free(rgb);
}

/* Cards of the worst masks by IoU, with overlays when the masks are at hand. */
static void images_worst(s2r_page *p, const s2_json *items) {
    int k = S2_MIN(p->o->worst, items->n);
    if (k <= 0) return;
    int *idx = s2r_order_by(items, "iou");
    if (!idx) return;
    s2r_sb *b = p->b;
    s2r_printf(b, "<h2>The %d weakest masks</h2>\n<p>The masks with the lowest overlap, worst first. "
                  "Looking at them shows what kind of mistakes the model makes (missing parts, "
                  "spilling onto the background, or the wrong object).</p>\n", k);
    if (p->gt) s2r_overlay_legend(b);
    else s2r_puts(b, "<p class=\"note\">Pictures are not shown: the mask folders were not found (give "
                     "<code>--gt</code> and <code>--pred</code>).</p>\n");
    s2r_puts(b, "<div class=\"cases\">\n");
    coco_src cs = {0};
    for (int i = 0; i < k; i++) {
        const s2_json *it = &items->items[idx[i]];
        const char *name = s2_json_str(it, "name") ? s2_json_str(it, "name") : "?";
        char a[32], f[32];
        bool miss = false, extra = false;
        s2_json_bool(it, "missing_prediction", &miss);
        s2_json_bool(it, "extra_prediction", &extra);
        s2r_puts(b, "<div class=\"case\"><h3>");
        s2r_esc(b, name);
        s2r_printf(b, "</h3><div>IoU <b>%s</b> &middot; boundary F <b>%s</b> &middot; reference %.0f px, "
                      "prediction %.0f px%s</div>\n", s2r_fmt(a, sizeof a, s2r_num(it, "iou"), 3),
                   s2r_fmt(f, sizeof f, s2r_num(it, "boundary_f"), 3), s2r_num(it, "gt_area"),
                   s2r_num(it, "pred_area"),
                   miss ? " &middot; <b>no prediction</b>" : extra ? " &middot; <b>no reference</b>" : "");
        case_overlay(p, &cs, name);
        s2r_puts(b, "</div>\n");
    }
    s2r_puts(b, "</div>\n");
    s2_json_free(cs.gt);
    s2_json_free(cs.pred);
    free(idx);
}

/* Histograms of IoU and boundary F over the masks. */
static void images_figures(s2r_page *p, const s2_json *items) {
    if (items->n < 1) return;
    double *iou = malloc(sizeof(double) * (size_t)items->n), *bf = malloc(sizeof(double) * (size_t)items->n);
    if (iou && bf) {
        for (int i = 0; i < items->n; i++) {
            iou[i] = s2r_num(&items->items[i], "iou");
            bf[i] = s2r_num(&items->items[i], "boundary_f");
        }
        s2r_puts(p->b, "<h2>How the scores are spread</h2>\n<p>Each bar counts the masks whose score falls "
                       "in that range. Bars piled up on the right (near 1.0) mean consistently good masks; "
                       "bars on the left are failures worth a look.</p>\n");
        s2_hist_spec sp = {"Overlap (IoU) of each mask", "IoU: 0 = no overlap, 1 = identical", "masks", 0, 1, 20, 1, C_BLUE};
        s2_canvas c;
        if (s2_plot_histogram(iou, items->n, &sp, &c) >= 0) s2r_figure(p->b, &c, "IoU histogram", NULL);
        s2_hist_spec sf = {"Outline accuracy (boundary F) of each mask", "boundary F: 0 = outline wrong, 1 = outline right",
                           "masks", 0, 1, 20, 1, C_GREEN};
        if (s2_plot_histogram(bf, items->n, &sf, &c) >= 0) s2r_figure(p->b, &c, "boundary F histogram", NULL);
    }
    free(iou);
    free(bf);
}

int s2r_images_sections(s2r_page *p) {
    const s2_json *ev = p->ev, *items = s2_json_get(ev, "items");
    if (!items || items->type != S2_JARR)
        return s2_err(SAM2C_ERR_FORMAT, "%s: no \"items\" list", p->o->eval_json);
    double miou = s2r_num(ev, "mean_iou"), mf = s2r_num(ev, "mean_boundary_f"), oiou = s2r_num(ev, "overall_iou");
    double miss = s2r_num(ev, "missing_predictions"), extra = s2r_num(ev, "extra_predictions");
    int low = 0;
    for (int i = 0; i < items->n; i++) low += s2r_num(&items->items[i], "iou") < 0.5;
    char v[64], t[64];
    s2r_sb *b = p->b;
    s2r_puts(b, "<h2>Summary</h2>\n<div class=\"cards\">\n");
    snprintf(v, sizeof v, "%d", items->n);
    s2r_card(b, v, "masks compared", NAN);
    s2r_card(b, s2r_fmt(v, sizeof v, miou, 3), "average overlap (mean IoU)", miou);
    s2r_card(b, s2r_fmt(v, sizeof v, mf, 3), "average outline accuracy (boundary F)", mf);
    snprintf(v, sizeof v, "%d", low);
    s2r_card(b, v, "masks with overlap below 0.5", NAN);
    s2r_puts(b, "</div>\n");
    s2r_printf(b, "<p class=\"lead\">The model's masks were compared with %d reference masks. On average a "
                  "predicted mask covers %.0f%% of the area that it and its reference cover together "
                  "(mean IoU %s, rated ", items->n, isnan(miou) ? 0 : miou * 100, s2r_fmt(v, sizeof v, miou, 3));
    s2r_badge(b, miou);
    s2r_printf(b, "). %d of %d masks score below 0.5, which usually means a clearly wrong mask.</p>\n", low, items->n);
    s2r_puts(b, "<h2>Key numbers</h2>\n<table><tr><th>Metric</th><th>Value</th><th>What it means</th></tr>\n");
    snprintf(v, sizeof v, "%d", items->n);
    s2r_metric_row(b, "Masks compared", v, "Reference objects (and unmatched predictions) that were scored.");
    s2r_metric_row(b, "Mean IoU (J)", s2r_fmt(t, sizeof t, miou, 4), "Average overlap per mask, 0 to 1 (1 = identical).");
    s2r_metric_row(b, "Mean boundary F", s2r_fmt(t, sizeof t, mf, 4), "Average outline accuracy per mask, 0 to 1.");
    s2r_metric_row(b, "Overall IoU", s2r_fmt(t, sizeof t, oiou, 4),
                   "Overlap counted over all pixels together: large objects weigh more.");
    s2r_metric_row(b, "Missing predictions", s2r_fmt(t, sizeof t, miss, 0),
                   "Reference objects the model gave no mask for (scored 0).");
    s2r_metric_row(b, "Extra predictions", s2r_fmt(t, sizeof t, extra, 0), "Masks without a reference object.");
    s2r_puts(b, "</table>\n");
    images_figures(p, items);
    images_worst(p, items);
    return SAM2C_OK;
}

/* ------------------------------------------------------------------ COCO AP ---- */

/* Bars of the AP/AR summary numbers. */
static void coco_summary_bars(s2r_page *p) {
    static const char *keys[9] = {"AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR100"};
    static const char *labels[9] = {"AP .50:.95", "AP at .50", "AP at .75", "AP small", "AP medium",
                                    "AP large", "AR 1 det", "AR 10 dets", "AR 100 dets"};
    double v[9];
    for (int i = 0; i < 9; i++) v[i] = s2r_num(p->ev, keys[i]);
    s2_canvas c;
    if (s2_plot_bars(labels, v, 9, 0, 1, 3, "COCO summary (0 to 1)", C_BLUE, &c) >= 0)
        s2r_figure(p->b, &c, "COCO AP and AR", "n/a: no reference object in that size range.");
}

/* Per-category AP, weakest first (at most 40 bars) and the worst categories table. */
static void coco_categories(s2r_page *p, const s2_json *cats) {
    if (!cats || cats->type != S2_JARR || cats->n < 2) return;
    int *idx = s2r_order_by(cats, "AP"), n = S2_MIN(cats->n, 40);
    const char **lab = malloc(sizeof(char *) * (size_t)n);
    char (*names)[48] = malloc(48 * (size_t)n);
    double *v = malloc(sizeof(double) * (size_t)n);
    if (idx && lab && names && v) {
        for (int i = 0; i < n; i++) {
            const s2_json *c = &cats->items[idx[i]];
            const char *nm = s2_json_str(c, "name");
            if (nm && *nm) snprintf(names[i], 48, "%s", nm);
            else snprintf(names[i], 48, "category %.0f", s2r_num(c, "id"));
            lab[i] = names[i];
            v[i] = s2r_num(c, "AP");
        }
        s2r_printf(p->b, "<h2>Per category</h2>\n<p>AP of each object category, weakest first%s.</p>\n",
                   cats->n > n ? " (the 40 weakest)" : "");
        s2_canvas c;
        if (s2_plot_bars(lab, v, n, 0, 1, 3, "AP per category", C_GREEN, &c) >= 0)
            s2r_figure(p->b, &c, "AP per category", "n/a: the category has no reference object.");
    }
    free(idx);
    free(lab);
    free(names);
    free(v);
}

int s2r_coco_sections(s2r_page *p) {
    const s2_json *ev = p->ev;
    double ap = s2r_num(ev, "AP"), ap50 = s2r_num(ev, "AP50"), ar = s2r_num(ev, "AR100");
    char v[64], v50[64];
    s2r_sb *b = p->b;
    s2r_puts(b, "<h2>Summary</h2>\n<div class=\"cards\">\n");
    s2r_card(b, s2r_fmt(v, sizeof v, ap, 3), "AP (headline COCO score)", NAN);
    s2r_card(b, s2r_fmt(v, sizeof v, ap50, 3), "AP at 50% overlap", NAN);
    s2r_card(b, s2r_fmt(v, sizeof v, ar, 3), "average recall (100 detections)", NAN);
    snprintf(v, sizeof v, "%.0f", s2r_num(ev, "gt"));
    s2r_card(b, v, "reference objects", NAN);
    s2r_puts(b, "</div>\n");
    s2r_printf(b, "<p class=\"lead\">On %.0f image(s) with %.0f reference objects and %.0f predicted masks, the "
                  "COCO average precision is %s. AP counts an object as found only when the predicted mask "
                  "overlaps it enough, and averages over strictness levels from 50%% to 95%% overlap "
                  "(for scale: strong systems score around 0.4 to 0.5 on the COCO benchmark photos). At "
                  "the lenient 50%% level, AP is %s.</p>\n",
               s2r_num(ev, "images"), s2r_num(ev, "gt"), s2r_num(ev, "dt"), s2r_fmt(v, sizeof v, ap, 3),
               s2r_fmt(v50, sizeof v50, ap50, 3));
    static const char *keys[12] = {"AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
                                   "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large"};
    static const char *what[12] = {
        "Average precision over overlap thresholds 0.50 to 0.95 (the headline number).",
        "Average precision when 50% overlap is enough.", "Average precision requiring 75% overlap.",
        "AP on small objects (under 32 x 32 pixels).", "AP on medium objects (32 x 32 to 96 x 96 pixels).",
        "AP on large objects (over 96 x 96 pixels).", "Share of objects found with 1 mask per image.",
        "Share of objects found with 10 masks per image.", "Share of objects found with 100 masks per image.",
        "Recall on small objects.", "Recall on medium objects.", "Recall on large objects."};
    s2r_puts(b, "<h2>Key numbers</h2>\n<table><tr><th>Metric</th><th>Value</th><th>What it means</th></tr>\n");
    for (int i = 0; i < 12; i++) s2r_metric_row(b, keys[i], s2r_fmt(v, sizeof v, s2r_num(ev, keys[i]), 3), what[i]);
    s2r_puts(b, "</table>\n<p class=\"note\">n/a: no reference object of that size.</p>\n");
    coco_summary_bars(p);
    coco_categories(p, s2_json_get(ev, "per_category"));
    s2r_puts(b, "<p class=\"note\">Pictures of individual masks: run <code>sam2c eval images</code> on the "
                "same COCO files and make a report of that.</p>\n");
    return SAM2C_OK;
}
