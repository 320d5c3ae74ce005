/* Collects tensors from the library's dump hook and writes them as one safetensors file
 * under the fixture names (for `--dump`). */
#ifndef S2_CLI_DUMP_H
#define S2_CLI_DUMP_H

#include <stdint.h>

typedef struct cli_dump cli_dump;
cli_dump *cli_dump_new(void);
/* s2_dump_fn-compatible: copies the tensor (a later dump of the same name replaces it). */
void cli_dump_add(void *user, const char *name, const float *data, int ndim, const int64_t *shape);
int cli_dump_write(cli_dump *d, const char *path);
void cli_dump_free(cli_dump *d);

#endif
