/* SPDX-License-Identifier: MIT */
/*
 * decrypt: legacy envelopes (common/envelope.h) opened with the tenant's
 * key from the key ring; the source message goes on with its body replaced
 * by the plaintext, decrypted straight into the output ring. Whatever
 * cannot be decrypted (no tenant, unknown tenant or key version, a key file
 * readable by others, bad base64, wrong IV length, truncated ciphertext, a
 * tag mismatch) goes on as a dead letter holding the message as received,
 * still encrypted, with the reason. Without a key ring, messages pass
 * through undecrypted (the replay demo of plain messages).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <curl/curl.h>

#include "common/aws.h"
#include "common/envelope.h"
#include "common/log.h"
#include "workers/common/worker.h"
#include "workers/decrypt/keyring.h"

struct decrypt {
	struct keyring *keys;
	struct aws_creds_provider *creds;
	struct aws_client *kms;
	struct shm_tenant *tenants; /* this worker's per-tenant counts */
	unsigned char attrs[65536]; /* a message's attributes, the tenant added */
	int registered;		    /* this thread is an RCU reader of the key ring */
	char why[320];
};

#define FIRST_USE_WAIT_NS (5 * 1000000000ull)

static int decrypt_init(struct worker *w)
{
	struct decrypt *d = calloc(1, sizeof(*d));
	uint64_t wait;

	if (!d)
		return -ENOMEM;
	w->ctx = d;
	d->tenants = shm_worker_tenants(w->seg, w->index);
	if (!w->cfg.keyring[0]) {
		log_warning("no [decrypt] keyring: messages pass through undecrypted");
		return 0;
	}
	if (w->cfg.kms_region[0]) {
		/* The credential chain of the AWS SDKs, refreshed before expiry. */
		curl_global_init(CURL_GLOBAL_DEFAULT);
		d->creds = aws_creds_provider_new(w->cfg.aws_profile[0] ? w->cfg.aws_profile : NULL,
						  w->cfg.kms_region);
		if (!d->creds)
			return -ENOMEM;
		d->kms = aws_client_new_provider(
			w->cfg.kms_region, w->cfg.kms_endpoint[0] ? w->cfg.kms_endpoint : NULL,
			d->creds);
		if (!d->kms)
			return -errno ? -errno : -ENOMEM;
	}
	keyring_thread_register(); /* this thread looks keys up */
	d->registered = 1;
	d->keys = keyring_new(w->cfg.keyring, d->kms, w->cfg.key_cache_ttl_ms * 1000000ull);
	if (!d->keys)
		return -errno;
	/*
	 * A first use waits for KMS at most half the heartbeat timeout (the
	 * loop does not beat meanwhile), and 5 s at most: the shard's other
	 * tenants wait behind it.
	 */
	wait = w->cfg.heartbeat_timeout_ms * 1000000ull / 2;
	keyring_set_waits(d->keys, wait < FIRST_USE_WAIT_NS ? wait : FIRST_USE_WAIT_NS, 0);
	return 0;
}

static void decrypt_fini(struct worker *w)
{
	struct decrypt *d = w->ctx;

	if (!d)
		return;
	envelope_decrypt_wipe();
	keyring_free(d->keys); /* stops the refresher, the only user of kms */
	aws_client_free(d->kms);
	aws_creds_provider_free(d->creds);
	if (d->registered)
		keyring_thread_unregister();
	free(d);
	w->ctx = NULL;
}

/* SIGHUP: forget every key (wiped); the next lookups read the key ring again. */
static void decrypt_reload(struct worker *w)
{
	struct decrypt *d = w->ctx;

	keyring_flush(d->keys);
	envelope_decrypt_wipe();
	log_info("key ring flushed: keys are read again on use");
}

/* b into ret as a string, cut to fit (snprintf's "%.*s" without its cost per message). */
static void copy_bytes(char *ret, size_t len, struct msg_bytes b)
{
	size_t n = b.len < len ? b.len : len - 1;

	memcpy(ret, b.p, n);
	ret[n] = 0;
}

/* The tenant: the configured attribute, else the envelope's own field; both must agree. */
static int tenant_of(struct worker *w, const struct msg_source_view *m, const struct envelope *e,
		     char *ret, size_t len)
{
	struct decrypt *d = w->ctx;
	struct msg_bytes a;

	if (msg_kv_find(m->attrs, w->cfg.tenant_attribute, &a) > 0) {
		copy_bytes(ret, len, a);
		if (a.len >= len || (e->tenant[0] && strcmp(ret, e->tenant))) {
			snprintf(d->why, sizeof(d->why),
				 "decrypt: tenant mismatch: attribute '%.64s', envelope '%.64s'",
				 ret, e->tenant);
			return -EBADMSG;
		}
		return 0;
	}
	if (!e->tenant[0]) {
		snprintf(d->why, sizeof(d->why),
			 "decrypt: no tenant (no attribute '%s', no \"tenant\" in the envelope)",
			 w->cfg.tenant_attribute);
		return -EBADMSG;
	}
	snprintf(ret, len, "%s", e->tenant);
	return 0;
}

