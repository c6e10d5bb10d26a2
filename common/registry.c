/* SPDX-License-Identifier: MIT */
#include "common/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "google/protobuf/descriptor.pb-c.h"

#define REGISTRY_RESPONSE_MAX (16u * 1024 * 1024)
#define REGISTRY_DEPTH_MAX    32 /* import chains deeper than this are refused */
#define CT_REGISTRY	      "application/vnd.schemaregistry.v1+json"

typedef Google__Protobuf__FileDescriptorSet fdset_t;
typedef Google__Protobuf__FileDescriptorProto fdp_t;
typedef Google__Protobuf__DescriptorProto msg_t;
typedef Google__Protobuf__FieldDescriptorProto field_t;
typedef Google__Protobuf__EnumDescriptorProto enum_t;

/* A subject resolved for one file: what later references to it name. */
struct subject_entry {
	char *subject;
	const fdp_t *file;
	uint32_t id;
	int version;
};

struct registry {
	char *url, *username, *password, *ca_file, *cert_file, *key_file, *key_password;
	bool tls_verify_off, auto_register;
	enum registry_strategy strategy;
	long timeout_ms, retry_for_ms, retry_base_ms;

	CURL *curl;
	fdset_t *set;
	char **b64; /* per file of set: its FileDescriptorProto, base64 */
	struct subject_entry *subjects;
	size_t n_subjects;
	struct registry_schema **schemas;
	size_t n_schemas;
	unsigned int seed; /* backoff jitter */
	unsigned long requests;
};

struct buf {
	char *p;
	size_t len;
	bool too_big;
};

/* One HTTP answer: status and body (the registry's JSON, or NULL). */
struct answer {
	long status;
	cJSON *json;
	int error_code; /* the registry's "error_code", 0 when none */
	char message[256];
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static char *dup_opt(const char *s, bool *fail)
{
	char *d;

	if (!s || !*s)
		return NULL;
	d = strdup(s);
	if (!d)
		*fail = true;
	return d;
}

static void free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static char *base64_encode(const uint8_t *p, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	return out;
}

/* Strict base64 (with padding) to bytes; NULL on bad input. */
static uint8_t *base64_decode(const char *s, size_t *ret_len)
{
	size_t n = strlen(s), pad = 0;
	uint8_t *out;
	int got;

	if (n == 0 || n % 4 || n > INT32_MAX)
		return NULL;
	out = malloc(n / 4 * 3 + 1);
	if (!out)
		return NULL;
	got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	if (got < 0) {
		free(out);
		return NULL;
	}
	if (s[n - 1] == '=')
		pad++;
	if (s[n - 2] == '=')
		pad++;
	*ret_len = (size_t)got - pad;
	return out;
}

int registry_read_file(const char *path, uint8_t **ret, size_t *ret_len, char *err, size_t errlen)
{
	struct stat st;
	uint8_t *p = NULL;
	size_t got = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0 || st.st_size > 64 * 1024 * 1024) {
		rc = st.st_size > 64 * 1024 * 1024 ? -EFBIG : -errno;
		set_err(err, errlen, "%s: %s", path, strerror(-rc));
		goto fail;
	}
	p = malloc((size_t)st.st_size + 1);
	if (!p) {
		rc = -ENOMEM;
		set_err(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, p + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			set_err(err, errlen, "%s: read: %s", path, strerror(-rc));
			goto fail;
		}
		got += (size_t)n;
	}
	close(fd);
	*ret = p;
	*ret_len = got;
	return 0;
fail:
	free(p);
	close(fd);
	return rc;
}

/* ---- descriptors ---- */

static const fdp_t *file_by_name(const struct registry *r, const char *name, size_t *ret_i)
{
	for (size_t i = 0; i < r->set->n_file; i++)
		if (r->set->file[i]->name && !strcmp(r->set->file[i]->name, name)) {
			if (ret_i)
				*ret_i = i;
			return r->set->file[i];
		}
	return NULL;
}

/*
 * Find message (full name) in the set: its file and its index path (the
 * position among the file's messages, then among nested types).
 */
