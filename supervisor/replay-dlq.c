/* SPDX-License-Identifier: MIT */
/* ferryctl replay-dlq: dead letters back into the pipeline. See replay-dlq.h. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "common/dlq.h"
#include "common/time.h"
#include "supervisor/kafka-read.h"
#include "supervisor/replay-dlq.h"

#define EXIT_FAILED    1
#define EXIT_USAGE     100
#define EXIT_SYSTEM    111
#define LIST_MAX       64  /* --tenant / --type values */
#define GROUPS_MAX     256 /* tenant x reason rows counted */
#define SKIP_LINES_MAX 20  /* refused events named one by one */
#define ATTRS_MAX      65536

struct group {
	char tenant[64];
	char reason[160];
	uint64_t n;
};

struct replay {
	const char *config;
	const char *tenants[LIST_MAX];
	size_t n_tenants;
	const char *types[LIST_MAX];
	size_t n_types;
	struct dlq_filter f;
	uint64_t limit;
	int dry_run;
	int timeout_ms;

	struct ferry_config cfg;
	char topic[256];
	char spool[PATH_MAX];
	rd_kafka_t *rk;
	int partitions;
	int64_t *high; /* per partition: read up to here (exclusive) */
	int64_t *low;
	int left; /* partitions not finished */

	uint64_t read, verdicts[DLQ_VERDICT_COUNT], over_limit, skip_lines;
	struct group groups[GROUPS_MAX];
	size_t n_groups;
	uint64_t other_groups;
	struct dlq_writer *w;
	unsigned char attrs[ATTRS_MAX];
	unsigned char headers[ATTRS_MAX];
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ferryctl replay-dlq -c CONFIG [--tenant T]... [--type LEGACYTYPE]...\n"
		   "         [--reason TEXT] [--stage STAGE] [--since TIME] [--until TIME]\n"
		   "         [--limit N] [--dry-run] [--timeout-ms N]\n"
		   "\n"
		   "Sends the chosen dead letters of [produce] dead_letter_topic through the\n"
		   "pipeline again: they are written as one spool file into [ingest] dlq_spool,\n"
		   "which ingest picks up (run it as the user ferry runs as: sudo -u ferry ...).\n"
		   "Replayed events carry the header ferry-replayed: 1; one that fails again goes\n"
		   "back to the dead-letter topic with its new reason and the same mark.\n"
		   "\n"
		   "  -c, --config FILE   ferry's configuration ([kafka], [produce], [ingest])\n"
		   "  --tenant T          only tenant T (repeatable)\n"
		   "  --type TYPE         only this legacy type (repeatable; ferry-legacy-type,\n"
		   "                      known for map's dead letters only: decrypt's and\n"
		   "                      ingest's have no type and are not selected by --type)\n"
		   "  --reason TEXT       only dead letters whose reason contains TEXT\n"
		   "  --stage STAGE       only dead letters of ingest, decrypt, map or produce\n"
		   "  --since, --until T  Kafka timestamp in [since, until): RFC 3339\n"
		   "                      (2026-11-27T03:00:00Z), unix seconds, or an age (30m, "
		   "2h, 3d)\n"
		   "  --limit N           at most N dead letters\n"
		   "  --dry-run           list what would be replayed, write nothing\n"
		   "  --timeout-ms N      Kafka metadata and fetch timeout (default 10000)\n"
		   "\n"
		   "Reads up to the end the topic had when it started, so it never takes up the\n"
		   "dead letters its own replay makes. Not replayable: dead letters without a\n"
		   "value (events Kafka refused, and map's dead letters, whose decrypted value\n"
		   "is left out): their source id names the source message.\n"
		   "Exit: 0 done (also when nothing matched), 1 Kafka error, 100 usage, 111 "
		   "system.\n");
}

/*
 * Every partition from --since (or its start) up to its high watermark of
 * now. Returns 0 or an exit code.
 */
