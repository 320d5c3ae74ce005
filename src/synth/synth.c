/* Synthetic inspection images: parts described by signed distance functions (negative
 * inside, in pixels), placed with controlled occlusion, shaded with a bevel and soft
 * drop shadows, composited over a bench texture, then seen through the camera model.
 * A pixel belongs to a part's mask when the SDF at its centre is negative; the image
 * uses coverage clamp(0.5 - sdf, 0, 1), so edges are anti-aliased but a pixel is more
 * than half covered exactly when it is in the mask. */
#include "synth/synth_internal.h"
#include "core/s2.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CABLE_SEG 24
#define MAX_HOLES 6

typedef struct part {
    int kind;
    double cx, cy, cs, sn;      /* centre (px) and rotation of the local frame */
    double a, b, c, t;          /* kind-specific sizes (px), see make_part */
    int teeth;                  /* gear */
    int nh;
    double hole[MAX_HOLES][3];  /* extra round holes: local x, y, radius */
    float pts[CABLE_SEG + 1][2];/* cable centre line (image px) */
    double rad;                 /* bounding radius around (cx, cy) */
    int x0, y0, x1, y1;         /* amodal bounding box, inclusive */
    float rgb[3];
    bool metal;
} part;

static const char *const PART_NAMES[S2_PART_COUNT] = {"disc", "plate", "nut", "bracket", "gear", "cable"};
static const char *const BG_NAMES[S2_BG_COUNT] = {"wood", "metal", "conveyor", "speckle", "fabric"};

const char *s2_part_name(int kind) { return kind >= 0 && kind < S2_PART_COUNT ? PART_NAMES[kind] : NULL; }
const char *s2_bg_name(int kind) { return kind >= 0 && kind < S2_BG_COUNT ? BG_NAMES[kind] : NULL; }

// Comma-separated names -> bit mask over a name table.
static int parse_names(const char *list, const char *const *names, int n, const char *what,
                       unsigned *mask) {
    *mask = 0;
    if (!list || !*list) return s2_err(SAM2C_ERR_ARG, "synth: empty list of %ss", what);
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        int k = 0;
        while (k < n && !(strlen(names[k]) == len && !strncasecmp(p, names[k], len))) k++;
        if (k == n) return s2_err(SAM2C_ERR_ARG, "synth: unknown %s '%.*s'", what, (int)len, p);
        *mask |= 1u << k;
        p += len + (p[len] == ',');
    }
    return SAM2C_OK;
}

int s2_part_mask_parse(const char *list, unsigned *mask) {
    return parse_names(list, PART_NAMES, S2_PART_COUNT, "part kind", mask);
}
int s2_bg_mask_parse(const char *list, unsigned *mask) {
    return parse_names(list, BG_NAMES, S2_BG_COUNT, "background", mask);
}

void s2_synth_default(s2_synth_params *p) {
    *p = (s2_synth_params){.w = 256, .h = 256, .min_parts = 1, .max_parts = 4,
                           .kinds = (1u << S2_PART_COUNT) - 1, .backgrounds = (1u << S2_BG_COUNT) - 1,
                           .gradient = 0.25, .gradient_angle = NAN, .vignette = 0.25, .noise = 3,
                           .blur = 0.6, .shadow = 0.45, .p_overlap = 0.5, .antialias = true};
}

