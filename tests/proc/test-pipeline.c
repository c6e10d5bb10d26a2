/* SPDX-License-Identifier: MIT */
/*
 * The whole service as an operator runs it: ferryd with its stage
 * processes, a replay source, Kafka from librdkafka's mock cluster (in its
 * own process, ferry-kafka-mock), systemd notifications on a real
 * NOTIFY_SOCKET, and what reached Kafka read back with ferry-kafka-dump.
 *
 *  - kills: each stage SIGKILLed in turn, twice, while the replay flows:
 *    every message reaches Kafka; duplicates only from produce's deaths
 *    (at most what it had in flight, counted by ferryd); other stages'
 *    pids unchanged; the other shard keeps flowing while one is down;
 *  - hot restart of every stage under load: nothing lost, nothing doubled;
 *  - SIGTERM mid-run: all that was read is in Kafka and acked, exit 0;
 *    READY/STATUS/WATCHDOG/RELOADING/STOPPING seen on the socket;
 *  - a record that crashes map every time ends as a dead letter after
 *    poison_strikes deaths, and everything else arrives;
 *  - with a Schema Registry (tests/registry/fixture.js): events of every
 *    type in Confluent's wire format, decoded by Confluent's deserializer
 *    and by ferryctl tail alike; a registry holding another schema refuses
 *    produce's start, naming the subject.
 */
#include <inttypes.h>
#include <fcntl.h>
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
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#include "common/aws.h"
#include "common/envelope.h"
#include "common/registry.h"
#include "common/time.h"
#include "shm/segment.h"
#include "common/pubsub.h"
#include "tests/proc/moto.h"
#include "tests/proc/harness.h"
#include "tests/proc/pubsub-emu.h"
#include "tests/tools/legacy.h"
#include "workers/map/catalog.h"

/* --- small helpers ------------------------------------------------------ */

/* --- notifications ------------------------------------------------------ */

/* --- the peers ---------------------------------------------------------- */

/* --- fixture ------------------------------------------------------------ */

/* --- tests -------------------------------------------------------------- */

#define KILL_N 200000u

static void test_kills(void **state)
{
	static const char *order[] = {"ingest",	 "decrypt.0", "map.1",
				      "produce", "decrypt.1", "map.0"};
	static unsigned counts[KILL_N + 1];
	pid_t before[16];
	unsigned nw, kills = 0, dups;
	uint64_t all = KILL_N;

	(void)state;
	memset(counts, 0, sizeof(counts));
	conf_write(KILL_N, 12000, NULL);
	ferryd_start(NULL, NULL);
	nw = E.seg->hdr->n_workers;
	for (unsigned round = 0; round < 2; round++) {
		for (unsigned k = 0; k < 6; k++) {
			const char *name = order[k];
			struct shm_worker *victim = worker(name);
			char other[16] = "";
			uint64_t other_before = 0;

			assert_true(wait_until(running, (void *)name, 10000));
			for (unsigned i = 0; i < nw; i++)
				before[i] = E.seg->workers[i].pid;
			if (!strncmp(name, "decrypt.", 8) || !strncmp(name, "map.", 4)) {
				/* The twin of the other shard must keep flowing. */
				snprintf(other, sizeof(other), "%.*s%c",
					 (int)(strchr(name, '.') - name + 1), name,
					 name[strlen(name) - 1] == '0' ? '1' : '0');
			}
			assert_int_equal(kill(victim->pid, SIGKILL), 0);
			kills++;
			assert_true(wait_until(down, (void *)name, 5000));
			if (other[0])
				other_before = load64(&worker(other)->records_out);
			assert_true(wait_until(running, (void *)name, 10000));
			if (other[0] && acked() < KILL_N / 2 &&
			    load64(&worker(other)->records_out) <= other_before)
				fail_msg("%s did not flow while %s was down (%llu records out)",
					 other, name, (unsigned long long)other_before);
			for (unsigned i = 0; i < nw; i++)
				if (strcmp(E.seg->workers[i].name, name))
					assert_int_equal(E.seg->workers[i].pid, before[i]);
			assert_true(acked() < KILL_N); /* the kills came while it flowed */
		}
	}
	assert_true(wait_until(acked_at_least, &all, 120000));
	assert_true(notified("STATUS="));
	dump(ROOM_TOPIC, counts, KILL_N, NULL, 0);
	dups = check_all(counts, KILL_N, 0);
	{
		uint64_t redelivered = load64(&worker("produce")->redelivered);

		printf("# %u messages, %u kills, %u duplicates in Kafka, produce had %llu in "
		       "flight at its deaths\n",
		       KILL_N, kills, dups, (unsigned long long)redelivered);
		assert_true(dups <= redelivered);
	}
	ferryd_stop();
}

/* Every stage restarted once more than *before in all, and running. */
static int all_restarted_once(void *before)
{
	unsigned sum = 0, n = E.seg->hdr->n_workers;

	for (unsigned i = 0; i < n; i++) {
		sum += E.seg->workers[i].restarts;
		if (!running(E.seg->workers[i].name))
			return 0;
	}
	return sum == *(unsigned *)before + n;
}

#define HOT_N 100000u

static void test_hot_restart(void **state)
{
	static const char *order[] = {"decrypt.0", "map.1",	"produce",
				      "ingest",	   "decrypt.1", "map.0"};
	static unsigned counts[HOT_N + 1];
	uint64_t all = HOT_N;

	(void)state;
	memset(counts, 0, sizeof(counts));
	conf_write(HOT_N, 12000, NULL);
	ferryd_start(NULL, NULL);
	for (unsigned k = 0; k < 6; k++) {
		pid_t old = worker(order[k])->pid;

		assert_int_equal(ferryctl_restart(order[k]), 0);
		assert_true(wait_until(restarted, (void *)order[k], 10000));
		assert_int_not_equal(worker(order[k])->pid, old);
		/* A hot restart is a clean exit, not a crash. */
		assert_true(WIFEXITED(worker(order[k])->last_exit));
		assert_int_equal(WEXITSTATUS(worker(order[k])->last_exit), 0);
	}
	/* `all`: one by one, each back before the next goes. */
	{
		unsigned before = 0, after = 0;

		for (unsigned i = 0; i < E.seg->hdr->n_workers; i++)
			before += E.seg->workers[i].restarts;
		assert_int_equal(ferryctl_restart("all"), 0);
		assert_true(wait_until(all_restarted_once, &before, 30000));
		for (unsigned i = 0; i < E.seg->hdr->n_workers; i++)
			after += E.seg->workers[i].restarts;
		assert_int_equal(after, before + E.seg->hdr->n_workers);
	}
	assert_true(acked() < HOT_N); /* the restarts came under load */
	assert_int_not_equal(ferryctl_restart("nosuch"), 0);
	assert_true(wait_until(acked_at_least, &all, 60000));
	{
		unsigned got = dump(ROOM_TOPIC, counts, HOT_N, NULL, 0);

		if (got != HOT_N) {
			for (unsigned q = 1; q <= HOT_N; q++)
				if (counts[q] != 1)
					fprintf(stderr, "seq %u: %u times\n", q, counts[q]);
		}
		assert_int_equal(got, HOT_N);
	}
	assert_int_equal(check_all(counts, HOT_N, 0), 0);
	assert_int_equal(load64(&worker("produce")->redelivered), 0);
	ferryd_stop();
}

