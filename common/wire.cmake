# ferry_wire: the Confluent Protobuf wire format (magic, schema id, message indexes).
add_library(ferry_wire STATIC ${CMAKE_CURRENT_SOURCE_DIR}/wire.c)
