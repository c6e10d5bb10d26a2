/* SPDX-License-Identifier: MIT */
/*
 * map: legacy events into catalog events. For now every source message
 * becomes one event: the configured topic, keyed by tenant (or message id),
 * the source attributes and ferry's provenance as headers, the body as value.
 * The real mappers come with the catalog issue.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workers/common/worker.h"

#define HEADERS_MAX 65536

struct map {
	unsigned char headers[HEADERS_MAX];
	/*
	 * Fault injection for the poison-record tests: a body containing this
	 * string crashes the stage. Set only by $FERRY_TEST_POISON; unset in
	 * production, where this costs one NULL check per record.
	 */
	const char *poison;
};

static int map_init(struct worker *w)
{
	struct map *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->poison = getenv("FERRY_TEST_POISON");
	if (m->poison && !*m->poison)
		m->poison = NULL;
	w->ctx = m;
	return 0;
}

static void map_fini(struct worker *w)
{
	free(w->ctx);
	w->ctx = NULL;
}

static int map_handle(struct worker *w, const struct ring_rec *rec, const char **reason)
{
	struct map *ctx = w->ctx;
	unsigned char *headers = ctx->headers;
	struct msg_source_view m;
	struct msg_event_view e = {.index = 0, .count = 1};
	struct msg_bytes key;
	char seq[24];
	size_t hlen;
	uint32_t len;
	void *p;

	if (rec->type != MSG_REC_SOURCE || msg_source_decode(rec->data, rec->len, &m) < 0) {
		*reason = "map: not a readable source message";
		return -EBADMSG;
	}
	if (ctx->poison && memmem(m.body.p, m.body.len, ctx->poison, strlen(ctx->poison)))
		abort();
	if (m.attrs.len > HEADERS_MAX - 256) {
		*reason = "map: attributes too large for Kafka headers";
		return -E2BIG;
	}
	/* Headers: the source's attributes, then where it came from. */
	memcpy(headers, m.attrs.p, m.attrs.len);
	hlen = m.attrs.len;
	snprintf(seq, sizeof(seq), "%" PRIu64, rec->seq);
	if (msg_kv_put(headers, HEADERS_MAX, &hlen, "ferry-source-id", 15, m.id.p, m.id.len) ||
	    msg_kv_put(headers, HEADERS_MAX, &hlen, "ferry-seq", 9, seq, (uint32_t)strlen(seq))) {
		*reason = "map: headers too large";
		return -E2BIG;
	}
	if (msg_kv_find(m.attrs, w->cfg.tenant_attribute, &key) <= 0)
		key = m.id;
	e.topic.p = w->cfg.topic;
	e.topic.len = (uint32_t)strlen(w->cfg.topic);
	e.key = key;
	e.headers.p = headers;
	e.headers.len = (uint32_t)hlen;
	e.value = m.body;
	len = msg_event_size(&e);
	p = worker_reserve(w, 0, len);
	if (!p)
		return -errno;
	msg_event_encode(p, len, &e);
	return worker_push(w, 0, MSG_REC_EVENT, rec->seq, len);
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
