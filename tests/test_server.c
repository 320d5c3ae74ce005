/* `sam2c serve` end to end: every route through a small socket HTTP client (loopback
 * only), predictions equal to the C API's, encode-once under concurrency, hostile
 * requests answered with JSON 4xx, and durability of accepted masks across SIGKILL. */
#include "harness.h"
#include "http_client.h"
#include "sam2c.h"
#include "core/s2.h"
#include "io/image.h"
#include "io/json.h"
#include "io/rle.h"
#include "server/server.h"
#include "predict/video.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef SAM2C_HAVE_SERVER

/* ---------- a minimal HTTP/1.1 client (one request per connection) ---------- */

typedef struct http_resp {
    int status;
    char *body;      /* NUL-terminated */
    size_t len;
    char ctype[128];
    char allow[128];
} http_resp;

static void resp_free(http_resp *r) {
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* Reads the whole response (the server closes after it); 0 or -1. */
static int read_resp(int fd, http_resp *r) {
    memset(r, 0, sizeof *r);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 4096 > cap) {
            if (cap > ((size_t)256 << 20)) break;
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t k = recv(fd, buf + n, cap - n - 1, 0);
        if (k <= 0) break;
        n += (size_t)k;
    }
    buf[n] = 0;
    char *end = strstr(buf, "\r\n\r\n");
    if (n < 12 || strncmp(buf, "HTTP/1.", 7) || !end) {
        free(buf);
        return -1;
    }
    r->status = atoi(buf + 9);
    *end = 0;
    header_value(buf, "Content-Type", r->ctype, sizeof r->ctype);
    header_value(buf, "Allow", r->allow, sizeof r->allow);
    r->len = n - (size_t)(end + 4 - buf);
    r->body = malloc(r->len + 1);
    memcpy(r->body, end + 4, r->len);
    r->body[r->len] = 0;
    free(buf);
    return 0;
}

/* Sends raw bytes and reads the answer. */
static int http_raw(int port, const void *req, size_t len, http_resp *r) {
    int fd = dial(port, 120);
    if (fd < 0) return -1;
    int rc = send_all(fd, req, len) ? read_resp(fd, r) : -1;
    close(fd);
    return rc;
}

static int http(int port, const char *method, const char *path, const char *ctype, const void *body, size_t len,
                http_resp *r) {
    char head[1024];
    int hl = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%sContent-Length: %zu\r\n\r\n",
                      method, path, ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "", len);
    int fd = dial(port, 120);
    if (fd < 0) return -1;
    int rc = send_all(fd, head, (size_t)hl) && (!len || send_all(fd, body, len)) ? read_resp(fd, r) : -1;
    close(fd);
    return rc;
}

static int http_get(int port, const char *path, http_resp *r) { return http(port, "GET", path, NULL, NULL, 0, r); }
static int http_json(int port, const char *method, const char *path, const char *json, http_resp *r) {
    return http(port, method, path, "application/json", json, strlen(json), r);
}

/* Parses a JSON response body (NULL when it is not JSON). */
static s2_json *body_json(const http_resp *r) {
    s2_json *j = NULL;
    if (!r->body || s2_json_parse(r->body, r->len, "response", NULL, &j) < 0) return NULL;
    return j;
}

static int g_error_checks; /* is_json_error calls: each is one 4xx the server should count */

/* The status is `want` and the body is {"error": "..."} served as JSON. */
static bool is_json_error(const http_resp *r, int want) {
    g_error_checks++;
    s2_json *j = body_json(r);
    bool ok = r->status == want && j && s2_json_str(j, "error") && strlen(s2_json_str(j, "error")) > 0 &&
              !strncmp(r->ctype, "application/json", 16);
    if (!ok) fprintf(stderr, "  expected %d JSON error, got %d [%s] %.300s\n", want, r->status, r->ctype, r->body ? r->body : "");
    s2_json_free(j);
    return ok;
}

static int64_t json_int(const s2_json *j, const char *key) {
    int64_t v = -1;
    return j && s2_json_int(j, key, &v) ? v : -1;
}

/* ---------- fixtures ---------- */

static sam2c_model *g_model;

static sam2c_model *model(void) {
    if (!g_model && sam2c_model_load(s2t_fx("micro/model.pt"), NULL, &g_model) < 0) {
        fprintf(stderr, "  model: %s\n", sam2c_last_error());
        return NULL;
    }
    return g_model;
}

/* A fresh project folder under the test's temporary folder. */
static const char *project_dir(const char *name) {
    static char buf[4][512];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 512, "%s/%s", s2t_tmpdir(), name);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", b);
    s2t_run(cmd, NULL, 0);
    return b;
}

static s2_server *start_ex(const char *proj, size_t max_json, int timeout_s, int max_sessions) {
    s2_server_params p;
    s2_server_default_params(&p);
    if (max_sessions) p.max_sessions = max_sessions;
    p.port = 0;
    p.project_dir = project_dir(proj);
    p.max_image_bytes = (size_t)4 << 20;
    if (max_json) p.max_json_bytes = max_json;
    if (timeout_s) p.timeout_s = timeout_s;
    s2_server *sv = NULL;
    if (s2_server_start(model(), &p, &sv) < 0) fprintf(stderr, "  start: %s\n", sam2c_last_error());
    return sv;
}

static s2_server *start(const char *proj, size_t max_json, int timeout_s) {
    return start_ex(proj, max_json, timeout_s, 0);
}

static bool read_bytes(const char *path, uint8_t **data, size_t *len) {
    return s2_read_file(path, data, len) == SAM2C_OK;
}

/* Uploads a file; returns the image id or -1. */
static int64_t upload(int port, const uint8_t *data, size_t len, const char *name, const char *query) {
    char path[256];
    snprintf(path, sizeof path, "/api/images?name=%s%s", name, query ? query : "");
    http_resp r;
    if (http(port, "POST", path, "image/jpeg", data, len, &r) < 0) return -1;
    s2_json *j = body_json(&r);
    int64_t id = r.status == 201 ? json_int(j, "id") : -1;
    if (id < 0) fprintf(stderr, "  upload: %d %s\n", r.status, r.body);
    s2_json_free(j);
    resp_free(&r);
    return id;
}

static int64_t metric(int port, const char *group, const char *key) {
    http_resp r;
    if (http_get(port, "/metrics", &r) < 0) return -1;
    s2_json *j = body_json(&r);
    int64_t v = json_int(s2_json_get(j, group), key);
    s2_json_free(j);
    resp_free(&r);
    return v;
}

