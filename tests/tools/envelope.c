/* SPDX-License-Identifier: MIT */
/*
 * ferry-envelope: make what legacy producers make, for tests and the demo.
 *
 *   ferry-envelope keygen KEYRING TENANT VERSION
 *       a random key in KEYRING/TENANT/VERSION.key (mode 0600, directories 0700)
 *   ferry-envelope seal KEYRING TENANT VERSION [AAD] < plaintext
 *       the envelope of stdin on stdout
 *   ferry-envelope replay KEYRING COUNT TENANTS > replay.jsonl
 *       a replay file of COUNT legacy events for TENANTS tenants (t00, t01, ...), each
 *       sealed with its tenant's key version 1 (made when missing); TENANTS may also be a
 *       comma-separated list of tenant names (acme,globex)
 *   ferry-envelope sns ENDPOINT REGION TOPIC_ARN KEYRING COUNT TENANTS
 *       publish the same COUNT events to an SNS topic (PublishBatch, 10 a request, 8
 *       requests in flight), tenant and type as message attributes; ENDPOINT "-" is AWS's
 *       own; credentials from the AWS SDKs' chain (common/aws.h)
 *   ferry-envelope pubsub BASE_URL PROJECT TOPIC KEYRING COUNT TENANTS
 *       publish them to a Pub/Sub topic through the REST API (1000 a request), without
 *       authentication: for the emulator (BASE_URL e.g. http://127.0.0.1:8085)
 *
 * Options before the command, for replay, sns and pubsub:
 *   --first N      number the events from N (ids, contents, types) instead of 0, so that
 *                  several runs make distinct events
 *   --broken KIND  make every event broken in one way, as a faulty producer would:
 *                  tampered      a sealed event with one ciphertext byte changed (tag check fails)
 *                  not-envelope  a body that is not a legacy envelope (not JSON)
 *                  unknown-type  a sealed legacy event of a type nobody maps (ROOMARCHIVED)
 *                  bad-json      a sealed legacy event cut in half (not JSON once decrypted)
 *
 * Exit codes: 0 ok, 100 usage, 111 system error.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/aws.h"
#include "common/envelope.h"
#include "tests/tools/legacy.h"

#define EXIT_USAGE  100
#define EXIT_SYSTEM 111

static int usage(void)
{
	fprintf(stderr,
		"usage: ferry-envelope keygen KEYRING TENANT VERSION\n"
		"       ferry-envelope seal KEYRING TENANT VERSION [AAD] < plaintext\n"
		"       ferry-envelope [OPTIONS] replay KEYRING COUNT TENANTS > replay.jsonl\n"
		"       ferry-envelope [OPTIONS] sns ENDPOINT|- REGION TOPIC_ARN KEYRING COUNT "
		"TENANTS\n"
		"       ferry-envelope [OPTIONS] pubsub BASE_URL PROJECT TOPIC KEYRING COUNT "
		"TENANTS\n"
		"\n"
		"TENANTS: a number (tenants t00, t01, ...) or names separated by commas.\n"
		"OPTIONS: --first N (number events from N), --broken KIND (tampered, "
		"not-envelope,\n"
		"         unknown-type, bad-json: every event broken that way).\n");
	return EXIT_USAGE;
}

static int key_path(char *buf, size_t len, const char *ring, const char *tenant, unsigned v)
{
	return (size_t)snprintf(buf, len, "%s/%s/%u.key", ring, tenant, v) < len ? 0 : -1;
}

/* Read a key, or make one when make is set and there is none. */
static int key_get(const char *ring, const char *tenant, unsigned v, int make,
		   unsigned char key[ENVELOPE_KEY_LEN])
{
	char path[4096], b64[64] = "";
	FILE *f;

	if (key_path(path, sizeof(path), ring, tenant, v) < 0)
		return -1;
	f = fopen(path, "r");
	if (f) {
		int ok = fgets(b64, sizeof(b64), f) != NULL;

		fclose(f);
		b64[strcspn(b64, "\n")] = 0;
		if (!ok || envelope_b64_decode(b64, strlen(b64), key, ENVELOPE_KEY_LEN + 2) !=
				   ENVELOPE_KEY_LEN) {
			fprintf(stderr, "ferry-envelope: %s: not a key\n", path);
			return -1;
		}
		OPENSSL_cleanse(b64, sizeof(b64));
		return 0;
	}
	if (!make) {
		fprintf(stderr, "ferry-envelope: %s: %s\n", path, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s", ring);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/%s", ring, tenant);
	mkdir(path, 0700);
	key_path(path, sizeof(path), ring, tenant, v);
	if (RAND_bytes(key, ENVELOPE_KEY_LEN) != 1)
		return -1;
	EVP_EncodeBlock((unsigned char *)b64, key, ENVELOPE_KEY_LEN);
	{
		mode_t old = umask(077);

		f = fopen(path, "w");
		umask(old);
	}
	if (!f || fprintf(f, "%s\n", b64) < 0 || fclose(f) != 0) {
		fprintf(stderr, "ferry-envelope: %s: %s\n", path, strerror(errno));
		return -1;
	}
	OPENSSL_cleanse(b64, sizeof(b64));
	return 0;
}

static int cmd_seal(int argc, char **argv)
{
	unsigned char key[ENVELOPE_KEY_LEN + 2];
	char buf[1 << 20], *env = NULL;
	size_t n = fread(buf, 1, sizeof(buf), stdin);
	const char *aad = argc > 5 ? argv[5] : NULL;

	if (key_get(argv[2], argv[3], (unsigned)atoi(argv[4]), 0, key) < 0 ||
	    envelope_seal(argv[3], (uint32_t)atoi(argv[4]), key, buf, n, aad, aad ? strlen(aad) : 0,
			  &env) < 0)
		return EXIT_SYSTEM;
	OPENSSL_cleanse(key, sizeof(key));
	puts(env);
	free(env);
	return 0;
}

/* One legacy event as a producer makes it: the sealed body and its attributes. */
struct event {
	char id[32];
	char tenant[16];
	const char *type;
	char *env; /* the envelope (malloc'd) */
};

#define GEN_MAX_TENANTS 1024

/* How a faulty producer breaks its events (--broken). */
enum broken {
	BROKEN_NONE,
	BROKEN_TAMPERED,
	BROKEN_NOT_ENVELOPE,
	BROKEN_UNKNOWN_TYPE,
	BROKEN_BAD_JSON,
};

static const char *const broken_names[] = {
	[BROKEN_TAMPERED] = "tampered",
	[BROKEN_NOT_ENVELOPE] = "not-envelope",
	[BROKEN_UNKNOWN_TYPE] = "unknown-type",
	[BROKEN_BAD_JSON] = "bad-json",
};

#define UNKNOWN_TYPE "ROOMARCHIVED"

/* The events of a run: the key ring, the tenants, the options. */
struct gen {
	const char *ring;
	char tenant[GEN_MAX_TENANTS][16];
	unsigned n_tenants;
	unsigned first;
	enum broken broken;
	int all_types;
};

/* TENANTS: a count (t00, t01, ...) or a comma-separated list of names. 0 or -1 (usage). */
static int gen_tenants(struct gen *g, const char *arg)
{
	const char *p = arg;

	if (*arg && strspn(arg, "0123456789") == strlen(arg)) {
		unsigned long n = strtoul(arg, NULL, 10);

		if (!n || n > GEN_MAX_TENANTS)
			return -1;
		for (g->n_tenants = 0; g->n_tenants < n; g->n_tenants++)
			snprintf(g->tenant[g->n_tenants], sizeof(g->tenant[0]), "t%02u",
				 g->n_tenants);
		return 0;
	}
	for (g->n_tenants = 0; *p && g->n_tenants < GEN_MAX_TENANTS; g->n_tenants++) {
		size_t len = strcspn(p, ",");

		if (!len || len >= sizeof(g->tenant[0]))
			return -1;
		for (size_t k = 0; k < len; k++)
			if (!isalnum((unsigned char)p[k]) && !strchr("_.-", p[k]))
				return -1;
		memcpy(g->tenant[g->n_tenants], p, len);
		g->tenant[g->n_tenants][len] = 0;
		p += len;
		if (*p == ',' && !*++p)
			return -1;
	}
	return *p || !g->n_tenants ? -1 : 0;
}

/* The legacy event of type UNKNOWN_TYPE made of a valid one (its "type" replaced). */
static int retype(char *plain, int len, size_t cap, const char *type)
{
	char field[64], *at, *rest;
	size_t flen, tlen = strlen(type), nlen = strlen(UNKNOWN_TYPE);

	snprintf(field, sizeof(field), "\"type\":\"%s\"", type);
	flen = strlen(field);
	at = strstr(plain, field);
	if (!at || (size_t)len - tlen + nlen + 1 > cap)
		return -1;
	rest = at + flen - 1; /* the closing quote */
	memmove(at + 8 + nlen, rest, (size_t)(plain + len - rest) + 1);
	memcpy(at + 8, UNKNOWN_TYPE, nlen);
	return (int)((size_t)len - tlen + nlen);
}

/* One ciphertext character changed: the tag check must fail. 0 or -1. */
static int tamper(char *env)
{
	char *ct = strstr(env, "\"ct\":\"");

	if (!ct || strlen(ct) < 12)
		return -1;
	ct += 8; /* past the key and a few characters, away from any padding */
	*ct = *ct == 'A' ? 'B' : 'A';
	return 0;
}

/*
 * Event i of a run: a legacy event of the chat platform's datafeed
 * (tests/tools/legacy.h), sealed with its tenant's key 1 (made when
 * missing). All ROOMDEACTIVATED (one catalog event each, what the tests
 * count), or every legacy type in turn when FERRY_ENVELOPE_TYPES=all (the
 * demo); broken as --broken says.
 */
static int event_make(const struct gen *g, unsigned i, struct event *ev)
{
	unsigned char key[ENVELOPE_KEY_LEN + 2];
	char plain[LEGACY_EVENT_MAX];
	unsigned k;
	int r, len;

	i += g->first;
	k = g->all_types ? i : i * LEGACY_NTYPES + 4;
	memset(ev, 0, sizeof(*ev));
	snprintf(ev->id, sizeof(ev->id), "m-%07u", i);
	snprintf(ev->tenant, sizeof(ev->tenant), "%s", g->tenant[i % g->n_tenants]);
	ev->type = legacy_event_type(k);
	if (g->broken == BROKEN_NOT_ENVELOPE) {
		ev->env = strdup("this is not a legacy envelope");
		return ev->env ? 0 : -1;
	}
	len = legacy_event(k, ev->tenant, plain, sizeof(plain));
	if (len >= 0 && g->broken == BROKEN_UNKNOWN_TYPE) {
		len = retype(plain, len, sizeof(plain), ev->type);
		ev->type = UNKNOWN_TYPE;
	} else if (len >= 0 && g->broken == BROKEN_BAD_JSON) {
		len /= 2;
	}
	r = len < 0 || key_get(g->ring, ev->tenant, 1, 1, key) < 0 ||
			    envelope_seal(ev->tenant, 1, key, plain, (size_t)len, NULL, 0,
					  &ev->env) < 0
		    ? -1
		    : 0;
	if (!r && g->broken == BROKEN_TAMPERED)
		r = tamper(ev->env);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(plain, sizeof(plain));
	return r;
}

static int cmd_replay(struct gen *g, char **argv)
{
	unsigned count = (unsigned)atoi(argv[3]);

	g->ring = argv[2];
	if (gen_tenants(g, argv[4]) < 0)
		return usage();
	for (unsigned i = 0; i < count; i++) {
		cJSON *j = cJSON_CreateObject(), *a;
		struct event ev;
		char *line;

		if (!j || event_make(g, i, &ev) < 0)
			return EXIT_SYSTEM;
		cJSON_AddStringToObject(j, "id", ev.id);
		a = cJSON_AddObjectToObject(j, "attributes");
		cJSON_AddStringToObject(a, "tenant", ev.tenant);
		cJSON_AddStringToObject(a, "type", ev.type);
		cJSON_AddStringToObject(j, "body", ev.env);
		line = cJSON_PrintUnformatted(j);
		if (!line)
			return EXIT_SYSTEM;
		puts(line);
		free(line);
		free(ev.env);
		cJSON_Delete(j);
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define SNS_BATCH    10 /* PublishBatch's limit */
#define SNS_INFLIGHT 8

/* The form of one PublishBatch of events [first, first + n). NULL on failure. */
static char *sns_batch_form(const char *topic_enc, const struct gen *g, unsigned first, unsigned n)
{
	char *form = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&form, &len);
	int ok = f != NULL;

	if (f)
		fprintf(f, "Action=PublishBatch&Version=2010-03-31&TopicArn=%s", topic_enc);
	for (unsigned k = 0; ok && k < n; k++) {
		const char *pre = "PublishBatchRequestEntries.member.";
		struct event ev;
		char *msg;

		if (event_make(g, first + k, &ev) < 0)
			ok = 0;
		msg = ok ? aws_form_encode(ev.env) : NULL;
		if (!msg) {
			ok = 0;
		} else {
			fprintf(f,
				"&%s%u.Id=%s&%s%u.Message=%s"
				"&%s%u.MessageAttributes.entry.1.Name=tenant"
				"&%s%u.MessageAttributes.entry.1.Value.DataType=String"
				"&%s%u.MessageAttributes.entry.1.Value.StringValue=%s"
				"&%s%u.MessageAttributes.entry.2.Name=type"
				"&%s%u.MessageAttributes.entry.2.Value.DataType=String"
				"&%s%u.MessageAttributes.entry.2.Value.StringValue=%s",
				pre, k + 1, ev.id, pre, k + 1, msg, pre, k + 1, pre, k + 1, pre,
				k + 1, ev.tenant, pre, k + 1, pre, k + 1, pre, k + 1, ev.type);
		}
		free(msg);
		free(ev.env);
	}
	if (f && fclose(f) != 0)
		ok = 0;
	if (!ok) {
		free(form);
		return NULL;
	}
	return form;
}

/* Occurrences of needle in [a, b). */
static unsigned count_in(const char *a, const char *b, const char *needle)
{
	unsigned n = 0;

	for (const char *p = strstr(a, needle); p && p < b; p = strstr(p + 1, needle))
		n++;
	return n;
}

/*
 * Check one PublishBatch answer: every entry in <Successful>, none in <Failed>.
 * Returns how many were published, or -1 (message on stderr).
 */
static int sns_batch_check(const char *xml, unsigned want)
{
	const char *s = strstr(xml, "<Successful>"), *se = s ? strstr(s, "</Successful>") : NULL;
	const char *fl = strstr(xml, "<Failed>"), *fe = fl ? strstr(fl, "</Failed>") : NULL;
	unsigned ok = s && se ? count_in(s, se, "<MessageId>") : 0;

	if (fl && fe && count_in(fl, fe, "<Id>")) {
		char code[128] = "", msg[256] = "";

		aws_xml_text(fl, "Code", code, sizeof(code));
		aws_xml_text(fl, "Message", msg, sizeof(msg));
		fprintf(stderr, "ferry-envelope: sns: %u entries failed: %s %s\n",
			count_in(fl, fe, "<Id>"), code, msg);
		return -1;
	}
	if (ok != want) {
		fprintf(stderr, "ferry-envelope: sns: %u of %u entries confirmed\n", ok, want);
		return -1;
	}
	return (int)ok;
}

static int cmd_sns(struct gen *g, char **argv)
{
	const char *endpoint = strcmp(argv[2], "-") ? argv[2] : NULL, *region = argv[3];
	unsigned count = (unsigned)atoi(argv[6]);
	struct aws_creds_provider *prov = NULL;
	struct aws_client *cl = NULL;
	struct aws_request *rq[SNS_INFLIGHT] = {0};
	CURL *easy[SNS_INFLIGHT] = {0};
	unsigned want[SNS_INFLIGHT] = {0};
	CURLM *multi = NULL;
	char err[1024] = "", *topic = NULL;
	unsigned next = 0, published = 0;
	int running = 0, ret = EXIT_SYSTEM, failed = 0;
	double t0 = now_s();

	g->ring = argv[5];
	if (gen_tenants(g, argv[7]) < 0)
		return usage();
	prov = aws_creds_provider_new(NULL, region);
	cl = prov ? aws_client_new_provider(region, endpoint, prov) : NULL;
	topic = aws_form_encode(argv[4]);
	multi = curl_multi_init();
	if (!cl || !topic || !multi) {
		fprintf(stderr, "ferry-envelope: sns: bad region or endpoint, or out of memory\n");
		goto out;
	}
	for (int k = 0; k < SNS_INFLIGHT; k++)
		if (!(easy[k] = curl_easy_init()))
			goto out;
	while (!failed && (next < count || running)) {
		int still;

		/* Fill every idle slot with the next batch. */
		for (int k = 0; k < SNS_INFLIGHT && next < count && !failed; k++) {
			unsigned n = count - next < SNS_BATCH ? count - next : SNS_BATCH;
			char *form;
			int r;

			if (rq[k])
				continue;
			form = sns_batch_form(topic, g, next, n);
			if (!form) {
				fprintf(stderr, "ferry-envelope: sns: cannot make events\n");
				failed = 1;
				break;
			}
			r = aws_query_request_new(cl, "sns", form, &rq[k], err, sizeof(err));
			free(form);
			if (r < 0 || aws_request_attach(rq[k], easy[k]) < 0 ||
			    curl_multi_add_handle(multi, easy[k]) != CURLM_OK) {
				fprintf(stderr, "ferry-envelope: %s\n",
					r < 0 ? err : "sns: cannot start a transfer");
				failed = 1;
				break;
			}
			want[k] = n;
			next += n;
			running++;
		}
		if (failed)
			break;
		if (curl_multi_perform(multi, &still) != CURLM_OK ||
		    curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK) {
			failed = 1;
			break;
		}
		curl_multi_perform(multi, &still);
		for (CURLMsg *m; (m = curl_multi_info_read(multi, &still));) {
			char *body = NULL;
			int k, r;

			if (m->msg != CURLMSG_DONE)
				continue;
			for (k = 0; k < SNS_INFLIGHT && easy[k] != m->easy_handle; k++)
				;
			r = aws_request_finish(rq[k], easy[k], m->data.result, &body, NULL, err,
					       sizeof(err));
			curl_multi_remove_handle(multi, easy[k]);
			aws_request_free(rq[k]);
			rq[k] = NULL;
			running--;
			if (r < 0) {
				fprintf(stderr, "ferry-envelope: %s\n", err);
				failed = 1;
			} else if ((r = sns_batch_check(body, want[k])) < 0) {
				failed = 1;
			} else {
				published += (unsigned)r;
			}
			free(body);
		}
	}
	printf("published %u of %u messages to %s in %.2f s\n", published, count, argv[4],
	       now_s() - t0);
	ret = failed || published != count ? EXIT_SYSTEM : 0;
out:
	for (int k = 0; k < SNS_INFLIGHT; k++) {
		if (rq[k])
			curl_multi_remove_handle(multi, easy[k]);
		aws_request_free(rq[k]);
		if (easy[k])
			curl_easy_cleanup(easy[k]);
	}
	curl_multi_cleanup(multi);
	free(topic);
	aws_client_free(cl);
	aws_creds_provider_free(prov);
	return ret;
}

#define PUBSUB_BATCH 1000 /* messages a publish request carries at most */

static size_t on_pubsub_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	FILE *f = userdata;

	return fwrite(data, size, nmemb, f) * size;
}

/* One publish request of events [first, first + n); returns how many ids came back, or -1. */
static int pubsub_batch(CURL *e, const char *url, const struct gen *g, unsigned first, unsigned n)
{
	cJSON *root = cJSON_CreateObject(), *msgs = cJSON_AddArrayToObject(root, "messages");
	char *req = NULL, *resp = NULL, cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	size_t resp_len = 0;
	FILE *out = open_memstream(&resp, &resp_len);
	long status = 0;
	int ret = -1;
	CURLcode c;

	if (!root || !msgs || !h || !out)
		goto done;
	for (unsigned k = 0; k < n; k++) {
		cJSON *m = cJSON_CreateObject(), *a;
		struct event ev;
		char *b64;
		size_t len;

		if (!m || !cJSON_AddItemToArray(msgs, m) || event_make(g, first + k, &ev))
			goto done;
		len = strlen(ev.env);
		b64 = malloc(4 * ((len + 2) / 3) + 1);
		if (!b64) {
			free(ev.env);
			goto done;
		}
		EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)ev.env, (int)len);
		cJSON_AddStringToObject(m, "data", b64);
		a = cJSON_AddObjectToObject(m, "attributes");
		cJSON_AddStringToObject(a, "tenant", ev.tenant);
		cJSON_AddStringToObject(a, "type", ev.type);
		free(b64);
		free(ev.env);
	}
	req = cJSON_PrintUnformatted(root);
	if (!req)
		goto done;
	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, req);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_pubsub_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
	c = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	fclose(out);
	out = NULL;
	if (c != CURLE_OK) {
		fprintf(stderr, "ferry-envelope: pubsub: %s: %s\n", curl_easy_strerror(c), cerr);
	} else if (status != 200) {
		fprintf(stderr, "ferry-envelope: pubsub: HTTP %ld: %.300s\n", status,
			resp ? resp : "");
	} else {
		cJSON *j = cJSON_Parse(resp);
		const cJSON *ids = cJSON_GetObjectItemCaseSensitive(j, "messageIds");

		ret = cJSON_IsArray(ids) ? cJSON_GetArraySize(ids) : -1;
		if (ret < 0)
			fprintf(stderr, "ferry-envelope: pubsub: answer without messageIds\n");
		cJSON_Delete(j);
	}
