/* `sam2c track` internals shared by the whole-video run (cmd_track.c) and the live
 * stream run (track_stream.c). */
#ifndef S2_CLI_TRACK_H
#define S2_CLI_TRACK_H

#include "sam2c.h"
#include <stdint.h>

#define MAX_PROMPTS 1024

/* One --point / --box of the simple form. */
typedef struct cli_prompt {
    int obj, frame, is_box, label;
    float v[4];
} cli_prompt;

typedef struct track_args {
    const char *model, *config, *video, *prompts, *outdir, *dump, *overlay_video;
    int overlay, skip_bad, threads, max_frames, quiet;
    int cac;                     /* --corrections-as-cond: -1 unset, 0 off, 1 on */
    int stream;                  /* --stream: frames pushed one at a time */
    int raw_w, raw_h;            /* --raw WxH: raw RGB24 frames (0: a container) */
    int unbounded, window;       /* --keep-all-outputs, --window N (0: the model's) */
    cli_prompt pr[MAX_PROMPTS];
    int n_pr, cur_obj, obj_pending;
} track_args;

/* Blends a 0/1 mask into rgb in the colour of object number k (50 %, solid edges). */
void track_blend(uint8_t *rgb, int w, int h, const uint8_t *m, int k);
/* Set by SIGINT while a run goes on: stop at the next frame, keeping what was written. */
int track_interrupted(void);
/* `sam2c track --stream`: pushes the frames of a folder, a video file, a container on
 * stdin or raw RGB24 frames one at a time, applies each prompt when its frame arrives
 * and writes each frame's masks as it is tracked. *n_frames / *n_objects get the counts.
 * Returns a status (message set). */
int track_stream(const track_args *a, const sam2c_model *m, int *n_frames, int *n_objects);

#endif
