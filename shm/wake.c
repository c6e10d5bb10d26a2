/* SPDX-License-Identifier: MIT */
#include "shm/wake.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/*
 * Shared (not FUTEX_PRIVATE_FLAG) futexes: the word lives in a MAP_SHARED
 * mapping seen by several processes, so the kernel keys it by inode+offset.
 */
static long futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

int shm_wake_sleep(struct shm_wake *w, uint32_t seen, int timeout_ms)
{
	struct timespec ts, *tsp = NULL;
	int r = 0;

	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
		tsp = &ts;
	}
	if (futex(&w->seq, FUTEX_WAIT, seen, tsp) < 0) {
		if (errno == ETIMEDOUT)
			r = -ETIMEDOUT;
		else if (errno == EINTR)
			r = -EINTR;
		/* EAGAIN: seq moved between prepare and sleep, i.e. rung. */
	}
	__atomic_store_n(&w->waiting, 0, __ATOMIC_RELAXED);
	return r;
}

void shm_wake_ring_slow(struct shm_wake *w)
{
	__atomic_fetch_add(&w->seq, 1, __ATOMIC_RELEASE);
	futex(&w->seq, FUTEX_WAKE, INT_MAX, NULL);
}
