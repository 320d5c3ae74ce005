/* HTTP front of `sam2c serve` on libmicrohttpd: daemon start/stop, body accumulation
 * with limits, routing (404 / 405 / bad ids answered here), responses, metrics,
 * /healthz, /metrics and the embedded panel. Every error is JSON {"error": "..."}. */
#include "server/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void s2_server_default_params(s2_server_params *p) {
    memset(p, 0, sizeof *p);
    p->host = "127.0.0.1";
    p->port = 8080;
    p->max_sessions = 4;
    p->max_image_bytes = (size_t)64 << 20;
    p->max_video_bytes = (size_t)2 << 30;
    p->max_json_bytes = (size_t)8 << 20;
    p->max_json_depth = 32;
    p->max_points = 64;
    p->max_pixels = 50000000;
    p->timeout_s = 30;
    p->max_connections = 64;
}

#ifdef SAM2C_HAVE_SERVER
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- responses ---- */

void s2_resp_json(s2_resp *rs, int status, s2_jw *w) {
    if (w->failed || !w->buf) {
        s2_jw_free(w);
        s2_resp_error(rs, 500, "out of memory while writing the response");
        return;
    }
    free(rs->is_static ? NULL : rs->body);
    rs->status = status;
    rs->body = w->buf;
    rs->len = w->len;
    rs->is_static = false;
    rs->ctype = "application/json";
    w->buf = NULL;
    s2_jw_free(w);
}

void s2_resp_error(s2_resp *rs, int status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "error");
    s2_jw_str(&w, msg);
    s2_jw_obj_end(&w);
    free(rs->is_static ? NULL : rs->body);
    rs->status = status;
    rs->ctype = "application/json";
    if (w.failed || !w.buf) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        rs->body = (char *)oom;
        rs->len = sizeof oom - 1;
        rs->is_static = true;
        rs->status = 503;
    } else {
        rs->body = w.buf;
        rs->len = w.len;
        rs->is_static = false;
        w.buf = NULL;
    }
    s2_jw_free(&w);
}

void s2_resp_lib_error(s2_resp *rs, int rc) {
    int st = 500;
    switch (rc) {
    case SAM2C_ERR_ARG: case SAM2C_ERR_FORMAT: case SAM2C_ERR_SHAPE: st = 400; break;
    case SAM2C_ERR_MISSING: st = 404; break;
    case SAM2C_ERR_LIMIT: st = 413; break;
    case SAM2C_ERR_STATE: st = 409; break;
    case SAM2C_ERR_UNSUPPORTED: st = 415; break;
    case SAM2C_ERR_NOMEM: st = 503; break;
    default: break;
    }
    s2_resp_error(rs, st, "%s", sam2c_last_error());
}

const char *s2_req_query(const s2_req *rq, const char *key) {
    return rq->query && rq->conn ? rq->query(rq->conn, key) : NULL;
}

s2_json *s2_req_json(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    if (!rq->ctype || strncasecmp(rq->ctype, "application/json", 16) != 0) {
        s2_resp_error(rs, 415, "expected Content-Type: application/json");
        return NULL;
    }
    if (rq->len == 0) {
        s2_resp_error(rs, 400, "empty body: a JSON object is expected");
        return NULL;
    }
    s2_json_limits lim = {.max_depth = sv->p.max_json_depth, .max_size = sv->p.max_json_bytes};
    s2_json *j = NULL;
    int rc = s2_json_parse(rq->body, rq->len, "body", &lim, &j);
    if (rc < 0) {
        s2_resp_error(rs, rc == SAM2C_ERR_NOMEM ? 503 : 400, "%s", sam2c_last_error());
        return NULL;
    }
    if (j->type != S2_JOBJ) {
        s2_json_free(j);
        s2_resp_error(rs, 400, "body: a JSON object is expected");
        return NULL;
    }
    return j;
}

/* ---- metrics ---- */

static const double k_lat_bounds[S2_LAT_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                    0.5,   1,    2.5,   5,    10,  30};
static const char *const k_route_names[S2_R_COUNT] = {
#define S2_X_NAME(id, name) name,
    S2_ROUTE_MAP(S2_X_NAME)
#undef S2_X_NAME
};