done:
	if (out)
		fclose(out);
	free(resp);
	cJSON_free(req);
	cJSON_Delete(root);
	curl_slist_free_all(h);
	return ret;
}

static int cmd_pubsub(struct gen *g, char **argv)
{
	const char *base = argv[2];
	unsigned count = (unsigned)atoi(argv[6]);
	size_t blen = strlen(base);
	unsigned published = 0;
	char url[2048];
	double t0 = now_s();
	CURL *e;

	g->ring = argv[5];
	if (gen_tenants(g, argv[7]) < 0 ||
	    (strncmp(base, "http://", 7) && strncmp(base, "https://", 8)))
		return usage();
	while (blen && base[blen - 1] == '/')
		blen--;
	if ((size_t)snprintf(url, sizeof(url), "%.*s/v1/projects/%s/topics/%s:publish", (int)blen,
			     base, argv[3], argv[4]) >= sizeof(url))
		return usage();
	e = curl_easy_init();
	if (!e)
		return EXIT_SYSTEM;
	while (published < count) {
		unsigned n = count - published < PUBSUB_BATCH ? count - published : PUBSUB_BATCH;
		int r = pubsub_batch(e, url, g, published, n);

		if (r != (int)n) {
			if (r >= 0)
				fprintf(stderr, "ferry-envelope: pubsub: %d of %u ids returned\n",
					r, n);
			break;
		}
		published += n;
	}
	curl_easy_cleanup(e);
	printf("published %u of %u messages to projects/%s/topics/%s in %.2f s\n", published, count,
	       argv[3], argv[4], now_s() - t0);
	return published == count ? 0 : EXIT_SYSTEM;
}

