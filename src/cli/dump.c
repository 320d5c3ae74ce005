/* --dump: tensors kept in memory until the command finishes, then written at once. */
#include "cli/dump.h"
#include "core/s2.h"
#include "io/tensorfile.h"
#include <stdlib.h>
#include <string.h>

struct cli_dump {
    s2_st_item *items;
    int n, cap;
};

cli_dump *cli_dump_new(void) { return calloc(1, sizeof(cli_dump)); }

void cli_dump_add(void *user, const char *name, const float *data, int ndim, const int64_t *shape) {
    cli_dump *d = user;
    if (!d || !data) return;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *copy = malloc((size_t)n * sizeof(float) + 1);
    if (!copy) return;
    memcpy(copy, data, (size_t)n * sizeof(float));
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->items[i].name, name) == 0) {
            free(d->items[i].t.data);
            d->items[i].t.data = copy;
            d->items[i].t.ndim = ndim;
            memcpy(d->items[i].t.shape, shape, (size_t)ndim * sizeof(int64_t));
            return;
        }
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 32;
        s2_st_item *it = realloc(d->items, (size_t)cap * sizeof *it);
        if (!it) { free(copy); return; }
        d->items = it;
        d->cap = cap;
    }
    s2_st_item *it = &d->items[d->n++];
    memset(it, 0, sizeof *it);
    it->name = strdup(name);
    it->t.dtype = S2_F32;
    it->t.ndim = ndim;
    memcpy(it->t.shape, shape, (size_t)ndim * sizeof(int64_t));
    it->t.data = copy;
}

int cli_dump_write(cli_dump *d, const char *path) {
    return s2_safetensors_write(path, d->items, d->n, NULL, 0);
}

void cli_dump_free(cli_dump *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) {
        free((char *)d->items[i].name);
        free(d->items[i].t.data);
    }
    free(d->items);
    free(d);
}
