/* Fine-tuning runs: a separate validation folder, checkpoints every epoch and an exact
 * --resume (bit-identical to the uninterrupted run), the training-curves PNG, the JSON
 * report and the command line of issue 8, on generated inspection images (synth). */
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
    p.seed = 4, p.lora = 4, p.resume = false;
    CHECK(s2_finetune(m, &p, &tc) == SAM2C_ERR_UNSUPPORTED && strstr(sam2c_last_error(), "not supported yet"));
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
    // --lora is refused clearly; --resume without a checkpoint too
    snprintf(cmd, sizeof cmd, "%s finetune -m %s --train %s/train --val %s/val -o %s/x.safetensors --lora 4",
             s2t_bin(), s2t_fx("micro/model.pt"), dir, dir, dir);
    CHECK(s2t_run(cmd, log, sizeof log) != 0 && strstr(log, "not supported yet"));
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
