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
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/compiler.h"
#include "common/msg.h"
#include "shm/segment.h"
#include "supervisor/replay-dlq.h"
#include "supervisor/tail.h"
#include "supervisor/top.h"
#include "supervisor/view.h"

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
		"  status [--json]     every stage (pid, state, uptime, restarts, last exit,\n"
		"                      seq in progress, records in/out, dead letters, CPU, RSS),\n"
		"                      sources, tenants with failures, then rings; --json: one\n"
		"                      JSON document with all of it, every source and tenant,\n"
		"                      and the delivery latency histogram\n"
		"  top [-d SECONDS] [-n ITERATIONS]\n"
		"                      live view, refreshed every SECONDS (default 1): stages\n"
		"                      (CPU, rates), rings, sources (rates, lag), tenants; q or\n"
		"                      Ctrl-C quits; not a terminal: plain frames one after\n"
		"                      another (ferryctl top -h for more)\n"
		"  rings               every ring: capacity, fill, records, head/tail, last seq,\n"
		"                      writer and reader pids, who waits\n"
		"  restart STAGE|all   hot restart: the stage finishes what it holds and exits,\n"
		"                      ferryd starts the binary now on disk (all: one by one)\n"
		"  tail [-b BOOTSTRAP | -c CONFIG] [-n N] [-e] TOPIC\n"
		"                      a Kafka topic from its beginning, one JSON line per event:\n"
		"                      key, headers, schema id, the value decoded with the\n"
		"                      compiled catalog (ferryctl tail -h for more)\n"
		"  replay-dlq -c CONFIG [--tenant T] [--type T] [--reason R] [--since T] ...\n"
		"                      send chosen dead letters through again (-h for more)\n");
}

