/* SPDX-License-Identifier: MIT */
#include "common/gcp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define JWT_LIFETIME	  3600
#define RETRY_WAIT	  10	      /* seconds between metadata attempts after a failure */
#define METADATA_RESP_MAX (64 * 1024) /* a token response is a few hundred bytes */
#define METADATA_PATH	  "/computeMetadata/v1/instance/service-accounts/default/token"

struct gcp_auth {
	enum gcp_auth_kind kind;
	char base[256];
	char describe[600];
	/* service account */
	EVP_PKEY *key;
	char email[256];
	char kid[128];
	time_t issued_at;
	/* metadata server */
	char meta_url[320];
	char meta_host[256];
	CURL *easy;
	time_t retry_at;
	char last_err[256];
	/* the token in hand ("" = none) */
	char token[GCP_TOKEN_MAX + 1];
	time_t expiry;
	time_t refresh_at;
};

static void errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int gcp_base64url(const void *in, size_t n, char *out, size_t cap)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *p = in;
	size_t need = n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0), j = 0;

	if (need + 1 > cap || need > INT32_MAX)
		return -ENOSPC;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		out[j++] = tab[(v >> 18) & 63];
		out[j++] = tab[(v >> 12) & 63];
		if (left > 1)
			out[j++] = tab[(v >> 6) & 63];
		if (left > 2)
			out[j++] = tab[v & 63];
	}
	out[j] = 0;
	return (int)j;
}

/* A host[:port] from the environment: no scheme, path, user or blanks. */
static int host_port_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 200)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f || strchr("/@?#\\\"'", c))
			return 0;
	}
	return 1;
}

static int url_ok(const char *s)
{
	return (!strncmp(s, "http://", 7) || !strncmp(s, "https://", 8)) &&
	       strlen(s) < sizeof(((struct gcp_auth *)0)->base) && !strpbrk(s, " \t\r\n");
}

static void wipe_free(char *p, size_t n)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, n);
	free(p);
}

/* Read a whole (small) file into a NUL-terminated malloc'd buffer. */
static int read_small_file(const char *path, char **ret, size_t *ret_len, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		errf(err, errlen, "gcp: key file %s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > GCP_KEY_FILE_MAX) {
		r = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
		errf(err, errlen, "gcp: key file %s: %s", path,
		     r == -EFBIG ? "larger than 64 KiB" : "not a regular file");
		close(fd);
		return r;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		errf(err, errlen, "gcp: out of memory");
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			errf(err, errlen, "gcp: key file %s: %s", path,
			     n < 0 ? strerror(-r) : "shorter than its size");
			close(fd);
			wipe_free(buf, (size_t)st.st_size + 1);
			return r;
		}
		got += (size_t)n;
	}
	close(fd);
	buf[got] = 0;
	*ret = buf;
	*ret_len = got + 1;
	return 0;
}

