/* SPDX-License-Identifier: MIT */
/*
 * common/pubsub and common/gcp against the real Pub/Sub emulator: a topic,
 * a plain and an ordered subscription (ack deadline 10 s), 100 messages
 * published with attributes and ordering keys and pulled from both (in
 * order per key from the ordered one), 10 handed back (modifyAckDeadline 0)
 * and redelivered at once, all acknowledged, and nothing more on either for
 * longer than the ack deadline; a pull on a missing subscription.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "common/gcp.h"
#include "common/msg.h"
#include "common/pubsub.h"
#include "tests/proc/pubsub-emu.h"

#define PROJECT	    "ferry-test"
#define TOPIC	    "projects/" PROJECT "/topics/ferry-orders"
#define SUB	    "projects/" PROJECT "/subscriptions/ferry-orders-eu"
#define SUB_ORDERED "projects/" PROJECT "/subscriptions/ferry-orders-ordered"
#define N	    100
#define DEADLINE    10 /* the subscription's ack deadline, seconds */

/* What one subscription delivered. */
struct sub {
	const char *name;
	int ordered;
	char ack[N][PUBSUB_ACK_ID_MAX + 1]; /* latest ack id per message index */
	int seen[N];			    /* deliveries per message index */
	int last[7];			    /* ordered: the last index seen per ordering key */
};

struct ctx {
	struct pubsub_emu *emu;
	struct gcp_auth *auth;
	CURL *easy;
	const char *base;
	struct sub plain, ordered;
};

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	if (!c)
		return 0;
	pubsub_emu_stop(c->emu);
	gcp_auth_free(c->auth);
	if (c->easy)
		curl_easy_cleanup(c->easy);
	free(c);
	unsetenv("PUBSUB_EMULATOR_HOST");
	return 0;
}

/* Send rq (freed here) on the blocking handle; returns pubsub_call()'s result. */
static int call(struct ctx *c, struct pubsub_request *rq, char **body, size_t *len, char *err,
		size_t errlen)
{
	char hdr[GCP_AUTH_HEADER_MAX];
	int r;

	/* The emulator wants no Authorization: the header is "". */
	assert_int_equal(gcp_auth_header(c->auth, hdr, sizeof(hdr), err, errlen), 0);
	assert_string_equal(hdr, "");
	r = pubsub_call(rq, c->easy, body, len, NULL, err, errlen);
	pubsub_request_free(rq);
	return r;
}

static void must(int r, const char *err)
{
	if (r < 0)
		fail_msg("%s (%d)", err, r);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	alarm(300); /* a hang fails the test instead of blocking it */
	if (!c)
		return -1;
	*state = c;
	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	c->easy = curl_easy_init();
	return c->easy ? 0 : -1;
}

/* In the test, not in setup: a failed start still gets its teardown. */
static void start(struct ctx *c)
{
	char err[256];

	pubsub_emu_start((void **)&c->emu, PROJECT);
	/* Found the way ingest finds it: through the environment. */
	setenv("PUBSUB_EMULATOR_HOST", c->emu->host_port, 1);
	must(gcp_auth_new(NULL, &c->auth, err, sizeof(err)), err);
	c->base = gcp_auth_base_url(c->auth);
	assert_string_equal(c->base, c->emu->base);
}

