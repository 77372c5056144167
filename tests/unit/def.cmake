# Workflow definitions (def) and the `when` expression language (expr).
weft_add_test(def_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/def_test.c
  LIBS weft_coord TIMEOUT 60)
weft_add_test(expr_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/expr_test.c
  LIBS weft_coord TIMEOUT 60)
