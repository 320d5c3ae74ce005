/* Restricted unpickler (protocols 2-5, the opcodes torch.save emits for a state_dict).
 * Nothing is ever executed: allowed globals map to a fixed set of data constructors
 * and everything else is refused with the global or opcode and its byte offset. */
#include "io/pickle.h"
#include "core/s2.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PK_MAX_STACK (1 << 20)
#define PK_MAX_MARKS (1 << 16)
#define PK_MAX_MEMO (1u << 22)
#define PK_MAX_ITEMS (1 << 26)

typedef struct up {
    const uint8_t *d;
    size_t len, pos, op_at; /* op_at: offset of the opcode being run */
    const char *name;
    s2_pk **stack;
    int sp, scap;
    int *marks;
    int nm, mcap;
    s2_pk **memo;
    uint32_t memo_cap, memo_count;
    s2_pickle *out;
} up;

/* "<name>: pickle: <problem> (offset N)". */
static int S2_PRINTF(2, 3) pk_fail(const up *u, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return s2_err(SAM2C_ERR_FORMAT, "%s: pickle: %s (offset %zu)", u->name, msg, u->op_at);
}

/* Every value joins the load's allocation list, so sharing through the memo is free. */
static s2_pk *pk_new(up *u, s2_pk_type t) {
    s2_pk *v = s2_calloc(1, sizeof *v);
    if (!v) return NULL;
    v->type = t;
    v->next_alloc = u->out->all;
    u->out->all = v;
    return v;
}

/* Pushes v (NULL means an allocation failed); the stack is bounded. */
static int pk_push(up *u, s2_pk *v) {
    if (!v) return SAM2C_ERR_NOMEM;
    if (u->sp == u->scap) {
        if (u->scap >= PK_MAX_STACK) return pk_fail(u, "stack deeper than %d", PK_MAX_STACK);
        int cap = u->scap ? u->scap * 2 : 64;
        s2_pk **s = s2_realloc(u->stack, (size_t)cap * sizeof *s);
        if (!s) return SAM2C_ERR_NOMEM;
        u->stack = s;
        u->scap = cap;
    }
    u->stack[u->sp++] = v;
    return SAM2C_OK;
}

/* Pops one value; values below the innermost MARK are out of reach, as in Python. */
static int pk_pop(up *u, s2_pk **v) {
    int floor = u->nm ? u->marks[u->nm - 1] : 0;
    if (u->sp <= floor) return pk_fail(u, "stack underflow");
    *v = u->stack[--u->sp];
    return SAM2C_OK;
}

/* Peeks at the top value (same reach as pk_pop). */
static int pk_top(up *u, s2_pk **v) {
    int floor = u->nm ? u->marks[u->nm - 1] : 0;
    if (u->sp <= floor) return pk_fail(u, "stack underflow");
    *v = u->stack[u->sp - 1];
    return SAM2C_OK;
}

/* Removes the topmost mark; its items are stack[*k .. sp). */
static int pk_pop_mark(up *u, int *k) {
    if (!u->nm) return pk_fail(u, "no MARK on the stack");
    *k = u->marks[--u->nm];
    return SAM2C_OK;
}

/* Appends v to a tuple/list/dict item array (capacity doubling, bounded). */
static int pk_append(up *u, s2_pk *c, s2_pk *v) {
    if (c->n == c->cap) {
        if (c->cap >= PK_MAX_ITEMS) return pk_fail(u, "container larger than %d items", PK_MAX_ITEMS);
        int cap = c->cap ? c->cap * 2 : 8;
        s2_pk **it = s2_realloc(c->items, (size_t)cap * sizeof *it);
        if (!it) return SAM2C_ERR_NOMEM;
        c->items = it;
        c->cap = cap;
    }
    c->items[c->n++] = v;
    return SAM2C_OK;
}

/* Tuple of stack[k..sp), which is then popped. */
static int pk_make_tuple(up *u, int k) {
    s2_pk *t = pk_new(u, S2_PK_TUPLE);
    if (!t) return SAM2C_ERR_NOMEM;
    for (int i = k; i < u->sp; i++) S2_CHECK(pk_append(u, t, u->stack[i]));
    u->sp = k;
    return pk_push(u, t);
}

