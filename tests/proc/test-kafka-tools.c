/* SPDX-License-Identifier: MIT */
/*
 * ferry-kafka-mock and ferry-kafka-dump together: the mock comes up as its
 * own process and says so through a pipe, an idempotent producer writes
 * 10,000 messages with keys and headers into it, the dump gives every one
 * back (key, headers, value, offsets without gap or duplicate), refuses
 * what it cannot deliver (exit 1), and the mock stops cleanly on SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

#include "common/compiler.h"
#include "common/time.h"

#ifndef KAFKA_MOCK_PATH
#error "KAFKA_MOCK_PATH must name the ferry-kafka-mock binary"
#endif
#ifndef KAFKA_DUMP_PATH
#error "KAFKA_DUMP_PATH must name the ferry-kafka-dump binary"
#endif

#define MESSAGES   10000
#define PARTITIONS 3
#define TOPIC	   "ferry.test"
#define AUTO_TOPIC "ferry.auto" /* not created by the mock: by the producer */

static pid_t mock = -1;
static char bootstrap[1024];

/* Message i: a key, headers and a value all derived from i. */
static bool key_binary(int i)
{
	return i % 1000 == 7; /* not UTF-8: comes back as key_b64 */
}

static bool header_binary(int i)
{
	return i % 1000 == 9; /* "bin" header not UTF-8: comes back in headers_b64 */
}

static bool tombstone(int i)
{
	return i % 1000 == 11; /* null value */
}

static size_t key_of(int i, char *buf, size_t len)
{
	if (key_binary(i))
		return (size_t)snprintf(buf, len, "\xff\xfe%d", i);
	return (size_t)snprintf(buf, len, "key-%05d", i);
}

static size_t value_of(int i, unsigned char *buf)
{
	size_t len = (size_t)((uint32_t)i * 2654435761u % 300); /* 0..299: empty values too */

	for (size_t k = 0; k < len; k++)
		buf[k] = (unsigned char)((unsigned)i ^ ((unsigned)i >> 8) ^ k);
	return len;
}

/* Decode padded base64; the length, or -1 if s is not base64. */
static ssize_t b64_decode(const char *s, unsigned char *out, size_t cap)
{
	size_t n = strlen(s), o = 0;

	if (n % 4)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		uint32_t v = 0;
		int pad = 0;

		for (int k = 0; k < 4; k++) {
			char c = s[i + k];
			const char *tab =
				"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
			const char *p = c ? strchr(tab, c) : NULL;

			if (c == '=' && i + 4 == n && k >= 2) {
				pad++;
				v <<= 6;
				continue;
			}
			if (!p || pad)
				return -1;
			v = v << 6 | (uint32_t)(p - tab);
		}
		for (int k = 0; k < 3 - pad; k++) {
			if (o == cap)
				return -1;
			out[o++] = (unsigned char)(v >> (16 - 8 * k));
		}
	}
	return (ssize_t)o;
}

