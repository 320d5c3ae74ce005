/* `sam2c report`: one self-contained HTML page (inline CSS, figures as PNG data URIs) that
 * explains an evaluation to a reader who does not know SAM 2: headline numbers with what
 * they mean, how the scores spread, the worst cases with overlays, speed, model and
 * settings. Input: the JSON of `sam2c eval` (kinds "images", "coco_segm", "video"),
 * optionally the run.json of the command that made the masks. */
#ifndef S2_REPORT_H
#define S2_REPORT_H

#include <stddef.h>

typedef struct s2_report_opts {
    const char *eval_json;  /* required */
    const char *run_json;   /* NULL: <pred>/run.json when it exists */
    const char *gt, *pred;  /* masks for the overlays (folders, or COCO JSON for "images"
                               made from COCO files); NULL: the eval JSON's "inputs" */
    const char *images;     /* original images / video frames, or NULL (grey background) */
    const char *title;      /* NULL: "Segmentation quality report" */
    int worst;              /* worst cases shown (default 6, 0..50) */
} s2_report_opts;
void s2_report_opts_default(s2_report_opts *o);

/* Builds the page into *html (NUL-terminated, caller frees). Missing optional parts
 * (masks, images, run.json) are explained on the page, not errors; a bad eval JSON or
 * run.json is an error naming the file. */
int s2_report_html(const s2_report_opts *o, char **html, size_t *len);

#endif
