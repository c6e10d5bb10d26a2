/* SPDX-License-Identifier: MIT */
/*
 * pubsub-emu: Google's Pub/Sub emulator (`gcloud beta emulators pubsub
 * start`, Java) for process tests, on a free loopback port in its own
 * process group and stopped with the whole group (gcloud forks the JVM).
 */
#ifndef FERRY_TESTS_PUBSUB_EMU_H
#define FERRY_TESTS_PUBSUB_EMU_H

#include <sys/types.h>

struct pubsub_emu {
	pid_t pid;
	int port;
	char host_port[32]; /* "127.0.0.1:PORT", for PUBSUB_EMULATOR_HOST */
	char base[64];	    /* "http://127.0.0.1:PORT" */
	char project[64];
	char data_dir[64]; /* a temporary directory, removed by pubsub_emu_stop() */
};

/*
 * Start the emulator for project (3+ characters); *state gets it at once,
 * so a teardown can stop it even if it never answers. Waits (bounded, 90 s:
 * it takes a few seconds, more on a loaded machine) until GET / answers
 * 200; fails the test otherwise, or at once when gcloud exits.
 * TEST_PUBSUB_VERBOSE=1 keeps its output on stderr.
 */
struct pubsub_emu *pubsub_emu_start(void **state, const char *project);

/* SIGTERM its process group, then SIGKILL after 10 s. Accepts NULL. */
void pubsub_emu_stop(struct pubsub_emu *e);

#endif
