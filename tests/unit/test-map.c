/* SPDX-License-Identifier: MIT */
/*
 * The mappers: every legacy sample in tests/data/legacy mapped, each
 * catalog event unpacked again with protobuf-c and compared field by
 * field; every class of bad input (not JSON, unknown type, missing
 * required field, wrong type, out of range) refused with a reason naming
 * the field; the catalog's topics follow their rule.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ferry/chat/v1/message.pb-c.h"
#include "ferry/room/v1/membership.pb-c.h"
#include "ferry/room/v1/room.pb-c.h"
#include "ferry/social/v1/connection.pb-c.h"
#include "tests/tools/legacy.h"
#include "workers/map/catalog.h"
#include "workers/map/ljson.h"
#include "workers/map/mapper.h"

#define TENANT "acme"

static char *slurp(const char *name, uint32_t *ret_len)
{
	char path[512];
	FILE *f;
	long n;
	char *buf;

	snprintf(path, sizeof(path), "%s/%s", LEGACY_DATA_DIR, name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = 0;
	fclose(f);
	*ret_len = (uint32_t)n;
	return buf;
}

/* Unpack event i of m, checking its type, topic and key on the way. */
static ProtobufCMessage *unpack(struct mapper *m, unsigned i, uint16_t type, const char *key)
{
	const struct mapper_event *e = mapper_event(m, i);
	const struct catalog_entry *ce = catalog_get(type);
	ProtobufCMessage *msg;

	assert_non_null(e);
	assert_non_null(ce);
	assert_int_equal(e->type, type);
	assert_string_equal(e->topic, ce->topic);
	assert_int_equal(e->key_len, strlen(key));
	assert_memory_equal(e->key, key, e->key_len);
	msg = protobuf_c_message_unpack(ce->desc, NULL, e->value_len, e->value);
	assert_non_null(msg);
	return msg;
}

static void check_ts(const Google__Protobuf__Timestamp *ts, int64_t sec, int32_t nanos)
{
	assert_non_null(ts);
	assert_int_equal(ts->seconds, sec);
	assert_int_equal(ts->nanos, nanos);
}

static void check_meta(const Ferry__Common__V1__EventMeta *meta, const char *id, const char *legacy,
		       int64_t sec, int32_t nanos, const char *actor)
{
	assert_non_null(meta);
	assert_string_equal(meta->event_id, id);
	assert_string_equal(meta->tenant_id, TENANT);
	assert_string_equal(meta->legacy_type, legacy);
	check_ts(meta->occurred_at, sec, nanos);
	assert_non_null(meta->actor);
	assert_string_equal(meta->actor->user_id, actor);
}

static int map_file(struct mapper *m, const char *name)
{
	uint32_t len;
	char *js = slurp(name, &len);
	const char *reason = NULL;
	int n = mapper_map(m, TENANT, (uint32_t)strlen(TENANT), js, len, &reason);

	if (n < 0)
		fail_msg("%s: %s", name, reason);
	free(js); /* outputs live in the mapper, not in the input */
	return n;
}

static int setup(void **state)
{
	*state = mapper_new();
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	mapper_free(*state);
	return 0;
}

#define STREAM "ksuDd0xGnAGW1B4plItFyn___qRfGLBsdA"
#define ROOM   "r00m-new_Stream"
#define ADA    "71811853189212"
#define GRACE  "344147139494862"
#define ALAN   "9876543210"

