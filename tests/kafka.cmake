# The Kafka that development and tests use: ferry-kafka-mock hosts librdkafka's mock cluster,
# ferry-kafka-dump prints a topic. Both land where the tree puts executables
# (CMAKE_RUNTIME_OUTPUT_DIRECTORY: ${CMAKE_BINARY_DIR}/bin); tests find them by $<TARGET_FILE>.

add_executable(ferry-kafka-mock ${CMAKE_CURRENT_LIST_DIR}/tools/kafka-mock.c)
target_link_libraries(ferry-kafka-mock PRIVATE PkgConfig::RDKAFKA)

add_executable(ferry-kafka-dump ${CMAKE_CURRENT_LIST_DIR}/tools/kafka-dump.c)
target_link_libraries(ferry-kafka-dump PRIVATE PkgConfig::RDKAFKA PkgConfig::CJSON)

ferry_test(test-kafka-tools ${CMAKE_CURRENT_LIST_DIR}/proc/test-kafka-tools.c
           PkgConfig::RDKAFKA PkgConfig::CJSON)
target_compile_definitions(test-kafka-tools PRIVATE
  KAFKA_MOCK_PATH="$<TARGET_FILE:ferry-kafka-mock>"
  KAFKA_DUMP_PATH="$<TARGET_FILE:ferry-kafka-dump>")
add_dependencies(test-kafka-tools ferry-kafka-mock ferry-kafka-dump)
