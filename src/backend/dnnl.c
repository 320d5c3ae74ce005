/* oneDNN backend: Linear and matmul through dnnl matmul primitives, conv2d through
 * convolution primitives, attention through the flash kernel (flash_attention.c).
 *
 * Letters: M rows, K reduction, N output features; conv: N C H W input, OC KH KW
 * weights, G groups.
 *
 * Modes: F32 runs every product in f32. BF16 converts activations to bf16 on the fly,
 * keeps weights in bf16 (converted once), accumulates in f32 and writes f32 outputs
 * with the bias fused; matmul (activation x activation, only the small mask-decoder
 * product) stays f32 in both modes.
 *
 * Caches (per backend instance, one mutex): primitives keyed by (op, shape, threads),
 * created once; weights converted (bf16 Linear, every conv) into the primitive's
 * preferred layout keyed by (pointer, shape, mode) with one variant per layout, checked
 * against a fingerprint of sampled values. f32 Linear reads the model's weights in
 * place (oneDNN's blocked copy measured no faster here and would double the memory).
 * Scratch (bf16 activations, layout reorders, oneDNN scratchpads in user mode, flash
 * workspaces) comes from a small pool of reusable buffers, so nothing is allocated in
 * steady state and several sessions may run on one backend at once.
 *
 * Global state (stated here as the house style asks): the engine and the two backend
 * instances (created once, on first use, with pthread_once), one oneDNN stream per
 * calling thread, and the opt-in profile counters. */
#include "backend/dnnl.h"

#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ============================== profiling ============================== */

static atomic_bool g_prof_on;
static _Atomic int64_t g_prof_ns[S2_OPK_COUNT], g_prof_flop[S2_OPK_COUNT], g_prof_calls[S2_OPK_COUNT];

// Turns the per-op-kind timers on or off.
void s2_dnnl_profile_enable(bool on) { atomic_store(&g_prof_on, on); }

// Zeroes every counter.
void s2_dnnl_profile_reset(void) {
    for (int k = 0; k < S2_OPK_COUNT; k++) {
        atomic_store(&g_prof_ns[k], 0);
        atomic_store(&g_prof_flop[k], 0);
        atomic_store(&g_prof_calls[k], 0);
    }
}

// Snapshot of the counters.
void s2_dnnl_profile_get(s2_op_stats *out) {
    for (int k = 0; k < S2_OPK_COUNT; k++) {
        out->seconds[k] = (double)atomic_load(&g_prof_ns[k]) * 1e-9;
        out->flops[k] = (double)atomic_load(&g_prof_flop[k]);
        out->calls[k] = atomic_load(&g_prof_calls[k]);
    }
}

// Printable name of an op kind.
const char *s2_op_kind_name(s2_op_kind k) {
    static const char *names[S2_OPK_COUNT] = {"linear", "matmul", "conv2d", "attention"};
    return (unsigned)k < S2_OPK_COUNT ? names[k] : "?";
}

#ifdef SAM2C_HAVE_DNNL
#include <dnnl.h>

// Start time of an op when profiling (0 otherwise).
static double prof_begin(void) { return atomic_load(&g_prof_on) ? s2_now_s() : 0.0; }

