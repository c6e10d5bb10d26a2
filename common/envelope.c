/* SPDX-License-Identifier: MIT */
#include "common/envelope.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

int64_t envelope_b64_decode(const char *s, size_t len, unsigned char *out, size_t cap)
{
	size_t pad = 0;
	int n;

	if (len % 4)
		return -EINVAL;
	if (len && s[len - 1] == '=')
		pad++;
	if (len > 1 && s[len - 2] == '=')
		pad++;
	if (len / 4 * 3 > cap || len > INT32_MAX)
		return -EINVAL;
	/*
	 * EVP_DecodeBlock refuses characters outside the alphabet, but trims
	 * white space at both ends and takes '=' anywhere: check those here.
	 */
	if (len && (memchr(s, '=', len - pad) || s[0] == ' ' || s[0] == '\t' || s[0] == '\n' ||
		    s[0] == '\r'))
		return -EINVAL;
	n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	if (n < 0)
		return -EINVAL;
	return n - (int64_t)pad;
}

/* Decode the base64 string member name of j into a new buffer. */
static int b64_member(const cJSON *j, const char *name, int required, unsigned char **ret,
		      size_t *ret_len, char *why, size_t whylen)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, name);
	size_t len;
	int64_t n;

	*ret = NULL;
	*ret_len = 0;
	if (!m) {
		if (!required)
			return 0;
		snprintf(why, whylen, "missing \"%s\"", name);
		return -EBADMSG;
	}
	if (!cJSON_IsString(m)) {
		snprintf(why, whylen, "\"%s\" is not a string", name);
		return -EBADMSG;
	}
	len = strlen(m->valuestring);
	*ret = malloc(len / 4 * 3 + 1);
	if (!*ret)
		return -ENOMEM;
	n = envelope_b64_decode(m->valuestring, len, *ret, len / 4 * 3 + 1);
	if (n < 0) {
		free(*ret);
		*ret = NULL;
		snprintf(why, whylen, "bad base64 in \"%s\"", name);
		return -EBADMSG;
	}
	*ret_len = (size_t)n;
	return 0;
}

void envelope_free(struct envelope *e)
{
	if (!e)
		return;
	free(e->ct);
	free(e->aad);
	e->ct = e->aad = NULL;
	e->ct_len = e->aad_len = 0;
}

/*
 * The fast path: one pass over an envelope as producers write it (a flat
 * object of plain strings and whole numbers, no escapes, each key once).
 * Anything else returns 1 and is left to the full JSON parser, which also
 * words the errors. Returns 0 (e filled), 1 (use the parser) or -ENOMEM.
 */
struct span {
	const char *p;
	size_t len;
};

static const char *ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* Eight bytes at once: is any of them '"', '\\' or a control byte (< 0x20)? */
static int special8(const char *p)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t x, q, b;

	memcpy(&x, p, 8);
	q = x ^ (ones * '"');
	b = x ^ (ones * '\\');
	/* (v - 0x01..) & ~v & 0x80.. is non-zero iff a byte of v is 0 (or, for x, < 0x20) */
	return (((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x)) & high ? 1 : 0;
}

/*
 * A string without escapes or control bytes at p (after the quote): one
 * pass, eight bytes at a time until one of them is special. The ciphertext
 * member is most of an envelope: this loop is most of its parsing.
 */
static const char *plain_string(const char *p, const char *end, struct span *ret)
{
	const char *c = p;

	while (end - c >= 8 && !special8(c))
		c += 8;
	for (; c < end; c++) {
		if (*c == '"') {
			ret->p = p;
			ret->len = (size_t)(c - p);
			return c + 1;
		}
		if (*c == '\\' || (unsigned char)*c < 0x20)
			return NULL;
	}
	return NULL;
}

