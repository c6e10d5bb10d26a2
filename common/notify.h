/* SPDX-License-Identifier: MIT */
/*
 * notify: ferryd's messages to systemd (Type=notify): the sd_notify(3)
 * protocol, sent on a non-blocking socket so that a slow listener never
 * stops the supervisor (READY, RELOADING and STOPPING wait up to a second
 * for room in the listener's queue; STATUS and WATCHDOG are dropped).
 *
 * Every notify_* sender returns as sd_notify() does: a positive number
 * when the message was sent, 0 when $NOTIFY_SOCKET is not set (not run by
 * systemd: nothing to do, not an error), -errno when sending failed. The
 * environment stays as it is: the supervisor keeps notifying for its whole
 * life. Its children must not inherit the socket: see notify_forget().
 *
 * Only ferryd, the main process of the unit, should notify (the unit's
 * NotifyAccess=main makes systemd ignore anyone else anyway).
 */
#ifndef FERRY_COMMON_NOTIFY_H
#define FERRY_COMMON_NOTIFY_H

#include <stdint.h>

#define NOTIFY_STATUS_MAX 512 /* bytes of a STATUS= text; longer ones are cut */

/* notify_ready(): "READY=1", once every stage is up. */
int notify_ready(void);

/*
 * notify_status(): "STATUS=<text>", the line `systemctl status` shows (live
 * rates). The text is cut to NOTIFY_STATUS_MAX - 1 bytes, and newlines in
 * it become spaces, so a status can never add another assignment (e.g. a
 * READY=1 of its own). -EINVAL when fmt is NULL.
 */
int notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* notify_watchdog(): "WATCHDOG=1", at least every notify_watchdog_usec() / 2. */
int notify_watchdog(void);

/*
 * notify_reloading(): "RELOADING=1\nMONOTONIC_USEC=<CLOCK_MONOTONIC in µs>",
 * at the start of a reload (SIGHUP); send notify_ready() when it is done.
 * systemd >= 253 needs MONOTONIC_USEC for Type=notify-reload; older ones
 * ignore it.
 */
int notify_reloading(void);

/* notify_stopping(): "STOPPING=1", at the start of the graceful drain (SIGTERM). */
int notify_stopping(void);

/*
 * notify_watchdog_usec(): the watchdog interval systemd asks for, in µs, or
 * 0 when no watchdog is enabled for this process ($WATCHDOG_USEC unset or
 * invalid, or $WATCHDOG_PID naming another process), as sd_watchdog_enabled()
 * decides.
 */
uint64_t notify_watchdog_usec(void);

/*
 * notify_forget(): unsetenv() NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID,
 * so a process exec'd from here does not inherit ferryd's channel to
 * systemd. ferryd calls it in the child, after fork() and before exec().
 * unsetenv() is not async-signal-safe: that is sound only while ferryd forks
 * from a single thread (it does); a multi-threaded parent would have to
 * build the child's environment before fork() and use execve().
 */
void notify_forget(void);

#endif
