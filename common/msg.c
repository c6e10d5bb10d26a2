/* SPDX-License-Identifier: MIT */
#include "common/msg.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define SOURCE_MAGIC 0x32534d46u /* "FMS2": FMS1 lacked orig */
#define EVENT_MAGIC  0x34564546u /* "FEV4": FEV1-3 lacked the type, room, received_ns */
#define DEAD_MAGIC   0x31444c46u /* "FLD1" */

struct source_hdr {
	uint32_t magic;
	uint16_t source;
	uint16_t flags;
	uint32_t source_idx;
	uint32_t id_len;
	uint32_t attrs_len;
	uint32_t body_len;
	uint64_t received_ns;
	uint32_t orig_len; /* past decrypt: the body as received, after body */
	uint32_t pad;
};

struct event_hdr {
	uint32_t magic;
	uint16_t index;
	uint16_t count;
	uint16_t type;
	uint16_t room; /* bytes before the value left for produce's wire header */
	uint32_t topic_len;
	uint32_t key_len;
	uint32_t headers_len;
	uint32_t value_len;
	uint32_t pad;
	uint64_t received_ns; /* the source message's, for produce's delivery latency */
};

struct dead_hdr {
	uint32_t magic;
	uint16_t stage;
	uint16_t reason_len;
	uint32_t raw_len;
	uint32_t pad;
};

_Static_assert(sizeof(struct source_hdr) == 40, "source header");
_Static_assert(sizeof(struct event_hdr) == 40, "event header");
_Static_assert(sizeof(struct dead_hdr) == 16, "dead header");

int msg_kv_put(void *buf, size_t cap, size_t *pos, const void *k, uint32_t klen, const void *v,
	       uint32_t vlen)
{
	unsigned char *p = (unsigned char *)buf + *pos;
	uint16_t kl = (uint16_t)klen;

	if (klen > UINT16_MAX || *pos > cap || msg_kv_size(klen, vlen) > cap - *pos)
		return -ENOBUFS;
	memcpy(p, &kl, 2);
	memcpy(p + 2, &vlen, 4);
	memcpy(p + 6, k, klen);
	if (vlen)
		memcpy(p + 6 + klen, v, vlen);
	*pos += msg_kv_size(klen, vlen);
	return 0;
}

int msg_kv_next(struct msg_bytes list, size_t *pos, struct msg_kv *kv)
{
	const unsigned char *p = (const unsigned char *)list.p + *pos;
	size_t left;
	uint16_t kl;
	uint32_t vl;

	if (*pos == list.len)
		return 0;
	if (*pos > list.len)
		return -EBADMSG;
	left = list.len - *pos;
	if (left < 6)
		return -EBADMSG;
	memcpy(&kl, p, 2);
	memcpy(&vl, p + 2, 4);
	if ((uint64_t)kl + vl > left - 6)
		return -EBADMSG;
	kv->key.p = p + 6;
	kv->key.len = kl;
	kv->value.p = p + 6 + kl;
	kv->value.len = vl;
	*pos += 6 + (size_t)kl + vl;
	return 1;
}

int msg_kv_find(struct msg_bytes list, const char *key, struct msg_bytes *ret)
{
	size_t pos = 0, klen = strlen(key);
	struct msg_kv kv;
	int r;

	while ((r = msg_kv_next(list, &pos, &kv)) > 0)
		if (kv.key.len == klen && !memcmp(kv.key.p, key, klen)) {
			*ret = kv.value;
			return 1;
		}
	return r;
}

const char *msg_source_name(uint32_t source)
{
	switch (source) {
	case MSG_SOURCE_REPLAY:
		return "replay";
	case MSG_SOURCE_SQS:
		return "sqs";
	case MSG_SOURCE_PUBSUB:
		return "pubsub";
	case MSG_SOURCE_DLQ:
		return "dlq-replay";
	}
	return "unknown";
}

uint32_t msg_source_size(const struct msg_source_view *m)
{
	return (uint32_t)sizeof(struct source_hdr) + m->id.len + m->attrs.len + m->body.len +
	       m->orig.len;
}

uint32_t msg_event_size(const struct msg_event_view *e)
{
	return (uint32_t)sizeof(struct event_hdr) + e->topic.len + e->key.len + e->headers.len +
	       e->room + e->value.len;
}

uint32_t msg_dead_size(uint32_t reason_len, uint32_t raw_len)
{
	return (uint32_t)sizeof(struct dead_hdr) + reason_len + raw_len;
}

static unsigned char *put(unsigned char *p, struct msg_bytes b)
{
	if (b.len)
		memcpy(p, b.p, b.len);
	return p + b.len;
}

int64_t msg_source_encode(void *dst, size_t cap, const struct msg_source_view *m)
{
	struct source_hdr h = {SOURCE_MAGIC, m->source,	  m->flags,	  m->source_idx, m->id.len,
			       m->attrs.len, m->body.len, m->received_ns, m->orig.len,	 0};
	uint32_t size = msg_source_size(m);
	unsigned char *p = dst;

	if (size > cap)
		return -ENOBUFS;
	memcpy(p, &h, sizeof(h));
	p = put(put(put(put(p + sizeof(h), m->id), m->attrs), m->body), m->orig);
	return size;
}

