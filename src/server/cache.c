/* Per-image sessions with encode-once semantics, a bounded LRU, and the background
 * encode worker. One mutex guards the entry list and the job table; an entry's `busy`
 * flag gives its session to one thread at a time (sessions are single-threaded), and
 * the first thread to take a fresh entry encodes it while later ones wait on `cv`. */
#include "server/cache.h"
#include "core/s2.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOB_CAP 1024 /* job records remembered (a ring by id) */

struct s2_cache_entry {
    int64_t id;
    sam2c_image_session *s;  /* NULL until the first encode */
    bool encoded, busy;
    int pins;                /* threads holding or waiting for the entry */
    uint64_t last_used;
    int w, h;
    struct s2_cache_entry *next;
};

typedef struct job_rec {
    int64_t id, ref;
    char kind[16];
    s2_task_fn fn;           /* NULL: encode image `ref` */
    void *user;
    double progress;         /* reported by a task; < 0: estimated from encode times */
    s2_job_state state;
    double t_start, t_end;
    char error[256];
} job_rec;

struct s2_cache {
    const sam2c_model *m;
    int max_sessions;
    s2_cache_load_fn load;
    void *user;
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* an entry became free */
    s2_cache_entry *head;
    uint64_t tick;
    s2_cache_stats st;
    double est_s;             /* running estimate of one encode's duration */
    job_rec *jobs;            /* [JOB_CAP], job j at j % JOB_CAP */
    int64_t next_job, next_run;
    pthread_cond_t job_cv;    /* a job was queued, or stop */
    pthread_t worker;
    bool worker_up, stop;
};

const char *s2_job_state_name(s2_job_state s) {
    switch (s) {
    case S2_JOB_QUEUED: return "queued";
    case S2_JOB_RUNNING: return "running";
    case S2_JOB_DONE: return "done";
    default: return "failed";
    }
}

static void *worker_main(void *arg);

int s2_cache_create(const sam2c_model *m, int max_sessions, s2_cache_load_fn load, void *user,
                    s2_cache **out) {
    *out = NULL;
    if (!m || !load || max_sessions < 1) return s2_err(SAM2C_ERR_ARG, "session cache: bad arguments");
    s2_cache *c = s2_calloc(1, sizeof *c);
    if (!c) return SAM2C_ERR_NOMEM;
    c->jobs = s2_calloc(JOB_CAP, sizeof *c->jobs);
    if (!c->jobs) { free(c); return SAM2C_ERR_NOMEM; }
    c->m = m;
    c->max_sessions = max_sessions;
    c->load = load;
    c->user = user;
    c->next_job = c->next_run = 1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_cond_init(&c->job_cv, NULL);
    if (pthread_create(&c->worker, NULL, worker_main, c) != 0) {
        s2_cache_free(c);
        return s2_err(SAM2C_ERR_NOMEM, "session cache: cannot start the encode worker");
    }
    c->worker_up = true;
    *out = c;
    return SAM2C_OK;
}

void s2_cache_free(s2_cache *c) {
    if (!c) return;
    if (c->worker_up) {
        pthread_mutex_lock(&c->mu);
        c->stop = true;
        pthread_cond_broadcast(&c->job_cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->worker, NULL);
    }
    for (s2_cache_entry *e = c->head, *n; e; e = n) {
        n = e->next;
        sam2c_image_session_free(e->s);
        free(e);
    }
    pthread_cond_destroy(&c->job_cv);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c->jobs);
    free(c);
}

static s2_cache_entry *find(s2_cache *c, int64_t id) {
    for (s2_cache_entry *e = c->head; e; e = e->next)
        if (e->id == id) return e;
    return NULL;
}

