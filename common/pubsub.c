/* SPDX-License-Identifier: MIT */
#include "common/pubsub.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

struct pubsub_request {
	char method[8];
	char *url;
	struct curl_slist *headers;
	char *body;
	size_t body_len;
	struct sbuf resp;
	int too_large;
	char curl_err[CURL_ERROR_SIZE];
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

static int sb_reserve(struct sbuf *sb, size_t more)
{
	size_t cap;
	char *p;

	if (sb->oom)
		return -ENOMEM;
	if (sb->len + more + 1 <= sb->cap)
		return 0;
	cap = sb->cap ? sb->cap : 256;
	while (cap < sb->len + more + 1)
		cap *= 2;
	p = realloc(sb->p, cap);
	if (!p) {
		sb->oom = 1;
		return -ENOMEM;
	}
	sb->p = p;
	sb->cap = cap;
	return 0;
}

static void sb_addn(struct sbuf *sb, const void *s, size_t n)
{
	if (sb_reserve(sb, n))
		return;
	memcpy(sb->p + sb->len, s, n);
	sb->len += n;
	sb->p[sb->len] = 0;
}

static void sb_add(struct sbuf *sb, const char *s)
{
	sb_addn(sb, s, strlen(s));
}

static void sb_free(struct sbuf *sb)
{
	free(sb->p);
	memset(sb, 0, sizeof(*sb));
}

/* Bytes a JSON string literal of s takes, quotes included. */
static size_t json_str_len(const void *s, size_t n)
{
	const unsigned char *p = s;
	size_t len = 2;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"' || p[i] == '\\' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t')
			len += 2;
		else if (p[i] < 0x20 || p[i] == 0x7f)
			len += 6;
		else
			len += 1;
	}
	return len;
}

/* Append s (n bytes, UTF-8 passed through) as a JSON string literal. */
static void sb_json_str(struct sbuf *sb, const void *s, size_t n)
{
	const unsigned char *p = s;
	size_t run = 0;

	if (sb_reserve(sb, json_str_len(s, n)))
		return;
	sb->p[sb->len++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		char esc[8];

		if (c != '"' && c != '\\' && c >= 0x20 && c != 0x7f) {
			run++;
			continue;
		}
		memcpy(sb->p + sb->len, p + i - run, run);
		sb->len += run;
		run = 0;
		if (c == '"' || c == '\\')
			snprintf(esc, sizeof(esc), "\\%c", c);
		else if (c == '\n' || c == '\r' || c == '\t')
			snprintf(esc, sizeof(esc), "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
		else
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		memcpy(sb->p + sb->len, esc, strlen(esc));
		sb->len += strlen(esc);
	}
	memcpy(sb->p + sb->len, p + n - run, run);
	sb->len += run;
	sb->p[sb->len++] = '"';
	sb->p[sb->len] = 0;
}

static void sb_base64(struct sbuf *sb, const void *data, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	size_t out = (n + 2) / 3 * 4;
	char *q;

	if (sb_reserve(sb, out))
		return;
	q = sb->p + sb->len;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		*q++ = tab[(v >> 18) & 63];
		*q++ = tab[(v >> 12) & 63];
		*q++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*q++ = i + 2 < n ? tab[v & 63] : '=';
	}
	sb->len += out;
	sb->p[sb->len] = 0;
}

int64_t pubsub_base64_decode(const char *in, size_t len, unsigned char *out)
{
	uint32_t acc = 0;
	size_t pad = 0, j = 0;
	int bits = 0;

	while (len > 0 && in[len - 1] == '=' && pad < 2) {
		len--;
		pad++;
	}
	/* Padding, when present, completes a 4-character group. */
	if (len % 4 == 1 || (pad && (len + pad) % 4))
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		int v;

		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+' || c == '-')
			v = 62;
		else if (c == '/' || c == '_')
			v = 63;
		else
			return -EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[j++] = (unsigned char)(acc >> bits);
		}
	}
	return (int64_t)j;
}

