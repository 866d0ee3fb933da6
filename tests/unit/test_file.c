/* file.c, passwd.c and l_file.c against a fake root made as a directory tree under the build dir. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <limits.h>
#include <unistd.h>

#include "ctx.h"
#include "file.h"
#include "luart.h"
#include "passwd.h"
#include "unit.h"

/* Faults on demand; each wrapper passes through otherwise. */
static struct {
	unsigned writes;     /* write() calls seen */
	int write_errno;     /* write() fails with this */
	int rename_errno;    /* renameat() fails with this */
	bool openat2_enosys; /* the kernel "has no openat2" */
	unsigned openat2_calls;
} fault;

ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
	fault.writes++;
	if (fault.write_errno) {
		errno = fault.write_errno;
		return -1;
	}
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

long __real_syscall(long n, ...);
long __wrap_syscall(long n, ...);
long __wrap_syscall(long n, ...)
{
	va_list ap;
	long a[6];

	va_start(ap, n);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (n == SYS_openat2)
		fault.openat2_calls++;
	if (n == SYS_openat2 && fault.openat2_enosys) {
		errno = ENOSYS;
		return -1;
	}
	return __real_syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}

struct fixture {
	char dir[512]; /* <build>/t/unit-file: root/ is the fake host's /, outside/ is beyond it */
	int root_fd, base_fd;
};

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void mkdir_p(const char *path)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	mkdir(buf, 0755);
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

/* Temp files left in a directory of the fake root (".<name>.<hex>.tmp"). */
static int temps_in(int dirfd, const char *dir)
{
	int fd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
	DIR *d;
	struct dirent *e;

	assert_true(fd >= 0);
	d = fdopendir(fd);
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".tmp"))
			n++;
	closedir(d);
	return n;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("NI_TEST_TMP"), *build = getenv("BUILD");

	/* Under the build dir (never /tmp): $NI_TEST_TMP, else $BUILD/t, else build/t. */
	if (tmp)
		snprintf(f->dir, sizeof(f->dir), "%s/unit-file", tmp);
	else
		snprintf(f->dir, sizeof(f->dir), "%s/t/unit-file", build ? build : "build");
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	mkdir_p(f->dir);
	f->base_fd = open(f->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->base_fd >= 0);
	assert_int_equal(mkdirat(f->base_fd, "root", 0755), 0);
	assert_int_equal(mkdirat(f->base_fd, "outside", 0755), 0);
	put(f->base_fd, "outside/secret", "outside the root\n");
	f->root_fd = openat(f->base_fd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->root_fd >= 0);
	mkdirat(f->root_fd, "etc", 0755);
	mkdirat(f->root_fd, "run", 0755);
	put(f->root_fd, "etc/passwd",
	    "root:x:0:0:root:/root:/bin/bash\n"
	    "# a comment\n"
	    "\n"
	    "broken:x:12:34\n"
	    "badid:x:-1:0::/:/bin/sh\n"
	    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
	    "alice:x:1001:1001:Alice:/home/alice:/bin/sh\n"
	    "alice:x:2002:2002:second alice:/home/alice:/bin/sh\n"
	    "+nis\n"
	    "bob:x:1002:1002::/home/bob:/bin/sh"); /* no final newline */
	put(f->root_fd, "etc/group", "root:x:0:\nnogroup:x:65534:\nwheel:x:10:alice,bob\nbad:x:nan:\n");
	memset(&fault, 0, sizeof(fault));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->root_fd);
	close(f->base_fd);
	free(f);
	return 0;
}

static void test_path_valid(void **state)
{
	(void)state;
	assert_true(ni_file_path_valid("/"));
	assert_true(ni_file_path_valid("/etc/hosts"));
	assert_true(ni_file_path_valid("/etc//containerd/"));
	assert_true(ni_file_path_valid("/etc/.hidden/..x/x.."));
	assert_false(ni_file_path_valid(""));
	assert_false(ni_file_path_valid("etc/hosts"));
	assert_false(ni_file_path_valid("/etc/../root"));
	assert_false(ni_file_path_valid("/etc/./hosts"));
	assert_false(ni_file_path_valid("/.."));
	assert_false(ni_file_path_valid("/etc/.."));
}

static void test_passwd_parse(void **state)
{
	static const struct {
		enum ni_passwd_db db;
		const char *line;
		int r;
		const char *name;
		uint32_t id;
	} t[] = {
		{ NI_PASSWD_USERS, "root:x:0:0:root:/root:/bin/bash", 1, "root", 0 },
		{ NI_PASSWD_USERS, "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin", 1, "nobody", 65534 },
		{ NI_PASSWD_USERS, "u:x:4294967294:0:::", 1, "u", 4294967294u },
		{ NI_PASSWD_USERS, "", 0, NULL, 0 },
		{ NI_PASSWD_USERS, "# comment", 0, NULL, 0 },
		{ NI_PASSWD_USERS, "+", 0, NULL, 0 },
		{ NI_PASSWD_USERS, "-baduser", 0, NULL, 0 },
		{ NI_PASSWD_USERS, "u:x:1:1::/", -EINVAL, NULL, 0 },          /* 6 fields */
		{ NI_PASSWD_USERS, "u:x:1:1::/:/bin/sh:extra", -EINVAL, NULL, 0 },
		{ NI_PASSWD_USERS, ":x:1:1::/:/bin/sh", -EINVAL, NULL, 0 },   /* empty name */
		{ NI_PASSWD_USERS, "u:x::1::/:/bin/sh", -EINVAL, NULL, 0 },   /* empty uid */
		{ NI_PASSWD_USERS, "u:x:1a:1::/:/bin/sh", -EINVAL, NULL, 0 },
		{ NI_PASSWD_USERS, "u:x:-1:1::/:/bin/sh", -EINVAL, NULL, 0 },
		{ NI_PASSWD_USERS, "u:x:+1:1::/:/bin/sh", -EINVAL, NULL, 0 },
		{ NI_PASSWD_USERS, "u:x: 1:1::/:/bin/sh", -EINVAL, NULL, 0 },
		{ NI_PASSWD_USERS, "u:x:4294967295:1::/:/bin/sh", -EINVAL, NULL, 0 }, /* (uid_t)-1 */
		{ NI_PASSWD_USERS, "u:x:99999999999:1::/:/bin/sh", -EINVAL, NULL, 0 },
		{ NI_PASSWD_USERS, "u:x:1:g::/:/bin/sh", -EINVAL, NULL, 0 },  /* bad gid */
		{ NI_PASSWD_USERS, "u:x:1:1::/:/bin/sh\r", -EINVAL, NULL, 0 },
		{ NI_PASSWD_GROUPS, "wheel:x:10:alice,bob", 1, "wheel", 10 },
		{ NI_PASSWD_GROUPS, "nogroup:x:65534:", 1, "nogroup", 65534 },
		{ NI_PASSWD_GROUPS, "g:x:10", -EINVAL, NULL, 0 },
		{ NI_PASSWD_GROUPS, "g:x:10::", -EINVAL, NULL, 0 },
		{ NI_PASSWD_GROUPS, "g:x:ten:", -EINVAL, NULL, 0 },
	};
	const char *name;
	size_t len;
	uint32_t id;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r = ni_passwd_parse_line(t[i].db, t[i].line, strlen(t[i].line), &name, &len, &id);
		if (r != t[i].r)
			fail_msg("'%s': %d, expected %d", t[i].line, r, t[i].r);
		if (r == 1) {
			assert_int_equal(len, strlen(t[i].name));
			assert_memory_equal(name, t[i].name, len);
			assert_int_equal(id, t[i].id);
		}
	}
}

