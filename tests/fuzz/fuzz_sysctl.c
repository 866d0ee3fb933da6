/* libFuzzer target for sysctl keys: ni_sysctl_normalize only lets through paths that stay under
 * /proc/sys, and ni_sysctl_value_equal is an equivalence. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sysctl.h"

static void check_path(const char *key, const char *path)
{
	size_t n = strlen(path);
	const char *part = path;

	CHECK(n == strlen(key) && n > 0 && n <= NI_SYSCTL_KEY_MAX);
	CHECK(path[0] != '/' && path[n - 1] != '/');
	CHECK(!strstr(path, "//"));
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		CHECK(*p > 0x20 && *p != 0x7f);
	/* no "." or ".." component: the path never leaves /proc/sys */
	for (;;) {
		const char *end = strchrnul(part, '/');
		size_t len = (size_t)(end - part);

		CHECK(len > 0);
		CHECK(!(len == 1 && part[0] == '.'));
		CHECK(!(len == 2 && part[0] == '.' && part[1] == '.'));
		if (!*end)
			break;
		part = end + 1;
	}
	/* the dotted form maps dots to slashes and nothing else */
	if (!strchr(key, '/'))
		for (size_t i = 0; i < n; i++)
			CHECK(path[i] == (key[i] == '.' ? '/' : key[i]));
	else
		CHECK(strcmp(key, path) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *a, *b, path[NI_SYSCTL_KEY_MAX + 1];
	const uint8_t *nul = memchr(data, '\0', size);
	size_t alen = nul ? (size_t)(nul - data) : size;

	a = strndup((const char *)data, alen);
	b = strndup(nul ? (const char *)nul + 1 : "", nul ? size - alen - 1 : 0);
	if (!a || !b)
		goto out;
	memset(path, 0xAA, sizeof(path));
	if (ni_sysctl_normalize(a, path) == 0)
		check_path(a, path);
	CHECK(ni_sysctl_value_equal(a, a));
	CHECK(ni_sysctl_value_equal(a, b) == ni_sysctl_value_equal(b, a));
out:
	free(a);
	free(b);
	return 0;
}
