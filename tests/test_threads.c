/* One model, many sessions, one thread per session: several pthreads run image and
 * video sessions on the shared read-only micro model at the same time, and every thread
 * must get results bit-identical to a single-threaded run. With oneDNN built in, the
 * same with the process-wide oneDNN backend, whose engine, primitive cache and weight
 * cache are created and filled by the racing threads (cold start). Also cancels a
 * running propagation from another thread. Meant to run under ThreadSanitizer as well
 * (scripts/tsan.sh); it also passes, more slowly, without it. */
#include "harness.h"
#include "sam2c.h"
#include "io/image.h"
#include "predict/image.h"
#include "backend/dnnl.h"
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { N_IMG = 2, N_PROMPT = 3, N_THREADS = 4, N_ROUNDS = 2, N_VTHREADS = 2, N_VFRAMES = 4 };

/* One prediction's outputs, copied out of the session. */
typedef struct result {
    int rc, B, M, w, h, lw, lh;
    float *masks;   // (B, M, h, w)
    float *iou;     // (B, M)
    float *low;     // (B, M, lh, lw)
    float *score;   // (B)
} result;

/* What every worker shares (read-only while workers run). */
typedef struct shared {
    const sam2c_model *model;
    const s2_backend *be;          /* NULL: the session's default backend */
    const char *path[N_IMG];       /* JPEG files */
    s2_image img[N_IMG];           /* the same, decoded */
    result ref[N_IMG][N_PROMPT];   /* single-threaded results */
    int omp_threads;               /* the main thread's OpenMP thread count */
} shared;

/* One worker's tally and its first round's results, read by the main thread after the join. */
typedef struct worker {
    const shared *sh;
    int id, runs, mismatches, errors;
    result rec[N_IMG][N_PROMPT]; /* first round; later rounds must equal it */
    char first_problem[256];
} worker;

static const float k_pts[N_PROMPT][4] = {{200, 150, 0, 0}, {120, 100, 300, 200}, {0, 0, 0, 0}};
static const int32_t k_lab[N_PROMPT][2] = {{1, 0}, {1, 0}, {0, 0}};
static const int k_npts[N_PROMPT] = {1, 2, 0};
static const float k_box[4] = {60, 40, 330, 250};

static void result_free(result *r) {
    free(r->masks);
    free(r->iou);
    free(r->low);
    free(r->score);
    memset(r, 0, sizeof *r);
}

/* Copies n floats (NULL on allocation failure). */
static float *dup_f(const float *p, size_t n) {
    float *d = malloc(n * sizeof *d + 1);
    if (d && n) memcpy(d, p, n * sizeof *d);
    return d;
}

/* Prompt p: a multimask point, two single-mask points, or a box. */
static int predict_case(sam2c_image_session *s, int p, result *out) {
    sam2c_prompt pr = {.n_points = k_npts[p], .points = k_pts[p], .labels = k_lab[p],
                       .multimask = p == 0};
    if (p == 2) pr.n_boxes = 1, pr.boxes = k_box;
    sam2c_masks m;
    memset(out, 0, sizeof *out);
    out->rc = sam2c_image_predict(s, &pr, &m);
    if (out->rc) return out->rc;
    out->B = m.n_prompts, out->M = m.n_masks, out->w = m.width, out->h = m.height;
    out->lw = m.low_w, out->lh = m.low_h;
    size_t bm = (size_t)out->B * out->M;
    out->masks = dup_f(m.masks, bm * out->w * out->h);
    out->iou = dup_f(m.iou, bm);
    out->low = dup_f(m.low_res, bm * out->lw * out->lh);
    out->score = dup_f(m.object_score, (size_t)out->B);
    return 0;
}

/* Bit-identical (shapes and every float). */
static bool result_same(const result *a, const result *b) {
    if (a->rc || b->rc || a->B != b->B || a->M != b->M || a->w != b->w || a->h != b->h ||
        a->lw != b->lw || a->lh != b->lh)
        return false;
    size_t bm = (size_t)a->B * a->M;
    return !memcmp(a->masks, b->masks, bm * a->w * a->h * sizeof(float)) &&
           !memcmp(a->iou, b->iou, bm * sizeof(float)) &&
           !memcmp(a->low, b->low, bm * a->lw * a->lh * sizeof(float)) &&
           !memcmp(a->score, b->score, (size_t)a->B * sizeof(float));
}

