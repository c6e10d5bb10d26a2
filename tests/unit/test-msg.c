/* SPDX-License-Identifier: MIT */
/*
 * msg: the ring payloads round trip, and decoders refuse what is not
 * exactly what an encoder writes (lengths, magic, reserved bits, the
 * marker of a source message without events).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/msg.h"

static struct msg_bytes B(const char *s) {
	return (struct msg_bytes){s, (uint32_t)strlen(s)};
}

static void
test_event_round_trip(void **state)
{
	unsigned char buf[512], hdrs[128];
	size_t hlen = 0;
	struct msg_event_view e = {.index = 1,
				   .count = 3,
				   .type = 7,
				   .received_ns = 1234567890123ull},
			      d;
	struct msg_bytes v;

	(void)state;
	assert_int_equal(
		msg_kv_put(hdrs, sizeof(hdrs), &hlen, "ferry-legacy-type", 17, "ROOMCREATED", 11),
		0);
	e.topic = B("room.v1.member-joined");
	e.key = B("acme/r00m");
	e.headers = (struct msg_bytes){hdrs, (uint32_t)hlen};
	e.value = B("\x0a\x03\x66\x6f\x6f");
	assert_int_equal(msg_event_encode(buf, sizeof(buf), &e), msg_event_size(&e));
	assert_int_equal(msg_event_decode(buf, msg_event_size(&e), &d), 0);
	assert_int_equal(d.index, 1);
	assert_int_equal(d.count, 3);
	assert_int_equal(d.type, 7);
	assert_int_equal(d.received_ns, 1234567890123ull);
	assert_int_equal(d.topic.len, e.topic.len);
	assert_memory_equal(d.topic.p, e.topic.p, e.topic.len);
	assert_memory_equal(d.key.p, e.key.p, e.key.len);
	assert_memory_equal(d.value.p, e.value.p, e.value.len);
	assert_int_equal(msg_kv_find(d.headers, "ferry-legacy-type", &v), 1);
	assert_int_equal(v.len, 11);
	/* Short buffers: refused, nothing written past. */
	assert_int_equal(msg_event_encode(buf, msg_event_size(&e) - 1, &e), -ENOBUFS);
	/* Every truncation and one byte too many are refused. */
	for (uint32_t n = 0; n < msg_event_size(&e); n++)
		assert_int_equal(msg_event_decode(buf, n, &d), -EBADMSG);
	assert_int_equal(msg_event_decode(buf, msg_event_size(&e) + 1, &d), -EBADMSG);
}

/* Room before the value: zeros, right before it, counted in the size, kept by decode. */
static void test_event_room(void **state)
{
	unsigned char buf[512];
	struct msg_event_view e = {.count = 1, .type = 1, .room = MSG_EVENT_ROOM}, d;
	const unsigned char *v;

	(void)state;
	memset(buf, 0xee, sizeof(buf));
	e.topic = B("chat.v1.message-sent");
	e.key = B("k");
	e.value = B("\x0a\x01\x78");
	assert_int_equal(msg_event_size(&e), 40 + 20 + 1 + MSG_EVENT_ROOM + 3);
	assert_int_equal(msg_event_encode(buf, sizeof(buf), &e), msg_event_size(&e));
	assert_int_equal(msg_event_decode(buf, msg_event_size(&e), &d), 0);
	assert_int_equal(d.room, MSG_EVENT_ROOM);
	assert_int_equal(d.value.len, 3);
	assert_memory_equal(d.value.p, "\x0a\x01\x78", 3);
	v = d.value.p;
	assert_ptr_equal(v - MSG_EVENT_ROOM, buf + 40 + 20 + 1);
	for (int i = 1; i <= MSG_EVENT_ROOM; i++)
		assert_int_equal(v[-i], 0);
	/* a room the decoder would refuse is not written */
	e.room = MSG_EVENT_ROOM_MAX + 1;
	assert_int_equal(msg_event_encode(buf, sizeof(buf), &e), -ENOBUFS);
}

