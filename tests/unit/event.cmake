# The event type list (common/event.h), checked against the run and step
# machines of coordinator/model it must agree with.
weft_add_test(event_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/event_test.c
  LIBS weft_common weft_model TIMEOUT 60)
