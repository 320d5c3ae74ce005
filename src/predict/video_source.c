/* Frame sources of a video session: decoded frames in memory, a folder of JPEGs, a video
 * file, a live stream. Letters: S model input size, W, H decoded frame size. */
#include "predict/video_source.h"
#include "core/s2.h"
#include "io/image.h"
#include "io/video_decode.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct s2_vsource {
    s2_vsrc_kind kind;
    int S, n;                 /* model input size; frames known */
    size_t per;               /* S * S * 3 bytes per frame */
    int cap;                  /* slots: n (memory), keep (stream), cache (folder, file) */
    uint8_t *px;              /* [cap, S, S, 3] resized frames */
    int *slot_idx;            /* [cap] frame in each slot, -1 empty (folder, file) */
    uint64_t *stamp;          /* [cap] last use, for LRU eviction (folder, file) */
    uint64_t clock;
    char *dir;                /* folder */
    char **files;             /* [n] file names inside dir */
    char *path;               /* file */
    int *pos;                 /* [n] stream positions, NULL = identity */
    int64_t *pts;             /* [n] timestamps, NULL = no seeking */
    bool *key;                /* [n] key frames */
    s2_vreader *r;            /* open decoder, NULL until needed */
    int r_last;               /* stream position of the decoder's last frame (-1 none) */
};

/* The common part: slots for `cap` frames. */
static int src_new(s2_vsrc_kind kind, int S, int cap, s2_vsource **out) {
    *out = NULL;
    if (S <= 0 || cap <= 0) return s2_err(SAM2C_ERR_ARG, "video source: bad size %d or %d frames", S, cap);
    s2_vsource *s = s2_calloc(1, sizeof *s);
    if (!s) return SAM2C_ERR_NOMEM;
    s->kind = kind;
    s->S = S;
    s->per = (size_t)S * S * 3;
    s->cap = cap;
    s->r_last = -1;
    s->px = s2_malloc(s->per * (size_t)cap);
    s->slot_idx = s2_malloc(sizeof(int) * (size_t)cap);
    s->stamp = s2_calloc((size_t)cap, sizeof(uint64_t));
    if (!s->px || !s->slot_idx || !s->stamp) {
        s2_vsource_free(s);
        return SAM2C_ERR_NOMEM;
    }
    for (int i = 0; i < cap; i++) s->slot_idx[i] = -1;
    *out = s;
    return 0;
}

void s2_vsource_free(s2_vsource *s) {
    if (!s) return;
    for (int i = 0; s->files && i < s->n; i++) free(s->files[i]);
    free(s->files);
    free(s->dir);
    free(s->path);
    free(s->pos);
    free(s->pts);
    free(s->key);
    s2_vreader_free(s->r);
    free(s->px);
    free(s->slot_idx);
    free(s->stamp);
    free(s);
}

// ref: sam2/utils/misc.py _load_img_as_tensor (PIL resize to image_size x image_size)
static int resize_into(const s2_vsource *s, uint8_t *dst, const uint8_t *rgb, int w, int h) {
    return s2_pil_resize_bicubic_u8_checked(dst, s->S, s->S, rgb, w, h, 3);
}

int s2_vsource_memory(int S, int n, const uint8_t *const *rgb, int w, int h, s2_vsource **out) {
    if (n <= 0 || !rgb || w <= 0 || h <= 0) return s2_err(SAM2C_ERR_ARG, "video: no frames given");
    for (int i = 0; i < n; i++)
        if (!rgb[i]) return s2_err(SAM2C_ERR_ARG, "video: frame %d is missing", i);
    s2_vsource *s;
    S2_CHECK(src_new(S2_VSRC_MEMORY, S, n, &s));
    s->n = n;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) rc = resize_into(s, s->px + s->per * (size_t)i, rgb[i], w, h);
    if (rc < 0) { s2_vsource_free(s); return rc; }
    *out = s;
    return 0;
}

int s2_vsource_dir(int S, const char *dir, const char *const *files, int n, int cache, s2_vsource **out) {
    if (!dir || !files || n <= 0) return s2_err(SAM2C_ERR_ARG, "video: no frame files given");
    s2_vsource *s;
    S2_CHECK(src_new(S2_VSRC_DIR, S, cache, &s));
    int rc = (s->dir = s2_strdup(dir)) && (s->files = s2_calloc((size_t)n, sizeof(char *))) ? 0 : SAM2C_ERR_NOMEM;
    for (int i = 0; i < n && rc == 0; i++, s->n = i)
        if (!(s->files[i] = s2_strdup(files[i]))) rc = SAM2C_ERR_NOMEM;
    if (rc < 0) { s2_vsource_free(s); return rc; }
    *out = s;
    return 0;
}

