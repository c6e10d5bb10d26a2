# ferry_registry: the Schema Registry client (libcurl) over the compiled FileDescriptorSet.
# It reads descriptors with protobuf-c code generated from protobuf's own descriptor.proto.
find_program(FERRY_PROTOC_C protoc-c REQUIRED)
find_path(FERRY_PROTOBUF_INCLUDE google/protobuf/descriptor.proto REQUIRED)
set(FERRY_REGISTRY_GEN ${CMAKE_BINARY_DIR}/gen/registry)
add_custom_command(
  OUTPUT ${FERRY_REGISTRY_GEN}/google/protobuf/descriptor.pb-c.c
         ${FERRY_REGISTRY_GEN}/google/protobuf/descriptor.pb-c.h
  COMMAND ${CMAKE_COMMAND} -E make_directory ${FERRY_REGISTRY_GEN}
  COMMAND ${FERRY_PROTOC_C} -I${FERRY_PROTOBUF_INCLUDE} --c_out=${FERRY_REGISTRY_GEN}
          ${FERRY_PROTOBUF_INCLUDE}/google/protobuf/descriptor.proto
  DEPENDS ${FERRY_PROTOBUF_INCLUDE}/google/protobuf/descriptor.proto
  COMMENT "protoc-c google/protobuf/descriptor.proto (for the registry client)")
# Generated code is not held to the tree's warning flags.
set_source_files_properties(${FERRY_REGISTRY_GEN}/google/protobuf/descriptor.pb-c.c
                            PROPERTIES COMPILE_OPTIONS "-w")
add_library(ferry_registry STATIC ${CMAKE_CURRENT_SOURCE_DIR}/registry.c
            ${FERRY_REGISTRY_GEN}/google/protobuf/descriptor.pb-c.c)
target_include_directories(ferry_registry PRIVATE ${FERRY_REGISTRY_GEN})
target_link_libraries(ferry_registry PUBLIC ferry_wire PkgConfig::CURL PkgConfig::CJSON
                      PkgConfig::CRYPTO PkgConfig::PROTOBUFC)