/* Names come from the fake root's etc/passwd and etc/group: first good line wins, bad lines never match. */
static void test_passwd_lookup(void **state)
{
	struct fixture *f = *state;
	uint32_t id = 0;

	assert_int_equal(ni_passwd_resolve(f->root_fd, NI_PASSWD_USERS, "nobody", &id), 0);
	assert_int_equal(id, 65534);
	assert_int_equal(ni_passwd_resolve(f->root_fd, NI_PASSWD_USERS, "alice", &id), 0);
	assert_int_equal(id, 1001);
	assert_int_equal(ni_passwd_resolve(f->root_fd, NI_PASSWD_USERS, "bob", &id), 0);
	assert_int_equal(id, 1002);
	assert_int_equal(ni_passwd_resolve(f->root_fd, NI_PASSWD_USERS, "4321", &id), 0);
	assert_int_equal(id, 4321);
	assert_int_equal(ni_passwd_resolve(f->root_fd, NI_PASSWD_USERS, "broken", &id), -ESRCH);
	assert_int_equal(ni_passwd_resolve(f->root_fd, NI_PASSWD_USERS, "badid", &id), -ESRCH);
	assert_int_equal(ni_passwd_resolve(f->root_fd, NI_PASSWD_USERS, "nis", &id), -ESRCH);
	assert_int_equal(ni_passwd_resolve(f->root_fd, NI_PASSWD_USERS, "ali", &id), -ESRCH);
	assert_int_equal(ni_passwd_resolve(f->root_fd, NI_PASSWD_USERS, "a:b", &id), -EINVAL);
	assert_int_equal(ni_passwd_resolve(f->root_fd, NI_PASSWD_GROUPS, "wheel", &id), 0);
	assert_int_equal(id, 10);
	assert_int_equal(ni_passwd_resolve(f->root_fd, NI_PASSWD_GROUPS, "nogroup", &id), 0);
	assert_int_equal(id, 65534);
	assert_int_equal(ni_passwd_resolve(f->root_fd, NI_PASSWD_GROUPS, "bad", &id), -ESRCH);
	assert_int_equal(unlinkat(f->root_fd, "etc/group", 0), 0);
	assert_int_equal(ni_passwd_resolve(f->root_fd, NI_PASSWD_GROUPS, "wheel", &id), -ENOENT);
}

static void test_read(void **state)
{
	struct fixture *f = *state;
	char *buf = NULL;
	size_t len = 0;
	int fd;

	put(f->root_fd, "etc/hosts", "127.0.0.1 localhost\n");
	assert_int_equal(ni_file_read(f->root_fd, "/etc/hosts", &buf, &len, NULL), 0);
	assert_int_equal(len, 20);
	assert_string_equal(buf, "127.0.0.1 localhost\n");
	free(buf);
	assert_int_equal(ni_file_read(f->root_fd, "/etc/none", &buf, &len, NULL), -ENOENT);
	assert_int_equal(ni_file_read(f->root_fd, "/etc", &buf, &len, NULL), -EISDIR);

	/* Exactly max is fine, one byte more is -EFBIG. */
	fd = openat(f->root_fd, "etc/hosts", O_RDONLY | O_CLOEXEC);
	assert_int_equal(ni_file_read_fd(fd, 20, &buf, &len), 0);
	free(buf);
	lseek(fd, 0, SEEK_SET);
	assert_int_equal(ni_file_read_fd(fd, 19, &buf, &len), -EFBIG);
	lseek(fd, 0, SEEK_SET);
	assert_int_equal(ni_file_read_fd(fd, 0, &buf, &len), -EFBIG);
	close(fd);
}

/* Absolute and ".." symlinks resolve inside root_fd, by the resolver's own walk: no openat2 needed. */
static void test_symlink_escape(void **state)
{
	struct fixture *f = *state;
	char *abs_outside = NULL, *real = realpath(f->dir, NULL), *buf = NULL;
	enum ni_file_change change;
	struct ni_file_attrs none = { 0 };
	size_t len;
	bool exists = true;

	assert_non_null(real);
	assert_true(asprintf(&abs_outside, "%s/outside", real) > 0);
	free(real);
	assert_int_equal(symlinkat("../outside", f->root_fd, "rel"), 0);
	assert_int_equal(symlinkat(abs_outside, f->root_fd, "abs"), 0);
	free(abs_outside);
	assert_int_equal(symlinkat("../../outside/secret", f->root_fd, "etc/secret"), 0);

	assert_int_equal(ni_file_read(f->root_fd, "/rel/secret", &buf, &len, NULL), -ENOENT);
	assert_int_equal(ni_file_read(f->root_fd, "/abs/secret", &buf, &len, NULL), -ENOENT);
	assert_int_equal(ni_file_read(f->root_fd, "/etc/secret", &buf, &len, NULL), -ENOENT);
	assert_int_equal(ni_file_exists(f->root_fd, "/rel/secret", &exists, NULL), 0);
	assert_false(exists);
	assert_int_equal(ni_file_write(f->root_fd, "/rel/new", "x", 1, &none, &change, NULL), -ENOENT);
	assert_int_equal(ni_file_write(f->root_fd, "/abs/new", "x", 1, &none, &change, NULL), -ENOENT);
	/* The final symlink is followed inside the root too: etc/secret names <root>/outside/secret. */
	assert_int_equal(ni_file_write(f->root_fd, "/etc/secret", "x", 1, &none, &change, NULL), -ENOENT);
	assert_string_equal(get(f->base_fd, "outside/secret"), "outside the root\n");
	assert_null(get(f->base_fd, "outside/new"));

	/* Kernels before 5.6 answer openat2 with ENOSYS: the walk never asks, and stays confined. */
	fault.openat2_enosys = true;
	assert_int_equal(ni_file_read(f->root_fd, "/rel/secret", &buf, &len, NULL), -ENOENT);
	assert_int_equal(ni_file_read(f->root_fd, "/abs/secret", &buf, &len, NULL), -ENOENT);
	assert_int_equal(ni_file_write(f->root_fd, "/etc/secret", "x", 1, &none, &change, NULL), -ENOENT);
	assert_string_equal(get(f->base_fd, "outside/secret"), "outside the root\n");
	assert_int_equal(fault.openat2_calls, 0);
	fault.openat2_enosys = false;
}

