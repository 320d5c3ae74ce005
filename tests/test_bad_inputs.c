/* Robustness: the bad-input catalogue (tests/bad_inputs/cases.tsv) run through the built
 * sam2c command, the regressions found by fuzzing (tests/bad_inputs/fuzz/), and the
 * configurable limits (core/limits.h).
 *
 * Each catalogue case must exit with its code, print its message on one line of stderr
 * (stdout for exit 0), show no sanitizer report, and leave no half-written output. The hostile files
 * that need the 10 MB fixture model (missing / reshaped / extra tensors, corrupt images)
 * are made here in the temporary folder; the small ones are committed. */
#include "harness.h"
#include "core/limits.h"
#include "core/s2.h"
#include "io/image.h"
#include "io/json.h"
#include "io/rle.h"
#include "io/tensorfile.h"
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define CASE_TIMEOUT_S 300 /* a hang fails the case instead of the whole run */

/* "<source>/tests/bad_inputs/<rel>" in a rotating buffer. */
static const char *bad_path(const char *rel) {
    static char bufs[4][4096];
    static int k;
    char *b = bufs[k++ & 3];
    snprintf(b, 4096, "%s/tests/bad_inputs/%s", SAM2C_SOURCE_DIR, rel);
    return b;
}

/* "<tmp>/<rel>" in a rotating buffer. */
static const char *tmp_path(const char *rel) {
    static char bufs[4][4096];
    static int k;
    char *b = bufs[k++ & 3];
    snprintf(b, 4096, "%s/%s", s2t_tmpdir(), rel);
    return b;
}

/* ======================= inputs made from the fixtures ======================= */

/* Writes the first n bytes of src (all when n exceeds it) to dst. */
static int write_prefix(const char *src, const char *dst, size_t n) {
    uint8_t *buf;
    size_t len;
    S2_CHECK(s2_read_file(src, &buf, &len));
    int rc = s2_write_file_atomic(dst, buf, n < len ? n : len);
    free(buf);
    return rc;
}

/* The micro model rewritten with one change: `what` = missing, wrong_shape, unexpected
 * or int_weight (sam_mask_decoder.iou_token.weight [1,64] is the victim). */
static int derived_model(const s2_tensorfile *f, const char *what, const char *dst) {
    s2_st_item *it = calloc((size_t)f->n_entries + 1, sizeof *it);
    if (!it) return SAM2C_ERR_NOMEM;
    static const float extra[2] = {1, 2};
    int n = 0;
    for (int i = 0; i < f->n_entries; i++) {
        const s2_tf_entry *e = &f->entries[i];
        bool victim = strcmp(e->name, "sam_mask_decoder.iou_token.weight") == 0;
        if (victim && !strcmp(what, "missing")) continue;
        it[n].name = e->name;
        it[n].t = e->t;
        if (victim && !strcmp(what, "wrong_shape")) {
            it[n].t.shape[0] = e->t.shape[1];
            it[n].t.shape[1] = e->t.shape[0];
        }
        if (victim && !strcmp(what, "int_weight")) it[n].t.dtype = S2_I32;
        n++;
    }
    if (!strcmp(what, "unexpected"))
        it[n++] = (s2_st_item){"extra.weight", {S2_F32, 1, {2}, (void *)extra}};
    int rc = s2_safetensors_write(dst, it, n, NULL, 0);
    free(it);
    return rc;
}

/* {TMP}/ckpt/: config.json of the micro model beside four broken copies of it;
 * {TMP}/badcfg/: the model beside a corrupt config.json. */
static int make_models(void) {
    mkdir(tmp_path("ckpt"), 0755);
    mkdir(tmp_path("badcfg"), 0755);
    S2_CHECK(write_prefix(s2t_fx("micro/config.json"), tmp_path("ckpt/config.json"), SIZE_MAX));
    s2_tensorfile *f = NULL;
    S2_CHECK(s2_tensorfile_open(s2t_fx("micro/model.safetensors"), &f));
    static const char *what[] = {"missing", "wrong_shape", "unexpected", "int_weight"};
    static const char *file[] = {"ckpt/missing_tensor.safetensors", "ckpt/wrong_shape.safetensors",
                                 "ckpt/unexpected_tensor.safetensors", "ckpt/int_weight.safetensors"};
    int rc = SAM2C_OK;
    for (int i = 0; i < 4 && rc == SAM2C_OK; i++) rc = derived_model(f, what[i], tmp_path(file[i]));
    s2_tensorfile_free(f);
    if (rc == SAM2C_OK && symlink(s2t_fx("micro/model.safetensors"), tmp_path("badcfg/model.safetensors")) != 0)
        rc = s2_err(SAM2C_ERR_IO, "symlink failed");
    if (rc == SAM2C_OK) rc = s2_write_file_atomic(tmp_path("badcfg/config.json"), "{ not json }\n", 13);
    return rc;
}

