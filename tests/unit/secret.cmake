# Secrets: the pure mask and scrub functions of the run model, and the
# sealing of secrets at rest (common/seal.c).
weft_add_test(secret_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/secret_test.c
  LIBS weft_coord weft_testmodel TIMEOUT 60)
