/* Automatic mask generation ("segment everything").
 * ref: sam2/automatic_mask_generator.py SAM2AutomaticMaskGenerator, sam2/utils/amg.py
 *
 * Per crop: set_image on the cropped pixels, then batches of single-point prompts
 * decoded with the crop's embedding reused; each mask is filtered (predicted IoU,
 * stability), binarised, boxed, dropped near inner crop edges and run-length encoded
 * at the image size; NMS within the crop, then across crops.
 * Letters: P points in a batch, M masks per point (3 multimask, else 1), lh x lw
 * low-res mask side, ch x cw crop size, H x W image size. */
#include "predict/amg.h"
#include "io/rle.h"
#include "model/image_encoder.h"
#include "model/sam_heads.h"
#include "predict/postprocess.h"
#include "predict/preprocess.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AMG_MAX_PIXELS 50000000LL
#define AMG_MAX_POINTS_PER_SIDE 1024
#define AMG_MAX_BATCH 1024

/* A mask that passed the per-batch filters. */
typedef struct amg_cand {
    int box[4];      /* XYXY inclusive: crop pixels until its crop is done, then image */
    float iou, stab; /* predicted IoU, stability score */
    float pt[2];     /* prompt (x, y), f32 as the official tensors; crop then image pixels */
    int crop;        /* index into crops */
    s2_rle rle;      /* image-size mask */
} amg_cand;

struct sam2c_amg {
    const sam2c_model *m;
    sam2c_amg_params p;
    int n_grids;
    double **grid;            /* [crop_n_layers + 1] -> [grid_n, 2] in [0, 1] */
    int *grid_n;
    s2_arena scratch;         /* encoder / decoder activations, reset per batch */
    s2_ctx ctx;
    float *feat_buf;          /* backbone outputs of the current crop */
    s2_backbone_out bb;
    float *image_embed;       /* [1, C, h, w] = fpn[last] + no_mem_embed */
    float *dense_pe;          /* [C, h, w] */
    float *pts;               /* [P, 2] points of a batch, crop pixels */
    /* per generate */
    int (*crops)[4];
    int *crop_layer, n_crops;
    amg_cand *cand;
    int n_cand, cap_cand;
    sam2c_amg_mask *out;
    uint8_t *crop_rgb;        /* [ch, cw, 3] */
    float *plane;             /* [ch, cw] upsampled logits of one mask */
    uint8_t *cm;              /* [cw, ch] binary mask, column-major */
    float *low_a, *low_b;     /* [lh, lw] post-processing copies */
    float *m2m_low;           /* [P * M, lh, lw] clamped low-res logits (use_m2m) */
    s2_amg_resize rs;         /* low-res -> crop size, tables of the current crop */
    size_t cap_m2m;
    int W, H, done, total;
};

/* Everything process_mask needs about the current crop. */
typedef struct crop_job {
    int idx;
    const int *box;           /* XYXY, exclusive x1 / y1 */
    int cw, ch;
} crop_job;

sam2c_amg_params sam2c_amg_default_params(void) {
    return (sam2c_amg_params){.points_per_side = 32, .points_per_batch = 64,
                              .pred_iou_thresh = 0.8, .stability_score_thresh = 0.95,
                              .stability_score_offset = 1.0, .mask_threshold = 0.0,
                              .box_nms_thresh = 0.7, .crop_n_layers = 0, .crop_nms_thresh = 0.7,
                              .crop_overlap_ratio = 512.0 / 1500.0,
                              .crop_n_points_downscale_factor = 1, .multimask_output = 1};
}

/* ---- generator object ---- */

void s2_amg_set_backend(sam2c_amg *g, const s2_backend *be) { g->ctx.be = be; }

static bool is_finite(double v) { return isfinite(v) != 0; }

