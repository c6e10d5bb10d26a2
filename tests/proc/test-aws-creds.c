/* SPDX-License-Identifier: MIT */
/*
 * Process test of the credential chain of common/aws against a loopback
 * HTTP server thread standing in for what cannot run here: EC2 instance
 * metadata (IMDSv2: a GET without the session token is refused, as real
 * IMDSv2 does), the ECS container endpoint (checks the Authorization
 * header) and STS AssumeRoleWithWebIdentity. Each credentials document it
 * serves carries a new key, so a refresh is visible. Also: refresh of
 * credentials that expire within 5 minutes, a failed refresh while they are
 * still valid (AWS_CREDS_STALE) and after they expired (an error), the
 * chain order (env > web identity > files > ECS > IMDS), and
 * `ferry-envelope pubsub` against a stand-in of the Pub/Sub publish API.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#include "common/aws.h"
#include "common/envelope.h"

#define ECS_TOKEN  "ecs-auth-token-1"
#define IMDS_TOKEN "imds-session-token-1"
#define WI_TOKEN   "web-identity-jwt-1"

/* The stand-in server: one thread, one request per connection. */
struct srv {
	int fd, port;
	int stop_pipe[2];
	pthread_t thread;
	pthread_mutex_t lock;
	/* what to serve (under lock) */
	int expiry_s; /* Expiration = now + expiry_s */
	int fail;     /* 500 for every credentials document */
	/* what happened (under lock) */
	int gen;		 /* credentials documents served */
	int imds_token_puts;	 /* PUT /latest/api/token with the TTL header */
	int imds_refused;	 /* metadata GETs without the session token */
	int ecs_refused;	 /* ECS GETs with a wrong Authorization */
	int sts_calls;		 /* AssumeRoleWithWebIdentity answered */
	int pubsub_requests;	 /* publish requests */
	int pubsub_messages;	 /* messages in them, each checked */
	int pubsub_bad;		 /* messages that were not what the tool must send */
	int pubsub_tenants[100]; /* messages per tenant t00.. */
};

struct http_req {
	char *buf; /* everything read (malloc'd) */
	char method[16], path[512];
	char *headers; /* raw header block */
	char *body;
	size_t body_len;
};

static char tmpdir[64];

static const char *header(const struct http_req *r, const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);

	for (const char *p = r->headers; p && *p;) {
		const char *eol = strstr(p, "\r\n");
		size_t l = eol ? (size_t)(eol - p) : strlen(p);

		if (l > n && !strncasecmp(p, name, n) && p[n] == ':') {
			const char *v = p + n + 1;

			while (*v == ' ')
				v++;
			snprintf(buf, len, "%.*s", (int)(l - (size_t)(v - p)), v);
			return buf;
		}
		p += l + (eol ? 2 : 0);
	}
	return NULL;
}

static void respond(int fd, int status, const char *ctype, const char *body)
{
	char head[256];
	size_t len = strlen(body);
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 status, ctype, len);

	if (write(fd, head, (size_t)n) != n || write(fd, body, len) != (ssize_t)len)
		return;
}

