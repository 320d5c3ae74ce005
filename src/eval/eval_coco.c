/* COCO instance segmentation mAP: a port of pycocotools COCOeval (iouType 'segm'):
 * loadRes, _prepare, computeIoU (maskApi rleIou with the crowd rule), evaluateImg
 * (greedy matching by score, crowd / ignore / area rules), accumulate (101-point
 * interpolated precision) and summarize (12 stats), with numpy's float semantics.
 * Dimensions: T IoU thresholds, R recall thresholds, K categories, A area ranges,
 * M maxDets, D detections (<= 100 per image and category), G ground truths. */
#include "eval/eval_internal.h"
#include "core/s2.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T = S2_COCO_T, R = S2_COCO_R, A = S2_COCO_A, M = S2_COCO_M };
static const int k_max_dets[M] = {1, 10, 100};
static const double k_area[A][2] = {{0, 1e10}, {0, 1024}, {1024, 9216}, {9216, 1e10}};
enum { CODE_FP = 0, CODE_TP = 1, CODE_IGN = 2 };

/* One GT annotation or detection after _prepare / loadRes. */
typedef struct cann {
    int64_t id;
    int img, cat;      /* positions in the sorted image / category id tables */
    int order;         /* file order */
    double area, score;
    bool crowd;
    s2_rle rle;
} cann;

typedef struct cset {
    s2e_idmap imap, cmap;  /* sorted unique ids; idx = source entry (last duplicate) */
    int *img_h, *img_w;    /* by sorted image position; -1 when absent */
    char **cat_names;      /* by sorted category position */
    cann *gt, *dt;
    int ngt, ndt, nskip;
} cset;

/* evalImgs entry of one (category, image) for all area ranges (maxDet 100). */
typedef struct ccell {
    int k, i;
    int g0, ng, d0, nd;
    int D;               /* kept detections, sorted by score */
    double *scores;      /* (D) */
    uint8_t *code;       /* (A, T, D) CODE_* */
    int npig[A];         /* GT not ignored, per area range */
} ccell;

/* p.iouThrs: np.linspace(.5, 0.95, 10) = i * step + .5, last = .95 exactly. */
static void iou_thresholds(double th[T]) {
    double step = (0.95 - 0.5) / (T - 1);
    for (int i = 0; i < T; i++) {
        volatile double p = (double)i * step; /* no fused multiply-add */
        th[i] = p + 0.5;
    }
    th[T - 1] = 0.95;
}

/* p.recThrs: np.linspace(0, 1, 101) = i * 0.01, last = 1. */
static void rec_thresholds(double rt[R]) {
    double step = 1.0 / (R - 1);
    for (int i = 0; i < R; i++) {
        volatile double p = (double)i * step;
        rt[i] = p + 0.0;
    }
    rt[R - 1] = 1.0;
}

/* Frees everything a cset owns. */
static void cset_free(cset *s) {
    s2e_idmap_free(&s->imap);
    if (s->cat_names)
        for (int k = 0; k < s->cmap.n; k++) free(s->cat_names[k]);
    s2e_idmap_free(&s->cmap);
    free(s->cat_names);
    free(s->img_h);
    free(s->img_w);
    for (int i = 0; i < s->ngt; i++) s2_rle_free(&s->gt[i].rle);
    for (int i = 0; i < s->ndt; i++) s2_rle_free(&s->dt[i].rle);
    free(s->gt);
    free(s->dt);
    memset(s, 0, sizeof *s);
}

/* ============================== loading ============================== */

/* Collects the integer "id" of every object of a list into ids (n entries). */
static int list_ids(const s2_json *list, const char *name, const char *what, int64_t **ids) {
    *ids = s2_malloc(sizeof(int64_t) * (size_t)(list->n ? list->n : 1));
    if (!*ids) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < list->n; i++)
        if (!s2e_json_id(&list->items[i], "id", &(*ids)[i])) {
            free(*ids);
            return s2_err(SAM2C_ERR_FORMAT, "%s: %s[%d] has no integer \"id\"", name, what, i);
        }
    return SAM2C_OK;
}

