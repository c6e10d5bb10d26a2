# Broken configuration files against the real ferryd: exit 100, file:line and key, nothing started.
ferry_test(test-config-broken ${CMAKE_CURRENT_LIST_DIR}/proc/test-config-broken.c ferry_shm)
target_compile_definitions(test-config-broken PRIVATE FERRYD_PATH="$<TARGET_FILE:ferryd>")
add_dependencies(test-config-broken ferryd)
set_tests_properties(test-config-broken PROPERTIES TIMEOUT 120)
