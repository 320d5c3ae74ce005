/* Zip reader over a memory buffer (APPNOTE 6.3: end of central directory, ZIP64
 * locator/record/extra field, central directory, local headers). Hostile archives
 * give "<name>: ..." errors; nothing is read outside [buf, buf+len). */
#include "io/zip.h"
#include "core/s2.h"
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u
#define ZIP_MAX_ENTRIES (1 << 22)
/* Fuzzing builds compute CRCs but let mismatches through, so that mutated entries reach
 * the parsers behind the zip (pickle, storages) instead of all failing here. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define ZIP_CRC_FATAL 0
#else
#define ZIP_CRC_FATAL 1
#endif

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

/* True when [off, off+n) lies inside the buffer (overflow-safe). */
static bool in_buf(const s2_zip *z, uint64_t off, uint64_t n) {
    return off <= z->len && n <= z->len - off;
}

/* Finds the end-of-central-directory record, scanning back over a comment of up to
 * 64 KiB. Returns its offset or -1. */
static int64_t find_eocd(const s2_zip *z) {
    if (z->len < 22) return -1;
    size_t lo = z->len - 22 > 65535 ? z->len - 22 - 65535 : 0;
    for (size_t at = z->len - 22 + 1; at-- > lo;) {
        if (rd32(z->buf + at) == SIG_EOCD && at + 22 + rd16(z->buf + at + 20) <= z->len)
            return (int64_t)at;
    }
    return -1;
}

/* Central directory location and entry count, from the EOCD or its ZIP64 record. */
static int read_eocd(const s2_zip *z, uint64_t *cd_off, uint64_t *cd_size, uint64_t *count) {
    int64_t e = find_eocd(z);
    if (e < 0) {
        if (z->len >= 4 && rd32(z->buf) == SIG_LOCAL)
            return s2_err(SAM2C_ERR_FORMAT, "%s: truncated zip (no end of central directory record)", z->name);
        return s2_err(SAM2C_ERR_FORMAT, "%s: not a zip file (no end of central directory record)", z->name);
    }
    const uint8_t *p = z->buf + e;
    if (rd16(p + 4) != 0 || rd16(p + 6) != 0)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", z->name);
    *count = rd16(p + 10);
    *cd_size = rd32(p + 12);
    *cd_off = rd32(p + 16);
    bool need64 = *count == 0xFFFF || *cd_size == 0xFFFFFFFFu || *cd_off == 0xFFFFFFFFu;
    bool has_loc = e >= 20 && rd32(z->buf + e - 20) == SIG_LOC64;
    if (!has_loc) {
        if (need64) return s2_err(SAM2C_ERR_FORMAT, "%s: truncated zip (missing ZIP64 locator)", z->name);
        return SAM2C_OK;
    }
    uint64_t r = rd64(z->buf + e - 20 + 8);
    if (!in_buf(z, r, 56) || rd32(z->buf + r) != SIG_EOCD64)
        return s2_err(SAM2C_ERR_FORMAT, "%s: truncated zip (bad ZIP64 end of central directory at %llu)",
                      z->name, (unsigned long long)r);
    p = z->buf + r;
    *count = rd64(p + 32);
    *cd_size = rd64(p + 40);
    *cd_off = rd64(p + 48);
    return SAM2C_OK;
}

/* Applies the ZIP64 extended-information extra field (id 1) to the fields that hold
 * their 0xFFFFFFFF marker, in the order the spec lists them. */
static int apply_zip64(const s2_zip *z, const uint8_t *ex, size_t n, s2_zip_entry *e,
                       bool want_size, bool want_comp, bool want_off, uint64_t *off) {
    while (n >= 4) {
        uint16_t id = rd16(ex), sz = rd16(ex + 2);
        if ((size_t)sz + 4 > n) break;
        if (id == 1) {
            const uint8_t *q = ex + 4;
            size_t left = sz;
            if (want_size) { if (left < 8) goto bad; e->size = rd64(q); q += 8; left -= 8; }
            if (want_comp) { if (left < 8) goto bad; e->comp_size = rd64(q); q += 8; left -= 8; }
            if (want_off) { if (left < 8) goto bad; *off = rd64(q); }
            return SAM2C_OK;
        }
        ex += 4 + sz;
        n -= 4 + (size_t)sz;
    }
    if (!want_size && !want_comp && !want_off) return SAM2C_OK;
bad:
    return s2_err(SAM2C_ERR_FORMAT, "%s: zip entry '%s': bad ZIP64 extra field", z->name, e->name);
}