/* A session on the shared model with the chosen backend. */
static sam2c_image_session *session_new(const shared *sh) {
    sam2c_image_session *s = NULL;
    if (sam2c_image_session_create(sh->model, &s)) return NULL;
    if (sh->be) s2_image_session_set_backend(s, sh->be);
    return s;
}

static void note(worker *w, const char *what, int img, int p) {
    if (!w->first_problem[0])
        snprintf(w->first_problem, sizeof w->first_problem, "thread %d image %d prompt %d: %s",
                 w->id, img, p, what);
}

/* Worker: its own session; every round sets each image (by pixels or by file, alternately
 * and in a thread-dependent order) and runs every prompt; round 0 is recorded, later
 * rounds must repeat it. */
static void *image_worker(void *arg) {
    worker *w = arg;
    const shared *sh = w->sh;
    omp_set_num_threads(sh->omp_threads); /* OpenMP thread counts are per pthread */
    sam2c_image_session *s = session_new(sh);
    if (!s) {
        w->errors++;
        note(w, sam2c_last_error(), -1, -1);
        return NULL;
    }
    for (int r = 0; r < N_ROUNDS; r++)
        for (int k = 0; k < N_IMG; k++) {
            int i = (k + w->id) % N_IMG;
            int rc = (r + w->id) % 2 ? sam2c_image_set_file(s, sh->path[i], 1)
                                     : sam2c_image_set_rgb(s, sh->img[i].px, sh->img[i].w,
                                                           sh->img[i].h);
            if (rc) {
                w->errors++;
                note(w, sam2c_last_error(), i, -1);
                continue;
            }
            for (int p = 0; p < N_PROMPT; p++) {
                result got, *rec = &w->rec[i][p];
                if (predict_case(s, p, r == 0 ? rec : &got)) w->errors++, note(w, sam2c_last_error(), i, p);
                else if (r > 0 && !result_same(&got, rec)) w->mismatches++, note(w, "differs from its first round", i, p);
                w->runs++;
                if (r > 0) result_free(&got);
            }
        }
    sam2c_image_session_free(s);
    return NULL;
}

/* Loads the model and the two images; false (test skipped or failed) when impossible. */
static bool shared_init(shared *sh) {
    memset(sh, 0, sizeof *sh);
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return false;
    }
    static char paths[N_IMG][1024];
    snprintf(paths[0], sizeof paths[0], "%s", s2t_fx("micro/image/truck/truck_450x300.jpg"));
    snprintf(paths[1], sizeof paths[1], "%s", s2t_fx("micro/image/groceries/groceries_400x267.jpg"));
    sam2c_model *m = NULL;
    if (sam2c_model_load(s2t_fx("micro/model.pt"), NULL, &m)) {
        s2t_fail(__FILE__, __LINE__, "model: %s", sam2c_last_error());
        return false;
    }
    sh->model = m;
    sh->omp_threads = omp_get_max_threads();
    s2_image_opts o;
    s2_image_opts_default(&o);
    for (int i = 0; i < N_IMG; i++) {
        sh->path[i] = paths[i];
        if (s2_image_load(paths[i], &o, &sh->img[i])) {
            s2t_fail(__FILE__, __LINE__, "image: %s", sam2c_last_error());
            return false;
        }
    }
    return true;
}

static void shared_free(shared *sh) {
    for (int i = 0; i < N_IMG; i++) {
        s2_image_free(&sh->img[i]);
        for (int p = 0; p < N_PROMPT; p++) result_free(&sh->ref[i][p]);
    }
    sam2c_model_free((sam2c_model *)sh->model);
}

/* The single-threaded reference results, on the calling thread. */
static bool reference_run(shared *sh) {
    sam2c_image_session *s = session_new(sh);
    bool ok = s != NULL;
    for (int i = 0; ok && i < N_IMG; i++) {
        ok = sam2c_image_set_rgb(s, sh->img[i].px, sh->img[i].w, sh->img[i].h) == 0;
        for (int p = 0; ok && p < N_PROMPT; p++) ok = predict_case(s, p, &sh->ref[i][p]) == 0;
    }
    if (!ok) s2t_fail(__FILE__, __LINE__, "reference run: %s", sam2c_last_error());
    sam2c_image_session_free(s);
    return ok;
}

/* Runs N_THREADS image workers at once (before_ref: the reference is made only after they
 * finish, so they start on cold process-wide caches), then checks every worker's results
 * against the single-threaded reference. */
