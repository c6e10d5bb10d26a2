/* SPDX-License-Identifier: MIT */
#include "supervisor/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>

#include "common/compiler.h"
#include "common/msg.h"
#include "shm/ring.h"
#include "supervisor/view.h"

#define NS 1000000000ull

/* --- a growing text buffer ---------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
	int oom;
};

static void buf_grow(struct buf *b, size_t more)
{
	size_t ncap;
	char *np;

	if (b->oom || b->len + more + 1 <= b->cap)
		return;
	ncap = b->cap ? b->cap : 16384;
	while (ncap < b->len + more + 1)
		ncap *= 2;
	np = realloc(b->p, ncap);
	if (!np) {
		b->oom = 1;
		return;
	}
	b->p = np;
	b->cap = ncap;
}

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_grow(b, (size_t)n);
	if (b->oom)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* A label value as the exposition format wants it: \\, \" and \n escaped. */
static void bescape(struct buf *b, const char *s, size_t len)
{
	buf_grow(b, 2 * len);
	if (b->oom)
		return;
	for (size_t i = 0; i < len && s[i]; i++) {
		if (s[i] == '\\' || s[i] == '"') {
			b->p[b->len++] = '\\';
			b->p[b->len++] = s[i];
		} else if (s[i] == '\n') {
			b->p[b->len++] = '\\';
			b->p[b->len++] = 'n';
		} else {
			b->p[b->len++] = s[i];
		}
	}
	b->p[b->len] = 0;
}

/* --- rendering ---------------------------------------------------------- */

static uint64_t ld64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static uint32_t ld32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
	bprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{instance="..",key="value"(,key2="value2")} : the start of a sample line. */
static void sample(struct buf *b, const struct metrics_view *v, const char *name, const char *key,
		   const char *val, size_t vlen, const char *key2, const char *val2)
{
	const char *inst = v->seg->hdr->instance;

	bprintf(b, "%s{instance=\"", name);
	bescape(b, inst, strnlen(inst, SHM_INSTANCE_MAX));
	bprintf(b, "\"");
	if (key) {
		bprintf(b, ",%s=\"", key);
		bescape(b, val, vlen);
		bprintf(b, "\"");
	}
	if (key2) {
		bprintf(b, ",%s=\"", key2);
		bescape(b, val2, strlen(val2));
		bprintf(b, "\"");
	}
	bprintf(b, "} ");
}

static const char *kind_name(uint32_t kind)
{
	static const char *const names[] = {
		[SHM_WORKER_OTHER] = "other",	  [SHM_WORKER_INGEST] = "ingest",
		[SHM_WORKER_DECRYPT] = "decrypt", [SHM_WORKER_MAP] = "map",
		[SHM_WORKER_PRODUCE] = "produce",
	};

	return kind < ARRAY_SIZE(names) ? names[kind] : "other";
}

/* Seconds since the stage's last sign of life (its heartbeat, else its start). */
static double heartbeat_age(const struct metrics_view *v, const struct shm_worker *c)
{
	uint64_t hb = ld64(&c->heartbeat_ns), st = ld64(&c->started_ns);
	uint64_t last = hb > st ? hb : st;

	return last && v->now > last ? (double)(v->now - last) / 1e9 : 0.0;
}

static int stage_up(const struct shm_worker *c)
{
	return __atomic_load_n(&c->pid, __ATOMIC_RELAXED) > 0 && ld32(&c->state) == SHM_SSTATE_UP &&
	       ld32(&c->wstate) >= SHM_WSTATE_RUNNING;
}

enum stage_field {
	F_UP,
	F_RESTARTS,
	F_IN,
	F_OUT,
	F_DEAD,
	F_ERRORS,
	F_INFLIGHT,
	F_REDELIVERED,
	F_CPU,
	F_RSS,
	F_HEARTBEAT,
	F_STRIKES,
	F_DEATHS,
};

