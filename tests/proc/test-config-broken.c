/* SPDX-License-Identifier: MIT */
/*
 * Broken configuration files against the real ferryd: each must fail at
 * start with exit status 100 (configuration), one stderr line naming
 * FILE:LINE and the key (or the list file's name and line), and nothing
 * half-started: no segment /dev/shm/ferry.<instance>, no control socket,
 * no process left behind. ferryd runs in a process group of its own and
 * this process is a child subreaper, so any stage it started is seen:
 * kill(-pgid, 0) must fail with ESRCH once it has exited, and no orphan
 * may come back to us. A good file (whose stages cannot be exec'd) shows
 * that those checks do see a started ferryd.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "shm/segment.h"

#ifndef FERRYD_PATH
#error "FERRYD_PATH must name the ferryd binary"
#endif

#define QURL "https://sqs.eu-west-1.amazonaws.com/123456789012/"

/*
 * One broken file. In text, @I@ is the case's instance name and @D@ the test's
 * directory. Every file starts with the same three lines (instance and
 * control socket first, so the checks know which names to look for); line
 * numbers count them. want names the file and line: "" = the config file
 * at line, else a list file's "name:line" as the message shows it (line is
 * then the config line naming the list file).
 */
struct bad_case {
	const char *name;
	const char *text;
	unsigned line; /* 0: no line applies (file missing, unreadable) */
	const char *key;
	const char *reason; /* a part of the message */
	const char *list;   /* a list file to write as @D@/<case>.list, or NULL */
	const char *want;   /* list file errors: "<case>.list:N" */
};

#define HEAD "[ferry]\ninstance = @I@\ncontrol_socket = @D@/@I@.sock\n"

