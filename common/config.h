/* SPDX-License-Identifier: MIT */
/*
 * config: ferry's INI configuration (etc/ferry.conf), parsed with inih.
 *
 * Every error names file:line: [section] key and says what is wrong, e.g.
 *   etc/ferry.conf:12: [ferry] shards: want an integer from 1 to 64, got 'two'
 * Unknown sections and unknown keys are errors (typos must not pass
 * silently), except in [kafka], whose keys are librdkafka properties passed
 * through unchanged (and checked with librdkafka itself at load time).
 *
 * Sizes take K, M, G suffixes (powers of 1024); durations take ms, s, m, h
 * (a bare number is seconds).
 *
 * Keys: a field's key is its name without the _ms suffix, except [replay]
 * file (replay_file): [ferry] instance, shards, ring_size, ack_ring_size,
 * poison_strikes, heartbeat_timeout, restart_delay_min, restart_delay_max,
 * control_socket, stage_dir, metrics_listen; [replay] file; [produce] topic,
 * dead_letter_topic, flush_timeout; [registry] url, auto_register,
 * subject_strategy, username, password, ca_file, cert_file, key_file,
 * tls_verify, timeout, retry_for (booleans: true/false). A key set twice is an error, in [kafka]
 * too. Values may not continue on indented lines, and a line may hold at
 * most CONFIG_LINE_MAX characters (inih's line buffer).
 */
#ifndef FERRY_COMMON_CONFIG_H
#define FERRY_COMMON_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_SHARDS_MAX 64
#define CONFIG_STR_MAX	  256
#define CONFIG_LIST_MAX	  4000 /* queues + subscriptions + the replay file, at most */

/* No duration may exceed a day; a line holds inih's INI_MAX_LINE (200) less the NUL. */
#define CONFIG_DURATION_MAX_MS (24ull * 3600 * 1000)
#define CONFIG_LINE_MAX	       199

/* One librdkafka property from [kafka], with where it was set. */
struct config_kv {
	char *key;
	char *value;
	unsigned line;
};

/* A key that may be given many times ([sqs] queue, [pubsub] subscription), in order. */
struct config_list {
	char **v;
	size_t n;
};

struct ferry_config {
	char path[PATH_MAX]; /* the file it came from */

	/* [ferry] */
	char instance[64];	 /* default "default"; [A-Za-z0-9_.-], 1..63 */
	unsigned shards;	 /* decrypt+map pairs, 1..64, default 2 */
	uint64_t ring_size;	 /* bytes per data ring, power of two, >= 4M, default 16M */
	uint64_t ack_ring_size;	 /* bytes of the ack ring, power of two, >= 64K, default 1M */
	unsigned poison_strikes; /* deaths on one seq before it is dead-lettered, 1..100, default 3
				  */
	uint64_t heartbeat_timeout_ms; /* a stage silent this long is hung, default 10s */
	uint64_t restart_delay_min_ms; /* first restart delay, >= 1s, default 1s */
	uint64_t restart_delay_max_ms; /* cap of the growing delay, default 30s */
	char control_socket[108];      /* unix socket of ferryctl; default: see config_load() */
	char stage_dir[PATH_MAX]; /* where ferry-<stage> binaries are; default "" = ferryd's dir */
	char metrics_listen[128]; /* HOST:PORT of ferryd's /metrics and /healthz; "" = off */

	/* [replay] */
	char replay_file[PATH_MAX]; /* a replay file to ingest; "" = none */
	unsigned replay_file_line;  /* where the file set it, 0: not set (config_check_files()) */
	unsigned control_socket_line;
	unsigned replay_rate; /* messages per second, 0 = as fast as it goes */

	/* [ingest] */
	unsigned max_inflight;	    /* in-flight table slots, power of two 64..1M, default 16384 */
	uint64_t handback_delay_ms; /* a message its shard cannot take now comes back after this */
	char dlq_spool[PATH_MAX];   /* dead-letter replay spool; "" = default, "none" = off
				       (common/dlq.h: dlq_spool_dir()) */

	/* [sqs] */
	struct config_list sqs_queues; /* queue URLs: each `queue =`, then queues_file's lines */
	char sqs_queues_file[PATH_MAX];
	char sqs_region[64];	    /* "" = from each queue's URL */
	char sqs_endpoint[256];	    /* "" = the queue URL's own host */
	char sqs_profile[128];	    /* "" = $AWS_PROFILE, else "default" */
	uint64_t sqs_wait_time_ms;  /* long polling, 0..20s, default 20s */
	unsigned sqs_receives;	    /* receives in flight per queue, 1..10, default 2 */
	uint64_t sqs_visibility_ms; /* 0 = the queue's own VisibilityTimeout */

