/* Log line formatting (text or JSON lines) to the configured stream. */
#define _GNU_SOURCE
#include "log.h"

#include <stdarg.h>
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

/* Text values are quoted when they hold spaces, quotes or '=' so a line stays parseable. */
static void text_value(FILE *out, const char *v)
{
	if (*v && !strpbrk(v, " \t\n\"=")) {
		fputs(v, out);
		return;
	}
	fputc('"', out);
	ni_json_escape(out, v);
	fputc('"', out);
}

void ni_log(const struct ni_log *log, enum ni_log_level level, const char *msg, ...)
{
	FILE *out = log && log->out ? log->out : stderr;
	enum ni_log_format format = log ? log->format : NI_LOG_TEXT;
	struct timeval tv;
	struct tm tm;
	char ts[64];
	va_list ap;
	const char *k, *v;

	if (log && level < log->min_level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));

	flockfile(out);
	if (format == NI_LOG_JSON) {
		fprintf(out, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, level_names[level]);
		ni_json_escape(out, msg);
		fputc('"', out);
	} else {
		fprintf(out, "%s %-5s %s", ts, level_names[level], msg);
	}
	va_start(ap, msg);
	while ((k = va_arg(ap, const char *))) {
		v = va_arg(ap, const char *);
		if (!v)
			continue;
		if (format == NI_LOG_JSON) {
			fputs(",\"", out);
			ni_json_escape(out, k);
			fputs("\":\"", out);
			ni_json_escape(out, v);
			fputc('"', out);
		} else {
			fprintf(out, " %s=", k);
			text_value(out, v);
		}
	}
	va_end(ap);
	fputs(format == NI_LOG_JSON ? "}\n" : "\n", out);
	fflush(out);
	funlockfile(out);
}
