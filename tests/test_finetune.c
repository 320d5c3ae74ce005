/* Fine-tuning runs: a separate validation folder, checkpoints every epoch and an exact
 * --resume (bit-identical to the uninterrupted run, with LoRA adapters too), the
 * training-curves PNG, the JSON report and the command line of issue 8 (--lora,
 * --train all), on generated inspection images (synth); LoRA merging (the merged model
 * encodes like the adapters) and a LoRA step that moves the adapters only. */
#include "harness.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "io/image.h"
#include "io/json.h"
#include "model/model.h"
#include "synth/synth.h"
#include "train/curves.h"
#include "train/finetune.h"
#include "train/encoder_train.h"
#include "train/step.h"
#include "model/image_encoder.h"

/* Micro model of the fixtures (NULL + skip without them). */
static sam2c_model *load_micro(void) {
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return NULL;
    }
    sam2c_model *m = NULL;
    int rc = sam2c_model_load(s2t_fx("micro/model.pt"), NULL, &m);
    CHECK_MSG(rc == 0, "model load: %s", sam2c_last_error());
    return m;
}

/* dir/train and dir/val of generated 256 x 256 images. */
static bool make_synth(const char *dir, int n_train, int n_val, uint64_t seed) {
    s2_synth_params sp;
    s2_synth_default(&sp);
    s2_synth_write_params wp;
    s2_synth_write_default(&wp);
    wp.format = "png";
    wp.threads = 1;
    char path[512];
    snprintf(path, sizeof path, "%s/train", dir);
    wp.prefix = "train";
    if (s2_synth_write_set(path, &sp, seed, n_train, &wp) < 0) return false;
    snprintf(path, sizeof path, "%s/val", dir);
    wp.prefix = "val";
    return s2_synth_write_set(path, &sp, seed, n_val, &wp) >= 0;
}

typedef struct resume_rec {
    char ckpt[400], copy[400];
    s2_epoch_stats hist[4];
    int n, n_restored;
} resume_rec;

/* Keeps every epoch and, after epoch 1, a copy of the checkpoint (the state an
 * interrupted run would leave). */
static void rec_epoch(void *user, const s2_epoch_stats *s) {
    resume_rec *r = user;
    if (s->epoch < 4) r->hist[s->epoch] = *s;
    r->n++;
    r->n_restored += s->restored;
    if (s->epoch == 1 && !s->restored) {
        char cmd[900];
        snprintf(cmd, sizeof cmd, "cp %s %s", r->ckpt, r->copy);
        CHECK(s2t_run(cmd, NULL, 0) == 0);
    }
}

/* Fine-tuning parameters of the small runs. */
static void small_params(s2_finetune_params *p, const char *dir, char *tr, char *va) {
    s2_finetune_default(p);
    sprintf(tr, "%s/train", dir);
    sprintf(va, "%s/val", dir);
    p->data_dir = tr, p->val_dir = va;
    p->epochs = 2, p->lr = 1e-3, p->seed = 4, p->n_correct = 1, p->augment = 1;
}

