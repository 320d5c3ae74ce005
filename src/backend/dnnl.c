/* oneDNN backend: Linear and matmul through dnnl matmul primitives (Linear + GELU / ReLU
 * fused as an eltwise post-op, two-layer MLPs with a bf16 hidden layer in BF16 mode),
 * conv2d through convolution primitives, the kernel == stride transposed convolution as
 * one matmul plus an interleaving epilogue (kernels/fast_convt.c), attention through the
 * flash kernel (flash_attention.c) or, for a handful of keys, small_attention.c; GELU
 * and the LayerNorms through the vectorised kernels of kernels/fast.h.
 *
 * Letters: M rows, K reduction, N output features; conv: N C H W input, OC KH KW
 * weights, G groups.
 *
 * Modes: F32 runs every product in f32. BF16 converts activations to bf16 on the fly,
 * keeps weights in bf16 (converted once), accumulates in f32 and writes f32 outputs
 * with the bias fused; matmul (activation x activation, only the small mask-decoder
 * product) stays f32 in both modes, and so does attention with few queries (packing
 * thousands of keys to bf16 for 8 queries costs more than it saves).
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
#include "kernels/fast.h"

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

// Primitive attributes: user-managed scratchpad (concurrent executions stay safe),
// output scale alpha, then the post-ops: sum with beta, the activation (exact-erf GELU
// or ReLU) applied in f32 to the output.
static dnnl_primitive_attr_t make_attr(float alpha, float beta, s2_act act) {
    dnnl_primitive_attr_t a = NULL;
    if (dnnl_primitive_attr_create(&a) != dnnl_success) return NULL;
    dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user);
    if (alpha != 1.0f) dnnl_primitive_attr_set_output_scales(a, 1, 0, &alpha);
    if (beta != 0.0f || act != S2_ACT_NONE) {
        dnnl_post_ops_t po;
        if (dnnl_post_ops_create(&po) == dnnl_success) {
            if (beta != 0.0f) dnnl_post_ops_append_sum(po, beta);
            if (act != S2_ACT_NONE)
                dnnl_post_ops_append_eltwise(po, 1.0f, act == S2_ACT_GELU ? dnnl_eltwise_gelu_erf : dnnl_eltwise_relu,
                                             0.0f, 0.0f);
            dnnl_primitive_attr_set_post_ops(a, po);
            dnnl_post_ops_destroy(po);
        }
    }
    return a;
}

// Creates the primitive of op descriptor `desc` into e (false when unimplemented).
static bool make_prim(pent *e, const void *desc, float alpha, float beta, s2_act act) {
    dnnl_primitive_attr_t attr = make_attr(alpha, beta, act);
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
static bool run(dnnl_be *b, const pent *e, const void *src, int64_t src_n, bool src_ready, dnnl_memory_t wm,
                const float *bias, void *dst) {
    size_t sp = dnnl_memory_desc_get_size(&e->scratch);
    size_t sb = e->rsrc ? dnnl_memory_desc_get_size(&e->src) : e->src_dt == dnnl_bf16 && !src_ready ? (size_t)src_n * 2 : 0;
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

// Matmul primitive for y[M,N] = act(x[M,K] w^T (+ bias)), cached by shape; y in bf16
// when dst_bf16 (BF16 mode: a hidden layer the next Linear reads as is).
static pent *linear_prim(dnnl_be *b, int64_t M, int64_t K, int64_t N, bool bias, s2_act act, bool dst_bf16) {
    pkey k = {{1, b->mode, omp_get_max_threads(), M, K, N, bias, act, dst_bf16}};
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
        dnnl_memory_desc_init_by_tag(&d, 2, (dnnl_dims_t){M, N}, dst_bf16 ? dnnl_bf16 : dnnl_f32, dnnl_ab);
        dnnl_memory_desc_init_by_tag(&e->user_wei, 2, (dnnl_dims_t){K, N}, dnnl_f32, dnnl_ba);
        dnnl_matmul_desc_t md;
        e->src_dt = dt;
        e->bias = bb;
        if (dnnl_matmul_desc_init(&md, &s, &w, bias ? &bb : NULL, &d) != dnnl_success ||
            !make_prim(e, &md, 1.0f, 0.0f, act)) {
            free(e);
            e = NULL;
        } else {
            pinsert(b, e);
        }
    }
    pthread_mutex_unlock(&b->mu);
    return e;
}

// y[M,N] = act(x[M,K] w[N,K]^T + b) on oneDNN (reference on any failure).
static void dn_linear_act(void *self, float *y, const float *x, const float *w, const float *bias,
                          int64_t M, int64_t K, int64_t N, s2_act act) {
    double t0 = prof_begin();
    dnnl_be *b = self;
    int nthr = small_op_threads(2.0 * (double)M * K * N);
    pent *e = M > 0 && K > 0 && N > 0 ? linear_prim(b, M, K, N, bias != NULL, act, false) : NULL;
    dnnl_memory_t wm = NULL;
    bool in_place = e && dnnl_memory_desc_equal(&e->wei, &e->user_wei);
    if (in_place && dnnl_memory_create(&wm, &e->wei, g_engine, (void *)w) != dnnl_success) wm = NULL;
    else if (e && !in_place) wm = weights(b, e, w, K * N);
    if (!wm || !run(b, e, x, M * K, false, wm, bias, y)) {
        s2_ref_linear(y, x, w, bias, M, K, N);
        if (act == S2_ACT_GELU) s2_fast_gelu(y, M * N);
        else if (act == S2_ACT_RELU) s2_ref_relu(y, M * N);
    }
    if (in_place && wm) dnnl_memory_destroy(wm);
    omp_set_num_threads(nthr);
    prof_end(S2_OPK_LINEAR, t0, 2.0 * (double)M * K * N);
}

// y[M,N] = x[M,K] w[N,K]^T + b on oneDNN.
static void dn_linear(void *self, float *y, const float *x, const float *w, const float *bias,
                      int64_t M, int64_t K, int64_t N) {
    dn_linear_act(self, y, x, w, bias, M, K, N, S2_ACT_NONE);
}

/* Two Linear layers with the activation between, y = act(x w1^T + b1) w2^T + b2, the
 * hidden layer in `hidden` (M*Hd floats of room). BF16 mode keeps the hidden layer in
 * bf16 (written by the first product with its activation, read as is by the second):
 * half the traffic and no conversion pass. False on failure (nothing written then). */
