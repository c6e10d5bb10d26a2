# ferry_aws: AWS credentials, SigV4, JSON-protocol calls (libcurl) and KMS Decrypt.
# Other modules import the same packages: import each only once per directory.
if(NOT TARGET PkgConfig::CURL)
  pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
endif()
if(NOT TARGET PkgConfig::CRYPTO)
  pkg_check_modules(CRYPTO REQUIRED IMPORTED_TARGET libcrypto)
endif()
if(NOT TARGET PkgConfig::CJSON)
  pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
endif()
add_library(ferry_aws STATIC ${CMAKE_CURRENT_SOURCE_DIR}/aws.c)
target_link_libraries(ferry_aws PUBLIC PkgConfig::CURL PkgConfig::CRYPTO PkgConfig::CJSON)
