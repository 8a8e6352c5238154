# The fault drills (tests/drills/README.md): real Kafka, Redis and the
# provider stand-in, kurir replicas killed, starved and flooded. Each drill
# appends its line of the drill table to drills/results.txt in the build
# directory; tests/drills/table prints it. The kill drills need the
# failpoints (FAILPOINTS=ON, as tests/run builds).
add_library(drill STATIC drills/drill.c)
target_link_libraries(drill PUBLIC worker_stack redisproc)
project_warnings(drill)
target_compile_options(drill PRIVATE -Wno-write-strings)

set(DRILL_RESULTS ${CMAKE_BINARY_DIR}/drills/results.txt)
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/drills)
function(add_drill name)
    cmake_parse_arguments(D "" "TIMEOUT" "" ${ARGN})
    add_unit_test(${name} drills/${name}.c LIBS drill TIMEOUT ${D_TIMEOUT})
    set_property(TEST drills.${name} APPEND PROPERTY ENVIRONMENT
                 "KURIR_DRILL_RESULTS=${DRILL_RESULTS}")
endfunction()

if(FAILPOINTS)
    add_drill(test_kill TIMEOUT 600)
endif()
add_drill(test_redis TIMEOUT 600)
add_drill(test_storm TIMEOUT 900)
add_drill(test_poison TIMEOUT 600)
add_drill(test_rate TIMEOUT 600)
add_drill(test_kafka TIMEOUT 600)
add_drill(test_schedule TIMEOUT 300)
add_drill(test_lease TIMEOUT 300)
