/* SPDX-License-Identifier: MIT */
/* Unit tests of shm/ring: every operation and edge, in one process (and forks). */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "shm/ring.h"

/* A ring in anonymous shared memory (so forked children share it). */
struct fixture {
	void *mem;
	size_t size;
	struct ring_shared *sh;
	struct ring w, r;
};

static struct fixture *fixture_new(uint64_t capacity)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int ret;

	assert_non_null(f);
	f->size = sizeof(struct ring_shared) + capacity;
	f->mem = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(f->mem != MAP_FAILED);
	f->sh = f->mem;
	ret = ring_format(f->sh, (char *)f->mem + sizeof(struct ring_shared), capacity, "test",
			  NULL, NULL);
	assert_int_equal(ret, 0);
	assert_int_equal(ring_attach(&f->w, f->sh, f->mem, f->size, RING_WRITER, NULL), 0);
	assert_int_equal(ring_attach(&f->r, f->sh, f->mem, f->size, RING_READER, NULL), 0);
	return f;
}

static void fixture_free(struct fixture *f)
{
	ring_detach(&f->w);
	ring_detach(&f->r);
	munmap(f->mem, f->size);
	free(f);
}

static int setup(void **state)
{
	(void)state;
	alarm(30); /* a deadlock fails the test instead of hanging it */
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	alarm(0);
	return 0;
}

/* Deterministic payload of a seq. */
static void fill(unsigned char *p, uint32_t len, uint64_t seq)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (unsigned char)(seq * 31 + i * 7);
}

static void check_payload(const struct ring_rec *rec, uint32_t len, uint64_t seq)
{
	assert_non_null(rec);
	assert_int_equal(rec->len, len);
	assert_int_equal(rec->seq, seq);
	for (uint32_t i = 0; i < len; i++)
		assert_int_equal(rec->data[i], (unsigned char)(seq * 31 + i * 7));
}

static int put(struct ring *w, uint64_t seq, uint32_t len)
{
	unsigned char *p = ring_reserve(w, len);

	if (!p)
		return -errno;
	assert_int_equal((uintptr_t)p % 8, 0);
	fill(p, len, seq);
	return ring_push(w, len, RING_REC_USER, 0, seq);
}

static void test_format_rejects(void **state)
{
	static _Alignas(64) unsigned char mem[sizeof(struct ring_shared) + 4096];
	struct ring_shared *sh = (struct ring_shared *)mem;
	void *data = mem + sizeof(struct ring_shared);
	char longname[RING_NAME_MAX + 1];

	(void)state;
	memset(longname, 'x', sizeof(longname) - 1);
	longname[RING_NAME_MAX] = 0;
	assert_int_equal(ring_format(sh, data, 3000, "x", NULL, NULL), -EINVAL);
	assert_int_equal(ring_format(sh, data, 32, "x", NULL, NULL), -EINVAL);
	assert_int_equal(ring_format(sh, data, 0, "x", NULL, NULL), -EINVAL);
	assert_int_equal(ring_format(sh, (char *)data + 8, 1024, "x", NULL, NULL), -EINVAL);
	assert_int_equal(ring_format(sh, data, 1024, longname, NULL, NULL), -ENAMETOOLONG);
	assert_int_equal(ring_format(NULL, data, 1024, "x", NULL, NULL), -EINVAL);
	assert_int_equal(ring_format(sh, data, 4096, "x", NULL, NULL), 0);
	assert_int_equal(ring_check(sh, mem, sizeof(mem), NULL), 0);
	assert_int_equal(ring_max_record(4096), 2048 - 16);
}

