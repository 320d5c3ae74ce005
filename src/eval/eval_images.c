/* Image mask evaluation: per-mask IoU (J) and boundary F (DAVIS / SA-V rules) between
 * two folders of PNG masks (matched by relative path) or two COCO JSON files (matched by
 * image_id, category_id and order). Pairs run on the OpenMP team. */
#include "eval/eval_internal.h"
#include "core/s2.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* First failure of a parallel loop (lowest item index wins), with its message. */
typedef struct perr { int idx, rc; char msg[320]; } perr;

/* Keeps the failure of the lowest item index with this thread's message. */
static void perr_set(perr *e, int idx, int rc) {
#pragma omp critical(s2_eval_images_err)
    {
        if (e->rc == 0 || idx < e->idx) {
            e->idx = idx;
            e->rc = rc;
            snprintf(e->msg, sizeof e->msg, "%s", sam2c_last_error());
        }
    }
}

/* Progress from the calling thread (team thread 0) only. */
static void tick(const s2_eval_opts *o, int *done, int total) {
    int dn;
#pragma omp atomic capture
    dn = ++*done;
    if (o->progress && omp_get_thread_num() == 0) o->progress(o->user, dn, total);
}

/* Means and overall IoU of the filled pairs. */
static int finish(s2_eval_images_result *r) {
    double *v = s2_malloc(sizeof(double) * (size_t)(r->n ? r->n : 1));
    if (!v) return SAM2C_ERR_NOMEM;
    int64_t in = 0, un = 0;
    for (int i = 0; i < r->n; i++) {
        v[i] = r->pairs[i].iou;
        in += r->pairs[i].inter;
        un += r->pairs[i].uni;
    }
    r->mean_iou = s2e_mean(v, r->n);
    for (int i = 0; i < r->n; i++) v[i] = r->pairs[i].f;
    r->mean_f = s2e_mean(v, r->n);
    r->overall_iou = un ? (double)in / (double)un : 1.0;
    free(v);
    return SAM2C_OK;
}

void s2_eval_images_free(s2_eval_images_result *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) free(r->pairs[i].name);
    free(r->pairs);
    memset(r, 0, sizeof *r);
}

/* ============================== folders ============================== */

typedef struct namelist { char **v; int n, cap; } namelist;

/* Appends an owned string (NULL: out of memory). */
static int names_push(namelist *l, char *s) {
    if (!s) return SAM2C_ERR_NOMEM;
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 64;
        char **nv = s2_realloc(l->v, sizeof(char *) * (size_t)nc);
        if (!nv) { free(s); return SAM2C_ERR_NOMEM; }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = s;
    return SAM2C_OK;
}

/* Every *.png under root/rel (relative paths, depth-first in sorted order). */
static int collect_pngs(const char *root, const char *rel, int depth, namelist *out) {
    if (depth > 16) return s2_err(SAM2C_ERR_LIMIT, "%s/%s: folders nested too deep", root, rel);
    char *dir = rel[0] ? s2e_join(root, rel) : s2_strdup(root);
    if (!dir) return SAM2C_ERR_NOMEM;
    char **files = NULL, **dirs = NULL;
    int nf = 0, nd = 0;
    int rc = s2e_list_dir(dir, S2E_FILES, ".png", &files, &nf);
    if (rc >= 0) rc = s2e_list_dir(dir, S2E_DIRS, NULL, &dirs, &nd);
    for (int i = 0; rc >= 0 && i < nf; i++)
        rc = names_push(out, rel[0] ? s2e_join(rel, files[i]) : s2_strdup(files[i]));
    for (int i = 0; rc >= 0 && i < nd; i++) {
        char *sub = rel[0] ? s2e_join(rel, dirs[i]) : s2_strdup(dirs[i]);
        rc = sub ? collect_pngs(root, sub, depth + 1, out) : SAM2C_ERR_NOMEM;
        free(sub);
    }
    s2e_free_names(files, nf);
    s2e_free_names(dirs, nd);
    free(dir);
    return rc;
}

/* strcmp order, as Python sorts str. */
static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A PNG as a 0/1 mask (nonzero label = foreground). */
static int load_mask(const char *path, uint8_t **m, int *w, int *h) {
    uint32_t *lab = NULL;
    size_t cap = 0;
    S2_CHECK(s2e_png_labels(path, &lab, &cap, w, h));
    size_t n = (size_t)*w * *h;
    *m = s2_malloc(n ? n : 1);
    if (!*m) { free(lab); return SAM2C_ERR_NOMEM; }
    for (size_t i = 0; i < n; i++) (*m)[i] = lab[i] != 0;
    free(lab);
    return SAM2C_OK;
}

