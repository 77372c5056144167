# PostgreSQL tests. Each binary starts a throwaway server of its own
# (tests/support/pg.c, in weft_testsupport); missing PostgreSQL binaries
# fail them, never skip.
add_library(weft_testpg INTERFACE)
target_link_libraries(weft_testpg INTERFACE weft_testsupport)

# The store suite once more, on PostgreSQL: the same body as store_test.
weft_add_test(store_test_pg SOURCES ${CMAKE_CURRENT_LIST_DIR}/store_test.c
  LIBS weft_coord weft_testpg TIMEOUT 300)
target_compile_definitions(store_test_pg PRIVATE WEFT_STORE_TEST_PG=1)

# What only PostgreSQL has: NOTIFY, reconnects, conninfo redaction.
weft_add_test(store_pg_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/store_pg_test.c
  LIBS weft_coord weft_testpg TIMEOUT 300)

# The write path alone, and the queries at size: bench/store_bench.c
# (weft-store-bench), run by hand, never by ctest.