/* Counts one answered request. */
static void metrics_request(s2_server *sv, s2_route r, int status, double dt, size_t in, size_t out) {
    s2_metrics *m = &sv->met;
    pthread_mutex_lock(&m->mu);
    m->requests[r]++;
    m->route_s[r] += dt;
    m->by_class[(status / 100) >= 1 && (status / 100) <= 5 ? status / 100 : 0]++;
    int b = 0;
    while (b < S2_LAT_BUCKETS && dt > k_lat_bounds[b]) b++;
    m->lat_bucket[b]++;
    m->lat_sum += dt;
    m->bytes_in += (int64_t)in;
    m->bytes_out += (int64_t)out;
    pthread_mutex_unlock(&m->mu);
}

void s2_metrics_predict(s2_server *sv, double seconds) {
    pthread_mutex_lock(&sv->met.mu);
    sv->met.predicts++;
    sv->met.predict_s_sum += seconds;
    if (seconds > sv->met.predict_s_max) sv->met.predict_s_max = seconds;
    pthread_mutex_unlock(&sv->met.mu);
}

/* GET /metrics: JSON (default) or Prometheus text (?format=prometheus). */
static void h_metrics(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    s2_metrics m;
    pthread_mutex_lock(&sv->met.mu);
    m = sv->met;
    pthread_mutex_unlock(&sv->met.mu);
    s2_cache_stats cs;
    s2_cache_get_stats(sv->cache, &cs);
    int64_t total = 0;
    for (int r = 0; r < S2_R_COUNT; r++) total += m.requests[r];
    const char *fmt = s2_req_query(rq, "format");
    if (fmt && !strcmp(fmt, "prometheus")) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) { s2_resp_error(rs, 503, "out of memory"); return; }
        for (int r = 0; r < S2_R_COUNT; r++)
            fprintf(f, "sam2c_requests_total{route=\"%s\"} %lld\n", k_route_names[r], (long long)m.requests[r]);
        for (int k = 1; k <= 5; k++) fprintf(f, "sam2c_responses_total{class=\"%dxx\"} %lld\n", k, (long long)m.by_class[k]);
        int64_t cum = 0;
        for (int b = 0; b <= S2_LAT_BUCKETS; b++) {
            cum += m.lat_bucket[b];
            if (b < S2_LAT_BUCKETS) fprintf(f, "sam2c_request_seconds_bucket{le=\"%g\"} %lld\n", k_lat_bounds[b], (long long)cum);
            else fprintf(f, "sam2c_request_seconds_bucket{le=\"+Inf\"} %lld\n", (long long)cum);
        }
        fprintf(f, "sam2c_request_seconds_sum %.6f\nsam2c_request_seconds_count %lld\n", m.lat_sum, (long long)total);
        fprintf(f, "sam2c_encodes_total %lld\nsam2c_encode_failures_total %lld\nsam2c_encode_seconds_sum %.6f\n",
                (long long)cs.encodes, (long long)cs.encode_failures, cs.encode_s_sum);
        fprintf(f, "sam2c_predictions_total %lld\nsam2c_predict_seconds_sum %.6f\n", (long long)m.predicts, m.predict_s_sum);
        fprintf(f, "sam2c_sessions %d\nsam2c_session_evictions_total %lld\nsam2c_jobs_queued %d\n", cs.sessions,
                (long long)cs.evictions, cs.jobs_queued);
        fclose(f);
        free(rs->body);
        rs->status = 200;
        rs->body = buf;
        rs->len = len;
        rs->ctype = "text/plain; version=0.0.4";
        return;
    }
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "uptime_s"); s2_jw_num(&w, s2_now_s() - m.started);
    s2_jw_key(&w, "requests");
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "total"); s2_jw_int(&w, total);
    for (int r = 0; r < S2_R_COUNT; r++) { s2_jw_key(&w, k_route_names[r]); s2_jw_int(&w, m.requests[r]); }
    s2_jw_obj_end(&w);
    s2_jw_key(&w, "responses");
    s2_jw_obj_begin(&w);
    for (int k = 1; k <= 5; k++) {
        char key[8];
        snprintf(key, sizeof key, "%dxx", k);
        s2_jw_key(&w, key); s2_jw_int(&w, m.by_class[k]);
    }
    s2_jw_obj_end(&w);
    s2_jw_key(&w, "latency");
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "mean_ms"); s2_jw_num(&w, total ? 1e3 * m.lat_sum / (double)total : 0);
    s2_jw_key(&w, "buckets_le_s");
    s2_jw_arr_begin(&w);
    for (int b = 0; b < S2_LAT_BUCKETS; b++) s2_jw_num(&w, k_lat_bounds[b]);
    s2_jw_arr_end(&w);
    s2_jw_key(&w, "counts");
    s2_jw_arr_begin(&w);
    for (int b = 0; b <= S2_LAT_BUCKETS; b++) s2_jw_int(&w, m.lat_bucket[b]);
    s2_jw_arr_end(&w);
    s2_jw_obj_end(&w);
    s2_jw_key(&w, "encode");
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "count"); s2_jw_int(&w, cs.encodes);
    s2_jw_key(&w, "failures"); s2_jw_int(&w, cs.encode_failures);
    s2_jw_key(&w, "seconds_sum"); s2_jw_num(&w, cs.encode_s_sum);
    s2_jw_key(&w, "seconds_max"); s2_jw_num(&w, cs.encode_s_max);
    s2_jw_obj_end(&w);
    s2_jw_key(&w, "predict");
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "count"); s2_jw_int(&w, m.predicts);
    s2_jw_key(&w, "seconds_sum"); s2_jw_num(&w, m.predict_s_sum);
    s2_jw_key(&w, "seconds_max"); s2_jw_num(&w, m.predict_s_max);
    s2_jw_obj_end(&w);
    s2_jw_key(&w, "sessions"); s2_jw_int(&w, cs.sessions);
    s2_jw_key(&w, "evictions"); s2_jw_int(&w, cs.evictions);
    s2_jw_key(&w, "jobs_queued"); s2_jw_int(&w, cs.jobs_queued);
    s2_jw_key(&w, "bytes_in"); s2_jw_int(&w, m.bytes_in);
    s2_jw_key(&w, "bytes_out"); s2_jw_int(&w, m.bytes_out);
    s2_jw_obj_end(&w);
    s2_resp_json(rs, 200, &w);
}