static void test_attach_roles(void **state)
{
	struct fixture *f = fixture_new(1024);
	struct ring x;
	const char *why = NULL;

	(void)state;
	assert_int_equal(ring_attach(&x, f->sh, f->mem, f->size, 0, &why), -EINVAL);
	assert_non_null(why);
	assert_int_equal(ring_attach(&x, f->sh, f->mem, f->size, RING_READER | RING_WRITER, NULL),
			 -EINVAL);
	assert_int_equal(ring_attach(&x, f->sh, f->mem, f->size, 1u << 7, NULL), -EINVAL);
	assert_int_equal(f->sh->writer_pid, getpid());
	assert_int_equal(f->sh->reader_pid, getpid());
	ring_detach(&f->r);
	assert_int_equal(f->sh->reader_pid, 0);
	ring_detach(&f->r); /* safe twice */
	fixture_free(f);
}

static void test_empty(void **state)
{
	struct fixture *f = fixture_new(1024);

	(void)state;
	errno = 0;
	assert_null(ring_read(&f->r));
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(ring_commit(&f->r), 0);
	assert_int_equal(ring_publish(&f->w), 0);
	assert_int_equal(ring_wait_data(&f->r, 0), -ETIMEDOUT);
	assert_int_equal(ring_wait_data(&f->r, 20), -ETIMEDOUT);
	/* An empty ring has room for its largest record. */
	assert_int_equal(ring_wait_space(&f->w, f->w.max_record, 0), 0);
	fixture_free(f);
}

static void test_roundtrip_and_visibility(void **state)
{
	struct fixture *f = fixture_new(1024);
	const struct ring_rec *rec;
	unsigned char *p;

	(void)state;
	p = ring_reserve(&f->w, 5);
	assert_non_null(p);
	memcpy(p, "hello", 5);
	assert_int_equal(ring_push(&f->w, 5, 7, 0xbeef, 42), 0);
	/* Pushed is not published. */
	assert_null(ring_read(&f->r));
	assert_int_equal(ring_publish(&f->w), 1);
	assert_int_equal(ring_last_seq(&f->w), 42);
	rec = ring_read(&f->r);
	assert_non_null(rec);
	assert_int_equal(rec->len, 5);
	assert_int_equal(rec->type, 7);
	assert_int_equal(rec->flags, 0xbeef);
	assert_int_equal(rec->seq, 42);
	assert_memory_equal(rec->data, "hello", 5);
	assert_null(ring_read(&f->r));
	assert_int_equal(ring_commit(&f->r), ring_rec_size(5));
	assert_int_equal(f->sh->tail, f->sh->head);
	assert_int_equal(f->sh->commit_seq, 42);
	fixture_free(f);
}

static void test_zero_length(void **state)
{
	struct fixture *f = fixture_new(1024);
	const struct ring_rec *rec;

	(void)state;
	assert_int_equal(ring_write(&f->w, RING_REC_USER, 9, NULL, 0), 0);
	assert_int_equal(ring_write(&f->w, RING_REC_USER, 10, "a", 1), 0);
	ring_publish(&f->w);
	rec = ring_read(&f->r);
	assert_non_null(rec);
	assert_int_equal(rec->len, 0);
	assert_int_equal(rec->seq, 9);
	rec = ring_read(&f->r);
	assert_non_null(rec);
	assert_int_equal(rec->len, 1);
	assert_int_equal(f->sh->head, RING_REC_HDR + RING_REC_HDR + 8);
	fixture_free(f);
}

static void test_push_errors(void **state)
{
	struct fixture *f = fixture_new(1024);

	(void)state;
	assert_int_equal(ring_push(&f->w, 0, RING_REC_USER, 0, 1), -EINVAL); /* no reservation */
	assert_non_null(ring_reserve(&f->w, 8));
	assert_int_equal(ring_push(&f->w, 9, RING_REC_USER, 0, 1), -EINVAL); /* longer */
	assert_int_equal(ring_push(&f->w, 8, RING_REC_PAD, 0, 1), -EINVAL);
	assert_int_equal(ring_push(&f->w, 8, RING_REC_INVALID, 0, 1), -EINVAL);
	assert_int_equal(ring_write(&f->w, RING_REC_PAD, 1, "x", 1), -EINVAL);
	/* Shrinking a reservation returns the rest. */
	assert_non_null(ring_reserve(&f->w, 200));
	assert_int_equal(ring_push(&f->w, 3, RING_REC_USER, 0, 1), 0);
	assert_int_equal(f->w.head, ring_rec_size(3));
	/* Pushed once: a second push needs a new reservation. */
	assert_int_equal(ring_push(&f->w, 3, RING_REC_USER, 0, 1), -EINVAL);
	fixture_free(f);
}

