/* SPDX-License-Identifier: MIT */
/*
 * The key cache: a fixed table of hash chains published with RCU. Readers
 * (the record path) walk a chain inside an RCU read-side section and take
 * the key of an entry in state E_READY without a lock, a clock read or a
 * KMS call. Writers (first uses, the refresher thread, keyring_flush())
 * serialise on one mutex, which no one holds across a KMS call or a grace
 * period.
 *
 * Flavour: urcu-memb. Its read lock is a thread-local counter store (the
 * writer pays with membarrier(2)), and it needs nothing from the worker's
 * loop. QSBR would save those few stores per record, but only if the loop
 * announced quiescent states and went offline around every blocking wait
 * (ring_wait_data(), backpressure in worker_reserve()); the loop is shared
 * by every stage and knows nothing of keys, and a missed announcement
 * would stall every refresh and SIGHUP. memb costs ~2 ns against ~5 us of
 * AES-GCM per record.
 *
 * Key memory: slots of one locked, undumpable arena. A key that is
 * replaced (refresh) or dropped (flush) is wiped and its slot reused only
 * after synchronize_rcu(), so no reader can be holding it.
 */
#define _LGPL_SOURCE   /* inline read-side primitives (liburcu is LGPL; ferry links it) */
#define RCU_MEMBARRIER /* the flavour: see above */
#include "workers/decrypt/keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <urcu.h> /* with RCU_MEMBARRIER: the memb flavour */

#include "common/aws.h"
#include "common/log.h"
#include "common/time.h"

#define BUCKETS	       1024
#define NEGATIVE_NS    (5 * 1000000000ull)  /* a missing or bad key file is read again after */
#define FIRST_WAIT_NS  (5 * 1000000000ull)  /* first use of a wrapped key: longest wait */
#define KMS_TIMEOUT_NS (4 * 1000000000ull)  /* one KMS call, all included */
#define BACKOFF_MAX_NS (60 * 1000000000ull) /* failed unwraps are retried at least this often */
#define SLOT	       40   /* bytes per key slot: 32 + 2 spare for base64 blocks, aligned */
#define SLOTS	       1600 /* 62.5 KiB: fits the smallest usual RLIMIT_MEMLOCK, 64 KiB */
#define WHY_MAX	       200

enum { E_FAILED, E_READY, E_PENDING };

struct entry {
	struct entry *next; /* RCU-published chain */
	char tenant[ENVELOPE_TENANT_MAX];
	uint32_t version;
	int state;	    /* E_*, atomic: readers take E_READY entries only */
	unsigned char *key; /* RCU pointer to a slot; set once E_READY */
	/* The rest is the writers', under keyring.mu. */
	struct entry *gone; /* keyring_flush()'s list of detached entries */
	int wrapped;	    /* KMS-wrapped: the refresher owns its unwraps */
	int err;	    /* E_FAILED: the -errno, with why */
	int waited_out;	    /* E_PENDING: a lookup already waited its time for it */
	uint64_t until;	    /* a plain key's remembered failure holds until then */
	uint64_t due;	    /* wrapped: next KMS call at (0: none) */
	uint64_t backoff;   /* wrapped: the last retry delay */
	char why[WHY_MAX];
};

struct keyring {
	char dir[4096];
	struct aws_client *kms; /* used by the refresher thread only */
	CURL *easy;		/* the refresher's connection to KMS */
	uint64_t ttl_ns, wait_ns, kms_timeout_ns;
	struct entry *bucket[BUCKETS]; /* RCU-published heads */

	pthread_mutex_t mu;  /* the writers' */
	pthread_cond_t work; /* to the refresher: a first use, a flush, stop */
	pthread_cond_t done; /* from the refresher: an unwrap finished */
	pthread_t thread;
	int have_thread;
	int stop;      /* atomic: also read by the transfer's progress callback */
	uint64_t gen;  /* bumped by each flush: entries held across unlocks are gone */
	int kms_stuck; /* a first use waited out; further first uses do not wait */
	unsigned n_wrapped;

