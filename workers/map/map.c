/* SPDX-License-Identifier: MIT */
/*
 * map: legacy events into catalog events. The body of each source message
 * (plaintext: decrypt ran) is one legacy JSON event; its mapper
 * (mapper.h) gives zero, one or several catalog events, each written
 * downstream as one MSG_REC_EVENT: the event's topic and key, its catalog
 * type, the packed protobuf as the value (with MSG_EVENT_ROOM free bytes
 * before it, where produce writes the Schema Registry wire header in
 * place), and as headers the source's attributes, then ferry-tenant,
 * ferry-legacy-type, ferry-source (replay, sqs, pubsub), ferry-source-id,
 * ferry-seq, and ferry-trace-id when the source message carries one
 * (attribute traceparent, trace_id or AWSTraceHeader).
 *
 * A legacy event that gives no event (filtered) is written as one marker
 * record (count 0, no topic, no value): produce sends nothing for it and
 * acks its seq, so the source message is acknowledged like any other.
 *
 * A legacy event the mapper refuses (not JSON, unknown type, a missing,
 * mistyped or out-of-range field) becomes a dead letter whose reason names
 * the field; the source message goes as received, never the plaintext.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "workers/common/worker.h"
#include "workers/map/mapper.h"

#define HEADERS_MAX 65536

struct map {
	struct mapper *mapper;
	unsigned char headers[HEADERS_MAX];
	/*
	 * Fault injection for the poison-record tests: a body containing this
	 * string crashes the stage. Set only by $FERRY_TEST_POISON; unset in
	 * production, where this costs one NULL check per record.
	 */
	const char *poison;
	struct shm_tenant *tenants; /* this worker's per-tenant counts (ferryctl top, metrics) */
	struct msg_bytes tenant;    /* the current record's, as map_one() found it */
	int dead;		    /* map_one() made the current record a dead letter itself */
};

static int map_init(struct worker *w)
{
	struct map *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	w->ctx = m;
	m->mapper = mapper_new();
	if (!m->mapper)
		return -ENOMEM;
	m->tenants = shm_worker_tenants(w->seg, w->index);
	m->poison = getenv("FERRY_TEST_POISON");
	if (m->poison && !*m->poison)
		m->poison = NULL;
	return 0;
}

static void map_fini(struct worker *w)
{
	struct map *m = w->ctx;

	if (!m)
		return;
	/* What this incarnation mapped, per legacy type, for the journal. */
	for (unsigned i = 0; m->mapper && i <= mapper_legacy_count(); i++) {
		const struct mapper_stats *st = mapper_stats(m->mapper, i);
		const char *name = mapper_legacy_name(i);

		if (st->in)
			log_info("%s: %" PRIu64 " in, %" PRIu64 " events, %" PRIu64
				 " filtered, %" PRIu64 " dead",
				 name ? name : "(unknown type)", st->in, st->events, st->filtered,
				 st->dead);
	}
	mapper_free(m->mapper);
	free(m);
	w->ctx = NULL;
}

/* The trace id of a source message: the attributes tracing systems use, first found. */
static int trace_id(struct msg_bytes attrs, struct msg_bytes *ret)
{
	static const char *const keys[] = {"traceparent", "trace_id", "AWSTraceHeader"};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (msg_kv_find(attrs, keys[i], ret) > 0 && ret->len)
			return 1;
	return 0;
}

/*
 * A legacy event of a known type the mapper refused: its dead letter
 * carries the type as attribute ferry-legacy-type, so that `ferryctl
 * replay-dlq --type` finds it once the mapper is corrected. Returns 0
 * (written), or -errno (the worker writes the plain dead letter).
 */
static int dead_with_type(struct worker *w, const struct ring_rec *rec, struct msg_source_view m,
			  const char *legacy, const char *reason)
{
	struct map *ctx = w->ctx;
	size_t alen = m.attrs.len;
	struct ring_rec *d;
	uint32_t len;
	int r;

	if (m.attrs.len > HEADERS_MAX - 512)
		return -E2BIG;
	memcpy(ctx->headers, m.attrs.p, m.attrs.len);
	if (msg_kv_put(ctx->headers, HEADERS_MAX, &alen, "ferry-legacy-type", 17, legacy,
		       (uint32_t)strlen(legacy)))
		return -E2BIG;
	m.attrs.p = ctx->headers;
	m.attrs.len = (uint32_t)alen;
	len = msg_source_size(&m);
	d = malloc(sizeof(*d) + len);
	if (!d)
		return -ENOMEM;
	*d = *rec;
	d->len = len;
	msg_source_encode(d->data, len, &m);
	r = worker_dead_letter(w, 0, d, reason);
	free(d);
	return r;
}

/* Write one event record of the current input. */
static int push_event(struct worker *w, const struct ring_rec *rec, const struct msg_event_view *e)
{
	uint32_t len = msg_event_size(e);
	void *p = worker_reserve(w, 0, len);

	if (!p)
		return -errno;
	msg_event_encode(p, len, e);
	return worker_push(w, 0, MSG_REC_EVENT, rec->seq, len);
}

