/* SPDX-License-Identifier: MIT */
/* Unit tests of common/aws: SigV4 against published and botocore vectors, credential sources. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/aws.h"

#define EXAMPLE_AKID   "AKIDEXAMPLE"
#define EXAMPLE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define EXAMPLE_TOKEN                                                                              \
	"AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXm"  \
	"xfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy"  \
	"0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lI" \
	"ZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

/* A temporary directory holding the shared files of one test. */
static char dir[64];
static char cred_path[128], conf_path[128];

static void unset_aws_env(void)
{
	static const char *const vars[] = {
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",	    "AWS_SESSION_TOKEN",
		"AWS_PROFILE",	     "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
	};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
}

static int setup(void **state)
{
	(void)state;
	alarm(30); /* a hang fails the test instead of blocking it */
	unset_aws_env();
	snprintf(dir, sizeof(dir), "/tmp/test-aws.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(cred_path, sizeof(cred_path), "%s/credentials", dir);
	snprintf(conf_path, sizeof(conf_path), "%s/config", dir);
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred_path, 1);
	setenv("AWS_CONFIG_FILE", conf_path, 1);
	return 0;
}

static int teardown(void **state)
{
	char p[160];

	(void)state;
	unlink(cred_path);
	unlink(conf_path);
	snprintf(p, sizeof(p), "%s/.aws/credentials", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/.aws", dir);
	rmdir(p);
	rmdir(dir);
	unset_aws_env();
	alarm(0);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static struct aws_creds example_creds(const char *token)
{
	struct aws_creds c;

	memset(&c, 0, sizeof(c));
	strcpy(c.access_key, EXAMPLE_AKID);
	strcpy(c.secret_key, EXAMPLE_SECRET);
	if (token)
		strcpy(c.session_token, token);
	return c;
}

/* The example of the SigV4 documentation ("Create a signed AWS API request"). */
static void test_sigv4_documented_example(void **state)
{
	struct aws_creds c = example_creds(NULL);
	const char *headers[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
				 NULL};
	const char *with_all[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
				  "Host: iam.amazonaws.com", "X-Amz-Date: 20150830T123600Z", NULL};
	const char *want =
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/"
		"aws4_request, SignedHeaders=content-type;host;x-amz-date, "
		"Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
	char auth[AWS_AUTHORIZATION_MAX];

	(void)state;
	assert_int_equal(aws_sigv4_sign(&c, "us-east-1", "iam", "GET", "iam.amazonaws.com", "/",
					"Action=ListUsers&Version=2010-05-08", headers, NULL, 0,
					"20150830T123600Z", auth, sizeof(auth)),
			 0);
	assert_string_equal(auth, want);
	/* Query order does not matter; Host and X-Amz-Date may come from the caller. */
	assert_int_equal(aws_sigv4_sign(&c, "us-east-1", "iam", "GET", "ignored.example", "/",
					"Version=2010-05-08&Action=ListUsers", with_all, "", 0,
					"20150830T123600Z", auth, sizeof(auth)),
			 0);
	assert_string_equal(auth, want);
	/* Anything else signs differently. */
	assert_int_equal(aws_sigv4_sign(&c, "us-east-1", "iam", "GET", "iam.amazonaws.com", "/",
					"Action=ListUsers&Version=2010-05-09", headers, NULL, 0,
					"20150830T123600Z", auth, sizeof(auth)),
			 0);
	assert_string_not_equal(auth, want);
}

/* POST with a body, a session token, an encoded path, an unsorted query, messy whitespace.
 * Expected value computed by botocore 1.43 (SigV4Auth) on the same request. */
static void test_sigv4_token_and_body(void **state)
{
	struct aws_creds c = example_creds(EXAMPLE_TOKEN);
	const char *headers[] = {"Content-Type: application/x-amz-json-1.0",
				 "X-Amz-Target: AmazonSQS.ReceiveMessage", "X-Custom:  a   b  ",
				 NULL};
	const char *body = "{\"QueueUrl\":\"https://sqs.eu-west-1.amazonaws.com/123456789012/q\","
			   "\"MaxNumberOfMessages\":10}";
	char auth[AWS_AUTHORIZATION_MAX];

	(void)state;
	assert_int_equal(aws_sigv4_sign(&c, "eu-west-1", "sqs", "POST",
					"sqs.eu-west-1.amazonaws.com", "/a%20b/c",
					"b=2&a=1&c=x%20y", headers, body, strlen(body),
					"20240102T030405Z", auth, sizeof(auth)),
			 0);
	assert_string_equal(
		auth,
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/eu-west-1/sqs/aws4_request, "
		"SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;"
		"x-amz-target;x-custom, "
		"Signature=f1c1f16d77100d90b8f2676908d6557cac1c55997ef977000aa51857efd6983b");
	/* The token is signed but never part of the Authorization value. */
	assert_null(strstr(auth, "AQoDYXdz"));
	assert_null(strstr(auth, EXAMPLE_SECRET));
}

static void test_sigv4_rejects(void **state)
{
	struct aws_creds c = example_creds(NULL);
	const char *bad_header[] = {"no colon here", NULL};
	char auth[AWS_AUTHORIZATION_MAX], date[AWS_AMZ_DATE_LEN + 1];

	(void)state;
	assert_int_equal(aws_sigv4_sign(&c, "us-east-1", "iam", "GET", "h", "/", NULL, NULL, NULL,
					0, "20150830T123600Z", auth, 40),
			 -ENOSPC);
	assert_int_equal(aws_sigv4_sign(&c, "us-east-1", "iam", "GET", "h", "/", NULL, NULL, NULL,
					0, "2015-08-30T12:36:00Z", auth, sizeof(auth)),
			 -EINVAL);
	assert_int_equal(aws_sigv4_sign(&c, "us-east-1", "iam", "GET", "h", "/", NULL, bad_header,
					NULL, 0, "20150830T123600Z", auth, sizeof(auth)),
			 -EINVAL);
	assert_int_equal(aws_sigv4_sign(&c, "us-east-1", "iam", "GET", "h", "relative", NULL, NULL,
					NULL, 0, "20150830T123600Z", auth, sizeof(auth)),
			 -EINVAL);
	c.secret_key[0] = 0;
	assert_int_equal(aws_sigv4_sign(&c, "us-east-1", "iam", "GET", "h", "/", NULL, NULL, NULL,
					0, "20150830T123600Z", auth, sizeof(auth)),
			 -EINVAL);
	aws_amz_date(1440938160ull * 1000000000ull, date);
	assert_string_equal(date, "20150830T123600Z");
}

static const char creds_file[] = "# comment\n"
				 "[default]\n"
				 "aws_access_key_id = AKIDFILEDEFAULT\n"
				 "aws_secret_access_key = secret-file-default\n"
				 "\n"
				 "[dev]\n"
				 "; another comment\n"
				 "AWS_ACCESS_KEY_ID=AKIDFILEDEV\n"
				 "aws_secret_access_key=secret-file-dev\n"
				 "aws_session_token = token-file-dev\n"
				 "[both]\n"
				 "aws_access_key_id = AKIDCREDSBOTH\n"
				 "aws_secret_access_key = secret-creds-both\n";

static const char config_file[] = "[default]\n"
				  "region = eu-west-1\n"
				  "[profile ops]\n"
				  "region = us-east-1\n"
				  "s3 =\n"
				  "  aws_access_key_id = NOT-A-TOP-LEVEL-KEY\n"
				  "aws_access_key_id = AKIDCONFOPS\n"
				  "aws_secret_access_key = secret-conf-ops\n"
				  "[profile both]\n"
				  "aws_access_key_id = AKIDCONFBOTH\n"
				  "aws_secret_access_key = secret-conf-both\n"
				  "[ops]\n"
				  "aws_access_key_id = AKIDWRONGSECTION\n"
				  "aws_secret_access_key = secret-wrong-section\n";

static void assert_no_secret(const char *err)
{
	static const char *const secrets[] = {"secret-", "token-", "env-secret", "env-token"};

	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		assert_null(strstr(err, secrets[i]));
}

static void test_creds_env_over_files(void **state)
{
	struct aws_creds c;
	char err[1024] = "";

	(void)state;
	write_file(cred_path, creds_file);
	write_file(conf_path, config_file);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
	setenv("AWS_SESSION_TOKEN", "env-token", 1);
	assert_int_equal(aws_creds_load(&c, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "AKIDENV");
	assert_string_equal(c.secret_key, "env-secret");
	assert_string_equal(c.session_token, "env-token");
	assert_int_equal(c.expires_ns, 0);
	/* AWS_PROFILE does not beat the environment's keys... */
	setenv("AWS_PROFILE", "dev", 1);
	assert_int_equal(aws_creds_load(&c, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "AKIDENV");
	/* ...but a profile asked for by name does (as in the SDKs and aws --profile). */
	assert_int_equal(aws_creds_load(&c, "dev", err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "AKIDFILEDEV");
	assert_string_equal(c.session_token, "token-file-dev");
	/* No token in the environment: none, whatever the files say. */
	unsetenv("AWS_SESSION_TOKEN");
	assert_int_equal(aws_creds_load(&c, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.session_token, "");
	/* Half-set environment: refused, naming the variable, not the value. */
	unsetenv("AWS_ACCESS_KEY_ID");
	assert_int_equal(aws_creds_load(&c, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"));
	assert_no_secret(err);
	assert_string_equal(c.secret_key, "");
}

static void test_creds_profiles(void **state)
{
	struct aws_creds c;
	char err[1024] = "";

	(void)state;
	write_file(cred_path, creds_file);
	write_file(conf_path, config_file);
	assert_int_equal(aws_creds_load(&c, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "AKIDFILEDEFAULT");
	assert_string_equal(c.secret_key, "secret-file-default");
	assert_string_equal(c.session_token, "");
	assert_int_equal(aws_creds_load(&c, "", err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "AKIDFILEDEFAULT");
	assert_int_equal(aws_creds_load(&c, "dev", err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "AKIDFILEDEV");
	assert_string_equal(c.secret_key, "secret-file-dev");
	assert_string_equal(c.session_token, "token-file-dev");
	/* The config file: [profile ops], not [ops], and not indented sub-settings. */
	assert_int_equal(aws_creds_load(&c, "ops", err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "AKIDCONFOPS");
	assert_string_equal(c.secret_key, "secret-conf-ops");
	/* The credentials file first. */
	assert_int_equal(aws_creds_load(&c, "both", err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "AKIDCREDSBOTH");
	/* AWS_PROFILE when no profile is given. */
	setenv("AWS_PROFILE", "ops", 1);
	assert_int_equal(aws_creds_load(&c, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "AKIDCONFOPS");
	assert_int_equal(aws_creds_load(&c, "dev", err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "AKIDFILEDEV");
}

static void test_creds_config_default_and_home(void **state)
{
	struct aws_creds c;
	char err[1024] = "", p[160];

	(void)state;
	/* [default] of the config file (no "profile" prefix for it). */
	write_file(conf_path, "[default]\naws_access_key_id = AKIDCONFDEFAULT\n"
			      "aws_secret_access_key = secret-conf-default\n");
	assert_int_equal(aws_creds_load(&c, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.access_key, "AKIDCONFDEFAULT");
	/* Without the *_FILE variables: $HOME/.aws/credentials. */
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unsetenv("AWS_CONFIG_FILE");
	snprintf(p, sizeof(p), "%s/.aws", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/.aws/credentials", dir);
	write_file(p,
		   "[default]\naws_access_key_id = AKIDHOME\naws_secret_access_key = secret-h\n");
	{
		char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;

		setenv("HOME", dir, 1);
		assert_int_equal(aws_creds_load(&c, NULL, err, sizeof(err)), 0);
		if (home)
			setenv("HOME", home, 1);
		else
			unsetenv("HOME");
		free(home);
	}
	assert_string_equal(c.access_key, "AKIDHOME");
}

static void test_creds_missing(void **state)
{
	struct aws_creds c;
	char err[1024] = "";

	(void)state;
	/* No files at all. */
	assert_int_equal(aws_creds_load(&c, NULL, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no AWS credentials for profile 'default'"));
	assert_non_null(strstr(err, "environment (AWS_ACCESS_KEY_ID not set)"));
	assert_non_null(strstr(err, cred_path));
	assert_non_null(strstr(err, conf_path));
	assert_non_null(strstr(err, "no such file"));
	assert_non_null(strstr(err, "IMDS"));
	/* Files without the profile, or with a section lacking the key. */
	write_file(cred_path, creds_file);
	write_file(conf_path, "[profile nokey]\nregion = eu-west-1\n");
	assert_int_equal(aws_creds_load(&c, "nokey", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no AWS credentials for profile 'nokey'"));
	assert_non_null(strstr(err, "skipped: profile 'nokey' given"));
	assert_non_null(strstr(err, "[nokey] (no such section)"));
	assert_non_null(strstr(err, "[profile nokey] (no aws_access_key_id)"));
	assert_no_secret(err);
	assert_string_equal(c.access_key, "");
	/* A key without its secret is an error, not a fall-through. */
	write_file(cred_path, "[x]\naws_access_key_id = AKIDHALF\naws_session_token = token-x\n");
	assert_int_equal(aws_creds_load(&c, "x", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "has aws_access_key_id but no aws_secret_access_key"));
	assert_no_secret(err);
	assert_string_equal(c.session_token, "");
	/* An unreadable file is an error too (unless we are root, who reads anything). */
	if (geteuid() != 0) {
		write_file(cred_path, creds_file);
		chmod(cred_path, 0);
		assert_int_equal(aws_creds_load(&c, NULL, err, sizeof(err)), -EACCES);
		assert_non_null(strstr(err, "cannot read"));
	}
	/* A value too long is refused by name. */
	{
		char big[400];

		snprintf(big, sizeof(big),
			 "[default]\naws_access_key_id = AKID\n"
			 "aws_secret_access_key = secret-%0200d\n",
			 0);
		chmod(cred_path, 0600);
		write_file(cred_path, big);
		assert_int_equal(aws_creds_load(&c, NULL, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "aws_secret_access_key is too long"));
		assert_no_secret(err);
	}
}

static void test_client_args(void **state)
{
	struct aws_creds c = example_creds(NULL);
	struct aws_client *cl;

	(void)state;
	errno = 0;
	assert_null(aws_client_new("us-east-1", "ftp://x", &c));
	assert_int_equal(errno, EINVAL);
	assert_null(aws_client_new("us-east-1", "http://x/some/path", &c));
	assert_null(aws_client_new("US EAST", NULL, &c));
	assert_null(aws_client_new("us-east-1", NULL, NULL));
	cl = aws_client_new("us-east-1", "http://127.0.0.1:1/", &c);
	assert_non_null(cl);
	aws_client_free(cl);
	aws_client_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sigv4_documented_example, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigv4_token_and_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigv4_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_creds_env_over_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_creds_profiles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_creds_config_default_and_home, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_creds_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_args, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
