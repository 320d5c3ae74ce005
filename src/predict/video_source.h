/* Where the frames of a video session come from, and which of them stay in memory.
 *
 * The predictor reads frames as the model-input-sized u8 RGB (S x S x 3) that the
 * official loader makes (PIL bicubic resize of each decoded frame). A source hands them
 * out by frame index and keeps only a few in memory:
 *  - memory: frames given decoded (s2_video_set_frames); every one is resized and kept;
 *  - folder: JPEG files, one decoded on demand; a small cache of recent frames;
 *  - file:   a video file decoded in order; a frame behind the decoder (or far ahead) is
 *            reached by seeking to the key frame before it, or by re-opening the file,
 *            and decoding forward (caching the frames just before it, for reverse passes);
 *  - stream: frames pushed one at a time (camera, pipe); only the last `keep` stay, and
 *            an older one is gone for good (a live stream cannot be re-read).
 * Sources are not thread-safe (one session, one thread). */
#ifndef S2_PREDICT_VIDEO_SOURCE_H
#define S2_PREDICT_VIDEO_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum s2_vsrc_kind { S2_VSRC_MEMORY, S2_VSRC_DIR, S2_VSRC_FILE, S2_VSRC_STREAM } s2_vsrc_kind;

typedef struct s2_vsource s2_vsource;

/* n decoded frames (h, w, 3), resized at once and kept; never retains rgb. */
int s2_vsource_memory(int S, int n, const uint8_t *const *rgb, int w, int h, s2_vsource **out);
/* The frames are the files dir/files[i] (copied); `cache` frames stay decoded. */
int s2_vsource_dir(int S, const char *dir, const char *const *files, int n, int cache, s2_vsource **out);
/* Frame i is the decoder's frame at stream position pos[i] (ascending; NULL: i itself),
 * as a scan of the file found it (skipped frames have no index). pts[i] / key[i] (both
 * NULL, or timestamps ascending): its timestamp and whether it is a key frame, so that
 * a frame behind the decoder is reached by seeking to the key frame before it (else the
 * file is re-opened and decoded from the start). */
int s2_vsource_file(int S, const char *path, const int *pos, const int64_t *pts, const bool *key, int n,
                    int cache, s2_vsource **out);
/* An empty live stream keeping the last `keep` pushed frames. */
int s2_vsource_stream(int S, int keep, s2_vsource **out);
void s2_vsource_free(s2_vsource *s);

/* Appends a frame (h, w, 3) to a stream (resized at once, never retained); returns its
 * index, or an error (not a stream, bad frame). */
int s2_vsource_push(s2_vsource *s, const uint8_t *rgb, int w, int h);

/* The model-input frame idx: decoded, read from the cache or re-read from the file as
 * needed. Borrowed until the next call on the source. A stream frame older than the
 * kept ones fails with SAM2C_ERR_LIMIT ("frame 3 of a live stream is outside the memory
 * window (frames 40..55 are kept)"). */
int s2_vsource_get(s2_vsource *s, int idx, const uint8_t **rgb);
/* 0 when frame idx can be read (s2_vsource_get would succeed barring I/O), else the
 * error above (message set). */
int s2_vsource_check(const s2_vsource *s, int idx, const char *what);

s2_vsrc_kind s2_vsource_kind(const s2_vsource *s);
int s2_vsource_count(const s2_vsource *s);       /* frames known (pushed so far) */
int s2_vsource_first_kept(const s2_vsource *s);  /* oldest readable frame (0 unless a stream) */
/* Frames held decoded in memory and their bytes. */
void s2_vsource_held(const s2_vsource *s, int *frames, size_t *bytes);

#endif
