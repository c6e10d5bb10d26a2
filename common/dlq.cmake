# dlq: dead-letter replay's selection and spool file (ferryctl replay-dlq, ingest's spool source).
add_library(ferry_dlq STATIC ${CMAKE_CURRENT_SOURCE_DIR}/dlq.c)
target_link_libraries(ferry_dlq PUBLIC ferry_msg ferry_config ferry_envelope)
