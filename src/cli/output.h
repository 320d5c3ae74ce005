/* Writing results people look at: COCO-RLE masks.json, 0/255 PNG masks, overlays. */
#ifndef S2_CLI_OUTPUT_H
#define S2_CLI_OUTPUT_H

#include <stdint.h>
#include "io/json.h"

/* Creates dir (and parents) if missing; 0 or -1 with a message. */
int cli_mkdir_p(const char *dir);
/* Appends one mask record {iou_pred, object_score, area, bbox, segmentation} to an open
 * JSON array. mask: h*w bytes, nonzero = foreground. */
int cli_mask_record(s2_jw *w, const uint8_t *mask, int h, int wd, double iou, double score);
/* Writes rgb with each mask blended in its own colour and outlined. */
int cli_write_overlay(const char *path, const uint8_t *rgb, int w, int h, const uint8_t *const *masks,
                      int n);
/* OUTDIR/run.json for a command that produced masks: model, command line (argv as main
 * got it: argv[-1] is the program), timings, host. n_images / n_frames may be 0. */
struct sam2c_model;
int cli_write_run_info(const char *command, const struct sam2c_model *m, const char *model_path,
                       int argc, char **argv, const char *outdir, double t0, double load_s,
                       int n_images, int n_frames, int threads);
/* A distinct colour per index (object id or mask number). */
void cli_palette(int i, uint8_t rgb[3]);

#endif
