/* SPDX-License-Identifier: MIT */
#include "supervisor/tail.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <protobuf-c/protobuf-c.h>

#include "common/config.h"
#include "common/registry.h"
#include "common/time.h"
#include "common/wire.h"
#include "supervisor/kafka-read.h"
#include "workers/map/catalog.h"

#define EXIT_FAILED 1
#define EXIT_USAGE  100
#define EXIT_SYSTEM 111

#define METADATA_TIMEOUT_MS 10000

static volatile sig_atomic_t tail_stop;

static void on_signal(int sig)
{
	(void)sig;
	tail_stop = 1;
}

struct tail {
	rd_kafka_t *rk;
	const char *topic;
	const struct catalog_entry *entry; /* the topic's catalog type, or NULL */
	int32_t indexes[WIRE_MAX_INDEXES]; /* its message indexes, compiled */
	size_t n_indexes;
	int partitions;
	int at_eof; /* partitions at their end, nothing read since */
	bool *eof;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ferryctl tail [-b BOOTSTRAP | -c CONFIG] [-n COUNT] [-e] "
		"[--timeout-ms N] TOPIC\n"
		"\n"
		"  -b, --bootstrap LIST   Kafka bootstrap servers, HOST:PORT[,...]\n"
		"  -c, --config FILE      take [kafka] (bootstrap.servers, security...) from "
		"ferry's config\n"
		"  -n, --count N          stop after N records\n"
		"  -e, --exit-at-end      stop when every partition is at its end\n"
		"      --timeout-ms N     give up after N ms (exit 1)\n"
		"\n"
		"One JSON line per record, from the beginning of every partition: partition,\n"
		"offset, key, headers, schema_id, type, and the value decoded with the compiled\n"
		"catalog (proto3 JSON).\n");
}

/* protobuf's json_name: snake_case to lowerCamelCase. */
static void json_name(const char *name, char *buf, size_t cap)
{
	size_t o = 0;
	bool up = false;

	for (; *name && o + 1 < cap; name++) {
		if (*name == '_') {
			up = true;
			continue;
		}
		buf[o++] = up && *name >= 'a' && *name <= 'z' ? (char)(*name - 'a' + 'A') : *name;
		up = false;
	}
	buf[o] = 0;
}

static char *base64(const uint8_t *s, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63];
		*o++ = tab[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0);

		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = 0;
	return out;
}

/* RFC 3339 in UTC, with 0, 3, 6 or 9 fractional digits as protobuf's JSON printers write it. */
static cJSON *timestamp_json(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	int64_t secs = 0;
	int32_t nanos = 0;
	char buf[64], frac[16] = "";
	struct tm tm;
	time_t t;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const char *p = (const char *)m + d->fields[i].offset;

		if (!strcmp(d->fields[i].name, "seconds"))
			memcpy(&secs, p, sizeof(secs));
		else if (!strcmp(d->fields[i].name, "nanos"))
			memcpy(&nanos, p, sizeof(nanos));
	}
	t = (time_t)secs;
	if (nanos < 0 || nanos > 999999999 || !gmtime_r(&t, &tm))
		return NULL;
	if (nanos % 1000000 == 0 && nanos)
		snprintf(frac, sizeof(frac), ".%03d", nanos / 1000000);
	else if (nanos % 1000 == 0 && nanos)
		snprintf(frac, sizeof(frac), ".%06d", nanos / 1000);
	else if (nanos)
		snprintf(frac, sizeof(frac), ".%09d", nanos);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	strcat(buf, frac);
	strcat(buf, "Z");
	return cJSON_CreateString(buf);
}

static cJSON *message_json(const ProtobufCMessage *m);

