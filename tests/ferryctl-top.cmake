# ferryctl status --json and ferryctl top against a segment the test fills.
ferry_test(test-ferryctl-top ${CMAKE_CURRENT_SOURCE_DIR}/proc/test-ferryctl-top.c ferry_shm
           PkgConfig::CJSON)
target_compile_definitions(test-ferryctl-top PRIVATE FERRYCTL_PATH="$<TARGET_FILE:ferryctl>")
add_dependencies(test-ferryctl-top ferryctl)