/* GET /healthz: liveness plus what is loaded. */
static void h_health(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    (void)rq;
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "ok"); s2_jw_bool(&w, true);
    s2_jw_key(&w, "version"); s2_jw_str(&w, SAM2C_VERSION);
    s2_jw_key(&w, "model"); s2_jw_str(&w, sam2c_model_name(sv->m));
    s2_jw_key(&w, "image_size"); s2_jw_int(&w, sam2c_model_image_size(sv->m));
    s2_jw_key(&w, "video"); s2_jw_bool(&w, true);
    s2_jw_obj_end(&w);
    s2_resp_json(rs, 200, &w);
}

/* GET of an embedded panel file. */
static void h_static(s2_server *sv, const s2_req *rq, s2_resp *rs) {
    (void)sv;
    const char *path = strcmp(rq->url, "/") ? rq->url : "/index.html";
    for (int i = 0; i < s2_web_n_assets; i++)
        if (!strcmp(s2_web_assets[i].path, path)) {
            rs->status = 200;
            rs->body = (char *)s2_web_assets[i].data;
            rs->len = s2_web_assets[i].len;
            rs->is_static = true;
            rs->ctype = s2_web_assets[i].ctype;
            return;
        }
    s2_resp_error(rs, 404, "no such page: %s", rq->url);
}

/* ---- routing ---- */

typedef struct route_def {
    const char *pattern; /* "/api/images/{id}/predict" */
    const char *method;
    s2_route id;
    s2_handler fn;
    int body_kind;       /* BODY_JSON, BODY_IMAGE (image limit), BODY_FILE (streamed to disk) */
} route_def;
enum { BODY_JSON, BODY_IMAGE, BODY_FILE };

