# Short libFuzzer runs as CTest tests (label "fuzz") when WEFT_FUZZ=ON:
# each fuzzer for 20 s on a temp copy of its seed corpus (fuzz/run.cmake).
if(WEFT_FUZZ)
  foreach(name wire def expr json_render tokens depends expand cron runreq query)
    if(TARGET ${name}_fuzz)
      add_test(NAME fuzz_${name}
        COMMAND ${CMAKE_COMMAND}
          -DFUZZER=$<TARGET_FILE:${name}_fuzz>
          -DNAME=${name}
          -DCORPUS=${CMAKE_SOURCE_DIR}/fuzz/corpus/${name}
          -DWORK=${CMAKE_BINARY_DIR}/fuzz-work/${name}
          -DARTIFACTS=${CMAKE_BINARY_DIR}/fuzz-artifacts
          -DSECONDS=20
          -P ${CMAKE_SOURCE_DIR}/fuzz/run.cmake)
      set_tests_properties(fuzz_${name} PROPERTIES TIMEOUT 180 LABELS fuzz)
    endif()
  endforeach()
endif()
