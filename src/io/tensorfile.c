/* Checkpoint files of either format behind one handle: open by content, find by name
 * (hashed), free. The format readers live in safetensors.c and torchzip.c. */
#include "io/tensorfile.h"
#include <stdlib.h>
#include <string.h>

/* Open addressing over entry indices; slots hold index+1, 0 = empty. */
struct s2_tf_index {
    uint32_t mask;
    int *slots;
};

/* FNV-1a over the tensor name. */
static uint32_t tf_hash(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* Empty handle; the readers fill entries and call s2_tf_finish. */
s2_tensorfile *s2_tf_new(s2_tf_format format, const char *name) {
    s2_tensorfile *f = s2_calloc(1, sizeof *f);
    if (!f) return NULL;
    f->format = format;
    f->path = s2_strdup(name ? name : "");
    if (!f->path) { free(f); return NULL; }
    return f;
}

int s2_tf_alloc_entries(s2_tensorfile *f, int n) {
    f->entries = s2_calloc(n > 0 ? (size_t)n : 1, sizeof *f->entries);
    if (!f->entries) return SAM2C_ERR_NOMEM;
    f->n_entries = n;
    return SAM2C_OK;
}

void *s2_tf_own(s2_tensorfile *f, size_t nbytes) {
    if (f->n_owned == f->cap_owned) {
        int cap = f->cap_owned ? f->cap_owned * 2 : 16;
        void **o = s2_realloc(f->owned, (size_t)cap * sizeof *o);
        if (!o) return NULL;
        f->owned = o;
        f->cap_owned = cap;
    }
    void *p = s2_aligned_alloc(nbytes);
    if (p) f->owned[f->n_owned++] = p;
    return p;
}

int s2_tf_finish(s2_tensorfile *f) {
    uint32_t size = 16;
    while (size < 2u * (uint32_t)f->n_entries) size *= 2;
    struct s2_tf_index *ix = s2_calloc(1, sizeof *ix);
    if (!ix) return SAM2C_ERR_NOMEM;
    ix->slots = s2_calloc(size, sizeof *ix->slots);
    if (!ix->slots) { free(ix); return SAM2C_ERR_NOMEM; }
    ix->mask = size - 1;
    f->index = ix;
    for (int i = 0; i < f->n_entries; i++) {
        const char *name = f->entries[i].name;
        uint32_t h = tf_hash(name) & ix->mask;
        while (ix->slots[h]) {
            if (strcmp(f->entries[ix->slots[h] - 1].name, name) == 0)
                return s2_err(SAM2C_ERR_FORMAT, "%s: duplicate tensor name '%s'", f->path, name);
            h = (h + 1) & ix->mask;
        }
        ix->slots[h] = i + 1;
    }
    return SAM2C_OK;
}

/* Hashed lookup; linear when the index was never built (failed open paths). */
const s2_tf_entry *s2_tensorfile_find(const s2_tensorfile *f, const char *name) {
    if (!f || !name) return NULL;
    if (!f->index) { /* index not built: linear */
        for (int i = 0; i < f->n_entries; i++)
            if (strcmp(f->entries[i].name, name) == 0) return &f->entries[i];
        return NULL;
    }
    const struct s2_tf_index *ix = f->index;
    for (uint32_t h = tf_hash(name) & ix->mask; ix->slots[h]; h = (h + 1) & ix->mask) {
        const s2_tf_entry *e = &f->entries[ix->slots[h] - 1];
        if (strcmp(e->name, name) == 0) return e;
    }
    return NULL;
}

/* Releases names, copies, index and the mapping; NULL is a no-op. */
void s2_tensorfile_free(s2_tensorfile *f) {
    if (!f) return;
    for (int i = 0; i < f->n_entries; i++) free(f->entries[i].name);
    free(f->entries);
    for (int i = 0; i < f->n_owned; i++) s2_aligned_free(f->owned[i]);
    free(f->owned);
    if (f->index) free(f->index->slots);
    free(f->index);
    free(f->metadata_json);
    free(f->path);
    s2_unmap_file(&f->map);
    free(f);
}

/* Maps the file; the parse borrows the mapping, which the handle then owns. */
static int tf_open_mapped(const char *path, int want, s2_tensorfile **out) {
    *out = NULL;
    if (!path) return s2_err(SAM2C_ERR_ARG, "tensor file: no path");
    s2_mapped m;
    S2_CHECK(s2_map_file(path, &m));
    int is_zip = m.len >= 4 && memcmp(m.data, "PK\3\4", 4) == 0;
    int fmt = want ? want : (is_zip ? S2_TF_TORCH_ZIP : S2_TF_SAFETENSORS);
    if (!want && !is_zip && (m.len < 9 || m.data[8] != '{')) { /* neither magic */
        bool legacy = m.data[0] == 0x80 && m.len > 1 && m.data[1] <= 5; /* raw pickle stream */
        s2_unmap_file(&m);
        return s2_err(SAM2C_ERR_FORMAT, "%s: not a PyTorch checkpoint (zip) or safetensors file%s", path,
                      legacy ? " (the legacy pre-1.6 torch.save format is not supported)" : "");
    }
    int rc = fmt == S2_TF_TORCH_ZIP ? s2_torchzip_parse(m.data, m.len, path, out)
                                    : s2_safetensors_parse(m.data, m.len, path, out);
    if (rc != SAM2C_OK) {
        s2_unmap_file(&m);
        return rc;
    }
    (*out)->map = m;
    return SAM2C_OK;
}

int s2_tensorfile_open(const char *path, s2_tensorfile **out) { return tf_open_mapped(path, 0, out); }
int s2_safetensors_open(const char *path, s2_tensorfile **out) {
    return tf_open_mapped(path, S2_TF_SAFETENSORS, out);
}
int s2_torchzip_open(const char *path, s2_tensorfile **out) {
    return tf_open_mapped(path, S2_TF_TORCH_ZIP, out);
}
