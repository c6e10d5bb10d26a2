# config: etc/ferry.conf, read with inih; [kafka] properties checked with librdkafka.
add_library(ferry_config STATIC ${CMAKE_CURRENT_SOURCE_DIR}/config.c)
target_link_libraries(ferry_config PUBLIC PkgConfig::INIH PkgConfig::RDKAFKA)
