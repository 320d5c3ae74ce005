/* Private core helpers shared by every layer: errors, allocation, small utils.
 * The library never prints and never exits; functions return a status and set a
 * thread-local message with s2_err(). */
#ifndef S2_CORE_H
#define S2_CORE_H

#include "sam2c.h"
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#if defined(__GNUC__)
#define S2_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define S2_PRINTF(a, b)
#endif

/* Sets the thread's last-error message and returns `status`, so a failure reads
 *   return s2_err(SAM2C_ERR_FORMAT, "%s: truncated zip", path); */
int s2_err(int status, const char *fmt, ...) S2_PRINTF(2, 3);
/* Prefixes the current message with more context ("model.pt: " + old message). */
int s2_err_prefix(int status, const char *fmt, ...) S2_PRINTF(2, 3);

/* Allocation that never returns NULL silently: NULL means the caller must return
 * SAM2C_ERR_NOMEM (message already set). Sizes are checked for overflow. */
void *s2_malloc(size_t n);
void *s2_calloc(size_t count, size_t size);
void *s2_realloc(void *p, size_t n);
char *s2_strdup(const char *s);
/* 64-byte aligned allocation for tensor data; free with s2_aligned_free. */
void *s2_aligned_alloc(size_t n);
void s2_aligned_free(void *p);

/* Bump arena: one allocation per lifetime, pointers carved out of it. When a call needs
 * more than the arena holds, overflow chunks are chained; the next reset folds them into
 * one block of the peak size, so the steady state allocates nothing. */
typedef struct s2_arena_chunk {
    struct s2_arena_chunk *next;
    size_t size, used;
    uint8_t *data;
} s2_arena_chunk;
typedef struct s2_arena {
    uint8_t *base;
    size_t size, used;
    s2_arena_chunk *extra;   /* overflow since the last reset (newest first) */
    size_t extra_used;       /* bytes handed out from overflow chunks */
    size_t peak;             /* largest used + extra_used seen */
} s2_arena;
typedef struct s2_arena_mark { size_t used; s2_arena_chunk *extra; size_t extra_used, chunk_used; } s2_arena_mark;
int s2_arena_init(s2_arena *a, size_t size);
void *s2_arena_alloc(s2_arena *a, size_t n); /* 64-byte aligned; NULL + message on OOM */
/* Stack discipline for temporaries: release everything allocated after the mark. */
s2_arena_mark s2_arena_get_mark(const s2_arena *a);
void s2_arena_release(s2_arena *a, s2_arena_mark m);
void s2_arena_reset(s2_arena *a);
void s2_arena_free(s2_arena *a);

/* Reads a whole file into memory (caller frees). Fails with a message naming the path. */
int s2_read_file(const char *path, uint8_t **out, size_t *out_len);
/* Writes data to path atomically (temporary name, then rename). */
int s2_write_file_atomic(const char *path, const void *data, size_t len);

/* Read-only mapping of a whole file. */
typedef struct s2_mapped {
    const uint8_t *data;
    size_t len;
} s2_mapped;
int s2_map_file(const char *path, s2_mapped *m);
void s2_unmap_file(s2_mapped *m);

double s2_now_s(void); /* monotonic seconds */
/* Applies sam2c_set_num_threads() to the calling thread (OpenMP team size is per thread). */
void s2_threads_apply(void);

#define S2_MIN(a, b) ((a) < (b) ? (a) : (b))
#define S2_MAX(a, b) ((a) > (b) ? (a) : (b))
#define S2_CHECK(expr)              \
    do {                            \
        int s2_rc_ = (expr);        \
        if (s2_rc_ < 0) return s2_rc_; \
    } while (0)

#endif
