/* SPDX-License-Identifier: MIT */
/*
 * bench-decrypt: what decrypt does per message, against raw AES-256-GCM.
 *
 * For 1 KiB legacy events sealed in envelopes: envelope_parse() (JSON +
 * base64) and envelope_decrypt() per message, as the decrypt stage runs
 * them; then AES-256-GCM alone on the same bytes in this process; then
 * `openssl speed -evp aes-256-gcm` for 1 KiB blocks, all in the same run.
 * Not a test: it prints figures and exits 0 (1 on a setup error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/envelope.h"
#include "common/time.h"

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

	memset(plain, 'x', SIZE);
	memcpy(plain, "{\"eventType\":\"message.sent\",\"text\":\"", 37);
	plain[SIZE - 2] = '"';
	plain[SIZE - 1] = '}';
	plain[SIZE] = 0;
	for (int i = 0; i < N; i++)
		if (envelope_seal("acme", 1, key, plain, SIZE, "tenant:acme", 11, &env[i]) < 0)
			return 1;

	/* What the stage does per message. */
	t0 = now_ns();
	do {
		for (int i = 0; i < 256; i++, n++) {
			const char *s = env[n % N];

			if (envelope_parse(s, strlen(s), &e, why, sizeof(why)) < 0 ||
			    envelope_decrypt(&e, key, out, sizeof(out), why, sizeof(why)) != SIZE)
				return 1;
			envelope_free(&e);
		}
	} while (seconds(t0) < secs);
	ferry = (double)n / seconds(t0);

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
		double k;
		char *last = strrchr(line, ' ');

		if (!strncmp(line, "AES-256-GCM", 11) && last && sscanf(last, "%lfk", &k) == 1)
			ossl = k * 1000 / SIZE;
	}
	if (p)
		pclose(p);

	printf("decrypt of 1 KiB legacy events, one core:\n");
	printf("  envelope parse + AES-256-GCM (the stage's work) %10.0f msg/s\n", ferry);
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
