/* SPDX-License-Identifier: MIT */
/*
 * segment: the one shared-memory segment of a ferry instance,
 * /dev/shm/ferry.<instance>, mode 0600, made by ferryd and inherited by
 * the stages as an fd; ferryctl maps it read-only.
 *
 * Layout (all offsets from the start, nothing is a pointer):
 *
 *   struct shm_header                      320 B, magic + layout version first
 *   struct shm_worker[n_workers]           448 B each: one control block per stage
 *   struct ring_shared[n_rings]            384 B each: the ring table
 *   struct shm_tenant[n_workers][64]       64 B each: per worker, counts per tenant
 *   struct shm_source[n_sources]           256 B each: ingest's sources and their health
 *   struct shm_inflight[inflight_slots]    1088 B each: ingest's in-flight table
 *   ring data areas                        each page-aligned, power-of-two sized
 *
 * Everything a reader trusts is checked on attach: a segment of another
 * magic, layout version or geometry is refused with a message that says
 * which and what to do.
 */
#ifndef FERRY_SHM_SEGMENT_H
#define FERRY_SHM_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "shm/ring.h"

#define SHM_MAGIC	    0x4745535952524546ull /* "FERRYSEG" little-endian */
#define SHM_LAYOUT_VERSION  4u
#define SHM_INSTANCE_MAX    64 /* including the NUL */
#define SHM_WORKER_NAME_MAX 32
#define SHM_WORKERS_MAX	    256
#define SHM_RINGS_MAX	    512
#define SHM_SOURCES_MAX	    4096
#define SHM_INFLIGHT_MAX    (1u << 20)
#define SHM_PATH_MAX	    (sizeof("/dev/shm/ferry.") + SHM_INSTANCE_MAX)

struct shm_header {
	/* line 0 */
	uint64_t magic;
	uint32_t layout_version;
	uint32_t header_size;  /* sizeof(struct shm_header) */
	uint64_t segment_size; /* bytes, equals the file size */
	uint32_t worker_size;  /* sizeof(struct shm_worker) */
	uint32_t ring_size;    /* sizeof(struct ring_shared) */
	uint32_t n_workers;
	uint32_t n_rings;
	uint64_t workers_off;
	uint64_t rings_off;
	uint64_t created_ns; /* CLOCK_REALTIME at creation */
	/* line 1 */
	char instance[SHM_INSTANCE_MAX];
	/* lines 2-3: supervisor-owned */
	int32_t supervisor_pid;
	uint32_t state;		  /* reserved for the supervisor */
	uint64_t next_seq;	  /* reserved: next pipeline seq (ingest) */
	char control_socket[108]; /* where ferryd takes commands (ferryctl restart) */
	uint32_t pad;
	/* line 4: per-worker tenant tables */
	uint64_t tenants_off;  /* n_workers tables of tenant_slots entries */
	uint32_t tenant_slots; /* SHM_TENANT_SLOTS */
	uint32_t tenant_size;  /* sizeof(struct shm_tenant) */
	uint64_t sources_off;  /* n_sources struct shm_source */
	uint32_t n_sources;
	uint32_t source_size;	 /* sizeof(struct shm_source) */
	uint64_t inflight_off;	 /* inflight_slots struct shm_inflight */
	uint32_t inflight_slots; /* 0: no table (replay only) */
	uint32_t inflight_size;	 /* sizeof(struct shm_inflight) */
	uint8_t pad4[16];
};

_Static_assert(sizeof(struct shm_header) == 5 * FERRY_CACHE_LINE, "header is 5 lines");
_Static_assert(offsetof(struct shm_header, tenants_off) == 4 * FERRY_CACHE_LINE, "tenants line 4");
_Static_assert(offsetof(struct shm_header, instance) == FERRY_CACHE_LINE, "instance on line 1");
_Static_assert(offsetof(struct shm_header, supervisor_pid) == 2 * FERRY_CACHE_LINE,
	       "sup on line 2");

enum shm_worker_kind {
	SHM_WORKER_OTHER = 0,
	SHM_WORKER_INGEST,
	SHM_WORKER_DECRYPT,
	SHM_WORKER_MAP,
	SHM_WORKER_PRODUCE,
};

