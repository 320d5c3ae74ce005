/* `sam2c serve` safe by default: loopback-only unless a token is given, the token on
 * every API request (401 JSON otherwise), body size limits, malformed JSON and wrong
 * types answered 400, files confined to the project folder; and video file upload
 * (split into PNG frames by a background job, pixel-exact to the decoder). */
#include "harness.h"
#include "http_client.h"
#include "sam2c.h"
#include "core/s2.h"
#include "io/image.h"
#include "io/json.h"
#include "io/video_decode.h"
#include "server/server.h"
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef SAM2C_HAVE_SERVER

#define TOKEN "t0ken-for-tests-42"

/* ---------- a minimal HTTP/1.1 client (one request per connection, loopback) ---------- */

typedef struct http_resp {
    int status;
    char *body; /* NUL-terminated */
    size_t len;
    char ctype[128], www_auth[128];
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
        if (n + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + n, cap - n - 1, 0);
        if (k <= 0) break;
        n += (size_t)k;
    }
    buf[n] = 0;
    char *end = strstr(buf, "\r\n\r\n");
    if (n < 12 || strncmp(buf, "HTTP/1.", 7) || !end) { free(buf); return -1; }
    r->status = atoi(buf + 9);
    *end = 0;
    header_value(buf, "Content-Type", r->ctype, sizeof r->ctype);
    header_value(buf, "WWW-Authenticate", r->www_auth, sizeof r->www_auth);
    r->len = n - (size_t)(end + 4 - buf);
    r->body = malloc(r->len + 1);
    memcpy(r->body, end + 4, r->len);
    r->body[r->len] = 0;
    free(buf);
    return 0;
}

/* One request; auth NULL: no Authorization header. */
static int http(int port, const char *method, const char *path, const char *auth, const char *ctype, const void *body,
                size_t len, http_resp *r) {
    char head[1024];
    int hl = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s%s%s%s"
                      "Content-Length: %zu\r\n\r\n", method, path, auth ? "Authorization: " : "", auth ? auth : "",
                      auth ? "\r\n" : "", ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "", len);
    int fd = dial(port, 120);
    if (fd < 0) return -1;
    bool sent = send_all(fd, head, (size_t)hl);
    if (sent && len) send_all(fd, body, len); /* the server may answer early and stop reading */
    int rc = sent ? read_resp(fd, r) : -1;
    close(fd);
    return rc;
}

static int http_json(int port, const char *method, const char *path, const char *json, http_resp *r) {
    return http(port, method, path, "Bearer " TOKEN, "application/json", json, strlen(json), r);
}

/* The status is `want` and the body is {"error": "..."} served as JSON; the message
 * contains `needle` when given. */
static bool is_json_error(const http_resp *r, int want, const char *needle) {
    s2_json *j = NULL;
    bool ok = r->body && s2_json_parse(r->body, r->len, "response", NULL, &j) == SAM2C_OK && r->status == want &&
              s2_json_str(j, "error") && (!needle || strstr(s2_json_str(j, "error"), needle)) &&
              !strncmp(r->ctype, "application/json", 16);
    if (!ok) fprintf(stderr, "  expected %d JSON error (%s), got %d %.300s\n", want, needle ? needle : "", r->status,
                     r->body ? r->body : "");
    s2_json_free(j);
    return ok;
}

