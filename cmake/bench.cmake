# `cmake --build BUILD --target bench`: times the CPU backends with `sam2c bench` on a
# random-weight model (image encode, prompt decode, tracking step, peak RSS) for f32 and
# bf16 on 1 and 2 threads, writing one JSON object per configuration to
# BUILD/bench/<arch>-<dtype>-t<threads>.json and a profile to BUILD/bench/<arch>-profile.txt.
# Include from the top-level CMakeLists.txt after the sam2c target:
#   include(cmake/bench.cmake)
set(SAM2C_BENCH_ARCH "tiny" CACHE STRING "architecture timed by the bench target (tiny, small, base+, large)")
set(SAM2C_BENCH_RUNS "5" CACHE STRING "timed runs per measurement of the bench target")
set(SAM2C_BENCH_BACKEND "dnnl" CACHE STRING "backend timed by the bench target (ref, dnnl)")

set(_s2_bench_dir ${CMAKE_BINARY_DIR}/bench)
set(_s2_bench_cmds "")
foreach(_dt f32 bf16)
  foreach(_t 1 2)
    set(_out ${_s2_bench_dir}/${SAM2C_BENCH_ARCH}-${_dt}-t${_t}.json)
    list(APPEND _s2_bench_cmds
      COMMAND sh -c "\"$<TARGET_FILE:sam2c>\" bench --random ${SAM2C_BENCH_ARCH} --backend ${SAM2C_BENCH_BACKEND} --dtype ${_dt} --threads ${_t} --runs ${SAM2C_BENCH_RUNS} --json > \"${_out}\" && cat \"${_out}\"")
  endforeach()
endforeach()

add_custom_target(bench
  COMMAND ${CMAKE_COMMAND} -E make_directory ${_s2_bench_dir}
  ${_s2_bench_cmds}
  COMMAND sh -c "\"$<TARGET_FILE:sam2c>\" bench --random ${SAM2C_BENCH_ARCH} --backend ${SAM2C_BENCH_BACKEND} --dtype bf16 --runs 1 --profile --peak > \"${_s2_bench_dir}/${SAM2C_BENCH_ARCH}-profile.txt\" && cat \"${_s2_bench_dir}/${SAM2C_BENCH_ARCH}-profile.txt\""
  USES_TERMINAL VERBATIM
  COMMENT "sam2c bench: ${SAM2C_BENCH_ARCH}, f32/bf16, 1 and 2 threads (results in ${_s2_bench_dir})")
add_dependencies(bench sam2c)
