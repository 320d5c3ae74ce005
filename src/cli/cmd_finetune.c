/* `sam2c finetune`: few-shot fine-tuning of the prompt encoder + mask decoder on a
 * folder of images with masks; writes a safetensors checkpoint that loads like any
 * converted model. */
#include "cli/cli.h"
#include "model/model.h"
#include "train/finetune.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Load, fine-tune, save; exit code 0 on success. */
int cli_finetune(int argc, char **argv);

/* Usage text with the defaults and what is trained. */
static void ft_usage(FILE *f) {
    fprintf(f,
            "usage: sam2c finetune -m MODEL --data DIR -o OUT.safetensors [--epochs N] [--lr X]\n"
            "                      [--batch N] [--val-split F] [--seed S] [--corrections N]\n"
            "                      [--augment N] [--max-objects N] [--weight-decay X] [--clip X]\n"
            "                      [--config FILE] [--threads N]\n"
            "DIR holds images and either annotations.json (COCO: RLE or polygons) or\n"
            "masks/<image-stem>/<k>.png (non-zero = object). The image encoder is frozen (its\n"
            "features are computed once per image and augmented copy); the prompt encoder, mask\n"
            "decoder (conv_s0/conv_s1 included) and no_mem_embed are trained with the official\n"
            "loss (focal x20 + dice + IoU L1 + object BCE), simulated clicks / boxes and\n"
            "corrective clicks, AdamW (weight decay 0.1 except biases and LayerNorms), gradient\n"
            "clipping at norm 0.1 and a cosine schedule from --lr to --lr / 10.\n"
            "Defaults: --epochs 10 --lr 1e-4 --batch 1 --val-split 0.2 --seed 0 --corrections 7\n"
            "          --augment 3 --max-objects 3.\n");
}

/* Parses a positive-or-zero double option strictly. */
static bool parse_double(const char *s, double *out) {
    double v[1];
    int n;
    if (!cli_parse_floats(s, v, 1, 1, &n)) return false;
    *out = v[0];
    return true;
}

typedef struct ft_args {
    const char *model, *config, *out;
    long threads;
    s2_finetune_params p;
} ft_args;

/* Reads the integer option at argv[*i + 1] into *out within [lo, hi]. */
static int int_opt(int argc, char **argv, int *i, long lo, long hi, long *out) {
    long v;
    if (*i + 1 >= argc || !cli_parse_int(argv[*i + 1], &v) || v < lo || v > hi)
        return cli_fail("finetune", "%s needs an integer in [%ld, %ld]", argv[*i], lo, hi);
    *out = v;
    (*i)++;
    return 0;
}

/* Reads the number option at argv[*i + 1] into *out within [lo, hi]. */
static int num_opt(int argc, char **argv, int *i, double lo, double hi, double *out) {
    if (*i + 1 >= argc || !parse_double(argv[*i + 1], out) || !(*out >= lo && *out <= hi))
        return cli_fail("finetune", "%s needs a number in [%g, %g]", argv[*i], lo, hi);
    (*i)++;
    return 0;
}

/* Options into the fine-tuning parameters; -1 after --help. */
static int parse_args(int argc, char **argv, ft_args *a) {
    s2_finetune_default(&a->p);
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        long v = 0;
        int rc = 0;
        if ((!strcmp(o, "-m") || !strcmp(o, "--model")) && i + 1 < argc) a->model = argv[++i];
        else if (!strcmp(o, "--data") && i + 1 < argc) a->p.data_dir = argv[++i];
        else if ((!strcmp(o, "-o") || !strcmp(o, "--out")) && i + 1 < argc) a->out = argv[++i];
        else if (!strcmp(o, "--config") && i + 1 < argc) a->config = argv[++i];
        else if (!strcmp(o, "--epochs")) { rc = int_opt(argc, argv, &i, 1, 100000, &v); a->p.epochs = (int)v; }
        else if (!strcmp(o, "--batch")) { rc = int_opt(argc, argv, &i, 1, 4096, &v); a->p.batch = (int)v; }
        else if (!strcmp(o, "--corrections")) { rc = int_opt(argc, argv, &i, 0, 64, &v); a->p.n_correct = (int)v; }
        else if (!strcmp(o, "--augment")) { rc = int_opt(argc, argv, &i, 0, 256, &v); a->p.augment = (int)v; }
        else if (!strcmp(o, "--max-objects")) { rc = int_opt(argc, argv, &i, 1, 64, &v); a->p.max_objects = (int)v; }
        else if (!strcmp(o, "--threads")) rc = int_opt(argc, argv, &i, 1, 4096, &a->threads);
        else if (!strcmp(o, "--seed")) { rc = int_opt(argc, argv, &i, 0, 2147483647L, &v); a->p.seed = (uint64_t)v; }
        else if (!strcmp(o, "--lr")) rc = num_opt(argc, argv, &i, 1e-12, 1.0, &a->p.lr);
        else if (!strcmp(o, "--val-split")) rc = num_opt(argc, argv, &i, 0.0, 0.99, &a->p.val_split);
        else if (!strcmp(o, "--weight-decay")) rc = num_opt(argc, argv, &i, 0.0, 10.0, &a->p.weight_decay);
        else if (!strcmp(o, "--clip")) rc = num_opt(argc, argv, &i, 0.0, 1e9, &a->p.clip);
        else if (!strcmp(o, "--help") || !strcmp(o, "-h")) { ft_usage(stdout); return -1; }
        else return cli_fail("finetune", "unknown or incomplete option '%s' (see --help)", o);
        if (rc) return rc;
    }
    if (!a->model || !a->p.data_dir || !a->out) {
        ft_usage(stderr);
        return cli_fail("finetune", "-m MODEL, --data DIR and -o OUT.safetensors are required");
    }
    return 0;
}