/* "1234 ingest", "1234 ingest (dead)", "-" */
static const char *who(const struct view *v, int32_t pid, int32_t worker, char *buf, size_t len)
{
	const char *name =
		worker >= 0 && (unsigned)worker < v->n_stages ? v->stages[worker].name : "";
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

static const char *waiting_name(const struct ring_stats *st)
{
	if (st->reader_waiting && st->writer_waiting)
		return "both";
	if (st->reader_waiting)
		return "reader";
	if (st->writer_waiting)
		return "writer";
	return "-";
}

static void print_rings(const struct view *v)
{
	printf("instance %s, segment %s, %u rings, %u workers\n", v->instance, v->path, v->n_rings,
	       v->n_stages);
	printf("%-20s %9s %9s %5s %9s %14s %14s %12s  %-22s %-22s %s\n", "RING", "CAPACITY", "USED",
	       "FILL", "RECORDS", "HEAD", "TAIL", "LAST_SEQ", "WRITER", "READER", "WAITING");
	for (unsigned i = 0; i < v->n_rings; i++) {
		const struct ring_stats *st = &v->rings[i];
		char cap[16], used[16], w[64], rd[64];

		printf("%-20s %9s %9s %4.0f%% %9llu %14llu %14llu %12llu  %-22s %-22s %s\n",
		       st->name, view_human(st->capacity, cap, sizeof(cap)),
		       view_human(st->used, used, sizeof(used)),
		       100.0 * (double)st->used / (double)st->capacity,
		       (unsigned long long)st->records, (unsigned long long)st->head,
		       (unsigned long long)st->tail, (unsigned long long)st->last_seq,
		       who(v, st->writer_pid, st->writer_worker, w, sizeof(w)),
		       who(v, st->reader_pid, st->reader_worker, rd, sizeof(rd)), waiting_name(st));
	}
}

/* Tenants with failures, per worker that counts them. */
static void print_tenants(const struct view *v)
{
	int header = 0;

	for (unsigned i = 0; i < v->n_tenants; i++) {
		const struct view_tenant *t = &v->tenants[i];

		if (!t->failed)
			continue;
		if (!header) {
			printf("\n%-40s %-12s %12s %12s\n", "TENANT", "STAGE", "OK", "FAILED");
			header = 1;
		}
		printf("%-40s %-12s %12llu %12llu\n", t->name, v->stages[t->stage].name,
		       (unsigned long long)t->ok, (unsigned long long)t->failed);
	}
}

/*
 * ingest's sources: health (FAILING needs an operator: a wrong queue URL,
 * missing permissions), what came in, went back and was deleted /
 * acknowledged, what is in flight, and the last error. At most the first
 * 50 sources and every unhealthy one, so hundreds of subscriptions stay
 * readable (status --json has them all).
 */
static void print_sources(const struct view *v)
{
	unsigned shown = 0, hidden = 0;

	if (!v->n_sources)
		return;
	printf("\n%-48s %-8s %-8s %10s %10s %8s %8s %9s %8s %7s  %s\n", "SOURCE", "KIND", "HEALTH",
	       "RECEIVED", "ACKED", "BACK", "EXTENDED", "INFLIGHT", "CALLS", "ERRORS",
	       "LAST_ERROR");
	for (unsigned i = 0; i < v->n_sources; i++) {
		const struct view_source *s = &v->sources[i];
		const char *name = s->name;
		size_t len = strlen(name);

		if (shown >= 50 && s->health != SHM_SOURCE_RETRYING &&
		    s->health != SHM_SOURCE_FAILING) {
			hidden++;
			continue;
		}
		/* The end of a long URL says which queue it is. */
		if (len > 48)
			name += len - 48;
		printf("%-48.48s %-8s %-8s %10llu %10llu %8llu %8llu %9llu %8llu %7llu  %s\n", name,
		       msg_source_name(s->kind),
		       s->kind == MSG_SOURCE_REPLAY ? "-" : view_health_name(s->health),
		       (unsigned long long)s->received, (unsigned long long)s->acked,
		       (unsigned long long)s->handed_back, (unsigned long long)s->extended,
		       (unsigned long long)s->inflight, (unsigned long long)s->calls,
		       (unsigned long long)s->errors, s->last_error);
		shown++;
	}
	if (hidden)
		printf("... and %u more sources, all healthy\n", hidden);
}

/* CPU seconds and RSS as ferryd sampled them; "-" until it has. */
static const char *cpu_str(const struct view_stage *s, char *buf, size_t len)
{
	if (!s->cpu_ns || s->pid <= 0)
		return "-";
	snprintf(buf, len, "%.2fs", (double)s->cpu_ns / 1e9);
	return buf;
}

static const char *rss_str(const struct view_stage *s, char *buf, size_t len)
{
	if (!s->rss_bytes || s->pid <= 0)
		return "-";
	view_human(s->rss_bytes, buf, len);
	/* One word, so the columns stay whitespace-separated. */
	for (char *p = buf; *p; p++)
		if (*p == ' ')
			memmove(p, p + 1, strlen(p));
	return buf;
}

static void print_status(const struct view *v)
{
	uint64_t now = v->taken_ns;

	printf("instance %s, segment %s, %s\n", v->instance, v->path,
	       v->state == SHM_ISTATE_DRAINING ? "draining" : "running");
	printf("%-12s %7s %-10s %-8s %9s %8s %-10s %10s %12s %12s %8s %9s %6s %8s %8s %8s\n",
	       "STAGE", "PID", "STATE", "SAYS", "UPTIME", "RESTARTS", "LAST_EXIT", "SEQ", "IN",
	       "OUT", "DEAD", "INFLIGHT", "BEAT", "REDELIV", "CPU", "RSS");
	for (unsigned i = 0; i < v->n_stages; i++) {
		const struct view_stage *s = &v->stages[i];
		char up[16] = "-", beat[16] = "-", ex[24], cpu[24], rss[24];

		if (s->pid > 0 && s->started_ns && now > s->started_ns)
			snprintf(up, sizeof(up), "%.1fs", (double)(now - s->started_ns) / 1e9);
		if (s->pid > 0 && s->heartbeat_ns && now > s->heartbeat_ns)
			snprintf(beat, sizeof(beat), "%.1fs",
				 (double)(now - s->heartbeat_ns) / 1e9);
		printf("%-12s %7d %-10s %-8s %9s %8u %-10s %10llu %12llu %12llu %8llu %9u %6s "
		       "%8llu %8s %8s\n",
		       s->name, s->pid, view_sstate_name(s->state), view_wstate_name(s->wstate), up,
		       s->restarts, view_exit_name(s, ex, sizeof(ex)),
		       (unsigned long long)s->current_seq, (unsigned long long)s->records_in,
		       (unsigned long long)s->records_out, (unsigned long long)s->dead_letters,
		       s->inflight, beat, (unsigned long long)s->redelivered,
		       cpu_str(s, cpu, sizeof(cpu)), rss_str(s, rss, sizeof(rss)));
	}
	print_sources(v);
	print_tenants(v);
	printf("\n");
	print_rings(v);
}

/* cJSON keeps numbers as doubles: exact up to 2^53, which counters do not reach. */
static void jnum(cJSON *o, const char *k, double n)
{
	cJSON_AddNumberToObject(o, k, n);
}

/* A number, or null when absent (n < 0). */
static void jnum_or_null(cJSON *o, const char *k, double n)
{
	if (n < 0)
		cJSON_AddNullToObject(o, k);
	else
		cJSON_AddNumberToObject(o, k, n);
}

static void jstr_or_null(cJSON *o, const char *k, const char *s)
{
	if (s && *s)
		cJSON_AddStringToObject(o, k, s);
	else
		cJSON_AddNullToObject(o, k);
}

static cJSON *json_stage(const struct view *v, const struct view_stage *s)
{
	cJSON *o = cJSON_CreateObject(), *ex;
	uint64_t now = v->taken_ns;
	int live = s->pid > 0;

	cJSON_AddStringToObject(o, "name", s->name);
	cJSON_AddStringToObject(o, "kind", view_worker_kind_name(s->kind));
	jnum(o, "shard", s->shard);
	jnum(o, "pid", s->pid);
	cJSON_AddStringToObject(o, "state", view_sstate_name(s->state));
	cJSON_AddStringToObject(o, "says", view_wstate_name(s->wstate));
	jnum_or_null(o, "uptime_s",
		     live && s->started_ns && now > s->started_ns
			     ? (double)(now - s->started_ns) / 1e9
			     : -1);
	jnum(o, "restarts", s->restarts);
	if (!s->last_exit_ns) {
		cJSON_AddNullToObject(o, "last_exit");
	} else {
		ex = cJSON_AddObjectToObject(o, "last_exit");
		if (WIFSIGNALED(s->last_exit))
			jnum(ex, "signal", WTERMSIG(s->last_exit));
		else
			jnum(ex, "exit", WEXITSTATUS(s->last_exit));
	}
	jnum(o, "current_seq", (double)s->current_seq);
	jnum(o, "records_in", (double)s->records_in);
	jnum(o, "records_out", (double)s->records_out);
	jnum(o, "dead_letters", (double)s->dead_letters);
	jnum(o, "errors", (double)s->errors);
	jnum(o, "inflight", s->inflight);
	jnum(o, "redelivered", (double)s->redelivered);
	jnum_or_null(o, "heartbeat_age_s",
		     live && s->heartbeat_ns && now > s->heartbeat_ns
			     ? (double)(now - s->heartbeat_ns) / 1e9
			     : -1);
	jnum(o, "strikes", s->strikes);
	jnum(o, "strike_seq", (double)s->strike_seq);
	jnum_or_null(o, "cpu_s", live && s->cpu_ns ? (double)s->cpu_ns / 1e9 : -1);
	jnum_or_null(o, "rss_bytes", live && s->rss_bytes ? (double)s->rss_bytes : -1);
	return o;
}

static cJSON *json_end(const struct view *v, int32_t pid, int32_t worker)
{
	cJSON *o = cJSON_CreateObject();

	jnum_or_null(o, "pid", pid > 0 ? pid : -1);
	jstr_or_null(o, "worker",
		     worker >= 0 && (unsigned)worker < v->n_stages ? v->stages[worker].name : NULL);
	cJSON_AddBoolToObject(o, "alive", pid > 0 && !(kill(pid, 0) < 0 && errno == ESRCH));
	return o;
}

static cJSON *json_ring(const struct view *v, const struct ring_stats *st)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "name", st->name);
	jnum(o, "capacity", (double)st->capacity);
	jnum(o, "max_record", st->max_record);
	jnum(o, "used", (double)st->used);
	jnum(o, "fill", (double)st->used / (double)st->capacity);
	jnum(o, "records", (double)st->records);
	jnum(o, "published", (double)st->published);
	jnum(o, "consumed", (double)(st->published - st->records));
	jnum(o, "head", (double)st->head);
	jnum(o, "tail", (double)st->tail);
	jnum(o, "last_seq", (double)st->last_seq);
	jnum(o, "commit_seq", (double)st->commit_seq);
	cJSON_AddItemToObject(o, "writer", json_end(v, st->writer_pid, st->writer_worker));
	cJSON_AddItemToObject(o, "reader", json_end(v, st->reader_pid, st->reader_worker));
	cJSON_AddBoolToObject(o, "writer_waiting", st->writer_waiting);
	cJSON_AddBoolToObject(o, "reader_waiting", st->reader_waiting);
	return o;
}

