/* SPDX-License-Identifier: MIT */
/* aws: credentials, SigV4, JSON-protocol calls over libcurl, KMS Decrypt. */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "common/aws.h"

#define SIGV4_ALGO "AWS4-HMAC-SHA256"

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

/* Append to a NUL-terminated string of cap bytes, cutting what does not fit. */
static void appendf(char *buf, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void appendf(char *buf, size_t cap, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used + 1 >= cap)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, cap - used, fmt, ap);
	va_end(ap);
}

/* ---- a growing string whose old copies are wiped (it may hold secrets) ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

static int sb_reserve(struct sbuf *sb, size_t more)
{
	char *n;
	size_t cap;

	if (sb->oom)
		return -ENOMEM;
	if (sb->len + more + 1 <= sb->cap)
		return 0;
	cap = sb->cap ? sb->cap : 256;
	while (cap < sb->len + more + 1)
		cap *= 2;
	n = malloc(cap);
	if (!n) {
		sb->oom = 1;
		return -ENOMEM;
	}
	if (sb->p) {
		memcpy(n, sb->p, sb->len + 1);
		OPENSSL_cleanse(sb->p, sb->cap);
		free(sb->p);
	}
	sb->p = n;
	sb->cap = cap;
	return 0;
}

static void sb_addn(struct sbuf *sb, const void *s, size_t n)
{
	if (sb_reserve(sb, n) < 0)
		return;
	memcpy(sb->p + sb->len, s, n);
	sb->len += n;
	sb->p[sb->len] = 0;
}

static void sb_add(struct sbuf *sb, const char *s)
{
	sb_addn(sb, s, strlen(s));
}

static void sb_addc(struct sbuf *sb, char c)
{
	sb_addn(sb, &c, 1);
}

static void sb_free(struct sbuf *sb)
{
	if (sb->p) {
		OPENSSL_cleanse(sb->p, sb->cap);
		free(sb->p);
	}
	memset(sb, 0, sizeof(*sb));
}

static void hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = 0;
}

/* ---- credentials ---- */

static int copy_field(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		return -EINVAL;
	memcpy(dst, src, n + 1);
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

/* What one shared file held for the wanted profile. */
struct ini_found {
	int section; /* the section exists */
	int key;     /* aws_access_key_id was set in it */
	int secret;  /* aws_secret_access_key was set in it */
};

/*
 * Read the section named want (or want2, may be NULL) of an AWS shared file
 * into c. Returns 0 (see *found), -ENOENT when the file does not exist,
 * -EINVAL for a value too long, -errno when it cannot be read.
 */
static int ini_read(const char *path, const char *want, const char *want2, struct aws_creds *c,
		    struct ini_found *found, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	int in = 0, ret = 0;

	memset(found, 0, sizeof(*found));
	if (!f) {
		ret = -errno;
		if (ret != -ENOENT)
			errf(err, errlen, "cannot read %s: %s", path, strerror(-ret));
		return ret;
	}
	while (getline(&line, &cap, f) >= 0) {
		char *s, *eq, *key, *val;
		int r = 0;

		/* Indented lines are sub-settings (e.g. "s3 =\n  addressing_style = ..."). */
		if (line[0] == ' ' || line[0] == '\t')
			continue;
		s = trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *end = strrchr(s, ']'), *name;

			if (!end) {
				in = 0;
				continue;
			}
			*end = 0;
			name = trim(s + 1);
			/* "[profile  x]" is "[profile x]". */
			if (!strncmp(name, "profile", 7) && (name[7] == ' ' || name[7] == '\t')) {
				char *rest = trim(name + 7);

				memmove(name + 8, rest, strlen(rest) + 1);
				name[7] = ' ';
			}
			in = !strcmp(name, want) || (want2 && !strcmp(name, want2));
			found->section |= in;
			continue;
		}
		if (!in || !(eq = strchr(s, '=')))
			continue;
		*eq = 0;
		key = trim(s);
		val = trim(eq + 1);
		if (!strcasecmp(key, "aws_access_key_id")) {
			r = copy_field(c->access_key, sizeof(c->access_key), val);
			found->key = 1;
		} else if (!strcasecmp(key, "aws_secret_access_key")) {
			r = copy_field(c->secret_key, sizeof(c->secret_key), val);
			found->secret = 1;
		} else if (!strcasecmp(key, "aws_session_token") ||
			   !strcasecmp(key, "aws_security_token")) {
			r = copy_field(c->session_token, sizeof(c->session_token), val);
		}
		if (r < 0) {
			errf(err, errlen, "%s: [%s] %s is too long", path, want, key);
			ret = r;
			break;
		}
	}
	if (!ret && ferror(f)) {
		ret = -EIO;
		errf(err, errlen, "cannot read %s: read error", path);
	}
	if (line) {
		OPENSSL_cleanse(line, cap);
		free(line);
	}
	fclose(f);
	/* An empty value counts as not set. */
	found->key = found->key && c->access_key[0];
	found->secret = found->secret && c->secret_key[0];
	return ret;
}

