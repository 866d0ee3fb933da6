/* Log line formatting (text or JSON lines) to the configured stream, and the escapers that keep
 * bytes nodeinit did not write (command output, names, recipe strings) from forging lines. */
#define _GNU_SOURCE
#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char *const level_names[] = { "debug", "info", "warn", "error" };
static const char hexdig[] = "0123456789abcdef";

enum esc {
	ESC_TEXT,	 /* C style, quotes left alone (messages, status, plan) */
	ESC_TEXT_QUOTED, /* C style inside "...": quotes escaped too */
	ESC_JSON,
};

/* Code points that are valid UTF-8 yet act on a viewer: C1 controls (0x9b is CSI on some terminals),
 * line and paragraph separators (a new line in some viewers), bidi overrides and isolates. */
static bool cp_unsafe(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

static void put_u(struct ni_buf *b, uint32_t cp)
{
	char e[6] = { '\\', 'u', hexdig[cp >> 12 & 0xf], hexdig[cp >> 8 & 0xf], hexdig[cp >> 4 & 0xf], hexdig[cp & 0xf] };

	ni_buf_put(b, e, sizeof(e));
}

static void put_x(struct ni_buf *b, unsigned char c)
{
	char e[4] = { '\\', 'x', hexdig[c >> 4], hexdig[c & 0xf] };

	ni_buf_put(b, e, sizeof(e));
}

static int escape(struct ni_buf *b, const char *s, size_t n, enum esc how)
{
	const unsigned char *p = (const unsigned char *)s;
	bool esc_quote = how != ESC_TEXT;
	size_t i = 0;

	while (i < n && !b->err) {
		size_t run = i, k;
		uint32_t cp;
		unsigned char c;

		/* Printable ASCII is nearly all of it: copy runs of it whole. */
		while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '\\' && !(esc_quote && p[run] == '"'))
			run++;
		ni_buf_put(b, p + i, run - i);
		i = run;
		if (i == n)
			break;
		c = p[i];
		if (c < 0x80) {
			i++;
			if (c == '\n')
				ni_buf_put(b, "\\n", 2);
			else if (c == '\r')
				ni_buf_put(b, "\\r", 2);
			else if (c == '\t')
				ni_buf_put(b, "\\t", 2);
			else if (c == '\\')
				ni_buf_put(b, "\\\\", 2);
			else if (c == '"')
				ni_buf_put(b, "\\\"", 2);
			else if (how == ESC_JSON)
				put_u(b, c);
			else
				put_x(b, c);
			continue;
		}
		k = ni_utf8_decode(p + i, n - i, &cp);
		if (k == 0) {
			if (how == ESC_JSON)
				ni_buf_put(b, "\\ufffd", 6);
			else
				put_x(b, c);
			i++;
		} else {
			if (cp_unsafe(cp))
				put_u(b, cp);
			else
				ni_buf_put(b, p + i, k);
			i += k;
		}
	}
	return b->err;
}

int ni_escape_text(struct ni_buf *b, const char *s, size_t n)
{
	return escape(b, s, n, ESC_TEXT);
}

int ni_escape_json(struct ni_buf *b, const char *s, size_t n)
{
	return escape(b, s, n, ESC_JSON);
}

/* The longest prefix of s no longer than max that does not end inside a UTF-8 sequence (a cut
 * there would turn a valid character into escapes). A sequence is at most 4 bytes. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
	size_t cut = max;

	if (n <= max)
		return n;
	for (int i = 0; i < 3 && cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80; i++)
		cut--;
	return cut;
}

void ni_json_escape(FILE *out, const char *s)
{
	size_t n = strlen(s);
	char stack[8192];
	struct ni_buf b;

	/* In pieces through a stack buffer: a piece of 1 KiB escapes to at most 6 KiB. */
	while (n > 0) {
		size_t piece = utf8_cut(s, n, 1024);

		ni_buf_init_stack(&b, stack, sizeof(stack), 0);
		ni_escape_json(&b, s, piece);
		if (!b.err)
			fwrite(b.p, 1, b.len, out);
		ni_buf_free(&b);
		s += piece;
		n -= piece;
	}
}

/* At most cap bytes of s, escaped, then `...[N bytes dropped]` when s was longer. */
static void put_capped(struct ni_buf *b, const char *s, size_t n, size_t cap, enum esc how)
{
	size_t keep = utf8_cut(s, n, cap);

	escape(b, s, keep, how);
	if (keep < n) {
		ni_buf_puts(b, "...[");
		ni_buf_put_i64(b, (int64_t)(n - keep));
		ni_buf_puts(b, " bytes dropped]");
	}
}

/* Text values stay bare only when they are plain printable ASCII without '=', quotes or backslashes;
 * anything else is quoted and escaped, so a value never runs into the next field or line. */