static void iso_in(int secs, char *buf, size_t len)
{
	time_t t = time(NULL) + secs;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A credentials document as ECS and IMDS serve it; NULL (-> 500) when failing. */
static char *creds_doc(struct srv *s, const char *prefix)
{
	char exp[32], *doc;
	int gen;

	pthread_mutex_lock(&s->lock);
	if (s->fail) {
		pthread_mutex_unlock(&s->lock);
		return NULL;
	}
	gen = ++s->gen;
	iso_in(s->expiry_s, exp, sizeof(exp));
	pthread_mutex_unlock(&s->lock);
	assert_true(
		asprintf(&doc,
			 "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"%s%04d\","
			 "\"SecretAccessKey\":\"secret-%d\",\"Token\":\"token-%d\","
			 "\"Expiration\":\"%s\"}",
			 prefix, gen, gen, gen, exp) > 0);
	return doc;
}

static void count(struct srv *s, int *field)
{
	pthread_mutex_lock(&s->lock);
	(*field)++;
	pthread_mutex_unlock(&s->lock);
}

/* A Pub/Sub publish: every message base64 of an envelope of the tenant it names. */
static void serve_pubsub(struct srv *s, int fd, const struct http_req *r)
{
	cJSON *j = cJSON_ParseWithLength(r->body, r->body_len), *m;
	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "messages");
	struct sbuf_ids {
		char *p;
		size_t len;
	} ids = {0};
	FILE *f = open_memstream(&ids.p, &ids.len);
	int n = 0;

	fputs("{\"messageIds\":[", f);
	cJSON_ArrayForEach(m, msgs)
	{
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(m, "data");
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(m, "attributes");
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(a, "tenant");
		unsigned char env[4096];
		struct envelope e;
		char why[128];
		int len, ok = 0;

		if (cJSON_IsString(d) && cJSON_IsString(t) && strlen(d->valuestring) < 5000 &&
		    (len = EVP_DecodeBlock(env, (unsigned char *)d->valuestring,
					   (int)strlen(d->valuestring))) > 0) {
			while (len && env[len - 1] == 0)
				len--; /* the padding EVP_DecodeBlock() counts */
			if (!envelope_parse(env, (size_t)len, &e, why, sizeof(why))) {
				ok = !strcmp(e.tenant, t->valuestring) && e.tenant[0] == 't';
				if (ok) {
					pthread_mutex_lock(&s->lock);
					s->pubsub_tenants[atoi(e.tenant + 1) % 100]++;
					pthread_mutex_unlock(&s->lock);
				}
				envelope_free(&e);
			}
		}
		if (!ok)
			count(s, &s->pubsub_bad);
		fprintf(f, "%s\"%d\"", n ? "," : "", n);
		n++;
	}
	fputs("]}", f);
	fclose(f);
	pthread_mutex_lock(&s->lock);
	s->pubsub_requests++;
	s->pubsub_messages += n;
	pthread_mutex_unlock(&s->lock);
	respond(fd, j ? 200 : 400, "application/json", ids.p);
	free(ids.p);
	cJSON_Delete(j);
}