/* Parameter checks: the official asserts plus what would crash it or make no sense. */
static int check_params(const sam2c_amg_params *p) {
    if (p->points_per_side < 0 || p->points_per_side > AMG_MAX_POINTS_PER_SIDE)
        return s2_err(SAM2C_ERR_ARG, "points_per_side %d is outside [0, %d]", p->points_per_side,
                      AMG_MAX_POINTS_PER_SIDE);
    if ((p->points_per_side > 0) == (p->n_point_grids > 0))
        return s2_err(SAM2C_ERR_ARG, "exactly one of points_per_side or point_grids must be given");
    if (p->n_point_grids < 0 || (p->n_point_grids && (!p->point_grids || !p->point_grid_sizes)))
        return s2_err(SAM2C_ERR_ARG, "point_grids: missing arrays");
    if (p->points_per_batch < 1 || p->points_per_batch > AMG_MAX_BATCH)
        return s2_err(SAM2C_ERR_ARG, "points_per_batch %d is outside [1, %d]", p->points_per_batch,
                      AMG_MAX_BATCH);
    const double v[] = {p->pred_iou_thresh, p->stability_score_thresh, p->stability_score_offset,
                        p->mask_threshold, p->box_nms_thresh, p->crop_nms_thresh, p->crop_overlap_ratio};
    const char *nm[] = {"pred_iou_thresh", "stability_score_thresh", "stability_score_offset",
                        "mask_threshold", "box_nms_thresh", "crop_nms_thresh", "crop_overlap_ratio"};
    for (int i = 0; i < 7; i++)
        if (!is_finite(v[i])) return s2_err(SAM2C_ERR_ARG, "%s is not a finite number", nm[i]);
    if (p->crop_n_layers < 0 || p->crop_n_layers > S2_AMG_MAX_CROP_LAYERS)
        return s2_err(SAM2C_ERR_ARG, "crop_n_layers %d is outside [0, %d]", p->crop_n_layers,
                      S2_AMG_MAX_CROP_LAYERS);
    if (!(p->crop_overlap_ratio >= 0 && p->crop_overlap_ratio < 1))
        return s2_err(SAM2C_ERR_ARG, "crop_overlap_ratio %g is outside [0, 1)", p->crop_overlap_ratio);
    if (p->crop_n_points_downscale_factor < 1)
        return s2_err(SAM2C_ERR_ARG, "crop_n_points_downscale_factor %d must be >= 1",
                      p->crop_n_points_downscale_factor);
    if (p->min_mask_region_area < 0)
        return s2_err(SAM2C_ERR_ARG, "min_mask_region_area %d is negative", p->min_mask_region_area);
    if (p->n_point_grids && p->n_point_grids < p->crop_n_layers + 1)
        return s2_err(SAM2C_ERR_ARG, "point_grids: %d grid(s) for %d crop layer(s) (one per layer, "
                      "the image itself included)", p->n_point_grids, p->crop_n_layers + 1);
    return SAM2C_OK;
}

// ref: sam2/utils/amg.py build_all_layer_point_grids, or a copy of the given point_grids
static int build_grids(sam2c_amg *g) {
    const sam2c_amg_params *p = &g->p;
    int L = p->crop_n_layers + 1;
    g->n_grids = L;
    g->grid = s2_calloc((size_t)L, sizeof *g->grid);
    g->grid_n = s2_calloc((size_t)L, sizeof *g->grid_n);
    if (!g->grid || !g->grid_n) return SAM2C_ERR_NOMEM;
    for (int l = 0; l < L; l++) {
        int side = 0, n;
        if (p->points_per_side) {
            side = (int)((double)p->points_per_side / pow((double)p->crop_n_points_downscale_factor, l));
            if (side < 1)
                return s2_err(SAM2C_ERR_ARG, "crop layer %d gets no points (points_per_side %d / "
                              "crop_n_points_downscale_factor %d^%d < 1)", l, p->points_per_side,
                              p->crop_n_points_downscale_factor, l);
            n = side * side;
        } else {
            n = p->point_grid_sizes[l];
            if (n < 1 || n > AMG_MAX_POINTS_PER_SIDE * AMG_MAX_POINTS_PER_SIDE || !p->point_grids[l])
                return s2_err(SAM2C_ERR_ARG, "point_grids[%d]: %d points", l, n);
        }
        g->grid_n[l] = n;
        if (!(g->grid[l] = s2_malloc((size_t)n * 2 * sizeof(double)))) return SAM2C_ERR_NOMEM;
        if (side) s2_amg_point_grid(side, g->grid[l]);
        else
            for (int i = 0; i < 2 * n; i++) {
                g->grid[l][i] = p->point_grids[l][i];
                if (!is_finite(g->grid[l][i]))
                    return s2_err(SAM2C_ERR_ARG, "point_grids[%d]: point %d is not finite", l, i / 2);
            }
    }
    return SAM2C_OK;
}

