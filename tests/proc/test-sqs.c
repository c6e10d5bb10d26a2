/* SPDX-License-Identifier: MIT */
/*
 * Process test of common/sqs against a real moto_server (started here on a
 * free loopback port, killed in teardown), every call signed by common/aws
 * and checked by moto (INITIAL_NO_AUTH_ACTION_COUNT: the first calls make an
 * IAM user allowed sqs:* and its access key, then signatures are enforced).
 * A standard and a FIFO queue: SendMessage with attributes, ReceiveMessage
 * with sqs_receive_request() parsed by sqs_receive_parse(), a
 * ChangeMessageVisibilityBatch with one good and one bogus receipt (partial
 * failure reported; the good one comes back at once), DeleteMessageBatch,
 * and both queues empty afterwards. A wrong secret gets -EACCES.
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

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "common/aws.h"
#include "common/sqs.h"
#include "tests/proc/moto.h"

/* Unchecked requests: CreateUser, PutUserPolicy, CreateAccessKey. */
#define NO_AUTH_COUNT "3"

static int setup(void **state)
{
	alarm(120); /* a hang fails the test instead of blocking it */
	*state = NULL;
	return 0;
}

static int teardown(void **state)
{
	moto_stop(*state);
	alarm(0);
	return 0;
}

/* One SQS call that must succeed; the response body (malloc'd). */
static char *call(struct aws_client *cl, const char *action, const char *body)
{
	char target[64], err[512] = "", *resp = NULL;
	long status = 0;
	int ret;

	snprintf(target, sizeof(target), "AmazonSQS.%s", action);
	ret = aws_json_call(cl, "sqs", target, body, &resp, &status, err, sizeof(err));
	if (ret)
		fail_msg("%s: %d %s", action, ret, err);
	assert_int_equal(status, 200);
	assert_non_null(resp);
	return resp;
}

static char *create_queue(struct aws_client *cl, const char *body)
{
	char *resp = call(cl, "CreateQueue", body), *url;
	cJSON *j = cJSON_Parse(resp);
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "QueueUrl");

	assert_true(cJSON_IsString(u));
	url = strdup(u->valuestring);
	cJSON_Delete(j);
	free(resp);
	return url;
}

static void send_message(struct aws_client *cl, const char *url, const char *body,
			 const char *group, const char *tenant)
{
	cJSON *j = cJSON_CreateObject(), *ma = NULL, *a;
	char *text, *resp;

	cJSON_AddStringToObject(j, "QueueUrl", url);
	cJSON_AddStringToObject(j, "MessageBody", body);
	if (group)
		cJSON_AddStringToObject(j, "MessageGroupId", group);
	if (tenant) {
		ma = cJSON_AddObjectToObject(j, "MessageAttributes");
		a = cJSON_AddObjectToObject(ma, "tenant");
		cJSON_AddStringToObject(a, "DataType", "String");
		cJSON_AddStringToObject(a, "StringValue", tenant);
		a = cJSON_AddObjectToObject(ma, "kv");
		cJSON_AddStringToObject(a, "DataType", "Number");
		cJSON_AddStringToObject(a, "StringValue", "2");
		a = cJSON_AddObjectToObject(ma, "blob");
		cJSON_AddStringToObject(a, "DataType", "Binary");
		cJSON_AddStringToObject(a, "BinaryValue", "AAECAw==");
	}
	text = cJSON_PrintUnformatted(j);
	resp = call(cl, "SendMessage", text);
	assert_non_null(strstr(resp, "MessageId"));
	free(resp);
	free(text);
	cJSON_Delete(j);
}

static struct sqs_queue_attrs queue_attrs(struct aws_client *cl, const char *url)
{
	struct sqs_queue_attrs a;
	char err[256] = "", *body = NULL, *resp;

	assert_true(sqs_queue_attrs_request(url, &body, err, sizeof(err)) > 0);
	resp = call(cl, "GetQueueAttributes", body);
	if (sqs_queue_attrs_parse(resp, strlen(resp), &a, err, sizeof(err)))
		fail_msg("%s", err);
	free(resp);
	free(body);
	return a;
}

/* ApproximateNumberOfMessages + ...NotVisible + ...Delayed of a queue. */
static long queue_depth(struct aws_client *cl, const char *url)
{
	static const char *const names[] = {"ApproximateNumberOfMessages",
					    "ApproximateNumberOfMessagesNotVisible",
					    "ApproximateNumberOfMessagesDelayed"};
	cJSON *j = cJSON_CreateObject(), *r;
	char *text, *resp;
	long sum = 0;

	cJSON_AddStringToObject(j, "QueueUrl", url);
	cJSON_AddItemToObject(j, "AttributeNames", cJSON_CreateStringArray(names, 3));
	text = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	resp = call(cl, "GetQueueAttributes", text);
	r = cJSON_Parse(resp);
	for (int i = 0; i < 3; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(r, "Attributes"), names[i]);

		assert_true(cJSON_IsString(v));
		sum += strtol(v->valuestring, NULL, 10);
	}
	cJSON_Delete(r);
	free(resp);
	free(text);
	return sum;
}

