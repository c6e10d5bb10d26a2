/* SPDX-License-Identifier: MIT */
/*
 * Dead-letter replay end to end (the whole service on mock Kafka):
 *
 * 30 encrypted legacy events (ROOMDEACTIVATED, one catalog event each) of
 * three tenants come from a replay file (and one of globex that map
 * refuses: its dead letter names its legacy type): globex's key is in the key ring,
 * acme's and initech's are missing, so their 20 messages become dead
 * letters naming the unknown tenant. A corrupt spool file is set aside
 * (renamed .bad) with an error line, nothing sent. Then acme's key is put
 * back and ferryd reloaded (SIGHUP: decrypt drops its cached keys), and
 * `ferryctl replay-dlq --tenant acme` (after a --dry-run that writes
 * nothing) sends acme's dead letters back: each acme message is then in
 * room.v1.room-deactivated once, with ferry-replayed: 1, nothing of globex
 * or initech was replayed, and the spool file is gone. initech gets a key,
 * but not the one its producers used: `replay-dlq --tenant initech` sends
 * its dead letters through again, they fail again with the new reason (tag
 * mismatch) and come back to the dead-letter topic marked replayed, where
 * a next replay-dlq selects exactly them by that reason. Meanwhile ingest
 * is killed with those messages in the pipeline: none is sent twice.
 * Progress across a restart of ferryd: a spool file whose ".done" file
 * names 5 of its 10 messages as in Kafka sends only the other 5.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/dlq.h"
#include "tests/proc/harness.h"
#include "tests/tools/legacy.h"

#define PER_TENANT 10u
#define N	   (3 * PER_TENANT)
#define DLQ_TOPIC  "ferry.dead-letters"

static const char *const tenants[] = {"acme", "globex", "initech"};

static char spool[128], ring[128];

/* plain sealed for tenant t (key version 1) by ferry-envelope into body. */
static void seal_into(const char *t, const char *plain, char *body, size_t len)
{
	char plain_path[160], cmd[512];
	FILE *p, *s;

	snprintf(plain_path, sizeof(plain_path), "%s/plain.json", E.dir);
	s = fopen(plain_path, "w");
	assert_non_null(s);
	fputs(plain, s);
	fclose(s);
	snprintf(cmd, sizeof(cmd), "%s seal %s %s 1 < %s", ENVELOPE_PATH, ring, t, plain_path);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(body, (int)len, p));
	body[strcspn(body, "\n")] = 0;
	assert_int_equal(pclose(p), 0);
}

/* One replay line: id, the tenant attribute, body. */
static void put_line(FILE *f, const char *id, const char *t, const char *body)
{
	cJSON *j = cJSON_CreateObject();
	char *line;

	cJSON_AddStringToObject(j, "id", id);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(j, "attributes"), "tenant", t);
	cJSON_AddStringToObject(j, "body", body);
	line = cJSON_PrintUnformatted(j);
	fprintf(f, "%s\n", line);
	free(line);
	cJSON_Delete(j);
}

/* Encrypted legacy events into the replay file conf_write() named; tenant i % 3. */
static void write_replay(void)
{
	char replay[160], plain[LEGACY_EVENT_MAX], body[4096], id[16];
	FILE *f;

	snprintf(replay, sizeof(replay), "%s/replay.jsonl", E.dir);
	f = fopen(replay, "w");
	assert_non_null(f);
	for (unsigned i = 0; i < N; i++) {
		const char *t = tenants[i % 3];

		assert_true(legacy_event(i * LEGACY_NTYPES + 4, t, plain, sizeof(plain)) > 0);
		seal_into(t, plain, body, sizeof(body));
		snprintf(id, sizeof(id), "m-%03u", i);
		put_line(f, id, t, body);
	}
	/* Seq N + 1: a ROOMDEACTIVATED of globex's that map refuses (no payload). */
	seal_into("globex",
		  "{\"id\":\"ev-map\",\"timestamp\":1700000000000,\"type\":\"ROOMDEACTIVATED\","
		  "\"initiator\":{\"user\":{\"userId\":7}},\"payload\":{}}",
		  body, sizeof(body));
	put_line(f, "m-map", "globex", body);
	fclose(f);
}

