# The producer configuration (workers/produce/kconf.c): what keeps events from being lost.
ferry_test(test-kconf ${CMAKE_CURRENT_SOURCE_DIR}/unit/test-kconf.c ferry_produce_conf)
