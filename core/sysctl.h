/* Kernel parameters under /proc/sys: key normalisation, read, and compare-then-write. */
#ifndef NI_SYSCTL_H
#define NI_SYSCTL_H

#include <stdbool.h>
#include <stddef.h>

#define NI_SYSCTL_KEY_MAX 1024       /* longer keys are refused; real ones are well under 100 bytes */
#define NI_SYSCTL_VALUE_MAX (1u << 20) /* a read stops here: no sysctl prints more than a few pages */

/*
 * Turns a key into a path relative to /proc/sys, in ret_path (NI_SYSCTL_KEY_MAX + 1 bytes). A key
 * holding '/' is the slashed form and its dots are literal (net/ipv4/conf/eth0.100/forwarding);
 * otherwise dots separate the parts (net.ipv4.ip_forward). Refused with -EINVAL: empty keys,
 * absolute paths, empty, "." or ".." parts, control characters and blanks, over-long keys.
 */
int ni_sysctl_normalize(const char *key, char ret_path[static NI_SYSCTL_KEY_MAX + 1]);

/*
 * Opens the /proc/sys of the procfs mounted at root_fd's proc/ (O_PATH). Keys under net/ show the
 * network namespace of the process that opens each file, so join the host's first.
 */
int ni_sysctl_open(int root_fd, int *ret_fd);

/* Reads a key (one openat, O_RDONLY); the value loses its trailing newline. *ret_value is malloc'd. */
int ni_sysctl_read(int proc_sys_fd, const char *key, char **ret_value);

/*
 * Sets a key: reads it, compares with ni_sysctl_value_equal, and only when different opens it
 * O_WRONLY and writes the value (plus a newline) with one write(). A write-only key (EACCES on
 * read) is written unconditionally. *ret_changed says whether a write happened.
 */
int ni_sysctl_write(int proc_sys_fd, const char *key, const char *value, bool *ret_changed);

/*
 * Whether two values are the same once runs of blanks (space, tab, newline) are collapsed and the
 * ends trimmed: the kernel prints "32768\t60999" for a range set as "32768 60999".
 */
bool ni_sysctl_value_equal(const char *a, const char *b);

#endif