/* What the supervisor knows of a stage (shm_worker.state). */
enum shm_sstate {
	SHM_SSTATE_DOWN = 0,   /* not running, not scheduled */
	SHM_SSTATE_UP,	       /* running */
	SHM_SSTATE_BACKOFF,    /* died, restart scheduled */
	SHM_SSTATE_RESTARTING, /* asked to exit for a hot restart */
	SHM_SSTATE_FAILED,     /* cannot be started (exec failed) */
};

/* What a stage says of itself (shm_worker.wstate). */
enum shm_wstate {
	SHM_WSTATE_NONE = 0,
	SHM_WSTATE_INIT,     /* attached, initialising */
	SHM_WSTATE_RUNNING,  /* handling records */
	SHM_WSTATE_STOPPING, /* takes no new input (ingest: stopped pulling) */
	SHM_WSTATE_DRAINED,  /* has written everything it ever will */
};

/* The instance as a whole (shm_header.state). */
enum shm_istate {
	SHM_ISTATE_RUNNING = 0,
	SHM_ISTATE_DRAINING, /* SIGTERM: stop pulling, drain the rings, exit */
};

/*
 * A latency histogram, cumulative since the segment was made (it survives
 * the restart of the stage that writes it). produce fills it with each
 * source message's delivery latency: from its receipt by ingest (the
 * source view's received_ns, CLOCK_REALTIME) to Kafka confirming the last
 * event made from it. Bucket i counts observations <= shm_latency_bounds_us[i]
 * (not cumulative); the last bucket counts everything above the last bound.
 */
#define SHM_LATENCY_BUCKETS 20 /* 19 bounds + overflow */

static const uint32_t shm_latency_bounds_us[SHM_LATENCY_BUCKETS - 1] = {
	250,	  500,	    1000,     2000,	 5000,	    10000,   25000,
	50000,	  100000,   250000,   500000,	 1000000,   2500000, 5000000,
	10000000, 30000000, 60000000, 120000000, 300000000,
};

struct shm_latency {
	uint64_t bucket[SHM_LATENCY_BUCKETS];
	uint64_t count;
	uint64_t sum_us;
	uint64_t pad[2];
};

_Static_assert(sizeof(struct shm_latency) == 3 * FERRY_CACHE_LINE, "latency is 3 lines");

/* One control block per stage process. */
struct shm_worker {
	/* line 0: identity, written at creation */
	char name[SHM_WORKER_NAME_MAX]; /* e.g. "decrypt.1" */
	uint32_t kind;			/* enum shm_worker_kind */
	uint32_t shard;
	uint32_t index;
	uint32_t flags;
	uint8_t pad0[16];
	/* line 1: supervisor-owned */
	int32_t pid;
	uint32_t state;
	uint64_t started_ns;
	uint64_t last_exit_ns;
	int32_t last_exit; /* wait status of the last death */
	uint32_t restarts;
	uint64_t strike_seq; /* seq the last deaths happened on */
	uint32_t strikes;
	uint32_t pad1;
	uint64_t cpu_ns;    /* user + system CPU of the current process, sampled by ferryd */
	uint64_t rss_bytes; /* its resident set, sampled by ferryd */
	/* line 2: worker-owned */
	uint64_t heartbeat_ns;
	uint64_t current_seq; /* seq in progress, 0: none */
	uint64_t records_in;
	uint64_t records_out;
	uint64_t dead_letters;
	uint64_t errors;
	uint32_t wstate;      /* enum shm_wstate, as the worker says */
	uint32_t inflight;    /* records read, not yet safe downstream (produce: in Kafka) */
	uint64_t redelivered; /* records read again after a death (possible duplicates) */
	/* line 3: the wake word the worker sleeps on, for all its rings */
	struct shm_wake wake;
	/* lines 4-6: worker-owned, see struct shm_latency */
	struct shm_latency latency;
};

_Static_assert(sizeof(struct shm_worker) == 7 * FERRY_CACHE_LINE, "worker is 7 lines");
_Static_assert(offsetof(struct shm_worker, pid) == 1 * FERRY_CACHE_LINE, "supervisor line");
_Static_assert(offsetof(struct shm_worker, heartbeat_ns) == 2 * FERRY_CACHE_LINE, "worker line");
_Static_assert(offsetof(struct shm_worker, wake) == 3 * FERRY_CACHE_LINE, "wake line");