// Adds one op's time and FLOPs to its kind when profiling.
static void prof_end(s2_op_kind k, double t0, double flops) {
    if (t0 == 0.0) return;
    atomic_fetch_add(&g_prof_ns[k], (int64_t)((s2_now_s() - t0) * 1e9));
    atomic_fetch_add(&g_prof_flop[k], (int64_t)flops);
    atomic_fetch_add(&g_prof_calls[k], 1);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define S2_DN_X86 1
#endif

enum { WS_SLOTS = 16, WFP = 16 /* fingerprint samples */ };

/* ============================== cache tables ============================== */

/* Primitive key: op kind, mode, thread count and up to 14 shape numbers. */
typedef struct pkey {
    int64_t v[17];
} pkey;

/* One cached primitive and the memory descriptors its callers need. */
typedef struct pent {
    pkey key;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t src, wei, bias, dst, user_wei, scratch;
    dnnl_data_type_t src_dt;   /* f32 or bf16: what the caller converts x to */
    dnnl_primitive_t rsrc, rdst; /* conv: user NCHW f32 -> src layout, dst layout -> NCHW */
    dnnl_memory_desc_t usrc, udst; /* the user layouts of those reorders */
    struct pent *next;         /* hash chain */
} pent;

/* One weight tensor converted for one layout; variants chained per (pointer, shape). */
typedef struct went {
    const float *w;
    dnnl_memory_desc_t md;     /* layout of mem */
    dnnl_memory_t mem;         /* owns the converted data */
    float fp[WFP];             /* sampled values of w when converted */
    struct went *next;
} went;

/* One reusable scratch buffer of the pool. */
typedef struct ws_slot {
    void *p;
    size_t size;
    bool busy;
} ws_slot;

/* A backend instance (one per mode): the slot table, its caches and its pool. */
typedef struct dnnl_be {
    s2_backend be;
    s2_dnnl_mode mode;
    pthread_mutex_t mu;
    pent *ptab[1024];          /* primitive hash chains */
    went *wtab[1024];          /* weight hash chains */
    ws_slot ws[WS_SLOTS];
} dnnl_be;

static dnnl_engine_t g_engine;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static dnnl_be g_be[2];
static _Thread_local dnnl_stream_t tl_stream;

// FNV-1a over a byte range.
static uint64_t fnv(const void *p, size_t n, uint64_t h) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

// Bucket of a primitive key.
static size_t pkey_slot(const pkey *k) { return fnv(k, sizeof *k, 14695981039346656037ull) % 1024; }

// Cached primitive for k, or NULL (caller holds the mutex).
static pent *pfind(dnnl_be *b, const pkey *k) {
    for (pent *e = b->ptab[pkey_slot(k)]; e; e = e->next)
        if (!memcmp(&e->key, k, sizeof *k)) return e;
    return NULL;
}

/* ============================== workspace pool ============================== */

// A free buffer of at least n bytes (64-aligned), grown as needed; NULL on OOM.
static void *ws_acquire(dnnl_be *b, size_t n, int *slot) {
    n = n ? (n + 63) & ~(size_t)63 : 64;
    pthread_mutex_lock(&b->mu);
    int fit = -1, grow = -1; // smallest free buffer that fits, else the largest free one
    for (int i = 0; i < WS_SLOTS; i++) {
        const ws_slot *w = &b->ws[i];
        if (w->busy) continue;
        if (w->size >= n && (fit < 0 || w->size < b->ws[fit].size)) fit = i;
        if (w->size < n && (grow < 0 || w->size > b->ws[grow].size)) grow = i;
    }
    int best = fit >= 0 ? fit : grow;
    if (best >= 0) b->ws[best].busy = true;
    pthread_mutex_unlock(&b->mu);
    *slot = best;
    if (best < 0) return s2_aligned_alloc(n); // every slot busy: a one-off buffer
    ws_slot *s = &b->ws[best];
    if (s->size < n) {
        s2_aligned_free(s->p);
        s->p = s2_aligned_alloc(n);
        s->size = s->p ? n : 0;
    }
    if (!s->p) {
        pthread_mutex_lock(&b->mu);
        s->busy = false;
        pthread_mutex_unlock(&b->mu);
    }
    return s->p;
}

// Returns a buffer from ws_acquire.
static void ws_release(dnnl_be *b, void *p, int slot) {
    if (slot < 0) { s2_aligned_free(p); return; }
    pthread_mutex_lock(&b->mu);
    b->ws[slot].busy = false;
    pthread_mutex_unlock(&b->mu);
}

/* ============================== conversions ============================== */

// f32 -> bf16, round to nearest even (NaN stays NaN).
static inline uint16_t bf16_rne(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

#ifdef S2_DN_X86
// 32 values per step with vcvtne2ps2bf16 (same rounding as bf16_rne).
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void to_bf16_512(uint16_t *y, const float *x,
                                                                          int64_t n) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
        _mm512_storeu_si512(y + i, (__m512i)h);
    }
    for (; i < n; i++) y[i] = bf16_rne(x[i]);
}
#endif

// y[n] = bf16(x[n]), threaded over chunks.
static void to_bf16(uint16_t *y, const float *x, int64_t n) {
    int isa = s2_flash_attention_isa();
    const int64_t CH = 1 << 15;
    int64_t nch = (n + CH - 1) / CH;
#pragma omp parallel for schedule(static) if (nch > 1)
    for (int64_t c = 0; c < nch; c++) {
        int64_t i0 = c * CH, m = S2_MIN(CH, n - i0);
#ifdef S2_DN_X86
        if (isa == 2) { to_bf16_512(y + i0, x + i0, m); continue; }
#endif
        for (int64_t i = 0; i < m; i++) y[i0 + i] = bf16_rne(x[i0 + i]);
    }
}

