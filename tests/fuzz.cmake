# libFuzzer targets of the parsers that read what others send or write: fuzz-sns (the SQS
# answers and SNS envelopes, common/sqs.c), fuzz-envelope (the legacy envelope, common/envelope.c),
# fuzz-config (ferry.conf, common/config.c). fuzz-map is in map.cmake.
#
# Each is built with clang and -fsanitize=fuzzer,address,undefined, the module's sources compiled
# into it (so they are instrumented too): a normal target when clang builds the tree, else a
# command running clang (clang-14 on Debian 12) apart from the tree's flags. Not in sanitizer
# builds. CI runs each briefly (FERRY_FUZZ_SECONDS) from its seeds in tests/fuzz/<name>/, with
# the dictionary tests/fuzz/<name>.dict; longer runs by hand (README).
find_program(FERRY_CLANG NAMES clang clang-14)
set(FERRY_FUZZ_SECONDS 12 CACHE STRING "Seconds of each fuzz-sns, fuzz-envelope, fuzz-config run in ctest")

# ferry_fuzz(NAME SOURCES src... PKGS PREFIX...): the target fuzz-NAME from tests/fuzz/fuzz-NAME.c,
# seeds in tests/fuzz/NAME/; PKGS are pkg_check_modules prefixes (CJSON ...).
function(ferry_fuzz short)
  cmake_parse_arguments(F "" "" "SOURCES;PKGS" ${ARGN})
  set(name fuzz-${short})
  set(src ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/fuzz/${name}.c)
  set(srcs)
  foreach(s ${F_SOURCES})
    list(APPEND srcs ${CMAKE_SOURCE_DIR}/${s})
  endforeach()
  set(bin ${CMAKE_BINARY_DIR}/bin/${name})
  if(FERRY_SANITIZE)
    return()
  elseif(CMAKE_C_COMPILER_ID MATCHES "Clang")
    add_executable(${name} ${src} ${srcs})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined
                           -fno-sanitize-recover=undefined)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    foreach(p ${F_PKGS})
      target_link_libraries(${name} PRIVATE PkgConfig::${p})
    endforeach()
    set(bin $<TARGET_FILE:${name}>)
  elseif(FERRY_CLANG)
    set(cflags)
    set(ldflags)
    # No depfile from one clang call over several sources: rebuild when any header changes.
    file(GLOB headers CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/common/*.h ${CMAKE_SOURCE_DIR}/shm/*.h
         ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/fuzz/*.h)
    foreach(p ${F_PKGS})
      list(APPEND cflags ${${p}_CFLAGS})
      list(APPEND ldflags ${${p}_LDFLAGS})
    endforeach()
    add_custom_command(
      OUTPUT ${bin}
      COMMAND ${FERRY_CLANG} -std=gnu11 -g -O1 -D_GNU_SOURCE -w
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
              -I${CMAKE_SOURCE_DIR} ${cflags} ${src} ${srcs} ${ldflags} -o ${bin}
      DEPENDS ${src} ${srcs} ${headers}
      COMMENT "clang: ${name}")
    add_custom_target(${name}-build ALL DEPENDS ${bin})
  else()
    return()
  endif()
  add_test(NAME ${name}
           COMMAND sh -c "mkdir -p fuzz-corpus-$2 && exec \"$0\" -max_total_time=$1 -timeout=10 \
-print_final_stats=1 -artifact_prefix=\"$PWD/\" -dict=\"$3.dict\" fuzz-corpus-$2 \"$3\""
                   ${bin} ${FERRY_FUZZ_SECONDS} ${short}
                   ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/fuzz/${short})
  set_tests_properties(${name} PROPERTIES TIMEOUT 120)
endfunction()

ferry_fuzz(sns SOURCES common/sqs.c common/msg.c PKGS CJSON)
ferry_fuzz(envelope SOURCES common/envelope.c PKGS CJSON CRYPTO)
ferry_fuzz(config SOURCES common/config.c PKGS INIH RDKAFKA)
