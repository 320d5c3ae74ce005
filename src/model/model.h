/* The loaded model: configuration plus named f32 weights. Read-only after load; shared by
 * every session. Weights are looked up by their official state_dict names. */
#ifndef S2_MODEL_H
#define S2_MODEL_H

#include "model/config.h"
#include "tensor/tensor.h"
#include "backend/backend.h"

typedef struct s2_weight {
    char *name;
    s2_tensor t;        /* always F32 in memory, contiguous */
} s2_weight;

struct sam2c_model {
    s2_config cfg;
    s2_weight *w;       /* in state_dict order */
    int n_w;
    int *hash;          /* open-addressing table of indices into w */
    int hash_cap;
    void *blob;         /* one allocation holding every converted weight */
    struct s2_tensorfile *file; /* kept open when weights are mapped from it */
    char source_format[32];     /* "torch-zip", "safetensors", "random" */
    int src_dtype;              /* dominant dtype in the file */
    double load_s;
    int n_mapped, n_converted; /* weights used in place from the mapping vs converted */
};
typedef struct sam2c_model sam2c_model;

/* Weight lookup by printf-style name. Every name the model code asks for was checked
 * (name, shape) at load time; asking for an unknown one is a programming error and
 * aborts with the name (internal invariant, never input-dependent). */
const float *s2_w(const sam2c_model *m, const char *fmt, ...) S2_PRINTF(2, 3);
const s2_tensor *s2_wt(const sam2c_model *m, const char *fmt, ...) S2_PRINTF(2, 3);
/* NULL when absent (for optional tensors such as no_obj_embed_spatial). */
const s2_tensor *s2_w_opt(const sam2c_model *m, const char *fmt, ...) S2_PRINTF(2, 3);

/* The state_dict layout a config implies: every tensor name and shape, in the order
 * model.state_dict() yields them. Used by loading, random init, info and the manifest
 * test. Caller frees with s2_layout_free. */
typedef struct s2_layout_entry {
    char name[160];
    int ndim;
    int64_t shape[5];
} s2_layout_entry;
typedef struct s2_layout {
    s2_layout_entry *e;
    int n, cap;
} s2_layout;
int s2_layout_build(const s2_config *c, s2_layout *out);
/* Number of conv stages of the memory encoder's mask downsampler. */
int s2_mds_num_layers(const s2_config *c);
void s2_layout_free(s2_layout *l);

#endif
