/* nodeinit's own log lines: timestamped, leveled, key=value fields; text or one JSON object a line. */
#ifndef NI_LOG_H
#define NI_LOG_H

#include <stdio.h>

#include "cli.h"
#include "util.h"

enum ni_log_level {
	NI_LOG_DEBUG,
	NI_LOG_INFO,
	NI_LOG_WARN,
	NI_LOG_ERROR,
};

struct ni_log {
	enum ni_log_format format;
	enum ni_log_level min_level;
	FILE *out;
};

/*
 * Bytes of one message or field value that reach a log line; the rest is dropped and the line
 * says so: `...[N bytes dropped]` at the end of that message or value. Escaping can grow a byte
 * six-fold, so this is what keeps a line's memory bounded whatever a recipe logs. A line whose
 * fields together would pass NI_LOG_LINE_MAX is formatted again with NI_LOG_VALUE_SHORT per value.
 */
#define NI_LOG_VALUE_MAX (16u * 1024)
#define NI_LOG_VALUE_SHORT 1024u
#define NI_LOG_KEY_MAX 256u
#define NI_LOG_LINE_MAX (512u * 1024)

/*
 * Writes one line: msg, then fields as NULL-terminated key, value string pairs. A NULL value
 * skips its key. Never fails the caller: logging is best effort.
 */
void ni_log(const struct ni_log *log, enum ni_log_level level, const char *msg, ...)
	__attribute__((sentinel));

/* The same with the fields as an array of n key, value pairs (NULL values skipped). */
void ni_log_kv(const struct ni_log *log, enum ni_log_level level, const char *msg, const char *const *kv, size_t n);

/* As ni_log_kv, with a message of len bytes that may hold any byte, NUL included (command output,
 * print()). A newline in it is escaped like any control byte: split lines before calling. */
void ni_log_bytes(const struct ni_log *log, enum ni_log_level level, const char *msg, size_t len,
		  const char *const *kv, size_t n);

/*
 * The two escapers, for every place that prints text it did not write (log lines, status, plan).
 * Both append n bytes of s to b so that no byte can end a line, move the cursor or change a
 * terminal's state, and return b's sticky error (0, -ENOMEM, or -E2BIG past its limit).
 *
 * ni_escape_text: C style. `\n`, `\r`, `\t`, `\\`; other ASCII controls and DEL as `\xNN`; a byte
 * that is not part of valid UTF-8 as `\xNN` too; C1 controls (U+0080..U+009F), the line and
 * paragraph separators (U+2028, U+2029) and the bidi overrides and isolates (U+202A..U+202E,
 * U+2066..U+2069) as `\uXXXX`. Quotes are left alone (a caller that quotes escapes them). The
 * result is valid UTF-8.
 *
 * ni_escape_json: a JSON string body (no quotes): `\"`, `\\`, `\n`, `\r`, `\t`; other controls,
 * DEL and the code points above as `\u00XX`/`\uXXXX`; every byte that is not part of valid UTF-8
 * becomes `\ufffd` (the replacement character). The result is always valid JSON.
 */
int ni_escape_text(struct ni_buf *b, const char *s, size_t n);
int ni_escape_json(struct ni_buf *b, const char *s, size_t n);

/* Appends s to out as a JSON string body (no quotes), as ni_escape_json, in bounded memory. */
void ni_json_escape(FILE *out, const char *s);

#endif
