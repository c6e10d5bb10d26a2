/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of common/gcp: the self-signed JWT of a service-account key
 * (verified with the public key), its refresh, bad key files, the emulator,
 * and the metadata server (a loopback HTTP server thread in this test).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "common/gcp.h"

#define EMAIL "ferry@ferry-test.iam.gserviceaccount.com"
#define KID   "0123456789abcdef0123456789abcdef01234567"

static char dir[64];
static EVP_PKEY *key; /* made once: RSA key generation is slow */

static void unset_env(void)
{
	unsetenv("PUBSUB_EMULATOR_HOST");
	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	unsetenv("GCE_METADATA_HOST");
}

static int setup(void **state)
{
	(void)state;
	alarm(60); /* a hang fails the test instead of blocking it */
	unset_env();
	snprintf(dir, sizeof(dir), "/tmp/test-gcp.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	unset_env();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *key_pem(void)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	assert_non_null(b);
	assert_int_equal(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(b, &p);
	out = strndup(p, (size_t)n);
	BIO_free(b);
	assert_non_null(out);
	return out;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* A service-account key file; NULL fields are left out. */
static void write_key_file(const char *path, const char *type, const char *email, const char *kid,
			   const char *pem)
{
	cJSON *o = cJSON_CreateObject();
	char *s;

	if (type)
		cJSON_AddStringToObject(o, "type", type);
	cJSON_AddStringToObject(o, "project_id", "ferry-test");
	if (kid)
		cJSON_AddStringToObject(o, "private_key_id", kid);
	if (pem)
		cJSON_AddStringToObject(o, "private_key", pem);
	if (email)
		cJSON_AddStringToObject(o, "client_email", email);
	cJSON_AddStringToObject(o, "token_uri", "https://oauth2.googleapis.com/token");
	s = cJSON_Print(o);
	write_file(path, s);
	free(s);
	cJSON_Delete(o);
}

static size_t b64url_decode(const char *in, size_t n, unsigned char *out)
{
	uint32_t acc = 0;
	size_t j = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		const char *tab =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		const char *c = strchr(tab, in[i]);

		assert_non_null(c);
		assert_int_not_equal(in[i], 0);
		acc = (acc << 6) | (uint32_t)(c - tab);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[j++] = (unsigned char)(acc >> bits);
		}
	}
	return j;
}

static cJSON *b64_json_part(const char *in, size_t n)
{
	unsigned char buf[2048];
	size_t len;
	cJSON *j;

	assert_true(n < sizeof(buf));
	len = b64url_decode(in, n, buf);
	j = cJSON_ParseWithLength((const char *)buf, len);
	assert_non_null(j);
	return j;
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	assert_true(cJSON_IsString(v));
	return v->valuestring;
}

/* Check one "Authorization: Bearer <jwt>" line: signature, header, claims, iat. */
static void check_jwt(const char *line, time_t iat)
{
	const char *tok, *dot1, *dot2;
	unsigned char sig[1024];
	size_t sig_len;
	EVP_MD_CTX *md;
	cJSON *h, *c;

	assert_int_equal(strncmp(line, "Authorization: Bearer ", 22), 0);
	tok = line + 22;
	dot1 = strchr(tok, '.');
	assert_non_null(dot1);
	dot2 = strchr(dot1 + 1, '.');
	assert_non_null(dot2);
	assert_null(strchr(dot2 + 1, '.'));
	assert_null(strchr(tok, '=')); /* no padding */

	sig_len = b64url_decode(dot2 + 1, strlen(dot2 + 1), sig);
	assert_int_equal(sig_len, 256); /* RSA 2048 */
	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
	assert_int_equal(EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)tok,
					  (size_t)(dot2 - tok)),
			 1);
	/* One flipped bit of the signed text must fail. */
	{
		char *bad = strndup(tok, (size_t)(dot2 - tok));

		bad[dot1 - tok + 3] ^= 1;
		assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
		assert_int_not_equal(
			EVP_DigestVerify(md, sig, sig_len, (unsigned char *)bad, strlen(bad)), 1);
		free(bad);
	}
	EVP_MD_CTX_free(md);

	h = b64_json_part(tok, (size_t)(dot1 - tok));
	assert_string_equal(str(h, "alg"), "RS256");
	assert_string_equal(str(h, "typ"), "JWT");
	assert_string_equal(str(h, "kid"), KID);
	cJSON_Delete(h);
	c = b64_json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	assert_string_equal(str(c, "iss"), EMAIL);
	assert_string_equal(str(c, "sub"), EMAIL);
	assert_string_equal(str(c, "aud"), "https://pubsub.googleapis.com/");
	assert_true(num(c, "iat") == (double)iat);
	assert_true(num(c, "exp") == (double)(iat + 3600));
	cJSON_Delete(c);
}

