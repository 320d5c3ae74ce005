/* safetensors: 8-byte little-endian header length, a JSON header
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
 * then the data area, which the tensors must tile exactly. Reader and atomic writer. */
#include "io/tensorfile.h"
#include "io/json.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER ((size_t)256 << 20)
#define ST_MAX_EXACT 9007199254740992.0 /* 2^53: larger doubles are not exact integers */

typedef struct st_range {
    uint64_t begin, end;
    int idx; /* entry index */
} st_range;

/* Integral, non-negative, exactly representable JSON number. */
static bool st_uint(const s2_json *v, uint64_t *out) {
    if (!v || v->type != S2_JNUM || !(v->num >= 0 && v->num <= ST_MAX_EXACT)) return false;
    if (v->num != (double)(uint64_t)v->num) return false;
    *out = (uint64_t)v->num;
    return true;
}

/* Reads dtype and shape of one header entry into t; returns the byte size via *nbytes. */
static int st_entry_meta(const s2_json *d, const char *file, const char *name, s2_tensor *t,
                         uint64_t *nbytes) {
    const char *dt = s2_json_str(d, "dtype");
    if (!dt) return s2_err(SAM2C_ERR_FORMAT, "%s: tensor '%s': missing \"dtype\"", file, name);
    if (s2_dtype_from_name(dt, &t->dtype) != 0)
        return s2_err(SAM2C_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", file, name, dt);
    const s2_json *shape = s2_json_get(d, "shape");
    if (!shape || shape->type != S2_JARR)
        return s2_err(SAM2C_ERR_FORMAT, "%s: tensor '%s': missing \"shape\"", file, name);
    if (shape->n > S2_MAX_DIMS)
        return s2_err(SAM2C_ERR_FORMAT, "%s: tensor '%s': %d dimensions (at most %d)", file, name,
                      shape->n, S2_MAX_DIMS);
    t->ndim = shape->n;
    uint64_t esize = s2_dtype_size(t->dtype), total = esize;
    for (int i = 0; i < shape->n; i++) {
        uint64_t s;
        if (!st_uint(&shape->items[i], &s))
            return s2_err(SAM2C_ERR_FORMAT, "%s: tensor '%s': shape entry %d is not a non-negative integer",
                          file, name, i);
        t->shape[i] = (int64_t)s;
        if (s && total > (UINT64_MAX >> 2) / s)
            return s2_err(SAM2C_ERR_FORMAT, "%s: tensor '%s': shape overflows", file, name);
        total *= s;
    }
    *nbytes = total;
    return SAM2C_OK;
}

/* Validates one header entry and records its byte range relative to the data area. */
static int st_entry(s2_tensorfile *f, const s2_json *d, const char *name, uint64_t data_len,
                    st_range *r) {
    if (d->type != S2_JOBJ)
        return s2_err(SAM2C_ERR_FORMAT, "%s: tensor '%s': header entry is not an object", f->path, name);
    s2_tf_entry *e = &f->entries[r->idx];
    uint64_t nbytes = 0;
    S2_CHECK(st_entry_meta(d, f->path, name, &e->t, &nbytes));
    const s2_json *off = s2_json_get(d, "data_offsets");
    if (!off || off->type != S2_JARR || off->n != 2 || !st_uint(&off->items[0], &r->begin) ||
        !st_uint(&off->items[1], &r->end))
        return s2_err(SAM2C_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" must be two non-negative integers",
                      f->path, name);
    if (r->begin > r->end || r->end > data_len)
        return s2_err(SAM2C_ERR_FORMAT, "%s: tensor '%s': offsets out of range [%llu, %llu) for a data area of %llu bytes",
                      f->path, name, (unsigned long long)r->begin, (unsigned long long)r->end,
                      (unsigned long long)data_len);
    if (r->end - r->begin != nbytes) {
        char sh[160];
        s2_shape_str(e->t.shape, e->t.ndim, sh, sizeof sh);
        return s2_err(SAM2C_ERR_FORMAT, "%s: tensor '%s': %llu bytes but %s %s needs %llu", f->path,
                      name, (unsigned long long)(r->end - r->begin), s2_dtype_name(e->t.dtype), sh,
                      (unsigned long long)nbytes);
    }
    e->name = s2_strdup(name);
    return e->name ? SAM2C_OK : SAM2C_ERR_NOMEM;
}

/* Orders byte ranges by start, then end. */
static int st_range_cmp(const void *a, const void *b) {
    const st_range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx - y->idx;
}

/* The ranges must tile [0, data_len) in offset order: no overlap, no gap, no tail. */
static int st_check_tiling(const s2_tensorfile *f, st_range *r, int n, uint64_t data_len) {
    qsort(r, (size_t)n, sizeof *r, st_range_cmp);
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (r[i].begin < at)
            return s2_err(SAM2C_ERR_FORMAT, "%s: tensors '%s' and '%s' have overlapping offsets",
                          f->path, f->entries[r[i - 1].idx].name, f->entries[r[i].idx].name);
        if (r[i].begin > at)
            return s2_err(SAM2C_ERR_FORMAT, "%s: %llu unused bytes before tensor '%s' (offsets must tile the data area)",
                          f->path, (unsigned long long)(r[i].begin - at), f->entries[r[i].idx].name);
        at = r[i].end;
    }
    if (at != data_len)
        return s2_err(SAM2C_ERR_FORMAT, "%s: %llu unused bytes after the last tensor", f->path,
                      (unsigned long long)(data_len - at));
    return SAM2C_OK;
}