static const route_def k_routes[] = {
    {"/healthz", "GET", S2_R_HEALTH, h_health, 0},
    {"/metrics", "GET", S2_R_METRICS, h_metrics, 0},
    {"/api/images", "GET", S2_R_IMAGES_LIST, s2_h_images_list, 0},
    {"/api/images", "POST", S2_R_IMAGES_UPLOAD, s2_h_images_upload, BODY_IMAGE},
    {"/api/images/{id}", "GET", S2_R_IMAGE_GET, s2_h_image_get, 0},
    {"/api/images/{id}/predict", "POST", S2_R_PREDICT, s2_h_predict, 0},
    {"/api/images/{id}/encode", "POST", S2_R_ENCODE, s2_h_encode, 0},
    {"/api/images/{id}/objects", "GET", S2_R_OBJECTS_LIST, s2_h_objects_list, 0},
    {"/api/images/{id}/objects", "POST", S2_R_OBJECTS_CREATE, s2_h_objects_create, 0},
    {"/api/objects/{id}", "GET", S2_R_OBJECT_GET, s2_h_object_get, 0},
    {"/api/objects/{id}", "PATCH", S2_R_OBJECT_PATCH, s2_h_object_patch, 0},
    {"/api/objects/{id}", "DELETE", S2_R_OBJECT_DELETE, s2_h_object_delete, 0},
    {"/api/objects/{id}/mask.png", "GET", S2_R_OBJECT_MASK, s2_h_object_mask, 0},
    {"/api/export", "GET", S2_R_EXPORT, s2_h_export, 0},
    {"/api/jobs/{id}", "GET", S2_R_JOB, s2_h_job, 0},
    {"/api/videos", "GET", S2_R_VIDEOS_LIST, s2_h_videos_list, 0},
    {"/api/videos", "POST", S2_R_VIDEOS_CREATE, s2_h_videos_create, 0},
    {"/api/videos/upload", "POST", S2_R_VIDEO_UPLOAD, s2_h_videos_upload, BODY_FILE},
    {"/api/videos/{id}", "GET", S2_R_VIDEO_GET, s2_h_video_get, 0},
    {"/api/videos/{id}/prompt", "POST", S2_R_VIDEO_PROMPT, s2_h_video_prompt, 0},
    {"/api/videos/{id}/propagate", "POST", S2_R_VIDEO_PROPAGATE, s2_h_video_propagate, 0},
    {"/api/videos/{id}/masks", "GET", S2_R_VIDEO_MASKS, s2_h_video_masks, 0},
    {"/api/videos/{id}/accept", "POST", S2_R_VIDEO_ACCEPT, s2_h_video_accept, 0},
    {"/api/videos/{id}/reset", "POST", S2_R_VIDEO_RESET, s2_h_video_reset, 0},
};
#define N_ROUTES ((int)(sizeof k_routes / sizeof k_routes[0]))

/* Matches url against pattern segment by segment; the {id} segment is copied out. */
static bool match(const char *pattern, const char *url, char *id, size_t id_cap) {
    const char *p = pattern, *u = url;
    id[0] = 0;
    for (;;) {
        while (*p == '/') p++;
        while (*u == '/') u++;
        if (!*p || !*u) return !*p && !*u;
        size_t pl = strcspn(p, "/"), ul = strcspn(u, "/");
        if (pl == 4 && !strncmp(p, "{id}", 4)) {
            snprintf(id, id_cap, "%.*s", (int)S2_MIN(ul, id_cap - 1), u);
        } else if (pl != ul || strncmp(p, u, pl)) return false;
        p += pl;
        u += ul;
    }
}

/* Strict positive decimal id (no sign, no spaces, at most 15 digits). */
static bool parse_id(const char *s, int64_t *out) {
    size_t n = strlen(s);
    if (n == 0 || n > 15) return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return v > 0;
}