static bool mlp_bf16(dnnl_be *b, float *y, const float *x, const float *w1, const float *b1, const float *w2,
                     const float *b2, int64_t M, int64_t K, int64_t Hd, int64_t N, s2_act act, void *hidden) {
    pent *e1 = linear_prim(b, M, K, Hd, b1 != NULL, act, true), *e2 = linear_prim(b, M, Hd, N, b2 != NULL, S2_ACT_NONE, false);
    dnnl_memory_t wm1 = e1 ? weights(b, e1, w1, K * Hd) : NULL, wm2 = e2 ? weights(b, e2, w2, Hd * N) : NULL;
    return wm1 && wm2 && run(b, e1, x, M * K, false, wm1, b1, hidden) && run(b, e2, hidden, M * Hd, true, wm2, b2, y);
}

// The MLP slot: bf16 hidden layer in BF16 mode, else the two Linear calls.
static void dn_mlp(void *self, float *y, const float *x, const float *w1, const float *b1, const float *w2,
                   const float *b2, int64_t M, int64_t K, int64_t Hd, int64_t N, s2_act act, float *hidden) {
    dnnl_be *b = self;
    double flops = 2.0 * (double)M * Hd * (K + N);
    if (b->mode == S2_DNNL_BF16 && flops >= SMALL_FLOPS && M > 0 && K > 0 && Hd > 0 && N > 0) {
        double t0 = prof_begin();
        if (mlp_bf16(b, y, x, w1, b1, w2, b2, M, K, Hd, N, act, hidden)) {
            prof_end(S2_OPK_LINEAR, t0, flops);
            return;
        }
    }
    dn_linear_act(self, hidden, x, w1, b1, M, K, Hd, act);
    dn_linear(self, y, hidden, w2, b2, M, Hd, N);
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
                !make_prim(e, &md, alpha, beta, S2_ACT_NONE)) {
                free(e);
                e = NULL;
            } else {
                pinsert(b, e);
            }
        }
        pthread_mutex_unlock(&b->mu);
        dnnl_memory_t wm = NULL;
        if (e && dnnl_memory_create(&wm, &e->wei, g_engine, (void *)bm) == dnnl_success) {
            done = run(b, e, a, M * K, false, wm, NULL, c);
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
                 make_prim(e, &cd, 1.0f, 0.0f, S2_ACT_NONE);
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
    if (!wm || !run(b, e, x, (int64_t)d->N * d->C * d->H * d->W, false, wm, bias, y)) s2_ref_conv2d(y, x, w, bias, d);
    omp_set_num_threads(nthr);
    prof_end(S2_OPK_CONV, t0, flops);
}