/* Never prompt for a passphrase: an encrypted key is simply refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static const char *json_str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

/* Plain printable ASCII, as it goes into a JSON header we build and into logs. */
static int printable(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n >= max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

static int load_key_file(struct gcp_auth *a, const char *path, char *err, size_t errlen)
{
	const char *type, *email, *kid, *pem;
	cJSON *j = NULL, *pk;
	char *buf = NULL;
	size_t buf_len = 0;
	BIO *bio = NULL;
	int r;

	r = read_small_file(path, &buf, &buf_len, err, errlen);
	if (r < 0)
		return r;
	j = cJSON_ParseWithLength(buf, buf_len - 1);
	r = -EINVAL;
	if (!cJSON_IsObject(j)) {
		errf(err, errlen, "gcp: key file %s: not JSON", path);
		goto out;
	}
	type = json_str(j, "type");
	if (!type) {
		errf(err, errlen, "gcp: key file %s: no \"type\"", path);
		goto out;
	}
	if (strcmp(type, "service_account")) {
		errf(err, errlen,
		     "gcp: key file %s: type '%.40s' is not supported (a service-account key "
		     "is needed)",
		     path, type);
		goto out;
	}
	email = json_str(j, "client_email");
	kid = json_str(j, "private_key_id");
	pk = cJSON_GetObjectItemCaseSensitive(j, "private_key");
	pem = cJSON_IsString(pk) ? pk->valuestring : NULL;
	if (!pem || !*pem) {
		errf(err, errlen, "gcp: key file %s: no private_key", path);
		goto out;
	}
	if (!email || !printable(email, sizeof(a->email))) {
		errf(err, errlen, "gcp: key file %s: no usable client_email", path);
		goto out;
	}
	if (!kid || !printable(kid, sizeof(a->kid))) {
		errf(err, errlen, "gcp: key file %s: no usable private_key_id", path);
		goto out;
	}
	bio = BIO_new_mem_buf(pem, -1);
	if (!bio) {
		r = -ENOMEM;
		errf(err, errlen, "gcp: out of memory");
		goto out;
	}
	a->key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	ERR_clear_error(); /* OpenSSL's queue may hold details; none of them is needed */
	if (!a->key || EVP_PKEY_get_base_id(a->key) != EVP_PKEY_RSA) {
		EVP_PKEY_free(a->key);
		a->key = NULL;
		errf(err, errlen, "gcp: key file %s: private_key is not a PEM RSA private key",
		     path);
		goto out;
	}
	snprintf(a->email, sizeof(a->email), "%s", email);
	snprintf(a->kid, sizeof(a->kid), "%s", kid);
	r = 0;
out:
	BIO_free(bio);
	if (j) {
		pk = cJSON_GetObjectItemCaseSensitive(j, "private_key");
		if (cJSON_IsString(pk) && pk->valuestring)
			OPENSSL_cleanse(pk->valuestring, strlen(pk->valuestring));
		cJSON_Delete(j);
	}
	wipe_free(buf, buf_len);
	return r;
}

int gcp_auth_new(const char *key_file, struct gcp_auth **ret, char *err, size_t errlen)
{
	const char *emu = getenv("PUBSUB_EMULATOR_HOST");
	struct gcp_auth *a;
	int r;

	if (!ret) {
		errf(err, errlen, "gcp: bad arguments");
		return -EINVAL;
	}
	*ret = NULL;
	a = calloc(1, sizeof(*a));
	if (!a) {
		errf(err, errlen, "gcp: out of memory");
		return -ENOMEM;
	}
	snprintf(a->base, sizeof(a->base), "%s", GCP_PUBSUB_URL);
	if (emu && *emu) {
		if (!host_port_ok(emu)) {
			errf(err, errlen, "gcp: PUBSUB_EMULATOR_HOST '%.100s' is not host:port",
			     emu);
			free(a);
			return -EINVAL;
		}
		a->kind = GCP_AUTH_EMULATOR;
		snprintf(a->base, sizeof(a->base), "http://%s", emu);
		snprintf(a->describe, sizeof(a->describe), "emulator at %s", emu);
		*ret = a;
		return 0;
	}
	if (!key_file || !*key_file)
		key_file = getenv("GOOGLE_APPLICATION_CREDENTIALS");
	if (key_file && *key_file) {
		r = load_key_file(a, key_file, err, errlen);
		if (r < 0) {
			gcp_auth_free(a);
			return r;
		}
		a->kind = GCP_AUTH_SERVICE_ACCOUNT;
		snprintf(a->describe, sizeof(a->describe),
			 "service account %s (key %.12s..., file %.200s)", a->email, a->kid,
			 key_file);
		*ret = a;
		return 0;
	}

	const char *host = getenv("GCE_METADATA_HOST");

	if (!host || !*host)
		host = "metadata.google.internal";
	if (!host_port_ok(host)) {
		errf(err, errlen, "gcp: GCE_METADATA_HOST '%.100s' is not host[:port]", host);
		free(a);
		return -EINVAL;
	}
	a->kind = GCP_AUTH_METADATA;
	snprintf(a->meta_url, sizeof(a->meta_url), "http://%s%s", host, METADATA_PATH);
	snprintf(a->meta_host, sizeof(a->meta_host), "%s", host);
	snprintf(a->describe, sizeof(a->describe), "metadata server %s", host);
	*ret = a;
	return 0;
}

int gcp_auth_set_endpoint(struct gcp_auth *a, const char *base_url)
{
	size_t n;

	if (!a || !base_url || !url_ok(base_url))
		return -EINVAL;
	n = strlen(base_url);
	while (n > 0 && base_url[n - 1] == '/')
		n--;
	snprintf(a->base, sizeof(a->base), "%.*s", (int)n, base_url);
	return 0;
}

const char *gcp_auth_base_url(const struct gcp_auth *a)
{
	return a ? a->base : GCP_PUBSUB_URL;
}

enum gcp_auth_kind gcp_auth_kind(const struct gcp_auth *a)
{
	return a ? a->kind : 0;
}

const char *gcp_auth_describe(const struct gcp_auth *a)
{
	return a ? a->describe : "";
}

time_t gcp_auth_expiry(const struct gcp_auth *a)
{
	return a && a->token[0] ? a->expiry : 0;
}

static void drop_token(struct gcp_auth *a)
{
	OPENSSL_cleanse(a->token, sizeof(a->token));
	a->expiry = 0;
	a->refresh_at = 0;
}

/* base64url of a cJSON object printed compactly. */
static int b64_json(cJSON *o, char *out, size_t cap)
{
	char *s = cJSON_PrintUnformatted(o);
	int r;

	if (!s)
		return -ENOMEM;
	r = gcp_base64url(s, strlen(s), out, cap);
	free(s);
	return r;
}

static int jwt_sign(struct gcp_auth *a, time_t now, char *err, size_t errlen)
{
	char tok[GCP_TOKEN_MAX + 1];
	unsigned char sig[1024];
	size_t sig_len = sizeof(sig), n;
	cJSON *hdr = cJSON_CreateObject(), *cl = cJSON_CreateObject();
	EVP_MD_CTX *md = NULL;
	int r = -ENOMEM, k;

	if (!hdr || !cl || !cJSON_AddStringToObject(hdr, "alg", "RS256") ||
	    !cJSON_AddStringToObject(hdr, "typ", "JWT") ||
	    !cJSON_AddStringToObject(hdr, "kid", a->kid) ||
	    !cJSON_AddStringToObject(cl, "iss", a->email) ||
	    !cJSON_AddStringToObject(cl, "sub", a->email) ||
	    !cJSON_AddStringToObject(cl, "aud", GCP_PUBSUB_AUD) ||
	    !cJSON_AddNumberToObject(cl, "iat", (double)now) ||
	    !cJSON_AddNumberToObject(cl, "exp", (double)(now + JWT_LIFETIME)))
		goto out;
	k = b64_json(hdr, tok, sizeof(tok));
	if (k < 0)
		goto toolong;
	n = (size_t)k;
	tok[n++] = '.';
	k = b64_json(cl, tok + n, sizeof(tok) - n);
	if (k < 0)
		goto toolong;
	n += (size_t)k;
	md = EVP_MD_CTX_new();
	if (!md)
		goto out;
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, a->key) != 1 ||
	    EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)tok, n) != 1) {
		ERR_clear_error();
		r = -EINVAL;
		errf(err, errlen, "gcp: cannot sign the JWT with the key of %s", a->email);
		goto out;
	}
	if (n + 1 >= sizeof(tok))
		goto toolong;
	tok[n++] = '.';
	k = gcp_base64url(sig, sig_len, tok + n, sizeof(tok) - n);
	if (k < 0)
		goto toolong;
	drop_token(a);
	memcpy(a->token, tok, n + (size_t)k + 1);
	a->issued_at = now;
	a->expiry = now + JWT_LIFETIME;
	a->refresh_at = a->expiry - GCP_REFRESH_MARGIN;
	r = 0;
	goto out;
