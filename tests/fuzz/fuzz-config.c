/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: any bytes as ferry.conf (common/config.c, inih, and
 * librdkafka's check of [kafka]).
 *
 * Each input is written to ferry.conf in a directory of its own under /tmp
 * (one per process, removed at exit), beside three list files the seeds
 * name: queues.list and subs.list (good), bad.list (a bad third line) and
 * dup.list (one subscription twice).
 * config_load() runs with that directory as the working directory, so list
 * files named without a '/' are found there; an input naming a list file
 * with a '/' on its line is skipped (it could name /dev/zero or a FIFO), as
 * is one that names librdkafka's plugin.library.paths (it loads libraries).
 *
 * Checked: nothing crashes; a refused file has an error that names
 * ferry.conf and a line of the file ("ferry.conf:N: ", N within the file),
 * whatever the reason; an accepted one has every value within its documented
 * range; config_free() is safe twice.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "tests/fuzz/fuzz-common.h"

/* Per process: fuzzing only, so file-scope state is fine here. */
static char dir[64];
static int dirfd_ = -1, conffd = -1;

static void cleanup(void)
{
	static const char *const files[] = {"ferry.conf", "queues.list", "subs.list", "bad.list",
					    "dup.list"};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlinkat(dirfd_, files[i], 0);
	rmdir(dir); /* fails, and keeps it, when a crash left an artifact there */
}

static void put(const char *name, const char *text)
{
	int fd = openat(dirfd_, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
}

static void init(void)
{
	snprintf(dir, sizeof(dir), "/tmp/fuzz-config.XXXXXX");
	CHECK(mkdtemp(dir));
	dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dirfd_ >= 0);
	put("queues.list", "# queues\nhttps://sqs.eu-west-1.amazonaws.com/123456789012/a\n\n"
			   "  https://sqs.eu-west-1.amazonaws.com/123456789012/b  \n");
	put("subs.list", "projects/p/subscriptions/sub-1\nprojects/p/subscriptions/sub-2\n");
	put("bad.list", "https://sqs.eu-west-1.amazonaws.com/123456789012/c\n\nnot a queue\n");
	put("dup.list", "projects/p/subscriptions/sub-3\nprojects/p/subscriptions/sub-3\n");
	conffd = openat(dirfd_, "ferry.conf", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(conffd >= 0);
	/* The default control socket must not depend on the environment. */
	unsetenv("RUNTIME_DIRECTORY");
	atexit(cleanup);
}

/* Skip inputs that would make config_load() open something outside our directory. */
static int safe(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	if (memmem(data, size, "plugin", 6))
		return 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);

		if ((memmem(p, n, "queues_file", 11) || memmem(p, n, "subscriptions_file", 18)) &&
		    memchr(p, '/', n))
			return 0;
		p += n + 1;
	}
	return 1;
}

static unsigned lines_of(const uint8_t *data, size_t size)
{
	unsigned n = 1;

	for (size_t i = 0; i < size; i++)
		n += data[i] == '\n';
	return n;
}

static void check_config(const struct ferry_config *c)
{
	CHECK(c->shards >= 1 && c->shards <= CONFIG_SHARDS_MAX);
	CHECK(c->ring_size >= 4ull << 20 && c->ring_size <= 1ull << 30 &&
	      !(c->ring_size & (c->ring_size - 1)));
	CHECK(c->ack_ring_size >= 64ull << 10 && c->ack_ring_size <= 1ull << 30 &&
	      !(c->ack_ring_size & (c->ack_ring_size - 1)));
	CHECK(c->poison_strikes >= 1 && c->poison_strikes <= 100);
	CHECK(c->max_inflight >= 64 && c->max_inflight <= 1u << 20 &&
	      !(c->max_inflight & (c->max_inflight - 1)));
	CHECK(c->restart_delay_min_ms >= 1000 &&
	      c->restart_delay_min_ms <= c->restart_delay_max_ms);
	CHECK(c->heartbeat_timeout_ms >= 1 && c->heartbeat_timeout_ms <= CONFIG_DURATION_MAX_MS);
	CHECK(c->sqs_wait_time_ms <= 20000 && c->sqs_receives >= 1 && c->sqs_receives <= 10);
	CHECK(c->pubsub_max_messages >= 1 && c->pubsub_max_messages <= 1000);
	CHECK(c->registry_auto_register <= 1 && c->registry_tls_verify <= 1 &&
	      c->registry_strategy <= 1);
	CHECK(strlen(c->instance) >= 1 && strlen(c->instance) < sizeof(c->instance) &&
	      c->instance[0] != '.');
	CHECK(strcmp(c->topic, c->dead_letter_topic) && c->topic[0] && c->dead_letter_topic[0]);
	CHECK(c->control_socket[0] && memchr(c->control_socket, 0, sizeof(c->control_socket)));
	CHECK(!c->replay_file[0] || !(c->sqs_queues.n + c->pubsub_subs.n));
	for (size_t i = 0; i < c->sqs_queues.n; i++)
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(c->sqs_queues.v[i], c->sqs_queues.v[j]));
	for (size_t i = 0; i < c->n_kafka; i++)
		CHECK(c->kafka[i].key && c->kafka[i].value && c->kafka[i].line >= 1);
}

static void check_error(const char *err, int r, const uint8_t *data, size_t size)
{
	static const char prefix[] = "ferry.conf:";
	unsigned long line;
	char *end;

	if (r == -ENOMEM)
		return;
	if (strncmp(err, prefix, sizeof(prefix) - 1))
		goto bad;
	line = strtoul(err + sizeof(prefix) - 1, &end, 10);
	if (end == err + sizeof(prefix) - 1 || strncmp(end, ": ", 2) || line < 1 ||
	    line > lines_of(data, size))
		goto bad;
	return;
bad:
	fprintf(stderr, "fuzz-config: error without ferry.conf:LINE: (%d) %s\n", r, err);
	abort();
}

static void check_parsers(const uint8_t *data, size_t size)
{
	char s[64];
	uint64_t v;

	if (size >= sizeof(s) || memchr(data, 0, size))
		return;
	memcpy(s, data, size);
	s[size] = 0;
	if (!config_parse_size(s, &v) && size && s[size - 1] == 'G')
		CHECK(!(v & ((1u << 30) - 1)));
	(void)config_parse_duration(s, &v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ferry_config cfg;
	char err[1024];
	int r, cwd;

	if (size > 64 << 10 || !safe(data, size))
		return 0;
	if (dirfd_ < 0)
		init();
	check_parsers(data, size);
	CHECK(ftruncate(conffd, 0) == 0);
	CHECK(pwrite(conffd, data, size, 0) == (ssize_t)size);
	cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(cwd >= 0 && fchdir(dirfd_) == 0);
	memset(err, 'x', sizeof(err));
	r = config_load("ferry.conf", &cfg, err, sizeof(err));
	CHECK(fchdir(cwd) == 0);
	close(cwd);
	CHECK(r <= 0 && memchr(err, 0, sizeof(err)));
	if (r == 0) {
		CHECK(!err[0]);
		check_config(&cfg);
	} else {
		check_error(err, r, data, size);
	}
	config_free(&cfg);
	config_free(&cfg); /* safe twice */
	return 0;
}
