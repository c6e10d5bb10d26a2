/* SPDX-License-Identifier: MIT */
/* notify: sd_notify(3) messages of ferryd (see notify.h). */
#include "common/notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "common/time.h"

/*
 * Send one message to $NOTIFY_SOCKET without ever blocking the supervisor
 * for long: sd_notify(3) sends on a blocking socket, and a listener that
 * reads slowly (a unix datagram queue holds max_dgram_qlen = 10 messages)
 * would stop ferryd itself. State changes (READY, RELOADING, STOPPING) wait
 * up to a second for room; STATUS and WATCHDOG are dropped when there is
 * none (the next one follows within a second). Returns > 0 sent, 0 when
 * NOTIFY_SOCKET is unset, or -errno.
 */
static int notify_send(const char *msg, int important)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	socklen_t alen;
	size_t plen;
	int fd, r = 1;

	if (!path || !*path)
		return 0;
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(a.sun_path))
		return -EINVAL;
	memcpy(a.sun_path, path, plen);
	if (path[0] == '@')
		a.sun_path[0] = 0; /* abstract namespace */
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	for (int tries = 0;; tries++) {
		if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&a, alen) >= 0)
			break;
		if (errno != EAGAIN || !important || tries == 10) {
			r = -errno;
			break;
		}
		poll(NULL, 0, 100);
	}
	close(fd);
	return r;
}

int notify_ready(void)
{
	return notify_send("READY=1", 1);
}

int notify_status(const char *fmt, ...)
{
	char buf[sizeof("STATUS=") - 1 + NOTIFY_STATUS_MAX];
	const size_t off = sizeof("STATUS=") - 1;
	va_list ap;
	int n;

	if (!fmt)
		return -EINVAL;
	memcpy(buf, "STATUS=", off);
	va_start(ap, fmt);
	n = vsnprintf(buf + off, NOTIFY_STATUS_MAX, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	/* One assignment per line: a newline in the text would start another one. */
	for (char *p = buf + off; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return notify_send(buf, 0);
}

int notify_watchdog(void)
{
	return notify_send("WATCHDOG=1", 0);
}

int notify_reloading(void)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, now_ns() / 1000);
	return notify_send(buf, 1);
}

int notify_stopping(void)
{
	return notify_send("STOPPING=1", 1);
}

uint64_t notify_watchdog_usec(void)
{
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec;
}

void notify_forget(void)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}
