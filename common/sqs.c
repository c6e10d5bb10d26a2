/* SPDX-License-Identifier: MIT */
/* sqs: SQS JSON-protocol request bodies, response parsing, SNS envelope unwrapping. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "common/sqs.h"

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

/* ---- a growing byte buffer (request text, attribute lists) ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

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

static void sb_uint(struct sbuf *sb, unsigned long v)
{
	char b[24];

	sb_addn(sb, b, (size_t)snprintf(b, sizeof(b), "%lu", v));
}

/* A JSON string literal of s (n bytes): quotes, backslashes and control characters escaped. */
static void sb_json_str(struct sbuf *sb, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;

	sb_addn(sb, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		sb_addn(sb, s + run, i - run); /* the plain run before c */
		run = i + 1;
		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			sb_addn(sb, esc, 2);
		} else if (c == '\n' || c == '\t' || c == '\r') {
			esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
			sb_addn(sb, esc, 2);
		} else {
			sb_addn(sb, esc, 6);
		}
	}
	sb_addn(sb, s + run, n - run);
	sb_addn(sb, "\"", 1);
}

/* Hand the text to *ret: its length, or -ENOMEM. */
static int sb_finish(struct sbuf *sb, char **ret, char *err, size_t errlen)
{
	if (sb->oom || !sb->p) {
		free(sb->p);
		errf(err, errlen, "sqs: out of memory building a request");
		return -ENOMEM;
	}
	*ret = sb->p;
	return (int)sb->len;
}

/* ---- request bodies ---- */

static int url_ok(const char *queue_url, char *err, size_t errlen)
{
	if (!queue_url || !*queue_url) {
		errf(err, errlen, "sqs: no queue URL");
		return 0;
	}
	return 1;
}

int sqs_receive_request(const char *queue_url, unsigned max_messages, unsigned wait_s,
			unsigned visibility_s, char **ret, char *err, size_t errlen)
{
	struct sbuf sb = {0};

	if (!ret || !url_ok(queue_url, err, errlen))
		return -EINVAL;
	*ret = NULL;
	if (max_messages < 1 || max_messages > SQS_BATCH_MAX || wait_s > SQS_WAIT_MAX ||
	    visibility_s > SQS_VISIBILITY_MAX) {
		errf(err, errlen,
		     "sqs: ReceiveMessage of %u messages, wait %u s, visibility %u s: out of range "
		     "(1..%d, 0..%d, 0..%d)",
		     max_messages, wait_s, visibility_s, SQS_BATCH_MAX, SQS_WAIT_MAX,
		     SQS_VISIBILITY_MAX);
		return -EINVAL;
	}
	sb_add(&sb, "{\"QueueUrl\":");
	sb_json_str(&sb, queue_url, strlen(queue_url));
	sb_add(&sb, ",\"MaxNumberOfMessages\":");
	sb_uint(&sb, max_messages);
	sb_add(&sb, ",\"WaitTimeSeconds\":");
	sb_uint(&sb, wait_s);
	if (visibility_s) {
		sb_add(&sb, ",\"VisibilityTimeout\":");
		sb_uint(&sb, visibility_s);
	}
	/*
	 * System attributes under both names: AttributeNames is deprecated
	 * but the only one older servers (and emulators) know.
	 */
	sb_add(&sb, ",\"MessageAttributeNames\":[\"All\"],\"AttributeNames\":[\"All\"],"
		    "\"MessageSystemAttributeNames\":[\"All\"]}");
	return sb_finish(&sb, ret, err, errlen);
}

