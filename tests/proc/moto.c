/* SPDX-License-Identifier: MIT */
#include "tests/proc/moto.h"
#include "tests/proc/port.h"

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

#include <cjson/cJSON.h>
#include <cmocka.h>

static int can_connect(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	assert_true(fd >= 0);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* Start moto_server in its own process group; wait (bounded) until it accepts connections. */
struct moto *moto_start(void **state, const char *no_auth_count)
{
	struct moto *m = calloc(1, sizeof(*m));
	char port[16];
	int status;

	assert_non_null(m);
	m->port = test_free_port();
	snprintf(port, sizeof(port), "%d", m->port);
	snprintf(m->endpoint, sizeof(m->endpoint), "http://127.0.0.1:%d", m->port);
	m->pid = fork();
	assert_true(m->pid >= 0);
	if (m->pid == 0) {
		int null = open("/dev/null", O_RDWR);

		setpgid(0, 0);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			if (!getenv("TEST_AWS_VERBOSE"))
				dup2(null, 2);
		}
		if (no_auth_count)
			setenv("INITIAL_NO_AUTH_ACTION_COUNT", no_auth_count, 1);
		execlp("moto_server", "moto_server", "-H", "127.0.0.1", "-p", port, (char *)NULL);
		fprintf(stderr, "cannot run moto_server: %s\n", strerror(errno));
		_exit(127);
	}
	setpgid(m->pid, m->pid); /* also here: no race with the child's own call */
	*state = m;		 /* teardown kills it, even if it never listens */
	for (int i = 0; i < 600 && !can_connect(m->port); i++) {
		struct timespec ts = {0, 50 * 1000 * 1000};

		if (waitpid(m->pid, &status, WNOHANG) == m->pid)
			fail_msg("moto_server exited (status 0x%x) before listening on %d", status,
				 m->port);
		nanosleep(&ts, NULL);
	}
	if (!can_connect(m->port))
		fail_msg("moto_server did not listen on port %d within 30 s", m->port);
	return m;
}

void moto_stop(struct moto *m)
{
	int status;

	if (!m)
		return;
	kill(-m->pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		struct timespec ts = {0, 50 * 1000 * 1000};

		if (waitpid(m->pid, &status, WNOHANG) == m->pid) {
			m->pid = 0;
			break;
		}
		nanosleep(&ts, NULL);
	}
	if (m->pid) {
		kill(-m->pid, SIGKILL);
		waitpid(m->pid, &status, 0);
	}
	free(m);
}

struct aws_client *moto_client(const struct moto *m, const char *key, const char *secret)
{
	struct aws_creds c;
	struct aws_client *cl;

	memset(&c, 0, sizeof(c));
	snprintf(c.access_key, sizeof(c.access_key), "%s", key);
	snprintf(c.secret_key, sizeof(c.secret_key), "%s", secret);
	cl = aws_client_new("us-east-1", m->endpoint, &c);
	assert_non_null(cl);
	return cl;
}

/* One IAM call that must succeed; its XML answer (malloc'd). */
static char *iam(struct aws_client *cl, const char *form)
{
	char err[512] = "", *body = NULL;
	long status = 0;

	if (aws_query_call(cl, "iam", form, &body, &status, err, sizeof(err)) < 0)
		fail_msg("iam %s: %s", form, err);
	assert_int_equal(status, 200);
	return body;
}

void moto_user(const struct moto *m, const char *services, char *akid, size_t alen, char *secret,
	       size_t slen)
{
	struct aws_client *cl = moto_client(m, "test", "test");
	char form[1024], actions[256] = "", *xml;
	const char *s = services;
	size_t len = 0;

	/* A policy allowing each service's every action: ["sqs:*","sns:*"], URL-encoded. */
	while (*s) {
		size_t n = strcspn(s, ",");

		len += (size_t)snprintf(actions + len, sizeof(actions) - len, "%s%%22%.*s%%3A*%%22",
					len ? "%2C" : "", (int)n, s);
		s += n + (s[n] == ',');
	}
	free(iam(cl, "Action=CreateUser&Version=2010-05-08&UserName=ferry"));
	snprintf(
		form, sizeof(form),
		"Action=PutUserPolicy&Version=2010-05-08&UserName=ferry&PolicyName=ferry"
		"&PolicyDocument=%%7B%%22Version%%22%%3A%%222012-10-17%%22%%2C%%22Statement%%22%%3A"
		"%%5B%%7B%%22Effect%%22%%3A%%22Allow%%22%%2C%%22Action%%22%%3A%%5B%s%%5D%%2C"
		"%%22Resource%%22%%3A%%22*%%22%%7D%%5D%%7D",
		actions);
	free(iam(cl, form));
	xml = iam(cl, "Action=CreateAccessKey&Version=2010-05-08&UserName=ferry");
	assert_true(aws_xml_text(xml, "AccessKeyId", akid, alen) > 0);
	assert_true(aws_xml_text(xml, "SecretAccessKey", secret, slen) > 0);
	free(xml);
	aws_client_free(cl);
}

char *moto_kms(struct aws_client *cl, const char *target, const char *body, const char *a,
	       const char *b)
{
	char err[512] = "", *out = NULL, *ret;
	cJSON *j, *v;

	if (aws_json_call(cl, "kms", target, body, &out, NULL, err, sizeof(err)) < 0)
		fail_msg("%s: %s", target, err);
	j = cJSON_Parse(out);
	v = cJSON_GetObjectItemCaseSensitive(j, a);
	if (b)
		v = cJSON_GetObjectItemCaseSensitive(v, b);
	assert_true(cJSON_IsString(v));
	ret = strdup(v->valuestring);
	cJSON_Delete(j);
	free(out);
	return ret;
}