/* Path of a shared file: $env, else $HOME/.aws/<name>. Returns 0 or -ENOENT (no HOME). */
static int shared_path(const char *env, const char *name, char *buf, size_t len)
{
	const char *p = getenv(env), *home;
	int n;

	if (p && *p) {
		n = snprintf(buf, len, "%s", p);
	} else {
		home = getenv("HOME");
		if (!home || !*home) {
			struct passwd *pw = getpwuid(getuid());

			home = pw ? pw->pw_dir : NULL;
		}
		if (!home)
			return -ENOENT;
		n = snprintf(buf, len, "%s/.aws/%s", home, name);
	}
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int aws_creds_load(struct aws_creds *ret, const char *profile, char *err, size_t errlen)
{
	const char *name, *ak, *sk, *tok;
	char path[4096], tried[1024], section[300];
	const char *why;
	struct ini_found fd;
	int explicit, r;

	if (!ret)
		return -EINVAL;
	OPENSSL_cleanse(ret, sizeof(*ret));
	explicit = profile && *profile;
	name = explicit ? profile : getenv("AWS_PROFILE");
	if (!name || !*name)
		name = "default";
	if (strlen(name) > 256) {
		errf(err, errlen, "AWS profile name too long");
		return -EINVAL;
	}

	/* 1. The environment, unless a profile was asked for by name. */
	if (explicit) {
		snprintf(tried, sizeof(tried), "environment (skipped: profile '%s' given)", name);
	} else {
		ak = getenv("AWS_ACCESS_KEY_ID");
		sk = getenv("AWS_SECRET_ACCESS_KEY");
		tok = getenv("AWS_SESSION_TOKEN");
		if (ak && *ak && sk && *sk) {
			if (copy_field(ret->access_key, sizeof(ret->access_key), ak) < 0 ||
			    copy_field(ret->secret_key, sizeof(ret->secret_key), sk) < 0 ||
			    copy_field(ret->session_token, sizeof(ret->session_token),
				       tok ? tok : "") < 0) {
				errf(err, errlen,
				     "AWS credentials in the environment are too long (key and "
				     "secret at most 127 bytes, session token 2047)");
				r = -EINVAL;
				goto fail;
			}
			return 0;
		}
		if ((ak && *ak) || (sk && *sk)) {
			errf(err, errlen, "%s is set but %s is not",
			     ak && *ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			     ak && *ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
			return -EINVAL;
		}
		snprintf(tried, sizeof(tried), "environment (AWS_ACCESS_KEY_ID not set)");
	}

	/* 2. The shared credentials file, [NAME]; 3. the config file, [profile NAME]. */
	for (int i = 0; i < 2; i++) {
		const char *env = i ? "AWS_CONFIG_FILE" : "AWS_SHARED_CREDENTIALS_FILE";
		const char *file = i ? "config" : "credentials";

		if (i == 0)
			snprintf(section, sizeof(section), "%s", name);
		else
			snprintf(section, sizeof(section), "profile %s", name);
		if (shared_path(env, file, path, sizeof(path)) < 0) {
			appendf(tried, sizeof(tried), ", ~/.aws/%s (no HOME)", file);
			continue;
		}
		r = ini_read(path, section, i && !strcmp(name, "default") ? "default" : NULL, ret,
			     &fd, err, errlen);
		if (r < 0 && r != -ENOENT)
			goto fail;
		if (fd.key && fd.secret) {
			/* The token belongs to the file it came from: */
			return 0;
		}
		if (fd.key != fd.secret) {
			errf(err, errlen, "%s: [%s] has %s but no %s", path, section,
			     fd.key ? "aws_access_key_id" : "aws_secret_access_key",
			     fd.key ? "aws_secret_access_key" : "aws_access_key_id");
			r = -EINVAL;
			goto fail;
		}
		OPENSSL_cleanse(ret, sizeof(*ret)); /* nothing half-read carries over */
		why = r == -ENOENT  ? "no such file"
		      : !fd.section ? "no such section"
				    : "no aws_access_key_id";
		appendf(tried, sizeof(tried), ", %s [%s] (%s)", path, section, why);
	}
	errf(err, errlen,
	     "no AWS credentials for profile '%s': tried %s; web identity, ECS and instance "
	     "metadata (IMDS) are not supported",
	     name, tried);
	return -ENOENT;
fail:
	OPENSSL_cleanse(ret, sizeof(*ret));
	return r;
}

/* ---- SigV4 ---- */

static int unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

static void sb_uri_encode(struct sbuf *sb, const char *s, size_t n, int keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (unreserved(c) || (keep_slash && c == '/')) {
			sb_addc(sb, (char)c);
		} else {
			char e[3] = {'%', digits[c >> 4], digits[c & 15]};

			sb_addn(sb, e, 3);
		}
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode s[0..n) then encode it strictly (the canonical form of a query part). */
static void sb_query_part(struct sbuf *sb, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		}
		sb_uri_encode(sb, &c, 1, 0);
	}
}

struct kv {
	char *k, *v;
	size_t idx;
};

static int kv_cmp(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;
	int c = strcmp(x->k, y->k);

	if (c)
		return c;
	if (x->v && y->v && (c = strcmp(x->v, y->v)))
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void kv_free(struct kv *a, size_t n)
{
	for (size_t i = 0; a && i < n; i++) {
		if (a[i].k)
			OPENSSL_cleanse(a[i].k, strlen(a[i].k));
		if (a[i].v)
			OPENSSL_cleanse(a[i].v, strlen(a[i].v));
		free(a[i].k);
		free(a[i].v);
	}
	free(a);
}

/* Canonical query string: parts decoded, encoded strictly, sorted by name then value. */
static int canonical_query(struct sbuf *out, const char *q)
{
	struct kv *a = NULL;
	size_t n = 0, max = 1;
	int ret = 0;

	if (!q || !*q)
		return 0;
	for (const char *p = q; *p; p++)
		max += *p == '&';
	a = calloc(max, sizeof(*a));
	if (!a)
		return -ENOMEM;
	for (const char *p = q; *p;) {
		const char *end = strchr(p, '&'), *eq;
		size_t len = end ? (size_t)(end - p) : strlen(p);
		struct sbuf k = {0}, v = {0};

		if (len) {
			eq = memchr(p, '=', len);
			sb_query_part(&k, p, eq ? (size_t)(eq - p) : len);
			if (eq)
				sb_query_part(&v, eq + 1, len - (size_t)(eq - p) - 1);
			sb_add(&k, "");
			sb_add(&v, "");
			if (k.oom || v.oom) {
				sb_free(&k);
				sb_free(&v);
				ret = -ENOMEM;
				goto out;
			}
			a[n].k = k.p;
			a[n].v = v.p;
			a[n].idx = n;
			n++;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	qsort(a, n, sizeof(*a), kv_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_addc(out, '&');
		sb_add(out, a[i].k);
		sb_addc(out, '=');
		sb_add(out, a[i].v);
	}
	ret = out->oom ? -ENOMEM : 0;
out:
	kv_free(a, n);
	return ret;
}

/* "Name:  a   b " -> name "name", value "a b". Returns 0, -EINVAL or -ENOMEM. */
static int header_parse(const char *h, struct kv *ret, size_t idx)
{
	const char *colon = strchr(h, ':'), *v;
	size_t nlen;
	struct sbuf val = {0};
	int space = 0;

	if (!colon || colon == h)
		return -EINVAL;
	nlen = (size_t)(colon - h);
	while (nlen && (h[nlen - 1] == ' ' || h[nlen - 1] == '\t'))
		nlen--;
	if (!nlen)
		return -EINVAL;
	ret->k = strndup(h, nlen);
	if (!ret->k)
		return -ENOMEM;
	for (size_t i = 0; i < nlen; i++)
		ret->k[i] = (char)tolower((unsigned char)ret->k[i]);
	sb_add(&val, "");
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') {
			space = 1;
			continue;
		}
		if (space)
			sb_addc(&val, ' ');
		space = 0;
		sb_addc(&val, *v);
	}
	if (val.oom) {
		sb_free(&val);
		return -ENOMEM;
	}
	ret->v = val.p;
	ret->idx = idx;
	return 0;
}

static int has_header(const struct kv *a, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(a[i].k, name))
			return 1;
	return 0;
}

static int add_header(struct kv *a, size_t *n, const char *name, const char *value)
{
	struct sbuf h = {0};
	int ret;

	sb_add(&h, name);
	sb_add(&h, ": ");
	sb_add(&h, value);
	if (h.oom)
		return -ENOMEM;
	ret = header_parse(h.p, &a[*n], *n);
	sb_free(&h);
	if (ret == 0)
		(*n)++;
	return ret;
}

static int amz_date_valid(const char *d)
{
	if (!d || strlen(d) != AWS_AMZ_DATE_LEN || d[8] != 'T' || d[15] != 'Z')
		return 0;
	for (int i = 0; i < 15; i++)
		if (i != 8 && !isdigit((unsigned char)d[i]))
			return 0;
	return 1;
}

static int hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int olen = 32;

	return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out,
		    &olen)
		       ? 0
		       : -EIO;
}