static void run_workers(shared *sh, const char *label, bool before_ref) {
    pthread_t th[N_THREADS];
    static worker w[N_THREADS];
    int started = 0;
    if (!before_ref && !reference_run(sh)) return;
    for (int t = 0; t < N_THREADS; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].sh = sh, w[t].id = t;
        if (pthread_create(&th[t], NULL, image_worker, &w[t]) != 0) break;
        started++;
    }
    CHECK_EQ_INT(started, N_THREADS);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    bool ref_ok = !before_ref || reference_run(sh);
    for (int t = 0; t < started; t++) {
        for (int i = 0; ref_ok && i < N_IMG; i++)
            for (int p = 0; p < N_PROMPT; p++)
                if (!w[t].rec[i][p].rc && !result_same(&w[t].rec[i][p], &sh->ref[i][p]))
                    w[t].mismatches++, note(&w[t], "differs from the single-threaded run", i, p);
        CHECK_MSG(w[t].errors == 0 && w[t].mismatches == 0, "%s: %d errors, %d mismatches (%s)",
                  label, w[t].errors, w[t].mismatches, w[t].first_problem);
        CHECK_EQ_INT(w[t].runs, N_ROUNDS * N_IMG * N_PROMPT);
        for (int i = 0; i < N_IMG; i++)
            for (int p = 0; p < N_PROMPT; p++) result_free(&w[t].rec[i][p]);
    }
    fprintf(stderr, "    %s: %d threads x %d predictions, all bit-identical to one thread\n",
            label, started, N_ROUNDS * N_IMG * N_PROMPT);
}

// Several image sessions on several threads sharing one model (reference backend).
TEST(threads_image_sessions_share_model) {
    shared sh;
    if (shared_init(&sh)) {
        sh.be = s2_backend_reference();
        run_workers(&sh, "reference backend", false);
    }
    shared_free(&sh);
}

// The oneDNN backend from several threads at once: the threads race to create the engine
// and fill the primitive and weight caches, and must still agree bit for bit with a
// single-threaded run made afterwards (and with each other).
TEST(threads_dnnl_caches) {
#ifdef SAM2C_HAVE_DNNL
    shared sh;
    if (shared_init(&sh)) {
        sh.be = s2_backend_dnnl(S2_DNNL_F32);
        if (sh.be) run_workers(&sh, "oneDNN f32 backend, cold caches", true);
        else s2t_fail(__FILE__, __LINE__, "oneDNN: %s", sam2c_last_error());
    }
    shared_free(&sh);
#else
    s2t_skip("built without oneDNN");
#endif
}

/* ---------- video sessions ---------- */

/* One video run: the logits of every tracked frame, in order. */
typedef struct vrun {
    const sam2c_model *model;
    const char *frames;      /* folder */
    int omp_threads, rc, n;
    int w, h, n_obj[N_VFRAMES + 1];
    float *logits[N_VFRAMES + 1]; // (n_obj, h, w) each
    char err[256];
} vrun;

/* Frame callback: copies the frame's logits. */
static int vrun_frame(void *user, const sam2c_video_frame *f) {
    vrun *r = user;
    if (r->n > N_VFRAMES) return -1;
    r->w = f->width, r->h = f->height, r->n_obj[r->n] = f->n_obj;
    r->logits[r->n] = dup_f(f->logits, (size_t)f->n_obj * f->width * f->height);
    r->n++;
    return 0;
}

/* Opens the frames, clicks one object on frame 0 and tracks N_VFRAMES frames. */
static void *video_worker(void *arg) {
    vrun *r = arg;
    omp_set_num_threads(r->omp_threads);
    sam2c_video *v = NULL;
    const float pt[2] = {240, 135};
    const int32_t lab[1] = {1};
    r->rc = sam2c_video_create(r->model, NULL, &v);
    if (!r->rc) r->rc = sam2c_video_open(v, r->frames);
    if (!r->rc) r->rc = sam2c_video_add_points(v, 0, 1, 1, pt, lab, NULL, 0, NULL);
    if (!r->rc) r->rc = sam2c_video_propagate(v, 0, N_VFRAMES, 0, vrun_frame, r);
    if (r->rc) snprintf(r->err, sizeof r->err, "%s", sam2c_last_error());
    sam2c_video_free(v);
    return NULL;
}

