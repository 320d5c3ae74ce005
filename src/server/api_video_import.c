/* Video file uploads: POST /api/videos/upload streams an MP4 (or anything libavformat
 * decodes) to PROJECT/uploads, then a background job splits it into frames, stores each
 * as a PNG image and makes them a video of the project (the same kind of video as one
 * made of uploaded images, so prompting, propagation and export work on it unchanged).
 * Every file the server writes stays under PROJECT/uploads, named by the server. */
#include "server/internal.h"
#include "io/image.h"
#include "io/video_decode.h"

#ifdef SAM2C_HAVE_SERVER
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define N_IMPORTS 256                       /* import records kept (ring) */
#define MAX_FRAMES 2000                     /* as api_videos.c: frames of one video */
#define MAX_FRAME_BYTES ((int64_t)3 << 30)  /* decoded frames a video session holds */

typedef struct vimport {
    int64_t ref;                            /* 0: free slot */
    int64_t video_id;                       /* set when done */
    bool pending;
    int stride;
    char name[256];                         /* video name (sanitised, no extension) */
    char path[4096];                        /* the uploaded file while pending */
} vimport;

struct s2_vimports {
    pthread_mutex_t mu;
    char dir[4096];                         /* PROJECT/uploads */
    int64_t next;
    vimport rec[N_IMPORTS];
};

/* Removes what a previous server left in the uploads folder (the project lock makes
 * this server its only user). */
static void clean_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096 + 300];
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "upload-", 7) || !strncmp(e->d_name, "import-", 7)) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
}

int s2_vimports_create(const char *project, struct s2_vimports **out) {
    *out = NULL;
    struct s2_vimports *im = s2_calloc(1, sizeof *im);
    if (!im) return SAM2C_ERR_NOMEM;
    if ((size_t)snprintf(im->dir, sizeof im->dir, "%s/uploads", project) >= sizeof im->dir) {
        free(im);
        return s2_err(SAM2C_ERR_ARG, "%s: project path too long", project);
    }
    if (mkdir(im->dir, 0700) != 0 && errno != EEXIST) {
        int rc = s2_err(SAM2C_ERR_IO, "%s: %s", im->dir, strerror(errno));
        free(im);
        return rc;
    }
    clean_dir(im->dir);
    pthread_mutex_init(&im->mu, NULL);
    *out = im;
    return SAM2C_OK;
}

void s2_vimports_free(struct s2_vimports *im) {
    if (!im) return;
    for (int i = 0; i < N_IMPORTS; i++)
        if (im->rec[i].pending) unlink(im->rec[i].path);
    pthread_mutex_destroy(&im->mu);
    free(im);
}

int s2_upload_tmpfile(s2_server *sv, char *path) {
    snprintf(path, 4096, "%.4000s/upload-XXXXXX", sv->imports->dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        s2_err(SAM2C_ERR_IO, "cannot create a temporary file in the project's uploads folder: %s", strerror(errno));
        path[0] = 0;
    }
    return fd;
}

int64_t s2_vimport_video(s2_server *sv, int64_t ref) {
    struct s2_vimports *im = sv->imports;
    pthread_mutex_lock(&im->mu);
    const vimport *r = &im->rec[ref % N_IMPORTS];
    int64_t v = r->ref == ref && !r->pending ? r->video_id : 0;
    pthread_mutex_unlock(&im->mu);
    return v;
}

/* Counts the frames the reader can decode (undecodable ones are skipped). */
static int count_frames(s2_server *sv, const char *path, int *n) {
    s2_vreader *r = NULL;
    S2_CHECK(s2_vreader_open(path, &r));
    const uint8_t *rgb;
    int rc, bad = 0;
    *n = 0;
    while ((rc = s2_vreader_next(r, &rgb, NULL)) != 0) {
        if (atomic_load(&sv->stopping)) { rc = s2_err(SAM2C_ERR_CANCELLED, "import stopped: the server is shutting down"); break; }
        if (rc == SAM2C_ERR_FORMAT && ++bad <= 100) continue;
        if (rc < 0) break;
        (*n)++;
    }
    s2_vreader_free(r);
    return rc < 0 ? rc : SAM2C_OK;
}

