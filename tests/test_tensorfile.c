/* Checkpoint readers: the micro fixtures in both formats load to identical tensors
 * with known values; the safetensors writer reproduces a fixture byte for byte; and
 * every malformed file (built here, in memory or under s2t_tmpdir) gives a one-line
 * error naming the file and the problem, without crashing. */
#include "harness.h"
#include "io/tensorfile.h"
#include "io/json.h"
#include "io/pickle.h"
#include "io/zip.h"
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ======================= byte builders ======================= */

typedef struct bb { uint8_t *d; size_t n, cap; } bb;

static void bb_put(bb *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->d = realloc(b->d, b->cap);
    }
    memcpy(b->d + b->n, p, n);
    b->n += n;
}
static void bb_u8(bb *b, unsigned v) { uint8_t c = (uint8_t)v; bb_put(b, &c, 1); }
static void bb_le(bb *b, uint64_t v, int n) { for (int i = 0; i < n; i++) bb_u8(b, (unsigned)(v >> (8 * i)) & 0xff); }
static void bb_str(bb *b, const char *s) { bb_put(b, s, strlen(s)); }

/* ---- pickle builder (protocol 2 opcodes) ---- */

static void pk_s(bb *p, const char *s) { bb_u8(p, 'X'); bb_le(p, strlen(s), 4); bb_str(p, s); }
static void pk_i(bb *p, int64_t v) { bb_u8(p, 'J'); bb_le(p, (uint64_t)v, 4); }
static void pk_g(bb *p, const char *mod, const char *name) {
    bb_u8(p, 'c'); bb_str(p, mod); bb_u8(p, '\n'); bb_str(p, name); bb_u8(p, '\n');
}

typedef struct tdesc {
    const char *name, *storage_type, *key;
    int64_t numel, offset;
    int ndim;
    int64_t size[4], stride[4];
} tdesc;

/* _rebuild_tensor_v2(('storage', type, key, 'cpu', numel), offset, size, stride, False, OrderedDict()) */
static void pk_tensor(bb *p, const tdesc *t) {
    pk_g(p, "torch._utils", "_rebuild_tensor_v2");
    bb_u8(p, '(');
    bb_u8(p, '('); pk_s(p, "storage"); pk_g(p, "torch", t->storage_type); pk_s(p, t->key);
    pk_s(p, "cpu"); pk_i(p, t->numel); bb_u8(p, 't'); bb_u8(p, 'Q');
    pk_i(p, t->offset);
    bb_u8(p, '('); for (int d = 0; d < t->ndim; d++) pk_i(p, t->size[d]); bb_u8(p, 't');
    bb_u8(p, '('); for (int d = 0; d < t->ndim; d++) pk_i(p, t->stride[d]); bb_u8(p, 't');
    bb_u8(p, 0x89);
    pk_g(p, "collections", "OrderedDict"); bb_u8(p, ')'); bb_u8(p, 'R');
    bb_u8(p, 't');
    bb_u8(p, 'R');
}

/* {"model": OrderedDict(name -> tensor)} (or the bare OrderedDict). */
static bb pk_state_dict(const tdesc *t, int n, bool wrapped) {
    bb p = {0};
    bb_u8(&p, 0x80); bb_u8(&p, 2);
    if (wrapped) { bb_u8(&p, '}'); pk_s(&p, "model"); }
    pk_g(&p, "collections", "OrderedDict"); bb_u8(&p, ')'); bb_u8(&p, 'R');
    bb_u8(&p, '(');
    for (int i = 0; i < n; i++) { pk_s(&p, t[i].name); pk_tensor(&p, &t[i]); }
    bb_u8(&p, 'u');
    if (wrapped) bb_u8(&p, 's');
    bb_u8(&p, '.');
    return p;
}

/* ---- zip builder (stored or deflated entries, optional ZIP64 records) ---- */

typedef struct zent { const char *name; const void *data; size_t len; bool deflate; } zent;

