/* The state dir on the host: opened and trusted only when no other user can change it, its lock,
 * temp-file cleanup, the index and the legacy record; and (one section) the file I/O they share. */
#define _GNU_SOURCE
#include "statedir.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <poll.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define LOCK_POLL_MS 50

/* ==== The state dir's file I/O ====
 * One section, each helper with exactly one role, so that it can be swapped for core/fileio.c's in
 * one commit: write_all -> ni_write_all, read_fd -> ni_read_fd_bounded, make_temp -> ni_make_temp
 * (same ".<name>.tmp.<16 hex>" names, which ni_state_remove_temps() relies on), write_atomic (with
 * same_content) -> ni_write_atomic_at(skip when identical, mode 0600), fsync_dir -> ni_fsync_dir,
 * open_in_root -> the one path resolver, mkdir_p -> "mkdir -p inside a root". pread_all has no
 * counterpart yet (the journal's repair reads its tail). The trust rules are not I/O: they stay below. */

int ni_statedir_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t k = write(fd, c, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			return -EIO;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

int ni_statedir_pread_all(int fd, void *p, size_t n, off_t off, size_t *ret_n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = pread(fd, (char *)p + got, n - got, off + (off_t)got);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	*ret_n = got;
	return 0;
}

/* Reads fd to its end, at most max bytes (-EFBIG past it); size_hint (fstat's) sizes the first allocation. */
static int read_fd(int fd, size_t size_hint, size_t max, char **ret_buf, size_t *ret_len)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap;

	if (size_hint > max)
		return -EFBIG;
	cap = size_hint + 1; /* one more, to see EOF without growing */
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t k;

		if (len == cap) {
			char *p;

			if (cap > max)
				return -EFBIG;
			p = realloc(buf, cap * 2);
			if (!p)
				return -ENOMEM;
			buf = p;
			cap *= 2;
		}
		k = read(fd, buf + len, cap - len);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		len += (size_t)k;
	}
	*ret_buf = steal_pointer(&buf);
	*ret_len = len;
	return 0;
}

int ni_statedir_fsync_dir(int dir_fd)
{
	_cleanup_close_ int fd = -1;

	/* dir_fd is O_PATH, which fsync refuses */
	fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return fsync(fd) < 0 ? -errno : 0;
}

/* Creates ".<name>.tmp.<random>" exclusively, mode 0600; its name goes to tmp[NAME_MAX + 1]. */
static int make_temp(int dir_fd, const char *name, char tmp[static NAME_MAX + 1])
{
	for (int attempt = 0; attempt < 16; attempt++) {
		uint64_t rnd;
		int fd;

		if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			rnd = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32 ^ (uint64_t)getpid() << 16 ^ (uint64_t)attempt;
		}
		if (snprintf(tmp, NAME_MAX + 1, ".%s.tmp.%016" PRIx64, name, rnd) > NAME_MAX)
			return -ENAMETOOLONG;
		fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd >= 0 ? fd : -errno;
	}
	return -EEXIST;
}

int ni_statedir_write_temp(int dir_fd, const char *name, const void *data, size_t len, char tmp[static NAME_MAX + 1])
{
	_cleanup_close_ int fd = -1;
	int r;

	fd = make_temp(dir_fd, name, tmp);
	if (fd < 0)
		return fd;
	r = ni_statedir_write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && close(steal_fd(&fd)) < 0 && errno != EINTR)
		r = -errno;
	if (r < 0)
		unlinkat(dir_fd, tmp, 0);
	return r;
}

static bool same_content(int dir_fd, const char *name, const void *data, size_t len)
{
	_cleanup_free_ char *old = NULL;
	size_t old_len;
	struct stat st;

	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != len || (st.st_mode & 07777) != 0600)
		return false;
	return ni_statedir_read_file(dir_fd, name, &old, &old_len) == 0 && old_len == len &&
	       memcmp(old, data, len) == 0;
}

/* systemd's write_string_file_atomic_at, minus the EBUSY fallback: our files are never bind mounts. */
int ni_statedir_write_atomic(int dir_fd, const char *name, const void *data, size_t len)
{
	char tmp[NAME_MAX + 1];
	int r;

	if (same_content(dir_fd, name, data, len))
		return 0; /* the idle loop rewrites nothing */
	r = ni_statedir_write_temp(dir_fd, name, data, len, tmp);
	if (r < 0)
		return r;
	if (renameat(dir_fd, tmp, dir_fd, name) < 0) {
		r = -errno;
		unlinkat(dir_fd, tmp, 0);
		return r;
	}
	return ni_statedir_fsync_dir(dir_fd);
}

