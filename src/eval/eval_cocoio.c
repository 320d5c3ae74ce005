/* COCO annotation decoding shared by the COCO evaluations: segmentation -> RLE exactly as
 * pycocotools COCO.annToRLE (polygons merged, 4-number parts read as boxes, uncompressed
 * and compressed RLE with their own size), RLE union, id tables. */
#include "eval/eval_internal.h"
#include "core/s2.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool s2e_json_id(const s2_json *obj, const char *key, int64_t *out) {
    return s2_json_int(obj, key, out);
}

/* ============================== RLE union ============================== */

/* Cursor over alternating runs (background first), skipping zero-length runs. */
typedef struct runcur { const uint32_t *c; int n, i; uint64_t rem; int v; } runcur;

/* Loads the next non-empty run when the current one is used up. */
static void run_fetch(runcur *k) {
    while (k->rem == 0 && k->i < k->n) {
        k->rem = k->c[k->i];
        k->v = k->i & 1;
        k->i++;
    }
}

/* ref: pycocotools maskApi.c rleMerge (intersect = 0), canonical output runs */
int s2e_rle_union(const s2_rle *a, const s2_rle *b, s2_rle *out) {
    memset(out, 0, sizeof *out);
    if (a->h != b->h || a->w != b->w)
        return s2_err(SAM2C_ERR_SHAPE, "RLE union: sizes %dx%d and %dx%d differ", a->w, a->h,
                      b->w, b->h);
    uint32_t *cnt = s2_malloc(sizeof(uint32_t) * ((size_t)a->n + (size_t)b->n + 2));
    if (!cnt) return SAM2C_ERR_NOMEM;
    runcur ka = {a->counts, a->n, 0, 0, 0}, kb = {b->counts, b->n, 0, 0, 0};
    uint64_t total = (uint64_t)a->h * (uint64_t)a->w, done = 0, cc = 0;
    int m = 0, cur = 0;
    while (done < total) {
        run_fetch(&ka);
        run_fetch(&kb);
        if (ka.rem == 0 && kb.rem == 0) break; /* malformed: runs shorter than h*w */
        uint64_t c = ka.rem == 0 ? kb.rem : kb.rem == 0 ? ka.rem : S2_MIN(ka.rem, kb.rem);
        int v = (ka.rem && ka.v) || (kb.rem && kb.v);
        if (v != cur) {
            cnt[m++] = (uint32_t)cc;
            cc = 0;
            cur = v;
        }
        cc += c;
        done += c;
        ka.rem -= ka.rem ? c : 0;
        kb.rem -= kb.rem ? c : 0;
    }
    cnt[m++] = (uint32_t)cc;
    out->h = a->h;
    out->w = a->w;
    out->counts = cnt;
    out->n = m;
    return SAM2C_OK;
}

/* ============================== segmentation ============================== */

/* An empty h x w RLE (one background run). */
static int rle_empty(int h, int w, s2_rle *out) {
    out->h = h;
    out->w = w;
    out->n = 1;
    out->counts = s2_malloc(sizeof(uint32_t));
    if (!out->counts) return SAM2C_ERR_NOMEM;
    out->counts[0] = (uint32_t)((uint64_t)h * (uint64_t)w);
    return SAM2C_OK;
}

/* Reads a JSON array of numbers into a new double array. */
static int read_numbers(const s2_json *arr, const char *what, double **xy, int *n) {
    *xy = s2_malloc(sizeof(double) * (size_t)(arr->n ? arr->n : 1));
    if (!*xy) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < arr->n; i++) {
        if (arr->items[i].type != S2_JNUM || !isfinite(arr->items[i].num)) {
            free(*xy);
            return s2_err(SAM2C_ERR_FORMAT, "%s: polygon coordinate %d is not a number",
                          what, i);
        }
        (*xy)[i] = arr->items[i].num;
    }
    *n = arr->n;
    return SAM2C_OK;
}

/* One polygon part, or a [x, y, w, h] box (pycocotools frBbox: polygon xs,ys,xs,ye,xe,ye,
 * xe,ys), rasterised as frPoly. */
static int part_to_rle(const s2_json *part, bool as_box, int h, int w, const char *what,
                       s2_rle *out) {
    if (part->type != S2_JARR)
        return s2_err(SAM2C_ERR_FORMAT, "%s: segmentation part is not a list", what);
    double *xy = NULL;
    int n = 0;
    S2_CHECK(read_numbers(part, what, &xy, &n));
    int rc;
    if (as_box) {
        if (n != 4) {
            free(xy);
            return s2_err(SAM2C_ERR_FORMAT, "%s: box part with %d numbers", what, n);
        }
        double xs = xy[0], xe = xs + xy[2], ys = xy[1], ye = ys + xy[3];
        double poly[8] = {xs, ys, xs, ye, xe, ye, xe, ys};
        rc = s2_rle_from_polygon(poly, 4, h, w, out);
    } else {
        rc = s2_rle_from_polygon(xy, n / 2, h, w, out);
    }
    free(xy);
    if (rc < 0) return s2_err_prefix(rc, "%s: ", what);
    return rc;
}

