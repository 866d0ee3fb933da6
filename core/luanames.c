/* The global names a piece of Lua source can mention: a small lexer for step fingerprints. */
#include "luanames.h"

#include <stdbool.h>
#include <string.h>

#include "util.h"

static bool is_name_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(unsigned char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9');
}

static bool is_keyword(const char *s, size_t n)
{
	static const char *const kw[] = { "and", "break", "do", "else", "elseif", "end", "false", "for",
					  "function", "goto", "if", "in", "local", "nil", "not", "or",
					  "repeat", "return", "then", "true", "until", "while" };

	for (size_t i = 0; i < NI_ELEMENTSOF(kw); i++)
		if (strlen(kw[i]) == n && memcmp(kw[i], s, n) == 0)
			return true;
	return false;
}

/* At s[i] == '[': the level of a long bracket "[==[" opening there, or -1. */
static long long_open(const char *s, size_t n, size_t i)
{
	size_t j = i + 1;

	while (j < n && s[j] == '=')
		j++;
	return j < n && s[j] == '[' ? (long)(j - i - 1) : -1;
}

/* Past the "]==]" closing a long bracket of level lvl whose opening starts at s[i]. */
static size_t long_skip(const char *s, size_t n, size_t i, long lvl)
{
	for (i += (size_t)lvl + 2; i < n; i++) {
		size_t j = i + 1;

		if (s[i] != ']')
			continue;
		while (j < n && s[j] == '=')
			j++;
		if (j < n && s[j] == ']' && (long)(j - i - 1) == lvl)
			return j + 1;
	}
	return n;
}

void ni_lua_global_names(const char *s, size_t n, ni_name_fn fn, void *ud)
{
	bool field = false; /* the last token was '.' or ':' */
	size_t i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		long lvl;

		if (c == '-' && i + 1 < n && s[i + 1] == '-') {
			i += 2;
			if (i < n && s[i] == '[' && (lvl = long_open(s, n, i)) >= 0)
				i = long_skip(s, n, i, lvl);
			else
				while (i < n && s[i] != '\n')
					i++;
		} else if (c == '[' && (lvl = long_open(s, n, i)) >= 0) {
			i = long_skip(s, n, i, lvl);
			field = false;
		} else if (c == '"' || c == '\'') {
			for (i++; i < n && (unsigned char)s[i] != c && s[i] != '\n'; i++)
				if (s[i] == '\\')
					i++; /* an escaped quote or newline stays inside */
			i++;
			field = false;
		} else if ((c >= '0' && c <= '9') || (c == '.' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9')) {
			for (i++; i < n; i++) {
				if ((s[i] == '+' || s[i] == '-') && strchr("eEpP", s[i - 1]))
					continue;
				if (!is_name_char((unsigned char)s[i]) && s[i] != '.')
					break;
			}
			field = false;
		} else if (c == '.' || c == ':') {
			size_t j = i;

			while (j < n && s[j] == c)
				j++;
			field = j - i == 1; /* ".." and "..." are operators, "::" a label */
			i = j;
		} else if (is_name_start(c)) {
			size_t j = i;

			while (j < n && is_name_char((unsigned char)s[j]))
				j++;
			if (!field && !is_keyword(s + i, j - i))
				fn(ud, s + i, j - i);
			field = false;
			i = j;
		} else {
			if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v')
				field = false;
			i++;
		}
	}
}

