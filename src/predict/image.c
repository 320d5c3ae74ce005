/* The image predictor: set_image once, then any number of prompt decodes.
 * ref: sam2/sam2_image_predictor.py SAM2ImagePredictor (set_image, predict, _predict),
 *      sam2/utils/transforms.py SAM2Transforms (transform_coords, postprocess_masks) */
#include "predict/image.h"
#include "io/image.h"
#include "model/image_encoder.h"
#include "model/sam_heads.h"
#include "predict/postprocess.h"
#include "predict/preprocess.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sam2c_image_session {
    const sam2c_model *m;
    s2_arena scratch;          /* activations of one call, reset per call */
    s2_ctx ctx;
    int64_t max_pixels;
    float max_hole_area, max_sprinkle_area;
    /* set_image results */
    bool has_image;
    int orig_w, orig_h;
    float *feat_buf;           /* backbone outputs (s2_backbone_out_carve) */
    s2_backbone_out bb;
    float *image_embed;        /* [1,C,h,w] = fpn[last] + no_mem_embed */
    float *dense_pe;           /* [C,h,w] */
    /* predict outputs (grown as needed) */
    float *out_masks, *out_iou, *out_low, *out_score;
    size_t cap_masks, cap_small, cap_iou, cap_score;
};

int sam2c_image_session_create(const sam2c_model *m, sam2c_image_session **out) {
    *out = NULL;
    if (!m) return s2_err(SAM2C_ERR_ARG, "no model");
    sam2c_image_session *s = s2_calloc(1, sizeof *s);
    if (!s) return SAM2C_ERR_NOMEM;
    s->m = m;
    s->max_pixels = 50000000;
    s->max_hole_area = m->cfg.max_hole_area;
    s->max_sprinkle_area = m->cfg.max_sprinkle_area;
    const s2_config *c = &m->cfg;
    int hw = s2_cfg_feat_side(c);
    size_t nf = s2_backbone_out_floats(c);
    s->feat_buf = s2_aligned_alloc(nf * sizeof(float));
    s->image_embed = s2_aligned_alloc((size_t)c->d_model * hw * hw * sizeof(float));
    s->dense_pe = s2_aligned_alloc((size_t)c->d_model * hw * hw * sizeof(float));
    // the arena reserved for a whole set_image (input tensor + encoder peak, + 1/4)
    size_t need = 3 * sizeof(float) * (size_t)c->image_size * c->image_size + s2_image_encoder_scratch_bytes(c);
    if (!nf || !s->feat_buf || !s->image_embed || !s->dense_pe || s2_arena_init(&s->scratch, need + need / 4) < 0) {
        sam2c_image_session_free(s);
        return nf ? SAM2C_ERR_NOMEM : SAM2C_ERR_ARG;
    }
    s2_backbone_out_carve(c, s->feat_buf, &s->bb);
    s2_prompt_dense_pe(m, s->dense_pe);
    s->ctx.scratch = &s->scratch;
    *out = s;
    return SAM2C_OK;
}

void sam2c_image_session_free(sam2c_image_session *s) {
    if (!s) return;
    s2_arena_free(&s->scratch);
    s2_aligned_free(s->feat_buf);
    s2_aligned_free(s->image_embed);
    s2_aligned_free(s->dense_pe);
    free(s->out_masks);
    free(s->out_iou);
    free(s->out_low);
    free(s->out_score);
    free(s);
}

void sam2c_image_set_max_pixels(sam2c_image_session *s, int64_t max_pixels) {
    s->max_pixels = max_pixels > 0 ? max_pixels : 50000000;
}
void s2_image_session_set_dump(sam2c_image_session *s, s2_dump_fn fn, void *user) {
    s->ctx.dump = fn;
    s->ctx.dump_user = user;
}
void s2_image_session_set_backend(sam2c_image_session *s, const s2_backend *be) { s->ctx.be = be; }
void s2_image_session_set_postprocess(sam2c_image_session *s, float hole, float sprinkle) {
    s->max_hole_area = hole;
    s->max_sprinkle_area = sprinkle;
}

/* ref: SAM2ImagePredictor.set_image: transforms, forward_image,
 * _prepare_backbone_features, and no_mem_embed added to the lowest-resolution map. */