static int acked_some(void *unused)
{
	(void)unused;
	return acked() >= 20000;
}

static void test_sigterm_and_notify(void **state)
{
	static unsigned counts[100001];
	uint64_t read, acks;
	unsigned got;

	(void)state;
	memset(counts, 0, sizeof(counts));
	conf_write(100000, 20000, NULL);
	ferryd_start("400000", NULL); /* a watchdog of 400 ms */
	assert_true(wait_until(notified, "WATCHDOG=1", 5000));
	assert_true(wait_until(notified, "STATUS=", 5000));
	/*
	 * Reload: RELOADING=1, then READY=1 again; a changed shard count and
	 * in-flight table are named as waiting for a restart of ferryd.
	 */
	conf_replace("shards = 2\n", "shards = 3\n");
	conf_replace("[replay]\n", "[ingest]\nmax_inflight = 1024\n[replay]\n");
	E.seen[0] = 0;
	kill(E.ferryd, SIGHUP);
	assert_true(wait_until(notified, "RELOADING=1", 5000));
	assert_true(wait_until(notified, "READY=1", 5000));
	assert_true(wait_until(log_has,
			       "taken up only by a restart of ferryd: [ferry] shards, [ingest] "
			       "max_inflight",
			       5000));
	assert_true(wait_until(acked_some, NULL, 20000));
	ferryd_stop();
	read = load64(&worker("ingest")->records_out);
	acks = load64(&worker("ingest")->records_in);
	assert_true(notified("STOPPING=1"));
	assert_true(read < 100000); /* stopped mid-run */
	assert_int_equal(acks, read);
	got = dump(ROOM_TOPIC, counts, 100000, NULL, 0);
	assert_int_equal(got, read);
	/* Shards advance independently: what was read is a set, each once. */
	for (unsigned s = 1; s <= 100000; s++)
		if (counts[s] > 1)
			fail_msg("seq %u reached Kafka %u times", s, counts[s]);
	printf("# SIGTERM after %llu of 100000 messages: all %llu in Kafka and acked, exit 0\n",
	       (unsigned long long)read, (unsigned long long)acks);
}

#define POISON_N   3000u
#define POISON_SEQ 1500u

static void test_poison_record(void **state)
{
	static unsigned counts[POISON_N + 1], dead[POISON_N + 1];
	char reason[256] = "", replay[128];
	uint64_t all = POISON_N;
	unsigned restarts = 0;

	(void)state;
	memset(counts, 0, sizeof(counts));
	memset(dead, 0, sizeof(dead));
	conf_write(POISON_N, 0, "poison_strikes = 3");
	snprintf(replay, sizeof(replay), "%s/replay.jsonl", E.dir);
	replay_write(replay, POISON_N, POISON_SEQ);
	ferryd_start(NULL, "POISON-PILL");
	assert_true(wait_until(acked_at_least, &all, 60000));
	dump(ROOM_TOPIC, counts, POISON_N, NULL, 0);
	assert_int_equal(counts[POISON_SEQ], 0);
	assert_int_equal(check_all(counts, POISON_N, POISON_SEQ), 0);
	assert_int_equal(dump("ferry.dead-letters", dead, POISON_N, reason, sizeof(reason)), 1);
	assert_int_equal(dead[POISON_SEQ], 1);
	if (!strstr(reason, "poison") || !strstr(reason, "died 3 times"))
		fail_msg("dead-letter reason: '%s'", reason);
	restarts = worker("map.0")->restarts + worker("map.1")->restarts;
	assert_int_equal(restarts, 3);
	printf("# poison record: dead letter after %u deaths of map ('%s')\n", restarts, reason);
	ferryd_stop();
}

static void test_broken_config(void **state)
{
	char log[4096], path[SHM_PATH_MAX];
	int status;

	(void)state;
	conf_write(10, 0, "poison_strikes = zero");
	status = ferryd_run(log, sizeof(log));
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 100);
	if (!strstr(log, "ferry.conf:8: [ferry] poison_strikes: want an integer from 1 to 100, "
			 "got 'zero'"))
		fail_msg("log: %s", log);
	/* Nothing half-started: no segment, no stage. */
	shm_path(E.instance, path, sizeof(path));
	assert_int_not_equal(access(path, F_OK), 0);
	assert_null(strstr(log, "started"));
}

static int failed_exec(void *name)
{
	return worker(name)->state == SHM_SSTATE_FAILED;
}

static void test_exec_failure(void **state)
{
	char extra[128];
	int status;

	(void)state;
	snprintf(extra, sizeof(extra), "stage_dir = %s/nowhere", E.dir);
	conf_write(10, 0, extra);
	ferryd_spawn(NULL, NULL);
	assert_true(wait_until(segment_there, NULL, 5000));
	/* Reported as what it is, for every stage, and not restarted in a loop. */
	assert_true(wait_until(failed_exec, "ingest", 5000));
	assert_true(wait_until(failed_exec, "produce", 5000));
	assert_int_equal(worker("ingest")->restarts, 0);
	assert_false(notified("READY=1"));
	kill(E.ferryd, SIGTERM);
	assert_int_equal(waitpid(E.ferryd, &status, 0), E.ferryd);
	E.ferryd = 0;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	{
		char log[4096];

		read_log(log, sizeof(log));
		if (!strstr(log, "ingest: cannot start") ||
		    !strstr(log, "No such file or directory"))
			fail_msg("log: %s", log);
	}
}

static void test_hung_stage(void **state)
{
	pid_t hung, map1;
	char cmd[256];

	(void)state;
	conf_write(1000, 0, "heartbeat_timeout = 1s");
	ferryd_start(NULL, NULL);
	hung = worker("decrypt.0")->pid;
	map1 = worker("map.1")->pid;
	/* A stage that stops answering (here: stopped) is killed and restarted alone. */
	assert_int_equal(kill(hung, SIGSTOP), 0);
	assert_true(wait_until(restarted, "decrypt.0", 10000));
	assert_int_not_equal(worker("decrypt.0")->pid, hung);
	assert_true(WIFSIGNALED(worker("decrypt.0")->last_exit));
	assert_int_equal(WTERMSIG(worker("decrypt.0")->last_exit), SIGKILL);
	assert_int_equal(worker("map.1")->pid, map1);
	/* What an operator reads. */
	snprintf(cmd, sizeof(cmd), "%s -i %s status | grep -q '^decrypt.0 .* up .* signal 9 '",
		 FERRYCTL_PATH, E.instance);
	assert_int_equal(system(cmd), 0);
	ferryd_stop();
}

#define DEC_N 5000u