static cJSON *topic(const char *name)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "%s -b %s -t %s --idle-ms 1500 --timeout-ms 60000",
		 KAFKA_DUMP_PATH, E.bootstrap, name);
	return json_lines(cmd);
}

static const char *header(const cJSON *rec, const char *name)
{
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(rec, "headers");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(h, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Files in the spool whose name ends in suffix. */
static unsigned spooled(const char *suffix)
{
	DIR *d = opendir(spool);
	struct dirent *e;
	unsigned n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name), s = strlen(suffix);

		n += e->d_name[0] != '.' && l > s && !strcmp(e->d_name + l - s, suffix);
	}
	closedir(d);
	return n;
}

static int spool_empty(void *unused)
{
	(void)unused;
	return spooled(".dlq") == 0;
}

static int gone(void *path)
{
	return access(path, F_OK) < 0;
}

static int bad_set_aside(void *unused)
{
	(void)unused;
	return spooled(".dlq.bad") == 1 && log_has("0-corrupt.dlq");
}

/* At least *want lines "key ring flushed" (decrypt's reload) since ferryd started. */
static int flushed(void *want)
{
	static char log[1 << 20];
	const char *p = log;
	int n = 0;

	read_log(log, sizeof(log));
	while ((p = strstr(p, "key ring flushed"))) {
		n++;
		p++;
	}
	return n >= *(int *)want;
}

/* The spool source took at least *want messages (all incarnations of ingest). */
static int spool_received(void *want)
{
	for (unsigned i = 0; i < E.seg->hdr->n_sources; i++)
		if (shm_sources(E.seg)[i].kind == MSG_SOURCE_DLQ)
			return load64(&shm_sources(E.seg)[i].received) >= *(uint64_t *)want;
	return 0;
}

/* Run replay-dlq with args; its stdout into out. Returns its exit status. */
static int replay_dlq(const char *args, char *out, size_t len)
{
	char cmd[1024];
	size_t got;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "%s replay-dlq -c %s --timeout-ms 20000 %s", FERRYCTL_PATH,
		 E.conf, args);
	p = popen(cmd, "r");
	assert_non_null(p);
	got = fread(out, 1, len - 1, p);
	out[got] = 0;
	printf("# ferryctl replay-dlq %s:\n%s", args, out);
	return pclose(p);
}

