/* SPDX-License-Identifier: MIT */
/*
 * ferryctl: inspect a running ferry instance. Maps the instance's segment
 * read-only; never changes it.
 *
 * Exit codes (as s6): 0 ok, 100 usage, 111 system error or bad segment.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/time.h"

#include "common/msg.h"
#include "shm/segment.h"
#include "supervisor/tail.h"

#define EXIT_USAGE  100
#define EXIT_SYSTEM 111

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ferryctl [-i INSTANCE] COMMAND\n"
		"\n"
		"  -i, --instance NAME   ferry instance (default: $FERRY_INSTANCE, else "
		"'default')\n"
		"  -h, --help            this text\n"
		"\n"
		"commands:\n"
		"  status              every stage (pid, state, uptime, restarts, last exit,\n"
		"                      seq in progress, records in/out, dead letters), then rings\n"
		"  rings               every ring: capacity, fill, records, head/tail, last seq,\n"
		"                      writer and reader pids, who waits\n"
		"  restart STAGE|all   hot restart: the stage finishes what it holds and exits,\n"
		"                      ferryd starts the binary now on disk (all: one by one)\n"
		"  tail [-b BOOTSTRAP | -c CONFIG] [-n N] [-e] TOPIC\n"
		"                      a Kafka topic from its beginning, one JSON line per event:\n"
		"                      key, headers, schema id, the value decoded with the\n"
		"                      compiled catalog (ferryctl tail -h for more)\n");
}

/* "16 MiB", "3.5 KiB", "812 B" */
static const char *human(uint64_t n, char *buf, size_t len)
{
	static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	unsigned u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0 || v >= 100 || v == (double)(uint64_t)v)
		snprintf(buf, len, "%.0f %s", v, unit[u]);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

/* "1234 ingest", "1234 ingest (dead)", "-" */
static const char *who(const struct shm_segment *seg, int32_t pid, int32_t worker, char *buf,
		       size_t len)
{
	const char *name = worker >= 0 ? seg->workers[worker].name : "";
	const char *state = "";

	if (pid <= 0) {
		snprintf(buf, len, "- %s", name);
		return buf;
	}
	if (kill(pid, 0) < 0 && errno == ESRCH)
		state = " (dead)";
	snprintf(buf, len, "%d %s%s", pid, name, state);
	return buf;
}

static int cmd_rings(struct shm_segment *seg)
{
	unsigned i;

	printf("instance %s, segment %s, %u rings, %u workers\n", seg->hdr->instance, seg->path,
	       seg->hdr->n_rings, seg->hdr->n_workers);
	printf("%-20s %9s %9s %5s %9s %14s %14s %12s  %-22s %-22s %s\n", "RING", "CAPACITY", "USED",
	       "FILL", "RECORDS", "HEAD", "TAIL", "LAST_SEQ", "WRITER", "READER", "WAITING");
	for (i = 0; i < seg->hdr->n_rings; i++) {
		struct ring r;
		struct ring_stats st;
		const char *why = NULL;
		char cap[16], used[16], w[64], rd[64];
		const char *waiting;
		int ret;

		ret = shm_segment_ring_attach(seg, i, RING_INSPECT, &r, &why);
		if (ret < 0) {
			fprintf(stderr, "ferryctl: %s: ring %u: %s\n", seg->path, i, why);
			return EXIT_SYSTEM;
		}
		ring_stats(&r, &st);
		if (st.reader_waiting && st.writer_waiting)
			waiting = "both";
		else if (st.reader_waiting)
			waiting = "reader";
		else if (st.writer_waiting)
			waiting = "writer";
		else
			waiting = "-";
		printf("%-20s %9s %9s %4.0f%% %9llu %14llu %14llu %12llu  %-22s %-22s %s\n",
		       st.name, human(st.capacity, cap, sizeof(cap)),
		       human(st.used, used, sizeof(used)),
		       100.0 * (double)st.used / (double)st.capacity,
		       (unsigned long long)st.records, (unsigned long long)st.head,
		       (unsigned long long)st.tail, (unsigned long long)st.last_seq,
		       who(seg, st.writer_pid, st.writer_worker, w, sizeof(w)),
		       who(seg, st.reader_pid, st.reader_worker, rd, sizeof(rd)), waiting);
	}
	return 0;
}

