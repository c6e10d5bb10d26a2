/* SPDX-License-Identifier: MIT */
/* USERJOINEDROOM -> room.v1.MemberJoined (one to one), role MEMBER. */
#include "workers/map/mappers.h"

int map_user_joined_room(struct legacy_ctx *c)
{
	Ferry__Room__V1__MemberJoined ev = FERRY__ROOM__V1__MEMBER_JOINED__INIT;
	struct lj *d = c->d;

	ev.meta = c->meta;
	ev.stream = map_stream(d, c->payload, c->pre, NULL);
	ev.member = map_user(d, c->payload, c->pre, "affectedUser", LJ_REQUIRED);
	ev.role = FERRY__ROOM__V1__ROLE__ROLE_MEMBER;
	if (lj_failed(d))
		return d->failed;
	return mapper_emit(c, CATALOG_ROOM_MEMBER_JOINED, &ev.base, ev.stream->stream_id);
}
