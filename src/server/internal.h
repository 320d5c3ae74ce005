/* Private to src/server: the server object, requests and responses as the route
 * handlers see them (independent of libmicrohttpd), metrics, embedded web assets. */
#ifndef S2_SERVER_INTERNAL_H
#define S2_SERVER_INTERNAL_H

#include "server/server.h"
#include "server/cache.h"
#include "server/store.h"
#include "io/json.h"
#include "core/s2.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Route ids, for metrics. */
#define S2_ROUTE_MAP(X)                                                              \
    X(STATIC, "static") X(HEALTH, "healthz") X(METRICS, "metrics")                   \
    X(IMAGES_LIST, "images_list") X(IMAGES_UPLOAD, "images_upload")                  \
    X(IMAGE_GET, "image_get") X(PREDICT, "predict") X(ENCODE, "encode")              \
    X(OBJECTS_LIST, "objects_list") X(OBJECTS_CREATE, "objects_create")              \
    X(OBJECT_GET, "object_get") X(OBJECT_PATCH, "object_patch")                      \
    X(OBJECT_DELETE, "object_delete") X(OBJECT_MASK, "object_mask")                  \
    X(EXPORT, "export") X(JOB, "job") X(VIDEOS_LIST, "videos_list")                 \
    X(VIDEOS_CREATE, "videos_create") X(VIDEO_GET, "video_get")                      \
    X(VIDEO_PROMPT, "video_prompt") X(VIDEO_PROPAGATE, "video_propagate")            \
    X(VIDEO_MASKS, "video_masks") X(VIDEO_ACCEPT, "video_accept")                    \
    X(VIDEO_RESET, "video_reset") X(VIDEO_UPLOAD, "video_upload")                   \
    X(UNAUTHORIZED, "unauthorized") X(OTHER, "other")
typedef enum {
#define S2_X_ROUTE(id, name) S2_R_##id,
    S2_ROUTE_MAP(S2_X_ROUTE)
#undef S2_X_ROUTE
    S2_R_COUNT
} s2_route;

#define S2_LAT_BUCKETS 12 /* request latency histogram (upper bounds in seconds) */

typedef struct s2_metrics {
    pthread_mutex_t mu;
    int64_t requests[S2_R_COUNT];
    double route_s[S2_R_COUNT];          /* summed handler time */
    int64_t by_class[6];                 /* [k] = kxx responses */
    int64_t lat_bucket[S2_LAT_BUCKETS + 1]; /* last = +Inf */
    double lat_sum;
    int64_t predicts;
    double predict_s_sum, predict_s_max;
    int64_t bytes_in, bytes_out;
    double started;                      /* s2_now_s() at start */
} s2_metrics;

struct s2_server {
    const sam2c_model *m;
    s2_server_params p;
    char host[64], project[4096], token[257];
    void *daemon;                        /* struct MHD_Daemon * */
    int port;
    s2_store *store;
    s2_cache *cache;
    struct s2_vslot *vslot;              /* the one video session in memory (api_videos.c) */
    struct s2_vimports *imports;         /* video file imports (api_video_import.c) */
    s2_metrics met;
    pthread_mutex_t log_mu;
    char mhd_error[256];                 /* last libmicrohttpd message */
    atomic_int stopping;                 /* set by s2_server_stop: long jobs end early */
};

typedef struct s2_req {
    const char *method;                  /* "GET", "POST", ... ("HEAD" is served as "GET") */
    const char *url;
    const char *ctype;                   /* Content-Type header or NULL */
    const char *body;                    /* NUL-terminated copy of the body */
    size_t len;
    const char *body_path;               /* routes that stream to disk: the file holding the
                                          * body (removed after the handler unless it moved it) */
    int64_t id;                          /* the {id} of the path, when the route has one */
    const char *(*query)(void *conn, const char *key);
    void *conn;
} s2_req;

typedef struct s2_resp {
    int status;
    char *body;                          /* owned unless is_static */
    size_t len;
    bool is_static;
    const char *ctype;
    char allow[96];                      /* Allow header for 405, or "" */
    char disposition[160];               /* Content-Disposition header, or "" */
    bool challenge;                      /* 401: add WWW-Authenticate: Bearer */
} s2_resp;