static int map_one(struct worker *w, const struct ring_rec *rec, const char **reason)
{
	struct map *ctx = w->ctx;
	unsigned char *headers = ctx->headers;
	struct msg_source_view m;
	struct msg_event_view e = {0};
	struct msg_bytes tenant = {"", 0}, trace;
	const char *legacy, *source;
	char seq[24];
	size_t hlen;
	int n, r;

	if (rec->type != MSG_REC_SOURCE || msg_source_decode(rec->data, rec->len, &m) < 0) {
		*reason = "map: not a readable source message";
		return -EBADMSG;
	}
	if (ctx->poison && memmem(m.body.p, m.body.len, ctx->poison, strlen(ctx->poison)))
		abort();
	if (msg_kv_find(m.attrs, w->cfg.tenant_attribute, &tenant) < 0) {
		*reason = "map: unreadable attributes";
		return -EBADMSG;
	}
	ctx->tenant = tenant;
	n = mapper_map(ctx->mapper, tenant.p, tenant.len, m.body.p, m.body.len, reason);
	if (n < 0) {
		/* A known type: its dead letter says which (ferryctl replay-dlq --type). */
		legacy = mapper_legacy_type(ctx->mapper);
		if (legacy && *reason && dead_with_type(w, rec, m, legacy, *reason) == 0) {
			ctx->dead = 1;
			return 0;
		}
		return n;
	}
	e.received_ns = m.received_ns; /* produce measures delivery latency from it */
	if (n == 0)		       /* filtered: a marker, so that produce acks the seq */
		return push_event(w, rec, &e);
	if (m.attrs.len > HEADERS_MAX - 512) {
		*reason = "map: attributes too large for Kafka headers";
		return -E2BIG;
	}
	/* Headers: the source's attributes, then where it came from. */
	memcpy(headers, m.attrs.p, m.attrs.len);
	hlen = m.attrs.len;
	snprintf(seq, sizeof(seq), "%" PRIu64, rec->seq);
	legacy = mapper_legacy_type(ctx->mapper);
	source = msg_source_name(m.source);
	if (msg_kv_put(headers, HEADERS_MAX, &hlen, "ferry-tenant", 12, tenant.p, tenant.len) ||
	    msg_kv_put(headers, HEADERS_MAX, &hlen, "ferry-legacy-type", 17, legacy,
		       (uint32_t)strlen(legacy)) ||
	    msg_kv_put(headers, HEADERS_MAX, &hlen, "ferry-source", 12, source,
		       (uint32_t)strlen(source)) ||
	    msg_kv_put(headers, HEADERS_MAX, &hlen, "ferry-source-id", 15, m.id.p, m.id.len) ||
	    msg_kv_put(headers, HEADERS_MAX, &hlen, "ferry-seq", 9, seq, (uint32_t)strlen(seq)) ||
	    ((m.flags & MSG_F_REPLAYED) && /* sent again from the dead-letter topic */
	     msg_kv_put(headers, HEADERS_MAX, &hlen, "ferry-replayed", 14, "1", 1)) ||
	    (trace_id(m.attrs, &trace) &&
	     msg_kv_put(headers, HEADERS_MAX, &hlen, "ferry-trace-id", 14, trace.p, trace.len))) {
		*reason = "map: headers too large";
		return -E2BIG;
	}
	e.count = (uint16_t)n;
	e.room = MSG_EVENT_ROOM; /* produce's wire header goes there */
	e.headers.p = headers;
	e.headers.len = (uint32_t)hlen;
	for (int i = 0; i < n; i++) {
		const struct mapper_event *me = mapper_event(ctx->mapper, (unsigned)i);

		e.index = (uint16_t)i;
		e.type = me->type;
		e.topic.p = me->topic;
		e.topic.len = (uint32_t)strlen(me->topic);
		e.key.p = me->key;
		e.key.len = me->key_len;
		e.value.p = me->value;
		e.value.len = me->value_len;
		r = push_event(w, rec, &e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Map one message and count it for its tenant, as decrypt does ("?": none named). */
static int map_handle(struct worker *w, const struct ring_rec *rec, const char **reason)
{
	struct map *ctx = w->ctx;
	struct shm_tenant *t;
	int r;

	ctx->tenant.len = 0;
	ctx->dead = 0;
	r = map_one(w, rec, reason);
	/* Not handled yet (stopping, or tried again with more room): not counted. */
	if (r == -ECANCELED || r == -ENOSPC || !ctx->tenants)
		return r;
	t = ctx->tenant.len
		    ? shm_tenant_slot_n(ctx->tenants, (const char *)ctx->tenant.p, ctx->tenant.len)
		    : shm_tenant_slot(ctx->tenants, "?");
	__atomic_fetch_add(r < 0 || ctx->dead ? &t->failed : &t->ok, 1, __ATOMIC_RELAXED);
	return r;
}

static const struct stage_ops map_ops = {
	.name = "map",
	.init = map_init,
	.handle = map_handle,
	.fini = map_fini,
};

int main(int argc, char **argv)
{
	return worker_main(argc, argv, &map_ops);
}