static void test_oversized(void **state)
{
	struct fixture *f = fixture_new(1024);
	uint32_t max = f->w.max_record;

	(void)state;
	assert_int_equal(max, 512 - 16);
	errno = 0;
	assert_null(ring_reserve(&f->w, max + 1));
	assert_int_equal(errno, EMSGSIZE);
	assert_null(ring_reserve(&f->w, UINT32_MAX));
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(ring_write(&f->w, RING_REC_USER, 1, "", max + 1), -EMSGSIZE);
	assert_int_equal(ring_wait_space(&f->w, max + 1, 0), -EMSGSIZE);
	/* The largest record fits an empty ring at every position. */
	for (uint64_t seq = 1; seq <= 64; seq++) {
		const struct ring_rec *rec;

		assert_int_equal(put(&f->w, seq, (uint32_t)(seq * 8 % 64)), 0);
		ring_publish(&f->w);
		rec = ring_read(&f->r);
		check_payload(rec, (uint32_t)(seq * 8 % 64), seq);
		ring_commit(&f->r);
		assert_int_equal(put(&f->w, 1000 + seq, max), 0);
		ring_publish(&f->w);
		check_payload(ring_read(&f->r), max, 1000 + seq);
		ring_commit(&f->r);
	}
	fixture_free(f);
}

static void test_full(void **state)
{
	struct fixture *f = fixture_new(1024);
	uint64_t seq = 0;
	int ret;

	(void)state;
	/* 64-byte records (80 with header): 12 fit in 1024 bytes. */
	while ((ret = put(&f->w, ++seq, 64)) == 0)
		;
	assert_int_equal(ret, -EAGAIN);
	assert_int_equal(seq - 1, 12);
	ring_publish(&f->w);
	assert_int_equal(ring_wait_space(&f->w, 64, 10), -ETIMEDOUT);
	/* Read but not committed: still full. */
	check_payload(ring_read(&f->r), 64, 1);
	assert_int_equal(put(&f->w, 100, 64), -EAGAIN);
	assert_int_equal(ring_commit(&f->r), 80);
	/* 64 bytes before the end (a pad) plus 80 freed at the start: fits. */
	assert_int_equal(f->w.capacity - (f->w.head & f->w.mask), 64);
	assert_int_equal(put(&f->w, 100, 64), 0);
	assert_int_equal(f->w.head, 960 + 64 + 80);
	assert_int_equal(put(&f->w, 101, 0), -EAGAIN);
	ring_publish(&f->w);
	for (uint64_t s = 2; s <= 12; s++)
		check_payload(ring_read(&f->r), 64, s);
	check_payload(ring_read(&f->r), 64, 100);
	assert_null(ring_read(&f->r));
	fixture_free(f);
}

static void test_exact_fit_at_wrap(void **state)
{
	struct fixture *f = fixture_new(256);
	const struct ring_rec *rec;

	(void)state;
	/* 3 x 64 = 192, then a record of exactly the 64 bytes left. */
	for (uint64_t s = 1; s <= 3; s++)
		assert_int_equal(put(&f->w, s, 48), 0);
	assert_int_equal(put(&f->w, 4, 48), 0);
	assert_int_equal(f->w.head, 256); /* no pad: exactly at the end */
	ring_publish(&f->w);
	for (uint64_t s = 1; s <= 4; s++)
		check_payload(ring_read(&f->r), 48, s);
	assert_int_equal(f->r.cursor, 256);
	ring_commit(&f->r);
	/* The next record starts at offset 0. */
	assert_int_equal(put(&f->w, 5, 100), 0);
	ring_publish(&f->w);
	rec = ring_read(&f->r);
	check_payload(rec, 100, 5);
	assert_ptr_equal(rec, f->r.data);
	fixture_free(f);
}

