# Legacy envelopes: the tool that makes (and publishes) them, and the tests of opening them.
add_executable(ferry-envelope ${CMAKE_CURRENT_LIST_DIR}/tools/envelope.c)
target_link_libraries(ferry-envelope PRIVATE ferry_envelope ferry_aws ferry_test_legacy)

ferry_test(test-envelope ${CMAKE_CURRENT_LIST_DIR}/unit/test-envelope.c ferry_envelope ferry_aws
           ferry_log ferry_keyring)
