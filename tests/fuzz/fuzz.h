/* What every libFuzzer target here shares: the entry point's prototype, CHECK, and splitting an input into words. */
#ifndef NI_FUZZ_H
#define NI_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken property is a crash, which is what libFuzzer reports and keeps. */
#define CHECK(cond) \
	do { \
		if (!(cond)) \
			abort(); \
	} while (0)

/*
 * The NUL-separated words of text (len bytes, text[len] == '\0'), at most max of them, into words:
 * an empty text is one empty word. Returns how many.
 */
static inline size_t fuzz_words(char *text, size_t len, char **words, size_t max)
{
	size_t n = 0;

	for (char *p = text; p < text + len + 1 && n < max; p += strlen(p) + 1)
		words[n++] = p;
	return n;
}

#endif