/* ---- reading operands ---- */

/* Operands must lie inside the pickle. */
static int pk_need(up *u, size_t n) {
    if (n > u->len - u->pos) return pk_fail(u, "truncated pickle");
    return SAM2C_OK;
}

static uint64_t pk_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Reads an n-byte little-endian unsigned operand. */
static int pk_arg(up *u, int n, uint64_t *v) {
    S2_CHECK(pk_need(u, (size_t)n));
    *v = pk_le(u->d + u->pos, n);
    u->pos += (size_t)n;
    return SAM2C_OK;
}

/* String of `n` bytes at pos. */
static int pk_str(up *u, uint64_t n) {
    if (n > u->len - u->pos) return pk_fail(u, "truncated pickle (string of %llu bytes)", (unsigned long long)n);
    s2_pk *v = pk_new(u, S2_PK_STR);
    if (!v || !(v->s = s2_malloc((size_t)n + 1))) return SAM2C_ERR_NOMEM;
    memcpy(v->s, u->d + u->pos, (size_t)n);
    v->s[n] = 0;
    v->slen = (size_t)n;
    u->pos += (size_t)n;
    return pk_push(u, v);
}

/* Pushes an INT value. */
static int pk_int(up *u, int64_t i) {
    s2_pk *v = pk_new(u, S2_PK_INT);
    if (v) v->i = i;
    return pk_push(u, v);
}

/* LONG1: n-byte two's-complement little-endian integer (n <= 8 here). */
static int pk_long1(up *u) {
    uint64_t n, raw;
    S2_CHECK(pk_arg(u, 1, &n));
    if (n > 8) return pk_fail(u, "LONG1 integer of %llu bytes is too large", (unsigned long long)n);
    if (n == 0) return pk_int(u, 0);
    S2_CHECK(pk_arg(u, (int)n, &raw));
    if (n < 8 && (raw >> (8 * n - 1)) & 1) raw |= ~(uint64_t)0 << (8 * n); /* sign-extend */
    return pk_int(u, (int64_t)raw);
}

/* BINFLOAT: 8-byte big-endian IEEE double. */
static int pk_binfloat(up *u) {
    S2_CHECK(pk_need(u, 8));
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) bits = (bits << 8) | u->d[u->pos + (size_t)i]; /* big-endian */
    u->pos += 8;
    s2_pk *v = pk_new(u, S2_PK_FLOAT);
    if (v) memcpy(&v->f, &bits, 8);
    return pk_push(u, v);
}

/* ---- memo ---- */

/* BINPUT/LONG_BINPUT/MEMOIZE: memo[idx] = top of stack (index bounded). */
static int pk_memo_put(up *u, uint64_t idx) {
    s2_pk *top = NULL;
    S2_CHECK(pk_top(u, &top));
    if (idx >= PK_MAX_MEMO) return pk_fail(u, "memo index %llu too large", (unsigned long long)idx);
    if (idx >= u->memo_cap) {
        uint32_t cap = u->memo_cap ? u->memo_cap : 64;
        while (cap <= idx) cap *= 2;
        s2_pk **m = s2_realloc(u->memo, (size_t)cap * sizeof *m);
        if (!m) return SAM2C_ERR_NOMEM;
        memset(m + u->memo_cap, 0, (size_t)(cap - u->memo_cap) * sizeof *m);
        u->memo = m;
        u->memo_cap = cap;
    }
    if (!u->memo[idx]) u->memo_count++;
    u->memo[idx] = top;
    return SAM2C_OK;
}

/* BINGET/LONG_BINGET: pushes a memoised value. */
static int pk_memo_get(up *u, uint64_t idx) {
    if (idx >= u->memo_cap || !u->memo[idx])
        return pk_fail(u, "memo key %llu missing", (unsigned long long)idx);
    return pk_push(u, u->memo[idx]);
}

