# Codec tests (included from tests/CMakeLists.txt). Every codec's golden
# cases run through one runner, fixture_runner.c (see its header for the
# layout of tests/codecs/fixtures/<provider>/<case>/).
add_library(codec_fixtures STATIC ${CMAKE_CURRENT_LIST_DIR}/fixture_runner.c)
target_link_libraries(codec_fixtures PUBLIC codecs)
project_warnings(codec_fixtures)

add_unit_test(test_text codecs/test_text.c LIBS codecs)
add_unit_test(test_job codecs/test_job.c LIBS codecs)
add_unit_test(test_retry_after codecs/test_retry_after.c LIBS codecs)
add_unit_test(test_jojka codecs/test_jojka.c LIBS codec_fixtures codecs)
add_unit_test(test_ip1 codecs/test_ip1.c LIBS codec_fixtures codecs)
add_unit_test(test_intime codecs/test_intime.c LIBS codec_fixtures codecs)
add_unit_test(test_ip1_legacy codecs/test_ip1_legacy.c LIBS codec_fixtures codecs)
add_unit_test(test_issue10 codecs/test_issue10.c LIBS codecs)

# ns/job for parse, encode and decode per provider; not a test. Measure it in
# a Release build (see the comment at the top of the file).
add_executable(bench_codecs ${CMAKE_CURRENT_LIST_DIR}/../bench/bench_codecs.c)
target_link_libraries(bench_codecs PRIVATE codecs)
project_warnings(bench_codecs)

# libFuzzer targets: -DFUZZ=ON with CC=clang; tests/fuzz/run does it.
if(FUZZ)
    add_subdirectory(${CMAKE_CURRENT_LIST_DIR}/../fuzz
                     ${CMAKE_CURRENT_BINARY_DIR}/codecs/fuzz)
endif()
