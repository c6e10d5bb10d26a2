/* SPDX-License-Identifier: MIT */
/*
 * Process test of common/aws's query protocol and web identity against a
 * real moto_server, with signatures checked (INITIAL_NO_AUTH_ACTION_COUNT:
 * only the set-up calls go unchecked): STS AssumeRoleWithWebIdentity from a
 * token file gives temporary credentials that sign SNS calls; SNS
 * CreateTopic, Subscribe (an SQS queue), Publish with MessageAttributes
 * through aws_query_call(); and `ferry-envelope sns` publishes COUNT
 * envelopes that the subscribed queue then holds.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "common/aws.h"
#include "tests/proc/moto.h"

#define ENVELOPE_COUNT 250

static char tmpdir[64];

static void unset_aws_env(void)
{
	static const char *const vars[] = {
		"AWS_ACCESS_KEY_ID",
		"AWS_SECRET_ACCESS_KEY",
		"AWS_SESSION_TOKEN",
		"AWS_PROFILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_ROLE_ARN",
		"AWS_ROLE_SESSION_NAME",
		"AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_STS",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI",
	};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
}

static int setup(void **state)
{
	char p[128];

	alarm(180); /* a hang fails the test instead of blocking it */
	unset_aws_env();
	/* Nothing may come from this machine's own files or metadata. */
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-aws-query.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(p, sizeof(p), "%s/credentials", tmpdir);
	setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
	snprintf(p, sizeof(p), "%s/config", tmpdir);
	setenv("AWS_CONFIG_FILE", p, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	*state = NULL;
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	moto_stop(*state);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		return -1;
	unset_aws_env();
	alarm(0);
	return 0;
}

/* One query call that must succeed; the XML answer (malloc'd). */
static char *query_ok(struct aws_client *cl, const char *service, const char *form)
{
	char err[512] = "", *body = NULL;
	long status = 0;
	int r = aws_query_call(cl, service, form, &body, &status, err, sizeof(err));

	if (r < 0)
		fail_msg("%s %s: %d %s", service, form, r, err);
	assert_int_equal(status, 200);
	assert_non_null(body);
	return body;
}

static char *json_ok(struct aws_client *cl, const char *target, const char *json)
{
	char err[512] = "", *body = NULL;
	int r = aws_json_call(cl, "sqs", target, json, &body, NULL, err, sizeof(err));

	if (r < 0)
		fail_msg("%s: %d %s", target, r, err);
	return body;
}

static void xml_get(const char *xml, const char *tag, char *buf, size_t len)
{
	if (aws_xml_text(xml, tag, buf, len) <= 0)
		fail_msg("no <%s> in %.300s", tag, xml);
}

/* A JSON string member; into buf. */
static void json_get(const char *body, const char *a, const char *b, char *buf, size_t len)
{
	cJSON *j = cJSON_Parse(body);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, a);

	if (b)
		v = cJSON_GetObjectItemCaseSensitive(v, b);
	assert_true(cJSON_IsString(v));
	snprintf(buf, len, "%s", v->valuestring);
	cJSON_Delete(j);
}

