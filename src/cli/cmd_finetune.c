/* `sam2c finetune`: few-shot fine-tuning on a folder of images with masks (by default
 * the prompt encoder + mask decoder; optionally LoRA adapters on the image encoder, or
 * any module up to the whole image model); writes a safetensors checkpoint that loads
 * like any converted model (adapters merged). */
#include "cli/cli.h"
#include "model/model.h"
#include "train/finetune.h"
#include "train/video_train.h"
#include "train/curves.h"
#include "io/json.h"

#include <sys/stat.h>

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
            "usage: sam2c finetune -m MODEL --train DIR --val DIR -o OUT.safetensors [--epochs N]\n"
            "                      [--lora R] [--train MODULES] [--resume] [--report FILE.json]\n"
            "   or: sam2c finetune -m MODEL --data DIR [--val-split F] -o OUT.safetensors ...\n"
            "   or: sam2c finetune -m MODEL --video --train CLIPS --val CLIPS -o OUT [--frames N]\n"
            "options: [--lr X] [--encoder-lr X] [--lora-alpha A] [--batch N] [--seed S]\n"
            "         [--corrections N] [--augment N]\n"
            "         [--max-objects N] [--weight-decay X] [--clip X] [--config FILE]\n"
            "         [--threads N] [--checkpoint FILE] [--plot FILE.png]\n"
            "         [--focal-weight X] [--dice-weight X] (loss weights, YAML 20 and 1)\n"
            "         [--prob-box P] (box instead of click as first prompt, 0.5)\n"
            "         [--random ARCH] (random weights of an architecture, as sam2c bench, for\n"
            "         timing, instead of -m)\n"
            "Each DIR holds images and either annotations.json (COCO: RLE or polygons) or\n"
            "masks/<image-stem>/<k>.png (non-zero = object); without --val, --val-split of the\n"
            "--data images are held out. Each epoch prints the losses and the validation mIoU\n"
            "(one centre click per object), writes the checkpoint (default OUT.ckpt: trained\n"
            "weights + AdamW moments + history; --resume continues after its last epoch) and\n"
            "the curves PNG (default OUT.curves.png). --report writes val_miou_before,\n"
            "val_miou_after, epochs, seconds and the per-epoch history as JSON.\n"
            "--epochs 0 only measures the validation mIoU of MODEL.\n"
            "--video: memory training (memory encoder, memory attention, object pointers and\n"
            "the heads; image encoder frozen, its features cached per frame) on clips laid out\n"
            "as CLIPS/<clip>/JPEGImages/<n>.jpg + CLIPS/<clip>/Annotations/<obj>/<n>.png, as the\n"
            "official training runs it: prompts on the first frame(s), corrections, then\n"
            "tracking with backward through time; --frames N frames per sample (8, YAML).\n"
            "Validation: one centre click on frame 0, mean IoU of the tracked frames.\n"
            "--train MODULES (or --modules MODULES): comma list of prompt_encoder, mask_decoder,\n"
            "image_encoder (trunk + neck), all (= the three); default prompt_encoder,mask_decoder\n"
            "(mask_decoder includes conv_s0/conv_s1 and no_mem_embed). A --train value that is\n"
            "a module list and not an existing folder selects modules; any other is the data.\n"
            "--lora R [--lora-alpha A]: rank-R LoRA adapters (scale A / R, A = R by default) on\n"
            "every Hiera block's attn.qkv and attn.proj; the encoder's own weights stay frozen\n"
            "and only the adapters train there; OUT holds the merged weights (loads anywhere),\n"
            "the checkpoint the adapters. --encoder-lr X: the image encoder's (adapters\n"
            "included) learning rate when it trains (default --lr), on the same schedule.\n"
            "While the image encoder is frozen its features are computed once per image and\n"
            "augmented copy; when it trains (LoRA or image_encoder) it runs forward and\n"
            "backward on every sample. Training uses the\n"
            "official loss (focal x20 + dice + IoU L1 + object BCE), simulated clicks / boxes and\n"
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
    const char *model, *config, *out, *report, *plot, *ckpt, *random, *modules;
    long threads;
    bool video;        /* --video: memory training on clips (video_train.h) */
    long frames;       /* --frames N: frames per clip sample (video) */
    s2_finetune_params p;
    char ckpt_buf[1024], plot_buf[1024];
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