/* The C API's prediction for the same image bytes and prompt, as RLE strings + IoUs. */
static int c_api_predict(const uint8_t *data, size_t len, const sam2c_prompt *p, char **counts, float *iou, int *n) {
    s2_image im = {0};
    sam2c_image_session *s = NULL;
    sam2c_masks r;
    int rc = s2_image_decode(data, len, "img", NULL, &im);
    if (rc == 0) rc = sam2c_image_session_create(model(), &s);
    if (rc == 0) rc = sam2c_image_set_rgb(s, im.px, im.w, im.h);
    if (rc == 0) rc = sam2c_image_predict(s, p, &r);
    if (rc == 0) {
        int64_t hw = (int64_t)r.width * r.height;
        uint8_t *bin = malloc((size_t)hw);
        *n = r.n_masks;
        for (int k = 0; k < r.n_masks; k++) {
            for (int64_t i = 0; i < hw; i++) bin[i] = r.masks[k * hw + i] > 0.0f;
            s2_rle rle = {0};
            s2_rle_encode(bin, r.height, r.width, &rle);
            counts[k] = s2_rle_to_string(&rle);
            iou[k] = r.iou[k];
            s2_rle_free(&rle);
        }
        free(bin);
    }
    sam2c_image_session_free(s);
    s2_image_free(&im);
    return rc;
}

/* Checks a /predict response against the C API for the same prompt. */
static void check_predict_equal(const http_resp *r, const uint8_t *data, size_t len, const sam2c_prompt *p) {
    char *counts[3] = {0};
    float iou[3];
    int n = 0;
    REQUIRE(c_api_predict(data, len, p, counts, iou, &n) == 0);
    s2_json *j = body_json(r);
    const s2_json *masks = s2_json_get(j, "masks");
    CHECK(r->status == 200);
    CHECK(masks && masks->n == n);
    for (int k = 0; masks && k < n && k < masks->n; k++) {
        const s2_json *m = s2_json_at(masks, k);
        double got_iou = -1;
        s2_json_num(m, "iou_pred", &got_iou);
        CHECK_MSG((float)got_iou == iou[k], "mask %d iou %.9g vs C API %.9g", k, got_iou, iou[k]);
        const char *c = s2_json_str(s2_json_get(m, "segmentation"), "counts");
        CHECK_MSG(c && counts[k] && !strcmp(c, counts[k]), "mask %d RLE differs from the C API's", k);
    }
    for (int k = 0; k < n; k++) free(counts[k]);
    s2_json_free(j);
}

/* ---------- routes ---------- */

/* The embedded panel file equals its source in src/web. */
static void check_asset(int port, const char *url, const char *file, const char *ctype) {
    char path[4200];
    snprintf(path, sizeof path, "%s/src/web/%s", SAM2C_SOURCE_DIR, file);
    uint8_t *src = NULL;
    size_t n = 0;
    REQUIRE(read_bytes(path, &src, &n));
    http_resp r;
    REQUIRE(http_get(port, url, &r) == 0);
    CHECK(r.status == 200);
    CHECK_MSG(!strncmp(r.ctype, ctype, strlen(ctype)), "%s served as %s", url, r.ctype);
    CHECK_MSG(r.len == n && !memcmp(r.body, src, n), "%s differs from src/web/%s: run scripts/embed_web.sh", url, file);
    resp_free(&r);
    free(src);
}

