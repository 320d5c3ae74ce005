/* COCO run-length encoding with pycocotools' semantics (common/maskApi.c): runs over the
 * column-major (Fortran order) mask starting with background, the 6-bit-per-char
 * "counts" string with deltas from counts[i-2] for i > 2, toBbox, area, IoU and the
 * polygon rasteriser (5x upsampled boundary walk). Decoding validates hostile input:
 * bad characters, unterminated or oversized values, runs that do not sum to h*w. */
#include "io/rle.h"
#include "core/s2.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RLE_MAX_CHUNKS 7          /* 35 bits: any delta of two uint32 counts fits */
#define POLY_MAX_STEPS (1 << 28)  /* boundary points of the 5x upsampled polygon */
#define POLY_MAX_COORD 1e7        /* |x|, |y| before upsampling (keeps ints exact) */

// Frees the runs; the struct can be reused.
void s2_rle_free(s2_rle *r) {
    if (!r) return;
    free(r->counts);
    r->counts = NULL;
    r->n = 0;
}

// Checks the mask size and returns h*w through *hw.
static int check_hw(int h, int w, uint64_t *hw, const char *what) {
    if (h < 0 || w < 0) return s2_err(SAM2C_ERR_ARG, "%s: negative size %d x %d", what, h, w);
    *hw = (uint64_t)h * (uint64_t)w;
    if (*hw > UINT32_MAX)
        return s2_err(SAM2C_ERR_LIMIT, "%s: mask of %d x %d is too large for RLE", what, h, w);
    return SAM2C_OK;
}

// Takes ownership of counts[0..n) as the RLE of an h x w mask.
static void rle_set(s2_rle *out, int h, int w, uint32_t *counts, int n) {
    out->h = h;
    out->w = w;
    out->counts = counts;
    out->n = n;
}

// Column-major 0/1 copy of a row-major mask, transposed in cache-friendly tiles.
static void to_col_major(uint8_t *t, const uint8_t *mask, int h, int w) {
    enum { TILE = 32 };
    for (int y0 = 0; y0 < h; y0 += TILE)
        for (int x0 = 0; x0 < w; x0 += TILE) {
            int y1 = S2_MIN(y0 + TILE, h), x1 = S2_MIN(x0 + TILE, w);
            for (int y = y0; y < y1; y++)
                for (int x = x0; x < x1; x++)
                    t[(size_t)x * h + y] = mask[(size_t)y * w + x] != 0;
        }
}

// Runs of a column-major 0/1 buffer (first run background); counts may be NULL to
// only count them.
static int runs_of(const uint8_t *t, size_t n, uint32_t *counts) {
    int k = 0;
    uint32_t run = 0;
    uint8_t p = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] != p) {
            if (counts) counts[k] = run;
            k++, run = 0, p = t[i];
        }
        run++;
    }
    if (counts) counts[k] = run;
    return k + 1;
}

// ref: pycocotools maskApi.c rleEncode (column-major runs, first run is background)
int s2_rle_encode(const uint8_t *mask, int h, int w, s2_rle *out) {
    memset(out, 0, sizeof *out);
    uint64_t hw;
    S2_CHECK(check_hw(h, w, &hw, "RLE encode"));
    if (hw && !mask) return s2_err(SAM2C_ERR_ARG, "RLE encode: no mask");
    uint8_t *t = s2_malloc((size_t)hw);
    if (!t) return SAM2C_ERR_NOMEM;
    to_col_major(t, mask, h, w);
    int n = runs_of(t, (size_t)hw, NULL);
    uint32_t *c = s2_malloc((size_t)n * sizeof *c);
    if (!c) {
        free(t);
        return SAM2C_ERR_NOMEM;
    }
    runs_of(t, (size_t)hw, c);
    free(t);
    rle_set(out, h, w, c, n);
    return SAM2C_OK;
}

// Sum of all runs (uint64: cannot overflow for n < 2^32 runs of uint32).
static uint64_t rle_total(const s2_rle *r) {
    uint64_t t = 0;
    for (int i = 0; i < r->n; i++) t += r->counts[i];
    return t;
}

