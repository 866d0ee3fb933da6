/* core/util.c — the few mechanisms every other file shares: one growable buffer, clocks, UTF-8, integers. */
#include "util.h"

#include <time.h>

void ni_buf_init_stack(struct ni_buf *b, char *stack, size_t size, size_t limit)
{
	*b = (struct ni_buf){ .p = stack, .cap = size, .limit = limit, .on_stack = true };
}

int ni_buf_reserve(struct ni_buf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->err)
		return b->err;
	if (n <= b->cap - b->len)
		return 0;
	if (n > SIZE_MAX / 2 - b->len || (b->limit && b->len + n > b->limit))
		return b->err = b->limit ? -E2BIG : -ENOMEM;
	cap = b->cap ? b->cap : 256;
	while (cap - b->len < n)
		cap *= 2;
	if (b->limit && cap > b->limit)
		cap = b->limit;
	p = b->on_stack ? malloc(cap) : realloc(b->p, cap);
	if (!p)
		return b->err = -ENOMEM;
	if (b->on_stack && b->len)
		memcpy(p, b->p, b->len);
	b->p = p;
	b->cap = cap;
	b->on_stack = false;
	return 0;
}

int ni_buf_put(struct ni_buf *b, const void *s, size_t n)
{
	int r;

	if (n == 0)
		return b->err;
	r = ni_buf_reserve(b, n);
	if (r < 0)
		return r;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return 0;
}

int ni_buf_put_i64(struct ni_buf *b, int64_t v)
{
	char num[24];

	return ni_buf_put(b, num, ni_i64_dec(v, num));
}

char *ni_buf_steal(struct ni_buf *b, size_t *ret_len)
{
	char *p;

	if (ni_buf_putc(b, '\0') < 0) {
		ni_buf_free(b);
		return NULL;
	}
	if (b->on_stack) {
		p = malloc(b->len);
		if (p)
			memcpy(p, b->p, b->len);
	} else
		p = b->p;
	if (p && ret_len)
		*ret_len = b->len - 1;
	*b = (struct ni_buf){ 0 };
	return p;
}

void ni_buf_free(struct ni_buf *b)
{
	if (!b->on_stack)
		free(b->p);
	*b = (struct ni_buf){ 0 };
}

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ni_now_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

int64_t ni_wall_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

size_t ni_utf8_decode(const void *data, size_t n, uint32_t *ret_cp)
{
	const unsigned char *s = data;
	uint32_t cp, min;
	size_t k;

	if (n == 0)
		return 0;
	if (s[0] < 0x80) {
		*ret_cp = s[0];
		return 1;
	} else if ((s[0] & 0xe0) == 0xc0) {
		k = 1, cp = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		k = 2, cp = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		k = 3, cp = s[0] & 0x07, min = 0x10000;
	} else
		return 0;
	if (n < k + 1)
		return 0;
	for (size_t j = 1; j <= k; j++) {
		if ((s[j] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[j] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*ret_cp = cp;
	return k + 1;
}

bool ni_utf8_valid(const void *data, size_t n)
{
	const unsigned char *s = data;
	uint32_t cp;

	for (size_t i = 0; i < n;) {
		size_t k;

		/* ASCII runs are most of what is checked: skip the decoder for them. */
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		k = ni_utf8_decode(s + i, n - i, &cp);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

int ni_parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
	bool neg;
	uint64_t v = 0, lim;
	int64_t x;

	if (!s)
		return -EINVAL;
	neg = *s == '-';
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	s += neg;
	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (lim - (uint64_t)(*s - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	x = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
	if (x < min || x > max)
		return -ERANGE;
	*ret = x;
	return 0;
}
