/* libFuzzer target for the `nsenter` personality's argument parser (ni_nsenter_parse): NUL-separated words. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ns.h"
#include "nsenter.h"

#define MAX_WORDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[MAX_WORDS + 2], err[256];
	struct ni_nsenter_args a;
	char *copy = malloc(size + 1);
	int argc = 0, r;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[argc++] = (char *)"nsenter";
	if (size > 0)
		argc += (int)fuzz_words(copy, size, argv + 1, MAX_WORDS - 1);
	argv[argc] = NULL;

	memset(err, 0, sizeof(err));
	r = ni_nsenter_parse(argc, argv, &a, err, sizeof(err));
	CHECK(r == 0 || r == -EINVAL);
	if (r < 0) {
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
	} else {
		CHECK(a.target > 0);
		CHECK(a.mask != 0 && (a.mask & ~NI_NS_ALL) == 0);
		CHECK(a.command_index >= 1 && a.command_index <= argc);
	}
	free(copy);
	return 0;
}