static cJSON *json_source(const struct view *v, unsigned i)
{
	const struct view_source *s = &v->sources[i];
	cJSON *o = cJSON_CreateObject();

	jnum(o, "index", i);
	cJSON_AddStringToObject(o, "name", s->name);
	cJSON_AddStringToObject(o, "kind", msg_source_name(s->kind));
	jstr_or_null(o, "health",
		     s->kind == MSG_SOURCE_REPLAY ? NULL : view_health_name(s->health));
	jnum(o, "received", (double)s->received);
	jnum(o, "acked", (double)s->acked);
	jnum(o, "handed_back", (double)s->handed_back);
	jnum(o, "extended", (double)s->extended);
	jnum(o, "inflight", (double)s->inflight);
	jnum(o, "calls", (double)s->calls);
	jnum(o, "errors", (double)s->errors);
	jstr_or_null(o, "last_error", s->last_error);
	jnum_or_null(o, "lag_s", s->oldest_ns ? (double)(v->taken_ns - s->oldest_ns) / 1e9 : -1);
	return o;
}

static cJSON *json_latency(const struct shm_latency *l)
{
	cJSON *o = cJSON_CreateObject(), *b;

	jnum(o, "count", (double)l->count);
	jnum(o, "sum_us", (double)l->sum_us);
	jnum_or_null(o, "mean_us", l->count ? (double)l->sum_us / (double)l->count : -1);
	jnum_or_null(o, "p50_us", view_latency_quantile(l->bucket, 0.50));
	jnum_or_null(o, "p90_us", view_latency_quantile(l->bucket, 0.90));
	jnum_or_null(o, "p99_us", view_latency_quantile(l->bucket, 0.99));
	b = cJSON_AddArrayToObject(o, "buckets");
	for (unsigned i = 0; i < SHM_LATENCY_BUCKETS; i++) {
		cJSON *e = cJSON_CreateObject();

		/* le_us null: the overflow bucket, above the last bound */
		jnum_or_null(e, "le_us",
			     i < SHM_LATENCY_BUCKETS - 1 ? (double)shm_latency_bounds_us[i] : -1.0);
		jnum(e, "count", (double)l->bucket[i]);
		cJSON_AddItemToArray(b, e);
	}
	return o;
}

