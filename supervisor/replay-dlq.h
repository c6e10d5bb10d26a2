/* SPDX-License-Identifier: MIT */
/*
 * replay-dlq: `ferryctl replay-dlq -c CONFIG [filters]`. Reads the
 * dead-letter topic ([produce] dead_letter_topic, brokers from [kafka])
 * up to the high watermarks it finds at its start (so it never reads what
 * its own replay sends back), selects dead letters by tenant, legacy type,
 * reason, stage and time (common/dlq.h), and writes them as one spool
 * file into [ingest] dlq_spool, where ingest sends them through the
 * pipeline again, marked replayed. Prints what it selected (per tenant and
 * reason) and what it skipped, and why.
 */
#ifndef FERRY_SUPERVISOR_REPLAY_DLQ_H
#define FERRY_SUPERVISOR_REPLAY_DLQ_H

/* argv[0] is "replay-dlq". Returns the exit code (0, 1 nothing found/Kafka, 100, 111). */
int replay_dlq_main(int argc, char **argv);

#endif