/* Finds the route of (method, url); sets the 404/405/400 answer when there is none. */
static const route_def *find_route(const char *method, const char *url, int64_t *id, s2_resp *rs) {
    char seg[32], allow[96] = "";
    bool path_known = false;
    const char *m = !strcmp(method, "HEAD") ? "GET" : method;
    for (int i = 0; i < N_ROUTES; i++) {
        if (!match(k_routes[i].pattern, url, seg, sizeof seg)) continue;
        path_known = true;
        if (strcmp(k_routes[i].method, m)) {
            size_t l = strlen(allow);
            snprintf(allow + l, sizeof allow - l, "%s%s", l ? ", " : "", k_routes[i].method);
            continue;
        }
        if (strstr(k_routes[i].pattern, "{id}") && !parse_id(seg, id)) {
            s2_resp_error(rs, 400, "bad id '%.20s' (a positive integer is expected)", seg);
            return NULL;
        }
        return &k_routes[i];
    }
    if (path_known) {
        s2_resp_error(rs, 405, "method %.16s not allowed on %.200s (allowed: %s)", method, url, allow);
        snprintf(rs->allow, sizeof rs->allow, "%s", allow);
        return NULL;
    }
    bool is_static = !strcmp(m, "GET") && strncmp(url, "/api/", 5) != 0;
    if (!is_static) s2_resp_error(rs, 404, "no route %.200s", url);
    return NULL;
}

/* ---- libmicrohttpd glue ---- */

typedef struct conn_ctx {
    char *buf;
    size_t len, cap, limit, discarded;
    bool too_big, oom, answered;
    int fd;                  /* BODY_FILE routes: the body's temporary file, else -1 */
    char path[4096];
    double t0;
} conn_ctx;

static const char *mhd_query(void *conn, const char *key) {
    return MHD_lookup_connection_value((struct MHD_Connection *)conn, MHD_GET_ARGUMENT_KIND, key);
}

/* Hands a response to MHD (taking rs->body); logs and counts it. */
static enum MHD_Result send_resp(s2_server *sv, struct MHD_Connection *c, const char *method, const char *url,
                                 s2_route r, s2_resp *rs, const conn_ctx *cc) {
    struct MHD_Response *resp =
        rs->is_static ? MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_PERSISTENT)
                      : MHD_create_response_from_buffer_with_free_callback(rs->len, rs->body, free);
    if (!resp) {
        if (!rs->is_static) free(rs->body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", rs->ctype ? rs->ctype : "application/json");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Cache-Control", r == S2_R_STATIC || r == S2_R_IMAGE_GET ? "no-cache" : "no-store");
    if (r == S2_R_STATIC)
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'");
    if (rs->allow[0]) MHD_add_response_header(resp, "Allow", rs->allow);
    if (rs->challenge) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"sam2c\"");
    if (rs->disposition[0]) MHD_add_response_header(resp, "Content-Disposition", rs->disposition);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)rs->status, resp);
    MHD_destroy_response(resp);
    double dt = s2_now_s() - cc->t0;
    metrics_request(sv, r, rs->status, dt, cc->len + cc->discarded, rs->len);
    if (sv->p.log) {
        char line[512];
        snprintf(line, sizeof line, "%s %.300s %d %.1f ms", method, url, rs->status, dt * 1e3);
        pthread_mutex_lock(&sv->log_mu);
        sv->p.log(sv->p.log_user, line);
        pthread_mutex_unlock(&sv->log_mu);
    }
    return ok;
}

/* How a request's body is taken, by route (unknown routes: as JSON). */
static int body_kind(const char *method, const char *url) {
    char seg[32];
    for (int i = 0; i < N_ROUTES; i++)
        if (k_routes[i].body_kind && !strcmp(k_routes[i].method, method) && match(k_routes[i].pattern, url, seg, sizeof seg))
            return k_routes[i].body_kind;
    return BODY_JSON;
}

bool s2_server_host_is_loopback(const char *host) {
    struct in_addr a4;
    struct in6_addr a6;
    if (host && inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    return host && inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* The panel's own files (index, script, style) are public: a browser cannot send the
 * token when it navigates. Everything else needs it. */
static bool is_public(const char *method, const char *url) {
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) return false;
    if (!strcmp(url, "/")) return true;
    for (int i = 0; i < s2_web_n_assets; i++)
        if (!strcmp(s2_web_assets[i].path, url)) return true;
    return false;
}

/* "Authorization: Bearer TOKEN" matches the server's token (compared in constant time). */
static bool authorized(s2_server *sv, struct MHD_Connection *c) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7)) return false;
    h += 7;
    while (*h == ' ') h++;
    size_t n = strlen(h), t = strlen(sv->token);
    unsigned diff = n != t;
    for (size_t i = 0; i < t; i++) diff |= (unsigned char)sv->token[i] ^ (unsigned char)(i < n ? h[i] : 0);
    return diff == 0;
}