/* One GT PNG against its prediction (absent: empty). */
static int eval_png_pair(const char *gt_dir, const char *pred_dir, const char *rel, double th,
                         s2_eval_pair *p) {
    char *gp = s2e_join(gt_dir, rel), *pp = s2e_join(pred_dir, rel);
    uint8_t *g = NULL, *q = NULL;
    int gw = 0, gh = 0, pw = 0, ph = 0, rc = (!gp || !pp) ? SAM2C_ERR_NOMEM : SAM2C_OK;
    bool missing = rc >= 0 && !s2e_is_file(pp);
    if (rc >= 0) rc = load_mask(gp, &g, &gw, &gh);
    if (rc >= 0 && !missing) rc = load_mask(pp, &q, &pw, &ph);
    if (rc >= 0 && missing) {
        q = s2_calloc((size_t)gw * gh + 1, 1);
        pw = gw, ph = gh;
        if (!q) rc = SAM2C_ERR_NOMEM;
    }
    if (rc >= 0 && (gw != pw || gh != ph))
        rc = s2_err(SAM2C_ERR_SHAPE, "%s is %dx%d but %s is %dx%d", pp, pw, ph, gp, gw, gh);
    if (rc >= 0) rc = s2_eval_mask_pair(g, q, gh, gw, th, p);
    if (rc >= 0) {
        p->missing_pred = missing;
        p->name = s2_strdup(rel);
        if (!p->name) rc = SAM2C_ERR_NOMEM;
    }
    free(gp);
    free(pp);
    free(g);
    free(q);
    return rc;
}

int s2_eval_images_dirs(const char *gt_dir, const char *pred_dir, const s2_eval_opts *o,
                        s2_eval_images_result *out) {
    if (!out) return s2_err(SAM2C_ERR_ARG, "image eval: no result");
    memset(out, 0, sizeof *out);
    if (!gt_dir || !pred_dir) return s2_err(SAM2C_ERR_ARG, "image eval: NULL folder");
    s2_eval_opts def;
    if (!o) { s2_eval_opts_default(&def); o = &def; }
    namelist gl = {0}, pl = {0};
    int rc = collect_pngs(gt_dir, "", 0, &gl);
    if (rc >= 0) rc = collect_pngs(pred_dir, "", 0, &pl);
    if (rc >= 0 && gl.n == 0) rc = s2_err(SAM2C_ERR_MISSING, "%s: no PNG masks", gt_dir);
    if (rc >= 0) {
        qsort(gl.v, (size_t)gl.n, sizeof(char *), cmp_name);
        qsort(pl.v, (size_t)pl.n, sizeof(char *), cmp_name);
        out->pairs = s2_calloc((size_t)gl.n, sizeof(s2_eval_pair));
        if (!out->pairs) rc = SAM2C_ERR_NOMEM;
    }
    if (rc >= 0) {
        perr e = {0};
        int done = 0;
        out->n = gl.n;
#pragma omp parallel for schedule(dynamic, 4)
        for (int i = 0; i < gl.n; i++) {
            int r = eval_png_pair(gt_dir, pred_dir, gl.v[i], o->boundary_th, &out->pairs[i]);
            if (r < 0) perr_set(&e, i, r);
            tick(o, &done, gl.n);
        }
        if (e.rc < 0) rc = s2_err(e.rc, "%s", e.msg);
    }
    for (int i = 0; rc >= 0 && i < out->n; i++) out->n_missing_pred += out->pairs[i].missing_pred;
    for (int i = 0, j = 0; rc >= 0 && i < pl.n; i++) { /* both lists sorted */
        while (j < gl.n && strcmp(gl.v[j], pl.v[i]) < 0) j++;
        if (j >= gl.n || strcmp(gl.v[j], pl.v[i]) != 0) out->n_extra_pred++;
    }
    if (rc >= 0) rc = finish(out);
    if (rc >= 0 && o->progress) o->progress(o->user, gl.n, gl.n);
    s2e_free_names(gl.v, gl.n);
    s2e_free_names(pl.v, pl.n);
    if (rc < 0) s2_eval_images_free(out);
    return rc;
}

/* ============================== COCO pairs ============================== */

typedef struct pann { int64_t img, cat; int order; const s2_json *a; } pann;
typedef struct ppair { const pann *g, *p; int k; } ppair;

