/* SPDX-License-Identifier: MIT */
/* Unit tests of common/envelope and the decrypt stage's keyring. */
#include <errno.h>
#include <setjmp.h>
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

#include "common/envelope.h"
#include "workers/decrypt/keyring.h"

static const unsigned char KEY[ENVELOPE_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char OTHER[ENVELOPE_KEY_LEN] = "fedcba9876543210fedcba9876543210";

static int setup(void **state)
{
	(void)state;
	alarm(30);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	alarm(0);
	return 0;
}

/* Parse s and expect the failure why contains needle. */
static void parse_fails(const char *s, const char *needle)
{
	struct envelope e;
	char why[256] = "";

	assert_int_equal(envelope_parse(s, strlen(s), &e, why, sizeof(why)), -EBADMSG);
	if (!strstr(why, needle))
		fail_msg("'%s': reason '%s' lacks '%s'", s, why, needle);
	assert_null(e.ct);
}

static void test_roundtrip(void **state)
{
	const char *plain = "{\"eventType\":\"message.sent\",\"text\":\"hello\"}";
	unsigned char out[256];
	struct envelope e;
	char *env = NULL, why[128];
	int64_t n;

	(void)state;
	for (int with_aad = 0; with_aad < 2; with_aad++) {
		assert_int_equal(envelope_seal("acme", 7, KEY, plain, strlen(plain),
					       with_aad ? "tenant:acme" : NULL, with_aad ? 11 : 0,
					       &env),
				 0);
		assert_int_equal(envelope_parse(env, strlen(env), &e, why, sizeof(why)), 0);
		assert_string_equal(e.tenant, "acme");
		assert_int_equal(e.key_version, 7);
		assert_int_equal(e.ct_len, strlen(plain) + ENVELOPE_TAG_LEN);
		assert_int_equal(e.aad_len, with_aad ? 11 : 0);
		n = envelope_decrypt(&e, KEY, out, sizeof(out), why, sizeof(why));
		assert_int_equal(n, strlen(plain));
		assert_memory_equal(out, plain, n);
		/* The wrong key: a tag mismatch, and nothing left in out. */
		n = envelope_decrypt(&e, OTHER, out, sizeof(out), why, sizeof(why));
		assert_int_equal(n, -EBADMSG);
		assert_non_null(strstr(why, "tag mismatch"));
		for (size_t i = 0; i < strlen(plain); i++)
			assert_int_equal(out[i], 0);
		envelope_free(&e);
		envelope_free(&e); /* safe twice */
		free(env);
	}
}

static void test_tampered(void **state)
{
	unsigned char out[64];
	struct envelope e;
	char *env = NULL, why[128];

	(void)state;
	assert_int_equal(envelope_seal("acme", 1, KEY, "secret", 6, "tenant:acme", 11, &env), 0);
	assert_int_equal(envelope_parse(env, strlen(env), &e, why, sizeof(why)), 0);
	e.ct[0] ^= 1;
	assert_int_equal(envelope_decrypt(&e, KEY, out, sizeof(out), why, sizeof(why)), -EBADMSG);
	e.ct[0] ^= 1;
	e.aad[0] ^= 1; /* the AAD is authenticated too */
	assert_int_equal(envelope_decrypt(&e, KEY, out, sizeof(out), why, sizeof(why)), -EBADMSG);
	e.aad[0] ^= 1;
	assert_int_equal(envelope_decrypt(&e, KEY, out, sizeof(out), why, sizeof(why)), 6);
	envelope_free(&e);
	free(env);
}

static void test_parse_errors(void **state)
{
	(void)state;
	parse_fails("not json", "not a JSON object");
	parse_fails("[1,2]", "not a JSON object");
	parse_fails("{\"key\":1}", "not a version 1 envelope");
	parse_fails("{\"v\":2,\"key\":1}", "not a version 1 envelope");
	parse_fails("{\"v\":1,\"key\":\"x\"}", "\"key\" (the key version) is not a whole number");
	parse_fails("{\"v\":1,\"key\":1.5}", "not a whole number");
	parse_fails("{\"v\":1,\"tenant\":3,\"key\":1}", "\"tenant\" is not a string");
	parse_fails("{\"v\":1,\"key\":1}", "missing \"iv\"");
	parse_fails("{\"v\":1,\"key\":1,\"iv\":\"@@@@\"}", "bad base64 in \"iv\"");
	parse_fails("{\"v\":1,\"key\":1,\"iv\":\"AAAAAAAA\"}", "wrong IV length 6 (want 12)");
	parse_fails("{\"v\":1,\"key\":1,\"iv\":\"AAAAAAAAAAAAAAAA\"}", "missing \"ct\"");
	parse_fails("{\"v\":1,\"key\":1,\"iv\":\"AAAAAAAAAAAAAAAA\",\"ct\":\"AAA\"}",
		    "bad base64 in \"ct\"");
	parse_fails("{\"v\":1,\"key\":1,\"iv\":\"AAAAAAAAAAAAAAAA\",\"ct\":\"AAAAAAAA\"}",
		    "truncated ciphertext (6 bytes, less than the 16-byte tag)");
	parse_fails("{\"v\":1,\"key\":1,\"iv\":\"AAAAAAAAAAAAAAAA\",\"ct\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAA\",\"aad\":\"!\"}",
		    "bad base64 in \"aad\"");
}

/* The fast path and the full parser agree on every way of writing an envelope. */
static void test_forms(void **state)
{
	static const char *forms[] = {
		/* the producers' own form (fast path) */
		"{\"v\":1,\"tenant\":\"acme\",\"key\":2,\"iv\":\"%s\",\"ct\":\"%s\"}",
		/* other order, white space */
		" {\n \"ct\" : \"%2$s\" , \"iv\":\"%1$s\", \"key\": 2, \"tenant\":\"acme\", "
		"\"v\":1 }\n",
		/* an unknown key, a number written as 1.0, an escaped tenant: the full parser */
		"{\"v\":1,\"x\":[1],\"tenant\":\"acme\",\"key\":2,\"iv\":\"%s\",\"ct\":\"%s\"}",
		"{\"v\":1.0,\"tenant\":\"acme\",\"key\":2,\"iv\":\"%s\",\"ct\":\"%s\"}",
		"{\"v\":1,\"tenant\":\"ac\\u006de\",\"key\":2,\"iv\":\"%s\",\"ct\":\"%s\"}",
	};
	char *env = NULL, iv[64], ct[256], text[512], why[128];
	unsigned char out[64];
	cJSON *j;

	(void)state;
	assert_int_equal(envelope_seal("acme", 2, KEY, "hello", 5, NULL, 0, &env), 0);
	j = cJSON_Parse(env);
	snprintf(iv, sizeof(iv), "%s", cJSON_GetObjectItem(j, "iv")->valuestring);
	snprintf(ct, sizeof(ct), "%s", cJSON_GetObjectItem(j, "ct")->valuestring);
	cJSON_Delete(j);
	free(env);
	for (unsigned i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		struct envelope e;

		snprintf(text, sizeof(text), forms[i], iv, ct);
		if (envelope_parse(text, strlen(text), &e, why, sizeof(why)) != 0)
			fail_msg("form %u: %s: %s", i, text, why);
		assert_string_equal(e.tenant, "acme");
		assert_int_equal(e.key_version, 2);
		assert_int_equal(envelope_decrypt(&e, KEY, out, sizeof(out), why, sizeof(why)), 5);
		assert_memory_equal(out, "hello", 5);
		envelope_free(&e);
	}
	/* Trailing garbage is not an envelope, on either path. */
	snprintf(text, sizeof(text), forms[0], iv, ct);
	strcat(text, "x");
	parse_fails(text, "not a JSON object");
}

static void test_base64(void **state)
{
	unsigned char out[16];

	(void)state;
	assert_int_equal(envelope_b64_decode("", 0, out, sizeof(out)), 0);
	assert_int_equal(envelope_b64_decode("Zg==", 4, out, sizeof(out)), 1);
	assert_int_equal(out[0], 'f');
	assert_int_equal(envelope_b64_decode("Zm8=", 4, out, sizeof(out)), 2);
	assert_int_equal(envelope_b64_decode("Zm9v", 4, out, sizeof(out)), 3);
	assert_int_equal(envelope_b64_decode("Zm9", 3, out, sizeof(out)), -EINVAL);
	assert_int_equal(envelope_b64_decode("Z=9v", 4, out, sizeof(out)), -EINVAL);
	assert_int_equal(envelope_b64_decode("AAAAAAAAAAAAAAAAAAAAAAAA", 24, out, 16), -EINVAL);
}

/* A key ring in a temporary directory. */
static char ring[64];

static void write_key(const char *tenant, unsigned version, const char *content, mode_t mode)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", ring, tenant);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/%s/%u.key", ring, tenant, version);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void lookup_fails(struct keyring *k, const char *tenant, unsigned v, int code,
			 const char *needle)
{
	const unsigned char *key = NULL;
	char why[256] = "";

	assert_int_equal(keyring_lookup(k, tenant, v, &key, why, sizeof(why)), code);
	if (!strstr(why, needle))
		fail_msg("%s/%u: reason '%s' lacks '%s'", tenant, v, why, needle);
	/* The reason never carries key material. */
	assert_null(strstr(why, "MDEyMzQ1"));
}

