/* SPDX-License-Identifier: MIT */
/*
 * ingest: pulls source messages, stamps each with its pipeline seq, shards
 * them by tenant onto the decrypt rings, and deletes / acknowledges them at
 * their source on produce's word (the ack ring). See ingest.h for the
 * in-flight table's states.
 *
 * One thread, one curl multi handle for every queue and subscription.
 * Backpressure: a receive starts only when the in-flight table can take
 * all it may bring and some shard ring has room; a message whose shard is
 * full goes back to its source. Bounded memory: the table and the rings
 * are in the segment and sized by configuration; what ingest holds of its
 * own is a few calls per source.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/time.h"
#include "workers/ingest/ingest.h"

#define MS	       1000000ull
#define WAIT_MS	       250   /* longest sleep: heartbeats go on */
#define ACK_LINGER_MS  20    /* an unfilled delete batch waits this long for more */
#define SCAN_MS	       250   /* extension scan period (at most) */
#define BACKOFF_MIN_MS 100   /* first retry after a failed call */
#define BACKOFF_5XX_MS 10000 /* cap for network and 5xx errors */
#define BACKOFF_4XX_MS 60000 /* cap for 4xx: an operator must act */
#define ROOM_FRACTION  8     /* a shard ring has room when 1/8 of it is free */

static uint64_t jitter(struct ingest *g, uint64_t max)
{
	/* xorshift64: jitter needs no quality, only spread */
	g->rng ^= g->rng << 13;
	g->rng ^= g->rng >> 7;
	g->rng ^= g->rng << 17;
	return max ? g->rng % max : 0;
}

/* --- slot queues ------------------------------------------------------------ */

