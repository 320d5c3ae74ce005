/* Video object segmentation J&F exactly as the official SA-V evaluator
 * (sav_dataset/sav_evaluator.py + sav_dataset/utils/sav_benchmark.py, itself from
 * vos-benchmark / davis2017-evaluation): folder scan, SA-V and DAVIS layouts, the
 * Evaluator's running object set, get_iou, the boundary F-measure, numpy means.
 * One task = one (video, object folder) in SA-V layout or one video in DAVIS layout;
 * tasks run on the OpenMP team. */
#include "eval/eval_internal.h"
#include "core/s2.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-object running state of sav_benchmark.Evaluator (object_iou / boundary_f lists). */
typedef struct vobj {
    uint32_t label;
    bool in_gt;           /* in objects_in_gt */
    int n, cap;
    double *j, *f;        /* per counted frame */
    int *frame;           /* index into the task's frame list */
} vobj;

typedef struct vtask {
    const char *video;    /* borrowed */
    const char *obj;      /* SA-V object folder (borrowed); NULL: DAVIS */
    char *gt_dir, *pred_dir;
    char **frames;        /* GT frame files, sorted */
    int nf;
    int f0, f1;           /* evaluated frames [f0, f1) */
    vobj *objs;
    int nobj;
    int rc;
    char err[320];
} vtask;

/* Scratch of one task: label images, binary masks, boundary engine. */
typedef struct vscratch {
    uint32_t *gl, *pl;
    size_t gcap, pcap;
    uint8_t *gb, *pb;
    size_t bcap;
    s2e_bf bf;
    double th;
} vscratch;

/* Frees the scratch buffers of one task. */
static void vscratch_free(vscratch *s) {
    free(s->gl);
    free(s->pl);
    free(s->gb);
    free(s->pb);
    s2e_bf_free(&s->bf);
}

/* Sized for an h x w frame (re-made when the size changes). */
static int vscratch_size(vscratch *s, int h, int w) {
    size_t n = (size_t)h * w;
    if (s->bcap < n) {
        free(s->gb);
        free(s->pb);
        s->gb = s2_malloc(n);
        s->pb = s2_malloc(n);
        if (!s->gb || !s->pb) return SAM2C_ERR_NOMEM;
        s->bcap = n;
    }
    if (s->bf.h != h || s->bf.w != w) {
        s2e_bf_free(&s->bf);
        S2_CHECK(s2e_bf_init(&s->bf, h, w, s->th));
    }
    return SAM2C_OK;
}

/* Distinct nonzero labels of an image (np.unique minus 0), into a growable list. */
static int unique_labels(const uint32_t *lab, size_t n, uint32_t **u, int *nu, int *cap) {
    uint32_t last = 0;
    *nu = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = lab[i];
        if (v == 0 || v == last) continue;
        last = v;
        int k = 0;
        while (k < *nu && (*u)[k] != v) k++;
        if (k < *nu) continue;
        if (*nu == *cap) {
            int nc = *cap ? *cap * 2 : 16;
            uint32_t *nw = s2_realloc(*u, sizeof(uint32_t) * (size_t)nc);
            if (!nw) return SAM2C_ERR_NOMEM;
            *u = nw;
            *cap = nc;
        }
        (*u)[(*nu)++] = v;
    }
    return SAM2C_OK;
}

/* The object with this label, created (in label order) when new. */
static vobj *obj_get(vtask *t, uint32_t label) {
    int k = 0;
    while (k < t->nobj && t->objs[k].label < label) k++;
    if (k < t->nobj && t->objs[k].label == label) return &t->objs[k];
    vobj *no = s2_realloc(t->objs, sizeof(vobj) * (size_t)(t->nobj + 1));
    if (!no) return NULL;
    t->objs = no;
    memmove(&no[k + 1], &no[k], sizeof(vobj) * (size_t)(t->nobj - k));
    memset(&no[k], 0, sizeof(vobj));
    no[k].label = label;
    t->nobj++;
    return &no[k];
}

