/* Writing a synthetic data set: images (JPEG through libjpeg or PNG), one 0/255 PNG per
 * visible object, and the COCO instances file with compressed RLE that the fine-tuning
 * loader (src/train/data.c) and `sam2c eval` read. Images are rendered in parallel (each
 * from its own seed, so the bytes do not depend on the thread count); the JSON is built
 * in image order once all images are on disk. */
#include "synth/synth_internal.h"
#include "core/s2.h"
#include "io/image.h"
#include "io/json.h"
#include "io/rle.h"
#include <errno.h>
#include <omp.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jpeglib.h>

void s2_synth_write_default(s2_synth_write_params *wp) {
    *wp = (s2_synth_write_params){.format = "jpg", .quality = 92, .prefix = "synth"};
}

uint64_t s2_synth_image_seed(uint64_t seed, const char *prefix, int i) {
    uint64_t h = 0xCBF29CE484222325ull; // FNV-1a of the prefix
    for (const char *c = prefix ? prefix : ""; *c; c++) h = (h ^ (uint8_t)*c) * 0x100000001B3ull;
    return sy_mix(sy_mix(seed ^ 0x5EEDull) ^ sy_mix(h) ^ ((uint64_t)i + 1) * 0x9E3779B97F4A7C15ull);
}

/* mkdir -p. */
static int mkdir_p(const char *dir) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return s2_err(SAM2C_ERR_ARG, "synth: path too long: %s", dir);
    for (char *p = buf + 1; ; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = 0;
        struct stat st;
        if (mkdir(buf, 0755) != 0 && (errno != EEXIST || stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)))
            return s2_err(SAM2C_ERR_IO, "%s: cannot create folder: %s", buf,
                          errno == EEXIST ? "a file of that name exists" : strerror(errno));
        if (!(*p = c)) break;
    }
    return SAM2C_OK;
}

/* ======================= JPEG ======================= */

typedef struct jpeg_err {
    struct jpeg_error_mgr pub;  /* first: libjpeg casts to it */
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

// libjpeg's fatal error: keep the message and jump back (never exit).
static void jpeg_on_error(j_common_ptr c) {
    jpeg_err *e = (jpeg_err *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jb, 1);
}

typedef struct jpeg_out { unsigned char *buf; unsigned long len; } jpeg_out;

/* RGB (h, w, 3) -> baseline JPEG in mem (4:2:0, libjpeg's default tables at quality q). */
static int jpeg_encode(const uint8_t *rgb, int w, int h, int q, jpeg_out *mem, const char *name) {
    struct jpeg_compress_struct ci;
    jpeg_err je;
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpeg_on_error;
    if (setjmp(je.jb)) {
        jpeg_destroy_compress(&ci);
        free(mem->buf), mem->buf = NULL;
        return s2_err(SAM2C_ERR_FORMAT, "%s: JPEG encoder: %s", name, je.msg);
    }
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &mem->buf, &mem->len);
    ci.image_width = (JDIMENSION)w, ci.image_height = (JDIMENSION)h;
    ci.input_components = 3, ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, q, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)ci.next_scanline * w * 3);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    return SAM2C_OK;
}

/* ======================= one image ======================= */

typedef struct img_rec {
    int n, kind[4], background;
    char *rle[4];           /* compressed COCO counts */
    int64_t area[4];
    double bbox[4][4];
    double angle;
} img_rec;

// The image file, atomically.
static int write_image(const char *path, const s2_synth_sample *s, bool jpg, int q) {
    if (!jpg) return s2_png_write(path, s->rgb, s->w, s->h, 3);
    jpeg_out *mem = s2_calloc(1, sizeof *mem); /* on the heap: survives the longjmp */
    if (!mem) return SAM2C_ERR_NOMEM;
    int rc = jpeg_encode(s->rgb, s->w, s->h, q, mem, path);
    if (rc == SAM2C_OK) rc = s2_write_file_atomic(path, mem->buf, mem->len);
    free(mem->buf), free(mem);
    return rc;
}