static const struct {
	const char *name, *type, *help;
} stage_families[] = {
	[F_UP] = {"ferry_stage_up", "gauge",
		  "1 while the stage runs and says it handles records, else 0"},
	[F_RESTARTS] = {"ferry_stage_restarts_total", "counter",
			"Times the stage was started again (deaths, hangs and hot restarts)"},
	[F_IN] = {"ferry_stage_records_in_total", "counter",
		  "Records the stage read (ingest: acks read)"},
	[F_OUT] = {"ferry_stage_records_out_total", "counter",
		   "Records the stage wrote downstream (ingest: messages; produce: records "
		   "Kafka confirmed)"},
	[F_DEAD] = {"ferry_stage_dead_letters_total", "counter",
		    "Records the stage turned into dead letters (produce: sent to the dead-letter "
		    "topic)"},
	[F_ERRORS] = {"ferry_stage_errors_total", "counter", "Errors the stage counted"},
	[F_INFLIGHT] = {"ferry_stage_inflight", "gauge",
			"Records read and not yet safe downstream (produce: not yet confirmed by "
			"Kafka)"},
	[F_REDELIVERED] = {"ferry_stage_redelivered_total", "counter",
			   "Records read again after a death of the stage (possible duplicates "
			   "in Kafka for produce)"},
	[F_CPU] = {"ferry_stage_cpu_seconds_total", "counter",
		   "User and system CPU time of the stage's current process (resets when it "
		   "restarts)"},
	[F_RSS] = {"ferry_stage_resident_memory_bytes", "gauge",
		   "Resident set of the stage's current process"},
	[F_HEARTBEAT] = {"ferry_stage_heartbeat_age_seconds", "gauge",
			 "Seconds since the stage's last heartbeat (or its start)"},
	[F_STRIKES] = {"ferry_stage_strikes", "gauge",
		       "Deaths in a row of the stage on the same record (poison strikes)"},
	[F_DEATHS] = {"ferry_stage_recent_deaths", "gauge",
		      "Deaths of the stage in the last 60 seconds (3 or more: a crash loop)"},
};

static void render_stages(struct buf *b, const struct metrics_view *v)
{
	const struct shm_segment *seg = v->seg;
	unsigned n = seg->hdr->n_workers;

	for (unsigned f = 0; f < ARRAY_SIZE(stage_families); f++) {
		family(b, stage_families[f].name, stage_families[f].type, stage_families[f].help);
		for (unsigned i = 0; i < n; i++) {
			const struct shm_worker *c = &seg->workers[i];

			sample(b, v, stage_families[f].name, "stage", c->name,
			       strnlen(c->name, SHM_WORKER_NAME_MAX), NULL, NULL);
			switch ((enum stage_field)f) {
			case F_UP:
				bprintf(b, "%d\n", stage_up(c));
				break;
			case F_RESTARTS:
				bprintf(b, "%" PRIu32 "\n", ld32(&c->restarts));
				break;
			case F_IN:
				bprintf(b, "%" PRIu64 "\n", ld64(&c->records_in));
				break;
			case F_OUT:
				bprintf(b, "%" PRIu64 "\n", ld64(&c->records_out));
				break;
			case F_DEAD:
				bprintf(b, "%" PRIu64 "\n", ld64(&c->dead_letters));
				break;
			case F_ERRORS:
				bprintf(b, "%" PRIu64 "\n", ld64(&c->errors));
				break;
			case F_INFLIGHT:
				bprintf(b, "%" PRIu32 "\n", ld32(&c->inflight));
				break;
			case F_REDELIVERED:
				bprintf(b, "%" PRIu64 "\n", ld64(&c->redelivered));
				break;
			case F_CPU:
				bprintf(b, "%.9g\n", (double)ld64(&c->cpu_ns) / 1e9);
				break;
			case F_RSS:
				bprintf(b, "%" PRIu64 "\n", ld64(&c->rss_bytes));
				break;
			case F_HEARTBEAT:
				bprintf(b, "%.3f\n", heartbeat_age(v, c));
				break;
			case F_STRIKES:
				bprintf(b, "%" PRIu32 "\n", ld32(&c->strikes));
				break;
			case F_DEATHS:
				bprintf(b, "%u\n", v->recent_deaths ? v->recent_deaths[i] : 0);
				break;
			}
		}
	}
}

