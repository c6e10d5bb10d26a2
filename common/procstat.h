/* SPDX-License-Identifier: MIT */
/*
 * procstat: what the kernel says of a process's resources, from /proc:
 * CPU time (stat: utime + stime), resident set (statm) and open file
 * descriptors (the entries of /proc/<pid>/fd). ferryd samples its stages
 * with it once a second; tests use it to watch for leaks over long runs.
 */
#ifndef FERRY_COMMON_PROCSTAT_H
#define FERRY_COMMON_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

struct proc_sample {
	uint64_t cpu_ns;    /* user + system CPU time so far */
	uint64_t rss_bytes; /* resident set */
	unsigned open_fds;  /* entries of /proc/<pid>/fd */
};

/*
 * Sample process pid (0: this process) into *ret. Returns 0, -ESRCH (no
 * such process, or a zombie whose files are gone), -EACCES (another
 * user's fd directory), -EBADMSG (a /proc file not as expected) or the
 * -errno of a failed call. Costs three opens and a directory read.
 */
int proc_sample(pid_t pid, struct proc_sample *ret);

/*
 * Parse the text of /proc/<pid>/stat: utime + stime in clock ticks.
 * The command name (field 2) may hold spaces and parentheses: fields are
 * counted from its last ')'. Returns 0 or -EBADMSG.
 */
int proc_stat_ticks(const char *text, uint64_t *ret_ticks);

#endif
