/* PyTorch zip checkpoints (torch.save since 1.6): "<prefix>/data.pkl" holds the pickled
 * object, "<prefix>/data/<key>" the raw little-endian storages. The prefix is the
 * archive folder name, which differs between checkpoints. Tensors that are contiguous
 * and aligned point into the buffer; strided or misaligned ones are copied. */
#include "io/tensorfile.h"
#include "io/pickle.h"
#include "io/zip.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TZ_COPY_SLACK ((uint64_t)64 << 20) /* strided copies allowed beyond 2x storage */

typedef struct tz {
    s2_tensorfile *f;
    s2_zip z;
    char prefix[512];
    const uint8_t **storage; /* per zip entry: extracted bytes (lazily), NULL = not yet */
    uint64_t storage_bytes;  /* sum of the distinct storages used so far */
    uint64_t copied_bytes;   /* sum of the strided copies made so far */
} tz;

/* The pickle is the one "<folder>/data.pkl" at depth one. */
static int tz_find_pickle(tz *t) {
    for (int i = 0; i < t->z.n; i++) {
        const char *nm = t->z.entries[i].name, *slash = strchr(nm, '/');
        if (slash && slash > nm && strcmp(slash + 1, "data.pkl") == 0 && (size_t)(slash - nm) < sizeof t->prefix) {
            memcpy(t->prefix, nm, (size_t)(slash - nm));
            t->prefix[slash - nm] = 0;
            return i;
        }
    }
    return s2_err(SAM2C_ERR_FORMAT, "%s: no <folder>/data.pkl in the zip (not a PyTorch checkpoint)", t->f->path);
}

/* Checkpoints written on big-endian machines would need byte swapping: refuse them. */
static int tz_check_byteorder(tz *t) {
    char nm[600];
    snprintf(nm, sizeof nm, "%s/byteorder", t->prefix);
    int i = s2_zip_find(&t->z, nm);
    if (i < 0) return SAM2C_OK; /* older writers: always little-endian */
    const uint8_t *d = NULL;
    uint8_t *owned = NULL;
    S2_CHECK(s2_zip_read(&t->z, i, true, &d, &owned));
    bool little = t->z.entries[i].size == 6 && memcmp(d, "little", 6) == 0;
    free(owned);
    if (!little) return s2_err(SAM2C_ERR_UNSUPPORTED, "%s: big-endian checkpoints are not supported", t->f->path);
    return SAM2C_OK;
}

/* Bytes of storage entry i: the buffer itself for stored entries, else inflated once. */
static int tz_storage(tz *t, int i, const uint8_t **out) {
    if (!t->storage[i]) {
        const s2_zip_entry *e = &t->z.entries[i];
        t->storage_bytes += e->size;
        if (e->method == 0) t->storage[i] = t->z.buf + e->data_offset;
        else {
            if (e->size / 1032 > e->comp_size + 1)
                return s2_err(SAM2C_ERR_FORMAT, "%s: zip entry '%s': implausible size", t->f->path, e->name);
            uint8_t *dst = s2_tf_own(t->f, (size_t)e->size);
            if (!dst) return SAM2C_ERR_NOMEM;
            S2_CHECK(s2_zip_inflate(&t->z, i, dst));
            t->storage[i] = dst;
        }
    }
    *out = t->storage[i];
    return SAM2C_OK;
}

/* Highest element index the view touches, plus one (0 for an empty tensor). Every
 * partial sum stays <= 2^60, so nothing wraps whatever the offset and strides, and
 * byte counts (x 8 at most) fit in 64 bits. */
static int tz_extent(const s2_pk *v, uint64_t *extent, uint64_t *numel) {
    uint64_t hi = (uint64_t)v->offset, n = 1;
    const uint64_t lim = (uint64_t)1 << 60;
    *extent = *numel = 0;
    for (int d = 0; d < v->ndim; d++)
        if (v->size[d] == 0) return 0;
    if (hi > lim) return -1;
    for (int d = 0; d < v->ndim; d++) {
        uint64_t s = (uint64_t)v->size[d], st = (uint64_t)v->stride[d];
        if ((s - 1) && st > (lim - hi) / (s - 1)) return -1;
        hi += (s - 1) * st;
        if (n > lim / s) return -1;
        n *= s;
    }
    *extent = hi + 1;
    *numel = n;
    return 0;
}

/* Row-major strides (dimensions of size 1 may carry any stride). */
static bool tz_contiguous(const s2_pk *v) {
    int64_t want = 1;
    for (int d = v->ndim - 1; d >= 0; d--) {
        if (v->size[d] != 1 && v->stride[d] != want) return false;
        want *= v->size[d];
    }
    return true;
}

/* Gathers a strided view into dst, element by element, with a multi-index counter. */
static void tz_gather(uint8_t *dst, const uint8_t *base, const s2_pk *v, size_t es, uint64_t numel) {
    int64_t idx[S2_MAX_DIMS] = {0};
    uint64_t src = (uint64_t)v->offset;
    for (uint64_t k = 0; k < numel; k++) {
        memcpy(dst + k * es, base + src * es, es);
        for (int d = v->ndim - 1; d >= 0; d--) {
            src += (uint64_t)v->stride[d];
            if (++idx[d] < v->size[d]) break;
            src -= (uint64_t)v->stride[d] * (uint64_t)v->size[d];
            idx[d] = 0;
        }
    }
}