/* ========================== transposed convolution ========================== */

// Matmul primitive for t[NC, HW] = w^T[NC, C] x[C, HW]: the weights [C, NC] read
// through transposed strides as the left operand, the image (NCHW, or NHWC read
// transposed) as the right one; cached by shape.
static pent *convt_prim(dnnl_be *b, int64_t HW, int64_t C, int64_t NC, bool nhwc) {
    pkey k = {{4, b->mode, omp_get_max_threads(), HW, C, NC, nhwc}};
    pthread_mutex_lock(&b->mu);
    pent *e = pfind(b, &k);
    if (!e && (e = calloc(1, sizeof *e))) {
        e->key = k;
        dnnl_data_type_t dt = b->mode == S2_DNNL_BF16 ? dnnl_bf16 : dnnl_f32;
        dnnl_memory_desc_t s, w, d;
        dnnl_memory_desc_init_by_strides(&s, 2, (dnnl_dims_t){NC, C}, dt, (dnnl_dims_t){1, NC});
        dnnl_memory_desc_init_by_tag(&w, 2, (dnnl_dims_t){C, HW}, dt, nhwc ? dnnl_ba : dnnl_ab);
        dnnl_memory_desc_init_by_tag(&d, 2, (dnnl_dims_t){NC, HW}, dnnl_f32, dnnl_ab);
        dnnl_matmul_desc_t md;
        e->src_dt = dt;
        if (dnnl_matmul_desc_init(&md, &s, &w, NULL, &d) != dnnl_success ||
            !make_prim(e, &md, 1.0f, 0.0f, S2_ACT_NONE)) {
            free(e);
            e = NULL;
        } else {
            pinsert(b, e);
        }
    }
    pthread_mutex_unlock(&b->mu);
    return e;
}

// One image of the transposed convolution: t = w^T x (x converted to bf16 into xb first
// in BF16 mode), false on failure.
static bool convt_gemm(dnnl_be *b, const pent *e, const float *x, int64_t nx, const float *w, int64_t nw,
                       uint16_t *xb, float *t) {
    const void *xp = x;
    if (xb) to_bf16(xb, x, nx), xp = xb;
    dnnl_memory_t xm = NULL;
    bool ok = dnnl_memory_create(&xm, &e->wei, g_engine, (void *)xp) == dnnl_success && run(b, e, w, nw, false, xm, NULL, t);
    if (xm) dnnl_memory_destroy(xm);
    return ok;
}

