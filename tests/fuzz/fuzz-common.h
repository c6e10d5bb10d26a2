/* SPDX-License-Identifier: MIT */
/*
 * What every libFuzzer target here starts with: the entry point libFuzzer
 * calls (declared for -Wmissing-prototypes), and CHECK(), which aborts so
 * libFuzzer keeps the input that broke a property (assert() would be gone
 * under NDEBUG).
 */
#ifndef FERRY_TESTS_FUZZ_COMMON_H
#define FERRY_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

#endif
