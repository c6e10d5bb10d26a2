/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of common/log: the stderr line (prefix, fields, quoting,
 * escaping), the threshold, dropped keys, every truncation, the sink choice,
 * whole lines from concurrent writers, and the journal record itself (sent
 * to a journal socket of our own in a private mount namespace, when the
 * kernel lets us make one).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"

#define CAPTURE_MAX (1 << 20)

/* stderr is redirected to a temporary file while a test logs, and read back. */
static int capture_fd = -1;
static int saved_stderr = -1;
static char captured[CAPTURE_MAX];

static void capture_begin(void)
{
	char path[] = "/tmp/ferry-test-log-XXXXXX";

	fflush(stderr);
	capture_fd = mkstemp(path);
	assert_true(capture_fd >= 0);
	unlink(path);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_int_equal(dup2(capture_fd, STDERR_FILENO), STDERR_FILENO);
}

/* Restores stderr (so failures show) and returns what was written, NUL-terminated. */
static char *capture_end(void)
{
	ssize_t n;

	assert_int_equal(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
	close(saved_stderr);
	n = pread(capture_fd, captured, sizeof(captured) - 1, 0);
	close(capture_fd);
	capture_fd = saved_stderr = -1;
	assert_true(n >= 0);
	captured[n] = 0;
	return captured;
}

static int setup(void **state)
{
	(void)state;
	alarm(30); /* a hang fails the test instead of blocking it */
	unsetenv("FERRY_LOG_LEVEL");
	unsetenv("JOURNAL_STREAM");
	setenv("FERRY_LOG", "stderr", 1);
	log_open("t");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (capture_fd >= 0)
		capture_end();
	unsetenv("FERRY_LOG");
	unsetenv("FERRY_LOG_LEVEL");
	unsetenv("JOURNAL_STREAM");
	alarm(0);
	return 0;
}

static void test_stderr_format(void **state)
{
	const struct log_field f[] = {
		{"TENANT", "acme corp"},
		{"SEQ", "17"},
		{"SOURCE", "sqs"},
	};

	(void)state;
	log_open("decrypt.1");
	capture_begin();
	log_msg(LOG_WARNING, "hello %d", 42);
	log_info("plain");
	log_fields(LOG_ERR, f, 3, "bad tag on %s", "m-1");
	log_notice("trailing newline dropped\n\n");
	log_err("an error");
	log_warning("a warning");
	log_fields(LOG_INFO, NULL, 0, "no fields");
	log_msg(LOG_DAEMON | LOG_CRIT, "facility bits ignored");
	assert_string_equal(
		capture_end(),
		"ferry[decrypt.1] warning: hello 42\n"
		"ferry[decrypt.1] info: plain\n"
		"ferry[decrypt.1] err: bad tag on m-1 TENANT=\"acme corp\" SEQ=17 SOURCE=sqs\n"
		"ferry[decrypt.1] notice: trailing newline dropped\n"
		"ferry[decrypt.1] err: an error\n"
		"ferry[decrypt.1] warning: a warning\n"
		"ferry[decrypt.1] info: no fields\n"
		"ferry[decrypt.1] crit: facility bits ignored\n");
}

static void test_quoting_and_escaping(void **state)
{
	const struct log_field f[] = {
		{"EMPTY", ""},		{"QUOTE", "say \"hi\""}, {"BACKSLASH", "a\\b"},
		{"BOTH", "a \\ b"},	{"TAB", "a\tb"},	 {"NL", "a\nb\r"},
		{"ESC", "\x1b[31mred"}, {"UTF8", "caf\xc3\xa9"}, {"EQ", "a=b"},
	};

	(void)state;
	capture_begin();
	log_fields(LOG_INFO, f, sizeof(f) / sizeof(f[0]), "msg");
	log_info("line1\nline2\tx\x1b[2J\\n\x7f end");
	assert_string_equal(capture_end(),
			    "ferry[t] info: msg EMPTY=\"\" QUOTE=\"say \\\"hi\\\"\" BACKSLASH=a\\b"
			    " BOTH=\"a \\\\ b\" TAB=\"a\\tb\" NL=\"a\\nb\\r\" ESC=\"\\x1b[31mred\""
			    " UTF8=caf\xc3\xa9 EQ=a=b\n"
			    "ferry[t] info: line1\\nline2\tx\\x1b[2J\\n\\x7f end\n");
}

static void test_level_threshold(void **state)
{
	(void)state;
	/* Default: info. */
	capture_begin();
	log_debug("no");
	log_info("info");
	assert_string_equal(capture_end(), "ferry[t] info: info\n");

	setenv("FERRY_LOG_LEVEL", "warning", 1);
	log_open("t");
	capture_begin();
	log_debug("no");
	log_info("no");
	log_notice("no");
	log_warning("warning");
	log_err("err");
	log_msg(LOG_EMERG, "emerg");
	assert_string_equal(capture_end(), "ferry[t] warning: warning\n"
					   "ferry[t] err: err\n"
					   "ferry[t] emerg: emerg\n");

	setenv("FERRY_LOG_LEVEL", "err", 1);
	log_open("t");
	capture_begin();
	log_warning("no");
	log_err("err");
	assert_string_equal(capture_end(), "ferry[t] err: err\n");

	setenv("FERRY_LOG_LEVEL", "notice", 1);
	log_open("t");
	capture_begin();
	log_info("no");
	log_notice("notice");
	assert_string_equal(capture_end(), "ferry[t] notice: notice\n");

	setenv("FERRY_LOG_LEVEL", "debug", 1);
	log_open("t");
	capture_begin();
	log_debug("debug");
	assert_string_equal(capture_end(), "ferry[t] debug: debug\n");

	setenv("FERRY_LOG_LEVEL", "3", 1);
	log_open("t");
	capture_begin();
	log_warning("no");
	log_err("err");
	assert_string_equal(capture_end(), "ferry[t] err: err\n");

	/* Unknown: said so, and info. */
	setenv("FERRY_LOG_LEVEL", "loud", 1);
	capture_begin();
	log_open("t");
	log_debug("no");
	log_info("info");
	assert_string_equal(capture_end(),
			    "ferry[t] warning: FERRY_LOG_LEVEL=loud: want debug, info, "
			    "notice, warning or err; using info\n"
			    "ferry[t] info: info\n");
}

static void test_errno_preserved(void **state)
{
	(void)state;
	capture_begin();
	errno = EBADMSG;
	log_err("failed: %m");
	assert_int_equal(errno, EBADMSG);
	log_debug("dropped");
	assert_int_equal(errno, EBADMSG);
	log_open("t");
	assert_int_equal(errno, EBADMSG);
	assert_string_equal(capture_end(), "ferry[t] err: failed: Bad message\n");
}

static void test_invalid_keys_dropped(void **state)
{
	char k64[LOG_KEY_MAX + 1], k65[LOG_KEY_MAX + 2];
	char expect[256];
	const struct log_field f[] = {
		{"lower", "x"},	   {"_TRUSTED", "x"}, {"", "x"},	 {NULL, "x"},
		{"9LIVES", "x"},   {"BAD-KEY", "x"},  {"SP ACE", "x"},	 {k65, "x"},
		{"NOVALUE", NULL}, {"MESSAGE", "x"},  {"PRIORITY", "x"}, {"SYSLOG_IDENTIFIER", "x"},
		{"SEQ", "1"},	   {k64, "y"},	      {"K9_", "z"},	 {"STAGE", "map.0"},
	};

	(void)state;
	memset(k64, 'A', LOG_KEY_MAX);
	k64[LOG_KEY_MAX] = 0;
	memset(k65, 'B', LOG_KEY_MAX + 1);
	k65[LOG_KEY_MAX + 1] = 0;
	capture_begin();
	log_fields(LOG_INFO, f, sizeof(f) / sizeof(f[0]), "m");
	log_fields(LOG_INFO, NULL, 3, "null fields");
	snprintf(expect, sizeof(expect),
		 "ferry[t] info: m SEQ=1 %s=y K9_=z STAGE=map.0\n"
		 "ferry[t] info: null fields\n",
		 k64);
	assert_string_equal(capture_end(), expect);
}

/* Builds a string of count copies of unit. */
static char *repeat(const char *unit, size_t count)
{
	size_t u = strlen(unit);
	char *s = malloc(u * count + 1);

	assert_non_null(s);
	for (size_t i = 0; i < count; i++)
		memcpy(s + i * u, unit, u);
	s[u * count] = 0;
	return s;
}

static size_t count_char(const char *s, char c)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == c;
	return n;
}