static const fdp_t *message_find(const struct registry *r, const char *message, int32_t *path,
				 size_t cap, size_t *ret_n, int *rc)
{
	*rc = -ENOENT;
	for (size_t f = 0; f < r->set->n_file; f++) {
		const fdp_t *file = r->set->file[f];
		const char *pkg = file->package ? file->package : "";
		size_t plen = strlen(pkg), n = 0;
		const char *rest = message;
		msg_t *const *list = file->message_type;
		size_t count = file->n_message_type;

		if (plen) {
			if (strncmp(message, pkg, plen) || message[plen] != '.')
				continue;
			rest = message + plen + 1;
		}
		while (*rest) {
			const char *dot = strchr(rest, '.');
			size_t clen = dot ? (size_t)(dot - rest) : strlen(rest);
			size_t i;

			for (i = 0; i < count; i++)
				if (strlen(list[i]->name) == clen &&
				    !strncmp(list[i]->name, rest, clen))
					break;
			if (i == count)
				break;
			if (n == cap) {
				*rc = -E2BIG;
				return NULL;
			}
			path[n++] = (int32_t)i;
			if (!dot) {
				*ret_n = n;
				*rc = 0;
				return file;
			}
			rest = dot + 1;
			count = list[i]->n_nested_type;
			list = list[i]->nested_type;
		}
	}
	return NULL;
}

int registry_message_indexes(const struct registry *r, const char *message, int32_t *ret,
			     size_t cap, size_t *ret_n)
{
	int rc;

	if (!r || !message || !ret || !ret_n)
		return -EINVAL;
	message_find(r, message, ret, cap, ret_n, &rc);
	return rc;
}

/* ---- comparing the registry's descriptor with the compiled one ---- */

struct diff {
	char *out;
	size_t len, cap;
	unsigned n;
};

static void diff_add(struct diff *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void diff_add(struct diff *d, const char *fmt, ...)
{
	va_list ap;
	int w;

	d->n++;
	if (d->len + 8 >= d->cap)
		return;
	if (d->n > 1)
		d->len += (size_t)snprintf(d->out + d->len, d->cap - d->len, "; ");
	if (d->len >= d->cap)
		return;
	va_start(ap, fmt);
	w = vsnprintf(d->out + d->len, d->cap - d->len, fmt, ap);
	va_end(ap);
	d->len = w < 0 ? d->len : d->len + (size_t)w;
	if (d->len >= d->cap)
		d->len = d->cap - 1;
}

static const char *type_str(int type)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
		&google__protobuf__field_descriptor_proto__type__descriptor, type);

	return v ? v->name + (strncmp(v->name, "TYPE_", 5) ? 0 : 5) : "?";
}

static const char *label_str(int label)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
		&google__protobuf__field_descriptor_proto__label__descriptor, label);

	return v ? v->name + (strncmp(v->name, "LABEL_", 6) ? 0 : 6) : "?";
}

/* Type names compare fully qualified when both are; else by their last part. */
static bool type_name_same(const char *a, const char *b)
{
	const char *la, *lb;

	a = a ? a : "";
	b = b ? b : "";
	if (*a == '.' && *b == '.')
		return !strcmp(a, b);
	a += *a == '.';
	b += *b == '.';
	if (!strcmp(a, b))
		return true;
	la = strrchr(a, '.');
	lb = strrchr(b, '.');
	return !strcmp(la ? la + 1 : a, lb ? lb + 1 : b);
}

static const field_t *field_by_number(const msg_t *m, int32_t number)
{
	for (size_t i = 0; i < m->n_field; i++)
		if (m->field[i]->number == number)
			return m->field[i];
	return NULL;
}

static void diff_fields(struct diff *d, const char *name, const msg_t *reg, const msg_t *mine)
{
	for (size_t i = 0; i < mine->n_field; i++) {
		const field_t *f = mine->field[i], *g = field_by_number(reg, f->number);

		if (!g) {
			diff_add(d, "field %s.%s = %d not in the registry's schema", name, f->name,
				 f->number);
			continue;
		}
		if (strcmp(f->name, g->name))
			diff_add(d, "field %s.%s = %d is named %s in the registry", name, f->name,
				 f->number, g->name);
		/* a registry may leave the type of a named type unresolved */
		if (f->has_type && g->has_type && f->type != g->type)
			diff_add(d, "field %s.%s: type %s in the registry, %s compiled", name,
				 f->name, type_str(g->type), type_str(f->type));
		else if ((f->type_name || g->type_name) &&
			 !type_name_same(f->type_name, g->type_name))
			diff_add(d, "field %s.%s: type %s in the registry, %s compiled", name,
				 f->name, g->type_name ? g->type_name : "?",
				 f->type_name ? f->type_name : "?");
		if ((f->has_label ? f->label : 1) != (g->has_label ? g->label : 1))
			diff_add(d, "field %s.%s: %s in the registry, %s compiled", name, f->name,
				 label_str(g->label), label_str(f->label));
	}
	for (size_t i = 0; i < reg->n_field; i++)
		if (!field_by_number(mine, reg->field[i]->number))
			diff_add(d, "field %s.%s = %d not in the compiled schema", name,
				 reg->field[i]->name, reg->field[i]->number);
}