TEST(finetune_resume_is_exact) {
    sam2c_model *m = load_micro();
    if (!m) return;
    char dir[300], tr[400], va[400];
    snprintf(dir, sizeof dir, "%s/ft_resume", s2t_tmpdir());
    REQUIRE(make_synth(dir, 3, 2, 7));
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    // the uninterrupted run: 2 epochs, checkpoint after each (copied after epoch 1)
    s2_finetune_params p;
    small_params(&p, dir, tr, va);
    resume_rec a = {0};
    snprintf(a.ckpt, sizeof a.ckpt, "%s/a.ckpt", dir);
    snprintf(a.copy, sizeof a.copy, "%s/b.ckpt", dir);
    p.ckpt_path = a.ckpt, p.progress = rec_epoch, p.user = &a;
    s2_trainable *ta = NULL;
    REQUIRE(s2_finetune(m, &p, &ta) == 0);
    CHECK_EQ_INT(a.n, 3);
    // the resumed run: from the copy of epoch 1's checkpoint
    resume_rec b = {0};
    snprintf(b.ckpt, sizeof b.ckpt, "%s/b.ckpt", dir);
    snprintf(b.copy, sizeof b.copy, "%s/unused.ckpt", dir);
    p.ckpt_path = b.ckpt, p.resume = true, p.user = &b;
    s2_trainable *tb = NULL;
    int rc = s2_finetune(m, &p, &tb);
    CHECK_MSG(rc == 0, "resume: %s", sam2c_last_error());
    omp_set_num_threads(threads);
    if (rc == 0) {
        CHECK_EQ_INT(b.n, 3);
        CHECK_EQ_INT(b.n_restored, 2); // epochs 0 and 1 replayed from the history
        CHECK(b.hist[0].val_miou == a.hist[0].val_miou && b.hist[1].train_loss == a.hist[1].train_loss);
        CHECK_MSG(b.hist[2].train_loss == a.hist[2].train_loss && b.hist[2].val_miou == a.hist[2].val_miou,
                  "epoch 2 differs after resume: loss %.9g vs %.9g, mIoU %.9g vs %.9g",
                  b.hist[2].train_loss, a.hist[2].train_loss, b.hist[2].val_miou, a.hist[2].val_miou);
        // bit-identical trained weights (every trainable tensor)
        int64_t diff = 0;
        for (int k = 0; k < ta->n_train; k++) {
            const s2_tensor *x = &ta->m->w[ta->idx[k]].t, *y = &tb->m->w[tb->idx[k]].t;
            diff += memcmp(x->data, y->data, sizeof(float) * (size_t)s2_tensor_numel(x)) != 0;
        }
        CHECK_MSG(diff == 0, "%lld trained tensors differ between the resumed and the uninterrupted run", (long long)diff);
        fprintf(stderr, "    resume: epoch 2 train loss %.6f val mIoU %.4f in both runs\n", a.hist[2].train_loss, a.hist[2].val_miou);
    }
    // a checkpoint of another seed is refused with a clear message
    p.seed = 5;
    s2_trainable *tc = NULL;
    CHECK(s2_finetune(m, &p, &tc) < 0 && strstr(sam2c_last_error(), "seed"));
    // memory training needs video clips: refused clearly
    p.seed = 4, p.resume = false, p.modules = S2_TRAIN_MEMORY;
    CHECK(s2_finetune(m, &p, &tc) == SAM2C_ERR_UNSUPPORTED && strstr(sam2c_last_error(), "video"));
    s2_trainable_free(ta);
    s2_trainable_free(tb);
    sam2c_model_free(m);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    s2t_run(cmd, NULL, 0);
}

