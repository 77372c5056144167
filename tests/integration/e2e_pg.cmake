# End-to-end on PostgreSQL. e2e_pg_test is e2e_test itself, run by a
# wrapper that starts a throwaway server and sets WEFT_TEST_DB; the
# restart scenario needs the server in hand, so it starts its own.
add_executable(e2e_pg_wrap ${CMAKE_CURRENT_LIST_DIR}/e2e_pg_wrap.c)
target_link_libraries(e2e_pg_wrap PRIVATE weft_testpg weft_warnings)
add_dependencies(e2e_pg_wrap e2e_test)
math(EXPR WEFT_E2E_PG_TIMEOUT "900 * ${WEFT_TEST_MULT}")
add_test(NAME e2e_pg_test
  COMMAND e2e_pg_wrap $<TARGET_FILE:e2e_test> --jobs 1)
set_tests_properties(e2e_pg_test PROPERTIES TIMEOUT ${WEFT_E2E_PG_TIMEOUT}
  ENVIRONMENT "WEFT_TEST_TIMEOUT_MULTIPLIER=${WEFT_TEST_MULT}")

weft_add_test(e2e_pg_restart_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/e2e_pg_restart_test.c
  LIBS weft_testpg nng::nng Threads::Threads TIMEOUT 300)
add_dependencies(e2e_pg_restart_test weft weft-coordinator weft-worker)

# Secrets on PostgreSQL: secrets_test itself, on a throwaway server.
add_test(NAME secrets_pg_test
  COMMAND e2e_pg_wrap $<TARGET_FILE:secrets_test> --jobs 1)
set_tests_properties(secrets_pg_test PROPERTIES TIMEOUT ${WEFT_E2E_PG_TIMEOUT}
  ENVIRONMENT "WEFT_TEST_TIMEOUT_MULTIPLIER=${WEFT_TEST_MULT}")

# Chaos on PostgreSQL: chaos_test itself, on a throwaway server that it
# also restarts among its faults.
add_test(NAME chaos_pg_test
  COMMAND e2e_pg_wrap $<TARGET_FILE:chaos_test> --jobs 1)
set_tests_properties(chaos_pg_test PROPERTIES TIMEOUT ${WEFT_E2E_PG_TIMEOUT}
  ENVIRONMENT "WEFT_TEST_TIMEOUT_MULTIPLIER=${WEFT_TEST_MULT}")

# Heartbeats and progress on PostgreSQL: heartbeat_test itself (the status
# query reads step_progress events).
add_test(NAME heartbeat_pg_test
  COMMAND e2e_pg_wrap $<TARGET_FILE:heartbeat_test> --jobs 1)
set_tests_properties(heartbeat_pg_test PROPERTIES TIMEOUT ${WEFT_E2E_PG_TIMEOUT}
# Retention on PostgreSQL: retain_test itself, on a throwaway server.
add_test(NAME retain_pg_test
  COMMAND e2e_pg_wrap $<TARGET_FILE:retain_test> --jobs 1)
set_tests_properties(retain_pg_test PROPERTIES TIMEOUT ${WEFT_E2E_PG_TIMEOUT}
  ENVIRONMENT "WEFT_TEST_TIMEOUT_MULTIPLIER=${WEFT_TEST_MULT}")
