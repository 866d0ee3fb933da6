/* Facts about the host, read from its /etc, /proc and /sys through the host root fd, without forking. */
#ifndef NI_HOST_H
#define NI_HOST_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/utsname.h>

/*
 * Every reader takes the host's root fd (struct ni_ctx root_fd): /proc and /sys are those mounted in
 * the host's mount namespace, read with one read() each (ni_read_virtual_fd); /etc goes through the
 * safe resolver (ni_file_read), as os-release is often a symlink into /usr/lib. The parsers are
 * separate so the unit tests can feed them fixture text. All return 0 or -errno.
 */

/* os-release(5): NULL for a field the file does not set, except the defaults the spec gives. */
struct ni_host_os {
	char *id;          /* ID=, default "linux" */
	char *version_id;  /* VERSION_ID=, or NULL */
	char *pretty_name; /* PRETTY_NAME=, default "Linux" */
};
void ni_host_os_free(struct ni_host_os *os);

/*
 * Parses os-release text with its quoting rules (a shell-compatible subset): KEY=value lines, '#'
 * comments and blank lines skipped; values unquoted, in '...' (literal) or "..." (where \ escapes
 * one of " \ $ `), or a concatenation of those. A malformed assignment line is -EBADMSG; lines for
 * other keys are skipped. ret is filled even for a file without the three keys.
 */
int ni_host_parse_os_release(const char *text, struct ni_host_os *ret);
/* /etc/os-release, or /usr/lib/os-release when the first does not exist. */
int ni_host_os(int root_fd, struct ni_host_os *ret);

/* A CPU list as in /sys/devices/system/cpu/online ("0-3,8,10-11\n"): how many CPUs it names. */
int ni_host_parse_cpu_list(const char *text, unsigned *ret_count);
int ni_host_cpus(int root_fd, unsigned *ret_count);

struct ni_host_memory {
	uint64_t total, available; /* bytes */
};
/* /proc/meminfo text: MemTotal and MemAvailable (before Linux 3.14: MemFree + Buffers + Cached). */
int ni_host_parse_meminfo(const char *text, struct ni_host_memory *ret);
int ni_host_memory(int root_fd, struct ni_host_memory *ret);

struct ni_host_iface {
	char name[NAME_MAX + 1];
	char mac[64]; /* "aa:bb:...", "" when the interface has no address */
	unsigned mtu;
	bool up; /* IFF_UP: administratively up, as `ip link` shows UP */
};
/* /sys/class/net, sorted by name. *ret is malloc'd (free it). */
int ni_host_interfaces(int root_fd, struct ni_host_iface **ret, size_t *ret_n);

struct ni_host_block {
	char name[NAME_MAX + 1];
	uint64_t size; /* bytes */
	bool rotational, removable;
	char model[128]; /* device/model without its padding, "" when there is none */
};
/* /sys/block, sorted by name. *ret is malloc'd (free it). */
int ni_host_block_devices(int root_fd, struct ni_host_block **ret, size_t *ret_n);

/* The NUMA nodes under /sys/devices/system/node (node0, node1, ...); 1 when the kernel has no NUMA. */
int ni_host_numa_nodes(int root_fd, unsigned *ret_count);

#endif
