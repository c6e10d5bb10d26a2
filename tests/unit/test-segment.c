/* SPDX-License-Identifier: MIT */
/* Unit tests of shm/segment: create, attach, inspect, refuse what is wrong. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "shm/segment.h"

static char instance[64];

static const struct shm_worker_spec workers[] = {
	{"ingest", SHM_WORKER_INGEST, 0},
	{"decrypt.0", SHM_WORKER_DECRYPT, 0},
	{"produce", SHM_WORKER_PRODUCE, 0},
};

static const struct shm_ring_spec rings[] = {
	{"ingest>decrypt.0", 1 << 16, 0, 1},
	{"decrypt.0>produce", 1 << 12, 1, 2},
	{"acks", 1 << 12, 2, 0},
	{"loose", 1 << 12, -1, -1},
};

static struct shm_spec spec(void)
{
	struct shm_spec s = {instance, ARRAY_SIZE(workers), workers, ARRAY_SIZE(rings), rings};

	return s;
}

static int setup(void **state)
{
	(void)state;
	alarm(30);
	snprintf(instance, sizeof(instance), "test-segment-%d", (int)getpid());
	shm_segment_unlink(instance);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	shm_segment_unlink(instance);
	alarm(0);
	return 0;
}

static struct shm_segment *create(void)
{
	struct shm_spec s = spec();
	struct shm_segment *seg = NULL;
	char err[256] = "";

	assert_int_equal(shm_segment_create(&s, 0, &seg, err, sizeof(err)), 0);
	assert_non_null(seg);
	return seg;
}

static void test_instance_names(void **state)
{
	char path[SHM_PATH_MAX];
	char longname[80];

	(void)state;
	assert_true(shm_instance_valid("default"));
	assert_true(shm_instance_valid("eu-west_1.a"));
	assert_false(shm_instance_valid(""));
	assert_false(shm_instance_valid(NULL));
	assert_false(shm_instance_valid(".hidden"));
	assert_false(shm_instance_valid("a/b"));
	assert_false(shm_instance_valid("a b"));
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_false(shm_instance_valid(longname));
	longname[64] = 0;
	assert_false(shm_instance_valid(longname));
	longname[63] = 0; /* 63 characters: the longest that fits */
	assert_true(shm_instance_valid(longname));
	assert_int_equal(shm_path("x1", path, sizeof(path)), 0);
	assert_string_equal(path, "/dev/shm/ferry.x1");
	assert_int_equal(shm_path("../x", path, sizeof(path)), -EINVAL);
}

static void test_create_mode_and_layout(void **state)
{
	struct shm_spec s = spec();
	struct shm_segment *seg;
	char path[SHM_PATH_MAX];
	struct stat st;
	mode_t old = umask(0);

	(void)state;
	seg = create();
	umask(old);
	shm_path(instance, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal((size_t)st.st_size, shm_spec_size(&s));
	assert_int_equal(seg->hdr->magic, SHM_MAGIC);
	assert_int_equal(seg->hdr->layout_version, SHM_LAYOUT_VERSION);
	assert_int_equal(seg->hdr->n_workers, 3);
	assert_int_equal(seg->hdr->n_rings, 4);
	assert_string_equal(seg->hdr->instance, instance);
	assert_string_equal(seg->workers[1].name, "decrypt.0");
	assert_int_equal(seg->workers[1].kind, SHM_WORKER_DECRYPT);
	assert_int_equal(seg->workers[2].index, 2);
	/* Data areas page-aligned, rings cache-line aligned. */
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(((uintptr_t)&seg->rings[i]) % 64, 0);
		assert_int_equal(
			((uintptr_t)seg->rings[i].data_off + (uintptr_t)&seg->rings[i]) % 4096, 0);
	}
	/* A ring's reader sleeps on its reader worker's wake word. */
	{
		struct ring r;

		assert_int_equal(shm_segment_ring_attach(seg, 1, RING_READER, &r, NULL), 0);
		assert_ptr_equal(r.data_wake, &seg->workers[2].wake);
		assert_ptr_equal(r.space_wake, &seg->workers[1].wake);
		ring_detach(&r);
		assert_int_equal(shm_segment_ring_attach(seg, 3, RING_READER, &r, NULL), 0);
		assert_ptr_equal(r.data_wake, &seg->rings[3].data_wake);
		ring_detach(&r);
	}
	assert_int_equal(shm_segment_ring_find(seg, "acks"), 2);
	assert_int_equal(shm_segment_ring_find(seg, "nope"), -ENOENT);
	shm_segment_close(seg);
	shm_segment_close(NULL);
}