static void serve(struct srv *s, int fd, const struct http_req *r)
{
	char buf[256], *doc;

	if (!strcmp(r->method, "PUT") && !strcmp(r->path, "/latest/api/token")) {
		if (!header(r, "X-aws-ec2-metadata-token-ttl-seconds", buf, sizeof(buf))) {
			respond(fd, 400, "text/plain", "missing ttl");
			return;
		}
		count(s, &s->imds_token_puts);
		respond(fd, 200, "text/plain", IMDS_TOKEN);
		return;
	}
	if (!strncmp(r->path, "/latest/meta-data/", 18)) {
		const char *t = header(r, "X-aws-ec2-metadata-token", buf, sizeof(buf));

		if (!t || strcmp(t, IMDS_TOKEN)) {
			count(s, &s->imds_refused);
			respond(fd, 401, "text/plain", "");
			return;
		}
		if (!strcmp(r->path, "/latest/meta-data/iam/security-credentials/")) {
			respond(fd, 200, "text/plain", "ferry-role");
		} else if (!strcmp(r->path,
				   "/latest/meta-data/iam/security-credentials/ferry-role") &&
			   (doc = creds_doc(s, "ASIAIMDS"))) {
			respond(fd, 200, "text/plain", doc);
			free(doc);
		} else {
			respond(fd, strstr(r->path, "ferry-role") ? 500 : 404, "text/plain", "");
		}
		return;
	}
	if (!strcmp(r->path, "/ecs/creds")) {
		const char *a = header(r, "Authorization", buf, sizeof(buf));

		if (!a || strcmp(a, ECS_TOKEN)) {
			count(s, &s->ecs_refused);
			respond(fd, 401, "application/json", "{\"message\":\"bad token\"}");
		} else if ((doc = creds_doc(s, "ASIAECS"))) {
			respond(fd, 200, "application/json", doc);
			free(doc);
		} else {
			respond(fd, 500, "application/json", "{}");
		}
		return;
	}
	if (!strcmp(r->method, "POST") && !strcmp(r->path, "/") && r->body &&
	    strstr(r->body, "Action=AssumeRoleWithWebIdentity") &&
	    strstr(r->body, "WebIdentityToken=" WI_TOKEN) && strstr(r->body, "RoleArn=arn")) {
		char exp[32], *xml;
		int gen;

		pthread_mutex_lock(&s->lock);
		gen = ++s->gen;
		s->sts_calls++;
		iso_in(3600, exp, sizeof(exp));
		pthread_mutex_unlock(&s->lock);
		/* As the STS API reference shows it, entities included. */
		assert_true(asprintf(&xml,
				     "<AssumeRoleWithWebIdentityResponse xmlns=\"https://"
				     "sts.amazonaws.com/doc/2011-06-15/\">\n"
				     "  <AssumeRoleWithWebIdentityResult>\n"
				     "    <Credentials>\n"
				     "      <SessionToken>tok&amp;%d</SessionToken>\n"
				     "      <SecretAccessKey>secret-wi-%d</SecretAccessKey>\n"
				     "      <Expiration>%s</Expiration>\n"
				     "      <AccessKeyId>ASIAWI%04d</AccessKeyId>\n"
				     "    </Credentials>\n"
				     "  </AssumeRoleWithWebIdentityResult>\n"
				     "</AssumeRoleWithWebIdentityResponse>\n",
				     gen, gen, exp, gen) > 0);
		respond(fd, 200, "text/xml", xml);
		free(xml);
		return;
	}
	if (!strcmp(r->method, "POST") && strstr(r->path, "/v1/projects/p/topics/t:publish")) {
		serve_pubsub(s, fd, r);
		return;
	}
	respond(fd, 404, "text/plain", "");
}

/* Read one request (headers, then Content-Length bytes of body). 0 or -1. */
static int read_request(int fd, struct http_req *r)
{
	size_t cap = 1 << 16, len = 0, want = 0, hlen = 0; /* hlen: up to the blank line */
	char *buf = malloc(cap), *end, cl[32];

	memset(r, 0, sizeof(*r));
	if (!buf)
		return -1;
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = 0;
		if (!hlen && (end = strstr(buf, "\r\n\r\n"))) {
			hlen = (size_t)(end - buf) + 4;
			*end = 0;
			r->headers = buf;
			want = header(r, "Content-Length", cl, sizeof(cl)) ? strtoul(cl, NULL, 10)
									   : 0;
			*end = '\r';
		}
		if (hlen && len >= hlen + want)
			break;
	}
	if (!hlen || sscanf(buf, "%15s %511s", r->method, r->path) != 2) {
		free(buf);
		return -1;
	}
	buf[hlen - 4] = 0;
	r->headers = strstr(buf, "\r\n") ? strstr(buf, "\r\n") + 2 : buf + hlen - 4;
	r->body = buf + hlen;
	r->body_len = len - hlen;
	r->buf = buf;
	return 0;
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;

	for (;;) {
		struct pollfd p[2] = {{s->fd, POLLIN, 0}, {s->stop_pipe[0], POLLIN, 0}};
		struct http_req r;
		int c;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		if (read_request(c, &r) == 0) {
			serve(s, c, &r);
			free(r.buf);
		}
		close(c);
	}
	return NULL;
}

static struct srv *srv_start(void)
{
	struct srv *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);

	assert_non_null(s);
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->fd, 64), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
	s->port = ntohs(a.sin_port);
	s->expiry_s = 3600;
	assert_int_equal(pipe2(s->stop_pipe, O_CLOEXEC), 0);
	pthread_mutex_init(&s->lock, NULL);
	assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
	return s;
}

