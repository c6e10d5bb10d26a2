/* SPDX-License-Identifier: MIT */
/* notify: sd_notify(3) messages of ferryd (see notify.h). */
#include "common/notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "common/time.h"

int notify_ready(void)
{
	return sd_notify(0, "READY=1");
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
	return sd_notify(0, buf);
}

int notify_watchdog(void)
{
	return sd_notify(0, "WATCHDOG=1");
}

int notify_reloading(void)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, now_ns() / 1000);
	return sd_notify(0, buf);
}

int notify_stopping(void)
{
	return sd_notify(0, "STOPPING=1");
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