toolong:
	r = -ENOSPC;
	errf(err, errlen, "gcp: JWT longer than %d bytes", GCP_TOKEN_MAX);
out:
	OPENSSL_cleanse(tok, sizeof(tok));
	EVP_MD_CTX_free(md);
	cJSON_Delete(hdr);
	cJSON_Delete(cl);
	if (r == -ENOMEM)
		errf(err, errlen, "gcp: out of memory");
	return r;
}

struct resp {
	char *p;
	size_t len, cap;
	int too_large;
};

static size_t on_meta_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct resp *b = userdata;
	size_t n = size * nmemb;

	if (b->len + n + 1 > METADATA_RESP_MAX) {
		b->too_large = 1;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		char *q = malloc(METADATA_RESP_MAX);

		/* One step to the maximum: a realloc would leave unwiped token copies behind. */
		if (!q)
			return 0;
		if (b->p) {
			memcpy(q, b->p, b->len);
			wipe_free(b->p, b->cap);
		}
		b->p = q;
		b->cap = METADATA_RESP_MAX;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = 0;
	return n;
}

/* A bearer token goes into a header line: printable ASCII without blanks only. */
static int token_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > GCP_TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

static int metadata_fetch(struct gcp_auth *a, time_t now, char *err, size_t errlen)
{
	struct curl_slist *hdrs = NULL;
	struct resp b = {0};
	char curl_err[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode c = CURLE_OK;
	const char *tok, *type;
	const cJSON *exp;
	cJSON *j = NULL;
	time_t life;
	int r;

	if (!a->easy) {
		a->easy = curl_easy_init();
		if (!a->easy) {
			errf(err, errlen, "gcp: metadata server: cannot make a curl handle");
			return -ENOMEM;
		}
	}
	hdrs = curl_slist_append(NULL, "Metadata-Flavor: Google");
	if (!hdrs) {
		errf(err, errlen, "gcp: out of memory");
		return -ENOMEM;
	}
	curl_easy_reset(a->easy);
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (c == CURLE_OK)                                                                 \
			c = curl_easy_setopt(a->easy, opt, val);                                   \
	} while (0)
	SET(CURLOPT_URL, a->meta_url);
	SET(CURLOPT_PROTOCOLS_STR, "http");
	SET(CURLOPT_HTTPHEADER, hdrs);
	SET(CURLOPT_WRITEFUNCTION, on_meta_body);
	SET(CURLOPT_WRITEDATA, &b);
	SET(CURLOPT_ERRORBUFFER, curl_err);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_NOPROXY, "*"); /* the metadata server is never behind a proxy */
	SET(CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	SET(CURLOPT_TIMEOUT_MS, 10000L);
#undef SET
	if (c == CURLE_OK)
		c = curl_easy_perform(a->easy);
	curl_easy_setopt(a->easy, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(a->easy, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (c != CURLE_OK) {
		r = -EIO;
		errf(err, errlen, "gcp: metadata server %s: %s%s%s", a->meta_host,
		     b.too_large ? "response too large" : curl_easy_strerror(c),
		     curl_err[0] ? ": " : "", curl_err);
		goto out;
	}
	curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		r = status == 401 || status == 403 ? -EACCES : -EIO;
		errf(err, errlen, "gcp: metadata server %s: HTTP %ld", a->meta_host, status);
		goto out;
	}
	j = b.p ? cJSON_ParseWithLength(b.p, b.len) : NULL;
	tok = j ? json_str(j, "access_token") : NULL;
	type = j ? json_str(j, "token_type") : NULL;
	exp = j ? cJSON_GetObjectItemCaseSensitive(j, "expires_in") : NULL;

	if (!tok || !token_ok(tok) || (type && strcasecmp(type, "Bearer")) ||
	    !cJSON_IsNumber(exp) || exp->valuedouble < 1 || exp->valuedouble > 86400 * 7) {
		r = -EPROTO;
		errf(err, errlen,
		     "gcp: metadata server %s: no usable access_token, token_type Bearer and "
		     "expires_in in the response",
		     a->meta_host);
		goto out;
	}
	life = (time_t)exp->valuedouble;

	drop_token(a);
	memcpy(a->token, tok, strlen(tok) + 1);
	a->expiry = now + life;
	/* A short-lived token is renewed at half its life, not in a loop. */
	a->refresh_at =
		life > 2 * GCP_REFRESH_MARGIN ? a->expiry - GCP_REFRESH_MARGIN : now + life / 2;
	r = 0;
out:
	if (j) {
		cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "access_token");

		if (cJSON_IsString(t) && t->valuestring)
			OPENSSL_cleanse(t->valuestring, strlen(t->valuestring));
		cJSON_Delete(j);
	}
	wipe_free(b.p, b.cap);
	return r;
}