static void diff_enums(struct diff *d, const char *scope, enum_t *const *reg, size_t n_reg,
		       enum_t *const *mine, size_t n_mine)
{
	for (size_t i = 0; i < n_mine; i++) {
		const enum_t *e = mine[i], *g = NULL;

		for (size_t j = 0; j < n_reg && !g; j++)
			if (!strcmp(reg[j]->name, e->name))
				g = reg[j];
		if (!g) {
			diff_add(d, "enum %s%s not in the registry's schema", scope, e->name);
			continue;
		}
		for (size_t v = 0; v < e->n_value; v++) {
			bool found = false;

			for (size_t w = 0; w < g->n_value && !found; w++)
				found = g->value[w]->number == e->value[v]->number &&
					!strcmp(g->value[w]->name, e->value[v]->name);
			if (!found)
				diff_add(d, "enum value %s%s.%s = %d not in the registry's schema",
					 scope, e->name, e->value[v]->name, e->value[v]->number);
		}
		if (g->n_value > e->n_value)
			diff_add(d, "enum %s%s has more values in the registry", scope, e->name);
	}
	for (size_t j = 0; j < n_reg; j++) {
		bool found = false;

		for (size_t i = 0; i < n_mine && !found; i++)
			found = !strcmp(reg[j]->name, mine[i]->name);
		if (!found)
			diff_add(d, "enum %s%s not in the compiled schema", scope, reg[j]->name);
	}
}

static void diff_messages(struct diff *d, const char *scope, msg_t *const *reg, size_t n_reg,
			  msg_t *const *mine, size_t n_mine, int depth)
{
	char name[512];

	if (depth > REGISTRY_DEPTH_MAX)
		return;
	for (size_t i = 0; i < n_mine; i++) {
		const msg_t *m = mine[i], *g = NULL;

		for (size_t j = 0; j < n_reg && !g; j++)
			if (!strcmp(reg[j]->name, m->name))
				g = reg[j];
		snprintf(name, sizeof(name), "%s%s", scope, m->name);
		if (!g) {
			diff_add(d, "message %s not in the registry's schema", name);
			continue;
		}
		diff_fields(d, name, g, m);
		strncat(name, ".", sizeof(name) - strlen(name) - 1);
		diff_enums(d, name, g->enum_type, g->n_enum_type, m->enum_type, m->n_enum_type);
		diff_messages(d, name, g->nested_type, g->n_nested_type, m->nested_type,
			      m->n_nested_type, depth + 1);
	}
	for (size_t j = 0; j < n_reg; j++) {
		bool found = false;

		for (size_t i = 0; i < n_mine && !found; i++)
			found = !strcmp(reg[j]->name, mine[i]->name);
		if (!found)
			diff_add(d, "message %s%s not in the compiled schema", scope, reg[j]->name);
	}
}

/* Semantic differences between two files (options, json names, comments ignored). */
static unsigned diff_files(const fdp_t *reg, const fdp_t *mine, char *out, size_t cap)
{
	struct diff d = {.out = out, .cap = cap};
	const char *rp = reg->package ? reg->package : "", *mp = mine->package ? mine->package : "";
	char scope[300];

	out[0] = 0;
	if (strcmp(rp, mp))
		diff_add(&d, "package %s in the registry, %s compiled", rp, mp);
	for (size_t i = 0; i < mine->n_dependency; i++) {
		bool found = false;

		for (size_t j = 0; j < reg->n_dependency && !found; j++)
			found = !strcmp(reg->dependency[j], mine->dependency[i]);
		if (!found)
			diff_add(&d, "import %s not in the registry's schema", mine->dependency[i]);
	}
	snprintf(scope, sizeof(scope), "%s%s", mp, *mp ? "." : "");
	diff_messages(&d, scope, reg->message_type, reg->n_message_type, mine->message_type,
		      mine->n_message_type, 0);
	diff_enums(&d, scope, reg->enum_type, reg->n_enum_type, mine->enum_type, mine->n_enum_type);
	return d.n;
}