/* Opens path below root_fd with symlinks resolved inside root_fd, where the kernel can (5.6+).
 * flags: O_PATH | O_DIRECTORY, or O_PATH | O_NOFOLLOW to look at a last component that may be a link. */
static int open_in_root(int root_fd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd;

	for (int attempt = 0; attempt < 8; attempt++) {
		fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
		if (fd >= 0)
			return fd;
		if (errno != EAGAIN && errno != EINTR)
			break; /* EAGAIN: a rename raced the lookup */
	}
	/* ENOSYS: an old kernel; EPERM: an old seccomp profile. After setns our / is the host's anyway. */
	if (errno != ENOSYS && errno != EPERM)
		return -errno;
	fd = openat(root_fd, path, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* mkdir -p of the normalized path "a/b/c" below root_fd: missing parents 0755, the last one 0700. */
static int mkdir_p(int root_fd, char *path, size_t n, int *ret_fd)
{
	_cleanup_close_ int parent = -1;
	int fd;

	/* walk the prefixes from the top, making what is missing */
	for (size_t end = 0; end <= n; end++) {
		if (end < n && path[end] != '/')
			continue;
		const char *comp = path + end;
		bool last = end == n;

		path[end] = '\0';
		while (comp > path && comp[-1] != '/')
			comp--;
		fd = open_in_root(root_fd, path, O_PATH | O_DIRECTORY);
		if (fd == -ENOENT) {
			if (mkdirat(parent >= 0 ? parent : root_fd, comp, last ? 0700 : 0755) < 0 && errno != EEXIST)
				fd = -errno;
			else
				fd = open_in_root(root_fd, path, O_PATH | O_DIRECTORY);
		}
		if (!last)
			path[end] = '/';
		if (fd < 0)
			return fd;
		ni_safe_close(parent);
		parent = fd;
	}
	*ret_fd = steal_fd(&parent);
	return 0;
}

/* ==== end of the file I/O section ==== */

/* ---- trust ---- */

static const char RULE_OWNER[] = "the state dir and its parents must be owned by root";
static const char RULE_WRITE[] =
	"the state dir and its parents must not be writable by group or others (a parent may be a root-owned sticky dir)";
static const char RULE_LINK[] = "a symlink on the way to the state dir must be owned by root";
static const char RULE_FILE[] = "lock, index, legacy and <recipe>.state must be regular files owned by root";
static const char RULE_MOVED[] = "the state dir changed while it was checked";

/* Root, or the user we run as (then only that user could have planted anything). */
static bool trusted_uid(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

static int refuse(struct ni_state_refusal *ret, const char *path, const char *name, const struct stat *st,
		  const char *rule)
{
	if (ret) {
		*ret = (struct ni_state_refusal){ .uid = st ? st->st_uid : 0, .mode = st ? st->st_mode : 0, .rule = rule };
		snprintf(ret->path, sizeof(ret->path), "/%s%s%s", path, *path && name ? "/" : "", name ? name : "");
	}
	return -ENOLINK;
}

/* The state dir itself (last) or one of its parents. */
static const char *dir_rule(const struct stat *st, bool last)
{
	if (!trusted_uid(st->st_uid))
		return RULE_OWNER;
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) && (last || st->st_uid != 0 || !(st->st_mode & S_ISVTX)))
		return RULE_WRITE;
	return NULL;
}

static bool is_our_file(const char *name)
{
	size_t n = strlen(name), s = strlen(NI_STATE_SUFFIX);

	return ni_streq(name, "lock") || ni_streq(name, "index") || ni_streq(name, "legacy") ||
	       (name[0] != '.' && n > s && ni_streq(name + n - s, NI_STATE_SUFFIX));
}

/* Every file of ours in the dir: regular, owned by root. */
static int check_files(int dir_fd, const char *path, struct ni_state_refusal *ret)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		ni_safe_close(fd);
		return -errno;
	}
	while (r == 0 && (de = readdir(d))) {
		struct stat st;

		if (!is_our_file(de->d_name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT)
				r = -errno;
			continue;
		}
		if (!S_ISREG(st.st_mode) || !trusted_uid(st.st_uid))
			r = refuse(ret, path, de->d_name, &st, RULE_FILE);
	}
	closedir(d);
	return r;
}

/*
 * Checks root_fd, every prefix of path (a symlink there must be ours, the directory it leads to safe)
 * and the state dir dir_fd itself, by the names the operator gave. When a symlink was followed, the
 * directories above the state dir's real location are checked too, walking "..".
 */