/*
 * Per worker, counts per tenant (bounded: SHM_TENANT_SLOTS, the last slot,
 * named "*", takes every tenant that finds no slot). Written by that worker
 * only; read by ferryctl and ferryd.
 */
#define SHM_TENANT_SLOTS    64
#define SHM_TENANT_NAME_MAX 40 /* including the NUL */

struct shm_tenant {
	char name[SHM_TENANT_NAME_MAX]; /* "" = free slot */
	uint64_t ok;			/* records handled */
	uint64_t failed;		/* records dead-lettered */
	uint64_t reserved;
};

_Static_assert(sizeof(struct shm_tenant) == FERRY_CACHE_LINE, "one line per tenant");

/*
 * ingest's sources (queues, subscriptions, the replay file), one entry
 * each, in configuration order. Written by ingest only; read by ferryctl
 * and ferryd. The name is the queue URL or subscription, cut to fit.
 */
#define SHM_SOURCE_NAME_MAX  128
#define SHM_SOURCE_ERROR_MAX 64

enum shm_source_health {
	SHM_SOURCE_IDLE = 0, /* not polled yet */
	SHM_SOURCE_OK,	     /* the last call succeeded */
	SHM_SOURCE_RETRYING, /* network or 5xx errors: retried with backoff */
	SHM_SOURCE_FAILING,  /* 4xx (wrong URL, access denied): retried slowly, needs an operator */
};

struct shm_source {
	char name[SHM_SOURCE_NAME_MAX];
	uint32_t kind;			       /* enum msg_source */
	uint32_t health;		       /* enum shm_source_health */
	uint64_t received;		       /* messages taken from the source */
	uint64_t acked;			       /* deleted / acknowledged after Kafka had them */
	uint64_t handed_back;		       /* given back unprocessed (ring full, shutdown) */
	uint64_t extended;		       /* visibility / ack deadline extensions */
	uint64_t calls;			       /* API calls made */
	uint64_t errors;		       /* calls that failed */
	uint64_t inflight;		       /* messages of this source in the in-flight table */
	char last_error[SHM_SOURCE_ERROR_MAX]; /* the last failure, "" = none */
};

_Static_assert(sizeof(struct shm_source) == 4 * FERRY_CACHE_LINE, "source is 4 lines");

/*
 * ingest's in-flight table: one slot per source message between its
 * receipt and its deletion / acknowledgement at the source, so that a
 * restarted ingest still acks (or hands back) what its predecessor held.
 * Written by ingest only. A message with seq S lives in slot S % slots.
 */
#define SHM_INFLIGHT_TOKEN_MAX 1024 /* SQS receipt handles and Pub/Sub ack ids fit */

enum shm_inflight_state {
	SHM_INFLIGHT_FREE = 0,
	SHM_INFLIGHT_RECEIVED,	/* taken from the source, being handed to its shard */
	SHM_INFLIGHT_PIPELINE,	/* in the pipeline: extend its visibility until acked */
	SHM_INFLIGHT_ACKED,	/* in Kafka: delete / acknowledge at the source */
	SHM_INFLIGHT_RETURNING, /* hand back to the source unprocessed */
};

struct shm_inflight {
	uint64_t seq;	 /* 0 when free */
	uint32_t state;	 /* enum shm_inflight_state */
	uint16_t source; /* index into the source table */
	uint16_t token_len;
	uint32_t source_hash; /* FNV-1a of the source name: a restart with other sources skips it */
	uint32_t shard;
	uint64_t deadline_ns; /* CLOCK_MONOTONIC: its visibility / ack deadline expires then */
	uint64_t received_ns; /* CLOCK_MONOTONIC */
	uint32_t extensions;
	uint32_t busy; /* a request about it is in flight (ingest's own bookkeeping) */
	uint64_t reserved[2];
	char token[SHM_INFLIGHT_TOKEN_MAX]; /* receipt handle / ack id, not NUL-terminated */
};

_Static_assert(sizeof(struct shm_inflight) == 17 * FERRY_CACHE_LINE, "in-flight slot is 17 lines");

struct shm_worker_spec {
	const char *name;
	uint32_t kind;
	uint32_t shard;
};

struct shm_ring_spec {
	const char *name;
	uint64_t capacity; /* bytes, power of two */
	int writer;	   /* worker index or -1 */
	int reader;	   /* worker index or -1 */
};

