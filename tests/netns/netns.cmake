# A cluster across network namespaces (needs root; fails under CI=true
# without it rather than skipping).
weft_add_test(netns_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/netns_test.c TIMEOUT 300)
add_dependencies(netns_test weft weft-coordinator weft-worker)
