/* `sam2c info` and `sam2c convert`: look at and re-save checkpoints. */
#include "cli/cli.h"
#include "io/tensorfile.h"
#include "model/model.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Modules as SAM 2 names them, for the parameter breakdown. */
static const char *g_modules[] = {"image_encoder.trunk", "image_encoder.neck", "sam_prompt_encoder",
                                  "sam_mask_decoder", "memory_encoder", "memory_attention",
                                  "obj_ptr_proj", "obj_ptr_tpos_proj", "mask_downsample", NULL};

static int module_of(const char *name) {
    for (int i = 0; g_modules[i]; i++)
        if (strncmp(name, g_modules[i], strlen(g_modules[i])) == 0) return i;
    return -1;
}

static void print_info(const char *path, const sam2c_model *m) {
    const s2_config *c = &m->cfg;
    int64_t per[16] = {0}, other = 0;
    for (int i = 0; i < m->n_w; i++) {
        int k = module_of(m->w[i].name);
        int64_t n = s2_tensor_numel(&m->w[i].t);
        if (k >= 0) per[k] += n;
        else other += n;
    }
    int64_t total = sam2c_model_param_count(m);
    printf("file:          %s (%s, %s weights)\n", path, m->source_format, s2_dtype_name(m->src_dtype));
    printf("model:         %s (SAM %s)\n", c->name, c->version == 2 ? "2.1" : "2");
    printf("image size:    %d x %d (features %d x %d)\n", c->image_size, c->image_size,
           s2_cfg_feat_side(c), s2_cfg_feat_side(c));
    printf("hiera:         embed_dim %d, heads %d, stages [%d,%d,%d,%d], %d global blocks\n",
           c->hiera.embed_dim, c->hiera.num_heads, c->hiera.stages[0], c->hiera.stages[1],
           c->hiera.stages[2], c->hiera.stages[3], c->hiera.n_global);
    printf("hidden dim:    %d, memory dim %d, %d memories\n", c->d_model, c->mem_out_dim, c->num_maskmem);
    printf("tensors:       %d (%d used in place from the file, %d converted to f32)\n", m->n_w,
           m->n_mapped, m->n_converted);
    printf("parameters:    %lld (%.1f M, %.1f MB as f32)\n", (long long)total, total / 1e6, total * 4 / 1e6);
    for (int i = 0; g_modules[i]; i++)
        if (per[i]) printf("  %-20s %12lld\n", g_modules[i], (long long)per[i]);
    if (other) printf("  %-20s %12lld\n", "(model-level)", (long long)other);
    printf("load time:     %.3f s\n", m->load_s);
}

int cli_info(int argc, char **argv) {
    const char *path = NULL, *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) config = argv[++i];
        else if (strcmp(argv[i], "--help") == 0) {
            printf("usage: sam2c info MODEL [--config FILE]\n");
            return 0;
        } else if (argv[i][0] == '-') return cli_fail("info", "unknown option '%s'", argv[i]);
        else if (!path) path = argv[i];
        else return cli_fail("info", "unexpected argument '%s'", argv[i]);
    }
    if (!path) return cli_fail("info", "usage: sam2c info MODEL [--config FILE]");
    sam2c_model *m = NULL;
    if (cli_load_model("info", path, config, &m)) return 1;
    print_info(path, m);
    sam2c_model_free(m);
    return 0;
}

/* Converts every weight to the target dtype and writes it with the config in the
 * safetensors metadata, so the file is self-describing. */
static int write_converted(const sam2c_model *m, const char *out, s2_dtype dt) {
    s2_st_item *items = calloc((size_t)m->n_w, sizeof *items);
    void **bufs = calloc((size_t)m->n_w, sizeof *bufs);
    char *cfg = s2_config_to_json(&m->cfg);
    int rc = (!items || !bufs || !cfg) ? s2_err(SAM2C_ERR_NOMEM, "out of memory") : 0;
    for (int i = 0; rc == 0 && i < m->n_w; i++) {
        int64_t n = s2_tensor_numel(&m->w[i].t);
        bufs[i] = malloc((size_t)n * s2_dtype_size(dt) + 1);
        if (!bufs[i]) { rc = s2_err(SAM2C_ERR_NOMEM, "out of memory"); break; }
        s2_convert_from_f32(bufs[i], dt, m->w[i].t.data, n);
        items[i].name = m->w[i].name;
        items[i].t = m->w[i].t;
        items[i].t.dtype = dt;
        items[i].t.data = bufs[i];
    }
    const char *meta[] = {"sam2c_config", cfg, "format", "pt", "source", "sam2c convert"};
    if (rc == 0) rc = s2_safetensors_write(out, items, m->n_w, meta, 3);
    for (int i = 0; bufs && i < m->n_w; i++) free(bufs[i]);
    free(bufs);
    free(items);
    free(cfg);
    return rc;
}

int cli_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *config = NULL, *dts = "f32";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dtype") == 0 && i + 1 < argc) dts = argv[++i];
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) config = argv[++i];
        else if (strcmp(argv[i], "--help") == 0) {
            printf("usage: sam2c convert IN OUT.safetensors [--dtype f32|bf16|f16] [--config FILE]\n");
            return 0;
        } else if (argv[i][0] == '-') return cli_fail("convert", "unknown option '%s'", argv[i]);
        else if (!in) in = argv[i];
        else if (!out) out = argv[i];
        else return cli_fail("convert", "unexpected argument '%s'", argv[i]);
    }
    if (!in || !out) return cli_fail("convert", "usage: sam2c convert IN OUT.safetensors [--dtype f32|bf16|f16]");
    s2_dtype dt;
    if (strcmp(dts, "f32") == 0) dt = S2_F32;
    else if (strcmp(dts, "bf16") == 0) dt = S2_BF16;
    else if (strcmp(dts, "f16") == 0) dt = S2_F16;
    else return cli_fail("convert", "unknown dtype '%s' (f32, bf16 or f16)", dts);
    sam2c_model *m = NULL;
    if (cli_load_model("convert", in, config, &m)) return 1;
    int rc = write_converted(m, out, dt);
    if (rc < 0) {
        sam2c_model_free(m);
        return cli_fail_lib("convert");
    }
    printf("wrote %s: %s, %d tensors, %lld parameters as %s\n", out, m->cfg.name, m->n_w,
           (long long)sam2c_model_param_count(m), s2_dtype_name(dt));
    sam2c_model_free(m);
    return 0;
}
