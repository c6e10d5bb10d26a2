/* SPDX-License-Identifier: MIT */
/* The harness of the whole-service tests: see harness.h. */
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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

#include <curl/curl.h>

#include "common/time.h"
#include "tests/proc/harness.h"
#include "tests/proc/moto.h"
#include "tests/tools/legacy.h"

struct env E;

void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Poll cond every 5 ms until it holds or timeout_ms passes. Returns cond's last value. */
int wait_until(int (*cond)(void *), void *arg, unsigned timeout_ms)
{
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ull;

	while (!cond(arg)) {
		if (now_ns() > end)
			return cond(arg);
		sleep_ms(5);
		notify_drain(0);
	}
	return 1;
}

struct shm_worker *worker(const char *name)
{
	for (unsigned i = 0; i < E.seg->hdr->n_workers; i++)
		if (!strcmp(E.seg->workers[i].name, name))
			return &E.seg->workers[i];
	fail_msg("no stage %s", name);
	return NULL;
}

uint64_t load64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

int running(void *name)
{
	struct shm_worker *w = worker(name);

	return w->pid > 0 && w->state == SHM_SSTATE_UP && w->wstate >= SHM_WSTATE_RUNNING &&
	       load64(&w->heartbeat_ns) >= w->started_ns;
}

int down(void *name)
{
	return worker(name)->state == SHM_SSTATE_BACKOFF;
}

uint64_t acked(void)
{
	return load64(&worker("ingest")->records_in);
}

int acked_at_least(void *n)
{
	return acked() >= *(uint64_t *)n;
}

void notify_drain(int timeout_ms)
{
	struct pollfd p = {.fd = E.notify, .events = POLLIN};
	char buf[1024];

	while (poll(&p, 1, timeout_ms) > 0) {
		ssize_t n = recv(E.notify, buf, sizeof(buf) - 1, 0);

		if (n <= 0)
			break;
		buf[n] = 0;
		if (strlen(E.seen) + (size_t)n + 2 < sizeof(E.seen)) {
			strcat(E.seen, buf);
			strcat(E.seen, "\n");
		}
		timeout_ms = 0;
	}
}

int notified(void *what)
{
	notify_drain(0);
	return strstr(E.seen, what) != NULL;
}

