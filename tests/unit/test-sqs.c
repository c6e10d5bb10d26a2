/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of common/sqs: every request body parsed back with cJSON; the
 * responses moto_server gave (fixtures captured from it: raw and SNS-wrapped
 * delivery, Binary/Number attributes, FIFO queues and an SNS FIFO topic,
 * batch partial failures; SNS signatures trimmed); every class of broken
 * message failing alone inside a good batch; queue URLs to regions.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "common/sqs.h"

/* ---- fixtures: ReceiveMessage and batch responses as moto_server 5.2 sent them ---- */

static const char FIX_RAW[] =
	"{\"Messages\": [{\"MessageId\": \"b41459e2-5931-4de5-b6b7-af93ea7d5919\", \"ReceiptH"
	"andle\": \"uksrapbxsckmggmawyesezfsfjqvxqadclfajecriseqsazhzeqvhcbzrhepkavrojrqgkqvl"
	"gxpbygjzohatmdxsxbsubhexfdlvfgqbktnkffhgxjlfanccvkamlipsuyyrazlaxxmenhjhjronldjmvyos"
	"picycwrnztwiatdgxeuqezwsowhl\", \"MD5OfBody\": \"f15d325ab0c69d11a96b75492083ffa0\","
	" \"Body\": \"raw \\\"one\\\"\", \"Attributes\": {\"SenderId\": \"AIDAIT2UOQQY3AUEKVG"
	"XU\", \"SentTimestamp\": \"1795735611632\", \"ApproximateReceiveCount\": \"1\", \"Ap"
	"proximateFirstReceiveTimestamp\": \"1795735611818\"}, \"MD5OfMessageAttributes\": \""
	"24e29492912e406591e60842b35863fd\", \"MessageAttributes\": {\"tenant\": {\"StringVal"
	"ue\": \"t42\", \"DataType\": \"String\"}, \"n\": {\"StringValue\": \"3.5\", \"DataTy"
	"pe\": \"Number\"}}}]}";

static const char FIX_RAW_BINARY[] =
	"{\"Messages\": [{\"MessageId\": \"b0840b58-117a-4f1c-ac70-74a56541e4dc\", \"ReceiptH"
	"andle\": \"zdgxhyyrtappduscvoqxaklumtadwkmqalpyyaisznxhoutrulyrzasrmseugyhqydiamfzhx"
	"ylaahidtrgmslvbyysowjhvyozvnaynwxgxeslktsxfhktgnveimlydcqakbyoeoydlvqmdybnsjfaifcvyd"
	"fhnboeomtztbbrnrtcvlmqdxesti\", \"MD5OfBody\": \"c1111bd512b29e821b120b86446026b8\","
	" \"Body\": \"bin\", \"Attributes\": {\"SenderId\": \"AIDAIT2UOQQY3AUEKVGXU\", \"Sent"
	"Timestamp\": \"1795735611974\", \"ApproximateReceiveCount\": \"1\", \"ApproximateFir"
	"stReceiveTimestamp\": \"1795735611995\"}, \"MD5OfMessageAttributes\": \"50f8cc1178f5"
	"d06bfca9d53a3a9ffc1c\", \"MessageAttributes\": {\"b\": {\"BinaryValue\": \"AAEC\", "
	"\"DataType\": \"Binary\"}, \"s\": {\"StringValue\": \"x\", \"DataType\": \"String\"}"
	"}}]}";

static const char FIX_SNS[] =
	"{\"Messages\": [{\"MessageId\": \"0cddc398-7a86-447c-abab-534a7ea8d799\", \"ReceiptH"
	"andle\": \"usjxyaxnhhcmaccfrghzvhjntmeoqwfplfvmhuqqcltghakoqrdztasyjevsodkcrnebkktgx"
	"ugzzbvjoyboexcrodzuchembolkvaurybpyjtboirqogpoiiwtltpfahygsgdbiibztviwkixuahxvpfmbkg"
	"nodlwntvhqovtwzddqmcjsizqicu\", \"MD5OfBody\": \"e07e07ea731ca4faa2dac273a486eeba\","
	" \"Body\": \"{\\n  \\\"Message\\\": \\\"hello \\\\\\\"world\\\\\\\"\\\",\\n  \\\"Mes"
	"sageAttributes\\\": {\\n    \\\"b\\\": {\\n      \\\"Type\\\": \\\"Binary\\\",\\n   "
	"   \\\"Value\\\": \\\"QUFFQw==\\\"\\n    },\\n    \\\"n\\\": {\\n      \\\"Type\\\":"
	" \\\"Number\\\",\\n      \\\"Value\\\": \\\"3.5\\\"\\n    },\\n    \\\"tenant\\\": {"
	"\\n      \\\"Type\\\": \\\"String\\\",\\n      \\\"Value\\\": \\\"t42\\\"\\n    }\\n"
	"  },\\n  \\\"MessageId\\\": \\\"12f0d07f-19ec-4f33-b8b1-69d3b61ae36f\\\",\\n  \\\"Si"
	"gnature\\\": \\\"K8SZ4Ti5DQgZ+HgG...\\\",\\n  \\\"SignatureVersion\\\": \\\"2\\\",\\"
	"n  \\\"SigningCertURL\\\": \\\"https://sns.us-east-1.amazonaws.com/SimpleNotificatio"
	"nService-1d77774693aa42a29134ab3751b81acd.pem\\\",\\n  \\\"Subject\\\": \\\"subj\\\""
	",\\n  \\\"Timestamp\\\": \\\"2026-11-26T23:26:36.526Z\\\",\\n  \\\"TopicArn\\\": \\"
	"\"arn:aws:sns:us-east-1:123456789012:topic1\\\",\\n  \\\"Type\\\": \\\"Notification"
	"\\\",\\n  \\\"UnsubscribeURL\\\": \\\"https://sns.us-east-1.amazonaws.com/?Action=Un"
	"subscribe&SubscriptionArn=arn:aws:sns:us-east-1:123456789012:topic1:2bcfbf39-05c3-41"
	"de-beaa-fcfcc21c8f55\\\"\\n}\", \"Attributes\": {\"SenderId\": \"AIDAIT2UOQQY3AUEKVG"
	"XU\", \"SentTimestamp\": \"1795735596528\", \"ApproximateReceiveCount\": \"1\", \"Ap"
	"proximateFirstReceiveTimestamp\": \"1795735601110\"}}, {\"MessageId\": \"99affdd7-05"
	"c4-4cac-be69-f35eb855c63b\", \"ReceiptHandle\": \"mhedqxwjpzmgdkxwdyofyzpnmovcrolaks"
	"nsxrcymokdgzawofsyfzmyzijtlnptcbgshalplzixzwigptnrethcqtwabwmurmjzlpsmmgdrtrjqxfralr"
	"gkdhfsqvimypofmghmlyervigbbolkbndikkzzuhykftnonxtyhifvgcpmiyainfzhi\", \"MD5OfBody\""
	": \"fdef79ca3d669231b6c77e22c83c2850\", \"Body\": \"{\\n  \\\"Message\\\": \\\"secon"
	"d\\\",\\n  \\\"MessageId\\\": \\\"4377174e-f1c0-4072-afc3-e51a2900fdfa\\\",\\n  \\\""
	"Signature\\\": \\\"d7nMIWdKWEESQD8I...\\\",\\n  \\\"SignatureVersion\\\": \\\"2\\\","
	"\\n  \\\"SigningCertURL\\\": \\\"https://sns.us-east-1.amazonaws.com/SimpleNotificat"
	"ionService-39570be7154843d6afe0464d7c8cf4c7.pem\\\",\\n  \\\"Timestamp\\\": \\\"2026"
	"-11-26T23:26:37.694Z\\\",\\n  \\\"TopicArn\\\": \\\"arn:aws:sns:us-east-1:1234567890"
	"12:topic1\\\",\\n  \\\"Type\\\": \\\"Notification\\\",\\n  \\\"UnsubscribeURL\\\": "
	"\\\"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:"
	"sns:us-east-1:123456789012:topic1:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55\\\"\\n}\", \""
	"Attributes\": {\"SenderId\": \"AIDAIT2UOQQY3AUEKVGXU\", \"SentTimestamp\": \"1795735"
	"597695\", \"ApproximateReceiveCount\": \"1\", \"ApproximateFirstReceiveTimestamp\": "
	"\"1795735601112\"}}]}";