/* ---- globals and calls ---- */

/* Printable copy of untrusted text for messages. */
static void pk_clean(char *dst, size_t cap, const char *src, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++)
        dst[k++] = (src[i] >= 0x20 && src[i] < 0x7f && src[i] != '\'') ? src[i] : '?';
    dst[k] = 0;
}

/* Maps "module.name" to an allowed global or refuses it. */
static int pk_global(up *u, const char *mod, size_t ml, const char *nm, size_t nl) {
    static const struct { const char *mod, *name; s2_pk_global g; } allow[] = {
        {"collections", "OrderedDict", S2_PKG_ORDERED_DICT},
        {"torch._utils", "_rebuild_tensor_v2", S2_PKG_REBUILD_TENSOR_V2},
        {"torch._utils", "_rebuild_parameter", S2_PKG_REBUILD_PARAMETER},
        {"torch", "FloatStorage", S2_PKG_FLOAT_STORAGE},
        {"torch", "HalfStorage", S2_PKG_HALF_STORAGE},
        {"torch", "BFloat16Storage", S2_PKG_BFLOAT16_STORAGE},
    };
    for (size_t i = 0; i < sizeof allow / sizeof allow[0]; i++) {
        if (strlen(allow[i].mod) == ml && strlen(allow[i].name) == nl &&
            memcmp(allow[i].mod, mod, ml) == 0 && memcmp(allow[i].name, nm, nl) == 0) {
            s2_pk *v = pk_new(u, S2_PK_GLOBAL);
            if (v) v->g = allow[i].g;
            return pk_push(u, v);
        }
    }
    char a[128], b[128];
    pk_clean(a, sizeof a, mod, ml);
    pk_clean(b, sizeof b, nm, nl);
    bool storage = ml == 5 && memcmp(mod, "torch", 5) == 0 && nl > 7 && memcmp(nm + nl - 7, "Storage", 7) == 0;
    return pk_fail(u, "global '%s.%s' is not allowed%s", a, b,
                   storage ? " (only Float, Half and BFloat16 storages are supported)" : "");
}

/* GLOBAL: "module\nname\n" operands. */
static int pk_op_global(up *u) {
    const char *s = (const char *)u->d + u->pos;
    size_t left = u->len - u->pos;
    const char *nl1 = memchr(s, '\n', S2_MIN(left, (size_t)512));
    if (!nl1) return pk_fail(u, "bad GLOBAL operand");
    size_t ml = (size_t)(nl1 - s);
    const char *nm = nl1 + 1;
    const char *nl2 = memchr(nm, '\n', S2_MIN(left - ml - 1, (size_t)512));
    if (!nl2) return pk_fail(u, "bad GLOBAL operand");
    u->pos += ml + 1 + (size_t)(nl2 - nm) + 1;
    return pk_global(u, s, ml, nm, (size_t)(nl2 - nm));
}

/* STACK_GLOBAL: module and name strings popped from the stack. */
static int pk_op_stack_global(up *u) {
    s2_pk *mod = NULL, *nm = NULL;
    S2_CHECK(pk_pop(u, &nm));
    S2_CHECK(pk_pop(u, &mod));
    if (mod->type != S2_PK_STR || nm->type != S2_PK_STR) return pk_fail(u, "STACK_GLOBAL needs two strings");
    return pk_global(u, mod->s, mod->slen, nm->s, nm->slen);
}

/* Reads an int tuple (size or stride) into dst[ndim]. */
static int pk_int_tuple(up *u, const s2_pk *t, int64_t *dst, int *ndim, const char *what) {
    if (t->type != S2_PK_TUPLE) return pk_fail(u, "tensor %s is not a tuple", what);
    if (t->n > S2_MAX_DIMS) return pk_fail(u, "tensor with %d dimensions (at most %d)", t->n, S2_MAX_DIMS);
    for (int i = 0; i < t->n; i++) {
        if (t->items[i]->type != S2_PK_INT || t->items[i]->i < 0)
            return pk_fail(u, "tensor %s entry %d is not a non-negative integer", what, i);
        dst[i] = t->items[i]->i;
    }
    *ndim = t->n;
    return SAM2C_OK;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks[, metadata]) */
