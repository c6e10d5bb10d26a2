/* SPDX-License-Identifier: MIT */
/* view: a private snapshot of a segment for ferryctl (see view.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/compiler.h"
#include "common/msg.h"
#include "common/time.h"
#include "supervisor/view.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

static void copy_str(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t n = strnlen(src, srclen);

	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

static void take_stage(const struct shm_worker *w, struct view_stage *s)
{
	copy_str(s->name, sizeof(s->name), w->name, sizeof(w->name));
	s->kind = w->kind;
	s->shard = w->shard;
	s->pid = LOAD(&w->pid);
	s->state = LOAD(&w->state);
	s->wstate = LOAD(&w->wstate);
	s->started_ns = LOAD(&w->started_ns);
	s->last_exit_ns = LOAD(&w->last_exit_ns);
	s->last_exit = LOAD(&w->last_exit);
	s->restarts = LOAD(&w->restarts);
	s->strikes = LOAD(&w->strikes);
	s->strike_seq = LOAD(&w->strike_seq);
	s->cpu_ns = LOAD(&w->cpu_ns);
	s->rss_bytes = LOAD(&w->rss_bytes);
	s->heartbeat_ns = LOAD(&w->heartbeat_ns);
	s->current_seq = LOAD(&w->current_seq);
	s->records_in = LOAD(&w->records_in);
	s->records_out = LOAD(&w->records_out);
	s->dead_letters = LOAD(&w->dead_letters);
	s->errors = LOAD(&w->errors);
	s->inflight = LOAD(&w->inflight);
	s->redelivered = LOAD(&w->redelivered);
	for (unsigned b = 0; b < SHM_LATENCY_BUCKETS; b++)
		s->latency.bucket[b] = LOAD(&w->latency.bucket[b]);
	s->latency.count = LOAD(&w->latency.count);
	s->latency.sum_us = LOAD(&w->latency.sum_us);
}

static void take_source(const struct shm_source *src, struct view_source *s)
{
	copy_str(s->name, sizeof(s->name), src->name, sizeof(src->name));
	s->kind = LOAD(&src->kind);
	s->health = LOAD(&src->health);
	s->received = LOAD(&src->received);
	s->acked = LOAD(&src->acked);
	s->handed_back = LOAD(&src->handed_back);
	s->extended = LOAD(&src->extended);
	s->calls = LOAD(&src->calls);
	s->errors = LOAD(&src->errors);
	s->inflight = LOAD(&src->inflight);
	copy_str(s->last_error, sizeof(s->last_error), src->last_error, sizeof(src->last_error));
}

/*
 * The oldest in-flight message of each source: one pass over the table,
 * reading the first line of each slot only. ingest writes while we read,
 * so a slot may be half-updated: a receipt time in the future or a source
 * index out of range is skipped, not trusted.
 */
void view_inflight_scan(const struct shm_segment *seg, unsigned n, uint64_t now, uint64_t *oldest,
			uint64_t *count)
{
	const struct shm_inflight *t = shm_inflight(seg);
	unsigned slots = seg->hdr->inflight_slots;

	memset(oldest, 0, n * sizeof(*oldest));
	memset(count, 0, n * sizeof(*count));
	for (unsigned i = 0; t && i < slots; i++) {
		uint32_t state = LOAD(&t[i].state);
		uint64_t rx;
		uint16_t src;

		if (state == SHM_INFLIGHT_FREE || !LOAD(&t[i].seq))
			continue;
		src = LOAD(&t[i].source);
		rx = LOAD(&t[i].received_ns);
		if (src >= n || !rx || rx > now)
			continue;
		count[src]++;
		if (!oldest[src] || rx < oldest[src])
			oldest[src] = rx;
	}
}

