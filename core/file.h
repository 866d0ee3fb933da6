/* Host paths over fileio: the safe resolver for every path, atomic writes, directories, kernel files. */
#ifndef NI_FILE_H
#define NI_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fileio.h"

#define NI_FILE_READ_MAX (16u << 20) /* what file.read and the comparisons take in; more is -EFBIG */

/*
 * Host paths are absolute; they resolve inside root_fd through ni_chase (fileio.h): symlinks are
 * followed inside the root, with the safety rule at every component. Each function below that can
 * refuse an unsafe link or transition returns -ENOLINK and, when why is not NULL, fills why
 * (NI_WHY_MAX bytes) with what was refused and the rule, for "<path>: <why>".
 */

/* Whether path is absolute with no "." or ".." parts: what recipes may name. */
bool ni_file_path_valid(const char *path);

/* The bounded reader under its older name (recipe.c, main.c and sysctl.c call it). */
static inline int ni_file_read_fd(int fd, size_t max, char **ret, size_t *ret_len)
{
	return ni_read_fd_bounded(fd, max, ret, ret_len);
}

/* Reads a whole file (following symlinks inside the root), at most NI_FILE_READ_MAX bytes. */
int ni_file_read(int root_fd, const char *path, char **ret, size_t *ret_len, char *why);

/*
 * Makes path hold exactly data, with attrs. A symlink at path is followed (inside the root, if the
 * rule allows it) and its target written, as a shell's ">" would. A new file gets mode 0644 unless
 * attrs say otherwise; an existing one keeps the mode and owner that attrs do not set. Nothing is
 * written when content and attributes already match. On failure no temp file is left behind and the
 * old content is intact (except when an in-place write itself fails). On procfs, sysfs and cgroupfs,
 * one write() of data (NI_FILE_KERNEL), skipped when the file reads the same.
 */
int ni_file_write(int root_fd, const char *path, const void *data, size_t len,
		  const struct ni_file_attrs *attrs, enum ni_file_change *ret_change, char *why);

/*
 * Makes path a directory (a symlink to one counts, if the rule allows following it), with attrs
 * (NULL: none): mode defaults to 0755 for a new directory; an existing one gets mode and owner fixed
 * when attrs set them, through an fd of the directory itself. With parents, missing parents are
 * made with mode 0755 (before the umask), like mkdir -p.
 */
int ni_file_mkdir(int root_fd, const char *path, const struct ni_file_attrs *attrs, bool parents,
		  bool *ret_changed, char *why);

/* Removes a file, a symlink (not its target) or an empty directory, with unlinkat in the directory
 * the walk resolved; absent is not an error. */
int ni_file_remove(int root_fd, const char *path, bool *ret_changed, char *why);

/* Whether path exists, following symlinks inside the root (a dangling symlink does not exist). */
int ni_file_exists(int root_fd, const char *path, bool *ret_exists, char *why);

/* The entry names of the directory path names (symlinks followed), sorted by strcmp, without "." and "..".
 * *ret is an array of *ret_n malloc'd strings (ni_strv_free). */
int ni_file_list(int root_fd, const char *path, char ***ret, size_t *ret_n, char *why);

/* stat(2) of what path names, symlinks followed (a dangling one is -ENOENT). */
int ni_file_stat(int root_fd, const char *path, struct stat *ret, char *why);

/*
 * Makes path a symlink to target (any text: a relative target resolves from the link's directory, as
 * the kernel does). A link already pointing there is left alone (*ret_changed false); one pointing
 * elsewhere is replaced atomically (a new link renamed over it); anything else at path is -EEXIST,
 * never replaced. The directories on the way go through the safe resolver and its rule. check_only:
 * nothing is made or replaced, *ret_changed says whether it would be (plan's check mode).
 */
int ni_file_symlink(int root_fd, const char *target, const char *path, bool check_only, bool *ret_changed, char *why);

#endif