static int b64_span(struct span s, unsigned char **ret, size_t *ret_len)
{
	int64_t n;

	*ret = malloc(s.len / 4 * 3 + 1);
	if (!*ret)
		return -ENOMEM;
	n = envelope_b64_decode(s.p, s.len, *ret, s.len / 4 * 3 + 1);
	if (n < 0) {
		free(*ret);
		*ret = NULL;
		return 1;
	}
	*ret_len = (size_t)n;
	return 0;
}

static int parse_fast(const char *p, size_t len, struct envelope *e)
{
	const char *end = p + len;
	struct span iv = {0}, ct = {0}, aad = {0}, tenant = {0};
	int64_t v = -1, key = -1;
	unsigned seen = 0;
	unsigned char *ivb = NULL;
	size_t ivlen = 0;
	int r;

	p = ws(p, end);
	if (p == end || *p++ != '{')
		return 1;
	for (;;) {
		struct span k, sv = {0};
		int64_t num = -1;
		unsigned bit;

		p = ws(p, end);
		if (p == end || *p++ != '"' || !(p = plain_string(p, end, &k)))
			return 1;
		p = ws(p, end);
		if (p == end || *p++ != ':')
			return 1;
		p = ws(p, end);
		if (p < end && *p == '"') {
			if (!(p = plain_string(p + 1, end, &sv)))
				return 1;
		} else if (p < end && *p >= '0' && *p <= '9') {
			num = 0;
			while (p < end && *p >= '0' && *p <= '9' && num < (int64_t)1 << 40)
				num = num * 10 + (*p++ - '0');
			if (p < end &&
			    (*p == '.' || *p == 'e' || *p == 'E' || (*p >= '0' && *p <= '9')))
				return 1;
		} else {
			return 1;
		}
#define KEY_IS(s) (k.len == sizeof(s) - 1 && !memcmp(k.p, s, k.len))
		if (KEY_IS("v") && num >= 0)
			bit = 1, v = num;
		else if (KEY_IS("key") && num >= 0)
			bit = 2, key = num;
		else if (KEY_IS("tenant") && sv.p)
			bit = 4, tenant = sv;
		else if (KEY_IS("iv") && sv.p)
			bit = 8, iv = sv;
		else if (KEY_IS("ct") && sv.p)
			bit = 16, ct = sv;
		else if (KEY_IS("aad") && sv.p)
			bit = 32, aad = sv;
		else
			return 1; /* unknown key, or a value of another type */
#undef KEY_IS
		if (seen & bit)
			return 1;
		seen |= bit;
		p = ws(p, end);
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p < end && *p == '}')
			break;
		return 1;
	}
	if (ws(p + 1, end) != end || v != 1 || key < 0 || key > UINT32_MAX || !iv.p || !ct.p ||
	    tenant.len >= ENVELOPE_TENANT_MAX)
		return 1;
	r = b64_span(iv, &ivb, &ivlen);
	if (r)
		return r;
	if (ivlen != ENVELOPE_IV_LEN) {
		free(ivb);
		return 1;
	}
	memcpy(e->iv, ivb, ENVELOPE_IV_LEN);
	free(ivb);
	r = b64_span(ct, &e->ct, &e->ct_len);
	if (!r && e->ct_len < ENVELOPE_TAG_LEN)
		r = 1;
	if (!r && aad.p)
		r = b64_span(aad, &e->aad, &e->aad_len);
	if (r) {
		envelope_free(e);
		return r;
	}
	if (tenant.len) /* no "tenant": tenant.p is NULL, and memcpy() from NULL is undefined */
		memcpy(e->tenant, tenant.p, tenant.len);
	e->tenant[tenant.len] = 0;
	e->key_version = (uint32_t)key;
	return 0;
}

