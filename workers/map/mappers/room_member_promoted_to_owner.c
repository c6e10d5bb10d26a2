/* SPDX-License-Identifier: MIT */
/* ROOMMEMBERPROMOTEDTOOWNER -> room.v1.MemberRoleChanged (one to one), role OWNER. */
#include "workers/map/mappers.h"

int map_room_member_promoted_to_owner(struct legacy_ctx *c)
{
	Ferry__Room__V1__MemberRoleChanged ev = FERRY__ROOM__V1__MEMBER_ROLE_CHANGED__INIT;
	struct lj *d = c->d;

	ev.meta = c->meta;
	ev.stream = map_stream(d, c->payload, c->pre, NULL);
	ev.member = map_user(d, c->payload, c->pre, "affectedUser", LJ_REQUIRED);
	ev.role = FERRY__ROOM__V1__ROLE__ROLE_OWNER;
	if (lj_failed(d))
		return d->failed;
	return mapper_emit(c, CATALOG_ROOM_MEMBER_ROLE_CHANGED, &ev.base, ev.stream->stream_id);
}