static int assign_all(struct replay *t)
{
	int n = kread_partitions(t->rk, t->topic, t->timeout_ms, "replay-dlq");
	rd_kafka_topic_partition_list_t *parts, *times = NULL;
	rd_kafka_resp_err_t err;

	if (n < 0)
		return n == -ENOMEM ? EXIT_SYSTEM : EXIT_FAILED;
	t->partitions = n;
	t->high = calloc((size_t)t->partitions, sizeof(*t->high));
	t->low = calloc((size_t)t->partitions, sizeof(*t->low));
	if (!t->high || !t->low)
		return EXIT_SYSTEM;
	for (int p = 0; p < t->partitions; p++) {
		err = rd_kafka_query_watermark_offsets(t->rk, t->topic, p, &t->low[p], &t->high[p],
						       t->timeout_ms);
		if (err) {
			fprintf(stderr, "ferryctl replay-dlq: offsets of %s [%d]: %s\n", t->topic,
				p, rd_kafka_err2str(err));
			return EXIT_FAILED;
		}
	}
	if (t->f.since_ms) {
		/* Where --since begins; the timestamps are checked again record by record. */
		times = rd_kafka_topic_partition_list_new(t->partitions);
		for (int p = 0; p < t->partitions; p++)
			rd_kafka_topic_partition_list_add(times, t->topic, p)->offset =
				t->f.since_ms;
		if (rd_kafka_offsets_for_times(t->rk, times, t->timeout_ms)) {
			rd_kafka_topic_partition_list_destroy(times);
			times = NULL; /* from the start, then: slower, same result */
		}
	}
	parts = rd_kafka_topic_partition_list_new(t->partitions);
	for (int p = 0; p < t->partitions; p++) {
		int64_t start = t->low[p];

		/*
		 * -1 would mean no record at or after since, but librdkafka's mock
		 * cluster answers -1 to every time: read from the start then (the
		 * timestamps are checked record by record anyway).
		 */
		if (times && !times->elems[p].err && times->elems[p].offset > start)
			start = times->elems[p].offset;
		if (start >= t->high[p])
			continue;
		rd_kafka_topic_partition_list_add(parts, t->topic, p)->offset = start;
		t->left++;
	}
	if (times)
		rd_kafka_topic_partition_list_destroy(times);
	err = t->left ? rd_kafka_assign(t->rk, parts) : 0;
	rd_kafka_topic_partition_list_destroy(parts);
	if (err) {
		fprintf(stderr, "ferryctl replay-dlq: assign: %s\n", rd_kafka_err2str(err));
		return EXIT_SYSTEM;
	}
	return 0;
}

static void count_group(struct replay *t, const char *tenant, struct msg_bytes reason)
{
	char r[160];
	size_t i;

	snprintf(r, sizeof(r), "%.*s", (int)reason.len, (const char *)reason.p);
	for (i = 0; i < t->n_groups; i++)
		if (!strcmp(t->groups[i].tenant, tenant) && !strcmp(t->groups[i].reason, r))
			break;
	if (i == t->n_groups) {
		if (i == GROUPS_MAX) {
			t->other_groups++;
			return;
		}
		snprintf(t->groups[i].tenant, sizeof(t->groups[i].tenant), "%s", tenant);
		snprintf(t->groups[i].reason, sizeof(t->groups[i].reason), "%s", r);
		t->n_groups++;
	}
	t->groups[i].n++;
}

/* One dead letter. Returns 0 or an exit code. */
static int take(struct replay *t, const rd_kafka_message_t *m)
{
	struct msg_bytes headers = {t->headers, 0}, value = {m->payload, (uint32_t)m->len};
	struct msg_bytes reason = {"", 0}, sid = {"", 0};
	rd_kafka_headers_t *hdrs;
	enum dlq_verdict v;
	size_t hlen = 0, alen = 0;
	char tenant[64];
	int r;

	if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		const char *name;
		const void *val;
		size_t len;

		for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &val, &len); i++)
			if (msg_kv_put(t->headers, sizeof(t->headers), &hlen, name,
				       (uint32_t)strlen(name), val ? val : "",
				       val ? (uint32_t)len : 0) < 0) {
				hlen = 0;
				t->verdicts[DLQ_BAD_HEADERS]++;
				return 0;
			}
	}
	headers.len = (uint32_t)hlen;
	v = dlq_select(&t->f, headers, rd_kafka_message_timestamp(m, NULL), value,
		       m->payload != NULL, tenant, sizeof(tenant));
	if (v != DLQ_TAKE) {
		t->verdicts[v]++;
		if ((v == DLQ_NO_VALUE || v == DLQ_DROPPED || v == DLQ_NOT_ENVELOPE) &&
		    t->skip_lines++ < SKIP_LINES_MAX) {
			msg_kv_find(headers, DLQ_H_SOURCE_ID, &sid);
			msg_kv_find(headers, DLQ_H_REASON, &reason);
			printf("skipped: partition %" PRId32 " offset %" PRId64
			       ": %s; tenant '%s', source id '%.*s', reason: %.*s\n",
			       m->partition, m->offset, dlq_verdict_name(v), tenant, (int)sid.len,
			       (const char *)sid.p, (int)(reason.len < 200 ? reason.len : 200),
			       (const char *)reason.p);
		}
		return 0;
	}
	if (t->limit && t->verdicts[DLQ_TAKE] >= t->limit) {
		t->over_limit++;
		return 0;
	}
	t->verdicts[DLQ_TAKE]++;
	msg_kv_find(headers, DLQ_H_REASON, &reason);
	count_group(t, tenant, reason);
	if (t->dry_run)
		return 0;
	r = dlq_attrs(headers, t->attrs, sizeof(t->attrs), &alen);
	if (r == 0)
		r = dlq_writer_add(t->w,
				   (struct msg_bytes){m->key ? m->key : "", (uint32_t)m->key_len},
				   (struct msg_bytes){t->attrs, (uint32_t)alen}, value);
	if (r < 0) {
		fprintf(stderr,
			"ferryctl replay-dlq: partition %" PRId32 " offset %" PRId64 ": %s\n",
			m->partition, m->offset, strerror(-r));
		return EXIT_SYSTEM;
	}
	return 0;
}

