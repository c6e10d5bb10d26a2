/* SPDX-License-Identifier: MIT */
/*
 * pubsub: a codec for the Google Cloud Pub/Sub REST API v1.
 *
 * Requests are built (URL, headers, JSON body) apart from their transfer,
 * as in common/aws.h: pubsub_*_new() builds one, pubsub_request_attach()
 * points any easy handle at it (a stage driving a curl multi handle adds
 * that handle to its multi), pubsub_request_finish() maps the outcome to
 * 0 / -errno with a one-line reason, and pubsub_pull_parse() reads a pull
 * response. pubsub_call() does all three on a blocking easy handle (tests,
 * tools). No request builder touches the network.
 *
 * base is the service's base URL without a trailing '/' (gcp_auth_base_url());
 * auth is a whole header line ("Authorization: Bearer ...") or NULL/"" for
 * none (gcp_auth_header()). Resource names are full names:
 * "projects/P/topics/T", "projects/P/subscriptions/S".
 *
 * SECRETS: the auth header is copied into the request and wiped by
 * pubsub_request_free(); nothing here logs. Message data is never put into
 * an err message.
 *
 * Errors: 0 (or a count) or -errno; a one-line reason in err (when not NULL).
 */
#ifndef FERRY_COMMON_PUBSUB_H
#define FERRY_COMMON_PUBSUB_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "common/msg.h"

#define PUBSUB_ACK_ID_MAX	1024	      /* a longer ack id is a broken message */
#define PUBSUB_REQUEST_MAX	(512u * 1024) /* the API's limit on ack/modack requests */
#define PUBSUB_ACK_BODY_LIMIT	(PUBSUB_REQUEST_MAX - 8192) /* headroom for URL and headers */
#define PUBSUB_PUBLISH_MAX	(10u * 1000 * 1000) /* the API's limit on a publish request */
#define PUBSUB_PUBLISH_MAX_MSGS 1000
#define PUBSUB_PULL_MAX_MSGS	1000
#define PUBSUB_DEADLINE_MAX	600
#define PUBSUB_RESPONSE_MAX	(64u * 1024 * 1024) /* a larger response body is an error */
#define PUBSUB_NAME_MAX		512

/* One built request and, once transferred, its response. */
struct pubsub_request;

/* pubsub_pull_new() flags */
#define PUBSUB_PULL_RETURN_IMMEDIATELY                                                             \
	0x1 /* deprecated by Google; the emulator needs it to                                      \
	     * answer an empty subscription at once */

/*
 * POST {base}/v1/{subscription}:pull {"maxMessages":N}. max_messages is
 * 1..PUBSUB_PULL_MAX_MSGS. Without PUBSUB_PULL_RETURN_IMMEDIATELY the
 * server holds the request until a message comes (Google: for a bounded
 * time; the emulator: indefinitely), so the transfer timeout
 * pubsub_request_attach() sets (60 s) may end an idle pull with -EIO
 * "timed out": the caller may treat that as an empty pull or set its own.
 * Returns 0 and *ret; -EINVAL (bad name or count, unknown flag), -ENOMEM.
 */
int pubsub_pull_new(const char *base, const char *auth, const char *subscription,
		    unsigned max_messages, unsigned flags, struct pubsub_request **ret, char *err,
		    size_t errlen);

/*
 * POST {subscription}:acknowledge {"ackIds":[...]}: takes ack ids from ids
 * (n of them, in order) while the body stays within limit bytes (0 means
 * PUBSUB_ACK_BODY_LIMIT; the API refuses requests over 512 KB). Returns how
 * many ids it took (>= 1; the caller loops over the rest) and *ret;
 * -EINVAL (n == 0, empty name, an empty id or one longer than
 * PUBSUB_ACK_ID_MAX), -EMSGSIZE (limit is too small for even the first id),
 * -ENOMEM.
 */
int pubsub_ack_new(const char *base, const char *auth, const char *subscription,
		   const struct msg_bytes *ids, size_t n, size_t limit, struct pubsub_request **ret,
		   char *err, size_t errlen);

/*
 * POST {subscription}:modifyAckDeadline {"ackIds":[...],"ackDeadlineSeconds":N}:
 * as pubsub_ack_new(). deadline_s 0..PUBSUB_DEADLINE_MAX; 0 hands the
 * messages back for redelivery at once.
 */
int pubsub_modack_new(const char *base, const char *auth, const char *subscription,
		      unsigned deadline_s, const struct msg_bytes *ids, size_t n, size_t limit,
		      struct pubsub_request **ret, char *err, size_t errlen);

/* PUT {base}/v1/{topic} "{}": create a topic (HTTP 409, -EEXIST, when it exists). */
int pubsub_topic_create_new(const char *base, const char *auth, const char *topic,
			    struct pubsub_request **ret, char *err, size_t errlen);

/*
 * PUT {base}/v1/{subscription} {"topic":topic,"ackDeadlineSeconds":N,
 * "enableMessageOrdering":bool}: create a pull subscription. ack_deadline_s
 * 10..600 (0: the server's default).
 */
int pubsub_subscription_create_new(const char *base, const char *auth, const char *subscription,
				   const char *topic, unsigned ack_deadline_s, int ordering,
				   struct pubsub_request **ret, char *err, size_t errlen);

/* One message to publish. */
struct pubsub_out_msg {
	struct msg_bytes data;	       /* any bytes; sent base64 */
	struct msg_bytes attrs;	       /* msg_kv list (common/msg.h); keys and values UTF-8 */
	struct msg_bytes ordering_key; /* len 0: none */
};

