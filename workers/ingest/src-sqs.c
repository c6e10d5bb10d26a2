/* SPDX-License-Identifier: MIT */
/*
 * SQS queues (SNS fan-in or raw) as ingest sources: the JSON protocol
 * (common/sqs.h) over the loop's curl multi handle, signed with SigV4
 * (common/aws.h). Long polling, 10 messages per receive, deletes and
 * visibility changes in batches of 10 with partial failures sorted into
 * retry (SQS's fault) and give up (ours, e.g. an expired receipt handle).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "common/sqs.h"
#include "common/time.h"
#include "workers/ingest/ingest.h"

struct sqs_shared {
	struct aws_creds_provider *creds; /* the AWS SDKs' chain, refreshed before expiry */
	struct aws_client *clients[64];
	char regions[64][SQS_REGION_MAX];
	unsigned n;
};

static struct aws_client *client_for(struct ingest *g, const char *region)
{
	struct sqs_shared *sh = g->sqs;
	const struct ferry_config *cfg = &g->w->cfg;
	struct aws_client *cl;

	for (unsigned i = 0; i < sh->n; i++)
		if (!strcmp(sh->regions[i], region))
			return sh->clients[i];
	if (sh->n == 64) {
		log_err("sqs: more than 64 regions");
		return NULL;
	}
	cl = aws_client_new_provider(region, cfg->sqs_endpoint[0] ? cfg->sqs_endpoint : NULL,
				     sh->creds);
	if (!cl) {
		log_err("sqs: cannot make a client for region %s", region);
		return NULL;
	}
	snprintf(sh->regions[sh->n], sizeof(sh->regions[0]), "%s", region);
	sh->clients[sh->n++] = cl;
	return cl;
}

int sqs_sources_init(struct ingest *g)
{
	const struct ferry_config *cfg = &g->w->cfg;

	struct sqs_shared *sh = calloc(1, sizeof(*sh));
	struct aws_creds c;
	char err[512];
	int r;

	if (!sh)
		return -ENOMEM;
	g->sqs = sh;
	sh->creds = aws_creds_provider_new(cfg->sqs_profile[0] ? cfg->sqs_profile : NULL,
					   cfg->sqs_region[0] ? cfg->sqs_region : NULL);
	if (!sh->creds)
		return -ENOMEM;
	/* Say now, not at the first receive, when there are none. */
	r = aws_creds_provider_get(sh->creds, &c, err, sizeof(err));
	OPENSSL_cleanse(&c, sizeof(c));
	if (r < 0) {
		log_err("sqs: no AWS credentials: %s", err);
		return r;
	}
	log_info("sqs: AWS credentials from %s", aws_creds_provider_source(sh->creds));
	for (unsigned i = 0; i < g->n_net; i++) {
		struct source *s = &g->src[i];

		if (s->ops != &sqs_source_ops)
			continue;
		if (cfg->sqs_region[0]) {
			snprintf(s->region, sizeof(s->region), "%.31s", cfg->sqs_region);
		} else if (sqs_region_from_url(s->name, s->region, sizeof(s->region)) < 0) {
			log_err("sqs %s: no region in the queue URL: set [sqs] region", s->name);
			return -EINVAL;
		}
		s->aws = client_for(g, s->region);
		if (!s->aws)
			return -EINVAL;
		if (cfg->sqs_visibility_ms)
			s->timeout_s = (unsigned)((cfg->sqs_visibility_ms + 999) / 1000);
	}
	return 0;
}

void sqs_sources_fini(struct ingest *g)
{
	struct sqs_shared *sh = g->sqs;

	if (!sh)
		return;
	for (unsigned i = 0; i < sh->n; i++)
		aws_client_free(sh->clients[i]);
	aws_creds_provider_free(sh->creds);
	free(sh);
	g->sqs = NULL;
}

