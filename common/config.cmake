# config: etc/ferry.conf, read with inih; [kafka] properties checked with librdkafka.
if(NOT TARGET PkgConfig::INIH)
  pkg_check_modules(INIH REQUIRED IMPORTED_TARGET GLOBAL inih)
endif()
if(NOT TARGET PkgConfig::RDKAFKA)
  pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET GLOBAL rdkafka)
endif()
add_library(ferry_config STATIC ${CMAKE_CURRENT_SOURCE_DIR}/config.c)
target_link_libraries(ferry_config PUBLIC PkgConfig::INIH PkgConfig::RDKAFKA)
