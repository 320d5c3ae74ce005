/* JSON DOM parser (bounded depth and size, strict RFC 8259 grammar, UTF-8 checked)
 * and a small writer. Errors read "name:line:col: problem" and never crash. */
#include "io/json.h"
#include "core/limits.h"
#include "core/s2.h"
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S2_JSON_DEPTH_CAP 4096 /* recursion guard whatever the caller asks */

typedef struct jp {
    const char *s;      /* text */
    size_t len, pos;
    const char *name;
    int max_depth;
} jp;

/* ======================= parser ======================= */

/* Errors carry the 1-based line and column of the offending byte; computed only on
 * failure so that the happy path stays O(n). */
static int jp_fail_status(const jp *p, int status, size_t at, const char *what) {
    int line = 1;
    size_t col = 1;
    for (size_t i = 0; i < at && i < p->len; i++) {
        if (p->s[i] == '\n') { line++; col = 1; }
        else col++;
    }
    return s2_err(status, "%s:%d:%zu: %s", p->name, line, col, what);
}

/* A grammar error at byte `at`. */
static int jp_fail(const jp *p, size_t at, const char *what) {
    return jp_fail_status(p, SAM2C_ERR_FORMAT, at, what);
}

/* Skips JSON whitespace (space, tab, CR, LF only). */
static void jp_ws(jp *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* Growable byte buffer for decoded strings. */
typedef struct jbuf { char *d; size_t n, cap; } jbuf;
static int jbuf_put(jbuf *b, const char *src, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->n + n + 1) cap *= 2;
        char *d = s2_realloc(b->d, cap);
        if (!d) return SAM2C_ERR_NOMEM;
        b->d = d;
        b->cap = cap;
    }
    memcpy(b->d + b->n, src, n);
    b->n += n;
    b->d[b->n] = 0;
    return SAM2C_OK;
}

