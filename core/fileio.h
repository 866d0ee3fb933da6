/* The one home for file I/O: whole writes, bounded reads, the safe path resolver, atomic replace. */
#ifndef NI_FILEIO_H
#define NI_FILEIO_H

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#define NI_SYMLINK_HOPS 40 /* like the kernel's MAXSYMLINKS: one more is -ELOOP */
#define NI_WHY_MAX 1024    /* a refusal's explanation, NUL-terminated, truncated to fit */

/* write() until all of data is out: EINTR retried, short writes continued; 0 or -errno. */
int ni_write_all(int fd, const void *data, size_t len);

/* The one bounded reader: fd to its end; more than max bytes is -EFBIG. *ret is malloc'd and
 * NUL-terminated (the NUL not counted in *ret_len). */
int ni_read_fd_bounded(int fd, size_t max, char **ret, size_t *ret_len);

/*
 * For /proc and /sys: one read() of up to max bytes, since those files produce their whole value per
 * read (reading on can tear a value the kernel regenerates in between). A value longer than max is
 * -EFBIG. *ret is malloc'd and NUL-terminated.
 */
int ni_read_virtual_fd(int fd, size_t max, char **ret, size_t *ret_len);

/* fsync a directory, given any fd of it (O_PATH too): what makes a create, rename or unlink durable. */
int ni_fsync_dir(int dir_fd);

/*
 * THE path resolver, as systemd's chase() with CHASE_SAFE. path resolves inside root_fd, one
 * component at a time with openat(O_PATH|O_NOFOLLOW): symlinks are read (readlinkat) and resolved by
 * this walk, an absolute target restarts at root_fd, ".." at root_fd stays there (the semantics of
 * openat2's RESOLVE_IN_ROOT), magic links (/proc/PID/root) are text like any other, and more than
 * NI_SYMLINK_HOPS links is -ELOOP. Because the walk is ours, it needs no openat2: it gives the same
 * guarantees on kernels before 5.6 (RHEL 8's 4.18, Ubuntu 20.04's 5.4).
 *
 * The safety rule, checked at every component (including each link's target) and refused with
 * -ENOLINK and an explanation in ret->why:
 *  - a symlink is followed only when its owner is root or the owner of the directory it sits in
 *    (so nobody's /tmp/planted -> /etc/victim is refused, root's /etc/resolv.conf -> ../run/... not);
 *  - from a directory owned by a non-root user, the walk goes only to what that user owns (systemd's
 *    unsafe_transition: /srv/app owned by nobody may not lead to /etc, through "..", an absolute
 *    link or a plain entry).
 */
enum {
	NI_CHASE_NOFOLLOW = 1 << 0, /* a symlink as the last component is the result, not followed */
	NI_CHASE_PARENT = 1 << 1,   /* result: the directory holding the last component, and its name */
	NI_CHASE_MKDIR = 1 << 2,    /* missing directories on the way are made (with PARENT: not the last) */
};

struct ni_chase {
	char name[NAME_MAX + 1]; /* NI_CHASE_PARENT: the last component, not opened (it may not exist) */
	char path[PATH_MAX];     /* where the result is inside the root ("/" for the root): for messages */
	struct stat dir_st;      /* NI_CHASE_PARENT: the returned directory, for ni_chase_open */
	unsigned made;           /* NI_CHASE_MKDIR: how many directories the walk made */
	char why[NI_WHY_MAX];    /* set when -ENOLINK: the link or transition refused, its owner, the rule */
};

/*
 * Returns an fd (O_CLOEXEC) or -errno. Without NI_CHASE_PARENT: an O_PATH fd of what path names
 * (symlinks followed unless NI_CHASE_NOFOLLOW). With it: the directory holding the last component,
 * opened O_RDONLY|O_DIRECTORY (so it can be fsync'ed), the name in ret->name; a symlink there is
 * followed (unless NI_CHASE_NOFOLLOW) to where it points, so ret->name is never a symlink the caller
 * should have followed. With NI_CHASE_PARENT, a path naming the root itself (or ending in "." or ".."
 * after links) is -EINVAL. Directories NI_CHASE_MKDIR makes get dir_mode (before the umask).
 */
int ni_chase(int root_fd, const char *path, unsigned flags, mode_t dir_mode, struct ni_chase *ret);

/*
 * Opens c->name in dir_fd, as ni_chase(NI_CHASE_PARENT) returned them, without following a symlink
 * (one swapped in since is ELOOP), and applies the transition rule to what it opened (c->why on
 * -ENOLINK). flags as for openat; O_CLOEXEC|O_NOFOLLOW|O_NOCTTY are added.
 */
int ni_chase_open(int dir_fd, struct ni_chase *c, int flags, mode_t mode);

/*
 * Creates ".<name>.tmp.<16 hex>" in dir_fd exclusively (O_EXCL|O_NOFOLLOW), with mode, and names it
 * in ret_name. The state dir's clean-up of abandoned temp files matches exactly this pattern; a long
 * name is shortened in the middle part so the pattern always fits NAME_MAX. Returns the fd or -errno.
 */
int ni_make_temp(int dir_fd, const char *name, mode_t mode, char ret_name[static NAME_MAX + 1]);

/* What a write or mkdir should leave behind; a field without its has_ flag is left as it is. */
struct ni_file_attrs {
	mode_t mode; /* permission bits, 07777 at most */
	uid_t uid;
	gid_t gid;
	bool has_mode, has_uid, has_gid;
};

enum ni_file_change {
	NI_FILE_UNCHANGED, /* content and attributes were already right: nothing written */
	NI_FILE_REPLACED,  /* new content, atomically: temp file, rename (fsync'ed with NI_WRITE_SYNC) */
	NI_FILE_ATTRS,     /* same content: only mode or owner fixed, on the file itself */
	NI_FILE_IN_PLACE,  /* rename got EBUSY (a bind-mounted file): rewritten in place, not atomically */
	NI_FILE_KERNEL,    /* a procfs, sysfs or cgroupfs file: one write(), as `echo v > file` */
};

/*
 * Mode and owner of an open fd (owner first: chown may clear set-id bits). -1 ids and a mode of
 * (mode_t)-1 leave that part as it is. *ret_changed says whether anything differed.
 */
int ni_fd_set_attrs(int fd, mode_t mode, uid_t uid, gid_t gid, bool *ret_changed);

enum {
	NI_WRITE_SYNC = 1 << 0,      /* fsync the temp file before the rename, the directory after it */
	NI_WRITE_SKIP_SAME = 1 << 1, /* nothing written when content and attributes match; attributes
				      * alone are fixed on the file itself */
};

/*
 * Makes name in dir_fd hold exactly data: a temp file in dir_fd (ni_make_temp), written, fchown'ed and
 * fchmod'ed, then renamed over name; on failure the temp file is unlinked and the old file is intact.
 * attrs not set keep an existing file's mode and owner; a new file gets mode 0644 and our owner. An
 * existing name that is not a regular file is -EISDIR (a directory) or -EINVAL; any existing file it
 * opens passes the transition rule (-ENOLINK, why filled when not NULL, NI_WHY_MAX bytes). rename's
 * EBUSY (a bind-mounted file) falls back to rewriting the inode in place: NI_FILE_IN_PLACE says so.
 */
int ni_write_atomic_at(int dir_fd, const char *name, const void *data, size_t len, unsigned flags,
		       const struct ni_file_attrs *attrs, enum ni_file_change *ret_change, char *why);

/* A DIR stream over the directory dir_fd names (O_PATH too: "." is reopened readable); closedir it. */
int ni_opendir_at(int dir_fd, DIR **ret);

#endif
