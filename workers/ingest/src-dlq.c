/* SPDX-License-Identifier: MIT */
/*
 * The dead-letter replay source ("dlq-replay"): spool files that
 * `ferryctl replay-dlq` wrote (common/dlq.h) into [ingest] dlq_spool. One
 * file at a time, oldest name first, checked every second. Each message
 * goes through the pipeline like one from a queue: it claims an in-flight
 * slot (token "<file>#<index>"), and is done when produce's ack comes; the
 * file is removed once every message in it is done.
 *
 * Restarts: a restarted ingest takes over the in-flight table (ingest.c),
 * so it knows which messages of the file are in the pipeline or acked and
 * sends only the rest: nothing doubled. Across a restart of ferryd (a new
 * segment, an empty table) the indices of the messages Kafka has are kept
 * in a hidden ".<file>.done" beside the file (4 bytes each, appended,
 * not fsynced: what a crash loses of it is sent again, at least once); a
 * message in the pipeline then is sent again.
 * A file that cannot be read or is corrupt is renamed to <file>.bad with
 * one error line saying why; nothing of it is sent (the dead letters are
 * still in the dead-letter topic: replay them again).
 *
 * Seqs: messages of a replay file ([replay] file) own seqs 1..N, so the
 * spool waits until the replay file is handed on, then takes seqs above
 * every seq already published.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/dlq.h"
#include "common/log.h"
#include "common/time.h"
#include "workers/ingest/ingest.h"

#define SCAN_NS (1000000000ull)
#define BATCH	256

enum { M_PENDING = 0, M_PIPELINE, M_DONE };

struct dlq_src {
	struct source *s;
	char dir[PATH_MAX];
	int dir_ok;
	uint64_t next_scan;
	char name[256]; /* the file in hand (basename), "" = none */
	int done_fd;	/* .<name>.done, appended to; -1 if it cannot be */
	struct dlq_file f;
	uint8_t *state; /* per message: M_* */
	uint32_t done;
	uint32_t next; /* no pending message below */
	char err[256];
};

static const struct source_ops dlq_source_ops = {.kind = "dlq-replay"};

static unsigned settle(struct ingest *g, struct dlq_src *d);

