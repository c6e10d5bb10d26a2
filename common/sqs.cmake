# ferry_sqs: the SQS JSON-protocol codec (request bodies, responses, SNS envelopes); no network.
add_library(ferry_sqs STATIC ${CMAKE_CURRENT_SOURCE_DIR}/sqs.c)
target_link_libraries(ferry_sqs PUBLIC ferry_msg PkgConfig::CJSON)