int aws_sigv4_sign(const struct aws_creds *c, const char *region, const char *service,
		   const char *method, const char *host, const char *path, const char *query,
		   const char *const *headers, const void *body, size_t body_len,
		   const char *amz_date, char *ret_authorization, size_t len)
{
	struct sbuf cr = {0}, sts = {0}, signed_names = {0}, key = {0};
	unsigned char digest[32], k1[32], k2[32];
	char payload_hex[65], cr_hex[65], sig_hex[65], date8[9];
	struct kv *h = NULL;
	size_t nh = 0, max = 3;
	int ret, n;

	if (!c || !c->access_key[0] || !c->secret_key[0] || !region || !*region || !service ||
	    !*service || !method || !*method || !host || !path || path[0] != '/' ||
	    (!body && body_len) || !amz_date_valid(amz_date) || !ret_authorization)
		return -EINVAL;
	for (const char *const *p = headers; p && *p; p++)
		max++;
	h = calloc(max, sizeof(*h));
	if (!h)
		return -ENOMEM;
	for (const char *const *p = headers; p && *p; p++) {
		ret = header_parse(*p, &h[nh], nh);
		if (ret < 0)
			goto out;
		nh++;
	}
	ret = 0;
	if (!has_header(h, nh, "host"))
		ret = add_header(h, &nh, "host", host);
	if (!ret && !has_header(h, nh, "x-amz-date"))
		ret = add_header(h, &nh, "x-amz-date", amz_date);
	if (!ret && c->session_token[0] && !has_header(h, nh, "x-amz-security-token"))
		ret = add_header(h, &nh, "x-amz-security-token", c->session_token);
	if (ret < 0)
		goto out;
	/* Sorted by name; a repeated name keeps its order (values joined by ','). */
	for (size_t i = 0; i < nh; i++)
		h[i].idx = i;
	{
		char **vals = malloc(nh * sizeof(*vals));

		if (!vals) {
			ret = -ENOMEM;
			goto out;
		}
		/* Sort on name and original position only. */
		for (size_t i = 0; i < nh; i++) {
			vals[i] = h[i].v;
			h[i].v = NULL;
		}
		qsort(h, nh, sizeof(*h), kv_cmp);
		for (size_t i = 0; i < nh; i++)
			h[i].v = vals[h[i].idx];
		free(vals);
	}

	sb_add(&cr, method);
	sb_addc(&cr, '\n');
	sb_uri_encode(&cr, path, strlen(path), 1);
	sb_addc(&cr, '\n');
	ret = canonical_query(&cr, query);
	if (ret < 0)
		goto out;
	sb_addc(&cr, '\n');
	for (size_t i = 0; i < nh; i++) {
		if (i && !strcmp(h[i].k, h[i - 1].k)) {
			/* Same name as the previous line: continue its value. */
			cr.len--; /* the '\n' */
			sb_addc(&cr, ',');
		} else {
			sb_add(&cr, h[i].k);
			sb_addc(&cr, ':');
			if (i)
				sb_addc(&signed_names, ';');
			sb_add(&signed_names, h[i].k);
		}
		sb_add(&cr, h[i].v);
		sb_addc(&cr, '\n');
	}
	sb_addc(&cr, '\n');
	sb_add(&signed_names, "");
	sb_add(&cr, signed_names.p);
	sb_addc(&cr, '\n');
	SHA256(body ? body : (const void *)"", body_len, digest);
	hex(digest, 32, payload_hex);
	sb_add(&cr, payload_hex);
	if (cr.oom || signed_names.oom) {
		ret = -ENOMEM;
		goto out;
	}

	SHA256((const unsigned char *)cr.p, cr.len, digest);
	hex(digest, 32, cr_hex);
	memcpy(date8, amz_date, 8);
	date8[8] = 0;
	sb_add(&sts, SIGV4_ALGO "\n");
	sb_add(&sts, amz_date);
	sb_addc(&sts, '\n');
	sb_add(&sts, date8);
	sb_addc(&sts, '/');
	sb_add(&sts, region);
	sb_addc(&sts, '/');
	sb_add(&sts, service);
	sb_add(&sts, "/aws4_request\n");
	sb_add(&sts, cr_hex);

	sb_add(&key, "AWS4");
	sb_add(&key, c->secret_key);
	if (sts.oom || key.oom) {
		ret = -ENOMEM;
		goto out;
	}
	if (hmac(key.p, key.len, date8, k1) || hmac(k1, 32, region, k2) ||
	    hmac(k2, 32, service, k1) || hmac(k1, 32, "aws4_request", k2) ||
	    hmac(k2, 32, sts.p, digest)) {
		ret = -EIO;
		goto out;
	}
	hex(digest, 32, sig_hex);
	n = snprintf(ret_authorization, len,
		     SIGV4_ALGO " Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
				"Signature=%s",
		     c->access_key, date8, region, service, signed_names.p, sig_hex);
	ret = n < 0 || (size_t)n >= len ? -ENOSPC : 0;
out:
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	kv_free(h, nh);
	sb_free(&cr);
	sb_free(&sts);
	sb_free(&signed_names);
	sb_free(&key);
	return ret;
}

