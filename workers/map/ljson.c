/* SPDX-License-Identifier: MIT */
/* jsmn's implementation, once, static: the header is included with the same options. */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "workers/map/ljson.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS_MIN 631152000000ll	  /* 1990-01-01T00:00:00Z */
#define MS_MAX 4102444800000ll	  /* 2100-01-01T00:00:00Z */
#define ID_MAX 9007199254740991ll /* 2^53 - 1: what JSON numbers hold exactly */

void lj_init(struct lj *d, jsmntok_t *tok, int cap_tok, void *arena, size_t arena_cap)
{
	memset(d, 0, sizeof(*d));
	d->tok = tok;
	d->cap_tok = cap_tok;
	d->arena = arena;
	d->arena_cap = arena_cap;
}

int lj_fail(struct lj *d, int err, const char *pre, const char *key, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (d->failed)
		return err;
	d->failed = err;
	n = snprintf(d->err, sizeof(d->err), "map: %s%s%s: ", pre ? pre : "",
		     pre && *pre && key && *key ? "." : "", key ? key : "");
	if (n < 0 || (size_t)n >= sizeof(d->err))
		return err;
	va_start(ap, fmt);
	vsnprintf(d->err + n, sizeof(d->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return err;
}

void lj_path(char *buf, size_t cap, const char *pre, const char *key)
{
	size_t pl = strlen(pre), kl = strlen(key), n = 0;

	/* Called for every nested object: memcpy, not snprintf. */
	if (pl && pl < cap) {
		memcpy(buf, pre, pl);
		n = pl;
		if (n + 1 < cap)
			buf[n++] = '.';
	}
	if (kl > cap - 1 - n)
		kl = cap - 1 - n;
	memcpy(buf + n, key, kl);
	buf[n + kl] = 0;
}

void *lj_alloc(struct lj *d, size_t n)
{
	size_t at = (d->arena_used + 7) & ~(size_t)7;
	void *p;

	if (at > d->arena_cap || n > d->arena_cap - at) {
		if (!d->failed) {
			d->failed = -E2BIG;
			snprintf(d->err, sizeof(d->err), "map: legacy event too large to map");
		}
		return NULL;
	}
	p = d->arena + at;
	memset(p, 0, n);
	d->arena_used = at + n;
	return p;
}

char *lj_strdup(struct lj *d, const char *s, size_t n)
{
	char *p = lj_alloc(d, n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A JSON number exactly: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int is_number(const char *s, size_t n)
{
	size_t i = 0;

	if (i < n && s[i] == '-')
		i++;
	if (i >= n || !is_digit(s[i]))
		return 0;
	if (s[i] == '0')
		i++;
	else
		while (i < n && is_digit(s[i]))
			i++;
	if (i < n && s[i] == '.') {
		if (++i >= n || !is_digit(s[i]))
			return 0;
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !is_digit(s[i]))
			return 0;
		while (i < n && is_digit(s[i]))
			i++;
	}
	return i == n;
}

static int raw_is(const struct lj *d, const jsmntok_t *t, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(t->end - t->start) == n && !memcmp(d->js + t->start, s, n);
}

static int not_json(struct lj *d, const char *what, int at)
{
	d->failed = -EBADMSG;
	snprintf(d->err, sizeof(d->err), "map: not JSON (%s at offset %d)", what, at);
	return -EBADMSG;
}

int lj_parse(struct lj *d, const char *js, uint32_t len)
{
	jsmn_parser p;
	int n;

	d->js = js;
	d->len = len;
	d->ntok = 0;
	d->arena_used = 0;
	d->failed = 0;
	d->err[0] = 0;
	jsmn_init(&p);
	n = jsmn_parse(&p, js, len, d->tok, (unsigned)d->cap_tok);
	if (n == JSMN_ERROR_NOMEM) {
		d->failed = -E2BIG;
		snprintf(d->err, sizeof(d->err),
			 "map: legacy event too large (more than %d JSON tokens)", d->cap_tok);
		return -E2BIG;
	}
	if (n == JSMN_ERROR_PART)
		return not_json(d, "truncated", (int)p.pos);
	if (n < 0)
		return not_json(d, "invalid character", (int)p.pos);
	if (n == 0 || d->tok[0].type != JSMN_OBJECT)
		return not_json(d, "not an object", 0);
	d->ntok = n;
	/* jsmn is lenient; hold the tree to what JSON allows. */
	for (int i = 1; i < n; i++) {
		const jsmntok_t *t = &d->tok[i];
		int parent = t->parent;

		if (t->start >= d->tok[0].end || parent < 0 || parent >= i)
			return not_json(d, "trailing data", t->start);
		if (d->tok[parent].type == JSMN_OBJECT && (t->type != JSMN_STRING || t->size != 1))
			return not_json(d, "bad key", t->start);
		if (d->tok[parent].type == JSMN_STRING && d->tok[parent].size != 1)
			return not_json(d, "bad member", t->start);
		if (t->type == JSMN_PRIMITIVE && !raw_is(d, t, "true") && !raw_is(d, t, "false") &&
		    !raw_is(d, t, "null") && !is_number(js + t->start, (size_t)(t->end - t->start)))
			return not_json(d, "bad literal", t->start);
	}
	for (uint32_t i = (uint32_t)d->tok[0].end; i < len; i++)
		if (js[i] != ' ' && js[i] != '\n' && js[i] != '\r' && js[i] != '\t')
			return not_json(d, "trailing data", (int)i);
	return 0;
}

/* The token after t's whole subtree. */
static int skip(const struct lj *d, int t)
{
	int j = t + 1;

	while (j < d->ntok && d->tok[j].start < d->tok[t].end)
		j++;
	return j;
}

int lj_tok_is(const struct lj *d, int t, const char *s)
{
	return t >= 0 && t < d->ntok && d->tok[t].type == JSMN_STRING && raw_is(d, &d->tok[t], s);
}

int lj_find(const struct lj *d, int obj, const char *key)
{
	int i, k;

	if (obj < 0 || obj >= d->ntok || d->tok[obj].type != JSMN_OBJECT)
		return -1;
	for (i = obj + 1, k = 0; k < d->tok[obj].size && i + 1 < d->ntok; k++) {
		if (raw_is(d, &d->tok[i], key))
			return i + 1;
		i = skip(d, i + 1);
	}
	return -1;
}

static int is_null(const struct lj *d, int t)
{
	return d->tok[t].type == JSMN_PRIMITIVE && d->js[d->tok[t].start] == 'n';
}

int lj_absent(const struct lj *d, int obj, const char *key)
{
	int t = lj_find(d, obj, key);

	return t < 0 || is_null(d, t);
}

static const char *type_name(const struct lj *d, int t)
{
	switch (d->tok[t].type) {
	case JSMN_OBJECT:
		return "an object";
	case JSMN_ARRAY:
		return "an array";
	case JSMN_STRING:
		return "a string";
	default:
		break;
	}
	switch (d->js[d->tok[t].start]) {
	case 't':
	case 'f':
		return "a boolean";
	case 'n':
		return "null";
	default:
		return "a number";
	}
}

/*
 * The value token of key, or -1: absent or null (a failure if required),
 * or already failed.
 */
static int value(struct lj *d, int obj, const char *pre, const char *key, enum lj_need need)
{
	int t;

	if (d->failed)
		return -1;
	t = lj_find(d, obj, key);
	if (t >= 0 && !is_null(d, t))
		return t;
	if (need == LJ_REQUIRED)
		lj_fail(d, -EBADMSG, pre, key, "missing required field");
	return -1;
}

static int wrong_type(struct lj *d, int t, const char *pre, const char *key, const char *want)
{
	return lj_fail(d, -EBADMSG, pre, key, "wrong type (want %s, got %s)", want,
		       type_name(d, t));
}

int lj_object(struct lj *d, int obj, const char *pre, const char *key, enum lj_need need)
{
	int t = value(d, obj, pre, key, need);

	if (t < 0)
		return -1;
	if (d->tok[t].type != JSMN_OBJECT) {
		wrong_type(d, t, pre, key, "an object");
		return -1;
	}
	return t;
}

int lj_array(struct lj *d, int obj, const char *pre, const char *key, enum lj_need need, int *ret_n)
{
	int t = value(d, obj, pre, key, need);

	*ret_n = 0;
	if (t < 0)
		return -1;
	if (d->tok[t].type != JSMN_ARRAY) {
		wrong_type(d, t, pre, key, "an array");
		return -1;
	}
	*ret_n = d->tok[t].size;
	return t;
}

int lj_elem(const struct lj *d, int arr, int i)
{
	int t = arr + 1;

	while (i-- > 0 && t < d->ntok)
		t = skip(d, t);
	return t < d->ntok ? t : -1;
}

int lj_member(const struct lj *d, int obj, int i)
{
	int t = obj + 1;

	while (i-- > 0 && t + 1 < d->ntok)
		t = skip(d, t + 1);
	return t + 1 < d->ntok ? t + 1 : -1;
}

static int hex4(const char *s, unsigned *ret)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*ret = v;
	return 0;
}

static char *put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | (cp >> 6));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | (cp >> 12));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | (cp >> 18));
		*o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