TEST(finetune_lora_resume_is_exact) {
    sam2c_model *m = load_micro();
    if (!m) return;
    char dir[300], tr[400], va[400];
    snprintf(dir, sizeof dir, "%s/ft_lora_resume", s2t_tmpdir());
    REQUIRE(make_synth(dir, 3, 2, 8));
    // LoRA rank 2 on the encoder (forward + backward per sample) + the heads, 2 epochs
    s2_finetune_params p;
    small_params(&p, dir, tr, va);
    p.lora = 2, p.lora_alpha = 4.0, p.seed = 6;
    resume_rec a = {0};
    snprintf(a.ckpt, sizeof a.ckpt, "%s/a.ckpt", dir);
    snprintf(a.copy, sizeof a.copy, "%s/b.ckpt", dir);
    p.ckpt_path = a.ckpt, p.progress = rec_epoch, p.user = &a;
    s2_trainable *ta = NULL, *tb = NULL;
    REQUIRE(s2_finetune(m, &p, &ta) == 0);
    CHECK(ta->lora_merged && ta->n_lora == 14);
    resume_rec b = {0};
    snprintf(b.ckpt, sizeof b.ckpt, "%s/b.ckpt", dir);
    snprintf(b.copy, sizeof b.copy, "%s/unused.ckpt", dir);
    p.ckpt_path = b.ckpt, p.resume = true, p.user = &b;
    int rc = s2_finetune(m, &p, &tb);
    CHECK_MSG(rc == 0, "resume: %s", sam2c_last_error());
    if (rc == 0) {
        CHECK_EQ_INT(b.n_restored, 2);
        CHECK_MSG(b.hist[2].train_loss == a.hist[2].train_loss && b.hist[2].val_miou == a.hist[2].val_miou,
                  "epoch 2 differs after resume: loss %.9g vs %.9g", b.hist[2].train_loss, a.hist[2].train_loss);
        int64_t diff = 0; // adapters, heads and the merged attention weights
        for (int k = 0; k < ta->n_train; k++) {
            const s2_tensor *x = &ta->m->w[ta->idx[k]].t, *y = &tb->m->w[tb->idx[k]].t;
            diff += memcmp(x->data, y->data, sizeof(float) * (size_t)s2_tensor_numel(x)) != 0;
        }
        for (int l = 0; l < ta->n_lora; l++) {
            const s2_tensor *x = &ta->m->w[ta->lora[l].target].t, *y = &tb->m->w[tb->lora[l].target].t;
            diff += memcmp(x->data, y->data, sizeof(float) * (size_t)s2_tensor_numel(x)) != 0;
        }
        CHECK_MSG(diff == 0, "%lld tensors differ between the resumed and the uninterrupted LoRA run", (long long)diff);
        fprintf(stderr, "    LoRA resume: epoch 2 train loss %.6f val mIoU %.4f in both runs\n",
                a.hist[2].train_loss, a.hist[2].val_miou);
    }
    // a checkpoint of another LoRA rank is refused by name
    p.lora = 3;
    s2_trainable *tc = NULL;
    CHECK(s2_finetune(m, &p, &tc) < 0 && strstr(sam2c_last_error(), "LoRA rank"));
    s2_trainable_free(ta);
    s2_trainable_free(tb);
    sam2c_model_free(m);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    s2t_run(cmd, NULL, 0);
}

/* Number `key` of a JSON file (NAN when absent). */
static double json_num_of(const char *path, const char *key) {
    s2_json *j = NULL;
    double v = NAN;
    if (s2_json_parse_file(path, NULL, &j) == 0 && !s2_json_num(j, key, &v)) v = NAN;
    s2_json_free(j);
    return v;
}