static void test_truncation(void **state)
{
	const char *prefix = "ferry[t] info: ";
	size_t plen = strlen(prefix);
	char *big = repeat("x", 10000);
	char *euro = repeat("\xe2\x82\xac", 1000); /* 3 bytes each */
	char *ctrl = repeat("\x01", 2000);
	char *longval = repeat("v", 1000);
	char *ctrlval = repeat("\x02", 300);
	char *expect, *out;
	struct log_field many[20], wide[LOG_FIELDS_MAX];
	char keys[20][8];

	(void)state;

	/* A long message: cut to LOG_MSG_MAX - 1 bytes, the last three "...". */
	capture_begin();
	log_info("%s", big);
	out = capture_end();
	expect = repeat("x", LOG_MSG_MAX - 4);
	assert_int_equal(strlen(out), plen + LOG_MSG_MAX - 1 + 1);
	assert_memory_equal(out, prefix, plen);
	assert_memory_equal(out + plen, expect, LOG_MSG_MAX - 4);
	assert_string_equal(out + plen + LOG_MSG_MAX - 4, "...\n");
	free(expect);

	/* Never in the middle of a UTF-8 sequence: 2044 bytes hold 681 euro signs. */
	capture_begin();
	log_info("%s", euro);
	out = capture_end();
	expect = repeat("\xe2\x82\xac", (LOG_MSG_MAX - 4) / 3);
	assert_memory_equal(out + plen, expect, strlen(expect));
	assert_string_equal(out + plen + strlen(expect), "...\n");
	free(expect);

	/* A long value: LOG_VALUE_MAX bytes, "..." included. */
	capture_begin();
	log_fields(LOG_INFO, &(struct log_field){"V", longval}, 1, "m");
	out = capture_end();
	expect = repeat("v", LOG_VALUE_MAX - 3);
	assert_memory_equal(out, "ferry[t] info: m V=", plen + 4);
	assert_memory_equal(out + plen + 4, expect, LOG_VALUE_MAX - 3);
	assert_string_equal(out + plen + 4 + LOG_VALUE_MAX - 3, "...\n");
	free(expect);

	/* At most LOG_FIELDS_MAX fields. */
	for (int i = 0; i < 20; i++) {
		snprintf(keys[i], sizeof(keys[i]), "K%d", i);
		many[i] = (struct log_field){keys[i], "v"};
	}
	capture_begin();
	log_fields(LOG_INFO, many, 20, "m");
	assert_string_equal(capture_end(),
			    "ferry[t] info: m K0=v K1=v K2=v K3=v K4=v K5=v K6=v K7=v "
			    "K8=v K9=v K10=v K11=v K12=v K13=v K14=v K15=v\n");

	/* A message that escapes to more than a line: cut at a whole escape, one line. */
	capture_begin();
	log_fields(LOG_INFO, many, 1, "%s", ctrl);
	out = capture_end();
	assert_true(strlen(out) <= LOG_LINE_MAX);
	assert_int_equal(count_char(out, '\n'), 1);
	assert_string_equal(out + strlen(out) - 8, "\\x01...\n");
	assert_null(strstr(out, "K0="));

	/* Fields that do not fit: the last ones go, whole, and the line says so. */
	for (int i = 0; i < LOG_FIELDS_MAX; i++)
		wide[i] = (struct log_field){keys[i], ctrlval};
	capture_begin();
	log_fields(LOG_INFO, wide, LOG_FIELDS_MAX, "%s", big);
	out = capture_end();
	assert_true(strlen(out) <= LOG_LINE_MAX);
	assert_int_equal(count_char(out, '\n'), 1);
	assert_string_equal(out + strlen(out) - 6, "\" ...\n"); /* a closed quote, then " ..." */
	assert_non_null(strstr(out, " K0=\"\\x02"));
	assert_null(strstr(out, " K15="));

	/* A long ident is cut. */
	log_open(big);
	capture_begin();
	log_info("m");
	out = capture_end();
	assert_int_equal(strlen(out), strlen("ferry[] info: m\n") + LOG_IDENT_MAX - 1);
	log_open("t");

	free(big);
	free(euro);
	free(ctrl);
	free(longval);
	free(ctrlval);
}

