/* SPDX-License-Identifier: MIT */
/*
 * produce: catalog events and dead letters into Kafka with librdkafka
 * (idempotent, acks=all), and each source message's seq onto the ack ring
 * once Kafka confirmed everything made from it.
 *
 * Zero copy: librdkafka is handed pointers into the input rings, which is
 * safe because an input record is committed only after its delivery report.
 * Per input ring, a FIFO of in-flight records keeps their ring marks; the
 * frontier moves over delivered records in order, acking the seq of each
 * record that closes its source message, and commits the input up to it.
 *
 * Schema Registry ([registry] url set): before reading its rings, produce
 * resolves every catalog type's schema for its topic (registered with
 * auto_register, else looked up and compared: a difference refuses the
 * start, naming the subject), from the descriptor set compiled into this
 * binary (catalog_fds). Each event value then goes out in Confluent's wire
 * format: magic 0, schema id, message indexes, the protobuf. The header is
 * written in place, in the MSG_EVENT_ROOM bytes map left free right before
 * the value in the input record: librdkafka has no scatter-gather for
 * values, so header + payload must be contiguous, and writing into the
 * record is safe because the record is produce's alone until it commits
 * it after the delivery report; a restarted produce reads the record again
 * and writes the same header (same schema, same id) over it. A header
 * longer than the room (never for this catalog) falls back to one copy.
 * Without a registry the bare protobuf is sent, with a warning at start.
 *
 * A record Kafka refuses for good (too large, unknown topic, not
 * authorized, timed out) becomes a dead letter on the dead-letter topic;
 * a dead letter Kafka refuses is retried, never dropped: nothing is acked
 * that is not in Kafka.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>

#include "common/log.h"
#include "common/registry.h"
#include "common/time.h"
#include "workers/common/worker.h"
#include "workers/map/catalog.h"
#include "workers/produce/headers.h"
#include "workers/produce/kconf.h"

#define BATCH	 256
#define RETRY_NS 1000000000ull

enum entry_state { E_PENDING = 0, E_DONE, E_FAILED, E_RETRY };

struct entry {
	const struct ring_rec *rec;
	struct ring_mark mark;
	uint8_t state;
	uint8_t last; /* closes its source message: ack its seq when done */
	uint8_t dead; /* went to the dead-letter topic */
	char reason[96];
	uint64_t retry_at;
	uint64_t received_ns; /* its source message's receipt by ingest (CLOCK_REALTIME), 0: unknown
			       */
};

struct fifo {
	struct entry *e;
	uint64_t head, tail;		/* absolute ids: [tail, head) in flight */
	uint64_t cap;			/* power of two */
	const struct ring_rec *blocked; /* read, not accepted by librdkafka yet */
	struct ring_mark blocked_mark;
	int redo_due; /* an entry is E_FAILED or E_RETRY: redo() scans, else it costs nothing */
};

struct produce {
	rd_kafka_t *rk;
	struct fifo f[WORKER_RINGS_MAX];
	uint64_t inflight;

	/*
	 * Topic handles per catalog type, made on first use: with a handle
	 * rd_kafka_producev() skips its per-message lookup by name (a write
	 * lock on the whole client and a scan of its topic list).
	 */
	rd_kafka_topic_t *rkt[CATALOG_N];

	struct registry *reg; /* NULL: no registry, values are the bare protobuf */
	const struct registry_schema *schema[CATALOG_N]; /* per catalog type, into reg */
	int record_strategy; /* subjects by message name: the topic does not matter */
	int reg_busy;	     /* the resolver thread still uses reg: do not free it */
	int resolve_done;    /* set by the resolver thread (atomic) */
	int resolve_rc;
	char resolve_err[1024];
};

static struct entry *entry_at(struct fifo *f, uint64_t id)
{
	return &f->e[id & (f->cap - 1)];
}

