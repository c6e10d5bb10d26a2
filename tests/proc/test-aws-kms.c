/* SPDX-License-Identifier: MIT */
/*
 * Process test of common/aws against a real moto_server (started here on a
 * free loopback port, killed in teardown): CreateKey and Encrypt through
 * aws_json_call(), aws_kms_decrypt() gives the bytes back, a corrupted blob
 * gets KMS's InvalidCiphertextException; an SQS call speaks json-1.0; and,
 * with INITIAL_NO_AUTH_ACTION_COUNT, signatures are really checked: a wrong
 * secret is refused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/aws.h"
#include "tests/proc/moto.h"

/* Unchecked requests of the signature test: CreateUser, PutUserPolicy, CreateAccessKey. */
#define NO_AUTH_COUNT 3

static int setup(void **state)
{
	alarm(120); /* a hang fails the test instead of blocking it */
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_SESSION_TOKEN");
	setenv("AWS_ACCESS_KEY_ID", "test", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "test", 1);
	*state = NULL;
	return 0;
}

static int teardown(void **state)
{
	moto_stop(*state);
	alarm(0);
	return 0;
}

static struct aws_client *client_for(const struct moto *m, const char *key, const char *secret)
{
	struct aws_creds c;
	char err[512];
	struct aws_client *cl;

	if (key) {
		memset(&c, 0, sizeof(c));
		snprintf(c.access_key, sizeof(c.access_key), "%s", key);
		snprintf(c.secret_key, sizeof(c.secret_key), "%s", secret);
	} else {
		assert_int_equal(aws_creds_load(&c, NULL, err, sizeof(err)), 0);
	}
	cl = aws_client_new("us-east-1", m->endpoint, &c);
	assert_non_null(cl);
	return cl;
}

/* A string member of a JSON body, at path a (then b when not NULL); malloc'd. */
static char *json_str(const char *body, const char *a, const char *b)
{
	cJSON *j = cJSON_Parse(body);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, a);
	char *ret;

	if (b)
		v = cJSON_GetObjectItemCaseSensitive(v, b);
	assert_true(cJSON_IsString(v));
	ret = strdup(v->valuestring);
	cJSON_Delete(j);
	return ret;
}

static char *create_key(struct aws_client *cl, long *status, char *err, size_t errlen, int *ret)
{
	char *body = NULL, *id;

	*ret = aws_json_call(cl, "kms", "TrentService.CreateKey",
			     "{\"Description\":\"ferry test-aws-kms\"}", &body, status, err,
			     errlen);
	if (*ret < 0)
		return NULL;
	id = json_str(body, "KeyMetadata", "KeyId");
	free(body);
	return id;
}