static int slotq_push(struct slotq *q, uint32_t v)
{
	if (q->n == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 64;
		uint32_t *nv = realloc(q->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		q->v = nv;
		q->cap = cap;
	}
	q->v[q->n++] = v;
	return 0;
}

/* --- source health ------------------------------------------------------------ */

void ingest_source_ok(struct ingest *g, struct source *s)
{
	(void)g;
	s->backoff_ms = 0;
	s->retry_at = 0;
	if (s->shm->health != SHM_SOURCE_OK) {
		if (s->shm->health == SHM_SOURCE_RETRYING || s->shm->health == SHM_SOURCE_FAILING)
			log_info("%s %s: working again", s->ops->kind, s->name);
		__atomic_store_n(&s->shm->health, SHM_SOURCE_OK, __ATOMIC_RELAXED);
	}
}

void ingest_source_failed(struct ingest *g, struct source *s, long http, const char *why)
{
	int client = http >= 400 && http < 500 && http != 429 && http != 408;
	uint32_t health = client ? SHM_SOURCE_FAILING : SHM_SOURCE_RETRYING;
	uint64_t cap = client ? BACKOFF_4XX_MS : BACKOFF_5XX_MS;

	__atomic_fetch_add(&s->shm->errors, 1, __ATOMIC_RELAXED);
	snprintf(s->shm->last_error, sizeof(s->shm->last_error), "%s", why);
	s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (s->backoff_ms > cap)
		s->backoff_ms = cap;
	/* Full jitter (AWS's advice): a herd of sources does not retry in step. */
	s->retry_at = g->now + (s->backoff_ms / 2 + jitter(g, s->backoff_ms / 2 + 1)) * MS;
	if (s->shm->health != health) {
		if (client)
			log_err("%s %s: %s: retrying every minute or so, but this needs a fix "
				"(queue URL, subscription name, permissions)",
				s->ops->kind, s->name, why);
		else
			log_warning("%s %s: %s: retrying with backoff", s->ops->kind, s->name, why);
		__atomic_store_n(&s->shm->health, health, __ATOMIC_RELAXED);
	}
}

/* --- the in-flight table ------------------------------------------------------ */

static void slot_state(struct shm_inflight *sl, uint32_t state)
{
	__atomic_store_n(&sl->state, state, __ATOMIC_RELEASE);
}

void ingest_slot_free(struct ingest *g, uint32_t i)
{
	struct shm_inflight *sl = &g->table[i];
	struct source *s;

	if (!sl->seq)
		return;
	if (sl->source < g->n_src) {
		s = &g->src[sl->source];
		__atomic_fetch_sub(&s->shm->inflight, 1, __ATOMIC_RELAXED);
	}
	slot_state(sl, SHM_INFLIGHT_FREE);
	__atomic_store_n(&sl->seq, 0, __ATOMIC_RELEASE);
	g->used--;
}

struct shm_inflight *ingest_call_slot(struct ingest *g, const struct call *c, unsigned k)
{
	struct shm_inflight *sl = &g->table[c->slots[k]];

	return sl->seq == c->seqs[k] ? sl : NULL;
}

/* Queue slot i for deletion (ACKED) or hand-back (RETURNING) at its source. */
static void slot_settle(struct ingest *g, uint32_t i, uint32_t state)
{
	struct shm_inflight *sl = &g->table[i];
	struct source *s = &g->src[sl->source];
	struct slotq *q = state == SHM_INFLIGHT_ACKED ? &s->acks : &s->returns;

	slot_state(sl, state);
	if (q == &s->acks && !q->n)
		s->oldest_ack_ns = g->now;
	if (slotq_push(q, i) < 0)
		log_err("out of memory queueing a settle: slot %u kept until restart", i);
}

void ingest_settle_retry(struct ingest *g, struct call *c, unsigned k)
{
	struct shm_inflight *sl = ingest_call_slot(g, c, k);

	if (sl)
		slot_settle(g, c->slots[k], sl->state);
}

/* The next seq whose slot is free; 0 when the table is full. */
static uint64_t slot_claim(struct ingest *g, uint32_t *ret)
{
	struct shm_header *h = g->w->seg->hdr;
	uint64_t seq = h->next_seq;

	if (g->used >= g->slots)
		return 0;
	/* Seqs stay increasing; one whose slot is still held is skipped. */
	for (;; seq++) {
		uint32_t i = (uint32_t)(seq & (g->slots - 1));

		if (!g->table[i].seq) {
			*ret = i;
			__atomic_store_n(&h->next_seq, seq + 1, __ATOMIC_RELEASE);
			g->used++;
			return seq;
		}
	}
}

/*
 * Where the previous incarnation left the table: see ingest.h. Called once
 * at start, before anything is pulled.
 */
static int table_recover(struct ingest *g)
{
	struct worker *w = g->w;
	struct shm_header *h = w->seg->hdr;
	uint64_t max_seq = h->next_seq ? h->next_seq - 1 : 0;
	unsigned pipeline = 0, acked = 0, returning = 0, orphans = 0;

	for (unsigned r = 0; r < w->n_out; r++)
		if (g->skip[r] > max_seq)
			max_seq = g->skip[r];
	/* Counted again below, slot by slot: the predecessor's counts would count twice. */
	for (unsigned k = 0; k < g->n_src; k++)
		__atomic_store_n(&g->src[k].shm->inflight, 0, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < g->slots; i++) {
		struct shm_inflight *sl = &g->table[i];
		unsigned k;

		if (!sl->seq)
			continue;
		g->used++;
		if (sl->seq > max_seq)
			max_seq = sl->seq;
		/* Its source, by name: the configuration may have changed since. */
		for (k = 0; k < g->n_src; k++)
			if (g->src[k].hash == sl->source_hash)
				break;
		if (k == g->n_src || sl->shard >= w->n_out) {
			log_warning("in-flight seq %" PRIu64 " belongs to a source no longer "
				    "configured: dropped (the source will deliver it again)",
				    sl->seq);
			sl->source = UINT16_MAX;
			orphans++;
			g->used--;
			slot_state(sl, SHM_INFLIGHT_FREE);
			sl->seq = 0;
			continue;
		}
		sl->source = (uint16_t)k;
		sl->busy = 0;
		__atomic_fetch_add(&g->src[k].shm->inflight, 1, __ATOMIC_RELAXED);
		switch (sl->state) {
		case SHM_INFLIGHT_RECEIVED:
			/* Published if its shard ring holds its seq (rings keep seq order). */
			if (sl->seq <= g->skip[sl->shard]) {
				slot_state(sl, SHM_INFLIGHT_PIPELINE);
				pipeline++;
			} else {
				slot_settle(g, i, SHM_INFLIGHT_RETURNING);
				returning++;
			}
			break;
		case SHM_INFLIGHT_PIPELINE:
			pipeline++;
			break;
		case SHM_INFLIGHT_ACKED:
		case SHM_INFLIGHT_RETURNING:
			slot_settle(g, i, sl->state);
			sl->state == SHM_INFLIGHT_ACKED ? acked++ : returning++;
			break;
		default:
			slot_settle(g, i, SHM_INFLIGHT_RETURNING);
			returning++;
		}
	}
	h->next_seq = max_seq + 1;
	if (pipeline + acked + returning + orphans)
		log_info("in-flight table taken over: %u in the pipeline, %u to delete, %u to hand "
			 "back, %u orphaned",
			 pipeline, acked, returning, orphans);
	return 0;
}

/* --- taking messages ------------------------------------------------------------- */

int ingest_take(struct ingest *g, struct source *s, const struct msg_source_view *m,
		struct msg_bytes shard_key, const char *token, uint32_t token_len, const char *why)
{
	struct worker *w = g->w;
	struct shm_inflight *sl;
	uint32_t i, shard, len, slen = msg_source_size(m);
	struct msg_source_view bodiless;
	char reason[256], big[128];
	uint64_t seq;
	void *p;

	if (token_len > SHM_INFLIGHT_TOKEN_MAX)
		return -EINVAL; /* sources check this first */
	seq = slot_claim(g, &i);
	if (!seq)
		return -ENOSPC;
	if (!shard_key.len)
		shard_key = m->id;
	shard = fnv1a32(shard_key.p, shard_key.len) % w->n_out;
	if (!why && slen > w->out[shard].max_record) {
		/* It could never go, and handed back it would come back for ever. */
		snprintf(big, sizeof(big),
			 "message of %u bytes, larger than a ring record (%u): its body is not "
			 "carried",
			 slen, w->out[shard].max_record);
		bodiless = *m;
		bodiless.body.len = 0;
		m = &bodiless;
		slen = msg_source_size(m);
		why = big;
	}
	sl = &g->table[i];
	sl->source = (uint16_t)s->idx;
	sl->source_hash = s->hash;
	sl->shard = shard;
	sl->token_len = (uint16_t)token_len;
	memcpy(sl->token, token, token_len);
	sl->received_ns = g->now;
	sl->deadline_ns = g->now + (uint64_t)s->timeout_s * 1000 * MS;
	sl->extensions = 0;
	sl->busy = 0;
	__atomic_store_n(&sl->seq, seq, __ATOMIC_RELEASE);
	slot_state(sl, SHM_INFLIGHT_RECEIVED);
	__atomic_fetch_add(&s->shm->received, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->shm->inflight, 1, __ATOMIC_RELAXED);

	if (why)
		snprintf(reason, sizeof(reason), "ingest: %s", why);
	len = why ? msg_dead_size((uint32_t)strlen(reason), slen) : slen;
	/*
	 * Once a shard refused a message of this batch, later ones for it go
	 * back too: a FIFO group (or a tenant) never overtakes itself.
	 */
	p = g->draining || g->stopping || (g->pend.blocked_mask >> shard & 1) ||
			    len > w->out[shard].capacity / 2
		    ? NULL
		    : ring_reserve(&w->out[shard], len);
	if (!p) {
		if (len > w->out[shard].capacity / 2)
			log_err("%s %s: message %.*s: %u bytes, larger than a ring takes: handed "
				"back (raise ring_size)",
				s->ops->kind, s->name, (int)m->id.len, (const char *)m->id.p, len);
		g->pend.blocked_mask |= 1ull << shard;
		__atomic_fetch_add(&s->shm->handed_back, 1, __ATOMIC_RELAXED);
		slot_settle(g, i, SHM_INFLIGHT_RETURNING);
		return 0;
	}
	if (why) {
		unsigned char *enc = malloc(slen);

		if (!enc) {
			slot_settle(g, i, SHM_INFLIGHT_RETURNING);
			return 0;
		}
		msg_source_encode(enc, slen, m);
		msg_dead_encode(p, len, SHM_WORKER_INGEST, reason, enc, slen);
		free(enc);
		__atomic_fetch_add(&w->cb->dead_letters, 1, __ATOMIC_RELAXED);
	} else {
		msg_source_encode(p, len, m);
	}
	ring_push(&w->out[shard], len, why ? MSG_REC_DEAD : MSG_REC_SOURCE, 0, seq);
	__atomic_fetch_add(&w->cb->records_out, 1, __ATOMIC_RELAXED);
	if (g->pend.n == g->pend.cap) {
		size_t cap = g->pend.cap ? 2 * g->pend.cap : 256;
		uint32_t *nv = realloc(g->pend.slots, cap * sizeof(*nv));

		if (!nv) {
			/* Published but not marked: a restart would mark it (it is in the ring). */
			g->pend.dirty |= 1ull << shard;
			return 0;
		}
		g->pend.slots = nv;
		g->pend.cap = cap;
	}
	g->pend.slots[g->pend.n++] = i;
	g->pend.dirty |= 1ull << shard;
	return 0;
}

void ingest_publish(struct ingest *g)
{
	struct worker *w = g->w;

	for (unsigned r = 0; r < w->n_out; r++)
		if (g->pend.dirty >> r & 1)
			ring_publish(&w->out[r]);
	/* Published: a crash from here on finds them in the rings anyway. */
	for (size_t k = 0; k < g->pend.n; k++)
		slot_state(&g->table[g->pend.slots[k]], SHM_INFLIGHT_PIPELINE);
	g->pend.n = 0;
	g->pend.dirty = 0;
	g->pend.blocked_mask = 0;
}

/* --- calls ----------------------------------------------------------------------- */

static struct call *call_get(struct ingest *g, struct source *s, enum call_kind kind)
{
	struct call *c = g->free_calls;

	if (c) {
		g->free_calls = c->next;
	} else {
		c = calloc(1, sizeof(*c));
		if (!c)
			return NULL;
		c->easy = curl_easy_init();
		if (!c->easy) {
			free(c);
			return NULL;
		}
	}
	c->kind = kind;
	c->src = s;
	c->n = 0;
	c->reserved = 0;
	c->aws = NULL;
	c->req = NULL;
	c->started_ns = g->now;
	c->next = NULL;
	return c;
}

static void call_put(struct ingest *g, struct call *c)
{
	curl_easy_reset(c->easy);
	c->next = g->free_calls;
	g->free_calls = c;
}

/*
 * A call that could not be started: its source releases what it built (its
 * done() takes CURLE_ABORTED_BY_CALLBACK as "never mind"), then it is put
 * back in the pool.
 */
static void call_abandon(struct ingest *g, struct call *c)
{
	c->src->ops->done(g, c, CURLE_ABORTED_BY_CALLBACK);
	call_put(g, c);
}

int ingest_call_start(struct ingest *g, struct call *c)
{
	CURLMcode mc;

	curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
	mc = curl_multi_add_handle(g->multi, c->easy);
	if (mc != CURLM_OK) {
		log_err("curl: %s", curl_multi_strerror(mc));
		return -EIO;
	}
	c->prev = NULL;
	c->next = g->active;
	if (g->active)
		g->active->prev = c;
	g->active = c;
	g->calls++;
	__atomic_fetch_add(&c->src->shm->calls, 1, __ATOMIC_RELAXED);
	return 0;
}

static void call_finished(struct ingest *g, struct call *c, CURLcode code)
{
	struct source *s = c->src;

	curl_multi_remove_handle(g->multi, c->easy);
	if (c->prev)
		c->prev->next = c->next;
	else
		g->active = c->next;
	if (c->next)
		c->next->prev = c->prev;
	g->calls--;
	switch (c->kind) {
	case CALL_ATTRS:
		s->attrs_pending = 0;
		break;
	case CALL_RECEIVE:
		s->receiving--;
		break;
	default:
		s->settling--;
		for (unsigned k = 0; k < c->n; k++) {
			struct shm_inflight *sl = ingest_call_slot(g, c, k);

			if (sl)
				sl->busy = 0;
		}
	}
	s->ops->done(g, c, code);
	if (c->kind == CALL_RECEIVE) {
		g->reserved -= c->reserved;
		ingest_publish(g);
	}
	call_put(g, c);
}

/* --- what the loop starts ----------------------------------------------------------- */

/* Some shard ring can take a receive's worth. */
static int room_somewhere(struct ingest *g)
{
	struct worker *w = g->w;

	for (unsigned r = 0; r < w->n_out; r++) {
		unsigned k = (g->turn + r) % w->n_out;

		if (ring_reserve(&w->out[k], (uint32_t)(w->out[k].capacity / ROOM_FRACTION))) {
			g->turn = k + 1;
			return 1;
		}
	}
	return 0;
}

static unsigned start_receives(struct ingest *g)
{
	unsigned started = 0;

	if (g->draining || g->stopping || !g->n_net)
		return 0;
	for (unsigned i = 0; i < g->n_net; i++) {
		struct source *s = &g->src[i];
		struct call *c;

		if (s->retry_at > g->now)
			continue;
		if (!s->ready) {
			if (s->attrs_pending)
				continue;
			c = call_get(g, s, CALL_ATTRS);
			if (!c)
				return started;
			if (s->ops->attrs(g, s, c) < 0 || ingest_call_start(g, c) < 0) {
				call_abandon(g, c);
				continue;
			}
			s->attrs_pending = 1;
			continue;
		}
		while (s->receiving < s->pulls_max) {
			unsigned max = s->ops->receive_max;

			/* Every message it may bring has a slot, and some shard has room. */
			if (g->used + g->reserved + max > g->slots || !room_somewhere(g))
				return started;
			c = call_get(g, s, CALL_RECEIVE);
			if (!c)
				return started;
			c->reserved = max;
			if (s->ops->receive(g, s, c, max) < 0 || ingest_call_start(g, c) < 0) {
				call_abandon(g, c);
				break;
			}
			g->reserved += max;
			s->receiving++;
			started++;
		}
	}
	return started;
}

/* Start one settle call for up to batch_max slots of q. */
static int settle_some(struct ingest *g, struct source *s, struct slotq *q, enum call_kind kind,
		       unsigned timeout_s)
{
	unsigned max = s->ops->batch_max, n = 0;
	struct call *c = call_get(g, s, kind);
	size_t k = 0;

	if (!c)
		return -ENOMEM;
	/* Take from the front; keep queue order. */
	while (k < q->n && n < max) {
		uint32_t i = q->v[k++];
		struct shm_inflight *sl = &g->table[i];

		if (!sl->seq)
			continue;
		if (!sl->token_len) {
			/* Nothing to settle it with (its receipt was unusable): the source
			 * redelivers. */
			ingest_slot_free(g, i);
			continue;
		}
		c->slots[n] = i;
		c->seqs[n] = sl->seq;
		sl->busy = 1;
		n++;
	}
	memmove(q->v, q->v + k, (q->n - k) * sizeof(*q->v));
	q->n -= k;
	c->n = n;
	if (!n) {
		call_put(g, c);
		return 0;
	}
	if (s->ops->settle(g, s, c, timeout_s) < 0 || ingest_call_start(g, c) < 0) {
		/* Not sent: back in the queue, tried again later. */
		for (unsigned j = 0; j < c->n; j++) {
			g->table[c->slots[j]].busy = 0;
			ingest_settle_retry(g, c, j);
		}
		call_abandon(g, c);
		return -EIO;
	}
	s->settling++;
	return 1;
}

static unsigned start_settles(struct ingest *g)
{
	unsigned started = 0;

	for (unsigned i = 0; i < g->n_net; i++) {
		struct source *s = &g->src[i];
		int linger_over = g->now - s->oldest_ack_ns >= ACK_LINGER_MS * MS;

		if (s->retry_at > g->now && s->shm->health != SHM_SOURCE_OK)
			continue;
		/* Deletes: full batches at once, a partial one after a short linger. */
		while (s->acks.n && (s->acks.n >= s->ops->batch_max || linger_over || g->draining ||
				     g->stopping))
			if (settle_some(g, s, &s->acks, CALL_DELETE, 0) <= 0)
				break;
			else
				started++;
		while (s->returns.n)
			if (settle_some(g, s, &s->returns, CALL_RETURN,
					g->draining || g->stopping ? 0 : g->handback_s) <= 0)
				break;
			else
				started++;
		if (s->acks.n)
			s->oldest_ack_ns = linger_over ? g->now : s->oldest_ack_ns;
	}
	return started;
}

/*
 * Extend the visibility / ack deadline of messages still in the pipeline
 * once half of it has run out, back to the source's full timeout: a slow
 * pipeline never makes a source deliver again what is in flight.
 */
static void scan_extensions(struct ingest *g)
{
	struct call **open = NULL;

	if (g->now < g->next_scan || !g->slots)
		return;
	g->next_scan = g->now + SCAN_MS * MS;
	open = calloc(g->n_net, sizeof(*open));
	if (!open)
		return;
	for (uint32_t i = 0; i < g->slots; i++) {
		struct shm_inflight *sl = &g->table[i];
		struct source *s;
		struct call *c;
		uint64_t half;

		if (!sl->seq || sl->busy || sl->state != SHM_INFLIGHT_PIPELINE ||
		    sl->source >= g->n_net)
			continue;
		s = &g->src[sl->source];
		half = (uint64_t)s->timeout_s * 1000 * MS / 2;
		if (sl->deadline_ns > g->now + half)
			continue;
		c = open[sl->source];
		if (!c) {
			c = call_get(g, s, CALL_EXTEND);
			if (!c)
				break;
			open[sl->source] = c;
		}
		c->slots[c->n] = i;
		c->seqs[c->n] = sl->seq;
		sl->busy = 1;
		if (++c->n == s->ops->batch_max) {
			if (s->ops->settle(g, s, c, s->timeout_s) < 0 ||
			    ingest_call_start(g, c) < 0) {
				for (unsigned j = 0; j < c->n; j++)
					g->table[c->slots[j]].busy = 0;
				call_abandon(g, c);
			} else {
				s->settling++;
			}
			open[sl->source] = NULL;
		}
	}
	for (unsigned k = 0; k < g->n_net; k++) {
		struct call *c = open[k];

		if (!c)
			continue;
		if (g->src[k].ops->settle(g, &g->src[k], c, g->src[k].timeout_s) < 0 ||
		    ingest_call_start(g, c) < 0) {
			for (unsigned j = 0; j < c->n; j++)
				g->table[c->slots[j]].busy = 0;
			call_abandon(g, c);
		} else {
			g->src[k].settling++;
		}
	}
	free(open);
}

/* --- acks from produce ---------------------------------------------------------------- */

static unsigned read_acks(struct ingest *g)
{
	struct worker *w = g->w;
	struct ring *acks = &w->in[0];
	const struct ring_rec *rec;
	unsigned n = 0;

	while ((rec = ring_read(acks))) {
		if (rec->type != MSG_REC_ACK)
			continue;
		n++;
		if (g->slots) {
			uint32_t i = (uint32_t)(rec->seq & (g->slots - 1));
			struct shm_inflight *sl = &g->table[i];

			/* A seq of another table (replay) or one settled already is no one's. */
			if (sl->seq == rec->seq && sl->state == SHM_INFLIGHT_PIPELINE)
				slot_settle(g, i, SHM_INFLIGHT_ACKED);
		}
	}
	if (n) {
		/* Marked in the table first: the ack ring may forget them now. */
		ring_commit(acks);
		__atomic_fetch_add(&w->cb->records_in, n, __ATOMIC_RELAXED);
	}
	return n;
}

static int produce_drained(const struct ingest *g)
{
	const struct worker *w = g->w;

	return g->produce < 0 || __atomic_load_n(&w->seg->workers[g->produce].wstate,
						 __ATOMIC_ACQUIRE) == SHM_WSTATE_DRAINED;
}

/* Everything queued is settled and no call but receives is in flight. */
static int settled(const struct ingest *g)
{
	for (unsigned i = 0; i < g->n_net; i++) {
		const struct source *s = &g->src[i];

		if (s->acks.n || s->returns.n || s->settling || s->attrs_pending)
			return 0;
	}
	return 1;
}

/*
 * Leaving: receives still waiting (long polls) are dropped. A message a
 * dropped receive would have brought stays invisible at its source until
 * its timeout, then comes again: late, never lost.
 */
static void abort_receives(struct ingest *g)
{
	struct call *c = g->active, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->kind == CALL_RECEIVE)
			call_finished(g, c, CURLE_ABORTED_BY_CALLBACK);
	}
}