/* A PNG whose IHDR says width 0 (with a correct CRC, so libpng reads the header). */
static int write_zero_width_png(const char *path) {
    uint8_t b[8 + 25 + 12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                              0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 0, 0, 0, 0, 10, 8, 0, 0, 0, 0};
    uLong c = crc32(0, b + 12, 17);
    for (int i = 0; i < 4; i++) b[29 + i] = (uint8_t)(c >> (24 - 8 * i));
    memcpy(b + 33, "\0\0\0\0IEND\xae\x42\x60\x82", 12);
    return s2_write_file_atomic(path, b, sizeof b);
}

/* Truncated / corrupt copies of the fixture JPEG and of a PNG written here. */
static int make_images(void) {
    const char *jpg = s2t_fx("micro/image/truck/truck_450x300.jpg");
    uint8_t *buf;
    size_t len;
    S2_CHECK(s2_read_file(jpg, &buf, &len));
    int rc = s2_write_file_atomic(tmp_path("truncated.jpg"), buf, len / 2);
    for (size_t i = 20; i < 600 && i < len; i++) buf[i] = (uint8_t)(i * 7); /* tables and frame header */
    if (rc == SAM2C_OK) rc = s2_write_file_atomic(tmp_path("corrupt.jpg"), buf, len);
    free(buf);
    uint8_t px[48 * 64];
    for (int i = 0; i < 48 * 64; i++) px[i] = (uint8_t)(i * 31 + i / 64);
    uint8_t *png = NULL;
    size_t plen = 0;
    if (rc == SAM2C_OK) rc = s2_png_encode(px, 64, 48, 1, &png, &plen);
    if (rc == SAM2C_OK) rc = s2_write_file_atomic(tmp_path("truncated.png"), png, plen / 2);
    free(png);
    if (rc == SAM2C_OK) rc = write_zero_width_png(tmp_path("zero_width.png"));
    return rc;
}

/* The micro config.json with one number changed (path: dotted objects; item >= 0 picks
 * an array element), written compactly to {TMP}/<dst>. */
static int config_variant(const char *dst, const char *path, const char *key, int item, double value) {
    s2_json *root = NULL;
    S2_CHECK(s2_json_parse_file(s2t_fx("micro/config.json"), NULL, &root));
    s2_json *v = (s2_json *)s2_json_get(s2_json_path(root, path), key);
    if (v && item >= 0) v = v->type == S2_JARR && item < v->n ? &v->items[item] : NULL;
    int rc = v && v->type == S2_JNUM ? SAM2C_OK : s2_err(SAM2C_ERR_MISSING, "%s.%s not in config.json", path, key);
    s2_jw w;
    s2_jw_init(&w);
    if (rc == SAM2C_OK) {
        v->num = value;
        s2_jw_value(&w, root);
        rc = w.failed ? SAM2C_ERR_NOMEM : s2_write_file_atomic(tmp_path(dst), w.buf, w.len);
    }
    s2_jw_free(&w);
    s2_json_free(root);
    return rc;
}

/* Configurations with absurd sizes: each made the loader overflow or hang before. */
static int make_configs(void) {
    const char *trunk = "model_cfg_yaml_equivalent.image_encoder.trunk";
    S2_CHECK(config_variant("cfg_embed_1e300.json", trunk, "embed_dim", -1, 1e300));
    S2_CHECK(config_variant("cfg_embed_huge.json", trunk, "embed_dim", -1, 1 << 30));
    S2_CHECK(config_variant("cfg_stages_huge.json", trunk, "stages", 0, 2147483647.0));
    S2_CHECK(config_variant("cfg_ma_layers_huge.json", "model_cfg_yaml_equivalent.memory_attention",
                            "num_layers", -1, 1 << 30));
    return config_variant("cfg_fuser_layers_huge.json", "model_cfg_yaml_equivalent.memory_encoder.fuser",
                          "num_layers", -1, 1 << 30);
}