// ref: pycocotools maskApi.c rleDecode, writing a row-major mask
int s2_rle_decode(const s2_rle *r, uint8_t *mask) {
    uint64_t hw;
    S2_CHECK(check_hw(r->h, r->w, &hw, "RLE decode"));
    if (r->n < 0 || (r->n > 0 && !r->counts))
        return s2_err(SAM2C_ERR_ARG, "RLE decode: bad run list");
    uint64_t t = rle_total(r);
    if (t != hw)
        return s2_err(SAM2C_ERR_FORMAT, "RLE decode: runs sum to %llu, expected %d x %d = %llu",
                      (unsigned long long)t, r->h, r->w, (unsigned long long)hw);
    memset(mask, 0, (size_t)hw);
    size_t x = 0, y = 0, h = (size_t)r->h, w = (size_t)r->w;
    for (int i = 0; i < r->n; i++) {
        uint64_t left = r->counts[i];
        while (left > 0) { /* the run, column piece by column piece */
            size_t n = (size_t)S2_MIN(left, (uint64_t)(h - y));
            if (i % 2)
                for (size_t k = 0; k < n; k++) mask[(y + k) * w + x] = 1;
            y += n;
            left -= n;
            if (y == h) y = 0, x++;
        }
    }
    return SAM2C_OK;
}

// ref: pycocotools maskApi.c rleToString (5 bits per char + continuation bit, +48)
char *s2_rle_to_string(const s2_rle *r) {
    char *s = s2_malloc((size_t)(r->n > 0 ? r->n : 0) * RLE_MAX_CHUNKS + 1);
    if (!s) return NULL;
    size_t p = 0;
    for (int i = 0; i < r->n; i++) {
        int64_t x = (int64_t)r->counts[i];
        if (i > 2) x -= (int64_t)r->counts[i - 2];
        bool more = true;
        while (more) {
            int c = (int)(x & 0x1f);
            x >>= 5; /* arithmetic: -1 stays -1 (gcc/clang, as pycocotools' long) */
            more = (c & 0x10) ? x != -1 : x != 0;
            if (more) c |= 0x20;
            s[p++] = (char)(c + 48);
        }
    }
    s[p] = 0;
    return s;
}

// Reads one value of the counts string at s[*p]; fails on bad characters, a missing
// final chunk or more chunks than a 35-bit value needs.
static int rle_read_value(const char *s, size_t *p, int64_t *out) {
    int64_t x = 0;
    for (int k = 0;; k++) {
        if (k >= RLE_MAX_CHUNKS)
            return s2_err(SAM2C_ERR_FORMAT, "RLE string: value too long at offset %zu", *p);
        unsigned char ch = (unsigned char)s[*p];
        if (ch == 0) return s2_err(SAM2C_ERR_FORMAT, "RLE string: unterminated value at the end");
        if (ch < 48 || ch > 111)
            return s2_err(SAM2C_ERR_FORMAT, "RLE string: bad character 0x%02x at offset %zu",
                          ch, *p);
        int c = ch - 48;
        x |= (int64_t)(c & 0x1f) << (5 * k);
        (*p)++;
        if (!(c & 0x20)) {
            if (c & 0x10) x -= (int64_t)1 << (5 * (k + 1)); /* sign extension */
            *out = x;
            return SAM2C_OK;
        }
    }
}

