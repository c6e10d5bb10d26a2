# ferry_aws: AWS credentials, SigV4, JSON-protocol calls (libcurl) and KMS Decrypt.
add_library(ferry_aws STATIC ${CMAKE_CURRENT_SOURCE_DIR}/aws.c)
target_link_libraries(ferry_aws PUBLIC PkgConfig::CURL PkgConfig::CRYPTO PkgConfig::CJSON)