/* Empty files, the fixture checkpoint cut at 1 MB, and a mask input of the wrong size (32 x 32 low-res logits). */
static int make_misc(void) {
    S2_CHECK(s2_write_file_atomic(tmp_path("empty.pt"), "", 0));
    S2_CHECK(s2_write_file_atomic(tmp_path("empty.jpg"), "", 0));
    S2_CHECK(write_prefix(s2t_fx("micro/model.pt"), tmp_path("truncated.pt"), 1000000));
    static float m[32 * 32];
    s2_st_item it = {"output.low_res_masks", {S2_F32, 4, {1, 1, 32, 32}, m}};
    return s2_safetensors_write(tmp_path("mask_32.safetensors"), &it, 1, NULL, 0);
}

/* ======================= the catalogue ======================= */

typedef struct bad_case {
    char id[64];
    char cmd[2048];
    int exit_code;
    char msg[512];
} bad_case;

/* Replaces every {KEY} of src by its value (unknown keys are kept) into dst. */
static bool expand(const char *src, const char *out_dir, char *dst, size_t cap) {
    const char *keys[] = {"{FX}", "{DATA}", "{TMP}", "{BAD}", "{OUT}"};
    const char *vals[] = {s2t_fixtures(), s2t_data(), s2t_tmpdir(), bad_path(""), out_dir};
    size_t n = 0;
    while (*src) {
        bool hit = false;
        for (int k = 0; k < 5 && !hit; k++) {
            size_t kl = strlen(keys[k]);
            if (strncmp(src, keys[k], kl) != 0) continue;
            if (!vals[k]) return false;
            size_t vl = strlen(vals[k]);
            if (vl && vals[k][vl - 1] == '/') vl--; /* {BAD}/x, not {BAD}//x */
            if (n + vl >= cap) return false;
            memcpy(dst + n, vals[k], vl);
            n += vl;
            src += kl;
            hit = true;
        }
        if (hit) continue;
        if (n + 1 >= cap) return false;
        dst[n++] = *src++;
    }
    dst[n] = 0;
    return true;
}

/* Parses one tab-separated line; false for comments, blanks and malformed lines. */
static bool parse_case(char *line, bad_case *c) {
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0] || line[0] == '#') return false;
    char *f[4];
    int n = 0;
    for (char *p = line; n < 4; n++) {
        f[n] = p;
        char *tab = strchr(p, '\t');
        if (!tab) { n++; break; }
        *tab = 0;
        p = tab + 1;
    }
    if (n != 4) {
        s2t_fail(__FILE__, __LINE__, "cases.tsv: malformed line starting '%s'", f[0]);
        return false;
    }
    snprintf(c->id, sizeof c->id, "%s", f[0]);
    snprintf(c->cmd, sizeof c->cmd, "%s", f[1]);
    c->exit_code = atoi(f[2]);
    snprintf(c->msg, sizeof c->msg, "%s", f[3]);
    return true;
}

/* The command with its first non-assignment word `sam2c` replaced by the built binary,
 * run under `timeout`, stdout and stderr into files. */
static bool shell_command(const char *cmd, const char *out_dir, const char *so, const char *se,
                          char *dst, size_t cap) {
    char exp[4096];
    if (!expand(cmd, out_dir, exp, sizeof exp)) return false;
    char env[1024] = "";
    const char *p = exp;
    while (true) { /* leading NAME=value words stay in front */
        const char *sp = strchr(p, ' '), *eq = strchr(p, '=');
        if (!sp || !eq || eq > sp) break;
        strncat(env, p, (size_t)(sp - p) + 1);
        p = sp + 1;
    }
    if (strncmp(p, "sam2c ", 6) != 0 && strcmp(p, "sam2c") != 0) return false;
    int n = snprintf(dst, cap, "(cd '%s' && %s timeout %d '%s'%s >'%s' 2>'%s')", s2t_tmpdir(), env,
                     CASE_TIMEOUT_S, s2t_bin(), p + 5, so, se);
    return n > 0 && (size_t)n < cap;
}