/* OUT without a ".safetensors" ending, plus ext (NULL when too long). */
static const char *derived_path(char *buf, size_t n, const char *out, const char *ext) {
    size_t len = strlen(out), sl = strlen(".safetensors");
    if (len > sl && !strcmp(out + len - sl, ".safetensors")) len -= sl;
    size_t le = strlen(ext);
    if (len + le + 1 > n) return NULL;
    memcpy(buf, out, len);
    memcpy(buf + len, ext, le + 1);
    return buf;
}

/* Module flags of a comma list (prompt_encoder, mask_decoder, image_encoder, memory,
 * all); false for anything else. */
static bool parse_modules(const char *s, unsigned *out) {
    static const struct { const char *name; unsigned bits; } mods[] = {
        {"prompt_encoder", S2_TRAIN_PROMPT_ENCODER}, {"mask_decoder", S2_TRAIN_MASK_DECODER},
        {"image_encoder", S2_TRAIN_IMAGE_ENCODER}, {"memory", S2_TRAIN_MEMORY},
        {"heads", S2_TRAIN_HEADS},
        {"all", S2_TRAIN_HEADS | S2_TRAIN_IMAGE_ENCODER}};
    unsigned bits = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        bool found = false;
        for (size_t i = 0; i < sizeof mods / sizeof *mods && !found; i++)
            if (strlen(mods[i].name) == n && !strncmp(s, mods[i].name, n)) bits |= mods[i].bits, found = true;
        if (!found) return false;
        s += n + (s[n] == ',');
    }
    *out = bits;
    return bits != 0;
}