/* Move an empty ring's head and tail forward by bytes (a multiple of 8). */
static void advance(struct fixture *f, uint64_t bytes)
{
	while (bytes) {
		uint64_t chunk = bytes > ring_rec_size(f->w.max_record)
					 ? ring_rec_size(f->w.max_record)
					 : bytes;

		/* Never leave a remainder too small for a header. */
		if (bytes - chunk > 0 && bytes - chunk < RING_REC_HDR)
			chunk -= RING_REC_HDR;
		assert_int_equal(put(&f->w, 1000, (uint32_t)(chunk - RING_REC_HDR)), 0);
		ring_publish(&f->w);
		assert_non_null(ring_read(&f->r));
		ring_commit(&f->r);
		bytes -= chunk;
	}
}

static void test_pad_at_wrap(void **state)
{
	struct fixture *f = fixture_new(512);
	const struct ring_rec *rec;

	(void)state;
	advance(f, 456);
	assert_int_equal(f->w.head, 456);
	/* 56 bytes left before the end: a 48-byte payload (64) must pad. */
	assert_int_equal(put(&f->w, 2, 48), 0);
	assert_int_equal(f->w.head, 512 + 64);
	ring_publish(&f->w);
	rec = ring_read(&f->r);
	check_payload(rec, 48, 2);
	assert_ptr_equal(rec, f->r.data);
	assert_null(ring_read(&f->r));
	ring_commit(&f->r);
	assert_int_equal(f->sh->tail, 576);
	fixture_free(f);
}

static void test_pad_of_eight(void **state)
{
	struct fixture *f = fixture_new(512);

	(void)state;
	/* Leave exactly 8 bytes before the end: a pad smaller than a header. */
	advance(f, 504);
	assert_int_equal(put(&f->w, 2, 0), 0);
	assert_int_equal(f->w.head, 512 + 16);
	ring_publish(&f->w);
	check_payload(ring_read(&f->r), 0, 2);
	fixture_free(f);
}

static void test_abandoned_reservation(void **state)
{
	struct fixture *f = fixture_new(512);

	(void)state;
	advance(f, 456);
	/* Reserve one that pads, then change our mind for one that fits. */
	assert_non_null(ring_reserve(&f->w, 100));
	assert_int_equal(put(&f->w, 2, 8), 0);
	assert_int_equal(f->w.head, 456 + 24);
	ring_publish(&f->w);
	check_payload(ring_read(&f->r), 8, 2);
	fixture_free(f);
}

static void test_reread_uncommitted(void **state)
{
	struct fixture *f = fixture_new(1024);
	struct ring again;

	(void)state;
	for (uint64_t s = 1; s <= 5; s++)
		assert_int_equal(put(&f->w, s, 10), 0);
	ring_publish(&f->w);
	check_payload(ring_read(&f->r), 10, 1);
	check_payload(ring_read(&f->r), 10, 2);
	ring_commit(&f->r);
	check_payload(ring_read(&f->r), 10, 3);
	check_payload(ring_read(&f->r), 10, 4);
	/* The reader "dies": a new one starts at the committed tail. */
	assert_int_equal(ring_attach(&again, f->sh, f->mem, f->size, RING_READER, NULL), 0);
	check_payload(ring_read(&again), 10, 3);
	/* Rewind forgets reads since the last commit. */
	ring_rewind(&again);
	check_payload(ring_read(&again), 10, 3);
	check_payload(ring_read(&again), 10, 4);
	check_payload(ring_read(&again), 10, 5);
	assert_null(ring_read(&again));
	ring_commit(&again);
	assert_int_equal(f->sh->consumed, 5);
	assert_int_equal(f->sh->commit_seq, 5);
	ring_detach(&again);
	fixture_free(f);
}

