/* SPDX-License-Identifier: MIT */
/*
 * ring: a single-producer single-consumer ring of variable-length records
 * in shared memory, the only way ferry's stages talk to each other.
 *
 * Memory: a `struct ring_shared` control block (magic, geometry, one cache
 * line per owner) and a power-of-two byte area for the records. Nothing in
 * shared memory is a pointer; the data area and the two wake words are
 * found by offsets relative to the control block, checked on attach.
 *
 * Records: a 16-byte header (length, type, flags, pipeline seq) and the
 * payload, padded to 8 bytes. A record never wraps: when it does not fit
 * before the end of the area, the writer leaves a pad record there and
 * starts over at offset 0. That is why one record may take at most half
 * the capacity (ring_max_record()).
 *
 * Positions (head, tail) are free-running 64-bit byte counters. The writer
 * owns head, the reader owns tail. Writer: ring_reserve(), fill, ring_push()
 * (any number of times), then ring_publish() makes all pushed records
 * visible at once (release store of head) and wakes a sleeping reader.
 * Reader: ring_read() returns records in order and moves only a private
 * cursor; ring_commit() moves tail to the cursor (release store) and wakes
 * a sleeping writer. Records read but not committed are read again by the
 * next reader that attaches, so a consumer that dies loses nothing.
 *
 * Crash consistency of the counters that go with head and tail (records,
 * last seq): each side writes a small journal before its release store and
 * replays it on attach, so a restarted writer knows exactly the seq of the
 * last record it published (ring_last_seq()), which is what a restarted
 * stage compares against to skip what it already wrote downstream. Stages
 * must publish only at input-record boundaries for that to hold.
 *
 * Nothing here takes a lock. Waiting uses the wake words (shm/wake.h): no
 * system call on the fast path while the other side is awake.
 */
#ifndef FERRY_SHM_RING_H
#define FERRY_SHM_RING_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/compiler.h"
#include "shm/wake.h"

#define RING_MAGIC	  0x474e495259525246ull /* "FRRYRING" little-endian */
#define RING_VERSION	  1u
#define RING_NAME_MAX	  32 /* including the NUL */
#define RING_CAPACITY_MIN 64ull
#define RING_CAPACITY_MAX (1ull << 40)

/* Record types. 0 is never valid (zeroed memory reads as corrupt). */
enum {
	RING_REC_INVALID = 0,
	RING_REC_PAD = 1,  /* filler up to the end of the area, internal */
	RING_REC_USER = 2, /* first type available to callers */
};

struct ring_rec {
	uint32_t len;	/* payload bytes (for a pad: bytes to skip) */
	uint16_t type;	/* RING_REC_*, >= RING_REC_USER for records */
	uint16_t flags; /* free for the caller */
	uint64_t seq;	/* pipeline seq */
	unsigned char data[];
};

#define RING_REC_HDR ((uint32_t)sizeof(struct ring_rec))
_Static_assert(sizeof(struct ring_rec) == 16, "record header is 16 bytes");
_Static_assert(offsetof(struct ring_rec, seq) == 8, "seq after len+type+flags");

/* Bytes a record with a payload of len bytes takes in the ring. */
static inline uint64_t ring_rec_size(uint32_t len)
{
	return RING_REC_HDR + ALIGN_UP((uint64_t)len, 8);
}

/* Largest payload a ring of this capacity accepts. */
static inline uint32_t ring_max_record(uint64_t capacity)
{
	uint64_t m = capacity / 2 - RING_REC_HDR;

	return m > UINT32_MAX - 8 ? UINT32_MAX - 8 : (uint32_t)m;
}

/* The shared control block. Six cache lines; layout pinned below. */
struct ring_shared {
	/* line 0: geometry, written once by ring_format() */
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;	/* sizeof(struct ring_shared) */
	uint64_t capacity;	/* bytes in the data area, power of two */
	uint32_t max_record;	/* ring_max_record(capacity) */
	uint32_t flags;		/* none defined, must be 0 */
	int64_t data_off;	/* data area, relative to this block */
	int64_t data_wake_off;	/* wake word the reader sleeps on */
	int64_t space_wake_off; /* wake word the writer sleeps on */
	uint64_t reserved0;

	/* line 1: identity, written once */
	char name[RING_NAME_MAX];
	int32_t writer_worker; /* index of the writing worker, -1: none */
	int32_t reader_worker; /* index of the reading worker, -1: none */
	uint8_t pad1[FERRY_CACHE_LINE - RING_NAME_MAX - 8];

