/* SPDX-License-Identifier: MIT */
/*
 * decrypt: the tenant-key stage. For now it passes source messages through
 * unchanged; per-tenant keys and AES-256-GCM come with their own issue.
 */
#include "workers/common/worker.h"

static int decrypt_handle(struct worker *w, const struct ring_rec *rec, const char **reason)
{
	if (rec->type != MSG_REC_SOURCE) {
		*reason = "decrypt: not a source message";
		return -EBADMSG;
	}
	return worker_emit(w, 0, MSG_REC_SOURCE, rec->seq, rec->data, rec->len);
}

static const struct stage_ops decrypt_ops = {
	.name = "decrypt",
	.handle = decrypt_handle,
};

int main(int argc, char **argv)
{
	return worker_main(argc, argv, &decrypt_ops);
}