static void test_kms_roundtrip(void **state)
{
	struct moto *m = moto_start(state, NULL);
	struct aws_client *cl;
	unsigned char plain[32], got[64], blob[AWS_KMS_BLOB_MAX];
	char b64[64], err[512] = "", *body = NULL, *id, *req, *cblob;
	size_t got_len = 0, blob_len;
	long status = 0;
	int ret, n;

	cl = client_for(m, NULL, NULL);
	id = create_key(cl, &status, err, sizeof(err), &ret);
	assert_int_equal(ret, 0);
	assert_int_equal(status, 200);
	assert_non_null(id);

	assert_int_equal(RAND_bytes(plain, sizeof(plain)), 1);
	EVP_EncodeBlock((unsigned char *)b64, plain, sizeof(plain));
	assert_true(asprintf(&req, "{\"KeyId\":\"%s\",\"Plaintext\":\"%s\"}", id, b64) > 0);
	ret = aws_json_call(cl, "kms", "TrentService.Encrypt", req, &body, &status, err,
			    sizeof(err));
	assert_int_equal(ret, 0);
	free(req);
	cblob = json_str(body, "CiphertextBlob", NULL);
	free(body);
	n = EVP_DecodeBlock(blob, (unsigned char *)cblob, (int)strlen(cblob));
	assert_true(n > 0);
	blob_len =
		(size_t)n - (cblob[strlen(cblob) - 1] == '=') - (cblob[strlen(cblob) - 2] == '=');
	free(cblob);

	/* Decrypt: the same 32 bytes, with or without the key id. */
	assert_int_equal(aws_kms_decrypt(cl, blob, blob_len, NULL, got, sizeof(got), &got_len, err,
					 sizeof(err)),
			 0);
	assert_int_equal(got_len, sizeof(plain));
	assert_memory_equal(got, plain, sizeof(plain));
	memset(got, 0, sizeof(got));
	assert_int_equal(aws_kms_decrypt(cl, blob, blob_len, id, got, sizeof(got), &got_len, err,
					 sizeof(err)),
			 0);
	assert_memory_equal(got, plain, sizeof(plain));
	/* A buffer too small: refused, nothing written. */
	memset(got, 0xee, sizeof(got));
	assert_int_equal(
		aws_kms_decrypt(cl, blob, blob_len, NULL, got, 16, &got_len, err, sizeof(err)),
		-EMSGSIZE);
	assert_non_null(strstr(err, "plaintext is 32 bytes, the buffer holds 16"));
	assert_int_equal(got[0], 0xee);

	/* A corrupted blob: KMS's error, a negative return. */
	blob[blob_len - 1] ^= 0x5a;
	err[0] = 0;
	ret = aws_kms_decrypt(cl, blob, blob_len, NULL, got, sizeof(got), &got_len, err,
			      sizeof(err));
	assert_true(ret < 0);
	assert_int_equal(ret, -EIO);
	assert_non_null(strstr(err, "kms: InvalidCiphertextException"));
	assert_non_null(strstr(err, "(HTTP 400)"));

	/* Another KMS error, with its message. */
	ret = aws_json_call(cl, "kms", "TrentService.DescribeKey",
			    "{\"KeyId\":\"00000000-0000-0000-0000-000000000000\"}", &body, &status,
			    err, sizeof(err));
	assert_int_equal(ret, -EIO);
	assert_null(body);
	assert_true(status >= 400 && status < 500);
	assert_non_null(strstr(err, "kms: NotFoundException: "));

	/* SQS speaks json-1.0 through the same path. */
	ret = aws_json_call(cl, "sqs", "AmazonSQS.CreateQueue", "{\"QueueName\":\"ferry-test\"}",
			    &body, &status, err, sizeof(err));
	assert_int_equal(ret, 0);
	assert_non_null(strstr(body, "ferry-test"));
	free(body);

	free(id);
	aws_client_free(cl);
}

static void test_signature_checked(void **state)
{
	char count[8], akid[128], secret[128], wrong[128], err[512] = "", *id;
	struct aws_client *cl;
	struct moto *m;
	long status = 0;
	int ret;

	snprintf(count, sizeof(count), "%d", NO_AUTH_COUNT);
	m = moto_start(state, count);
	/* The NO_AUTH_COUNT unchecked requests: a user allowed kms:*, and its access key. */
	moto_user(m, "kms", akid, sizeof(akid), secret, sizeof(secret));

	/* From now on moto checks: the right secret passes... */
	cl = client_for(m, akid, secret);
	id = create_key(cl, &status, err, sizeof(err), &ret);
	assert_int_equal(ret, 0);
	assert_non_null(id);
	free(id);
	aws_client_free(cl);

	/* ...a wrong one is refused, and the message says why without the secret. */
	snprintf(wrong, sizeof(wrong), "%s", secret);
	wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
	cl = client_for(m, akid, wrong);
	id = create_key(cl, &status, err, sizeof(err), &ret);
	assert_null(id);
	assert_int_equal(ret, -EACCES);
	assert_int_equal(status, 403);
	assert_non_null(strstr(err, "SignatureDoesNotMatch"));
	assert_null(strstr(err, wrong));
	assert_null(strstr(err, secret));
	aws_client_free(cl);

	/* An access key moto does not know. */
	cl = client_for(m, "AKIDUNKNOWN", secret);
	id = create_key(cl, &status, err, sizeof(err), &ret);
	assert_null(id);
	assert_int_equal(ret, -EACCES);
	assert_non_null(strstr(err, "InvalidClientTokenId"));
	aws_client_free(cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kms_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signature_checked, setup, teardown),
	};
	int ret;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return ret;
}