/* A copy of n items of `size` bytes (NULL stays NULL); false when out of memory. */
static bool dup_array(void **dst, const void *src, size_t n, size_t size) {
    *dst = NULL;
    if (!src) return true;
    if (!(*dst = s2_malloc(n * size))) return false;
    memcpy(*dst, src, n * size);
    return true;
}

/* True when the timestamps allow seeking: known and strictly ascending. */
static bool seekable(const int64_t *pts, int n) {
    for (int i = 0; pts && i < n; i++)
        if (pts[i] == INT64_MIN || (i > 0 && pts[i] <= pts[i - 1])) return false;
    return pts != NULL;
}

int s2_vsource_file(int S, const char *path, const int *pos, const int64_t *pts, const bool *key, int n,
                    int cache, s2_vsource **out) {
    if (!path || n <= 0) return s2_err(SAM2C_ERR_ARG, "video: no video file given");
    for (int i = 1; pos && i < n; i++)
        if (pos[i] <= pos[i - 1]) return s2_err(SAM2C_ERR_ARG, "%s: frame positions must ascend", path);
    s2_vsource *s;
    S2_CHECK(src_new(S2_VSRC_FILE, S, cache, &s));
    s->n = n;
    const bool seek = key && seekable(pts, n);
    int rc = (s->path = s2_strdup(path)) && dup_array((void **)&s->pos, pos, (size_t)n, sizeof(int)) &&
                     dup_array((void **)&s->pts, seek ? pts : NULL, (size_t)n, sizeof(int64_t)) &&
                     dup_array((void **)&s->key, seek ? key : NULL, (size_t)n, sizeof(bool))
                 ? 0
                 : SAM2C_ERR_NOMEM;
    if (rc < 0) { s2_vsource_free(s); return rc; }
    *out = s;
    return 0;
}

int s2_vsource_stream(int S, int keep, s2_vsource **out) {
    return src_new(S2_VSRC_STREAM, S, keep, out);
}

s2_vsrc_kind s2_vsource_kind(const s2_vsource *s) { return s->kind; }
int s2_vsource_count(const s2_vsource *s) { return s ? s->n : 0; }

int s2_vsource_first_kept(const s2_vsource *s) {
    if (!s || s->kind != S2_VSRC_STREAM) return 0;
    return S2_MAX(0, s->n - s->cap);
}

void s2_vsource_held(const s2_vsource *s, int *frames, size_t *bytes) {
    int k = 0;
    if (s && (s->kind == S2_VSRC_MEMORY || s->kind == S2_VSRC_STREAM)) k = S2_MIN(s->n, s->cap);
    for (int i = 0; s && (s->kind == S2_VSRC_DIR || s->kind == S2_VSRC_FILE) && i < s->cap; i++) k += s->slot_idx[i] >= 0;
    if (frames) *frames = k;
    if (bytes) *bytes = s ? (size_t)k * s->per : 0;
}

int s2_vsource_push(s2_vsource *s, const uint8_t *rgb, int w, int h) {
    if (!s || s->kind != S2_VSRC_STREAM) return s2_err(SAM2C_ERR_STATE, "push frame: the session is not a live stream");
    if (!rgb || w <= 0 || h <= 0) return s2_err(SAM2C_ERR_ARG, "push frame: no frame given (%dx%d)", w, h);
    if (s->n == 0x7fffffff) return s2_err(SAM2C_ERR_LIMIT, "push frame: too many frames");
    S2_CHECK(resize_into(s, s->px + s->per * (size_t)(s->n % s->cap), rgb, w, h));
    return s->n++;
}

int s2_vsource_check(const s2_vsource *s, int idx, const char *what) {
    if (!s || s->n == 0) return s2_err(SAM2C_ERR_STATE, "%s: no frames loaded", what);
    if (idx < 0 || idx >= s->n) return s2_err(SAM2C_ERR_ARG, "%s: frame %d outside [0, %d)", what, idx, s->n);
    const int first = s2_vsource_first_kept(s);
    if (idx < first)
        return s2_err(SAM2C_ERR_LIMIT, "%s: frame %d of a live stream is outside the memory window (frames %d..%d are kept)",
                      what, idx, first, s->n - 1);
    return 0;
}

/* The cached slot of frame idx, -1 when absent. */
static int slot_of(const s2_vsource *s, int idx) {
    for (int i = 0; i < s->cap; i++)
        if (s->slot_idx[i] == idx) return i;
    return -1;
}

/* The least recently used slot, now assigned to frame idx (its pixels to be written). */
static uint8_t *claim_slot(s2_vsource *s, int idx) {
    int best = 0;
    for (int i = 1; i < s->cap; i++)
        if (s->stamp[i] < s->stamp[best]) best = i;
    s->slot_idx[best] = idx;
    s->stamp[best] = ++s->clock;
    return s->px + s->per * (size_t)best;
}