static void test_write(void **state)
{
	struct fixture *f = *state;
	struct ni_file_attrs attrs = { 0 };
	enum ni_file_change change;
	struct stat st, st2;
	mode_t old = umask(077);

	/* New: default 0644 whatever the umask, no temp file left. */
	assert_int_equal(ni_file_write(f->root_fd, "/etc/app.conf", "a=1\n", 4, &attrs, &change, NULL), 0);
	assert_int_equal(change, NI_FILE_REPLACED);
	assert_string_equal(get(f->root_fd, "etc/app.conf"), "a=1\n");
	st = st_of(f->root_fd, "etc/app.conf");
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(temps_in(f->root_fd, "etc"), 0);

	/* Same again: nothing written at all. */
	fault.writes = 0;
	assert_int_equal(ni_file_write(f->root_fd, "/etc/app.conf", "a=1\n", 4, &attrs, &change, NULL), 0);
	assert_int_equal(change, NI_FILE_UNCHANGED);
	assert_int_equal(fault.writes, 0);
	st2 = st_of(f->root_fd, "etc/app.conf");
	assert_int_equal(st.st_ino, st2.st_ino);

	/* Mode only: fixed on the same inode. */
	attrs = (struct ni_file_attrs){ .mode = 0600, .has_mode = true };
	assert_int_equal(ni_file_write(f->root_fd, "/etc/app.conf", "a=1\n", 4, &attrs, &change, NULL), 0);
	assert_int_equal(change, NI_FILE_ATTRS);
	assert_int_equal(fault.writes, 0);
	st2 = st_of(f->root_fd, "etc/app.conf");
	assert_int_equal(st.st_ino, st2.st_ino);
	assert_int_equal(st2.st_mode & 07777, 0600);

	/* New content: a new inode (renamed over), the mode kept when not given. */
	attrs = (struct ni_file_attrs){ 0 };
	assert_int_equal(ni_file_write(f->root_fd, "/etc/app.conf", "a=2\n", 4, &attrs, &change, NULL), 0);
	assert_int_equal(change, NI_FILE_REPLACED);
	st2 = st_of(f->root_fd, "etc/app.conf");
	assert_int_not_equal(st.st_ino, st2.st_ino);
	assert_int_equal(st2.st_mode & 07777, 0600);
	assert_string_equal(get(f->root_fd, "etc/app.conf"), "a=2\n");

	/* Same length, other bytes; then longer and shorter; then empty; binary with a NUL. */
	assert_int_equal(ni_file_write(f->root_fd, "/etc/app.conf", "b=2\n", 4, &attrs, &change, NULL), 0);
	assert_int_equal(change, NI_FILE_REPLACED);
	assert_int_equal(ni_file_write(f->root_fd, "/etc/app.conf", "", 0, &attrs, &change, NULL), 0);
	assert_int_equal(change, NI_FILE_REPLACED);
	assert_string_equal(get(f->root_fd, "etc/app.conf"), "");
	assert_int_equal(ni_file_write(f->root_fd, "/etc/app.conf", "", 0, &attrs, &change, NULL), 0);
	assert_int_equal(change, NI_FILE_UNCHANGED);
	assert_int_equal(ni_file_write(f->root_fd, "/etc/app.conf", "a\0b", 3, &attrs, &change, NULL), 0);
	assert_int_equal(change, NI_FILE_REPLACED);
	assert_int_equal(st_of(f->root_fd, "etc/app.conf").st_size, 3);
	assert_int_equal(ni_file_write(f->root_fd, "/etc/app.conf", "a\0c", 3, &attrs, &change, NULL), 0);
	assert_int_equal(change, NI_FILE_REPLACED);

	/* Set-id and sticky bits are modes too. */
	attrs = (struct ni_file_attrs){ .mode = 04755, .has_mode = true };
	assert_int_equal(ni_file_write(f->root_fd, "/etc/tool", "#!/bin/sh\n", 10, &attrs, &change, NULL), 0);
	assert_int_equal(st_of(f->root_fd, "etc/tool").st_mode & 07777, 04755);

	/* Not a place for a file. */
	assert_int_equal(ni_file_write(f->root_fd, "/etc", "x", 1, &attrs, &change, NULL), -EISDIR);
	assert_int_equal(ni_file_write(f->root_fd, "/", "x", 1, &attrs, &change, NULL), -EINVAL);
	assert_int_equal(ni_file_write(f->root_fd, "/nodir/x", "x", 1, &attrs, &change, NULL), -ENOENT);
	assert_int_equal(ni_file_write(f->root_fd, "/etc/passwd/x", "x", 1, &attrs, &change, NULL), -ENOTDIR);
	assert_int_equal(temps_in(f->root_fd, "etc"), 0);
	umask(old);
}

/* Any failure: the old content stays, and no temp file is left behind. */
static void test_write_failures(void **state)
{
	struct fixture *f = *state;
	struct ni_file_attrs attrs = { 0 };
	enum ni_file_change change;

	put(f->root_fd, "etc/app.conf", "old\n");
	fault.write_errno = ENOSPC;
	assert_int_equal(ni_file_write(f->root_fd, "/etc/app.conf", "new\n", 4, &attrs, &change, NULL), -ENOSPC);
	assert_int_equal(change, NI_FILE_UNCHANGED);
	fault.write_errno = 0;
	assert_string_equal(get(f->root_fd, "etc/app.conf"), "old\n");
	assert_int_equal(temps_in(f->root_fd, "etc"), 0);

	fault.rename_errno = EACCES;
	assert_int_equal(ni_file_write(f->root_fd, "/etc/app.conf", "new\n", 4, &attrs, &change, NULL), -EACCES);
	assert_string_equal(get(f->root_fd, "etc/app.conf"), "old\n");
	assert_int_equal(temps_in(f->root_fd, "etc"), 0);

	/* A new file that cannot be written is not created either. */
	fault.rename_errno = 0;
	fault.write_errno = EIO;
	assert_int_equal(ni_file_write(f->root_fd, "/etc/new.conf", "new\n", 4, &attrs, &change, NULL), -EIO);
	assert_null(get(f->root_fd, "etc/new.conf"));
	assert_int_equal(temps_in(f->root_fd, "etc"), 0);
}