/* By image id, category id, then file order. */
static int cmp_pann(const void *pa, const void *pb) {
    const pann *a = pa, *b = pb;
    if (a->img != b->img) return a->img < b->img ? -1 : 1;
    if (a->cat != b->cat) return a->cat < b->cat ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* Annotation list of a dataset object, or the list itself (results). */
static const s2_json *ann_list(const s2_json *doc, const char *name, int *rc) {
    const s2_json *l = doc->type == S2_JOBJ ? s2_json_get(doc, "annotations") : doc;
    *rc = SAM2C_OK;
    if (!l || l->type != S2_JARR)
        *rc = s2_err(SAM2C_ERR_FORMAT, "%s: no annotation list", name);
    return l;
}

/* (image_id, category_id, order) keys of a list, sorted. */
static int keyed(const s2_json *l, const char *name, pann **out) {
    *out = s2_malloc(sizeof(pann) * (size_t)(l->n ? l->n : 1));
    if (!*out) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < l->n; i++) {
        pann *p = &(*out)[i];
        p->order = i;
        p->a = &l->items[i];
        if (!s2e_json_id(p->a, "image_id", &p->img) || !s2e_json_id(p->a, "category_id", &p->cat)) {
            free(*out);
            return s2_err(SAM2C_ERR_FORMAT, "%s: annotation %d needs integer image_id and "
                          "category_id", name, i);
        }
    }
    qsort(*out, (size_t)l->n, sizeof(pann), cmp_pann);
    return SAM2C_OK;
}

/* Pairs the k-th GT and k-th prediction of every (image_id, category_id). */
static int make_pairs(const pann *g, int ng, const pann *p, int np, ppair **out, int *n) {
    *out = s2_malloc(sizeof(ppair) * (size_t)(ng + np + 1));
    if (!*out) return SAM2C_ERR_NOMEM;
    int i = 0, j = 0, m = 0, k = 0;
    int64_t pimg = 0, pcat = 0;
    while (i < ng || j < np) {
        const pann *a = i < ng ? &g[i] : NULL, *b = j < np ? &p[j] : NULL;
        int c = !a ? 1 : !b ? -1 : a->img != b->img ? (a->img < b->img ? -1 : 1)
                                 : a->cat != b->cat ? (a->cat < b->cat ? -1 : 1) : 0;
        ppair *q = &(*out)[m++];
        q->g = c <= 0 ? a : NULL;
        q->p = c >= 0 ? b : NULL;
        const pann *key = q->g ? q->g : q->p;
        k = (m > 1 && key->img == pimg && key->cat == pcat) ? k + 1 : 0;
        q->k = k;
        pimg = key->img;
        pcat = key->cat;
        i += c <= 0;
        j += c >= 0;
    }
    *n = m;
    return SAM2C_OK;
}

/* Decoded 0/1 mask of one annotation (image size from the GT images for polygons). */
static int ann_mask(const pann *a, const s2e_idmap *imap, const s2_json *imgs, const char *name,
                    uint8_t **m, int *h, int *w) {
    int64_t ih = -1, iw = -1;
    int pos = s2e_idmap_find(imap, a->img);
    if (pos >= 0) {
        const s2_json *im = &imgs->items[imap->idx[pos]];
        if (!s2_json_int(im, "height", &ih) || ih > 1000000) ih = -1;
        if (!s2_json_int(im, "width", &iw) || iw > 1000000) iw = -1;
    }
    char what[96];
    snprintf(what, sizeof what, "%s: annotation %d", name, a->order);
    s2_rle r;
    S2_CHECK(s2e_seg_to_rle(s2_json_get(a->a, "segmentation"), (int)ih, (int)iw, what, &r));
    *h = r.h;
    *w = r.w;
    *m = s2_malloc((size_t)r.h * r.w + 1);
    int rc = *m ? s2_rle_decode(&r, *m) : SAM2C_ERR_NOMEM;
    s2_rle_free(&r);
    if (rc < 0) { free(*m); *m = NULL; }
    return rc;
}

typedef struct cocoimgs { const s2_json *imgs; s2e_idmap imap; const char *gname, *pname; } cocoimgs;