/* A list member of the dataset object; absent = empty (pycocotools checks presence). */
static const s2_json *dataset_list(const s2_json *ds, const char *key, const char *name,
                                   int *rc) {
    static const s2_json empty = {.type = S2_JARR};
    const s2_json *v = s2_json_get(ds, key);
    *rc = SAM2C_OK;
    if (!v) return &empty;
    if (v->type != S2_JARR) *rc = s2_err(SAM2C_ERR_FORMAT, "%s: \"%s\" is not a list", name, key);
    return v;
}

/* images and categories tables (pycocotools createIndex: the last duplicate id wins). */
static int load_tables(cset *s, const s2_json *gt, const char *name) {
    int rc;
    const s2_json *imgs = dataset_list(gt, "images", name, &rc);
    S2_CHECK(rc);
    const s2_json *cats = dataset_list(gt, "categories", name, &rc);
    S2_CHECK(rc);
    int64_t *ids;
    S2_CHECK(list_ids(imgs, name, "images", &ids));
    rc = s2e_idmap_build(&s->imap, ids, imgs->n);
    free(ids);
    S2_CHECK(rc);
    S2_CHECK(list_ids(cats, name, "categories", &ids));
    rc = s2e_idmap_build(&s->cmap, ids, cats->n);
    free(ids);
    S2_CHECK(rc);
    int ni = s->imap.n, nk = s->cmap.n;
    s->img_h = s2_malloc(sizeof(int) * (size_t)(ni ? ni : 1));
    s->img_w = s2_malloc(sizeof(int) * (size_t)(ni ? ni : 1));
    s->cat_names = s2_calloc((size_t)(nk ? nk : 1), sizeof(char *));
    if (!s->img_h || !s->img_w || !s->cat_names) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < ni; i++) {
        const s2_json *im = &imgs->items[s->imap.idx[i]];
        int64_t h = -1, w = -1;
        if (!s2_json_int(im, "height", &h) || h < 0 || h > 1000000) h = -1;
        if (!s2_json_int(im, "width", &w) || w < 0 || w > 1000000) w = -1;
        s->img_h[i] = (int)h;
        s->img_w[i] = (int)w;
    }
    for (int k = 0; k < nk; k++) {
        const char *nm = s2_json_str(&cats->items[s->cmap.idx[k]], "name");
        if (!(s->cat_names[k] = s2_strdup(nm ? nm : ""))) return SAM2C_ERR_NOMEM;
    }
    return SAM2C_OK;
}

/* Image and category of an annotation: positions, or -1 when unknown. */
static int ann_keys(const cset *s, const s2_json *a, const char *name, const char *what,
                    int i, int *img, int *cat) {
    int64_t iid, cid;
    if (!s2e_json_id(a, "image_id", &iid) || !s2e_json_id(a, "category_id", &cid))
        return s2_err(SAM2C_ERR_FORMAT, "%s: %s[%d] needs integer image_id and category_id",
                      name, what, i);
    *img = s2e_idmap_find(&s->imap, iid);
    *cat = s2e_idmap_find(&s->cmap, cid);
    return SAM2C_OK;
}

/* ref: pycocotools coco.py annToRLE (image size from the GT images) */
static int ann_rle(const cset *s, const s2_json *a, int img, const char *what, s2_rle *out) {
    return s2e_seg_to_rle(s2_json_get(a, "segmentation"), s->img_h[img], s->img_w[img],
                          what, out);
}