/* Decodes folder frame idx into a cache slot. */
static int read_dir_frame(s2_vsource *s, int idx) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", s->dir, s->files[idx]);
    s2_image_opts o;
    s2_image_opts_default(&o);
    o.apply_exif = false; // PIL.Image.open does not rotate
    s2_image im = {0};
    S2_CHECK(s2_image_load(path, &o, &im));
    uint8_t *dst = claim_slot(s, idx);
    int rc = resize_into(s, dst, im.px, im.w, im.h);
    s2_image_free(&im);
    if (rc < 0) s->slot_idx[slot_of(s, idx)] = -1;
    return rc;
}

/* Frame index of stream position p, -1 when p is not a frame (a skipped one). */
static int frame_at_pos(const s2_vsource *s, int p) {
    if (!s->pos) return p < s->n ? p : -1;
    int lo = 0, hi = s->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (s->pos[mid] == p) return mid;
        if (s->pos[mid] < p) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* Stream position of frame i. */
static int pos_of(const s2_vsource *s, int i) { return s->pos ? s->pos[i] : i; }

/* The key frame at or before frame idx, -1 when seeking is off. */
static int key_before(const s2_vsource *s, int idx) {
    int k = idx;
    while (s->key && k >= 0 && !s->key[k]) k--;
    return s->key ? k : -1;
}

/* Caches frame j from rgb when it lies in [from, idx] and is not cached yet. */
static int keep_frame(s2_vsource *s, int j, int from, int idx, const uint8_t *rgb) {
    int w, h;
    if (j < 0 || j < from || j > idx || slot_of(s, j) >= 0) return 0;
    s2_vreader_info(s->r, &w, &h, NULL);
    return resize_into(s, claim_slot(s, j), rgb, w, h);
}

/* Seeks the decoder to key frame k (caching it when in [from, idx]): 1 done, 0 the file
 * would not (seeking is then off for good: the caller re-opens the file instead). */
static int seek_key(s2_vsource *s, int k, int from, int idx) {
    const uint8_t *rgb = NULL;
    if (!s->r) S2_CHECK(s2_vreader_open(s->path, &s->r));
    if (s2_vreader_seek_key(s->r, s->pts[k], pos_of(s, k), &rgb) != 1) {
        free(s->key);
        s->key = NULL;
        s2_vreader_free(s->r);
        s->r = NULL;
        s->r_last = -1;
        return 0;
    }
    s->r_last = pos_of(s, k);
    S2_CHECK(keep_frame(s, k, from, idx, rgb));
    return 1;
}

/* Decodes file frame idx: forward from the decoder's position, after a seek to the key
 * frame before idx when idx lies behind the decoder or past that key frame, or from the
 * start of a re-opened file; the frames just before idx are cached on the way when
 * going back, so that a reverse pass seeks or re-opens once per `cap` frames. */
static int read_file_frame(s2_vsource *s, int idx) {
    const int p = pos_of(s, idx), k = key_before(s, idx);
    const bool back = !s->r || s->r_last >= p;
    const int keep_from = back ? idx - (s->cap - 1) : idx;
    int jumped = 0;
    if (k >= 0 && (back || pos_of(s, k) > s->r_last + 1)) S2_CHECK(jumped = seek_key(s, k, keep_from, idx));
    if (jumped && k == idx) return 0;
    if (!jumped && (back || !s->r)) {
        s2_vreader_free(s->r);
        s->r = NULL;
        s->r_last = -1;
        S2_CHECK(s2_vreader_open(s->path, &s->r));
    }
    for (;;) {
        const uint8_t *rgb = NULL;
        int i = -1;
        int rc = s2_vreader_next(s->r, &rgb, &i);
        if (rc == 0) return s2_err(SAM2C_ERR_IO, "%s: frame %d is no longer in the file (changed since it was opened?)", s->path, idx);
        s->r_last = i;
        if (rc < 0 && i == p) return rc;
        if (i > p) return s2_err(SAM2C_ERR_IO, "%s: frame %d can no longer be decoded (changed since it was opened?)", s->path, idx);
        if (rc < 0) continue; // a frame the scan skipped too
        S2_CHECK(keep_frame(s, frame_at_pos(s, i), keep_from, idx, rgb));
        if (i == p) return 0;
    }
}

int s2_vsource_get(s2_vsource *s, int idx, const uint8_t **rgb) {
    *rgb = NULL;
    S2_CHECK(s2_vsource_check(s, idx, "video"));
    if (s->kind == S2_VSRC_MEMORY || s->kind == S2_VSRC_STREAM) {
        *rgb = s->px + s->per * (size_t)(idx % s->cap);
        return 0;
    }
    int k = slot_of(s, idx);
    if (k < 0) {
        S2_CHECK(s->kind == S2_VSRC_DIR ? read_dir_frame(s, idx) : read_file_frame(s, idx));
        k = slot_of(s, idx);
    }
    s->stamp[k] = ++s->clock;
    *rgb = s->px + s->per * (size_t)k;
    return 0;
}
