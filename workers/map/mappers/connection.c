/* SPDX-License-Identifier: MIT */
#include "workers/map/mappers/connection.h"

#include <string.h>

const char *connection_entity(struct lj *d, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *out;

	/* Decimal ids without leading zeros: shorter is lower, else compare as text. */
	if (la > lb || (la == lb && strcmp(a, b) > 0)) {
		const char *t = a;
		size_t tl = la;

		a = b;
		la = lb;
		b = t;
		lb = tl;
	}
	out = lj_alloc(d, la + lb + 2);
	if (!out)
		return NULL;
	memcpy(out, a, la);
	out[la] = ':';
	memcpy(out + la + 1, b, lb + 1);
	return out;
}