/* Pull (returning at once) and record what came; returns the number of messages. */
static size_t pull_once(struct ctx *c, struct sub *sb, int *ret_fresh)
{
	struct pubsub_request *rq;
	struct pubsub_pull *p;
	char err[256], *body;
	size_t len, n;
	double now = (double)time(NULL);

	must(pubsub_pull_new(c->base, NULL, sb->name, 1000, PUBSUB_PULL_RETURN_IMMEDIATELY, &rq,
			     err, sizeof(err)),
	     err);
	must(call(c, rq, &body, &len, err, sizeof(err)), err);
	must(pubsub_pull_parse(body, len, &p, err, sizeof(err)), err);
	free(body);
	*ret_fresh = 0;
	for (size_t i = 0; i < p->count; i++) {
		const struct pubsub_message *m = &p->msgs[i];
		struct msg_bytes seq, tenant;
		char want[64], key[16];
		int k;

		if (m->error)
			fail_msg("message %s: %s", (const char *)m->message_id.p, m->error);
		assert_int_equal(msg_kv_find(m->attrs, "seq", &seq), 1);
		k = 0;
		for (uint32_t d = 0; d < seq.len; d++) {
			assert_true(((const char *)seq.p)[d] >= '0' &&
				    ((const char *)seq.p)[d] <= '9');
			k = k * 10 + ((const char *)seq.p)[d] - '0';
		}
		assert_true(seq.len > 0 && seq.len < 4 && k < N);
		snprintf(want, sizeof(want), "%d", k);
		assert_int_equal(seq.len, strlen(want));
		assert_memory_equal(seq.p, want, seq.len);
		snprintf(want, sizeof(want), "tenant-%d", k % 5);
		assert_int_equal(msg_kv_find(m->attrs, "tenant", &tenant), 1);
		assert_int_equal(tenant.len, strlen(want));
		assert_memory_equal(tenant.p, want, tenant.len);
		snprintf(want, sizeof(want), "event %d \x01\xff", k);
		assert_int_equal(m->data.len, strlen(want));
		assert_memory_equal(m->data.p, want, m->data.len);
		snprintf(key, sizeof(key), "key-%d", k % 7);
		assert_string_equal(m->ordering_key.p, key);
		assert_true(m->message_id.len > 0);
		assert_true(m->publish_ns / 1000000000ull + 120 > (uint64_t)now &&
			    m->publish_ns / 1000000000ull < (uint64_t)now + 120);
		assert_true(m->ack_id.len > 0 && m->ack_id.len <= PUBSUB_ACK_ID_MAX);
		memcpy(sb->ack[k], m->ack_id.p, m->ack_id.len + 1);
		if (sb->ordered && !sb->seen[k]) {
			/* In publish order within a key (redeliveries aside). */
			if (sb->last[k % 7] >= k)
				fail_msg("%s: message %d after %d of %s", sb->name, k,
					 sb->last[k % 7], key);
			sb->last[k % 7] = k;
		}
		if (!sb->seen[k]++)
			(*ret_fresh)++;
	}
	n = p->count;
	pubsub_pull_free(p);
	return n;
}

/* Ack (deadline < 0) or modifyAckDeadline the latest ack ids of idx[], in requests of at most limit
 * bytes. */
static size_t send_ids(struct ctx *c, struct sub *sb, const int *idx, size_t n, int deadline,
		       size_t limit)
{
	struct msg_bytes ids[N];
	size_t done = 0, requests = 0;
	char err[256], *body;

	for (size_t i = 0; i < n; i++)
		ids[i] = (struct msg_bytes){sb->ack[idx[i]], (uint32_t)strlen(sb->ack[idx[i]])};
	while (done < n) {
		struct pubsub_request *rq;
		int took = deadline < 0 ? pubsub_ack_new(c->base, NULL, sb->name, ids + done,
							 n - done, limit, &rq, err, sizeof(err))
					: pubsub_modack_new(c->base, NULL, sb->name,
							    (unsigned)deadline, ids + done,
							    n - done, limit, &rq, err, sizeof(err));

		must(took, err);
		must(call(c, rq, &body, NULL, err, sizeof(err)), err);
		free(body);
		done += (size_t)took;
		requests++;
	}
	return requests;
}

static void create_sub(struct ctx *c, struct sub *sb)
{
	struct pubsub_request *rq;
	char err[256], *body;

	must(pubsub_subscription_create_new(c->base, NULL, sb->name, TOPIC, DEADLINE, sb->ordered,
					    &rq, err, sizeof(err)),
	     err);
	must(call(c, rq, &body, NULL, err, sizeof(err)), err);
	assert_non_null(strstr(body, "\"ackDeadlineSeconds\": 10"));
	assert_true(!strstr(body, "\"enableMessageOrdering\": true") == !sb->ordered);
	free(body);
	for (int k = 0; k < 7; k++)
		sb->last[k] = -1;
}