static void render_rings(struct buf *b, const struct metrics_view *v)
{
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{"ferry_ring_capacity_bytes", "gauge", "Bytes of the ring's data area"},
		{"ferry_ring_used_bytes", "gauge", "Bytes published and not yet committed"},
		{"ferry_ring_records", "gauge", "Records published and not yet committed"},
		{"ferry_ring_published_records_total", "counter", "Records published, ever"},
		{"ferry_ring_committed_records_total", "counter",
		 "Records committed by the reader, ever"},
		{"ferry_ring_written_bytes_total", "counter", "Bytes published, ever (head)"},
		{"ferry_ring_committed_bytes_total", "counter", "Bytes committed, ever (tail)"},
		{"ferry_ring_last_seq", "gauge", "Pipeline seq of the last record published"},
		{"ferry_ring_commit_seq", "gauge", "Pipeline seq of the last record committed"},
	};
	struct shm_segment *seg = (struct shm_segment *)v->seg;
	unsigned n = seg->hdr->n_rings;
	struct ring_stats *st = calloc(n ? n : 1, sizeof(*st));
	char *ok = calloc(n ? n : 1, 1);

	if (!st || !ok) {
		b->oom = 1;
		goto out;
	}
	/* One snapshot per ring, shown in every family. */
	for (unsigned i = 0; i < n; i++) {
		struct ring r = {0};

		if (shm_segment_ring_attach(seg, i, RING_INSPECT, &r, NULL) == 0) {
			ring_stats(&r, &st[i]);
			ring_detach(&r);
			ok[i] = 1;
		}
	}
	for (unsigned f = 0; f < ARRAY_SIZE(fam); f++) {
		family(b, fam[f].name, fam[f].type, fam[f].help);
		for (unsigned i = 0; i < n; i++) {
			const struct ring_stats *s = &st[i];
			uint64_t val = 0;

			if (!ok[i])
				continue; /* corrupt: ferryctl rings says why */
			switch (f) {
			case 0:
				val = s->capacity;
				break;
			case 1:
				val = s->used;
				break;
			case 2:
				val = s->records;
				break;
			case 3:
				val = s->published;
				break;
			case 4:
				val = s->published - s->records;
				break;
			case 5:
				val = s->head;
				break;
			case 6:
				val = s->tail;
				break;
			case 7:
				val = s->last_seq;
				break;
			case 8:
				val = s->commit_seq;
				break;
			}
			sample(b, v, fam[f].name, "ring", s->name, strnlen(s->name, RING_NAME_MAX),
			       NULL, NULL);
			bprintf(b, "%" PRIu64 "\n", val);
		}
	}
out:
	free(st);
	free(ok);
}

/* The start of a source's sample line: name{instance,source,kind}. */
static void source_sample(struct buf *b, const struct metrics_view *v, const char *name,
			  const struct shm_source *src)
{
	sample(b, v, name, "source", src->name, strnlen(src->name, SHM_SOURCE_NAME_MAX), "kind",
	       msg_source_name(src->kind));
}

