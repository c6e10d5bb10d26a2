/* SPDX-License-Identifier: MIT */
/* dlq: dead-letter replay's shared parts. See dlq.h. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/compiler.h"
#include "common/dlq.h"
#include "common/envelope.h"

static const char magic[8] = {'F', 'E', 'R', 'R', 'Y', 'D', 'L', 'Q'};

int dlq_spool_dir(const struct ferry_config *cfg, char *buf, size_t len)
{
	struct stat st;
	int n;

	if (!strcmp(cfg->dlq_spool, "none"))
		return 0;
	if (cfg->dlq_spool[0])
		n = snprintf(buf, len, "%s", cfg->dlq_spool);
	else if (stat("/var/lib/ferry", &st) == 0 && S_ISDIR(st.st_mode))
		n = snprintf(buf, len, "/var/lib/ferry/%s/dlq", cfg->instance);
	else
		return 0; /* not installed as a service: no default spool */
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 1;
}

int dlq_spool_mkdir(const char *dir, char *err, size_t errlen)
{
	char parent[PATH_MAX];
	char *slash;

	if (mkdir(dir, 0700) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT || snprintf(parent, sizeof(parent), "%s", dir) >= (int)sizeof(parent))
		goto fail;
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		goto fail;
	*slash = '\0';
	/* One level: /var/lib/ferry/<instance> under the state directory. */
	if ((mkdir(parent, 0700) < 0 && errno != EEXIST) ||
	    (mkdir(dir, 0700) < 0 && errno != EEXIST))
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "cannot make the spool directory %s: %s", dir, strerror(errno));
	return -errno;
}

const char *dlq_verdict_name(enum dlq_verdict v)
{
	static const char *const names[] = {
		[DLQ_TAKE] = "selected",
		[DLQ_NOT_SELECTED] = "not selected",
		[DLQ_NO_VALUE] = "no value (an event Kafka refused: not replayable)",
		[DLQ_DROPPED] = "no value (decrypted plaintext left out: not replayable)",
		[DLQ_NOT_ENVELOPE] =
			"value not an encrypted envelope (not replayable through decrypt)",
		[DLQ_BAD_HEADERS] = "malformed headers",
	};

	return v < DLQ_VERDICT_COUNT ? names[v] : "?";
}

static int bytes_eq(struct msg_bytes b, const char *s, int nocase)
{
	if (!nocase)
		return msg_bytes_is(b, s);
	return b.len == strlen(s) && !strncasecmp(b.p, s, b.len);
}

static int bytes_has(struct msg_bytes b, const char *needle)
{
	size_t n = strlen(needle);

	if (!n)
		return 1;
	for (size_t i = 0; i + n <= b.len; i++)
		if (!memcmp((const char *)b.p + i, needle, n))
			return 1;
	return 0;
}

