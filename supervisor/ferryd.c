/* SPDX-License-Identifier: MIT */
/*
 * ferryd: the supervisor. Reads the configuration, makes the instance's
 * shared-memory segment and rings, fork+execs one process per stage
 * (ferry-ingest, ferry-decrypt x shards, ferry-map x shards, ferry-produce)
 * handing each the segment as fd 3, and keeps them running:
 *
 *  - a stage that dies is restarted alone, at least restart_delay_min after
 *    its death, the delay doubling while it keeps dying, capped at
 *    restart_delay_max; its exit status, restarts and poison strikes (deaths
 *    on the same seq) go to its control block;
 *  - a stage whose heartbeat stops for heartbeat_timeout is killed (hung);
 *  - exec failure comes back through a close-on-exec pipe (as s6 does) and
 *    is reported as such, not mistaken for a crash loop;
 *  - `ferryctl restart STAGE|all` (control socket): the stage finishes what
 *    it holds and exits 0, and the binary now on disk is started at once;
 *  - SIGTERM/SIGINT: drain (ingest stops pulling, every stage empties its
 *    input and exits once upstream is drained, produce flushes Kafka and
 *    acks), then exit 0; SIGHUP: reload, passed on to the stages;
 *  - systemd: READY=1 once every stage runs, STATUS= with rates, WATCHDOG=1
 *    only while every stage is healthy, RELOADING=1, STOPPING=1.
 *
 * Exit codes (as s6): 0 drained, 1 drain incomplete, 100 usage or
 * configuration, 111 system error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "common/config.h"
#include "common/dlq.h"
#include "common/log.h"
#include "common/msg.h"
#include "common/notify.h"
#include "common/procstat.h"
#include "common/time.h"
#include "shm/segment.h"
#include "supervisor/metrics.h"

#define EXIT_DRAIN  1
#define EXIT_USAGE  100
#define EXIT_SYSTEM 111
#define STAGES_MAX  (2 + 2 * CONFIG_SHARDS_MAX)
#define TICK_MS	    100
#define MS	    1000000ull
#define DEATHS_KEPT 8 /* death times kept per stage, for the crash-loop check */

struct stage {
	char exe[PATH_MAX];
	unsigned index; /* worker index in the segment */
	pid_t pid;
	int hot;		      /* asked to exit for a hot restart */
	uint64_t start_at;	      /* when to start it (0: not scheduled) */
	uint64_t delay_ms;	      /* current restart delay */
	uint64_t started;	      /* when this incarnation started */
	uint64_t deaths[DEATHS_KEPT]; /* when it died (not clean exits), a ring */
	unsigned n_deaths;	      /* deaths ever; the next goes to n_deaths % DEATHS_KEPT */
};

struct sup {
	struct ferry_config cfg;
	const char *config_path;
	struct shm_segment *seg;
	struct stage st[STAGES_MAX];
	unsigned n;
	int sigfd;
	int ctlfd;
	int draining;
	uint64_t drain_deadline;
	int ready;
	int all_next; /* `restart all`: next stage to restart, -1: none */
	uint64_t last_status;
	uint64_t last_watchdog;
	uint64_t last_in, last_out;
	uint64_t last_sample;		/* of the stages' /proc figures */
	struct metrics_server *metrics; /* [ferry] metrics_listen, NULL: off */
	unsigned recent[STAGES_MAX];	/* deaths in the last METRICS_LOOP_WINDOW_S, per stage */
	struct proc_sample self;	/* ferryd's own figures */
};

static struct shm_worker *cb(struct sup *s, struct stage *st)
{
	return &s->seg->workers[st->index];
}

static void set_state(struct sup *s, struct stage *st, uint32_t state)
{
	__atomic_store_n(&cb(s, st)->state, state, __ATOMIC_RELEASE);
}

/* --- topology ---------------------------------------------------------- */

/*
 * ingest's sources in the order ingest numbers them: the SQS queues, the
 * Pub/Sub subscriptions, then the replay file; and the in-flight table,
 * needed only when a source acknowledges.
 */