/* GT annotations of known images and categories (COCOeval._prepare with useCats). */
static int load_gt(cset *s, const s2_json *gt, const char *name) {
    int rc;
    const s2_json *anns = dataset_list(gt, "annotations", name, &rc);
    S2_CHECK(rc);
    int64_t *ids;
    S2_CHECK(list_ids(anns, name, "annotations", &ids));
    s2e_idmap dup;
    rc = s2e_idmap_build(&dup, ids, anns->n);
    free(ids);
    S2_CHECK(rc);
    bool has_dup = dup.n != anns->n;
    s2e_idmap_free(&dup);
    if (has_dup) return s2_err(SAM2C_ERR_FORMAT, "%s: duplicate annotation ids", name);
    s->gt = s2_calloc((size_t)(anns->n ? anns->n : 1), sizeof(cann));
    if (!s->gt) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < anns->n; i++) {
        const s2_json *a = &anns->items[i];
        int img, cat;
        S2_CHECK(ann_keys(s, a, name, "annotations", i, &img, &cat));
        if (img < 0 || cat < 0) continue;
        char what[96];
        snprintf(what, sizeof what, "%s: annotations[%d]", name, i);
        cann *g = &s->gt[s->ngt];
        S2_CHECK(ann_rle(s, a, img, what, &g->rle));
        s->ngt++;
        s2e_json_id(a, "id", &g->id);
        g->img = img;
        g->cat = cat;
        g->order = i;
        if (!s2_json_num(a, "area", &g->area)) g->area = (double)s2_rle_area(&g->rle);
        const s2_json *cr = s2_json_get(a, "iscrowd");
        g->crowd = cr && ((cr->type == S2_JNUM && cr->num != 0) || (cr->type == S2_JBOOL && cr->b));
    }
    return SAM2C_OK;
}

/* Box area of a result (loadRes 'bbox' branch: ann['area'] = bb[2] * bb[3]). */
static int res_box_area(const s2_json *a, const char *what, double *area, double bb[4]) {
    const s2_json *b = s2_json_get(a, "bbox");
    if (!b || b->type != S2_JARR || b->n != 4)
        return s2_err(SAM2C_ERR_FORMAT, "%s: \"bbox\" must be [x, y, w, h]", what);
    for (int j = 0; j < 4; j++) {
        if (b->items[j].type != S2_JNUM)
            return s2_err(SAM2C_ERR_FORMAT, "%s: bbox value %d is not a number", what, j);
        bb[j] = b->items[j].num;
    }
    *area = bb[2] * bb[3];
    return SAM2C_OK;
}

/* The box polygon loadRes gives bbox-only results: [[x1,y1,x1,y2,x2,y2,x2,y1]]. */
static int box_rle(const double bb[4], int h, int w, const char *what, s2_rle *out) {
    double x1 = bb[0], x2 = bb[0] + bb[2], y1 = bb[1], y2 = bb[1] + bb[3];
    double poly[8] = {x1, y1, x1, y2, x2, y2, x2, y1};
    if (h < 0 || w < 0) return s2_err(SAM2C_ERR_FORMAT, "%s: image without height/width", what);
    int rc = s2_rle_from_polygon(poly, 4, h, w, out);
    return rc < 0 ? s2_err_prefix(rc, "%s: ", what) : rc;
}

/* One result entry (loadRes): id = position + 1, iscrowd 0, area by the branch rule. */
static int load_one_res(cset *s, const s2_json *a, int i, bool box_branch, int img, int cat,
                        const char *what) {
    cann *d = &s->dt[s->ndt];
    if (!s2_json_num(a, "score", &d->score) || !isfinite(d->score))
        return s2_err(SAM2C_ERR_FORMAT, "%s: no numeric \"score\"", what);
    double bb[4] = {0}, barea = 0;
    if (box_branch) S2_CHECK(res_box_area(a, what, &barea, bb));
    if (s2_json_get(a, "segmentation")) S2_CHECK(ann_rle(s, a, img, what, &d->rle));
    else if (box_branch) S2_CHECK(box_rle(bb, s->img_h[img], s->img_w[img], what, &d->rle));
    else return s2_err(SAM2C_ERR_FORMAT, "%s: no \"segmentation\"", what);
    s->ndt++;
    d->id = (int64_t)i + 1;
    d->img = img;
    d->cat = cat;
    d->order = i;
    d->area = box_branch ? barea : (double)s2_rle_area(&d->rle);
    d->crowd = false;
    return SAM2C_OK;
}