/* One COCO pair: decode, fill in an empty side, J and F. */
static int eval_coco_pair(const ppair *q, const cocoimgs *ci, double th, s2_eval_pair *out) {
    uint8_t *g = NULL, *p = NULL;
    int gh = 0, gw = 0, ph = 0, pw = 0, rc = SAM2C_OK;
    if (q->g) rc = ann_mask(q->g, &ci->imap, ci->imgs, ci->gname, &g, &gh, &gw);
    if (rc >= 0 && q->p) rc = ann_mask(q->p, &ci->imap, ci->imgs, ci->pname, &p, &ph, &pw);
    if (rc >= 0 && !q->g) { gh = ph; gw = pw; g = s2_calloc((size_t)gh * gw + 1, 1); }
    if (rc >= 0 && !q->p) { ph = gh; pw = gw; p = s2_calloc((size_t)ph * pw + 1, 1); }
    if (rc >= 0 && (!g || !p)) rc = SAM2C_ERR_NOMEM;
    const pann *key = q->g ? q->g : q->p;
    if (rc >= 0 && (gh != ph || gw != pw))
        rc = s2_err(SAM2C_ERR_SHAPE, "image %lld category %lld #%d: GT mask %dx%d, prediction %dx%d",
                    (long long)key->img, (long long)key->cat, q->k, gw, gh, pw, ph);
    if (rc >= 0) rc = s2_eval_mask_pair(g, p, gh, gw, th, out);
    if (rc >= 0) {
        char nm[80];
        snprintf(nm, sizeof nm, "%lld/%lld/%d", (long long)key->img, (long long)key->cat, q->k);
        out->missing_pred = !q->p;
        out->extra_pred = !q->g;
        if (!(out->name = s2_strdup(nm))) rc = SAM2C_ERR_NOMEM;
    }
    free(g);
    free(p);
    return rc;
}

/* Parses both files, pairs, evaluates (parallel). */
static int coco_pairs_run(const s2_json *gt, const s2_json *pr, const char *gname,
                          const char *pname, const s2_eval_opts *o, s2_eval_images_result *out) {
    int rc;
    const s2_json *gl = ann_list(gt, gname, &rc);
    S2_CHECK(rc);
    const s2_json *plist = ann_list(pr, pname, &rc);
    S2_CHECK(rc);
    cocoimgs ci = {.gname = gname, .pname = pname};
    static const s2_json empty = {.type = S2_JARR};
    ci.imgs = s2_json_get(gt, "images");
    if (!ci.imgs || ci.imgs->type != S2_JARR) ci.imgs = &empty;
    int64_t *ids = s2_malloc(sizeof(int64_t) * (size_t)(ci.imgs->n + 1));
    if (!ids) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < ci.imgs->n; i++)
        if (!s2e_json_id(&ci.imgs->items[i], "id", &ids[i])) ids[i] = INT64_MIN;
    rc = s2e_idmap_build(&ci.imap, ids, ci.imgs->n);
    free(ids);
    S2_CHECK(rc);
    pann *ga = NULL, *pa = NULL;
    ppair *pp = NULL;
    int np = 0;
    rc = keyed(gl, gname, &ga);
    if (rc >= 0) rc = keyed(plist, pname, &pa);
    if (rc >= 0) rc = make_pairs(ga, gl->n, pa, plist->n, &pp, &np);
    if (rc >= 0 && !(out->pairs = s2_calloc((size_t)(np ? np : 1), sizeof(s2_eval_pair))))
        rc = SAM2C_ERR_NOMEM;
    if (rc >= 0) {
        perr e = {0};
        int done = 0;
        out->n = np;
#pragma omp parallel for schedule(dynamic, 8)
        for (int i = 0; i < np; i++) {
            int r = eval_coco_pair(&pp[i], &ci, o->boundary_th, &out->pairs[i]);
            if (r < 0) perr_set(&e, i, r);
            tick(o, &done, np);
        }
        if (e.rc < 0) rc = s2_err(e.rc, "%s", e.msg);
        if (rc >= 0 && o->progress) o->progress(o->user, np, np);
    }
    for (int i = 0; rc >= 0 && i < out->n; i++) {
        out->n_missing_pred += out->pairs[i].missing_pred;
        out->n_extra_pred += out->pairs[i].extra_pred;
    }
    if (rc >= 0) rc = finish(out);
    free(ga);
    free(pa);
    free(pp);
    s2e_idmap_free(&ci.imap);
    return rc;
}

