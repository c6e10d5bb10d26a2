/* SPDX-License-Identifier: MIT */
/*
 * metrics: /metrics and /healthz rendered from a segment made with
 * shm_segment_create (every family with HELP and TYPE, label escaping,
 * cumulative latency buckets, tenants summed over shards, sources), and
 * the server driven by hand over loopback: 200, 404, HEAD, 405, and a
 * silent client closed at its deadline while others are answered.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "common/compiler.h"
#include "common/msg.h"
#include "common/time.h"
#include "shm/segment.h"
#include "supervisor/metrics.h"

struct fixture {
	char instance[64];
	struct shm_segment *seg;
	unsigned deaths[4];
	struct proc_sample self;
	struct metrics_view v;
};

static int setup(void **state)
{
	static const struct shm_worker_spec workers[] = {
		{"ingest", SHM_WORKER_INGEST, 0},
		{"map.0", SHM_WORKER_MAP, 0},
		{"map.1", SHM_WORKER_MAP, 1},
		{"produce", SHM_WORKER_PRODUCE, 0},
	};
	static const struct shm_ring_spec rings[] = {
		{"map.0>produce", 1u << 16, 1, 3},
		{"acks", 1u << 16, 3, 0},
	};
	static const char *const names[] = {"https://sqs.example/1/q\"uote\\back", "replay.jsonl"};
	static const uint32_t kinds[] = {MSG_SOURCE_SQS, MSG_SOURCE_REPLAY};
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->instance, sizeof(f->instance), "test-metrics-%d", (int)getpid());
	struct shm_spec spec = {f->instance, 4, workers, 2, rings, 2, names, kinds, 64};

	assert_int_equal(shm_segment_create(&spec, SHM_CREATE_REPLACE, &f->seg, err, sizeof(err)),
			 0);
	f->v = (struct metrics_view){.seg = f->seg,
				     .now = now_ns(),
				     .heartbeat_timeout_ns = 10ull * 1000000000ull,
				     .recent_deaths = f->deaths,
				     .self = &f->self};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	shm_segment_close(f->seg);
	shm_segment_unlink(f->instance);
	free(f);
	return 0;
}

/* Every stage running with a fresh heartbeat. */
static void all_up(struct fixture *f)
{
	for (unsigned i = 0; i < 4; i++) {
		struct shm_worker *c = &f->seg->workers[i];

		c->pid = 1000 + (int)i;
		c->state = SHM_SSTATE_UP;
		c->wstate = SHM_WSTATE_RUNNING;
		c->started_ns = f->v.now - 5000000000ull;
		c->heartbeat_ns = f->v.now - 500000000ull;
	}
}

static void has(const char *text, const char *line)
{
	if (!strstr(text, line))
		fail_msg("missing: %s\n--- in:\n%s", line, text);
}