static int pk_rebuild_tensor(up *u, const s2_pk *args) {
    if (args->n != 6 && args->n != 7) return pk_fail(u, "_rebuild_tensor_v2 takes 6 or 7 arguments, got %d", args->n);
    s2_pk *const *a = args->items;
    if (a[0]->type != S2_PK_STORAGE) return pk_fail(u, "_rebuild_tensor_v2: first argument is not a storage");
    if (a[1]->type != S2_PK_INT || a[1]->i < 0) return pk_fail(u, "_rebuild_tensor_v2: bad storage offset");
    s2_pk *t = pk_new(u, S2_PK_TENSOR);
    if (!t) return SAM2C_ERR_NOMEM;
    int nstride = 0;
    S2_CHECK(pk_int_tuple(u, a[2], t->size, &t->ndim, "size"));
    S2_CHECK(pk_int_tuple(u, a[3], t->stride, &nstride, "stride"));
    if (nstride != t->ndim) return pk_fail(u, "_rebuild_tensor_v2: size and stride lengths differ");
    t->storage = a[0];
    t->offset = a[1]->i;
    return pk_push(u, t);
}

/* REDUCE: applies an allowed global to an argument tuple (data constructors only). */
static int pk_op_reduce(up *u) {
    s2_pk *args = NULL, *fn = NULL;
    S2_CHECK(pk_pop(u, &args));
    S2_CHECK(pk_pop(u, &fn));
    if (fn->type != S2_PK_GLOBAL) return pk_fail(u, "REDUCE on something that is not an allowed global");
    if (args->type != S2_PK_TUPLE) return pk_fail(u, "REDUCE arguments are not a tuple");
    switch (fn->g) {
    case S2_PKG_ORDERED_DICT:
        if (args->n != 0) return pk_fail(u, "OrderedDict with constructor arguments");
        return pk_push(u, pk_new(u, S2_PK_DICT));
    case S2_PKG_REBUILD_TENSOR_V2:
        return pk_rebuild_tensor(u, args);
    case S2_PKG_REBUILD_PARAMETER:
        if (args->n < 1 || args->items[0]->type != S2_PK_TENSOR)
            return pk_fail(u, "_rebuild_parameter without a tensor");
        return pk_push(u, args->items[0]);
    default:
        return pk_fail(u, "storage type called as a function");
    }
}

/* BUILD sets object state (an OrderedDict's _metadata, a parameter's extras): ignored. */
static int pk_op_build(up *u) {
    s2_pk *state = NULL, *obj = NULL;
    S2_CHECK(pk_pop(u, &state));
    S2_CHECK(pk_top(u, &obj));
    if (obj->type != S2_PK_DICT && obj->type != S2_PK_TENSOR)
        return pk_fail(u, "BUILD on an unsupported object");
    return SAM2C_OK;
}

/* BINPERSID: ('storage', storage_type, key, location, numel) -> STORAGE. */
static int pk_op_persid(up *u) {
    s2_pk *pid = NULL;
    S2_CHECK(pk_pop(u, &pid));
    if (pid->type != S2_PK_TUPLE || pid->n != 5 || pid->items[0]->type != S2_PK_STR ||
        strcmp(pid->items[0]->s, "storage") != 0)
        return pk_fail(u, "persistent id is not ('storage', type, key, location, numel)");
    s2_pk *const *a = pid->items;
    if (a[1]->type != S2_PK_GLOBAL || a[1]->g < S2_PKG_FLOAT_STORAGE)
        return pk_fail(u, "persistent id without a storage type");
    if (a[2]->type != S2_PK_STR || a[4]->type != S2_PK_INT || a[4]->i < 0)
        return pk_fail(u, "malformed storage persistent id");
    s2_pk *s = pk_new(u, S2_PK_STORAGE);
    if (!s) return SAM2C_ERR_NOMEM;
    s->dtype = a[1]->g == S2_PKG_FLOAT_STORAGE ? S2_F32 : a[1]->g == S2_PKG_HALF_STORAGE ? S2_F16 : S2_BF16;
    s->s = a[2]->s; /* owned by the key string value */
    s->slen = a[2]->slen;
    s->numel = a[4]->i;
    return pk_push(u, s);
}

