# docs/cookbook.md's recipes, run as written against tests/run's Kafka and
# Redis, the stand-ins and a kurir worker (tests/cookbook/run).
add_test(NAME cookbook.run COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cookbook/run)
set_tests_properties(cookbook.run PROPERTIES TIMEOUT 240 SKIP_RETURN_CODE 77
    ENVIRONMENT "COOKBOOK_CTEST=1;KURIR_BIN=$<TARGET_FILE:kurir>;KURIR_STANDIN=$<TARGET_FILE:kurir-standin>")
