/* SPDX-License-Identifier: MIT */
/* Unit tests of common/config: defaults, every key, every error with its file:line, [kafka]. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/compiler.h"
#include "common/config.h"

#ifndef FERRY_SOURCE_DIR
#error "FERRY_SOURCE_DIR must be defined (tests/config.cmake)"
#endif

/* A scratch directory for config files, and the config under test. */
struct fixture {
	char dir[64];
	unsigned n_files;
	char path[PATH_MAX]; /* of the last file written */
	struct ferry_config cfg;
	char err[1024];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	alarm(30); /* a hang fails the test instead of blocking it */
	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/ferry-test-config.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	unsetenv("RUNTIME_DIRECTORY");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct dirent *de;
	char path[PATH_MAX];
	DIR *d;

	config_free(&f->cfg);
	d = opendir(f->dir);
	if (d) {
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", f->dir, de->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(f->dir);
	free(f);
	unsetenv("RUNTIME_DIRECTORY");
	alarm(0);
	return 0;
}

static const char *write_conf(struct fixture *f, const char *text)
{
	FILE *fp;

	snprintf(f->path, sizeof(f->path), "%s/c%u.conf", f->dir, f->n_files++);
	fp = fopen(f->path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	return f->path;
}

/* Write text to a new file and load it into f->cfg (released first). */
static int load(struct fixture *f, const char *text)
{
	config_free(&f->cfg);
	write_conf(f, text);
	memset(f->err, 'X', sizeof(f->err)); /* a stale message must not pass */
	f->err[sizeof(f->err) - 1] = '\0';
	return config_load(f->path, &f->cfg, f->err, sizeof(f->err));
}

static void load_ok(struct fixture *f, const char *text)
{
	int ret = load(f, text);

	if (ret)
		fail_msg("config_load: %d: %s\n--- file:\n%s", ret, f->err, text);
	assert_string_equal(f->err, "");
}

/* Load text and expect -EINVAL with a message starting "path:line: what". */
static void expect_error(struct fixture *f, const char *text, unsigned line, const char *what)
{
	char want[PATH_MAX + 256];
	int ret = load(f, text);

	if (line)
		snprintf(want, sizeof(want), "%s:%u: %s", f->path, line, what);
	else
		snprintf(want, sizeof(want), "%s: %s", f->path, what);
	if (ret != -EINVAL || strncmp(f->err, want, strlen(want)))
		fail_msg("config_load: %d: got \"%s\"\nwant %d: \"%s...\"\n--- file:\n%s", ret,
			 f->err, -EINVAL, want, text);
}

/* Load text and expect -EINVAL with exactly "path:" what. */
static void expect_exact_error(struct fixture *f, const char *text, const char *what)
{
	char want[PATH_MAX + 512];
	int ret = load(f, text);

	snprintf(want, sizeof(want), "%s:%s", f->path, what);
	if (ret != -EINVAL || strcmp(f->err, want))
		fail_msg("config_load: %d: got \"%s\"\nwant %d: \"%s\"\n--- file:\n%s", ret, f->err,
			 -EINVAL, want, text);
}

/* One bad value of one key, on line 3: "path:3: [section] key: ..., got 'value'". */
static void expect_bad(struct fixture *f, const char *section, const char *key, const char *value)
{
	char text[512], what[256], tail[300];
	size_t len, tlen;

	snprintf(text, sizeof(text), "# a bad value\n[%s]\n%s = %s\n", section, key, value);
	snprintf(what, sizeof(what), "[%s] %s: want ", section, key);
	expect_error(f, text, 3, what);
	snprintf(tail, sizeof(tail), ", got '%s'", value);
	len = strlen(f->err);
	tlen = strlen(tail);
	if (len < tlen || strcmp(f->err + len - tlen, tail))
		fail_msg("\"%s\" does not end with \"%s\"", f->err, tail);
}

static void check_defaults(const struct ferry_config *cfg)
{
	assert_string_equal(cfg->instance, "default");
	assert_int_equal(cfg->shards, 2);
	assert_int_equal(cfg->ring_size, 16 << 20);
	assert_int_equal(cfg->ack_ring_size, 1 << 20);
	assert_int_equal(cfg->poison_strikes, 3);
	assert_int_equal(cfg->heartbeat_timeout_ms, 10000);
	assert_int_equal(cfg->restart_delay_min_ms, 1000);
	assert_int_equal(cfg->restart_delay_max_ms, 30000);
	assert_string_equal(cfg->control_socket, "/tmp/ferry.default.sock");
	assert_string_equal(cfg->stage_dir, "");
	assert_string_equal(cfg->replay_file, "");
	assert_string_equal(cfg->topic, "ferry.events");
	assert_string_equal(cfg->tenant_attribute, "tenant");
	assert_string_equal(cfg->keyring, "");
	assert_string_equal(cfg->dead_letter_topic, "ferry.dead-letters");
	assert_int_equal(cfg->flush_timeout_ms, 30000);
	assert_string_equal(cfg->registry_url, "");
	assert_int_equal(cfg->registry_auto_register, 0);
	assert_int_equal(cfg->registry_strategy, 0);
	assert_string_equal(cfg->registry_password, "");
	assert_int_equal(cfg->registry_tls_verify, 1);
	assert_int_equal(cfg->registry_timeout_ms, 10000);
	assert_int_equal(cfg->registry_retry_for_ms, 30000);
}

/* [registry]: every key read; bad values named with file:line; a password never echoed. */
static void test_registry(void **state)
{
	struct fixture *f = *state;

	load_ok(f, "[registry]\nurl = https://sr.example:8081\nauto_register = true\n"
		   "subject_strategy = record\nusername = ferry\npassword = s3cret\n"
		   "ca_file = /etc/ca.pem\ncert_file = /etc/c.pem\nkey_file = /etc/k.pem\n"
		   "tls_verify = false\ntimeout = 2s\nretry_for = 0\n");
	assert_string_equal(f->cfg.registry_url, "https://sr.example:8081");
	assert_int_equal(f->cfg.registry_auto_register, 1);
	assert_int_equal(f->cfg.registry_strategy, 1);
	assert_string_equal(f->cfg.registry_username, "ferry");
	assert_string_equal(f->cfg.registry_password, "s3cret");
	assert_string_equal(f->cfg.registry_ca_file, "/etc/ca.pem");
	assert_string_equal(f->cfg.registry_cert_file, "/etc/c.pem");
	assert_string_equal(f->cfg.registry_key_file, "/etc/k.pem");
	assert_int_equal(f->cfg.registry_tls_verify, 0);
	assert_int_equal(f->cfg.registry_timeout_ms, 2000);
	assert_int_equal(f->cfg.registry_retry_for_ms, 0);
	config_free(&f->cfg);
	assert_string_equal(f->cfg.registry_password, ""); /* wiped */
	load_ok(f, "[registry]\nurl = http://127.0.0.1:8081\nsubject_strategy = topic\n"
		   "auto_register = false\n");
	assert_int_equal(f->cfg.registry_strategy, 0);
	expect_bad(f, "registry", "url", "sr.example:8081");
	expect_bad(f, "registry", "url", "ftp://sr.example");
	expect_bad(f, "registry", "url", "http://");
	expect_bad(f, "registry", "auto_register", "yes");
	expect_bad(f, "registry", "auto_register", "1");
	expect_bad(f, "registry", "tls_verify", "True");
	expect_bad(f, "registry", "subject_strategy", "topic_name");
	expect_bad(f, "registry", "timeout", "0");
	expect_bad(f, "registry", "timeout", "11m");
	expect_bad(f, "registry", "retry_for", "25h");
	expect_bad(f, "registry", "retry_for", "-1");
	expect_error(f, "[registry]\nurl = http://a:1\nurl = http://b:1\n", 3,
		     "[registry] url: set twice (first on line 2)");
	expect_error(f, "[registry]\npasswd = hunter2\n", 2,
		     "[registry] passwd: unknown key (known: url, auto_register, ");
	assert_null(strstr(f->err, "hunter2"));
	expect_error(
		f,
		"[registry]\npassword = "
		"hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2"
		"hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2\n",
		2,
		"[registry] password: want a password shorter than 128 bytes, got '(not shown)'");
	assert_null(strstr(f->err, "hunter2"));
}

static void test_defaults(void **state)
{
	struct fixture *f = *state;

	config_defaults(&f->cfg);
	check_defaults(&f->cfg);
	assert_null(f->cfg.kafka);
	assert_int_equal(f->cfg.n_kafka, 0);

	load_ok(f, "");
	check_defaults(&f->cfg);
	assert_string_equal(f->cfg.path, f->path);
	assert_int_equal(f->cfg.n_kafka, 0);

	/* Comments, blank lines and empty known sections change nothing. */
	load_ok(f, "# comment\n; comment\n\n   \n[ferry]\n[replay]\n[produce]\n[kafka]\n");
	check_defaults(&f->cfg);
}

static void test_full_file(void **state)
{
	struct fixture *f = *state;

	load_ok(f, "\xEF\xBB\xBF# every key, none at its default\n"
		   "[ferry]\n"
		   "instance = prod-eu.1_a\n"
		   "shards = 8\n"
		   "ring_size = 64M\n"
		   "ack_ring_size = 256K\n"
		   "poison_strikes = 5\n"
		   "heartbeat_timeout = 2500ms\n"
		   "restart_delay_min = 2s\n"
		   "restart_delay_max = 5m\n"
		   "control_socket = /run/ferry/ctl.sock ; an inline comment\n"
		   "stage_dir = ../libexec/ferry\n"
		   "[replay]\n"
		   "file = replay/demo.rec\n"
		   "[produce]\n"
		   "topic = catalog.v1\n"
		   "dead_letter_topic = catalog.v1.dlq\n"
		   "flush_timeout = 1h\n"
		   "[kafka]\n"
		   "bootstrap.servers = broker1:9092,broker2:9092\n"
		   "linger.ms = 5\n");
	assert_string_equal(f->cfg.instance, "prod-eu.1_a");
	assert_int_equal(f->cfg.shards, 8);
	assert_int_equal(f->cfg.ring_size, 64 << 20);
	assert_int_equal(f->cfg.ack_ring_size, 256 << 10);
	assert_int_equal(f->cfg.poison_strikes, 5);
	assert_int_equal(f->cfg.heartbeat_timeout_ms, 2500);
	assert_int_equal(f->cfg.restart_delay_min_ms, 2000);
	assert_int_equal(f->cfg.restart_delay_max_ms, 300000);
	assert_string_equal(f->cfg.control_socket, "/run/ferry/ctl.sock");
	assert_string_equal(f->cfg.stage_dir, "../libexec/ferry");
	assert_string_equal(f->cfg.replay_file, "replay/demo.rec");
	assert_string_equal(f->cfg.topic, "catalog.v1");
	assert_string_equal(f->cfg.dead_letter_topic, "catalog.v1.dlq");
	assert_int_equal(f->cfg.flush_timeout_ms, 3600000);
	assert_int_equal(f->cfg.n_kafka, 2);
	assert_string_equal(f->cfg.kafka[0].key, "bootstrap.servers");
	assert_string_equal(f->cfg.kafka[0].value, "broker1:9092,broker2:9092");
	assert_int_equal(f->cfg.kafka[0].line, 20);
	assert_string_equal(f->cfg.kafka[1].key, "linger.ms");
	assert_int_equal(f->cfg.kafka[1].line, 21);
}

/* The limits themselves are accepted. */
static void test_edges_accepted(void **state)
{
	struct fixture *f = *state;
	char text[512], name[64], topic[200];

	load_ok(f, "[ferry]\nshards = 1\nring_size = 4194304\nack_ring_size = 64K\n"
		   "poison_strikes = 1\nheartbeat_timeout = 1ms\nrestart_delay_min = 1000ms\n"
		   "restart_delay_max = 1s\n[produce]\nflush_timeout = 24h\n");
	assert_int_equal(f->cfg.shards, 1);
	assert_int_equal(f->cfg.ring_size, 4 << 20);
	assert_int_equal(f->cfg.ack_ring_size, 64 << 10);
	assert_int_equal(f->cfg.heartbeat_timeout_ms, 1);
	assert_int_equal(f->cfg.restart_delay_min_ms, 1000);
	assert_int_equal(f->cfg.restart_delay_max_ms, 1000);
	assert_int_equal(f->cfg.flush_timeout_ms, 24ull * 3600 * 1000);

	load_ok(f,
		"[ferry]\nshards = 64\nring_size = 1G\nack_ring_size = 1G\npoison_strikes = 100\n"
		"heartbeat_timeout = 3\nrestart_delay_min = 24h\nrestart_delay_max = 1440m\n");
	assert_int_equal(f->cfg.shards, 64);
	assert_int_equal(f->cfg.ring_size, 1 << 30);
	assert_int_equal(f->cfg.ack_ring_size, 1 << 30);
	assert_int_equal(f->cfg.poison_strikes, 100);
	assert_int_equal(f->cfg.heartbeat_timeout_ms, 3000);
	assert_int_equal(f->cfg.restart_delay_max_ms, 24 * 3600 * 1000);

	memset(name, 'n', 63);
	name[63] = '\0';
	memset(topic, 't', 180);
	topic[180] = '\0';
	snprintf(text, sizeof(text), "[ferry]\ninstance = %s\n[produce]\ntopic = %s\n", name,
		 topic);
	load_ok(f, text);
	assert_string_equal(f->cfg.instance, name);
	assert_string_equal(f->cfg.topic, topic);

	load_ok(f, "[ferry]\ninstance = A.-_9\ncontrol_socket = ./ctl\n[produce]\ntopic = ...\n"
		   "dead_letter_topic = -_\n");
	assert_string_equal(f->cfg.instance, "A.-_9");
	assert_string_equal(f->cfg.control_socket, "./ctl");
	assert_string_equal(f->cfg.topic, "...");
}

static void test_bad_values(void **state)
{
	static const struct {
		const char *section, *key, *value;
	} bad[] = {
		{"ferry", "instance", ""},
		{"ferry", "instance", ".hidden"},
		{"ferry", "instance", "a/b"},
		{"ferry", "instance", "a b"},
		{"ferry", "instance", "caf\xc3\xa9"},
		{"ferry", "instance",
		 "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"},
		{"ferry", "shards", "0"},
		{"ferry", "shards", "65"},
		{"ferry", "shards", "two"},
		{"ferry", "shards", "-1"},
		{"ferry", "shards", "+2"},
		{"ferry", "shards", "1.5"},
		{"ferry", "shards", "2x"},
		{"ferry", "shards", "0x10"},
		{"ferry", "shards", ""},
		{"ferry", "shards", "4294967298"},
		{"ferry", "shards", "99999999999999999999999"},
		{"ferry", "ring_size", "3M"},
		{"ferry", "ring_size", "2M"},
		{"ferry", "ring_size", "4194303"},
		{"ferry", "ring_size", "2G"},
		{"ferry", "ring_size", "16X"},
		{"ferry", "ring_size", "16MM"},
		{"ferry", "ring_size", "16m"},
		{"ferry", "ring_size", "16 M"},
		{"ferry", "ring_size", "-16M"},
		{"ferry", "ring_size", "M"},
		{"ferry", "ring_size", ""},
		{"ferry", "ring_size", "18446744073709551616"},
		{"ferry", "ring_size", "17179869184G"},
		{"ferry", "ack_ring_size", "32K"},
		{"ferry", "ack_ring_size", "65535"},
		{"ferry", "ack_ring_size", "100K"},
		{"ferry", "ack_ring_size", "2G"},
		{"ferry", "ack_ring_size", "x"},
		{"ferry", "poison_strikes", "0"},
		{"ferry", "poison_strikes", "101"},
		{"ferry", "poison_strikes", "x"},
		{"ferry", "poison_strikes", ""},
		{"ferry", "heartbeat_timeout", "0"},
		{"ferry", "heartbeat_timeout", "0ms"},
		{"ferry", "heartbeat_timeout", "10x"},
		{"ferry", "heartbeat_timeout", "10S"},
		{"ferry", "heartbeat_timeout", "10 s"},
		{"ferry", "heartbeat_timeout", "1.5s"},
		{"ferry", "heartbeat_timeout", "-1s"},
		{"ferry", "heartbeat_timeout", "ms"},
		{"ferry", "heartbeat_timeout", ""},
		{"ferry", "heartbeat_timeout", "25h"},
		{"ferry", "heartbeat_timeout", "18446744073709551615h"},
		{"ferry", "restart_delay_min", "999ms"},
		{"ferry", "restart_delay_min", "0"},
		{"ferry", "restart_delay_min", "x"},
		{"ferry", "restart_delay_max", "0"},
		{"ferry", "restart_delay_max", "x"},

		{"produce", "topic", ""},
		{"produce", "topic", "a b"},
		{"produce", "topic", "a/b"},
		{"produce", "topic", "a:b"},
		{"produce", "topic", "."},
		{"produce", "topic", ".."},
		{"produce", "topic", "t\xc3\xa9"},
		{"produce", "dead_letter_topic", ""},
		{"produce", "dead_letter_topic", "dead letters"},
		{"produce", "flush_timeout", "0"},
		{"produce", "flush_timeout", "x"},
		{"produce", "flush_timeout", "86400001ms"},
	};
	struct fixture *f = *state;

	char sock[109], text[256];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_bad(f, bad[i].section, bad[i].key, bad[i].value);
	/* sockaddr_un's sun_path holds 107 bytes and the NUL. */
	memset(sock, 's', 108);
	sock[108] = '\0';
	expect_bad(f, "ferry", "control_socket", sock);
	sock[107] = '\0';
	snprintf(text, sizeof(text), "[ferry]\ncontrol_socket = %s\n", sock);
	load_ok(f, text);
	assert_string_equal(f->cfg.control_socket, sock);
	/* The whole message of one. */
	expect_exact_error(f, "[ferry]\nshards = two\n",
			   "2: [ferry] shards: want an integer from 1 to 64, got 'two'");
}

static void test_cross_checks(void **state)
{
	struct fixture *f = *state;

	expect_exact_error(f, "[ferry]\nrestart_delay_min = 60s\n",
			   "2: [ferry] restart_delay_min: must not be above restart_delay_max "
			   "(30000ms), got '60s'");
	expect_exact_error(f, "[ferry]\nrestart_delay_max = 10s\n\nrestart_delay_min = 11s\n",
			   "4: [ferry] restart_delay_min: must not be above restart_delay_max "
			   "(10000ms), got '11s'");
	expect_exact_error(f, "[ferry]\nrestart_delay_max = 500ms\n",
			   "2: [ferry] restart_delay_max: must not be below restart_delay_min "
			   "(1000ms), got '500ms'");
	expect_exact_error(f, "[produce]\ntopic = t\ndead_letter_topic = t\n",
			   "3: [produce] dead_letter_topic: must differ from topic, got 't'");
	expect_exact_error(f, "[produce]\ntopic = ferry.dead-letters\n",
			   "2: [produce] topic: must differ from dead_letter_topic, got "
			   "'ferry.dead-letters'");
}

static void test_unknown_section(void **state)
{
	struct fixture *f = *state;

	expect_exact_error(f, "[ferry]\nshards = 2\n[fery]\nshards = 3\n",
			   "3: [fery]: unknown section, want one of [ferry], [replay], [ingest], "
			   "[sqs], [pubsub], [decrypt], "
			   "[produce], [registry], [kafka]");
	/* Even one that holds no key, indented, or after a comment. */
	expect_error(f, "[ferry]\n\n[nothing] ; empty\n", 3, "[nothing]: unknown section");
	expect_error(f, "[kafka]\n  [Ferry]\n", 2, "[Ferry]: unknown section");
	expect_error(f, "[ferry]\n[ ferry ]\n", 2, "[ ferry ]: unknown section");
	/* Keys outside any section. */
	expect_exact_error(
		f, "shards = 2\n[ferry]\n",
		"1: shards: set before any [section], want it under [ferry], [replay], "
		"[ingest], [sqs], [pubsub], [decrypt], [produce], [registry] or [kafka], got '2'");
}

static void test_unknown_key(void **state)
{
	struct fixture *f = *state;

	expect_exact_error(
		f, "[ferry]\nshards = 2\nshard = 3\n",
		"3: [ferry] shard: unknown key (known: instance, shards, ring_size, "
		"ack_ring_size, poison_strikes, heartbeat_timeout, restart_delay_min, "
		"restart_delay_max, control_socket, stage_dir, metrics_listen), got '3'");
	expect_exact_error(f, "[replay]\nreplay_file = x\n",
			   "2: [replay] replay_file: unknown key (known: file, rate), got 'x'");
	expect_error(f, "[produce]\nTopic = x\n", 2, "[produce] Topic: unknown key (known: ");
	expect_error(f, "[produce]\nflush_timeout_ms = 1\n", 2,
		     "[produce] flush_timeout_ms: unknown key");
	/* A key of another section. */
	expect_error(f, "[ferry]\ntopic = x\n", 2, "[ferry] topic: unknown key");
}

static void test_metrics_listen(void **state)
{
	struct fixture *f = *state;
	static const char *const good[] = {"127.0.0.1:9464", "[::1]:9464", "localhost:1",
					   "0.0.0.0:65535", "metrics-host.example:9464"};
	static const char *const bad[] = {
		"9464",	     ":9464",	  "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
		"host:port", "[::1:9464", "a b:9464",	"[]:9464"};
	char text[256];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "[ferry]\nmetrics_listen = %s\n", good[i]);
		load_ok(f, text);
		assert_string_equal(f->cfg.metrics_listen, good[i]);
		config_free(&f->cfg);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[ferry]\n\nmetrics_listen = %s\n", bad[i]);
		expect_error(f, text, 3, "[ferry] metrics_listen: want HOST:PORT");
	}
}

