/* SPDX-License-Identifier: MIT */
/*
 * MESSAGESENT -> chat.v1.MessageSent (one to one), or nothing for wall
 * posts (stream type POST: the catalog does not carry them).
 *
 * Flattening: the legacy "data" field is a JSON document inside a string
 * (the message's entities); its mentions, hashtags and cashtags become
 * plain repeated fields.
 */
#include <errno.h>
#include <string.h>

#include "workers/map/mappers.h"

#define ENTITIES_MAX 64

struct tags {
	char *mention[ENTITIES_MAX], *hashtag[ENTITIES_MAX], *cashtag[ENTITIES_MAX];
	size_t n_mention, n_hashtag, n_cashtag;
};

/* One entity of the blob: {"type": "...", "id": [{"type": "...", "value": ...}]}. */
static void entity(struct lj *sub, int ent, struct tags *t)
{
	int ids, n, kind = -1;
	static const char *const kinds[] = {"com.symphony.user.mention", "org.symphonyoss.taxonomy",
					    "org.symphonyoss.fin.security"};

	if (sub->tok[ent].type != JSMN_OBJECT) {
		lj_fail(sub, -EBADMSG, "data", "entity", "wrong type (want an object)");
		return;
	}
	/* Entity types the catalog does not know are someone else's: skipped. */
	for (int k = 0; k < 3; k++)
		if (lj_tok_is(sub, lj_find(sub, ent, "type"), kinds[k]))
			kind = k;
	if (kind < 0)
		return;
	ids = lj_array(sub, ent, "data.entity", "id", LJ_REQUIRED, &n);
	for (int i = 0; i < n && !lj_failed(sub); i++) {
		int id = lj_elem(sub, ids, i);
		char **slot;

		if (kind == 0) {
			if (t->n_mention == ENTITIES_MAX)
				continue;
			slot = &t->mention[t->n_mention++];
			*slot = (char *)lj_user_id(sub, id, "data.entity.id", "value", LJ_REQUIRED);
		} else if (kind == 1) {
			if (t->n_hashtag == ENTITIES_MAX)
				continue;
			slot = &t->hashtag[t->n_hashtag++];
			*slot = (char *)lj_string(sub, id, "data.entity.id", "value", LJ_REQUIRED,
						  NAME_MAX_LEN);
		} else {
			if (t->n_cashtag == ENTITIES_MAX)
				continue;
			slot = &t->cashtag[t->n_cashtag++];
			*slot = (char *)lj_string(sub, id, "data.entity.id", "value", LJ_REQUIRED,
						  NAME_MAX_LEN);
		}
	}
}

/* Parse the entity blob with the rest of the caller's tokens and arena. */
static void entities(struct lj *d, int msg, const char *pre, struct tags *t)
{
	const char *blob = lj_string(d, msg, pre, "data", LJ_OPTIONAL, TEXT_MAX_LEN);
	size_t at = (d->arena_used + 15) & ~(size_t)15;
	struct lj sub;

	if (!blob || !*blob || at >= d->arena_cap)
		return;
	lj_init(&sub, d->tok + d->ntok, d->cap_tok - d->ntok, d->arena + at, d->arena_cap - at);
	/* The blob is keyed by entity name ("mention1"): the values are what counts. */
	if (lj_parse(&sub, blob, (uint32_t)strlen(blob)) == 0)
		for (int i = 0; i < sub.tok[0].size && !lj_failed(&sub); i++)
			entity(&sub, lj_member(&sub, 0, i), t);
	d->arena_used = at + sub.arena_used;
	if (lj_failed(&sub))
		lj_fail(d, sub.failed, pre, "data", "%s",
			!strncmp(sub.err, "map: ", 5) ? sub.err + 5 : sub.err);
}

static Ferry__Chat__V1__Attachment **attachments(struct lj *d, int msg, const char *pre,
						 size_t *ret_n)
{
	int arr, n;
	Ferry__Chat__V1__Attachment **list;

	*ret_n = 0;
	arr = lj_array(d, msg, pre, "attachments", LJ_OPTIONAL, &n);
	if (arr < 0 || n == 0)
		return NULL;
	list = lj_alloc(d, (size_t)n * sizeof(*list));
	if (!list)
		return NULL;
	for (int i = 0; i < n && !lj_failed(d); i++) {
		int a = lj_elem(d, arr, i);
		Ferry__Chat__V1__Attachment *at = lj_alloc(d, sizeof(*at));

		if (!at)
			return NULL;
		ferry__chat__v1__attachment__init(at);
		if (d->tok[a].type != JSMN_OBJECT) {
			lj_fail(d, -EBADMSG, pre, "attachments", "wrong type (want objects)");
			return NULL;
		}
		at->attachment_id =
			(char *)lj_string(d, a, "payload.messageSent.message.attachments", "id",
					  LJ_REQUIRED, ID_MAX_LEN);
		at->name = (char *)lj_string(d, a, "payload.messageSent.message.attachments",
					     "name", LJ_OPTIONAL, NAME_MAX_LEN);
		if (!at->name)
			at->name = (char *)protobuf_c_empty_string;
		at->size_bytes = (uint64_t)lj_int(d, a, "payload.messageSent.message.attachments",
						  "size", LJ_OPTIONAL, 0, INT64_MAX, 0);
		list[i] = at;
	}
	*ret_n = (size_t)n;
	return list;
}

int map_message_sent(struct legacy_ctx *c)
{
	static const char pre[] = "payload.messageSent.message";
	Ferry__Chat__V1__MessageSent ev = FERRY__CHAT__V1__MESSAGE_SENT__INIT;
	struct lj *d = c->d;
	struct tags t = {0};
	int msg = lj_object(d, c->payload, c->pre, "message", LJ_REQUIRED), post;

	ev.meta = c->meta;
	ev.message_id = (char *)lj_string(d, msg, pre, "messageId", LJ_REQUIRED, ID_MAX_LEN);
	ev.stream = map_stream(d, msg, pre, &post);
	if (post)
		return mapper_filter(c, "wall post");
	ev.author = map_user(d, msg, pre, "user", LJ_REQUIRED);
	ev.sent_at = lj_time(d, msg, pre, "timestamp", LJ_REQUIRED);
	ev.body = (char *)lj_string(d, msg, pre, "message", LJ_REQUIRED, TEXT_MAX_LEN);
	ev.external_recipients = lj_bool(d, msg, pre, "externalRecipients", LJ_OPTIONAL, 0);
	ev.attachments = attachments(d, msg, pre, &ev.n_attachments);
	entities(d, msg, pre, &t);
	if (lj_failed(d))
		return d->failed;
	ev.mentioned_user_ids = t.mention;
	ev.n_mentioned_user_ids = t.n_mention;
	ev.hashtags = t.hashtag;
	ev.n_hashtags = t.n_hashtag;
	ev.cashtags = t.cashtag;
	ev.n_cashtags = t.n_cashtag;
	return mapper_emit(c, CATALOG_CHAT_MESSAGE_SENT, &ev.base, ev.stream->stream_id);
}