/* Encodes one frame as PNG and stores it as image "NAME-000012.png". */
static int store_frame(s2_server *sv, const vimport *it, const uint8_t *rgb, int w, int h, int idx, int64_t *id) {
    uint8_t *png = NULL;
    size_t len = 0;
    S2_CHECK(s2_png_encode(rgb, w, h, 3, &png, &len));
    char fname[300];
    snprintf(fname, sizeof fname, "%.200s-%06d.png", it->name, idx);
    int rc = s2_store_add_image(sv->store, fname, "image/png", w, h, png, len, id);
    free(png);
    return rc;
}

/* Decodes again and stores every stride-th frame; progress goes from 0.1 to 1. */
static int store_frames(s2_server *sv, const vimport *it, int64_t job, int64_t *ids, int kept) {
    s2_vreader *r = NULL;
    S2_CHECK(s2_vreader_open(it->path, &r));
    int w = 0, h = 0, i = 0, j = 0, rc = SAM2C_OK, bad = 0;
    double fps;
    s2_vreader_info(r, &w, &h, &fps);
    const uint8_t *rgb;
    while (j < kept && (rc = s2_vreader_next(r, &rgb, NULL)) != 0) {
        if (atomic_load(&sv->stopping)) { rc = s2_err(SAM2C_ERR_CANCELLED, "import stopped: the server is shutting down"); break; }
        if (rc == SAM2C_ERR_FORMAT && ++bad <= 100) continue;
        if (rc < 0) break;
        if (i++ % it->stride) continue;
        if ((rc = store_frame(sv, it, rgb, w, h, i - 1, &ids[j])) < 0) break;
        j++;
        s2_cache_job_progress(sv->cache, job, 0.1 + 0.9 * (double)j / kept);
    }
    s2_vreader_free(r);
    if (rc < 0) return rc;
    if (j < kept) return s2_err(SAM2C_ERR_FORMAT, "%s: the file ended after %d of %d frames", it->name, j, kept);
    return SAM2C_OK;
}

/* Splits the upload into frames and makes the video; *vid gets its id. */
static int split_video(s2_server *sv, const vimport *it, int64_t job, int64_t *vid) {
    int n = 0, w = 0, h = 0;
    double fps = 0;
    S2_CHECK(count_frames(sv, it->path, &n));
    s2_cache_job_progress(sv->cache, job, 0.1);
    s2_vreader *r = NULL;
    S2_CHECK(s2_vreader_open(it->path, &r));
    s2_vreader_info(r, &w, &h, &fps);
    s2_vreader_free(r);
    int kept = (n + it->stride - 1) / it->stride;
    if (kept < 1) return s2_err(SAM2C_ERR_FORMAT, "%s: no frame could be decoded", it->name);
    if (kept > MAX_FRAMES || (int64_t)kept * w * h * 3 > MAX_FRAME_BYTES)
        return s2_err(SAM2C_ERR_LIMIT, "%s: %d frames of %d x %d (stride %d) is over the limit of %d frames / %lld "
                      "decoded bytes; upload again with ?stride=%d", it->name, kept, w, h, it->stride, MAX_FRAMES,
                      (long long)MAX_FRAME_BYTES, it->stride * ((kept + MAX_FRAMES - 1) / MAX_FRAMES) + 1);
    int64_t *ids = s2_calloc((size_t)kept, sizeof *ids);
    if (!ids) return SAM2C_ERR_NOMEM;
    int rc = store_frames(sv, it, job, ids, kept);
    if (rc == SAM2C_OK) rc = s2_store_add_video(sv->store, it->name, ids, kept, vid);
    free(ids);
    return rc;
}

/* The import job: split, then forget the uploaded file. */
static int import_task(void *user, int64_t ref, int64_t job) {
    s2_server *sv = user;
    struct s2_vimports *im = sv->imports;
    vimport it;
    pthread_mutex_lock(&im->mu);
    it = im->rec[ref % N_IMPORTS];
    pthread_mutex_unlock(&im->mu);
    if (it.ref != ref) return s2_err(SAM2C_ERR_STATE, "import %lld was forgotten", (long long)ref);
    int64_t vid = 0;
    int rc = split_video(sv, &it, job, &vid);
    unlink(it.path);
    pthread_mutex_lock(&im->mu);
    im->rec[ref % N_IMPORTS].pending = false;
    im->rec[ref % N_IMPORTS].video_id = vid;
    pthread_mutex_unlock(&im->mu);
    return rc;
}

