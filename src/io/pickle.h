/* A restricted unpickler for what torch.save writes for a state_dict: plain data
 * (None, bools, ints, floats, strings, tuples, lists, dicts) plus a short allowlist of
 * globals (OrderedDict, _rebuild_tensor_v2, _rebuild_parameter, Float/Half/BFloat16
 * storages). Any other global or opcode is refused: a checkpoint is data, never code. */
#ifndef S2_PICKLE_H
#define S2_PICKLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "tensor/tensor.h"

typedef enum {
    S2_PK_NONE, S2_PK_BOOL, S2_PK_INT, S2_PK_FLOAT, S2_PK_STR,
    S2_PK_TUPLE, S2_PK_LIST, S2_PK_DICT,
    S2_PK_GLOBAL,   /* an allowed callable or storage type, before it is applied */
    S2_PK_STORAGE,  /* persistent id ('storage', type, key, location, numel) */
    S2_PK_TENSOR    /* _rebuild_tensor_v2(storage, offset, size, stride, ...) */
} s2_pk_type;

typedef enum {
    S2_PKG_ORDERED_DICT = 1, S2_PKG_REBUILD_TENSOR_V2, S2_PKG_REBUILD_PARAMETER,
    S2_PKG_FLOAT_STORAGE, S2_PKG_HALF_STORAGE, S2_PKG_BFLOAT16_STORAGE
} s2_pk_global;

typedef struct s2_pk s2_pk;
struct s2_pk {
    s2_pk_type type;
    bool b;
    int64_t i;
    double f;
    char *s;               /* STR (NUL-terminated; slen bytes); STORAGE: key */
    size_t slen;
    s2_pk **items;         /* TUPLE/LIST elements; DICT: key0, value0, key1, value1, ... */
    int n, cap;            /* elements (DICT: 2 * pairs) */
    s2_pk_global g;        /* GLOBAL */
    /* STORAGE */
    s2_dtype dtype;
    int64_t numel;
    /* TENSOR */
    s2_pk *storage;
    int64_t offset;        /* in elements */
    int ndim;
    int64_t size[S2_MAX_DIMS], stride[S2_MAX_DIMS];
    s2_pk *next_alloc;     /* every value of a load, for freeing */
};

typedef struct s2_pickle {
    s2_pk *root;           /* the unpickled object */
    s2_pk *all;            /* allocation list */
} s2_pickle;

/* Unpickles data[0..len). `name` prefixes messages:
 * "<name>: pickle: global 'os.system' is not allowed (offset 123)". */
int s2_pickle_load(const uint8_t *data, size_t len, const char *name, s2_pickle *out);
void s2_pickle_free(s2_pickle *p);
/* DICT lookup by string key; NULL when absent. */
const s2_pk *s2_pk_dict_get(const s2_pk *dict, const char *key);

#endif