static int fifo_push(struct fifo *f, uint64_t *ret_id)
{
	if (f->head - f->tail == f->cap) {
		uint64_t ncap = f->cap ? 2 * f->cap : 1024;
		struct entry *ne = calloc(ncap, sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		for (uint64_t id = f->tail; id != f->head; id++)
			ne[id & (ncap - 1)] = *entry_at(f, id);
		free(f->e);
		f->e = ne;
		f->cap = ncap;
	}
	*ret_id = f->head++;
	memset(entry_at(f, *ret_id), 0, sizeof(struct entry));
	return 0;
}

static void *opaque_of(unsigned ring, uint64_t id)
{
	return (void *)(uintptr_t)((id << 7) | ring);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *arg)
{
	struct produce *p = arg;
	uintptr_t op = (uintptr_t)m->_private;
	struct fifo *f = &p->f[op & 127];
	struct entry *e = entry_at(f, op >> 7);

	(void)rk;
	if (!m->err) {
		e->state = E_DONE;
		return;
	}
	snprintf(e->reason, sizeof(e->reason), "kafka: %s", rd_kafka_err2str(m->err));
	e->state = e->dead ? E_RETRY : E_FAILED;
	f->redo_due = 1;
	e->retry_at = now_ns() + RETRY_NS;
	log_warning("seq %" PRIu64 ": %s%s", e->rec->seq, e->reason,
		    e->dead ? " (dead letter; will retry)" : " (becomes a dead letter)");
}

static const char *stage_name(unsigned kind)
{
	static const char *names[] = {
		[SHM_WORKER_OTHER] = "other",	  [SHM_WORKER_INGEST] = "ingest",
		[SHM_WORKER_DECRYPT] = "decrypt", [SHM_WORKER_MAP] = "map",
		[SHM_WORKER_PRODUCE] = "produce",
	};

	return kind < ARRAY_SIZE(names) ? names[kind] : "unknown";
}

/* Send a record's source message to the dead-letter topic with why. */
static rd_kafka_resp_err_t produce_dead(struct worker *w, const struct ring_rec *rec,
					const char *why, void *opaque)
{
	struct produce *p = w->ctx;
	struct msg_dead_view d = {0};
	struct msg_source_view src = {0};
	struct msg_event_view ev;
	struct msg_bytes key = {0}, value = {0};
	/* A dead letter keeps the first stage's reason; a refused event gets why. */
	struct msg_bytes reason = {why ? why : "", why ? (uint32_t)strlen(why) : 0};
	const char *stage = stage_name(SHM_WORKER_PRODUCE);
	char seq[24];
	rd_kafka_headers_t *h;
	rd_kafka_resp_err_t err;

	if (rec->type == MSG_REC_DEAD && msg_dead_decode(rec->data, rec->len, &d) == 0) {
		src = d.msg;
		stage = stage_name(d.stage);
		if (d.reason.len)
			reason = d.reason;
		h = headers_of(src.attrs);
		key = src.id;
		value = src.body; /* as received: still encrypted */
		if (src.flags & MSG_F_PLAINTEXT) {
			/*
			 * Past decrypt (map's dead letters): the body is plaintext.
			 * The envelope as received goes instead (replay-dlq can send
			 * it again); a record without it goes without a value.
			 */
			value = src.orig;
			if (!value.len)
				rd_kafka_header_add(h, "ferry-dead-value-dropped", -1,
						    "decrypted plaintext", -1);
		}
	} else if (rec->type == MSG_REC_EVENT && msg_event_decode(rec->data, rec->len, &ev) == 0) {
		/*
		 * An event Kafka refused for good. Its value is made of the
		 * decrypted plaintext, which never goes to the dead-letter topic:
		 * the dead letter says which event (topic, key, headers with the
		 * source id) and why, without the value.
		 */
		h = headers_of(ev.headers);
		rd_kafka_header_add(h, "ferry-dead-topic", -1, ev.topic.p, (ssize_t)ev.topic.len);
		key = ev.key;
	} else {
		/* Unreadable: its bytes may hold plaintext, so only the reason goes. */
		h = rd_kafka_headers_new(4);
	}
	snprintf(seq, sizeof(seq), "%" PRIu64, rec->seq);
	rd_kafka_header_add(h, "ferry-dead-reason", -1, reason.p, (ssize_t)reason.len);
	rd_kafka_header_add(h, "ferry-dead-stage", -1, stage, -1);
	rd_kafka_header_add(h, "ferry-seq", -1, seq, -1);
	if (src.id.len)
		rd_kafka_header_add(h, "ferry-source-id", -1, src.id.p, (ssize_t)src.id.len);
	if (src.flags & MSG_F_REPLAYED) /* failed again after a replay-dlq */
		rd_kafka_header_add(h, "ferry-replayed", -1, "1", 1);
	err = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(w->cfg.dead_letter_topic),
				RD_KAFKA_V_KEY(key.p, key.len),
				RD_KAFKA_V_VALUE((void *)value.p, value.len), RD_KAFKA_V_HEADERS(h),
				RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
	if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && value.len) {
		/*
		 * Larger than Kafka takes (message.max.bytes): retried as it is,
		 * it would hold its seq, and the source, for ever. It goes
		 * without the bytes, saying so.
		 */
		char note[64];

		snprintf(note, sizeof(note), "%" PRIu32 " bytes: larger than Kafka takes",
			 value.len);
		rd_kafka_header_add(h, "ferry-dead-value-too-large", -1, note, -1);
		err = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(w->cfg.dead_letter_topic),
					RD_KAFKA_V_KEY(key.p, key.len), RD_KAFKA_V_VALUE(NULL, 0),
					RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(opaque),
					RD_KAFKA_V_END);
	}
	if (err)
		rd_kafka_headers_destroy(h);
	return err;
}