/* Buffers that live as long as the generator: image features and one batch of points. */
static int alloc_model_buffers(sam2c_amg *g) {
    const s2_config *c = &g->m->cfg;
    int hw = s2_cfg_feat_side(c);
    size_t nf = s2_backbone_out_floats(c);
    if (!nf) return s2_err(SAM2C_ERR_ARG, "automatic masks: the model configuration is invalid");
    g->feat_buf = s2_aligned_alloc(nf * sizeof(float));
    g->image_embed = s2_aligned_alloc((size_t)c->d_model * hw * hw * sizeof(float));
    g->dense_pe = s2_aligned_alloc((size_t)c->d_model * hw * hw * sizeof(float));
    g->pts = s2_malloc((size_t)g->p.points_per_batch * 2 * sizeof(float));
    if (!g->feat_buf || !g->image_embed || !g->dense_pe || !g->pts || s2_arena_init(&g->scratch, 0) < 0)
        return SAM2C_ERR_NOMEM;
    s2_backbone_out_carve(c, g->feat_buf, &g->bb);
    s2_prompt_dense_pe(g->m, g->dense_pe);
    g->ctx.scratch = &g->scratch;
    return SAM2C_OK;
}

int sam2c_amg_create(const sam2c_model *m, const sam2c_amg_params *params, sam2c_amg **out) {
    if (!out) return s2_err(SAM2C_ERR_ARG, "automatic masks: no output pointer");
    *out = NULL;
    if (!m) return s2_err(SAM2C_ERR_ARG, "automatic masks: no model");
    sam2c_amg_params p = params ? *params : sam2c_amg_default_params();
    S2_CHECK(check_params(&p));
    sam2c_amg *g = s2_calloc(1, sizeof *g);
    if (!g) return SAM2C_ERR_NOMEM;
    g->m = m;
    g->p = p;
    int rc = build_grids(g);
    g->p.n_point_grids = 0, g->p.point_grids = NULL, g->p.point_grid_sizes = NULL; /* copied */
    if (rc == SAM2C_OK) rc = alloc_model_buffers(g);
    if (rc < 0) {
        sam2c_amg_free(g);
        return rc;
    }
    *out = g;
    return SAM2C_OK;
}

/* Drops the candidates (and with them the last result). */
static void clear_cands(sam2c_amg *g) {
    for (int i = 0; i < g->n_cand; i++) s2_rle_free(&g->cand[i].rle);
    g->n_cand = 0;
}

/* Per-generate work buffers. */
static void free_work(sam2c_amg *g) {
    free(g->crops), free(g->crop_layer), free(g->crop_rgb), free(g->plane), free(g->cm);
    free(g->low_a), free(g->low_b), free(g->m2m_low);
    g->crops = NULL, g->crop_layer = NULL, g->crop_rgb = NULL, g->plane = NULL, g->cm = NULL;
    g->low_a = g->low_b = g->m2m_low = NULL;
    g->cap_m2m = 0;
    s2_amg_resize_free(&g->rs);
}

void sam2c_amg_free(sam2c_amg *g) {
    if (!g) return;
    clear_cands(g);
    free(g->cand);
    free(g->out);
    free_work(g);
    for (int l = 0; g->grid && l < g->n_grids; l++) free(g->grid[l]);
    free(g->grid), free(g->grid_n);
    s2_arena_free(&g->scratch);
    s2_aligned_free(g->feat_buf), s2_aligned_free(g->image_embed), s2_aligned_free(g->dense_pe);
    free(g->pts);
    free(g);
}

/* ---- one crop ---- */

// ref: SAM2ImagePredictor.set_image (as sam2c_image_set_rgb: encoder + no_mem_embed)
static int set_image(sam2c_amg *g, const uint8_t *rgb, int w, int h) {
    const s2_config *c = &g->m->cfg;
    int S = c->image_size;
    s2_arena_reset(&g->scratch);
    float *img = s2_scratch_f32(&g->ctx, 3LL * S * S); // [3, S, S]
    S2_CHECK(s2_preprocess_image(img, rgb, w, h, S));
    S2_CHECK(s2_image_encoder_forward(&g->ctx, g->m, img, &g->bb));
    int L = g->bb.n_levels - 1, C = g->bb.C;
    int64_t hw = (int64_t)g->bb.h[L] * g->bb.w[L];
    const float *nme = s2_w(g->m, "no_mem_embed"); // [1, 1, C]
    for (int ch = 0; ch < C; ch++)
        for (int64_t i = 0; i < hw; i++)
            g->image_embed[ch * hw + i] =
                g->bb.fpn[L][ch * hw + i] + (c->directly_add_no_mem_embed ? nme[ch] : 0.0f);
    return SAM2C_OK;
}