void aws_amz_date(uint64_t realtime_ns, char ret[AWS_AMZ_DATE_LEN + 1])
{
	time_t t = (time_t)(realtime_ns / 1000000000ull);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(ret, AWS_AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

/* ---- client and JSON requests ---- */

struct aws_client {
	char region[64];
	char *endpoint; /* NULL: https://<service>.<region>.amazonaws.com */
	struct aws_creds creds;
	CURL *easy;
};

struct aws_request {
	char service[32];
	char *url;
	char *body;
	size_t body_len;
	struct curl_slist *headers;
	/* the response */
	struct sbuf resp;
	int too_large;
	char error_type[128]; /* from x-amzn-ErrorType */
	char curl_err[CURL_ERROR_SIZE];
};

static int name_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (!n || n >= max)
		return 0;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-')
			return 0;
	return 1;
}

struct aws_client *aws_client_new(const char *region, const char *endpoint,
				  const struct aws_creds *creds)
{
	struct aws_client *cl;

	if (!name_ok(region, sizeof(cl->region)) || !creds) {
		errno = EINVAL;
		return NULL;
	}
	if (endpoint) {
		const char *auth = !strncmp(endpoint, "http://", 7)    ? endpoint + 7
				   : !strncmp(endpoint, "https://", 8) ? endpoint + 8
								       : NULL;
		const char *slash = auth ? strchr(auth, '/') : NULL;

		/* scheme://host[:port][/]: the JSON protocol posts to "/". */
		if (!auth || !*auth || *auth == '/' || strpbrk(auth, "@?# ") ||
		    (slash && slash[1])) {
			errno = EINVAL;
			return NULL;
		}
	}
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		goto nomem;
	snprintf(cl->region, sizeof(cl->region), "%s", region);
	if (endpoint) {
		cl->endpoint = strdup(endpoint);
		if (!cl->endpoint)
			goto nomem;
		if (cl->endpoint[strlen(cl->endpoint) - 1] == '/')
			cl->endpoint[strlen(cl->endpoint) - 1] = 0;
	}
	cl->creds = *creds;
	cl->easy = curl_easy_init();
	if (!cl->easy)
		goto nomem;
	return cl;
nomem:
	aws_client_free(cl);
	errno = ENOMEM;
	return NULL;
}

void aws_client_free(struct aws_client *cl)
{
	if (!cl)
		return;
	if (cl->easy)
		curl_easy_cleanup(cl->easy);
	free(cl->endpoint);
	OPENSSL_cleanse(cl, sizeof(*cl));
	free(cl);
}

void aws_request_free(struct aws_request *rq)
{
	if (!rq)
		return;
	/* The headers carry the session token and the signature. */
	for (struct curl_slist *l = rq->headers; l; l = l->next)
		OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(rq->headers);
	free(rq->url);
	if (rq->body)
		OPENSSL_cleanse(rq->body, rq->body_len);
	free(rq->body);
	sb_free(&rq->resp);
	free(rq);
}

static int slist_add(struct curl_slist **l, const char *name, const char *value)
{
	struct sbuf h = {0};
	struct curl_slist *n;

	sb_add(&h, name);
	sb_add(&h, ": ");
	sb_add(&h, value);
	if (h.oom)
		return -ENOMEM;
	n = curl_slist_append(*l, h.p);
	sb_free(&h);
	if (!n)
		return -ENOMEM;
	*l = n;
	return 0;
}

int aws_json_request_new(struct aws_client *cl, const char *service, const char *target,
			 const char *json_body, struct aws_request **ret, char *err, size_t errlen)
{
	const char *ctype, *host, *slash;
	char date[AWS_AMZ_DATE_LEN + 1], auth[AWS_AUTHORIZATION_MAX];
	char ctype_h[64], target_h[160], base[300];
	const char *signed_h[] = {ctype_h, target_h, NULL};
	struct aws_request *rq;
	char host_buf[256];
	struct timespec ts;
	int r;

	if (!cl || !ret || !name_ok(service, sizeof(rq->service)) || !target || !*target ||
	    strlen(target) > 128 || strpbrk(target, "\r\n")) {
		errf(err, errlen, "aws: bad request arguments");
		return -EINVAL;
	}
	*ret = NULL;
	if (!json_body)
		json_body = "{}";
	ctype = !strcmp(service, "kms")	  ? "application/x-amz-json-1.1"
		: !strcmp(service, "sqs") ? "application/x-amz-json-1.0"
					  : "application/json";
	if (cl->endpoint)
		snprintf(base, sizeof(base), "%s", cl->endpoint);
	else
		snprintf(base, sizeof(base), "https://%s.%s.amazonaws.com", service, cl->region);
	host = strstr(base, "://") + 3;
	slash = strchr(host, '/');
	snprintf(host_buf, sizeof(host_buf), "%.*s",
		 slash ? (int)(slash - host) : (int)strlen(host), host);
	snprintf(ctype_h, sizeof(ctype_h), "Content-Type: %s", ctype);
	snprintf(target_h, sizeof(target_h), "X-Amz-Target: %s", target);
	clock_gettime(CLOCK_REALTIME, &ts);
	aws_amz_date((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec, date);

	rq = calloc(1, sizeof(*rq));
	if (!rq)
		goto nomem;
	snprintf(rq->service, sizeof(rq->service), "%s", service);
	rq->body_len = strlen(json_body);
	rq->body = strdup(json_body);
	if (!rq->body || asprintf(&rq->url, "%s/", base) < 0) {
		rq->url = NULL;
		goto nomem;
	}
	r = aws_sigv4_sign(&cl->creds, cl->region, service, "POST", host_buf, "/", NULL, signed_h,
			   rq->body, rq->body_len, date, auth, sizeof(auth));
	if (r < 0) {
		errf(err, errlen, "%s: cannot sign the request: %s", service, strerror(-r));
		aws_request_free(rq);
		return r;
	}
	rq->headers = curl_slist_append(NULL, ctype_h);
	if (!rq->headers || !curl_slist_append(rq->headers, target_h) ||
	    slist_add(&rq->headers, "Host", host_buf) ||
	    slist_add(&rq->headers, "X-Amz-Date", date) ||
	    (cl->creds.session_token[0] &&
	     slist_add(&rq->headers, "X-Amz-Security-Token", cl->creds.session_token)) ||
	    slist_add(&rq->headers, "Authorization", auth) ||
	    !curl_slist_append(rq->headers, "Expect:")) /* no 100-continue round trip */
		goto nomem;
	OPENSSL_cleanse(auth, sizeof(auth));
	*ret = rq;
	return 0;
nomem:
	OPENSSL_cleanse(auth, sizeof(auth));
	aws_request_free(rq);
	errf(err, errlen, "%s: out of memory", service);
	return -ENOMEM;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct aws_request *rq = userdata;
	size_t n = size * nmemb;

	if (rq->resp.len + n > AWS_RESPONSE_MAX) {
		rq->too_large = 1;
		return 0;
	}
	sb_addn(&rq->resp, data, n);
	return rq->resp.oom ? 0 : n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct aws_request *rq = userdata;
	size_t n = size * nmemb;
	static const char name[] = "x-amzn-errortype:";

	if (n > sizeof(name) && !strncasecmp(data, name, sizeof(name) - 1)) {
		const char *v = data + sizeof(name) - 1, *end = data + n;
		size_t len;

		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		len = (size_t)(end - v);
		/* "Type:http://internal.amazon.com/..." -> "Type" */
		for (size_t i = 0; i < len; i++)
			if (v[i] == ':' || v[i] == '\r' || v[i] == '\n') {
				len = i;
				break;
			}
		snprintf(rq->error_type, sizeof(rq->error_type), "%.*s", (int)len, v);
	}
	return n;
}

int aws_request_attach(struct aws_request *rq, CURL *easy)
{
	CURLcode c = CURLE_OK;

	if (!rq || !easy)
		return -EINVAL;
	sb_free(&rq->resp);
	rq->too_large = 0;
	rq->error_type[0] = 0;
	rq->curl_err[0] = 0;
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (c == CURLE_OK)                                                                 \
			c = curl_easy_setopt(easy, opt, val);                                      \
	} while (0)
	SET(CURLOPT_URL, rq->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDS, rq->body);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
	SET(CURLOPT_HTTPHEADER, rq->headers);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, rq);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, rq);
	SET(CURLOPT_ERRORBUFFER, rq->curl_err);
	SET(CURLOPT_PRIVATE, rq);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	SET(CURLOPT_TIMEOUT_MS, 60000L);
