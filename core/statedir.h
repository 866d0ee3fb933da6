/* core/statedir.h — the state dir on the host: open it (trusted only when it deserves it), its lock,
 * temp-file cleanup, the index and the legacy record, and the trusted open of its files the journal shares. */
#ifndef NI_STATEDIR_H
#define NI_STATEDIR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "journal_text.h"

/*
 * Trust rules. Root writes step records here and believes them, so only root (or the user nodeinit
 * runs as) may be able to change what is in it:
 *   - the state dir and every directory above it, up to the host's /, is owned by root and has no
 *     group or other write bit; a parent may be root-owned and sticky (/tmp, 1777), since then only
 *     root can rename or remove the entry below it;
 *   - no symlink on the way is owned by anyone else;
 *   - lock, index, legacy and every <recipe>.state are regular files owned by root (O_NOFOLLOW).
 * A refusal is -ENOLINK (as systemd's chase() says "unsafe transition") with the details in a
 * struct ni_state_refusal.
 */
struct ni_state_refusal {
	char path[PATH_MAX + NAME_MAX + 2]; /* as the host sees it, e.g. "/tmp/nodeinit" or ".../index" */
	uid_t uid;
	mode_t mode; /* with the file type bits */
	const char *rule; /* one sentence, static */
};

enum {
	NI_STATE_OPEN_READ_ONLY = 1 << 0, /* never create: a missing state dir is -ENOENT ("nothing recorded") */
};
/*
 * Opens the state dir relative to root_fd (the host's /), O_PATH|O_DIRECTORY, and checks it, its
 * parents and the files in it against the trust rules. Without NI_STATE_OPEN_READ_ONLY a missing dir
 * is made (parents 0755, the state dir 0700, as `mkdir -p -m 0700`), never in a directory that fails
 * the rules. Symlinks on the way resolve inside root_fd (ni_chase), so an absolute link on the host
 * cannot lead into the container. ".." components are refused (-EINVAL). -ENOLINK: refused, and *ret_refusal (may be NULL)
 * says which path, its owner and mode, and the rule.
 */
int ni_state_open(int root_fd, const char *state_dir, unsigned flags, int *ret_dir_fd,
		  struct ni_state_refusal *ret_refusal);
/*
 * flock(LOCK_EX) on <dir>/lock (created 0600; an existing one must be a regular file owned by root,
 * -ENOLINK otherwise, so another user's file cannot make us wait). wait=false: -EWOULDBLOCK when
 * held. cancel_fd (or -1): when it becomes readable (or hangs up) while waiting, give up with
 * -ECANCELED; it is polled together with a LOCK_NB attempt every 50 ms. Returns the lock fd in
 * ret_lock_fd; closing it releases the lock.
 */
int ni_state_lock(int dir_fd, bool wait, int cancel_fd, int *ret_lock_fd);
/*
 * Removes the temp files of the index and the journals left by a writer that was killed before
 * its rename (SIGKILL, the OOM killer). Call it holding the lock: those writers hold it too.
 * The legacy record is written without the lock, so its temp files are left alone.
 */
int ni_state_remove_temps(int dir_fd);

/* The index: which recipes the last pass saw, in order, so `status` knows what "converged" covers. Atomic rewrite. */
int ni_state_write_index(int dir_fd, char *const *recipes, size_t n);
/* missing → 0 recipes (*ret_recipes may then be NULL); free with ni_strv_free; -EINVAL for a foreign file */
int ni_state_read_index(int dir_fd, char ***ret_recipes, size_t *ret_n);

/* The legacy STARTUP_SCRIPT's record (journal_text.h). Atomic rewrite. */
int ni_state_write_legacy(int dir_fd, const struct ni_legacy_record *r);
int ni_state_read_legacy(int dir_fd, struct ni_legacy_record *ret); /* -ENOENT when none */

/* ---- for journal.c ---- */

/* A journal grows between compactions only; past this something is wrong, and we do not slurp it. */
#define NI_STATE_FILE_MAX ((size_t)256 << 20)
/* Opens one of our files: no symlinks, no FIFOs (O_NONBLOCK), regular files owned by root only
 * (-ENOLINK otherwise). Returns the fd; *ret_st is its fstat. */
int ni_statedir_open_file(int dir_fd, const char *name, int flags, struct stat *ret_st);
/* ni_statedir_open_file + a read of at most NI_STATE_FILE_MAX bytes (-EFBIG past it). */
int ni_statedir_read_file(int dir_fd, const char *name, char **ret_buf, size_t *ret_len);

/* Atomic, durable replace of <name> (0600, ours): ni_write_atomic_at, skipped when it already holds exactly data. */
int ni_statedir_write_atomic(int dir_fd, const char *name, const void *data, size_t len);

#endif