TEST(finetune_command_issue8) {
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return;
    }
    char dir[300], cmd[2048], log[16384], path[400];
    snprintf(dir, sizeof dir, "%s/ft_cli", s2t_tmpdir());
    REQUIRE(make_synth(dir, 3, 2, 9));
    const char *common = "--corrections 1 --augment 0 --seed 2 --threads 1 --lr 1e-3";
    snprintf(cmd, sizeof cmd, "%s finetune -m %s --train %s/train --val %s/val -o %s/tuned.safetensors "
             "--epochs 1 --report %s/r.json %s", s2t_bin(), s2t_fx("micro/model.pt"), dir, dir, dir, dir, common);
    int rc = s2t_run(cmd, log, sizeof log);
    CHECK_MSG(rc == 0, "finetune failed: %s", log);
    CHECK(strstr(log, "epoch   1/1") && strstr(log, "val mIoU before"));
    snprintf(path, sizeof path, "%s/r.json", dir);
    double before = json_num_of(path, "val_miou_before"), after = json_num_of(path, "val_miou_after");
    CHECK(before >= 0.0 && before <= 1.0 && after >= 0.0 && after <= 1.0);
    CHECK(json_num_of(path, "epochs") == 1.0 && json_num_of(path, "seconds") > 0.0);
    // the curves PNG and the checkpoint beside the output
    snprintf(path, sizeof path, "%s/tuned.curves.png", dir);
    uint8_t *px = NULL;
    int w = 0, h = 0;
    CHECK(s2_png_load_gray(path, &px, &w, &h) == 0 && w == 960 && h == 380);
    free(px);
    // --resume continues to epoch 2 from tuned.ckpt; the result loads as a model
    snprintf(cmd, sizeof cmd, "%s finetune -m %s --train %s/train --val %s/val -o %s/tuned.safetensors "
             "--epochs 2 --resume --report %s/r2.json %s", s2t_bin(), s2t_fx("micro/model.pt"), dir, dir, dir, dir, common);
    rc = s2t_run(cmd, log, sizeof log);
    CHECK_MSG(rc == 0 && strstr(log, "(restored) epoch   1/2") && strstr(log, "epoch   2/2"), "resume: %s", log);
    snprintf(path, sizeof path, "%s/r2.json", dir);
    CHECK(json_num_of(path, "val_miou_before") == before && json_num_of(path, "epochs") == 2.0);
    snprintf(path, sizeof path, "%s/tuned.safetensors", dir);
    sam2c_model *m2 = NULL;
    CHECK_MSG(sam2c_model_load(path, NULL, &m2) == 0, "reload: %s", sam2c_last_error());
    sam2c_model_free(m2);
    // --lora 2: adapters merged into a plain model that `sam2c segment` runs
    snprintf(cmd, sizeof cmd, "%s finetune -m %s --train %s/train --val %s/val -o %s/lora.safetensors "
             "--epochs 1 --lora 2 --report %s/r3.json %s", s2t_bin(), s2t_fx("micro/model.pt"), dir, dir, dir, dir, common);
    rc = s2t_run(cmd, log, sizeof log);
    CHECK_MSG(rc == 0 && strstr(log, "LoRA"), "--lora: %s", log);
    snprintf(path, sizeof path, "%s/r3.json", dir);
    CHECK(json_num_of(path, "lora") == 2.0 && json_num_of(path, "lora_alpha") == 2.0);
    snprintf(cmd, sizeof cmd, "%s segment -m %s/lora.safetensors -i %s/val/images/val_000000.png --point 100,100 -o %s/seg",
             s2t_bin(), dir, dir, dir);
    rc = s2t_run(cmd, log, sizeof log);
    CHECK_MSG(rc == 0, "segment with the merged LoRA model: %s", log);
    // --train all: the whole image model (heads + encoder) trains
    snprintf(cmd, sizeof cmd, "%s finetune -m %s --train %s/train --val %s/val -o %s/all.safetensors "
             "--epochs 1 --train all %s", s2t_bin(), s2t_fx("micro/model.pt"), dir, dir, dir, common);
    rc = s2t_run(cmd, log, sizeof log);
    CHECK_MSG(rc == 0 && strstr(log, "image encoder runs forward + backward"), "--train all: %s", log);
    snprintf(path, sizeof path, "%s/all.safetensors", dir);
    m2 = NULL;
    CHECK_MSG(sam2c_model_load(path, NULL, &m2) == 0, "reload: %s", sam2c_last_error());
    sam2c_model *m0 = NULL;
    if (m2 && sam2c_model_load(s2t_fx("micro/model.pt"), NULL, &m0) == 0) {
        const char *nm = "image_encoder.trunk.blocks.3.attn.qkv.weight";
        CHECK(memcmp(s2_w(m2, "%s", nm), s2_w(m0, "%s", nm), 64 * sizeof(float)) != 0);
    }
    sam2c_model_free(m0);
    sam2c_model_free(m2);
    // bad module lists and --resume without a checkpoint are refused clearly
    snprintf(cmd, sizeof cmd, "%s finetune -m %s --train %s/train --val %s/val -o %s/x.safetensors --modules heads,bogus",
             s2t_bin(), s2t_fx("micro/model.pt"), dir, dir, dir);
    CHECK(s2t_run(cmd, log, sizeof log) != 0 && strstr(log, "comma list"));
    snprintf(cmd, sizeof cmd, "%s finetune -m %s --train %s/train --val %s/val -o %s/y.safetensors --resume",
             s2t_bin(), s2t_fx("micro/model.pt"), dir, dir, dir);
    CHECK(s2t_run(cmd, log, sizeof log) != 0 && strstr(log, "no checkpoint"));
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    s2t_run(cmd, NULL, 0);
}

