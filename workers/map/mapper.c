/* SPDX-License-Identifier: MIT */
#include "workers/map/mapper.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "workers/map/mappers.h"

#define TOKENS_MAX 4096
#define ARENA_SIZE (4 * MAPPER_INPUT_MAX)

struct legacy_type {
	const char *name;	 /* the legacy "type" */
	const char *payload_key; /* its payload object: payload.<payload_key> */
	const char *pre;	 /* "payload.<payload_key>", for reasons */
	legacy_map_fn map;
};

#define LEGACY(name, key, fn)                                                                      \
	{                                                                                          \
		name, key, "payload." key, fn                                                      \
	}

/* The legacy types ferry maps: adding one is one line here. */
static const struct legacy_type legacy[] = {
	LEGACY("MESSAGESENT", "messageSent", map_message_sent),
	LEGACY("MESSAGESUPPRESSED", "messageSuppressed", map_message_suppressed),
	LEGACY("ROOMCREATED", "roomCreated", map_room_created),
	LEGACY("ROOMUPDATED", "roomUpdated", map_room_updated),
	LEGACY("ROOMDEACTIVATED", "roomDeactivated", map_room_deactivated),
	LEGACY("USERJOINEDROOM", "userJoinedRoom", map_user_joined_room),
	LEGACY("USERLEFTROOM", "userLeftRoom", map_user_left_room),
	LEGACY("ROOMMEMBERPROMOTEDTOOWNER", "roomMemberPromotedToOwner",
	       map_room_member_promoted_to_owner),
	LEGACY("CONNECTIONREQUESTED", "connectionRequested", map_connection_requested),
	LEGACY("CONNECTIONACCEPTED", "connectionAccepted", map_connection_accepted),
};

#define N_LEGACY (sizeof(legacy) / sizeof(legacy[0]))

struct mapper {
	struct lj doc;
	const char *tenant;
	uint32_t tenant_len;
	int legacy; /* index of the current event's type, -1: unknown */
	struct mapper_event ev[MAPPER_EVENTS_MAX];
	unsigned n_ev;
	const char *filtered;
	struct mapper_stats stats[N_LEGACY + 1];
	jsmntok_t tok[TOKENS_MAX];
	_Alignas(16) unsigned char arena[ARENA_SIZE];
};

struct mapper *mapper_new(void)
{
	struct mapper *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	lj_init(&m->doc, m->tok, TOKENS_MAX, m->arena, sizeof(m->arena));
	m->legacy = -1;
	return m;
}

void mapper_free(struct mapper *m)
{
	free(m);
}

unsigned mapper_legacy_count(void)
{
	return N_LEGACY;
}

const char *mapper_legacy_name(unsigned i)
{
	return i < N_LEGACY ? legacy[i].name : NULL;
}

const struct mapper_stats *mapper_stats(const struct mapper *m, unsigned i)
{
	return i <= N_LEGACY ? &m->stats[i] : NULL;
}

const struct mapper_event *mapper_event(const struct mapper *m, unsigned i)
{
	return i < m->n_ev ? &m->ev[i] : NULL;
}

const char *mapper_filtered(const struct mapper *m)
{
	return m->filtered;
}

const char *mapper_legacy_type(const struct mapper *m)
{
	return m->legacy >= 0 ? legacy[m->legacy].name : NULL;
}

int mapper_emit(struct legacy_ctx *c, uint16_t type, const ProtobufCMessage *msg,
		const char *entity)
{
	struct mapper *m = c->m;
	const struct catalog_entry *ce = catalog_get(type);
	struct mapper_event *e;
	size_t size, elen = strlen(entity);
	uint8_t *buf;
	char *key;

	if (!ce || ce->desc != msg->descriptor)
		return lj_fail(c->d, -EINVAL, NULL, "catalog", "mapper emitted a wrong type");
	if (m->n_ev == MAPPER_EVENTS_MAX)
		return lj_fail(c->d, -E2BIG, NULL, "catalog", "too many events from one");
	size = protobuf_c_message_get_packed_size(msg);
	buf = lj_alloc(c->d, size ? size : 1);
	key = lj_alloc(c->d, m->tenant_len + 1 + elen + 1);
	if (!buf || !key)
		return c->d->failed;
	protobuf_c_message_pack(msg, buf);
	memcpy(key, m->tenant, m->tenant_len);
	key[m->tenant_len] = '/';
	memcpy(key + m->tenant_len + 1, entity, elen);
	e = &m->ev[m->n_ev++];
	e->type = type;
	e->topic = ce->topic;
	e->key = key;
	e->key_len = m->tenant_len + 1 + (uint32_t)elen;
	e->value = buf;
	e->value_len = (uint32_t)size;
	return 0;
}