static int two(const char *s, int *v)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	*v = (s[0] - '0') * 10 + (s[1] - '0');
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int pubsub_time_parse(const char *s, size_t len, uint64_t *ret_ns)
{
	int c1, c2, mo, d, h, mi, sec, oh = 0, om = 0;
	uint64_t frac = 0;
	int64_t t;
	size_t i = 19, digits = 0;

	if (!s || !ret_ns || len < 20 || two(s, &c1) || two(s + 2, &c2) || s[4] != '-' ||
	    two(s + 5, &mo) || s[7] != '-' || two(s + 8, &d) || (s[10] != 'T' && s[10] != 't') ||
	    two(s + 11, &h) || s[13] != ':' || two(s + 14, &mi) || s[16] != ':' ||
	    two(s + 17, &sec))
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	if (s[i] == '.') {
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++)
			if (digits < 9)
				frac = frac * 10 + (uint64_t)(s[i] - '0');
		if (digits == 0)
			return -EINVAL;
		for (size_t k = digits; k < 9; k++)
			frac *= 10;
	}
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && !two(s + i + 1, &oh) &&
		   s[i + 3] == ':' && !two(s + i + 4, &om) && oh < 24 && om < 60) {
		if (s[i] == '-') {
			oh = -oh;
			om = -om;
		}
		i += 6;
	} else {
		return -EINVAL;
	}
	if (i != len)
		return -EINVAL;
	t = days_from_civil(c1 * 100 + c2, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 +
	    (sec > 59 ? 59 : sec) - oh * 3600 - om * 60;
	if (t < 0 || t > (int64_t)(UINT64_MAX / 1000000000ull) - 1)
		return -EINVAL;
	*ret_ns = (uint64_t)t * 1000000000ull + frac;
	return 0;
}

/* "projects/P/<kind>/N" with no empty part and no control characters. */
static int name_ok(const char *name, const char *kind)
{
	size_t n, k = strlen(kind);
	const char *p, *slash;

	if (!name || (n = strlen(name)) == 0 || n > PUBSUB_NAME_MAX ||
	    strncmp(name, "projects/", 9))
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] <= 0x20 || name[i] == 0x7f)
			return 0;
	p = name + 9;
	slash = strchr(p, '/');
	if (!slash || slash == p || strncmp(slash + 1, kind, k) || slash[1 + k] != '/')
		return 0;
	p = slash + 2 + k;
	return *p && !strchr(p, '/');
}

/* Append a resource name to a URL path: '/' kept, anything not unreserved %-encoded. */
static void sb_path(struct sbuf *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[4];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    strchr("-._~/", c)) {
			sb_addn(sb, s, 1);
		} else {
			snprintf(esc, sizeof(esc), "%%%02X", c);
			sb_addn(sb, esc, 3);
		}
	}
}

void pubsub_request_free(struct pubsub_request *rq)
{
	if (!rq)
		return;
	/* The headers carry the bearer token. */
	for (struct curl_slist *l = rq->headers; l; l = l->next)
		OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(rq->headers);
	free(rq->url);
	free(rq->body);
	sb_free(&rq->resp);
	free(rq);
}

/*
 * A request: method, {base}/v1/{name}{suffix}, headers, and the body
 * (taken over from *body). Returns 0 or -EINVAL / -ENOMEM with err set.
 */
static int request_new(const char *method, const char *base, const char *auth, const char *name,
		       const char *suffix, struct sbuf *body, struct pubsub_request **ret,
		       char *err, size_t errlen)
{
	struct pubsub_request *rq = NULL;
	struct sbuf url = {0};
	size_t bl;

	*ret = NULL;
	if (!base || (strncmp(base, "http://", 7) && strncmp(base, "https://", 8)) ||
	    strpbrk(base, " \t\r\n") || (auth && strpbrk(auth, "\r\n"))) {
		errf(err, errlen, "pubsub: bad base URL or auth header");
		sb_free(body);
		return -EINVAL;
	}
	bl = strlen(base);
	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	sb_addn(&url, base, bl);
	sb_add(&url, "/v1/");
	sb_path(&url, name);
	sb_add(&url, suffix);
	rq = calloc(1, sizeof(*rq));
	if (!rq || url.oom || body->oom)
		goto nomem;
	snprintf(rq->method, sizeof(rq->method), "%s", method);
	rq->url = url.p;
	url.p = NULL;
	rq->body = body->p ? body->p : strdup("{}");
	rq->body_len = body->p ? body->len : 2;
	body->p = NULL;
	if (!rq->body)
		goto nomem;
	rq->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (!rq->headers || !curl_slist_append(rq->headers, "Expect:") ||
	    (auth && *auth && !curl_slist_append(rq->headers, auth)))
		goto nomem;
	*ret = rq;
	return 0;
nomem:
	sb_free(&url);
	sb_free(body);
	pubsub_request_free(rq);
	errf(err, errlen, "pubsub: out of memory");
	return -ENOMEM;
}

