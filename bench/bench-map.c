/* SPDX-License-Identifier: MIT */
/*
 * bench-map: the map stage's work per legacy event, per legacy type:
 * parse, map, pack every catalog event (mapper_map), against parsing the
 * same bytes with cJSON alone (parse + delete) as the baseline. One core.
 *
 *   bench-map [SECONDS_PER_TYPE]     (default 1)
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/tools/legacy.h"
#include "workers/map/mapper.h"

#define VARIANTS 64 /* distinct events per type, cycled */

static double now_s(void)
{
	struct timespec ts;

	/* CPU time, not wall time: the machine is shared, the figures should not be. */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct sample {
	char buf[LEGACY_EVENT_MAX];
	int len;
};

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	struct mapper *m = mapper_new();
	static struct sample s[VARIANTS];
	double all_map = 0, all_cjson = 0;
	unsigned long all_n = 0, all_ev = 0;

	if (!m || secs <= 0) {
		fprintf(stderr, "usage: bench-map [SECONDS_PER_TYPE]\n");
		return 100;
	}
	printf("%-26s %6s %11s %9s %11s %9s %6s\n", "legacy type", "bytes", "mapped/s", "ns/event",
	       "cJSON/s", "ns/parse", "ratio");
	for (unsigned t = 0; t < LEGACY_NTYPES; t++) {
		unsigned long n = 0, ev = 0, nc = 0;
		double t0, map_s, cjson_s;
		long bytes = 0;

		for (unsigned v = 0; v < VARIANTS; v++) {
			s[v].len = legacy_event(t + v * LEGACY_NTYPES, "t01", s[v].buf,
						sizeof(s[v].buf));
			bytes += s[v].len;
		}
		t0 = now_s();
		do {
			for (unsigned v = 0; v < VARIANTS; v++) {
				const char *reason;
				int r = mapper_map(m, "t01", 3, s[v].buf, (uint32_t)s[v].len,
						   &reason);

				if (r < 0) {
					fprintf(stderr, "%s: %s\n", legacy_event_type(t), reason);
					return 1;
				}
				ev += (unsigned long)r;
			}
			n += VARIANTS;
		} while ((map_s = now_s() - t0) < secs);
		t0 = now_s();
		do {
			for (unsigned v = 0; v < VARIANTS; v++)
				cJSON_Delete(cJSON_ParseWithLength(s[v].buf, (size_t)s[v].len));
			nc += VARIANTS;
		} while ((cjson_s = now_s() - t0) < secs);
		printf("%-26s %6ld %11.0f %9.0f %11.0f %9.0f %6.2f\n", legacy_event_type(t),
		       bytes / VARIANTS, (double)n / map_s, map_s * 1e9 / (double)n,
		       (double)nc / cjson_s, cjson_s * 1e9 / (double)nc,
		       (map_s / (double)n) / (cjson_s / (double)nc));
		all_map += map_s / (double)n;
		all_cjson += cjson_s / (double)nc;
		all_n++;
		all_ev += ev * 1000 / n;
	}
	printf("%-26s %6s %11.0f %9.0f %11.0f %9.0f %6.2f\n", "mix (one of each)", "",
	       (double)all_n / all_map, all_map * 1e9 / (double)all_n, (double)all_n / all_cjson,
	       all_cjson * 1e9 / (double)all_n, all_map / all_cjson);
	printf("(catalog events per legacy event in the mix: %.2f; ratio = map / cJSON parse "
	       "alone)\n",
	       (double)all_ev / 1000.0 / (double)all_n);
	mapper_free(m);
	return 0;
}