/*
 * Encrypted legacy messages for 10 tenants, with one message of every
 * class decrypt cannot open mixed in: each becomes exactly one dead letter
 * with its reason and the message as received (still encrypted); every
 * good one arrives decrypted; a tenant without a key stalls nobody.
 */
static void test_decrypt(void **state)
{
	static const char *bad[][2] = {
		/* tenant, body (sealed by the shell below when it starts with "seal:") */
		{"t99", "seal:other t99 1"},
		{"t00", "seal:other t00 9"},
		{"t00", "seal:other t00 1"},
		{"t98", "seal:ring t98 1"},
		{"t01", "{\"v\":1,\"key\":1,\"iv\":\"@@@@\",\"ct\":\"AAAAAAAAAAAAAAAAAAAAAAAA\"}"},
		{"t01",
		 "{\"v\":1,\"key\":1,\"iv\":\"AAAAAAAA\",\"ct\":\"AAAAAAAAAAAAAAAAAAAAAAAA\"}"},
		{"t01", "{\"v\":1,\"key\":1,\"iv\":\"AAAAAAAAAAAAAAAA\",\"ct\":\"AAAAAAAA\"}"},
		{"t01", "plain text, not an envelope"},
	};
	static const char *want[] = {
		"unknown tenant 't99'", "unknown key version 9 of tenant 't00'",
		"tag mismatch",		"mode 0644): refused",
		"bad base64 in \"iv\"", "wrong IV length 6 (want 12)",
		"truncated ciphertext", "body is not a JSON object",
	};
	static unsigned counts[DEC_N + 16];
	char ring[128], other[128], replay[128], *line = NULL, cmd[512];
	unsigned found[8] = {0}, dead = 0;
	uint64_t all = DEC_N + 9;
	size_t cap = 0;
	FILE *f, *p;

	(void)state;
	memset(counts, 0, sizeof(counts));
	snprintf(ring, sizeof(ring), "%s/keys", E.dir);
	snprintf(other, sizeof(other), "%s/other-keys", E.dir);
	snprintf(replay, sizeof(replay), "%s/replay.jsonl", E.dir);
	conf_write(0, 0, NULL);
	sh("%s replay %s %u 10 > %s", ENVELOPE_PATH, ring, DEC_N, replay);
	/* Keys the pipeline does not have, a key readable by others. */
	sh("%s keygen %s t99 1 && %s keygen %s t00 9 && %s keygen %s t00 1", ENVELOPE_PATH, other,
	   ENVELOPE_PATH, other, ENVELOPE_PATH, other);
	sh("%s keygen %s t98 1 && chmod 0644 %s/t98/1.key", ENVELOPE_PATH, ring, ring);
	f = fopen(replay, "a");
	assert_non_null(f);
	for (unsigned i = 0; i < 8; i++) {
		char body[1024] = "";
		cJSON *j = cJSON_CreateObject(), *a;
		char *out, id[32];

		if (!strncmp(bad[i][1], "seal:", 5)) {
			char which[16], tenant[16];
			unsigned v;
			FILE *s;

			assert_int_equal(sscanf(bad[i][1] + 5, "%15s %15s %u", which, tenant, &v),
					 3);
			snprintf(cmd, sizeof(cmd),
				 "echo '{\"eventType\":\"x\"}' | %s seal %s %s %u", ENVELOPE_PATH,
				 !strcmp(which, "ring") ? ring : other, tenant, v);
			s = popen(cmd, "r");
			assert_non_null(s);
			assert_non_null(fgets(body, sizeof(body), s));
			body[strcspn(body, "\n")] = 0;
			assert_int_equal(pclose(s), 0);
		} else {
			snprintf(body, sizeof(body), "%s", bad[i][1]);
		}
		snprintf(id, sizeof(id), "bad-%u", i);
		cJSON_AddStringToObject(j, "id", id);
		a = cJSON_AddObjectToObject(j, "attributes");
		cJSON_AddStringToObject(a, "tenant", bad[i][0]);
		cJSON_AddStringToObject(j, "body", body);
		out = cJSON_PrintUnformatted(j);
		fprintf(f, "%s\n", out);
		free(out);
		cJSON_Delete(j);
	}
	/* Seq DEC_N + 9: a good message naming its tenant only inside the envelope. */
	{
		char plain[LEGACY_EVENT_MAX], path[160], body[4096];
		FILE *s;

		assert_true(legacy_event(4, "t03", plain, sizeof(plain)) > 0);
		snprintf(path, sizeof(path), "%s/plain.json", E.dir);
		s = fopen(path, "w");
		assert_non_null(s);
		fputs(plain, s);
		fclose(s);
		snprintf(cmd, sizeof(cmd), "%s seal %s t03 1 < %s", ENVELOPE_PATH, ring, path);
		s = popen(cmd, "r");
		assert_non_null(s);
		assert_non_null(fgets(body, sizeof(body), s));
		body[strcspn(body, "\n")] = 0;
		assert_int_equal(pclose(s), 0);
		fprintf(f, "{\"id\":\"envelope-tenant\",\"body\":\"");
		for (const char *c = body; *c; c++)
			fprintf(f, *c == '"' ? "\\\"" : "%c", *c);
		fprintf(f, "\"}\n");
	}
	fclose(f);
	f = fopen(E.conf, "a");
	assert_non_null(f);
	fprintf(f, "[decrypt]\nkeyring = %s\n", ring);
	fclose(f);

	ferryd_start(NULL, NULL);
	assert_true(wait_until(acked_at_least, &all, 60000));
	assert_int_equal(dump(ROOM_TOPIC, counts, DEC_N + 16, NULL, 0), DEC_N + 1);
	assert_int_equal(check_all(counts, DEC_N, 0), 0);
	assert_int_equal(counts[DEC_N + 9], 1); /* decrypt gave it its tenant attribute */
	/* An event carries the plaintext of its envelope. */
	snprintf(cmd, sizeof(cmd), "%s -b %s -t %s --expect 1", KAFKA_DUMP_PATH, E.bootstrap,
		 ROOM_TOPIC);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_true(getline(&line, &cap, p) > 0);
	assert_int_equal(pclose(p), 0);
	{
		cJSON *j = cJSON_Parse(line), *val = cJSON_GetObjectItemCaseSensitive(j, "value");
		unsigned char raw[2048];
		int64_t n = envelope_b64_decode(val->valuestring, strlen(val->valuestring), raw,
						sizeof(raw) - 1);

		assert_true(n > 0);
		raw[n] = 0;
		/* The catalog event map made of the plaintext (Protobuf). */
		if (!memmem(raw, (size_t)n, "ROOMDEACTIVATED", 15))
			fail_msg("event value is not made of the plaintext: %s", raw);
		cJSON_Delete(j);
	}
	/* Every dead letter: the right reason, once, and the message still encrypted. */
	snprintf(cmd, sizeof(cmd), "%s -b %s -t ferry.dead-letters --idle-ms 1500", KAFKA_DUMP_PATH,
		 E.bootstrap);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (getline(&line, &cap, p) > 0) {
		cJSON *j = cJSON_Parse(line), *h, *why, *val;
		unsigned char raw[2048];
		int64_t n;

		h = cJSON_GetObjectItemCaseSensitive(j, "headers");
		why = cJSON_GetObjectItemCaseSensitive(h, "ferry-dead-reason");
		val = cJSON_GetObjectItemCaseSensitive(j, "value");
		assert_true(cJSON_IsString(why) && cJSON_IsString(val));
		assert_string_equal(
			cJSON_GetObjectItemCaseSensitive(h, "ferry-dead-stage")->valuestring,
			"decrypt");
		n = envelope_b64_decode(val->valuestring, strlen(val->valuestring), raw,
					sizeof(raw) - 1);
		assert_true(n >= 0);
		raw[n] = 0;
		if (strstr((char *)raw, "eventType") || strstr((char *)raw, "ROOMDEACTIVATED"))
			fail_msg("plaintext in a dead letter: %s", raw);
		for (unsigned i = 0; i < 8; i++)
			if (strstr(why->valuestring, want[i]))
				found[i]++;
		dead++;
		cJSON_Delete(j);
	}
	free(line);
	assert_int_equal(pclose(p), 0);
	assert_int_equal(dead, 8);
	for (unsigned i = 0; i < 8; i++)
		if (found[i] != 1)
			fail_msg("reason '%s' seen %u times", want[i], found[i]);
	/* Per tenant, as an operator reads it. */
	snprintf(cmd, sizeof(cmd),
		 "%s -i %s status | grep -Eq '^t99 +decrypt\\.[01] +0 +1$' && "
		 "%s -i %s status | grep -Eq '^t98 +decrypt\\.[01] +0 +1$'",
		 FERRYCTL_PATH, E.instance, FERRYCTL_PATH, E.instance);
	if (system(cmd) != 0)
		fail_msg("ferryctl status lacks the tenants' failures: %s", cmd);
	/* The stage kept going: no restart. */
	assert_int_equal(worker("decrypt.0")->restarts + worker("decrypt.1")->restarts, 0);
	printf("# %u encrypted messages decrypted, 8 broken ones dead-lettered with their "
	       "reasons\n",
	       DEC_N);
	ferryd_stop();
}