/* Everything status prints and more, for scripts (README: "status --json"). */
static cJSON *json_status(const struct view *v)
{
	cJSON *o = cJSON_CreateObject(), *a;
	time_t t = (time_t)(v->created_ns / 1000000000ull);
	struct tm tm;
	char when[40];

	cJSON_AddStringToObject(o, "instance", v->instance);
	cJSON_AddStringToObject(o, "segment", v->path);
	jnum(o, "layout_version", v->layout_version);
	cJSON_AddStringToObject(o, "state",
				v->state == SHM_ISTATE_DRAINING ? "draining" : "running");
	jnum(o, "supervisor_pid", v->supervisor_pid);
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	cJSON_AddStringToObject(o, "created", when);
	jnum(o, "created_unix_s", (double)v->created_ns / 1e9);
	jnum(o, "uptime_s",
	     v->taken_rt > v->created_ns ? (double)(v->taken_rt - v->created_ns) / 1e9 : 0);
	a = cJSON_AddArrayToObject(o, "stages");
	for (unsigned i = 0; i < v->n_stages; i++)
		cJSON_AddItemToArray(a, json_stage(v, &v->stages[i]));
	a = cJSON_AddArrayToObject(o, "rings");
	for (unsigned i = 0; i < v->n_rings; i++)
		cJSON_AddItemToArray(a, json_ring(v, &v->rings[i]));
	jnum(o, "inflight_slots", v->inflight_slots);
	a = cJSON_AddArrayToObject(o, "sources");
	for (unsigned i = 0; i < v->n_sources; i++)
		cJSON_AddItemToArray(a, json_source(v, i));
	a = cJSON_AddArrayToObject(o, "tenants");
	for (unsigned i = 0; i < v->n_tenants; i++) {
		const struct view_tenant *vt = &v->tenants[i];
		cJSON *e = cJSON_CreateObject();

		cJSON_AddStringToObject(e, "name", vt->name);
		cJSON_AddStringToObject(e, "stage", v->stages[vt->stage].name);
		jnum(e, "ok", (double)vt->ok);
		jnum(e, "failed", (double)vt->failed);
		cJSON_AddItemToArray(a, e);
	}
	cJSON_AddItemToObject(o, "latency", json_latency(&v->latency));
	return o;
}

