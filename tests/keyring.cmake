# The decrypt stage's key cache: background refresh, RCU readers, flushes, against moto's KMS.
ferry_test(test-keyring ${CMAKE_CURRENT_SOURCE_DIR}/proc/test-keyring.c ferry_keyring
           ferry_test_moto PkgConfig::CJSON)
