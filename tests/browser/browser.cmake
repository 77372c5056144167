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

# The dashboard's pure parts (the timeline's attempts and lanes, the
# metrics page's Prometheus parser and rates) under node, no browser:
# fast enough for every run and for the mutants of those files.
find_program(WEFT_NODE node)
if(WEFT_NODE)
  add_test(NAME dashboard_js_test
    COMMAND ${WEFT_NODE} --test --test-reporter=spec
      ${CMAKE_SOURCE_DIR}/tests/browser/dashboard.unit.test.mjs)
  set_tests_properties(dashboard_js_test PROPERTIES TIMEOUT 120)
endif()
