/* SPDX-License-Identifier: MIT */
/*
 * The replay source: a file of recorded messages (README, "Replay files"),
 * for demos and benchmarks. Message i of the file (from 0) has seq i + 1,
 * so a restarted ingest knows exactly what it already handed on: whatever
 * is at or below the last seq published to that message's shard ring. It
 * acknowledges nothing, so it needs no in-flight table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/time.h"
#include "workers/ingest/ingest.h"
#include "workers/ingest/replay-line.h"

#define BATCH 64

struct replay_msg {
	unsigned char *enc; /* encoded source message, or dead letter (msg_*_encode) */
	uint32_t len;
	uint16_t shard;
	uint16_t dead; /* enc is a dead letter: the line could not be read */
};

struct replay {
	struct replay_msg *msgs;
	size_t n;
	/*
	 * One cursor per shard over that shard's messages, so a stalled shard
	 * (its decrypt down, its ring full) never holds up the others.
	 */
	size_t *order[WORKER_RINGS_MAX]; /* message indices of each shard, in file order */
	size_t count[WORKER_RINGS_MAX];
	size_t pos[WORKER_RINGS_MAX];
	unsigned turn;	  /* shard to try first next time (round robin) */
	uint64_t t0;	  /* pacing: when it started ... */
	uint64_t paced;	  /* ... and how many were sent since */
	size_t remaining; /* messages not yet handed on */
};

/*
 * Load a replay file: one JSON object per line. A line that cannot be
 * read is not dropped: it travels as a dead letter naming file:line.
 */
static int replay_load(struct replay *g, const char *path, const char *tenant_attr, unsigned shards)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, n_alloc = 0;
	ssize_t len;
	unsigned lineno = 0;

	if (!f) {
		log_err("replay file %s: %s", path, strerror(errno));
		return -errno;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		struct replay_msg m = {0};
		struct msg_bytes tenant;
		const char *why;
		int r;

		lineno++;
		if (len <= 1 && (len == 0 || line[0] == '\n'))
			continue;
		if (g->n == n_alloc) {
			struct replay_msg *nm;

			n_alloc = n_alloc ? 2 * n_alloc : 1024;
			nm = realloc(g->msgs, n_alloc * sizeof(*nm));
			if (!nm) {
				free(line);
				fclose(f);
				return -ENOMEM;
			}
			g->msgs = nm;
		}
		r = replay_parse(line, tenant_attr, &m.enc, &m.len, &tenant, &why);
		if (!r)
			m.shard = fnv1a32(tenant.p, tenant.len) % shards;
		if (r == -ENOMEM) {
			free(line);
			fclose(f);
			return r;
		}
		if (r < 0) {
			/* A dead letter from birth: raw bytes as the body, the reason in front. */
			char reason[256];
			struct msg_source_view v = {.source = MSG_SOURCE_REPLAY};
			uint32_t dlen, slen;
			unsigned char *d;

			snprintf(reason, sizeof(reason), "ingest: %s:%u: %s", path, lineno, why);
			v.body.p = line;
			v.body.len = (uint32_t)len;
			slen = msg_source_size(&v);
			dlen = msg_dead_size((uint32_t)strlen(reason), slen);
			d = malloc(dlen);
			m.enc = malloc(slen);
			if (!d || !m.enc) {
				free(d);
				free(m.enc);
				free(line);
				fclose(f);
				return -ENOMEM;
			}
			msg_source_encode(m.enc, slen, &v);
			msg_dead_encode(d, dlen, SHM_WORKER_INGEST, reason, m.enc, slen);
			free(m.enc);
			m.enc = d;
			m.len = dlen;
			m.dead = 1;
			m.shard = lineno % shards;
			log_warning("%s", reason);
		}
		g->msgs[g->n++] = m;
	}
	free(line);
	fclose(f);
	log_info("replay file %s: %zu messages", path, g->n);
	return 0;
}

int replay_init(struct ingest *ing)
{
	struct worker *w = ing->w;
	struct replay *g;
	int r;

	if (!w->cfg.replay_file[0])
		return 0;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	ing->replay = g;
	r = replay_load(g, w->cfg.replay_file, w->cfg.tenant_attribute, w->n_out);
	if (r < 0)
		return r;
	/* Per shard, its messages in order; skip what an earlier incarnation sent. */
	for (unsigned s = 0; s < w->n_out; s++) {
		g->order[s] = malloc((g->n ? g->n : 1) * sizeof(size_t));
		if (!g->order[s])
			return -ENOMEM;
	}
	for (size_t i = 0; i < g->n; i++) {
		unsigned s = g->msgs[i].shard;

		g->order[s][g->count[s]++] = i;
		if (i + 1 <= ing->skip[s])
			g->pos[s] = g->count[s];
		else
			g->remaining++;
	}
	return 0;
}

