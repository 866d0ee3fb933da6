/* Log line formatting (text or JSON lines) to the configured stream. */
#define _GNU_SOURCE
#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void ni_json_escape(FILE *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		default:
			if (*p < 0x20)
				fprintf(out, "\\u%04x", *p);
			else
				fputc(*p, out);
		}
	}
}

/* A log line is built here and written whole: stderr is unbuffered, so stdio would write() every piece,
 * and open_memstream costs more than the line. Lines past the stack buffer go to the heap. */
struct lbuf {
	char *p;
	size_t len, cap;
	bool oom;
	char stack[1024];
};

static void lb_put(struct lbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (n > b->cap - b->len) {
		size_t cap = b->cap * 2;
		char *p;

		while (cap - b->len < n)
			cap *= 2;
		p = b->p == b->stack ? malloc(cap) : realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		if (b->p == b->stack)
			memcpy(p, b->stack, b->len);
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void lb_puts(struct lbuf *b, const char *s)
{
	lb_put(b, s, strlen(s));
}

/* As ni_json_escape, into the line buffer. */
static void lb_json_escape(struct lbuf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t run = 0;
		char esc[8];

		while (p[run] >= 0x20 && p[run] != '"' && p[run] != '\\')
			run++;
		lb_put(b, (const char *)p, run);
		p += run;
		if (!*p)
			break;
		switch (*p) {
		case '\n':
			lb_puts(b, "\\n");
			break;
		case '\r':
			lb_puts(b, "\\r");
			break;
		case '\t':
			lb_puts(b, "\\t");
			break;
		case '"':
		case '\\':
			esc[0] = '\\', esc[1] = (char)*p;
			lb_put(b, esc, 2);
			break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			lb_puts(b, esc);
		}
		p++;
	}
}

/* Text values are quoted when they hold spaces, quotes or '=' so a line stays parseable. */
static void text_value(struct lbuf *b, const char *v)
{
	if (*v && !strpbrk(v, " \t\n\"=")) {
		lb_puts(b, v);
		return;
	}
	lb_put(b, "\"", 1);
	lb_json_escape(b, v);
	lb_put(b, "\"", 1);
}

#define MAX_FIELDS 32

void ni_log_kv(const struct ni_log *log, enum ni_log_level level, const char *msg, const char *const *kv, size_t n)
{
	FILE *out = log && log->out ? log->out : stderr;
	enum ni_log_format format = log ? log->format : NI_LOG_TEXT;
	struct lbuf b;
	struct timeval tv;
	struct tm tm;
	char ts[96];
	int k;

	if (log && level < log->min_level)
		return;
	b.p = b.stack;
	b.len = 0;
	b.cap = sizeof(b.stack);
	b.oom = false;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	if (format == NI_LOG_JSON)
		k = snprintf(ts, sizeof(ts), "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"level\":\"%s\",\"msg\":\"",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			     (int)(tv.tv_usec / 1000), level_names[level]);
	else
		k = snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s ", tm.tm_year + 1900, tm.tm_mon + 1,
			     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000), level_names[level]);
	lb_put(&b, ts, k > 0 && (size_t)k < sizeof(ts) ? (size_t)k : strlen(ts));
	if (format == NI_LOG_JSON) {
		lb_json_escape(&b, msg);
		lb_put(&b, "\"", 1);
	} else {
		lb_puts(&b, msg);
	}
	for (size_t i = 0; i < 2 * n; i += 2) {
		const char *key = kv[i], *v = kv[i + 1];
		if (!v)
			continue;
		if (format == NI_LOG_JSON) {
			lb_put(&b, ",\"", 2);
			lb_json_escape(&b, key);
			lb_put(&b, "\":\"", 3);
			lb_json_escape(&b, v);
			lb_put(&b, "\"", 1);
		} else {
			lb_put(&b, " ", 1);
			lb_puts(&b, key);
			lb_put(&b, "=", 1);
			text_value(&b, v);
		}
	}
	lb_puts(&b, format == NI_LOG_JSON ? "}\n" : "\n");
	if (!b.oom) {
		fwrite(b.p, 1, b.len, out);
		fflush(out);
	}
	if (b.p != b.stack)
		free(b.p);
}

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