static void test_message_sent(void **state)
{
	struct mapper *m = *state;
	Ferry__Chat__V1__MessageSent *e;

	assert_int_equal(map_file(m, "message-sent.json"), 1);
	assert_string_equal(mapper_legacy_type(m), "MESSAGESENT");
	e = (Ferry__Chat__V1__MessageSent *)unpack(m, 0, CATALOG_CHAT_MESSAGE_SENT,
						   TENANT "/" STREAM);
	check_meta(e->meta, "V2Jdlz", "MESSAGESENT", 1700000123, 456000000, ADA);
	assert_string_equal(e->meta->actor->username, "ada"); /* from "userName" */
	assert_string_equal(e->message_id, "qsOkkR1Z170QKVu54QU8WX___qRaa2y5bw");
	/* Standard base64 with padding, normalised. */
	assert_string_equal(e->stream->stream_id, STREAM);
	assert_int_equal(e->stream->kind, FERRY__COMMON__V1__STREAM_KIND__STREAM_KIND_ROOM);
	assert_string_equal(e->author->user_id, ADA); /* a string in the legacy event */
	assert_string_equal(e->author->display_name, "Ada Lovelace"); /* first + last */
	assert_string_equal(e->author->username, "ada");
	check_ts(e->sent_at, 1700000123, 400000000); /* a string of millis */
	assert_non_null(strstr(e->body, "data-format=\"PresentationML\""));
	assert_non_null(strstr(e->body, "#q4</span> \xe2\x98\x95</div>")); /* \u2615 */
	assert_int_equal(e->n_mentioned_user_ids, 1);
	assert_string_equal(e->mentioned_user_ids[0], "71811853189213");
	assert_int_equal(e->n_cashtags, 1);
	assert_string_equal(e->cashtags[0], "IBM");
	assert_int_equal(e->n_hashtags, 1);
	assert_string_equal(e->hashtags[0], "q4");
	assert_int_equal(e->n_attachments, 1);
	assert_string_equal(e->attachments[0]->attachment_id, "internal_71811853189212%2Fatt0");
	assert_string_equal(e->attachments[0]->name, "minutes.pdf");
	assert_int_equal(e->attachments[0]->size_bytes, 48213);
	assert_false(e->external_recipients);
	protobuf_c_message_free_unpacked(&e->base, NULL);
}

static void test_filtered(void **state)
{
	struct mapper *m = *state;
	const struct mapper_stats *st;

	assert_int_equal(map_file(m, "message-sent-post.json"), 0);
	assert_string_equal(mapper_filtered(m), "wall post");
	assert_int_equal(map_file(m, "room-updated-nochange.json"), 0);
	assert_string_equal(mapper_filtered(m), "room update without a change");
	st = mapper_stats(m, 0); /* MESSAGESENT */
	assert_string_equal(mapper_legacy_name(0), "MESSAGESENT");
	assert_int_equal(st->in, 1);
	assert_int_equal(st->filtered, 1);
	assert_int_equal(st->events, 0);
	/* The next event is not filtered: the flag does not stick. */
	assert_int_equal(map_file(m, "room-deactivated.json"), 1);
	assert_null(mapper_filtered(m));
}

static void test_message_suppressed(void **state)
{
	struct mapper *m = *state;
	Ferry__Chat__V1__MessageSuppressed *e;

	assert_int_equal(map_file(m, "message-suppressed.json"), 1);
	e = (Ferry__Chat__V1__MessageSuppressed *)unpack(m, 0, CATALOG_CHAT_MESSAGE_SUPPRESSED,
							 TENANT "/" STREAM);
	check_meta(e->meta, "V2Jdm0", "MESSAGESUPPRESSED", 1700000300, 0, "8933531976380");
	assert_string_equal(e->message_id, "QasBvaApRVqAIGPcqUTOAn___qRaa6hwdA");
	assert_string_equal(e->stream->stream_id, STREAM);
	assert_int_equal(e->stream->kind, FERRY__COMMON__V1__STREAM_KIND__STREAM_KIND_UNSPECIFIED);
	protobuf_c_message_free_unpacked(&e->base, NULL);
}

