/* A small JSON DOM: parse with limits (depth, size), read with typed getters,
 * and a writer that builds text into a growable buffer. Hostile input gives an
 * error with line:column, never a crash. */
#ifndef S2_JSON_H
#define S2_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef enum { S2_JNULL, S2_JBOOL, S2_JNUM, S2_JSTR, S2_JARR, S2_JOBJ } s2_jtype;

typedef struct s2_json {
    s2_jtype type;
    bool b;
    double num;
    char *str;              /* string value (NUL-terminated, UTF-8) */
    size_t str_len;
    struct s2_json *items;  /* array elements or object values */
    char **keys;            /* object keys (same index as items) */
    int n;                  /* element count */
} s2_json;

typedef struct s2_json_limits {
    int max_depth;          /* 0: SAM2C_MAX_JSON_DEPTH, default 64 (core/limits.h) */
    size_t max_size;        /* bytes; 0: SAM2C_MAX_JSON_BYTES, default 256 MiB */
} s2_json_limits;

/* Parses text[0..len). *out is a heap tree, freed with s2_json_free. `name` appears in
 * messages ("script.json:3:14: expected ','"). limits may be NULL for the effective
 * limits (defaults + environment, core/limits.h); exceeding one gives SAM2C_ERR_LIMIT.
 * The file variant checks the size limit before reading. */
int s2_json_parse(const char *text, size_t len, const char *name,
                  const s2_json_limits *limits, s2_json **out);
int s2_json_parse_file(const char *path, const s2_json_limits *limits, s2_json **out);
void s2_json_free(s2_json *j);

/* Lookups return NULL when absent or of another type. */
const s2_json *s2_json_get(const s2_json *obj, const char *key);
const s2_json *s2_json_at(const s2_json *arr, int i);
/* Dotted path through objects: "model_cfg_yaml_equivalent.image_encoder.trunk". */
const s2_json *s2_json_path(const s2_json *obj, const char *dotted);
bool s2_json_num(const s2_json *obj, const char *key, double *out);
bool s2_json_int(const s2_json *obj, const char *key, int64_t *out); /* integral numbers only */
bool s2_json_bool(const s2_json *obj, const char *key, bool *out);
const char *s2_json_str(const s2_json *obj, const char *key);

/* Writer: appends to a growable buffer; commas and escaping handled. */
typedef struct s2_jw {
    char *buf;
    size_t len, cap;
    int depth;
    bool need_comma[64];
    bool failed;             /* allocation failure: the text is incomplete */
} s2_jw;
void s2_jw_init(s2_jw *w);
void s2_jw_free(s2_jw *w);
void s2_jw_obj_begin(s2_jw *w);
void s2_jw_obj_end(s2_jw *w);
void s2_jw_arr_begin(s2_jw *w);
void s2_jw_arr_end(s2_jw *w);
void s2_jw_key(s2_jw *w, const char *key);
void s2_jw_str(s2_jw *w, const char *s);
void s2_jw_num(s2_jw *w, double v);   /* shortest round-trip form, NaN/Inf as null */
void s2_jw_int(s2_jw *w, int64_t v);
void s2_jw_bool(s2_jw *w, bool v);
void s2_jw_null(s2_jw *w);
void s2_jw_raw(s2_jw *w, const char *json); /* pre-formed JSON value */
/* Writes a parsed tree (compact). NULL writes null. */
void s2_jw_value(s2_jw *w, const s2_json *v);

#endif
