/* SPDX-License-Identifier: MIT */
#include "shm/ring.h"

#include <unistd.h>

#include "common/time.h"

#define LOAD_ACQ(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LOAD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define STORE(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)

/* Default bounded spin before a waiter goes to sleep on its futex. */
#define RING_SPIN_NS_DEFAULT 20000ull
/* Default temporal slip of a waking reader (see data_ready()). */
#define RING_SLIP_NS_DEFAULT	5000ull
#define RING_SLIP_BYTES_DEFAULT 4096ull

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

int ring_format(struct ring_shared *sh, void *data, uint64_t capacity, const char *name,
		struct shm_wake *data_wake, struct shm_wake *space_wake)
{
	if (!sh || !data || !name)
		return -EINVAL;
	if (!is_pow2_u64(capacity) || capacity < RING_CAPACITY_MIN || capacity > RING_CAPACITY_MAX)
		return -EINVAL;
	if (((uintptr_t)data | (uintptr_t)sh) % FERRY_CACHE_LINE)
		return -EINVAL;
	if (strlen(name) >= RING_NAME_MAX)
		return -ENAMETOOLONG;

	memset(sh, 0, sizeof(*sh));
	sh->version = RING_VERSION;
	sh->hdr_size = sizeof(*sh);
	sh->capacity = capacity;
	sh->max_record = ring_max_record(capacity);
	sh->data_off = (int64_t)((uintptr_t)data - (uintptr_t)sh);
	sh->data_wake_off =
		(int64_t)((uintptr_t)(data_wake ? data_wake : &sh->data_wake) - (uintptr_t)sh);
	sh->space_wake_off =
		(int64_t)((uintptr_t)(space_wake ? space_wake : &sh->space_wake) - (uintptr_t)sh);
	memcpy(sh->name, name, strlen(name) + 1);
	sh->writer_worker = -1;
	sh->reader_worker = -1;
	/* Zeroed data reads as corrupt, never as records. */
	memset(data, 0, capacity);
	/* Magic last: a ring is valid only once fully laid out. */
	STORE_REL(&sh->magic, RING_MAGIC);
	return 0;
}

/* Is [p, p + len) inside [lo, lo + span)? Overflow-safe. */
static int inside(const void *lo, size_t span, const void *p, uint64_t len)
{
	uintptr_t a = (uintptr_t)lo, x = (uintptr_t)p;

	return x >= a && x - a <= span && len <= span - (x - a);
}

int ring_check(const struct ring_shared *sh, const void *lo, size_t span, const char **why)
{
	const char *w = NULL;
	int r = -EBADMSG;
	uint64_t cap, head, tail;

	if (!inside(lo, span, sh, sizeof(*sh)) || (uintptr_t)sh % 8) {
		w = "control block outside the mapping";
		goto out;
	}
	if (LOAD_ACQ(&sh->magic) != RING_MAGIC) {
		w = "bad ring magic (not a ferry ring, or not formatted)";
		r = -EPROTO;
		goto out;
	}
	if (sh->version != RING_VERSION) {
		w = "ring layout version differs from this build";
		r = -EPROTO;
		goto out;
	}
	if (sh->hdr_size != sizeof(*sh)) {
		w = "ring control block size differs from this build";
		r = -EPROTO;
		goto out;
	}
	cap = sh->capacity;
	if (!is_pow2_u64(cap) || cap < RING_CAPACITY_MIN || cap > RING_CAPACITY_MAX) {
		w = "ring capacity is not a power of two in range";
		goto out;
	}
	if (sh->max_record != ring_max_record(cap) || sh->flags != 0) {
		w = "ring geometry fields inconsistent";
		goto out;
	}
	if (sh->data_off % FERRY_CACHE_LINE ||
	    !inside(lo, span, (const char *)sh + sh->data_off, cap)) {
		w = "ring data area outside the mapping";
		goto out;
	}
	if (sh->data_wake_off % 8 || sh->space_wake_off % 8 ||
	    !inside(lo, span, (const char *)sh + sh->data_wake_off, sizeof(struct shm_wake)) ||
	    !inside(lo, span, (const char *)sh + sh->space_wake_off, sizeof(struct shm_wake))) {
		w = "ring wake word outside the mapping";
		goto out;
	}
	if (memchr(sh->name, 0, sizeof(sh->name)) == NULL) {
		w = "ring name not terminated";
		goto out;
	}
	tail = LOAD_ACQ(&sh->tail);
	head = LOAD_ACQ(&sh->head);
	if (head - tail > cap || head % 8 || tail % 8) {
		w = "ring head and tail inconsistent";
		goto out;
	}
	r = 0;
out:
	if (why)
		*why = w;
	return r;
}

