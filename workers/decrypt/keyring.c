/* SPDX-License-Identifier: MIT */
#include "workers/decrypt/keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/aws.h"
#include "common/log.h"
#include "common/time.h"

#define BUCKETS	    1024
#define NEGATIVE_NS (5 * 1000000000ull)

struct entry {
	struct entry *next;
	char tenant[ENVELOPE_TENANT_MAX];
	uint32_t version;
	int err;	/* 0: key valid; else the -errno of the lookup, remembered */
	uint64_t until; /* a remembered failure is tried again after this */
	char why[160];
	unsigned char *key; /* in the locked arena */
	uint64_t refresh;   /* KMS-wrapped: unwrap again after this (0: never) */
};

struct keyring {
	char dir[4096];
	struct aws_client *kms;
	uint64_t ttl_ns;
	struct entry *bucket[BUCKETS];
	/* One page-aligned arena of locked, undumpable memory for key bytes. */
	unsigned char *arena;
	size_t arena_size, arena_used;
};

static uint32_t hash(const char *tenant, uint32_t version)
{
	uint32_t h = 2166136261u ^ version;

	while (*tenant)
		h = (h ^ (unsigned char)*tenant++) * 16777619u;
	return h % BUCKETS;
}

static int tenant_valid(const char *t)
{
	size_t n = strlen(t);

	if (!n || n >= ENVELOPE_TENANT_MAX || !strcmp(t, ".") || !strcmp(t, ".."))
		return 0;
	for (; *t; t++)
		if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') ||
		      (*t >= '0' && *t <= '9') || *t == '_' || *t == '-' || *t == '.'))
			return 0;
	return 1;
}

struct keyring *keyring_new(const char *dir, struct aws_client *kms, uint64_t ttl_ns)
{
	struct keyring *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	snprintf(k->dir, sizeof(k->dir), "%s", dir);
	k->kms = kms;
	k->ttl_ns = ttl_ns;
	k->arena_size = 64 * 1024; /* 2048 keys */
	k->arena = mmap(NULL, k->arena_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	if (k->arena == MAP_FAILED) {
		free(k);
		return NULL;
	}
	/* Best effort (RLIMIT_MEMLOCK): a key must not reach swap or a core file. */
	mlock(k->arena, k->arena_size);
	madvise(k->arena, k->arena_size, MADV_DONTDUMP);
	return k;
}

void keyring_flush(struct keyring *k)
{
	if (!k)
		return;
	for (unsigned b = 0; b < BUCKETS; b++) {
		struct entry *e = k->bucket[b];

		while (e) {
			struct entry *next = e->next;

			free(e);
			e = next;
		}
		k->bucket[b] = NULL;
	}
	OPENSSL_cleanse(k->arena, k->arena_size);
	k->arena_used = 0;
}

void keyring_free(struct keyring *k)
{
	if (!k)
		return;
	keyring_flush(k);
	munlock(k->arena, k->arena_size);
	munmap(k->arena, k->arena_size);
	free(k);
}

/*
 * Read a small file that must be a regular file of mode 0600 or stricter,
 * without trailing white space, into buf. Returns its length or -errno
 * with why.
 */
static ssize_t read_secret(const char *path, char *buf, size_t cap, char *why, size_t whylen)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -ENOENT;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		snprintf(why, whylen,
			 "key file %s is not a regular file of mode 0600 or stricter "
			 "(mode %04o): refused",
			 path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -EACCES;
	}
	n = read(fd, buf, cap - 1);
	close(fd);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	return n < 0 ? -EIO : n;
}

/* Unwrap the KMS-encrypted data key in path into key. Returns 0 or -errno with why. */
static int unwrap(struct keyring *k, const char *path, const char *tenant, uint32_t version,
		  unsigned char *key, char *why, size_t whylen)
{
	char b64[4096], err[256] = "";
	unsigned char blob[3072];
	size_t len = 0;
	ssize_t n = read_secret(path, b64, sizeof(b64), why, whylen);
	int64_t bl;
	int r;

	if (n < 0)
		return (int)n;
	if (!k->kms) {
		snprintf(why, whylen,
			 "key %u of tenant '%s' is KMS-wrapped, and no [decrypt] kms_region is set",
			 version, tenant);
		return -EACCES;
	}
	bl = envelope_b64_decode(b64, (size_t)n, blob, sizeof(blob));
	if (bl <= 0) {
		snprintf(why, whylen, "key file %s is not base64", path);
		return -EINVAL;
	}
	r = aws_kms_decrypt(k->kms, blob, (size_t)bl, NULL, key, ENVELOPE_KEY_LEN + 2, &len, err,
			    sizeof(err));
	if (r < 0) {
		snprintf(why, whylen, "KMS refused the data key of tenant '%s' version %u: %s",
			 tenant, version, err);
		return r == -EACCES || r == -EIO ? r : -EACCES;
	}
	if (len != ENVELOPE_KEY_LEN) {
		OPENSSL_cleanse(key, ENVELOPE_KEY_LEN + 2);
		snprintf(why, whylen,
			 "the KMS data key of tenant '%s' version %u is %zu bytes, not %d", tenant,
			 version, len, ENVELOPE_KEY_LEN);
		return -EINVAL;
	}
	return 0;
}