static void srv_stop(struct srv *s)
{
	if (!s)
		return;
	assert_int_equal(write(s->stop_pipe[1], "x", 1), 1);
	pthread_join(s->thread, NULL);
	close(s->fd);
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int srv_get(struct srv *s, const int *field)
{
	int v;

	pthread_mutex_lock(&s->lock);
	v = *field;
	pthread_mutex_unlock(&s->lock);
	return v;
}

static void srv_set(struct srv *s, int expiry_s, int fail)
{
	pthread_mutex_lock(&s->lock);
	s->expiry_s = expiry_s;
	s->fail = fail;
	pthread_mutex_unlock(&s->lock);
}

static void unset_aws_env(void)
{
	static const char *const vars[] = {
		"AWS_ACCESS_KEY_ID",
		"AWS_SECRET_ACCESS_KEY",
		"AWS_SESSION_TOKEN",
		"AWS_PROFILE",
		"AWS_SHARED_CREDENTIALS_FILE",
		"AWS_CONFIG_FILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_ROLE_ARN",
		"AWS_ROLE_SESSION_NAME",
		"AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_STS",
		"AWS_REGION",
		"AWS_DEFAULT_REGION",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT",
		"AWS_EC2_METADATA_DISABLED",
	};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
}

static void tmp_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

static void write_file(const char *name, const char *text)
{
	char p[128];
	FILE *f;

	tmp_path(p, sizeof(p), name);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	char p[128];

	alarm(120); /* a hang fails the test instead of blocking it */
	unset_aws_env();
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-aws-creds.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	/* Shared files that do not exist, unless a test writes them. */
	tmp_path(p, sizeof(p), "credentials");
	setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
	tmp_path(p, sizeof(p), "config");
	setenv("AWS_CONFIG_FILE", p, 1);
	*state = srv_start();
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	srv_stop(*state);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		return -1;
	unset_aws_env();
	alarm(0);
	return 0;
}

static void use_imds(struct srv *s)
{
	char url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s->port);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
}

static void use_ecs(struct srv *s, const char *token)
{
	char url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ecs/creds", s->port);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
	if (token)
		setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", token, 1);
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* IMDSv2: token, role, credentials; the GET without the token is refused. */
static void test_imds(void **state)
{
	struct srv *s = *state;
	struct aws_creds_provider *p;
	struct aws_creds c;
	char err[1024] = "", url[128];
	uint64_t now = realtime_ns();
	long status = 0;
	CURL *e;

	use_imds(s);
	/* The stand-in refuses what real IMDSv2 refuses: a GET without the token. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/latest/meta-data/iam/security-credentials/",
		 s->port);
	e = curl_easy_init();
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	assert_int_equal(curl_easy_perform(e), CURLE_OK);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(e);
	assert_int_equal(status, 401);
	assert_int_equal(srv_get(s, &s->imds_refused), 1);

	p = aws_creds_provider_new(NULL, "eu-west-1");
	assert_non_null(p);
	assert_string_equal(aws_creds_provider_source(p), "");
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "ASIAIMDS0001");
	assert_string_equal(c.secret_key, "secret-1");
	assert_string_equal(c.session_token, "token-1");
	assert_string_equal(aws_creds_provider_source(p), "instance metadata");
	/* Expiration an hour ahead, to the second. */
	assert_true(c.expires_ns > now + 3590ull * 1000000000ull);
	assert_true(c.expires_ns < now + 3610ull * 1000000000ull);
	assert_int_equal(srv_get(s, &s->imds_token_puts), 1);
	assert_int_equal(srv_get(s, &s->imds_refused), 1); /* we always sent the token */
	/* Valid for an hour: the next get() asks nobody. */
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "ASIAIMDS0001");
	assert_int_equal(srv_get(s, &s->gen), 1);
	aws_creds_provider_free(p);

	/* IMDS disabled, or nothing listening: the chain ends, fast, with what it tried. */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	p = aws_creds_provider_new(NULL, NULL);
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "instance metadata (AWS_EC2_METADATA_DISABLED)"));
	assert_string_equal(c.access_key, "");
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
	now = realtime_ns();
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), -ENOENT);
	assert_true(realtime_ns() - now < 3000000000ull);
	assert_non_null(strstr(err, "no AWS credentials for profile 'default'"));
	assert_non_null(strstr(err, "ECS container (AWS_CONTAINER_CREDENTIALS_*_URI not set)"));
	assert_non_null(strstr(err, "instance metadata (instance metadata: "));
	aws_creds_provider_free(p);
}

