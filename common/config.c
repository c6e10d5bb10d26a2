/* SPDX-License-Identifier: MIT */
/*
 * config: etc/ferry.conf read with inih, each value checked, [kafka] checked by librdkafka.
 *
 * Debian's inih calls the handler without a line number, so the parse goes through our own
 * reader: it counts lines (inih handles each line right after reading it), stops the parse at
 * the first error, refuses lines too long for inih's buffer (inih would split them), and looks
 * at each line the way inih will, to catch unknown sections that hold no key and indented
 * lines that inih would glue to the value above.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>
#include <librdkafka/rdkafka.h>

#include "common/compiler.h"
#include "common/config.h"

enum config_key {
	KEY_INSTANCE,
	KEY_SHARDS,
	KEY_RING_SIZE,
	KEY_ACK_RING_SIZE,
	KEY_POISON_STRIKES,
	KEY_HEARTBEAT_TIMEOUT,
	KEY_RESTART_DELAY_MIN,
	KEY_RESTART_DELAY_MAX,
	KEY_CONTROL_SOCKET,
	KEY_STAGE_DIR,
	KEY_METRICS_LISTEN,
	KEY_REPLAY_FILE,
	KEY_REPLAY_RATE,
	KEY_MAX_INFLIGHT,
	KEY_HANDBACK_DELAY,
	KEY_DLQ_SPOOL,
	KEY_SQS_QUEUE,
	KEY_SQS_QUEUES_FILE,
	KEY_SQS_REGION,
	KEY_SQS_ENDPOINT,
	KEY_SQS_PROFILE,
	KEY_SQS_WAIT_TIME,
	KEY_SQS_RECEIVES,
	KEY_SQS_VISIBILITY,
	KEY_PUBSUB_SUB,
	KEY_PUBSUB_SUBS_FILE,
	KEY_PUBSUB_ENDPOINT,
	KEY_PUBSUB_CREDENTIALS,
	KEY_PUBSUB_MAX_MESSAGES,
	KEY_PUBSUB_PULLS,
	KEY_KEYRING,
	KEY_TENANT_ATTRIBUTE,
	KEY_KMS_REGION,
	KEY_KMS_ENDPOINT,
	KEY_AWS_PROFILE,
	KEY_KEY_CACHE_TTL,
	KEY_TOPIC,
	KEY_DEAD_LETTER_TOPIC,
	KEY_FLUSH_TIMEOUT,
	KEY_REGISTRY_URL,
	KEY_REGISTRY_AUTO_REGISTER,
	KEY_REGISTRY_STRATEGY,
	KEY_REGISTRY_USERNAME,
	KEY_REGISTRY_PASSWORD,
	KEY_REGISTRY_CA_FILE,
	KEY_REGISTRY_CERT_FILE,
	KEY_REGISTRY_KEY_FILE,
	KEY_REGISTRY_TLS_VERIFY,
	KEY_REGISTRY_TIMEOUT,
	KEY_REGISTRY_RETRY_FOR,
	KEY_COUNT,
};

enum config_kind {
	KIND_UINT,     /* unsigned, min..max */
	KIND_RING,     /* size in bytes, power of two, min..max */
	KIND_DURATION, /* uint64_t ms, min..max */
	KIND_INSTANCE, /* char[], [A-Za-z0-9_.-], not starting with '.' */
	KIND_TOPIC,    /* char[], a Kafka topic name */
	KIND_PATH,     /* char[], anything that fits */
	KIND_QUEUE,    /* struct config_list of SQS queue URLs, repeatable */
	KIND_SUB,      /* struct config_list of Pub/Sub subscriptions, repeatable */
	KIND_BOOL,     /* unsigned 0/1 from false/true */
	KIND_URL,      /* char[], "" or http(s)://host... without spaces */
	KIND_STRATEGY, /* unsigned: topic = 0, record = 1 */
	KIND_LISTEN,   /* char[], "" or HOST:PORT (HOST a name, IPv4, or [IPv6]) */
};

struct config_key_def {
	const char *section;
	const char *name;
	enum config_kind kind;
	size_t offset; /* of the field in struct ferry_config */
	size_t size;   /* of the field */
	uint64_t min, max;
	const char *want; /* what a good value looks like */
};

_Static_assert(CONFIG_LINE_MAX + 1 == INI_MAX_LINE, "CONFIG_LINE_MAX follows inih's line buffer");

#define FIELD(f)       offsetof(struct ferry_config, f), sizeof(((struct ferry_config *)0)->f)
#define DURATION_FORMS "(e.g. 250ms, 10s, 5m, 1h; a bare number is seconds)"

static const char *const config_sections[] = {"ferry",	 "replay",  "ingest",	"sqs",	"pubsub",
					      "decrypt", "produce", "registry", "kafka"};

#define QUEUE_WANT                                                                                 \
	"want an SQS queue URL such as https://sqs.eu-west-1.amazonaws.com/123456789012/name"
#define SUB_WANT "want a subscription such as projects/PROJECT/subscriptions/NAME"