/*
 * The wire-format value of a catalog event: header + payload, contiguous.
 * In place in the room map left before the payload (see the top of this
 * file); else (a header longer than the room) one malloc'd copy that
 * librdkafka frees (RD_KAFKA_MSG_F_FREE). -ENOENT with why when the event
 * has no resolved schema (unknown type, or a topic other than its type's
 * under TopicNameStrategy, whose subject was not checked at start).
 */
static int framed_value(struct produce *p, const struct msg_event_view *ev, void **value,
			size_t *len, int *msgflags, char *why, size_t whylen)
{
	const struct registry_schema *s = ev->type < CATALOG_N ? p->schema[ev->type] : NULL;
	const struct catalog_entry *ce = catalog_get(ev->type);
	uint8_t *v;

	if (!s || !ce) {
		snprintf(why, whylen, "produce: unknown catalog type %u", ev->type);
		return -ENOENT;
	}
	if (!p->record_strategy && !msg_bytes_is(ev->topic, ce->topic)) {
		snprintf(why, whylen, "produce: topic not %.50s: its schema unchecked", ce->topic);
		return -ENOENT;
	}
	if (s->header_len <= ev->room) {
		v = (uint8_t *)ev->value.p - s->header_len;
		memcpy(v, s->header, s->header_len);
	} else {
		v = malloc(s->header_len + ev->value.len);
		if (!v) {
			snprintf(why, whylen, "produce: out of memory");
			return -ENOMEM;
		}
		memcpy(v, s->header, s->header_len);
		memcpy(v + s->header_len, ev->value.p, ev->value.len);
		*msgflags = RD_KAFKA_MSG_F_FREE;
	}
	*value = v;
	*len = s->header_len + ev->value.len;
	return 0;
}

/*
 * The handle for an event's topic: the one kept for its type when the name
 * matches, else a new one (kept for the type when it has none yet). The
 * caller destroys what comes back with *own set. NULL: refused (see
 * rd_kafka_last_error()).
 */
static rd_kafka_topic_t *topic_of(struct produce *p, const struct msg_event_view *ev, int *own)
{
	rd_kafka_topic_t *t = ev->type < CATALOG_N ? p->rkt[ev->type] : NULL;
	char name[256];

	*own = 0;
	if (t && msg_bytes_is(ev->topic, rd_kafka_topic_name(t)))
		return t;
	snprintf(name, sizeof(name), "%.*s", (int)ev->topic.len, (const char *)ev->topic.p);
	t = rd_kafka_topic_new(p->rk, name, NULL);
	if (t && ev->type < CATALOG_N && !p->rkt[ev->type])
		p->rkt[ev->type] = t;
	else
		*own = t != NULL;
	return t;
}