static const char *sstate_name(uint32_t s)
{
	static const char *names[] = {"down", "up", "backoff", "restarting", "failed"};

	return s < ARRAY_SIZE(names) ? names[s] : "?";
}

static const char *wstate_name(uint32_t s)
{
	static const char *names[] = {"-", "init", "running", "stopping", "drained"};

	return s < ARRAY_SIZE(names) ? names[s] : "?";
}

static const char *exit_name(const struct shm_worker *w, char *buf, size_t len)
{
	if (!w->last_exit_ns)
		return "-";
	if (WIFSIGNALED(w->last_exit))
		snprintf(buf, len, "signal %d", WTERMSIG(w->last_exit));
	else
		snprintf(buf, len, "exit %d", WEXITSTATUS(w->last_exit));
	return buf;
}

/* Tenants with failures, summed over the workers that count them. */
static void print_tenants(struct shm_segment *seg)
{
	int header = 0;

	for (unsigned w = 0; w < seg->hdr->n_workers; w++) {
		const struct shm_tenant *t = shm_worker_tenants(seg, w);

		for (unsigned i = 0; t && i < SHM_TENANT_SLOTS; i++) {
			if (!t[i].name[0] || !t[i].failed)
				continue;
			if (!header) {
				printf("\n%-40s %-12s %12s %12s\n", "TENANT", "STAGE", "OK",
				       "FAILED");
				header = 1;
			}
			printf("%-40.*s %-12s %12llu %12llu\n", (int)(SHM_TENANT_NAME_MAX - 1),
			       t[i].name, seg->workers[w].name, (unsigned long long)t[i].ok,
			       (unsigned long long)t[i].failed);
		}
	}
}

static const char *health_name(uint32_t h)
{
	static const char *const names[] = {"idle", "ok", "retrying", "FAILING"};

	return h < 4 ? names[h] : "?";
}

/*
 * ingest's sources: health (FAILING needs an operator: a wrong queue URL,
 * missing permissions), what came in, went back and was deleted /
 * acknowledged, what is in flight, and the last error. At most the first
 * 50 sources and every unhealthy one, so hundreds of subscriptions stay
 * readable.
 */
static void print_sources(struct shm_segment *seg)
{
	const struct shm_source *src = shm_sources(seg);
	unsigned n = seg->hdr->n_sources, shown = 0, hidden = 0;

	if (!n)
		return;
	printf("\n%-48s %-8s %-8s %10s %10s %8s %8s %9s %8s %7s  %s\n", "SOURCE", "KIND", "HEALTH",
	       "RECEIVED", "ACKED", "BACK", "EXTENDED", "INFLIGHT", "CALLS", "ERRORS",
	       "LAST_ERROR");
	for (unsigned i = 0; i < n; i++) {
		const struct shm_source *s = &src[i];
		uint32_t h = __atomic_load_n(&s->health, __ATOMIC_RELAXED);
		const char *name = s->name;
		size_t len = strnlen(name, sizeof(s->name));

		if (shown >= 50 && h != SHM_SOURCE_RETRYING && h != SHM_SOURCE_FAILING) {
			hidden++;
			continue;
		}
		/* The end of a long URL says which queue it is. */
		if (len > 48)
			name += len - 48;
		printf("%-48.48s %-8s %-8s %10llu %10llu %8llu %8llu %9llu %8llu %7llu  %.*s\n",
		       name,
		       s->kind == MSG_SOURCE_SQS      ? "sqs"
		       : s->kind == MSG_SOURCE_PUBSUB ? "pubsub"
						      : "replay",
		       s->kind == MSG_SOURCE_REPLAY ? "-" : health_name(h),
		       (unsigned long long)s->received, (unsigned long long)s->acked,
		       (unsigned long long)s->handed_back, (unsigned long long)s->extended,
		       (unsigned long long)s->inflight, (unsigned long long)s->calls,
		       (unsigned long long)s->errors, (int)sizeof(s->last_error), s->last_error);
		shown++;
	}
	if (hidden)
		printf("... and %u more sources, all healthy\n", hidden);
}