static int build_sources(struct sup *s, struct shm_spec *spec, char *err, size_t errlen)
{
	const struct ferry_config *c = &s->cfg;
	char spool[PATH_MAX];
	/* The dead-letter replay spool (common/dlq.h): a source, and the in-flight table. */
	int dlq = dlq_spool_dir(c, spool, sizeof(spool)) > 0;
	size_t n = c->sqs_queues.n + c->pubsub_subs.n + (c->replay_file[0] ? 1 : 0) + dlq, i, k = 0;
	const char **names = calloc(n ? n : 1, sizeof(*names));
	uint32_t *kinds = calloc(n ? n : 1, sizeof(*kinds));
	int r = -ENOMEM;

	if (!names || !kinds) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < c->sqs_queues.n; i++, k++) {
		names[k] = c->sqs_queues.v[i];
		kinds[k] = MSG_SOURCE_SQS;
	}
	for (i = 0; i < c->pubsub_subs.n; i++, k++) {
		names[k] = c->pubsub_subs.v[i];
		kinds[k] = MSG_SOURCE_PUBSUB;
	}
	if (c->replay_file[0]) {
		names[k] = c->replay_file;
		kinds[k++] = MSG_SOURCE_REPLAY;
	}
	if (dlq) {
		names[k] = spool;
		kinds[k] = MSG_SOURCE_DLQ;
	}
	spec->n_sources = (unsigned)n;
	spec->source_names = names;
	spec->source_kinds = kinds;
	spec->inflight_slots = c->sqs_queues.n + c->pubsub_subs.n || dlq ? c->max_inflight : 0;
	r = shm_segment_create(spec, SHM_CREATE_REPLACE, &s->seg, err, errlen);
out:
	free(names);
	free(kinds);
	return r;
}

static int build_segment(struct sup *s, char *err, size_t errlen)
{
	unsigned S = s->cfg.shards, nw = 2 + 2 * S, nr = 3 * S + 1, i;
	struct shm_worker_spec w[STAGES_MAX];
	struct shm_ring_spec r[3 * CONFIG_SHARDS_MAX + 1];
	static char names[STAGES_MAX][SHM_WORKER_NAME_MAX];
	static char rnames[3 * CONFIG_SHARDS_MAX + 1][RING_NAME_MAX];
	struct shm_spec spec = {s->cfg.instance, nw, w, nr, r};

	w[0] = (struct shm_worker_spec){"ingest", SHM_WORKER_INGEST, 0};
	for (i = 0; i < S; i++) {
		snprintf(names[1 + i], sizeof(names[0]), "decrypt.%hhu", (unsigned char)i);
		snprintf(names[1 + S + i], sizeof(names[0]), "map.%hhu", (unsigned char)i);
		w[1 + i] = (struct shm_worker_spec){names[1 + i], SHM_WORKER_DECRYPT, i};
		w[1 + S + i] = (struct shm_worker_spec){names[1 + S + i], SHM_WORKER_MAP, i};
	}
	w[nw - 1] = (struct shm_worker_spec){"produce", SHM_WORKER_PRODUCE, 0};
	/* Ingest's output rings in shard order, then the rest. */
	for (i = 0; i < S; i++) {
		snprintf(rnames[i], RING_NAME_MAX, "ingest>decrypt.%hhu", (unsigned char)i);
		snprintf(rnames[S + i], RING_NAME_MAX, "decrypt.%hhu>map.%hhu", (unsigned char)i,
			 (unsigned char)i);
		snprintf(rnames[2 * S + i], RING_NAME_MAX, "map.%hhu>produce", (unsigned char)i);
		r[i] = (struct shm_ring_spec){rnames[i], s->cfg.ring_size, 0, (int)(1 + i)};
		r[S + i] = (struct shm_ring_spec){rnames[S + i], s->cfg.ring_size, (int)(1 + i),
						  (int)(1 + S + i)};
		r[2 * S + i] = (struct shm_ring_spec){rnames[2 * S + i], s->cfg.ring_size,
						      (int)(1 + S + i), (int)(nw - 1)};
	}
	r[3 * S] = (struct shm_ring_spec){"acks", s->cfg.ack_ring_size, (int)(nw - 1), 0};
	return build_sources(s, &spec, err, errlen);
}

