/* A tiny test harness: TEST(name) registers a function; CHECK* record failures with
 * file and line and go on. Each tests/test_*.c is one executable under CTest; its main
 * (in harness.c) runs every registered test and prints "N passed, N failed".
 * Exit 77 = skipped (fixtures missing), which CTest reports as skipped. */
#ifndef S2_HARNESS_H
#define S2_HARNESS_H

#include <stdio.h>
#include <stdint.h>
#include <stdbool.h>
#include <math.h>

typedef void (*s2t_fn)(void);
void s2t_register(const char *name, s2t_fn fn);
void s2t_fail(const char *file, int line, const char *fmt, ...);
void s2t_skip(const char *why); /* marks the current test skipped and returns from nothing */
extern int s2t_cur_failed;

#define TEST(name)                                                          \
    static void name(void);                                                 \
    __attribute__((constructor)) static void s2t_reg_##name(void) {         \
        s2t_register(#name, name);                                          \
    }                                                                       \
    static void name(void)

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) s2t_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);      \
    } while (0)
#define CHECK_MSG(cond, ...)                                                \
    do {                                                                    \
        if (!(cond)) s2t_fail(__FILE__, __LINE__, __VA_ARGS__);             \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                  \
    do {                                                                    \
        long long s2t_a = (long long)(a), s2t_b = (long long)(b);           \
        if (s2t_a != s2t_b)                                                 \
            s2t_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b,  \
                     s2t_a, s2t_b);                                         \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                               \
    do {                                                                    \
        double s2t_a = (double)(a), s2t_b = (double)(b);                    \
        if (!(fabs(s2t_a - s2t_b) <= (tol)))                                \
            s2t_fail(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g (tol %g)",  \
                     #a, #b, s2t_a, s2t_b, (double)(tol));                  \
    } while (0)
#define REQUIRE(cond)                                                       \
    do {                                                                    \
        if (!(cond)) {                                                      \
            s2t_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond);             \
            return;                                                         \
        }                                                                   \
    } while (0)

/* Fixtures folder: $SAM2C_FIXTURES, else ../shared/fixtures beside the source tree.
 * Returns NULL (and prints why) when missing. */
const char *s2t_fixtures(void);
/* Sample data folder: ../shared/data beside the source tree (or $SAM2C_DATA). */
const char *s2t_data(void);
/* "<fixtures>/<rel>" in a static rotating buffer. */
const char *s2t_fx(const char *rel);
const char *s2t_dat(const char *rel);
/* Temporary folder unique to this test process (created). */
const char *s2t_tmpdir(void);
/* Path of the built sam2c command. */
const char *s2t_bin(void);
/* Runs a shell command, capturing combined output into out (may be NULL). Returns the
 * exit status (or -1). */
int s2t_run(const char *cmd, char *out, size_t out_len);

/* Compares two f32 arrays with the rule max|a-b| <= rtol*max|ref| + atol; prints the
 * worst difference with its index and the first values on failure. Returns the ratio
 * max|a-b| / max|ref| through *rel (may be NULL). */
bool s2t_allclose(const char *what, const float *got, const float *ref, int64_t n,
                  double rtol, double atol, double *rel);

#endif
