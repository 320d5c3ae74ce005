# SAM2C_TSAN: build everything with ThreadSanitizer (data races in the server, the
# background encode worker, the oneDNN caches and concurrent sessions sharing a model).
# Run the result with OMP_NUM_THREADS=1: libgomp is not instrumented, so its worker
# threads would give false reports; with one OpenMP thread none are created and only
# sam2c's own pthreads remain. scripts/tsan.sh does all of this.
# Include from the top-level CMakeLists.txt right after the SAM2C_SANITIZE block:
#   include(cmake/tsan.cmake)
# (Until then scripts/tsan.sh loads it through CMAKE_PROJECT_INCLUDE.)
include_guard(GLOBAL)
option(SAM2C_TSAN "Build with ThreadSanitizer (run with OMP_NUM_THREADS=1)" OFF)
if(SAM2C_TSAN)
  if(SAM2C_SANITIZE)
    message(FATAL_ERROR "SAM2C_TSAN and SAM2C_SANITIZE cannot be combined (TSan excludes ASan)")
  endif()
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=thread)
  message(STATUS "sam2c: ThreadSanitizer build (run tests with OMP_NUM_THREADS=1)")
endif()