void mock_start(void)
{
	int out[2];
	char buf[512];
	size_t got = 0;

	assert_int_equal(pipe(out), 0);
	E.mock = fork();
	assert_true(E.mock >= 0);
	if (E.mock == 0) {
		dup2(out[1], 1);
		close(out[0]);
		execl(KAFKA_MOCK_PATH, KAFKA_MOCK_PATH, "-b", "1", "-t", "ferry.events:16", "-t",
		      ROOM_TOPIC ":16", "-t", "ferry.dead-letters:1", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	while (got < sizeof(buf) - 1 && !memchr(buf, '\n', got)) {
		ssize_t n = read(out[0], buf + got, sizeof(buf) - 1 - got);

		assert_true(n > 0);
		got += (size_t)n;
	}
	close(out[0]);
	buf[got] = 0;
	assert_true(sscanf(buf, "bootstrap=%255s", E.bootstrap) == 1);
}

/* One replay line: id m-<i>, the tenant attribute, traceparent when trace is set. */
static void replay_line(FILE *f, unsigned i, const char *tenant, const char *trace,
			const char *body)
{
	cJSON *j = cJSON_CreateObject(), *a;
	char id[16], *line;

	snprintf(id, sizeof(id), "m-%06u", i);
	cJSON_AddStringToObject(j, "id", id);
	a = cJSON_AddObjectToObject(j, "attributes");
	cJSON_AddStringToObject(a, "tenant", tenant);
	if (trace)
		cJSON_AddStringToObject(a, "traceparent", trace);
	cJSON_AddStringToObject(j, "body", body);
	line = cJSON_PrintUnformatted(j);
	fprintf(f, "%s\n", line);
	free(line);
	cJSON_Delete(j);
}

/*
 * A replay file of n legacy events (ROOMDEACTIVATED: one catalog event
 * each) for 20 tenants; the message of seq poison_seq (if any) carries the
 * string that makes map crash under FERRY_TEST_POISON.
 */
void replay_write(const char *path, unsigned n, unsigned poison_seq)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	for (unsigned i = 0; i < n; i++) {
		char plain[LEGACY_EVENT_MAX], tenant[8];

		snprintf(tenant, sizeof(tenant), "t%02u", i % 20);
		if (i + 1 == poison_seq)
			snprintf(plain, sizeof(plain), "POISON-PILL");
		else
			assert_true(legacy_event(i * LEGACY_NTYPES + 4, tenant, plain,
						 sizeof(plain)) > 0);
		replay_line(f, i, tenant, NULL, plain);
	}
	fclose(f);
}

void conf_write(unsigned n, unsigned rate, const char *extra)
{
	char replay[128];
	FILE *f;

	snprintf(replay, sizeof(replay), "%s/replay.jsonl", E.dir);
	replay_write(replay, n, 0);
	snprintf(E.conf, sizeof(E.conf), "%s/ferry.conf", E.dir);
	f = fopen(E.conf, "w");
	assert_non_null(f);
	fprintf(f,
		"[ferry]\ninstance = %s\nshards = 2\nring_size = 4M\nrestart_delay_min = 1s\n"
		"restart_delay_max = 1s\ncontrol_socket = %s/ctl.sock\n%s\n"
		"[replay]\nfile = %s\nrate = %u\n"
		"[kafka]\nbootstrap.servers = %s\n",
		E.instance, E.dir, extra ? extra : "", replay, rate, E.bootstrap);
	fclose(f);
}

/* Replace the first `from` in E.conf with `to` (the file as a running ferryd would reload it). */
void conf_replace(const char *from, const char *to)
{
	char *text = NULL, *at;
	size_t cap = 0;
	FILE *f = fopen(E.conf, "r");
	ssize_t n;

	assert_non_null(f);
	n = getdelim(&text, &cap, 0, f);
	fclose(f);
	assert_true(n > 0);
	at = strstr(text, from);
	assert_non_null(at);
	f = fopen(E.conf, "w");
	assert_non_null(f);
	fprintf(f, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
	fclose(f);
	free(text);
}

int segment_there(void *unused)
{
	(void)unused;
	return shm_segment_open(E.instance, SHM_RDONLY, &E.seg, NULL, 0) == 0;
}

/* fork+exec ferryd on E.conf, its stdout and stderr appended to ferryd.log. */
pid_t ferryd_spawn_at(const char *conf, const char *log, const char *watchdog_usec,
		      const char *poison)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		dup2(fd, 1);
		dup2(fd, 2);
		setenv("NOTIFY_SOCKET", E.notify_path, 1);
		if (watchdog_usec) {
			char pid_s[16];

			snprintf(pid_s, sizeof(pid_s), "%d", (int)getpid());
			setenv("WATCHDOG_USEC", watchdog_usec, 1);
			setenv("WATCHDOG_PID", pid_s, 1);
		}
		if (poison)
			setenv("FERRY_TEST_POISON", poison, 1);
		setenv("FERRY_LOG", "stderr", 1);
		execl(FERRYD_PATH, FERRYD_PATH, "-c", conf, (char *)NULL);
		_exit(127);
	}
	return pid;
}

void ferryd_spawn(const char *watchdog_usec, const char *poison)
{
	char log[128];

	snprintf(log, sizeof(log), "%s/ferryd.log", E.dir);
	E.ferryd = ferryd_spawn_at(E.conf, log, watchdog_usec, poison);
}

/* ferryd.log as it is now, in buf. */
void read_log(char *buf, size_t len)
{
	char path[128];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/ferryd.log", E.dir);
	f = fopen(path, "r");
	if (f) {
		n = fread(buf, 1, len - 1, f);
		fclose(f);
	}
	buf[n] = 0;
}

void ferryd_start(const char *watchdog_usec, const char *poison)
{
	ferryd_spawn(watchdog_usec, poison);
	assert_true(wait_until(notified, "READY=1", 20000));
	assert_true(wait_until(segment_there, NULL, 5000));
}