// ref: SAM2ImagePredictor._predict (prompt encoder + decoder, repeat_image when B > 1)
/* coords [B, 1, 2] model-input pixels, labels [B, 1], mask NULL or [B, 1, lh, lw]. */
static int decode(sam2c_amg *g, int B, const float *coords, const int32_t *labels,
                  const float *mask, bool multimask, s2_dec_out *dec) {
    s2_prompt pr = {.B = B, .N = 1, .coords = coords, .labels = labels, .pad = true,
                    .mask = mask, .mask_B = B};
    s2_prompt_out po;
    S2_CHECK(s2_prompt_encoder_forward(&g->ctx, g->m, &pr, &po));
    s2_dec_in in = {.B = B, .Ns = po.Ns, .image_embed = g->image_embed, .image_pe = g->dense_pe,
                    .sparse = po.sparse, .dense = po.dense, .feat_s0 = g->bb.high_res[0],
                    .feat_s1 = g->bb.high_res[1], .multimask_output = multimask,
                    .repeat_image = B > 1};
    return s2_mask_decoder_forward(&g->ctx, g->m, &in, dec);
}

// ref: SAM2Transforms.transform_coords (normalize): x / w * S in f32; labels all 1
static void prompt_coords(const sam2c_amg *g, const float *pts, int n, int cw, int ch,
                          float *coords, int32_t *labels) {
    const float S = (float)g->m->cfg.image_size;
    for (int i = 0; i < n; i++) {
        coords[2 * i] = pts[2 * i] / (float)cw * S;
        coords[2 * i + 1] = pts[2 * i + 1] / (float)ch * S;
        labels[i] = 1;
    }
}

// ref: SAM2Transforms.postprocess_masks with max_hole_area = max_sprinkle_area = area and
// the predictor's mask_threshold 0: holes (logit <= 0) and sprinkles (logit > 0) are
// both found on the unmodified logits; holes get 10, sprinkles -10.
static int fill_small_regions(float *plane, float *tmp, int lh, int lw, int64_t area) {
    (void)tmp;
    return s2_fill_holes_and_sprinkles(plane, lh, lw, 0.0f, area, area, 10.0f, -10.0f);
}

/* logit > thr, written column-major [w][h] (tiles keep both sides in cache). */
static void binarize_colmajor(const float *plane, int h, int w, float thr, uint8_t *cm) {
    enum { T = 64 };
    for (int y0 = 0; y0 < h; y0 += T)
        for (int x0 = 0; x0 < w; x0 += T) {
            int y1 = S2_MIN(y0 + T, h), x1 = S2_MIN(x0 + T, w);
            for (int x = x0; x < x1; x++)
                for (int y = y0; y < y1; y++)
                    cm[(int64_t)x * h + y] = plane[(int64_t)y * w + x] > thr;
        }
}

/* Run accumulator: out NULL counts the runs only. First run is background. */
typedef struct run_state { uint32_t *out; int64_t n; uint8_t cur; } run_state;
static void run_push(run_state *s, uint8_t v, uint32_t len) {
    if (!len) return;
    if (v != s->cur) {
        s->n++;
        s->cur = v;
        if (s->out) s->out[s->n - 1] = 0;
    }
    if (s->out) s->out[s->n - 1] += len;
}

// ref: amg.py uncrop_masks + mask_to_rle_pytorch: the crop mask zero-padded to H x W,
// column-major runs, without materialising the padded mask.
static int64_t crop_runs(const uint8_t *cm, const crop_job *cj, int W, int H, uint32_t *out) {
    run_state s = {out, 1, 0};
    if (out) out[0] = 0;
    const int *b = cj->box;
    run_push(&s, 0, (uint32_t)b[0] * (uint32_t)H);
    for (int x = 0; x < cj->cw; x++) {
        const uint8_t *col = cm + (int64_t)x * cj->ch;
        run_push(&s, 0, (uint32_t)b[1]);
        for (int y = 0; y < cj->ch;) { /* next byte of the other value, found by memchr */
            uint8_t v = col[y];
            const uint8_t *e = memchr(col + y, !v, (size_t)(cj->ch - y));
            int y1 = e ? (int)(e - col) : cj->ch;
            run_push(&s, v, (uint32_t)(y1 - y));
            y = y1;
        }
        run_push(&s, 0, (uint32_t)(H - b[3]));
    }
    run_push(&s, 0, (uint32_t)(W - b[2]) * (uint32_t)H);
    return s.n;
}