/* "%8.4f" of v, or "     n/a" without validation images. */
static const char *num(char *buf, size_t n, double v) {
    if (isnan(v)) snprintf(buf, n, "     n/a");
    else snprintf(buf, n, "%8.4f", v);
    return buf;
}

/* Per-epoch progress line. */
static void on_progress(void *user, const s2_epoch_stats *s) {
    (void)user;
    char vl[32], vi[32];
    num(vl, sizeof vl, s->val_loss);
    num(vi, sizeof vi, s->val_miou);
    if (s->epoch == 0) {
        printf("epoch %3d/%d  start                          val loss %s  val mIoU %s\n", 0,
               s->epochs, vl, vi);
    } else {
        printf("epoch %3d/%d  train loss %8.4f (focal %.4f dice %.4f iou %.4f class %.4f)  "
               "train IoU %.4f  val loss %s  val mIoU %s  lr %.3g  |g| %.3g  %.1fs\n",
               s->epoch, s->epochs, s->train_loss, s->train_parts.mask, s->train_parts.dice,
               s->train_parts.iou, s->train_parts.cls, s->train_miou, vl, vi, s->lr,
               s->grad_norm, s->seconds);
    }
    fflush(stdout);
}

/* Library messages (dataset, caching) as lines on stdout. */
static void on_log(void *user, const char *msg) {
    (void)user;
    printf("%s\n", msg);
    fflush(stdout);
}

typedef struct ft_summary {
    s2_epoch_stats last;
} ft_summary;

/* Keeps the last epoch for the checkpoint metadata, then prints it. */
static void on_progress_keep(void *user, const s2_epoch_stats *s) {
    ((ft_summary *)user)->last = *s;
    on_progress(NULL, s);
}

int cli_finetune(int argc, char **argv) {
    ft_args a = {0};
    int prc = parse_args(argc, argv, &a);
    if (prc) return prc < 0 ? 0 : prc;
    if (a.threads) omp_set_num_threads((int)a.threads);
    sam2c_model *m = NULL;
    if (cli_load_model("finetune", a.model, a.config, &m)) return 1;
    ft_summary sum = {0};
    a.p.progress = on_progress_keep;
    a.p.log = on_log;
    a.p.user = &sum;
    s2_trainable *t = NULL;
    double t0 = s2_now_s();
    if (s2_finetune(m, &a.p, &t) < 0) {
        sam2c_model_free(m);
        return cli_fail_lib("finetune");
    }
    char info[512];
    snprintf(info, sizeof info,
             "{\"base_model\": \"%s\", \"epochs\": %d, \"lr\": %g, \"batch\": %d, \"seed\": %llu, "
             "\"corrections\": %d, \"augment\": %d, \"val_loss\": %.6g, \"val_miou\": %.6g}",
             sam2c_model_name(m), a.p.epochs, a.p.lr, a.p.batch, (unsigned long long)a.p.seed,
             a.p.n_correct, a.p.augment, isnan(sum.last.val_loss) ? -1.0 : sum.last.val_loss,
             isnan(sum.last.val_miou) ? -1.0 : sum.last.val_miou);
    const char *meta[] = {"sam2c_finetune", info};
    int rc = s2_trainable_save(t, a.out, meta, 1);
    s2_trainable_free(t);
    sam2c_model_free(m);
    if (rc < 0) return cli_fail_lib("finetune");
    printf("wrote %s (%.1fs)\n", a.out, s2_now_s() - t0);
    return 0;
}
