/* SPDX-License-Identifier: MIT */
/*
 * ferry-kafka-dump: print what a Kafka topic holds, from the beginning of
 * every partition, one JSON line per message:
 *
 *   {"partition":P,"offset":O,"key":"...","headers":{"name":"value",...},"value":"<base64>"}
 *
 * A key (or header) that is not valid UTF-8 (or holds a NUL) is given in
 * base64 as "key_b64" (or in a "headers_b64" object, the name in base64 too
 * when it is not UTF-8). A null key or value prints as null; "headers" is
 * left out when there are none. Duplicate header names are printed as they
 * are, duplicate JSON keys included.
 *
 * It stops when every partition is at its end and nothing arrived for
 * --idle-ms; with --expect N, exactly when N messages were read (and not
 * before, however idle). --timeout-ms bounds the whole run.
 *
 * Exit codes: 0 ok, 1 timeout or unknown topic, 100 usage, 111 system error.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

#include "common/time.h"

#define EXIT_FAILED 1
#define EXIT_USAGE  100
#define EXIT_SYSTEM 111

/* Metadata of an existing topic comes back in milliseconds; bound the wait anyway. */
#define METADATA_TIMEOUT_MS 10000

struct dump {
	rd_kafka_t *rk;
	const char *topic;
	int partitions;
	bool *at_eof;  /* per partition: at its end, nothing read since */
	bool *started; /* per partition: a message was read */
	int eof_count; /* partitions at_eof */
	bool count_only;
	uint64_t count; /* messages read */
	char *b64;	/* scratch for base64 */
	size_t b64_size;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ferry-kafka-dump -b BOOTSTRAP -t TOPIC [-f FORMAT] [--count-only]\n"
		"                        [--idle-ms N] [--expect N] [--timeout-ms N]\n"
		"\n"
		"  -b, --bootstrap LIST   bootstrap servers, HOST:PORT[,...]\n"
		"  -t, --topic TOPIC      topic to read from the beginning of every partition\n"
		"  -f, --format FORMAT    json (the default and, so far, the only one): one line\n"
		"                         "
		"{\"partition\",\"offset\",\"key\"|\"key_b64\",\"headers\",\n"
		"                         \"headers_b64\",\"value\" (base64)} per message\n"
		"      --count-only       print only the number of messages\n"
		"      --idle-ms N        stop when every partition is at its end and nothing\n"
		"                         arrived for N ms (default 2000)\n"
		"      --expect N         stop after exactly N messages (idle does not stop)\n"
		"      --timeout-ms N     give up after N ms: exit 1 (default: never)\n"
		"  -h, --help             this text\n"
		"\n"
		"Exit: 0 ok, 1 timeout or unknown topic, 100 usage, 111 system error.\n");
}

