# ratelimit tests: a real redis-server (KURIR_TEST_REDIS from tests/run),
# each test under its own key prefix.
add_library(rltest STATIC ratelimit/rltest.c)
target_link_libraries(rltest PUBLIC ratelimit test_support)
project_warnings(rltest)
target_compile_options(rltest PRIVATE -Wno-write-strings)

add_unit_test(test_rconn ratelimit/test_rconn.c LIBS rltest TIMEOUT 120)
add_unit_test(test_ratelimit ratelimit/test_ratelimit.c LIBS rltest
              TIMEOUT 120)
add_unit_test(test_sched ratelimit/test_sched.c LIBS rltest TIMEOUT 120)
add_unit_test(test_marker ratelimit/test_marker.c LIBS rltest TIMEOUT 60)
add_unit_test(test_optout ratelimit/test_optout.c LIBS rltest TIMEOUT 60)

# Not a test: prints decisions per second and round trips per 1,000 sends.
#     build/tests/bench_ratelimit [host:port] [seconds] [processes]
add_executable(bench_ratelimit bench/bench_ratelimit.c)
target_link_libraries(bench_ratelimit PRIVATE ratelimit)
project_warnings(bench_ratelimit)
# Starts its own redis-server, stunnel and redis-sentinel.
add_unit_test(test_redis_edges ratelimit/test_redis_edges.c LIBS ratelimit redisproc
              TIMEOUT 180)
