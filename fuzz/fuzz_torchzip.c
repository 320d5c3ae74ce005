/* libFuzzer target: a PyTorch checkpoint as a whole (zip + restricted pickle + storages,
 * strided views gathered, deflated storages inflated). */
#include "fuzz_tensorfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    s2_tensorfile *f = NULL;
    if (s2_torchzip_parse(data, size, "fuzz.pt", &f) != 0) {
        FZ_ASSERT(f == NULL);
        return 0;
    }
    fz_check_tensorfile(f);
    s2_tensorfile_free(f);
    return 0;
}