static void test_event_strict(void **state)
{
	unsigned char buf[256];
	struct msg_event_view e = {.index = 0, .count = 1, .type = 1}, d;
	uint32_t len;

	(void)state;
	e.topic = B("chat.v1.message-sent");
	e.key = B("k");
	e.value = B("v");
	len = msg_event_size(&e);
	msg_event_encode(buf, sizeof(buf), &e);
	/* index beyond count */
	buf[4] = 1;
	assert_int_equal(msg_event_decode(buf, len, &d), -EBADMSG);
	buf[4] = 0;
	/* room beyond MSG_EVENT_ROOM_MAX, or beyond the record */
	buf[11] = 1;
	assert_int_equal(msg_event_decode(buf, len, &d), -EBADMSG);
	buf[11] = 0;
	buf[10] = 1;
	assert_int_equal(msg_event_decode(buf, len, &d), -EBADMSG);
	buf[10] = 0;
	/* the old layouts' magic */
	buf[3] = '1';
	assert_int_equal(msg_event_decode(buf, len, &d), -EBADMSG);
	buf[3] = '2';
	assert_int_equal(msg_event_decode(buf, len, &d), -EBADMSG);
	buf[3] = '3';
	assert_int_equal(msg_event_decode(buf, len, &d), -EBADMSG);
	buf[3] = '4';
	assert_int_equal(msg_event_decode(buf, len, &d), 0);
}

/* The marker of a filtered source message: count 0, and nothing to send. */
static void test_event_marker(void **state)
{
	unsigned char buf[256];
	struct msg_event_view e = {0}, d;
	uint32_t len;

	(void)state;
	len = msg_event_size(&e);
	assert_int_equal(len, 40);
	msg_event_encode(buf, sizeof(buf), &e);
	assert_int_equal(msg_event_decode(buf, len, &d), 0);
	assert_int_equal(d.count, 0);
	assert_int_equal(d.type, 0);
	/* A marker with a type, a topic or a value is no marker. */
	e.type = 3;
	msg_event_encode(buf, sizeof(buf), &e);
	assert_int_equal(msg_event_decode(buf, msg_event_size(&e), &d), -EBADMSG);
	e.type = 0;
	e.topic = B("t");
	msg_event_encode(buf, sizeof(buf), &e);
	assert_int_equal(msg_event_decode(buf, msg_event_size(&e), &d), -EBADMSG);
	e.topic = B("");
	e.value = B("v");
	msg_event_encode(buf, sizeof(buf), &e);
	assert_int_equal(msg_event_decode(buf, msg_event_size(&e), &d), -EBADMSG);
	/* Headers and key are allowed (provenance). */
	e.value = B("");
	e.key = B("k");
	msg_event_encode(buf, sizeof(buf), &e);
	assert_int_equal(msg_event_decode(buf, msg_event_size(&e), &d), 0);
}