/* ============================== engine ============================== */

// Creates the engine and both backend instances (once).
static void init_once(void) {
    if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) g_engine = NULL;
}

// The calling thread's stream (created on first use).
static dnnl_stream_t stream(void) {
    if (!tl_stream && dnnl_stream_create(&tl_stream, g_engine, dnnl_stream_default_flags) != dnnl_success)
        tl_stream = NULL;
    return tl_stream;
}

// Primitive attributes: user-managed scratchpad (concurrent executions stay safe).
static dnnl_primitive_attr_t make_attr(float alpha, float beta) {
    dnnl_primitive_attr_t a = NULL;
    if (dnnl_primitive_attr_create(&a) != dnnl_success) return NULL;
    dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user);
    if (alpha != 1.0f) dnnl_primitive_attr_set_output_scales(a, 1, 0, &alpha);
    if (beta != 0.0f) {
        dnnl_post_ops_t po;
        if (dnnl_post_ops_create(&po) == dnnl_success) {
            dnnl_post_ops_append_sum(po, beta);
            dnnl_primitive_attr_set_post_ops(a, po);
            dnnl_post_ops_destroy(po);
        }
    }
    return a;
}

// Creates the primitive of op descriptor `desc` into e (false when unimplemented).
static bool make_prim(pent *e, const void *desc, float alpha, float beta) {
    dnnl_primitive_attr_t attr = make_attr(alpha, beta);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = attr ? dnnl_primitive_desc_create(&pd, desc, attr, g_engine, NULL) : dnnl_out_of_memory;
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return false;
    e->src = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    e->wei = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    e->dst = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    e->scratch = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    st = dnnl_primitive_create(&e->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    return st == dnnl_success;
}

// Inserts e under key k (caller holds the mutex).
static pent *pinsert(dnnl_be *b, pent *e) {
    size_t s = pkey_slot(&e->key);
    e->next = b->ptab[s];
    b->ptab[s] = e;
    return e;
}

/* ============================== weights ============================== */

// Sampled values of a weight tensor of n floats (its fingerprint).
static void fingerprint(const float *w, int64_t n, float fp[WFP]) {
    for (int i = 0; i < WFP; i++) fp[i] = w[(n - 1) * i / (WFP - 1)];
}

// Converts the user weights (layout e->user_wei, f32) into dst (layout e->wei).
static bool reorder_into(const pent *e, const float *w, dnnl_memory_t dst) {
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t r = NULL;
    dnnl_memory_t src = NULL;
    bool ok = dnnl_reorder_primitive_desc_create(&pd, &e->user_wei, g_engine, &e->wei, g_engine, NULL) == dnnl_success &&
              dnnl_primitive_create(&r, pd) == dnnl_success &&
              dnnl_memory_create(&src, &e->user_wei, g_engine, (void *)w) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
        ok = dnnl_primitive_execute(r, stream(), 2, args) == dnnl_success &&
             dnnl_stream_wait(stream()) == dnnl_success;
    }
    if (src) dnnl_memory_destroy(src);
    if (r) dnnl_primitive_destroy(r);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return ok;
}

// The weights w in e's layout (converted on first use); NULL on failure.
static dnnl_memory_t weights(dnnl_be *b, const pent *e, const float *w, int64_t n) {
    float fp[WFP];
    fingerprint(w, n, fp);
    size_t s = (size_t)(((uintptr_t)w >> 4) * 2654435761u) % 1024;
    pthread_mutex_lock(&b->mu);
    went *x = b->wtab[s];
    for (; x; x = x->next)
        if (x->w == w && dnnl_memory_desc_equal(&x->md, &e->wei)) break;
    bool fresh = !x;
    if (fresh) {
        x = calloc(1, sizeof *x);
        if (x && dnnl_memory_create(&x->mem, &e->wei, g_engine, DNNL_MEMORY_ALLOCATE) != dnnl_success) {
            free(x);
            x = NULL;
        }
    }
    if (x && (fresh || memcmp(x->fp, fp, sizeof fp))) { // new, or a different tensor at w
        if (!reorder_into(e, w, x->mem)) {
            if (fresh) { dnnl_memory_destroy(x->mem); free(x); }
            pthread_mutex_unlock(&b->mu);
            return NULL;
        }
        memcpy(x->fp, fp, sizeof fp);
        x->w = w;
        x->md = e->wei;
        if (fresh) { x->next = b->wtab[s]; b->wtab[s] = x; }
    }
    pthread_mutex_unlock(&b->mu);
    return x ? x->mem : NULL;
}