static void render_sources(struct buf *b, const struct metrics_view *v)
{
	static const struct {
		const char *name, *type, *help;
		size_t off;
	} fam[] = {
		{"ferry_source_received_total", "counter", "Messages taken from the source",
		 offsetof(struct shm_source, received)},
		{"ferry_source_acked_total", "counter",
		 "Messages deleted / acknowledged at the source after Kafka had them",
		 offsetof(struct shm_source, acked)},
		{"ferry_source_handed_back_total", "counter",
		 "Messages given back to the source unprocessed (ring full, shutdown)",
		 offsetof(struct shm_source, handed_back)},
		{"ferry_source_extended_total", "counter",
		 "Visibility timeout / ack deadline extensions",
		 offsetof(struct shm_source, extended)},
		{"ferry_source_calls_total", "counter", "API calls made to the source",
		 offsetof(struct shm_source, calls)},
		{"ferry_source_errors_total", "counter", "API calls to the source that failed",
		 offsetof(struct shm_source, errors)},
		{"ferry_source_inflight", "gauge",
		 "Messages of the source in ingest's in-flight table",
		 offsetof(struct shm_source, inflight)},
	};
	const struct shm_source *src = shm_sources(v->seg);
	unsigned n = src ? v->seg->hdr->n_sources : 0;
	uint64_t *oldest = calloc(n ? n : 1, 2 * sizeof(*oldest));

	if (!oldest) {
		b->oom = 1;
		return;
	}
	view_inflight_scan(v->seg, n, v->now, oldest, oldest + n);

	family(b, "ferry_source_health", "gauge",
	       "Health of the source: 0 idle (not polled yet), 1 ok, 2 retrying (network or 5xx), "
	       "3 failing (4xx: needs an operator)");
	for (unsigned i = 0; i < n; i++) {
		source_sample(b, v, "ferry_source_health", &src[i]);
		bprintf(b, "%" PRIu32 "\n", ld32(&src[i].health));
	}
	for (unsigned f = 0; f < ARRAY_SIZE(fam); f++) {
		family(b, fam[f].name, fam[f].type, fam[f].help);
		for (unsigned i = 0; i < n; i++) {
			const uint64_t *val =
				(const uint64_t *)((const char *)&src[i] + fam[f].off);

			source_sample(b, v, fam[f].name, &src[i]);
			bprintf(b, "%" PRIu64 "\n", ld64(val));
		}
	}
	family(b, "ferry_source_lag_seconds", "gauge",
	       "Age of the source's oldest message in ingest's in-flight table, 0 when none: "
	       "growing towards the visibility timeout / ack deadline, messages are stuck");
	for (unsigned i = 0; i < n; i++) {
		source_sample(b, v, "ferry_source_lag_seconds", &src[i]);
		bprintf(b, "%.3f\n",
			oldest[i] && v->now > oldest[i] ? (double)(v->now - oldest[i]) / 1e9 : 0.0);
	}
	free(oldest);
}

/* One (tenant, stage kind) with its sums over the shards. */
struct tenant_sum {
	char name[SHM_TENANT_NAME_MAX];
	uint32_t kind;
	uint64_t ok, failed;
};

static void render_tenants(struct buf *b, const struct metrics_view *v)
{
	const struct shm_segment *seg = v->seg;
	unsigned nw = seg->hdr->n_workers, n = 0;
	/* Bounded: SHM_TENANT_SLOTS per worker. */
	struct tenant_sum *t = calloc((size_t)nw * SHM_TENANT_SLOTS + 1, sizeof(*t));

	if (!t) {
		b->oom = 1;
		return;
	}
	for (unsigned w = 0; w < nw; w++) {
		const struct shm_tenant *tab = shm_worker_tenants(seg, w);
		uint32_t kind = seg->workers[w].kind;

		for (unsigned s = 0; tab && s < SHM_TENANT_SLOTS; s++) {
			char name[SHM_TENANT_NAME_MAX];
			unsigned k;

			/* The worker may be writing it: copy, then cut. */
			memcpy(name, tab[s].name, sizeof(name));
			name[sizeof(name) - 1] = 0;
			if (!name[0])
				continue;
			for (k = 0; k < n; k++)
				if (t[k].kind == kind && !strcmp(t[k].name, name))
					break;
			if (k == n) {
				memcpy(t[n].name, name, sizeof(name));
				t[n++].kind = kind;
			}
			t[k].ok += ld64(&tab[s].ok);
			t[k].failed += ld64(&tab[s].failed);
		}
	}
	family(b, "ferry_tenant_events_total", "counter",
	       "Records of the tenant a stage handled, summed over its shards (tenant \"*\": "
	       "those past the 64 tenants a stage tracks)");
	for (unsigned k = 0; k < n; k++) {
		sample(b, v, "ferry_tenant_events_total", "tenant", t[k].name, strlen(t[k].name),
		       "stage", kind_name(t[k].kind));
		bprintf(b, "%" PRIu64 "\n", t[k].ok);
	}
	family(b, "ferry_tenant_dead_letters_total", "counter",
	       "Records of the tenant a stage dead-lettered, summed over its shards");
	for (unsigned k = 0; k < n; k++) {
		sample(b, v, "ferry_tenant_dead_letters_total", "tenant", t[k].name,
		       strlen(t[k].name), "stage", kind_name(t[k].kind));
		bprintf(b, "%" PRIu64 "\n", t[k].failed);
	}
	free(t);
}

