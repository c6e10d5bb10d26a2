/* SPDX-License-Identifier: MIT */
/*
 * Running ferryctl from a test (test-ferryctl, test-ferryctl-top): include
 * after <cmocka.h>, with FERRYCTL_PATH defined by the build.
 */
#ifndef FERRY_TESTS_PROC_FERRYCTL_RUN_H
#define FERRY_TESTS_PROC_FERRYCTL_RUN_H

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#ifndef FERRYCTL_PATH
#error "FERRYCTL_PATH must name the ferryctl binary"
#endif

/*
 * Run ferryctl with args (shell words), return its exit status and what it
 * printed on stdout (and stderr too with with_stderr) in out.
 */
static inline int ferryctl_run(const char *args, char *out, size_t len, int with_stderr)
{
	char cmd[512];
	FILE *p;
	size_t n;
	int status;

	assert_true(snprintf(cmd, sizeof(cmd), "%s %s%s", FERRYCTL_PATH, args,
			     with_stderr ? " 2>&1" : "") < (int)sizeof(cmd));
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, len - 1, p);
	out[n] = 0;
	status = pclose(p);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static inline void expect_has(const char *out, const char *needle)
{
	if (!strstr(out, needle))
		fail_msg("output lacks '%s':\n%s", needle, out);
}

#endif