#undef SET
	return c == CURLE_OK ? 0 : -EIO;
}

/* Copy s into dst (cap bytes) as one printable line. */
static void one_line(char *dst, size_t cap, const char *s, size_t n)
{
	size_t j = 0;

	for (size_t i = 0; i < n && j + 1 < cap; i++)
		dst[j++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
	dst[j] = 0;
}

/* The text between <tag> and </tag> in an XML error body (one_line()d). */
static void xml_field(const char *body, const char *tag, char *dst, size_t cap)
{
	char open[32], close[32];
	const char *a, *b;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	a = strstr(body, open);
	if (!a)
		return;
	a += strlen(open);
	b = strstr(a, close);
	if (b)
		one_line(dst, cap, a, (size_t)(b - a));
}

static int auth_error(long status, const char *type)
{
	static const char *const types[] = {
		"AccessDenied",
		"AccessDeniedException",
		"UnrecognizedClientException",
		"InvalidSignatureException",
		"SignatureDoesNotMatch",
		"IncompleteSignature",
		"IncompleteSignatureException",
		"InvalidClientTokenId",
		"MissingAuthenticationToken",
		"MissingAuthenticationTokenException",
		"ExpiredToken",
		"ExpiredTokenException",
		"NotAuthorized",
		"AuthFailure",
		"KMSAccessDeniedException",
	};

	if (status == 401 || status == 403)
		return 1;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(type, types[i]))
			return 1;
	return 0;
}