static int consume(struct replay *t)
{
	uint64_t quiet_since = now_ns();

	while (t->left > 0) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(t->rk, 100);
		int r = 0;

		if (!m) {
			if (now_ns() - quiet_since > (uint64_t)t->timeout_ms * 1000000ull) {
				fprintf(stderr,
					"ferryctl replay-dlq: no record from Kafka for %d ms with "
					"%d partitions unfinished\n",
					t->timeout_ms, t->left);
				return EXIT_FAILED;
			}
			continue;
		}
		quiet_since = now_ns();
		if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			fprintf(stderr, "ferryctl replay-dlq: %s\n", rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			return EXIT_FAILED;
		}
		if (m->partition >= 0 && m->partition < t->partitions &&
		    t->high[m->partition] >= 0) {
			int64_t *hi = &t->high[m->partition];

			if (!m->err && m->offset < *hi) {
				t->read++;
				r = take(t, m);
			}
			/* The end as it was at the start, or earlier (compaction, EOF). */
			if (m->err || m->offset + 1 >= *hi) {
				*hi = -1;
				t->left--;
			}
		}
		rd_kafka_message_destroy(m);
		if (r)
			return r;
	}
	return 0;
}

static void report(const struct replay *t, const char *path)
{
	printf("read %" PRIu64 " dead letters of %s\n", t->read, t->topic);
	printf("%s %" PRIu64 " dead letters%s\n", t->dry_run ? "would replay" : "replaying",
	       t->verdicts[DLQ_TAKE], t->verdicts[DLQ_TAKE] ? ":" : "");
	for (size_t i = 0; i < t->n_groups; i++)
		printf("  %8" PRIu64 "  tenant '%s'  %s\n", t->groups[i].n, t->groups[i].tenant,
		       t->groups[i].reason);
	if (t->other_groups)
		printf("  %8" PRIu64 "  (other tenants and reasons)\n", t->other_groups);
	for (int v = DLQ_NOT_SELECTED; v < DLQ_VERDICT_COUNT; v++)
		if (t->verdicts[v])
			printf("skipped %" PRIu64 ": %s\n", t->verdicts[v], dlq_verdict_name(v));
	if (t->over_limit)
		printf("skipped %" PRIu64 ": over --limit\n", t->over_limit);
	if (path)
		printf("spool file: %s\n", path);
}