int ring_attach(struct ring *r, struct ring_shared *sh, const void *lo, size_t span, unsigned role,
		const char **why)
{
	int ret;

	if (!r || (role != RING_READER && role != RING_WRITER && role != RING_INSPECT)) {
		if (why)
			*why = "invalid ring role";
		return -EINVAL;
	}
	ret = ring_check(sh, lo, span, why);
	if (ret < 0)
		return ret;

	memset(r, 0, sizeof(*r));
	r->sh = sh;
	r->data = (unsigned char *)sh + sh->data_off;
	r->data_wake = (struct shm_wake *)((char *)sh + sh->data_wake_off);
	r->space_wake = (struct shm_wake *)((char *)sh + sh->space_wake_off);
	r->capacity = sh->capacity;
	r->mask = sh->capacity - 1;
	r->max_record = sh->max_record;
	r->role = role;
	r->spin_ns = RING_SPIN_NS_DEFAULT;
	r->slip_ns = RING_SLIP_NS_DEFAULT;
	r->slip_bytes = RING_SLIP_BYTES_DEFAULT;
	r->rsv_len = RING_RSV_NONE;

	if (role == RING_WRITER) {
		/* Replay the journal of a publish that died after moving head. */
		uint64_t head = LOAD(&sh->head);

		if (LOAD(&sh->j_head) == head) {
			STORE(&sh->records, LOAD(&sh->j_records));
			STORE(&sh->last_seq, LOAD(&sh->j_last_seq));
		}
		r->head = r->pub_head = head;
		r->tail_cache = LOAD_ACQ(&sh->tail);
		r->records = LOAD(&sh->records);
		r->last_seq = LOAD(&sh->last_seq);
		STORE(&sh->writer_pid, (int32_t)getpid());
	} else if (role == RING_READER) {
		uint64_t tail = LOAD(&sh->tail);

		if (LOAD(&sh->j_tail) == tail) {
			STORE(&sh->consumed, LOAD(&sh->j_consumed));
			STORE(&sh->commit_seq, LOAD(&sh->j_commit_seq));
		}
		r->cursor = r->pub_tail = tail;
		r->head_cache = LOAD_ACQ(&sh->head);
		r->consumed = LOAD(&sh->consumed);
		r->read_seq = LOAD(&sh->commit_seq);
		STORE(&sh->reader_pid, (int32_t)getpid());
	}
	return 0;
}