/* ============================== execution ============================== */

/* Executes one primitive with n arguments on the calling thread's stream. */
static bool exec(dnnl_primitive_t p, int n, const dnnl_exec_arg_t *args) {
    dnnl_stream_t st = stream();
    return st && dnnl_primitive_execute(p, st, n, args) == dnnl_success && dnnl_stream_wait(st) == dnnl_success;
}

/* Reorders between a user buffer and a primitive buffer (r converts md_from -> md_to). */
static bool reorder_run(dnnl_primitive_t r, const dnnl_memory_desc_t *md_from, const void *from,
                        const dnnl_memory_desc_t *md_to, void *to) {
    dnnl_memory_t a = NULL, b = NULL;
    bool ok = dnnl_memory_create(&a, md_from, g_engine, (void *)from) == dnnl_success &&
              dnnl_memory_create(&b, md_to, g_engine, to) == dnnl_success &&
              exec(r, 2, (dnnl_exec_arg_t[]){{DNNL_ARG_FROM, a}, {DNNL_ARG_TO, b}});
    if (a) dnnl_memory_destroy(a);
    if (b) dnnl_memory_destroy(b);
    return ok;
}

static size_t rup64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Runs e on src (f32 user data: reordered into e's layout, or converted to bf16, into
 * the workspace when e asks for it), weights wm, optional bias, into dst (through a
 * workspace buffer and a reorder when e's dst layout is not the user's). False when
 * anything fails (the caller falls back to the reference kernel). */
static bool run(dnnl_be *b, const pent *e, const float *src, int64_t src_n, dnnl_memory_t wm,
                const float *bias, float *dst) {
    size_t sp = dnnl_memory_desc_get_size(&e->scratch);
    size_t sb = e->rsrc ? dnnl_memory_desc_get_size(&e->src) : e->src_dt == dnnl_bf16 ? (size_t)src_n * 2 : 0;
    size_t db = e->rdst ? dnnl_memory_desc_get_size(&e->dst) : 0;
    int slot;
    uint8_t *ws = ws_acquire(b, rup64(sb) + rup64(db) + sp, &slot);
    if (!ws) return false;
    uint8_t *sbuf = ws, *dbuf = ws + rup64(sb), *spbuf = dbuf + rup64(db);
    const void *s = src;
    bool ok = true;
    if (e->rsrc) ok = reorder_run(e->rsrc, &e->usrc, src, &e->src, sbuf), s = sbuf;
    else if (sb) to_bf16((uint16_t *)sbuf, src, src_n), s = sbuf;
    dnnl_memory_t ms = NULL, md = NULL, mb = NULL, mp = NULL;
    ok = ok && dnnl_memory_create(&ms, &e->src, g_engine, (void *)s) == dnnl_success &&
         dnnl_memory_create(&md, &e->dst, g_engine, e->rdst ? (void *)dbuf : dst) == dnnl_success &&
         (!bias || dnnl_memory_create(&mb, &e->bias, g_engine, (void *)bias) == dnnl_success) &&
         (!sp || dnnl_memory_create(&mp, &e->scratch, g_engine, spbuf) == dnnl_success);
    if (ok) {
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, md}};
        int n = 3;
        if (mb) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, mb};
        if (mp) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, mp};
        ok = exec(e->prim, n, args);
    }
    if (ok && e->rdst) ok = reorder_run(e->rdst, &e->dst, dbuf, &e->udst, dst);
    if (ms) dnnl_memory_destroy(ms);
    if (md) dnnl_memory_destroy(md);
    if (mb) dnnl_memory_destroy(mb);
    if (mp) dnnl_memory_destroy(mp);
    ws_release(b, ws, slot);
    return ok;
}

/* ============================== linear / matmul ============================== */

enum { SMALL_FLOPS = 1 << 21 }; /* below ~2 MFLOP an op runs on the calling thread */

