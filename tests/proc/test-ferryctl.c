/* SPDX-License-Identifier: MIT */
/* ferryctl against a real segment: what it prints, how it refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "shm/segment.h"
#include "tests/proc/ferryctl-run.h"

static char instance[64];

static const struct shm_worker_spec workers[] = {
	{"ingest", SHM_WORKER_INGEST, 0},
	{"decrypt.0", SHM_WORKER_DECRYPT, 0},
};
static const struct shm_ring_spec rings[] = {
	{"ingest>decrypt.0", 1 << 20, 0, 1},
	{"acks", 1 << 12, 1, 0},
};

/* Run ferryctl with args, return its exit status and what it printed (both streams). */
static int run(const char *args, char *out, size_t len)
{
	return ferryctl_run(args, out, len, 1);
}

static void test_rings(void **state)
{
	struct shm_spec spec = {instance, ARRAY_SIZE(workers), workers, ARRAY_SIZE(rings), rings};
	struct shm_segment *seg = NULL;
	struct ring w, r;
	char err[256], out[8192], args[128], line[64], want[64];

	(void)state;
	assert_int_equal(shm_segment_create(&spec, SHM_CREATE_REPLACE, &seg, err, sizeof(err)), 0);
	assert_int_equal(shm_segment_ring_attach(seg, 0, RING_WRITER, &w, NULL), 0);
	assert_int_equal(shm_segment_ring_attach(seg, 0, RING_READER, &r, NULL), 0);
	for (uint64_t s = 1; s <= 1000; s++)
		assert_int_equal(ring_write(&w, RING_REC_USER, s, "0123456789abcdef", 16), 0);
	ring_publish(&w);
	for (int i = 0; i < 400; i++)
		assert_non_null(ring_read(&r));
	ring_commit(&r);

	snprintf(args, sizeof(args), "-i %s rings", instance);
	assert_int_equal(run(args, out, sizeof(out)), 0);
	expect_has(out, "RING");
	expect_has(out, "ingest>decrypt.0");
	expect_has(out, "acks");
	expect_has(out, "1 MiB");
	/* 600 records of 32 bytes in use, last seq 1000, head 32000, tail 12800. */
	expect_has(out, " 600 ");
	expect_has(out, " 32000 ");
	expect_has(out, " 12800 ");
	expect_has(out, " 1000 ");
	snprintf(line, sizeof(line), "%d ingest ", (int)getpid());
	expect_has(out, line);
	snprintf(line, sizeof(line), "%d decrypt.0", (int)getpid());
	expect_has(out, line);

	/* FERRY_INSTANCE works as -i does. */
	setenv("FERRY_INSTANCE", instance, 1);
	assert_int_equal(run("rings", out, sizeof(out)), 0);
	expect_has(out, "ingest>decrypt.0");
	unsetenv("FERRY_INSTANCE");

	/* Another layout version is refused with a clear word. */
	seg->hdr->layout_version = 7;
	assert_int_equal(run(args, out, sizeof(out)), 111);
	snprintf(want, sizeof(want), "layout version 7, this build speaks %u", SHM_LAYOUT_VERSION);
	expect_has(out, want);
	seg->hdr->layout_version = SHM_LAYOUT_VERSION;
	seg->rings[1].magic = 0;
	assert_int_equal(run(args, out, sizeof(out)), 111);
	expect_has(out, "ring 1: bad ring magic");

	ring_detach(&w);
	ring_detach(&r);
	shm_segment_close(seg);
	shm_segment_unlink(instance);
	assert_int_equal(run(args, out, sizeof(out)), 111);
	expect_has(out, "no such segment");
}

static void test_usage(void **state)
{
	char out[4096];

	(void)state;
	assert_int_equal(run("", out, sizeof(out)), 100);
	expect_has(out, "usage: ferryctl");
	assert_int_equal(run("frobnicate", out, sizeof(out)), 100);
	expect_has(out, "unknown command 'frobnicate'");
	assert_int_equal(run("--bogus", out, sizeof(out)), 100);
	assert_int_equal(run("-i ../etc rings", out, sizeof(out)), 100);
	expect_has(out, "invalid instance name");
	assert_int_equal(run("--help", out, sizeof(out)), 0);
	expect_has(out, "rings");
	expect_has(out, "tail");
	/* tail: a topic and -b or -c are required; numbers are numbers; a bad config is named */
	assert_int_equal(run("tail chat.v1.message-sent", out, sizeof(out)), 100);
	expect_has(out, "want one TOPIC, and -b or -c");
	assert_int_equal(run("tail -b 127.0.0.1:1", out, sizeof(out)), 100);
	assert_int_equal(run("tail -b 127.0.0.1:1 -n ten t", out, sizeof(out)), 100);
	expect_has(out, "-n: want a number, got 'ten'");
	assert_int_equal(run("tail -c /nonexistent/ferry.conf t", out, sizeof(out)), 111);
	expect_has(out, "/nonexistent/ferry.conf: cannot open");
	assert_int_equal(run("tail --help", out, sizeof(out)), 0);
	expect_has(out, "usage: ferryctl tail");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rings),
		cmocka_unit_test(test_usage),
	};

	alarm(60);
	snprintf(instance, sizeof(instance), "test-ferryctl-%d", (int)getpid());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
