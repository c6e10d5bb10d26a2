/* SPDX-License-Identifier: MIT */
/*
 * CONNECTIONACCEPTED -> social.v1.ConnectionAccepted: the initiator
 * accepted the request of fromUser (so fromUser is the requester).
 */
#include <errno.h>
#include <string.h>

#include "workers/map/mappers/connection.h"

int map_connection_accepted(struct legacy_ctx *c)
{
	Ferry__Social__V1__ConnectionAccepted ev = FERRY__SOCIAL__V1__CONNECTION_ACCEPTED__INIT;
	struct lj *d = c->d;
	const char *entity;

	ev.meta = c->meta;
	ev.addressee = c->meta->actor;
	ev.requester = map_user(d, c->payload, c->pre, "fromUser", LJ_REQUIRED);
	if (lj_failed(d))
		return d->failed;
	if (!strcmp(ev.requester->user_id, ev.addressee->user_id))
		return lj_fail(d, -ERANGE, "payload.connectionAccepted.fromUser", "userId",
			       "out of range (the accepter itself)");
	entity = connection_entity(d, ev.requester->user_id, ev.addressee->user_id);
	if (!entity)
		return d->failed;
	return mapper_emit(c, CATALOG_SOCIAL_CONNECTION_ACCEPTED, &ev.base, entity);
}
