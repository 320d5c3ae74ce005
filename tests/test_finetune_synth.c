/* Issue 8 acceptance: fine-tuning the micro model for 5 epochs on 40 generated
 * inspection images raises the validation mIoU (20 other generated images, one centre
 * click per object) by at least 0.10. The micro model's image encoder is random, so the
 * whole image model trains (prompt encoder, mask decoder and the image encoder, which
 * runs forward + backward on every sample; about 1.5 minutes on one core, Release), on
 * the kind of prompt the validation uses: one click per object, no corrective clicks,
 * up to 4 objects per image. Seeds 1 / 2 / 3 / 4 of this recipe give +0.149 / +0.133 /
 * +0.152 / +0.093; the heads alone on the frozen random encoder reach +0.046 (the
 * previous recipe: lr 3e-4, 3 corrective clicks, half boxes). */
#include "harness.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "model/model.h"
#include "synth/synth.h"
#include "train/finetune.h"

/* The run's settings. */
#define FT_SYNTH_MODULES (S2_TRAIN_HEADS | S2_TRAIN_IMAGE_ENCODER)
#define FT_SYNTH_LR 1e-4
#define FT_SYNTH_CORRECT 0
#define FT_SYNTH_PROB_BOX 0.0
#define FT_SYNTH_MAX_OBJECTS 4
#define FT_SYNTH_AUGMENT 1
#define FT_SYNTH_FOCAL 1.0 // not the YAML 20: from random heads x20 focal collapses every mask to background

typedef struct miou_rec {
    double miou[8];
    int n;
} miou_rec;

/* Keeps the validation mIoU of every epoch and prints the progress. */
static void rec_epoch(void *user, const s2_epoch_stats *s) {
    miou_rec *r = user;
    if (s->epoch < 8) r->miou[s->epoch] = s->val_miou;
    r->n = s->epoch + 1;
    fprintf(stderr, "    epoch %d: train loss %.4f val loss %.4f val mIoU %.4f (%.1fs)\n", s->epoch,
            s->train_loss, s->val_loss, s->val_miou, s->seconds);
}

/* n generated 256 x 256 images into dir (set `prefix`). */
static bool make_set(const char *dir, const char *prefix, int n) {
    s2_synth_params sp;
    s2_synth_default(&sp);
    s2_synth_write_params wp;
    s2_synth_write_default(&wp);
    wp.format = "png";
    wp.prefix = prefix;
    return s2_synth_write_set(dir, &sp, 2026, n, &wp) > 0;
}

TEST(finetune_synth_raises_miou) {
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return;
    }
    sam2c_model *m = NULL;
    REQUIRE(sam2c_model_load(s2t_fx("micro/model.pt"), NULL, &m) == 0);
    char dir[300], tr[400], va[400];
    snprintf(dir, sizeof dir, "%s/ft_synth", s2t_tmpdir());
    snprintf(tr, sizeof tr, "%s/train", dir);
    snprintf(va, sizeof va, "%s/val", dir);
    REQUIRE(make_set(tr, "train", 40) && make_set(va, "val", 20));
    s2_finetune_params p;
    s2_finetune_default(&p);
    p.data_dir = tr, p.val_dir = va;
    p.epochs = 5;
    p.modules = FT_SYNTH_MODULES;
    p.lr = FT_SYNTH_LR;
    p.n_correct = FT_SYNTH_CORRECT;
    p.prob_box = FT_SYNTH_PROB_BOX;
    p.max_objects = FT_SYNTH_MAX_OBJECTS;
    p.augment = FT_SYNTH_AUGMENT;
    p.w_focal = FT_SYNTH_FOCAL;
    p.seed = 1;
    miou_rec r = {0};
    p.progress = rec_epoch, p.user = &r;
    s2_trainable *t = NULL;
    int threads = omp_get_max_threads();
    omp_set_num_threads(1); // micro sizes: one thread is as fast, and immune to busy cores
    double t0 = s2_now_s();
    int rc = s2_finetune(m, &p, &t);
    omp_set_num_threads(threads);
    fprintf(stderr, "    5 epochs in %.0f s\n", s2_now_s() - t0);
    CHECK_MSG(rc == 0, "finetune: %s", sam2c_last_error());
    if (rc == 0) {
        REQUIRE(r.n == 6);
        double margin = r.miou[5] - r.miou[0];
        fprintf(stderr, "    val mIoU %.4f -> %.4f: margin %+.4f (required >= 0.10)\n", r.miou[0], r.miou[5], margin);
        CHECK_MSG(margin >= 0.10, "validation mIoU rose by %.4f only (%.4f -> %.4f)", margin, r.miou[0], r.miou[5]);
    }
    s2_trainable_free(t);
    sam2c_model_free(m);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    s2t_run(cmd, NULL, 0);
}
