/* SPDX-License-Identifier: MIT */
/*
 * envelope: the legacy producers' encrypted message body (README,
 * "The legacy envelope"), version 1:
 *
 *   {"v": 1, "tenant": "acme", "key": 3,
 *    "iv": "<base64 of 12 bytes>",
 *    "ct": "<base64 of ciphertext followed by the 16-byte GCM tag>",
 *    "aad": "<base64 of additional authenticated data>"}      (optional)
 *
 * AES-256-GCM with the tenant's key of that version. Parsing and
 * decrypting report a precise reason, never the plaintext or the key.
 */
#ifndef FERRY_COMMON_ENVELOPE_H
#define FERRY_COMMON_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#define ENVELOPE_KEY_LEN    32
#define ENVELOPE_IV_LEN	    12
#define ENVELOPE_TAG_LEN    16
#define ENVELOPE_TENANT_MAX 128

struct envelope {
	char tenant[ENVELOPE_TENANT_MAX]; /* "" when the body names none */
	uint32_t key_version;
	unsigned char iv[ENVELOPE_IV_LEN];
	unsigned char *ct; /* ciphertext and tag, decoded (owned) */
	size_t ct_len;
	unsigned char *aad; /* decoded (owned), NULL when none */
	size_t aad_len;
};

/*
 * Parse body into e (which the caller frees with envelope_free()).
 * Returns 0, or -EBADMSG with why set: "not JSON", "not a version 1
 * envelope", "bad base64 in \"iv\"", "wrong IV length 8 (want 12)",
 * "truncated ciphertext (10 bytes, less than the 16-byte tag)", ...
 * or -ENOMEM.
 */
int envelope_parse(const void *body, size_t len, struct envelope *e, char *why, size_t whylen);

/* Release what envelope_parse() allocated. Safe twice and on a zeroed envelope. */
void envelope_free(struct envelope *e);

/*
 * Decrypt e with key into out (at least e->ct_len - 16 bytes). Returns the
 * plaintext length, or -EBADMSG ("tag mismatch: tampered, or not this
 * key") with why set. On failure out holds nothing (wiped).
 */
int64_t envelope_decrypt(const struct envelope *e, const unsigned char key[ENVELOPE_KEY_LEN],
			 unsigned char *out, size_t cap, char *why, size_t whylen);

/*
 * envelope_decrypt() keeps one AES-256-GCM context per thread, set up once:
 * per message only the key and IV are loaded (OpenSSL 3's full set-up cost
 * a third of a message's decrypt). It holds the expanded key last used
 * until the next message; this frees it, wiped (key ring flush, exit).
 */
void envelope_decrypt_wipe(void);

/*
 * Encrypt plain under key as a version 1 envelope for tenant/version,
 * with a random IV and optional aad, into a newly allocated JSON string
 * (*ret, free() it). Returns 0 or -errno. For the envelope tool and tests.
 */
int envelope_seal(const char *tenant, uint32_t version, const unsigned char key[ENVELOPE_KEY_LEN],
		  const void *plain, size_t len, const void *aad, size_t aad_len, char **ret);

/* Decode standard base64 (with padding). Returns the length or -EINVAL. */
int64_t envelope_b64_decode(const char *s, size_t len, unsigned char *out, size_t cap);

#endif