static size_t zb_deflate(const void *src, size_t n, uint8_t **out) {
    z_stream s = {0};
    deflateInit2(&s, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    size_t cap = deflateBound(&s, (uLong)n);
    *out = malloc(cap);
    s.next_in = (Bytef *)src; s.avail_in = (uInt)n;
    s.next_out = *out; s.avail_out = (uInt)cap;
    deflate(&s, Z_FINISH);
    size_t got = cap - s.avail_out;
    deflateEnd(&s);
    return got;
}

static bb zip_build(const zent *e, int n, bool zip64) {
    bb z = {0}, cd = {0};
    for (int i = 0; i < n; i++) {
        uint8_t *comp = NULL;
        size_t clen = e[i].deflate ? zb_deflate(e[i].data, e[i].len, &comp) : e[i].len;
        uint32_t crc = (uint32_t)crc32(0, e[i].data, (uInt)e[i].len);
        size_t off = z.n, nl = strlen(e[i].name);
        size_t pad = (64 - (off + 30 + nl + 4) % 64) % 64 + 4; /* torch-style 64-byte alignment */
        bb_le(&z, 0x04034b50, 4); bb_le(&z, 20, 2); bb_le(&z, 0, 2); bb_le(&z, e[i].deflate ? 8 : 0, 2);
        bb_le(&z, 0, 4); bb_le(&z, crc, 4); bb_le(&z, clen, 4); bb_le(&z, e[i].len, 4);
        bb_le(&z, nl, 2); bb_le(&z, pad, 2); bb_str(&z, e[i].name);
        bb_le(&z, 0xB5FA, 2); bb_le(&z, pad - 4, 2);
        for (size_t k = 4; k < pad; k++) bb_u8(&z, 'Z');
        bb_put(&z, e[i].deflate ? comp : e[i].data, clen);
        bb_le(&cd, 0x02014b50, 4); bb_le(&cd, 45, 2); bb_le(&cd, 45, 2); bb_le(&cd, 0, 2);
        bb_le(&cd, e[i].deflate ? 8 : 0, 2); bb_le(&cd, 0, 4); bb_le(&cd, crc, 4);
        bb_le(&cd, zip64 ? 0xFFFFFFFFu : clen, 4); bb_le(&cd, zip64 ? 0xFFFFFFFFu : e[i].len, 4);
        bb_le(&cd, nl, 2); bb_le(&cd, zip64 ? 28 : 0, 2); bb_le(&cd, 0, 2); bb_le(&cd, 0, 2);
        bb_le(&cd, 0, 2); bb_le(&cd, 0, 4); bb_le(&cd, zip64 ? 0xFFFFFFFFu : off, 4);
        bb_str(&cd, e[i].name);
        if (zip64) { bb_le(&cd, 1, 2); bb_le(&cd, 24, 2); bb_le(&cd, e[i].len, 8); bb_le(&cd, clen, 8); bb_le(&cd, off, 8); }
        free(comp);
    }
    size_t cd_off = z.n;
    bb_put(&z, cd.d, cd.n);
    if (zip64) {
        size_t r = z.n;
        bb_le(&z, 0x06064b50, 4); bb_le(&z, 44, 8); bb_le(&z, 45, 2); bb_le(&z, 45, 2);
        bb_le(&z, 0, 4); bb_le(&z, 0, 4); bb_le(&z, (uint64_t)n, 8); bb_le(&z, (uint64_t)n, 8);
        bb_le(&z, cd.n, 8); bb_le(&z, cd_off, 8);
        bb_le(&z, 0x07064b50, 4); bb_le(&z, 0, 4); bb_le(&z, r, 8); bb_le(&z, 1, 4);
    }
    bb_le(&z, 0x06054b50, 4); bb_le(&z, 0, 2); bb_le(&z, 0, 2);
    bb_le(&z, zip64 ? 0xFFFF : (unsigned)n, 2); bb_le(&z, zip64 ? 0xFFFF : (unsigned)n, 2);
    bb_le(&z, zip64 ? 0xFFFFFFFFu : cd.n, 4); bb_le(&z, zip64 ? 0xFFFFFFFFu : cd_off, 4);
    bb_le(&z, 7, 2); bb_str(&z, "comment"); /* a comment to scan over */
    free(cd.d);
    return z;
}

/* ======================= helpers ======================= */

static const char *tmp_path(const char *name) {
    static char b[4][512];
    static int k;
    char *p = b[k++ & 3];
    snprintf(p, 512, "%s/%s", s2t_tmpdir(), name);
    return p;
}

static void write_bytes(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    if (n) fwrite(d, 1, n, f);
    fclose(f);
}

/* The open must fail; the message must be one line, start with `prefix`, contain `want`. */
static void expect_err(int rc, s2_tensorfile *f, const char *prefix, const char *want) {
    const char *m = sam2c_last_error();
    CHECK_MSG(rc < 0 && f == NULL, "expected failure for '%s'", want);
    CHECK_MSG(strncmp(m, prefix, strlen(prefix)) == 0, "message '%s' does not start with '%s'", m, prefix);
    CHECK_MSG(strstr(m, want) != NULL, "message '%s' lacks '%s'", m, want);
    CHECK_MSG(strchr(m, '\n') == NULL, "message '%s' is not one line", m);
    s2_tensorfile_free(f);
}

static float f32_at(const s2_tf_entry *e, int64_t i) { return ((const float *)e->t.data)[i]; }

/* ======================= fixtures ======================= */

TEST(micro_pt_and_safetensors_agree) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    s2_tensorfile *pt = NULL, *st = NULL;
    REQUIRE(s2_tensorfile_open(s2t_fx("micro/model.pt"), &pt) == 0);
    REQUIRE(s2_tensorfile_open(s2t_fx("micro/model.safetensors"), &st) == 0);
    CHECK(pt->format == S2_TF_TORCH_ZIP && st->format == S2_TF_SAFETENSORS);
    CHECK_EQ_INT(pt->n_entries, 359);
    CHECK_EQ_INT(st->n_entries, 359);
    int same = 0, mapped = 0;
    for (int i = 0; i < st->n_entries; i++) {
        const s2_tf_entry *a = &st->entries[i], *b = s2_tensorfile_find(pt, a->name);
        if (!b) { CHECK_MSG(0, "'%s' missing from model.pt", a->name); continue; }
        bool ok = a->t.dtype == S2_F32 && b->t.dtype == S2_F32 &&
                  s2_shape_eq(a->t.shape, a->t.ndim, b->t.shape, b->t.ndim) &&
                  memcmp(a->t.data, b->t.data, s2_tensor_nbytes(&a->t)) == 0;
        CHECK_MSG(ok, "tensor '%s' differs", a->name);
        same += ok;
        mapped += a->mapped && b->mapped && (uintptr_t)b->t.data % 4 == 0;
    }
    CHECK_EQ_INT(same, 359);
    CHECK_EQ_INT(mapped, 359); /* nothing copied */
    CHECK(pt->n_owned == 0 && st->n_owned == 0);
    CHECK(pt->metadata_json == NULL);
    CHECK(st->metadata_json && strstr(st->metadata_json, "\"model_seed\":\"20250101\""));
    CHECK(s2_tensorfile_find(pt, "no.such.tensor") == NULL);
    CHECK(s2_tensorfile_find(pt, "image_encoder.trunk") == NULL);
    s2_tensorfile_free(pt);
    s2_tensorfile_free(st);
}