/*
 * Receive until want messages came (each at most once, by MessageId), or 15
 * s passed. Each message parsed is copied into got (ids, receipts, bodies).
 */
struct got {
	unsigned n;
	char id[SQS_BATCH_MAX][64], receipt[SQS_BATCH_MAX][SQS_RECEIPT_MAX + 1];
	char body[SQS_BATCH_MAX][64], group[SQS_BATCH_MAX][32], tenant[SQS_BATCH_MAX][32];
	char blob[SQS_BATCH_MAX][32], kv[SQS_BATCH_MAX][8];
	uint32_t receive_count[SQS_BATCH_MAX];
};

static void copy_view(char *dst, size_t cap, struct msg_bytes b)
{
	assert_true(b.len < cap);
	if (b.len)
		memcpy(dst, b.p, b.len);
	dst[b.len] = 0;
}

static void copy_attr(char *dst, size_t cap, const struct sqs_message *m, const char *key)
{
	struct msg_bytes v = {"", 0};

	assert_true(msg_kv_find(m->attrs, key, &v) >= 0);
	copy_view(dst, cap, v);
}

static void receive_all(struct aws_client *cl, const char *url, unsigned want, struct got *g)
{
	time_t deadline = time(NULL) + 15;
	char err[256] = "", *body = NULL;

	memset(g, 0, sizeof(*g));
	assert_true(sqs_receive_request(url, SQS_BATCH_MAX, 1, 60, &body, err, sizeof(err)) > 0);
	while (g->n < want) {
		struct sqs_receive r;
		char *resp;
		int n;

		if (time(NULL) > deadline)
			fail_msg("received %u of %u messages from %s", g->n, want, url);
		resp = call(cl, "ReceiveMessage", body);
		n = sqs_receive_parse(resp, strlen(resp), &r, err, sizeof(err));
		if (n < 0)
			fail_msg("%s: %s", err, resp);
		for (int i = 0; i < n; i++) {
			const struct sqs_message *m = &r.msgs[i];

			if (m->error)
				fail_msg("message %d: %s", i, m->error);
			assert_true(g->n < SQS_BATCH_MAX);
			assert_int_equal(m->sns, 0);
			assert_true(m->sent_timestamp_ms > 1600000000000ull);
			copy_view(g->id[g->n], sizeof(g->id[0]), m->message_id);
			copy_view(g->receipt[g->n], sizeof(g->receipt[0]), m->receipt_handle);
			copy_view(g->body[g->n], sizeof(g->body[0]), m->body);
			copy_view(g->group[g->n], sizeof(g->group[0]), m->group_id);
			copy_attr(g->tenant[g->n], sizeof(g->tenant[0]), m, "tenant");
			copy_attr(g->blob[g->n], sizeof(g->blob[0]), m, "blob");
			copy_attr(g->kv[g->n], sizeof(g->kv[0]), m, "kv");
			if (m->group_id.len) { /* the added attribute says the same */
				char ga[32];

				copy_attr(ga, sizeof(ga), m, SQS_ATTR_GROUP_ID);
				assert_string_equal(ga, g->group[g->n]);
			}
			g->receive_count[g->n] = m->receive_count;
			for (unsigned k = 0; k < g->n; k++)
				assert_string_not_equal(g->id[k], g->id[g->n]);
			g->n++;
		}
		sqs_receive_free(&r);
		free(resp);
	}
	free(body);
}

/* A batch call: its request from sqs_*_batch_request(), its answer from sqs_batch_parse(). */
static void batch(struct aws_client *cl, const char *url, int visibility,
		  const struct sqs_batch_entry *e, unsigned n, struct sqs_batch_result *ret)
{
	char err[256] = "", *body = NULL, *resp;

	assert_true((visibility
			     ? sqs_visibility_batch_request(url, e, n, &body, err, sizeof(err))
			     : sqs_delete_batch_request(url, e, n, &body, err, sizeof(err))) > 0);
	resp = call(cl, visibility ? "ChangeMessageVisibilityBatch" : "DeleteMessageBatch", body);
	if (sqs_batch_parse(resp, strlen(resp), n, ret, err, sizeof(err)))
		fail_msg("%s: %s", err, resp);
	free(resp);
	free(body);
}

static int find_body(const struct got *g, const char *body)
{
	for (unsigned i = 0; i < g->n; i++)
		if (!strcmp(g->body[i], body))
			return (int)i;
	fail_msg("no message \"%s\" received", body);
	return -1;
}

