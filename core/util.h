/* Small helpers shared by the pure C layer: scoped cleanup, ownership transfer, errno-safe close, and
 * (util.c) the one growable buffer, the clocks, UTF-8 validation and strict integer parsing. */
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

/*
 * The one growable buffer. Errors are sticky: after a failed put every later put is a no-op that
 * returns the same error, so a caller may build a whole line and check once (ni_buf_put's result, or
 * b->err). limit (0: none) bounds the content: a put past it fails with -E2BIG, which is how callers
 * keep memory outside the Lua allocator's cap bounded. A buffer may start on caller storage
 * (ni_buf_init_stack) and moves to the heap when it outgrows it.
 */
struct ni_buf {
	char *p;
	size_t len, cap;
	size_t limit;
	int err; /* 0, -ENOMEM or -E2BIG */
	bool on_stack;
};
#define NI_BUF_INIT(lim) ((struct ni_buf){ .limit = (lim) })
void ni_buf_init_stack(struct ni_buf *b, char *stack, size_t size, size_t limit);
int ni_buf_reserve(struct ni_buf *b, size_t n); /* room for n more bytes */
int ni_buf_put(struct ni_buf *b, const void *s, size_t n);
static inline int ni_buf_puts(struct ni_buf *b, const char *s) { return ni_buf_put(b, s, strlen(s)); }
static inline int ni_buf_putc(struct ni_buf *b, char c) { return ni_buf_put(b, &c, 1); }
int ni_buf_put_i64(struct ni_buf *b, int64_t v); /* decimal */
/* NUL-terminates and hands the heap copy out (len without the NUL in *ret_len); NULL on error, and the
 * buffer is freed either way. */
char *ni_buf_steal(struct ni_buf *b, size_t *ret_len);
void ni_buf_free(struct ni_buf *b);

/* The two clocks: monotonic for deadlines and durations, wall for what is recorded and shown. */
int64_t ni_now_ms(void);
int64_t ni_wall_ms(void);

/* Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. */
bool ni_utf8_valid(const void *s, size_t n);
/* One step of the same decoder: the length (1-4) of the valid sequence that starts s (n bytes
 * available) with its code point in *ret_cp, or 0 when the bytes there are not valid UTF-8. */
size_t ni_utf8_decode(const void *s, size_t n, uint32_t *ret_cp);

/* Strict decimal: optional '-', digits only, in [min, max]; -EINVAL for a non-number, -ERANGE outside. */
int ni_parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret);

#endif
