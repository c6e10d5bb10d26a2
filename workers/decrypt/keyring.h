/* SPDX-License-Identifier: MIT */
/*
 * keyring: tenant keys from a directory, <dir>/<tenant>/<version>.key, each
 * file the base64 of a 32-byte AES-256 key, mode 0600 or stricter; or
 * <dir>/<tenant>/<version>.wrapped, the base64 of a data key encrypted by
 * AWS KMS (its CiphertextBlob), unwrapped through KMS Decrypt.
 *
 * Keys are read on first use and kept in memory that is locked (never
 * swapped), excluded from core dumps, and wiped when dropped. A lookup that
 * finds nothing is remembered for a few seconds, then tried again, so a
 * restored key file is picked up without a restart. Never logs a key.
 *
 * KMS: every KMS call is made by the keyring's own refresher thread (the
 * only user of the aws_client), each bounded by a timeout. A wrapped key is
 * unwrapped again in the background at 80 % of its TTL, so a lookup never
 * waits on KMS for a key it has; a refresh that fails keeps the key in hand
 * and is retried with backoff. Only the first use of a wrapped key waits,
 * for a bounded time, for the refresher's answer (see keyring_set_waits()).
 *
 * Concurrency: lookups are lock-free RCU readers (liburcu, memb flavour);
 * the refresher, keyring_flush() and first uses are the rare writers (one
 * mutex among them). A replaced or dropped key is wiped and its memory
 * reused only after a grace period. Every thread that calls
 * keyring_lookup() registers first with keyring_thread_register().
 */
#ifndef FERRY_WORKERS_KEYRING_H
#define FERRY_WORKERS_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "common/envelope.h"

struct keyring;

struct aws_client;

/* What the keyring did, for tests and logs (monotonic counts). */
struct keyring_stats {
	uint64_t kms_calls;	   /* KMS Decrypt calls made (all by the refresher thread) */
	uint64_t refreshed;	   /* keys unwrapped again in the background */
	uint64_t refresh_failures; /* background unwraps that failed (key in hand kept) */
	uint64_t first_use_waits;  /* lookups that waited for a first unwrap */
	uint64_t wait_timeouts;	   /* ... of which KMS had not answered in time */
};

/*
 * A keyring over dir; kms (may be NULL: wrapped keys are then refused)
 * unwraps .wrapped keys, which are unwrapped again in the background at
 * 80 % of ttl_ns (0: never). With kms, starts the refresher thread, which
 * alone uses kms from then on (call curl_global_init() before). The
 * keyring does not own kms; it must outlive the keyring. NULL with errno
 * on failure.
 */
struct keyring *keyring_new(const char *dir, struct aws_client *kms, uint64_t ttl_ns);

/*
 * How long the first use of a wrapped key waits for KMS (default 5 s)
 * and how long one KMS call may take (default 4 s; connecting at most
 * half of it). Zero leaves a value as it is.
 */
void keyring_set_waits(struct keyring *k, uint64_t first_use_wait_ns, uint64_t kms_timeout_ns);

/*
 * Stop the refresher, wipe and free every key. Accepts NULL. Not from
 * within a lookup's read section (between keyring_lookup() and
 * keyring_release()).
 */
void keyring_free(struct keyring *k);

/*
 * Forget every key (wiped once no reader can hold it), e.g. on SIGHUP: the
 * next lookups read the files again. Safe while the refresher runs and
 * other threads look keys up; not from within a lookup's read section.
 */
void keyring_flush(struct keyring *k);

/* Make the calling thread an RCU reader (once per thread, before its first lookup). */
void keyring_thread_register(void);
/* Before a registered thread exits. */
void keyring_thread_unregister(void);

/*
 * The key of tenant, version. Returns 0 with *ret valid until
 * keyring_release(k), which the caller must call once per success before
 * it looks up again or waits (the lookup enters an RCU read-side
 * section; nothing is wiped under it). Or, with nothing to release, -errno
 * with why set: -ENOENT ("unknown tenant 'x'", "unknown key version 3 of
 * tenant 'x'"), -EACCES ("key file ... (mode 0644): refused", "KMS
 * refused the data key ...: kms: ..."), -EINVAL ("invalid tenant id",
 * "key file ... is not the base64 of 32 bytes", calling thread not
 * registered), -EIO (KMS unreachable), -EAGAIN (KMS has not answered for
 * this key yet: it is still being asked in the background), -ENOMEM.
 */
int keyring_lookup(struct keyring *k, const char *tenant, uint32_t version,
		   const unsigned char **ret, char *why, size_t whylen);

/* End the read section of a successful keyring_lookup(): the key may then go. */
void keyring_release(struct keyring *k);

/* A snapshot of the counts. */
void keyring_stats(struct keyring *k, struct keyring_stats *ret);

#endif