static const struct bad_case cases[] = {
	{"unknown-section", HEAD "[ferrry]\nshards = 2\n", 4, "[ferrry]", "unknown section"},
	{"unknown-key", HEAD "shard = 2\n", 4, "[ferry] shard", "unknown key"},
	{"bad-number", HEAD "shards = two\n", 4, "[ferry] shards", "want an integer from 1 to 64"},
	{"shards-0", HEAD "shards = 0\n", 4, "[ferry] shards", "got '0'"},
	{"shards-65", HEAD "shards = 65\n", 4, "[ferry] shards", "got '65'"},
	{"bad-size", HEAD "ring_size = 16Q\n", 4, "[ferry] ring_size", "power of two"},
	{"ring-not-pow2", HEAD "\nring_size = 12M\n", 5, "[ferry] ring_size", "got '12M'"},
	{"ack-ring-too-small", HEAD "ack_ring_size = 32K\n", 4, "[ferry] ack_ring_size", "64K"},
	{"bad-duration", HEAD "heartbeat_timeout = 10 sec\n", 4, "[ferry] heartbeat_timeout",
	 "want a duration"},
	{"duration-too-long", HEAD "[sqs]\nwait_time = 30s\n", 5, "[sqs] wait_time", "0 to 20s"},
	{"bad-bool", HEAD "[registry]\ntls_verify = yes\n", 5, "[registry] tls_verify",
	 "want true or false"},
	{"bad-strategy", HEAD "[registry]\nsubject_strategy = name\n", 5,
	 "[registry] subject_strategy", "got 'name'"},
	{"bad-url", HEAD "[registry]\nurl = registry:8081\n", 5, "[registry] url", "want a URL"},
	{"missing-file", NULL, 0, NULL, "cannot open: No such file or directory"},
	{"unreadable-file", HEAD, 0, NULL, "cannot open: Permission denied"},
	{"set-twice", HEAD "poison_strikes = 3\n\npoison_strikes = 4\n", 6,
	 "[ferry] poison_strikes", "set twice (first on line 4)"},
	{"kafka-set-twice", HEAD "[kafka]\nacks = all\nacks = 1\n", 6, "[kafka] acks",
	 "set twice (first on line 5)"},
	{"replay-file-missing", HEAD "[replay]\nfile = @D@/no-such.replay\n", 5, "[replay] file",
	 "cannot read"},
	{"control-socket-dir-missing",
	 "[ferry]\ninstance = @I@\ncontrol_socket = @D@/no-such-dir/@I@.sock\n", 3,
	 "[ferry] control_socket", "does not exist"},
	{"replay-and-queue", HEAD "[replay]\nfile = @D@/x.replay\n[sqs]\nqueue = " QURL "q1\n", 5,
	 "[replay] file", "cannot be combined"},
	{"bad-instance", "[ferry]\ninstance = @I@/x\n", 2, "[ferry] instance", "got '"},
	{"instance-dot", "[ferry]\ninstance = .@I@\n", 2, "[ferry] instance",
	 "not starting with '.'"},
	{"queues-file-bad-line", HEAD "[sqs]\nqueues_file = @D@/@C@.list\n", 5, "[sqs] queues_file",
	 "want an SQS queue URL", "# queues\n" QURL "a\nsqs://nope\n" QURL "b\n", "@C@.list:3"},
	{"queues-file-missing", HEAD "[sqs]\nqueues_file = @D@/nowhere.list\n", 5,
	 "[sqs] queues_file", "cannot open"},
	{"queues-file-dir", HEAD "[sqs]\nqueues_file = @D@\n", 5, "[sqs] queues_file",
	 "cannot read"},
	{"subs-file-bad-line", HEAD "[pubsub]\nsubscriptions_file = @D@/@C@.list\n", 5,
	 "[pubsub] subscriptions_file", "want a subscription",
	 "projects/p/subscriptions/sub-1\nprojects/p/subscription/sub-2\n", "@C@.list:2"},
	{"queue-twice", HEAD "[sqs]\nqueue = " QURL "q1\nqueue = " QURL "q1\nqueue = " QURL "q2\n",
	 6, "[sqs] queue", "listed twice"},
	{"queues-file-twice", HEAD "[sqs]\nqueues_file = @D@/@C@.list\n", 5, "[sqs] queues_file",
	 "listed twice", QURL "a\n\n" QURL "a\n", "@C@.list:3"},
	{"queue-inline-and-list", HEAD "[sqs]\nqueue = " QURL "a\nqueues_file = @D@/@C@.list\n", 6,
	 "[sqs] queues_file", "listed twice", QURL "a\n", "@C@.list:1"},
	{"bad-queue", HEAD "[sqs]\nqueue = sqs.eu-west-1.amazonaws.com/1/q\n", 5, "[sqs] queue",
	 "want an SQS queue URL"},
	{"bad-subscription", HEAD "[pubsub]\nsubscription = topics/t\n", 5, "[pubsub] subscription",
	 "want a subscription"},
	{"kafka-refused", HEAD "[kafka]\nacks = maybe\n", 5, "[kafka] acks", "Invalid value"},
	{"kafka-unknown", HEAD "[kafka]\nbootstrap.server = 127.0.0.1:9092\n", 5,
	 "[kafka] bootstrap.server", "No such configuration property"},
	{"syntax-error", HEAD "shards 2\n", 4, NULL, "syntax error"},
	{"unclosed-section", HEAD "[sqs\nqueue = " QURL "q1\n", 4, NULL, "syntax error"},
	{"before-section", "instance = @I@\n[ferry]\n", 1, "instance", "set before any [section]"},
	{"continuation", HEAD "stage_dir = /opt/ferry\n  /bin\n", 5, "[ferry] stage_dir",
	 "indented line would continue"},
	{"line-too-long",
	 HEAD "stage_dir = /opt/"
	      "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
	      "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
	      "fffffffffffffffffffffffffffffffffffffffffffffff\n",
	 4, NULL, "line longer than 199 characters"},
	{"delays-reversed", HEAD "restart_delay_min = 1m\nrestart_delay_max = 10s\n", 4,
	 "[ferry] restart_delay_min", "must not be above restart_delay_max"},
	{"topics-same", HEAD "[produce]\ntopic = t\ndead_letter_topic = t\n", 6,
	 "[produce] dead_letter_topic", "must differ from topic"},
	{"bad-topic", HEAD "[produce]\ntopic = a topic\n", 5, "[produce] topic",
	 "Kafka topic name"},
	{"inflight-not-pow2", HEAD "[ingest]\nmax_inflight = 1000\n", 5, "[ingest] max_inflight",
	 "power of two"},
	{"socket-too-long",
	 "[ferry]\ninstance = @I@\ncontrol_socket = /tmp/"
	 "ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss"
	 "ssssssssssssssssssssssss.sock\n",
	 3, "[ferry] control_socket", "shorter than 108 bytes"},
	{"nul-byte", HEAD "shards = 2@0@ # binary\n", 4, NULL, "a NUL byte in the line"},
	{"password-not-echoed", HEAD "[registry]\npasword = hunter2-secret\n", 5,
	 "[registry] pasword", "(not shown)"},
};

static char dir[64]; /* /tmp/test-config-broken.XXXXXX */