static void test_web_identity(void **state)
{
	struct moto *m = moto_start(state, "3");
	struct aws_client *cl, *bad;
	struct aws_creds_provider *p;
	struct aws_creds c;
	char path[128], err[512] = "", *xml, arn[256];
	struct timespec ts;
	FILE *f;

	/* Unchecked set-up: a role that may use SNS (the role web identity assumes). */
	cl = moto_client(m, "test", "test");
	free(query_ok(cl, "iam",
		      "Action=CreateRole&Version=2010-05-08&RoleName=ferry-wi"
		      "&AssumeRolePolicyDocument=%7B%22Version%22%3A%222012-10-17%22%2C"
		      "%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A"
		      "%7B%22Federated%22%3A%22oidc%22%7D%2C%22Action%22%3A"
		      "%22sts%3AAssumeRoleWithWebIdentity%22%7D%5D%7D"));
	free(query_ok(cl, "iam",
		      "Action=PutRolePolicy&Version=2010-05-08&RoleName=ferry-wi&PolicyName=sns"
		      "&PolicyDocument=%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A"
		      "%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22sns%3A*%22%2C%22"
		      "Resource%22%3A%22*%22%7D%5D%7D"));
	aws_client_free(cl);

	/* As on EKS: a projected token file, the role, the STS endpoint. And a shared
	 * credentials file, which web identity comes before. */
	snprintf(path, sizeof(path), "%s/credentials", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = secret-f\n", f);
	assert_int_equal(fclose(f), 0);
	snprintf(path, sizeof(path), "%s/token", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2ln\n", f);
	assert_int_equal(fclose(f), 0);
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ferry-wi", 1);
	setenv("AWS_ROLE_SESSION_NAME", "ferry-test", 1);
	setenv("AWS_ENDPOINT_URL", m->endpoint, 1);

	/* The third (last unchecked) call: AssumeRoleWithWebIdentity, unsigned. */
	p = aws_creds_provider_new(NULL, "us-east-1");
	assert_non_null(p);
	if (aws_creds_provider_get(p, &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(aws_creds_provider_source(p), "web identity");
	assert_memory_equal(c.access_key, "ASIA", 4);
	assert_true(strlen(c.secret_key) >= 40);
	assert_true(strlen(c.session_token) > 100);
	clock_gettime(CLOCK_REALTIME, &ts);
	assert_true(c.expires_ns > (uint64_t)ts.tv_sec * 1000000000ull + 1800ull * 1000000000ull);

	/* Now every call is checked: the temporary credentials sign SNS calls. */
	cl = aws_client_new_provider("us-east-1", m->endpoint, p);
	assert_non_null(cl);
	xml = query_ok(cl, "sns", "Action=CreateTopic&Version=2010-03-31&Name=ferry-wi");
	xml_get(xml, "TopicArn", arn, sizeof(arn));
	assert_non_null(strstr(arn, ":ferry-wi"));
	free(xml);
	/* The same key with a wrong secret is refused: the check is real. */
	c.secret_key[0] = c.secret_key[0] == 'A' ? 'B' : 'A';
	bad = aws_client_new("us-east-1", m->endpoint, &c);
	assert_int_equal(aws_query_call(bad, "sns", "Action=ListTopics&Version=2010-03-31", &xml,
					NULL, err, sizeof(err)),
			 -EACCES);
	assert_non_null(strstr(err, "sns: SignatureDoesNotMatch"));
	assert_null(strstr(err, c.secret_key));
	aws_client_free(bad);
	aws_client_free(cl);
	aws_creds_provider_free(p);
}

static long queue_count(struct aws_client *cl, const char *qurl)
{
	char req[512], n[32], *body;

	snprintf(req, sizeof(req),
		 "{\"QueueUrl\":\"%s\",\"AttributeNames\":[\"ApproximateNumberOfMessages\"]}",
		 qurl);
	body = json_ok(cl, "AmazonSQS.GetQueueAttributes", req);
	json_get(body, "Attributes", "ApproximateNumberOfMessages", n, sizeof(n));
	free(body);
	return atol(n);
}

static void test_sns_publish(void **state)
{
	struct moto *m = moto_start(state, "3");
	char akid[128], secret[128], arn[256], qurl[256], qarn[256], sub[512], form[1024];
	char req[512], *xml, *body, *enc, *t_enc, cmd[1024], out[512] = "", keys[128];
	struct aws_client *cl;
	struct aws_creds_provider *p;
	struct timespec t0, t1;
	FILE *f;
	long n;

	moto_user(m, "sns,sqs", akid, sizeof(akid), secret, sizeof(secret));
	/* Credentials from the chain: the environment. */
	setenv("AWS_ACCESS_KEY_ID", akid, 1);
	setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
	p = aws_creds_provider_new(NULL, "us-east-1");
	cl = aws_client_new_provider("us-east-1", m->endpoint, p);
	assert_non_null(cl);

	/* A topic, a queue subscribed to it. */
	xml = query_ok(cl, "sns", "Action=CreateTopic&Version=2010-03-31&Name=legacy-events");
	xml_get(xml, "TopicArn", arn, sizeof(arn));
	free(xml);
	body = json_ok(cl, "AmazonSQS.CreateQueue", "{\"QueueName\":\"ferry-in\"}");
	json_get(body, "QueueUrl", NULL, qurl, sizeof(qurl));
	free(body);
	snprintf(req, sizeof(req), "{\"QueueUrl\":\"%s\",\"AttributeNames\":[\"QueueArn\"]}", qurl);
	body = json_ok(cl, "AmazonSQS.GetQueueAttributes", req);
	json_get(body, "Attributes", "QueueArn", qarn, sizeof(qarn));
	free(body);
	t_enc = aws_form_encode(arn);
	enc = aws_form_encode(qarn);
	snprintf(form, sizeof(form),
		 "Action=Subscribe&Version=2010-03-31&TopicArn=%s&Protocol=sqs&Endpoint=%s", t_enc,
		 enc);
	free(enc);
	xml = query_ok(cl, "sns", form);
	xml_get(xml, "SubscriptionArn", sub, sizeof(sub));
	free(xml);
	/* SNS envelopes, not raw delivery: ferry's ingest unwraps them. */
	enc = aws_form_encode(sub);
	snprintf(form, sizeof(form),
		 "Action=SetSubscriptionAttributes&Version=2010-03-31&SubscriptionArn=%s"
		 "&AttributeName=RawMessageDelivery&AttributeValue=false",
		 enc);
	free(enc);
	free(query_ok(cl, "sns", form));

	/* Publish with a message attribute (characters that need encoding in the body). */
	enc = aws_form_encode("{\"v\":1,\"tenant\":\"t07\",\"x\":\"a&b=c <d>\"}");
	snprintf(form, sizeof(form),
		 "Action=Publish&Version=2010-03-31&TopicArn=%s&Message=%s"
		 "&MessageAttributes.entry.1.Name=tenant"
		 "&MessageAttributes.entry.1.Value.DataType=String"
		 "&MessageAttributes.entry.1.Value.StringValue=t07",
		 t_enc, enc);
	free(enc);
	xml = query_ok(cl, "sns", form);
	{
		char id[128];

		xml_get(xml, "MessageId", id, sizeof(id));
	}
	free(xml);
	snprintf(req, sizeof(req),
		 "{\"QueueUrl\":\"%s\",\"MaxNumberOfMessages\":10,\"WaitTimeSeconds\":5}", qurl);
	body = json_ok(cl, "AmazonSQS.ReceiveMessage", req);
	{
		cJSON *j = cJSON_Parse(body),
		      *msgs = cJSON_GetObjectItemCaseSensitive(j, "Messages");
		const cJSON *m0 = cJSON_GetArrayItem(msgs, 0);
		const cJSON *b = cJSON_GetObjectItemCaseSensitive(m0, "Body");
		const cJSON *rh = cJSON_GetObjectItemCaseSensitive(m0, "ReceiptHandle");
		cJSON *note;

		assert_int_equal(cJSON_GetArraySize(msgs), 1);
		assert_true(cJSON_IsString(b));
		note = cJSON_Parse(b->valuestring);
		assert_string_equal(cJSON_GetObjectItem(note, "Message")->valuestring,
				    "{\"v\":1,\"tenant\":\"t07\",\"x\":\"a&b=c <d>\"}");
		assert_string_equal(
			cJSON_GetObjectItem(
				cJSON_GetObjectItem(cJSON_GetObjectItem(note, "MessageAttributes"),
						    "tenant"),
				"Value")
				->valuestring,
			"t07");
		cJSON_Delete(note);
		snprintf(req, sizeof(req), "{\"QueueUrl\":\"%s\",\"ReceiptHandle\":\"%s\"}", qurl,
			 rh->valuestring);
		cJSON_Delete(j);
	}
	free(body);
	free(json_ok(cl, "AmazonSQS.DeleteMessage", req));
	assert_int_equal(queue_count(cl, qurl), 0);

	/* ferry-envelope sns, credentials from the chain (the environment, as set above). */
	snprintf(keys, sizeof(keys), "%s/keys", tmpdir);
	snprintf(cmd, sizeof(cmd), "%s sns %s us-east-1 %s %s %d 4", FERRY_ENVELOPE_PATH,
		 m->endpoint, arn, keys, ENVELOPE_COUNT);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	f = popen(cmd, "r");
	assert_non_null(f);
	assert_non_null(fgets(out, sizeof(out), f));
	assert_int_equal(pclose(f), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	snprintf(req, sizeof(req), "published %d of %d messages to %s", ENVELOPE_COUNT,
		 ENVELOPE_COUNT, arn);
	assert_non_null(strstr(out, req));
	print_message("ferry-envelope sns: %d messages to moto in %.2f s\n", ENVELOPE_COUNT,
		      (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	/* moto delivers to SQS as it publishes; poll (bounded) anyway. */
	for (int i = 0; i < 100 && (n = queue_count(cl, qurl)) < ENVELOPE_COUNT; i++) {
		struct timespec ts = {0, 100 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	assert_int_equal(n, ENVELOPE_COUNT);

	/* A wrong secret: the tool fails, says why, publishes nothing more. */
	setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret", 1);
	snprintf(cmd, sizeof(cmd), "%s sns %s us-east-1 %s %s 20 4 2>&1", FERRY_ENVELOPE_PATH,
		 m->endpoint, arn, keys);
	f = popen(cmd, "r");
	assert_non_null(f);
	{
		char all[2048] = "";
		size_t got = fread(all, 1, sizeof(all) - 1, f);

		all[got] = 0;
		assert_int_not_equal(pclose(f), 0);
		assert_non_null(strstr(all, "SignatureDoesNotMatch"));
		assert_null(strstr(all, "wrong-secret"));
	}
	assert_int_equal(queue_count(cl, qurl), ENVELOPE_COUNT);

	free(t_enc);
	aws_client_free(cl);
	aws_creds_provider_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_web_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sns_publish, setup, teardown),
	};
	int ret;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return ret;
}
