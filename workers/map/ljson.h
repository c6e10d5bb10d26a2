/* SPDX-License-Identifier: MIT */
/*
 * ljson: reading legacy JSON events without an allocation per field.
 *
 * jsmn (Debian's libjsmn-dev, header only) tokenizes the event into a
 * token array the caller owns; strings are unescaped on demand into an
 * arena the caller owns, NUL-terminated because protobuf-c wants char *.
 * Nothing here calls malloc.
 *
 * Errors are sticky: the first failure records a reason naming the field
 * ("map: payload.roomCreated.stream.streamId: missing required field") and
 * every later getter returns its "absent" value, so a mapper reads all it
 * needs and checks lj_failed() once before it emits.
 *
 * The legacy producers were not consistent, so the getters accept what
 * they actually sent: ids as numbers or strings, epoch milliseconds as
 * numbers or strings of digits, ISO-8601 strings, null for absent.
 */
#ifndef FERRY_MAP_LJSON_H
#define FERRY_MAP_LJSON_H

#include <stddef.h>
#include <stdint.h>

#define JSMN_HEADER
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>
#undef JSMN_HEADER

#include "google/protobuf/timestamp.pb-c.h"

#define LJ_ERR_MAX 192

struct lj {
	const char *js;
	uint32_t len;
	jsmntok_t *tok;
	int ntok;
	int cap_tok;
	unsigned char *arena;
	size_t arena_cap;
	size_t arena_used;
	int failed; /* -errno of the first failure, 0 while all is well */
	char err[LJ_ERR_MAX];
};

enum lj_need { LJ_OPTIONAL = 0, LJ_REQUIRED = 1 };

/* Bind the caller's token array and arena. */
void lj_init(struct lj *d, jsmntok_t *tok, int cap_tok, void *arena, size_t arena_cap);

/*
 * Tokenize js (len bytes, need not be NUL-terminated) and check it is one
 * JSON object: well-formed literals and numbers, keys that are strings,
 * nothing after it. Empties the arena. Returns 0, -EBADMSG ("not JSON")
 * or -E2BIG (more tokens than the array holds).
 */
int lj_parse(struct lj *d, const char *js, uint32_t len);

/* Record a failure (first one wins) as "map: <pre>.<key>: <what>". Returns err. */
int lj_fail(struct lj *d, int err, const char *pre, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static inline int lj_failed(const struct lj *d)
{
	return d->failed;
}

/* "pre.key" into buf (cap bytes), cut short if need be: paths for reasons. */
void lj_path(char *buf, size_t cap, const char *pre, const char *key);

/* n bytes (8-aligned) from the arena, zeroed; NULL (and a failure) when full. */
void *lj_alloc(struct lj *d, size_t n);

/* A string of n bytes copied into the arena, NUL-terminated. */
char *lj_strdup(struct lj *d, const char *s, size_t n);

/* Value token of key in object token obj; -1 if absent. No failure. */
int lj_find(const struct lj *d, int obj, const char *key);

/* Whether key's value in obj is absent or null. */
int lj_absent(const struct lj *d, int obj, const char *key);

/* Is token t the string s (escape-free comparison of the raw text)? */
int lj_tok_is(const struct lj *d, int t, const char *s);

/* An object (token index), or -1 when absent, null or failed. */
int lj_object(struct lj *d, int obj, const char *pre, const char *key, enum lj_need need);

/* An array (token index, its size in *ret_n), or -1. */
int lj_array(struct lj *d, int obj, const char *pre, const char *key, enum lj_need need,
	     int *ret_n);

/* The i-th element token of array token arr (i < its size). */
int lj_elem(const struct lj *d, int arr, int i);

/* The value token of the i-th member of object token obj (i < its size). */
int lj_member(const struct lj *d, int obj, int i);

/* A string, unescaped, at most max bytes; NULL when absent, null or failed. */
const char *lj_string(struct lj *d, int obj, const char *pre, const char *key, enum lj_need need,
		      size_t max);

/* The string token t unescaped into the arena (NULL on failure). */
const char *lj_tok_string(struct lj *d, int t, const char *pre, const char *key, size_t max);

/* An integer in [min, max], as a number or a string of digits; def when absent. */
int64_t lj_int(struct lj *d, int obj, const char *pre, const char *key, enum lj_need need,
	       int64_t min, int64_t max, int64_t def);

/* A boolean (true/false, or "true"/"false" as strings); def when absent. */
int lj_bool(struct lj *d, int obj, const char *pre, const char *key, enum lj_need need, int def);

/*
 * A user id: a positive integer below 2^53 as a number or a string,
 * normalised to decimal without leading zeros. NULL when absent.
 */
const char *lj_user_id(struct lj *d, int obj, const char *pre, const char *key, enum lj_need need);

/*
 * A stream (conversation) id: base64 in either alphabet, with or without
 * padding, normalised to URL-safe base64 without padding. NULL when absent.
 */
const char *lj_stream_id(struct lj *d, int obj, const char *pre, const char *key,
			 enum lj_need need);

/*
 * A point in time: epoch milliseconds (number or string of digits) or
 * ISO-8601 ("2024-03-01T10:15:30.123Z", "+01:00" offsets), between 1990
 * and 2100. NULL when absent.
 */
Google__Protobuf__Timestamp *lj_time(struct lj *d, int obj, const char *pre, const char *key,
				     enum lj_need need);

/*
 * An enumerated string: the index i of names[i] it equals (case-sensitive),
 * def when absent, a failure ("out of range") for anything else.
 */
int lj_enum(struct lj *d, int obj, const char *pre, const char *key, enum lj_need need,
	    const char *const *names, int n, int def);

#endif