TEST(server_routes) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    REQUIRE(model());
    uint8_t *jpg = NULL;
    size_t jpg_len = 0;
    REQUIRE(read_bytes(s2t_fx("micro/image/truck/truck_450x300.jpg"), &jpg, &jpg_len));
    s2_server *sv = start("routes", 0, 0);
    REQUIRE(sv);
    int port = s2_server_port(sv);
    http_resp r;

    REQUIRE(http_get(port, "/healthz", &r) == 0);
    CHECK(r.status == 200 && strstr(r.body, "\"ok\":true") && strstr(r.body, "sam2.1-micro"));
    resp_free(&r);
    check_asset(port, "/", "index.html", "text/html");
    check_asset(port, "/app.js", "app.js", "text/javascript");
    check_asset(port, "/style.css", "style.css", "text/css");

    int64_t id = upload(port, jpg, jpg_len, "truck.jpg", NULL);
    CHECK_EQ_INT(id, 1);
    REQUIRE(http_get(port, "/api/images", &r) == 0);
    s2_json *j = body_json(&r);
    const s2_json *im0 = s2_json_at(s2_json_get(j, "images"), 0);
    CHECK(r.status == 200 && s2_json_get(j, "images")->n == 1);
    CHECK(json_int(im0, "width") == 450 && json_int(im0, "height") == 300);
    CHECK(s2_json_str(im0, "name") && !strcmp(s2_json_str(im0, "name"), "truck.jpg"));
    s2_json_free(j);
    resp_free(&r);
    REQUIRE(http_get(port, "/api/images/1", &r) == 0);
    CHECK(r.status == 200 && r.len == jpg_len && !memcmp(r.body, jpg, jpg_len) && !strcmp(r.ctype, "image/jpeg"));
    resp_free(&r);

    /* predictions equal the C API's: one point (multimask), points + box (single) */
    REQUIRE(http_json(port, "POST", "/api/images/1/predict", "{\"points\":[[200,150]],\"labels\":[1]}", &r) == 0);
    float pt1[2] = {200, 150};
    int32_t lb1[1] = {1};
    sam2c_prompt p1 = {.n_points = 1, .points = pt1, .labels = lb1, .multimask = 1};
    check_predict_equal(&r, jpg, jpg_len, &p1);
    resp_free(&r);
    REQUIRE(http_json(port, "POST", "/api/images/1/predict",
                      "{\"points\":[[220.5,140],[60,250]],\"labels\":[1,0],\"box\":[100,60,400,280],\"multimask\":false}",
                      &r) == 0);
    float pt2[4] = {220.5f, 140, 60, 250}, box2[4] = {100, 60, 400, 280};
    int32_t lb2[2] = {1, 0};
    sam2c_prompt p2 = {.n_points = 2, .points = pt2, .labels = lb2, .n_boxes = 1, .boxes = box2};
    check_predict_equal(&r, jpg, jpg_len, &p2);
    j = body_json(&r);
    const s2_json *seg = s2_json_get(s2_json_at(s2_json_get(j, "masks"), 0), "segmentation");
    REQUIRE(seg);
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "label"); s2_jw_str(&w, "truck");
    s2_jw_key(&w, "segmentation"); s2_jw_value(&w, seg);
    s2_jw_key(&w, "iou_pred"); s2_jw_num(&w, 0.875);
    s2_jw_key(&w, "prompt"); s2_jw_raw(&w, "{\"points\":[[220.5,140]],\"labels\":[1]}");
    s2_jw_obj_end(&w);
    char *counts = s2_strdup(s2_json_str(seg, "counts"));
    s2_json_free(j);
    resp_free(&r);

    /* objects: accept, list, get, relabel, reject, restore, mask PNG */
    REQUIRE(http_json(port, "POST", "/api/images/1/objects", w.buf, &r) == 0);
    j = body_json(&r);
    CHECK(r.status == 201 && json_int(j, "id") == 1 && !strcmp(s2_json_str(j, "label"), "truck"));
    CHECK(!strcmp(s2_json_str(s2_json_get(j, "segmentation"), "counts"), counts));
    CHECK(s2_json_get(s2_json_get(j, "prompt"), "points") != NULL);
    s2_json_free(j);
    resp_free(&r);
    REQUIRE(http_json(port, "POST", "/api/images/1/objects", w.buf, &r) == 0); /* a second one */
    CHECK(r.status == 201);
    resp_free(&r);
    s2_jw_free(&w);
    REQUIRE(http_json(port, "PATCH", "/api/objects/2", "{\"label\":\"\xe3\x83\x88\xe3\x83\xa9\xe3\x83\x83\xe3\x82\xaf\"}", &r) == 0);
    j = body_json(&r);
    CHECK(r.status == 200 && !strcmp(s2_json_str(j, "label"), "\xe3\x83\x88\xe3\x83\xa9\xe3\x83\x83\xe3\x82\xaf"));
    s2_json_free(j);
    resp_free(&r);
    REQUIRE(http(port, "DELETE", "/api/objects/1", NULL, NULL, 0, &r) == 0);
    CHECK(r.status == 200 && strstr(r.body, "\"status\":\"rejected\""));
    resp_free(&r);
    REQUIRE(http_get(port, "/api/images/1/objects", &r) == 0);
    j = body_json(&r);
    CHECK(r.status == 200 && s2_json_get(j, "objects")->n == 1 && json_int(s2_json_at(s2_json_get(j, "objects"), 0), "id") == 2);
    s2_json_free(j);
    resp_free(&r);
    REQUIRE(http_get(port, "/api/images/1/objects?all=1", &r) == 0);
    j = body_json(&r);
    CHECK(s2_json_get(j, "objects")->n == 2);
    s2_json_free(j);
    resp_free(&r);
    REQUIRE(http_get(port, "/api/objects/2", &r) == 0);
    CHECK(r.status == 200 && strstr(r.body, "\"status\":\"accepted\""));
    resp_free(&r);
    REQUIRE(http_get(port, "/api/objects/2/mask.png", &r) == 0);
    CHECK(r.status == 200 && !strcmp(r.ctype, "image/png"));
    uint8_t *png = NULL;
    int pw = 0, ph = 0;
    s2_rle rle = {0};
    uint8_t *ref = malloc(450 * 300);
    CHECK(s2_png_decode_gray((const uint8_t *)r.body, r.len, "mask.png", &png, &pw, &ph) == 0 && pw == 450 && ph == 300);
    CHECK(s2_rle_from_string(counts, 300, 450, &rle) == 0 && s2_rle_decode(&rle, ref) == 0);
    int64_t diff = 0;
    for (int i = 0; png && i < 450 * 300; i++) diff += png[i] != (ref[i] ? 255 : 0);
    CHECK_EQ_INT(diff, 0);
    free(png);
    free(ref);
    s2_rle_free(&rle);
    resp_free(&r);

    /* export: COCO, PNG index, tar */
    REQUIRE(http_get(port, "/api/export?format=coco", &r) == 0);
    j = body_json(&r);
    const s2_json *anns = s2_json_get(j, "annotations"), *cats = s2_json_get(j, "categories");
    CHECK(r.status == 200 && anns && anns->n == 1 && cats && cats->n == 1 && s2_json_get(j, "images")->n == 1);
    CHECK(anns && json_int(s2_json_at(anns, 0), "id") == 2 && json_int(s2_json_at(anns, 0), "category_id") == 1);
    CHECK(anns && !strcmp(s2_json_str(s2_json_get(s2_json_at(anns, 0), "segmentation"), "counts"), counts));
    CHECK(cats && !strcmp(s2_json_str(s2_json_at(cats, 0), "name"), "\xe3\x83\x88\xe3\x83\xa9\xe3\x83\x83\xe3\x82\xaf"));
    s2_json_free(j);
    resp_free(&r);
    REQUIRE(http_get(port, "/api/export?format=png", &r) == 0);
    CHECK(r.status == 200 && strstr(r.body, "\"url\":\"/api/objects/2/mask.png\"") && strstr(r.body, "masks/1_2.png"));
    resp_free(&r);
    REQUIRE(http_get(port, "/api/export?format=png&archive=tar", &r) == 0);
    CHECK(r.status == 200 && r.len % 512 == 0 && r.len >= 4 * 512 && !strcmp(r.body, "index.json"));
    CHECK(r.len > 1024 && !memcmp(r.body + 257, "ustar", 5));
    resp_free(&r);
    free(counts);

    /* background encode job on a second image, polled to the end */
    uint8_t *jpg2 = NULL;
    size_t len2 = 0;
    REQUIRE(read_bytes(s2t_fx("micro/image/groceries/groceries_400x267.jpg"), &jpg2, &len2));
    int64_t id2 = upload(port, jpg2, len2, "groceries.jpg", "&encode=1");
    CHECK_EQ_INT(id2, 2);
    REQUIRE(http(port, "POST", "/api/images/2/encode", NULL, NULL, 0, &r) == 0);
    j = body_json(&r);
    int64_t job = json_int(j, "id");
    CHECK((r.status == 202 || r.status == 200) && job == 1); /* the upload's job is reused */
    s2_json_free(j);
    resp_free(&r);
    char path[64], state[16] = "";
    snprintf(path, sizeof path, "/api/jobs/%lld", (long long)job);
    double t0 = s2_now_s(); /* bounded by time: sanitizer builds are slow */
    while (s2_now_s() - t0 < 600 && strcmp(state, "done") && strcmp(state, "failed")) {
        if (http_get(port, path, &r) < 0) break;
        j = body_json(&r);
        snprintf(state, sizeof state, "%s", s2_json_str(j, "state") ? s2_json_str(j, "state") : "?");
        double prog = -1;
        s2_json_num(j, "progress", &prog);
        CHECK(prog >= 0 && prog <= 1);
        s2_json_free(j);
        resp_free(&r);
        if (strcmp(state, "done")) usleep(50 * 1000);
    }
    CHECK_MSG(!strcmp(state, "done"), "encode job state %s", state);
    REQUIRE(http_get(port, "/api/images/2?meta=1", &r) == 0);
    CHECK(r.status == 200 && strstr(r.body, "\"encoded\":true"));
    resp_free(&r);
    REQUIRE(http_json(port, "POST", "/api/images/2/predict", "{\"box\":[10,10,300,200]}", &r) == 0);
    j = body_json(&r);
    CHECK(r.status == 200 && s2_json_get(j, "encoded_now") && !s2_json_get(j, "encoded_now")->b);
    s2_json_free(j);
    resp_free(&r);

    /* metrics: counts per route, one encode per image */
    CHECK_EQ_INT(metric(port, "encode", "count"), 2);
    CHECK_EQ_INT(metric(port, "predict", "count"), 3);
    CHECK_EQ_INT(metric(port, "requests", "objects_create"), 2);
    REQUIRE(http_get(port, "/metrics?format=prometheus", &r) == 0);
    CHECK(r.status == 200 && strstr(r.body, "sam2c_encodes_total 2") && strstr(r.body, "sam2c_requests_total{route=\"predict\"} 3"));
    resp_free(&r);
    s2_server_stop(sv);
    free(jpg);
    free(jpg2);
}