/* First call of a request: checks the token, sets up the body buffer (or file); refuses
 * a declared oversize body before reading it. */
static enum MHD_Result begin_request(s2_server *sv, struct MHD_Connection *c, const char *url, const char *method,
                                     void **con_cls) {
    conn_ctx *cc = calloc(1, sizeof *cc);
    if (!cc) return MHD_NO;
    cc->t0 = s2_now_s();
    cc->fd = -1;
    int kind = body_kind(method, url);
    cc->limit = kind == BODY_FILE ? sv->p.max_video_bytes : kind == BODY_IMAGE ? sv->p.max_image_bytes : sv->p.max_json_bytes;
    *con_cls = cc;
    s2_resp rs = {0};
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    char *end = NULL;
    unsigned long long n = cl ? strtoull(cl, &end, 10) : 0;
    if (sv->token[0] && !is_public(method, url) && !authorized(sv, c)) {
        s2_resp_error(&rs, 401, "missing or wrong token: send the header 'Authorization: Bearer TOKEN'");
        rs.challenge = true;
        cc->answered = true;
        return send_resp(sv, c, method, url, S2_R_UNAUTHORIZED, &rs, cc);
    }
    if (cl && end != cl && n > cc->limit) {
        s2_resp_error(&rs, 413, "body of %llu bytes is over the limit of %zu bytes", n, cc->limit);
        cc->answered = true;
        return send_resp(sv, c, method, url, S2_R_OTHER, &rs, cc);
    }
    if (kind == BODY_FILE && (cc->fd = s2_upload_tmpfile(sv, cc->path)) < 0) {
        s2_resp_error(&rs, 500, "%s", sam2c_last_error());
        cc->answered = true;
        return send_resp(sv, c, method, url, S2_R_OTHER, &rs, cc);
    }
    return MHD_YES;
}

/* Writes upload data to the body's file (BODY_FILE routes). */
static enum MHD_Result take_file(conn_ctx *cc, const char *data, size_t n) {
    if (cc->len + n > cc->limit) cc->too_big = true;
    if (cc->too_big) {
        cc->discarded += n;
        return cc->discarded > ((size_t)64 << 20) ? MHD_NO : MHD_YES;
    }
    for (size_t off = 0; off < n;) {
        ssize_t k = write(cc->fd, data + off, n - off);
        if (k <= 0) { cc->oom = true; return MHD_NO; }
        off += (size_t)k;
    }
    cc->len += n;
    return MHD_YES;
}