static const char FIX_FIFO[] =
	"{\"Messages\": [{\"MessageId\": \"90cb5568-ccaf-420f-92ea-c42fafe9ddb7\", \"ReceiptH"
	"andle\": \"geuwniyhpaljmvimgzehzfosgcygxsftygkeuzohitplidxabfhluvabwkaqphcyvnwydkbso"
	"orygsfzgpyfqsgqhovnhdwnsmdcctuucgtbyoaqmiufsjaelfoysmnnungxfrxkdrrplljvviuzrmcbdescj"
	"wxbscxfmjinqeyzgbxmuoussuqjd\", \"MD5OfBody\": \"bd19836ddb62c11c55ab251ccaca5645\","
	" \"Body\": \"f1\", \"Attributes\": {\"SenderId\": \"AIDAIT2UOQQY3AUEKVGXU\", \"SentT"
	"imestamp\": \"1795735617675\", \"ApproximateReceiveCount\": \"1\", \"ApproximateFirs"
	"tReceiveTimestamp\": \"1795735617728\", \"MessageDeduplicationId\": \"3f524cdc07a11d"
	"7c6220bdb049fe8dd41b27483c96cc59b581e022d547290d69\", \"MessageGroupId\": \"g1\"}}, "
	"{\"MessageId\": \"945f4fa7-12b1-45e4-9b37-a2831a99d308\", \"ReceiptHandle\": \"pjnbq"
	"ycdfbrhkkoixutmkmfcuucznqxdmsuiigvhassgfdmvavogdcckkzihcxpayulustcgnsqkfrmfgjxkekhay"
	"jjpwgbnwavxzfpcndkpukkbqfvfstpcqbbxvipcvtfdgzcgrtriiiyyyfpoaazrcoeiqadptiyaquvyeriho"
	"lousofwvhivd\", \"MD5OfBody\": \"3667f6a0c97490758d7dc9659d01ea34\", \"Body\": \"f2"
	"\", \"Attributes\": {\"SenderId\": \"AIDAIT2UOQQY3AUEKVGXU\", \"SentTimestamp\": \"1"
	"795735617700\", \"ApproximateReceiveCount\": \"1\", \"ApproximateFirstReceiveTimesta"
	"mp\": \"1795735617730\", \"MessageDeduplicationId\": \"e4ab4e3b1493d5a997b4e51cdefba"
	"a10570ef3ea9432bd72e7b6a89654ceb7f6\", \"MessageGroupId\": \"g2\"}}]}";

static const char FIX_SNS_FIFO[] =
	"{\"Messages\": [{\"MessageId\": \"7471eafb-ec80-4f84-91f8-366ad2ebe86c\", \"ReceiptH"
	"andle\": \"gbetvvrwttvghtxqiqgkxvdgfmypdnxqxoesfrsptshlumfxkzbkdxshvfljvdfqoatrpdrak"
	"qrkdziwveohlhoqfgsbxwdnypmtbjclcnuqygpintupnrsxseoxjgnrlzjvxmgxhlvtliefmawrmologweib"
	"alsdcjgwgftoirdfvnrkvyawxtcg\", \"MD5OfBody\": \"199387c46cff9ac88d5f4330fce43985\","
	" \"Body\": \"{\\n  \\\"Message\\\": \\\"{\\\\\\\"tenant\\\\\\\":\\\\\\\"t1\\\\\\\","
	"\\\\\\\"data\\\\\\\":\\\\\\\"x\\\\\\\"}\\\",\\n  \\\"MessageAttributes\\\": {\\n    "
	"\\\"tenant\\\": {\\n      \\\"Type\\\": \\\"String\\\",\\n      \\\"Value\\\": \\\"t"
	"1\\\"\\n    }\\n  },\\n  \\\"MessageId\\\": \\\"9c3387ea-bdaa-40a0-85b0-e37857978bbe"
	"\\\",\\n  \\\"Signature\\\": \\\"G+a35fKxqj410Z9b...\\\",\\n  \\\"SignatureVersion\\"
	"\": \\\"2\\\",\\n  \\\"SigningCertURL\\\": \\\"https://sns.us-east-1.amazonaws.com/S"
	"impleNotificationService-74de861dbcd241df8123c97c2d9bbd86.pem\\\",\\n  \\\"Timestamp"
	"\\\": \\\"2026-11-26T23:30:26.778Z\\\",\\n  \\\"TopicArn\\\": \\\"arn:aws:sns:us-eas"
	"t-1:123456789012:tf.fifo\\\",\\n  \\\"Type\\\": \\\"Notification\\\",\\n  \\\"Unsubs"
	"cribeURL\\\": \\\"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&Subscripti"
	"onArn=arn:aws:sns:us-east-1:123456789012:tf.fifo:2bcfbf39-05c3-41de-beaa-fcfcc21c8f5"
	"5\\\"\\n}\", \"Attributes\": {\"SenderId\": \"AIDAIT2UOQQY3AUEKVGXU\", \"SentTimesta"
	"mp\": \"1795735826780\", \"ApproximateReceiveCount\": \"1\", \"ApproximateFirstRecei"
	"veTimestamp\": \"1795735827020\", \"MessageDeduplicationId\": \"d1\", \"MessageGroup"
	"Id\": \"grp-7\", \"SequenceNumber\": \"65506362863407578077\"}}]}";