static int push_cand(sam2c_amg *g, const amg_cand *c) {
    if (g->n_cand == g->cap_cand) {
        int cap = g->cap_cand ? 2 * g->cap_cand : 256;
        amg_cand *q = s2_realloc(g->cand, (size_t)cap * sizeof *q);
        if (!q) return SAM2C_ERR_NOMEM;
        g->cand = q;
        g->cap_cand = cap;
    }
    g->cand[g->n_cand++] = *c;
    return SAM2C_OK;
}

// ref: SAM2AutomaticMaskGenerator._process_batch, for one mask: IoU filter, upsampling
// (postprocess_masks), stability filter, binarisation, box, crop-edge filter, RLE.
/* low [lh, lw] unclamped logits; pt the prompt in crop pixels. */
static int process_mask(sam2c_amg *g, const crop_job *cj, const float *low, int lh, int lw,
                        float iou, const float *pt) {
    const sam2c_amg_params *p = &g->p;
    if (p->pred_iou_thresh > 0.0 && !(iou > (float)p->pred_iou_thresh)) return SAM2C_OK;
    if (lh != g->rs.lh || lw != g->rs.lw)
        return s2_err(SAM2C_ERR_SHAPE, "automatic masks: decoder masks of %d x %d, expected %d x %d", lh, lw,
                      g->rs.lh, g->rs.lw);
    const float *src = low;
    if (p->min_mask_region_area > 0) {
        memcpy(g->low_a, low, (size_t)lh * lw * sizeof(float));
        S2_CHECK(fill_small_regions(g->low_a, g->low_b, lh, lw, p->min_mask_region_area));
        src = g->low_a;
    }
    int64_t inter, uni; /* stability: calculate_stability_score fused into the resize */
    s2_amg_resize_run(&g->rs, src, g->plane, (float)(p->mask_threshold + p->stability_score_offset),
                      (float)(p->mask_threshold - p->stability_score_offset), &inter, &uni);
    float stab = (float)inter / (float)uni;
    if (p->stability_score_thresh > 0.0 && !(stab >= (float)p->stability_score_thresh)) return SAM2C_OK;
    binarize_colmajor(g->plane, cj->ch, cj->cw, (float)p->mask_threshold, g->cm);
    amg_cand c = {.iou = iou, .stab = stab, .pt = {pt[0], pt[1]}, .crop = cj->idx};
    s2_amg_mask_box_colmajor(g->cm, cj->ch, cj->cw, c.box);
    const int *cb = cj->box;
    int ub[4] = {c.box[0] + cb[0], c.box[1] + cb[1], c.box[2] + cb[0], c.box[3] + cb[1]};
    if (s2_amg_box_near_crop_edge(ub, cb, g->W, g->H)) return SAM2C_OK;
    int64_t n = crop_runs(g->cm, cj, g->W, g->H, NULL);
    uint32_t *counts = s2_malloc((size_t)n * sizeof *counts);
    if (!counts) return SAM2C_ERR_NOMEM;
    crop_runs(g->cm, cj, g->W, g->H, counts);
    c.rle = (s2_rle){.h = g->H, .w = g->W, .counts = counts, .n = (int)n};
    int rc = push_cand(g, &c);
    if (rc < 0) free(counts);
    return rc;
}

/* Grows the m2m low-res buffer to n floats. */
static int grow_m2m(sam2c_amg *g, size_t n) {
    if (n <= g->cap_m2m) return SAM2C_OK;
    float *q = s2_realloc(g->m2m_low, n * sizeof(float));
    if (!q) return SAM2C_ERR_NOMEM;
    g->m2m_low = q;
    g->cap_m2m = n;
    return SAM2C_OK;
}

