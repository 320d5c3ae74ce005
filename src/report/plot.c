/* Raster figures for the report: canvas primitives, bitmap text, histogram, bar chart,
 * series plot, PNG data URIs. Sizes in pixels; text drawn at scale 2 is 10 x 16 px. */
#include "report/plot.h"
#include "core/s2.h"
#include "io/image.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C_AXIS 0x444444u
#define C_GRID 0xE3E6EAu
#define C_TEXT 0x222222u
#define C_MUTED 0x666666u

int s2_canvas_init(s2_canvas *c, int w, int h) {
    memset(c, 0, sizeof *c);
    if (w < 1 || h < 1 || w > 8192 || h > 8192)
        return s2_err(SAM2C_ERR_ARG, "plot: bad canvas size %d x %d", w, h);
    c->px = s2_malloc((size_t)w * h * 3);
    if (!c->px) return SAM2C_ERR_NOMEM;
    memset(c->px, 255, (size_t)w * h * 3);
    c->w = w;
    c->h = h;
    return SAM2C_OK;
}

void s2_canvas_free(s2_canvas *c) {
    if (!c) return;
    free(c->px);
    memset(c, 0, sizeof *c);
}

void s2_canvas_rect(s2_canvas *c, int x, int y, int w, int h, uint32_t rgb) {
    int x0 = S2_MAX(x, 0), y0 = S2_MAX(y, 0);
    int x1 = S2_MIN(x + w, c->w), y1 = S2_MIN(y + h, c->h);
    for (int yy = y0; yy < y1; yy++)
        for (int xx = x0; xx < x1; xx++) {
            uint8_t *p = c->px + ((size_t)yy * c->w + xx) * 3;
            p[0] = (uint8_t)(rgb >> 16);
            p[1] = (uint8_t)(rgb >> 8);
            p[2] = (uint8_t)rgb;
        }
}

int s2_text_width(const char *s, int scale) {
    int n = (int)strlen(s);
    return n ? n * 6 * scale - scale : 0;
}

int s2_text_height(int scale) { return 8 * scale; }

int s2_canvas_text(s2_canvas *c, int x, int y, const char *s, int scale, uint32_t rgb) {
    int x0 = x;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, x += 6 * scale) {
        uint8_t rows[8];
        s2_font_glyph(*p, rows);
        for (int r = 0; r < 8; r++)
            for (int col = 0; col < 5; col++)
                if (rows[r] >> (4 - col) & 1)
                    s2_canvas_rect(c, x + col * scale, y + r * scale, scale, scale, rgb);
    }
    return x - x0 - (x > x0 ? scale : 0);
}

/* Line of thickness t between two points (Bresenham, t x t squares). */
static void draw_line(s2_canvas *c, int x0, int y0, int x1, int y1, int t, uint32_t rgb) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
        s2_canvas_rect(c, x0 - t / 2, y0 - t / 2, t, t, rgb);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) { err += dy; x0 += sx; }
        if (e2 <= dx) { err += dx; y0 += sy; }
    }
}

/* A 1-2-5 step giving at most max_ticks intervals over range (> 0). */
static double nice_step(double range, int max_ticks) {
    double raw = range / max_ticks, mag = pow(10, floor(log10(raw)));
    double m[4] = {1, 2, 5, 10};
    for (int i = 0; i < 4; i++)
        if (m[i] * mag >= raw) return m[i] * mag;
    return 10 * mag;
}

/* Decimals needed to print multiples of step exactly enough. */
static int step_decimals(double step) {
    int d = 0;
    while (d < 6 && fabs(step * pow(10, d) - round(step * pow(10, d))) > 1e-6) d++;
    return d;
}

/* Title centred at the top (scale 2). */
static void draw_title(s2_canvas *c, const char *title) {
    if (!title) return;
    s2_canvas_text(c, (c->w - s2_text_width(title, 2)) / 2, 10, title, 2, C_TEXT);
}

/* Vertical value axis on [lo, hi] mapped to pixel rows [y1 (lo), y0 (hi)]: gridlines
 * across [x0, x1] and tick labels right-aligned left of x0. */
static void draw_yaxis(s2_canvas *c, double lo, double hi, int x0, int x1, int y0, int y1) {
    double step = nice_step(hi - lo, 5);
    int dec = step_decimals(step);
    for (double v = ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-6; v += step) {
        int y = y1 - (int)lround((v - lo) / (hi - lo) * (y1 - y0));
        char lab[32];
        snprintf(lab, sizeof lab, "%.*f", dec, fabs(v) < step * 1e-6 ? 0.0 : v);
        s2_canvas_rect(c, x0, y, x1 - x0, 1, C_GRID);
        s2_canvas_text(c, x0 - 8 - s2_text_width(lab, 2), y - 8, lab, 2, C_MUTED);
    }
    s2_canvas_rect(c, x0, y0, 1, y1 - y0 + 1, C_AXIS);
    s2_canvas_rect(c, x0, y1, x1 - x0, 1, C_AXIS);
}