static const char FIX_VISIBILITY_BATCH[] =
	"{\"Successful\": [{\"Id\": \"0\"}], \"Failed\": [{\"Id\": \"1\", \"SenderFault\": tr"
	"ue, \"Code\": \"ReceiptHandleIsInvalid\", \"Message\": \"The input receipt handle is"
	" invalid.\"}]}";

static const char FIX_DELETE_BATCH[] =
	"{\"Successful\": [{\"Id\": \"0\"}], \"Failed\": [{\"Id\": \"1\", \"SenderFault\": tr"
	"ue, \"Code\": \"ReceiptHandleIsInvalid\", \"Message\": \"The input receipt handle \\"
	"\"bogus\\\" is not a valid receipt handle.\"}]}";

#define QURL "https://sqs.eu-west-1.amazonaws.com/123456789012/ferry-in"

/* ---- helpers ---- */

static int bytes_eq(struct msg_bytes b, const char *s)
{
	return b.len == strlen(s) && !memcmp(b.p, s, b.len);
}

#define assert_bytes(b, s)                                                                         \
	do {                                                                                       \
		if (!bytes_eq((b), (s)))                                                           \
			fail_msg("got \"%.*s\", want \"%s\"", (int)(b).len, (const char *)(b).p,   \
				 (s));                                                             \
	} while (0)

/* The value of attribute key in m's list, as a malloc'd string; NULL when absent. */
static char *attr(const struct sqs_message *m, const char *key)
{
	struct msg_bytes v;
	int ret = msg_kv_find(m->attrs, key, &v);

	assert_true(ret >= 0);
	return ret ? strndup(v.p, v.len) : NULL;
}

static void assert_attr(const struct sqs_message *m, const char *key, const char *want)
{
	char *v = attr(m, key);

	if (!want) {
		if (v)
			fail_msg("attribute %s is \"%s\", want none", key, v);
		return;
	}
	if (!v)
		fail_msg("attribute %s missing, want \"%s\"", key, want);
	assert_string_equal(v, want);
	free(v);
}

/* The keys of m's list in order, joined by ','. */
static void attr_keys(const struct sqs_message *m, char *out, size_t cap)
{
	struct msg_kv kv;
	size_t pos = 0, used = 0;
	int ret;

	out[0] = 0;
	while ((ret = msg_kv_next(m->attrs, &pos, &kv)) == 1)
		used += (size_t)snprintf(out + used, cap - used, "%s%.*s", used ? "," : "",
					 (int)kv.key.len, (const char *)kv.key.p);
	assert_int_equal(ret, 0);
}

static cJSON *parse_back(const char *body, int len)
{
	cJSON *j;

	assert_true(len > 0);
	assert_int_equal((size_t)len, strlen(body));
	j = cJSON_Parse(body);
	assert_non_null(j);
	return j;
}

static const cJSON *get(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!v)
		fail_msg("no member %s", k);
	return v;
}

static void assert_all_list(const cJSON *a)
{
	assert_true(cJSON_IsArray(a));
	assert_int_equal(cJSON_GetArraySize(a), 1);
	assert_string_equal(cJSON_GetArrayItem(a, 0)->valuestring, "All");
}

/* ---- request bodies ---- */

static void test_receive_request(void **state)
{
	/* Quotes, backslashes and control characters survive the escaping. */
	const char *odd = "http://127.0.0.1:4566/1/q\"\\\n\t\x01\xc3\xa9";
	char *body = NULL, err[256] = "";
	cJSON *j;
	int len;

	(void)state;
	len = sqs_receive_request(QURL, 10, 20, 0, &body, err, sizeof(err));
	j = parse_back(body, len);
	assert_string_equal(get(j, "QueueUrl")->valuestring, QURL);
	assert_int_equal(get(j, "MaxNumberOfMessages")->valueint, 10);
	assert_int_equal(get(j, "WaitTimeSeconds")->valueint, 20);
	assert_null(cJSON_GetObjectItemCaseSensitive(j, "VisibilityTimeout")); /* queue default */
	assert_all_list(get(j, "MessageAttributeNames"));
	assert_all_list(get(j, "AttributeNames"));
	assert_all_list(get(j, "MessageSystemAttributeNames"));
	assert_int_equal(cJSON_GetArraySize(j), 6);
	cJSON_Delete(j);
	free(body);

	len = sqs_receive_request(odd, 1, 0, 43200, &body, err, sizeof(err));
	j = parse_back(body, len);
	assert_string_equal(get(j, "QueueUrl")->valuestring, odd);
	assert_int_equal(get(j, "MaxNumberOfMessages")->valueint, 1);
	assert_int_equal(get(j, "WaitTimeSeconds")->valueint, 0);
	assert_int_equal(get(j, "VisibilityTimeout")->valueint, 43200);
	cJSON_Delete(j);
	free(body);

	/* Out of range: refused, nothing allocated. */
	body = (char *)"untouched";
	assert_int_equal(sqs_receive_request(QURL, 0, 0, 0, &body, err, sizeof(err)), -EINVAL);
	assert_null(body);
	assert_non_null(strstr(err, "out of range"));
	assert_int_equal(sqs_receive_request(QURL, 11, 0, 0, &body, NULL, 0), -EINVAL);
	assert_int_equal(sqs_receive_request(QURL, 1, 21, 0, &body, NULL, 0), -EINVAL);
	assert_int_equal(sqs_receive_request(QURL, 1, 0, 43201, &body, NULL, 0), -EINVAL);
	assert_int_equal(sqs_receive_request(NULL, 1, 0, 0, &body, NULL, 0), -EINVAL);
	assert_int_equal(sqs_receive_request("", 1, 0, 0, &body, NULL, 0), -EINVAL);
	assert_int_equal(sqs_receive_request(QURL, 1, 0, 0, NULL, NULL, 0), -EINVAL);
}