	/* [pubsub] */
	struct config_list pubsub_subs; /* projects/P/subscriptions/S */
	char pubsub_subs_file[PATH_MAX];
	char pubsub_endpoint[256];	   /* "" = $PUBSUB_EMULATOR_HOST, else Google's */
	char pubsub_credentials[PATH_MAX]; /* service-account key file; "" = the default chain */
	unsigned pubsub_max_messages;	   /* per pull, 1..1000, default 100 */
	unsigned pubsub_pulls;		   /* pulls in flight per subscription, 1..10, default 1 */

	/* [decrypt] */
	char keyring[PATH_MAX]; /* <keyring>/<tenant>/<version>.key; "" = no keys: pass through */
	char tenant_attribute[128]; /* attribute naming the tenant (shards, keys, Kafka key),
				       default "tenant" */
	char kms_region[64];	    /* KMS for .wrapped keys; "" = none */
	char kms_endpoint[256];	    /* "" = https://kms.<region>.amazonaws.com */
	char aws_profile[128];	    /* "" = $AWS_PROFILE, else "default" */
	uint64_t key_cache_ttl_ms;  /* unwrapped keys are unwrapped again after this, default 5m */

	/* [produce] */
	char topic[CONFIG_STR_MAX];		/* default "ferry.events" */
	char dead_letter_topic[CONFIG_STR_MAX]; /* default "ferry.dead-letters" */
	uint64_t flush_timeout_ms;		/* on shutdown, default 30s */

	/* [registry]: Confluent Schema Registry (common/registry.h) */
	char registry_url[CONFIG_STR_MAX]; /* http(s)://host:port; "" = none: bare protobuf */
	unsigned registry_auto_register;   /* 0/1, default 0: look up only, refuse a difference */
	unsigned registry_strategy;	   /* enum registry_strategy: 0 topic (default), 1 record */
	char registry_username[128];	   /* basic auth; "" = none */
	char registry_password[128];	   /* secret: wiped by config_free() */
	char registry_ca_file[PATH_MAX];   /* "" = the system's CAs */
	char registry_cert_file[PATH_MAX]; /* TLS client certificate; "" = none */
	char registry_key_file[PATH_MAX];  /* its key */
	unsigned registry_tls_verify;	   /* 0/1, default 1 */
	uint64_t registry_timeout_ms;	   /* per request, default 10s */
	uint64_t registry_retry_for_ms;	   /* outages retried at start this long, default 30s */

	/* [kafka]: passed to librdkafka as they are, in file order */
	struct config_kv *kafka;
	size_t n_kafka;
};

/*
 * Fill cfg with the defaults, then read path over them. Relative paths in
 * values stay as written. Default control_socket:
 * "$RUNTIME_DIRECTORY/ferry.<instance>.sock" when RUNTIME_DIRECTORY is set
 * (systemd's RuntimeDirectory=), else "/tmp/ferry.<instance>.sock".
 * Checks every value, and the [kafka] properties against librdkafka.
 * Returns 0, or -EINVAL / -ENOENT / -errno with a one-line message in err
 * ("path:line: [section] key: what is wrong"; "path: ..." when no line
 * applies). cfg must be released with config_free() in either case.
 */
int config_load(const char *path, struct ferry_config *cfg, char *err, size_t errlen);

/*
 * What only ferryd checks, on the filesystem as it is now (not part of
 * config_load(): the stages, ferryctl and the unit tests read the file
 * elsewhere): the replay file is readable, the control socket's directory
 * exists. Returns 0 or -errno with "path:line: [section] key: ..." in err.
 */
int config_check_files(const struct ferry_config *cfg, char *err, size_t errlen);

/*
 * Set the defaults only (no file); control_socket gets the default of
 * instance "default" (see config_load(); "" if that does not fit).
 * An empty control_socket in the file also means the default.
 */
void config_defaults(struct ferry_config *cfg);

/* Release what config_load() allocated. Safe on a zeroed or freed config, and twice. */
void config_free(struct ferry_config *cfg);

/* Parse "16M" / "4096" / "1G" into bytes. Returns 0 or -EINVAL (also on overflow). */
int config_parse_size(const char *s, uint64_t *ret);

/* Parse "250ms" / "10s" / "5m" / "1h" / "3" (seconds) into ms. Returns 0 or -EINVAL. */
int config_parse_duration(const char *s, uint64_t *ret_ms);

#endif