/* No stage may have tripped a sanitizer: a crash it survived would hide it. */
void check_log_clean_at(const char *path)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	while (getline(&line, &cap, f) > 0)
		if (strstr(line, "Sanitizer") || strstr(line, "runtime error:"))
			fail_msg("%s: %s", path, line);
	free(line);
	fclose(f);
}

void check_log_clean(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/ferryd.log", E.dir);
	check_log_clean_at(path);
}

/*
 * What ingest holds, on stdout: every occupied slot of the in-flight table
 * (at most 40), then ferryctl status (stages, sources with their health and
 * last error, tenants, rings) and the last lines of ferryd.log. For a test's
 * failure message.
 */
void inflight_report(void)
{
	static const char *const state[] = {"free", "received", "pipeline", "acked", "returning"};
	const struct shm_inflight *t = shm_inflight(E.seg);
	uint64_t now = now_ns();
	unsigned shown = 0;
	char cmd[512];

	for (uint32_t i = 0; t && i < E.seg->hdr->inflight_slots; i++) {
		const struct shm_inflight *sl = &t[i];
		uint64_t seq = load64(&sl->seq);
		uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_RELAXED);

		if (!seq)
			continue;
		if (shown++ < 40)
			printf("# slot %u: seq %" PRIu64 " %s, source %u, shard %u, age %.1f s, "
			       "deadline in %.1f s, %u extensions, busy %u, token %u bytes\n",
			       i, seq, st < 5 ? state[st] : "?", sl->source, sl->shard,
			       (double)(int64_t)(now - sl->received_ns) / 1e9,
			       (double)(int64_t)(sl->deadline_ns - now) / 1e9, sl->extensions,
			       sl->busy, sl->token_len);
	}
	printf("# %u slots occupied; ferryctl status:\n", shown);
	fflush(stdout);
	snprintf(cmd, sizeof(cmd), "%s -i %s status 2>&1 | sed 's/^/#   /'", FERRYCTL_PATH,
		 E.instance);
	if (system(cmd) != 0)
		printf("# (no status)\n");
	printf("# the end of %s/ferryd.log:\n", E.dir);
	fflush(stdout);
	snprintf(cmd, sizeof(cmd), "tail -n 60 '%s/ferryd.log' | sed 's/^/#   /'", E.dir);
	if (system(cmd) != 0)
		printf("# (no log)\n");
	fflush(stdout);
}

/* SIGTERM ferryd and expect a drained exit 0. */
void ferryd_stop(void)
{
	int status;

	kill(E.ferryd, SIGTERM);
	assert_int_equal(waitpid(E.ferryd, &status, 0), E.ferryd);
	E.ferryd = 0;
	check_log_clean();
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("ferryd ended with status 0x%x (log: %s/ferryd.log)", status, E.dir);
}

/*
 * Read topic back: counts[v] += 1 for each record whose header key has the
 * number v < limit. Returns the number of records; *reason gets the first
 * dead-letter reason seen (if asked).
 */
static unsigned dump_by(const char *topic, const char *key, unsigned *counts, unsigned limit,
			char *reason, size_t rlen)
{
	char cmd[512], *line = NULL;
	size_t cap = 0;
	unsigned total = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "%s -b %s -t %s --idle-ms 1500 --timeout-ms 60000",
		 KAFKA_DUMP_PATH, E.bootstrap, topic);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (getline(&line, &cap, p) > 0) {
		cJSON *j = cJSON_Parse(line), *h, *v, *why;

		assert_non_null(j);
		h = cJSON_GetObjectItemCaseSensitive(j, "headers");
		v = cJSON_GetObjectItemCaseSensitive(h, key);
		why = cJSON_GetObjectItemCaseSensitive(h, "ferry-dead-reason");
		assert_true(cJSON_IsString(v));
		if (strtoul(v->valuestring, NULL, 10) < limit)
			counts[strtoul(v->valuestring, NULL, 10)]++;
		if (reason && cJSON_IsString(why) && !reason[0])
			snprintf(reason, rlen, "%s", why->valuestring);
		cJSON_Delete(j);
		total++;
	}
	free(line);
	assert_int_equal(pclose(p), 0);
	return total;
}