TEST(micro_known_values) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    const char *files[2] = {"micro/model.pt", "micro/model.safetensors"};
    for (int k = 0; k < 2; k++) {
        s2_tensorfile *f = NULL;
        REQUIRE(s2_tensorfile_open(s2t_fx(files[k]), &f) == 0);
        /* values read independently with python3 (struct over the safetensors bytes) */
        const s2_tf_entry *e = s2_tensorfile_find(f, "image_encoder.trunk.pos_embed");
        REQUIRE(e && e->t.ndim == 4);
        int64_t sh[4] = {1, 32, 7, 7};
        CHECK(s2_shape_eq(e->t.shape, 4, sh, 4));
        CHECK(f32_at(e, 0) == 0.1204380989074707f);
        CHECK(f32_at(e, 1) == -0.02354240231215954f);
        CHECK(f32_at(e, 2) == -0.13333705067634583f);
        CHECK(f32_at(e, 32 * 49 - 1) == 0.06323699653148651f);
        e = s2_tensorfile_find(f, "sam_mask_decoder.pred_obj_score_head.layers.2.bias");
        REQUIRE(e && e->t.ndim == 1 && e->t.shape[0] == 1);
        CHECK(f32_at(e, 0) == 1.624050498008728f);
        e = s2_tensorfile_find(f, "maskmem_tpos_enc");
        REQUIRE(e && e->t.ndim == 4 && e->t.shape[0] == 7 && e->t.shape[3] == 16);
        CHECK(f32_at(e, 0) == 0.009919431991875172f && f32_at(e, 111) == -0.020357612520456314f);
        e = s2_tensorfile_find(f, "image_encoder.trunk.patch_embed.proj.weight");
        REQUIRE(e && e->t.shape[0] == 32 && e->t.shape[1] == 3);
        CHECK(f32_at(e, 2) == 0.18447843194007874f && f32_at(e, 32 * 3 * 49 - 1) == 0.19701814651489258f);
        e = s2_tensorfile_find(f, "no_mem_embed");
        REQUIRE(e && e->t.ndim == 3 && e->t.shape[2] == 64);
        CHECK(f32_at(e, 0) == 0.022961216047406197f && f32_at(e, 63) == -0.0183961670845747f);
        s2_tensorfile_free(f);
    }
}

TEST(fixture_int_dtypes) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    s2_tensorfile *f = NULL;
    REQUIRE(s2_tensorfile_open(s2t_fx("micro/image/truck/case0_point_multimask.safetensors"), &f) == 0);
    const s2_tf_entry *e = s2_tensorfile_find(f, "prompt.point_labels");
    REQUIRE(e && e->t.dtype == S2_I32 && e->t.ndim == 2 && e->t.shape[0] == 1 && e->t.shape[1] == 1);
    CHECK(((const int32_t *)e->t.data)[0] == 1);
    e = s2_tensorfile_find(f, "prompt.point_coords");
    REQUIRE(e && e->t.dtype == S2_F32);
    CHECK(f32_at(e, 0) == 71.11111450195312f && f32_at(e, 1) == 80.0f);
    s2_tensorfile_free(f);
    REQUIRE(s2_tensorfile_open(s2t_fx("micro/video/outputs.safetensors"), &f) == 0);
    CHECK_EQ_INT(f->n_entries, 283);
    e = s2_tensorfile_find(f, "s02.f00.o2.video_mask");
    REQUIRE(e && e->t.dtype == S2_U8 && e->t.shape[0] == 270 && e->t.shape[1] == 480);
    const uint8_t *m = e->t.data;
    int64_t ones = 0, other = 0;
    for (int64_t i = 0; i < 270 * 480; i++) { ones += m[i] == 1; other += m[i] > 1; }
    CHECK_EQ_INT(ones, 125357);
    CHECK_EQ_INT(other, 0);
    CHECK(m[0] == 1);
    s2_tensorfile_free(f);
}

/* Writing the fixture's tensors with its metadata reproduces the file byte for byte. */
TEST(safetensors_writer_reproduces_fixture) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    s2_tensorfile *f = NULL;
    REQUIRE(s2_tensorfile_open(s2t_fx("micro/model.safetensors"), &f) == 0);
    s2_st_item *items = calloc((size_t)f->n_entries, sizeof *items);
    for (int i = 0; i < f->n_entries; i++) { /* reverse order: the writer sorts */
        items[i].name = f->entries[f->n_entries - 1 - i].name;
        items[i].t = f->entries[f->n_entries - 1 - i].t;
    }
    const char *meta[] = {"format", "pt", "source", "sam2.1-micro random weights", "model_seed", "20250101",
                          "init_seed", "13", "perturb_seed", "20250102", "obj_score_bias_offset", "1.9"};
    const char *out = tmp_path("rewrite.safetensors");
    REQUIRE(s2_safetensors_write(out, items, f->n_entries, meta, 6) == 0);
    uint8_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    REQUIRE(s2_read_file(s2t_fx("micro/model.safetensors"), &a, &na) == 0);
    REQUIRE(s2_read_file(out, &b, &nb) == 0);
    CHECK_EQ_INT(na, nb);
    CHECK(na == nb && memcmp(a, b, na) == 0);
    free(a);
    free(b);
    free(items);
    s2_tensorfile_free(f);
}

