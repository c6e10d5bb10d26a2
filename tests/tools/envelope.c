/* SPDX-License-Identifier: MIT */
/*
 * ferry-envelope: make what legacy producers make, for tests and the demo.
 *
 *   ferry-envelope keygen KEYRING TENANT VERSION
 *       a random key in KEYRING/TENANT/VERSION.key (mode 0600, directories 0700)
 *   ferry-envelope seal KEYRING TENANT VERSION [AAD] < plaintext
 *       the envelope of stdin on stdout
 *   ferry-envelope replay KEYRING COUNT TENANTS > replay.jsonl
 *       a replay file of COUNT legacy events for TENANTS tenants (t00, t01, ...), each
 *       sealed with its tenant's key version 1 (made when missing)
 *
 * Exit codes: 0 ok, 100 usage, 111 system error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/envelope.h"

#define EXIT_USAGE  100
#define EXIT_SYSTEM 111

static int usage(void)
{
	fprintf(stderr, "usage: ferry-envelope keygen KEYRING TENANT VERSION\n"
			"       ferry-envelope seal KEYRING TENANT VERSION [AAD] < plaintext\n"
			"       ferry-envelope replay KEYRING COUNT TENANTS > replay.jsonl\n");
	return EXIT_USAGE;
}

static int key_path(char *buf, size_t len, const char *ring, const char *tenant, unsigned v)
{
	return (size_t)snprintf(buf, len, "%s/%s/%u.key", ring, tenant, v) < len ? 0 : -1;
}

/* Read a key, or make one when make is set and there is none. */
static int key_get(const char *ring, const char *tenant, unsigned v, int make,
		   unsigned char key[ENVELOPE_KEY_LEN])
{
	char path[4096], b64[64] = "";
	FILE *f;

	if (key_path(path, sizeof(path), ring, tenant, v) < 0)
		return -1;
	f = fopen(path, "r");
	if (f) {
		int ok = fgets(b64, sizeof(b64), f) != NULL;

		fclose(f);
		b64[strcspn(b64, "\n")] = 0;
		if (!ok || envelope_b64_decode(b64, strlen(b64), key, ENVELOPE_KEY_LEN + 2) !=
				   ENVELOPE_KEY_LEN) {
			fprintf(stderr, "ferry-envelope: %s: not a key\n", path);
			return -1;
		}
		OPENSSL_cleanse(b64, sizeof(b64));
		return 0;
	}
	if (!make) {
		fprintf(stderr, "ferry-envelope: %s: %s\n", path, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s", ring);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/%s", ring, tenant);
	mkdir(path, 0700);
	key_path(path, sizeof(path), ring, tenant, v);
	if (RAND_bytes(key, ENVELOPE_KEY_LEN) != 1)
		return -1;
	EVP_EncodeBlock((unsigned char *)b64, key, ENVELOPE_KEY_LEN);
	{
		mode_t old = umask(077);

		f = fopen(path, "w");
		umask(old);
	}
	if (!f || fprintf(f, "%s\n", b64) < 0 || fclose(f) != 0) {
		fprintf(stderr, "ferry-envelope: %s: %s\n", path, strerror(errno));
		return -1;
	}
	OPENSSL_cleanse(b64, sizeof(b64));
	return 0;
}

static int cmd_seal(int argc, char **argv)
{
	unsigned char key[ENVELOPE_KEY_LEN + 2];
	char buf[1 << 20], *env = NULL;
	size_t n = fread(buf, 1, sizeof(buf), stdin);
	const char *aad = argc > 5 ? argv[5] : NULL;

	if (key_get(argv[2], argv[3], (unsigned)atoi(argv[4]), 0, key) < 0 ||
	    envelope_seal(argv[3], (uint32_t)atoi(argv[4]), key, buf, n, aad, aad ? strlen(aad) : 0,
			  &env) < 0)
		return EXIT_SYSTEM;
	OPENSSL_cleanse(key, sizeof(key));
	puts(env);
	free(env);
	return 0;
}

static int cmd_replay(char **argv)
{
	static const char *types[] = {"message.sent", "room.created", "user.joined_room",
				      "member.promoted", "connection.requested"};
	unsigned count = (unsigned)atoi(argv[3]), tenants = (unsigned)atoi(argv[4]);
	unsigned char key[ENVELOPE_KEY_LEN + 2];

	if (!tenants)
		return usage();
	for (unsigned i = 0; i < count; i++) {
		char tenant[16], plain[256], *env = NULL, *line;
		cJSON *j = cJSON_CreateObject(), *a;

		snprintf(tenant, sizeof(tenant), "t%02u", i % tenants);
		snprintf(plain, sizeof(plain),
			 "{\"eventType\":\"%s\",\"tenantId\":\"%s\",\"seq\":%u,\"ts\":%llu}",
			 types[i % 5], tenant, i, 1700000000000ull + i);
		if (!j || key_get(argv[2], tenant, 1, 1, key) < 0 ||
		    envelope_seal(tenant, 1, key, plain, strlen(plain), NULL, 0, &env) < 0)
			return EXIT_SYSTEM;
		{
			char id[32];

			snprintf(id, sizeof(id), "m-%07u", i);
			cJSON_AddStringToObject(j, "id", id);
		}
		a = cJSON_AddObjectToObject(j, "attributes");
		cJSON_AddStringToObject(a, "tenant", tenant);
		cJSON_AddStringToObject(a, "type", types[i % 5]);
		cJSON_AddStringToObject(j, "body", env);
		line = cJSON_PrintUnformatted(j);
		if (!line)
			return EXIT_SYSTEM;
		puts(line);
		free(line);
		free(env);
		cJSON_Delete(j);
	}
	OPENSSL_cleanse(key, sizeof(key));
	return 0;
}

int main(int argc, char **argv)
{
	unsigned char key[ENVELOPE_KEY_LEN + 2];

	if (argc == 5 && !strcmp(argv[1], "keygen")) {
		int r = key_get(argv[2], argv[3], (unsigned)atoi(argv[4]), 1, key);

		OPENSSL_cleanse(key, sizeof(key));
		return r < 0 ? EXIT_SYSTEM : 0;
	}
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "seal"))
		return cmd_seal(argc, argv);
	if (argc == 5 && !strcmp(argv[1], "replay"))
		return cmd_replay(argv);
	return usage();
}
