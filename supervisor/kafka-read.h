/* SPDX-License-Identifier: MIT */
/*
 * kafka-read: what ferryctl's Kafka readers (tail, replay-dlq) share. They
 * read a whole topic by assign() from where they choose, never joining the
 * consumer group nor committing, with ferry's [kafka] properties (or a
 * bootstrap address) so they reach the brokers the way ferry does. WHO
 * names the subcommand: messages start "ferryctl WHO: ", the client and
 * group id are "ferryctl-WHO".
 */
#ifndef FERRY_SUPERVISOR_KAFKA_READ_H
#define FERRY_SUPERVISOR_KAFKA_READ_H

#include <librdkafka/rdkafka.h>

struct ferry_config;

/*
 * A consumer from cfg's [kafka] pairs (cfg may be NULL) and then bootstrap
 * (may be NULL), partition EOF reported. NULL on error (said on stderr).
 */
rd_kafka_t *kread_consumer_new(const struct ferry_config *cfg, const char *bootstrap,
			       const char *who);

/*
 * The number of partitions of topic (> 0), -EIO when Kafka failed or said
 * it has none (said on stderr), -ENOMEM.
 */
int kread_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, const char *who);

#endif
