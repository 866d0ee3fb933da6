/* The startup-script contract: checkpoint name, host-side checkpoint check and creation. */
#ifndef NI_LEGACY_H
#define NI_LEGACY_H

#include <stdbool.h>
#include <stddef.h>

#define NI_LEGACY_CHECKPOINT_PREFIX "/tmp/startup-script.kubernetes.io_"
#define NI_LEGACY_OK_LINE "!!! startup-script succeeded!\n"
#define NI_LEGACY_FAIL_FMT "!!! startup-script failed! exit code '%d'\n"

/*
 * The checkpoint path: checkpoint_env when set and non-empty (as `${CHECKPOINT_PATH:-...}`), else
 * the prefix + hex MD5 of the script followed by one newline (what `md5sum <<<"$SCRIPT"` hashed).
 */
int ni_legacy_checkpoint_path(const char *script, const char *checkpoint_env, char **ret);

/*
 * Whether the checkpoint says done. It lives in the host's world-writable /tmp, so only what no other
 * user can have made counts: a regular file owned by root with one link, looked at without following
 * a final symlink. Anything else there is not trusted (not done): a symlink, a file another user
 * owns or a hard link, a directory or FIFO. The old images' checkpoints were made by root's touch,
 * so they count. An error other than ENOENT/ENOTDIR is returned (and not done), as stat(1) failing
 * meant "run the script".
 */
int ni_legacy_is_done(int root_fd, const char *checkpoint, bool *ret_done);

/* The same, and when something untrusted is there, why (e.g. "a symbolic link owned by uid 65534")
 * in untrusted; an empty string when the checkpoint is absent or trusted. */
int ni_legacy_check(int root_fd, const char *checkpoint, bool *ret_done, char *untrusted, size_t len);

/*
 * Creates the checkpoint (an empty file owned by root) or updates its times, as touch(1), without
 * following a final symlink. A symlink, a file another user owns or a hard link there is removed
 * (not what it points to) and the checkpoint made anew with O_EXCL, so the next pass trusts it;
 * *ret_replaced says so. A directory, FIFO or other non-file there is refused with -EEXIST.
 */
int ni_legacy_mark_done(int root_fd, const char *checkpoint, bool *ret_replaced);

#endif
