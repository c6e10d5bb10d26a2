/* SPDX-License-Identifier: MIT */
/*
 * metrics: ferryd's HTTP endpoint ([ferry] metrics_listen = HOST:PORT).
 *
 *   GET /metrics   Prometheus text exposition format 0.0.4: per stage, ring,
 *                  source and tenant, the delivery latency histogram, and
 *                  ferryd's own process figures, all read from the segment
 *   GET /healthz   200 "ok\n", or 503 with one line per problem: a stage not
 *                  up, starting, in backoff or failed, a heartbeat older than
 *                  heartbeat_timeout, a crash loop (METRICS_LOOP_DEATHS deaths
 *                  in METRICS_LOOP_WINDOW_S), the instance draining
 *
 * HEAD is answered like GET without the body; other paths 404, other
 * methods 405. One request per connection (Connection: close).
 *
 * It runs inside ferryd's poll loop and must never stall supervision: the
 * sockets are non-blocking, each connection is a small state machine
 * (read the request, write the answer, close) with a deadline of
 * METRICS_DEADLINE_MS from its accept, and at most METRICS_CONNS_MAX are
 * open at once (more wait in the listen backlog).
 */
#ifndef FERRY_SUPERVISOR_METRICS_H
#define FERRY_SUPERVISOR_METRICS_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "common/procstat.h"
#include "shm/segment.h"

#define METRICS_CONNS_MAX     16
#define METRICS_DEADLINE_MS   2000
#define METRICS_REQUEST_MAX   8192
#define METRICS_LOOP_DEATHS   3	 /* deaths of one stage ... */
#define METRICS_LOOP_WINDOW_S 60 /* ... within this: a crash loop */

/* What /metrics and /healthz are made of: the segment and what only ferryd knows. */
struct metrics_view {
	const struct shm_segment *seg;
	uint64_t now;			/* CLOCK_MONOTONIC ns (heartbeats are on it) */
	uint64_t heartbeat_timeout_ns;	/* [ferry] heartbeat_timeout */
	const unsigned *recent_deaths;	/* per worker: deaths in the last window; NULL: none */
	int draining;			/* SIGTERM received */
	const struct proc_sample *self; /* ferryd's own figures, NULL: not shown */
};

/* Fills *v just before an answer is made (ferryd's state at that moment). */
typedef void (*metrics_view_fn)(void *arg, struct metrics_view *v);

struct metrics_server;

/*
 * Render /metrics for v: the exposition text, malloc'd (the caller frees
 * it), its length in *ret_len. NULL with errno ENOMEM.
 */
char *metrics_render(const struct metrics_view *v, size_t *ret_len);

/*
 * Render /healthz for v: "ok\n", or one line per problem. Returns the
 * number of problems (0: healthy) and the malloc'd text in *ret_text
 * (length *ret_len), or -ENOMEM.
 */
int metrics_health(const struct metrics_view *v, char **ret_text, size_t *ret_len);

/*
 * Listen on listen ("HOST:PORT", as [ferry] metrics_listen takes it; host
 * a name, an IPv4 address or [IPv6]); view is called for each answer.
 * Returns the server, or NULL with errno set and err saying why.
 */
struct metrics_server *metrics_server_new(const char *listen, metrics_view_fn view, void *arg,
					  char *err, size_t errlen);

/* Close the listener and every connection. Accepts NULL. */
void metrics_server_free(struct metrics_server *m);

/* The port it listens on (useful with port 0). */
int metrics_server_port(const struct metrics_server *m);

/*
 * The pollfds to wait on: the listener (while a connection slot is free)
 * and each connection. Fills at most max entries, returns how many.
 */
unsigned metrics_server_pollfds(const struct metrics_server *m, struct pollfd *p, unsigned max);

/*
 * Move every connection on: accept, read, answer, write, close, and close
 * those past their deadline. p/n: the entries metrics_server_pollfds()
 * gave, after poll(). Never blocks. now: CLOCK_MONOTONIC ns.
 */
void metrics_server_run(struct metrics_server *m, const struct pollfd *p, unsigned n, uint64_t now);

#endif
