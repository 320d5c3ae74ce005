/* Private pieces of the HTML report: a growable text buffer with HTML escaping, the
 * shared page state, overlay rendering, and the per-kind sections. */
#ifndef S2_REPORT_INTERNAL_H
#define S2_REPORT_INTERNAL_H

#include "report/report.h"
#include "report/plot.h"
#include "io/json.h"
#include "core/s2.h"
#include <stdbool.h>
#include <stdint.h>

/* Growable text; `failed` is sticky after an allocation failure. */
typedef struct s2r_sb {
    char *buf;
    size_t len, cap;
    bool failed;
} s2r_sb;
void s2r_puts(s2r_sb *b, const char *s);
void s2r_printf(s2r_sb *b, const char *fmt, ...) S2_PRINTF(2, 3);
void s2r_esc(s2r_sb *b, const char *s);          /* HTML-escaped text */
/* <img> of a canvas as a PNG data URI with alt text (canvas freed); false on failure. */
bool s2r_figure(s2r_sb *b, s2_canvas *c, const char *alt, const char *caption);

/* Everything the sections read. */
typedef struct s2r_page {
    const s2_report_opts *o;
    const s2_json *ev;        /* eval JSON */
    const s2_json *run;       /* run.json or NULL */
    const char *run_path;     /* where run was read, or NULL */
    const char *gt, *pred;    /* effective mask sources or NULL */
    s2r_sb *b;
} s2r_page;

/* Number of a key, or NaN when absent / null. */
double s2r_num(const s2_json *obj, const char *key);
/* "0.812" style fixed decimals, or "n/a" for NaN / negative absent markers. */
const char *s2r_fmt(char *buf, size_t n, double v, int decimals);
/* One row of the key-numbers table. */
void s2r_metric_row(s2r_sb *b, const char *name, const char *value, const char *meaning);
/* A plain-language rating of a 0..1 score (thresholds are rules of thumb). */
const char *s2r_rating(double score01);
/* <span class="rating ..."> of a 0..1 score. */
void s2r_badge(s2r_sb *b, double score01);
/* One summary card: big value, label, rating when rate01 is not NaN. */
void s2r_card(s2r_sb *b, const char *value, const char *label, double rate01);
/* Indices of an array of objects by ascending number under key (stable); caller frees. */
int *s2r_order_by(const s2_json *items, const char *key);
/* Legend shown above overlays. */
void s2r_overlay_legend(s2r_sb *b);

/* Overlay of gt / pred (h x w, nonzero = fg) over rgb (same size) or grey, cropped
 * around both masks (with a margin) and scaled so its longer side is at most max_side
 * (small crops are zoomed up to 4x). */
int s2r_overlay(const uint8_t *rgb, const uint8_t *gt, const uint8_t *pred, int w, int h,
               int max_side, s2_canvas *out);
/* The original image for a name: dir/<stem>.{jpg,jpeg,png,JPG,PNG} (stem = rel without
 * its extension); NULL rgb when absent or of another size. */
void s2r_find_image(const char *dir, const char *rel, int w, int h, uint8_t **rgb);

/* Sections of each evaluation kind: summary, key numbers, figures, worst cases. */
int s2r_images_sections(s2r_page *p);
int s2r_video_sections(s2r_page *p);
int s2r_coco_sections(s2r_page *p);

#endif