static const struct config_key_def config_keys[KEY_COUNT] = {
	[KEY_INSTANCE] = {"ferry", "instance", KIND_INSTANCE, FIELD(instance), 1, 63,
			  "want 1 to 63 characters of A-Z a-z 0-9 _ . - not starting with '.'"},
	[KEY_SHARDS] = {"ferry", "shards", KIND_UINT, FIELD(shards), 1, CONFIG_SHARDS_MAX,
			"want an integer from 1 to 64"},
	[KEY_RING_SIZE] = {"ferry", "ring_size", KIND_RING, FIELD(ring_size), 4ull << 20,
			   1ull << 30, "want a power of two from 4M to 1G"},
	[KEY_ACK_RING_SIZE] = {"ferry", "ack_ring_size", KIND_RING, FIELD(ack_ring_size),
			       64ull << 10, 1ull << 30, "want a power of two from 64K to 1G"},
	[KEY_POISON_STRIKES] = {"ferry", "poison_strikes", KIND_UINT, FIELD(poison_strikes), 1, 100,
				"want an integer from 1 to 100"},
	[KEY_HEARTBEAT_TIMEOUT] = {"ferry", "heartbeat_timeout", KIND_DURATION,
				   FIELD(heartbeat_timeout_ms), 1, CONFIG_DURATION_MAX_MS,
				   "want a duration from 1ms to 24h " DURATION_FORMS},
	[KEY_RESTART_DELAY_MIN] = {"ferry", "restart_delay_min", KIND_DURATION,
				   FIELD(restart_delay_min_ms), 1000, CONFIG_DURATION_MAX_MS,
				   "want a duration from 1s to 24h " DURATION_FORMS},
	[KEY_RESTART_DELAY_MAX] = {"ferry", "restart_delay_max", KIND_DURATION,
				   FIELD(restart_delay_max_ms), 1, CONFIG_DURATION_MAX_MS,
				   "want a duration from 1ms to 24h " DURATION_FORMS},
	[KEY_CONTROL_SOCKET] = {"ferry", "control_socket", KIND_PATH, FIELD(control_socket), 0, 0,
				"want a path shorter than 108 bytes"},
	[KEY_STAGE_DIR] = {"ferry", "stage_dir", KIND_PATH, FIELD(stage_dir), 0, 0,
			   "want a path shorter than PATH_MAX"},
	[KEY_METRICS_LISTEN] = {"ferry", "metrics_listen", KIND_LISTEN, FIELD(metrics_listen), 0, 0,
				"want HOST:PORT such as 127.0.0.1:9464 or [::1]:9464, port 1 to "
				"65535 (empty: no metrics endpoint)"},
	[KEY_REPLAY_FILE] = {"replay", "file", KIND_PATH, FIELD(replay_file), 0, 0,
			     "want a path shorter than PATH_MAX"},
	[KEY_REPLAY_RATE] = {"replay", "rate", KIND_UINT, FIELD(replay_rate), 0, 10000000,
			     "want messages per second from 0 (as fast as it goes) to 10000000"},
	[KEY_MAX_INFLIGHT] = {"ingest", "max_inflight", KIND_UINT, FIELD(max_inflight), 64,
			      1u << 20, "want a power of two from 64 to 1048576"},
	[KEY_HANDBACK_DELAY] = {"ingest", "handback_delay", KIND_DURATION, FIELD(handback_delay_ms),
				0, 12 * 3600 * 1000,
				"want a duration from 0 to 12h " DURATION_FORMS},
	[KEY_DLQ_SPOOL] = {"ingest", "dlq_spool", KIND_PATH, FIELD(dlq_spool), 0, 0,
			   "want a directory path shorter than PATH_MAX, or none"},
	[KEY_SQS_QUEUE] = {"sqs", "queue", KIND_QUEUE, FIELD(sqs_queues), 0, 0, QUEUE_WANT},
	[KEY_SQS_QUEUES_FILE] = {"sqs", "queues_file", KIND_PATH, FIELD(sqs_queues_file), 0, 0,
				 "want a path shorter than PATH_MAX"},
	[KEY_SQS_REGION] = {"sqs", "region", KIND_TOPIC, FIELD(sqs_region), 0, 31,
			    "want an AWS region such as eu-west-1"},
	[KEY_SQS_ENDPOINT] = {"sqs", "endpoint", KIND_PATH, FIELD(sqs_endpoint), 0, 0,
			      "want a URL such as http://127.0.0.1:5000 (empty: the queue's own)"},
	[KEY_SQS_PROFILE] = {"sqs", "aws_profile", KIND_PATH, FIELD(sqs_profile), 0, 0,
			     "want a profile name of the shared AWS files"},
	[KEY_SQS_WAIT_TIME] = {"sqs", "wait_time", KIND_DURATION, FIELD(sqs_wait_time_ms), 0,
			       20 * 1000, "want a duration from 0 to 20s " DURATION_FORMS},
	[KEY_SQS_RECEIVES] = {"sqs", "receives_per_queue", KIND_UINT, FIELD(sqs_receives), 1, 10,
			      "want an integer from 1 to 10"},
	[KEY_SQS_VISIBILITY] = {"sqs", "visibility_timeout", KIND_DURATION,
				FIELD(sqs_visibility_ms), 0, 12 * 3600 * 1000,
				"want a duration from 0 (the queue's own) to 12h " DURATION_FORMS},
	[KEY_PUBSUB_SUB] = {"pubsub", "subscription", KIND_SUB, FIELD(pubsub_subs), 0, 0, SUB_WANT},
	[KEY_PUBSUB_SUBS_FILE] = {"pubsub", "subscriptions_file", KIND_PATH,
				  FIELD(pubsub_subs_file), 0, 0,
				  "want a path shorter than PATH_MAX"},
	[KEY_PUBSUB_ENDPOINT] = {"pubsub", "endpoint", KIND_PATH, FIELD(pubsub_endpoint), 0, 0,
				 "want a URL such as http://127.0.0.1:8085 (empty: "
				 "$PUBSUB_EMULATOR_HOST, else Google's)"},
	[KEY_PUBSUB_CREDENTIALS] = {"pubsub", "credentials", KIND_PATH, FIELD(pubsub_credentials),
				    0, 0, "want the path of a service-account key file"},
	[KEY_PUBSUB_MAX_MESSAGES] = {"pubsub", "max_messages", KIND_UINT,
				     FIELD(pubsub_max_messages), 1, 1000,
				     "want an integer from 1 to 1000"},
	[KEY_PUBSUB_PULLS] = {"pubsub", "pulls_per_subscription", KIND_UINT, FIELD(pubsub_pulls), 1,
			      10, "want an integer from 1 to 10"},
	[KEY_KEYRING] = {"decrypt", "keyring", KIND_PATH, FIELD(keyring), 0, 0,
			 "want a directory path shorter than PATH_MAX"},
	[KEY_TENANT_ATTRIBUTE] = {"decrypt", "tenant_attribute", KIND_TOPIC,
				  FIELD(tenant_attribute), 1, 127,
				  "want a name of 1 to 127 characters of A-Z a-z 0-9 . _ -"},
	[KEY_KMS_REGION] = {"decrypt", "kms_region", KIND_TOPIC, FIELD(kms_region), 0, 63,
			    "want an AWS region such as eu-west-1"},
	[KEY_KMS_ENDPOINT] = {"decrypt", "kms_endpoint", KIND_PATH, FIELD(kms_endpoint), 0, 0,
			      "want a URL such as http://127.0.0.1:5000 (empty: AWS's own)"},
	[KEY_AWS_PROFILE] = {"decrypt", "aws_profile", KIND_PATH, FIELD(aws_profile), 0, 0,
			     "want a profile name of the shared AWS files"},
	[KEY_KEY_CACHE_TTL] = {"decrypt", "key_cache_ttl", KIND_DURATION, FIELD(key_cache_ttl_ms),
			       1000, CONFIG_DURATION_MAX_MS,
			       "want a duration from 1s to 24h " DURATION_FORMS},
	[KEY_TOPIC] = {"produce", "topic", KIND_TOPIC, FIELD(topic), 1, 249,
		       "want a Kafka topic name: 1 to 249 characters of A-Z a-z 0-9 . _ -, "
		       "not '.' or '..'"},
	[KEY_DEAD_LETTER_TOPIC] = {"produce", "dead_letter_topic", KIND_TOPIC,
				   FIELD(dead_letter_topic), 1, 249,
				   "want a Kafka topic name: 1 to 249 characters of A-Z a-z 0-9 . "
				   "_ -, not '.' or '..'"},
	[KEY_FLUSH_TIMEOUT] = {"produce", "flush_timeout", KIND_DURATION, FIELD(flush_timeout_ms),
			       1, CONFIG_DURATION_MAX_MS,
			       "want a duration from 1ms to 24h " DURATION_FORMS},
	[KEY_REGISTRY_URL] = {"registry", "url", KIND_URL, FIELD(registry_url), 0, 0,
			      "want a URL such as https://registry.example:8081 (empty: none)"},
	[KEY_REGISTRY_AUTO_REGISTER] = {"registry", "auto_register", KIND_BOOL,
					FIELD(registry_auto_register), 0, 1, "want true or false"},
	[KEY_REGISTRY_STRATEGY] =
		{"registry", "subject_strategy", KIND_STRATEGY, FIELD(registry_strategy), 0, 1,
		 "want topic (<topic>-value) or record (the message's full name)"},
	[KEY_REGISTRY_USERNAME] = {"registry", "username", KIND_PATH, FIELD(registry_username), 0,
				   0, "want a user name shorter than 128 bytes"},
	[KEY_REGISTRY_PASSWORD] = {"registry", "password", KIND_PATH, FIELD(registry_password), 0,
				   0, "want a password shorter than 128 bytes"},
	[KEY_REGISTRY_CA_FILE] = {"registry", "ca_file", KIND_PATH, FIELD(registry_ca_file), 0, 0,
				  "want a path shorter than PATH_MAX"},
	[KEY_REGISTRY_CERT_FILE] = {"registry", "cert_file", KIND_PATH, FIELD(registry_cert_file),
				    0, 0, "want a path shorter than PATH_MAX"},
	[KEY_REGISTRY_KEY_FILE] = {"registry", "key_file", KIND_PATH, FIELD(registry_key_file), 0,
				   0, "want a path shorter than PATH_MAX"},
	[KEY_REGISTRY_TLS_VERIFY] = {"registry", "tls_verify", KIND_BOOL,
				     FIELD(registry_tls_verify), 0, 1, "want true or false"},
	[KEY_REGISTRY_TIMEOUT] = {"registry", "timeout", KIND_DURATION, FIELD(registry_timeout_ms),
				  1, 10 * 60 * 1000,
				  "want a duration from 1ms to 10m " DURATION_FORMS},
	[KEY_REGISTRY_RETRY_FOR] = {"registry", "retry_for", KIND_DURATION,
				    FIELD(registry_retry_for_ms), 0, CONFIG_DURATION_MAX_MS,
				    "want a duration from 0 (no retry) to 24h " DURATION_FORMS},
};

