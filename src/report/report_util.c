/* Report building blocks: the text buffer with HTML escaping, figures as data URIs,
 * number formatting, the overlay renderer and the original-image lookup. */
#include "report/report_internal.h"
#include "io/image.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Makes room for n more bytes (plus the NUL). */
static bool sb_grow(s2r_sb *b, size_t n) {
    if (b->failed) return false;
    if (b->len + n + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1) cap *= 2;
    char *nb = realloc(b->buf, cap);
    if (!nb) { b->failed = true; return false; }
    b->buf = nb;
    b->cap = cap;
    return true;
}

void s2r_puts(s2r_sb *b, const char *s) {
    size_t n = strlen(s);
    if (!sb_grow(b, n)) return;
    memcpy(b->buf + b->len, s, n + 1);
    b->len += n;
}

void s2r_printf(s2r_sb *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sb_grow(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void s2r_esc(s2r_sb *b, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': s2r_puts(b, "&amp;"); break;
        case '<': s2r_puts(b, "&lt;"); break;
        case '>': s2r_puts(b, "&gt;"); break;
        case '"': s2r_puts(b, "&quot;"); break;
        case '\'': s2r_puts(b, "&#39;"); break;
        default: {
            char c[2] = {*s, 0};
            s2r_puts(b, c);
        }
        }
    }
}

bool s2r_figure(s2r_sb *b, s2_canvas *c, const char *alt, const char *caption) {
    char *uri = NULL;
    int rc = s2_canvas_data_uri(c, &uri);
    s2_canvas_free(c);
    if (rc < 0) return false;
    s2r_puts(b, "<figure><img src=\"");
    s2r_puts(b, uri);
    s2r_puts(b, "\" alt=\"");
    s2r_esc(b, alt);
    s2r_puts(b, "\">");
    if (caption) {
        s2r_puts(b, "<figcaption>");
        s2r_esc(b, caption);
        s2r_puts(b, "</figcaption>");
    }
    s2r_puts(b, "</figure>\n");
    free(uri);
    return true;
}

double s2r_num(const s2_json *obj, const char *key) {
    double v;
    return s2_json_num(obj, key, &v) ? v : NAN;
}

const char *s2r_fmt(char *buf, size_t n, double v, int decimals) {
    if (isnan(v) || v < 0) snprintf(buf, n, "n/a");
    else snprintf(buf, n, "%.*f", decimals, v);
    return buf;
}

void s2r_metric_row(s2r_sb *b, const char *name, const char *value, const char *meaning) {
    s2r_puts(b, "<tr><th>");
    s2r_esc(b, name);
    bool num = (value[0] >= '0' && value[0] <= '9') || !strcmp(value, "n/a");
    s2r_puts(b, num ? "</th><td class=\"num\">" : "</th><td>");
    s2r_esc(b, value);
    s2r_puts(b, "</td><td>");
    s2r_esc(b, meaning);
    s2r_puts(b, "</td></tr>\n");
}

const char *s2r_rating(double s) {
    if (isnan(s) || s < 0) return "not available";
    if (s >= 0.9) return "excellent";
    if (s >= 0.8) return "good";
    if (s >= 0.6) return "fair";
    return "needs attention";
}

void s2r_overlay_legend(s2r_sb *b) {
    s2r_puts(b, "<p class=\"legend\"><span class=\"sw ok\"></span> correct (in both the reference and the "
                "prediction) <span class=\"sw miss\"></span> missed (reference only) "
                "<span class=\"sw extra\"></span> extra (prediction only)</p>\n");
}

/* <span class="rating ..."> of a 0..1 score. */
void s2r_badge(s2r_sb *b, double s01) {
    const char *r = s2r_rating(s01);
    s2r_printf(b, "<span class=\"rating r-%.*s\">%s</span>", (int)strcspn(r, " "), r, r);
}

/* One summary card: big value, label, optional rating. */
void s2r_card(s2r_sb *b, const char *value, const char *label, double rate01) {
    s2r_puts(b, "<div class=\"card\"><div class=\"big\">");
    s2r_esc(b, value);
    s2r_puts(b, "</div><div class=\"lbl\">");
    s2r_esc(b, label);
    s2r_puts(b, "</div>");
    if (!isnan(rate01)) s2r_badge(b, rate01);
    s2r_puts(b, "</div>\n");
}

/* Sort key: absent (NaN, COCO's -1) after every real score. */
static double sort_key(const s2_json *it, const char *key) {
    double v = s2r_num(it, key);
    return isnan(v) || v < 0 ? INFINITY : v;
}

typedef struct keyed_idx { double k; int i; } keyed_idx;