/* Credentials expiring within 5 minutes are fetched again; failures keep valid ones. */
static void test_refresh(void **state)
{
	struct srv *s = *state;
	struct aws_creds_provider *p;
	struct aws_creds c;
	char err[1024] = "";
	uint64_t deadline;
	int r;

	use_imds(s);
	srv_set(s, 120, 0); /* two minutes: inside the refresh window */
	p = aws_creds_provider_new(NULL, NULL);
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "ASIAIMDS0001");
	/* The next get() fetches new ones (the SDKs' advisory refresh). */
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "ASIAIMDS0002");
	assert_string_equal(c.secret_key, "secret-2");
	assert_int_equal(srv_get(s, &s->gen), 2);

	/* The endpoint fails: the held ones are still valid for ~2 min, so kept, and said. */
	srv_set(s, 120, 1);
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), AWS_CREDS_STALE);
	assert_string_equal(c.access_key, "ASIAIMDS0002");
	assert_non_null(strstr(err, "refreshing AWS credentials failed"));
	assert_non_null(strstr(err, "HTTP 500"));
	assert_non_null(strstr(err, "stay valid for 1"));
	assert_null(strstr(err, "secret-"));

	/* A client made from the provider signs with them too (no network needed to build). */
	{
		struct aws_client *cl =
			aws_client_new_provider("us-east-1", "http://127.0.0.1:1", p);
		struct aws_request *rq = NULL;

		assert_non_null(cl);
		assert_int_equal(aws_query_request_new(cl, "sns", "Action=ListTopics", &rq, err,
						       sizeof(err)),
				 0);
		aws_request_free(rq);
		aws_client_free(cl);
	}

	/* Ones that expire in 3 s, then failures: kept while valid, an error after. */
	srv_set(s, 3, 0);
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "ASIAIMDS0003");
	srv_set(s, 3, 1);
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), AWS_CREDS_STALE);
	assert_string_equal(c.access_key, "ASIAIMDS0003");
	deadline = realtime_ns() + 10ull * 1000000000ull;
	do {
		struct timespec ts = {0, 100 * 1000 * 1000};

		r = aws_creds_provider_get(p, &c, err, sizeof(err));
		if (r == AWS_CREDS_STALE)
			nanosleep(&ts, NULL);
	} while (r == AWS_CREDS_STALE && realtime_ns() < deadline);
	assert_int_equal(r, -EIO);
	assert_non_null(strstr(err, "HTTP 500"));
	assert_string_equal(c.access_key, "");
	/* ...and a client made from it refuses to build a request. */
	{
		struct aws_client *cl =
			aws_client_new_provider("us-east-1", "http://127.0.0.1:1", p);
		struct aws_request *rq = NULL;

		assert_int_equal(aws_query_request_new(cl, "sns", "Action=ListTopics", &rq, err,
						       sizeof(err)),
				 -EIO);
		assert_null(rq);
		aws_client_free(cl);
	}
	/* The endpoint back: fresh ones. */
	srv_set(s, 3600, 0);
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "ASIAIMDS0004");
	aws_creds_provider_free(p);
}