static void render_latency(struct buf *b, const struct metrics_view *v)
{
	uint64_t bucket[SHM_LATENCY_BUCKETS] = {0}, sum_us = 0, cum = 0;
	const char *name = "ferry_delivery_latency_seconds";

	for (unsigned w = 0; w < v->seg->hdr->n_workers; w++) {
		const struct shm_worker *c = &v->seg->workers[w];

		if (c->kind != SHM_WORKER_PRODUCE)
			continue;
		for (unsigned i = 0; i < SHM_LATENCY_BUCKETS; i++)
			bucket[i] += ld64(&c->latency.bucket[i]);
		sum_us += ld64(&c->latency.sum_us);
	}
	family(b, name, "histogram",
	       "Delivery latency of source messages: from their receipt by ingest to Kafka "
	       "confirming the last record made from them (dead letters included)");
	for (unsigned i = 0; i < SHM_LATENCY_BUCKETS - 1; i++) {
		char le[32];

		cum += bucket[i];
		snprintf(le, sizeof(le), "%g", (double)shm_latency_bounds_us[i] / 1e6);
		sample(b, v, "ferry_delivery_latency_seconds_bucket", "le", le, strlen(le), NULL,
		       NULL);
		bprintf(b, "%" PRIu64 "\n", cum);
	}
	cum += bucket[SHM_LATENCY_BUCKETS - 1];
	/* _count from the buckets, so +Inf and _count always agree. */
	sample(b, v, "ferry_delivery_latency_seconds_bucket", "le", "+Inf", 4, NULL, NULL);
	bprintf(b, "%" PRIu64 "\n", cum);
	sample(b, v, "ferry_delivery_latency_seconds_sum", NULL, NULL, 0, NULL, NULL);
	bprintf(b, "%.6f\n", (double)sum_us / 1e6);
	sample(b, v, "ferry_delivery_latency_seconds_count", NULL, NULL, 0, NULL, NULL);
	bprintf(b, "%" PRIu64 "\n", cum);
}

static void render_self(struct buf *b, const struct metrics_view *v, unsigned problems)
{
	family(b, "ferry_healthy", "gauge", "1 when /healthz answers 200, else 0");
	sample(b, v, "ferry_healthy", NULL, NULL, 0, NULL, NULL);
	bprintf(b, "%d\n", problems == 0);
	if (!v->self)
		return;
	family(b, "ferry_process_cpu_seconds_total", "counter",
	       "User and system CPU time of ferryd itself");
	sample(b, v, "ferry_process_cpu_seconds_total", NULL, NULL, 0, NULL, NULL);
	bprintf(b, "%.9g\n", (double)v->self->cpu_ns / 1e9);
	family(b, "ferry_process_resident_memory_bytes", "gauge", "Resident set of ferryd itself");
	sample(b, v, "ferry_process_resident_memory_bytes", NULL, NULL, 0, NULL, NULL);
	bprintf(b, "%" PRIu64 "\n", v->self->rss_bytes);
	family(b, "ferry_process_open_fds", "gauge", "Open file descriptors of ferryd itself");
	sample(b, v, "ferry_process_open_fds", NULL, NULL, 0, NULL, NULL);
	bprintf(b, "%u\n", v->self->open_fds);
}

