/* SPDX-License-Identifier: MIT */
/* ROOMDEACTIVATED -> room.v1.RoomDeactivated (one to one). */
#include "workers/map/mappers.h"

int map_room_deactivated(struct legacy_ctx *c)
{
	Ferry__Room__V1__RoomDeactivated ev = FERRY__ROOM__V1__ROOM_DEACTIVATED__INIT;
	struct lj *d = c->d;

	ev.meta = c->meta;
	ev.stream = map_stream(d, c->payload, c->pre, NULL);
	if (lj_failed(d))
		return d->failed;
	return mapper_emit(c, CATALOG_ROOM_DEACTIVATED, &ev.base, ev.stream->stream_id);
}