const char *lj_tok_string(struct lj *d, int t, const char *pre, const char *key, size_t max)
{
	const char *s = d->js + d->tok[t].start, *end = d->js + d->tok[t].end;
	char *out, *o;

	if (d->failed)
		return NULL;
	if (d->tok[t].type != JSMN_STRING) {
		wrong_type(d, t, pre, key, "a string");
		return NULL;
	}
	/* Unescaping never lengthens: the raw length bounds the copy. */
	if (!memchr(s, '\\', (size_t)(end - s))) {
		if ((size_t)(end - s) > max)
			goto long_;
		return lj_strdup(d, s, (size_t)(end - s));
	}
	out = o = lj_alloc(d, (size_t)(end - s) + 1);
	if (!out)
		return NULL;
	while (s < end) {
		unsigned cp, lo;

		if (*s != '\\') {
			*o++ = *s++;
			continue;
		}
		s++;
		switch (*s++) {
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'u':
			/* jsmn checked the four hex digits. */
			if (end - s < 4 || hex4(s, &cp)) {
				lj_fail(d, -EBADMSG, pre, key, "wrong type (bad escape)");
				return NULL;
			}
			s += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && end - s >= 6 && s[0] == '\\' &&
			    s[1] == 'u' && !hex4(s + 2, &lo) && lo >= 0xdc00 && lo < 0xe000) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				s += 6;
			} else if (cp >= 0xd800 && cp < 0xe000) {
				cp = 0xfffd; /* a lone surrogate is no character */
			}
			o = put_utf8(o, cp);
			break;
		default: /* " \ / */
			*o++ = s[-1];
			break;
		}
	}
	*o = 0;
	if ((size_t)(o - out) > max)
		goto long_;
	return out;