/* ---- containers ---- */

/* Lowest stack slot visible above the innermost mark. */
static int pk_floor(const up *u) { return u->nm ? u->marks[u->nm - 1] : 0; }

/* SETITEM / SETITEMS: key-value pairs into the dict below them. */
static int pk_op_setitems(up *u, bool many) {
    int k = u->sp - 2;
    if (many) S2_CHECK(pk_pop_mark(u, &k));
    if (k - 1 < pk_floor(u) || k > u->sp || (u->sp - k) % 2) return pk_fail(u, "bad SETITEM(S) stack");
    s2_pk *d = u->stack[k - 1];
    if (d->type != S2_PK_DICT) return pk_fail(u, "SETITEM(S) on something that is not a dict");
    for (int i = k; i < u->sp; i++) S2_CHECK(pk_append(u, d, u->stack[i]));
    u->sp = k;
    return SAM2C_OK;
}

/* APPEND / APPENDS: values into the list below them. */
static int pk_op_appends(up *u, bool many) {
    int k = u->sp - 1;
    if (many) S2_CHECK(pk_pop_mark(u, &k));
    if (k - 1 < pk_floor(u) || k > u->sp) return pk_fail(u, "bad APPEND(S) stack");
    s2_pk *l = u->stack[k - 1];
    if (l->type != S2_PK_LIST) return pk_fail(u, "APPEND(S) on something that is not a list");
    for (int i = k; i < u->sp; i++) S2_CHECK(pk_append(u, l, u->stack[i]));
    u->sp = k;
    return SAM2C_OK;
}

/* MARK: remembers the stack depth (bounded nesting). */
static int pk_op_mark(up *u) {
    if (u->nm == u->mcap) {
        if (u->mcap >= PK_MAX_MARKS) return pk_fail(u, "more than %d nested MARKs", PK_MAX_MARKS);
        int cap = u->mcap ? u->mcap * 2 : 32;
        int *m = s2_realloc(u->marks, (size_t)cap * sizeof *m);
        if (!m) return SAM2C_ERR_NOMEM;
        u->marks = m;
        u->mcap = cap;
    }
    u->marks[u->nm++] = u->sp;
    return SAM2C_OK;
}

/* TUPLE1/2/3: the top n values become a tuple. */
static int pk_op_tuple_n(up *u, int n) {
    int floor = u->nm ? u->marks[u->nm - 1] : 0;
    if (u->sp - floor < n) return pk_fail(u, "stack underflow");
    return pk_make_tuple(u, u->sp - n);
}

/* ---- dispatch ---- */