/* Unlinks and frees an entry (mutex held, entry unpinned). */
static void drop(s2_cache *c, s2_cache_entry *e) {
    for (s2_cache_entry **p = &c->head; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    if (e->encoded) c->st.sessions--;
    sam2c_image_session_free(e->s);
    free(e);
}

/* Frees least recently used idle sessions while more than max_sessions are encoded. */
static void evict(s2_cache *c) {
    while (c->st.sessions > c->max_sessions) {
        s2_cache_entry *lru = NULL;
        for (s2_cache_entry *e = c->head; e; e = e->next)
            if (e->encoded && e->pins == 0 && (!lru || e->last_used < lru->last_used)) lru = e;
        if (!lru) return; /* all in use: over the cap until they are released */
        drop(c, lru);
        c->st.evictions++;
    }
}

/* Decodes and encodes the entry's image (entry busy, mutex not held). */
static int encode_entry(s2_cache *c, s2_cache_entry *e) {
    s2_image im = {0};
    double t0 = s2_now_s();
    int rc = c->load(c->user, e->id, &im);
    if (rc == SAM2C_OK && !e->s) rc = sam2c_image_session_create(c->m, &e->s);
    if (rc == SAM2C_OK) rc = sam2c_image_set_rgb(e->s, im.px, im.w, im.h);
    double dt = s2_now_s() - t0;
    pthread_mutex_lock(&c->mu);
    if (rc == SAM2C_OK) {
        e->encoded = true;
        e->w = im.w;
        e->h = im.h;
        c->st.sessions++;
        c->st.encodes++;
        c->st.encode_s_sum += dt;
        if (dt > c->st.encode_s_max) c->st.encode_s_max = dt;
        c->est_s = c->est_s > 0 ? 0.7 * c->est_s + 0.3 * dt : dt;
    } else c->st.encode_failures++;
    pthread_mutex_unlock(&c->mu);
    s2_image_free(&im);
    return rc;
}

int s2_cache_acquire(s2_cache *c, int64_t id, s2_cache_entry **out, sam2c_image_session **s,
                     int *encoded) {
    if (encoded) *encoded = 0;
    pthread_mutex_lock(&c->mu);
    s2_cache_entry *e = find(c, id);
    if (!e) {
        e = s2_calloc(1, sizeof *e);
        if (!e) {
            pthread_mutex_unlock(&c->mu);
            return SAM2C_ERR_NOMEM;
        }
        e->id = id;
        e->next = c->head;
        c->head = e;
    }
    e->pins++;
    while (e->busy) pthread_cond_wait(&c->cv, &c->mu);
    e->busy = true;
    e->last_used = ++c->tick;
    bool need = !e->encoded;
    pthread_mutex_unlock(&c->mu);
    if (need) {
        int rc = encode_entry(c, e);
        if (rc < 0) {
            s2_cache_release(c, e);
            return rc;
        }
        if (encoded) *encoded = 1;
    }
    *out = e;
    *s = e->s;
    return SAM2C_OK;
}

void s2_cache_release(s2_cache *c, s2_cache_entry *e) {
    if (!e) return;
    pthread_mutex_lock(&c->mu);
    e->busy = false;
    e->pins--;
    if (!e->encoded && e->pins == 0) drop(c, e);
    evict(c);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void s2_cache_entry_size(const s2_cache_entry *e, int *w, int *h) {
    *w = e->w;
    *h = e->h;
}

bool s2_cache_is_encoded(s2_cache *c, int64_t id) {
    pthread_mutex_lock(&c->mu);
    s2_cache_entry *e = find(c, id);
    bool r = e && e->encoded;
    pthread_mutex_unlock(&c->mu);
    return r;
}

void s2_cache_get_stats(s2_cache *c, s2_cache_stats *out) {
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    out->jobs_queued = 0;
    for (int64_t j = c->next_run; j < c->next_job; j++)
        if (c->jobs[j % JOB_CAP].state == S2_JOB_QUEUED) out->jobs_queued++;
    pthread_mutex_unlock(&c->mu);
}

/* ---- background encode jobs ---- */

/* The oldest queued job, or NULL (mutex held). */
static job_rec *next_queued(s2_cache *c) {
    for (; c->next_run < c->next_job; c->next_run++) {
        job_rec *j = &c->jobs[c->next_run % JOB_CAP];
        if (j->state == S2_JOB_QUEUED) return j;
    }
    return NULL;
}

/* Runs queued encodes one after another until stopped. */
static void *worker_main(void *arg) {
    s2_cache *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        job_rec *j = next_queued(c);
        if (!j) {
            pthread_cond_wait(&c->job_cv, &c->mu);
            continue;
        }
        j->state = S2_JOB_RUNNING;
        j->t_start = s2_now_s();
        int64_t ref = j->ref, job_id = j->id;
        s2_task_fn fn = j->fn;
        void *user = j->user;
        pthread_mutex_unlock(&c->mu);
        int rc;
        if (fn) rc = fn(user, ref, job_id);
        else {
            s2_cache_entry *e = NULL;
            sam2c_image_session *s;
            rc = s2_cache_acquire(c, ref, &e, &s, NULL);
            if (rc == SAM2C_OK) s2_cache_release(c, e);
        }
        pthread_mutex_lock(&c->mu);
        j = &c->jobs[job_id % JOB_CAP]; /* the slot cannot be reused while running */
        j->t_end = s2_now_s();
        j->state = rc == SAM2C_OK ? S2_JOB_DONE : S2_JOB_FAILED;
        if (rc < 0) snprintf(j->error, sizeof j->error, "%s", sam2c_last_error());
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Queues a job (mutex held); `done` makes it finished at once. */
static int submit(s2_cache *c, const char *kind, int64_t ref, s2_task_fn fn, void *user, bool done,
                  int64_t *job_id) {
    for (int64_t k = c->next_run; k < c->next_job; k++) {
        job_rec *j = &c->jobs[k % JOB_CAP];
        if (j->ref == ref && !strcmp(j->kind, kind) && (j->state == S2_JOB_QUEUED || j->state == S2_JOB_RUNNING)) {
            *job_id = j->id;
            return SAM2C_OK;
        }
    }
    job_rec *j = &c->jobs[c->next_job % JOB_CAP];
    if (j->id && (j->state == S2_JOB_QUEUED || j->state == S2_JOB_RUNNING))
        return s2_err(SAM2C_ERR_LIMIT, "too many jobs waiting (%d)", JOB_CAP);
    memset(j, 0, sizeof *j);
    j->id = c->next_job++;
    j->ref = ref;
    snprintf(j->kind, sizeof j->kind, "%s", kind);
    j->fn = fn;
    j->user = user;
    j->progress = fn ? 0 : -1;
    j->state = done ? S2_JOB_DONE : S2_JOB_QUEUED;
    j->t_start = j->t_end = s2_now_s();
    *job_id = j->id;
    pthread_cond_signal(&c->job_cv);
    return SAM2C_OK;
}

int s2_cache_submit(s2_cache *c, int64_t id, int64_t *job_id) {
    pthread_mutex_lock(&c->mu);
    s2_cache_entry *e = find(c, id);
    int rc = submit(c, "encode", id, NULL, NULL, e && e->encoded, job_id);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int s2_cache_submit_task(s2_cache *c, const char *kind, int64_t ref, s2_task_fn fn, void *user,
                         int64_t *job_id) {
    pthread_mutex_lock(&c->mu);
    int rc = submit(c, kind, ref, fn, user, false, job_id);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void s2_cache_job_progress(s2_cache *c, int64_t job_id, double frac) {
    pthread_mutex_lock(&c->mu);
    job_rec *j = &c->jobs[job_id % JOB_CAP];
    if (j->id == job_id && j->state == S2_JOB_RUNNING) j->progress = S2_MAX(0.0, S2_MIN(1.0, frac));
    pthread_mutex_unlock(&c->mu);
}

int s2_cache_job(s2_cache *c, int64_t job_id, s2_job_info *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&c->mu);
    const job_rec *j = job_id > 0 ? &c->jobs[job_id % JOB_CAP] : NULL;
    if (!j || j->id != job_id) {
        pthread_mutex_unlock(&c->mu);
        return s2_err(SAM2C_ERR_MISSING, "no job %lld", (long long)job_id);
    }
    out->id = j->id;
    out->ref = j->ref;
    snprintf(out->kind, sizeof out->kind, "%s", j->kind);
    out->state = j->state;
    double now = s2_now_s();
    if (j->state == S2_JOB_RUNNING) {
        out->elapsed_s = now - j->t_start;
        double est = c->est_s > 0 ? c->est_s : 2.0;
        out->progress = j->progress >= 0 ? j->progress : S2_MIN(0.95, out->elapsed_s / est);
    } else if (j->state == S2_JOB_QUEUED) {
        for (int64_t k = c->next_run; k < j->id; k++)
            if (c->jobs[k % JOB_CAP].state <= S2_JOB_RUNNING && c->jobs[k % JOB_CAP].id == k) out->queue_pos++;
    } else {
        out->elapsed_s = j->t_end - j->t_start;
        out->progress = j->state == S2_JOB_DONE ? 1.0 : 0.0;
    }
    snprintf(out->error, sizeof out->error, "%s", j->error);
    pthread_mutex_unlock(&c->mu);
    return SAM2C_OK;
}