int pubsub_pull_new(const char *base, const char *auth, const char *subscription,
		    unsigned max_messages, unsigned flags, struct pubsub_request **ret, char *err,
		    size_t errlen)
{
	struct sbuf b = {0};
	char tmp[96];

	if (!ret || !name_ok(subscription, "subscriptions") || max_messages < 1 ||
	    max_messages > PUBSUB_PULL_MAX_MSGS || (flags & ~PUBSUB_PULL_RETURN_IMMEDIATELY)) {
		errf(err, errlen, "pubsub: bad pull arguments (subscription '%.200s')",
		     subscription ? subscription : "(null)");
		return -EINVAL;
	}
	snprintf(tmp, sizeof(tmp), "{\"maxMessages\":%u%s}", max_messages,
		 flags & PUBSUB_PULL_RETURN_IMMEDIATELY ? ",\"returnImmediately\":true" : "");
	sb_add(&b, tmp);
	return request_new("POST", base, auth, subscription, ":pull", &b, ret, err, errlen);
}

/* The ack id list shared by acknowledge and modifyAckDeadline. */
static int ids_new(const char *verb, const char *base, const char *auth, const char *subscription,
		   const char *tail, const struct msg_bytes *ids, size_t n, size_t limit,
		   struct pubsub_request **ret, char *err, size_t errlen)
{
	static const char head[] = "{\"ackIds\":[";
	struct sbuf b = {0};
	size_t total, take = 0;
	int r;

	if (!ret || !name_ok(subscription, "subscriptions") || !ids || n == 0) {
		errf(err, errlen, "pubsub: bad %s arguments (subscription '%.200s')", verb + 1,
		     subscription ? subscription : "(null)");
		return -EINVAL;
	}
	if (!limit)
		limit = PUBSUB_ACK_BODY_LIMIT;
	total = strlen(head) + strlen(tail);
	for (; take < n; take++) {
		size_t cost;

		if (!ids[take].p || ids[take].len == 0 || ids[take].len > PUBSUB_ACK_ID_MAX) {
			errf(err, errlen, "pubsub: %s: ack id %zu is empty or longer than %d bytes",
			     verb + 1, take, PUBSUB_ACK_ID_MAX);
			return -EINVAL;
		}
		cost = json_str_len(ids[take].p, ids[take].len) + (take ? 1 : 0);
		if (total + cost > limit)
			break;
		total += cost;
	}
	if (take == 0) {
		errf(err, errlen, "pubsub: %s: a limit of %zu bytes leaves no room for an ack id",
		     verb + 1, limit);
		return -EMSGSIZE;
	}
	if (sb_reserve(&b, total)) {
		errf(err, errlen, "pubsub: out of memory");
		return -ENOMEM;
	}
	sb_add(&b, head);
	for (size_t i = 0; i < take; i++) {
		if (i)
			sb_addn(&b, ",", 1);
		sb_json_str(&b, ids[i].p, ids[i].len);
	}
	sb_add(&b, tail);
	r = request_new("POST", base, auth, subscription, verb, &b, ret, err, errlen);
	return r < 0 ? r : (int)take;
}

int pubsub_ack_new(const char *base, const char *auth, const char *subscription,
		   const struct msg_bytes *ids, size_t n, size_t limit, struct pubsub_request **ret,
		   char *err, size_t errlen)
{
	if (n > INT32_MAX)
		n = INT32_MAX;
	return ids_new(":acknowledge", base, auth, subscription, "]}", ids, n, limit, ret, err,
		       errlen);
}

int pubsub_modack_new(const char *base, const char *auth, const char *subscription,
		      unsigned deadline_s, const struct msg_bytes *ids, size_t n, size_t limit,
		      struct pubsub_request **ret, char *err, size_t errlen)
{
	char tail[64];

