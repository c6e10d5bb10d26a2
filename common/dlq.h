/* SPDX-License-Identifier: MIT */
/*
 * dlq: dead-letter replay, the parts `ferryctl replay-dlq` and ingest's
 * spool source (workers/ingest/src-dlq.c) share: where the spool is, which
 * dead letters an operator's filter selects, how a dead letter's headers
 * become a source message's attributes again, and the spool file.
 *
 * Spool file (<spool>/<name>.dlq, written to a dot-name, fsynced, renamed,
 * mode 0600; ingest reads only *.dlq):
 *
 *   "FERRYDLQ"  u32 version (1)  u32 count        16-byte header, little endian
 *   count x {u32 len, u32 fnv1a(payload), payload} payload: msg_source_encode() of
 *                                                  the message (MSG_SOURCE_DLQ,
 *                                                  MSG_F_REPLAYED)
 *
 * A file whose header, count, lengths or checksums do not add up is
 * refused as a whole (dlq_file_load(): -EBADMSG naming the offset).
 */
#ifndef FERRY_COMMON_DLQ_H
#define FERRY_COMMON_DLQ_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/msg.h"

#define DLQ_SUFFIX  ".dlq"
#define DLQ_VERSION 1
#define DLQ_HEADER  16

/* Headers produce puts on dead letters (and map on events). */
#define DLQ_H_REASON	  "ferry-dead-reason"
#define DLQ_H_STAGE	  "ferry-dead-stage"
#define DLQ_H_TOPIC	  "ferry-dead-topic"
#define DLQ_H_SEQ	  "ferry-seq"
#define DLQ_H_SOURCE_ID	  "ferry-source-id"
#define DLQ_H_REPLAYED	  "ferry-replayed"
#define DLQ_H_LEGACY_TYPE "ferry-legacy-type"
#define DLQ_H_DROPPED	  "ferry-dead-value-dropped" /* value left out: it was plaintext */

/*
 * The spool directory of cfg into buf: [ingest] dlq_spool, else
 * /var/lib/ferry/<instance>/dlq when /var/lib/ferry is a directory
 * (systemd's StateDirectory=ferry). Returns 1 (buf set), 0 (off: "none",
 * or the default's parent missing), or -ENAMETOOLONG.
 */
int dlq_spool_dir(const struct ferry_config *cfg, char *buf, size_t len);

/* mkdir dir (mode 0700) and its parent if missing. Returns 0 or -errno with err. */
int dlq_spool_mkdir(const char *dir, char *err, size_t errlen);

/* What an operator asked for; every part given must match (tenants and types: any of them). */
struct dlq_filter {
	const char *const *tenants;
	size_t n_tenants;
	const char *const *types; /* legacy types, case-insensitive */
	size_t n_types;
	const char *reason; /* substring of ferry-dead-reason, NULL: any */
	const char *stage;  /* ferry-dead-stage, NULL: any */
	int64_t since_ms;   /* Kafka timestamp >= since (0: no bound) */
	int64_t until_ms;   /* Kafka timestamp < until (0: no bound) */
	const char *tenant_attr;
	/*
	 * decrypt is on (a key ring): a map or produce dead letter whose value
	 * is not a legacy envelope cannot be sent through decrypt again.
	 */
	int need_envelope;
};

enum dlq_verdict {
	DLQ_TAKE = 0,	  /* selected and replayable */
	DLQ_NOT_SELECTED, /* the filter does not want it */
	DLQ_NO_VALUE,	  /* an event Kafka refused: no source bytes (look up its source id) */
	DLQ_DROPPED,	  /* past decrypt (map): the plaintext value was left out */
	DLQ_NOT_ENVELOPE, /* need_envelope and the value is not an envelope */
	DLQ_BAD_HEADERS,  /* the header list is malformed */
	DLQ_VERDICT_COUNT,
};

/* A short word for each verdict ("selected", "no value", ...). */
const char *dlq_verdict_name(enum dlq_verdict v);

/*
 * Judge one dead letter: its headers (an encoded key/value list, msg.h),
 * Kafka timestamp, and value (has_value 0: the record had none). The
 * tenant is the tenant attribute, else the envelope's "tenant"; it is
 * copied to ret_tenant (may be NULL) for counting.
 */
enum dlq_verdict dlq_select(const struct dlq_filter *f, struct msg_bytes headers, int64_t ts_ms,
			    struct msg_bytes value, int has_value, char *ret_tenant,
			    size_t tenant_len);

/*
 * A dead letter's headers back into source attributes: every header but
 * produce's and map's bookkeeping (the DLQ_H_* names), in order, into buf.
 * Returns 0 with *ret_len, -ENOBUFS, or -EBADMSG.
 */
int dlq_attrs(struct msg_bytes headers, void *buf, size_t cap, size_t *ret_len);

/*
 * "2026-11-27T03:00:00Z" (RFC 3339, any offset, optional fraction), unix
 * seconds ("1795000000"), or an age before now ("30m", "2h", "3d").
 * Returns 0 with *ret_ms, or -EINVAL.
 */
int dlq_parse_time(const char *s, int64_t now_ms, int64_t *ret_ms);

/* --- the spool file --------------------------------------------------------- */

struct dlq_writer;

/* Start a spool file in dir (a hidden temporary name). NULL with err. */
struct dlq_writer *dlq_writer_new(const char *dir, char *err, size_t errlen);

/* Append one message (written as MSG_SOURCE_DLQ, MSG_F_REPLAYED). 0 or -errno. */
int dlq_writer_add(struct dlq_writer *w, struct msg_bytes id, struct msg_bytes attrs,
		   struct msg_bytes body);

/*
 * Finish: count in the header, fsync, rename to <dir>/<UTC time>-<pid>.dlq,
 * fsync dir. The writer is freed either way. Returns 0 with the path in
 * ret_path, or -errno with err (the temporary file removed).
 */
int dlq_writer_commit(struct dlq_writer *w, char *ret_path, size_t pathlen, char *err,
		      size_t errlen);

/* Drop an unfinished file. Accepts NULL. */
void dlq_writer_abort(struct dlq_writer *w);

/* A loaded spool file: msgs are views into buf. */
struct dlq_file {
	unsigned char *buf;
	size_t len;
	uint32_t n;
	struct msg_source_view *msgs;
};

/* Read and check a spool file. Returns 0, -EBADMSG (corrupt: err says where) or -errno. */
int dlq_file_load(const char *path, struct dlq_file *ret, char *err, size_t errlen);

/* Check a spool file already in memory (buf is kept by ret, not copied). */
int dlq_file_parse(unsigned char *buf, size_t len, struct dlq_file *ret, char *err, size_t errlen);

/* Release. Safe on a zeroed file, and twice. */
void dlq_file_free(struct dlq_file *f);

#endif