int dlq_src_init(struct ingest *g)
{
	struct worker *w = g->w;
	struct shm_source *tab = shm_sources(w->seg);
	struct dlq_src *d;
	struct source *s;
	unsigned i, n = w->seg->hdr->n_sources;
	char dir[PATH_MAX];

	for (i = 0; i < n && tab[i].kind != MSG_SOURCE_DLQ; i++)
		;
	if (i == n)
		return 0; /* ferryd made no spool source: off */
	if (dlq_spool_dir(&w->cfg, dir, sizeof(dir)) <= 0) {
		log_warning("the segment has a dead-letter spool, the configuration none: restart "
			    "ferryd to take up the change");
		return 0;
	}
	if (!w->seg->hdr->inflight_slots) {
		log_err("dead-letter spool: the segment has no in-flight table");
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	g->dlq = d;
	d->done_fd = -1;
	s = &g->src[g->n_src];
	d->s = s;
	snprintf(d->dir, sizeof(d->dir), "%s", dir);
	s->ops = &dlq_source_ops;
	s->idx = g->n_src;
	s->shm = &tab[i];
	s->name = d->dir;
	s->hash = fnv1a32(d->dir, strlen(d->dir));
	s->ready = 1;
	g->n_src++;
	if (dlq_spool_mkdir(d->dir, d->err, sizeof(d->err)) < 0) {
		log_err("dead-letter spool: %s: replay waits until it exists", d->err);
		snprintf(s->shm->last_error, sizeof(s->shm->last_error), "%.63s", d->err);
		__atomic_store_n(&s->shm->health, SHM_SOURCE_FAILING, __ATOMIC_RELAXED);
	} else {
		d->dir_ok = 1;
		log_info("dead-letter spool %s", d->dir);
	}
	return 0;
}

void dlq_src_fini(struct ingest *g)
{
	struct dlq_src *d = g->dlq;

	if (!d)
		return;
	if (d->name[0] && g->table)
		settle(g, d); /* the last acks read: the file may be complete */
	if (d->name[0] && d->done_fd >= 0)
		close(d->done_fd);
	dlq_file_free(&d->f);
	free(d->state);
	free(d);
	g->dlq = NULL;
}

/* Index of message in the file in hand named by a slot's token, or -1. */
static long token_index(const struct dlq_src *d, const struct shm_inflight *sl)
{
	size_t nl = strlen(d->name);
	char num[16];
	char *end;
	unsigned long k;

	if (!nl || sl->token_len <= nl + 1 || sl->token_len - nl - 1 >= sizeof(num) ||
	    memcmp(sl->token, d->name, nl) || sl->token[nl] != '#')
		return -1;
	memcpy(num, sl->token + nl + 1, sl->token_len - nl - 1);
	num[sl->token_len - nl - 1] = '\0';
	k = strtoul(num, &end, 10);
	return *end || k >= d->f.n ? -1 : (long)k;
}

static void set_failing(struct dlq_src *d, const char *why)
{
	snprintf(d->s->shm->last_error, sizeof(d->s->shm->last_error), "%.63s", why);
	__atomic_fetch_add(&d->s->shm->errors, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&d->s->shm->health, SHM_SOURCE_FAILING, __ATOMIC_RELAXED);
}

/* Take the oldest spool file, if any. */
static void file_open(struct ingest *g, struct dlq_src *d)
{
	char best[256] = "", path[PATH_MAX + 300], bad[PATH_MAX + 310];
	struct dirent *e;
	uint32_t in_pipeline = 0;
	DIR *dir;
	int r;

	if (!d->dir_ok) {
		if (dlq_spool_mkdir(d->dir, d->err, sizeof(d->err)) < 0)
			return;
		d->dir_ok = 1;
		log_info("dead-letter spool %s: there now", d->dir);
	}
	dir = opendir(d->dir);
	if (!dir) {
		snprintf(d->err, sizeof(d->err), "%.120s: %.120s", d->dir, strerror(errno));
		set_failing(d, d->err);
		return;
	}
	while ((e = readdir(dir))) {
		size_t n = strlen(e->d_name);

		/* Hidden names are files being written. */
		if (e->d_name[0] == '.' || n <= strlen(DLQ_SUFFIX) || n >= sizeof(best) ||
		    strcmp(e->d_name + n - strlen(DLQ_SUFFIX), DLQ_SUFFIX))
			continue;
		if (!best[0] || strcmp(e->d_name, best) < 0)
			snprintf(best, sizeof(best), "%s", e->d_name);
	}
	closedir(dir);
	if (!best[0])
		return;
	snprintf(path, sizeof(path), "%s/%s", d->dir, best);
	r = dlq_file_load(path, &d->f, d->err, sizeof(d->err));
	if (r < 0) {
		/* Never sent, never retried in a loop: set aside for a look. */
		snprintf(bad, sizeof(bad), "%s.bad", path);
		log_err("dead-letter spool file %s: %s: renamed to %s, nothing of it sent "
			"(run ferryctl replay-dlq again)",
			path, d->err, bad);
		set_failing(d, d->err);
		if (rename(path, bad) < 0)
			log_err("rename %s: %s", path, strerror(errno));
		return;
	}
	d->state = calloc(d->f.n ? d->f.n : 1, 1);
	if (!d->state) {
		dlq_file_free(&d->f);
		return;
	}
	snprintf(d->name, sizeof(d->name), "%s", best);
	d->done = 0;
	d->next = 0;
	/* Done before ferryd restarted (a new, empty in-flight table). */
	snprintf(path, sizeof(path), "%s/.%s.done", d->dir, best);
	d->done_fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (d->done_fd < 0) {
		log_warning("%s: %s: after a restart of ferryd this file is sent again whole", path,
			    strerror(errno));
	} else {
		unsigned char b[4];

		while (read(d->done_fd, b, 4) == 4) {
			uint32_t k = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
				     (uint32_t)b[3] << 24;

			if (k < d->f.n && d->state[k] != M_DONE) {
				d->state[k] = M_DONE;
				d->done++;
			}
		}
	}
	/* What a previous ingest left in the table: in the pipeline, or acked. */
	for (uint32_t i = 0; i < g->slots; i++) {
		struct shm_inflight *sl = &g->table[i];
		long k;

		if (!sl->seq || sl->source != d->s->idx || (k = token_index(d, sl)) < 0)
			continue;
		if ((sl->state == SHM_INFLIGHT_PIPELINE || sl->state == SHM_INFLIGHT_ACKED) &&
		    d->state[k] == M_PENDING) {
			d->state[k] = M_PIPELINE;
			in_pipeline++;
		}
	}
	snprintf(path, sizeof(path), "%s/%s", d->dir, best);
	log_info("dead-letter spool file %s: %" PRIu32 " messages, %" PRIu32 " of them in Kafka "
		 "already, %" PRIu32 " in the pipeline",
		 path, d->f.n, d->done, in_pipeline);
	__atomic_store_n(&d->s->shm->health, SHM_SOURCE_OK, __ATOMIC_RELAXED);
}

/* Acks and hand-backs of spool messages: done, or to send again. */
static unsigned settle(struct ingest *g, struct dlq_src *d)
{
	struct source *s = d->s;
	unsigned n = 0;

	for (size_t j = 0; j < s->acks.n; j++, n++) {
		struct shm_inflight *sl = &g->table[s->acks.v[j]];
		long k = token_index(d, sl);

		if (k >= 0 && d->state[k] != M_DONE) {
			unsigned char b[4] = {(unsigned char)k, (unsigned char)(k >> 8),
					      (unsigned char)(k >> 16), (unsigned char)(k >> 24)};

			d->state[k] = M_DONE;
			d->done++;
			if (d->done_fd >= 0 && write(d->done_fd, b, 4) != 4) {
				log_warning("dead-letter spool file %s: progress not kept: %s",
					    d->name, strerror(errno));
				close(d->done_fd);
				d->done_fd = -1;
			}
		}
		__atomic_fetch_add(&s->shm->acked, 1, __ATOMIC_RELAXED);
		ingest_slot_free(g, s->acks.v[j]);
	}
	s->acks.n = 0;
	for (size_t j = 0; j < s->returns.n; j++, n++) {
		struct shm_inflight *sl = &g->table[s->returns.v[j]];
		long k = token_index(d, sl);

		if (k >= 0 && d->state[k] == M_PIPELINE) {
			d->state[k] = M_PENDING;
			if ((uint32_t)k < d->next)
				d->next = (uint32_t)k;
		}
		ingest_slot_free(g, s->returns.v[j]);
	}
	s->returns.n = 0;
	if (d->name[0] && d->done == d->f.n) {
		char path[PATH_MAX + 300];

		snprintf(path, sizeof(path), "%s/%s", d->dir, d->name);
		if (unlink(path) < 0 && errno != ENOENT)
			log_err("dead-letter spool file %s: all in Kafka, but: %s", path,
				strerror(errno));
		else
			log_info("dead-letter spool file %s: all %" PRIu32
				 " messages in Kafka: removed",
				 path, d->f.n);
		/* After the file: a crash in between leaves a stray .done, not a resend. */
		snprintf(path, sizeof(path), "%s/.%s.done", d->dir, d->name);
		unlink(path);
		if (d->done_fd >= 0)
			close(d->done_fd);
		d->done_fd = -1;
		dlq_file_free(&d->f);
		free(d->state);
		d->state = NULL;
		d->name[0] = '\0';
	}
	return n;
}

unsigned dlq_src_pull(struct ingest *g)
{
	struct dlq_src *d = g->dlq;
	struct worker *w = g->w;
	struct shm_header *h = w->seg->hdr;
	uint64_t blocked = 0, top = 0, all = w->n_out >= 64 ? ~0ull : (1ull << w->n_out) - 1;
	unsigned sent = 0;
	char token[300];

	if (!d)
		return 0;
	if (!d->name[0] && g->now >= d->next_scan) {
		d->next_scan = g->now + SCAN_NS;
		file_open(g, d);
	}
	sent += settle(g, d);
	if (!d->name[0] || g->draining || g->stopping || replay_remaining(g))
		return sent;
	/* Above the replay file's seqs and anything else published (rings keep seq order). */
	for (unsigned r = 0; r < w->n_out; r++)
		if (ring_last_seq(&w->out[r]) > top)
			top = ring_last_seq(&w->out[r]);
	if (h->next_seq <= top)
		__atomic_store_n(&h->next_seq, top + 1, __ATOMIC_RELEASE);
	for (uint32_t k = d->next; k < d->f.n && sent < BATCH; k++) {
		struct msg_source_view v = d->f.msgs[k];
		struct msg_bytes key;
		unsigned shard;
		int tl;

		if (d->state[k] != M_PENDING)
			continue;
		if (g->used + g->reserved >= g->slots)
			break;
		if (msg_kv_find(v.attrs, w->cfg.tenant_attribute, &key) <= 0 || !key.len)
			key = v.id;
		shard = fnv1a32(key.p, key.len) % w->n_out;
		/* A full shard waits (its later messages too); the others go on. */
		if ((blocked >> shard & 1) || !ring_reserve(&w->out[shard], msg_source_size(&v))) {
			blocked |= 1ull << shard;
			if (blocked == all)
				break; /* every shard full: no use reading on */
			continue;
		}
		v.source = MSG_SOURCE_DLQ;
		v.flags |= MSG_F_REPLAYED;
		v.source_idx = d->s->idx;
		v.received_ns = realtime_ns();
		tl = snprintf(token, sizeof(token), "%s#%" PRIu32, d->name, k);
		if (ingest_take(g, d->s, &v, key, token, (uint32_t)tl, NULL) < 0)
			break;
		d->state[k] = M_PIPELINE;
		sent++;
	}
	while (d->next < d->f.n && d->state[d->next] != M_PENDING)
		d->next++;
	if (sent)
		ingest_publish(g);
	return sent;
}

int dlq_src_busy(const struct ingest *g)
{
	const struct dlq_src *d = g->dlq;

	return d && d->name[0];
}