TEST(safetensors_write_read_all_dtypes) {
    float f32[6] = {1.5f, -2.25f, 3.0f, 0.0f, -0.0f, 1e-30f};
    double f64[2] = {3.141592653589793, -1e300};
    uint16_t f16[3] = {0x3c00, 0xc000, 0x7bff}, bf16[2] = {0x3f80, 0xbf00};
    uint8_t u8[5] = {0, 1, 2, 254, 255}, bl[2] = {1, 0};
    int32_t i32[4] = {-1, 2, -2147483647 - 1, 2147483647};
    int64_t i64[2] = {-5, 1234567890123LL};
    s2_st_item it[] = {
        {"u8", {S2_U8, 1, {5}, u8}}, {"f32", {S2_F32, 2, {2, 3}, f32}}, {"bool", {S2_BOOL, 1, {2}, bl}},
        {"f16", {S2_F16, 1, {3}, f16}}, {"i64", {S2_I64, 1, {2}, i64}}, {"bf16", {S2_BF16, 2, {1, 2}, bf16}},
        {"i32", {S2_I32, 2, {2, 2}, i32}}, {"f64", {S2_F64, 1, {2}, f64}}, {"scalar", {S2_F32, 0, {0}, f32}},
        {"empty", {S2_F32, 2, {0, 4}, NULL}},
    };
    int n = (int)(sizeof it / sizeof it[0]);
    const char *meta[] = {"note", "quote \" and\nnewline", "k", "v"};
    const char *path = tmp_path("all.safetensors");
    REQUIRE(s2_safetensors_write(path, it, n, meta, 2) == 0);
    s2_tensorfile *f = NULL;
    REQUIRE(s2_tensorfile_open(path, &f) == 0);
    CHECK_EQ_INT(f->n_entries, n);
    for (int i = 0; i < n; i++) {
        const s2_tf_entry *e = s2_tensorfile_find(f, it[i].name);
        REQUIRE(e);
        CHECK(e->t.dtype == it[i].t.dtype && s2_shape_eq(e->t.shape, e->t.ndim, it[i].t.shape, it[i].t.ndim));
        size_t nbytes = s2_tensor_nbytes(&it[i].t);
        CHECK_MSG(nbytes == 0 || memcmp(e->t.data, it[i].t.data, nbytes) == 0, "'%s' differs", it[i].name);
        CHECK(e->mapped);
    }
    CHECK(f->metadata_json && strcmp(f->metadata_json, "{\"note\":\"quote \\\" and\\nnewline\",\"k\":\"v\"}") == 0);
    /* layout: 8-byte dtypes first, then 4, 2, 1; names sorted within a size */
    const char *order[] = {"f64", "i64", "empty", "f32", "i32", "scalar", "bf16", "f16", "bool", "u8"};
    uintptr_t prev = 0;
    for (int i = 0; i < n; i++) {
        const s2_tf_entry *e = s2_tensorfile_find(f, order[i]);
        CHECK_MSG((uintptr_t)e->t.data >= prev, "'%s' is out of layout order", order[i]);
        prev = (uintptr_t)e->t.data;
    }
    uint64_t hlen = 0;
    memcpy(&hlen, f->map.data, 8);
    CHECK(hlen % 8 == 0);
    size_t last = 8 + (size_t)hlen - 1;
    while (f->map.data[last] == ' ') last--;
    CHECK(f->map.data[last] == '}' && 8 + hlen - 1 - last < 8);
    s2_tensorfile_free(f);
    /* bad items are refused */
    s2_st_item dup[2] = {{"a", {S2_F32, 1, {1}, f32}}, {"a", {S2_F32, 1, {1}, f32}}};
    CHECK(s2_safetensors_write(path, dup, 2, NULL, 0) == SAM2C_ERR_ARG);
    CHECK(strstr(sam2c_last_error(), "duplicate tensor name 'a'") != NULL);
    s2_st_item nodata[1] = {{"a", {S2_F32, 1, {1}, NULL}}};
    CHECK(s2_safetensors_write(path, nodata, 1, NULL, 0) == SAM2C_ERR_ARG);
    CHECK(s2_safetensors_write(tmp_path("no/such/dir.safetensors"), it, 1, NULL, 0) == SAM2C_ERR_IO);
    CHECK(strstr(sam2c_last_error(), "no/such/dir.safetensors") != NULL);
}

/* ======================= built torch checkpoints ======================= */

/* Opens a built archive from memory under the name "t.pt". */
static int open_zip_mem(const bb *z, s2_tensorfile **f) { return s2_torchzip_parse(z->d, z->n, "t.pt", f); }

/* A 3x4 float storage viewed transposed (stride), with an offset, and an F16/BF16 pair,
 * under a folder name other than "model", stored and deflated, plain and ZIP64. */
