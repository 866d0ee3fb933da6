/* Kernel parameters under /proc/sys: validated keys, one openat per key, one write() per change. */
#define _GNU_SOURCE
#include "sysctl.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "util.h"

#define FIRST_READ 4095 /* one page with room for the NUL */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

int ni_sysctl_normalize(const char *key, char ret_path[static NI_SYSCTL_KEY_MAX + 1])
{
	size_t n = strlen(key);
	char sep = strchr(key, '/') ? '/' : '.';
	const char *part = key;

	if (n == 0 || n > NI_SYSCTL_KEY_MAX || key[0] == '/')
		return -EINVAL;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == ' ')
			return -EINVAL;
	/* Every part non-empty and not a path step: "a..b", "a/./b", "a/../b", "a/" all fail here. */
	for (;;) {
		const char *end = strchrnul(part, sep);
		size_t len = (size_t)(end - part);
		if (len == 0 || (sep == '/' && part[0] == '.' && (len == 1 || (len == 2 && part[1] == '.'))))
			return -EINVAL;
		if (!*end)
			break;
		part = end + 1;
	}
	for (size_t i = 0; i <= n; i++)
		ret_path[i] = key[i] == sep ? '/' : key[i];
	return 0;
}

int ni_sysctl_open(int root_fd, int *ret_fd)
{
	int fd = openat(root_fd, "proc/sys", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	return 0;
}

/*
 * A value, read as ni_read_virtual_fd reads /proc: one read() from offset 0 (procfs formats the value
 * whole per read; reading on could tear one the kernel changed in between). A page first, since
 * nearly every value fits and the kernel allocates what a read asks for; a longer value is read again
 * whole, from offset 0, up to NI_SYSCTL_VALUE_MAX. The trailing newline is dropped.
 */
static int read_value(int fd, char **ret_value, size_t *ret_len)
{
	_cleanup_free_ char *value = NULL;
	size_t len;
	int r;

	r = ni_read_virtual_fd(fd, FIRST_READ, &value, &len);
	if (r == -EFBIG) {
		if (lseek(fd, 0, SEEK_SET) < 0)
			return -errno;
		r = ni_read_virtual_fd(fd, NI_SYSCTL_VALUE_MAX, &value, &len);
	}
	if (r < 0)
		return r;
	if (len > 0 && value[len - 1] == '\n')
		value[len - 1] = '\0';
	*ret_len = len;
	*ret_value = steal_pointer(&value);
	return 0;
}

static int read_path(int proc_sys_fd, const char *path, char **ret_value)
{
	_cleanup_close_ int fd = -1;
	size_t len;

	fd = openat(proc_sys_fd, path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return read_value(fd, ret_value, &len);
}

int ni_sysctl_read(int proc_sys_fd, const char *key, char **ret_value)
{
	char path[NI_SYSCTL_KEY_MAX + 1];
	int r;

	r = ni_sysctl_normalize(key, path);
	if (r < 0)
		return r;
	return read_path(proc_sys_fd, path, ret_value);
}

bool ni_sysctl_value_equal(const char *a, const char *b)
{
	for (;;) {
		while (is_blank(*a))
			a++;
		while (is_blank(*b))
			b++;
		if (!*a || !*b)
			return !*a && !*b;
		/* One word each, compared byte for byte; then both must end it together. */
		while (*a && !is_blank(*a) && *a == *b) {
			a++;
			b++;
		}
		if ((*a && !is_blank(*a)) || (*b && !is_blank(*b)))
			return false;
	}
}

int ni_sysctl_write(int proc_sys_fd, const char *key, const char *value, bool *ret_changed)
{
	_cleanup_free_ char *current = NULL, *line = NULL;
	_cleanup_close_ int fd = -1;
	char path[NI_SYSCTL_KEY_MAX + 1];
	size_t vlen = strlen(value), cur_len = 0;
	ssize_t n;
	int r;

	*ret_changed = false;
	r = ni_sysctl_normalize(key, path);
	if (r < 0)
		return r;
	/* One open for the read and the write: a key costs one openat. The write goes at offset 0, where
	 * the kernel takes a numeric value (kernel.sysctl_writes_strict). */
	fd = openat(proc_sys_fd, path, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0) {
		r = read_value(fd, &current, &cur_len);
		if (r < 0)
			return r;
		if (ni_sysctl_value_equal(current, value))
			return 0;
		if (lseek(fd, 0, SEEK_SET) < 0)
			return -errno;
	} else if (errno == EACCES) {
		/* Not both readable and writable: a read-only key may still be equal; write-only keys
		 * (vm.drop_caches is 0200) cannot be compared, so they are written. */
		r = read_path(proc_sys_fd, path, &current);
		if (r >= 0 && ni_sysctl_value_equal(current, value))
			return 0;
		if (r < 0 && r != -EACCES)
			return r;
		/* O_TRUNC as a shell's ">" has: procfs ignores it; a plain file (a test's fake tree) needs it. */
		fd = openat(proc_sys_fd, path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		cur_len = 0;
	} else {
		return -errno;
	}

	/* The value and its newline in one buffer: the kernel parses a write() as a whole. */
	line = malloc(vlen + 2);
	if (!line)
		return -ENOMEM;
	memcpy(line, value, vlen);
	if (vlen == 0 || value[vlen - 1] != '\n')
		line[vlen++] = '\n';
	line[vlen] = '\0';

	do
		n = write(fd, line, vlen);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != vlen)
		return -EIO; /* a sysctl takes a value whole or not at all; a short write is a failure */
	/* A plain file (a test's fake tree) keeps a longer old value's tail; procfs has none to cut. */
	if (cur_len > vlen && ftruncate(fd, (off_t)vlen) < 0) {
		/* procfs may refuse it: the write itself succeeded */
	}
	*ret_changed = true;
	return 0;
}

bool ni_sysctl_is_glob(const char *key)
{
	return strpbrk(key, "*?[") != NULL;
}

struct key_list {
	char **v;
	size_t n;
};

/* A path under /proc/sys as a key: dotted, unless a part holds a dot (then the slashed form). */
static int add_key(struct key_list *l, const char *path)
{
	char **nv, *k;

	if (l->n >= NI_SYSCTL_KEYS_MAX)
		return -E2BIG;
	k = strdup(path);
	if (!k)
		return -ENOMEM;
	if (!strchr(k, '.'))
		for (char *p = k; *p; p++)
			if (*p == '/')
				*p = '.';
	nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv) {
		free(k);
		return -ENOMEM;
	}
	l->v = nv;
	l->v[l->n++] = k;
	return 0;
}

static bool is_dir_entry(int dfd, const struct dirent *de, bool *ret_reg)
{
	struct stat st;

	if (de->d_type != DT_UNKNOWN) {
		*ret_reg = de->d_type == DT_REG;
		return de->d_type == DT_DIR;
	}
	if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		*ret_reg = false;
		return false;
	}
	*ret_reg = S_ISREG(st.st_mode);
	return S_ISDIR(st.st_mode);
}

