/* SPDX-License-Identifier: MIT */
/*
 * ROOMUPDATED -> room.v1.RoomUpdated with changed_fields, or nothing when
 * nothing changed: some producers send the update on every save, with
 * the old properties beside the new; a property equal (as JSON text) to
 * its old value did not change.
 */
#include <string.h>

#include "workers/map/mappers/room_props.h"

static int changed(struct lj *d, int now, int old, const char *key)
{
	int a = lj_find(d, now, key), b;

	if (a < 0 || lj_absent(d, now, key))
		return 0;
	if (old < 0)
		return 1;
	b = lj_find(d, old, key);
	if (b < 0)
		return 1;
	return d->tok[a].type != d->tok[b].type ||
	       d->tok[a].end - d->tok[a].start != d->tok[b].end - d->tok[b].start ||
	       memcmp(d->js + d->tok[a].start, d->js + d->tok[b].start,
		      (size_t)(d->tok[a].end - d->tok[a].start));
}

int map_room_updated(struct legacy_ctx *c)
{
	static const char pre[] = "payload.roomUpdated.newRoomProperties";
	static const char *const fields[][2] = {
		{"name", "name"},	   {"description", "description"}, {"public", "visibility"},
		{"readOnly", "read_only"}, {"keywords", "labels"},
	};
	Ferry__Room__V1__RoomUpdated ev = FERRY__ROOM__V1__ROOM_UPDATED__INIT;
	char *names[5];
	struct lj *d = c->d;
	int props, old;

	ev.meta = c->meta;
	ev.stream = map_stream(d, c->payload, c->pre, NULL);
	props = lj_object(d, c->payload, c->pre, "newRoomProperties", LJ_OPTIONAL);
	old = lj_object(d, c->payload, c->pre, "oldRoomProperties", LJ_OPTIONAL);
	if (lj_failed(d))
		return d->failed;
	for (unsigned i = 0; i < 5; i++)
		if (props >= 0 && changed(d, props, old, fields[i][0]))
			names[ev.n_changed_fields++] = (char *)fields[i][1];
	if (!ev.n_changed_fields)
		return mapper_filter(c, "room update without a change");
	ev.changed_fields = names;
	ev.name = (char *)lj_string(d, props, pre, "name", LJ_OPTIONAL, NAME_MAX_LEN);
	ev.description = (char *)lj_string(d, props, pre, "description", LJ_OPTIONAL, TEXT_MAX_LEN);
	ev.visibility = room_visibility(d, props, pre);
	ev.read_only = lj_bool(d, props, pre, "readOnly", LJ_OPTIONAL, 0);
	ev.labels = room_labels(d, props, pre, &ev.n_labels);
	if (lj_failed(d))
		return d->failed;
	if (!ev.name)
		ev.name = (char *)protobuf_c_empty_string;
	if (!ev.description)
		ev.description = (char *)protobuf_c_empty_string;
	return mapper_emit(c, CATALOG_ROOM_UPDATED, &ev.base, ev.stream->stream_id);
}
