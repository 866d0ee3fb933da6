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

/* Paths are resolved from the host's root (ni_chase); a relative one too, as nsenter's cwd was the host's /. */
int ni_legacy_is_done(int root_fd, const char *checkpoint, bool *ret_done)
{
	struct ni_chase c;
	_cleanup_close_ int fd = ni_chase(root_fd, checkpoint, 0, 0, &c);

	if (fd >= 0) {
		*ret_done = true;
		return 0;
	}
	/* stat(1) failing for any reason meant "run the script"; keep that, but report odd errors. */
	*ret_done = false;
	return fd == -ENOENT || fd == -ENOTDIR ? 0 : fd;
}

int ni_legacy_mark_done(int root_fd, const char *checkpoint)
{
	_cleanup_close_ int dfd = -1, fd = -1;
	struct ni_chase c;

	dfd = ni_chase(root_fd, checkpoint, NI_CHASE_PARENT, 0, &c);
	if (dfd < 0)
		return dfd;
	fd = ni_chase_open(dfd, &c, O_WRONLY | O_CREAT | O_NONBLOCK, 0666);
	if (fd < 0)
		return fd;
	if (futimens(fd, NULL) < 0)
		return -errno;
	return 0;
}