/* rename over a bind-mounted file gives EBUSY: the inode is rewritten in place, and that is said. */
static void test_write_busy(void **state)
{
	struct fixture *f = *state;
	struct ni_file_attrs attrs = { .mode = 0640, .has_mode = true };
	enum ni_file_change change;
	struct stat st;

	put(f->root_fd, "etc/resolv.conf", "nameserver 10.0.0.1\nsearch a.very.long.example.org\n");
	st = st_of(f->root_fd, "etc/resolv.conf");
	fault.rename_errno = EBUSY;
	assert_int_equal(ni_file_write(f->root_fd, "/etc/resolv.conf", "nameserver 10.0.0.2\n", 20, &attrs, &change, NULL), 0);
	fault.rename_errno = 0;
	assert_int_equal(change, NI_FILE_IN_PLACE);
	assert_string_equal(get(f->root_fd, "etc/resolv.conf"), "nameserver 10.0.0.2\n");
	assert_int_equal(st_of(f->root_fd, "etc/resolv.conf").st_ino, st.st_ino);
	assert_int_equal(st_of(f->root_fd, "etc/resolv.conf").st_mode & 07777, 0640);
	assert_int_equal(temps_in(f->root_fd, "etc"), 0);
}

/* A symlink at the path is followed (inside the root): its target is written, the link stays. */
static void test_write_through_symlink(void **state)
{
	struct fixture *f = *state;
	struct ni_file_attrs attrs = { 0 };
	enum ni_file_change change;

	assert_int_equal(symlinkat("../run/resolv.conf", f->root_fd, "etc/resolv.conf"), 0);
	assert_int_equal(ni_file_write(f->root_fd, "/etc/resolv.conf", "nameserver 1.1.1.1\n", 19, &attrs, &change, NULL), 0);
	assert_int_equal(change, NI_FILE_REPLACED);
	assert_true(S_ISLNK(st_of(f->root_fd, "etc/resolv.conf").st_mode));
	assert_string_equal(get(f->root_fd, "run/resolv.conf"), "nameserver 1.1.1.1\n");
	assert_int_equal(ni_file_write(f->root_fd, "/etc/resolv.conf", "nameserver 1.1.1.1\n", 19, &attrs, &change, NULL), 0);
	assert_int_equal(change, NI_FILE_UNCHANGED);

	/* An absolute target means the fake root's /run, not the real one. */
	assert_int_equal(symlinkat("/run/abs.conf", f->root_fd, "etc/abs.conf"), 0);
	assert_int_equal(ni_file_write(f->root_fd, "/etc/abs.conf", "x\n", 2, &attrs, &change, NULL), 0);
	assert_string_equal(get(f->root_fd, "run/abs.conf"), "x\n");

	assert_int_equal(symlinkat("loop-b", f->root_fd, "etc/loop-a"), 0);
	assert_int_equal(symlinkat("loop-a", f->root_fd, "etc/loop-b"), 0);
	assert_int_equal(ni_file_write(f->root_fd, "/etc/loop-a", "x\n", 2, &attrs, &change, NULL), -ELOOP);
	assert_int_equal(temps_in(f->root_fd, "etc"), 0);
	assert_int_equal(temps_in(f->root_fd, "run"), 0);
}

static void test_write_owner(void **state)
{
	struct fixture *f = *state;
	struct ni_file_attrs attrs = { .uid = 1234, .gid = 5678, .has_uid = true, .has_gid = true, .mode = 02750, .has_mode = true };
	enum ni_file_change change;
	struct stat st;

	if (geteuid() != 0)
		skip();
	assert_int_equal(ni_file_write(f->root_fd, "/etc/owned", "x", 1, &attrs, &change, NULL), 0);
	st = st_of(f->root_fd, "etc/owned");
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	assert_int_equal(st.st_mode & 07777, 02750); /* set after chown, which clears set-id bits */
	assert_int_equal(ni_file_write(f->root_fd, "/etc/owned", "x", 1, &attrs, &change, NULL), 0);
	assert_int_equal(change, NI_FILE_UNCHANGED);
	/* A rewrite keeps the owner it does not set. */
	attrs = (struct ni_file_attrs){ 0 };
	assert_int_equal(ni_file_write(f->root_fd, "/etc/owned", "y", 1, &attrs, &change, NULL), 0);
	assert_int_equal(change, NI_FILE_REPLACED);
	st = st_of(f->root_fd, "etc/owned");
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	attrs = (struct ni_file_attrs){ .uid = 1, .has_uid = true };
	assert_int_equal(ni_file_write(f->root_fd, "/etc/owned", "y", 1, &attrs, &change, NULL), 0);
	assert_int_equal(change, NI_FILE_ATTRS);
	st = st_of(f->root_fd, "etc/owned");
	assert_int_equal(st.st_uid, 1);
	assert_int_equal(st.st_gid, 5678);
}

static void test_mkdir(void **state)
{
	struct fixture *f = *state;
	struct ni_file_attrs attrs = { 0 };
	bool changed;
	mode_t old = umask(077);

	assert_int_equal(ni_file_mkdir(f->root_fd, "/etc/app", &attrs, false, &changed, NULL), 0);
	assert_true(changed);
	assert_int_equal(st_of(f->root_fd, "etc/app").st_mode & 07777, 0755);
	assert_int_equal(ni_file_mkdir(f->root_fd, "/etc/app/", &attrs, false, &changed, NULL), 0);
	assert_false(changed);

	attrs = (struct ni_file_attrs){ .mode = 0700, .has_mode = true };
	assert_int_equal(ni_file_mkdir(f->root_fd, "/etc/app", &attrs, false, &changed, NULL), 0);
	assert_true(changed);
	assert_int_equal(st_of(f->root_fd, "etc/app").st_mode & 07777, 0700);
	assert_int_equal(ni_file_mkdir(f->root_fd, "/etc/app", &attrs, false, &changed, NULL), 0);
	assert_false(changed);

	assert_int_equal(ni_file_mkdir(f->root_fd, "/var/lib/app/data", &attrs, false, &changed, NULL), -ENOENT);
	assert_int_equal(ni_file_mkdir(f->root_fd, "/var/lib/app/data", &attrs, true, &changed, NULL), 0);
	assert_true(changed);
	assert_true(S_ISDIR(st_of(f->root_fd, "var/lib/app").st_mode));
	assert_int_equal(st_of(f->root_fd, "var/lib/app/data").st_mode & 07777, 0700);
	assert_int_equal(ni_file_mkdir(f->root_fd, "//var//lib/app/data/", &attrs, true, &changed, NULL), 0);
	assert_false(changed);

	/* A symlink to a directory is one (/var/run -> /run); a file is not. */
	assert_int_equal(symlinkat("/run", f->root_fd, "var/run"), 0);
	assert_int_equal(ni_file_mkdir(f->root_fd, "/var/run", NULL, false, &changed, NULL), 0);
	assert_false(changed);
	assert_int_equal(ni_file_mkdir(f->root_fd, "/var/run/app/sock", NULL, true, &changed, NULL), 0);
	assert_true(changed);
	assert_true(S_ISDIR(st_of(f->root_fd, "run/app/sock").st_mode));
	assert_int_equal(ni_file_mkdir(f->root_fd, "/etc/passwd", NULL, false, &changed, NULL), -ENOTDIR);
	assert_int_equal(ni_file_mkdir(f->root_fd, "/etc/passwd/x", NULL, true, &changed, NULL), -ENOTDIR);
	umask(old);
}