TEST(train_curves_plot) {
    s2_epoch_stats h[4] = {{.epoch = 0, .train_loss = NAN, .val_loss = 2.0, .val_miou = 0.2},
                           {.epoch = 1, .train_loss = 1.5, .val_loss = 1.2, .val_miou = 0.5},
                           {.epoch = 2, .train_loss = 1.0, .val_loss = 0.9, .val_miou = 0.6},
                           {.epoch = 3, .train_loss = 0.8, .val_loss = 0.85, .val_miou = 0.7}};
    s2_canvas c = {0};
    REQUIRE(s2_plot_train_curves(h, 4, "test", &c) == 0);
    // the three series' colours are drawn; the mIoU marker of epoch 3 sits at 0.7 of the
    // right panel (x 560..939, y 76..305)
    int red = 0, blue = 0, green = 0;
    for (int i = 0; i < c.w * c.h; i++) {
        const uint8_t *p = c.px + 3 * i;
        red += p[0] == 0xd6 && p[1] == 0x27 && p[2] == 0x28;
        blue += p[0] == 0x1f && p[1] == 0x77 && p[2] == 0xb4;
        green += p[0] == 0x2c && p[1] == 0xa0 && p[2] == 0x2c;
    }
    CHECK(red > 100 && blue > 100 && green > 100);
    int y = 76 + 229 - (int)lround(0.7 * 229), x = 939;
    const uint8_t *p = c.px + 3 * ((size_t)y * c.w + x);
    CHECK_MSG(p[0] == 0x2c && p[1] == 0xa0, "no marker at (%d, %d)", x, y);
    s2_canvas_free(&c);
    CHECK(s2_plot_train_curves(h, 0, "x", &c) == SAM2C_ERR_ARG);
}

/* ---- LoRA on the encoder: merging, a training step --------------------------------- */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

/* Uniform in [-1, 1) from a fixed-seed generator. */
static double urand(void) { return 2.0 * s2_rng_uniform(&g_rng) - 1.0; }

/* A normalised-looking random image (3, S, S): smooth colour fields plus noise. */
static float *rand_image(int S) {
    float *img = malloc(sizeof(float) * 3 * (size_t)S * S);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                img[((size_t)c * S + y) * S + x] =
                    (float)(1.2 * sin(0.05 * x + 0.9 * c) * cos(0.037 * y) + 0.3 * urand());
    return img;
}

/* Arenas and a training context on a LoRA trainable copy of m. */
typedef struct enc_env {
    s2_arena arena, tape;
    s2_ctx c;
    s2_trainable *p;
    s2_tctx t;
} enc_env;

static int env_init(enc_env *e, const sam2c_model *m, int rank, double alpha) {
    s2_arena_init(&e->arena, 1 << 20);
    s2_arena_init(&e->tape, 1 << 20);
    e->c = (s2_ctx){.be = NULL, .scratch = &e->arena};
    int rc = s2_trainable_create_lora(m, S2_TRAIN_HEADS, rank, alpha, 7, &e->p);
    e->t = (s2_tctx){.c = &e->c, .tape = {.scratch = &e->tape}, .m = e->p ? e->p->m : NULL, .p = e->p};
    return rc;
}

static void env_free(enc_env *e) {
    s2_trainable_free(e->p);
    s2_arena_free(&e->arena);
    s2_arena_free(&e->tape);
}

