/* SPDX-License-Identifier: MIT */
/*
 * view: one snapshot of a ferry segment, copied into private memory, for
 * ferryctl status (text and JSON) and ferryctl top. Reading lives here
 * once; the printers only format. Two snapshots of the same segment give
 * rates (their counters' deltas over their taken_ns).
 *
 * The segment is written while we read: a snapshot is a set of relaxed
 * loads, not one instant. Strings are copied bounded and NUL-terminated;
 * indexes found in the segment are checked before use.
 */
#ifndef FERRY_SUPERVISOR_VIEW_H
#define FERRY_SUPERVISOR_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "shm/ring.h"
#include "shm/segment.h"

struct view_stage {
	char name[SHM_WORKER_NAME_MAX];
	uint32_t kind; /* enum shm_worker_kind */
	uint32_t shard;
	int32_t pid;
	uint32_t state;	 /* enum shm_sstate */
	uint32_t wstate; /* enum shm_wstate */
	uint64_t started_ns;
	uint64_t last_exit_ns;
	int32_t last_exit;
	uint32_t restarts;
	uint32_t strikes;
	uint64_t strike_seq;
	uint64_t cpu_ns;    /* 0: not sampled (yet) */
	uint64_t rss_bytes; /* 0: not sampled (yet) */
	uint64_t heartbeat_ns;
	uint64_t current_seq;
	uint64_t records_in;
	uint64_t records_out;
	uint64_t dead_letters;
	uint64_t errors;
	uint32_t inflight;
	uint64_t redelivered;
	struct shm_latency latency;
};

struct view_source {
	char name[SHM_SOURCE_NAME_MAX + 1];
	uint32_t kind;	 /* enum msg_source */
	uint32_t health; /* enum shm_source_health */
	uint64_t received;
	uint64_t acked;
	uint64_t handed_back;
	uint64_t extended;
	uint64_t calls;
	uint64_t errors;
	uint64_t inflight;
	char last_error[SHM_SOURCE_ERROR_MAX + 1];
	uint64_t oldest_ns; /* CLOCK_MONOTONIC receipt of its oldest in-flight message, 0: none */
	uint64_t in_table;  /* its messages in the in-flight table (any state but free) */
};

struct view_tenant {
	char name[SHM_TENANT_NAME_MAX];
	unsigned stage; /* index into view.stages */
	unsigned slot;	/* slot in that stage's table: stable while the segment lives */
	uint64_t ok;
	uint64_t failed;
};

struct view {
	uint64_t taken_ns;   /* CLOCK_MONOTONIC, when the snapshot was taken */
	uint64_t taken_rt;   /* CLOCK_REALTIME, the same moment */
	uint64_t created_ns; /* CLOCK_REALTIME, the segment's creation */
	char instance[SHM_INSTANCE_MAX];
	char path[SHM_PATH_MAX];
	uint32_t layout_version;
	uint32_t state; /* enum shm_istate */
	int32_t supervisor_pid;
	unsigned n_stages;
	unsigned n_rings;
	unsigned n_sources;
	unsigned n_tenants;	     /* used tenant slots over all stages */
	unsigned inflight_slots;     /* size of the in-flight table */
	struct view_stage *stages;   /* n_stages */
	struct ring_stats *rings;    /* n_rings */
	struct view_source *sources; /* n_sources */
	struct view_tenant *tenants; /* n_tenants, by stage then slot */
	struct shm_latency latency;  /* summed over the stages */
};

/*
 * Copy everything ferryctl shows from seg into v (which the caller zeroed
 * or freed before), including a read-only scan of the in-flight table for
 * each source's oldest message. Returns 0, -ENOMEM, or -EBADMSG when a
 * ring does not check out (err names it). On failure v holds nothing.
 */
int view_take(struct shm_segment *seg, struct view *v, char *err, size_t errlen);

/*
 * Per source (the first n of seg's), into oldest[] the CLOCK_MONOTONIC
 * receipt of its oldest message in the in-flight table (0: none) and into
 * count[] how many it has there; slots received after now are skipped.
 * view_take()'s scan, and ferryd's for /metrics.
 */
void view_inflight_scan(const struct shm_segment *seg, unsigned n, uint64_t now, uint64_t *oldest,
			uint64_t *count);

/* Free what view_take() allocated; v is zeroed. Accepts a zeroed view, safe twice. */
void view_free(struct view *v);

/*
 * The q-quantile (0 < q < 1) of the histogram buckets b (SHM_LATENCY_BUCKETS
 * of them, counts per bucket as in struct shm_latency) in microseconds,
 * interpolated linearly inside the bucket it falls in. Falling into the
 * overflow bucket gives the last bound (a floor). -1 when b counts nothing.
 */
double view_latency_quantile(const uint64_t *b, double q);

/* h = a - b, bucket by bucket (a counter that went back counts 0). */
void view_latency_delta(const struct shm_latency *a, const struct shm_latency *b,
			struct shm_latency *h);

/* Names of enums as ferryctl prints them ("?" when out of range). */
const char *view_sstate_name(uint32_t s);
const char *view_wstate_name(uint32_t s);
const char *view_health_name(uint32_t h);
const char *view_worker_kind_name(uint32_t kind);

/* "exit 3", "signal 9", or "-" when the stage never died. */
const char *view_exit_name(const struct view_stage *s, char *buf, size_t len);

/* "16 MiB", "3.5 KiB", "812 B" */
const char *view_human(uint64_t n, char *buf, size_t len);

/* "850us", "12.3ms", "2.50s", "-" (us < 0) */
const char *view_us(double us, char *buf, size_t len);

/* "42s", "12m05s", "3h07m", "2d04h" */
const char *view_duration(uint64_t ns, char *buf, size_t len);

#endif