int s2_synth_check(const s2_synth_params *p) {
    if (!p) return s2_err(SAM2C_ERR_ARG, "synth: no parameters");
    if (p->w < 32 || p->h < 32 || p->w > 8192 || p->h > 8192)
        return s2_err(SAM2C_ERR_ARG, "synth: image size %dx%d outside 32..8192", p->w, p->h);
    if (p->min_parts < 1 || p->max_parts > 4 || p->min_parts > p->max_parts)
        return s2_err(SAM2C_ERR_ARG, "synth: parts per image %d..%d (need 1 <= min <= max <= 4)",
                      p->min_parts, p->max_parts);
    if (!(p->kinds & ((1u << S2_PART_COUNT) - 1)) || (p->kinds >> S2_PART_COUNT))
        return s2_err(SAM2C_ERR_ARG, "synth: part kinds mask 0x%x selects no known kind", p->kinds);
    if (!(p->backgrounds & ((1u << S2_BG_COUNT) - 1)) || (p->backgrounds >> S2_BG_COUNT))
        return s2_err(SAM2C_ERR_ARG, "synth: background mask 0x%x selects no known surface", p->backgrounds);
    if (!(p->gradient >= 0 && p->gradient < 1) || !(p->vignette >= 0 && p->vignette < 1) ||
        !(p->noise >= 0 && p->noise <= 100) || !(p->blur >= 0 && p->blur <= 5) ||
        !(p->shadow >= 0 && p->shadow <= 1) || !(p->p_overlap >= 0 && p->p_overlap <= 1))
        return s2_err(SAM2C_ERR_ARG, "synth: gradient and vignette in [0, 1), noise in [0, 100], "
                      "blur in [0, 5], shadow and overlap in [0, 1]");
    if (!isnan(p->gradient_angle) && !isfinite(p->gradient_angle))
        return s2_err(SAM2C_ERR_ARG, "synth: gradient angle must be finite or NAN (random)");
    return SAM2C_OK;
}

/* ======================= shapes ======================= */

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

// Rounded box of half sizes (hx, hy) and corner radius r, centred at the origin.
static double sdf_rbox(double x, double y, double hx, double hy, double r) {
    double qx = fabs(x) - hx + r, qy = fabs(y) - hy + r;
    double ox = qx > 0 ? qx : 0, oy = qy > 0 ? qy : 0;
    return sqrt(ox * ox + oy * oy) + fmin(fmax(qx, qy), 0.0) - r;
}

// Regular hexagon of apothem ap (flat sides at y = +-ap).
static double sdf_hex(double x, double y, double ap) {
    const double kx = -0.866025404, ky = 0.5, kz = 0.577350269;
    x = fabs(x), y = fabs(y);
    double d = 2 * fmin(kx * x + ky * y, 0.0);
    x -= d * kx, y -= d * ky;
    x -= clampd(x, -kz * ap, kz * ap), y -= ap;
    return sqrt(x * x + y * y) * (y < 0 ? -1 : 1);
}

// Distance from (x, y) to the arc of radius R between angles a0 < a1 (the angle of
// (x, y) is th, in the same range convention).
static double arc_dist(double x, double y, double r, double th, double R, double a0, double a1) {
    if (th >= a0 && th <= a1) return fabs(r - R);
    double a = th < a0 ? a0 : a1;
    return hypot(x - R * cos(a), y - R * sin(a));
}

// Gear rim: tips of radius a, roots of radius a - c, straight flanks. The point is folded
// into half a tooth pitch (the rim is mirror-symmetric about every tooth centre and gap
// centre), then measured against tip arc, flank and root arc: a true distance, so the
// anti-aliasing band stays one pixel wide.
static double sdf_gear(const part *p, double x, double y) {
    double pitch = 6.283185307179586 / p->teeth, r = sqrt(x * x + y * y), th = atan2(y, x);
    th = fabs(th - pitch * floor(th / pitch + 0.5)); // in [0, pitch / 2]
    double qx = r * cos(th), qy = r * sin(th);
    double Ra = p->a, Rr = p->a - p->c, at = 0.15 * pitch, ab = 0.3 * pitch; // tip / base half-angles
    double ax = Ra * cos(at), ay = Ra * sin(at), bx = Rr * cos(ab) - ax, by = Rr * sin(ab) - ay;
    double h = clampd(((qx - ax) * bx + (qy - ay) * by) / (bx * bx + by * by), 0, 1);
    double d = fmin(hypot(qx - ax - h * bx, qy - ay - h * by),
                    fmin(arc_dist(qx, qy, r, th, Ra, 0, at), arc_dist(qx, qy, r, th, Rr, ab, 0.5 * pitch)));
    bool inside = th <= at ? r < Ra : th >= ab ? r < Rr
                : (bx * (qy - ay) - by * (qx - ax)) * (bx * -ay - by * -ax) > 0; // origin's side of the flank
    return inside ? -d : d;
}

