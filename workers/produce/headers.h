/* SPDX-License-Identifier: MIT */
/*
 * Kafka headers from a msg key/value list (the attributes of a source
 * message, the headers of an event): what produce sends, and what the
 * one-process baseline of bench/bench-e2e.c sends the same way. Inline, so
 * the hot path costs what it did as a static function of produce.c.
 */
#ifndef FERRY_WORKERS_PRODUCE_HEADERS_H
#define FERRY_WORKERS_PRODUCE_HEADERS_H

#include <sys/types.h>

#include <librdkafka/rdkafka.h>

#include "common/msg.h"

/* A new header list (the caller owns it, or hands it to rd_kafka_producev). */
static inline rd_kafka_headers_t *headers_of(struct msg_bytes list)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(8);
	size_t pos = 0;
	struct msg_kv kv;

	while (msg_kv_next(list, &pos, &kv) > 0)
		rd_kafka_header_add(h, kv.key.p, (ssize_t)kv.key.len, kv.value.p,
				    (ssize_t)kv.value.len);
	return h;
}

#endif