/* The problems /healthz names, into b (NULL: count only). */
static unsigned problems(const struct metrics_view *v, struct buf *b)
{
	const struct shm_segment *seg = v->seg;
	unsigned n = 0;

	if (v->draining) {
		n++;
		if (b)
			bprintf(b, "instance draining (SIGTERM)\n");
	}
	for (unsigned i = 0; i < seg->hdr->n_workers; i++) {
		const struct shm_worker *c = &seg->workers[i];
		int nl = (int)strnlen(c->name, SHM_WORKER_NAME_MAX);
		uint32_t state = ld32(&c->state);
		int32_t pid = __atomic_load_n(&c->pid, __ATOMIC_RELAXED);
		unsigned deaths = v->recent_deaths ? v->recent_deaths[i] : 0;
		const char *what = NULL;
		double age = heartbeat_age(v, c);

		switch (state) {
		case SHM_SSTATE_UP:
		case SHM_SSTATE_RESTARTING: /* asked for, still running */
			if (pid <= 0)
				what = "not running";
			else if (ld32(&c->wstate) < SHM_WSTATE_RUNNING)
				what = "starting";
			break;
		case SHM_SSTATE_BACKOFF:
			what = "down, restart scheduled (backoff)";
			break;
		case SHM_SSTATE_FAILED:
			what = "failed: cannot be started";
			break;
		default:
			what = "down";
			break;
		}
		if (what) {
			n++;
			if (b)
				bprintf(b, "%.*s: %s\n", nl, c->name, what);
		}
		if (pid > 0 && age * 1e9 >= (double)v->heartbeat_timeout_ns) {
			n++;
			if (b)
				bprintf(b, "%.*s: no heartbeat for %.1f s (timeout %.1f s)\n", nl,
					c->name, age, (double)v->heartbeat_timeout_ns / 1e9);
		}
		if (deaths >= METRICS_LOOP_DEATHS) {
			n++;
			if (b)
				bprintf(b, "%.*s: crash loop: %u deaths in the last %d s\n", nl,
					c->name, deaths, METRICS_LOOP_WINDOW_S);
		}
	}
	return n;
}

char *metrics_render(const struct metrics_view *v, size_t *ret_len)
{
	struct buf b = {0};

	render_stages(&b, v);
	render_rings(&b, v);
	render_sources(&b, v);
	render_tenants(&b, v);
	render_latency(&b, v);
	render_self(&b, v, problems(v, NULL));
	if (b.oom || !b.p) {
		free(b.p);
		errno = ENOMEM;
		return NULL;
	}
	*ret_len = b.len;
	return b.p;
}

int metrics_health(const struct metrics_view *v, char **ret_text, size_t *ret_len)
{
	struct buf b = {0};
	unsigned n = problems(v, &b);

	if (!n)
		bprintf(&b, "ok\n");
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*ret_text = b.p;
	*ret_len = b.len;
	return (int)n;
}

/* --- the server --------------------------------------------------------- */

enum conn_state { C_FREE = 0, C_READ, C_WRITE };

struct conn {
	int fd;
	enum conn_state state;
	uint64_t deadline;
	char req[METRICS_REQUEST_MAX];
	size_t req_len;
	char *out; /* head + body */
	size_t out_len, out_off;
};

struct metrics_server {
	int fd;
	int port;
	metrics_view_fn view;
	void *arg;
	struct conn c[METRICS_CONNS_MAX];
};

