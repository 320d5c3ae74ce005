/* Limits on untrusted input: defaults, environment overrides, one message format. */
#include "core/limits.h"
#include "core/s2.h"
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

/* One row per limit, in s2_limit_id order, built from the same X-macro table. */
typedef struct lim_row {
    const char *env, *unit;
    int64_t def;
    size_t off; /* offset of the field in s2_limits */
} lim_row;

static const lim_row g_rows[S2_LIMIT_COUNT] = {
#define S2_X_LIMIT_ROW(field, env, def, unit) {env, unit, def, offsetof(s2_limits, field)},
    S2_LIMITS_MAP(S2_X_LIMIT_ROW)
#undef S2_X_LIMIT_ROW
};

/* The field of *l that row id describes. */
static int64_t *lim_field(s2_limits *l, s2_limit_id id) {
    return (int64_t *)((char *)l + g_rows[id].off);
}

void s2_limits_default(s2_limits *l) {
    for (int i = 0; i < S2_LIMIT_COUNT; i++) *lim_field(l, (s2_limit_id)i) = g_rows[i].def;
}

/* Parses a positive decimal integer (surrounding blanks refused); false when malformed. */
static bool parse_positive(const char *s, int64_t *out) {
    if (!s || *s < '0' || *s > '9') return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v <= 0) return false;
    *out = (int64_t)v;
    return true;
}

/* All or nothing: the first malformed variable fails and nothing is applied. */
int s2_limits_from_env(s2_limits *l) {
    int64_t v[S2_LIMIT_COUNT];
    for (int i = 0; i < S2_LIMIT_COUNT; i++) {
        const char *s = getenv(g_rows[i].env);
        v[i] = *lim_field(l, (s2_limit_id)i);
        if (s && !parse_positive(s, &v[i]))
            return s2_err(SAM2C_ERR_ARG, "%s='%.64s': expected a positive integer", g_rows[i].env, s);
    }
    for (int i = 0; i < S2_LIMIT_COUNT; i++) *lim_field(l, (s2_limit_id)i) = v[i];
    return SAM2C_OK;
}

/* Library fallback: a malformed variable is skipped (commands report it up front). */
void s2_limits_effective(s2_limits *l) {
    s2_limits_default(l);
    for (int i = 0; i < S2_LIMIT_COUNT; i++) {
        int64_t v;
        if (parse_positive(getenv(g_rows[i].env), &v)) *lim_field(l, (s2_limit_id)i) = v;
    }
}

int64_t s2_limit_value(const s2_limits *l, s2_limit_id id) {
    if ((unsigned)id >= S2_LIMIT_COUNT) return 0;
    s2_limits eff;
    if (!l) {
        s2_limits_effective(&eff);
        l = &eff;
    }
    return *(const int64_t *)((const char *)l + g_rows[id].off);
}

const char *s2_limit_env_name(s2_limit_id id) {
    return (unsigned)id < S2_LIMIT_COUNT ? g_rows[id].env : "?";
}

const char *s2_limit_unit(s2_limit_id id) {
    return (unsigned)id < S2_LIMIT_COUNT ? g_rows[id].unit : "?";
}

int s2_limit_check(const s2_limits *l, s2_limit_id id, int64_t value, const char *ctx) {
    if ((unsigned)id >= S2_LIMIT_COUNT) return s2_err(SAM2C_ERR_ARG, "unknown limit %d", (int)id);
    int64_t lim = s2_limit_value(l, id);
    if (value <= lim) return SAM2C_OK;
    return s2_err(SAM2C_ERR_LIMIT, "%s%s%lld %s exceeds the limit of %lld (set %s to raise it)",
                  ctx ? ctx : "", ctx ? ": " : "", (long long)value, g_rows[id].unit,
                  (long long)lim, g_rows[id].env);
}
