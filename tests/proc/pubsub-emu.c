/* SPDX-License-Identifier: MIT */
#include "tests/proc/port.h"
#include "tests/proc/pubsub-emu.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#define START_TIMEOUT_S 90
#define STOP_TIMEOUT_S	10

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t discard(char *p, size_t size, size_t n, void *u)
{
	(void)p;
	(void)u;
	return size * n;
}

/* The emulator answers "Ok" (HTTP 200) on / once it serves requests. */
static int answers(CURL *easy, const char *base)
{
	long status = 0;

	curl_easy_setopt(easy, CURLOPT_URL, base);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 1000L);
	if (curl_easy_perform(easy) != CURLE_OK)
		return 0;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	return status == 200;
}

struct pubsub_emu *pubsub_emu_start(void **state, const char *project)
{
	struct pubsub_emu *e = calloc(1, sizeof(*e));
	char hp[64], proj[96], dd[96];
	double deadline;
	CURL *easy;
	int status;

	assert_non_null(e);
	assert_true(project && strlen(project) >= 3 && strlen(project) < sizeof(e->project));
	snprintf(e->project, sizeof(e->project), "%s", project);
	snprintf(e->data_dir, sizeof(e->data_dir), "/tmp/pubsub-emu.XXXXXX");
	assert_non_null(mkdtemp(e->data_dir));
	e->port = test_free_port();
	snprintf(e->host_port, sizeof(e->host_port), "127.0.0.1:%d", e->port);
	snprintf(e->base, sizeof(e->base), "http://127.0.0.1:%d", e->port);
	snprintf(hp, sizeof(hp), "--host-port=%s", e->host_port);
	snprintf(proj, sizeof(proj), "--project=%s", e->project);
	snprintf(dd, sizeof(dd), "--data-dir=%s", e->data_dir);
	e->pid = fork();
	assert_true(e->pid >= 0);
	if (e->pid == 0) {
		int null = open("/dev/null", O_RDWR);

		setpgid(0, 0);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			if (!getenv("TEST_PUBSUB_VERBOSE"))
				dup2(null, 2);
		}
		execlp("gcloud", "gcloud", "beta", "emulators", "pubsub", "start", hp, proj, dd,
		       "--quiet", (char *)NULL);
		fprintf(stderr, "cannot run gcloud: %s\n", strerror(errno));
		_exit(127);
	}
	setpgid(e->pid, e->pid); /* also here: no race with the child's own call */
	*state = e;		 /* teardown kills it, even if it never answers */
	easy = curl_easy_init();
	assert_non_null(easy);
	deadline = mono_s() + START_TIMEOUT_S;
	while (!answers(easy, e->base)) {
		struct timespec ts = {0, 100 * 1000 * 1000};

		if (waitpid(e->pid, &status, WNOHANG) == e->pid) {
			e->pid = 0;
			curl_easy_cleanup(easy);
			fail_msg("the Pub/Sub emulator exited (status 0x%x) before answering on %d "
				 "(TEST_PUBSUB_VERBOSE=1 shows its output)",
				 status, e->port);
		}
		if (mono_s() > deadline) {
			curl_easy_cleanup(easy);
			fail_msg("the Pub/Sub emulator did not answer on port %d within %d s",
				 e->port, START_TIMEOUT_S);
		}
		nanosleep(&ts, NULL);
	}
	curl_easy_cleanup(easy);
	return e;
}

static int group_alive(pid_t pgid)
{
	return kill(-pgid, 0) == 0 || errno == EPERM;
}

void pubsub_emu_stop(struct pubsub_emu *e)
{
	char cmd[128];
	double deadline;
	int status;

	if (!e)
		return;
	if (e->pid > 0) {
		/* gcloud (Python) runs the emulator as a JVM child: the whole group goes. */
		kill(-e->pid, SIGTERM);
		deadline = mono_s() + STOP_TIMEOUT_S;
		for (;;) {
			struct timespec ts = {0, 50 * 1000 * 1000};

			waitpid(e->pid, &status, WNOHANG);
			if (!group_alive(e->pid) || mono_s() > deadline)
				break;
			nanosleep(&ts, NULL);
		}
		if (group_alive(e->pid))
			kill(-e->pid, SIGKILL);
		waitpid(e->pid, &status, 0);
	}
	if (e->data_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->data_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "pubsub-emu: cannot remove %s\n", e->data_dir);
	}
	free(e);
}