static void test_batch_requests(void **state)
{
	/* Receipts are views: the bytes after receipt_len must not leak into the body. */
	static const char r0[] = "AQEBzbVv+/a==XXXX", r1[] = "quote\"back\\nl\nctl\x02\xe2\x82\xac";
	static char big[SQS_RECEIPT_MAX + 2];
	struct sqs_batch_entry e[SQS_BATCH_MAX + 1];
	char *body = NULL, err[256] = "";
	const cJSON *ents, *x;
	cJSON *j;
	int len;

	(void)state;
	memset(big, 'r', sizeof(big));
	memset(e, 0, sizeof(e));
	e[0] = (struct sqs_batch_entry){r0, (uint32_t)strlen(r0) - 4, 30};
	e[1] = (struct sqs_batch_entry){r1, (uint32_t)strlen(r1), 0};
	e[2] = (struct sqs_batch_entry){big, SQS_RECEIPT_MAX, SQS_VISIBILITY_MAX};

	len = sqs_delete_batch_request(QURL, e, 3, &body, err, sizeof(err));
	j = parse_back(body, len);
	assert_string_equal(get(j, "QueueUrl")->valuestring, QURL);
	ents = get(j, "Entries");
	assert_int_equal(cJSON_GetArraySize(ents), 3);
	for (int i = 0; i < 3; i++) {
		char id[16];

		x = cJSON_GetArrayItem(ents, i);
		snprintf(id, sizeof(id), "%d", i);
		assert_string_equal(get(x, "Id")->valuestring, id);
		assert_int_equal(strlen(get(x, "ReceiptHandle")->valuestring), e[i].receipt_len);
		assert_memory_equal(get(x, "ReceiptHandle")->valuestring, e[i].receipt,
				    e[i].receipt_len);
		assert_null(cJSON_GetObjectItemCaseSensitive(x, "VisibilityTimeout"));
		assert_int_equal(cJSON_GetArraySize(x), 2);
	}
	cJSON_Delete(j);
	free(body);

	len = sqs_visibility_batch_request(QURL, e, 3, &body, err, sizeof(err));
	j = parse_back(body, len);
	ents = get(j, "Entries");
	assert_int_equal(cJSON_GetArraySize(ents), 3);
	assert_string_equal(get(cJSON_GetArrayItem(ents, 0), "ReceiptHandle")->valuestring,
			    "AQEBzbVv+/a==");
	assert_string_equal(get(cJSON_GetArrayItem(ents, 1), "ReceiptHandle")->valuestring, r1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(get(cJSON_GetArrayItem(ents, i), "VisibilityTimeout")->valueint,
				 e[i].visibility_s);
	cJSON_Delete(j);
	free(body);

	/* Ten entries, Ids "0".."9". */
	for (int i = 0; i < SQS_BATCH_MAX + 1; i++)
		e[i] = (struct sqs_batch_entry){r0, 4, (uint32_t)i};
	len = sqs_visibility_batch_request(QURL, e, SQS_BATCH_MAX, &body, err, sizeof(err));
	j = parse_back(body, len);
	ents = get(j, "Entries");
	assert_int_equal(cJSON_GetArraySize(ents), SQS_BATCH_MAX);
	assert_string_equal(get(cJSON_GetArrayItem(ents, 9), "Id")->valuestring, "9");
	assert_int_equal(get(cJSON_GetArrayItem(ents, 9), "VisibilityTimeout")->valueint, 9);
	cJSON_Delete(j);
	free(body);

	/* Refused: too many, none, a receipt too long or empty, a visibility out of range. */
	assert_int_equal(
		sqs_delete_batch_request(QURL, e, SQS_BATCH_MAX + 1, &body, err, sizeof(err)),
		-EINVAL);
	assert_null(body);
	assert_int_equal(sqs_delete_batch_request(QURL, e, 0, &body, NULL, 0), -EINVAL);
	assert_int_equal(sqs_delete_batch_request(QURL, NULL, 1, &body, NULL, 0), -EINVAL);
	e[1] = (struct sqs_batch_entry){big, SQS_RECEIPT_MAX + 1, 0};
	assert_int_equal(sqs_delete_batch_request(QURL, e, 2, &body, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "entry 1: receipt handle of 1025 bytes"));
	e[1] = (struct sqs_batch_entry){r0, 0, 0};
	assert_int_equal(sqs_delete_batch_request(QURL, e, 2, &body, NULL, 0), -EINVAL);
	e[1] = (struct sqs_batch_entry){NULL, 4, 0};
	assert_int_equal(sqs_delete_batch_request(QURL, e, 2, &body, NULL, 0), -EINVAL);
	e[1] = (struct sqs_batch_entry){r0, 4, SQS_VISIBILITY_MAX + 1};
	assert_int_equal(sqs_visibility_batch_request(QURL, e, 2, &body, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "visibility 43201"));
	/* DeleteMessageBatch has no visibility: the field is ignored there. */
	len = sqs_delete_batch_request(QURL, e, 2, &body, NULL, 0);
	assert_true(len > 0);
	assert_null(strstr(body, "Visibility"));
	free(body);
}

static void test_queue_attrs(void **state)
{
	struct sqs_queue_attrs a;
	char *body = NULL, err[256] = "";
	const cJSON *names;
	cJSON *j;
	int len;

	(void)state;
	len = sqs_queue_attrs_request(QURL, &body, err, sizeof(err));
	j = parse_back(body, len);
	assert_string_equal(get(j, "QueueUrl")->valuestring, QURL);
	names = get(j, "AttributeNames");
	assert_int_equal(cJSON_GetArraySize(names), 2);
	assert_string_equal(cJSON_GetArrayItem(names, 0)->valuestring, "VisibilityTimeout");
	assert_string_equal(cJSON_GetArrayItem(names, 1)->valuestring, "FifoQueue");
	cJSON_Delete(j);
	free(body);
	assert_int_equal(sqs_queue_attrs_request(NULL, &body, NULL, 0), -EINVAL);

	/* As moto answers: a FIFO queue, a standard one (no FifoQueue at all). */
	const char *fifo = "{\"Attributes\": {\"VisibilityTimeout\": \"30\", \"FifoQueue\": "
			   "\"true\", \"ApproximateNumberOfMessages\": \"0\"}}";
	const char *std = "{\"Attributes\": {\"VisibilityTimeout\": \"45\"}}";
	assert_int_equal(sqs_queue_attrs_parse(fifo, strlen(fifo), &a, err, sizeof(err)), 0);
	assert_int_equal(a.visibility_s, 30);
	assert_int_equal(a.fifo, 1);
	assert_int_equal(sqs_queue_attrs_parse(std, strlen(std), &a, err, sizeof(err)), 0);
	assert_int_equal(a.visibility_s, 45);
	assert_int_equal(a.fifo, 0);

	static const char *const bad[] = {
		"not json",
		"{}",
		"{\"Attributes\": []}",
		"{\"Attributes\": {}}",
		"{\"Attributes\": {\"VisibilityTimeout\": 30}}",
		"{\"Attributes\": {\"VisibilityTimeout\": \"-1\"}}",
		"{\"Attributes\": {\"VisibilityTimeout\": \"43201\"}}",
		"{\"Attributes\": {\"VisibilityTimeout\": \"30\", \"FifoQueue\": \"yes\"}}",
		"{\"Attributes\": {\"VisibilityTimeout\": \"30\", \"FifoQueue\": true}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		if (sqs_queue_attrs_parse(bad[i], strlen(bad[i]), &a, err, sizeof(err)) != -EPROTO)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(strstr(err, "GetQueueAttributes"));
	}
}

/* ---- ReceiveMessage: captured responses ---- */

static void test_receive_raw(void **state)
{
	struct sqs_receive r;
	char err[256] = "", keys[256];
	const struct sqs_message *m;

	(void)state;
	assert_int_equal(sqs_receive_parse(FIX_RAW, strlen(FIX_RAW), &r, err, sizeof(err)), 1);
	assert_int_equal(r.n, 1);
	m = &r.msgs[0];
	assert_null(m->error);
	assert_int_equal(m->sns, 0);
	assert_bytes(m->message_id, "b41459e2-5931-4de5-b6b7-af93ea7d5919");
	assert_int_equal(m->receipt_handle.len, 185);
	assert_memory_equal(m->receipt_handle.p, "uksrapbxsc", 10);
	assert_bytes(m->body, "raw \"one\"");
	assert_bytes(m->raw_body, "raw \"one\"");
	assert_int_equal(m->group_id.len, 0);
	assert_int_equal(m->sequence_number.len, 0);
	assert_int_equal(m->receive_count, 1);
	assert_int_equal(m->sent_timestamp_ms, 1795735611632ull);
	attr_keys(m, keys, sizeof(keys));
	assert_string_equal(keys, "tenant,n"); /* no sns.*, no sqs.*: raw, standard queue */
	assert_attr(m, "tenant", "t42");
	assert_attr(m, "n", "3.5");
	sqs_receive_free(&r);
	sqs_receive_free(&r); /* safe twice */

	/* A Binary attribute stays the base64 text SQS gave. */
	assert_int_equal(
		sqs_receive_parse(FIX_RAW_BINARY, strlen(FIX_RAW_BINARY), &r, err, sizeof(err)), 1);
	m = &r.msgs[0];
	assert_null(m->error);
	assert_bytes(m->body, "bin");
	assert_attr(m, "b", "AAEC");
	assert_attr(m, "s", "x");
	sqs_receive_free(&r);
}

static void test_receive_sns(void **state)
{
	struct sqs_receive r;
	char err[256] = "", keys[256];
	const struct sqs_message *m;

	(void)state;
	assert_int_equal(sqs_receive_parse(FIX_SNS, strlen(FIX_SNS), &r, err, sizeof(err)), 2);
	m = &r.msgs[0];
	assert_null(m->error);
	assert_int_equal(m->sns, 1);
	assert_bytes(m->message_id, "0cddc398-7a86-447c-abab-534a7ea8d799");
	assert_bytes(m->body, "hello \"world\"");
	assert_true(m->raw_body.len > 300);
	assert_memory_equal(m->raw_body.p, "{\n  \"Message\": \"hello \\\"world\\\"\"", 32);
	assert_int_equal(m->receive_count, 1);
	assert_int_equal(m->sent_timestamp_ms, 1795735596528ull);
	attr_keys(m, keys, sizeof(keys));
	assert_string_equal(keys, "sns.TopicArn,sns.MessageId,sns.Subject,b,n,tenant");
	assert_attr(m, SNS_ATTR_TOPIC_ARN, "arn:aws:sns:us-east-1:123456789012:topic1");
	assert_attr(m, SNS_ATTR_MSG_ID, "12f0d07f-19ec-4f33-b8b1-69d3b61ae36f");
	assert_attr(m, SNS_ATTR_SUBJECT, "subj");
	assert_attr(m, "b", "QUFFQw==");
	assert_attr(m, "n", "3.5");
	assert_attr(m, "tenant", "t42");
	assert_attr(m, SQS_ATTR_GROUP_ID, NULL);

	/* No Subject, no attributes. */
	m = &r.msgs[1];
	assert_null(m->error);
	assert_int_equal(m->sns, 1);
	assert_bytes(m->body, "second");
	attr_keys(m, keys, sizeof(keys));
	assert_string_equal(keys, "sns.TopicArn,sns.MessageId");
	sqs_receive_free(&r);
}

static void test_receive_fifo(void **state)
{
	struct sqs_receive r;
	char err[256] = "", keys[256];
	const struct sqs_message *m;

	(void)state;
	assert_int_equal(sqs_receive_parse(FIX_FIFO, strlen(FIX_FIFO), &r, err, sizeof(err)), 2);
	for (int i = 0; i < 2; i++) {
		m = &r.msgs[i];
		assert_null(m->error);
		assert_int_equal(m->sns, 0);
		assert_bytes(m->body, i ? "f2" : "f1");
		assert_bytes(m->group_id, i ? "g2" : "g1");
		assert_attr(m, SQS_ATTR_GROUP_ID, i ? "g2" : "g1");
		attr_keys(m, keys, sizeof(keys));
		assert_string_equal(keys, "sqs.MessageGroupId");
	}
	sqs_receive_free(&r);

	/* An SNS FIFO topic into a FIFO queue: both kinds of added attributes. */
	assert_int_equal(
		sqs_receive_parse(FIX_SNS_FIFO, strlen(FIX_SNS_FIFO), &r, err, sizeof(err)), 1);
	m = &r.msgs[0];
	assert_null(m->error);
	assert_int_equal(m->sns, 1);
	assert_bytes(m->body, "{\"tenant\":\"t1\",\"data\":\"x\"}");
	assert_bytes(m->group_id, "grp-7");
	assert_bytes(m->sequence_number, "65506362863407578077");
	attr_keys(m, keys, sizeof(keys));
	assert_string_equal(keys, "sqs.MessageGroupId,sns.TopicArn,sns.MessageId,tenant");
	assert_attr(m, SNS_ATTR_TOPIC_ARN, "arn:aws:sns:us-east-1:123456789012:tf.fifo");
	assert_attr(m, "tenant", "t1");
	sqs_receive_free(&r);
}

/* ---- ReceiveMessage: broken messages, each alone in a good batch ---- */

static cJSON *msg_new(const char *id, const char *receipt, const char *body)
{
	cJSON *m = cJSON_CreateObject(), *a = cJSON_AddObjectToObject(m, "Attributes");

	if (id)
		cJSON_AddStringToObject(m, "MessageId", id);
	if (receipt)
		cJSON_AddStringToObject(m, "ReceiptHandle", receipt);
	if (body)
		cJSON_AddStringToObject(m, "Body", body);
	cJSON_AddStringToObject(a, "ApproximateReceiveCount", "3");
	cJSON_AddStringToObject(a, "SentTimestamp", "1700000000123");
	return m;
}

/* An SNS envelope text: {Type, TopicArn, MessageId, Message, ...} with field set to raw JSON. */
static char *envelope(const char *field, const char *raw_json)
{
	cJSON *e = cJSON_CreateObject();
	char *s;

	cJSON_AddStringToObject(e, "Type", "Notification");
	cJSON_AddStringToObject(e, "MessageId", "sns-id");
	cJSON_AddStringToObject(e, "TopicArn", "arn:aws:sns:eu-west-1:1:t");
	cJSON_AddStringToObject(e, "Message", "payload");
	if (field) {
		cJSON_DeleteItemFromObjectCaseSensitive(e, field);
		if (raw_json)
			cJSON_AddItemToObject(e, field, cJSON_Parse(raw_json));
	}
	s = cJSON_PrintUnformatted(e);
	cJSON_Delete(e);
	return s;
}

struct broken {
	const char *error; /* NULL: must parse fine */
	cJSON *msg;
};

/* Parse {"Messages":[good, case, good]} and check the case alone carries its error. */
static void check_alone(const struct broken *b, struct sqs_receive *r,
			const struct sqs_message **ret)
{
	cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "Messages");
	char err[256] = "", *text;

	cJSON_AddItemToArray(arr, msg_new("good-0", "rh-0", "body 0"));
	cJSON_AddItemToArray(arr, b->msg);
	cJSON_AddItemToArray(arr, msg_new("good-2", "rh-2", "body 2"));
	text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	assert_int_equal(sqs_receive_parse(text, strlen(text), r, err, sizeof(err)), 3);
	free(text);
	for (int i = 0; i < 3; i += 2) {
		char id[24], body[24];

		snprintf(id, sizeof(id), "good-%d", i);
		snprintf(body, sizeof(body), "body %d", i);
		assert_null(r->msgs[i].error);
		assert_bytes(r->msgs[i].message_id, id);
		assert_bytes(r->msgs[i].body, body);
		assert_int_equal(r->msgs[i].receive_count, 3);
		assert_int_equal(r->msgs[i].sent_timestamp_ms, 1700000000123ull);
	}
	*ret = &r->msgs[1];
	if (!b->error) {
		if ((*ret)->error)
			fail_msg("unexpected error: %s", (*ret)->error);
		return;
	}
	if (!(*ret)->error)
		fail_msg("accepted, want \"%s\"", b->error);
	assert_string_equal((*ret)->error, b->error);
	assert_int_equal((*ret)->attrs.len, 0);
	assert_int_equal((*ret)->sns, 0);
	assert_true((*ret)->body.p == (*ret)->raw_body.p &&
		    (*ret)->body.len == (*ret)->raw_body.len);
}

