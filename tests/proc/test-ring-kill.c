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
 * the stage is killed 50+ times: half by the collector's SIGKILL at
 * arbitrary moments, half by the stage itself at a randomly chosen crash
 * point (mid-copy, after push, between publishing `out` and committing
 * `in`, ...), so the narrow windows are hit for sure.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/time.h"
#include "shm/segment.h"

#define RECORDS	  1000000ull
#define MIN_KILLS 60
#define BATCH	  64

static char instance[64];
static pid_t source = -1, stage = -1;

/* Where a stage may be told to kill itself. */
enum crash_point {
	CP_NONE,
	CP_AFTER_READ,	 /* read a record, nothing written */
	CP_MID_COPY,	 /* half the payload copied */
	CP_AFTER_PUSH,	 /* pushed, not published */
	CP_BETWEEN,	 /* `out` published, `in` not committed */
	CP_AFTER_COMMIT, /* both done */
	CP_COUNT,
};

/* Shared with the stages (anonymous shared page inherited by fork). */
struct crash_plan {
	uint32_t point;	    /* enum crash_point for the next incarnation */
	uint32_t countdown; /* die on this many-th visit of point */
};
static struct crash_plan *plan;

static void crash_point(enum crash_point p)
{
	if (unlikely(plan->point == p) && --plan->countdown == 0)
		raise(SIGKILL);
}

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
			crash_point(CP_AFTER_READ);
			while (!(p = ring_reserve(&out, rec->len))) {
				if (errno != EAGAIN || ring_wait_space(&out, rec->len, -1) < 0)
					_exit(3);
			}
			memcpy(p, rec->data, rec->len / 2);
			crash_point(CP_MID_COPY);
			memcpy(p + rec->len / 2, rec->data + rec->len / 2, rec->len - rec->len / 2);
			ring_push(&out, rec->len, rec->type, 0, rec->seq);
			crash_point(CP_AFTER_PUSH);
			done = rec->seq;
			if (done == RECORDS)
				break;
		}
		if (!n && errno == EBADMSG)
			_exit(4);
		/* Output first, then the input it came from. */
		ring_publish(&out);
		crash_point(CP_BETWEEN);
		ring_commit(&in);
		crash_point(CP_AFTER_COMMIT);
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

/* waitpid() that a SIGCHLD (our handler has no SA_RESTART) does not cut short. */
static pid_t reap(pid_t pid, int *status, int flags)
{
	pid_t r;

	while ((r = waitpid(pid, status, flags)) < 0 && errno == EINTR)
		;
	return r;
}

static void on_sigchld(int sig)
{
	(void)sig; /* only to interrupt the collector's futex wait */
}

/* Plan the next incarnation's death: by our SIGKILL (return the record count) or its own. */
static uint64_t plan_next(unsigned *seed, uint64_t expect, unsigned kills)
{
	uint64_t gap = 1 + (uint64_t)rand_r(seed) % (2 * RECORDS / (MIN_KILLS + 10));

	if (kills % 2) {
		plan->point = CP_AFTER_READ + (uint32_t)rand_r(seed) % (CP_COUNT - CP_AFTER_READ);
		/* Per-record points are visited ~64 times as often as per-batch ones. */
		plan->countdown =
			1 + (uint32_t)rand_r(seed) % (plan->point >= CP_BETWEEN ? 50 : 3000);
		return UINT64_MAX;
	}
	plan->point = CP_NONE;
	return expect + gap;
}

static void test_kill_consumer(void **state)
{
	struct shm_spec spec = {instance, ARRAY_SIZE(workers), workers, ARRAY_SIZE(rings), rings};
	struct shm_segment *seg = NULL;
	struct ring out;
	char err[256];
	uint64_t expect = 1, next_kill;
	unsigned kills = 0, self_kills = 0, seed = (unsigned)getpid();
	struct sigaction sa = {.sa_handler = on_sigchld};
	int status;
	uint64_t t0 = now_ns();

	(void)state;
	alarm(300);
	sigaction(SIGCHLD, &sa, NULL);
	plan = mmap(NULL, sizeof(*plan), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(plan != MAP_FAILED);
	assert_int_equal(shm_segment_create(&spec, SHM_CREATE_REPLACE, &seg, err, sizeof(err)), 0);
	assert_int_equal(shm_segment_ring_attach(seg, 1, RING_READER, &out, NULL), 0);
	source = spawn(source_main, seg->fd);
	next_kill = plan_next(&seed, expect, kills);
	stage = spawn(stage_main, seg->fd);

	while (expect <= RECORDS) {
		const struct ring_rec *rec = ring_read(&out);

		if (!rec) {
			assert_int_equal(errno, EAGAIN);
			ring_commit(&out);
			/* A stage that killed itself is restarted at once. */
			if (reap(stage, &status, WNOHANG) == stage) {
				assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
				kills++;
				self_kills++;
				next_kill = plan_next(&seed, expect, kills);
				stage = spawn(stage_main, seg->fd);
				continue;
			}
			/* SIGCHLD interrupts this wait; the timeout covers a lost race. */
			ring_wait_data(&out, 100);
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
			 * Kill at an arbitrary point of the stage's work: it runs
			 * concurrently, so the signal lands anywhere (reading,
			 * copying, between publish and commit, asleep).
			 */
			kill(stage, SIGKILL);
			assert_int_equal(reap(stage, &status, 0), stage);
			assert_true(WIFSIGNALED(status) || WIFEXITED(status));
			kills++;
			next_kill = plan_next(&seed, expect, kills);
			stage = spawn(stage_main, seg->fd);
		}
		if ((expect & 63) == 0)
			ring_commit(&out);
	}
	ring_commit(&out);
	/* Nothing more may arrive: no duplicate after the last record. */
	assert_null(ring_read(&out));
	plan->point = CP_NONE;
	assert_int_equal(reap(source, &status, 0), source);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	source = -1;
	/* The stage may have crashed on its planned point after the last record. */
	while (reap(stage, &status, 0) == stage && WIFSIGNALED(status))
		stage = spawn(stage_main, seg->fd);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	stage = -1;
	assert_null(ring_read(&out));
	assert_true(kills >= 50);
	assert_true(self_kills >= 20);
	assert_int_equal(seg->rings[0].tail, seg->rings[0].head);
	assert_int_equal(seg->rings[0].consumed, RECORDS);
	printf("# %llu records, %u kills of the consumer (%u at planned crash points), %.2f s, "
	       "every record once and in order\n",
	       (unsigned long long)RECORDS, kills, self_kills, (double)(now_ns() - t0) / 1e9);
	ring_detach(&out);
	shm_segment_close(seg);
	shm_segment_unlink(instance);
	alarm(0);
}

/* On failure, leave no process behind. */
static int teardown(void **state)
{
	(void)state;
	if (source > 0)
		kill(source, SIGKILL);
	if (stage > 0)
		kill(stage, SIGKILL);
	while (wait(NULL) > 0 || errno == EINTR)
		;
	shm_segment_unlink(instance);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_kill_consumer, teardown),
	};

	snprintf(instance, sizeof(instance), "test-ring-kill-%d", (int)getpid());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
