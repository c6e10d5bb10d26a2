add_library(ferry_msg STATIC ${CMAKE_CURRENT_SOURCE_DIR} / msg.c)