static void test_writer_restart_and_journal(void **state)
{
	struct fixture *f = fixture_new(1024);
	struct ring w2;

	(void)state;
	for (uint64_t s = 1; s <= 3; s++)
		assert_int_equal(put(&f->w, s, 10), 0);
	ring_publish(&f->w);
	/* Pushed but unpublished records die with the writer. */
	assert_int_equal(put(&f->w, 4, 10), 0);
	assert_int_equal(ring_attach(&w2, f->sh, f->mem, f->size, RING_WRITER, NULL), 0);
	assert_int_equal(ring_last_seq(&w2), 3);
	assert_int_equal(w2.head, f->sh->head);

	/* Death after head was stored but before the counters: replayed. */
	f->sh->j_head = f->sh->head + 32;
	f->sh->j_records = 99;
	f->sh->j_last_seq = 77;
	f->sh->head += 32;
	assert_int_equal(ring_attach(&w2, f->sh, f->mem, f->size, RING_WRITER, NULL), 0);
	assert_int_equal(ring_last_seq(&w2), 77);
	assert_int_equal(f->sh->records, 99);

	/* Death after the journal but before head: not replayed. */
	f->sh->j_head = f->sh->head + 32;
	f->sh->j_records = 500;
	f->sh->j_last_seq = 500;
	assert_int_equal(ring_attach(&w2, f->sh, f->mem, f->size, RING_WRITER, NULL), 0);
	assert_int_equal(ring_last_seq(&w2), 77);
	assert_int_equal(f->sh->records, 99);

	/* Same for the reader's commit journal. */
	f->sh->j_tail = f->sh->tail + 16;
	f->sh->j_consumed = 1234;
	f->sh->j_commit_seq = 4321;
	assert_int_equal(ring_attach(&w2, f->sh, f->mem, f->size, RING_READER, NULL), 0);
	assert_int_equal(f->sh->consumed, 0);
	f->sh->tail += 16;
	assert_int_equal(ring_attach(&w2, f->sh, f->mem, f->size, RING_READER, NULL), 0);
	assert_int_equal(f->sh->consumed, 1234);
	assert_int_equal(f->sh->commit_seq, 4321);
	fixture_free(f);
}

static void test_corrupt_header_refused(void **state)
{
	struct fixture *f = fixture_new(1024);
	struct ring x;
	struct ring_shared saved = *f->sh;
	const char *why;

	(void)state;
#define EXPECT_REFUSED(mutate, code)                                                               \
	do {                                                                                       \
		*f->sh = saved;                                                                    \
		mutate;                                                                            \
		why = NULL;                                                                        \
		assert_int_equal(ring_attach(&x, f->sh, f->mem, f->size, RING_READER, &why),       \
				 code);                                                            \
		assert_non_null(why);                                                              \
	} while (0)
	EXPECT_REFUSED(f->sh->magic = 0, -EPROTO);
	EXPECT_REFUSED(f->sh->version = 2, -EPROTO);
	EXPECT_REFUSED(f->sh->hdr_size = 128, -EPROTO);
	EXPECT_REFUSED(f->sh->capacity = 1000, -EBADMSG);
	EXPECT_REFUSED(f->sh->capacity = 2048, -EBADMSG); /* runs past the mapping */
	EXPECT_REFUSED(f->sh->max_record = 2000, -EBADMSG);
	EXPECT_REFUSED(f->sh->flags = 1, -EBADMSG);
	EXPECT_REFUSED(f->sh->data_off = 1 << 20, -EBADMSG);
	EXPECT_REFUSED(f->sh->data_off = -(1 << 20), -EBADMSG);
	EXPECT_REFUSED(f->sh->data_off = 8, -EBADMSG);
	EXPECT_REFUSED(f->sh->data_wake_off = 1 << 30, -EBADMSG);
	EXPECT_REFUSED(f->sh->space_wake_off = -64, -EBADMSG);
	EXPECT_REFUSED(memset(f->sh->name, 'x', sizeof(f->sh->name)), -EBADMSG);
	EXPECT_REFUSED(f->sh->head = 2048, -EBADMSG);
	EXPECT_REFUSED(f->sh->tail = 8, -EBADMSG); /* tail beyond head */
	EXPECT_REFUSED(f->sh->head = 4, -EBADMSG); /* misaligned */
	/* A mapping too small for the control block itself. */
	assert_int_equal(ring_check(f->sh, f->mem, 100, &why), -EBADMSG);
#undef EXPECT_REFUSED
	*f->sh = saved;
	assert_int_equal(ring_check(f->sh, f->mem, f->size, NULL), 0);
	fixture_free(f);
}