static int stage_paths(struct sup *s)
{
	char self[PATH_MAX], dir[PATH_MAX];
	static const char *exe[] = {
		[SHM_WORKER_INGEST] = "ferry-ingest",
		[SHM_WORKER_DECRYPT] = "ferry-decrypt",
		[SHM_WORKER_MAP] = "ferry-map",
		[SHM_WORKER_PRODUCE] = "ferry-produce",
	};
	ssize_t n;

	if (s->cfg.stage_dir[0]) {
		snprintf(dir, sizeof(dir), "%s", s->cfg.stage_dir);
	} else {
		char probe[PATH_MAX + 32];

		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n < 0)
			return -errno;
		self[n] = 0;
		/* Beside ferryd (the build tree), else ../libexec/ferry (installed). */
		snprintf(dir, sizeof(dir), "%s", dirname(self));
		snprintf(probe, sizeof(probe), "%s/ferry-ingest", dir);
		if (access(probe, X_OK) < 0) {
			snprintf(probe, sizeof(probe), "%s/../libexec/ferry", dir);
			if (access(probe, X_OK) == 0)
				snprintf(dir, sizeof(dir), "%.*s", (int)sizeof(dir) - 1, probe);
		}
	}
	s->n = s->seg->hdr->n_workers;
	for (unsigned i = 0; i < s->n; i++) {
		struct stage *st = &s->st[i];

		st->index = i;
		st->delay_ms = s->cfg.restart_delay_min_ms;
		if ((size_t)snprintf(st->exe, sizeof(st->exe), "%s/%s", dir,
				     exe[s->seg->workers[i].kind]) >= sizeof(st->exe))
			return -ENAMETOOLONG;
	}
	return 0;
}

/* --- processes --------------------------------------------------------- */

/*
 * fork+exec one stage with the segment as fd 3. An exec failure comes
 * back as an errno through a close-on-exec pipe. Returns 0 or -errno.
 */
static int spawn(struct sup *s, struct stage *st)
{
	char idx[16];
	char *argv[] = {st->exe, "--fd", "3", "--worker", idx, "--config", (char *)s->config_path,
			NULL};
	int pfd[2], e = 0;
	ssize_t n;
	pid_t pid;

	snprintf(idx, sizeof(idx), "%u", st->index);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		e = errno;
		close(pfd[0]);
		close(pfd[1]);
		return -e;
	}
	if (pid == 0) {
		sigset_t all;

		notify_forget();
		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		if (s->seg->fd == 3)
			fcntl(3, F_SETFD, 0);
		else if (dup2(s->seg->fd, 3) < 0)
			e = errno;
		if (!e) {
			execv(st->exe, argv);
			e = errno;
		}
		if (write(pfd[1], &e, sizeof(e)) < 0)
			_exit(126);
		_exit(127);
	}
	close(pfd[1]);
	do
		n = read(pfd[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n == sizeof(e)) {
		waitpid(pid, NULL, 0);
		return -e;
	}
	st->pid = pid;
	st->started = now_ns();
	st->start_at = 0;
	cb(s, st)->pid = pid;
	cb(s, st)->started_ns = st->started;
	/* The /proc figures are the current process's: a new pid starts from 0. */
	__atomic_store_n(&cb(s, st)->cpu_ns, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cb(s, st)->rss_bytes, 0, __ATOMIC_RELAXED);
	set_state(s, st, SHM_SSTATE_UP);
	return 0;
}