/*
 * Matches the pattern's part starting at pat (parts separated by '/') in dir_fd, the directory at
 * path (len bytes of buf); recurses for the parts after it. Only the part's own directory is read.
 */
static int walk(int dir_fd, const char *pat, char *buf, size_t len, struct key_list *l)
{
	const char *end = strchrnul(pat, '/');
	bool last = !*end;
	char part[NI_SYSCTL_KEY_MAX + 1];
	_cleanup_close_ int fd = -1;
	struct dirent *de;
	DIR *d;
	int r = 0;

	memcpy(part, pat, (size_t)(end - pat));
	part[end - pat] = '\0';
	fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	d = fdopendir(fd);
	if (!d)
		return -errno;
	fd = -1;
	while (r >= 0 && (de = readdir(d))) {
		size_t nlen = strlen(de->d_name);
		bool reg, dir;

		/* FNM_PERIOD: a leading dot is matched only by a dot, as glob() does */
		if (ni_streq(de->d_name, ".") || ni_streq(de->d_name, "..") || fnmatch(part, de->d_name, FNM_PERIOD) != 0)
			continue;
		if (len + 1 + nlen > NI_SYSCTL_KEY_MAX)
			continue;
		dir = is_dir_entry(dirfd(d), de, &reg);
		if (len)
			buf[len] = '/';
		memcpy(buf + len + (len ? 1 : 0), de->d_name, nlen + 1);
		if (last && reg) {
			r = add_key(l, buf);
		} else if (!last && dir) {
			_cleanup_close_ int sub = openat(dirfd(d), de->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				r = walk(sub, end + 1, buf, len + (len ? 1 : 0) + nlen, l);
		}
		buf[len] = '\0';
	}
	closedir(d);
	return r;
}

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ni_sysctl_keys(int proc_sys_fd, const char *glob, char ***ret, size_t *ret_n)
{
	char pat[NI_SYSCTL_KEY_MAX + 1], buf[NI_SYSCTL_KEY_MAX + 2] = "";
	struct key_list l = { 0 };
	int r;

	r = ni_sysctl_normalize(glob, pat);
	if (r < 0)
		return r;
	r = walk(proc_sys_fd, pat, buf, 0, &l);
	if (r < 0) {
		ni_strv_free(l.v, l.n);
		return r;
	}
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), cmp_keys);
	*ret = l.v;
	*ret_n = l.n;
	return 0;
}

void ni_sysctl_conf_free(struct ni_sysctl_conf *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].key);
		free(c->v[i].value);
	}
	free(c->v);
	*c = (struct ni_sysctl_conf){ 0 };
}

static char *strndup_trimmed(const char *p, const char *end)
{
	while (p < end && is_blank(*p))
		p++;
	while (end > p && (is_blank(end[-1]) || end[-1] == '\r'))
		end--;
	return strndup(p, (size_t)(end - p));
}

