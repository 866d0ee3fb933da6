/* Host paths over fileio: every path through the safe resolver, atomic writes, directories, kernel files. */
#define _GNU_SOURCE
#include "file.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "util.h"

/* ni_chase's result for the caller: the explanation of a refusal travels up with -ENOLINK. */
static int chased(int r, const struct ni_chase *c, char *why)
{
	if (r == -ENOLINK && why)
		memcpy(why, c->why, NI_WHY_MAX);
	return r;
}

static bool is_dot_part(const char *p, size_t n)
{
	return (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.');
}

bool ni_file_path_valid(const char *path)
{
	if (path[0] != '/')
		return false;
	for (const char *p = path; *p;) {
		const char *end;
		while (*p == '/')
			p++;
		end = strchrnul(p, '/');
		if (is_dot_part(p, (size_t)(end - p)))
			return false;
		p = end;
	}
	return true;
}

int ni_file_read(int root_fd, const char *path, char **ret, size_t *ret_len, char *why)
{
	_cleanup_close_ int dfd = -1, fd = -1;
	struct ni_chase c;

	dfd = ni_chase(root_fd, path, NI_CHASE_PARENT, 0, &c);
	if (dfd == -EINVAL && c.name[0] == '\0')
		return -EISDIR; /* the root (or a link to it): a directory, as read() would say */
	if (dfd < 0)
		return chased(dfd, &c, why);
	fd = ni_chase_open(dfd, &c, O_RDONLY | O_NONBLOCK, 0);
	if (fd < 0)
		return chased(fd, &c, why);
	return ni_read_fd_bounded(fd, NI_FILE_READ_MAX, ret, ret_len);
}

/* procfs, sysfs and cgroupfs: kernel interfaces, where there is no temp file to rename over. */
static bool kernel_fs(int dfd)
{
	struct statfs sf;

	if (fstatfs(dfd, &sf) < 0)
		return false;
	return sf.f_type == PROC_SUPER_MAGIC || sf.f_type == SYSFS_MAGIC || sf.f_type == CGROUP_SUPER_MAGIC ||
	       sf.f_type == CGROUP2_SUPER_MAGIC;
}

/* One write() to a kernel interface file, as `echo value > file` does; skipped when it reads the same. */
static int write_kernel_file(int dfd, struct ni_chase *c, const void *data, size_t len, enum ni_file_change *ret_change,
			     char *why)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *cur = NULL;
	size_t cur_len;
	int r;

	/* One read of at most one byte more than data (a longer value differs too); a knob that cannot
	 * be read (write-only) is simply written. */
	fd = ni_chase_open(dfd, c, O_RDONLY | O_NONBLOCK, 0);
	if (fd == -ENOLINK)
		return chased(fd, c, why);
	if (fd >= 0 && ni_read_virtual_fd(fd, len, &cur, &cur_len) == 0 && cur_len == len && memcmp(cur, data, len) == 0)
		return 0;
	fd = ni_safe_close(fd);
	fd = ni_chase_open(dfd, c, O_WRONLY, 0);
	if (fd < 0)
		return chased(fd, c, why);
	r = ni_write_all(fd, data, len);
	if (r < 0)
		return r;
	*ret_change = NI_FILE_KERNEL;
	return 0;
}

int ni_file_write(int root_fd, const char *path, const void *data, size_t len,
		  const struct ni_file_attrs *attrs, enum ni_file_change *ret_change, char *why)
{
	_cleanup_close_ int dfd = -1;
	struct ni_chase c;

	*ret_change = NI_FILE_UNCHANGED;
	dfd = ni_chase(root_fd, path, NI_CHASE_PARENT, 0, &c);
	if (dfd < 0)
		return chased(dfd, &c, why);
	if (kernel_fs(dfd))
		return write_kernel_file(dfd, &c, data, len, ret_change, why);
	return ni_write_atomic_at(dfd, c.name, data, len, NI_WRITE_SYNC | NI_WRITE_SKIP_SAME, attrs, ret_change, why);
}

