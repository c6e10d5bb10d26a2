/* SPDX-License-Identifier: MIT */
/*
 * common/wire against the documented encodings of Confluent's message
 * indexes, and common/registry's index paths from a real descriptor set.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/registry.h"
#include "common/wire.h"

struct vector {
	int32_t idx[4];
	size_t n;
	uint8_t want[8];
	size_t want_len;
};

/* Header bytes after magic and id, per Confluent's docs and serializers. */
static const struct vector vectors[] = {
	{{0}, 1, {0x00}, 1},			     /* the first message: the single byte 0 */
	{{0}, 0, {0x00}, 1},			     /* no path means [0] */
	{{1}, 1, {0x02, 0x02}, 2},		     /* [1]: count 1 -> 2, index 1 -> 2 */
	{{0, 0}, 2, {0x04, 0x00, 0x00}, 3},	     /* nested: [0,0] -> 04 00 00 */
	{{2, 1}, 2, {0x04, 0x04, 0x02}, 3},	     /* [2,1] */
	{{64}, 1, {0x02, 0x80, 0x01}, 3},	     /* 64 -> zigzag 128 -> two varint bytes */
	{{1, 0, 3}, 3, {0x06, 0x02, 0x00, 0x06}, 4}, /* three deep */
};

static void test_wire_vectors(void **state)
{
	(void)state;
	for (size_t v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
		const struct vector *t = &vectors[v];
		uint8_t buf[WIRE_HEADER_MAX + 4];
		int32_t idx[WIRE_MAX_INDEXES];
		uint32_t id;
		size_t n;
		int len = wire_header_write(buf, sizeof(buf), 0x01020304, t->idx, t->n);

		assert_int_equal(len, 5 + (int)t->want_len);
		assert_memory_equal(buf, ((const uint8_t[]){0x00, 0x01, 0x02, 0x03, 0x04}), 5);
		assert_memory_equal(buf + 5, t->want, t->want_len);
		/* and back, with a payload behind it */
		buf[len] = 0x0a;
		assert_int_equal(
			wire_header_read(buf, (size_t)len + 1, &id, idx, WIRE_MAX_INDEXES, &n),
			len);
		assert_int_equal(id, 0x01020304);
		assert_int_equal(n, t->n ? t->n : 1);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(idx[i], t->n ? t->idx[i] : 0);
	}
}

static void test_wire_errors(void **state)
{
	uint8_t buf[WIRE_HEADER_MAX];
	int32_t idx[WIRE_MAX_INDEXES], neg = -1, deep[WIRE_MAX_INDEXES + 1] = {0};
	uint32_t id;
	size_t n;

	(void)state;
	assert_int_equal(wire_header_write(buf, sizeof(buf), 1, &neg, 1), -EINVAL);
	assert_int_equal(wire_header_write(buf, sizeof(buf), 1, deep, WIRE_MAX_INDEXES + 1),
			 -EINVAL);
	assert_int_equal(wire_header_write(buf, 5, 1, NULL, 0), -ENOSPC);
	assert_int_equal(wire_header_write(buf, 7, 1, (const int32_t[]){0, 0}, 2), -ENOSPC);
	/* the worst case fits WIRE_HEADER_MAX */
	for (size_t i = 0; i < WIRE_MAX_INDEXES; i++)
		deep[i] = INT32_MAX;
	assert_int_equal(wire_header_write(buf, sizeof(buf), 1, deep, WIRE_MAX_INDEXES),
			 WIRE_HEADER_MAX - 4); /* the count needs 1 byte, not 5 */

	/* wrong magic, too short, truncated varints, negative count or index, too deep */
	assert_int_equal(wire_header_read((const uint8_t[]){1, 0, 0, 0, 1, 0}, 6, &id, idx, 16, &n),
			 -EBADMSG);
	assert_int_equal(wire_header_read((const uint8_t[]){0, 0, 0, 0, 1}, 5, &id, idx, 16, &n),
			 -EBADMSG);
	assert_int_equal(
		wire_header_read((const uint8_t[]){0, 0, 0, 0, 1, 0x04, 0x00}, 7, &id, idx, 16, &n),
		-EBADMSG);
	assert_int_equal(
		wire_header_read((const uint8_t[]){0, 0, 0, 0, 1, 0x80}, 6, &id, idx, 16, &n),
		-EBADMSG);
	assert_int_equal(
		wire_header_read((const uint8_t[]){0, 0, 0, 0, 1, 0x01}, 6, &id, idx, 16, &n),
		-EBADMSG);
	assert_int_equal(
		wire_header_read((const uint8_t[]){0, 0, 0, 0, 1, 0x02, 0x01}, 7, &id, idx, 16, &n),
		-EBADMSG);
	assert_int_equal(
		wire_header_read((const uint8_t[]){0, 0, 0, 0, 1, 0x04, 0, 0}, 8, &id, idx, 1, &n),
		-EBADMSG);
	assert_int_equal(
		wire_header_read((const uint8_t[]){0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x7f}, 10,
				 &id, idx, 16, &n),
		-EBADMSG);
	/* an empty payload after the header is a valid (all-default) message */
	assert_int_equal(wire_header_read((const uint8_t[]){0, 0, 0, 0, 7, 0}, 6, &id, idx, 16, &n),
			 6);
	assert_int_equal(id, 7);
}