// Distance from (x, y) to the cable centre line minus half its thickness.
static double sdf_cable(const part *p, double x, double y) {
    double best = 1e30;
    for (int i = 0; i < CABLE_SEG; i++) {
        double ax = p->pts[i][0], ay = p->pts[i][1];
        double bx = p->pts[i + 1][0] - ax, by = p->pts[i + 1][1] - ay;
        double px = x - ax, py = y - ay;
        double h = clampd((px * bx + py * by) / (bx * bx + by * by + 1e-12), 0, 1);
        double dx = px - h * bx, dy = py - h * by;
        double d2 = dx * dx + dy * dy;
        if (d2 < best) best = d2;
    }
    return sqrt(best) - 0.5 * p->t;
}

/* The part's signed distance at image point (x, y), px. */
static double part_sdf(const part *p, double x, double y) {
    if (p->kind == S2_PART_CABLE) return sdf_cable(p, x, y);
    double dx = x - p->cx, dy = y - p->cy;
    double lx = p->cs * dx + p->sn * dy, ly = -p->sn * dx + p->cs * dy;
    double r = sqrt(lx * lx + ly * ly), d;
    switch (p->kind) {
    case S2_PART_DISC: d = r - p->a; break;
    case S2_PART_PLATE: d = sdf_rbox(lx, ly, p->a, p->b, p->c); break;
    case S2_PART_NUT: d = sdf_hex(lx, ly, p->a); break;
    case S2_PART_BRACKET: // two arms from the corner (-a/2, -b/2), thickness t
        d = fmin(sdf_rbox(lx, ly + 0.5 * (p->b - p->t), 0.5 * p->a, 0.5 * p->t, 0.15 * p->t),
                 sdf_rbox(lx + 0.5 * (p->a - p->t), ly, 0.5 * p->t, 0.5 * p->b, 0.15 * p->t));
        break;
    default: d = sdf_gear(p, lx, ly); break;
    }
    if (p->kind != S2_PART_PLATE && p->kind != S2_PART_BRACKET && p->b > 0) d = fmax(d, p->b - r); // bore
    for (int i = 0; i < p->nh; i++)
        d = fmax(d, p->hole[i][2] - hypot(lx - p->hole[i][0], ly - p->hole[i][1]));
    return d;
}

// Adds n holes of radius hr on a circle of radius pr, starting at angle a0.
static void bolt_circle(part *p, int n, double pr, double hr, double a0) {
    for (int i = 0; i < n && p->nh < MAX_HOLES; i++, p->nh++) {
        double a = a0 + 6.283185307179586 * i / n;
        p->hole[p->nh][0] = pr * cos(a), p->hole[p->nh][1] = pr * sin(a), p->hole[p->nh][2] = hr;
    }
}