/* Hand one input record to librdkafka. 0, or -EAGAIN when its queue is full. */
static int produce_one(struct worker *w, unsigned i, const struct ring_rec *rec,
		       const struct ring_mark *mark)
{
	struct produce *p = w->ctx;
	struct fifo *f = &p->f[i];
	struct msg_event_view ev;
	rd_kafka_resp_err_t err = 0;
	struct entry *e;
	uint64_t id;
	int r;

	r = fifo_push(f, &id);
	if (r < 0)
		return r;
	e = entry_at(f, id);
	p->inflight++;
	e->rec = rec;
	e->mark = *mark;
	e->last = 1;
	if (rec->type == MSG_REC_EVENT && msg_event_decode(rec->data, rec->len, &ev) == 0) {
		e->last = ev.index + 1 >= ev.count;
		e->received_ns = ev.received_ns;
		if (ev.count == 0) { /* filtered: nothing to send, ack as is */
			e->state = E_DONE;
			return 0;
		}
		void *value = (void *)ev.value.p;
		size_t value_len = ev.value.len;
		int msgflags = 0;

		if (p->reg && ev.type) {
			r = framed_value(p, &ev, &value, &value_len, &msgflags, e->reason,
					 sizeof(e->reason));
			if (r < 0) { /* no schema for it: a dead letter saying why */
				e->state = E_FAILED;
				f->redo_due = 1;
				e->retry_at = 0;
				log_warning("seq %" PRIu64 ": %s (becomes a dead letter)", rec->seq,
					    e->reason);
				return 0;
			}
		}
		int own;
		rd_kafka_topic_t *rkt = topic_of(p, &ev, &own);
		rd_kafka_headers_t *h = headers_of(ev.headers);

		err = rkt ? rd_kafka_producev(p->rk, RD_KAFKA_V_RKT(rkt),
					      RD_KAFKA_V_KEY(ev.key.p, ev.key.len),
					      RD_KAFKA_V_VALUE(value, value_len),
					      RD_KAFKA_V_MSGFLAGS(msgflags), RD_KAFKA_V_HEADERS(h),
					      RD_KAFKA_V_OPAQUE(opaque_of(i, id)), RD_KAFKA_V_END)
			  : rd_kafka_last_error(); /* a name Kafka cannot take */
		if (!rkt && !err)
			err = RD_KAFKA_RESP_ERR__INVALID_ARG;
		if (own)
			rd_kafka_topic_destroy(rkt);
		if (err) {
			rd_kafka_headers_destroy(h);
			if (msgflags & RD_KAFKA_MSG_F_FREE) /* not taken: still ours */
				free(value);
		}
	} else {
		const char *why = rec->type == MSG_REC_DEAD ? NULL : "produce: unreadable record";
		struct msg_dead_view d;

		if (rec->type == MSG_REC_DEAD && msg_dead_decode(rec->data, rec->len, &d) == 0)
			e->received_ns = d.msg.received_ns;
		e->dead = 1;
		err = produce_dead(w, rec, why, opaque_of(i, id));
		if (!err)
			__atomic_fetch_add(&w->cb->dead_letters, 1, __ATOMIC_RELAXED);
	}
	if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
		f->head--; /* not in flight after all */
		p->inflight--;
		return -EAGAIN;
	}
	if (err) {
		/* Refused before queueing (unknown topic in a strict cluster, too large...). */
		snprintf(e->reason, sizeof(e->reason), "kafka: %s", rd_kafka_err2str(err));
		e->state = e->dead ? E_RETRY : E_FAILED;
		f->redo_due = 1;
		e->retry_at = now_ns() + (e->dead ? RETRY_NS : 0);
	}
	return 0;
}

/* Failed events go to the dead-letter topic; refused dead letters again, later. */
static void redo(struct worker *w, unsigned i)
{
	struct produce *p = w->ctx;
	struct fifo *f = &p->f[i];
	uint64_t now;
	int left = 0;

	/* Not a scan of everything in flight on every turn of the loop: only when due. */
	if (!f->redo_due)
		return;
	now = now_ns();
	for (uint64_t id = f->tail; id != f->head; id++) {
		struct entry *e = entry_at(f, id);

		if (e->state != E_FAILED && e->state != E_RETRY)
			continue;
		if (e->retry_at > now) {
			left = 1;
			continue;
		}
		e->dead = 1;
		e->state = E_PENDING;
		if (produce_dead(w, e->rec, e->reason, opaque_of(i, id))) {
			e->state = E_RETRY;
			e->retry_at = now + RETRY_NS;
			left = 1;
		}
	}
	f->redo_due = left;
}