// Thread count for an op of that many FLOPs: 1 for small ones (forking costs more than it
// gains, and a descheduled helper thread stalls the whole op); returns the old count.
static int small_op_threads(double flops) {
    int old = omp_get_max_threads();
    if (flops < SMALL_FLOPS && old > 1) omp_set_num_threads(1);
    return old;
}

// Matmul primitive for y[M,N] = x[M,K] w^T (+ bias), cached by shape.
static pent *linear_prim(dnnl_be *b, int64_t M, int64_t K, int64_t N, bool bias) {
    pkey k = {{1, b->mode, omp_get_max_threads(), M, K, N, bias}};
    pthread_mutex_lock(&b->mu);
    pent *e = pfind(b, &k);
    if (!e && (e = calloc(1, sizeof *e))) {
        e->key = k;
        dnnl_data_type_t dt = b->mode == S2_DNNL_BF16 ? dnnl_bf16 : dnnl_f32;
        dnnl_memory_desc_t s, w, bb, d;
        dnnl_memory_desc_init_by_tag(&s, 2, (dnnl_dims_t){M, K}, dt, dnnl_ab);
        // f32 reads the user's [N, K] weights in place (as fast here as a blocked copy,
        // and no second copy of the model in memory); bf16 gets its own layout
        dnnl_memory_desc_init_by_tag(&w, 2, (dnnl_dims_t){K, N}, dt, dt == dnnl_f32 ? dnnl_ba : dnnl_format_tag_any);
        dnnl_memory_desc_init_by_tag(&bb, 2, (dnnl_dims_t){1, N}, dnnl_f32, dnnl_ab);
        dnnl_memory_desc_init_by_tag(&d, 2, (dnnl_dims_t){M, N}, dnnl_f32, dnnl_ab);
        dnnl_memory_desc_init_by_tag(&e->user_wei, 2, (dnnl_dims_t){K, N}, dnnl_f32, dnnl_ba);
        dnnl_matmul_desc_t md;
        e->src_dt = dt;
        e->bias = bb;
        if (dnnl_matmul_desc_init(&md, &s, &w, bias ? &bb : NULL, &d) != dnnl_success ||
            !make_prim(e, &md, 1.0f, 0.0f)) {
            free(e);
            e = NULL;
        } else {
            pinsert(b, e);
        }
    }
    pthread_mutex_unlock(&b->mu);
    return e;
}

// y[M,N] = x[M,K] w[N,K]^T + b on oneDNN (reference on any failure).
static void dn_linear(void *self, float *y, const float *x, const float *w, const float *bias,
                      int64_t M, int64_t K, int64_t N) {
    double t0 = prof_begin();
    dnnl_be *b = self;
    int nthr = small_op_threads(2.0 * (double)M * K * N);
    pent *e = M > 0 && K > 0 && N > 0 ? linear_prim(b, M, K, N, bias != NULL) : NULL;
    dnnl_memory_t wm = NULL;
    bool in_place = e && dnnl_memory_desc_equal(&e->wei, &e->user_wei);
    if (in_place && dnnl_memory_create(&wm, &e->wei, g_engine, (void *)w) != dnnl_success) wm = NULL;
    else if (e && !in_place) wm = weights(b, e, w, K * N);
    if (!wm || !run(b, e, x, M * K, wm, bias, y)) s2_ref_linear(y, x, w, bias, M, K, N);
    if (in_place && wm) dnnl_memory_destroy(wm);
    omp_set_num_threads(nthr);
    prof_end(S2_OPK_LINEAR, t0, 2.0 * (double)M * K * N);
}

