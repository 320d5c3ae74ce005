/* SQLite project store: images (blobs), objects (RLE + label + prompt), audit events.
 * Each action is one transaction committed with synchronous=FULL in WAL mode, so an
 * action the server answered survives a SIGKILL (and a power cut) of the server. */
#include "server/store.h"
#include "core/s2.h"

#ifdef SAM2C_HAVE_SERVER
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct s2_store {
    sqlite3 *db;
    pthread_mutex_t mu;  /* one action at a time on the connection */
    int lock_fd;         /* flock'd DIR/project.lock */
    char path[4096];     /* database path, for messages */
};

static const char *k_schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema', '1');"
    "CREATE TABLE IF NOT EXISTS images("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, mime TEXT NOT NULL,"
    " width INTEGER NOT NULL, height INTEGER NOT NULL, bytes INTEGER NOT NULL,"
    " created REAL NOT NULL);"
    "CREATE TABLE IF NOT EXISTS image_data("
    " image_id INTEGER PRIMARY KEY REFERENCES images(id), data BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS objects("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, image_id INTEGER NOT NULL REFERENCES images(id),"
    " label TEXT NOT NULL, counts TEXT NOT NULL, height INTEGER NOT NULL,"
    " width INTEGER NOT NULL, area INTEGER NOT NULL, bx REAL NOT NULL, by REAL NOT NULL,"
    " bw REAL NOT NULL, bh REAL NOT NULL, iou_pred REAL, prompt TEXT,"
    " rejected INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, updated REAL NOT NULL);"
    "CREATE INDEX IF NOT EXISTS objects_image ON objects(image_id);"
    "CREATE TABLE IF NOT EXISTS videos("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, created REAL NOT NULL);"
    "CREATE TABLE IF NOT EXISTS video_frames("
    " video_id INTEGER NOT NULL REFERENCES videos(id), idx INTEGER NOT NULL,"
    " image_id INTEGER NOT NULL REFERENCES images(id), PRIMARY KEY(video_id, idx));"
    "CREATE TABLE IF NOT EXISTS events("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, t REAL NOT NULL, action TEXT NOT NULL,"
    " image_id INTEGER, object_id INTEGER, detail TEXT);";

/* Wall-clock seconds for the records people read. */
static double now_unix(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The SQLite message as our error, naming the database. */
static int db_err(s2_store *st, const char *what) {
    return s2_err(SAM2C_ERR_IO, "%s: %s: %s", st->path, what, sqlite3_errmsg(st->db));
}

static int finish(s2_store *st, int rc);

/* Runs SQL without results. */
static int exec(s2_store *st, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) == SQLITE_OK) return SAM2C_OK;
    int rc = s2_err(SAM2C_ERR_IO, "%s: %s", st->path, msg ? msg : "sqlite error");
    sqlite3_free(msg);
    return rc;
}

static int prepare(s2_store *st, const char *sql, sqlite3_stmt **q) {
    if (sqlite3_prepare_v2(st->db, sql, -1, q, NULL) != SQLITE_OK) return db_err(st, "prepare");
    return SAM2C_OK;
}

/* Takes the project lock so that two servers never write one project. */
static int take_lock(s2_store *st, const char *dir) {
    char p[4200];
    snprintf(p, sizeof p, "%s/project.lock", dir);
    st->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (st->lock_fd < 0) return s2_err(SAM2C_ERR_IO, "%s: %s", p, strerror(errno));
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return s2_err(SAM2C_ERR_STATE, "%s: project is in use by another server", dir);
    return SAM2C_OK;
}