static void test_set_twice(void **state)
{
	struct fixture *f = *state;

	expect_exact_error(f, "[ferry]\nshards = 2\n\nshards = 3\n",
			   "4: [ferry] shards: set twice (first on line 2)");
	/* Even with the same value, and across two [ferry] sections. */
	expect_exact_error(f, "[ferry]\ninstance = a\n[produce]\n[ferry]\ninstance = a\n",
			   "5: [ferry] instance: set twice (first on line 2)");
	expect_exact_error(f, "[kafka]\nlinger.ms = 5\nacks = all\nlinger.ms = 5\n",
			   "4: [kafka] linger.ms: set twice (first on line 2)");
}

static void test_missing_file(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX], want[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/none.conf", f->dir);
	assert_int_equal(config_load(path, &f->cfg, f->err, sizeof(f->err)), -ENOENT);
	snprintf(want, sizeof(want), "%s: cannot open: %s", path, strerror(ENOENT));
	assert_string_equal(f->err, want);
	check_defaults(&f->cfg);
	config_free(&f->cfg);

	/* A directory opens but cannot be read. */
	assert_int_equal(config_load(f->dir, &f->cfg, f->err, sizeof(f->err)), -EISDIR);
	snprintf(want, sizeof(want), "%s: cannot read: %s", f->dir, strerror(EISDIR));
	assert_string_equal(f->err, want);
}