/* ---- HTTP ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct buf *b = userdata;
	size_t n = size * nmemb;
	char *p;

	if (b->len + n > REGISTRY_RESPONSE_MAX) {
		b->too_big = true;
		return 0;
	}
	p = realloc(b->p, b->len + n + 1);
	if (!p)
		return 0;
	memcpy(p + b->len, data, n);
	b->p = p;
	b->len += n;
	b->p[b->len] = 0;
	return n;
}

static bool curl_retriable(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
		return true;
	default:
		return false;
	}
}

/* The URL for a log line: never one that carries user:password. */
static const char *url_for_log(const struct registry *r)
{
	return strchr(r->url, '@') ? "(the registry url)" : r->url;
}

static int curl_setup(struct registry *r, const char *method, const char *url, const char *body,
		      struct curl_slist *hdrs, struct buf *b)
{
	CURL *e = r->curl;
	CURLcode c = CURLE_OK;

	curl_easy_reset(e);
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (c == CURLE_OK)                                                                 \
			c = curl_easy_setopt(e, opt, val);                                         \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_TIMEOUT_MS, r->timeout_ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
	SET(CURLOPT_HTTPHEADER, hdrs);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, b);
	SET(CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		SET(CURLOPT_POSTFIELDS, body);
		SET(CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	if (r->username) {
		SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		SET(CURLOPT_USERNAME, r->username);
		SET(CURLOPT_PASSWORD, r->password ? r->password : "");
	}
	if (r->ca_file)
		SET(CURLOPT_CAINFO, r->ca_file);
	if (r->cert_file)
		SET(CURLOPT_SSLCERT, r->cert_file);
	if (r->key_file)
		SET(CURLOPT_SSLKEY, r->key_file);
	if (r->key_password)
		SET(CURLOPT_KEYPASSWD, r->key_password);
	if (r->tls_verify_off) {
		SET(CURLOPT_SSL_VERIFYPEER, 0L);
		SET(CURLOPT_SSL_VERIFYHOST, 0L);
	}
#undef SET
	return c == CURLE_OK ? 0 : -EINVAL;
}

/*
 * One request, retried while the registry is unreachable or answers 5xx/429
 * (for up to retry_for_ms). 0 with *a filled (any HTTP status), or
 * -EHOSTUNREACH / -EPROTO / -ENOMEM with err set.
 */
static int http(struct registry *r, const char *method, const char *path, const char *body,
		struct answer *a, char *err, size_t errlen)
{
	struct curl_slist *hdrs = NULL, *h;
	long start = now_ms(), delay = r->retry_base_ms;
	unsigned attempts = 0;
	char url[2048], cerr[CURL_ERROR_SIZE];
	int rc;

	memset(a, 0, sizeof(*a));
	if ((size_t)snprintf(url, sizeof(url), "%s%s", r->url, path) >= sizeof(url)) {
		set_err(err, errlen, "schema registry: request path too long");
		return -EINVAL;
	}
	hdrs = curl_slist_append(NULL, "Accept: " CT_REGISTRY ", application/json");
	h = hdrs ? curl_slist_append(hdrs, "Content-Type: " CT_REGISTRY) : NULL;
	if (!h) {
		curl_slist_free_all(hdrs);
		set_err(err, errlen, "schema registry: out of memory");
		return -ENOMEM;
	}
	for (;;) {
		struct buf b = {0};
		CURLcode c;
		bool retry;

		attempts++;
		r->requests++;
		if (curl_setup(r, method, url, body, hdrs, &b)) {
			set_err(err, errlen, "schema registry: curl refused an option");
			rc = -EINVAL;
			break;
		}
		cerr[0] = 0;
		curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, cerr);
		c = curl_easy_perform(r->curl);
		curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, NULL);
		a->status = 0;
		if (c == CURLE_OK)
			curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &a->status);
		retry = c == CURLE_OK ? (a->status >= 500 || a->status == 429) : curl_retriable(c);
		if (c == CURLE_OK && !retry) {
			if (b.p) {
				cJSON *ec, *msg;

				a->json = cJSON_Parse(b.p);
				ec = cJSON_GetObjectItemCaseSensitive(a->json, "error_code");
				msg = cJSON_GetObjectItemCaseSensitive(a->json, "message");
				if (cJSON_IsNumber(ec))
					a->error_code = ec->valueint;
				if (cJSON_IsString(msg))
					snprintf(a->message, sizeof(a->message), "%s",
						 msg->valuestring);
			}
			free(b.p);
			rc = 0;
			break;
		}
		free(b.p);
		if (!retry || r->retry_for_ms < 0 || now_ms() - start >= r->retry_for_ms) {
			if (c != CURLE_OK)
				set_err(err, errlen,
					"schema registry %s unreachable (%u attempt%s over %ld "
					"ms): "
					"%s %s: %s",
					url_for_log(r), attempts, attempts == 1 ? "" : "s",
					now_ms() - start, method, path,
					cerr[0] ? cerr : curl_easy_strerror(c));
			else
				set_err(err, errlen,
					"schema registry %s failing (%u attempt%s over %ld ms): "
					"%s %s: HTTP %ld",
					url_for_log(r), attempts, attempts == 1 ? "" : "s",
					now_ms() - start, method, path, a->status);
			rc = retry || c != CURLE_OK ? -EHOSTUNREACH : -EPROTO;
			break;
		}
		/* full jitter between half and all of the delay: clients do not march in step */
		{
			long left = r->retry_for_ms - (now_ms() - start);
			long wait =
				delay / 2 + (long)(rand_r(&r->seed) % (unsigned)(delay / 2 + 1));

			sleep_ms(wait < left ? wait : (left > 0 ? left : 0));
			delay = delay * 2 > 5000 ? 5000 : delay * 2;
		}
	}
	curl_slist_free_all(hdrs);
	return rc;
}