static void test_remove_exists(void **state)
{
	struct fixture *f = *state;
	bool changed, exists;

	put(f->root_fd, "etc/gone", "x");
	assert_int_equal(ni_file_exists(f->root_fd, "/etc/gone", &exists, NULL), 0);
	assert_true(exists);
	assert_int_equal(ni_file_remove(f->root_fd, "/etc/gone", &changed, NULL), 0);
	assert_true(changed);
	assert_int_equal(ni_file_exists(f->root_fd, "/etc/gone", &exists, NULL), 0);
	assert_false(exists);
	assert_int_equal(ni_file_remove(f->root_fd, "/etc/gone", &changed, NULL), 0);
	assert_false(changed);
	assert_int_equal(ni_file_remove(f->root_fd, "/no/such/dir", &changed, NULL), 0);
	assert_false(changed);

	/* A symlink goes, not what it names; a dangling one does not "exist". */
	assert_int_equal(symlinkat("/etc/passwd", f->root_fd, "etc/link"), 0);
	assert_int_equal(symlinkat("/etc/none", f->root_fd, "etc/dangling"), 0);
	assert_int_equal(ni_file_exists(f->root_fd, "/etc/link", &exists, NULL), 0);
	assert_true(exists);
	assert_int_equal(ni_file_exists(f->root_fd, "/etc/dangling", &exists, NULL), 0);
	assert_false(exists);
	assert_int_equal(ni_file_remove(f->root_fd, "/etc/link", &changed, NULL), 0);
	assert_true(changed);
	assert_non_null(get(f->root_fd, "etc/passwd"));
	assert_int_equal(ni_file_remove(f->root_fd, "/etc/dangling", &changed, NULL), 0);
	assert_true(changed);

	/* Empty directories go; full ones are an error; the root is not a thing to remove. */
	assert_int_equal(mkdirat(f->root_fd, "etc/empty", 0755), 0);
	assert_int_equal(ni_file_remove(f->root_fd, "/etc/empty", &changed, NULL), 0);
	assert_true(changed);
	assert_int_equal(ni_file_remove(f->root_fd, "/etc", &changed, NULL), -ENOTEMPTY);
	assert_int_equal(ni_file_remove(f->root_fd, "/", &changed, NULL), -EINVAL);
	assert_int_equal(ni_file_exists(f->root_fd, "/", &exists, NULL), 0);
	assert_true(exists);
	assert_int_equal(ni_file_exists(f->root_fd, "/etc/passwd/x", &exists, NULL), 0);
	assert_false(exists);
}

/* Runs a chunk in a fresh environment; returns its status; results (or the message) are on top. */
static int run(lua_State *L, const char *src)
{
	int base = lua_gettop(L), r;

	ni_lua_push_env(L);
	r = ni_lua_load(L, "=test", src, strlen(src), -1);
	lua_remove(L, base + 1);
	if (r != LUA_OK)
		return r;
	return ni_lua_pcall(L, 0, LUA_MULTRET);
}

struct lua_fixture {
	struct ni_ctx ctx;
	lua_State *L;
	FILE *log;
	char *logbuf;
	size_t loglen;
};

static void lua_start(struct fixture *f, struct lua_fixture *t)
{
	*t = (struct lua_fixture){ .ctx = { .root_fd = f->root_fd, .proc_sys_fd = -1, .proc_fd = -1, .sig_fd = -1, .step = "r/s",
							     .phase = NI_PHASE_STEP } };
	t->log = open_memstream(&t->logbuf, &t->loglen);
	t->ctx.log = (struct ni_log){ .format = NI_LOG_TEXT, .min_level = NI_LOG_DEBUG, .out = t->log };
	t->L = ni_lua_new(&t->ctx);
	assert_non_null(t->L);
}

static const char *lua_log(struct lua_fixture *t)
{
	fflush(t->log);
	return t->logbuf;
}

static void lua_stop(struct lua_fixture *t)
{
	ni_lua_close(t->L);
	fclose(t->log);
	free(t->logbuf);
}

/* Asserts that a chunk ran and returned these booleans/strings, written as Lua values joined by ",". */
static void expect(lua_State *L, const char *src, const char *want)
{
	luaL_Buffer b;
	int top = lua_gettop(L), n;

	if (run(L, src) != LUA_OK)
		fail_msg("%s: %s", src, lua_tostring(L, -1));
	n = lua_gettop(L) - top;
	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		luaL_tolstring(L, top + i, NULL);
		luaL_addvalue(&b);
		if (i < n)
			luaL_addchar(&b, ',');
	}
	luaL_pushresult(&b);
	if (strcmp(lua_tostring(L, -1), want) != 0)
		fail_msg("%s: got '%s', want '%s'", src, lua_tostring(L, -1), want);
	lua_settop(L, top);
}