enum dlq_verdict dlq_select(const struct dlq_filter *f, struct msg_bytes headers, int64_t ts_ms,
			    struct msg_bytes value, int has_value, char *ret_tenant,
			    size_t tenant_len)
{
	struct msg_bytes tenant = {"", 0}, h = {"", 0};
	struct envelope e;
	int have_env = 0, r;
	size_t i;
	enum dlq_verdict v = DLQ_NOT_SELECTED;
	char why[128];

	if (ret_tenant && tenant_len)
		ret_tenant[0] = '\0';
	r = msg_kv_find(headers, f->tenant_attr ? f->tenant_attr : "tenant", &tenant);
	if (r < 0)
		return DLQ_BAD_HEADERS;
	if (has_value && value.len && envelope_parse(value.p, value.len, &e, why, sizeof(why)) == 0)
		have_env = 1;
	if (!r && have_env) { /* named only inside the envelope */
		tenant.p = e.tenant;
		tenant.len = (uint32_t)strlen(e.tenant);
	}
	if (ret_tenant && tenant_len)
		snprintf(ret_tenant, tenant_len, "%.*s", (int)tenant.len, (const char *)tenant.p);
	if (f->since_ms && ts_ms < f->since_ms)
		goto out;
	if (f->until_ms && ts_ms >= f->until_ms)
		goto out;
	if (f->n_tenants) {
		for (i = 0; i < f->n_tenants && !bytes_eq(tenant, f->tenants[i], 0); i++)
			;
		if (i == f->n_tenants)
			goto out;
	}
	if (f->n_types) {
		if (msg_kv_find(headers, DLQ_H_LEGACY_TYPE, &h) <= 0)
			goto out;
		for (i = 0; i < f->n_types && !bytes_eq(h, f->types[i], 1); i++)
			;
		if (i == f->n_types)
			goto out;
	}
	if (f->reason && (msg_kv_find(headers, DLQ_H_REASON, &h) <= 0 || !bytes_has(h, f->reason)))
		goto out;
	if (f->stage && (msg_kv_find(headers, DLQ_H_STAGE, &h) <= 0 || !bytes_eq(h, f->stage, 0)))
		goto out;
	if (msg_kv_find(headers, DLQ_H_DROPPED, &h) > 0) {
		v = DLQ_DROPPED;
		goto out;
	}
	if (!has_value || msg_kv_find(headers, DLQ_H_TOPIC, &h) > 0) {
		v = DLQ_NO_VALUE;
		goto out;
	}
	/*
	 * map's dead letters written before produce left decrypted values
	 * out hold the message after decrypt: unless decrypt passes messages
	 * through (no key ring), such a value cannot be opened again.
	 */
	if (f->need_envelope && !have_env && msg_kv_find(headers, DLQ_H_STAGE, &h) > 0 &&
	    (bytes_eq(h, "map", 0) || bytes_eq(h, "produce", 0))) {
		v = DLQ_NOT_ENVELOPE;
		goto out;
	}
	v = DLQ_TAKE;
out:
	if (have_env)
		envelope_free(&e);
	return v;
}

static int bookkeeping(struct msg_bytes k)
{
	static const char *const names[] = {
		DLQ_H_REASON,	 DLQ_H_STAGE,	 DLQ_H_TOPIC,	    DLQ_H_SEQ,
		DLQ_H_SOURCE_ID, DLQ_H_REPLAYED, DLQ_H_LEGACY_TYPE, DLQ_H_DROPPED,
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (bytes_eq(k, names[i], 0))
			return 1;
	return 0;
}

int dlq_attrs(struct msg_bytes headers, void *buf, size_t cap, size_t *ret_len)
{
	size_t pos = 0, len = 0;
	struct msg_kv kv;
	int r;

	while ((r = msg_kv_next(headers, &pos, &kv)) > 0) {
		if (bookkeeping(kv.key))
			continue;
		if (msg_kv_put(buf, cap, &len, kv.key.p, kv.key.len, kv.value.p, kv.value.len) < 0)
			return -ENOBUFS;
	}
	if (r < 0)
		return r;
	*ret_len = len;
	return 0;
}

int dlq_parse_time(const char *s, int64_t now_ms, int64_t *ret_ms)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, sec, n = 0, oh, om;
	const char *p;
	char sign;
	uint64_t ms;
	int64_t t;

	if (!s || !*s)
		return -EINVAL;
	for (p = s; isdigit((unsigned char)*p); p++)
		;
	if (!*p) { /* unix seconds */
		if (p - s > 12)
			return -EINVAL;
		*ret_ms = strtoll(s, NULL, 10) * 1000;
		return 0;
	}
	if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6 &&
	    n >= 19) {
		p = s + n;
		ms = 0;
		if (*p == '.') {
			unsigned digits = 0;

			for (p++; isdigit((unsigned char)*p); p++, digits++)
				if (digits < 3)
					ms = ms * 10 + (uint64_t)(*p - '0');
			if (!digits)
				return -EINVAL;
			for (; digits < 3; digits++)
				ms *= 10;
		}
		if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
			return -EINVAL;
		tm.tm_year = y - 1900;
		tm.tm_mon = mo - 1;
		tm.tm_mday = d;
		tm.tm_hour = h;
		tm.tm_min = mi;
		tm.tm_sec = sec;
		t = (int64_t)timegm(&tm);
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if ((*p == '+' || *p == '-') &&
			   sscanf(p, "%c%2d:%2d", &sign, &oh, &om) == 3 && strlen(p) == 6 &&
			   oh < 24 && om < 60) {
			t -= (sign == '+' ? 1 : -1) * (int64_t)(oh * 3600 + om * 60);
			p += 6;
		} else {
			return -EINVAL;
		}
		if (*p)
			return -EINVAL;
		*ret_ms = t * 1000 + (int64_t)ms;
		return 0;
	}
	/* An age: 30m, 2h, 3d (config durations, and days). */
	{
		size_t len = strlen(s);

		if (len >= 2 && s[len - 1] == 'd') {
			char num[32];

			if (len - 1 >= sizeof(num))
				return -EINVAL;
			memcpy(num, s, len - 1);
			num[len - 1] = '\0';
			for (p = num; isdigit((unsigned char)*p); p++)
				;
			if (*p || len - 1 > 6)
				return -EINVAL;
			ms = strtoull(num, NULL, 10) * 86400000ull;
		} else if (config_parse_duration(s, &ms) < 0) {
			return -EINVAL;
		}
	}
	*ret_ms = now_ms - (int64_t)ms;
	return 0;
}

