/* SPDX-License-Identifier: MIT */
/*
 * ferryctl: inspect a running ferry instance. Maps the instance's segment
 * read-only; never changes it.
 *
 * Exit codes (as s6): 0 ok, 100 usage, 111 system error or bad segment.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm/segment.h"

#define EXIT_USAGE  100
#define EXIT_SYSTEM 111

static void usage(FILE *f)
{
	fprintf(f, "usage: ferryctl [-i INSTANCE] COMMAND\n"
		   "\n"
		   "  -i, --instance NAME   ferry instance (default: $FERRY_INSTANCE, else "
		   "'default')\n"
		   "  -h, --help            this text\n"
		   "\n"
		   "commands:\n"
		   "  rings                 every ring: capacity, fill, records, head/tail, last "
		   "seq,\n"
		   "                        writer and reader pids, who waits\n");
}

/* "16 MiB", "3.5 KiB", "812 B" */
static const char *human(uint64_t n, char *buf, size_t len)
{
	static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	unsigned u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0 || v >= 100 || v == (double)(uint64_t)v)
		snprintf(buf, len, "%.0f %s", v, unit[u]);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

/* "1234 ingest", "1234 ingest (dead)", "-" */
static const char *who(const struct shm_segment *seg, int32_t pid, int32_t worker, char *buf,
		       size_t len)
{
	const char *name = worker >= 0 ? seg->workers[worker].name : "";
	const char *state = "";

	if (pid <= 0) {
		snprintf(buf, len, "- %s", name);
		return buf;
	}
	if (kill(pid, 0) < 0 && errno == ESRCH)
		state = " (dead)";
	snprintf(buf, len, "%d %s%s", pid, name, state);
	return buf;
}

static int cmd_rings(struct shm_segment *seg)
{
	unsigned i;

	printf("instance %s, segment %s, %u rings, %u workers\n", seg->hdr->instance, seg->path,
	       seg->hdr->n_rings, seg->hdr->n_workers);
	printf("%-20s %9s %9s %5s %9s %14s %14s %12s  %-22s %-22s %s\n", "RING", "CAPACITY", "USED",
	       "FILL", "RECORDS", "HEAD", "TAIL", "LAST_SEQ", "WRITER", "READER", "WAITING");
	for (i = 0; i < seg->hdr->n_rings; i++) {
		struct ring r;
		struct ring_stats st;
		const char *why = NULL;
		char cap[16], used[16], w[64], rd[64];
		const char *waiting;
		int ret;

		ret = shm_segment_ring_attach(seg, i, RING_INSPECT, &r, &why);
		if (ret < 0) {
			fprintf(stderr, "ferryctl: %s: ring %u: %s\n", seg->path, i, why);
			return EXIT_SYSTEM;
		}
		ring_stats(&r, &st);
		if (st.reader_waiting && st.writer_waiting)
			waiting = "both";
		else if (st.reader_waiting)
			waiting = "reader";
		else if (st.writer_waiting)
			waiting = "writer";
		else
			waiting = "-";
		printf("%-20s %9s %9s %4.0f%% %9llu %14llu %14llu %12llu  %-22s %-22s %s\n",
		       st.name, human(st.capacity, cap, sizeof(cap)),
		       human(st.used, used, sizeof(used)),
		       100.0 * (double)st.used / (double)st.capacity,
		       (unsigned long long)st.records, (unsigned long long)st.head,
		       (unsigned long long)st.tail, (unsigned long long)st.last_seq,
		       who(seg, st.writer_pid, st.writer_worker, w, sizeof(w)),
		       who(seg, st.reader_pid, st.reader_worker, rd, sizeof(rd)), waiting);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"instance", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *instance = getenv("FERRY_INSTANCE");
	struct shm_segment *seg = NULL;
	char err[512];
	int c, r;

	if (!instance || !*instance)
		instance = "default";
	while ((c = getopt_long(argc, argv, "+i:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			instance = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!shm_instance_valid(instance)) {
		fprintf(stderr,
			"ferryctl: invalid instance name '%s' (want 1-63 of [A-Za-z0-9_.-])\n",
			instance);
		return EXIT_USAGE;
	}
	if (strcmp(argv[optind], "rings") != 0) {
		fprintf(stderr, "ferryctl: unknown command '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	r = shm_segment_open(instance, SHM_RDONLY, &seg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ferryctl: %s\n", err);
		return EXIT_SYSTEM;
	}
	r = cmd_rings(seg);
	shm_segment_close(seg);
	return r;
}
