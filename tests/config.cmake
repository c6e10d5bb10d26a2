# Tests of common/config (test-config also loads etc/ferry.conf from the source tree).
ferry_test(test-config ${CMAKE_CURRENT_SOURCE_DIR}/unit/test-config.c ferry_config)
target_compile_definitions(test-config PRIVATE FERRY_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