static int scan_inflight(const struct shm_segment *seg, struct view *v)
{
	uint64_t *oldest = calloc(v->n_sources ? v->n_sources : 1, 2 * sizeof(*oldest));

	if (!oldest)
		return -ENOMEM;
	view_inflight_scan(seg, v->n_sources, v->taken_ns, oldest, oldest + v->n_sources);
	for (unsigned i = 0; i < v->n_sources; i++) {
		v->sources[i].oldest_ns = oldest[i];
		v->sources[i].in_table = oldest[v->n_sources + i];
	}
	free(oldest);
	return 0;
}

static int take_tenants(const struct shm_segment *seg, struct view *v)
{
	unsigned n = 0, cap = 0;

	for (unsigned w = 0; w < v->n_stages; w++) {
		const struct shm_tenant *t = shm_worker_tenants(seg, w);

		for (unsigned i = 0; t && i < SHM_TENANT_SLOTS; i++) {
			struct view_tenant *vt;

			if (!LOAD(&t[i].name[0]))
				continue;
			if (n == cap) {
				unsigned ncap = cap ? 2 * cap : 64;
				void *p = realloc(v->tenants, ncap * sizeof(*v->tenants));

				if (!p)
					return -ENOMEM;
				v->tenants = p;
				cap = ncap;
			}
			vt = &v->tenants[n++];
			copy_str(vt->name, sizeof(vt->name), t[i].name, sizeof(t[i].name));
			vt->stage = w;
			vt->slot = i;
			vt->ok = LOAD(&t[i].ok);
			vt->failed = LOAD(&t[i].failed);
		}
	}
	v->n_tenants = n;
	return 0;
}

int view_take(struct shm_segment *seg, struct view *v, char *err, size_t errlen)
{
	const struct shm_header *h = seg->hdr;
	const struct shm_source *src = shm_sources(seg);
	int r = -ENOMEM;

	memset(v, 0, sizeof(*v));
	v->taken_ns = now_ns();
	v->taken_rt = realtime_ns();
	v->created_ns = h->created_ns;
	copy_str(v->instance, sizeof(v->instance), h->instance, sizeof(h->instance));
	snprintf(v->path, sizeof(v->path), "%s", seg->path);
	v->layout_version = h->layout_version;
	v->state = LOAD(&h->state);
	v->supervisor_pid = LOAD(&h->supervisor_pid);
	/* Counts and offsets were checked on attach and do not change. */
	v->n_stages = h->n_workers;
	v->n_rings = h->n_rings;
	v->n_sources = h->n_sources;
	v->inflight_slots = h->inflight_slots;
	v->stages = calloc(v->n_stages ? v->n_stages : 1, sizeof(*v->stages));
	v->rings = calloc(v->n_rings ? v->n_rings : 1, sizeof(*v->rings));
	v->sources = calloc(v->n_sources ? v->n_sources : 1, sizeof(*v->sources));
	if (!v->stages || !v->rings || !v->sources) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < v->n_stages; i++) {
		struct view_stage *s = &v->stages[i];

		take_stage(&seg->workers[i], s);
		for (unsigned b = 0; b < SHM_LATENCY_BUCKETS; b++)
			v->latency.bucket[b] += s->latency.bucket[b];
		v->latency.count += s->latency.count;
		v->latency.sum_us += s->latency.sum_us;
	}
	for (unsigned i = 0; i < v->n_rings; i++) {
		struct ring ring;
		const char *why = NULL;

		r = shm_segment_ring_attach(seg, i, RING_INSPECT, &ring, &why);
		if (r < 0) {
			snprintf(err, errlen, "%s: ring %u: %s", seg->path, i, why ? why : "bad");
			goto fail;
		}
		ring_stats(&ring, &v->rings[i]);
	}
	for (unsigned i = 0; i < v->n_sources; i++)
		take_source(&src[i], &v->sources[i]);
	r = scan_inflight(seg, v);
	if (r == 0)
		r = take_tenants(seg, v);
	if (r < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return 0;
fail:
	view_free(v);
	return r;
}

void view_free(struct view *v)
{
	if (!v)
		return;
	free(v->stages);
	free(v->rings);
	free(v->sources);
	free(v->tenants);
	memset(v, 0, sizeof(*v));
}