// ref: SAM2AutomaticMaskGenerator.refine_with_m2m: every mask of the batch decoded again
// (single mask) with its own clamped low-res logits as mask input, in batches of P.
static int refine_m2m(sam2c_amg *g, const crop_job *cj, const s2_dec_out *dec, int nb) {
    int M = dec->M, lh = dec->H, lw = dec->W, P = g->p.points_per_batch, planes = nb * M;
    int64_t per = (int64_t)lh * lw;
    S2_CHECK(grow_m2m(g, (size_t)planes * per));
    for (int64_t i = 0; i < planes * per; i++) g->m2m_low[i] = fminf(fmaxf(dec->masks[i], -32.0f), 32.0f);
    float pts[2 * AMG_MAX_BATCH]; /* a copy: the batch's points outlive the scratch reset */
    memcpy(pts, g->pts, (size_t)nb * 2 * sizeof(float));
    for (int s0 = 0; s0 < planes; s0 += P) {
        int ns = S2_MIN(P, planes - s0);
        s2_arena_reset(&g->scratch);
        float *coords = s2_scratch_f32(&g->ctx, 2LL * ns);               // [ns, 1, 2]
        int32_t *labels = (int32_t *)s2_scratch_f32(&g->ctx, ns);        // [ns, 1]
        float *sp = s2_scratch_f32(&g->ctx, 2LL * ns);                   // [ns, 2] crop pixels
        for (int j = 0; j < ns; j++) memcpy(sp + 2 * j, pts + 2 * ((s0 + j) / M), 2 * sizeof(float));
        prompt_coords(g, sp, ns, cj->cw, cj->ch, coords, labels);
        s2_dec_out d2;
        S2_CHECK(decode(g, ns, coords, labels, g->m2m_low + s0 * per, false, &d2));
        for (int j = 0; j < ns; j++)
            S2_CHECK(process_mask(g, cj, d2.masks + j * per, lh, lw, d2.iou[j], sp + 2 * j));
    }
    return SAM2C_OK;
}

// ref: SAM2AutomaticMaskGenerator._process_batch (nb points in g->pts, crop pixels)
static int process_batch(sam2c_amg *g, const crop_job *cj, int nb) {
    s2_arena_reset(&g->scratch);
    float *coords = s2_scratch_f32(&g->ctx, 2LL * nb);         // [nb, 1, 2]
    int32_t *labels = (int32_t *)s2_scratch_f32(&g->ctx, nb);  // [nb, 1]
    prompt_coords(g, g->pts, nb, cj->cw, cj->ch, coords, labels);
    s2_dec_out dec;
    S2_CHECK(decode(g, nb, coords, labels, NULL, g->p.multimask_output != 0, &dec));
    int M = dec.M, lh = dec.H, lw = dec.W;
    if (g->p.use_m2m) return refine_m2m(g, cj, &dec, nb);
    for (int b = 0; b < nb; b++)
        for (int k = 0; k < M; k++)
            S2_CHECK(process_mask(g, cj, dec.masks + ((int64_t)b * M + k) * lh * lw, lh, lw,
                                  dec.iou[b * M + k], g->pts + 2 * b));
    return SAM2C_OK;
}

/* Keeps cand[start + keep[i]] in keep order and frees the others. */
static int keep_cands(sam2c_amg *g, int start, const int *keep, int nk) {
    int n = g->n_cand - start;
    amg_cand *tmp = s2_malloc((size_t)(n ? n : 1) * sizeof *tmp);
    uint8_t *kept = s2_calloc((size_t)(n ? n : 1), 1);
    if (!tmp || !kept) {
        free(tmp), free(kept);
        return SAM2C_ERR_NOMEM;
    }
    for (int i = 0; i < nk; i++) tmp[i] = g->cand[start + keep[i]], kept[keep[i]] = 1;
    for (int i = 0; i < n; i++)
        if (!kept[i]) s2_rle_free(&g->cand[start + i].rle);
    memcpy(g->cand + start, tmp, (size_t)nk * sizeof *tmp);
    g->n_cand = start + nk;
    free(tmp), free(kept);
    return SAM2C_OK;
}

