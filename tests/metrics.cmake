# Tests of ferryd's metrics endpoint (supervisor/metrics.c).
ferry_test(test-metrics ${CMAKE_CURRENT_SOURCE_DIR}/unit/test-metrics.c ferry_shm ferry_procstat ferry_msg)
target_sources(test-metrics PRIVATE ${CMAKE_SOURCE_DIR}/supervisor/metrics.c
                                    ${CMAKE_SOURCE_DIR}/supervisor/view.c)
# The endpoint of a running instance, checked with python3's prometheus_client.
add_executable(test-metrics-http ${CMAKE_CURRENT_LIST_DIR}/proc/test-metrics-http.c)
target_link_libraries(test-metrics-http PRIVATE ferry_test_harness ferry_test_port)
add_test(NAME test-metrics-http COMMAND test-metrics-http)
set_tests_properties(test-metrics-http PROPERTIES TIMEOUT 600)
