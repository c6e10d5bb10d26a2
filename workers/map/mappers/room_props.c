/* SPDX-License-Identifier: MIT */
#include "workers/map/mappers/room_props.h"

Ferry__Room__V1__Visibility room_visibility(struct lj *d, int props, const char *pre)
{
	int v = lj_bool(d, props, pre, "public", LJ_OPTIONAL, -1);

	if (v < 0)
		return FERRY__ROOM__V1__VISIBILITY__VISIBILITY_UNSPECIFIED;
	return v ? FERRY__ROOM__V1__VISIBILITY__VISIBILITY_PUBLIC
		 : FERRY__ROOM__V1__VISIBILITY__VISIBILITY_PRIVATE;
}

Ferry__Room__V1__Label **room_labels(struct lj *d, int props, const char *pre, size_t *ret_n)
{
	int arr, n;
	Ferry__Room__V1__Label **list;
	char path[96];

	*ret_n = 0;
	arr = lj_array(d, props, pre, "keywords", LJ_OPTIONAL, &n);
	if (arr < 0 || n == 0)
		return NULL;
	lj_path(path, sizeof(path), pre, "keywords");
	list = lj_alloc(d, (size_t)n * sizeof(*list));
	if (!list)
		return NULL;
	for (int i = 0; i < n && !lj_failed(d); i++) {
		int k = lj_elem(d, arr, i);
		Ferry__Room__V1__Label *l = lj_alloc(d, sizeof(*l));

		if (!l)
			return NULL;
		ferry__room__v1__label__init(l);
		if (d->tok[k].type != JSMN_OBJECT) {
			lj_fail(d, -EBADMSG, pre, "keywords", "wrong type (want objects)");
			return NULL;
		}
		l->key = (char *)lj_string(d, k, path, "key", LJ_REQUIRED, NAME_MAX_LEN);
		l->value = (char *)lj_string(d, k, path, "value", LJ_OPTIONAL, NAME_MAX_LEN);
		if (!l->value)
			l->value = (char *)protobuf_c_empty_string;
		list[i] = l;
	}
	*ret_n = (size_t)n;
	return list;
}