static void test_create_exists_and_replace(void **state)
{
	struct shm_spec s = spec();
	struct shm_segment *seg = create(), *seg2 = NULL;
	char err[256] = "";

	(void)state;
	assert_int_equal(shm_segment_create(&s, 0, &seg2, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, instance));
	assert_int_equal(shm_segment_create(&s, SHM_CREATE_REPLACE, &seg2, err, sizeof(err)), 0);
	shm_segment_close(seg2);
	shm_segment_close(seg);
	assert_int_equal(shm_segment_create(&s, 1u << 9, &seg2, err, sizeof(err)), -EINVAL);
}

static void test_bad_specs(void **state)
{
	struct shm_ring_spec bad_rings[2] = {{"a", 4096, -1, -1}, {"a", 4096, -1, -1}};
	struct shm_worker_spec bad_worker[1] = {{"", 0, 0}};
	struct shm_spec s = {instance, 0, NULL, 2, bad_rings};
	struct shm_segment *seg = NULL;
	char err[256];

	(void)state;
	assert_int_equal(shm_segment_create(&s, 0, &seg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "used twice"));
	bad_rings[1].name = "b";
	bad_rings[1].capacity = 5000;
	assert_int_equal(shm_segment_create(&s, 0, &seg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "power of two"));
	bad_rings[1].capacity = 4096;
	bad_rings[1].writer = 3;
	assert_int_equal(shm_segment_create(&s, 0, &seg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a worker"));
	bad_rings[1].writer = -1;
	s.n_workers = 1;
	s.workers = bad_worker;
	assert_int_equal(shm_segment_create(&s, 0, &seg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "worker 0"));
	s.n_workers = 0;
	s.instance = "no/slash";
	assert_int_equal(shm_segment_create(&s, 0, &seg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "instance"));
	assert_int_equal(shm_spec_size(&s), 0);
	assert_null(seg);
}

static void test_open_readonly(void **state)
{
	struct shm_segment *seg = create(), *ro = NULL;
	struct ring w, r;
	char err[256] = "";

	(void)state;
	assert_int_equal(shm_segment_ring_attach(seg, 0, RING_WRITER, &w, NULL), 0);
	assert_int_equal(ring_write(&w, RING_REC_USER, 77, "abc", 3), 0);
	ring_publish(&w);
	assert_int_equal(shm_segment_open(instance, SHM_RDONLY, &ro, err, sizeof(err)), 0);
	assert_true(ro->readonly);
	assert_string_equal(ro->path + strlen("/dev/shm/ferry."), instance);
	assert_int_equal(shm_segment_ring_attach(ro, 0, RING_READER, &r, NULL), -EROFS);
	assert_int_equal(shm_segment_ring_attach(ro, 9, RING_INSPECT, &r, NULL), -EINVAL);
	assert_int_equal(shm_segment_ring_attach(ro, 0, RING_INSPECT, &r, NULL), 0);
	{
		struct ring_stats st;

		ring_stats(&r, &st);
		assert_int_equal(st.last_seq, 77);
		assert_int_equal(st.records, 1);
		assert_int_equal(st.writer_pid, getpid());
		assert_int_equal(st.reader_worker, 1);
	}
	shm_segment_close(ro);
	ring_detach(&w);
	shm_segment_close(seg);
}

static void test_open_missing(void **state)
{
	struct shm_segment *seg = NULL;
	char err[256] = "";

	(void)state;
	assert_int_equal(shm_segment_open(instance, SHM_RDONLY, &seg, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "is ferryd running"));
	assert_int_equal(shm_segment_open("bad/name", 0, &seg, err, sizeof(err)), -EINVAL);
}

/* Mutate a freshly made segment on disk, then expect attach to refuse it. */
static void refused(void (*mutate)(struct shm_segment *), int code, const char *needle)
{
	struct shm_segment *seg = create(), *again = NULL;
	char err[512] = "";

	mutate(seg);
	shm_segment_close(seg);
	assert_int_equal(shm_segment_open(instance, SHM_RDONLY, &again, err, sizeof(err)), code);
	assert_null(again);
	if (!strstr(err, needle))
		fail_msg("message '%s' lacks '%s'", err, needle);
	assert_non_null(strstr(err, "/dev/shm/ferry.")); /* names the file */
	shm_segment_unlink(instance);
}

static void bad_magic(struct shm_segment *s)
{
	s->hdr->magic = 0x1234;
}
static void bad_version(struct shm_segment *s)
{
	s->hdr->layout_version = 99;
}
static void bad_worker_size(struct shm_segment *s)
{
	s->hdr->worker_size = 128;
}
static void bad_size(struct shm_segment *s)
{
	s->hdr->segment_size += 4096;
}
static void bad_table(struct shm_segment *s)
{
	s->hdr->n_rings = 100000;
}
static void bad_ring(struct shm_segment *s)
{
	s->rings[2].capacity = 3;
}
static void bad_ring_magic(struct shm_segment *s)
{
	s->rings[1].magic = 0;
}
static void bad_ring_worker(struct shm_segment *s)
{
	s->rings[1].reader_worker = 17;
}
static void bad_ring_tail(struct shm_segment *s)
{
	s->rings[0].tail = 64;
}
static void bad_instance(struct shm_segment *s)
{
	memset(s->hdr->instance, 'x', sizeof(s->hdr->instance));
}
static void truncated(struct shm_segment *s)
{
	assert_int_equal(ftruncate(s->fd, 100), 0);
}

static void test_refuse_corrupt(void **state)
{
	(void)state;
	refused(bad_magic, -EPROTO, "bad magic");
	refused(bad_version, -EPROTO, "layout version 99, this build speaks 4");
	refused(bad_worker_size, -EPROTO, "structure sizes");
	refused(bad_size, -EBADMSG, "header says");
	refused(bad_table, -EBADMSG, "out of bounds");
	refused(bad_ring, -EBADMSG, "ring 2: ring capacity");
	refused(bad_ring_magic, -EPROTO, "ring 1: bad ring magic");
	refused(bad_ring_worker, -EBADMSG, "ring 1: writer or reader");
	refused(bad_ring_tail, -EBADMSG, "ring 0: ring head and tail");
	refused(bad_instance, -EBADMSG, "instance name");
	refused(truncated, -EBADMSG, "too small");
}

static void test_attach_fd(void **state)
{
	struct shm_segment *seg = create(), *child = NULL;
	char err[256] = "";

	(void)state;
	/* What a stage does with the fd it inherits. */
	assert_int_equal(shm_segment_attach(seg->fd, 0, &child, err, sizeof(err)), 0);
	assert_false(child->readonly);
	assert_true(child->fd != seg->fd);
	assert_int_equal(fcntl(child->fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	child->workers[0].heartbeat_ns = 5;
	assert_int_equal(seg->workers[0].heartbeat_ns, 5);
	assert_int_equal(shm_segment_attach(-1, 0, &child, err, sizeof(err)), -EINVAL);
	assert_int_equal(shm_segment_attach(seg->fd, 1u << 8, &child, err, sizeof(err)), -EINVAL);
	shm_segment_close(child);
	shm_segment_close(seg);
}

static void test_tenant_table(void **state)
{
	struct shm_segment *seg = create();
	struct shm_tenant *t = shm_worker_tenants(seg, 1), *a, *b, *star = NULL;
	char name[32];

	(void)state;
	assert_non_null(t);
	assert_null(shm_worker_tenants(seg, 3));
	assert_ptr_not_equal(shm_worker_tenants(seg, 0), t);
	a = shm_tenant_slot(t, "acme");
	assert_string_equal(a->name, "acme");
	a->failed++;
	b = shm_tenant_slot(t, "globex");
	assert_ptr_not_equal(a, b);
	assert_ptr_equal(shm_tenant_slot(t, "acme"), a);
	/* By length: the first 4 bytes of a longer buffer are "acme". */
	assert_ptr_equal(shm_tenant_slot_n(t, "acmeXYZ", 4), a);
	/* A name longer than a slot holds: one slot, under its first 39 bytes, every time. */
	b = shm_tenant_slot(t, "tenant-with-a-name-longer-than-forty-bytes-0123456789");
	assert_string_equal(b->name, "tenant-with-a-name-longer-than-forty-by");
	assert_ptr_equal(
		shm_tenant_slot(t, "tenant-with-a-name-longer-than-forty-bytes-0123456789"), b);
	assert_ptr_equal(shm_tenant_slot(t, "tenant-with-a-name-longer-than-forty-by"), b);
	assert_ptr_not_equal(shm_tenant_slot(t, "tenant-with-a-name-longer-than-forty-b"), b);
	/* Bounded: past 63 tenants, the last slot takes the rest. */
	for (unsigned i = 0; i < 100; i++) {
		struct shm_tenant *x;

		snprintf(name, sizeof(name), "tenant-%u", i);
		x = shm_tenant_slot(t, name);
		if (!strcmp(x->name, "*"))
			star = x;
	}
	assert_non_null(star);
	assert_ptr_equal(star, &t[SHM_TENANT_SLOTS - 1]);
	assert_ptr_equal(shm_tenant_slot(t, "acme"), a);
	shm_segment_close(seg);
}

/* The source and in-flight tables: placed, named, refused when out of bounds. */
static void test_ingest_tables(void **state)
{
	static const char *const names[] = {"https://sqs.eu-west-1.amazonaws.com/1/q",
					    "projects/p/subscriptions/sub"};
	static const uint32_t kinds[] = {2, 3};
	struct shm_spec s = spec();
	struct shm_segment *seg = NULL, *ro = NULL;
	struct shm_inflight *t;
	char err[256];

	(void)state;
	s.n_sources = 2;
	s.source_names = names;
	s.source_kinds = kinds;
	s.inflight_slots = 100; /* not a power of two */
	assert_int_equal(shm_segment_create(&s, 0, &seg, err, sizeof(err)), -EINVAL);
	s.inflight_slots = 64;
	assert_int_equal(shm_segment_create(&s, 0, &seg, err, sizeof(err)), 0);
	assert_int_equal(seg->hdr->n_sources, 2);
	assert_int_equal(seg->hdr->inflight_slots, 64);
	assert_string_equal(shm_sources(seg)[0].name, names[0]);
	assert_int_equal(shm_sources(seg)[1].kind, 3);
	t = shm_inflight(seg);
	/* The table lies before the first ring's data, inside the segment. */
	assert_true((char *)&t[64] <= (char *)&seg->rings[0] + seg->rings[0].data_off);
	t[63].seq = 63;
	memcpy(t[63].token, "receipt", 7);
	assert_int_equal(shm_segment_open(instance, SHM_RDONLY, &ro, err, sizeof(err)), 0);
	assert_int_equal(shm_inflight(ro)[63].seq, 63);
	assert_memory_equal(shm_inflight(ro)[63].token, "receipt", 7);
	shm_segment_close(ro);
	/* An in-flight table claimed past the end is refused. */
	seg->hdr->inflight_slots = 1u << 20;
	assert_int_equal(shm_segment_open(instance, SHM_RDONLY, &ro, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "in-flight table out of bounds"));
	shm_segment_close(seg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_instance_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_mode_and_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_exists_and_replace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_specs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tenant_table, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