static void answer_free(struct answer *a)
{
	cJSON_Delete(a->json);
	a->json = NULL;
}

/* "/subjects/<escaped subject><suffix>" */
static int subject_path(struct registry *r, const char *subject, const char *suffix, char *out,
			size_t cap)
{
	char *esc = curl_easy_escape(r->curl, subject, 0);
	int n;

	if (!esc)
		return -ENOMEM;
	n = snprintf(out, cap, "/subjects/%s%s", esc, suffix);
	curl_free(esc);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* The registry refused: map its answer to -errno and one line. */
static int refused(const struct answer *a, const char *what, const char *subject, char *err,
		   size_t errlen)
{
	int rc = -EPROTO;

	if (a->status == 401 || a->status == 403)
		rc = -EACCES;
	else if (a->status == 409)
		rc = -EEXIST;
	else if (a->error_code == 42201 || a->status == 422)
		rc = -EINVAL;
	else if (a->error_code == 40401 || a->error_code == 40403)
		rc = -ENOENT;
	set_err(err, errlen, "schema registry: %s subject %s: HTTP %ld, error %d: %s", what,
		subject, a->status, a->error_code, a->message[0] ? a->message : "(no message)");
	return rc;
}

/* ---- registering and looking up ---- */

/*
 * Files every Confluent client and the registry know built in (well-known
 * types): never registered, never referenced, as Confluent's serializers do.
 */
static bool builtin_file(const char *name)
{
	return !strncmp(name, "google/protobuf/", 16) || !strncmp(name, "google/type/", 12) ||
	       !strncmp(name, "confluent/", 10);
}

static int resolve_file(struct registry *r, const fdp_t *file, size_t file_i, const char *subject,
			int depth, struct subject_entry **ret, char *err, size_t errlen);

static struct subject_entry *subject_cached(struct registry *r, const char *subject,
					    const fdp_t *file)
{
	for (size_t i = 0; i < r->n_subjects; i++)
		if (r->subjects[i].file == file && !strcmp(r->subjects[i].subject, subject))
			return &r->subjects[i];
	return NULL;
}

/* {"schemaType":"PROTOBUF","schema":...,"references":[...]}: imports resolved first. */
static char *schema_body(struct registry *r, const fdp_t *file, size_t file_i, int depth, char *err,
			 size_t errlen, int *rc)
{
	cJSON *root = cJSON_CreateObject(), *refs;
	char *out = NULL;

	*rc = -ENOMEM;
	if (!root || !cJSON_AddStringToObject(root, "schemaType", "PROTOBUF") ||
	    !cJSON_AddStringToObject(root, "schema", r->b64[file_i]))
		goto out;
	refs = cJSON_AddArrayToObject(root, "references");
	if (!refs)
		goto out;
	for (size_t i = 0; i < file->n_dependency; i++) {
		const char *dep_name = file->dependency[i];
		struct subject_entry *dep;
		size_t dep_i;
		const fdp_t *dep_file = file_by_name(r, dep_name, &dep_i);
		cJSON *ref;

		if (builtin_file(dep_name))
			continue;
		if (!dep_file) {
			set_err(err, errlen,
				"descriptor set: %s imports %s, which it does not hold (protoc "
				"--include_imports)",
				file->name, dep_name);
			*rc = -EINVAL;
			goto out;
		}
		*rc = resolve_file(r, dep_file, dep_i, dep_name, depth + 1, &dep, err, errlen);
		if (*rc)
			goto out;
		*rc = -ENOMEM;
		ref = cJSON_CreateObject();
		if (!ref || !cJSON_AddItemToArray(refs, ref) ||
		    !cJSON_AddStringToObject(ref, "name", dep_name) ||
		    !cJSON_AddStringToObject(ref, "subject", dep->subject) ||
		    !cJSON_AddNumberToObject(ref, "version", dep->version))
			goto out;
	}
	out = cJSON_PrintUnformatted(root);
	*rc = out ? 0 : -ENOMEM;
	if (*rc)
		set_err(err, errlen, "schema registry: out of memory");
out:
	if (*rc == -ENOMEM)
		set_err(err, errlen, "schema registry: out of memory");
	cJSON_Delete(root);
	return out;
}

static int json_int(const cJSON *obj, const char *key, long *ret)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 2147483647.0)
		return -1;
	*ret = (long)v->valuedouble;
	return 0;
}