double view_latency_quantile(const uint64_t *b, double q)
{
	uint64_t total = 0, cum = 0;
	double target;

	for (unsigned i = 0; i < SHM_LATENCY_BUCKETS; i++)
		total += b[i];
	if (!total)
		return -1;
	target = q * (double)total;
	for (unsigned i = 0; i < SHM_LATENCY_BUCKETS - 1; i++) {
		double lo = i ? shm_latency_bounds_us[i - 1] : 0, hi = shm_latency_bounds_us[i];

		if (b[i] && (double)(cum + b[i]) >= target)
			return lo + (hi - lo) * (target - (double)cum) / (double)b[i];
		cum += b[i];
	}
	return shm_latency_bounds_us[SHM_LATENCY_BUCKETS - 2];
}

static uint64_t sub0(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

void view_latency_delta(const struct shm_latency *a, const struct shm_latency *b,
			struct shm_latency *h)
{
	memset(h, 0, sizeof(*h));
	for (unsigned i = 0; i < SHM_LATENCY_BUCKETS; i++)
		h->bucket[i] = sub0(a->bucket[i], b->bucket[i]);
	h->count = sub0(a->count, b->count);
	h->sum_us = sub0(a->sum_us, b->sum_us);
}

const char *view_sstate_name(uint32_t s)
{
	static const char *const names[] = {"down", "up", "backoff", "restarting", "failed"};

	return s < ARRAY_SIZE(names) ? names[s] : "?";
}

const char *view_wstate_name(uint32_t s)
{
	static const char *const names[] = {"-", "init", "running", "stopping", "drained"};

	return s < ARRAY_SIZE(names) ? names[s] : "?";
}

const char *view_health_name(uint32_t h)
{
	static const char *const names[] = {"idle", "ok", "retrying", "FAILING"};

	return h < ARRAY_SIZE(names) ? names[h] : "?";
}

const char *view_worker_kind_name(uint32_t kind)
{
	static const char *const names[] = {"other", "ingest", "decrypt", "map", "produce"};

	return kind < ARRAY_SIZE(names) ? names[kind] : "?";
}

const char *view_exit_name(const struct view_stage *s, char *buf, size_t len)
{
	if (!s->last_exit_ns)
		return "-";
	if (WIFSIGNALED(s->last_exit))
		snprintf(buf, len, "signal %d", WTERMSIG(s->last_exit));
	else
		snprintf(buf, len, "exit %d", WEXITSTATUS(s->last_exit));
	return buf;
}

const char *view_human(uint64_t n, char *buf, size_t len)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	unsigned u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0 || v >= 100 || v == (double)(uint64_t)v)
		snprintf(buf, len, "%.0f %s", v, unit[u]);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

const char *view_us(double us, char *buf, size_t len)
{
	if (us < 0)
		snprintf(buf, len, "-");
	else if (us < 1000)
		snprintf(buf, len, "%.0fus", us);
	else if (us < 1e6)
		snprintf(buf, len, "%.*fms", us < 1e4 ? 2 : us < 1e5 ? 1 : 0, us / 1e3);
	else
		snprintf(buf, len, "%.*fs", us < 1e7 ? 2 : us < 1e8 ? 1 : 0, us / 1e6);
	return buf;
}

const char *view_duration(uint64_t ns, char *buf, size_t len)
{
	uint64_t s = ns / 1000000000ull;

	if (s < 60)
		snprintf(buf, len, "%llus", (unsigned long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%llum%02llus", (unsigned long long)(s / 60),
			 (unsigned long long)(s % 60));
	else if (s < 86400)
		snprintf(buf, len, "%lluh%02llum", (unsigned long long)(s / 3600),
			 (unsigned long long)(s % 3600 / 60));
	else
		snprintf(buf, len, "%llud%02lluh", (unsigned long long)(s / 86400),
			 (unsigned long long)(s % 86400 / 3600));
	return buf;
}
