/* SPDX-License-Identifier: MIT */
#include "workers/produce/kconf.h"

#include <stdio.h>

rd_kafka_conf_t *produce_conf_new(const struct ferry_config *cfg, char *err, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char why[512];

	if (!conf) {
		snprintf(err, errlen, "librdkafka: out of memory");
		return NULL;
	}
	if (rd_kafka_conf_set(conf, "message.timeout.ms", "0", why, sizeof(why)) !=
	    RD_KAFKA_CONF_OK) {
		snprintf(err, errlen, "librdkafka: %s", why);
		goto bad;
	}
	for (size_t i = 0; i < cfg->n_kafka; i++)
		if (rd_kafka_conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, why,
				      sizeof(why)) != RD_KAFKA_CONF_OK) {
			snprintf(err, errlen, "%s:%u: [kafka] %s: %s", cfg->path,
				 cfg->kafka[i].line, cfg->kafka[i].key, why);
			goto bad;
		}
	if (rd_kafka_conf_set(conf, "enable.idempotence", "true", why, sizeof(why)) !=
		    RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "acks", "all", why, sizeof(why)) != RD_KAFKA_CONF_OK) {
		snprintf(err, errlen, "librdkafka: %s", why);
		goto bad;
	}
	return conf;
bad:
	rd_kafka_conf_destroy(conf);
	return NULL;
}
