/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: any bytes as an SQS answer (common/sqs.c). Each input is
 * decoded four ways: as a whole ReceiveMessage response; as the Body of one
 * well-formed message (so a bare SNS envelope reaches the unwrapping at once);
 * as a batch result; as a GetQueueAttributes answer (and, when it is text, as
 * a queue URL). Nothing may crash or read past what it was given, every
 * message must be handed on the way ingest does (encoded as a ring payload and
 * decoded again, unchanged), and the documented promises must hold: a broken
 * message has no attributes and keeps its raw body, ours come first.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/msg.h"
#include "common/sqs.h"
#include "tests/fuzz/fuzz-common.h"

/* Read every byte of a view, so ASan sees a view pointing where it must not. */
static unsigned touch(struct msg_bytes b)
{
	const volatile unsigned char *p = b.p;
	unsigned s = 0;

	CHECK(b.p || !b.len);
	for (uint32_t i = 0; i < b.len; i++)
		s += p[i];
	return s;
}

static int same(struct msg_bytes a, struct msg_bytes b)
{
	return a.len == b.len && (!a.len || !memcmp(a.p, b.p, a.len));
}

/* The attribute list is well formed; returns its first key (len 0 when empty). */
static struct msg_bytes check_attrs(struct msg_bytes list)
{
	struct msg_bytes first = {"", 0};
	struct msg_kv kv;
	size_t pos = 0;
	int r, n = 0;

	while ((r = msg_kv_next(list, &pos, &kv)) > 0) {
		touch(kv.key);
		touch(kv.value);
		if (!n++)
			first = kv.key;
	}
	CHECK(r == 0 && pos == list.len);
	return first;
}

static int key_is(struct msg_bytes k, const char *s)
{
	return k.len == strlen(s) && !memcmp(k.p, s, k.len);
}

/* What ingest does with a message: a source payload, which must decode to the same views. */
static void hand_on(const struct sqs_message *m)
{
	struct msg_source_view v =
				       {
					       .source = MSG_SOURCE_SQS,
					       .id = m->message_id,
					       .attrs = m->attrs,
					       .body = m->error ? m->raw_body : m->body,
				       },
			       d;
	uint32_t size = msg_source_size(&v);
	unsigned char *p = malloc(size ? size : 1);

	CHECK(p);
	CHECK(msg_source_encode(p, size, &v) == (int64_t)size);
	CHECK(msg_source_decode(p, size, &d) == 0);
	CHECK(same(d.id, v.id) && same(d.attrs, v.attrs) && same(d.body, v.body));
	free(p);
}

static int check_receive(const char *json, size_t len)
{
	struct sqs_receive r;
	char err[256];
	int n = sqs_receive_parse(json, len, &r, err, sizeof(err));

	CHECK(n == -EPROTO || n == -ENOMEM || (n >= 0 && n <= SQS_BATCH_MAX));
	CHECK(n < 0 ? r.n == 0 : r.n == (unsigned)n);
	for (unsigned i = 0; i < r.n; i++) {
		const struct sqs_message *m = &r.msgs[i];
		struct msg_bytes first;

		touch(m->message_id);
		touch(m->receipt_handle);
		touch(m->body);
		touch(m->raw_body);
		touch(m->group_id);
		touch(m->sequence_number);
		first = check_attrs(m->attrs);
		if (m->error) {
			CHECK(!m->sns && !m->attrs.len && same(m->body, m->raw_body));
		} else {
			CHECK(m->message_id.p && m->receipt_handle.len &&
			      m->receipt_handle.len <= SQS_RECEIPT_MAX);
			CHECK(m->sns || same(m->body, m->raw_body));
			if (m->group_id.len)
				CHECK(key_is(first, SQS_ATTR_GROUP_ID));
			else if (m->sns)
				CHECK(key_is(first, SNS_ATTR_TOPIC_ARN));
		}
		hand_on(m);
	}
	sqs_receive_free(&r);
	sqs_receive_free(&r); /* safe twice */
	return n;
}

/* The input as the Body of one message: a JSON string literal of it, in a real-looking answer. */
static void check_as_body(const uint8_t *data, size_t size)
{
	static const char head[] =
		"{\"Messages\":[{\"MessageId\":\"m-1\",\"ReceiptHandle\":\"rh-1\","
		"\"Attributes\":{\"SentTimestamp\":\"1795735611632\","
		"\"ApproximateReceiveCount\":\"1\"},\"Body\":\"";
	static const char tail[] = "\"}]}";
	static const char hex[] = "0123456789abcdef";
	char *s = malloc(sizeof(head) + size * 6 + sizeof(tail)), *p;
	struct sqs_receive r;
	int n, nul = memchr(data, 0, size) != NULL;

	CHECK(s);
	p = stpcpy(s, head);
	for (size_t i = 0; i < size; i++) {
		unsigned char c = data[i];

		if (c == '"' || c == '\\') {
			*p++ = '\\';
			*p++ = (char)c;
		} else if (c < 0x20) {
			p = stpcpy(p, "\\u00");
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		} else {
			*p++ = (char)c;
		}
	}
	p = stpcpy(p, tail);
	n = check_receive(s, (size_t)(p - s));
	CHECK(n == 1 || n == -ENOMEM);
	/* Once more to compare: the body must come back exactly (cJSON ends strings at a NUL). */
	n = sqs_receive_parse(s, (size_t)(p - s), &r, NULL, 0);
	if (n == 1 && !nul) {
		const struct sqs_message *m = &r.msgs[0];

		CHECK(m->raw_body.len == size && !memcmp(m->raw_body.p, data, size));
		CHECK(m->receive_count == 1 && m->sent_timestamp_ms == 1795735611632ull);
	}
	sqs_receive_free(&r);
	free(s);
}

static void check_batch(const char *json, size_t len)
{
	struct sqs_batch_result b;
	unsigned n = 1 + (unsigned)(len % SQS_BATCH_MAX);
	int r = sqs_batch_parse(json, len, n, &b, NULL, 0);

	CHECK(r == 0 || r == -EPROTO);
	CHECK(b.n == n);
	if (r == 0) {
		CHECK(b.ok + b.failed + b.missing == n);
		for (unsigned i = 0; i < n; i++)
			CHECK(memchr(b.e[i].code, 0, sizeof(b.e[i].code)) &&
			      memchr(b.e[i].message, 0, sizeof(b.e[i].message)));
	}
}

static void check_attrs_answer(const char *json, size_t len)
{
	struct sqs_queue_attrs a;
	int r = sqs_queue_attrs_parse(json, len, &a, NULL, 0);

	CHECK(r == 0 || r == -EPROTO);
	if (r == 0)
		CHECK(a.visibility_s <= SQS_VISIBILITY_MAX && (a.fifo == 0 || a.fifo == 1));
}

static void check_url(const uint8_t *data, size_t size)
{
	char *url, region[SQS_REGION_MAX];

	if (size > 4096 || memchr(data, 0, size))
		return;
	url = malloc(size + 1);
	CHECK(url);
	memcpy(url, data, size);
	url[size] = 0;
	if (!sqs_region_from_url(url, region, sizeof(region)))
		CHECK(strlen(region) > 0 && strlen(region) < SQS_REGION_MAX);
	free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *json = size ? (const char *)data : "";

	if (size > 1 << 20)
		return 0;
	check_receive(json, size);
	check_as_body(data, size);
	check_batch(json, size);
	check_attrs_answer(json, size);
	check_url(data, size);
	return 0;
}