/* Keeps "__metadata__" as compact JSON text. */
static int st_metadata(s2_tensorfile *f, const s2_json *m) {
    if (m->type != S2_JOBJ)
        return s2_err(SAM2C_ERR_FORMAT, "%s: \"__metadata__\" is not an object", f->path);
    if (f->metadata_json) /* a second one would replace (and leak) the first */
        return s2_err(SAM2C_ERR_FORMAT, "%s: duplicate \"__metadata__\" in the header", f->path);
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_value(&w, m);
    if (w.failed) { /* allocation failure or nesting beyond the writer's 63 levels */
        s2_jw_free(&w);
        return s2_err(SAM2C_ERR_FORMAT, "%s: \"__metadata__\" cannot be kept (too large or too deeply nested)", f->path);
    }
    f->metadata_json = w.buf; /* ownership moves */
    return SAM2C_OK;
}

/* Points each entry at its data, copying the ones misaligned for their element size. */
static int st_bind(s2_tensorfile *f, const uint8_t *data, const st_range *r, int n) {
    for (int i = 0; i < n; i++) {
        s2_tf_entry *e = &f->entries[r[i].idx];
        const uint8_t *p = data + r[i].begin;
        size_t nb = (size_t)(r[i].end - r[i].begin), es = s2_dtype_size(e->t.dtype);
        if ((uintptr_t)p % es == 0) {
            e->t.data = (void *)p; /* read-only mapping; never written through */
            e->mapped = true;
        } else {
            void *c = s2_tf_own(f, nb);
            if (!c) return SAM2C_ERR_NOMEM;
            memcpy(c, p, nb);
            e->t.data = c;
            e->mapped = false;
        }
    }
    return SAM2C_OK;
}

/* Everything after the header length: JSON, entries, tiling, data pointers. */
static int st_parse_header(s2_tensorfile *f, const uint8_t *buf, size_t len, uint64_t hlen) {
    s2_json *h = NULL;
    s2_json_limits lim = {64, ST_MAX_HEADER};
    S2_CHECK(s2_json_parse((const char *)buf + 8, (size_t)hlen, f->path, &lim, &h));
    int rc = SAM2C_OK, n = 0;
    st_range *r = NULL;
    if (h->type != S2_JOBJ) rc = s2_err(SAM2C_ERR_FORMAT, "%s: header is not a JSON object", f->path);
    for (int i = 0; rc == SAM2C_OK && i < h->n; i++) n += strcmp(h->keys[i], "__metadata__") != 0;
    if (rc == SAM2C_OK) rc = s2_tf_alloc_entries(f, n);
    if (rc == SAM2C_OK && !(r = s2_calloc(n ? (size_t)n : 1, sizeof *r))) rc = SAM2C_ERR_NOMEM;
    uint64_t data_len = (uint64_t)len - 8 - hlen;
    for (int i = 0, k = 0; rc == SAM2C_OK && i < h->n; i++) {
        if (strcmp(h->keys[i], "__metadata__") == 0) {
            rc = st_metadata(f, &h->items[i]);
            continue;
        }
        r[k].idx = k;
        rc = st_entry(f, &h->items[i], h->keys[i], data_len, &r[k]);
        k++;
    }
    if (rc == SAM2C_OK) rc = s2_tf_finish(f);
    if (rc == SAM2C_OK) rc = st_check_tiling(f, r, n, data_len);
    if (rc == SAM2C_OK) rc = st_bind(f, buf + 8 + hlen, r, n);
    free(r);
    s2_json_free(h);
    return rc;
}