static void test_syntax_error(void **state)
{
	struct fixture *f = *state;

	expect_exact_error(f, "[ferry]\nshards = 2\nthis is not ini\nshards = 3\n",
			   "3: syntax error");
	expect_exact_error(f, "# x\n[ferry\nshards = 2\n", "2: syntax error");
	expect_exact_error(f, "[ferry ; ]\n", "1: syntax error");
	/* The first error wins, whichever kind it is. */
	expect_exact_error(f, "[ferry]\ngarbage\nshards = 0\n", "2: syntax error");
	expect_error(f, "[ferry]\nshards = 0\ngarbage\n", 2, "[ferry] shards: want ");
	expect_error(f, "[ferry]\nshards = 0\n[nope]\n", 2, "[ferry] shards: want ");
	expect_exact_error(f, "[ferry]\ngarbage\n[nope]\n", "2: syntax error");
}

static void test_continuation_refused(void **state)
{
	struct fixture *f = *state;

	/* inih would read this as shards = "poison_strikes = 4". */
	expect_exact_error(f, "[ferry]\nshards = 2\n  poison_strikes = 4\n",
			   "3: [ferry] shards: indented line would continue the value of the key "
			   "above (multi-line values are not supported), got 'poison_strikes = 4'");
	/* Indented keys are fine right after a section line. */
	load_ok(f, "[ferry]\n  shards = 5\n[produce]\n\ttopic = x\n");
	assert_int_equal(f->cfg.shards, 5);
	assert_string_equal(f->cfg.topic, "x");
}