/* Appends upload data, or discards it once over the limit (the answer is 413 then). */
static enum MHD_Result take_body(conn_ctx *cc, const char *data, size_t n) {
    if (cc->fd >= 0) return take_file(cc, data, n);
    if (!cc->too_big && cc->len + n > cc->limit) {
        cc->too_big = true;
        cc->discarded += cc->len;
        free(cc->buf);
        cc->buf = NULL;
        cc->len = cc->cap = 0;
    }
    if (cc->too_big) {
        cc->discarded += n;
        return cc->discarded > 2 * cc->limit + ((size_t)1 << 20) ? MHD_NO : MHD_YES;
    }
    if (cc->len + n + 1 > cc->cap) {
        size_t cap = S2_MAX(cc->cap * 2, cc->len + n + 1);
        if (cap > cc->limit + 1) cap = cc->limit + 1;
        char *g = realloc(cc->buf, cap);
        if (!g) { cc->oom = true; return MHD_NO; }
        cc->buf = g;
        cc->cap = cap;
    }
    memcpy(cc->buf + cc->len, data, n);
    cc->len += n;
    cc->buf[cc->len] = 0;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    s2_server *sv = cls;
    conn_ctx *cc = *con_cls;
    if (!cc) return begin_request(sv, c, url, method, con_cls);
    if (cc->answered) { *upload_size = 0; return MHD_YES; }
    if (*upload_size) {
        enum MHD_Result r = take_body(cc, upload, *upload_size);
        *upload_size = 0;
        return r;
    }
    s2_resp rs = {0};
    if (cc->too_big) {
        s2_resp_error(&rs, 413, "body is over the limit of %zu bytes", cc->limit);
        return send_resp(sv, c, method, url, S2_R_OTHER, &rs, cc);
    }
    int64_t id = 0;
    const route_def *rd = find_route(method, url, &id, &rs);
    s2_route rid = rd ? rd->id : S2_R_OTHER;
    if (rd) {
        s2_req rq = {.method = !strcmp(method, "HEAD") ? "GET" : method, .url = url,
                     .ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
                     .body = cc->buf ? cc->buf : "", .len = cc->len, .id = id, .query = mhd_query, .conn = c,
                     .body_path = cc->fd >= 0 ? cc->path : NULL};
        if (cc->fd >= 0) { close(cc->fd); cc->fd = -1; }
        rd->fn(sv, &rq, &rs);
        if (cc->path[0]) { unlink(cc->path); cc->path[0] = 0; } /* fails when the handler kept it */
    } else if (!rs.status) {
        s2_req rq = {.method = "GET", .url = url, .body = "", .query = mhd_query, .conn = c};
        h_static(sv, &rq, &rs);
        rid = S2_R_STATIC;
    }
    if (!rs.status) s2_resp_error(&rs, 500, "internal error: no response");
    return send_resp(sv, c, method, url, rid, &rs, cc);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t) {
    (void)cls; (void)c; (void)t;
    conn_ctx *cc = *con_cls;
    if (cc) {
        if (cc->fd >= 0) close(cc->fd);
        if (cc->path[0]) unlink(cc->path); /* gone already when the handler kept it */
        free(cc->buf);
        free(cc);
    }
    *con_cls = NULL;
}

/* libmicrohttpd's own messages: kept for start-up failures, forwarded to the log. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    s2_server *sv = cls;
    char line[256];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    pthread_mutex_lock(&sv->log_mu);
    snprintf(sv->mhd_error, sizeof sv->mhd_error, "%s", line);
    if (sv->p.log) sv->p.log(sv->p.log_user, line);
    pthread_mutex_unlock(&sv->log_mu);
}

/* Parses the host into a socket address (IPv4 or IPv6 numeric). */
static int make_addr(const char *host, int port, struct sockaddr_storage *ss, bool *v6) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *v6 = false;
        return SAM2C_OK;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *v6 = true;
        return SAM2C_OK;
    }
    return s2_err(SAM2C_ERR_ARG, "bad host '%s' (a numeric IPv4 or IPv6 address is expected)", host);
}

/* Checks the parameters before anything is opened. */
static int check_params(const s2_server_params *p) {
    if (!p->project_dir || !*p->project_dir) return s2_err(SAM2C_ERR_ARG, "server: no project folder given");
    if (p->port < 0 || p->port > 65535) return s2_err(SAM2C_ERR_ARG, "server: bad port %d", p->port);
    if (p->max_sessions < 1 || p->max_json_depth < 2 || p->max_points < 1 || p->timeout_s < 1 ||
        p->max_connections < 1 || p->max_image_bytes < 1024 || p->max_json_bytes < 1024 || p->max_pixels < 1)
        return s2_err(SAM2C_ERR_ARG, "server: a limit is out of range");
    if (!p->host || strlen(p->host) >= 64) return s2_err(SAM2C_ERR_ARG, "server: bad host");
    if (p->max_video_bytes < 1024) return s2_err(SAM2C_ERR_ARG, "server: the video upload limit is out of range");
    if (p->token && *p->token) {
        size_t n = strlen(p->token);
        bool ok = n >= 8 && n <= 256;
        for (size_t i = 0; ok && i < n; i++) ok = p->token[i] > 0x20 && p->token[i] < 0x7f;
        if (!ok) return s2_err(SAM2C_ERR_ARG, "server: the token must be 8 to 256 visible ASCII characters");
    } else if (!s2_server_host_is_loopback(p->host))
        return s2_err(SAM2C_ERR_ARG,
                      "server: listening on %s would expose the project to the network without a login; "
                      "give a token (--token TOKEN or SAM2C_TOKEN), or bind 127.0.0.1", p->host);
    return SAM2C_OK;
}