static void test_lua(void **state)
{
	struct fixture *f = *state;
	struct lua_fixture t;
	lua_State *L;

	lua_start(f, &t);
	L = t.L;
	expect(L, "return file.exists('/etc/passwd'), file.exists('/etc/none'), require('nodeinit.file').exists('/')",
	       "true,false,true");
	expect(L, "return file.write('/etc/a.conf', 'x=1\\n', { mode = '0600' })", "true");
	expect(L, "return file.write('/etc/a.conf', 'x=1\\n', { mode = '0600' })", "false");
	expect(L, "return file.write('/etc/a.conf', 'x=1\\n', { mode = '640' })", "true");
	assert_int_equal(st_of(f->root_fd, "etc/a.conf").st_mode & 07777, 0640);
	expect(L, "return file.read('/etc/a.conf')", "x=1\n");
	expect(L, "return file.write('/etc/n', 42)", "true"); /* a number is a string to Lua */
	expect(L, "return file.read('/etc/n')", "42");
	expect(L, "return file.mkdir('/srv/a/b', { parents = true, mode = '0750' }), file.mkdir('/srv/a/b')", "true,false");
	assert_int_equal(st_of(f->root_fd, "srv/a/b").st_mode & 07777, 0750);
	expect(L, "return file.remove('/srv/a/b'), file.remove('/srv/a/b'), file.exists('/srv/a/b')", "true,false,false");

	/* OS failures: nil, "<path>: <strerror>", errno. */
	expect(L, "return file.read('/etc/none')", "nil,/etc/none: No such file or directory,2");
	expect(L, "return file.write('/no/dir/x', '')", "nil,/no/dir/x: No such file or directory,2");
	expect(L, "return file.mkdir('/etc/passwd')", "nil,/etc/passwd: Not a directory,20");
	expect(L, "return file.remove('/etc')", "nil,/etc: Directory not empty,39");
	expect(L, "return file.write('/etc/o', 'x', { owner = 'nosuch' })",
	       "nil,/etc/o: no user 'nosuch' in the host's /etc/passwd,3");
	expect(L, "return file.write('/etc/o', 'x', { group = 'nosuch' })",
	       "nil,/etc/o: no group 'nosuch' in the host's /etc/group,3");
	expect(L, "return file.exists('/etc/o')", "false");

	/* Logged: the path and what was done, never the content. */
	assert_non_null(strstr(lua_log(&t), "changed step=r/s op=write path=/etc/a.conf"));
	assert_non_null(strstr(lua_log(&t), "changed step=r/s op=mkdir path=/srv/a/b"));
	assert_non_null(strstr(lua_log(&t), "changed step=r/s op=remove path=/srv/a/b"));
	assert_null(strstr(lua_log(&t), "x=1"));
	lua_stop(&t);
}

static void test_lua_owner(void **state)
{
	struct fixture *f = *state;
	struct lua_fixture t;
	struct stat st;

	if (geteuid() != 0)
		skip();
	lua_start(f, &t);
	/* Names from the fake root's etc/passwd: alice is 1001 there, whatever the real machine says. */
	expect(t.L, "return file.write('/etc/o', 'x', { owner = 'alice', group = 'wheel' })", "true");
	st = st_of(f->root_fd, "etc/o");
	assert_int_equal(st.st_uid, 1001);
	assert_int_equal(st.st_gid, 10);
	expect(t.L, "return file.write('/etc/o', 'x', { owner = 1001, group = '10' })", "false");
	expect(t.L, "return file.mkdir('/etc/d', { owner = 'bob', group = 65534 })", "true");
	st = st_of(f->root_fd, "etc/d");
	assert_int_equal(st.st_uid, 1002);
	assert_int_equal(st.st_gid, 65534);
	expect(t.L, "return file.ensure_line('/etc/o', 'y', { owner = 'nobody' })", "true");
	assert_int_equal(st_of(f->root_fd, "etc/o").st_uid, 65534);
	lua_stop(&t);
}

static void test_lua_ensure_line(void **state)
{
	struct fixture *f = *state;
	struct lua_fixture t;
	lua_State *L;

	lua_start(f, &t);
	L = t.L;
	/* Absent file: created with the line. */
	expect(L, "return file.ensure_line('/etc/sysctl.conf', 'a=1')", "true");
	assert_string_equal(get(f->root_fd, "etc/sysctl.conf"), "a=1\n");
	expect(L, "return file.ensure_line('/etc/sysctl.conf', 'a=1')", "false");

	/* Appended with a newline fix-up when the last line has none. */
	put(f->root_fd, "etc/sysctl.conf", "a=1\nb=2");
	expect(L, "return file.ensure_line('/etc/sysctl.conf', 'c=3')", "true");
	assert_string_equal(get(f->root_fd, "etc/sysctl.conf"), "a=1\nb=2\nc=3\n");

	/* The first matching line is replaced, only it, and only once. */
	put(f->root_fd, "etc/sshd_config", "# PermitRootLogin yes\nPort 22\nPermitRootLogin yes\nPermitRootLogin maybe\n");
	expect(L, "return file.ensure_line('/etc/sshd_config', 'PermitRootLogin no', { match = '^PermitRootLogin%s' })",
	       "true");
	assert_string_equal(get(f->root_fd, "etc/sshd_config"),
			    "# PermitRootLogin yes\nPort 22\nPermitRootLogin no\nPermitRootLogin maybe\n");
	expect(L, "return file.ensure_line('/etc/sshd_config', 'PermitRootLogin no', { match = '^PermitRootLogin%s' })",
	       "false");
	/* A line equal anywhere wins over a match before it. */
	put(f->root_fd, "etc/x", "k=1\nk=2\n");
	expect(L, "return file.ensure_line('/etc/x', 'k=2', { match = '^k=' })", "false");
	/* A last line without newline is replaced in place. */
	put(f->root_fd, "etc/x", "a\nk=1");
	expect(L, "return file.ensure_line('/etc/x', 'k=2', { match = '^k=' })", "true");
	assert_string_equal(get(f->root_fd, "etc/x"), "a\nk=2");
	/* No match: appended. Empty file: just the line. */
	expect(L, "return file.ensure_line('/etc/x', 'z', { match = '^nomatch' })", "true");
	assert_string_equal(get(f->root_fd, "etc/x"), "a\nk=2\nz\n");
	put(f->root_fd, "etc/empty", "");
	expect(L, "return file.ensure_line('/etc/empty', 'only')", "true");
	assert_string_equal(get(f->root_fd, "etc/empty"), "only\n");
	/* The mode is an attribute like write's: fixed even when the line is there. */
	expect(L, "return file.ensure_line('/etc/empty', 'only', { mode = '0600' })", "true");
	assert_int_equal(st_of(f->root_fd, "etc/empty").st_mode & 07777, 0600);
	assert_int_equal(temps_in(f->root_fd, "etc"), 0);

	expect(L, "return file.ensure_line('/nodir/x', 'a')", "nil,/nodir/x: No such file or directory,2");
	expect(L, "return file.ensure_line('/etc', 'a')", "nil,/etc: Is a directory,21");
	assert_non_null(strstr(lua_log(&t), "changed step=r/s op=ensure_line path=/etc/sshd_config"));
	lua_stop(&t);
}