static void start(struct sup *s, struct stage *st)
{
	struct shm_worker *c = cb(s, st);
	int r = spawn(s, st);

	if (r == 0) {
		log_info("%s started, pid %d", c->name, st->pid);
		return;
	}
	/* Retry later, at the slowest pace: it will not fix itself soon. */
	log_err("%s: cannot start %s: %s", c->name, st->exe, strerror(-r));
	set_state(s, st, SHM_SSTATE_FAILED);
	st->start_at = now_ns() + s->cfg.restart_delay_max_ms * MS;
}

static void describe_exit(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
}

static void reaped(struct sup *s, struct stage *st, int status)
{
	struct shm_worker *c = cb(s, st);
	uint64_t now = now_ns(), seq = __atomic_load_n(&c->current_seq, __ATOMIC_RELAXED);
	int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	char how[64];

	st->pid = 0;
	c->pid = 0;
	__atomic_store_n(&c->cpu_ns, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&c->rss_bytes, 0, __ATOMIC_RELAXED);
	c->last_exit = status;
	c->last_exit_ns = now;
	describe_exit(status, how, sizeof(how));
	if (!clean) {
		/* Kept for /healthz's crash-loop check. */
		st->deaths[st->n_deaths++ % DEATHS_KEPT] = now;
		/* Poison strikes: deaths in a row on the same record. */
		if (seq && seq == c->strike_seq) {
			c->strikes++;
		} else {
			c->strike_seq = seq;
			c->strikes = seq ? 1 : 0;
		}
	}
	if (clean && s->draining && !st->hot) {
		log_info("%s drained and exited", c->name);
		set_state(s, st, SHM_SSTATE_DOWN);
		return;
	}
	c->restarts++;
	if (clean && st->hot) {
		st->hot = 0;
		log_info("%s exited for its restart; starting %s", c->name, st->exe);
		start(s, st);
		return;
	}
	st->hot = 0;
	/* The delay doubles while it keeps dying; a long good run resets it. */
	if (now - st->started > 2 * s->cfg.restart_delay_max_ms * MS)
		st->delay_ms = s->cfg.restart_delay_min_ms;
	log_fields(LOG_WARNING, (struct log_field[]){{"STAGE_DIED", c->name}}, 1,
		   "%s %s%s; restart in %" PRIu64 " ms (restart %u)", c->name, how,
		   seq ? " while on a record" : "", st->delay_ms, c->restarts);
	if (c->strikes > 1)
		log_warning("%s: %u deaths on seq %" PRIu64 " (dead-lettered at %u)", c->name,
			    c->strikes, c->strike_seq, s->cfg.poison_strikes);
	set_state(s, st, SHM_SSTATE_BACKOFF);
	st->start_at = now + st->delay_ms * MS;
	st->delay_ms = st->delay_ms * 2 > s->cfg.restart_delay_max_ms ? s->cfg.restart_delay_max_ms
								      : st->delay_ms * 2;
}

static void reap(struct sup *s)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (unsigned i = 0; i < s->n; i++)
			if (s->st[i].pid == pid)
				reaped(s, &s->st[i], status);
}

static struct stage *find(struct sup *s, const char *name)
{
	for (unsigned i = 0; i < s->n; i++)
		if (!strcmp(cb(s, &s->st[i])->name, name))
			return &s->st[i];
	return NULL;
}

/* Ask a stage to finish what it holds and exit, to start its binary anew. */
static void hot_restart(struct sup *s, struct stage *st)
{
	if (!st->pid) {
		st->start_at = now_ns(); /* down or backing off: start it now */
		return;
	}
	st->hot = 1;
	set_state(s, st, SHM_SSTATE_RESTARTING);
	kill(st->pid, SIGUSR1);
}

/* --- control socket ----------------------------------------------------- */

static int control_open(struct sup *s)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(s->cfg.control_socket) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, s->cfg.control_socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(a.sun_path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || chmod(a.sun_path, 0600) < 0 ||
	    listen(fd, 8) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	snprintf(s->seg->hdr->control_socket, sizeof(s->seg->hdr->control_socket), "%s",
		 a.sun_path);
	s->ctlfd = fd;
	return 0;
}