static int batch_request(const char *action, const char *queue_url, const struct sqs_batch_entry *e,
			 unsigned n, int visibility, char **ret, char *err, size_t errlen)
{
	struct sbuf sb = {0};

	if (!ret || !url_ok(queue_url, err, errlen))
		return -EINVAL;
	*ret = NULL;
	if (!e || n < 1 || n > SQS_BATCH_MAX) {
		errf(err, errlen, "sqs: %s of %u entries (1..%d)", action, n, SQS_BATCH_MAX);
		return -EINVAL;
	}
	for (unsigned i = 0; i < n; i++) {
		if (!e[i].receipt || e[i].receipt_len < 1 || e[i].receipt_len > SQS_RECEIPT_MAX) {
			errf(err, errlen, "sqs: %s entry %u: receipt handle of %u bytes (1..%d)",
			     action, i, e[i].receipt ? e[i].receipt_len : 0, SQS_RECEIPT_MAX);
			return -EINVAL;
		}
		if (visibility && e[i].visibility_s > SQS_VISIBILITY_MAX) {
			errf(err, errlen, "sqs: %s entry %u: visibility %u s (0..%d)", action, i,
			     e[i].visibility_s, SQS_VISIBILITY_MAX);
			return -EINVAL;
		}
	}
	sb_add(&sb, "{\"QueueUrl\":");
	sb_json_str(&sb, queue_url, strlen(queue_url));
	sb_add(&sb, ",\"Entries\":[");
	for (unsigned i = 0; i < n; i++) {
		sb_add(&sb, i ? ",{\"Id\":\"" : "{\"Id\":\"");
		sb_uint(&sb, i);
		sb_add(&sb, "\",\"ReceiptHandle\":");
		sb_json_str(&sb, e[i].receipt, e[i].receipt_len);
		if (visibility) {
			sb_add(&sb, ",\"VisibilityTimeout\":");
			sb_uint(&sb, e[i].visibility_s);
		}
		sb_add(&sb, "}");
	}
	sb_add(&sb, "]}");
	return sb_finish(&sb, ret, err, errlen);
}

int sqs_delete_batch_request(const char *queue_url, const struct sqs_batch_entry *e, unsigned n,
			     char **ret, char *err, size_t errlen)
{
	return batch_request("DeleteMessageBatch", queue_url, e, n, 0, ret, err, errlen);
}

int sqs_visibility_batch_request(const char *queue_url, const struct sqs_batch_entry *e, unsigned n,
				 char **ret, char *err, size_t errlen)
{
	return batch_request("ChangeMessageVisibilityBatch", queue_url, e, n, 1, ret, err, errlen);
}

int sqs_queue_attrs_request(const char *queue_url, char **ret, char *err, size_t errlen)
{
	struct sbuf sb = {0};

	if (!ret || !url_ok(queue_url, err, errlen))
		return -EINVAL;
	*ret = NULL;
	sb_add(&sb, "{\"QueueUrl\":");
	sb_json_str(&sb, queue_url, strlen(queue_url));
	sb_add(&sb, ",\"AttributeNames\":[\"VisibilityTimeout\",\"FifoQueue\"]}");
	return sb_finish(&sb, ret, err, errlen);
}

/* ---- response helpers ---- */

static const cJSON *member(const cJSON *o, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(o, name);
}