/* Messages in the pipeline (their acks still to come). */
static int awaiting_acks(const struct ingest *g)
{
	return g->used > 0;
}

/* --- setup -------------------------------------------------------------------------- */

static int ingest_init(struct worker *w)
{
	struct ingest *g = calloc(1, sizeof(*g));
	const struct ferry_config *cfg = &w->cfg;
	unsigned n_src = w->seg->hdr->n_sources;
	int r;

	if (!g)
		return -ENOMEM;
	w->ctx = g;
	g->w = w;
	g->produce = -1;
	g->rng = now_ns() | 1;
	g->handback_s = (unsigned)((cfg->handback_delay_ms + 999) / 1000);
	for (unsigned i = 0; i < w->seg->hdr->n_workers; i++)
		if (w->seg->workers[i].kind == SHM_WORKER_PRODUCE)
			g->produce = (int)i;
	if (w->n_out == 0 || w->n_in != 1 || w->n_out > 64) {
		log_err("ingest needs 1 to 64 shard rings and one ack ring, has %u and %u",
			w->n_out, w->n_in);
		return -EINVAL;
	}
	for (unsigned s = 0; s < w->n_out; s++)
		g->skip[s] = ring_last_seq(&w->out[s]);
	g->n_net = (unsigned)(cfg->sqs_queues.n + cfg->pubsub_subs.n);
	if (n_src < g->n_net || (g->n_net && !w->seg->hdr->inflight_slots)) {
		log_err("the segment has %u sources and %u in-flight slots, the configuration %u "
			"sources: restart ferryd to take up a changed source list",
			n_src, w->seg->hdr->inflight_slots, g->n_net);
		return -EINVAL;
	}
	g->table = shm_inflight(w->seg);
	g->slots = w->seg->hdr->inflight_slots;
	g->src = calloc(g->n_net + 1, sizeof(*g->src)); /* + the dead-letter spool */
	if (!g->src)
		return -ENOMEM;
	g->n_src = g->n_net;
	for (unsigned i = 0; i < g->n_net; i++) {
		struct source *s = &g->src[i];
		int sqs = i < cfg->sqs_queues.n;

		s->idx = i;
		s->shm = &shm_sources(w->seg)[i];
		s->name = sqs ? cfg->sqs_queues.v[i] : cfg->pubsub_subs.v[i - cfg->sqs_queues.n];
		s->hash = fnv1a32(s->name, strlen(s->name));
		s->ops = sqs ? &sqs_source_ops : &pubsub_source_ops;
		s->pulls_max = sqs ? cfg->sqs_receives : cfg->pubsub_pulls;
		if (strncmp(s->shm->name, s->name, sizeof(s->shm->name) - 1)) {
			log_err("source %u is %s in the segment, %s in the configuration: restart "
				"ferryd to take up a changed source list",
				i, s->shm->name, s->name);
			return -EINVAL;
		}
	}
	if (g->n_net) {
		g->multi = curl_multi_init();
		if (!g->multi)
			return -ENOMEM;
		/* HTTP/2 multiplexing where the server offers it; many connections otherwise. */
		curl_multi_setopt(g->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
		curl_multi_setopt(g->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
	}
	r = dlq_src_init(g);
	if (r < 0)
		return r;
	if (g->slots) {
		r = table_recover(g);
		if (r < 0)
			return r;
	}
	if (cfg->sqs_queues.n) {
		r = sqs_sources_init(g);
		if (r < 0)
			return r;
	}
	if (cfg->pubsub_subs.n) {
		r = pubsub_sources_init(g);
		if (r < 0)
			return r;
	}
	return replay_init(g);
}

static void ingest_fini(struct worker *w)
{
	struct ingest *g = w->ctx;

	if (!g)
		return;
	replay_fini(g);
	dlq_src_fini(g);
	while (g->active) {
		struct call *c = g->active;

		g->active = c->next;
		curl_multi_remove_handle(g->multi, c->easy);
		aws_request_free(c->aws);
		curl_easy_cleanup(c->easy);
		free(c);
	}
	while (g->free_calls) {
		struct call *c = g->free_calls;

		g->free_calls = c->next;
		curl_easy_cleanup(c->easy);
		free(c);
	}
	if (g->multi)
		curl_multi_cleanup(g->multi);
	sqs_sources_fini(g);
	pubsub_sources_fini(g);
	for (unsigned i = 0; i < g->n_src; i++) {
		free(g->src[i].acks.v);
		free(g->src[i].returns.v);
	}
	free(g->src);
	free(g->pend.slots);
	free(g);
	w->ctx = NULL;
}

/* --- the loop ----------------------------------------------------------------------- */

static unsigned run_curl(struct ingest *g, int timeout_ms)
{
	unsigned done = 0;
	int running, left;
	CURLMsg *m;

	if (!g->multi)
		return 0;
	if (timeout_ms >= 0 && g->calls)
		curl_multi_poll(g->multi, NULL, 0, timeout_ms, NULL);
	curl_multi_perform(g->multi, &running);
	g->now = now_ns();
	while ((m = curl_multi_info_read(g->multi, &left))) {
		struct call *c = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
		call_finished(g, c, m->data.result);
		done++;
	}
	return done;
}

static int ingest_run(struct worker *w)
{
	struct ingest *g = w->ctx;
	struct shm_wake *bell = &w->cb->wake; /* acks and shard-ring space both ring it */
	int drained_said = 0;

	for (;;) {
		unsigned did = 0;

		g->now = now_ns();
		worker_beat(w);
		if (worker_stop && !g->stopping) {
			/* Hot restart: the table keeps what is in flight for the next one. */
			g->stopping = 1;
			log_info("stopping: %u calls in flight finish first", g->calls);
		}
		if (!g->draining &&
		    __atomic_load_n(&w->seg->hdr->state, __ATOMIC_ACQUIRE) == SHM_ISTATE_DRAINING)
			g->draining = 1;
		did += read_acks(g);
		if (!g->draining && !g->stopping)
			did += replay_pull(g);
		did += dlq_src_pull(g);
		did += start_receives(g);
		did += start_settles(g);
		scan_extensions(g);
		did += run_curl(g, -1);
		if (g->draining) {
			/* Writes nothing more downstream (late receives are handed back). */
			if (!drained_said) {
				__atomic_store_n(&w->cb->wstate, SHM_WSTATE_DRAINED,
						 __ATOMIC_RELEASE);
				drained_said = 1;
			}
			if (produce_drained(g) && !read_acks(g) && settled(g)) {
				abort_receives(g);
				break;
			}
		}
		if (g->stopping && settled(g)) {
			abort_receives(g);
			break;
		}
		if (did)
			continue;
		if (g->calls) {
			/*
			 * curl's sockets and the rings cannot share one wait: wait on curl,
			 * briefly while acks or ring space may be coming.
			 */
			run_curl(g, awaiting_acks(g) || replay_remaining(g) ? 1 : WAIT_MS);
			continue;
		}
		{
			uint32_t seen = shm_wake_prepare(bell);

			if (read_acks(g) || (!g->draining && replay_pull(g)) || worker_stop) {
				shm_wake_cancel(bell);
				continue;
			}
			shm_wake_sleep(bell, seen,
				       w->cfg.replay_rate && replay_remaining(g) && !g->draining
					       ? 1 + (int)(1000 / w->cfg.replay_rate)
				       : awaiting_acks(g) ? 5
							  : WAIT_MS);
		}
	}
	read_acks(g);
	return 0;
}

static const struct stage_ops ingest_ops = {
	.name = "ingest",
	.init = ingest_init,
	.run = ingest_run,
	.fini = ingest_fini,
};

int main(int argc, char **argv)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return worker_main(argc, argv, &ingest_ops);
}