static int check_tree(int root_fd, char *path, size_t n, int dir_fd, struct ni_state_refusal *ret)
{
	struct stat st, root_st, dir_st;
	bool followed = false;
	const char *rule;
	int r;

	if (fstat(root_fd, &root_st) < 0 || fstat(dir_fd, &dir_st) < 0)
		return -errno;
	if (n > 0 && (rule = dir_rule(&root_st, false)))
		return refuse(ret, "", NULL, &root_st, rule);
	for (size_t end = 0; end <= n; end++) {
		_cleanup_close_ int fd = -1;
		bool last = end == n;

		if (end < n && path[end] != '/')
			continue;
		path[end] = '\0';
		fd = open_in_root(root_fd, *path ? path : ".", O_PATH | O_NOFOLLOW);
		r = fd < 0 ? fd : fstat(fd, &st) < 0 ? -errno : 0;
		if (r == 0 && S_ISLNK(st.st_mode)) {
			followed = true;
			if (!trusted_uid(st.st_uid))
				r = refuse(ret, path, NULL, &st, RULE_LINK);
			ni_safe_close(fd);
			fd = r < 0 ? -1 : open_in_root(root_fd, *path ? path : ".", O_PATH | O_DIRECTORY);
			if (r == 0 && (fd < 0 || fstat(fd, &st) < 0))
				r = fd < 0 ? fd : -errno;
		}
		if (r == 0 && (rule = dir_rule(&st, last)))
			r = refuse(ret, path, NULL, &st, rule);
		if (r == 0 && last && (st.st_dev != dir_st.st_dev || st.st_ino != dir_st.st_ino))
			r = refuse(ret, path, NULL, &st, RULE_MOVED);
		if (!last)
			path[end] = '/';
		if (r < 0)
			return r;
	}
	if (!followed)
		return 0;
	/* The real ancestry, which the names above did not show: up to root_fd or the real /. */
	_cleanup_close_ int cur = openat(dir_fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
	for (int depth = 0; cur >= 0 && depth < 256; depth++) {
		struct stat up;
		int next;

		if (fstat(cur, &st) < 0)
			return -errno;
		if (st.st_dev == root_st.st_dev && st.st_ino == root_st.st_ino)
			return 0;
		if ((rule = dir_rule(&st, false))) {
			r = refuse(ret, path, NULL, &st, rule);
			if (ret)
				strncat(ret->path, " (a parent of its real location)", sizeof(ret->path) - strlen(ret->path) - 1);
			return r;
		}
		next = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (next < 0)
			return -errno;
		if (fstat(next, &up) == 0 && up.st_dev == st.st_dev && up.st_ino == st.st_ino) {
			ni_safe_close(next);
			return 0; /* the real / */
		}
		ni_safe_close(cur);
		cur = next;
	}
	return cur < 0 ? -errno : -ELOOP;
}

int ni_statedir_open_file(int dir_fd, const char *name, int flags, struct stat *ret_st)
{
	_cleanup_close_ int fd = -1;

	fd = openat(dir_fd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, ret_st) < 0)
		return -errno;
	if (!S_ISREG(ret_st->st_mode))
		return S_ISDIR(ret_st->st_mode) ? -EISDIR : -EINVAL;
	if (!trusted_uid(ret_st->st_uid))
		return -ENOLINK; /* another user's file says nothing we may believe */
	return steal_fd(&fd);
}

int ni_statedir_read_file(int dir_fd, const char *name, char **ret_buf, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	fd = ni_statedir_open_file(dir_fd, name, O_RDONLY, &st);
	if (fd < 0)
		return fd;
	return read_fd(fd, (uint64_t)st.st_size > NI_STATE_FILE_MAX ? SIZE_MAX : (size_t)st.st_size,
		       NI_STATE_FILE_MAX, ret_buf, ret_len);
}

/* ---- the state dir and its lock ---- */

