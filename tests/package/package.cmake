# The Debian packages: built, installed with apt-get and used from PATH
# (needs root; see package_test.sh). Runs alone: it installs into /usr.
add_test(NAME package_test
  COMMAND ${CMAKE_SOURCE_DIR}/tests/package/package_test.sh ${CMAKE_SOURCE_DIR})
if(NOT DEFINED WEFT_TEST_MULT)
  set(WEFT_TEST_MULT 1)
endif()
math(EXPR WEFT_PACKAGE_TIMEOUT "900 * ${WEFT_TEST_MULT}")
set_tests_properties(package_test PROPERTIES TIMEOUT ${WEFT_PACKAGE_TIMEOUT}
  SKIP_RETURN_CODE 77 LABELS package)