/* One parse: everything config_load() needs between inih's callbacks. */
struct config_parse {
	struct ferry_config *cfg;
	FILE *fp;
	rd_kafka_conf_t *kconf;
	char *err;
	size_t errlen;
	unsigned line;		      /* the line just read */
	bool in_key;		      /* a key since the last [section] (inih's prev_name) */
	bool continuation;	      /* inih glues the line just read to the key above */
	unsigned key_line[KEY_COUNT]; /* where each key was set; 0 = not set */
	char key_value[KEY_COUNT][CONFIG_STR_MAX]; /* as written, for later messages */
	int error;				   /* the first error, -errno; 0 = none */
	unsigned error_line;			   /* its line; 0 = none applies */
};

/* Record the first error only: "path:line: " (or "path: ") and the message. */
__attribute__((format(printf, 4, 5))) static void config_fail(struct config_parse *p, int error,
							      unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->error)
		return;
	p->error = error;
	p->error_line = line;
	if (!p->err || !p->errlen)
		return;
	if (line)
		n = snprintf(p->err, p->errlen, "%s:%u: ", p->cfg->path, line);
	else
		n = snprintf(p->err, p->errlen, "%s: ", p->cfg->path);
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* Digits only (no sign, no space), into *ret. Returns the first non-digit, NULL on overflow. */
static const char *config_parse_digits(const char *s, uint64_t *ret)
{
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return NULL;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return NULL;
		v = v * 10 + d;
	}
	*ret = v;
	return s;
}