static void test_corrupt_record_refused(void **state)
{
	struct fixture *f = fixture_new(256);
	struct ring_rec *rec = (struct ring_rec *)f->w.data;
	uint64_t cursor;

	(void)state;
	assert_int_equal(put(&f->w, 1, 16), 0);
	ring_publish(&f->w);
	cursor = f->r.cursor;
	rec->type = RING_REC_INVALID;
	errno = 0;
	assert_null(ring_read(&f->r));
	assert_int_equal(errno, EBADMSG);
	assert_int_equal(f->r.cursor, cursor);
	rec->type = RING_REC_USER;
	rec->len = 10000; /* larger than max_record */
	assert_null(ring_read(&f->r));
	assert_int_equal(errno, EBADMSG);
	rec->len = 40; /* runs past head */
	assert_null(ring_read(&f->r));
	assert_int_equal(errno, EBADMSG);
	rec->type = RING_REC_PAD; /* a pad that does not reach the end */
	rec->len = 32;
	assert_null(ring_read(&f->r));
	assert_int_equal(errno, EBADMSG);
	rec->type = RING_REC_USER;
	rec->len = 16;
	check_payload(ring_read(&f->r), 16, 1);
	fixture_free(f);
}

/* Random lengths, batch sizes and commit points across many wraps. */
static void test_random_stream(void **state)
{
	struct fixture *f = fixture_new(4096);
	uint64_t wseq = 0, rseq = 0;
	unsigned seed = 12345;

	(void)state;
	while (rseq < 200000) {
		unsigned nw = (unsigned)rand_r(&seed) % 40, nr = (unsigned)rand_r(&seed) % 40;

		for (unsigned i = 0; i < nw; i++) {
			uint32_t len = (uint32_t)rand_r(&seed) % 5 == 0
					       ? (uint32_t)rand_r(&seed) % (f->w.max_record + 1)
					       : (uint32_t)rand_r(&seed) % 100;

			if (put(&f->w, wseq + 1, len) < 0)
				break;
			wseq++;
		}
		if (rand_r(&seed) % 3)
			ring_publish(&f->w);
		for (unsigned i = 0; i < nr; i++) {
			const struct ring_rec *rec = ring_read(&f->r);

			if (!rec) {
				assert_int_equal(errno, EAGAIN);
				break;
			}
			assert_int_equal(rec->seq, ++rseq);
			check_payload(rec, rec->len, rec->seq);
		}
		if (rand_r(&seed) % 4 == 0) {
			ring_rewind(&f->r); /* as if the reader died */
			rseq = f->sh->commit_seq;
		} else {
			ring_commit(&f->r);
		}
	}
	assert_true(f->sh->head > 50 * 4096ull); /* wrapped many times */
	fixture_free(f);
}

static void test_no_syscall_without_sleeper(void **state)
{
	struct fixture *f = fixture_new(1024);
	uint32_t seq0 = f->sh->data_wake.seq;

	(void)state;
	/* Nobody waits: publishing never touches the futex word. */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(put(&f->w, (uint64_t)i + 1, 8), 0);
		ring_publish(&f->w);
	}
	assert_int_equal(f->sh->data_wake.seq, seq0);
	/* A (pretend) sleeper: the publish rings. */
	f->sh->data_wake.waiting = 1;
	assert_int_equal(put(&f->w, 11, 8), 0);
	ring_publish(&f->w);
	assert_int_equal(f->sh->data_wake.seq, seq0 + 1);
	f->sh->data_wake.waiting = 0;
	/* Same on the space side. */
	seq0 = f->sh->space_wake.seq;
	while (ring_read(&f->r))
		;
	ring_commit(&f->r);
	assert_int_equal(f->sh->space_wake.seq, seq0);
	fixture_free(f);
}

