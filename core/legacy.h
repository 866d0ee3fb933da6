/* The startup-script contract: checkpoint name, host-side checkpoint check and creation. */
#ifndef NI_LEGACY_H
#define NI_LEGACY_H

#include <stdbool.h>

#define NI_LEGACY_CHECKPOINT_PREFIX "/tmp/startup-script.kubernetes.io_"
#define NI_LEGACY_OK_LINE "!!! startup-script succeeded!\n"
#define NI_LEGACY_FAIL_FMT "!!! startup-script failed! exit code '%d'\n"

/*
 * The checkpoint path: checkpoint_env when set and non-empty (as `${CHECKPOINT_PATH:-...}`), else
 * the prefix + hex MD5 of the script followed by one newline (what `md5sum <<<"$SCRIPT"` hashed).
 */
int ni_legacy_checkpoint_path(const char *script, const char *checkpoint_env, char **ret);

/* Whether the checkpoint exists, resolved against root_fd (the host's /), following links as stat(1). */
int ni_legacy_is_done(int root_fd, const char *checkpoint, bool *ret_done);

/* Creates the checkpoint (an empty file) or updates its times, as touch(1). */
int ni_legacy_mark_done(int root_fd, const char *checkpoint);

#endif