/* Runs one opcode; *stop set on STOP. */
static int pk_step(up *u, bool *stop) {
    uint64_t a;
    uint8_t op = u->d[u->pos++];
    switch (op) {
    case 0x80: /* PROTO */
        S2_CHECK(pk_arg(u, 1, &a));
        if (a < 2 || a > 5) return pk_fail(u, "unsupported protocol %llu", (unsigned long long)a);
        return SAM2C_OK;
    case 0x95: return pk_arg(u, 8, &a); /* FRAME: framing is irrelevant in memory */
    case '}': return pk_push(u, pk_new(u, S2_PK_DICT));
    case ']': return pk_push(u, pk_new(u, S2_PK_LIST));
    case ')': return pk_push(u, pk_new(u, S2_PK_TUPLE));
    case '(': return pk_op_mark(u);
    case 'X': S2_CHECK(pk_arg(u, 4, &a)); return pk_str(u, a);
    case 0x8c: S2_CHECK(pk_arg(u, 1, &a)); return pk_str(u, a);
    case 0x8d: S2_CHECK(pk_arg(u, 8, &a)); return pk_str(u, a);
    case 'J': S2_CHECK(pk_arg(u, 4, &a)); return pk_int(u, (int32_t)(uint32_t)a);
    case 'K': S2_CHECK(pk_arg(u, 1, &a)); return pk_int(u, (int64_t)a);
    case 'M': S2_CHECK(pk_arg(u, 2, &a)); return pk_int(u, (int64_t)a);
    case 0x8a: return pk_long1(u);
    case 'G': return pk_binfloat(u);
    case 0x88: case 0x89: {
        s2_pk *v = pk_new(u, S2_PK_BOOL);
        if (v) v->b = op == 0x88;
        return pk_push(u, v);
    }
    case 'N': return pk_push(u, pk_new(u, S2_PK_NONE));
    case 't': { int k = 0; S2_CHECK(pk_pop_mark(u, &k)); return pk_make_tuple(u, k); }
    case 0x85: return pk_op_tuple_n(u, 1);
    case 0x86: return pk_op_tuple_n(u, 2);
    case 0x87: return pk_op_tuple_n(u, 3);
    case 'c': return pk_op_global(u);
    case 0x93: return pk_op_stack_global(u);
    case 'R': return pk_op_reduce(u);
    case 'b': return pk_op_build(u);
    case 'Q': return pk_op_persid(u);
    case 'q': S2_CHECK(pk_arg(u, 1, &a)); return pk_memo_put(u, a);
    case 'r': S2_CHECK(pk_arg(u, 4, &a)); return pk_memo_put(u, a);
    case 0x94: return pk_memo_put(u, u->memo_count);
    case 'h': S2_CHECK(pk_arg(u, 1, &a)); return pk_memo_get(u, a);
    case 'j': S2_CHECK(pk_arg(u, 4, &a)); return pk_memo_get(u, a);
    case 's': return pk_op_setitems(u, false);
    case 'u': return pk_op_setitems(u, true);
    case 'a': return pk_op_appends(u, false);
    case 'e': return pk_op_appends(u, true);
    case '.': *stop = true; return SAM2C_OK;
    default:
        if (op >= 0x20 && op < 0x7f) return pk_fail(u, "opcode '%c' (0x%02x) is not allowed", op, op);
        return pk_fail(u, "opcode 0x%02x is not allowed", op);
    }
}

void s2_pickle_free(s2_pickle *p) {
    if (!p) return;
    for (s2_pk *v = p->all, *next; v; v = next) {
        next = v->next_alloc;
        free(v->items);
        if (v->type == S2_PK_STR) free(v->s);
        free(v);
    }
    p->all = NULL;
    p->root = NULL;
}

/* Runs opcodes until STOP; the top of the stack is the result. */
int s2_pickle_load(const uint8_t *data, size_t len, const char *name, s2_pickle *out) {
    memset(out, 0, sizeof *out);
    up u = {.d = data, .len = data ? len : 0, .name = name ? name : "pickle", .out = out};
    bool stop = false;
    int rc = SAM2C_OK;
    while (rc == SAM2C_OK && !stop) {
        u.op_at = u.pos;
        if (u.pos >= u.len) rc = pk_fail(&u, "truncated pickle (no STOP)");
        else rc = pk_step(&u, &stop);
    }
    if (rc == SAM2C_OK) {
        if (u.sp < 1) rc = pk_fail(&u, "STOP with an empty stack");
        else out->root = u.stack[u.sp - 1];
    }
    free(u.stack);
    free(u.marks);
    free(u.memo);
    if (rc != SAM2C_OK) s2_pickle_free(out);
    return rc;
}

const s2_pk *s2_pk_dict_get(const s2_pk *dict, const char *key) {
    if (!dict || dict->type != S2_PK_DICT || !key) return NULL;
    for (int i = dict->n - 2; i >= 0; i -= 2) /* last assignment wins */
        if (dict->items[i]->type == S2_PK_STR && strcmp(dict->items[i]->s, key) == 0)
            return dict->items[i + 1];
    return NULL;
}
