# Tests of common/sqs: request bodies and captured responses (unit), a real moto_server (process).
ferry_test(test-sqs ${CMAKE_CURRENT_SOURCE_DIR}/unit/test-sqs.c ferry_sqs PkgConfig::CJSON)
ferry_test(test-sqs-moto ${CMAKE_CURRENT_SOURCE_DIR}/proc/test-sqs.c ferry_sqs ferry_aws
           ferry_test_moto PkgConfig::CJSON)
