/* Checks shared by the checkpoint targets: every entry's bytes lie in readable memory,
 * names are found again, shapes are sane. */
#ifndef S2_FUZZ_TENSORFILE_H
#define S2_FUZZ_TENSORFILE_H

#include "fuzz_common.h"
#include "io/tensorfile.h"
#include <string.h>

/* Touches every tensor's first and last byte and checks the name index. */
static inline void fz_check_tensorfile(const s2_tensorfile *f) {
    for (int i = 0; i < f->n_entries; i++) {
        const s2_tf_entry *e = &f->entries[i];
        FZ_ASSERT(e->name && e->t.ndim >= 0 && e->t.ndim <= S2_MAX_DIMS);
        FZ_ASSERT((unsigned)e->t.dtype < S2_DTYPE_COUNT);
        for (int d = 0; d < e->t.ndim; d++) FZ_ASSERT(e->t.shape[d] >= 0);
        size_t nb = s2_tensor_nbytes(&e->t);
        if (nb) FZ_ASSERT(e->t.data != NULL);
        fz_touch(e->t.data, nb);
        FZ_ASSERT(s2_tensorfile_find(f, e->name) == e);
    }
}

#endif
