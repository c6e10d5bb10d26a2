/* SPDX-License-Identifier: MIT */
/*
 * ferryctl status --json and ferryctl top against a segment this test
 * makes and fills: the JSON's values, top's rates from counters bumped
 * between two frames, the source lag from the in-flight table, a segment
 * replaced and removed under top, and a terminal restored on q / SIGTERM.
 */
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "common/msg.h"
#include "common/time.h"
#include "shm/segment.h"
#include "tests/proc/ferryctl-run.h"

#define N_SOURCES 60

static char instance[64];

static const struct shm_worker_spec workers[] = {
	{"ingest", SHM_WORKER_INGEST, 0},
	{"decrypt.0", SHM_WORKER_DECRYPT, 0},
	{"produce", SHM_WORKER_PRODUCE, 0},
};
static const struct shm_ring_spec rings[] = {
	{"ingest>decrypt.0", 1 << 16, 0, 1},
	{"decrypt.0>produce", 1 << 12, 1, 2},
	{"acks", 1 << 12, 2, 0},
};

static char source_names[N_SOURCES][64];
static const char *source_ptrs[N_SOURCES];
static uint32_t source_kinds[N_SOURCES];

/* The segment of every test: three stages, sixty sources, a few in flight, two tenants. */
static struct shm_segment *make_segment(void)
{
	struct shm_spec spec = {instance, ARRAY_SIZE(workers), workers, ARRAY_SIZE(rings), rings};
	struct shm_segment *seg = NULL;
	struct shm_source *src;
	struct shm_inflight *inf;
	struct shm_tenant *t;
	uint64_t now = now_ns();
	char err[256];

	for (unsigned i = 0; i < N_SOURCES; i++) {
		snprintf(source_names[i], sizeof(source_names[i]),
			 i == 1 ? "projects/p/subscriptions/legacy-orders"
				: "https://sqs.eu-west-1.amazonaws.com/123456789012/queue-%02u",
			 i);
		source_ptrs[i] = source_names[i];
		source_kinds[i] = i == 1 ? MSG_SOURCE_PUBSUB : MSG_SOURCE_SQS;
	}
	spec.n_sources = N_SOURCES;
	spec.source_names = source_ptrs;
	spec.source_kinds = source_kinds;
	spec.inflight_slots = 16;
	assert_int_equal(shm_segment_create(&spec, SHM_CREATE_REPLACE, &seg, err, sizeof(err)), 0);

	for (unsigned i = 0; i < ARRAY_SIZE(workers); i++) {
		struct shm_worker *w = &seg->workers[i];

		w->pid = getpid(); /* alive, so uptime and heartbeat show */
		w->state = SHM_SSTATE_UP;
		w->wstate = SHM_WSTATE_RUNNING;
		w->started_ns = now - 5000000000ull;
		w->heartbeat_ns = now - 500000000ull;
		w->records_in = 1000 * (i + 1);
		w->records_out = 900 * (i + 1);
	}
	/* decrypt.0: died twice, the last time of SIGKILL; ferryd sampled it. */
	seg->workers[1].restarts = 2;
	seg->workers[1].last_exit = SIGKILL; /* a wait status: killed by signal 9 */
	seg->workers[1].last_exit_ns = now - 6000000000ull;
	seg->workers[1].dead_letters = 7;
	seg->workers[1].inflight = 3;
	seg->workers[1].cpu_ns = 1500000000ull;
	seg->workers[1].rss_bytes = 32ull << 20;
	/* produce: 50 deliveries in (500 us, 1 ms], 50 in (2 ms, 5 ms]. */
	seg->workers[2].latency.bucket[2] = 50;
	seg->workers[2].latency.bucket[4] = 50;
	seg->workers[2].latency.count = 100;
	seg->workers[2].latency.sum_us = 50 * 800 + 50 * 3000;