struct metrics_server *metrics_server_new(const char *listen_on, metrics_view_fn view, void *arg,
					  char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
			*ai = NULL;
	const char *colon = listen_on ? strrchr(listen_on, ':') : NULL;
	char host[128], port[8];
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	struct metrics_server *m;
	int one = 1, r, e;

	if (!colon || colon == listen_on || (size_t)(colon - listen_on) >= sizeof(host) ||
	    strlen(colon + 1) >= sizeof(port) || !view) {
		snprintf(err, errlen, "metrics_listen: want HOST:PORT, got '%s'",
			 listen_on ? listen_on : "(null)");
		errno = EINVAL;
		return NULL;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - listen_on), listen_on);
	snprintf(port, sizeof(port), "%s", colon + 1);
	if (host[0] == '[') { /* [IPv6] */
		size_t hl = strlen(host);

		memmove(host, host + 1, hl);
		if (hl >= 2 && host[hl - 2] == ']')
			host[hl - 2] = 0;
	}
	r = getaddrinfo(host, port, &hints, &ai);
	if (r) {
		snprintf(err, errlen, "metrics_listen %s: %s", listen_on, gai_strerror(r));
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		freeaddrinfo(ai);
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	m->view = view;
	m->arg = arg;
	m->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->fd < 0 || setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(m->fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(m->fd, 64) < 0 ||
	    getsockname(m->fd, (struct sockaddr *)&sa, &salen) < 0) {
		e = errno;
		snprintf(err, errlen, "metrics_listen %s: %s", listen_on, strerror(e));
		freeaddrinfo(ai);
		if (m->fd >= 0)
			close(m->fd);
		free(m);
		errno = e;
		return NULL;
	}
	freeaddrinfo(ai);
	m->port = sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
					   : ntohs(((struct sockaddr_in *)&sa)->sin_port);
	for (unsigned i = 0; i < METRICS_CONNS_MAX; i++)
		m->c[i].fd = -1;
	return m;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->out);
	c->fd = -1;
	c->out = NULL;
	c->state = C_FREE;
	c->req_len = c->out_len = c->out_off = 0;
}

void metrics_server_free(struct metrics_server *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < METRICS_CONNS_MAX; i++)
		conn_close(&m->c[i]);
	if (m->fd >= 0)
		close(m->fd);
	free(m);
}

int metrics_server_port(const struct metrics_server *m)
{
	return m ? m->port : -1;
}

static unsigned free_slots(const struct metrics_server *m)
{
	unsigned n = 0;

	for (unsigned i = 0; i < METRICS_CONNS_MAX; i++)
		n += m->c[i].state == C_FREE;
	return n;
}

unsigned metrics_server_pollfds(const struct metrics_server *m, struct pollfd *p, unsigned max)
{
	unsigned n = 0;

	if (!m)
		return 0;
	if (n < max && free_slots(m))
		p[n++] = (struct pollfd){.fd = m->fd, .events = POLLIN};
	for (unsigned i = 0; i < METRICS_CONNS_MAX && n < max; i++)
		if (m->c[i].state != C_FREE)
			p[n++] = (struct pollfd){.fd = m->c[i].fd,
						 .events = m->c[i].state == C_READ ? POLLIN
										   : POLLOUT};
	return n;
}

/* The answer: status line, headers, body (none for HEAD). Takes body. */
static void respond(struct conn *c, int head_only, const char *status, const char *type, char *body,
		    size_t body_len)
{
	char hdr[256];
	int hl = snprintf(hdr, sizeof(hdr),
			  "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			  "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
			  status, type, body_len);
	size_t total = (size_t)hl + (head_only ? 0 : body_len);

	c->out = malloc(total);
	if (!c->out) {
		free(body);
		conn_close(c);
		return;
	}
	memcpy(c->out, hdr, (size_t)hl);
	if (!head_only && body_len)
		memcpy(c->out + hl, body, body_len);
	free(body);
	c->out_len = total;
	c->out_off = 0;
	c->state = C_WRITE;
}

static void respond_text(struct conn *c, int head_only, const char *status, const char *text)
{
	char *body = strdup(text);

	if (!body) {
		conn_close(c);
		return;
	}
	respond(c, head_only, status, "text/plain; charset=utf-8", body, strlen(text));
}