static void test_source_and_dead(void **state)
{
	unsigned char buf[512], dead[1024];
	struct msg_source_view m = {.source = MSG_SOURCE_REPLAY,
				    .source_idx = 2,
				    .received_ns = 42},
			       d;
	struct msg_dead_view dv;
	int64_t n;

	(void)state;
	m.id = B("m-1");
	m.body = B("{\"type\":\"MESSAGESENT\"}");
	n = msg_source_encode(buf, sizeof(buf), &m);
	assert_int_equal(n, msg_source_size(&m));
	assert_int_equal(msg_source_decode(buf, (uint32_t)n, &d), 0);
	assert_int_equal(d.received_ns, 42);
	assert_int_equal(d.source_idx, 2);
	assert_memory_equal(d.body.p, m.body.p, m.body.len);
	assert_int_equal(msg_source_decode(buf, (uint32_t)n - 1, &d), -EBADMSG);
	assert_true(msg_dead_encode(dead, sizeof(dead), 3, "map: type: unknown legacy type", buf,
				    (uint32_t)n) > 0);
	assert_int_equal(msg_dead_decode(dead, msg_dead_size(30, (uint32_t)n), &dv), 0);
	assert_int_equal(dv.stage, 3);
	assert_int_equal(dv.reason.len, 30);
	assert_memory_equal(dv.msg.id.p, "m-1", 3);

	/* received_ns set in place, in a source message and in a dead letter's original */
	assert_int_equal(msg_set_received(MSG_REC_SOURCE, buf, (uint32_t)n, 77), 0);
	assert_int_equal(msg_source_decode(buf, (uint32_t)n, &d), 0);
	assert_int_equal(d.received_ns, 77);
	assert_int_equal(d.source_idx, 2);
	assert_int_equal(msg_set_received(MSG_REC_DEAD, dead, msg_dead_size(30, (uint32_t)n), 99),
			 0);
	assert_int_equal(msg_dead_decode(dead, msg_dead_size(30, (uint32_t)n), &dv), 0);
	assert_int_equal(dv.msg.received_ns, 99);
	assert_int_equal(dv.reason.len, 30);
	assert_int_equal(msg_set_received(MSG_REC_EVENT, buf, (uint32_t)n, 1), -EINVAL);
	assert_int_equal(msg_set_received(MSG_REC_SOURCE, dead, (uint32_t)n, 1), -EBADMSG);
	assert_int_equal(msg_set_received(MSG_REC_DEAD, dead, 20, 1), -EBADMSG);
	assert_int_equal(msg_set_received(MSG_REC_SOURCE, buf, 8, 1), -EBADMSG);

	/* Past decrypt: the plaintext body and, after it, the envelope as received. */
	m.flags = MSG_F_PLAINTEXT;
	m.orig = B("{\"v\":1,\"tenant\":\"acme\",\"ct\":\"AAAA\"}");
	n = msg_source_encode(buf, sizeof(buf), &m);
	assert_int_equal(n, msg_source_size(&m));
	assert_int_equal(msg_source_decode(buf, (uint32_t)n, &d), 0);
	assert_int_equal(d.body.len, m.body.len);
	assert_memory_equal(d.body.p, m.body.p, m.body.len);
	assert_int_equal(d.orig.len, m.orig.len);
	assert_memory_equal(d.orig.p, m.orig.p, m.orig.len);
	assert_int_equal(msg_source_decode(buf, (uint32_t)n - 1, &d), -EBADMSG);
}

static void test_kv(void **state)
{
	unsigned char buf[64];
	size_t pos = 0, it = 0;
	struct msg_kv kv;
	struct msg_bytes v;

	(void)state;
	assert_int_equal(msg_kv_put(buf, sizeof(buf), &pos, "a", 1, "1", 1), 0);
	assert_int_equal(msg_kv_put(buf, sizeof(buf), &pos, "bb", 2, "", 0), 0);
	assert_int_equal(msg_kv_put(buf, 20, &pos, "ccc", 3, "333", 3), -ENOBUFS);
	assert_int_equal(msg_kv_next((struct msg_bytes){buf, (uint32_t)pos}, &it, &kv), 1);
	assert_int_equal(msg_kv_next((struct msg_bytes){buf, (uint32_t)pos}, &it, &kv), 1);
	assert_int_equal(kv.key.len, 2);
	assert_int_equal(msg_kv_next((struct msg_bytes){buf, (uint32_t)pos}, &it, &kv), 0);
	assert_int_equal(msg_kv_find((struct msg_bytes){buf, (uint32_t)pos}, "bb", &v), 1);
	assert_int_equal(msg_kv_find((struct msg_bytes){buf, (uint32_t)pos}, "zz", &v), 0);
	assert_int_equal(msg_kv_find((struct msg_bytes){buf, (uint32_t)pos - 1}, "zz", &v),
			 -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_round_trip), cmocka_unit_test(test_event_strict),
		cmocka_unit_test(test_event_room),	 cmocka_unit_test(test_event_marker),
		cmocka_unit_test(test_source_and_dead),	 cmocka_unit_test(test_kv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