/* Random shape of a kind with bounding radius about R (px); sets p->rad. */
static void make_part(part *p, int kind, double R, double img_min, sy_rng *r) {
    *p = (part){.kind = kind};
    switch (kind) {
    case S2_PART_DISC:
        p->a = R, p->rad = R;
        if (sy_unif(r) < 0.75) p->b = R * sy_range(r, 0.2, 0.55);
        if (p->b < 0.36 * R && sy_unif(r) < 0.6)
            bolt_circle(p, 3 + sy_int(r, 4), 0.5 * (R + fmax(p->b, 0.1 * R)), R * sy_range(r, 0.07, 0.11), 0);
        break;
    case S2_PART_PLATE: {
        double asp = sy_range(r, 0.4, 0.8);
        p->a = R / sqrt(1 + asp * asp), p->b = p->a * asp, p->c = p->b * sy_range(r, 0.1, 0.45);
        p->rad = R;
        double hr = p->b * sy_range(r, 0.12, 0.2);
        int four = sy_unif(r) < 0.6;
        for (int i = 0; i < (four ? 4 : 2); i++, p->nh++) {
            p->hole[p->nh][0] = (i & 1 ? 1 : -1) * (p->a - 2.2 * hr);
            p->hole[p->nh][1] = four ? (i & 2 ? 1 : -1) * (p->b - 2.2 * hr) : 0;
            p->hole[p->nh][2] = hr;
        }
        break;
    }
    case S2_PART_NUT:
        p->a = R * 0.866025404, p->b = R * sy_range(r, 0.38, 0.55), p->rad = R;
        break;
    case S2_PART_BRACKET:
        p->a = 1.41 * R * sy_range(r, 0.85, 1.0), p->b = p->a * sy_range(r, 0.55, 1.0);
        p->t = p->a * sy_range(r, 0.2, 0.3);
        p->rad = 0.5 * hypot(p->a, p->b);
        p->hole[0][0] = 0.25 * p->a, p->hole[0][1] = -0.5 * (p->b - p->t), p->hole[0][2] = 0.22 * p->t;
        p->hole[1][0] = -0.5 * (p->a - p->t), p->hole[1][1] = 0.25 * p->b, p->hole[1][2] = 0.22 * p->t;
        p->nh = 2;
        break;
    case S2_PART_GEAR:
        p->a = R, p->rad = R, p->c = R * sy_range(r, 0.1, 0.17), p->teeth = 8 + sy_int(r, 13);
        p->b = R * sy_range(r, 0.14, 0.28);
        if (sy_unif(r) < 0.5) bolt_circle(p, 4 + sy_int(r, 3), 0.52 * R, 0.11 * R, sy_unif(r));
        break;
    default: { // cable: a cubic Bezier through a box of side ~2R, centred later
        p->t = fmax(3.0, R * sy_range(r, 0.17, 0.27));
        (void)img_min;
        double c[4][2], ang = sy_range(r, 0, 6.283185307179586);
        for (int i = 0; i < 4; i++) {
            double along = (i / 3.0 - 0.5) * 2.2 * R, off = sy_range(r, -0.8, 0.8) * R;
            c[i][0] = along * cos(ang) - off * sin(ang), c[i][1] = along * sin(ang) + off * cos(ang);
        }
        for (int i = 0; i <= CABLE_SEG; i++) {
            double s = (double)i / CABLE_SEG, u = 1 - s;
            double w0 = u * u * u, w1 = 3 * u * u * s, w2 = 3 * u * s * s, w3 = s * s * s;
            p->pts[i][0] = (float)(w0 * c[0][0] + w1 * c[1][0] + w2 * c[2][0] + w3 * c[3][0]);
            p->pts[i][1] = (float)(w0 * c[0][1] + w1 * c[1][1] + w2 * c[2][1] + w3 * c[3][1]);
            p->rad = fmax(p->rad, hypot(p->pts[i][0], p->pts[i][1]) + 0.5 * p->t);
        }
        break;
    }
    }
    double a = sy_range(r, 0, 6.283185307179586);
    p->cs = cos(a), p->sn = sin(a);
}

/* Moves a part to centre (x, y) and sets its pixel box; false when it leaves the
 * image or touches its outermost pixels. */
static bool place_part(part *p, double x, double y, int w, int h) {
    if (p->kind == S2_PART_CABLE)
        for (int i = 0; i <= CABLE_SEG; i++)
            p->pts[i][0] += (float)(x - p->cx), p->pts[i][1] += (float)(y - p->cy);
    p->cx = x, p->cy = y;
    p->x0 = (int)floor(x - p->rad) - 1, p->x1 = (int)ceil(x + p->rad) + 1;
    p->y0 = (int)floor(y - p->rad) - 1, p->y1 = (int)ceil(y + p->rad) + 1;
    return p->x0 >= 1 && p->y0 >= 1 && p->x1 <= w - 2 && p->y1 <= h - 2;
}

/* ======================= placement ======================= */

typedef struct scene {
    int w, h, K;
    part parts[4];
    uint8_t *amodal;      /* (4, h, w) */
    int8_t *top;          /* (h, w): index of the topmost part, -1 for bench */
    int64_t vis[4], area[4];
} scene;

// Rasterises part k's whole shape into its amodal slot; returns its area.
static int64_t raster_amodal(scene *s, int k) {
    const part *p = &s->parts[k];
    uint8_t *m = s->amodal + (size_t)k * s->w * s->h;
    memset(m, 0, (size_t)s->w * s->h);
    int64_t area = 0;
    for (int y = p->y0; y <= p->y1; y++)
        for (int x = p->x0; x <= p->x1; x++)
            if (part_sdf(p, x + 0.5, y + 0.5) < 0) m[(size_t)y * s->w + x] = 1, area++;
    return area;
}