static int cmd_status(struct shm_segment *seg)
{
	uint64_t now = now_ns();

	printf("instance %s, segment %s, %s\n", seg->hdr->instance, seg->path,
	       seg->hdr->state == SHM_ISTATE_DRAINING ? "draining" : "running");
	printf("%-12s %7s %-10s %-8s %9s %8s %-10s %10s %12s %12s %8s %9s %6s %8s\n", "STAGE",
	       "PID", "STATE", "SAYS", "UPTIME", "RESTARTS", "LAST_EXIT", "SEQ", "IN", "OUT",
	       "DEAD", "INFLIGHT", "BEAT", "REDELIV");
	for (unsigned i = 0; i < seg->hdr->n_workers; i++) {
		const struct shm_worker *w = &seg->workers[i];
		char up[16] = "-", beat[16] = "-", ex[24];
		uint64_t hb = __atomic_load_n(&w->heartbeat_ns, __ATOMIC_RELAXED);

		if (w->pid > 0 && w->started_ns && now > w->started_ns)
			snprintf(up, sizeof(up), "%.1fs", (double)(now - w->started_ns) / 1e9);
		if (w->pid > 0 && hb && now > hb)
			snprintf(beat, sizeof(beat), "%.1fs", (double)(now - hb) / 1e9);
		printf("%-12s %7d %-10s %-8s %9s %8u %-10s %10llu %12llu %12llu %8llu %9u %6s "
		       "%8llu\n",
		       w->name, w->pid, sstate_name(w->state), wstate_name(w->wstate), up,
		       w->restarts, exit_name(w, ex, sizeof(ex)),
		       (unsigned long long)w->current_seq, (unsigned long long)w->records_in,
		       (unsigned long long)w->records_out, (unsigned long long)w->dead_letters,
		       w->inflight, beat, (unsigned long long)w->redelivered);
	}
	print_sources(seg);
	print_tenants(seg);
	printf("\n");
	return cmd_rings(seg);
}

static int cmd_restart(struct shm_segment *seg, const char *stage)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char buf[256];
	ssize_t n;
	int fd;

	if (!seg->hdr->control_socket[0] ||
	    memchr(seg->hdr->control_socket, 0, sizeof(seg->hdr->control_socket)) == NULL) {
		fprintf(stderr,
			"ferryctl: the segment names no control socket: is ferryd running?\n");
		return EXIT_SYSTEM;
	}
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", seg->hdr->control_socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		fprintf(stderr, "ferryctl: %s: %s\n", a.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_SYSTEM;
	}
	snprintf(buf, sizeof(buf), "restart %s\n", stage);
	if (write(fd, buf, strlen(buf)) < 0 || (n = read(fd, buf, sizeof(buf) - 1)) <= 0) {
		fprintf(stderr, "ferryctl: %s: no answer\n", a.sun_path);
		close(fd);
		return EXIT_SYSTEM;
	}
	close(fd);
	buf[n] = 0;
	fputs(buf, strncmp(buf, "ok", 2) ? stderr : stdout);
	return strncmp(buf, "ok", 2) ? EXIT_SYSTEM : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"instance", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *instance = getenv("FERRY_INSTANCE");
	struct shm_segment *seg = NULL;
	char err[512];
	const char *cmd;
	int c, r;

	if (!instance || !*instance)
		instance = "default";
	while ((c = getopt_long(argc, argv, "+i:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			instance = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!shm_instance_valid(instance)) {
		fprintf(stderr,
			"ferryctl: invalid instance name '%s' (want 1-63 of [A-Za-z0-9_.-])\n",
			instance);
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	if (!strcmp(cmd, "tail")) /* Kafka, not the segment: no instance needed */
		return tail_main(argc - optind, argv + optind);
	if (strcmp(cmd, "rings") && strcmp(cmd, "status") &&
	    (strcmp(cmd, "restart") || optind + 2 != argc)) {
		if (!strcmp(cmd, "restart"))
			fprintf(stderr, "ferryctl: restart takes one stage name (or all)\n");
		else
			fprintf(stderr, "ferryctl: unknown command '%s'\n", cmd);
		usage(stderr);
		return EXIT_USAGE;
	}
	r = shm_segment_open(instance, SHM_RDONLY, &seg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ferryctl: %s\n", err);
		return EXIT_SYSTEM;
	}
	if (!strcmp(cmd, "rings"))
		r = cmd_rings(seg);
	else if (!strcmp(cmd, "status"))
		r = cmd_status(seg);
	else
		r = cmd_restart(seg, argv[optind + 1]);
	shm_segment_close(seg);
	return r;
}