int ni_file_mkdir(int root_fd, const char *path, const struct ni_file_attrs *attrs, bool parents,
		  bool *ret_changed, char *why)
{
	static const struct ni_file_attrs none = { 0 };
	_cleanup_close_ int pfd = -1, fd = -1, dfd = -1;
	struct ni_chase c;
	bool created = false, fixed = false;
	int r;

	*ret_changed = false;
	if (!attrs)
		attrs = &none;
	pfd = ni_chase(root_fd, path, NI_CHASE_PARENT | (parents ? NI_CHASE_MKDIR : 0), 0755, &c);
	if (pfd < 0)
		return chased(pfd, &c, why);
	if (c.made)
		*ret_changed = true;
	if (mkdirat(pfd, c.name, attrs->has_mode ? attrs->mode & 0777 : 0755) == 0) {
		created = *ret_changed = true;
		if (fsync(pfd) < 0)
			return -errno;
	} else if (errno != EEXIST) {
		return -errno;
	}
	/* Attributes go through an fd of the directory the walk reached (a symlink to a directory
	 * counts), never by name again: "." below an O_PATH fd is that same directory, and a
	 * non-directory is ENOTDIR. */
	if (created) {
		/* The directory just made is ours, even in a non-root user's directory: opened below its
		 * parent, never through a link; one that is not ours after all goes through the walk. */
		struct stat st;
		dfd = openat(pfd, c.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd >= 0 && (fstat(dfd, &st) < 0 || st.st_uid != geteuid()))
			dfd = ni_safe_close(dfd);
	}
	if (dfd < 0) {
		fd = ni_chase(root_fd, path, 0, 0, &c);
		if (fd < 0)
			return chased(fd, &c, why);
		dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return -errno;
	}
	/* A new directory gets its mode exactly, whatever the umask; an old one only when asked. */
	r = ni_fd_set_attrs(dfd, attrs->has_mode ? attrs->mode : created ? 0755 : (mode_t)-1,
			    attrs->has_uid ? attrs->uid : (uid_t)-1, attrs->has_gid ? attrs->gid : (gid_t)-1, &fixed);
	if (r < 0)
		return r;
	if (fixed)
		*ret_changed = true;
	return 0;
}

int ni_file_remove(int root_fd, const char *path, bool *ret_changed, char *why)
{
	_cleanup_close_ int dfd = -1;
	struct ni_chase c;

	*ret_changed = false;
	/* The last component is removed itself (a symlink, not its target); those before it are checked. */
	dfd = ni_chase(root_fd, path, NI_CHASE_PARENT | NI_CHASE_NOFOLLOW, 0, &c);
	if (dfd == -ENOENT)
		return 0;
	if (dfd < 0)
		return chased(dfd, &c, why);
	if (unlinkat(dfd, c.name, 0) < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno != EISDIR)
			return -errno;
		if (unlinkat(dfd, c.name, AT_REMOVEDIR) < 0)
			return errno == ENOENT ? 0 : -errno;
	}
	*ret_changed = true;
	return fsync(dfd) < 0 ? -errno : 0;
}

int ni_file_exists(int root_fd, const char *path, bool *ret_exists, char *why)
{
	struct ni_chase c;
	int fd = ni_chase(root_fd, path, 0, 0, &c);

	if (fd >= 0) {
		close(fd);
		*ret_exists = true;
		return 0;
	}
	if (fd == -ENOENT || fd == -ENOTDIR) {
		*ret_exists = false;
		return 0;
	}
	return chased(fd, &c, why);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ni_file_list(int root_fd, const char *path, char ***ret, size_t *ret_n, char *why)
{
	_cleanup_close_ int fd = -1, dfd = -1;
	struct ni_chase c;
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;
	DIR *d;

	fd = ni_chase(root_fd, path, 0, 0, &c);
	if (fd < 0)
		return chased(fd, &c, why);
	/* "." below the O_PATH fd: the directory the walk reached, never looked up by name again */
	dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	d = fdopendir(dfd);
	if (!d)
		return -errno;
	dfd = -1; /* owned by d */
	while ((errno = 0, de = readdir(d))) {
		char **nv;
		if (ni_streq(de->d_name, ".") || ni_streq(de->d_name, ".."))
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv || !(nv[n] = strdup(de->d_name))) {
			ni_strv_free(nv ? nv : v, n);
			closedir(d);
			return -ENOMEM;
		}
		v = nv;
		n++;
	}
	if (errno) {
		int r = -errno;
		ni_strv_free(v, n);
		closedir(d);
		return r;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_names);
	*ret = v;
	*ret_n = n;
	return 0;
}