static void vrun_free(vrun *r) {
    for (int i = 0; i <= N_VFRAMES; i++) free(r->logits[i]);
}

/* Same frames, objects and logits, bit for bit. */
static bool vrun_same(const vrun *a, const vrun *b) {
    if (a->rc || b->rc || a->n != b->n || a->w != b->w || a->h != b->h) return false;
    for (int i = 0; i < a->n; i++)
        if (a->n_obj[i] != b->n_obj[i] ||
            memcmp(a->logits[i], b->logits[i], sizeof(float) * a->n_obj[i] * a->w * a->h))
            return false;
    return true;
}

// Several video sessions tracking on several threads, sharing one model.
TEST(threads_video_sessions_share_model) {
    shared sh;
    if (!shared_init(&sh)) {
        shared_free(&sh);
        return;
    }
    static char frames[1024];
    snprintf(frames, sizeof frames, "%s", s2t_fx("micro/video/frames"));
    vrun ref = {.model = sh.model, .frames = frames, .omp_threads = sh.omp_threads};
    video_worker(&ref);
    CHECK_MSG(ref.rc == 0 && ref.n == N_VFRAMES + 1, "single-threaded run: rc %d, %d frames: %s",
              ref.rc, ref.n, ref.err);
    static vrun r[N_VTHREADS];
    pthread_t th[N_VTHREADS];
    int started = 0;
    for (int t = 0; t < N_VTHREADS; t++) {
        memset(&r[t], 0, sizeof r[t]);
        r[t].model = sh.model, r[t].frames = frames, r[t].omp_threads = sh.omp_threads;
        if (pthread_create(&th[t], NULL, video_worker, &r[t]) != 0) break;
        started++;
    }
    CHECK_EQ_INT(started, N_VTHREADS);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < started; t++) {
        CHECK_MSG(vrun_same(&r[t], &ref), "video thread %d: rc %d, %d frames, differs from one thread (%s)",
                  t, r[t].rc, r[t].n, r[t].err);
        vrun_free(&r[t]);
    }
    fprintf(stderr, "    video: %d threads x %d tracked frames, bit-identical to one thread\n",
            started, ref.n);
    vrun_free(&ref);
    shared_free(&sh);
}

/* ---------- cancellation from another thread ---------- */

typedef struct cancel_run {
    sam2c_video *v;
    atomic_int reached, cancelled;
    int rc, frames;
} cancel_run;

/* Frame callback: on the first frame, tells the main thread and waits for its cancel. */
static int cancel_frame(void *user, const sam2c_video_frame *f) {
    (void)f;
    cancel_run *c = user;
    if (c->frames++ == 0) {
        atomic_store(&c->reached, 1);
        while (!atomic_load(&c->cancelled)) sched_yield();
    }
    return 0;
}

static void *cancel_worker(void *arg) {
    cancel_run *c = arg;
    c->rc = sam2c_video_propagate(c->v, 0, -1, 0, cancel_frame, c);
    return NULL;
}

// sam2c_video_cancel from another thread stops a running propagation at the next frame
// boundary (here: right after the first frame, deterministically).
TEST(threads_video_cancel) {
    shared sh;
    if (!shared_init(&sh)) {
        shared_free(&sh);
        return;
    }
    static cancel_run c;
    memset(&c, 0, sizeof c);
    const float pt[2] = {240, 135};
    const int32_t lab[1] = {1};
    REQUIRE(sam2c_video_create(sh.model, NULL, &c.v) == 0);
    int rc = sam2c_video_open(c.v, s2t_fx("micro/video/frames"));
    if (!rc) rc = sam2c_video_add_points(c.v, 0, 1, 1, pt, lab, NULL, 0, NULL);
    CHECK_MSG(rc == 0, "setup: %s", sam2c_last_error());
    pthread_t th;
    if (rc == 0 && pthread_create(&th, NULL, cancel_worker, &c) == 0) {
        while (!atomic_load(&c.reached)) sched_yield();
        sam2c_video_cancel(c.v);
        atomic_store(&c.cancelled, 1);
        pthread_join(th, NULL);
        CHECK_EQ_INT(c.rc, SAM2C_ERR_CANCELLED);
        CHECK_EQ_INT(c.frames, 1);
        // The session is usable again afterwards.
        CHECK_EQ_INT(sam2c_video_propagate(c.v, 0, 1, 0, NULL, NULL), 0);
    }
    sam2c_video_free(c.v);
    shared_free(&sh);
}