/* A decimal number in a string ("123"), at most max. Returns 0 or -1. */
static int dec_parse(const char *s, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (max - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*ret = v;
	return 0;
}

static struct msg_bytes str_view(const cJSON *s)
{
	struct msg_bytes b = {s->valuestring, (uint32_t)strlen(s->valuestring)};

	return b;
}

/* ---- ReceiveMessage ---- */

/* Append one attribute; a key over 64 KiB cannot be encoded. */
static int attr_put(struct sbuf *ab, const char *k, size_t klen, const char *v, size_t vlen,
		    const char **ret_error)
{
	size_t pos = ab->len;

	if (klen > UINT16_MAX || vlen > UINT32_MAX) {
		*ret_error = "message attribute name longer than 65535 bytes";
		return 0;
	}
	if (sb_reserve(ab, msg_kv_size((uint32_t)klen, (uint32_t)vlen)))
		return -ENOMEM;
	if (msg_kv_put(ab->p, ab->cap, &pos, k, (uint32_t)klen, v, (uint32_t)vlen))
		return -ENOMEM; /* cannot happen: reserved above */
	ab->len = pos;
	return 0;
}

static int attr_put_str(struct sbuf *ab, const char *k, const char *v, const char **ret_error)
{
	return attr_put(ab, k, strlen(k), v, strlen(v), ret_error);
}

/* SQS MessageAttributes: {"name":{"DataType":"String","StringValue":"v"}} (Binary: BinaryValue). */
static int sqs_attrs(const cJSON *ma, struct sbuf *ab, const char **ret_error)
{
	const cJSON *a;

	if (!ma || cJSON_IsNull(ma))
		return 0;
	if (!cJSON_IsObject(ma)) {
		*ret_error = "MessageAttributes is not an object";
		return 0;
	}
	cJSON_ArrayForEach(a, ma)
	{
		const cJSON *dt = member(a, "DataType"), *v;
		const char *t;
		int ret;

		if (!cJSON_IsString(dt)) {
			*ret_error = "message attribute without a DataType";
			return 0;
		}
		t = dt->valuestring;
		/* Custom types carry a label after the base type: "Binary.gzip", "Number.int". */
		if (!strncmp(t, "Binary", 6) && (t[6] == 0 || t[6] == '.')) {
			v = member(a, "BinaryValue");
		} else if ((!strncmp(t, "String", 6) || !strncmp(t, "Number", 6)) &&
			   (t[6] == 0 || t[6] == '.')) {
			v = member(a, "StringValue");
		} else {
			*ret_error = "message attribute of an unknown DataType";
			return 0;
		}
		if (!cJSON_IsString(v)) {
			*ret_error = "message attribute without the value its DataType names";
			return 0;
		}
		ret = attr_put_str(ab, a->string, v->valuestring, ret_error);
		if (ret < 0 || *ret_error)
			return ret;
	}
	return 0;
}

/*
 * Cheap test before a JSON parse: could this body be an SNS envelope? Most
 * bodies of raw delivery are not, and are not parsed twice for nothing.
 */
static int maybe_envelope(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
		i++;
	return i < n && s[i] == '{' && memmem(s, n, "\"TopicArn\"", 10) &&
	       memmem(s, n, "\"Type\"", 6);
}

/*
 * Unwrap an SNS Notification env into m (body, sns) and its attributes into ab.
 * Per-message problems go to *ret_error; returns 0 or -ENOMEM.
 */
static int sns_unwrap(const cJSON *env, struct sqs_message *m, struct sbuf *ab,
		      const char **ret_error)
{
	const cJSON *type = member(env, "Type"), *arn = member(env, "TopicArn");
	const cJSON *msg = member(env, "Message"), *id = member(env, "MessageId");
	const cJSON *subj = member(env, "Subject"), *ma = member(env, "MessageAttributes"), *a;
	int ret;

	if (!cJSON_IsString(type) || strcmp(type->valuestring, "Notification")) {
		*ret_error = "SNS envelope: Type is not \"Notification\"";
		return 0;
	}
	if (!cJSON_IsString(arn) || !*arn->valuestring) {
		*ret_error = "SNS envelope: TopicArn is not a string";
		return 0;
	}
	if (!cJSON_IsString(msg)) {
		*ret_error = "SNS envelope: Message is not a string";
		return 0;
	}
	if (!cJSON_IsString(id) || !*id->valuestring) {
		*ret_error = "SNS envelope: MessageId is not a string";
		return 0;
	}
	if (subj && !cJSON_IsNull(subj) && !cJSON_IsString(subj)) {
		*ret_error = "SNS envelope: Subject is not a string";
		return 0;
	}
	if (ma && !cJSON_IsNull(ma) && !cJSON_IsObject(ma)) {
		*ret_error = "SNS envelope: MessageAttributes is not an object";
		return 0;
	}
	ret = attr_put_str(ab, SNS_ATTR_TOPIC_ARN, arn->valuestring, ret_error);
	if (!ret)
		ret = attr_put_str(ab, SNS_ATTR_MSG_ID, id->valuestring, ret_error);
	if (!ret && cJSON_IsString(subj))
		ret = attr_put_str(ab, SNS_ATTR_SUBJECT, subj->valuestring, ret_error);
	if (ret < 0 || *ret_error)
		return ret;
	/* {"name":{"Type":"String","Value":"v"}}; a Binary Value stays base64 text. */
	cJSON_ArrayForEach(a, (cJSON_IsObject(ma) ? ma : NULL))
	{
		const cJSON *t = member(a, "Type"), *v = member(a, "Value");

		if (!cJSON_IsString(t) || !cJSON_IsString(v)) {
			*ret_error =
				"SNS envelope: a message attribute lacks a string Type or Value";
			return 0;
		}
		ret = attr_put_str(ab, a->string, v->valuestring, ret_error);
		if (ret < 0 || *ret_error)
			return ret;
	}
	m->body = str_view(msg);
	m->sns = 1;
	return 0;
}

/* System attributes: ApproximateReceiveCount, SentTimestamp, MessageGroupId, SequenceNumber. */
static void sys_attrs(const cJSON *sa, struct sqs_message *m, const char **ret_error)
{
	const cJSON *rc, *ts, *g, *sq;
	uint64_t v;

	if (!sa || cJSON_IsNull(sa))
		return;
	if (!cJSON_IsObject(sa)) {
		*ret_error = "Attributes is not an object";
		return;
	}
	rc = member(sa, "ApproximateReceiveCount");
	ts = member(sa, "SentTimestamp");
	g = member(sa, "MessageGroupId");
	sq = member(sa, "SequenceNumber");
	if (rc) {
		if (!cJSON_IsString(rc) || dec_parse(rc->valuestring, UINT32_MAX, &v)) {
			*ret_error = "ApproximateReceiveCount is not a number";
			return;
		}
		m->receive_count = (uint32_t)v;
	}
	if (ts) {
		if (!cJSON_IsString(ts) || dec_parse(ts->valuestring, UINT64_MAX, &v)) {
			*ret_error = "SentTimestamp is not a number";
			return;
		}
		m->sent_timestamp_ms = v;
	}
	if (g) {
		if (!cJSON_IsString(g)) {
			*ret_error = "MessageGroupId is not a string";
			return;
		}
		m->group_id = str_view(g);
	}
	if (sq) {
		if (!cJSON_IsString(sq)) {
			*ret_error = "SequenceNumber is not a string";
			return;
		}
		m->sequence_number = str_view(sq);
	}
}

/*
 * One entry of Messages into m; its attributes are appended to ab and their
 * place noted in *ret_off/ret_len (the buffer may still move). *ret_env gets
 * the envelope's parse tree when the body was one. Returns 0 or -ENOMEM;
 * everything else is m->error.
 */
static int message_parse(const cJSON *j, struct sqs_message *m, cJSON **ret_env, struct sbuf *ab,
			 size_t *ret_off, size_t *ret_len)
{
	const cJSON *id, *rh, *body;
	const char *error = NULL;
	cJSON *env = NULL;
	size_t start = ab->len;
	int ret = 0;

	*ret_off = start;
	*ret_len = 0;
	if (!cJSON_IsObject(j)) {
		m->error = "message is not a JSON object";
		return 0;
	}
	id = member(j, "MessageId");
	rh = member(j, "ReceiptHandle");
	body = member(j, "Body");
	/* Read every field that is there, so even a broken message can be dead-lettered. */
	if (cJSON_IsString(id))
		m->message_id = str_view(id);
	else
		error = "MessageId missing or not a string";
	if (cJSON_IsString(rh))
		m->receipt_handle = str_view(rh);
	if (!m->receipt_handle.len)
		error = "ReceiptHandle missing or empty";
	else if (m->receipt_handle.len > SQS_RECEIPT_MAX)
		error = "receipt handle longer than 1024";
	if (cJSON_IsString(body))
		m->body = m->raw_body = str_view(body);
	else if (!error)
		error = "Body missing or not a string";
	if (!error)
		sys_attrs(member(j, "Attributes"), m, &error);
	if (error)
		goto out;

	/* Ours first: msg_kv_find() must not find a producer's attribute of the same name. */
	if (m->group_id.len)
		ret = attr_put(ab, SQS_ATTR_GROUP_ID, strlen(SQS_ATTR_GROUP_ID), m->group_id.p,
			       m->group_id.len, &error);
	if (ret < 0 || error)
		goto out;
	if (maybe_envelope(m->raw_body.p, m->raw_body.len))
		env = cJSON_ParseWithLength(m->raw_body.p, m->raw_body.len);
	if (cJSON_IsObject(env) && member(env, "Type") && member(env, "TopicArn")) {
		ret = sns_unwrap(env, m, ab, &error);
	} else {
		cJSON_Delete(env); /* JSON, but not an envelope: a raw message */
		env = NULL;
		ret = sqs_attrs(member(j, "MessageAttributes"), ab, &error);
	}
out:
	if (ret < 0 || error) {
		cJSON_Delete(env);
		env = NULL;
		ab->len = start;
		m->body = m->raw_body;
		m->sns = 0;
		m->error = error;
	}
	*ret_env = env;
	*ret_len = ab->len - start;
	return ret;
}

void sqs_receive_free(struct sqs_receive *r)
{
	if (!r)
		return;
	cJSON_Delete(r->json_);
	for (unsigned i = 0; i < SQS_BATCH_MAX; i++)
		cJSON_Delete(r->env_[i]);
	free(r->attrs_);
	memset(r, 0, sizeof(*r));
}

int sqs_receive_parse(const char *json, size_t len, struct sqs_receive *ret, char *err,
		      size_t errlen)
{
	size_t off[SQS_BATCH_MAX], alen[SQS_BATCH_MAX];
	struct sbuf ab = {0};
	const cJSON *msgs, *j;
	cJSON *root;
	int n, rc;

	if (!ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (!json) {
		errf(err, errlen, "sqs: ReceiveMessage: no response body");
		return -EINVAL;
	}
	root = cJSON_ParseWithLength(json, len);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		errf(err, errlen, "sqs: ReceiveMessage: the response is not a JSON object");
		return -EPROTO;
	}
	ret->json_ = root;
	msgs = member(root, "Messages");
	if (!msgs || cJSON_IsNull(msgs)) {
		if (!root->child)
			return 0; /* "{}": nothing to receive */
		errf(err, errlen, "sqs: ReceiveMessage: the response has no Messages");
		return -EPROTO;
	}
	n = cJSON_GetArraySize(msgs);
	if (!cJSON_IsArray(msgs) || n > SQS_BATCH_MAX) {
		errf(err, errlen,
		     cJSON_IsArray(msgs) ? "sqs: ReceiveMessage: %d messages, more than %d"
					 : "sqs: ReceiveMessage: Messages is not an array",
		     n, SQS_BATCH_MAX);
		return -EPROTO;
	}
	n = 0;
	cJSON_ArrayForEach(j, msgs)
	{
		cJSON *env = NULL;

		rc = message_parse(j, &ret->msgs[n], &env, &ab, &off[n], &alen[n]);
		ret->env_[n] = env;
		if (rc < 0)
			goto oom;
		n++;
	}
	if (ab.oom)
		goto oom;
	/* The list is complete and will not move again: point the views at it. */
	ret->attrs_ = (unsigned char *)ab.p;
	for (int i = 0; i < n; i++) {
		ret->msgs[i].attrs.p = ab.p ? ab.p + off[i] : "";
		ret->msgs[i].attrs.len = (uint32_t)alen[i];
	}
	ret->n = (unsigned)n;
	return n;
oom:
	free(ab.p);
	errf(err, errlen, "sqs: ReceiveMessage: out of memory");
	return -ENOMEM;
}

/* ---- batch results ---- */

/* An entry Id as sqs_*_batch_request() made it: "0".."n-1". */
static int entry_index(const cJSON *e, unsigned n)
{
	const cJSON *id = member(e, "Id");
	uint64_t v;

	if (!cJSON_IsString(id) || dec_parse(id->valuestring, SQS_BATCH_MAX, &v) || v >= n ||
	    (id->valuestring[0] == '0' && id->valuestring[1]))
		return -1;
	return (int)v;
}

static void copy_cut(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src);
}