int sam2c_image_set_rgb(sam2c_image_session *s, const uint8_t *rgb, int w, int h) {
    s2_threads_apply();
    if (!rgb || w <= 0 || h <= 0) return s2_err(SAM2C_ERR_ARG, "set_image: empty image");
    if ((int64_t)w * h > s->max_pixels)
        return s2_err(SAM2C_ERR_LIMIT, "image of %d x %d = %lld pixels exceeds the limit of %lld",
                      w, h, (long long)w * h, (long long)s->max_pixels);
    const s2_config *c = &s->m->cfg;
    int S = c->image_size;
    s->has_image = false;
    s2_arena_reset(&s->scratch);
    float *img = s2_scratch_f32(&s->ctx, 3LL * S * S);
    s2_preprocess_image(img, rgb, w, h, S);
    s2_dump(&s->ctx, "input.tensor", img, 4, (int64_t[]){1, 3, S, S});
    int rc = s2_image_encoder_forward(&s->ctx, s->m, img, &s->bb);
    if (rc < 0) return rc;
    int L = s->bb.n_levels - 1, hw = s->bb.h[L] * s->bb.w[L], C = s->bb.C;
    const float *nme = s2_w(s->m, "no_mem_embed");
    for (int ch = 0; ch < C; ch++)
        for (int i = 0; i < hw; i++)
            s->image_embed[(int64_t)ch * hw + i] =
                s->bb.fpn[L][(int64_t)ch * hw + i] + (c->directly_add_no_mem_embed ? nme[ch] : 0.0f);
    s2_dump(&s->ctx, "image_embed", s->image_embed, 4, (int64_t[]){1, C, s->bb.h[L], s->bb.w[L]});
    s->orig_w = w;
    s->orig_h = h;
    s->has_image = true;
    return SAM2C_OK;
}

int sam2c_image_set_file(sam2c_image_session *s, const char *path, int apply_exif) {
    s2_image_opts o;
    s2_image_opts_default(&o);
    o.apply_exif = apply_exif != 0;
    o.max_pixels = s->max_pixels;
    s2_image im = {0};
    S2_CHECK(s2_image_load(path, &o, &im));
    int rc = sam2c_image_set_rgb(s, im.px, im.w, im.h);
    s2_image_free(&im);
    return rc;
}

/* Points and boxes must lie in the image (a point on the far edge is allowed). */
static int check_prompt(const sam2c_image_session *s, const sam2c_prompt *p, int mask_side) {
    if (!s->has_image) return s2_err(SAM2C_ERR_STATE, "predict: no image set (call set_image first)");
    if (p->n_points < 0 || p->n_boxes < 0) return s2_err(SAM2C_ERR_ARG, "negative prompt count");
    if (p->n_points == 0 && p->n_boxes == 0 && !p->mask_input)
        return s2_err(SAM2C_ERR_ARG, "no prompt: give at least one point, box or mask input");
    if (p->n_points > 0 && p->n_boxes > 1)
        return s2_err(SAM2C_ERR_ARG, "points cannot be combined with several boxes (one batched "
                                     "prediction per box); give one box or no points");
    if ((p->n_points && (!p->points || !p->labels)) || (p->n_boxes && !p->boxes))
        return s2_err(SAM2C_ERR_ARG, "prompt arrays missing");
    for (int i = 0; i < p->n_points; i++) {
        float x = p->points[2 * i], y = p->points[2 * i + 1];
        if (!(x >= 0 && x <= s->orig_w && y >= 0 && y <= s->orig_h))
            return s2_err(SAM2C_ERR_ARG, "point %d (%g, %g) is outside the %d x %d image", i, x, y,
                          s->orig_w, s->orig_h);
        if (p->labels[i] != 0 && p->labels[i] != 1)
            return s2_err(SAM2C_ERR_ARG, "point %d has label %d (1 positive, 0 negative)", i, p->labels[i]);
    }
    for (int i = 0; i < p->n_boxes; i++) {
        const float *b = p->boxes + 4 * i;
        if (!(b[0] >= 0 && b[1] >= 0 && b[2] <= s->orig_w && b[3] <= s->orig_h && b[2] >= 0 && b[3] >= 0 &&
              b[0] <= s->orig_w && b[1] <= s->orig_h))
            return s2_err(SAM2C_ERR_ARG, "box %d (%g, %g, %g, %g) is outside the %d x %d image", i, b[0],
                          b[1], b[2], b[3], s->orig_w, s->orig_h);
        if (b[2] < b[0] || b[3] < b[1])
            return s2_err(SAM2C_ERR_ARG, "box %d (%g, %g, %g, %g) has x1 < x0 or y1 < y0", i, b[0], b[1],
                          b[2], b[3]);
    }
    if (p->mask_input && (p->mask_input_h != mask_side || p->mask_input_w != mask_side))
        return s2_err(SAM2C_ERR_ARG, "mask input is %d x %d, expected %d x %d (low-res logits)",
                      p->mask_input_h, p->mask_input_w, mask_side, mask_side);
    return SAM2C_OK;
}

