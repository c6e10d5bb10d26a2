/* SPDX-License-Identifier: MIT */
#include "tests/tools/legacy.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>

static const char *const types[LEGACY_NTYPES] = {
	"MESSAGESENT",	       "MESSAGESUPPRESSED",  "ROOMCREATED",  "ROOMUPDATED",
	"ROOMDEACTIVATED",     "USERJOINEDROOM",     "USERLEFTROOM", "ROOMMEMBERPROMOTEDTOOWNER",
	"CONNECTIONREQUESTED", "CONNECTIONACCEPTED",
};

const char *legacy_event_type(unsigned i)
{
	return types[i % LEGACY_NTYPES];
}

int legacy_event_count(unsigned i)
{
	return i % LEGACY_NTYPES == 2 ? 2 : 1;
}

static int done(int n, size_t cap)
{
	return n < 0 || (size_t)n >= cap ? -ENOBUFS : n;
}

int legacy_event(unsigned i, const char *tenant, char *buf, size_t cap)
{
	/* Ids vary with i; a room per 16 events, so keys repeat as in life. */
	unsigned long long ts = 1700000000000ull + i, user = 71000000000000ull + i % 97,
			   other = 72000000000000ull + i % 89;
	unsigned room = i / 16;
	char head[512];
	int n;

	n = snprintf(head, sizeof(head),
		     "{\"id\":\"ev%08x\",\"timestamp\":%s%llu%s,\"type\":\"%s\",\"podId\":%u,"
		     "\"tenantHint\":\"%s\",\"initiator\":{\"user\":{\"userId\":%llu,"
		     "\"firstName\":\"User\",\"lastName\":\"%llu\",\"email\":\"u%llu@example.com\","
		     "\"userName\":\"u%llu\"}},\"payload\":",
		     i, i & 1 ? "\"" : "", ts, i & 1 ? "\"" : "", types[i % LEGACY_NTYPES],
		     100 + i % 7, tenant, user, user, user, user);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -ENOBUFS;
	switch (i % LEGACY_NTYPES) {
	case 0:
		n = snprintf(
			buf, cap,
			"%s{\"messageSent\":{\"message\":{\"messageId\":\"msg%08xAAAA___%s\","
			"\"timestamp\":%llu,\"message\":\"<div data-format=\\\"PresentationML\\\" "
			"data-version=\\\"2.0\\\">status update %u for <span class=\\\"entity\\\" "
			"data-entity-id=\\\"mention1\\\">@User %llu</span> \\u2714</div>\","
			"\"data\":\"{\\\"mention1\\\":{\\\"type\\\":\\\"com.symphony.user."
			"mention\\\","
			"\\\"version\\\":\\\"1.0\\\",\\\"id\\\":[{\\\"type\\\":"
			"\\\"com.symphony.user.userId\\\",\\\"value\\\":%llu}]}}\","
			"\"attachments\":[],\"user\":{\"userId\":\"%llu\",\"displayName\":"
			"\"User %llu\",\"username\":\"u%llu\"},\"externalRecipients\":%s,"
			"\"stream\":{\"streamId\":\"room%06x/x+lA==\",\"streamType\":\"ROOM\"},"
			"\"userAgent\":\"DESKTOP-40.0.0\",\"originalFormat\":"
			"\"com.symphony.messageml.v2\",\"sid\":null}}}}",
			head, i, tenant, ts, i, other, other, user, user, user,
			i & 2 ? "true" : "false", room);
		break;
	case 1:
		n = snprintf(buf, cap,
			     "%s{\"messageSuppressed\":{\"messageId\":\"msg%08xAAAA___%s\","
			     "\"stream\":{\"streamId\":\"room%06x_x-lA\"}}}}",
			     head, i - 1, tenant, room);
		break;
	case 2:
		n = snprintf(buf, cap,
			     "%s{\"roomCreated\":{\"stream\":{\"streamId\":\"room%06x_x-lA\","
			     "\"streamType\":\"ROOM\"},\"roomProperties\":{\"name\":\"Room %u\","
			     "\"description\":%s,\"creatorUser\":{\"userId\":%llu},"
			     "\"createdDate\":\"2023-11-14T22:13:20.%03uZ\",\"external\":false,"
			     "\"public\":%s,\"readOnly\":false,\"copyProtected\":true,"
			     "\"keywords\":[{\"key\":\"desk\",\"value\":\"d%u\"}]}}}}",
			     head, room, room, i & 4 ? "null" : "\"a room\"", user, i % 1000,
			     i & 8 ? "true" : "false", i % 5);
		break;
	case 3:
		n = snprintf(buf, cap,
			     "%s{\"roomUpdated\":{\"stream\":{\"streamId\":\"room%06x_x-lA\"},"
			     "\"newRoomProperties\":{\"name\":\"Room %u (v%u)\",\"readOnly\":true},"
			     "\"oldRoomProperties\":{\"name\":\"Room %u\",\"readOnly\":false}}}}",
			     head, room, room, i, room);
		break;
	case 4:
		n = snprintf(buf, cap,
			     "%s{\"roomDeactivated\":{\"stream\":{\"streamId\":\"room%06x_x-lA\","
			     "\"streamType\":\"ROOM\"}}}}",
			     head, room);
		break;
	case 5:
	case 6:
	case 7:
		n = snprintf(buf, cap,
			     "%s{\"%s\":{\"stream\":{\"streamId\":\"room%06x_x-lA\","
			     "\"streamType\":\"ROOM\"},\"affectedUser\":{\"userId\":%llu,"
			     "\"firstName\":\"Other\",\"lastName\":\"%llu\",\"email\":null}}}}",
			     head,
			     i % LEGACY_NTYPES == 5   ? "userJoinedRoom"
			     : i % LEGACY_NTYPES == 6 ? "userLeftRoom"
						      : "roomMemberPromotedToOwner",
			     room, other, other);
		break;
	case 8:
		n = snprintf(buf, cap,
			     "%s{\"connectionRequested\":{\"toUser\":{\"userId\":%llu,"
			     "\"displayName\":\"Other %llu\"}}}}",
			     head, other, other);
		break;
	default:
		n = snprintf(buf, cap,
			     "%s{\"connectionAccepted\":{\"fromUser\":{\"userId\":%llu,"
			     "\"displayName\":\"Other %llu\"}}}}",
			     head, other, other);
		break;
	}
	return done(n, cap);
}

int legacy_event_filtered(unsigned i, const char *tenant, char *buf, size_t cap)
{
	int n = snprintf(buf, cap,
			 "{\"id\":\"wp%08x\",\"timestamp\":%llu,\"type\":\"MESSAGESENT\","
			 "\"initiator\":{\"user\":{\"userId\":%llu}},\"payload\":{\"messageSent\":"
			 "{\"message\":{\"messageId\":\"wall%08x%s\",\"timestamp\":%llu,"
			 "\"message\":\"<div>on the wall</div>\",\"user\":{\"userId\":%llu},"
			 "\"stream\":{\"streamId\":\"wall\",\"streamType\":\"POST\"}}}}}",
			 i, 1700000000000ull + i, 71000000000000ull + i % 97, i, tenant,
			 1700000000000ull + i, 71000000000000ull + i % 97);

	return done(n, cap);
}