/* Start the mock with topic TOPIC; fill `bootstrap` from its first line. */
static void mock_start(void)
{
	int out[2], ready[2];
	char buf[16], fdarg[16], topic[64], *nl;
	size_t got = 0;
	FILE *f;

	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	mock = fork();
	assert_true(mock >= 0);
	if (mock == 0) {
		dup2(out[1], STDOUT_FILENO);
		fcntl(ready[1], F_SETFD, 0); /* the one fd the mock inherits */
		snprintf(fdarg, sizeof(fdarg), "%d", ready[1]);
		snprintf(topic, sizeof(topic), "%s:%d", TOPIC, PARTITIONS);
		execl(KAFKA_MOCK_PATH, "ferry-kafka-mock", "-b", "3", "-t", topic, "--ready-fd",
		      fdarg, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	close(ready[1]);

	/* Wait on the pipe: "ready\n", or EOF if the mock died. */
	while (got < 6) {
		ssize_t n = read(ready[0], buf + got, sizeof(buf) - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n > 0);
		got += (size_t)n;
	}
	buf[got] = 0;
	assert_string_equal(buf, "ready\n");
	/* The mock closed its end after "ready": nothing more comes. */
	assert_int_equal(read(ready[0], buf, sizeof(buf)), 0);
	close(ready[0]);

	/* The bootstrap line was flushed before "ready". */
	f = fdopen(out[0], "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, 11, f));
	assert_string_equal(buf, "bootstrap=");
	assert_non_null(fgets(bootstrap, sizeof(bootstrap), f));
	nl = strchr(bootstrap, '\n');
	assert_non_null(nl);
	*nl = 0;
	/* Three brokers, three loopback listeners. */
	assert_non_null(strchr(bootstrap, ','));
	assert_non_null(strchr(strchr(bootstrap, ',') + 1, ','));
	fclose(f);
}

struct delivery {
	unsigned ok, failed;
	rd_kafka_resp_err_t first_err;
	int partition_seen[PARTITIONS];
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct delivery *dl = opaque;

	(void)rk;
	if (m->err) {
		if (!dl->failed++)
			dl->first_err = m->err;
		return;
	}
	dl->ok++;
	if (m->partition >= 0 && m->partition < PARTITIONS)
		dl->partition_seen[m->partition]++;
}

static rd_kafka_t *producer_new(struct delivery *dl)
{
	const char *kv[][2] = {
		{"bootstrap.servers", bootstrap},
		{"enable.idempotence", "true"},
		{"acks", "all"},
		{"linger.ms", "5"},
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[512];
	rd_kafka_t *rk;

	for (size_t i = 0; i < ARRAY_SIZE(kv); i++)
		if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof(errstr)))
			fail_msg("%s: %s", kv[i][0], errstr);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_opaque(conf, dl);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk)
		fail_msg("rd_kafka_new: %s", errstr);
	return rk;
}

static void produce(rd_kafka_t *rk, const char *topic, int i)
{
	unsigned char value[300];
	char key[32], seq[16];
	size_t klen = key_of(i, key, sizeof(key)), vlen = value_of(i, value);
	rd_kafka_resp_err_t err;

	snprintf(seq, sizeof(seq), "%d", i);
	do {
		err = rd_kafka_producev(
			rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_HEADER("seq", seq, -1),
			RD_KAFKA_V_HEADER("src", "test-kafka-tools", -1),
			RD_KAFKA_V_HEADER("bin", header_binary(i) ? "\xc0\x80" : "ok", 2),
			RD_KAFKA_V_VALUE(tombstone(i) ? NULL : value, tombstone(i) ? 0 : vlen),
			RD_KAFKA_V_END);
		if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 10); /* serve delivery reports to make room */
	} while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
	if (err)
		fail_msg("produce %d: %s", i, rd_kafka_err2str(err));
}

/* Run a shell command; its exit status, its stdout (and stderr with 2>&1) in a malloc'd buffer. */
static int run(const char *cmd, char **ret_out, size_t *ret_len)
{
	size_t cap = 1 << 16, len = 0, n;
	char *out = malloc(cap);
	FILE *p = popen(cmd, "r");
	int status;

	assert_non_null(out);
	assert_non_null(p);
	while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
		len += n;
		if (cap - len - 1 == 0) {
			cap *= 2;
			out = realloc(out, cap);
			assert_non_null(out);
		}
	}
	out[len] = 0;
	status = pclose(p);
	assert_true(WIFEXITED(status));
	*ret_out = out;
	if (ret_len)
		*ret_len = len;
	return WEXITSTATUS(status);
}

static int dump(const char *args, char **ret_out)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "%s -b %s %s", KAFKA_DUMP_PATH, bootstrap, args);
	return run(cmd, ret_out, NULL);
}

