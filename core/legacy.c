/* Legacy startup-script semantics: the checkpoint file, byte-for-byte as the old images name it. */
#define _GNU_SOURCE
#include "legacy.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "digest.h"
#include "fileio.h"
#include "util.h"

int ni_legacy_checkpoint_path(const char *script, const char *checkpoint_env, char **ret)
{
	char hex[NI_MD5_HEX_LEN + 1];
	_cleanup_free_ char *buf = NULL;
	size_t n;

	if (checkpoint_env && *checkpoint_env) {
		*ret = strdup(checkpoint_env);
		return *ret ? 0 : -ENOMEM;
	}
	n = strlen(script);
	buf = malloc(n + 1);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, script, n);
	buf[n] = '\n';
	ni_md5_hex(buf, n + 1, hex);
	if (asprintf(ret, "%s%s", NI_LEGACY_CHECKPOINT_PREFIX, hex) < 0)
		return -ENOMEM;
	return 0;
}

/*
 * The directory holding the checkpoint, resolved from the host's root by the one resolver (a relative
 * path too, as nsenter's cwd was the host's /), with its rule against links other users planted on
 * the way; the last component is never followed: what sits there is what counts.
 */
static int checkpoint_dir(int root_fd, const char *checkpoint, struct ni_chase *c)
{
	return ni_chase(root_fd, checkpoint, NI_CHASE_PARENT | NI_CHASE_NOFOLLOW, 0, c);
}

/* A checkpoint only root can have made: nobody else can plant "done" in /tmp. */
static bool trusted(const struct stat *st)
{
	return S_ISREG(st->st_mode) && st->st_uid == 0 && st->st_nlink == 1;
}

int ni_legacy_check(int root_fd, const char *checkpoint, bool *ret_done, char *untrusted, size_t len)
{
	_cleanup_close_ int dfd = -1;
	struct ni_chase c;
	struct stat st;

	*ret_done = false;
	if (len)
		untrusted[0] = '\0';
	dfd = checkpoint_dir(root_fd, checkpoint, &c);
	if (dfd == -ENOENT || dfd == -ENOTDIR)
		return 0;
	if (dfd < 0)
		return dfd;
	if (fstatat(dfd, c.name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	if (trusted(&st)) {
		*ret_done = true;
		return 0;
	}
	if (S_ISLNK(st.st_mode))
		snprintf(untrusted, len, "a symbolic link owned by uid %u", (unsigned)st.st_uid);
	else if (!S_ISREG(st.st_mode))
		snprintf(untrusted, len, "not a regular file (mode %o)", (unsigned)st.st_mode);
	else if (st.st_uid != 0)
		snprintf(untrusted, len, "a file owned by uid %u, not root", (unsigned)st.st_uid);
	else
		snprintf(untrusted, len, "a file with %lu hard links", (unsigned long)st.st_nlink);
	return 0;
}

int ni_legacy_is_done(int root_fd, const char *checkpoint, bool *ret_done)
{
	return ni_legacy_check(root_fd, checkpoint, ret_done, NULL, 0);
}

int ni_legacy_mark_done(int root_fd, const char *checkpoint, bool *ret_replaced)
{
	const int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC;
	_cleanup_close_ int dfd = -1, fd = -1;
	struct ni_chase c;
	struct stat st;

	*ret_replaced = false;
	dfd = checkpoint_dir(root_fd, checkpoint, &c);
	if (dfd < 0)
		return dfd;
	if (fstatat(dfd, c.name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !trusted(&st)) {
		if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
			return -EEXIST; /* a directory, a FIFO someone reads, a device: never touched */
		/* A symlink or a file another user could have made: remove the name, not what it points to,
		 * and create ours; O_EXCL fails if someone plants it again in between. */
		if (unlinkat(dfd, c.name, 0) < 0 && errno != ENOENT)
			return -errno;
		*ret_replaced = true;
		fd = openat(dfd, c.name, flags | O_EXCL, 0666);
		return fd < 0 ? -errno : 0;
	}
	/* Absent, or ours already: create it or update its times, as touch(1). A link planted since the
	 * look above makes the open fail (O_NOFOLLOW); anything else planted since is refused. */
	fd = openat(dfd, c.name, flags, 0666);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!trusted(&st))
		return -EEXIST;
	return futimens(fd, NULL) < 0 ? -errno : 0;
}