TEST(torchzip_strides_offsets_dtypes) {
    float s0[12];
    for (int i = 0; i < 12; i++) s0[i] = (float)i;
    uint16_t h[4] = {0x3c00, 0x4000, 0x4200, 0x4400}; /* 1, 2, 3, 4 in f16 */
    uint16_t bf[2] = {0x3f80, 0xc000};                /* 1, -2 in bf16 */
    tdesc t[] = {
        {"plain", "FloatStorage", "0", 12, 0, 2, {3, 4}, {4, 1}},
        {"transposed", "FloatStorage", "0", 12, 0, 2, {4, 3}, {1, 4}},
        {"offset_row", "FloatStorage", "0", 12, 4, 1, {4}, {1}},
        {"odd_offset", "FloatStorage", "0", 12, 5, 2, {2, 2}, {4, 1}},
        {"every_other", "FloatStorage", "0", 12, 1, 1, {6}, {2}},
        {"scalar", "FloatStorage", "0", 12, 11, 0, {0}, {0}},
        {"half", "HalfStorage", "1", 4, 1, 1, {3}, {1}},
        {"bf", "BFloat16Storage", "2", 2, 0, 2, {2, 1}, {1, 7}},
    };
    int nt = (int)(sizeof t / sizeof t[0]);
    for (int variant = 0; variant < 4; variant++) {
        bool wrapped = variant != 1, deflate = variant == 2, zip64 = variant == 3;
        bb p = pk_state_dict(t, nt, wrapped);
        zent e[] = {{"sam2.1_hiera_tiny/data.pkl", p.d, p.n, deflate},
                    {"sam2.1_hiera_tiny/data/0", s0, sizeof s0, deflate},
                    {"sam2.1_hiera_tiny/data/1", h, sizeof h, deflate},
                    {"sam2.1_hiera_tiny/data/2", bf, sizeof bf, false},
                    {"sam2.1_hiera_tiny/version", "3\n", 2, false}};
        bb z = zip_build(e, 5, zip64);
        s2_tensorfile *f = NULL;
        int rc = open_zip_mem(&z, &f);
        CHECK_MSG(rc == 0, "variant %d: %s", variant, sam2c_last_error());
        if (rc == 0) {
            CHECK_EQ_INT(f->n_entries, nt);
            const s2_tf_entry *a = s2_tensorfile_find(f, "plain");
            CHECK(a && a->t.ndim == 2 && f32_at(a, 11) == 11.0f && a->mapped == !deflate);
            const float want_t[12] = {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11};
            a = s2_tensorfile_find(f, "transposed");
            CHECK(a && !a->mapped && a->t.shape[0] == 4 && memcmp(a->t.data, want_t, sizeof want_t) == 0);
            a = s2_tensorfile_find(f, "offset_row");
            CHECK(a && a->mapped == !deflate && f32_at(a, 0) == 4.0f && f32_at(a, 3) == 7.0f);
            a = s2_tensorfile_find(f, "odd_offset");
            CHECK(a && f32_at(a, 0) == 5 && f32_at(a, 1) == 6 && f32_at(a, 2) == 9 && f32_at(a, 3) == 10);
            a = s2_tensorfile_find(f, "every_other");
            CHECK(a && !a->mapped && f32_at(a, 0) == 1 && f32_at(a, 5) == 11);
            a = s2_tensorfile_find(f, "scalar");
            CHECK(a && a->t.ndim == 0 && f32_at(a, 0) == 11.0f);
            a = s2_tensorfile_find(f, "half");
            CHECK(a && a->t.dtype == S2_F16 && s2_f16_to_f32(((const uint16_t *)a->t.data)[0]) == 2.0f &&
                  s2_f16_to_f32(((const uint16_t *)a->t.data)[2]) == 4.0f);
            a = s2_tensorfile_find(f, "bf");
            CHECK(a && a->t.dtype == S2_BF16 && a->mapped && s2_bf16_to_f32(((const uint16_t *)a->t.data)[1]) == -2.0f);
        }
        s2_tensorfile_free(f);
        free(p.d);
        free(z.d);
    }
}

/* Same checkpoint through the file API, then with _rebuild_parameter and BUILD state. */
TEST(torchzip_file_and_parameter) {
    float s0[4] = {1, 2, 3, 4};
    bb p = {0};
    bb_u8(&p, 0x80); bb_u8(&p, 2);
    pk_g(&p, "collections", "OrderedDict"); bb_u8(&p, ')'); bb_u8(&p, 'R'); bb_u8(&p, 'q'); bb_u8(&p, 0);
    pk_s(&p, "w");
    pk_g(&p, "torch._utils", "_rebuild_parameter");
    tdesc t = {"w", "FloatStorage", "k", 4, 0, 1, {4}, {1}};
    pk_tensor(&p, &t);
    bb_u8(&p, 0x88); /* requires_grad */
    pk_g(&p, "collections", "OrderedDict"); bb_u8(&p, ')'); bb_u8(&p, 'R');
    bb_u8(&p, 0x87); bb_u8(&p, 'R'); /* TUPLE3, REDUCE */
    bb_u8(&p, 's');
    bb_u8(&p, '}'); pk_s(&p, "_metadata"); bb_u8(&p, '}'); bb_u8(&p, 's'); bb_u8(&p, 'b'); /* BUILD state */
    bb_u8(&p, '.');
    zent e[] = {{"archive/data.pkl", p.d, p.n, false}, {"archive/data/k", s0, sizeof s0, false},
                {"archive/byteorder", "little", 6, false}};
    bb z = zip_build(e, 3, false);
    const char *path = tmp_path("param.pt");
    write_bytes(path, z.d, z.n);
    s2_tensorfile *f = NULL;
    REQUIRE(s2_tensorfile_open(path, &f) == 0);
    CHECK(f->format == S2_TF_TORCH_ZIP && f->n_entries == 1);
    const s2_tf_entry *a = s2_tensorfile_find(f, "w");
    CHECK(a && a->mapped && f32_at(a, 3) == 4.0f);
    s2_tensorfile_free(f);
    free(p.d);
    free(z.d);
}