/* One value of field f at p (an element of a repeated field, or the field itself). */
static cJSON *value_json(const ProtobufCFieldDescriptor *f, const void *p)
{
	char num[32];

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return cJSON_CreateNumber(*(const int32_t *)p);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return cJSON_CreateNumber(*(const uint32_t *)p);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		/* proto3 JSON: 64-bit integers are strings (doubles would round them) */
		snprintf(num, sizeof(num), "%" PRId64, *(const int64_t *)p);
		return cJSON_CreateString(num);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		snprintf(num, sizeof(num), "%" PRIu64, *(const uint64_t *)p);
		return cJSON_CreateString(num);
	case PROTOBUF_C_TYPE_FLOAT:
		return cJSON_CreateNumber(*(const float *)p);
	case PROTOBUF_C_TYPE_DOUBLE:
		return cJSON_CreateNumber(*(const double *)p);
	case PROTOBUF_C_TYPE_BOOL:
		return cJSON_CreateBool(*(const protobuf_c_boolean *)p);
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
			(const ProtobufCEnumDescriptor *)f->descriptor, v);

		return ev ? cJSON_CreateString(ev->name) : cJSON_CreateNumber(v);
	}
	case PROTOBUF_C_TYPE_STRING:
		return cJSON_CreateString(*(char *const *)p ? *(char *const *)p : "");
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		char *s = base64(b->data, b->len);
		cJSON *j = s ? cJSON_CreateString(s) : NULL;

		free(s);
		return j;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;

		if (!sub)
			return cJSON_CreateNull();
		if (!strcmp(sub->descriptor->name, "google.protobuf.Timestamp"))
			return timestamp_json(sub);
		return message_json(sub);
	}
	}
	return NULL;
}

/* Whether a field without presence holds its default (proto3 leaves those out). */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		return *(const uint32_t *)p == 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return *(const uint64_t *)p == 0;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)p == 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)p == 0;
	case PROTOBUF_C_TYPE_BOOL:
		return !*(const protobuf_c_boolean *)p;
	case PROTOBUF_C_TYPE_STRING:
		return !*(char *const *)p || !**(char *const *)p;
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)p)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return !*(void *const *)p;
	}
	return true;
}

/* Bytes one element of a repeated field takes in its array. */
static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

/* Any message, walked generically through its protobuf-c descriptor. */
static cJSON *message_json(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	cJSON *obj = cJSON_CreateObject();

	for (unsigned i = 0; obj && i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *p = (const char *)m + f->offset;
		const char *q = (const char *)m + f->quantifier_offset;
		char name[128];
		cJSON *v = NULL;

		json_name(f->name, name, sizeof(name));
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)q;
			const char *arr = *(char *const *)p;

			if (!n)
				continue;
			v = cJSON_CreateArray();
			for (size_t k = 0; v && k < n; k++) {
				cJSON *e = value_json(f, arr + k * elem_size(f));

				if (!e || !cJSON_AddItemToArray(v, e)) {
					cJSON_Delete(e);
					cJSON_Delete(v);
					v = NULL;
				}
			}
		} else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			if (*(const uint32_t *)q != f->id)
				continue;
			v = value_json(f, p);
		} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
			/* presence: a pointer for messages and strings, a has_ flag otherwise */
			if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING
				    ? !*(void *const *)p
				    : !*(const protobuf_c_boolean *)q)
				continue;
			v = value_json(f, p);
		} else {
			/* proto3 (no presence): a field at its default is not printed */
			if (f->label == PROTOBUF_C_LABEL_NONE && is_default(f, p))
				continue;
			v = value_json(f, p);
		}
		if (!v || !cJSON_AddItemToObject(obj, name, v)) {
			cJSON_Delete(v);
			cJSON_Delete(obj);
			obj = NULL;
		}
	}
	return obj;
}