static void test_long_line(void **state)
{
	struct fixture *f = *state;
	char text[1024], value[400];

	/* The longest line inih's buffer holds: "stage_dir = " and 187 characters. */
	memset(value, 'd', 187);
	value[187] = '\0';
	snprintf(text, sizeof(text), "[ferry]\nstage_dir = %s\nshards = 3\n", value);
	load_ok(f, text);
	assert_string_equal(f->cfg.stage_dir, value);
	assert_int_equal(f->cfg.shards, 3);
	/* Also without the final newline. */
	snprintf(text, sizeof(text), "[ferry]\nstage_dir = %s", value);
	load_ok(f, text);
	assert_string_equal(f->cfg.stage_dir, value);

	/* One more, and inih would split the line: refused. */
	memset(value, 'd', 188);
	value[188] = '\0';
	snprintf(text, sizeof(text), "[ferry]\nstage_dir = %s\n", value);
	expect_exact_error(f, text, "2: line longer than 199 characters");
	memset(value, 'd', 300);
	value[300] = '\0';
	snprintf(text, sizeof(text), "[ferry]\n\n# %s\n", value);
	expect_exact_error(f, text, "3: line longer than 199 characters");
}

static void test_parse_size(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{"0", 0},
		{"4096", 4096},
		{"1K", 1024},
		{"16M", 16ull << 20},
		{"1G", 1ull << 30},
		{"007", 7},
		{"18446744073709551615", UINT64_MAX},
		{"17179869183G", 17179869183ull << 30},
	};
	static const char *const bad[] = {
		"",
		"K",
		"16k",
		"16m",
		"16g",
		"16T",
		"16KB",
		"16 K",
		" 16",
		"16 ",
		"-1",
		"+1",
		"1.5",
		"0x10",
		"1e6",
		"16MK",
		"18446744073709551616",
		"17179869184G",
		"18014398509481984K",
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		v = 1;
		assert_int_equal(config_parse_size(good[i].s, &v), 0);
		assert_int_equal(v, good[i].v);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		v = 12345;
		if (config_parse_size(bad[i], &v) != -EINVAL)
			fail_msg("config_parse_size(\"%s\") accepted", bad[i]);
		assert_int_equal(v, 12345); /* untouched on error */
	}
	assert_int_equal(config_parse_size(NULL, &v), -EINVAL);
	assert_int_equal(config_parse_size("1", NULL), -EINVAL);
}

