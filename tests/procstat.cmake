# Tests of common/procstat.
ferry_test(test-procstat ${CMAKE_CURRENT_SOURCE_DIR}/unit/test-procstat.c ferry_procstat)
