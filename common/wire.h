/* SPDX-License-Identifier: MIT */
/*
 * wire: the Confluent Schema Registry wire format of a Protobuf record value,
 * as Confluent's serializers (Java, Go, JavaScript, .NET) write it:
 *
 *   byte 0       magic, 0
 *   bytes 1..4   schema id, 32-bit big-endian
 *   then         message indexes: the path of the message type in its
 *                .proto file (index among the file's top-level messages,
 *                then among that message's nested types, ...), as a zigzag
 *                varint count followed by that many zigzag varints; the
 *                common path [0] (the file's first message) is written as
 *                the single byte 0 (a count of 0 means [0])
 *   then         the Protobuf payload
 *
 * Examples: [0] -> 00; [1] -> 02 02; [0,0] -> 04 00 00; [64] -> 02 80 01.
 * (The pre-zigzag format of older clients, e.g. python confluent-kafka 1.7,
 * is not this one and is not accepted.)
 *
 * Errors: -errno.
 */
#ifndef FERRY_COMMON_WIRE_H
#define FERRY_COMMON_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC	 0
#define WIRE_MAX_INDEXES 16 /* nesting depth we accept; real catalogs use 1 or 2 */
/* magic + id + count varint + WIRE_MAX_INDEXES varints of at most 5 bytes */
#define WIRE_HEADER_MAX (1 + 4 + 5 * (1 + WIRE_MAX_INDEXES))

/*
 * Write the header (magic, id, indexes) into buf. n = 0 is taken as [0].
 * Returns its length (at most WIRE_HEADER_MAX); -EINVAL for a negative index
 * or n > WIRE_MAX_INDEXES; -ENOSPC when cap is too small.
 */
int wire_header_write(uint8_t *buf, size_t cap, uint32_t schema_id, const int32_t *indexes,
		      size_t n);

/*
 * Read a header. On success returns the payload's offset in buf (> 0) and
 * fills *ret_id, ret_indexes[0..*ret_n) ([0] for the single 0 byte).
 * -EBADMSG: wrong magic, truncated, an over-long or negative varint, more
 * than min(cap, WIRE_MAX_INDEXES) indexes.
 */
int wire_header_read(const uint8_t *buf, size_t len, uint32_t *ret_id, int32_t *ret_indexes,
		     size_t cap, size_t *ret_n);

#endif