/* Opens the upload once to answer a file that is not a video at once (415), with the
 * client's file name in the message instead of the server's path. */
static int probe(const char *path, const char *shown, s2_resp *rs) {
    s2_vreader *r = NULL;
    int rc = s2_vreader_open(path, &r);
    s2_vreader_free(r);
    if (rc == SAM2C_OK) return SAM2C_OK;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", sam2c_last_error());
    char *at = strstr(msg, path);
    const char *rest = at ? at + strlen(path) : msg;
    int st = rc == SAM2C_ERR_LIMIT ? 413 : rc == SAM2C_ERR_NOMEM ? 503 : 415;
    if (at) s2_resp_error(rs, st, "%s%s", shown, rest);
    else s2_resp_error(rs, st, "%s: not a video file that can be decoded", shown);
    return rc;
}

/* Takes a record for a new import and moves the upload to its own name. */
static int reserve(s2_server *sv, const s2_req *rq, const char *name, int stride, int64_t *ref) {
    struct s2_vimports *im = sv->imports;
    int rc = SAM2C_OK;
    pthread_mutex_lock(&im->mu);
    int64_t k = im->next + 1;
    vimport *r = &im->rec[k % N_IMPORTS];
    if (r->pending) rc = s2_err(SAM2C_ERR_NOMEM, "too many video imports queued; try again later");
    else {
        *r = (vimport){.ref = k, .pending = true, .stride = stride};
        snprintf(r->name, sizeof r->name, "%s", name);
        snprintf(r->path, sizeof r->path, "%.4000s/import-%lld", im->dir, (long long)k);
        if (rename(rq->body_path, r->path) != 0) {
            rc = s2_err(SAM2C_ERR_IO, "cannot keep the upload: %s", strerror(errno));
            r->ref = 0;
            r->pending = false;
        } else im->next = k;
    }
    pthread_mutex_unlock(&im->mu);
    *ref = k;
    return rc;
}

/* Drops a reserved record whose job could not be queued. */
static void unreserve(s2_server *sv, int64_t ref) {
    struct s2_vimports *im = sv->imports;
    pthread_mutex_lock(&im->mu);
    vimport *r = &im->rec[ref % N_IMPORTS];
    unlink(r->path);
    r->ref = 0;
    r->pending = false;
    pthread_mutex_unlock(&im->mu);
}

/* POST /api/videos/upload?name=clip.mp4[&stride=N], body = the video file -> 202 job
 * {"kind": "video_import", "import_id", ...}; the finished job has "video_id". */
void s2_h_videos_upload(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    if (!rq->body_path) { s2_resp_error(rs, 500, "internal error: the upload was not kept"); return; }
    if (!s2_vdec_available()) { s2_resp_error(rs, 501, "video upload needs sam2c built with FFmpeg"); return; }
    if (rq->len == 0) { s2_resp_error(rs, 400, "empty body: the video file is expected"); return; }
    const char *ss = s2_req_query(rq, "stride");
    char *end = NULL;
    long stride = ss ? strtol(ss, &end, 10) : 1;
    if (ss && (!*ss || *end || stride < 1 || stride > 1000)) {
        s2_resp_error(rs, 400, "?stride= must be an integer in 1..1000 (keep every N-th frame)");
        return;
    }
    char file[256], name[256];
    s2_sanitize_name(s2_req_query(rq, "name"), "video", file, sizeof file);
    snprintf(name, sizeof name, "%s", file);
    char *dot = strrchr(name, '.');
    if (dot && dot != name) *dot = 0;
    if (probe(rq->body_path, file, rs) < 0) return;
    int64_t ref = 0, job = 0;
    s2_job_info ji;
    int rc = reserve(sv, rq, name, (int)stride, &ref);
    if (rc == SAM2C_OK && (rc = s2_cache_submit_task(sv->cache, "video_import", ref, import_task, sv, &job)) < 0)
        unreserve(sv, ref);
    if (rc == SAM2C_OK) rc = s2_cache_job(sv->cache, job, &ji);
    if (rc < 0) { s2_resp_lib_error(rs, rc == SAM2C_ERR_LIMIT ? SAM2C_ERR_NOMEM : rc); return; }
    s2_jw w;
    s2_jw_init(&w);
    s2_write_job(sv, &w, &ji);
    s2_resp_json(rs, 202, &w);
}

#endif
