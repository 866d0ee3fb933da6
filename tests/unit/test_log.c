/* Log lines (log.c): the two escapers, quoting of text values, bounded lines, and the UTF-8 decoder
 * step they share with ni_utf8_valid (util.c). */
#define _GNU_SOURCE
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* The escaped form of n bytes of s, as a NUL-terminated heap string. */
static char *esc(int (*fn)(struct ni_buf *, const char *, size_t), const char *s, size_t n)
{
	struct ni_buf b = NI_BUF_INIT(0);
	char *out;

	assert_int_equal(fn(&b, s, n), 0);
	out = ni_buf_steal(&b, NULL);
	assert_non_null(out);
	return out;
}

#define ESC_EQ(fn, lit, want)                                      \
	do {                                                       \
		char *_got = esc(fn, lit, sizeof(lit) - 1);        \
		assert_string_equal(_got, want);                   \
		free(_got);                                        \
	} while (0)

static void test_escape_text(void **state)
{
	(void)state;
	ESC_EQ(ni_escape_text, "plain words, 'quotes\" and = stay", "plain words, 'quotes\" and = stay");
	ESC_EQ(ni_escape_text, "a\nb\rc\td", "a\\nb\\rc\\td");
	ESC_EQ(ni_escape_text, "\x1b[2J\a\x7f", "\\x1b[2J\\x07\\x7f");
	ESC_EQ(ni_escape_text, "nul\0here", "nul\\x00here");
	ESC_EQ(ni_escape_text, "back\\slash", "back\\\\slash");
	/* Valid UTF-8 stays; invalid bytes show their value; C1, separators and bidi become \u. */
	ESC_EQ(ni_escape_text, "caf\xc3\xa9 \xe2\x9c\x93", "caf\xc3\xa9 \xe2\x9c\x93");
	ESC_EQ(ni_escape_text, "bad \xff\xfe \xc3", "bad \\xff\\xfe \\xc3");
	ESC_EQ(ni_escape_text, "\xc2\x9b" "31m", "\\u009b31m");
	ESC_EQ(ni_escape_text, "a\xe2\x80\xa8" "b\xe2\x80\xae" "c\xe2\x81\xa9", "a\\u2028b\\u202ec\\u2069");
	ESC_EQ(ni_escape_text, "\xc0\xaf overlong", "\\xc0\\xaf overlong");
	ESC_EQ(ni_escape_text, "\xed\xa0\x80 surrogate", "\\xed\\xa0\\x80 surrogate");
	ESC_EQ(ni_escape_text, "", "");
}

static void test_escape_json(void **state)
{
	(void)state;
	ESC_EQ(ni_escape_json, "say \"hi\" \\ /", "say \\\"hi\\\" \\\\ /");
	ESC_EQ(ni_escape_json, "a\nb\rc\td", "a\\nb\\rc\\td");
	ESC_EQ(ni_escape_json, "\x1b\a\x7f\x01", "\\u001b\\u0007\\u007f\\u0001");
	ESC_EQ(ni_escape_json, "nul\0here", "nul\\u0000here");
	ESC_EQ(ni_escape_json, "caf\xc3\xa9", "caf\xc3\xa9");
	/* Each byte that is not part of valid UTF-8 becomes U+FFFD. */
	ESC_EQ(ni_escape_json, "bad \xff\xfe end", "bad \\ufffd\\ufffd end");
	ESC_EQ(ni_escape_json, "cut \xe2\x9c", "cut \\ufffd\\ufffd");
	ESC_EQ(ni_escape_json, "\xc2\x85 \xe2\x80\xa9", "\\u0085 \\u2029");
}

/* The escapers stop at the buffer's limit with its sticky error. */
static void test_escape_limit(void **state)
{
	struct ni_buf b = NI_BUF_INIT(64);
	char in[100];

	(void)state;
	memset(in, 1, sizeof(in));
	assert_int_equal(ni_escape_json(&b, in, sizeof(in)), -E2BIG);
	assert_true(b.len <= 64);
	ni_buf_free(&b);
}

