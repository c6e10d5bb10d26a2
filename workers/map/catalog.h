/* SPDX-License-Identifier: MIT */
/*
 * catalog: the compiled event catalog (proto/), one entry per catalog
 * message, indexed by enum catalog_type. The index travels in the event
 * record (struct msg_event_view.type) so produce finds the schema without
 * parsing anything; 0 means "no catalog event".
 *
 * Topics follow one rule, checked by test-map: the package without its
 * "ferry." prefix, a dot, the message name in kebab case:
 * ferry.chat.v1.MessageSent -> chat.v1.message-sent.
 */
#ifndef FERRY_MAP_CATALOG_H
#define FERRY_MAP_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

enum catalog_type {
	CATALOG_NONE = 0,
	CATALOG_CHAT_MESSAGE_SENT,
	CATALOG_CHAT_MESSAGE_SUPPRESSED,
	CATALOG_ROOM_CREATED,
	CATALOG_ROOM_UPDATED,
	CATALOG_ROOM_DEACTIVATED,
	CATALOG_ROOM_MEMBER_JOINED,
	CATALOG_ROOM_MEMBER_LEFT,
	CATALOG_ROOM_MEMBER_ROLE_CHANGED,
	CATALOG_SOCIAL_CONNECTION_REQUESTED,
	CATALOG_SOCIAL_CONNECTION_ACCEPTED,
	CATALOG_N
};

struct catalog_entry {
	const ProtobufCMessageDescriptor *desc; /* protobuf-c's, full name in desc->name */
	const char *topic;			/* Kafka topic of this event */
	const char *
		proto_file; /* its file in the descriptor set, e.g. "ferry/chat/v1/message.proto" */
};

/*
 * The compiled FileDescriptorSet (protoc --include_imports of proto/, the
 * build's FERRY_CATALOG_DESC), embedded at build time (proto/embed.cmake):
 * link ferry_catalog_fds. What the Schema Registry is given and what
 * decoders read, so no other schema can be served than the compiled one.
 */
extern const uint8_t catalog_fds[];
extern const size_t catalog_fds_len;

/* The entry of type, or NULL for CATALOG_NONE and anything out of range. */
const struct catalog_entry *catalog_get(uint16_t type);

/* The type whose descriptor is desc, or CATALOG_NONE. */
uint16_t catalog_type_of(const ProtobufCMessageDescriptor *desc);

/*
 * The topic the naming rule gives desc, into buf (cap bytes). Returns its
 * length or -ENOBUFS.
 */
int catalog_topic_rule(const ProtobufCMessageDescriptor *desc, char *buf, size_t cap);

#endif