/* Spin (bounded, no sleep) until *flag is set by another process. */
static void await_flag(const uint32_t *flag)
{
	for (long i = 0; !__atomic_load_n(flag, __ATOMIC_ACQUIRE); i++) {
		if (i > 2000000000L)
			_exit(3);
		sched_yield();
	}
}

static void test_wait_data_across_processes(void **state)
{
	struct fixture *f = fixture_new(1024);
	pid_t pid;
	int status;

	(void)state;
	f->r.spin_ns = 0;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Publish only once the parent sleeps: the futex path. */
		await_flag(&f->sh->data_wake.waiting);
		if (put(&f->w, 1, 32) < 0 || ring_publish(&f->w) != 1)
			_exit(1);
		_exit(0);
	}
	assert_int_equal(ring_wait_data(&f->r, -1), 0);
	check_payload(ring_read(&f->r), 32, 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(f->sh->data_wake.seq >= 1);
	fixture_free(f);
}

static void test_wait_space_across_processes(void **state)
{
	struct fixture *f = fixture_new(1024);
	pid_t pid;
	int status;

	(void)state;
	f->w.spin_ns = 0;
	while (put(&f->w, f->w.records + 1, 100) == 0)
		;
	ring_publish(&f->w);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Drain only once the writer sleeps for space. */
		await_flag(&f->sh->space_wake.waiting);
		while (ring_read(&f->r))
			;
		ring_commit(&f->r);
		_exit(0);
	}
	assert_int_equal(ring_wait_space(&f->w, 400, -1), 0);
	assert_int_equal(put(&f->w, 99, 400), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	fixture_free(f);
}

/* Two rings whose reader sleeps on one shared wake word. */
static void test_shared_wake_word(void **state)
{
	size_t cap = 256, one = sizeof(struct ring_shared) + cap;
	size_t size = 2 * one + sizeof(struct shm_wake);
	char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct shm_wake *bell = (struct shm_wake *)(mem + 2 * one);
	struct ring_shared *a = (struct ring_shared *)mem, *b = (struct ring_shared *)(mem + one);
	struct ring ra, rb, wb;
	pid_t pid;
	int status;

	(void)state;
	assert_true(mem != MAP_FAILED);
	assert_int_equal(ring_format(a, mem + sizeof(*a), cap, "a", bell, NULL), 0);
	assert_int_equal(ring_format(b, mem + one + sizeof(*b), cap, "b", bell, NULL), 0);
	assert_int_equal(ring_attach(&ra, a, mem, size, RING_READER, NULL), 0);
	assert_int_equal(ring_attach(&rb, b, mem, size, RING_READER, NULL), 0);
	assert_ptr_equal(ra.data_wake, bell);
	assert_ptr_equal(rb.data_wake, bell);
	ra.spin_ns = 0;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		await_flag(&bell->waiting);
		if (ring_attach(&wb, b, mem, size, RING_WRITER, NULL) < 0 ||
		    ring_write(&wb, RING_REC_USER, 5, "b", 1) < 0 || ring_publish(&wb) != 1)
			_exit(1);
		_exit(0);
	}
	/* Sleep "on a": the write to b rings the same bell; a stays empty. */
	{
		uint32_t seen = shm_wake_prepare(bell);

		if (!ring_read(&ra) && !ring_read(&rb))
			assert_int_equal(shm_wake_sleep(bell, seen, -1), 0);
		else
			shm_wake_cancel(bell);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_null(ring_read(&ra));
	assert_non_null(ring_read(&rb));
	munmap(mem, size);
}

