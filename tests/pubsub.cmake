# Tests of common/gcp and common/pubsub: JWT, metadata server, codec (unit); the real
# Pub/Sub emulator (process; needs `gcloud beta emulators pubsub`, Java).
add_library(ferry_test_pubsub_emu STATIC ${CMAKE_CURRENT_SOURCE_DIR}/proc/pubsub-emu.c)
target_link_libraries(ferry_test_pubsub_emu PUBLIC PkgConfig::CMOCKA PkgConfig::CURL ferry_test_port)
ferry_test(test-gcp ${CMAKE_CURRENT_SOURCE_DIR}/unit/test-gcp.c ferry_gcp pthread)
ferry_test(test-pubsub ${CMAKE_CURRENT_SOURCE_DIR}/unit/test-pubsub.c ferry_pubsub)
ferry_test(test-pubsub-emu ${CMAKE_CURRENT_SOURCE_DIR}/proc/test-pubsub.c ferry_pubsub ferry_gcp
           ferry_test_pubsub_emu)