/* --- the spool file ------------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

struct dlq_writer {
	int fd;
	uint32_t n;
	char dir[PATH_MAX];
	char tmp[PATH_MAX];
};

static int write_all(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len) {
		ssize_t w = write(fd, c, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += w;
		len -= (size_t)w;
	}
	return 0;
}

struct dlq_writer *dlq_writer_new(const char *dir, char *err, size_t errlen)
{
	struct dlq_writer *w = calloc(1, sizeof(*w));
	unsigned char hdr[DLQ_HEADER] = {0};

	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(w->dir, sizeof(w->dir), "%s", dir);
	if (snprintf(w->tmp, sizeof(w->tmp), "%s/.replay-dlq.%ld.tmp", dir, (long)getpid()) >=
	    (int)sizeof(w->tmp)) {
		snprintf(err, errlen, "%s: path too long", dir);
		free(w);
		errno = ENAMETOOLONG;
		return NULL;
	}
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		int e = errno;

		snprintf(err, errlen, "%s: %s", w->tmp, strerror(e));
		free(w);
		errno = e;
		return NULL;
	}
	fchmod(w->fd, 0600); /* whatever the umask */
	memcpy(hdr, magic, sizeof(magic));
	put32(hdr + 8, DLQ_VERSION);
	if (write_all(w->fd, hdr, sizeof(hdr)) < 0) {
		snprintf(err, errlen, "%s: %s", w->tmp, strerror(errno));
		dlq_writer_abort(w);
		return NULL;
	}
	return w;
}

int dlq_writer_add(struct dlq_writer *w, struct msg_bytes id, struct msg_bytes attrs,
		   struct msg_bytes body)
{
	struct msg_source_view v = {
		.source = MSG_SOURCE_DLQ,
		.flags = MSG_F_REPLAYED,
		.id = id,
		.attrs = attrs,
		.body = body,
	};
	uint32_t len = msg_source_size(&v);
	unsigned char *p = malloc(8 + (size_t)len);
	int r;

	if (!p)
		return -ENOMEM;
	msg_source_encode(p + 8, len, &v);
	put32(p, len);
	put32(p + 4, fnv1a32(p + 8, len));
	r = write_all(w->fd, p, 8 + (size_t)len);
	free(p);
	if (!r)
		w->n++;
	return r;
}

void dlq_writer_abort(struct dlq_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	unlink(w->tmp);
	free(w);
}

