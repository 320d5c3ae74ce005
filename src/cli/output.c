/* Output helpers shared by segment, auto and track. */
#include "cli/output.h"
#include "core/s2.h"
#include "io/image.h"
#include "io/mask_json.h"
#include "report/run_info.h"
#include "sam2c.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cli_mkdir_p(const char *dir) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return s2_err(SAM2C_ERR_IO, "%s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return s2_err(SAM2C_ERR_IO, "%s: %s", buf, strerror(errno));
    return SAM2C_OK;
}

int cli_mask_record(s2_jw *w, const uint8_t *mask, int h, int wd, double iou, double score) {
    s2_jw_obj_begin(w);
    s2_jw_key(w, "iou_pred"); s2_jw_num(w, iou);
    s2_jw_key(w, "object_score"); s2_jw_num(w, score);
    S2_CHECK(s2_write_mask_rle(w, mask, h, wd));
    s2_jw_obj_end(w);
    return SAM2C_OK;
}

void cli_palette(int i, uint8_t rgb[3]) {
    static const uint8_t pal[][3] = {{30, 144, 255}, {255, 99, 71}, {50, 205, 50}, {255, 215, 0},
                                     {186, 85, 211}, {0, 206, 209}, {255, 140, 0}, {220, 20, 60},
                                     {124, 252, 0}, {65, 105, 225}, {255, 105, 180}, {154, 205, 50}};
    const int n = (int)(sizeof pal / sizeof pal[0]);
    memcpy(rgb, pal[((i % n) + n) % n], 3);
}

/* Blend at 50 % inside the mask, solid colour on its boundary pixels. */
int cli_write_overlay(const char *path, const uint8_t *rgb, int w, int h, const uint8_t *const *masks,
                      int n) {
    uint8_t *out = s2_malloc((size_t)w * h * 3);
    if (!out) return SAM2C_ERR_NOMEM;
    memcpy(out, rgb, (size_t)w * h * 3);
    for (int k = 0; k < n; k++) {
        uint8_t col[3];
        cli_palette(k, col);
        const uint8_t *m = masks[k];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int64_t i = (int64_t)y * w + x;
                if (!m[i]) continue;
                bool edge = x == 0 || y == 0 || x == w - 1 || y == h - 1 || !m[i - 1] || !m[i + 1] ||
                            !m[i - w] || !m[i + w];
                for (int c = 0; c < 3; c++)
                    out[i * 3 + c] = edge ? col[c] : (uint8_t)((out[i * 3 + c] + col[c]) / 2);
            }
    }
    int rc = s2_png_write(path, out, w, h, 3);
    free(out);
    return rc;
}

int cli_write_run_info(const char *command, const struct sam2c_model *m, const char *model_path,
                       int argc, char **argv, const char *outdir, double t0, double load_s,
                       int n_images, int n_frames, int threads) {
    s2_run_info ri;
    s2_run_info_init(&ri);
    ri.command = command;
    ri.model = sam2c_model_name(m);
    ri.model_path = model_path;
    ri.argc = argc + 1;
    ri.argv = argv - 1;
    ri.total_s = s2_now_s() - t0;
    ri.model_load_s = load_s;
    ri.n_images = n_images;
    ri.n_frames = n_frames;
    ri.threads = threads;
    return s2_run_info_write(outdir, &ri);
}