/* ---------- concurrency ---------- */

typedef struct pred_arg {
    int port;
    const char *path;
    http_resp r;
    int rc;
} pred_arg;

static void *predict_thread(void *arg) {
    pred_arg *a = arg;
    a->rc = http_json(a->port, "POST", a->path, "{\"points\":[[120,90],[300,200]],\"labels\":[1,1]}", &a->r);
    return NULL;
}

TEST(server_concurrent_encode_once) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    REQUIRE(model());
    uint8_t *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    REQUIRE(read_bytes(s2t_fx("micro/image/truck/truck_450x300.jpg"), &a, &la));
    REQUIRE(read_bytes(s2t_fx("micro/image/groceries/groceries_400x267.jpg"), &b, &lb));
    s2_server *sv = start("concurrent", 0, 0);
    REQUIRE(sv);
    int port = s2_server_port(sv);
    CHECK_EQ_INT(upload(port, a, la, "a.jpg", NULL), 1);
    CHECK_EQ_INT(upload(port, b, lb, "b.jpg", NULL), 2);
    enum { N = 8 };
    pred_arg args[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        args[i] = (pred_arg){.port = port, .path = i % 4 == 3 ? "/api/images/2/predict" : "/api/images/1/predict"};
        CHECK(pthread_create(&th[i], NULL, predict_thread, &args[i]) == 0);
    }
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    int encoded_now = 0;
    for (int i = 0; i < N; i++) {
        CHECK_MSG(args[i].rc == 0 && args[i].r.status == 200, "thread %d: rc %d status %d", i, args[i].rc, args[i].r.status);
        s2_json *j = body_json(&args[i].r);
        const s2_json *e = s2_json_get(j, "encoded_now");
        encoded_now += e && e->b;
        /* every thread of one image got the same masks */
        const s2_json *m = s2_json_at(s2_json_get(j, "masks"), 0);
        s2_json *j0 = body_json(&args[i % 4 == 3 ? 3 : 0].r);
        const s2_json *m0 = s2_json_at(s2_json_get(j0, "masks"), 0);
        CHECK(m && m0 && !strcmp(s2_json_str(s2_json_get(m, "segmentation"), "counts"),
                                 s2_json_str(s2_json_get(m0, "segmentation"), "counts")));
        s2_json_free(j0);
        s2_json_free(j);
    }
    CHECK_EQ_INT(encoded_now, 2);
    CHECK_EQ_INT(metric(port, "encode", "count"), 2);
    CHECK_EQ_INT(metric(port, "predict", "count"), N);
    for (int i = 0; i < N; i++) resp_free(&args[i].r);
    s2_server_stop(sv);
    free(a);
    free(b);
}

/* One session kept: switching images evicts and re-encodes; results do not change. */
TEST(server_session_lru) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    REQUIRE(model());
    uint8_t *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    REQUIRE(read_bytes(s2t_fx("micro/image/truck/truck_450x300.jpg"), &a, &la));
    REQUIRE(read_bytes(s2t_fx("micro/image/groceries/groceries_400x267.jpg"), &b, &lb));
    s2_server *sv = start_ex("lru", 0, 0, 1);
    REQUIRE(sv);
    int port = s2_server_port(sv);
    CHECK_EQ_INT(upload(port, a, la, "a.jpg", NULL), 1);
    CHECK_EQ_INT(upload(port, b, lb, "b.jpg", NULL), 2);
    const char *body = "{\"box\":[50,40,260,200]}";
    char *first = NULL;
    for (int round = 0; round < 3; round++) {
        http_resp r;
        REQUIRE(http_json(port, "POST", round == 1 ? "/api/images/2/predict" : "/api/images/1/predict", body, &r) == 0);
        CHECK(r.status == 200 && strstr(r.body, "\"encoded_now\":true"));
        if (round == 0) first = s2_strdup(r.body + (strstr(r.body, "\"best\"") - r.body));
        if (round == 2) CHECK_MSG(!strcmp(first, strstr(r.body, "\"best\"")), "masks changed after re-encoding");
        resp_free(&r);
    }
    CHECK_EQ_INT(metric(port, "encode", "count"), 3);
    http_resp r;
    REQUIRE(http_get(port, "/metrics", &r) == 0);
    CHECK(strstr(r.body, "\"sessions\":1,\"evictions\":2"));
    resp_free(&r);
    free(first);
    s2_server_stop(sv);
    free(a);
    free(b);
}

static void expect_error(int port, const char *method, const char *path, const char *ctype, const char *body, int want) {
    http_resp r;
    int rc = http(port, method, path, ctype, body, body ? strlen(body) : 0, &r);
    CHECK_MSG(rc == 0 && is_json_error(&r, want), "%s %s -> want %d", method, path, want);
    resp_free(&r);
}

/* ---------- video ---------- */

/* A prompt sent while the job reads "running": refused with 409, or, when the job ended
 * in between, accepted. The probe clears object 1's (absent) prompts on a tracked
 * frame, which leaves its masks unchanged either way. Returns 1 when refused. */
static int probe_busy(int port, const char *path, int *probes) {
    http_resp r;
    ++*probes;
    const char *body = "{\"frame\":3,\"obj_id\":1,\"clear\":true}";
    int rc = http(port, "POST", path, "application/json", body, strlen(body), &r);
    bool busy = rc == 0 && r.status == 409 && is_json_error(&r, 409);
    CHECK_MSG(rc == 0 && (busy || r.status == 200), "prompt during propagation -> %d", rc == 0 ? r.status : -1);
    if (rc == 0) resp_free(&r);
    return busy;
}

#define VFRAMES 12
typedef struct vref { char *counts[VFRAMES][3]; } vref; /* [frame][obj_id] latest mask */

static int vref_frame(void *user, const s2_video_masks *m) {
    vref *r = user;
    int64_t hw = (int64_t)m->w * m->h;
    uint8_t *bin = malloc((size_t)hw);
    for (int k = 0; k < m->n_obj; k++) {
        for (int64_t i = 0; i < hw; i++) bin[i] = m->logits[k * hw + i] > 0.0f;
        s2_rle rle = {0};
        s2_rle_encode(bin, m->h, m->w, &rle);
        free(r->counts[m->frame_idx][m->obj_ids[k]]);
        r->counts[m->frame_idx][m->obj_ids[k]] = s2_rle_to_string(&rle);
        s2_rle_free(&rle);
    }
    free(bin);
    return 0;
}

