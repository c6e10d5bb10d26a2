/* SPDX-License-Identifier: MIT */
/* Small compiler and arithmetic helpers shared by every ferry module. */
#ifndef FERRY_COMMON_COMPILER_H
#define FERRY_COMMON_COMPILER_H

#include <stddef.h>
#include <stdint.h>

#define FERRY_CACHE_LINE 64

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Round x up to a multiple of a (a power of two). */
#define ALIGN_UP(x, a) (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))

static inline int is_pow2_u64(uint64_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

/* FNV-1a, 32 bits: shard keys, source names, spool checksums. */
static inline uint32_t fnv1a32(const void *p, size_t len)
{
	const unsigned char *s = p;
	uint32_t h = 2166136261u;

	while (len--)
		h = (h ^ *s++) * 16777619u;
	return h;
}

#endif