int dlq_writer_commit(struct dlq_writer *w, char *ret_path, size_t pathlen, char *err,
		      size_t errlen)
{
	unsigned char cnt[4];
	struct timespec ts;
	struct tm tm;
	char name[PATH_MAX];
	int r = 0, dfd;

	put32(cnt, w->n);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	/* Sorts by time: ingest takes files oldest first. */
	if (snprintf(name, sizeof(name), "%s/%04d%02d%02dT%02d%02d%02d.%09ldZ-%ld" DLQ_SUFFIX,
		     w->dir, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec, (long)getpid()) >= (int)sizeof(name)) {
		r = -ENAMETOOLONG;
		snprintf(err, errlen, "%s: path too long", w->dir);
		goto out;
	}
	if (pwrite(w->fd, cnt, 4, 12) != 4 || fsync(w->fd) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", w->tmp, strerror(errno));
		goto out;
	}
	if (rename(w->tmp, name) < 0) {
		r = -errno;
		snprintf(err, errlen, "rename %s to %s: %s", w->tmp, name, strerror(errno));
		goto out;
	}
	/* The rename itself survives a crash. */
	dfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	snprintf(ret_path, pathlen, "%s", name);
	close(w->fd);
	free(w);
	return 0;
out:
	dlq_writer_abort(w);
	return r;
}

int dlq_file_parse(unsigned char *buf, size_t len, struct dlq_file *ret, char *err, size_t errlen)
{
	uint32_t n;
	size_t off = DLQ_HEADER;

	memset(ret, 0, sizeof(*ret));
	ret->buf = buf;
	ret->len = len;
	if (len < DLQ_HEADER || memcmp(buf, magic, sizeof(magic))) {
		snprintf(err, errlen, "not a spool file (no FERRYDLQ header)");
		return -EBADMSG;
	}
	if (get32(buf + 8) != DLQ_VERSION) {
		snprintf(err, errlen, "spool file version %u, this build reads %u", get32(buf + 8),
			 DLQ_VERSION);
		return -EBADMSG;
	}
	n = get32(buf + 12);
	if (n > (len - DLQ_HEADER) / 8) {
		snprintf(err, errlen, "count %u does not fit the file's %zu bytes", n, len);
		return -EBADMSG;
	}
	ret->msgs = calloc(n ? n : 1, sizeof(*ret->msgs));
	if (!ret->msgs) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t rl;

		if (len - off < 8 || (rl = get32(buf + off)) > len - off - 8) {
			snprintf(err, errlen, "message %u at offset %zu: truncated", i, off);
			return -EBADMSG;
		}
		if (fnv1a32(buf + off + 8, rl) != get32(buf + off + 4) ||
		    msg_source_decode(buf + off + 8, rl, &ret->msgs[i]) < 0) {
			snprintf(err, errlen, "message %u at offset %zu: corrupt", i, off);
			return -EBADMSG;
		}
		off += 8 + (size_t)rl;
		ret->n++;
	}
	if (off != len) {
		snprintf(err, errlen, "%zu bytes after the last of %u messages", len - off, n);
		return -EBADMSG;
	}
	return 0;
}

int dlq_file_load(const char *path, struct dlq_file *ret, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	unsigned char *buf = NULL;
	struct stat st;
	size_t got = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory (%lld bytes)", (long long)st.st_size);
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			r = k < 0 ? -errno : -EBADMSG;
			snprintf(err, errlen, "%s", k < 0 ? strerror(errno) : "shrank while read");
			goto fail;
		}
		got += (size_t)k;
	}
	close(fd);
	r = dlq_file_parse(buf, got, ret, err, errlen);
	if (r < 0)
		dlq_file_free(ret);
	return r;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

void dlq_file_free(struct dlq_file *f)
{
	if (!f)
		return;
	free(f->buf);
	free(f->msgs);
	memset(f, 0, sizeof(*f));
}