/* text with @I@, @D@, @C@ (the case's name) and @0@ (a NUL byte) replaced; returns its length. */
static size_t expand(const char *text, const char *inst, const char *cname, char *out, size_t len)
{
	size_t n = 0;

	for (const char *p = text; *p; p++) {
		const char *put = NULL;

		if (!strncmp(p, "@I@", 3))
			put = inst;
		else if (!strncmp(p, "@D@", 3))
			put = dir;
		else if (!strncmp(p, "@C@", 3))
			put = cname;
		if (!strncmp(p, "@0@", 3)) {
			out[n++] = 0;
			p += 2;
		} else if (put) {
			n += (size_t)snprintf(out + n, len - n, "%s", put);
			p += 2;
		} else if (n + 1 < len) {
			out[n++] = *p;
		}
		assert_true(n + 1 < len);
	}
	out[n] = 0;
	return n;
}

static void write_file(const char *path, const char *text, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ferryd -c path in a process group of its own, stderr to log_path. Returns its pid. */
static pid_t spawn(const char *path, const char *log_path)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		setpgid(0, 0);
		if (fd < 0 || dup2(fd, 2) < 0 || dup2(fd, 1) < 0)
			_exit(111);
		setenv("FERRY_LOG", "stderr", 1);
		unsetenv("NOTIFY_SOCKET");
		unsetenv("RUNTIME_DIRECTORY");
		execl(FERRYD_PATH, "ferryd", "-c", path, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid); /* both sides: no race with kill(-pid) below */
	return pid;
}

/* Wait for pid up to ms; SIGKILL its group when it takes longer. Returns the status. */
static int wait_exit(pid_t pid, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	int status = 0;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		assert_int_equal(r, 0);
		if (now_ms() > end) {
			kill(-pid, SIGKILL);
			assert_int_equal(waitpid(pid, &status, 0), pid);
			fail_msg("ferryd did not exit within %u ms", ms);
		}
		usleep(2000);
	}
}

static void read_log(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = 0;
	fclose(f);
}

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Nothing of instance inst is left: segment, control sockets, processes of group pgid. */
static void nothing_started(pid_t pgid, const char *inst, const char *log)
{
	char path[SHM_PATH_MAX + 128];
	int status;
	pid_t r;

	if (kill(-pgid, 0) == 0 || errno != ESRCH)
		fail_msg("a process of ferryd's group %d is still there\n%s", (int)pgid, log);
	/* An orphaned stage would have been handed to us, the subreaper. */
	r = waitpid(-1, &status, WNOHANG);
	if (r > 0)
		fail_msg("process %d (a stage?) was left behind\n%s", (int)r, log);
	if (shm_path(inst, path, sizeof(path)) == 0 && exists(path))
		fail_msg("%s exists\n%s", path, log);
	snprintf(path, sizeof(path), "%s/%s.sock", dir, inst);
	if (exists(path))
		fail_msg("%s exists\n%s", path, log);
	snprintf(path, sizeof(path), "/tmp/ferry.%s.sock", inst);
	if (exists(path))
		fail_msg("%s exists\n%s", path, log);
	if (strstr(log, "started") || strstr(log, "shards, rings of"))
		fail_msg("ferryd started something\n%s", log);
}

static void expect_in(const char *log, const char *needle, const char *what)
{
	if (!strstr(log, needle))
		fail_msg("stderr lacks %s '%s':\n%s", what, needle, log);
}

static void test_case(void **state)
{
	const struct bad_case *c = *state;
	char inst[64], path[512], log_path[512], text[4096], log[8192], want[1024];
	pid_t pid;
	int status;

	snprintf(inst, sizeof(inst), "cfgbroken-%d-%td", (int)getpid(), c - cases);
	snprintf(path, sizeof(path), "%s/%s.conf", dir, c->name);
	snprintf(log_path, sizeof(log_path), "%s/%s.log", dir, c->name);
	if (!strcmp(c->name, "unreadable-file") && geteuid() == 0) {
		/* root reads a mode 000 file anyway (CAP_DAC_OVERRIDE) */
		print_message("unreadable-file: skipped, running as root\n");
		skip();
	}
	if (c->text) {
		size_t n = expand(c->text, inst, c->name, text, sizeof(text));

		write_file(path, text, n, !strcmp(c->name, "unreadable-file") ? 0 : 0600);
	}
	if (c->list) {
		char lpath[512];

		snprintf(lpath, sizeof(lpath), "%s/%s.list", dir, c->name);
		write_file(lpath, c->list, strlen(c->list), 0600);
	}

	pid = spawn(path, log_path);
	status = wait_exit(pid, 10000);
	read_log(log_path, log, sizeof(log));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 100)
		fail_msg("%s: want exit status 100, got 0x%x\n%s", c->name, status, log);

	/* FILE:LINE: (or FILE: when no line applies), the key, the reason, on one line. */
	if (c->line)
		snprintf(want, sizeof(want), "%s:%u: ", path, c->line);
	else
		snprintf(want, sizeof(want), "%s: ", path);
	expect_in(log, want, "the file and line");
	if (c->key) {
		char *at = strstr(log, want);

		snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s", c->key);
		if (!at || strncmp(at, want, strlen(want)))
			fail_msg("stderr lacks '%s' (the key right after file:line):\n%s", want,
				 log);
	}
	if (c->want) {
		char lw[256];

		expand(c->want, inst, c->name, lw, sizeof(lw));
		snprintf(want, sizeof(want), "%s/%s: ", dir, lw);
		expect_in(log, want, "the list file and its line");
	}
	expect_in(log, c->reason, "the reason");
	if (strchr(log, '\n') != log + strlen(log) - 1)
		fail_msg("want one line on stderr:\n%s", log);
	if (strstr(log, "hunter2"))
		fail_msg("a password-like value was echoed:\n%s", log);
	nothing_started(pid, inst, log);
}

