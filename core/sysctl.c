/* Kernel parameters under /proc/sys: validated keys, one openat per key, one write() per change. */
#define _GNU_SOURCE
#include "sysctl.h"

#include <fcntl.h>
#include <unistd.h>

#include "fileio.h"
#include "util.h"

#define FIRST_READ 4095 /* one page with room for the NUL */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

int ni_sysctl_normalize(const char *key, char ret_path[static NI_SYSCTL_KEY_MAX + 1])
{
	size_t n = strlen(key);
	char sep = strchr(key, '/') ? '/' : '.';
	const char *part = key;

	if (n == 0 || n > NI_SYSCTL_KEY_MAX || key[0] == '/')
		return -EINVAL;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == ' ')
			return -EINVAL;
	/* Every part non-empty and not a path step: "a..b", "a/./b", "a/../b", "a/" all fail here. */
	for (;;) {
		const char *end = strchrnul(part, sep);
		size_t len = (size_t)(end - part);
		if (len == 0 || (sep == '/' && part[0] == '.' && (len == 1 || (len == 2 && part[1] == '.'))))
			return -EINVAL;
		if (!*end)
			break;
		part = end + 1;
	}
	for (size_t i = 0; i <= n; i++)
		ret_path[i] = key[i] == sep ? '/' : key[i];
	return 0;
}

int ni_sysctl_open(int root_fd, int *ret_fd)
{
	int fd = openat(root_fd, "proc/sys", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	return 0;
}

/*
 * A value, read as ni_read_virtual_fd reads /proc: one read() from offset 0 (procfs formats the value
 * whole per read; reading on could tear one the kernel changed in between). A page first, since
 * nearly every value fits and the kernel allocates what a read asks for; a longer value is read again
 * whole, from offset 0, up to NI_SYSCTL_VALUE_MAX. The trailing newline is dropped.
 */
static int read_value(int fd, char **ret_value, size_t *ret_len)
{
	_cleanup_free_ char *value = NULL;
	size_t len;
	int r;

	r = ni_read_virtual_fd(fd, FIRST_READ, &value, &len);
	if (r == -EFBIG) {
		if (lseek(fd, 0, SEEK_SET) < 0)
			return -errno;
		r = ni_read_virtual_fd(fd, NI_SYSCTL_VALUE_MAX, &value, &len);
	}
	if (r < 0)
		return r;
	if (len > 0 && value[len - 1] == '\n')
		value[len - 1] = '\0';
	*ret_len = len;
	*ret_value = steal_pointer(&value);
	return 0;
}

static int read_path(int proc_sys_fd, const char *path, char **ret_value)
{
	_cleanup_close_ int fd = -1;
	size_t len;

	fd = openat(proc_sys_fd, path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return read_value(fd, ret_value, &len);
}

int ni_sysctl_read(int proc_sys_fd, const char *key, char **ret_value)
{
	char path[NI_SYSCTL_KEY_MAX + 1];
	int r;

	r = ni_sysctl_normalize(key, path);
	if (r < 0)
		return r;
	return read_path(proc_sys_fd, path, ret_value);
}

bool ni_sysctl_value_equal(const char *a, const char *b)
{
	for (;;) {
		while (is_blank(*a))
			a++;
		while (is_blank(*b))
			b++;
		if (!*a || !*b)
			return !*a && !*b;
		/* One word each, compared byte for byte; then both must end it together. */
		while (*a && !is_blank(*a) && *a == *b) {
			a++;
			b++;
		}
		if ((*a && !is_blank(*a)) || (*b && !is_blank(*b)))
			return false;
	}
}

int ni_sysctl_write(int proc_sys_fd, const char *key, const char *value, bool *ret_changed)
{
	_cleanup_free_ char *current = NULL, *line = NULL;
	_cleanup_close_ int fd = -1;
	char path[NI_SYSCTL_KEY_MAX + 1];
	size_t vlen = strlen(value), cur_len = 0;
	ssize_t n;
	int r;

	*ret_changed = false;
	r = ni_sysctl_normalize(key, path);
	if (r < 0)
		return r;
	/* One open for the read and the write: a key costs one openat. The write goes at offset 0, where
	 * the kernel takes a numeric value (kernel.sysctl_writes_strict). */
	fd = openat(proc_sys_fd, path, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0) {
		r = read_value(fd, &current, &cur_len);
		if (r < 0)
			return r;
		if (ni_sysctl_value_equal(current, value))
			return 0;
		if (lseek(fd, 0, SEEK_SET) < 0)
			return -errno;
	} else if (errno == EACCES) {
		/* Not both readable and writable: a read-only key may still be equal; write-only keys
		 * (vm.drop_caches is 0200) cannot be compared, so they are written. */
		r = read_path(proc_sys_fd, path, &current);
		if (r >= 0 && ni_sysctl_value_equal(current, value))
			return 0;
		if (r < 0 && r != -EACCES)
			return r;
		/* O_TRUNC as a shell's ">" has: procfs ignores it; a plain file (a test's fake tree) needs it. */
		fd = openat(proc_sys_fd, path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		cur_len = 0;
	} else {
		return -errno;
	}

	/* The value and its newline in one buffer: the kernel parses a write() as a whole. */
	line = malloc(vlen + 2);
	if (!line)
		return -ENOMEM;
	memcpy(line, value, vlen);
	if (vlen == 0 || value[vlen - 1] != '\n')
		line[vlen++] = '\n';
	line[vlen] = '\0';

	do
		n = write(fd, line, vlen);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != vlen)
		return -EIO; /* a sysctl takes a value whole or not at all; a short write is a failure */
	/* A plain file (a test's fake tree) keeps a longer old value's tail; procfs has none to cut. */
	if (cur_len > vlen && ftruncate(fd, (off_t)vlen) < 0) {
		/* procfs may refuse it: the write itself succeeded */
	}
	*ret_changed = true;
	return 0;
}
