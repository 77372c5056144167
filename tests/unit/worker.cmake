# Worker unit tests: built-in step handlers, and the wire protocol with the
# test acting as the coordinator.
if(TARGET weft_worker)
  weft_add_test(worker_steps_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/worker_steps_test.c
    LIBS weft_worker TIMEOUT 120)
  weft_add_test(worker_proto_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/worker_proto_test.c
    LIBS weft_worker TIMEOUT 120)
endif()
