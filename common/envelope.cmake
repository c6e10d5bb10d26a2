add_library(ferry_envelope STATIC ${CMAKE_CURRENT_SOURCE_DIR}/envelope.c)
target_link_libraries(ferry_envelope PUBLIC PkgConfig::CJSON PkgConfig::CRYPTO)
