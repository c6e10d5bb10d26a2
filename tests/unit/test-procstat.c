/* SPDX-License-Identifier: MIT */
/*
 * procstat: sample this process, burn CPU and see its CPU time grow, open
 * files and see the fd count grow by as many; a child's RSS grows when it
 * touches memory; a reaped pid is -ESRCH; /proc/<pid>/stat with a command
 * name holding spaces and parentheses parses.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/procstat.h"
#include "common/time.h"

static uint64_t cpu_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Burn 300 ms of CPU (by the process's own CPU clock: the machine may be
 * busy) and see /proc count the same within its tick granularity.
 */
static void test_cpu_grows(void **state)
{
	struct proc_sample a, b;
	volatile uint64_t x = 1;
	uint64_t c0, c1, wall_end = now_ns() + 20 * 1000000000ull;

	(void)state;
	assert_int_equal(proc_sample(0, &a), 0);
	c0 = cpu_clock_ns();
	assert_true(a.rss_bytes > 0);
	assert_true(a.open_fds >= 3);
	while (cpu_clock_ns() - c0 < 300 * 1000000ull && now_ns() < wall_end)
		for (int i = 0; i < 10000; i++)
			x = x * 6364136223846793005ull + 1442695040888963407ull;
	c1 = cpu_clock_ns();
	assert_int_equal(proc_sample(getpid(), &b), 0);
	assert_true(c1 - c0 >= 300 * 1000000ull);
	/* Ticks of 10 ms (USER_HZ 100) at either end. */
	assert_true(b.cpu_ns + 30 * 1000000ull >= a.cpu_ns + (c1 - c0));
	assert_true(b.cpu_ns <= a.cpu_ns + (c1 - c0) + 30 * 1000000ull);
}

static void test_fds_grow(void **state)
{
	struct proc_sample a, b, c;
	int fds[10];

	(void)state;
	assert_int_equal(proc_sample(0, &a), 0);
	for (int i = 0; i < 10; i++) {
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		assert_true(fds[i] >= 0);
	}
	assert_int_equal(proc_sample(0, &b), 0);
	assert_int_equal(b.open_fds, a.open_fds + 10);
	for (int i = 0; i < 10; i++)
		close(fds[i]);
	assert_int_equal(proc_sample(0, &c), 0);
	assert_int_equal(c.open_fds, a.open_fds);
}

/* A child's resident set, before and after it touches 64 MiB; then gone. */
static void test_child_rss_and_gone(void **state)
{
	struct proc_sample a, b;
	int go[2], done[2], status;
	char ch;
	pid_t pid;
	uint64_t end;

	(void)state;
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(done), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		volatile char *p;

		/* Only the parent holds the other ends: its exit ends our reads. */
		close(go[1]);
		close(done[0]);

		if (read(go[0], &ch, 1) != 1)
			_exit(1);
		p = malloc(64 << 20);
		if (!p)
			_exit(1);
		/* Page by page through a volatile pointer: the compiler cannot drop it. */
		for (size_t off = 0; off < (64u << 20); off += 4096)
			p[off] = 1;
		if (write(done[1], "x", 1) != 1)
			_exit(1);
		if (read(go[0], &ch, 1) < 0)
			_exit(1);
		_exit(p[4096] == 1 ? 0 : 1);
	}
	assert_int_equal(proc_sample(pid, &a), 0);
	assert_int_equal(write(go[1], "x", 1), 1);
	assert_int_equal(read(done[0], &ch, 1), 1);
	assert_int_equal(proc_sample(pid, &b), 0);
	assert_true(b.rss_bytes >= a.rss_bytes + (60ull << 20));
	assert_int_equal(write(go[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Reaped: the pid is gone (unless reused at once, which a loop would see). */
	end = now_ns() + 1000000000ull;
	while (proc_sample(pid, &a) == 0 && now_ns() < end)
		;
	assert_int_equal(proc_sample(pid, &a), -ESRCH);
	assert_int_equal(proc_sample(0, NULL), -EINVAL);
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
}

static void test_stat_parse(void **state)
{
	uint64_t t = 0;

	(void)state;
	assert_int_equal(proc_stat_ticks("4242 (a b) c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 "
					 "17 5 0 0 20 0 1 0 123 4096 100",
					 &t),
			 0);
	assert_int_equal(t, 22);
	assert_int_equal(proc_stat_ticks("4242 (x) S 1 2", &t), -EBADMSG);
	assert_int_equal(proc_stat_ticks("no parenthesis", &t), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpu_grows),
		cmocka_unit_test(test_fds_grow),
		cmocka_unit_test(test_child_rss_and_gone),
		cmocka_unit_test(test_stat_parse),
	};

	alarm(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