int mapper_filter(struct legacy_ctx *c, const char *why)
{
	c->m->filtered = why;
	return 0;
}

Ferry__Common__V1__UserRef *map_user(struct lj *d, int obj, const char *pre, const char *key,
				     enum lj_need need)
{
	int u = lj_object(d, obj, pre, key, need);
	Ferry__Common__V1__UserRef *r;
	const char *first, *last;
	char path[96];

	if (u < 0)
		return NULL;
	lj_path(path, sizeof(path), pre, key);
	r = lj_alloc(d, sizeof(*r));
	if (!r)
		return NULL;
	ferry__common__v1__user_ref__init(r);
	r->user_id = (char *)lj_user_id(d, u, path, "userId", LJ_REQUIRED);
	r->display_name = (char *)lj_string(d, u, path, "displayName", LJ_OPTIONAL, NAME_MAX_LEN);
	r->email = (char *)lj_string(d, u, path, "email", LJ_OPTIONAL, NAME_MAX_LEN);
	/* The datafeed spells it "userName" for initiators, "username" elsewhere. */
	r->username = (char *)lj_string(d, u, path, "username", LJ_OPTIONAL, NAME_MAX_LEN);
	if (!r->username)
		r->username = (char *)lj_string(d, u, path, "userName", LJ_OPTIONAL, NAME_MAX_LEN);
	if (!r->display_name) {
		first = lj_string(d, u, path, "firstName", LJ_OPTIONAL, NAME_MAX_LEN);
		last = lj_string(d, u, path, "lastName", LJ_OPTIONAL, NAME_MAX_LEN);
		if (first && last) {
			size_t fl = strlen(first), ll = strlen(last);
			char *dn = lj_alloc(d, fl + ll + 2);

			if (dn) {
				memcpy(dn, first, fl);
				dn[fl] = ' ';
				memcpy(dn + fl + 1, last, ll + 1);
			}
			r->display_name = dn;
		} else {
			r->display_name = (char *)(first ? first : last);
		}
	}
	if (lj_failed(d))
		return NULL;
	if (!r->display_name)
		r->display_name = (char *)protobuf_c_empty_string;
	if (!r->email)
		r->email = (char *)protobuf_c_empty_string;
	if (!r->username)
		r->username = (char *)protobuf_c_empty_string;
	return r;
}

Ferry__Common__V1__StreamRef *map_stream(struct lj *d, int obj, const char *pre, int *ret_post)
{
	static const char *const kinds[] = {"ROOM", "IM", "MIM", "POST"};
	static const Ferry__Common__V1__StreamKind to[] = {
		FERRY__COMMON__V1__STREAM_KIND__STREAM_KIND_ROOM,
		FERRY__COMMON__V1__STREAM_KIND__STREAM_KIND_DIRECT,
		FERRY__COMMON__V1__STREAM_KIND__STREAM_KIND_GROUP_DIRECT,
		FERRY__COMMON__V1__STREAM_KIND__STREAM_KIND_UNSPECIFIED,
	};
	int s = lj_object(d, obj, pre, "stream", LJ_REQUIRED), k;
	Ferry__Common__V1__StreamRef *r;
	char path[96];

	if (ret_post)
		*ret_post = 0;
	if (s < 0)
		return NULL;
	lj_path(path, sizeof(path), pre, "stream");
	r = lj_alloc(d, sizeof(*r));
	if (!r)
		return NULL;
	ferry__common__v1__stream_ref__init(r);
	r->stream_id = (char *)lj_stream_id(d, s, path, "streamId", LJ_REQUIRED);
	k = lj_enum(d, s, path, "streamType", LJ_OPTIONAL, kinds, 4, -1);
	if (lj_failed(d))
		return NULL;
	r->kind = k < 0 ? FERRY__COMMON__V1__STREAM_KIND__STREAM_KIND_UNSPECIFIED : to[k];
	if (ret_post)
		*ret_post = k == 3;
	return r;
}

