/* SPDX-License-Identifier: MIT */
/*
 * ferryd's metrics endpoint on a running instance (tests/proc/harness.h:
 * ferryd, its stages, a replay source, mock Kafka), metrics_listen on a
 * loopback port of its own:
 *
 *  - /metrics parses with python3's prometheus_client (a parser nobody
 *    here wrote): every stage up, every family with its type, the latency
 *    histogram cumulative and filled, CPU and memory sampled per stage;
 *  - /healthz is 200 while all runs, 503 naming map.0 while it is
 *    SIGSTOPped past heartbeat_timeout (then killed by ferryd), 503 naming
 *    produce once it is killed, 200 again once each is back;
 *  - three deaths of decrypt.1 within the minute: 503 "crash loop".
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "common/time.h"
#include "tests/proc/harness.h"
#include "tests/proc/port.h"

#define PYTHON "/usr/bin/python3"

static int port;

/* GET path: the status code (0: no answer), the body in body. */
static int http_get(const char *path, char *body, size_t cap)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {5, 0};
	char req[128], *buf = malloc(4 << 20), *sep;
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), code = 0;
	ssize_t n;

	assert_non_null(buf);
	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	body[0] = 0;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		goto out;
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		goto out;
	while (got < (4u << 20) - 1 && (n = read(fd, buf + got, (4u << 20) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	sep = strstr(buf, "\r\n\r\n");
	if (!sep || sscanf(buf, "HTTP/1.1 %d", &code) != 1)
		goto out;
	snprintf(body, cap, "%s", sep + 4);
out:
	close(fd);
	free(buf);
	return code;
}

struct want {
	int code;
	const char *has; /* in the body, or NULL */
};

static char body[4 << 20];

static int health_is(void *arg)
{
	const struct want *w = arg;

	return http_get("/healthz", body, sizeof(body)) == w->code &&
	       (!w->has || strstr(body, w->has));
}

static void expect_health(int code, const char *has, unsigned ms)
{
	struct want w = {code, has};

	if (!wait_until(health_is, &w, ms))
		fail_msg("/healthz: want %d with '%s', got: %s", code, has ? has : "", body);
}

static const char check_py[] =
	"import sys\n"
	"from prometheus_client.parser import text_string_to_metric_families\n"
	"text = open(sys.argv[1]).read()\n"
	"inst = sys.argv[2]\n"
	"fams = {f.name: f for f in text_string_to_metric_families(text)}\n"
	"def samples(name):\n"
	"    return [s for f in fams.values() for s in f.samples if s.name == name]\n"
	"for f in fams.values():\n"
	"    assert f.type in ('counter', 'gauge', 'histogram'), (f.name, f.type)\n"
	"    assert f.documentation, f.name\n"
	"    for s in f.samples:\n"
	"        assert s.labels.get('instance') == inst, s\n"
	"stages = ['ingest', 'decrypt.0', 'decrypt.1', 'map.0', 'map.1', 'produce']\n"
	"up = {s.labels['stage']: s.value for s in samples('ferry_stage_up')}\n"
	"assert up == {k: 1.0 for k in stages}, up\n"
	"rss = {s.labels['stage']: s.value for s in samples('ferry_stage_resident_memory_bytes')}\n"
	"assert all(rss[k] > 0 for k in stages), rss\n"
	"assert sum(s.value for s in samples('ferry_stage_cpu_seconds_total')) > 0\n"
	"for n in ['restarts', 'records_in', 'records_out', 'dead_letters', 'errors',\n"
	"          'redelivered', 'cpu_seconds']:\n"
	"    assert len(samples('ferry_stage_%s_total' % n)) == 6, n\n"
	"for n in ['inflight', 'heartbeat_age_seconds', 'strikes', 'recent_deaths']:\n"
	"    assert len(samples('ferry_stage_' + n)) == 6, n\n"
	"h = fams['ferry_delivery_latency_seconds']\n"
	"assert h.type == 'histogram'\n"
	"b = [(float(s.labels['le']), s.value) for s in h.samples if s.name.endswith('_bucket')]\n"
	"assert len(b) == 20 and b[-1][0] == float('inf'), b\n"
	"assert all(b[i][0] < b[i + 1][0] and b[i][1] <= b[i + 1][1] for i in range(19)), b\n"
	"count = [s.value for s in h.samples if s.name.endswith('_count')][0]\n"
	"total = [s.value for s in h.samples if s.name.endswith('_sum')][0]\n"
	"assert count == b[-1][1] and count >= int(sys.argv[3]), (count, b)\n"
	"assert 0 < total < count * 60, total\n"
	"cap = {s.labels['ring']: s.value for s in samples('ferry_ring_capacity_bytes')}\n"
	"assert cap['map.0>produce'] == 4194304 and len(cap) == 7, cap\n"
	"assert samples('ferry_ring_published_records_total')\n"
	"src = samples('ferry_source_health')\n"
	"assert [x for x in src if x.labels['kind'] == 'replay'], src\n"
	"ev = {(s.labels['tenant'], s.labels['stage']): s.value\n"
	"      for s in samples('ferry_tenant_events_total')}\n"
	"assert ev.get(('t00', 'decrypt'), 0) > 0 and len(ev) >= 20, ev\n"
	"assert samples('ferry_process_open_fds')[0].value > 3\n"
	"assert samples('ferry_process_resident_memory_bytes')[0].value > 0\n"
	"print('ok %d families' % len(fams))\n";

/* ferryd samples /proc once a second: a stage started since shows 0 until then. */
static int all_sampled(void *unused)
{
	(void)unused;
	for (unsigned i = 0; i < E.seg->hdr->n_workers; i++)
		if (!load64(&E.seg->workers[i].rss_bytes))
			return 0;
	return 1;
}

/* /metrics through prometheus_client; at least min_count latencies observed. */
static void check_metrics(unsigned min_count)
{
	char path[128], cmd[512], out[256] = "", line[256];
	FILE *f, *p;
	int code;

	assert_true(wait_until(all_sampled, NULL, 5000));
	code = http_get("/metrics", body, sizeof(body));
	assert_int_equal(code, 200);
	snprintf(path, sizeof(path), "%s/metrics.txt", E.dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(body, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/check.py", E.dir);
	write_file(path, check_py);
	snprintf(cmd, sizeof(cmd), PYTHON " %s %s/metrics.txt %s %u 2>&1", path, E.dir, E.instance,
		 min_count);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p)) /* the last line says what failed */
		snprintf(out, sizeof(out), "%s", line);
	if (pclose(p) != 0 || strncmp(out, "ok ", 3))
		fail_msg("prometheus_client on %s/metrics.txt: %s", E.dir, out);
}

static uint64_t acked_n;

static void test_metrics_http(void **state)
{
	char extra[128];
	pid_t pid;

	(void)state;
	port = test_free_port();
	snprintf(extra, sizeof(extra), "metrics_listen = 127.0.0.1:%d\nheartbeat_timeout = 2s",
		 port);
	conf_write(30000, 1000, extra);
	ferryd_start(NULL, NULL);
	expect_health(200, "ok\n", 20000);
	acked_n = 500;
	assert_true(wait_until(acked_at_least, &acked_n, 30000));
	check_metrics(400);
	assert_int_equal(http_get("/nope", body, sizeof(body)), 404);

	/* Hung: stopped past the heartbeat timeout; ferryd kills and restarts it. */
	pid = worker("map.0")->pid;
	assert_true(pid > 0);
	assert_int_equal(kill(pid, SIGSTOP), 0);
	expect_health(503, "map.0: ", 10000);
	kill(pid, SIGCONT);
	expect_health(200, "ok\n", 20000);

	/* Killed. */
	pid = worker("produce")->pid;
	assert_int_equal(kill(pid, SIGKILL), 0);
	expect_health(503, "produce: ", 5000);
	expect_health(200, "ok\n", 20000);
	acked_n = acked() + 200;
	assert_true(wait_until(acked_at_least, &acked_n, 30000));
	check_metrics(600);

	/* A crash loop: three deaths of decrypt.1 within the minute. */
	for (int i = 0; i < 3; i++) {
		assert_true(wait_until(running, "decrypt.1", 20000));
		kill(worker("decrypt.1")->pid, SIGKILL);
		assert_true(wait_until(down, "decrypt.1", 5000));
	}
	expect_health(503, "decrypt.1: crash loop: 3 deaths in the last 60 s\n", 5000);
	assert_int_equal(http_get("/metrics", body, sizeof(body)), 200);
	assert_non_null(strstr(body, "stage=\"decrypt.1\"} 3\n"));
	assert_non_null(strstr(body, "ferry_healthy{instance="));
	ferryd_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_metrics_http, setup, teardown),
	};

	return harness_run("test-metrics-http", tests, sizeof(tests) / sizeof(tests[0]));
}