/* ref: pycocotools coco.py COCO.loadRes (+ the category filter of _prepare) */
static int load_res(cset *s, const s2_json *res, const char *name) {
    const s2_json *list = res;
    if (res->type == S2_JOBJ) list = s2_json_get(res, "annotations");
    if (!list || list->type != S2_JARR)
        return s2_err(SAM2C_ERR_FORMAT, "%s: results must be a list of objects", name);
    s->dt = s2_calloc((size_t)(list->n ? list->n : 1), sizeof(cann));
    if (!s->dt) return SAM2C_ERR_NOMEM;
    const s2_json *b0 = list->n ? s2_json_get(&list->items[0], "bbox") : NULL;
    bool box_branch = b0 && !(b0->type == S2_JARR && b0->n == 0);
    for (int i = 0; i < list->n; i++) {
        const s2_json *a = &list->items[i];
        if (a->type != S2_JOBJ)
            return s2_err(SAM2C_ERR_FORMAT, "%s: result %d is not an object", name, i);
        int img, cat;
        S2_CHECK(ann_keys(s, a, name, "results", i, &img, &cat));
        if (img < 0)
            return s2_err(SAM2C_ERR_FORMAT, "%s: result %d: image_id not in the ground truth "
                          "(results do not correspond to the GT set)", name, i);
        if (cat < 0) { s->nskip++; continue; }
        char what[96];
        snprintf(what, sizeof what, "%s: result %d", name, i);
        S2_CHECK(load_one_res(s, a, i, box_branch, img, cat, what));
    }
    return SAM2C_OK;
}

