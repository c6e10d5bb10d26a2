/* SPDX-License-Identifier: MIT */
/*
 * moto: a real moto_server (SQS, SNS, KMS, IAM) for process tests, started
 * on a free loopback port in its own process group and stopped with it.
 */
#ifndef FERRY_TESTS_MOTO_H
#define FERRY_TESTS_MOTO_H

#include <sys/types.h>

struct moto {
	pid_t pid;
	int port;
	char endpoint[64];
};

/*
 * Start moto_server (with INITIAL_NO_AUTH_ACTION_COUNT=no_auth_count when
 * not NULL); *state gets it at once, so a teardown can stop it even if it
 * never listens. Waits (bounded, 30 s) until it accepts connections; fails
 * the test otherwise.
 */
struct moto *moto_start(void **state, const char *no_auth_count);

/* SIGTERM its process group, then SIGKILL after 5 s. Accepts NULL. */
void moto_stop(struct moto *m);

#endif