/* has() of a line made from fmt (the instance, mostly). */
static void hasf(const char *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hasf(const char *text, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	has(text, line);
}

static void test_render(void **state)
{
	struct fixture *f = *state;
	struct shm_worker *produce = &f->seg->workers[3], *map0 = &f->seg->workers[1];
	struct shm_tenant *t0 = shm_worker_tenants(f->seg, 1), *t1 = shm_worker_tenants(f->seg, 2);
	struct shm_source *src = shm_sources(f->seg);
	char *text;
	size_t len;

	all_up(f);
	map0->records_in = 12;
	map0->records_out = 11;
	map0->dead_letters = 1;
	map0->restarts = 2;
	map0->cpu_ns = 1500000000ull;
	map0->rss_bytes = 8u << 20;
	map0->strikes = 1;
	f->deaths[1] = 2;
	produce->inflight = 7;
	produce->redelivered = 3;
	/* 250 us, 300 us, 2 s, 400 s: buckets 0, 1, 12 and the overflow. */
	produce->latency.bucket[0] = 1;
	produce->latency.bucket[1] = 1;
	produce->latency.bucket[12] = 1;
	produce->latency.bucket[SHM_LATENCY_BUCKETS - 1] = 1;
	produce->latency.count = 4;
	produce->latency.sum_us = 250 + 300 + 2000000 + 400000000;
	/* acme on both shards (summed), the overflow slot, a name to escape */
	strcpy(shm_tenant_slot(t0, "acme")->name, "acme");
	shm_tenant_slot(t0, "acme")->ok = 5;
	shm_tenant_slot(t1, "acme")->ok = 6;
	shm_tenant_slot(t1, "acme")->failed = 1;
	shm_tenant_slot(t1, "we\"ird\\ten\nant")->ok = 1;
	src[0].health = SHM_SOURCE_RETRYING;
	src[0].received = 40;
	src[0].acked = 30;
	src[0].inflight = 10;
	{
		/* Two of the queue's messages in the in-flight table, the older 12.5 s old. */
		struct shm_inflight *tab = shm_inflight(f->seg);

		assert_non_null(tab);
		tab[3] = (struct shm_inflight){.seq = 3,
					       .state = SHM_INFLIGHT_PIPELINE,
					       .source = 0,
					       .received_ns = f->v.now - 12500000000ull};
		tab[4] = (struct shm_inflight){.seq = 4,
					       .state = SHM_INFLIGHT_ACKED,
					       .source = 0,
					       .received_ns = f->v.now - 2000000000ull};
	}
	f->self = (struct proc_sample){.cpu_ns = 2000000000ull, .rss_bytes = 4096, .open_fds = 9};

	text = metrics_render(&f->v, &len);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	hasf(text, "ferry_stage_records_in_total{instance=\"%s\",stage=\"map.0\"} 12\n",
	     f->instance);
	hasf(text, "ferry_stage_up{instance=\"%s\",stage=\"produce\"} 1\n", f->instance);
	hasf(text, "ferry_stage_cpu_seconds_total{instance=\"%s\",stage=\"map.0\"} 1.5\n",
	     f->instance);
	hasf(text, "ferry_stage_resident_memory_bytes{instance=\"%s\",stage=\"map.0\"} 8388608\n",
	     f->instance);
	hasf(text, "ferry_stage_recent_deaths{instance=\"%s\",stage=\"map.0\"} 2\n", f->instance);
	hasf(text, "ferry_stage_heartbeat_age_seconds{instance=\"%s\",stage=\"map.1\"} 0.500\n",
	     f->instance);
	hasf(text, "ferry_stage_redelivered_total{instance=\"%s\",stage=\"produce\"} 3\n",
	     f->instance);
	has(text, "# HELP ferry_stage_up ");
	has(text, "# TYPE ferry_stage_up gauge\n");
	has(text, "# TYPE ferry_stage_restarts_total counter\n");
	has(text, "# TYPE ferry_delivery_latency_seconds histogram\n");
	/* rings */
	hasf(text, "ferry_ring_capacity_bytes{instance=\"%s\",ring=\"map.0>produce\"} 65536\n",
	     f->instance);
	hasf(text, "ferry_ring_used_bytes{instance=\"%s\",ring=\"acks\"} 0\n", f->instance);
	/* sources, the name escaped */
	hasf(text,
	     "ferry_source_health{instance=\"%s\",source=\"https://sqs.example/1/"
	     "q\\\"uote\\\\back\","
	     "kind=\"sqs\"} 2\n",
	     f->instance);
	hasf(text,
	     "ferry_source_inflight{instance=\"%s\",source=\"replay.jsonl\",kind=\"replay\"} "
	     "0\n",
	     f->instance);
	/* lag: the age of a source's oldest message in the in-flight table, 0 without one */
	hasf(text,
	     "ferry_source_lag_seconds{instance=\"%s\",source=\"https://sqs.example/1/"
	     "q\\\"uote\\\\back\",kind=\"sqs\"} 12.500\n",
	     f->instance);
	hasf(text,
	     "ferry_source_lag_seconds{instance=\"%s\",source=\"replay.jsonl\",kind=\"replay\"} "
	     "0.000\n",
	     f->instance);
	has(text, "kind=\"sqs\"} 40\n");
	/* tenants: summed over the two map shards */
	hasf(text, "ferry_tenant_events_total{instance=\"%s\",tenant=\"acme\",stage=\"map\"} 11\n",
	     f->instance);
	hasf(text,
	     "ferry_tenant_dead_letters_total{instance=\"%s\",tenant=\"acme\",stage=\"map\"} "
	     "1\n",
	     f->instance);
	has(text, "tenant=\"we\\\"ird\\\\ten\\nant\",stage=\"map\"} 1\n");
	/* the histogram: cumulative, le in seconds, +Inf = _count */
	hasf(text, "ferry_delivery_latency_seconds_bucket{instance=\"%s\",le=\"0.00025\"} 1\n",
	     f->instance);
	hasf(text, "ferry_delivery_latency_seconds_bucket{instance=\"%s\",le=\"0.0005\"} 2\n",
	     f->instance);
	hasf(text, "ferry_delivery_latency_seconds_bucket{instance=\"%s\",le=\"2.5\"} 3\n",
	     f->instance);
	hasf(text, "ferry_delivery_latency_seconds_bucket{instance=\"%s\",le=\"300\"} 3\n",
	     f->instance);
	hasf(text, "ferry_delivery_latency_seconds_bucket{instance=\"%s\",le=\"+Inf\"} 4\n",
	     f->instance);
	hasf(text, "ferry_delivery_latency_seconds_count{instance=\"%s\"} 4\n", f->instance);
	hasf(text, "ferry_delivery_latency_seconds_sum{instance=\"%s\"} 402.000550\n", f->instance);
	/* ferryd itself */
	hasf(text, "ferry_process_open_fds{instance=\"%s\"} 9\n", f->instance);
	hasf(text, "ferry_healthy{instance=\"%s\"} 1\n", f->instance);
	/* Every sample line's family has HELP and TYPE before it. */
	for (char *p = text, *nl; *p; p = nl + 1) {
		char name[128], want[160];
		size_t n;

		nl = strchr(p, '\n');
		assert_non_null(nl);
		if (*p == '#')
			continue;
		n = strcspn(p, "{ ");
		assert_true(n < sizeof(name));
		memcpy(name, p, n);
		name[n] = 0;
		if (n > 7 && !strcmp(name + n - 7, "_bucket"))
			name[n - 7] = 0;
		if (n > 4 && !strcmp(name + n - 4, "_sum"))
			name[n - 4] = 0;
		if (n > 6 && !strcmp(name + n - 6, "_count"))
			name[n - 6] = 0;
		snprintf(want, sizeof(want), "# TYPE %s ", name);
		*nl = 0;
		if (!strstr(text, want))
			fail_msg("no TYPE for %s", p);
		*nl = '\n';
	}
	free(text);
}

static void test_health(void **state)
{
	struct fixture *f = *state;
	char *text;
	size_t len;

	all_up(f);
	assert_int_equal(metrics_health(&f->v, &text, &len), 0);
	assert_string_equal(text, "ok\n");
	free(text);

	f->seg->workers[0].state = SHM_SSTATE_BACKOFF;
	f->seg->workers[0].pid = 0;
	f->seg->workers[1].started_ns = f->v.now - 20000000000ull;
	f->seg->workers[1].heartbeat_ns = f->v.now - 11000000000ull; /* past the 10 s timeout */
	f->seg->workers[2].wstate = SHM_WSTATE_INIT;
	f->seg->workers[3].state = SHM_SSTATE_FAILED;
	f->deaths[2] = 3;
	assert_int_equal(metrics_health(&f->v, &text, &len), 5);
	has(text, "ingest: down, restart scheduled (backoff)\n");
	has(text, "map.0: no heartbeat for 11.0 s (timeout 10.0 s)\n");
	has(text, "map.1: starting\n");
	has(text, "map.1: crash loop: 3 deaths in the last 60 s\n");
	has(text, "produce: failed: cannot be started\n");
	free(text);
	f->v.draining = 1;
	all_up(f);
	f->deaths[2] = 0;
	assert_int_equal(metrics_health(&f->v, &text, &len), 1);
	assert_string_equal(text, "instance draining (SIGTERM)\n");
	free(text);
	text = metrics_render(&f->v, &len);
	assert_non_null(text);
	has(text, "ferry_healthy{instance=");
	assert_non_null(strstr(text, "} 0\n# HELP ferry_process_cpu_seconds_total"));
	free(text);
}

static struct fixture *view_f;

static void view(void *arg, struct metrics_view *v)
{
	(void)arg;
	*v = view_f->v;
	v->now = now_ns();
}

static int connect_to(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_true(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EINPROGRESS);
	return fd;
}

/* Drive the server until fd reads EOF (or the time is up); the answer in buf. */
static size_t exchange(struct metrics_server *m, int fd, char *buf, size_t cap, unsigned ms)
{
	uint64_t end = now_ns() + (uint64_t)ms * 1000000ull;
	size_t got = 0;

	while (now_ns() < end) {
		struct pollfd p[1 + METRICS_CONNS_MAX];
		unsigned n = metrics_server_pollfds(m, p, 1 + METRICS_CONNS_MAX);
		ssize_t r;

		poll(p, n, 10);
		metrics_server_run(m, p, n, now_ns());
		r = read(fd, buf + got, cap - 1 - got);
		if (r == 0)
			break;
		if (r > 0)
			got += (size_t)r;
	}
	buf[got] = 0;
	return got;
}

static void ask(struct metrics_server *m, const char *req, char *buf, size_t cap)
{
	int fd = connect_to(metrics_server_port(m));
	uint64_t end = now_ns() + 1000000000ull;

	/* The connect completes once the server side accepts it (or the backlog does). */
	while (write(fd, req, strlen(req)) < 0 && now_ns() < end) {
		struct pollfd p[1 + METRICS_CONNS_MAX];
		unsigned n = metrics_server_pollfds(m, p, 1 + METRICS_CONNS_MAX);

		poll(p, n, 10);
		metrics_server_run(m, p, n, now_ns());
	}
	exchange(m, fd, buf, cap, 3000);
	close(fd);
}

static void test_server(void **state)
{
	struct fixture *f = *state;
	char err[256], *buf = malloc(1 << 20);
	struct metrics_server *m;
	uint64_t t0;
	int silent;

	assert_non_null(buf);
	all_up(f);
	view_f = f;
	assert_null(metrics_server_new("nonsense", view, NULL, err, sizeof(err)));
	m = metrics_server_new("127.0.0.1:0", view, NULL, err, sizeof(err));
	assert_non_null(m);
	assert_true(metrics_server_port(m) > 0);

	ask(m, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", buf, 1 << 20);
	has(buf, "HTTP/1.1 200 OK\r\n");
	has(buf, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n");
	has(buf, "\r\n\r\n# HELP ferry_stage_up ");
	ask(m, "GET /healthz?x=1 HTTP/1.0\r\n\r\n", buf, 1 << 20);
	has(buf, "HTTP/1.1 200 OK\r\n");
	has(buf, "\r\n\r\nok\n");
	ask(m, "HEAD /metrics HTTP/1.1\r\n\r\n", buf, 1 << 20);
	has(buf, "HTTP/1.1 200 OK\r\n");
	assert_non_null(strstr(buf, "\r\n\r\n"));
	assert_string_equal(strstr(buf, "\r\n\r\n"), "\r\n\r\n");
	ask(m, "GET /nope HTTP/1.1\r\n\r\n", buf, 1 << 20);
	has(buf, "HTTP/1.1 404 Not Found\r\n");
	ask(m, "POST /metrics HTTP/1.1\r\n\r\n", buf, 1 << 20);
	has(buf, "HTTP/1.1 405 ");
	ask(m, "garbage\r\n\r\n", buf, 1 << 20);
	has(buf, "HTTP/1.1 400 ");
	f->seg->workers[1].state = SHM_SSTATE_BACKOFF;
	ask(m, "GET /healthz HTTP/1.1\r\n\r\n", buf, 1 << 20);
	has(buf, "HTTP/1.1 503 Service Unavailable\r\n");
	has(buf, "map.0: down, restart scheduled (backoff)\n");

	/* A client that says nothing: others are still answered, it is closed at its deadline. */
	silent = connect_to(metrics_server_port(m));
	t0 = now_ns();
	ask(m, "GET /healthz HTTP/1.1\r\n\r\n", buf, 1 << 20);
	has(buf, "HTTP/1.1 503");
	assert_true(now_ns() - t0 < 1000000000ull);
	assert_int_equal(exchange(m, silent, buf, 1 << 20, 4000), 0);
	assert_true(now_ns() - t0 >= (METRICS_DEADLINE_MS - 100) * 1000000ull);
	assert_true(now_ns() - t0 < (METRICS_DEADLINE_MS + 1500) * 1000000ull);
	close(silent);
	metrics_server_free(m);
	metrics_server_free(NULL);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_render, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server, setup, teardown),
	};

	alarm(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