/* Opens the project and the session cache. */
static int open_parts(s2_server *sv) {
    S2_CHECK(s2_store_open(sv->project, &sv->store));
    S2_CHECK(s2_vslot_create(&sv->vslot));
    S2_CHECK(s2_vimports_create(sv->project, &sv->imports));
    return s2_cache_create(sv->m, sv->p.max_sessions, s2_server_load_image, sv, &sv->cache);
}

int s2_server_start(const sam2c_model *m, const s2_server_params *p, s2_server **out) {
    *out = NULL;
    if (!m || !p) return s2_err(SAM2C_ERR_ARG, "server: no model or parameters");
    S2_CHECK(check_params(p));
    struct sockaddr_storage ss;
    bool v6 = false;
    S2_CHECK(make_addr(p->host, p->port, &ss, &v6));
    s2_server *sv = s2_calloc(1, sizeof *sv);
    if (!sv) return SAM2C_ERR_NOMEM;
    sv->m = m;
    sv->p = *p;
    snprintf(sv->host, sizeof sv->host, "%s", p->host);
    snprintf(sv->project, sizeof sv->project, "%s", p->project_dir);
    snprintf(sv->token, sizeof sv->token, "%s", p->token ? p->token : "");
    sv->p.token = sv->token;
    sv->p.host = sv->host;
    sv->p.project_dir = sv->project;
    pthread_mutex_init(&sv->met.mu, NULL);
    pthread_mutex_init(&sv->log_mu, NULL);
    sv->met.started = s2_now_s();
    int rc = open_parts(sv);
    if (rc < 0) {
        s2_server_stop(sv);
        return rc;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0) | (MHD_is_feature_supported(MHD_FEATURE_POLL) ? MHD_USE_POLL : 0);
    sv->daemon = MHD_start_daemon(flags, (uint16_t)p->port, NULL, NULL, on_request, sv,
                                  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, sv,
                                  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)p->timeout_s,
                                  MHD_OPTION_CONNECTION_LIMIT, (unsigned)p->max_connections,
                                  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                                  MHD_OPTION_NOTIFY_COMPLETED, on_completed, sv, MHD_OPTION_END);
    if (!sv->daemon) {
        rc = s2_err(SAM2C_ERR_IO, "server: cannot listen on %s:%d%s%s", p->host, p->port,
                    sv->mhd_error[0] ? ": " : "", sv->mhd_error);
        s2_server_stop(sv);
        return rc;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(sv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    sv->port = di ? di->port : p->port;
    *out = sv;
    return SAM2C_OK;
}

int s2_server_port(const s2_server *sv) { return sv ? sv->port : 0; }

void s2_server_stop(s2_server *sv) {
    if (!sv) return;
    atomic_store(&sv->stopping, 1);
    if (sv->daemon) MHD_stop_daemon(sv->daemon);
    s2_cache_free(sv->cache);  /* joins the worker, which may be running a propagation */
    s2_vslot_free(sv->vslot);
    s2_vimports_free(sv->imports);
    s2_store_close(sv->store);
    pthread_mutex_destroy(&sv->met.mu);
    pthread_mutex_destroy(&sv->log_mu);
    free(sv);
}

#else /* !SAM2C_HAVE_SERVER */

int s2_server_start(const sam2c_model *m, const s2_server_params *p, s2_server **out) {
    (void)m; (void)p;
    *out = NULL;
    return s2_err(SAM2C_ERR_UNSUPPORTED, "server: built without libmicrohttpd and SQLite");
}
int s2_server_port(const s2_server *sv) { (void)sv; return 0; }
bool s2_server_host_is_loopback(const char *host) { return host && (!strncmp(host, "127.", 4) || !strcmp(host, "::1")); }
void s2_server_stop(s2_server *sv) { (void)sv; }

#endif
