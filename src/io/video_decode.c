/* Video files through FFmpeg: decode to full-size RGB24, encode RGB frames.
 * Letters: W, H frame size. */
#include "io/video_decode.h"
#include "core/s2.h"
#include "core/limits.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SAM2C_HAVE_FFMPEG
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

/* swscale flags of every conversion: exact rounding, full-resolution chroma, and the
 * same bits on every CPU. The frame is never resized here (SWS_BICUBIC only names the
 * chroma interpolation filter, which swscale requires). */
#define S2_SWS_FLAGS (SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_BITEXACT)

bool s2_vdec_available(void) { return true; }

/* FFmpeg prints to stderr by default; the library must not. A host application that
 * chose its own level keeps it. */
static void quiet_ffmpeg(void) {
    if (av_log_get_level() == AV_LOG_INFO) av_log_set_level(AV_LOG_QUIET);
}

/* FFmpeg's error text for a status. */
static const char *av_msg(int e, char *buf, size_t n) {
    if (av_strerror(e, buf, n) < 0) snprintf(buf, n, "error %d", e);
    return buf;
}

struct s2_vreader {
    char *path;
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    struct SwsContext *sws;
    int stream;               /* index of the video stream */
    int w, h;                 /* size of the first frame (the video size) */
    double fps;
    uint8_t *rgb;             /* (H, W, 3) the last decoded frame */
    int n_out, n_bad;         /* frames returned / frames that failed */
    bool draining;            /* end of file reached, decoder flushed */
    int64_t last_pts;         /* timestamp of the last frame returned (INT64_MIN none) */
    bool last_key;            /* it was a key frame */
};

void s2_vreader_free(s2_vreader *r) {
    if (!r) return;
    sws_freeContext(r->sws);
    av_frame_free(&r->frame);
    av_packet_free(&r->pkt);
    avcodec_free_context(&r->dec);
    avformat_close_input(&r->fmt);
    free(r->rgb);
    free(r->path);
    free(r);
}

/* The demuxers FFmpeg uses for single still images (and text as "ANSI art"). */
static bool still_image_format(const AVInputFormat *f) {
    const char *n = f ? f->name : "";
    size_t len = strlen(n);
    return !strcmp(n, "image2") || !strcmp(n, "tty") || (len > 5 && !strcmp(n + len - 5, "_pipe"));
}