/*
 * What to build. A ring whose reader (writer) is a worker wakes that
 * worker's wake word, so a worker with many rings sleeps on one futex;
 * a ring with -1 there uses its own wake word.
 */
struct shm_spec {
	const char *instance;
	unsigned n_workers;
	const struct shm_worker_spec *workers;
	unsigned n_rings;
	const struct shm_ring_spec *rings;
	unsigned n_sources; /* entries of the source table */
	const char *const *source_names;
	const uint32_t *source_kinds;
	unsigned inflight_slots; /* 0 or a power of two */
};

/* A process's view of a mapped segment. */
struct shm_segment {
	void *base;
	size_t size;
	int fd;
	int readonly;
	struct shm_header *hdr;
	struct shm_worker *workers;
	struct ring_shared *rings;
	char path[SHM_PATH_MAX];
};

enum {
	SHM_CREATE_REPLACE = 1u << 0, /* unlink a leftover segment of the same name */
	SHM_RDONLY = 1u << 1,	      /* attach read-only (ferryctl) */
};

/* 1 if s is a usable instance name: [A-Za-z0-9_.-], 1..63 chars, no leading dot. */
int shm_instance_valid(const char *s);

/* Write "/dev/shm/ferry.<instance>" to buf. Returns 0 or -EINVAL. */
int shm_path(const char *instance, char *buf, size_t len);

/* Bytes the segment for spec takes (0 if spec is invalid). */
size_t shm_spec_size(const struct shm_spec *spec);

/*
 * Create and map the segment for spec, mode 0600 whatever the umask, with
 * every ring empty and every worker idle. With SHM_CREATE_REPLACE, a
 * leftover segment of the same name is unlinked first; without it, an
 * existing one fails with -EEXIST. seg->fd is close-on-exec: hand it to
 * a stage with dup2(). On failure nothing is left behind.
 * Returns 0, -EINVAL (bad spec: err says what), -EEXIST, or -errno of a
 * failed system call; err (may be NULL) gets a message.
 */
int shm_segment_create(const struct shm_spec *spec, unsigned flags, struct shm_segment **ret,
		       char *err, size_t errlen);

/*
 * Map and check the segment open on fd (SHM_RDONLY: read-only). The fd
 * is duplicated; the caller keeps its own. Returns 0, -EPROTO (other
 * magic or layout version), -EBADMSG (inconsistent or corrupt: a ring, a
 * size, an offset), or -errno; err gets a message naming the segment.
 */
int shm_segment_attach(int fd, unsigned flags, struct shm_segment **ret, char *err, size_t errlen);

/* shm_segment_attach() on /dev/shm/ferry.<instance>. -ENOENT if none. */
int shm_segment_open(const char *instance, unsigned flags, struct shm_segment **ret, char *err,
		     size_t errlen);

/* Unmap and close. Accepts NULL. Does not unlink. */
void shm_segment_close(struct shm_segment *seg);

/* Remove /dev/shm/ferry.<instance>. Returns 0 or -errno. */
int shm_segment_unlink(const char *instance);

/* The tenant table of worker w (SHM_TENANT_SLOTS entries), or NULL. */
struct shm_tenant *shm_worker_tenants(const struct shm_segment *seg, unsigned w);

/*
 * The slot of tenant in table (found, or claimed when free; the last slot,
 * "*", when the table is full). For the table's own worker only.
 */
struct shm_tenant *shm_tenant_slot(struct shm_tenant *table, const char *tenant);

/* The same for a name of len bytes, not NUL-terminated (it stops at a NUL, too). */
struct shm_tenant *shm_tenant_slot_n(struct shm_tenant *table, const char *tenant, size_t len);

/* The source table (hdr->n_sources entries) and the in-flight table (hdr->inflight_slots). */
struct shm_source *shm_sources(const struct shm_segment *seg);
struct shm_inflight *shm_inflight(const struct shm_segment *seg);

/* Index of the ring named name, or -ENOENT. */
int shm_segment_ring_find(const struct shm_segment *seg, const char *name);

/*
 * Attach r to ring idx of seg in role (see ring_attach()). A read-only
 * segment allows RING_INSPECT only. Returns 0, -EINVAL, -EROFS, or
 * what ring_attach() returns.
 */
int shm_segment_ring_attach(struct shm_segment *seg, unsigned idx, unsigned role, struct ring *r,
			    const char **why);

#endif
