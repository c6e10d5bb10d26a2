/* SPDX-License-Identifier: MIT */
/*
 * Pub/Sub subscriptions as ingest sources: the REST API v1 (common/pubsub.h)
 * over the loop's curl multi handle, authenticated as Google's libraries do
 * (common/gcp.h). A pull per subscription waits for messages; acks and
 * deadline changes go in requests split under the API's 512 KB limit.
 *
 * The subscription's ack deadline is read once (GET the subscription), so
 * deadlines of messages still in the pipeline are extended before they run
 * out, whatever the subscription says.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "common/gcp.h"
#include "common/log.h"
#include "common/pubsub.h"
#include "common/time.h"
#include "workers/ingest/ingest.h"

#define PULL_TIMEOUT_S 90   /* an idle pull that long ends as an empty one */
#define IDLE_MIN_MS    100  /* pause after an empty pull (emulator), doubling ... */
#define IDLE_MAX_MS    2000 /* ... up to this */

struct pubsub_shared {
	struct gcp_auth *auth;
	/*
	 * Google holds a pull open until messages come (for a while); the
	 * emulator holds it forever, and serves only so many held pulls at once,
	 * so hundreds of subscriptions starve. With the emulator, pulls return at
	 * once and an empty one pauses its subscription (100 ms, doubling to 2 s).
	 */
	unsigned pull_flags;
	char header[GCP_AUTH_HEADER_MAX];
};

/* GET {base}/v1/{subscription}: the one call common/pubsub.h has no builder for. */
struct sub_get {
	struct curl_slist *headers;
	char *body;
	size_t len, cap;
};

int pubsub_sources_init(struct ingest *g)
{
	const struct ferry_config *cfg = &g->w->cfg;
	struct pubsub_shared *sh = calloc(1, sizeof(*sh));
	char err[512];
	int r;

	if (!sh)
		return -ENOMEM;
	g->pubsub = sh;
	r = gcp_auth_new(cfg->pubsub_credentials, &sh->auth, err, sizeof(err));
	if (r < 0) {
		log_err("pubsub: %s", err);
		return r;
	}
	if (cfg->pubsub_endpoint[0]) {
		r = gcp_auth_set_endpoint(sh->auth, cfg->pubsub_endpoint);
		if (r < 0) {
			log_err("pubsub: endpoint %s: not a usable URL", cfg->pubsub_endpoint);
			return r;
		}
	}
	if (gcp_auth_kind(sh->auth) == GCP_AUTH_EMULATOR)
		sh->pull_flags = PUBSUB_PULL_RETURN_IMMEDIATELY;
	log_info("pubsub: %s at %s", gcp_auth_describe(sh->auth), gcp_auth_base_url(sh->auth));
	return 0;
}

void pubsub_sources_fini(struct ingest *g)
{
	struct pubsub_shared *sh = g->pubsub;

	if (!sh)
		return;
	gcp_auth_free(sh->auth);
	OPENSSL_cleanse(sh->header, sizeof(sh->header));
	free(sh);
	g->pubsub = NULL;
}

/* The auth header line, fresh; NULL (source failed) when none can be had. */
static const char *auth_header(struct ingest *g, struct source *s)
{
	struct pubsub_shared *sh = g->pubsub;
	char err[256];
	int r = gcp_auth_header(sh->auth, sh->header, sizeof(sh->header), err, sizeof(err));

	if (r < 0) {
		ingest_source_failed(g, s, r == -EACCES ? 403 : 0, err);
		return NULL;
	}
	return sh->header;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct sub_get *q = userdata;
	size_t n = size * nmemb;

	if (q->len + n + 1 > q->cap) {
		size_t cap = (q->len + n + 1) * 2;
		char *nb = cap > (1u << 20) ? NULL : realloc(q->body, cap);

		if (!nb)
			return 0;
		q->body = nb;
		q->cap = cap;
	}
	memcpy(q->body + q->len, data, n);
	q->len += n;
	q->body[q->len] = 0;
	return n;
}

