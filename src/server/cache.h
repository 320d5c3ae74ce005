/* Image sessions of the server: one sam2c_image_session per image, encoded once even when
 * many requests for a new image arrive together (the first one encodes, the others wait
 * on the entry), kept in a bounded LRU; plus a background encode worker whose jobs
 * clients poll for progress. The model is shared read-only by every session. */
#ifndef S2_SERVER_CACHE_H
#define S2_SERVER_CACHE_H

#include "sam2c.h"
#include "io/image.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct s2_cache s2_cache;
typedef struct s2_cache_entry s2_cache_entry;

/* Decodes image `id` into *out (RGB); called without any cache lock held. */
typedef int (*s2_cache_load_fn)(void *user, int64_t id, s2_image *out);

/* max_sessions >= 1: encoded sessions kept; more are made while all are in use and the
 * least recently used idle ones are freed again. Caller frees with s2_cache_free. */
int s2_cache_create(const sam2c_model *m, int max_sessions, s2_cache_load_fn load, void *user,
                    s2_cache **out);
/* Stops the worker (a running encode finishes first) and frees every session. */
void s2_cache_free(s2_cache *c);

/* Takes image `id`'s session for exclusive use, encoding it first when needed (*encoded
 * gets 1 then, may be NULL). The session is valid until s2_cache_release. */
int s2_cache_acquire(s2_cache *c, int64_t id, s2_cache_entry **e, sam2c_image_session **s,
                     int *encoded);
void s2_cache_release(s2_cache *c, s2_cache_entry *e);
/* Upright size of the entry's image (valid while acquired). */
void s2_cache_entry_size(const s2_cache_entry *e, int *w, int *h);
bool s2_cache_is_encoded(s2_cache *c, int64_t id);

typedef struct s2_cache_stats {
    int64_t encodes, encode_failures, evictions;
    double encode_s_sum, encode_s_max;
    int sessions;              /* cached now */
    int jobs_queued;
} s2_cache_stats;
void s2_cache_get_stats(s2_cache *c, s2_cache_stats *out);

/* ---- background jobs (encodes, video propagation), run one at a time ---- */
typedef enum { S2_JOB_QUEUED, S2_JOB_RUNNING, S2_JOB_DONE, S2_JOB_FAILED } s2_job_state;
typedef struct s2_job_info {
    int64_t id;
    char kind[16];       /* "encode" or the task's kind */
    int64_t ref;         /* the image (encode) or the task's subject */
    s2_job_state state;
    double progress;     /* 0..1; while running an estimate from past encode times */
    double elapsed_s;    /* since the job started running (0 while queued) */
    int queue_pos;       /* jobs ahead of it while queued */
    char error[256];     /* when failed */
} s2_job_info;
const char *s2_job_state_name(s2_job_state s);

/* Queues the encoding of image `id` (an existing queued/running job for it is reused; an
 * image already encoded gets a job that is done at once). */
int s2_cache_submit(s2_cache *c, int64_t id, int64_t *job_id);
/* A task for the worker: returns a status (its message becomes the job's error). */
typedef int (*s2_task_fn)(void *user, int64_t ref, int64_t job_id);
/* Queues fn(user, ref, job) (a queued/running job of the same kind and ref is reused). */
int s2_cache_submit_task(s2_cache *c, const char *kind, int64_t ref, s2_task_fn fn, void *user,
                         int64_t *job_id);
/* A running task reports its progress (0..1). */
void s2_cache_job_progress(s2_cache *c, int64_t job_id, double frac);
/* SAM2C_ERR_MISSING for an unknown (or long forgotten) job. */
int s2_cache_job(s2_cache *c, int64_t job_id, s2_job_info *out);

#endif