static void test_room_created(void **state)
{
	struct mapper *m = *state;
	Ferry__Room__V1__RoomCreated *e;
	Ferry__Room__V1__MemberJoined *j;
	const char *key = TENANT "/r00m-new_Stream";

	/* One legacy event, two catalog events, in order, on one key. */
	assert_int_equal(map_file(m, "room-created.json"), 2);
	e = (Ferry__Room__V1__RoomCreated *)unpack(m, 0, CATALOG_ROOM_CREATED, key);
	check_meta(e->meta, "Rc7TqA", "ROOMCREATED", 1700000400, 0, ADA);
	assert_string_equal(e->stream->stream_id, "r00m-new_Stream");
	assert_string_equal(e->name, "Q4 planning");
	assert_string_equal(e->description, "Where Q4 gets planned");
	assert_int_equal(e->visibility, FERRY__ROOM__V1__VISIBILITY__VISIBILITY_PRIVATE);
	assert_false(e->read_only);
	assert_false(e->external);
	assert_int_equal(e->n_labels, 2);
	assert_string_equal(e->labels[0]->key, "region");
	assert_string_equal(e->labels[0]->value, "emea");
	assert_string_equal(e->labels[1]->key, "cost-center");
	assert_string_equal(e->labels[1]->value, "4711");
	assert_string_equal(e->creator->user_id, ADA);
	assert_string_equal(e->creator->email, "ada@example.com");
	check_ts(e->created_at, 1700000400, 0); /* ISO-8601 */
	j = (Ferry__Room__V1__MemberJoined *)unpack(m, 1, CATALOG_ROOM_MEMBER_JOINED, key);
	check_meta(j->meta, "Rc7TqA", "ROOMCREATED", 1700000400, 0, ADA);
	assert_string_equal(j->member->user_id, ADA);
	assert_int_equal(j->role, FERRY__ROOM__V1__ROLE__ROLE_OWNER);
	assert_string_equal(j->stream->stream_id, "r00m-new_Stream");
	protobuf_c_message_free_unpacked(&e->base, NULL);
	protobuf_c_message_free_unpacked(&j->base, NULL);
}

static void test_room_created_old(void **state)
{
	struct mapper *m = *state;
	Ferry__Room__V1__RoomCreated *e;

	/* "eventType", no creator, no date, description null: defaults from the event. */
	assert_int_equal(map_file(m, "room-created-old.json"), 2);
	e = (Ferry__Room__V1__RoomCreated *)unpack(m, 0, CATALOG_ROOM_CREATED,
						   TENANT "/b2xkcm9vbQ");
	check_meta(e->meta, "Rc0ld1", "ROOMCREATED", 1500000000, 0, GRACE);
	assert_string_equal(e->meta->actor->display_name, "Grace Hopper");
	assert_string_equal(e->description, "");
	assert_int_equal(e->visibility, FERRY__ROOM__V1__VISIBILITY__VISIBILITY_PUBLIC);
	assert_true(e->read_only);
	assert_true(e->external);
	assert_string_equal(e->creator->user_id, GRACE);
	check_ts(e->created_at, 1500000000, 0);
	protobuf_c_message_free_unpacked(&e->base, NULL);
}

static void test_room_updated(void **state)
{
	struct mapper *m = *state;
	Ferry__Room__V1__RoomUpdated *e;

	assert_int_equal(map_file(m, "room-updated.json"), 1);
	e = (Ferry__Room__V1__RoomUpdated *)unpack(m, 0, CATALOG_ROOM_UPDATED, TENANT "/" ROOM);
	check_meta(e->meta, "Ru9x1a", "ROOMUPDATED", 1700000500, 0, ADA);
	assert_int_equal(e->n_changed_fields, 2);
	assert_string_equal(e->changed_fields[0], "name");
	assert_string_equal(e->changed_fields[1], "read_only");
	assert_string_equal(e->name, "Q4 planning (final)");
	assert_true(e->read_only);
	assert_int_equal(e->visibility, FERRY__ROOM__V1__VISIBILITY__VISIBILITY_PRIVATE);
	assert_int_equal(e->n_labels, 1);
	protobuf_c_message_free_unpacked(&e->base, NULL);
}

static void test_room_deactivated(void **state)
{
	struct mapper *m = *state;
	Ferry__Room__V1__RoomDeactivated *e;

	assert_int_equal(map_file(m, "room-deactivated.json"), 1);
	e = (Ferry__Room__V1__RoomDeactivated *)unpack(m, 0, CATALOG_ROOM_DEACTIVATED,
						       TENANT "/" ROOM);
	/* 2023-11-14T23:00:00+01:00 is 22:00 UTC. */
	check_meta(e->meta, "Rd1", "ROOMDEACTIVATED", 1699999200, 0, ADA);
	assert_string_equal(e->meta->actor->email, "");
	protobuf_c_message_free_unpacked(&e->base, NULL);
}