/* "" or HOST:PORT: a host name or IPv4 address, or [IPv6]; port 1..65535. */
static bool config_listen_ok(const char *s)
{
	const char *colon = strrchr(s, ':'), *end;
	uint64_t port;
	size_t hl;

	if (!*s)
		return true;
	if (!colon || colon == s)
		return false;
	end = config_parse_digits(colon + 1, &port);
	if (!end || *end || port < 1 || port > 65535)
		return false;
	hl = (size_t)(colon - s);
	if (s[0] == '[') {
		if (hl < 3 || s[hl - 1] != ']')
			return false;
		for (size_t i = 1; i < hl - 1; i++)
			if (!isxdigit((unsigned char)s[i]) && s[i] != ':' && s[i] != '.')
				return false;
		return true;
	}
	for (size_t i = 0; i < hl; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

int config_parse_size(const char *s, uint64_t *ret)
{
	const char *end;
	unsigned shift = 0;
	uint64_t v;

	if (!s || !ret)
		return -EINVAL;
	end = config_parse_digits(s, &v);
	if (!end)
		return -EINVAL;
	switch (*end) {
	case '\0':
		break;
	case 'K':
		shift = 10;
		end++;
		break;
	case 'M':
		shift = 20;
		end++;
		break;
	case 'G':
		shift = 30;
		end++;
		break;
	default:
		return -EINVAL;
	}
	if (*end || v > UINT64_MAX >> shift)
		return -EINVAL;
	*ret = v << shift;
	return 0;
}

int config_parse_duration(const char *s, uint64_t *ret_ms)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}};
	const char *end;
	uint64_t v;

	if (!s || !ret_ms)
		return -EINVAL;
	end = config_parse_digits(s, &v);
	if (!end)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(end, units[i].suffix))
			continue;
		if (v > UINT64_MAX / units[i].ms)
			return -EINVAL;
		*ret_ms = v * units[i].ms;
		return 0;
	}
	return -EINVAL;
}

/* A name of min..max characters of [A-Za-z0-9._-]; an instance may not start with '.'. */
static bool config_name_ok(const char *s, enum config_kind kind, uint64_t min, uint64_t max)
{
	size_t len = strlen(s);

	if (len < min || len > max)
		return false;
	for (const char *c = s; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '_' && *c != '.' && *c != '-')
			return false;
	if (kind == KIND_INSTANCE)
		return s[0] != '.';
	return strcmp(s, ".") && strcmp(s, ".."); /* Kafka refuses these two topic names */
}

/* The default control socket of an instance into buf. Returns 0, or -ENAMETOOLONG when cut. */
static int config_default_socket(const char *instance, char *buf, size_t size)
{
	const char *dir = getenv("RUNTIME_DIRECTORY");
	size_t len = dir ? strcspn(dir, ":") : 0; /* several RuntimeDirectory=: colon-separated */
	int n;

	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (!len) {
		dir = "/tmp";
		len = 4;
	}
	n = snprintf(buf, size, "%.*s/ferry.%s.sock", (int)len, dir, instance);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

void config_defaults(struct ferry_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->instance, "default");
	cfg->shards = 2;
	cfg->ring_size = 16ull << 20;
	cfg->ack_ring_size = 1ull << 20;
	cfg->poison_strikes = 3;
	cfg->heartbeat_timeout_ms = 10 * 1000;
	cfg->restart_delay_min_ms = 1000;
	cfg->restart_delay_max_ms = 30 * 1000;
	strcpy(cfg->topic, "ferry.events");
	strcpy(cfg->tenant_attribute, "tenant");
	cfg->key_cache_ttl_ms = 5 * 60 * 1000;
	strcpy(cfg->dead_letter_topic, "ferry.dead-letters");
	cfg->flush_timeout_ms = 30 * 1000;
	cfg->max_inflight = 16384;
	cfg->handback_delay_ms = 1000;
	cfg->sqs_wait_time_ms = 20 * 1000;
	cfg->sqs_receives = 2;
	cfg->pubsub_max_messages = 100;
	cfg->pubsub_pulls = 1;
	cfg->registry_tls_verify = 1;
	cfg->registry_timeout_ms = 10 * 1000;
	cfg->registry_retry_for_ms = 30 * 1000;
	if (config_default_socket(cfg->instance, cfg->control_socket, sizeof(cfg->control_socket)))
		cfg->control_socket[0] = '\0';
}