/* The video predictor called directly on the same frames and prompts as the server. */
static int video_reference(uint8_t **data, size_t *len, vref *r) {
    s2_image ims[VFRAMES] = {{0}};
    const uint8_t *px[VFRAMES];
    s2_video *v = NULL;
    s2_video_masks out;
    const float pt[2] = {105, 175}, box[4] = {150, 5, 262, 200};
    const int32_t lab[1] = {1};
    int rc = 0;
    for (int f = 0; f < VFRAMES && rc == 0; f++) {
        rc = s2_image_decode(data[f], len[f], "frame", NULL, &ims[f]);
        px[f] = ims[f].px;
    }
    if (rc == 0) rc = s2_video_create(model(), NULL, &v);
    if (rc == 0) rc = s2_video_set_frames(v, VFRAMES, px, ims[0].w, ims[0].h);
    if (rc == 0) rc = s2_video_add_points_or_box(v, 0, 1, pt, lab, 1, NULL, true, true, &out);
    if (rc == 0) rc = vref_frame(r, &out);
    if (rc == 0) rc = s2_video_add_points_or_box(v, 0, 2, NULL, NULL, 0, box, true, true, &out);
    if (rc == 0) rc = vref_frame(r, &out);
    if (rc == 0) rc = s2_video_propagate(v, -1, -1, false, vref_frame, r);
    if (rc == 0) rc = s2_video_propagate(v, -1, -1, true, vref_frame, r);
    s2_video_free(v);
    for (int f = 0; f < VFRAMES; f++) s2_image_free(&ims[f]);
    return rc;
}

/* The RLE of object `obj` in a {"objects": [...]} frame answer, or NULL. */
static const char *frame_counts(const s2_json *j, int obj) {
    const s2_json *os = s2_json_get(j, "objects");
    for (int i = 0; os && i < os->n; i++)
        if (json_int(s2_json_at(os, i), "obj_id") == obj)
            return s2_json_str(s2_json_get(s2_json_at(os, i), "segmentation"), "counts");
    return NULL;
}

TEST(server_video_tracking) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    REQUIRE(model());
    uint8_t *data[VFRAMES] = {0}, *truck = NULL;
    size_t len[VFRAMES], tlen = 0;
    for (int f = 0; f < VFRAMES; f++) {
        char rel[64];
        snprintf(rel, sizeof rel, "micro/video/frames/%05d.jpg", f);
        REQUIRE(read_bytes(s2t_fx(rel), &data[f], &len[f]));
    }
    REQUIRE(read_bytes(s2t_fx("micro/image/truck/truck_450x300.jpg"), &truck, &tlen));
    s2_server *sv = start("video", 0, 0);
    REQUIRE(sv);
    int port = s2_server_port(sv);
    for (int f = 0; f < VFRAMES; f++) CHECK_EQ_INT(upload(port, data[f], len[f], "frame.jpg", NULL), f + 1);
    CHECK_EQ_INT(upload(port, truck, tlen, "truck.jpg", NULL), VFRAMES + 1);
    const char *J = "application/json";
    expect_error(port, "POST", "/api/videos", J, "{\"frames\":[1,13]}", 400);
    expect_error(port, "POST", "/api/videos", J, "{\"frames\":[]}", 400);
    expect_error(port, "POST", "/api/videos", J, "{\"frames\":[1,99]}", 400);
    expect_error(port, "POST", "/api/videos", J, "{\"frames\":[1.5]}", 400);
    expect_error(port, "POST", "/api/videos", J, "{\"frames\":\"1-12\"}", 400);
    http_resp r;
    REQUIRE(http_json(port, "POST", "/api/videos", "{\"name\":\"clip\",\"frames\":[1,2,3,4,5,6,7,8,9,10,11,12]}", &r) == 0);
    s2_json *j = body_json(&r);
    CHECK(r.status == 201 && json_int(j, "id") == 1 && json_int(j, "n_frames") == VFRAMES && json_int(j, "width") == 480 &&
          json_int(j, "height") == 270);
    s2_json_free(j);
    resp_free(&r);
    REQUIRE(http_get(port, "/api/videos/1", &r) == 0);
    CHECK(r.status == 200 && strstr(r.body, "\"frames\":[1,2,3,4,5,6,7,8,9,10,11,12]"));
    resp_free(&r);

    const char *PR = "/api/videos/1/prompt";
    expect_error(port, "POST", PR, J, "{\"frame\":12,\"obj_id\":1,\"points\":[[10,10]],\"labels\":[1]}", 400);
    expect_error(port, "POST", PR, J, "{\"frame\":0,\"obj_id\":-1,\"points\":[[10,10]],\"labels\":[1]}", 400);
    expect_error(port, "POST", PR, J, "{\"frame\":0,\"obj_id\":1,\"points\":[[481,10]],\"labels\":[1]}", 400);
    expect_error(port, "POST", PR, J, "{\"frame\":0,\"obj_id\":1}", 400);
    expect_error(port, "POST", "/api/videos/7/prompt", J, "{\"frame\":0,\"obj_id\":1,\"box\":[1,1,9,9]}", 404);
    REQUIRE(http_json(port, "POST", PR, "{\"frame\":0,\"obj_id\":1,\"points\":[[105,175]],\"labels\":[1]}", &r) == 0);
    CHECK(r.status == 200);
    resp_free(&r);
    REQUIRE(http_json(port, "POST", PR, "{\"frame\":0,\"obj_id\":2,\"box\":[150,5,262,200]}", &r) == 0);
    j = body_json(&r);
    CHECK(r.status == 200 && s2_json_get(j, "objects") && s2_json_get(j, "objects")->n == 2);
    s2_json_free(j);
    resp_free(&r);

    REQUIRE(http(port, "POST", "/api/videos/1/propagate", NULL, NULL, 0, &r) == 0);
    j = body_json(&r);
    int64_t job = json_int(j, "id");
    CHECK(r.status == 202 && job > 0 && !strcmp(s2_json_str(j, "kind"), "propagate"));
    s2_json_free(j);
    resp_free(&r);
    char path[96], state[16] = "";
    snprintf(path, sizeof path, "/api/jobs/%lld", (long long)job);
    double last = 0;
    int probes = 0, n409 = 0; /* prompts tried while the propagation runs, refused */
    double t0 = s2_now_s();
    while (s2_now_s() - t0 < 600 && strcmp(state, "done") && strcmp(state, "failed")) {
        if (http_get(port, path, &r) < 0) break;
        j = body_json(&r);
        snprintf(state, sizeof state, "%s", s2_json_str(j, "state") ? s2_json_str(j, "state") : "?");
        double prog = -1;
        s2_json_num(j, "progress", &prog);
        CHECK(prog >= last - 1e-12 && prog <= 1);
        last = prog;
        if (!strcmp(state, "running")) n409 += probe_busy(port, PR, &probes);
        s2_json_free(j);
        resp_free(&r);
        if (strcmp(state, "done")) usleep(20 * 1000);
    }
    CHECK_MSG(!strcmp(state, "done"), "propagation job %s", state);
    CHECK_NEAR(last, 1.0, 1e-12);
    /* only the last probe can race the job's end (and then succeed harmlessly) */
    CHECK_MSG(n409 >= probes - 1, "%d of %d prompts during the propagation refused", n409, probes);

    /* every frame's masks equal the video predictor's called directly */
    vref ref;
    memset(&ref, 0, sizeof ref);
    REQUIRE(video_reference(data, len, &ref) == 0);
    int same = 0, n_nonempty = 0;
    for (int f = 0; f < VFRAMES; f++) {
        snprintf(path, sizeof path, "/api/videos/1/masks?frame=%d", f);
        REQUIRE(http_get(port, path, &r) == 0);
        j = body_json(&r);
        for (int obj = 1; obj <= 2; obj++) {
            const char *c = frame_counts(j, obj);
            bool eq = c && ref.counts[f][obj] && !strcmp(c, ref.counts[f][obj]);
            CHECK_MSG(eq, "frame %d object %d differs from the video predictor", f, obj);
            same += eq;
        }
        /* object 1 wherever it is listed (a clear re-records it at the end) */
        const s2_json *objs = s2_json_get(j, "objects");
        for (int k = 0; objs && k < objs->n; k++) {
            const s2_json *o = s2_json_at(objs, k);
            n_nonempty += json_int(o, "obj_id") == 1 && json_int(o, "area") > 0;
        }
        s2_json_free(j);
        resp_free(&r);
    }
    CHECK_EQ_INT(same, 2 * VFRAMES);
    expect_error(port, "GET", "/api/videos/1/masks?frame=12", NULL, NULL, 400);
    expect_error(port, "GET", "/api/videos/1/masks?frame=x", NULL, NULL, 400);
    expect_error(port, "GET", "/api/videos/1/masks", NULL, NULL, 400);

    /* accept track 1: one object per frame where it has a mask */
    expect_error(port, "POST", "/api/videos/1/accept", J, "{\"obj_id\":1}", 400);
    expect_error(port, "POST", "/api/videos/1/accept", J, "{\"obj_id\":5,\"label\":\"x\"}", 409);
    REQUIRE(http_json(port, "POST", "/api/videos/1/accept", "{\"obj_id\":1,\"label\":\"ball\"}", &r) == 0);
    j = body_json(&r);
    CHECK(r.status == 201 && s2_json_get(j, "objects") && s2_json_get(j, "objects")->n == n_nonempty);
    s2_json_free(j);
    resp_free(&r);
    REQUIRE(http_get(port, "/api/images/5/objects", &r) == 0);
    CHECK(r.status == 200 && strstr(r.body, "\"label\":\"ball\"") && strstr(r.body, "\"video_id\":1,\"obj_id\":1,\"frame\":4"));
    resp_free(&r);
    REQUIRE(http_get(port, "/api/export?format=coco", &r) == 0);
    j = body_json(&r);
    CHECK(s2_json_get(j, "annotations") && s2_json_get(j, "annotations")->n == n_nonempty);
    s2_json_free(j);
    resp_free(&r);
    /* clearing track 2's clicks on frame 0 keeps track 1 there */
    expect_error(port, "POST", PR, J, "{\"frame\":0,\"obj_id\":9,\"clear\":true}", 400);
    expect_error(port, "POST", PR, J, "{\"frame\":0,\"obj_id\":2,\"clear\":1}", 400);
    REQUIRE(http_json(port, "POST", PR, "{\"frame\":0,\"obj_id\":2,\"clear\":true}", &r) == 0);
    j = body_json(&r);
    CHECK(r.status == 200 && frame_counts(j, 1) && !strcmp(frame_counts(j, 1), ref.counts[0][1]));
    s2_json_free(j);
    resp_free(&r);
    REQUIRE(http(port, "POST", "/api/videos/1/reset", NULL, NULL, 0, &r) == 0);
    CHECK(r.status == 200);
    resp_free(&r);
    REQUIRE(http_get(port, "/api/videos/1/masks?frame=0", &r) == 0);
    CHECK(r.status == 200 && strstr(r.body, "\"objects\":[]"));
    resp_free(&r);
    CHECK_EQ_INT(metric(port, "requests", "video_prompt"), 10 + probes);
    for (int f = 0; f < VFRAMES; f++) {
        for (int o = 0; o < 3; o++) free(ref.counts[f][o]);
        free(data[f]);
    }
    free(truck);
    s2_server_stop(sv);
}