/* ECS: the Authorization header from the token file (preferred) or the variable. */
static void test_ecs(void **state)
{
	struct srv *s = *state;
	struct aws_creds_provider *p;
	struct aws_creds c;
	char err[1024] = "", path[128];

	use_imds(s); /* must not be reached: a configured ECS source decides */
	use_ecs(s, ECS_TOKEN);
	p = aws_creds_provider_new(NULL, NULL);
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "ASIAECS0001");
	assert_string_equal(c.session_token, "token-1");
	assert_string_equal(aws_creds_provider_source(p), "ECS container");
	aws_creds_provider_free(p);

	/* A wrong token: refused, an error (no fall-through to IMDS), no token in err. */
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-token", 1);
	p = aws_creds_provider_new(NULL, NULL);
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "ECS container credentials: HTTP 401"));
	assert_null(strstr(err, "wrong-token"));
	assert_int_equal(srv_get(s, &s->ecs_refused), 1);
	assert_int_equal(srv_get(s, &s->imds_token_puts), 0);
	/* The token file wins over the variable (EKS Pod Identity). */
	write_file("ecs-token", ECS_TOKEN "\n");
	tmp_path(path, sizeof(path), "ecs-token");
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path, 1);
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "ASIAECS0002");
	aws_creds_provider_free(p);

	/* A full URI over plain http to a host that is not loopback or the agent: refused. */
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds", 1);
	p = aws_creds_provider_new(NULL, NULL);
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "AWS_CONTAINER_CREDENTIALS_FULL_URI"));
	aws_creds_provider_free(p);
}

static void expect_source(const char *source, const char *key_prefix)
{
	struct aws_creds_provider *p = aws_creds_provider_new(NULL, NULL);
	struct aws_creds c;
	char err[1024] = "";

	assert_non_null(p);
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(aws_creds_provider_source(p), source);
	assert_memory_equal(c.access_key, key_prefix, strlen(key_prefix));
	aws_creds_provider_free(p);
}

/* env > web identity > shared credentials file > config file > ECS > IMDS. */
static void test_chain_order(void **state)
{
	struct srv *s = *state;
	struct aws_creds_provider *p;
	struct aws_creds c;
	char err[1024] = "", path[128], url[64];

	use_imds(s);
	use_ecs(s, ECS_TOKEN);
	write_file("credentials", "[default]\naws_access_key_id = AKIDCREDSFILE\n"
				  "aws_secret_access_key = secret-c\n");
	write_file("config", "[default]\naws_access_key_id = AKIDCONFIGFILE\n"
			     "aws_secret_access_key = secret-f\n");
	write_file("wi-token", WI_TOKEN "\n");
	tmp_path(path, sizeof(path), "wi-token");
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ferry", 1);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", s->port);
	setenv("AWS_ENDPOINT_URL_STS", url, 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-e", 1);

	expect_source("environment", "AKIDENV");
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	expect_source("web identity", "ASIAWI");
	assert_int_equal(srv_get(s, &s->sts_calls), 1);
	/* The STS answer's entities are decoded. */
	p = aws_creds_provider_new(NULL, NULL);
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), 0);
	assert_non_null(strstr(c.session_token, "tok&"));
	assert_true(c.expires_ns > realtime_ns() + 3500ull * 1000000000ull);
	aws_creds_provider_free(p);
	/* A named profile skips the environment's web identity settings, as the SDKs do... */
	p = aws_creds_provider_new("default", NULL);
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "AKIDCREDSFILE");
	aws_creds_provider_free(p);
	unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
	unsetenv("AWS_ROLE_ARN");
	expect_source("shared files", "AKIDCREDSFILE");
	/* ...but reads the profile's own, in the config file. */
	{
		char text[512];

		snprintf(text, sizeof(text),
			 "[default]\naws_access_key_id = AKIDCONFIGFILE\n"
			 "aws_secret_access_key = secret-f\n"
			 "[profile wi]\nweb_identity_token_file = %s\n"
			 "role_arn = arn:aws:iam::123456789012:role/ferry\n"
			 "role_session_name = ferry-test\n",
			 path);
		write_file("config", text);
	}
	p = aws_creds_provider_new("wi", NULL);
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), 0);
	assert_string_equal(aws_creds_provider_source(p), "web identity");
	aws_creds_provider_free(p);
	tmp_path(path, sizeof(path), "credentials");
	unlink(path);
	expect_source("shared files", "AKIDCONFIGFILE");
	tmp_path(path, sizeof(path), "config");
	unlink(path);
	expect_source("ECS container", "ASIAECS");
	unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	expect_source("instance metadata", "ASIAIMDS");
	/* A web identity token file that cannot be read is an error, not a fall-through. */
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token", 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ferry", 1);
	p = aws_creds_provider_new(NULL, NULL);
	assert_int_equal(aws_creds_provider_get(p, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "web identity: cannot read token file /nonexistent/token"));
	aws_creds_provider_free(p);
}

