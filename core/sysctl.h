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

/* Whether a key holds glob characters ('*', '?', '['): such a key names every existing key it matches. */
bool ni_sysctl_is_glob(const char *key);

/*
 * The existing keys that glob matches, sorted: glob(7) on the path under /proc/sys, as
 * systemd-sysctl matches (a '*' never spans a separator), walked one component at a time through
 * proc_sys_fd. Keys come back dotted, or slashed when a part holds a dot (an interface "eth0.100").
 * No match is 0 with *ret_n 0. *ret holds *ret_n malloc'd strings (ni_strv_free).
 */
#define NI_SYSCTL_KEYS_MAX 65536
int ni_sysctl_keys(int proc_sys_fd, const char *glob, char ***ret, size_t *ret_n);

/* One line of sysctl.d text. */
struct ni_sysctl_conf_entry {
	char *key;           /* as written, without the '-' */
	char *value;         /* NULL: "-key" alone, which excludes key (a glob too) from every glob */
	bool ignore_failure; /* "-key = value": a failure to set it is logged, not fatal */
	bool glob;
	unsigned line;       /* 1-based line in the text */
};

struct ni_sysctl_conf {
	struct ni_sysctl_conf_entry *v;
	size_t n;
};

/*
 * Parses sysctl.d(5) text as systemd-sysctl reads it: blank lines and lines starting with '#' or ';'
 * skipped, "key = value" (blanks around both trimmed), '-' before the key to ignore its failure, and
 * "-key" alone for an exclusion. A line that is none of those, or an invalid key, is -EINVAL with its
 * number in *ret_line; a NUL byte is -EINVAL too.
 */
int ni_sysctl_conf_parse(const char *text, size_t len, struct ni_sysctl_conf *ret, unsigned *ret_line);
void ni_sysctl_conf_free(struct ni_sysctl_conf *c);

struct ni_sysctl_assignment {
	char *key; /* an explicit key as written, or a key a glob matched (ni_sysctl_keys' form) */
	const char *value; /* points into the conf */
	bool ignore_failure;
	unsigned line;
};

/*
 * What the text asks to write, in written order, with systemd's rules: a later assignment of the same
 * key (or glob) wins; a glob expands to the existing keys it matches (ni_sysctl_keys), except those
 * assigned explicitly anywhere in the text, whatever the order, and those an exclusion names.
 * *ret (free with ni_sysctl_assignments_free) holds *ret_n entries.
 */
int ni_sysctl_conf_resolve(int proc_sys_fd, const struct ni_sysctl_conf *c, struct ni_sysctl_assignment **ret,
			   size_t *ret_n);
void ni_sysctl_assignments_free(struct ni_sysctl_assignment *v, size_t n);

#endif
