/* Configuration, layout and model loading: the 8 official manifests, the micro model in
 * both formats, config resolution order, and the derived Hiera block tables. */
#include "harness.h"
#include "io/json.h"
#include "io/tensorfile.h"
#include "model/model.h"
#include <stdlib.h>
#include <string.h>

static const char *g_manifests[] = {"sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l",
                                    "sam2_hiera_t", "sam2_hiera_s", "sam2_hiera_b+", "sam2_hiera_l"};

/* Layout built from the official config == the manifest's state_dict, in order. */
static void check_manifest(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "manifest/%s.json", name);
    s2_json *j = NULL;
    REQUIRE(s2_json_parse_file(s2t_fx(rel), NULL, &j) == 0);
    s2_config c;
    REQUIRE(s2_config_official(name, &c) == 0);
    s2_layout l;
    REQUIRE(s2_layout_build(&c, &l) == 0);
    const s2_json *sd = s2_json_get(j, "state_dict");
    REQUIRE(sd && sd->type == S2_JARR);
    CHECK_MSG(sd->n == l.n, "%s: %d tensors in manifest, %d in layout", name, sd->n, l.n);
    int64_t numel = 0;
    for (int i = 0; i < sd->n && i < l.n; i++) {
        const s2_json *e = &sd->items[i];
        const char *key = s2_json_str(e, "key");
        const s2_json *shape = s2_json_get(e, "shape");
        CHECK_MSG(key && strcmp(key, l.e[i].name) == 0, "%s[%d]: manifest %s, layout %s", name, i,
                  key ? key : "?", l.e[i].name);
        CHECK_MSG(strcmp(s2_json_str(e, "dtype"), "float32") == 0, "%s: dtype", key);
        int64_t sh[8];
        for (int k = 0; k < shape->n && k < 8; k++) sh[k] = (int64_t)shape->items[k].num;
        CHECK_MSG(s2_shape_eq(sh, shape->n, l.e[i].shape, l.e[i].ndim), "%s: shape of %s", name, key);
        int64_t n = 1;
        for (int k = 0; k < l.e[i].ndim; k++) n *= l.e[i].shape[k];
        numel += n;
        if (s2t_cur_failed > 5) break;
    }
    int64_t want = 0;
    s2_json_int(j, "num_elements", &want);
    CHECK_EQ_INT(numel, want);
    /* Derived per-block table, as the official modules report it. */
    const s2_json *blocks = s2_json_path(j, "derived.image_encoder.trunk.blocks");
    s2_hiera_block bl[S2_MAX_BLOCKS];
    int nb = s2_hiera_blocks(&c, bl, S2_MAX_BLOCKS);
    REQUIRE(blocks && blocks->n == nb);
    for (int i = 0; i < nb; i++) {
        int64_t v;
        const s2_json *b = &blocks->items[i];
        s2_json_int(b, "dim", &v); CHECK_EQ_INT(v, bl[i].dim);
        s2_json_int(b, "dim_out", &v); CHECK_EQ_INT(v, bl[i].dim_out);
        s2_json_int(b, "num_heads", &v); CHECK_EQ_INT(v, bl[i].num_heads);
        s2_json_int(b, "window_size", &v); CHECK_EQ_INT(v, bl[i].window_size);
        const s2_json *qs = s2_json_get(b, "q_stride");
        CHECK_EQ_INT(qs && qs->type == S2_JARR, bl[i].q_pool);
    }
    s2_layout_free(&l);
    s2_json_free(j);
}

TEST(manifests_match_official_layouts) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    for (size_t i = 0; i < sizeof g_manifests / sizeof g_manifests[0]; i++) check_manifest(g_manifests[i]);
}

TEST(micro_config_reads_every_field) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    s2_config c;
    REQUIRE(s2_config_load_file(s2t_fx("micro/config.json"), &c) == 0);
    CHECK_EQ_INT(c.image_size, 256);
    CHECK_EQ_INT(c.hiera.embed_dim, 32);
    CHECK_EQ_INT(c.hiera.stages[2], 3);
    CHECK_EQ_INT(c.hiera.n_global, 1);
    CHECK_EQ_INT(c.d_model, 64);
    CHECK_EQ_INT(c.mem_out_dim, 16);
    CHECK_EQ_INT(c.ma_num_layers, 2);
    CHECK_EQ_INT(c.ma_dim_ff, 128);
    CHECK_EQ_INT(c.ma_kv_in_dim, 16);
    CHECK_EQ_INT(c.fuser_dim, 64);
    CHECK_EQ_INT(c.mds_embed_dim, 64);
    CHECK(c.dynamic_multimask_via_stability);
    CHECK(c.binarize_mask_from_pts_for_mem_enc);
    CHECK_EQ_INT(c.fill_hole_area, 0);
    CHECK(c.no_obj_embed_spatial && c.proj_tpos_enc_in_obj_ptrs);
    s2_json *j = NULL;
    REQUIRE(s2_json_parse_file(s2t_fx("micro/config.json"), NULL, &j) == 0);
    const s2_json *blocks = s2_json_path(j, "derived.image_encoder.trunk.blocks");
    s2_hiera_block bl[S2_MAX_BLOCKS];
    int nb = s2_hiera_blocks(&c, bl, S2_MAX_BLOCKS);
    REQUIRE(blocks && blocks->n == nb);
    for (int i = 0; i < nb; i++) {
        int64_t v;
        s2_json_int(&blocks->items[i], "window_size", &v);
        CHECK_EQ_INT(v, bl[i].window_size);
        s2_json_int(&blocks->items[i], "mlp_hidden", &v);
        CHECK_EQ_INT(v, bl[i].mlp_hidden);
    }
    s2_json_free(j);
}