/* The options before the command; returns how many arguments they took, or -1. */
static int gen_options(struct gen *g, int argc, char **argv)
{
	const char *types = getenv("FERRY_ENVELOPE_TYPES");
	int i = 1;

	g->all_types = types && !strcmp(types, "all");
	for (; i + 1 < argc && !strncmp(argv[i], "--", 2); i += 2) {
		char *end;

		if (!strcmp(argv[i], "--first")) {
			errno = 0;
			g->first = (unsigned)strtoul(argv[i + 1], &end, 10);
			if (errno || *end || !isdigit((unsigned char)*argv[i + 1]))
				return -1;
		} else if (!strcmp(argv[i], "--broken")) {
			g->broken = BROKEN_NONE;
			for (size_t k = 1; k < sizeof(broken_names) / sizeof(*broken_names); k++)
				if (!strcmp(argv[i + 1], broken_names[k]))
					g->broken = (enum broken)k;
			if (g->broken == BROKEN_NONE)
				return -1;
		} else {
			return -1;
		}
	}
	return i - 1;
}

int main(int argc, char **argv)
{
	unsigned char key[ENVELOPE_KEY_LEN + 2];
	struct gen g = {0};
	int opts = gen_options(&g, argc, argv);

	if (opts < 0)
		return usage();
	if (opts) {
		/* Options only go with the commands that make events. */
		argv[opts] = argv[0];
		argv += opts;
		argc -= opts;
		if (argc < 2 || (strcmp(argv[1], "replay") && strcmp(argv[1], "sns") &&
				 strcmp(argv[1], "pubsub")))
			return usage();
	}
	if (argc == 5 && !strcmp(argv[1], "keygen")) {
		int r = key_get(argv[2], argv[3], (unsigned)atoi(argv[4]), 1, key);

		OPENSSL_cleanse(key, sizeof(key));
		return r < 0 ? EXIT_SYSTEM : 0;
	}
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "seal"))
		return cmd_seal(argc, argv);
	if (argc == 5 && !strcmp(argv[1], "replay"))
		return cmd_replay(&g, argv);
	if (argc == 8 && !strcmp(argv[1], "sns")) {
		int r;

		curl_global_init(CURL_GLOBAL_DEFAULT);
		r = cmd_sns(&g, argv);
		curl_global_cleanup();
		return r;
	}
	if (argc == 8 && !strcmp(argv[1], "pubsub")) {
		int r;

		curl_global_init(CURL_GLOBAL_DEFAULT);
		r = cmd_pubsub(&g, argv);
		curl_global_cleanup();
		return r;
	}
	return usage();
}