/* ref: pycocotools coco.py annToRLE (polygon branch): frPyObjects + merge */
static int polys_to_rle(const s2_json *seg, int h, int w, const char *what, s2_rle *out) {
    if (h <= 0 || w <= 0)
        return s2_err(SAM2C_ERR_FORMAT, "%s: polygon on an image without height/width", what);
    if (seg->n == 0) return rle_empty(h, w, out);
    const s2_json *p0 = &seg->items[0];
    if (p0->type != S2_JARR)
        return s2_err(SAM2C_ERR_FORMAT, "%s: segmentation is not a list of polygons", what);
    if (p0->n < 4)
        return s2_err(SAM2C_ERR_FORMAT, "%s: polygon with %d numbers", what, p0->n);
    bool as_box = p0->n == 4; /* pycocotools reads [[x,y,w,h], ...] as boxes */
    S2_CHECK(part_to_rle(p0, as_box, h, w, what, out));
    for (int i = 1; i < seg->n; i++) {
        s2_rle part, u;
        int rc = part_to_rle(&seg->items[i], as_box, h, w, what, &part);
        if (rc < 0) { s2_rle_free(out); return rc; }
        rc = s2e_rle_union(out, &part, &u);
        s2_rle_free(&part);
        s2_rle_free(out);
        if (rc < 0) return rc;
        *out = u;
    }
    return SAM2C_OK;
}

/* RLE object {"size": [h, w], "counts": "..." | [ints]} with its own size. */
static int rleobj_to_rle(const s2_json *seg, const char *what, s2_rle *out) {
    const s2_json *size = s2_json_get(seg, "size"), *counts = s2_json_get(seg, "counts");
    if (!size || size->type != S2_JARR || size->n != 2 || !counts)
        return s2_err(SAM2C_ERR_FORMAT, "%s: RLE needs \"size\": [h, w] and \"counts\"", what);
    double hd = size->items[0].num, wd = size->items[1].num;
    if (size->items[0].type != S2_JNUM || size->items[1].type != S2_JNUM || hd < 0 ||
        wd < 0 || hd > 1e6 || wd > 1e6 || hd != floor(hd) || wd != floor(wd))
        return s2_err(SAM2C_ERR_FORMAT, "%s: bad RLE size", what);
    int h = (int)hd, w = (int)wd, rc;
    if (counts->type == S2_JSTR) {
        rc = s2_rle_from_string(counts->str, h, w, out);
    } else if (counts->type == S2_JARR) {
        int64_t *c = s2_malloc(sizeof(int64_t) * (size_t)(counts->n ? counts->n : 1));
        if (!c) return SAM2C_ERR_NOMEM;
        for (int i = 0; i < counts->n; i++) {
            const s2_json *v = &counts->items[i];
            if (v->type != S2_JNUM || v->num < 0 || v->num != floor(v->num) || v->num > 4e9) {
                free(c);
                return s2_err(SAM2C_ERR_FORMAT, "%s: RLE count %d is not a count", what, i);
            }
            c[i] = (int64_t)v->num;
        }
        rc = s2_rle_from_counts(c, counts->n, h, w, out);
        free(c);
    } else {
        return s2_err(SAM2C_ERR_FORMAT, "%s: RLE counts must be a string or a list", what);
    }
    if (rc < 0) return s2_err_prefix(rc, "%s: ", what);
    return rc;
}

int s2e_seg_to_rle(const s2_json *seg, int h, int w, const char *what, s2_rle *out) {
    memset(out, 0, sizeof *out);
    if (!seg) return s2_err(SAM2C_ERR_FORMAT, "%s: no segmentation", what);
    if (seg->type == S2_JARR) return polys_to_rle(seg, h, w, what, out);
    if (seg->type == S2_JOBJ) return rleobj_to_rle(seg, what, out);
    return s2_err(SAM2C_ERR_FORMAT, "%s: segmentation must be polygons or RLE", what);
}

/* ============================== id tables ============================== */

typedef struct idpair { int64_t id; int idx; } idpair;

/* By id, then source position (so the last duplicate comes last). */
static int cmp_idpair(const void *a, const void *b) {
    const idpair *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

int s2e_idmap_build(s2e_idmap *m, const int64_t *ids, int n) {
    memset(m, 0, sizeof *m);
    idpair *p = s2_malloc(sizeof(idpair) * (size_t)(n ? n : 1));
    if (!p) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < n; i++) p[i] = (idpair){ids[i], i};
    qsort(p, (size_t)n, sizeof *p, cmp_idpair);
    m->id = s2_malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    m->idx = s2_malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!m->id || !m->idx) {
        free(p);
        s2e_idmap_free(m);
        return SAM2C_ERR_NOMEM;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (k > 0 && m->id[k - 1] == p[i].id) { m->idx[k - 1] = p[i].idx; continue; }
        m->id[k] = p[i].id;
        m->idx[k] = p[i].idx;
        k++;
    }
    m->n = k;
    free(p);
    return SAM2C_OK;
}

int s2e_idmap_find(const s2e_idmap *m, int64_t id) {
    int lo = 0, hi = m->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (m->id[mid] == id) return mid;
        if (m->id[mid] < id) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

void s2e_idmap_free(s2e_idmap *m) {
    free(m->id);
    free(m->idx);
    memset(m, 0, sizeof *m);
}
