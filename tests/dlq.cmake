# Dead-letter replay: selection and the spool file (unit); the replay end to end (process).
ferry_test(test-dlq ${CMAKE_CURRENT_LIST_DIR}/unit/test-dlq.c ferry_dlq)
add_executable(test-replay-dlq ${CMAKE_CURRENT_LIST_DIR}/proc/test-replay-dlq.c)
target_link_libraries(test-replay-dlq PRIVATE ferry_test_harness ferry_dlq)
add_test(NAME test-replay-dlq COMMAND test-replay-dlq)
set_tests_properties(test-replay-dlq PROPERTIES TIMEOUT 600)