/* Widest y tick label of draw_yaxis in pixels. */
static int yaxis_label_width(double lo, double hi) {
    double step = nice_step(hi - lo, 5);
    int dec = step_decimals(step), wmax = 0;
    for (double v = ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-6; v += step) {
        char lab[32];
        snprintf(lab, sizeof lab, "%.*f", dec, v);
        wmax = S2_MAX(wmax, s2_text_width(lab, 2));
    }
    return wmax;
}

/* Bin counts of the histogram; returns the largest count. */
static int hist_counts(const double *v, int n, const s2_hist_spec *sp, int *cnt) {
    int maxc = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(v[i])) continue;
        int b = (int)floor((v[i] - sp->lo) / (sp->hi - sp->lo) * sp->bins);
        b = S2_MIN(S2_MAX(b, 0), sp->bins - 1);
        cnt[b]++;
        maxc = S2_MAX(maxc, cnt[b]);
    }
    return maxc;
}

/* X tick labels at bin edges, every k-th edge so that labels do not collide. */
static void hist_xticks(s2_canvas *c, const s2_hist_spec *sp, int x0, double bw, int y) {
    char lab[32];
    snprintf(lab, sizeof lab, "%.*f", sp->decimals, sp->hi);
    int k = (int)ceil((s2_text_width(lab, 2) + 12) / bw);
    for (int e = 0; e <= sp->bins; e += k) {
        double v = sp->lo + (sp->hi - sp->lo) * e / sp->bins;
        int x = x0 + (int)lround(e * bw);
        snprintf(lab, sizeof lab, "%.*f", sp->decimals, v);
        s2_canvas_rect(c, x, y, 1, 5, C_AXIS);
        s2_canvas_text(c, x - s2_text_width(lab, 2) / 2, y + 8, lab, 2, C_MUTED);
    }
}

int s2_plot_histogram(const double *v, int n, const s2_hist_spec *sp, s2_canvas *out) {
    if (!sp || sp->bins < 1 || sp->bins > 200 || !(sp->hi > sp->lo) || n < 0 || (n && !v))
        return s2_err(SAM2C_ERR_ARG, "plot: bad histogram settings");
    int *cnt = s2_calloc((size_t)sp->bins, sizeof(int));
    if (!cnt) return SAM2C_ERR_NOMEM;
    int maxc = hist_counts(v, n, sp, cnt);
    double top = maxc < 5 ? 5 : ceil(maxc * 1.12);
    int W = 760, H = 380, x0 = 24 + yaxis_label_width(0, top), x1 = W - 24, y0 = 72, y1 = H - 64;
    int rc = s2_canvas_init(out, W, H);
    if (rc < 0) { free(cnt); return rc; }
    draw_title(out, sp->title);
    if (sp->ylabel) s2_canvas_text(out, 12, 42, sp->ylabel, 2, C_MUTED);
    draw_yaxis(out, 0, top, x0, x1, y0, y1);
    double bw = (double)(x1 - x0) / sp->bins;
    for (int b = 0; b < sp->bins; b++) {
        int xa = x0 + (int)lround(b * bw) + 1, xb = x0 + (int)lround((b + 1) * bw) - 1;
        int hgt = (int)lround(cnt[b] / top * (y1 - y0));
        s2_canvas_rect(out, xa, y1 - hgt, xb - xa, hgt, sp->color);
        if (!cnt[b]) continue;
        char lab[16];
        snprintf(lab, sizeof lab, "%d", cnt[b]);
        int sc = s2_text_width(lab, 2) <= xb - xa ? 2 : 1;
        if (s2_text_width(lab, sc) <= xb - xa + 4)
            s2_canvas_text(out, (xa + xb - s2_text_width(lab, sc)) / 2, y1 - hgt - 4 - s2_text_height(sc),
                           lab, sc, C_TEXT);
    }
    hist_xticks(out, sp, x0, bw, y1 + 1);
    if (sp->xlabel) s2_canvas_text(out, (x0 + x1 - s2_text_width(sp->xlabel, 2)) / 2, H - 24, sp->xlabel, 2, C_MUTED);
    free(cnt);
    return SAM2C_OK;
}

/* Label cut to max characters with ".." at the end (buf >= max + 1). */
static const char *clip_label(const char *s, char *buf, int max) {
    if ((int)strlen(s) <= max) return s;
    memcpy(buf, s, (size_t)max);
    buf[max] = 0;
    buf[max - 2] = buf[max - 1] = '.';
    return buf;
}

