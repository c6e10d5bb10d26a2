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
 * A record Kafka refuses for good (too large, unknown topic, not
 * authorized, timed out) becomes a dead letter on the dead-letter topic;
 * a dead letter Kafka refuses is retried, never dropped: nothing is acked
 * that is not in Kafka.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "common/log.h"
#include "common/time.h"
#include "workers/common/worker.h"

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
};

struct fifo {
	struct entry *e;
	uint64_t head, tail;		/* absolute ids: [tail, head) in flight */
	uint64_t cap;			/* power of two */
	const struct ring_rec *blocked; /* read, not accepted by librdkafka yet */
	struct ring_mark blocked_mark;
};

struct produce {
	rd_kafka_t *rk;
	struct fifo f[WORKER_RINGS_MAX];
	uint64_t inflight;
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
	e->retry_at = now_ns() + RETRY_NS;
	log_warning("seq %" PRIu64 ": %s%s", e->rec->seq, e->reason,
		    e->dead ? " (dead letter; will retry)" : " (becomes a dead letter)");
}

static rd_kafka_headers_t *headers_of(struct msg_bytes list)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(8);
	size_t pos = 0;
	struct msg_kv kv;

	while (msg_kv_next(list, &pos, &kv) > 0)
		rd_kafka_header_add(h, kv.key.p, (ssize_t)kv.key.len, kv.value.p,
				    (ssize_t)kv.value.len);
	return h;
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
	err = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(w->cfg.dead_letter_topic),
				RD_KAFKA_V_KEY(key.p, key.len),
				RD_KAFKA_V_VALUE((void *)value.p, value.len), RD_KAFKA_V_HEADERS(h),
				RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
	if (err)
		rd_kafka_headers_destroy(h);
	return err;
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
		char topic[256];

		e->last = ev.index + 1 >= ev.count;
		if (ev.count == 0) { /* filtered: nothing to send, ack as is */
			e->state = E_DONE;
			return 0;
		}
		snprintf(topic, sizeof(topic), "%.*s", (int)ev.topic.len, (const char *)ev.topic.p);
		rd_kafka_headers_t *h = headers_of(ev.headers);

		err = rd_kafka_producev(
			p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(ev.key.p, ev.key.len),
			RD_KAFKA_V_VALUE((void *)ev.value.p, ev.value.len), RD_KAFKA_V_HEADERS(h),
			RD_KAFKA_V_OPAQUE(opaque_of(i, id)), RD_KAFKA_V_END);
		if (err)
			rd_kafka_headers_destroy(h);
	} else {
		const char *why = rec->type == MSG_REC_DEAD ? NULL : "produce: unreadable record";

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
		e->retry_at = now_ns() + (e->dead ? RETRY_NS : 0);
	}
	return 0;
}

/* Failed events go to the dead-letter topic; refused dead letters again, later. */
static void redo(struct worker *w, unsigned i)
{
	struct produce *p = w->ctx;
	struct fifo *f = &p->f[i];
	uint64_t now = now_ns();

	for (uint64_t id = f->tail; id != f->head; id++) {
		struct entry *e = entry_at(f, id);

		if ((e->state != E_FAILED && e->state != E_RETRY) || e->retry_at > now)
			continue;
		e->dead = 1;
		e->state = E_PENDING;
		if (produce_dead(w, e->rec, e->reason, opaque_of(i, id))) {
			e->state = E_RETRY;
			e->retry_at = now + RETRY_NS;
		}
	}
}

/* Move over delivered records in order: ack their seqs, commit the input. */
static unsigned advance(struct worker *w, unsigned i)
{
	struct produce *p = w->ctx;
	struct fifo *f = &p->f[i];
	struct ring *acks = &w->out[0];
	struct ring_mark last;
	unsigned n = 0;

	while (f->tail != f->head) {
		struct entry *e = entry_at(f, f->tail);

		if (e->state != E_DONE)
			break;
		if (e->last && ring_write(acks, MSG_REC_ACK, e->rec->seq, NULL, 0) < 0)
			break; /* ack ring full: later */
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

static int produce_init(struct worker *w)
{
	struct produce *p = calloc(1, sizeof(*p));
	rd_kafka_conf_t *conf;
	char err[512];

	if (!p)
		return -ENOMEM;
	w->ctx = p;
	if (w->n_out != 1 || w->n_in == 0 || w->n_in > 127) {
		log_err("produce needs input rings and one ack ring, has %u and %u", w->n_in,
			w->n_out);
		return -EINVAL;
	}
	/* What the last incarnation had in flight may reach Kafka twice. */
	w->cb->redelivered += w->cb->inflight;
	w->cb->inflight = 0;
	conf = rd_kafka_conf_new();
	for (size_t i = 0; i < w->cfg.n_kafka; i++) {
		if (rd_kafka_conf_set(conf, w->cfg.kafka[i].key, w->cfg.kafka[i].value, err,
				      sizeof(err)) != RD_KAFKA_CONF_OK) {
			log_err("%s:%u: [kafka] %s: %s", w->cfg.path, w->cfg.kafka[i].line,
				w->cfg.kafka[i].key, err);
			rd_kafka_conf_destroy(conf);
			return -EINVAL;
		}
	}
	/* Not negotiable: nothing acked that is not in Kafka, no reordering. */
	if (rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "acks", "all", err, sizeof(err))) {
		log_err("librdkafka: %s", err);
		rd_kafka_conf_destroy(conf);
		return -EINVAL;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_opaque(conf, p);
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!p->rk) {
		log_err("librdkafka: %s", err);
		return -EINVAL;
	}
	return 0;
}

static void produce_fini(struct worker *w)
{
	struct produce *p = w->ctx;

	if (!p)
		return;
	if (p->rk)
		rd_kafka_destroy(p->rk);
	for (unsigned i = 0; i < WORKER_RINGS_MAX; i++)
		free(p->f[i].e);
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