// c = alpha a op(b) + beta c on oneDNN in f32 (activations on both sides, not cached).
static void dn_matmul(void *self, float *c, const float *a, const float *bm, int64_t M,
                      int64_t K, int64_t N, bool trans_b, float alpha, float beta) {
    double t0 = prof_begin();
    dnnl_be *b = self;
    bool done = false;
    int nthr = small_op_threads(2.0 * (double)M * K * N);
    if (M > 0 && K > 0 && N > 0) {
        union { float f; int32_t i; } ua = {alpha}, ub = {beta};
        pkey k = {{2, 0, omp_get_max_threads(), M, K, N, trans_b, ua.i, ub.i}};
        pthread_mutex_lock(&b->mu);
        pent *e = pfind(b, &k);
        if (!e && (e = calloc(1, sizeof *e))) {
            e->key = k;
            dnnl_memory_desc_t s, w, d;
            dnnl_memory_desc_init_by_tag(&s, 2, (dnnl_dims_t){M, K}, dnnl_f32, dnnl_ab);
            dnnl_memory_desc_init_by_tag(&w, 2, (dnnl_dims_t){K, N}, dnnl_f32, trans_b ? dnnl_ba : dnnl_ab);
            dnnl_memory_desc_init_by_tag(&d, 2, (dnnl_dims_t){M, N}, dnnl_f32, dnnl_ab);
            dnnl_matmul_desc_t md;
            e->src_dt = dnnl_f32;
            if (dnnl_matmul_desc_init(&md, &s, &w, NULL, &d) != dnnl_success ||
                !make_prim(e, &md, alpha, beta)) {
                free(e);
                e = NULL;
            } else {
                pinsert(b, e);
            }
        }
        pthread_mutex_unlock(&b->mu);
        dnnl_memory_t wm = NULL;
        if (e && dnnl_memory_create(&wm, &e->wei, g_engine, (void *)bm) == dnnl_success) {
            done = run(b, e, a, M * K, wm, NULL, c);
            dnnl_memory_destroy(wm);
        }
    }
    if (!done) s2_ref_matmul(c, a, bm, M, K, N, trans_b, alpha, beta);
    omp_set_num_threads(nthr);
    prof_end(S2_OPK_MATMUL, t0, 2.0 * (double)M * K * N);
}

/* ============================== conv2d ============================== */

// Reorder primitive from -> to, or NULL in *r when the layouts agree; false on failure.
static bool make_reorder(dnnl_primitive_t *r, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to) {
    *r = NULL;
    if (dnnl_memory_desc_equal(from, to)) return true;
    dnnl_primitive_desc_t pd = NULL;
    bool ok = dnnl_reorder_primitive_desc_create(&pd, from, g_engine, to, g_engine, NULL) == dnnl_success &&
              dnnl_primitive_create(r, pd) == dnnl_success;
    if (pd) dnnl_primitive_desc_destroy(pd);
    return ok;
}

