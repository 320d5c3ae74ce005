/* The annotation project on disk: one SQLite database (WAL mode, synchronous=FULL, one
 * transaction per action) under the project folder, holding the uploaded images (as
 * blobs), the accepted objects (COCO RLE + label + the prompt that made them) and an
 * audit log of every action. A lock file keeps a second server off the same project.
 * Every call is thread-safe (one connection behind a mutex). */
#ifndef S2_SERVER_STORE_H
#define S2_SERVER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct s2_store s2_store;

typedef struct s2_store_image {
    int64_t id;
    char name[256];     /* file name given at upload (sanitised) */
    char mime[32];      /* "image/jpeg" or "image/png" */
    int w, h;           /* upright size (EXIF orientation applied) */
    int64_t bytes;      /* size of the stored file */
    int n_objects;      /* accepted objects */
    double created;     /* unix seconds */
} s2_store_image;

typedef struct s2_store_object {
    int64_t id, image_id;
    char *label;        /* owned */
    char *counts;       /* COCO compressed RLE string, owned */
    int h, w;
    int64_t area;
    double bbox[4];     /* COCO x, y, w, h */
    double iou_pred;    /* predicted IoU of the accepted mask (NaN when not given) */
    char *prompt;       /* compact JSON of the prompt that produced it, or NULL; owned */
    bool rejected;
    double created, updated;
} s2_store_object;

/* Opens (creating if needed) DIR/project.db; DIR is created too. Fails when another
 * process holds the project. Caller frees with s2_store_close. */
int s2_store_open(const char *dir, s2_store **out);
void s2_store_close(s2_store *st);

/* Adds an image file (bytes copied); *id gets its id. */
int s2_store_add_image(s2_store *st, const char *name, const char *mime, int w, int h,
                       const uint8_t *data, size_t len, int64_t *id);
/* Image record; with data non-NULL also its bytes (caller frees *data).
 * SAM2C_ERR_MISSING when there is no such image. */
int s2_store_get_image(s2_store *st, int64_t id, s2_store_image *info, uint8_t **data,
                       size_t *len);
/* Every image in id order (caller frees *out). */
int s2_store_list_images(s2_store *st, s2_store_image **out, int *n);

/* Adds an accepted object (o->id, created, updated ignored); *id gets its id. */
int s2_store_add_object(s2_store *st, const s2_store_object *o, int64_t *id);
int s2_store_get_object(s2_store *st, int64_t id, s2_store_object *out);
/* Objects of one image (image_id > 0) or of all images (image_id == 0), in id order;
 * rejected ones only when asked. Free with s2_store_objects_free. */
int s2_store_list_objects(s2_store *st, int64_t image_id, bool with_rejected,
                          s2_store_object **out, int *n);
/* Relabels (label non-NULL) and/or sets the rejected flag (rejected >= 0). */
int s2_store_update_object(s2_store *st, int64_t id, const char *label, int rejected);
/* Adds n objects in one transaction (all or none); ids[n] get their ids. */
int s2_store_add_objects(s2_store *st, const s2_store_object *o, int n, int64_t *ids);
void s2_store_object_clear(s2_store_object *o);
void s2_store_objects_free(s2_store_object *o, int n);

/* Videos: an ordered list of uploaded images of one size (the frames). */
typedef struct s2_store_video {
    int64_t id;
    char name[256];
    int n_frames;
    double created;
} s2_store_video;
int s2_store_add_video(s2_store *st, const char *name, const int64_t *frames, int n, int64_t *id);
/* With frames non-NULL also the frame image ids in order (caller frees *frames). */
int s2_store_get_video(s2_store *st, int64_t id, s2_store_video *info, int64_t **frames);
int s2_store_list_videos(s2_store *st, s2_store_video **out, int *n);

#endif