unsigned dump(const char *topic, unsigned *counts, unsigned n, char *reason, size_t rlen)
{
	return dump_by(topic, "ferry-seq", counts, n + 1, reason, rlen);
}

/* Every seq 1..n in counts at least once; returns the duplicates. */
unsigned check_all(const unsigned *counts, unsigned n, unsigned skip_seq)
{
	unsigned dups = 0;

	for (unsigned s = 1; s <= n; s++) {
		if (s == skip_seq)
			continue;
		if (!counts[s])
			fail_msg("seq %u never reached Kafka (log: %s/ferryd.log)", s, E.dir);
		dups += counts[s] - 1;
	}
	return dups;
}

int setup(void **state)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};

	(void)state;
	alarm(240);
	memset(&E, 0, sizeof(E));
	snprintf(E.dir, sizeof(E.dir), "/tmp/ferry-test-pipeline.XXXXXX");
	assert_non_null(mkdtemp(E.dir));
	snprintf(E.instance, sizeof(E.instance), "test-pipeline-%d", (int)getpid());
	snprintf(E.notify_path, sizeof(E.notify_path), "%s/notify", E.dir);
	strcpy(a.sun_path, E.notify_path);
	E.notify = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(E.notify >= 0);
	assert_int_equal(bind(E.notify, (struct sockaddr *)&a, sizeof(a)), 0);
	mock_start();
	return 0;
}

int teardown(void **state)
{
	char cmd[128];

	(void)state;
	if (E.ferryd > 0) {
		kill(E.ferryd, SIGKILL);
		waitpid(E.ferryd, NULL, 0);
	}
	if (E.seg)
		for (unsigned i = 0; i < E.seg->hdr->n_workers; i++)
			if (E.seg->workers[i].pid > 0)
				kill(E.seg->workers[i].pid, SIGKILL);
	if (E.mock > 0) {
		kill(E.mock, SIGTERM);
		waitpid(E.mock, NULL, 0);
	}
	moto_stop(E.moto);
	pubsub_emu_stop(E.pubsub);
	registry_stop();
	unsetenv("PUBSUB_EMULATOR_HOST");
	shm_segment_close(E.seg);
	shm_segment_unlink(E.instance);
	close(E.notify);
	/* Keep the directory (and ferryd.log) of a failed test for a look. */
	if (!getenv("FERRY_TEST_KEEP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", E.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", E.dir);
	}
	alarm(0);
	return 0;
}

int ferryctl_restart(const char *stage)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "%s -i %s restart %s >/dev/null", FERRYCTL_PATH, E.instance,
		 stage);
	return system(cmd);
}

int restarted(void *name)
{
	return worker(name)->restarts > 0 && running(name);
}

/* Run ferryd to its end; returns its exit status, its log in log. */
int ferryd_run(char *log, size_t len)
{
	int status;

	ferryd_spawn(NULL, NULL);
	assert_int_equal(waitpid(E.ferryd, &status, 0), E.ferryd);
	E.ferryd = 0;
	read_log(log, len);
	return status;
}

void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("failed: %s", cmd);
}

void write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
}

/* A config without replay: sources come in extra. */
void conf_write_sources(const char *extra)
{
	FILE *f;

	snprintf(E.conf, sizeof(E.conf), "%s/ferry.conf", E.dir);
	f = fopen(E.conf, "w");
	assert_non_null(f);
	fprintf(f,
		"[ferry]\ninstance = %s\nshards = 2\nring_size = 4M\nrestart_delay_min = 1s\n"
		"restart_delay_max = 1s\ncontrol_socket = %s/ctl.sock\n[ingest]\n"
		"max_inflight = 4096\n%s\n[kafka]\nbootstrap.servers = %s\n",
		E.instance, E.dir, extra, E.bootstrap);
	fclose(f);
}

