/* SPDX-License-Identifier: MIT */
/*
 * ingest: what its parts share. ingest.c is the loop (acks, backpressure,
 * the in-flight table, drain); src-replay.c, src-sqs.c and src-pubsub.c
 * are the sources. Every network source runs on the one curl multi handle
 * of the loop: a source starts calls (struct call) and is told when each
 * ends; it never blocks.
 *
 * The in-flight table (struct shm_inflight in the segment) holds every
 * message between its receipt and its deletion / acknowledgement at the
 * source. Its state machine, all written by ingest alone:
 *
 *   FREE -> RECEIVED      taken from the source, slot claimed (seq, token, shard)
 *   RECEIVED -> PIPELINE  published to its shard ring
 *   RECEIVED -> RETURNING its shard cannot take it now, or ingest is stopping
 *   PIPELINE -> ACKED     produce's ack: Kafka holds all it became
 *   ACKED -> FREE         deleted / acknowledged at the source
 *   RETURNING -> FREE     handed back (visibility / ack deadline set to handback_delay)
 *
 * A restarted ingest reads the table: RECEIVED slots whose seq its shard
 * ring already holds are PIPELINE, the others RETURNING; ACKED and
 * RETURNING ones are finished; PIPELINE ones are kept visible-extended
 * until their acks come. So nothing acked is lost, nothing unacked is
 * deleted, whatever moment ingest died at.
 */
#ifndef FERRY_WORKERS_INGEST_H
#define FERRY_WORKERS_INGEST_H

#include <stdint.h>

#include <curl/curl.h>

#include "common/aws.h"
#include "common/compiler.h"
#include "workers/common/worker.h"

#define CALL_SLOTS_MAX 1000 /* slots one call may carry (Pub/Sub acks; SQS takes 10) */

struct ingest;
struct source;

enum call_kind {
	CALL_ATTRS,   /* learn the queue's / subscription's timeout */
	CALL_RECEIVE, /* ReceiveMessage, pull */
	CALL_DELETE,  /* DeleteMessageBatch, acknowledge */
	CALL_RETURN,  /* hand back: ChangeMessageVisibilityBatch / modifyAckDeadline */
	CALL_EXTEND,  /* extend: the same, with the source's timeout */
};

/* One HTTP call in flight on the multi handle. */
struct call {
	enum call_kind kind;
	struct source *src;
	CURL *easy;
	struct aws_request *aws; /* SQS */
	void *req;		 /* Pub/Sub: the source's own request object */
	uint32_t n;		 /* slots it is about */
	uint32_t slots[CALL_SLOTS_MAX];
	uint64_t seqs[CALL_SLOTS_MAX]; /* the seq each slot had when the call started */
	uint32_t reserved;	       /* RECEIVE: slots set aside for what it brings */
	uint64_t started_ns;
	struct call *next; /* free list, or the list of calls in flight */
	struct call *prev; /* in flight */
};

/* What each kind of network source does; the loop decides when. */
struct source_ops {
	const char *kind;
	/* Start the call that learns the source's timeout (CALL_ATTRS). */
	int (*attrs)(struct ingest *g, struct source *s, struct call *c);
	/* Start a receive asking for up to max messages. */
	int (*receive)(struct ingest *g, struct source *s, struct call *c, unsigned max);
	/* Start a delete / return / extend call about c->slots (c->kind says which). */
	int (*settle)(struct ingest *g, struct source *s, struct call *c, unsigned timeout_s);
	/* A call ended (curl's code); the source reads its answer. */
	void (*done)(struct ingest *g, struct call *c, CURLcode code);
	/* Entries per settle call, and messages per receive. */
	unsigned batch_max;
	unsigned receive_max;
};

/* A queue of slot numbers (ACKED or RETURNING slots waiting for their call). */
struct slotq {
	uint32_t *v;
	size_t n, cap;
};

struct source {
	const struct source_ops *ops;
	unsigned idx;		/* in the segment's source table */
	struct shm_source *shm; /* health and counts, as ferryctl shows them */
	const char *name;	/* queue URL, subscription */
	uint32_t hash;		/* of name, kept in each slot */
	unsigned timeout_s;	/* visibility timeout / ack deadline */
	int ready;		/* the timeout (and FIFO-ness) is known: receives may start */
	int fifo;		/* SQS FIFO queue: ordered by group */
	unsigned receiving;	/* receives in flight */
	unsigned settling;	/* delete / return / extend calls in flight */
	int attrs_pending;	/* the timeout call is in flight */
	uint64_t retry_at;	/* backoff: no new receive before (CLOCK_MONOTONIC ns) */
	uint64_t backoff_ms;	/* current backoff, 0 after a success */
	uint64_t idle_ms;	/* pause after an empty pull (Pub/Sub with return-immediately) */
	uint64_t oldest_ack_ns; /* when the oldest slot of acks was queued */
	struct slotq acks;	/* ACKED slots to delete */
	struct slotq returns;	/* RETURNING slots to hand back */
	struct aws_client *aws; /* SQS: the client of its region */
	char region[32];	/* SQS */
	unsigned pulls_max;	/* receives in flight allowed */
};

