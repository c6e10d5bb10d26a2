/* SPDX-License-Identifier: MIT */
/* CONNECTIONREQUESTED -> social.v1.ConnectionRequested: the initiator asked toUser. */
#include <errno.h>
#include <string.h>

#include "workers/map/mappers/connection.h"

int map_connection_requested(struct legacy_ctx *c)
{
	Ferry__Social__V1__ConnectionRequested ev = FERRY__SOCIAL__V1__CONNECTION_REQUESTED__INIT;
	struct lj *d = c->d;
	const char *entity;

	ev.meta = c->meta;
	ev.requester = c->meta->actor;
	ev.addressee = map_user(d, c->payload, c->pre, "toUser", LJ_REQUIRED);
	if (lj_failed(d))
		return d->failed;
	if (!strcmp(ev.requester->user_id, ev.addressee->user_id))
		return lj_fail(d, -ERANGE, "payload.connectionRequested.toUser", "userId",
			       "out of range (the requester itself)");
	entity = connection_entity(d, ev.requester->user_id, ev.addressee->user_id);
	if (!entity)
		return d->failed;
	return mapper_emit(c, CATALOG_SOCIAL_CONNECTION_REQUESTED, &ev.base, entity);
}
