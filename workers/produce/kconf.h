/* SPDX-License-Identifier: MIT */
/*
 * The librdkafka producer configuration ferry runs with, in one place, so
 * that what keeps events from being lost is tested and cannot drift:
 *
 * - message.timeout.ms = 0 (no timeout) unless [kafka] sets it: a Kafka
 *   outage of any length delays events; with librdkafka's default of 5
 *   minutes it would turn them into dead letters without values;
 * - then every [kafka] property, as written;
 * - then what is not negotiable, whatever [kafka] says:
 *   enable.idempotence = true and acks = all (nothing acked that Kafka
 *   does not hold, no reordering, no duplicates from librdkafka's retries).
 */
#ifndef FERRY_WORKERS_PRODUCE_KCONF_H
#define FERRY_WORKERS_PRODUCE_KCONF_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "common/config.h"

/*
 * A new configuration (the caller owns it, or hands it to rd_kafka_new()),
 * or NULL with err set: "FILE:LINE: [kafka] KEY: why" when librdkafka
 * refuses a property of the file.
 */
rd_kafka_conf_t *produce_conf_new(const struct ferry_config *cfg, char *err, size_t errlen);

#endif
