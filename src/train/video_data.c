/* Clips for video fine-tuning: folder listing, frame decoding with the video predictor's
 * preprocessing, frozen-encoder feature cache and S x S ground-truth masks (see
 * video_data.h for the layout). Letters: C, h, S, T, K as there.
 * ref: training/dataset/vos_raw_dataset.py PNGRawDataset (per-object PNG folders),
 *      sam2/utils/misc.py load_video_frames (frame order, PIL resize) */
#include "train/video_data.h"
#include "train/data.h"
#include "io/image.h"
#include "model/image_encoder.h"
#include "predict/preprocess.h"
#include "predict/video_frames.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* True when path is a folder. */
static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Name order. */
static int cmp_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted sub-folders of dir (with JPEGImages inside when need_frames). */
static int list_folders(const char *dir, bool need_frames, char ***out, int *n) {
    *out = NULL, *n = 0;
    DIR *dp = opendir(dir);
    if (!dp) return s2_err(SAM2C_ERR_IO, "%s: not a folder", dir);
    struct dirent *e;
    int rc = SAM2C_OK;
    char path[4200];
    while (rc == SAM2C_OK && (e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, need_frames ? "%s/%s/JPEGImages" : "%s/%s", dir, e->d_name);
        if (!is_dir(path)) continue;
        char **l = s2_realloc(*out, sizeof(char *) * (size_t)(*n + 1));
        if (!l || !(l[*n] = s2_strdup(e->d_name))) rc = SAM2C_ERR_NOMEM;
        if (l) *out = l;
        if (rc == SAM2C_OK) (*n)++;
    }
    closedir(dp);
    if (rc == SAM2C_OK && *n > 1) qsort(*out, (size_t)*n, sizeof **out, cmp_name);
    return rc;
}

void s2_vclip_list_free(char **names, int n) {
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

int s2_vclip_list(const char *root, char ***names, int *n) {
    int rc = list_folders(root, true, names, n);
    if (rc == SAM2C_OK && *n == 0)
        rc = s2_err(SAM2C_ERR_FORMAT, "%s: no clip folders (<clip>/JPEGImages/<frame>.jpg expected)", root);
    if (rc < 0) s2_vclip_list_free(*names, *n), *names = NULL, *n = 0;
    return rc;
}

/* Floats of one frame's three neck levels. */
static int64_t frame_floats(const sam2c_model *m) {
    const int C = m->cfg.d_model, h = s2_cfg_feat_side(&m->cfg);
    return (int64_t)C * 21 * h * h; // 16 h^2 + 4 h^2 + h^2
}

size_t s2_vclip_bytes(const sam2c_model *m, const s2_vclip *v) {
    const size_t S = (size_t)m->cfg.image_size;
    return (size_t)v->T * (sizeof(float) * (size_t)frame_floats(m) + (size_t)v->K * S * S);
}

/* Encoding buffers shared by the frames of one clip. */
typedef struct enc_buf {
    float *bb, *img;
    uint8_t *rgb;
} enc_buf;

/* Decodes frame path, resizes it as PIL, encodes it into dst (three levels) and returns
 * its decoded size; pos (C, h, w) receives the top-level PE when not NULL. */
static int encode_frame(s2_ctx *c, const sam2c_model *m, const enc_buf *eb, const char *path,
                        float *dst, float *pos, int *w, int *h) {
    const int S = m->cfg.image_size, hs = s2_cfg_feat_side(&m->cfg), C = m->cfg.d_model;
    s2_image_opts o;
    s2_image_opts_default(&o);
    o.apply_exif = false; // PIL.Image.open does not rotate
    s2_image im = {0};
    S2_CHECK(s2_image_load(path, &o, &im));
    *w = im.w, *h = im.h;
    int rc = s2_pil_resize_bicubic_u8_checked(eb->rgb, S, S, im.px, im.w, im.h, 3);
    s2_image_free(&im);
    if (rc == SAM2C_OK) rc = s2_preprocess_video_frame(eb->img, eb->rgb, S);
    s2_backbone_out bb;
    s2_backbone_out_carve(&m->cfg, eb->bb, &bb);
    if (rc == SAM2C_OK) rc = s2_image_encoder_forward(c, m, eb->img, &bb);
    s2_arena_reset(c->scratch);
    if (rc < 0) return s2_err_prefix(rc, "%s: ", path);
    if (bb.n_levels < 3 || bb.h[2] != hs || bb.h[1] != 2 * hs || bb.h[0] != 4 * hs)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "video finetune: neck levels do not match the decoder");
    const int64_t n0 = (int64_t)C * 16 * hs * hs, n1 = (int64_t)C * 4 * hs * hs, n2 = (int64_t)C * hs * hs;
    memcpy(dst, bb.fpn[0], sizeof(float) * (size_t)n0);
    memcpy(dst + n0, bb.fpn[1], sizeof(float) * (size_t)n1);
    memcpy(dst + n0 + n1, bb.fpn[2], sizeof(float) * (size_t)n2);
    if (pos) memcpy(pos, bb.pos[2], sizeof(float) * (size_t)n2);
    return SAM2C_OK;
}