/* NMS over cand[start..] with the given scores, then keeps the survivors. */
static int nms_cands(sam2c_amg *g, int start, const float *scores, double thresh) {
    int n = g->n_cand - start;
    if (n <= 0) return SAM2C_OK;
    float *bx = s2_malloc((size_t)n * 4 * sizeof(float));
    int *keep = s2_malloc((size_t)n * sizeof(int));
    int rc = (bx && keep) ? SAM2C_OK : SAM2C_ERR_NOMEM;
    for (int i = 0; rc == SAM2C_OK && i < n; i++)
        for (int k = 0; k < 4; k++) bx[4 * i + k] = (float)g->cand[start + i].box[k];
    int nk = rc == SAM2C_OK ? s2_amg_nms(bx, scores, n, thresh, keep) : rc;
    if (nk >= 0) rc = keep_cands(g, start, keep, nk);
    else rc = nk;
    free(bx), free(keep);
    return rc;
}

/* Reports progress; a nonzero answer cancels. */
static int report(sam2c_amg *g) {
    if (g->p.progress && g->p.progress(g->p.progress_user, g->done, g->total))
        return s2_err(SAM2C_ERR_CANCELLED, "automatic masks: cancelled by the progress callback");
    return SAM2C_OK;
}

// ref: SAM2AutomaticMaskGenerator._process_crop
static int process_crop(sam2c_amg *g, const uint8_t *rgb, int ci) {
    const int *cb = g->crops[ci];
    crop_job cj = {.idx = ci, .box = cb, .cw = cb[2] - cb[0], .ch = cb[3] - cb[1]};
    for (int y = 0; y < cj.ch; y++)
        memcpy(g->crop_rgb + (int64_t)y * cj.cw * 3, rgb + ((int64_t)(y + cb[1]) * g->W + cb[0]) * 3,
               (size_t)cj.cw * 3);
    S2_CHECK(set_image(g, g->crop_rgb, cj.cw, cj.ch));
    int side = 4 * s2_cfg_feat_side(&g->m->cfg);
    s2_amg_resize_free(&g->rs);
    S2_CHECK(s2_amg_resize_init(&g->rs, side, side, cj.ch, cj.cw));
    int layer = g->crop_layer[ci], n = g->grid_n[layer], P = g->p.points_per_batch;
    const double *grid = g->grid[layer];
    int start = g->n_cand;
    for (int b0 = 0; b0 < n; b0 += P) {
        int nb = S2_MIN(P, n - b0);
        for (int i = 0; i < nb; i++) { /* grid * (cw, ch) in f64, then f32 */
            g->pts[2 * i] = (float)(grid[2 * (b0 + i)] * cj.cw);
            g->pts[2 * i + 1] = (float)(grid[2 * (b0 + i) + 1] * cj.ch);
        }
        S2_CHECK(process_batch(g, &cj, nb));
        g->done += nb;
        S2_CHECK(report(g));
    }
    int n_new = g->n_cand - start;
    float *scores = s2_malloc((size_t)(n_new ? n_new : 1) * sizeof(float));
    if (!scores) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < n_new; i++) scores[i] = g->cand[start + i].iou;
    int rc = nms_cands(g, start, scores, g->p.box_nms_thresh);
    free(scores);
    S2_CHECK(rc);
    for (int i = start; i < g->n_cand; i++) { /* uncrop_boxes_xyxy, uncrop_points */
        amg_cand *c = &g->cand[i];
        for (int k = 0; k < 4; k++) c->box[k] += cb[k % 2];
        c->pt[0] += (float)cb[0];
        c->pt[1] += (float)cb[1];
    }
    return SAM2C_OK;
}

// ref: SAM2AutomaticMaskGenerator._generate_masks: with several crops, NMS across crops
// with score 1 / crop area (smaller crops preferred).
static int cross_crop_nms(sam2c_amg *g) {
    if (g->n_crops <= 1 || g->n_cand == 0) return SAM2C_OK;
    float *scores = s2_malloc((size_t)g->n_cand * sizeof(float));
    if (!scores) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < g->n_cand; i++) {
        const int *cb = g->crops[g->cand[i].crop];
        scores[i] = 1.0f / (float)((int64_t)(cb[2] - cb[0]) * (cb[3] - cb[1]));
    }
    int rc = nms_cands(g, 0, scores, g->p.crop_nms_thresh);
    free(scores);
    return rc;
}

