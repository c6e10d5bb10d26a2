# The map stage: the catalog table, the JSON reader, one mapper per legacy
# type, all in a library that ferry-map, the tests, the fuzzer and the
# benchmark link.
add_library(ferry_catalog STATIC ${CMAKE_CURRENT_LIST_DIR}/catalog.c)
target_link_libraries(ferry_catalog PUBLIC ferry_proto)

file(GLOB FERRY_MAPPER_FILES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/mappers/*.c)
add_library(ferry_mappers STATIC ${CMAKE_CURRENT_LIST_DIR}/mapper.c
            ${CMAKE_CURRENT_LIST_DIR}/ljson.c ${FERRY_MAPPER_FILES})
target_link_libraries(ferry_mappers PUBLIC ferry_catalog)

add_executable(ferry-map ${CMAKE_CURRENT_LIST_DIR}/map.c)
target_link_libraries(ferry-map PRIVATE ferry_worker ferry_mappers)
set_property(GLOBAL PROPERTY FERRY_MAPPERS_SRCS ${CMAKE_CURRENT_LIST_DIR}/catalog.c
             ${CMAKE_CURRENT_LIST_DIR}/mapper.c ${CMAKE_CURRENT_LIST_DIR}/ljson.c
             ${FERRY_MAPPER_FILES})

# The catalog's descriptor set embedded in the binaries that talk to the
# Schema Registry or decode events (ferry-produce, ferryctl): catalog_fds.
set(fds_c ${CMAKE_CURRENT_BINARY_DIR}/catalog-fds.c)
add_custom_command(
  OUTPUT ${fds_c}
  COMMAND ${CMAKE_COMMAND} -DIN=${FERRY_CATALOG_DESC} -DOUT=${fds_c} -P
          ${PROJECT_SOURCE_DIR}/proto/embed.cmake
  DEPENDS ${FERRY_CATALOG_DESC} ${PROJECT_SOURCE_DIR}/proto/embed.cmake
  COMMENT "embed the catalog's descriptor set")
add_library(ferry_catalog_fds STATIC ${fds_c})
