/* SPDX-License-Identifier: MIT */
/*
 * msg: what travels in the rings between the stages.
 *
 * Ring record types (struct ring_rec.type) and their payloads:
 *
 *   MSG_REC_SOURCE  ingest -> decrypt -> map   a source message: id, attributes, body
 *   MSG_REC_EVENT   map -> produce             one Kafka record: topic, key, headers, value,
 *                                              its catalog type, its place (index/count)
 *                                              among the events made from its source message,
 *                                              and that message's received_ns (for latency);
 *                                              count 0 marks a source message that gave no
 *                                              event (filtered): nothing to send, only the ack
 *   MSG_REC_DEAD    any stage -> produce       a dead letter: stage, reason, and the source
 *                                              message exactly as received (still encrypted)
 *   MSG_REC_ACK     produce -> ingest          the seq is in Kafka (no payload)
 *
 * Every payload starts with a fixed header of lengths; variable parts
 * follow in order, unpadded. Decoders check every length against the
 * record, so a corrupt record is refused, never read past. Key/value lists
 * (attributes, headers) are encoded as repeated {u16 key_len, u32 val_len,
 * key, value}.
 */
#ifndef FERRY_COMMON_MSG_H
#define FERRY_COMMON_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shm/ring.h"

enum msg_rec {
	MSG_REC_SOURCE = RING_REC_USER,
	MSG_REC_EVENT,
	MSG_REC_DEAD,
	MSG_REC_ACK,
};

enum msg_source {
	MSG_SOURCE_REPLAY = 1,
	MSG_SOURCE_SQS = 2,
	MSG_SOURCE_PUBSUB = 3,
	MSG_SOURCE_DLQ = 4, /* dead letters sent again (common/dlq.h), always MSG_F_REPLAYED */
};

/*
 * The name of an enum msg_source ("replay", "sqs", "pubsub", "dlq-replay"),
 * "unknown" for any other value. Takes 32 bits because the shared segment
 * keeps a source's kind in 32 bits: a torn or foreign value is "unknown",
 * never a truncated valid one.
 */
const char *msg_source_name(uint32_t source);

struct msg_bytes {
	const void *p;
	uint32_t len;
};

/* A decoded (or to-be-encoded) source message. Views into the record. */
struct msg_source_view {
	uint16_t source;      /* enum msg_source */
	uint16_t flags;	      /* MSG_F_* */
	uint32_t source_idx;  /* which queue / subscription / file */
	uint64_t received_ns; /* CLOCK_REALTIME when ingest took it in, 0: unknown */
	struct msg_bytes id;
	struct msg_bytes attrs; /* encoded key/value list */
	struct msg_bytes body;
	/*
	 * Past decrypt (MSG_F_PLAINTEXT): the body as received, still
	 * encrypted, so that a later stage's dead letter carries it instead
	 * of the plaintext and can be replayed. Empty before decrypt.
	 */
	struct msg_bytes orig;
};

#define MSG_F_REPLAYED	0x1 /* came back from the dead-letter topic */
#define MSG_F_PLAINTEXT 0x2 /* body decrypted by ferry: never to the dead-letter topic */

/*
 * Bytes map leaves free right before an event's value, so that produce can
 * write the Schema Registry wire header (common/wire.h: magic, id, message
 * indexes) in place and hand librdkafka header + payload as one contiguous
 * value without copying. 16 bytes hold magic, id and up to 10 one-byte
 * indexes; the catalog needs 6 or 8 (produce copies when a header is longer).
 */
#define MSG_EVENT_ROOM	   16
#define MSG_EVENT_ROOM_MAX 255 /* what a decoder accepts */

struct msg_event_view {
	uint16_t index; /* 0..count-1 among the events of its source message */
	uint16_t count; /* events made from the source message; 0: none (a marker) */
	uint16_t type;	/* catalog type (enum catalog_type, workers/map/catalog.h), 0: none */
	uint16_t room;	/* bytes free before value (encoded as zeros), 0..MSG_EVENT_ROOM_MAX */
	struct msg_bytes topic;
	struct msg_bytes key;
	struct msg_bytes headers; /* encoded key/value list */
	struct msg_bytes value;
	uint64_t received_ns; /* the source message's receipt (CLOCK_REALTIME), 0: unknown */
};

struct msg_dead_view {
	uint16_t stage;		 /* enum shm_worker_kind of the stage that gave up */
	struct msg_bytes reason; /* text, no plaintext ever */
	struct msg_source_view msg;
	struct msg_bytes raw; /* the whole encoded source message */
};

struct msg_kv {
	struct msg_bytes key;
	struct msg_bytes value;
};

/* Whether b holds exactly the string s. */
static inline int msg_bytes_is(struct msg_bytes b, const char *s)
{
	size_t n = strlen(s);

	return b.len == n && !memcmp(b.p, s, n);
}

/* Bytes an encoded key/value pair takes. */
static inline uint32_t msg_kv_size(uint32_t klen, uint32_t vlen)
{
	return 6 + klen + vlen;
}

/*
 * Append a key/value pair at buf[*pos], cap bytes in all. Returns 0 or
 * -ENOBUFS (nothing written).
 */
int msg_kv_put(void *buf, size_t cap, size_t *pos, const void *k, uint32_t klen, const void *v,
	       uint32_t vlen);

/*
 * Iterate an encoded list: *pos starts at 0. Returns 1 with kv filled, 0 at
 * the end, -EBADMSG if the list is malformed.
 */
int msg_kv_next(struct msg_bytes list, size_t *pos, struct msg_kv *kv);

/* Find key in an encoded list. Returns 1 (found, *ret set), 0, or -EBADMSG. */
int msg_kv_find(struct msg_bytes list, const char *key, struct msg_bytes *ret);

/* Bytes the encoded form of m (or e, or d) takes. */
uint32_t msg_source_size(const struct msg_source_view *m);
uint32_t msg_event_size(const struct msg_event_view *e);
uint32_t msg_dead_size(uint32_t reason_len, uint32_t raw_len);

/*
 * Encode into dst (at least the *_size() bytes). Return the bytes written
 * or -ENOBUFS when cap is short.
 */
int64_t msg_source_encode(void *dst, size_t cap, const struct msg_source_view *m);
int64_t msg_event_encode(void *dst, size_t cap, const struct msg_event_view *e);
int64_t msg_dead_encode(void *dst, size_t cap, uint16_t stage, const char *reason, const void *raw,
			uint32_t raw_len);

/*
 * Set the received_ns of an encoded source message (type MSG_REC_SOURCE) or
 * of the source message inside a dead letter (MSG_REC_DEAD), in place: for
 * messages encoded ahead of their receipt (replay files). Returns 0,
 * -EINVAL (another type) or -EBADMSG (not such a record).
 */
int msg_set_received(uint16_t type, void *p, uint32_t len, uint64_t received_ns);

/*
 * Decode a record payload. Return 0 or -EBADMSG. An event with count 0 (the
 * marker of a source message that gave no event) has index 0, type 0, no
 * topic and no value, or is refused.
 */
int msg_source_decode(const void *p, uint32_t len, struct msg_source_view *ret);
int msg_event_decode(const void *p, uint32_t len, struct msg_event_view *ret);
int msg_dead_decode(const void *p, uint32_t len, struct msg_dead_view *ret);

#endif