	/* One page-aligned arena of locked, undumpable memory for key bytes. */
	unsigned char *arena;
	size_t arena_size;
	uint32_t free_slot[SLOTS];
	unsigned n_free;
	unsigned char *retired[SLOTS]; /* replaced keys awaiting a grace period */
	unsigned n_retired;

	struct keyring_stats st; /* atomic counts */
};

static uint32_t hash(const char *tenant, uint32_t version)
{
	uint32_t h = 2166136261u ^ version;

	while (*tenant)
		h = (h ^ (unsigned char)*tenant++) * 16777619u;
	return h % BUCKETS;
}

static int tenant_valid(const char *t)
{
	size_t n = strlen(t);

	if (!n || n >= ENVELOPE_TENANT_MAX || !strcmp(t, ".") || !strcmp(t, ".."))
		return 0;
	for (; *t; t++)
		if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') ||
		      (*t >= '0' && *t <= '9') || *t == '_' || *t == '-' || *t == '.'))
			return 0;
	return 1;
}

static void count(uint64_t *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

static unsigned char *slot_get(struct keyring *k)
{
	return k->n_free ? k->arena + (size_t)k->free_slot[--k->n_free] * SLOT : NULL;
}

static void slot_put(struct keyring *k, unsigned char *p)
{
	OPENSSL_cleanse(p, SLOT);
	k->free_slot[k->n_free++] = (uint32_t)((size_t)(p - k->arena) / SLOT);
}

/* The entry of tenant, version in chain b (inside a read section, or under mu). */
static struct entry *find(struct keyring *k, uint32_t b, const char *tenant, uint32_t version)
{
	struct entry *e;

	for (e = rcu_dereference(k->bucket[b]); e; e = rcu_dereference(e->next))
		if (e->version == version && !strcmp(e->tenant, tenant))
			return e;
	return NULL;
}

static void deadline_of(uint64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / 1000000000ull);
	ts->tv_nsec = (long)(ns % 1000000000ull);
}

/* Wipe the keys retired so far once no reader can hold them. Called and returns with mu held. */
static void reclaim(struct keyring *k)
{
	unsigned char *mine[SLOTS];
	unsigned n = k->n_retired;

	memcpy(mine, k->retired, n * sizeof(mine[0]));
	k->n_retired = 0;
	pthread_mutex_unlock(&k->mu);
	synchronize_rcu();
	pthread_mutex_lock(&k->mu);
	for (unsigned i = 0; i < n; i++)
		slot_put(k, mine[i]);
}

/*
 * Read a small file that must be a regular file of mode 0600 or stricter,
 * without trailing white space, into buf. Returns its length or -errno
 * with why.
 */
static ssize_t read_secret(const char *path, char *buf, size_t cap, char *why, size_t whylen)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -ENOENT;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		snprintf(why, whylen,
			 "key file %s is not a regular file of mode 0600 or stricter "
			 "(mode %04o): refused",
			 path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -EACCES;
	}
	n = read(fd, buf, cap - 1);
	close(fd);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	return n < 0 ? -EIO : n;
}

/* The KMS blob of a .wrapped file into blob (AWS_KMS_BLOB_MAX). Returns its length or -errno. */
static int64_t wrapped_read(struct keyring *k, const char *tenant, uint32_t version,
			    unsigned char *blob, char *why, size_t whylen)
{
	char path[4096 + 2 * ENVELOPE_TENANT_MAX], b64[4 * AWS_KMS_BLOB_MAX / 3 + 8];
	ssize_t n;
	int64_t bl;

	snprintf(path, sizeof(path), "%s/%s/%u.wrapped", k->dir, tenant, version);
	n = read_secret(path, b64, sizeof(b64), why, whylen);
	if (n == -ENOENT)
		snprintf(why, whylen, "unknown key version %u of tenant '%s'", version, tenant);
	if (n < 0)
		return n;
	if (!k->kms) {
		snprintf(why, whylen,
			 "key %u of tenant '%s' is KMS-wrapped, and no [decrypt] kms_region is set",
			 version, tenant);
		return -EACCES;
	}
	bl = envelope_b64_decode(b64, (size_t)n, blob, AWS_KMS_BLOB_MAX);
	if (bl <= 0) {
		snprintf(why, whylen, "key file %s is not base64", path);
		return -EINVAL;
	}
	return bl;
}

