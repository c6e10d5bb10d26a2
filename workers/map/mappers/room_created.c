/* SPDX-License-Identifier: MIT */
/*
 * ROOMCREATED -> room.v1.RoomCreated and room.v1.MemberJoined (one to
 * many): the legacy feed never sent a join for the creator, who is the
 * room's first owner; the catalog says so explicitly.
 */
#include "workers/map/mappers/room_props.h"

int map_room_created(struct legacy_ctx *c)
{
	static const char pre[] = "payload.roomCreated.roomProperties";
	Ferry__Room__V1__RoomCreated ev = FERRY__ROOM__V1__ROOM_CREATED__INIT;
	Ferry__Room__V1__MemberJoined joined = FERRY__ROOM__V1__MEMBER_JOINED__INIT;
	struct lj *d = c->d;
	int props;
	int r;

	ev.meta = c->meta;
	ev.stream = map_stream(d, c->payload, c->pre, NULL);
	props = lj_object(d, c->payload, c->pre, "roomProperties", LJ_REQUIRED);
	ev.name = (char *)lj_string(d, props, pre, "name", LJ_REQUIRED, NAME_MAX_LEN);
	ev.description = (char *)lj_string(d, props, pre, "description", LJ_OPTIONAL, TEXT_MAX_LEN);
	ev.visibility = room_visibility(d, props, pre);
	ev.read_only = lj_bool(d, props, pre, "readOnly", LJ_OPTIONAL, 0);
	ev.external = lj_bool(d, props, pre, "external", LJ_OPTIONAL, 0);
	ev.labels = room_labels(d, props, pre, &ev.n_labels);
	/* Older producers left the creator and the date out: the initiator, the event's time. */
	ev.creator = map_user(d, props, pre, "creatorUser", LJ_OPTIONAL);
	ev.created_at = lj_time(d, props, pre, "createdDate", LJ_OPTIONAL);
	if (lj_failed(d))
		return d->failed;
	if (!ev.creator)
		ev.creator = c->meta->actor;
	if (!ev.created_at)
		ev.created_at = c->meta->occurred_at;
	if (!ev.description)
		ev.description = (char *)protobuf_c_empty_string;
	r = mapper_emit(c, CATALOG_ROOM_CREATED, &ev.base, ev.stream->stream_id);
	if (r < 0)
		return r;
	joined.meta = c->meta;
	joined.stream = ev.stream;
	joined.member = ev.creator;
	joined.role = FERRY__ROOM__V1__ROLE__ROLE_OWNER;
	return mapper_emit(c, CATALOG_ROOM_MEMBER_JOINED, &joined.base, ev.stream->stream_id);
}
