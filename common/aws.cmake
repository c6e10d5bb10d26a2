# ferry_aws: AWS credentials (the SDKs' chain), SigV4, JSON- and query-protocol calls (libcurl),
# KMS Decrypt.
add_library(ferry_aws STATIC ${CMAKE_CURRENT_SOURCE_DIR}/aws.c)
target_link_libraries(ferry_aws PUBLIC PkgConfig::CURL PkgConfig::CRYPTO PkgConfig::CJSON)