/* Appends one counted frame to an object. */
static int obj_push(vobj *o, double j, double f, int frame) {
    if (o->n == o->cap) {
        int nc = o->cap ? o->cap * 2 : 64;
        double *nj = s2_realloc(o->j, sizeof(double) * (size_t)nc);
        if (!nj) return SAM2C_ERR_NOMEM;
        o->j = nj;
        double *nf = s2_realloc(o->f, sizeof(double) * (size_t)nc);
        if (!nf) return SAM2C_ERR_NOMEM;
        o->f = nf;
        int *nfr = s2_realloc(o->frame, sizeof(int) * (size_t)nc);
        if (!nfr) return SAM2C_ERR_NOMEM;
        o->frame = nfr;
        o->cap = nc;
    }
    o->j[o->n] = j;
    o->f[o->n] = f;
    o->frame[o->n] = frame;
    o->n++;
    return SAM2C_OK;
}

/* J and F of one object on one frame from 0/1 masks in s->gb / s->pb.
 * ref: sav_benchmark.py Evaluator.feed_frame */
static void binary_jf(vscratch *s, size_t n, double *j, double *f) {
    int64_t in = 0, sum = 0;
    const uint8_t *g = s->gb, *p = s->pb;
    for (size_t i = 0; i < n; i++) {
        in += g[i] & p[i];
        sum += g[i] + p[i];
    }
    *j = s2e_iou(in, sum);
    *f = s2e_bf_measure(&s->bf, s->gb, s->pb, NULL, NULL);
}

/* DAVIS: the 0/1 masks of one label (obj_mask = mask == id, obj_gt = gt == id). */
static void label_masks(vscratch *s, size_t n, uint32_t label) {
    for (size_t i = 0; i < n; i++) {
        s->gb[i] = s->gl[i] == label;
        s->pb[i] = s->pl[i] == label;
    }
}

/* SA-V: len(np.unique(a)) <= 2 (else -1), then a > 0 into 0/1 bytes; returns the
 * foreground count. */
static int64_t binarize_one_object(const uint32_t *lab, size_t n, uint8_t *out) {
    uint32_t a = n ? lab[0] : 0, b = a;
    int64_t area = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = lab[i];
        if (v != a && v != b) {
            if (a != b) return -1;
            b = v;
        }
        out[i] = v > 0;
        area += v > 0;
    }
    return area;
}

/* Loads the GT and prediction labels of one frame and sizes the scratch. */
static int load_frame(vtask *t, vscratch *s, const char *frame, int *h, int *w,
                      int64_t area[2]) {
    char *gp = s2e_join(t->gt_dir, frame), *pp = s2e_join(t->pred_dir, frame);
    int rc = (!gp || !pp) ? SAM2C_ERR_NOMEM : SAM2C_OK, gw = 0, gh = 0, pw = 0, ph = 0;
    if (rc >= 0) rc = s2e_png_labels(gp, &s->gl, &s->gcap, &gw, &gh);
    if (rc >= 0 && !s2e_is_file(pp)) rc = s2_err(SAM2C_ERR_IO, "%s not found", pp);
    if (rc >= 0) rc = s2e_png_labels(pp, &s->pl, &s->pcap, &pw, &ph);
    if (rc >= 0 && (gw != pw || gh != ph))
        rc = s2_err(SAM2C_ERR_SHAPE, "shape mismatch: %s (%dx%d), %s (%dx%d)", gp, gw, gh, pp, pw, ph);
    if (rc >= 0) rc = vscratch_size(s, gh, gw);
    for (int k = 0; rc >= 0 && t->obj && k < 2; k++) {
        area[k] = binarize_one_object(k ? s->pl : s->gl, (size_t)gw * gh, k ? s->pb : s->gb);
        if (area[k] < 0)
            rc = s2_err(SAM2C_ERR_FORMAT, "found more than 1 object in %s: SA-V format "
                        "assumes one object mask per png file", k ? pp : gp);
    }
    free(gp);
    free(pp);
    *h = gh;
    *w = gw;
    return rc;
}

/* SA-V: one object per PNG, label True (1). */
static int feed_frame_sav(vtask *t, vscratch *s, int fi, size_t n, const int64_t area[2]) {
    if (area[0] > 0 || area[1] > 0) {
        vobj *o = obj_get(t, 1);
        if (!o) return SAM2C_ERR_NOMEM;
        if (area[0] > 0) o->in_gt = true;
    }
    if (t->nobj == 0) return SAM2C_OK;  /* not seen yet in GT or prediction */
    double j, f;
    binary_jf(s, n, &j, &f);
    return obj_push(&t->objs[0], j, f, fi);
}