static int parse_args(struct replay *t, int argc, char **argv)
{
	enum { O_TENANT = 256, O_TYPE, O_REASON, O_STAGE, O_SINCE, O_UNTIL, O_LIMIT, O_DRY, O_TMO };
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"tenant", required_argument, NULL, O_TENANT},
		{"type", required_argument, NULL, O_TYPE},
		{"reason", required_argument, NULL, O_REASON},
		{"stage", required_argument, NULL, O_STAGE},
		{"since", required_argument, NULL, O_SINCE},
		{"until", required_argument, NULL, O_UNTIL},
		{"limit", required_argument, NULL, O_LIMIT},
		{"dry-run", no_argument, NULL, O_DRY},
		{"timeout-ms", required_argument, NULL, O_TMO},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int64_t now = (int64_t)(realtime_ns() / 1000000);
	char *end;
	int c;

	optind = 1;
	t->timeout_ms = 10000;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			t->config = optarg;
			break;
		case O_TENANT:
		case O_TYPE:
			if ((c == O_TENANT ? t->n_tenants : t->n_types) == LIST_MAX) {
				fprintf(stderr, "ferryctl replay-dlq: at most %d of each\n",
					LIST_MAX);
				return EXIT_USAGE;
			}
			if (c == O_TENANT)
				t->tenants[t->n_tenants++] = optarg;
			else
				t->types[t->n_types++] = optarg;
			break;
		case O_REASON:
			t->f.reason = optarg;
			break;
		case O_STAGE:
			if (strcmp(optarg, "ingest") && strcmp(optarg, "decrypt") &&
			    strcmp(optarg, "map") && strcmp(optarg, "produce")) {
				fprintf(stderr,
					"ferryctl replay-dlq: --stage: want ingest, decrypt, map "
					"or "
					"produce, got '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			t->f.stage = optarg;
			break;
		case O_SINCE:
		case O_UNTIL:
			if (dlq_parse_time(optarg, now,
					   c == O_SINCE ? &t->f.since_ms : &t->f.until_ms) < 0) {
				fprintf(stderr,
					"ferryctl replay-dlq: --%s: want RFC 3339 "
					"(2026-11-27T03:00:00Z), unix seconds or an age (30m, 2h, "
					"3d), got '%s'\n",
					c == O_SINCE ? "since" : "until", optarg);
				return EXIT_USAGE;
			}
			break;
		case O_LIMIT:
			t->limit = strtoull(optarg, &end, 10);
			if (*end || !*optarg || !t->limit) {
				fprintf(stderr,
					"ferryctl replay-dlq: --limit: want a count >= 1\n");
				return EXIT_USAGE;
			}
			break;
		case O_DRY:
			t->dry_run = 1;
			break;
		case O_TMO:
			t->timeout_ms = (int)strtol(optarg, &end, 10);
			if (*end || t->timeout_ms < 100 || t->timeout_ms > 3600000) {
				fprintf(stderr, "ferryctl replay-dlq: --timeout-ms: want 100 to "
						"3600000\n");
				return EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || !t->config) {
		fprintf(stderr, "ferryctl replay-dlq: %s\n",
			t->config ? "unexpected arguments" : "-c CONFIG is required");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (t->f.since_ms && t->f.until_ms && t->f.until_ms <= t->f.since_ms) {
		fprintf(stderr, "ferryctl replay-dlq: --until is not after --since\n");
		return EXIT_USAGE;
	}
	t->f.tenants = t->tenants;
	t->f.n_tenants = t->n_tenants;
	t->f.types = t->types;
	t->f.n_types = t->n_types;
	return 0;
}

int replay_dlq_main(int argc, char **argv)
{
	struct replay *t = calloc(1, sizeof(*t));
	char err[512], path[PATH_MAX + 64];
	int r;

	if (!t) {
		fprintf(stderr, "ferryctl replay-dlq: out of memory\n");
		return EXIT_SYSTEM;
	}
	r = parse_args(t, argc, argv);
	if (r) {
		free(t);
		return r < 0 ? 0 : r;
	}
	r = config_load(t->config, &t->cfg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ferryctl replay-dlq: %s\n", err);
		r = EXIT_USAGE;
		goto out;
	}
	snprintf(t->topic, sizeof(t->topic), "%s", t->cfg.dead_letter_topic);
	t->f.tenant_attr = t->cfg.tenant_attribute;
	t->f.need_envelope = t->cfg.keyring[0] != '\0';
	if (!t->dry_run) {
		r = dlq_spool_dir(&t->cfg, t->spool, sizeof(t->spool));
		if (r <= 0) {
			fprintf(stderr,
				"ferryctl replay-dlq: %s: no dead-letter spool (set [ingest] "
				"dlq_spool, or install ferry as a service so that /var/lib/ferry "
				"exists)\n",
				t->config);
			r = EXIT_USAGE;
			goto out;
		}
		if (dlq_spool_mkdir(t->spool, err, sizeof(err)) < 0 ||
		    !(t->w = dlq_writer_new(t->spool, err, sizeof(err)))) {
			fprintf(stderr, "ferryctl replay-dlq: %s (run as the user ferry runs as)\n",
				err);
			r = EXIT_SYSTEM;
			goto out;
		}
	}
	t->rk = kread_consumer_new(&t->cfg, NULL, "replay-dlq");
	if (!t->rk) {
		r = EXIT_USAGE;
		goto out;
	}
	r = assign_all(t);
	if (!r)
		r = consume(t);
	if (r)
		goto out;
	if (t->w && t->verdicts[DLQ_TAKE]) {
		r = dlq_writer_commit(t->w, path, sizeof(path), err, sizeof(err));
		t->w = NULL;
		if (r < 0) {
			fprintf(stderr, "ferryctl replay-dlq: %s\n", err);
			r = EXIT_SYSTEM;
			goto out;
		}
		report(t, path);
	} else {
		report(t, NULL);
	}
	r = 0;
out:
	dlq_writer_abort(t->w);
	if (t->rk) {
		rd_kafka_consumer_close(t->rk);
		rd_kafka_destroy(t->rk);
	}
	config_free(&t->cfg);
	free(t->high);
	free(t->low);
	free(t);
	return r;
}