	/* line 2: writer-owned */
	uint64_t head;	   /* bytes published, release-stored */
	uint64_t records;  /* records published */
	uint64_t last_seq; /* seq of the last record published */
	uint64_t j_head;   /* journal: the publish in progress */
	uint64_t j_records;
	uint64_t j_last_seq;
	int32_t writer_pid;
	uint32_t pad2;
	uint64_t reserved2;

	/* line 3: reader-owned */
	uint64_t tail;	     /* bytes committed, release-stored */
	uint64_t consumed;   /* records committed */
	uint64_t commit_seq; /* seq of the last record committed */
	uint64_t j_tail;     /* journal: the commit in progress */
	uint64_t j_consumed;
	uint64_t j_commit_seq;
	int32_t reader_pid;
	uint32_t pad3;
	uint64_t reserved3;

	/* lines 4 and 5: the ring's own wake words (default targets) */
	struct shm_wake data_wake;
	struct shm_wake space_wake;
};

_Static_assert(sizeof(struct ring_shared) == 6 * FERRY_CACHE_LINE, "ring_shared is 6 lines");
_Static_assert(offsetof(struct ring_shared, name) == 1 * FERRY_CACHE_LINE, "identity on line 1");
_Static_assert(offsetof(struct ring_shared, head) == 2 * FERRY_CACHE_LINE, "writer on line 2");
_Static_assert(offsetof(struct ring_shared, tail) == 3 * FERRY_CACHE_LINE, "reader on line 3");
_Static_assert(offsetof(struct ring_shared, data_wake) == 4 * FERRY_CACHE_LINE, "wake on line 4");
_Static_assert(offsetof(struct ring_shared, space_wake) == 5 * FERRY_CACHE_LINE, "wake on line 5");
_Static_assert(__atomic_always_lock_free(8, 0), "64-bit atomics must be lock-free in shm");

/* Roles for ring_attach(). */
enum {
	RING_READER = 1u << 0,
	RING_WRITER = 1u << 1,
	RING_INSPECT = 1u << 2, /* read-only look, touches nothing */
};

/* A process's handle on one ring. Private memory; one role per handle. */
struct ring {
	struct ring_shared *sh;
	unsigned char *data;
	struct shm_wake *data_wake;
	struct shm_wake *space_wake;
	uint64_t capacity;
	uint64_t mask;
	uint32_t max_record;
	uint32_t role;
	uint64_t spin_ns;    /* bounded spin before sleeping in ring_wait_*() */
	uint64_t slip_ns;    /* ring_wait_data(): wait up to this long ... */
	uint64_t slip_bytes; /* ... for this much data before waking on less */

	/* writer side */
	uint64_t head;	     /* end of pushed records (>= published head) */
	uint64_t pub_head;   /* head as last published */
	uint64_t tail_cache; /* last tail seen; refreshed only when short of space */
	uint64_t records;
	uint64_t last_seq;
	uint64_t rsv_pos; /* position of the reserved record */
	uint32_t rsv_len; /* reserved payload, RING_RSV_NONE when none */

	/* reader side */
	uint64_t cursor;     /* end of records read (>= committed tail) */
	uint64_t pub_tail;   /* tail as last committed */
	uint64_t head_cache; /* last head seen; refreshed only when out of records */
	uint64_t consumed;
	uint64_t read_seq; /* seq of the last record read */
};

#define RING_RSV_NONE UINT32_MAX

/*
 * Lay out a new, empty ring: control block sh, data area data (64-byte
 * aligned, capacity bytes). data_wake / space_wake name the wake words the
 * reader and the writer sleep on; NULL means the ring's own. All three
 * must lie in the same mapping as sh (they are stored as offsets).
 * Returns 0, -EINVAL (capacity not a power of two in [RING_CAPACITY_MIN,
 * RING_CAPACITY_MAX], misaligned data, NULL argument) or -ENAMETOOLONG.
 */
int ring_format(struct ring_shared *sh, void *data, uint64_t capacity, const char *name,
		struct shm_wake *data_wake, struct shm_wake *space_wake);