int s2_plot_bars(const char *const *labels, const double *v, int n, double lo, double hi,
                 int decimals, const char *title, uint32_t color, s2_canvas *out) {
    if (n < 1 || n > 400 || !labels || !v || !(hi > lo))
        return s2_err(SAM2C_ERR_ARG, "plot: bad bar chart settings");
    char buf[32];
    int lw = 0;
    for (int i = 0; i < n; i++) lw = S2_MAX(lw, s2_text_width(clip_label(labels[i] ? labels[i] : "", buf, 24), 2));
    int W = 760, rowh = 24, x0 = 20 + lw + 12, x1 = W - 90, y0 = 48;
    int H = y0 + n * rowh + 44;
    S2_CHECK(s2_canvas_init(out, W, H));
    draw_title(out, title);
    double step = nice_step(hi - lo, 5);
    int dec = step_decimals(step);
    for (double t = ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-6; t += step) {
        int x = x0 + (int)lround((t - lo) / (hi - lo) * (x1 - x0));
        char lab[32];
        snprintf(lab, sizeof lab, "%.*f", dec, fabs(t) < step * 1e-6 ? 0.0 : t);
        s2_canvas_rect(out, x, y0, 1, n * rowh, C_GRID);
        s2_canvas_text(out, x - s2_text_width(lab, 2) / 2, y0 + n * rowh + 10, lab, 2, C_MUTED);
    }
    for (int i = 0; i < n; i++) {
        int y = y0 + i * rowh;
        const char *lab = clip_label(labels[i] ? labels[i] : "", buf, 24);
        s2_canvas_text(out, x0 - 12 - s2_text_width(lab, 2), y + 4, lab, 2, C_TEXT);
        char val[32];
        if (isnan(v[i]) || v[i] < lo) {
            s2_canvas_text(out, x0 + 6, y + 4, "n/a", 2, C_MUTED);
            continue;
        }
        double f = (S2_MIN(v[i], hi) - lo) / (hi - lo);
        int bw = (int)lround(f * (x1 - x0));
        s2_canvas_rect(out, x0, y + 3, bw, rowh - 6, color);
        snprintf(val, sizeof val, "%.*f", decimals, v[i]);
        s2_canvas_text(out, x0 + bw + 6, y + 4, val, 2, C_TEXT);
    }
    s2_canvas_rect(out, x0, y0, 1, n * rowh, C_AXIS);
    return SAM2C_OK;
}

int s2_plot_series(const double *y, int n, double lo, double hi, const char *title,
                   const char *xlabel, uint32_t color, s2_canvas *out) {
    if (n < 1 || !y || !(hi > lo)) return s2_err(SAM2C_ERR_ARG, "plot: bad series settings");
    int W = 600, H = 260, x0 = 24 + yaxis_label_width(lo, hi), x1 = W - 24, y0 = 48, y1 = H - 64;
    S2_CHECK(s2_canvas_init(out, W, H));
    draw_title(out, title);
    draw_yaxis(out, lo, hi, x0, x1, y0, y1);
    double sum = 0;
    int px = 0, py = 0, cnt = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(y[i])) continue;
        double f = (S2_MIN(S2_MAX(y[i], lo), hi) - lo) / (hi - lo);
        int x = x0 + (n > 1 ? (int)lround((double)i / (n - 1) * (x1 - x0)) : (x1 - x0) / 2);
        int yy = y1 - (int)lround(f * (y1 - y0));
        if (cnt) draw_line(out, px, py, x, yy, 2, color);
        s2_canvas_rect(out, x - 2, yy - 2, 5, 5, color);
        px = x, py = yy, sum += y[i], cnt++;
    }
    if (cnt) {
        double m = (S2_MIN(S2_MAX(sum / cnt, lo), hi) - lo) / (hi - lo);
        int ym = y1 - (int)lround(m * (y1 - y0));
        for (int x = x0; x < x1; x += 12) s2_canvas_rect(out, x, ym, 6, 2, C_MUTED);
    }
    char lab[32];
    snprintf(lab, sizeof lab, "1");
    s2_canvas_text(out, x0 - 4, y1 + 10, lab, 2, C_MUTED);
    snprintf(lab, sizeof lab, "%d", n);
    s2_canvas_text(out, x1 - s2_text_width(lab, 2), y1 + 10, lab, 2, C_MUTED);
    if (xlabel) s2_canvas_text(out, (x0 + x1 - s2_text_width(xlabel, 2)) / 2, H - 24, xlabel, 2, C_MUTED);
    return SAM2C_OK;
}

char *s2_base64(const uint8_t *data, size_t len) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = s2_malloc((len + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t b = (uint32_t)data[i] << 16;
        if (i + 1 < len) b |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len) b |= data[i + 2];
        out[o++] = tab[b >> 18 & 63];
        out[o++] = tab[b >> 12 & 63];
        out[o++] = i + 1 < len ? tab[b >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? tab[b & 63] : '=';
    }
    out[o] = 0;
    return out;
}

int s2_canvas_data_uri(const s2_canvas *c, char **out) {
    *out = NULL;
    uint8_t *png = NULL;
    size_t len = 0;
    S2_CHECK(s2_png_encode(c->px, c->w, c->h, 3, &png, &len));
    char *b = s2_base64(png, len);
    free(png);
    if (!b) return SAM2C_ERR_NOMEM;
    static const char pre[] = "data:image/png;base64,";
    *out = s2_malloc(sizeof pre + strlen(b));
    if (*out) {
        memcpy(*out, pre, sizeof pre - 1);
        strcpy(*out + sizeof pre - 1, b);
    }
    free(b);
    return *out ? SAM2C_OK : SAM2C_ERR_NOMEM;
}