/*
 * One delivery latency into this stage's histogram (struct shm_latency).
 * Single writer: plain relaxed loads and stores, no locked instructions;
 * a reader may see the count a moment before the bucket.
 */
static void latency_record(struct shm_latency *l, uint64_t received_ns, uint64_t now_real)
{
	uint64_t us = now_real > received_ns ? (now_real - received_ns) / 1000 : 0;
	unsigned lo = 0, hi = SHM_LATENCY_BUCKETS - 1;

	if (!received_ns)
		return;
	/* The first bound >= us (binary search over 19), else the overflow bucket. */
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (us <= shm_latency_bounds_us[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	__atomic_store_n(&l->bucket[lo], __atomic_load_n(&l->bucket[lo], __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&l->sum_us, __atomic_load_n(&l->sum_us, __ATOMIC_RELAXED) + us,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&l->count, __atomic_load_n(&l->count, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
}

/* Move over delivered records in order: ack their seqs, commit the input. */
static unsigned advance(struct worker *w, unsigned i)
{
	struct produce *p = w->ctx;
	struct fifo *f = &p->f[i];
	struct ring *acks = &w->out[0];
	struct ring_mark last;
	uint64_t now_real = 0;
	unsigned n = 0;

	while (f->tail != f->head) {
		struct entry *e = entry_at(f, f->tail);

		if (e->state != E_DONE)
			break;
		if (e->last && ring_write(acks, MSG_REC_ACK, e->rec->seq, NULL, 0) < 0)
			break; /* ack ring full: later */
		if (e->last) {
			if (!now_real)
				now_real = realtime_ns();
			latency_record(&w->cb->latency, e->received_ns, now_real);
		}
		last = e->mark;
		f->tail++;
		p->inflight--;
		n++;
	}
	if (n) {
		ring_publish(acks);
		ring_commit_mark(&w->in[i], &last);
		__atomic_fetch_add(&w->cb->records_out, n, __ATOMIC_RELAXED);
	}
	return n;
}

static unsigned read_input(struct worker *w, unsigned i)
{
	struct produce *p = w->ctx;
	struct fifo *f = &p->f[i];
	unsigned n = 0;

	while (n < BATCH) {
		const struct ring_rec *rec = f->blocked;
		struct ring_mark mark = f->blocked_mark;
		int r;

		if (!rec) {
			rec = ring_read(&w->in[i]);
			if (!rec) {
				if (errno == EBADMSG)
					log_err("input ring %s is corrupt", w->in[i].sh->name);
				break;
			}
			ring_mark(&w->in[i], &mark);
			__atomic_fetch_add(&w->cb->records_in, 1, __ATOMIC_RELAXED);
		}
		r = produce_one(w, i, rec, &mark);
		if (r == -EAGAIN) { /* librdkafka's queue is full: stop reading */
			f->blocked = rec;
			f->blocked_mark = mark;
			break;
		}
		f->blocked = NULL;
		n++;
	}
	return n;
}

static int all_drained(struct worker *w)
{
	struct produce *p = w->ctx;

	for (unsigned i = 0; i < w->n_in; i++)
		if (!worker_upstream_drained(w, i) || p->f[i].blocked || ring_readable(&w->in[i]))
			return 0;
	return p->inflight == 0;
}

/* The resolver thread: every catalog type's schema, in catalog order, first error stops. */
static void *resolve_all(void *arg)
{
	struct produce *p = arg;
	int rc = 0;

	for (uint16_t t = 1; t < CATALOG_N && !rc; t++) {
		const struct catalog_entry *ce = catalog_get(t);
		char err[900];

		rc = registry_resolve(p->reg, ce->desc->name, ce->topic, &p->schema[t], err,
				      sizeof(err));
		if (rc < 0)
			snprintf(p->resolve_err, sizeof(p->resolve_err), "%s (topic %s): %s",
				 ce->desc->name, ce->topic, err);
	}
	p->resolve_rc = rc;
	__atomic_store_n(&p->resolve_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * The schemas of the catalog, before any ring is read. Resolution may take
 * retry_for (an unreachable registry) plus timeouts, longer than ferryd's
 * heartbeat timeout: it runs on a thread while this one keeps beating.
 */
static int registry_start(struct worker *w)
{
	struct produce *p = w->ctx;
	const struct ferry_config *c = &w->cfg;
	struct registry_config rc = {
		.url = c->registry_url,
		.username = c->registry_username,
		.password = c->registry_password,
		.ca_file = c->registry_ca_file[0] ? c->registry_ca_file : NULL,
		.cert_file = c->registry_cert_file[0] ? c->registry_cert_file : NULL,
		.key_file = c->registry_key_file[0] ? c->registry_key_file : NULL,
		.tls_verify_off = !c->registry_tls_verify,
		.auto_register = c->registry_auto_register,
		.strategy = c->registry_strategy ? REGISTRY_RECORD_NAME : REGISTRY_TOPIC_NAME,
		.timeout_ms = (long)c->registry_timeout_ms,
		.retry_for_ms = c->registry_retry_for_ms ? (long)c->registry_retry_for_ms : -1,
	};
	char err[512];
	pthread_t th;

	if (!c->registry_url[0]) {
		log_warning("no [registry] url: events go out as bare protobuf, without the Schema "
			    "Registry wire format (Confluent deserializers cannot read them)");
		return 0;
	}
	p->record_strategy = c->registry_strategy != 0;
	p->reg = registry_new(&rc, catalog_fds, catalog_fds_len, err, sizeof(err));
	if (!p->reg) {
		log_err("schema registry: %s", err);
		return -EINVAL;
	}
	if (pthread_create(&th, NULL, resolve_all, p))
		return -EAGAIN;
	p->reg_busy = 1;
	while (!__atomic_load_n(&p->resolve_done, __ATOMIC_ACQUIRE)) {
		struct timespec ts = {0, 20 * 1000000};

		worker_beat(w);
		if (worker_stop) { /* leave the thread to the exit; keep reg for it */
			pthread_detach(th);
			return -ECANCELED;
		}
		nanosleep(&ts, NULL);
	}
	pthread_join(th, NULL);
	p->reg_busy = 0;
	if (p->resolve_rc < 0) {
		log_err("%s", p->resolve_err);
		/* "Stale file handle" (-ESTALE: the registry's schema differs) would mislead */
		return p->resolve_rc == -ESTALE ? -EINVAL : p->resolve_rc;
	}
	for (uint16_t t = 1; t < CATALOG_N; t++) {
		const struct registry_schema *s = p->schema[t];

		log_info("%s: subject %s, schema id %" PRIu32 ", version %d, header %zu bytes%s",
			 s->message, s->subject, s->id, s->version, s->header_len,
			 s->header_len > MSG_EVENT_ROOM ? " (longer than the room: copied)" : "");
	}
	return 0;
}

/* Catalog topics (and the dead-letter topic) missing in Kafka: a warning, they may be auto-created.
 */
static void topics_check(struct worker *w)
{
	struct produce *p = w->ctx;
	const struct rd_kafka_metadata *md = NULL;
	int timeout = (int)(w->cfg.heartbeat_timeout_ms / 2 < 5000 ? w->cfg.heartbeat_timeout_ms / 2
								   : 5000);
	char missing[1024] = "";
	size_t used = 0, n = 0;
	rd_kafka_resp_err_t err;

	worker_beat(w);
	/* All topics: asking for named ones could auto-create them. */
	err = rd_kafka_metadata(p->rk, 1, NULL, &md, timeout);
	worker_beat(w);
	if (err) {
		log_warning("cannot list Kafka's topics to check the catalog's: %s",
			    rd_kafka_err2str(err));
		return;
	}
	for (uint16_t t = 0; t <= CATALOG_N; t++) {
		const struct catalog_entry *ce = t < CATALOG_N ? catalog_get(t) : NULL;
		const char *name = t == CATALOG_N ? w->cfg.dead_letter_topic
				   : ce		  ? ce->topic
						  : NULL;
		int found = 0;

		if (!name)
			continue;
		for (int k = 0; k < md->topic_cnt && !found; k++)
			found = !strcmp(md->topics[k].topic, name) && !md->topics[k].err;
		if (found)
			continue;
		n++;
		if (used < sizeof(missing))
			used += (size_t)snprintf(missing + used, sizeof(missing) - used, "%s%s",
						 used ? ", " : "", name);
	}
	rd_kafka_metadata_destroy(md);
	if (n)
		log_warning("%zu topic%s missing in Kafka (produced to anyway: auto-creation may "
			    "make them): %s",
			    n, n > 1 ? "s" : "", missing);
}

static int produce_init(struct worker *w)
{
	struct produce *p;
	rd_kafka_conf_t *conf;
	char err[512];
	int r;

	/*
	 * One malloc arena for this thread and librdkafka's, set before they
	 * start: every message takes about ten allocations (message, header
	 * list, each header) freed later in bulk by delivery reports, and with
	 * an arena per thread malloc and free took over half of this thread's
	 * time in some runs (bench-e2e, perf); with one it stays near a tenth.
	 */
	mallopt(M_ARENA_MAX, 1);
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	w->ctx = p;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (w->n_out != 1 || w->n_in == 0 || w->n_in > 127) {
		log_err("produce needs input rings and one ack ring, has %u and %u", w->n_in,
			w->n_out);
		return -EINVAL;
	}
	/* What the last incarnation had in flight may reach Kafka twice. */
	w->cb->redelivered += w->cb->inflight;
	w->cb->inflight = 0;
	/* message.timeout.ms 0 unless [kafka] sets it; idempotence and acks=all forced. */
	conf = produce_conf_new(&w->cfg, err, sizeof(err));
	if (!conf) {
		log_err("%s", err);
		return -EINVAL;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_opaque(conf, p);
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!p->rk) {
		log_err("librdkafka: %s", err);
		return -EINVAL;
	}
	r = registry_start(w);
	if (r < 0)
		return r;
	topics_check(w);
	return 0;
}

static void produce_fini(struct worker *w)
{
	struct produce *p = w->ctx;

	if (!p)
		return;
	for (unsigned t = 0; t < CATALOG_N; t++)
		if (p->rkt[t])
			rd_kafka_topic_destroy(p->rkt[t]);
	if (p->rk)
		rd_kafka_destroy(p->rk);
	for (unsigned i = 0; i < WORKER_RINGS_MAX; i++)
		free(p->f[i].e);
	if (p->reg_busy)
		return; /* the resolver thread still holds it (stopped while starting) */
	registry_free(p->reg);
	free(p);
	w->ctx = NULL;
}

static int produce_run(struct worker *w)
{
	struct produce *p = w->ctx;
	uint64_t stop_deadline = 0;

	for (;;) {
		unsigned did = 0;

		worker_beat(w);
		if (!worker_stop)
			for (unsigned i = 0; i < w->n_in; i++)
				did += read_input(w, i);
		rd_kafka_poll(p->rk, 0);
		for (unsigned i = 0; i < w->n_in; i++) {
			redo(w, i);
			did += advance(w, i);
		}
		__atomic_store_n(&w->cb->inflight, (uint32_t)p->inflight, __ATOMIC_RELAXED);
		if (worker_stop) {
			/* Hot restart: finish what is in flight, ack it, go. */
			if (!p->inflight)
				return 0;
			if (!stop_deadline)
				stop_deadline = now_ns() + w->cfg.flush_timeout_ms * 1000000ull;
			if (now_ns() > stop_deadline) {
				log_warning("%" PRIu64 " records still in flight after the flush "
					    "timeout; leaving them to the next incarnation",
					    p->inflight);
				return 0;
			}
			rd_kafka_poll(p->rk, 10);
			continue;
		}
		if (all_drained(w))
			return 0;
		if (did)
			continue;
		if (p->inflight) {
			rd_kafka_poll(p->rk, 1);
		} else {
			struct shm_wake *bell = &w->cb->wake;
			uint32_t seen = shm_wake_prepare(bell);
			int ready = 0;

			for (unsigned i = 0; i < w->n_in && !ready; i++)
				ready = ring_readable(&w->in[i]);
			if (ready || worker_stop || worker_upstream_drained(w, 0))
				shm_wake_cancel(bell);
			else
				shm_wake_sleep(bell, seen, 100);
		}
	}
}

static const struct stage_ops produce_ops = {
	.name = "produce",
	.init = produce_init,
	.run = produce_run,
	.fini = produce_fini,
};

int main(int argc, char **argv)
{
	return worker_main(argc, argv, &produce_ops);
}
