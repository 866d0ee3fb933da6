/* The fingerprint cache (cache.h): a text file of each recipe file's steps, keyed by content and what its
 * load-time code read, checked whole (a checksum line) before any of it is believed. */
#define _GNU_SOURCE
#include "cache.h"

#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <sys/stat.h>

#include "embed.h"

#define CACHE_MAGIC "nodeinit-cache 1"
#define SUM_LEN 16 /* hex digits of the checksum */

/*
 * The checksum line catches a damaged or cut file, not a forger (the file is root's, statedir.h):
 * 64-bit FNV-1a, about 5 instructions a byte where SHA-256 costs 70, and a no-op apply of 1000
 * steps reads some 90 KB of cache.
 */
static void checksum(const char *p, size_t n, char ret[static SUM_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ull;
	}
	for (int i = SUM_LEN - 1; i >= 0; i--, h >>= 4)
		ret[i] = hex[h & 0xf];
	ret[SUM_LEN] = '\0';
}

int ni_cache_key(int proc_fd, char ret_key[static NI_SHA256_HEX_LEN + 1])
{
	struct ni_buf b = NI_BUF_INIT(0);
	struct stat st;

	if (fstatat(proc_fd, "self/exe", &st, 0) < 0)
		return -errno;
	ni_buf_puts(&b, CACHE_MAGIC "\n" NI_VERSION "\n" LUA_RELEASE "\n");
	ni_buf_put_i64(&b, (int64_t)st.st_dev);
	ni_buf_putc(&b, ' ');
	ni_buf_put_i64(&b, (int64_t)st.st_ino);
	ni_buf_putc(&b, ' ');
	ni_buf_put_i64(&b, (int64_t)st.st_size);
	ni_buf_putc(&b, ' ');
	ni_buf_put_i64(&b, (int64_t)st.st_mtim.tv_sec);
	ni_buf_putc(&b, '.');
	ni_buf_put_i64(&b, (int64_t)st.st_mtim.tv_nsec);
	ni_buf_putc(&b, '\n');
	ni_buf_puts(&b, ni_embedded_lua_sha256); /* computed at build time: hashing 40 KB here cost a no-op apply 1.3M instructions */
	ni_buf_putc(&b, '\n');
	if (b.err) {
		int r = b.err;
		ni_buf_free(&b);
		return r;
	}
	ni_sha256_hex(b.p, b.len, ret_key);
	ni_buf_free(&b);
	return 0;
}

void ni_cache_env_hash(const char *name, char ret[static NI_SHA256_HEX_LEN + 1])
{
	const char *v = getenv(name);

	if (!v) {
		snprintf(ret, NI_SHA256_HEX_LEN + 1, "-");
		return;
	}
	/* a hash, not the value: an environment variable may hold a secret, and the cache is a host file */
	ni_sha256_hex(v, strlen(v), ret);
}

/* A name the line format can carry: it is the rest of its line. */
static bool name_ok(const char *s)
{
	return s && *s && !strchr(s, '\n') && ni_utf8_valid(s, strlen(s));
}

static bool file_ok(const struct ni_recipe_set *set, const struct ni_recipe_file *f)
{
	if (!f->cacheable || !name_ok(f->name))
		return false;
	for (size_t i = 0; i < f->n_env; i++)
		if (!name_ok(f->env[i]))
			return false;
	for (size_t i = 0; i < set->n; i++) {
		const struct ni_recipe *rc = &set->recipes[i];
		if (!ni_streq(rc->file, f->name))
			continue;
		if (!name_ok(rc->name))
			return false;
		for (size_t k = 0; k < rc->n_steps; k++)
			if (!name_ok(rc->steps[k].name) || !ni_when_name(rc->steps[k].when))
				return false;
	}
	return true;
}

