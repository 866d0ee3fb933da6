/* Host files through a root fd: confined path resolution, atomic replace, idempotent metadata. */
#define _GNU_SOURCE
#include "file.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "util.h"

#define COMPARE_CHUNK 16384
#define TEMP_TRIES 64

static const char *rel_path(const char *path)
{
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

int ni_file_open_in_root(int root_fd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	const char *rel = rel_path(path);
	int fd;

	fd = (int)syscall(SYS_openat2, root_fd, rel, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		fd = openat(root_fd, rel, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
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

int ni_file_read_fd(int fd, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;

	for (;;) {
		ssize_t n;
		/* Room for max + 1 bytes at most: reading that one extra byte is how "too big" shows. */
		if (cap - len < 2) {
			size_t ncap = cap ? 2 * cap : 4096;
			char *b;
			if (ncap > max + 2)
				ncap = max + 2;
			b = realloc(buf, ncap);
			if (!b)
				return -ENOMEM;
			buf = b;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return -EFBIG;
	}
	buf[len] = '\0';
	*ret = steal_pointer(&buf);
	*ret_len = len;
	return 0;
}

int ni_file_read(int root_fd, const char *path, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;

	fd = ni_file_open_in_root(root_fd, path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return fd;
	return ni_file_read_fd(fd, NI_FILE_READ_MAX, ret, ret_len);
}

/* "/a/b/c/" -> "a/b" and "c"; "/c" -> "." and "c". The root itself and "." or ".." last are -EINVAL. */
static int split_path(const char *path, char **ret_dir, char **ret_base)
{
	const char *start = path, *end, *slash, *b;
	_cleanup_free_ char *dir = NULL, *base = NULL;

	while (*start == '/')
		start++;
	end = start + strlen(start);
	while (end > start && end[-1] == '/')
		end--;
	if (end == start)
		return -EINVAL;
	slash = memrchr(start, '/', (size_t)(end - start));
	b = slash ? slash + 1 : start;
	if (is_dot_part(b, (size_t)(end - b)))
		return -EINVAL;
	if ((size_t)(end - b) > NAME_MAX)
		return -ENAMETOOLONG;
	dir = slash ? strndup(start, (size_t)(slash - start)) : strdup(".");
	base = strndup(b, (size_t)(end - b));
	if (!dir || !base)
		return -ENOMEM;
	*ret_dir = steal_pointer(&dir);
	*ret_base = steal_pointer(&base);
	return 0;
}

/*
 * Opens the directory that holds path's last component (O_RDONLY, so it can be fsync'ed) and
 * names that component. With follow, a symlink there is followed, inside the root, to what it
 * names: writing /etc/resolv.conf writes the file it points to, as a shell's ">" would.
 */
static int resolve_parent(int root_fd, const char *path, bool follow, int *ret_dir_fd, char **ret_base)
{
	_cleanup_free_ char *cur = strdup(path), *dir = NULL, *base = NULL;
	_cleanup_close_ int dfd = -1;
	char target[PATH_MAX];

	if (!cur)
		return -ENOMEM;
	for (int hops = 0;; hops++) {
		ssize_t n;
		int r;

		free(dir);
		free(base);
		dir = base = NULL;
		dfd = ni_safe_close(dfd);
		r = split_path(cur, &dir, &base);
		if (r < 0)
			return r;
		r = ni_file_open_in_root(root_fd, dir, O_RDONLY | O_DIRECTORY);
		if (r < 0)
			return r;
		dfd = r;
		if (!follow)
			break;
		n = readlinkat(dfd, base, target, sizeof(target));
		if (n < 0 && (errno == EINVAL || errno == ENOENT))
			break; /* not a symlink, or nothing there yet */
		if (n < 0)
			return -errno;
		if ((size_t)n >= sizeof(target))
			return -ENAMETOOLONG;
		if (hops >= NI_FILE_SYMLINK_HOPS)
			return -ELOOP;
		target[n] = '\0';
		free(cur);
		/* A relative target is relative to the link's directory; either way it resolves in the root. */
		if (target[0] == '/')
			cur = strdup(target);
		else if (asprintf(&cur, "%s/%s", dir, target) < 0)
			cur = NULL;
		if (!cur)
			return -ENOMEM;
	}
	*ret_dir_fd = steal_fd(&dfd);
	*ret_base = steal_pointer(&base);
	return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Whether the file base in dfd holds exactly data; read in chunks, nothing allocated. */
static int same_content(int dfd, const char *base, const void *data, size_t len, bool *ret_same)
{
	_cleanup_close_ int fd = -1;
	char buf[COMPARE_CHUNK];
	size_t off = 0;

	fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		if ((size_t)n > len - off || memcmp(buf, (const char *)data + off, (size_t)n) != 0) {
			*ret_same = false;
			return 0;
		}
		off += (size_t)n;
	}
	*ret_same = off == len;
	return 0;
}

/* -1 ids mean "leave as is", as for fchown. */
static bool attrs_differ(const struct stat *st, mode_t mode, uid_t uid, gid_t gid)
{
	return (st->st_mode & 07777) != mode || (uid != (uid_t)-1 && st->st_uid != uid) ||
	       (gid != (gid_t)-1 && st->st_gid != gid);
}

/* Owner first, then mode: chown may clear set-id bits, so the mode is applied after it. */
static int apply_attrs(int fd, mode_t mode, uid_t uid, gid_t gid, bool *ret_changed)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	*ret_changed = attrs_differ(&st, mode, uid, gid);
	if (!*ret_changed)
		return 0;
	if (((uid != (uid_t)-1 && st.st_uid != uid) || (gid != (gid_t)-1 && st.st_gid != gid)) && fchown(fd, uid, gid) < 0)
		return -errno;
	if (fchmod(fd, mode) < 0)
		return -errno;
	return 0;
}

/* A new, exclusive ".<base>.<random>.tmp" next to base; its name goes to name. */
static int make_temp(int dfd, const char *base, char name[static NAME_MAX + 1], int *ret_fd)
{
	for (int i = 0; i < TEMP_TRIES; i++) {
		uint32_t rnd;
		int fd;

		if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			rnd = (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() << 16) ^ (uint32_t)i;
		}
		snprintf(name, NAME_MAX + 1, ".%.200s.%08x.tmp", base, (unsigned)rnd);
		fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
		if (fd >= 0) {
			*ret_fd = fd;
			return 0;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

/* The fallback for a bind-mounted target, where rename cannot replace it: rewrite the inode itself. */
static int write_in_place(int dfd, const char *base, const void *data, size_t len, mode_t mode, uid_t uid, gid_t gid)
{
	_cleanup_close_ int fd = -1;
	bool changed;
	int r;

	fd = openat(dfd, base, O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = write_all(fd, data, len);
	if (r < 0)
		return r;
	if (ftruncate(fd, (off_t)len) < 0)
		return -errno;
	r = apply_attrs(fd, mode, uid, gid, &changed);
	if (r < 0)
		return r;
	return fsync(fd) < 0 ? -errno : 0;
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
static int write_kernel_file(int dfd, const char *base, const void *data, size_t len, enum ni_file_change *ret_change)
{
	_cleanup_close_ int fd = -1;
	bool same = false;
	int r;

	if ((r = same_content(dfd, base, data, len, &same)) < 0 && r != -ENOENT)
		return r;
	if (same)
		return 0;
	fd = openat(dfd, base, O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = write_all(fd, data, len);
	if (r < 0)
		return r;
	*ret_change = NI_FILE_KERNEL;
	return 0;
}

int ni_file_write(int root_fd, const char *path, const void *data, size_t len,
		  const struct ni_file_attrs *attrs, enum ni_file_change *ret_change)
{
	_cleanup_close_ int dfd = -1, fd = -1;
	_cleanup_free_ char *base = NULL;
	char tmp[NAME_MAX + 1];
	mode_t mode = attrs->has_mode ? attrs->mode : 0644;
	uid_t uid = attrs->has_uid ? attrs->uid : (uid_t)-1;
	gid_t gid = attrs->has_gid ? attrs->gid : (gid_t)-1;
	bool changed, busy = false;
	struct stat st;
	int r;

	*ret_change = NI_FILE_UNCHANGED;
	r = resolve_parent(root_fd, path, true, &dfd, &base);
	if (r < 0)
		return r;
	if (kernel_fs(dfd))
		return write_kernel_file(dfd, base, data, len, ret_change);

	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		bool same = (uint64_t)st.st_size == len;
		if (S_ISDIR(st.st_mode))
			return -EISDIR;
		if (!S_ISREG(st.st_mode))
			return -EINVAL; /* a device or fifo, or a symlink swapped in since we looked */
		/* What attrs leave open stays as it is. */
		if (!attrs->has_mode)
			mode = st.st_mode & 07777;
		if (!attrs->has_uid)
			uid = st.st_uid;
		if (!attrs->has_gid)
			gid = st.st_gid;
		if (same && (r = same_content(dfd, base, data, len, &same)) < 0)
			return r;
		if (same && !attrs_differ(&st, mode, uid, gid))
			return 0;
		if (same) {
			/* Only metadata: fix it on the file, no need to replace it. */
			fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
			if (fd < 0)
				return -errno;
			r = apply_attrs(fd, mode, uid, gid, &changed);
			if (r < 0)
				return r;
			if (fsync(fd) < 0)
				return -errno;
			*ret_change = changed ? NI_FILE_ATTRS : NI_FILE_UNCHANGED;
			return 0;
		}
	} else if (errno != ENOENT) {
		return -errno;
	}

	r = make_temp(dfd, base, tmp, &fd);
	if (r < 0)
		return r;
	r = write_all(fd, data, len);
	if (r >= 0)
		r = apply_attrs(fd, mode, uid, gid, &changed);
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	fd = ni_safe_close(fd);
	if (r >= 0 && renameat(dfd, tmp, dfd, base) < 0) {
		r = -errno;
		busy = r == -EBUSY;
	}
	if (r < 0) {
		unlinkat(dfd, tmp, 0);
		if (!busy)
			return r;
		r = write_in_place(dfd, base, data, len, mode, uid, gid);
		if (r < 0)
			return r;
		*ret_change = NI_FILE_IN_PLACE;
		return 0;
	}
	*ret_change = NI_FILE_REPLACED;
	/* The rename is durable once the directory is. */
	return fsync(dfd) < 0 ? -errno : 0;
}

/* One level: make it (or find it, possibly through a symlink), then give it attrs if any. */
static int mkdir_one(int root_fd, const char *path, const struct ni_file_attrs *attrs, bool *changed)
{
	_cleanup_close_ int dfd = -1, fd = -1;
	_cleanup_free_ char *base = NULL;
	bool created = false, fixed = false;
	mode_t mode;
	struct stat st;
	int r;

	r = resolve_parent(root_fd, path, false, &dfd, &base);
	if (r < 0)
		return r;
	if (mkdirat(dfd, base, attrs && attrs->has_mode ? attrs->mode & 0777 : 0755) == 0)
		created = true;
	else if (errno != EEXIST)
		return -errno;
	if (attrs) {
		fd = ni_file_open_in_root(root_fd, path, O_RDONLY | O_DIRECTORY);
		if (fd < 0)
			return fd;
		if (fstat(fd, &st) < 0)
			return -errno;
		/* A new directory gets its mode exactly, whatever the umask; an old one only when asked. */
		mode = attrs->has_mode ? attrs->mode : created ? 0755 : st.st_mode & 07777;
		r = apply_attrs(fd, mode, attrs->has_uid ? attrs->uid : (uid_t)-1,
				attrs->has_gid ? attrs->gid : (gid_t)-1, &fixed);
		if (r < 0)
			return r;
	}
	if (created || fixed)
		*changed = true;
	if (created && fsync(dfd) < 0)
		return -errno;
	return 0;
}

int ni_file_mkdir(int root_fd, const char *path, const struct ni_file_attrs *attrs, bool parents,
		  bool *ret_changed)
{
	static const struct ni_file_attrs none = { 0 };
	_cleanup_free_ char *prefix = NULL;
	int r;

	*ret_changed = false;
	if (parents) {
		prefix = strdup(path);
		if (!prefix)
			return -ENOMEM;
		/* Each prefix that ends a part ("/a", "/a/b" of "/a/b/c"), made without attrs. */
		for (char *p = prefix + 1; *p; p++) {
			if (*p != '/' || p[-1] == '/')
				continue;
			*p = '\0';
			r = mkdir_one(root_fd, prefix, NULL, ret_changed);
			if (r < 0)
				return r;
			*p = '/';
		}
	}
	return mkdir_one(root_fd, path, attrs ? attrs : &none, ret_changed);
}

int ni_file_remove(int root_fd, const char *path, bool *ret_changed)
{
	_cleanup_close_ int dfd = -1;
	_cleanup_free_ char *base = NULL;
	int r;

	*ret_changed = false;
	r = resolve_parent(root_fd, path, false, &dfd, &base);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (unlinkat(dfd, base, 0) < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno != EISDIR)
			return -errno;
		if (unlinkat(dfd, base, AT_REMOVEDIR) < 0)
			return errno == ENOENT ? 0 : -errno;
	}
	*ret_changed = true;
	return fsync(dfd) < 0 ? -errno : 0;
}

int ni_file_exists(int root_fd, const char *path, bool *ret_exists)
{
	int fd = ni_file_open_in_root(root_fd, path, O_PATH);

	if (fd >= 0) {
		close(fd);
		*ret_exists = true;
		return 0;
	}
	if (fd == -ENOENT || fd == -ENOTDIR) {
		*ret_exists = false;
		return 0;
	}
	return fd;
}