char *sqs(struct aws_client *cl, const char *action, const char *fmt, ...)
{
	char target[64], err[512] = "", *out = NULL, *body;
	long status = 0;
	va_list ap;

	va_start(ap, fmt);
	assert_true(vasprintf(&body, fmt, ap) > 0);
	va_end(ap);
	snprintf(target, sizeof(target), "AmazonSQS.%s", action);
	if (aws_json_call(cl, "sqs", target, body, &out, &status, err, sizeof(err)) < 0)
		fail_msg("%s: %s", target, err);
	free(body);
	return out;
}

/* ApproximateNumberOfMessages + ...NotVisible + ...Delayed of a queue. */
unsigned queue_depth(struct aws_client *cl, const char *url)
{
	char *out = sqs(cl, "GetQueueAttributes",
			"{\"QueueUrl\":\"%s\",\"AttributeNames\":[\"All\"]}", url);
	cJSON *j = cJSON_Parse(out), *a = cJSON_GetObjectItemCaseSensitive(j, "Attributes");
	static const char *const names[] = {"ApproximateNumberOfMessages",
					    "ApproximateNumberOfMessagesNotVisible",
					    "ApproximateNumberOfMessagesDelayed"};
	unsigned n = 0;

	for (unsigned i = 0; i < 3; i++) {
		cJSON *v = cJSON_GetObjectItemCaseSensitive(a, names[i]);

		assert_true(cJSON_IsString(v));
		n += (unsigned)strtoul(v->valuestring, NULL, 10);
	}
	cJSON_Delete(j);
	free(out);
	return n;
}

uint64_t source_acked(unsigned i)
{
	return load64(&shm_sources(E.seg)[i].acked);
}

int sources_acked(void *n)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < E.seg->hdr->n_sources; i++)
		sum += source_acked(i);
	return sum >= *(uint64_t *)n;
}

unsigned dump_n(const char *topic, unsigned *counts, unsigned n)
{
	return dump_by(topic, "n", counts, n, NULL, 0);
}

/* Send n legacy events (ROOMDEACTIVATED, one catalog event each) to an SQS queue. */
void sqs_fill(struct aws_client *cl, const char *url, unsigned n)
{
	for (unsigned i = 0; i < n; i += 10) {
		cJSON *req = cJSON_CreateObject(), *entries;
		char *body, *out, plain[LEGACY_EVENT_MAX], tenant[8], id[16], num[16];

		cJSON_AddStringToObject(req, "QueueUrl", url);
		entries = cJSON_AddArrayToObject(req, "Entries");
		for (unsigned k = 0; k < 10 && i + k < n; k++) {
			cJSON *e = cJSON_CreateObject(), *a, *t, *x;

			snprintf(tenant, sizeof(tenant), "t%02u", (i + k) % 20);
			snprintf(id, sizeof(id), "%u", k);
			snprintf(num, sizeof(num), "%u", i + k);
			assert_true(legacy_event((i + k) * LEGACY_NTYPES + 4, tenant, plain,
						 sizeof(plain)) > 0);
			cJSON_AddStringToObject(e, "Id", id);
			cJSON_AddStringToObject(e, "MessageBody", plain);
			a = cJSON_AddObjectToObject(e, "MessageAttributes");
			t = cJSON_AddObjectToObject(a, "tenant");
			cJSON_AddStringToObject(t, "DataType", "String");
			cJSON_AddStringToObject(t, "StringValue", tenant);
			x = cJSON_AddObjectToObject(a, "n");
			cJSON_AddStringToObject(x, "DataType", "Number");
			cJSON_AddStringToObject(x, "StringValue", num);
			cJSON_AddItemToArray(entries, e);
		}
		body = cJSON_PrintUnformatted(req);
		out = sqs(cl, "SendMessageBatch", "%s", body);
		assert_null(strstr(out, "\"Failed\":[{"));
		free(out);
		free(body);
		cJSON_Delete(req);
	}
}