static void config_list_free(struct config_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int config_list_add(struct config_list *l, const char *s)
{
	char **v;

	if (l->n >= CONFIG_LIST_MAX)
		return -E2BIG;
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	l->v = v;
	v[l->n] = strdup(s);
	if (!v[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

/* s is in the list already: the same queue or subscription would be pulled twice. */
static bool config_list_has(const struct config_list *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return true;
	return false;
}

/* One path segment of [A-Za-z0-9_-], at most max long: its length, 0 if none. */
static size_t config_segment(const char *p, size_t max)
{
	size_t n = 0;

	while (isalnum((unsigned char)p[n]) || p[n] == '-' || p[n] == '_')
		n++;
	return n <= max ? n : 0;
}

/*
 * An SQS queue URL: http(s)://host/ACCOUNT/NAME and nothing after the name,
 * NAME as SQS allows (1-80 of [A-Za-z0-9_-], ".fifo" for a FIFO queue), so
 * that two URLs run together on one line are not taken for one queue.
 */
static bool config_queue_ok(const char *s)
{
	const char *host, *p;
	size_t n;

	if (!strncmp(s, "https://", 8))
		host = s + 8;
	else if (!strncmp(s, "http://", 7))
		host = s + 7;
	else
		return false;
	if (strlen(s) >= 512)
		return false;
	p = strchr(host, '/'); /* after the host */
	if (!p || p == host)
		return false;
	n = config_segment(++p, 64); /* the account */
	if (!n || p[n] != '/')
		return false;
	p += n + 1;
	n = config_segment(p, 80);
	if (!n)
		return false;
	p += n;
	if (!strcmp(p, ".fifo"))
		return n <= 75;
	return !*p;
}

/* projects/P/subscriptions/S, Google's name rules loosely: no '/' inside P or S. */
static bool config_sub_ok(const char *s)
{
	const char *p = s, *q;

	if (strncmp(p, "projects/", 9))
		return false;
	p += 9;
	q = strchr(p, '/');
	if (!q || q == p || strncmp(q, "/subscriptions/", 15))
		return false;
	q += 15;
	if (strlen(q) < 3 || strlen(q) > 255 || strchr(q, '/'))
		return false;
	for (; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-_.~+%/:", *p))
			return false;
	return true;
}

void config_free(struct ferry_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_kafka; i++) {
		free(cfg->kafka[i].key);
		free(cfg->kafka[i].value);
	}
	free(cfg->kafka);
	cfg->kafka = NULL;
	cfg->n_kafka = 0;
	config_list_free(&cfg->sqs_queues);
	config_list_free(&cfg->pubsub_subs);
	explicit_bzero(cfg->registry_password, sizeof(cfg->registry_password));
}

static bool config_section_known(const char *name, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(config_sections); i++)
		if (strlen(config_sections[i]) == len && !memcmp(config_sections[i], name, len))
			return true;
	return false;
}

static char *config_lskip(char *s)
{
	while (*s && isspace((unsigned char)*s))
		s++;
	return s;
}

/*
 * Note what inih will make of the line just read, as its ini_parse_stream() does: blank and
 * comment lines, then (multi-line values on) an indented line after a key continues that key,
 * then "[section]" (the name ends at ']' or at an inline comment).
 */
static void config_classify(struct config_parse *p, char *line)
{
	char *start = line, *end;
	bool was_space = false;

	p->continuation = false;
	if (p->line == 1 && !strncmp(start, "\xEF\xBB\xBF", 3))
		start += 3;
	start = config_lskip(start);
	if (!*start || strchr(INI_START_COMMENT_PREFIXES, *start))
		return;
	if (INI_ALLOW_MULTILINE && p->in_key && start > line) {
		p->continuation = true;
		return;
	}
	if (*start != '[')
		return;
	for (end = start + 1; *end && *end != ']'; end++) {
		if (INI_ALLOW_INLINE_COMMENTS && was_space &&
		    strchr(INI_INLINE_COMMENT_PREFIXES, *end))
			return; /* no ']': inih reports a syntax error */
		was_space = isspace((unsigned char)*end);
	}
	if (*end != ']')
		return;
	p->in_key = false;
	if (!config_section_known(start + 1, (size_t)(end - start - 1)))
		config_fail(
			p, -EINVAL, p->line,
			"[%.*s]: unknown section, want one of [ferry], [replay], [ingest], [sqs], "
			"[pubsub], [decrypt], [produce], [registry], [kafka]",
			(int)(end - start - 1), start + 1);
}

/* inih's ini_reader: fgets that counts lines and stops the parse at the first error. */
static char *config_reader(char *str, int num, void *stream)
{
	struct config_parse *p = stream;
	size_t len;
	int c;

	if (p->error)
		return NULL;
	/* Non-NUL filler: the last NUL after fgets() is its terminator, an earlier one was read. */
	memset(str, 1, (size_t)num);
	errno = 0;
	if (!fgets(str, num, p->fp)) {
		if (ferror(p->fp)) {
			int e = errno ? errno : EIO;

			config_fail(p, -e, 0, "cannot read: %s", strerror(e));
		}
		return NULL;
	}
	p->line++;
	len = strlen(str);
	if ((char *)memrchr(str, 0, (size_t)num) != str + len) {
		/* inih and the checks below would see the line end there, and count lines wrong */
		config_fail(p, -EINVAL, p->line, "a NUL byte in the line (not a text file?)");
		return NULL;
	}
	if (len && str[len - 1] != '\n') {
		/* Full buffer: fine if the line ends right here, else inih would split it. */
		c = getc(p->fp);
		if (c != EOF && c != '\n') {
			config_fail(p, -EINVAL, p->line, "line longer than %d characters", num - 1);
			return NULL;
		}
	}
	config_classify(p, str);
	return p->error ? NULL : str;
}

/* A value as errors show it: never a password (nor a mistyped password key's value). */
static const char *config_shown(const char *section, const char *name, const char *value)
{
	if (!strcmp(section, "registry") && strstr(name, "pass"))
		return "(not shown)";
	return value;
}

static void config_fail_unknown_key(struct config_parse *p, const char *section, const char *name,
				    const char *value)
{
	char known[512] = "";
	size_t used = 0;

	for (size_t i = 0; i < KEY_COUNT && used < sizeof(known); i++) {
		if (strcmp(config_keys[i].section, section))
			continue;
		used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s",
					 used ? ", " : "", config_keys[i].name);
	}
	value = config_shown(section, name, value);
	/* Any unknown [registry] key may be a mistyped password ("pasword"): never shown. */
	if (!strcmp(section, "registry"))
		value = "(not shown)";
	if (used)
		config_fail(p, -EINVAL, p->line, "[%s] %s: unknown key (known: %s), got '%s'",
			    section, name, known, value);
	else
		config_fail(p, -EINVAL, p->line, "[%s] %s: unknown section, got '%s'", section,
			    name, value);
}

/* One [kafka] property: checked by librdkafka, kept in file order. */
static void config_kafka_add(struct config_parse *p, const char *name, const char *value)
{
	struct ferry_config *cfg = p->cfg;
	struct config_kv *kv;
	char errstr[512];

	for (size_t i = 0; i < cfg->n_kafka; i++) {
		if (!strcmp(cfg->kafka[i].key, name)) {
			config_fail(p, -EINVAL, p->line, "[kafka] %s: set twice (first on line %u)",
				    name, cfg->kafka[i].line);
			return;
		}
	}
	if (rd_kafka_conf_set(p->kconf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
		config_fail(p, -EINVAL, p->line, "[kafka] %s: %s", name, errstr);
		return;
	}
	kv = realloc(cfg->kafka, (cfg->n_kafka + 1) * sizeof(*kv));
	if (!kv)
		goto nomem;
	cfg->kafka = kv;
	kv = &cfg->kafka[cfg->n_kafka];
	kv->key = strdup(name);
	kv->value = strdup(value);
	kv->line = p->line;
	if (!kv->key || !kv->value) {
		free(kv->key);
		free(kv->value);
		goto nomem;
	}
	cfg->n_kafka++;
	return;
nomem:
	config_fail(p, -ENOMEM, p->line, "[kafka] %s: out of memory", name);
}

/* One known key: parse, range-check, store. */
static void config_set(struct config_parse *p, enum config_key id, const char *value)
{
	const struct config_key_def *k = &config_keys[id];
	void *field = (char *)p->cfg + k->offset;
	const char *end;
	uint64_t v = 0;
	bool ok = false;

	if (p->key_line[id] && k->kind != KIND_QUEUE && k->kind != KIND_SUB) {
		config_fail(p, -EINVAL, p->line, "[%s] %s: set twice (first on line %u)",
			    k->section, k->name, p->key_line[id]);
		return;
	}
	switch (k->kind) {
	case KIND_QUEUE:
	case KIND_SUB:
		ok = k->kind == KIND_QUEUE ? config_queue_ok(value) : config_sub_ok(value);
		if (ok && config_list_has(field, value)) {
			config_fail(p, -EINVAL, p->line, "[%s] %s: listed twice, got '%s'",
				    k->section, k->name, value);
			return;
		}
		if (ok && config_list_add(field, value) < 0) {
			config_fail(p, -ENOMEM, p->line, "[%s] %s: out of memory, or more than %d",
				    k->section, k->name, CONFIG_LIST_MAX);
			return;
		}
		break;
	case KIND_UINT:
		end = config_parse_digits(value, &v);
		ok = end && !*end && v >= k->min && v <= k->max;
		if (ok)
			*(unsigned *)field = (unsigned)v;
		break;
	case KIND_RING:
		ok = !config_parse_size(value, &v) && is_pow2_u64(v) && v >= k->min && v <= k->max;
		if (ok)
			*(uint64_t *)field = v;
		break;
	case KIND_DURATION:
		ok = !config_parse_duration(value, &v) && v >= k->min && v <= k->max;
		if (ok)
			*(uint64_t *)field = v;
		break;
	case KIND_INSTANCE:
	case KIND_TOPIC:
		ok = config_name_ok(value, k->kind, k->min, k->max) && strlen(value) < k->size;
		if (ok)
			strcpy(field, value);
		break;
	case KIND_PATH:
		ok = strlen(value) < k->size;
		if (ok)
			strcpy(field, value);
		break;
	case KIND_BOOL:
	case KIND_STRATEGY:
		ok = true;
		if (!strcmp(value, k->kind == KIND_BOOL ? "false" : "topic"))
			*(unsigned *)field = 0;
		else if (!strcmp(value, k->kind == KIND_BOOL ? "true" : "record"))
			*(unsigned *)field = 1;
		else
			ok = false;
		break;
	case KIND_LISTEN:
		ok = strlen(value) < k->size && config_listen_ok(value);
		if (ok)
			strcpy(field, value);
		break;
	case KIND_URL:
		ok = strlen(value) < k->size && strcspn(value, " \t\"") == strlen(value) &&
		     (!*value || (!strncmp(value, "http://", 7) && value[7]) ||
		      (!strncmp(value, "https://", 8) && value[8]));
		if (ok)
			strcpy(field, value);
		break;
	}
	if (!ok) {
		config_fail(p, -EINVAL, p->line, "[%s] %s: %s, got '%s'", k->section, k->name,
			    k->want, config_shown(k->section, k->name, value));
		return;
	}
	p->key_line[id] = p->line;
	snprintf(p->key_value[id], sizeof(p->key_value[id]), "%s",
		 config_shown(k->section, k->name, value));
}

/* inih's handler: called for each key = value, right after the reader read its line. */
static int config_handler(void *user, const char *section, const char *name, const char *value)
{
	struct config_parse *p = user;
	bool continuation = p->continuation;

	if (!name)
		return 1; /* the start of a section, in inih builds that report it */
	if (!value)
		value = ""; /* a key without '=', in inih builds that allow it */
	p->in_key = true;
	p->continuation = false;
	if (continuation) {
		config_fail(p, -EINVAL, p->line,
			    "[%s] %s: indented line would continue the value of the key above "
			    "(multi-line values are not supported), got '%s'",
			    section, name, value);
	} else if (!*section) {
		config_fail(
			p, -EINVAL, p->line,
			"%s: set before any [section], want it under [ferry], [replay], "
			"[ingest], [sqs], [pubsub], [decrypt], [produce], [registry] or [kafka], "
			"got '%s'",
			name, value);
	} else if (!strcmp(section, "kafka")) {
		config_kafka_add(p, name, value);
	} else {
		size_t id;

		for (id = 0; id < KEY_COUNT; id++)
			if (!strcmp(config_keys[id].section, section) &&
			    !strcmp(config_keys[id].name, name))
				break;
		if (id < KEY_COUNT)
			config_set(p, (enum config_key)id, value);
		else
			config_fail_unknown_key(p, section, name, value);
	}
	return !p->error;
}

/*
 * A list file ([sqs] queues_file, [pubsub] subscriptions_file): one entry a
 * line; blank lines and lines starting with '#' are skipped. Errors name the
 * list file's own line.
 */
static void config_list_file(struct config_parse *p, enum config_key file_key,
			     enum config_key item_key)
{
	const struct config_key_def *fk = &config_keys[file_key], *ik = &config_keys[item_key];
	const char *path = (char *)p->cfg + fk->offset;
	struct config_list *l = (struct config_list *)((char *)p->cfg + ik->offset);
	char *line = NULL;
	size_t cap = 0;
	unsigned n = 0;
	FILE *f;

	if (!*path)
		return;
	f = fopen(path, "re");
	if (!f) {
		config_fail(p, -errno, p->key_line[file_key], "[%s] %s: cannot open '%s': %s",
			    fk->section, fk->name, path, strerror(errno));
		return;
	}
	while (!p->error && getline(&line, &cap, f) >= 0) {
		char *s = config_lskip(line), *e = s + strlen(s);

		n++;
		while (e > s && isspace((unsigned char)e[-1]))
			*--e = '\0';
		if (!*s || *s == '#')
			continue;
		if (item_key == KEY_SQS_QUEUE ? !config_queue_ok(s) : !config_sub_ok(s))
			config_fail(p, -EINVAL, p->key_line[file_key],
				    "[%s] %s: %s:%u: %s, got '%.200s'", fk->section, fk->name, path,
				    n, ik->want, s);
		else if (config_list_has(l, s))
			config_fail(p, -EINVAL, p->key_line[file_key],
				    "[%s] %s: %s:%u: listed twice, got '%.200s'", fk->section,
				    fk->name, path, n, s);
		else if (config_list_add(l, s) < 0)
			config_fail(p, -ENOMEM, p->key_line[file_key],
				    "[%s] %s: %s:%u: out of memory, or more than %d entries",
				    fk->section, fk->name, path, n, CONFIG_LIST_MAX);
	}
	/* getline() fails the same way at the end and on a directory or an I/O error. */
	if (!p->error && ferror(f)) {
		int e = errno ? errno : EIO;

		config_fail(p, -e, p->key_line[file_key], "[%s] %s: cannot read '%s': %s",
			    fk->section, fk->name, path, strerror(e));
	}
	free(line);
	fclose(f);
}

/* The same queue or subscription twice would be pulled twice: refuse it. */
static void config_list_unique(struct config_parse *p, enum config_key id)
{
	const struct config_key_def *k = &config_keys[id];
	const struct config_list *l = (const struct config_list *)((char *)p->cfg + k->offset);

	for (size_t i = 0; i < l->n; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(l->v[i], l->v[j])) {
				config_fail(p, -EINVAL, p->key_line[id],
					    "[%s] %s: listed twice, got '%s'", k->section, k->name,
					    l->v[i]);
				return;
			}
}

/* Checks across keys, and the default control socket. */
static void config_finish(struct config_parse *p)
{
	struct ferry_config *cfg = p->cfg;

	config_list_file(p, KEY_SQS_QUEUES_FILE, KEY_SQS_QUEUE);
	config_list_file(p, KEY_PUBSUB_SUBS_FILE, KEY_PUBSUB_SUB);
	config_list_unique(p, KEY_SQS_QUEUE);
	config_list_unique(p, KEY_PUBSUB_SUB);
	if (cfg->replay_file[0] && cfg->sqs_queues.n + cfg->pubsub_subs.n)
		config_fail(
			p, -EINVAL, p->key_line[KEY_REPLAY_FILE],
			"[replay] file: a replay file is for demos and benchmarks and cannot be "
			"combined with [sqs] or [pubsub] sources, got '%s'",
			cfg->replay_file);
	cfg->replay_file_line = p->key_line[KEY_REPLAY_FILE];
	cfg->control_socket_line = p->key_line[KEY_CONTROL_SOCKET];
	if (cfg->max_inflight & (cfg->max_inflight - 1))
		config_fail(p, -EINVAL, p->key_line[KEY_MAX_INFLIGHT],
			    "[ingest] max_inflight: %s, got '%s'",
			    config_keys[KEY_MAX_INFLIGHT].want, p->key_value[KEY_MAX_INFLIGHT]);
	if (cfg->sqs_queues.n + cfg->pubsub_subs.n + 1 > CONFIG_LIST_MAX)
		config_fail(p, -EINVAL, 0, "more than %d queues and subscriptions in all",
			    CONFIG_LIST_MAX - 1);

	if (cfg->restart_delay_min_ms > cfg->restart_delay_max_ms) {
		if (p->key_line[KEY_RESTART_DELAY_MIN])
			config_fail(
				p, -EINVAL, p->key_line[KEY_RESTART_DELAY_MIN],
				"[ferry] restart_delay_min: must not be above restart_delay_max "
				"(%" PRIu64 "ms), got '%s'",
				cfg->restart_delay_max_ms, p->key_value[KEY_RESTART_DELAY_MIN]);
		else
			config_fail(
				p, -EINVAL, p->key_line[KEY_RESTART_DELAY_MAX],
				"[ferry] restart_delay_max: must not be below restart_delay_min "
				"(%" PRIu64 "ms), got '%s'",
				cfg->restart_delay_min_ms, p->key_value[KEY_RESTART_DELAY_MAX]);
	}
	if (!strcmp(cfg->topic, cfg->dead_letter_topic)) {
		if (p->key_line[KEY_DEAD_LETTER_TOPIC] > p->key_line[KEY_TOPIC])
			config_fail(p, -EINVAL, p->key_line[KEY_DEAD_LETTER_TOPIC],
				    "[produce] dead_letter_topic: must differ from topic, got '%s'",
				    cfg->dead_letter_topic);
		else
			config_fail(p, -EINVAL, p->key_line[KEY_TOPIC],
				    "[produce] topic: must differ from dead_letter_topic, got '%s'",
				    cfg->topic);
	}
	if (!cfg->control_socket[0] || !p->key_line[KEY_CONTROL_SOCKET]) {
		char def[512];

		if (config_default_socket(cfg->instance, cfg->control_socket,
					  sizeof(cfg->control_socket))) {
			cfg->control_socket[0] = '\0';
			(void)config_default_socket(cfg->instance, def, sizeof(def));
			config_fail(
				p, -EINVAL, p->key_line[KEY_CONTROL_SOCKET],
				"[ferry] control_socket: %s (the default from RUNTIME_DIRECTORY "
				"is too long: set control_socket), got '%s'",
				config_keys[KEY_CONTROL_SOCKET].want, def);
		}
	}
}

int config_check_files(const struct ferry_config *cfg, char *err, size_t errlen)
{
	char dir[sizeof(cfg->control_socket)], *slash;
	struct stat st;
	int e;

	if (cfg->replay_file[0] && access(cfg->replay_file, R_OK) < 0) {
		e = errno;
		snprintf(err, errlen, "%s:%u: [replay] file: cannot read '%s': %s", cfg->path,
			 cfg->replay_file_line, cfg->replay_file, strerror(e));
		return -e;
	}
	if (!cfg->control_socket[0])
		return 0;
	snprintf(dir, sizeof(dir), "%s", cfg->control_socket);
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		if (cfg->control_socket_line)
			snprintf(
				err, errlen,
				"%s:%u: [ferry] control_socket: the directory '%s' does not exist, "
				"got '%s'",
				cfg->path, cfg->control_socket_line, dir, cfg->control_socket);
		else
			snprintf(err, errlen,
				 "%s: [ferry] control_socket: the directory '%s' of the default "
				 "'%s' does not exist: set control_socket",
				 cfg->path, dir, cfg->control_socket);
		return -ENOENT;
	}
	return 0;
}

int config_load(const char *path, struct ferry_config *cfg, char *err, size_t errlen)
{
	struct config_parse *p = NULL;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (!cfg)
		return -EINVAL;
	config_defaults(cfg);
	if (!path) {
		if (err && errlen)
			snprintf(err, errlen, "config: no path");
		return -EINVAL;
	}
	/* Big (the raw values): keep it off small thread stacks. */
	p = calloc(1, sizeof(*p));
	if (!p) {
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	p->cfg = cfg;
	p->err = err;
	p->errlen = errlen;
	if (strlen(path) >= sizeof(cfg->path)) {
		snprintf(cfg->path, sizeof(cfg->path), "%.64s...", path);
		config_fail(p, -ENAMETOOLONG, 0, "path too long");
		goto out;
	}
	strcpy(cfg->path, path);
	p->fp = fopen(path, "re");
	if (!p->fp) {
		int e = errno;

		config_fail(p, -e, 0, "cannot open: %s", strerror(e));
		goto out;
	}
	p->kconf = rd_kafka_conf_new();
	ret = ini_parse_stream(config_reader, p, config_handler, p);
	if (ret == -2) {
		config_fail(p, -ENOMEM, 0, "out of memory");
	} else if (ret > 0 && (!p->error || (p->error_line && (unsigned)ret < p->error_line))) {
		/* inih found a line it cannot parse before any error of ours */
		p->error = 0;
		config_fail(p, -EINVAL, (unsigned)ret, "syntax error");
	}
	if (!p->error)
		config_finish(p);
out:
	ret = p->error;
	if (p->kconf)
		rd_kafka_conf_destroy(p->kconf);
	if (p->fp)
		fclose(p->fp);
	free(p);
	return ret;
}