/* ======================= malformed inputs ======================= */

TEST(bad_missing_empty_notzip) {
    s2_tensorfile *f = NULL;
    const char *missing = tmp_path("does_not_exist.pt");
    expect_err(s2_tensorfile_open(missing, &f), f, missing, "No such file or directory");
    const char *empty = tmp_path("empty.pt");
    write_bytes(empty, "", 0);
    expect_err(s2_tensorfile_open(empty, &f), f, empty, "empty file");
    expect_err(s2_safetensors_open(empty, &f), f, empty, "empty file");
    const char *text = tmp_path("text.pt");
    write_bytes(text, "hello, this is a text file\n", 27);
    expect_err(s2_tensorfile_open(text, &f), f, text, "not a PyTorch checkpoint (zip) or safetensors file");
    expect_err(s2_torchzip_open(text, &f), f, text, "not a zip file");
    const char *legacy = tmp_path("legacy.pt");
    write_bytes(legacy, "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);
    expect_err(s2_tensorfile_open(legacy, &f), f, legacy, "legacy pre-1.6 torch.save format");
    uint8_t rnd[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof rnd; i++) { x = x * 1103515245u + 12345u; rnd[i] = (uint8_t)(x >> 16); }
    expect_err(s2_torchzip_parse(rnd, sizeof rnd, "rnd.pt", &f), f, "rnd.pt", "not a zip file");
    expect_err(s2_safetensors_parse(rnd, 5, "rnd.st", &f), f, "rnd.st", "too short");
}

TEST(bad_truncated_zip) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    uint8_t *d = NULL;
    size_t n = 0;
    REQUIRE(s2_read_file(s2t_fx("micro/model.pt"), &d, &n) == 0);
    const char *half = tmp_path("half.pt");
    write_bytes(half, d, n / 2);
    s2_tensorfile *f = NULL;
    expect_err(s2_tensorfile_open(half, &f), f, half, "truncated zip");
    /* every cut point: an error, never a crash */
    for (size_t cut = 1; cut < n; cut += n / 97 + 1) {
        int rc = s2_torchzip_parse(d, cut, "cut.pt", &f);
        CHECK_MSG(rc < 0 && f == NULL, "cut at %zu parsed", cut);
        CHECK(strncmp(sam2c_last_error(), "cut.pt: ", 8) == 0);
        s2_tensorfile_free(f);
        f = NULL;
    }
    /* the central directory points into the missing part */
    size_t keep = n - 200;
    uint8_t *g = malloc(n);
    memcpy(g, d, n);
    memmove(g + n / 2, g + keep, n - keep); /* EOCD region kept, data cut */
    expect_err(s2_torchzip_parse(g, n / 2 + (n - keep), "gap.pt", &f), f, "gap.pt", "truncated zip");
    free(g);
    free(d);
}

/* Builds a one-tensor checkpoint around a custom pickle. */
static bb zip_with_pickle(const bb *p, const void *storage, size_t slen) {
    zent e[] = {{"model/data.pkl", p->d, p->n, false}, {"model/data/0", storage, slen, false}};
    return zip_build(e, 2, false);
}