static int on_progress(void *p, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct keyring *k = p;

	(void)a, (void)b, (void)c, (void)d;
	return __atomic_load_n(&k->stop, __ATOMIC_RELAXED); /* non-zero aborts: shutting down */
}

/* The 32-byte Plaintext of a KMS Decrypt answer into key (34 bytes); every copy wiped. */
static int plaintext_of(char *resp, unsigned char *key, char *err, size_t errlen)
{
	cJSON *j = cJSON_Parse(resp);
	cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "Plaintext");
	int64_t n = -1;

	if (cJSON_IsString(p)) {
		n = envelope_b64_decode(p->valuestring, strlen(p->valuestring), key,
					ENVELOPE_KEY_LEN + 2);
		OPENSSL_cleanse(p->valuestring, strlen(p->valuestring));
	}
	cJSON_Delete(j);
	if (n == ENVELOPE_KEY_LEN)
		return 0;
	OPENSSL_cleanse(key, ENVELOPE_KEY_LEN + 2);
	if (n < 0)
		snprintf(err, errlen, "kms: Decrypt answer without a valid Plaintext");
	else
		snprintf(err, errlen, "the data key is %lld bytes, not %d", (long long)n,
			 ENVELOPE_KEY_LEN);
	return n < 0 ? -EPROTO : -EINVAL;
}

/*
 * Unwrap tenant's key version through KMS into key (34 bytes), on the
 * refresher thread, bounded by kms_timeout_ns. *answered: KMS (or
 * something at its address) sent an HTTP answer. Returns 0 or -errno with
 * why.
 */
