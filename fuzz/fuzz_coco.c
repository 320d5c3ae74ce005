/* libFuzzer target: COCO JSON (a dataset {"images", "annotations"} or a results list)
 * through the evaluator's segmentation decoding: polygons (merged), 4-number boxes,
 * uncompressed and compressed RLE; then area, bbox, decode, string round trip, union. */
#include "fuzz_common.h"
#include "eval/eval_internal.h"
#include "io/json.h"
#include <string.h>

#define FZ_MAX_DECODE (1 << 22) /* decode masks up to 4 Mpixels */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Size of image `id` from the dataset's "images" (0 x 0 when unknown). */
static void image_size(const s2_json *images, const s2_json *ann, int *h, int *w) {
    int64_t id, iid, hh, ww;
    *h = *w = 0;
    if (!s2e_json_id(ann, "image_id", &id)) return;
    for (int i = 0; images && i < images->n && i < 1000; i++) {
        const s2_json *im = &images->items[i];
        if (s2e_json_id(im, "id", &iid) && iid == id && s2_json_int(im, "height", &hh) &&
            s2_json_int(im, "width", &ww) && hh >= 0 && ww >= 0 && hh <= 100000 && ww <= 100000) {
            *h = (int)hh;
            *w = (int)ww;
            return;
        }
    }
}

/* Everything an evaluation does with one decoded RLE, with its invariants. */
static void use_rle(const s2_rle *r) {
    int64_t area = s2_rle_area(r), inter, uni;
    double bb[4];
    s2_rle_bbox(r, bb);
    FZ_ASSERT(area >= 0 && area <= (int64_t)r->h * r->w);
    FZ_ASSERT(s2_rle_inter_union(r, r, &inter, &uni) == 0 && inter == area && uni == area);
    s2_rle u;
    if (s2e_rle_union(r, r, &u) == 0) {
        FZ_ASSERT(s2_rle_area(&u) == area);
        s2_rle_free(&u);
    }
    char *s = s2_rle_to_string(r);
    if (s) {
        s2_rle back;
        FZ_ASSERT(s2_rle_from_string(s, r->h, r->w, &back) == 0);
        FZ_ASSERT(back.n == r->n && memcmp(back.counts, r->counts, sizeof(uint32_t) * (size_t)r->n) == 0);
        s2_rle_free(&back);
        free(s);
    }
    if ((int64_t)r->h * r->w <= FZ_MAX_DECODE) {
        uint8_t *m = malloc((size_t)r->h * (size_t)r->w + 1);
        if (m && s2_rle_decode(r, m) == 0) {
            int64_t fg = 0;
            for (int64_t i = 0; i < (int64_t)r->h * r->w; i++) fg += m[i];
            FZ_ASSERT(fg == area);
        }
        free(m);
    }
}

/* One annotation or result: its segmentation decoded at its image's size. */
static void annotation(const s2_json *images, const s2_json *ann) {
    int h = 0, w = 0;
    image_size(images, ann, &h, &w);
    if (!images) h = w = 64; /* results list: polygons need a size; RLE carries its own */
    s2_rle r;
    if (s2e_seg_to_rle(s2_json_get(ann, "segmentation"), h, w, "ann", &r) != 0) {
        FZ_ASSERT(strchr(sam2c_last_error(), '\n') == NULL);
        return;
    }
    use_rle(&r);
    s2_rle_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    s2_json *j = NULL;
    if (s2_json_parse((const char *)data, size, "fuzz.json", NULL, &j) != 0) return 0;
    const s2_json *anns = j->type == S2_JARR ? j : s2_json_get(j, "annotations");
    const s2_json *images = j->type == S2_JARR ? NULL : s2_json_get(j, "images");
    if (images && images->type != S2_JARR) images = NULL;
    for (int i = 0; anns && anns->type == S2_JARR && i < anns->n && i < 64; i++)
        annotation(images, &anns->items[i]);
    s2_json_free(j);
    return 0;
}