// ref: pycocotools maskApi.c rleFrString, plus validation of every run and the total
int s2_rle_from_string(const char *s, int h, int w, s2_rle *out) {
    memset(out, 0, sizeof *out);
    uint64_t hw;
    S2_CHECK(check_hw(h, w, &hw, "RLE string"));
    if (!s) return s2_err(SAM2C_ERR_ARG, "RLE string: missing");
    size_t len = strlen(s);
    if (len > (size_t)INT32_MAX) return s2_err(SAM2C_ERR_LIMIT, "RLE string: too long");
    uint32_t *c = s2_malloc((len ? len : 1) * sizeof *c);
    if (!c) return SAM2C_ERR_NOMEM;
    size_t p = 0;
    int m = 0;
    uint64_t total = 0;
    while (s[p]) {
        int64_t x = 0;
        int rc = rle_read_value(s, &p, &x);
        if (rc == SAM2C_OK && m > 2) x += c[m - 2];
        if (rc == SAM2C_OK && (x < 0 || x > (int64_t)UINT32_MAX))
            rc = s2_err(SAM2C_ERR_FORMAT, "RLE string: run %d out of range (%lld)", m, (long long)x);
        if (rc == SAM2C_OK && (total += (uint64_t)x) > hw)
            rc = s2_err(SAM2C_ERR_FORMAT, "RLE string: runs exceed %d x %d pixels", h, w);
        if (rc != SAM2C_OK) {
            free(c);
            return rc;
        }
        c[m++] = (uint32_t)x;
    }
    if (total != hw) {
        free(c);
        return s2_err(SAM2C_ERR_FORMAT, "RLE string: runs sum to %llu, expected %d x %d = %llu",
                      (unsigned long long)total, h, w, (unsigned long long)hw);
    }
    rle_set(out, h, w, c, m);
    return SAM2C_OK;
}

// Uncompressed COCO counts, each run and the total checked.
int s2_rle_from_counts(const int64_t *counts, int n, int h, int w, s2_rle *out) {
    memset(out, 0, sizeof *out);
    uint64_t hw;
    S2_CHECK(check_hw(h, w, &hw, "RLE counts"));
    if (n < 0 || (n > 0 && !counts)) return s2_err(SAM2C_ERR_ARG, "RLE counts: bad list");
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (counts[i] < 0 || counts[i] > (int64_t)UINT32_MAX)
            return s2_err(SAM2C_ERR_FORMAT, "RLE counts: run %d out of range (%lld)", i,
                          (long long)counts[i]);
        total += (uint64_t)counts[i];
    }
    if (total != hw)
        return s2_err(SAM2C_ERR_FORMAT, "RLE counts: runs sum to %llu, expected %d x %d = %llu",
                      (unsigned long long)total, h, w, (unsigned long long)hw);
    uint32_t *c = s2_malloc((size_t)(n ? n : 1) * sizeof *c);
    if (!c) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < n; i++) c[i] = (uint32_t)counts[i];
    rle_set(out, h, w, c, n);
    return SAM2C_OK;
}

// ref: pycocotools maskApi.c rleArea (sum of the foreground runs)
int64_t s2_rle_area(const s2_rle *r) {
    int64_t a = 0;
    for (int i = 1; i < r->n; i += 2) a += r->counts[i];
    return a;
}

// ref: pycocotools maskApi.c rleToBbox (uint arithmetic kept; a trailing background run
// is ignored; a run crossing columns widens the box to the full height)
void s2_rle_bbox(const s2_rle *r, double bb[4]) {
    uint32_t h = (uint32_t)r->h, w = (uint32_t)r->w;
    int m = (r->n / 2) * 2;
    bb[0] = bb[1] = bb[2] = bb[3] = 0;
    if (m == 0 || h == 0 || !r->counts) return;
    uint32_t xs = w, ys = h, xe = 0, ye = 0, xp = 0, cc = 0;
    for (int j = 0; j < m; j++) {
        cc += r->counts[j];
        uint32_t t = cc - (uint32_t)(j % 2), y = t % h, x = (t - y) / h;
        if (j % 2 == 0) xp = x;
        else if (xp < x) ys = 0, ye = h - 1;
        xs = S2_MIN(xs, x);
        xe = S2_MAX(xe, x);
        ys = S2_MIN(ys, y);
        ye = S2_MAX(ye, y);
    }
    bb[0] = xs;
    bb[2] = (double)(uint32_t)(xe - xs + 1);
    bb[1] = ys;
    bb[3] = (double)(uint32_t)(ye - ys + 1);
}

