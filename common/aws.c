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

/* The web identity settings of a config-file profile. */
struct wi_conf {
	char token_file[1024];
	char role_arn[2048];
	char session_name[128];
};

/* What one shared file held for the wanted profile. */
struct ini_found {
	int section; /* the section exists */
	int key;     /* aws_access_key_id was set in it */
	int secret;  /* aws_secret_access_key was set in it */
};

/*
 * Read the section named want (or want2, may be NULL) of an AWS shared file
 * into c (and the web identity keys into wi, when not NULL). Returns 0 (see *found), -ENOENT when
 * the file does not exist, -EINVAL for a value too long, -errno when it cannot be read.
 */
static int ini_read(const char *path, const char *want, const char *want2, struct aws_creds *c,
		    struct wi_conf *wi, struct ini_found *found, char *err, size_t errlen)
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
		} else if (wi && !strcasecmp(key, "web_identity_token_file")) {
			r = copy_field(wi->token_file, sizeof(wi->token_file), val);
		} else if (wi && !strcasecmp(key, "role_arn")) {
			r = copy_field(wi->role_arn, sizeof(wi->role_arn), val);
		} else if (wi && !strcasecmp(key, "role_session_name")) {
			r = copy_field(wi->session_name, sizeof(wi->session_name), val);
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

/* The profile name: profile if given (*explicit = 1), else $AWS_PROFILE, else "default". */
static const char *profile_name(const char *profile, int *explicit)
{
	const char *name;

	*explicit = profile && *profile;
	name = *explicit ? profile : getenv("AWS_PROFILE");
	return name && *name ? name : "default";
}

/*
 * Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN.
 * Returns 1 (found, *ret filled), 0 (not set; tried says so) or -EINVAL.
 */
static int creds_env(struct aws_creds *ret, char *tried, size_t tlen, char *err, size_t errlen)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *tok = getenv("AWS_SESSION_TOKEN");

	if (ak && *ak && sk && *sk) {
		if (copy_field(ret->access_key, sizeof(ret->access_key), ak) < 0 ||
		    copy_field(ret->secret_key, sizeof(ret->secret_key), sk) < 0 ||
		    copy_field(ret->session_token, sizeof(ret->session_token), tok ? tok : "") <
			    0) {
			OPENSSL_cleanse(ret, sizeof(*ret));
			errf(err, errlen,
			     "AWS credentials in the environment are too long (key and "
			     "secret at most 127 bytes, session token 2047)");
			return -EINVAL;
		}
		return 1;
	}
	if ((ak && *ak) || (sk && *sk)) {
		errf(err, errlen, "%s is set but %s is not",
		     ak && *ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
		     ak && *ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -EINVAL;
	}
	appendf(tried, tlen, "%senvironment (AWS_ACCESS_KEY_ID not set)", tried[0] ? ", " : "");
	return 0;
}

/*
 * The shared credentials file, [NAME]; then the config file, [profile NAME].
 * Returns 1 (found), 0 (not there; tried lists why) or -errno.
 */
static int creds_files(const char *name, struct aws_creds *ret, char *tried, size_t tlen, char *err,
		       size_t errlen)
{
	char path[4096], section[300];
	struct ini_found fd;
	const char *why;
	int r;

	for (int i = 0; i < 2; i++) {
		const char *env = i ? "AWS_CONFIG_FILE" : "AWS_SHARED_CREDENTIALS_FILE";
		const char *file = i ? "config" : "credentials";

		if (i == 0)
			snprintf(section, sizeof(section), "%s", name);
		else
			snprintf(section, sizeof(section), "profile %s", name);
		if (shared_path(env, file, path, sizeof(path)) < 0) {
			appendf(tried, tlen, ", ~/.aws/%s (no HOME)", file);
			continue;
		}
		r = ini_read(path, section, i && !strcmp(name, "default") ? "default" : NULL, ret,
			     NULL, &fd, err, errlen);
		if (r < 0 && r != -ENOENT)
			goto fail;
		if (fd.key && fd.secret) {
			/* The token belongs to the file it came from: */
			return 1;
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
		appendf(tried, tlen, ", %s [%s] (%s)", path, section, why);
	}
	return 0;
fail:
	OPENSSL_cleanse(ret, sizeof(*ret));
	return r;
}

int aws_creds_load(struct aws_creds *ret, const char *profile, char *err, size_t errlen)
{
	char tried[1024] = "";
	const char *name;
	int explicit, r;

	if (!ret)
		return -EINVAL;
	OPENSSL_cleanse(ret, sizeof(*ret));
	name = profile_name(profile, &explicit);
	if (strlen(name) > 256) {
		errf(err, errlen, "AWS profile name too long");
		return -EINVAL;
	}
	/* 1. The environment, unless a profile was asked for by name. */
	if (explicit) {
		snprintf(tried, sizeof(tried), "environment (skipped: profile '%s' given)", name);
	} else {
		r = creds_env(ret, tried, sizeof(tried), err, errlen);
		if (r)
			return r < 0 ? r : 0;
	}
	/* 2. The shared credentials file, [NAME]; 3. the config file, [profile NAME]. */
	r = creds_files(name, ret, tried, sizeof(tried), err, errlen);
	if (r)
		return r < 0 ? r : 0;
	errf(err, errlen,
	     "no AWS credentials for profile '%s': tried %s; web identity, ECS and instance "
	     "metadata (IMDS) are only looked at by aws_creds_provider_get()",
	     name, tried);
	return -ENOENT;
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
	struct aws_creds_provider *prov; /* not owned; NULL: creds are fixed */
	int anonymous;			 /* unsigned requests (STS web identity) */
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

/* scheme://host[:port][/]: the JSON and query protocols post to "/". */
static int endpoint_ok(const char *endpoint)
{
	const char *auth = !strncmp(endpoint, "http://", 7)    ? endpoint + 7
			   : !strncmp(endpoint, "https://", 8) ? endpoint + 8
							       : NULL;
	const char *slash = auth ? strchr(auth, '/') : NULL;

	return auth && *auth && *auth != '/' && !strpbrk(auth, "@?# ") && !(slash && slash[1]) &&
	       strlen(endpoint) < 256;
}

static struct aws_client *client_new(const char *region, const char *endpoint,
				     const struct aws_creds *creds, struct aws_creds_provider *prov)
{
	struct aws_client *cl;

	if (!name_ok(region, sizeof(cl->region)) || (endpoint && !endpoint_ok(endpoint))) {
		errno = EINVAL;
		return NULL;
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
	if (creds)
		cl->creds = *creds;
	cl->prov = prov;
	cl->anonymous = !creds && !prov;
	cl->easy = curl_easy_init();
	if (!cl->easy)
		goto nomem;
	return cl;
nomem:
	aws_client_free(cl);
	errno = ENOMEM;
	return NULL;
}

struct aws_client *aws_client_new(const char *region, const char *endpoint,
				  const struct aws_creds *creds)
{
	if (!creds) {
		errno = EINVAL;
		return NULL;
	}
	return client_new(region, endpoint, creds, NULL);
}

struct aws_client *aws_client_new_provider(const char *region, const char *endpoint,
					   struct aws_creds_provider *prov)
{
	if (!prov) {
		errno = EINVAL;
		return NULL;
	}
	return client_new(region, endpoint, NULL, prov);
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

/*
 * Build one POST / request of service: Content-Type ctype, X-Amz-Target
 * target (NULL: none), body; signed with the client's credentials (fresh
 * from its provider, if it has one) unless the client is anonymous.
 */
static int request_build(struct aws_client *cl, const char *service, const char *ctype,
			 const char *target, const char *body, struct aws_request **ret, char *err,
			 size_t errlen)
{
	const char *host, *slash, *region = cl->region;
	char date[AWS_AMZ_DATE_LEN + 1], auth[AWS_AUTHORIZATION_MAX] = "";
	char ctype_h[128], target_h[160], base[300];
	const char *signed_h[] = {ctype_h, target ? target_h : NULL, NULL};
	struct aws_request *rq = NULL;
	char host_buf[256];
	struct timespec ts;
	int r;

	if (cl->prov) {
		/* A failed refresh with credentials still valid (AWS_CREDS_STALE) signs. */
		r = aws_creds_provider_get(cl->prov, &cl->creds, err, errlen);
		if (r < 0)
			return r;
	}
	if (cl->endpoint) {
		snprintf(base, sizeof(base), "%s", cl->endpoint);
	} else if (!strcmp(service, "iam")) {
		/* IAM is global: one endpoint, signed for us-east-1. */
		snprintf(base, sizeof(base), "https://iam.amazonaws.com");
		region = "us-east-1";
	} else {
		snprintf(base, sizeof(base), "https://%s.%s.amazonaws.com", service, cl->region);
	}
	host = strstr(base, "://") + 3;
	slash = strchr(host, '/');
	snprintf(host_buf, sizeof(host_buf), "%.*s",
		 slash ? (int)(slash - host) : (int)strlen(host), host);
	snprintf(ctype_h, sizeof(ctype_h), "Content-Type: %s", ctype);
	if (target)
		snprintf(target_h, sizeof(target_h), "X-Amz-Target: %s", target);
	clock_gettime(CLOCK_REALTIME, &ts);
	aws_amz_date((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec, date);

	rq = calloc(1, sizeof(*rq));
	if (!rq)
		goto nomem;
	snprintf(rq->service, sizeof(rq->service), "%s", service);
	rq->body_len = strlen(body);
	rq->body = strdup(body);
	if (!rq->body || asprintf(&rq->url, "%s/", base) < 0) {
		rq->url = NULL;
		goto nomem;
	}
	if (!cl->anonymous) {
		r = aws_sigv4_sign(&cl->creds, region, service, "POST", host_buf, "/", NULL,
				   signed_h, rq->body, rq->body_len, date, auth, sizeof(auth));
		if (r < 0) {
			errf(err, errlen, "%s: cannot sign the request: %s", service, strerror(-r));
			aws_request_free(rq);
			return r;
		}
	}
	rq->headers = curl_slist_append(NULL, ctype_h);
	if (!rq->headers || (target && !curl_slist_append(rq->headers, target_h)) ||
	    slist_add(&rq->headers, "Host", host_buf) ||
	    slist_add(&rq->headers, "X-Amz-Date", date) ||
	    (!cl->anonymous && cl->creds.session_token[0] &&
	     slist_add(&rq->headers, "X-Amz-Security-Token", cl->creds.session_token)) ||
	    (!cl->anonymous && slist_add(&rq->headers, "Authorization", auth)) ||
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

int aws_json_request_new(struct aws_client *cl, const char *service, const char *target,
			 const char *json_body, struct aws_request **ret, char *err, size_t errlen)
{
	const char *ctype;

	if (ret)
		*ret = NULL;
	if (!cl || !ret || !name_ok(service, 32) || !target || !*target || strlen(target) > 128 ||
	    strpbrk(target, "\r\n")) {
		errf(err, errlen, "aws: bad request arguments");
		return -EINVAL;
	}
	ctype = !strcmp(service, "kms")	  ? "application/x-amz-json-1.1"
		: !strcmp(service, "sqs") ? "application/x-amz-json-1.0"
					  : "application/json";
	return request_build(cl, service, ctype, target, json_body ? json_body : "{}", ret, err,
			     errlen);
}

int aws_query_request_new(struct aws_client *cl, const char *service, const char *form_body,
			  struct aws_request **ret, char *err, size_t errlen)
{
	if (ret)
		*ret = NULL;
	if (!cl || !ret || !name_ok(service, 32) || !form_body || !*form_body) {
		errf(err, errlen, "aws: bad request arguments");
		return -EINVAL;
	}
	return request_build(cl, service, "application/x-www-form-urlencoded; charset=utf-8", NULL,
			     form_body, ret, err, errlen);
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

/* Transfer rq on the client's easy handle and finish it; frees rq. */
static int client_perform(struct aws_client *cl, struct aws_request *rq, char **ret_body,
			  long *ret_http_status, char *err, size_t errlen)
{
	CURLcode code;
	int ret;

	curl_easy_reset(cl->easy); /* keeps live connections */
	ret = aws_request_attach(rq, cl->easy);
	if (ret < 0) {
		errf(err, errlen, "%s: cannot set up the transfer", rq->service);
		aws_request_free(rq);
		return ret;
	}
	code = curl_easy_perform(cl->easy);
	ret = aws_request_finish(rq, cl->easy, code, ret_body, ret_http_status, err, errlen);
	aws_request_free(rq);
	return ret;
}

int aws_json_call(struct aws_client *cl, const char *service, const char *target,
		  const char *json_body, char **ret_body, long *ret_http_status, char *err,
		  size_t errlen)
{
	struct aws_request *rq;
	int ret;

	if (ret_body)
		*ret_body = NULL;
	if (ret_http_status)
		*ret_http_status = 0;
	ret = aws_json_request_new(cl, service, target, json_body, &rq, err, errlen);
	if (ret < 0)
		return ret;
	return client_perform(cl, rq, ret_body, ret_http_status, err, errlen);
}

int aws_query_call(struct aws_client *cl, const char *service, const char *form_body,
		   char **ret_body, long *ret_http_status, char *err, size_t errlen)
{
	struct aws_request *rq;
	int ret;

	if (ret_body)
		*ret_body = NULL;
	if (ret_http_status)
		*ret_http_status = 0;
	ret = aws_query_request_new(cl, service, form_body, &rq, err, errlen);
	if (ret < 0)
		return ret;
	return client_perform(cl, rq, ret_body, ret_http_status, err, errlen);
}

char *aws_form_encode(const char *s)
{
	struct sbuf sb = {0};

	if (!s) {
		errno = EINVAL;
		return NULL;
	}
	sb_add(&sb, "");
	/* As botocore encodes form bodies (Python's quote_plus): ' ' is '+'. moto checks
	 * signatures over the form it re-encodes that way, AWS over the bytes sent. */
	for (const char *p = s; *p; p++) {
		if (*p == ' ')
			sb_addc(&sb, '+');
		else
			sb_uri_encode(&sb, p, 1, 0);
	}
	if (sb.oom) {
		sb_free(&sb);
		errno = ENOMEM;
		return NULL;
	}
	return sb.p;
}

int aws_xml_text(const char *xml, const char *tag, char *ret, size_t cap)
{
	char open[72], close[72];
	const char *a, *b;
	size_t n = 0;

	if (!xml || !tag || !*tag || strlen(tag) > 64 || !ret || !cap)
		return -EINVAL;
	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	a = strstr(xml, open);
	if (!a)
		return -ENOENT;
	a += strlen(open);
	b = strstr(a, close);
	if (!b)
		return -ENOENT;
	for (const char *p = a; p < b; p++) {
		static const struct {
			const char *name;
			char c;
		} ents[] = {{"&amp;", '&'},
			    {"&lt;", '<'},
			    {"&gt;", '>'},
			    {"&quot;", '"'},
			    {"&apos;", '\''}};
		char c = *p;

		if (c == '&') {
			size_t i;

			for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
				size_t l = strlen(ents[i].name);

				if ((size_t)(b - p) >= l && !strncmp(p, ents[i].name, l)) {
					c = ents[i].c;
					p += l - 1;
					break;
				}
			}
			if (i == sizeof(ents) / sizeof(ents[0]) && p + 2 < b && p[1] == '#') {
				/* &#NN; or &#xNN; of an ASCII character (newlines in messages). */
				char *end;
				int hx = p[2] == 'x' || p[2] == 'X';
				long v = strtol(p + 2 + hx, &end, hx ? 16 : 10);

				if (end < b && *end == ';' && end > p + 2 + hx && v > 0 &&
				    v < 128) {
					c = (char)v;
					p = end;
				}
			}
		}
		if (n + 1 >= cap) {
			ret[0] = 0;
			return -ENOSPC;
		}
		ret[n++] = c;
	}
	ret[n] = 0;
	return (int)n;
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

/* ---- the credential chain: web identity, ECS, IMDS, and the provider ---- */

#define PROVIDER_REFRESH_NS (300ull * 1000000000ull) /* refresh 5 min before expiry */
#define META_RESPONSE_MAX   (64u * 1024)	     /* ECS/IMDS answers are small */

struct aws_creds_provider {
	char profile[257];
	int explicit;
	char region[64]; /* "" = none known: the global STS endpoint */
	struct aws_creds cur;
	int have;
	char source[32];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* "2019-11-20T12:34:56Z", "...56.123Z" or "...56+00:00" -> CLOCK_REALTIME ns; 0 if not that. */
static uint64_t iso8601_ns(const char *s)
{
	struct tm tm = {0};
	int used = 0;
	time_t t;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6 ||
	    !used)
		return 0;
	s += used;
	if (*s == '.')
		for (s++; isdigit((unsigned char)*s); s++)
			;
	if (strcmp(s, "Z") && strcmp(s, "+00:00") && strcmp(s, "") && strcmp(s, "UTC"))
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	return t <= 0 ? 0 : (uint64_t)t * 1000000000ull;
}

static size_t on_meta_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct sbuf *sb = userdata;
	size_t n = size * nmemb;

	if (sb->len + n > META_RESPONSE_MAX)
		return 0;
	sb_addn(sb, data, n);
	return sb->oom ? 0 : n;
}

/*
 * One small HTTP exchange with a metadata endpoint (ECS, IMDS): method
 * ("GET" or "PUT", no body), headers, short timeouts, no proxy (these are
 * link-local or loopback addresses). Returns 0 with the status in *status
 * and the body (NUL-terminated, even when empty) in *body, or -EIO with
 * curl's reason in err.
 */
static int meta_http(const char *what, const char *method, const char *url,
		     struct curl_slist *headers, long connect_ms, long total_ms, struct sbuf *body,
		     long *status, char *err, size_t errlen)
{
	char cerr[CURL_ERROR_SIZE] = "";
	CURL *e = curl_easy_init();
	CURLcode c = CURLE_OK;

	*status = 0;
	if (!e) {
		errf(err, errlen, "%s: out of memory", what);
		return -ENOMEM;
	}
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (c == CURLE_OK)                                                                 \
			c = curl_easy_setopt(e, opt, val);                                         \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_CUSTOMREQUEST, method);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_WRITEFUNCTION, on_meta_body);
	SET(CURLOPT_WRITEDATA, body);
	SET(CURLOPT_ERRORBUFFER, cerr);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_NOPROXY, "*");
	SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	SET(CURLOPT_TIMEOUT_MS, total_ms);
#undef SET
	if (c == CURLE_OK)
		c = curl_easy_perform(e);
	if (c == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(e);
	sb_add(body, "");
	if (body->oom) {
		errf(err, errlen, "%s: out of memory", what);
		return -ENOMEM;
	}
	if (c != CURLE_OK) {
		errf(err, errlen, "%s: %s%s%s", what, curl_easy_strerror(c), cerr[0] ? ": " : "",
		     cerr);
		return -EIO;
	}
	return 0;
}

/*
 * Credentials from an ECS/IMDS JSON document (AccessKeyId, SecretAccessKey,
 * Token, Expiration). Returns 0 or -EPROTO.
 */
static int creds_from_json(const char *what, const char *body, struct aws_creds *ret, char *err,
			   size_t errlen)
{
	static const char *const names[] = {"AccessKeyId", "SecretAccessKey", "Token",
					    "Expiration"};
	cJSON *j = cJSON_Parse(body);
	const cJSON *v[4], *code;
	int r = 0;

	for (int i = 0; i < 4; i++)
		v[i] = cJSON_GetObjectItemCaseSensitive(j, names[i]);
	code = cJSON_GetObjectItemCaseSensitive(j, "Code");
	if (cJSON_IsString(code) && strcmp(code->valuestring, "Success")) {
		char c[64];

		one_line(c, sizeof(c), code->valuestring, strlen(code->valuestring));
		errf(err, errlen, "%s: credentials document says Code %s", what, c);
		r = -EPROTO;
	} else if (!cJSON_IsString(v[0]) || !cJSON_IsString(v[1]) || !v[0]->valuestring[0] ||
		   !v[1]->valuestring[0]) {
		errf(err, errlen, "%s: no AccessKeyId and SecretAccessKey in the answer", what);
		r = -EPROTO;
	} else if (copy_field(ret->access_key, sizeof(ret->access_key), v[0]->valuestring) ||
		   copy_field(ret->secret_key, sizeof(ret->secret_key), v[1]->valuestring) ||
		   (cJSON_IsString(v[2]) &&
		    copy_field(ret->session_token, sizeof(ret->session_token),
			       v[2]->valuestring))) {
		errf(err, errlen, "%s: credentials too long", what);
		r = -EPROTO;
	} else if (cJSON_IsString(v[3]) && !(ret->expires_ns = iso8601_ns(v[3]->valuestring))) {
		errf(err, errlen, "%s: Expiration is not an ISO 8601 UTC time", what);
		r = -EPROTO;
	}
	if (j) {
		for (int i = 0; i < 3; i++)
			if (cJSON_IsString(v[i]))
				OPENSSL_cleanse(v[i]->valuestring, strlen(v[i]->valuestring));
		cJSON_Delete(j);
	}
	if (r < 0)
		OPENSSL_cleanse(ret, sizeof(*ret));
	return r;
}

/* Read a small secret file (a token) into a malloc'd, trimmed string. NULL with errno. */
static char *read_secret_file(const char *path)
{
	struct sbuf sb = {0};
	char buf[4096];
	FILE *f = fopen(path, "re");
	size_t n;
	int e;

	if (!f)
		return NULL;
	sb_add(&sb, "");
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0 && sb.len < 65536)
		sb_addn(&sb, buf, n);
	e = ferror(f) ? EIO : sb.len >= 65536 ? EFBIG : sb.oom ? ENOMEM : 0;
	fclose(f);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (e) {
		sb_free(&sb);
		errno = e;
		return NULL;
	}
	while (sb.len && isspace((unsigned char)sb.p[sb.len - 1]))
		sb.p[--sb.len] = 0;
	return sb.p;
}

/* The STS endpoint: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, regional, else global. */
static void sts_endpoint(const char *region, char *buf, size_t len)
{
	const char *e = getenv("AWS_ENDPOINT_URL_STS");

	if (!e || !*e)
		e = getenv("AWS_ENDPOINT_URL");
	if (e && *e)
		snprintf(buf, len, "%s", e);
	else if (region && *region)
		snprintf(buf, len, "https://sts.%s.amazonaws.com", region);
	else
		snprintf(buf, len, "https://sts.amazonaws.com");
}

/*
 * STS AssumeRoleWithWebIdentity (unsigned: the token is the proof).
 * Returns 0 and *ret, or -errno with the reason in err.
 */
static int creds_web_identity(const char *region, const struct wi_conf *wi, struct aws_creds *ret,
			      char *err, size_t errlen)
{
	char endpoint[300], session[128], exp[64], msg[256];
	char *token = NULL, *t_enc = NULL, *arn_enc = NULL, *s_enc = NULL, *form = NULL;
	char *body = NULL;
	struct aws_client *cl = NULL;
	int r;

	sts_endpoint(region, endpoint, sizeof(endpoint));
	if (wi->session_name[0])
		snprintf(session, sizeof(session), "%s", wi->session_name);
	else
		snprintf(session, sizeof(session), "ferry-%llu",
			 (unsigned long long)(now_ns() / 1000000000ull));
	token = read_secret_file(wi->token_file);
	if (!token) {
		r = -errno;
		errf(err, errlen, "web identity: cannot read token file %s: %s", wi->token_file,
		     strerror(-r));
		return r;
	}
	if (!*token) {
		errf(err, errlen, "web identity: token file %s is empty", wi->token_file);
		r = -EINVAL;
		goto out;
	}
	cl = client_new(region && *region ? region : "us-east-1", endpoint, NULL, NULL);
	if (!cl) {
		r = -errno;
		errf(err, errlen, "web identity: bad STS endpoint %s", endpoint);
		goto out;
	}
	t_enc = aws_form_encode(token);
	arn_enc = aws_form_encode(wi->role_arn);
	s_enc = aws_form_encode(session);
	if (!t_enc || !arn_enc || !s_enc ||
	    asprintf(&form,
		     "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=%s"
		     "&RoleSessionName=%s&WebIdentityToken=%s",
		     arn_enc, s_enc, t_enc) < 0) {
		form = NULL;
		errf(err, errlen, "web identity: out of memory");
		r = -ENOMEM;
		goto out;
	}
	r = aws_query_call(cl, "sts", form, &body, NULL, msg, sizeof(msg));
	if (r < 0) {
		errf(err, errlen, "web identity (%s): %s", endpoint, msg);
		goto out;
	}
	if (aws_xml_text(body, "AccessKeyId", ret->access_key, sizeof(ret->access_key)) <= 0 ||
	    aws_xml_text(body, "SecretAccessKey", ret->secret_key, sizeof(ret->secret_key)) <= 0 ||
	    aws_xml_text(body, "SessionToken", ret->session_token, sizeof(ret->session_token)) <
		    0 ||
	    aws_xml_text(body, "Expiration", exp, sizeof(exp)) <= 0 ||
	    !(ret->expires_ns = iso8601_ns(exp))) {
		OPENSSL_cleanse(ret, sizeof(*ret));
		errf(err, errlen,
		     "web identity: AssumeRoleWithWebIdentity answer without AccessKeyId, "
		     "SecretAccessKey, SessionToken and Expiration");
		r = -EPROTO;
	}
out:
	free_secret(body);
	free_secret(form);
	free_secret(t_enc);
	free(arn_enc);
	free(s_enc);
	free_secret(token);
	aws_client_free(cl);
	return r;
}

/* Is the host of an http:// full URI one the SDKs allow (loopback or the ECS/EKS agents)? */
static int container_host_ok(const char *url)
{
	static const char *const hosts[] = {"127.",	     "localhost",      "[::1]",
					    "169.254.170.2", "169.254.170.23", "[fd00:ec2::23]"};
	const char *h = url + 7;
	size_t hl = strcspn(h, ":/");

	if (*h == '[')
		hl = strcspn(h, "]") + 1;
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		size_t n = strlen(hosts[i]);

		if (hosts[i][n - 1] == '.' ? hl > n && !strncmp(h, hosts[i], n)
					   : hl == n && !strncmp(h, hosts[i], n))
			return 1;
	}
	return 0;
}

/*
 * ECS / EKS Pod Identity container credentials. Returns 1 (found), 0 (not
 * configured) or -errno (configured, but failed: the SDKs stop there too).
 */
static int creds_container(struct aws_creds *ret, char *tried, size_t tlen, char *err,
			   size_t errlen)
{
	const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tok_file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok_env = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	struct curl_slist *h = NULL;
	struct sbuf body = {0};
	char url[2048], *tok = NULL;
	long status;
	int r;

	if (rel && *rel) {
		snprintf(url, sizeof(url), "http://169.254.170.2%s", rel);
	} else if (full && *full) {
		if (strncmp(full, "https://", 8) &&
		    (strncmp(full, "http://", 7) || !container_host_ok(full))) {
			errf(err, errlen,
			     "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https:// or http:// to a "
			     "loopback or ECS/EKS agent address");
			return -EINVAL;
		}
		snprintf(url, sizeof(url), "%s", full);
	} else {
		appendf(tried, tlen, ", ECS container (AWS_CONTAINER_CREDENTIALS_*_URI not set)");
		return 0;
	}
	/* The token file wins over the variable, as in the SDKs (EKS Pod Identity rotates it). */
	if (tok_file && *tok_file) {
		tok = read_secret_file(tok_file);
		if (!tok) {
			r = -errno;
			errf(err, errlen, "ECS container credentials: cannot read %s: %s", tok_file,
			     strerror(-r));
			return r;
		}
	} else if (tok_env && *tok_env) {
		tok = strdup(tok_env);
		if (!tok)
			return -ENOMEM;
	}
	if (tok && (strpbrk(tok, "\r\n") || slist_add(&h, "Authorization", tok))) {
		errf(err, errlen, "ECS container credentials: bad authorization token");
		r = -EINVAL;
		goto out;
	}
	r = meta_http("ECS container credentials", "GET", url, h, 2000, 5000, &body, &status, err,
		      errlen);
	if (r < 0)
		goto out;
	if (status != 200) {
		errf(err, errlen, "ECS container credentials: HTTP %ld from %s", status,
		     rel && *rel ? "169.254.170.2" : "AWS_CONTAINER_CREDENTIALS_FULL_URI");
		r = -EIO;
		goto out;
	}
	r = creds_from_json("ECS container credentials", body.p, ret, err, errlen);
	if (r == 0)
		r = 1;
out:
	for (struct curl_slist *l = h; l; l = l->next)
		OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(h);
	free_secret(tok);
	sb_free(&body);
	return r;
}

/*
 * EC2 instance metadata, IMDSv2: a session token by PUT, then the role name,
 * then its credentials. Short timeouts, so a host that is not on EC2 fails in
 * about a second. Returns 1 (found), 0 (disabled, or no IMDS: tried says why)
 * or -errno (IMDS answered, but not with credentials).
 */
static int creds_imds(struct aws_creds *ret, char *tried, size_t tlen, char *err, size_t errlen)
{
	const char *base = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *dis = getenv("AWS_EC2_METADATA_DISABLED");
	char url[1024], role[256], tok_h[200] = "", why[256] = "";
	struct curl_slist *h = NULL;
	struct sbuf body = {0};
	size_t blen;
	long status;
	int r;

	if (dis && !strcasecmp(dis, "true")) {
		appendf(tried, tlen, ", instance metadata (AWS_EC2_METADATA_DISABLED)");
		return 0;
	}
	if (!base || !*base)
		base = "http://169.254.169.254";
	blen = strlen(base);
	while (blen && base[blen - 1] == '/')
		blen--;
	snprintf(url, sizeof(url), "%.*s/latest/api/token", (int)blen, base);
	h = curl_slist_append(NULL, "X-aws-ec2-metadata-token-ttl-seconds: 21600");
	if (!h)
		return -ENOMEM;
	r = meta_http("instance metadata", "PUT", url, h, 1000, 2000, &body, &status, why,
		      sizeof(why));
	curl_slist_free_all(h);
	h = NULL;
	if (r < 0) {
		/* Not on EC2 (or IMDS unreachable): the chain ends without credentials. */
		appendf(tried, tlen, ", instance metadata (%s)", why);
		sb_free(&body);
		return r == -EIO ? 0 : r;
	}
	if (status == 200 && body.len && body.len < 150) {
		snprintf(tok_h, sizeof(tok_h), "X-aws-ec2-metadata-token: %s", body.p);
	} else if (status != 403 && status != 404 && status != 405) {
		/* 403/404/405: an IMDSv1-only endpoint, as the SDKs fall back; else an error. */
		errf(err, errlen, "instance metadata: HTTP %ld for a session token", status);
		r = -EIO;
		goto out;
	}
	sb_free(&body);
	if (tok_h[0] && !(h = curl_slist_append(NULL, tok_h))) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(url, sizeof(url), "%.*s/latest/meta-data/iam/security-credentials/", (int)blen,
		 base);
	r = meta_http("instance metadata", "GET", url, h, 1000, 2000, &body, &status, err, errlen);
	if (r < 0)
		goto out;
	if (status == 404) {
		errf(err, errlen, "instance metadata: no IAM role attached to this instance");
		r = -ENOENT;
		goto out;
	}
	if (status != 200 || !body.len) {
		errf(err, errlen, "instance metadata: HTTP %ld for the role name", status);
		r = -EIO;
		goto out;
	}
	one_line(role, sizeof(role), body.p, strcspn(body.p, "\r\n"));
	if (!role[0] || strpbrk(role, "/?# ")) {
		errf(err, errlen, "instance metadata: bad role name");
		r = -EPROTO;
		goto out;
	}
	sb_free(&body);
	snprintf(url, sizeof(url), "%.*s/latest/meta-data/iam/security-credentials/%s", (int)blen,
		 base, role);
	r = meta_http("instance metadata", "GET", url, h, 1000, 2000, &body, &status, err, errlen);
	if (r < 0)
		goto out;
	if (status != 200) {
		errf(err, errlen, "instance metadata: HTTP %ld for the credentials of role %s",
		     status, role);
		r = -EIO;
		goto out;
	}
	r = creds_from_json("instance metadata", body.p, ret, err, errlen);
	if (r == 0)
		r = 1;
out:
	OPENSSL_cleanse(tok_h, sizeof(tok_h));
	for (struct curl_slist *l = h; l; l = l->next)
		OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(h);
	sb_free(&body);
	return r;
}

/* The web identity settings: environment (unless a profile was named), else the profile. */
static int wi_settings(const struct aws_creds_provider *p, struct wi_conf *wi, char *err,
		       size_t errlen)
{
	const char *tf = getenv("AWS_WEB_IDENTITY_TOKEN_FILE"), *arn = getenv("AWS_ROLE_ARN");
	const char *sn = getenv("AWS_ROLE_SESSION_NAME");
	struct aws_creds scratch = {0};
	struct ini_found fd;
	char path[4096], section[300];
	int r;

	memset(wi, 0, sizeof(*wi));
	if (!p->explicit && tf && *tf && arn && *arn) {
		if (copy_field(wi->token_file, sizeof(wi->token_file), tf) ||
		    copy_field(wi->role_arn, sizeof(wi->role_arn), arn) ||
		    copy_field(wi->session_name, sizeof(wi->session_name), sn ? sn : "")) {
			errf(err, errlen,
			     "AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN or "
			     "AWS_ROLE_SESSION_NAME too long");
			return -EINVAL;
		}
		return 0;
	}
	if (shared_path("AWS_CONFIG_FILE", "config", path, sizeof(path)) < 0)
		return 0;
	snprintf(section, sizeof(section), "profile %s", p->profile);
	r = ini_read(path, section, !strcmp(p->profile, "default") ? "default" : NULL, &scratch, wi,
		     &fd, err, errlen);
	OPENSSL_cleanse(&scratch, sizeof(scratch));
	if (r < 0 && r != -ENOENT)
		return r;
	/* role_arn without a token file is an assume-role profile: not ours. */
	if (!wi->token_file[0] || !wi->role_arn[0])
		memset(wi, 0, sizeof(*wi));
	return 0;
}

/*
 * Walk the chain once. Returns 0 with *ret and the source's name, or -errno
 * (-ENOENT when no source has credentials, err listing what was tried).
 */
static int chain_resolve(const struct aws_creds_provider *p, struct aws_creds *ret, char *source,
			 size_t slen, char *err, size_t errlen)
{
	char tried[2048] = "";
	struct wi_conf wi;
	int r;

	OPENSSL_cleanse(ret, sizeof(*ret));
	/* 1. The environment, unless a profile was asked for by name. */
	if (p->explicit) {
		snprintf(tried, sizeof(tried), "environment (skipped: profile '%s' given)",
			 p->profile);
	} else {
		r = creds_env(ret, tried, sizeof(tried), err, errlen);
		if (r) {
			snprintf(source, slen, "environment");
			return r < 0 ? r : 0;
		}
	}
	/* 2. Web identity (EKS IRSA): a token file and a role, traded at STS. */
	r = wi_settings(p, &wi, err, errlen);
	if (r < 0)
		return r;
	if (wi.token_file[0]) {
		r = creds_web_identity(p->region, &wi, ret, err, errlen);
		if (r == 0)
			snprintf(source, slen, "web identity");
		return r;
	}
	appendf(tried, sizeof(tried), ", web identity (no token file and role)");
	/* 3, 4. The shared credentials file, then the config file. */
	r = creds_files(p->profile, ret, tried, sizeof(tried), err, errlen);
	if (r) {
		snprintf(source, slen, "shared files");
		return r < 0 ? r : 0;
	}
	/* 5. ECS container credentials; 6. EC2 instance metadata. */
	r = creds_container(ret, tried, sizeof(tried), err, errlen);
	if (r) {
		snprintf(source, slen, "ECS container");
		return r < 0 ? r : 0;
	}
	r = creds_imds(ret, tried, sizeof(tried), err, errlen);
	if (r) {
		snprintf(source, slen, "instance metadata");
		return r < 0 ? r : 0;
	}
	errf(err, errlen, "no AWS credentials for profile '%s': tried %s", p->profile, tried);
	return -ENOENT;
}

struct aws_creds_provider *aws_creds_provider_new(const char *profile, const char *region)
{
	struct aws_creds_provider *p;
	const char *name;
	int explicit;

	name = profile_name(profile, &explicit);
	if (!region || !*region)
		region = getenv("AWS_REGION");
	if (!region || !*region)
		region = getenv("AWS_DEFAULT_REGION");
	if (strlen(name) > 256 || (region && *region && !name_ok(region, 64))) {
		errno = EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	snprintf(p->profile, sizeof(p->profile), "%s", name);
	p->explicit = explicit;
	snprintf(p->region, sizeof(p->region), "%s", region ? region : "");
	return p;
}

void aws_creds_provider_free(struct aws_creds_provider *p)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, sizeof(*p));
	free(p);
}

const char *aws_creds_provider_source(const struct aws_creds_provider *p)
{
	return p && p->have ? p->source : "";
}

int aws_creds_provider_get(struct aws_creds_provider *p, struct aws_creds *ret, char *err,
			   size_t errlen)
{
	struct aws_creds fresh;
	char source[sizeof(p->source)], why[768] = "";
	uint64_t now = now_ns();
	int r;

	if (!p || !ret)
		return -EINVAL;
	if (p->have && (!p->cur.expires_ns || p->cur.expires_ns > now + PROVIDER_REFRESH_NS)) {
		*ret = p->cur;
		return 0;
	}
	r = chain_resolve(p, &fresh, source, sizeof(source), why, sizeof(why));
	if (r == 0 && fresh.expires_ns && fresh.expires_ns <= now) {
		snprintf(why, sizeof(why), "credentials from %s are already expired", source);
		r = -EKEYEXPIRED;
	}
	if (r == 0) {
		p->cur = fresh;
		p->have = 1;
		snprintf(p->source, sizeof(p->source), "%s", source);
		OPENSSL_cleanse(&fresh, sizeof(fresh));
		*ret = p->cur;
		return 0;
	}
	OPENSSL_cleanse(&fresh, sizeof(fresh));
	if (p->have && p->cur.expires_ns > now) {
		errf(err, errlen,
		     "refreshing AWS credentials failed (%s); the ones from %s stay valid for "
		     "%llu s",
		     why, p->source,
		     (unsigned long long)((p->cur.expires_ns - now) / 1000000000ull));
		*ret = p->cur;
		return AWS_CREDS_STALE;
	}
	if (p->have) {
		OPENSSL_cleanse(&p->cur, sizeof(p->cur));
		p->have = 0;
	}
	errf(err, errlen, "%s", why);
	OPENSSL_cleanse(ret, sizeof(*ret));
	return r;
}