static void test_membership(void **state)
{
	struct mapper *m = *state;
	Ferry__Room__V1__MemberJoined *j;
	Ferry__Room__V1__MemberLeft *l;
	Ferry__Room__V1__MemberRoleChanged *r;

	assert_int_equal(map_file(m, "user-joined-room.json"), 1);
	j = (Ferry__Room__V1__MemberJoined *)unpack(m, 0, CATALOG_ROOM_MEMBER_JOINED,
						    TENANT "/" ROOM);
	check_meta(j->meta, "Uj2", "USERJOINEDROOM", 1700000600, 0, ADA);
	assert_string_equal(j->member->user_id, GRACE); /* leading zeros dropped */
	assert_string_equal(j->member->display_name, "Grace Hopper");
	assert_string_equal(j->member->email, "grace@example.com");
	assert_string_equal(j->member->username, "");
	assert_int_equal(j->role, FERRY__ROOM__V1__ROLE__ROLE_MEMBER);
	protobuf_c_message_free_unpacked(&j->base, NULL);

	assert_int_equal(map_file(m, "user-left-room.json"), 1);
	l = (Ferry__Room__V1__MemberLeft *)unpack(m, 0, CATALOG_ROOM_MEMBER_LEFT, TENANT "/" ROOM);
	check_meta(l->meta, "Ul3", "USERLEFTROOM", 1700000700, 0, GRACE);
	assert_string_equal(l->member->user_id, GRACE);
	assert_string_equal(l->member->display_name, "");
	assert_int_equal(l->stream->kind, FERRY__COMMON__V1__STREAM_KIND__STREAM_KIND_UNSPECIFIED);
	protobuf_c_message_free_unpacked(&l->base, NULL);

	assert_int_equal(map_file(m, "room-member-promoted-to-owner.json"), 1);
	r = (Ferry__Room__V1__MemberRoleChanged *)unpack(m, 0, CATALOG_ROOM_MEMBER_ROLE_CHANGED,
							 TENANT "/" ROOM);
	check_meta(r->meta, "Rp4", "ROOMMEMBERPROMOTEDTOOWNER", 1700000800, 0, ADA);
	assert_string_equal(r->member->user_id, GRACE);
	assert_int_equal(r->role, FERRY__ROOM__V1__ROLE__ROLE_OWNER);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void test_connections(void **state)
{
	struct mapper *m = *state;
	Ferry__Social__V1__ConnectionRequested *q;
	Ferry__Social__V1__ConnectionAccepted *a;
	/* Both on one key, whoever initiated each: the lower id first. */
	const char *key = TENANT "/" ALAN ":" ADA;

	assert_int_equal(map_file(m, "connection-requested.json"), 1);
	q = (Ferry__Social__V1__ConnectionRequested *)unpack(
		m, 0, CATALOG_SOCIAL_CONNECTION_REQUESTED, key);
	check_meta(q->meta, "Cr5", "CONNECTIONREQUESTED", 1700000900, 0, ADA);
	assert_string_equal(q->requester->user_id, ADA);
	assert_string_equal(q->addressee->user_id, ALAN);
	assert_string_equal(q->addressee->display_name, "Alan Turing");
	protobuf_c_message_free_unpacked(&q->base, NULL);

	assert_int_equal(map_file(m, "connection-accepted.json"), 1);
	a = (Ferry__Social__V1__ConnectionAccepted *)unpack(
		m, 0, CATALOG_SOCIAL_CONNECTION_ACCEPTED, key);
	check_meta(a->meta, "Ca6", "CONNECTIONACCEPTED", 1700001000, 0, ALAN);
	assert_string_equal(a->requester->user_id, ADA);
	assert_string_equal(a->addressee->user_id, ALAN);
	protobuf_c_message_free_unpacked(&a->base, NULL);
}

/* --- bad input: every class, each reason naming the field ------------- */

#define ENV(type, payload)                                                                         \
	"{\"id\":\"x1\",\"timestamp\":1700000000000,\"type\":\"" type "\","                        \
	"\"initiator\":{\"user\":{\"userId\":1}},\"payload\":" payload "}"
#define JOINED(user)                                                                               \
	ENV("USERJOINEDROOM", "{\"userJoinedRoom\":{\"stream\":{\"streamId\":\"abc\"},"            \
			      "\"affectedUser\":" user "}}")

static const struct bad {
	const char *json;
	int err;
	const char *reason;
} bad[] = {
	/* not JSON */
	{"", -EBADMSG, "map: not JSON"},
	{"not json", -EBADMSG, "map: not JSON"},
	{"[1,2]", -EBADMSG, "map: not JSON (not an object"},
	{"{\"id\":", -EBADMSG, "map: not JSON (truncated"},
	{"{\"id\":tru}", -EBADMSG, "map: not JSON (bad literal"},
	{"{\"id\":01}", -EBADMSG, "map: not JSON (bad literal"},
	{"{\"id\":1} {}", -EBADMSG, "map: not JSON (trailing data"},
	{"{\"id\":1} x", -EBADMSG, "map: not JSON"},
	{"{1:2}", -EBADMSG, "map: not JSON"},
	{"{\"a\"}", -EBADMSG, "map: not JSON"},
	{"{\"a\":\"\\q\"}", -EBADMSG, "map: not JSON"},
	/* unknown or missing type */
	{"{\"id\":\"x\"}", -EBADMSG, "map: type: missing required field"},
	{"{\"type\":null}", -EBADMSG, "map: type: missing required field"},
	{"{\"type\":7}", -EBADMSG, "map: type: wrong type"},
	{ENV("SOCIALMESSAGE", "{}"), -EBADMSG, "map: type: unknown legacy type"},
	{ENV("messagesent", "{}"), -EBADMSG, "map: type: unknown legacy type"},
	/* missing required fields */
	{"{\"type\":\"ROOMDEACTIVATED\",\"timestamp\":1700000000000,\"initiator\":{\"user\":{"
	 "\"userId\":1}},"
	 "\"payload\":{\"roomDeactivated\":{\"stream\":{\"streamId\":\"a\"}}}}",
	 -EBADMSG, "map: id: missing required field"},
	{ENV("ROOMDEACTIVATED", "{}"), -EBADMSG,
	 "map: payload.roomDeactivated: missing required field"},
	{ENV("ROOMDEACTIVATED", "{\"roomDeactivated\":{}}"), -EBADMSG,
	 "map: payload.roomDeactivated.stream: missing required field"},
	{ENV("ROOMDEACTIVATED", "{\"roomDeactivated\":{\"stream\":{\"streamId\":null}}}"), -EBADMSG,
	 "map: payload.roomDeactivated.stream.streamId: missing required field"},
	{JOINED("null"), -EBADMSG,
	 "map: payload.userJoinedRoom.affectedUser: missing required field"},
	{JOINED("{\"displayName\":\"x\"}"), -EBADMSG,
	 "map: payload.userJoinedRoom.affectedUser.userId: missing required field"},
	{ENV("MESSAGESENT",
	     "{\"messageSent\":{\"message\":{\"messageId\":\"m\",\"timestamp\":1700000000000,"
	     "\"user\":{\"userId\":1},\"stream\":{\"streamId\":\"s\"}}}}"),
	 -EBADMSG, "map: payload.messageSent.message.message: missing required field"},
	{ENV("CONNECTIONREQUESTED", "{\"connectionRequested\":{}}"), -EBADMSG,
	 "map: payload.connectionRequested.toUser: missing required field"},
	{"{\"id\":\"x\",\"type\":\"ROOMDEACTIVATED\",\"timestamp\":1700000000000,\"payload\":{}}",
	 -EBADMSG, "map: initiator: missing required field"},
	/* wrong types */
	{JOINED("\"grace\""), -EBADMSG,
	 "map: payload.userJoinedRoom.affectedUser: wrong type (want an object, got a string)"},
	{JOINED("{\"userId\":true}"), -EBADMSG,
	 "map: payload.userJoinedRoom.affectedUser.userId: wrong type (want an integer, got a "
	 "boolean)"},
	{JOINED("{\"userId\":\"12a\"}"), -EBADMSG,
	 "map: payload.userJoinedRoom.affectedUser.userId: wrong type"},
	{JOINED("{\"userId\":1.5}"), -EBADMSG,
	 "map: payload.userJoinedRoom.affectedUser.userId: wrong type"},
	{JOINED("{\"userId\":7,\"email\":[]}"), -EBADMSG,
	 "map: payload.userJoinedRoom.affectedUser.email: wrong type (want a string, got an "
	 "array)"},
	{"{\"id\":\"x1\",\"timestamp\":{},\"type\":\"ROOMDEACTIVATED\"}", -EBADMSG,
	 "map: timestamp: wrong type"},
	{"{\"id\":\"x1\",\"timestamp\":\"yesterday\",\"type\":\"ROOMDEACTIVATED\"}", -EBADMSG,
	 "map: timestamp: wrong type (want epoch milliseconds or an ISO-8601 time)"},
	{ENV("ROOMUPDATED",
	     "{\"roomUpdated\":{\"stream\":{\"streamId\":\"a\"},\"newRoomProperties\":"
	     "{\"readOnly\":\"yes\"}}}"),
	 -EBADMSG, "map: payload.roomUpdated.newRoomProperties.readOnly: wrong type"},
	{ENV("ROOMCREATED", "{\"roomCreated\":{\"stream\":{\"streamId\":\"a\"},\"roomProperties\":"
			    "{\"name\":\"n\",\"keywords\":{}}}}"),
	 -EBADMSG, "map: payload.roomCreated.roomProperties.keywords: wrong type (want an array"},
	{ENV("MESSAGESENT",
	     "{\"messageSent\":{\"message\":{\"messageId\":\"m\",\"timestamp\":1700000000000,"
	     "\"message\":\"x\",\"user\":{\"userId\":1},\"stream\":{\"streamId\":\"s\"},"
	     "\"data\":\"{not json\"}}}"),
	 -EBADMSG, "map: payload.messageSent.message.data: not JSON"},
	/* out of range */
	{JOINED("{\"userId\":0}"), -ERANGE,
	 "map: payload.userJoinedRoom.affectedUser.userId: out of range"},
	{JOINED("{\"userId\":-5}"), -ERANGE,
	 "map: payload.userJoinedRoom.affectedUser.userId: out of range"},
	{JOINED("{\"userId\":99999999999999999999999}"), -ERANGE,
	 "map: payload.userJoinedRoom.affectedUser.userId: out of range"},
	{"{\"id\":\"x1\",\"timestamp\":1,\"type\":\"ROOMDEACTIVATED\"}", -ERANGE,
	 "map: timestamp: out of range"},
	{"{\"id\":\"x1\",\"timestamp\":\"2023-02-29T10:00:00Z\",\"type\":\"ROOMDEACTIVATED\"}",
	 -ERANGE, "map: timestamp: out of range"},
	{"{\"id\":\"x1\",\"timestamp\":\"2150-01-01T00:00:00Z\",\"type\":\"ROOMDEACTIVATED\"}",
	 -ERANGE, "map: timestamp: out of range"},
	{ENV("ROOMDEACTIVATED", "{\"roomDeactivated\":{\"stream\":{\"streamId\":\"a b\"}}}"),
	 -ERANGE, "map: payload.roomDeactivated.stream.streamId: out of range (not base64)"},
	{ENV("ROOMDEACTIVATED", "{\"roomDeactivated\":{\"stream\":{\"streamId\":\"==\"}}}"),
	 -ERANGE, "map: payload.roomDeactivated.stream.streamId: out of range"},
	{ENV("ROOMDEACTIVATED", "{\"roomDeactivated\":{\"stream\":{\"streamId\":\"a\","
				"\"streamType\":\"CHANNEL\"}}}"),
	 -ERANGE, "map: payload.roomDeactivated.stream.streamType: out of range"},
	{ENV("CONNECTIONREQUESTED", "{\"connectionRequested\":{\"toUser\":{\"userId\":1}}}"),
	 -ERANGE, "map: payload.connectionRequested.toUser.userId: out of range"},
};

static void test_bad_input(void **state)
{
	struct mapper *m = *state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *reason = NULL;
		int n = mapper_map(m, TENANT, 4, bad[i].json, (uint32_t)strlen(bad[i].json),
				   &reason);

		if (n != bad[i].err || !reason ||
		    strncmp(reason, bad[i].reason, strlen(bad[i].reason)))
			fail_msg("case %zu (%s): got %d '%s', want %d '%s'", i, bad[i].json, n,
				 reason ? reason : "(none)", bad[i].err, bad[i].reason);
	}
	/* Counted as dead: the unknown ones apart. */
	assert_true(mapper_stats(m, mapper_legacy_count())->dead >= 10);
}

