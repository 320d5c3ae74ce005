/* A small raster plotting helper for the HTML report: an RGB canvas, rectangles and lines,
 * text from a built-in 5x7 bitmap font (printable ASCII), and two figures — a histogram
 * and a horizontal bar chart — encoded as PNG data URIs. */
#ifndef S2_PLOT_H
#define S2_PLOT_H

#include <stddef.h>
#include <stdint.h>

typedef struct s2_canvas {
    int w, h;
    uint8_t *px; /* (h, w, 3) RGB, owned */
} s2_canvas;

/* White-filled canvas of w x h (1..8192 each). */
int s2_canvas_init(s2_canvas *c, int w, int h);
void s2_canvas_free(s2_canvas *c);
/* Filled rectangle, clipped to the canvas. */
void s2_canvas_rect(s2_canvas *c, int x, int y, int w, int h, uint32_t rgb);
/* Text with its top-left corner at (x, y), each font pixel a scale x scale square;
 * characters outside printable ASCII draw as '?'. Returns the width drawn. */
int s2_canvas_text(s2_canvas *c, int x, int y, const char *s, int scale, uint32_t rgb);
/* Width and height of a text at a scale (one line). */
int s2_text_width(const char *s, int scale);
int s2_text_height(int scale);

/* The 8 rows of a glyph (5 bits each, bit 4 = leftmost column; row 7 = descender); the
 * '?' glyph for characters outside 32..126. */
void s2_font_glyph(int ch, uint8_t rows[8]);

/* Histogram of v[0..n) over [lo, hi] in `bins` equal bins (values outside are clamped
 * into the end bins; NaN skipped), with a title, axis labels, counts over the bars and
 * x tick labels printed with `decimals` decimals. */
typedef struct s2_hist_spec {
    const char *title, *xlabel, *ylabel;
    double lo, hi;
    int bins;
    int decimals;
    uint32_t color;
} s2_hist_spec;
int s2_plot_histogram(const double *v, int n, const s2_hist_spec *spec, s2_canvas *out);

/* Horizontal bars: one row per label, value on [lo, hi], the value printed at the bar end
 * with `decimals` decimals; NaN / negative-absent values (< lo) are drawn as "n/a". */
int s2_plot_bars(const char *const *labels, const double *v, int n, double lo, double hi,
                 int decimals, const char *title, uint32_t color, s2_canvas *out);

/* Line plot of y[0..n) against the index, y on [lo, hi], with a dashed mean line. */
int s2_plot_series(const double *y, int n, double lo, double hi, const char *title,
                   const char *xlabel, uint32_t color, s2_canvas *out);

/* "data:image/png;base64,..." of the canvas (caller frees). */
int s2_canvas_data_uri(const s2_canvas *c, char **out);
/* Standard base64 (RFC 4648, padded) of len bytes; caller frees. */
char *s2_base64(const uint8_t *data, size_t len);

#endif
