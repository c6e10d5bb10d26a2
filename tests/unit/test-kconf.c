/* SPDX-License-Identifier: MIT */
/*
 * test-kconf: the producer configuration produce runs with
 * (workers/produce/kconf.h), read back from librdkafka: no delivery
 * timeout unless [kafka] sets one, [kafka] taken as written, idempotence
 * and acks=all forced whatever [kafka] says, and a refused property named
 * by file, line and key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "workers/produce/kconf.h"

struct fixture {
	char path[64];
	struct ferry_config cfg;
	char err[1024];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int fd;

	if (!f)
		return -1;
	snprintf(f->path, sizeof(f->path), "/tmp/test-kconf.XXXXXX");
	fd = mkstemp(f->path);
	if (fd < 0)
		return -1;
	close(fd);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	config_free(&f->cfg);
	unlink(f->path);
	free(f);
	return 0;
}

/* The configuration of a file holding text, as produce builds it. */
static rd_kafka_conf_t *conf_of(struct fixture *f, const char *text)
{
	FILE *fp = fopen(f->path, "w");
	char err[512];

	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	config_free(&f->cfg);
	if (config_load(f->path, &f->cfg, err, sizeof(err)) < 0)
		fail_msg("config_load: %s", err);
	return produce_conf_new(&f->cfg, f->err, sizeof(f->err));
}

static void expect(rd_kafka_conf_t *conf, const char *key, const char *want)
{
	char val[256];
	size_t len = sizeof(val);

	assert_int_equal(rd_kafka_conf_get(conf, key, val, &len), RD_KAFKA_CONF_OK);
	if (strcmp(val, want))
		fail_msg("%s = %s, want %s", key, val, want);
}

/* A [kafka] section and what librdkafka must then hold (key, value; NULL ends). */
static const struct {
	const char *what, *kafka;
	const char *want[5][2];
} cases[] = {
	/* librdkafka's default is 300000: an outage of 5 minutes would dead-letter events. */
	{"defaults",
	 "bootstrap.servers = 127.0.0.1:9092\n",
	 {{"message.timeout.ms", "0"},
	  {"enable.idempotence", "true"},
	  {"acks", "-1"}, /* "all" */
	  {"bootstrap.servers", "127.0.0.1:9092"}}},
	{"[kafka] as written (an operator's own timeout)",
	 "bootstrap.servers = k:9092\nmessage.timeout.ms = 60000\nlinger.ms = 20\n",
	 {{"message.timeout.ms", "60000"}, {"linger.ms", "20"}}},
	{"idempotence and acks=all forced",
	 "bootstrap.servers = k:9092\nenable.idempotence = false\nacks = 1\n",
	 {{"enable.idempotence", "true"}, {"acks", "-1"}}},
};

static void test_settings(void **state)
{
	struct fixture *f = *state;

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char text[256];
		rd_kafka_conf_t *conf;

		snprintf(text, sizeof(text), "[kafka]\n%s", cases[c].kafka);
		conf = conf_of(f, text);
		if (!conf)
			fail_msg("%s: %s", cases[c].what, f->err);
		for (size_t k = 0; k < 5 && cases[c].want[k][0]; k++)
			expect(conf, cases[c].want[k][0], cases[c].want[k][1]);
		rd_kafka_conf_destroy(conf);
	}
}

static void test_refused(void **state)
{
	struct fixture *f = *state;
	rd_kafka_conf_t *conf = conf_of(f, "[kafka]\nbootstrap.servers = k:9092\n"
					   "message.timeout.ms = 60000\n");
	char want[256];

	/*
	 * config_load() checks [kafka] with librdkafka too; a property may still
	 * be refused here (another librdkafka at run time): named by file, line
	 * and key.
	 */
	assert_non_null(conf);
	rd_kafka_conf_destroy(conf);
	assert_string_equal(f->cfg.kafka[1].key, "message.timeout.ms");
	f->cfg.kafka[1].value[0] = 'x';
	assert_null(produce_conf_new(&f->cfg, f->err, sizeof(f->err)));
	snprintf(want, sizeof(want), "%s:3: [kafka] message.timeout.ms: ", f->path);
	if (strncmp(f->err, want, strlen(want)))
		fail_msg("got \"%s\", want \"%s...\"", f->err, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
