# run: one bounded libFuzzer run, for CTest (tests/fuzz/fuzz.cmake):
#   cmake -DFUZZER=exe -DNAME=wire -DCORPUS=dir -DWORK=dir -DARTIFACTS=dir
#         -DSECONDS=20 -P run.cmake
# The seed corpus is copied into a fresh work dir, so the run never changes
# the repository; the work dir is removed afterwards. A crash leaves its
# reproducer in ARTIFACTS (NAME-crash-<sha1> etc.) and fails the test.
foreach(v FUZZER NAME CORPUS WORK ARTIFACTS SECONDS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run.cmake: -D${v}=... missing")
  endif()
endforeach()
string(RANDOM LENGTH 8 _tag)
set(_dir "${WORK}-${_tag}")
file(REMOVE_RECURSE "${_dir}")
file(MAKE_DIRECTORY "${_dir}/corpus" "${ARTIFACTS}")
file(GLOB _seeds "${CORPUS}/*")
if(_seeds)
  file(COPY ${_seeds} DESTINATION "${_dir}/corpus")
endif()
execute_process(
  COMMAND "${FUZZER}" -max_total_time=${SECONDS} -rss_limit_mb=2048
          -timeout=10 -print_final_stats=1
          -artifact_prefix=${ARTIFACTS}/${NAME}- "${_dir}/corpus"
  WORKING_DIRECTORY "${_dir}"
  RESULT_VARIABLE _rc)
file(REMOVE_RECURSE "${_dir}")
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR
    "${NAME}_fuzz failed (${_rc}); the reproducer is in ${ARTIFACTS}")
endif()