typedef void (*s2_handler)(s2_server *sv, const s2_req *rq, s2_resp *rs);

/* Responses. s2_resp_json takes w's buffer (or answers 500 when w failed). */
void s2_resp_json(s2_resp *rs, int status, s2_jw *w);
void s2_resp_error(s2_resp *rs, int status, const char *fmt, ...) S2_PRINTF(3, 4);
/* The library status rc (< 0) as an HTTP error with sam2c_last_error(). */
void s2_resp_lib_error(s2_resp *rs, int rc);
/* Parses a JSON body after checking its Content-Type; answers the error itself and
 * returns NULL on failure. Free with s2_json_free. */
s2_json *s2_req_json(s2_server *sv, const s2_req *rq, s2_resp *rs);
const char *s2_req_query(const s2_req *rq, const char *key);

/* Handlers (api_images.c, api_objects.c). */
void s2_h_images_list(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_images_upload(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_image_get(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_predict(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_encode(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_job(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_objects_list(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_objects_create(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_object_get(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_object_patch(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_object_delete(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_object_mask(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_export(s2_server *sv, const s2_req *rq, s2_resp *rs);

void s2_h_videos_list(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_videos_create(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_video_get(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_video_prompt(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_video_propagate(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_video_masks(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_video_accept(s2_server *sv, const s2_req *rq, s2_resp *rs);
void s2_h_video_reset(s2_server *sv, const s2_req *rq, s2_resp *rs);
int s2_vslot_create(struct s2_vslot **out);
void s2_vslot_free(struct s2_vslot *vs);

/* A prompt read from a request body: points / labels / box / multimask, checked
 * against the image size; keys beyond these are refused unless listed in `extra`
 * (NULL-terminated). Returns false with the reason in err[256]. Free the arrays with
 * s2_prompt_in_free. */
typedef struct s2_prompt_in {
    int n_points;
    float *points;   /* [n_points, 2] */
    int32_t *labels; /* [n_points] */
    bool has_box;
    float box[4];
    bool multimask;
} s2_prompt_in;
bool s2_read_prompt(s2_server *sv, const s2_json *j, int w, int h, const char *const *extra, s2_prompt_in *p,
                    char err[256]);
void s2_prompt_in_free(s2_prompt_in *p);
/* A label people typed: a string of 1..200 bytes without control characters. NULL
 * when fine, else the reason. */
const char *s2_check_label(const s2_json *v);
/* Writes a job record (a finished video import also names its video). */
void s2_write_job(s2_server *sv, s2_jw *w, const s2_job_info *ji);
/* A file name safe for JSON, headers and COCO: the last path component without control
 * bytes or quotes, at most ~200 bytes; `fallback` when nothing is left. */
void s2_sanitize_name(const char *in, const char *fallback, char *out, size_t cap);

/* Video file imports (api_video_import.c): POST /api/videos/upload streams the file to
 * PROJECT/uploads, a background job splits it into frames (PNG images) and makes them a
 * video of the project. */
void s2_h_videos_upload(s2_server *sv, const s2_req *rq, s2_resp *rs);
int s2_vimports_create(const char *project, struct s2_vimports **out);
void s2_vimports_free(struct s2_vimports *im);
/* The video made by finished import `ref`, or 0. */
int64_t s2_vimport_video(s2_server *sv, int64_t ref);
/* A fresh temporary file under PROJECT/uploads (path[4096]); returns its fd or < 0. */
int s2_upload_tmpfile(s2_server *sv, char *path);
/* Writes {"size": [h, w], "counts": "..."}, area and bbox of a binary mask's RLE. */
#include "io/mask_json.h"

/* Decodes a stored image (the cache's loader). */
int s2_server_load_image(void *user, int64_t id, s2_image *out);
/* Adds one prediction's time to the metrics. */
void s2_metrics_predict(s2_server *sv, double seconds);

/* Embedded panel files (web_assets.c, generated by scripts/embed_web.sh). */
typedef struct s2_web_asset {
    const char *path;                    /* "/index.html" */
    const char *ctype;
    const char *data;
    size_t len;
} s2_web_asset;
extern const s2_web_asset s2_web_assets[];
extern const int s2_web_n_assets;

#endif