// Puts part k on top if every part keeps enough of itself visible.
static bool try_commit(scene *s, int k, int64_t min_px) {
    const part *p = &s->parts[k];
    const uint8_t *m = s->amodal + (size_t)k * s->w * s->h;
    int64_t lost[4] = {0}, area = 0;
    for (int y = p->y0; y <= p->y1; y++)
        for (int x = p->x0; x <= p->x1; x++) {
            size_t i = (size_t)y * s->w + x;
            if (!m[i]) continue;
            area++;
            if (s->top[i] >= 0) lost[s->top[i]]++;
        }
    if (area < min_px) return false;
    for (int j = 0; j < k; j++) {
        int64_t v = s->vis[j] - lost[j];
        if (v < min_px || v < 0.35 * s->area[j]) return false;
    }
    for (int j = 0; j < k; j++) s->vis[j] -= lost[j];
    s->vis[k] = s->area[k] = area;
    for (int y = p->y0; y <= p->y1; y++)
        for (int x = p->x0; x <= p->x1; x++)
            if (m[(size_t)y * s->w + x]) s->top[(size_t)y * s->w + x] = (int8_t)k;
    return true;
}

// A kind from the allowed mask.
static int pick_kind(unsigned kinds, sy_rng *r) {
    int n = 0, opts[S2_PART_COUNT];
    for (int k = 0; k < S2_PART_COUNT; k++)
        if (kinds & (1u << k)) opts[n++] = k;
    return opts[sy_int(r, n)];
}

/* Places up to K parts; true when at least min_parts made it. */
static bool place_all(scene *s, const s2_synth_params *prm, int K, sy_rng *r) {
    double mn = S2_MIN(s->w, s->h);
    int64_t min_px = S2_MAX(12, (int64_t)(0.004 * s->w * s->h));
    s->K = 0;
    memset(s->top, -1, (size_t)s->w * s->h);
    for (int k = 0; k < K; k++) {
        bool ok = false;
        double shrink = 1;
        for (int tries = 0; tries < 40 && !ok; tries++, shrink *= 0.96) {
            part *p = &s->parts[k];
            double R = mn * sy_range(r, 0.11, 0.23) * (K >= 3 ? 0.85 : 1.0) * shrink;
            make_part(p, pick_kind(prm->kinds, r), R, mn, r);
            double x, y;
            if (k > 0 && sy_unif(r) < prm->p_overlap) { // lean on an earlier part
                const part *q = &s->parts[sy_int(r, k)];
                double a = sy_range(r, 0, 6.283185307179586), d = (q->rad + p->rad) * sy_range(r, 0.5, 0.95);
                x = q->cx + d * cos(a), y = q->cy + d * sin(a);
            } else {
                x = sy_range(r, p->rad + 2, s->w - p->rad - 3), y = sy_range(r, p->rad + 2, s->h - p->rad - 3);
            }
            if (!place_part(p, x, y, s->w, s->h)) continue;
            raster_amodal(s, k);
            ok = try_commit(s, k, min_px);
        }
        if (!ok) break;
        s->K = k + 1;
    }
    return s->K >= prm->min_parts;
}

/* ======================= painting ======================= */

/* Part colours: metals (brushed, glinting) and paints; cables get insulation colours. */
static void pick_colour(part *p, const float bg[3], sy_rng *r) {
    static const float metal[6][3] = {{178, 181, 186}, {110, 112, 118}, {192, 158, 78},
                                      {188, 112, 72}, {208, 188, 98}, {64, 64, 68}};
    static const float paint[5][3] = {{178, 48, 42}, {48, 84, 168}, {62, 142, 74}, {218, 124, 38},
                                      {218, 218, 210}};
    static const float insul[6][3] = {{38, 38, 42}, {175, 40, 35}, {40, 70, 165}, {205, 175, 45},
                                      {95, 150, 60}, {225, 120, 40}};
    float best = -1;
    for (int tries = 0; tries < 8; tries++) {
        const float *c; bool metal_ = false;
        if (p->kind == S2_PART_CABLE) c = insul[sy_int(r, 6)];
        else if (sy_unif(r) < 0.6) c = metal[sy_int(r, 6)], metal_ = true;
        else c = paint[sy_int(r, 5)];
        float d = 0, jit = (float)sy_range(r, 0.9, 1.08), rgb[3];
        for (int k = 0; k < 3; k++) rgb[k] = fminf(235, c[k] * jit), d += (rgb[k] - bg[k]) * (rgb[k] - bg[k]);
        if (d > best) best = d, memcpy(p->rgb, rgb, sizeof rgb), p->metal = metal_;
        if (d > 70 * 70) break;
    }
}