static int unwrap(struct keyring *k, const char *tenant, uint32_t version, unsigned char *key,
		  int *answered, char *why, size_t whylen)
{
	unsigned char blob[AWS_KMS_BLOB_MAX];
	char err[256] = "", *body = NULL, *resp = NULL;
	struct aws_request *rq = NULL;
	long status = 0, ms = (long)(k->kms_timeout_ns / 1000000);
	int64_t bl = wrapped_read(k, tenant, version, blob, why, whylen);
	int r;

	*answered = 0;
	if (bl < 0)
		return (int)bl;
	body = malloc(4 * ((size_t)bl + 2) / 3 + 32);
	if (!body) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	memcpy(body, "{\"CiphertextBlob\":\"", 19);
	r = EVP_EncodeBlock((unsigned char *)body + 19, blob, (int)bl);
	memcpy(body + 19 + r, "\"}", 3);
	r = aws_json_request_new(k->kms, "kms", "TrentService.Decrypt", body, &rq, err,
				 sizeof(err));
	if (r == 0) {
		CURLcode code;

		curl_easy_reset(k->easy);
		r = aws_request_attach(rq, k->easy);
		/* Bounded, and no SIGALRM for name lookups: this is not the main thread. */
		curl_easy_setopt(k->easy, CURLOPT_TIMEOUT_MS, ms);
		curl_easy_setopt(k->easy, CURLOPT_CONNECTTIMEOUT_MS, ms / 2 > 0 ? ms / 2 : 1);
		curl_easy_setopt(k->easy, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(k->easy, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(k->easy, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(k->easy, CURLOPT_XFERINFODATA, k);
		count(&k->st.kms_calls);
		code = r == 0 ? curl_easy_perform(k->easy) : CURLE_FAILED_INIT;
		r = aws_request_finish(rq, k->easy, code, &resp, &status, err, sizeof(err));
		*answered = status != 0;
	}
	if (r == 0) {
		r = plaintext_of(resp, key, err, sizeof(err));
		OPENSSL_cleanse(resp, strlen(resp));
	}
	free(resp);
	aws_request_free(rq);
	free(body);
	if (r < 0) {
		snprintf(why, whylen, "KMS %s the data key of tenant '%s' version %u: %s",
			 *answered ? "refused" : "could not be asked for", tenant, version, err);
		return r == -EACCES || r == -EIO || r == -ENOMEM ? r : -EACCES;
	}
	return 0;
}

/* The next entry for KMS: a first use, else the most overdue; NULL and *next if none is due. */
static struct entry *next_job(struct keyring *k, uint64_t now, uint64_t *next)
{
	struct entry *best = NULL;

	*next = UINT64_MAX;
	if (!k->n_wrapped)
		return NULL;
	for (unsigned b = 0; b < BUCKETS; b++)
		for (struct entry *e = k->bucket[b]; e; e = e->next) {
			if (!e->wrapped || !e->due)
				continue;
			if (e->due > now) {
				if (e->due < *next)
					*next = e->due;
				continue;
			}
			if (!best || (e->state == E_PENDING && best->state != E_PENDING) ||
			    ((e->state == E_PENDING) == (best->state == E_PENDING) &&
			     e->due < best->due))
				best = e;
		}
	return best;
}

/* Take the refresher's result for e (under mu). */
static void finish(struct keyring *k, struct entry *e, int r, const unsigned char *fresh, char *why,
		   size_t whylen)
{
	uint64_t now = now_ns(), base = k->ttl_ns / 10;
	unsigned char *slot = NULL;

	if (r == 0 && !(slot = slot_get(k))) {
		snprintf(why, whylen, "too many keys in memory");
		r = -ENOMEM;
	}
	if (r == 0) {
		unsigned char *old = e->key;

		memcpy(slot, fresh, ENVELOPE_KEY_LEN);
		rcu_assign_pointer(e->key, slot);
		if (old) {
			/* Readers may hold the old key: wiped after a grace period. */
			k->retired[k->n_retired++] = old;
			count(&k->st.refreshed);
		}
		__atomic_store_n(&e->state, E_READY, __ATOMIC_RELEASE);
		e->backoff = 0;
		e->waited_out = 0;
		e->due = k->ttl_ns ? now + k->ttl_ns / 5 * 4 : 0;
		return;
	}
	/* Backoff from a tenth of the TTL (0.1 s to 5 s), doubling up to a minute. */
	base = base < 100000000ull ? 100000000ull : base > NEGATIVE_NS ? NEGATIVE_NS : base;
	e->backoff = e->backoff ? e->backoff * 2 : base;
	if (e->backoff > BACKOFF_MAX_NS)
		e->backoff = BACKOFF_MAX_NS;
	e->due = now + e->backoff;
	snprintf(e->why, sizeof(e->why), "%s", why);
	if (e->key) {
		count(&k->st.refresh_failures);
		log_warning(
			"tenant %s key %u: %s; the key in hand stays in use, next try in %llu ms",
			e->tenant, e->version, why, (unsigned long long)(e->backoff / 1000000));
		return;
	}
	e->err = r;
	e->waited_out = 0;
	__atomic_store_n(&e->state, E_FAILED, __ATOMIC_RELEASE);
	log_warning("tenant %s key %u: %s; next try in %llu ms", e->tenant, e->version, why,
		    (unsigned long long)(e->backoff / 1000000));
}

/* The refresher thread: every KMS call of the keyring, one at a time, first uses first. */
static void *refresher(void *arg)
{
	struct keyring *k = arg;
	unsigned char fresh[ENVELOPE_KEY_LEN + 2];
	char tenant[ENVELOPE_TENANT_MAX], why[WHY_MAX];

	pthread_mutex_lock(&k->mu);
	while (!k->stop) {
		uint64_t next, gen = k->gen;
		struct entry *e = next_job(k, now_ns(), &next);
		uint32_t version;
		int r, answered;

		if (!e) {
			struct timespec ts;

			/* Nothing due: sleep until the next refresh, a first use or stop. */
			deadline_of(next == UINT64_MAX ? now_ns() + 3600 * 1000000000ull : next,
				    &ts);
			pthread_cond_timedwait(&k->work, &k->mu, &ts);
			continue;
		}
		snprintf(tenant, sizeof(tenant), "%s", e->tenant);
		version = e->version;
		e->due = 0; /* taken; finish() sets the next time */
		pthread_mutex_unlock(&k->mu);
		r = unwrap(k, tenant, version, fresh, &answered, why, sizeof(why));
		pthread_mutex_lock(&k->mu);
		if (answered)
			k->kms_stuck = 0;
		/* Flushed meanwhile: e is gone, the key unwanted; stopping: nothing to say. */
		if (k->gen == gen && !k->stop)
			finish(k, e, r, fresh, why, sizeof(why));
		OPENSSL_cleanse(fresh, sizeof(fresh));
		pthread_cond_broadcast(&k->done);
		if (k->n_retired)
			reclaim(k);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

struct keyring *keyring_new(const char *dir, struct aws_client *kms, uint64_t ttl_ns)
{
	struct keyring *k = calloc(1, sizeof(*k));
	pthread_condattr_t ca;
	sigset_t all, old;
	int r;

	if (!k)
		return NULL;
	snprintf(k->dir, sizeof(k->dir), "%s", dir);
	k->kms = kms;
	k->ttl_ns = ttl_ns;
	k->wait_ns = FIRST_WAIT_NS;
	k->kms_timeout_ns = KMS_TIMEOUT_NS;
	k->arena_size = (size_t)SLOTS * SLOT;
	k->arena = mmap(NULL, k->arena_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	if (k->arena == MAP_FAILED) {
		free(k);
		return NULL;
	}
	/* A key must not reach swap or a core file (locking is up to RLIMIT_MEMLOCK). */
	if (mlock(k->arena, k->arena_size) < 0)
		log_warning("cannot lock the key memory (%s): keys may reach swap",
			    strerror(errno));
	madvise(k->arena, k->arena_size, MADV_DONTDUMP);
	for (unsigned i = 0; i < SLOTS; i++)
		k->free_slot[k->n_free++] = SLOTS - 1 - i;
	pthread_mutex_init(&k->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* deadlines from now_ns() */
	pthread_cond_init(&k->work, &ca);
	pthread_cond_init(&k->done, &ca);
	pthread_condattr_destroy(&ca);
	if (!kms)
		return k;
	k->easy = curl_easy_init();
	if (!k->easy) {
		errno = ENOMEM;
		goto err;
	}
	/* Signals are the record thread's business (its waits are cut short by them). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&k->thread, NULL, refresher, k);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		errno = r;
		goto err;
	}
	k->have_thread = 1;
	return k;
err:
	r = errno;
	keyring_free(k);
	errno = r;
	return NULL;
}

void keyring_set_waits(struct keyring *k, uint64_t first_use_wait_ns, uint64_t kms_timeout_ns)
{
	pthread_mutex_lock(&k->mu);
	if (first_use_wait_ns)
		k->wait_ns = first_use_wait_ns;
	if (kms_timeout_ns)
		k->kms_timeout_ns = kms_timeout_ns;
	pthread_mutex_unlock(&k->mu);
}

void keyring_flush(struct keyring *k)
{
	struct entry *gone = NULL;
	unsigned char *retired[SLOTS];
	unsigned n;

	if (!k)
		return;
	pthread_mutex_lock(&k->mu);
	k->gen++;
	for (unsigned b = 0; b < BUCKETS; b++) {
		/* Readers may be walking the chain: unlink it whole, keep its links. */
		for (struct entry *e = k->bucket[b]; e; e = e->next) {
			e->gone = gone;
			gone = e;
		}
		rcu_assign_pointer(k->bucket[b], NULL);
	}
	n = k->n_retired;
	memcpy(retired, k->retired, n * sizeof(retired[0]));
	k->n_retired = 0;
	k->n_wrapped = 0;
	k->kms_stuck = 0;
	pthread_cond_broadcast(&k->done); /* waiters for a first use give up */
	pthread_mutex_unlock(&k->mu);
	synchronize_rcu();
	pthread_mutex_lock(&k->mu);
	while (gone) {
		struct entry *next = gone->gone;

		if (gone->key)
			slot_put(k, gone->key);
		free(gone);
		gone = next;
	}
	for (unsigned i = 0; i < n; i++)
		slot_put(k, retired[i]);
	pthread_mutex_unlock(&k->mu);
}

void keyring_free(struct keyring *k)
{
	if (!k)
		return;
	if (k->have_thread) {
		pthread_mutex_lock(&k->mu);
		__atomic_store_n(&k->stop, 1, __ATOMIC_RELAXED);
		pthread_cond_signal(&k->work);
		pthread_mutex_unlock(&k->mu);
		pthread_join(k->thread, NULL);
	}
	keyring_flush(k);
	if (k->easy)
		curl_easy_cleanup(k->easy);
	pthread_cond_destroy(&k->work);
	pthread_cond_destroy(&k->done);
	pthread_mutex_destroy(&k->mu);
	OPENSSL_cleanse(k->arena, k->arena_size);
	munlock(k->arena, k->arena_size);
	munmap(k->arena, k->arena_size);
	free(k);
}

void keyring_thread_register(void)
{
	rcu_register_thread();
}

void keyring_thread_unregister(void)
{
	rcu_unregister_thread();
}

/* A plain key's remembered failure (under mu). Returns r. */
static int fail(struct entry *e, int r, uint64_t until, const char *why)
{
	e->err = r;
	e->until = until;
	snprintf(e->why, sizeof(e->why), "%s", why);
	__atomic_store_n(&e->state, E_FAILED, __ATOMIC_RELEASE);
	return r;
}

/*
 * Read e's key from its file (under mu): a plain key is E_READY at once; a
 * wrapped one becomes E_PENDING for the refresher (-EINPROGRESS). Returns
 * 0, -EINPROGRESS or -errno with why.
 */
static int load(struct keyring *k, struct entry *e, uint64_t now, char *why, size_t whylen)
{
	char path[4096 + 2 * ENVELOPE_TENANT_MAX], buf[128];
	unsigned char blob[AWS_KMS_BLOB_MAX], *slot;
	struct stat st;
	ssize_t n;
	int64_t len;

	snprintf(path, sizeof(path), "%s/%s", k->dir, e->tenant);
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "unknown tenant '%s'", e->tenant);
		return fail(e, -ENOENT, now + NEGATIVE_NS, why);
	}
	snprintf(path, sizeof(path), "%s/%s/%u.key", k->dir, e->tenant, e->version);
	n = read_secret(path, buf, sizeof(buf), why, whylen);
	if (n == -ENOENT) {
		len = wrapped_read(k, e->tenant, e->version, blob, why, whylen);
		if (len < 0)
			return fail(e, (int)len, now + NEGATIVE_NS, why);
		/* Checked here so that its errors are precise; the refresher reads it again. */
		e->wrapped = 1;
		e->due = now;
		e->waited_out = 0;
		k->n_wrapped++;
		__atomic_store_n(&e->state, E_PENDING, __ATOMIC_RELEASE);
		pthread_cond_signal(&k->work);
		return -EINPROGRESS;
	}
	if (n < 0)
		return fail(e, (int)n, now + NEGATIVE_NS, why);
	slot = slot_get(k);
	if (!slot) {
		OPENSSL_cleanse(buf, sizeof(buf));
		snprintf(why, whylen, "too many keys in memory");
		return fail(e, -ENOMEM, now + NEGATIVE_NS, why);
	}
	len = envelope_b64_decode(buf, (size_t)n, slot, ENVELOPE_KEY_LEN + 2);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (len != ENVELOPE_KEY_LEN) {
		slot_put(k, slot); /* never published: no grace period needed */
		snprintf(why, whylen, "key file %s is not the base64 of %d bytes", path,
			 ENVELOPE_KEY_LEN);
		return fail(e, -EINVAL, now + NEGATIVE_NS, why);
	}
	rcu_assign_pointer(e->key, slot);
	__atomic_store_n(&e->state, E_READY, __ATOMIC_RELEASE);
	return 0;
}

/* A lookup that found no ready key: read it, or wait (bounded) for its first unwrap. */
static int lookup_slow(struct keyring *k, const char *tenant, uint32_t version, uint32_t b,
		       const unsigned char **ret, char *why, size_t whylen)
{
	uint64_t now = now_ns(), gen;
	struct timespec ts;
	struct entry *e;
	int r = 0;

	if (!tenant_valid(tenant)) {
		snprintf(why, whylen, "invalid tenant id (want 1-127 of A-Z a-z 0-9 _ . -)");
		return -EINVAL;
	}
	pthread_mutex_lock(&k->mu);
	e = find(k, b, tenant, version);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			pthread_mutex_unlock(&k->mu);
			snprintf(why, whylen, "out of memory");
			return -ENOMEM;
		}
		snprintf(e->tenant, sizeof(e->tenant), "%s", tenant);
		e->version = version;
		e->state = E_FAILED; /* until = 0: read it now */
		e->next = k->bucket[b];
		rcu_assign_pointer(k->bucket[b], e);
	}
	if (e->state == E_READY)
		goto found;
	if (e->state == E_FAILED) {
		/* A wrapped key that failed is retried by the refresher, a plain one by us. */
		if (e->wrapped || now < e->until) {
			snprintf(why, whylen, "%s", e->why);
			r = e->err;
			goto out;
		}
		r = load(k, e, now, why, whylen);
		if (r == 0)
			goto found;
		if (r != -EINPROGRESS)
			goto out;
		r = 0;
	}
	/* E_PENDING: its first unwrap is the refresher's; wait for it, a bounded time. */
	if (e->waited_out || k->kms_stuck) {
		snprintf(why, whylen,
			 "KMS has not yet unwrapped the data key of tenant '%s' version %u "
			 "(still asking)",
			 tenant, version);
		r = -EAGAIN;
		goto out;
	}
	count(&k->st.first_use_waits);
	gen = k->gen;
	deadline_of(now_ns() + k->wait_ns, &ts);
	while (k->gen == gen && e->state == E_PENDING)
		if (pthread_cond_timedwait(&k->done, &k->mu, &ts) == ETIMEDOUT)
			break;
	if (k->gen != gen) {
		snprintf(why, whylen,
			 "the key ring was flushed while tenant '%s' key %u was unwrapped", tenant,
			 version);
		r = -EAGAIN;
		goto out;
	}
	if (e->state == E_READY)
		goto found;
	if (e->state == E_FAILED) {
		snprintf(why, whylen, "%s", e->why);
		r = e->err;
		goto out;
	}
	/* KMS is slow or hanging: this tenant's records fail fast until it answers. */
	e->waited_out = 1;
	k->kms_stuck = 1;
	count(&k->st.wait_timeouts);
	snprintf(why, whylen,
		 "KMS has not unwrapped the data key of tenant '%s' version %u within %llu ms "
		 "(still asking)",
		 tenant, version, (unsigned long long)(k->wait_ns / 1000000));
	r = -EAGAIN;
	goto out;
found:
	/* Under mu the key can be neither replaced nor dropped: enter the read section. */
	rcu_read_lock();
	*ret = rcu_dereference(e->key);
out:
	pthread_mutex_unlock(&k->mu);
	return r;
}

int keyring_lookup(struct keyring *k, const char *tenant, uint32_t version,
		   const unsigned char **ret, char *why, size_t whylen)
{
	uint32_t b;
	struct entry *e;

	if (!URCU_TLS(urcu_memb_reader).registered) {
		snprintf(why, whylen, "keyring: thread not registered (keyring_thread_register)");
		return -EINVAL;
	}
	/* The record path: no lock, no clock, no KMS. An invalid tenant never has an entry. */
	b = hash(tenant, version);
	rcu_read_lock();
	e = find(k, b, tenant, version);
	if (e && __atomic_load_n(&e->state, __ATOMIC_ACQUIRE) == E_READY) {
		*ret = rcu_dereference(e->key);
		return 0;
	}
	rcu_read_unlock();
	return lookup_slow(k, tenant, version, b, ret, why, whylen);
}

void keyring_release(struct keyring *k)
{
	(void)k;
	rcu_read_unlock();
}

void keyring_stats(struct keyring *k, struct keyring_stats *ret)
{
	ret->kms_calls = __atomic_load_n(&k->st.kms_calls, __ATOMIC_RELAXED);
	ret->refreshed = __atomic_load_n(&k->st.refreshed, __ATOMIC_RELAXED);
	ret->refresh_failures = __atomic_load_n(&k->st.refresh_failures, __ATOMIC_RELAXED);
	ret->first_use_waits = __atomic_load_n(&k->st.first_use_waits, __ATOMIC_RELAXED);
	ret->wait_timeouts = __atomic_load_n(&k->st.wait_timeouts, __ATOMIC_RELAXED);
}