static void control_reply(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void control_reply(int fd, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0 && write(fd, buf, (size_t)n) < 0)
		return;
}

static void control_accept(struct sup *s)
{
	char line[128], *nl;
	struct pollfd p;
	ssize_t n;
	int fd = accept4(s->ctlfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	p = (struct pollfd){.fd = fd, .events = POLLIN};
	/* One short line; a silent client gets a second, not the supervisor. */
	if (poll(&p, 1, 1000) <= 0 || (n = read(fd, line, sizeof(line) - 1)) <= 0) {
		close(fd);
		return;
	}
	line[n] = 0;
	nl = strchr(line, '\n');
	if (nl)
		*nl = 0;
	if (!strncmp(line, "restart ", 8)) {
		const char *name = line + 8;
		struct stage *st = find(s, name);

		if (s->draining) {
			control_reply(fd, "error: draining, no restarts\n");
		} else if (!strcmp(name, "all")) {
			s->all_next = 0;
			control_reply(fd, "ok: restarting all %u stages one by one\n", s->n);
		} else if (st) {
			hot_restart(s, st);
			control_reply(fd, "ok: restarting %s\n", name);
		} else {
			control_reply(fd, "error: no stage '%s'\n", name);
		}
	} else {
		control_reply(fd, "error: unknown command '%s' (try: restart STAGE|all)\n", line);
	}
	close(fd);
}

/* --- periodic work ------------------------------------------------------ */

/* now - then, 0 if then is later (clocks read in another order). */
static uint64_t since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

static int healthy(struct sup *s, struct stage *st, uint64_t now)
{
	struct shm_worker *c = cb(s, st);
	uint64_t hb = __atomic_load_n(&c->heartbeat_ns, __ATOMIC_RELAXED);

	return st->pid && __atomic_load_n(&c->wstate, __ATOMIC_ACQUIRE) >= SHM_WSTATE_RUNNING &&
	       hb >= st->started && since(now, hb) < s->cfg.heartbeat_timeout_ms * MS;
}

/*
 * About once a second: each running stage's CPU time and resident set
 * into its control block (ferryctl and /metrics show them), ferryd's own
 * figures, and each stage's deaths within the crash-loop window.
 */
static void sample_stages(struct sup *s, uint64_t now)
{
	if (now - s->last_sample < 1000 * MS)
		return;
	s->last_sample = now;
	for (unsigned i = 0; i < s->n; i++) {
		struct stage *st = &s->st[i];
		struct shm_worker *c = cb(s, st);
		struct proc_sample ps;
		unsigned recent = 0;

		for (unsigned k = 0; k < DEATHS_KEPT && k < st->n_deaths; k++)
			recent += since(now, st->deaths[k]) < METRICS_LOOP_WINDOW_S * 1000 * MS;
		s->recent[i] = recent;
		if (!st->pid || proc_sample(st->pid, &ps) < 0)
			continue; /* gone meanwhile: reaped soon, reset then */
		__atomic_store_n(&c->cpu_ns, ps.cpu_ns, __ATOMIC_RELAXED);
		__atomic_store_n(&c->rss_bytes, ps.rss_bytes, __ATOMIC_RELAXED);
	}
	if (proc_sample(0, &s->self) < 0)
		memset(&s->self, 0, sizeof(s->self));
}

static void tick(struct sup *s)
{
	uint64_t now = now_ns(), in = 0, out = 0;
	int all_healthy = 1;

	sample_stages(s, now);

	for (unsigned i = 0; i < s->n; i++) {
		struct stage *st = &s->st[i];
		struct shm_worker *c = cb(s, st);
		uint64_t hb = __atomic_load_n(&c->heartbeat_ns, __ATOMIC_RELAXED);

		if (!st->pid && st->start_at && now >= st->start_at) {
			start(s, st);
			all_healthy = 0;
			continue;
		}
		/* Hung: alive and silent for the timeout (counted from its start). */
		if (st->pid && since(now, hb > st->started ? hb : st->started) >
				       s->cfg.heartbeat_timeout_ms * MS) {
			log_err("%s (pid %d) sent no heartbeat for %" PRIu64 " ms: killing it",
				c->name, st->pid, s->cfg.heartbeat_timeout_ms);
			kill(st->pid, SIGKILL);
			st->started = now; /* once */
		}
		if (!healthy(s, st, now))
			all_healthy = 0;
		if (c->kind == SHM_WORKER_INGEST)
			in = c->records_out;
		if (c->kind == SHM_WORKER_PRODUCE)
			out = c->records_out;
	}
	/* `restart all`: one by one, the next once the last runs again. */
	if (s->all_next >= 0) {
		struct stage *prev = s->all_next > 0 ? &s->st[s->all_next - 1] : NULL;

		if (!prev || (!prev->hot && healthy(s, prev, now))) {
			if ((unsigned)s->all_next == s->n)
				s->all_next = -1;
			else
				hot_restart(s, &s->st[s->all_next++]);
		}
	}
	if (!s->ready && !s->draining && all_healthy) {
		s->ready = 1;
		notify_ready();
		log_info("all %u stages running", s->n);
	}
	if (now - s->last_status >= 1000 * MS) {
		double secs = (double)(now - s->last_status) / 1e9;

		notify_status("%s: %.0f msg/s in, %.0f records/s to Kafka, %" PRIu64 " in, %" PRIu64
			      " produced%s",
			      s->draining ? "draining" : (all_healthy ? "running" : "degraded"),
			      (double)(in - s->last_in) / secs, (double)(out - s->last_out) / secs,
			      in, out, all_healthy ? "" : " (a stage is down)");
		s->last_status = now;
		s->last_in = in;
		s->last_out = out;
	}
	if (all_healthy && notify_watchdog_usec() &&
	    now - s->last_watchdog >= notify_watchdog_usec() * 1000 / 2) {
		notify_watchdog();
		s->last_watchdog = now;
	}
}

/* What /metrics and /healthz show, as of now. */
static void metrics_view(void *arg, struct metrics_view *v)
{
	struct sup *s = arg;

	*v = (struct metrics_view){
		.seg = s->seg,
		.now = now_ns(),
		.heartbeat_timeout_ns = s->cfg.heartbeat_timeout_ms * MS,
		.recent_deaths = s->recent,
		.draining = s->draining,
		.self = &s->self,
	};
}

static void drain(struct sup *s)
{
	if (s->draining)
		return;
	s->draining = 1;
	s->all_next = -1;
	s->drain_deadline = now_ns() + (s->cfg.flush_timeout_ms + 30000) * MS;
	notify_stopping();
	log_info("draining: stop pulling, empty the rings, flush Kafka, ack");
	__atomic_store_n(&s->seg->hdr->state, SHM_ISTATE_DRAINING, __ATOMIC_RELEASE);
	/* Wake every sleeper so it sees the new state now. */
	for (unsigned i = 0; i < s->n; i++)
		shm_wake_ring_slow(&cb(s, &s->st[i])->wake);
}

static int list_differs(const struct config_list *a, const struct config_list *b)
{
	if (a->n != b->n)
		return 1;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return 1;
	return 0;
}

/*
 * The keys a reload cannot apply, because the segment, ferryd's sockets or
 * ingest's source table were laid out from them at start: their names, into
 * buf ("" when none changed). Returns whether a queue or subscription
 * changed: ingest refuses to start with sources other than the segment's,
 * so it cannot start again (crash, `ferryctl restart`) until ferryd restarts.
 */
static int restart_only(const struct ferry_config *a, const struct ferry_config *b, char *buf,
			size_t len)
{
	char spool_a[PATH_MAX], spool_b[PATH_MAX];
	int has_a = dlq_spool_dir(a, spool_a, sizeof(spool_a)) > 0,
	    has_b = dlq_spool_dir(b, spool_b, sizeof(spool_b)) > 0;
	const struct {
		int changed;
		const char *name;
		int source;
	} keys[] = {
		{strcmp(a->instance, b->instance) != 0, "[ferry] instance", 0},
		{a->shards != b->shards, "[ferry] shards", 0},
		{a->ring_size != b->ring_size, "[ferry] ring_size", 0},
		{a->ack_ring_size != b->ack_ring_size, "[ferry] ack_ring_size", 0},
		{strcmp(a->control_socket, b->control_socket) != 0, "[ferry] control_socket", 0},
		{strcmp(a->metrics_listen, b->metrics_listen) != 0, "[ferry] metrics_listen", 0},
		{a->max_inflight != b->max_inflight, "[ingest] max_inflight", 0},
		{strcmp(a->replay_file, b->replay_file) != 0, "[ingest] replay_file", 0},
		{has_a != has_b || (has_a && strcmp(spool_a, spool_b)), "[ingest] dlq_spool", 0},
		{list_differs(&a->sqs_queues, &b->sqs_queues), "[sqs] queue/queues_file", 1},
		{list_differs(&a->pubsub_subs, &b->pubsub_subs),
		 "[pubsub] subscription/subscriptions_file", 1},
	};
	size_t used = 0;
	int source = 0;

	buf[0] = 0;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if (!keys[i].changed)
			continue;
		source |= keys[i].source;
		if (used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
						 keys[i].name);
	}
	return source;
}