/* ---------- hostile requests ---------- */

TEST(server_hostile_requests) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    REQUIRE(model());
    uint8_t *jpg = NULL;
    size_t len = 0;
    REQUIRE(read_bytes(s2t_fx("micro/image/truck/truck_450x300.jpg"), &jpg, &len));
    s2_server *sv = start("hostile", 64 << 10, 2);
    REQUIRE(sv);
    int port = s2_server_port(sv);
    g_error_checks = 0;
    CHECK_EQ_INT(upload(port, jpg, len, "t.jpg", NULL), 1);
    const char *J = "application/json", *P = "/api/images/1/predict";

    /* bad prompts and bodies: 400 / 415, and no encode is spent on them */
    expect_error(port, "POST", P, J, "{\"points\":[[500,10]],\"labels\":[1]}", 400);
    expect_error(port, "POST", P, J, "{\"points\":[[-1,10]],\"labels\":[1]}", 400);
    expect_error(port, "POST", P, J, "{\"points\":[[1e999,10]],\"labels\":[1]}", 400);
    expect_error(port, "POST", P, J, "{\"points\":[[10,10]],\"labels\":[2]}", 400);
    expect_error(port, "POST", P, J, "{\"points\":[[10,10]]}", 400);
    expect_error(port, "POST", P, J, "{\"points\":[[10,\"x\"]],\"labels\":[1]}", 400);
    expect_error(port, "POST", P, J, "{\"points\":[[10]],\"labels\":[1]}", 400);
    expect_error(port, "POST", P, J, "{\"points\":\"10,10\",\"labels\":[1]}", 400);
    expect_error(port, "POST", P, J, "{\"box\":[300,10,100,200]}", 400);
    expect_error(port, "POST", P, J, "{\"box\":[0,0,451,300]}", 400);
    expect_error(port, "POST", P, J, "{\"box\":[1,2,3]}", 400);
    expect_error(port, "POST", P, J, "{}", 400);
    expect_error(port, "POST", P, J, "{\"points\":[[1,1]],\"labels\":[1],\"multimask\":1}", 400);
    expect_error(port, "POST", P, J, "{\"pionts\":[[1,1]]}", 400);
    expect_error(port, "POST", P, J, "[1,2]", 400);
    expect_error(port, "POST", P, J, "{\"points\":", 400);
    expect_error(port, "POST", P, J, "", 400);
    expect_error(port, "POST", P, "text/plain", "{\"box\":[1,1,50,50]}", 415);
    expect_error(port, "POST", P, NULL, "{\"box\":[1,1,50,50]}", 415);
    char many[8192];
    int k = snprintf(many, sizeof many, "{\"points\":[");
    for (int i = 0; i < 65; i++) k += snprintf(many + k, sizeof many - k, "%s[1,1]", i ? "," : "");
    k += snprintf(many + k, sizeof many - k, "],\"labels\":[");
    for (int i = 0; i < 65; i++) k += snprintf(many + k, sizeof many - k, "%s1", i ? "," : "");
    snprintf(many + k, sizeof many - k, "]}");
    expect_error(port, "POST", P, J, many, 400);
    /* deep JSON */
    char deep[4096];
    k = snprintf(deep, sizeof deep, "{\"points\":");
    for (int i = 0; i < 1000; i++) deep[k++] = '[';
    for (int i = 0; i < 1000; i++) deep[k++] = ']';
    snprintf(deep + k, sizeof deep - k, ",\"labels\":[1]}");
    expect_error(port, "POST", P, J, deep, 400);
    CHECK_EQ_INT(metric(port, "encode", "count"), 0);

    /* ids and routes */
    expect_error(port, "POST", "/api/images/abc/predict", J, "{}", 400);
    expect_error(port, "POST", "/api/images/0/predict", J, "{}", 400);
    expect_error(port, "POST", "/api/images/99/predict", J, "{\"box\":[1,1,5,5]}", 404);
    expect_error(port, "GET", "/api/images/-3", NULL, NULL, 400);
    expect_error(port, "GET", "/api/images/99999999999999999999", NULL, NULL, 400);
    expect_error(port, "GET", "/api/images/1x", NULL, NULL, 400);
    expect_error(port, "GET", "/api/images/%20", NULL, NULL, 400);
    expect_error(port, "GET", "/api/images/77", NULL, NULL, 404);
    expect_error(port, "GET", "/api/objects/5", NULL, NULL, 404);
    expect_error(port, "PATCH", "/api/objects/5", J, "{\"label\":\"x\"}", 404);
    expect_error(port, "DELETE", "/api/objects/5", NULL, NULL, 404);
    expect_error(port, "GET", "/api/jobs/9", NULL, NULL, 404);
    expect_error(port, "GET", "/api/nothing", NULL, NULL, 404);
    expect_error(port, "GET", "/no/such/page", NULL, NULL, 404);
    expect_error(port, "GET", "/api/export?format=xml", NULL, NULL, 400);
    expect_error(port, "GET", "/api/export?format=coco&archive=zip", NULL, NULL, 400);

    /* methods */
    http_resp r;
    REQUIRE(http(port, "PUT", "/api/images", J, "{}", 2, &r) == 0);
    CHECK(is_json_error(&r, 405) && strstr(r.allow, "GET") && strstr(r.allow, "POST"));
    resp_free(&r);
    expect_error(port, "DELETE", "/healthz", NULL, NULL, 405);
    expect_error(port, "GET", "/api/images/1/predict", NULL, NULL, 405);
    expect_error(port, "POST", "/api/objects/1", J, "{}", 405);
    expect_error(port, "BREW", "/healthz", NULL, NULL, 405);

    /* uploads: wrong type, not an image, truncated, over the limit */
    expect_error(port, "POST", "/api/images", "text/plain", "hello", 415);
    expect_error(port, "POST", "/api/images", "image/jpeg", "GIF89a not a jpeg", 415);
    REQUIRE(http(port, "POST", "/api/images", "image/jpeg", jpg, 600, &r) == 0);
    CHECK(is_json_error(&r, 400));
    resp_free(&r);
    const char big_head[] = "POST /api/images HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                            "Content-Length: 1000000000\r\nConnection: close\r\n\r\n";
    REQUIRE(http_raw(port, big_head, sizeof big_head - 1, &r) == 0);
    CHECK(is_json_error(&r, 413));
    resp_free(&r);
    /* a chunked JSON body past the limit (no length given up front) */
    size_t chunk = 16 << 10, n_chunks = 6;
    char *req = malloc(1024 + n_chunks * (chunk + 16));
    size_t rl = (size_t)sprintf(req, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                     "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n", P);
    for (size_t c = 0; c < n_chunks; c++) {
        rl += (size_t)sprintf(req + rl, "%zx\r\n", chunk);
        memset(req + rl, ' ', chunk);
        rl += chunk;
        rl += (size_t)sprintf(req + rl, "\r\n");
    }
    rl += (size_t)sprintf(req + rl, "0\r\n\r\n");
    REQUIRE(http_raw(port, req, rl, &r) == 0);
    CHECK(is_json_error(&r, 413));
    resp_free(&r);
    free(req);

    /* objects: bad masks and labels */
    const char *O = "/api/images/1/objects";
    expect_error(port, "POST", O, J, "{\"label\":\"a\",\"segmentation\":{\"size\":[300,450],\"counts\":\"zz\"}}", 400);
    expect_error(port, "POST", O, J, "{\"label\":\"a\",\"segmentation\":{\"size\":[30,45],\"counts\":[1350]}}", 400);
    expect_error(port, "POST", O, J, "{\"label\":\"a\",\"segmentation\":{\"size\":[300,450],\"counts\":[135000]}}", 400);
    expect_error(port, "POST", O, J, "{\"label\":\"a\",\"segmentation\":{\"size\":[300,450],\"counts\":[5,-3]}}", 400);
    expect_error(port, "POST", O, J, "{\"segmentation\":{\"size\":[300,450],\"counts\":[0,135000]}}", 400);
    expect_error(port, "POST", O, J, "{\"label\":\"\",\"segmentation\":{\"size\":[300,450],\"counts\":[0,135000]}}", 400);
    expect_error(port, "POST", O, J, "{\"label\":\"a\\u0001\",\"segmentation\":{\"size\":[300,450],\"counts\":[0,135000]}}", 400);
    expect_error(port, "POST", O, J, "{\"label\":\"a\",\"segmentation\":\"x\"}", 400);
    expect_error(port, "POST", "/api/images/9/objects", J, "{\"label\":\"a\",\"segmentation\":{\"size\":[300,450],\"counts\":[0,135000]}}", 404);
    REQUIRE(http_json(port, "POST", O, "{\"label\":\"all\",\"segmentation\":{\"size\":[300,450],\"counts\":[0,135000]}}", &r) == 0);
    CHECK(r.status == 201);
    resp_free(&r);
    expect_error(port, "PATCH", "/api/objects/1", J, "{\"status\":\"gone\"}", 400);
    expect_error(port, "PATCH", "/api/objects/1", J, "{}", 400);
    expect_error(port, "PATCH", "/api/objects/1", J, "{\"colour\":1}", 400);

    /* garbage on the wire, and an idle connection that the timeout closes */
    const char garbage[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n";
    int gfd = dial(port, 10);
    REQUIRE(gfd >= 0);
    send_all(gfd, garbage, sizeof garbage - 1);
    char sink[4096];
    double t0 = s2_now_s();
    while (recv(gfd, sink, sizeof sink, 0) > 0 && s2_now_s() - t0 < 10) {}
    close(gfd);
    int idle = dial(port, 15);
    REQUIRE(idle >= 0);
    t0 = s2_now_s();
    ssize_t got = recv(idle, sink, sizeof sink, 0);
    double waited = s2_now_s() - t0;
    close(idle);
    CHECK_MSG(got == 0 && waited < 10, "idle connection: recv %zd after %.1f s (timeout 2 s)", got, waited);
    REQUIRE(http_get(port, "/healthz", &r) == 0);
    CHECK(r.status == 200);
    resp_free(&r);
    CHECK_EQ_INT(metric(port, "responses", "4xx"), g_error_checks); /* all counted, none 5xx */
    CHECK_EQ_INT(metric(port, "responses", "5xx"), 0);
    s2_server_stop(sv);
    free(jpg);
}

