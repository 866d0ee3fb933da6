/* nodeinit's own log lines: timestamped, leveled, key=value fields; text or one JSON object a line. */
#ifndef NI_LOG_H
#define NI_LOG_H

#include <stdio.h>

#include "cli.h"

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
 * Writes one line: msg, then fields as NULL-terminated key, value string pairs. A NULL value
 * skips its key. Never fails the caller: logging is best effort.
 */
void ni_log(const struct ni_log *log, enum ni_log_level level, const char *msg, ...)
	__attribute__((sentinel));

/* The same with the fields as an array of n key, value pairs (NULL values skipped). */
void ni_log_kv(const struct ni_log *log, enum ni_log_level level, const char *msg, const char *const *kv, size_t n);

/* Appends s to out as a JSON string body (no quotes), escaping what JSON requires. */
void ni_json_escape(FILE *out, const char *s);

#endif