/* Appends problems found under dir (recursively): temporary files always; masks.json
 * and safetensors outputs when the command failed. Returns the number found. */
static int scan_outputs(const char *dir, bool failed, char *why, size_t cap) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int bad = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) { bad += scan_outputs(p, failed, why, cap); continue; }
        bool tmp = strstr(e->d_name, ".tmp.") || strstr(e->d_name, ".safetensors.");
        bool half = failed && (!strcmp(e->d_name, "masks.json") || strstr(e->d_name, ".safetensors"));
        if (tmp || half) {
            bad++;
            size_t u = strlen(why);
            snprintf(why + u, cap - u, " %s", e->d_name);
        }
    }
    closedir(d);
    return bad;
}

/* Reads a small text file (NUL-terminated, truncated to cap-1). */
static void slurp(const char *path, char *buf, size_t cap) {
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
}

/* Runs one case and checks every rule; returns true when it passed. */
static bool run_case(const bad_case *c) {
    char out_dir[4096], so[4200], se[4200], cmd[8192], rm[4300];
    snprintf(out_dir, sizeof out_dir, "%s/out/%s", s2t_tmpdir(), c->id);
    snprintf(so, sizeof so, "%s/out/%s.stdout", s2t_tmpdir(), c->id);
    snprintf(se, sizeof se, "%s/out/%s.stderr", s2t_tmpdir(), c->id);
    snprintf(rm, sizeof rm, "rm -rf '%s'", out_dir);
    s2t_run(rm, NULL, 0);
    if (!shell_command(c->cmd, out_dir, so, se, cmd, sizeof cmd)) {
        s2t_fail(__FILE__, __LINE__, "%s: cannot build the command from '%s'", c->id, c->cmd);
        return false;
    }
    int rc = s2t_run(cmd, NULL, 0);
    static char err[1 << 16], out[1 << 16];
    slurp(se, err, sizeof err);
    slurp(so, out, sizeof out);
    const char *text = c->exit_code == 0 ? out : err;
    char why[2048] = "";
    int bad = scan_outputs(out_dir, rc != 0, why, sizeof why);
    bool ok = true;
    if (rc != c->exit_code) {
        s2t_fail(__FILE__, __LINE__, "%s: exit %d, expected %d%s", c->id, rc, c->exit_code,
                 rc == 124 ? " (timed out)" : rc >= 128 ? " (killed by a signal)" : "");
        ok = false;
    }
    if (!strstr(text, c->msg)) { /* the expected text holds no newline: one line */
        s2t_fail(__FILE__, __LINE__, "%s: no line of %s holds '%s'", c->id,
                 c->exit_code == 0 ? "stdout" : "stderr", c->msg);
        ok = false;
    }
    if (strstr(err, "Sanitizer") || strstr(err, "runtime error:")) {
        s2t_fail(__FILE__, __LINE__, "%s: sanitizer report on stderr", c->id);
        ok = false;
    }
    if (bad) {
        s2t_fail(__FILE__, __LINE__, "%s: left behind in the output folder:%s", c->id, why);
        ok = false;
    }
    if (!ok) fprintf(stderr, "    command: %s\n    stderr: %.600s\n", cmd, err);
    return ok;
}

TEST(bad_input_catalogue) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    if (access(s2t_bin(), X_OK) != 0) { s2t_skip("sam2c binary not built"); return; }
    REQUIRE(make_models() == 0);
    REQUIRE(make_images() == 0);
    REQUIRE(make_misc() == 0);
    REQUIRE(make_configs() == 0);
    mkdir(tmp_path("out"), 0755);
    FILE *f = fopen(bad_path("cases.tsv"), "r");
    REQUIRE(f != NULL);
    char line[4096];
    int n = 0, failed = 0, skipped = 0;
    bad_case c;
    while (fgets(line, sizeof line, f)) {
        if (!parse_case(line, &c)) continue;
        if (strstr(c.cmd, "{DATA}") && !s2t_data()) { skipped++; continue; }
        n++;
        failed += !run_case(&c);
    }
    fclose(f);
    char rm[8400]; /* the derived models are 10 MB each; outputs are kept for a failure */
    snprintf(rm, sizeof rm, "rm -rf '%s' '%s'", tmp_path("ckpt"), tmp_path("badcfg"));
    s2t_run(rm, NULL, 0);
    if (!failed) {
        snprintf(rm, sizeof rm, "rm -rf '%s'", tmp_path("out"));
        s2t_run(rm, NULL, 0);
    }
    fprintf(stderr, "  catalogue: %d cases, %d failed, %d skipped (no sample data)\n", n, failed, skipped);
    CHECK(n + skipped >= 40);
}