static const char *json_str(const cJSON *obj, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* One dump line for message i: key, headers and value as produced. */
static void check_message(const cJSON *msg, int i, int line)
{
	const cJSON *headers = cJSON_GetObjectItemCaseSensitive(msg, "headers");
	const cJSON *hb64 = cJSON_GetObjectItemCaseSensitive(msg, "headers_b64");
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(msg, "value");
	unsigned char want[300], got[400];
	char key[32];
	size_t klen = key_of(i, key, sizeof(key)), vlen = value_of(i, want);
	ssize_t n;

	if (key_binary(i)) {
		assert_null(cJSON_GetObjectItemCaseSensitive(msg, "key"));
		assert_non_null(json_str(msg, "key_b64"));
		n = b64_decode(json_str(msg, "key_b64"), got, sizeof(got));
		assert_int_equal(n, klen);
		assert_memory_equal(got, key, klen);
	} else {
		assert_null(cJSON_GetObjectItemCaseSensitive(msg, "key_b64"));
		assert_non_null(json_str(msg, "key"));
		assert_string_equal(json_str(msg, "key"), key);
	}

	assert_true(cJSON_IsObject(headers));
	assert_string_equal(json_str(headers, "src"), "test-kafka-tools");
	if (header_binary(i)) {
		assert_true(cJSON_IsObject(hb64));
		assert_int_equal(cJSON_GetArraySize(hb64), 1);
		assert_string_equal(json_str(hb64, "bin"), "wIA="); /* c0 80 */
		assert_int_equal(cJSON_GetArraySize(headers), 2);
	} else {
		assert_null(hb64);
		assert_string_equal(json_str(headers, "bin"), "ok");
		assert_int_equal(cJSON_GetArraySize(headers), 3);
	}

	if (tombstone(i)) {
		assert_true(cJSON_IsNull(value));
		return;
	}
	if (!cJSON_IsString(value))
		fail_msg("line %d: message %d has no string value", line, i);
	n = b64_decode(value->valuestring, got, sizeof(got));
	if (n != (ssize_t)vlen || memcmp(got, want, vlen) != 0)
		fail_msg("line %d: value of message %d differs ('%s', %zu bytes expected)", line, i,
			 value->valuestring, vlen);
}

static void test_produce_dump(void **state)
{
	struct delivery dl = {0};
	int64_t next_offset[PARTITIONS] = {0}, per_partition[PARTITIONS];
	bool *seen = calloc(MESSAGES, sizeof(*seen));
	char *out, *line, *save = NULL;
	int lines = 0, status;
	uint64_t t0, t1;
	rd_kafka_t *rk;

	(void)state;
	assert_non_null(seen);
	mock_start();

	rk = producer_new(&dl);
	t0 = now_ns();
	for (int i = 0; i < MESSAGES; i++)
		produce(rk, TOPIC, i);
	assert_int_equal(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
	t1 = now_ns();
	if (dl.failed)
		fail_msg("%u deliveries failed, first: %s", dl.failed,
			 rd_kafka_err2str(dl.first_err));
	assert_int_equal(dl.ok, MESSAGES);
	for (int p = 0; p < PARTITIONS; p++) {
		assert_true(dl.partition_seen[p] > 0);
		per_partition[p] = dl.partition_seen[p];
	}
	printf("# %d messages (idempotent, acks=all) produced into the mock in %.0f ms: "
	       "%.0f messages/s\n",
	       MESSAGES, (double)(t1 - t0) / 1e6, MESSAGES / ((double)(t1 - t0) / 1e9));

	/* A topic nobody created: the mock creates it on the producer's metadata request. */
	memset(dl.partition_seen, 0, sizeof(dl.partition_seen));
	for (int i = 0; i < 3; i++)
		produce(rk, AUTO_TOPIC, i);
	assert_int_equal(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
	assert_int_equal(dl.ok, MESSAGES + 3);
	rd_kafka_destroy(rk);

	/* Every message once, offsets per partition from 0 without gap. */
	assert_int_equal(dump("-t " TOPIC " -f json --idle-ms 500", &out), 0);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		cJSON *msg = cJSON_Parse(line);
		const cJSON *part, *off;
		const char *seq;
		int p, i;

		if (!msg)
			fail_msg("line %d is no JSON: %s", lines, line);
		part = cJSON_GetObjectItemCaseSensitive(msg, "partition");
		off = cJSON_GetObjectItemCaseSensitive(msg, "offset");
		assert_true(cJSON_IsNumber(part) && cJSON_IsNumber(off));
		p = part->valueint;
		assert_in_range(p, 0, PARTITIONS - 1);
		if ((int64_t)off->valuedouble != next_offset[p])
			fail_msg("partition %d: offset %.0f where %lld was expected", p,
				 off->valuedouble, (long long)next_offset[p]);
		next_offset[p]++;
		seq = json_str(cJSON_GetObjectItemCaseSensitive(msg, "headers"), "seq");
		assert_non_null(seq);
		i = atoi(seq);
		assert_in_range(i, 0, MESSAGES - 1);
		if (seen[i])
			fail_msg("message %d twice", i);
		seen[i] = true;
		check_message(msg, i, lines);
		cJSON_Delete(msg);
		lines++;
	}
	free(out);
	assert_int_equal(lines, MESSAGES);
	for (int p = 0; p < PARTITIONS; p++)
		assert_int_equal(next_offset[p], per_partition[p]);
	free(seen);

	/* Counting: by idle end (default 2 s), by --expect. */
	assert_int_equal(dump("-t " TOPIC " --count-only", &out), 0);
	assert_string_equal(out, "10000\n");
	free(out);
	assert_int_equal(dump("-t " TOPIC " --count-only --expect 10000 --timeout-ms 20000", &out),
			 0);
	assert_string_equal(out, "10000\n");
	free(out);
	assert_int_equal(dump("-t " AUTO_TOPIC " --count-only --idle-ms 200", &out), 0);
	assert_string_equal(out, "3\n");
	free(out);

	/* What cannot be had is a failure: one message too many. */
	assert_int_equal(
		dump("-t " TOPIC " --count-only --expect 10001 --timeout-ms 1500 2>&1", &out), 1);
	if (!strstr(out, "timeout after 1500 ms: 10000 of 10001 messages read"))
		fail_msg("unexpected output: %s", out);
	free(out);
	/*
	 * The mock (librdkafka 2.0.2) creates any topic a client asks metadata
	 * for, with 4 partitions, so an unknown topic reads as an empty one.
	 */
	assert_int_equal(dump("-t ferry.nosuch --count-only --idle-ms 200", &out), 0);
	assert_string_equal(out, "0\n");
	free(out);

	/* SIGTERM stops the mock cleanly. */
	assert_int_equal(kill(mock, SIGTERM), 0);
	assert_int_equal(waitpid(mock, &status, 0), mock);
	mock = -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("mock ended with status %#x", status);
}

static void test_usage(void **state)
{
	char *out;

	(void)state;
	assert_int_equal(run(KAFKA_DUMP_PATH " 2>&1", &out, NULL), 100);
	assert_non_null(strstr(out, "usage: ferry-kafka-dump"));
	free(out);
	assert_int_equal(run(KAFKA_DUMP_PATH " -b x:1 -t t -f xml 2>&1", &out, NULL), 100);
	free(out);
	assert_int_equal(run(KAFKA_DUMP_PATH " -b x:1 -t t --expect -3 2>&1", &out, NULL), 100);
	free(out);
	assert_int_equal(run(KAFKA_MOCK_PATH " -t nopartitions 2>&1", &out, NULL), 100);
	assert_non_null(strstr(out, "TOPIC:PARTITIONS"));
	free(out);
	assert_int_equal(run(KAFKA_MOCK_PATH " -t a:1 -t a:2 2>&1", &out, NULL), 100);
	free(out);
	assert_int_equal(run(KAFKA_MOCK_PATH " --ready-fd 999 2>&1", &out, NULL), 100);
	free(out);
	assert_int_equal(run(KAFKA_MOCK_PATH " --help", &out, NULL), 0);
	assert_non_null(strstr(out, "usage: ferry-kafka-mock"));
	free(out);
}

/* On failure, leave no process behind. */
static int teardown(void **state)
{
	(void)state;
	if (mock > 0)
		kill(mock, SIGKILL);
	mock = -1;
	while (wait(NULL) > 0)
		;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_produce_dump, teardown),
		cmocka_unit_test_teardown(test_usage, teardown),
	};

	alarm(120);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
