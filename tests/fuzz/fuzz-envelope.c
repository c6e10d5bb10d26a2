/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: any bytes as a legacy envelope (common/envelope.c).
 *
 * A parsed envelope is opened with a fixed test key, as the decrypt stage
 * does (an output buffer of exactly the plaintext's size). A fuzzer cannot
 * forge a GCM tag, so the harness then computes the right tag for that
 * IV, AAD and ciphertext under the key and opens it again: that must
 * succeed, so every envelope the fuzzer finds also runs the post-decrypt
 * path. The seeds are sealed with the same key (see tests/fuzz/envelope/).
 *
 * Also checked: a refused envelope owns nothing; a failed open leaves the
 * output wiped; the fast path and the full JSON parser agree (an accepted
 * envelope with an unknown member put first must parse the same: the fast
 * path refuses unknown members, so that one goes through cJSON); and
 * envelope_b64_decode() stays within its output.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/envelope.h"
#include "tests/fuzz/fuzz-common.h"

/* The key of the seeds (tests/unit/test-envelope.c's KEY). */
static const unsigned char KEY[ENVELOPE_KEY_LEN] = "0123456789abcdef0123456789abcdef";

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/*
 * The plaintext of e's ciphertext (CTR mode, tag ignored) into plain, and
 * the tag that makes e genuine under KEY into tag.
 */
static void forge(const struct envelope *e, unsigned char *plain, unsigned char *tag)
{
	size_t n = e->ct_len - ENVELOPE_TAG_LEN;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	unsigned char *again = malloc(n ? n : 1);
	int len = 0, fin = 0;

	CHECK(c && again);
	CHECK(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) &&
	      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, ENVELOPE_IV_LEN, NULL) &&
	      EVP_DecryptInit_ex(c, NULL, NULL, KEY, e->iv) &&
	      (!e->aad_len || EVP_DecryptUpdate(c, NULL, &len, e->aad, (int)e->aad_len)) &&
	      EVP_DecryptUpdate(c, plain, &len, e->ct, (int)n));
	CHECK(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) &&
	      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, ENVELOPE_IV_LEN, NULL) &&
	      EVP_EncryptInit_ex(c, NULL, NULL, KEY, e->iv) &&
	      (!e->aad_len || EVP_EncryptUpdate(c, NULL, &len, e->aad, (int)e->aad_len)) &&
	      EVP_EncryptUpdate(c, again, &len, plain, (int)n) &&
	      EVP_EncryptFinal_ex(c, again + len, &fin) &&
	      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, ENVELOPE_TAG_LEN, tag));
	CHECK((size_t)(len + fin) == n && !memcmp(again, e->ct, n));
	EVP_CIPHER_CTX_free(c);
	free(again);
}

static void open_envelope(struct envelope *e)
{
	size_t n = e->ct_len - ENVELOPE_TAG_LEN;
	unsigned char *out = malloc(n ? n : 1), *plain = malloc(n ? n : 1), tag[ENVELOPE_TAG_LEN];
	char why[256];
	int64_t r;

	CHECK(out && plain);
	why[0] = 0;
	r = envelope_decrypt(e, KEY, out, n, why, sizeof(why));
	CHECK(r == (int64_t)n || r == -EBADMSG);
	if (r < 0)
		CHECK(all_zero(out, n) && why[0] && memchr(why, 0, sizeof(why)));
	/* One byte short of the plaintext: refused before anything is written. */
	if (n)
		CHECK(envelope_decrypt(e, KEY, out, n - 1, why, sizeof(why)) == -ENOBUFS);

	forge(e, plain, tag);
	memcpy(e->ct + n, tag, ENVELOPE_TAG_LEN);
	r = envelope_decrypt(e, KEY, out, n, why, sizeof(why));
	CHECK(r == (int64_t)n && !memcmp(out, plain, n));
	free(out);
	free(plain);
}

/* The full parser on the same envelope: an unknown member first sends it past the fast path. */
static void compare_paths(const uint8_t *data, size_t size, const struct envelope *a)
{
	static const char extra[] = "{\"x-fuzz\":[0],";
	size_t lead = 0;
	struct envelope b;
	char why[256], *s;
	int r;

	while (lead < size && (data[lead] == ' ' || data[lead] == '\t' || data[lead] == '\n' ||
			       data[lead] == '\r'))
		lead++;
	CHECK(lead < size && data[lead] == '{');
	s = malloc(size + sizeof(extra));
	CHECK(s);
	memcpy(s, extra, sizeof(extra) - 1);
	memcpy(s + sizeof(extra) - 1, data + lead + 1, size - lead - 1);
	r = envelope_parse(s, size - lead - 1 + sizeof(extra) - 1, &b, why, sizeof(why));
	CHECK(r == 0 || r == -ENOMEM);
	if (r == 0) {
		CHECK(!strcmp(a->tenant, b.tenant) && a->key_version == b.key_version);
		CHECK(!memcmp(a->iv, b.iv, ENVELOPE_IV_LEN));
		CHECK(a->ct_len == b.ct_len && !memcmp(a->ct, b.ct, a->ct_len));
		CHECK(a->aad_len == b.aad_len &&
		      (!a->aad_len || !memcmp(a->aad, b.aad, a->aad_len)));
		envelope_free(&b);
	}
	free(s);
}

static void check_b64(const uint8_t *data, size_t size)
{
	size_t cap = size / 4 * 3;
	unsigned char *out = malloc(cap ? cap : 1);
	int64_t n;

	CHECK(out);
	n = envelope_b64_decode((const char *)data, size, out, cap);
	CHECK(n == -EINVAL || (n >= 0 && (size_t)n <= cap));
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope e;
	char why[256];
	int r;

	if (size > 1 << 20)
		return 0;
	if (!size)
		data = (const uint8_t *)"";
	why[0] = 0;
	r = envelope_parse(data, size, &e, why, sizeof(why));
	CHECK(r == 0 || r == -EBADMSG || r == -ENOMEM);
	if (r < 0) {
		CHECK(!e.ct && !e.aad && !e.ct_len && !e.aad_len);
		CHECK(r == -ENOMEM || (why[0] && memchr(why, 0, sizeof(why))));
	} else {
		CHECK(e.ct && e.ct_len >= ENVELOPE_TAG_LEN);
		CHECK(memchr(e.tenant, 0, sizeof(e.tenant)));
		compare_paths(data, size, &e);
		open_envelope(&e);
	}
	envelope_free(&e);
	envelope_free(&e); /* safe twice */
	check_b64(data, size);
	return 0;
}
