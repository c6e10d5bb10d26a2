/* SPDX-License-Identifier: MIT */
/*
 * Process test of the decrypt stage's key cache against a real moto_server
 * KMS (started here on a free loopback port, stopped in teardown):
 *   - a wrapped key is unwrapped again in the background before its TTL,
 *     and the lookups in between make no KMS call;
 *   - while KMS hangs (moto SIGSTOPped), lookups of a cached key stay fast
 *     and keep the key, the failed refresh is counted and retried, and the
 *     first use of another key waits a bounded time, then fails fast until
 *     KMS answers again;
 *   - a refresh that KMS refuses keeps the key in hand;
 *   - reader threads look keys up while the refresher replaces them and
 *     another thread flushes, checking every key they hold stays intact
 *     (run it in the sanitizer build);
 *   - keyring_free() does not wait out a hanging KMS call.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/aws.h"
#include "common/time.h"
#include "tests/proc/moto.h"
#include "workers/decrypt/keyring.h"

#define MS	 1000000ull
#define TENANTS	 4
#define DEADLINE (20000 * MS)

struct env {
	struct moto *moto;
	struct aws_client *cl;	/* the test's own client (CreateKey, Encrypt) */
	struct aws_client *kms; /* the keyring's */
	char ring[64];
	char *key_id;
	unsigned char plain[TENANTS][ENVELOPE_KEY_LEN];
	char blob[TENANTS][1024];
};

static struct aws_client *client(const struct moto *m)
{
	struct aws_creds c = {.access_key = "test", .secret_key = "test"};
	struct aws_client *cl = aws_client_new("us-east-1", m->endpoint, &c);

	assert_non_null(cl);
	return cl;
}

static void write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
}

/* Tenant t<i> gets a random data key, stored only KMS-wrapped as t<i>/1.wrapped. */
static void wrap_keys(struct env *E)
{
	char path[256], body[512], plain64[64], *blob;

	for (unsigned t = 0; t < TENANTS; t++) {
		assert_int_equal(RAND_bytes(E->plain[t], ENVELOPE_KEY_LEN), 1);
		EVP_EncodeBlock((unsigned char *)plain64, E->plain[t], ENVELOPE_KEY_LEN);
		snprintf(body, sizeof(body), "{\"KeyId\":\"%s\",\"Plaintext\":\"%s\"}", E->key_id,
			 plain64);
		blob = moto_kms(E->cl, "TrentService.Encrypt", body, "CiphertextBlob", NULL);
		snprintf(E->blob[t], sizeof(E->blob[t]), "%s", blob);
		snprintf(path, sizeof(path), "%s/t%u", E->ring, t);
		assert_int_equal(mkdir(path, 0700), 0);
		snprintf(path, sizeof(path), "%s/t%u/1.wrapped", E->ring, t);
		write_file(path, blob);
		free(blob);
	}
	OPENSSL_cleanse(plain64, sizeof(plain64));
}

static int setup(void **state)
{
	struct env *E = calloc(1, sizeof(*E));

	alarm(180); /* a hang fails the test instead of blocking it */
	assert_non_null(E);
	*state = E;
	E->moto = moto_start((void **)&E->moto, NULL);
	E->cl = client(E->moto);
	E->kms = client(E->moto);
	E->key_id = moto_kms(E->cl, "TrentService.CreateKey", "{\"Description\":\"keyring\"}",
			     "KeyMetadata", "KeyId");
	snprintf(E->ring, sizeof(E->ring), "/tmp/ferry-test-keyring.XXXXXX");
	assert_non_null(mkdtemp(E->ring));
	wrap_keys(E);
	keyring_thread_register();
	return 0;
}