/* Build, sign and attach one call; body is freed here. */
static int sqs_call(struct ingest *g, struct source *s, struct call *c, const char *target,
		    char *body, int len)
{
	char err[256];
	int r;

	(void)g;
	if (len < 0) {
		log_err("sqs %s: %s: cannot build the request", s->name, target);
		return len;
	}
	r = aws_json_request_new(s->aws, "sqs", target, body, &c->aws, err, sizeof(err));
	free(body);
	if (r < 0) {
		log_err("sqs %s: %s", s->name, err);
		return r;
	}
	return aws_request_attach(c->aws, c->easy);
}

static int sqs_attrs(struct ingest *g, struct source *s, struct call *c)
{
	char *body = NULL;
	int len = sqs_queue_attrs_request(s->name, &body, NULL, 0);

	return sqs_call(g, s, c, "AmazonSQS.GetQueueAttributes", body, len);
}

static int sqs_receive(struct ingest *g, struct source *s, struct call *c, unsigned max)
{
	const struct ferry_config *cfg = &g->w->cfg;
	char *body = NULL;
	int len = sqs_receive_request(s->name, max, (unsigned)(cfg->sqs_wait_time_ms / 1000),
				      cfg->sqs_visibility_ms ? s->timeout_s : 0, &body, NULL, 0);

	return sqs_call(g, s, c, "AmazonSQS.ReceiveMessage", body, len);
}

static int sqs_settle(struct ingest *g, struct source *s, struct call *c, unsigned timeout_s)
{
	struct sqs_batch_entry e[SQS_BATCH_MAX];
	char *body = NULL;
	int len;

	for (unsigned k = 0; k < c->n; k++) {
		struct shm_inflight *sl = &g->table[c->slots[k]];

		e[k].receipt = sl->token;
		e[k].receipt_len = sl->token_len;
		e[k].visibility_s = timeout_s;
	}
	if (c->kind == CALL_DELETE) {
		len = sqs_delete_batch_request(s->name, e, c->n, &body, NULL, 0);
		return sqs_call(g, s, c, "AmazonSQS.DeleteMessageBatch", body, len);
	}
	len = sqs_visibility_batch_request(s->name, e, c->n, &body, NULL, 0);
	return sqs_call(g, s, c, "AmazonSQS.ChangeMessageVisibilityBatch", body, len);
}

/* What to shard by: the FIFO group (order), else the tenant, else the message id. */
static struct msg_bytes shard_key(struct ingest *g, const struct source *s,
				  const struct sqs_message *m)
{
	struct msg_bytes k = {0};

	if (s->fifo && m->group_id.len)
		return m->group_id;
	if (msg_kv_find(m->attrs, g->w->cfg.tenant_attribute, &k) <= 0)
		k = m->message_id;
	return k;
}

static void receive_done(struct ingest *g, struct call *c, const char *body)
{
	struct source *s = c->src;
	struct sqs_receive rr;
	char err[256];
	int n = sqs_receive_parse(body, strlen(body), &rr, err, sizeof(err));

	if (n < 0) {
		ingest_source_failed(g, s, 0, err);
		sqs_receive_free(&rr);
		return;
	}
	for (unsigned i = 0; i < rr.n; i++) {
		const struct sqs_message *m = &rr.msgs[i];
		struct msg_source_view v = {
			.source = MSG_SOURCE_SQS,
			.source_idx = s->idx,
			.received_ns = realtime_ns(),
			.id = m->message_id,
			.attrs = m->attrs,
			.body = m->body,
		};
		const char *why = m->error;
		uint32_t tlen = m->receipt_handle.len;

		if (tlen > SHM_INFLIGHT_TOKEN_MAX) {
			why = why ? why : "receipt handle too long to keep";
			tlen = 0; /* cannot be deleted: SQS delivers it again, as a dead letter */
		}
		if (why)
			v.body = m->raw_body;
		if (ingest_take(g, s, &v, why ? v.id : shard_key(g, s, m), m->receipt_handle.p,
				tlen, why) < 0)
			log_err("sqs %s: no in-flight slot for message %.*s: it comes back later",
				s->name, (int)m->message_id.len, (const char *)m->message_id.p);
	}
	sqs_receive_free(&rr);
}

