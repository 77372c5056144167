weft_add_test(e2e_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/e2e_test.c TIMEOUT 600)
add_dependencies(e2e_test weft weft-coordinator weft-worker)
weft_add_test(garbage_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/garbage_test.c TIMEOUT 300)
add_dependencies(garbage_test weft weft-coordinator weft-worker)