/* ---------- durability across SIGKILL ---------- */

typedef struct child {
    pid_t pid;
    int port;
} child;

/* Starts `sam2c serve` on a free port and reads the port from its first line. */
static bool spawn_server(const char *proj, child *c) {
    int fds[2];
    if (pipe(fds) != 0) return false;
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(s2t_bin(), s2t_bin(), "serve", "-m", s2t_fx("micro/model.pt"), "--host", "127.0.0.1", "--port", "0",
              "--project", proj, "--quiet", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[1024];
    size_t n = 0;
    double t0 = s2_now_s();
    while (n < sizeof line - 1 && !memchr(line, '\n', n) && s2_now_s() - t0 < 60) {
        struct pollfd pf = {.fd = fds[0], .events = POLLIN};
        if (poll(&pf, 1, 1000) <= 0) continue;
        ssize_t k = read(fds[0], line + n, sizeof line - 1 - n);
        if (k <= 0) break;
        n += (size_t)k;
    }
    close(fds[0]);
    line[n] = 0;
    const char *p = strstr(line, "127.0.0.1:");
    c->pid = pid;
    c->port = p ? atoi(p + 10) : 0;
    if (c->port <= 0) fprintf(stderr, "  server did not start: '%s'\n", line);
    return c->port > 0;
}

/* Waits (bounded) for the child; SIGKILL when it does not exit in time. */
static int reap(pid_t pid, double timeout_s) {
    int st = 0;
    double t0 = s2_now_s();
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (s2_now_s() - t0 > timeout_s) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(20 * 1000);
    }
    return st;
}

