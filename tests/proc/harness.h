/* SPDX-License-Identifier: MIT */
/*
 * The harness of the whole-service tests: ferryd with its stage processes
 * on a config the test writes, Kafka from librdkafka's mock cluster (in its
 * own process, ferry-kafka-mock), systemd notifications on a real
 * NOTIFY_SOCKET, what reached Kafka read back with ferry-kafka-dump, and
 * the peers a test may start: moto_server (SQS, SNS, KMS), the Pub/Sub
 * emulator, the Schema Registry fixture (tests/registry/fixture.js).
 *
 * One test at a time per process: the state is the global E, set up by
 * setup() and torn down by teardown() (cmocka fixtures), which stop
 * whatever the test started. Helpers fail the running test on error.
 */
#ifndef FERRY_TESTS_PROC_HARNESS_H
#define FERRY_TESTS_PROC_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "common/aws.h"
#include "common/pubsub.h"
#include "shm/segment.h"
#include "tests/proc/pubsub-emu.h"

/* The topic of ROOMDEACTIVATED, the legacy type the tests send (one catalog event each). */
#define ROOM_TOPIC "room.v1.room-deactivated"

#if !defined(FERRYD_PATH) || !defined(FERRYCTL_PATH) || !defined(KAFKA_MOCK_PATH) ||               \
	!defined(KAFKA_DUMP_PATH)
#error "the paths of ferryd, ferryctl and the Kafka tools are compile definitions"
#endif

struct env {
	char dir[64];
	char instance[64];
	char conf[128];
	char bootstrap[256];
	pid_t mock;
	pid_t ferryd;
	int notify;
	char notify_path[108];
	char seen[16384]; /* every notification so far, one per line */
	struct shm_segment *seg;
	void *moto;	/* a moto_server, when a test started one */
	void *pubsub;	/* a Pub/Sub emulator, likewise */
	pid_t registry; /* tests/registry/fixture.js, likewise */
	char registry_url[64];
};

extern struct env E;

/*
 * Run the tests named in $FERRY_TEST_GROUP (comma-separated; ctest runs a
 * binary's tests in groups, each within its own timeout), all when unset;
 * FERRY_TEST_FILTER=test_d* runs those matching a glob, as cmocka takes it.
 */
int harness_run(const char *name, const struct CMUnitTest *tests, size_t n);

void sleep_ms(unsigned ms);

/* Poll cond every 5 ms until it holds or timeout_ms passes. Returns cond's last value. */
int wait_until(int (*cond)(void *), void *arg, unsigned timeout_ms);

struct shm_worker *worker(const char *name);

uint64_t load64(const uint64_t *p);

int running(void *name);

int down(void *name);

uint64_t acked(void);

int acked_at_least(void *n);

void notify_drain(int timeout_ms);

int notified(void *what);

void mock_start(void);

/*
 * A replay file of n legacy events (ROOMDEACTIVATED: one catalog event
 * each) for 20 tenants; the message of seq poison_seq (if any) carries the
 * string that makes map crash under FERRY_TEST_POISON.
 */
void replay_write(const char *path, unsigned n, unsigned poison_seq);

void conf_write(unsigned n, unsigned rate, const char *extra);
/* Replace the first `from` in E.conf with `to`. */
void conf_replace(const char *from, const char *to);

int segment_there(void *unused);

/* fork+exec ferryd on E.conf, its stdout and stderr appended to ferryd.log. */
void ferryd_spawn(const char *watchdog_usec, const char *poison);

/* The same on another config and log (a second instance); returns its pid. */
pid_t ferryd_spawn_at(const char *conf, const char *log, const char *watchdog_usec,
		      const char *poison);

/* ferryd.log as it is now, in buf. */
void read_log(char *buf, size_t len);

void ferryd_start(const char *watchdog_usec, const char *poison);

/* No stage may have tripped a sanitizer: a crash it survived would hide it. */
void check_log_clean(void);

/* The same for the log at path. */
void check_log_clean_at(const char *path);

/* The in-flight table, ferryctl status and the log's end, on stdout (a failure's context). */
void inflight_report(void);

/* SIGTERM ferryd and expect a drained exit 0. */
void ferryd_stop(void);

/*
 * Read topic back: counts[seq] += 1 for each record (by its ferry-seq
 * header), up to n. Returns the number of records; *reason gets the first
 * dead-letter reason seen (if asked).
 */
unsigned dump(const char *topic, unsigned *counts, unsigned n, char *reason, size_t rlen);

/* Every seq 1..n in counts at least once; returns the duplicates. */
unsigned check_all(const unsigned *counts, unsigned n, unsigned skip_seq);

int setup(void **state);

int teardown(void **state);

int ferryctl_restart(const char *stage);

int restarted(void *name);

/* Run ferryd to its end; returns its exit status, its log in log. */
int ferryd_run(char *log, size_t len);

void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void write_file(const char *path, const char *content);

/* A config without replay: sources come in extra. */
void conf_write_sources(const char *extra);

char *sqs(struct aws_client *cl, const char *action, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ApproximateNumberOfMessages + ...NotVisible + ...Delayed of a queue. */
unsigned queue_depth(struct aws_client *cl, const char *url);

uint64_t source_acked(unsigned i);

int sources_acked(void *n);

/*
 * Read a topic back and count each message by its attribute "n" (which map
 * passes on as a header) in counts[n]. Returns the records read.
 */
unsigned dump_n(const char *topic, unsigned *counts, unsigned n);

/* Send n legacy events (ROOMDEACTIVATED, one catalog event each) to an SQS queue. */
void sqs_fill(struct aws_client *cl, const char *url, unsigned n);

/* One query call (SNS) that must succeed; its XML answer (malloc'd). */
char *query(struct aws_client *cl, const char *service, const char *form);

/* One Pub/Sub request on a blocking handle, that must succeed. */
void pubsub_must(struct pubsub_request *rq, int built, const char *err);

/* Messages of a Pub/Sub subscription still there (a pull that returns at once). */
unsigned pubsub_left(const struct pubsub_emu *e, const char *sub);

/*
 * Publish n legacy events (ROOMDEACTIVATED) to a Pub/Sub topic of e, in
 * batches of 100: attributes tenant (t00-t19) and n = first, first + 1, ...
 */
void pubsub_fill(const struct pubsub_emu *e, const char *topic, unsigned first, unsigned n);

/* Start tests/registry/fixture.js on a port of its choosing; its URL into E.registry_url. */
void registry_start(void);

void registry_stop(void);

/* Legacy events of every type, in turn: n of them; every third carries a traceparent. */
void replay_write_all(unsigned n);

const char *str_at(const cJSON *j, const char *path);

void expect_str(const cJSON *j, const char *path, const char *want, const char *what);

/* Run a command; its stdout's lines, parsed, as a JSON array. */
cJSON *json_lines(const char *cmd);

int log_has(void *what);

#endif