/* True when path names an existing folder. */
static bool is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* --train X: a module list unless X is an existing folder (then the data). */
static void train_opt(ft_args *a, const char *x) {
    unsigned bits;
    if (parse_modules(x, &bits) && !is_dir(x)) a->modules = x;
    else a->p.data_dir = x;
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
        else if (!strcmp(o, "--train") && i + 1 < argc) train_opt(a, argv[++i]);
        else if (!strcmp(o, "--modules") && i + 1 < argc) a->modules = argv[++i];
        else if (!strcmp(o, "--lora-alpha")) rc = num_opt(argc, argv, &i, 1e-6, 1e6, &a->p.lora_alpha);
        else if (!strcmp(o, "--val") && i + 1 < argc) a->p.val_dir = argv[++i];
        else if (!strcmp(o, "--random") && i + 1 < argc) a->random = argv[++i];
        else if (!strcmp(o, "--report") && i + 1 < argc) a->report = argv[++i];
        else if (!strcmp(o, "--plot") && i + 1 < argc) a->plot = argv[++i];
        else if (!strcmp(o, "--checkpoint") && i + 1 < argc) a->ckpt = argv[++i];
        else if (!strcmp(o, "--resume")) a->p.resume = true;
        else if (!strcmp(o, "--video")) a->video = true;
        else if (!strcmp(o, "--frames")) rc = int_opt(argc, argv, &i, 2, 64, &a->frames);
        else if (!strcmp(o, "--lora")) { rc = int_opt(argc, argv, &i, 1, 4096, &v); a->p.lora = (int)v; }
        else if ((!strcmp(o, "-o") || !strcmp(o, "--out")) && i + 1 < argc) a->out = argv[++i];
        else if (!strcmp(o, "--config") && i + 1 < argc) a->config = argv[++i];
        else if (!strcmp(o, "--epochs")) { rc = int_opt(argc, argv, &i, 0, 100000, &v); a->p.epochs = (int)v; }
        else if (!strcmp(o, "--batch")) { rc = int_opt(argc, argv, &i, 1, 4096, &v); a->p.batch = (int)v; }
        else if (!strcmp(o, "--corrections")) { rc = int_opt(argc, argv, &i, 0, 64, &v); a->p.n_correct = (int)v; }
        else if (!strcmp(o, "--augment")) { rc = int_opt(argc, argv, &i, 0, 256, &v); a->p.augment = (int)v; }
        else if (!strcmp(o, "--max-objects")) { rc = int_opt(argc, argv, &i, 1, 64, &v); a->p.max_objects = (int)v; }
        else if (!strcmp(o, "--threads")) rc = int_opt(argc, argv, &i, 1, 4096, &a->threads);
        else if (!strcmp(o, "--seed")) { rc = int_opt(argc, argv, &i, 0, 2147483647L, &v); a->p.seed = (uint64_t)v; }
        else if (!strcmp(o, "--lr")) rc = num_opt(argc, argv, &i, 1e-12, 1.0, &a->p.lr);
        else if (!strcmp(o, "--encoder-lr")) rc = num_opt(argc, argv, &i, 1e-12, 1.0, &a->p.lr_encoder);
        else if (!strcmp(o, "--val-split")) rc = num_opt(argc, argv, &i, 0.0, 0.99, &a->p.val_split);
        else if (!strcmp(o, "--weight-decay")) rc = num_opt(argc, argv, &i, 0.0, 10.0, &a->p.weight_decay);
        else if (!strcmp(o, "--prob-box")) rc = num_opt(argc, argv, &i, 0.0, 1.0, &a->p.prob_box);
        else if (!strcmp(o, "--focal-weight")) rc = num_opt(argc, argv, &i, 0.0, 1e4, &a->p.w_focal);
        else if (!strcmp(o, "--dice-weight")) rc = num_opt(argc, argv, &i, 0.0, 1e4, &a->p.w_dice);
        else if (!strcmp(o, "--clip")) rc = num_opt(argc, argv, &i, 0.0, 1e9, &a->p.clip);
        else if (!strcmp(o, "--help") || !strcmp(o, "-h")) { ft_usage(stdout); return -1; }
        else return cli_fail("finetune", "unknown or incomplete option '%s' (see --help)", o);
        if (rc) return rc;
    }
    if (a->random && !a->model) a->model = a->random;
    if (!a->model || !a->p.data_dir || !a->out) {
        ft_usage(stderr);
        return cli_fail("finetune", "-m MODEL, --train DIR (or --data DIR) and -o OUT.safetensors are required");
    }
    if (a->video && (a->modules || a->p.lora))
        return cli_fail("finetune", "--video trains the memory modules and the SAM heads; "
                        "--train MODULES / --lora apply to image fine-tuning");
    if (a->frames && !a->video) return cli_fail("finetune", "--frames needs --video");
    if (a->modules && !parse_modules(a->modules, &a->p.modules))
        return cli_fail("finetune", "--train / --modules '%s': expected a comma list of prompt_encoder, "
                        "mask_decoder, image_encoder, all", a->modules);
    if (a->p.lora_alpha > 0 && a->p.lora == 0)
        return cli_fail("finetune", "--lora-alpha needs --lora R");
    a->ckpt = a->ckpt ? a->ckpt : derived_path(a->ckpt_buf, sizeof a->ckpt_buf, a->out, ".ckpt");
    a->plot = a->plot ? a->plot : derived_path(a->plot_buf, sizeof a->plot_buf, a->out, ".curves.png");
    if (!a->ckpt || !a->plot) return cli_fail("finetune", "output path too long: %s", a->out);
    a->p.ckpt_path = a->ckpt;
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

/* Every epoch's numbers (restored ones included) for the curves and the report. */
typedef struct ft_summary {
    s2_epoch_stats *hist;   /* [epochs + 1] */
    int n;                  /* epochs seen + 1 */
    const char *plot, *title;
} ft_summary;

/* Keeps the epoch, prints it and redraws the curves. */
static void on_progress_keep(void *user, const s2_epoch_stats *s) {
    ft_summary *sum = user;
    sum->hist[s->epoch] = *s;
    sum->n = s->epoch + 1;
    if (s->restored) printf("(restored) ");
    on_progress(NULL, s);
    if (sum->n >= 2 && s2_write_train_curves(sum->hist, sum->n, sum->title, sum->plot) < 0)
        fprintf(stderr, "sam2c finetune: warning: %s\n", sam2c_last_error());
}

/* Sum of the epochs' seconds (training + validation, restored epochs included). */
static double train_seconds(const ft_summary *s) {
    double t = 0.0;
    for (int e = 1; e < s->n; e++) t += isnan(s->hist[e].seconds) ? 0.0 : s->hist[e].seconds;
    return t;
}