/* ======================= hostile HTTP requests ======================= */

/* Splits a tab-separated line into at most max fields; returns the count (0: comment). */
static int split_tabs(char *line, char **f, int max) {
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0] || line[0] == '#') return 0;
    int n = 0;
    for (char *p = line; n < max;) {
        f[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab) break;
        *tab = 0;
        p = tab + 1;
    }
    return n;
}

/* Starts `sam2c serve --port 0` in the background; returns its pid and port (0 on failure). */
static int start_server(int *port) {
    char cmd[8192], out[64];
    snprintf(cmd, sizeof cmd,
             "(cd '%s' && exec '%s' serve -m '%s' --port 0 --project '%s' --max-upload-mb 1 --quiet "
             ">'%s' 2>'%s' </dev/null) >/dev/null 2>&1 & echo $!",
             s2t_tmpdir(), s2t_bin(), s2t_fx("micro/model.pt"), tmp_path("proj"), tmp_path("srv.out"),
             tmp_path("srv.err"));
    if (s2t_run(cmd, out, sizeof out) != 0) return 0;
    int pid = atoi(out);
    *port = 0;
    for (int i = 0; i < 600 && pid > 0 && !*port; i++) { /* up to 60 s for the model load */
        char text[4096];
        slurp(tmp_path("srv.out"), text, sizeof text);
        const char *at = strstr(text, "127.0.0.1:");
        if (at) *port = atoi(at + 10);
        else if (kill(pid, 0) != 0) break; /* exited: no server */
        else usleep(100000);
    }
    return pid;
}

/* One request with curl; the HTTP status, or -1. The response body goes to {TMP}/http_resp.txt. */
static int http_request(int port, const char *method, const char *path, const char *ctype,
                        const char *body_file) {
    char cmd[8192], out[64], ct[256] = "", data[4200] = "";
    if (strcmp(ctype, "-")) snprintf(ct, sizeof ct, "-H 'Content-Type: %s'", ctype);
    if (body_file) snprintf(data, sizeof data, "--data-binary '@%s'", body_file);
    snprintf(cmd, sizeof cmd,
             "curl -s --noproxy '*' --path-as-is --max-time 120 -o '%s' -w '%%{http_code}' -X %s %s %s "
             "'http://127.0.0.1:%d%s'", tmp_path("http_resp.txt"), method, ct, data, port, path);
    if (s2t_run(cmd, out, sizeof out) != 0) return -1;
    return atoi(out);
}

/* The body of a case as a file: NULL for none, an expanded @path, or text / zeros
 * written to {TMP}/http_body.bin. */
static const char *http_body(const char *spec, char *buf, size_t cap) {
    if (!strcmp(spec, "-")) return NULL;
    if (spec[0] == '@') return expand(spec + 1, "", buf, cap) ? buf : NULL;
    snprintf(buf, cap, "%s", tmp_path("http_body.bin"));
    long zeros = 0;
    if (sscanf(spec, "{ZEROS:%ld}", &zeros) == 1 && zeros > 0) {
        uint8_t *z = calloc((size_t)zeros, 1);
        if (!z || s2_write_file_atomic(buf, z, (size_t)zeros) != 0) buf[0] = 0;
        free(z);
    } else if (s2_write_file_atomic(buf, spec, strlen(spec)) != 0) {
        buf[0] = 0;
    }
    return buf;
}