static cJSON *with(cJSON *m, const char *key, cJSON *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(m, key);
	cJSON_AddItemToObject(m, key, v);
	return m;
}

static cJSON *env_msg(const char *field, const char *raw_json)
{
	char *e = envelope(field, raw_json);
	cJSON *m = msg_new("id-1", "rh-1", e);

	free(e);
	return m;
}

static cJSON *sqs_attr_msg(const char *raw_attrs)
{
	return with(msg_new("id-1", "rh-1", "b"), "MessageAttributes", cJSON_Parse(raw_attrs));
}

static void test_receive_broken(void **state)
{
	static char longrh[SQS_RECEIPT_MAX + 2];
	const struct sqs_message *m;
	struct sqs_receive r;

	(void)state;
	memset(longrh, 'h', SQS_RECEIPT_MAX + 1);
	const struct broken cases[] = {
		{"receipt handle longer than 1024", msg_new("id-1", longrh, "b")},
		{"ReceiptHandle missing or empty", msg_new("id-1", NULL, "b")},
		{"ReceiptHandle missing or empty", msg_new("id-1", "", "b")},
		{"MessageId missing or not a string", msg_new(NULL, "rh-1", "b")},
		{"Body missing or not a string", msg_new("id-1", "rh-1", NULL)},
		{"Body missing or not a string",
		 with(msg_new("id-1", "rh-1", NULL), "Body", cJSON_CreateNumber(5))},
		{"message is not a JSON object", cJSON_CreateString("x")},
		{"Attributes is not an object",
		 with(msg_new("id-1", "rh-1", "b"), "Attributes", cJSON_CreateArray())},
		{"ApproximateReceiveCount is not a number",
		 with(msg_new("id-1", "rh-1", "b"), "Attributes",
		      cJSON_Parse("{\"ApproximateReceiveCount\":\"x1\"}"))},
		{"SentTimestamp is not a number",
		 with(msg_new("id-1", "rh-1", "b"), "Attributes",
		      cJSON_Parse("{\"SentTimestamp\":99999999999999999999999}"))},
		{"MessageGroupId is not a string", with(msg_new("id-1", "rh-1", "b"), "Attributes",
							cJSON_Parse("{\"MessageGroupId\":7}"))},
		/* SQS message attributes */
		{"MessageAttributes is not an object", sqs_attr_msg("[]")},
		{"message attribute without a DataType",
		 sqs_attr_msg("{\"a\":{\"StringValue\":\"v\"}}")},
		{"message attribute of an unknown DataType",
		 sqs_attr_msg("{\"a\":{\"DataType\":\"Blob\",\"StringValue\":\"v\"}}")},
		{"message attribute without the value its DataType names",
		 sqs_attr_msg("{\"a\":{\"DataType\":\"Binary\",\"StringValue\":\"v\"}}")},
		{"message attribute without the value its DataType names",
		 sqs_attr_msg("{\"a\":{\"DataType\":\"Number\"}}")},
		/* things that look like envelopes but are broken */
		{"SNS envelope: Message is not a string", env_msg("Message", "5")},
		{"SNS envelope: Message is not a string", env_msg("Message", NULL)},
		{"SNS envelope: Message is not a string", env_msg("Message", "{\"a\":1}")},
		{"SNS envelope: Type is not \"Notification\"",
		 env_msg("Type", "\"SubscriptionConfirmation\"")},
		{"SNS envelope: Type is not \"Notification\"", env_msg("Type", "null")},
		{"SNS envelope: TopicArn is not a string", env_msg("TopicArn", "1")},
		{"SNS envelope: MessageId is not a string", env_msg("MessageId", NULL)},
		{"SNS envelope: Subject is not a string", env_msg("Subject", "[]")},
		{"SNS envelope: MessageAttributes is not an object",
		 env_msg("MessageAttributes", "\"x\"")},
		{"SNS envelope: a message attribute lacks a string Type or Value",
		 env_msg("MessageAttributes", "{\"a\":{\"Type\":\"String\"}}")},
		{"SNS envelope: a message attribute lacks a string Type or Value",
		 env_msg("MessageAttributes", "{\"a\":{\"Type\":\"Number\",\"Value\":3}}")},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_alone(&cases[i], &r, &m);
		sqs_receive_free(&r);
	}

	/* A broken message still shows what can be read, so it can be dead-lettered and deleted. */
	const struct broken keep = {"SNS envelope: Message is not a string",
				    env_msg("Message", "5")};
	check_alone(&keep, &r, &m);
	assert_bytes(m->message_id, "id-1");
	assert_bytes(m->receipt_handle, "rh-1");
	assert_memory_equal(m->raw_body.p, "{\"Type\":\"Notification\"", 22);
	assert_int_equal(m->receive_count, 3);
	sqs_receive_free(&r);
	const struct broken big = {"receipt handle longer than 1024", msg_new("id-1", longrh, "b")};
	check_alone(&big, &r, &m);
	assert_int_equal(m->receipt_handle.len, SQS_RECEIPT_MAX + 1);
	sqs_receive_free(&r);
}

