/* SPDX-License-Identifier: MIT */
/*
 * aws: the AWS client code ferry's stages share (ingest calls SQS, decrypt
 * calls KMS): credentials, Signature Version 4, the JSON protocol over
 * libcurl, and KMS Decrypt.
 *
 * Credentials come from the environment or the shared files, in the order
 * the AWS SDKs use (see aws_creds_load()). Web identity, ECS and IMDS are
 * not supported yet.
 *
 * A JSON call is built (aws_json_request_new(): URL, signed headers, body)
 * apart from its transfer (aws_request_attach() on any easy handle, then
 * aws_request_finish()), so a stage driving a curl multi handle reuses the
 * building and the error mapping; aws_json_call() does all three on the
 * client's own blocking easy handle.
 *
 * SECRETS: nothing here logs. Secret keys, session tokens and plaintexts
 * never reach an err message; error messages carry AWS's error type and
 * message, paths, profile names and lengths only. Buffers this module
 * allocates for secrets (files read, KMS responses, decoded plaintext) are
 * wiped with OPENSSL_cleanse() before they are freed. libcurl's and
 * OpenSSL's own receive buffers are outside its reach.
 *
 * Errors: 0 or -errno; a one-line reason in err (when err is not NULL).
 * Threads: a struct aws_client is used by one thread at a time.
 * libcurl: call curl_global_init() once at process start, before any thread
 * exists (libcurl does it lazily otherwise, which is not thread-safe).
 */
#ifndef FERRY_COMMON_AWS_H
#define FERRY_COMMON_AWS_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#define AWS_AMZ_DATE_LEN      16		 /* "YYYYMMDDTHHMMSSZ" */
#define AWS_AUTHORIZATION_MAX 512		 /* fits any Authorization value we make */
#define AWS_RESPONSE_MAX      (4u * 1024 * 1024) /* a larger response body is an error */
#define AWS_KMS_BLOB_MAX      6144		 /* KMS's largest ciphertext blob */
#define AWS_KMS_PLAIN_MAX     4096		 /* KMS's largest plaintext */

struct aws_creds {
	char access_key[128];
	char secret_key[128];
	char session_token[2048]; /* "" = none */
	uint64_t expires_ns;	  /* CLOCK_REALTIME ns, 0 = never */
};

/*
 * Find credentials, in the order of the AWS SDKs (botocore, the CLI):
 *   1. the environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and
 *      AWS_SESSION_TOKEN when set) -- skipped when profile is given
 *      explicitly, as the SDKs and `aws --profile` do;
 *   2. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
 *      ~/.aws/credentials), section [NAME];
 *   3. the config file (AWS_CONFIG_FILE, else ~/.aws/config), section
 *      [profile NAME] (or [default] for "default").
 * NAME is profile if not NULL/"", else AWS_PROFILE, else "default". Keys:
 * aws_access_key_id, aws_secret_access_key, aws_session_token (case does not
 * matter; '#' and ';' start comment lines; indented lines are sub-settings
 * and ignored). A missing file is skipped; an unreadable one is an error.
 * The first source holding an access key wins; it must hold the secret too.
 * expires_ns is 0 (these sources do not expire).
 *
 * Returns 0 and fills *ret; -ENOENT when no source has credentials, with a
 * message listing what was tried; -EINVAL for half-set credentials or a
 * value too long; -errno when a file cannot be read. *ret is wiped on error.
 */
int aws_creds_load(struct aws_creds *ret, const char *profile, char *err, size_t errlen);

/*
 * Sign one request with SigV4 (AWS4-HMAC-SHA256) and write the value of its
 * Authorization header to ret_authorization (len bytes, AWS_AUTHORIZATION_MAX
 * is enough), e.g.
 *   "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request,
 *    SignedHeaders=content-type;host;x-amz-date, Signature=<64 hex>".
 * Every header in headers ("Name: value", NULL-terminated array, may be NULL)
 * is signed, plus host (from host, unless headers has one), x-amz-date
 * (amz_date, unless headers has one) and x-amz-security-token (the session
 * token, when c has one and headers has none): the caller must send exactly
 * these, with these values. path is the absolute path as sent (already
 * URI-encoded; it is encoded once more, as every service but S3 wants);
 * query is the query string without '?' (NULL or "" = none); body may be
 * NULL when body_len is 0. amz_date is the request time in UTC.
 * Returns 0, -EINVAL (bad argument or header without ':'), -ENOMEM,
 * -ENOSPC (ret_authorization too small).
 */