typedef struct light { double lx, ly, off, soft, strength; } light;

// Darkens what lies under part p's shadow (its shape shifted away from the light).
static void paint_shadow(float *img, int w, int h, const part *p, const light *L) {
    double ox = -L->lx * L->off, oy = -L->ly * L->off, m = 2 * L->soft + 1;
    int x0 = S2_MAX(0, (int)floor(p->x0 + ox - m)), x1 = S2_MIN(w - 1, (int)ceil(p->x1 + ox + m));
    int y0 = S2_MAX(0, (int)floor(p->y0 + oy - m)), y1 = S2_MIN(h - 1, (int)ceil(p->y1 + oy + m));
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            double d = part_sdf(p, x + 0.5 - ox, y + 0.5 - oy);
            double a = L->strength * clampd((L->soft - d) / (2 * L->soft), 0, 1);
            float *px = img + ((size_t)y * w + x) * 3;
            for (int k = 0; k < 3; k++) px[k] = (float)(px[k] * (1 - a));
        }
}

// Shade of a part pixel: broad falloff, bevel lit from the light side, metal glint.
static double part_shade(const part *p, double x, double y, double d, const light *L, uint32_t tex) {
    double bw = p->kind == S2_PART_CABLE ? 0.5 * p->t : fmax(1.5, 0.08 * p->rad);
    double e = -d, q = 1 - clampd(e / bw, 0, 1);
    double tl = ((x - p->cx) * L->lx + (y - p->cy) * L->ly) / p->rad;
    double sh = 1 + 0.10 * tl;
    if (q > 0) { // outward normal from central differences of the SDF
        double nx = part_sdf(p, x + 0.5, y) - part_sdf(p, x - 0.5, y);
        double ny = part_sdf(p, x, y + 0.5) - part_sdf(p, x, y - 0.5);
        double nn = sqrt(nx * nx + ny * ny) + 1e-9, facing = (nx * L->lx + ny * L->ly) / nn;
        sh += 0.35 * facing * q - 0.2 * q * q;
        if (p->metal && facing > 0) sh += 0.35 * pow(facing, 4) * q;
    }
    if (p->kind == S2_PART_NUT || p->kind == S2_PART_GEAR) { // chamfer ring / hub
        double r = hypot(x - p->cx, y - p->cy), rr = p->kind == S2_PART_NUT ? 0.93 * p->a : 0.45 * p->a;
        double s = clampd((r - rr) / 1.5 + 0.5, 0, 1);
        sh *= p->kind == S2_PART_NUT ? 1 - 0.12 * s : 1 + 0.08 * (1 - s);
    }
    if (p->metal) { // brushing along the part's local x axis
        double lx = p->cs * (x - p->cx) + p->sn * (y - p->cy), ly = -p->sn * (x - p->cx) + p->cs * (y - p->cy);
        sh *= 1 + 0.12 * (sy_fbm((float)(lx / 25 + 500), (float)(ly / 0.8 + 500), tex, 2) - 0.5);
    }
    return sh;
}

// Composites part p over img with anti-aliased (or hard) coverage.
static void paint_part(float *img, int w, const part *p, const light *L, bool aa, uint32_t tex) {
    for (int y = p->y0; y <= p->y1; y++)
        for (int x = p->x0; x <= p->x1; x++) {
            double cx = x + 0.5, cy = y + 0.5, d = part_sdf(p, cx, cy);
            double a = aa ? clampd(0.5 - d, 0, 1) : d < 0;
            if (a <= 0) continue;
            double sh = part_shade(p, cx, cy, d, L, tex);
            float *px = img + ((size_t)y * w + x) * 3;
            for (int k = 0; k < 3; k++) px[k] = (float)(px[k] * (1 - a) + a * p->rgb[k] * sh);
        }
}

// Mean colour of the bench (for choosing contrasting part colours).
static void mean_rgb(const float *img, size_t n, float out[3]) {
    double s[3] = {0};
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 3; k++) s[k] += img[i * 3 + k];
    for (int k = 0; k < 3; k++) out[k] = (float)(s[k] / (double)n);
}