/*
 * Check a control block found in shared memory before trusting it: magic,
 * version, sizes, geometry, that data and wake words lie inside [lo, lo +
 * span), and that head and tail are consistent. Returns 0, -EPROTO (other
 * magic or version; *why says which) or -EBADMSG (corrupt; *why says
 * what). why may be NULL; the strings are static.
 */
int ring_check(const struct ring_shared *sh, const void *lo, size_t span, const char **why);

/*
 * Attach r to the checked ring sh in one role (exactly one of RING_READER,
 * RING_WRITER, RING_INSPECT). A writer replays the writer journal and
 * takes the published head as its own; a reader replays the reader
 * journal and starts reading at tail. Writer and reader record their pid.
 * Returns 0, -EINVAL (no or several roles, unknown bits) or what
 * ring_check() returns.
 */
int ring_attach(struct ring *r, struct ring_shared *sh, const void *lo, size_t span, unsigned role,
		const char **why);

/* Forget r; clears the pid it recorded. Safe on a zeroed or detached ring. */
void ring_detach(struct ring *r);

void *ring_reserve_slow(struct ring *r, uint32_t len);

/*
 * Writer: reserve room for a record of up to len payload bytes and return
 * where to write the payload (8-byte aligned). The reservation is private
 * until ring_push(); a new ring_reserve() replaces an unpushed one.
 * Returns NULL with errno EAGAIN (not enough free space now) or EMSGSIZE
 * (len > max_record: never fits).
 */
static inline void *ring_reserve(struct ring *r, uint32_t len)
{
	uint64_t size = ring_rec_size(len);
	uint64_t off = r->head & r->mask;

	/* Fast path: fits before the end of the area, enough known space. */
	if (likely(len <= r->max_record && size <= r->capacity - off &&
		   size <= r->capacity - (r->head - r->tail_cache))) {
		r->rsv_pos = r->head;
		r->rsv_len = len;
		return r->data + off + RING_REC_HDR;
	}
	return ring_reserve_slow(r, len);
}

/*
 * Writer: finish the reserved record with its real length (<= reserved),
 * type (>= RING_REC_USER), caller flags and seq. It is not visible to the
 * reader before ring_publish(). Returns 0 or -EINVAL (no reservation,
 * len larger than reserved, reserved type).
 */
static inline int ring_push(struct ring *r, uint32_t len, uint16_t type, uint16_t flags,
			    uint64_t seq)
{
	struct ring_rec *rec;

	if (unlikely(r->rsv_len == RING_RSV_NONE || len > r->rsv_len || type < RING_REC_USER))
		return -EINVAL;
	rec = (struct ring_rec *)(r->data + (r->rsv_pos & r->mask));
	rec->len = len;
	rec->type = type;
	rec->flags = flags;
	rec->seq = seq;
	r->head = r->rsv_pos + ring_rec_size(len);
	r->records++;
	r->last_seq = seq;
	r->rsv_len = RING_RSV_NONE;
	return 0;
}

/*
 * Writer: reserve, copy len bytes from p and push in one call. Returns 0,
 * -EAGAIN, -EMSGSIZE or -EINVAL (reserved type).
 */
static inline int ring_write(struct ring *r, uint16_t type, uint64_t seq, const void *p,
			     uint32_t len)
{
	void *dst = ring_reserve(r, len);

	if (!dst)
		return -errno;
	if (len)
		memcpy(dst, p, len);
	return ring_push(r, len, type, 0, seq);
}

/* Writer: a point to roll unpublished pushes back to (ring_wrewind()). */
struct ring_wmark {
	uint64_t head;
	uint64_t records;
	uint64_t last_seq;
};

static inline void ring_wmark(const struct ring *r, struct ring_wmark *m)
{
	m->head = r->head;
	m->records = r->records;
	m->last_seq = r->last_seq;
}

/*
 * Writer: drop the records pushed since m (and any open reservation).
 * Returns 0, or -EINVAL if some of them were published already.
 */
static inline int ring_wrewind(struct ring *r, const struct ring_wmark *m)
{
	if (m->head - r->pub_head > r->head - r->pub_head)
		return -EINVAL;
	r->head = m->head;
	r->records = m->records;
	r->last_seq = m->last_seq;
	r->rsv_len = RING_RSV_NONE;
	return 0;
}

/* Writer: records pushed and not yet published. */
static inline int ring_pending(const struct ring *r)
{
	return r->head != r->pub_head;
}

/*
 * Writer: make every pushed record visible to the reader in one release
 * store and wake the reader if it sleeps. Returns the number of records
 * published (0 when nothing was pending).
 */
