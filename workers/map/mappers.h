/* SPDX-License-Identifier: MIT */
/*
 * mappers: what the per-legacy-type mapper functions (workers/map/mappers/) share.
 * Each gets the parsed event and the common metadata already built, reads
 * its payload with the ljson getters, and calls mapper_emit() once per
 * catalog event, or mapper_filter() to give nothing.
 */
#ifndef FERRY_MAP_MAPPERS_H
#define FERRY_MAP_MAPPERS_H

#include <errno.h>
#include <stdio.h>

#include "ferry/chat/v1/message.pb-c.h"
#include "ferry/common/v1/common.pb-c.h"
#include "ferry/room/v1/membership.pb-c.h"
#include "ferry/room/v1/room.pb-c.h"
#include "ferry/social/v1/connection.pb-c.h"
#include "workers/map/catalog.h"
#include "workers/map/ljson.h"
#include "workers/map/mapper.h"

/* Longest strings the catalog takes (longer ones are out of range). */
#define NAME_MAX_LEN 1024
#define TEXT_MAX_LEN (192 * 1024)
#define ID_MAX_LEN   128

struct legacy_ctx {
	struct mapper *m;
	struct lj *d;
	int root;	 /* the event object */
	int payload;	 /* payload.<type's key> */
	const char *pre; /* its path, for reasons: "payload.messageSent" */
	Ferry__Common__V1__EventMeta *meta;
};

typedef int (*legacy_map_fn)(struct legacy_ctx *c);

/* Pack msg as a catalog event of type keyed "<tenant>/<entity>". Returns 0 or -errno. */
int mapper_emit(struct legacy_ctx *c, uint16_t type, const ProtobufCMessage *msg,
		const char *entity);

/* Give no event for this legacy event, because why (counted). Returns 0. */
int mapper_filter(struct legacy_ctx *c, const char *why);

/*
 * A user object (userId required; names optional; displayName made of
 * firstName and lastName when absent). NULL when absent or failed.
 */
Ferry__Common__V1__UserRef *map_user(struct lj *d, int obj, const char *pre, const char *key,
				     enum lj_need need);

/*
 * The "stream" object of obj (required): its id normalised, its kind.
 * *ret_post is set when the legacy stream type is POST (a wall post).
 */
Ferry__Common__V1__StreamRef *map_stream(struct lj *d, int obj, const char *pre, int *ret_post);

/* One function per legacy type (mappers/<type>.c). */
int map_message_sent(struct legacy_ctx *c);
int map_message_suppressed(struct legacy_ctx *c);
int map_room_created(struct legacy_ctx *c);
int map_room_updated(struct legacy_ctx *c);
int map_room_deactivated(struct legacy_ctx *c);
int map_user_joined_room(struct legacy_ctx *c);
int map_user_left_room(struct legacy_ctx *c);
int map_room_member_promoted_to_owner(struct legacy_ctx *c);
int map_connection_requested(struct legacy_ctx *c);
int map_connection_accepted(struct legacy_ctx *c);

#endif