/* Request bodies too big or too odd for a table cell. */
static int make_http_bodies(void) {
    static char deep[10001];
    memset(deep, '[', 10000);
    S2_CHECK(s2_write_file_atomic(tmp_path("deep.json"), deep, 10000));
    S2_CHECK(s2_write_file_atomic(tmp_path("bad_utf8.json"), "{\"label\": \"\xff\"}", 14));
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "points");
    s2_jw_arr_begin(&w);
    for (int i = 0; i < 5000; i++) { s2_jw_arr_begin(&w); s2_jw_int(&w, 1); s2_jw_int(&w, 1); s2_jw_arr_end(&w); }
    s2_jw_arr_end(&w);
    s2_jw_key(&w, "labels");
    s2_jw_arr_begin(&w);
    for (int i = 0; i < 5000; i++) s2_jw_int(&w, 1);
    s2_jw_arr_end(&w);
    s2_jw_obj_end(&w);
    int rc = w.failed ? SAM2C_ERR_NOMEM : s2_write_file_atomic(tmp_path("many_points.json"), w.buf, w.len);
    s2_jw_free(&w);
    return rc;
}

/* Runs every line of http_cases.tsv against one server; it must answer each with the
 * expected status and text, keep answering, and stop cleanly on SIGTERM. */
TEST(http_hostile_requests) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    if (access(s2t_bin(), X_OK) != 0) { s2t_skip("sam2c binary not built"); return; }
    if (s2t_run("curl --version >/dev/null 2>&1", NULL, 0) != 0) { s2t_skip("curl missing"); return; }
    REQUIRE(make_images() == 0);
    REQUIRE(make_http_bodies() == 0);
    int port = 0, pid = start_server(&port);
    if (pid > 0 && !port) {
        char err[4096];
        slurp(tmp_path("srv.err"), err, sizeof err);
        if (strstr(err, "built without") || strstr(err, "unknown command")) {
            kill(pid, SIGTERM);
            s2t_skip("server not built in");
            return;
        }
    }
    REQUIRE(pid > 0 && port > 0);
    FILE *f = fopen(bad_path("http_cases.tsv"), "r");
    REQUIRE(f != NULL);
    char line[4096], *c[7], body[4200];
    int n = 0, failed = 0;
    while (fgets(line, sizeof line, f)) {
        int k = split_tabs(line, c, 7);
        if (k == 0) continue;
        if (k < 6) { s2t_fail(__FILE__, __LINE__, "http_cases.tsv: malformed line '%s'", c[0]); continue; }
        n++;
        int st = http_request(port, c[1], c[2], c[3], http_body(c[4], body, sizeof body));
        char resp[8192];
        slurp(tmp_path("http_resp.txt"), resp, sizeof resp);
        bool ok = st == atoi(c[5]) && (k < 7 || strstr(resp, c[6]));
        if (!ok)
            s2t_fail(__FILE__, __LINE__, "%s: %s %s gave %d '%.300s', expected %s '%s'", c[0], c[1], c[2], st,
                     resp, c[5], k < 7 ? "" : c[6]);
        int alive = http_request(port, "GET", "/api/images", "-", NULL);
        if (alive != 200) s2t_fail(__FILE__, __LINE__, "%s: server no longer answers (%d)", c[0], alive);
        failed += !ok || alive != 200;
        if (alive != 200) break;
    }
    fclose(f);
    kill(pid, SIGTERM);
    for (int i = 0; i < 300 && kill(pid, 0) == 0; i++) usleep(100000);
    CHECK_MSG(kill(pid, 0) != 0, "server still running 30 s after SIGTERM");
    if (kill(pid, 0) == 0) kill(pid, SIGKILL);
    char err[1 << 16];
    slurp(tmp_path("srv.err"), err, sizeof err);
    CHECK_MSG(!strstr(err, "Sanitizer") && !strstr(err, "runtime error:"), "sanitizer report: %.600s", err);
    if (!failed) {
        char rm[4200];
        snprintf(rm, sizeof rm, "rm -rf '%s'", tmp_path("proj"));
        s2t_run(rm, NULL, 0);
    }
    fprintf(stderr, "  http: %d requests, %d failed\n", n, failed);
    CHECK(n >= 10);
}

/* ======================= regressions found by fuzzing ======================= */

/* fuzz_rle found (int)NaN in the polygon rasteriser on a repeated vertex (an edge of
 * length 0 divides 0 by 0). pycocotools never uses that point's y, so the mask must be
 * the one of the polygon without the repetition. */