static int segment_up(const char *inst, const char *sock)
{
	char path[SHM_PATH_MAX];

	return shm_path(inst, path, sizeof(path)) == 0 && exists(path) && exists(sock);
}

/* The control: a good file starts ferryd, and the checks above see it. */
static void test_good_file_starts(void **state)
{
	char inst[64], path[512], log_path[512], sock[512], text[1024], log[8192],
		seg[SHM_PATH_MAX];
	uint64_t end;
	pid_t pid;
	int status;

	(void)state;
	snprintf(inst, sizeof(inst), "cfgbroken-%d-good", (int)getpid());
	snprintf(path, sizeof(path), "%s/good.conf", dir);
	snprintf(log_path, sizeof(log_path), "%s/good.log", dir);
	snprintf(sock, sizeof(sock), "%s/%s.sock", dir, inst);
	/* Stages that cannot be exec'd: ferryd runs, marks them failed, starts nothing else. */
	snprintf(text, sizeof(text),
		 "[ferry]\ninstance = %s\ncontrol_socket = %s\nshards = 1\nring_size = 4M\n"
		 "stage_dir = %s/nowhere\n",
		 inst, sock, dir);
	write_file(path, text, strlen(text), 0600);
	pid = spawn(path, log_path);
	end = now_ms() + 10000;
	while (!segment_up(inst, sock) && now_ms() < end && waitpid(pid, &status, WNOHANG) == 0)
		usleep(5000);
	read_log(log_path, log, sizeof(log));
	if (!segment_up(inst, sock)) {
		kill(-pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("a good file did not start ferryd\n%s", log);
	}
	assert_int_equal(kill(-pid, 0), 0); /* what nothing_started() checks sees it */
	kill(pid, SIGTERM);
	status = wait_exit(pid, 20000);
	read_log(log_path, log, sizeof(log));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("ferryd: want exit 0 on SIGTERM, got 0x%x\n%s", status, log);
	/* Its failed stages were reaped by ferryd itself: nothing reaches us. */
	while (waitpid(-1, &status, WNOHANG) > 0)
		;
	assert_int_not_equal(kill(-pid, 0), 0);
	assert_int_equal(shm_path(inst, seg, sizeof(seg)), 0);
	assert_false(exists(seg));
	assert_false(exists(sock));
}

static int setup(void **state)
{
	(void)state;
	alarm(60); /* a hang fails the test instead of blocking it */
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	alarm(0);
	return 0;
}

static void cleanup_dir(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "test-config-broken: could not remove %s\n", dir);
}

int main(void)
{
	struct CMUnitTest tests[ARRAY_SIZE(cases) + 1];
	int r;

	snprintf(dir, sizeof(dir), "/tmp/test-config-broken.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	/* Orphans of ferryd come back to us, where nothing_started() looks for them. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("prctl");
		return 1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		tests[i] = (struct CMUnitTest){cases[i].name, test_case, setup, teardown,
					       (void *)&cases[i]};
	tests[ARRAY_SIZE(cases)] = (struct CMUnitTest){"good-file-starts", test_good_file_starts,
						       setup, teardown, NULL};
	r = _cmocka_run_group_tests("test-config-broken", tests, ARRAY_SIZE(tests), NULL, NULL);
	if (!getenv("TEST_CONFIG_BROKEN_KEEP"))
		cleanup_dir();
	return r;
}
