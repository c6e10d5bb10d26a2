/* SPDX-License-Identifier: MIT */
/*
 * bench-ring: records/s and GB/s through one ring between two processes,
 * against a memcpy of the same bytes in the same run.
 *
 * For each record size: a writer process reserves, fills (memcpy from a
 * source buffer), pushes, and publishes every --batch records; a reader
 * process reads each record, copies its payload out (so the bytes really
 * cross cores) and commits every --batch records. Both block on the ring's
 * futexes when they must. The baseline is one process doing one memcpy of
 * the same size per record into a buffer as large as the ring.
 *
 * Not a test: it prints figures and exits 0 (1 on a setup error).
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/time.h"
#include "shm/segment.h"

#define REC_END (RING_REC_USER + 1)

/* Each field group on its own cache line: the bench must not add false sharing. */
struct shared_ctl {
	_Alignas(64) uint32_t stop;	    /* parent -> writer */
	_Alignas(64) uint64_t writer_waits; /* times the writer found the ring full */
	_Alignas(64) uint64_t records;	    /* reader's results, written once at the end */
	uint64_t bytes;
	uint64_t t_first;
	uint64_t t_last;
	uint64_t checksum;     /* keeps the reader's copies alive */
	uint64_t reader_waits; /* times the reader found the ring empty */
};

struct opts {
	double seconds;
	unsigned batch;
	uint64_t capacity;
	int pin;
	uint64_t slip_bytes;  /* 0: the ring's default */
	unsigned repeat;      /* measurements per figure; the median is reported */
	const char *ferryctl; /* run `ferryctl rings` on the first live ring */
	unsigned sizes[8];
	unsigned n_sizes;
};

static void pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set); /* best effort */
}