static int ps_attrs(struct ingest *g, struct source *s, struct call *c)
{
	struct pubsub_shared *sh = g->pubsub;
	const char *auth = auth_header(g, s);
	struct sub_get *q;
	char url[1024];

	if (!auth)
		return -EIO;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	snprintf(url, sizeof(url), "%s/v1/%s", gcp_auth_base_url(sh->auth), s->name);
	if (*auth)
		q->headers = curl_slist_append(NULL, auth);
	curl_easy_setopt(c->easy, CURLOPT_URL, url);
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, q->headers);
	curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	c->req = q;
	return 0;
}

static void attrs_done(struct ingest *g, struct call *c, CURLcode code)
{
	struct source *s = c->src;
	struct sub_get *q = c->req;
	long http = 0;
	char why[256];
	cJSON *j, *d;

	if (!q)
		return; /* never started */
	curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &http);
	if (q->headers)
		OPENSSL_cleanse(q->headers->data, strlen(q->headers->data));
	curl_slist_free_all(q->headers);
	if (code != CURLE_OK || http != 200) {
		if (code != CURLE_OK)
			snprintf(why, sizeof(why), "pubsub: %s", curl_easy_strerror(code));
		else
			snprintf(why, sizeof(why), "pubsub: GET subscription: HTTP %ld", http);
		ingest_source_failed(g, s, http, why);
		goto out;
	}
	j = cJSON_ParseWithLength(q->body ? q->body : "", q->len);
	d = cJSON_GetObjectItemCaseSensitive(j, "ackDeadlineSeconds");
	/* Google omits the default (10 s) at times; the emulator always says it. */
	s->timeout_s = cJSON_IsNumber(d) && d->valuedouble >= 1 ? (unsigned)d->valuedouble : 10;
	cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "enableMessageOrdering");
	s->fifo = cJSON_IsTrue(o);
	cJSON_Delete(j);
	s->ready = 1;
	ingest_source_ok(g, s);
	log_info("pubsub %s: ack deadline %us%s", s->name, s->timeout_s,
		 s->fifo ? ", ordered" : "");
out:
	free(q->body);
	free(q);
	c->req = NULL;
}

static int ps_receive(struct ingest *g, struct source *s, struct call *c, unsigned max)
{
	struct pubsub_shared *sh = g->pubsub;
	struct pubsub_request *rq = NULL;
	const char *auth = auth_header(g, s);
	char err[256];
	int r;

	if (!auth)
		return -EIO;
	r = pubsub_pull_new(gcp_auth_base_url(sh->auth), auth, s->name, max, sh->pull_flags, &rq,
			    err, sizeof(err));
	if (r < 0) {
		log_err("pubsub %s: %s", s->name, err);
		return r;
	}
	r = pubsub_request_attach(rq, c->easy);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT, (long)PULL_TIMEOUT_S);
	c->req = rq;
	return r;
}

static int ps_settle(struct ingest *g, struct source *s, struct call *c, unsigned timeout_s)
{
	struct pubsub_shared *sh = g->pubsub;
	struct pubsub_request *rq = NULL;
	struct msg_bytes ids[CALL_SLOTS_MAX];
	const char *auth = auth_header(g, s);
	char err[256];
	int r;

	if (!auth)
		return -EIO;
	for (unsigned k = 0; k < c->n; k++) {
		struct shm_inflight *sl = &g->table[c->slots[k]];

		ids[k].p = sl->token;
		ids[k].len = sl->token_len;
	}
	if (c->kind == CALL_DELETE)
		r = pubsub_ack_new(gcp_auth_base_url(sh->auth), auth, s->name, ids, c->n, 0, &rq,
				   err, sizeof(err));
	else
		r = pubsub_modack_new(gcp_auth_base_url(sh->auth), auth, s->name, timeout_s, ids,
				      c->n, 0, &rq, err, sizeof(err));
	if (r < 0) {
		log_err("pubsub %s: %s", s->name, err);
		return r;
	}
	/* What did not fit under the 512 KB limit goes back to its queue for the next call. */
	for (unsigned k = (unsigned)r; k < c->n; k++) {
		g->table[c->slots[k]].busy = 0;
		if (c->kind != CALL_EXTEND)
			ingest_settle_retry(g, c, k);
	}
	c->n = (uint32_t)r;
	c->req = rq;
	return pubsub_request_attach(rq, c->easy);
}

