# Encryption in transit: a mutual-TLS cluster, a foreign certificate,
# https://, wss://, and bad certificate files (openssl makes the keys).
weft_add_test(tls_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/tls_test.c TIMEOUT 300)
add_dependencies(tls_test weft weft-coordinator weft-worker)