long_:
	lj_fail(d, -ERANGE, pre, key, "out of range (longer than %zu bytes)", max);
	return NULL;
}

const char *lj_string(struct lj *d, int obj, const char *pre, const char *key, enum lj_need need,
		      size_t max)
{
	int t = value(d, obj, pre, key, need);

	return t < 0 ? NULL : lj_tok_string(d, t, pre, key, max);
}

/* Digits (optionally signed) of an integer token or of a string token; 0 if neither. */
static int int_text(const struct lj *d, int t, int64_t *ret, int *overflow)
{
	const char *s = d->js + d->tok[t].start;
	size_t n = (size_t)(d->tok[t].end - d->tok[t].start), i = 0;
	int neg = 0;
	uint64_t v = 0;

	*overflow = 0;
	if (d->tok[t].type != JSMN_PRIMITIVE && d->tok[t].type != JSMN_STRING)
		return 0;
	if (n && s[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i >= n)
		return 0;
	for (; i < n; i++) {
		if (!is_digit(s[i]))
			return 0;
		if (v > (UINT64_C(1) << 62))
			*overflow = 1;
		else
			v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > INT64_MAX)
		*overflow = 1;
	*ret = neg ? -(int64_t)v : (int64_t)v;
	return 1;
}

int64_t lj_int(struct lj *d, int obj, const char *pre, const char *key, enum lj_need need,
	       int64_t min, int64_t max, int64_t def)
{
	int t = value(d, obj, pre, key, need), overflow;
	int64_t v;

	if (t < 0)
		return def;
	if (!int_text(d, t, &v, &overflow)) {
		wrong_type(d, t, pre, key, "an integer");
		return def;
	}
	if (overflow || v < min || v > max) {
		lj_fail(d, -ERANGE, pre, key, "out of range (want %" PRId64 "..%" PRId64 ")", min,
			max);
		return def;
	}
	return v;
}

int lj_bool(struct lj *d, int obj, const char *pre, const char *key, enum lj_need need, int def)
{
	int t = value(d, obj, pre, key, need);
	const jsmntok_t *k;

	if (t < 0)
		return def;
	k = &d->tok[t];
	if (raw_is(d, k, "true"))
		return 1;
	if (raw_is(d, k, "false"))
		return 0;
	wrong_type(d, t, pre, key, "a boolean");
	return def;
}

const char *lj_user_id(struct lj *d, int obj, const char *pre, const char *key, enum lj_need need)
{
	int64_t v = lj_int(d, obj, pre, key, need, 1, ID_MAX, 0);
	char buf[24], *p = buf + sizeof(buf);

	if (!v)
		return NULL;
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10));
	return lj_strdup(d, p, (size_t)(buf + sizeof(buf) - p));
}