/* A whole request is in c->req: answer it. */
static void answer(struct metrics_server *m, struct conn *c)
{
	char method[16], target[256];
	struct metrics_view v = {0};
	int head_only;
	char *q, *body;
	size_t len;

	c->req[c->req_len] = 0;
	if (sscanf(c->req, "%15s %255s HTTP/1.%*c", method, target) != 2) {
		respond_text(c, 0, "400 Bad Request", "bad request\n");
		return;
	}
	head_only = !strcmp(method, "HEAD");
	if (!head_only && strcmp(method, "GET")) {
		respond_text(c, 0, "405 Method Not Allowed", "GET or HEAD only\n");
		return;
	}
	q = strchr(target, '?');
	if (q)
		*q = 0;
	if (strcmp(target, "/metrics") && strcmp(target, "/healthz")) {
		respond_text(c, head_only, "404 Not Found",
			     "not found: try /metrics or /healthz\n");
		return;
	}
	m->view(m->arg, &v);
	if (!strcmp(target, "/metrics")) {
		body = metrics_render(&v, &len);
		if (!body) {
			respond_text(c, head_only, "500 Internal Server Error", "out of memory\n");
			return;
		}
		respond(c, head_only, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body,
			len);
		return;
	}
	int n = metrics_health(&v, &body, &len);

	if (n < 0) {
		respond_text(c, head_only, "500 Internal Server Error", "out of memory\n");
		return;
	}
	respond(c, head_only, n ? "503 Service Unavailable" : "200 OK", "text/plain; charset=utf-8",
		body, len);
}

static void conn_read(struct metrics_server *m, struct conn *c)
{
	for (;;) {
		ssize_t n = read(c->fd, c->req + c->req_len, sizeof(c->req) - 1 - c->req_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) { /* gone before asking */
			conn_close(c);
			return;
		}
		c->req_len += (size_t)n;
		c->req[c->req_len] = 0;
		/* The end of the headers: the body of a GET (if any) is ignored. */
		if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) {
			answer(m, c);
			return;
		}
		if (c->req_len == sizeof(c->req) - 1) {
			respond_text(c, 0, "431 Request Header Fields Too Large", "too large\n");
			return;
		}
	}
}

static void conn_write(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	conn_close(c);
}

void metrics_server_run(struct metrics_server *m, const struct pollfd *p, unsigned n, uint64_t now)
{
	if (!m)
		return;
	/* Accept while a slot is free; the rest wait in the backlog. */
	for (unsigned k = 0; k < n; k++) {
		if (p[k].fd != m->fd || !(p[k].revents & POLLIN))
			continue;
		for (unsigned i = 0; i < METRICS_CONNS_MAX; i++) {
			struct conn *c = &m->c[i];
			int fd;

			if (c->state != C_FREE)
				continue;
			fd = accept4(m->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd < 0)
				break;
			c->fd = fd;
			c->state = C_READ;
			c->deadline = now + (uint64_t)METRICS_DEADLINE_MS * 1000000ull;
			c->req_len = 0;
			conn_read(m, c); /* the request is often there already */
			if (c->state == C_WRITE)
				conn_write(c);
		}
	}
	for (unsigned k = 0; k < n; k++) {
		if (p[k].fd == m->fd || !p[k].revents)
			continue;
		for (unsigned i = 0; i < METRICS_CONNS_MAX; i++) {
			struct conn *c = &m->c[i];

			if (c->fd != p[k].fd || c->state == C_FREE)
				continue;
			if (c->state == C_READ)
				conn_read(m, c);
			if (c->state == C_WRITE)
				conn_write(c);
			break;
		}
	}
	for (unsigned i = 0; i < METRICS_CONNS_MAX; i++)
		if (m->c[i].state != C_FREE && now > m->c[i].deadline)
			conn_close(&m->c[i]);
}