static void test_parse_duration(void **state)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} good[] = {
		{"0", 0},	{"3", 3000},	{"250ms", 250},
		{"10s", 10000}, {"5m", 300000}, {"1h", 3600000},
		{"0ms", 0},	{"007s", 7000}, {"18446744073709551615ms", UINT64_MAX},
	};
	static const char *const bad[] = {
		"",
		"s",
		"ms",
		"10S",
		"10 s",
		" 10s",
		"10s ",
		"1.5s",
		"-1",
		"+1",
		"1d",
		"10sec",
		"10mss",
		"1hm",
		"0x10",
		"18446744073709551616",
		"18446744073709551615s",
		"5124095576030432h",
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		v = 1;
		assert_int_equal(config_parse_duration(good[i].s, &v), 0);
		assert_int_equal(v, good[i].ms);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		v = 12345;
		if (config_parse_duration(bad[i], &v) != -EINVAL)
			fail_msg("config_parse_duration(\"%s\") accepted", bad[i]);
		assert_int_equal(v, 12345);
	}
	assert_int_equal(config_parse_duration(NULL, &v), -EINVAL);
	assert_int_equal(config_parse_duration("1", NULL), -EINVAL);
}

static void test_kafka_passthrough(void **state)
{
	struct fixture *f = *state;

	load_ok(f, "[kafka]\n"
		   "bootstrap.servers = a:1\n"
		   "; a comment\n"
		   "\n"
		   "linger.ms=5\n"
		   "client.id = ferry=x\n"
		   "[ferry]\n"
		   "shards = 3\n"
		   "[kafka]\n"
		   "compression.type = lz4\n"
		   "acks = all\n");
	assert_int_equal(f->cfg.shards, 3);
	assert_int_equal(f->cfg.n_kafka, 5);
	assert_string_equal(f->cfg.kafka[0].key, "bootstrap.servers");
	assert_string_equal(f->cfg.kafka[0].value, "a:1");
	assert_int_equal(f->cfg.kafka[0].line, 2);
	assert_string_equal(f->cfg.kafka[1].key, "linger.ms");
	assert_string_equal(f->cfg.kafka[1].value, "5");
	assert_int_equal(f->cfg.kafka[1].line, 5);
	assert_string_equal(f->cfg.kafka[2].key, "client.id");
	assert_string_equal(f->cfg.kafka[2].value, "ferry=x");
	assert_int_equal(f->cfg.kafka[2].line, 6);
	assert_string_equal(f->cfg.kafka[3].key, "compression.type");
	assert_string_equal(f->cfg.kafka[3].value, "lz4");
	assert_int_equal(f->cfg.kafka[3].line, 10);
	assert_string_equal(f->cfg.kafka[4].key, "acks");
	assert_string_equal(f->cfg.kafka[4].value, "all");
	assert_int_equal(f->cfg.kafka[4].line, 11);
}