int gcp_auth_header_at(struct gcp_auth *a, time_t now, char *buf, size_t len, char *err,
		       size_t errlen)
{
	int r = 0;

	if (!a || !buf || !len) {
		errf(err, errlen, "gcp: bad arguments");
		return -EINVAL;
	}
	buf[0] = 0;
	if (a->kind == GCP_AUTH_EMULATOR)
		return 0;
	/* A clock stepped back by more than a minute re-signs too (iat in the future). */
	if (!a->token[0] || now >= a->refresh_at ||
	    (a->kind == GCP_AUTH_SERVICE_ACCOUNT && now + 60 < a->issued_at)) {
		if (a->kind == GCP_AUTH_SERVICE_ACCOUNT) {
			r = jwt_sign(a, now, err, errlen);
		} else if (now < a->retry_at) {
			r = -EIO;
			errf(err, errlen, "%s (retrying in %lds)", a->last_err,
			     (long)(a->retry_at - now));
		} else {
			r = metadata_fetch(a, now, a->last_err, sizeof(a->last_err));
			if (r < 0) {
				a->retry_at = now + RETRY_WAIT;
				errf(err, errlen, "%s", a->last_err);
			}
		}
		/* A failed refresh keeps a token that is still valid. */
		if (r < 0 && a->token[0] && now < a->expiry)
			r = 0;
		if (r < 0)
			return r;
	}
	if (strlen(a->token) + sizeof("Authorization: Bearer ") > len) {
		errf(err, errlen, "gcp: header buffer of %zu bytes too small", len);
		return -ENOSPC;
	}
	snprintf(buf, len, "Authorization: Bearer %s", a->token);
	return 0;
}

int gcp_auth_header(struct gcp_auth *a, char *buf, size_t len, char *err, size_t errlen)
{
	return gcp_auth_header_at(a, time(NULL), buf, len, err, errlen);
}

void gcp_auth_free(struct gcp_auth *a)
{
	if (!a)
		return;
	if (a->easy)
		curl_easy_cleanup(a->easy);
	EVP_PKEY_free(a->key);
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
}