static void pull_done(struct ingest *g, struct call *c, const char *body, size_t len)
{
	struct pubsub_shared *sh = g->pubsub;
	struct source *s = c->src;
	struct pubsub_pull *p = NULL;
	char err[256];

	if (pubsub_pull_parse(body, len, &p, err, sizeof(err)) < 0) {
		ingest_source_failed(g, s, 0, err);
		pubsub_pull_free(p);
		return;
	}
	if (sh->pull_flags & PUBSUB_PULL_RETURN_IMMEDIATELY) {
		if (p->count) {
			s->idle_ms = 0;
		} else {
			s->idle_ms = s->idle_ms ? s->idle_ms * 2 : IDLE_MIN_MS;
			if (s->idle_ms > IDLE_MAX_MS)
				s->idle_ms = IDLE_MAX_MS;
			s->retry_at = g->now + s->idle_ms * 1000000ull;
		}
	}
	for (size_t i = 0; i < p->count; i++) {
		const struct pubsub_message *m = &p->msgs[i];
		struct msg_source_view v = {
			.source = MSG_SOURCE_PUBSUB,
			.source_idx = s->idx,
			.received_ns = realtime_ns(),
			.id = m->message_id,
			.attrs = m->attrs,
			.body = m->data,
		};
		struct msg_bytes key = {0};

		/* Ordered subscriptions keep an ordering key's messages on one shard. */
		if (m->ordering_key.len)
			key = m->ordering_key;
		else if (msg_kv_find(m->attrs, g->w->cfg.tenant_attribute, &key) <= 0)
			key = m->message_id;
		if (ingest_take(g, s, &v, key, m->ack_id.p, m->ack_id.len, m->error) < 0)
			log_err("pubsub %s: no in-flight slot for message %.*s: it comes back "
				"later",
				s->name, (int)m->message_id.len, (const char *)m->message_id.p);
	}
	pubsub_pull_free(p);
}

static void ps_done(struct ingest *g, struct call *c, CURLcode code)
{
	struct source *s = c->src;
	struct pubsub_request *rq = c->req;
	char err[256], *body = NULL;
	size_t len = 0;
	long http = 0;
	int r;

	if (c->kind == CALL_ATTRS) {
		attrs_done(g, c, code);
		return;
	}
	c->req = NULL;
	if (code == CURLE_ABORTED_BY_CALLBACK) {
		pubsub_request_free(rq);
		return;
	}
	if (c->kind == CALL_RECEIVE && code == CURLE_OPERATION_TIMEDOUT) {
		pubsub_request_free(rq); /* an idle pull: nothing came */
		return;
	}
	r = pubsub_request_finish(rq, c->easy, code, &body, &len, &http, err, sizeof(err));
	pubsub_request_free(rq);
	if (r < 0) {
		ingest_source_failed(g, s, http, err);
		if (c->kind == CALL_DELETE || c->kind == CALL_RETURN)
			for (unsigned k = 0; k < c->n; k++)
				ingest_settle_retry(g, c, k);
		free(body);
		return;
	}
	ingest_source_ok(g, s);
	if (c->kind == CALL_RECEIVE) {
		pull_done(g, c, body ? body : "{}", body ? len : 2);
		free(body);
		return;
	}
	free(body);
	/* acknowledge / modifyAckDeadline answer {} for all or fail as a whole. */
	for (unsigned k = 0; k < c->n; k++) {
		struct shm_inflight *sl = ingest_call_slot(g, c, k);

		if (!sl)
			continue;
		if (c->kind == CALL_EXTEND) {
			sl->deadline_ns = g->now + (uint64_t)s->timeout_s * 1000000000ull;
			sl->extensions++;
			__atomic_fetch_add(&s->shm->extended, 1, __ATOMIC_RELAXED);
			continue;
		}
		if (c->kind == CALL_DELETE)
			__atomic_fetch_add(&s->shm->acked, 1, __ATOMIC_RELAXED);
		ingest_slot_free(g, c->slots[k]);
	}
}

const struct source_ops pubsub_source_ops = {
	.kind = "pubsub",
	.attrs = ps_attrs,
	.receive = ps_receive,
	.settle = ps_settle,
	.done = ps_done,
	.batch_max = CALL_SLOTS_MAX,
	.receive_max = 100,
};