/* One log line into a memory stream, returned without its time stamp. */
static char *line(enum ni_log_format format, const char *msg, size_t len, const char *const *kv, size_t n)
{
	char *buf = NULL, *out;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	struct ni_log log = { .format = format, .min_level = NI_LOG_DEBUG, .out = f };

	assert_non_null(f);
	ni_log_bytes(&log, NI_LOG_INFO, msg, len, kv, n);
	fclose(f);
	assert_true(size > 30);
	/* text: "2024-01-01T00:00:00.000Z info  ..."; json: {"time":"...", ...} */
	out = strdup(format == NI_LOG_JSON ? strstr(buf, "\"level\"") : buf + 25);
	free(buf);
	return out;
}

static void test_text_line(void **state)
{
	const char *kv[] = { "plain", "v1", "blank", "a b", "quote", "say \"hi\"", "eq", "k=v", "empty", "",
			     "ctl", "x\x1b]0;t\ay", "nl", "one\ntwo", "bs", "c:\\dir", "utf8", "caf\xc3\xa9", "skip", NULL,
			     "bad key=", "1" };
	static const char msg[] = "out\x1b[2J\r\nforged step done \"q\"";
	char *got = line(NI_LOG_TEXT, msg, sizeof(msg) - 1, kv, NI_ELEMENTSOF(kv) / 2);

	(void)state;
	assert_string_equal(got, "info  out\\x1b[2J\\r\\nforged step done \"q\" plain=v1 blank=\"a b\" "
				 "quote=\"say \\\"hi\\\"\" eq=\"k=v\" empty=\"\" ctl=\"x\\x1b]0;t\\x07y\" "
				 "nl=\"one\\ntwo\" bs=\"c:\\\\dir\" utf8=\"caf\xc3\xa9\" bad\\x20key\\x3d=1\n");
	free(got);
}

static void test_json_line(void **state)
{
	const char *kv[] = { "step", "r/s", "v", "\xff\x01\"", "k\"ey", "x" };
	static const char msg[] = "a\0b\xfe";
	char *got = line(NI_LOG_JSON, msg, sizeof(msg) - 1, kv, NI_ELEMENTSOF(kv) / 2);

	(void)state;
	assert_string_equal(got, "\"level\":\"info\",\"msg\":\"a\\u0000b\\ufffd\",\"step\":\"r/s\","
				 "\"v\":\"\\ufffd\\u0001\\\"\",\"k\\\"ey\":\"x\"}\n");
	free(got);
}

/* A huge value keeps NI_LOG_VALUE_MAX bytes and says how many it dropped; the line stays bounded. */
static void test_value_truncated(void **state)
{
	size_t big = 24u << 20;
	char *v = malloc(big + 1), *got, want[64];
	const char *kv[] = { "v", v };

	(void)state;
	assert_non_null(v);
	memset(v, 1, big);
	v[big] = '\0';
	got = line(NI_LOG_JSON, "m", 1, kv, 1);
	snprintf(want, sizeof(want), "...[%zu bytes dropped]\"}\n", big - NI_LOG_VALUE_MAX);
	assert_non_null(strstr(got, want));
	assert_true(strlen(got) < 6 * NI_LOG_VALUE_MAX + 200);
	free(got);
	got = line(NI_LOG_TEXT, v, big, NULL, 0);
	assert_int_equal(strlen(got), strlen("info  ") + 4 * NI_LOG_VALUE_MAX + strlen(want) - 3 + 1);
	free(got);
	free(v);
}

/* A cut never splits a character: 'é' is two bytes, so the kept part is whole characters. */
static void test_truncation_keeps_utf8(void **state)
{
	size_t n = 1 + 2 * 8200;
	char *v = malloc(n + 1), *got;
	const char *kv[] = { "v", v };

	(void)state;
	assert_non_null(v);
	v[0] = 'x'; /* so that the cut at NI_LOG_VALUE_MAX falls inside a character */
	for (size_t i = 1; i < n; i += 2)
		v[i] = '\xc3', v[i + 1] = '\xa9';
	v[n] = '\0';
	got = line(NI_LOG_JSON, "m", 1, kv, 1);
	assert_null(strstr(got, "\\ufffd"));
	assert_non_null(strstr(got, "\xc3\xa9...[18 bytes dropped]"));
	free(got);
	free(v);
}

