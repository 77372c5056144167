weft_add_test(sm_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/sm_test.c LIBS weft_coord)
weft_add_test(run_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/run_test.c LIBS weft_coord weft_testmodel)
weft_add_test(run_map_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/run_map_test.c LIBS weft_coord weft_testmodel)
weft_add_test(expand_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/expand_test.c LIBS weft_coord weft_testmodel)
weft_add_test(trigger_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/trigger_test.c LIBS weft_coord)
weft_add_test(depends_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/depends_test.c LIBS weft_coord)
weft_add_test(waiting_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/waiting_test.c LIBS weft_coord)
weft_add_test(hold_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/hold_test.c LIBS weft_coord weft_testmodel)
weft_add_test(subwf_model_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/subwf_model_test.c LIBS weft_coord)
weft_add_test(store_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/store_test.c LIBS weft_coord)
weft_add_test(dbreg_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/dbreg_test.c LIBS weft_coord)
weft_add_test(wire_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/wire_test.c LIBS weft_common)
weft_add_test(watchdog_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/watchdog_test.c LIBS weft_common)
weft_add_test(replay_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/replay_test.c LIBS weft_common)
weft_add_test(cookie_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/cookie_test.c LIBS weft_common)
# The engine in-process with a fake network and clock: links the engine
# layer (with model and store) but not io, so a call from the engine into
# io/ would not link.
weft_add_test(engine_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/engine_test.c
  LIBS weft_engine TIMEOUT 60)
# Cron expressions, TZif zones and next fire times (model/cron.c).
weft_add_test(cron_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/cron_test.c
  LIBS weft_coord TIMEOUT 60)
weft_add_test(sched_model_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/sched_model_test.c LIBS weft_coord)