/* One query call (SNS) that must succeed; its XML answer (malloc'd). */
char *query(struct aws_client *cl, const char *service, const char *form)
{
	char err[512] = "", *out = NULL;

	if (aws_query_call(cl, service, form, &out, NULL, err, sizeof(err)) < 0)
		fail_msg("%s %.80s: %s", service, form, err);
	return out;
}

/* One Pub/Sub request on a blocking handle, that must succeed. */
void pubsub_must(struct pubsub_request *rq, int built, const char *err)
{
	char e2[512] = "", *body = NULL;
	CURL *c = curl_easy_init();
	size_t len = 0;

	if (built < 0)
		fail_msg("pubsub: %s", err);
	if (pubsub_call(rq, c, &body, &len, NULL, e2, sizeof(e2)) < 0)
		fail_msg("pubsub: %s", e2);
	free(body);
	pubsub_request_free(rq);
	curl_easy_cleanup(c);
}

/* Messages of a Pub/Sub subscription still there (a pull that returns at once). */
unsigned pubsub_left(const struct pubsub_emu *e, const char *sub)
{
	struct pubsub_request *rq = NULL;
	struct pubsub_pull *pl = NULL;
	char err[512] = "", *body = NULL;
	CURL *c = curl_easy_init();
	size_t len = 0;
	unsigned n;

	assert_int_equal(pubsub_pull_new(e->base, NULL, sub, 100, PUBSUB_PULL_RETURN_IMMEDIATELY,
					 &rq, err, sizeof(err)),
			 0);
	if (pubsub_call(rq, c, &body, &len, NULL, err, sizeof(err)) < 0)
		fail_msg("pull %s: %s", sub, err);
	assert_int_equal(pubsub_pull_parse(body, len, &pl, err, sizeof(err)), 0);
	n = (unsigned)pl->count;
	pubsub_pull_free(pl);
	free(body);
	pubsub_request_free(rq);
	curl_easy_cleanup(c);
	return n;
}

void pubsub_fill(const struct pubsub_emu *e, const char *topic, unsigned first, unsigned n)
{
	enum { BATCH = 100 };
	struct pubsub_out_msg *out = calloc(BATCH, sizeof(*out));
	char(*plain)[LEGACY_EVENT_MAX] = calloc(BATCH, sizeof(*plain));
	char(*kv)[64] = calloc(BATCH, sizeof(*kv));
	char err[512] = "";

	assert_true(out && plain && kv);
	for (unsigned i = 0; i < n; i += BATCH) {
		struct pubsub_request *rq = NULL;
		unsigned k;

		for (k = 0; k < BATCH && i + k < n; k++) {
			unsigned num = first + i + k;
			char tenant[8], nums[16];
			size_t pos = 0;

			snprintf(tenant, sizeof(tenant), "t%02u", num % 20);
			snprintf(nums, sizeof(nums), "%u", num);
			assert_true(legacy_event(num * LEGACY_NTYPES + 4, tenant, plain[k],
						 sizeof(plain[k])) > 0);
			assert_int_equal(msg_kv_put(kv[k], sizeof(kv[k]), &pos, "tenant", 6, tenant,
						    (uint32_t)strlen(tenant)),
					 0);
			assert_int_equal(msg_kv_put(kv[k], sizeof(kv[k]), &pos, "n", 1, nums,
						    (uint32_t)strlen(nums)),
					 0);
			out[k] = (struct pubsub_out_msg){
				.data = {plain[k], (uint32_t)strlen(plain[k])},
				.attrs = {kv[k], (uint32_t)pos},
			};
		}
		pubsub_must(rq,
			    pubsub_publish_new(e->base, NULL, topic, out, k, &rq, err, sizeof(err)),
			    err);
	}
	free(out);
	free(plain);
	free(kv);
}

