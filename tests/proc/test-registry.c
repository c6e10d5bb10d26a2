/* SPDX-License-Identifier: MIT */
/*
 * common/registry against tests/registry/fixture.js (a real HTTP server in
 * its own process), and what it encodes decoded by a decoder nobody here
 * wrote: Confluent's JavaScript ProtobufDeserializer (tests/registry/decode.js).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "common/registry.h"
#include "tests/proc/port.h"
#include "test/chat/v1/message.pb-c.h"

struct fixture {
	pid_t pid;
	int port;
	char url[64];
};

static long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Start the fixture (extra arguments after the script); wait until it prints its port. */
static struct fixture *fixture_start(const char *arg1, const char *arg2, const char *arg3,
				     const char *arg4)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char line[128] = {0};
	size_t got = 0;
	long deadline = ms_now() + 20000;
	int pfd[2];

	assert_non_null(f);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0) {
		const char *argv[] = {NODE_PATH, FIXTURE_JS, arg1, arg2, arg3, arg4, NULL};

		setpgid(0, 0);
		/* a test that dies (assertion, sanitizer) takes its fixture along */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pfd[1], 1);
		execv(NODE_PATH, (char **)argv);
		_exit(127);
	}
	close(pfd[1]);
	while (!strchr(line, '\n')) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		long left = deadline - ms_now();
		ssize_t n;

		assert_true(left > 0);
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		n = read(pfd[0], line + got, sizeof(line) - 1 - got);
		if (n <= 0)
			fail_msg("fixture exited before printing its port");
		got += (size_t)n;
	}
	close(pfd[0]);
	assert_int_equal(sscanf(line, "port=%d", &f->port), 1);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", f->port);
	return f;
}

static void fixture_stop(struct fixture *f)
{
	int status;
	long deadline = ms_now() + 5000;

	if (!f)
		return;
	kill(-f->pid, SIGTERM);
	while (waitpid(f->pid, &status, WNOHANG) == 0) {
		if (ms_now() > deadline) {
			kill(-f->pid, SIGKILL);
			waitpid(f->pid, &status, 0);
			break;
		}
		poll(NULL, 0, 20);
	}
	free(f);
}

static struct registry *client(const char *url, const char *desc, bool auto_register,
			       enum registry_strategy strategy, const char *user, const char *pass)
{
	struct registry_config cfg = {.url = url,
				      .username = user,
				      .password = pass,
				      .auto_register = auto_register,
				      .strategy = strategy,
				      .timeout_ms = 5000,
				      .retry_for_ms = 5000,
				      .retry_base_ms = 50};
	char err[512];
	uint8_t *buf;
	size_t len;
	struct registry *r;

	if (registry_read_file(desc, &buf, &len, err, sizeof(err)))
		fail_msg("%s", err);
	r = registry_new(&cfg, buf, len, err, sizeof(err));
	free(buf);
	if (!r)
		fail_msg("registry_new: %s", err);
	return r;
}

static const struct registry_schema *resolve_ok(struct registry *r, const char *msg,
						const char *topic)
{
	const struct registry_schema *s = NULL;
	char err[1024];
	int rc = registry_resolve(r, msg, topic, &s, err, sizeof(err));

	if (rc)
		fail_msg("resolve %s: %d %s", msg, rc, err);
	return s;
}

struct body {
	char p[65536];
	size_t len;
};

static size_t on_body(char *d, size_t size, size_t n, void *u)
{
	struct body *b = u;

	n *= size;
	if (b->len + n >= sizeof(b->p))
		return 0;
	memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = 0;
	return n;
}

/* One raw request to the fixture: its status, and the JSON body in *ret (caller frees). */
static long raw(const char *url, const char *method, const char *path, const char *body,
		const char *userpwd, cJSON **ret)
{
	CURL *e = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	struct body *b = calloc(1, sizeof(*b));
	char full[1024];
	long status = 0;

	assert_non_null(e);
	assert_non_null(b);
	snprintf(full, sizeof(full), "%s%s", url, path);
	curl_easy_setopt(e, CURLOPT_URL, full);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
	if (body)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	if (userpwd)
		curl_easy_setopt(e, CURLOPT_USERPWD, userpwd);
	assert_int_equal(curl_easy_perform(e), CURLE_OK);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	*ret = cJSON_Parse(b->p);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	free(b);
	return status;
}