static void test_kafka_bad(void **state)
{
	struct fixture *f = *state;

	expect_exact_error(f, "[kafka]\nbootstrap.servers = x:1\n\nno.such.property = 1\n",
			   "4: [kafka] no.such.property: No such configuration property: "
			   "\"no.such.property\"");
	expect_error(f, "[ferry]\n[kafka]\nacks = maybe\n", 3,
		     "[kafka] acks: Invalid value for configuration property");
	expect_error(f, "[kafka]\nlinger.ms = -5\n", 2,
		     "[kafka] linger.ms: Configuration property");
	expect_error(f, "[kafka]\nenable.idempotence = yes\n", 2,
		     "[kafka] enable.idempotence: Expected bool value");
}

static void test_control_socket_default(void **state)
{
	struct fixture *f = *state;
	char text[512], dir[128];

	load_ok(f, "[ferry]\ninstance = prod\n");
	assert_string_equal(f->cfg.control_socket, "/tmp/ferry.prod.sock");

	setenv("RUNTIME_DIRECTORY", "/run/ferry", 1);
	load_ok(f, "[ferry]\ninstance = prod\n");
	assert_string_equal(f->cfg.control_socket, "/run/ferry/ferry.prod.sock");
	config_defaults(&f->cfg);
	assert_string_equal(f->cfg.control_socket, "/run/ferry/ferry.default.sock");

	/* Several RuntimeDirectory=: systemd joins them with ':'; the first is ours. */
	setenv("RUNTIME_DIRECTORY", "/run/ferry/:/run/other", 1);
	load_ok(f, "[ferry]\ninstance = prod\n");
	assert_string_equal(f->cfg.control_socket, "/run/ferry/ferry.prod.sock");

	setenv("RUNTIME_DIRECTORY", "", 1);
	load_ok(f, "[ferry]\ninstance = prod\n");
	assert_string_equal(f->cfg.control_socket, "/tmp/ferry.prod.sock");

	/* Set in the file: taken as written; empty: the default. */
	setenv("RUNTIME_DIRECTORY", "/run/ferry", 1);
	load_ok(f, "[ferry]\ncontrol_socket = ctl.sock\n");
	assert_string_equal(f->cfg.control_socket, "ctl.sock");
	load_ok(f, "[ferry]\ncontrol_socket =\ninstance = x\n");
	assert_string_equal(f->cfg.control_socket, "/run/ferry/ferry.x.sock");

	/* A default that does not fit a unix socket address. */
	memset(dir, 'r', 100);
	dir[0] = '/';
	dir[100] = '\0';
	setenv("RUNTIME_DIRECTORY", dir, 1);
	snprintf(text, sizeof(text),
		 " [ferry] control_socket: want a path shorter than 108 bytes (the default from "
		 "RUNTIME_DIRECTORY is too long: set control_socket), got '%s/ferry.default.sock'",
		 dir);
	expect_exact_error(f, "", text);
	snprintf(text, sizeof(text), "[ferry]\ncontrol_socket = /run/c.sock\n");
	load_ok(f, text);
	assert_string_equal(f->cfg.control_socket, "/run/c.sock");
}