int s2_eval_images_coco(const char *gt_json, const char *pred_json, const s2_eval_opts *o,
                        s2_eval_images_result *out) {
    if (!out) return s2_err(SAM2C_ERR_ARG, "image eval: no result");
    memset(out, 0, sizeof *out);
    if (!gt_json || !pred_json) return s2_err(SAM2C_ERR_ARG, "image eval: NULL path");
    s2_eval_opts def;
    if (!o) { s2_eval_opts_default(&def); o = &def; }
    s2_json *gt = NULL, *pr = NULL;
    S2_CHECK(s2_json_parse_file(gt_json, NULL, &gt));
    int rc = s2_json_parse_file(pred_json, NULL, &pr);
    if (rc >= 0) rc = coco_pairs_run(gt, pr, gt_json, pred_json, o, out);
    s2_json_free(gt);
    s2_json_free(pr);
    if (rc < 0) s2_eval_images_free(out);
    return rc;
}

/* The k-th annotation of (img, cat) in file order, or NULL. */
static const s2_json *kth_ann(const s2_json *l, int64_t img, int64_t cat, int k) {
    for (int i = 0; l && i < l->n; i++) {
        int64_t a, c;
        if (s2e_json_id(&l->items[i], "image_id", &a) && s2e_json_id(&l->items[i], "category_id", &c) &&
            a == img && c == cat && k-- == 0)
            return &l->items[i];
    }
    return NULL;
}

/* Decoded 0/1 mask of one annotation (NULL ann: none). */
static int decode_ann(const s2_json *ann, int ih, int iw, const char *what, uint8_t **m, int *h, int *w) {
    *m = NULL;
    if (!ann) return SAM2C_OK;
    s2_rle r;
    S2_CHECK(s2e_seg_to_rle(s2_json_get(ann, "segmentation"), ih, iw, what, &r));
    *h = r.h;
    *w = r.w;
    *m = s2_malloc((size_t)r.h * r.w + 1);
    int rc = *m ? s2_rle_decode(&r, *m) : SAM2C_ERR_NOMEM;
    s2_rle_free(&r);
    if (rc < 0) { free(*m); *m = NULL; }
    return rc;
}

int s2_eval_coco_pair_masks(const s2_json *gt, const s2_json *pred, const char *name,
                            uint8_t **gt_mask, uint8_t **pred_mask, int *h, int *w,
                            const char **file_name) {
    long long img, cat;
    int k, rc, pos = 0;
    *gt_mask = *pred_mask = NULL;
    *file_name = NULL;
    if (!gt || !pred || !name || sscanf(name, "%lld/%lld/%d%n", &img, &cat, &k, &pos) != 3 || name[pos] || k < 0)
        return s2_err(SAM2C_ERR_ARG, "'%s' is not an image_id/category_id/k pair name", name ? name : "");
    const s2_json *imgs = s2_json_get(gt, "images"), *gl = ann_list(gt, "ground truth", &rc);
    S2_CHECK(rc);
    const s2_json *pl = ann_list(pred, "predictions", &rc);
    S2_CHECK(rc);
    int64_t ih = -1, iw = -1, id;
    for (int i = 0; imgs && imgs->type == S2_JARR && i < imgs->n; i++)
        if (s2e_json_id(&imgs->items[i], "id", &id) && id == img) {
            if (!s2_json_int(&imgs->items[i], "height", &ih) || ih > 1000000) ih = -1;
            if (!s2_json_int(&imgs->items[i], "width", &iw) || iw > 1000000) iw = -1;
            *file_name = s2_json_str(&imgs->items[i], "file_name");
        }
    int gh = 0, gw = 0, ph = 0, pw = 0;
    rc = decode_ann(kth_ann(gl, img, cat, k), (int)ih, (int)iw, name, gt_mask, &gh, &gw);
    if (rc >= 0) rc = decode_ann(kth_ann(pl, img, cat, k), (int)ih, (int)iw, name, pred_mask, &ph, &pw);
    if (rc >= 0 && !*gt_mask && !*pred_mask) rc = s2_err(SAM2C_ERR_MISSING, "%s: no such pair", name);
    if (rc >= 0 && *gt_mask && *pred_mask && (gh != ph || gw != pw))
        rc = s2_err(SAM2C_ERR_SHAPE, "%s: GT mask %dx%d, prediction %dx%d", name, gw, gh, pw, ph);
    if (rc >= 0) {
        *h = *gt_mask ? gh : ph;
        *w = *gt_mask ? gw : pw;
        uint8_t **empty = *gt_mask ? pred_mask : gt_mask;
        if (!*empty && !(*empty = s2_calloc((size_t)*h * *w + 1, 1))) rc = SAM2C_ERR_NOMEM;
    }
    if (rc < 0) {
        free(*gt_mask);
        free(*pred_mask);
        *gt_mask = *pred_mask = NULL;
    }
    return rc;
}