/* The run facts as JSON: val_miou_before / after, epochs, seconds, history. */
static int write_report(const ft_args *a, const ft_summary *s, const char *model_name,
                        double seconds) {
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "val_miou_before"), s2_jw_num(&w, s->hist[0].val_miou);
    s2_jw_key(&w, "val_miou_after"), s2_jw_num(&w, s->hist[s->n - 1].val_miou);
    s2_jw_key(&w, "epochs"), s2_jw_int(&w, s->n - 1);
    s2_jw_key(&w, "seconds"), s2_jw_num(&w, seconds);
    s2_jw_key(&w, "train_seconds"), s2_jw_num(&w, train_seconds(s));
    s2_jw_key(&w, "val_loss_before"), s2_jw_num(&w, s->hist[0].val_loss);
    s2_jw_key(&w, "val_loss_after"), s2_jw_num(&w, s->hist[s->n - 1].val_loss);
    s2_jw_key(&w, "base_model"), s2_jw_str(&w, model_name);
    s2_jw_key(&w, "model_path"), s2_jw_str(&w, a->model);
    s2_jw_key(&w, "train_dir"), s2_jw_str(&w, a->p.data_dir);
    s2_jw_key(&w, "val_dir");
    if (a->p.val_dir) s2_jw_str(&w, a->p.val_dir);
    else s2_jw_null(&w);
    s2_jw_key(&w, "output"), s2_jw_str(&w, a->out);
    s2_jw_key(&w, "checkpoint"), s2_jw_str(&w, a->ckpt);
    s2_jw_key(&w, "curves"), s2_jw_str(&w, a->plot);
    s2_jw_key(&w, "resumed"), s2_jw_bool(&w, a->p.resume);
    s2_jw_key(&w, "lr"), s2_jw_num(&w, a->p.lr);
    s2_jw_key(&w, "encoder_lr"), s2_jw_num(&w, a->p.lr_encoder > 0 ? a->p.lr_encoder : a->p.lr);
    s2_jw_key(&w, "batch"), s2_jw_int(&w, a->p.batch);
    s2_jw_key(&w, "seed"), s2_jw_int(&w, (int64_t)a->p.seed);
    s2_jw_key(&w, "corrections"), s2_jw_int(&w, a->p.n_correct);
    s2_jw_key(&w, "augment"), s2_jw_int(&w, a->p.augment);
    s2_jw_key(&w, "lora"), s2_jw_int(&w, a->p.lora);
    s2_jw_key(&w, "lora_alpha"), s2_jw_num(&w, a->p.lora ? (a->p.lora_alpha > 0 ? a->p.lora_alpha : a->p.lora) : NAN);
    s2_jw_key(&w, "train_modules"), s2_jw_str(&w, a->modules ? a->modules : "prompt_encoder,mask_decoder");
    const char *keys[4] = {"train_loss", "val_loss", "val_miou", "epoch_seconds"};
    for (int k = 0; k < 4; k++) {
        s2_jw_key(&w, keys[k]);
        s2_jw_arr_begin(&w);
        for (int e = 0; e < s->n; e++) {
            const s2_epoch_stats *h = &s->hist[e];
            s2_jw_num(&w, k == 0 ? h->train_loss : k == 1 ? h->val_loss : k == 2 ? h->val_miou
                                                                               : (e ? h->seconds : NAN));
        }
        s2_jw_arr_end(&w);
    }
    s2_jw_obj_end(&w);
    FILE *f = w.failed ? NULL : fopen(a->report, "w");
    bool ok = f && fprintf(f, "%s\n", w.buf) > 0;
    if (f && fclose(f) != 0) ok = false;
    s2_jw_free(&w);
    return ok ? 0 : cli_fail("finetune", "cannot write the report %s", a->report);
}

/* The run's metadata for the output file (config comes from s2_trainable_save). */
static void meta_info(char *info, size_t n, const ft_args *a, const ft_summary *s,
                      const char *model_name) {
    double b = s->hist[0].val_miou, e = s->hist[s->n - 1].val_miou;
    snprintf(info, n,
             "{\"base_model\": \"%s\", \"epochs\": %d, \"lr\": %g, \"batch\": %d, \"seed\": %llu, "
             "\"corrections\": %d, \"augment\": %d, \"train\": \"%s\", \"lora\": %d, "
             "\"lora_alpha\": %g, \"lora_merged\": true, \"val_loss\": %.6g, \"val_miou\": %.6g, "
             "\"val_miou_before\": %.6g}",
             model_name, s->n - 1, a->p.lr, a->p.batch, (unsigned long long)a->p.seed,
             a->p.n_correct, a->p.augment, a->modules ? a->modules : "prompt_encoder,mask_decoder",
             a->p.lora, a->p.lora ? (a->p.lora_alpha > 0 ? a->p.lora_alpha : a->p.lora) : 0.0,
             isnan(s->hist[s->n - 1].val_loss) ? -1.0 : s->hist[s->n - 1].val_loss,
             isnan(e) ? -1.0 : e, isnan(b) ? -1.0 : b);
}

