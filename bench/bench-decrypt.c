/* SPDX-License-Identifier: MIT */
/*
 * bench-decrypt: what decrypt does per message, against raw AES-256-GCM.
 *
 * For 1 KiB legacy events sealed in envelopes: envelope_parse() (JSON +
 * base64), keyring_lookup() of the tenant's cached key and
 * envelope_decrypt() per message, as the decrypt stage runs them; the key
 * cache's read side alone (lookup + release); then AES-256-GCM alone on the
 * same bytes in this process; then `openssl speed -evp aes-256-gcm` for
 * 1 KiB blocks, all in the same run.
 * Not a test: it prints figures and exits 0 (1 on a setup error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/envelope.h"
#include "common/time.h"
#include "workers/decrypt/keyring.h"

#define N    4096
#define SIZE 1024

static double seconds(uint64_t t0)
{
	return (double)(now_ns() - t0) / 1e9;
}

int main(int argc, char **argv)
{
	static const unsigned char key[ENVELOPE_KEY_LEN] = "0123456789abcdef0123456789abcdef";
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	char plain[SIZE + 1], line[512], *env[N];
	unsigned char out[SIZE + 64];
	struct envelope e;
	char why[128];
	uint64_t n = 0, t0;
	double ferry, raw, ossl = 0;
	FILE *p;
	char dir[] = "/tmp/ferry-bench-keys.XXXXXX", path[128];
	struct keyring *k;
	const unsigned char *kp;
	double lookups;

	memset(plain, 'x', SIZE);
	memcpy(plain, "{\"eventType\":\"message.sent\",\"text\":\"", 37);
	plain[SIZE - 2] = '"';
	plain[SIZE - 1] = '}';
	plain[SIZE] = 0;
	for (int i = 0; i < N; i++)
		if (envelope_seal("acme", 1, key, plain, SIZE, "tenant:acme", 11, &env[i]) < 0)
			return 1;

	/* The tenant's key in a key ring, as the stage reads it (base64 of key). */
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/acme", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/acme/1.key", dir);
	p = fopen(path, "w");
	if (!p)
		return 1;
	fputs("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n", p);
	fclose(p);
	chmod(path, 0600);
	keyring_thread_register();
	k = keyring_new(dir, NULL, 0);
	if (!k)
		return 1;

	/* What the stage does per message. */
	t0 = now_ns();
	do {
		for (int i = 0; i < 256; i++, n++) {
			const char *s = env[n % N];
			int64_t got;

			if (envelope_parse(s, strlen(s), &e, why, sizeof(why)) < 0 ||
			    keyring_lookup(k, "acme", 1, &kp, why, sizeof(why)) < 0)
				return 1;
			got = envelope_decrypt(&e, kp, out, sizeof(out), why, sizeof(why));
			keyring_release(k);
			if (got != SIZE)
				return 1;
			envelope_free(&e);
		}
	} while (seconds(t0) < secs);
	ferry = (double)n / seconds(t0);

	/* The key cache's read side alone. */
	n = 0;
	t0 = now_ns();
	do {
		for (int i = 0; i < 1024; i++, n++) {
			if (keyring_lookup(k, "acme", 1, &kp, why, sizeof(why)) < 0)
				return 1;
			keyring_release(k);
		}
	} while (seconds(t0) < secs / 4);
	lookups = (double)n / seconds(t0);
	keyring_free(k);
	keyring_thread_unregister();
	unlink(path);
	snprintf(path, sizeof(path), "%s/acme", dir);
	rmdir(path);
	rmdir(dir);

	/* AES-256-GCM alone, same bytes, same process. */
	if (envelope_parse(env[0], strlen(env[0]), &e, why, sizeof(why)) < 0)
		return 1;
	n = 0;
	t0 = now_ns();
	do {
		for (int i = 0; i < 256; i++, n++)
			if (envelope_decrypt(&e, key, out, sizeof(out), why, sizeof(why)) != SIZE)
				return 1;
	} while (seconds(t0) < secs);
	raw = (double)n / seconds(t0);
	envelope_free(&e);

	/* OpenSSL's own figure: the last column of its 1024-byte line, in kB/s. */
	p = popen("openssl speed -evp aes-256-gcm -bytes 1024 -seconds 1 2>/dev/null", "r");
	while (p && fgets(line, sizeof(line), p)) {
		double kb;
		char *last = strrchr(line, ' ');

		if (!strncmp(line, "AES-256-GCM", 11) && last && sscanf(last, "%lfk", &kb) == 1)
			ossl = kb * 1000 / SIZE;
	}
	if (p)
		pclose(p);

	printf("decrypt of 1 KiB legacy events, one core:\n");
	printf("  parse + key lookup + AES-256-GCM (the stage)    %10.0f msg/s\n", ferry);
	printf("  key cache lookup + release alone                %10.0f lookups/s (%.1f ns)\n",
	       lookups, 1e9 / lookups);
	printf("  AES-256-GCM decrypt alone (EVP, this process)   %10.0f msg/s  (parsing costs "
	       "%.0f%%)\n",
	       raw, 100.0 * (1 - ferry / raw));
	if (ossl > 0)
		printf("  openssl speed -evp aes-256-gcm, 1024 B blocks   %10.0f blocks/s  (stage "
		       "at %.0f%%)\n",
		       ossl, 100.0 * ferry / ossl);
	for (int i = 0; i < N; i++)
		free(env[i]);
	return 0;
}
