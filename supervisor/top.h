/* SPDX-License-Identifier: MIT */
#ifndef FERRY_SUPERVISOR_TOP_H
#define FERRY_SUPERVISOR_TOP_H

/*
 * ferryctl top [-d SECONDS] [-n ITERATIONS]: a live view of instance,
 * argv[0] being "top". On a terminal one screen redrawn in place (q,
 * Ctrl-C or SIGTERM quit and restore the terminal); otherwise frames one
 * after another, plain text, each ended by an empty line. Returns the exit
 * code: 0, 100 (usage), 111 (no segment, or it went away).
 */
int top_main(const char *instance, int argc, char **argv);

#endif