/* Resolves one state_dict tensor into entry e. */
static int tz_tensor(tz *t, const char *name, const s2_pk *v, s2_tf_entry *e) {
    const char *path = t->f->path;
    if (!(e->name = s2_strdup(name))) return SAM2C_ERR_NOMEM;
    char key[1200];
    snprintf(key, sizeof key, "%s/data/%s", t->prefix, v->storage->s);
    int si = s2_zip_find(&t->z, key);
    if (si < 0) return s2_err(SAM2C_ERR_FORMAT, "%s: tensor '%s': storage '%s' is missing from the zip", path, name, key);
    size_t es = s2_dtype_size(v->storage->dtype);
    uint64_t extent, numel, have = t->z.entries[si].size;
    if (tz_extent(v, &extent, &numel) != 0)
        return s2_err(SAM2C_ERR_FORMAT, "%s: tensor '%s': size/stride overflow", path, name);
    if (extent > have / es)
        return s2_err(SAM2C_ERR_FORMAT, "%s: tensor '%s': storage shorter than its tensor (%llu bytes, needs %llu)",
                      path, name, (unsigned long long)have, (unsigned long long)(extent * es));
    e->t.dtype = v->storage->dtype;
    e->t.ndim = v->ndim;
    memcpy(e->t.shape, v->size, sizeof e->t.shape);
    const uint8_t *base = NULL;
    S2_CHECK(tz_storage(t, si, &base));
    const uint8_t *p = base + (numel ? (size_t)v->offset * es : 0);
    bool in_map = t->z.entries[si].method == 0;
    if (tz_contiguous(v) && (uintptr_t)p % es == 0) {
        e->t.data = (void *)p; /* read-only; never written through */
        e->mapped = in_map;
        return SAM2C_OK;
    }
    /* Overlapping views (stride 0, many views of one storage) could make a tiny file
     * ask for gigabytes of copies; real checkpoints copy at most their storages once. */
    t->copied_bytes += numel * es;
    if (t->copied_bytes > 2 * t->storage_bytes + TZ_COPY_SLACK)
        return s2_err(SAM2C_ERR_FORMAT, "%s: tensor '%s': strided copies would exceed twice the checkpoint's "
                      "storage bytes (overlapping or expanded views are not supported)", path, name);
    uint8_t *dst = s2_tf_own(t->f, (size_t)(numel * es));
    if (!dst) return SAM2C_ERR_NOMEM;
    tz_gather(dst, base, v, es, numel);
    e->t.data = dst;
    e->mapped = false;
    return SAM2C_OK;
}

/* {"model": OrderedDict} (the official layout) or a bare state_dict. */
static int tz_state_dict(tz *t, const s2_pk *root, const s2_pk **sd) {
    if (!root || root->type != S2_PK_DICT)
        return s2_err(SAM2C_ERR_FORMAT, "%s: checkpoint is not a dict", t->f->path);
    const s2_pk *m = s2_pk_dict_get(root, "model");
    *sd = m && m->type == S2_PK_DICT ? m : root;
    return SAM2C_OK;
}

/* Fills the entries from the state_dict's (name, tensor) pairs. */
static int tz_entries(tz *t, const s2_pk *sd) {
    int n = sd->n / 2;
    S2_CHECK(s2_tf_alloc_entries(t->f, n));
    t->storage = s2_calloc(t->z.n ? (size_t)t->z.n : 1, sizeof *t->storage);
    if (!t->storage) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        const s2_pk *k = sd->items[2 * i], *v = sd->items[2 * i + 1];
        if (k->type != S2_PK_STR)
            return s2_err(SAM2C_ERR_FORMAT, "%s: state_dict key %d is not a string", t->f->path, i);
        if (v->type != S2_PK_TENSOR)
            return s2_err(SAM2C_ERR_FORMAT, "%s: state_dict entry '%s' is not a tensor", t->f->path, k->s);
        S2_CHECK(tz_tensor(t, k->s, v, &t->f->entries[i]));
    }
    return s2_tf_finish(t->f);
}

/* Opens the zip, unpickles, resolves; on failure everything is released by the caller. */
static int tz_run(tz *t, const uint8_t *buf, size_t len) {
    S2_CHECK(s2_zip_open(&t->z, buf, len, t->f->path));
    int pi = tz_find_pickle(t);
    if (pi < 0) return pi;
    S2_CHECK(tz_check_byteorder(t));
    const uint8_t *pk = NULL;
    uint8_t *owned = NULL;
    S2_CHECK(s2_zip_read(&t->z, pi, true, &pk, &owned));
    s2_pickle p;
    int rc = s2_pickle_load(pk, (size_t)t->z.entries[pi].size, t->f->path, &p);
    free(owned);
    if (rc != SAM2C_OK) return rc;
    const s2_pk *sd = NULL;
    rc = tz_state_dict(t, p.root, &sd);
    if (rc == SAM2C_OK) rc = tz_entries(t, sd);
    s2_pickle_free(&p);
    return rc;
}

/* Entries point into buf, except strided/misaligned/deflated ones (owned by the file). */
int s2_torchzip_parse(const uint8_t *buf, size_t len, const char *name, s2_tensorfile **out) {
    *out = NULL;
    if (!name) name = "checkpoint";
    if (len == 0) return s2_err(SAM2C_ERR_FORMAT, "%s: empty file", name);
    tz t;
    memset(&t, 0, sizeof t);
    t.f = s2_tf_new(S2_TF_TORCH_ZIP, name);
    if (!t.f) return SAM2C_ERR_NOMEM;
    int rc = tz_run(&t, buf, len);
    s2_zip_close(&t.z);
    free(t.storage);
    if (rc != SAM2C_OK) {
        s2_tensorfile_free(t.f);
        return rc;
    }
    *out = t.f;
    return SAM2C_OK;
}