/* Many long fields of control bytes: past NI_LOG_LINE_MAX the line is made again with short values,
 * and still written. */
static void test_many_long_fields(void **state)
{
	char *v = malloc(NI_LOG_VALUE_MAX + 1), *got;
	const char *kv[64];

	(void)state;
	assert_non_null(v);
	memset(v, 2, NI_LOG_VALUE_MAX);
	v[NI_LOG_VALUE_MAX] = '\0';
	for (size_t i = 0; i < 32; i++)
		kv[2 * i] = "k", kv[2 * i + 1] = v;
	got = line(NI_LOG_JSON, v, NI_LOG_VALUE_MAX, kv, 32);
	assert_true(strlen(got) < NI_LOG_LINE_MAX);
	assert_non_null(strstr(got, "bytes dropped]"));
	assert_string_equal(got + strlen(got) - 2, "}\n");
	free(got);
	free(v);
}

/* ni_json_escape (FILE) escapes in pieces: a character across a piece boundary stays whole. */
static void test_json_escape_file(void **state)
{
	size_t n = 5000;
	char *s = malloc(n + 1), *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	(void)state;
	assert_non_null(s);
	s[0] = 'a';
	for (size_t i = 1; i + 1 < n; i += 2)
		s[i] = '\xc3', s[i + 1] = '\xa9';
	s[n - 1] = '\n';
	s[n] = '\0';
	ni_json_escape(f, s);
	fclose(f);
	assert_null(strstr(buf, "\\ufffd"));
	assert_int_equal(size, n - 1 + 2);
	assert_string_equal(buf + size - 2, "\\n");
	free(buf);
	free(s);
}

static void test_utf8_decode(void **state)
{
	uint32_t cp = 0;

	(void)state;
	assert_int_equal(ni_utf8_decode("A", 1, &cp), 1);
	assert_int_equal(cp, 'A');
	assert_int_equal(ni_utf8_decode("\xc3\xa9", 2, &cp), 2);
	assert_int_equal(cp, 0xe9);
	assert_int_equal(ni_utf8_decode("\xe2\x80\xa8", 3, &cp), 3);
	assert_int_equal(cp, 0x2028);
	assert_int_equal(ni_utf8_decode("\xf0\x9f\x98\x80", 4, &cp), 4);
	assert_int_equal(cp, 0x1f600);
	assert_int_equal(ni_utf8_decode("\xc3\xa9", 1, &cp), 0);	    /* cut short */
	assert_int_equal(ni_utf8_decode("\xc0\x80", 2, &cp), 0);	    /* overlong */
	assert_int_equal(ni_utf8_decode("\xed\xa0\x80", 3, &cp), 0);    /* surrogate */
	assert_int_equal(ni_utf8_decode("\xf4\x90\x80\x80", 4, &cp), 0); /* past U+10FFFF */
	assert_int_equal(ni_utf8_decode("\x80", 1, &cp), 0);
	assert_int_equal(ni_utf8_decode("", 0, &cp), 0);
	assert_true(ni_utf8_valid("caf\xc3\xa9 \xf0\x9f\x98\x80", 10));
	assert_false(ni_utf8_valid("caf\xc3", 4));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_text),	    cmocka_unit_test(test_escape_json),
		cmocka_unit_test(test_escape_limit),	    cmocka_unit_test(test_text_line),
		cmocka_unit_test(test_json_line),	    cmocka_unit_test(test_value_truncated),
		cmocka_unit_test(test_truncation_keeps_utf8), cmocka_unit_test(test_many_long_fields),
		cmocka_unit_test(test_json_escape_file),    cmocka_unit_test(test_utf8_decode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