/* Feeds one frame to the task's Evaluator. */
static int feed_frame(vtask *t, vscratch *s, int fi, uint32_t **u, int *ucap) {
    int h, w, nu;
    int64_t area[2] = {0, 0};
    S2_CHECK(load_frame(t, s, t->frames[fi], &h, &w, area));
    size_t n = (size_t)h * w;
    if (t->obj) return feed_frame_sav(t, s, fi, n, area);
    for (int k = 0; k < 2; k++) {  /* objects_in_gt / objects_in_masks updates */
        S2_CHECK(unique_labels(k ? s->pl : s->gl, n, u, &nu, ucap));
        for (int i = 0; i < nu; i++) {
            vobj *o = obj_get(t, (*u)[i]);
            if (!o) return SAM2C_ERR_NOMEM;
            if (k == 0) o->in_gt = true;
        }
    }
    for (int k = 0; k < t->nobj; k++) {  /* every object seen so far, GT or mask */
        double j, f;
        label_masks(s, n, t->objs[k].label);
        binary_jf(s, n, &j, &f);
        S2_CHECK(obj_push(&t->objs[k], j, f, fi));
    }
    return SAM2C_OK;
}

/* Evaluates all frames of one task; errors are kept in t->rc / t->err. */
static void run_task(vtask *t, double th, int *done, int total, const s2_eval_opts *o) {
    vscratch s;
    memset(&s, 0, sizeof s);
    s.th = th;
    uint32_t *u = NULL;
    int ucap = 0, rc = SAM2C_OK;
    for (int fi = t->f0; fi < t->f1 && rc >= 0; fi++) {
        rc = feed_frame(t, &s, fi, &u, &ucap);
        int dn;
#pragma omp atomic capture
        dn = ++*done;
        if (o->progress && omp_get_thread_num() == 0) o->progress(o->user, dn, total);
    }
    if (rc >= 0 && t->obj) {
        bool any = t->nobj > 0 && t->objs[0].in_gt;
        if (t->f1 == t->f0)
            rc = s2_err(SAM2C_ERR_FORMAT, "%s/%s: no frame left to evaluate (%d annotated)",
                        t->video, t->obj, t->nf);
        else if (!any)
            rc = s2_err(SAM2C_ERR_FORMAT, "%s/%s: the object is empty in the ground truth on "
                        "every evaluated frame (the official evaluator fails here too)",
                        t->video, t->obj);
    }
    if (rc < 0) {
        t->rc = rc;
        snprintf(t->err, sizeof t->err, "%s", sam2c_last_error());
    }
    free(u);
    vscratch_free(&s);
}

/* ============================== scanning ============================== */

typedef struct vscan {
    char **videos;
    int nv;
    char ***objnames;   /* per video: SA-V object folders (NULL for DAVIS) */
    int *nobj;
    vtask *tasks;
    int nt, cap;
} vscan;

/* Appends a task (copied; its allocations move with it). */
static int add_task(vscan *sc, vtask *t) {
    if (sc->nt == sc->cap) {
        int nc = sc->cap ? sc->cap * 2 : 32;
        vtask *nt = s2_realloc(sc->tasks, sizeof(vtask) * (size_t)nc);
        if (!nt) return SAM2C_ERR_NOMEM;
        sc->tasks = nt;
        sc->cap = nc;
    }
    sc->tasks[sc->nt++] = *t;
    return SAM2C_OK;
}

/* One task: folders, GT frames (SA-V: *.png files; DAVIS: every entry), evaluated range. */
static int make_task(vscan *sc, const char *video, const char *obj, const char *gt_dir,
                     const char *pred_dir, bool skip) {
    vtask t;
    memset(&t, 0, sizeof t);
    t.video = video;
    t.obj = obj;
    t.gt_dir = obj ? s2e_join(gt_dir, obj) : s2_strdup(gt_dir);
    t.pred_dir = obj ? s2e_join(pred_dir, obj) : s2_strdup(pred_dir);
    int rc = (!t.gt_dir || !t.pred_dir) ? SAM2C_ERR_NOMEM : SAM2C_OK;
    if (rc >= 0) rc = s2e_list_dir(t.gt_dir, obj ? S2E_FILES : S2E_ANY, obj ? ".png" : NULL,
                                   &t.frames, &t.nf);
    t.f0 = 0;
    t.f1 = t.nf;
    if (skip) { t.f0 = 1; t.f1 = t.nf - 1; } /* all_frames[1:-1] */
    if (t.f1 < t.f0) t.f1 = t.f0;
    if (rc >= 0) rc = add_task(sc, &t);
    if (rc < 0) {
        free(t.gt_dir);
        free(t.pred_dir);
        s2e_free_names(t.frames, t.nf);
    }
    return rc;
}

