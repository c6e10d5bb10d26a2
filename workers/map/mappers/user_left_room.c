/* SPDX-License-Identifier: MIT */
/* USERLEFTROOM -> room.v1.MemberLeft (one to one). */
#include "workers/map/mappers.h"

int map_user_left_room(struct legacy_ctx *c)
{
	Ferry__Room__V1__MemberLeft ev = FERRY__ROOM__V1__MEMBER_LEFT__INIT;
	struct lj *d = c->d;

	ev.meta = c->meta;
	ev.stream = map_stream(d, c->payload, c->pre, NULL);
	ev.member = map_user(d, c->payload, c->pre, "affectedUser", LJ_REQUIRED);
	if (lj_failed(d))
		return d->failed;
	return mapper_emit(c, CATALOG_ROOM_MEMBER_LEFT, &ev.base, ev.stream->stream_id);
}