// Convolution primitive for d (user data NCHW f32 in and out), cached by shape.
static pent *conv_prim(dnnl_be *b, const s2_conv2d_desc *d, bool bias) {
    int OH, OW;
    s2_conv2d_out_hw(d, &OH, &OW);
    pkey k = {{3, b->mode, omp_get_max_threads(), d->N, d->C, d->H, d->W, d->OC, d->KH, d->KW,
               d->sh, d->sw, d->ph, d->pw, d->groups, bias}};
    pthread_mutex_lock(&b->mu);
    pent *e = pfind(b, &k);
    if (!e && (e = calloc(1, sizeof *e))) {
        e->key = k;
        int G = d->groups;
        // 1x1 convolutions run on NCHW directly (a GEMM); the others in the layout
        // oneDNN prefers (blocked), with reorders from and to NCHW around them
        bool plain = d->KH == 1 && d->KW == 1 && G == 1, ok = false;
        dnnl_memory_desc_init_by_tag(&e->usrc, 4, (dnnl_dims_t){d->N, d->C, d->H, d->W}, dnnl_f32, dnnl_nchw);
        dnnl_memory_desc_init_by_tag(&e->udst, 4, (dnnl_dims_t){d->N, d->OC, OH, OW}, dnnl_f32, dnnl_nchw);
        for (int bf = b->mode == S2_DNNL_BF16; bf >= 0 && !ok; bf--) { // bf16, else f32
            dnnl_data_type_t dt = bf ? dnnl_bf16 : dnnl_f32;
            dnnl_memory_desc_t s, w, bb, o;
            dnnl_format_tag_t io = plain ? dnnl_nchw : dnnl_format_tag_any;
            dnnl_memory_desc_init_by_tag(&s, 4, (dnnl_dims_t){d->N, d->C, d->H, d->W}, dt, io);
            dnnl_memory_desc_init_by_tag(&o, 4, (dnnl_dims_t){d->N, d->OC, OH, OW}, dnnl_f32, io);
            dnnl_memory_desc_init_by_tag(&bb, 1, (dnnl_dims_t){d->OC}, dnnl_f32, dnnl_a);
            if (G > 1) {
                dnnl_dims_t wd = {G, d->OC / G, d->C / G, d->KH, d->KW};
                dnnl_memory_desc_init_by_tag(&w, 5, wd, dt, dnnl_format_tag_any);
                dnnl_memory_desc_init_by_tag(&e->user_wei, 5, wd, dnnl_f32, dnnl_goihw);
            } else {
                dnnl_dims_t wd = {d->OC, d->C, d->KH, d->KW};
                dnnl_memory_desc_init_by_tag(&w, 4, wd, dt, dnnl_format_tag_any);
                dnnl_memory_desc_init_by_tag(&e->user_wei, 4, wd, dnnl_f32, dnnl_oihw);
            }
            int64_t pr_h = (int64_t)(OH - 1) * d->sh + d->KH - d->H - d->ph;
            int64_t pr_w = (int64_t)(OW - 1) * d->sw + d->KW - d->W - d->pw;
            dnnl_convolution_desc_t cd;
            e->src_dt = dt;
            e->bias = bb;
            ok = dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
                                                    &s, &w, bias ? &bb : NULL, &o,
                                                    (dnnl_dims_t){d->sh, d->sw}, (dnnl_dims_t){d->ph, d->pw},
                                                    (dnnl_dims_t){pr_h, pr_w}) == dnnl_success &&
                 make_prim(e, &cd, 1.0f, 0.0f);
        }
        ok = ok && make_reorder(&e->rsrc, &e->usrc, &e->src) && make_reorder(&e->rdst, &e->dst, &e->udst);
        if (ok) {
            if (e->rsrc) e->src_dt = dnnl_f32; // the reorder converts
            pinsert(b, e);
        } else {
            if (e->prim) dnnl_primitive_destroy(e->prim);
            if (e->rsrc) dnnl_primitive_destroy(e->rsrc);
            free(e);
            e = NULL;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return e;
}

// NCHW convolution on oneDNN (reference on any failure).
static void dn_conv2d(void *self, float *y, const float *x, const float *w, const float *bias,
                      const s2_conv2d_desc *d) {
    double t0 = prof_begin();
    dnnl_be *b = self;
    int OH = 0, OW = 0;
    s2_conv2d_out_hw(d, &OH, &OW);
    int64_t wn = (int64_t)d->OC * (d->C / (d->groups > 0 ? d->groups : 1)) * d->KH * d->KW;
    double flops = 2.0 * (double)d->N * OH * OW * wn;
    int nthr = small_op_threads(flops);
    bool sane = d->N > 0 && d->C > 0 && d->OC > 0 && d->groups > 0 && d->C % d->groups == 0 &&
                d->OC % d->groups == 0 && OH > 0 && OW > 0 && d->ph < d->KH && d->pw < d->KW;
    pent *e = sane ? conv_prim(b, d, bias != NULL) : NULL;
    dnnl_memory_t wm = e ? weights(b, e, w, wn) : NULL;
    if (!wm || !run(b, e, x, (int64_t)d->N * d->C * d->H * d->W, wm, bias, y)) s2_ref_conv2d(y, x, w, bias, d);
    omp_set_num_threads(nthr);
    prof_end(S2_OPK_CONV, t0, flops);
}

/* ============================== attention ============================== */

// Flash attention with its workspace from the pool (bf16 products in BF16 mode).
static void dn_attention(void *self, float *o, int64_t o_ld, const float *q, int64_t q_ld,
                         const float *k, int64_t k_ld, const float *v, int64_t v_ld, int B,
                         int H, int64_t Nq, int64_t Nk, int d) {
    double t0 = prof_begin(), flops = 4.0 * B * H * (double)Nq * Nk * d;
    dnnl_be *b = self;
    bool bf = b->mode == S2_DNNL_BF16;
    int nthr = small_op_threads(flops);
    size_t n = s2_flash_attention_ws(B, H, Nq, Nk, d, bf, omp_get_max_threads());
    int slot = -1;
    void *ws = n ? ws_acquire(b, n, &slot) : NULL;
    s2_flash_attention(o, o_ld, q, q_ld, k, k_ld, v, v_ld, B, H, Nq, Nk, d, bf, ws, ws ? n : 0);
    if (ws) ws_release(b, ws, slot);
    omp_set_num_threads(nthr);
    prof_end(S2_OPK_ATTN, t0, flops);
}

/* ============================== instances ============================== */

// Fills the two backend instances (once).
static void init_backends(void) {
    for (int m = 0; m < 2; m++) {
        dnnl_be *b = &g_be[m];
        b->mode = (s2_dnnl_mode)m;
        pthread_mutex_init(&b->mu, NULL);
        b->be = (s2_backend){.name = m ? "dnnl-bf16" : "dnnl-f32", .linear = dn_linear,
                             .matmul = dn_matmul, .conv2d = dn_conv2d,
                             .attention = dn_attention, .self = b};
    }
}

const s2_backend *s2_backend_dnnl(s2_dnnl_mode mode) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&g_once, init_once);
    pthread_once(&once, init_backends);
    if (!g_engine) {
        s2_err(SAM2C_ERR_UNSUPPORTED, "oneDNN: cannot create the CPU engine");
        return NULL;
    }
    if (mode != S2_DNNL_F32 && mode != S2_DNNL_BF16) {
        s2_err(SAM2C_ERR_ARG, "oneDNN: unknown mode %d", (int)mode);
        return NULL;
    }
    return &g_be[mode].be;
}

