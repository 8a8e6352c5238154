# The JSON Schemas of docs/schemas/ agree with kurir's own validation
# (tests/schemas/check; Debian's python3-jsonschema).
add_test(NAME schemas.check
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/schemas/check --kurir $<TARGET_FILE:kurir>)
set_tests_properties(schemas.check PROPERTIES TIMEOUT 120
    FAIL_REGULAR_EXPRESSION "ERROR: (Address|Leak)Sanitizer|runtime error:")

# schema_check() (tests/support/schema.c), the end-to-end tests' hook.
add_unit_test(test_schema_check schemas/test_schema_check.c)
