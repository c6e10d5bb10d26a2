/* SPDX-License-Identifier: MIT */
/* log: records to the systemd journal or to stderr, for every ferry process (see log.h). */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* CODE_FILE/LINE/FUNC would always name journal_emit() here, not the caller: leave them out. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

/* Where sd_journal_sendv() sends (libsystemd's fixed path). */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

#define MESSAGE_PREFIX	   "MESSAGE="
#define MESSAGE_PREFIX_LEN (sizeof(MESSAGE_PREFIX) - 1)
#define ELLIPSIS	   "..."
#define ELLIPSIS_LEN	   (sizeof(ELLIPSIS) - 1)

/* Room of a stderr line's content: " ..." (4) and the newline (1) always fit after it. */
#define LINE_ROOM (LOG_LINE_MAX - 5)

static const char *const level_names[8] = {
	"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

/*
 * Process-wide by nature (one sink and one name per process), so it lives
 * outside any context struct. Written only by log_open(), which runs before
 * threads exist; read by everything else.
 */
static struct {
	char ident[LOG_IDENT_MAX];
	enum log_sink sink;
	int level;
} log_state = {
	.sink = LOG_SINK_STDERR,
	.level = LOG_INFO,
};

/* A field checked and measured once, for either sink. */
struct nfield {
	const char *key;
	size_t klen;
	const char *value;
	size_t vlen; /* bytes of value kept */
	bool cut;    /* value was longer: vlen bytes then "..." */
};

struct line {
	size_t len;
	char buf[LOG_LINE_MAX];
};

static const char *ident_get(void)
{
	return log_state.ident[0] ? log_state.ident : program_invocation_short_name;
}

/*
 * Where to cut s (which has more than len bytes) at or before len so that
 * no UTF-8 sequence is split: back over at most 3 continuation bytes. On
 * invalid UTF-8 (a longer run of continuation bytes) cut at len.
 */
static size_t utf8_cut(const char *s, size_t len)
{
	size_t l = len;

	while (l > 0 && len - l < 3 && ((unsigned char)s[l] & 0xc0) == 0x80)
		l--;
	return ((unsigned char)s[l] & 0xc0) == 0x80 ? len : l;
}

/* Bytes of the UTF-8 unit starting at s[0] (1 for ASCII and invalid bytes), within n. */
static size_t utf8_unit(const char *s, size_t n)
{
	size_t u = 1;

	if ((unsigned char)s[0] < 0xc0)
		return 1;
	while (u < n && u < 4 && ((unsigned char)s[u] & 0xc0) == 0x80)
		u++;
	return u;
}

static int level_parse(const char *s)
{
	for (int i = 0; i < 8; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	if (s[0] >= '0' && s[0] <= '7' && s[1] == 0)
		return s[0] - '0';
	return -1;
}

/* True when fd 2 is the stream systemd connected to the journal ($JOURNAL_STREAM = dev:ino). */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char *end;

	if (!e || !*e)
		return false;
	errno = 0;
	dev = strtoull(e, &end, 10);
	if (errno || end == e || *end != ':')
		return false;
	e = end + 1;
	ino = strtoull(e, &end, 10);
	if (errno || end == e || *end)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_open(const char *ident)
{
	int saved_errno = errno;
	const char *sink_env = getenv("FERRY_LOG");
	const char *level_env = getenv("FERRY_LOG_LEVEL");
	bool bad_sink = false, bad_level = false;
	int no_journal = 0; /* errno of looking for journald's socket when forced */
	size_t len;

	if (!ident)
		ident = "";
	len = strnlen(ident, LOG_IDENT_MAX);
	if (len >= LOG_IDENT_MAX)
		len = utf8_cut(ident, LOG_IDENT_MAX - 1);
	memcpy(log_state.ident, ident, len);
	log_state.ident[len] = 0;

	log_state.level = LOG_INFO;
	if (level_env && *level_env) {
		int level = level_parse(level_env);

		if (level < 0)
			bad_level = true;
		else
			log_state.level = level;
	}

	if (sink_env && strcmp(sink_env, "journal") == 0) {
		/*
		 * sd_journal_sendv() drops records silently when there is no
		 * journald (ENOENT): forced without one, use stderr instead.
		 * When detected, the stream systemd made is proof enough.
		 */
		no_journal = access(JOURNAL_SOCKET, W_OK) < 0 ? errno : 0;
		log_state.sink = no_journal ? LOG_SINK_STDERR : LOG_SINK_JOURNAL;
	} else if (sink_env && strcmp(sink_env, "stderr") == 0) {
		log_state.sink = LOG_SINK_STDERR;
	} else {
		bad_sink = sink_env && *sink_env && strcmp(sink_env, "auto") != 0;
		log_state.sink = stderr_is_journal() ? LOG_SINK_JOURNAL : LOG_SINK_STDERR;
	}

	if (bad_sink)
		log_msg(LOG_WARNING, "FERRY_LOG=%.64s: want journal, stderr or auto; using %s",
			sink_env, log_state.sink == LOG_SINK_JOURNAL ? "journal" : "stderr");
	if (no_journal)
		log_msg(LOG_WARNING, "FERRY_LOG=journal: no journal at %s (%s); using stderr",
			JOURNAL_SOCKET, strerror(no_journal));
	if (bad_level)
		log_msg(LOG_WARNING,
			"FERRY_LOG_LEVEL=%.64s: want debug, info, notice, warning or err; using "
			"info",
			level_env);
	errno = saved_errno;
}

enum log_sink log_sink(void)
{
	return log_state.sink;
}

/* Formats into out (LOG_MSG_MAX bytes), cut with "..." when longer; returns the length. */
static size_t msg_format(char *out, const char *fmt, va_list ap)
{
	static const char unformattable[] = "(log message could not be formatted)";
	size_t len;
	int n;

	n = vsnprintf(out, LOG_MSG_MAX, fmt ? fmt : "", ap);
	if (n < 0) {
		memcpy(out, unformattable, sizeof(unformattable));
		return sizeof(unformattable) - 1;
	}
	len = (size_t)n;
	if (len >= LOG_MSG_MAX) {
		len = utf8_cut(out, LOG_MSG_MAX - 1 - ELLIPSIS_LEN);
		memcpy(out + len, ELLIPSIS, ELLIPSIS_LEN + 1);
		len += ELLIPSIS_LEN;
	}
	while (len > 0 && out[len - 1] == '\n')
		out[--len] = 0;
	return len;
}

/* Length of a valid journal field name (1..64 of [A-Z0-9_], no leading '_' or digit), else 0. */
static size_t key_check(const char *key)
{
	size_t i;

	if (!key || key[0] == '_' || (key[0] >= '0' && key[0] <= '9'))
		return 0;
	for (i = 0; key[i]; i++) {
		char c = key[i];

		if (i >= LOG_KEY_MAX)
			return 0;
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return i;
}

static bool key_reserved(const char *key)
{
	return strcmp(key, "MESSAGE") == 0 || strcmp(key, "PRIORITY") == 0 ||
	       strcmp(key, "SYSLOG_IDENTIFIER") == 0;
}

/* Keeps the valid fields (at most LOG_FIELDS_MAX) in out; returns how many. */
static size_t fields_check(const struct log_field *fields, size_t n, struct nfield *out,
			   bool *ret_have_stage)
{
	size_t kept = 0;

	*ret_have_stage = false;
	for (size_t i = 0; fields && i < n && kept < LOG_FIELDS_MAX; i++) {
		struct nfield *f = &out[kept];
		size_t vlen;

		f->klen = key_check(fields[i].key);
		if (!f->klen || !fields[i].value || key_reserved(fields[i].key))
			continue;
		f->key = fields[i].key;
		f->value = fields[i].value;
		vlen = strnlen(f->value, LOG_VALUE_MAX + 1);
		f->cut = vlen > LOG_VALUE_MAX;
		f->vlen = f->cut ? utf8_cut(f->value, LOG_VALUE_MAX - ELLIPSIS_LEN) : vlen;
		if (strcmp(f->key, "STAGE") == 0)
			*ret_have_stage = true;
		kept++;
	}
	return kept;
}

/* Sends one record to the journal; returns sd_journal_sendv()'s result. */
static int journal_emit(int priority, const char *message, size_t message_len,
			const struct nfield *f, size_t nf, bool have_stage)
{
	char prio[] = "PRIORITY=0";
	char ident[sizeof("SYSLOG_IDENTIFIER=") + LOG_IDENT_MAX];
	char stage[sizeof("STAGE=") + LOG_IDENT_MAX];
	char arena[LOG_FIELDS_MAX * (LOG_KEY_MAX + 1 + LOG_VALUE_MAX)];
	struct iovec iov[4 + LOG_FIELDS_MAX];
	size_t used = 0;
	int n = 0;

	prio[sizeof(prio) - 2] = (char)('0' + priority);
	iov[n++] = (struct iovec){(void *)message, message_len};
	iov[n++] = (struct iovec){prio, sizeof(prio) - 1};
	iov[n].iov_base = ident;
	iov[n++].iov_len = (size_t)snprintf(ident, sizeof(ident), "SYSLOG_IDENTIFIER=%.*s",
					    LOG_IDENT_MAX - 1, ident_get());
	if (!have_stage) {
		iov[n].iov_base = stage;
		iov[n++].iov_len = (size_t)snprintf(stage, sizeof(stage), "STAGE=%.*s",
						    LOG_IDENT_MAX - 1, ident_get());
	}
	for (size_t i = 0; i < nf; i++) {
		char *p = arena + used;

		/* Fits: klen <= LOG_KEY_MAX, vlen (+ "..." when cut) <= LOG_VALUE_MAX. */
		memcpy(p, f[i].key, f[i].klen);
		p[f[i].klen] = '=';
		memcpy(p + f[i].klen + 1, f[i].value, f[i].vlen);
		iov[n].iov_base = p;
		iov[n].iov_len = f[i].klen + 1 + f[i].vlen;
		if (f[i].cut) {
			memcpy(p + iov[n].iov_len, ELLIPSIS, ELLIPSIS_LEN);
			iov[n].iov_len += ELLIPSIS_LEN;
		}
		used += iov[n++].iov_len;
	}
	return sd_journal_sendv(iov, n);
}

static bool line_put(struct line *l, const char *s, size_t n)
{
	if (n > LINE_ROOM - l->len)
		return false;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return true;
}

static bool line_puts(struct line *l, const char *s)
{
	return line_put(l, s, strlen(s));
}

/* The escaped form of byte c (see log.h) in out; returns its length (1..4). */
static size_t escape_byte(unsigned char c, bool quoted, char *out)
{
	static const char hex[] = "0123456789abcdef";

	switch (c) {
	case '\n':
		memcpy(out, "\\n", 2);
		return 2;
	case '\r':
		memcpy(out, "\\r", 2);
		return 2;
	case '\t':
		if (!quoted)
			break;
		memcpy(out, "\\t", 2);
		return 2;
	case '"':
	case '\\':
		if (!quoted)
			break;
		out[0] = '\\';
		out[1] = (char)c;
		return 2;
	default:
		if (c < 0x20 || c == 0x7f) {
			out[0] = '\\';
			out[1] = 'x';
			out[2] = hex[c >> 4];
			out[3] = hex[c & 15];
			return 4;
		}
	}
	out[0] = (char)c;
	return 1;
}

/*
 * Appends s[0..n) escaped, one whole UTF-8 unit at a time; returns the
 * bytes of s appended (n unless the line filled up).
 */
static size_t line_put_escaped(struct line *l, const char *s, size_t n, bool quoted)
{
	size_t i = 0;

	while (i < n) {
		size_t u = utf8_unit(s + i, n - i);
		char esc[4];
		bool ok;

		if (u == 1)
			ok = line_put(l, esc, escape_byte((unsigned char)s[i], quoted, esc));
		else
			ok = line_put(l, s + i, u);
		if (!ok)
			break;
		i += u;
	}
	return i;
}

static bool value_needs_quotes(const char *v, size_t n)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c <= ' ' || c == 0x7f || c == '"')
			return true;
	}
	return false;
}