/* The inference encoder of model m on img into a fresh output (caller frees buf). */
static int infer(enc_env *e, const sam2c_model *m, const float *img, s2_backbone_out *bb, float **buf) {
    *buf = malloc(sizeof(float) * s2_backbone_out_floats(&m->cfg));
    s2_backbone_out_carve(&m->cfg, *buf, bb);
    int rc = s2_image_encoder_forward(&e->c, m, img, bb);
    s2_arena_reset(&e->arena);
    return rc;
}

/* Compares the kept neck levels of a training tape with an inference output. */
static void compare_levels(const char *what, const s2_enc_tape *et, const s2_backbone_out *bb) {
    for (int k = 0; k < bb->n_levels; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s level %d", what, k);
        double rel;
        CHECK(s2t_allclose(name, et->out[k], bb->fpn[k], (int64_t)bb->C * bb->h[k] * bb->w[k], 1e-4, 1e-5, &rel));
        fprintf(stderr, "    %-32s max|diff| / max|ref| = %.2e\n", name, rel);
    }
}

/* Random adapters (B too, so the merge is not the identity). */
static void randomize_lora(s2_trainable *p, double scale) {
    for (int l = 0; l < p->n_lora; l++)
        for (int ab = 0; ab < 2; ab++) {
            s2_tensor *t = &p->m->w[ab ? p->lora[l].b : p->lora[l].a].t;
            for (int64_t i = 0; i < s2_tensor_numel(t); i++) ((float *)t->data)[i] = (float)(scale * urand());
        }
}

TEST(lora_merge_equals_unmerged) {
    sam2c_model *m = load_micro();
    if (!m) return;
    enc_env env;
    REQUIRE(env_init(&env, m, 4, 0.0) == 0);
    CHECK(env.p->lora_scale == 1.0f && env.p->lora_alpha == 4.0);
    randomize_lora(env.p, 0.2);
    float *img = rand_image(m->cfg.image_size), *buf = NULL, *buf2 = NULL, *buf3 = NULL;
    s2_enc_tape *et = calloc(1, sizeof *et);
    REQUIRE(s2_encoder_forward_train(&env.t, img, et) == 0); // adapters unmerged
    // the clone's own weights are untouched: inference on it differs (adapters matter)
    s2_backbone_out bb, bb3;
    REQUIRE(infer(&env, env.p->m, img, &bb, &buf) == 0);
    double md = 0.0;
    for (int64_t i = 0; i < (int64_t)bb.C * bb.h[2] * bb.w[2]; i++) md = fmax(md, fabs(bb.fpn[2][i] - et->out[2][i]));
    CHECK_MSG(md > 1e-2, "the adapters change nothing (%g)", md);
    // the saved (merged) model loads as a plain model and encodes like the adapters
    char path[400];
    snprintf(path, sizeof path, "%s/lora_merged.safetensors", s2t_tmpdir());
    REQUIRE(s2_trainable_save(env.p, path, NULL, 0) == 0);
    sam2c_model *m2 = NULL;
    REQUIRE(sam2c_model_load(path, NULL, &m2) == 0);
    CHECK_EQ_INT(m2->n_w, m->n_w); // no adapter tensors in the file
    REQUIRE(infer(&env, m2, img, &bb, &buf2) == 0);
    compare_levels("saved merged vs unmerged", et, &bb);
    // merging in place: the clone itself now encodes the same
    REQUIRE(s2_lora_merge(env.p) == 0);
    CHECK(env.p->lora_merged && !s2_trainable_has_encoder(env.p));
    REQUIRE(infer(&env, env.p->m, img, &bb3, &buf3) == 0);
    compare_levels("merged in place vs unmerged", et, &bb3);
    sam2c_model_free(m2);
    remove(path);
    free(et), free(img), free(buf), free(buf2), free(buf3);
    env_free(&env);
    sam2c_model_free(m);
}

