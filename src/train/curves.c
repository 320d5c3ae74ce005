/* Fine-tuning curves: two line-plot panels on one raster canvas, written as PNG.
 * Letters: E epochs drawn (0..E-1), pw x ph the plot area of a panel in pixels. */
#include "train/curves.h"
#include "io/image.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define CW 960
#define CH 380
#define COL_TRAIN 0xd62728u
#define COL_VAL 0x1f77b4u
#define COL_MIOU 0x2ca02cu
#define COL_AXIS 0x333333u
#define COL_GRID 0xe4e4e4u

/* One panel's plot area and value range. */
typedef struct panel {
    int x, y, w, h;      /* plot area on the canvas */
    double lo, hi;       /* value range (bottom, top) */
    int n;               /* epochs on the x axis (0..n-1) */
} panel;

/* Canvas x of epoch e. */
static int px_of(const panel *p, int e) {
    return p->x + (p->n > 1 ? (int)lround((double)e * (p->w - 1) / (p->n - 1)) : p->w / 2);
}

/* Canvas y of value v (clamped into the panel). */
static int py_of(const panel *p, double v) {
    double f = (v - p->lo) / (p->hi - p->lo);
    f = f < 0.0 ? 0.0 : f > 1.0 ? 1.0 : f;
    return p->y + p->h - 1 - (int)lround(f * (p->h - 1));
}

/* Thick straight segment (Bresenham, 2 x 2 pen). */
static void line(s2_canvas *c, int x0, int y0, int x1, int y1, uint32_t rgb) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
        s2_canvas_rect(c, x0, y0, 2, 2, rgb);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) err += dy, x0 += sx;
        if (e2 <= dx) err += dx, y0 += sy;
    }
}

/* Frame, horizontal grid with 5 labelled ticks, epoch ticks and the panel title. */
static void axes(s2_canvas *c, const panel *p, const char *title, int decimals) {
    char buf[32];
    for (int k = 0; k <= 4; k++) {
        double v = p->lo + (p->hi - p->lo) * k / 4.0;
        int y = py_of(p, v);
        s2_canvas_rect(c, p->x, y, p->w, 1, COL_GRID);
        snprintf(buf, sizeof buf, "%.*f", decimals, v);
        s2_canvas_text(c, p->x - 6 - s2_text_width(buf, 1), y - 3, buf, 1, COL_AXIS);
    }
    s2_canvas_rect(c, p->x, p->y, 1, p->h, COL_AXIS);
    s2_canvas_rect(c, p->x, p->y + p->h - 1, p->w, 1, COL_AXIS);
    int step = p->n > 20 ? (p->n + 9) / 10 : 1;
    for (int e = 0; e < p->n; e += step) {
        int x = px_of(p, e);
        s2_canvas_rect(c, x, p->y + p->h, 1, 4, COL_AXIS);
        snprintf(buf, sizeof buf, "%d", e);
        s2_canvas_text(c, x - s2_text_width(buf, 1) / 2, p->y + p->h + 7, buf, 1, COL_AXIS);
    }
    s2_canvas_text(c, p->x + p->w / 2 - s2_text_width("epoch", 1) / 2, p->y + p->h + 20,
                   "epoch", 1, COL_AXIS);
    s2_canvas_text(c, p->x, p->y - 22, title, 2, COL_AXIS);
}

/* Polyline through the non-NaN values of one series with square markers. */
static void series(s2_canvas *c, const panel *p, const double *v, uint32_t rgb) {
    int px = -1, py = -1;
    for (int e = 0; e < p->n; e++) {
        if (isnan(v[e])) {
            px = -1;
            continue;
        }
        int x = px_of(p, e), y = py_of(p, v[e]);
        if (px >= 0) line(c, px, py, x, y, rgb);
        s2_canvas_rect(c, x - 3, y - 3, 7, 7, rgb);
        px = x, py = y;
    }
}

/* Legend entry: colour swatch and label; returns the next x. */
static int legend(s2_canvas *c, int x, int y, const char *label, uint32_t rgb) {
    s2_canvas_rect(c, x, y, 14, 8, rgb);
    return x + 20 + s2_canvas_text(c, x + 20, y, label, 1, COL_AXIS) + 16;
}

/* Range of the non-NaN values of two series, padded (0..1 when there are none). */
static void range2(const double *a, const double *b, int n, double *lo, double *hi) {
    *lo = INFINITY, *hi = -INFINITY;
    for (int e = 0; e < n; e++) {
        if (!isnan(a[e])) *lo = fmin(*lo, a[e]), *hi = fmax(*hi, a[e]);
        if (!isnan(b[e])) *lo = fmin(*lo, b[e]), *hi = fmax(*hi, b[e]);
    }
    if (!(*lo <= *hi)) *lo = 0.0, *hi = 1.0;
    double pad = fmax(0.05 * (*hi - *lo), 1e-3);
    *lo = fmax(0.0, *lo - pad), *hi += pad;
}

int s2_plot_train_curves(const s2_epoch_stats *hist, int n, const char *title, s2_canvas *out) {
    if (n < 1 || n > 100001) return s2_err(SAM2C_ERR_ARG, "curves: %d epochs to draw", n);
    double *v = s2_malloc(sizeof(double) * 3 * (size_t)n);
    if (!v) return SAM2C_ERR_NOMEM;
    double *tl = v, *vl = v + n, *vm = v + 2 * n;
    for (int e = 0; e < n; e++)
        tl[e] = hist[e].train_loss, vl[e] = hist[e].val_loss, vm[e] = hist[e].val_miou;
    int rc = s2_canvas_init(out, CW, CH);
    if (rc < 0) {
        free(v);
        return rc;
    }
    s2_canvas_text(out, 16, 10, title ? title : "fine-tuning", 2, COL_AXIS);
    panel pl = {.x = 70, .y = 76, .w = 380, .h = 230, .n = n};
    range2(tl, vl, n, &pl.lo, &pl.hi);
    axes(out, &pl, "loss", 3);
    series(out, &pl, tl, COL_TRAIN);
    series(out, &pl, vl, COL_VAL);
    int lx = legend(out, pl.x, CH - 22, "train loss", COL_TRAIN);
    legend(out, lx, CH - 22, "val loss", COL_VAL);
    panel pm = {.x = 560, .y = 76, .w = 380, .h = 230, .n = n, .lo = 0.0, .hi = 1.0};
    axes(out, &pm, "validation mIoU", 2);
    series(out, &pm, vm, COL_MIOU);
    legend(out, pm.x, CH - 22, "val mIoU", COL_MIOU);
    free(v);
    return SAM2C_OK;
}

int s2_write_train_curves(const s2_epoch_stats *hist, int n, const char *title, const char *path) {
    s2_canvas c = {0};
    S2_CHECK(s2_plot_train_curves(hist, n, title, &c));
    int rc = s2_png_write(path, c.px, c.w, c.h, 3);
    s2_canvas_free(&c);
    return rc;
}
