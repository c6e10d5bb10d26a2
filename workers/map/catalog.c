/* SPDX-License-Identifier: MIT */
#include "workers/map/catalog.h"

#include <errno.h>
#include <string.h>

#include "ferry/chat/v1/message.pb-c.h"
#include "ferry/room/v1/membership.pb-c.h"
#include "ferry/room/v1/room.pb-c.h"
#include "ferry/social/v1/connection.pb-c.h"

#define CHAT   "ferry/chat/v1/message.proto"
#define ROOM   "ferry/room/v1/room.proto"
#define MEMBER "ferry/room/v1/membership.proto"
#define SOCIAL "ferry/social/v1/connection.proto"

static const struct catalog_entry catalog[CATALOG_N] = {
	[CATALOG_CHAT_MESSAGE_SENT] = {&ferry__chat__v1__message_sent__descriptor,
				       "chat.v1.message-sent", CHAT},
	[CATALOG_CHAT_MESSAGE_SUPPRESSED] = {&ferry__chat__v1__message_suppressed__descriptor,
					     "chat.v1.message-suppressed", CHAT},
	[CATALOG_ROOM_CREATED] = {&ferry__room__v1__room_created__descriptor,
				  "room.v1.room-created", ROOM},
	[CATALOG_ROOM_UPDATED] = {&ferry__room__v1__room_updated__descriptor,
				  "room.v1.room-updated", ROOM},
	[CATALOG_ROOM_DEACTIVATED] = {&ferry__room__v1__room_deactivated__descriptor,
				      "room.v1.room-deactivated", ROOM},
	[CATALOG_ROOM_MEMBER_JOINED] = {&ferry__room__v1__member_joined__descriptor,
					"room.v1.member-joined", MEMBER},
	[CATALOG_ROOM_MEMBER_LEFT] = {&ferry__room__v1__member_left__descriptor,
				      "room.v1.member-left", MEMBER},
	[CATALOG_ROOM_MEMBER_ROLE_CHANGED] = {&ferry__room__v1__member_role_changed__descriptor,
					      "room.v1.member-role-changed", MEMBER},
	[CATALOG_SOCIAL_CONNECTION_REQUESTED] =
		{&ferry__social__v1__connection_requested__descriptor,
		 "social.v1.connection-requested", SOCIAL},
	[CATALOG_SOCIAL_CONNECTION_ACCEPTED] = {&ferry__social__v1__connection_accepted__descriptor,
						"social.v1.connection-accepted", SOCIAL},
};

const struct catalog_entry *catalog_get(uint16_t type)
{
	if (type == CATALOG_NONE || type >= CATALOG_N)
		return NULL;
	return &catalog[type];
}

uint16_t catalog_type_of(const ProtobufCMessageDescriptor *desc)
{
	for (uint16_t t = 1; t < CATALOG_N; t++)
		if (catalog[t].desc == desc)
			return t;
	return CATALOG_NONE;
}

int catalog_topic_rule(const ProtobufCMessageDescriptor *desc, char *buf, size_t cap)
{
	const char *pkg = desc->package_name, *name = desc->short_name;
	size_t n = 0;

	if (!strncmp(pkg, "ferry.", 6))
		pkg += 6;
	for (; *pkg; pkg++) {
		if (n + 1 >= cap)
			return -ENOBUFS;
		buf[n++] = *pkg;
	}
	for (size_t i = 0; name[i]; i++) {
		int upper = name[i] >= 'A' && name[i] <= 'Z';

		if (n + 3 >= cap)
			return -ENOBUFS;
		if (i == 0)
			buf[n++] = '.';
		else if (upper)
			buf[n++] = '-';
		buf[n++] = upper ? (char)(name[i] - 'A' + 'a') : name[i];
	}
	buf[n] = 0;
	return (int)n;
}