static void test_sqs_moto(void **state)
{
	struct moto *m = moto_start(state, NO_AUTH_COUNT);
	char akid[128], secret[128], err[512] = "", *std, *fifo, *resp = NULL, *body = NULL;
	struct sqs_batch_entry e[SQS_BATCH_MAX];
	struct sqs_batch_result br;
	struct sqs_queue_attrs qa;
	struct aws_client *cl;
	struct got g;
	long status = 0;
	int i0;

	moto_user(m, "sqs", akid, sizeof(akid), secret, sizeof(secret));
	cl = moto_client(m, akid, secret);

	std = create_queue(cl, "{\"QueueName\":\"ferry-in\","
			       "\"Attributes\":{\"VisibilityTimeout\":\"45\"}}");
	fifo = create_queue(cl, "{\"QueueName\":\"ferry-in.fifo\",\"Attributes\":{"
				"\"FifoQueue\":\"true\",\"ContentBasedDeduplication\":\"true\"}}");
	qa = queue_attrs(cl, std);
	assert_int_equal(qa.visibility_s, 45);
	assert_int_equal(qa.fifo, 0);
	qa = queue_attrs(cl, fifo);
	assert_int_equal(qa.visibility_s, 30);
	assert_int_equal(qa.fifo, 1);

	/* Standard queue: three messages with String, Number and Binary attributes. */
	send_message(cl, std, "one \"quoted\"", NULL, "t1");
	send_message(cl, std, "two\nlines", NULL, "t2");
	send_message(cl, std, "three \xe2\x82\xac", NULL, "t3");
	receive_all(cl, std, 3, &g);
	assert_string_equal(g.tenant[find_body(&g, "one \"quoted\"")], "t1");
	assert_string_equal(g.tenant[find_body(&g, "two\nlines")], "t2");
	assert_string_equal(g.tenant[find_body(&g, "three \xe2\x82\xac")], "t3");
	for (unsigned i = 0; i < g.n; i++) {
		assert_string_equal(g.blob[i], "AAECAw=="); /* Binary: the base64 text */
		assert_string_equal(g.kv[i], "2");
		assert_string_equal(g.group[i], "");
		assert_int_equal(g.receive_count[i], 1);
	}

	/* Visibility 0 for one real receipt and one bogus: a partial failure. */
	i0 = find_body(&g, "one \"quoted\"");
	e[0] = (struct sqs_batch_entry){g.receipt[i0], (uint32_t)strlen(g.receipt[i0]), 0};
	e[1] = (struct sqs_batch_entry){"bogus", 5, 0};
	batch(cl, std, 1, e, 2, &br);
	assert_int_equal(br.ok, 1);
	assert_int_equal(br.failed, 1);
	assert_int_equal(br.e[0].state, SQS_ENTRY_OK);
	assert_int_equal(br.e[1].state, SQS_ENTRY_FAILED);
	assert_int_equal(br.e[1].sender_fault, 1);
	assert_string_equal(br.e[1].code, "ReceiptHandleIsInvalid");

	/* It worked: that message is visible again, received a second time. */
	{
		struct got again;

		receive_all(cl, std, 1, &again);
		assert_string_equal(again.body[0], "one \"quoted\"");
		assert_string_equal(again.id[0], g.id[i0]);
		assert_int_equal(again.receive_count[0], 2);
		snprintf(g.receipt[i0], sizeof(g.receipt[i0]), "%s", again.receipt[0]);
	}

	/* Delete all three in one batch; the queue is empty then. */
	for (unsigned i = 0; i < g.n; i++)
		e[i] = (struct sqs_batch_entry){g.receipt[i], (uint32_t)strlen(g.receipt[i]), 0};
	batch(cl, std, 0, e, g.n, &br);
	assert_int_equal(br.ok, 3);
	assert_int_equal(br.failed + br.missing, 0);
	assert_int_equal(queue_depth(cl, std), 0);

	/* FIFO: group ids come through, as a field and as sqs.MessageGroupId. */
	send_message(cl, fifo, "f1", "g1", "t1");
	send_message(cl, fifo, "f2", "g2", "t2");
	receive_all(cl, fifo, 2, &g);
	assert_string_equal(g.group[find_body(&g, "f1")], "g1");
	assert_string_equal(g.group[find_body(&g, "f2")], "g2");
	for (unsigned i = 0; i < g.n; i++)
		e[i] = (struct sqs_batch_entry){g.receipt[i], (uint32_t)strlen(g.receipt[i]), 0};
	e[2] = (struct sqs_batch_entry){"bogus", 5, 0};
	batch(cl, fifo, 0, e, 3, &br);
	assert_int_equal(br.ok, 2);
	assert_int_equal(br.e[2].state, SQS_ENTRY_FAILED);
	assert_int_equal(br.e[2].sender_fault, 1);
	assert_int_equal(queue_depth(cl, fifo), 0);
	aws_client_free(cl);

	/* Signatures are checked: a wrong secret is refused. */
	secret[0] = secret[0] == 'A' ? 'B' : 'A';
	cl = moto_client(m, akid, secret);
	assert_true(sqs_receive_request(std, 1, 0, 0, &body, err, sizeof(err)) > 0);
	assert_int_equal(aws_json_call(cl, "sqs", "AmazonSQS.ReceiveMessage", body, &resp, &status,
				       err, sizeof(err)),
			 -EACCES);
	assert_null(resp);
	assert_int_equal(status, 403);
	assert_null(strstr(err, secret));
	free(body);
	aws_client_free(cl);
	free(std);
	free(fifo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sqs_moto, setup, teardown),
	};
	int ret;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return ret;
}
