# A cluster across network namespaces (needs root; fails under CI=true
# without it rather than skipping). netns_tls_test is the same source with
# every socket on tls+tcp:// and mutual TLS.
weft_add_test(netns_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/netns_test.c TIMEOUT 300)
add_dependencies(netns_test weft weft-coordinator weft-worker)
weft_add_test(netns_tls_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/netns_test.c TIMEOUT 300)
target_compile_definitions(netns_tls_test PRIVATE WEFT_NETNS_TLS=1)
add_dependencies(netns_tls_test weft weft-coordinator weft-worker)
