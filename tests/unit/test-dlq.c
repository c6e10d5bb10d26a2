/* SPDX-License-Identifier: MIT */
/*
 * dlq: which dead letters a replay filter selects and which it refuses
 * (no value, plaintext of map), the attributes rebuilt from headers, the
 * time forms, the spool directory rule, and the spool file: round trip,
 * mode 0600, no temporary left, and every kind of damage refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "common/dlq.h"

#define ENV_ACME                                                                                   \
	"{\"v\":1,\"tenant\":\"acme\",\"key\":1,\"iv\":\"AAAAAAAAAAAAAAAA\",\"ct\":"               \
	"\"AAAAAAAAAAAAAAAAAAAAAA==\"}"

static struct msg_bytes B(const char *s) {
	return (struct msg_bytes){s, (uint32_t)strlen(s)};
}

/* An encoded header list from "k", "v", ..., NULL. */
static struct msg_bytes
H(unsigned char *buf, size_t cap, ...) {
	size_t len = 0;
	const char *k, *v;
	va_list ap;

	va_start(ap, cap);
	while ((k = va_arg(ap, const char *))) {
		v = va_arg(ap, const char *);
		assert_int_equal(
			msg_kv_put(buf, cap, &len, k, (uint32_t)strlen(k), v, (uint32_t)strlen(v)),
			0);
	}
	va_end(ap);
	return (struct msg_bytes){buf, (uint32_t)len};
}

