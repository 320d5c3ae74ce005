/* Command-line tool internals: each subcommand is a function taking argc/argv after the
 * subcommand name, returning the process exit code. Only the CLI prints and exits. */
#ifndef S2_CLI_H
#define S2_CLI_H

#include "sam2c.h"
#include <stdbool.h>

int cli_info(int argc, char **argv);
int cli_convert(int argc, char **argv);
int cli_segment(int argc, char **argv);
int cli_bench_video(int argc, char **argv); /* bench_video.c: `sam2c bench --track-frames N` */

/* Prints "sam2c <cmd>: <message>" to stderr and returns exit code 1 (or 2 for usage). */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_fail_lib(const char *cmd); /* uses sam2c_last_error() */
/* Loads a model from -m/--config arguments (config may be NULL). */
int cli_load_model(const char *cmd, const char *path, const char *config, sam2c_model **out);
/* Parses an int or float argument strictly. */
bool cli_parse_int(const char *s, long *out);
bool cli_parse_floats(const char *s, double *out, int min_n, int max_n, int *n);

#endif
