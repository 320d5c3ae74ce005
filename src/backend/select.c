/* Backend selection by name and from the command-line options (--backend, --dtype):
 * which backend "auto" means, and the bf16 rule behind that choice; the one-line
 * description of oneDNN. */
#include "backend/dnnl.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>

#ifdef SAM2C_HAVE_DNNL
#include <dnnl.h>

const char *s2_dnnl_info(void) {
    static char buf[160];
    const dnnl_version_t *v = dnnl_version();
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    const char *in = isa == dnnl_cpu_isa_avx512_core_amx    ? "avx512_core_amx"
                     : isa == dnnl_cpu_isa_avx512_core_bf16 ? "avx512_core_bf16"
                     : isa == dnnl_cpu_isa_avx512_core_vnni ? "avx512_core_vnni"
                     : isa == dnnl_cpu_isa_avx512_core      ? "avx512_core"
                     : isa == dnnl_cpu_isa_avx2             ? "avx2" : "other";
    snprintf(buf, sizeof buf, "oneDNN %d.%d.%d (%s runtime, max ISA %s, %d threads)", v->major, v->minor,
             v->patch, v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "non-OpenMP", in,
             omp_get_max_threads());
    return buf;
}
#else
const char *s2_dnnl_info(void) { return "oneDNN: not built in"; }
#endif

const s2_backend *s2_backend_by_name(const char *name) {
    if (!name) name = "";
    if (!strcmp(name, "ref") || !strcmp(name, "reference")) return s2_backend_reference();
    if (!strcmp(name, "dnnl") || !strcmp(name, "dnnl-f32")) return s2_backend_dnnl(S2_DNNL_F32);
    if (!strcmp(name, "dnnl-bf16")) return s2_backend_dnnl(S2_DNNL_BF16);
    s2_err(SAM2C_ERR_ARG, "unknown backend '%s' (ref, dnnl, dnnl-f32, dnnl-bf16)", name);
    return NULL;
}

int s2_backend_from_args(const char *backend, const char *dtype, const s2_backend **out) {
    *out = NULL;
    bool bf = false;
    if (dtype && strcmp(dtype, "f32") && !(bf = !strcmp(dtype, "bf16")))
        return s2_err(SAM2C_ERR_ARG, "unknown dtype '%s' (f32 or bf16)", dtype);
    if (!backend || !strcmp(backend, "auto")) {
        const s2_backend *d = s2_backend_dnnl(bf ? S2_DNNL_BF16 : S2_DNNL_F32);
        if (!d && bf) return s2_err(SAM2C_ERR_UNSUPPORTED, "bf16 needs the oneDNN backend (not built in)");
        *out = d ? d : s2_backend_reference();
        return SAM2C_OK;
    }
    if (!strcmp(backend, "ref") || !strcmp(backend, "reference")) {
        if (bf) return s2_err(SAM2C_ERR_UNSUPPORTED, "the reference backend is f32 only (use --backend dnnl)");
        *out = s2_backend_reference();
        return SAM2C_OK;
    }
    if (!strcmp(backend, "dnnl")) {
        *out = s2_backend_dnnl(bf ? S2_DNNL_BF16 : S2_DNNL_F32);
        return *out ? SAM2C_OK : SAM2C_ERR_UNSUPPORTED;
    }
    return s2_err(SAM2C_ERR_ARG, "unknown backend '%s' (ref, dnnl or auto)", backend);
}
