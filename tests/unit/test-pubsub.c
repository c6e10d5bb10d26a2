/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of common/pubsub: every request body parses back to what went
 * in; pull responses, realistic and broken message by message; ack ids split
 * under the request limit; HTTP outcomes mapped to errors (a loopback HTTP
 * server thread in this test answers what each case needs).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "common/msg.h"
#include "common/pubsub.h"

#define BASE "https://pubsub.googleapis.com"
#define AUTH "Authorization: Bearer tok"
#define SUB  "projects/ferry-test/subscriptions/orders-eu"
#define TOP  "projects/ferry-test/topics/orders"

static int setup(void **state)
{
	(void)state;
	alarm(60); /* a hang fails the test instead of blocking it */
	return 0;
}

static cJSON *body_json(const struct pubsub_request *rq)
{
	size_t len;
	const char *b = pubsub_request_body(rq, &len);
	cJSON *j;

	assert_non_null(b);
	assert_int_equal(strlen(b), len);
	j = cJSON_ParseWithLength(b, len);
	assert_non_null(j);
	return j;
}

static const cJSON *item(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	assert_non_null(v);
	return v;
}

static void test_requests(void **state)
{
	struct pubsub_request *rq;
	char err[256];
	cJSON *j;

	(void)state;
	/* pull */
	assert_int_equal(pubsub_pull_new(BASE "/", AUTH, SUB, 100, 0, &rq, err, sizeof(err)), 0);
	assert_string_equal(pubsub_request_method(rq), "POST");
	assert_string_equal(pubsub_request_url(rq), BASE "/v1/" SUB ":pull");
	j = body_json(rq);
	assert_int_equal(item(j, "maxMessages")->valueint, 100);
	assert_null(cJSON_GetObjectItem(j, "returnImmediately"));
	cJSON_Delete(j);
	pubsub_request_free(rq);
	assert_int_equal(pubsub_pull_new(BASE, NULL, SUB, 1, PUBSUB_PULL_RETURN_IMMEDIATELY, &rq,
					 err, sizeof(err)),
			 0);
	j = body_json(rq);
	assert_true(cJSON_IsTrue(item(j, "returnImmediately")));
	cJSON_Delete(j);
	pubsub_request_free(rq);
	assert_int_equal(pubsub_pull_new(BASE, NULL, SUB, 0, 0, &rq, err, sizeof(err)), -EINVAL);
	assert_int_equal(pubsub_pull_new(BASE, NULL, SUB, 1001, 0, &rq, err, sizeof(err)), -EINVAL);
	assert_int_equal(pubsub_pull_new(BASE, NULL, SUB, 1, 0x8, &rq, err, sizeof(err)), -EINVAL);
	/* names: full names only, nothing that would change the URL or the header */
	static const char *const bad_subs[] = {
		"orders-eu",
		"projects//subscriptions/s",
		"projects/p/subscriptions/",
		"projects/p/topics/t",
		"projects/p/subscriptions/s/x",
		"projects/p/subscriptions/s t",
		"projects/p/subscriptions/s\r\nX: y",
	};
	for (size_t i = 0; i < sizeof(bad_subs) / sizeof(bad_subs[0]); i++)
		assert_int_equal(
			pubsub_pull_new(BASE, NULL, bad_subs[i], 1, 0, &rq, err, sizeof(err)),
			-EINVAL);
	assert_int_equal(pubsub_pull_new("ftp://x", NULL, SUB, 1, 0, &rq, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(pubsub_pull_new(BASE, "Authorization: x\r\nEvil: 1", SUB, 1, 0, &rq, err,
					 sizeof(err)),
			 -EINVAL);
	/* A name with characters outside the unreserved set is %-encoded in the URL. */
	assert_int_equal(pubsub_pull_new(BASE, NULL, "projects/example.com:p/subscriptions/a+b%c",
					 1, 0, &rq, err, sizeof(err)),
			 0);
	assert_string_equal(pubsub_request_url(rq),
			    BASE "/v1/projects/example.com%3Ap/subscriptions/a%2Bb%25c:pull");
	pubsub_request_free(rq);

	/* topic and subscription */
	assert_int_equal(pubsub_topic_create_new(BASE, AUTH, TOP, &rq, err, sizeof(err)), 0);
	assert_string_equal(pubsub_request_method(rq), "PUT");
	assert_string_equal(pubsub_request_url(rq), BASE "/v1/" TOP);
	j = body_json(rq);
	assert_true(cJSON_IsObject(j) && !j->child);
	cJSON_Delete(j);
	pubsub_request_free(rq);
	assert_int_equal(pubsub_topic_create_new(BASE, AUTH, SUB, &rq, err, sizeof(err)), -EINVAL);
	assert_int_equal(
		pubsub_subscription_create_new(BASE, AUTH, SUB, TOP, 30, 1, &rq, err, sizeof(err)),
		0);
	assert_string_equal(pubsub_request_method(rq), "PUT");
	assert_string_equal(pubsub_request_url(rq), BASE "/v1/" SUB);
	j = body_json(rq);
	assert_string_equal(item(j, "topic")->valuestring, TOP);
	assert_int_equal(item(j, "ackDeadlineSeconds")->valueint, 30);
	assert_true(cJSON_IsTrue(item(j, "enableMessageOrdering")));
	cJSON_Delete(j);
	pubsub_request_free(rq);
	assert_int_equal(
		pubsub_subscription_create_new(BASE, AUTH, SUB, TOP, 0, 0, &rq, err, sizeof(err)),
		0);
	j = body_json(rq);
	assert_null(cJSON_GetObjectItem(j, "ackDeadlineSeconds"));
	assert_true(cJSON_IsFalse(item(j, "enableMessageOrdering")));
	cJSON_Delete(j);
	pubsub_request_free(rq);
	assert_int_equal(
		pubsub_subscription_create_new(BASE, AUTH, SUB, TOP, 5, 0, &rq, err, sizeof(err)),
		-EINVAL);
	assert_int_equal(
		pubsub_subscription_create_new(BASE, AUTH, SUB, TOP, 601, 0, &rq, err, sizeof(err)),
		-EINVAL);

	/* modifyAckDeadline: the deadline, and its bounds */
	struct msg_bytes ids[2] = {{"a1", 2}, {"a\"2\\", 4}};

	assert_int_equal(pubsub_modack_new(BASE, AUTH, SUB, 0, ids, 2, 0, &rq, err, sizeof(err)),
			 2);
	assert_string_equal(pubsub_request_url(rq), BASE "/v1/" SUB ":modifyAckDeadline");
	j = body_json(rq);
	assert_int_equal(item(j, "ackDeadlineSeconds")->valueint, 0);
	assert_true(cJSON_IsNumber(item(j, "ackDeadlineSeconds")));
	assert_int_equal(cJSON_GetArraySize(item(j, "ackIds")), 2);
	assert_string_equal(cJSON_GetArrayItem(item(j, "ackIds"), 1)->valuestring, "a\"2\\");
	cJSON_Delete(j);
	pubsub_request_free(rq);
	assert_int_equal(pubsub_modack_new(BASE, AUTH, SUB, 601, ids, 2, 0, &rq, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(pubsub_ack_new(BASE, AUTH, SUB, ids, 2, 0, &rq, err, sizeof(err)), 2);
	assert_string_equal(pubsub_request_url(rq), BASE "/v1/" SUB ":acknowledge");
	j = body_json(rq);
	assert_string_equal(cJSON_GetArrayItem(item(j, "ackIds"), 0)->valuestring, "a1");
	assert_null(cJSON_GetObjectItem(j, "ackDeadlineSeconds"));
	cJSON_Delete(j);
	pubsub_request_free(rq);
}

static void test_publish(void **state)
{
	unsigned char bin[256], attrs[512];
	struct pubsub_out_msg m[3] = {0};
	struct pubsub_request *rq;
	size_t pos = 0;
	char err[256];
	const cJSON *msgs, *one;
	cJSON *j;

	(void)state;
	for (int i = 0; i < 256; i++)
		bin[i] = (unsigned char)i;
	assert_int_equal(msg_kv_put(attrs, sizeof(attrs), &pos, "tenant", 6, "acme", 4), 0);
	assert_int_equal(
		msg_kv_put(attrs, sizeof(attrs), &pos, "q\"uo\\te", 7, "line\nbreak\x01", 11), 0);
	assert_int_equal(msg_kv_put(attrs, sizeof(attrs), &pos, "empty", 5, "", 0), 0);
	m[0] = (struct pubsub_out_msg){{bin, 256}, {attrs, (uint32_t)pos}, {"key-1", 5}};
	m[1] = (struct pubsub_out_msg){{"x", 1}, {NULL, 0}, {NULL, 0}};
	m[2] = (struct pubsub_out_msg){{"ab", 2}, {attrs, 16}, {NULL, 0}}; /* "tenant" only */
	assert_int_equal(pubsub_publish_new(BASE, AUTH, TOP, m, 3, &rq, err, sizeof(err)), 0);
	assert_string_equal(pubsub_request_url(rq), BASE "/v1/" TOP ":publish");
	assert_string_equal(pubsub_request_method(rq), "POST");
	j = body_json(rq);
	msgs = item(j, "messages");
	assert_int_equal(cJSON_GetArraySize(msgs), 3);
	one = cJSON_GetArrayItem(msgs, 0);
	{
		const char *d = item(one, "data")->valuestring;
		unsigned char out[300];

		assert_int_equal(pubsub_base64_decode(d, strlen(d), out), 256);
		assert_memory_equal(out, bin, 256);
	}
	assert_string_equal(item(item(one, "attributes"), "tenant")->valuestring, "acme");
	assert_string_equal(item(item(one, "attributes"), "q\"uo\\te")->valuestring,
			    "line\nbreak\x01");
	assert_string_equal(item(item(one, "attributes"), "empty")->valuestring, "");
	assert_string_equal(item(one, "orderingKey")->valuestring, "key-1");
	one = cJSON_GetArrayItem(msgs, 1);
	assert_string_equal(item(one, "data")->valuestring, "eA==");
	assert_null(cJSON_GetObjectItem(one, "attributes"));
	assert_null(cJSON_GetObjectItem(one, "orderingKey"));
	one = cJSON_GetArrayItem(msgs, 2);
	assert_int_equal(cJSON_GetArraySize(item(one, "attributes")), 1);
	cJSON_Delete(j);
	pubsub_request_free(rq);

	/* malformed attrs, too many messages, too large a request */
	m[1].attrs = (struct msg_bytes){attrs, 5};
	assert_int_equal(pubsub_publish_new(BASE, AUTH, TOP, m, 3, &rq, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "message 1"));
	assert_int_equal(pubsub_publish_new(BASE, AUTH, TOP, m, 0, &rq, err, sizeof(err)), -EINVAL);
	assert_int_equal(pubsub_publish_new(BASE, AUTH, TOP, m, 1001, &rq, err, sizeof(err)),
			 -EINVAL);
	{
		size_t big = 8u * 1000 * 1000; /* 10.7 MB in base64 */
		unsigned char *p = calloc(1, big);
		struct pubsub_out_msg b = {{p, (uint32_t)big}, {NULL, 0}, {NULL, 0}};

		assert_non_null(p);
		assert_int_equal(pubsub_publish_new(BASE, AUTH, TOP, &b, 1, &rq, err, sizeof(err)),
				 -EMSGSIZE);
		free(p);
	}
}

static void test_time(void **state)
{
	uint64_t ns;
	static const char *const bad[] = {
		"",
		"2026-11-26",
		"2026-11-26T23:26:55",
		"2026-11-26 23:26:55Z",
		"2026-13-26T23:26:55Z",
		"2026-11-26T24:26:55Z",
		"2026-11-26T23:26:55.Z",
		"2026-11-26T23:26:55ZZ",
		"2026-11-26T23:26:55+0100",
		"2026-11-26T23:26:55.123",
		"1969-12-31T23:59:59Z",
	};

	(void)state;
#define T(s, want)                                                                                 \
	do {                                                                                       \
		assert_int_equal(pubsub_time_parse(s, strlen(s), &ns), 0);                         \
		assert_true(ns == (uint64_t)(want));                                               \
	} while (0)
	T("1970-01-01T00:00:00Z", 0);
	T("2026-11-26T23:26:55Z", 1795735615000000000ull);
	T("2026-11-26T23:26:55.659Z", 1795735615659000000ull);
	T("2026-11-26T23:26:55.659123456Z", 1795735615659123456ull);
	T("2026-11-26T23:26:55.6591234567Z", 1795735615659123456ull); /* beyond ns: cut */
	T("2026-11-27T00:26:55.1+01:00", 1795735615100000000ull);
	T("2026-11-26t22:26:55-01:00", 1795735615000000000ull);
	T("2024-02-29T12:00:00Z", 1709208000000000000ull);
#undef T
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (pubsub_time_parse(bad[i], strlen(bad[i]), &ns) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
}

static void test_base64(void **state)
{
	unsigned char out[64];

	(void)state;
#define OK(s, want)                                                                                \
	do {                                                                                       \
		assert_int_equal(pubsub_base64_decode(s, strlen(s), out), strlen(want));           \
		assert_memory_equal(out, want, strlen(want));                                      \
	} while (0)
	OK("", "");
	OK("Zg==", "f");
	OK("Zg", "f");
	OK("Zm8=", "fo");
	OK("Zm9v", "foo");
	OK("Zm9vYmFy", "foobar");
	OK("-_8=", "\xfb\xff");
	OK("+/8=", "\xfb\xff");
#undef OK
	assert_int_equal(pubsub_base64_decode("Z", 1, out), -EINVAL);
	assert_int_equal(pubsub_base64_decode("Zg=", 3, out), -EINVAL);
	assert_int_equal(pubsub_base64_decode("Zg===", 5, out), -EINVAL);
	assert_int_equal(pubsub_base64_decode("Zm 9v", 5, out), -EINVAL);
	assert_int_equal(pubsub_base64_decode("Zm9v\n", 5, out), -EINVAL);
	assert_int_equal(pubsub_base64_decode("Z=g=", 4, out), -EINVAL);
	assert_int_equal(pubsub_base64_decode("Zm9*", 4, out), -EINVAL);
}

/* A pull response as Pub/Sub sends it (data: "hello", "", 3 bytes of binary). */
static const char realistic[] =
	"{\n  \"receivedMessages\": [\n    {\n"
	"      \"ackId\": \"UAYWLF1GSFE3GQhoUQ5PXiM_NSAoRRIJB08CKF15MEorQVh0Dj4NGXJ9YHxrUxsDV0"
	"ECel1RGQdoTm11H4GglfRAUQj_vd5yVW0XFAZYdXoI\",\n"
	"      \"message\": {\n        \"data\": \"aGVsbG8=\",\n"
	"        \"attributes\": {\"tenant\": \"acme\", \"type\": \"message.sent\"},\n"
	"        \"messageId\": \"2070443601311540\",\n"
	"        \"publishTime\": \"2026-11-26T23:26:55.659Z\",\n"
	"        \"orderingKey\": \"room-42\"\n      },\n"
	"      \"deliveryAttempt\": 3\n    },\n"
	"    {\"ackId\": \"b\", \"message\": {\"messageId\": \"2\", \"attributes\": {\"k\": \"v\"},"
	" \"publishTime\": \"2026-11-26T23:26:55.123456789Z\"}},\n"
	"    {\"ackId\": \"c\", \"message\": {\"data\": \"AP8A\", \"messageId\": \"3\","
	" \"publishTime\": \"not a time\", \"orderingKey\": \"\"}}\n"
	"  ]\n}\n";

static void kv_expect(struct msg_bytes attrs, const char *k, const char *v)
{
	struct msg_bytes got;

	assert_int_equal(msg_kv_find(attrs, k, &got), 1);
	assert_int_equal(got.len, strlen(v));
	assert_memory_equal(got.p, v, got.len);
}

static void test_pull_parse(void **state)
{
	struct pubsub_pull *p;
	const struct pubsub_message *m;
	struct msg_kv kv;
	size_t pos = 0;
	char err[256];
	int n = 0;

	(void)state;
	assert_int_equal(pubsub_pull_parse(realistic, strlen(realistic), &p, err, sizeof(err)), 0);
	assert_int_equal(p->count, 3);
	m = &p->msgs[0];
	assert_null(m->error);
	assert_int_equal(m->ack_id.len, 108);
	assert_int_equal(strlen(m->ack_id.p), 108); /* NUL-terminated */
	assert_string_equal(m->message_id.p, "2070443601311540");
	assert_int_equal(m->data.len, 5);
	assert_memory_equal(m->data.p, "hello", 5);
	kv_expect(m->attrs, "tenant", "acme");
	kv_expect(m->attrs, "type", "message.sent");
	while (msg_kv_next(m->attrs, &pos, &kv) == 1)
		n++;
	assert_int_equal(n, 2);
	assert_string_equal(m->ordering_key.p, "room-42");
	assert_string_equal(m->publish_time.p, "2026-11-26T23:26:55.659Z");
	assert_true(m->publish_ns == 1795735615659000000ull);
	assert_int_equal(m->delivery_attempt, 3);

	m = &p->msgs[1];
	assert_null(m->error);
	assert_int_equal(m->data.len, 0); /* attributes only */
	kv_expect(m->attrs, "k", "v");
	assert_int_equal(m->ordering_key.len, 0);
	assert_true(m->publish_ns == 1795735615123456789ull);
	assert_int_equal(m->delivery_attempt, 0);

	m = &p->msgs[2];
	assert_null(m->error); /* an unreadable time is not a broken message */
	assert_int_equal(m->data.len, 3);
	assert_memory_equal(m->data.p, "\x00\xff\x00", 3);
	assert_int_equal(m->attrs.len, 0);
	assert_string_equal(m->publish_time.p, "not a time");
	assert_true(m->publish_ns == 0);
	pubsub_pull_free(p);

	/* Empty pulls. */
	assert_int_equal(pubsub_pull_parse("{}", 2, &p, err, sizeof(err)), 0);
	assert_int_equal(p->count, 0);
	pubsub_pull_free(p);
	assert_int_equal(pubsub_pull_parse("{\n}\n", 4, &p, err, sizeof(err)), 0);
	assert_int_equal(p->count, 0);
	pubsub_pull_free(p);
	assert_int_equal(pubsub_pull_parse("{\"receivedMessages\":[]}", 23, &p, err, sizeof(err)),
			 0);
	assert_int_equal(p->count, 0);
	pubsub_pull_free(p);
	pubsub_pull_free(NULL);

	/* A response that is not one. */
	assert_int_equal(pubsub_pull_parse("<html>", 6, &p, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "not a JSON object"));
	assert_int_equal(pubsub_pull_parse("[]", 2, &p, err, sizeof(err)), -EPROTO);
	assert_int_equal(pubsub_pull_parse("{\"receivedMessages\":{}}", 23, &p, err, sizeof(err)),
			 -EPROTO);
	assert_non_null(strstr(err, "not an array"));
	assert_int_equal(pubsub_pull_parse(realistic, 50, &p, err, sizeof(err)), -EPROTO);
}

static void test_pull_broken(void **state)
{
	/* Each broken message between two good ones: the batch goes through. */
	static const struct {
		const char *json;
		const char *error;
	} cases[] = {
		{"17", "not an object"},
		{"{\"message\":{\"data\":\"eA==\",\"messageId\":\"1\"}}", "ackId missing"},
		{"{\"ackId\":\"\",\"message\":{\"data\":\"eA==\",\"messageId\":\"1\"}}",
		 "ackId missing"},
		{"{\"ackId\":7,\"message\":{\"data\":\"eA==\",\"messageId\":\"1\"}}",
		 "ackId missing"},
		{"{\"ackId\":\"LONG\",\"message\":{\"data\":\"eA==\",\"messageId\":\"1\"}}",
		 "ackId longer than 1024 bytes"},
		{"{\"ackId\":\"a\"}", "message missing"},
		{"{\"ackId\":\"a\",\"message\":\"x\"}", "message missing"},
		{"{\"ackId\":\"a\",\"message\":{\"data\":\"eA==\"}}", "messageId missing"},
		{"{\"ackId\":\"a\",\"message\":{\"data\":\"not base64!\",\"messageId\":\"1\"}}",
		 "data is not valid base64"},
		{"{\"ackId\":\"a\",\"message\":{\"data\":\"eA=\",\"messageId\":\"1\"}}",
		 "data is not valid base64"},
		{"{\"ackId\":\"a\",\"message\":{\"data\":12,\"messageId\":\"1\"}}",
		 "data is not a string"},
		{"{\"ackId\":\"a\",\"message\":{\"data\":\"eA==\",\"messageId\":\"1\","
		 "\"attributes\":{\"a\":\"b\",\"n\":1}}}",
		 "attribute value is not a string"},
		{"{\"ackId\":\"a\",\"message\":{\"data\":\"eA==\",\"messageId\":\"1\","
		 "\"attributes\":[1]}}",
		 "attributes is not an object"},
		{"{\"ackId\":\"a\",\"message\":{\"data\":\"eA==\",\"messageId\":\"1\","
		 "\"orderingKey\":5}}",
		 "orderingKey is not a string"},
	};
	static const char good[] = "{\"ackId\":\"g\",\"message\":{\"data\":\"Z29vZA==\","
				   "\"messageId\":\"9\",\"attributes\":{\"t\":\"u\"}}}";
	char long_id[1100], body[4096], err[256];

	(void)state;
	memset(long_id, 'A', 1025);
	long_id[1025] = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pubsub_pull *p;
		const char *json = cases[i].json, *at = strstr(json, "LONG");
		char one[1400];

		if (at)
			snprintf(one, sizeof(one), "%.*s%s%s", (int)(at - json), json, long_id,
				 at + 4);
		else
			snprintf(one, sizeof(one), "%s", json);
		snprintf(body, sizeof(body), "{\"receivedMessages\":[%s,%s,%s]}", good, one, good);
		assert_int_equal(pubsub_pull_parse(body, strlen(body), &p, err, sizeof(err)), 0);
		assert_int_equal(p->count, 3);
		for (size_t k = 0; k < 3; k += 2) {
			assert_null(p->msgs[k].error);
			assert_string_equal(p->msgs[k].ack_id.p, "g");
			assert_int_equal(p->msgs[k].data.len, 4);
			assert_memory_equal(p->msgs[k].data.p, "good", 4);
			kv_expect(p->msgs[k].attrs, "t", "u");
		}
		if (!p->msgs[1].error || strcmp(p->msgs[1].error, cases[i].error))
			fail_msg("case %zu: error \"%s\", want \"%s\"", i,
				 p->msgs[1].error ? p->msgs[1].error : "(none)", cases[i].error);
		if (at) /* kept, so the caller may still ack it */
			assert_int_equal(p->msgs[1].ack_id.len, 1025);
		pubsub_pull_free(p);
	}
}

/* ~180-character ack ids (as Pub/Sub's), a few with characters JSON escapes. */
static void make_ids(struct msg_bytes *ids, char (*store)[200], size_t n)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < n; i++) {
		size_t len = 170 + (i * 7) % 21;
		int k = snprintf(store[i], 200, "id%zu-", i);

		for (size_t c = (size_t)k; c < len; c++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			store[i][c] =
				"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
					[x % 64];
		}
		if (i % 997 == 0)
			store[i][len - 1] = '"';
		if (i % 1009 == 0)
			store[i][len - 2] = '\\';
		store[i][len] = 0;
		ids[i] = (struct msg_bytes){store[i], (uint32_t)len};
	}
}

/* The id as a JSON string literal. */
static size_t json_len(struct msg_bytes id)
{
	size_t n = id.len + 2;

	for (uint32_t i = 0; i < id.len; i++)
		n += ((const char *)id.p)[i] == '"' || ((const char *)id.p)[i] == '\\';
	return n;
}

static void split_all(const struct msg_bytes *ids, size_t n, size_t limit, int modack,
		      size_t *ret_requests)
{
	size_t done = 0, requests = 0, want_limit = limit ? limit : PUBSUB_ACK_BODY_LIMIT;
	char err[256];

	while (done < n) {
		struct pubsub_request *rq;
		const cJSON *arr, *e;
		size_t len, k = 0;
		cJSON *j;
		int took;

		took = modack ? pubsub_modack_new(BASE, AUTH, SUB, 0, ids + done, n - done, limit,
						  &rq, err, sizeof(err))
			      : pubsub_ack_new(BASE, AUTH, SUB, ids + done, n - done, limit, &rq,
					       err, sizeof(err));
		if (took < 1)
			fail_msg("%s (%d)", err, took);
		pubsub_request_body(rq, &len);
		assert_true(len <= want_limit);
		j = body_json(rq);
		arr = item(j, "ackIds");
		assert_int_equal(cJSON_GetArraySize(arr), took);
		/* Every id exactly once, in order: the i-th of this body is the next one. */
		cJSON_ArrayForEach(e, arr)
		{
			assert_int_equal(strlen(e->valuestring), ids[done + k].len);
			assert_memory_equal(e->valuestring, ids[done + k].p, ids[done + k].len);
			k++;
		}
		/* Greedy: the next id would not have fitted. */
		if (done + (size_t)took < n)
			assert_true(len + json_len(ids[done + (size_t)took]) + 1 > want_limit);
		cJSON_Delete(j);
		pubsub_request_free(rq);
		done += (size_t)took;
		requests++;
	}
	assert_int_equal(done, n);
	*ret_requests = requests;
}

static void test_ack_split(void **state)
{
	enum { N = 10000 };
	struct msg_bytes *ids = calloc(N, sizeof(*ids));
	char(*store)[200] = calloc(N, 200);
	struct pubsub_request *rq;
	size_t requests, total = 0;
	char err[256];

	(void)state;
	assert_non_null(ids);
	assert_non_null(store);
	make_ids(ids, store, N);
	for (size_t i = 0; i < N; i++)
		total += ids[i].len + 3;
	split_all(ids, N, 0, 0, &requests);
	/* 10,000 ids of ~183 bytes each: 4 requests under 504 KiB. */
	assert_int_equal(requests, (total + PUBSUB_ACK_BODY_LIMIT - 1) / PUBSUB_ACK_BODY_LIMIT);
	split_all(ids, N, 0, 1, &requests);
	assert_true(requests >= 4);
	split_all(ids, N, 4096, 0, &requests);
	assert_true(requests >= total / 4096);
	split_all(ids, 7, 250, 1, &requests); /* one id a request */
	assert_int_equal(requests, 7);

	/* A limit with no room for one id; an id no server would give. */
	assert_int_equal(pubsub_ack_new(BASE, AUTH, SUB, ids, N, 100, &rq, err, sizeof(err)),
			 -EMSGSIZE);
	assert_non_null(strstr(err, "no room"));
	ids[3].len = PUBSUB_ACK_ID_MAX + 1;
	assert_int_equal(pubsub_ack_new(BASE, AUTH, SUB, ids, N, 0, &rq, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "ack id 3"));
	ids[3].len = 0;
	assert_int_equal(pubsub_ack_new(BASE, AUTH, SUB, ids, N, 0, &rq, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(pubsub_ack_new(BASE, AUTH, SUB, ids, 0, 0, &rq, err, sizeof(err)),
			 -EINVAL);
	free(ids);
	free(store);
}

/* ---- HTTP outcomes, from a loopback server answering canned responses ---- */

struct srv {
	int fd, port;
	pthread_t thread;
	const char *response; /* the whole HTTP response to send */
	char request[8192];   /* the last request's head and body */
	volatile int stop;
};

static void *srv_run(void *arg)
{
	struct srv *s = arg;

	for (;;) {
		size_t got = 0, want = 0;
		int c = accept(s->fd, NULL, NULL);

		if (c < 0 || s->stop) {
			if (c >= 0)
				close(c);
			return NULL;
		}
		for (;;) {
			ssize_t n = read(c, s->request + got, sizeof(s->request) - 1 - got);
			char *end;

			if (n <= 0)
				break;
			got += (size_t)n;
			s->request[got] = 0;
			end = strstr(s->request, "\r\n\r\n");
			if (end && !want) {
				const char *cl = strcasestr(s->request, "\r\nContent-Length: ");

				want = (size_t)(end + 4 - s->request) +
				       (cl ? strtoul(cl + 18, NULL, 10) : 0);
			}
			if (want && got >= want)
				break;
		}
		if (write(c, s->response, strlen(s->response)) < 0)
			s->request[0] = 0;
		close(c);
	}
}

static void check_outcome(struct srv *s, const char *resp, int want, const char *want_err)
{
	struct pubsub_request *rq;
	CURL *easy = curl_easy_init();
	char base[64], err[256] = "", *body;
	long status;
	size_t len;

	snprintf(base, sizeof(base), "http://127.0.0.1:%d", s->port);
	s->response = resp;
	assert_int_equal(pubsub_topic_create_new(base, AUTH, TOP, &rq, err, sizeof(err)), 0);
	assert_int_equal(pubsub_call(rq, easy, &body, &len, &status, err, sizeof(err)), want);
	if (want == 0) {
		assert_non_null(body);
		assert_int_equal(strlen(body), len);
		free(body);
	} else {
		assert_null(body);
		if (strcmp(err, want_err))
			fail_msg("got \"%s\", want \"%s\"", err, want_err);
	}
	/* What went out: PUT, the path, JSON, the auth line, no Expect. */
	assert_int_equal(strncmp(s->request, "PUT /v1/" TOP " HTTP/1.1\r\n",
				 strlen("PUT /v1/" TOP " HTTP/1.1\r\n")),
			 0);
	assert_non_null(strcasestr(s->request, "\r\nContent-Type: application/json\r\n"));
	assert_non_null(strstr(s->request, "\r\n" AUTH "\r\n"));
	assert_null(strcasestr(s->request, "\r\nExpect:"));
	assert_non_null(strstr(s->request, "\r\n\r\n{}"));
	pubsub_request_free(rq);
	curl_easy_cleanup(easy);
}

static void test_outcomes(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t salen = sizeof(sa);
	struct srv s = {0};
	char resp[8][512];
	static const struct {
		int status;
		const char *body;
		int want;
		const char *err;
	} cases[] = {
		{200, "{\"name\":\"x\"}", 0, ""},
		{403,
		 "{\"error\":{\"code\":403,\"message\":\"User not authorized to perform this "
		 "action.\",\"status\":\"PERMISSION_DENIED\"}}",
		 -EACCES, "pubsub: User not authorized to perform this action. (HTTP 403)"},
		{401, "{\"error\":{\"code\":401,\"status\":\"UNAUTHENTICATED\"}}", -EACCES,
		 "pubsub: UNAUTHENTICATED (HTTP 401)"},
		{404,
		 "{\"error\":{\"code\":404,\"message\":\"Resource not found "
		 "(resource=orders).\",\"status\":\"NOT_FOUND\"}}",
		 -ENOENT, "pubsub: Resource not found (resource=orders). (HTTP 404)"},
		{409, "{\"error\":{\"code\":409,\"message\":\"Topic already exists\"}}", -EEXIST,
		 "pubsub: Topic already exists (HTTP 409)"},
		{400, "{\"error\":{\"code\":400,\"message\":\"Invalid\\nname\"}}", -EINVAL,
		 "pubsub: Invalid name (HTTP 400)"},
		{429, "{\"error\":{\"code\":429,\"message\":\"Quota\"}}", -EIO,
		 "pubsub: Quota (HTTP 429)"},
		{502, "upstream connect error\r\nmore", -EIO,
		 "pubsub: upstream connect error (HTTP 502)"},
	};
	int fd;

	(void)state;
	s.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s.fd >= 0);
	assert_int_equal(bind(s.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s.fd, 8), 0);
	assert_int_equal(getsockname(s.fd, (struct sockaddr *)&sa, &salen), 0);
	s.port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&s.thread, NULL, srv_run, &s), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(resp[i], sizeof(resp[i]),
			 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nConnection: "
			 "close\r\nContent-Length: %zu\r\n\r\n%s",
			 cases[i].status, strlen(cases[i].body), cases[i].body);
		check_outcome(&s, resp[i], cases[i].want, cases[i].err);
	}
	s.stop = 1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	pthread_join(s.thread, NULL);
	close(s.fd);

	/* Nobody listening now: a transfer error. */
	{
		struct pubsub_request *rq;
		CURL *easy = curl_easy_init();
		char base[64], err[256];

		snprintf(base, sizeof(base), "http://127.0.0.1:%d", s.port);
		assert_int_equal(pubsub_pull_new(base, NULL, SUB, 1, 0, &rq, err, sizeof(err)), 0);
		assert_int_equal(pubsub_call(rq, easy, NULL, NULL, NULL, err, sizeof(err)), -EIO);
		assert_int_equal(strncmp(err, "pubsub: Couldn't connect to server", 34), 0);
		pubsub_request_free(rq);
		curl_easy_cleanup(easy);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_requests, setup),
		cmocka_unit_test_setup(test_publish, setup),
		cmocka_unit_test_setup(test_time, setup),
		cmocka_unit_test_setup(test_base64, setup),
		cmocka_unit_test_setup(test_pull_parse, setup),
		cmocka_unit_test_setup(test_pull_broken, setup),
		cmocka_unit_test_setup(test_ack_split, setup),
		cmocka_unit_test_setup(test_outcomes, setup),
	};
	int r;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return r;
}
