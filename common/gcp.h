/* SPDX-License-Identifier: MIT */
/*
 * gcp: Google Cloud authentication for ferry's Pub/Sub client.
 *
 * Credentials are found in the order Google's client libraries use:
 *   1. the emulator: PUBSUB_EMULATOR_HOST=host:port -> base URL
 *      http://host:port and no Authorization header at all;
 *   2. a service-account key file: the path given to gcp_auth_new(), else
 *      GOOGLE_APPLICATION_CREDENTIALS. JSON with "type": "service_account",
 *      client_email, private_key (PEM, RSA) and private_key_id. The bearer
 *      token is a self-signed JWT (RS256, aud https://pubsub.googleapis.com/,
 *      one hour), Google's "self-signed JWT" for service accounts: no OAuth
 *      exchange, no network call. Re-signed when less than 5 minutes remain.
 *   3. the GCE/GKE metadata server (GCE_METADATA_HOST overrides its host
 *      metadata.google.internal): an OAuth access token for the instance's
 *      default service account, fetched again 5 minutes before it expires.
 *      THIS FETCH IS A BLOCKING curl call on the auth's own easy handle
 *      (connect timeout 3 s, total 10 s), made from gcp_auth_header() about
 *      once an hour; a failed refresh keeps using the token in hand while it
 *      is valid and is retried at most every 10 s.
 * "authorized_user" (gcloud's application-default login) and external
 * account files are refused with a message saying so.
 *
 * SECRETS: nothing here logs. Tokens and keys never reach an err message.
 * The private key lives only as an EVP_PKEY; the file buffer and the parsed
 * JSON's copy of the PEM are wiped; tokens are wiped when replaced and by
 * gcp_auth_free().
 *
 * Errors: 0 or -errno; a one-line reason in err (when err is not NULL).
 * Threads: a struct gcp_auth is used by one thread at a time.
 * libcurl: call curl_global_init() once at process start.
 */
#ifndef FERRY_COMMON_GCP_H
#define FERRY_COMMON_GCP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define GCP_PUBSUB_URL	    "https://pubsub.googleapis.com"
#define GCP_PUBSUB_AUD	    "https://pubsub.googleapis.com/"
#define GCP_TOKEN_MAX	    4096 /* longest bearer token accepted */
#define GCP_AUTH_HEADER_MAX (GCP_TOKEN_MAX + 32)
#define GCP_REFRESH_MARGIN  300 /* seconds before expiry a token is renewed */
#define GCP_KEY_FILE_MAX    (64 * 1024)

enum gcp_auth_kind {
	GCP_AUTH_EMULATOR = 1,
	GCP_AUTH_SERVICE_ACCOUNT,
	GCP_AUTH_METADATA,
};

struct gcp_auth;

/*
 * Choose the credentials (see above). key_file: the configured key file, or
 * NULL/"" for GOOGLE_APPLICATION_CREDENTIALS, else the metadata server. A
 * key file is read and checked here (no network); the metadata server is
 * first asked by gcp_auth_header().
 * Returns 0 and *ret (free with gcp_auth_free()); -EINVAL for a bad
 * PUBSUB_EMULATOR_HOST or a key file that is not a usable service-account
 * key ("not JSON", "no private_key", "private_key is not a PEM RSA key",
 * "type 'authorized_user' is not supported"...), naming the file; -errno
 * when the file cannot be read; -ENOMEM.
 */
int gcp_auth_new(const char *key_file, struct gcp_auth **ret, char *err, size_t errlen);

/*
 * Use base_url (e.g. "https://europe-west1-pubsub.googleapis.com" or
 * "http://127.0.0.1:8085", no trailing '/') instead of the default. The JWT
 * audience stays GCP_PUBSUB_AUD. Returns 0, -EINVAL (not http(s)://, too
 * long), -ENOMEM.
 */
int gcp_auth_set_endpoint(struct gcp_auth *a, const char *base_url);

/* "https://pubsub.googleapis.com", the emulator's or the set endpoint; no trailing '/'. */
const char *gcp_auth_base_url(const struct gcp_auth *a);

enum gcp_auth_kind gcp_auth_kind(const struct gcp_auth *a);

/*
 * What is used, for a log line, no secret: "emulator at 127.0.0.1:8085",
 * "service account x@p.iam.gserviceaccount.com (key 1a2b..., file /path)",
 * "metadata server metadata.google.internal".
 */
const char *gcp_auth_describe(const struct gcp_auth *a);

/*
 * Write the header line to send into buf (len bytes; GCP_AUTH_HEADER_MAX
 * is enough): "Authorization: Bearer <token>", or "" for the emulator.
 * Signs or fetches a token when there is none or it has less than
 * GCP_REFRESH_MARGIN seconds left. Returns 0; -ENOSPC (buf too small);
 * for the metadata server -EIO (unreachable, HTTP error, retry wait),
 * -EACCES (HTTP 401/403), -EPROTO (a response without access_token);
 * -ENOMEM. buf holds "" on error. Wipe buf after use.
 */
int gcp_auth_header(struct gcp_auth *a, char *buf, size_t len, char *err, size_t errlen);

/* gcp_auth_header() as if the wall clock said now (seconds since the epoch); for tests. */
int gcp_auth_header_at(struct gcp_auth *a, time_t now, char *buf, size_t len, char *err,
		       size_t errlen);

/* When the token in hand expires (seconds since the epoch); 0 when none (or emulator). */
time_t gcp_auth_expiry(const struct gcp_auth *a);

/* Release, wiping the token and the key. NULL-safe. */
void gcp_auth_free(struct gcp_auth *a);

/*
 * base64url without padding (RFC 7515) of in into out (cap bytes, NUL
 * added). Returns the length written or -ENOSPC.
 */
int gcp_base64url(const void *in, size_t n, char *out, size_t cap);

#endif