#define KMS_N 1000u

/*
 * Data keys wrapped by KMS (a real moto_server): tenants t00-t03 have their
 * key as <tenant>/1.wrapped, unwrapped through KMS Decrypt with SigV4; t04's
 * wrapped key is corrupt, so KMS refuses it and its messages (only) become
 * dead letters with KMS's reason.
 */
static void test_decrypt_kms(void **state)
{
	static unsigned counts[KMS_N + 1];
	struct aws_creds creds = {0};
	struct aws_client *cl;
	struct moto *m;
	char ring[128], prod[128], replay[128], path[320], cmd[512], *line = NULL, *key_id;
	unsigned dead = 0;
	uint64_t all = KMS_N;
	size_t cap = 0;
	FILE *f, *p;

	(void)state;
	memset(counts, 0, sizeof(counts));
	m = moto_start(&E.moto, NULL);
	setenv("AWS_ACCESS_KEY_ID", "ferrytest", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "ferrytestsecret", 1);
	unsetenv("AWS_PROFILE");
	snprintf(creds.access_key, sizeof(creds.access_key), "ferrytest");
	snprintf(creds.secret_key, sizeof(creds.secret_key), "ferrytestsecret");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	cl = aws_client_new("us-east-1", m->endpoint, &creds);
	assert_non_null(cl);
	key_id = moto_kms(cl, "TrentService.CreateKey", "{\"Description\":\"ferry tenants\"}",
			  "KeyMetadata", "KeyId");
	snprintf(ring, sizeof(ring), "%s/keys", E.dir);
	snprintf(prod, sizeof(prod), "%s/producer-keys", E.dir);
	snprintf(replay, sizeof(replay), "%s/replay.jsonl", E.dir);
	for (unsigned t = 0; t < 5; t++) {
		unsigned char plain[ENVELOPE_KEY_LEN];
		char plain64[64], body[512], *blob;

		/* The producer holds the data key; ferry only its KMS-wrapped form. */
		for (unsigned i = 0; i < sizeof(plain); i++)
			plain[i] = (unsigned char)(rand() ^ (int)(t * 31 + i));
		EVP_EncodeBlock((unsigned char *)plain64, plain, sizeof(plain));
		snprintf(body, sizeof(body), "{\"KeyId\":\"%s\",\"Plaintext\":\"%s\"}", key_id,
			 plain64);
		blob = moto_kms(cl, "TrentService.Encrypt", body, "CiphertextBlob", NULL);
		if (t == 4)
			blob[10] = blob[10] == 'A' ? 'B' : 'A'; /* corrupt: KMS must refuse it */
		sh("mkdir -p -m 0700 %s/t%02u %s/t%02u", ring, t, prod, t);
		snprintf(path, sizeof(path), "%s/t%02u/1.wrapped", ring, t);
		write_file(path, blob);
		snprintf(path, sizeof(path), "%s/t%02u/1.key", prod, t);
		strcat(plain64, "\n");
		write_file(path, plain64);
		free(blob);
	}
	free(key_id);
	aws_client_free(cl);
	conf_write(0, 0, NULL);
	sh("%s replay %s %u 5 > %s", ENVELOPE_PATH, prod, KMS_N, replay);
	f = fopen(E.conf, "a");
	assert_non_null(f);
	fprintf(f, "[decrypt]\nkeyring = %s\nkms_region = us-east-1\nkms_endpoint = %s\n", ring,
		m->endpoint);
	fclose(f);

	ferryd_start(NULL, NULL);
	assert_true(wait_until(acked_at_least, &all, 60000));
	assert_int_equal(dump(ROOM_TOPIC, counts, KMS_N, NULL, 0), KMS_N / 5 * 4);
	for (unsigned q = 1; q <= KMS_N; q++)
		assert_int_equal(counts[q], (q - 1) % 5 == 4 ? 0 : 1);
	snprintf(cmd, sizeof(cmd), "%s -b %s -t ferry.dead-letters --idle-ms 1500", KAFKA_DUMP_PATH,
		 E.bootstrap);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (getline(&line, &cap, p) > 0) {
		/* moto answers a corrupt blob with InvalidCiphertext or AccessDenied. */
		if (!strstr(line, "KMS refused the data key of tenant 't04' version 1: kms: "))
			fail_msg("dead letter: %s", line);
		dead++;
	}
	free(line);
	assert_int_equal(pclose(p), 0);
	assert_int_equal(dead, KMS_N / 5);
	printf("# KMS-wrapped keys: %u messages of 4 tenants decrypted, %u of a tenant whose key "
	       "KMS refused dead-lettered\n",
	       KMS_N / 5 * 4, dead);
	ferryd_stop();
}

/* --- SQS and Pub/Sub sources ---------------------------------------------- */

#define SQS_N 500u

