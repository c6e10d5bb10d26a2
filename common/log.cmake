# ferry_log: logging (journal or stderr) and sd_notify, shared by every ferry process.
add_library(ferry_log STATIC ${CMAKE_CURRENT_SOURCE_DIR}/log.c
                             ${CMAKE_CURRENT_SOURCE_DIR}/notify.c)
target_link_libraries(ferry_log PUBLIC PkgConfig::SYSTEMD)
