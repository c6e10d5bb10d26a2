/* SPDX-License-Identifier: MIT */
#include "common/envelope.h"

#include <errno.h>
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
	for (size_t i = 0; i < len - pad; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/'))
			return -EINVAL;
	}
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

int envelope_parse(const void *body, size_t len, struct envelope *e, char *why, size_t whylen)
{
	cJSON *j = cJSON_ParseWithLength(body, len);
	const cJSON *v, *tenant, *key;
	unsigned char *iv = NULL;
	size_t iv_len = 0;
	int r = -EBADMSG;

	memset(e, 0, sizeof(*e));
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
	c = EVP_CIPHER_CTX_new();
	if (!c)
		return -ENOMEM;
	ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, ENVELOPE_IV_LEN, NULL) &&
	     EVP_DecryptInit_ex(c, NULL, NULL, key, e->iv) &&
	     (!e->aad_len || EVP_DecryptUpdate(c, NULL, &len, e->aad, (int)e->aad_len)) &&
	     EVP_DecryptUpdate(c, out, &len, e->ct, (int)n) &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, ENVELOPE_TAG_LEN, (void *)(e->ct + n)) &&
	     EVP_DecryptFinal_ex(c, out + len, &fin) > 0;
	EVP_CIPHER_CTX_free(c);
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