void replay_fini(struct ingest *ing)
{
	struct replay *g = ing->replay;

	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++)
		free(g->msgs[i].enc);
	free(g->msgs);
	for (unsigned s = 0; s < WORKER_RINGS_MAX; s++)
		free(g->order[s]);
	free(g);
	ing->replay = NULL;
}

int replay_remaining(const struct ingest *ing)
{
	const struct replay *g = ing->replay;

	return g && g->remaining;
}

/*
 * A message larger than a ring record can never go: it becomes its dead
 * letter, which keeps the id and attributes but not the body (else it
 * would block its shard for good). 0, or -ENOMEM / -EBADMSG.
 */
static int replay_too_large(struct replay_msg *m, uint32_t max)
{
	struct msg_source_view v;
	char reason[160];
	unsigned char *src, *d;
	uint32_t slen, dlen;

	if (m->dead || msg_source_decode(m->enc, m->len, &v) < 0)
		return -EBADMSG;
	snprintf(reason, sizeof(reason),
		 "ingest: message of %u bytes, larger than a ring record (%u): its body is "
		 "not carried",
		 m->len, max);
	v.body.len = 0;
	slen = msg_source_size(&v);
	dlen = msg_dead_size((uint32_t)strlen(reason), slen);
	src = malloc(slen);
	d = malloc(dlen);
	if (!src || !d || dlen > max) {
		free(src);
		free(d);
		return -ENOMEM;
	}
	msg_source_encode(src, slen, &v);
	msg_dead_encode(d, dlen, SHM_WORKER_INGEST, reason, src, slen);
	log_warning("%s", reason);
	free(src);
	free(m->enc);
	m->enc = d;
	m->len = dlen;
	m->dead = 1;
	return 0;
}

/* Hand on up to BATCH replay messages. Returns how many went (0: paced, blocked or done). */
unsigned replay_pull(struct ingest *ing)
{
	struct worker *w = ing->w;
	struct replay *g = ing->replay;
	unsigned sent = 0, limit = BATCH, S = w->n_out;
	uint64_t received;

	if (!g || !g->remaining)
		return 0;
	received = realtime_ns();
	if (w->cfg.replay_rate) {
		uint64_t now = now_ns(), due;

		if (!g->t0)
			g->t0 = now;
		/*
		 * Due by the whole millisecond: woken in between (acks), ingest
		 * sends nothing, so each stage wakes about once a millisecond for a
		 * batch instead of for every message or two (a wake costs more than
		 * a message: measured by bench-e2e at half load).
		 */
		due = (now - g->t0) / 1000000ull * w->cfg.replay_rate / 1000ull;
		if (due <= g->paced)
			return 0;
		if (due - g->paced < limit)
			limit = (unsigned)(due - g->paced);
	}
	for (unsigned k = 0; k < S && sent < limit; k++) {
		unsigned s = (g->turn + k) % S;
		struct ring *out = &w->out[s];

		while (sent < limit && g->pos[s] < g->count[s]) {
			size_t i = g->order[s][g->pos[s]];
			struct replay_msg *m = &g->msgs[i];
			void *p;

			if (m->len > out->max_record && replay_too_large(m, out->max_record) < 0)
				break;
			p = ring_reserve(out, m->len);

			if (!p)
				break; /* this shard is full: the others go on */
			memcpy(p, m->enc, m->len);
			/* Encoded at load: its receipt is now, for produce's latency. */
			msg_set_received(m->dead ? MSG_REC_DEAD : MSG_REC_SOURCE, p, m->len,
					 received);
			ring_push(out, m->len, m->dead ? MSG_REC_DEAD : MSG_REC_SOURCE, 0, i + 1);
			__atomic_fetch_add(&w->cb->records_out, 1, __ATOMIC_RELAXED);
			if (m->dead)
				__atomic_fetch_add(&w->cb->dead_letters, 1, __ATOMIC_RELAXED);
			g->pos[s]++;
			g->remaining--;
			sent++;
		}
	}
	g->turn = (g->turn + 1) % S;
	g->paced += sent;
	for (unsigned s = 0; s < S; s++)
		ring_publish(&w->out[s]);
	return sent;
}