/*
 * SQS through moto_server: messages sent to a queue reach Kafka, each at
 * least once, and the queue is empty afterwards (nothing visible, nothing
 * in flight).
 */
static void test_sqs(void **state)
{
	static unsigned counts[SQS_N];
	struct aws_creds creds = {0};
	struct aws_client *cl;
	struct moto *m;
	char url[256], extra[1024], *out;
	uint64_t all = SQS_N;
	unsigned dups = 0;

	(void)state;
	memset(counts, 0, sizeof(counts));
	m = moto_start(&E.moto, NULL);
	setenv("AWS_ACCESS_KEY_ID", "ferrytest", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "ferrytestsecret", 1);
	unsetenv("AWS_PROFILE");
	snprintf(creds.access_key, sizeof(creds.access_key), "ferrytest");
	snprintf(creds.secret_key, sizeof(creds.secret_key), "ferrytestsecret");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	cl = aws_client_new("us-east-1", m->endpoint, &creds);
	assert_non_null(cl);
	out = sqs(cl, "CreateQueue",
		  "{\"QueueName\":\"ferry-in\",\"Attributes\":{\"VisibilityTimeout\":\"30\"}}");
	free(out);
	snprintf(url, sizeof(url), "%s/123456789012/ferry-in", m->endpoint);
	sqs_fill(cl, url, SQS_N);
	assert_int_equal(queue_depth(cl, url), SQS_N);
	snprintf(extra, sizeof(extra),
		 "[sqs]\nqueue = %s\nregion = us-east-1\nendpoint = %s\nwait_time = 1s\n", url,
		 m->endpoint);
	conf_write_sources(extra);
	ferryd_start(NULL, NULL);
	assert_true(wait_until(sources_acked, &all, 60000));
	assert_int_equal(dump_n(ROOM_TOPIC, counts, SQS_N) >= SQS_N, 1);
	for (unsigned i = 0; i < SQS_N; i++) {
		if (!counts[i])
			fail_msg("message %u never reached Kafka (log: %s/ferryd.log)", i, E.dir);
		dups += counts[i] - 1;
	}
	/*
	 * Empty once the last deletes are through. moto may hand one message
	 * to two concurrent receives (real SQS does not): that copy is a
	 * duplicate in Kafka, deleted moments later.
	 */
	{
		uint64_t end = now_ns() + 30000000000ull;

		while (queue_depth(cl, url) && now_ns() < end)
			sleep_ms(250);
		assert_int_equal(queue_depth(cl, url), 0);
	}
	printf("# SQS: %u messages from moto_server into Kafka, %u duplicates, %" PRIu64
	       " calls, queue empty\n",
	       SQS_N, dups, load64(&shm_sources(E.seg)[0].calls));
	ferryd_stop();
	aws_client_free(cl);
}

#define SNS_TOPICS 50u
#define SNS_PER	   10u /* messages per topic */
#define PS_SUBS	   200u
#define PS_PER	   5u /* messages per subscription */
#define SOURCES_N  (SNS_TOPICS * SNS_PER + PS_SUBS * PS_PER)

/*
 * The scene: 50 SNS topics fanned into one SQS queue (moto, with
 * signatures and permissions checked) and 200 Pub/Sub subscriptions (the
 * emulator), all on ingest's one thread. ingest is killed once mid-run.
 * Every message reaches Kafka, and the queue and subscriptions hold
 * nothing afterwards.
 */