/* Bodies that are not SNS envelopes are raw messages, not errors. */
static void test_receive_not_envelopes(void **state)
{
	static const char *const bodies[] = {
		"plain text with \"Type\" and \"TopicArn\" in it",
		"{\"Type\":\"Notification\",\"TopicArn\":",	 /* not JSON */
		"{\"Type\":\"Notification\",\"Message\":\"m\"}", /* no TopicArn */
		"{\"TopicArn\":\"arn\",\"Message\":\"m\"}",	 /* no Type */
		"[\"Type\",\"TopicArn\"]",
		"{\"k\":{\"Type\":\"Notification\",\"TopicArn\":\"a\"}}", /* nested, not top level
									   */
		"",
	};
	const struct sqs_message *m;
	struct sqs_receive r;

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct broken b = {NULL, sqs_attr_msg("{\"t\":{\"DataType\":\"String\","
						      "\"StringValue\":\"v\"}}")};

		with(b.msg, "Body", cJSON_CreateString(bodies[i]));
		check_alone(&b, &r, &m);
		assert_int_equal(m->sns, 0);
		assert_bytes(m->body, bodies[i]);
		assert_attr(m, "t", "v");
		sqs_receive_free(&r);
	}

	/* A null Subject is no Subject; null MessageAttributes are none; custom types are fine. */
	struct broken b = {NULL, env_msg("Subject", "null")};
	check_alone(&b, &r, &m);
	assert_int_equal(m->sns, 1);
	assert_bytes(m->body, "payload");
	assert_attr(m, SNS_ATTR_SUBJECT, NULL);
	assert_attr(m, SNS_ATTR_MSG_ID, "sns-id");
	sqs_receive_free(&r);
	b.msg = env_msg("MessageAttributes", "null");
	check_alone(&b, &r, &m);
	assert_int_equal(m->sns, 1);
	sqs_receive_free(&r);
	b.msg = sqs_attr_msg("{\"a\":{\"DataType\":\"Number.int\",\"StringValue\":\"7\"},"
			     "\"z\":{\"DataType\":\"Binary.gz\",\"BinaryValue\":\"AA==\"}}");
	check_alone(&b, &r, &m);
	assert_attr(m, "a", "7");
	assert_attr(m, "z", "AA==");
	sqs_receive_free(&r);

	/* A producer's attribute named like ours does not shadow ours. */
	b.msg = env_msg("MessageAttributes",
			"{\"sns.TopicArn\":{\"Type\":\"String\",\"Value\":\"spoof\"}}");
	check_alone(&b, &r, &m);
	assert_attr(m, SNS_ATTR_TOPIC_ARN, "arn:aws:sns:eu-west-1:1:t");
	sqs_receive_free(&r);
}

