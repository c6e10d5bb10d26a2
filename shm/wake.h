/* SPDX-License-Identifier: MIT */
/*
 * A wake word: a futex in shared memory that one process sleeps on and
 * others ring. It is an event count: the sleeper snapshots `seq`, raises
 * `waiting`, re-checks its condition, and sleeps only while `seq` is
 * unchanged; a ringer changes something the sleeper checks, then (after a
 * full fence) bumps `seq` and calls futex_wake only if `waiting` is set.
 * So a ringer makes no system call while nobody sleeps, and a sleeper can
 * never miss a ring (Dekker: each side stores, fences, then loads the
 * other's word).
 *
 * Several rings may point at one wake word (a stage with many inputs
 * sleeps on one futex). `waiting` is a flag, not a counter, so that a
 * sleeper that dies while waiting costs at most a few spare wake-ups.
 */
#ifndef FERRY_SHM_WAKE_H
#define FERRY_SHM_WAKE_H

#include <stdint.h>

#include "common/compiler.h"

struct shm_wake {
	uint32_t seq;	  /* futex word, bumped by every ring that finds a sleeper */
	uint32_t waiting; /* 1 while the owner is (about to be) asleep */
	uint8_t pad[FERRY_CACHE_LINE - 8];
};

_Static_assert(sizeof(struct shm_wake) == FERRY_CACHE_LINE, "one line");

/*
 * Announce that the caller is about to sleep on w. Returns the snapshot to
 * pass to shm_wake_sleep(). The caller must re-check its condition after
 * this call and before sleeping (and call shm_wake_cancel() if it holds).
 */
static inline uint32_t shm_wake_prepare(struct shm_wake *w)
{
	uint32_t seen = __atomic_load_n(&w->seq, __ATOMIC_ACQUIRE);

	__atomic_store_n(&w->waiting, 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return seen;
}

/* Withdraw the announcement made by shm_wake_prepare(). */
static inline void shm_wake_cancel(struct shm_wake *w)
{
	__atomic_store_n(&w->waiting, 0, __ATOMIC_RELAXED);
}

/*
 * Sleep until w is rung after the snapshot `seen`, a signal arrives, or
 * timeout_ms passes (negative: no timeout). Clears `waiting` on return.
 * Returns 0 when woken (or already rung), -ETIMEDOUT, or -EINTR.
 */
int shm_wake_sleep(struct shm_wake *w, uint32_t seen, int timeout_ms);

/* Out-of-line part of shm_wake_ring(): bump seq and futex_wake. */
void shm_wake_ring_slow(struct shm_wake *w);

/*
 * Ring w after publishing a change its owner waits for. Issues the full
 * fence itself; makes a system call only when the owner sleeps.
 */
static inline void shm_wake_ring(struct shm_wake *w)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (unlikely(__atomic_load_n(&w->waiting, __ATOMIC_RELAXED)))
		shm_wake_ring_slow(w);
}

#endif
