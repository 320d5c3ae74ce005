/* Model loading: configuration resolution, strict tensor checks against the layout the
 * configuration implies, f32 weights mapped from the file where possible, converted
 * into one blob otherwise. ref: sam2/build_sam.py _load_checkpoint (strict load). */
#include "model/model.h"
#include "io/json.h"
#include "io/tensorfile.h"
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

sam2c_model_params sam2c_model_default_params(void) {
    sam2c_model_params p = {0};
    return p;
}

/* FNV-1a: names are short, a few hundred per model. */
static uint32_t hash_name(const char *s) {
    uint32_t h = 2166136261u;
    while (*s) { h ^= (uint8_t)*s++; h *= 16777619u; }
    return h;
}

static int build_hash(sam2c_model *m) {
    int cap = 16;
    while (cap < m->n_w * 2) cap <<= 1;
    m->hash = s2_malloc((size_t)cap * sizeof(int));
    if (!m->hash) return SAM2C_ERR_NOMEM;
    m->hash_cap = cap;
    for (int i = 0; i < cap; i++) m->hash[i] = -1;
    for (int i = 0; i < m->n_w; i++) {
        uint32_t h = hash_name(m->w[i].name) & (uint32_t)(cap - 1);
        while (m->hash[h] >= 0) h = (h + 1) & (uint32_t)(cap - 1);
        m->hash[h] = i;
    }
    return SAM2C_OK;
}

static const s2_weight *find_weight(const sam2c_model *m, const char *name) {
    if (!m->hash) return NULL;
    uint32_t h = hash_name(name) & (uint32_t)(m->hash_cap - 1);
    while (m->hash[h] >= 0) {
        const s2_weight *w = &m->w[m->hash[h]];
        if (strcmp(w->name, name) == 0) return w;
        h = (h + 1) & (uint32_t)(m->hash_cap - 1);
    }
    return NULL;
}

static const s2_tensor *lookup_v(const sam2c_model *m, bool required, const char *fmt, va_list ap) {
    char name[256];
    vsnprintf(name, sizeof name, fmt, ap);
    const s2_weight *w = find_weight(m, name);
    if (!w && required) {
        /* Internal invariant: the loader checked every name the layout lists. */
        fprintf(stderr, "sam2c: internal error: weight '%s' not in the model layout\n", name);
        abort();
    }
    return w ? &w->t : NULL;
}

const s2_tensor *s2_wt(const sam2c_model *m, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const s2_tensor *t = lookup_v(m, true, fmt, ap);
    va_end(ap);
    return t;
}

const float *s2_w(const sam2c_model *m, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const s2_tensor *t = lookup_v(m, true, fmt, ap);
    va_end(ap);
    return t->data;
}

const s2_tensor *s2_w_opt(const sam2c_model *m, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const s2_tensor *t = lookup_v(m, false, fmt, ap);
    va_end(ap);
    return t;
}

/* ---- configuration resolution ---- */

/* True when the file holds exactly the layout's names and shapes. */
static bool file_matches_layout(const s2_tensorfile *f, const s2_layout *l) {
    if (f->n_entries != l->n) return false;
    for (int i = 0; i < l->n; i++) {
        const s2_tf_entry *e = s2_tensorfile_find(f, l->e[i].name);
        if (!e || !s2_shape_eq(e->t.shape, e->t.ndim, l->e[i].shape, l->e[i].ndim)) return false;
    }
    return true;
}

/* Recognises which of the 8 official models the tensors hold. */
static int recognise_official(const s2_tensorfile *f, s2_config *c) {
    for (int i = 0; i < s2_config_official_count(); i++) {
        s2_config oc;
        s2_layout l;
        s2_config_official(s2_config_official_name(i), &oc);
        S2_CHECK(s2_layout_build(&oc, &l));
        bool ok = file_matches_layout(f, &l);
        s2_layout_free(&l);
        if (ok) { *c = oc; return SAM2C_OK; }
    }
    const s2_tf_entry *pe = s2_tensorfile_find(f, "image_encoder.trunk.patch_embed.proj.weight");
    int blocks = 0;
    char nm[128];
    for (; blocks < 1000; blocks++) {
        snprintf(nm, sizeof nm, "image_encoder.trunk.blocks.%d.norm1.weight", blocks);
        if (!s2_tensorfile_find(f, nm)) break;
    }
    return s2_err(SAM2C_ERR_FORMAT,
                  "%s: not one of the 8 official SAM 2 / SAM 2.1 layouts (%d tensors, trunk embed_dim %lld, %d Hiera blocks); "
                  "give the model's config with --config FILE or put config.json beside it",
                  f->path, f->n_entries, pe ? (long long)pe->t.shape[0] : 0LL, blocks);
}