static void reload(struct sup *s)
{
	struct ferry_config fresh;
	char err[512];

	notify_reloading();
	if (config_load(s->config_path, &fresh, err, sizeof(err)) < 0 ||
	    config_check_files(&fresh, err, sizeof(err)) < 0) {
		log_err("reload refused, keeping the running configuration: %s", err);
	} else {
		char keys[512];
		int sources = restart_only(&s->cfg, &fresh, keys, sizeof(keys));

		if (keys[0])
			log_warning("changed, but taken up only by a restart of ferryd: %s%s", keys,
				    sources ? "; until then ingest cannot start again (its sources "
					      "differ from the running ones): restart ferryd soon"
					    : "");
		s->cfg.heartbeat_timeout_ms = fresh.heartbeat_timeout_ms;
		s->cfg.restart_delay_min_ms = fresh.restart_delay_min_ms;
		s->cfg.restart_delay_max_ms = fresh.restart_delay_max_ms;
		s->cfg.poison_strikes = fresh.poison_strikes;
		for (unsigned i = 0; i < s->n; i++)
			if (s->st[i].pid)
				kill(s->st[i].pid, SIGHUP);
		log_info("configuration reloaded");
	}
	config_free(&fresh);
	notify_ready();
}

static int live(struct sup *s)
{
	unsigned n = 0;

	/* A stage that cannot be exec'd holds nothing: draining does not wait for it. */
	for (unsigned i = 0; i < s->n; i++)
		n += s->st[i].pid != 0 ||
		     (s->st[i].start_at != 0 && cb(s, &s->st[i])->state != SHM_SSTATE_FAILED);
	return (int)n;
}

