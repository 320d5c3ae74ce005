/* Video files through FFmpeg (libavformat / libavcodec / libswscale): a reader that
 * decodes any stream FFmpeg knows into full-size 8-bit RGB frames, and a writer that
 * encodes RGB frames into a file (overlay videos, test clips).
 *
 * Decoded frames are converted to RGB24 at their own size with swscale's accurate
 * paths (SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_BITEXACT, the stream's colour
 * matrix and range; BT.601 when unspecified); resizing to the model input is the
 * caller's (the video predictor's PIL-bicubic path, as for JPEG frames).
 *
 * Built without FFmpeg (SAM2C_HAVE_FFMPEG undefined), every call fails with
 * SAM2C_ERR_UNSUPPORTED. FFmpeg's own log output is silenced while its level is the
 * default (the library never prints). */
#ifndef S2_IO_VIDEO_DECODE_H
#define S2_IO_VIDEO_DECODE_H

#include <stdbool.h>
#include <stdint.h>

/* True when sam2c was built with FFmpeg. */
bool s2_vdec_available(void);

typedef struct s2_vreader s2_vreader;

/* Opens a video file and its best video stream ("pipe:0" reads stdin, where a sequence
 * of images is a stream too). A file that is not a video (unknown format, no video
 * stream, a still image, no decoder) fails with SAM2C_ERR_FORMAT and one message naming
 * the file. Frames above the pixel limit (core/limits.h) fail with
 * SAM2C_ERR_LIMIT. Caller frees with s2_vreader_free. */
int s2_vreader_open(const char *path, s2_vreader **out);
void s2_vreader_free(s2_vreader *r);
/* Frame size and rate (0 when unknown) of the stream. */
void s2_vreader_info(const s2_vreader *r, int *w, int *h, double *fps);

/* Decodes the next frame: 1 and *rgb = (h, w, 3) RGB, borrowed until the next call;
 * 0 at the end of the stream. A frame that cannot be decoded fails with
 * SAM2C_ERR_FORMAT ("clip.mp4: frame 17: ...") and *index gets its position; the
 * reader stays usable, so a caller may skip it and go on. A frame of another size
 * than the first fails with SAM2C_ERR_SHAPE. index (may be NULL): the frame's position
 * in the stream (frames decoded + frames skipped before it). */
int s2_vreader_next(s2_vreader *r, const uint8_t **rgb, int *index);

/* Timestamp (the stream's time base; INT64_MIN when unknown) of the frame that
 * s2_vreader_next returned last, and whether it is a key frame (decodable alone). */
void s2_vreader_last(const s2_vreader *r, int64_t *pts, bool *key);
/* Jumps to the key frame with timestamp pts, at stream position `index` (as a
 * sequential read found them): 1 and *rgb = that frame (borrowed as with next); the
 * next s2_vreader_next continues after it. SAM2C_ERR_UNSUPPORTED when the file does not
 * land exactly there (not seekable, a pipe, timestamps that do not match): the caller
 * re-opens the file and reads forward instead. */
int s2_vreader_seek_key(s2_vreader *r, int64_t pts, int index, const uint8_t **rgb);

/* Timestamp (the stream's time base; INT64_MIN when unknown) of the frame that
 * s2_vreader_next returned last, and whether it is a key frame (decodable alone). */
void s2_vreader_last(const s2_vreader *r, int64_t *pts, bool *key);
/* Jumps to the key frame with timestamp pts, at stream position `index` (as a
 * sequential read found them): 1 and *rgb = that frame (borrowed as with next); the
 * next s2_vreader_next continues after it. SAM2C_ERR_UNSUPPORTED when the file does not
 * land exactly there (not seekable, a pipe, timestamps that do not match): the caller
 * re-opens the file and reads forward instead. */
int s2_vreader_seek_key(s2_vreader *r, int64_t pts, int index, const uint8_t **rgb);

typedef struct s2_vwriter s2_vwriter;

/* Creates a video file (container from the extension: .mp4, .mkv, .avi, ...).
 * codec: FFmpeg encoder name ("libx264", "mpeg4", "ffv1", "png", ...) or NULL for
 * libx264 (else mpeg4) in .mp4 and ffv1 elsewhere; pix_fmt: FFmpeg pixel format name
 * or NULL for the encoder's RGB format when it has one (lossless), else yuv420p
 * (yuv444p for odd sizes). YUV output is BT.601 limited range, marked as such. The
 * file appears complete at s2_vwriter_finish (written under a temporary name, then
 * renamed). Caller frees with s2_vwriter_free. */
int s2_vwriter_open(const char *path, const char *codec, const char *pix_fmt, int w, int h,
                    int fps, s2_vwriter **out);
/* Encodes one (h, w, 3) RGB frame (never retained). */
int s2_vwriter_add(s2_vwriter *wr, const uint8_t *rgb);
/* Flushes the encoder, writes the trailer and moves the file into place. */
int s2_vwriter_finish(s2_vwriter *wr);
/* Frees; an unfinished file is removed. NULL is a no-op. */
void s2_vwriter_free(s2_vwriter *wr);

#endif
