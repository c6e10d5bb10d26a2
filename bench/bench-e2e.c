/* SPDX-License-Identifier: MIT */
/*
 * bench-e2e: ferry's main job end to end, and the same work in one thread
 * (scripts/bench-e2e drives it).
 *
 *   bench-e2e gen KEYRING COUNT TENANTS FILE
 *       a replay file of COUNT encrypted legacy events (every legacy type in
 *       turn, each padded to about 1 KiB of plaintext with an extra field the
 *       mappers skip), TENANTS tenants t00.. with key version 1 in KEYRING
 *   bench-e2e watch INSTANCE COUNT [INTERVAL_US [MOCK_PID [FERRYD_PID]]]
 *       follow a running ferryd through its segment (read-only): from ingest's
 *       first message to COUNT acks; then events/s, CPU per event per stage
 *       (/proc/PID/stat), the delivery latency, and a RESULT line
 *   bench-e2e inline CONFIG [MOCK_PID [BATCH]]
 *       the baseline: the replay file of CONFIG read like ingest reads it, then
 *       per message what decrypt and map do (the key ring, the mappers, the
 *       headers), and per BATCH messages (default 256, as produce reads its
 *       rings) what produce does (librdkafka with CONFIG's [kafka] settings),
 *       in one thread with no rings; waits for every delivery; a RESULT line
 *
 * CPU comes from the kernel (utime + stime of whole processes, all threads,
 * librdkafka's included), sampled at the first message and at the last ack,
 * so the replay file's loading (ingest's start; the baseline's load phase)
 * is reported apart. Latency (watch): the watcher samples ingest's counters
 * of messages handed on and acks received every INTERVAL_US; the k-th
 * message's latency is the time the acks reached k minus the time the
 * messages handed on reached k (both FIFO enough per shard), so it is exact
 * to about one interval. It is from ingest handing a message to its shard to
 * ingest reading its ack, i.e. after Kafka confirmed it.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/config.h"
#include "common/envelope.h"
#include "common/msg.h"
#include "common/time.h"
#include "shm/segment.h"
#include "tests/tools/legacy.h"
#include "workers/decrypt/keyring.h"
#include "workers/ingest/replay-line.h"
#include "workers/map/mapper.h"
#include "workers/produce/headers.h"
#include "workers/produce/kconf.h"

#define PLAIN_TARGET	 1024 /* bytes of plaintext per legacy event */
#define HEADERS_MAX	 65536
#define PIDS_MAX	 (SHM_WORKERS_MAX + 2)
#define INLINE_BATCH_MAX 4096

static int usage(void)
{
	fprintf(stderr,
		"usage: bench-e2e gen KEYRING COUNT TENANTS FILE\n"
		"       bench-e2e watch INSTANCE COUNT [INTERVAL_US [MOCK_PID [FERRYD_PID]]]\n"
		"       bench-e2e inline CONFIG [MOCK_PID [BATCH]]\n");
	return 100;
}

/* utime + stime of process pid (all its threads; tid > 0: that thread) in ns; 0 if gone. */
static uint64_t task_cpu_ns(int pid, int tid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return 0;
	if (tid > 0)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the name may hold spaces */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* CPU time of this thread alone, in ns. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t proc_cpu_ns(int pid)
{
	return task_cpu_ns(pid, 0);
}

static uint64_t self_cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

static void pause_us(unsigned us)
{
	struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};

	nanosleep(&ts, NULL);
}

/* --- gen ------------------------------------------------------------------------------ */