/* Links and directories another user (nobody, 65534) owns: every primitive refuses, nothing changes. */
/* What the tree under the fixture's dir looks like (names, types, modes, owners, sizes, times), for "nothing changed". */
static struct ni_buf tree_buf;
static int tree_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	char line[PATH_MAX + 200];

	(void)type;
	(void)ftw;
	snprintf(line, sizeof(line), "%s %o %u %u %lld %lld.%09ld %llu\n", path, (unsigned)st->st_mode, (unsigned)st->st_uid,
		 (unsigned)st->st_gid, (long long)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
		 (unsigned long long)st->st_ino);
	ni_buf_puts(&tree_buf, line);
	return 0;
}

static char *tree(struct fixture *f)
{
	tree_buf = NI_BUF_INIT(0);
	nftw(f->dir, tree_entry, 16, FTW_PHYS);
	return ni_buf_steal(&tree_buf, NULL);
}

/* A chunk's results as one string ("nil,msg,2"), as expect compares them. */
static char *results(lua_State *L, const char *src)
{
	int top = lua_gettop(L), n;
	luaL_Buffer b;
	char *s;

	if (run(L, src) != LUA_OK)
		fail_msg("%s: %s", src, lua_tostring(L, -1));
	n = lua_gettop(L) - top;
	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		luaL_tolstring(L, top + i, NULL);
		luaL_addvalue(&b);
		if (i < n)
			luaL_addchar(&b, ',');
	}
	luaL_pushresult(&b);
	s = strdup(lua_tostring(L, -1));
	lua_settop(L, top);
	return s;
}

/*
 * plan's check mode: each call, made first in check mode and then for real on the same tree, returns
 * the same (changed, or the same failure), and the check-mode call changes nothing at all.
 */
static void test_lua_check_mode(void **state)
{
	static const char *const calls[] = {
		"return file.write('/etc/c.conf', 'a\\n', { mode = '0600' })",
		"return file.write('/etc/c.conf', 'a\\n', { mode = '0600' })",
		"return file.write('/etc/c.conf', 'a\\n', { mode = '0640' })",
		"return file.write('/etc/c.conf', 'b\\n')",
		"return file.write('/etc/c.conf', 'b\\n', { owner = 0, group = 'root' })",
		"return file.write('/etc/c.conf', 'b\\n', { owner = 65534 })",
		"return file.write('/etc/empty', '')",
		"return file.write('/etc/empty', '')",
		"return file.ensure_line('/etc/c.conf', 'b')",
		"return file.ensure_line('/etc/c.conf', 'c = 1')",
		"return file.ensure_line('/etc/c.conf', 'c = 2', { match = '^c =' })",
		"return file.ensure_line('/etc/new.conf', 'x')",
		"return file.mkdir('/srv/x/y', { parents = true })",
		"return file.mkdir('/srv/x/y')",
		"return file.mkdir('/srv/x/y', { mode = '0700' })",
		"return file.mkdir('/srv/x/y', { owner = 65534 })",
		"return file.mkdir('/etc/passwd')",
		"return file.mkdir('/no/such/dir')",
		"return file.write('/no/dir/x', '')",
		"return file.write('/etc', 'x')",
		"return file.write('/etc/o', 'x', { owner = 'nosuch' })",
		"return file.remove('/etc')",
		"return file.remove('/srv/x/y')",
		"return file.remove('/srv/x/y')",
		"return file.remove('/no/such/x')",
		"return file.remove('/etc/c.conf')",
	};
	struct fixture *f = *state;
	struct ni_buf out = NI_BUF_INIT(0);
	struct ni_plan_sink sink = { .out = &out };
	struct lua_fixture t;
	char *lines;

	if (geteuid() != 0)
		skip(); /* owners */
	lua_start(f, &t);
	t.ctx.plan = &sink;
	for (size_t i = 0; i < NI_ELEMENTSOF(calls); i++) {
		_cleanup_free_ char *before = tree(f), *after = NULL, *planned = NULL, *done = NULL;

		t.ctx.check_mode = true;
		planned = results(t.L, calls[i]);
		after = tree(f);
		if (strcmp(before, after) != 0)
			fail_msg("%s changed the tree in check mode:\n%s\n---\n%s", calls[i], before, after);
		t.ctx.check_mode = false;
		done = results(t.L, calls[i]);
		if (strcmp(planned, done) != 0)
			fail_msg("%s: check mode said '%s', the real call '%s'", calls[i], planned, done);
	}
	lines = ni_buf_steal(&out, NULL);
	assert_non_null(strstr(lines, "    file /etc/c.conf: absent -> 2 bytes mode 0600\n"
				     "    file /etc/c.conf: same content -> 2 bytes mode 0600 (same)\n"
				     "    file /etc/c.conf: same content, mode 0600 -> 2 bytes mode 0640\n"
				     "    file /etc/c.conf: differs -> 2 bytes\n"));
	assert_non_null(strstr(lines, "    file /etc/c.conf: line \"c = 2\": absent -> present\n"));
	assert_non_null(strstr(lines, "    dir /srv/x/y: absent -> directory (and its missing parents)\n"
				     "    dir /srv/x/y: directory -> directory (same)\n"
				     "    dir /srv/x/y: directory, mode 0755 -> directory mode 0700\n"
				     "    dir /srv/x/y: directory, owner 0 -> directory owner 65534\n"));
	assert_non_null(strstr(lines, "    file /srv/x/y: directory -> absent\n"
				     "    file /srv/x/y: absent -> absent (same)\n"));
	free(lines);
	/* a sensitive step's line says neither the line nor the content */
	out = NI_BUF_INIT(0);
	sink = (struct ni_plan_sink){ .out = &out };
	t.ctx.check_mode = t.ctx.sensitive = true;
	expect(t.L, "return file.ensure_line('/etc/passwd', 'secret-line'), file.write('/etc/passwd', 'secret')", "true,true");
	lines = ni_buf_steal(&out, NULL);
	assert_string_equal(lines, "    file /etc/passwd: line (sensitive): absent -> present\n"
				   "    file /etc/passwd: differs -> 6 bytes (content sensitive)\n");
	free(lines);
	lua_stop(&t);
}