/* The registry's latest schema of subject against the compiled file. */
static int compare_latest(struct registry *r, const fdp_t *file, const char *subject, long *ret_id,
			  long *ret_version, char *err, size_t errlen)
{
	struct answer a;
	char path[1024], diffs[768];
	const cJSON *schema, *type;
	fdp_t *theirs = NULL;
	uint8_t *raw = NULL;
	size_t raw_len = 0;
	int rc;

	rc = subject_path(r, subject, "/versions/latest?format=serialized", path, sizeof(path));
	if (rc)
		return rc;
	rc = http(r, "GET", path, NULL, &a, err, errlen);
	if (rc)
		return rc;
	if (a.status == 404 && (a.error_code == 40401 || a.error_code == 40402)) {
		set_err(err, errlen,
			"schema registry: subject %s: not registered (auto_register is off)",
			subject);
		rc = -ENOENT;
		goto out;
	}
	if (a.status != 200) {
		rc = refused(&a, "latest version of", subject, err, errlen);
		goto out;
	}
	schema = cJSON_GetObjectItemCaseSensitive(a.json, "schema");
	type = cJSON_GetObjectItemCaseSensitive(a.json, "schemaType");
	if (!cJSON_IsString(type) || strcmp(type->valuestring, "PROTOBUF")) {
		set_err(err, errlen,
			"schema registry: subject %s: the registry's latest schema is not "
			"Protobuf (%s)",
			subject, cJSON_IsString(type) ? type->valuestring : "AVRO");
		rc = -ESTALE;
		goto out;
	}
	if (!cJSON_IsString(schema) || json_int(a.json, "id", ret_id) ||
	    json_int(a.json, "version", ret_version) ||
	    !(raw = base64_decode(schema->valuestring, &raw_len)) ||
	    !(theirs = google__protobuf__file_descriptor_proto__unpack(NULL, raw_len, raw))) {
		set_err(err, errlen,
			"schema registry: subject %s: latest version unreadable (format=serialized "
			"should give a base64 FileDescriptorProto)",
			subject);
		rc = -EPROTO;
		goto out;
	}
	if (diff_files(theirs, file, diffs, sizeof(diffs))) {
		set_err(err, errlen,
			"schema registry: subject %s: the registry's latest schema (version %ld, "
			"id %ld) differs from the compiled %s: %s",
			subject, *ret_version, *ret_id, file->name, diffs);
		rc = -ESTALE;
		goto out;
	}
	rc = 0;
out:
	if (theirs)
		google__protobuf__file_descriptor_proto__free_unpacked(theirs, NULL);
	free(raw);
	answer_free(&a);
	return rc;
}

/*
 * Register (auto_register) or look up file under subject, its imports first.
 * *ret: the cached entry.
 */
