/* Small helpers shared by the pure C layer: scoped cleanup, ownership transfer, errno-safe close. */
#ifndef NI_UTIL_H
#define NI_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NI_ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* close() that keeps errno, so it can sit on an error path. */
static inline int ni_safe_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -1;
}

static inline void ni_closep(int *fd) { ni_safe_close(*fd); }
static inline void ni_freep(void *p) { free(*(void **)p); }

#define _cleanup_close_ __attribute__((cleanup(ni_closep)))
#define _cleanup_free_ __attribute__((cleanup(ni_freep)))

/* Hand ownership out of a cleanup-scoped variable. */
#define steal_pointer(pp) ({ __typeof__(*(pp)) _p = *(pp); *(pp) = NULL; _p; })
#define steal_fd(fdp) ({ int _fd = *(fdp); *(fdp) = -1; _fd; })

/* Frees n strings and the array holding them. */
static inline void ni_strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static inline bool ni_streq(const char *a, const char *b) { return strcmp(a, b) == 0; }

/* v in decimal into buf (at least 21 bytes), NUL-terminated; returns the length. snprintf costs ~1k
 * instructions a number, and the journal and fingerprint material format several per step. */
static inline size_t ni_i64_dec(int64_t v, char *buf)
{
	char tmp[21];
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	size_t n = 0, len = 0;

	do
		tmp[n++] = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		buf[len++] = '-';
	while (n)
		buf[len++] = tmp[--n];
	buf[len] = '\0';
	return len;
}

#endif