static void test_sink_choice(void **state)
{
	struct stat st;
	char stream[64];

	(void)state;
	capture_begin();
	assert_int_equal(fstat(STDERR_FILENO, &st), 0);
	snprintf(stream, sizeof(stream), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);

	/* stderr is the journal's stream: the journal. */
	unsetenv("FERRY_LOG");
	setenv("JOURNAL_STREAM", stream, 1);
	log_open("t");
	assert_int_equal(log_sink(), LOG_SINK_JOURNAL);
	setenv("FERRY_LOG", "auto", 1);
	log_open("t");
	assert_int_equal(log_sink(), LOG_SINK_JOURNAL);

	/* ... unless forced to stderr. */
	setenv("FERRY_LOG", "stderr", 1);
	log_open("t");
	assert_int_equal(log_sink(), LOG_SINK_STDERR);
	log_info("forced");

	/* Inherited but for another stream, or garbage: stderr. */
	unsetenv("FERRY_LOG");
	snprintf(stream, sizeof(stream), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", stream, 1);
	log_open("t");
	assert_int_equal(log_sink(), LOG_SINK_STDERR);
	setenv("JOURNAL_STREAM", "junk", 1);
	log_open("t");
	assert_int_equal(log_sink(), LOG_SINK_STDERR);
	setenv("JOURNAL_STREAM", "1:", 1);
	log_open("t");
	assert_int_equal(log_sink(), LOG_SINK_STDERR);
	unsetenv("JOURNAL_STREAM");
	log_open("t");
	assert_int_equal(log_sink(), LOG_SINK_STDERR);

	/* Unknown: said so, and chosen as without it. */
	setenv("FERRY_LOG", "syslog", 1);
	log_open("t");
	assert_int_equal(log_sink(), LOG_SINK_STDERR);

	assert_string_equal(
		capture_end(),
		"ferry[t] info: forced\n"
		"ferry[t] warning: FERRY_LOG=syslog: want journal, stderr or auto; using "
		"stderr\n");
}

/* Forced to the journal without journald: stderr, said so (libsystemd would drop records). */
static void test_journal_forced_without_journald(void **state)
{
	const struct log_field f[] = {{"SEQ", "5"}};

	(void)state;
	if (access("/run/systemd/journal/socket", F_OK) == 0)
		skip(); /* a real journald runs here; test_journal_record covers the journal */
	setenv("FERRY_LOG", "journal", 1);
	capture_begin();
	log_open("t");
	assert_int_equal(log_sink(), LOG_SINK_STDERR);
	log_fields(LOG_ERR, f, 1, "not lost");
	assert_string_equal(
		capture_end(),
		"ferry[t] warning: FERRY_LOG=journal: no journal at "
		"/run/systemd/journal/socket (No such file or directory); using stderr\n"
		"ferry[t] err: not lost SEQ=5\n");
}

/* Several processes on one pipe: every line arrives whole (one write of <= PIPE_BUF each). */
static void test_lines_whole(void **state)
{
	enum { WRITERS = 4, LINES = 300 };
	static char all[WRITERS * LINES * LOG_LINE_MAX];
	int p[2], status;
	size_t got = 0, lines = 0;
	char *line, *next;
	ssize_t n;

	(void)state;
	assert_int_equal(pipe(p), 0);
	for (int w = 0; w < WRITERS; w++) {
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			char *body = repeat((char[]){(char)('a' + w), 0}, 2000);
			struct log_field f = {"W", body + 1800};

			close(p[0]);
			dup2(p[1], STDERR_FILENO);
			for (int i = 0; i < LINES; i++)
				log_fields(LOG_INFO, &f, 1, "%s", body);
			_exit(0);
		}
	}
	close(p[1]);
	while ((n = read(p[0], all + got, sizeof(all) - 1 - got)) > 0)
		got += (size_t)n;
	close(p[0]);
	all[got] = 0;
	for (int w = 0; w < WRITERS; w++) {
		assert_true(wait(&status) > 0);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	for (line = all; *line; line = next + 1) {
		char c;

		next = strchr(line, '\n');
		assert_non_null(next);
		assert_memory_equal(line, "ferry[t] info: ", 15);
		c = line[15];
		assert_true(c >= 'a' && c < 'a' + WRITERS);
		assert_int_equal(next - line, 15 + 2000 + 3 + 200);
		for (char *q = line + 15; q < next; q++)
			assert_true(*q == c || (q >= line + 15 + 2000 && q < line + 15 + 2003));
		assert_memory_equal(line + 15 + 2000, " W=", 3);
		lines++;
	}
	assert_int_equal(lines, WRITERS * LINES);
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/*
 * In a child with its own mount namespace (and user namespace when not
 * root) and a tmpfs on /run: listen on /run/systemd/journal/socket, log
 * two records to the journal, pass the datagrams to the parent. Exit 77
 * when the namespaces cannot be made here.
 */
static int journal_child(int out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const struct log_field f1[] = {{"SEQ", "7"}, {"TENANT", "acme corp"}, {"bad", "x"}};
	const struct log_field f2[] = {{"STAGE", "decrypt.0"}};
	uid_t uid = getuid();
	gid_t gid = getgid();
	char buf[8192], map[64];
	ssize_t n;
	int s;

	if (unshare(CLONE_NEWNS) < 0) {
		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
			return 77;
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
		if (write_file("/proc/self/uid_map", map) < 0)
			return 77;
		write_file("/proc/self/setgroups", "deny");
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
		if (write_file("/proc/self/gid_map", map) < 0)
			return 77;
	}
	/* Private first, so nothing mounted here is seen outside. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 77;
	if (mount("ferry-test", "/run", "tmpfs", 0, "mode=0755") < 0)
		return 77;
	if (mkdir("/run/systemd", 0755) < 0 || mkdir("/run/systemd/journal", 0755) < 0)
		return 1;
	s = socket(AF_UNIX, SOCK_DGRAM, 0);
	strcpy(sa.sun_path, "/run/systemd/journal/socket");
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return 1;

	setenv("FERRY_LOG", "journal", 1);
	log_open("map.0");
	log_fields(LOG_NOTICE, f1, 3, "mapped %d", 3);
	log_fields(LOG_ERR, f2, 1, "two\nlines\n");
	for (int i = 0; i < 2; i++) {
		uint32_t len;

		n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0)
			return 2;
		len = (uint32_t)n;
		if (write(out, &len, sizeof(len)) != sizeof(len) || write(out, buf, len) != n)
			return 1;
	}
	return recv(s, buf, sizeof(buf), MSG_DONTWAIT) < 0 ? 0 : 3;
}

static void test_journal_record(void **state)
{
	static const char want1[] = "MESSAGE=mapped 3\nPRIORITY=5\nSYSLOG_IDENTIFIER=map.0\n"
				    "STAGE=map.0\nSEQ=7\nTENANT=acme corp\n";
	/* A value with a newline goes as name, newline, 64-bit LE length, bytes, newline. */
	static const char want2[] = "MESSAGE\n\x09\0\0\0\0\0\0\0two\nlines\n"
				    "PRIORITY=3\nSYSLOG_IDENTIFIER=map.0\nSTAGE=decrypt.0\n";
	char buf[2][8192];
	uint32_t len[2];
	int p[2], status;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		_exit(journal_child(p[1]));
	}
	close(p[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		close(p[0]);
		skip(); /* no namespaces here (container without the right) */
	}
	assert_int_equal(WEXITSTATUS(status), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(read(p[0], &len[i], sizeof(len[i])), sizeof(len[i]));
		assert_true(len[i] < sizeof(buf[i]));
		assert_int_equal(read(p[0], buf[i], len[i]), len[i]);
	}
	close(p[0]);
	assert_int_equal(len[0], sizeof(want1) - 1);
	assert_memory_equal(buf[0], want1, len[0]);
	assert_int_equal(len[1], sizeof(want2) - 1);
	assert_memory_equal(buf[1], want2, len[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stderr_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quoting_and_escaping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_threshold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errno_preserved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_keys_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_choice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_forced_without_journald, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lines_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_record, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