/* Local header at `off`: checks it and finds where the entry's data starts. */
static int read_local(const s2_zip *z, uint64_t off, s2_zip_entry *e) {
    if (!in_buf(z, off, 30))
        return s2_err(SAM2C_ERR_FORMAT, "%s: truncated zip (local header of '%s' at %llu beyond the file)",
                      z->name, e->name, (unsigned long long)off);
    const uint8_t *p = z->buf + off;
    if (rd32(p) != SIG_LOCAL)
        return s2_err(SAM2C_ERR_FORMAT, "%s: corrupt zip (bad local header signature for '%s')", z->name, e->name);
    e->data_offset = off + 30 + rd16(p + 26) + rd16(p + 28);
    if (!in_buf(z, e->data_offset, e->comp_size))
        return s2_err(SAM2C_ERR_FORMAT, "%s: truncated zip (data of '%s' runs past the end of the file)",
                      z->name, e->name);
    return SAM2C_OK;
}

/* One central directory record at *pos; advances *pos. */
static int read_central(const s2_zip *z, uint64_t *pos, uint64_t cd_end, s2_zip_entry *e) {
    if (*pos + 46 > cd_end || rd32(z->buf + *pos) != SIG_CENTRAL)
        return s2_err(SAM2C_ERR_FORMAT, "%s: corrupt zip (bad central directory record at %llu)", z->name,
                      (unsigned long long)*pos);
    const uint8_t *p = z->buf + *pos;
    uint16_t flags = rd16(p + 8), nlen = rd16(p + 28), xlen = rd16(p + 30), clen = rd16(p + 32);
    if (*pos + 46 + nlen + xlen + clen > cd_end)
        return s2_err(SAM2C_ERR_FORMAT, "%s: truncated zip (central directory record at %llu)", z->name,
                      (unsigned long long)*pos);
    e->name = s2_malloc((size_t)nlen + 1);
    if (!e->name) return SAM2C_ERR_NOMEM;
    memcpy(e->name, p + 46, nlen);
    e->name[nlen] = 0;
    e->method = rd16(p + 10);
    e->crc = rd32(p + 16);
    e->comp_size = rd32(p + 20);
    e->size = rd32(p + 24);
    uint64_t off = rd32(p + 42);
    if (flags & 1) return s2_err(SAM2C_ERR_UNSUPPORTED, "%s: zip entry '%s' is encrypted", z->name, e->name);
    if (e->method != 0 && e->method != 8)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "%s: zip entry '%s' uses compression method %u", z->name,
                      e->name, e->method);
    S2_CHECK(apply_zip64(z, p + 46 + nlen, xlen, e, e->size == 0xFFFFFFFFu,
                         e->comp_size == 0xFFFFFFFFu, off == 0xFFFFFFFFu, &off));
    if (e->method == 0 && e->size != e->comp_size)
        return s2_err(SAM2C_ERR_FORMAT, "%s: zip entry '%s': stored sizes disagree", z->name, e->name);
    *pos += 46 + (uint64_t)nlen + xlen + clen;
    return read_local(z, off, e);
}

/* Name index (indices sorted by name) for O(log n) lookups: a bottom-up merge sort,
 * since qsort has no context argument and global state is not allowed. */
static void sort_names(s2_zip *z) {
    int n = z->n, *a = z->by_name, *tmp = malloc((size_t)(n ? n : 1) * sizeof *tmp);
    for (int i = 0; i < n; i++) a[i] = i;
    if (!tmp) { /* fall back: lookups stay correct through linear search */
        free(z->by_name);
        z->by_name = NULL;
        return;
    }
    for (int w = 1; w < n; w *= 2) {
        for (int lo = 0; lo < n; lo += 2 * w) {
            int mid = S2_MIN(lo + w, n), hi = S2_MIN(lo + 2 * w, n), i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = strcmp(z->entries[a[j]].name, z->entries[a[i]].name) < 0 ? a[j++] : a[i++];
            while (i < mid) tmp[k++] = a[i++];
            while (j < hi) tmp[k++] = a[j++];
        }
        memcpy(a, tmp, (size_t)n * sizeof *a);
    }
    free(tmp);
}

/* EOCD -> central directory -> every local header, all range-checked. */
int s2_zip_open(s2_zip *z, const uint8_t *buf, size_t len, const char *name) {
    memset(z, 0, sizeof *z);
    z->buf = buf;
    z->len = buf ? len : 0;
    z->name = name ? name : "zip";
    uint64_t cd_off = 0, cd_size = 0, count = 0;
    S2_CHECK(read_eocd(z, &cd_off, &cd_size, &count));
    if (!in_buf(z, cd_off, cd_size))
        return s2_err(SAM2C_ERR_FORMAT, "%s: truncated zip (central directory at %llu+%llu beyond the file)",
                      z->name, (unsigned long long)cd_off, (unsigned long long)cd_size);
    if (count > ZIP_MAX_ENTRIES || count > cd_size / 46)
        return s2_err(SAM2C_ERR_FORMAT, "%s: corrupt zip (%llu entries in a %llu-byte central directory)",
                      z->name, (unsigned long long)count, (unsigned long long)cd_size);
    z->entries = s2_calloc(count ? count : 1, sizeof *z->entries);
    z->by_name = s2_calloc(count ? count : 1, sizeof *z->by_name);
    if (!z->entries || !z->by_name) { s2_zip_close(z); return SAM2C_ERR_NOMEM; }
    uint64_t pos = cd_off, end = cd_off + cd_size;
    for (uint64_t i = 0; i < count; i++) {
        z->n = (int)i + 1; /* so close frees the name */
        int rc = read_central(z, &pos, end, &z->entries[i]);
        if (rc) { s2_zip_close(z); return rc; }
    }
    sort_names(z);
    return SAM2C_OK;
}