static void test_free_twice(void **state)
{
	struct fixture *f = *state;
	struct ferry_config zero;

	load_ok(f, "[kafka]\nbootstrap.servers = a:1\nlinger.ms = 1\n");
	assert_int_equal(f->cfg.n_kafka, 2);
	config_free(&f->cfg);
	assert_null(f->cfg.kafka);
	assert_int_equal(f->cfg.n_kafka, 0);
	config_free(&f->cfg);
	memset(&zero, 0, sizeof(zero));
	config_free(&zero);
	config_free(NULL);

	/* A failed load leaves what it read so far to config_free(). */
	expect_error(f, "[kafka]\nlinger.ms = 1\nbad.property = 1\n", 3, "[kafka] bad.property: ");
	assert_int_equal(f->cfg.n_kafka, 1);
	config_free(&f->cfg);
	config_free(&f->cfg);
}

static void test_bad_arguments(void **state)
{
	struct fixture *f = *state;

	write_conf(f, "[ferry]\nshards = 4\n");
	assert_int_equal(config_load(NULL, &f->cfg, f->err, sizeof(f->err)), -EINVAL);
	assert_int_equal(config_load(f->path, NULL, f->err, sizeof(f->err)), -EINVAL);
	/* No room for a message is fine. */
	assert_int_equal(config_load(f->path, &f->cfg, NULL, 0), 0);
	assert_int_equal(f->cfg.shards, 4);
	write_conf(f, "[ferry]\nshards = 65\n");
	assert_int_equal(config_load(f->path, &f->cfg, NULL, 0), -EINVAL);
	/* A short buffer gets a cut, terminated message. */
	assert_int_equal(config_load(f->path, &f->cfg, f->err, 8), -EINVAL);
	assert_int_equal(strlen(f->err), 7);
}

