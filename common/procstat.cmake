# procstat: a process's CPU time, resident set and open fds, from /proc.
add_library(ferry_procstat STATIC ${CMAKE_CURRENT_SOURCE_DIR}/procstat.c)
