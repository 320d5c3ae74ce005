/* libFuzzer target: the zip reader (end of central directory, ZIP64 records and extra
 * fields, central directory, local headers, inflate with CRC check). */
#include "fuzz_common.h"
#include "io/zip.h"
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    s2_zip z;
    if (s2_zip_open(&z, data, size, "fuzz.zip") != 0) return 0;
    for (int i = 0; i < z.n && i < 256; i++) {
        const s2_zip_entry *e = &z.entries[i];
        int k = s2_zip_find(&z, e->name);
        FZ_ASSERT(k >= 0 && strcmp(z.entries[k].name, e->name) == 0);
        const uint8_t *d = NULL;
        uint8_t *owned = NULL;
        if (s2_zip_read(&z, i, true, &d, &owned) == 0) fz_touch(d, (size_t)e->size);
        free(owned);
    }
    s2_zip_close(&z);
    return 0;
}