/* Back to every cpu (the parent measures memcpy pinned, then forks). */
static void unpin(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	for (int c = 0; c < CPU_SETSIZE; c++)
		CPU_SET(c, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void writer_main(int fd, volatile struct shared_ctl *ctl, unsigned len, const struct opts *o)
{
	struct shm_segment *seg = NULL;
	struct ring w;
	char err[256];
	unsigned char *src = aligned_alloc(64, ALIGN_UP((size_t)len, 64) + 64);
	unsigned n = 0;
	uint64_t waits = 0;

	if (o->pin)
		pin_to(0);
	if (!src || shm_segment_attach(fd, 0, &seg, err, sizeof(err)) < 0 ||
	    shm_segment_ring_attach(seg, 0, RING_WRITER, &w, NULL) < 0)
		_exit(1);
	memset(src, 0xab, len);
	for (uint64_t seq = 1;; seq++) {
		unsigned char *p = ring_reserve(&w, len);

		if (unlikely(!p)) {
			waits++;
			if (ring_wait_space(&w, len, 100) == -EINTR)
				_exit(1);
			seq--;
			continue;
		}
		memcpy(p, src, len);
		ring_push(&w, len, RING_REC_USER, 0, seq);
		if (++n == o->batch) {
			ring_publish(&w);
			n = 0;
		}
		if ((seq & 1023) == 0 && __atomic_load_n(&ctl->stop, __ATOMIC_RELAXED))
			break;
	}
	ctl->writer_waits = waits;
	while (ring_write(&w, REC_END, 0, NULL, 0) < 0)
		ring_wait_space(&w, 0, 100);
	ring_publish(&w);
	_exit(0);
}

static void reader_main(int fd, volatile struct shared_ctl *ctl, const struct opts *o)
{
	struct shm_segment *seg = NULL;
	struct ring r;
	char err[256];
	static unsigned char dst[1 << 16] __attribute__((aligned(64)));
	uint64_t records = 0, bytes = 0, sum = 0, t_first = 0, waits = 0;
	unsigned n = 0;

	if (o->pin)
		pin_to(1);
	if (shm_segment_attach(fd, 0, &seg, err, sizeof(err)) < 0 ||
	    shm_segment_ring_attach(seg, 0, RING_READER, &r, NULL) < 0)
		_exit(1);
	if (o->slip_bytes)
		r.slip_bytes = o->slip_bytes;
	for (;;) {
		const struct ring_rec *rec = ring_read(&r);

		if (unlikely(!rec)) {
			ring_commit(&r);
			n = 0;
			if (errno == EBADMSG)
				_exit(2);
			waits++;
			ring_wait_data(&r, 100);
			continue;
		}
		if (unlikely(rec->type == REC_END))
			break;
		if (unlikely(!records))
			t_first = now_ns();
		memcpy(dst, rec->data, rec->len);
		sum += dst[rec->len ? rec->len - 1 : 0];
		records++;
		bytes += rec->len;
		if (++n == o->batch) {
			ring_commit(&r);
			n = 0;
		}
	}
	ring_commit(&r);
	ctl->t_last = now_ns();
	ctl->t_first = t_first;
	ctl->records = records;
	ctl->bytes = bytes;
	ctl->checksum = sum;
	ctl->reader_waits = waits;
	_exit(0);
}

struct result {
	double rec_s;
	double gb_s;
	uint32_t wakes_reader; /* futex wake-ups the writer made for the reader */
	uint32_t wakes_writer;
	uint64_t writer_waits;
	uint64_t reader_waits;
};

static int run_ring(const struct opts *o, unsigned len, struct result *res)
{
	static int shown;
	struct shm_worker_spec workers[] = {{"writer", 0, 0}, {"reader", 0, 0}};
	struct shm_ring_spec rings[] = {{"bench", o->capacity, 0, 1}};
	char instance[64];
	struct shm_spec spec = {instance, 2, workers, 1, rings};
	struct shm_segment *seg = NULL;
	volatile struct shared_ctl *ctl;
	char err[256];
	pid_t w, r;
	int st1, st2;
	struct timespec ts;

	snprintf(instance, sizeof(instance), "bench-%d", (int)getpid());
	if (shm_segment_create(&spec, SHM_CREATE_REPLACE, &seg, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench-ring: %s\n", err);
		return -1;
	}
	ctl = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED)
		return -1;
	r = fork();
	if (r == 0)
		reader_main(seg->fd, ctl, o);
	w = fork();
	if (w == 0)
		writer_main(seg->fd, ctl, len, o);
	/* The measuring window (not synchronisation), split to look in midway. */
	ts.tv_sec = (time_t)(o->seconds / 2);
	ts.tv_nsec = (long)((o->seconds / 2 - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
	if (o->ferryctl && !shown) {
		char cmd[512];

		shown = 1;
		printf("\n$ ferryctl -i %s rings   (while %u-byte records flow)\n", instance, len);
		fflush(stdout);
		snprintf(cmd, sizeof(cmd), "'%s' -i '%s' rings", o->ferryctl, instance);
		if (system(cmd) != 0)
			fprintf(stderr, "bench-ring: ferryctl failed\n");
		printf("\n");
		fflush(stdout);
	}
	nanosleep(&ts, NULL);
	__atomic_store_n(&ctl->stop, 1, __ATOMIC_RELAXED);
	waitpid(w, &st1, 0);
	waitpid(r, &st2, 0);
	res->writer_waits = ctl->writer_waits;
	res->reader_waits = ctl->reader_waits;
	res->wakes_reader = seg->workers[1].wake.seq;
	res->wakes_writer = seg->workers[0].wake.seq;
	shm_segment_close(seg);
	shm_segment_unlink(instance);
	if (!WIFEXITED(st1) || WEXITSTATUS(st1) || !WIFEXITED(st2) || WEXITSTATUS(st2) ||
	    !ctl->records) {
		fprintf(stderr, "bench-ring: a bench process failed\n");
		return -1;
	}
	{
		double secs = (double)(ctl->t_last - ctl->t_first) / 1e9;

		res->rec_s = (double)ctl->records / secs;
		res->gb_s = (double)ctl->bytes / secs / 1e9;
	}
	munmap((void *)ctl, 4096);
	return 0;
}

/* One process, one memcpy per record into a ring-sized buffer. */
static void run_memcpy(const struct opts *o, unsigned len, struct result *res)
{
	size_t cap = o->capacity;
	unsigned char *src = aligned_alloc(64, ALIGN_UP((size_t)len, 64) + 64);
	unsigned char *dst = aligned_alloc(4096, cap);
	uint64_t step = ring_rec_size(len), off = 0, n = 0, t0, t1, deadline;
	volatile unsigned char sink;

	if (o->pin)
		pin_to(0);
	memset(src, 0xab, len);
	memset(dst, 0, cap);
	t0 = now_ns();
	deadline = t0 + (uint64_t)(o->seconds * 1e9);
	do {
		for (int i = 0; i < 4096; i++) {
			if (off + step > cap)
				off = 0;
			memcpy(dst + off + 16, src, len);
			/* Keep the compiler from proving the copy dead. */
			__asm__ __volatile__("" : : "r"(dst + off) : "memory");
			off += step;
			n++;
		}
		t1 = now_ns();
	} while (t1 < deadline);
	sink = dst[16];
	(void)sink;
	res->rec_s = (double)n / ((double)(t1 - t0) / 1e9);
	res->gb_s = res->rec_s * len / 1e9;
	free(src);
	free(dst);
	if (o->pin)
		unpin();
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Median round trip of one cache line between the two cpus the bench
 * uses: what the host's placement of them costs right now.
 */
static double round_trip_ns(const struct opts *o)
{
	uint64_t *line =
		mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	double v[5];
	const int n = 20000;
	pid_t pid;

	if (line == MAP_FAILED)
		return 0;
	pid = fork();
	if (pid == 0) {
		if (o->pin)
			pin_to(1);
		for (int k = 0; k < 5; k++)
			for (int i = 0; i < n; i++) {
				uint64_t want = (uint64_t)(k * n + i) * 2 + 1;

				while (__atomic_load_n(line, __ATOMIC_ACQUIRE) != want)
					;
				__atomic_store_n(line, want + 1, __ATOMIC_RELEASE);
			}
		_exit(0);
	}
	if (o->pin)
		pin_to(0);
	for (int k = 0; k < 5; k++) {
		uint64_t t0 = now_ns();

		for (int i = 0; i < n; i++) {
			uint64_t want = (uint64_t)(k * n + i) * 2 + 1;

			__atomic_store_n(line, want, __ATOMIC_RELEASE);
			while (__atomic_load_n(line, __ATOMIC_ACQUIRE) != want + 1)
				;
		}
		v[k] = (double)(now_ns() - t0) / n;
	}
	waitpid(pid, NULL, 0);
	munmap(line, 4096);
	if (o->pin)
		unpin();
	return median(v, 5);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench-ring [-s SECONDS] [-b BATCH] [-c CAPACITY] [-S SIZE,...] [OPTIONS]\n"
		"  -s  seconds per measurement (default 0.5)\n"
		"  -r  measurements per figure, median reported (default 5)\n"
		"  -b  records per publish / commit (default 32)\n"
		"  -c  ring capacity in bytes, a power of two (default 1048576)\n"
		"  -S  record payload sizes (default 64,512,4096)\n"
		"  --slip BYTES  reader's temporal slip (default: the ring's)\n"
		"  --no-pin      do not pin writer and reader to cpus 0 and 1\n"
		"  --ferryctl PATH  show `PATH rings` on the first live ring\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {{"no-pin", no_argument, NULL, 'P'},
					      {"slip", required_argument, NULL, 'L'},
					      {"ferryctl", required_argument, NULL, 'F'},
					      {"help", no_argument, NULL, 'h'},
					      {0}};
	struct opts o = {0.5, 32, 1 << 20, 1, 0, 5, NULL, {64, 512, 4096}, 3};
	int c;

	while ((c = getopt_long(argc, argv, "s:b:c:S:r:h", lopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.seconds = atof(optarg);
			break;
		case 'b':
			o.batch = (unsigned)atoi(optarg);
			break;
		case 'r':
			o.repeat = (unsigned)atoi(optarg);
			break;
		case 'c':
			o.capacity = strtoull(optarg, NULL, 0);
			break;
		case 'S': {
			char *s = optarg, *end;

			o.n_sizes = 0;
			while (*s && o.n_sizes < ARRAY_SIZE(o.sizes)) {
				o.sizes[o.n_sizes++] = (unsigned)strtoul(s, &end, 0);
				s = *end == ',' ? end + 1 : end;
				if (end == s)
					break;
			}
			break;
		}
		case 'P':
			o.pin = 0;
			break;
		case 'L':
			o.slip_bytes = strtoull(optarg, NULL, 0);
			break;
		case 'F':
			o.ferryctl = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 100;
		}
	}
	if (o.seconds <= 0 || o.batch == 0 || o.repeat == 0 || o.repeat > 99 ||
	    !is_pow2_u64(o.capacity) || !o.n_sizes) {
		usage(stderr);
		return 100;
	}
	printf("ring bench: 2 processes, ring %llu KiB, batch %u, median of %u x %.1f s, %ld "
	       "cpus\n",
	       (unsigned long long)(o.capacity >> 10), o.batch, o.repeat, o.seconds,
	       sysconf(_SC_NPROCESSORS_ONLN));
	printf("core-to-core cache-line round trip now: %.0f ns (host placement of the two cpus;\n"
	       "  ~100 ns: close cores, ~450 ns: far apart, and every figure below drops with "
	       "it)\n",
	       round_trip_ns(&o));
	printf("%8s %14s %10s %14s %10s %12s %10s\n", "record", "ring rec/s", "ring GB/s",
	       "memcpy rec/s", "memcpy GB/s", "ring/memcpy", "range");
	for (unsigned i = 0; i < o.n_sizes; i++) {
		double ring_r[99], mc_r[99], ratio[99];
		unsigned len = o.sizes[i];
		struct result ring = {0}, mc = {0};
		double rmed, mmed;

		if (len > ring_max_record(o.capacity)) {
			fprintf(stderr, "bench-ring: %u B does not fit a ring of %llu B\n", len,
				(unsigned long long)o.capacity);
			return 1;
		}
		/* Interleaved, so both see the same host conditions. */
		for (unsigned k = 0; k < o.repeat; k++) {
			run_memcpy(&o, len, &mc);
			if (run_ring(&o, len, &ring) < 0)
				return 1;
			ring_r[k] = ring.rec_s;
			mc_r[k] = mc.rec_s;
			ratio[k] = ring.rec_s / mc.rec_s;
			if (getenv("BENCH_VERBOSE"))
				printf("         %.1f M vs %.1f M; ring full %llu times, empty "
				       "%llu "
				       "times; futex wakes: reader %u, writer %u\n",
				       ring.rec_s / 1e6, mc.rec_s / 1e6,
				       (unsigned long long)ring.writer_waits,
				       (unsigned long long)ring.reader_waits, ring.wakes_reader,
				       ring.wakes_writer);
		}
		rmed = median(ring_r, o.repeat);
		mmed = median(mc_r, o.repeat);
		qsort(ratio, o.repeat, sizeof(double), cmp_double);
		printf("%6u B %12.1f M %10.2f %12.1f M %10.2f %11.0f%% %4.0f-%.0f%%\n", len,
		       rmed / 1e6, rmed * len / 1e9, mmed / 1e6, mmed * len / 1e9,
		       100.0 * rmed / mmed, 100.0 * ratio[0], 100.0 * ratio[o.repeat - 1]);
		fflush(stdout);
	}
	printf("core-to-core cache-line round trip after: %.0f ns\n", round_trip_ns(&o));
	return 0;
}