const char *lj_stream_id(struct lj *d, int obj, const char *pre, const char *key, enum lj_need need)
{
	int t = value(d, obj, pre, key, need);
	const char *s;
	size_t n, i;
	char *out;

	if (t < 0)
		return NULL;
	if (d->tok[t].type != JSMN_STRING) {
		wrong_type(d, t, pre, key, "a string");
		return NULL;
	}
	s = d->js + d->tok[t].start;
	n = (size_t)(d->tok[t].end - d->tok[t].start);
	while (n && s[n - 1] == '=')
		n--;
	if (n == 0 || n > 128) {
		lj_fail(d, -ERANGE, pre, key, "out of range (want 1..128 base64 characters)");
		return NULL;
	}
	out = lj_strdup(d, s, n);
	if (!out)
		return NULL;
	for (i = 0; i < n; i++) {
		char c = out[i];

		if (c == '+')
			out[i] = '-';
		else if (c == '/')
			out[i] = '_';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) ||
			   c == '-' || c == '_')) {
			lj_fail(d, -ERANGE, pre, key, "out of range (not base64)");
			return NULL;
		}
	}
	return out;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned dd)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + dd - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int num(const char *s, size_t n, unsigned *ret)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*ret = v;
	return 0;
}

/* ISO-8601 with a zone: YYYY-MM-DD[T ]HH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM). */
static int iso8601(const char *s, size_t n, int64_t *ret_sec, int32_t *ret_ns)
{
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned y, mo, dd, h, mi, sec, oh = 0, om = 0;
	size_t i = 19;
	int32_t ns = 0;
	int64_t off = 0;

	if (n < 20 || num(s, 4, &y) || s[4] != '-' || num(s + 5, 2, &mo) || s[7] != '-' ||
	    num(s + 8, 2, &dd) || (s[10] != 'T' && s[10] != ' ') || num(s + 11, 2, &h) ||
	    s[13] != ':' || num(s + 14, 2, &mi) || s[16] != ':' || num(s + 17, 2, &sec))
		return -1;
	if (i < n && s[i] == '.') {
		unsigned digits = 0;

		for (i++; i < n && is_digit(s[i]); i++, digits++)
			if (digits < 9)
				ns = ns * 10 + (s[i] - '0');
		if (!digits)
			return -1;
		for (; digits < 9; digits++)
			ns *= 10;
	}
	if (i + 1 == n && s[i] == 'Z') {
		off = 0;
	} else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && !num(s + i + 1, 2, &oh) &&
		   s[i + 3] == ':' && !num(s + i + 4, 2, &om) && oh < 24 && om < 60) {
		off = (s[i] == '-' ? -1 : 1) * (int64_t)(oh * 3600 + om * 60);
	} else {
		return -1;
	}
	if (mo < 1 || mo > 12 || dd < 1 || dd > mdays[mo - 1] ||
	    (mo == 2 && dd == 29 && (y % 4 || (y % 100 == 0 && y % 400))) || h > 23 || mi > 59 ||
	    sec > 60)
		return -2;
	if (sec == 60) /* a leap second: the platform never had one; the last second it is */
		sec = 59;
	*ret_sec = days_from_civil(y, mo, dd) * 86400 + h * 3600 + mi * 60 + sec - off;
	*ret_ns = ns;
	return 0;
}