static int decrypt_open(struct worker *w, const struct ring_rec *rec, const char **reason,
			char *tenant, size_t tlen)
{
	struct decrypt *d = w->ctx;
	struct msg_source_view m, o;
	struct envelope e;
	const unsigned char *key;
	struct msg_bytes a;
	char why[256];
	uint32_t size;
	int64_t n;
	unsigned char *p;
	int r;

	*reason = d->why;
	if (rec->type != MSG_REC_SOURCE || msg_source_decode(rec->data, rec->len, &m) < 0) {
		snprintf(d->why, sizeof(d->why), "decrypt: not a readable source message");
		return -EBADMSG;
	}
	/* Whatever happens next, the message is counted for the tenant it names. */
	if (msg_kv_find(m.attrs, w->cfg.tenant_attribute, &a) > 0)
		copy_bytes(tenant, tlen, a);
	if (!d->keys)
		return worker_emit(w, 0, MSG_REC_SOURCE, rec->seq, rec->data, rec->len);
	r = envelope_parse(m.body.p, m.body.len, &e, why, sizeof(why));
	if (r < 0) {
		snprintf(d->why, sizeof(d->why), "decrypt: %.250s", why);
		return r;
	}
	r = tenant_of(w, &m, &e, tenant, tlen);
	if (r < 0)
		goto out;
	/* Lay out the message with the ciphertext as body, then decrypt it in place. */
	o = m;
	if (msg_kv_find(m.attrs, w->cfg.tenant_attribute, &a) <= 0 &&
	    m.attrs.len + msg_kv_size((uint32_t)strlen(w->cfg.tenant_attribute),
				      (uint32_t)strlen(tenant)) <=
		    sizeof(d->attrs)) {
		/* Named only inside the envelope: map and produce find it as an attribute. */
		size_t alen = m.attrs.len;

		memcpy(d->attrs, m.attrs.p, m.attrs.len);
		msg_kv_put(d->attrs, sizeof(d->attrs), &alen, w->cfg.tenant_attribute,
			   (uint32_t)strlen(w->cfg.tenant_attribute), tenant,
			   (uint32_t)strlen(tenant));
		o.attrs.p = d->attrs;
		o.attrs.len = (uint32_t)alen;
	}
	o.body.p = e.ct;
	o.body.len = (uint32_t)(e.ct_len - ENVELOPE_TAG_LEN);
	/* A dead letter of a later stage carries the envelope as received, never the plaintext. */
	o.flags |= MSG_F_PLAINTEXT;
	o.orig = m.body;
	size = msg_source_size(&o);
	p = worker_reserve(w, 0, size);
	if (!p) {
		r = -errno;
		snprintf(d->why, sizeof(d->why), "decrypt: no room for the output: %s",
			 strerror(-r));
		goto out;
	}
	msg_source_encode(p, size, &o);
	/* The key is looked up only now: no waiting for ring space while it is held. */
	r = keyring_lookup(d->keys, tenant, e.key_version, &key, why, sizeof(why));
	if (r < 0) {
		snprintf(d->why, sizeof(d->why), "decrypt: %.250s", why);
		goto out;
	}
	n = envelope_decrypt(&e, key, p + size - o.orig.len - o.body.len, o.body.len, why,
			     sizeof(why));
	keyring_release(d->keys);
	if (n < 0) {
		snprintf(d->why, sizeof(d->why), "decrypt: %.120s (tenant '%.64s', key version %u)",
			 why, tenant, e.key_version);
		r = (int)n;
		goto out;
	}
	r = worker_push(w, 0, MSG_REC_SOURCE, rec->seq, size);
out:
	envelope_free(&e);
	return r;
}

/* Open one message and count it for its tenant (when it names one). */
static int decrypt_handle(struct worker *w, const struct ring_rec *rec, const char **reason)
{
	struct decrypt *d = w->ctx;
	char tenant[ENVELOPE_TENANT_MAX] = "";
	struct shm_tenant *t;
	int r = decrypt_open(w, rec, reason, tenant, sizeof(tenant));

	/* Not handled yet (stopping, or tried again with more room): not counted. */
	if (r == -ECANCELED || r == -ENOSPC || !d->tenants)
		return r;
	t = shm_tenant_slot(d->tenants, tenant[0] ? tenant : "?");
	__atomic_fetch_add(r < 0 ? &t->failed : &t->ok, 1, __ATOMIC_RELAXED);
	return r;
}

static const struct stage_ops decrypt_ops = {
	.name = "decrypt",
	.init = decrypt_init,
	.handle = decrypt_handle,
	.reload = decrypt_reload,
	.fini = decrypt_fini,
};

int main(int argc, char **argv)
{
	return worker_main(argc, argv, &decrypt_ops);
}