int envelope_parse(const void *body, size_t len, struct envelope *e, char *why, size_t whylen)
{
	cJSON *j;
	const cJSON *v, *tenant, *key;
	unsigned char *iv = NULL;
	size_t iv_len = 0;
	int r;

	memset(e, 0, sizeof(*e));
	r = parse_fast(body, len, e);
	if (r <= 0)
		return r;
	memset(e, 0, sizeof(*e));
	r = -EBADMSG;
	/*
	 * cJSON takes every byte below ' ' for white space (NUL included) and
	 * accepts control bytes inside strings: JSON allows neither, and the
	 * fast path refuses both, so "\0{...}" must not pass here either.
	 */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = ((const unsigned char *)body)[i];

		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
			snprintf(why, whylen,
				 "body is not a JSON object (control byte 0x%02x at %zu)", c, i);
			return r;
		}
	}
	{
		const char *end = NULL;

		j = cJSON_ParseWithLengthOpts(body, len, &end, 0);
		/* Nothing but white space may follow the object. */
		while (j && end && end < (const char *)body + len &&
		       (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
			end++;
		if (j && end != (const char *)body + len) {
			cJSON_Delete(j);
			j = NULL;
		}
	}
	if (!j || !cJSON_IsObject(j)) {
		snprintf(why, whylen, "body is not a JSON object");
		goto out;
	}
	v = cJSON_GetObjectItemCaseSensitive(j, "v");
	if (!cJSON_IsNumber(v) || v->valuedouble != 1) {
		snprintf(why, whylen, "not a version 1 envelope (\"v\": 1 missing)");
		goto out;
	}
	tenant = cJSON_GetObjectItemCaseSensitive(j, "tenant");
	if (tenant &&
	    (!cJSON_IsString(tenant) || strlen(tenant->valuestring) >= ENVELOPE_TENANT_MAX)) {
		snprintf(why, whylen, "\"tenant\" is not a string of at most %d bytes",
			 ENVELOPE_TENANT_MAX - 1);
		goto out;
	}
	if (tenant)
		snprintf(e->tenant, sizeof(e->tenant), "%s", tenant->valuestring);
	key = cJSON_GetObjectItemCaseSensitive(j, "key");
	if (!cJSON_IsNumber(key) || key->valuedouble < 0 || key->valuedouble > UINT32_MAX ||
	    key->valuedouble != (double)(uint32_t)key->valuedouble) {
		snprintf(why, whylen, "\"key\" (the key version) is not a whole number");
		goto out;
	}
	e->key_version = (uint32_t)key->valuedouble;
	r = b64_member(j, "iv", 1, &iv, &iv_len, why, whylen);
	if (r < 0)
		goto out;
	if (iv_len != ENVELOPE_IV_LEN) {
		snprintf(why, whylen, "wrong IV length %zu (want %d)", iv_len, ENVELOPE_IV_LEN);
		r = -EBADMSG;
		goto out;
	}
	memcpy(e->iv, iv, ENVELOPE_IV_LEN);
	r = b64_member(j, "ct", 1, &e->ct, &e->ct_len, why, whylen);
	if (r < 0)
		goto out;
	if (e->ct_len < ENVELOPE_TAG_LEN) {
		snprintf(why, whylen, "truncated ciphertext (%zu bytes, less than the %d-byte tag)",
			 e->ct_len, ENVELOPE_TAG_LEN);
		r = -EBADMSG;
		goto out;
	}
	r = b64_member(j, "aad", 0, &e->aad, &e->aad_len, why, whylen);
out:
	free(iv);
	cJSON_Delete(j);
	if (r < 0)
		envelope_free(e);
	return r;
}

/* AES-256-GCM, fetched from the provider once rather than by name on every message. */
static const EVP_CIPHER *gcm(void)
{
	static EVP_CIPHER *cipher;

	if (!cipher)
		cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	return cipher ? cipher : EVP_aes_256_gcm();
}

static _Thread_local EVP_CIPHER_CTX *ctx; /* see envelope_decrypt_wipe() */

void envelope_decrypt_wipe(void)
{
	EVP_CIPHER_CTX_free(ctx); /* cleanses the key schedule */
	ctx = NULL;
}

int64_t envelope_decrypt(const struct envelope *e, const unsigned char key[ENVELOPE_KEY_LEN],
			 unsigned char *out, size_t cap, char *why, size_t whylen)
{
	size_t n = e->ct_len - ENVELOPE_TAG_LEN;
	EVP_CIPHER_CTX *c;
	int len = 0, fin = 0, ok;

	if (cap < n || n > INT32_MAX) {
		snprintf(why, whylen, "plaintext larger than the output buffer");
		return -ENOBUFS;
	}
	if (!ctx) {
		ctx = EVP_CIPHER_CTX_new();
		if (!ctx || !EVP_DecryptInit_ex(ctx, gcm(), NULL, NULL, NULL) ||
		    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, ENVELOPE_IV_LEN, NULL)) {
			EVP_CIPHER_CTX_free(ctx);
			ctx = NULL;
			return -ENOMEM;
		}
	}
	c = ctx;
	ok = EVP_DecryptInit_ex(c, NULL, NULL, key, e->iv) &&
	     (!e->aad_len || EVP_DecryptUpdate(c, NULL, &len, e->aad, (int)e->aad_len)) &&
	     EVP_DecryptUpdate(c, out, &len, e->ct, (int)n) &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, ENVELOPE_TAG_LEN, (void *)(e->ct + n)) &&
	     EVP_DecryptFinal_ex(c, out + len, &fin) > 0;
	if (!ok) {
		OPENSSL_cleanse(out, n);
		snprintf(why, whylen, "tag mismatch: tampered, or not this tenant's key");
		return -EBADMSG;
	}
	return len + fin;
}

