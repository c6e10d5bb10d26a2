/* SPDX-License-Identifier: MIT */
#include "workers/common/worker.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <syslog.h>
#include <unistd.h>

#include "common/log.h"
#include "common/time.h"

#define EXIT_USAGE     100
#define EXIT_SYSTEM    111
#define BATCH	       64
#define WAIT_MS	       250 /* longest sleep between heartbeats */
#define DL_LOG_PER_SEC 10  /* dead letters logged one by one per second */

volatile sig_atomic_t worker_stop;
volatile sig_atomic_t worker_reload;

static void on_stop(int sig)
{
	(void)sig;
	worker_stop = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	worker_reload = 1;
}

static void signals(void)
{
	struct sigaction sa = {.sa_handler = on_stop};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	/* Ctrl-C reaches the whole process group: ferryd decides, we drain. */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
}

void worker_beat(struct worker *w)
{
	__atomic_store_n(&w->cb->heartbeat_ns, now_ns(), __ATOMIC_RELAXED);
}

int worker_upstream_drained(const struct worker *w, unsigned i)
{
	const struct ring_shared *sh = w->in[i].sh;
	const struct shm_worker *up;

	if (__atomic_load_n(&w->seg->hdr->state, __ATOMIC_ACQUIRE) != SHM_ISTATE_DRAINING)
		return 0;
	if (sh->writer_worker < 0)
		return 1;
	up = &w->seg->workers[sh->writer_worker];
	return __atomic_load_n(&up->wstate, __ATOMIC_ACQUIRE) == SHM_WSTATE_DRAINED;
}

int worker_dead_letter(struct worker *w, unsigned o, const struct ring_rec *rec, const char *reason)
{
	struct msg_source_view m;
	struct msg_bytes tenant = {"", 0};
	char seq[24], ten[128];
	uint64_t now;
	uint32_t len;
	void *p;

	if (rec->type == MSG_REC_DEAD) /* keep the first stage's reason */
		return worker_emit(w, o, MSG_REC_DEAD, rec->seq, rec->data, rec->len);
	len = msg_dead_size((uint32_t)strnlen(reason, UINT16_MAX), rec->len);
	p = worker_reserve(w, o, len);
	if (!p)
		return -errno;
	if (msg_dead_encode(p, len, worker_kind(w), reason, rec->data, rec->len) < 0)
		return -ENOBUFS;
	__atomic_fetch_add(&w->cb->dead_letters, 1, __ATOMIC_RELAXED);
	/* Who and what, never the payload: it may be plaintext. */
	if (msg_source_decode(rec->data, rec->len, &m) == 0)
		msg_kv_find(m.attrs, w->cfg.tenant_attribute, &tenant);
	snprintf(seq, sizeof(seq), "%llu", (unsigned long long)rec->seq);
	snprintf(ten, sizeof(ten), "%.*s", (int)(tenant.len < 127 ? tenant.len : 127),
		 (const char *)tenant.p);
	/* A tenant with broken data must not flood the journal: a few lines a second. */
	now = now_ns();
	if (now - w->dl_window > 1000000000ull) {
		if (w->dl_suppressed)
			log_warning(
				"%lu more dead letters in the last second (not logged one by one)",
				w->dl_suppressed);
		w->dl_window = now;
		w->dl_logged = 0;
		w->dl_suppressed = 0;
	}
	if (w->dl_logged++ < DL_LOG_PER_SEC)
		log_fields(LOG_WARNING,
			   (struct log_field[]){{"SEQ", seq}, {"TENANT", ten}, {"REASON", reason}},
			   3, "dead letter: %s", reason);
	else
		w->dl_suppressed++;
	return worker_push(w, o, MSG_REC_DEAD, rec->seq, len);
}

void *worker_reserve(struct worker *w, unsigned o, uint32_t len)
{
	struct ring *out = &w->out[o];
	void *p;

	while (!(p = ring_reserve(out, len))) {
		int r;

		if (errno != EAGAIN)
			return NULL;
		/*
		 * Full. Waiting publishes what is pushed, so wait only when
		 * that is whole inputs' worth; else the caller rolls back.
		 */
		if (w->pushed_for_current) {
			errno = ENOSPC;
			return NULL;
		}
		for (unsigned i = 0; i < w->n_out; i++)
			ring_publish(&w->out[i]);
		if (w->have_mark && w->n_in)
			ring_commit_mark(&w->in[0], &w->done_mark);
		worker_beat(w);
		r = ring_wait_space(out, len, WAIT_MS);
		if (r == -EINTR || r == -ETIMEDOUT) {
			if (worker_stop && !w->pushed_for_current) {
				errno = ECANCELED;
				return NULL;
			}
			continue;
		}
		if (r < 0) {
			errno = -r;
			return NULL;
		}
	}
	return p;
}

