/* SPDX-License-Identifier: MIT */
#include "common/procstat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read a small /proc file whole into buf (NUL-terminated). Returns 0 or -errno. */
static int read_small(const char *path, char *buf, size_t len)
{
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	while (got < len - 1) {
		ssize_t n = read(fd, buf + got, len - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			return e == ENOENT ? -ESRCH : -e;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = 0;
	return 0;
}

int proc_stat_ticks(const char *text, uint64_t *ret_ticks)
{
	const char *p = strrchr(text, ')');
	unsigned long long ut, st;

	if (!p || !ret_ticks)
		return -EBADMSG;
	/* After "(comm)": state is field 3; utime and stime are fields 14 and 15. */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -EBADMSG;
	*ret_ticks = (uint64_t)ut + (uint64_t)st;
	return 0;
}

int proc_sample(pid_t pid, struct proc_sample *ret)
{
	char path[64], buf[1024];
	unsigned long long size, resident;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	uint64_t ticks;
	struct dirent *de;
	unsigned fds = 0;
	DIR *d;
	int r;

	if (!ret || pid < 0)
		return -EINVAL;
	if (tck <= 0)
		tck = 100;
	if (page <= 0)
		page = 4096;
	if (pid == 0)
		pid = getpid();
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	r = read_small(path, buf, sizeof(buf));
	if (r < 0)
		return r;
	if (proc_stat_ticks(buf, &ticks) < 0)
		return -EBADMSG;
	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	r = read_small(path, buf, sizeof(buf));
	if (r < 0)
		return r;
	if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return -EBADMSG;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((de = readdir(d)))
		fds += de->d_name[0] != '.';
	closedir(d);
	/* Our own count includes the directory's fd, which is gone now. */
	if (pid == getpid() && fds)
		fds--;
	ret->cpu_ns = ticks * (1000000000ull / (uint64_t)tck);
	ret->rss_bytes = (uint64_t)resident * (uint64_t)page;
	ret->open_fds = fds;
	return 0;
}
