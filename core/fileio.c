/* The one home for file I/O: whole writes, bounded reads, the safe path resolver, atomic replace. */
#define _GNU_SOURCE
#include "fileio.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

#include "util.h"

#define COMPARE_CHUNK 16384
#define TEMP_TRIES 64

int ni_write_all(int fd, const void *data, size_t len)
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

int ni_read_fd_bounded(int fd, size_t max, char **ret, size_t *ret_len)
{
	struct ni_buf b = NI_BUF_INIT(0);
	size_t len;

	for (;;) {
		ssize_t n;
		size_t room;
		int r;

		/* Room for max + 1 bytes at most: reading that one extra byte is how "too big" shows. */
		r = ni_buf_reserve(&b, b.len < 4096 ? 4096 : b.len);
		if (r < 0)
			return r;
		room = b.cap - b.len - 1;
		if (room > max + 1 - b.len)
			room = max + 1 - b.len;
		n = read(fd, b.p + b.len, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			ni_buf_free(&b);
			return r;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
		if (b.len > max) {
			ni_buf_free(&b);
			return -EFBIG;
		}
	}
	/* An empty file still gets its buffer (b.p may be NULL before the first reserve: not here). */
	*ret = ni_buf_steal(&b, &len);
	if (!*ret)
		return -ENOMEM;
	*ret_len = len;
	return 0;
}

int ni_read_virtual_fd(int fd, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *buf = NULL;
	ssize_t n;

	if (max >= SIZE_MAX - 1)
		return -EINVAL;
	buf = malloc(max + 2);
	if (!buf)
		return -ENOMEM;
	do
		n = read(fd, buf, max + 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n > max)
		return -EFBIG;
	buf[n] = '\0';
	*ret = steal_pointer(&buf);
	*ret_len = (size_t)n;
	return 0;
}

int ni_fsync_dir(int dir_fd)
{
	/* "." reopens the very directory dir_fd names (no lookup by name), readable so fsync works. */
	_cleanup_close_ int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	return fsync(fd) < 0 ? -errno : 0;
}

/*
 * systemd's unsafe_transition: leaving a directory that a non-root user owns for something another
 * user owns. That user could have put anything there (a link, a hard link, a mount point's parent).
 */
static bool unsafe_transition(const struct stat *from, const struct stat *to)
{
	return from->st_uid != 0 && from->st_uid != to->st_uid;
}

/* A link another user planted: neither root's nor its directory owner's. */
static bool unsafe_symlink(const struct stat *dir, const struct stat *link)
{
	return link->st_uid != 0 && link->st_uid != dir->st_uid;
}

/* Formats into a buffer of size n, cut to fit: for explanations, where the start says enough. */
__attribute__((format(printf, 3, 4))) static void say(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, n, fmt, ap);
	va_end(ap);
}

/* dir + "/" + name into out (PATH_MAX), "/name" for the root; a long one is cut (messages only). */
static void path_join(char *out, const char *dir, const char *name)
{
	say(out, PATH_MAX, "%s%s%s", dir, ni_streq(dir, "/") ? "" : "/", name);
}

static int path_down(char path[static PATH_MAX], const char *name)
{
	size_t n = strlen(path), k = strlen(name);

	if (n + 1 + k >= PATH_MAX)
		return -ENAMETOOLONG;
	if (n > 1)
		path[n++] = '/';
	memcpy(path + n, name, k + 1);
	return 0;
}

static void path_up(char path[static PATH_MAX])
{
	char *slash = strrchr(path, '/');

	if (slash == path)
		path[1] = '\0';
	else if (slash)
		*slash = '\0';
}

static int refuse_symlink(struct ni_chase *c, const char *orig, const char *link_path, const struct stat *dir,
			  const struct stat *link)
{
	/* The caller prefixes the path the recipe wrote; name the link only when it is another one. */
	if (ni_streq(orig, link_path))
		say(c->why, sizeof(c->why), "refusing to follow a symlink owned by uid %u in a directory owned by uid %u "
			 "(unsafe symlink: only root's links, or those of the directory's owner, are followed)",
			 (unsigned)link->st_uid, (unsigned)dir->st_uid);
	else
		say(c->why, sizeof(c->why), "refusing to follow the symlink %s, owned by uid %u in a directory owned by "
			 "uid %u (unsafe symlink: only root's links, or those of the directory's owner, are followed)",
			 link_path, (unsigned)link->st_uid, (unsigned)dir->st_uid);
	return -ENOLINK;
}

