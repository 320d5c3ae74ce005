/* Configurable limits on what sam2c accepts from untrusted input: image pixels, video
 * frames, prompt points, JSON nesting and size, objects, HTTP bodies. Each has a safe
 * default and an environment variable that overrides it; a value past its limit gives
 * one clear message naming the limit and how to raise it:
 *   "cars.jpg: 80000000 pixels exceeds the limit of 50000000 (set SAM2C_MAX_PIXELS to raise it)"
 * No global state: callers keep an s2_limits where they need one (a session, a server). */
#ifndef S2_LIMITS_H
#define S2_LIMITS_H

#include <stdint.h>

/* X(field, ENV_NAME, default, what one unit counts) */
#define S2_LIMITS_MAP(X)                                                           \
    X(max_pixels, "SAM2C_MAX_PIXELS", 50000000, "pixels")                          \
    X(max_frames, "SAM2C_MAX_FRAMES", 100000, "video frames")                      \
    X(max_points, "SAM2C_MAX_POINTS", 1024, "prompt points")                       \
    X(max_json_depth, "SAM2C_MAX_JSON_DEPTH", 64, "levels of JSON nesting")        \
    X(max_json_bytes, "SAM2C_MAX_JSON_BYTES", 268435456, "bytes of JSON")          \
    X(max_objects, "SAM2C_MAX_OBJECTS", 256, "objects")                            \
    X(max_http_body, "SAM2C_MAX_HTTP_BODY", 67108864, "bytes of HTTP body")

typedef enum {
#define S2_X_LIMIT_ID(field, env, def, unit) S2_LIMIT_##field,
    S2_LIMITS_MAP(S2_X_LIMIT_ID)
#undef S2_X_LIMIT_ID
    S2_LIMIT_COUNT
} s2_limit_id;

typedef struct s2_limits {
#define S2_X_LIMIT_FIELD(field, env, def, unit) int64_t field;
    S2_LIMITS_MAP(S2_X_LIMIT_FIELD)
#undef S2_X_LIMIT_FIELD
} s2_limits;

/* The built-in defaults (the table above). */
void s2_limits_default(s2_limits *l);
/* Overrides the fields of *l whose environment variable is set. A malformed value (not
 * a positive integer) leaves *l unchanged and fails with SAM2C_ERR_ARG:
 * "SAM2C_MAX_PIXELS='12x': expected a positive integer". Commands call this once at
 * start so that a typo is reported instead of ignored. */
int s2_limits_from_env(s2_limits *l);
/* Defaults plus the valid environment overrides (malformed ones are skipped): what a
 * library call uses when its caller passes no limits. Reads the environment each call. */
void s2_limits_effective(s2_limits *l);

/* SAM2C_OK when value <= the limit, else SAM2C_ERR_LIMIT with the message above; `ctx`
 * (file or call name, may be NULL) prefixes it. l NULL: effective limits. */
int s2_limit_check(const s2_limits *l, s2_limit_id id, int64_t value, const char *ctx);
/* The value of one limit, its environment variable and unit ("pixels"). */
int64_t s2_limit_value(const s2_limits *l, s2_limit_id id);
const char *s2_limit_env_name(s2_limit_id id);
const char *s2_limit_unit(s2_limit_id id);

#endif
