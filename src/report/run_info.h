/* run.json: what produced a folder of masks — model, command line, timings, host — so a
 * report can say how fast and with what settings the results were made. Written by the
 * commands that produce masks (segment, auto, track) into their output folder, and
 * embedded by `sam2c eval` in its JSON. */
#ifndef S2_RUN_INFO_H
#define S2_RUN_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include "io/json.h"

typedef struct s2_run_info {
    const char *command;         /* "segment", "auto", "track", "eval" (required) */
    const char *model;           /* model name (sam2c_model_name) or NULL */
    const char *model_path;      /* checkpoint path or NULL */
    int argc;                    /* the command line as given (argv[0] included) */
    char **argv;
    const char *settings_json;   /* optional JSON object of resolved settings, or NULL */
    double total_s;              /* wall time of the whole run */
    double model_load_s;         /* < 0: unknown / not applicable */
    int n_images;                /* images processed (0: none) */
    const double *image_s;       /* n_images seconds each, or NULL */
    int n_frames;                /* video frames processed (0: none) */
    const double *frame_s;       /* n_frames seconds each, or NULL */
    int threads;                 /* compute threads used; 0: sam2c_get_num_threads() */
} s2_run_info;

/* Zero counts, unknown load time; command/argv to be filled by the caller. */
void s2_run_info_init(s2_run_info *ri);

/* {"sam2c_version","command","model":{"name","path"},"argv":[...],"settings":{...},
 *  "timings":{"total_s","model_load_s","images","per_image_s","image_s":[...],"frames",
 *  "per_frame_s","frame_s":[...]},"host":{"cpu","logical_cpus","threads","os"},
 *  "finished_at":"YYYY-MM-DDTHH:MM:SSZ"}. Absent values are left out; per_image_s /
 * per_frame_s are means (total_s - model_load_s split evenly when no per-item times). */
void s2_run_info_write_json(const s2_run_info *ri, s2_jw *w);
/* Writes outdir/run.json atomically. Fails (message set) on a bad settings_json or a
 * write error. */
int s2_run_info_write(const char *outdir, const s2_run_info *ri);

/* CPU model name from /proc/cpuinfo ("model name", else "Hardware"/"Model"/"cpu model"),
 * or "unknown"; written into buf (NUL-terminated, truncated to len). */
void s2_run_info_cpu(char *buf, size_t len);

#endif