/* Work buffers sized for the largest crop (the image itself). */
static int alloc_work(sam2c_amg *g) {
    int nc = s2_amg_n_crops(g->p.crop_n_layers), side = 4 * s2_cfg_feat_side(&g->m->cfg);
    int64_t hw = (int64_t)g->W * g->H;
    g->crops = s2_malloc((size_t)nc * sizeof *g->crops);
    g->crop_layer = s2_malloc((size_t)nc * sizeof *g->crop_layer);
    g->crop_rgb = s2_malloc((size_t)hw * 3);
    g->plane = s2_malloc((size_t)hw * sizeof(float));
    g->cm = s2_malloc((size_t)hw);
    g->low_a = s2_malloc((size_t)side * side * sizeof(float));
    g->low_b = s2_malloc((size_t)side * side * sizeof(float));
    if (!g->crops || !g->crop_layer || !g->crop_rgb || !g->plane || !g->cm || !g->low_a || !g->low_b)
        return SAM2C_ERR_NOMEM;
    int n = s2_amg_crop_boxes(g->W, g->H, g->p.crop_n_layers, g->p.crop_overlap_ratio, g->crops,
                              g->crop_layer, nc);
    S2_CHECK(n);
    g->n_crops = n;
    g->total = 0;
    for (int i = 0; i < n; i++) g->total += g->grid_n[g->crop_layer[i]];
    return SAM2C_OK;
}

// ref: SAM2AutomaticMaskGenerator.generate (records of output_mode "uncompressed_rle")
static int fill_records(sam2c_amg *g, sam2c_amg_result *res) {
    free(g->out);
    g->out = s2_calloc((size_t)(g->n_cand ? g->n_cand : 1), sizeof *g->out);
    if (!g->out) return SAM2C_ERR_NOMEM;
    for (int i = 0; i < g->n_cand; i++) {
        const amg_cand *c = &g->cand[i];
        const int *cb = g->crops[c->crop];
        sam2c_amg_mask *r = &g->out[i];
        r->area = s2_rle_area(&c->rle);
        r->bbox[0] = c->box[0], r->bbox[1] = c->box[1];
        r->bbox[2] = c->box[2] - c->box[0], r->bbox[3] = c->box[3] - c->box[1];
        r->predicted_iou = c->iou;
        r->point_coords[0] = c->pt[0], r->point_coords[1] = c->pt[1];
        r->stability_score = c->stab;
        r->crop_box[0] = cb[0], r->crop_box[1] = cb[1];
        r->crop_box[2] = cb[2] - cb[0], r->crop_box[3] = cb[3] - cb[1];
        r->height = g->H, r->width = g->W;
        r->n_counts = c->rle.n;
        r->counts = c->rle.counts;
    }
    *res = (sam2c_amg_result){.n_masks = g->n_cand, .masks = g->out, .width = g->W, .height = g->H};
    return SAM2C_OK;
}

/* The whole pipeline once the work buffers exist. */
static int run_all(sam2c_amg *g, const uint8_t *rgb, sam2c_amg_result *out) {
    S2_CHECK(alloc_work(g));
    S2_CHECK(report(g));
    for (int ci = 0; ci < g->n_crops; ci++) S2_CHECK(process_crop(g, rgb, ci));
    S2_CHECK(cross_crop_nms(g));
    return fill_records(g, out);
}

int sam2c_amg_generate(sam2c_amg *g, const uint8_t *rgb, int w, int h, sam2c_amg_result *out) {
    s2_threads_apply();
    if (!g || !out) return s2_err(SAM2C_ERR_ARG, "automatic masks: NULL generator or result");
    memset(out, 0, sizeof *out);
    if (!rgb || w <= 0 || h <= 0) return s2_err(SAM2C_ERR_ARG, "automatic masks: empty image");
    if ((int64_t)w * h > AMG_MAX_PIXELS)
        return s2_err(SAM2C_ERR_LIMIT, "automatic masks: image of %d x %d exceeds %lld pixels", w, h,
                      (long long)AMG_MAX_PIXELS);
    clear_cands(g);
    free(g->out);
    g->out = NULL;
    g->W = w, g->H = h, g->done = 0;
    int rc = run_all(g, rgb, out);
    free_work(g);
    if (rc < 0) {
        clear_cands(g);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

int sam2c_amg_mask_decode(const sam2c_amg_mask *m, uint8_t *out) {
    if (!m || !out || !m->counts || m->n_counts < 1)
        return s2_err(SAM2C_ERR_ARG, "automatic masks: decode of an empty record");
    s2_rle r = {.h = m->height, .w = m->width, .counts = (uint32_t *)m->counts, .n = m->n_counts};
    return s2_rle_decode(&r, out);
}
