# weft scraped by a real Prometheus, and alerts.yml checked and
# unit-tested with promtool (see prometheus_test.sh).
if(NOT DEFINED WEFT_TEST_MULT)
  set(WEFT_TEST_MULT 1)
endif()
math(EXPR WEFT_PROM_TIMEOUT "300 * ${WEFT_TEST_MULT}")
add_test(NAME prometheus_test
  COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/prometheus_test.sh
          ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR})
set_tests_properties(prometheus_test PROPERTIES TIMEOUT ${WEFT_PROM_TIMEOUT}
  ENVIRONMENT "WEFT_TEST_TIMEOUT_MULTIPLIER=${WEFT_TEST_MULT}")