static void test_jwt(void **state)
{
	char path[128], hdr[GCP_AUTH_HEADER_MAX], first[GCP_AUTH_HEADER_MAX], err[256];
	struct gcp_auth *a;
	time_t now = time(NULL);
	char *pem = key_pem();

	(void)state;
	snprintf(path, sizeof(path), "%s/sa.json", dir);
	write_key_file(path, "service_account", EMAIL, KID, pem);
	free(pem);

	/* From GOOGLE_APPLICATION_CREDENTIALS. */
	setenv("GOOGLE_APPLICATION_CREDENTIALS", path, 1);
	assert_int_equal(gcp_auth_new(NULL, &a, err, sizeof(err)), 0);
	assert_int_equal(gcp_auth_kind(a), GCP_AUTH_SERVICE_ACCOUNT);
	assert_string_equal(gcp_auth_base_url(a), "https://pubsub.googleapis.com");
	assert_non_null(strstr(gcp_auth_describe(a), EMAIL));
	assert_null(strstr(gcp_auth_describe(a), "PRIVATE"));
	assert_int_equal(gcp_auth_expiry(a), 0);

	assert_int_equal(gcp_auth_header_at(a, now, hdr, sizeof(hdr), err, sizeof(err)), 0);
	check_jwt(hdr, now);
	assert_int_equal(gcp_auth_expiry(a), now + 3600);
	snprintf(first, sizeof(first), "%s", hdr);

	/* Reused while more than 5 minutes remain... */
	assert_int_equal(gcp_auth_header_at(a, now + 3299, hdr, sizeof(hdr), err, sizeof(err)), 0);
	assert_string_equal(hdr, first);
	/* ...re-signed when less remain, */
	assert_int_equal(gcp_auth_header_at(a, now + 3300, hdr, sizeof(hdr), err, sizeof(err)), 0);
	assert_string_not_equal(hdr, first);
	check_jwt(hdr, now + 3300);
	assert_int_equal(gcp_auth_expiry(a), now + 3300 + 3600);
	/* and when the clock steps back by more than a minute. */
	assert_int_equal(gcp_auth_header_at(a, now + 3000, hdr, sizeof(hdr), err, sizeof(err)), 0);
	check_jwt(hdr, now + 3000);
	/* The real clock (gcp_auth_header): a token of now, give or take a second. */
	assert_int_equal(gcp_auth_header(a, hdr, sizeof(hdr), err, sizeof(err)), 0);
	assert_true(gcp_auth_expiry(a) >= now + 3600 && gcp_auth_expiry(a) <= time(NULL) + 3600);

	/* A buffer too small is refused, not truncated. */
	assert_int_equal(gcp_auth_header_at(a, now, hdr, 64, err, sizeof(err)), -ENOSPC);
	assert_string_equal(hdr, "");
	gcp_auth_free(a);

	/* The configured path wins over the environment. */
	setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json", 1);
	assert_int_equal(gcp_auth_new(path, &a, err, sizeof(err)), 0);
	assert_int_equal(gcp_auth_set_endpoint(a, "https://europe-west1-pubsub.googleapis.com/"),
			 0);
	assert_string_equal(gcp_auth_base_url(a), "https://europe-west1-pubsub.googleapis.com");
	assert_int_equal(gcp_auth_set_endpoint(a, "ftp://x"), -EINVAL);
	assert_int_equal(gcp_auth_header_at(a, now, hdr, sizeof(hdr), err, sizeof(err)), 0);
	check_jwt(hdr, now); /* the audience stays Pub/Sub's */
	gcp_auth_free(a);

	/* A missing file named by the environment is an error, not a fallback. */
	assert_int_equal(gcp_auth_new(NULL, &a, err, sizeof(err)), -ENOENT);
	assert_null(a);
	assert_non_null(strstr(err, "/nonexistent/key.json"));
	gcp_auth_free(NULL);
}