int64_t msg_event_encode(void *dst, size_t cap, const struct msg_event_view *e)
{
	struct event_hdr h = {EVENT_MAGIC,   e->index,	 e->count,	 e->type,      e->room,
			      e->topic.len,  e->key.len, e->headers.len, e->value.len, 0,
			      e->received_ns};
	uint32_t size = msg_event_size(e);
	unsigned char *p = dst;

	if (size > cap || e->room > MSG_EVENT_ROOM_MAX)
		return -ENOBUFS;
	memcpy(p, &h, sizeof(h));
	p = put(put(put(p + sizeof(h), e->topic), e->key), e->headers);
	memset(p, 0, e->room);
	p = put(p + e->room, e->value);
	return size;
}

int64_t msg_dead_encode(void *dst, size_t cap, uint16_t stage, const char *reason, const void *raw,
			uint32_t raw_len)
{
	size_t rl = strlen(reason);
	struct dead_hdr h;
	uint32_t size;
	unsigned char *p = dst;

	if (rl > UINT16_MAX)
		rl = UINT16_MAX;
	size = msg_dead_size((uint32_t)rl, raw_len);
	if (size > cap)
		return -ENOBUFS;
	h = (struct dead_hdr){DEAD_MAGIC, stage, (uint16_t)rl, raw_len, 0};
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), reason, rl);
	memcpy(p + sizeof(h) + rl, raw, raw_len);
	return size;
}

/* Cut n bytes off the front of [*p, *p + *left). */
static int take(const unsigned char **p, uint64_t *left, uint32_t n, struct msg_bytes *ret)
{
	if (n > *left)
		return -EBADMSG;
	ret->p = *p;
	ret->len = n;
	*p += n;
	*left -= n;
	return 0;
}

int msg_source_decode(const void *buf, uint32_t len, struct msg_source_view *ret)
{
	const unsigned char *p = buf;
	struct source_hdr h;
	uint64_t left;

	if (len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, p, sizeof(h));
	if (h.magic != SOURCE_MAGIC)
		return -EBADMSG;
	p += sizeof(h);
	left = len - sizeof(h);
	ret->source = h.source;
	ret->flags = h.flags;
	ret->source_idx = h.source_idx;
	ret->received_ns = h.received_ns;
	if (take(&p, &left, h.id_len, &ret->id) || take(&p, &left, h.attrs_len, &ret->attrs) ||
	    take(&p, &left, h.body_len, &ret->body) || take(&p, &left, h.orig_len, &ret->orig) ||
	    left)
		return -EBADMSG;
	return 0;
}

int msg_event_decode(const void *buf, uint32_t len, struct msg_event_view *ret)
{
	const unsigned char *p = buf;
	struct msg_bytes room;
	struct event_hdr h;
	uint64_t left;

	if (len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, p, sizeof(h));
	if (h.magic != EVENT_MAGIC || h.room > MSG_EVENT_ROOM_MAX ||
	    (h.count && h.index >= h.count))
		return -EBADMSG;
	/* The marker of a source message without events carries nothing to send. */
	if (!h.count && (h.index || h.type || h.topic_len || h.room || h.value_len))
		return -EBADMSG;
	p += sizeof(h);
	left = len - sizeof(h);
	ret->index = h.index;
	ret->count = h.count;
	ret->type = h.type;
	ret->room = h.room;
	ret->received_ns = h.received_ns;
	if (take(&p, &left, h.topic_len, &ret->topic) || take(&p, &left, h.key_len, &ret->key) ||
	    take(&p, &left, h.headers_len, &ret->headers) || take(&p, &left, h.room, &room) ||
	    take(&p, &left, h.value_len, &ret->value) || left)
		return -EBADMSG;
	return 0;
}

int msg_set_received(uint16_t type, void *p, uint32_t len, uint64_t received_ns)
{
	unsigned char *b = p;
	struct source_hdr sh;
	struct dead_hdr dh;

	if (type == MSG_REC_DEAD) {
		if (len < sizeof(dh))
			return -EBADMSG;
		memcpy(&dh, b, sizeof(dh));
		if (dh.magic != DEAD_MAGIC ||
		    (uint64_t)dh.reason_len + dh.raw_len > len - sizeof(dh))
			return -EBADMSG;
		b += sizeof(dh) + dh.reason_len;
		len = dh.raw_len;
	} else if (type != MSG_REC_SOURCE) {
		return -EINVAL;
	}
	if (len < sizeof(sh))
		return -EBADMSG;
	memcpy(&sh, b, sizeof(sh));
	if (sh.magic != SOURCE_MAGIC)
		return -EBADMSG;
	sh.received_ns = received_ns;
	memcpy(b + offsetof(struct source_hdr, received_ns), &sh.received_ns,
	       sizeof(sh.received_ns));
	return 0;
}

int msg_dead_decode(const void *buf, uint32_t len, struct msg_dead_view *ret)
{
	const unsigned char *p = buf;
	struct dead_hdr h;
	uint64_t left;

	if (len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, p, sizeof(h));
	if (h.magic != DEAD_MAGIC)
		return -EBADMSG;
	p += sizeof(h);
	left = len - sizeof(h);
	ret->stage = h.stage;
	if (take(&p, &left, h.reason_len, &ret->reason) || take(&p, &left, h.raw_len, &ret->raw) ||
	    left)
		return -EBADMSG;
	/* The original may itself be unreadable (that may be why it is dead). */
	if (msg_source_decode(ret->raw.p, ret->raw.len, &ret->msg) < 0)
		memset(&ret->msg, 0, sizeof(ret->msg));
	return 0;
}