static void settle_done(struct ingest *g, struct call *c, const char *body)
{
	struct source *s = c->src;
	struct sqs_batch_result br;
	char err[256];

	if (sqs_batch_parse(body, strlen(body), c->n, &br, err, sizeof(err)) < 0) {
		ingest_source_failed(g, s, 0, err);
		for (unsigned k = 0; k < c->n; k++)
			if (c->kind != CALL_EXTEND)
				ingest_settle_retry(g, c, k);
		return;
	}
	for (unsigned k = 0; k < c->n; k++) {
		struct shm_inflight *sl = ingest_call_slot(g, c, k);
		const struct sqs_batch_entry_result *e = &br.e[k];

		if (!sl)
			continue;
		if (e->state == SQS_ENTRY_OK) {
			if (c->kind == CALL_EXTEND) {
				sl->deadline_ns = g->now + (uint64_t)s->timeout_s * 1000000000ull;
				sl->extensions++;
				__atomic_fetch_add(&s->shm->extended, 1, __ATOMIC_RELAXED);
				continue;
			}
			if (c->kind == CALL_DELETE)
				__atomic_fetch_add(&s->shm->acked, 1, __ATOMIC_RELAXED);
			ingest_slot_free(g, c->slots[k]);
		} else if (e->state == SQS_ENTRY_FAILED && e->sender_fault) {
			/*
			 * Our fault, e.g. the receipt handle expired: retrying cannot
			 * help. A delete that failed so means SQS delivers the message
			 * again (a duplicate, counted); an extension, that it may.
			 */
			__atomic_fetch_add(&s->shm->errors, 1, __ATOMIC_RELAXED);
			log_warning("sqs %s: seq %llu: %s: %s", s->name,
				    (unsigned long long)sl->seq, e->code, e->message);
			if (c->kind != CALL_EXTEND)
				ingest_slot_free(g, c->slots[k]);
		} else if (c->kind != CALL_EXTEND) {
			ingest_settle_retry(g, c, k); /* SQS's fault or unanswered: again */
		}
	}
}

static void sqs_done(struct ingest *g, struct call *c, CURLcode code)
{
	struct source *s = c->src;
	char err[256], *body = NULL;
	long http = 0;
	int r;

	if (code == CURLE_ABORTED_BY_CALLBACK) {
		aws_request_free(c->aws);
		c->aws = NULL;
		return; /* dropped on the way out */
	}
	r = aws_request_finish(c->aws, c->easy, code, &body, &http, err, sizeof(err));
	aws_request_free(c->aws);
	c->aws = NULL;
	if (r < 0) {
		ingest_source_failed(g, s, http, err);
		if (c->kind == CALL_DELETE || c->kind == CALL_RETURN)
			for (unsigned k = 0; k < c->n; k++)
				ingest_settle_retry(g, c, k);
		free(body);
		return;
	}
	ingest_source_ok(g, s);
	switch (c->kind) {
	case CALL_ATTRS: {
		struct sqs_queue_attrs qa;

		if (sqs_queue_attrs_parse(body, strlen(body), &qa, err, sizeof(err)) < 0) {
			ingest_source_failed(g, s, 0, err);
			break;
		}
		s->fifo = qa.fifo;
		s->ready = 1;
		if (!g->w->cfg.sqs_visibility_ms)
			s->timeout_s = qa.visibility_s ? qa.visibility_s : 1;
		log_info("sqs %s: %s queue, visibility timeout %us", s->name,
			 s->fifo ? "FIFO" : "standard", s->timeout_s);
		break;
	}
	case CALL_RECEIVE:
		receive_done(g, c, body);
		break;
	default:
		settle_done(g, c, body);
	}
	free(body);
}

const struct source_ops sqs_source_ops = {
	.kind = "sqs",
	.attrs = sqs_attrs,
	.receive = sqs_receive,
	.settle = sqs_settle,
	.done = sqs_done,
	.batch_max = SQS_BATCH_MAX,
	.receive_max = SQS_BATCH_MAX,
};
