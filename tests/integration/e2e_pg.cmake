# End-to-end on PostgreSQL. Most PostgreSQL variants are a test binary
# itself, run by a wrapper that starts a throwaway server and sets
# WEFT_TEST_DB (weft_add_pg_variant); the restart scenario needs the
# server in hand, so it starts its own.
add_executable(e2e_pg_wrap ${CMAKE_CURRENT_LIST_DIR}/e2e_pg_wrap.c)
target_link_libraries(e2e_pg_wrap PRIVATE weft_testpg weft_warnings)
add_dependencies(e2e_pg_wrap e2e_test)
math(EXPR WEFT_E2E_PG_TIMEOUT "900 * ${WEFT_TEST_MULT}")

# weft_add_pg_variant(NAME TARGET): test NAME is test binary TARGET, run
# on a throwaway PostgreSQL server.
function(weft_add_pg_variant name target)
  add_test(NAME ${name}
    COMMAND e2e_pg_wrap $<TARGET_FILE:${target}> --jobs 1)
  set_tests_properties(${name} PROPERTIES TIMEOUT ${WEFT_E2E_PG_TIMEOUT}
    ENVIRONMENT "WEFT_TEST_TIMEOUT_MULTIPLIER=${WEFT_TEST_MULT}")
endfunction()

weft_add_pg_variant(e2e_pg_test e2e_test)

weft_add_test(e2e_pg_restart_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/e2e_pg_restart_test.c
  LIBS weft_testpg nng::nng Threads::Threads TIMEOUT 300)
add_dependencies(e2e_pg_restart_test weft weft-coordinator weft-worker)

# Secrets: the worker gets them in clear, no table holds them.
weft_add_pg_variant(secrets_pg_test secrets_test)
# Chaos: the test also restarts the server among its faults.
weft_add_pg_variant(chaos_pg_test chaos_test)
# Heartbeats and progress (the status query reads step_progress events).
weft_add_pg_variant(heartbeat_pg_test heartbeat_test)
# Retention.
weft_add_pg_variant(retain_pg_test retain_test)
# Why steps wait (the retry_backoff query included).
weft_add_pg_variant(waiting_pg_test waiting_e2e_test)
# Fat runs: blobs and paging on PostgreSQL.
weft_add_pg_variant(fat_pg_test fat_test)
# Wide fan-outs (the livelock case, cancel latency, size limits).
weft_add_pg_variant(scale_pg_test scale_test)
# Many runs in one request (one commit for a whole batch) on PostgreSQL.
weft_add_pg_variant(batch_pg_test batch_test)
# Signals and durable timers (a delay across kill -9: its deadline read
# back from step_started on PostgreSQL).
weft_add_pg_variant(signals_pg_test signals_test)
# The definition language's checks and map features on PostgreSQL.
weft_add_pg_variant(defs_e2e_pg_test defs_e2e_test)
# Trigger rules and the run outcome policy on PostgreSQL.
weft_add_pg_variant(triggers_pg_test triggers_test)
weft_add_pg_variant(subwf_pg_test subwf_test)
# Expansion: the restart mid-expansion on PostgreSQL.
weft_add_pg_variant(expand_e2e_pg_test expand_e2e_test)
# Schedules and delayed starts (their projections, catchup across restarts).
weft_add_pg_variant(schedule_pg_test schedule_test)
# Issue 14's operations on PostgreSQL: tags, idempotency keys across a
# restart, bulk actions, retry from a step (its projection) after a kill.
weft_add_pg_variant(ops_pg_test ops_test)
# Scheduling (priorities, limits across a restart, learned durations
# persisted) on PostgreSQL: the step_durations upsert and runs.priority.
weft_add_pg_variant(sched_pg_test sched_e2e_test)
