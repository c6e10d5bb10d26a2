# ferry_pubsub: the Pub/Sub REST v1 codec (requests built apart from their transfer, responses parsed).
add_library(ferry_pubsub STATIC ${CMAKE_CURRENT_SOURCE_DIR}/pubsub.c)
target_link_libraries(ferry_pubsub PUBLIC ferry_msg PkgConfig::CURL PkgConfig::CJSON PkgConfig::CRYPTO)
