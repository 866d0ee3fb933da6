/* The state dir on the host: opened and trusted only when no other user can change it, its lock,
 * temp-file cleanup, the index and the legacy record. Its file I/O is core/fileio.c's. */
#define _GNU_SOURCE
#include "statedir.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include "fileio.h"
#include "util.h"

#define LOCK_POLL_MS 50


/* ---- trust ---- */

static const char RULE_OWNER[] = "the state dir and its parents must be owned by root";
static const char RULE_WRITE[] =
	"the state dir and its parents must not be writable by group or others (a parent may be a root-owned sticky dir)";
static const char RULE_LINK[] = "a symlink on the way to the state dir must be owned by root";
static const char RULE_FILE[] = "lock, index, legacy and <recipe>.state must be regular files owned by root";
static const char RULE_WALK[] = "no other user's symlink or directory may lie on the way to the state dir";

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
		snprintf(ret->path, sizeof(ret->path), "/%.*s%s%.*s", PATH_MAX - 1, path, *path && name ? "/" : "",
			 NAME_MAX, name ? name : "");
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

/*
 * The resolver refused a step (another user's link, or a way out of a directory a non-root user
 * owns): name the directory the walk stood in, with its owner and mode, and our rule for it. As root,
 * every such refusal breaks one of our rules too; RULE_WALK covers the rest (running as a non-root user).
 */
static int refuse_chase(int root_fd, const struct ni_chase *c, struct ni_state_refusal *ret)
{
	_cleanup_close_ int fd = -1;
	struct ni_chase at;
	const char *rule = NULL;
	struct stat st;
	bool have;

	fd = ni_chase(root_fd, c->path, NI_CHASE_NOFOLLOW, 0, &at);
	have = fd >= 0 && fstat(fd, &st) == 0;
	if (have)
		rule = dir_rule(&st, false);
	return refuse(ret, c->path + 1, NULL, have ? &st : NULL, rule ? rule : RULE_WALK);
}

/* path ("a/b/c", "" for the root) inside root_fd, O_PATH, through the one resolver; flags as ni_chase's. */
static int chase(int root_fd, const char *path, unsigned flags, struct ni_state_refusal *ret)
{
	struct ni_chase c;
	int fd = ni_chase(root_fd, path, flags, 0, &c);

	return fd == -ENOLINK ? refuse_chase(root_fd, &c, ret) : fd;
}

/* mkdir -p -m 0700: missing parents 0755 (the resolver makes them), the state dir itself 0700; never
 * in a directory that fails our rules (it would be refused right after, and left behind). */