static int refuse_open(char *why, const char *path, const struct stat *dir, const struct stat *st)
{
	if (why)
		say(why, NI_WHY_MAX, "refusing to open %s, owned by uid %u, in a directory owned by uid %u "
			 "(unsafe transition: a directory a non-root user owns leads only to what that user owns)",
			 path, (unsigned)st->st_uid, (unsigned)dir->st_uid);
	return -ENOLINK;
}

static int refuse_transition(char *why, const char *from_path, const struct stat *from, const char *to_path,
			     const struct stat *to)
{
	if (why)
		say(why, NI_WHY_MAX, "refusing to go from %s, a directory owned by uid %u, to %s, owned by uid %u "
			 "(unsafe transition: a directory a non-root user owns leads only to what that user owns)",
			 from_path, (unsigned)from->st_uid, to_path, (unsigned)to->st_uid);
	return -ENOLINK;
}

/*
 * The walk. cur is an O_PATH fd of the directory reached so far, c->path its path inside the root;
 * todo holds what is left to resolve. A symlink's target is put in front of the rest of todo. Each
 * step from cur to the next object is checked (unsafe_transition) before that object becomes cur.
 */
int ni_chase(int root_fd, const char *path, unsigned flags, mode_t dir_mode, struct ni_chase *c)
{
	_cleanup_close_ int cur = -1;
	struct stat root_st, cur_st;
	char todo[PATH_MAX], link[PATH_MAX], next[PATH_MAX];
	const char *p = todo;
	unsigned hops = 0;
	bool parent = flags & NI_CHASE_PARENT;

	c->name[0] = '\0';
	c->why[0] = '\0';
	c->made = 0;
	strcpy(c->path, "/");
	if (strlen(path) >= sizeof(todo))
		return -ENAMETOOLONG;
	strcpy(todo, path);
	cur = openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -errno;
	if (fstat(cur, &root_st) < 0)
		return -errno;
	cur_st = root_st;

	for (;;) {
		_cleanup_close_ int fd = -1;
		const char *comp, *rest;
		char name[NAME_MAX + 1];
		struct stat st;
		size_t n;
		ssize_t k;
		bool last;
		int r;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		comp = p;
		n = strcspn(p, "/");
		rest = p + n;
		last = rest[strspn(rest, "/")] == '\0';
		p = rest;
		if (n > NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(name, comp, n);
		name[n] = '\0';

		if (ni_streq(name, ".") || ni_streq(name, "..")) {
			if (last && parent)
				return -EINVAL; /* no name to hand back */
			if (name[1] == '\0' || ni_streq(c->path, "/"))
				continue; /* ".." at the root stays there, as RESOLVE_IN_ROOT does */
			fd = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (fd < 0 || fstat(fd, &st) < 0)
				return -errno;
			strcpy(next, c->path);
			path_up(next);
			if (unsafe_transition(&cur_st, &st))
				return refuse_transition(c->why, c->path, &cur_st, next, &st);
			strcpy(c->path, next);
			ni_safe_close(cur);
			cur = steal_fd(&fd);
			cur_st = st;
			continue;
		}

		path_join(next, c->path, name);
		if (last && parent) {
			/* The last component is only named, unless it is a link to follow. */
			if (fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno != ENOENT)
					return -errno;
				memcpy(c->name, name, n + 1);
				break;
			}
			if (!S_ISLNK(st.st_mode) || (flags & NI_CHASE_NOFOLLOW)) {
				memcpy(c->name, name, n + 1);
				break;
			}
		} else {
			bool made = false;

			fd = openat(cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0 && errno == ENOENT && (flags & NI_CHASE_MKDIR)) {
				if (mkdirat(cur, name, dir_mode) == 0) {
					made = true;
					c->made++;
					r = ni_fsync_dir(cur);
					if (r < 0)
						return r;
				} else if (errno != EEXIST) {
					return -errno;
				}
				fd = openat(cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			}
			if (fd < 0 || fstat(fd, &st) < 0)
				return -errno;
			if (!S_ISLNK(st.st_mode) || (last && (flags & NI_CHASE_NOFOLLOW))) {
				/* A directory this walk made is ours (one swapped in for it is checked: a
				 * link is followed under the rules, a directory the user made is theirs). */
				if (!(made && S_ISDIR(st.st_mode) && st.st_uid == geteuid()) && unsafe_transition(&cur_st, &st))
					return refuse_transition(c->why, c->path, &cur_st, next, &st);
				if (!last && !S_ISDIR(st.st_mode))
					return -ENOTDIR;
				r = path_down(c->path, name);
				if (r < 0)
					return r;
				ni_safe_close(cur);
				cur = steal_fd(&fd);
				cur_st = st;
				continue;
			}
		}

		/* A symlink to follow: the rules first, then its target in front of what is left. */
		if (unsafe_symlink(&cur_st, &st))
			return refuse_symlink(c, path, next, &cur_st, &st);
		if (++hops > NI_SYMLINK_HOPS)
			return -ELOOP;
		k = fd >= 0 ? readlinkat(fd, "", link, sizeof(link)) : readlinkat(cur, name, link, sizeof(link));
		if (k < 0)
			return -errno;
		if ((size_t)k >= sizeof(link))
			return -ENAMETOOLONG;
		if (k == 0)
			return -ENOENT; /* as the kernel treats an empty link */
		if ((size_t)k + strlen(p) >= sizeof(next))
			return -ENAMETOOLONG;
		memcpy(next, link, (size_t)k);
		strcpy(next + k, p);
		strcpy(todo, next);
		p = todo;
		if (link[0] == '/') {
			/* An absolute target starts again at the root: a step like any other. */
			if (unsafe_transition(&cur_st, &root_st)) {
				char at[PATH_MAX];
				path_join(at, c->path, name);
				say(next, sizeof(next), "/ (through the symlink %s)", at);
				return refuse_transition(c->why, c->path, &cur_st, next, &root_st);
			}
			fd = ni_safe_close(fd);
			fd = openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (fd < 0)
				return -errno;
			ni_safe_close(cur);
			cur = steal_fd(&fd);
			cur_st = root_st;
			strcpy(c->path, "/");
		}
	}

	if (!parent)
		return steal_fd(&cur);
	if (!c->name[0])
		return -EINVAL; /* the root itself has no parent to hand back */
	c->dir_st = cur_st;
	{
		int dfd = openat(cur, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		return dfd < 0 ? -errno : dfd;
	}
}

int ni_chase_open(int dir_fd, struct ni_chase *c, int flags, mode_t mode)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	fd = openat(dir_fd, c->name, flags | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, mode);
	if (fd < 0 || fstat(fd, &st) < 0)
		return -errno;
	/* A file this call created (O_EXCL) is ours; anything else is checked like a step of the walk. */
	if ((flags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL) && unsafe_transition(&c->dir_st, &st)) {
		char at[PATH_MAX];
		path_join(at, c->path, c->name);
		return refuse_open(c->why, at, &c->dir_st, &st);
	}
	return steal_fd(&fd);
}

int ni_make_temp(int dir_fd, const char *name, mode_t mode, char ret_name[static NAME_MAX + 1])
{
	/* ".<name>.tmp.<16 hex>": 1 + 5 + 16 bytes around the name, which is cut to fit NAME_MAX. */
	int keep = (int)(NAME_MAX - 22);

	for (int i = 0; i < TEMP_TRIES; i++) {
		uint64_t rnd;
		int fd;

		if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			rnd = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16) ^ (uint64_t)i;
		}
		snprintf(ret_name, NAME_MAX + 1, ".%.*s.tmp.%016" PRIx64, keep, name, rnd);
		fd = openat(dir_fd, ret_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, mode);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

int ni_fd_set_attrs(int fd, mode_t mode, uid_t uid, gid_t gid, bool *ret_changed)
{
	struct stat st;
	bool owner;

	*ret_changed = false;
	if (fstat(fd, &st) < 0)
		return -errno;
	owner = (uid != (uid_t)-1 && st.st_uid != uid) || (gid != (gid_t)-1 && st.st_gid != gid);
	if (owner) {
		if (fchown(fd, uid, gid) < 0)
			return -errno;
		*ret_changed = true;
		/* chown may have cleared set-id bits: the mode below is compared with what is there now. */
		if (fstat(fd, &st) < 0)
			return -errno;
	}
	if (mode != (mode_t)-1 && (st.st_mode & 07777) != mode) {
		if (fchmod(fd, mode) < 0)
			return -errno;
		*ret_changed = true;
	}
	return 0;
}

/* Whether fd holds exactly data; read in chunks, nothing allocated. */
static int same_content(int fd, const void *data, size_t len, bool *ret_same)
{
	char buf[COMPARE_CHUNK];
	size_t off = 0;

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

/* Opens an existing name in dir_fd without following it, under the transition rule. */
static int open_existing(int dir_fd, const struct stat *dir_st, const char *name, int flags, char *why)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	fd = openat(dir_fd, name, flags | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL; /* swapped since it was looked at */
	if (unsafe_transition(dir_st, &st))
		return refuse_open(why, name, dir_st, &st);
	return steal_fd(&fd);
}

/* The fallback for a bind-mounted target, where rename cannot replace it: rewrite the inode itself. */
static int write_in_place(int dir_fd, const struct stat *dir_st, const char *name, const void *data, size_t len,
			  unsigned flags, mode_t mode, uid_t uid, gid_t gid, char *why)
{
	_cleanup_close_ int fd = -1;
	bool changed;
	int r;

	fd = open_existing(dir_fd, dir_st, name, O_WRONLY, why);
	if (fd < 0)
		return fd;
	r = ni_write_all(fd, data, len);
	if (r < 0)
		return r;
	if (ftruncate(fd, (off_t)len) < 0)
		return -errno;
	r = ni_fd_set_attrs(fd, mode, uid, gid, &changed);
	if (r < 0)
		return r;
	return (flags & NI_WRITE_SYNC) && fsync(fd) < 0 ? -errno : 0;
}

int ni_write_atomic_at(int dir_fd, const char *name, const void *data, size_t len, unsigned flags,
		       const struct ni_file_attrs *attrs, enum ni_file_change *ret_change, char *why)
{
	_cleanup_close_ int fd = -1;
	char tmp[NAME_MAX + 1];
	mode_t mode = attrs && attrs->has_mode ? attrs->mode : 0644;
	uid_t uid = attrs && attrs->has_uid ? attrs->uid : (uid_t)-1;
	gid_t gid = attrs && attrs->has_gid ? attrs->gid : (gid_t)-1;
	struct stat dir_st, st;
	bool changed, busy = false;
	int r;

	*ret_change = NI_FILE_UNCHANGED;
	if (fstat(dir_fd, &dir_st) < 0)
		return -errno;
	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode))
			return -EISDIR;
		if (!S_ISREG(st.st_mode))
			return -EINVAL; /* a device, a fifo, or a symlink the caller did not resolve */
		/* What attrs leave open stays as it is. */
		if (!attrs || !attrs->has_mode)
			mode = st.st_mode & 07777;
		if (!attrs || !attrs->has_uid)
			uid = st.st_uid;
		if (!attrs || !attrs->has_gid)
			gid = st.st_gid;
		if ((flags & NI_WRITE_SKIP_SAME) && (uint64_t)st.st_size == len) {
			struct stat fst;
			bool same;
			fd = openat(dir_fd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
			if (fd < 0 || fstat(fd, &fst) < 0)
				return -errno;
			if (!S_ISREG(fst.st_mode))
				return -EINVAL; /* swapped since it was looked at */
			r = same_content(fd, data, len, &same);
			if (r < 0)
				return r;
			if (same && (fst.st_mode & 07777) == mode && fst.st_uid == uid && fst.st_gid == gid)
				return 0;
			/*
			 * Only metadata: fixed on the file itself, through this fd, unless the rule forbids
			 * touching it (another user's file in a non-root user's directory: a hard link to
			 * /etc/shadow, say). Then it is replaced below like new content: a new inode.
			 */
			if (same && !unsafe_transition(&dir_st, &fst)) {
				r = ni_fd_set_attrs(fd, mode, uid, gid, &changed);
				if (r < 0)
					return r;
				if (changed && (flags & NI_WRITE_SYNC) && fsync(fd) < 0)
					return -errno;
				*ret_change = changed ? NI_FILE_ATTRS : NI_FILE_UNCHANGED;
				return 0;
			}
			fd = ni_safe_close(fd);
		}
	} else if (errno != ENOENT) {
		return -errno;
	}

	fd = ni_make_temp(dir_fd, name, 0600, tmp);
	if (fd < 0)
		return fd;
	r = ni_write_all(fd, data, len);
	if (r >= 0)
		r = ni_fd_set_attrs(fd, mode, uid, gid, &changed);
	if (r >= 0 && (flags & NI_WRITE_SYNC) && fsync(fd) < 0)
		r = -errno;
	fd = ni_safe_close(fd);
	if (r >= 0 && renameat(dir_fd, tmp, dir_fd, name) < 0) {
		r = -errno;
		busy = r == -EBUSY;
	}
	if (r < 0) {
		unlinkat(dir_fd, tmp, 0);
		if (!busy)
			return r;
		r = write_in_place(dir_fd, &dir_st, name, data, len, flags, mode, uid, gid, why);
		if (r < 0)
			return r;
		*ret_change = NI_FILE_IN_PLACE;
		return 0;
	}
	*ret_change = NI_FILE_REPLACED;
	/* The rename is durable once the directory is. */
	return flags & NI_WRITE_SYNC ? ni_fsync_dir(dir_fd) : 0;
}

int ni_opendir_at(int dir_fd, DIR **ret)
{
	_cleanup_close_ int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d)
		return -errno;
	fd = -1; /* d owns it now */
	*ret = d;
	return 0;
}