/*
 * POST {base}/v1/{topic}:publish {"messages":[{"data","attributes","orderingKey"}]}
 * with all n messages (1..PUBSUB_PUBLISH_MAX_MSGS, the body within
 * PUBSUB_PUBLISH_MAX). Returns 0 and *ret; -EMSGSIZE, -EINVAL (bad name,
 * malformed attrs), -ENOMEM. The response is {"messageIds":[...]}.
 */
int pubsub_publish_new(const char *base, const char *auth, const char *topic,
		       const struct pubsub_out_msg *msgs, size_t n, struct pubsub_request **ret,
		       char *err, size_t errlen);

/* The built request, for tests and logs: method ("POST", "PUT"), URL, body. */
const char *pubsub_request_method(const struct pubsub_request *rq);
const char *pubsub_request_url(const struct pubsub_request *rq);
const char *pubsub_request_body(const struct pubsub_request *rq, size_t *ret_len);

/*
 * Point an easy handle at rq: method, URL, headers (Content-Type, the auth
 * line, no Expect), body, HTTP/2 over TLS where offered
 * (CURL_HTTP_VERSION_2TLS; plain http, such as the emulator, stays 1.1),
 * compressed responses accepted (Accept-Encoding: what libcurl decodes), a
 * write callback collecting the response in rq (at most
 * PUBSUB_RESPONSE_MAX bytes), CURLOPT_PRIVATE = rq, timeouts (connect 10 s,
 * total 60 s; the caller may override). rq must live until the transfer
 * ends; it may be attached again (a retry) after it finished. Returns 0,
 * -EINVAL, -EIO.
 */
int pubsub_request_attach(struct pubsub_request *rq, CURL *easy);

/*
 * Interpret a finished transfer (code: curl_easy_perform()'s return or
 * CURLMsg.data.result). HTTP 2xx: returns 0 and hands over the body
 * (NUL-terminated, malloc'd, the caller frees it) in *ret_body (may be
 * NULL) and its length in *ret_len (may be NULL). Otherwise err gets
 * "pubsub: <error.message of the JSON error> (HTTP <status>)" and returns
 *   -EACCES   401, 403 (credentials, permissions)
 *   -ENOENT   404 (no such subscription or topic)
 *   -EEXIST   409 (already exists)
 *   -EINVAL   400 and other 4xx (a request the API refuses)
 *   -EIO      408, 429, 5xx, and transfer errors ("pubsub: <curl's reason>")
 *   -EMSGSIZE a response larger than PUBSUB_RESPONSE_MAX
 *   -ENOMEM
 * ret_http_status (may be NULL) gets the status, 0 without a response.
 */
int pubsub_request_finish(struct pubsub_request *rq, CURL *easy, CURLcode code, char **ret_body,
			  size_t *ret_len, long *ret_http_status, char *err, size_t errlen);

/* attach, curl_easy_perform() and finish on a blocking easy handle. */
int pubsub_call(struct pubsub_request *rq, CURL *easy, char **ret_body, size_t *ret_len,
		long *ret_http_status, char *err, size_t errlen);

/* Release a request (the auth header wiped) and its response buffer. NULL-safe. */
void pubsub_request_free(struct pubsub_request *rq);

/*
 * One received message. Views into memory the struct pubsub_pull owns; the
 * string views (ack_id, message_id, ordering_key, publish_time) are followed
 * by a NUL byte, so .p may be used as a C string.
 */
struct pubsub_message {
	struct msg_bytes ack_id; /* len 0 when the response had none */
	struct msg_bytes message_id;
	struct msg_bytes data;	       /* base64-decoded */
	struct msg_bytes attrs;	       /* msg_kv list */
	struct msg_bytes ordering_key; /* len 0: none */
	struct msg_bytes publish_time; /* as given, RFC 3339 ("2026-11-26T23:26:55.659Z") */
	uint64_t publish_ns;	       /* publish_time in ns since the epoch, 0 when unreadable */
	uint32_t delivery_attempt;     /* 0 unless the subscription has a dead-letter policy */
	/*
	 * NULL, or why this message cannot be used ("data is not valid base64",
	 * "ackId missing", ...): the other fields hold what could be read (data
	 * and attrs may be empty). With an empty ack_id it cannot be acked.
	 */
	const char *error;
};

struct pubsub_pull {
	size_t count;
	struct pubsub_message *msgs;
	void *mem; /* owns everything the views point into */
	size_t mem_len;
};

/*
 * Parse a pull response body (len bytes). A missing receivedMessages is an
 * empty pull (count 0). One broken message never fails the batch: it gets
 * its error. Returns 0 and *ret (free with pubsub_pull_free()); -EPROTO
 * when the body is not a JSON object or receivedMessages is not an array;
 * -ENOMEM.
 */
int pubsub_pull_parse(const char *body, size_t len, struct pubsub_pull **ret, char *err,
		      size_t errlen);

/* Release a parsed pull (the decoded data wiped). NULL-safe. */
void pubsub_pull_free(struct pubsub_pull *p);

/*
 * RFC 3339 time ("2026-11-26T23:26:55.659123Z", "...+02:00") to ns since the
 * epoch. Returns 0 or -EINVAL.
 */
int pubsub_time_parse(const char *s, size_t len, uint64_t *ret_ns);

/*
 * Strict base64 decoding (standard or URL-safe alphabet, padding optional,
 * no blanks) of in into out (at least len / 4 * 3 + 3 bytes). Returns the
 * decoded length or -EINVAL.
 */
int64_t pubsub_base64_decode(const char *in, size_t len, unsigned char *out);

#endif
