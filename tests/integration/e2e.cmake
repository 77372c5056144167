weft_add_test(e2e_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/e2e_test.c
  LIBS weft_coord nng::nng Threads::Threads TIMEOUT 600)
add_dependencies(e2e_test weft weft-coordinator weft-worker)
weft_add_test(garbage_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/garbage_test.c TIMEOUT 300)
add_dependencies(garbage_test weft weft-coordinator weft-worker)
weft_add_test(http_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_test.c TIMEOUT 300)
add_dependencies(http_test weft weft-coordinator weft-worker)
weft_add_test(http_errors_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_errors_test.c TIMEOUT 300)
add_dependencies(http_errors_test weft weft-coordinator weft-worker)
weft_add_test(restart_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/restart_test.c TIMEOUT 300)
add_dependencies(restart_test weft weft-coordinator weft-worker weft_hang_close)
target_compile_definitions(restart_test PRIVATE
  WEFT_HANG_CLOSE_SO="$<TARGET_FILE:weft_hang_close>")
weft_add_test(liveness_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/liveness_test.c TIMEOUT 120)
add_dependencies(liveness_test weft weft-coordinator weft-worker)
weft_add_test(security_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/security_test.c TIMEOUT 300)
add_dependencies(security_test weft weft-coordinator weft-worker)
weft_add_test(secrets_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/secrets_test.c
  LIBS weft_coord nng::nng Threads::Threads TIMEOUT 300)
add_dependencies(secrets_test weft weft-coordinator weft-worker)
weft_add_test(auth_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/auth_test.c TIMEOUT 300)
add_dependencies(auth_test weft weft-coordinator weft-worker)
# Store faults (a full disk, a read-only filesystem, the database file
# deleted, PostgreSQL down at start): mounts a tmpfs, so it needs root.
weft_add_test(store_fault_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/store_fault_test.c
  LIBS weft_testpg TIMEOUT 600)
add_dependencies(store_fault_test weft weft-coordinator weft-worker)
weft_add_test(chaos_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/chaos_test.c
  LIBS weft_testpg TIMEOUT 420)
add_dependencies(chaos_test weft weft-coordinator weft-worker)
weft_add_test(heartbeat_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/heartbeat_test.c
  LIBS weft_worker TIMEOUT 300)
add_dependencies(heartbeat_test weft weft-coordinator weft-worker)
weft_add_test(retain_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/retain_test.c TIMEOUT 300)
add_dependencies(retain_test weft weft-coordinator weft-worker)
weft_add_test(waiting_e2e_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/waiting_e2e_test.c TIMEOUT 300)
add_dependencies(waiting_e2e_test weft weft-coordinator weft-worker)
# Nodes that stop on purpose: worker drain, coordinator SIGTERM, the spool.
weft_add_test(drain_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/drain_test.c
  LIBS SQLite::SQLite3 TIMEOUT 600)
add_dependencies(drain_test weft weft-coordinator weft-worker)
# Runs that carry data: listings, status, events, waits and outputs after
# fat runs (blobs, paging).
weft_add_test(fat_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/fat_test.c TIMEOUT 900)
add_dependencies(fat_test weft weft-coordinator weft-worker)
# Wide fan-outs that carry data: the issue-11 livelock, cancel latency
# during a 100,000-item map, the size limits.
weft_add_test(scale_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/scale_test.c TIMEOUT 1200)
add_dependencies(scale_test weft weft-coordinator weft-worker)
# Memory bounded by live work: --def-cache, runs leaving memory.
weft_add_test(memory_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/memory_test.c TIMEOUT 300)
add_dependencies(memory_test weft weft-coordinator weft-worker)
# Many runs in one request: the control request, POST /api/v1/runs/batch,
# weft run --count, weft submit.
weft_add_test(batch_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/batch_test.c TIMEOUT 600)
add_dependencies(batch_test weft weft-coordinator weft-worker)
# Signals, approvals and durable timers (wait, delay, sleep_until).
weft_add_test(signals_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/signals_test.c TIMEOUT 300)
add_dependencies(signals_test weft weft-coordinator weft-worker)
# The definition language: parameter rules at run creation, define-time
# refusals, maps over literals and params with per-item when,
# map_tolerate and [*] projections, exit_code in the steps document.
weft_add_test(defs_e2e_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/defs_e2e_test.c TIMEOUT 300)
add_dependencies(defs_e2e_test weft weft-coordinator weft-worker)
# Trigger rules (upstream_failed, rules that fire early) and the run
# outcome policy (fail_fast, status_from).
weft_add_test(triggers_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/triggers_test.c TIMEOUT 600)
add_dependencies(triggers_test weft weft-coordinator weft-worker)
weft_add_test(subwf_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/subwf_test.c TIMEOUT 300)
add_dependencies(subwf_test weft weft-coordinator weft-worker)
# Dynamic expansion (expand steps), the goal example, a restart mid-expansion.
weft_add_test(expand_e2e_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/expand_e2e_test.c TIMEOUT 300)
add_dependencies(expand_e2e_test weft weft-coordinator weft-worker)
# Delayed starts (--at, --delay, start_at) and cron schedules, on the
# coordinator's test clock (--test-clock, `weft clock advance`).
weft_add_test(schedule_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/schedule_test.c TIMEOUT 600)
add_dependencies(schedule_test weft weft-coordinator weft-worker)
# Issue 14's operations: definition versions, run tags and their
# filters, idempotency keys, bulk actions, retry from a step.
weft_add_test(ops_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/ops_test.c TIMEOUT 900)
add_dependencies(ops_test weft weft-coordinator weft-worker)
# Scheduling: priorities, concurrency limits, learned durations and ETA.
weft_add_test(sched_e2e_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/sched_e2e_test.c TIMEOUT 600)
add_dependencies(sched_e2e_test weft weft-coordinator weft-worker)