static void test_no_tenant_and_too_large(void **state)
{
	struct mapper *m = *state;
	const char *reason = NULL;
	uint32_t len;
	char *js = slurp("room-deactivated.json", &len), *big;

	assert_int_equal(mapper_map(m, "", 0, js, len, &reason), -EBADMSG);
	assert_string_equal(reason, "map: tenant: missing (no tenant attribute)");
	free(js);
	big = malloc(MAPPER_INPUT_MAX + 2);
	assert_non_null(big);
	memset(big, ' ', MAPPER_INPUT_MAX + 1);
	assert_int_equal(mapper_map(m, "t", 1, big, MAPPER_INPUT_MAX + 1, &reason), -E2BIG);
	/* Many tokens: refused, not overflowed. */
	big[0] = '{';
	memcpy(big + 1, "\"a\":[", 5);
	for (size_t i = 6; i + 2 < 20006; i += 2)
		memcpy(big + i, "1,", 2);
	memcpy(big + 20004, "1]}", 3);
	assert_int_equal(mapper_map(m, "t", 1, big, 20007, &reason), -E2BIG);
	assert_non_null(strstr(reason, "too large"));
	free(big);
}

/* Escapes: every JSON escape, surrogate pairs, a lone surrogate. */
static void test_strings(void **state)
{
	struct mapper *m = *state;
	const char *reason = NULL;
	static const char js[] = ENV(
		"USERJOINEDROOM", "{\"userJoinedRoom\":{\"stream\":{\"streamId\":\"abc\"},"
				  "\"affectedUser\":{\"userId\":5,\"displayName\":"
				  "\"q\\\"b\\\\s\\/n\\nt\\tu\\u00e9p\\ud83d\\ude00l\\ud800x\"}}}");
	Ferry__Room__V1__MemberJoined *j;

	assert_int_equal(mapper_map(m, TENANT, 4, js, sizeof(js) - 1, &reason), 1);
	j = (Ferry__Room__V1__MemberJoined *)unpack(m, 0, CATALOG_ROOM_MEMBER_JOINED,
						    TENANT "/abc");
	assert_string_equal(j->member->display_name,
			    "q\"b\\s/n\nt\tu\xc3\xa9p\xf0\x9f\x98\x80l\xef\xbf\xbdx");
	protobuf_c_message_free_unpacked(&j->base, NULL);
}