	src = shm_sources(seg);
	src[0].health = SHM_SOURCE_OK;
	src[0].received = 500;
	src[0].acked = 480;
	src[0].inflight = 2;
	src[1].health = SHM_SOURCE_FAILING;
	src[1].errors = 9;
	snprintf(src[1].last_error, sizeof(src[1].last_error), "HTTP 403 PERMISSION_DENIED");
	/* Two of source 0's messages in flight, the oldest received 7 s ago. */
	inf = shm_inflight(seg);
	inf[5].seq = 5;
	inf[5].state = SHM_INFLIGHT_PIPELINE;
	inf[5].source = 0;
	inf[5].received_ns = now - 7000000000ull;
	inf[6].seq = 6;
	inf[6].state = SHM_INFLIGHT_RECEIVED;
	inf[6].source = 0;
	inf[6].received_ns = now - 1000000000ull;

	t = shm_worker_tenants(seg, 1);
	shm_tenant_slot(t, "t10")->ok = 100;
	shm_tenant_slot(t, "t10")->failed = 2;
	shm_tenant_slot(t, "t11")->ok = 5;
	return seg;
}

static void drop_segment(struct shm_segment *seg)
{
	shm_segment_close(seg);
	shm_segment_unlink(instance);
}

static cJSON *get(const cJSON *o, const char *k)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!v)
		fail_msg("JSON lacks '%s'", k);
	return v;
}

static double num(const cJSON *o, const char *k)
{
	cJSON *v = get(o, k);

	if (!cJSON_IsNumber(v))
		fail_msg("'%s' is not a number", k);
	return v->valuedouble;
}

static const char *str(const cJSON *o, const char *k)
{
	cJSON *v = get(o, k);

	if (!cJSON_IsString(v))
		fail_msg("'%s' is not a string", k);
	return v->valuestring;
}

static void expect_near(double got, double want, double tol, const char *what)
{
	if (got < want - tol || got > want + tol)
		fail_msg("%s: got %g, want %g (+-%g)", what, got, want, tol);
}