/* ref: _prep_prompts + _predict: coordinates scaled to the model input (x*S/W, y*S/H);
 * box corners first (labels 2, 3), then points; one batch item per box. */
static void build_points(const sam2c_image_session *s, const sam2c_prompt *p, int B, int N,
                         float *coords, int32_t *labels) {
    const float S = (float)s->m->cfg.image_size;
    const float sx = S / (float)s->orig_w, sy = S / (float)s->orig_h;
    for (int b = 0; b < B; b++) {
        float *cc = coords + (int64_t)b * N * 2;
        int32_t *ll = labels + (int64_t)b * N;
        int k = 0;
        if (p->n_boxes) {
            const float *bx = p->boxes + 4 * b;
            cc[2 * k] = bx[0] / (float)s->orig_w * S;
            cc[2 * k + 1] = bx[1] / (float)s->orig_h * S;
            ll[k++] = 2;
            cc[2 * k] = bx[2] / (float)s->orig_w * S;
            cc[2 * k + 1] = bx[3] / (float)s->orig_h * S;
            ll[k++] = 3;
        }
        for (int i = 0; i < p->n_points; i++) {
            cc[2 * k] = p->points[2 * i] / (float)s->orig_w * S;
            cc[2 * k + 1] = p->points[2 * i + 1] / (float)s->orig_h * S;
            ll[k++] = p->labels[i];
        }
    }
    (void)sx;
    (void)sy;
}

static int grow(float **p, size_t *cap, size_t n) {
    if (n <= *cap) return SAM2C_OK;
    float *q = s2_realloc(*p, n * sizeof(float));
    if (!q) return SAM2C_ERR_NOMEM;
    *p = q;
    *cap = n;
    return SAM2C_OK;
}

/* ref: SAM2Transforms.postprocess_masks: optional hole / sprinkle filling on the low-res
 * logits, then bilinear (align_corners=False) upsampling to the original size; with
 * binary set (masks wanted as 0/1 and nobody observes the logits) the threshold of
 * predict() is applied in the same pass. */
static int postprocess(sam2c_image_session *s, float *low, int planes, int lh, int lw, float *out,
                       bool binary) {
    float thr = s->m->cfg.mask_threshold;
    for (int i = 0; i < planes; i++) {
        float *pl = low + (int64_t)i * lh * lw;
        if (s->max_hole_area > 0 || s->max_sprinkle_area > 0)
            S2_CHECK(s2_fill_holes_and_sprinkles(pl, lh, lw, thr, (int64_t)s->max_hole_area,
                                                 (int64_t)s->max_sprinkle_area, thr + 10.0f, thr - 10.0f));
    }
    if (binary) s2_ref_interp_bilinear_gt(out, low, planes, lh, lw, s->orig_h, s->orig_w, thr);
    else s2_ref_interp_bilinear(out, low, planes, lh, lw, s->orig_h, s->orig_w, false, false);
    return SAM2C_OK;
}

