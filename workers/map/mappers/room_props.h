/* SPDX-License-Identifier: MIT */
/* What ROOMCREATED and ROOMUPDATED share: legacy room properties. */
#ifndef FERRY_MAP_MAPPERS_ROOM_PROPS_H
#define FERRY_MAP_MAPPERS_ROOM_PROPS_H

#include "workers/map/mappers.h"

/* "public": true/false -> Visibility; absent: UNSPECIFIED. */
Ferry__Room__V1__Visibility room_visibility(struct lj *d, int props, const char *pre);

/* "keywords": [{"key": ..., "value": ...}] -> labels. */
Ferry__Room__V1__Label **room_labels(struct lj *d, int props, const char *pre, size_t *ret_n);

#endif