int ni_state_open(int root_fd, const char *state_dir, unsigned flags, int *ret_dir_fd,
		  struct ni_state_refusal *ret_refusal)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	size_t n = 0;
	int r;

	*ret_dir_fd = -1;
	if (!state_dir || !*state_dir || strnlen(state_dir, PATH_MAX) >= PATH_MAX)
		return -EINVAL;
	path = malloc(strlen(state_dir) + 2);
	if (!path)
		return -ENOMEM;
	/* normalize to "a/b/c": no leading, doubled or trailing slashes, no "." components */
	for (const char *p = state_dir; *p;) {
		size_t c;

		while (*p == '/')
			p++;
		c = strcspn(p, "/");
		if (c == 2 && p[0] == '.' && p[1] == '.')
			return -EINVAL;
		if (c > 0 && !(c == 1 && p[0] == '.')) {
			if (n)
				path[n++] = '/';
			memcpy(path + n, p, c);
			n += c;
		}
		p += c;
	}
	path[n] = '\0';

	fd = open_in_root(root_fd, n ? path : ".", O_PATH | O_DIRECTORY);
	if (fd == -ENOENT && !(flags & NI_STATE_OPEN_READ_ONLY)) {
		r = mkdir_p(root_fd, path, n, &fd);
		if (r < 0)
			return r;
	}
	if (fd < 0)
		return fd;
	r = check_tree(root_fd, path, n, fd, ret_refusal);
	if (r == 0)
		r = check_files(fd, path, ret_refusal);
	if (r < 0)
		return r;
	*ret_dir_fd = steal_fd(&fd);
	return 0;
}

int ni_state_lock(int dir_fd, bool wait, int cancel_fd, int *ret_lock_fd)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	*ret_lock_fd = -1;
	fd = openat(dir_fd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (!trusted_uid(st.st_uid))
		return -ENOLINK; /* another user could hold it and make us wait forever */
	for (;;) {
		struct pollfd pfd = { .fd = cancel_fd, .events = POLLIN };
		int n;

		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return -errno;
		if (!wait)
			return -EWOULDBLOCK;
		if (cancel_fd < 0) {
			if (flock(fd, LOCK_EX) == 0)
				break;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* flock cannot wait on an fd too: poll the cancel fd, then try again */
		n = poll(&pfd, 1, LOCK_POLL_MS);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0 && (pfd.revents & POLLNVAL))
			return -EBADF;
		if (n > 0)
			return -ECANCELED;
	}
	*ret_lock_fd = steal_fd(&fd);
	return 0;
}

/* ".<name>.tmp.<16 hex>" for name "index" or "<recipe>.state": the temp files of writers that hold the lock. */
static bool is_locked_temp(const char *f)
{
	size_t n = strlen(f), base, s = strlen(NI_STATE_SUFFIX);

	if (n < 1 + 5 + 21 || f[0] != '.' || strncmp(f + n - 21, ".tmp.", 5) != 0)
		return false;
	for (size_t i = n - 16; i < n; i++)
		if (!((f[i] >= '0' && f[i] <= '9') || (f[i] >= 'a' && f[i] <= 'f')))
			return false;
	base = n - 21 - 1;
	return (base == 5 && strncmp(f + 1, "index", 5) == 0) ||
	       (base > s && strncmp(f + 1 + base - s, NI_STATE_SUFFIX, s) == 0);
}

int ni_state_remove_temps(int dir_fd)
{
	_cleanup_close_ int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d)
		return -errno;
	fd = -1; /* owned by d now */
	while ((de = readdir(d)))
		if (is_locked_temp(de->d_name) && unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT && r == 0)
			r = -errno;
	closedir(d);
	return r;
}

/* ---- the index and the legacy record ---- */

int ni_state_write_index(int dir_fd, char *const *recipes, size_t n)
{
	struct ni_buf b = NI_BUF_INIT(0);
	int r;

	r = ni_index_format(recipes, n, &b);
	if (r == 0)
		r = ni_statedir_write_atomic(dir_fd, "index", b.p, b.len);
	ni_buf_free(&b);
	return r;
}

int ni_state_read_index(int dir_fd, char ***ret_recipes, size_t *ret_n)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r;

	*ret_recipes = NULL;
	*ret_n = 0;
	r = ni_statedir_read_file(dir_fd, "index", &buf, &len);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	return ni_index_parse(buf, len, ret_recipes, ret_n);
}

int ni_state_write_legacy(int dir_fd, const struct ni_legacy_record *rec)
{
	struct ni_buf b = NI_BUF_INIT(0);
	int r;

	r = ni_legacy_format(rec, &b);
	if (r == 0)
		r = ni_statedir_write_atomic(dir_fd, "legacy", b.p, b.len);
	ni_buf_free(&b);
	return r;
}

int ni_state_read_legacy(int dir_fd, struct ni_legacy_record *ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r;

	*ret = (struct ni_legacy_record){ 0 };
	r = ni_statedir_read_file(dir_fd, "legacy", &buf, &len);
	if (r < 0)
		return r;
	return ni_legacy_parse(buf, len, ret);
}