static void test_receive_whole_response(void **state)
{
	static const char *const bad[] = {
		"",
		"not json",
		"[]",
		"\"Messages\"",
		"{\"Messages\":{}}",
		"{\"Messages\":\"x\"}",
		"{\"QueueUrl\":\"https://sqs.us-east-1.amazonaws.com/1/q\"}", /* another action's */
		"{\"Messages\":[",
	};
	struct sqs_receive r;
	char err[256], eleven[1024];
	size_t used;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		if (sqs_receive_parse(bad[i], strlen(bad[i]), &r, err, sizeof(err)) != -EPROTO)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(strstr(err, "ReceiveMessage"));
		assert_int_equal(r.n, 0);
		sqs_receive_free(&r);
	}
	used = (size_t)snprintf(eleven, sizeof(eleven), "{\"Messages\":[");
	for (int i = 0; i < SQS_BATCH_MAX + 1; i++)
		used += (size_t)snprintf(
			eleven + used, sizeof(eleven) - used,
			"%s{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"b\"}",
			i ? "," : "");
	snprintf(eleven + used, sizeof(eleven) - used, "]}");
	assert_int_equal(sqs_receive_parse(eleven, strlen(eleven), &r, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "11 messages"));
	sqs_receive_free(&r);

	/* Nothing to receive. */
	assert_int_equal(sqs_receive_parse("{}", 2, &r, err, sizeof(err)), 0);
	sqs_receive_free(&r);
	assert_int_equal(sqs_receive_parse("{\"Messages\":[]}", 15, &r, err, sizeof(err)), 0);
	sqs_receive_free(&r);
	/* The length is honoured: no NUL needed, bytes after it ignored. */
	assert_int_equal(sqs_receive_parse("{}garbage", 2, &r, err, sizeof(err)), 0);
	sqs_receive_free(&r);
	assert_int_equal(sqs_receive_parse(NULL, 0, &r, err, sizeof(err)), -EINVAL);
	assert_int_equal(sqs_receive_parse("{}", 2, NULL, err, sizeof(err)), -EINVAL);
	sqs_receive_free(NULL);
}

/* ---- batch results ---- */

