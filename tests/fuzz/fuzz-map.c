/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: any bytes as a legacy event. The mapper must refuse
 * or map, never crash, and what it maps must unpack again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "workers/map/catalog.h"
#include "workers/map/mapper.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* One mapper for the whole run, as in the stage (a static: fuzzing only). */
	static struct mapper *m;
	const char *reason;
	int n;

	if (!m && !(m = mapper_new()))
		abort();
	if (size > MAPPER_INPUT_MAX + 16)
		return 0;
	n = mapper_map(m, "fuzz", 4, data, (uint32_t)size, &reason);
	for (int i = 0; i < n; i++) {
		const struct mapper_event *e = mapper_event(m, (unsigned)i);
		const struct catalog_entry *ce = catalog_get(e->type);
		ProtobufCMessage *msg;

		if (!ce)
			abort();
		msg = protobuf_c_message_unpack(ce->desc, NULL, e->value_len, e->value);
		if (!msg)
			abort();
		protobuf_c_message_free_unpacked(msg, NULL);
	}
	return 0;
}