/* The value of m into obj: schema_id, type, value (or error and value_b64). */
static int add_value(struct tail *t, cJSON *obj, const rd_kafka_message_t *m)
{
	const uint8_t *p = m->payload;
	size_t len = m->len;
	int32_t idx[WIRE_MAX_INDEXES];
	size_t n_idx = 0;
	uint32_t id;
	ProtobufCMessage *msg;
	const char *error = NULL;
	cJSON *v = NULL;
	int off;

	if (!p) {
		cJSON_AddNullToObject(obj, "value");
		return 0;
	}
	off = len && p[0] == WIRE_MAGIC
		      ? wire_header_read(p, len, &id, idx, WIRE_MAX_INDEXES, &n_idx)
		      : -EBADMSG;
	if (off > 0) {
		cJSON_AddNumberToObject(obj, "schema_id", id);
	} else {
		/* No wire header: the bare protobuf of a ferry without a registry. */
		cJSON_AddNullToObject(obj, "schema_id");
		off = 0;
	}
	if (!t->entry) {
		error = "not a catalog topic: no compiled type to decode it with";
	} else if (n_idx &&
		   (n_idx != t->n_indexes || memcmp(idx, t->indexes, n_idx * sizeof(idx[0])))) {
		error = "message indexes are not those of the topic's compiled type";
	} else {
		cJSON_AddStringToObject(obj, "type", t->entry->desc->name);
		msg = protobuf_c_message_unpack(t->entry->desc, NULL, len - (size_t)off, p + off);
		if (!msg) {
			error = "not a valid protobuf of the topic's compiled type";
		} else {
			v = message_json(msg);
			protobuf_c_message_free_unpacked(msg, NULL);
			if (!v)
				return -ENOMEM;
			cJSON_AddItemToObject(obj, "value", v);
		}
	}
	if (error) {
		char *b = base64(p, len);

		if (!b)
			return -ENOMEM;
		cJSON_AddStringToObject(obj, "error", error);
		cJSON_AddStringToObject(obj, "value_b64", b);
		free(b);
	}
	return 0;
}

static cJSON *bytes_json(const void *p, size_t len)
{
	char *s;
	cJSON *j;

	if (!p)
		return cJSON_CreateNull();
	s = malloc(len + 1);
	if (!s)
		return NULL;
	memcpy(s, p, len);
	s[len] = 0;
	/* cJSON escapes control characters; invalid UTF-8 passes as is (an operator's view) */
	j = cJSON_CreateString(s);
	free(s);
	return j;
}

static int print_record(struct tail *t, const rd_kafka_message_t *m)
{
	cJSON *obj = cJSON_CreateObject(), *h = NULL;
	rd_kafka_headers_t *hdrs;
	const char *name;
	const void *val;
	size_t len;
	char *line = NULL;
	int r = -ENOMEM;

	if (!obj || !cJSON_AddNumberToObject(obj, "partition", m->partition) ||
	    !cJSON_AddNumberToObject(obj, "offset", (double)m->offset) ||
	    !cJSON_AddItemToObject(obj, "key", bytes_json(m->key, m->key_len)))
		goto out;
	if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		h = cJSON_AddObjectToObject(obj, "headers");
		for (size_t i = 0; h && !rd_kafka_header_get_all(hdrs, i, &name, &val, &len); i++)
			cJSON_AddItemToObject(h, name, bytes_json(val, len));
	}
	if (add_value(t, obj, m) < 0)
		goto out;
	line = cJSON_PrintUnformatted(obj);
	if (!line)
		goto out;
	r = puts(line) < 0 || fflush(stdout) ? -EIO : 0;
out:
	cJSON_free(line);
	cJSON_Delete(obj);
	return r;
}

/* A consumer from -b, or from [kafka] of the config file. NULL on error (said). */
static rd_kafka_t *consumer_new(const char *bootstrap, const char *config)
{
	struct ferry_config cfg;
	char err[512];
	rd_kafka_t *rk;

	if (!config)
		return kread_consumer_new(NULL, bootstrap, "tail");
	if (config_load(config, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "ferryctl tail: %s\n", err);
		config_free(&cfg);
		return NULL;
	}
	rk = kread_consumer_new(&cfg, bootstrap, "tail");
	config_free(&cfg);
	return rk;
}

