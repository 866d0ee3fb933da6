/* Files on the host: paths resolved inside a root fd, atomic replace, metadata, mkdir, remove. */
#ifndef NI_FILE_H
#define NI_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define NI_FILE_READ_MAX (16u << 20) /* what file.read and the comparisons take in; more is -EFBIG */
#define NI_FILE_SYMLINK_HOPS 40     /* like the kernel's MAXSYMLINKS */

/* What a write or mkdir should leave behind; a field without its has_ flag is left as it is. */
struct ni_file_attrs {
	mode_t mode; /* permission bits, 07777 at most */
	uid_t uid;
	gid_t gid;
	bool has_mode, has_uid, has_gid;
};

enum ni_file_change {
	NI_FILE_UNCHANGED, /* content and attributes were already right: nothing written */
	NI_FILE_REPLACED,  /* new content, atomically: temp file, fsync, rename, fsync of the directory */
	NI_FILE_ATTRS,     /* same content: only mode or owner fixed, on the file itself */
	NI_FILE_IN_PLACE,  /* rename got EBUSY (a bind-mounted file): rewritten in place, not atomically */
	NI_FILE_KERNEL,    /* a procfs, sysfs or cgroupfs file: one write(), as `echo v > file` */
};

/*
 * Host paths are absolute; they resolve inside root_fd (leading slashes dropped), with
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so ".." and absolute symlinks stop at that
 * root. Kernels without openat2 (before 5.6: ENOSYS) get a plain openat, which does not confine
 * symlinks; in production root_fd is the host's "/" anyway. Returns an fd (O_CLOEXEC added) or -errno.
 */
int ni_file_open_in_root(int root_fd, const char *path, int flags);

/* Whether path is absolute with no "." or ".." parts: what recipes may name. */
bool ni_file_path_valid(const char *path);

/* Reads fd to its end; more than max bytes is -EFBIG. *ret is malloc'd and NUL-terminated. */
int ni_file_read_fd(int fd, size_t max, char **ret, size_t *ret_len);

/* Reads a whole file (following symlinks inside the root), at most NI_FILE_READ_MAX bytes. */
int ni_file_read(int root_fd, const char *path, char **ret, size_t *ret_len);

/*
 * Makes path hold exactly data, with attrs. A symlink at path is followed (inside the root) and
 * its target written, as a shell's ">" would. A new file gets mode 0644 unless attrs say
 * otherwise; an existing one keeps the mode and owner that attrs do not set. Nothing is written
 * when content and attributes already match. On failure no temp file is left behind and the old
 * content is intact (except when an in-place write itself fails).
 */
int ni_file_write(int root_fd, const char *path, const void *data, size_t len,
		  const struct ni_file_attrs *attrs, enum ni_file_change *ret_change);

/*
 * Makes path a directory (a symlink to one counts), with attrs: mode defaults to 0755 for a new
 * directory; an existing one gets mode and owner fixed when attrs set them. With parents, missing
 * parents are made with mode 0755 (before the umask), like mkdir -p.
 */
int ni_file_mkdir(int root_fd, const char *path, const struct ni_file_attrs *attrs, bool parents,
		  bool *ret_changed);

/* Removes a file, a symlink (not its target) or an empty directory; absent is not an error. */
int ni_file_remove(int root_fd, const char *path, bool *ret_changed);

/* Whether path exists, following symlinks inside the root (a dangling symlink does not exist). */
int ni_file_exists(int root_fd, const char *path, bool *ret_exists);

#endif