static void test_batch_parse(void **state)
{
	struct sqs_batch_result b;
	char err[256] = "";

	(void)state;
	/* As moto answered a valid and a bogus receipt handle. */
	assert_int_equal(sqs_batch_parse(FIX_VISIBILITY_BATCH, strlen(FIX_VISIBILITY_BATCH), 2, &b,
					 err, sizeof(err)),
			 0);
	assert_int_equal(b.n, 2);
	assert_int_equal(b.ok, 1);
	assert_int_equal(b.failed, 1);
	assert_int_equal(b.missing, 0);
	assert_int_equal(b.e[0].state, SQS_ENTRY_OK);
	assert_int_equal(b.e[1].state, SQS_ENTRY_FAILED);
	assert_int_equal(b.e[1].sender_fault, 1);
	assert_string_equal(b.e[1].code, "ReceiptHandleIsInvalid");
	assert_string_equal(b.e[1].message, "The input receipt handle is invalid.");
	assert_int_equal(sqs_batch_parse(FIX_DELETE_BATCH, strlen(FIX_DELETE_BATCH), 2, &b, err,
					 sizeof(err)),
			 0);
	assert_int_equal(b.e[0].state, SQS_ENTRY_OK);
	assert_int_equal(b.e[1].state, SQS_ENTRY_FAILED);
	assert_string_equal(b.e[1].code, "ReceiptHandleIsInvalid");
	assert_non_null(strstr(b.e[1].message, "\"bogus\" is not a valid receipt handle"));

	/* A receiver fault, no Message, an entry not named, a Message cut to fit. */
	char text[1024], longmsg[400];

	memset(longmsg, 'm', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = 0;
	snprintf(text, sizeof(text),
		 "{\"Successful\":[{\"Id\":\"3\"}],\"Failed\":[{\"Id\":\"0\",\"SenderFault\":false,"
		 "\"Code\":\"InternalError\"},{\"Id\":\"1\",\"SenderFault\":true,\"Code\":\"X\","
		 "\"Message\":\"%s\"}]}",
		 longmsg);
	assert_int_equal(sqs_batch_parse(text, strlen(text), 5, &b, err, sizeof(err)), 0);
	assert_int_equal(b.ok, 1);
	assert_int_equal(b.failed, 2);
	assert_int_equal(b.missing, 2);
	assert_int_equal(b.e[0].state, SQS_ENTRY_FAILED);
	assert_int_equal(b.e[0].sender_fault, 0);
	assert_string_equal(b.e[0].code, "InternalError");
	assert_string_equal(b.e[0].message, "");
	assert_int_equal(strlen(b.e[1].message), sizeof(b.e[1].message) - 1);
	assert_int_equal(b.e[2].state, SQS_ENTRY_MISSING);
	assert_int_equal(b.e[3].state, SQS_ENTRY_OK);
	assert_int_equal(b.e[4].state, SQS_ENTRY_MISSING);
	/* All fine: Failed may be absent (real SQS) or empty. */
	assert_int_equal(
		sqs_batch_parse("{\"Successful\":[{\"Id\":\"0\"}]}", 27, 1, &b, err, sizeof(err)),
		0);
	assert_int_equal(b.ok, 1);
	assert_int_equal(sqs_batch_parse("{\"Successful\":[{\"Id\":\"0\"}],\"Failed\":[]}", 39, 1,
					 &b, err, sizeof(err)),
			 0);
	assert_int_equal(b.ok, 1);

	static const char *const bad[] = {
		"not json",
		"[]",
		"{\"Successful\":{}}",
		"{\"Failed\":\"x\"}",
		"{\"Successful\":[{\"Id\":\"2\"}]}",		    /* beyond n */
		"{\"Successful\":[{\"Id\":\"01\"}]}",		    /* not as we wrote it */
		"{\"Successful\":[{\"Id\":1}]}",		    /* not a string */
		"{\"Successful\":[{}]}",			    /* no Id */
		"{\"Successful\":[{\"Id\":\"0\"},{\"Id\":\"0\"}]}", /* twice */
		"{\"Successful\":[{\"Id\":\"0\"}],\"Failed\":[{\"Id\":\"0\",\"SenderFault\":true,"
		"\"Code\":\"X\"}]}",				      /* both */
		"{\"Failed\":[{\"Id\":\"1\",\"SenderFault\":true}]}", /* no Code */
		"{\"Failed\":[{\"Id\":\"1\",\"Code\":\"X\"}]}",	      /* no SenderFault */
		"{\"Failed\":[{\"Id\":\"1\",\"SenderFault\":\"true\",\"Code\":\"X\"}]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		if (sqs_batch_parse(bad[i], strlen(bad[i]), 2, &b, err, sizeof(err)) != -EPROTO)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(strstr(err, "batch result"));
		assert_int_equal(b.ok + b.failed, 0);
	}
	assert_int_equal(sqs_batch_parse("{}", 2, 0, &b, err, sizeof(err)), -EINVAL);
	assert_int_equal(sqs_batch_parse("{}", 2, SQS_BATCH_MAX + 1, &b, err, sizeof(err)),
			 -EINVAL);
}

/* ---- regions ---- */

static void test_region(void **state)
{
	static const struct {
		const char *url, *region;
	} ok[] = {
		{"https://sqs.us-east-1.amazonaws.com/123456789012/q", "us-east-1"},
		{"https://sqs.eu-central-2.amazonaws.com/123456789012/q.fifo", "eu-central-2"},
		{"https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q", "cn-north-1"},
		{"https://ap-southeast-2.queue.amazonaws.com/123456789012/q", "ap-southeast-2"},
		{"https://queue.amazonaws.com/123456789012/q", "us-east-1"},
		{"https://sqs-fips.us-gov-west-1.amazonaws.com/1/q", "us-gov-west-1"},
		{"https://sqs.eu-west-1.api.aws/1/q", "eu-west-1"},
		{"HTTPS://SQS.EU-WEST-3.AMAZONAWS.COM/1/q", "eu-west-3"},
		{"http://sqs.us-west-2.amazonaws.com:443/1/q", "us-west-2"},
		{"https://sqs.us-west-2.amazonaws.com", "us-west-2"},
		{"https://sqs.us-west-2.amazonaws.com./1/q", "us-west-2"},
	};
	static const char *const bad[] = {
		"http://127.0.0.1:4566/000000000000/q",
		"http://localhost:4566/000000000000/q",
		"http://sqs.us-east-1.localhost.localstack.cloud:4566/000000000000/q",
		"https://sqs.us-east-1.amazonaws.com.evil.example/1/q",
		"https://sqs..amazonaws.com/1/q",
		"https://sqs.amazonaws.com/1/q",
		"https://sqs.us_east.amazonaws.com/1/q",
		"https://user@sqs.us-east-1.amazonaws.com/1/q",
		"ftp://sqs.us-east-1.amazonaws.com/1/q",
		"sqs.us-east-1.amazonaws.com/1/q",
		"https:///1/q",
		"",
	};
	char region[SQS_REGION_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		memset(region, 0, sizeof(region));
		if (sqs_region_from_url(ok[i].url, region, sizeof(region)))
			fail_msg("refused: %s", ok[i].url);
		assert_string_equal(region, ok[i].region);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (sqs_region_from_url(bad[i], region, sizeof(region)) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
	assert_int_equal(sqs_region_from_url(ok[0].url, region, 9),
			 -ENOSPC); /* "us-east-1" + NUL */
	assert_int_equal(sqs_region_from_url(ok[0].url, region, 10), 0);
	assert_int_equal(sqs_region_from_url(NULL, region, 10), -EINVAL);
	assert_int_equal(sqs_region_from_url(ok[0].url, NULL, 10), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_receive_request),
		cmocka_unit_test(test_batch_requests),
		cmocka_unit_test(test_queue_attrs),
		cmocka_unit_test(test_receive_raw),
		cmocka_unit_test(test_receive_sns),
		cmocka_unit_test(test_receive_fifo),
		cmocka_unit_test(test_receive_broken),
		cmocka_unit_test(test_receive_not_envelopes),
		cmocka_unit_test(test_receive_whole_response),
		cmocka_unit_test(test_batch_parse),
		cmocka_unit_test(test_region),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