int ni_cache_format(const char *key, const struct ni_recipe_set *set, struct ni_buf *out)
{
	char h[NI_SHA256_HEX_LEN + 1];
	size_t start = out->len;

	ni_buf_puts(out, CACHE_MAGIC " ");
	ni_buf_puts(out, key);
	ni_buf_putc(out, '\n');
	for (size_t f = 0; f < set->n_files; f++) {
		const struct ni_recipe_file *rf = &set->files[f];

		if (!file_ok(set, rf))
			continue;
		ni_buf_puts(out, "file ");
		ni_buf_puts(out, rf->hash);
		ni_buf_putc(out, ' ');
		ni_buf_puts(out, rf->name);
		ni_buf_putc(out, '\n');
		for (size_t i = 0; i < rf->n_env; i++) {
			ni_cache_env_hash(rf->env[i], h);
			ni_buf_puts(out, "env ");
			ni_buf_puts(out, h);
			ni_buf_putc(out, ' ');
			ni_buf_puts(out, rf->env[i]);
			ni_buf_putc(out, '\n');
		}
		for (size_t i = 0; i < set->n; i++) {
			const struct ni_recipe *rc = &set->recipes[i];
			if (!ni_streq(rc->file, rf->name))
				continue;
			ni_buf_puts(out, "recipe ");
			ni_buf_puts(out, rc->name);
			ni_buf_putc(out, '\n');
			for (size_t k = 0; k < rc->n_steps; k++) {
				ni_buf_puts(out, "step ");
				ni_buf_puts(out, ni_when_name(rc->steps[k].when));
				ni_buf_putc(out, ' ');
				ni_buf_puts(out, rc->steps[k].fingerprint);
				ni_buf_putc(out, ' ');
				ni_buf_puts(out, rc->steps[k].name);
				ni_buf_putc(out, '\n');
			}
		}
	}
	if (out->err)
		return out->err;
	checksum(out->p + start, out->len - start, h);
	ni_buf_puts(out, "sum ");
	ni_buf_puts(out, h);
	ni_buf_putc(out, '\n');
	return out->err;
}