/* mkdir -p for the project folder. */
static int make_dirs(const char *dir) {
    char buf[4096];
    if (!dir || !*dir || strlen(dir) >= sizeof buf) return s2_err(SAM2C_ERR_ARG, "bad project folder");
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

int s2_store_open(const char *dir, s2_store **out) {
    *out = NULL;
    S2_CHECK(make_dirs(dir));
    s2_store *st = s2_calloc(1, sizeof *st);
    if (!st) return SAM2C_ERR_NOMEM;
    st->lock_fd = -1;
    pthread_mutex_init(&st->mu, NULL);
    snprintf(st->path, sizeof st->path, "%s/project.db", dir);
    int rc = take_lock(st, dir);
    if (rc == SAM2C_OK &&
        sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK)
        rc = s2_err(SAM2C_ERR_IO, "%s: cannot open database: %s", st->path,
                    st->db ? sqlite3_errmsg(st->db) : "out of memory");
    if (rc == SAM2C_OK) sqlite3_busy_timeout(st->db, 5000);
    if (rc == SAM2C_OK) rc = exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
    if (rc == SAM2C_OK) rc = exec(st, "BEGIN IMMEDIATE;");
    if (rc == SAM2C_OK) {
        rc = exec(st, k_schema);
        rc = finish(st, rc);
    }
    if (rc < 0) {
        s2_store_close(st);
        return rc;
    }
    *out = st;
    return SAM2C_OK;
}

void s2_store_close(s2_store *st) {
    if (!st) return;
    if (st->db) sqlite3_close(st->db);
    if (st->lock_fd >= 0) close(st->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* Appends one audit record inside the caller's transaction. */
static int log_event(s2_store *st, const char *action, int64_t image_id, int64_t object_id,
                     const char *detail) {
    sqlite3_stmt *q;
    S2_CHECK(prepare(st, "INSERT INTO events(t, action, image_id, object_id, detail) VALUES(?,?,?,?,?)", &q));
    sqlite3_bind_double(q, 1, now_unix());
    sqlite3_bind_text(q, 2, action, -1, SQLITE_STATIC);
    if (image_id > 0) sqlite3_bind_int64(q, 3, image_id);
    if (object_id > 0) sqlite3_bind_int64(q, 4, object_id);
    if (detail) sqlite3_bind_text(q, 5, detail, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q) == SQLITE_DONE ? SAM2C_OK : db_err(st, "log");
    sqlite3_finalize(q);
    return rc;
}

/* Ends the action's transaction: COMMIT when rc is OK, else ROLLBACK (keeping rc). */
static int finish(s2_store *st, int rc) {
    if (rc == SAM2C_OK) {
        if (sqlite3_exec(st->db, "COMMIT;", NULL, NULL, NULL) == SQLITE_OK) return SAM2C_OK;
        rc = db_err(st, "commit");
    }
    sqlite3_exec(st->db, "ROLLBACK;", NULL, NULL, NULL);
    return rc;
}

/* Inserts the image row and its bytes. */
static int insert_image(s2_store *st, const char *name, const char *mime, int w, int h,
                        const uint8_t *data, size_t len, int64_t *id) {
    sqlite3_stmt *q;
    S2_CHECK(prepare(st, "INSERT INTO images(name, mime, width, height, bytes, created) VALUES(?,?,?,?,?,?)", &q));
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, mime, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 3, w);
    sqlite3_bind_int(q, 4, h);
    sqlite3_bind_int64(q, 5, (int64_t)len);
    sqlite3_bind_double(q, 6, now_unix());
    int rc = sqlite3_step(q) == SQLITE_DONE ? SAM2C_OK : db_err(st, "insert image");
    sqlite3_finalize(q);
    if (rc < 0) return rc;
    *id = sqlite3_last_insert_rowid(st->db);
    S2_CHECK(prepare(st, "INSERT INTO image_data(image_id, data) VALUES(?,?)", &q));
    sqlite3_bind_int64(q, 1, *id);
    sqlite3_bind_blob64(q, 2, data, len, SQLITE_STATIC);
    rc = sqlite3_step(q) == SQLITE_DONE ? SAM2C_OK : db_err(st, "insert image data");
    sqlite3_finalize(q);
    return rc;
}

int s2_store_add_image(s2_store *st, const char *name, const char *mime, int w, int h,
                       const uint8_t *data, size_t len, int64_t *id) {
    pthread_mutex_lock(&st->mu);
    int rc = exec(st, "BEGIN IMMEDIATE;");
    if (rc == SAM2C_OK) {
        rc = insert_image(st, name, mime, w, h, data, len, id);
        if (rc == SAM2C_OK) rc = log_event(st, "add_image", *id, 0, name);
        rc = finish(st, rc);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* Copies the image columns of a row (id, name, mime, width, height, bytes, created, n). */
static void read_image_row(sqlite3_stmt *q, s2_store_image *im) {
    memset(im, 0, sizeof *im);
    im->id = sqlite3_column_int64(q, 0);
    const char *name = (const char *)sqlite3_column_text(q, 1), *mime = (const char *)sqlite3_column_text(q, 2);
    snprintf(im->name, sizeof im->name, "%s", name ? name : "");
    snprintf(im->mime, sizeof im->mime, "%s", mime ? mime : "");
    im->w = sqlite3_column_int(q, 3);
    im->h = sqlite3_column_int(q, 4);
    im->bytes = sqlite3_column_int64(q, 5);
    im->created = sqlite3_column_double(q, 6);
    im->n_objects = sqlite3_column_int(q, 7);
}

#define IMAGE_COLS                                                                       \
    "SELECT i.id, i.name, i.mime, i.width, i.height, i.bytes, i.created,"                \
    " (SELECT COUNT(*) FROM objects o WHERE o.image_id = i.id AND o.rejected = 0) FROM images i"

/* Reads the bytes of an image into a new buffer. */
static int read_image_data(s2_store *st, int64_t id, uint8_t **data, size_t *len) {
    sqlite3_stmt *q;
    S2_CHECK(prepare(st, "SELECT data FROM image_data WHERE image_id = ?", &q));
    sqlite3_bind_int64(q, 1, id);
    int rc = SAM2C_OK;
    if (sqlite3_step(q) != SQLITE_ROW) rc = s2_err(SAM2C_ERR_MISSING, "no data for image %lld", (long long)id);
    else {
        size_t n = (size_t)sqlite3_column_bytes(q, 0);
        *data = s2_malloc(n ? n : 1);
        if (!*data) rc = SAM2C_ERR_NOMEM;
        else {
            if (n) memcpy(*data, sqlite3_column_blob(q, 0), n);
            *len = n;
        }
    }
    sqlite3_finalize(q);
    return rc;
}

int s2_store_get_image(s2_store *st, int64_t id, s2_store_image *info, uint8_t **data, size_t *len) {
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *q;
    int rc = prepare(st, IMAGE_COLS " WHERE i.id = ?", &q);
    if (rc == SAM2C_OK) {
        sqlite3_bind_int64(q, 1, id);
        int r = sqlite3_step(q);
        if (r == SQLITE_ROW) {
            if (info) read_image_row(q, info);
        } else rc = r == SQLITE_DONE ? s2_err(SAM2C_ERR_MISSING, "no image %lld", (long long)id)
                                     : db_err(st, "get image");
        sqlite3_finalize(q);
    }
    if (rc == SAM2C_OK && data) rc = read_image_data(st, id, data, len);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int s2_store_list_images(s2_store *st, s2_store_image **out, int *n) {
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *q = NULL;
    int rc = prepare(st, IMAGE_COLS " ORDER BY i.id", &q), cap = 0, r = SQLITE_DONE;
    while (rc == SAM2C_OK && (r = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            s2_store_image *g = s2_realloc(*out, (size_t)cap * sizeof **out);
            if (!g) { rc = SAM2C_ERR_NOMEM; break; }
            *out = g;
        }
        read_image_row(q, &(*out)[(*n)++]);
    }
    if (rc == SAM2C_OK && r != SQLITE_DONE) rc = db_err(st, "list images");
    if (q) sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    if (rc < 0) { free(*out); *out = NULL; *n = 0; }
    return rc;
}

/* Binds an object's columns 1..12 (image_id .. prompt) for INSERT. */
static void bind_object(sqlite3_stmt *q, const s2_store_object *o) {
    sqlite3_bind_int64(q, 1, o->image_id);
    sqlite3_bind_text(q, 2, o->label, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, o->counts, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 4, o->h);
    sqlite3_bind_int(q, 5, o->w);
    sqlite3_bind_int64(q, 6, o->area);
    for (int i = 0; i < 4; i++) sqlite3_bind_double(q, 7 + i, o->bbox[i]);
    if (isfinite(o->iou_pred)) sqlite3_bind_double(q, 11, o->iou_pred);
    if (o->prompt) sqlite3_bind_text(q, 12, o->prompt, -1, SQLITE_STATIC);
}

/* Inserts one object and its audit record (inside the caller's transaction). */
static int insert_object(s2_store *st, const s2_store_object *o, int64_t *id) {
    sqlite3_stmt *q;
    S2_CHECK(prepare(st,
                     "INSERT INTO objects(image_id, label, counts, height, width, area, bx, by, bw, bh,"
                     " iou_pred, prompt, rejected, created, updated) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,0,?,?)",
                     &q));
    double t = now_unix();
    bind_object(q, o);
    sqlite3_bind_double(q, 13, t);
    sqlite3_bind_double(q, 14, t);
    int rc = sqlite3_step(q) == SQLITE_DONE ? SAM2C_OK : db_err(st, "insert object");
    sqlite3_finalize(q);
    if (rc < 0) return rc;
    *id = sqlite3_last_insert_rowid(st->db);
    return log_event(st, "accept", o->image_id, *id, o->label);
}

int s2_store_add_objects(s2_store *st, const s2_store_object *o, int n, int64_t *ids) {
    pthread_mutex_lock(&st->mu);
    int rc = exec(st, "BEGIN IMMEDIATE;");
    if (rc == SAM2C_OK) {
        for (int i = 0; i < n && rc == SAM2C_OK; i++) rc = insert_object(st, &o[i], &ids[i]);
        rc = finish(st, rc);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int s2_store_add_object(s2_store *st, const s2_store_object *o, int64_t *id) {
    return s2_store_add_objects(st, o, 1, id);
}

#define OBJECT_COLS                                                                          \
    "SELECT id, image_id, label, counts, height, width, area, bx, by, bw, bh, iou_pred, prompt," \
    " rejected, created, updated FROM objects"

/* Text column as an owned string (NULL for SQL NULL); *fail set on OOM. */
static char *col_str(sqlite3_stmt *q, int c, bool *fail) {
    const char *s = (const char *)sqlite3_column_text(q, c);
    if (!s) return NULL;
    char *d = s2_strdup(s);
    if (!d) *fail = true;
    return d;
}

/* Fills *o from a row of OBJECT_COLS. */
static int read_object_row(sqlite3_stmt *q, s2_store_object *o) {
    bool fail = false;
    memset(o, 0, sizeof *o);
    o->id = sqlite3_column_int64(q, 0);
    o->image_id = sqlite3_column_int64(q, 1);
    o->label = col_str(q, 2, &fail);
    o->counts = col_str(q, 3, &fail);
    o->h = sqlite3_column_int(q, 4);
    o->w = sqlite3_column_int(q, 5);
    o->area = sqlite3_column_int64(q, 6);
    for (int i = 0; i < 4; i++) o->bbox[i] = sqlite3_column_double(q, 7 + i);
    o->iou_pred = sqlite3_column_type(q, 11) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 11);
    o->prompt = col_str(q, 12, &fail);
    o->rejected = sqlite3_column_int(q, 13) != 0;
    o->created = sqlite3_column_double(q, 14);
    o->updated = sqlite3_column_double(q, 15);
    if (fail || !o->label || !o->counts) {
        s2_store_object_clear(o);
        return fail ? SAM2C_ERR_NOMEM : s2_err(SAM2C_ERR_FORMAT, "object %lld: missing label or mask", (long long)o->id);
    }
    return SAM2C_OK;
}

int s2_store_get_object(s2_store *st, int64_t id, s2_store_object *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *q;
    int rc = prepare(st, OBJECT_COLS " WHERE id = ?", &q);
    if (rc == SAM2C_OK) {
        sqlite3_bind_int64(q, 1, id);
        int r = sqlite3_step(q);
        if (r == SQLITE_ROW) rc = read_object_row(q, out);
        else rc = r == SQLITE_DONE ? s2_err(SAM2C_ERR_MISSING, "no object %lld", (long long)id)
                                   : db_err(st, "get object");
        sqlite3_finalize(q);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int s2_store_list_objects(s2_store *st, int64_t image_id, bool with_rejected, s2_store_object **out,
                          int *n) {
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *q = NULL;
    int rc = prepare(st, OBJECT_COLS " WHERE (?1 = 0 OR image_id = ?1) AND (?2 OR rejected = 0) ORDER BY id", &q);
    int cap = 0, r = SQLITE_DONE;
    if (rc == SAM2C_OK) {
        sqlite3_bind_int64(q, 1, image_id);
        sqlite3_bind_int(q, 2, with_rejected ? 1 : 0);
    }
    while (rc == SAM2C_OK && (r = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            s2_store_object *g = s2_realloc(*out, (size_t)cap * sizeof **out);
            if (!g) { rc = SAM2C_ERR_NOMEM; break; }
            *out = g;
        }
        rc = read_object_row(q, &(*out)[*n]);
        if (rc == SAM2C_OK) (*n)++;
    }
    if (rc == SAM2C_OK && r != SQLITE_DONE) rc = db_err(st, "list objects");
    if (q) sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    if (rc < 0) {
        s2_store_objects_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int s2_store_update_object(s2_store *st, int64_t id, const char *label, int rejected) {
    pthread_mutex_lock(&st->mu);
    int rc = exec(st, "BEGIN IMMEDIATE;");
    if (rc == SAM2C_OK) {
        sqlite3_stmt *q;
        rc = prepare(st,
                     "UPDATE objects SET label = COALESCE(?1, label),"
                     " rejected = CASE WHEN ?2 < 0 THEN rejected ELSE ?2 END, updated = ?3 WHERE id = ?4",
                     &q);
        if (rc == SAM2C_OK) {
            if (label) sqlite3_bind_text(q, 1, label, -1, SQLITE_STATIC);
            sqlite3_bind_int(q, 2, rejected < 0 ? -1 : rejected != 0);
            sqlite3_bind_double(q, 3, now_unix());
            sqlite3_bind_int64(q, 4, id);
            rc = sqlite3_step(q) == SQLITE_DONE ? SAM2C_OK : db_err(st, "update object");
            sqlite3_finalize(q);
        }
        if (rc == SAM2C_OK && sqlite3_changes(st->db) == 0)
            rc = s2_err(SAM2C_ERR_MISSING, "no object %lld", (long long)id);
        if (rc == SAM2C_OK && label) rc = log_event(st, "relabel", 0, id, label);
        if (rc == SAM2C_OK && rejected >= 0) rc = log_event(st, rejected ? "reject" : "restore", 0, id, NULL);
        rc = finish(st, rc);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void s2_store_object_clear(s2_store_object *o) {
    if (!o) return;
    free(o->label);
    free(o->counts);
    free(o->prompt);
    o->label = o->counts = o->prompt = NULL;
}

void s2_store_objects_free(s2_store_object *o, int n) {
    if (!o) return;
    for (int i = 0; i < n; i++) s2_store_object_clear(&o[i]);
    free(o);
}

/* ---- videos ---- */

/* Inserts the video row and its frame list. */
static int insert_video(s2_store *st, const char *name, const int64_t *frames, int n, int64_t *id) {
    sqlite3_stmt *q;
    S2_CHECK(prepare(st, "INSERT INTO videos(name, created) VALUES(?, ?)", &q));
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_double(q, 2, now_unix());
    int rc = sqlite3_step(q) == SQLITE_DONE ? SAM2C_OK : db_err(st, "insert video");
    sqlite3_finalize(q);
    if (rc < 0) return rc;
    *id = sqlite3_last_insert_rowid(st->db);
    S2_CHECK(prepare(st, "INSERT INTO video_frames(video_id, idx, image_id) VALUES(?, ?, ?)", &q));
    for (int i = 0; i < n && rc == SAM2C_OK; i++) {
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, *id);
        sqlite3_bind_int(q, 2, i);
        sqlite3_bind_int64(q, 3, frames[i]);
        if (sqlite3_step(q) != SQLITE_DONE) rc = db_err(st, "insert video frame");
    }
    sqlite3_finalize(q);
    return rc;
}

int s2_store_add_video(s2_store *st, const char *name, const int64_t *frames, int n, int64_t *id) {
    pthread_mutex_lock(&st->mu);
    int rc = exec(st, "BEGIN IMMEDIATE;");
    if (rc == SAM2C_OK) {
        rc = insert_video(st, name, frames, n, id);
        if (rc == SAM2C_OK) rc = log_event(st, "add_video", 0, 0, name);
        rc = finish(st, rc);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

#define VIDEO_COLS \
    "SELECT v.id, v.name, v.created, (SELECT COUNT(*) FROM video_frames f WHERE f.video_id = v.id) FROM videos v"

static void read_video_row(sqlite3_stmt *q, s2_store_video *v) {
    memset(v, 0, sizeof *v);
    v->id = sqlite3_column_int64(q, 0);
    const char *name = (const char *)sqlite3_column_text(q, 1);
    snprintf(v->name, sizeof v->name, "%s", name ? name : "");
    v->created = sqlite3_column_double(q, 2);
    v->n_frames = sqlite3_column_int(q, 3);
}

/* The frame image ids of a video in order. */
static int read_frames(s2_store *st, int64_t id, int n, int64_t **frames) {
    sqlite3_stmt *q;
    S2_CHECK(prepare(st, "SELECT image_id FROM video_frames WHERE video_id = ? ORDER BY idx", &q));
    sqlite3_bind_int64(q, 1, id);
    *frames = s2_malloc((size_t)S2_MAX(n, 1) * sizeof **frames);
    int rc = *frames ? SAM2C_OK : SAM2C_ERR_NOMEM, k = 0;
    while (rc == SAM2C_OK && k < n && sqlite3_step(q) == SQLITE_ROW) (*frames)[k++] = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (rc == SAM2C_OK && k != n) rc = s2_err(SAM2C_ERR_FORMAT, "video %lld: frame list changed", (long long)id);
    if (rc < 0) { free(*frames); *frames = NULL; }
    return rc;
}

int s2_store_get_video(s2_store *st, int64_t id, s2_store_video *info, int64_t **frames) {
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *q;
    int rc = prepare(st, VIDEO_COLS " WHERE v.id = ?", &q);
    if (rc == SAM2C_OK) {
        sqlite3_bind_int64(q, 1, id);
        int r = sqlite3_step(q);
        if (r == SQLITE_ROW) read_video_row(q, info);
        else rc = r == SQLITE_DONE ? s2_err(SAM2C_ERR_MISSING, "no video %lld", (long long)id) : db_err(st, "get video");
        sqlite3_finalize(q);
    }
    if (rc == SAM2C_OK && frames) rc = read_frames(st, id, info->n_frames, frames);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int s2_store_list_videos(s2_store *st, s2_store_video **out, int *n) {
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *q = NULL;
    int rc = prepare(st, VIDEO_COLS " ORDER BY v.id", &q), cap = 0, r = SQLITE_DONE;
    while (rc == SAM2C_OK && (r = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            s2_store_video *g = s2_realloc(*out, (size_t)cap * sizeof **out);
            if (!g) { rc = SAM2C_ERR_NOMEM; break; }
            *out = g;
        }
        read_video_row(q, &(*out)[(*n)++]);
    }
    if (rc == SAM2C_OK && r != SQLITE_DONE) rc = db_err(st, "list videos");
    if (q) sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    if (rc < 0) { free(*out); *out = NULL; *n = 0; }
    return rc;
}

#else /* !SAM2C_HAVE_SERVER */

int s2_store_open(const char *dir, s2_store **out) {
    *out = NULL;
    return s2_err(SAM2C_ERR_UNSUPPORTED, "%s: built without SQLite (server support off)", dir);
}
void s2_store_close(s2_store *st) { (void)st; }

#endif