static bool line_put_field(struct line *l, const struct nfield *f)
{
	bool quoted = value_needs_quotes(f->value, f->vlen);

	return line_put(l, " ", 1) && line_put(l, f->key, f->klen) && line_put(l, "=", 1) &&
	       (!quoted || line_put(l, "\"", 1)) &&
	       line_put_escaped(l, f->value, f->vlen, quoted) == f->vlen &&
	       (!f->cut || line_put(l, ELLIPSIS, ELLIPSIS_LEN)) &&
	       (!quoted || line_put(l, "\"", 1));
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return; /* nowhere left to report it */
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Writes one record as one line on stderr, with one write(2) (see log.h). */
static void stderr_emit(int priority, const char *msg, size_t msg_len, const struct nfield *f,
			size_t nf)
{
	struct line l;

	l.len = 0;
	/* The prefix always fits: the ident is cut to LOG_IDENT_MAX - 1 bytes. */
	line_puts(&l, "ferry[");
	line_put(&l, ident_get(), strnlen(ident_get(), LOG_IDENT_MAX - 1));
	line_puts(&l, "] ");
	line_puts(&l, level_names[priority]);
	line_puts(&l, ": ");
	if (line_put_escaped(&l, msg, msg_len, false) < msg_len) {
		/* LINE_ROOM keeps space for the marker and the newline. */
		memcpy(l.buf + l.len, ELLIPSIS, ELLIPSIS_LEN);
		l.len += ELLIPSIS_LEN;
		nf = 0;
	}
	for (size_t i = 0; i < nf; i++) {
		size_t mark = l.len;

		if (!line_put_field(&l, &f[i])) {
			l.len = mark;
			memcpy(l.buf + l.len, " " ELLIPSIS, ELLIPSIS_LEN + 1);
			l.len += ELLIPSIS_LEN + 1;
			break;
		}
	}
	l.buf[l.len++] = '\n';
	write_all(STDERR_FILENO, l.buf, l.len);
}

static void log_record(int priority, const struct log_field *fields, size_t n, const char *fmt,
		       va_list ap)
{
	char text[MESSAGE_PREFIX_LEN + LOG_MSG_MAX];
	struct nfield nf[LOG_FIELDS_MAX];
	bool have_stage;
	size_t len, count;

	memcpy(text, MESSAGE_PREFIX, MESSAGE_PREFIX_LEN);
	len = msg_format(text + MESSAGE_PREFIX_LEN, fmt, ap);
	count = fields_check(fields, n, nf, &have_stage);
	if (log_state.sink == LOG_SINK_JOURNAL &&
	    journal_emit(priority, text, MESSAGE_PREFIX_LEN + len, nf, count, have_stage) >= 0)
		return;
	/* stderr, or the journal refused the record: stderr rather than nothing. */
	stderr_emit(priority, text + MESSAGE_PREFIX_LEN, len, nf, count);
}

void log_msg(int priority, const char *fmt, ...)
{
	int saved_errno = errno;
	va_list ap;

	priority = LOG_PRI(priority);
	if (priority > log_state.level)
		return;
	va_start(ap, fmt);
	log_record(priority, NULL, 0, fmt, ap);
	va_end(ap);
	errno = saved_errno;
}

void log_fields(int priority, const struct log_field *fields, size_t n, const char *fmt, ...)
{
	int saved_errno = errno;
	va_list ap;

	priority = LOG_PRI(priority);
	if (priority > log_state.level)
		return;
	va_start(ap, fmt);
	log_record(priority, fields, n, fmt, ap);
	va_end(ap);
	errno = saved_errno;
}