int aws_sigv4_sign(const struct aws_creds *c, const char *region, const char *service,
		   const char *method, const char *host, const char *path, const char *query,
		   const char *const *headers, const void *body, size_t body_len,
		   const char *amz_date, char *ret_authorization, size_t len);

/* Format a CLOCK_REALTIME time (ns) as "YYYYMMDDTHHMMSSZ" (ret holds 17 bytes). */
void aws_amz_date(uint64_t realtime_ns, char ret[AWS_AMZ_DATE_LEN + 1]);

struct aws_client;

/*
 * A client for one region. endpoint: NULL for
 * https://<service>.<region>.amazonaws.com, else a base URL such as
 * "http://127.0.0.1:4566" used for every service. creds are copied (and
 * wiped by aws_client_free()). Returns NULL with errno EINVAL (bad
 * argument) or ENOMEM.
 */
struct aws_client *aws_client_new(const char *region, const char *endpoint,
				  const struct aws_creds *creds);

/* Release a client, wiping its copy of the credentials. NULL-safe. */
void aws_client_free(struct aws_client *cl);

/* One built request and, once transferred, its response. */
struct aws_request;

/*
 * Build (not send) one JSON-protocol request: POST / to the service's
 * endpoint with X-Amz-Target: target, Content-Type
 * application/x-amz-json-1.1 for "kms" (1.0 for "sqs", "application/json"
 * otherwise), signed now (the signature is valid for 15 minutes). json_body
 * NULL means "{}". Returns 0 and *ret (free with aws_request_free()),
 * -EINVAL or -ENOMEM with a message in err.
 */
int aws_json_request_new(struct aws_client *cl, const char *service, const char *target,
			 const char *json_body, struct aws_request **ret, char *err, size_t errlen);

/*
 * Point an easy handle at rq: URL, headers, body, and a write callback that
 * collects the response in rq (at most AWS_RESPONSE_MAX bytes). The handle
 * may then be performed directly or added to a multi handle; rq must live
 * until the transfer ends. Also sets sane timeouts (connect 10 s, total
 * 60 s), which the caller may override. Returns 0 or -EIO.
 */
int aws_request_attach(struct aws_request *rq, CURL *easy);

/*
 * Interpret a finished transfer: code is its CURLcode (curl_easy_perform()'s
 * return, or CURLMsg.data.result). On HTTP 2xx returns 0 and hands over the
 * response body (NUL-terminated, malloc'd; the caller frees it, wiping it
 * first when it may hold secrets) in *ret_body (ret_body may be NULL). On an
 * HTTP error, err gets "<service>: <ErrorType>: <message> (HTTP <status>)"
 * from the body (JSON __type and message/Message, or an XML <Code> and
 * <Message>) or the x-amzn-ErrorType header, and the return is -EACCES for
 * authentication and authorization errors, -EIO otherwise. A transfer error
 * is -EIO ("<service>: <curl's reason>"). ret_http_status (may be NULL)
 * gets the status, 0 when there was no response.
 */
int aws_request_finish(struct aws_request *rq, CURL *easy, CURLcode code, char **ret_body,
		       long *ret_http_status, char *err, size_t errlen);

/* Release a request and its response buffer (wiped). NULL-safe. */
void aws_request_free(struct aws_request *rq);

/*
 * One blocking JSON-protocol call: aws_json_request_new(), the transfer on
 * the client's easy handle (connections are reused between calls), then
 * aws_request_finish(); see those for arguments, *ret_body and errors.
 */
int aws_json_call(struct aws_client *cl, const char *service, const char *target,
		  const char *json_body, char **ret_body, long *ret_http_status, char *err,
		  size_t errlen);

/*
 * KMS Decrypt of blob (blob_len bytes, at most AWS_KMS_BLOB_MAX) under key_id
 * (NULL: the key the blob names). The plaintext goes to ret_plain (cap bytes)
 * and its length to *ret_len. Every temporary copy (request aside, which
 * holds only ciphertext: the response body, the parsed JSON string, the
 * decoded bytes) is wiped. Returns 0; -EMSGSIZE when the plaintext does not
 * fit cap (nothing written); -EPROTO when the response is not what KMS
 * sends; -EINVAL; or aws_json_call()'s errors (-EACCES, -EIO) with KMS's
 * error in err, e.g. "kms: InvalidCiphertextException (HTTP 400)".
 */
int aws_kms_decrypt(struct aws_client *cl, const void *blob, size_t blob_len, const char *key_id,
		    unsigned char *ret_plain, size_t cap, size_t *ret_len, char *err,
		    size_t errlen);

#endif