static int teardown(void **state)
{
	struct env *E = *state;
	char cmd[128];

	keyring_thread_unregister();
	if (E->moto)
		kill(-E->moto->pid, SIGCONT); /* a stopped moto cannot take SIGTERM */
	moto_stop(E->moto);
	aws_client_free(E->cl);
	aws_client_free(E->kms);
	free(E->key_id);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", E->ring);
	if (E->ring[0] && system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", E->ring);
	OPENSSL_cleanse(E->plain, sizeof(E->plain));
	free(E);
	alarm(0);
	return 0;
}

static struct keyring_stats stats(struct keyring *k)
{
	struct keyring_stats s;

	keyring_stats(k, &s);
	return s;
}

/* Look up t<t>/1 and check it is the tenant's data key. */
static int lookup_ok(struct env *E, struct keyring *k, unsigned t)
{
	const unsigned char *key;
	char tenant[16], why[256] = "";
	int r;

	snprintf(tenant, sizeof(tenant), "t%u", t);
	r = keyring_lookup(k, tenant, 1, &key, why, sizeof(why));
	if (r == 0) {
		int same = !memcmp(key, E->plain[t], ENVELOPE_KEY_LEN);

		keyring_release(k);
		if (!same)
			fail_msg("t%u: the key looked up is not the tenant's", t);
	}
	return r;
}

static void moto_pause(struct env *E, int stop)
{
	assert_int_equal(kill(-E->moto->pid, stop ? SIGSTOP : SIGCONT), 0);
}

/*
 * First use waits for KMS; then the key is unwrapped again in the
 * background at 80 % of its TTL, before the TTL, while a million lookups
 * in between make no KMS call.
 */
static void test_refresh_before_ttl(void **state)
{
	struct env *E = *state;
	const uint64_t ttl = 3000 * MS;
	struct keyring *k = keyring_new(E->ring, E->kms, ttl);
	uint64_t t0, t1, lookups = 0;
	struct keyring_stats s;

	assert_non_null(k);
	assert_int_equal(lookup_ok(E, k, 0), 0);
	t0 = now_ns();
	s = stats(k);
	assert_int_equal(s.kms_calls, 1);
	assert_int_equal(s.first_use_waits, 1);
	/* Lookups of the cached key: no KMS call until the refresh is due. */
	while (now_ns() - t0 < ttl / 2) {
		for (int i = 0; i < 1000; i++, lookups++)
			assert_int_equal(lookup_ok(E, k, 0), 0);
	}
	assert_int_equal(stats(k).kms_calls, 1);
	/* The refresh comes by itself, before the TTL. */
	while (stats(k).refreshed < 1 && now_ns() - t0 < DEADLINE)
		for (int i = 0; i < 1000; i++, lookups++)
			assert_int_equal(lookup_ok(E, k, 0), 0);
	t1 = now_ns();
	s = stats(k);
	assert_int_equal(s.refreshed, 1);
	assert_int_equal(s.kms_calls, 2);
	assert_int_equal(s.first_use_waits, 1);
	if (t1 - t0 >= ttl)
		fail_msg("refreshed %llu ms after the first unwrap, TTL %llu ms",
			 (unsigned long long)((t1 - t0) / MS), (unsigned long long)(ttl / MS));
	assert_true(t1 - t0 >= ttl / 5 * 4 - 50 * MS);
	printf("# refreshed %llu ms after first use (TTL %llu ms); %llu lookups, %llu KMS "
	       "calls\n",
	       (unsigned long long)((t1 - t0) / MS), (unsigned long long)(ttl / MS),
	       (unsigned long long)lookups, (unsigned long long)s.kms_calls);
	keyring_free(k);
}

/*
 * KMS hangs: a cached key keeps serving at lookup speed, the refresh fails
 * (counted) and is retried until KMS is back; a new key's first use waits
 * a bounded time, then fails fast; both recover once KMS answers.
 */
static void test_kms_hangs(void **state)
{
	struct env *E = *state;
	const uint64_t ttl = 1000 * MS;
	struct keyring *k = keyring_new(E->ring, E->kms, ttl);
	const unsigned char *key;
	uint64_t t0, worst = 0, n = 0;
	char why[256] = "";
	int r;

	assert_non_null(k);
	keyring_set_waits(k, 1000 * MS, 1500 * MS);
	assert_int_equal(lookup_ok(E, k, 0), 0);
	moto_pause(E, 1);
	t0 = now_ns();
	/* Past the TTL, twice over: the key in hand is used, never waited for. */
	while (now_ns() - t0 < 2 * ttl || stats(k).refresh_failures < 1) {
		uint64_t a = now_ns();

		assert_int_equal(lookup_ok(E, k, 0), 0);
		if (now_ns() - a > worst)
			worst = now_ns() - a;
		n++;
		assert_true(now_ns() - t0 < DEADLINE);
	}
	/* Well below the 1.5 s a KMS call hangs: no lookup waited on it (scheduling aside). */
	if (worst > 750 * MS)
		fail_msg("a cached lookup took %llu ms while KMS hung",
			 (unsigned long long)(worst / MS));
	/* First use of another key: a bounded wait, then no more waiting. */
	t0 = now_ns();
	r = keyring_lookup(k, "t1", 1, &key, why, sizeof(why));
	assert_int_equal(r, -EAGAIN);
	assert_non_null(strstr(why, "KMS has not unwrapped the data key of tenant 't1' version 1 "
				    "within 1000 ms"));
	assert_true(now_ns() - t0 >= 900 * MS && now_ns() - t0 < 5000 * MS);
	t0 = now_ns();
	r = keyring_lookup(k, "t1", 1, &key, why, sizeof(why));
	assert_true(r == -EAGAIN || r == -EIO);
	assert_true(now_ns() - t0 < 200 * MS);
	assert_true(stats(k).wait_timeouts == 1);
	/* KMS is back: both keys recover by themselves. */
	moto_pause(E, 0);
	t0 = now_ns();
	while ((r = lookup_ok(E, k, 1)) != 0 && now_ns() - t0 < DEADLINE)
		usleep(10000);
	assert_int_equal(r, 0);
	{
		uint64_t before = stats(k).refreshed;

		while (stats(k).refreshed == before && now_ns() - t0 < DEADLINE)
			usleep(10000);
		assert_true(stats(k).refreshed > before);
	}
	assert_int_equal(lookup_ok(E, k, 0), 0);
	printf("# KMS hung: %llu lookups of the cached key, the slowest %.3f ms; %llu failed "
	       "refreshes retried\n",
	       (unsigned long long)n, (double)worst / 1e6,
	       (unsigned long long)stats(k).refresh_failures);
	keyring_free(k);
}

/* A refresh that KMS refuses (the wrapped file is now garbage): the key in hand stays. */
static void test_refused_refresh_keeps_key(void **state)
{
	struct env *E = *state;
	struct keyring *k = keyring_new(E->ring, E->kms, 1000 * MS);
	char path[256], bad[1024];
	uint64_t t0;

	assert_non_null(k);
	assert_int_equal(lookup_ok(E, k, 2), 0);
	snprintf(bad, sizeof(bad), "%s", E->blob[2]);
	bad[10] = bad[10] == 'A' ? 'B' : 'A';
	snprintf(path, sizeof(path), "%s/t2/1.wrapped", E->ring);
	write_file(path, bad);
	t0 = now_ns();
	while (stats(k).refresh_failures < 2 && now_ns() - t0 < DEADLINE)
		assert_int_equal(lookup_ok(E, k, 2), 0);
	assert_true(stats(k).refresh_failures >= 2); /* retried */
	assert_int_equal(stats(k).refreshed, 0);
	assert_int_equal(lookup_ok(E, k, 2), 0);
	/* After a flush (SIGHUP) the refusal is what a lookup gets. */
	keyring_flush(k);
	{
		const unsigned char *key;
		char why[256] = "";

		assert_true(keyring_lookup(k, "t2", 1, &key, why, sizeof(why)) < 0);
		assert_non_null(
			strstr(why, "KMS refused the data key of tenant 't2' version 1: kms: "));
	}
	keyring_free(k);
}

struct reader {
	struct env *E;
	struct keyring *k;
	volatile int *stop;
	uint64_t ok, again;
	char bad[300]; /* cmocka is not thread-safe: the main thread fails with this */
};

/* Look keys up, and check each key is still intact when done with it. */
static void *reader_run(void *arg)
{
	struct reader *rd = arg;
	char plain_key[16], why[256];
	unsigned t = 0;

	keyring_thread_register();
	while (!__atomic_load_n(rd->stop, __ATOMIC_RELAXED)) {
		const unsigned char *key;
		char tenant[16];
		int r;

		t = (t + 1) % (TENANTS + 1);
		snprintf(tenant, sizeof(tenant), t == TENANTS ? "plain" : "t%u", t);
		r = keyring_lookup(rd->k, tenant, 1, &key, why, sizeof(why));
		if (r == -EAGAIN || r == -EIO) {
			rd->again++;
			continue;
		}
		if (r) {
			snprintf(rd->bad, sizeof(rd->bad), "lookup %s: %d %s", tenant, r, why);
			break;
		}
		memcpy(plain_key, key, 16);
		for (volatile int spin = 0; spin < 200; spin++)
			;
		/* Still the tenant's key: not wiped or reused while held. */
		if (t == TENANTS ? memcmp(key, "0123456789abcdef0123456789abcdef", 32)
				 : memcmp(key, rd->E->plain[t], ENVELOPE_KEY_LEN)) {
			snprintf(rd->bad, sizeof(rd->bad), "%s: the key changed while held",
				 tenant);
			keyring_release(rd->k);
			break;
		}
		keyring_release(rd->k);
		rd->ok++;
	}
	OPENSSL_cleanse(plain_key, sizeof(plain_key));
	keyring_thread_unregister();
	return NULL;
}

/* Readers on 3 threads while the refresher replaces keys every 0.4 s and the main thread
 * flushes. */
static void test_concurrent_refresh_and_flush(void **state)
{
	struct env *E = *state;
	struct keyring *k = keyring_new(E->ring, E->kms, 500 * MS);
	struct reader rd[3];
	pthread_t th[3];
	volatile int stop = 0;
	unsigned flushes = 0;
	uint64_t t0 = now_ns(), ok = 0, again = 0;
	char path[256];

	assert_non_null(k);
	snprintf(path, sizeof(path), "%s/plain", E->ring);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/plain/1.key", E->ring);
	write_file(path, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n");
	for (int i = 0; i < 3; i++) {
		rd[i] = (struct reader){.E = E, .k = k, .stop = &stop};
		assert_int_equal(pthread_create(&th[i], NULL, reader_run, &rd[i]), 0);
	}
	while (now_ns() - t0 < 4000 * MS) {
		/* Short and long lives: flushes mid-unwrap, and keys old enough to refresh. */
		usleep(flushes % 2 ? 900000 : 100000);
		keyring_flush(k);
		flushes++;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		if (rd[i].bad[0])
			fail_msg("reader %d: %s", i, rd[i].bad);
		ok += rd[i].ok;
		again += rd[i].again;
	}
	printf("# %llu lookups held and checked (%llu while a key was being unwrapped), %u "
	       "flushes, %llu refreshes, %llu KMS calls\n",
	       (unsigned long long)ok, (unsigned long long)again, flushes,
	       (unsigned long long)stats(k).refreshed, (unsigned long long)stats(k).kms_calls);
	assert_true(ok > 1000);
	assert_true(stats(k).refreshed > 0);
	keyring_free(k);
}

/* Shutting down does not wait out a KMS call that hangs. */
static void test_free_while_kms_hangs(void **state)
{
	struct env *E = *state;
	struct keyring *k = keyring_new(E->ring, E->kms, 0);
	const unsigned char *key;
	char why[256];
	uint64_t t0;

	assert_non_null(k);
	keyring_set_waits(k, 200 * MS, 30000 * MS);
	moto_pause(E, 1);
	assert_int_equal(keyring_lookup(k, "t3", 1, &key, why, sizeof(why)), -EAGAIN);
	t0 = now_ns();
	keyring_free(k);
	if (now_ns() - t0 > 5000 * MS)
		fail_msg("keyring_free() took %llu ms", (unsigned long long)((now_ns() - t0) / MS));
	moto_pause(E, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refresh_before_ttl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kms_hangs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_refresh_keeps_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_refresh_and_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_while_kms_hangs, setup, teardown),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread */
	unsetenv("AWS_PROFILE");
	if (getenv("FERRY_TEST_FILTER"))
		cmocka_set_test_filter(getenv("FERRY_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