static void text_value(struct ni_buf *b, const char *v, size_t n, size_t cap)
{
	bool bare = n > 0 && n <= cap;

	for (size_t i = 0; bare && i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		bare = c > 0x20 && c < 0x7f && c != '"' && c != '=' && c != '\\';
	}
	if (bare) {
		ni_buf_put(b, v, n);
		return;
	}
	ni_buf_putc(b, '"');
	put_capped(b, v, n, cap, ESC_TEXT_QUOTED);
	ni_buf_putc(b, '"');
}

/* Keys come from code or from a recipe's log fields: whatever would end the key shows as \xNN. */
static void text_key(struct ni_buf *b, const char *k)
{
	size_t n = strnlen(k, NI_LOG_KEY_MAX);

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)k[i];
		if (c > 0x20 && c < 0x7f && c != '"' && c != '=' && c != '\\')
			ni_buf_putc(b, (char)c);
		else
			put_x(b, c);
	}
}

static void format_line(struct ni_buf *b, enum ni_log_format format, const char *head, size_t head_len,
			const char *msg, size_t len, const char *const *kv, size_t n, size_t cap)
{
	ni_buf_put(b, head, head_len);
	if (format == NI_LOG_JSON) {
		put_capped(b, msg, len, cap, ESC_JSON);
		ni_buf_putc(b, '"');
	} else {
		put_capped(b, msg, len, cap, ESC_TEXT);
	}
	for (size_t i = 0; i < 2 * n; i += 2) {
		const char *key = kv[i], *v = kv[i + 1];

		if (!v)
			continue;
		if (format == NI_LOG_JSON) {
			ni_buf_put(b, ",\"", 2);
			put_capped(b, key, strlen(key), NI_LOG_KEY_MAX, ESC_JSON);
			ni_buf_put(b, "\":\"", 3);
			put_capped(b, v, strlen(v), cap, ESC_JSON);
			ni_buf_putc(b, '"');
		} else {
			ni_buf_putc(b, ' ');
			text_key(b, key);
			ni_buf_putc(b, '=');
			text_value(b, v, strlen(v), cap);
		}
	}
	ni_buf_puts(b, format == NI_LOG_JSON ? "}\n" : "\n");
}

void ni_log_bytes(const struct ni_log *log, enum ni_log_level level, const char *msg, size_t len,
		  const char *const *kv, size_t n)
{
	FILE *out = log && log->out ? log->out : stderr;
	enum ni_log_format format = log ? log->format : NI_LOG_TEXT;
	/* The line is built here and written whole: stderr is unbuffered, so stdio would write() every
	 * piece. Most lines fit the stack; the limit bounds the rest. */
	char stack[1024], head[96];
	struct ni_buf b;
	struct timeval tv;
	struct tm tm;
	int k;

	if (log && level < log->min_level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	if (format == NI_LOG_JSON)
		k = snprintf(head, sizeof(head), "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"level\":\"%s\",\"msg\":\"",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			     (int)(tv.tv_usec / 1000), level_names[level]);
	else
		k = snprintf(head, sizeof(head), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s ", tm.tm_year + 1900, tm.tm_mon + 1,
			     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000), level_names[level]);
	if (k < 0 || (size_t)k >= sizeof(head))
		return;
	ni_buf_init_stack(&b, stack, sizeof(stack), NI_LOG_LINE_MAX);
	format_line(&b, format, head, (size_t)k, msg, len, kv, n, NI_LOG_VALUE_MAX);
	if (b.err == -E2BIG) {
		/* Many long fields: again with short values, which always fits (33 x 6 KiB plus keys). */
		ni_buf_free(&b);
		ni_buf_init_stack(&b, stack, sizeof(stack), NI_LOG_LINE_MAX);
		format_line(&b, format, head, (size_t)k, msg, len, kv, n, NI_LOG_VALUE_SHORT);
	}
	if (!b.err) {
		fwrite(b.p, 1, b.len, out);
		fflush(out);
	}
	ni_buf_free(&b);
}

void ni_log_kv(const struct ni_log *log, enum ni_log_level level, const char *msg, const char *const *kv, size_t n)
{
	ni_log_bytes(log, level, msg, strlen(msg), kv, n);
}

#define MAX_FIELDS 32

void ni_log(const struct ni_log *log, enum ni_log_level level, const char *msg, ...)
{
	const char *kv[2 * MAX_FIELDS];
	size_t n = 0;
	const char *k;
	va_list ap;

	va_start(ap, msg);
	while (n < MAX_FIELDS && (k = va_arg(ap, const char *))) {
		kv[2 * n] = k;
		kv[2 * n + 1] = va_arg(ap, const char *);
		n++;
	}
	va_end(ap);
	ni_log_kv(log, level, msg, kv, n);
}
