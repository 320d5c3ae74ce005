/* Connected-component post-processing of mask logits. */
#include "predict/postprocess.h"
#include "core/s2.h"
#include <stdlib.h>
#include <string.h>

/* Labels one component by an explicit stack (no recursion: masks may be huge) and
 * returns its area; pixel indices of the component are left in comp[0..area). */
static int64_t flood(const uint8_t *in, uint8_t *seen, int h, int w, int64_t start, int64_t *comp) {
    int64_t top = 0, n = 0;
    comp[top++] = start;
    seen[start] = 1;
    while (n < top) {
        int64_t p = comp[n++];
        int y = (int)(p / w), x = (int)(p % w);
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                int yy = y + dy, xx = x + dx;
                if ((dy == 0 && dx == 0) || yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                int64_t q = (int64_t)yy * w + xx;
                if (in[q] && !seen[q]) { seen[q] = 1; comp[top++] = q; }
            }
    }
    return n;
}

/* Marks (mark[i] = tag) every pixel of the components of `in` with area <= max_area. */
static void mark_small(const uint8_t *in, uint8_t *seen, uint8_t *mark, int64_t *comp, int h, int w,
                       int64_t max_area, uint8_t tag) {
    int64_t n = (int64_t)h * w;
    memset(seen, 0, (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        if (!in[i] || seen[i]) continue;
        int64_t area = flood(in, seen, h, w, i, comp);
        if (area <= max_area)
            for (int64_t k = 0; k < area; k++) mark[comp[k]] = tag;
    }
}

/* Both classifications are taken from the unmodified logits, as the official code computes
 * its components on the input masks before either replacement. */
int s2_fill_holes_and_sprinkles(float *plane, int h, int w, float thr, int64_t max_hole,
                                int64_t max_sprinkle, float hole_value, float sprinkle_value) {
    int64_t n = (int64_t)h * w;
    uint8_t *buf = s2_malloc((size_t)n * 3);
    int64_t *comp = s2_malloc((size_t)n * sizeof *comp);
    if (!buf || !comp) { free(buf); free(comp); return SAM2C_ERR_NOMEM; }
    uint8_t *in = buf, *seen = buf + n, *mark = buf + 2 * n;
    memset(mark, 0, (size_t)n);
    if (max_hole > 0) {
        for (int64_t i = 0; i < n; i++) in[i] = !(plane[i] > thr);
        mark_small(in, seen, mark, comp, h, w, max_hole, 1);
    }
    if (max_sprinkle > 0) {
        for (int64_t i = 0; i < n; i++) in[i] = plane[i] > thr;
        mark_small(in, seen, mark, comp, h, w, max_sprinkle, 2);
    }
    for (int64_t i = 0; i < n; i++)
        if (mark[i]) plane[i] = mark[i] == 1 ? hole_value : sprinkle_value;
    free(buf);
    free(comp);
    return SAM2C_OK;
}

int s2_fill_small_components(float *plane, int h, int w, bool foreground, float thr,
                             int64_t max_area, float value) {
    return foreground ? s2_fill_holes_and_sprinkles(plane, h, w, thr, 0, max_area, 0, value)
                      : s2_fill_holes_and_sprinkles(plane, h, w, thr, max_area, 0, value, 0);
}

int s2_fill_holes_in_mask_scores(float *plane, int h, int w, int64_t max_area) {
    return s2_fill_holes_and_sprinkles(plane, h, w, 0.0f, max_area, 0, 0.1f, 0.0f);
}