/* Every partition from its beginning. 0 or an exit code. */
static int assign_all(struct tail *t)
{
	int n = kread_partitions(t->rk, t->topic, METADATA_TIMEOUT_MS, "tail");
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_resp_err_t err;

	if (n < 0)
		return n == -ENOMEM ? EXIT_SYSTEM : EXIT_FAILED;
	t->partitions = n;
	t->eof = calloc((size_t)t->partitions, sizeof(*t->eof));
	parts = rd_kafka_topic_partition_list_new(t->partitions);
	if (!t->eof || !parts)
		return EXIT_SYSTEM;
	for (int p = 0; p < t->partitions; p++)
		rd_kafka_topic_partition_list_add(parts, t->topic, p)->offset =
			RD_KAFKA_OFFSET_BEGINNING;
	err = rd_kafka_assign(t->rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	if (err) {
		fprintf(stderr, "ferryctl tail: assign: %s\n", rd_kafka_err2str(err));
		return EXIT_SYSTEM;
	}
	return 0;
}

/* The topic's catalog type and its compiled message indexes (no request made). */
static void find_type(struct tail *t)
{
	struct registry_config rc = {.url = "http://unused.invalid"};
	struct registry *reg;
	char err[256];

	for (uint16_t i = 1; i < CATALOG_N; i++)
		if (!strcmp(catalog_get(i)->topic, t->topic))
			t->entry = catalog_get(i);
	if (!t->entry)
		return;
	/* The registry client knows the descriptor set's paths; it makes no request here. */
	reg = registry_new(&rc, catalog_fds, catalog_fds_len, err, sizeof(err));
	if (!reg || registry_message_indexes(reg, t->entry->desc->name, t->indexes,
					     WIRE_MAX_INDEXES, &t->n_indexes) < 0)
		t->n_indexes = 0; /* unknown: not checked */
	registry_free(reg);
}

int tail_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"bootstrap", required_argument, NULL, 'b'},
		{"config", required_argument, NULL, 'c'},
		{"count", required_argument, NULL, 'n'},
		{"exit-at-end", no_argument, NULL, 'e'},
		{"timeout-ms", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *bootstrap = NULL, *config = NULL;
	unsigned long long count = 0, seen = 0, timeout_ms = 0;
	bool at_end = false;
	struct tail t = {0};
	struct sigaction sa = {.sa_handler = on_signal};
	uint64_t deadline;
	int c, r = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "b:c:n:eh", opts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'b':
			bootstrap = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'n':
		case 't':
			errno = 0;
			*(c == 'n' ? &count : &timeout_ms) = strtoull(optarg, &end, 10);
			if (errno || *end || *optarg == '-' || !*optarg) {
				fprintf(stderr, "ferryctl tail: -%c: want a number, got '%s'\n",
					c == 'n' ? 'n' : 't', optarg);
				return EXIT_USAGE;
			}
			break;
		case 'e':
			at_end = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || (!bootstrap && !config)) {
		fprintf(stderr, "ferryctl tail: want one TOPIC, and -b or -c\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	t.topic = argv[optind];
	find_type(&t);
	t.rk = consumer_new(bootstrap, config);
	if (!t.rk)
		return EXIT_SYSTEM;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	deadline = timeout_ms ? now_ns() + timeout_ms * 1000000ull : 0;
	r = assign_all(&t);
	while (!r && !tail_stop && (!count || seen < count)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(t.rk, 100);

		if (deadline && now_ns() > deadline) {
			fprintf(stderr, "ferryctl tail: timed out after %llu records\n", seen);
			r = EXIT_FAILED;
		}
		if (!m)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			if (m->partition >= 0 && m->partition < t.partitions &&
			    !t.eof[m->partition]) {
				t.eof[m->partition] = true;
				t.at_eof++;
			}
			if (at_end && t.at_eof == t.partitions)
				tail_stop = 1;
		} else if (m->err) {
			fprintf(stderr, "ferryctl tail: %s\n", rd_kafka_message_errstr(m));
			if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
			    m->err == RD_KAFKA_RESP_ERR__FATAL)
				r = EXIT_FAILED;
		} else {
			if (m->partition >= 0 && m->partition < t.partitions &&
			    t.eof[m->partition]) {
				t.eof[m->partition] = false;
				t.at_eof--;
			}
			seen++;
			if (print_record(&t, m) < 0) {
				fprintf(stderr, "ferryctl tail: cannot print: out of memory or "
						"stdout closed\n");
				r = EXIT_SYSTEM;
			}
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(t.rk);
	rd_kafka_destroy(t.rk);
	free(t.eof);
	return r;
}
