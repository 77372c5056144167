# weft-bench's probe and W2 floor on a real cluster, briefly, and
# bench/compare.sh failing clearly without Dask (no Dask needed).
if(TARGET weft-bench)
  weft_add_test(bench_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/bench_test.c
    LIBS weft_common TIMEOUT 900)
  add_dependencies(bench_test weft-bench weft-coordinator weft-worker)
endif()