/* [sqs] queue and [pubsub] subscription repeat, and come from files too. */
static void test_source_lists(void **state)
{
	struct fixture *f = *state;
	char text[PATH_MAX + 512], list[PATH_MAX - 64];
	FILE *fp;

	snprintf(list, sizeof(list), "%s/queues.txt", f->dir);
	fp = fopen(list, "w");
	assert_non_null(fp);
	fputs("# legacy queues\n\nhttp://127.0.0.1:5000/123456789012/b  \n", fp);
	fclose(fp);
	snprintf(text, sizeof(text),
		 "[sqs]\nqueue = https://sqs.eu-west-1.amazonaws.com/123456789012/a\n"
		 "queues_file = %s\n[pubsub]\nsubscription = projects/p-1/subscriptions/s-1\n"
		 "subscription = projects/p-1/subscriptions/s-2\n[ingest]\nmax_inflight = 64\n",
		 list);
	load_ok(f, text);
	assert_int_equal(f->cfg.sqs_queues.n, 2);
	assert_string_equal(f->cfg.sqs_queues.v[1], "http://127.0.0.1:5000/123456789012/b");
	assert_int_equal(f->cfg.pubsub_subs.n, 2);
	assert_string_equal(f->cfg.pubsub_subs.v[1], "projects/p-1/subscriptions/s-2");
	assert_int_equal(f->cfg.max_inflight, 64);

	expect_bad(f, "sqs", "queue", "sqs.eu-west-1.amazonaws.com/1/a");
	expect_bad(f, "sqs", "queue", "https://sqs.eu-west-1.amazonaws.com");
	expect_bad(f, "sqs", "queue", "https://sqs.eu-west-1.amazonaws.com/123456789012/");
	expect_bad(f, "sqs", "queue", "https://sqs.eu-west-1.amazonaws.com/123456789012/a/b");
	expect_bad(f, "sqs", "queue", "https:///123456789012/a");
	expect_bad(f, "sqs", "queue", "http:///123456789012/a");
	expect_bad(f, "sqs", "queue", "https://h/123456789012/a?x=1");
	expect_bad(f, "sqs", "queue", "https://h/123456789012/a.fif");
	/* Two URLs run together on one line are not one queue. */
	expect_bad(f, "sqs", "queue", "https://h/123456789012/ahttps://h/123456789012/b");
	/* Names as SQS has them: up to 80 characters, ".fifo" included. */
	expect_bad(f, "sqs", "queue",
		   "https://h/1/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	{
		char good[512];

		snprintf(good, sizeof(good),
			 "[sqs]\nqueue = https://h/123456789012/A_z-9\n"
			 "queue = http://127.0.0.1:5000/000000000000/ferry-in.fifo\n"
			 "queue = http://h/1/a\n"
			 "queue = https://h/1/%.*s\n",
			 80,
			 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			 "aaaaaaa");
		load_ok(f, good);
		assert_int_equal(f->cfg.sqs_queues.n, 4);
	}
	expect_bad(f, "pubsub", "subscription", "projects/p/topics/t");
	expect_bad(f, "pubsub", "subscription", "projects/p/subscriptions/ab");
	expect_bad(f, "ingest", "max_inflight", "32");
	expect_bad(f, "sqs", "wait_time", "21s");
	expect_error(f,
		     "[pubsub]\nsubscription = projects/p/subscriptions/abc\n"
		     "subscription = projects/p/subscriptions/abc\n",
		     3, "[pubsub] subscription: listed twice, got 'projects/p/subscriptions/abc'");
	/* A bad line of a list file names that file and line. */
	fp = fopen(list, "w");
	assert_non_null(fp);
	fputs("http://127.0.0.1:5000/123456789012/b\nnot-a-url\n", fp);
	fclose(fp);
	snprintf(text, sizeof(text), "[sqs]\n\nqueues_file = %s\n", list);
	expect_error(f, text, 3, "[sqs] queues_file: ");
	snprintf(text, sizeof(text), "%s:2: want an SQS queue URL", list);
	assert_non_null(strstr(f->err, text));
	unlink(list);
	snprintf(text, sizeof(text), "[pubsub]\nsubscriptions_file = %s\n", list);
	assert_int_equal(load(f, text), -ENOENT);
	assert_non_null(strstr(f->err, ":2: [pubsub] subscriptions_file: cannot open"));
}

/* etc/ferry.conf loads as it is, and with every commented-out key uncommented. */
static void test_reference_file(void **state)
{
	struct fixture *f = *state;
	const char *path = FERRY_SOURCE_DIR "/etc/ferry.conf";
	char line[512], *text;
	size_t len = 0, keys = 0;
	FILE *fp;

	assert_int_equal(config_load(path, &f->cfg, f->err, sizeof(f->err)), 0);
	assert_string_equal(f->err, "");
	check_defaults(&f->cfg);
	assert_int_equal(f->cfg.n_kafka, 1);
	assert_string_equal(f->cfg.kafka[0].key, "bootstrap.servers");
	assert_string_equal(f->cfg.kafka[0].value, "127.0.0.1:9092");

	fp = fopen(path, "r");
	assert_non_null(fp);
	text = calloc(1, 65536);
	assert_non_null(text);
	while (fgets(line, sizeof(line), fp)) {
		const char *copy = line;

		/* "#key = value" (no space after '#') is a key at its default */
		if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z' && strstr(line, " =")) {
			copy = line + 1;
			keys++;
		}
		assert_true(len + strlen(copy) < 65536);
		memcpy(text + len, copy, strlen(copy) + 1);
		len += strlen(copy);
	}
	fclose(fp);
	assert_int_equal(keys, 48); /* every key of config.h but the lists */
	load_ok(f, text);
	free(text);
	check_defaults(&f->cfg);
	assert_int_equal(f->cfg.n_kafka, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_lists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edges_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cross_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_section, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_listen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_continuation_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_duration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kafka_passthrough, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kafka_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_socket_default, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reference_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
