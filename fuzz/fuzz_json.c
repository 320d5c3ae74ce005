/* libFuzzer target: the JSON parser and writer (a parsed tree written back must parse to
 * the same text), then the model configuration reader on the parsed tree (config.json
 * beside a checkpoint, safetensors "sam2c_config" metadata): read, validate, derive the
 * Hiera block table, write and read back. */
#include "fuzz_common.h"
#include "io/json.h"
#include "model/config.h"
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes v compactly; NULL when the writer failed (nesting beyond its 63 levels). */
static char *write_json(const s2_json *v, size_t *len) {
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_value(&w, v);
    if (w.failed || w.depth != 0) {
        s2_jw_free(&w);
        return NULL;
    }
    *len = w.len;
    return w.buf;
}

/* parse -> write -> parse -> write gives the same text twice. */
static void round_trip(const s2_json *j) {
    size_t n1 = 0, n2 = 0;
    char *t1 = write_json(j, &n1);
    if (!t1) return;
    s2_json *k = NULL;
    FZ_ASSERT(s2_json_parse(t1, n1, "written", NULL, &k) == 0);
    char *t2 = write_json(k, &n2);
    FZ_ASSERT(t2 && n1 == n2 && memcmp(t1, t2, n1) == 0);
    free(t1);
    free(t2);
    s2_json_free(k);
}

/* Config read from the tree; a valid one must survive its own writer and reader. */
static void config(const s2_json *j) {
    s2_config c, c2;
    if (s2_config_from_json(j, "fuzz.json", &c) != 0 || s2_config_validate(&c) != 0) return;
    s2_hiera_block blocks[S2_MAX_BLOCKS];
    int depth = s2_hiera_blocks(&c, blocks, S2_MAX_BLOCKS);
    FZ_ASSERT(depth > 0 && depth <= S2_MAX_BLOCKS);
    char *text = s2_config_to_json(&c);
    if (!text) return;
    s2_json *k = NULL;
    FZ_ASSERT(s2_json_parse(text, strlen(text), "config", NULL, &k) == 0);
    FZ_ASSERT(s2_config_from_json(k, "config", &c2) == 0);
    FZ_ASSERT(s2_config_validate(&c2) == 0);
    s2_json_free(k);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    s2_json *j = NULL;
    if (s2_json_parse((const char *)data, size, "fuzz.json", NULL, &j) != 0) {
        FZ_ASSERT(j == NULL && strchr(sam2c_last_error(), '\n') == NULL);
        return 0;
    }
    round_trip(j);
    (void)s2_json_path(j, "model_cfg_yaml_equivalent.image_encoder.trunk");
    config(j);
    s2_json_free(j);
    return 0;
}