/* Object k's mask on frame `stem` (absent file: empty) resized to S x S into gt. */
static int load_mask(const char *adir, const char *obj, const char *stem, int w, int h, int S,
                     uint8_t *gt) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s/%s.png", adir, obj, stem);
    struct stat st;
    if (stat(path, &st) != 0) {
        memset(gt, 0, (size_t)S * S);
        return SAM2C_OK;
    }
    uint8_t *px = NULL;
    int mw, mh;
    S2_CHECK(s2_png_load_gray(path, &px, &mw, &mh));
    int rc = SAM2C_OK;
    if (mw != w || mh != h) rc = s2_err(SAM2C_ERR_FORMAT, "%s: mask is %dx%d, its frame is %dx%d", path, mw, mh, w, h);
    for (int64_t i = 0; rc == SAM2C_OK && i < (int64_t)w * h; i++) px[i] = px[i] != 0;
    if (rc == SAM2C_OK) s2_masks_resize_nearest(gt, S, S, px, h, w, 1);
    free(px);
    return rc;
}

/* Frames and masks of one clip into v (folders already listed). */
static int load_frames(s2_ctx *c, const sam2c_model *m, const char *cdir, s2_frame_file *files,
                       char **objs, s2_vclip *v, float *pos) {
    const int S = m->cfg.image_size;
    const int64_t per = frame_floats(m), SS = (int64_t)S * S;
    char jdir[4300], adir[4300], path[4600], stem[256];
    snprintf(jdir, sizeof jdir, "%s/JPEGImages", cdir);
    snprintf(adir, sizeof adir, "%s/Annotations", cdir);
    enc_buf eb = {s2_aligned_alloc(sizeof(float) * s2_backbone_out_floats(&m->cfg)),
                  s2_aligned_alloc(sizeof(float) * 3 * (size_t)SS), s2_malloc(3 * (size_t)SS)};
    v->feat = s2_aligned_alloc(sizeof(float) * (size_t)(per * v->T));
    v->fpn = s2_calloc((size_t)v->T * 3, sizeof *v->fpn);
    v->gt = s2_calloc((size_t)v->T * (v->K ? v->K : 1), (size_t)SS);
    int rc = eb.bb && eb.img && eb.rgb && v->feat && v->fpn && v->gt ? SAM2C_OK : SAM2C_ERR_NOMEM;
    for (int t = 0; rc == SAM2C_OK && t < v->T; t++) {
        snprintf(path, sizeof path, "%s/%s", jdir, files[t].name);
        snprintf(stem, sizeof stem, "%s", files[t].name);
        if (strrchr(stem, '.')) *strrchr(stem, '.') = 0;
        float *dst = v->feat + per * t;
        int w = 0, h = 0;
        rc = encode_frame(c, m, &eb, path, dst, t == 0 ? pos : NULL, &w, &h);
        const int hs = s2_cfg_feat_side(&m->cfg), C = m->cfg.d_model;
        v->fpn[3 * t] = dst, v->fpn[3 * t + 1] = dst + (int64_t)C * 16 * hs * hs;
        v->fpn[3 * t + 2] = dst + (int64_t)C * 20 * hs * hs;
        for (int k = 0; rc == SAM2C_OK && k < v->K; k++)
            rc = load_mask(adir, objs[k], stem, w, h, S, v->gt + ((int64_t)t * v->K + k) * SS);
    }
    s2_aligned_free(eb.bb), s2_aligned_free(eb.img), free(eb.rgb);
    return rc;
}

int s2_vclip_load(s2_ctx *c, const sam2c_model *m, const char *root, const char *name,
                  int max_frames, s2_vclip *out, float *pos) {
    *out = (s2_vclip){0};
    char cdir[4200], jdir[4300], adir[4300];
    snprintf(cdir, sizeof cdir, "%s/%s", root, name);
    snprintf(jdir, sizeof jdir, "%s/JPEGImages", cdir);
    snprintf(adir, sizeof adir, "%s/Annotations", cdir);
    if (!is_dir(adir)) return s2_err(SAM2C_ERR_FORMAT, "%s: no Annotations folder", cdir);
    s2_frame_file *files = NULL;
    char **objs = NULL;
    int n_files = 0, n_obj = 0;
    S2_CHECK(s2_list_frame_files(jdir, &files, &n_files));
    int rc = list_folders(adir, false, &objs, &n_obj);
    if (rc == SAM2C_OK && n_obj == 0) rc = s2_err(SAM2C_ERR_FORMAT, "%s: no object folders", adir);
    out->T = max_frames > 0 && max_frames < n_files ? max_frames : n_files;
    out->K = n_obj;
    if (rc == SAM2C_OK && !(out->name = s2_strdup(name))) rc = SAM2C_ERR_NOMEM;
    if (rc == SAM2C_OK) rc = load_frames(c, m, cdir, files, objs, out, pos);
    s2_frame_files_free(files, n_files);
    s2_vclip_list_free(objs, n_obj);
    if (rc < 0) s2_vclip_free(out);
    return rc;
}

void s2_vclip_free(s2_vclip *v) {
    if (!v) return;
    free(v->name);
    s2_aligned_free(v->feat);
    free(v->fpn);
    free(v->gt);
    *v = (s2_vclip){0};
}
