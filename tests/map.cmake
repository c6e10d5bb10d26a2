# The catalog and the map stage: mappers, the ring payloads, the fuzzer.
add_library(ferry_test_legacy STATIC ${CMAKE_CURRENT_LIST_DIR}/tools/legacy.c)

ferry_test(test-map ${CMAKE_CURRENT_LIST_DIR}/unit/test-map.c ferry_mappers ferry_test_legacy)
target_compile_definitions(test-map PRIVATE
  LEGACY_DATA_DIR="${CMAKE_CURRENT_LIST_DIR}/data/legacy")
ferry_test(test-msg ${CMAKE_CURRENT_LIST_DIR}/unit/test-msg.c ferry_msg)

# libFuzzer needs clang. With clang as the compiler, a normal target; else
# clang (clang-14 on Debian 12) builds it apart from the tree's flags.
# CI runs it briefly: 20 s from the legacy samples.
find_program(FERRY_CLANG NAMES clang clang-14)
get_property(proto_srcs GLOBAL PROPERTY FERRY_PROTO_SRCS)
get_property(proto_gen GLOBAL PROPERTY FERRY_PROTO_GEN)
get_property(mapper_srcs GLOBAL PROPERTY FERRY_MAPPERS_SRCS)
set(fuzz_bin ${CMAKE_BINARY_DIR}/bin/fuzz-map)
set(fuzz_src ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz-map.c)
if(CMAKE_C_COMPILER_ID MATCHES "Clang" AND NOT FERRY_SANITIZE)
  # The mappers compiled into it, instrumented: linking ferry_mappers would leave them blind.
  add_executable(fuzz-map ${fuzz_src} ${mapper_srcs})
  target_compile_options(fuzz-map PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined)
  target_link_options(fuzz-map PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz-map PRIVATE ferry_proto)
  set(fuzz_bin $<TARGET_FILE:fuzz-map>)
elseif(FERRY_CLANG)
  add_custom_command(
    OUTPUT ${fuzz_bin}
    COMMAND ${FERRY_CLANG} -std=gnu11 -g -O1 -D_GNU_SOURCE -w
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
            -I${CMAKE_SOURCE_DIR} -I${proto_gen} ${fuzz_src} ${mapper_srcs} ${proto_srcs}
            -lprotobuf-c -o ${fuzz_bin}
    DEPENDS ${fuzz_src} ${mapper_srcs} ${proto_srcs}
    COMMENT "clang: the mapper fuzzer")
  add_custom_target(fuzz-map-build ALL DEPENDS ${fuzz_bin})
  add_dependencies(fuzz-map-build ferry_proto)
else()
  set(fuzz_bin)
endif()
# Once per CI run: the plain build runs it (the target has its own ASan and UBSan).
if(fuzz_bin AND NOT FERRY_SANITIZE)
  add_test(NAME fuzz-map
           COMMAND sh -c "mkdir -p fuzz-corpus && exec \"$0\" -max_total_time=20 -timeout=10 \
-print_final_stats=1 fuzz-corpus \"$1\"" ${fuzz_bin} ${CMAKE_CURRENT_LIST_DIR}/data/legacy
           WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(fuzz-map PROPERTIES TIMEOUT 120)
endif()