/* safetensors metadata written by `sam2c convert`: {"sam2c_config": "<json>"}. */
static int config_from_metadata(const s2_tensorfile *f, s2_config *c, bool *found) {
    *found = false;
    if (!f->metadata_json) return SAM2C_OK;
    s2_json *meta = NULL;
    S2_CHECK(s2_json_parse(f->metadata_json, strlen(f->metadata_json), f->path, NULL, &meta));
    const char *cfg = s2_json_str(meta, "sam2c_config");
    int rc = SAM2C_OK;
    if (cfg) {
        s2_json *j = NULL;
        rc = s2_json_parse(cfg, strlen(cfg), f->path, NULL, &j);
        if (rc == SAM2C_OK) rc = s2_config_from_json(j, f->path, c);
        s2_json_free(j);
        *found = rc == SAM2C_OK;
    }
    s2_json_free(meta);
    return rc;
}

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Order: explicit file, config.json beside the checkpoint, safetensors metadata,
 * recognition of the official layouts. */
static int resolve_config(const char *path, const sam2c_model_params *p, const s2_tensorfile *f,
                          s2_config *c) {
    if (p && p->config_path) return s2_config_load_file(p->config_path, c);
    char dir[4096], beside[4200];
    snprintf(dir, sizeof dir, "%s", path);
    snprintf(beside, sizeof beside, "%s/config.json", dirname(dir));
    if (file_exists(beside)) return s2_config_load_file(beside, c);
    bool found;
    S2_CHECK(config_from_metadata(f, c, &found));
    if (found) return SAM2C_OK;
    return recognise_official(f, c);
}

/* ---- weights ---- */

/* Every layout entry must be in the file with the same shape and a float dtype; the
 * file may hold nothing else (strict, like load_state_dict). */
static int check_tensors(const s2_tensorfile *f, const s2_layout *l) {
    char a[96], b[96];
    for (int i = 0; i < l->n; i++) {
        const s2_tf_entry *e = s2_tensorfile_find(f, l->e[i].name);
        if (!e) return s2_err(SAM2C_ERR_MISSING, "%s: missing tensor '%s' (expected %s)", f->path,
                              l->e[i].name, s2_shape_str(l->e[i].shape, l->e[i].ndim, a, sizeof a));
        if (!s2_shape_eq(e->t.shape, e->t.ndim, l->e[i].shape, l->e[i].ndim))
            return s2_err(SAM2C_ERR_SHAPE, "%s: tensor '%s' has shape %s, expected %s", f->path,
                          l->e[i].name, s2_shape_str(e->t.shape, e->t.ndim, a, sizeof a),
                          s2_shape_str(l->e[i].shape, l->e[i].ndim, b, sizeof b));
        if (e->t.dtype != S2_F32 && e->t.dtype != S2_F16 && e->t.dtype != S2_BF16)
            return s2_err(SAM2C_ERR_SHAPE, "%s: tensor '%s' has dtype %s; weights must be F32, F16 or BF16",
                          f->path, l->e[i].name, s2_dtype_name(e->t.dtype));
    }
    if (f->n_entries != l->n) {
        for (int i = 0; i < f->n_entries; i++) {
            bool known = false;
            for (int k = 0; k < l->n && !known; k++) known = strcmp(f->entries[i].name, l->e[k].name) == 0;
            if (!known)
                return s2_err(SAM2C_ERR_SHAPE, "%s: unexpected tensor '%s' (not in the %s layout)",
                              f->path, f->entries[i].name, "configured");
        }
    }
    return SAM2C_OK;
}

static int alloc_weights(sam2c_model *m, const s2_layout *l) {
    m->w = s2_calloc((size_t)l->n, sizeof *m->w);
    if (!m->w) return SAM2C_ERR_NOMEM;
    m->n_w = l->n;
    for (int i = 0; i < l->n; i++) {
        m->w[i].name = s2_strdup(l->e[i].name);
        if (!m->w[i].name) return SAM2C_ERR_NOMEM;
        m->w[i].t.dtype = S2_F32;
        m->w[i].t.ndim = l->e[i].ndim;
        memcpy(m->w[i].t.shape, l->e[i].shape, sizeof l->e[i].shape);
    }
    return SAM2C_OK;
}

/* f32 tensors aligned in the mapping are used in place; the rest are converted into
 * one blob. */
static int bind_weights(sam2c_model *m, const s2_tensorfile *f) {
    size_t need = 0;
    for (int i = 0; i < m->n_w; i++) {
        const s2_tf_entry *e = s2_tensorfile_find(f, m->w[i].name);
        bool in_place = e->t.dtype == S2_F32 && ((uintptr_t)e->t.data & 3) == 0;
        if (!in_place) need += ((size_t)s2_tensor_numel(&m->w[i].t) * 4 + 63) & ~(size_t)63;
    }
    if (need) {
        m->blob = s2_aligned_alloc(need);
        if (!m->blob) return SAM2C_ERR_NOMEM;
    }
    uint8_t *cur = m->blob;
    int counts[S2_DTYPE_COUNT] = {0};
    for (int i = 0; i < m->n_w; i++) {
        const s2_tf_entry *e = s2_tensorfile_find(f, m->w[i].name);
        int64_t n = s2_tensor_numel(&m->w[i].t);
        counts[e->t.dtype]++;
        if (e->t.dtype == S2_F32 && ((uintptr_t)e->t.data & 3) == 0) {
            m->w[i].t.data = e->t.data;
            m->n_mapped += e->mapped;
            continue;
        }
        m->w[i].t.data = cur;
        S2_CHECK(s2_convert_to_f32((float *)cur, e->t.data, e->t.dtype, n));
        cur += ((size_t)n * 4 + 63) & ~(size_t)63;
        m->n_converted++;
    }
    int best = S2_F32;
    for (int t = 0; t < S2_DTYPE_COUNT; t++)
        if (counts[t] > counts[best]) best = t;
    m->src_dtype = best;
    return SAM2C_OK;
}

