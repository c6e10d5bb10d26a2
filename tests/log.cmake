ferry_test(test-log ${CMAKE_CURRENT_SOURCE_DIR}/unit/test-log.c ferry_log)
ferry_test(test-notify ${CMAKE_CURRENT_SOURCE_DIR}/unit/test-notify.c ferry_log)