TEST(bad_pickles) {
    s2_tensorfile *f = NULL;
    float s0[4] = {0};
    { /* zip without the pickle */
        zent e[] = {{"model/data/0", s0, sizeof s0, false}, {"model/version", "3\n", 2, false}};
        bb z = zip_build(e, 2, false);
        expect_err(open_zip_mem(&z, &f), f, "t.pt: ", "no <folder>/data.pkl");
        free(z.d);
    }
    { /* foreign global: GLOBAL 'os\nsystem' at offset 2 */
        bb p = {0};
        bb_u8(&p, 0x80); bb_u8(&p, 2); pk_g(&p, "os", "system"); pk_s(&p, "echo hi"); bb_u8(&p, 0x85);
        bb_u8(&p, 'R'); bb_u8(&p, '.');
        bb z = zip_with_pickle(&p, s0, sizeof s0);
        expect_err(open_zip_mem(&z, &f), f, "t.pt: pickle: ", "global 'os.system' is not allowed (offset 2)");
        free(z.d); free(p.d);
    }
    { /* STACK_GLOBAL builtins.eval and torch.DoubleStorage */
        bb p = {0};
        bb_u8(&p, 0x80); bb_u8(&p, 4); pk_s(&p, "builtins"); pk_s(&p, "eval"); bb_u8(&p, 0x93); bb_u8(&p, '.');
        bb z = zip_with_pickle(&p, s0, sizeof s0);
        expect_err(open_zip_mem(&z, &f), f, "t.pt: ", "global 'builtins.eval' is not allowed (offset 24)");
        free(z.d); free(p.d);
        tdesc t = {"d", "DoubleStorage", "0", 2, 0, 1, {2}, {1}};
        p = pk_state_dict(&t, 1, true);
        z = zip_with_pickle(&p, s0, sizeof s0);
        expect_err(open_zip_mem(&z, &f), f, "t.pt: ", "global 'torch.DoubleStorage' is not allowed");
        free(z.d); free(p.d);
    }
    { /* unknown opcode: INST 'i' at offset 3 */
        bb p = {0};
        bb_u8(&p, 0x80); bb_u8(&p, 2); bb_u8(&p, '('); bb_str(&p, "ios\nsystem\n"); bb_u8(&p, '.');
        bb z = zip_with_pickle(&p, s0, sizeof s0);
        expect_err(open_zip_mem(&z, &f), f, "t.pt: pickle: ", "opcode 'i' (0x69) is not allowed (offset 3)");
        free(z.d); free(p.d);
    }
    { /* storage shorter than its tensor: 4 floats viewed as 2x3 */
        tdesc t = {"too_big", "FloatStorage", "0", 6, 0, 2, {2, 3}, {3, 1}};
        bb p = pk_state_dict(&t, 1, true);
        bb z = zip_with_pickle(&p, s0, sizeof s0);
        expect_err(open_zip_mem(&z, &f), f, "t.pt: ", "tensor 'too_big': storage shorter than its tensor (16 bytes, needs 24)");
        free(z.d); free(p.d);
        tdesc t2 = {"offset_past", "FloatStorage", "0", 4, 3, 1, {2}, {1}};
        p = pk_state_dict(&t2, 1, true);
        z = zip_with_pickle(&p, s0, sizeof s0);
        expect_err(open_zip_mem(&z, &f), f, "t.pt: ", "storage shorter than its tensor");
        free(z.d); free(p.d);
        tdesc t3 = {"no_storage", "FloatStorage", "9", 4, 0, 1, {4}, {1}};
        p = pk_state_dict(&t3, 1, true);
        z = zip_with_pickle(&p, s0, sizeof s0);
        expect_err(open_zip_mem(&z, &f), f, "t.pt: ", "storage 'model/data/9' is missing");
        free(z.d); free(p.d);
    }
    { /* truncated pickle, memo miss, stack underflow, non-tensor value */
        const struct { const char *pk; size_t n; const char *want; } cases[] = {
            {"\x80\x02X\xff\x00\x00\x00" "ab", 9, "truncated pickle (string of 255 bytes) (offset 2)"},
            {"\x80\x02h\x05.", 4, "memo key 5 missing (offset 2)"},
            {"\x80\x02s.", 3, "bad SETITEM(S) stack (offset 2)"},
            {"\x80\x02K\x01(\x85.", 7, "stack underflow (offset 5)"},
            {"\x80\x02}X\x01\x00\x00\x00" "aK\x01s.", 13, "state_dict entry 'a' is not a tensor"},
            {"\x80\x09}.", 4, "unsupported protocol 9"},
            {"\x80\x02K\x01", 4, "no STOP"},
            {"\x80\x02r\xff\xff\xff\xff.", 8, "stack underflow"},
            {"\x80\x02K\x01r\xff\xff\xff\xff.", 10, "memo index 4294967295 too large"},
            {"\x80\x02)K\x01R.", 6, "REDUCE on something that is not an allowed global"}};
        for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
            bb p = {0};
            bb_put(&p, cases[i].pk, cases[i].n);
            bb z = zip_with_pickle(&p, s0, sizeof s0);
            expect_err(open_zip_mem(&z, &f), f, "t.pt: ", cases[i].want);
            free(z.d); free(p.d);
        }
    }
}

/* A valid small safetensors image for the malformed variants below. */
static bb st_build(const char *header, size_t data_len) {
    bb b = {0};
    bb_le(&b, strlen(header), 8);
    bb_str(&b, header);
    for (size_t i = 0; i < data_len; i++) bb_u8(&b, (unsigned)i);
    return b;
}

TEST(bad_safetensors) {
    s2_tensorfile *f = NULL;
    const struct { const char *hdr; size_t data; const char *want; } c[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, NULL},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 8, "tensor 'a': offsets out of range [0, 12) for a data area of 8 bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "offsets out of range"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "tensors 'a' and 'b' have overlapping offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "4 unused bytes before tensor 'a'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "4 unused bytes after the last tensor"},
        {"{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'a': unknown dtype 'Q7'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "tensor 'a': 8 bytes but F32 [3] needs 12"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape entry 0 is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8, "shape entry 0"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, "shape overflows"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "9 dimensions"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "\"data_offsets\" must be two"},
        {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "missing \"dtype\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}", 8, "duplicate tensor name 'a'"},
        {"{\"a\":5}", 0, "header entry is not an object"},
        {"[1,2]", 0, "header is not a JSON object"},
        {"{\"__metadata__\":[1]}", 0, "\"__metadata__\" is not an object"},
        {"{\"a\":{\"dtype\":\"F32\" \"shape\":[2]}}", 8, "t.st:1:21: expected ',' or '}'"},
    };
    int n = (int)(sizeof c / sizeof c[0]);
    for (int i = 0; i < n; i++) {
        bb b = st_build(c[i].hdr, c[i].data);
        int rc = s2_safetensors_parse(b.d, b.n, "t.st", &f);
        if (!c[i].want) {
            CHECK_MSG(rc == 0, "case %d: %s", i, sam2c_last_error());
            s2_tensorfile_free(f);
            f = NULL;
        } else {
            expect_err(rc, f, "t.st", c[i].want);
            f = NULL;
        }
        free(b.d);
    }
    /* header length beyond the file, through the file API */
    bb b = st_build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    b.d[0] = 0x00; b.d[1] = 0x10; /* 4096 */
    const char *path = tmp_path("hlen.safetensors");
    write_bytes(path, b.d, b.n);
    expect_err(s2_tensorfile_open(path, &f), f, path, "header length 4096 beyond the file (70 bytes)");
    free(b.d);
}