int aws_request_finish(struct aws_request *rq, CURL *easy, CURLcode code, char **ret_body,
		       long *ret_http_status, char *err, size_t errlen)
{
	char type[128] = "", msg[512] = "";
	const char *body;
	long status = 0;
	cJSON *j;

	if (ret_body)
		*ret_body = NULL;
	if (ret_http_status)
		*ret_http_status = 0;
	if (!rq || !easy)
		return -EINVAL;
	if (code != CURLE_OK) {
		if (rq->too_large)
			errf(err, errlen, "%s: response larger than %u bytes", rq->service,
			     AWS_RESPONSE_MAX);
		else if (rq->resp.oom)
			errf(err, errlen, "%s: out of memory reading the response", rq->service);
		else
			errf(err, errlen, "%s: %s%s%s", rq->service, curl_easy_strerror(code),
			     rq->curl_err[0] ? ": " : "", rq->curl_err);
		return rq->resp.oom ? -ENOMEM : -EIO;
	}
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	if (ret_http_status)
		*ret_http_status = status;
	sb_add(&rq->resp, ""); /* NUL-terminated even when empty */
	if (rq->resp.oom) {
		errf(err, errlen, "%s: out of memory reading the response", rq->service);
		return -ENOMEM;
	}
	if (status >= 200 && status <= 299) {
		if (ret_body) {
			*ret_body = rq->resp.p;
			memset(&rq->resp, 0, sizeof(rq->resp));
		}
		return 0;
	}

	body = rq->resp.p;
	j = cJSON_ParseWithLength(body, rq->resp.len);
	if (j) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "__type");
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");

		if (!cJSON_IsString(m))
			m = cJSON_GetObjectItemCaseSensitive(j, "Message");
		if (cJSON_IsString(t)) {
			/* "com.amazonaws.kms#AccessDeniedException" -> "AccessDeniedException" */
			const char *s = strrchr(t->valuestring, '#');

			s = s ? s + 1 : t->valuestring;
			one_line(type, sizeof(type), s, strcspn(s, ":"));
		}
		if (cJSON_IsString(m))
			one_line(msg, sizeof(msg), m->valuestring, strlen(m->valuestring));
		cJSON_Delete(j);
	} else {
		xml_field(body, "Code", type, sizeof(type));
		xml_field(body, "Message", msg, sizeof(msg));
	}
	if (!type[0] && rq->error_type[0])
		one_line(type, sizeof(type), rq->error_type, strlen(rq->error_type));
	if (!type[0])
		snprintf(type, sizeof(type), "HTTP error");
	errf(err, errlen, "%s: %s%s%s (HTTP %ld)", rq->service, type, msg[0] ? ": " : "", msg,
	     status);
	return status >= 400 && status <= 499 && auth_error(status, type) ? -EACCES : -EIO;
}

