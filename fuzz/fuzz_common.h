/* Shared by the libFuzzer targets: touching borrowed bytes so AddressSanitizer sees any
 * pointer a parser hands out beyond its buffer, and a trap for broken invariants. */
#ifndef S2_FUZZ_COMMON_H
#define S2_FUZZ_COMMON_H

#include "sam2c.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads the first and last byte of [p, p+n): an out-of-bounds range faults under ASan. */
static inline void fz_touch(const void *p, size_t n) {
    if (!n) return;
    const volatile uint8_t *b = (const volatile uint8_t *)p;
    (void)b[0];
    (void)b[n - 1];
}

/* A parser invariant failed: report and abort so libFuzzer keeps the input. */
#define FZ_ASSERT(cond)                                                             \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, \
                    __LINE__);                                                      \
            abort();                                                                \
        }                                                                           \
    } while (0)

#endif