static void test_keyring(void **state)
{
	/* base64 of KEY and OTHER */
	const char *k1 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n";
	const char *k2 = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
	const unsigned char *key;
	char why[256], cmd[128];
	struct keyring *k;

	(void)state;
	snprintf(ring, sizeof(ring), "/tmp/ferry-test-keyring.XXXXXX");
	assert_non_null(mkdtemp(ring));
	write_key("acme", 1, k1, 0600);
	write_key("acme", 2, k2, 0400); /* rotation: two versions live at once */
	write_key("loose", 1, k1, 0644);
	write_key("short", 1, "MDEy\n", 0600);
	/* An unregistered thread is refused, not silently left outside RCU. */
	k = keyring_new(ring, NULL, 0);
	assert_non_null(k);
	lookup_fails(k, "acme", 1, -EINVAL, "not registered");
	keyring_thread_register();
	assert_int_equal(keyring_lookup(k, "acme", 1, &key, why, sizeof(why)), 0);
	assert_memory_equal(key, KEY, ENVELOPE_KEY_LEN);
	keyring_release(k);
	assert_int_equal(keyring_lookup(k, "acme", 2, &key, why, sizeof(why)), 0);
	assert_memory_equal(key, OTHER, ENVELOPE_KEY_LEN);
	keyring_release(k);
	lookup_fails(k, "nobody", 1, -ENOENT, "unknown tenant 'nobody'");
	lookup_fails(k, "acme", 3, -ENOENT, "unknown key version 3 of tenant 'acme'");
	lookup_fails(k, "loose", 1, -EACCES, "mode 0644): refused");
	lookup_fails(k, "short", 1, -EINVAL, "not the base64 of 32 bytes");
	lookup_fails(k, "../etc", 1, -EINVAL, "invalid tenant id");
	/* A wrapped key without KMS configured. */
	{
		char path[256];
		FILE *f;

		snprintf(path, sizeof(path), "%s/acme/5.wrapped", ring);
		f = fopen(path, "w");
		assert_non_null(f);
		fputs("AAAA\n", f);
		fclose(f);
		chmod(path, 0600);
		lookup_fails(k, "acme", 5, -EACCES, "is KMS-wrapped, and no [decrypt] kms_region");
	}
	lookup_fails(k, "", 1, -EINVAL, "invalid tenant id");
	/* A key that appears is found once the ring is flushed (SIGHUP). */
	lookup_fails(k, "acme", 3, -ENOENT, "unknown key version 3");
	write_key("acme", 3, k2, 0600);
	lookup_fails(k, "acme", 3, -ENOENT, "unknown key version 3"); /* remembered a while */
	keyring_flush(k);
	assert_int_equal(keyring_lookup(k, "acme", 3, &key, why, sizeof(why)), 0);
	assert_memory_equal(key, OTHER, ENVELOPE_KEY_LEN);
	keyring_release(k);
	keyring_free(k);
	keyring_free(NULL);
	keyring_thread_unregister();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ring);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_base64, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyring, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
