/* SPDX-License-Identifier: MIT */
/*
 * sqs: the Amazon SQS JSON-protocol codec ingest needs, with SNS envelope
 * unwrapping. Pure functions: request bodies are built here, sent by the
 * caller (aws_json_request_new(cl, "sqs", "AmazonSQS.<Action>", body, ...)
 * from common/aws.h), and the response bodies come back here to be parsed.
 * No network, no globals.
 *
 * Actions covered:
 *   ReceiveMessage               sqs_receive_request(), sqs_receive_parse()
 *   DeleteMessageBatch           sqs_delete_batch_request(), sqs_batch_parse()
 *   ChangeMessageVisibilityBatch sqs_visibility_batch_request(), sqs_batch_parse()
 *   GetQueueAttributes           sqs_queue_attrs_request(), sqs_queue_attrs_parse()
 *
 * A received message becomes a ferry source message: id = SQS MessageId,
 * body = the SNS Message when the SQS body is an SNS envelope (else the SQS
 * body as is), attributes = a msg_kv list (common/msg.h) of the message
 * attributes plus the SQS_ATTR_* / SNS_ATTR_* names below.
 *
 * Errors: 0 (or a count) / -errno, with a one-line reason in err when err is
 * not NULL. A broken message never fails a whole ReceiveMessage batch: it
 * gets its own sqs_message.error and the others parse as usual.
 */
#ifndef FERRY_COMMON_SQS_H
#define FERRY_COMMON_SQS_H

#include <stddef.h>
#include <stdint.h>

#include "common/msg.h"

#define SQS_BATCH_MAX	   10	 /* messages per receive, entries per batch call */
#define SQS_RECEIPT_MAX	   1024	 /* a longer receipt handle is a broken message */
#define SQS_WAIT_MAX	   20	 /* long-poll seconds */
#define SQS_VISIBILITY_MAX 43200 /* seconds (12 hours) */
#define SQS_REGION_MAX	   32	 /* bytes of a region name, NUL included */

/*
 * Attribute names this codec adds to a message's list. They come first in
 * the list, so msg_kv_find() finds them even when a producer sent an
 * attribute of the same name.
 */
#define SQS_ATTR_GROUP_ID  "sqs.MessageGroupId" /* FIFO queues */
#define SNS_ATTR_TOPIC_ARN "sns.TopicArn"	/* SNS envelopes only */
#define SNS_ATTR_MSG_ID	   "sns.MessageId"
#define SNS_ATTR_SUBJECT   "sns.Subject" /* when the publisher gave one */

/* ---- request bodies ---- */

/*
 * ReceiveMessage body for queue_url: up to max_messages (1..SQS_BATCH_MAX),
 * long poll wait_s seconds (0..SQS_WAIT_MAX), visibility_s
 * (0..SQS_VISIBILITY_MAX; 0 = omitted, the queue's default applies). Asks
 * for all message attributes and all system attributes, under both
 * AttributeNames (older servers) and MessageSystemAttributeNames (newer).
 * *ret gets a malloc'd NUL-terminated JSON text (free() it). Returns the
 * length of *ret, -EINVAL (argument out of range) or -ENOMEM.
 */
int sqs_receive_request(const char *queue_url, unsigned max_messages, unsigned wait_s,
			unsigned visibility_s, char **ret, char *err, size_t errlen);

/* One entry of a batch call. The receipt need not be NUL-terminated. */
struct sqs_batch_entry {
	const char *receipt;
	uint32_t receipt_len;  /* 1..SQS_RECEIPT_MAX */
	uint32_t visibility_s; /* ChangeMessageVisibilityBatch: 0..SQS_VISIBILITY_MAX */
};

/*
 * DeleteMessageBatch / ChangeMessageVisibilityBatch body for n
 * (1..SQS_BATCH_MAX) entries. Entry i is sent with Id "i", so the results
 * (sqs_batch_parse()) map back by index. Returns the length of *ret
 * (malloc'd, NUL-terminated), -EINVAL or -ENOMEM.
 */
int sqs_delete_batch_request(const char *queue_url, const struct sqs_batch_entry *e, unsigned n,
			     char **ret, char *err, size_t errlen);
int sqs_visibility_batch_request(const char *queue_url, const struct sqs_batch_entry *e, unsigned n,
				 char **ret, char *err, size_t errlen);

/*
 * GetQueueAttributes body asking for VisibilityTimeout and FifoQueue.
 * Returns the length of *ret (malloc'd), -EINVAL or -ENOMEM.
 */
int sqs_queue_attrs_request(const char *queue_url, char **ret, char *err, size_t errlen);

/* ---- responses ---- */

/*
 * One received message. Views point into memory the struct sqs_receive owns
 * (valid until sqs_receive_free()); strings are not NUL-terminated for the
 * caller's purposes (use .len).
 */