static void test_sources(void **state)
{
	static unsigned counts[SOURCES_N];
	struct pubsub_emu *ps;
	struct aws_client *cl;
	struct moto *m;
	char akid[128], secret[128], qurl[256], qarn[256], extra[1024], subs[128];
	static char form[131072]; /* a PublishBatch of 10 form-encoded legacy events */
	char *xml, err[512];
	uint64_t half = SOURCES_N / 2;
	unsigned dups = 0, n = 0;
	FILE *f;

	(void)state;
	memset(counts, 0, sizeof(counts));
	m = moto_start(&E.moto, "3");
	moto_user(m, "sqs,sns", akid, sizeof(akid), secret, sizeof(secret));
	cl = moto_client(m, akid, secret);
	free(sqs(cl, "CreateQueue",
		 "{\"QueueName\":\"legacy-in\",\"Attributes\":{\"VisibilityTimeout\":\"10\"}}"));
	snprintf(qurl, sizeof(qurl), "%s/123456789012/legacy-in", m->endpoint);
	snprintf(qarn, sizeof(qarn), "arn:aws:sqs:us-east-1:123456789012:legacy-in");
	for (unsigned t = 0; t < SNS_TOPICS; t++) {
		char arn[256], *enc_arn, *enc_q = aws_form_encode(qarn);
		size_t len;

		snprintf(form, sizeof(form),
			 "Action=CreateTopic&Version=2010-03-31&Name=legacy-%02u", t);
		xml = query(cl, "sns", form);
		assert_true(aws_xml_text(xml, "TopicArn", arn, sizeof(arn)) > 0);
		free(xml);
		enc_arn = aws_form_encode(arn);
		snprintf(form, sizeof(form),
			 "Action=Subscribe&Version=2010-03-31&TopicArn=%s&Protocol=sqs&Endpoint=%s",
			 enc_arn, enc_q);
		free(query(cl, "sns", form));
		free(enc_q);
		/* 10 legacy events in one PublishBatch, the tenant and n as attributes. */
		len = (size_t)snprintf(form, sizeof(form),
				       "Action=PublishBatch&Version=2010-03-31&TopicArn=%s",
				       enc_arn);
		free(enc_arn);
		for (unsigned k = 0; k < SNS_PER; k++, n++) {
			char plain[LEGACY_EVENT_MAX], tenant[8], *enc;

			snprintf(tenant, sizeof(tenant), "t%02u", n % 20);
			assert_true(legacy_event(n * LEGACY_NTYPES + 4, tenant, plain,
						 sizeof(plain)) > 0);
			enc = aws_form_encode(plain);
			len += (size_t)snprintf(form + len, sizeof(form) - len,
						"&PublishBatchRequestEntries.member.%u.Id=%u"
						"&PublishBatchRequestEntries.member.%u.Message=%s"
						"&PublishBatchRequestEntries.member.%u."
						"MessageAttributes.entry.1.Name=tenant"
						"&PublishBatchRequestEntries.member.%u."
						"MessageAttributes.entry.1.Value."
						"DataType=String"
						"&PublishBatchRequestEntries.member.%u."
						"MessageAttributes.entry.1.Value."
						"StringValue=%s"
						"&PublishBatchRequestEntries.member.%u."
						"MessageAttributes.entry.2.Name=n"
						"&PublishBatchRequestEntries.member.%u."
						"MessageAttributes.entry.2.Value."
						"DataType=Number"
						"&PublishBatchRequestEntries.member.%u."
						"MessageAttributes.entry.2.Value."
						"StringValue=%u",
						k + 1, k, k + 1, enc, k + 1, k + 1, k + 1, tenant,
						k + 1, k + 1, k + 1, n);
			curl_free(enc);
			assert_true(len < sizeof(form));
		}
		xml = query(cl, "sns", form);
		assert_null(strstr(xml, "<Failed><member>"));
		free(xml);
	}
	assert_int_equal(queue_depth(cl, qurl), SNS_TOPICS * SNS_PER);

	/* 200 Pub/Sub topics with one subscription each, listed in a file. */
	ps = pubsub_emu_start(&E.pubsub, "ferry-test");
	snprintf(subs, sizeof(subs), "%s/subscriptions.txt", E.dir);
	f = fopen(subs, "w");
	assert_non_null(f);
	for (unsigned t = 0; t < PS_SUBS; t++) {
		char topic[128], sub[128];
		struct pubsub_request *rq = NULL;

		snprintf(topic, sizeof(topic), "projects/ferry-test/topics/legacy-%03u", t);
		snprintf(sub, sizeof(sub), "projects/ferry-test/subscriptions/legacy-%03u", t);
		pubsub_must(rq,
			    pubsub_topic_create_new(ps->base, NULL, topic, &rq, err, sizeof(err)),
			    err);
		pubsub_must(rq,
			    pubsub_subscription_create_new(ps->base, NULL, sub, topic, 10, 0, &rq,
							   err, sizeof(err)),
			    err);
		fprintf(f, "%s\n", sub);
		pubsub_fill(ps, topic, n, PS_PER);
		n += PS_PER;
	}
	fclose(f);
	assert_int_equal(n, SOURCES_N);

	/* ferryd signs with the IAM user's key; moto checks every call. */
	setenv("AWS_ACCESS_KEY_ID", akid, 1);
	setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	setenv("PUBSUB_EMULATOR_HOST", ps->host_port, 1);
	snprintf(extra, sizeof(extra),
		 "[sqs]\nqueue = %s\nregion = us-east-1\nendpoint = %s\nwait_time = 2s\n"
		 "[pubsub]\nsubscriptions_file = %s\n",
		 qurl, m->endpoint, subs);
	conf_write_sources(extra);
	ferryd_start(NULL, NULL);
	/* Half way, ingest dies: its successor takes over the in-flight table. */
	assert_true(wait_until(sources_acked, &half, 120000));
	kill(worker("ingest")->pid, SIGKILL);
	/*
	 * Done when each source had all its messages deleted / acknowledged
	 * and the queue is empty. A receive the dead ingest never read brings
	 * its messages back after their timeout (10 s): late, not lost.
	 */
	{
		uint64_t end = now_ns() + 180000000000ull;

		for (;;) {
			uint64_t sqs_acked = source_acked(0), ps_acked = 0;

			for (unsigned i = 1; i < E.seg->hdr->n_sources; i++)
				ps_acked += source_acked(i);
			if (sqs_acked >= SNS_TOPICS * SNS_PER && ps_acked >= PS_SUBS * PS_PER &&
			    queue_depth(cl, qurl) == 0)
				break;
			if (now_ns() > end)
				fail_msg("sources not drained: SQS %" PRIu64
					 " of %u acked, Pub/Sub %" PRIu64
					 " of %u (log: %s/ferryd.log)",
					 sqs_acked, SNS_TOPICS * SNS_PER, ps_acked,
					 PS_SUBS * PS_PER, E.dir);
			sleep_ms(250);
		}
	}
	assert_int_equal(worker("ingest")->restarts, 1);
	dump_n(ROOM_TOPIC, counts, SOURCES_N);
	for (unsigned i = 0; i < SOURCES_N; i++) {
		if (!counts[i])
			fail_msg("message %u never reached Kafka (log: %s/ferryd.log)", i, E.dir);
		dups += counts[i] - 1;
	}
	ferryd_stop();
	/* Nothing left: not visible, not in flight. */
	assert_int_equal(queue_depth(cl, qurl), 0);
	for (unsigned t = 0; t < PS_SUBS; t += 10) {
		char sub[128];

		snprintf(sub, sizeof(sub), "projects/ferry-test/subscriptions/legacy-%03u", t);
		assert_int_equal(pubsub_left(ps, sub), 0);
	}
	{
		uint64_t calls = 0, sqs_calls = shm_sources(E.seg)[0].calls;

		for (unsigned i = 0; i < E.seg->hdr->n_sources; i++)
			calls += shm_sources(E.seg)[i].calls;
		printf("# sources: %u SNS messages (50 topics -> 1 queue, signed) and %u Pub/Sub "
		       "messages (200 subscriptions) into Kafka, ingest killed once, %u "
		       "duplicates; SQS %.2f calls/message, all sources %.2f\n",
		       SNS_TOPICS * SNS_PER, PS_SUBS * PS_PER, dups,
		       (double)sqs_calls / (SNS_TOPICS * SNS_PER), (double)calls / SOURCES_N);
	}
	aws_client_free(cl);
}

/*
 * Visibility extension: a queue whose messages turn visible again after
 * 3 s, and a pipeline stopped for 7 s (map SIGSTOPped): ingest extends the
 * visibility of what is in flight, so SQS delivers nothing twice.
 */
#define VIS_N 200u

static void test_visibility(void **state)
{
	static unsigned counts[VIS_N];
	struct aws_client *cl;
	struct moto *m;
	char url[256], extra[512];
	uint64_t all = VIS_N;
	pid_t maps[2];

	(void)state;
	memset(counts, 0, sizeof(counts));
	m = moto_start(&E.moto, NULL);
	setenv("AWS_ACCESS_KEY_ID", "ferrytest", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "ferrytestsecret", 1);
	unsetenv("AWS_PROFILE");
	cl = moto_client(m, "ferrytest", "ferrytestsecret");
	free(sqs(cl, "CreateQueue",
		 "{\"QueueName\":\"slow\",\"Attributes\":{\"VisibilityTimeout\":\"3\"}}"));
	snprintf(url, sizeof(url), "%s/123456789012/slow", m->endpoint);
	snprintf(extra, sizeof(extra),
		 "[sqs]\nqueue = %s\nregion = us-east-1\nendpoint = %s\nwait_time = 1s\n"
		 "receives_per_queue = 1\n", /* moto may give one message to two receives at once */
		 url, m->endpoint);
	conf_write_sources(extra);
	ferryd_start(NULL, NULL);
	/* The pipeline stands still: nothing gets past map. */
	maps[0] = worker("map.0")->pid;
	maps[1] = worker("map.1")->pid;
	kill(maps[0], SIGSTOP);
	kill(maps[1], SIGSTOP);
	sqs_fill(cl, url, VIS_N);
	/* Every message taken, then held more than twice its visibility timeout. */
	{
		uint64_t end = now_ns() + 30000000000ull;

		while (load64(&shm_sources(E.seg)[0].received) < VIS_N && now_ns() < end)
			sleep_ms(20);
		assert_int_equal(load64(&shm_sources(E.seg)[0].received), VIS_N);
	}

	{
		uint64_t until = now_ns() + 7000000000ull;

		while (now_ns() < until)
			sleep_ms(100); /* the condition is time itself: 7 s of standstill */
	}
	kill(maps[0], SIGCONT);
	kill(maps[1], SIGCONT);
	assert_true(wait_until(sources_acked, &all, 60000));
	dump_n(ROOM_TOPIC, counts, VIS_N);
	for (unsigned i = 0; i < VIS_N; i++)
		if (counts[i] != 1)
			fail_msg("message %u reached Kafka %u times (log: %s/ferryd.log)", i,
				 counts[i], E.dir);
	/* Received once each: SQS redelivered nothing. */
	assert_int_equal(load64(&shm_sources(E.seg)[0].received), VIS_N);
	assert_true(load64(&shm_sources(E.seg)[0].extended) >= VIS_N);
	printf("# visibility: %u messages held 7 s in a stopped pipeline (timeout 3 s): %" PRIu64
	       " extensions, no redelivery\n",
	       VIS_N, load64(&shm_sources(E.seg)[0].extended));
	ferryd_stop();
	assert_int_equal(queue_depth(cl, url), 0);
	aws_client_free(cl);
}

