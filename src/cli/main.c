/* sam2c command-line tool: dispatch to subcommands. */
#include "cli/cli.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_serve(int argc, char **argv); /* cmd_serve.c */

static void usage(FILE *f) {
    fprintf(f,
            "sam2c %s — SAM 2 (Segment Anything Model 2) in C\n\n"
            "usage: sam2c <command> [options]\n\n"
            "commands:\n"
            "  info MODEL                      which model, image size, parameters per module\n"
            "  convert IN OUT.safetensors      convert a checkpoint [--dtype f32|bf16|f16]\n"
            "  segment -m MODEL -i IMAGE ...   segment an image from points / boxes\n"
            "  serve -m MODEL [--port 8080]    annotation panel + JSON API over HTTP\n"
            "  bench (-m MODEL | --random ARCH) time encoder, decoder, tracking [--json]\n"
            "  auto -m MODEL -i IMAGE -o DIR   segment everything (automatic mask generator)\n"
            "  track -m MODEL --video V -o DIR  track objects through a video (frames folder or file)\n"
            "  eval KIND --gt G --pred P       score masks: images (IoU), coco (AP), video (J&F)\n"
            "  report EVAL.json -o OUT.html    HTML report of an evaluation, for non-experts\n"
            "  finetune -m MODEL --data DIR -o OUT.safetensors  few-shot fine-tuning of the decoder\n"
            "  synth -o DIR --train N --val M  synthetic inspection images with exact masks (COCO)\n"
            "\nrun 'sam2c <command> --help' for a command's options.\n",
            SAM2C_VERSION);
}

int cli_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "sam2c %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_fail_lib(const char *cmd) { return cli_fail(cmd, "%s", sam2c_last_error()); }

int cli_load_model(const char *cmd, const char *path, const char *config, sam2c_model **out) {
    sam2c_model_params p = sam2c_model_default_params();
    p.config_path = config;
    if (!path) return cli_fail(cmd, "no model given (-m MODEL)");
    if (sam2c_model_load(path, &p, out) < 0) return cli_fail_lib(cmd);
    return 0;
}

bool cli_parse_int(const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) return false;
    *out = v;
    return true;
}

/* "1.5,2,3" -> doubles; every field must parse and be finite. */
bool cli_parse_floats(const char *s, double *out, int min_n, int max_n, int *n) {
    int k = 0;
    const char *p = s;
    while (*p) {
        if (k == max_n) return false;
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (errno || end == p || v != v || v > 1e12 || v < -1e12) return false;
        out[k++] = v;
        if (*end == ',') p = end + 1;
        else if (*end == 0) p = end;
        else return false;
        if (*end == ',' && *p == 0) return false;
    }
    *n = k;
    return k >= min_n;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("sam2c %s\n", SAM2C_VERSION);
        return 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "info") == 0) return cli_info(argc - 1, argv + 1);
    if (strcmp(cmd, "convert") == 0) return cli_convert(argc - 1, argv + 1);
    if (strcmp(cmd, "segment") == 0) return cli_segment(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0) return cli_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0) { int cli_bench(int, char **); return cli_bench(argc - 1, argv + 1); }
    if (strcmp(cmd, "auto") == 0) { int cli_auto(int, char **); return cli_auto(argc - 1, argv + 1); }
    if (strcmp(cmd, "track") == 0) { int cli_track(int, char **); return cli_track(argc - 1, argv + 1); }
    if (strcmp(cmd, "eval") == 0) { int cli_eval(int, char **); return cli_eval(argc - 1, argv + 1); }
    if (strcmp(cmd, "report") == 0) { int cli_report(int, char **); return cli_report(argc - 1, argv + 1); }
    if (strcmp(cmd, "finetune") == 0) { int cli_finetune(int, char **); return cli_finetune(argc - 1, argv + 1); }
    if (strcmp(cmd, "synth") == 0) { int cli_synth(int, char **); return cli_synth(argc - 1, argv + 1); }
    fprintf(stderr, "sam2c: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