/* ref: sav_benchmark.py VideoEvaluator.scan_vid_folder: DAVIS when every entry is *.png.
 * gd / pd: the video's GT and prediction folders. */
static int scan_video(vscan *sc, int v, const char *gd, const char *pd, bool skip) {
    char **all = NULL;
    int na = 0;
    int rc = s2e_list_dir(gd, S2E_ANY, NULL, &all, &na);
    bool davis = true;
    for (int i = 0; rc >= 0 && i < na; i++) {
        size_t l = strlen(all[i]);
        if (l < 4 || strcmp(all[i] + l - 4, ".png") != 0) davis = false;
    }
    if (rc >= 0 && davis) rc = make_task(sc, sc->videos[v], NULL, gd, pd, skip);
    if (rc >= 0 && !davis) rc = s2e_list_dir(gd, S2E_DIRS, NULL, &sc->objnames[v], &sc->nobj[v]);
    for (int k = 0; rc >= 0 && !davis && k < sc->nobj[v]; k++)
        rc = make_task(sc, sc->videos[v], sc->objnames[v][k], gd, pd, skip);
    s2e_free_names(all, na);
    return rc;
}

/* scan_video for video v under the two roots. */
static int scan_video_in(vscan *sc, int v, const char *gt_root, const char *pred_root, bool skip) {
    char *gd = s2e_join(gt_root, sc->videos[v]), *pd = s2e_join(pred_root, sc->videos[v]);
    int rc = (!gd || !pd) ? SAM2C_ERR_NOMEM : scan_video(sc, v, gd, pd, skip);
    free(gd);
    free(pd);
    return rc;
}

/* Whether name is in the sorted list. */
static bool in_sorted(char **v, int n, const char *name) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(v[mid], name);
        if (c == 0) return true;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return false;
}

/* ref: sav_benchmark.py benchmark: video folders of both roots, strict or intersection. */
static int scan_videos(vscan *sc, const char *gt_root, const char *pred_root, bool strict) {
    char **gv = NULL, **pv = NULL;
    int ng = 0, np = 0;
    int rc = s2e_list_dir(gt_root, S2E_DIRS, NULL, &gv, &ng);
    if (rc >= 0) rc = s2e_list_dir(pred_root, S2E_DIRS, NULL, &pv, &np);
    sc->videos = s2_calloc((size_t)(ng ? ng : 1), sizeof(char *));
    if (rc >= 0 && !sc->videos) rc = SAM2C_ERR_NOMEM;
    for (int i = 0; rc >= 0 && i < ng; i++) {
        if (!in_sorted(pv, np, gv[i])) {
            if (strict) rc = s2_err(SAM2C_ERR_MISSING, "video %s is in %s but not in %s", gv[i], gt_root, pred_root);
            continue;
        }
        sc->videos[sc->nv++] = gv[i];
        gv[i] = NULL;
    }
    for (int i = 0; rc >= 0 && strict && i < np; i++)
        if (!in_sorted(sc->videos, sc->nv, pv[i]))
            rc = s2_err(SAM2C_ERR_MISSING, "video %s is in %s but not in %s", pv[i], pred_root, gt_root);
    if (rc >= 0 && sc->nv == 0)
        rc = s2_err(SAM2C_ERR_MISSING, "no video folder in both %s and %s", gt_root, pred_root);
    s2e_free_names(gv, ng);
    s2e_free_names(pv, np);
    return rc;
}

/* Frees the scan: tasks, their objects, folder names. */
static void vscan_free(vscan *sc) {
    for (int i = 0; i < sc->nt; i++) {
        vtask *t = &sc->tasks[i];
        free(t->gt_dir);
        free(t->pred_dir);
        s2e_free_names(t->frames, t->nf);
        for (int k = 0; k < t->nobj; k++) {
            free(t->objs[k].j);
            free(t->objs[k].f);
            free(t->objs[k].frame);
        }
        free(t->objs);
    }
    free(sc->tasks);
    for (int v = 0; v < sc->nv; v++)
        if (sc->objnames) s2e_free_names(sc->objnames[v], sc->nobj[v]);
    free(sc->objnames);
    free(sc->nobj);
    s2e_free_names(sc->videos, sc->nv);
}