/* --video: the same options mapped onto the clip trainer (memory encoder, memory
 * attention, object pointers and the heads; image encoder frozen). */
static int run_video(const ft_args *a, const sam2c_model *m, ft_summary *sum, s2_trainable **t) {
    s2_video_finetune_params vp;
    s2_video_finetune_default(&vp);
    const s2_finetune_params *p = &a->p;
    vp.data_dir = p->data_dir, vp.val_dir = p->val_dir, vp.ckpt_path = p->ckpt_path;
    vp.resume = p->resume, vp.epochs = p->epochs, vp.lr = p->lr, vp.lr_end = p->lr_end;
    vp.weight_decay = p->weight_decay, vp.clip = p->clip, vp.batch = p->batch;
    vp.val_split = p->val_split, vp.seed = p->seed, vp.n_correct = p->n_correct;
    vp.max_objects = p->max_objects, vp.prob_box = p->prob_box;
    vp.prob_from_gt = p->prob_from_gt, vp.w_focal = p->w_focal, vp.w_dice = p->w_dice;
    if (a->frames) vp.num_frames = (int)a->frames;
    vp.progress = on_progress_keep, vp.log = on_log, vp.user = sum;
    return s2_video_finetune(m, &vp, t);
}

int cli_finetune(int argc, char **argv) {
    ft_args a = {0};
    int prc = parse_args(argc, argv, &a);
    if (prc) return prc < 0 ? 0 : prc;
    if (a.threads) omp_set_num_threads((int)a.threads);
    if (a.p.resume) {
        FILE *f = fopen(a.ckpt, "rb");
        if (!f) return cli_fail("finetune", "--resume: no checkpoint %s (from an earlier run with the same -o)", a.ckpt);
        fclose(f);
    }
    sam2c_model *m = NULL;
    if (a.random) {
        if (sam2c_model_random(a.random, a.p.seed, &m) < 0) return cli_fail_lib("finetune");
    } else if (cli_load_model("finetune", a.model, a.config, &m)) {
        return 1;
    }
    ft_summary sum = {.hist = calloc((size_t)a.p.epochs + 1, sizeof *sum.hist), .plot = a.plot,
                      .title = "sam2c finetune"};
    if (!sum.hist) {
        sam2c_model_free(m);
        return cli_fail("finetune", "out of memory");
    }
    a.p.progress = on_progress_keep;
    a.p.log = on_log;
    a.p.user = &sum;
    s2_trainable *t = NULL;
    double t0 = s2_now_s();
    if ((a.video ? run_video(&a, m, &sum, &t) : s2_finetune(m, &a.p, &t)) < 0) {
        sam2c_model_free(m);
        free(sum.hist);
        return cli_fail_lib("finetune");
    }
    char info[768];
    meta_info(info, sizeof info, &a, &sum, sam2c_model_name(m));
    const char *meta[] = {"sam2c_finetune", info};
    int rc = s2_trainable_save(t, a.out, meta, 1);
    double secs = s2_now_s() - t0;
    if (rc < 0) rc = cli_fail_lib("finetune");
    if (rc == 0) {
        double b = sum.hist[0].val_miou, e = sum.hist[sum.n - 1].val_miou;
        printf("val mIoU before %.4f  after %.4f  (%+.4f)\n", b, e, e - b);
        printf("wrote %s, checkpoint %s, curves %s (%.1fs)\n", a.out, a.ckpt, a.plot, secs);
    }
    if (rc == 0 && a.report) {
        rc = write_report(&a, &sum, sam2c_model_name(m), secs);
        if (rc == 0) printf("wrote %s\n", a.report);
    }
    s2_trainable_free(t);
    sam2c_model_free(m);
    free(sum.hist);
    return rc;
}