TEST(fuzz_rle_repeated_vertex) {
    uint8_t *buf;
    size_t len;
    REQUIRE(s2_read_file(bad_path("fuzz/rle_poly_repeated_vertex.bin"), &buf, &len) == 0);
    REQUIRE(len > 5 && buf[0] == 1); /* mode 1: int16 pairs / 4 */
    int h = (buf[1] | buf[2] << 8) & 1023, w = (buf[3] | buf[4] << 8) & 1023;
    int k = (int)((len - 5) / 2);
    double *xy = malloc(sizeof(double) * (size_t)k);
    REQUIRE(xy != NULL);
    for (int i = 0; i < k; i++) xy[i] = (int16_t)(buf[5 + 2 * i] | buf[6 + 2 * i] << 8) / 4.0;
    s2_rle r;
    CHECK(s2_rle_from_polygon(xy, k / 2, h, w, &r) == 0);
    s2_rle_free(&r);
    free(xy);
    free(buf);
    /* a 4 x 4 square in a 10 x 10 image, with and without repeated corners */
    double sq[] = {2, 2, 6, 2, 6, 6, 2, 6}, rep[] = {2, 2, 2, 2, 6, 2, 6, 6, 6, 6, 2, 6, 2, 6};
    s2_rle a, b;
    REQUIRE(s2_rle_from_polygon(sq, 4, 10, 10, &a) == 0);
    REQUIRE(s2_rle_from_polygon(rep, 7, 10, 10, &b) == 0);
    CHECK_EQ_INT(s2_rle_area(&a), 16); /* pycocotools frPyObjects([[2,2,6,2,6,6,2,6]], 10, 10) */
    CHECK_EQ_INT(a.n, b.n);
    for (int i = 0; i < a.n && i < b.n; i++) CHECK_EQ_INT(a.counts[i], b.counts[i]);
    s2_rle_free(&a);
    s2_rle_free(&b);
}

/* A storage offset near 2^63 with a large stride wrapped the view's extent to 0, so the
 * checkpoint was accepted with a tensor pointing far outside the file (found while
 * reviewing for the fuzzer; UBSan flags the pointer overflow). It must be refused. */
TEST(fuzz_torchzip_offset_wrap) {
    s2_tensorfile *f = NULL;
    CHECK(s2_tensorfile_open(bad_path("fuzz/torchzip_offset_wrap.pt"), &f) == SAM2C_ERR_FORMAT);
    CHECK(f == NULL);
    CHECK(strstr(sam2c_last_error(), "torchzip_offset_wrap.pt: tensor 'w': size/stride overflow") != NULL);
}

/* A 1-element storage viewed with stride 0 as 2^28 elements made a 700-byte file
 * allocate and fill 1 GiB. Strided copies are now bounded by twice the storage bytes. */
TEST(fuzz_torchzip_expanded_view) {
    s2_tensorfile *f = NULL;
    CHECK(s2_tensorfile_open(bad_path("fuzz/torchzip_expanded_view.pt"), &f) == SAM2C_ERR_FORMAT);
    CHECK(f == NULL);
    CHECK(strstr(sam2c_last_error(), "tensor 'w': strided copies would exceed twice the checkpoint's storage bytes") != NULL);
}

/* fuzz_safetensors: a header with two "__metadata__" objects leaked the first one's
 * text. Duplicates are refused, as duplicate tensor names are. */
TEST(fuzz_safetensors_duplicate_metadata) {
    s2_tensorfile *f = NULL;
    CHECK(s2_tensorfile_open(bad_path("fuzz/safetensors_duplicate_metadata.safetensors"), &f) ==
          SAM2C_ERR_FORMAT);
    CHECK(f == NULL);
    CHECK(strstr(sam2c_last_error(), "duplicate \"__metadata__\" in the header") != NULL);
}

/* ======================= limits ======================= */