static void
test_time(void **state)
{
	int64_t ms, now = 1800000000000;

	(void)state;
	assert_int_equal(dlq_parse_time("2026-11-27T03:00:00Z", now, &ms), 0);
	assert_int_equal(ms, 1795748400000);
	assert_int_equal(dlq_parse_time("2026-11-27T04:00:00+01:00", now, &ms), 0);
	assert_int_equal(ms, 1795748400000);
	assert_int_equal(dlq_parse_time("2026-11-27T02:30:00.25-00:30", now, &ms), 0);
	assert_int_equal(ms, 1795748400250);
	assert_int_equal(dlq_parse_time("1795748400", now, &ms), 0);
	assert_int_equal(ms, 1795748400000);
	assert_int_equal(dlq_parse_time("2h", now, &ms), 0);
	assert_int_equal(ms, now - 7200000);
	assert_int_equal(dlq_parse_time("30m", now, &ms), 0);
	assert_int_equal(ms, now - 1800000);
	assert_int_equal(dlq_parse_time("3d", now, &ms), 0);
	assert_int_equal(ms, now - 3 * 86400000ll);
	static const char *const bad[] = {"",
					  "yesterday",
					  "2026-11-27",
					  "2026-11-27T03:00:00",
					  "2026-13-27T03:00:00Z",
					  "2026-11-27T03:00:00Zjunk",
					  "2026-11-27T03:00:00.Z",
					  "2h30",
					  "d",
					  "-5m",
					  "99999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(dlq_parse_time(bad[i], now, &ms), -EINVAL);
}

static void test_select(void **state)
{
	unsigned char hb[2048];
	const char *tenants[] = {"acme", "globex"}, *types[] = {"MESSAGESENT"};
	struct dlq_filter f = {.tenant_attr = "tenant"};
	struct msg_bytes h, env = B(ENV_ACME), plain = B("{\"type\":\"MESSAGESENT\"}");
	char tenant[64];

	(void)state;
	h = H(hb, sizeof(hb), "tenant", "acme", "ferry-dead-reason",
	      "decrypt: unknown tenant 'acme'", "ferry-dead-stage", "decrypt", "ferry-seq", "7",
	      "ferry-source-id", "m-1", NULL);
	/* No filter: every replayable one. */
	assert_int_equal(dlq_select(&f, h, 1000, env, 1, tenant, sizeof(tenant)), DLQ_TAKE);
	assert_string_equal(tenant, "acme");
	f.tenants = tenants;
	f.n_tenants = 2;
	assert_int_equal(dlq_select(&f, h, 1000, env, 1, NULL, 0), DLQ_TAKE);
	f.n_tenants = 1;
	f.tenants = tenants + 1;
	assert_int_equal(dlq_select(&f, h, 1000, env, 1, NULL, 0), DLQ_NOT_SELECTED);
	f.tenants = tenants;
	f.reason = "unknown tenant";
	assert_int_equal(dlq_select(&f, h, 1000, env, 1, NULL, 0), DLQ_TAKE);
	f.reason = "tag mismatch";
	assert_int_equal(dlq_select(&f, h, 1000, env, 1, NULL, 0), DLQ_NOT_SELECTED);
	f.reason = NULL;
	f.stage = "decrypt";
	assert_int_equal(dlq_select(&f, h, 1000, env, 1, NULL, 0), DLQ_TAKE);
	f.stage = "map";
	assert_int_equal(dlq_select(&f, h, 1000, env, 1, NULL, 0), DLQ_NOT_SELECTED);
	f.stage = NULL;
	/* Time: [since, until). */
	f.since_ms = 1000;
	f.until_ms = 2000;
	assert_int_equal(dlq_select(&f, h, 1000, env, 1, NULL, 0), DLQ_TAKE);
	assert_int_equal(dlq_select(&f, h, 999, env, 1, NULL, 0), DLQ_NOT_SELECTED);
	assert_int_equal(dlq_select(&f, h, 2000, env, 1, NULL, 0), DLQ_NOT_SELECTED);
	f.since_ms = f.until_ms = 0;
	/* --type: decrypt's dead letters have no type, so are not selected. */
	f.types = types;
	f.n_types = 1;
	assert_int_equal(dlq_select(&f, h, 1000, env, 1, NULL, 0), DLQ_NOT_SELECTED);
	h = H(hb, sizeof(hb), "tenant", "acme", "ferry-dead-reason", "map: payload: missing",
	      "ferry-dead-stage", "map", "ferry-legacy-type", "messagesent", NULL);
	assert_int_equal(dlq_select(&f, h, 1000, env, 1, NULL, 0), DLQ_TAKE);
	/* map's value after decrypt: not an envelope; replayable only without a key ring. */
	f.need_envelope = 1;
	assert_int_equal(dlq_select(&f, h, 1000, plain, 1, NULL, 0), DLQ_NOT_ENVELOPE);
	f.need_envelope = 0;
	assert_int_equal(dlq_select(&f, h, 1000, plain, 1, NULL, 0), DLQ_TAKE);
	f.n_types = 0;
	/* The tenant only inside the envelope. */
	h = H(hb, sizeof(hb), "ferry-dead-reason", "decrypt: unknown key version 3",
	      "ferry-dead-stage", "decrypt", NULL);
	assert_int_equal(dlq_select(&f, h, 1000, env, 1, tenant, sizeof(tenant)), DLQ_TAKE);
	assert_string_equal(tenant, "acme");
	f.need_envelope = 1; /* decrypt's own dead letters are never refused for it */
	assert_int_equal(dlq_select(&f, h, 1000, plain, 1, tenant, sizeof(tenant)),
			 DLQ_NOT_SELECTED); /* no tenant: not acme's */
	f.n_tenants = 0;
	assert_int_equal(dlq_select(&f, h, 1000, plain, 1, NULL, 0), DLQ_TAKE);
	/* An event Kafka refused: no value, a dead topic. */
	h = H(hb, sizeof(hb), "tenant", "acme", "ferry-dead-topic", "chat.v1.message-sent",
	      "ferry-dead-reason", "kafka: Message size too large", "ferry-dead-stage", "produce",
	      NULL);
	assert_int_equal(dlq_select(&f, h, 1000, B(""), 0, NULL, 0), DLQ_NO_VALUE);
	f.tenants = tenants + 1;
	f.n_tenants = 1; /* not wanted anyway: not counted as unreplayable */
	assert_int_equal(dlq_select(&f, h, 1000, B(""), 0, NULL, 0), DLQ_NOT_SELECTED);
	/* map's dead letter past decrypt: the plaintext value left out. */
	f.n_tenants = 0;
	h = H(hb, sizeof(hb), "tenant", "acme", "ferry-dead-reason",
	      "map: type: unknown legacy type", "ferry-dead-stage", "map",
	      "ferry-dead-value-dropped", "decrypted plaintext", NULL);
	assert_int_equal(dlq_select(&f, h, 1000, B(""), 0, NULL, 0), DLQ_DROPPED);
	/* Malformed headers. */
	assert_int_equal(dlq_select(&f, (struct msg_bytes){"\x01", 1}, 1000, env, 1, NULL, 0),
			 DLQ_BAD_HEADERS);
	assert_string_equal(dlq_verdict_name(DLQ_TAKE), "selected");
	assert_non_null(strstr(dlq_verdict_name(DLQ_NO_VALUE), "refused"));
	assert_string_equal(dlq_verdict_name(DLQ_VERDICT_COUNT), "?");
}

static void test_attrs(void **state)
{
	unsigned char hb[1024], out[1024];
	struct msg_bytes h, v;
	size_t len = 0, pos = 0;
	struct msg_kv kv;
	const char *want[] = {"tenant", "type", "traceparent"};
	int i = 0;

	(void)state;
	h = H(hb, sizeof(hb), "tenant", "acme", "ferry-dead-reason", "x", "type", "message.sent",
	      "ferry-dead-stage", "map", "ferry-seq", "9", "ferry-source-id", "m-9",
	      "ferry-replayed", "1", "ferry-legacy-type", "MESSAGESENT", "ferry-dead-topic", "t",
	      "ferry-dead-value-dropped", "decrypted plaintext", "traceparent", "00-abc", NULL);
	assert_int_equal(dlq_attrs(h, out, sizeof(out), &len), 0);
	v = (struct msg_bytes){out, (uint32_t)len};
	while (msg_kv_next(v, &pos, &kv) > 0) {
		assert_true(i < 3);
		assert_int_equal(kv.key.len, strlen(want[i]));
		assert_memory_equal(kv.key.p, want[i], kv.key.len);
		i++;
	}
	assert_int_equal(i, 3);
	assert_int_equal(dlq_attrs(h, out, 10, &len), -ENOBUFS);
	assert_int_equal(dlq_attrs((struct msg_bytes){"\x05\x00", 2}, out, sizeof(out), &len),
			 -EBADMSG);
}

static void test_spool_dir(void **state)
{
	struct ferry_config cfg;
	char buf[PATH_MAX];
	struct stat st;

	(void)state;
	config_defaults(&cfg);
	strcpy(cfg.instance, "prod");
	strcpy(cfg.dlq_spool, "/srv/spool");
	assert_int_equal(dlq_spool_dir(&cfg, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "/srv/spool");
	assert_int_equal(dlq_spool_dir(&cfg, buf, 5), -ENAMETOOLONG);
	strcpy(cfg.dlq_spool, "none");
	assert_int_equal(dlq_spool_dir(&cfg, buf, sizeof(buf)), 0);
	cfg.dlq_spool[0] = '\0';
	if (stat("/var/lib/ferry", &st) == 0) {
		assert_int_equal(dlq_spool_dir(&cfg, buf, sizeof(buf)), 1);
		assert_string_equal(buf, "/var/lib/ferry/prod/dlq");
	} else {
		assert_int_equal(dlq_spool_dir(&cfg, buf, sizeof(buf)), 0);
	}
	config_free(&cfg);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = malloc(1 << 20);

	assert_non_null(f);
	*len = fread(b, 1, 1 << 20, f);
	fclose(f);
	return b;
}

static void spit(const char *path, const char *b, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, len, f), len);
	fclose(f);
}

