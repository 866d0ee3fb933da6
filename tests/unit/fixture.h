/* Fixtures the unit tests share: scratch directories under the build dir, fake host trees, a fake context. */
#ifndef NI_UNIT_FIXTURE_H
#define NI_UNIT_FIXTURE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

#include "ctx.h"

/*
 * An empty scratch directory, never under /tmp: $NI_TEST_TMP/unit-NAME, else <build>/t/unit-NAME in
 * the build dir the test binary sits in (<build>/unit/test_x). Whatever an earlier run left there is
 * removed first. Its path goes into buf.
 */
void ut_scratch_dir(const char *name, char *buf, size_t size);

/* A fresh directory base/N (N counts up, one per call: one per test), mode 0755 whatever the umask;
 * returns an O_PATH fd of it. */
int ut_fresh_dir(const char *base);

/* rm -rf path: nothing below it is followed through a symlink. */
void ut_rm_rf(const char *path);

/* mkdir -p path below dir_fd (AT_FDCWD: a path of the test's own), 0755 each; existing ones are fine. */
void ut_mkdirs(int dir_fd, const char *path);

/*
 * Writes content to path below dir_fd, making the directories on the way (mode 0644 for a new file).
 * Through pwrite(), so a test that wraps write() or read() counts only the code under test.
 */
void ut_put(int dir_fd, const char *path, const char *content);

/* The content of path below dir_fd (up to 4 KiB, in a buffer the next call reuses); NULL when absent. */
const char *ut_get(int dir_fd, const char *path);

/* lstat of path below dir_fd, which must exist. */
struct stat ut_stat(int dir_fd, const char *path);

/* How many entries of the directory path below dir_fd have part in their name (temp files, say). */
int ut_count_names(int dir_fd, const char *path, const char *part);

/*
 * A context for a fake host whose / is root_fd: no /proc, no signal fd, the text log at info into a
 * memory stream (*log_buf, *log_len: fflush(ctx->log.out) before reading). ut_fake_ctx_close ends it.
 */
void ut_fake_ctx(struct ni_ctx *ctx, int root_fd, char **log_buf, size_t *log_len);
void ut_fake_ctx_close(struct ni_ctx *ctx, char **log_buf);

#endif