// masks/<stem>/<k>.png for each object (0 / 255), minus leftovers of an earlier run,
// and the object's RLE, area and box.
static int write_masks(const char *mdir, const s2_synth_sample *s, img_rec *rec) {
    size_t n = (size_t)s->w * s->h;
    char path[4400];
    uint8_t *m = s2_malloc(n);
    if (!m) return SAM2C_ERR_NOMEM;
    int rc = mkdir_p(mdir);
    for (int k = 0; rc == SAM2C_OK && k < s->n; k++) {
        const uint8_t *src = s->masks + k * n;
        for (size_t i = 0; i < n; i++) m[i] = src[i] ? 255 : 0;
        snprintf(path, sizeof path, "%s/%d.png", mdir, k);
        rc = s2_png_write(path, m, s->w, s->h, 1);
        s2_rle r = {0};
        if (rc == SAM2C_OK) rc = s2_rle_encode(src, s->h, s->w, &r);
        if (rc == SAM2C_OK && !(rec->rle[k] = s2_rle_to_string(&r))) rc = SAM2C_ERR_NOMEM;
        if (rc == SAM2C_OK) rec->area[k] = s2_rle_area(&r), s2_rle_bbox(&r, rec->bbox[k]);
        s2_rle_free(&r);
    }
    for (int k = s->n; rc == SAM2C_OK && k < 4; k++) {
        snprintf(path, sizeof path, "%s/%d.png", mdir, k);
        if (unlink(path) != 0 && errno != ENOENT) rc = s2_err(SAM2C_ERR_IO, "%s: %s", path, strerror(errno));
    }
    free(m);
    return rc;
}

/* Renders image i of the set and writes its files. */
static int write_one(const char *dir, const s2_synth_params *p, uint64_t seed, int i,
                     const s2_synth_write_params *wp, bool jpg, img_rec *rec) {
    char path[4200], stem[256];
    snprintf(stem, sizeof stem, "%s_%06d", wp->prefix, i);
    s2_synth_sample s;
    S2_CHECK(s2_synth_generate(p, s2_synth_image_seed(seed, wp->prefix, i), &s));
    rec->n = s.n, rec->background = s.background, rec->angle = s.gradient_angle;
    memcpy(rec->kind, s.kind, sizeof rec->kind);
    snprintf(path, sizeof path, "%s/images/%s.%s", dir, stem, jpg ? "jpg" : "png");
    int rc = write_image(path, &s, jpg, wp->quality);
    snprintf(path, sizeof path, "%s/masks/%s", dir, stem);
    if (rc == SAM2C_OK) rc = write_masks(path, &s, rec);
    s2_synth_free(&s);
    return rc;
}

/* ======================= annotations.json ======================= */

// COCO instances: images, annotations (RLE), categories (every part kind).
static void coco_json(s2_jw *j, const s2_synth_params *p, uint64_t seed, int n,
                      const s2_synth_write_params *wp, bool jpg, const img_rec *recs) {
    char name[300];
    s2_jw_obj_begin(j);
    s2_jw_key(j, "info"), s2_jw_obj_begin(j);
    s2_jw_key(j, "description"), s2_jw_str(j, "sam2c synth: synthetic inspection parts");
    s2_jw_key(j, "seed");
    if (seed <= (1ull << 53)) s2_jw_int(j, (int64_t)seed);
    else snprintf(name, sizeof name, "%llu", (unsigned long long)seed), s2_jw_str(j, name);
    s2_jw_key(j, "gradient"), s2_jw_num(j, p->gradient);
    s2_jw_obj_end(j);
    s2_jw_key(j, "images"), s2_jw_arr_begin(j);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s_%06d.%s", wp->prefix, i, jpg ? "jpg" : "png");
        s2_jw_obj_begin(j);
        s2_jw_key(j, "id"), s2_jw_int(j, i + 1);
        s2_jw_key(j, "file_name"), s2_jw_str(j, name);
        s2_jw_key(j, "width"), s2_jw_int(j, p->w);
        s2_jw_key(j, "height"), s2_jw_int(j, p->h);
        s2_jw_key(j, "background"), s2_jw_str(j, s2_bg_name(recs[i].background));
        s2_jw_key(j, "gradient_angle"), s2_jw_num(j, recs[i].angle);
        s2_jw_obj_end(j);
    }
    s2_jw_arr_end(j);
    s2_jw_key(j, "annotations"), s2_jw_arr_begin(j);
    for (int i = 0, id = 1; i < n; i++)
        for (int k = 0; k < recs[i].n; k++, id++) {
            s2_jw_obj_begin(j);
            s2_jw_key(j, "id"), s2_jw_int(j, id);
            s2_jw_key(j, "image_id"), s2_jw_int(j, i + 1);
            s2_jw_key(j, "category_id"), s2_jw_int(j, recs[i].kind[k] + 1);
            s2_jw_key(j, "segmentation"), s2_jw_obj_begin(j);
            s2_jw_key(j, "size"), s2_jw_arr_begin(j), s2_jw_int(j, p->h), s2_jw_int(j, p->w), s2_jw_arr_end(j);
            s2_jw_key(j, "counts"), s2_jw_str(j, recs[i].rle[k]);
            s2_jw_obj_end(j);
            s2_jw_key(j, "area"), s2_jw_int(j, recs[i].area[k]);
            s2_jw_key(j, "bbox"), s2_jw_arr_begin(j);
            for (int c = 0; c < 4; c++) s2_jw_num(j, recs[i].bbox[k][c]);
            s2_jw_arr_end(j);
            s2_jw_key(j, "iscrowd"), s2_jw_int(j, 0);
            s2_jw_obj_end(j);
        }
    s2_jw_arr_end(j);
    s2_jw_key(j, "categories"), s2_jw_arr_begin(j);
    for (int k = 0; k < S2_PART_COUNT; k++) {
        s2_jw_obj_begin(j);
        s2_jw_key(j, "id"), s2_jw_int(j, k + 1);
        s2_jw_key(j, "name"), s2_jw_str(j, s2_part_name(k));
        s2_jw_key(j, "supercategory"), s2_jw_str(j, "part");
        s2_jw_obj_end(j);
    }
    s2_jw_arr_end(j);
    s2_jw_obj_end(j);
}

