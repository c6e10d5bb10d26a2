/* SPDX-License-Identifier: MIT */
/* MESSAGESUPPRESSED -> chat.v1.MessageSuppressed (one to one). */
#include "workers/map/mappers.h"

int map_message_suppressed(struct legacy_ctx *c)
{
	Ferry__Chat__V1__MessageSuppressed ev = FERRY__CHAT__V1__MESSAGE_SUPPRESSED__INIT;
	struct lj *d = c->d;

	ev.meta = c->meta;
	/* The envelope repeats a "messageId" of its own: the payload's is the one suppressed. */
	ev.message_id =
		(char *)lj_string(d, c->payload, c->pre, "messageId", LJ_REQUIRED, ID_MAX_LEN);
	ev.stream = map_stream(d, c->payload, c->pre, NULL);
	if (lj_failed(d))
		return d->failed;
	return mapper_emit(c, CATALOG_CHAT_MESSAGE_SUPPRESSED, &ev.base, ev.stream->stream_id);
}
