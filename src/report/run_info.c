/* run.json writer: model, command line, timings, host description. */
#include "report/run_info.h"
#include "core/s2.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

void s2_run_info_init(s2_run_info *ri) {
    memset(ri, 0, sizeof *ri);
    ri->model_load_s = -1;
}

/* Value of a "key : value" line when the key matches (trimmed), else NULL. */
static const char *cpuinfo_value(char *line, const char *key) {
    size_t kl = strlen(key);
    if (strncmp(line, key, kl) != 0) return NULL;
    char *p = line + kl;
    while (*p == ' ' || *p == '\t') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ' || *p == '\t') p++;
    size_t l = strlen(p);
    while (l && (p[l - 1] == '\n' || p[l - 1] == '\r' || p[l - 1] == ' ')) p[--l] = 0;
    return *p ? p : NULL;
}

void s2_run_info_cpu(char *buf, size_t len) {
    static const char *keys[] = {"model name", "Hardware", "Model", "cpu model"};
    if (!buf || !len) return;
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    int best = 4; /* index of the key found so far (lower = preferred) */
    while (fgets(line, sizeof line, f)) {
        for (int k = 0; k < best; k++) {
            const char *v = cpuinfo_value(line, keys[k]);
            if (v) {
                snprintf(buf, len, "%s", v);
                best = k;
                break;
            }
        }
        if (best == 0) break;
    }
    fclose(f);
}

/* "k": number. */
static void kv_num(s2_jw *w, const char *k, double v) {
    s2_jw_key(w, k);
    s2_jw_num(w, v);
}

/* Timings block: totals, counts, means and the per-item lists. */
static void write_timings(const s2_run_info *ri, s2_jw *w) {
    s2_jw_key(w, "timings");
    s2_jw_obj_begin(w);
    kv_num(w, "total_s", ri->total_s);
    if (ri->model_load_s >= 0) kv_num(w, "model_load_s", ri->model_load_s);
    double work = ri->total_s - (ri->model_load_s > 0 ? ri->model_load_s : 0);
    const struct { const char *count, *mean, *list; int n; const double *v; } k[2] = {
        {"images", "per_image_s", "image_s", ri->n_images, ri->image_s},
        {"frames", "per_frame_s", "frame_s", ri->n_frames, ri->frame_s}};
    for (int i = 0; i < 2; i++) {
        if (k[i].n <= 0) continue;
        s2_jw_key(w, k[i].count);
        s2_jw_int(w, k[i].n);
        double sum = 0;
        for (int j = 0; k[i].v && j < k[i].n; j++) sum += k[i].v[j];
        kv_num(w, k[i].mean, (k[i].v ? sum : work) / k[i].n);
        if (!k[i].v) continue;
        s2_jw_key(w, k[i].list);
        s2_jw_arr_begin(w);
        for (int j = 0; j < k[i].n; j++) s2_jw_num(w, k[i].v[j]);
        s2_jw_arr_end(w);
    }
    s2_jw_obj_end(w);
}

/* Host block: CPU model, logical CPUs, threads used, kernel. */
static void write_host(const s2_run_info *ri, s2_jw *w) {
    char cpu[256], os[400];
    s2_run_info_cpu(cpu, sizeof cpu);
    struct utsname u;
    if (uname(&u) == 0) snprintf(os, sizeof os, "%s %s %s", u.sysname, u.release, u.machine);
    else snprintf(os, sizeof os, "unknown");
    s2_jw_key(w, "host");
    s2_jw_obj_begin(w);
    s2_jw_key(w, "cpu");
    s2_jw_str(w, cpu);
    s2_jw_key(w, "logical_cpus");
    s2_jw_int(w, sysconf(_SC_NPROCESSORS_ONLN));
    s2_jw_key(w, "threads");
    s2_jw_int(w, ri->threads > 0 ? ri->threads : sam2c_get_num_threads());
    s2_jw_key(w, "os");
    s2_jw_str(w, os);
    s2_jw_obj_end(w);
}

/* Model name / path block, when either is known. */
static void write_model(const s2_run_info *ri, s2_jw *w) {
    if (!ri->model && !ri->model_path) return;
    s2_jw_key(w, "model");
    s2_jw_obj_begin(w);
    if (ri->model) { s2_jw_key(w, "name"); s2_jw_str(w, ri->model); }
    if (ri->model_path) { s2_jw_key(w, "path"); s2_jw_str(w, ri->model_path); }
    s2_jw_obj_end(w);
}

void s2_run_info_write_json(const s2_run_info *ri, s2_jw *w) {
    s2_jw_obj_begin(w);
    s2_jw_key(w, "sam2c_version");
    s2_jw_str(w, SAM2C_VERSION);
    s2_jw_key(w, "command");
    s2_jw_str(w, ri->command ? ri->command : "");
    write_model(ri, w);
    s2_jw_key(w, "argv");
    s2_jw_arr_begin(w);
    for (int i = 0; i < ri->argc && ri->argv; i++) s2_jw_str(w, ri->argv[i] ? ri->argv[i] : "");
    s2_jw_arr_end(w);
    if (ri->settings_json) { s2_jw_key(w, "settings"); s2_jw_raw(w, ri->settings_json); }
    write_timings(ri, w);
    write_host(ri, w);
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm) && strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
        s2_jw_key(w, "finished_at");
        s2_jw_str(w, ts);
    }
    s2_jw_obj_end(w);
}

int s2_run_info_write(const char *outdir, const s2_run_info *ri) {
    if (!outdir || !ri) return s2_err(SAM2C_ERR_ARG, "run.json: NULL folder or info");
    if (ri->settings_json) {
        s2_json *chk = NULL;
        int rc = s2_json_parse(ri->settings_json, strlen(ri->settings_json), "run settings", NULL, &chk);
        bool obj = rc >= 0 && chk->type == S2_JOBJ;
        s2_json_free(chk);
        if (!obj) return s2_err(SAM2C_ERR_ARG, "run.json: settings are not a JSON object");
    }
    s2_jw w;
    s2_jw_init(&w);
    s2_run_info_write_json(ri, &w);
    char *path = s2_malloc(strlen(outdir) + 10);
    int rc = (!path || w.failed) ? SAM2C_ERR_NOMEM : SAM2C_OK;
    if (rc >= 0) {
        sprintf(path, "%s/run.json", outdir);
        rc = s2_write_file_atomic(path, w.buf, w.len);
    }
    free(path);
    s2_jw_free(&w);
    return rc;
}
