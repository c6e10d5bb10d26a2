/* SPDX-License-Identifier: MIT */
#include "supervisor/kafka-read.h"

#include <errno.h>
#include <stdio.h>

#include "common/config.h"

static int set(rd_kafka_conf_t *conf, const char *k, const char *v, const char *who)
{
	char errstr[512];

	if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "ferryctl %s: %s: %s\n", who, k, errstr);
		return -1;
	}
	return 0;
}

rd_kafka_t *kread_consumer_new(const struct ferry_config *cfg, const char *bootstrap,
			       const char *who)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char id[64], errstr[512];
	rd_kafka_t *rk;
	int r = 0;

	snprintf(id, sizeof(id), "ferryctl-%s", who);
	/* Producer-only properties (acks, linger.ms...) are ignored by a consumer. */
	for (size_t i = 0; cfg && i < cfg->n_kafka && !r; i++)
		r = set(conf, cfg->kafka[i].key, cfg->kafka[i].value, who);
	/* assign() wants a group id; the group is never joined nor committed to. */
	if (r || (bootstrap && set(conf, "bootstrap.servers", bootstrap, who)) ||
	    set(conf, "client.id", id, who) || set(conf, "group.id", id, who) ||
	    set(conf, "enable.auto.commit", "false", who) ||
	    set(conf, "enable.auto.offset.store", "false", who) ||
	    set(conf, "enable.partition.eof", "true", who) || set(conf, "log_level", "3", who)) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "ferryctl %s: %s\n", who, errstr);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_poll_set_consumer(rk);
	return rk;
}

int kread_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, const char *who)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err;
	int n;

	if (!rkt)
		return -ENOMEM;
	err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
	rd_kafka_topic_destroy(rkt);
	if (err) {
		fprintf(stderr, "ferryctl %s: metadata of '%s': %s\n", who, topic,
			rd_kafka_err2str(err));
		return -EIO;
	}
	if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1) {
		fprintf(stderr, "ferryctl %s: topic '%s': %s\n", who, topic,
			md->topic_cnt == 1 && md->topics[0].err
				? rd_kafka_err2str(md->topics[0].err)
				: "no partitions");
		rd_kafka_metadata_destroy(md);
		return -EIO;
	}
	n = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	return n;
}