// ref: pycocotools maskApi.c rleIou's run merge (without the crowd rule)
int s2_rle_inter_union(const s2_rle *a, const s2_rle *b, int64_t *inter, int64_t *uni) {
    *inter = *uni = 0;
    if (a->h != b->h || a->w != b->w)
        return s2_err(SAM2C_ERR_SHAPE, "RLE IoU: sizes differ (%d x %d vs %d x %d)", a->h, a->w,
                      b->h, b->w);
    int ia = 0, ib = 0;
    uint64_t ca = a->n > 0 ? a->counts[ia++] : 0, cb = b->n > 0 ? b->counts[ib++] : 0;
    bool va = false, vb = false;
    int64_t i = 0, u = 0;
    for (;;) {
        while (ca == 0 && ia < a->n) ca = a->counts[ia++], va = !va;
        while (cb == 0 && ib < b->n) cb = b->counts[ib++], vb = !vb;
        if (ca == 0 && cb == 0) break;
        /* a list shorter than the other acts as background for the rest */
        uint64_t c = ca == 0 ? cb : cb == 0 ? ca : S2_MIN(ca, cb);
        bool fa = ca > 0 && va, fb = cb > 0 && vb;
        if (fa || fb) u += (int64_t)c;
        if (fa && fb) i += (int64_t)c;
        ca = ca > c ? ca - c : 0;
        cb = cb > c ? cb - c : 0;
    }
    *inter = i;
    *uni = u;
    return SAM2C_OK;
}

/* ---- polygons ---- */

/* Boundary walk state: the previous upsampled point and the y-boundary points found. */
typedef struct poly_walk {
    int h, w;
    bool have_prev;
    int pu, pv;        /* previous point (u, v) of the 5x upsampled boundary */
    uint32_t *a;       /* column-major positions x*h + y of y-boundary points */
    size_t n, cap;
} poly_walk;

// ref: pycocotools maskApi.c rleFrPoly "get points along y-boundary and downsample",
// applied to each consecutive pair (previous point, (u, v)) of the boundary.
static int poly_visit(poly_walk *pw, int u, int v) {
    const double scale = 5;
    int pu = pw->pu, pv = pw->pv;
    bool first = !pw->have_prev;
    pw->pu = u, pw->pv = v, pw->have_prev = true;
    if (first || u == pu) return SAM2C_OK;
    double xd = (double)(u < pu ? u : u - 1);
    xd = (xd + .5) / scale - .5;
    if (floor(xd) != xd || xd < 0 || xd > pw->w - 1) return SAM2C_OK;
    double yd = (double)(v < pv ? v : pv);
    yd = (yd + .5) / scale - .5;
    if (yd < 0) yd = 0;
    else if (yd > pw->h) yd = pw->h;
    yd = ceil(yd);
    if (pw->n == pw->cap) {
        size_t cap = pw->cap ? pw->cap * 2 : 256;
        uint32_t *na = s2_realloc(pw->a, cap * sizeof *na);
        if (!na) return SAM2C_ERR_NOMEM;
        pw->a = na;
        pw->cap = cap;
    }
    pw->a[pw->n++] = (uint32_t)((int64_t)(int)xd * pw->h + (int)yd);
    return SAM2C_OK;
}

// ref: pycocotools maskApi.c rleFrPoly "upsample and get discrete points densely along
// entire boundary": one edge (xs, ys) -> (xe, ye) walked along its major axis.
static int poly_edge(poly_walk *pw, int xs, int ys, int xe, int ye) {
    int dx = abs(xe - xs), dy = abs(ys - ye), t;
    bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
        t = xs, xs = xe, xe = t;
        t = ys, ys = ye, ye = t;
    }
    /* a repeated vertex (dx = dy = 0): pycocotools divides 0 by 0 here; the one point it
     * adds shares u with its neighbours, so its v is never used and 0 is as good */
    double s = dx >= dy ? (dx ? (double)(ye - ys) / dx : 0.0) : (double)(xe - xs) / dy;
    if (dx >= dy) {
        for (int d = 0; d <= dx; d++) {
            t = flip ? dx - d : d;
            S2_CHECK(poly_visit(pw, t + xs, (int)(ys + s * t + .5)));
        }
    } else {
        for (int d = 0; d <= dy; d++) {
            t = flip ? dy - d : d;
            S2_CHECK(poly_visit(pw, (int)(xs + s * t + .5), t + ys));
        }
    }
    return SAM2C_OK;
}

