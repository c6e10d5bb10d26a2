# ferry_gcp: Google credentials (emulator, service-account self-signed JWT, metadata server).
add_library(ferry_gcp STATIC ${CMAKE_CURRENT_SOURCE_DIR}/gcp.c)
target_link_libraries(ferry_gcp PUBLIC PkgConfig::CURL PkgConfig::CRYPTO PkgConfig::CJSON)
