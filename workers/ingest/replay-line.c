/* SPDX-License-Identifier: MIT */
#include "workers/ingest/replay-line.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

int replay_parse(const char *line, const char *key_attr, unsigned char **enc, uint32_t *len,
		 struct msg_bytes *key, const char **why)
{
	cJSON *j = cJSON_Parse(line), *id, *attrs, *body, *a;
	unsigned char attrbuf[65536];
	size_t alen = 0;
	struct msg_source_view v = {.source = MSG_SOURCE_REPLAY};
	int r = -EINVAL;

	*why = NULL;
	if (!j || !cJSON_IsObject(j)) {
		*why = "not a JSON object";
		goto out;
	}
	id = cJSON_GetObjectItemCaseSensitive(j, "id");
	attrs = cJSON_GetObjectItemCaseSensitive(j, "attributes");
	body = cJSON_GetObjectItemCaseSensitive(j, "body");
	if (!cJSON_IsString(id) || !cJSON_IsString(body)) {
		*why = "\"id\" and \"body\" must be strings";
		goto out;
	}
	if (attrs && !cJSON_IsObject(attrs)) {
		*why = "\"attributes\" must be an object of strings";
		goto out;
	}
	cJSON_ArrayForEach(a, attrs)
	{
		if (!cJSON_IsString(a) || msg_kv_put(attrbuf, sizeof(attrbuf), &alen, a->string,
						     (uint32_t)strlen(a->string), a->valuestring,
						     (uint32_t)strlen(a->valuestring)) < 0) {
			*why = "an attribute is not a string, or they are too large";
			goto out;
		}
	}
	v.id.p = id->valuestring;
	v.id.len = (uint32_t)strlen(id->valuestring);
	v.attrs.p = attrbuf;
	v.attrs.len = (uint32_t)alen;
	v.body.p = body->valuestring;
	v.body.len = (uint32_t)strlen(body->valuestring);
	*len = msg_source_size(&v);
	*enc = malloc(*len);
	if (!*enc) {
		r = -ENOMEM;
		*why = "out of memory";
		goto out;
	}
	msg_source_encode(*enc, *len, &v);
	r = 0;
	if (!key_attr)
		goto out;
	/* The key as a view into *enc: v's views die with j and attrbuf. */
	if (msg_source_decode(*enc, *len, &v) < 0) {
		free(*enc);
		*enc = NULL;
		r = -EINVAL;
		*why = "encoded message does not decode";
		goto out;
	}
	if (msg_kv_find(v.attrs, key_attr, key) <= 0)
		*key = v.id;
out:
	cJSON_Delete(j);
	return r;
}
