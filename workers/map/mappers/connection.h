/* SPDX-License-Identifier: MIT */
/* What CONNECTIONREQUESTED and CONNECTIONACCEPTED share. */
#ifndef FERRY_MAP_MAPPERS_CONNECTION_H
#define FERRY_MAP_MAPPERS_CONNECTION_H

#include "workers/map/mappers.h"

/*
 * The key entity of a connection: "<lower id>:<higher id>", the same for
 * the request and its acceptance whoever initiated each. NULL on failure.
 */
const char *connection_entity(struct lj *d, const char *a, const char *b);

#endif