static int error_code(const cJSON *j)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "error_code");

	assert_true(cJSON_IsNumber(c));
	assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "message")));
	return c->valueint;
}

/* Header then payload, as hex, into a {"topic","hex"} record of arr. */
static void add_record(cJSON *arr, const char *topic, const struct registry_schema *s,
		       const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m), len = s->header_len + n;
	uint8_t *buf = malloc(len);
	char *hex = malloc(2 * len + 1);
	cJSON *rec = cJSON_CreateObject();

	assert_non_null(buf);
	assert_non_null(hex);
	memcpy(buf, s->header, s->header_len);
	protobuf_c_message_pack(m, buf + s->header_len);
	for (size_t i = 0; i < len; i++)
		sprintf(hex + 2 * i, "%02x", buf[i]);
	cJSON_AddStringToObject(rec, "topic", topic);
	cJSON_AddStringToObject(rec, "hex", hex);
	cJSON_AddItemToArray(arr, rec);
	free(buf);
	free(hex);
}

/* Run decode.js over records; its parsed output. */
static cJSON *decode(const char *url, const char *userinfo, cJSON *records)
{
	char in[] = "/tmp/ferry-registry-in-XXXXXX", out[] = "/tmp/ferry-registry-out-XXXXXX";
	char cmd[1024], *text = cJSON_PrintUnformatted(records);
	int fin = mkstemp(in), fout = mkstemp(out), status;
	FILE *fp;
	static char result[65536];
	size_t n;
	cJSON *j;

	assert_true(fin >= 0 && fout >= 0);
	assert_int_equal(write(fin, text, strlen(text)), (ssize_t)strlen(text));
	close(fin);
	close(fout);
	free(text);
	snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s' %s < '%s' > '%s'", NODE_PATH, DECODE_JS, url,
		 userinfo ? userinfo : "", in, out);
	status = system(cmd);
	fp = fopen(out, "r");
	assert_non_null(fp);
	n = fread(result, 1, sizeof(result) - 1, fp);
	result[n] = 0;
	fclose(fp);
	unlink(in);
	unlink(out);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail_msg("decode.js failed (status %d; did scripts/setup run npm ci --prefix "
			 "tests/registry?)",
			 status);
	j = cJSON_Parse(result);
	assert_non_null(j);
	return j;
}