/* The legacy type's index, or -1 (and a failure). */
static int legacy_of(struct lj *d)
{
	/* Producers before 2019 wrote "eventType". */
	const char *key = lj_find(d, 0, "type") >= 0 ? "type" : "eventType";
	int t = lj_find(d, 0, key);

	if (t < 0 || lj_absent(d, 0, key)) {
		lj_fail(d, -EBADMSG, NULL, "type", "missing required field");
		return -1;
	}
	if (d->tok[t].type != JSMN_STRING) {
		lj_fail(d, -EBADMSG, NULL, key, "wrong type (want a string)");
		return -1;
	}
	for (unsigned i = 0; i < N_LEGACY; i++)
		if (lj_tok_is(d, t, legacy[i].name))
			return (int)i;
	lj_fail(d, -EBADMSG, NULL, key, "unknown legacy type");
	return -1;
}

static Ferry__Common__V1__EventMeta *meta_of(struct mapper *m, int type)
{
	struct lj *d = &m->doc;
	Ferry__Common__V1__EventMeta *meta = lj_alloc(d, sizeof(*meta));
	int initiator;

	if (!meta)
		return NULL;
	ferry__common__v1__event_meta__init(meta);
	meta->event_id = (char *)lj_string(d, 0, "", "id", LJ_REQUIRED, ID_MAX_LEN);
	meta->tenant_id = lj_strdup(d, m->tenant, m->tenant_len);
	meta->occurred_at = lj_time(d, 0, "", "timestamp", LJ_REQUIRED);
	meta->legacy_type = (char *)legacy[type].name;
	initiator = lj_object(d, 0, "", "initiator", LJ_REQUIRED);
	meta->actor = map_user(d, initiator, "initiator", "user", LJ_REQUIRED);
	return lj_failed(d) ? NULL : meta;
}

int mapper_map(struct mapper *m, const char *tenant, uint32_t tenant_len, const void *json,
	       uint32_t len, const char **reason)
{
	struct lj *d = &m->doc;
	struct legacy_ctx c = {.m = m, .d = d};
	struct mapper_stats *st;
	int r, payload;

	m->n_ev = 0;
	m->filtered = NULL;
	m->legacy = -1;
	m->tenant = tenant;
	m->tenant_len = tenant_len;
	if (len > MAPPER_INPUT_MAX) {
		m->stats[N_LEGACY].in++;
		m->stats[N_LEGACY].dead++;
		*reason = "map: legacy event too large";
		return -E2BIG;
	}
	r = lj_parse(d, json, len);
	if (r == 0)
		m->legacy = legacy_of(d);
	st = &m->stats[m->legacy >= 0 ? (unsigned)m->legacy : N_LEGACY];
	st->in++;
	if (r < 0 || m->legacy < 0)
		goto fail;
	if (!tenant_len) {
		lj_fail(d, -EBADMSG, NULL, "tenant", "missing (no tenant attribute)");
		goto fail;
	}
	c.meta = meta_of(m, m->legacy);
	payload = lj_object(d, 0, "", "payload", LJ_REQUIRED);
	c.root = 0;
	c.pre = legacy[m->legacy].pre;
	c.payload = lj_object(d, payload, "payload", legacy[m->legacy].payload_key, LJ_REQUIRED);
	if (!c.meta || c.payload < 0)
		goto fail;
	r = legacy[m->legacy].map(&c);
	if (r < 0 || lj_failed(d)) {
		if (!lj_failed(d))
			lj_fail(d, r, NULL, legacy[m->legacy].name, "mapping failed");
		goto fail;
	}
	if (m->n_ev == 0) {
		if (!m->filtered)
			m->filtered = "no event";
		st->filtered++;
	}
	st->events += m->n_ev;
	return (int)m->n_ev;
fail:
	m->n_ev = 0;
	st->dead++;
	*reason = d->err;
	return d->failed ? d->failed : -EBADMSG;
}