int worker_push(struct worker *w, unsigned o, uint16_t type, uint64_t seq, uint32_t len)
{
	int r = ring_push(&w->out[o], len, type, 0, seq);

	if (r == 0) {
		w->pushed_for_current = 1;
		__atomic_fetch_add(&w->cb->records_out, 1, __ATOMIC_RELAXED);
	}
	return r;
}

int worker_emit(struct worker *w, unsigned o, uint16_t type, uint64_t seq, const void *p,
		uint32_t len)
{
	void *dst = worker_reserve(w, o, len);

	if (!dst)
		return -errno;
	if (len)
		memcpy(dst, p, len);
	return worker_push(w, o, type, seq, len);
}

static int poisoned(const struct worker *w, uint64_t seq)
{
	const struct shm_worker *cb = w->cb;

	return __atomic_load_n(&cb->strike_seq, __ATOMIC_RELAXED) == seq &&
	       __atomic_load_n(&cb->strikes, __ATOMIC_RELAXED) >= w->cfg.poison_strikes;
}

/* Hand one input record to the stage; a failure becomes a dead letter. */
static int handle_one(struct worker *w, const struct ring_rec *rec)
{
	struct ring *out = &w->out[0];
	struct ring_wmark m;
	const char *reason = NULL;
	char why[96];
	int r, attempt;

	if (poisoned(w, rec->seq)) {
		snprintf(why, sizeof(why), "poison: %s died %u times on this record", w->cb->name,
			 w->cfg.poison_strikes);
		return worker_dead_letter(w, 0, rec, why);
	}
	if (rec->type == MSG_REC_DEAD) /* not ours to handle: pass it on */
		return worker_emit(w, 0, rec->type, rec->seq, rec->data, rec->len);
	for (attempt = 0;; attempt++) {
		ring_wmark(out, &m);
		w->pushed_for_current = 0;
		r = w->ops->handle(w, rec, &reason);
		if (r != -ENOSPC)
			break;
		if (attempt) {
			reason = "outputs larger than the output ring";
			break;
		}
		/* Its outputs did not fit beside others': roll back, wait for room, once. */
		ring_wrewind(out, &m);
		w->pushed_for_current = 0;
		if (!worker_reserve(w, 0, out->max_record))
			return -errno;
	}
	if (r >= 0)
		return r;
	/* Nothing of a record that failed goes downstream. */
	ring_wrewind(out, &m);
	w->pushed_for_current = 0;
	if (r == -ECANCELED) /* asked to stop while waiting for room: not handled */
		return r;
	return worker_dead_letter(w, 0, rec, reason ? reason : strerror(-r));
}

static void flush(struct worker *w)
{
	/* Output first, then the input it came from. */
	for (unsigned i = 0; i < w->n_out; i++)
		ring_publish(&w->out[i]);
	for (unsigned i = 0; i < w->n_in; i++)
		ring_commit(&w->in[i]);
	w->have_mark = 0;
	__atomic_store_n(&w->cb->current_seq, 0, __ATOMIC_RELAXED);
}

/* The loop of a stage with one input ring and one output ring. */
static int run_records(struct worker *w)
{
	struct ring *in = &w->in[0];
	unsigned n = 0;

	if (w->n_in != 1 || w->n_out != 1) {
		log_err("%s needs one input and one output ring, has %u and %u", w->cb->name,
			w->n_in, w->n_out);
		return EXIT_SYSTEM;
	}
	while (!worker_stop) {
		const struct ring_rec *rec;
		int r;

		if (worker_reload) {
			worker_reload = 0;
			if (w->ops->reload)
				w->ops->reload(w);
		}
		rec = ring_read(in);
		if (!rec) {
			if (errno == EBADMSG) {
				log_err("input ring %s is corrupt; stopping", in->sh->name);
				return EXIT_SYSTEM;
			}
			flush(w);
			n = 0;
			worker_beat(w);
			if (worker_upstream_drained(w, 0) && !ring_readable(in))
				break;
			ring_wait_data(in, WAIT_MS);
			continue;
		}
		__atomic_fetch_add(&w->cb->records_in, 1, __ATOMIC_RELAXED);
		if (rec->seq > w->done_seq) {
			__atomic_store_n(&w->cb->current_seq, rec->seq, __ATOMIC_RELAXED);
			r = handle_one(w, rec);
			if (r == -ECANCELED) {
				/* Leave it (and only it) to the next incarnation. */
				ring_publish(&w->out[0]);
				if (w->have_mark)
					ring_commit_mark(in, &w->done_mark);
				return 0;
			}
			if (r < 0) {
				log_err("seq %llu: cannot write output: %s",
					(unsigned long long)rec->seq, strerror(-r));
				return EXIT_SYSTEM;
			}
			w->done_seq = rec->seq;
		}
		ring_mark(in, &w->done_mark);
		w->have_mark = 1;
		w->pushed_for_current = 0;
		if (++n == BATCH) {
			flush(w);
			worker_beat(w);
			n = 0;
		}
	}
	flush(w);
	return 0;
}