static const char *jstr(const cJSON *o, const char *path)
{
	char buf[256], *save = NULL, *part;
	const cJSON *cur = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (part = strtok_r(buf, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
		if (cJSON_IsArray(cur))
			cur = cJSON_GetArrayItem(cur, atoi(part));
		else
			cur = cJSON_GetObjectItemCaseSensitive(cur, part);
		if (!cur)
			fail_msg("no %s in decoded JSON", path);
	}
	if (cJSON_IsBool(cur))
		return cJSON_IsTrue(cur) ? "true" : "false";
	if (!cJSON_IsString(cur))
		fail_msg("%s is not a string in decoded JSON", path);
	return cur->valuestring;
}

static void expect_header(const struct registry_schema *s, const uint8_t *idx, size_t n)
{
	assert_int_equal(s->header[0], 0);
	assert_int_equal(((uint32_t)s->header[1] << 24 | (uint32_t)s->header[2] << 16 |
			  (uint32_t)s->header[3] << 8 | s->header[4]),
			 s->id);
	assert_int_equal(s->header_len, 5 + n);
	assert_memory_equal(s->header + 5, idx, n);
}

/*
 * Register through the C client (basic auth on), encode a top-level type, a
 * nested type, a second top-level type and an imported type; Confluent's
 * deserializer reads them back field by field.
 */
static void test_register_encode_decode(void **state)
{
	struct fixture *f = fixture_start("--basic-auth", "ferry:s3cret", NULL, NULL);
	struct registry *r =
		client(f->url, REGISTRY_TEST_DESC, true, REGISTRY_TOPIC_NAME, "ferry", "s3cret");
	struct registry *again;
	const struct registry_schema *sent, *att, *del, *ten, *s2;
	Test__Common__V1__Tenant tenant = TEST__COMMON__V1__TENANT__INIT;
	Test__Chat__V1__MessageSent msg = TEST__CHAT__V1__MESSAGE_SENT__INIT;
	Test__Chat__V1__MessageSent__Attachment a1 = TEST__CHAT__V1__MESSAGE_SENT__ATTACHMENT__INIT,
						a2 = TEST__CHAT__V1__MESSAGE_SENT__ATTACHMENT__INIT;
	Test__Chat__V1__MessageSent__Attachment *atts[] = {&a1, &a2};
	Test__Chat__V1__MessageDeleted gone = TEST__CHAT__V1__MESSAGE_DELETED__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	cJSON *records = cJSON_CreateArray(), *out, *j;
	char err[512];

	(void)state;
	sent = resolve_ok(r, "test.chat.v1.MessageSent", "chat.sent");
	att = resolve_ok(r, "test.chat.v1.MessageSent.Attachment", "chat.attachment");
	del = resolve_ok(r, "test.chat.v1.MessageDeleted", "chat.deleted");
	ten = resolve_ok(r, "test.common.v1.Tenant", "tenants");
	assert_string_equal(sent->subject, "chat.sent-value");
	expect_header(sent, (const uint8_t[]){0x00}, 1);
	expect_header(att, (const uint8_t[]){0x04, 0x00, 0x00}, 3);
	expect_header(del, (const uint8_t[]){0x02, 0x02}, 2);
	expect_header(ten, (const uint8_t[]){0x00}, 1);
	/* the same schema has one id in every subject, as in Confluent's registry */
	assert_int_equal(sent->id, att->id);
	assert_int_equal(sent->id, del->id);
	assert_int_not_equal(sent->id, ten->id);
	assert_int_equal(raw(f->url, "GET",
			     "/subjects/test%2Fcommon%2Fv1%2Ftenant.proto/versions/1", NULL,
			     "ferry:s3cret", &j),
			 200);
	assert_int_equal(cJSON_GetObjectItem(j, "id")->valueint, ten->id);
	cJSON_Delete(j);
	/* cached: asking again makes no request */
	{
		unsigned long before = registry_requests(r);

		assert_ptr_equal(resolve_ok(r, "test.chat.v1.MessageSent", "chat.sent"), sent);
		assert_int_equal(registry_requests(r), before);
	}
	/* idempotent: another client registering the same gets the same id, no new version */
	again = client(f->url, REGISTRY_TEST_DESC, true, REGISTRY_TOPIC_NAME, "ferry", "s3cret");
	s2 = resolve_ok(again, "test.chat.v1.MessageSent", "chat.sent");
	assert_int_equal(s2->id, sent->id);
	assert_int_equal(s2->version, 1);
	registry_free(again);
	assert_int_equal(
		raw(f->url, "GET", "/subjects/chat.sent-value/versions", NULL, "ferry:s3cret", &j),
		200);
	assert_int_equal(cJSON_GetArraySize(j), 1);
	cJSON_Delete(j);
	/* the wrong password is refused, and said so */
	again = client(f->url, REGISTRY_TEST_DESC, true, REGISTRY_TOPIC_NAME, "ferry", "wrong");
	assert_int_equal(registry_resolve(again, "test.chat.v1.MessageSent", "chat.other", &s2, err,
					  sizeof(err)),
			 -EACCES);
	assert_non_null(strstr(err, "401"));
	assert_null(strstr(err, "wrong"));
	registry_free(again);

	tenant.id = "t-42";
	tenant.region = "eu-west-1";
	a1.name = "cat.png";
	a1.size = 1234;
	a2.name = "big.bin";
	a2.size = 5000000000ULL;
	ts.seconds = 1700000000;
	ts.nanos = 500000000;
	msg.message_id = "m-1";
	msg.tenant = &tenant;
	msg.text = "héllo \"world\"";
	msg.n_attachments = 2;
	msg.attachments = atts;
	msg.sent_at = -1700000000123LL;
	msg.priority = TEST__COMMON__V1__PRIORITY__PRIORITY_HIGH;
	msg.edited_at = &ts;
	gone.message_id = "m-2";
	gone.tenant = &tenant;
	gone.by_moderator = true;
	add_record(records, "chat.sent", sent, &msg.base);
	add_record(records, "chat.attachment", att, &a2.base);
	add_record(records, "chat.deleted", del, &gone.base);
	add_record(records, "tenants", ten, &tenant.base);

	out = decode(f->url, "ferry:s3cret", records);
	assert_int_equal(cJSON_GetArraySize(out), 4);
	assert_string_equal(jstr(out, "0.type"), "test.chat.v1.MessageSent");
	assert_string_equal(jstr(out, "0.value.messageId"), "m-1");
	assert_string_equal(jstr(out, "0.value.tenant.id"), "t-42");
	assert_string_equal(jstr(out, "0.value.tenant.region"), "eu-west-1");
	assert_string_equal(jstr(out, "0.value.text"), "héllo \"world\"");
	assert_string_equal(jstr(out, "0.value.attachments.0.name"), "cat.png");
	assert_string_equal(jstr(out, "0.value.attachments.0.size"), "1234");
	assert_string_equal(jstr(out, "0.value.attachments.1.name"), "big.bin");
	assert_string_equal(jstr(out, "0.value.attachments.1.size"), "5000000000");
	assert_string_equal(jstr(out, "0.value.sentAt"), "-1700000000123");
	assert_string_equal(jstr(out, "0.value.priority"), "PRIORITY_HIGH");
	assert_string_equal(jstr(out, "0.value.editedAt"), "2023-11-14T22:13:20.500Z");
	assert_string_equal(jstr(out, "1.type"), "test.chat.v1.MessageSent.Attachment");
	assert_string_equal(jstr(out, "1.value.name"), "big.bin");
	assert_string_equal(jstr(out, "1.value.size"), "5000000000");
	assert_string_equal(jstr(out, "2.type"), "test.chat.v1.MessageDeleted");
	assert_string_equal(jstr(out, "2.value.messageId"), "m-2");
	assert_string_equal(jstr(out, "2.value.tenant.id"), "t-42");
	assert_string_equal(jstr(out, "2.value.byModerator"), "true");
	assert_string_equal(jstr(out, "3.type"), "test.common.v1.Tenant");
	assert_string_equal(jstr(out, "3.value.id"), "t-42");
	cJSON_Delete(out);
	cJSON_Delete(records);
	registry_free(r);
	fixture_stop(f);
}

/* The fixture's own answers: the registry's error codes and JSON. */
static void test_fixture_errors(void **state)
{
	struct fixture *f = fixture_start(NULL, NULL, NULL, NULL);
	const char *bad = "{\"schemaType\":\"PROTOBUF\",\"schema\":\"this is not a schema\"}";
	cJSON *j;

	(void)state;
	assert_int_equal(raw(f->url, "GET", "/subjects/nope/versions/latest", NULL, NULL, &j), 404);
	assert_int_equal(error_code(j), 40401);
	cJSON_Delete(j);
	assert_int_equal(raw(f->url, "GET", "/schemas/ids/999", NULL, NULL, &j), 404);
	assert_int_equal(error_code(j), 40403);
	cJSON_Delete(j);
	assert_int_equal(raw(f->url, "POST", "/subjects/x/versions", bad, NULL, &j), 422);
	assert_int_equal(error_code(j), 42201);
	cJSON_Delete(j);
	assert_int_equal(raw(f->url, "GET", "/associations/resources/default/t", NULL, NULL, &j),
			 404);
	assert_int_equal(error_code(j), 404);
	cJSON_Delete(j);
	fixture_stop(f);
}

/*
 * auto_register off: a registry holding another schema is refused naming the
 * subject and the field; a subject it lacks is "not registered"; one holding
 * the compiled schema is accepted. auto_register on against the other
 * schema: the registry's 409 (incompatible), naming the subject.
 */
static void test_auto_register_off(void **state)
{
	struct fixture *f = fixture_start(NULL, NULL, NULL, NULL);
	struct registry *other =
		client(f->url, REGISTRY_TEST_CHANGED_DESC, true, REGISTRY_TOPIC_NAME, NULL, NULL);
	struct registry *off =
		client(f->url, REGISTRY_TEST_DESC, false, REGISTRY_TOPIC_NAME, NULL, NULL);
	struct registry *on =
		client(f->url, REGISTRY_TEST_DESC, true, REGISTRY_TOPIC_NAME, NULL, NULL);
	const struct registry_schema *s;
	uint32_t mine_id;
	char err[1024];
	int rc;

	(void)state;
	resolve_ok(other, "test.chat.v1.MessageSent", "chat");
	rc = registry_resolve(off, "test.chat.v1.MessageSent", "chat", &s, err, sizeof(err));
	print_message("off, differing: %s\n", err);
	assert_int_equal(rc, -ESTALE);
	assert_non_null(strstr(err, "subject chat-value"));
	assert_non_null(strstr(err, "test.chat.v1.MessageSent.sent_at"));
	assert_non_null(strstr(err, "STRING in the registry, INT64 compiled"));

	rc = registry_resolve(off, "test.chat.v1.MessageSent", "ghost", &s, err, sizeof(err));
	print_message("off, missing: %s\n", err);
	assert_int_equal(rc, -ENOENT);
	assert_non_null(strstr(err, "ghost-value"));
	assert_non_null(strstr(err, "not registered"));

	rc = registry_resolve(on, "test.chat.v1.MessageSent", "chat", &s, err, sizeof(err));
	print_message("on, incompatible: %s\n", err);
	assert_int_equal(rc, -EEXIST);
	assert_non_null(strstr(err, "chat-value"));
	assert_non_null(strstr(err, "409"));

	mine_id = resolve_ok(on, "test.chat.v1.MessageSent", "fine")->id;
	s = resolve_ok(off, "test.chat.v1.MessageSent", "fine");
	assert_int_equal(s->id, mine_id);
	assert_int_equal(s->version, 1);

	/* RecordNameStrategy: the subject is the message's full name */
	registry_free(on);
	on = client(f->url, REGISTRY_TEST_DESC, true, REGISTRY_RECORD_NAME, NULL, NULL);
	s = resolve_ok(on, "test.chat.v1.MessageSent.Attachment", NULL);
	assert_string_equal(s->subject, "test.chat.v1.MessageSent.Attachment");
	assert_int_equal(s->id, mine_id);
	registry_free(on);
	registry_free(off);
	registry_free(other);
	fixture_stop(f);
}

/* Outages at start: retried with backoff, then a clear error; a short outage is ridden out. */
static void test_outage(void **state)
{
	struct registry_config cfg = {
		.auto_register = true, .retry_for_ms = 1000, .retry_base_ms = 50};
	const struct registry_schema *s;
	struct fixture *f;
	struct registry *r;
	char url[64], err[512];
	uint8_t *buf;
	size_t len;
	long t0;
	int rc;

	(void)state;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", test_free_port());
	cfg.url = url;
	assert_int_equal(registry_read_file(REGISTRY_TEST_DESC, &buf, &len, err, sizeof(err)), 0);
	r = registry_new(&cfg, buf, len, err, sizeof(err));
	assert_non_null(r);
	t0 = ms_now();
	rc = registry_resolve(r, "test.chat.v1.MessageSent", "chat", &s, err, sizeof(err));
	print_message("down: %s\n", err);
	assert_int_equal(rc, -EHOSTUNREACH);
	assert_true(ms_now() - t0 >= 1000);
	assert_true(ms_now() - t0 < 4000);
	assert_true(registry_requests(r) >= 3);
	assert_non_null(strstr(err, "unreachable"));
	assert_non_null(strstr(err, url));
	registry_free(r);

	/* the first 4 requests get 503: the client retries through them */
	f = fixture_start("--unavailable", "4", NULL, NULL);
	cfg.url = f->url;
	cfg.retry_for_ms = 20000;
	r = registry_new(&cfg, buf, len, err, sizeof(err));
	assert_non_null(r);
	s = resolve_ok(r, "test.chat.v1.MessageSent", "chat");
	assert_true(s->id > 0);
	assert_true(registry_requests(r) >= 4 + 3);
	registry_free(r);
	fixture_stop(f);
	free(buf);
}

static int setup(void **state)
{
	(void)state;
	alarm(120); /* a hang fails the test instead of blocking ctest */
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_register_encode_decode, setup),
		cmocka_unit_test_setup(test_fixture_errors, setup),
		cmocka_unit_test_setup(test_auto_register_off, setup),
		cmocka_unit_test_setup(test_outage, setup),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