int aws_json_call(struct aws_client *cl, const char *service, const char *target,
		  const char *json_body, char **ret_body, long *ret_http_status, char *err,
		  size_t errlen)
{
	struct aws_request *rq;
	CURLcode code;
	int ret;

	if (ret_body)
		*ret_body = NULL;
	if (ret_http_status)
		*ret_http_status = 0;
	ret = aws_json_request_new(cl, service, target, json_body, &rq, err, errlen);
	if (ret < 0)
		return ret;
	curl_easy_reset(cl->easy); /* keeps live connections */
	ret = aws_request_attach(rq, cl->easy);
	if (ret < 0) {
		errf(err, errlen, "%s: cannot set up the transfer", service);
		aws_request_free(rq);
		return ret;
	}
	code = curl_easy_perform(cl->easy);
	ret = aws_request_finish(rq, cl->easy, code, ret_body, ret_http_status, err, errlen);
	aws_request_free(rq);
	return ret;
}

/* ---- KMS ---- */

static void free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

int aws_kms_decrypt(struct aws_client *cl, const void *blob, size_t blob_len, const char *key_id,
		    unsigned char *ret_plain, size_t cap, size_t *ret_len, char *err, size_t errlen)
{
	char *b64 = NULL, *req = NULL, *resp = NULL;
	unsigned char *tmp = NULL;
	size_t tmp_cap = 0, slen;
	cJSON *in = NULL, *out = NULL;
	cJSON *p;
	int ret, n;

	if (!cl || !blob || !blob_len || blob_len > AWS_KMS_BLOB_MAX || !ret_len ||
	    (!ret_plain && cap)) {
		errf(err, errlen, "kms: bad decrypt arguments");
		return -EINVAL;
	}
	*ret_len = 0;
	b64 = malloc(4 * ((blob_len + 2) / 3) + 1);
	in = cJSON_CreateObject();
	if (!b64 || !in)
		goto nomem;
	EVP_EncodeBlock((unsigned char *)b64, blob, (int)blob_len);
	if (!cJSON_AddStringToObject(in, "CiphertextBlob", b64) ||
	    (key_id && !cJSON_AddStringToObject(in, "KeyId", key_id)))
		goto nomem;
	req = cJSON_PrintUnformatted(in);
	if (!req)
		goto nomem;
	ret = aws_json_call(cl, "kms", "TrentService.Decrypt", req, &resp, NULL, err, errlen);
	if (ret < 0)
		goto out;

	out = cJSON_Parse(resp);
	p = cJSON_GetObjectItemCaseSensitive(out, "Plaintext");
	if (!cJSON_IsString(p) || !(slen = strlen(p->valuestring)) || slen % 4) {
		errf(err, errlen, "kms: Decrypt response without a valid Plaintext");
		ret = -EPROTO;
		goto out;
	}
	tmp_cap = slen / 4 * 3;
	tmp = malloc(tmp_cap);
	if (!tmp)
		goto nomem;
	n = EVP_DecodeBlock(tmp, (const unsigned char *)p->valuestring, (int)slen);
	if (n < 0) {
		errf(err, errlen, "kms: Decrypt response: Plaintext is not base64");
		ret = -EPROTO;
		goto out;
	}
	/* EVP_DecodeBlock() counts the padding as zero bytes. */
	n -= (p->valuestring[slen - 1] == '=') + (p->valuestring[slen - 2] == '=');
	if ((size_t)n > cap) {
		errf(err, errlen, "kms: plaintext is %d bytes, the buffer holds %zu", n, cap);
		ret = -EMSGSIZE;
		goto out;
	}
	memcpy(ret_plain, tmp, (size_t)n);
	*ret_len = (size_t)n;
	ret = 0;
	goto out;
nomem:
	errf(err, errlen, "kms: out of memory");
	ret = -ENOMEM;
out:
	if (out) {
		p = cJSON_GetObjectItemCaseSensitive(out, "Plaintext");
		if (cJSON_IsString(p))
			OPENSSL_cleanse(p->valuestring, strlen(p->valuestring));
		cJSON_Delete(out);
	}
	if (tmp) {
		OPENSSL_cleanse(tmp, tmp_cap);
		free(tmp);
	}
	free_secret(resp);
	cJSON_free(req);
	cJSON_Delete(in);
	free(b64);
	return ret;
}