TEST(server_survives_sigkill) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    if (access(s2t_bin(), X_OK) != 0) { s2t_skip("sam2c binary not built"); return; }
    uint8_t *jpg = NULL;
    size_t len = 0;
    REQUIRE(read_bytes(s2t_fx("micro/image/truck/truck_450x300.jpg"), &jpg, &len));
    const char *proj = project_dir("durable");
    child c;
    REQUIRE(spawn_server(proj, &c));
    CHECK_EQ_INT(upload(c.port, jpg, len, "t.jpg", NULL), 1);
    enum { N = 6 };
    char *counts[N] = {0};
    int64_t ids[N];
    http_resp r;
    REQUIRE(http_json(c.port, "POST", "/api/images/1/predict", "{\"points\":[[200,150]],\"labels\":[1]}", &r) == 0);
    CHECK(r.status == 200);
    resp_free(&r);
    uint8_t *mask = malloc(450 * 300);
    for (int i = 0; i < N; i++) { /* accept N distinct masks (rectangles of growing size) */
        memset(mask, 0, 450 * 300);
        for (int y = 10 + 5 * i; y < 60 + 30 * i; y++)
            for (int x = 20 + 7 * i; x < 90 + 50 * i; x++) mask[y * 450 + x] = 1;
        s2_rle rle = {0};
        REQUIRE(s2_rle_encode(mask, 300, 450, &rle) == 0);
        counts[i] = s2_rle_to_string(&rle);
        s2_rle_free(&rle);
        s2_jw w;
        s2_jw_init(&w);
        s2_jw_obj_begin(&w);
        s2_jw_key(&w, "label"); s2_jw_str(&w, i % 2 ? "wheel" : "door");
        s2_jw_key(&w, "segmentation");
        s2_jw_obj_begin(&w);
        s2_jw_key(&w, "size");
        s2_jw_arr_begin(&w); s2_jw_int(&w, 300); s2_jw_int(&w, 450); s2_jw_arr_end(&w);
        s2_jw_key(&w, "counts"); s2_jw_str(&w, counts[i]);
        s2_jw_obj_end(&w);
        s2_jw_obj_end(&w);
        REQUIRE(http_json(c.port, "POST", "/api/images/1/objects", w.buf, &r) == 0);
        s2_jw_free(&w);
        s2_json *j = body_json(&r);
        CHECK(r.status == 201);
        ids[i] = json_int(j, "id");
        CHECK(s2_json_str(s2_json_get(j, "segmentation"), "counts") && !strcmp(s2_json_str(s2_json_get(j, "segmentation"), "counts"), counts[i]));
        s2_json_free(j);
        resp_free(&r);
    }
    free(mask);
    REQUIRE(http_json(c.port, "PATCH", "/api/objects/3", "{\"label\":\"mirror\"}", &r) == 0);
    CHECK(r.status == 200);
    resp_free(&r);
    REQUIRE(http(c.port, "DELETE", "/api/objects/4", NULL, NULL, 0, &r) == 0);
    CHECK(r.status == 200);
    resp_free(&r);
    /* a request in flight (half a body sent) when the server dies */
    int fd = dial(c.port, 10);
    const char half[] = "POST /api/images/1/objects HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        "Content-Length: 400\r\n\r\n{\"label\":\"lost\",\"segm";
    if (fd >= 0) send_all(fd, half, sizeof half - 1);
    usleep(100 * 1000);
    kill(c.pid, SIGKILL);
    int st = reap(c.pid, 30);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    if (fd >= 0) close(fd);

    child c2;
    REQUIRE(spawn_server(proj, &c2));
    REQUIRE(http_get(c2.port, "/api/images/1/objects?all=1", &r) == 0);
    s2_json *j = body_json(&r);
    const s2_json *objs = s2_json_get(j, "objects");
    CHECK(r.status == 200 && objs && objs->n == N);
    for (int i = 0; objs && i < N && i < objs->n; i++) {
        const s2_json *o = s2_json_at(objs, i);
        const char *want_label = i == 2 ? "mirror" : i % 2 ? "wheel" : "door";
        CHECK_EQ_INT(json_int(o, "id"), ids[i]);
        CHECK(!strcmp(s2_json_str(s2_json_get(o, "segmentation"), "counts"), counts[i]));
        CHECK(s2_json_str(o, "label") && !strcmp(s2_json_str(o, "label"), want_label));
        CHECK(!strcmp(s2_json_str(o, "status"), i == 3 ? "rejected" : "accepted"));
    }
    s2_json_free(j);
    resp_free(&r);
    REQUIRE(http_get(c2.port, "/api/images/1", &r) == 0);
    CHECK(r.status == 200 && r.len == len && !memcmp(r.body, jpg, len));
    resp_free(&r);
    kill(c2.pid, SIGTERM);
    st = reap(c2.pid, 30);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (int i = 0; i < N; i++) free(counts[i]);
    free(jpg);
}

#else

TEST(server_not_built) { s2t_skip("built without libmicrohttpd + SQLite"); }

#endif
