/* SPDX-License-Identifier: MIT */
/* Unit tests of common/notify: each message read back from a real notify socket. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/notify.h"
#include "common/time.h"

/* A datagram socket in a private directory, named by $NOTIFY_SOCKET, as systemd sets it up. */
struct fixture {
	char dir[64];
	char path[128];
	int fd;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	alarm(30); /* a hang fails the test instead of blocking it */
	assert_non_null(f);
	strcpy(f->dir, "/tmp/ferry-notify-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/notify", f->dir);
	f->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(f->fd >= 0);
	assert_true(strlen(f->path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, f->path);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", f->path, 1), 0);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	close(f->fd);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	alarm(0);
	return 0;
}

/* The next datagram on the socket (sd_notify() has sent it before returning), NUL-terminated. */
static char *next_datagram(struct fixture *f)
{
	static char buf[4096];
	ssize_t n = recv(f->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	assert_true(n >= 0);
	buf[n] = 0;
	return buf;
}

static void assert_no_datagram(struct fixture *f)
{
	char c;

	assert_int_equal(recv(f->fd, &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

static void test_ready_watchdog_stopping(void **state)
{
	struct fixture *f = *state;

	assert_true(notify_ready() > 0);
	assert_string_equal(next_datagram(f), "READY=1");
	assert_true(notify_watchdog() > 0);
	assert_string_equal(next_datagram(f), "WATCHDOG=1");
	assert_true(notify_stopping() > 0);
	assert_string_equal(next_datagram(f), "STOPPING=1");
	assert_no_datagram(f);
	/* unset_environment was 0: the supervisor keeps its channel. */
	assert_string_equal(getenv("NOTIFY_SOCKET"), f->path);
}

static void test_status(void **state)
{
	struct fixture *f = *state;
	char *longer = malloc(1000 + 1);
	const char *volatile no_format = NULL;
	char *got;

	assert_non_null(longer);
	assert_true(notify_status("%d msg/s, lag %s", 1200, "3s") > 0);
	assert_string_equal(next_datagram(f), "STATUS=1200 msg/s, lag 3s");

	/* A newline cannot smuggle in another assignment. */
	assert_true(notify_status("bad\nREADY=1\n%s", "x") > 0);
	assert_string_equal(next_datagram(f), "STATUS=bad READY=1 x");

	memset(longer, 'x', 1000);
	longer[1000] = 0;
	assert_true(notify_status("%s", longer) > 0);
	got = next_datagram(f);
	assert_int_equal(strlen(got), strlen("STATUS=") + NOTIFY_STATUS_MAX - 1);
	assert_memory_equal(got, "STATUS=xxx", 10);

	assert_int_equal(notify_status(no_format), -EINVAL);
	assert_no_datagram(f);
	free(longer);
}

static void test_reloading(void **state)
{
	struct fixture *f = *state;
	static const char head[] = "RELOADING=1\nMONOTONIC_USEC=";
	uint64_t before, after, usec;
	char *got, *end;

	before = now_ns() / 1000;
	assert_true(notify_reloading() > 0);
	after = now_ns() / 1000;
	got = next_datagram(f);
	assert_memory_equal(got, head, sizeof(head) - 1);
	got += sizeof(head) - 1;
	assert_true(*got >= '0' && *got <= '9');
	usec = strtoull(got, &end, 10);
	assert_int_equal(*end, 0); /* nothing after the number, not even a newline */
	assert_true(usec >= before && usec <= after);
	assert_no_datagram(f);
}

static void test_no_socket(void **state)
{
	struct fixture *f = *state;

	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_ready(), 0);
	assert_int_equal(notify_status("x"), 0);
	assert_int_equal(notify_watchdog(), 0);
	assert_int_equal(notify_reloading(), 0);
	assert_int_equal(notify_stopping(), 0);
	assert_no_datagram(f);
}

static void test_send_error(void **state)
{
	struct fixture *f = *state;
	char gone[160];

	snprintf(gone, sizeof(gone), "%s/nobody-listens", f->dir);
	assert_int_equal(setenv("NOTIFY_SOCKET", gone, 1), 0);
	assert_true(notify_ready() < 0);
	assert_no_datagram(f);
}

static void test_forget(void **state)
{
	struct fixture *f = *state;
	char pid[32];

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	assert_int_equal(setenv("WATCHDOG_USEC", "3000000", 1), 0);
	assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
	assert_int_equal(notify_watchdog_usec(), 3000000);
	notify_forget();
	assert_null(getenv("NOTIFY_SOCKET"));
	assert_null(getenv("WATCHDOG_USEC"));
	assert_null(getenv("WATCHDOG_PID"));
	assert_int_equal(notify_ready(), 0);
	assert_int_equal(notify_watchdog_usec(), 0);
	assert_no_datagram(f);
	notify_forget(); /* twice is harmless */
}

static void test_watchdog_usec(void **state)
{
	char pid[32];

	(void)state;
	assert_int_equal(notify_watchdog_usec(), 0);

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	assert_int_equal(setenv("WATCHDOG_USEC", "5000000", 1), 0);
	assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
	assert_int_equal(notify_watchdog_usec(), 5000000);
	/* Not unset by asking. */
	assert_string_equal(getenv("WATCHDOG_USEC"), "5000000");

	/* Meant for another process (ferryd's, inherited by a stage): not ours. */
	snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
	assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
	assert_int_equal(notify_watchdog_usec(), 0);

	/* Without WATCHDOG_PID it applies to whoever reads it. */
	unsetenv("WATCHDOG_PID");
	assert_int_equal(notify_watchdog_usec(), 5000000);

	assert_int_equal(setenv("WATCHDOG_USEC", "soon", 1), 0);
	assert_int_equal(notify_watchdog_usec(), 0);
	assert_int_equal(setenv("WATCHDOG_USEC", "0", 1), 0);
	assert_int_equal(notify_watchdog_usec(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ready_watchdog_stopping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reloading, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watchdog_usec, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
