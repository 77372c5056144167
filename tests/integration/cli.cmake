# The weft command line client against a fake coordinator in the test.
if(TARGET weft)
  weft_add_test(cli_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_test.c
    LIBS weft_common nng::nng Threads::Threads
    TIMEOUT 120)
  add_dependencies(cli_test weft)
endif()