int ni_sysctl_conf_parse(const char *text, size_t len, struct ni_sysctl_conf *ret, unsigned *ret_line)
{
	struct ni_sysctl_conf c = { 0 };
	const char *p = text, *text_end = text + len;
	unsigned line = 0;
	int r = 0;

	*ret_line = 0;
	if (memchr(text, '\0', len))
		return -EINVAL;
	while (p < text_end) {
		const char *end = memchr(p, '\n', (size_t)(text_end - p)), *eq, *k;
		struct ni_sysctl_conf_entry e = { 0 }, *nv;
		char path[NI_SYSCTL_KEY_MAX + 1];

		if (!end)
			end = text_end;
		line++;
		for (k = p; k < end && (is_blank(*k) || *k == '\r'); k++)
			;
		if (k == end || *k == '#' || *k == ';')
			goto next;
		e.line = line;
		if (*k == '-') {
			e.ignore_failure = true;
			k++;
		}
		eq = memchr(k, '=', (size_t)(end - k));
		if (!eq && !e.ignore_failure) {
			r = -EINVAL; /* not an assignment */
			break;
		}
		e.key = strndup_trimmed(k, eq ? eq : end);
		if (eq)
			e.value = strndup_trimmed(eq + 1, end);
		if (!e.key || (eq && !e.value)) {
			free(e.key);
			free(e.value);
			r = -ENOMEM;
			break;
		}
		if (!eq)
			e.ignore_failure = false; /* "-key" alone: an exclusion, not a key to set */
		if (ni_sysctl_normalize(e.key, path) < 0) {
			free(e.key);
			free(e.value);
			r = -EINVAL;
			break;
		}
		e.glob = ni_sysctl_is_glob(e.key);
		nv = realloc(c.v, (c.n + 1) * sizeof(*nv));
		if (!nv) {
			free(e.key);
			free(e.value);
			r = -ENOMEM;
			break;
		}
		c.v = nv;
		c.v[c.n++] = e;
	next:
		p = end + 1;
	}
	if (r < 0) {
		*ret_line = line;
		ni_sysctl_conf_free(&c);
		return r;
	}
	*ret = c;
	return 0;
}

void ni_sysctl_assignments_free(struct ni_sysctl_assignment *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].key);
	free(v);
}

/* Whether key (a path under /proc/sys) is assigned explicitly or excluded anywhere in c. */
static bool glob_skips(const struct ni_sysctl_conf *c, const char *path)
{
	for (size_t i = 0; i < c->n; i++) {
		char p[NI_SYSCTL_KEY_MAX + 1];

		if (ni_sysctl_normalize(c->v[i].key, p) < 0)
			continue;
		if (!c->v[i].glob ? ni_streq(p, path)
				  : !c->v[i].value && fnmatch(p, path, FNM_PATHNAME | FNM_PERIOD) == 0)
			return true;
	}
	return false;
}

/* Whether a later entry assigns the same key or glob (the last assignment wins). */
static bool overridden(const struct ni_sysctl_conf *c, size_t i)
{
	char a[NI_SYSCTL_KEY_MAX + 1], b[NI_SYSCTL_KEY_MAX + 1];

	if (ni_sysctl_normalize(c->v[i].key, a) < 0)
		return false;
	for (size_t j = i + 1; j < c->n; j++)
		if (c->v[j].value && ni_sysctl_normalize(c->v[j].key, b) == 0 && ni_streq(a, b))
			return true;
	return false;
}

static int push_assignment(struct ni_sysctl_assignment **v, size_t *n, const char *key,
			   const struct ni_sysctl_conf_entry *e)
{
	struct ni_sysctl_assignment *nv;
	char *k;

	if (*n >= NI_SYSCTL_KEYS_MAX)
		return -E2BIG;
	k = strdup(key);
	if (!k)
		return -ENOMEM;
	nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv) {
		free(k);
		return -ENOMEM;
	}
	*v = nv;
	nv[(*n)++] = (struct ni_sysctl_assignment){ .key = k, .value = e->value, .ignore_failure = e->ignore_failure,
						   .line = e->line };
	return 0;
}

int ni_sysctl_conf_resolve(int proc_sys_fd, const struct ni_sysctl_conf *c, struct ni_sysctl_assignment **ret,
			   size_t *ret_n)
{
	struct ni_sysctl_assignment *v = NULL;
	size_t n = 0;
	int r = 0;

	for (size_t i = 0; r >= 0 && i < c->n; i++) {
		const struct ni_sysctl_conf_entry *e = &c->v[i];
		char **keys = NULL;
		size_t nk = 0;

		if (!e->value || overridden(c, i))
			continue;
		if (!e->glob) {
			r = push_assignment(&v, &n, e->key, e);
			continue;
		}
		r = ni_sysctl_keys(proc_sys_fd, e->key, &keys, &nk);
		for (size_t k = 0; r >= 0 && k < nk; k++) {
			char path[NI_SYSCTL_KEY_MAX + 1];
			if (ni_sysctl_normalize(keys[k], path) == 0 && !glob_skips(c, path))
				r = push_assignment(&v, &n, keys[k], e);
		}
		ni_strv_free(keys, nk);
	}
	if (r < 0) {
		ni_sysctl_assignments_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}
