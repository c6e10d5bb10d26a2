/* SPDX-License-Identifier: MIT */
#include "common/wire.h"

#include <errno.h>

/* Protobuf's zigzag: small magnitudes of either sign stay short. */
static uint32_t zigzag(int32_t v)
{
	return ((uint32_t)v << 1) ^ (uint32_t)(v >> 31);
}

static int32_t unzigzag(uint32_t v)
{
	return (int32_t)((v >> 1) ^ (~(v & 1) + 1));
}

static int put_varint(uint8_t *buf, size_t cap, size_t *pos, uint32_t v)
{
	do {
		if (*pos >= cap)
			return -ENOSPC;
		buf[(*pos)++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return 0;
}

static int get_varint(const uint8_t *buf, size_t len, size_t *pos, uint32_t *ret)
{
	uint32_t v = 0;

	for (unsigned shift = 0; shift < 35; shift += 7) {
		if (*pos >= len)
			return -EBADMSG;
		uint8_t b = buf[(*pos)++];

		/* the fifth byte may carry only the top 4 bits of a 32-bit value */
		if (shift == 28 && (b & 0xf0))
			return -EBADMSG;
		v |= (uint32_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return 0;
		}
	}
	return -EBADMSG;
}

int wire_header_write(uint8_t *buf, size_t cap, uint32_t schema_id, const int32_t *indexes,
		      size_t n)
{
	size_t pos = 5;
	int rc;

	if (n > WIRE_MAX_INDEXES || (n && !indexes))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (indexes[i] < 0)
			return -EINVAL;
	if (cap < 6)
		return -ENOSPC;
	buf[0] = WIRE_MAGIC;
	buf[1] = (uint8_t)(schema_id >> 24);
	buf[2] = (uint8_t)(schema_id >> 16);
	buf[3] = (uint8_t)(schema_id >> 8);
	buf[4] = (uint8_t)schema_id;
	if (n == 0 || (n == 1 && indexes[0] == 0)) {
		buf[pos++] = 0;
		return (int)pos;
	}
	rc = put_varint(buf, cap, &pos, zigzag((int32_t)n));
	for (size_t i = 0; !rc && i < n; i++)
		rc = put_varint(buf, cap, &pos, zigzag(indexes[i]));
	return rc ? rc : (int)pos;
}

int wire_header_read(const uint8_t *buf, size_t len, uint32_t *ret_id, int32_t *ret_indexes,
		     size_t cap, size_t *ret_n)
{
	size_t pos = 5;
	uint32_t raw;
	int32_t count;

	if (!buf || len < 6 || buf[0] != WIRE_MAGIC || !ret_indexes || cap == 0)
		return -EBADMSG;
	*ret_id = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4];
	if (get_varint(buf, len, &pos, &raw))
		return -EBADMSG;
	count = unzigzag(raw);
	if (count == 0) {
		ret_indexes[0] = 0;
		*ret_n = 1;
		return (int)pos;
	}
	if (count < 0 || (size_t)count > cap || count > WIRE_MAX_INDEXES)
		return -EBADMSG;
	for (int32_t i = 0; i < count; i++) {
		if (get_varint(buf, len, &pos, &raw))
			return -EBADMSG;
		ret_indexes[i] = unzigzag(raw);
		if (ret_indexes[i] < 0)
			return -EBADMSG;
	}
	*ret_n = (size_t)count;
	return (int)pos;
}