static bool is_hex64(const char *s, size_t n)
{
	if (n != NI_SHA256_HEX_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Splits "WORD REST" at the first space: *ret_rest after it; false when there is no space or an empty rest. */
static bool split(const char *s, size_t n, size_t *ret_word, const char **ret_rest, size_t *ret_rest_n)
{
	const char *sp = memchr(s, ' ', n);

	if (!sp || sp == s || (size_t)(sp - s) + 1 >= n)
		return false;
	*ret_word = (size_t)(sp - s);
	*ret_rest = sp + 1;
	*ret_rest_n = n - *ret_word - 1;
	return true;
}

static bool word_is(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && memcmp(s, w, n) == 0;
}

struct lookup {
	const char *key;
	const struct ni_recipe_file *files;
	size_t n_files;
	size_t file;      /* files[file - 1] is the current one; 0 before the first */
	bool stale;       /* something differs: the answer is -ESTALE once the text proves well-formed */
	struct ni_recipe_set *set;
};

static int take_line(struct lookup *lk, const char *line, size_t n)
{
	const char *rest, *rest2;
	size_t w, w2, n_rest, n_rest2;
	struct ni_recipe *rc;

	if (!split(line, n, &w, &rest, &n_rest) || memchr(line, '\0', n))
		return -EBADMSG;
	if (word_is(line, w, "file")) {
		if (!split(rest, n_rest, &w2, &rest2, &n_rest2) || !is_hex64(rest, w2))
			return -EBADMSG;
		if (lk->file >= lk->n_files || !word_is(rest2, n_rest2, lk->files[lk->file].name) ||
		    memcmp(rest, lk->files[lk->file].hash, NI_SHA256_HEX_LEN) != 0)
			lk->stale = true;
		lk->file++;
		return 0;
	}
	if (lk->file == 0)
		return -EBADMSG;
	if (word_is(line, w, "env")) {
		char h[NI_SHA256_HEX_LEN + 1], *name;

		if (!split(rest, n_rest, &w2, &rest2, &n_rest2) || !(word_is(rest, w2, "-") || is_hex64(rest, w2)))
			return -EBADMSG;
		if (lk->stale)
			return 0;
		name = strndup(rest2, n_rest2);
		if (!name)
			return -ENOMEM;
		ni_cache_env_hash(name, h);
		free(name);
		if (!word_is(rest, w2, h))
			lk->stale = true;
		return 0;
	}
	if (word_is(line, w, "recipe")) {
		struct ni_recipe *nv;

		if (lk->stale)
			return 0;
		nv = realloc(lk->set->recipes, (lk->set->n + 1) * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		lk->set->recipes = nv;
		rc = &nv[lk->set->n++];
		*rc = (struct ni_recipe){ 0 };
		rc->name = strndup(rest, n_rest);
		rc->file = strdup(lk->files[lk->file - 1].name); /* not stale: file <= n_files */
		return rc->name && rc->file ? 0 : -ENOMEM;
	}
	if (word_is(line, w, "step")) {
		const char *fp;
		size_t w3, n_rest3;
		struct ni_step *s, *nv;
		enum ni_when when;

		if (!split(rest, n_rest, &w2, &rest2, &n_rest2) ||
		    !split(rest2, n_rest2, &w3, &fp, &n_rest3))
			return -EBADMSG;
		if (word_is(rest, w2, "once"))
			when = NI_WHEN_ONCE;
		else if (word_is(rest, w2, "boot"))
			when = NI_WHEN_BOOT;
		else if (word_is(rest, w2, "always"))
			when = NI_WHEN_ALWAYS;
		else
			return -EBADMSG;
		if (!is_hex64(rest2, w3))
			return -EBADMSG;
		if (lk->stale)
			return 0;
		if (lk->set->n == 0)
			return -EBADMSG;
		rc = &lk->set->recipes[lk->set->n - 1];
		nv = realloc(rc->steps, (rc->n_steps + 2) * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		rc->steps = nv;
		s = &nv[rc->n_steps++];
		*s = (struct ni_step){ .when = when, .ref = LUA_NOREF };
		memcpy(s->fingerprint, rest2, NI_SHA256_HEX_LEN);
		s->fingerprint[NI_SHA256_HEX_LEN] = '\0';
		s->name = strndup(fp, n_rest3);
		return s->name ? 0 : -ENOMEM;
	}
	return -EBADMSG;
}

int ni_cache_lookup(const char *buf, size_t len, const char *key, const struct ni_recipe_file *files, size_t n_files,
		    struct ni_recipe_set *ret)
{
	static const char magic[] = CACHE_MAGIC " ";
	char sum[SUM_LEN + 1];
	struct lookup lk = { .key = key, .files = files, .n_files = n_files, .set = ret };
	const char *p, *end, *last;
	size_t body;
	int r = 0;

	*ret = (struct ni_recipe_set){ 0 };
	/* Whole and ours first: a checksum line over everything before it. */
	if (len < sizeof(magic) + NI_SHA256_HEX_LEN + 1 + 4 + SUM_LEN + 1 || buf[len - 1] != '\n' || memcmp(buf, magic, sizeof(magic) - 1))
		return -EBADMSG;
	last = memrchr(buf, '\n', len - 1);
	if (!last)
		return -EBADMSG;
	last++;
	body = (size_t)(last - buf);
	if (len - body != 4 + SUM_LEN + 1 || memcmp(last, "sum ", 4) != 0)
		return -EBADMSG;
	checksum(buf, body, sum);
	if (memcmp(last + 4, sum, SUM_LEN) != 0)
		return -EBADMSG;

	p = memchr(buf, '\n', body);
	if (!p || (size_t)(p - buf) != sizeof(magic) - 1 + NI_SHA256_HEX_LEN)
		return -EBADMSG;
	if (memcmp(buf + sizeof(magic) - 1, key, NI_SHA256_HEX_LEN) != 0)
		return -ESTALE; /* another binary's: its fingerprints may not be ours */
	for (p++, end = buf + body; p < end && r == 0; ) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		r = take_line(&lk, p, (size_t)(nl - p));
		p = nl + 1;
	}
	if (r == 0 && (lk.stale || lk.file != n_files))
		r = -ESTALE;
	if (r < 0) {
		ni_recipe_set_free(NULL, ret);
		return r;
	}
	ret->files = calloc(n_files + 1, sizeof(*ret->files));
	if (!ret->files) {
		ni_recipe_set_free(NULL, ret);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n_files; i++) {
		ret->files[i] = (struct ni_recipe_file){ .name = strdup(files[i].name), .cacheable = true };
		memcpy(ret->files[i].hash, files[i].hash, sizeof(files[i].hash));
		if (!ret->files[i].name) {
			ret->n_files = i;
			ni_recipe_set_free(NULL, ret);
			return -ENOMEM;
		}
	}
	ret->n_files = n_files;
	return 0;
}