/* Shards ingest_take() pushed to since the last publish, and the slots it filled. */
struct pending {
	uint32_t *slots;
	size_t n, cap;
	uint64_t dirty;	       /* bit per shard (up to 64) */
	uint64_t blocked_mask; /* shards that refused a message of the current batch */
};

struct ingest {
	struct worker *w;
	struct pending pend;
	struct shm_inflight *table;
	uint32_t slots;	   /* power of two, 0: no table */
	uint32_t used;	   /* slots not FREE */
	uint32_t reserved; /* slots set aside for receives in flight */
	struct source *src;
	unsigned n_src;
	unsigned n_net; /* network sources (the first n_net of src) */
	CURLM *multi;
	struct call *free_calls;
	struct call *active; /* calls in flight */
	unsigned calls;	     /* in flight */
	int draining;
	int stopping; /* worker_stop: finish calls, take nothing new */
	uint64_t now;
	uint64_t next_scan; /* extension scan */
	uint64_t rng;	    /* jitter */
	unsigned handback_s;
	void *replay; /* src-replay.c's state, NULL if none */
	void *sqs;    /* src-sqs.c's shared state (clients per region), NULL if none */
	void *pubsub; /* src-pubsub.c's shared state (auth), NULL if none */
	void *dlq;    /* src-dlq.c's state (the dead-letter replay spool), NULL if none */
	int produce;  /* worker index of produce, -1 if none */
	uint64_t skip[WORKER_RINGS_MAX];
	unsigned turn;
};

/* --- the loop's services to sources (ingest.c) --------------------------- */

/* Jittered exponential backoff after a failed call; health from the HTTP status. */
void ingest_source_failed(struct ingest *g, struct source *s, long http, const char *why);
void ingest_source_ok(struct ingest *g, struct source *s);

/*
 * A message taken from source s: claim a slot for it (token = its receipt
 * handle / ack id), pick its shard from shard_key (tenant, group or
 * ordering key), and hand it to that shard ring as a source message, or as
 * a dead letter when why is not NULL (m->body is then what the source
 * delivered). A message its shard cannot take now is handed back. The
 * rings are published by ingest_publish(). Returns 0, or -ENOSPC when no
 * slot is free (cannot happen while receives reserve their slots).
 */
int ingest_take(struct ingest *g, struct source *s, const struct msg_source_view *m,
		struct msg_bytes shard_key, const char *token, uint32_t token_len, const char *why);

/* Publish what ingest_take() pushed and mark those slots PIPELINE. */
void ingest_publish(struct ingest *g);

/* Slot i is settled at its source (deleted, handed back): free it. */
void ingest_slot_free(struct ingest *g, uint32_t i);

/* The slot of a call entry, if it still holds the message the call was about. */
struct shm_inflight *ingest_call_slot(struct ingest *g, const struct call *c, unsigned k);

/* Put an entry of a failed settle call back in its queue, to be tried again. */
void ingest_settle_retry(struct ingest *g, struct call *c, unsigned k);

/* Attach c->easy to the multi handle (after the source set it up). */
int ingest_call_start(struct ingest *g, struct call *c);

/* --- sources --------------------------------------------------------------- */

extern const struct source_ops sqs_source_ops;
extern const struct source_ops pubsub_source_ops;

/* SQS: the shared setup (clients per region). */
int sqs_sources_init(struct ingest *g);
void sqs_sources_fini(struct ingest *g);

/* Pub/Sub: the shared setup (auth). */
int pubsub_sources_init(struct ingest *g);
void pubsub_sources_fini(struct ingest *g);

/* Replay file (src-replay.c). */
int replay_init(struct ingest *g);
unsigned replay_pull(struct ingest *g);
int replay_remaining(const struct ingest *g);
void replay_fini(struct ingest *g);

/*
 * Dead-letter replay spool (src-dlq.c): a source after the network ones in
 * g->src, present when ferryd put one in the segment's source table.
 */
int dlq_src_init(struct ingest *g);
unsigned dlq_src_pull(struct ingest *g);
int dlq_src_busy(const struct ingest *g);
void dlq_src_fini(struct ingest *g);

#endif