static void test_lua_unsafe(void **state)
{
	static const char *const refused[] = {
		"return file.write('/tmp/planted', 'pwned\\n')",
		"return file.ensure_line('/tmp/planted', 'pwned')",
		"return file.read('/tmp/planted')",
		"return file.mkdir('/tmp/shared', { mode = '1777' })",
		"return file.mkdir('/srv/app/data', { owner = 65534, mode = '0770' })",
		"return file.remove('/srv/app/etc/victim')",
		"return file.write('/srv/app/etc/victim', 'pwned\\n')",
	};
	struct fixture *f = *state;
	struct lua_fixture t;
	struct stat etc;

	if (geteuid() != 0)
		skip();
	put(f->root_fd, "etc/victim", "root's\n");
	assert_int_equal(mkdirat(f->root_fd, "tmp", 01777), 0);
	assert_int_equal(fchmodat(f->root_fd, "tmp", 01777, 0), 0);
	assert_int_equal(mkdirat(f->root_fd, "srv", 0755), 0);
	assert_int_equal(mkdirat(f->root_fd, "srv/app", 0755), 0);
	assert_int_equal(fchownat(f->root_fd, "srv/app", 65534, 65534, 0), 0);
	assert_int_equal(symlinkat("/etc/victim", f->root_fd, "tmp/planted"), 0);
	assert_int_equal(symlinkat("/etc", f->root_fd, "tmp/shared"), 0);
	assert_int_equal(symlinkat("/etc", f->root_fd, "srv/app/data"), 0);
	assert_int_equal(symlinkat("/etc", f->root_fd, "srv/app/etc"), 0);
	for (const char *const *l = (const char *const[]){ "tmp/planted", "tmp/shared", "srv/app/data", "srv/app/etc", NULL };
	     *l; l++)
		assert_int_equal(fchownat(f->root_fd, *l, 65534, 65534, AT_SYMLINK_NOFOLLOW), 0);
	etc = st_of(f->root_fd, "etc");

	lua_start(f, &t);
	expect(t.L, refused[0], "nil,/tmp/planted: refusing to follow a symlink owned by uid 65534 in a directory owned "
				"by uid 0 (unsafe symlink: only root's links, or those of the directory's owner, are followed),67");
	for (size_t i = 1; i < sizeof(refused) / sizeof(refused[0]); i++) {
		int top = lua_gettop(t.L);
		if (run(t.L, refused[i]) != LUA_OK)
			fail_msg("%s: %s", refused[i], lua_tostring(t.L, -1));
		assert_true(lua_isnil(t.L, top + 1));
		if (!strstr(lua_tostring(t.L, top + 2), ": refusing to ") || lua_tointeger(t.L, top + 3) != ENOLINK)
			fail_msg("%s: %s", refused[i], lua_tostring(t.L, top + 2));
		lua_settop(t.L, top);
	}
	/* plan's check mode meets the same refusals */
	t.ctx.check_mode = true;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		int top = lua_gettop(t.L);
		if (run(t.L, refused[i]) != LUA_OK)
			fail_msg("%s: %s", refused[i], lua_tostring(t.L, -1));
		if (!lua_isnil(t.L, top + 1) || lua_tointeger(t.L, top + 3) != ENOLINK)
			fail_msg("check mode: %s: %s", refused[i], lua_tostring(t.L, top + 2));
		lua_settop(t.L, top);
	}
	t.ctx.check_mode = false;
	/* Nothing changed: the target, /etc's mode and owner, the links themselves. */
	assert_string_equal(get(f->root_fd, "etc/victim"), "root's\n");
	assert_int_equal(st_of(f->root_fd, "etc").st_mode, etc.st_mode);
	assert_int_equal(st_of(f->root_fd, "etc").st_uid, 0);
	assert_true(S_ISLNK(st_of(f->root_fd, "tmp/planted").st_mode));
	assert_true(S_ISLNK(st_of(f->root_fd, "srv/app/etc").st_mode));
	/* Removing nobody's link itself takes the link, not what it names. */
	expect(t.L, "return file.remove('/tmp/planted')", "true");
	assert_string_equal(get(f->root_fd, "etc/victim"), "root's\n");
	/* Root's own relative link still works. */
	assert_int_equal(symlinkat("../run/stub.conf", f->root_fd, "etc/resolv.conf"), 0);
	expect(t.L, "return file.write('/etc/resolv.conf', 'nameserver 127.0.0.53\\n')", "true");
	assert_string_equal(get(f->root_fd, "run/stub.conf"), "nameserver 127.0.0.53\n");
	lua_stop(&t);
}

static void test_lua_misuse(void **state)
{
	static const char *const misuse[] = {
		"file.read()", "file.read('etc/passwd')", "file.read('/etc/../etc/passwd')", "file.read('/etc/\\0x')",
		"file.read({})", "file.exists('./x')", "file.remove('relative')",
		"file.write('/etc/x')", "file.write('/etc/x', {})", "file.write('/etc/x', 'a', 'b')",
		"file.write('/etc/x', 'a', { mode = 0644 })", "file.write('/etc/x', 'a', { mode = '0844' })",
		"file.write('/etc/x', 'a', { mode = '17777' })", "file.write('/etc/x', 'a', { mode = '64' })",
		"file.write('/etc/x', 'a', { owner = {} })", "file.write('/etc/x', 'a', { owner = '' })",
		"file.write('/etc/x', 'a', { owner = 'a:b' })", "file.write('/etc/x', 'a', { owner = -1 })",
		"file.write('/etc/x', 'a', { group = 1.5 })", "file.write('/etc/x', 'a', { user = 'root' })",
		"file.write('/etc/x', 'a', { [1] = 'x' })", "file.write('/etc/x', 'a', { parents = true })",
		"file.mkdir('/etc/x', { parents = 1 })", "file.mkdir('/etc/x', { match = 'x' })",
		"file.ensure_line('/etc/x')", "file.ensure_line('/etc/x', 'a\\nb')",
		"file.ensure_line('/etc/x', 'a', { match = 1 })", "file.ensure_line('/etc/x', 'a', { match = '[a' })",
	};
	struct fixture *f = *state;
	struct lua_fixture t;

	lua_start(f, &t);
	for (size_t i = 0; i < sizeof(misuse) / sizeof(misuse[0]); i++) {
		if (run(t.L, misuse[i]) != LUA_ERRRUN)
			fail_msg("'%s' did not raise", misuse[i]);
		lua_settop(t.L, 0);
	}
	/* Nothing was created by any of them. */
	assert_null(get(f->root_fd, "etc/x"));
	lua_stop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_valid),
		cmocka_unit_test(test_passwd_parse),
		cmocka_unit_test_setup_teardown(test_passwd_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_escape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_through_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mkdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_exists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lua, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lua_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lua_ensure_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lua_check_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lua_unsafe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lua_misuse, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