int sqs_batch_parse(const char *json, size_t len, unsigned n, struct sqs_batch_result *ret,
		    char *err, size_t errlen)
{
	const cJSON *ok, *failed, *e;
	cJSON *root;
	int rc = -EPROTO;

	if (!ret || !json || n < 1 || n > SQS_BATCH_MAX) {
		errf(err, errlen, "sqs: batch result of %u entries (1..%d)", n, SQS_BATCH_MAX);
		return -EINVAL;
	}
	memset(ret, 0, sizeof(*ret));
	ret->n = n;
	root = cJSON_ParseWithLength(json, len);
	if (!cJSON_IsObject(root)) {
		errf(err, errlen, "sqs: batch result: the response is not a JSON object");
		goto out;
	}
	ok = member(root, "Successful");
	failed = member(root, "Failed");
	if ((ok && !cJSON_IsNull(ok) && !cJSON_IsArray(ok)) ||
	    (failed && !cJSON_IsNull(failed) && !cJSON_IsArray(failed))) {
		errf(err, errlen, "sqs: batch result: Successful or Failed is not an array");
		goto out;
	}
	cJSON_ArrayForEach(e, (cJSON_IsArray(ok) ? ok : NULL))
	{
		int i = entry_index(e, n);

		if (i < 0 || ret->e[i].state) {
			errf(err, errlen,
			     "sqs: batch result: a Successful entry of bad or repeated Id");
			goto out;
		}
		ret->e[i].state = SQS_ENTRY_OK;
		ret->ok++;
	}
	cJSON_ArrayForEach(e, (cJSON_IsArray(failed) ? failed : NULL))
	{
		const cJSON *code = member(e, "Code"), *msg = member(e, "Message");
		const cJSON *sf = member(e, "SenderFault");
		int i = entry_index(e, n);

		if (i < 0 || ret->e[i].state) {
			errf(err, errlen,
			     "sqs: batch result: a Failed entry of bad or repeated Id");
			goto out;
		}
		/* Both required: guessing a fault's side would retry the hopeless or drop the rest.
		 */
		if (!cJSON_IsString(code) || !cJSON_IsBool(sf)) {
			errf(err, errlen,
			     "sqs: batch result: Failed entry %d without Code or SenderFault", i);
			goto out;
		}
		ret->e[i].state = SQS_ENTRY_FAILED;
		ret->e[i].sender_fault = cJSON_IsTrue(sf);
		copy_cut(ret->e[i].code, sizeof(ret->e[i].code), code->valuestring);
		if (cJSON_IsString(msg))
			copy_cut(ret->e[i].message, sizeof(ret->e[i].message), msg->valuestring);
		ret->failed++;
	}
	ret->missing = n - ret->ok - ret->failed;
	rc = 0;
out:
	cJSON_Delete(root);
	if (rc) {
		memset(ret, 0, sizeof(*ret));
		ret->n = n;
	}
	return rc;
}

