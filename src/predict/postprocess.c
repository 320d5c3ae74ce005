/* Connected-component post-processing of mask logits. */
#include "predict/postprocess.h"
#include "core/s2.h"
#include <stdlib.h>

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

int s2_fill_small_components(float *plane, int h, int w, bool foreground, float thr,
                             int64_t max_area, float value) {
    int64_t n = (int64_t)h * w;
    uint8_t *in = s2_malloc((size_t)n * 2);
    int64_t *comp = s2_malloc((size_t)n * sizeof *comp);
    if (!in || !comp) { free(in); free(comp); return SAM2C_ERR_NOMEM; }
    uint8_t *seen = in + n;
    for (int64_t i = 0; i < n; i++) {
        in[i] = (uint8_t)((plane[i] > thr) == foreground);
        seen[i] = 0;
    }
    /* Values are written after each component is measured; `in` keeps the original
     * classification so later components are unaffected. */
    for (int64_t i = 0; i < n; i++) {
        if (!in[i] || seen[i]) continue;
        int64_t area = flood(in, seen, h, w, i, comp);
        if (area <= max_area)
            for (int64_t k = 0; k < area; k++) plane[comp[k]] = value;
    }
    free(in);
    free(comp);
    return SAM2C_OK;
}

int s2_fill_holes_in_mask_scores(float *plane, int h, int w, int64_t max_area) {
    return s2_fill_small_components(plane, h, w, false, 0.0f, max_area, 0.1f);
}
