# The stand-in's own tests (issue 4): each starts kurir-standin (KURIR_STANDIN)
# and talks to it over loopback. The harness also runs a callback receiver.
add_library(standin_harness STATIC standin/harness.c)
target_link_libraries(standin_harness PUBLIC test_support PkgConfig::MHD
                      PkgConfig::JANSSON PkgConfig::CURL)
project_warnings(standin_harness)
# Like the tests: argv and header lists are char *const[] of literals.
target_compile_options(standin_harness PRIVATE -Wno-write-strings)
add_dependencies(standin_harness kurir-standin)

add_unit_test(test_standin_intime standin/test_standin_intime.c
              LIBS standin_harness)
add_unit_test(test_standin_legacy standin/test_standin_legacy.c
              LIBS standin_harness)
add_unit_test(test_standin_ip1 standin/test_standin_ip1.c
              LIBS standin_harness)
add_unit_test(test_standin_jojka standin/test_standin_jojka.c
              LIBS standin_harness)
add_unit_test(test_standin_control standin/test_standin_control.c
              LIBS standin_harness)