/* ---- GetQueueAttributes ---- */

int sqs_queue_attrs_parse(const char *json, size_t len, struct sqs_queue_attrs *ret, char *err,
			  size_t errlen)
{
	const cJSON *a, *vis, *fifo;
	cJSON *root;
	uint64_t v;
	int rc = -EPROTO;

	if (!ret || !json)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	root = cJSON_ParseWithLength(json, len);
	a = member(root, "Attributes");
	if (!cJSON_IsObject(a)) {
		errf(err, errlen, "sqs: GetQueueAttributes: the response has no Attributes object");
		goto out;
	}
	vis = member(a, "VisibilityTimeout");
	fifo = member(a, "FifoQueue");
	if (!cJSON_IsString(vis) || dec_parse(vis->valuestring, SQS_VISIBILITY_MAX, &v)) {
		errf(err, errlen, "sqs: GetQueueAttributes: VisibilityTimeout missing or not 0..%d",
		     SQS_VISIBILITY_MAX);
		goto out;
	}
	if (fifo && (!cJSON_IsString(fifo) ||
		     (strcmp(fifo->valuestring, "true") && strcmp(fifo->valuestring, "false")))) {
		errf(err, errlen, "sqs: GetQueueAttributes: FifoQueue is neither true nor false");
		goto out;
	}
	ret->visibility_s = (uint32_t)v;
	ret->fifo = fifo && !strcmp(fifo->valuestring, "true");
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

/* ---- region ---- */

/* s (n bytes) ends with suffix: the length before it, else -1. */
static long strip_suffix(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n > k && !memcmp(s + n - k, suffix, k) ? (long)(n - k) : -1;
}

int sqs_region_from_url(const char *queue_url, char *region, size_t len)
{
	static const struct {
		const char *prefix, *suffix;
	} forms[] = {
		{"sqs.", ".amazonaws.com"},	 {"sqs.", ".amazonaws.com.cn"},
		{"sqs-fips.", ".amazonaws.com"}, {"sqs.", ".api.aws"},
		{"", ".queue.amazonaws.com"},
	};
	const char *h, *r = NULL;
	char host[256];
	size_t hl, rl = 0;

	if (!queue_url || !region || !len)
		return -EINVAL;
	if (!strncasecmp(queue_url, "https://", 8))
		h = queue_url + 8;
	else if (!strncasecmp(queue_url, "http://", 7))
		h = queue_url + 7;
	else
		return -EINVAL;
	hl = strcspn(h, "/:?#@");
	if (h[hl] == '@' || hl == 0 || hl >= sizeof(host))
		return -EINVAL; /* user info: not a queue URL */
	for (size_t i = 0; i < hl; i++)
		host[i] = (h[i] >= 'A' && h[i] <= 'Z') ? (char)(h[i] - 'A' + 'a') : h[i];
	host[hl] = 0;
	if (hl && host[hl - 1] == '.')
		host[--hl] = 0; /* a fully qualified name's root dot */

	if (!strcmp(host, "queue.amazonaws.com")) {
		r = "us-east-1"; /* the oldest form, before regions were in the name */
		rl = strlen(r);
	}
	for (size_t i = 0; !r && i < sizeof(forms) / sizeof(forms[0]); i++) {
		size_t pl = strlen(forms[i].prefix);
		long end = strip_suffix(host, hl, forms[i].suffix);

		if (end > (long)pl && !memcmp(host, forms[i].prefix, pl)) {
			r = host + pl;
			rl = (size_t)end - pl;
		}
	}
	if (!r)
		return -EINVAL;
	for (size_t i = 0; i < rl; i++)
		if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
			return -EINVAL;
	if (rl + 1 > len)
		return -ENOSPC;
	memcpy(region, r, rl);
	region[rl] = 0;
	return 0;
}
