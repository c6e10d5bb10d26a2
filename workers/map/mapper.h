/* SPDX-License-Identifier: MIT */
/*
 * mapper: one legacy JSON event (the plaintext of a source message) into
 * zero, one or several catalog events, each a packed protobuf-c message
 * with its catalog type, topic and key.
 *
 * Each legacy type has its own mapper function (workers/map/mappers/),
 * registered in one table (mapper.c). The legacy event's type is its
 * "type" field (older producers: "eventType"). Keys are "<tenant>/<entity>"
 * so that one entity's events stay in order on one partition: the stream
 * (conversation) for message, room and membership events, the pair of users
 * for connection events.
 *
 * A mapper holds everything it needs (token array, arena, outputs): mapping
 * allocates nothing. Outputs stay valid until the next mapper_map().
 */
#ifndef FERRY_MAP_MAPPER_H
#define FERRY_MAP_MAPPER_H

#include <stddef.h>
#include <stdint.h>

#define MAPPER_EVENTS_MAX 8
#define MAPPER_INPUT_MAX  (256 * 1024) /* bytes of legacy JSON mapped at most */

struct mapper;

struct mapper_event {
	uint16_t type; /* enum catalog_type */
	const char *topic;
	const char *key;
	uint32_t key_len;
	const void *value; /* the packed protobuf message, no wire-format prefix */
	uint32_t value_len;
};

struct mapper_stats {
	uint64_t in;	   /* legacy events of this type seen */
	uint64_t events;   /* catalog events made from them */
	uint64_t filtered; /* legacy events that gave no catalog event, on purpose */
	uint64_t dead;	   /* legacy events refused (dead letters) */
};

/* A mapper, or NULL with errno set. */
struct mapper *mapper_new(void);
/* Accepts NULL. */
void mapper_free(struct mapper *m);

/*
 * Map the legacy event json (len bytes) of tenant. Returns the number of
 * catalog events (0: filtered, see mapper_filtered()), read them with
 * mapper_event(); or -EBADMSG / -ERANGE / -E2BIG with *reason naming the
 * field ("map: payload.userJoinedRoom.affectedUser: missing required
 * field"). The reason never quotes the event's content.
 */
int mapper_map(struct mapper *m, const char *tenant, uint32_t tenant_len, const void *json,
	       uint32_t len, const char **reason);

/* The i-th event of the last mapper_map() (i below what it returned). */
const struct mapper_event *mapper_event(const struct mapper *m, unsigned i);

/* Why the last legacy event gave nothing, or NULL. */
const char *mapper_filtered(const struct mapper *m);

/* The legacy type name of the last event ("MESSAGESENT"), or NULL when unknown. */
const char *mapper_legacy_type(const struct mapper *m);

/* Legacy types known, their names, and per type counters (n: unknown or unreadable). */
unsigned mapper_legacy_count(void);
const char *mapper_legacy_name(unsigned i);
const struct mapper_stats *mapper_stats(const struct mapper *m, unsigned i);

#endif