int ring_publish(struct ring *r);

/* Writer: seq of the last record published by any incarnation of the writer. */
static inline uint64_t ring_last_seq(const struct ring *r)
{
	return __atomic_load_n(&r->sh->last_seq, __ATOMIC_RELAXED);
}

/*
 * Writer: wait until a record of len payload bytes can be reserved.
 * Publishes pending records first (a writer must never sleep on records
 * the reader cannot see). timeout_ms < 0 waits forever. Returns 0,
 * -ETIMEDOUT, -EINTR or -EMSGSIZE.
 */
int ring_wait_space(struct ring *r, uint32_t len, int timeout_ms);

const struct ring_rec *ring_read_slow(struct ring *r);

/*
 * Reader: the next record after the cursor, and move the cursor past it.
 * The record stays valid (and unchanged) until ring_commit(). Returns NULL
 * with errno EAGAIN (no published record) or EBADMSG (corrupt ring: the
 * cursor does not move; the caller should stop and report).
 */
static inline const struct ring_rec *ring_read(struct ring *r)
{
	if (likely(r->cursor != r->head_cache)) {
		uint64_t off = r->cursor & r->mask;
		const struct ring_rec *rec = (const struct ring_rec *)(r->data + off);
		uint64_t size = ring_rec_size(rec->len);

		/* Fast path: a well-formed record; anything else is checked slowly. */
		if (likely(rec->type >= RING_REC_USER && rec->len <= r->max_record &&
			   size <= r->head_cache - r->cursor && size <= r->capacity - off)) {
			r->cursor += size;
			r->consumed++;
			r->read_seq = rec->seq;
			return rec;
		}
	}
	return ring_read_slow(r);
}

/* Reader: is a record beyond the cursor published? (No waiting, no side effects.) */
static inline int ring_readable(const struct ring *r)
{
	return __atomic_load_n(&r->sh->head, __ATOMIC_ACQUIRE) != r->cursor;
}

/*
 * Reader: commit every record read so far (tail := cursor) with a release
 * store, and wake the writer if it sleeps. Call only once what was made of
 * those records is safe (published downstream). Returns the number of
 * bytes freed.
 */
uint64_t ring_commit(struct ring *r);

/*
 * Reader: where the reader stands right after a ring_read(), to commit up
 * to there later with ring_commit_mark() while reading on (a consumer whose
 * results complete out of order, like produce waiting for Kafka).
 */
struct ring_mark {
	uint64_t pos;	   /* end of the record */
	uint64_t consumed; /* records read up to and including it */
	uint64_t seq;	   /* its seq */
};

static inline void ring_mark(const struct ring *r, struct ring_mark *m)
{
	m->pos = r->cursor;
	m->consumed = r->consumed;
	m->seq = r->read_seq;
}

/*
 * Reader: commit the records up to mark m (taken by ring_mark() since the
 * last commit). Returns the bytes freed, 0 if m is already committed, or
 * -EINVAL if m lies beyond the cursor.
 */
int64_t ring_commit_mark(struct ring *r, const struct ring_mark *m);

/* Reader: forget reads since the last commit (cursor := tail). */
void ring_rewind(struct ring *r);

/*
 * Reader: wait until a record beyond the cursor is published. Returns 0,
 * -ETIMEDOUT or -EINTR. Callers that hold read records must commit them
 * before waiting, or the writer may wait on them forever.
 */
int ring_wait_data(struct ring *r, int timeout_ms);

/* A consistent-enough snapshot of a ring for display. */
struct ring_stats {
	char name[RING_NAME_MAX];
	uint64_t capacity;
	uint32_t max_record;
	uint64_t head;
	uint64_t tail;
	uint64_t used;	     /* bytes published and not committed */
	uint64_t records;    /* records published and not committed */
	uint64_t published;  /* records published, ever */
	uint64_t last_seq;   /* seq of the last record published */
	uint64_t commit_seq; /* seq of the last record committed */
	int32_t writer_pid;
	int32_t reader_pid;
	int32_t writer_worker;
	int32_t reader_worker;
	int reader_waiting; /* reader sleeps on its wake word */
	int writer_waiting; /* writer sleeps on its wake word */
};

/* Fill st from a checked ring r (any role). */
void ring_stats(const struct ring *r, struct ring_stats *st);

#endif