	if (deadline_s > PUBSUB_DEADLINE_MAX) {
		errf(err, errlen, "pubsub: ack deadline %u s is over %d s", deadline_s,
		     PUBSUB_DEADLINE_MAX);
		return -EINVAL;
	}
	if (n > INT32_MAX)
		n = INT32_MAX;
	snprintf(tail, sizeof(tail), "],\"ackDeadlineSeconds\":%u}", deadline_s);
	return ids_new(":modifyAckDeadline", base, auth, subscription, tail, ids, n, limit, ret,
		       err, errlen);
}

int pubsub_topic_create_new(const char *base, const char *auth, const char *topic,
			    struct pubsub_request **ret, char *err, size_t errlen)
{
	struct sbuf b = {0};

	if (!ret || !name_ok(topic, "topics")) {
		errf(err, errlen, "pubsub: bad topic name '%.200s' (projects/P/topics/T)",
		     topic ? topic : "(null)");
		return -EINVAL;
	}
	sb_add(&b, "{}");
	return request_new("PUT", base, auth, topic, "", &b, ret, err, errlen);
}

int pubsub_subscription_create_new(const char *base, const char *auth, const char *subscription,
				   const char *topic, unsigned ack_deadline_s, int ordering,
				   struct pubsub_request **ret, char *err, size_t errlen)
{
	struct sbuf b = {0};
	char tmp[96];

	if (!ret || !name_ok(subscription, "subscriptions") || !name_ok(topic, "topics") ||
	    (ack_deadline_s && (ack_deadline_s < 10 || ack_deadline_s > PUBSUB_DEADLINE_MAX))) {
		errf(err, errlen, "pubsub: bad subscription arguments ('%.200s' on '%.200s')",
		     subscription ? subscription : "(null)", topic ? topic : "(null)");
		return -EINVAL;
	}
	sb_add(&b, "{\"topic\":");
	sb_json_str(&b, topic, strlen(topic));
	if (ack_deadline_s) {
		snprintf(tmp, sizeof(tmp), ",\"ackDeadlineSeconds\":%u", ack_deadline_s);
		sb_add(&b, tmp);
	}
	sb_add(&b,
	       ordering ? ",\"enableMessageOrdering\":true}" : ",\"enableMessageOrdering\":false}");
	return request_new("PUT", base, auth, subscription, "", &b, ret, err, errlen);
}

int pubsub_publish_new(const char *base, const char *auth, const char *topic,
		       const struct pubsub_out_msg *msgs, size_t n, struct pubsub_request **ret,
		       char *err, size_t errlen)
{
	struct sbuf b = {0};
	struct msg_kv kv;
	size_t pos;
	int r;

	if (!ret || !name_ok(topic, "topics") || !msgs || n == 0 || n > PUBSUB_PUBLISH_MAX_MSGS) {
		errf(err, errlen, "pubsub: bad publish arguments (topic '%.200s', %zu messages)",
		     topic ? topic : "(null)", n);
		return -EINVAL;
	}
	sb_add(&b, "{\"messages\":[");
	for (size_t i = 0; i < n; i++) {
		const struct pubsub_out_msg *m = &msgs[i];

		sb_add(&b, i ? ",{\"data\":\"" : "{\"data\":\"");
		sb_base64(&b, m->data.p, m->data.len);
		sb_add(&b, "\"");
		if (m->attrs.len) {
			int first = 1;

			sb_add(&b, ",\"attributes\":{");
			pos = 0;
			while ((r = msg_kv_next(m->attrs, &pos, &kv)) == 1) {
				if (!first)
					sb_addn(&b, ",", 1);
				first = 0;
				sb_json_str(&b, kv.key.p, kv.key.len);
				sb_addn(&b, ":", 1);
				sb_json_str(&b, kv.value.p, kv.value.len);
			}
			if (r < 0) {
				errf(err, errlen,
				     "pubsub: publish: attributes of message %zu are "
				     "malformed",
				     i);
				sb_free(&b);
				return -EINVAL;
			}
			sb_add(&b, "}");
		}
		if (m->ordering_key.len) {
			sb_add(&b, ",\"orderingKey\":");
			sb_json_str(&b, m->ordering_key.p, m->ordering_key.len);
		}
		sb_add(&b, "}");
		if (b.len > PUBSUB_PUBLISH_MAX) {
			errf(err, errlen, "pubsub: publish: request over %u bytes",
			     PUBSUB_PUBLISH_MAX);
			sb_free(&b);
			return -EMSGSIZE;
		}
	}
	sb_add(&b, "]}");
	return request_new("POST", base, auth, topic, ":publish", &b, ret, err, errlen);
}