static int64_t body_int(const http_resp *r, const char *key) {
    s2_json *j = NULL;
    int64_t v = -1;
    if (r->body && s2_json_parse(r->body, r->len, "response", NULL, &j) == SAM2C_OK && !s2_json_int(j, key, &v)) v = -1;
    s2_json_free(j);
    return v;
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

/* A server on a free loopback port with the token and small limits, project `name`. */
static s2_server *start(const char *name, char *proj, size_t cap) {
    snprintf(proj, cap, "%s/%s/project", s2t_tmpdir(), name);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", proj, proj);
    s2t_run(cmd, NULL, 0);
    s2_server_params p;
    s2_server_default_params(&p);
    p.port = 0;
    p.project_dir = proj;
    p.token = TOKEN;
    p.max_image_bytes = (size_t)2 << 20;
    p.max_json_bytes = 64 << 10;
    p.max_video_bytes = (size_t)8 << 20;
    s2_server *sv = NULL;
    if (s2_server_start(model(), &p, &sv) < 0) fprintf(stderr, "  start: %s\n", sam2c_last_error());
    return sv;
}

static bool read_file(const char *path, uint8_t **d, size_t *n) { return s2_read_file(path, d, n) == SAM2C_OK; }

/* Uploads an image with the token; returns its id or -1. */
static int64_t upload_image(int port, const char *name) {
    uint8_t *d = NULL;
    size_t n = 0;
    if (!read_file(s2t_dat("images/truck.jpg"), &d, &n)) return -1;
    char path[256];
    snprintf(path, sizeof path, "/api/images?name=%s", name);
    http_resp r;
    int64_t id = http(port, "POST", path, "Bearer " TOKEN, "image/jpeg", d, n, &r) == 0 && r.status == 201 ? body_int(&r, "id") : -1;
    if (id < 0) fprintf(stderr, "  upload: %d %s\n", r.status, r.body ? r.body : "");
    resp_free(&r);
    free(d);
    return id;
}

/* ---------- tests ---------- */

TEST(server_refuses_open_bind_without_token) {
    CHECK(s2_server_host_is_loopback("127.0.0.1"));
    CHECK(s2_server_host_is_loopback("127.1.2.3"));
    CHECK(s2_server_host_is_loopback("::1"));
    CHECK(!s2_server_host_is_loopback("0.0.0.0"));
    CHECK(!s2_server_host_is_loopback("192.168.1.4"));
    CHECK(!s2_server_host_is_loopback("::"));
    CHECK(!s2_server_host_is_loopback("localhost")); /* not numeric: refused later as a bad host */
    s2_server_params p;
    s2_server_default_params(&p);
    CHECK(!strcmp(p.host, "127.0.0.1"));
    p.port = 0;
    p.project_dir = "/nonexistent/never-created";
    const char *hosts[] = {"0.0.0.0", "::", "10.0.0.1"};
    for (int i = 0; i < 3; i++) {
        s2_server *sv = NULL;
        p.host = hosts[i];
        CHECK_EQ_INT(s2_server_start((const sam2c_model *)1, &p, &sv), SAM2C_ERR_ARG);
        CHECK(sv == NULL && strstr(sam2c_last_error(), "--token"));
    }
    p.host = "0.0.0.0";
    const char *bad[] = {"short", "has space in it", "tab\there-1234"};
    for (int i = 0; i < 3; i++) {
        s2_server *sv = NULL;
        p.token = bad[i];
        CHECK_EQ_INT(s2_server_start((const sam2c_model *)1, &p, &sv), SAM2C_ERR_ARG);
        CHECK(strstr(sam2c_last_error(), "token"));
    }
    struct stat st;
    CHECK(stat("/nonexistent/never-created", &st) != 0); /* refused before anything was opened */
}

TEST(server_token_on_every_request) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    char proj[1024];
    s2_server *sv = start("token", proj, sizeof proj);
    REQUIRE(sv);
    int port = s2_server_port(sv);
    const char *guarded[][2] = {{"GET", "/api/images"}, {"GET", "/healthz"}, {"GET", "/metrics"},
                                {"GET", "/api/export?format=coco"}, {"POST", "/api/images/1/predict"},
                                {"DELETE", "/api/objects/1"}, {"GET", "/api/nothing"}, {"GET", "/not-a-page"}};
    const char *wrong[] = {NULL, "Bearer", "Bearer ", "Bearer t0ken-for-tests-4", "Bearer t0ken-for-tests-421",
                           "Basic dXNlcjpwYXNz", "Bearer T0KEN-FOR-TESTS-42", TOKEN};
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 8; k++) {
            http_resp r;
            REQUIRE(http(port, guarded[i][0], guarded[i][1], wrong[k], NULL, NULL, 0, &r) == 0);
            CHECK(is_json_error(&r, 401, "Authorization: Bearer"));
            CHECK(!strcmp(r.www_auth, "Bearer realm=\"sam2c\""));
            resp_free(&r);
        }
    /* the right token opens everything; the panel's own files need none */
    http_resp r;
    REQUIRE(http(port, "GET", "/api/images", "Bearer " TOKEN, NULL, NULL, 0, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    resp_free(&r);
    REQUIRE(http(port, "GET", "/healthz", "bearer  " TOKEN, NULL, NULL, 0, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    resp_free(&r);
    const char *pub[] = {"/", "/index.html", "/api.js", "/app.js", "/style.css"};
    for (int i = 0; i < 5; i++) {
        REQUIRE(http(port, "GET", pub[i], NULL, NULL, NULL, 0, &r) == 0);
        CHECK_EQ_INT(r.status, 200);
        resp_free(&r);
    }
    /* an unauthenticated upload is refused before its body is read (no 413, nothing stored) */
    size_t big = (size_t)6 << 20;
    uint8_t *junk = calloc(1, big);
    REQUIRE(http(port, "POST", "/api/images?name=a.jpg", NULL, "image/jpeg", junk, big, &r) == 0);
    CHECK(is_json_error(&r, 401, NULL));
    resp_free(&r);
    REQUIRE(http(port, "POST", "/api/videos/upload?name=a.mp4", "Bearer nope-nope-nope", "video/mp4", junk, 1 << 20, &r) == 0);
    CHECK(is_json_error(&r, 401, NULL));
    resp_free(&r);
    free(junk);
    REQUIRE(http(port, "GET", "/metrics", "Bearer " TOKEN, NULL, NULL, 0, &r) == 0);
    s2_json *j = NULL;
    REQUIRE(s2_json_parse(r.body, r.len, "metrics", NULL, &j) == SAM2C_OK);
    int64_t unauth = -1, images = -1;
    s2_json_int(s2_json_get(j, "requests"), "unauthorized", &unauth);
    s2_json_int(s2_json_get(j, "requests"), "images_upload", &images);
    CHECK_EQ_INT(unauth, 8 * 8 + 2);
    CHECK_EQ_INT(images, 0);
    s2_json_free(j);
    resp_free(&r);
    s2_server_stop(sv);
}

TEST(server_limits_and_bad_json) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    if (!s2t_data()) { s2t_skip("sample data missing"); return; }
    char proj[1024];
    s2_server *sv = start("limits", proj, sizeof proj);
    REQUIRE(sv);
    int port = s2_server_port(sv);
    int64_t id = upload_image(port, "truck.jpg");
    REQUIRE(id > 0);
    char path[128];
    snprintf(path, sizeof path, "/api/images/%lld/predict", (long long)id);
    struct { const char *body, *needle; } bad[] = {
        {"{", "body"}, {"{\"points\": [[10, 20]], \"labels\": [1]", "body"}, {"[1, 2]", "JSON object"},
        {"\"points\"", "JSON object"}, {"{\"points\": [[10, 20]], \"labels\": [1]} x", "body"},
        {"{\"points\": \"10,20\", \"labels\": [1]}", "points"}, {"{\"points\": [[10, 20]], \"labels\": 1}", "labels"},
        {"{\"points\": [[10, \"20\"]], \"labels\": [1]}", "point 0"}, {"{\"points\": [[10, 20]], \"labels\": [\"1\"]}", "label 0"},
        {"{\"box\": [1, 2, 3]}", "box"}, {"{\"box\": {\"x\": 1}}", "box"},
        {"{\"points\": [[10, 20]], \"labels\": [1], \"multimask\": \"yes\"}", "multimask"},
        {"{\"points\": [[10, 20]], \"labels\": [1], \"colour\": 3}", "colour"},
        {"{\"points\": [[1e999, 20]], \"labels\": [1]}", NULL}, {"{\"points\": [[10, 20]], \"labels\": [1, 0]}", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_resp r;
        REQUIRE(http_json(port, "POST", path, bad[i].body, &r) == 0);
        bool ok = is_json_error(&r, 400, bad[i].needle);
        CHECK(ok);
        if (!ok) fprintf(stderr, "  body: %s\n", bad[i].body);
        resp_free(&r);
    }
    /* wrong types on the other JSON routes */
    const char *other[][3] = {{"POST", "/api/images/%lld/objects", "{\"label\": 7}"},
                              {"POST", "/api/videos", "{\"frames\": \"1,2\"}"},
                              {"POST", "/api/videos", "{\"frames\": [1.5]}"},
                              {"POST", "/api/videos", "{\"frames\": [%lld], \"name\": 3}"}};
    for (int i = 0; i < 4; i++) {
        char p2[128], b2[128];
        snprintf(p2, sizeof p2, other[i][1], (long long)id);
        snprintf(b2, sizeof b2, other[i][2], (long long)id);
        http_resp r;
        REQUIRE(http_json(port, other[i][0], p2, b2, &r) == 0);
        CHECK(is_json_error(&r, 400, NULL));
        resp_free(&r);
    }
    /* sizes: JSON over 64 KiB, image over 2 MiB, video over 8 MiB: 413 with the limit */
    size_t n = 100 << 10;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{'; big[n - 1] = '}'; big[n] = 0;
    http_resp r;
    REQUIRE(http_json(port, "POST", path, big, &r) == 0);
    CHECK(is_json_error(&r, 413, "65536"));
    resp_free(&r);
    free(big);
    size_t vn = (size_t)9 << 20;
    uint8_t *vb = calloc(1, vn);
    REQUIRE(http(port, "POST", "/api/images?name=x.jpg", "Bearer " TOKEN, "image/jpeg", vb, (size_t)3 << 20, &r) == 0);
    CHECK(is_json_error(&r, 413, "2097152"));
    resp_free(&r);
    REQUIRE(http(port, "POST", "/api/videos/upload?name=x.mp4", "Bearer " TOKEN, "video/mp4", vb, vn, &r) == 0);
    CHECK(is_json_error(&r, 413, "8388608"));
    resp_free(&r);
    free(vb);
    s2_server_stop(sv);
}

/* Names of the entries of a folder, sorted, joined by spaces. */
static void list_dir(const char *dir, char *out, size_t cap) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | tr '\\n' ' '", dir);
    out[0] = 0;
    s2t_run(cmd, out, cap);
}

/* Writes a small MP4 (lossless-enough mpeg4) of `n` frames made from the bedroom
 * sequence; returns false when FFmpeg is not built in. */
static bool make_clip(const char *path, int n) {
    s2_vwriter *wr = NULL;
    char f[64];
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        snprintf(f, sizeof f, "videos/bedroom/%05d.jpg", i);
        s2_image im = {0};
        s2_image_opts o;
        s2_image_opts_default(&o);
        ok = s2_image_load(s2t_dat(f), &o, &im) == SAM2C_OK;
        if (ok && !wr) ok = s2_vwriter_open(path, "mpeg4", NULL, im.w, im.h, 10, &wr) == SAM2C_OK;
        if (ok) ok = s2_vwriter_add(wr, im.px) == SAM2C_OK;
        s2_image_free(&im);
    }
    if (ok) ok = s2_vwriter_finish(wr) == SAM2C_OK;
    if (!ok) fprintf(stderr, "  clip: %s\n", sam2c_last_error());
    s2_vwriter_free(wr);
    return ok;
}

/* Polls a job until it ends; its JSON body (or NULL on timeout). */
static char *wait_job(int port, int64_t job) {
    char path[64];
    snprintf(path, sizeof path, "/api/jobs/%lld", (long long)job);
    for (int i = 0; i < 1200; i++) {
        http_resp r;
        if (http(port, "GET", path, "Bearer " TOKEN, NULL, NULL, 0, &r) < 0) return NULL;
        if (strstr(r.body, "\"done\"") || strstr(r.body, "\"failed\"")) return r.body;
        resp_free(&r);
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

TEST(server_video_upload_and_confinement) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    if (!s2t_data()) { s2t_skip("sample data missing"); return; }
    if (!s2_vdec_available()) { s2t_skip("built without FFmpeg"); return; }
    char proj[1024], clip[1100], listing[4096];
    s2_server *sv = start("video", proj, sizeof proj);
    REQUIRE(sv);
    int port = s2_server_port(sv);
    snprintf(clip, sizeof clip, "%s/../clip.mp4", proj);
    REQUIRE(make_clip(clip, 5));
    uint8_t *d = NULL;
    size_t n = 0;
    REQUIRE(read_file(clip, &d, &n));
    /* refused at once: not a video, empty, bad stride */
    http_resp r;
    REQUIRE(http(port, "POST", "/api/videos/upload?name=notes.mp4", "Bearer " TOKEN, "video/mp4", "hello world, no video", 21, &r) == 0);
    CHECK(is_json_error(&r, 415, "notes.mp4"));
    CHECK(r.body && !strstr(r.body, proj)); /* the server's paths are not shown */
    resp_free(&r);
    REQUIRE(http(port, "POST", "/api/videos/upload", "Bearer " TOKEN, "video/mp4", "", 0, &r) == 0);
    CHECK(is_json_error(&r, 400, "empty"));
    resp_free(&r);
    REQUIRE(http(port, "POST", "/api/videos/upload?stride=0", "Bearer " TOKEN, "video/mp4", d, n, &r) == 0);
    CHECK(is_json_error(&r, 400, "stride"));
    resp_free(&r);
    /* a hostile name: only its last component is kept, nothing is written outside */
    REQUIRE(http(port, "POST", "/api/videos/upload?name=..%2F..%2F..%2Fescape.mp4&stride=2", "Bearer " TOKEN,
                 "video/mp4", d, n, &r) == 0);
    CHECK_EQ_INT(r.status, 202);
    CHECK(strstr(r.body, "\"video_import\""));
    int64_t job = body_int(&r, "id");
    resp_free(&r);
    char *done = wait_job(port, job);
    REQUIRE(done);
    s2_json *j = NULL;
    REQUIRE(s2_json_parse(done, strlen(done), "job", NULL, &j) == SAM2C_OK);
    CHECK(!strcmp(s2_json_str(j, "state"), "done"));
    int64_t vid = -1;
    CHECK(s2_json_int(j, "video_id", &vid) && vid > 0);
    s2_json_free(j);
    free(done);
    char path[128];
    snprintf(path, sizeof path, "/api/videos/%lld", (long long)vid);
    REQUIRE(http(port, "GET", path, "Bearer " TOKEN, NULL, NULL, 0, &r) == 0);
    REQUIRE(s2_json_parse(r.body, r.len, "video", NULL, &j) == SAM2C_OK);
    CHECK(!strcmp(s2_json_str(j, "name"), "escape"));
    int64_t nf = -1, w = -1, h = -1;
    s2_json_int(j, "n_frames", &nf);
    s2_json_int(j, "width", &w);
    s2_json_int(j, "height", &h);
    CHECK_EQ_INT(nf, 3); /* frames 0, 2, 4 of 5 */
    /* each stored frame is the decoder's frame, pixel for pixel (PNG is lossless) */
    s2_vreader *vr = NULL;
    REQUIRE(s2_vreader_open(clip, &vr) == SAM2C_OK);
    const uint8_t *rgb;
    for (int f = 0; f < 5; f++) {
        REQUIRE(s2_vreader_next(vr, &rgb, NULL) == 1);
        if (f % 2) continue;
        int64_t img = (int64_t)s2_json_at(s2_json_get(j, "frames"), f / 2)->num;
        char ip[64];
        snprintf(ip, sizeof ip, "/api/images/%lld", (long long)img);
        http_resp ir;
        REQUIRE(http(port, "GET", ip, "Bearer " TOKEN, NULL, NULL, 0, &ir) == 0);
        CHECK(!strcmp(ir.ctype, "image/png"));
        s2_image im = {0};
        s2_image_opts o;
        s2_image_opts_default(&o);
        REQUIRE(s2_image_decode((const uint8_t *)ir.body, ir.len, "frame.png", &o, &im) == SAM2C_OK);
        CHECK(im.w == w && im.h == h);
        CHECK(memcmp(im.px, rgb, (size_t)w * h * 3) == 0);
        s2_image_free(&im);
        resp_free(&ir);
    }
    s2_vreader_free(vr);
    s2_json_free(j);
    resp_free(&r);
    /* the video is usable: a click on frame 1 gives a mask */
    snprintf(path, sizeof path, "/api/videos/%lld/prompt", (long long)vid);
    REQUIRE(http_json(port, "POST", path, "{\"frame\": 1, \"obj_id\": 1, \"points\": [[400, 300]], \"labels\": [1]}", &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.body, "\"counts\""));
    resp_free(&r);
    /* an image with a hostile name: stored under its last component only */
    int64_t id = upload_image(port, "..%2F..%2Fescape.jpg");
    REQUIRE(id > 0);
    snprintf(path, sizeof path, "/api/images/%lld", (long long)id);
    REQUIRE(http(port, "GET", "/api/images", "Bearer " TOKEN, NULL, NULL, 0, &r) == 0);
    CHECK(strstr(r.body, "\"escape.jpg\"") && !strstr(r.body, ".."));
    resp_free(&r);
    /* the project folder holds the database, its lock and an empty uploads folder;
     * nothing appeared next to it */
    list_dir(proj, listing, sizeof listing);
    CHECK(strstr(listing, "project.db") && strstr(listing, "uploads") && !strstr(listing, "escape"));
    char up[1100];
    snprintf(up, sizeof up, "%s/uploads", proj);
    list_dir(up, listing, sizeof listing);
    CHECK(!strcmp(listing, ""));
    snprintf(up, sizeof up, "%s/..", proj);
    list_dir(up, listing, sizeof listing);
    CHECK(!strcmp(listing, "clip.mp4 project "));
    free(d);
    s2_server_stop(sv);
}

#else

TEST(server_safety_not_built) { s2t_skip("built without libmicrohttpd + SQLite"); }

#endif
