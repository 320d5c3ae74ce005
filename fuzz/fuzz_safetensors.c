/* libFuzzer target: safetensors (header length, JSON header, dtypes, shapes, offsets that
 * must tile the data area, metadata). */
#include "fuzz_tensorfile.h"
#include "io/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    s2_tensorfile *f = NULL;
    if (s2_safetensors_parse(data, size, "fuzz.safetensors", &f) != 0) {
        FZ_ASSERT(f == NULL);
        return 0;
    }
    fz_check_tensorfile(f);
    for (int i = 0; i < f->n_entries; i++) /* entries point into the data area */
        if (f->entries[i].mapped && s2_tensor_nbytes(&f->entries[i].t))
            FZ_ASSERT((const uint8_t *)f->entries[i].t.data >= data + 8 &&
                      (const uint8_t *)f->entries[i].t.data + s2_tensor_nbytes(&f->entries[i].t) <= data + size);
    if (f->metadata_json) { /* the kept metadata is valid JSON */
        s2_json *j = NULL;
        FZ_ASSERT(s2_json_parse(f->metadata_json, strlen(f->metadata_json), "meta", NULL, &j) == 0);
        s2_json_free(j);
    }
    s2_tensorfile_free(f);
    return 0;
}