/* ======================= the set ======================= */

// Checks the writer's parameters and creates the folders.
static int set_prepare(const char *dir, const s2_synth_params *p, int n, const s2_synth_write_params *wp,
                       bool *jpg) {
    S2_CHECK(s2_synth_check(p));
    if (!dir || !*dir || strlen(dir) > 3800)
        return s2_err(SAM2C_ERR_ARG, "synth: no output folder, or its path is too long");
    if (n < 0 || n > 10000000) return s2_err(SAM2C_ERR_ARG, "synth: image count %d outside 0..10000000", n);
    if (!wp->format || (strcmp(wp->format, "jpg") && strcmp(wp->format, "png")))
        return s2_err(SAM2C_ERR_ARG, "synth: format '%s' (jpg or png)", wp->format ? wp->format : "");
    if (wp->quality < 1 || wp->quality > 100)
        return s2_err(SAM2C_ERR_ARG, "synth: JPEG quality %d outside 1..100", wp->quality);
    if (!wp->prefix || !*wp->prefix || strlen(wp->prefix) > 200 || strpbrk(wp->prefix, "/\\"))
        return s2_err(SAM2C_ERR_ARG, "synth: file prefix must be a plain name of 1..200 characters");
    *jpg = !strcmp(wp->format, "jpg");
    char sub[4200];
    S2_CHECK(mkdir_p(dir));
    snprintf(sub, sizeof sub, "%s/images", dir);
    S2_CHECK(mkdir_p(sub));
    snprintf(sub, sizeof sub, "%s/masks", dir);
    return mkdir_p(sub);
}

int s2_synth_write_set(const char *dir, const s2_synth_params *p, uint64_t seed, int n,
                       const s2_synth_write_params *wp_in) {
    s2_synth_write_params wp;
    if (wp_in) wp = *wp_in;
    else s2_synth_write_default(&wp);
    bool jpg = false;
    S2_CHECK(set_prepare(dir, p, n, &wp, &jpg));
    img_rec *recs = s2_calloc((size_t)n + 1, sizeof *recs);
    if (!recs) return SAM2C_ERR_NOMEM;
    int fail_rc = SAM2C_OK, done = 0;
    char fail_msg[512] = "";
    int threads = wp.threads > 0 ? wp.threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (n > 1)
    for (int i = 0; i < n; i++) {
        int stop;
#pragma omp atomic read
        stop = fail_rc;
        if (stop) continue;
        int rc = write_one(dir, p, seed, i, &wp, jpg, &recs[i]);
#pragma omp critical(s2_synth_write)
        {
            if (rc < 0 && fail_rc == SAM2C_OK)
                snprintf(fail_msg, sizeof fail_msg, "%s", sam2c_last_error());
            if (rc < 0 && fail_rc == SAM2C_OK) {
#pragma omp atomic write
                fail_rc = rc;
            }
            done++;
            if (wp.progress) wp.progress(wp.user, done, n);
        }
    }
    int rc = fail_rc, objects = 0;
    for (int i = 0; i < n; i++) objects += recs[i].n;
    if (rc < 0) s2_err(rc, "%s", fail_msg); // the worker's message, on this thread
    s2_jw j;
    s2_jw_init(&j);
    if (rc == SAM2C_OK) {
        coco_json(&j, p, seed, n, &wp, jpg, recs);
        char path[4200];
        snprintf(path, sizeof path, "%s/annotations.json", dir);
        rc = j.failed ? s2_err(SAM2C_ERR_NOMEM, "synth: out of memory building %s", path)
                      : s2_write_file_atomic(path, j.buf, j.len);
    }
    s2_jw_free(&j);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) free(recs[i].rle[k]);
    free(recs);
    return rc < 0 ? rc : objects;
}
