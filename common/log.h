/* SPDX-License-Identifier: MIT */
/*
 * log: one logging module for every ferry process (ferryd and each stage).
 *
 * Sink: the systemd journal (structured fields, sd_journal_sendv()) when
 * stderr is connected to it, else stderr. "Connected" is what systemd
 * documents: $JOURNAL_STREAM holds "<st_dev>:<st_ino>" of the stream it set
 * up, and it matches fstat(2) of fd 2 (a stage whose stderr was redirected
 * elsewhere keeps the variable but no longer matches). FERRY_LOG=journal or
 * FERRY_LOG=stderr forces a sink (FERRY_LOG=auto or unset: detect).
 * FERRY_LOG=journal without journald's socket (/run/systemd/journal/socket)
 * falls back to stderr with a warning, because libsystemd drops records
 * silently when that socket is missing. A record the journal refuses
 * (sd_journal_sendv() fails) is written to stderr instead.
 *
 * Threshold: FERRY_LOG_LEVEL=debug|info|notice|warning|err (also emerg,
 * alert, crit, or a number 0..7), default info. Records of a lower severity
 * (a higher LOG_* number) are dropped before they are formatted.
 *
 * Journal records carry MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=<ident>,
 * STAGE=<ident> (or the caller's STAGE field, which replaces it) and the
 * caller's fields as they are (no prefix is added: pass "SEQ", not
 * "FERRY_SEQ").
 *
 * stderr records are one line, written with one write(2) of at most
 * LOG_LINE_MAX (= PIPE_BUF) bytes, so lines of concurrent threads and of
 * processes sharing the pipe never interleave:
 *
 *   ferry[<ident>] <level>: <message>[ KEY=value]...\n
 *
 * <level> is emerg, alert, crit, err, warning, notice, info or debug. A
 * value is quoted ("...") when it is empty or contains a space, a control
 * character, DEL or '"'; inside quotes '"' and '\' are escaped with '\',
 * newline, carriage return and tab as \n \r \t, other control bytes as \xHH.
 * In the message, control characters other than tab are escaped the same
 * way (a message is one line; it cannot forge another record or send
 * terminal escapes). STAGE=<ident> is not repeated after the prefix; a
 * STAGE field passed by the caller is.
 *
 * Limits (nothing is allocated; about 9 KiB of stack per call):
 *   - the message is cut to LOG_MSG_MAX - 1 bytes, ending in "...";
 *   - a field value is cut to LOG_VALUE_MAX bytes, ending in "...";
 *   - at most LOG_FIELDS_MAX fields are kept, the rest are dropped;
 *   - a stderr line that would exceed LOG_LINE_MAX loses its last fields
 *     (the line then ends in " ...") or the end of its message ("...").
 * Cuts never split a UTF-8 sequence. A trailing newline of the message is
 * dropped (the sink ends records itself).
 *
 * Field keys follow the journal's rules: 1 to 64 characters of [A-Z0-9_],
 * not starting with '_' or a digit. A field with an invalid key, a NULL key
 * or a NULL value is dropped, and so are the reserved MESSAGE, PRIORITY and
 * SYSLOG_IDENTIFIER. Dropping never fails the record.
 *
 * SECRETS: this module writes what it is given. It is the caller's duty
 * never to pass key material, plaintext payloads or credentials (tenant
 * keys, data keys, KMS responses, AWS secrets, decrypted events) in a
 * message or a field. Log identifiers (tenant id, key version, seq,
 * message id), never contents.
 *
 * Errno: every function here preserves errno, so "%m" works in formats and
 * a caller may log between a failing call and `return -errno`.
 *
 * Threads: log_open() sets process-wide state; call it once at start,
 * before any thread exists. The other functions are thread-safe.
 * Async-signal-safety is not provided: do not log from signal handlers.
 */
#ifndef FERRY_COMMON_LOG_H
#define FERRY_COMMON_LOG_H

#include <stddef.h>
#include <syslog.h> /* LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG */

#define LOG_IDENT_MAX  64   /* bytes of an ident, including the NUL; longer ones are cut */
#define LOG_MSG_MAX    2048 /* bytes of a formatted message, including the NUL */
#define LOG_VALUE_MAX  256  /* bytes of a field value */
#define LOG_KEY_MAX    64   /* bytes of a field key (the journal's limit) */
#define LOG_FIELDS_MAX 16   /* fields of one record */
#define LOG_LINE_MAX   4096 /* bytes of one stderr line, newline included (PIPE_BUF) */

/* One structured field, e.g. { "SEQ", "42" }. Both strings are only read. */
struct log_field {
	const char *key;
	const char *value;
};

enum log_sink {
	LOG_SINK_STDERR = 0,
	LOG_SINK_JOURNAL = 1,
};

/*
 * log_open(): name this process's records and choose the sink and the
 * threshold from the environment (see above). ident is the stage name, e.g.
 * "ferryd", "decrypt.1"; NULL or "" means program_invocation_short_name; it
 * is copied (cut to LOG_IDENT_MAX - 1 bytes). May be called again (e.g.
 * after the environment changed); not concurrently with logging.
 * An unknown FERRY_LOG or FERRY_LOG_LEVEL value is reported as a warning
 * and ignored. Before log_open(), records go to stderr at level info under
 * program_invocation_short_name.
 */
void log_open(const char *ident);

/* log_sink(): where records go now (as chosen by log_open()). */
enum log_sink log_sink(void);

/*
 * log_msg(): one record of a syslog priority (LOG_ERR ... LOG_DEBUG;
 * facility bits are ignored) with a printf format. Never fails visibly.
 */
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * log_fields(): log_msg() plus n structured fields (fields may be NULL when
 * n is 0). Invalid fields are dropped as described above.
 */
void log_fields(int priority, const struct log_field *fields, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_err(...)	 log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)	 log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)	 log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	 log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