int ni_file_stat(int root_fd, const char *path, struct stat *ret, char *why)
{
	_cleanup_close_ int fd = -1;
	struct ni_chase c;

	fd = ni_chase(root_fd, path, 0, 0, &c);
	if (fd < 0)
		return chased(fd, &c, why);
	return fstat(fd, ret) < 0 ? -errno : 0;
}

/* The target of the link name in dfd, into buf; -EINVAL when name is not a symlink. */
static int read_link_at(int dfd, const char *name, char *buf, size_t size)
{
	ssize_t n = readlinkat(dfd, name, buf, size);

	if (n < 0)
		return -errno;
	if ((size_t)n >= size)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return 0;
}

int ni_file_symlink(int root_fd, const char *target, const char *path, bool check_only, bool *ret_changed, char *why)
{
	_cleanup_close_ int dfd = -1, tfd = -1;
	char cur[PATH_MAX + 1], tmp[NAME_MAX + 1];
	struct ni_chase c;
	struct stat st;
	int r;

	*ret_changed = false;
	if (!*target || strlen(target) >= PATH_MAX)
		return -EINVAL;
	/* NOFOLLOW: the link itself is what we look at and replace, not where an old one points */
	dfd = ni_chase(root_fd, path, NI_CHASE_PARENT | NI_CHASE_NOFOLLOW, 0, &c);
	if (dfd < 0)
		return chased(dfd, &c, why);
	if (fstatat(dfd, c.name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!S_ISLNK(st.st_mode))
			return -EEXIST;
		r = read_link_at(dfd, c.name, cur, sizeof(cur));
		if (r < 0 && r != -ENAMETOOLONG)
			return r;
		if (r == 0 && ni_streq(cur, target))
			return 0;
		if (check_only) {
			*ret_changed = true;
			return 0;
		}
	} else if (errno != ENOENT) {
		return -errno;
	} else if (check_only) {
		*ret_changed = true;
		return 0;
	} else if (symlinkat(target, dfd, c.name) == 0) {
		*ret_changed = true;
		return fsync(dfd) < 0 ? -errno : 0;
	} else if (errno != EEXIST) {
		return -errno;
	} else {
		return -EEXIST; /* made by someone else just now: not ours to replace */
	}
	/* A new link under a temp name (the name ni_make_temp reserves), renamed over the old one. */
	tfd = ni_make_temp(dfd, c.name, 0600, tmp);
	if (tfd < 0)
		return tfd;
	tfd = ni_safe_close(tfd);
	if (unlinkat(dfd, tmp, 0) < 0 || symlinkat(target, dfd, tmp) < 0)
		return -errno;
	/* Only a symlink is replaced: one swapped for a file since the check stays. RENAME_EXCHANGE
	 * would need 3.15; a check just before the rename is what the kernel lets us do. */
	if (fstatat(dfd, c.name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISLNK(st.st_mode)) {
		(void)unlinkat(dfd, tmp, 0);
		return -EEXIST;
	}
	if (renameat(dfd, tmp, dfd, c.name) < 0) {
		r = -errno;
		(void)unlinkat(dfd, tmp, 0);
		return r;
	}
	*ret_changed = true;
	return fsync(dfd) < 0 ? -errno : 0;
}