static char *b64(const unsigned char *p, size_t len)
{
	char *s = malloc(4 * ((len + 2) / 3) + 1);

	if (s)
		EVP_EncodeBlock((unsigned char *)s, p, (int)len);
	return s;
}

int envelope_seal(const char *tenant, uint32_t version, const unsigned char key[ENVELOPE_KEY_LEN],
		  const void *plain, size_t len, const void *aad, size_t aad_len, char **ret)
{
	unsigned char iv[ENVELOPE_IV_LEN], *ct = malloc(len + ENVELOPE_TAG_LEN);
	char *iv64 = NULL, *ct64 = NULL, *aad64 = NULL;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	cJSON *j = NULL;
	int n = 0, fin = 0, r = -EIO;

	if (!ct || !c || len > INT32_MAX) {
		r = -ENOMEM;
		goto out;
	}
	if (RAND_bytes(iv, sizeof(iv)) != 1 ||
	    !EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) ||
	    !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, ENVELOPE_IV_LEN, NULL) ||
	    !EVP_EncryptInit_ex(c, NULL, NULL, key, iv) ||
	    (aad_len && !EVP_EncryptUpdate(c, NULL, &n, aad, (int)aad_len)) ||
	    !EVP_EncryptUpdate(c, ct, &n, plain, (int)len) ||
	    !EVP_EncryptFinal_ex(c, ct + n, &fin) ||
	    !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, ENVELOPE_TAG_LEN, ct + n + fin))
		goto out;
	iv64 = b64(iv, sizeof(iv));
	ct64 = b64(ct, (size_t)(n + fin) + ENVELOPE_TAG_LEN);
	aad64 = aad_len ? b64(aad, aad_len) : NULL;
	j = cJSON_CreateObject();
	if (!iv64 || !ct64 || (aad_len && !aad64) || !j) {
		r = -ENOMEM;
		goto out;
	}
	cJSON_AddNumberToObject(j, "v", 1);
	cJSON_AddStringToObject(j, "tenant", tenant);
	cJSON_AddNumberToObject(j, "key", version);
	cJSON_AddStringToObject(j, "iv", iv64);
	cJSON_AddStringToObject(j, "ct", ct64);
	if (aad64)
		cJSON_AddStringToObject(j, "aad", aad64);
	*ret = cJSON_PrintUnformatted(j);
	r = *ret ? 0 : -ENOMEM;
out:
	cJSON_Delete(j);
	free(iv64);
	free(ct64);
	free(aad64);
	free(ct);
	EVP_CIPHER_CTX_free(c);
	return r;
}