/* ======================= one image ======================= */

// Allocates the output and the scratch of one image.
static int sample_alloc(s2_synth_sample *o, scene *s, float **img, float **tmp, int w, int h) {
    size_t n = (size_t)w * h;
    *o = (s2_synth_sample){.w = w, .h = h};
    o->rgb = s2_malloc(n * 3), o->amodal = s2_calloc(4, n), o->masks = s2_calloc(4, n);
    s->top = s2_malloc(n), *img = s2_malloc(n * 3 * sizeof(float));
    *tmp = s2_malloc((size_t)(h + 1) * (w + 30) * 3 * sizeof(float)); /* blur scratch */
    s->w = w, s->h = h, s->amodal = o->amodal;
    if (o->rgb && o->amodal && o->masks && s->top && *img && *tmp) return SAM2C_OK;
    return SAM2C_ERR_NOMEM;
}

// Picks one of the allowed bench surfaces.
static int pick_bg(unsigned mask, sy_rng *r) {
    int n = 0, opts[S2_BG_COUNT];
    for (int k = 0; k < S2_BG_COUNT; k++)
        if (mask & (1u << k)) opts[n++] = k;
    return opts[sy_int(r, n)];
}

// Placement first (masks), then bench, shadows and parts bottom to top, then camera; each
// stage draws from its own stream of the seed.
int s2_synth_generate(const s2_synth_params *p, uint64_t seed, s2_synth_sample *out) {
    if (!out) return s2_err(SAM2C_ERR_ARG, "synth: no output");
    *out = (s2_synth_sample){0};
    S2_CHECK(s2_synth_check(p));
    scene s = {0};
    float *img = NULL, *tmp = NULL;
    int w = p->w, h = p->h, rc = sample_alloc(out, &s, &img, &tmp, w, h);
    sy_rng rp = sy_stream(seed, 1), rb = sy_stream(seed, 2), rl = sy_stream(seed, 3), rc_ = sy_stream(seed, 4);
    int K = p->min_parts + sy_int(&rp, p->max_parts - p->min_parts + 1), placed = 0;
    for (int attempt = 0; rc == SAM2C_OK && attempt < 8 && !placed; attempt++)
        placed = place_all(&s, p, K, &rp);
    if (rc == SAM2C_OK && !placed)
        rc = s2_err(SAM2C_ERR_ARG, "synth: could not fit %d parts into %dx%d", p->min_parts, w, h);
    if (rc == SAM2C_OK) {
        out->background = pick_bg(p->backgrounds, &rb);
        sy_background(img, w, h, out->background, &rb);
        float bg[3];
        mean_rgb(img, (size_t)w * h, bg);
        double la = sy_range(&rl, 0, 6.283185307179586), mn = S2_MIN(w, h);
        light L = {cos(la), sin(la), mn * sy_range(&rl, 0.012, 0.03), 0.01 * mn + 1,
                   p->shadow * sy_range(&rl, 0.8, 1.1)};
        out->gradient_angle = isnan(p->gradient_angle) ? sy_range(&rl, 0, 360) : p->gradient_angle;
        for (int k = 0; k < s.K; k++) {
            pick_colour(&s.parts[k], bg, &rc_);
            if (L.strength > 0) paint_shadow(img, w, h, &s.parts[k], &L);
            paint_part(img, w, &s.parts[k], &L, p->antialias, (uint32_t)sy_next(&rc_));
            out->kind[k] = s.parts[k].kind;
        }
        out->n = s.K;
        memset(out->amodal + (size_t)s.K * w * h, 0, (size_t)(4 - s.K) * w * h); // failed tries
        for (size_t i = 0; i < (size_t)w * h; i++) // visible = topmost
            if (s.top[i] >= 0) out->masks[(size_t)s.top[i] * w * h + i] = 1;
        sy_camera(img, tmp, w, h, p, out->gradient_angle, seed, out->rgb);
    }
    free(s.top), free(img), free(tmp);
    if (rc < 0) s2_synth_free(out);
    return rc;
}

void s2_synth_free(s2_synth_sample *s) {
    if (!s) return;
    free(s->rgb), free(s->masks), free(s->amodal);
    *s = (s2_synth_sample){0};
}