static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_spool_file(void **state)
{
	char dir[] = "/tmp/test-dlq.XXXXXX", sub[PATH_MAX], path[PATH_MAX], err[256];
	static const unsigned char binary[] = {0, 1, 2, 0xff, 0, 'x'};
	unsigned char ab[256];
	struct msg_bytes attrs = H(ab, sizeof(ab), "tenant", "acme", "type", "m", NULL);
	struct dlq_writer *w;
	struct dlq_file f;
	struct stat st;
	size_t len;
	char *b;
	mode_t old = umask(0);

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/inst/dlq", dir);
	assert_int_equal(dlq_spool_mkdir(sub, err, sizeof(err)), 0);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	w = dlq_writer_new(sub, err, sizeof(err));
	assert_non_null(w);
	assert_int_equal(dlq_writer_add(w, B("m-1"), attrs, B(ENV_ACME)), 0);
	assert_int_equal(dlq_writer_add(w, B("m-2"), (struct msg_bytes){"", 0},
					(struct msg_bytes){binary, sizeof(binary)}),
			 0);
	assert_int_equal(dlq_writer_add(w, B(""), attrs, B("")), 0);
	assert_int_equal(entries(sub), 0); /* only the hidden temporary */
	assert_int_equal(dlq_writer_commit(w, path, sizeof(path), err, sizeof(err)), 0);
	umask(old);
	assert_int_equal(entries(sub), 1);
	assert_non_null(strstr(path, DLQ_SUFFIX));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_int_equal(dlq_file_load(path, &f, err, sizeof(err)), 0);
	assert_int_equal(f.n, 3);
	assert_int_equal(f.msgs[0].source, MSG_SOURCE_DLQ);
	assert_int_equal(f.msgs[0].flags, MSG_F_REPLAYED);
	assert_int_equal(f.msgs[0].id.len, 3);
	assert_memory_equal(f.msgs[0].id.p, "m-1", 3);
	assert_int_equal(f.msgs[0].attrs.len, attrs.len);
	assert_memory_equal(f.msgs[0].body.p, ENV_ACME, strlen(ENV_ACME));
	assert_int_equal(f.msgs[1].body.len, sizeof(binary));
	assert_memory_equal(f.msgs[1].body.p, binary, sizeof(binary));
	assert_int_equal(f.msgs[2].body.len, 0);
	dlq_file_free(&f);
	dlq_file_free(&f); /* twice is fine */

	/* Damage of every kind refuses the whole file. */
	b = slurp(path, &len);
	for (size_t i = 0; i < len; i += 7) {
		b[i] ^= 0x20;
		spit(path, b, len);
		assert_int_equal(dlq_file_load(path, &f, err, sizeof(err)), -EBADMSG);
		b[i] ^= 0x20;
	}
	for (size_t cut = 0; cut < len; cut += 5) {
		spit(path, b, cut);
		assert_int_equal(dlq_file_load(path, &f, err, sizeof(err)), -EBADMSG);
	}
	spit(path, b, len);
	assert_int_equal(dlq_file_load(path, &f, err, sizeof(err)), 0);
	dlq_file_free(&f);
	b[len] = 'x'; /* trailing bytes */
	spit(path, b, len + 1);
	assert_int_equal(dlq_file_load(path, &f, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "after the last"));
	b[12] = 9; /* count larger than what follows */
	spit(path, b, len);
	assert_int_equal(dlq_file_load(path, &f, err, sizeof(err)), -EBADMSG);
	b[8] = 2; /* other version */
	spit(path, b, len);
	assert_int_equal(dlq_file_load(path, &f, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "version 2"));
	free(b);
	unlink(path);
	assert_int_equal(dlq_file_load(path, &f, err, sizeof(err)), -ENOENT);

	/* An empty file of no messages is fine; an aborted one leaves nothing. */
	w = dlq_writer_new(sub, err, sizeof(err));
	assert_int_equal(dlq_writer_commit(w, path, sizeof(path), err, sizeof(err)), 0);
	assert_int_equal(dlq_file_load(path, &f, err, sizeof(err)), 0);
	assert_int_equal(f.n, 0);
	dlq_file_free(&f);
	unlink(path);
	w = dlq_writer_new(sub, err, sizeof(err));
	assert_int_equal(dlq_writer_add(w, B("m"), attrs, B("b")), 0);
	dlq_writer_abort(w);
	dlq_writer_abort(NULL);
	assert_int_equal(rmdir(sub), 0); /* empty: the temporary is gone */
	/* A spool directory that cannot be written. */
	assert_null(dlq_writer_new("/nonexistent/dlq", err, sizeof(err)));
	assert_non_null(strstr(err, "No such file"));
	snprintf(sub, sizeof(sub), "%s/inst", dir);
	rmdir(sub);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time),	   cmocka_unit_test(test_select),
		cmocka_unit_test(test_attrs),	   cmocka_unit_test(test_spool_dir),
		cmocka_unit_test(test_spool_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