const char *pubsub_request_method(const struct pubsub_request *rq)
{
	return rq ? rq->method : NULL;
}

const char *pubsub_request_url(const struct pubsub_request *rq)
{
	return rq ? rq->url : NULL;
}

const char *pubsub_request_body(const struct pubsub_request *rq, size_t *ret_len)
{
	if (ret_len)
		*ret_len = rq ? rq->body_len : 0;
	return rq ? rq->body : NULL;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct pubsub_request *rq = userdata;
	size_t n = size * nmemb;

	if (rq->resp.len + n > PUBSUB_RESPONSE_MAX) {
		rq->too_large = 1;
		return 0;
	}
	sb_addn(&rq->resp, data, n);
	return rq->resp.oom ? 0 : n;
}

int pubsub_request_attach(struct pubsub_request *rq, CURL *easy)
{
	CURLcode c = CURLE_OK;

	if (!rq || !easy)
		return -EINVAL;
	sb_free(&rq->resp);
	rq->too_large = 0;
	rq->curl_err[0] = 0;
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (c == CURLE_OK)                                                                 \
			c = curl_easy_setopt(easy, opt, val);                                      \
	} while (0)
	SET(CURLOPT_URL, rq->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	SET(CURLOPT_ACCEPT_ENCODING, ""); /* gzip: base64 payloads shrink well */
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_CUSTOMREQUEST, strcmp(rq->method, "POST") ? rq->method : NULL);
	SET(CURLOPT_POSTFIELDS, rq->body);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
	SET(CURLOPT_HTTPHEADER, rq->headers);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, rq);
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

int pubsub_request_finish(struct pubsub_request *rq, CURL *easy, CURLcode code, char **ret_body,
			  size_t *ret_len, long *ret_http_status, char *err, size_t errlen)
{
	char msg[512] = "";
	long status = 0;
	cJSON *j;

	if (ret_body)
		*ret_body = NULL;
	if (ret_len)
		*ret_len = 0;
	if (ret_http_status)
		*ret_http_status = 0;
	if (!rq || !easy)
		return -EINVAL;
	if (code != CURLE_OK) {
		if (rq->too_large) {
			errf(err, errlen, "pubsub: response larger than %u bytes",
			     PUBSUB_RESPONSE_MAX);
			return -EMSGSIZE;
		}
		if (rq->resp.oom) {
			errf(err, errlen, "pubsub: out of memory reading the response");
			return -ENOMEM;
		}
		errf(err, errlen, "pubsub: %s%s%s", curl_easy_strerror(code),
		     rq->curl_err[0] ? ": " : "", rq->curl_err);
		return -EIO;
	}
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	if (ret_http_status)
		*ret_http_status = status;
	sb_addn(&rq->resp, "", 0);
	if (sb_reserve(&rq->resp, 0)) {
		errf(err, errlen, "pubsub: out of memory reading the response");
		return -ENOMEM;
	}
	if (status >= 200 && status <= 299) {
		if (ret_len)
			*ret_len = rq->resp.len;
		if (ret_body) {
			*ret_body = rq->resp.p;
			memset(&rq->resp, 0, sizeof(rq->resp));
		}
		return 0;
	}
	/* Google's errors: {"error":{"code":404,"message":"...","status":"NOT_FOUND"}} */
	j = cJSON_ParseWithLength(rq->resp.p, rq->resp.len);
	if (j) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "status");

		if (cJSON_IsString(m) && m->valuestring[0])
			one_line(msg, sizeof(msg), m->valuestring, strlen(m->valuestring));
		else if (cJSON_IsString(s))
			one_line(msg, sizeof(msg), s->valuestring, strlen(s->valuestring));
		cJSON_Delete(j);
	}
	if (!msg[0] && rq->resp.len && rq->resp.p[0] != '<') /* a proxy's text, not HTML */
		one_line(msg, 200, rq->resp.p, strcspn(rq->resp.p, "\r\n"));
	if (!msg[0])
		snprintf(msg, sizeof(msg), "HTTP error");
	errf(err, errlen, "pubsub: %s (HTTP %ld)", msg, status);
	switch (status) {
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 409:
		return -EEXIST;
	case 408:
	case 429:
		return -EIO;
	default:
		return status >= 400 && status <= 499 ? -EINVAL : -EIO;
	}
}