/* Every catalog topic follows the documented rule; types and descriptors agree. */
static void test_catalog(void **state)
{
	char topic[128];

	(void)state;
	assert_null(catalog_get(CATALOG_NONE));
	assert_null(catalog_get(CATALOG_N));
	for (uint16_t t = 1; t < CATALOG_N; t++) {
		const struct catalog_entry *ce = catalog_get(t);

		assert_non_null(ce);
		assert_true(catalog_topic_rule(ce->desc, topic, sizeof(topic)) > 0);
		assert_string_equal(ce->topic, topic);
		assert_int_equal(catalog_type_of(ce->desc), t);
		assert_non_null(strstr(ce->desc->name, "ferry."));
		assert_non_null(strstr(ce->proto_file, ".proto"));
	}
	assert_int_equal(catalog_topic_rule(&ferry__chat__v1__message_sent__descriptor, topic, 8),
			 -ENOBUFS);
}

/* The generator the pipeline tests use: every type it makes maps, as it says. */
static void test_generator(void **state)
{
	struct mapper *m = *state;
	char buf[LEGACY_EVENT_MAX];

	for (unsigned i = 0; i < 4 * LEGACY_NTYPES; i++) {
		const char *reason = NULL;
		int len = legacy_event(i, "t07", buf, sizeof(buf)), n;

		assert_true(len > 0);
		n = mapper_map(m, "t07", 3, buf, (uint32_t)len, &reason);
		if (n < 0)
			fail_msg("generated event %u: %s: %s", i, reason, buf);
		assert_int_equal(n, legacy_event_count(i));
		for (int k = 0; k < n; k++) {
			const struct mapper_event *e = mapper_event(m, (unsigned)k);

			assert_int_equal(strncmp(e->key, "t07/", 4), 0);
		}
	}
	assert_int_equal(legacy_event(0, "t07", buf, 10), -ENOBUFS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_message_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filtered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_suppressed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_room_created, setup, teardown),
		cmocka_unit_test_setup_teardown(test_room_created_old, setup, teardown),
		cmocka_unit_test_setup_teardown(test_room_updated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_room_deactivated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_membership, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_tenant_and_too_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strings, setup, teardown),
		cmocka_unit_test(test_catalog),
		cmocka_unit_test_setup_teardown(test_generator, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