static int parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (*s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* Strict UTF-8 (no overlong forms, surrogates or code points above U+10FFFF), no NUL. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* Base64 (RFC 4648, padded) of p into d's scratch; the string, or NULL on ENOMEM. */
static const char *b64(struct dump *d, const void *p, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = p;
	size_t need = (len + 2) / 3 * 4 + 1, i;
	char *o;

	if (need > d->b64_size) {
		char *n = realloc(d->b64, need);

		if (!n)
			return NULL;
		d->b64 = n;
		d->b64_size = need;
	}
	o = d->b64;
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
	return d->b64;
}

/* A NUL-terminated copy of p[0..len), or NULL on ENOMEM. */
static char *strndup_bytes(const void *p, size_t len)
{
	char *s = malloc(len + 1);

	if (s) {
		memcpy(s, p, len);
		s[len] = 0;
	}
	return s;
}

/*
 * Add bytes p[0..len) to obj: as a string under name when they are UTF-8,
 * else in base64 under b64_name (into b64_obj when it is not obj); null
 * when p is NULL. 0 or -ENOMEM.
 */
static int add_bytes(struct dump *d, cJSON *obj, const char *name, cJSON *b64_obj,
		     const char *b64_name, const void *p, size_t len)
{
	cJSON *item;

	if (!p) {
		item = cJSON_CreateNull();
	} else if (utf8_valid(p, len)) {
		char *s = strndup_bytes(p, len);

		item = s ? cJSON_CreateString(s) : NULL;
		free(s);
	} else {
		const char *e = b64(d, p, len);

		item = e ? cJSON_CreateString(e) : NULL;
		obj = b64_obj;
		name = b64_name;
	}
	if (!item || !cJSON_AddItemToObject(obj, name, item)) {
		cJSON_Delete(item);
		return -ENOMEM;
	}
	return 0;
}

/* The headers of m into obj ("headers", "headers_b64"). 0 or -ENOMEM. */
static int add_headers(struct dump *d, cJSON *obj, const rd_kafka_message_t *m)
{
	rd_kafka_headers_t *hdrs;
	cJSON *h = NULL, *hb = NULL;
	const char *name;
	const void *val;
	size_t len;
	int r = 0;

	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0; /* none */
	for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &val, &len); i++) {
		bool name_ok = utf8_valid((const unsigned char *)name, strlen(name));
		bool val_ok = !val || utf8_valid(val, len);
		cJSON **into = name_ok && val_ok ? &h : &hb;

		if (!*into &&
		    !(*into = cJSON_AddObjectToObject(obj, into == &h ? "headers" : "headers_b64")))
			return -ENOMEM;
		if (into == &h) {
			r = add_bytes(d, h, name, h, name, val, len);
		} else {
			const char *nm = name_ok ? name : b64(d, name, strlen(name));
			/* Copy the name: b64() reuses its scratch for the value. */
			char *n = nm ? strdup(nm) : NULL;
			cJSON *item;

			if (!n)
				return -ENOMEM;
			item = val ? cJSON_CreateString(b64(d, val, len)) : cJSON_CreateNull();
			if (!item || !cJSON_AddItemToObject(hb, n, item)) {
				cJSON_Delete(item);
				r = -ENOMEM;
			}
			free(n);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* Print m as one JSON line. 0, -ENOMEM or -EIO. */
static int print_json(struct dump *d, const rd_kafka_message_t *m)
{
	cJSON *obj = cJSON_CreateObject();
	char *line = NULL;
	int r = -ENOMEM;

	if (!obj || !cJSON_AddNumberToObject(obj, "partition", m->partition) ||
	    !cJSON_AddNumberToObject(obj, "offset", (double)m->offset))
		goto out;
	if (add_bytes(d, obj, "key", obj, "key_b64", m->key, m->key_len) < 0)
		goto out;
	if (add_headers(d, obj, m) < 0)
		goto out;
	if (m->payload) {
		const char *e = b64(d, m->payload, m->len);

		if (!e || !cJSON_AddStringToObject(obj, "value", e))
			goto out;
	} else if (!cJSON_AddNullToObject(obj, "value")) {
		goto out;
	}
	line = cJSON_PrintUnformatted(obj);
	if (!line)
		goto out;
	r = puts(line) < 0 ? -EIO : 0;
out:
	cJSON_free(line);
	cJSON_Delete(obj);
	return r;
}

static rd_kafka_t *consumer_new(const char *bootstrap)
{
	const char *kv[][2] = {
		{"bootstrap.servers", bootstrap},
		{"client.id", "ferry-kafka-dump"},
		/* assign() wants a group; it is never joined nor committed to. */
		{"group.id", "ferry-kafka-dump"},
		{"enable.auto.commit", "false"},
		{"enable.auto.offset.store", "false"},
		{"enable.partition.eof", "true"},
		/* At a partition's end, answer soon so the idle clock is exact enough. */
		{"fetch.wait.max.ms", "100"},
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[512];
	rd_kafka_t *rk;

	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
		if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof(errstr)) !=
		    RD_KAFKA_CONF_OK) {
			fprintf(stderr, "ferry-kafka-dump: %s\n", errstr);
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "ferry-kafka-dump: rd_kafka_new: %s\n", errstr);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_poll_set_consumer(rk);
	return rk;
}

/* The topic's partition count: > 0, or an exit code negated. */
static int topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err;
	int r;

	if (!rkt)
		return -EXIT_SYSTEM;
	err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
	rd_kafka_topic_destroy(rkt);
	if (err) {
		fprintf(stderr, "ferry-kafka-dump: metadata of '%s': %s\n", topic,
			rd_kafka_err2str(err));
		return err == RD_KAFKA_RESP_ERR__TIMED_OUT ? -EXIT_FAILED : -EXIT_SYSTEM;
	}
	if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1) {
		fprintf(stderr, "ferry-kafka-dump: topic '%s': %s\n", topic,
			md->topic_cnt == 1 && md->topics[0].err
				? rd_kafka_err2str(md->topics[0].err)
				: "no partitions");
		r = -EXIT_FAILED;
	} else {
		r = md->topics[0].partition_cnt;
	}
	rd_kafka_metadata_destroy(md);
	return r;
}

