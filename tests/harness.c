/* Test runner main: runs every TEST registered in this executable. */
#include "harness.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct { const char *name; s2t_fn fn; } s2t_case;
static s2t_case g_cases[512];
static int g_n;
int s2t_cur_failed;
static int g_cur_skipped;

void s2t_register(const char *name, s2t_fn fn) {
    if (g_n < 512) g_cases[g_n++] = (s2t_case){name, fn};
}

void s2t_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "  FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    s2t_cur_failed++;
}

void s2t_skip(const char *why) {
    fprintf(stderr, "  SKIP: %s\n", why);
    g_cur_skipped = 1;
}

static int dir_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *s2t_fixtures(void) {
    static char buf[4096];
    const char *e = getenv("SAM2C_FIXTURES");
    if (e && *e) snprintf(buf, sizeof buf, "%s", e);
    else snprintf(buf, sizeof buf, "%s/../shared/fixtures", SAM2C_SOURCE_DIR);
    if (!dir_exists(buf)) {
        fprintf(stderr, "  fixtures missing: %s (set SAM2C_FIXTURES)\n", buf);
        return NULL;
    }
    return buf;
}

const char *s2t_data(void) {
    static char buf[4096];
    const char *e = getenv("SAM2C_DATA");
    if (e && *e) snprintf(buf, sizeof buf, "%s", e);
    else snprintf(buf, sizeof buf, "%s/../shared/data", SAM2C_SOURCE_DIR);
    if (!dir_exists(buf)) {
        fprintf(stderr, "  sample data missing: %s (set SAM2C_DATA)\n", buf);
        return NULL;
    }
    return buf;
}

static const char *join(const char *base, const char *rel) {
    static char bufs[8][4096];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, 4096, "%s/%s", base ? base : "(missing)", rel);
    return b;
}
const char *s2t_fx(const char *rel) { return join(s2t_fixtures(), rel); }
const char *s2t_dat(const char *rel) { return join(s2t_data(), rel); }

const char *s2t_tmpdir(void) {
    static char buf[256];
    if (!buf[0]) {
        snprintf(buf, sizeof buf, "/tmp/sam2c-test-%d", (int)getpid());
        mkdir(buf, 0755);
    }
    return buf;
}

const char *s2t_bin(void) {
    const char *e = getenv("SAM2C_BIN");
    static char buf[4096];
    if (e && *e) return e;
    snprintf(buf, sizeof buf, "%s/sam2c", SAM2C_BINARY_DIR);
    return buf;
}

int s2t_run(const char *cmd, char *out, size_t out_len) {
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t used = 0;
    char tmp[4096];
    size_t r;
    while ((r = fread(tmp, 1, sizeof tmp, p)) > 0) {
        if (out && used + 1 < out_len) {
            size_t c = r < out_len - 1 - used ? r : out_len - 1 - used;
            memcpy(out + used, tmp, c);
            used += c;
        }
    }
    if (out && out_len) out[used] = 0;
    int st = pclose(p);
    if (st == -1) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

bool s2t_allclose(const char *what, const float *got, const float *ref, int64_t n,
                  double rtol, double atol, double *rel) {
    double maxref = 0, maxdiff = 0;
    int64_t worst = 0;
    bool nan = false;
    for (int64_t i = 0; i < n; i++) {
        double r = fabs((double)ref[i]);
        if (r > maxref) maxref = r;
        double d = fabs((double)got[i] - (double)ref[i]);
        if (isnan(got[i]) != isnan(ref[i])) nan = true;
        if (d > maxdiff) { maxdiff = d; worst = i; }
    }
    double tol = rtol * maxref + atol;
    if (rel) *rel = maxref > 0 ? maxdiff / maxref : maxdiff;
    if (nan || maxdiff > tol) {
        fprintf(stderr, "  %s: max|diff| %.6g at [%lld] (got %.8g ref %.8g), max|ref| %.6g, tol %.6g%s\n",
                what, maxdiff, (long long)worst, got[worst], ref[worst], maxref, tol,
                nan ? " (NaN mismatch)" : "");
        fprintf(stderr, "    first values got/ref:");
        for (int64_t i = 0; i < n && i < 6; i++) fprintf(stderr, " %.6g/%.6g", got[i], ref[i]);
        fputc('\n', stderr);
        return false;
    }
    return true;
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0, skipped = 0;
    const char *only = argc > 1 ? argv[1] : NULL;
    for (int i = 0; i < g_n; i++) {
        if (only && !strstr(g_cases[i].name, only)) continue;
        s2t_cur_failed = 0;
        g_cur_skipped = 0;
        fprintf(stderr, "[ RUN  ] %s\n", g_cases[i].name);
        g_cases[i].fn();
        if (s2t_cur_failed) { failed++; fprintf(stderr, "[ FAIL ] %s\n", g_cases[i].name); }
        else if (g_cur_skipped) { skipped++; fprintf(stderr, "[ SKIP ] %s\n", g_cases[i].name); }
        else { passed++; fprintf(stderr, "[  OK  ] %s\n", g_cases[i].name); }
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    if (failed) return 1;
    if (passed == 0 && skipped > 0) return 77;
    return 0;
}