static void test_replay_dlq(void **state)
{
	char extra[512], out[8192], hidden[160], path[512];
	unsigned seen[N] = {0}, acme_dead = 0, initech_dead = 0, again = 0;
	uint64_t want;
	int flushes;
	pid_t maps[2];
	cJSON *recs, *r;
	FILE *f;

	(void)state;
	snprintf(ring, sizeof(ring), "%s/keys", E.dir);
	snprintf(spool, sizeof(spool), "%s/spool", E.dir);
	snprintf(hidden, sizeof(hidden), "%s/hidden", E.dir);
	/* map is stopped for a few seconds below: no hung-stage kill meanwhile. */
	snprintf(extra, sizeof(extra),
		 "heartbeat_timeout = 60s\n[ingest]\ndlq_spool = %s\n[decrypt]\nkeyring = %s\n",
		 spool, ring);
	conf_write(0, 0, extra);
	sh("mkdir -p %s && for t in acme globex initech; do %s keygen %s $t 1; done", hidden,
	   ENVELOPE_PATH, ring);
	write_replay();
	/* acme's and initech's keys are lost. */
	sh("mv %s/acme %s/initech %s/", ring, ring, hidden);
	ferryd_start(NULL, NULL);
	want = N + 1;
	assert_true(wait_until(acked_at_least, &want, 60000));

	recs = topic(DLQ_TOPIC);
	assert_int_equal(cJSON_GetArraySize(recs), 2 * PER_TENANT + 1);
	cJSON_ArrayForEach(r, recs)
	{
		const char *t = header(r, "tenant"), *why = header(r, "ferry-dead-reason");

		assert_non_null(t);
		assert_non_null(why);
		if (!strcmp(t, "globex")) { /* map's: the legacy type named */
			assert_string_equal(header(r, "ferry-dead-stage"), "map");
			assert_string_equal(header(r, "ferry-legacy-type"), "ROOMDEACTIVATED");
			assert_non_null(strstr(why, "map: payload"));
			/* The envelope as received, not the plaintext: replayable. */
			assert_null(header(r, "ferry-dead-value-dropped"));
			continue;
		}
		assert_string_equal(header(r, "ferry-dead-stage"), "decrypt");
		assert_null(header(r, "ferry-replayed"));
		if (!strcmp(t, "acme")) {
			assert_non_null(strstr(why, "unknown tenant 'acme'"));
			acme_dead++;
		} else {
			assert_string_equal(t, "initech");
			assert_non_null(strstr(why, "unknown tenant 'initech'"));
		}
	}
	assert_int_equal(acme_dead, PER_TENANT);
	cJSON_Delete(recs);

	/* A corrupt spool file: set aside, said, nothing sent. */
	snprintf(path, sizeof(path), "%s/0-corrupt.dlq", spool);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("FERRYDLQ this is not a spool file", f);
	fclose(f);
	assert_true(wait_until(bad_set_aside, NULL, 10000));

	/* acme's key is back; ferryd reloaded. */
	sh("mv %s/acme %s/", hidden, ring);
	kill(E.ferryd, SIGHUP);
	flushes = 2; /* one per decrypt shard */
	assert_true(wait_until(flushed, &flushes, 10000));

	assert_int_equal(replay_dlq("--tenant acme --dry-run", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "would replay 10 dead letters"));
	assert_non_null(strstr(out, "tenant 'acme'  decrypt: unknown tenant 'acme'"));
	assert_non_null(strstr(out, "skipped 11: not selected"));
	assert_int_equal(spooled(".dlq"), 0);
	assert_int_equal(replay_dlq("--tenant acme", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "replaying 10 dead letters"));
	assert_non_null(strstr(out, "spool file: "));
	want = N + 1 + PER_TENANT;
	assert_true(wait_until(acked_at_least, &want, 60000));
	assert_true(wait_until(spool_empty, NULL, 10000));

	/* Each acme message once, replayed; globex's as before; nothing of initech. */
	recs = topic(ROOM_TOPIC);
	assert_int_equal(cJSON_GetArraySize(recs), 2 * PER_TENANT);
	cJSON_ArrayForEach(r, recs)
	{
		const char *t = header(r, "ferry-tenant"), *id = header(r, "ferry-source-id");
		const char *rep = header(r, "ferry-replayed"), *src = header(r, "ferry-source");
		unsigned i;

		assert_non_null(t);
		assert_non_null(id);
		assert_int_equal(sscanf(id, "m-%u", &i), 1);
		assert_true(i < N);
		assert_string_equal(t, tenants[i % 3]);
		seen[i]++;
		if (!strcmp(t, "acme")) {
			assert_non_null(rep);
			assert_string_equal(rep, "1");
			assert_string_equal(src, "dlq-replay");
			assert_null(header(r, "ferry-dead-reason")); /* bookkeeping stripped */
		} else {
			assert_string_equal(t, "globex");
			assert_null(rep);
			assert_string_equal(src, "replay");
		}
	}
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(seen[i], i % 3 == 2 ? 0 : 1);
	cJSON_Delete(recs);

	/*
	 * As after a restart of ferryd half way through a file: the same acme
	 * dead letters spooled again (staged elsewhere, by a config naming
	 * another spool), with a .done file saying its first 5 are in Kafka.
	 */
	{
		char staged[160], conf2[160], name[256], err[256], cmd2[1024];
		unsigned again_seen[N] = {0};
		struct dlq_file df;
		DIR *d;
		struct dirent *e;

		snprintf(staged, sizeof(staged), "%s/staged", E.dir);
		snprintf(conf2, sizeof(conf2), "%s/staged.conf", E.dir);
		f = fopen(conf2, "w");
		assert_non_null(f);
		fprintf(f, "[ingest]\ndlq_spool = %s\n[kafka]\nbootstrap.servers = %s\n", staged,
			E.bootstrap);
		fclose(f);
		snprintf(cmd2, sizeof(cmd2),
			 "%s replay-dlq -c %s --tenant acme --timeout-ms 20000 >/dev/null",
			 FERRYCTL_PATH, conf2);
		assert_int_equal(system(cmd2), 0);
		d = opendir(staged);
		assert_non_null(d);
		name[0] = 0;
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				snprintf(name, sizeof(name), "%s", e->d_name);
		closedir(d);
		assert_true(name[0] != 0);
		snprintf(path, sizeof(path), "%s/%s", staged, name);
		assert_int_equal(dlq_file_load(path, &df, err, sizeof(err)), 0);
		assert_int_equal(df.n, PER_TENANT);
		for (unsigned k = 0; k < df.n; k++) {
			unsigned i;

			assert_int_equal(sscanf(df.msgs[k].id.p, "m-%3u", &i), 1);
			again_seen[i] = k < 5 ? 1 : 2; /* what acme's events count then */
		}
		dlq_file_free(&df);
		snprintf(path, sizeof(path), "%s/.%s.done", spool, name);
		f = fopen(path, "w");
		assert_non_null(f);
		/* 0 to 4, then a torn write of 9: not taken */
		fwrite("\0\0\0\0\1\0\0\0\2\0\0\0\3\0\0\0\4\0\0\0\x09\0", 1, 22, f);
		fclose(f);
		sh("mv %s/%s %s/", staged, name, spool);
		assert_true(wait_until(spool_empty, NULL, 30000));
		assert_true(wait_until(gone, path, 5000)); /* the .done file goes after it */
		recs = topic(ROOM_TOPIC);
		memset(seen, 0, sizeof(seen));
		cJSON_ArrayForEach(r, recs)
		{
			unsigned i;

			assert_int_equal(sscanf(header(r, "ferry-source-id"), "m-%u", &i), 1);
			seen[i]++;
		}
		cJSON_Delete(recs);
		for (unsigned i = 0; i < N; i++)
			assert_int_equal(seen[i], i % 3 == 0 ? again_seen[i] : i % 3 == 1);
	}

	/*
	 * initech gets a key, not its producers' one: the replay fails again.
	 * Meanwhile ingest is SIGKILLed while the replayed messages wait in
	 * the pipeline (map stopped): the next ingest takes them over from the
	 * in-flight table and sends none of them twice.
	 */
	sh("%s keygen %s initech 1", ENVELOPE_PATH, ring);
	kill(E.ferryd, SIGHUP);
	flushes = 4;
	assert_true(wait_until(flushed, &flushes, 10000));
	maps[0] = worker("map.0")->pid;
	maps[1] = worker("map.1")->pid;
	kill(maps[0], SIGSTOP);
	kill(maps[1], SIGSTOP);
	assert_int_equal(replay_dlq("--tenant initech --reason 'unknown tenant'", out, sizeof(out)),
			 0);
	assert_non_null(strstr(out, "replaying 10 dead letters"));
	want = 2 * PER_TENANT;
	assert_true(wait_until(spool_received, &want, 10000));
	kill(worker("ingest")->pid, SIGKILL);
	assert_true(wait_until(restarted, "ingest", 10000));
	assert_true(wait_until(log_has, "in-flight table taken over", 10000));
	kill(maps[0], SIGCONT);
	kill(maps[1], SIGCONT);
	assert_true(wait_until(spool_empty, NULL, 30000));
	recs = topic(DLQ_TOPIC);
	assert_int_equal(cJSON_GetArraySize(recs), 3 * PER_TENANT + 1);
	cJSON_ArrayForEach(r, recs)
	{
		const char *t = header(r, "tenant"), *why = header(r, "ferry-dead-reason");
		const char *rep = header(r, "ferry-replayed");

		if (strcmp(t, "initech"))
			continue;
		if (rep) {
			/* Back with its new reason, stage and the mark; the attributes as before.
			 */
			assert_string_equal(rep, "1");
			assert_non_null(strstr(why, "tag mismatch"));
			assert_string_equal(header(r, "ferry-dead-stage"), "decrypt");
			assert_non_null(header(r, "ferry-source-id"));
			assert_string_equal(cJSON_GetObjectItemCaseSensitive(r, "key")->valuestring,
					    header(r, "ferry-source-id"));
			again++;
		} else {
			assert_non_null(strstr(why, "unknown tenant 'initech'"));
			initech_dead++;
		}
	}
	assert_int_equal(again, PER_TENANT);
	assert_int_equal(initech_dead, PER_TENANT);
	cJSON_Delete(recs);
	/* The next replay finds exactly those by their new reason. */
	assert_int_equal(replay_dlq("--reason 'tag mismatch' --dry-run", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "would replay 10 dead letters"));
	assert_non_null(strstr(out, "skipped 21: not selected"));
	/* Times (offsets_for_times from --since) and --limit. */
	assert_int_equal(replay_dlq("--since 1h --dry-run", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "would replay 31 dead letters"));
	assert_null(strstr(out, "decrypted plaintext left out"));
	assert_int_equal(replay_dlq("--until 1h --dry-run", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "would replay 0 dead letters"));
	assert_non_null(strstr(out, "skipped 31: not selected"));
	assert_int_equal(replay_dlq("--stage decrypt --limit 4 --dry-run", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "would replay 4 dead letters"));
	assert_non_null(strstr(out, "skipped 1: not selected"));
	assert_non_null(strstr(out, "skipped 26: over --limit"));
	/*
	 * --type finds map's dead letter. It carries the envelope as received
	 * (decrypt passes it along beside the plaintext), so it goes through
	 * decrypt and map again ("a mapper corrected"): this one is still bad,
	 * and comes back with the mark.
	 */
	assert_int_equal(replay_dlq("--type roomdeactivated", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "replaying 1 dead letters"));
	assert_non_null(strstr(out, "skipped 30: not selected"));
	assert_true(wait_until(spool_empty, NULL, 30000));
	{
		int back = 0;

		recs = topic(DLQ_TOPIC);
		cJSON_ArrayForEach(r, recs)
		{
			const char *t = header(r, "tenant"), *rep = header(r, "ferry-replayed");

			if (t && !strcmp(t, "globex") && rep) {
				assert_string_equal(header(r, "ferry-dead-stage"), "map");
				assert_non_null(
					strstr(header(r, "ferry-dead-reason"), "map: payload"));
				assert_null(header(r, "ferry-dead-value-dropped"));
				back++;
			}
		}
		cJSON_Delete(recs);
		assert_int_equal(back, 1);
	}
	assert_int_equal(replay_dlq("--since 1h --until 1999-01-01T00:00:00Z", out, sizeof(out)),
			 100 << 8);
	assert_int_equal(replay_dlq("--since yesterday", out, sizeof(out)), 100 << 8);
	ferryd_stop();
	check_log_clean();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_replay_dlq, setup, teardown),
	};

	return harness_run("test-replay-dlq", tests, sizeof(tests) / sizeof(tests[0]));
}