static int attach(struct worker *w, int fd, unsigned index, const char *config)
{
	char err[512];
	int r;

	r = shm_segment_attach(fd, 0, &w->seg, err, sizeof(err));
	if (r < 0) {
		log_err("%s", err);
		return r;
	}
	if (index >= w->seg->hdr->n_workers) {
		log_err("worker %u: the segment has %u workers", index, w->seg->hdr->n_workers);
		return -EINVAL;
	}
	w->index = index;
	w->cb = &w->seg->workers[index];
	r = config_load(config, &w->cfg, err, sizeof(err));
	if (r < 0) {
		log_err("%s", err);
		return r;
	}
	for (unsigned i = 0; i < w->seg->hdr->n_rings; i++) {
		struct ring_shared *sh = &w->seg->rings[i];
		const char *why = NULL;

		if (sh->reader_worker == (int32_t)index) {
			if (w->n_in == WORKER_RINGS_MAX)
				return -E2BIG;
			r = shm_segment_ring_attach(w->seg, i, RING_READER, &w->in[w->n_in++],
						    &why);
		} else if (sh->writer_worker == (int32_t)index) {
			if (w->n_out == WORKER_RINGS_MAX)
				return -E2BIG;
			r = shm_segment_ring_attach(w->seg, i, RING_WRITER, &w->out[w->n_out++],
						    &why);
		} else {
			continue;
		}
		if (r < 0) {
			log_err("ring %s: %s", sh->name, why);
			return r;
		}
	}
	if (w->n_out == 1)
		w->done_seq = ring_last_seq(&w->out[0]);
	return 0;
}

static void usage(FILE *f, const char *name)
{
	fprintf(f,
		"usage: ferry-%s --fd N --worker INDEX --config PATH\n"
		"(started by ferryd, which hands down the segment as fd N)\n",
		name);
}

int worker_main(int argc, char **argv, const struct stage_ops *ops)
{
	static const struct option opts[] = {
		{"fd", required_argument, NULL, 'f'},
		{"worker", required_argument, NULL, 'w'},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct worker w = {.ops = ops};
	const char *config = NULL;
	int fd = -1, index = -1, c, r;
	struct rlimit no_core = {0, 0};

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fd = atoi(optarg);
			break;
		case 'w':
			index = atoi(optarg);
			break;
		case 'c':
			config = optarg;
			break;
		case 'h':
			usage(stdout, ops->name);
			return 0;
		default:
			usage(stderr, ops->name);
			return EXIT_USAGE;
		}
	}
	if (fd < 0 || index < 0 || !config) {
		usage(stderr, ops->name);
		return EXIT_USAGE;
	}
	/* Stages may hold keys and plaintext: no core dumps. */
	setrlimit(RLIMIT_CORE, &no_core);
	prctl(PR_SET_DUMPABLE, 0);
	/* If ferryd dies, finish cleanly rather than run unsupervised. */
	prctl(PR_SET_PDEATHSIG, SIGUSR1);
	signals();
	if (getppid() == 1)
		worker_stop = 1;

	log_open(ops->name);
	r = attach(&w, fd, (unsigned)index, config);
	if (r < 0) {
		config_free(&w.cfg);
		shm_segment_close(w.seg);
		return EXIT_SYSTEM;
	}
	log_open(w.cb->name);
	worker_beat(&w);
	__atomic_store_n(&w.cb->wstate, SHM_WSTATE_INIT, __ATOMIC_RELEASE);
	r = ops->init ? ops->init(&w) : 0;
	if (r < 0) {
		log_err("cannot start: %s", strerror(-r));
		r = EXIT_SYSTEM;
		goto out;
	}
	__atomic_store_n(&w.cb->wstate, SHM_WSTATE_RUNNING, __ATOMIC_RELEASE);
	r = ops->run ? ops->run(&w) : run_records(&w);
	if (r == 0 &&
	    __atomic_load_n(&w.seg->hdr->state, __ATOMIC_ACQUIRE) == SHM_ISTATE_DRAINING &&
	    !worker_stop)
		__atomic_store_n(&w.cb->wstate, SHM_WSTATE_DRAINED, __ATOMIC_RELEASE);
out:
	if (ops->fini)
		ops->fini(&w);
	for (unsigned i = 0; i < w.n_in; i++)
		ring_detach(&w.in[i]);
	for (unsigned i = 0; i < w.n_out; i++)
		ring_detach(&w.out[i]);
	config_free(&w.cfg);
	shm_segment_close(w.seg);
	return r;
}