/* ============================== results ============================== */

/* One reported object (objects_in_gt): means x100 and the counted frames. */
static int fill_object(const vtask *t, const vobj *ob, s2_vos_object *r) {
    char lab[16];
    snprintf(lab, sizeof lab, "%u", ob->label);
    r->video = s2_strdup(t->video);
    r->object = s2_strdup(t->obj ? t->obj : lab);
    r->n_frames = ob->n;
    r->frames = s2_calloc((size_t)(ob->n ? ob->n : 1), sizeof(char *));
    r->j = s2_malloc(sizeof(double) * (size_t)(ob->n ? ob->n : 1));
    r->f = s2_malloc(sizeof(double) * (size_t)(ob->n ? ob->n : 1));
    if (!r->video || !r->object || !r->frames || !r->j || !r->f) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < ob->n; i++) {
        const char *fn = t->frames[ob->frame[i]];
        size_t l = strlen(fn);
        if (!(r->frames[i] = s2_strdup(fn))) return SAM2C_ERR_NOMEM;
        if (l >= 4 && strcmp(fn + l - 4, ".png") == 0) r->frames[i][l - 4] = 0;
        r->j[i] = ob->j[i];
        r->f[i] = ob->f[i];
    }
    /* ref: Evaluator.conclude: np.mean(list) * 100 */
    r->J = s2e_mean(ob->j, ob->n) * 100;
    r->F = s2e_mean(ob->f, ob->n) * 100;
    r->JF = (r->J + r->F) / 2;
    return SAM2C_OK;
}

/* Objects of every task in order, then the global means (benchmark()). */
static int collect(const vscan *sc, s2_vos_result *out) {
    int n = 0;
    for (int i = 0; i < sc->nt; i++)
        for (int k = 0; k < sc->tasks[i].nobj; k++) n += sc->tasks[i].objs[k].in_gt;
    out->objects = s2_calloc((size_t)(n ? n : 1), sizeof(s2_vos_object));
    double *js = s2_malloc(sizeof(double) * (size_t)(n ? n : 1));
    double *fs = s2_malloc(sizeof(double) * (size_t)(n ? n : 1));
    int rc = (!out->objects || !js || !fs) ? SAM2C_ERR_NOMEM : SAM2C_OK;
    for (int i = 0; rc >= 0 && i < sc->nt; i++)
        for (int k = 0; rc >= 0 && k < sc->tasks[i].nobj; k++) {
            if (!sc->tasks[i].objs[k].in_gt) continue;
            s2_vos_object *r = &out->objects[out->n_objects++];
            rc = fill_object(&sc->tasks[i], &sc->tasks[i].objs[k], r);
            js[out->n_objects - 1] = r->J;
            fs[out->n_objects - 1] = r->F;
        }
    if (rc >= 0) {
        out->J = s2e_mean(js, out->n_objects);
        out->F = s2e_mean(fs, out->n_objects);
        out->JF = (out->J + out->F) / 2;
        out->n_videos = sc->nv;
    }
    free(js);
    free(fs);
    return rc;
}

/* Runs every task on the OpenMP team; the first failing task (in order) is reported. */
static int run_tasks(vscan *sc, const s2_eval_opts *o) {
    int total = 0, done = 0;
    for (int i = 0; i < sc->nt; i++) total += sc->tasks[i].f1 - sc->tasks[i].f0;
    double th = o->boundary_th;
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < sc->nt; i++) run_task(&sc->tasks[i], th, &done, total, o);
    for (int i = 0; i < sc->nt; i++)
        if (sc->tasks[i].rc < 0) return s2_err(sc->tasks[i].rc, "%s", sc->tasks[i].err);
    if (o->progress) o->progress(o->user, total, total);
    return SAM2C_OK;
}

/* Per-video object-folder tables of a scan with its video list set. */
static int vscan_alloc(vscan *sc) {
    sc->objnames = s2_calloc((size_t)(sc->nv ? sc->nv : 1), sizeof(char **));
    sc->nobj = s2_calloc((size_t)(sc->nv ? sc->nv : 1), sizeof(int));
    return (!sc->objnames || !sc->nobj) ? SAM2C_ERR_NOMEM : SAM2C_OK;
}

