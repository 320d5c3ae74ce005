/* `sam2c serve`: the operator panel and JSON API over HTTP until SIGINT / SIGTERM. */
#include "cli/cli.h"
#include "server/server.h"
#include "core/limits.h"
#include "core/s2.h"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void serve_usage(FILE *f) {
    fprintf(f, "usage: sam2c serve -m MODEL [--config FILE] [--host 127.0.0.1] [--port 8080]\n"
               "                   [--token TOKEN] [--project DIR] [--threads N] [--max-sessions N]\n"
               "                   [--max-upload-mb N] [--max-video-mb N] [--timeout S] [--quiet]\n"
               "Serves the annotation panel at http://HOST:PORT/ and its JSON API (/api/...).\n"
               "The project (images, accepted masks, labels) is kept in DIR/project.db\n"
               "(default ./sam2c-project). --port 0 picks a free port. --threads sets the compute\n"
               "threads; --max-sessions the encoded images kept in memory (default 4).\n"
               "It binds 127.0.0.1 unless --host is given. On any other address it needs a\n"
               "token (--token TOKEN, or the SAM2C_TOKEN environment variable; 8 to 256 visible\n"
               "characters): every API request must then send 'Authorization: Bearer TOKEN'\n"
               "(the panel asks for it once). A token given on 127.0.0.1 is required there too.\n"
               "Limits: --max-upload-mb (images, default 64), --max-video-mb (video files,\n"
               "default 2048); SAM2C_MAX_PIXELS, SAM2C_MAX_POINTS, SAM2C_MAX_JSON_DEPTH,\n"
               "SAM2C_MAX_JSON_BYTES and SAM2C_MAX_HTTP_BODY override the server's own limits.\n");
}

typedef struct serve_args {
    const char *model, *config;
    s2_server_params p;
    int threads;
    int quiet;
} serve_args;

/* Parses a bounded integer option value. */
static int int_opt(const char *o, const char *v, long lo, long hi, long *out) {
    if (!cli_parse_int(v, out) || *out < lo || *out > hi)
        return cli_fail("serve", "bad %s '%s' (%ld..%ld)", o, v, lo, hi);
    return 0;
}

/* The SAM2C_MAX_* variables (core/limits.h) override the server's defaults. */
static int env_limits(s2_server_params *p) {
    s2_limits l;
    s2_limits_default(&l);
    l.max_pixels = p->max_pixels;
    l.max_points = p->max_points;
    l.max_json_depth = p->max_json_depth;
    l.max_json_bytes = (int64_t)p->max_json_bytes;
    l.max_http_body = (int64_t)p->max_image_bytes;
    if (s2_limits_from_env(&l) < 0) return cli_fail_lib("serve");
    p->max_pixels = l.max_pixels;
    p->max_points = (int)S2_MIN(l.max_points, 1 << 20);
    p->max_json_depth = (int)S2_MIN(l.max_json_depth, 1 << 20);
    p->max_json_bytes = (size_t)l.max_json_bytes;
    p->max_image_bytes = (size_t)l.max_http_body;
    return 0;
}

static int parse_args(int argc, char **argv, serve_args *a) {
    memset(a, 0, sizeof *a);
    s2_server_default_params(&a->p);
    a->p.project_dir = "sam2c-project";
    if (env_limits(&a->p)) return 1; /* before the options, which take precedence */
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n = 0;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) { serve_usage(stdout); exit(0); }
        if (!strcmp(o, "--quiet")) { a->quiet = 1; continue; }
        if (!v) return cli_fail("serve", "option '%s' needs a value (see --help)", o);
        if (!strcmp(o, "-m") || !strcmp(o, "--model")) a->model = v;
        else if (!strcmp(o, "--config")) a->config = v;
        else if (!strcmp(o, "--host")) a->p.host = v;
        else if (!strcmp(o, "--token")) a->p.token = v;
        else if (!strcmp(o, "--project")) a->p.project_dir = v;
        else if (!strcmp(o, "--port")) { if (int_opt(o, v, 0, 65535, &n)) return 1; a->p.port = (int)n; }
        else if (!strcmp(o, "--threads")) { if (int_opt(o, v, 0, 1024, &n)) return 1; a->threads = (int)n; }
        else if (!strcmp(o, "--max-sessions")) { if (int_opt(o, v, 1, 1024, &n)) return 1; a->p.max_sessions = (int)n; }
        else if (!strcmp(o, "--max-upload-mb")) { if (int_opt(o, v, 1, 4096, &n)) return 1; a->p.max_image_bytes = (size_t)n << 20; }
        else if (!strcmp(o, "--max-video-mb")) { if (int_opt(o, v, 1, 65536, &n)) return 1; a->p.max_video_bytes = (size_t)n << 20; }
        else if (!strcmp(o, "--timeout")) { if (int_opt(o, v, 1, 3600, &n)) return 1; a->p.timeout_s = (int)n; }
        else return cli_fail("serve", "unknown option '%s' (see --help)", o);
        i++;
    }
    if (!a->model) return cli_fail("serve", "no model given (-m MODEL)");
    if (!a->p.token && getenv("SAM2C_TOKEN") && *getenv("SAM2C_TOKEN")) a->p.token = getenv("SAM2C_TOKEN");
    return 0;
}

/* One request or notice per line on stderr. */
static void log_line(void *user, const char *line) {
    (void)user;
    fprintf(stderr, "%s\n", line);
}

int cli_serve(int argc, char **argv) {
    serve_args a;
    if (parse_args(argc, argv, &a)) return 1;
    if (a.threads) sam2c_set_num_threads(a.threads);
    if (!a.quiet) a.p.log = log_line;
    sam2c_model *m = NULL;
    if (cli_load_model("serve", a.model, a.config, &m)) return 1;
    /* Block the stop signals in every thread (inherited by the server's), wait for them here. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    s2_server *sv = NULL;
    if (s2_server_start(m, &a.p, &sv) < 0) {
        int rc = cli_fail_lib("serve");
        sam2c_model_free(m);
        return rc;
    }
    bool v6 = strchr(a.p.host, ':') != NULL;
    printf("sam2c serve: listening on http://%s%s%s:%d/ (project %s, model %s)\n", v6 ? "[" : "", a.p.host,
           v6 ? "]" : "", s2_server_port(sv), a.p.project_dir, sam2c_model_name(m));
    fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "sam2c serve: %s received, finishing requests in flight\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    s2_server_stop(sv);
    sam2c_model_free(m);
    return 0;
}