/* Order by category, then image, then file order (= _gts / _dts lists per key). */
static int cmp_cann(const void *pa, const void *pb) {
    const cann *a = pa, *b = pb;
    if (a->cat != b->cat) return a->cat < b->cat ? -1 : 1;
    if (a->img != b->img) return a->img < b->img ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* ============================== evaluateImg ============================== */

/* ref: pycocotools maskApi.c rleIou: i / u, u = dt area for crowd GT, 0 without overlap,
 * -1 when the sizes differ. */
static double mask_iou(const cann *d, const cann *g) {
    if (d->rle.h != g->rle.h || d->rle.w != g->rle.w) return -1;
    int64_t in, un;
    s2_rle_inter_union(&d->rle, &g->rle, &in, &un);
    if (in == 0) return 0;
    if (g->crowd) un = s2_rle_area(&d->rle);
    return (double)in / (double)un;
}

/* Detection order: score descending, ties in file order (argsort(-score, mergesort)). */
static int cmp_score(const void *pa, const void *pb) {
    const cann *a = *(const cann *const *)pa, *b = *(const cann *const *)pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* ref: pycocotools cocoeval.py COCOeval.evaluateImg for one area range: greedy matching
 * at every threshold, writing codes (T, D) and returning the non-ignored GT count. */
static int match_area(const cset *s, const ccell *c, const cann *const *dts,
                      const double *ious, int a, const double th[T], int *gtind,
                      int64_t *gtm, uint8_t *code) {
    const int G = c->ng, D = c->D;
    const cann *gt = s->gt + c->g0;
    int npig = 0, n0 = 0;
    for (int pass = 0; pass < 2; pass++)  /* stable argsort of _ignore: ignored last */
        for (int g = 0; g < G; g++) {
            bool ig = gt[g].crowd || gt[g].area < k_area[a][0] || gt[g].area > k_area[a][1];
            if (ig == (pass == 1)) gtind[n0++] = g;
            if (!ig && pass == 0) npig++;
        }
    for (int t = 0; t < T; t++) {
        int64_t *gm = gtm + (size_t)t * G;
        memset(gm, 0, sizeof(int64_t) * (size_t)G);
        for (int d = 0; d < D; d++) {
            double iou = th[t] < 1 - 1e-10 ? th[t] : 1 - 1e-10;
            int m = -1;
            for (int gi = 0; gi < G; gi++) {
                const cann *g = &gt[gtind[gi]];
                if (gm[gi] > 0 && !g->crowd) continue;
                if (m > -1 && m < npig && gi >= npig) break; /* matched regular, on ignored */
                double v = ious[(size_t)d * G + gtind[gi]];
                if (v < iou) continue;
                iou = v;
                m = gi;
            }
            int64_t dtm = 0;
            bool dig = false;
            if (m > -1) {
                dig = m >= npig;
                dtm = gt[gtind[m]].id;
                gm[m] = dts[d]->id;
            }
            bool out = dts[d]->area < k_area[a][0] || dts[d]->area > k_area[a][1];
            if (dtm == 0 && out) dig = true;
            code[(size_t)t * D + d] = dig ? CODE_IGN : dtm != 0 ? CODE_TP : CODE_FP;
        }
    }
    return npig;
}

/* computeIoU + evaluateImg for every area range of one (category, image). */
static int eval_cell(const cset *s, ccell *c, const double th[T]) {
    const int G = c->ng, nd = c->nd;
    const cann **dts = s2_malloc(sizeof(cann *) * (size_t)(nd ? nd : 1));
    if (!dts) return SAM2C_ERR_NOMEM;
    for (int d = 0; d < nd; d++) dts[d] = &s->dt[c->d0 + d];
    qsort(dts, (size_t)nd, sizeof *dts, cmp_score);
    const int D = c->D = S2_MIN(nd, k_max_dets[M - 1]);
    double *ious = s2_malloc(sizeof(double) * ((size_t)D * G + 1));
    int *gtind = s2_malloc(sizeof(int) * (size_t)(G + 1));
    int64_t *gtm = s2_malloc(sizeof(int64_t) * ((size_t)T * G + 1));
    c->scores = s2_malloc(sizeof(double) * (size_t)(D + 1));
    c->code = s2_malloc((size_t)A * T * D + 1);
    int rc = SAM2C_OK;
    if (!ious || !gtind || !gtm || !c->scores || !c->code) { rc = SAM2C_ERR_NOMEM; goto done; }
    for (int d = 0; d < D; d++) {
        c->scores[d] = dts[d]->score;
        for (int g = 0; g < G; g++) ious[(size_t)d * G + g] = mask_iou(dts[d], &s->gt[c->g0 + g]);
    }
    for (int a = 0; a < A; a++)
        c->npig[a] = match_area(s, c, dts, ious, a, th, gtind, gtm, c->code + (size_t)a * T * D);
done:
    free(dts);
    free(ious);
    free(gtind);
    free(gtm);
    return rc;
}

/* Cells: every (category, image) with GT or detections, by category then image. */
static int build_cells(const cset *s, ccell **cells, int *n) {
    *cells = s2_calloc((size_t)(s->ngt + s->ndt + 1), sizeof(ccell));
    if (!*cells) return SAM2C_ERR_NOMEM;
    int gi = 0, di = 0, nc = 0;
    while (gi < s->ngt || di < s->ndt) {
        const cann *g = gi < s->ngt ? &s->gt[gi] : NULL, *d = di < s->ndt ? &s->dt[di] : NULL;
        int k, i;
        if (g && (!d || g->cat < d->cat || (g->cat == d->cat && g->img <= d->img))) k = g->cat, i = g->img;
        else k = d->cat, i = d->img;
        ccell *c = &(*cells)[nc++];
        c->k = k;
        c->i = i;
        c->g0 = gi;
        while (gi < s->ngt && s->gt[gi].cat == k && s->gt[gi].img == i) gi++;
        c->ng = gi - c->g0;
        c->d0 = di;
        while (di < s->ndt && s->dt[di].cat == k && s->dt[di].img == i) di++;
        c->nd = di - c->d0;
    }
    *n = nc;
    return SAM2C_OK;
}

/* Runs eval_cell over all cells on the OpenMP team, reporting progress on the caller. */
static int eval_cells(const cset *s, ccell *cells, int nc, const s2_eval_opts *o) {
    double th[T];
    iou_thresholds(th);
    int done = 0, fail = 0;
#pragma omp parallel for schedule(dynamic, 16)
    for (int c = 0; c < nc; c++) {
        int rc = eval_cell(s, &cells[c], th), dn;
        if (rc < 0) {
#pragma omp atomic write
            fail = rc;
        }
#pragma omp atomic capture
        dn = ++done;
        if (o->progress && omp_get_thread_num() == 0) o->progress(o->user, dn, nc);
    }
    if (fail < 0) return s2_err(fail, "COCO eval: out of memory");
    if (o->progress) o->progress(o->user, nc, nc);
    return SAM2C_OK;
}

/* ============================== accumulate ============================== */

typedef struct accbuf { double *sc, *tmpd; int *ord, *tmpi; const uint8_t **cd; } accbuf;

/* Stable merge sort of ord[0..n) by score descending (np.argsort(-s, 'mergesort')). */
static void sort_desc(const double *sc, int *ord, int *tmp, int n) {
    for (int w = 1; w < n; w *= 2) {
        for (int lo = 0; lo < n; lo += 2 * w) {
            int mid = S2_MIN(lo + w, n), hi = S2_MIN(lo + 2 * w, n), i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = sc[ord[j]] > sc[ord[i]] ? ord[j++] : ord[i++];
            while (i < mid) tmp[k++] = ord[i++];
            while (j < hi) tmp[k++] = ord[j++];
        }
        memcpy(ord, tmp, sizeof(int) * (size_t)n);
    }
}

/* Precision at the 101 recall thresholds and the final recall of one threshold's
 * detections (already in score order). ref: COCOeval.accumulate inner loop */
static void pr_curve(const uint8_t *const *codes, const int *ord, int nd, int npig,
                     const double rt[R], double *tp_rc, double *pr, double q[R], double *rec) {
    double tp = 0, fp = 0;
    for (int j = 0; j < nd; j++) {
        uint8_t cd = *codes[ord[j]];
        tp += cd == CODE_TP;
        fp += cd == CODE_FP;
        tp_rc[j] = tp / npig;
        pr[j] = tp / (fp + tp + 2.220446049250313e-16); /* np.spacing(1) */
    }
    *rec = nd ? tp_rc[nd - 1] : 0;
    for (int j = nd - 1; j > 0; j--)
        if (pr[j] > pr[j - 1]) pr[j - 1] = pr[j];
    int j = 0;
    for (int ri = 0; ri < R; ri++) q[ri] = 0;
    for (int ri = 0; ri < R; ri++) {
        while (j < nd && tp_rc[j] < rt[ri]) j++; /* searchsorted(rc, recThrs, 'left') */
        if (j >= nd) break;
        q[ri] = pr[j];
    }
}

/* accumulate() for one (category, area, maxDet) over the category's cells. */
static void acc_one(const ccell *cells, int c0, int c1, int a, int m, int k, int K,
                    const double rt[R], accbuf *b, double *prec, double *recall) {
    int n = 0, npig = 0;
    for (int c = c0; c < c1; c++) {
        const ccell *cl = &cells[c];
        npig += cl->npig[a];
        int Dm = S2_MIN(cl->D, k_max_dets[m]);
        for (int d = 0; d < Dm; d++) {
            b->sc[n] = cl->scores[d];
            b->ord[n] = n;
            n++;
        }
    }
    if (c1 == c0 || npig == 0) return;
    sort_desc(b->sc, b->ord, b->tmpi, n);
    for (int t = 0; t < T; t++) {
        double q[R], rec;
        int idx = 0;
        for (int c = c0; c < c1; c++) {
            int Dm = S2_MIN(cells[c].D, k_max_dets[m]);
            for (int d = 0; d < Dm; d++, idx++)
                b->cd[idx] = cells[c].code + ((size_t)a * T + t) * cells[c].D + d;
        }
        pr_curve(b->cd, b->ord, n, npig, rt, b->tmpd, b->tmpd + n, q, &rec);
        for (int ri = 0; ri < R; ri++)
            prec[(((size_t)t * R + ri) * K + k) * A * M + (size_t)a * M + m] = q[ri];
        recall[(((size_t)t * K + k) * A + a) * M + m] = rec;
    }
}

/* ref: pycocotools cocoeval.py COCOeval.accumulate */
static int accumulate(const ccell *cells, int nc, int K, double *prec, double *recall) {
    double rt[R];
    rec_thresholds(rt);
    for (size_t i = 0; i < (size_t)T * R * K * A * M; i++) prec[i] = -1;
    for (size_t i = 0; i < (size_t)T * K * A * M; i++) recall[i] = -1;
    int maxn = 0, c0 = 0;
    for (int k = 0; k < K; k++) {  /* largest detection count of one category */
        int c1 = c0, n = 0;
        while (c1 < nc && cells[c1].k == k) n += cells[c1++].D;
        maxn = S2_MAX(maxn, n);
        c0 = c1;
    }
    accbuf b;
    size_t nn = (size_t)maxn + 1;
    b.sc = s2_malloc(sizeof(double) * nn);
    b.tmpd = s2_malloc(sizeof(double) * 2 * nn);
    b.ord = s2_malloc(sizeof(int) * nn);
    b.tmpi = s2_malloc(sizeof(int) * nn);
    b.cd = s2_malloc(sizeof(uint8_t *) * nn);
    int rc = SAM2C_OK;
    if (!b.sc || !b.tmpd || !b.ord || !b.tmpi || !b.cd) { rc = SAM2C_ERR_NOMEM; goto done; }
    c0 = 0;
    for (int k = 0; k < K; k++) {
        int c1 = c0;
        while (c1 < nc && cells[c1].k == k) c1++;
        for (int a = 0; a < A; a++)
            for (int m = 0; m < M; m++) acc_one(cells, c0, c1, a, m, k, K, rt, &b, prec, recall);
        c0 = c1;
    }
done:
    free(b.sc);
    free(b.tmpd);
    free(b.ord);
    free(b.tmpi);
    free(b.cd);
    return rc;
}

/* ============================== summarize ============================== */

/* ref: COCOeval.summarize._summarize: mean of the entries > -1 (C order), else -1.
 * t < 0: every threshold; k < 0: every category. */
static double summ(const s2_coco_eval_result *r, bool ap, int t, int a, int m, int k,
                   double *buf) {
    int K = r->K;
    int64_t n = 0;
    for (int ti = 0; ti < T; ti++) {
        if (t >= 0 && ti != t) continue;
        if (ap) {
            for (int ri = 0; ri < R; ri++)
                for (int ki = 0; ki < K; ki++) {
                    if (k >= 0 && ki != k) continue;
                    double v = r->precision[(((size_t)ti * R + ri) * K + ki) * A * M + (size_t)a * M + m];
                    if (v > -1) buf[n++] = v;
                }
        } else {
            for (int ki = 0; ki < K; ki++) {
                if (k >= 0 && ki != k) continue;
                double v = r->recall[(((size_t)ti * K + ki) * A + a) * M + m];
                if (v > -1) buf[n++] = v;
            }
        }
    }
    return n ? s2e_mean(buf, n) : -1;
}

/* ref: COCOeval.summarize._summarizeDets */
static int summarize(s2_coco_eval_result *r) {
    double *buf = s2_malloc(sizeof(double) * ((size_t)T * R * r->K + 1));
    if (!buf) return SAM2C_ERR_NOMEM;
    double *st = r->stats;
    st[0] = summ(r, true, -1, 0, 2, -1, buf);
    st[1] = summ(r, true, 0, 0, 2, -1, buf);  /* iouThrs[0] == .5 */
    st[2] = summ(r, true, 5, 0, 2, -1, buf);  /* iouThrs[5] == .75 exactly */
    for (int a = 1; a < A; a++) st[2 + a] = summ(r, true, -1, a, 2, -1, buf);
    for (int m = 0; m < M; m++) st[6 + m] = summ(r, false, -1, 0, m, -1, buf);
    for (int a = 1; a < A; a++) st[8 + a] = summ(r, false, -1, a, 2, -1, buf);
    for (int k = 0; k < r->K; k++) {
        r->cat_ap[k] = summ(r, true, -1, 0, 2, k, buf);
        r->cat_ap50[k] = summ(r, true, 0, 0, 2, k, buf);
    }
    free(buf);
    return SAM2C_OK;
}

/* ============================== driver ============================== */

/* Result arrays sized for K categories, category ids and names copied. */
static int result_alloc(s2_coco_eval_result *out, const cset *s) {
    int K = out->K = s->cmap.n;
    size_t k1 = (size_t)(K ? K : 1);
    out->cat_ids = s2_malloc(sizeof(int64_t) * k1);
    out->cat_names = s2_calloc(k1, sizeof(char *));
    out->cat_ap = s2_malloc(sizeof(double) * k1);
    out->cat_ap50 = s2_malloc(sizeof(double) * k1);
    out->precision = s2_malloc(sizeof(double) * (size_t)T * R * A * M * k1);
    out->recall = s2_malloc(sizeof(double) * (size_t)T * A * M * k1);
    if (!out->cat_ids || !out->cat_names || !out->cat_ap || !out->cat_ap50 ||
        !out->precision || !out->recall)
        return SAM2C_ERR_NOMEM;
    for (int k = 0; k < K; k++) {
        out->cat_ids[k] = s->cmap.id[k];
        if (!(out->cat_names[k] = s2_strdup(s->cat_names[k]))) return SAM2C_ERR_NOMEM;
    }
    out->n_images = s->imap.n;
    out->n_gt = s->ngt;
    out->n_dt = s->ndt;
    out->n_dt_skipped = s->nskip;
    return SAM2C_OK;
}

/* Frees the cells and their per-area arrays. */
static void cells_free(ccell *cells, int nc) {
    for (int c = 0; c < nc; c++) {
        free(cells[c].scores);
        free(cells[c].code);
    }
    free(cells);
}

/* Loading, evaluate, accumulate, summarize; out is freed by the caller on failure. */
static int coco_run(cset *s, const s2_json *gt, const char *gt_name, const s2_json *res,
                    const char *res_name, const s2_eval_opts *o, s2_coco_eval_result *out) {
    if (gt->type != S2_JOBJ) return s2_err(SAM2C_ERR_FORMAT, "%s: not a COCO dataset object", gt_name);
    S2_CHECK(load_tables(s, gt, gt_name));
    S2_CHECK(load_gt(s, gt, gt_name));
    S2_CHECK(load_res(s, res, res_name));
    qsort(s->gt, (size_t)s->ngt, sizeof(cann), cmp_cann);
    qsort(s->dt, (size_t)s->ndt, sizeof(cann), cmp_cann);
    S2_CHECK(result_alloc(out, s));
    ccell *cells;
    int nc;
    S2_CHECK(build_cells(s, &cells, &nc));
    int rc = eval_cells(s, cells, nc, o);
    if (rc >= 0) rc = accumulate(cells, nc, out->K, out->precision, out->recall);
    cells_free(cells, nc);
    S2_CHECK(rc);
    return summarize(out);
}

int s2_eval_coco_doc(const s2_json *gt, const char *gt_name, const s2_json *res,
                     const char *res_name, const s2_eval_opts *o, s2_coco_eval_result *out) {
    if (!out) return s2_err(SAM2C_ERR_ARG, "COCO eval: no result");
    memset(out, 0, sizeof *out);
    if (!gt || !res) return s2_err(SAM2C_ERR_ARG, "COCO eval: NULL document");
    s2_eval_opts def;
    if (!o) { s2_eval_opts_default(&def); o = &def; }
    cset s;
    memset(&s, 0, sizeof s);
    int rc = coco_run(&s, gt, gt_name ? gt_name : "gt", res, res_name ? res_name : "results",
                      o, out);
    cset_free(&s);
    if (rc < 0) s2_coco_eval_free(out);
    return rc;
}

int s2_eval_coco(const char *gt_json, const char *res_json, const s2_eval_opts *o,
                 s2_coco_eval_result *out) {
    if (!out) return s2_err(SAM2C_ERR_ARG, "COCO eval: no result");
    memset(out, 0, sizeof *out);
    if (!gt_json || !res_json) return s2_err(SAM2C_ERR_ARG, "COCO eval: NULL path");
    s2_json *gt = NULL, *res = NULL;
    S2_CHECK(s2_json_parse_file(gt_json, NULL, &gt));
    int rc = s2_json_parse_file(res_json, NULL, &res);
    if (rc >= 0) rc = s2_eval_coco_doc(gt, gt_json, res, res_json, o, out);
    s2_json_free(gt);
    s2_json_free(res);
    return rc;
}

void s2_coco_eval_free(s2_coco_eval_result *r) {
    if (!r) return;
    if (r->cat_names)
        for (int k = 0; k < r->K; k++) free(r->cat_names[k]);
    free(r->cat_names);
    free(r->cat_ids);
    free(r->cat_ap);
    free(r->cat_ap50);
    free(r->precision);
    free(r->recall);
    memset(r, 0, sizeof *r);
}
