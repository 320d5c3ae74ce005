/* Reading named tensors from checkpoint files: official PyTorch checkpoints
 * (torch.save zip + restricted pickle) and safetensors. One opened file gives a flat
 * list of entries; data pointers point into the read-only mapping of the file when
 * the entry is contiguous and suitably aligned, otherwise into a copy owned by the
 * s2_tensorfile (strided / offset storages are made contiguous at open time). */
#ifndef S2_TENSORFILE_H
#define S2_TENSORFILE_H

#include "tensor/tensor.h"
#include "core/s2.h"

typedef struct s2_tf_entry {
    char *name;      /* e.g. "image_encoder.trunk.patch_embed.proj.weight" */
    s2_tensor t;     /* contiguous row-major data, dtype as stored */
    bool mapped;     /* true when t.data points into the file mapping (not copied) */
} s2_tf_entry;

typedef enum { S2_TF_SAFETENSORS = 1, S2_TF_TORCH_ZIP = 2 } s2_tf_format;

typedef struct s2_tensorfile {
    s2_tf_format format;
    char *path;
    s2_mapped map;
    s2_tf_entry *entries;
    int n_entries;
    char *metadata_json;   /* safetensors "__metadata__" object as JSON text, or NULL */
    void **owned;          /* copies made at open time */
    int n_owned, cap_owned;
    struct s2_tf_index *index; /* name lookup table (private to tensorfile.c) */
} s2_tensorfile;

/* Opens by content (zip magic "PK\3\4" -> torch, else safetensors). On failure,
 * the message names the file and the problem; *out is left NULL. */
int s2_tensorfile_open(const char *path, s2_tensorfile **out);
int s2_safetensors_open(const char *path, s2_tensorfile **out);
int s2_torchzip_open(const char *path, s2_tensorfile **out);
void s2_tensorfile_free(s2_tensorfile *f);
const s2_tf_entry *s2_tensorfile_find(const s2_tensorfile *f, const char *name);

/* Parsing from memory (used by fuzz targets and tests). `name` appears in messages.
 * For safetensors from memory, entries point into `buf` (which must outlive the file). */
int s2_safetensors_parse(const uint8_t *buf, size_t len, const char *name, s2_tensorfile **out);
int s2_torchzip_parse(const uint8_t *buf, size_t len, const char *name, s2_tensorfile **out);

/* Writing safetensors: tensors in the order given (the writer lays them out by
 * decreasing element size then name, as the fixtures do), 8-byte aligned header,
 * optional metadata as string key/values. Written atomically. */
typedef struct s2_st_item {
    const char *name;
    s2_tensor t;
} s2_st_item;
int s2_safetensors_write(const char *path, const s2_st_item *items, int n,
                         const char *const *meta_kv, int n_meta /* pairs */);

/* ---- shared by the format readers (not for other layers) ---- */
/* New empty file object; `name` is copied into path. NULL + message on OOM. */
s2_tensorfile *s2_tf_new(s2_tf_format format, const char *name);
/* Allocates n zeroed entries (once per file). */
int s2_tf_alloc_entries(s2_tensorfile *f, int n);
/* 64-byte aligned buffer owned (and freed) by f; NULL + message on OOM. */
void *s2_tf_own(s2_tensorfile *f, size_t nbytes);
/* Builds the name index once entries are filled; fails on a duplicate name. */
int s2_tf_finish(s2_tensorfile *f);

#endif