static int resolve_file(struct registry *r, const fdp_t *file, size_t file_i, const char *subject,
			int depth, struct subject_entry **ret, char *err, size_t errlen)
{
	struct subject_entry *e = subject_cached(r, subject, file), *grown;
	struct answer a = {0};
	char path[1024], *body = NULL;
	long id = -1, version = -1;
	int rc;

	if (e) {
		*ret = e;
		return 0;
	}
	if (depth > REGISTRY_DEPTH_MAX) {
		set_err(err, errlen, "descriptor set: imports of %s nest too deep (a cycle?)",
			file->name);
		return -ELOOP;
	}
	body = schema_body(r, file, file_i, depth, err, errlen, &rc);
	if (!body)
		return rc;
	if (r->auto_register) {
		rc = subject_path(r, subject, "/versions", path, sizeof(path));
		if (rc || (rc = http(r, "POST", path, body, &a, err, errlen)))
			goto out;
		if (a.status != 200) {
			rc = refused(&a, "registering", subject, err, errlen);
			goto out;
		}
		if (json_int(a.json, "id", &id)) {
			set_err(err, errlen, "schema registry: subject %s: no id in the answer",
				subject);
			rc = -EPROTO;
			goto out;
		}
		json_int(a.json, "version", &version);
		answer_free(&a);
	}
	if (version < 0) {
		/* the version is what references name; a register answer may not carry it */
		rc = subject_path(r, subject, "", path, sizeof(path));
		if (rc || (rc = http(r, "POST", path, body, &a, err, errlen)))
			goto out;
		if (a.status == 200) {
			json_int(a.json, "id", &id);
			json_int(a.json, "version", &version);
		} else if (!r->auto_register && a.status == 404 &&
			   (a.error_code == 40401 || a.error_code == 40403)) {
			answer_free(&a);
			/* not this exact schema: name what differs (or accept a mere re-wording) */
			rc = compare_latest(r, file, subject, &id, &version, err, errlen);
			if (rc)
				goto out;
		} else {
			rc = refused(&a, "looking up the schema in", subject, err, errlen);
			goto out;
		}
		if (id < 0 || version < 0) {
			set_err(err, errlen,
				"schema registry: subject %s: lookup answered no id or version",
				subject);
			rc = -EPROTO;
			goto out;
		}
	}
	grown = realloc(r->subjects, (r->n_subjects + 1) * sizeof(*r->subjects));
	if (!grown) {
		rc = -ENOMEM;
		goto out;
	}
	r->subjects = grown;
	e = &r->subjects[r->n_subjects];
	e->subject = strdup(subject);
	if (!e->subject) {
		rc = -ENOMEM;
		goto out;
	}
	e->file = file;
	e->id = (uint32_t)id;
	e->version = (int)version;
	r->n_subjects++;
	*ret = e;
	rc = 0;
out:
	if (rc == -ENOMEM)
		set_err(err, errlen, "schema registry: out of memory");
	answer_free(&a);
	free(body);
	return rc;
}

int registry_resolve(struct registry *r, const char *message, const char *topic,
		     const struct registry_schema **ret, char *err, size_t errlen)
{
	struct registry_schema *s, **grown;
	struct subject_entry *e;
	char subject[512];
	const fdp_t *file;
	size_t file_i = 0;
	int rc;

	if (!r || !message || !ret || (r->strategy == REGISTRY_TOPIC_NAME && (!topic || !*topic))) {
		set_err(err, errlen, "registry_resolve: message%s missing",
			r && r->strategy == REGISTRY_TOPIC_NAME ? " or topic" : "");
		return -EINVAL;
	}
	if (r->strategy == REGISTRY_TOPIC_NAME)
		rc = snprintf(subject, sizeof(subject), "%s-value", topic);
	else
		rc = snprintf(subject, sizeof(subject), "%s", message);
	if (rc < 0 || (size_t)rc >= sizeof(subject) || strlen(message) >= sizeof(s->message)) {
		set_err(err, errlen, "registry_resolve: topic or message name too long");
		return -ENAMETOOLONG;
	}
	for (size_t i = 0; i < r->n_schemas; i++)
		if (!strcmp(r->schemas[i]->message, message) &&
		    !strcmp(r->schemas[i]->subject, subject)) {
			*ret = r->schemas[i];
			return 0;
		}
	s = calloc(1, sizeof(*s));
	if (!s) {
		set_err(err, errlen, "schema registry: out of memory");
		return -ENOMEM;
	}
	file = message_find(r, message, s->indexes, WIRE_MAX_INDEXES, &s->n_indexes, &rc);
	if (!file) {
		set_err(err, errlen, "message %s: %s", message,
			rc == -E2BIG ? "nested too deep" : "not in the descriptor set");
		goto fail;
	}
	file_by_name(r, file->name, &file_i);
	rc = resolve_file(r, file, file_i, subject, 0, &e, err, errlen);
	if (rc)
		goto fail;
	snprintf(s->message, sizeof(s->message), "%s", message);
	snprintf(s->subject, sizeof(s->subject), "%s", subject);
	s->id = e->id;
	s->version = e->version;
	rc = wire_header_write(s->header, sizeof(s->header), s->id, s->indexes, s->n_indexes);
	if (rc < 0) {
		set_err(err, errlen, "message %s: header: %s", message, strerror(-rc));
		goto fail;
	}
	s->header_len = (size_t)rc;
	grown = realloc(r->schemas, (r->n_schemas + 1) * sizeof(*r->schemas));
	if (!grown) {
		rc = -ENOMEM;
		set_err(err, errlen, "schema registry: out of memory");
		goto fail;
	}
	r->schemas = grown;
	r->schemas[r->n_schemas++] = s;
	*ret = s;
	return 0;
fail:
	free(s);
	return rc;
}