/* Start tests/registry/fixture.js on a port of its choosing; its URL into E.registry_url. */
void registry_start(void)
{
	int pfd[2];
	char line[128] = {0};
	size_t got = 0;
	uint64_t end = now_ns() + 20000000000ull;

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	E.registry = fork();
	assert_true(E.registry >= 0);
	if (E.registry == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* a test that dies takes it along */
		dup2(pfd[1], 1);
		execl(NODE_PATH, NODE_PATH, FIXTURE_JS, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	while (!strchr(line, '\n')) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		ssize_t n;

		assert_true(now_ns() < end);
		if (poll(&p, 1, 100) <= 0)
			continue;
		n = read(pfd[0], line + got, sizeof(line) - 1 - got);
		if (n <= 0)
			fail_msg("the registry fixture exited before printing its port");
		got += (size_t)n;
	}
	close(pfd[0]);
	snprintf(E.registry_url, sizeof(E.registry_url), "http://127.0.0.1:%d",
		 atoi(line + strlen("port=")));
}

void registry_stop(void)
{
	if (E.registry > 0) {
		kill(-E.registry, SIGKILL);
		waitpid(E.registry, NULL, 0);
		E.registry = 0;
	}
}

/* Legacy events of every type, in turn: n of them; every third carries a traceparent. */
void replay_write_all(unsigned n)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/replay.jsonl", E.dir);
	f = fopen(path, "w");
	assert_non_null(f);
	for (unsigned i = 0; i < n; i++) {
		char plain[LEGACY_EVENT_MAX], tenant[8], trace[64];

		snprintf(tenant, sizeof(tenant), "t%02u", i % 20);
		assert_true(legacy_event(i, tenant, plain, sizeof(plain)) > 0);
		snprintf(trace, sizeof(trace), "00-%032x-%016x-01", i + 1, i + 1);
		replay_line(f, i, tenant, i % 3 == 0 ? trace : NULL, plain);
	}
	fclose(f);
}

const char *str_at(const cJSON *j, const char *path)
{
	char buf[128], *save = NULL, *k;
	const cJSON *c = j;

	snprintf(buf, sizeof(buf), "%s", path);
	for (k = strtok_r(buf, ".", &save); k && c; k = strtok_r(NULL, ".", &save))
		c = cJSON_GetObjectItemCaseSensitive(c, k);
	return cJSON_IsString(c) ? c->valuestring : NULL;
}

void expect_str(const cJSON *j, const char *path, const char *want, const char *what)
{
	const char *got = str_at(j, path);

	if (!got || strcmp(got, want)) {
		char *text = cJSON_PrintUnformatted(j);

		fail_msg("%s: %s is '%s', want '%s' in %s", what, path, got ? got : "(none)", want,
			 text);
	}
}

/* Run a command; its stdout's lines, parsed, as a JSON array. */
cJSON *json_lines(const char *cmd)
{
	cJSON *arr = cJSON_CreateArray();
	char *line = NULL;
	size_t cap = 0;
	FILE *p = popen(cmd, "r");

	assert_non_null(p);
	while (getline(&line, &cap, p) > 0) {
		cJSON *j = cJSON_Parse(line);

		if (!j)
			fail_msg("not JSON from %s: %s", cmd, line);
		cJSON_AddItemToArray(arr, j);
	}
	free(line);
	if (pclose(p) != 0)
		fail_msg("%s failed", cmd);
	return arr;
}

int log_has(void *what)
{
	char log[65536];

	read_log(log, sizeof(log));
	return strstr(log, what) != NULL;
}

int harness_run(const char *name, const struct CMUnitTest *tests, size_t n)
{
	struct CMUnitTest *group = calloc(n ? n : 1, sizeof(*group));
	const char *names = getenv("FERRY_TEST_GROUP");
	size_t k = 0;
	int r;

	assert_non_null(group);
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(tests[i].name);
		const char *at = names ? strstr(names, tests[i].name) : NULL;

		/* a whole name of the comma-separated list */
		while (at && ((at != names && at[-1] != ',') || (at[len] && at[len] != ',')))
			at = strstr(at + 1, tests[i].name);
		if (!names || at)
			group[k++] = tests[i];
	}
	if (getenv("FERRY_TEST_FILTER"))
		cmocka_set_test_filter(getenv("FERRY_TEST_FILTER"));
	r = _cmocka_run_group_tests(names ? names : name, group, k, NULL, NULL);
	free(group);
	return r;
}