/* By key, then by position (a stable order). */
static int cmp_keyed(const void *a, const void *b) {
    const keyed_idx *x = a, *y = b;
    if (x->k != y->k) return x->k < y->k ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

int *s2r_order_by(const s2_json *items, const char *key) {
    int n = items->n, *idx = malloc(sizeof(int) * (size_t)(n ? n : 1));
    keyed_idx *ki = malloc(sizeof(keyed_idx) * (size_t)(n ? n : 1));
    if (!idx || !ki) { free(idx); free(ki); return NULL; }
    for (int i = 0; i < n; i++) ki[i] = (keyed_idx){sort_key(&items->items[i], key), i};
    qsort(ki, (size_t)n, sizeof *ki, cmp_keyed);
    for (int i = 0; i < n; i++) idx[i] = ki[i].i;
    free(ki);
    return idx;
}

/* ------------------------------------------------------------------ overlay ---- */

#define OV_OK 0x22A04Bu    /* both */
#define OV_MISS 0xFF8C00u  /* ground truth only */
#define OV_EXTRA 0x2F6BFFu /* prediction only */

/* Whether pixel i is on the border of mask m (a 4-neighbour differs). */
static bool on_edge(const uint8_t *m, int w, int h, int x, int y) {
    bool v = m[(size_t)y * w + x] != 0;
    if (!v) return false;
    return x == 0 || y == 0 || x == w - 1 || y == h - 1 || !m[(size_t)y * w + x - 1] ||
           !m[(size_t)y * w + x + 1] || !m[(size_t)(y - 1) * w + x] || !m[(size_t)(y + 1) * w + x];
}

/* Colour of one full-resolution overlay pixel: background blended with the class colour,
 * mask borders drawn solid. */
static void overlay_px(const uint8_t *rgb, const uint8_t *gt, const uint8_t *pred, int w, int h,
                       int x, int y, float out[3]) {
    size_t i = (size_t)y * w + x;
    float bg[3];
    for (int c = 0; c < 3; c++) /* image dimmed a little, else mid grey */
        bg[c] = rgb ? 0.35f * 255 + 0.65f * rgb[i * 3 + c] : 200;
    bool g = gt[i] != 0, p = pred[i] != 0;
    uint32_t col = g && p ? OV_OK : g ? OV_MISS : OV_EXTRA;
    float a = (g || p) ? 0.55f : 0;
    if (on_edge(gt, w, h, x, y) || on_edge(pred, w, h, x, y)) a = 0.95f;
    for (int c = 0; c < 3; c++) {
        float cc = (float)(col >> (16 - 8 * c) & 255);
        out[c] = (1 - a) * bg[c] + a * cc;
    }
}

/* Box [x0, x1) x [y0, y1) around the union of both masks with a margin, so small objects
 * are seen up close; the whole image when both are empty. */
static void focus_box(const uint8_t *gt, const uint8_t *pred, int w, int h, int box[4]) {
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (gt[(size_t)y * w + x] || pred[(size_t)y * w + x]) {
                x0 = S2_MIN(x0, x), x1 = S2_MAX(x1, x);
                y0 = S2_MIN(y0, y), y1 = S2_MAX(y1, y);
            }
    if (x1 < 0) { box[0] = box[1] = 0; box[2] = w; box[3] = h; return; }
    int m = S2_MAX(40, (int)(0.3 * S2_MAX(x1 - x0 + 1, y1 - y0 + 1)));
    box[0] = S2_MAX(0, x0 - m);
    box[1] = S2_MAX(0, y0 - m);
    box[2] = S2_MIN(w, x1 + 1 + m);
    box[3] = S2_MIN(h, y1 + 1 + m);
}

int s2r_overlay(const uint8_t *rgb, const uint8_t *gt, const uint8_t *pred, int w, int h,
                int max_side, s2_canvas *out) {
    int box[4];
    focus_box(gt, pred, w, h, box);
    int cw = box[2] - box[0], ch = box[3] - box[1], side = S2_MAX(cw, ch);
    int f = (side + max_side - 1) / max_side;           /* box-filter factor when too big */
    int up = f <= 1 ? S2_MIN(S2_MAX(4, 240 / side), S2_MAX(1, max_side / side)) : 1; /* zoom small crops */
    if (f < 1) f = 1;
    int ow = up > 1 ? cw * up : (cw + f - 1) / f, oh = up > 1 ? ch * up : (ch + f - 1) / f;
    S2_CHECK(s2_canvas_init(out, ow, oh));
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) {
            float acc[3] = {0, 0, 0}, px[3];
            int n = 0;
            int sx = box[0] + (up > 1 ? ox / up : ox * f), sy = box[1] + (up > 1 ? oy / up : oy * f);
            int ex = up > 1 ? sx + 1 : S2_MIN(box[2], sx + f), ey = up > 1 ? sy + 1 : S2_MIN(box[3], sy + f);
            for (int y = sy; y < ey; y++)
                for (int x = sx; x < ex; x++, n++) {
                    overlay_px(rgb, gt, pred, w, h, x, y, px);
                    for (int c = 0; c < 3; c++) acc[c] += px[c];
                }
            uint8_t *o = out->px + ((size_t)oy * ow + ox) * 3;
            for (int c = 0; c < 3; c++) o[c] = (uint8_t)lroundf(acc[c] / (float)(n ? n : 1));
        }
    return SAM2C_OK;
}

void s2r_find_image(const char *dir, const char *rel, int w, int h, uint8_t **rgb) {
    static const char *ext[] = {".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG"};
    *rgb = NULL;
    if (!dir || !rel) return;
    char stem[4096];
    snprintf(stem, sizeof stem, "%s/%s", dir, rel);
    char *dot = strrchr(stem, '.'), *slash = strrchr(stem, '/');
    if (dot && (!slash || dot > slash)) *dot = 0;
    for (int i = 0; i < 6; i++) {
        char path[4200];
        struct stat st;
        snprintf(path, sizeof path, "%s%s", stem, ext[i]);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        s2_image im;
        s2_image_opts io;
        s2_image_opts_default(&io);
        if (s2_image_load(path, &io, &im) < 0) continue;
        if (im.w == w && im.h == h) { *rgb = im.px; return; }
        s2_image_free(&im);
    }
}