unsigned long registry_requests(const struct registry *r)
{
	return r ? r->requests : 0;
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	free(r->url);
	free(r->username);
	free_secret(r->password);
	free(r->ca_file);
	free(r->cert_file);
	free(r->key_file);
	free_secret(r->key_password);
	if (r->curl)
		curl_easy_cleanup(r->curl);
	if (r->b64)
		for (size_t i = 0; r->set && i < r->set->n_file; i++)
			free(r->b64[i]);
	free(r->b64);
	if (r->set)
		google__protobuf__file_descriptor_set__free_unpacked(r->set, NULL);
	for (size_t i = 0; i < r->n_subjects; i++)
		free(r->subjects[i].subject);
	free(r->subjects);
	for (size_t i = 0; i < r->n_schemas; i++)
		free(r->schemas[i]);
	free(r->schemas);
	free(r);
}

struct registry *registry_new(const struct registry_config *cfg, const void *fds, size_t len,
			      char *err, size_t errlen)
{
	struct registry *r;
	bool fail = false;
	size_t ulen;

	if (!cfg || !cfg->url || !fds || !len || cfg->strategy > REGISTRY_RECORD_NAME ||
	    (strncmp(cfg->url, "http://", 7) && strncmp(cfg->url, "https://", 8))) {
		set_err(err, errlen,
			"schema registry: url (http:// or https://) and a descriptor "
			"set are needed");
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		goto nomem;
	r->url = dup_opt(cfg->url, &fail);
	r->username = dup_opt(cfg->username, &fail);
	r->password = dup_opt(cfg->password, &fail);
	r->ca_file = dup_opt(cfg->ca_file, &fail);
	r->cert_file = dup_opt(cfg->cert_file, &fail);
	r->key_file = dup_opt(cfg->key_file, &fail);
	r->key_password = dup_opt(cfg->key_password, &fail);
	if (fail)
		goto nomem;
	ulen = strlen(r->url);
	while (ulen && r->url[ulen - 1] == '/')
		r->url[--ulen] = 0;
	r->tls_verify_off = cfg->tls_verify_off;
	r->auto_register = cfg->auto_register;
	r->strategy = cfg->strategy;
	r->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
	r->retry_for_ms = cfg->retry_for_ms ? cfg->retry_for_ms : 30000;
	r->retry_base_ms = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : 200;
	r->seed = (unsigned int)getpid() ^ (unsigned int)now_ms();
	r->curl = curl_easy_init();
	if (!r->curl)
		goto nomem;
	r->set = google__protobuf__file_descriptor_set__unpack(NULL, len, fds);
	if (!r->set || !r->set->n_file) {
		set_err(err, errlen, "descriptor set: not a FileDescriptorSet, or empty");
		registry_free(r);
		errno = EINVAL;
		return NULL;
	}
	r->b64 = calloc(r->set->n_file, sizeof(*r->b64));
	if (!r->b64)
		goto nomem;
	for (size_t i = 0; i < r->set->n_file; i++) {
		const fdp_t *f = r->set->file[i];
		size_t n = google__protobuf__file_descriptor_proto__get_packed_size(f);
		uint8_t *p;

		if (!f->name || !*f->name) {
			set_err(err, errlen, "descriptor set: file %zu has no name", i);
			registry_free(r);
			errno = EINVAL;
			return NULL;
		}
		p = malloc(n ? n : 1);
		if (!p)
			goto nomem;
		google__protobuf__file_descriptor_proto__pack(f, p);
		r->b64[i] = base64_encode(p, n);
		free(p);
		if (!r->b64[i])
			goto nomem;
	}
	return r;
nomem:
	set_err(err, errlen, "schema registry: out of memory");
	registry_free(r);
	errno = ENOMEM;
	return NULL;
}