static void test_status_json(void **state)
{
	struct shm_segment *seg = make_segment();
	char args[512], *out = malloc(1 << 18);
	cJSON *j, *a, *s, *l, *b;
	int found = 0;

	(void)state;
	assert_non_null(out);
	snprintf(args, sizeof(args), "-i %s status --json", instance);
	assert_int_equal(ferryctl_run(args, out, 1 << 18, 0), 0);
	if (getenv("FERRY_TEST_VERBOSE"))
		fputs(out, stderr);
	j = cJSON_Parse(out);
	if (!j)
		fail_msg("not JSON:\n%s", out);
	assert_string_equal(str(j, "instance"), instance);
	assert_string_equal(str(j, "state"), "running");
	assert_int_equal((int)num(j, "supervisor_pid"), getpid());
	assert_int_equal(strlen(str(j, "created")), strlen("2026-11-27T03:35:59Z"));
	assert_int_equal((int)num(j, "layout_version"), SHM_LAYOUT_VERSION);

	a = get(j, "stages");
	assert_int_equal(cJSON_GetArraySize(a), 3);
	s = cJSON_GetArrayItem(a, 1);
	assert_string_equal(str(s, "name"), "decrypt.0");
	assert_string_equal(str(s, "kind"), "decrypt");
	assert_string_equal(str(s, "state"), "up");
	assert_string_equal(str(s, "says"), "running");
	assert_int_equal((int)num(s, "pid"), getpid());
	assert_int_equal((int)num(s, "restarts"), 2);
	assert_int_equal((int)num(get(s, "last_exit"), "signal"), 9);
	assert_int_equal((int)num(s, "records_in"), 2000);
	assert_int_equal((int)num(s, "records_out"), 1800);
	assert_int_equal((int)num(s, "dead_letters"), 7);
	assert_int_equal((int)num(s, "inflight"), 3);
	expect_near(num(s, "cpu_s"), 1.5, 1e-9, "cpu_s");
	expect_near(num(s, "rss_bytes"), 32 << 20, 0, "rss_bytes");
	expect_near(num(s, "uptime_s"), 5, 30, "uptime_s");
	expect_near(num(s, "heartbeat_age_s"), 0.5, 30, "heartbeat_age_s");
	assert_true(num(s, "heartbeat_age_s") >= 0.5);
	/* Not sampled yet: null, not 0. */
	s = cJSON_GetArrayItem(a, 0);
	assert_true(cJSON_IsNull(get(s, "cpu_s")));
	assert_true(cJSON_IsNull(get(s, "rss_bytes")));
	assert_true(cJSON_IsNull(get(s, "last_exit")));

	a = get(j, "rings");
	assert_int_equal(cJSON_GetArraySize(a), 3);
	s = cJSON_GetArrayItem(a, 0);
	assert_string_equal(str(s, "name"), "ingest>decrypt.0");
	assert_int_equal((int)num(s, "capacity"), 1 << 16);
	assert_int_equal((int)num(s, "records"), 0);
	assert_string_equal(str(get(s, "writer"), "worker"), "ingest");

	/* Every source, not cut at 50 as the text is. */
	a = get(j, "sources");
	assert_int_equal(cJSON_GetArraySize(a), N_SOURCES);
	s = cJSON_GetArrayItem(a, 0);
	assert_string_equal(str(s, "kind"), "sqs");
	assert_string_equal(str(s, "health"), "ok");
	assert_int_equal((int)num(s, "received"), 500);
	assert_int_equal((int)num(s, "acked"), 480);
	assert_true(cJSON_IsNull(get(s, "last_error")));
	/* The oldest of its two in-flight messages, 7 s old when made. */
	expect_near(num(s, "lag_s"), 7 + 30, 30, "lag_s");
	s = cJSON_GetArrayItem(a, 1);
	assert_string_equal(str(s, "kind"), "pubsub");
	assert_string_equal(str(s, "health"), "FAILING");
	assert_string_equal(str(s, "last_error"), "HTTP 403 PERMISSION_DENIED");
	assert_true(cJSON_IsNull(get(s, "lag_s")));
	assert_string_equal(str(cJSON_GetArrayItem(a, N_SOURCES - 1), "name"),
			    source_names[N_SOURCES - 1]);

	a = get(j, "tenants");
	assert_int_equal(cJSON_GetArraySize(a), 2);
	cJSON_ArrayForEach(s, a)
	{
		if (strcmp(str(s, "name"), "t10"))
			continue;
		assert_string_equal(str(s, "stage"), "decrypt.0");
		assert_int_equal((int)num(s, "ok"), 100);
		assert_int_equal((int)num(s, "failed"), 2);
		found++;
	}
	assert_int_equal(found, 1);

	/* 50 in (500, 1000] and 50 in (2000, 5000]: p50 at the top of the first, p90 and
	 * p99 interpolated in the second. */
	l = get(j, "latency");
	assert_int_equal((int)num(l, "count"), 100);
	assert_int_equal((int)num(l, "sum_us"), 190000);
	expect_near(num(l, "p50_us"), 1000, 1e-6, "p50");
	expect_near(num(l, "p90_us"), 4400, 1e-6, "p90");
	expect_near(num(l, "p99_us"), 4940, 1e-6, "p99");
	b = get(l, "buckets");
	assert_int_equal(cJSON_GetArraySize(b), SHM_LATENCY_BUCKETS);
	assert_int_equal((int)num(cJSON_GetArrayItem(b, 2), "le_us"), 1000);
	assert_int_equal((int)num(cJSON_GetArrayItem(b, 2), "count"), 50);
	assert_true(cJSON_IsNull(get(cJSON_GetArrayItem(b, SHM_LATENCY_BUCKETS - 1), "le_us")));
	cJSON_Delete(j);

	/* The text keeps its columns; CPU and RSS come last, one word each. */
	snprintf(args, sizeof(args), "-i %s status", instance);
	assert_int_equal(ferryctl_run(args, out, 1 << 18, 0), 0);
	if (getenv("FERRY_TEST_VERBOSE"))
		fputs(out, stderr);
	expect_has(out, " REDELIV      CPU      RSS\n");
	expect_has(out, "   1.50s    32MiB\n");
	expect_has(out, "... and 10 more sources, all healthy");
	expect_has(out, "FAILING");
	snprintf(args, sizeof(args),
		 "%s -i %s status | grep -Eq '^t10 +decrypt\\.0 +100 +2$' && "
		 "%s -i %s status | grep -Eq '^decrypt\\.0 +%d +up +running '",
		 FERRYCTL_PATH, instance, FERRYCTL_PATH, instance, (int)getpid());
	assert_int_equal(system(args), 0);

	/* Arguments status does not take are refused. */
	snprintf(args, sizeof(args), "-i %s status --yaml", instance);
	assert_int_equal(ferryctl_run(args, out, 1 << 18, 1), 100);
	expect_has(out, "status: unexpected '--yaml'");
	free(out);
	drop_segment(seg);
}