TEST(limits_defaults_and_env) {
    s2_limits l;
    s2_limits_default(&l);
    CHECK_EQ_INT(l.max_pixels, 50000000);
    CHECK_EQ_INT(l.max_json_depth, 64);
    CHECK_EQ_INT(l.max_json_bytes, 256 << 20);
    CHECK_EQ_INT(l.max_http_body, 64 << 20);
    setenv("SAM2C_MAX_PIXELS", "1234", 1);
    setenv("SAM2C_MAX_FRAMES", "12x", 1);
    CHECK(s2_limits_from_env(&l) == SAM2C_ERR_ARG);
    CHECK(strcmp(sam2c_last_error(), "SAM2C_MAX_FRAMES='12x': expected a positive integer") == 0);
    CHECK_EQ_INT(l.max_pixels, 50000000); /* all or nothing */
    s2_limits_effective(&l);              /* the malformed one is skipped, the good one applied */
    CHECK_EQ_INT(l.max_pixels, 1234);
    CHECK_EQ_INT(l.max_frames, 100000);
    unsetenv("SAM2C_MAX_FRAMES");
    s2_limits_default(&l);
    CHECK(s2_limits_from_env(&l) == 0);
    CHECK_EQ_INT(l.max_pixels, 1234);
    setenv("SAM2C_MAX_PIXELS", "-5", 1);
    CHECK(s2_limits_from_env(&l) == SAM2C_ERR_ARG);
    unsetenv("SAM2C_MAX_PIXELS");
}

TEST(limits_check_message) {
    s2_limits l;
    s2_limits_default(&l);
    CHECK(s2_limit_check(&l, S2_LIMIT_max_pixels, 50000000, "a.jpg") == 0);
    CHECK(s2_limit_check(&l, S2_LIMIT_max_pixels, 80000000, "cars.jpg") == SAM2C_ERR_LIMIT);
    CHECK(strcmp(sam2c_last_error(),
                 "cars.jpg: 80000000 pixels exceeds the limit of 50000000 (set SAM2C_MAX_PIXELS to raise it)") == 0);
    l.max_points = 3;
    CHECK(s2_limit_check(&l, S2_LIMIT_max_points, 4, NULL) == SAM2C_ERR_LIMIT);
    CHECK(strcmp(sam2c_last_error(), "4 prompt points exceeds the limit of 3 (set SAM2C_MAX_POINTS to raise it)") == 0);
    CHECK(strcmp(s2_limit_env_name(S2_LIMIT_max_http_body), "SAM2C_MAX_HTTP_BODY") == 0);
    CHECK(strcmp(s2_limit_unit(S2_LIMIT_max_frames), "video frames") == 0);
    CHECK(s2_limit_check(&l, S2_LIMIT_COUNT, 1, NULL) == SAM2C_ERR_ARG);
}

/* The JSON parser takes its default depth and size from the environment. */
TEST(limits_json_from_env) {
    s2_json *j = NULL;
    setenv("SAM2C_MAX_JSON_DEPTH", "2", 1);
    CHECK(s2_json_parse("[[1]]", 5, "a.json", NULL, &j) == 0);
    s2_json_free(j);
    j = NULL;
    CHECK(s2_json_parse("[[[1]]]", 7, "a.json", NULL, &j) == SAM2C_ERR_LIMIT && j == NULL);
    CHECK(strcmp(sam2c_last_error(),
                 "a.json:1:3: nesting deeper than 2 levels (set SAM2C_MAX_JSON_DEPTH to raise it)") == 0);
    unsetenv("SAM2C_MAX_JSON_DEPTH");
    setenv("SAM2C_MAX_JSON_BYTES", "4", 1);
    CHECK(s2_json_parse("[1,2]", 5, "b.json", NULL, &j) == SAM2C_ERR_LIMIT && j == NULL);
    CHECK(strstr(sam2c_last_error(), "b.json: 5 bytes exceeds the JSON size limit of 4") != NULL);
    const char *p = tmp_path("big.json");
    REQUIRE(s2_write_file_atomic(p, "[1,2,3]", 7) == 0);
    CHECK(s2_json_parse_file(p, NULL, &j) == SAM2C_ERR_LIMIT && j == NULL); /* before reading */
    CHECK(strstr(sam2c_last_error(), "7 bytes exceeds the JSON size limit of 4 (set SAM2C_MAX_JSON_BYTES") != NULL);
    unsetenv("SAM2C_MAX_JSON_BYTES");
    CHECK(s2_json_parse_file(p, NULL, &j) == 0 && j && j->n == 3);
    s2_json_free(j);
}
