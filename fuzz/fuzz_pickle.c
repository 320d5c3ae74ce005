/* libFuzzer target: the restricted unpickler. Walks the result with a node budget, since
 * memo references can make shared and cyclic structures. */
#include "fuzz_common.h"
#include "io/pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Visits up to *budget values, depth-first, bounded depth. */
static void walk(const s2_pk *v, int depth, int *budget) {
    if (!v || depth > 64 || --*budget <= 0) return;
    switch (v->type) {
    case S2_PK_STR: fz_touch(v->s, v->slen + 1); break;
    case S2_PK_TUPLE: case S2_PK_LIST: case S2_PK_DICT:
        FZ_ASSERT(v->n >= 0 && (v->n == 0 || v->items));
        for (int i = 0; i < v->n; i++) walk(v->items[i], depth + 1, budget);
        break;
    case S2_PK_STORAGE: fz_touch(v->s, v->slen + 1); break;
    case S2_PK_TENSOR:
        FZ_ASSERT(v->ndim >= 0 && v->ndim <= S2_MAX_DIMS && v->storage);
        walk(v->storage, depth + 1, budget);
        break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    s2_pickle p;
    if (s2_pickle_load(data, size, "fuzz.pkl", &p) != 0) return 0;
    FZ_ASSERT(p.root);
    int budget = 100000;
    walk(p.root, 0, &budget);
    (void)s2_pk_dict_get(p.root, "model");
    s2_pickle_free(&p);
    return 0;
}
