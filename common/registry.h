/* SPDX-License-Identifier: MIT */
/*
 * registry: a Confluent Schema Registry client (REST over libcurl) for the
 * Protobuf schemas ferry produces with, and the schema id and message
 * indexes each record value is prefixed with (common/wire.h).
 *
 * Input: a FileDescriptorSet (protoc --include_imports --descriptor_set_out)
 * holding the compiled catalog. What is registered for a .proto file is its
 * FileDescriptorProto, serialized and base64-encoded, as schemaType PROTOBUF:
 * Confluent's registry accepts that form wherever it accepts .proto text (it
 * tries the text parser, then base64 FileDescriptorProto) and stores it as
 * the equivalent .proto; so no .proto source needs to be compiled in.
 *
 * Subjects: the value subject of a message is "<topic>-value"
 * (TopicNameStrategy, the default) or the message's full name
 * (RecordNameStrategy). A file's imports are registered first, each under
 * the subject named by its import path ("test/common/v1/tenant.proto"), in
 * dependency order, and referenced as {"name": path, "subject": path,
 * "version": N}, as Confluent's serializers do.
 *
 * auto_register on: POST /subjects/S/versions (the registry answers the
 * existing id for a schema it holds: idempotent), then POST /subjects/S for
 * the version. Off: POST /subjects/S (lookup) only; when the subject is
 * missing, or holds no such schema, the registry's latest version is fetched
 * (format=serialized) and compared with the compiled descriptor, and the
 * call fails naming the subject and the first differences (message, field,
 * number, type, label). A latest version that differs only in form (no
 * semantic difference) is accepted.
 *
 * Outages: a request that cannot connect, times out, or gets 5xx/429 is
 * retried with jittered exponential backoff for up to retry_for_ms, then
 * fails with the last cause. Ids are cached: a subject is asked once.
 *
 * SECRETS: the password and key password are never put in err; they are
 * wiped (OPENSSL_cleanse) when the client is freed.
 * Errors: 0 or -errno with a one-line reason in err.
 * Threads: one thread at a time per struct registry. Call
 * curl_global_init() once at process start.
 */
#ifndef FERRY_COMMON_REGISTRY_H
#define FERRY_COMMON_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/wire.h"

enum registry_strategy {
	REGISTRY_TOPIC_NAME = 0, /* "<topic>-value" */
	REGISTRY_RECORD_NAME,	 /* the message's full name */
};

struct registry_config {
	const char *url;	  /* e.g. "https://sr.example:8081" (no trailing path) */
	const char *username;	  /* basic auth; NULL or "" for none */
	const char *password;	  /* secret */
	const char *ca_file;	  /* TLS: CA bundle (PEM); NULL: the system's */
	const char *cert_file;	  /* TLS client certificate (PEM); NULL: none */
	const char *key_file;	  /* its key (PEM) */
	const char *key_password; /* secret; NULL: none */
	bool tls_verify_off;	  /* true: do not verify peer nor host (tests only) */
	bool auto_register;
	enum registry_strategy strategy;
	long timeout_ms;    /* per request; 0 = 10000 */
	long retry_for_ms;  /* how long outages are retried per request; 0 = 30000, <0 = none */
	long retry_base_ms; /* first backoff; 0 = 200 (doubling, jittered, at most 5000) */
};

/* What a record value of one message type is prefixed with. */
struct registry_schema {
	char message[256]; /* full name, "test.chat.v1.MessageSent.Attachment" */
	char subject[512];
	uint32_t id;
	int version;
	int32_t indexes[WIRE_MAX_INDEXES];
	size_t n_indexes;
	uint8_t header[WIRE_HEADER_MAX]; /* magic, id, indexes: write it, then the payload */
	size_t header_len;
};

struct registry;

/*
 * A client for cfg (strings copied) serving the messages of the
 * FileDescriptorSet fds[0..len) (copied). No request is made here.
 * Returns NULL with errno (EINVAL: bad config or descriptor set, ENOMEM)
 * and a reason in err.
 */
struct registry *registry_new(const struct registry_config *cfg, const void *fds, size_t len,
			      char *err, size_t errlen);

/* Read a whole (descriptor set) file into *ret (malloc'd). 0 or -errno. */
int registry_read_file(const char *path, uint8_t **ret, size_t *ret_len, char *err, size_t errlen);

/*
 * The schema of message (full name) produced to topic (ignored under
 * RecordNameStrategy): registered or looked up as the configuration says,
 * with its imports first, on the first call; from the cache afterwards.
 * *ret points into the client (valid until registry_free()).
 * -ENOENT: message not in the descriptor set, or (auto_register off) the
 * subject or the schema is not in the registry; -ESTALE: the registry's
 * latest schema differs (err names the subject and the differences);
 * -EEXIST: the registry refused the schema as incompatible (409);
 * -EINVAL: refused as invalid (42201) or a bad argument; -EACCES: 401/403;
 * -EHOSTUNREACH: the registry stayed unreachable for retry_for_ms;
 * -EPROTO: any other answer.
 */
int registry_resolve(struct registry *r, const char *message, const char *topic,
		     const struct registry_schema **ret, char *err, size_t errlen);

/*
 * The message-index path of message in the descriptor set (no request).
 * 0, -ENOENT (no such message) or -E2BIG (deeper than cap).
 */
int registry_message_indexes(const struct registry *r, const char *message, int32_t *ret,
			     size_t cap, size_t *ret_n);

/* Requests made so far (retries included): for tests and metrics. */
unsigned long registry_requests(const struct registry *r);

/* Free the client; NULL is fine. */
void registry_free(struct registry *r);

#endif