/* --- the Schema Registry ------------------------------------------------ */

#define REG_N 200u /* legacy events: 20 of each type */

/*
 * Events of every type, produced with a registry (auto_register on), read
 * back from each catalog topic: the wire header, the headers, the value
 * decoded by Confluent's own ProtobufDeserializer and compared with what
 * was sent (imported EventMeta, nested UserRef, Timestamp, an imported
 * enum); and ferryctl tail's decoding equal to Confluent's, field by field.
 */
static void test_registry(void **state)
{
	char extra[512], cmd[1024], log[65536], path[128];
	cJSON *records = cJSON_CreateArray(), *decoded;
	unsigned seqs[REG_N * 2] = {0}, total = 0, want = 0, topics = 0;
	uint64_t n = REG_N;
	FILE *fp;

	(void)state;
	registry_start();
	for (unsigned i = 0; i < REG_N; i++)
		want += (unsigned)legacy_event_count(i);
	snprintf(extra, sizeof(extra),
		 "[registry]\nurl = %s\nauto_register = true\nretry_for = 10s\n[ferry]\n",
		 E.registry_url);
	/* conf_write's [ferry] extra: ours closes [registry] by reopening [ferry] */
	conf_write(0, 0, NULL);
	fp = fopen(E.conf, "w");
	assert_non_null(fp);
	fprintf(fp,
		"[ferry]\ninstance = %s\nshards = 2\nring_size = 4M\nrestart_delay_min = 1s\n"
		"restart_delay_max = 1s\ncontrol_socket = %s/ctl.sock\n%s"
		"[replay]\nfile = %s/replay.jsonl\n[kafka]\nbootstrap.servers = %s\n",
		E.instance, E.dir, extra, E.dir, E.bootstrap);
	fclose(fp);
	replay_write_all(REG_N);
	ferryd_start(NULL, NULL);
	assert_true(wait_until(acked_at_least, &n, 60000));
	read_log(log, sizeof(log));
	assert_non_null(strstr(log, "subject chat.v1.message-sent-value, schema id"));
	assert_null(strstr(log, "bare protobuf"));

	for (uint16_t t = 1; t < CATALOG_N; t++) {
		const char *topic = catalog_get(t)->topic;
		cJSON *dumped, *tailed, *d;
		unsigned in_topic = 0;

		snprintf(cmd, sizeof(cmd), "%s -b %s -t %s --idle-ms 1500 --timeout-ms 60000",
			 KAFKA_DUMP_PATH, E.bootstrap, topic);
		dumped = json_lines(cmd);
		cJSON_ArrayForEach(d, dumped)
		{
			const char *b64 = str_at(d, "value"),
				   *sid = str_at(d, "headers.ferry-source-id");
			size_t blen = strlen(b64);
			unsigned char *bytes = malloc(blen), i_tenant[8];
			char *hex = malloc(2 * blen + 1), want_s[64];
			int len = EVP_DecodeBlock(bytes, (const unsigned char *)b64, (int)blen);
			unsigned i;
			cJSON *r;

			assert_non_null(sid);
			assert_int_equal(sscanf(sid, "m-%u", &i), 1);
			assert_true(i < REG_N);
			len -= (blen && b64[blen - 1] == '=') + (blen > 1 && b64[blen - 2] == '=');
			/* Confluent's wire format: magic 0, a schema id, indexes, payload */
			assert_true(len > 6);
			assert_int_equal(bytes[0], 0);
			assert_true(bytes[1] | bytes[2] | bytes[3] | bytes[4]);
			/* Headers as the issue lists them (tenant, legacy type, source, ids,
			 * trace). */
			snprintf((char *)i_tenant, sizeof(i_tenant), "t%02u", i % 20);
			expect_str(d, "headers.ferry-tenant", (char *)i_tenant, topic);
			expect_str(d, "headers.ferry-legacy-type", legacy_event_type(i), topic);
			expect_str(d, "headers.ferry-source", "replay", topic);
			assert_non_null(str_at(d, "headers.ferry-seq"));
			if (i % 3 == 0) {
				snprintf(want_s, sizeof(want_s), "00-%032x-%016x-01", i + 1, i + 1);
				expect_str(d, "headers.ferry-trace-id", want_s, topic);
			} else {
				assert_null(str_at(d, "headers.ferry-trace-id"));
			}
			seqs[total++ % (REG_N * 2)] = i;
			in_topic++;
			for (int k = 0; k < len; k++)
				sprintf(hex + 2 * k, "%02x", bytes[k]);
			r = cJSON_CreateObject();
			cJSON_AddStringToObject(r, "topic", topic);
			cJSON_AddStringToObject(r, "hex", hex);
			cJSON_AddItemToArray(records, r);
			free(bytes);
			free(hex);
		}
		cJSON_Delete(dumped);
		assert_true(in_topic > 0); /* every catalog type reached its topic */
		topics++;

		/* ferryctl tail of the same topic: same records, decoded (checked below). */
		snprintf(cmd, sizeof(cmd), "%s tail -b %s -e --timeout-ms 60000 %s", FERRYCTL_PATH,
			 E.bootstrap, topic);
		tailed = json_lines(cmd);
		assert_int_equal(cJSON_GetArraySize(tailed), in_topic);
		snprintf(path, sizeof(path), "%s/tail-%u.json", E.dir, t);
		fp = fopen(path, "w");
		assert_non_null(fp);
		{
			char *text = cJSON_PrintUnformatted(tailed);

			fputs(text, fp);
			free(text);
		}
		fclose(fp);
		cJSON_Delete(tailed);
	}
	assert_int_equal(topics, CATALOG_N - 1);
	assert_int_equal(total, want);

	/* Confluent's ProtobufDeserializer, fetching the schemas by id from the registry. */
	{
		char in[160], out[160], *text = cJSON_PrintUnformatted(records), *buf;
		long size;

		snprintf(in, sizeof(in), "%s/records.json", E.dir);
		snprintf(out, sizeof(out), "%s/decoded.json", E.dir);
		fp = fopen(in, "w");
		assert_non_null(fp);
		fputs(text, fp);
		fclose(fp);
		free(text);
		snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s' < '%s' > '%s'", NODE_PATH, DECODE_JS,
			 E.registry_url, in, out);
		if (system(cmd) != 0)
			fail_msg("decode.js failed (did scripts/setup run npm ci --prefix "
				 "tests/registry?)");
		fp = fopen(out, "r");
		assert_non_null(fp);
		fseek(fp, 0, SEEK_END);
		size = ftell(fp);
		rewind(fp);
		buf = calloc(1, (size_t)size + 1);
		assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
		fclose(fp);
		decoded = cJSON_Parse(buf);
		free(buf);
		assert_non_null(decoded);
	}
	assert_int_equal(cJSON_GetArraySize(decoded), (int)total);
	{
		unsigned k = 0;
		cJSON *d;

		cJSON_ArrayForEach(d, decoded)
		{
			unsigned i = seqs[k++];
			unsigned long long ts = 1700000000000ull + i,
					   user = 71000000000000ull + i % 97;
			const char *topic = str_at(d, "topic");
			const struct catalog_entry *ce = NULL;
			char s[96];
			time_t secs = (time_t)(ts / 1000);
			struct tm tm;

			for (uint16_t t = 1; t < CATALOG_N; t++)
				if (!strcmp(catalog_get(t)->topic, topic))
					ce = catalog_get(t);
			assert_non_null(ce);
			expect_str(d, "type", ce->desc->name, topic);
			/* EventMeta: imported from ferry/common/v1, UserRef nested, a Timestamp */
			snprintf(s, sizeof(s), "ev%08x", i);
			expect_str(d, "value.meta.eventId", s, topic);
			snprintf(s, sizeof(s), "t%02u", i % 20);
			expect_str(d, "value.meta.tenantId", s, topic);
			expect_str(d, "value.meta.legacyType", legacy_event_type(i), topic);
			snprintf(s, sizeof(s), "%llu", user);
			expect_str(d, "value.meta.actor.userId", s, topic);
			gmtime_r(&secs, &tm);
			strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
			if (ts % 1000)
				snprintf(s + strlen(s), sizeof(s) - strlen(s), ".%03uZ",
					 (unsigned)(ts % 1000));
			else
				strcat(s, "Z");
			expect_str(d, "value.meta.occurredAt", s, topic);
			if (!strcmp(ce->desc->name, "ferry.chat.v1.MessageSent")) {
				/* the second message of its file: indexes [1], an imported enum */
				expect_str(d, "value.stream.kind", "STREAM_KIND_ROOM", topic);
				snprintf(s, sizeof(s), "msg%08xAAAA___t%02u", i, i % 20);
				expect_str(d, "value.messageId", s, topic);
				snprintf(s, sizeof(s), "room%06x_x-lA",
					 i / 16); /* URL-safe, as map keeps ids */
				expect_str(d, "value.stream.streamId", s, topic);
			}
		}
	}
	/* ferryctl tail's values are Confluent's, field by field (proto3 JSON both). */
	for (uint16_t t = 1; t < CATALOG_N; t++) {
		cJSON *tailed, *l, *d;
		char *buf;
		long size;

		snprintf(path, sizeof(path), "%s/tail-%u.json", E.dir, t);
		fp = fopen(path, "r");
		assert_non_null(fp);
		fseek(fp, 0, SEEK_END);
		size = ftell(fp);
		rewind(fp);
		buf = calloc(1, (size_t)size + 1);
		assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
		fclose(fp);
		tailed = cJSON_Parse(buf);
		free(buf);
		cJSON_ArrayForEach(l, tailed)
		{
			const char *id = str_at(l, "value.meta.eventId");
			const cJSON *match = NULL;

			assert_non_null(id);
			expect_str(l, "type", catalog_get(t)->desc->name, "ferryctl tail");
			assert_true(cJSON_GetObjectItemCaseSensitive(l, "schema_id")->valuedouble >
				    0);
			assert_non_null(str_at(l, "headers.ferry-seq"));
			cJSON_ArrayForEach(d, decoded)
			{
				const char *did = str_at(d, "value.meta.eventId");

				if (!strcmp(str_at(d, "topic"), catalog_get(t)->topic) && did &&
				    !strcmp(did, id))
					match = d;
			}
			assert_non_null(match);
			if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(l, "value"),
					   cJSON_GetObjectItemCaseSensitive(match, "value"), 1)) {
				char *a = cJSON_PrintUnformatted(l),
				     *b = cJSON_PrintUnformatted(match);

				fail_msg("ferryctl tail differs from Confluent's decoding:\n%s\n%s",
					 a, b);
			}
		}
		cJSON_Delete(tailed);
	}
	cJSON_Delete(decoded);
	cJSON_Delete(records);
	ferryd_stop();
	registry_stop();
}