void s2_zip_close(s2_zip *z) {
    if (!z) return;
    for (int i = 0; i < z->n; i++) free(z->entries[i].name);
    free(z->entries);
    free(z->by_name);
    z->entries = NULL;
    z->by_name = NULL;
    z->n = 0;
}

/* Binary search over the sorted name index. */
int s2_zip_find(const s2_zip *z, const char *name) {
    if (!z || !name) return -1;
    if (!z->by_name) {
        for (int i = 0; i < z->n; i++)
            if (strcmp(z->entries[i].name, name) == 0) return i;
        return -1;
    }
    int lo = 0, hi = z->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, idx = z->by_name[mid];
        int c = strcmp(z->entries[idx].name, name);
        if (c == 0) return idx;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* Raw-deflate stream -> dst, in chunks because zlib counts in 32-bit units. */
int s2_zip_inflate(const s2_zip *z, int i, uint8_t *dst) {
    const s2_zip_entry *e = &z->entries[i];
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK)
        return s2_err(SAM2C_ERR_NOMEM, "%s: zlib initialisation failed", z->name);
    const uint8_t *in = z->buf + e->data_offset;
    uint64_t in_left = e->comp_size, out_left = e->size;
    int zr = Z_OK;
    s.next_out = dst;
    s.next_in = (Bytef *)in;
    while (zr == Z_OK) {
        if (s.avail_in == 0 && in_left) {
            s.avail_in = (uInt)S2_MIN(in_left, (uint64_t)1 << 30);
            in_left -= s.avail_in;
        }
        if (s.avail_out == 0 && out_left) {
            s.avail_out = (uInt)S2_MIN(out_left, (uint64_t)1 << 30);
            out_left -= s.avail_out;
        }
        zr = inflate(&s, Z_NO_FLUSH);
        if (zr == Z_BUF_ERROR && (s.avail_in || in_left) && (s.avail_out || out_left)) zr = Z_OK;
    }
    bool ok = zr == Z_STREAM_END && s.avail_out == 0 && out_left == 0;
    inflateEnd(&s);
    if (!ok)
        return s2_err(SAM2C_ERR_FORMAT, "%s: zip entry '%s': corrupt deflate data", z->name, e->name);
    return SAM2C_OK;
}

/* Stored: a pointer into the buffer; deflated: inflated into a new buffer. */
int s2_zip_read(const s2_zip *z, int i, bool check_crc, const uint8_t **data, uint8_t **owned) {
    *data = NULL;
    *owned = NULL;
    if (!z || i < 0 || i >= z->n) return s2_err(SAM2C_ERR_ARG, "zip: entry index out of range");
    const s2_zip_entry *e = &z->entries[i];
    const uint8_t *d = z->buf + e->data_offset;
    if (e->method == 8) {
        /* deflate expands at most ~1032:1; refuse sizes no stream could produce */
        if (e->size / 1032 > e->comp_size + 1)
            return s2_err(SAM2C_ERR_FORMAT, "%s: zip entry '%s': implausible size %llu", z->name, e->name,
                          (unsigned long long)e->size);
        if (e->size > SIZE_MAX - 1) return s2_err(SAM2C_ERR_NOMEM, "%s: zip entry too large", z->name);
        uint8_t *o = s2_malloc((size_t)e->size);
        if (!o) return SAM2C_ERR_NOMEM;
        int rc = s2_zip_inflate(z, i, o);
        if (rc) { free(o); return rc; }
        d = o;
        *owned = o;
    }
    if (check_crc) {
        uLong c = crc32(0L, Z_NULL, 0);
        for (uint64_t k = 0; k < e->size;) {
            uInt part = (uInt)S2_MIN(e->size - k, (uint64_t)1 << 30);
            c = crc32(c, d + k, part);
            k += part;
        }
        if ((uint32_t)c != e->crc && ZIP_CRC_FATAL) {
            free(*owned);
            *owned = NULL;
            return s2_err(SAM2C_ERR_FORMAT, "%s: zip entry '%s': CRC mismatch (corrupt file)", z->name, e->name);
        }
    }
    *data = d;
    return SAM2C_OK;
}
