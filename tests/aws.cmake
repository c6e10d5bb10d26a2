# Tests of common/aws: SigV4 vectors and credentials (unit), KMS against moto_server (process).
add_library(ferry_test_moto STATIC ${CMAKE_CURRENT_SOURCE_DIR}/proc/moto.c)
target_link_libraries(ferry_test_moto PUBLIC PkgConfig::CMOCKA)
ferry_test(test-aws ${CMAKE_CURRENT_SOURCE_DIR}/unit/test-aws.c ferry_aws)
ferry_test(test-aws-kms ${CMAKE_CURRENT_SOURCE_DIR}/proc/test-aws-kms.c ferry_aws ferry_test_moto)