// qsort order of uint32 positions (pycocotools uintCompare).
static int cmp_u32(const void *a, const void *b) {
    uint32_t c = *(const uint32_t *)a, d = *(const uint32_t *)b;
    return c > d ? 1 : c < d ? -1 : 0;
}

// ref: pycocotools maskApi.c rleFrPoly "compute rle encoding given y-boundary points":
// sorted positions -> differences, zero-length runs merged into the previous one.
static int poly_runs(poly_walk *pw, uint32_t hw, s2_rle *out) {
    size_t k = pw->n + 1;
    uint32_t *a = s2_realloc(pw->a, k * sizeof *a);
    if (!a) return SAM2C_ERR_NOMEM;
    pw->a = a;
    a[k - 1] = hw;
    qsort(a, k, sizeof *a, cmp_u32);
    uint32_t p = 0;
    for (size_t j = 0; j < k; j++) {
        uint32_t t = a[j];
        a[j] -= p;
        p = t;
    }
    size_t j = 0, m = 0;
    a[m++] = a[j++]; /* compacts in place: m <= j always */
    while (j < k) {
        if (a[j] > 0) a[m++] = a[j++];
        else if (++j < k) a[m - 1] += a[j++];
    }
    pw->a = NULL;
    rle_set(out, pw->h, pw->w, a, (int)m);
    return SAM2C_OK;
}

// ref: pycocotools maskApi.c rleFrPoly (boundary walked without storing it; coordinates
// bounded so every int conversion is exact; the walk length is capped)
int s2_rle_from_polygon(const double *xy, int n_points, int h, int w, s2_rle *out) {
    memset(out, 0, sizeof *out);
    uint64_t hw;
    S2_CHECK(check_hw(h, w, &hw, "RLE polygon"));
    if (n_points < 0 || (n_points > 0 && !xy))
        return s2_err(SAM2C_ERR_ARG, "RLE polygon: bad point list");
    if (n_points > POLY_MAX_STEPS) return s2_err(SAM2C_ERR_LIMIT, "RLE polygon: too many points");
    for (int j = 0; j < 2 * n_points; j++)
        if (!(fabs(xy[j]) <= POLY_MAX_COORD))
            return s2_err(SAM2C_ERR_FORMAT, "RLE polygon: coordinate %d out of range (%g)", j, xy[j]);
    int64_t steps = 0;
    for (int j = 0; j < n_points; j++) {
        int jn = (j + 1) % n_points;
        int x0 = (int)(5 * xy[2 * j] + .5), x1 = (int)(5 * xy[2 * jn] + .5);
        int y0 = (int)(5 * xy[2 * j + 1] + .5), y1 = (int)(5 * xy[2 * jn + 1] + .5);
        steps += S2_MAX(abs(x0 - x1), abs(y0 - y1)) + 1;
    }
    if (steps > POLY_MAX_STEPS)
        return s2_err(SAM2C_ERR_LIMIT, "RLE polygon: boundary of %lld points is too long",
                      (long long)steps);
    poly_walk pw = {.h = h, .w = w};
    if (h > 0 && w > 0) {
        for (int j = 0; j < n_points; j++) {
            int jn = (j + 1) % n_points;
            int rc = poly_edge(&pw, (int)(5 * xy[2 * j] + .5), (int)(5 * xy[2 * j + 1] + .5),
                               (int)(5 * xy[2 * jn] + .5), (int)(5 * xy[2 * jn + 1] + .5));
            if (rc != SAM2C_OK) {
                free(pw.a);
                return rc;
            }
        }
    }
    int rc = poly_runs(&pw, (uint32_t)hw, out);
    free(pw.a);
    return rc;
}
