/* SPDX-License-Identifier: MIT */
/*
 * aws: the AWS client code ferry's stages and tools share (ingest calls SQS,
 * decrypt calls KMS, ferry-envelope publishes to SNS): credentials,
 * Signature Version 4, the JSON and query protocols over libcurl, and KMS
 * Decrypt.
 *
 * Credentials: aws_creds_provider_get() walks the whole chain of the AWS
 * SDKs (environment, web identity through STS, shared credentials file,
 * config file, ECS container endpoint, EC2 instance metadata IMDSv2) and
 * refreshes temporary credentials before they expire; a client made with
 * aws_client_new_provider() signs every request with fresh ones.
 * aws_creds_load() reads the static sources only (environment and files).
 *
 * A call is built (aws_json_request_new() or aws_query_request_new(): URL,
 * signed headers, body) apart from its transfer (aws_request_attach() on any
 * easy handle, then aws_request_finish()), so a stage driving a curl multi
 * handle reuses the building and the error mapping; aws_json_call() and
 * aws_query_call() do all three on the client's own blocking easy handle.
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

/* aws_creds_provider_get(): a refresh failed, the credentials returned are still valid. */
#define AWS_CREDS_STALE 1

struct aws_creds_provider;

/*
 * A credentials provider: the chain of the AWS SDKs (botocore), walked on
 * the first aws_creds_provider_get() and again whenever the credentials it
 * holds expire within 5 minutes:
 *   1. the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 *      AWS_SESSION_TOKEN) -- skipped when profile is given by name;
 *   2. web identity (EKS IRSA): AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *      [+ AWS_ROLE_SESSION_NAME] (not when profile is given by name), else
 *      the profile's web_identity_token_file + role_arn [+ role_session_name]
 *      in the config file; the token is traded for temporary credentials
 *      by an unsigned STS AssumeRoleWithWebIdentity at AWS_ENDPOINT_URL_STS,
 *      else AWS_ENDPOINT_URL, else https://sts.<region>.amazonaws.com (or
 *      https://sts.amazonaws.com when no region is known). The token file is
 *      read again at each refresh (the kubelet rotates it);
 *   3. the shared credentials file, [NAME]; 4. the config file,
 *      [profile NAME] (as aws_creds_load());
 *   5. ECS container credentials: GET http://169.254.170.2$AWS_CONTAINER_
 *      CREDENTIALS_RELATIVE_URI, or $AWS_CONTAINER_CREDENTIALS_FULL_URI
 *      (https, or http to loopback or the ECS/EKS agent addresses), with the
 *      contents of AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (else
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN) as the Authorization header;
 *   6. EC2 instance metadata, IMDSv2 (session token by PUT, then the role
 *      name, then its credentials) at AWS_EC2_METADATA_SERVICE_ENDPOINT, else
 *      http://169.254.169.254; skipped when AWS_EC2_METADATA_DISABLED=true.
 *      Timeouts of 1 s connect / 2 s total, so a host not on EC2 fails fast.
 * The first source that is configured decides: a web identity or container
 * source that is set up but fails is an error, not a fall-through (as in
 * the SDKs). profile as for aws_creds_load(); region (NULL: $AWS_REGION,
 * else $AWS_DEFAULT_REGION) picks the STS endpoint only. Returns NULL with
 * errno EINVAL or ENOMEM. Used by one thread at a time.
 */
struct aws_creds_provider *aws_creds_provider_new(const char *profile, const char *region);

/* Release a provider, wiping what it holds. NULL-safe. */
void aws_creds_provider_free(struct aws_creds_provider *p);

/*
 * Current credentials in *ret. BLOCKING when it has to (re)fetch: the first
 * call, and when the held credentials expire within 5 minutes (an STS call
 * or metadata requests, a few seconds at most; rare: temporary credentials
 * last an hour or more). Returns 0; AWS_CREDS_STALE when a refresh failed
 * but the held credentials are still valid (*ret gets them, err says why
 * and for how long; the next call tries again); or -errno when there are
 * no valid credentials: -ENOENT (no source has any; err lists what was
 * tried), -EKEYEXPIRED, -EACCES/-EIO (STS or a metadata endpoint failed),
 * -EINVAL, -EPROTO. *ret is wiped on error.
 */
int aws_creds_provider_get(struct aws_creds_provider *p, struct aws_creds *ret, char *err,
			   size_t errlen);

/* The source of the held credentials ("environment", "web identity", "shared files",
 * "ECS container", "instance metadata"), "" before the first success. */
const char *aws_creds_provider_source(const struct aws_creds_provider *p);

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
 * A client for one region with fixed credentials. endpoint: NULL for
 * https://<service>.<region>.amazonaws.com, else a base URL such as
 * "http://127.0.0.1:4566" used for every service. creds are copied (and
 * wiped by aws_client_free()). Returns NULL with errno EINVAL (bad
 * argument) or ENOMEM.
 */
struct aws_client *aws_client_new(const char *region, const char *endpoint,
				  const struct aws_creds *creds);

/*
 * A client that takes its credentials from prov before building each
 * request (so a long-running stage never signs with expired ones; the
 * build blocks while the provider refreshes, see aws_creds_provider_get()).
 * prov is not owned and must outlive the client. Errors as aws_client_new().
 */
struct aws_client *aws_client_new_provider(const char *region, const char *endpoint,
					   struct aws_creds_provider *prov);

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
 * -EINVAL or -ENOMEM with a message in err, or the provider's error (see
 * aws_creds_provider_get()) for a client made with one.
 */
int aws_json_request_new(struct aws_client *cl, const char *service, const char *target,
			 const char *json_body, struct aws_request **ret, char *err, size_t errlen);

/*
 * Build (not send) one query-protocol request (SNS, STS, IAM, ...): POST /
 * with Content-Type application/x-www-form-urlencoded; charset=utf-8 and
 * form_body ("Action=Publish&Version=2010-03-31&...", values already
 * encoded with aws_form_encode()), signed as aws_json_request_new() signs.
 * The endpoint is the client's, else https://<service>.<region>.amazonaws.com
 * (https://iam.amazonaws.com for "iam", signed for us-east-1). The answer is
 * XML: see aws_xml_text(). Returns as aws_json_request_new().
 */
int aws_query_request_new(struct aws_client *cl, const char *service, const char *form_body,
			  struct aws_request **ret, char *err, size_t errlen);

/*
 * s encoded for a form body as the SDKs encode it: every byte but A-Z a-z
 * 0-9 - _ . ~ becomes %XX, except ' ' which becomes '+'. Not for URL query
 * strings (SigV4 reads '+' there literally). Returns a malloc'd string, NULL
 * with errno ENOMEM.
 */
char *aws_form_encode(const char *s);

/*
 * The text of the first <tag>...</tag> of an XML document (no attributes on
 * the tag, no CDATA: what AWS's query APIs send), with &amp; &lt; &gt; &quot;
 * &apos; and ASCII &#N; / &#xN; decoded, into ret (cap bytes, NUL-terminated).
 * Returns its length; -ENOENT (no such element), -ENOSPC (too long for cap;
 * ret is ""), -EINVAL.
 */
int aws_xml_text(const char *xml, const char *tag, char *ret, size_t cap);

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

/* One blocking query-protocol call, as aws_json_call() (the body is XML). */
int aws_query_call(struct aws_client *cl, const char *service, const char *form_body,
		   char **ret_body, long *ret_http_status, char *err, size_t errlen);

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