static void test_commit_mark(void **state)
{
	struct fixture *f = fixture_new(1024);
	struct ring_mark m1, m2, late;
	struct ring again;

	(void)state;
	for (uint64_t s = 1; s <= 4; s++)
		assert_int_equal(put(&f->w, s, 8), 0);
	ring_publish(&f->w);
	check_payload(ring_read(&f->r), 8, 1);
	ring_mark(&f->r, &m1);
	check_payload(ring_read(&f->r), 8, 2);
	ring_mark(&f->r, &m2);
	check_payload(ring_read(&f->r), 8, 3);
	/* Commit the first only: a new reader starts at the second. */
	assert_int_equal(ring_commit_mark(&f->r, &m1), 24);
	assert_int_equal(f->sh->commit_seq, 1);
	assert_int_equal(f->sh->consumed, 1);
	assert_int_equal(ring_attach(&again, f->sh, f->mem, f->size, RING_READER, NULL), 0);
	check_payload(ring_read(&again), 8, 2);
	ring_detach(&again);
	assert_int_equal(ring_commit_mark(&f->r, &m1), 0); /* already committed */
	assert_int_equal(ring_commit_mark(&f->r, &m2), 24);
	late = m2;
	late.pos += 48; /* beyond the cursor */
	assert_int_equal(ring_commit_mark(&f->r, &late), -EINVAL);
	assert_int_equal(ring_commit(&f->r), 24);
	assert_int_equal(f->sh->consumed, 3);
	fixture_free(f);
}

static void test_writer_rewind(void **state)
{
	struct fixture *f = fixture_new(1024);
	struct ring_wmark m, old;

	(void)state;
	ring_wmark(&f->w, &old);
	assert_int_equal(put(&f->w, 1, 8), 0);
	ring_publish(&f->w);
	ring_wmark(&f->w, &m);
	assert_false(ring_pending(&f->w));
	assert_int_equal(put(&f->w, 2, 8), 0);
	assert_int_equal(put(&f->w, 3, 8), 0);
	assert_true(ring_pending(&f->w));
	assert_int_equal(ring_wrewind(&f->w, &m), 0);
	assert_false(ring_pending(&f->w));
	assert_int_equal(ring_wrewind(&f->w, &old), -EINVAL); /* published already */
	assert_int_equal(put(&f->w, 4, 8), 0);
	ring_publish(&f->w);
	check_payload(ring_read(&f->r), 8, 1);
	check_payload(ring_read(&f->r), 8, 4);
	assert_null(ring_read(&f->r));
	assert_int_equal(ring_last_seq(&f->w), 4);
	fixture_free(f);
}

static void test_stats(void **state)
{
	struct fixture *f = fixture_new(1024);
	struct ring insp;
	struct ring_stats st;

	(void)state;
	for (uint64_t s = 1; s <= 4; s++)
		assert_int_equal(put(&f->w, s * 10, 24), 0);
	ring_publish(&f->w);
	check_payload(ring_read(&f->r), 24, 10);
	ring_commit(&f->r);
	assert_int_equal(ring_attach(&insp, f->sh, f->mem, f->size, RING_INSPECT, NULL), 0);
	ring_stats(&insp, &st);
	assert_string_equal(st.name, "test");
	assert_int_equal(st.capacity, 1024);
	assert_int_equal(st.used, 3 * 40);
	assert_int_equal(st.records, 3);
	assert_int_equal(st.published, 4);
	assert_int_equal(st.last_seq, 40);
	assert_int_equal(st.commit_seq, 10);
	assert_int_equal(st.writer_pid, getpid());
	assert_int_equal(st.reader_pid, getpid());
	assert_int_equal(st.reader_waiting, 0);
	ring_detach(&insp);
	/* Inspecting sets no pid and clears none. */
	assert_int_equal(f->sh->reader_pid, getpid());
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_format_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_roles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_and_visibility, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_push_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exact_fit_at_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pad_at_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pad_of_eight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abandoned_reservation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reread_uncommitted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_restart_and_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_header_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_record_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_syscall_without_sleeper, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_data_across_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_space_across_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_wake_word, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_mark, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_rewind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