int pubsub_call(struct pubsub_request *rq, CURL *easy, char **ret_body, size_t *ret_len,
		long *ret_http_status, char *err, size_t errlen)
{
	CURLcode code;
	int r = pubsub_request_attach(rq, easy);

	if (r < 0) {
		errf(err, errlen, "pubsub: cannot set up the transfer");
		return r;
	}
	code = curl_easy_perform(easy);
	return pubsub_request_finish(rq, easy, code, ret_body, ret_len, ret_http_status, err,
				     errlen);
}

/* ---- pull responses ---- */

/* Arena space one string takes (NUL-terminated, 8-aligned not needed). */
static size_t str_space(const cJSON *v)
{
	return cJSON_IsString(v) && v->valuestring ? strlen(v->valuestring) + 1 : 0;
}

struct arena {
	unsigned char *p;
	size_t used, cap;
};

static struct msg_bytes arena_str(struct arena *a, const char *s, size_t n)
{
	struct msg_bytes b = {a->p + a->used, (uint32_t)n};

	memcpy(a->p + a->used, s, n);
	a->p[a->used + n] = 0;
	a->used += n + 1;
	return b;
}

static size_t msg_space(const cJSON *rm)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(rm, "message"), *at, *kv;
	size_t n = str_space(cJSON_GetObjectItemCaseSensitive(rm, "ackId"));

	if (!cJSON_IsObject(m))
		return n;
	n += str_space(cJSON_GetObjectItemCaseSensitive(m, "messageId"));
	n += str_space(cJSON_GetObjectItemCaseSensitive(m, "orderingKey"));
	n += str_space(cJSON_GetObjectItemCaseSensitive(m, "publishTime"));
	n += str_space(cJSON_GetObjectItemCaseSensitive(m, "data")) / 4 * 3 + 4;
	at = cJSON_GetObjectItemCaseSensitive(m, "attributes");
	if (!cJSON_IsObject(at))
		return n;
	cJSON_ArrayForEach(kv, at)
	{
		if (kv->string && cJSON_IsString(kv))
			n += msg_kv_size((uint32_t)strlen(kv->string),
					 (uint32_t)strlen(kv->valuestring));
	}
	return n;
}

