/* Core: thread-local error messages, checked allocation, arenas, file helpers. */
#include "core/s2.h"
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static _Thread_local char g_errmsg[1024];

const char *sam2c_strerror(int status) {
    switch (status) {
#define S2_X_STR(name, code, msg) case code: return msg;
        SAM2C_STATUS_MAP(S2_X_STR)
#undef S2_X_STR
    }
    return "unknown status";
}

const char *sam2c_last_error(void) { return g_errmsg; }

int s2_err(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_errmsg, sizeof g_errmsg, fmt, ap);
    va_end(ap);
    return status;
}

/* Context is added on the way up ("model.pt: " + "tensor x: wrong shape"). */
int s2_err_prefix(int status, const char *fmt, ...) {
    char prefix[512], old[sizeof g_errmsg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_errmsg, sizeof old);
    size_t np = strlen(prefix), no = strlen(old);
    if (np > sizeof g_errmsg - 1) np = sizeof g_errmsg - 1;
    if (no > sizeof g_errmsg - 1 - np) no = sizeof g_errmsg - 1 - np;
    memcpy(g_errmsg, prefix, np);
    memcpy(g_errmsg + np, old, no);
    g_errmsg[np + no] = 0;
    return status;
}

/* The user's thread count. libgomp keeps the OpenMP team size per pthread, so setting it
 * once is not enough for sessions driven from other threads (server workers): every entry
 * point applies it to its own thread with s2_threads_apply(). */
static atomic_int g_threads;

void sam2c_set_num_threads(int n) {
    atomic_store(&g_threads, n > 0 ? n : 0);
    s2_threads_apply();
}

void s2_threads_apply(void) {
#ifdef _OPENMP
    int n = atomic_load(&g_threads);
    if (n > 0 && omp_get_max_threads() != n) omp_set_num_threads(n);
#endif
}

int sam2c_get_num_threads(void) {
#ifdef _OPENMP
    int n = atomic_load(&g_threads);
    return n > 0 ? n : omp_get_max_threads();
#else
    return 1;
#endif
}

void *s2_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) s2_err(SAM2C_ERR_NOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

void *s2_calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) {
        s2_err(SAM2C_ERR_NOMEM, "allocation size overflow (%zu x %zu)", count, size);
        return NULL;
    }
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) s2_err(SAM2C_ERR_NOMEM, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *s2_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) s2_err(SAM2C_ERR_NOMEM, "out of memory reallocating %zu bytes", n);
    return q;
}

char *s2_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = s2_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void *s2_aligned_alloc(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? (n + 63) & ~(size_t)63 : 64) != 0) {
        s2_err(SAM2C_ERR_NOMEM, "out of memory allocating %zu bytes", n);
        return NULL;
    }
    return p;
}
void s2_aligned_free(void *p) { free(p); }

/* ---- arena ---- */

int s2_arena_init(s2_arena *a, size_t size) {
    memset(a, 0, sizeof *a);
    if (size) {
        a->base = s2_aligned_alloc(size);
        if (!a->base) return SAM2C_ERR_NOMEM;
        a->size = size;
    }
    return SAM2C_OK;
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

void *s2_arena_alloc(s2_arena *a, size_t n) {
    n = align64(n ? n : 1);
    void *p;
    if (a->used + n <= a->size) {
        p = a->base + a->used;
        a->used += n;
    } else {
        s2_arena_chunk *c = a->extra;
        if (!c || c->used + n > c->size) {
            size_t sz = n > ((size_t)16 << 20) ? n : ((size_t)16 << 20);
            c = s2_malloc(sizeof *c);
            if (!c) return NULL;
            c->data = s2_aligned_alloc(sz);
            if (!c->data) { free(c); return NULL; }
            c->size = sz;
            c->used = 0;
            c->next = a->extra;
            a->extra = c;
        }
        p = c->data + c->used;
        c->used += n;
        a->extra_used += n;
    }
    if (a->used + a->extra_used > a->peak) a->peak = a->used + a->extra_used;
    return p;
}

s2_arena_mark s2_arena_get_mark(const s2_arena *a) {
    s2_arena_mark m = {a->used, a->extra, a->extra_used, a->extra ? a->extra->used : 0};
    return m;
}

/* Chunks added after the mark are given back, so temporaries released between blocks
 * do not pile up and `peak` measures what one call really needs. */
void s2_arena_release(s2_arena *a, s2_arena_mark m) {
    a->used = m.used;
    while (a->extra && a->extra != m.extra) {
        s2_arena_chunk *n = a->extra->next;
        s2_aligned_free(a->extra->data);
        free(a->extra);
        a->extra = n;
    }
    if (a->extra) a->extra->used = m.chunk_used;
    a->extra_used = m.extra_used;
}

void s2_arena_reset(s2_arena *a) {
    if (a->extra) {
        while (a->extra) {
            s2_arena_chunk *n = a->extra->next;
            s2_aligned_free(a->extra->data);
            free(a->extra);
            a->extra = n;
        }
        size_t want = align64(a->peak + a->peak / 8);
        s2_aligned_free(a->base);
        a->base = s2_aligned_alloc(want);
        a->size = a->base ? want : 0;
    }
    a->used = 0;
    a->extra_used = 0;
}

void s2_arena_free(s2_arena *a) {
    if (!a) return;
    a->peak = 0;
    s2_arena_reset(a);
    s2_aligned_free(a->base);
    memset(a, 0, sizeof *a);
}

/* ---- files ---- */

int s2_read_file(const char *path, uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return s2_err(SAM2C_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return s2_err(SAM2C_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = s2_malloc(n + 1);
    if (!buf) { fclose(f); return SAM2C_ERR_NOMEM; }
    if (n && fread(buf, 1, n, f) != n) {
        free(buf);
        fclose(f);
        return s2_err(SAM2C_ERR_IO, "%s: read error", path);
    }
    buf[n] = 0;
    fclose(f);
    *out = buf;
    *out_len = n;
    return SAM2C_OK;
}

int s2_write_file_atomic(const char *path, const void *data, size_t len) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return s2_err(SAM2C_ERR_IO, "%s: %s", path, strerror(errno));
    int ok = (len == 0 || fwrite(data, 1, len, f) == len);
    ok = (fflush(f) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return s2_err(SAM2C_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    return SAM2C_OK;
}

int s2_map_file(const char *path, s2_mapped *m) {
    m->data = NULL;
    m->len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return s2_err(SAM2C_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return s2_err(SAM2C_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return s2_err(SAM2C_ERR_FORMAT, "%s: empty file", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return s2_err(SAM2C_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    m->data = p;
    m->len = (size_t)st.st_size;
    return SAM2C_OK;
}

void s2_unmap_file(s2_mapped *m) {
    if (m && m->data) munmap((void *)m->data, m->len);
    if (m) { m->data = NULL; m->len = 0; }
}

double s2_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
