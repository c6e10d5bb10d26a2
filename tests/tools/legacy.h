/* SPDX-License-Identifier: MIT */
/*
 * legacy: realistic legacy events (the plaintext that map reads) for the
 * tests, tools and benchmarks: the chat platform's datafeed events as the
 * old producers wrote them, bloat included. Deterministic in i.
 */
#ifndef FERRY_TESTS_TOOLS_LEGACY_H
#define FERRY_TESTS_TOOLS_LEGACY_H

#include <stddef.h>

#define LEGACY_NTYPES	 10   /* legacy types, in the order of the mapper table */
#define LEGACY_EVENT_MAX 2048 /* bytes a generated event takes at most */

/*
 * Write a valid legacy event of type i % LEGACY_NTYPES for tenant into buf
 * (cap bytes, NUL-terminated). Returns its length or -ENOBUFS.
 */
int legacy_event(unsigned i, const char *tenant, char *buf, size_t cap);

/* How many catalog events legacy_event(i, ...) maps to (1, or 2 for ROOMCREATED). */
int legacy_event_count(unsigned i);

/* The legacy type name of legacy_event(i, ...). */
const char *legacy_event_type(unsigned i);

/*
 * Write a valid legacy event that maps to no catalog event (a wall post,
 * filtered by map). Returns its length or -ENOBUFS.
 */
int legacy_event_filtered(unsigned i, const char *tenant, char *buf, size_t cap);

#endif