/* A child ferryctl with stdout and stderr on a pipe. */
struct child {
	pid_t pid;
	int fd;
	char buf[1 << 16];
	size_t len;
};

static void spawn(struct child *c, const char *const *args)
{
	int p[2];
	char *argv[16];
	unsigned n = 0;

	memset(c, 0, sizeof(*c));
	argv[n++] = (char *)FERRYCTL_PATH;
	argv[n++] = (char *)"-i";
	argv[n++] = instance;
	for (; *args && n < 15; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	assert_int_equal(pipe(p), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		unsetenv("LINES");
		unsetenv("COLUMNS");
		execv(FERRYCTL_PATH, argv);
		_exit(127);
	}
	close(p[1]);
	c->fd = p[0];
}

/* Read until needle has appeared after offset from (or EOF). Returns its position or NULL. */
static const char *wait_for(struct child *c, size_t from, const char *needle)
{
	for (;;) {
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		const char *hit;
		ssize_t n;

		c->buf[c->len] = 0;
		hit = strstr(c->buf + from, needle);
		if (hit)
			return hit;
		if (c->len + 1 >= sizeof(c->buf))
			return NULL;
		/* The alarm bounds the whole test; no sleep decides anything. */
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return NULL;
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
		if (n <= 0)
			return NULL;
		c->len += (size_t)n;
	}
}

static int finish(struct child *c)
{
	int status;

	wait_for(c, c->len, "\x01never"); /* drain to EOF */
	close(c->fd);
	assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* The first line of frame starting with prefix (any = 1: holding it), copied to line. */
static void find_line(const char *frame, const char *prefix, int any, char *line, size_t len)
{
	const char *p = frame;
	size_t n = strlen(prefix);

	for (;;) {
		const char *nl = strchr(p, '\n');
		const char *hit = any ? strstr(p, prefix) : NULL;

		if (any ? hit && (!nl || hit < nl) : !strncmp(p, prefix, n)) {
			const char *e = strchr(p, '\n');
			size_t l = e ? (size_t)(e - p) : strlen(p);

			if (l >= len)
				l = len - 1;
			memcpy(line, p, l);
			line[l] = 0;
			return;
		}
		if (!nl)
			fail_msg("no line with '%s' in frame:\n%s", prefix, frame);
		p = nl + 1;
	}
}

static void frame_line(const char *frame, const char *prefix, char *line, size_t len)
{
	find_line(frame, prefix, 0, line, len);
}

/* Field k (0-based, whitespace-separated) of line, copied to buf. */
static const char *field_str(const char *line, unsigned k, char *buf, size_t len)
{
	char copy[512], *save = NULL, *tok;

	snprintf(copy, sizeof(copy), "%s", line);
	tok = strtok_r(copy, " ", &save);
	for (unsigned i = 0; tok && i < k; i++)
		tok = strtok_r(NULL, " ", &save);
	if (!tok)
		fail_msg("line has no field %u: %s", k, line);
	snprintf(buf, len, "%s", tok);
	return buf;
}

/* Field k of line as a number; "12.3k" is 12300. */
static double field(const char *line, unsigned k)
{
	char buf[64], *tok = buf;
	double v;

	field_str(line, k, buf, sizeof(buf));
	v = strtod(tok, &tok);
	if (*tok == 'k')
		v *= 1e3;
	return v;
}

static void test_top_frames(void **state)
{
	static const char *const args[] = {"top", "-n", "3", "-d", "0.2", NULL};
	struct shm_segment *seg = make_segment();
	struct child c;
	struct ring w;
	const char *f1, *end1, *end2, *f2, *iv;
	char line[512], tok[64], *frame1, *frame2, *frame3;
	size_t end2off;
	double dt, v;

	(void)state;
	assert_int_equal(shm_segment_ring_attach(seg, 0, RING_WRITER, &w, NULL), 0);
	spawn(&c, args);
	/* A plain frame: no escapes, ended by an empty line. */
	f1 = wait_for(&c, 0, "ferry top: instance ");
	assert_non_null(f1);
	end1 = wait_for(&c, 0, "\n\n");
	assert_non_null(end1);
	/* Between the frames: counters move, a ring takes records, latency is observed. */
	__atomic_fetch_add(&seg->workers[1].records_in, 1000, __ATOMIC_RELAXED);
	/* ferryd's first CPU sample since top started: the moment, not yet a rate */
	__atomic_fetch_add(&seg->workers[1].cpu_ns, 50000000ull, __ATOMIC_RELAXED);
	__atomic_fetch_add(&seg->workers[0].records_out, 400, __ATOMIC_RELAXED);
	for (uint64_t s = 1; s <= 100; s++)
		assert_int_equal(ring_write(&w, RING_REC_USER, s, "0123456789abcdef", 16), 0);
	ring_publish(&w);
	seg->workers[2].latency.bucket[0] += 10;
	seg->workers[2].latency.count += 10;
	shm_tenant_slot(shm_worker_tenants(seg, 1), "t11")->failed += 4;
	/* After frame 2, a second CPU sample: 0.1 s of CPU over the third interval. */
	end2 = wait_for(&c, (size_t)(end1 - c.buf) + 2, "\n\n");
	assert_non_null(end2);
	end2off = (size_t)(end2 - c.buf);
	__atomic_fetch_add(&seg->workers[1].cpu_ns, 100000000ull, __ATOMIC_RELAXED);
	assert_int_equal(finish(&c), 0);
	if (getenv("FERRY_TEST_VERBOSE"))
		fputs(c.buf, stderr);

	frame1 = strndup(c.buf, (size_t)(end1 - c.buf) + 1);
	frame2 = strndup(end1 + 2, end2off - (size_t)(end1 - c.buf));
	frame3 = strdup(c.buf + end2off + 2);
	assert_non_null(frame1);
	assert_non_null(frame2);
	assert_null(strchr(c.buf, '\033'));
	f2 = strstr(frame2, "ferry top: instance ");
	assert_ptr_equal(f2, frame2);
	assert_ptr_equal(strstr(frame3, "ferry top: instance "), frame3);
	assert_null(strstr(frame3 + 1, "ferry top: instance ")); /* three frames, no more */
	for (int k = 0; k < 3; k++) {
		const char *f = k == 0 ? frame1 : k == 1 ? frame2 : frame3;

		expect_has(f, instance);
		frame_line(f, "ingest ", line, sizeof(line));
		frame_line(f, "decrypt.0 ", line, sizeof(line));
		frame_line(f, "produce ", line, sizeof(line));
		frame_line(f, "ingest>decrypt.0 ", line, sizeof(line));
		/* Source 0 is first among the healthy ones (in flight), its lag 7 s and more. */
		find_line(f, "/legacy-orders ", 1, line, sizeof(line));
		expect_has(line, "FAILING");
		expect_has(line, "HTTP 403 PERMISSION_DENIED");
		find_line(f, "/queue-00 ", 1, line, sizeof(line));
		v = field(line, 5);
		if (v < 7 || v > 60)
			fail_msg("lag %g s, want 7 s or a little more: %s", v, line);
		expect_has(f, "... and "); /* 60 sources do not fit 24 rows */
	}
	/* Frame 1 has no rates yet. */
	frame_line(frame1, "decrypt.0 ", line, sizeof(line));
	expect_has(line, " - ");
	expect_has(frame1, "interval -");

	/* Frame 2: rates over the interval it names. */
	iv = strstr(frame2, "interval ");
	assert_non_null(iv);
	dt = strtod(iv + strlen("interval "), NULL);
	if (dt < 0.15 || dt > 30)
		fail_msg("interval %g s for -d 0.2", dt);
	frame_line(frame2, "decrypt.0 ", line, sizeof(line));
	/* STAGE STATE SAYS CPU% RSS RST IN/s OUT/s INFLIGHT BEAT */
	/* One CPU sample since top started is no rate yet. */
	assert_string_equal(field_str(line, 3, tok, sizeof(tok)), "-");
	assert_int_equal((int)field(line, 5), 2);
	expect_near(field(line, 6) * dt, 1000, 10, "decrypt.0 IN/s x dt");
	assert_int_equal((int)field(line, 7), 0);
	assert_int_equal((int)field(line, 8), 3);
	frame_line(frame2, "ingest ", line, sizeof(line));
	assert_true(strstr(line, " up ") && strstr(line, " running "));
	expect_has(line, "   -      - "); /* CPU% and RSS not sampled: "-" */
	frame_line(frame2, "events/s in ", line, sizeof(line));
	expect_near(field(line, 2) * dt, 400, 5, "events/s in x dt");
	expect_has(line, "latency p50 125us p99 248us (10 delivered)");
	frame_line(frame2, "ingest>decrypt.0 ", line, sizeof(line));
	/* RING FILL USED(2 words) WRITES/s READS/s RECORDS */
	expect_near(field(line, 4) * dt, 100, 2, "ring writes/s x dt");
	assert_int_equal((int)field(line, 5), 0);
	assert_int_equal((int)field(line, 6), 100);
	/* Tenants with failures first: t11 (4 new failures), then t10. */
	frame_line(strstr(frame2, "TENANT "), "t1", line, sizeof(line));
	assert_true(!strncmp(line, "t11 ", 4));
	expect_near(field(line, 3) * dt, 4, 0.1, "t11 DEAD/s x dt");
	assert_int_equal((int)field(line, 5), 4);
	/* Frame 3: 0.1 s of CPU between the moments of frames 2 and 3. */
	iv = strstr(frame3, "interval ");
	assert_non_null(iv);
	dt = strtod(iv + strlen("interval "), NULL);
	frame_line(frame3, "decrypt.0 ", line, sizeof(line));
	expect_near(field(line, 3) * dt, 10, 0.1 + 0.05 * dt, "decrypt.0 CPU% x dt");
	free(frame1);
	free(frame2);
	free(frame3);
	ring_detach(&w);
	drop_segment(seg);
}

/* ferryd restarted (a new segment), then stopped (none): top follows, then exits 111. */
static void test_top_segment_goes(void **state)
{
	static const char *const args[] = {"top", "-d", "0.05", NULL};
	struct shm_segment *seg = make_segment();
	struct child c;
	size_t mark;

	(void)state;
	spawn(&c, args);
	assert_non_null(wait_for(&c, 0, "\n\n"));
	drop_segment(seg);
	seg = make_segment();
	seg->workers[1].records_in = 123456789;
	mark = c.len;
	assert_non_null(wait_for(&c, mark, "a new segment (ferryd restarted): reattached"));
	/* The frame after shows the new segment's counters. */
	mark = c.len;
	assert_non_null(wait_for(&c, mark, "ferry top: instance "));
	drop_segment(seg);
	assert_non_null(wait_for(&c, mark, "the segment is gone: ferryd of instance"));
	assert_int_equal(finish(&c), 111);

	/* No segment at all: 111 at once, with the usual word. */
	spawn(&c, args);
	assert_int_equal(finish(&c), 111);
	expect_has(c.buf, "no such segment");
}

/* On a terminal: escapes, the size the terminal has, and the terminal restored on q and SIGTERM. */
static void test_top_tty(void **state)
{
	struct shm_segment *seg = make_segment();
	struct winsize ws = {.ws_row = 40, .ws_col = 120};

	(void)state;
	/* k: 0 quit with q, 1 with SIGTERM, 2 after -n 2 frames (no alternate screen then) */
	for (int k = 0; k < 3; k++) {
		struct child c;
		char *argv[] = {(char *)FERRYCTL_PATH,
				(char *)"-i",
				instance,
				(char *)"top",
				(char *)"-d",
				(char *)"0.1",
				k == 2 ? (char *)"-n" : NULL,
				(char *)"2",
				NULL};
		struct termios tio;
		int status;

		memset(&c, 0, sizeof(c));
		c.pid = forkpty(&c.fd, NULL, NULL, &ws);
		assert_true(c.pid >= 0);
		if (c.pid == 0) {
			execv(FERRYCTL_PATH, argv);
			_exit(127);
		}
		/* Cursor hidden; 120 columns: the wide stage table; rows cleared as drawn. */
		assert_non_null(wait_for(&c, 0, "\033[?25l"));
		assert_non_null(wait_for(&c, 0, "DEAD/s"));
		assert_non_null(wait_for(&c, 0, "\033[K"));
		/* While it runs, the terminal neither echoes nor waits for lines. */
		assert_int_equal(tcgetattr(c.fd, &tio), 0);
		if (k < 2)
			assert_int_equal(tio.c_lflag & (ECHO | ICANON), 0);
		if (k == 0)
			assert_int_equal(write(c.fd, "q", 1), 1);
		else if (k == 1)
			assert_int_equal(kill(c.pid, SIGTERM), 0);
		assert_non_null(wait_for(&c, 0, k < 2 ? "\033[?25h\033[?1049l" : "\033[?25h"));
		if (getenv("FERRY_TEST_VERBOSE") && k == 0)
			fwrite(c.buf, 1, c.len, stderr);
		/* A pty gives EIO, not EOF, once the child is gone: reap directly. */
		assert_int_equal(waitpid(c.pid, &status, 0), c.pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
		/* The terminal as it was. */
		assert_int_equal(tcgetattr(c.fd, &tio), 0);
		assert_int_equal(tio.c_lflag & (ECHO | ICANON), ECHO | ICANON);
		if (k < 2) {
			assert_non_null(strstr(c.buf, "\033[?1049h"));
		} else {
			assert_null(strstr(c.buf, "\033[?1049h"));
			assert_non_null(strstr(c.buf, "interval 0.")); /* the second frame */
		}
		close(c.fd);
	}
	drop_segment(seg);
}

static void test_top_usage(void **state)
{
	char out[4096], args[128];

	(void)state;
	snprintf(args, sizeof(args), "-i %s top -d abc", instance);
	assert_int_equal(ferryctl_run(args, out, sizeof(out), 1), 100);
	expect_has(out, "-d: want seconds");
	snprintf(args, sizeof(args), "-i %s top -n 0", instance);
	assert_int_equal(ferryctl_run(args, out, sizeof(out), 1), 100);
	expect_has(out, "-n: want a number > 0, got '0'");
	snprintf(args, sizeof(args), "-i %s top extra", instance);
	assert_int_equal(ferryctl_run(args, out, sizeof(out), 1), 100);
	assert_int_equal(ferryctl_run("top --help", out, sizeof(out), 1), 0);
	expect_has(out, "usage: ferryctl [-i INSTANCE] top [-d SECONDS] [-n ITERATIONS]");
	assert_int_equal(ferryctl_run("--help", out, sizeof(out), 1), 0);
	expect_has(out, "status [--json]");
	expect_has(out, "top [-d SECONDS] [-n ITERATIONS]");
}

/* A failed test leaves no segment behind. */
static int teardown(void **state)
{
	(void)state;
	shm_segment_unlink(instance);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_status_json, teardown),
		cmocka_unit_test_teardown(test_top_frames, teardown),
		cmocka_unit_test_teardown(test_top_segment_goes, teardown),
		cmocka_unit_test_teardown(test_top_tty, teardown),
		cmocka_unit_test(test_top_usage),
	};

	alarm(120);
	snprintf(instance, sizeof(instance), "test-ferryctl-top-%d", (int)getpid());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