/*
 * auto_register off against a registry whose subject holds another schema:
 * produce refuses to start, naming the subject and the difference, exits
 * 111, and ferryd says so; nothing is acked.
 */
static void test_registry_refused(void **state)
{
	struct registry_config rc = {.auto_register = true};
	const struct registry_schema *s;
	struct registry *r;
	char err[1024], log[65536];
	FILE *fp;

	(void)state;
	registry_start();
	/* Another team's schema (ferry.room.v1.RoomCreated) under chat.v1.message-sent-value. */
	rc.url = E.registry_url;
	r = registry_new(&rc, catalog_fds, catalog_fds_len, err, sizeof(err));
	assert_non_null(r);
	if (registry_resolve(r, "ferry.room.v1.RoomCreated", "chat.v1.message-sent", &s, err,
			     sizeof(err)))
		fail_msg("%s", err);
	registry_free(r);
	conf_write(20, 0, NULL);
	fp = fopen(E.conf, "a");
	assert_non_null(fp);
	fprintf(fp, "[registry]\nurl = %s\nauto_register = false\nretry_for = 2s\n",
		E.registry_url);
	fclose(fp);
	ferryd_spawn(NULL, NULL);
	assert_true(wait_until(segment_there, NULL, 10000));
	assert_true(wait_until(log_has, "produce exited with status 111", 30000));
	read_log(log, sizeof(log));
	if (!strstr(log, "subject chat.v1.message-sent-value: the registry's latest schema") ||
	    !strstr(log, "differs from the compiled ferry/chat/v1/message.proto"))
		fail_msg("the refusal does not name the subject and the difference:\n%s", log);
	assert_int_equal(acked(), 0);
	check_log_clean();
	registry_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kills, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hot_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigterm_and_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poison_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hung_stage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decrypt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decrypt_kms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sources, setup, teardown),
		cmocka_unit_test_setup_teardown(test_visibility, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry_refused, setup, teardown),
	};

	return harness_run("test-pipeline", tests, sizeof(tests) / sizeof(tests[0]));
}
