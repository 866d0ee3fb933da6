/* fileio.c: whole writes, bounded and virtual reads, the safe resolver, temp names, atomic replace. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "unit.h"

#define NOBODY 65534

/* Faults on demand; each wrapper passes through otherwise. */
static struct {
	unsigned writes;     /* write() calls seen */
	size_t write_max;    /* write() takes at most this many bytes (0: all) */
	unsigned eintr;      /* the next this many write() calls fail with EINTR */
	int write_errno;     /* write() fails with this */
	int rename_errno;    /* renameat() fails with this */
} fault;

ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
	fault.writes++;
	if (fault.eintr) {
		fault.eintr--;
		errno = EINTR;
		return -1;
	}
	if (fault.write_errno) {
		errno = fault.write_errno;
		return -1;
	}
	if (fault.write_max && n > fault.write_max)
		n = fault.write_max;
	return __real_write(fd, buf, n);
}

int __real_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
int __wrap_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
int __wrap_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
	if (fault.rename_errno) {
		errno = fault.rename_errno;
		return -1;
	}
	return __real_renameat(olddirfd, oldpath, newdirfd, newpath);
}

struct fixture {
	char dir[512]; /* <build>/t/unit-fileio: root/ is the resolver's root, outside/ is beyond it */
	int base_fd, root_fd;
};

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void put(int dirfd, const char *path, const char *content)
{
	int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(__real_write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

static const char *get(int dirfd, const char *path)
{
	static char buf[4096];
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static struct stat st_of(int dirfd, const char *path)
{
	struct stat st;

	assert_int_equal(fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW), 0);
	return st;
}

/* Entries of a directory whose name holds ".tmp." (the temp-file pattern). */
static int temps_in(int dirfd, const char *dir)
{
	int fd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
	DIR *d;
	struct dirent *e;

	assert_true(fd >= 0);
	d = fdopendir(fd);
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".tmp."))
			n++;
	closedir(d);
	return n;
}