/* Assign every partition from its beginning. 0 or -EXIT_SYSTEM. */
static int assign_all(struct dump *d)
{
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(d->partitions);
	rd_kafka_resp_err_t err;

	for (int p = 0; p < d->partitions; p++)
		rd_kafka_topic_partition_list_add(parts, d->topic, p)->offset =
			RD_KAFKA_OFFSET_BEGINNING;
	err = rd_kafka_assign(d->rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	if (err) {
		fprintf(stderr, "ferry-kafka-dump: assign: %s\n", rd_kafka_err2str(err));
		return -EXIT_SYSTEM;
	}
	return 0;
}

/* Take one event: 0, or an exit code negated. */
static int handle(struct dump *d, rd_kafka_message_t *m, uint64_t *last_ns)
{
	if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
		if (m->partition >= 0 && m->partition < d->partitions && !d->at_eof[m->partition]) {
			d->at_eof[m->partition] = true;
			d->eof_count++;
		}
		return 0;
	}
	if (m->err) {
		fprintf(stderr, "ferry-kafka-dump: %s\n", rd_kafka_message_errstr(m));
		if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
			return -EXIT_FAILED;
		if (m->err == RD_KAFKA_RESP_ERR__FATAL ||
		    m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
			return -EXIT_SYSTEM;
		return 0; /* transient: librdkafka retries */
	}
	if (m->partition >= 0 && m->partition < d->partitions) {
		if (d->at_eof[m->partition]) {
			d->at_eof[m->partition] = false;
			d->eof_count--;
		}
		/* Say so when the head of the log is gone: it is easily mistaken for loss. */
		if (!d->started[m->partition] && m->offset > 0)
			fprintf(stderr,
				"ferry-kafka-dump: note: partition %d starts at offset %lld: older "
				"messages were deleted (retention; the mock keeps 5 MiB per "
				"partition)\n",
				(int)m->partition, (long long)m->offset);
		d->started[m->partition] = true;
	}
	*last_ns = now_ns();
	d->count++;
	if (d->count_only)
		return 0;
	switch (print_json(d, m)) {
	case 0:
		return 0;
	case -EIO:
		fprintf(stderr, "ferry-kafka-dump: stdout: %s\n", strerror(errno));
		return -EXIT_SYSTEM;
	default:
		fprintf(stderr, "ferry-kafka-dump: out of memory\n");
		return -EXIT_SYSTEM;
	}
}

int main(int argc, char **argv)
{
	enum { OPT_COUNT_ONLY = 256, OPT_IDLE_MS, OPT_EXPECT, OPT_TIMEOUT_MS };
	static const struct option opts[] = {
		{"bootstrap", required_argument, NULL, 'b'},
		{"topic", required_argument, NULL, 't'},
		{"format", required_argument, NULL, 'f'},
		{"count-only", no_argument, NULL, OPT_COUNT_ONLY},
		{"idle-ms", required_argument, NULL, OPT_IDLE_MS},
		{"expect", required_argument, NULL, OPT_EXPECT},
		{"timeout-ms", required_argument, NULL, OPT_TIMEOUT_MS},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct dump d = {0};
	const char *bootstrap = NULL;
	uint64_t idle_ms = 2000, expect = 0, timeout_ms = 0, start, last, v;
	bool have_expect = false;
	int c, r, rc = EXIT_SYSTEM;

	while ((c = getopt_long(argc, argv, "b:t:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			bootstrap = optarg;
			break;
		case 't':
			d.topic = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "json") != 0) {
				fprintf(stderr, "ferry-kafka-dump: unknown format '%s' (json)\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_COUNT_ONLY:
			d.count_only = true;
			break;
		case OPT_IDLE_MS:
		case OPT_EXPECT:
		case OPT_TIMEOUT_MS:
			if (parse_u64(optarg, c == OPT_EXPECT ? UINT64_MAX : INT_MAX, &v) < 0) {
				fprintf(stderr, "ferry-kafka-dump: bad number '%s'\n", optarg);
				return EXIT_USAGE;
			}
			have_expect |= c == OPT_EXPECT;
			if (c == OPT_IDLE_MS)
				idle_ms = v;
			else if (c == OPT_EXPECT)
				expect = v;
			else
				timeout_ms = v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc || !bootstrap || !*bootstrap || !d.topic || !*d.topic) {
		if (optind < argc)
			fprintf(stderr, "ferry-kafka-dump: unexpected argument '%s'\n",
				argv[optind]);
		else
			fprintf(stderr, "ferry-kafka-dump: -b and -t are required\n");
		usage(stderr);
		return EXIT_USAGE;
	}

	start = now_ns();
	last = start;
	d.rk = consumer_new(bootstrap);
	if (!d.rk)
		return EXIT_SYSTEM;
	r = topic_partitions(d.rk, d.topic,
			     timeout_ms && timeout_ms < METADATA_TIMEOUT_MS ? (int)timeout_ms
									    : METADATA_TIMEOUT_MS);
	if (r < 0) {
		rc = -r;
		goto out;
	}
	d.partitions = r;
	d.at_eof = calloc((size_t)d.partitions, sizeof(*d.at_eof));
	d.started = calloc((size_t)d.partitions, sizeof(*d.started));
	if (!d.at_eof || !d.started) {
		fprintf(stderr, "ferry-kafka-dump: out of memory\n");
		goto out;
	}
	if (assign_all(&d) < 0)
		goto out;

	for (;;) {
		uint64_t now = now_ns(), wait_ms = 100;
		rd_kafka_message_t *m;

		if (have_expect ? d.count >= expect
				: d.eof_count == d.partitions && now - last >= idle_ms * 1000000)
			break;
		if (timeout_ms) {
			uint64_t elapsed_ms = (now - start) / 1000000;

			if (elapsed_ms >= timeout_ms) {
				fflush(stdout);
				if (have_expect)
					fprintf(stderr,
						"ferry-kafka-dump: timeout after %llu ms: %llu of "
						"%llu messages read\n",
						(unsigned long long)timeout_ms,
						(unsigned long long)d.count,
						(unsigned long long)expect);
				else
					fprintf(stderr,
						"ferry-kafka-dump: timeout after %llu ms: %llu "
						"messages read, %d of %d partitions at their end\n",
						(unsigned long long)timeout_ms,
						(unsigned long long)d.count, d.eof_count,
						d.partitions);
				rc = EXIT_FAILED;
				goto out;
			}
			if (timeout_ms - elapsed_ms < wait_ms)
				wait_ms = timeout_ms - elapsed_ms;
		}
		m = rd_kafka_consumer_poll(d.rk, (int)wait_ms);
		if (!m)
			continue;
		r = handle(&d, m, &last);
		rd_kafka_message_destroy(m);
		if (r < 0) {
			rc = -r;
			goto out;
		}
	}
	if (d.count_only)
		printf("%llu\n", (unsigned long long)d.count);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "ferry-kafka-dump: stdout: %s\n", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	rd_kafka_consumer_close(d.rk);
	rd_kafka_destroy(d.rk);
	free(d.at_eof);
	free(d.started);
	free(d.b64);
	return rc;
}