/* Encodes a code point (already validated <= 0x10FFFF, not a surrogate) as UTF-8. */
static int jbuf_cp(jbuf *b, uint32_t cp) {
    char u[4];
    size_t n;
    if (cp < 0x80) { u[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
    else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
    }
    return jbuf_put(b, u, n);
}

/* Length of the valid UTF-8 sequence at s[0..avail), or 0 when invalid (overlong,
 * surrogate, beyond U+10FFFF, truncated). Shared with the writer. */
static size_t utf8_seq(const unsigned char *s, size_t avail) {
    unsigned c = s[0];
    size_t n;
    uint32_t cp, min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if (avail < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

/* Four hex digits after "\u" at p->pos; -1 when malformed. */
static long jp_hex4(const jp *p, size_t at) {
    if (at + 4 > p->len) return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[at + (size_t)i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decodes "\uXXXX" (with its surrogate partner when it is a high surrogate). */
static int jp_unicode_escape(jp *p, jbuf *b) {
    size_t at = p->pos - 2; /* the backslash */
    long hi = jp_hex4(p, p->pos);
    if (hi < 0) return jp_fail(p, at, "invalid \\u escape");
    p->pos += 4;
    uint32_t cp = (uint32_t)hi;
    if (hi >= 0xDC00 && hi <= 0xDFFF) return jp_fail(p, at, "lone low surrogate in \\u escape");
    if (hi >= 0xD800 && hi <= 0xDBFF) {
        long lo = (p->pos + 2 <= p->len && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u')
                      ? jp_hex4(p, p->pos + 2) : -1;
        if (lo < 0xDC00 || lo > 0xDFFF) return jp_fail(p, at, "unpaired high surrogate in \\u escape");
        p->pos += 6;
        cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
    }
    return jbuf_cp(b, cp);
}

/* One escape sequence after the backslash. */
static int jp_escape(jp *p, jbuf *b) {
    if (p->pos + 1 >= p->len) return jp_fail(p, p->pos, "unterminated string");
    char e = p->s[p->pos + 1], c;
    p->pos += 2;
    switch (e) {
    case '"': c = '"'; break;
    case '\\': c = '\\'; break;
    case '/': c = '/'; break;
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u': return jp_unicode_escape(p, b);
    default: return jp_fail(p, p->pos - 2, "invalid escape in string");
    }
    return jbuf_put(b, &c, 1);
}

/* String at p->pos (which holds '"'): decoded into a fresh NUL-terminated buffer. */
static int jp_string(jp *p, char **out, size_t *out_len) {
    size_t start = p->pos++;
    jbuf b = {0};
    int rc = jbuf_put(&b, "", 0);
    while (rc == SAM2C_OK) {
        size_t run = p->pos; /* copy plain runs in one go */
        while (run < p->len) {
            unsigned char c = (unsigned char)p->s[run];
            if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
            run++;
        }
        if (run > p->pos) {
            rc = jbuf_put(&b, p->s + p->pos, run - p->pos);
            p->pos = run;
            if (rc) break;
        }
        if (p->pos >= p->len) { rc = jp_fail(p, start, "unterminated string"); break; }
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') { p->pos++; *out = b.d; *out_len = b.n; return SAM2C_OK; }
        if (c == '\\') { rc = jp_escape(p, &b); continue; }
        if (c < 0x20) { rc = jp_fail(p, p->pos, "control character in string"); break; }
        size_t n = utf8_seq((const unsigned char *)p->s + p->pos, p->len - p->pos);
        if (!n) { rc = jp_fail(p, p->pos, "invalid UTF-8 in string"); break; }
        rc = jbuf_put(&b, p->s + p->pos, n);
        p->pos += n;
    }
    free(b.d);
    return rc;
}

/* strtod and printf follow LC_NUMERIC; JSON always uses '.'. Swaps the one decimal
 * point character between the two spellings (a no-op in the "C" locale). */
static void swap_decimal_point(char *num, bool to_locale) {
    const char *dp = localeconv()->decimal_point;
    if (!dp || !dp[0] || dp[1] || dp[0] == '.') return; /* multi-byte points: left alone */
    char from = to_locale ? '.' : dp[0], to = to_locale ? dp[0] : '.';
    char *c = strchr(num, from);
    if (c) *c = to;
}

/* Number per the JSON grammar, converted with strtod on a bounded NUL-terminated copy. */
static int jp_number(jp *p, double *out) {
    size_t i = p->pos, start = p->pos;
    const char *s = p->s;
#define JDIG(k) ((k) < p->len && s[k] >= '0' && s[k] <= '9')
    if (i < p->len && s[i] == '-') i++;
    if (!JDIG(i)) return jp_fail(p, start, "invalid number");
    if (s[i] == '0') i++;
    else while (JDIG(i)) i++;
    if (i < p->len && s[i] == '.') {
        i++;
        if (!JDIG(i)) return jp_fail(p, start, "invalid number (digit expected after '.')");
        while (JDIG(i)) i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
        if (!JDIG(i)) return jp_fail(p, start, "invalid number (digit expected in exponent)");
        while (JDIG(i)) i++;
    }
#undef JDIG
    size_t n = i - start;
    char small[64], *tmp = n < sizeof small ? small : s2_malloc(n + 1);
    if (!tmp) return SAM2C_ERR_NOMEM;
    memcpy(tmp, s + start, n);
    tmp[n] = 0;
    swap_decimal_point(tmp, true);
    errno = 0;
    double v = strtod(tmp, NULL);
    int range = (errno == ERANGE && isinf(v));
    if (tmp != small) free(tmp);
    if (range) return jp_fail(p, start, "number out of range");
    *out = v;
    p->pos = i;
    return SAM2C_OK;
}

/* Appends one slot to an array/object node under construction (capacity doubling). */
static int jnode_push(s2_json *j, int *cap, bool with_key) {
    if (j->n == *cap) {
        if (*cap > (1 << 29)) return s2_err(SAM2C_ERR_LIMIT, "json: too many elements");
        int nc = *cap ? *cap * 2 : 4;
        s2_json *items = s2_realloc(j->items, (size_t)nc * sizeof *items);
        if (!items) return SAM2C_ERR_NOMEM;
        j->items = items;
        if (with_key) {
            char **keys = s2_realloc(j->keys, (size_t)nc * sizeof *keys);
            if (!keys) return SAM2C_ERR_NOMEM;
            j->keys = keys;
        }
        *cap = nc;
    }
    memset(&j->items[j->n], 0, sizeof j->items[0]);
    if (with_key) j->keys[j->n] = NULL;
    j->n++;
    return SAM2C_OK;
}

static int jp_value(jp *p, s2_json *v, int depth);

/* Array body after '['. */
static int jp_array(jp *p, s2_json *v, int depth) {
    int cap = 0;
    v->type = S2_JARR;
    p->pos++;
    jp_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') { p->pos++; return SAM2C_OK; }
    for (;;) {
        S2_CHECK(jnode_push(v, &cap, false));
        S2_CHECK(jp_value(p, &v->items[v->n - 1], depth + 1));
        jp_ws(p);
        if (p->pos >= p->len) return jp_fail(p, p->pos, "unexpected end of input in array");
        char c = p->s[p->pos++];
        if (c == ']') return SAM2C_OK;
        if (c != ',') return jp_fail(p, p->pos - 1, "expected ',' or ']'");
        jp_ws(p);
    }
}

/* Object body after '{'. */
static int jp_object(jp *p, s2_json *v, int depth) {
    int cap = 0;
    v->type = S2_JOBJ;
    p->pos++;
    jp_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') { p->pos++; return SAM2C_OK; }
    for (;;) {
        if (p->pos >= p->len || p->s[p->pos] != '"') return jp_fail(p, p->pos, "expected a string key");
        S2_CHECK(jnode_push(v, &cap, true));
        size_t klen;
        S2_CHECK(jp_string(p, &v->keys[v->n - 1], &klen));
        jp_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') return jp_fail(p, p->pos, "expected ':'");
        p->pos++;
        jp_ws(p);
        S2_CHECK(jp_value(p, &v->items[v->n - 1], depth + 1));
        jp_ws(p);
        if (p->pos >= p->len) return jp_fail(p, p->pos, "unexpected end of input in object");
        char c = p->s[p->pos++];
        if (c == '}') return SAM2C_OK;
        if (c != ',') return jp_fail(p, p->pos - 1, "expected ',' or '}'");
        jp_ws(p);
    }
}

/* Literal word (true/false/null) at p->pos. */
static bool jp_word(jp *p, const char *w) {
    size_t n = strlen(w);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0) return false;
    p->pos += n;
    return true;
}

/* Any value at p->pos (whitespace already skipped). `depth` counts enclosing containers. */
static int jp_value(jp *p, s2_json *v, int depth) {
    if (p->pos >= p->len) return jp_fail(p, p->pos, "unexpected end of input");
    char c = p->s[p->pos];
    if (c == '{' || c == '[') {
        if (depth >= p->max_depth) {
            char msg[128];
            snprintf(msg, sizeof msg, "nesting deeper than %d levels (set %s to raise it)",
                     p->max_depth, s2_limit_env_name(S2_LIMIT_max_json_depth));
            return jp_fail_status(p, SAM2C_ERR_LIMIT, p->pos, msg);
        }
        return c == '{' ? jp_object(p, v, depth) : jp_array(p, v, depth);
    }
    if (c == '"') {
        v->type = S2_JSTR;
        return jp_string(p, &v->str, &v->str_len);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        v->type = S2_JNUM;
        return jp_number(p, &v->num);
    }
    if (jp_word(p, "true")) { v->type = S2_JBOOL; v->b = true; return SAM2C_OK; }
    if (jp_word(p, "false")) { v->type = S2_JBOOL; v->b = false; return SAM2C_OK; }
    if (jp_word(p, "null")) { v->type = S2_JNULL; return SAM2C_OK; }
    return jp_fail(p, p->pos, "unexpected character");
}

/* Frees what a node owns (not the node itself). */
static void jnode_clear(s2_json *j) {
    if (j->type == S2_JARR || j->type == S2_JOBJ) {
        for (int i = 0; i < j->n; i++) {
            jnode_clear(&j->items[i]);
            if (j->keys) free(j->keys[i]);
        }
    }
    free(j->items);
    free(j->keys);
    free(j->str);
}

void s2_json_free(s2_json *j) {
    if (!j) return;
    jnode_clear(j);
    free(j);
}

/* The caller's limits where set, else the effective ones (defaults + environment). */
static void json_limits(const s2_json_limits *limits, int *max_depth, size_t *max_size) {
    s2_limits eff;
    s2_limits_effective(&eff);
    int64_t d = limits && limits->max_depth > 0 ? limits->max_depth : eff.max_json_depth;
    int64_t b = limits && limits->max_size > 0 ? (int64_t)S2_MIN(limits->max_size, (size_t)INT64_MAX)
                                               : eff.max_json_bytes;
    *max_depth = (int)S2_MIN(d, (int64_t)S2_JSON_DEPTH_CAP);
    *max_size = (uint64_t)b > SIZE_MAX ? SIZE_MAX : (size_t)b;
}

int s2_json_parse(const char *text, size_t len, const char *name,
                  const s2_json_limits *limits, s2_json **out) {
    *out = NULL;
    if (!name) name = "json";
    size_t max_size;
    int max_depth;
    json_limits(limits, &max_depth, &max_size);
    if (len > max_size)
        return s2_err(SAM2C_ERR_LIMIT, "%s: %zu bytes exceeds the JSON size limit of %zu (set %s to raise it)",
                      name, len, max_size, s2_limit_env_name(S2_LIMIT_max_json_bytes));
    if (!text && len) return s2_err(SAM2C_ERR_ARG, "%s: no text", name);
    jp p = {text ? text : "", len, 0, name, max_depth};
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) p.pos = 3; /* UTF-8 BOM */
    s2_json *root = s2_calloc(1, sizeof *root);
    if (!root) return SAM2C_ERR_NOMEM;
    jp_ws(&p);
    int rc = jp_value(&p, root, 0);
    if (rc == SAM2C_OK) {
        jp_ws(&p);
        if (p.pos < p.len) rc = jp_fail(&p, p.pos, "unexpected content after the value");
    }
    if (rc != SAM2C_OK) {
        s2_json_free(root);
        return rc;
    }
    *out = root;
    return SAM2C_OK;
}

/* The size limit is checked before the file is read, so a huge file costs nothing. */
int s2_json_parse_file(const char *path, const s2_json_limits *limits, s2_json **out) {
    uint8_t *buf;
    size_t len, max_size;
    int max_depth;
    struct stat st;
    *out = NULL;
    json_limits(limits, &max_depth, &max_size);
    if (path && stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > max_size)
        return s2_err(SAM2C_ERR_LIMIT, "%s: %lld bytes exceeds the JSON size limit of %zu (set %s to raise it)",
                      path, (long long)st.st_size, max_size, s2_limit_env_name(S2_LIMIT_max_json_bytes));
    S2_CHECK(s2_read_file(path, &buf, &len));
    int rc = s2_json_parse((const char *)buf, len, path, limits, out);
    free(buf);
    return rc;
}

/* ======================= getters ======================= */

/* Last match wins for duplicate keys (as Python's json does). */
const s2_json *s2_json_get(const s2_json *obj, const char *key) {
    if (!obj || obj->type != S2_JOBJ || !key) return NULL;
    for (int i = obj->n - 1; i >= 0; i--)
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}

const s2_json *s2_json_at(const s2_json *arr, int i) {
    if (!arr || arr->type != S2_JARR || i < 0 || i >= arr->n) return NULL;
    return &arr->items[i];
}

/* Walks "a.b.c" one object level per segment; keys containing '.' are not reachable. */
const s2_json *s2_json_path(const s2_json *obj, const char *dotted) {
    if (!dotted) return NULL;
    const s2_json *cur = obj;
    const char *seg = dotted;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t n = dot ? (size_t)(dot - seg) : strlen(seg);
        if (!cur || cur->type != S2_JOBJ) return NULL;
        const s2_json *next = NULL;
        for (int i = cur->n - 1; i >= 0 && !next; i--)
            if (strncmp(cur->keys[i], seg, n) == 0 && cur->keys[i][n] == 0) next = &cur->items[i];
        cur = next;
        if (!dot) return cur;
        seg = dot + 1;
    }
}

bool s2_json_num(const s2_json *obj, const char *key, double *out) {
    const s2_json *v = s2_json_get(obj, key);
    if (!v || v->type != S2_JNUM) return false;
    *out = v->num;
    return true;
}

bool s2_json_int(const s2_json *obj, const char *key, int64_t *out) {
    const s2_json *v = s2_json_get(obj, key);
    if (!v || v->type != S2_JNUM) return false;
    if (!(v->num >= -9007199254740992.0 && v->num <= 9007199254740992.0)) return false;
    if (v->num != floor(v->num)) return false;
    *out = (int64_t)v->num;
    return true;
}

bool s2_json_bool(const s2_json *obj, const char *key, bool *out) {
    const s2_json *v = s2_json_get(obj, key);
    if (!v || v->type != S2_JBOOL) return false;
    *out = v->b;
    return true;
}

const char *s2_json_str(const s2_json *obj, const char *key) {
    const s2_json *v = s2_json_get(obj, key);
    return v && v->type == S2_JSTR ? v->str : NULL;
}

/* ======================= writer ======================= */

void s2_jw_init(s2_jw *w) { memset(w, 0, sizeof *w); }

void s2_jw_free(s2_jw *w) {
    if (!w) return;
    free(w->buf);
    memset(w, 0, sizeof *w);
}

/* Raw append; on allocation failure the writer is marked failed and stops growing. */
static void jw_put(s2_jw *w, const char *s, size_t n) {
    if (w->failed) return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n + 1) cap *= 2;
        char *b = s2_realloc(w->buf, cap);
        if (!b) { w->failed = true; return; }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = 0;
}

/* Comma before a value or key when the enclosing container already holds one. */
static void jw_sep(s2_jw *w) {
    if (w->depth < 0 || w->depth >= 64) { w->failed = true; return; }
    if (w->need_comma[w->depth]) jw_put(w, ",", 1);
    w->need_comma[w->depth] = true;
}

/* Opens an array/object; nesting beyond 63 marks the writer failed. */
static void jw_open(s2_jw *w, char c) {
    jw_sep(w);
    jw_put(w, &c, 1);
    if (w->depth + 1 >= 64) { w->failed = true; return; }
    w->depth++;
    w->need_comma[w->depth] = false;
}

/* Closes the innermost container. */
static void jw_close(s2_jw *w, char c) {
    if (w->depth <= 0) { w->failed = true; return; }
    w->depth--;
    jw_put(w, &c, 1);
}

void s2_jw_obj_begin(s2_jw *w) { jw_open(w, '{'); }
void s2_jw_obj_end(s2_jw *w) { jw_close(w, '}'); }
void s2_jw_arr_begin(s2_jw *w) { jw_open(w, '['); }
void s2_jw_arr_end(s2_jw *w) { jw_close(w, ']'); }

/* Quoted, escaped string; invalid UTF-8 bytes become U+FFFD so output is always valid. */
static void jw_quoted(s2_jw *w, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    jw_put(w, "\"", 1);
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\') run++;
        if (run > i) { jw_put(w, s + i, run - i); i = run; continue; }
        unsigned char c = u[i];
        char esc[8];
        if (c == '"') jw_put(w, "\\\"", 2);
        else if (c == '\\') jw_put(w, "\\\\", 2);
        else if (c == '\n') jw_put(w, "\\n", 2);
        else if (c == '\r') jw_put(w, "\\r", 2);
        else if (c == '\t') jw_put(w, "\\t", 2);
        else if (c == '\b') jw_put(w, "\\b", 2);
        else if (c == '\f') jw_put(w, "\\f", 2);
        else if (c < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", c); jw_put(w, esc, 6); }
        else {
            size_t k = utf8_seq(u + i, n - i);
            if (k) { jw_put(w, s + i, k); i += k; continue; }
            jw_put(w, "\xEF\xBF\xBD", 3);
        }
        i++;
    }
    jw_put(w, "\"", 1);
}

/* Writes "key": and lets the next value skip its comma. */
void s2_jw_key(s2_jw *w, const char *key) {
    jw_sep(w);
    jw_quoted(w, key ? key : "", key ? strlen(key) : 0);
    jw_put(w, ":", 1);
    if (w->depth >= 0 && w->depth < 64) w->need_comma[w->depth] = false; /* value follows */
}

void s2_jw_str(s2_jw *w, const char *s) {
    jw_sep(w);
    if (!s) { jw_put(w, "null", 4); return; }
    jw_quoted(w, s, strlen(s));
}

/* Shortest of %.15g/%.16g/%.17g that reads back to the same double. */
void s2_jw_num(s2_jw *w, double v) {
    jw_sep(w);
    if (!isfinite(v)) { jw_put(w, "null", 4); return; }
    char b[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, v);
        if (strtod(b, NULL) == v) break;
    }
    swap_decimal_point(b, false);
    jw_put(w, b, strlen(b));
}

void s2_jw_int(s2_jw *w, int64_t v) {
    char b[32];
    jw_sep(w);
    snprintf(b, sizeof b, "%lld", (long long)v);
    jw_put(w, b, strlen(b));
}

void s2_jw_bool(s2_jw *w, bool v) {
    jw_sep(w);
    jw_put(w, v ? "true" : "false", v ? 4 : 5);
}

void s2_jw_null(s2_jw *w) {
    jw_sep(w);
    jw_put(w, "null", 4);
}

void s2_jw_raw(s2_jw *w, const char *json) {
    jw_sep(w);
    if (json) jw_put(w, json, strlen(json));
}

/* Writes a parsed tree back as compact JSON (strings keep embedded NULs via str_len). */
void s2_jw_value(s2_jw *w, const s2_json *v) {
    if (!v) { s2_jw_null(w); return; }
    switch (v->type) {
    case S2_JNULL: s2_jw_null(w); break;
    case S2_JBOOL: s2_jw_bool(w, v->b); break;
    case S2_JNUM: s2_jw_num(w, v->num); break;
    case S2_JSTR: jw_sep(w); jw_quoted(w, v->str ? v->str : "", v->str ? v->str_len : 0); break;
    case S2_JARR:
        s2_jw_arr_begin(w);
        for (int i = 0; i < v->n; i++) s2_jw_value(w, &v->items[i]);
        s2_jw_arr_end(w);
        break;
    case S2_JOBJ:
        s2_jw_obj_begin(w);
        for (int i = 0; i < v->n; i++) {
            s2_jw_key(w, v->keys[i]);
            s2_jw_value(w, &v->items[i]);
        }
        s2_jw_obj_end(w);
        break;
    }
}