struct sqs_message {
	struct msg_bytes message_id;	  /* SQS MessageId */
	struct msg_bytes receipt_handle;  /* may be longer than SQS_RECEIPT_MAX when error says so;
					   * len 0 when the response had none (cannot be deleted) */
	struct msg_bytes body;		  /* SNS Message when sns, else raw_body (also on error) */
	struct msg_bytes raw_body;	  /* the Body as SQS delivered it */
	struct msg_bytes group_id;	  /* MessageGroupId (FIFO), len 0 when none */
	struct msg_bytes sequence_number; /* SequenceNumber (FIFO), len 0 when none */
	struct msg_bytes attrs;		  /* msg_kv list; empty on error */
	uint32_t receive_count;		  /* ApproximateReceiveCount, 0 when absent */
	uint64_t sent_timestamp_ms;	  /* SentTimestamp (Unix ms), 0 when absent */
	int sns;			  /* 1: body was unwrapped from an SNS envelope */
	const char *error;		  /* NULL, or why this message is broken (static text) */
};

/* A parsed ReceiveMessage response; the fields ending in _ are private. */
struct sqs_receive {
	unsigned n; /* messages in msgs, 0..SQS_BATCH_MAX */
	struct sqs_message msgs[SQS_BATCH_MAX];
	void *json_;		   /* the response's parse tree */
	void *env_[SQS_BATCH_MAX]; /* each SNS envelope's parse tree */
	unsigned char *attrs_;	   /* every message's attribute list */
};

/*
 * Parse a ReceiveMessage response body (len bytes, NUL termination not
 * required). "{}" and {"Messages":[]} give n = 0. Each message is checked on
 * its own: one that lacks MessageId, ReceiptHandle or Body, has a receipt
 * handle over SQS_RECEIPT_MAX, malformed attributes, or a body that looks
 * like an SNS envelope ("Type" and "TopicArn" members) but is not a valid
 * Notification gets msgs[i].error set, with whatever fields could be read
 * (body = raw_body, attrs empty); the others are unaffected. A body that is
 * not JSON, or JSON without those two members, is a raw message.
 *
 * Returns the message count, or -EPROTO when the response as a whole is not
 * a ReceiveMessage answer (not JSON, not an object, Messages not an array or
 * with more than SQS_BATCH_MAX entries, or an object with members but no
 * Messages), -EINVAL, -ENOMEM. *ret is always initialised (free it with
 * sqs_receive_free(), also after an error).
 */
int sqs_receive_parse(const char *json, size_t len, struct sqs_receive *ret, char *err,
		      size_t errlen);

/* Release what a parse holds and zero *r. NULL-safe; safe twice. */
void sqs_receive_free(struct sqs_receive *r);

enum sqs_entry_state {
	SQS_ENTRY_MISSING = 0, /* the response named it neither Successful nor Failed */
	SQS_ENTRY_OK,
	SQS_ENTRY_FAILED,
};

struct sqs_batch_entry_result {
	int state;	   /* enum sqs_entry_state */
	int sender_fault;  /* FAILED: 1 = the request's fault (e.g. ReceiptHandleIsInvalid): do
			    * not retry; 0 = SQS's fault: retry */
	char code[64];	   /* FAILED: Code, e.g. "ReceiptHandleIsInvalid" (cut to fit) */
	char message[192]; /* FAILED: Message, "" when none (cut to fit) */
};

/* The outcome of a DeleteMessageBatch / ChangeMessageVisibilityBatch; owns no memory. */
struct sqs_batch_result {
	unsigned n;					/* entries sent */
	unsigned ok, failed, missing;			/* counts by state */
	struct sqs_batch_entry_result e[SQS_BATCH_MAX]; /* by entry index */
};

/*
 * Parse a batch response for a request of n entries made by
 * sqs_*_batch_request() (Ids "0".."n-1"): {"Successful":[{"Id":..}],
 * "Failed":[{"Id","SenderFault","Code","Message"}]}. Returns 0 with every
 * entry's state in *ret, or -EPROTO when the body is not such an answer (not
 * JSON, an Id outside 0..n-1 or named twice, a Failed entry without Code),
 * -EINVAL.
 */
int sqs_batch_parse(const char *json, size_t len, unsigned n, struct sqs_batch_result *ret,
		    char *err, size_t errlen);

struct sqs_queue_attrs {
	uint32_t visibility_s; /* VisibilityTimeout */
	int fifo;	       /* FifoQueue "true" (standard queues omit it) */
};

/*
 * Parse a GetQueueAttributes response ({"Attributes":{"VisibilityTimeout":
 * "30","FifoQueue":"true"}}). Returns 0, or -EPROTO (not JSON, no
 * Attributes object, VisibilityTimeout missing or not a number in
 * 0..SQS_VISIBILITY_MAX, FifoQueue neither "true" nor "false"), -EINVAL.
 */
int sqs_queue_attrs_parse(const char *json, size_t len, struct sqs_queue_attrs *ret, char *err,
			  size_t errlen);

/*
 * The AWS region a queue URL names, into region (len bytes, SQS_REGION_MAX
 * is enough). Hosts understood (scheme http or https, any port and path):
 *   sqs.REGION.amazonaws.com, sqs.REGION.amazonaws.com.cn,
 *   sqs-fips.REGION.amazonaws.com, sqs.REGION.api.aws,
 *   REGION.queue.amazonaws.com (legacy), queue.amazonaws.com (us-east-1).
 * Returns 0, -EINVAL for any other host (an emulator, a VPC endpoint: the
 * region must then be configured) or a region with characters other than
 * [a-z0-9-], -ENOSPC when region is too small.
 */
int sqs_region_from_url(const char *queue_url, char *region, size_t len);

#endif
