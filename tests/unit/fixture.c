/* Fixtures the unit tests share (fixture.h): linked into every unit binary. */
#define _GNU_SOURCE
#include "fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

void ut_scratch_dir(const char *name, char *buf, size_t size)
{
	const char *tmp = getenv("NI_TEST_TMP");
	char exe[PATH_MAX];
	ssize_t len;
	int n;

	if (tmp) {
		n = snprintf(buf, size, "%s/unit-%s", tmp, name);
	} else {
		/* <build>/unit/test_x -> <build>/t/unit-x: the build dir the binary was made in */
		len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		assert_true(len > 0);
		exe[len] = '\0';
		n = snprintf(buf, size, "%s/t/unit-%s", dirname(dirname(exe)), name);
	}
	assert_true(n > 0 && (size_t)n < size);
	ut_rm_rf(buf);
	ut_mkdirs(AT_FDCWD, buf);
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	(void)type;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

void ut_rm_rf(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void ut_mkdirs(int dir_fd, const char *path)
{
	char buf[4096];

	assert_true(strlen(path) < sizeof(buf));
	strcpy(buf, path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdirat(dir_fd, buf, 0755);
			*p = '/';
		}
	mkdirat(dir_fd, buf, 0755);
}

void ut_put(int dir_fd, const char *path, const char *content)
{
	size_t len = strlen(content);
	const char *slash = strrchr(path, '/');
	int fd;

	if (slash && slash != path) {
		char dir[4096];
		assert_true((size_t)(slash - path) < sizeof(dir));
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
		ut_mkdirs(dir_fd, dir);
	}
	fd = openat(dir_fd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, content, len, 0), (ssize_t)len);
	close(fd);
}

const char *ut_get(int dir_fd, const char *path)
{
	static char buf[4096];
	int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return NULL;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

struct stat ut_stat(int dir_fd, const char *path)
{
	struct stat st;

	assert_int_equal(fstatat(dir_fd, path, &st, AT_SYMLINK_NOFOLLOW), 0);
	return st;
}

int ut_count_names(int dir_fd, const char *path, const char *part)
{
	int fd = openat(dir_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
	struct dirent *e;
	DIR *d;

	assert_true(fd >= 0);
	d = fdopendir(fd);
	assert_non_null(d);
	while ((e = readdir(d)))
		if (strstr(e->d_name, part))
			n++;
	closedir(d);
	return n;
}

void ut_fake_ctx(struct ni_ctx *ctx, int root_fd, char **log_buf, size_t *log_len)
{
	*ctx = (struct ni_ctx){ .root_fd = root_fd, .proc_fd = -1, .proc_sys_fd = -1, .sig_fd = -1 };
	ctx->log = (struct ni_log){ .format = NI_LOG_TEXT, .min_level = NI_LOG_INFO };
	ctx->log.out = open_memstream(log_buf, log_len);
	assert_non_null(ctx->log.out);
}

void ut_fake_ctx_close(struct ni_ctx *ctx, char **log_buf)
{
	fclose(ctx->log.out);
	ctx->log.out = NULL;
	free(*log_buf);
	*log_buf = NULL;
}

int ut_fresh_dir(const char *base)
{
	static int n;
	char path[PATH_MAX];
	int fd;

	assert_true(snprintf(path, sizeof(path), "%s/%d", base, ++n) < (int)sizeof(path));
	ut_rm_rf(path);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(chmod(path, 0755), 0); /* whatever the umask */
	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}
