# Tests of common/registry and common/wire: the wire format and descriptor paths (unit), and the
# client against tests/registry/fixture.js with Confluent's JavaScript deserializer as the
# independent decoder (process). Test protos of their own (tests/registry/proto), compiled here.
find_program(FERRY_PROTOC protoc REQUIRED)
find_program(FERRY_NODE node REQUIRED)
set(rt_src ${CMAKE_CURRENT_SOURCE_DIR}/registry)
set(rt_gen ${CMAKE_BINARY_DIR}/gen/registry-test)
set(rt_protos test/common/v1/tenant.proto test/chat/v1/message.proto)
set(rt_c ${rt_gen}/test/common/v1/tenant.pb-c.c ${rt_gen}/test/chat/v1/message.pb-c.c
         ${rt_gen}/google/protobuf/timestamp.pb-c.c)
set(rt_deps ${rt_src}/proto/test/common/v1/tenant.proto ${rt_src}/proto/test/chat/v1/message.proto)
add_custom_command(
  OUTPUT ${rt_c}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${rt_gen}
  COMMAND ${FERRY_PROTOC_C} -I${rt_src}/proto -I${FERRY_PROTOBUF_INCLUDE} --c_out=${rt_gen}
          ${rt_protos} google/protobuf/timestamp.proto
  DEPENDS ${rt_deps}
  COMMENT "protoc-c: the registry test protos")
# The descriptor sets: as compiled, and with one field changed (what another registry holds).
add_custom_command(
  OUTPUT ${rt_gen}/test.desc ${rt_gen}/test-changed.desc
  COMMAND ${CMAKE_COMMAND} -E make_directory ${rt_gen}
  COMMAND ${FERRY_PROTOC} -I${rt_src}/proto -I${FERRY_PROTOBUF_INCLUDE} --include_imports
          --descriptor_set_out=${rt_gen}/test.desc ${rt_protos}
  COMMAND ${FERRY_PROTOC} -I${rt_src}/proto-changed -I${rt_src}/proto -I${FERRY_PROTOBUF_INCLUDE}
          --include_imports --descriptor_set_out=${rt_gen}/test-changed.desc ${rt_protos}
  DEPENDS ${rt_deps} ${rt_src}/proto-changed/test/chat/v1/message.proto
  COMMENT "protoc: the registry test descriptor sets")
add_custom_target(ferry_registry_test_desc DEPENDS ${rt_gen}/test.desc)
add_library(ferry_registry_test_proto STATIC ${rt_c})
target_compile_options(ferry_registry_test_proto PRIVATE -w)
target_include_directories(ferry_registry_test_proto PUBLIC ${rt_gen})
target_link_libraries(ferry_registry_test_proto PUBLIC PkgConfig::PROTOBUFC)

ferry_test(test-registry ${CMAKE_CURRENT_SOURCE_DIR}/unit/test-registry.c ferry_registry)
target_compile_definitions(test-registry PRIVATE REGISTRY_TEST_DESC="${rt_gen}/test.desc")
add_dependencies(test-registry ferry_registry_test_desc)

ferry_test(test-registry-decode ${CMAKE_CURRENT_SOURCE_DIR}/proc/test-registry.c ferry_registry
           ferry_registry_test_proto ferry_test_port PkgConfig::CJSON)
target_compile_definitions(test-registry-decode PRIVATE
  REGISTRY_TEST_DESC="${rt_gen}/test.desc" REGISTRY_TEST_CHANGED_DESC="${rt_gen}/test-changed.desc"
  NODE_PATH="${FERRY_NODE}" FIXTURE_JS="${rt_src}/fixture.js" DECODE_JS="${rt_src}/decode.js")
add_dependencies(test-registry-decode ferry_registry_test_desc)
