# weft_common unit tests: the intrusive queue, the mailbox built on it, the map.
weft_add_test(queue_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/queue_test.c
  LIBS weft_common TIMEOUT 60)
weft_add_test(mailbox_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/mailbox_test.c
  LIBS weft_common TIMEOUT 60)
# The string hash map against a model (common/map.c).
weft_add_test(map_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/map_test.c
  LIBS weft_common TIMEOUT 60)
# The API token file, its lookup and the loopback rule (common/auth.c).
weft_add_test(tokens_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/tokens_test.c
  LIBS weft_common TIMEOUT 60)
# Duration flags (common/clock.c).
weft_add_test(clock_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/clock_test.c
  LIBS weft_common TIMEOUT 60)
weft_add_test(log_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/log_test.c LIBS weft_common)