/* aws_xml_text(): the first element's text, entities decoded. */
static void test_xml_text(void **state)
{
	const char *xml = "<R><Code>Bad&amp;Worse</Code><Message>a &lt;b&gt; &quot;c&quot; "
			  "&apos;d&apos;&#10;e &#x41; &bogus;</Message><Code>second</Code>"
			  "<Empty></Empty></R>";
	char buf[64];

	(void)state;
	assert_int_equal(aws_xml_text(xml, "Code", buf, sizeof(buf)), 9);
	assert_string_equal(buf, "Bad&Worse");
	assert_true(aws_xml_text(xml, "Message", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "a <b> \"c\" 'd'\ne A &bogus;");
	assert_int_equal(aws_xml_text(xml, "Empty", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(aws_xml_text(xml, "Missing", buf, sizeof(buf)), -ENOENT);
	assert_int_equal(aws_xml_text(xml, "Code", buf, 5), -ENOSPC);
	assert_string_equal(buf, "");
	assert_int_equal(aws_xml_text("<A>unterminated", "A", buf, sizeof(buf)), -ENOENT);
	assert_int_equal(aws_xml_text(xml, "Code", NULL, 0), -EINVAL);
	{
		char *enc = aws_form_encode("a b&c=d/é~+");

		assert_string_equal(enc, "a+b%26c%3Dd%2F%C3%A9~%2B");
		free(enc);
	}
}

/* ferry-envelope pubsub: COUNT sealed events, tenant attribute, in batches of 1000. */
static void test_envelope_pubsub(void **state)
{
	struct srv *s = *state;
	char cmd[1024], out[512] = "", ring[128];
	FILE *f;

	tmp_path(ring, sizeof(ring), "keys");
	snprintf(cmd, sizeof(cmd), "%s pubsub http://127.0.0.1:%d p t %s 2500 3",
		 FERRY_ENVELOPE_PATH, s->port, ring);
	f = popen(cmd, "r");
	assert_non_null(f);
	assert_non_null(fgets(out, sizeof(out), f));
	assert_int_equal(pclose(f), 0);
	assert_non_null(strstr(out, "published 2500 of 2500 messages to projects/p/topics/t"));
	assert_int_equal(srv_get(s, &s->pubsub_requests), 3);
	assert_int_equal(srv_get(s, &s->pubsub_messages), 2500);
	assert_int_equal(srv_get(s, &s->pubsub_bad), 0);
	assert_int_equal(srv_get(s, &s->pubsub_tenants[0]), 834);
	assert_int_equal(srv_get(s, &s->pubsub_tenants[1]), 833);
	assert_int_equal(srv_get(s, &s->pubsub_tenants[2]), 833);
	/* A topic that does not exist: the HTTP error, a failing exit. */
	snprintf(cmd, sizeof(cmd), "%s pubsub http://127.0.0.1:%d p nope %s 5 1 >/dev/null 2>&1",
		 FERRY_ENVELOPE_PATH, s->port, ring);
	assert_int_not_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_imds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ecs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xml_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_envelope_pubsub, setup, teardown),
	};
	int ret;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return ret;
}