/* Read one key into key: a plain key file, else a KMS-wrapped one. Returns 0, 1 (wrapped) or
 * -errno. */
static int load(struct keyring *k, const char *tenant, uint32_t version, unsigned char *key,
		char *why, size_t whylen)
{
	char path[4096 + 2 * ENVELOPE_TENANT_MAX], buf[128];
	struct stat st;
	ssize_t n;
	int64_t len;
	int r;

	snprintf(path, sizeof(path), "%s/%s", k->dir, tenant);
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "unknown tenant '%s'", tenant);
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "%s/%s/%u.key", k->dir, tenant, version);
	n = read_secret(path, buf, sizeof(buf), why, whylen);
	if (n == -ENOENT) {
		snprintf(path, sizeof(path), "%s/%s/%u.wrapped", k->dir, tenant, version);
		r = unwrap(k, path, tenant, version, key, why, whylen);
		if (r == -ENOENT)
			snprintf(why, whylen, "unknown key version %u of tenant '%s'", version,
				 tenant);
		return r < 0 ? r : 1;
	}
	if (n < 0)
		return (int)n;
	len = envelope_b64_decode(buf, (size_t)n, key, ENVELOPE_KEY_LEN + 2);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (len != ENVELOPE_KEY_LEN) {
		OPENSSL_cleanse(key, ENVELOPE_KEY_LEN + 2);
		snprintf(why, whylen, "key file %s is not the base64 of %d bytes", path,
			 ENVELOPE_KEY_LEN);
		return -EINVAL;
	}
	return 0;
}

int keyring_lookup(struct keyring *k, const char *tenant, uint32_t version,
		   const unsigned char **ret, char *why, size_t whylen)
{
	uint32_t b;
	struct entry *e;
	uint64_t now = now_ns();
	int r;

	if (!tenant_valid(tenant)) {
		snprintf(why, whylen, "invalid tenant id (want 1-127 of A-Z a-z 0-9 _ . -)");
		return -EINVAL;
	}
	b = hash(tenant, version);
	for (e = k->bucket[b]; e; e = e->next)
		if (e->version == version && !strcmp(e->tenant, tenant))
			break;
	if (e && !e->err && (!e->refresh || now < e->refresh)) {
		*ret = e->key;
		return 0;
	}
	if (e && !e->err) {
		/* A KMS-wrapped key past its time: unwrap again; on failure keep this one. */
		unsigned char fresh[ENVELOPE_KEY_LEN + 2];

		r = load(k, tenant, version, fresh, why, whylen);
		if (r >= 0) {
			memcpy(e->key, fresh, ENVELOPE_KEY_LEN);
			e->refresh = r == 1 && k->ttl_ns ? now + k->ttl_ns : 0;
		} else {
			log_warning("tenant %s key %u: %s; keeping the key in hand", tenant,
				    version, why);
			e->refresh = now + NEGATIVE_NS;
		}
		OPENSSL_cleanse(fresh, sizeof(fresh));
		*ret = e->key;
		return 0;
	}
	if (e && now < e->until) {
		snprintf(why, whylen, "%s", e->why);
		return e->err;
	}
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e)
			return -ENOMEM;
		snprintf(e->tenant, sizeof(e->tenant), "%s", tenant);
		e->version = version;
		e->next = k->bucket[b];
		k->bucket[b] = e;
	}
	if (!e->key) {
		/* 2 spare bytes: base64 of 32 bytes decodes in blocks of 3. */
		if (k->arena_used + ENVELOPE_KEY_LEN + 2 > k->arena_size) {
			snprintf(why, whylen, "too many keys in memory");
			return -ENOMEM;
		}
		e->key = k->arena + k->arena_used;
		k->arena_used += ENVELOPE_KEY_LEN + 2;
	}
	r = load(k, tenant, version, e->key, why, whylen);
	e->err = r < 0 ? r : 0;
	e->refresh = r == 1 && k->ttl_ns ? now + k->ttl_ns : 0;
	if (r < 0) {
		e->until = now + NEGATIVE_NS;
		snprintf(e->why, sizeof(e->why), "%s", why);
		return r;
	}
	*ret = e->key;
	return 0;
}