/* Header length checks, then the JSON header; entries point into buf. */
int s2_safetensors_parse(const uint8_t *buf, size_t len, const char *name, s2_tensorfile **out) {
    *out = NULL;
    if (!name) name = "safetensors";
    if (len == 0) return s2_err(SAM2C_ERR_FORMAT, "%s: empty file", name);
    if (len < 8)
        return s2_err(SAM2C_ERR_FORMAT, "%s: %zu bytes is too short for a safetensors header", name, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > (uint64_t)len - 8)
        return s2_err(SAM2C_ERR_FORMAT, "%s: header length %llu beyond the file (%zu bytes)", name,
                      (unsigned long long)hlen, len);
    if (hlen > ST_MAX_HEADER)
        return s2_err(SAM2C_ERR_LIMIT, "%s: header length %llu exceeds the limit", name,
                      (unsigned long long)hlen);
    s2_tensorfile *f = s2_tf_new(S2_TF_SAFETENSORS, name);
    if (!f) return SAM2C_ERR_NOMEM;
    int rc = st_parse_header(f, buf, len, hlen);
    if (rc != SAM2C_OK) {
        s2_tensorfile_free(f);
        return rc;
    }
    *out = f;
    return SAM2C_OK;
}

/* ======================= writer ======================= */

typedef struct st_witem {
    const s2_st_item *it;
    uint64_t begin, nbytes;
} st_witem;

/* Layout order of the fixtures: larger elements first, then by name. */
static int st_witem_cmp(const void *a, const void *b) {
    const st_witem *x = a, *y = b;
    size_t ex = s2_dtype_size(x->it->t.dtype), ey = s2_dtype_size(y->it->t.dtype);
    if (ex != ey) return ex > ey ? -1 : 1;
    return strcmp(x->it->name, y->it->name);
}

/* Checks the items and assigns data offsets in layout order. */
static int st_layout(const char *path, const s2_st_item *items, int n, st_witem *w) {
    for (int i = 0; i < n; i++) {
        const s2_tensor *t = &items[i].t;
        if (!items[i].name || !items[i].name[0] || strcmp(items[i].name, "__metadata__") == 0)
            return s2_err(SAM2C_ERR_ARG, "%s: tensor %d has an invalid name", path, i);
        if ((unsigned)t->dtype >= S2_DTYPE_COUNT || t->ndim < 0 || t->ndim > S2_MAX_DIMS)
            return s2_err(SAM2C_ERR_ARG, "%s: tensor '%s': invalid dtype or rank", path, items[i].name);
        uint64_t nb = s2_dtype_size(t->dtype);
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0) return s2_err(SAM2C_ERR_ARG, "%s: tensor '%s': negative shape", path, items[i].name);
            nb *= (uint64_t)t->shape[d];
        }
        if (nb && !t->data) return s2_err(SAM2C_ERR_ARG, "%s: tensor '%s': no data", path, items[i].name);
        w[i].it = &items[i];
        w[i].nbytes = nb;
    }
    qsort(w, (size_t)n, sizeof *w, st_witem_cmp);
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (i && strcmp(w[i].it->name, w[i - 1].it->name) == 0)
            return s2_err(SAM2C_ERR_ARG, "%s: duplicate tensor name '%s'", path, w[i].it->name);
        w[i].begin = at;
        at += w[i].nbytes;
    }
    return SAM2C_OK;
}