/* Runs the scanned tasks, collects the result and frees the scan. */
static int finish(vscan *sc, int rc, const s2_eval_opts *o, s2_vos_result *out) {
    if (rc >= 0) rc = run_tasks(sc, o);
    if (rc >= 0) rc = collect(sc, out);
    vscan_free(sc);
    if (rc < 0) s2_vos_free(out);
    return rc;
}

int s2_eval_video(const char *gt_root, const char *pred_root, const s2_eval_opts *o,
                  s2_vos_result *out) {
    if (!out) return s2_err(SAM2C_ERR_ARG, "video eval: no result");
    memset(out, 0, sizeof *out);
    if (!gt_root || !pred_root) return s2_err(SAM2C_ERR_ARG, "video eval: NULL folder");
    s2_eval_opts def;
    if (!o) { s2_eval_opts_default(&def); o = &def; }
    vscan sc;
    memset(&sc, 0, sizeof sc);
    int rc = scan_videos(&sc, gt_root, pred_root, o->strict);
    if (rc >= 0) rc = vscan_alloc(&sc);
    for (int v = 0; rc >= 0 && v < sc.nv; v++)
        rc = scan_video_in(&sc, v, gt_root, pred_root, o->skip_first_last);
    return finish(&sc, rc, o, out);
}

int s2_eval_video_one(const char *gt_video, const char *pred_video, const char *name,
                      const s2_eval_opts *o, s2_vos_result *out) {
    if (!out) return s2_err(SAM2C_ERR_ARG, "video eval: no result");
    memset(out, 0, sizeof *out);
    if (!gt_video || !pred_video || !name || !*name)
        return s2_err(SAM2C_ERR_ARG, "video eval: NULL folder or name");
    s2_eval_opts def;
    if (!o) { s2_eval_opts_default(&def); o = &def; }
    if (!s2e_is_dir(gt_video)) return s2_err(SAM2C_ERR_IO, "%s: cannot open folder", gt_video);
    if (!s2e_is_dir(pred_video)) return s2_err(SAM2C_ERR_IO, "%s: cannot open folder", pred_video);
    vscan sc;
    memset(&sc, 0, sizeof sc);
    sc.videos = s2_calloc(1, sizeof(char *));
    int rc = sc.videos && (sc.videos[0] = s2_strdup(name)) ? SAM2C_OK : SAM2C_ERR_NOMEM;
    if (rc >= 0) sc.nv = 1;
    if (rc >= 0) rc = vscan_alloc(&sc);
    if (rc >= 0) rc = scan_video(&sc, 0, gt_video, pred_video, o->skip_first_last);
    return finish(&sc, rc, o, out);
}

/* Whether every character of a name is a decimal digit (SA-V object folders: "000"). */
static bool all_digits(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

int s2_eval_video_is_one(const char *dir, bool *one) {
    *one = false;
    char **png = NULL, **sub = NULL;
    int np = 0, ns = 0;
    int rc = s2e_list_dir(dir, S2E_FILES, ".png", &png, &np);
    if (rc >= 0) rc = s2e_list_dir(dir, S2E_DIRS, NULL, &sub, &ns);
    bool one_v = np > 0;                 /* DAVIS video: frames right here */
    bool digits = ns > 0, nested = false;
    for (int i = 0; rc >= 0 && !one_v && i < ns; i++) {
        char *d = s2e_join(dir, sub[i]), **inner = NULL;
        int ni = 0;
        if (!d) rc = SAM2C_ERR_NOMEM;
        else if (s2e_list_dir(d, S2E_DIRS, NULL, &inner, &ni) >= 0 && ni > 0) nested = true;
        s2e_free_names(inner, ni);
        free(d);
        digits = digits && all_digits(sub[i]);
    }
    if (rc >= 0) *one = one_v || (!nested && digits);
    s2e_free_names(png, np);
    s2e_free_names(sub, ns);
    return rc;
}

void s2_vos_free(s2_vos_result *r) {
    if (!r) return;
    for (int i = 0; i < r->n_objects; i++) {
        s2_vos_object *ob = &r->objects[i];
        free(ob->video);
        free(ob->object);
        s2e_free_names(ob->frames, ob->n_frames);
        free(ob->j);
        free(ob->f);
    }
    free(r->objects);
    memset(r, 0, sizeof *r);
}
