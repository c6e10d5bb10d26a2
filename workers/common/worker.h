/* SPDX-License-Identifier: MIT */
/*
 * worker: what every stage process shares, written once: attaching to the
 * segment the supervisor handed down, finding its rings, the loop that
 * reads input records, hands each to the stage, publishes the output and
 * only then commits the input; heartbeats, skipping what an earlier
 * incarnation already wrote downstream, poison records, dead letters, and
 * clean exit on request.
 *
 * A stage is one struct of callbacks (STYLE.md, as Fluent Bit plugins):
 *
 *   static const struct stage_ops decrypt = {
 *           .name = "decrypt", .init = ..., .handle = ..., .fini = ...,
 *   };
 *   int main(int argc, char **argv) { return worker_main(argc, argv, &decrypt); }
 *
 * Command line (given by ferryd): ferry-<stage> --fd N --worker I --config PATH
 */
#ifndef FERRY_WORKERS_WORKER_H
#define FERRY_WORKERS_WORKER_H

#include <signal.h>
#include <stdint.h>

#include "common/config.h"
#include "common/msg.h"
#include "shm/segment.h"

#define WORKER_RINGS_MAX (CONFIG_SHARDS_MAX + 1)

struct worker;

struct stage_ops {
	const char *name;
	/* Once, before the first record. Return 0 or -errno (the process exits 111). */
	int (*init)(struct worker *w);
	/*
	 * One input record (of a record-driven stage). Write what it gives
	 * with worker_emit*(). Return 0, or -errno with *reason set to make it
	 * a dead letter instead (outputs written so far for it are dropped).
	 */
	int (*handle)(struct worker *w, const struct ring_rec *rec, const char **reason);
	/* Stages that are not record-driven (ingest, produce) bring their own loop. */
	int (*run)(struct worker *w);
	/* On SIGHUP, between records: take up what changed (keys, ...). */
	void (*reload)(struct worker *w);
	/* Once, at exit (clean or not). */
	void (*fini)(struct worker *w);
};

struct worker {
	const struct stage_ops *ops;
	struct shm_segment *seg;
	struct shm_worker *cb; /* this stage's control block */
	unsigned index;
	struct ferry_config cfg;

	struct ring in[WORKER_RINGS_MAX]; /* rings this worker reads */
	unsigned n_in;
	struct ring out[WORKER_RINGS_MAX]; /* rings this worker writes */
	unsigned n_out;

	uint64_t done_seq; /* last seq written downstream (skip at or below) */
	void *ctx;	   /* the stage's own state */

	/* the record loop's bookkeeping (worker.c) */
	int pushed_for_current;	    /* outputs of the current input were pushed */
	int have_mark;		    /* done_mark is valid */
	struct ring_mark done_mark; /* input: end of the last record fully handled */

	/* dead-letter logging, at most DL_LOG_PER_SEC lines a second */
	uint64_t dl_window;
	unsigned dl_logged;
	unsigned long dl_suppressed;
};

/* Signals the loops look at (set by handlers; the only globals). */
extern volatile sig_atomic_t worker_stop;   /* SIGUSR1: finish what you hold, exit 0 */
extern volatile sig_atomic_t worker_reload; /* SIGHUP */

/* Parse the command line, attach, call the stage. Returns the exit code. */
int worker_main(int argc, char **argv, const struct stage_ops *ops);

/* Heartbeat: tell the supervisor we are alive (cheap; call often). */
void worker_beat(struct worker *w);

/*
 * Emit one output record of type to out ring o (a record-driven stage
 * calls this from handle()). Waits for space while the stage holds no
 * unpublished output of an earlier input. Returns 0 or -errno
 * (-EMSGSIZE: larger than the ring takes).
 */
int worker_emit(struct worker *w, unsigned o, uint16_t type, uint64_t seq, const void *p,
		uint32_t len);

/* Reserve room for an output of up to len bytes on ring o; finish with worker_push(). */
void *worker_reserve(struct worker *w, unsigned o, uint32_t len);
int worker_push(struct worker *w, unsigned o, uint16_t type, uint64_t seq, uint32_t len);

/*
 * Forward rec (a source message or a dead letter) as a dead letter of this
 * stage with reason on out ring o. A dead letter stays a dead letter: the
 * first stage's reason is kept.
 */
int worker_dead_letter(struct worker *w, unsigned o, const struct ring_rec *rec,
		       const char *reason);

/* The instance is draining and the writer of input ring i has written all it will. */
int worker_upstream_drained(const struct worker *w, unsigned i);

/* Worker kind of this stage as enum shm_worker_kind. */
static inline uint16_t worker_kind(const struct worker *w)
{
	return (uint16_t)w->cb->kind;
}

#endif