void ring_detach(struct ring *r)
{
	int32_t me;

	if (!r || !r->sh)
		return;
	me = (int32_t)getpid();
	if (r->role == RING_WRITER)
		__atomic_compare_exchange_n(&r->sh->writer_pid, &me, 0, 0, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
	else if (r->role == RING_READER)
		__atomic_compare_exchange_n(&r->sh->reader_pid, &me, 0, 0, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
	memset(r, 0, sizeof(*r));
}

/* Free bytes as the writer knows them, refreshing tail when short of need. */
static uint64_t space_for(struct ring *r, uint64_t need)
{
	uint64_t free_bytes = r->capacity - (r->head - r->tail_cache);

	if (free_bytes < need) {
		r->tail_cache = LOAD_ACQ(&r->sh->tail);
		free_bytes = r->capacity - (r->head - r->tail_cache);
	}
	return free_bytes;
}

/* Bytes a record of len needs at the current head, pad included. */
static uint64_t need_for(const struct ring *r, uint32_t len, uint64_t *ret_pad)
{
	uint64_t size = ring_rec_size(len);
	uint64_t contig = r->capacity - (r->head & r->mask);
	uint64_t pad = contig < size ? contig : 0;

	if (ret_pad)
		*ret_pad = pad;
	return pad + size;
}

void *ring_reserve_slow(struct ring *r, uint32_t len)
{
	uint64_t pad, need;

	if (len > r->max_record) {
		errno = EMSGSIZE;
		return NULL;
	}
	need = need_for(r, len, &pad);
	if (space_for(r, need) < need) {
		errno = EAGAIN;
		return NULL;
	}
	if (pad) {
		/*
		 * Not enough room before the end: a pad record fills it. It
		 * lies beyond the published head, so the reader sees it only
		 * with the record that follows it.
		 */
		struct ring_rec *p = (struct ring_rec *)(r->data + (r->head & r->mask));

		p->len = (uint32_t)pad;
		p->type = RING_REC_PAD;
		p->flags = 0;
	}
	r->rsv_pos = r->head + pad;
	r->rsv_len = len;
	return r->data + (r->rsv_pos & r->mask) + RING_REC_HDR;
}

int ring_publish(struct ring *r)
{
	struct ring_shared *sh = r->sh;
	uint64_t n = r->records - LOAD(&sh->records);

	if (r->head == r->pub_head)
		return 0;
	/*
	 * Journal, then head, then the counters. j_head goes first (it can
	 * only match head once head is stored), the rest in order behind it,
	 * so a writer that dies anywhere in here is put right by the next
	 * ring_attach(): it replays the journal iff head was stored.
	 */
	STORE(&sh->j_head, r->head);
	STORE_REL(&sh->j_records, r->records);
	STORE_REL(&sh->j_last_seq, r->last_seq);
	STORE_REL(&sh->head, r->head);
	STORE(&sh->records, r->records);
	STORE(&sh->last_seq, r->last_seq);
	r->pub_head = r->head;
	shm_wake_ring(r->data_wake);
	return (int)(n > INT32_MAX ? INT32_MAX : n);
}

const struct ring_rec *ring_read_slow(struct ring *r)
{
	for (;;) {
		const struct ring_rec *rec;
		uint64_t off, avail, contig, size;

		if (r->cursor == r->head_cache) {
			r->head_cache = LOAD_ACQ(&r->sh->head);
			if (r->cursor == r->head_cache) {
				errno = EAGAIN;
				return NULL;
			}
		}
		avail = r->head_cache - r->cursor;
		off = r->cursor & r->mask;
		contig = r->capacity - off;
		if (avail > r->capacity || avail % 8)
			goto corrupt;
		rec = (const struct ring_rec *)(r->data + off);
		if (rec->type == RING_REC_PAD) {
			/* A pad fills exactly the rest of the area. */
			if (rec->len != contig || rec->len > avail)
				goto corrupt;
			r->cursor += rec->len;
			continue;
		}
		if (avail < RING_REC_HDR || rec->type < RING_REC_USER || rec->len > r->max_record)
			goto corrupt;
		size = ring_rec_size(rec->len);
		if (size > avail || size > contig)
			goto corrupt;
		r->cursor += size;
		r->consumed++;
		r->read_seq = rec->seq;
		return rec;
	}
corrupt:
	errno = EBADMSG;
	return NULL;
}

static uint64_t commit_to(struct ring *r, uint64_t pos, uint64_t consumed, uint64_t seq)
{
	struct ring_shared *sh = r->sh;
	uint64_t freed = pos - r->pub_tail;

	/* Same journal discipline as ring_publish(). */
	STORE(&sh->j_tail, pos);
	STORE_REL(&sh->j_consumed, consumed);
	STORE_REL(&sh->j_commit_seq, seq);
	STORE_REL(&sh->tail, pos);
	STORE(&sh->consumed, consumed);
	STORE(&sh->commit_seq, seq);
	r->pub_tail = pos;
	shm_wake_ring(r->space_wake);
	return freed;
}

uint64_t ring_commit(struct ring *r)
{
	if (r->cursor == r->pub_tail)
		return 0;
	return commit_to(r, r->cursor, r->consumed, r->read_seq);
}

int64_t ring_commit_mark(struct ring *r, const struct ring_mark *m)
{
	if (m->pos - r->pub_tail > r->cursor - r->pub_tail)
		return m->pos - r->pub_tail > r->capacity ? 0 : -EINVAL;
	if (m->pos == r->pub_tail)
		return 0;
	return (int64_t)commit_to(r, m->pos, m->consumed, m->seq);
}

void ring_rewind(struct ring *r)
{
	r->cursor = r->pub_tail;
	r->consumed = LOAD(&r->sh->consumed);
	r->read_seq = LOAD(&r->sh->commit_seq);
}

static int remaining_ms(uint64_t deadline)
{
	uint64_t now = now_ns();

	if (deadline == UINT64_MAX)
		return -1;
	if (now >= deadline)
		return 0;
	return (int)((deadline - now + 999999) / 1000000);
}

/*
 * The shared waiting loop. ready() is the condition; w the wake word to
 * sleep on. Spin briefly first (the other side is often a few hundred
 * nanoseconds from publishing), then announce, re-check, and sleep.
 *
 * While `slipping`, ready() may ask for more than the bare condition (the
 * reader wants the writer a few cache lines ahead); that lasts at most
 * slip_ns, after which the bare condition is enough.
 */
static int wait_for(struct ring *r, struct shm_wake *w,
		    int (*ready)(struct ring *, uint32_t, int slipping), uint32_t arg,
		    int timeout_ms)
{
	uint64_t start = now_ns(), elapsed = 0;
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms * 1000000ull;
	unsigned i;

	for (i = 0;; i++) {
		if (ready(r, arg, elapsed < r->slip_ns))
			return 0;
		if ((i & 15) == 15) {
			elapsed = now_ns() - start;
			if (elapsed >= r->spin_ns)
				break;
		}
		cpu_relax();
	}
	for (;;) {
		uint32_t seen;
		int ms, ret;

		seen = shm_wake_prepare(w);
		if (ready(r, arg, 0)) {
			shm_wake_cancel(w);
			return 0;
		}
		ms = remaining_ms(deadline);
		if (ms == 0) {
			shm_wake_cancel(w);
			return -ETIMEDOUT;
		}
		ret = shm_wake_sleep(w, seen, ms);
		if (ret == -EINTR)
			return ret;
		/* Woken, timed out or spurious: re-check, then re-arm or give up. */
	}
}

/*
 * Temporal slipping (Giacomoni et al., FastForward, PPoPP 2008): a reader
 * that resumes the instant one record appears reads, and its hardware
 * prefetcher pulls, the very cache lines the writer is still filling, so
 * the lines bounce between the cores. Letting the writer get slip_bytes
 * ahead first (for at most slip_ns, so a lone record waits at most that
 * long) keeps them on different lines.
 */
static int data_ready(struct ring *r, uint32_t unused, int slipping)
{
	uint64_t want = slipping && r->slip_bytes > 1 ? r->slip_bytes : 1;

	(void)unused;
	if (r->head_cache - r->cursor >= want)
		return 1;
	r->head_cache = LOAD_ACQ(&r->sh->head);
	return r->head_cache - r->cursor >= want;
}

static int space_ready(struct ring *r, uint32_t len, int slipping)
{
	uint64_t need = need_for(r, len, NULL);

	(void)slipping;
	return space_for(r, need) >= need;
}

int ring_wait_data(struct ring *r, int timeout_ms)
{
	return wait_for(r, r->data_wake, data_ready, 0, timeout_ms);
}

int ring_wait_space(struct ring *r, uint32_t len, int timeout_ms)
{
	if (len > r->max_record)
		return -EMSGSIZE;
	ring_publish(r);
	return wait_for(r, r->space_wake, space_ready, len, timeout_ms);
}

void ring_stats(const struct ring *r, struct ring_stats *st)
{
	const struct ring_shared *sh = r->sh;
	uint64_t tail = LOAD_ACQ(&sh->tail);
	uint64_t consumed = LOAD(&sh->consumed);
	uint64_t head = LOAD_ACQ(&sh->head);
	uint64_t published = LOAD(&sh->records);

	memset(st, 0, sizeof(*st));
	memcpy(st->name, sh->name, sizeof(st->name));
	st->name[sizeof(st->name) - 1] = 0;
	st->capacity = sh->capacity;
	st->max_record = sh->max_record;
	st->head = head;
	st->tail = tail;
	/* Loads are not one snapshot: clamp what races could skew. */
	st->used = head - tail > sh->capacity ? sh->capacity : head - tail;
	st->records = published >= consumed ? published - consumed : 0;
	st->published = published;
	st->last_seq = LOAD(&sh->last_seq);
	st->commit_seq = LOAD(&sh->commit_seq);
	st->writer_pid = LOAD(&sh->writer_pid);
	st->reader_pid = LOAD(&sh->reader_pid);
	st->writer_worker = sh->writer_worker;
	st->reader_worker = sh->reader_worker;
	st->reader_waiting = (int)LOAD(&r->data_wake->waiting);
	st->writer_waiting = (int)LOAD(&r->space_wake->waiting);
}