// Transposed convolution (kernel == stride) as one GEMM per image into a pooled buffer,
// then the interleaving epilogue (bias, add, GELU) into NCHW y; reference on failure.
static void dn_conv_transpose2d(void *self, float *y, const float *x, const float *w,
                                const float *bias, const s2_convt_desc *d) {
    double t0 = prof_begin();
    dnnl_be *b = self;
    int64_t HW = (int64_t)d->H * d->W, NC = (int64_t)d->OC * d->K * d->K, nx = d->C * HW;
    double flops = 2.0 * d->N * (double)HW * d->C * NC;
    int nthr = small_op_threads(flops);
    bool ok = d->N > 0 && HW > 0 && d->C > 0 && NC > 0 && d->act != S2_ACT_RELU;
    pent *e = ok ? convt_prim(b, HW, d->C, NC, d->x_nhwc) : NULL;
    bool bf = b->mode == S2_DNNL_BF16;
    size_t tb = rup64((size_t)(HW * NC) * sizeof(float));
    int slot = -1;
    uint8_t *ws = e ? ws_acquire(b, tb + (bf ? (size_t)nx * 2 : 0), &slot) : NULL;
    ok = ws != NULL;
    for (int n = 0; ok && n < d->N; n++) {
        int64_t ysz = NC * HW;
        ok = convt_gemm(b, e, x + n * nx, nx, w, d->C * NC, bf ? (uint16_t *)(ws + tb) : NULL, (float *)ws);
        const float *add = d->add ? d->add + (d->add_shared ? 0 : n * ysz) : NULL;
        if (ok) s2_fast_convt_scatter(y + n * ysz, (float *)ws, bias, add, true, d->act == S2_ACT_GELU, 1, d->OC, d->H, d->W, d->K);
    }
    if (ws) ws_release(b, ws, slot);
    if (!ok) s2_ref_conv_transpose2d(y, x, w, bias, d);
    omp_set_num_threads(nthr);
    prof_end(S2_OPK_CONV, t0, flops);
}

/* ========================== element-wise, norms ========================== */

// Fast exact-erf GELU (kernels/fast_act.c).
static void dn_gelu(void *self, float *x, int64_t n) { s2_fast_gelu(x, n); }

// Fast LayerNorm over rows.
static void dn_layernorm(void *self, float *y, const float *x, const float *g, const float *bb,
                         int64_t rows, int64_t C, float eps) {
    s2_fast_layernorm(y, x, g, bb, rows, C, eps);
}

// Fast LayerNorm2d over NCHW channels.
static void dn_layernorm2d(void *self, float *y, const float *x, const float *g, const float *bb,
                           int N, int C, int64_t HW, float eps) {
    s2_fast_layernorm2d(y, x, g, bb, N, C, HW, eps);
}

/* ============================== attention ============================== */

// Flash attention with its workspace from the pool (bf16 products in BF16 mode).
static void dn_attention(void *self, float *o, int64_t o_ld, const float *q, int64_t q_ld,
                         const float *k, int64_t k_ld, const float *v, int64_t v_ld, int B,
                         int H, int64_t Nq, int64_t Nk, int d) {
    double t0 = prof_begin(), flops = 4.0 * B * H * (double)Nq * Nk * d;
    dnnl_be *b = self;
    // bf16 products pay off from a few dozen queries per head: below, packing K and V
    // to bf16 costs more than it saves (the decoder's token -> image attention)
    bool bf = b->mode == S2_DNNL_BF16 && Nq > 32;
    int nthr = small_op_threads(flops);
    if (s2_small_attention_fits(Nq, Nk, d)) { // image -> token attention of the decoder
        s2_small_attention(o, o_ld, q, q_ld, k, k_ld, v, v_ld, B, H, Nq, Nk, d);
        omp_set_num_threads(nthr);
        prof_end(S2_OPK_ATTN, t0, flops);
        return;
    }
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
                             .attention = dn_attention, .linear_act = dn_linear_act,
                             .gelu = dn_gelu, .layernorm = dn_layernorm,
                             .layernorm2d = dn_layernorm2d, .mlp = dn_mlp,
                             .conv_transpose2d = dn_conv_transpose2d, .self = b};
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

#else /* !SAM2C_HAVE_DNNL */

const s2_backend *s2_backend_dnnl(s2_dnnl_mode mode) {
    (void)mode;
    s2_err(SAM2C_ERR_UNSUPPORTED, "this build has no oneDNN backend (libdnnl not found)");
    return NULL;
}

#endif