const char *s2_dnnl_info(void) {
    static char buf[160];
    const dnnl_version_t *v = dnnl_version();
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    const char *in = isa == dnnl_cpu_isa_avx512_core_amx    ? "avx512_core_amx"
                     : isa == dnnl_cpu_isa_avx512_core_bf16 ? "avx512_core_bf16"
                     : isa == dnnl_cpu_isa_avx512_core_vnni ? "avx512_core_vnni"
                     : isa == dnnl_cpu_isa_avx512_core      ? "avx512_core"
                     : isa == dnnl_cpu_isa_avx2             ? "avx2" : "other";
    snprintf(buf, sizeof buf, "oneDNN %d.%d.%d (%s runtime, max ISA %s, %d threads)", v->major, v->minor,
             v->patch, v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "non-OpenMP", in,
             omp_get_max_threads());
    return buf;
}

#else /* !SAM2C_HAVE_DNNL */

const s2_backend *s2_backend_dnnl(s2_dnnl_mode mode) {
    (void)mode;
    s2_err(SAM2C_ERR_UNSUPPORTED, "this build has no oneDNN backend (libdnnl not found)");
    return NULL;
}
const char *s2_dnnl_info(void) { return "oneDNN: not built in"; }

#endif

/* ============================== selection ============================== */

const s2_backend *s2_backend_by_name(const char *name) {
    if (!name) name = "";
    if (!strcmp(name, "ref") || !strcmp(name, "reference")) return s2_backend_reference();
    if (!strcmp(name, "dnnl") || !strcmp(name, "dnnl-f32")) return s2_backend_dnnl(S2_DNNL_F32);
    if (!strcmp(name, "dnnl-bf16")) return s2_backend_dnnl(S2_DNNL_BF16);
    s2_err(SAM2C_ERR_ARG, "unknown backend '%s' (ref, dnnl, dnnl-f32, dnnl-bf16)", name);
    return NULL;
}

int s2_backend_from_args(const char *backend, const char *dtype, const s2_backend **out) {
    *out = NULL;
    bool bf = false;
    if (dtype && strcmp(dtype, "f32") && !(bf = !strcmp(dtype, "bf16")))
        return s2_err(SAM2C_ERR_ARG, "unknown dtype '%s' (f32 or bf16)", dtype);
    if (!backend || !strcmp(backend, "auto")) {
        const s2_backend *d = s2_backend_dnnl(bf ? S2_DNNL_BF16 : S2_DNNL_F32);
        if (!d && bf) return s2_err(SAM2C_ERR_UNSUPPORTED, "bf16 needs the oneDNN backend (not built in)");
        *out = d ? d : s2_backend_reference();
        return SAM2C_OK;
    }
    if (!strcmp(backend, "ref") || !strcmp(backend, "reference")) {
        if (bf) return s2_err(SAM2C_ERR_UNSUPPORTED, "the reference backend is f32 only (use --backend dnnl)");
        *out = s2_backend_reference();
        return SAM2C_OK;
    }
    if (!strcmp(backend, "dnnl")) {
        *out = s2_backend_dnnl(bf ? S2_DNNL_BF16 : S2_DNNL_F32);
        return *out ? SAM2C_OK : SAM2C_ERR_UNSUPPORTED;
    }
    return s2_err(SAM2C_ERR_ARG, "unknown backend '%s' (ref, dnnl or auto)", backend);
}