TEST(config_json_round_trip) {
    s2_config a, b;
    REQUIRE(s2_config_official("sam2_hiera_l", &a) == 0);
    char *txt = s2_config_to_json(&a);
    REQUIRE(txt);
    s2_json *j = NULL;
    REQUIRE(s2_json_parse(txt, strlen(txt), "roundtrip", NULL, &j) == 0);
    REQUIRE(s2_config_from_json(j, "roundtrip", &b) == 0);
    s2_layout la, lb;
    REQUIRE(s2_layout_build(&a, &la) == 0 && s2_layout_build(&b, &lb) == 0);
    CHECK_EQ_INT(la.n, lb.n);
    for (int i = 0; i < la.n && i < lb.n; i++) CHECK(strcmp(la.e[i].name, lb.e[i].name) == 0);
    CHECK_EQ_INT(a.hiera.window_spec[2], b.hiera.window_spec[2]);
    CHECK_EQ_INT(a.no_obj_embed_spatial, b.no_obj_embed_spatial);
    s2_layout_free(&la);
    s2_layout_free(&lb);
    s2_json_free(j);
    free(txt);
}

TEST(micro_pt_and_safetensors_load_identically) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    sam2c_model *a = NULL, *b = NULL;
    REQUIRE(sam2c_model_load(s2t_fx("micro/model.pt"), NULL, &a) == 0);
    REQUIRE(sam2c_model_load(s2t_fx("micro/model.safetensors"), NULL, &b) == 0);
    CHECK_EQ_INT(a->n_w, 359);
    CHECK_EQ_INT(a->n_w, b->n_w);
    CHECK_EQ_INT(sam2c_model_param_count(a), sam2c_model_param_count(b));
    for (int i = 0; i < a->n_w && i < b->n_w; i++) {
        CHECK(strcmp(a->w[i].name, b->w[i].name) == 0);
        CHECK(memcmp(a->w[i].t.data, b->w[i].t.data, s2_tensor_nbytes(&a->w[i].t)) == 0);
    }
    CHECK(strcmp(sam2c_model_name(a), "micro") == 0 || strlen(sam2c_model_name(a)) > 0);
    /* the +1.9 offset on the object-score head bias (fixtures README) */
    CHECK(s2_w(a, "sam_mask_decoder.pred_obj_score_head.layers.2.bias")[0] > 1.0f);
    sam2c_model_free(a);
    sam2c_model_free(b);
}

TEST(random_models_build_for_every_official_name) {
    const char *names[] = {"tiny", "sam2_hiera_s"};
    for (int i = 0; i < 2; i++) {
        sam2c_model *m = NULL;
        REQUIRE(sam2c_model_random(names[i], 7, &m) == 0);
        CHECK(sam2c_model_param_count(m) > 30000000);
        CHECK(s2_w_opt(m, "no_obj_embed_spatial") ? i == 0 : i == 1);
        sam2c_model_free(m);
    }
    sam2c_model *m = NULL;
    CHECK(sam2c_model_random("huge", 1, &m) == SAM2C_ERR_ARG);
    CHECK(strstr(sam2c_last_error(), "huge") != NULL);
}

TEST(official_parameter_counts) {
    /* fixtures README: t 38,962,754 values, s 46,060,610, b+ 80,850,434, l 224,446,898 */
    const char *n[] = {"tiny", "small", "base+", "large"};
    const int64_t want[] = {38962754, 46060610, 80850434, 224446898};
    for (int i = 0; i < 4; i++) {
        s2_config c;
        s2_layout l;
        REQUIRE(s2_config_official(n[i], &c) == 0 && s2_layout_build(&c, &l) == 0);
        int64_t tot = 0;
        for (int k = 0; k < l.n; k++) {
            int64_t p = 1;
            for (int d = 0; d < l.e[k].ndim; d++) p *= l.e[k].shape[d];
            tot += p;
        }
        CHECK_EQ_INT(tot, want[i]);
        s2_layout_free(&l);
    }
}
