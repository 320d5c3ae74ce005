/* `sam2c serve`: the operator panel and its JSON API over HTTP (libmicrohttpd), with the
 * annotation project kept in SQLite. One read-only model shared by every request, one
 * image session per image (bounded LRU), one thread per connection.
 * Available when built with SAM2C_HAVE_SERVER (libmicrohttpd + SQLite found); otherwise
 * s2_server_start returns SAM2C_ERR_UNSUPPORTED. */
#ifndef S2_SERVER_H
#define S2_SERVER_H

#include "sam2c.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct s2_server s2_server;

/* Receives one line per request ("GET /api/images 200 1.2 ms") and server notices. */
typedef void (*s2_server_log_fn)(void *user, const char *line);

typedef struct s2_server_params {
    const char *host;          /* numeric IPv4/IPv6 address to bind; default "127.0.0.1" */
    const char *token;         /* when set, every request but the panel's own files must send
                                * "Authorization: Bearer TOKEN" (8..256 visible ASCII bytes);
                                * required when host is not a loopback address */
    int port;                  /* default 8080; 0 = any free port (see s2_server_port) */
    const char *project_dir;   /* required: the project folder (created if missing) */
    int max_sessions;          /* encoded images kept in memory; default 4 */
    size_t max_image_bytes;    /* image upload body limit; default 64 MiB */
    size_t max_video_bytes;    /* video file upload limit (streamed to disk); default 2 GiB */
    size_t max_json_bytes;     /* JSON body limit; default 8 MiB */
    int max_json_depth;        /* default 32 */
    int max_points;            /* points per prediction; default 64 */
    int64_t max_pixels;        /* images larger than this are refused; default 50,000,000 */
    int timeout_s;             /* idle connection timeout; default 30 */
    int max_connections;       /* default 64 */
    s2_server_log_fn log;      /* may be NULL */
    void *log_user;
} s2_server_params;
void s2_server_default_params(s2_server_params *p);

/* True for 127.0.0.0/8 and ::1 (the addresses that need no token). */
bool s2_server_host_is_loopback(const char *host);

/* Opens the project, starts listening and returns at once (requests are served on the
 * server's own threads). The model must outlive the server. Caller stops with
 * s2_server_stop. */
int s2_server_start(const sam2c_model *m, const s2_server_params *p, s2_server **out);
/* The port actually bound (useful with port 0). */
int s2_server_port(const s2_server *sv);
/* Finishes requests in flight, stops the threads, closes the project. NULL is a no-op. */
void s2_server_stop(s2_server *sv);

#endif