static int make_dir(int root_fd, const char *path, struct ni_state_refusal *ret)
{
	_cleanup_close_ int dfd = -1;
	struct ni_chase c;
	const char *rule;

	dfd = ni_chase(root_fd, path, NI_CHASE_PARENT | NI_CHASE_MKDIR, 0755, &c);
	if (dfd == -ENOLINK)
		return refuse_chase(root_fd, &c, ret);
	if (dfd < 0)
		return dfd;
	if ((rule = dir_rule(&c.dir_st, false)))
		return refuse(ret, c.path + 1, NULL, &c.dir_st, rule);
	if (mkdirat(dfd, c.name, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
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
	struct dirent *de;
	DIR *d;
	int r;

	r = ni_opendir_at(dir_fd, &d);
	if (r < 0)
		return r;
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

/* The real ancestry of dir_fd, which the names did not show: up to root_fd or the real /. */
static int check_real_parents(const struct stat *root_st, int dir_fd, const char *path,
			      struct ni_state_refusal *ret)
{
	_cleanup_close_ int cur = openat(dir_fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
	const char *rule;
	struct stat st;
	int r;

	for (int depth = 0; cur >= 0 && depth < 256; depth++) {
		struct stat up;
		int next;

		if (fstat(cur, &st) < 0)
			return -errno;
		if (st.st_dev == root_st->st_dev && st.st_ino == root_st->st_ino)
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

/*
 * Walks to the state dir by the names the operator gave and checks root_fd and every prefix of path
 * on the way (a symlink there must be ours, the directory it leads to safe); the state dir's O_PATH
 * fd is what the walk reached, so what was checked is what is used. When a symlink was followed, the
 * directories above the state dir's real location are checked too, walking "..". A missing prefix is
 * -ENOENT, after the ones above it passed.
 */
static int walk_tree(int root_fd, char *path, size_t n, int *ret_fd, struct ni_state_refusal *ret)
{
	_cleanup_close_ int dir_fd = -1;
	struct stat st, root_st;
	bool followed = false;
	const char *rule;
	int r;

	if (fstat(root_fd, &root_st) < 0)
		return -errno;
	if (n > 0 && (rule = dir_rule(&root_st, false)))
		return refuse(ret, "", NULL, &root_st, rule);
	for (size_t end = 0; end <= n; end++) {
		_cleanup_close_ int fd = -1;
		bool last = end == n;

		if (end < n && path[end] != '/')
			continue;
		path[end] = '\0';
		fd = chase(root_fd, path, NI_CHASE_NOFOLLOW, ret);
		r = fd < 0 ? fd : fstat(fd, &st) < 0 ? -errno : 0;
		if (r == 0 && S_ISLNK(st.st_mode)) {
			followed = true;
			if (!trusted_uid(st.st_uid))
				r = refuse(ret, path, NULL, &st, RULE_LINK);
			ni_safe_close(fd);
			fd = r < 0 ? -1 : chase(root_fd, path, 0, ret);
			if (r == 0 && (fd < 0 || fstat(fd, &st) < 0))
				r = fd < 0 ? fd : -errno;
		}
		if (r == 0 && !S_ISDIR(st.st_mode))
			r = -ENOTDIR;
		if (r == 0 && (rule = dir_rule(&st, last)))
			r = refuse(ret, path, NULL, &st, rule);
		if (!last)
			path[end] = '/';
		if (r < 0)
			return r;
		if (last)
			dir_fd = steal_fd(&fd);
	}
	if (followed) {
		r = check_real_parents(&root_st, dir_fd, path, ret);
		if (r < 0)
			return r;
	}
	*ret_fd = steal_fd(&dir_fd);
	return 0;
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
	return ni_read_fd_bounded(fd, NI_STATE_FILE_MAX, ret_buf, ret_len);
}

int ni_statedir_write_atomic(int dir_fd, const char *name, const void *data, size_t len)
{
	/* ours and 0600 whatever was there (a replaced file of another user's is not carried over) */
	const struct ni_file_attrs attrs = { .mode = 0600, .uid = geteuid(), .has_mode = true, .has_uid = true };
	enum ni_file_change change;

	return ni_write_atomic_at(dir_fd, name, data, len, NI_WRITE_SYNC | NI_WRITE_SKIP_SAME, &attrs, &change, NULL);
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

	r = walk_tree(root_fd, path, n, &fd, ret_refusal);
	if (r == -ENOENT && !(flags & NI_STATE_OPEN_READ_ONLY)) {
		r = make_dir(root_fd, path, ret_refusal);
		if (r == 0)
			r = walk_tree(root_fd, path, n, &fd, ret_refusal);
	}
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

/*
 * ".<name>.tmp.<16 hex>" for name "index", "cache" (cache.h's NI_CACHE_FILE, written by the pass
 * under the lock) or "<recipe>.state": the temp files of writers that hold the lock.
 */
static bool is_locked_temp(const char *f)
{
	size_t n = strlen(f), base, s = strlen(NI_STATE_SUFFIX);

	if (n < 1 + 5 + 21 || f[0] != '.' || strncmp(f + n - 21, ".tmp.", 5) != 0)
		return false;
	for (size_t i = n - 16; i < n; i++)
		if (!((f[i] >= '0' && f[i] <= '9') || (f[i] >= 'a' && f[i] <= 'f')))
			return false;
	base = n - 21 - 1;
	return (base == 5 && (strncmp(f + 1, "index", 5) == 0 || strncmp(f + 1, "cache", 5) == 0)) ||
	       (base > s && strncmp(f + 1 + base - s, NI_STATE_SUFFIX, s) == 0);
}

int ni_state_remove_temps(int dir_fd)
{
	struct dirent *de;
	DIR *d;
	int r;

	r = ni_opendir_at(dir_fd, &d);
	if (r < 0)
		return r;
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
