/* SPDX-License-Identifier: MIT */
/*
 * One line of a replay file (README, "Replay files") read into a source
 * message: the parser ingest's replay source uses, and the one-process
 * baseline of bench/bench-e2e.c with it, so the baseline does the same work
 * with the same code.
 */
#ifndef FERRY_WORKERS_INGEST_REPLAY_LINE_H
#define FERRY_WORKERS_INGEST_REPLAY_LINE_H

#include <stdint.h>

#include "common/msg.h"

/*
 * Parse line (a JSON object: "id", "body" strings, "attributes" an object
 * of strings) into a malloc'ed encoded source message (msg_source_encode,
 * source MSG_SOURCE_REPLAY): *enc, *len. When key_attr is not NULL, *key is
 * the value of that attribute in *enc, or the id when it has none. Returns
 * 0, or -EINVAL (a bad line) / -ENOMEM with *why.
 */
int replay_parse(const char *line, const char *key_attr, unsigned char **enc, uint32_t *len,
		 struct msg_bytes *key, const char **why);

#endif