/* A key for tenant, version 1, in the key ring's layout (0700 / 0600). */
static int key_make(const char *ring, const char *tenant, unsigned char key[ENVELOPE_KEY_LEN])
{
	char path[4096], b64[64];
	mode_t old;
	FILE *f;

	mkdir(ring, 0700);
	snprintf(path, sizeof(path), "%s/%s", ring, tenant);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/%s/1.key", ring, tenant);
	if (RAND_bytes(key, ENVELOPE_KEY_LEN) != 1)
		return -EIO;
	EVP_EncodeBlock((unsigned char *)b64, key, ENVELOPE_KEY_LEN);
	old = umask(077);
	f = fopen(path, "w");
	umask(old);
	if (!f || fprintf(f, "%s\n", b64) < 0 || fclose(f) != 0) {
		fprintf(stderr, "bench-e2e: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	OPENSSL_cleanse(b64, sizeof(b64));
	return 0;
}

/*
 * Legacy event i padded to about PLAIN_TARGET bytes: old producers' bloat,
 * as a top-level field no mapper reads.
 */
static int padded_event(unsigned i, const char *tenant, char *buf, size_t cap)
{
	int n = legacy_event(i, tenant, buf, cap);
	int pad = PLAIN_TARGET - n - (int)sizeof(",\"clientAudit\":\"\"") + 1;

	if (n < 0 || buf[n - 1] != '}')
		return -EINVAL;
	if (pad <= 0)
		return n;
	if ((size_t)n + (size_t)pad + 32 > cap)
		return -ENOBUFS;
	n--; /* over the closing brace */
	n += snprintf(buf + n, cap - (size_t)n, ",\"clientAudit\":\"");
	for (int k = 0; k < pad; k++)
		buf[n++] = "abcdefghijklmnopqrstuvwxyz0123456789"[(i + (unsigned)k) % 36];
	n += snprintf(buf + n, cap - (size_t)n, "\"}");
	return n;
}

static int cmd_gen(int argc, char **argv)
{
	unsigned count, tenants;
	unsigned char(*keys)[ENVELOPE_KEY_LEN];
	unsigned long long plain_bytes = 0;
	FILE *out;
	int rc = 111;

	if (argc != 6)
		return usage();
	count = (unsigned)strtoul(argv[3], NULL, 10);
	tenants = (unsigned)strtoul(argv[4], NULL, 10);
	if (!count || !tenants || tenants > 1000)
		return usage();
	keys = calloc(tenants, ENVELOPE_KEY_LEN);
	out = fopen(argv[5], "w");
	if (!keys || !out) {
		fprintf(stderr, "bench-e2e: %s: %s\n", argv[5], strerror(errno));
		goto done;
	}
	for (unsigned t = 0; t < tenants; t++) {
		char name[16];

		snprintf(name, sizeof(name), "t%02u", t);
		if (key_make(argv[2], name, keys[t]) < 0)
			goto done;
	}
	for (unsigned i = 0; i < count; i++) {
		char tenant[16], id[32], plain[LEGACY_EVENT_MAX + PLAIN_TARGET], *env = NULL, *line;
		cJSON *j = cJSON_CreateObject(), *a;
		int len;

		snprintf(tenant, sizeof(tenant), "t%02u", i % tenants);
		snprintf(id, sizeof(id), "m-%07u", i);
		len = padded_event(i, tenant, plain, sizeof(plain));
		if (!j || len < 0 ||
		    envelope_seal(tenant, 1, keys[i % tenants], plain, (size_t)len, NULL, 0, &env) <
			    0)
			goto done;
		plain_bytes += (unsigned long long)len;
		cJSON_AddStringToObject(j, "id", id);
		a = cJSON_AddObjectToObject(j, "attributes");
		cJSON_AddStringToObject(a, "tenant", tenant);
		cJSON_AddStringToObject(a, "type", legacy_event_type(i));
		cJSON_AddStringToObject(j, "body", env);
		line = cJSON_PrintUnformatted(j);
		if (!line || fprintf(out, "%s\n", line) < 0)
			goto done;
		free(line);
		free(env);
		cJSON_Delete(j);
	}
	if (fclose(out) != 0) {
		out = NULL;
		goto done;
	}
	out = NULL;
	printf("replay %s: %u events, %u tenants, %.0f bytes of plaintext on average\n", argv[5],
	       count, tenants, (double)plain_bytes / count);
	rc = 0;
done:
	if (out)
		fclose(out);
	if (keys)
		OPENSSL_cleanse(keys, (size_t)tenants * ENVELOPE_KEY_LEN);
	free(keys);
	return rc;
}

/* --- watch ---------------------------------------------------------------------------- */

struct sample {
	uint64_t t, out, acked;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Latency quantiles (us) from the cumulative curves of handed-on and acked counts. */
static int latency(const struct sample *s, size_t ns, uint64_t count, double *p50, double *p99,
		   double *pmax)
{
	uint32_t *lat = malloc(count * sizeof(*lat));
	size_t io = 0, ia = 0;

	if (!lat)
		return -ENOMEM;
	for (uint64_t k = 1; k <= count; k++) {
		while (io < ns && s[io].out < k)
			io++;
		while (ia < ns && s[ia].acked < k)
			ia++;
		if (io == ns || ia == ns) {
			free(lat);
			return -EINVAL;
		}
		lat[k - 1] = s[ia].t > s[io].t ? (uint32_t)((s[ia].t - s[io].t) / 1000) : 0;
	}
	qsort(lat, count, sizeof(*lat), cmp_u32);
	*p50 = lat[count / 2];
	*p99 = lat[count * 99 / 100];
	*pmax = lat[count - 1];
	free(lat);
	return 0;
}

/* Quantile q of the segment's histogram, as its bucket's upper bound in us (-1: none). */
static double hist_quantile(const struct shm_latency *h, double q)
{
	uint64_t want = (uint64_t)((double)h->count * q), seen = 0;

	for (unsigned b = 0; b < SHM_LATENCY_BUCKETS; b++) {
		seen += h->bucket[b];
		if (h->count && seen > want)
			return b < SHM_LATENCY_BUCKETS - 1 ? shm_latency_bounds_us[b] : 1e12;
	}
	return -1;
}

static int cmd_watch(int argc, char **argv)
{
	const char *instance;
	uint64_t count, t_first = 0, t_last = 0, t_start, t_progress, last_out = 0, last_acked = 0;
	unsigned interval = 1000;
	int mock_pid = 0, ferryd_pid = 0, ingest = -1, restarted = 0;
	struct shm_segment *seg = NULL;
	struct sample *s = NULL;
	size_t ns = 0, cap = 0;
	uint64_t cpu0[PIDS_MAX] = {0}, cpu1[PIDS_MAX] = {0}, self0 = 0;
	uint64_t main0[PIDS_MAX] = {0}, main1[PIDS_MAX] = {0};
	int pids[PIDS_MAX] = {0};
	unsigned nw;
	char err[512];
	int r;

	if (argc < 4)
		return usage();
	instance = argv[2];
	count = strtoull(argv[3], NULL, 10);
	if (argc > 4)
		interval = (unsigned)strtoul(argv[4], NULL, 10);
	if (argc > 5)
		mock_pid = atoi(argv[5]);
	if (argc > 6)
		ferryd_pid = atoi(argv[6]);
	if (!count || !interval)
		return usage();
	t_start = now_ns();
	/* The segment appears when ferryd starts; ingest runs once it loaded the file. */
	/* ... and may be caught half made (no magic yet): tried again too, for a while. */
	while ((r = shm_segment_open(instance, SHM_RDONLY, &seg, err, sizeof(err))) == -ENOENT ||
	       r == -EPROTO || r == -EBADMSG || (r == 0 && ingest < 0)) {
		if (r == 0) {
			for (unsigned i = 0; i < seg->hdr->n_workers; i++)
				if (seg->workers[i].kind == SHM_WORKER_INGEST)
					ingest = (int)i;
			if (ingest >= 0)
				break;
			shm_segment_close(seg);
			seg = NULL;
		}
		if (now_ns() - t_start > 60000000000ull) {
			fprintf(stderr, "bench-e2e: no segment for %s after 60 s\n", instance);
			return 111;
		}
		pause_us(2000);
	}
	if (r < 0) {
		fprintf(stderr, "bench-e2e: %s\n", err);
		return 111;
	}
	nw = seg->hdr->n_workers;
	t_progress = now_ns();
	for (;;) {
		const struct shm_worker *ig = &seg->workers[ingest];
		uint64_t out = __atomic_load_n(&ig->records_out, __ATOMIC_ACQUIRE);
		uint64_t acked = __atomic_load_n(&ig->records_in, __ATOMIC_ACQUIRE);
		uint64_t now = now_ns();

		if (!t_first && out) {
			t_first = now;
			for (unsigned i = 0; i < nw; i++)
				pids[i] = seg->workers[i].pid;
			pids[nw] = ferryd_pid;
			pids[nw + 1] = mock_pid;
			for (unsigned i = 0; i < nw + 2; i++) {
				cpu0[i] = proc_cpu_ns(pids[i]);
				main0[i] = task_cpu_ns(pids[i], pids[i]);
			}
			self0 = self_cpu_ns();
		}
		/* A stage not up yet at the first message (slow start): all its CPU counts. */
		for (unsigned i = 0; t_first && i < nw; i++)
			if (!pids[i] && seg->workers[i].pid > 0)
				pids[i] = seg->workers[i].pid;
		if (t_first && (out != last_out || acked != last_acked)) {
			if (ns == cap) {
				struct sample *n2;

				cap = cap ? 2 * cap : 65536;
				n2 = realloc(s, cap * sizeof(*s));
				if (!n2)
					return 111;
				s = n2;
			}
			s[ns++] = (struct sample){now, out, acked};
			last_out = out;
			last_acked = acked;
			t_progress = now;
		}
		if (acked >= count) {
			t_last = now;
			break;
		}
		if (now - t_progress > 60000000000ull) {
			fprintf(stderr,
				"bench-e2e: no progress for 60 s (%llu handed on, %llu acked)\n",
				(unsigned long long)out, (unsigned long long)acked);
			return 111;
		}
		pause_us(interval);
	}
	for (unsigned i = 0; i < nw + 2; i++) {
		cpu1[i] = proc_cpu_ns(pids[i]);
		main1[i] = task_cpu_ns(pids[i], pids[i]);
	}

	/* Per stage kind: the sum over its processes (shards). */
	{
		double secs = (double)(t_last - t_first) / 1e9, rate = (double)count / secs;
		double per[5] = {0}, load[5] = {0}, stages = 0, stages_all = 0, ferryd, mock;
		double watcher = (double)(self_cpu_ns() - self0) / 1e3 / (double)count;
		uint64_t dead = 0;
		double p50 = -1, p99 = -1, pmax = -1;
		const struct shm_worker *pw = NULL;

		for (unsigned i = 0; i < nw; i++) {
			const struct shm_worker *w = &seg->workers[i];
			unsigned k = w->kind < 5 ? w->kind : 0;

			if (w->restarts || !pids[i] || w->pid != pids[i])
				restarted = 1;
			dead += w->dead_letters;
			per[k] += (double)(cpu1[i] - cpu0[i]) / 1e3 / (double)count;
			load[k] += (double)cpu0[i] / 1e3 / (double)count;
			if (w->kind == SHM_WORKER_PRODUCE)
				pw = w;
			printf("  %-12s pid %-7d %8.2f us/event (main thread %.2f; %.2f s CPU in "
			       "the run, %.2f s before)\n",
			       w->name, pids[i], (double)(cpu1[i] - cpu0[i]) / 1e3 / (double)count,
			       (double)(main1[i] - main0[i]) / 1e3 / (double)count,
			       (double)(cpu1[i] - cpu0[i]) / 1e9, (double)cpu0[i] / 1e9);
		}
		for (unsigned k = 1; k < 5; k++) {
			stages += per[k];
			stages_all += per[k] + load[k];
		}
		ferryd = (double)(cpu1[nw] - cpu0[nw]) / 1e3 / (double)count;
		mock = (double)(cpu1[nw + 1] - cpu0[nw + 1]) / 1e3 / (double)count;
		if (latency(s, ns, count, &p50, &p99, &pmax) < 0)
			fprintf(stderr, "bench-e2e: latency: curves incomplete\n");
		printf("ferry: %llu events in %.3f s: %.0f events/s; CPU us/event: ingest %.2f, "
		       "decrypt %.2f, map %.2f, produce %.2f, ferryd %.2f: %.2f in all (+ %.2f "
		       "loading the file); kafka mock %.2f; watcher %.2f\n",
		       (unsigned long long)count, secs, rate, per[1], per[2], per[3], per[4],
		       ferryd, stages + ferryd, load[1], mock, watcher);
		printf("latency (ingest hands on -> ingest reads the ack), sampled every %u us: "
		       "p50 %.0f us, p99 %.0f us, max %.0f us\n",
		       interval, p50, p99, pmax);
		if (pw && pw->latency.count)
			printf("latency from the segment's histogram (%llu observations, ingest "
			       "hands on -> Kafka confirmed): p50 <= %.0f us, p99 <= %.0f us\n",
			       (unsigned long long)pw->latency.count,
			       hist_quantile(&pw->latency, 0.5), hist_quantile(&pw->latency, 0.99));
		if (dead)
			printf("WARNING: %llu dead letters\n", (unsigned long long)dead);
		if (restarted)
			printf("FAILED: a stage restarted during the run: its CPU is not all "
			       "counted\n");
		printf("RESULT mode=ferry events=%llu secs=%.4f rate=%.0f ingest=%.3f decrypt=%.3f "
		       "map=%.3f produce=%.3f ferryd=%.3f cpu=%.3f cpu_all=%.3f mock=%.3f "
		       "p50_us=%.0f p99_us=%.0f hist_p50_us=%.0f hist_p99_us=%.0f dead=%llu "
		       "restarted=%d\n",
		       (unsigned long long)count, secs, rate, per[1], per[2], per[3], per[4],
		       ferryd, stages + ferryd, stages_all + ferryd, mock, p50, p99,
		       pw ? hist_quantile(&pw->latency, 0.5) : -1,
		       pw ? hist_quantile(&pw->latency, 0.99) : -1, (unsigned long long)dead,
		       restarted);
	}
	free(s);
	shm_segment_close(seg);
	return restarted ? 1 : 0;
}

/* --- inline --------------------------------------------------------------------------- */

struct src {
	unsigned char *enc; /* an encoded source message, as ingest hands it on */
	uint32_t len;
};

struct inl {
	struct ferry_config cfg;
	struct keyring *keys;
	struct mapper *mapper;
	rd_kafka_t *rk;
	uint64_t delivered, failed, sent;
	unsigned char plain[MAPPER_INPUT_MAX];
	unsigned char headers[HEADERS_MAX];
	/* the events of a batch, waiting for produce's part */
	struct pend {
		const char *topic;
		size_t koff;
		uint32_t klen;
		size_t voff;
		uint32_t vlen;
		size_t hoff;
		uint32_t hlen;
	} pend[INLINE_BATCH_MAX * MAPPER_EVENTS_MAX];
	unsigned np;
	size_t used;
	unsigned char arena[4 << 20];
	/* topic handles by name pointer (the catalog's), as produce keeps them per type */
	struct {
		const char *name;
		rd_kafka_topic_t *rkt;
	} topics[32];
	unsigned n_topics;
};

static rd_kafka_topic_t *inl_topic(struct inl *b, const char *name)
{
	for (unsigned i = 0; i < b->n_topics; i++)
		if (b->topics[i].name == name)
			return b->topics[i].rkt;
	if (b->n_topics == ARRAY_SIZE(b->topics))
		return NULL;
	b->topics[b->n_topics].name = name;
	b->topics[b->n_topics].rkt = rd_kafka_topic_new(b->rk, name, NULL);
	return b->topics[b->n_topics++].rkt;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *arg)
{
	struct inl *b = arg;

	(void)rk;
	if (m->err)
		b->failed++;
	else
		b->delivered++;
}

/* decrypt's work: envelope, tenant, key, AES-256-GCM. Returns the plaintext length. */
static int64_t inl_decrypt(struct inl *b, const struct msg_source_view *m, char *tenant, size_t tl)
{
	struct envelope e;
	const unsigned char *key;
	struct msg_bytes a;
	char why[256];
	int64_t n;

	if (msg_kv_find(m->attrs, b->cfg.tenant_attribute, &a) <= 0 || a.len >= tl)
		return -EBADMSG;
	snprintf(tenant, tl, "%.*s", (int)a.len, (const char *)a.p);
	if (envelope_parse(m->body.p, m->body.len, &e, why, sizeof(why)) < 0)
		return -EBADMSG;
	if ((e.tenant[0] && strcmp(tenant, e.tenant)) ||
	    keyring_lookup(b->keys, tenant, e.key_version, &key, why, sizeof(why)) < 0) {
		envelope_free(&e);
		return -ENOKEY;
	}
	n = envelope_decrypt(&e, key, b->plain, sizeof(b->plain), why, sizeof(why));
	keyring_release(b->keys);
	envelope_free(&e);
	return n;
}

static int inl_flush(struct inl *b);

/* map's work for one decrypted message, its events kept for the batch. Returns their count. */
static int inl_map_produce(struct inl *b, const struct msg_source_view *m, const char *tenant,
			   uint32_t plen, uint64_t seq)
{
	const char *reason, *legacy;
	struct msg_bytes trace;
	char seqs[24];
	size_t hlen, hoff;
	int n;

	n = mapper_map(b->mapper, tenant, (uint32_t)strlen(tenant), b->plain, plen, &reason);
	if (n <= 0)
		return n < 0 ? n : 0;
	/* The headers as map writes them: the attributes, then where it came from. */
	memcpy(b->headers, m->attrs.p, m->attrs.len);
	hlen = m->attrs.len;
	snprintf(seqs, sizeof(seqs), "%llu", (unsigned long long)seq);
	legacy = mapper_legacy_type(b->mapper);
	if (msg_kv_put(b->headers, HEADERS_MAX, &hlen, "ferry-tenant", 12, tenant,
		       (uint32_t)strlen(tenant)) ||
	    msg_kv_put(b->headers, HEADERS_MAX, &hlen, "ferry-legacy-type", 17, legacy,
		       (uint32_t)strlen(legacy)) ||
	    msg_kv_put(b->headers, HEADERS_MAX, &hlen, "ferry-source", 12, "replay", 6) ||
	    msg_kv_put(b->headers, HEADERS_MAX, &hlen, "ferry-source-id", 15, m->id.p, m->id.len) ||
	    msg_kv_put(b->headers, HEADERS_MAX, &hlen, "ferry-seq", 9, seqs,
		       (uint32_t)strlen(seqs)))
		return -E2BIG;
	/* map looks for a trace id among the attributes (none here) */
	for (unsigned k = 0; k < 3; k++)
		if (msg_kv_find(m->attrs,
				(const char *[]){"traceparent", "trace_id", "AWSTraceHeader"}[k],
				&trace) > 0 &&
		    trace.len &&
		    msg_kv_put(b->headers, HEADERS_MAX, &hlen, "ferry-trace-id", 14, trace.p,
			       trace.len))
			return -E2BIG;
	/* Kept until the batch goes out, as map's outputs wait in its ring for produce. */
	if (b->used + hlen + (size_t)n * (MAPPER_INPUT_MAX / 4) > sizeof(b->arena) &&
	    inl_flush(b) < 0)
		return -EIO;
	hoff = b->used;
	memcpy(b->arena + b->used, b->headers, hlen);
	b->used += hlen;
	for (int i = 0; i < n; i++) {
		const struct mapper_event *me = mapper_event(b->mapper, (unsigned)i);
		struct pend *pe = &b->pend[b->np++];

		if (me->key_len + me->value_len > MAPPER_INPUT_MAX / 4)
			return -E2BIG;
		*pe = (struct pend){me->topic,	   b->used, me->key_len,   b->used + me->key_len,
				    me->value_len, hoff,    (uint32_t)hlen};
		memcpy(b->arena + b->used, me->key, me->key_len);
		memcpy(b->arena + b->used + me->key_len, me->value, me->value_len);
		b->used += me->key_len + me->value_len;
	}
	return n;
}

/* produce's work for the batch: every event to librdkafka, as produce_one() does. */
static int inl_flush(struct inl *b)
{
	for (unsigned i = 0; i < b->np; i++) {
		const struct pend *pe = &b->pend[i];
		struct msg_bytes hl = {b->arena + pe->hoff, pe->hlen};
		rd_kafka_topic_t *rkt = inl_topic(b, pe->topic);
		rd_kafka_headers_t *h;
		rd_kafka_resp_err_t err;

		if (!rkt)
			return -EIO;
		h = headers_of(hl);
		/* The arena is reused for the next batch: librdkafka copies the value. */
		while ((err = rd_kafka_producev(b->rk, RD_KAFKA_V_RKT(rkt),
						RD_KAFKA_V_KEY(b->arena + pe->koff, pe->klen),
						RD_KAFKA_V_VALUE(b->arena + pe->voff, pe->vlen),
						RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
						RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END)) ==
		       RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(b->rk, 1);
		if (err) {
			rd_kafka_headers_destroy(h);
			return -EIO;
		}
		b->sent++;
	}
	b->np = 0;
	b->used = 0;
	rd_kafka_poll(b->rk, 0);
	return 0;
}

static int inl_kafka(struct inl *b)
{
	char err[1024];
	/* The same settings as produce: workers/produce/kconf.h. */
	rd_kafka_conf_t *conf = produce_conf_new(&b->cfg, err, sizeof(err));

	if (!conf) {
		fprintf(stderr, "bench-e2e: %s\n", err);
		return -EINVAL;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_opaque(conf, b);
	b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (b->rk)
		return 0;
	fprintf(stderr, "bench-e2e: librdkafka: %s\n", err);
	return -EINVAL;
}

static int cmd_inline(int argc, char **argv)
{
	struct inl *bp = calloc(1, sizeof(*bp)); /* megabytes: not on the stack */
	struct src *msgs = NULL;
	size_t n = 0, n_alloc = 0, capl = 0;
	uint64_t t_load, cpu_load, t0, t1, cpu0, cpu1, th0, th1, mock0, mock1, bad = 0;
	int mock_pid = argc > 3 ? atoi(argv[3]) : 0;
	unsigned batch = argc > 4 ? (unsigned)atoi(argv[4]) : 256;
	char err[512], *line = NULL;
	const struct rd_kafka_metadata *md = NULL;
	ssize_t len;
	int rc;
	FILE *f;

	if (!bp)
		return 111;
	if (argc < 3 || !batch || batch > INLINE_BATCH_MAX) {
		free(bp);
		return usage();
	}
	mallopt(M_ARENA_MAX, 1); /* as produce does (produce_init()) */
	if (config_load(argv[2], &bp->cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench-e2e: %s\n", err);
		return 111;
	}
	/* Load phase: what ingest does before its first message. */
	t_load = now_ns();
	f = fopen(bp->cfg.replay_file, "r");
	if (!f) {
		fprintf(stderr, "bench-e2e: %s: %s\n", bp->cfg.replay_file, strerror(errno));
		return 111;
	}
	while ((len = getline(&line, &capl, f)) >= 0) {
		const char *why;

		if (len <= 1) /* blank lines are skipped, as ingest does */
			continue;
		if (n == n_alloc) {
			n_alloc = n_alloc ? 2 * n_alloc : 1024;
			msgs = realloc(msgs, n_alloc * sizeof(*msgs));
			if (!msgs)
				return 111;
		}
		/* As ingest's replay source reads it: JSON, then encoded. */
		if (replay_parse(line, NULL, &msgs[n].enc, &msgs[n].len, NULL, &why) < 0) {
			fprintf(stderr, "bench-e2e: line %zu unreadable\n", n + 1);
			return 111;
		}
		n++;
	}
	free(line);
	fclose(f);
	cpu_load = self_cpu_ns();
	t_load = now_ns() - t_load;

	keyring_thread_register();
	bp->keys = keyring_new(bp->cfg.keyring, NULL, bp->cfg.key_cache_ttl_ms * 1000000ull);
	bp->mapper = mapper_new();
	if (!bp->keys || !bp->mapper || inl_kafka(bp) < 0)
		return 111;
	/* Connected, as produce is before its first record (its topic check). */
	if (rd_kafka_metadata(bp->rk, 1, NULL, &md, 10000) == 0)
		rd_kafka_metadata_destroy(md);

	t0 = now_ns();
	cpu0 = self_cpu_ns();
	th0 = thread_cpu_ns();
	mock0 = proc_cpu_ns(mock_pid);
	for (size_t i = 0; i < n; i++) {
		struct msg_source_view m;
		char tenant[ENVELOPE_TENANT_MAX];
		int64_t plen;

		if (msg_source_decode(msgs[i].enc, msgs[i].len, &m) < 0 ||
		    (plen = inl_decrypt(bp, &m, tenant, sizeof(tenant))) < 0 ||
		    inl_map_produce(bp, &m, tenant, (uint32_t)plen, i + 1) < 0)
			bad++;
		if ((i + 1) % batch == 0 && inl_flush(bp) < 0)
			bad++;
	}
	if (inl_flush(bp) < 0)
		bad++;
	while (bp->delivered + bp->failed < bp->sent)
		rd_kafka_poll(bp->rk, 100);
	t1 = now_ns();
	cpu1 = self_cpu_ns();
	th1 = thread_cpu_ns();
	mock1 = proc_cpu_ns(mock_pid);
	{
		double secs = (double)(t1 - t0) / 1e9, rate = (double)n / secs;
		double cpu = (double)(cpu1 - cpu0) / 1e3 / (double)n;
		double load = (double)cpu_load / 1e3 / (double)n;
		double mock = (double)(mock1 - mock0) / 1e3 / (double)n;

		double th = (double)(th1 - th0) / 1e3 / (double)n;

		printf("inline: %zu events (%llu Kafka messages, %llu failed, %llu unmappable) in "
		       "%.3f s: %.0f events/s; CPU %.2f us/event (this thread %.2f, librdkafka's "
		       "%.2f; + %.2f loading the file in %.2f s); kafka mock %.2f; batch %u\n",
		       n, (unsigned long long)bp->sent, (unsigned long long)bp->failed,
		       (unsigned long long)bad, secs, rate, cpu, th, cpu - th, load,
		       (double)t_load / 1e9, mock, batch);
		printf("RESULT mode=inline events=%zu secs=%.4f rate=%.0f cpu=%.3f cpu_all=%.3f "
		       "mock=%.3f dead=%llu\n",
		       n, secs, rate, cpu, cpu + load, mock,
		       (unsigned long long)(bad + bp->failed));
	}
	for (unsigned i = 0; i < bp->n_topics; i++)
		if (bp->topics[i].rkt)
			rd_kafka_topic_destroy(bp->topics[i].rkt);
	rd_kafka_destroy(bp->rk);
	mapper_free(bp->mapper);
	keyring_free(bp->keys);
	keyring_thread_unregister();
	for (size_t i = 0; i < n; i++)
		free(msgs[i].enc);
	free(msgs);
	OPENSSL_cleanse(bp->plain, sizeof(bp->plain));
	config_free(&bp->cfg);
	rc = bad || bp->failed ? 1 : 0;
	free(bp);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "gen"))
		return cmd_gen(argc, argv);
	if (!strcmp(argv[1], "watch"))
		return cmd_watch(argc, argv);
	if (!strcmp(argv[1], "inline"))
		return cmd_inline(argc, argv);
	return usage();
}