Google__Protobuf__Timestamp *lj_time(struct lj *d, int obj, const char *pre, const char *key,
				     enum lj_need need)
{
	int t = value(d, obj, pre, key, need), overflow, r;
	Google__Protobuf__Timestamp *ts;
	int64_t ms, sec;
	int32_t ns;

	if (t < 0)
		return NULL;
	if (int_text(d, t, &ms, &overflow)) {
		if (overflow || ms < MS_MIN || ms >= MS_MAX) {
			lj_fail(d, -ERANGE, pre, key, "out of range (want 1990..2099)");
			return NULL;
		}
		sec = ms / 1000;
		ns = (int32_t)(ms % 1000) * 1000000;
	} else if (d->tok[t].type == JSMN_STRING) {
		r = iso8601(d->js + d->tok[t].start, (size_t)(d->tok[t].end - d->tok[t].start),
			    &sec, &ns);
		if (r == -1) {
			lj_fail(d, -EBADMSG, pre, key,
				"wrong type (want epoch milliseconds or an ISO-8601 time)");
			return NULL;
		}
		if (r < 0 || sec < MS_MIN / 1000 || sec >= MS_MAX / 1000) {
			lj_fail(d, -ERANGE, pre, key, "out of range (want a date in 1990..2099)");
			return NULL;
		}
	} else {
		wrong_type(d, t, pre, key, "epoch milliseconds or an ISO-8601 string");
		return NULL;
	}
	ts = lj_alloc(d, sizeof(*ts));
	if (!ts)
		return NULL;
	google__protobuf__timestamp__init(ts);
	ts->seconds = sec;
	ts->nanos = ns;
	return ts;
}

int lj_enum(struct lj *d, int obj, const char *pre, const char *key, enum lj_need need,
	    const char *const *names, int n, int def)
{
	int t = value(d, obj, pre, key, need);

	if (t < 0)
		return def;
	if (d->tok[t].type != JSMN_STRING) {
		wrong_type(d, t, pre, key, "a string");
		return def;
	}
	for (int i = 0; i < n; i++)
		if (names[i] && raw_is(d, &d->tok[t], names[i]))
			return i;
	/* The value is not echoed: reasons never carry the event's content. */
	lj_fail(d, -ERANGE, pre, key, "out of range (not a known value)");
	return def;
}