/* A symlink owned by uid (chown -h), as another user would have planted it. */
static void plant(int dirfd, const char *target, const char *path, uid_t uid)
{
	assert_int_equal(symlinkat(target, dirfd, path), 0);
	assert_int_equal(fchownat(dirfd, path, uid, uid, AT_SYMLINK_NOFOLLOW), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("NI_TEST_TMP"), *build = getenv("BUILD");
	char cmd[600];

	/* Under the build dir (never /tmp): $NI_TEST_TMP, else $BUILD/t, else build/t. */
	if (tmp)
		snprintf(f->dir, sizeof(f->dir), "%s/unit-fileio", tmp);
	else
		snprintf(f->dir, sizeof(f->dir), "%s/t/unit-fileio", build ? build : "build");
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	f->base_fd = open(f->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->base_fd >= 0);
	assert_int_equal(mkdirat(f->base_fd, "root", 0755), 0);
	assert_int_equal(mkdirat(f->base_fd, "outside", 0755), 0);
	put(f->base_fd, "outside/secret", "outside the root\n");
	f->root_fd = openat(f->base_fd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->root_fd >= 0);
	assert_int_equal(mkdirat(f->root_fd, "etc", 0755), 0);
	assert_int_equal(mkdirat(f->root_fd, "run", 0755), 0);
	assert_int_equal(mkdirat(f->root_fd, "srv", 0755), 0);
	put(f->root_fd, "etc/hosts", "127.0.0.1 localhost\n");
	memset(&fault, 0, sizeof(fault));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->root_fd);
	close(f->base_fd);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void test_write_all(void **state)
{
	struct fixture *f = *state;
	const char *text = "a line that is written three bytes at a time\n";
	int fd = openat(f->root_fd, "etc/out", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	fault.write_max = 3;
	fault.eintr = 2;
	assert_int_equal(ni_write_all(fd, text, strlen(text)), 0);
	assert_string_equal(get(f->root_fd, "etc/out"), text);
	assert_true(fault.writes >= 2 + strlen(text) / 3);
	fault = (__typeof__(fault)){ .write_errno = ENOSPC };
	assert_int_equal(ni_write_all(fd, "x", 1), -ENOSPC);
	fault.write_errno = 0;
	assert_int_equal(ni_write_all(fd, "", 0), 0);
	close(fd);
}

static void test_read_bounded(void **state)
{
	struct fixture *f = *state;
	char *buf = NULL;
	size_t len = 99;
	int fd;

	fd = openat(f->root_fd, "etc/hosts", O_RDONLY | O_CLOEXEC);
	assert_int_equal(ni_read_fd_bounded(fd, 20, &buf, &len), 0); /* exactly max */
	assert_int_equal(len, 20);
	assert_string_equal(buf, "127.0.0.1 localhost\n");
	free(buf);
	lseek(fd, 0, SEEK_SET);
	assert_int_equal(ni_read_fd_bounded(fd, 19, &buf, &len), -EFBIG);
	lseek(fd, 0, SEEK_SET);
	assert_int_equal(ni_read_fd_bounded(fd, 0, &buf, &len), -EFBIG);
	close(fd);

	put(f->root_fd, "etc/empty", "");
	fd = openat(f->root_fd, "etc/empty", O_RDONLY | O_CLOEXEC);
	assert_int_equal(ni_read_fd_bounded(fd, 0, &buf, &len), 0);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	free(buf);
	close(fd);

	/* Larger than the first chunks: the buffer grows, the bytes are all there. */
	fd = openat(f->root_fd, "etc/big", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(__real_write(fd, "0123456789", 10), 10);
	close(fd);
	fd = openat(f->root_fd, "etc/big", O_RDONLY | O_CLOEXEC);
	assert_int_equal(ni_read_fd_bounded(fd, 100000, &buf, &len), 0);
	assert_int_equal(len, 100000);
	assert_int_equal(memcmp(buf + 99990, "0123456789", 10), 0);
	free(buf);
	close(fd);
}

/* One read(): what a second read would bring is not taken (a pipe shows it). */
static void test_read_virtual(void **state)
{
	int p[2];
	char *buf = NULL;
	size_t len;

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(__real_write(p[1], "1\n", 2), 2);
	assert_int_equal(ni_read_virtual_fd(p[0], 16, &buf, &len), 0);
	assert_int_equal(len, 2);
	assert_string_equal(buf, "1\n");
	free(buf);
	assert_int_equal(__real_write(p[1], "12345", 5), 5);
	assert_int_equal(ni_read_virtual_fd(p[0], 4, &buf, &len), -EFBIG);
	close(p[0]);
	close(p[1]);
}

static void test_fsync_dir(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(ni_fsync_dir(f->root_fd), 0); /* an O_PATH fd is enough */
	assert_int_equal(ni_fsync_dir(-1), -EBADF);
}

/* Path resolution inside the root: links, "..", loops, parents, mkdir -p. */
static void test_chase(void **state)
{
	struct fixture *f = *state;
	char *real = realpath(f->dir, NULL), abs_outside[600];
	struct ni_chase c;
	struct stat st;
	int fd;

	assert_non_null(real);
	snprintf(abs_outside, sizeof(abs_outside), "%s/outside", real);
	free(real);
	assert_int_equal(symlinkat("../outside", f->root_fd, "rel"), 0);
	assert_int_equal(symlinkat(abs_outside, f->root_fd, "abs"), 0);
	assert_int_equal(symlinkat("../../../../outside/secret", f->root_fd, "etc/secret"), 0);
	assert_int_equal(symlinkat("../run/resolv.conf", f->root_fd, "etc/resolv.conf"), 0);
	assert_int_equal(symlinkat("/etc", f->root_fd, "run/etc"), 0);
	put(f->root_fd, "run/resolv.conf", "nameserver 10.0.0.1\n");

	/* Absolute and ".." targets stay inside the root. */
	assert_int_equal(ni_chase(f->root_fd, "/rel/secret", 0, 0, &c), -ENOENT);
	assert_int_equal(ni_chase(f->root_fd, "/abs/secret", 0, 0, &c), -ENOENT);
	assert_int_equal(ni_chase(f->root_fd, "/etc/secret", 0, 0, &c), -ENOENT);
	assert_int_equal(ni_chase(f->root_fd, "/../../outside/secret", 0, 0, &c), -ENOENT);

	/* A relative link, followed; the result is an O_PATH fd of the file itself. */
	fd = ni_chase(f->root_fd, "/etc/resolv.conf", 0, 0, &c);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_ino, st_of(f->root_fd, "run/resolv.conf").st_ino);
	assert_string_equal(c.path, "/run/resolv.conf");
	close(fd);
	/* Not followed at the end with NOFOLLOW; always in the middle. */
	fd = ni_chase(f->root_fd, "/etc/resolv.conf", NI_CHASE_NOFOLLOW, 0, &c);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	close(fd);
	fd = ni_chase(f->root_fd, "//run/etc/../etc/./hosts", NI_CHASE_NOFOLLOW, 0, &c);
	assert_true(fd >= 0);
	assert_string_equal(c.path, "/etc/hosts");
	close(fd);

	/* PARENT: the directory and the name; a final link is followed to where it points. */
	fd = ni_chase(f->root_fd, "/etc/resolv.conf", NI_CHASE_PARENT, 0, &c);
	assert_true(fd >= 0);
	assert_string_equal(c.name, "resolv.conf");
	assert_string_equal(c.path, "/run");
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_ino, st_of(f->root_fd, "run").st_ino);
	close(fd);
	fd = ni_chase(f->root_fd, "/etc/resolv.conf", NI_CHASE_PARENT | NI_CHASE_NOFOLLOW, 0, &c);
	assert_true(fd >= 0);
	assert_string_equal(c.path, "/etc");
	assert_string_equal(c.name, "resolv.conf");
	close(fd);
	fd = ni_chase(f->root_fd, "/etc/new/", NI_CHASE_PARENT, 0, &c); /* need not exist */
	assert_true(fd >= 0);
	assert_string_equal(c.name, "new");
	close(fd);
	assert_int_equal(ni_chase(f->root_fd, "/", NI_CHASE_PARENT, 0, &c), -EINVAL);
	assert_int_equal(ni_chase(f->root_fd, "/nodir/x", NI_CHASE_PARENT, 0, &c), -ENOENT);
	assert_int_equal(ni_chase(f->root_fd, "/etc/hosts/x", NI_CHASE_PARENT, 0, &c), -ENOTDIR);

	/* Loops end. */
	assert_int_equal(symlinkat("loop-b", f->root_fd, "etc/loop-a"), 0);
	assert_int_equal(symlinkat("loop-a", f->root_fd, "etc/loop-b"), 0);
	assert_int_equal(ni_chase(f->root_fd, "/etc/loop-a", 0, 0, &c), -ELOOP);
	assert_int_equal(ni_chase(f->root_fd, "/etc/loop-a", NI_CHASE_PARENT, 0, &c), -ELOOP);

	/* MKDIR: mkdir -p inside the root, with the mode asked (before the umask). */
	umask(022);
	fd = ni_chase(f->root_fd, "/var/lib/app/conf", NI_CHASE_PARENT | NI_CHASE_MKDIR, 0750, &c);
	assert_true(fd >= 0);
	assert_int_equal(c.made, 3);
	assert_string_equal(c.path, "/var/lib/app");
	assert_string_equal(c.name, "conf");
	assert_int_equal(st_of(f->root_fd, "var/lib/app").st_mode & 07777, 0750);
	assert_int_equal(fstatat(f->root_fd, "var/lib/app/conf", &st, 0), -1);
	close(fd);
	fd = ni_chase(f->root_fd, "/run/etc/made", NI_CHASE_MKDIR, 0755, &c); /* through a link, made in /etc */
	assert_true(fd >= 0);
	assert_int_equal(c.made, 1);
	assert_true(S_ISDIR(st_of(f->root_fd, "etc/made").st_mode));
	close(fd);
}

/* The safety rule, with links and directories another user (nobody) owns. Needs root to chown. */
static void test_chase_unsafe(void **state)
{
	struct fixture *f = *state;
	struct ni_chase c;
	int fd;

	if (geteuid() != 0)
		skip();
	/* /tmp: root's, sticky and world-writable; /srv/app: nobody's. */
	assert_int_equal(mkdirat(f->root_fd, "tmp", 0755), 0);
	assert_int_equal(fchmodat(f->root_fd, "tmp", 01777, 0), 0);
	assert_int_equal(mkdirat(f->root_fd, "srv/app", 0755), 0);
	assert_int_equal(fchownat(f->root_fd, "srv/app", NOBODY, NOBODY, 0), 0);

	/* Rule 1: nobody's link in root's /tmp, whatever it points to. */
	plant(f->root_fd, "/etc/hosts", "tmp/planted", NOBODY);
	assert_int_equal(ni_chase(f->root_fd, "/tmp/planted", 0, 0, &c), -ENOLINK);
	assert_non_null(strstr(c.why, "refusing to follow a symlink owned by uid 65534 in a directory owned by uid 0"));
	assert_non_null(strstr(c.why, "unsafe symlink"));
	assert_int_equal(ni_chase(f->root_fd, "/tmp/planted", NI_CHASE_PARENT, 0, &c), -ENOLINK);
	/* As a middle component, the message names it. */
	plant(f->root_fd, "/etc", "tmp/dir", NOBODY);
	assert_int_equal(ni_chase(f->root_fd, "/tmp/dir/hosts", NI_CHASE_PARENT, 0, &c), -ENOLINK);
	assert_non_null(strstr(c.why, "the symlink /tmp/dir, owned by uid 65534"));
	/* Not followed, it is harmless: remove takes the link itself. */
	fd = ni_chase(f->root_fd, "/tmp/planted", NI_CHASE_PARENT | NI_CHASE_NOFOLLOW, 0, &c);
	assert_true(fd >= 0);
	assert_string_equal(c.name, "planted");
	close(fd);
	/* Root's own link there is fine. */
	assert_int_equal(symlinkat("/etc/hosts", f->root_fd, "tmp/roots"), 0);
	fd = ni_chase(f->root_fd, "/tmp/roots", 0, 0, &c);
	assert_true(fd >= 0);
	close(fd);

	/* Rule 2: from nobody's directory, only to what nobody owns: an absolute link, a ".." link, a
	 * plain entry root owns (a hard link nobody could have made). */
	plant(f->root_fd, "/etc", "srv/app/etc", NOBODY);
	assert_int_equal(ni_chase(f->root_fd, "/srv/app/etc/hosts", NI_CHASE_PARENT | NI_CHASE_NOFOLLOW, 0, &c),
			 -ENOLINK);
	assert_non_null(strstr(c.why, "refusing to go from /srv/app, a directory owned by uid 65534, to / (through "
				      "the symlink /srv/app/etc), owned by uid 0"));
	assert_non_null(strstr(c.why, "unsafe transition"));
	plant(f->root_fd, "../../etc", "srv/app/up", NOBODY);
	assert_int_equal(ni_chase(f->root_fd, "/srv/app/up/hosts", 0, 0, &c), -ENOLINK);
	assert_non_null(strstr(c.why, "to /srv, owned by uid 0"));
	assert_int_equal(ni_chase(f->root_fd, "/srv/app/../../etc", 0, 0, &c), -ENOLINK);
	put(f->root_fd, "srv/app/rootfile", "x");
	assert_int_equal(ni_chase(f->root_fd, "/srv/app/rootfile", 0, 0, &c), -ENOLINK);
	assert_non_null(strstr(c.why, "to /srv/app/rootfile, owned by uid 0"));

	/* What nobody owns in nobody's directory is nobody's business: allowed. */
	put(f->root_fd, "srv/app/data", "x");
	assert_int_equal(fchownat(f->root_fd, "srv/app/data", NOBODY, NOBODY, 0), 0);
	plant(f->root_fd, "data", "srv/app/current", NOBODY);
	fd = ni_chase(f->root_fd, "/srv/app/current", 0, 0, &c);
	assert_true(fd >= 0);
	close(fd);
	/* ni_chase_open applies rule 2 to what it opens. */
	fd = ni_chase(f->root_fd, "/srv/app/rootfile", NI_CHASE_PARENT, 0, &c);
	assert_true(fd >= 0);
	assert_int_equal(ni_chase_open(fd, &c, O_RDONLY, 0), -ENOLINK);
	assert_non_null(strstr(c.why, "refusing to open /srv/app/rootfile, owned by uid 0, in a directory owned by uid 65534"));
	close(fd);
	fd = ni_chase(f->root_fd, "/srv/app/current", NI_CHASE_PARENT, 0, &c);
	assert_true(fd >= 0);
	assert_string_equal(c.name, "data");
	{
		int ffd = ni_chase_open(fd, &c, O_RDONLY, 0);
		assert_true(ffd >= 0);
		close(ffd);
	}
	close(fd);
	/* Root's relative link across root's directories keeps working (resolv.conf's shape). */
	assert_int_equal(mkdirat(f->root_fd, "run/systemd", 0755), 0);
	put(f->root_fd, "run/systemd/stub-resolv.conf", "nameserver 127.0.0.53\n");
	assert_int_equal(symlinkat("../run/systemd/stub-resolv.conf", f->root_fd, "etc/resolv.conf"), 0);
	fd = ni_chase(f->root_fd, "/etc/resolv.conf", NI_CHASE_PARENT, 0, &c);
	assert_true(fd >= 0);
	assert_string_equal(c.path, "/run/systemd");
	close(fd);
}

static void test_make_temp(void **state)
{
	struct fixture *f = *state;
	char name[NAME_MAX + 1], other[NAME_MAX + 1], longname[NAME_MAX + 1];
	regex_t re;
	int fd, fd2;

	assert_int_equal(regcomp(&re, "^\\.hosts\\.tmp\\.[0-9a-f]{16}$", REG_EXTENDED | REG_NOSUB), 0);
	fd = ni_make_temp(f->root_fd, "hosts", 0600, name);
	assert_true(fd >= 0);
	assert_int_equal(regexec(&re, name, 0, NULL, 0), 0);
	assert_int_equal(st_of(f->root_fd, name).st_mode & 07777, 0600);
	fd2 = ni_make_temp(f->root_fd, "hosts", 0600, other);
	assert_true(fd2 >= 0);
	assert_string_not_equal(name, other);
	close(fd);
	close(fd2);
	unlinkat(f->root_fd, name, 0);
	unlinkat(f->root_fd, other, 0);
	regfree(&re);

	/* A name at NAME_MAX still gets the whole pattern, the middle cut to fit. */
	memset(longname, 'n', NAME_MAX);
	longname[NAME_MAX] = '\0';
	fd = ni_make_temp(f->root_fd, longname, 0600, name);
	assert_true(fd >= 0);
	assert_int_equal(strlen(name), NAME_MAX);
	assert_int_equal(strncmp(name + NAME_MAX - 21, ".tmp.", 5), 0);
	close(fd);
	unlinkat(f->root_fd, name, 0);
}

static void test_write_atomic(void **state)
{
	struct fixture *f = *state;
	struct ni_file_attrs attrs = { .mode = 0640, .has_mode = true };
	enum ni_file_change change;
	struct stat st, st2;
	int dfd = openat(f->root_fd, "etc", O_PATH | O_DIRECTORY | O_CLOEXEC); /* O_PATH is enough */

	assert_true(dfd >= 0);
	assert_int_equal(ni_write_atomic_at(dfd, "app.conf", "a=1\n", 4, NI_WRITE_SYNC | NI_WRITE_SKIP_SAME, &attrs,
					    &change, NULL), 0);
	assert_int_equal(change, NI_FILE_REPLACED);
	assert_string_equal(get(f->root_fd, "etc/app.conf"), "a=1\n");
	st = st_of(f->root_fd, "etc/app.conf");
	assert_int_equal(st.st_mode & 07777, 0640);

	/* SKIP_SAME: nothing written; without it, replaced all the same (a new inode). */
	fault.writes = 0;
	assert_int_equal(ni_write_atomic_at(dfd, "app.conf", "a=1\n", 4, NI_WRITE_SKIP_SAME, &attrs, &change, NULL), 0);
	assert_int_equal(change, NI_FILE_UNCHANGED);
	assert_int_equal(fault.writes, 0);
	assert_int_equal(ni_write_atomic_at(dfd, "app.conf", "a=1\n", 4, 0, NULL, &change, NULL), 0);
	assert_int_equal(change, NI_FILE_REPLACED);
	st2 = st_of(f->root_fd, "etc/app.conf");
	assert_int_not_equal(st.st_ino, st2.st_ino);
	assert_int_equal(st2.st_mode & 07777, 0640); /* kept: attrs did not say */

	/* Attributes alone: fixed on the same inode. */
	attrs.mode = 0600;
	assert_int_equal(ni_write_atomic_at(dfd, "app.conf", "a=1\n", 4, NI_WRITE_SKIP_SAME, &attrs, &change, NULL), 0);
	assert_int_equal(change, NI_FILE_ATTRS);
	assert_int_equal(st_of(f->root_fd, "etc/app.conf").st_ino, st2.st_ino);
	assert_int_equal(st_of(f->root_fd, "etc/app.conf").st_mode & 07777, 0600);

	/* Failures leave the old content and no temp file. */
	fault.write_errno = EIO;
	assert_int_equal(ni_write_atomic_at(dfd, "app.conf", "b=2\n", 4, NI_WRITE_SYNC, NULL, &change, NULL), -EIO);
	fault.write_errno = 0;
	fault.rename_errno = EACCES;
	assert_int_equal(ni_write_atomic_at(dfd, "app.conf", "b=2\n", 4, NI_WRITE_SYNC, NULL, &change, NULL), -EACCES);
	fault.rename_errno = 0;
	assert_string_equal(get(f->root_fd, "etc/app.conf"), "a=1\n");
	assert_int_equal(temps_in(f->root_fd, "etc"), 0);

	/* EBUSY (a bind-mounted file): rewritten in place, and said so. */
	fault.rename_errno = EBUSY;
	assert_int_equal(ni_write_atomic_at(dfd, "app.conf", "longer=2\n", 9, NI_WRITE_SYNC, NULL, &change, NULL), 0);
	fault.rename_errno = 0;
	assert_int_equal(change, NI_FILE_IN_PLACE);
	assert_string_equal(get(f->root_fd, "etc/app.conf"), "longer=2\n");
	assert_int_equal(st_of(f->root_fd, "etc/app.conf").st_ino, st2.st_ino);
	assert_int_equal(temps_in(f->root_fd, "etc"), 0);

	/* Not a regular file. */
	assert_int_equal(mkdirat(f->root_fd, "etc/d", 0755), 0);
	assert_int_equal(ni_write_atomic_at(dfd, "d", "x", 1, 0, NULL, &change, NULL), -EISDIR);
	assert_int_equal(symlinkat("hosts", f->root_fd, "etc/l"), 0);
	assert_int_equal(ni_write_atomic_at(dfd, "l", "x", 1, 0, NULL, &change, NULL), -EINVAL);
	assert_string_equal(get(f->root_fd, "etc/hosts"), "127.0.0.1 localhost\n");
	close(dfd);
}

/* Owner and mode through the fd; the rule holds for the file written over. Needs root. */
static void test_write_atomic_owner(void **state)
{
	struct fixture *f = *state;
	struct ni_file_attrs attrs = { .mode = 04750, .uid = 1234, .gid = 5678, .has_mode = true, .has_uid = true,
				       .has_gid = true };
	enum ni_file_change change;
	char why[NI_WHY_MAX] = "";
	struct stat st;
	bool changed;
	int dfd, fd;

	if (geteuid() != 0)
		skip();
	dfd = openat(f->root_fd, "etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(ni_write_atomic_at(dfd, "tool", "#!/bin/sh\n", 10, NI_WRITE_SKIP_SAME, &attrs, &change, NULL), 0);
	st = st_of(f->root_fd, "etc/tool");
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	assert_int_equal(st.st_mode & 07777, 04750); /* after the chown, which clears set-id bits */

	/* ni_fd_set_attrs: chown clears set-uid, the mode asked for is put back. */
	fd = openat(dfd, "tool", O_RDONLY | O_CLOEXEC);
	assert_int_equal(ni_fd_set_attrs(fd, 04750, 1, (gid_t)-1, &changed), 0);
	assert_true(changed);
	assert_int_equal(st_of(f->root_fd, "etc/tool").st_mode & 07777, 04750);
	assert_int_equal(ni_fd_set_attrs(fd, 04750, 1, (gid_t)-1, &changed), 0);
	assert_false(changed);
	close(fd);
	close(dfd);

	/* A root file in nobody's directory (here a hard link to root's /etc/shadow): its inode is never
	 * changed. Same content, other mode: replaced by a new inode instead of chmod'ed; a rename that
	 * fails with EBUSY is not followed by a write into it. */
	assert_int_equal(mkdirat(f->root_fd, "srv/app", 0755), 0);
	assert_int_equal(fchownat(f->root_fd, "srv/app", NOBODY, NOBODY, 0), 0);
	put(f->root_fd, "etc/shadow", "secret\n");
	assert_int_equal(fchmodat(f->root_fd, "etc/shadow", 0640, 0), 0);
	assert_int_equal(linkat(f->root_fd, "etc/shadow", f->root_fd, "srv/app/shadow", 0), 0);
	dfd = openat(f->root_fd, "srv/app", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	attrs = (struct ni_file_attrs){ .mode = 0666, .has_mode = true };
	fault.rename_errno = EBUSY;
	assert_int_equal(ni_write_atomic_at(dfd, "shadow", "pwned\n", 6, NI_WRITE_SKIP_SAME, &attrs, &change, why),
			 -ENOLINK);
	fault.rename_errno = 0;
	assert_non_null(strstr(why, "refusing to open shadow, owned by uid 0, in a directory owned by uid 65534"));
	assert_int_equal(ni_write_atomic_at(dfd, "shadow", "secret\n", 7, NI_WRITE_SKIP_SAME, &attrs, &change, why), 0);
	assert_int_equal(change, NI_FILE_REPLACED);
	assert_int_equal(st_of(f->root_fd, "etc/shadow").st_mode & 07777, 0640);
	assert_string_equal(get(f->root_fd, "etc/shadow"), "secret\n");
	assert_int_equal(st_of(f->root_fd, "srv/app/shadow").st_mode & 07777, 0666);
	assert_int_not_equal(st_of(f->root_fd, "srv/app/shadow").st_ino, st_of(f->root_fd, "etc/shadow").st_ino);
	assert_int_equal(temps_in(f->root_fd, "srv/app"), 0);
	close(dfd);

	/* Directories the walk makes in nobody's directory are its own to enter. */
	{
		struct ni_chase c;
		int pfd = ni_chase(f->root_fd, "/srv/app/a/b/c", NI_CHASE_PARENT | NI_CHASE_MKDIR, 0755, &c);
		assert_true(pfd >= 0);
		assert_int_equal(c.made, 2);
		assert_string_equal(c.path, "/srv/app/a/b");
		close(pfd);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_bounded, setup, teardown),
		cmocka_unit_test(test_read_virtual),
		cmocka_unit_test_setup_teardown(test_fsync_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chase, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chase_unsafe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_make_temp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_atomic_owner, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