/* status, status --json, rings: one snapshot, then formatting only. */
static int cmd_view(struct shm_segment *seg, const char *cmd, int json)
{
	struct view v;
	char err[256];
	int r = view_take(seg, &v, err, sizeof(err));

	if (r < 0) {
		fprintf(stderr, "ferryctl: %s\n", err);
		return EXIT_SYSTEM;
	}
	if (json) {
		cJSON *o = json_status(&v);
		char *s = o ? cJSON_Print(o) : NULL;

		cJSON_Delete(o);
		if (!s) {
			view_free(&v);
			fprintf(stderr, "ferryctl: out of memory\n");
			return EXIT_SYSTEM;
		}
		puts(s);
		free(s);
	} else if (!strcmp(cmd, "rings")) {
		print_rings(&v);
	} else {
		print_status(&v);
	}
	view_free(&v);
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "ferryctl: stdout: %s\n", strerror(errno));
		return EXIT_SYSTEM;
	}
	return 0;
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
	int c, r, ok = 0, json = 0;

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
	if (!strcmp(cmd, "replay-dlq")) /* Kafka and the spool: no segment needed */
		return replay_dlq_main(argc - optind, argv + optind);
	if (!strcmp(cmd, "top")) /* opens (and reopens) the segment itself */
		return top_main(instance, argc - optind, argv + optind);
	if (!strcmp(cmd, "status") && optind + 2 == argc && !strcmp(argv[optind + 1], "--json"))
		json = 1;
	else if (!strcmp(cmd, "status") || !strcmp(cmd, "rings"))
		ok = optind + 1 == argc;
	else if (!strcmp(cmd, "restart"))
		ok = optind + 2 == argc;
	if (!ok && !json) {
		if (!strcmp(cmd, "restart"))
			fprintf(stderr, "ferryctl: restart takes one stage name (or all)\n");
		else if (!strcmp(cmd, "status") || !strcmp(cmd, "rings"))
			fprintf(stderr, "ferryctl: %s: unexpected '%s'\n", cmd, argv[optind + 1]);
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
	if (!strcmp(cmd, "restart"))
		r = cmd_restart(seg, argv[optind + 1]);
	else
		r = cmd_view(seg, cmd, json);
	shm_segment_close(seg);
	return r;
}