/* One training sample on the micro model: a square object, a click in it. */
static int lora_step(enc_env *env, const float *img, s2_enc_tape *et, s2_adamw *opt) {
    int S = env->p->m->cfg.image_size;
    uint8_t *gt = calloc((size_t)S * S, 1);
    for (int y = 80; y < 170; y++)
        for (int x = 60; x < 150; x++) gt[y * S + x] = 1;
    s2_loss_cfg lc;
    s2_loss_cfg_default(&lc);
    s2_arena_reset(&env->tape);
    s2_trainable_zero_grad(env->p);
    int rc = s2_encoder_forward_train(&env->t, img, et);
    float xy[2] = {100, 120};
    int32_t lab[1] = {1};
    s2_sample_in in = {.fpn = {et->out[0], et->out[1], et->out[2]}, .B = 1, .gt = gt, .N0 = 1,
                       .coords = xy, .labels = lab, .num_objects = 1};
    for (int k = 0; k < 3; k++) {
        int64_t n = (int64_t)et->D * et->g.lh[k] * et->g.lw[k];
        in.d_fpn[k] = s2_tape_f32(&env->t, n);
        memset(in.d_fpn[k], 0, sizeof(float) * (size_t)n);
    }
    s2_sample_out out;
    if (rc == 0) rc = s2_train_sample(&env->t, &lc, &in, true, &out);
    if (rc == 0) s2_encoder_backward(&env->t, et, (const float *const[4]){in.d_fpn[0], in.d_fpn[1], in.d_fpn[2], NULL});
    if (rc == 0) s2_adamw_step(opt, env->p, 1e-3);
    free(gt);
    return rc;
}

TEST(lora_step_changes_adapters_only) {
    sam2c_model *m = load_micro();
    if (!m) return;
    enc_env env;
    REQUIRE(env_init(&env, m, 2, 0.0) == 0);
    s2_trainable *p = env.p;
    CHECK_EQ_INT(p->n_lora, 14);
    CHECK_EQ_INT(p->n_train, 148 + 2 * 14); // the heads' 148 tensors + A and B of 14 adapters
    float *img = rand_image(m->cfg.image_size);
    s2_enc_tape *et = calloc(1, sizeof *et);
    s2_adamw opt;
    REQUIRE(s2_adamw_init(&opt, p, 0.1) == 0);
    float *a0 = malloc(sizeof(float) * (size_t)p->n_flat);
    memcpy(a0, p->m->blob, sizeof(float) * (size_t)p->n_flat);
    REQUIRE(lora_step(&env, img, et, &opt) == 0);
    REQUIRE(lora_step(&env, img, et, &opt) == 0);
    // every image_encoder.* tensor of the clone is the base's own (frozen, borrowed)
    int n_enc = 0, n_bad = 0;
    for (int i = 0; i < p->n_base_w; i++)
        if (!strncmp(p->m->w[i].name, "image_encoder.", 14)) {
            n_enc++;
            n_bad += p->m->w[i].t.data != m->w[i].t.data || p->grad[i] != NULL;
        }
    CHECK_MSG(n_enc > 100 && n_bad == 0, "%d of %d encoder tensors trained", n_bad, n_enc);
    // both A and B of every adapter moved (A through B after the first step)
    int moved_a = 0, moved_b = 0;
    for (int k = 0; k < p->n_train; k++) {
        int i = p->idx[k];
        const float *now = p->m->w[i].t.data, *was = a0 + p->off[k];
        bool moved = memcmp(now, was, sizeof(float) * (size_t)s2_tensor_numel(&p->m->w[i].t)) != 0;
        if (strstr(p->m->w[i].name, ".lora_A.")) moved_a += moved;
        if (strstr(p->m->w[i].name, ".lora_B.")) moved_b += moved;
    }
    CHECK_EQ_INT(moved_a, p->n_lora);
    CHECK_EQ_INT(moved_b, p->n_lora);
    fprintf(stderr, "    2 steps: %d / %d adapters moved (A, B), %d encoder tensors untouched, "
            "%d trained tensors\n", moved_a, moved_b, n_enc, p->n_train);
    s2_adamw_free(&opt);
    free(a0), free(et), free(img);
    env_free(&env);
    sam2c_model_free(m);
}