static void expect_bad(const char *name, const char *text, int want, const char *msg)
{
	char path[128], err[256] = "";
	struct gcp_auth *a = (void *)1;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (text)
		write_file(path, text);
	assert_int_equal(gcp_auth_new(path, &a, err, sizeof(err)), want);
	assert_null(a);
	if (!strstr(err, msg) || !strstr(err, path))
		fail_msg("%s: got \"%s\", want \"%s\" and the path", name, err, msg);
	assert_null(strstr(err, "PRIVATE KEY")); /* never any key material */
}

static void test_bad_key_files(void **state)
{
	char path[128], *pem = key_pem();
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	BIO *b;
	char *p, *ec_pem;
	long n;

	(void)state;
	expect_bad("missing.json", NULL, -ENOENT, "No such file");
	expect_bad("notjson.json", "this is not json {", -EINVAL, "not JSON");
	expect_bad("array.json", "[1,2]", -EINVAL, "not JSON");
	expect_bad("notype.json", "{\"client_email\":\"x@y\"}", -EINVAL, "no \"type\"");
	expect_bad("user.json",
		   "{\"type\":\"authorized_user\",\"client_id\":\"x\",\"refresh_token\":\"y\"}",
		   -EINVAL, "type 'authorized_user' is not supported");

	snprintf(path, sizeof(path), "%s/nokey.json", dir);
	write_key_file(path, "service_account", EMAIL, KID, NULL);
	expect_bad("nokey.json", NULL, -EINVAL, "no private_key");
	snprintf(path, sizeof(path), "%s/noemail.json", dir);
	write_key_file(path, "service_account", NULL, KID, pem);
	expect_bad("noemail.json", NULL, -EINVAL, "no usable client_email");
	snprintf(path, sizeof(path), "%s/nokid.json", dir);
	write_key_file(path, "service_account", EMAIL, NULL, pem);
	expect_bad("nokid.json", NULL, -EINVAL, "no usable private_key_id");
	snprintf(path, sizeof(path), "%s/notpem.json", dir);
	write_key_file(path, "service_account", EMAIL, KID, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC");
	expect_bad("notpem.json", NULL, -EINVAL, "private_key is not a PEM RSA private key");
	/* A truncated PEM. */
	pem[strlen(pem) / 2] = 0;
	snprintf(path, sizeof(path), "%s/halfpem.json", dir);
	write_key_file(path, "service_account", EMAIL, KID, pem);
	expect_bad("halfpem.json", NULL, -EINVAL, "private_key is not a PEM RSA private key");
	/* A PEM key of the wrong kind (EC: RS256 needs RSA). */
	assert_non_null(ec);
	b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey(b, ec, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(b, &p);
	ec_pem = strndup(p, (size_t)n);
	snprintf(path, sizeof(path), "%s/ec.json", dir);
	write_key_file(path, "service_account", EMAIL, KID, ec_pem);
	expect_bad("ec.json", NULL, -EINVAL, "private_key is not a PEM RSA private key");
	free(ec_pem);
	BIO_free(b);
	EVP_PKEY_free(ec);
	free(pem);
}

static void test_emulator(void **state)
{
	char hdr[64] = "x", err[256];
	struct gcp_auth *a;

	(void)state;
	/* The emulator wins over a key file, as in Google's libraries. */
	setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json", 1);
	setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085", 1);
	assert_int_equal(gcp_auth_new("/nonexistent/other.json", &a, err, sizeof(err)), 0);
	assert_int_equal(gcp_auth_kind(a), GCP_AUTH_EMULATOR);
	assert_string_equal(gcp_auth_base_url(a), "http://127.0.0.1:8085");
	assert_int_equal(gcp_auth_header(a, hdr, sizeof(hdr), err, sizeof(err)), 0);
	assert_string_equal(hdr, "");
	gcp_auth_free(a);

	setenv("PUBSUB_EMULATOR_HOST", "http://x/y z", 1);
	assert_int_equal(gcp_auth_new(NULL, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "PUBSUB_EMULATOR_HOST"));
}

/* ---- a metadata server on loopback ---- */

struct meta {
	int fd, port;
	pthread_t thread;
	int requests;	    /* served */
	int flavor_missing; /* requests without Metadata-Flavor: Google */
	int wrong_path;	    /* requests for another path */
	int status;	    /* HTTP status to answer */
	const char *body;   /* body to answer */
	volatile int stop;
};

static void *meta_run(void *arg)
{
	struct meta *m = arg;

	for (;;) {
		char req[4096], resp[1024];
		size_t got = 0;
		int c = accept(m->fd, NULL, NULL);

		if (c < 0 || m->stop) {
			if (c >= 0)
				close(c);
			return NULL;
		}
		while (got < sizeof(req) - 1) {
			ssize_t n = read(c, req + got, sizeof(req) - 1 - got);

			if (n <= 0)
				break;
			got += (size_t)n;
			req[got] = 0;
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		req[got] = 0;
		if (!strcasestr(req, "\r\nMetadata-Flavor: Google\r\n"))
			m->flavor_missing++;
		static const char want[] = "GET /computeMetadata/v1/instance/service-accounts/"
					   "default/token HTTP/1.1\r\n";

		if (strncmp(req, want, sizeof(want) - 1))
			m->wrong_path++;
		m->requests++;
		snprintf(resp, sizeof(resp),
			 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nMetadata-Flavor: "
			 "Google\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 m->status, strlen(m->body), m->body);
		if (write(c, resp, strlen(resp)) < 0)
			m->requests += 1000; /* fails the test's count */
		close(c);
	}
}

static struct meta *meta_start(int status, const char *body)
{
	struct meta *m = calloc(1, sizeof(*m));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	char host[64];

	assert_non_null(m);
	m->status = status;
	m->body = body;
	m->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(m->fd >= 0);
	assert_int_equal(bind(m->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(m->fd, 8), 0);
	assert_int_equal(getsockname(m->fd, (struct sockaddr *)&sa, &len), 0);
	m->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&m->thread, NULL, meta_run, m), 0);
	snprintf(host, sizeof(host), "127.0.0.1:%d", m->port);
	setenv("GCE_METADATA_HOST", host, 1);
	return m;
}

static void meta_stop(struct meta *m)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)m->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	m->stop = 1;
	/* Wake the accept() with one last connection. */
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	pthread_join(m->thread, NULL);
	close(m->fd);
	free(m);
}

static void test_metadata(void **state)
{
	char hdr[GCP_AUTH_HEADER_MAX], err[256];
	struct gcp_auth *a;
	struct meta *m;
	time_t now = time(NULL);

	(void)state;
	m = meta_start(200, "{\"access_token\":\"ya29.c.b0AXv0zTtokenfortest\",\"expires_in\":3599,"
			    "\"token_type\":\"Bearer\"}");
	assert_int_equal(gcp_auth_new(NULL, &a, err, sizeof(err)), 0);
	assert_int_equal(gcp_auth_kind(a), GCP_AUTH_METADATA);
	assert_string_equal(gcp_auth_base_url(a), "https://pubsub.googleapis.com");
	assert_non_null(strstr(gcp_auth_describe(a), "metadata server 127.0.0.1:"));
	assert_int_equal(m->requests, 0); /* nothing asked before a header is wanted */

	assert_int_equal(gcp_auth_header_at(a, now, hdr, sizeof(hdr), err, sizeof(err)), 0);
	assert_string_equal(hdr, "Authorization: Bearer ya29.c.b0AXv0zTtokenfortest");
	assert_int_equal(m->requests, 1);
	assert_int_equal(m->flavor_missing, 0);
	assert_int_equal(m->wrong_path, 0);
	assert_int_equal(gcp_auth_expiry(a), now + 3599);
	/* Cached while more than 5 minutes remain, fetched again after. */
	assert_int_equal(gcp_auth_header_at(a, now + 3298, hdr, sizeof(hdr), err, sizeof(err)), 0);
	assert_int_equal(m->requests, 1);
	assert_int_equal(gcp_auth_header_at(a, now + 3299, hdr, sizeof(hdr), err, sizeof(err)), 0);
	assert_int_equal(m->requests, 2);
	assert_int_equal(gcp_auth_expiry(a), now + 3299 + 3599);

	/* A failing refresh keeps the valid token, and waits 10 s before trying again. */
	m->status = 500;
	assert_int_equal(gcp_auth_header_at(a, now + 6600, hdr, sizeof(hdr), err, sizeof(err)), 0);
	assert_string_equal(hdr, "Authorization: Bearer ya29.c.b0AXv0zTtokenfortest");
	assert_int_equal(m->requests, 3);
	assert_int_equal(gcp_auth_header_at(a, now + 6605, hdr, sizeof(hdr), err, sizeof(err)), 0);
	assert_int_equal(m->requests, 3);
	/* Once expired, the error shows (without asking again inside the wait)... */
	assert_int_equal(gcp_auth_header_at(a, now + 6899, hdr, sizeof(hdr), err, sizeof(err)),
			 -EIO);
	assert_int_equal(m->requests, 4);
	assert_string_equal(hdr, "");
	assert_non_null(strstr(err, "HTTP 500"));
	assert_int_equal(gcp_auth_header_at(a, now + 6900, hdr, sizeof(hdr), err, sizeof(err)),
			 -EIO);
	assert_int_equal(m->requests, 4);
	assert_non_null(strstr(err, "retrying in 9s"));
	/* ...and the next try after it recovers. */
	m->status = 200;
	assert_int_equal(gcp_auth_header_at(a, now + 6910, hdr, sizeof(hdr), err, sizeof(err)), 0);
	assert_int_equal(m->requests, 5);
	gcp_auth_free(a);

	/* Refusal, and answers without a usable token. */
	m->status = 403;
	assert_int_equal(gcp_auth_new(NULL, &a, err, sizeof(err)), 0);
	assert_int_equal(gcp_auth_header(a, hdr, sizeof(hdr), err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "HTTP 403"));
	gcp_auth_free(a);
	m->status = 200;
	m->body = "{\"expires_in\":3599,\"token_type\":\"Bearer\"}";
	assert_int_equal(gcp_auth_new(NULL, &a, err, sizeof(err)), 0);
	assert_int_equal(gcp_auth_header(a, hdr, sizeof(hdr), err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "no usable access_token"));
	gcp_auth_free(a);
	m->body = "{\"access_token\":\"a b\\r\\nX-Evil: 1\",\"expires_in\":3599}";
	assert_int_equal(gcp_auth_new(NULL, &a, err, sizeof(err)), 0);
	assert_int_equal(gcp_auth_header(a, hdr, sizeof(hdr), err, sizeof(err)), -EPROTO);
	gcp_auth_free(a);
	assert_int_equal(m->flavor_missing, 0);
	meta_stop(m);

	/* Nobody listening: a clear -EIO naming the host. */
	assert_int_equal(gcp_auth_new(NULL, &a, err, sizeof(err)), 0);
	assert_int_equal(gcp_auth_header(a, hdr, sizeof(hdr), err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "gcp: metadata server 127.0.0.1:"));
	gcp_auth_free(a);
}

static void test_base64url(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(gcp_base64url("", 0, out, sizeof(out)), 0);
	assert_int_equal(gcp_base64url("f", 1, out, sizeof(out)), 2);
	assert_string_equal(out, "Zg");
	assert_int_equal(gcp_base64url("fo", 2, out, sizeof(out)), 3);
	assert_string_equal(out, "Zm8");
	assert_int_equal(gcp_base64url("foo", 3, out, sizeof(out)), 4);
	assert_string_equal(out, "Zm9v");
	assert_int_equal(gcp_base64url("\xfb\xff", 2, out, sizeof(out)), 3);
	assert_string_equal(out, "-_8");
	assert_int_equal(gcp_base64url("foobar", 6, out, 8), -ENOSPC); /* 8 + NUL */
	assert_int_equal(gcp_base64url("foobar", 6, out, 9), 8);
	assert_string_equal(out, "Zm9vYmFy");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_base64url, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jwt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_key_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emulator, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metadata, setup, teardown),
	};
	int r;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	key = EVP_RSA_gen(2048);
	if (!key)
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	EVP_PKEY_free(key);
	curl_global_cleanup();
	return r;
}