static int loop(struct sup *s)
{
	for (;;) {
		struct pollfd p[2 + 1 + METRICS_CONNS_MAX] = {{.fd = s->sigfd, .events = POLLIN},
							      {.fd = s->ctlfd, .events = POLLIN}};
		unsigned nm = metrics_server_pollfds(s->metrics, p + 2, 1 + METRICS_CONNS_MAX);
		struct signalfd_siginfo si;

		if (poll(p, 2 + nm, TICK_MS) < 0 && errno != EINTR)
			return EXIT_SYSTEM;
		while (read(s->sigfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
				drain(s);
			else if (si.ssi_signo == SIGHUP)
				reload(s);
		}
		reap(s);
		if (p[1].revents & POLLIN)
			control_accept(s);
		/* Never blocks: a slow client gets its deadline, not the supervisor. */
		metrics_server_run(s->metrics, p + 2, nm, now_ns());
		if (s->draining) {
			if (!live(s))
				return 0;
			if (now_ns() > s->drain_deadline) {
				log_err("drain incomplete after %" PRIu64
					" ms: killing what is left",
					s->cfg.flush_timeout_ms + 30000);
				for (unsigned i = 0; i < s->n; i++)
					if (s->st[i].pid)
						kill(s->st[i].pid, SIGKILL);
				return EXIT_DRAIN;
			}
		}
		tick(s);
	}
}

/*
 * One ferryd per instance: a leftover segment is replaced only when the
 * supervisor that made it is gone. Returns 0 or -EEXIST (logged).
 */
static int instance_free(const char *instance)
{
	struct shm_segment *old = NULL;
	char comm[64] = "", path[64];
	pid_t pid;
	FILE *f;

	if (shm_segment_open(instance, SHM_RDONLY, &old, NULL, 0) < 0)
		return 0; /* none, or not readable as ours: replaced below */
	pid = old->hdr->supervisor_pid;
	shm_segment_close(old);
	if (pid <= 0 || pid == getpid() || kill(pid, 0) < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "r");
	if (f) {
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = 0;
		fclose(f);
	}
	if (strncmp(comm, "ferryd", 6))
		return 0; /* that pid is something else now */
	log_err("instance %s is already run by ferryd pid %d; give this one another instance name",
		instance, (int)pid);
	return -EEXIST;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: ferryd [-c CONFIG]\n"
		   "  -c, --config PATH   configuration (default /etc/ferry/ferry.conf)\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct sup s = {.sigfd = -1, .ctlfd = -1, .all_next = -1};
	char err[512], path[PATH_MAX];
	const char *config = "/etc/ferry/ferry.conf";
	sigset_t sigs;
	int c, r;

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	log_open("ferryd");
	if (config_load(config, &s.cfg, err, sizeof(err)) < 0 ||
	    config_check_files(&s.cfg, err, sizeof(err)) < 0) {
		log_err("%s", err);
		config_free(&s.cfg);
		return EXIT_USAGE;
	}
	/* Stages get the same file; make its path absolute for them. */
	s.config_path = realpath(config, path) ? path : config;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGCHLD);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	s.sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);

	r = instance_free(s.cfg.instance);
	if (r < 0) {
		r = EXIT_SYSTEM;
		goto out;
	}
	r = build_segment(&s, err, sizeof(err));
	if (r < 0) {
		log_err("%s", err);
		r = EXIT_SYSTEM;
		goto out;
	}
	r = stage_paths(&s);
	if (r == 0)
		r = control_open(&s);
	if (r < 0 || s.sigfd < 0) {
		log_err("cannot set up: %s", strerror(r < 0 ? -r : errno));
		r = EXIT_SYSTEM;
		goto out;
	}
	if (s.cfg.metrics_listen[0]) {
		s.metrics = metrics_server_new(s.cfg.metrics_listen, metrics_view, &s, err,
					       sizeof(err));
		if (!s.metrics) {
			log_err("cannot serve metrics: %s", err);
			r = EXIT_SYSTEM;
			goto out;
		}
		log_info("metrics on http://%s/metrics, health on /healthz", s.cfg.metrics_listen);
	}
	log_info("instance %s: %u shards, rings of %" PRIu64 " KiB, segment %s, control %s",
		 s.cfg.instance, s.cfg.shards, s.cfg.ring_size >> 10, s.seg->path,
		 s.cfg.control_socket);
	for (unsigned i = 0; i < s.n; i++)
		start(&s, &s.st[i]);
	r = loop(&s);
	log_info("exit %d", r);
out:
	metrics_server_free(s.metrics);
	if (s.ctlfd >= 0) {
		close(s.ctlfd);
		unlink(s.cfg.control_socket);
	}
	if (s.seg) {
		shm_segment_unlink(s.cfg.instance);
		shm_segment_close(s.seg);
	}
	config_free(&s.cfg);
	return r;
}