/* Finds the video stream and opens its decoder. */
static int open_decoder(s2_vreader *r) {
    char eb[128];
    const AVCodec *codec = NULL;
    int si = av_find_best_stream(r->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (si == AVERROR_DECODER_NOT_FOUND)
        return s2_err(SAM2C_ERR_FORMAT, "%s: no decoder for its video stream", r->path);
    if (si < 0) return s2_err(SAM2C_ERR_FORMAT, "%s: not a video file (no video stream)", r->path);
    r->stream = si;
    AVStream *st = r->fmt->streams[si];
    r->dec = avcodec_alloc_context3(codec);
    if (!r->dec) return s2_err(SAM2C_ERR_NOMEM, "%s: out of memory", r->path);
    int e = avcodec_parameters_to_context(r->dec, st->codecpar);
    if (e < 0) return s2_err(SAM2C_ERR_FORMAT, "%s: %s", r->path, av_msg(e, eb, sizeof eb));
    r->dec->err_recognition |= AV_EF_EXPLODE; // report damaged frames instead of concealing
    e = avcodec_open2(r->dec, codec, NULL);
    if (e < 0) return s2_err(SAM2C_ERR_FORMAT, "%s: cannot open the %s decoder: %s", r->path, codec->name, av_msg(e, eb, sizeof eb));
    r->w = st->codecpar->width;
    r->h = st->codecpar->height;
    if (r->w <= 0 || r->h <= 0) return s2_err(SAM2C_ERR_FORMAT, "%s: video stream without a frame size", r->path);
    S2_CHECK(s2_limit_check(NULL, S2_LIMIT_max_pixels, (int64_t)r->w * r->h, r->path));
    AVRational fr = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
    r->fps = fr.num > 0 && fr.den > 0 ? av_q2d(fr) : 0.0;
    r->rgb = s2_malloc((size_t)r->w * r->h * 3);
    r->pkt = av_packet_alloc();
    r->frame = av_frame_alloc();
    if (!r->rgb || !r->pkt || !r->frame) return s2_err(SAM2C_ERR_NOMEM, "%s: out of memory", r->path);
    return 0;
}

int s2_vreader_open(const char *path, s2_vreader **out) {
    if (!path || !out) return s2_err(SAM2C_ERR_ARG, "video: no file given");
    *out = NULL;
    quiet_ffmpeg();
    s2_vreader *r = s2_calloc(1, sizeof *r);
    if (!r || !(r->path = s2_strdup(path))) { free(r); return SAM2C_ERR_NOMEM; }
    r->last_pts = INT64_MIN;
    char eb[128];
    int e = avformat_open_input(&r->fmt, path, NULL, NULL), rc = 0;
    if (e == AVERROR(ENOENT)) rc = s2_err(SAM2C_ERR_IO, "%s: no such file", path);
    else if (e < 0) rc = s2_err(SAM2C_ERR_FORMAT, "%s: not a video file (%s)", path, av_msg(e, eb, sizeof eb));
    else if (still_image_format(r->fmt->iformat) && strncmp(path, "pipe:", 5)) // a pipe of images is a stream
        rc = s2_err(SAM2C_ERR_FORMAT, "%s: not a video file (%s); give a video or a folder of frames", path,
                    r->fmt->iformat->long_name ? r->fmt->iformat->long_name : r->fmt->iformat->name);
    else if ((e = avformat_find_stream_info(r->fmt, NULL)) < 0)
        rc = s2_err(SAM2C_ERR_FORMAT, "%s: not a video file (%s)", path, av_msg(e, eb, sizeof eb));
    else rc = open_decoder(r);
    if (rc < 0) { s2_vreader_free(r); return rc; }
    *out = r;
    return 0;
}

void s2_vreader_info(const s2_vreader *r, int *w, int *h, double *fps) {
    if (w) *w = r ? r->w : 0;
    if (h) *h = r ? r->h : 0;
    if (fps) *fps = r ? r->fps : 0.0;
}

/* Full-range twin of the deprecated "yuvj" formats (swscale warns about them). */
static enum AVPixelFormat unjpeg(enum AVPixelFormat f, bool *full) {
    switch (f) {
    case AV_PIX_FMT_YUVJ420P: *full = true; return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P: *full = true; return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P: *full = true; return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P: *full = true; return AV_PIX_FMT_YUV440P;
    default: return f;
    }
}

/* The decoded frame to RGB24 at its own size with the stream's colour matrix/range. */
static int frame_to_rgb(s2_vreader *r, int index) {
    AVFrame *f = r->frame;
    if (f->width != r->w || f->height != r->h)
        return s2_err(SAM2C_ERR_SHAPE, "%s: frame %d is %dx%d but the video is %dx%d (frames of different sizes)",
                      r->path, index, f->width, f->height, r->w, r->h);
    bool full = f->color_range == AVCOL_RANGE_JPEG;
    enum AVPixelFormat src = unjpeg((enum AVPixelFormat)f->format, &full);
    r->sws = sws_getCachedContext(r->sws, r->w, r->h, src, r->w, r->h, AV_PIX_FMT_RGB24, S2_SWS_FLAGS, NULL,
                                  NULL, NULL);
    if (!r->sws)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "%s: frame %d: cannot convert pixel format %s to RGB", r->path, index,
                      av_get_pix_fmt_name(src) ? av_get_pix_fmt_name(src) : "?");
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(src);
    if (d && !(d->flags & AV_PIX_FMT_FLAG_RGB) && d->nb_components >= 3) {
        const int *coef = sws_getCoefficients(f->colorspace); // unspecified -> BT.601
        sws_setColorspaceDetails(r->sws, coef, full, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    }
    uint8_t *dst[4] = {r->rgb, NULL, NULL, NULL};
    int stride[4] = {3 * r->w, 0, 0, 0};
    if (sws_scale(r->sws, (const uint8_t *const *)f->data, f->linesize, 0, r->h, dst, stride) != r->h)
        return s2_err(SAM2C_ERR_FORMAT, "%s: frame %d: colour conversion failed", r->path, index);
    return 0;
}

/* Feeds the decoder the next packet of the video stream (or the end-of-stream flush).
 * 0 fed, 1 nothing more to feed, < 0 a packet the decoder refused. */
static int feed(s2_vreader *r) {
    char eb[128];
    for (;;) {
        if (r->draining) return 1;
        int e = av_read_frame(r->fmt, r->pkt);
        if (e == AVERROR_EOF) {
            r->draining = true;
            avcodec_send_packet(r->dec, NULL);
            return 0;
        }
        if (e < 0) return s2_err(SAM2C_ERR_IO, "%s: read error: %s", r->path, av_msg(e, eb, sizeof eb));
        if (r->pkt->stream_index != r->stream) { av_packet_unref(r->pkt); continue; }
        e = avcodec_send_packet(r->dec, r->pkt);
        av_packet_unref(r->pkt);
        if (e < 0 && e != AVERROR(EAGAIN)) {
            int idx = r->n_out + r->n_bad++;
            return s2_err(SAM2C_ERR_FORMAT, "%s: frame %d: cannot decode (%s)", r->path, idx, av_msg(e, eb, sizeof eb));
        }
        return 0;
    }
}

/* Timestamp and key-frame flag of the decoded frame (for s2_vreader_last). */
static void note_frame(s2_vreader *r) {
    const AVFrame *f = r->frame;
    r->last_pts = f->best_effort_timestamp == AV_NOPTS_VALUE ? INT64_MIN : f->best_effort_timestamp;
#ifdef AV_FRAME_FLAG_KEY
    r->last_key = (f->flags & AV_FRAME_FLAG_KEY) != 0;
#else
    r->last_key = f->key_frame != 0;
#endif
}

void s2_vreader_last(const s2_vreader *r, int64_t *pts, bool *key) {
    if (pts) *pts = r ? r->last_pts : INT64_MIN;
    if (key) *key = r && r->last_key;
}

int s2_vreader_next(s2_vreader *r, const uint8_t **rgb, int *index) {
    if (!r || !rgb) return s2_err(SAM2C_ERR_ARG, "video: no reader");
    char eb[128];
    for (;;) {
        int idx = r->n_out + r->n_bad;
        if (index) *index = idx;
        int e = avcodec_receive_frame(r->dec, r->frame);
        if (e == 0) {
            bool bad = r->frame->decode_error_flags != 0 || (r->frame->flags & AV_FRAME_FLAG_CORRUPT);
            int rc = bad ? s2_err(SAM2C_ERR_FORMAT, "%s: frame %d: damaged (decode errors)", r->path, idx)
                         : frame_to_rgb(r, idx);
            note_frame(r);
            av_frame_unref(r->frame);
            if (rc < 0) { r->n_bad++; return rc; }
            r->n_out++;
            *rgb = r->rgb;
            return 1;
        }
        if (e == AVERROR_EOF) return 0;
        if (e != AVERROR(EAGAIN)) {
            r->n_bad++;
            return s2_err(SAM2C_ERR_FORMAT, "%s: frame %d: cannot decode (%s)", r->path, idx, av_msg(e, eb, sizeof eb));
        }
        int f = feed(r);
        if (f < 0) {
            if (index) *index = r->n_out + r->n_bad - 1;
            return f;
        }
        if (f == 1) return 0;
    }
}

/* The frame with timestamp pts after a seek: 1 found (converted), 0 not yet (an earlier
 * frame, skipped), < 0 the seek missed it. */
static int seek_landed(s2_vreader *r, int64_t pts, int index) {
    const int64_t t = r->frame->best_effort_timestamp;
    const bool bad = r->frame->decode_error_flags != 0 || (r->frame->flags & AV_FRAME_FLAG_CORRUPT);
    int rc = 0;
    if (t == AV_NOPTS_VALUE || t > pts || (t == pts && bad))
        rc = s2_err(SAM2C_ERR_UNSUPPORTED, "%s: seeking to frame %d missed it", r->path, index);
    else if (t == pts && (rc = frame_to_rgb(r, index)) == 0) rc = 1;
    if (t == pts) note_frame(r);
    av_frame_unref(r->frame);
    return rc;
}

int s2_vreader_seek_key(s2_vreader *r, int64_t pts, int index, const uint8_t **rgb) {
    if (!r || !rgb || pts == INT64_MIN || index < 0) return s2_err(SAM2C_ERR_UNSUPPORTED, "video: cannot seek");
    if (av_seek_frame(r->fmt, r->stream, pts, AVSEEK_FLAG_BACKWARD) < 0)
        return s2_err(SAM2C_ERR_UNSUPPORTED, "%s: not seekable", r->path);
    avcodec_flush_buffers(r->dec);
    r->draining = false;
    for (;;) {
        int e = avcodec_receive_frame(r->dec, r->frame), rc = 0;
        if (e == 0 && (rc = seek_landed(r, pts, index)) != 0) {
            if (rc < 0) return rc;
            r->n_out = index + 1; // positions go on from the key frame's
            r->n_bad = 0;
            *rgb = r->rgb;
            return 1;
        }
        if (e == 0) continue;
        if (e != AVERROR(EAGAIN) || feed(r) != 0)
            return s2_err(SAM2C_ERR_UNSUPPORTED, "%s: seeking to frame %d failed", r->path, index);
    }
}

/* ---------------------------------------------------------------------------- */
/* Writer                                                                       */
/* ---------------------------------------------------------------------------- */

struct s2_vwriter {
    char *path, *tmp;
    AVFormatContext *fmt;
    AVCodecContext *enc;
    AVStream *st;
    AVFrame *frame;
    AVPacket *pkt;
    struct SwsContext *sws;
    int w, h;
    int64_t pts;
    bool header, finished;
};

void s2_vwriter_free(s2_vwriter *wr) {
    if (!wr) return;
    if (wr->fmt && wr->fmt->pb) avio_closep(&wr->fmt->pb);
    if (!wr->finished && wr->tmp) remove(wr->tmp);
    sws_freeContext(wr->sws);
    av_frame_free(&wr->frame);
    av_packet_free(&wr->pkt);
    avcodec_free_context(&wr->enc);
    avformat_free_context(wr->fmt);
    free(wr->path);
    free(wr->tmp);
    free(wr);
}

/* True when the encoder accepts pixel format f. */
static bool enc_has_fmt(const AVCodec *c, enum AVPixelFormat f) {
    for (const enum AVPixelFormat *p = c->pix_fmts; p && *p != AV_PIX_FMT_NONE; p++)
        if (*p == f) return true;
    return false;
}

/* The encoder's pixel format: the one asked for, an RGB one it has, else YUV. */
static enum AVPixelFormat pick_pix_fmt(const AVCodec *c, const char *name, int w, int h) {
    if (name) return av_get_pix_fmt(name);
    const enum AVPixelFormat rgbs[] = {AV_PIX_FMT_RGB24, AV_PIX_FMT_BGR0, AV_PIX_FMT_BGR24, AV_PIX_FMT_GBRP};
    for (size_t i = 0; i < sizeof rgbs / sizeof rgbs[0]; i++)
        if (enc_has_fmt(c, rgbs[i])) return rgbs[i];
    if (((w | h) & 1) && enc_has_fmt(c, AV_PIX_FMT_YUV444P)) return AV_PIX_FMT_YUV444P;
    return enc_has_fmt(c, AV_PIX_FMT_YUV420P) || !c->pix_fmts ? AV_PIX_FMT_YUV420P : c->pix_fmts[0];
}

/* The encoder for a container when none is named. */
static const AVCodec *default_encoder(const AVOutputFormat *of) {
    const AVCodec *c = NULL;
    if (of && !strcmp(of->name, "mp4")) {
        c = avcodec_find_encoder_by_name("libx264");
        if (!c) c = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
    } else {
        c = avcodec_find_encoder(AV_CODEC_ID_FFV1);
    }
    return c;
}

/* Encoder context: size, rate, pixel format, BT.601 limited-range tags for YUV. */
static int setup_encoder(s2_vwriter *wr, const AVCodec *codec, const char *pix_fmt, int fps) {
    char eb[128];
    enum AVPixelFormat pf = pick_pix_fmt(codec, pix_fmt, wr->w, wr->h);
    if (pf == AV_PIX_FMT_NONE || (codec->pix_fmts && !enc_has_fmt(codec, pf)))
        return s2_err(SAM2C_ERR_ARG, "%s: encoder %s does not take pixel format %s", wr->path, codec->name,
                      pix_fmt ? pix_fmt : "?");
    AVCodecContext *c = wr->enc = avcodec_alloc_context3(codec);
    if (!c) return s2_err(SAM2C_ERR_NOMEM, "%s: out of memory", wr->path);
    c->width = wr->w;
    c->height = wr->h;
    c->time_base = (AVRational){1, fps};
    c->framerate = (AVRational){fps, 1};
    c->pix_fmt = pf;
    c->gop_size = 12;
    c->thread_count = 1; // reproducible files
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(pf);
    bool yuv = d && !(d->flags & AV_PIX_FMT_FLAG_RGB) && d->nb_components >= 3;
    if (yuv) {
        c->color_range = AVCOL_RANGE_MPEG;
        c->colorspace = AVCOL_SPC_SMPTE170M;
        c->color_primaries = AVCOL_PRI_SMPTE170M;
        c->color_trc = AVCOL_TRC_SMPTE170M;
    }
    if (wr->fmt->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int e = avcodec_open2(c, codec, NULL);
    if (e < 0) return s2_err(SAM2C_ERR_UNSUPPORTED, "%s: cannot open the %s encoder (%dx%d %s): %s", wr->path, codec->name,
                             wr->w, wr->h, av_get_pix_fmt_name(pf), av_msg(e, eb, sizeof eb));
    wr->sws = sws_getContext(wr->w, wr->h, AV_PIX_FMT_RGB24, wr->w, wr->h, pf, S2_SWS_FLAGS, NULL, NULL, NULL);
    if (!wr->sws) return s2_err(SAM2C_ERR_UNSUPPORTED, "%s: cannot convert RGB to %s", wr->path, av_get_pix_fmt_name(pf));
    if (yuv)
        sws_setColorspaceDetails(wr->sws, sws_getCoefficients(SWS_CS_DEFAULT), 1, sws_getCoefficients(SWS_CS_ITU601), 0, 0,
                                 1 << 16, 1 << 16);
    wr->frame = av_frame_alloc();
    wr->pkt = av_packet_alloc();
    if (!wr->frame || !wr->pkt) return s2_err(SAM2C_ERR_NOMEM, "%s: out of memory", wr->path);
    wr->frame->format = pf;
    wr->frame->width = wr->w;
    wr->frame->height = wr->h;
    if (av_frame_get_buffer(wr->frame, 0) < 0) return s2_err(SAM2C_ERR_NOMEM, "%s: out of memory", wr->path);
    return 0;
}

/* Stream, temporary file, header. */
static int open_output(s2_vwriter *wr) {
    char eb[128];
    wr->st = avformat_new_stream(wr->fmt, NULL);
    if (!wr->st) return s2_err(SAM2C_ERR_NOMEM, "%s: out of memory", wr->path);
    wr->st->time_base = wr->enc->time_base;
    int e = avcodec_parameters_from_context(wr->st->codecpar, wr->enc);
    if (e < 0) return s2_err(SAM2C_ERR_FORMAT, "%s: %s", wr->path, av_msg(e, eb, sizeof eb));
    e = avio_open(&wr->fmt->pb, wr->tmp, AVIO_FLAG_WRITE);
    if (e < 0) return s2_err(SAM2C_ERR_IO, "%s: cannot create: %s", wr->tmp, av_msg(e, eb, sizeof eb));
    e = avformat_write_header(wr->fmt, NULL);
    if (e < 0) return s2_err(SAM2C_ERR_FORMAT, "%s: cannot write the header: %s", wr->path, av_msg(e, eb, sizeof eb));
    wr->header = true;
    return 0;
}

int s2_vwriter_open(const char *path, const char *codec, const char *pix_fmt, int w, int h, int fps,
                    s2_vwriter **out) {
    if (!path || !out || w <= 0 || h <= 0 || fps <= 0)
        return s2_err(SAM2C_ERR_ARG, "video writer: bad arguments (%dx%d at %d frames/s)", w, h, fps);
    *out = NULL;
    quiet_ffmpeg();
    s2_vwriter *wr = s2_calloc(1, sizeof *wr);
    if (!wr) return SAM2C_ERR_NOMEM;
    wr->w = w;
    wr->h = h;
    size_t n = strlen(path) + 8;
    wr->path = s2_strdup(path);
    wr->tmp = s2_malloc(n);
    int rc = wr->path && wr->tmp ? 0 : SAM2C_ERR_NOMEM;
    if (rc == 0) snprintf(wr->tmp, n, "%s.tmp", path);
    if (rc == 0 && (avformat_alloc_output_context2(&wr->fmt, NULL, NULL, path) < 0 || !wr->fmt))
        rc = s2_err(SAM2C_ERR_ARG, "%s: unknown video container (use .mp4, .mkv or .avi)", path);
    const AVCodec *c = NULL;
    if (rc == 0) {
        c = codec ? avcodec_find_encoder_by_name(codec) : default_encoder(wr->fmt->oformat);
        if (!c) rc = s2_err(SAM2C_ERR_UNSUPPORTED, "%s: no encoder %s in this FFmpeg", path, codec ? codec : "for this container");
    }
    if (rc == 0) rc = setup_encoder(wr, c, pix_fmt, fps);
    if (rc == 0) rc = open_output(wr);
    if (rc < 0) { s2_vwriter_free(wr); return rc; }
    *out = wr;
    return 0;
}

/* Moves every packet the encoder has ready into the file. */
static int drain(s2_vwriter *wr) {
    char eb[128];
    for (;;) {
        int e = avcodec_receive_packet(wr->enc, wr->pkt);
        if (e == AVERROR(EAGAIN) || e == AVERROR_EOF) return 0;
        if (e < 0) return s2_err(SAM2C_ERR_FORMAT, "%s: encoding failed: %s", wr->path, av_msg(e, eb, sizeof eb));
        if (wr->pkt->duration <= 0) wr->pkt->duration = 1; // one frame; else MP4 edit lists drop the last
        av_packet_rescale_ts(wr->pkt, wr->enc->time_base, wr->st->time_base);
        wr->pkt->stream_index = wr->st->index;
        e = av_interleaved_write_frame(wr->fmt, wr->pkt);
        if (e < 0) return s2_err(SAM2C_ERR_IO, "%s: write failed: %s", wr->path, av_msg(e, eb, sizeof eb));
    }
}

int s2_vwriter_add(s2_vwriter *wr, const uint8_t *rgb) {
    if (!wr || !rgb || wr->finished) return s2_err(SAM2C_ERR_ARG, "video writer: no frame or writer finished");
    char eb[128];
    if (av_frame_make_writable(wr->frame) < 0) return s2_err(SAM2C_ERR_NOMEM, "%s: out of memory", wr->path);
    const uint8_t *src[4] = {rgb, NULL, NULL, NULL};
    int stride[4] = {3 * wr->w, 0, 0, 0};
    sws_scale(wr->sws, src, stride, 0, wr->h, wr->frame->data, wr->frame->linesize);
    wr->frame->pts = wr->pts++;
    int e = avcodec_send_frame(wr->enc, wr->frame);
    if (e < 0) return s2_err(SAM2C_ERR_FORMAT, "%s: encoding failed: %s", wr->path, av_msg(e, eb, sizeof eb));
    return drain(wr);
}

int s2_vwriter_finish(s2_vwriter *wr) {
    if (!wr || wr->finished) return s2_err(SAM2C_ERR_ARG, "video writer: nothing to finish");
    char eb[128];
    avcodec_send_frame(wr->enc, NULL);
    S2_CHECK(drain(wr));
    int e = av_write_trailer(wr->fmt);
    if (e < 0) return s2_err(SAM2C_ERR_IO, "%s: cannot finish: %s", wr->path, av_msg(e, eb, sizeof eb));
    if ((e = avio_closep(&wr->fmt->pb)) < 0) return s2_err(SAM2C_ERR_IO, "%s: %s", wr->tmp, av_msg(e, eb, sizeof eb));
    if (rename(wr->tmp, wr->path) != 0) return s2_err(SAM2C_ERR_IO, "%s: cannot move into place", wr->path);
    wr->finished = true;
    return 0;
}

#else /* no FFmpeg */

bool s2_vdec_available(void) { return false; }

#define S2_NO_FFMPEG(what) s2_err(SAM2C_ERR_UNSUPPORTED, "%s: sam2c was built without FFmpeg (video files unsupported)", what)

int s2_vreader_open(const char *path, s2_vreader **out) {
    if (out) *out = NULL;
    return S2_NO_FFMPEG(path ? path : "video");
}
void s2_vreader_free(s2_vreader *r) { (void)r; }
void s2_vreader_info(const s2_vreader *r, int *w, int *h, double *fps) {
    (void)r;
    if (w) *w = 0;
    if (h) *h = 0;
    if (fps) *fps = 0.0;
}
int s2_vreader_next(s2_vreader *r, const uint8_t **rgb, int *index) {
    (void)r; (void)rgb; (void)index;
    return S2_NO_FFMPEG("video");
}
void s2_vreader_last(const s2_vreader *r, int64_t *pts, bool *key) {
    (void)r;
    if (pts) *pts = INT64_MIN;
    if (key) *key = false;
}
int s2_vreader_seek_key(s2_vreader *r, int64_t pts, int index, const uint8_t **rgb) {
    (void)r; (void)pts; (void)index; (void)rgb;
    return S2_NO_FFMPEG("video");
}
int s2_vwriter_open(const char *path, const char *codec, const char *pix_fmt, int w, int h, int fps,
                    s2_vwriter **out) {
    (void)codec; (void)pix_fmt; (void)w; (void)h; (void)fps;
    if (out) *out = NULL;
    return S2_NO_FFMPEG(path ? path : "video");
}
int s2_vwriter_add(s2_vwriter *wr, const uint8_t *rgb) { (void)wr; (void)rgb; return S2_NO_FFMPEG("video"); }
int s2_vwriter_finish(s2_vwriter *wr) { (void)wr; return S2_NO_FFMPEG("video"); }
void s2_vwriter_free(s2_vwriter *wr) { (void)wr; }

#endif
