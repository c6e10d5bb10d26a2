/* SPDX-License-Identifier: MIT */
/*
 * Scale-out: two ferry instances on one machine (distinct instance names,
 * as two units ferry@a and ferry@b would run) share one SQS queue (moto)
 * and one Pub/Sub subscription (the emulator), both competing consumers.
 * Both take part; half way, instance b is stopped with SIGTERM (scale-in:
 * it drains and hands back what it cannot finish) and a carries on alone.
 * Every message reaches Kafka, none is lost, and the queue and the
 * subscription are empty at the end.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/msg.h"
#include "common/time.h"
#include "tests/proc/harness.h"
#include "tests/proc/moto.h"
#include "tests/tools/legacy.h"

#define SQS_N 400u  /* messages through the queue, n = 0..SQS_N-1 */
#define PS_N  3000u /* messages through the subscription, n = SQS_N.. */
#define ALL_N (SQS_N + PS_N)

/* The second instance: its own config, log, segment and control socket. */
static struct {
	char instance[80];
	char conf[160];
	pid_t pid;
	struct shm_segment *seg;
} B;

static void b_spawn(void)
{
	char log[160];

	snprintf(log, sizeof(log), "%s/ferryd-b.log", E.dir);
	B.pid = ferryd_spawn_at(B.conf, log, NULL, NULL);
}

static int b_running(void *unused)
{
	(void)unused;
	if (!B.seg && shm_segment_open(B.instance, SHM_RDONLY, &B.seg, NULL, 0) < 0)
		return 0;
	for (unsigned i = 0; i < B.seg->hdr->n_workers; i++) {
		const struct shm_worker *w = &B.seg->workers[i];

		if (w->pid <= 0 || w->state != SHM_SSTATE_UP || w->wstate < SHM_WSTATE_RUNNING)
			return 0;
	}
	return 1;
}

static uint64_t seg_acked(const struct shm_segment *seg)
{
	uint64_t sum = 0;

	for (unsigned i = 0; seg && i < seg->hdr->n_sources; i++)
		sum += load64(&shm_sources(seg)[i].acked);
	return sum;
}

static uint64_t seg_received(const struct shm_segment *seg)
{
	uint64_t sum = 0;

	for (unsigned i = 0; seg && i < seg->hdr->n_sources; i++)
		sum += load64(&shm_sources(seg)[i].received);
	return sum;
}

/* Both instances have acked at least *n between them. */
static int both_acked(void *n)
{
	return seg_acked(E.seg) + seg_acked(B.seg) >= *(uint64_t *)n;
}

static int scale_teardown(void **state)
{
	if (B.pid > 0) {
		kill(B.pid, SIGKILL);
		waitpid(B.pid, NULL, 0);
	}
	if (B.seg) {
		for (unsigned i = 0; i < B.seg->hdr->n_workers; i++)
			if (B.seg->workers[i].pid > 0)
				kill(B.seg->workers[i].pid, SIGKILL);
		shm_segment_close(B.seg);
	}
	if (B.instance[0])
		shm_segment_unlink(B.instance);
	memset(&B, 0, sizeof(B));
	return teardown(state);
}

