/* SPDX-License-Identifier: MIT */
/*
 * keyring: tenant keys from a directory, <dir>/<tenant>/<version>.key, each
 * file the base64 of a 32-byte AES-256 key, mode 0600 or stricter; or
 * <dir>/<tenant>/<version>.wrapped, the base64 of a data key encrypted by
 * AWS KMS (its CiphertextBlob), unwrapped through KMS Decrypt on first use
 * and again once its cache time runs out (if KMS fails then, the key in
 * hand is kept and KMS asked again later).
 *
 * Keys are read on first use and kept in memory that is locked (never
 * swapped), excluded from core dumps, and wiped when dropped. A lookup that
 * finds nothing is remembered for a few seconds, then tried again, so a
 * restored key file is picked up without a restart. Never logs a key.
 */
#ifndef FERRY_WORKERS_KEYRING_H
#define FERRY_WORKERS_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "common/envelope.h"

struct keyring;

struct aws_client;

/*
 * A keyring over dir; kms (may be NULL: wrapped keys are then refused)
 * unwraps .wrapped keys, which are kept ttl_ns. NULL with errno on failure.
 * The keyring does not own kms.
 */
struct keyring *keyring_new(const char *dir, struct aws_client *kms, uint64_t ttl_ns);

/* Wipe and free every key. Accepts NULL. */
void keyring_free(struct keyring *k);

/* Forget every key (wiped), e.g. on SIGHUP: the next lookups read the files again. */
void keyring_flush(struct keyring *k);

/*
 * The key of tenant, version. Returns 0 with *ret valid until the next
 * keyring_flush()/keyring_free(), or with why set: -ENOENT ("unknown
 * tenant 'x'", "unknown key version 3 of tenant 'x'"), -EACCES ("key file
 * ... (mode 0644): refused", "KMS refused the data key ...: kms: ..."),
 * -EINVAL ("invalid tenant id", "key file ... is not the base64 of 32
 * bytes"), -EIO (KMS unreachable), -ENOMEM.
 */
int keyring_lookup(struct keyring *k, const char *tenant, uint32_t version,
		   const unsigned char **ret, char *why, size_t whylen);

#endif