/* Pull (bounded) until every message came once; returns how many pulls it took. */
static int pull_all(struct ctx *c, struct sub *sb)
{
	double deadline = mono_s() + 60;
	size_t total = 0;
	int fresh, pulls = 0;

	while (total < N && mono_s() < deadline) {
		pull_once(c, sb, &fresh);
		total += (size_t)fresh;
		pulls++;
	}
	assert_int_equal(total, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(sb->seen[i], 1);
	return pulls;
}

static void test_emulator_roundtrip(void **state)
{
	struct ctx *c = *state;
	struct pubsub_request *rq;
	char err[256], *body;
	double t0 = mono_s(), t, deadline;
	int fresh, idx[N];

	c->plain.name = SUB;
	c->ordered.name = SUB_ORDERED;
	c->ordered.ordered = 1;
	start(c);
	print_message("emulator answering after %.1f s\n", mono_s() - t0);

	/* Topic (twice: the second is -EEXIST) and two subscriptions. */
	assert_int_equal(gcp_auth_kind(c->auth), GCP_AUTH_EMULATOR);
	must(pubsub_topic_create_new(c->base, NULL, TOPIC, &rq, err, sizeof(err)), err);
	must(call(c, rq, &body, NULL, err, sizeof(err)), err);
	free(body);
	must(pubsub_topic_create_new(c->base, NULL, TOPIC, &rq, err, sizeof(err)), err);
	assert_int_equal(call(c, rq, &body, NULL, err, sizeof(err)), -EEXIST);
	assert_string_equal(err, "pubsub: Topic already exists (HTTP 409)");
	create_sub(c, &c->plain);
	create_sub(c, &c->ordered);

	/* 100 messages in 4 publishes of 25. */
	for (int b = 0; b < 4; b++) {
		static unsigned char attrs[25][128];
		static char data[25][64], key[25][16];
		struct pubsub_out_msg m[25];

		for (int i = 0; i < 25; i++) {
			int k = b * 25 + i;
			char v[16];
			size_t pos = 0;

			snprintf(data[i], sizeof(data[i]), "event %d \x01\xff", k);
			snprintf(key[i], sizeof(key[i]), "key-%d", k % 7);
			snprintf(v, sizeof(v), "%d", k);
			must(msg_kv_put(attrs[i], sizeof(attrs[i]), &pos, "seq", 3, v,
					(uint32_t)strlen(v)),
			     "attrs");
			snprintf(v, sizeof(v), "tenant-%d", k % 5);
			must(msg_kv_put(attrs[i], sizeof(attrs[i]), &pos, "tenant", 6, v,
					(uint32_t)strlen(v)),
			     "attrs");
			m[i] = (struct pubsub_out_msg){{data[i], (uint32_t)strlen(data[i])},
						       {attrs[i], (uint32_t)pos},
						       {key[i], (uint32_t)strlen(key[i])}};
		}
		must(pubsub_publish_new(c->base, NULL, TOPIC, m, 25, &rq, err, sizeof(err)), err);
		must(call(c, rq, &body, NULL, err, sizeof(err)), err);
		assert_non_null(strstr(body, "messageIds"));
		free(body);
	}

	/* The ordered subscription: all 100, in order per key, acknowledged. */
	print_message("ordered: 100 pulled in %d pulls at %.1f s\n", pull_all(c, &c->ordered),
		      mono_s() - t0);
	for (int i = 0; i < N; i++)
		idx[i] = i;
	send_ids(c, &c->ordered, idx, N, -1, 0);

	/* The plain one: all 100. */
	print_message("plain: 100 pulled in %d pulls at %.1f s\n", pull_all(c, &c->plain),
		      mono_s() - t0);

	/*
	 * Hand 10 back (deadline 0, in requests of 150 bytes: the splitter's
	 * loop): they come again, well before the 10 s deadline would have
	 * brought them back anyway.
	 */
	for (int i = 0; i < 10; i++)
		idx[i] = i * 9;
	assert_true(send_ids(c, &c->plain, idx, 10, 0, 150) >= 5);
	t = mono_s();
	deadline = t + DEADLINE - 3;
	for (;;) {
		int back = 0;

		for (int i = 0; i < 10; i++)
			back += c->plain.seen[idx[i]] >= 2;
		if (back == 10)
			break;
		if (mono_s() > deadline)
			fail_msg("only %d of 10 handed-back messages came again within %d s", back,
				 DEADLINE - 3);
		pull_once(c, &c->plain, &fresh);
		assert_int_equal(fresh, 0); /* only what was seen before */
	}
	print_message("10 handed back and redelivered in %.2f s\n", mono_s() - t);

	/* Acknowledge every message by its latest ack id, in requests under 2 KiB. */
	for (int i = 0; i < N; i++)
		idx[i] = i;
	assert_true(send_ids(c, &c->plain, idx, N, -1, 2048) >= 3);
	/* Nothing comes back on either for longer than the ack deadline. */
	deadline = mono_s() + DEADLINE + 2;
	while (mono_s() < deadline) {
		struct timespec ts = {0, 250 * 1000 * 1000};

		assert_int_equal(pull_once(c, &c->plain, &fresh), 0);
		assert_int_equal(pull_once(c, &c->ordered, &fresh), 0);
		nanosleep(&ts, NULL); /* pacing the polls, not synchronising */
	}

	/* A missing subscription. */
	must(pubsub_pull_new(c->base, NULL, "projects/" PROJECT "/subscriptions/no-such-sub", 10,
			     PUBSUB_PULL_RETURN_IMMEDIATELY, &rq, err, sizeof(err)),
	     err);
	assert_int_equal(call(c, rq, &body, NULL, err, sizeof(err)), -ENOENT);
	assert_null(body);
	assert_string_equal(err, "pubsub: Subscription does not exist (HTTP 404)");
	print_message("done at %.1f s\n", mono_s() - t0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_emulator_roundtrip, setup, teardown),
	};
	int r;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return r;
}
