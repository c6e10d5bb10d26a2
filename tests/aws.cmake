# Tests of common/aws: SigV4 vectors and credentials (unit); KMS, STS web identity, SNS and
# `ferry-envelope sns` against moto_server; the credential chain (IMDS, ECS, STS stand-ins)
# and `ferry-envelope pubsub` against a loopback server thread (process).
find_package(Threads REQUIRED)
add_library(ferry_test_moto STATIC ${CMAKE_CURRENT_SOURCE_DIR}/proc/moto.c)
target_link_libraries(ferry_test_moto PUBLIC PkgConfig::CMOCKA PkgConfig::CJSON ferry_aws ferry_test_port)
ferry_test(test-aws ${CMAKE_CURRENT_SOURCE_DIR}/unit/test-aws.c ferry_aws)
ferry_test(test-aws-kms ${CMAKE_CURRENT_SOURCE_DIR}/proc/test-aws-kms.c ferry_aws ferry_test_moto)
ferry_test(test-aws-creds ${CMAKE_CURRENT_SOURCE_DIR}/proc/test-aws-creds.c ferry_aws
           ferry_envelope Threads::Threads)
target_compile_definitions(test-aws-creds PRIVATE
                           FERRY_ENVELOPE_PATH="$<TARGET_FILE:ferry-envelope>")
add_dependencies(test-aws-creds ferry-envelope)
ferry_test(test-aws-query ${CMAKE_CURRENT_SOURCE_DIR}/proc/test-aws-query.c ferry_aws
           ferry_test_moto)
target_compile_definitions(test-aws-query PRIVATE
                           FERRY_ENVELOPE_PATH="$<TARGET_FILE:ferry-envelope>")
add_dependencies(test-aws-query ferry-envelope)