static int run_decoder(sam2c_image_session *s, const sam2c_prompt *p, int B, int N, s2_dec_out *dec) {
    float *coords = N ? s2_scratch_f32(&s->ctx, (int64_t)B * N * 2) : NULL;
    int32_t *labels = N ? (int32_t *)s2_scratch_f32(&s->ctx, (int64_t)B * N) : NULL;
    if (N) build_points(s, p, B, N, coords, labels);
    s2_dump(&s->ctx, "prompt.point_coords", coords, 3, (int64_t[]){B, N, 2});
    s2_prompt pr = {.B = B, .N = N, .coords = coords, .labels = labels, .pad = true,
                    .mask = p->mask_input, .mask_B = 1};
    s2_prompt_out po;
    S2_CHECK(s2_prompt_encoder_forward(&s->ctx, s->m, &pr, &po));
    s2_dec_in in = {.B = B, .Ns = po.Ns, .image_embed = s->image_embed, .image_pe = s->dense_pe,
                    .sparse = po.sparse, .dense = po.dense,
                    .feat_s0 = s->bb.high_res[0], .feat_s1 = s->bb.high_res[1],
                    .multimask_output = p->multimask != 0, .repeat_image = B > 1};
    return s2_mask_decoder_forward(&s->ctx, s->m, &in, dec);
}

/* Dumps with the shape the official predict() returns (batch squeezed when 1). */
static void dump_returned(sam2c_image_session *s, const char *name, const float *x, int B, int M,
                          int h, int w) {
    if (B == 1) s2_dump(&s->ctx, name, x, 3, (int64_t[]){M, h, w});
    else s2_dump(&s->ctx, name, x, 4, (int64_t[]){B, M, h, w});
}

int sam2c_image_predict(sam2c_image_session *s, const sam2c_prompt *p, sam2c_masks *out) {
    s2_threads_apply();
    memset(out, 0, sizeof *out);
    int side = 4 * s2_cfg_feat_side(&s->m->cfg);
    S2_CHECK(check_prompt(s, p, side));
    int B = p->n_boxes > 1 ? p->n_boxes : 1;
    int N = (p->n_boxes ? 2 : 0) + p->n_points;
    s2_arena_reset(&s->scratch);
    s2_dec_out dec;
    S2_CHECK(run_decoder(s, p, B, N, &dec));
    int M = dec.M, lh = dec.H, lw = dec.W;
    int64_t planes = (int64_t)B * M, low_n = planes * lh * lw;
    int64_t big = planes * s->orig_w * s->orig_h;
    S2_CHECK(grow(&s->out_masks, &s->cap_masks, (size_t)big));
    S2_CHECK(grow(&s->out_low, &s->cap_small, (size_t)low_n));
    S2_CHECK(grow(&s->out_iou, &s->cap_iou, (size_t)planes));
    S2_CHECK(grow(&s->out_score, &s->cap_score, (size_t)B));
    memcpy(s->out_low, dec.masks, (size_t)low_n * sizeof(float));
    bool binary = !p->return_logits && !s->ctx.dump;
    S2_CHECK(postprocess(s, s->out_low, (int)planes, lh, lw, s->out_masks, binary));
    /* The returned low-res logits are the raw ones, clamped; hole filling only affects
     * the upsampled masks (official: postprocess on a copy). */
    for (int64_t i = 0; i < low_n; i++) s->out_low[i] = fminf(fmaxf(dec.masks[i], -32.0f), 32.0f);
    dump_returned(s, "output.masks", s->out_masks, B, M, s->orig_h, s->orig_w);
    if (!p->return_logits && !binary)
        for (int64_t i = 0; i < big; i++) s->out_masks[i] = s->out_masks[i] > s->m->cfg.mask_threshold;
    memcpy(s->out_iou, dec.iou, (size_t)planes * sizeof(float));
    for (int b = 0; b < B; b++) s->out_score[b] = dec.obj_score[b];
    dump_returned(s, "output.low_res_masks", s->out_low, B, M, lh, lw);
    if (B == 1) s2_dump(&s->ctx, "output.iou_predictions", s->out_iou, 1, (int64_t[]){M});
    else s2_dump(&s->ctx, "output.iou_predictions", s->out_iou, 2, (int64_t[]){B, M});
    *out = (sam2c_masks){B, M, s->orig_w, s->orig_h, lw, lh, s->out_masks, s->out_iou, s->out_low,
                         s->out_score};
    return SAM2C_OK;
}