int sam2c_model_load(const char *path, const sam2c_model_params *params, sam2c_model **out) {
    *out = NULL;
    if (!path) return s2_err(SAM2C_ERR_ARG, "no model path given");
    double t0 = s2_now_s();
    sam2c_model *m = s2_calloc(1, sizeof *m);
    if (!m) return SAM2C_ERR_NOMEM;
    s2_tensorfile *f = NULL;
    s2_layout l = {0};
    int rc = s2_tensorfile_open(path, &f);
    if (rc == SAM2C_OK) rc = resolve_config(path, params, f, &m->cfg);
    if (rc == SAM2C_OK) rc = s2_layout_build(&m->cfg, &l);
    if (rc == SAM2C_OK) rc = check_tensors(f, &l);
    if (rc == SAM2C_OK) rc = alloc_weights(m, &l);
    if (rc == SAM2C_OK) rc = bind_weights(m, f);
    if (rc == SAM2C_OK) rc = build_hash(m);
    s2_layout_free(&l);
    if (rc < 0) {
        s2_tensorfile_free(f);
        sam2c_model_free(m);
        return rc;
    }
    m->file = f;
    snprintf(m->source_format, sizeof m->source_format, "%s",
             f->format == S2_TF_TORCH_ZIP ? "pytorch-zip" : "safetensors");
    m->load_s = s2_now_s() - t0;
    *out = m;
    return SAM2C_OK;
}

/* ---- random weights for benchmarks ---- */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Weights uniform in +-1/sqrt(fan_in) (PyTorch's default scale), norms at 1 / 0. */
static void random_fill(s2_weight *w, uint64_t *seed) {
    float *d = w->t.data;
    int64_t n = s2_tensor_numel(&w->t);
    int64_t fan_in = w->t.ndim >= 2 ? n / w->t.shape[0] : n;
    bool is_norm = strstr(w->name, "norm") != NULL || strstr(w->name, "upscaling.1.") != NULL;
    bool is_bias = strstr(w->name, ".bias") != NULL;
    float bound = 1.0f / sqrtf((float)(fan_in > 0 ? fan_in : 1));
    for (int64_t i = 0; i < n; i++) {
        if (is_norm) { d[i] = is_bias ? 0.0f : 1.0f; continue; }
        double u = (double)(splitmix(seed) >> 11) / 9007199254740992.0;
        d[i] = (float)((2 * u - 1) * bound);
    }
}

int sam2c_model_random(const char *arch, uint64_t seed, sam2c_model **out) {
    *out = NULL;
    sam2c_model *m = s2_calloc(1, sizeof *m);
    if (!m) return SAM2C_ERR_NOMEM;
    s2_layout l = {0};
    int rc = s2_config_official(arch, &m->cfg);
    if (rc == SAM2C_OK) rc = s2_layout_build(&m->cfg, &l);
    if (rc == SAM2C_OK) rc = alloc_weights(m, &l);
    size_t need = 0;
    for (int i = 0; rc == SAM2C_OK && i < m->n_w; i++)
        need += ((size_t)s2_tensor_numel(&m->w[i].t) * 4 + 63) & ~(size_t)63;
    if (rc == SAM2C_OK && !(m->blob = s2_aligned_alloc(need))) rc = SAM2C_ERR_NOMEM;
    uint8_t *cur = m->blob;
    for (int i = 0; rc == SAM2C_OK && i < m->n_w; i++) {
        m->w[i].t.data = cur;
        random_fill(&m->w[i], &seed);
        cur += ((size_t)s2_tensor_numel(&m->w[i].t) * 4 + 63) & ~(size_t)63;
    }
    if (rc == SAM2C_OK) rc = build_hash(m);
    s2_layout_free(&l);
    if (rc < 0) { sam2c_model_free(m); return rc; }
    snprintf(m->source_format, sizeof m->source_format, "random");
    *out = m;
    return SAM2C_OK;
}

void sam2c_model_free(sam2c_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_w; i++) free(m->w[i].name);
    free(m->w);
    free(m->hash);
    s2_aligned_free(m->blob);
    s2_tensorfile_free(m->file);
    free(m);
}

const char *sam2c_model_name(const sam2c_model *m) { return m->cfg.name; }
int sam2c_model_image_size(const sam2c_model *m) { return m->cfg.image_size; }
int64_t sam2c_model_param_count(const sam2c_model *m) {
    int64_t n = 0;
    for (int i = 0; i < m->n_w; i++) n += s2_tensor_numel(&m->w[i].t);
    return n;
}