static void test_two_instances(void **state)
{
	static unsigned counts[ALL_N];
	const char *topic = "projects/ferry-test/topics/legacy";
	const char *sub = "projects/ferry-test/subscriptions/legacy";
	char url[256], extra[1024], err[512] = "", *out;
	struct pubsub_request *rq = NULL;
	struct pubsub_emu *ps;
	struct aws_client *cl;
	struct moto *m;
	uint64_t half = ALL_N / 2, all = ALL_N, a_got, b_got, start = now_ns();
	unsigned dups = 0;
	int status;
	FILE *f;

	(void)state;
	alarm(600);
	memset(counts, 0, sizeof(counts));
	m = moto_start(&E.moto, NULL);
	setenv("AWS_ACCESS_KEY_ID", "ferrytest", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "ferrytestsecret", 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	cl = moto_client(m, "ferrytest", "ferrytestsecret");
	out = sqs(cl, "CreateQueue",
		  "{\"QueueName\":\"ferry-in\",\"Attributes\":{\"VisibilityTimeout\":\"30\"}}");
	free(out);
	snprintf(url, sizeof(url), "%s/123456789012/ferry-in", m->endpoint);
	ps = pubsub_emu_start(&E.pubsub, "ferry-test");
	pubsub_must(rq, pubsub_topic_create_new(ps->base, NULL, topic, &rq, err, sizeof(err)), err);
	pubsub_must(rq,
		    pubsub_subscription_create_new(ps->base, NULL, sub, topic, 10, 0, &rq, err,
						   sizeof(err)),
		    err);
	setenv("PUBSUB_EMULATOR_HOST", ps->host_port, 1);

	/* Instance a through the harness, b beside it: the same sources. */
	snprintf(extra, sizeof(extra),
		 "[sqs]\nqueue = %s\nregion = us-east-1\nendpoint = %s\nwait_time = 1s\n"
		 "[pubsub]\nsubscription = %s\nmax_messages = 50\n",
		 url, m->endpoint, sub);
	conf_write_sources(extra);
	snprintf(B.instance, sizeof(B.instance), "%s-b", E.instance);
	snprintf(B.conf, sizeof(B.conf), "%s/ferry-b.conf", E.dir);
	f = fopen(B.conf, "w");
	assert_non_null(f);
	fprintf(f,
		"[ferry]\ninstance = %s\nshards = 2\nring_size = 4M\nrestart_delay_min = 1s\n"
		"restart_delay_max = 1s\ncontrol_socket = %s/ctl-b.sock\n[ingest]\n"
		"max_inflight = 4096\n%s\n[kafka]\nbootstrap.servers = %s\n",
		B.instance, E.dir, extra, E.bootstrap);
	fclose(f);
	ferryd_start(NULL, NULL);
	b_spawn();
	assert_true(wait_until(b_running, NULL, 30000));

	/* Both are polling: now the messages come. */
	sqs_fill(cl, url, SQS_N);
	pubsub_fill(ps, topic, SQS_N, PS_N);

	/* Half way, b is stopped (scale-in); a finishes alone. */
	assert_true(wait_until(both_acked, &half, 120000));
	b_got = seg_received(B.seg);
	kill(B.pid, SIGTERM);
	assert_int_equal(waitpid(B.pid, &status, 0), B.pid);
	B.pid = 0;
	{
		char log[160];

		snprintf(log, sizeof(log), "%s/ferryd-b.log", E.dir);
		check_log_clean_at(log);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("instance b ended with status 0x%x (log: %s/ferryd-b.log)", status, E.dir);
	b_got = seg_received(B.seg) > b_got ? seg_received(B.seg) : b_got;
	/*
	 * b's segment is gone with b, but the mapping stays readable: what it
	 * acked counts towards the total.
	 */
	{
		uint64_t end = now_ns() + 180000000000ull;

		while (!(both_acked(&all) && queue_depth(cl, url) == 0 &&
			 pubsub_left(ps, sub) == 0)) {
			if (now_ns() > end)
				fail_msg("sources not drained: %" PRIu64
					 " of %u acked (logs in %s)",
					 seg_acked(E.seg) + seg_acked(B.seg), ALL_N, E.dir);
			sleep_ms(250);
		}
	}
	a_got = seg_received(E.seg);
	dump_n(ROOM_TOPIC, counts, ALL_N);
	for (unsigned i = 0; i < ALL_N; i++) {
		if (!counts[i])
			fail_msg("message %u never reached Kafka (logs in %s)", i, E.dir);
		dups += counts[i] - 1;
	}
	/* Both took part: the sources were shared, not drained by one. */
	if (!a_got || !b_got)
		fail_msg("one instance did nothing: a received %" PRIu64 ", b %" PRIu64, a_got,
			 b_got);
	printf("# two instances, one queue and one subscription: %u messages into Kafka in "
	       "%.1f s, a received %" PRIu64 ", b %" PRIu64
	       " (b stopped half way), %u duplicates; queue and subscription empty\n",
	       ALL_N, (double)(now_ns() - start) / 1e9, a_got, b_got, dups);
	ferryd_stop();
	aws_client_free(cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_two_instances, setup, scale_teardown),
	};

	return harness_run("test-scale", tests, sizeof(tests) / sizeof(tests[0]));
}
