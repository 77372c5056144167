# The dashboard's browser tests: headless Chromium (Debian's chromium,
# driven by playwright-core) against a real coordinator and workers from
# this build tree. run.sh installs the npm and Debian packages it misses.
if(NOT DEFINED WEFT_TEST_MULT)
  set(WEFT_TEST_MULT 1)
endif()
math(EXPR WEFT_BROWSER_TIMEOUT "900 * ${WEFT_TEST_MULT}")
add_test(NAME browser_test
  COMMAND ${CMAKE_SOURCE_DIR}/tests/browser/run.sh ${CMAKE_BINARY_DIR})
set_tests_properties(browser_test PROPERTIES TIMEOUT ${WEFT_BROWSER_TIMEOUT} RUN_SERIAL TRUE)