/* A header whose length is not a multiple of 8 leaves data misaligned: copied, still right. */
TEST(safetensors_misaligned_copied) {
    bb b = {0};
    const char *h = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"; /* 53 bytes */
    bb_le(&b, strlen(h), 8);
    bb_str(&b, h);
    float v[2] = {1.25f, -3.5f};
    bb_put(&b, v, 8);
    s2_tensorfile *f = NULL;
    REQUIRE(s2_safetensors_parse(b.d, b.n, "m.st", &f) == 0);
    const s2_tf_entry *e = s2_tensorfile_find(f, "x");
    REQUIRE(e);
    CHECK(((uintptr_t)b.d + 61) % 4 != 0 ? !e->mapped : e->mapped);
    CHECK((uintptr_t)e->t.data % 4 == 0 && f32_at(e, 0) == 1.25f && f32_at(e, 1) == -3.5f);
    s2_tensorfile_free(f);
    free(b.d);
}

/* Every single-byte corruption of a small checkpoint either loads or fails cleanly. */
TEST(corruption_sweep) {
    float s0[12] = {0};
    tdesc t[] = {{"a.weight", "FloatStorage", "0", 12, 0, 2, {3, 4}, {4, 1}},
                 {"a.bias", "FloatStorage", "0", 12, 2, 1, {3}, {2}}};
    bb p = pk_state_dict(t, 2, true);
    zent e[] = {{"m/data.pkl", p.d, p.n, false}, {"m/data/0", s0, sizeof s0, false}};
    bb z = zip_build(e, 2, false);
    const uint8_t vals[] = {0x00, 0xff, 0x80, 'h', 'R', 0x7f};
    int ok = 0, bad = 0;
    for (size_t i = 0; i < z.n; i++) {
        for (size_t k = 0; k < sizeof vals; k++) {
            uint8_t keep = z.d[i];
            z.d[i] = vals[k];
            s2_tensorfile *f = NULL;
            int rc = s2_torchzip_parse(z.d, z.n, "c.pt", &f);
            if (rc == 0) ok++;
            else {
                bad++;
                CHECK_MSG(strncmp(sam2c_last_error(), "c.pt: ", 6) == 0 && !strchr(sam2c_last_error(), '\n'),
                          "byte %zu: '%s'", i, sam2c_last_error());
            }
            s2_tensorfile_free(f);
            z.d[i] = keep;
        }
    }
    CHECK(ok > 0 && bad > 0);
    /* the safetensors fixture-like header too */
    bb s = st_build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"__metadata__\":{\"k\":\"v\"}}", 8);
    for (size_t i = 0; i < s.n; i++) {
        for (size_t k = 0; k < sizeof vals; k++) {
            uint8_t keep = s.d[i];
            s.d[i] = vals[k];
            s2_tensorfile *f = NULL;
            if (s2_safetensors_parse(s.d, s.n, "c.st", &f) != 0)
                CHECK(strncmp(sam2c_last_error(), "c.st", 4) == 0 && !strchr(sam2c_last_error(), '\n'));
            s2_tensorfile_free(f);
            s.d[i] = keep;
        }
    }
    free(s.d);
    free(p.d);
    free(z.d);
}

/* The zip layer on its own: lookups, CRC checks, deflate. */
TEST(zip_reader) {
    const char *text = "hello hello hello hello hello hello";
    zent e[] = {{"a/x.txt", text, strlen(text), true}, {"a/y.bin", "\x01\x02", 2, false}};
    bb z = zip_build(e, 2, false);
    s2_zip zz;
    REQUIRE(s2_zip_open(&zz, z.d, z.n, "z.zip") == 0);
    CHECK_EQ_INT(zz.n, 2);
    int i = s2_zip_find(&zz, "a/x.txt");
    REQUIRE(i == 0);
    CHECK(s2_zip_find(&zz, "a/y.bin") == 1 && s2_zip_find(&zz, "a/z") == -1);
    const uint8_t *d = NULL;
    uint8_t *owned = NULL;
    REQUIRE(s2_zip_read(&zz, i, true, &d, &owned) == 0);
    CHECK(owned && memcmp(d, text, strlen(text)) == 0);
    free(owned);
    REQUIRE(s2_zip_read(&zz, 1, true, &d, &owned) == 0);
    CHECK(!owned && d == z.d + zz.entries[1].data_offset && d[1] == 2);
    zz.entries[1].crc ^= 1;
    CHECK(s2_zip_read(&zz, 1, true, &d, &owned) == SAM2C_ERR_FORMAT);
    CHECK(strstr(sam2c_last_error(), "z.zip: zip entry 'a/y.bin': CRC mismatch") != NULL);
    s2_zip_close(&zz);
    free(z.d);
}