static struct registry *load(void)
{
	struct registry_config cfg = {.url = "http://127.0.0.1:9"};
	char err[256];
	uint8_t *buf;
	size_t len;
	struct registry *r;

	assert_int_equal(registry_read_file(REGISTRY_TEST_DESC, &buf, &len, err, sizeof(err)), 0);
	r = registry_new(&cfg, buf, len, err, sizeof(err));
	free(buf);
	assert_non_null(r);
	return r;
}

static void expect_path(struct registry *r, const char *msg, const int32_t *want, size_t n)
{
	int32_t idx[WIRE_MAX_INDEXES];
	size_t got;

	assert_int_equal(registry_message_indexes(r, msg, idx, WIRE_MAX_INDEXES, &got), 0);
	assert_int_equal(got, n);
	assert_memory_equal(idx, want, n * sizeof(*want));
}

static void test_message_indexes(void **state)
{
	struct registry *r = load();
	int32_t idx[WIRE_MAX_INDEXES];
	size_t n;

	(void)state;
	expect_path(r, "test.chat.v1.MessageSent", (const int32_t[]){0}, 1);
	expect_path(r, "test.chat.v1.MessageSent.Attachment", (const int32_t[]){0, 0}, 2);
	expect_path(r, "test.chat.v1.MessageDeleted", (const int32_t[]){1}, 1);
	expect_path(r, "test.common.v1.Tenant", (const int32_t[]){0}, 1);
	expect_path(r, "google.protobuf.Timestamp", (const int32_t[]){0}, 1);
	assert_int_equal(registry_message_indexes(r, "test.chat.v1.Nope", idx, 16, &n), -ENOENT);
	assert_int_equal(registry_message_indexes(r, "test.chat.v1", idx, 16, &n), -ENOENT);
	assert_int_equal(registry_message_indexes(r, "test.chat.v1.MessageSent.Nope", idx, 16, &n),
			 -ENOENT);
	assert_int_equal(registry_message_indexes(r, "chat.v1.MessageSent", idx, 16, &n), -ENOENT);
	assert_int_equal(
		registry_message_indexes(r, "test.chat.v1.MessageSent.Attachment", idx, 1, &n),
		-E2BIG);
	registry_free(r);
}

static void test_new_refuses(void **state)
{
	struct registry_config cfg = {.url = "ftp://x"};
	const uint8_t junk[] = {0xff, 0xff, 0xff};
	char err[256];

	(void)state;
	assert_null(registry_new(&cfg, junk, sizeof(junk), err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	cfg.url = "http://127.0.0.1:1";
	assert_null(registry_new(&cfg, junk, sizeof(junk), err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, "FileDescriptorSet"));
	assert_int_equal(registry_read_file("/nonexistent/x.desc", NULL, NULL, err, sizeof(err)),
			 -ENOENT);
	registry_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wire_vectors),
		cmocka_unit_test(test_wire_errors),
		cmocka_unit_test(test_message_indexes),
		cmocka_unit_test(test_new_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
