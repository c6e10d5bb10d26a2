/* SPDX-License-Identifier: MIT */
/*
 * moto: a real moto_server (SQS, SNS, KMS, IAM) for process tests, started
 * on a free loopback port in its own process group and stopped with it.
 */
#ifndef FERRY_TESTS_MOTO_H
#define FERRY_TESTS_MOTO_H

#include <stddef.h>
#include <sys/types.h>

#include "common/aws.h"

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

/* A client of m for region us-east-1 signing with this key (fails the test if it cannot). */
struct aws_client *moto_client(const struct moto *m, const char *key, const char *secret);

/*
 * The 3 set-up calls of a moto started with INITIAL_NO_AUTH_ACTION_COUNT=3:
 * an IAM user "ferry" allowed <service>:* for each service of services
 * (e.g. "sqs,sns"), and its access key into akid and secret. After these,
 * moto checks every signature and permission.
 */
void moto_user(const struct moto *m, const char *services, char *akid, size_t alen, char *secret,
	       size_t slen);

/*
 * One KMS call (JSON protocol, e.g. "TrentService.Encrypt") that must
 * succeed; returns the string member a (or a.b) of the answer, malloc'd.
 */
char *moto_kms(struct aws_client *cl, const char *target, const char *body, const char *a,
	       const char *b);

/* SIGTERM its process group, then SIGKILL after 5 s. Accepts NULL. */
void moto_stop(struct moto *m);

#endif