/* Header JSON: tensors in layout order, then "__metadata__" (as the fixtures). */
static int st_header(const char *path, const st_witem *w, int n, const char *const *kv, int n_meta,
                     s2_jw *j) {
    s2_jw_init(j);
    s2_jw_obj_begin(j);
    for (int i = 0; i < n; i++) {
        const s2_tensor *t = &w[i].it->t;
        s2_jw_key(j, w[i].it->name);
        s2_jw_obj_begin(j);
        s2_jw_key(j, "dtype");
        s2_jw_str(j, s2_dtype_name(t->dtype));
        s2_jw_key(j, "shape");
        s2_jw_arr_begin(j);
        for (int d = 0; d < t->ndim; d++) s2_jw_int(j, t->shape[d]);
        s2_jw_arr_end(j);
        s2_jw_key(j, "data_offsets");
        s2_jw_arr_begin(j);
        s2_jw_int(j, (int64_t)w[i].begin);
        s2_jw_int(j, (int64_t)(w[i].begin + w[i].nbytes));
        s2_jw_arr_end(j);
        s2_jw_obj_end(j);
    }
    if (n_meta > 0) {
        s2_jw_key(j, "__metadata__");
        s2_jw_obj_begin(j);
        for (int i = 0; i < n_meta; i++) {
            s2_jw_key(j, kv[2 * i] ? kv[2 * i] : "");
            s2_jw_str(j, kv[2 * i + 1] ? kv[2 * i + 1] : "");
        }
        s2_jw_obj_end(j);
    }
    s2_jw_obj_end(j);
    if (j->failed) {
        s2_jw_free(j);
        return s2_err(SAM2C_ERR_NOMEM, "%s: out of memory building the header", path);
    }
    return SAM2C_OK;
}

/* Streams header (space-padded to a multiple of 8) and tensors into an open file. */
static int st_stream(FILE *fp, const s2_jw *j, const st_witem *w, int n) {
    uint8_t le[8];
    uint64_t hl = (j->len + 7) & ~(uint64_t)7;
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(hl >> (8 * i));
    if (fwrite(le, 1, 8, fp) != 8 || fwrite(j->buf, 1, j->len, fp) != j->len) return -1;
    if (hl > j->len && fwrite("        ", 1, (size_t)(hl - j->len), fp) != hl - j->len) return -1;
    for (int i = 0; i < n; i++)
        if (w[i].nbytes && fwrite(w[i].it->t.data, 1, (size_t)w[i].nbytes, fp) != w[i].nbytes) return -1;
    return 0;
}

int s2_safetensors_write(const char *path, const s2_st_item *items, int n,
                         const char *const *meta_kv, int n_meta) {
    if (!path || n < 0 || (n && !items) || (n_meta > 0 && !meta_kv))
        return s2_err(SAM2C_ERR_ARG, "safetensors write: invalid arguments");
    st_witem *w = s2_calloc(n ? (size_t)n : 1, sizeof *w);
    if (!w) return SAM2C_ERR_NOMEM;
    s2_jw j;
    int rc = st_layout(path, items, n, w);
    if (rc == SAM2C_OK) rc = st_header(path, w, n, meta_kv, n_meta, &j);
    if (rc != SAM2C_OK) { free(w); return rc; }
    size_t tl = strlen(path) + 16;
    char *tmp = s2_malloc(tl);
    int fd = -1;
    FILE *fp = NULL;
    if (tmp) {
        snprintf(tmp, tl, "%s.XXXXXX", path);
        fd = mkstemp(tmp);
        if (fd >= 0 && !(fp = fdopen(fd, "wb"))) close(fd);
    }
    if (!tmp) rc = SAM2C_ERR_NOMEM;
    else if (!fp) rc = s2_err(SAM2C_ERR_IO, "%s: %s", path, strerror(errno));
    else {
        int bad = fchmod(fileno(fp), 0644) != 0 || st_stream(fp, &j, w, n) != 0;
        bad = (fflush(fp) != 0) || bad;
        bad = (fsync(fileno(fp)) != 0) || bad; /* data on disk before the rename */
        bad = (fclose(fp) != 0) || bad;
        if (bad || rename(tmp, path) != 0) {
            rc = s2_err(SAM2C_ERR_IO, "%s: write failed: %s", path, strerror(errno));
            unlink(tmp);
        }
    }
    free(tmp);
    s2_jw_free(&j);
    free(w);
    return rc;
}
