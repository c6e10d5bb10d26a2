/* SPDX-License-Identifier: MIT */
/*
 * Process test: a record stream survives its consumer being SIGKILLed at
 * random points.
 *
 *   source (process) --in--> stage (process, killed 50+ times) --out--> collector (this process)
 *
 * The source writes records 1..N with a payload derived from the seq. The
 * stage reads `in`, copies each record to `out`, publishes `out` and only
 * then commits `in`; a restarted stage skips records whose seq is at or
 * below the last seq published to `out`. The collector checks that `out`
 * holds every record exactly once, in order, with intact payloads, while
 * it SIGKILLs and restarts the stage at random moments.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/time.h"
#include "shm/segment.h"

#define RECORDS 1000000ull
#define MIN_KILLS 60
#define BATCH 64

static char instance[64];

static const struct shm_worker_spec workers[] = {
	{"source", SHM_WORKER_OTHER, 0},
	{"stage", SHM_WORKER_OTHER, 0},
	{"collector", SHM_WORKER_OTHER, 0},
};

/* Small rings: the stream wraps them thousands of times and often fills them. */
static const struct shm_ring_spec rings[] = {
	{"in", 1 << 16, 0, 1},
	{"out", 1 << 15, 1, 2},
};

static uint32_t len_of(uint64_t seq)
{
	return (uint32_t)((seq * 2654435761u) % 200);
}

static void fill(unsigned char *p, uint32_t len, uint64_t seq)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (unsigned char)(seq ^ (seq >> 8) ^ i);
}

static struct shm_segment *attach(int fd)
{
	struct shm_segment *seg = NULL;
	char err[256];

	if (shm_segment_attach(fd, 0, &seg, err, sizeof(err)) < 0) {
		fprintf(stderr, "attach: %s\n", err);
		_exit(2);
	}
	return seg;
}

static void source_main(int fd)
{
	struct shm_segment *seg = attach(fd);
	struct ring w;
	uint64_t seq;

	if (shm_segment_ring_attach(seg, 0, RING_WRITER, &w, NULL) < 0)
		_exit(2);
	for (seq = 1; seq <= RECORDS; seq++) {
		uint32_t len = len_of(seq);
		unsigned char *p;

		while (!(p = ring_reserve(&w, len))) {
			if (errno != EAGAIN || ring_wait_space(&w, len, -1) < 0)
				_exit(3);
		}
		fill(p, len, seq);
		ring_push(&w, len, RING_REC_USER, 0, seq);
		if (seq % 16 == 0)
			ring_publish(&w);
	}
	ring_publish(&w);
	_exit(0);
}

static void stage_main(int fd)
{
	struct shm_segment *seg = attach(fd);
	struct ring in, out;
	uint64_t done;

	if (shm_segment_ring_attach(seg, 0, RING_READER, &in, NULL) < 0 ||
	    shm_segment_ring_attach(seg, 1, RING_WRITER, &out, NULL) < 0)
		_exit(2);
	/* What an earlier incarnation already handed on. */
	done = ring_last_seq(&out);
	for (;;) {
		const struct ring_rec *rec;
		int n = 0;

		while (n < BATCH && (rec = ring_read(&in))) {
			unsigned char *p;

			n++;
			if (rec->seq <= done)
				continue; /* written downstream before a crash */
			while (!(p = ring_reserve(&out, rec->len))) {
				if (errno != EAGAIN || ring_wait_space(&out, rec->len, -1) < 0)
					_exit(3);
			}
			memcpy(p, rec->data, rec->len);
			ring_push(&out, rec->len, rec->type, 0, rec->seq);
			done = rec->seq;
			if (done == RECORDS)
				break;
		}
		if (!n && errno == EBADMSG)
			_exit(4);
		/* Output first, then the input it came from. */
		ring_publish(&out);
		ring_commit(&in);
		if (done == RECORDS)
			_exit(0);
		if (!n && ring_wait_data(&in, 1000) == -EINTR)
			_exit(5);
	}
}

static pid_t spawn(void (*fn)(int), int fd)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		fn(fd);
	return pid;
}

static void test_kill_consumer(void **state)
{
	struct shm_spec spec = {instance, ARRAY_SIZE(workers), workers, ARRAY_SIZE(rings), rings};
	struct shm_segment *seg = NULL;
	struct ring out;
	char err[256];
	pid_t source, stage;
	uint64_t expect = 1, next_kill;
	unsigned kills = 0, seed = (unsigned)getpid();
	int status;
	uint64_t t0 = now_ns();

	(void)state;
	alarm(300);
	assert_int_equal(shm_segment_create(&spec, SHM_CREATE_REPLACE, &seg, err, sizeof(err)), 0);
	assert_int_equal(shm_segment_ring_attach(seg, 1, RING_READER, &out, NULL), 0);
	source = spawn(source_main, seg->fd);
	stage = spawn(stage_main, seg->fd);
	next_kill = 1 + (uint64_t)rand_r(&seed) % (2 * RECORDS / (MIN_KILLS + 10));

	while (expect <= RECORDS) {
		const struct ring_rec *rec = ring_read(&out);

		if (!rec) {
			assert_int_equal(errno, EAGAIN);
			ring_commit(&out);
			/* The stage may be dead and not yet restarted: poll it. */
			assert_int_not_equal(ring_wait_data(&out, 1000), -EINTR);
			continue;
		}
		if (rec->seq != expect)
			fail_msg("record %llu where %llu was expected (after %u kills)",
				 (unsigned long long)rec->seq, (unsigned long long)expect, kills);
		assert_int_equal(rec->len, len_of(expect));
		for (uint32_t i = 0; i < rec->len; i++)
			if (rec->data[i] != (unsigned char)(expect ^ (expect >> 8) ^ i))
				fail_msg("payload of %llu differs at byte %u",
					 (unsigned long long)expect, i);
		expect++;
		if (expect == next_kill && expect <= RECORDS) {
			/*
			 * Kill at a random point of the stage's work: it runs
			 * concurrently, so the signal lands anywhere (reading,
			 * copying, between publish and commit, asleep).
			 */
			kill(stage, SIGKILL);
			assert_int_equal(waitpid(stage, &status, 0), stage);
			assert_true(WIFSIGNALED(status) || WIFEXITED(status));
			kills++;
			stage = spawn(stage_main, seg->fd);
			next_kill = expect + 1 +
				    (uint64_t)rand_r(&seed) % (2 * RECORDS / (MIN_KILLS + 10));
		}
		if ((expect & 63) == 0)
			ring_commit(&out);
	}
	ring_commit(&out);
	/* Nothing more may arrive: no duplicate after the last record. */
	assert_null(ring_read(&out));
	assert_int_equal(waitpid(source, &status, 0), source);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(waitpid(stage, &status, 0), stage);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_null(ring_read(&out));
	assert_true(kills >= 50);
	assert_int_equal(seg->rings[0].tail, seg->rings[0].head);
	assert_int_equal(seg->rings[0].consumed, RECORDS);
	printf("# %llu records, %u kills of the consumer, %.2f s, every record once and in order\n",
	       (unsigned long long)RECORDS, kills, (double)(now_ns() - t0) / 1e9);
	ring_detach(&out);
	shm_segment_close(seg);
	shm_segment_unlink(instance);
	alarm(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill_consumer),
	};

	snprintf(instance, sizeof(instance), "test-ring-kill-%d", (int)getpid());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