static void msg_fill(const cJSON *rm, struct pubsub_message *out, struct arena *a)
{
	const cJSON *m, *v, *at, *kv;
	const char *error = NULL;

#define FAIL(reason)                                                                               \
	do {                                                                                       \
		if (!error)                                                                        \
			error = (reason);                                                          \
	} while (0)
	memset(out, 0, sizeof(*out));
	if (!cJSON_IsObject(rm)) {
		out->error = "not an object";
		return;
	}
	v = cJSON_GetObjectItemCaseSensitive(rm, "ackId");
	if (!cJSON_IsString(v) || !v->valuestring[0]) {
		FAIL("ackId missing");
	} else {
		/* Kept even when too long: the caller may still ack it directly. */
		out->ack_id = arena_str(a, v->valuestring, strlen(v->valuestring));
		if (out->ack_id.len > PUBSUB_ACK_ID_MAX)
			FAIL("ackId longer than 1024 bytes");
	}
	v = cJSON_GetObjectItemCaseSensitive(rm, "deliveryAttempt");
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= UINT32_MAX)
		out->delivery_attempt = (uint32_t)v->valuedouble;
	m = cJSON_GetObjectItemCaseSensitive(rm, "message");
	if (!cJSON_IsObject(m)) {
		FAIL("message missing");
		out->error = error;
		return;
	}
	v = cJSON_GetObjectItemCaseSensitive(m, "messageId");
	if (cJSON_IsString(v) && v->valuestring[0])
		out->message_id = arena_str(a, v->valuestring, strlen(v->valuestring));
	else
		FAIL("messageId missing");
	v = cJSON_GetObjectItemCaseSensitive(m, "publishTime");
	if (cJSON_IsString(v)) {
		out->publish_time = arena_str(a, v->valuestring, strlen(v->valuestring));
		/* An unreadable time is no reason to refuse the message: 0 says unknown. */
		if (pubsub_time_parse(v->valuestring, out->publish_time.len, &out->publish_ns))
			out->publish_ns = 0;
	}
	v = cJSON_GetObjectItemCaseSensitive(m, "orderingKey");
	if (cJSON_IsString(v))
		out->ordering_key = arena_str(a, v->valuestring, strlen(v->valuestring));
	else if (v && !cJSON_IsNull(v))
		FAIL("orderingKey is not a string");
	at = cJSON_GetObjectItemCaseSensitive(m, "attributes");
	if (cJSON_IsObject(at)) {
		size_t start = a->used, pos = 0, cap = 0;

		cJSON_ArrayForEach(kv, at)
		{
			if (kv->string && cJSON_IsString(kv))
				cap += msg_kv_size((uint32_t)strlen(kv->string),
						   (uint32_t)strlen(kv->valuestring));
		}
		cJSON_ArrayForEach(kv, at)
		{
			if (!kv->string || !cJSON_IsString(kv)) {
				FAIL("attribute value is not a string");
				continue;
			}
			if (msg_kv_put(a->p + start, cap, &pos, kv->string,
				       (uint32_t)strlen(kv->string), kv->valuestring,
				       (uint32_t)strlen(kv->valuestring)))
				FAIL("attribute key longer than 65535 bytes");
		}
		out->attrs.p = a->p + start;
		out->attrs.len = (uint32_t)pos;
		a->used += cap;
	} else if (at && !cJSON_IsNull(at)) {
		FAIL("attributes is not an object");
	}
	v = cJSON_GetObjectItemCaseSensitive(m, "data");
	if (cJSON_IsString(v)) {
		int64_t n = pubsub_base64_decode(v->valuestring, strlen(v->valuestring),
						 a->p + a->used);

		if (n < 0) {
			FAIL("data is not valid base64");
		} else {
			out->data.p = a->p + a->used;
			out->data.len = (uint32_t)n;
			a->used += (size_t)n;
		}
	} else if (v && !cJSON_IsNull(v)) {
		FAIL("data is not a string");
	}
	out->error = error;
#undef FAIL
}

int pubsub_pull_parse(const char *body, size_t len, struct pubsub_pull **ret, char *err,
		      size_t errlen)
{
	struct pubsub_pull *p = NULL;
	struct arena a = {0};
	const cJSON *arr, *rm;
	size_t count = 0, space = 0, i = 0;
	cJSON *j;

	if (!ret || (!body && len)) {
		errf(err, errlen, "pubsub: bad arguments");
		return -EINVAL;
	}
	*ret = NULL;
	j = body ? cJSON_ParseWithLength(body, len) : NULL;
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		errf(err, errlen, "pubsub: pull response is not a JSON object");
		return -EPROTO;
	}
	arr = cJSON_GetObjectItemCaseSensitive(j, "receivedMessages");
	if (arr && !cJSON_IsArray(arr) && !cJSON_IsNull(arr)) {
		cJSON_Delete(j);
		errf(err, errlen, "pubsub: pull response: receivedMessages is not an array");
		return -EPROTO;
	}
	cJSON_ArrayForEach(rm, arr)
	{
		count++;
		space += msg_space(rm);
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		goto nomem;
	if (count) {
		p->msgs = calloc(count, sizeof(*p->msgs));
		a.cap = space + 1;
		a.p = malloc(a.cap);
		if (!p->msgs || !a.p)
			goto nomem;
	}
	p->mem = a.p;
	p->mem_len = a.cap;
	cJSON_ArrayForEach(rm, arr)
	{
		msg_fill(rm, &p->msgs[i++], &a);
	}
	p->count = count;
	cJSON_Delete(j);
	*ret = p;
	return 0;
nomem:
	cJSON_Delete(j);
	free(a.p);
	if (p)
		free(p->msgs);
	free(p);
	errf(err, errlen, "pubsub: out of memory");
	return -ENOMEM;
}

void pubsub_pull_free(struct pubsub_pull *p)
{
	if (!p)
		return;
	if (p->mem)
		OPENSSL_cleanse(p->mem, p->mem_len);
	free(p->mem);
	free(p->msgs);
	free(p);
}
