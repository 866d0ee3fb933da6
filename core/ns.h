/* Entering a target process's namespaces: open every fd first, then join them in one go. */
#ifndef NI_NS_H
#define NI_NS_H

#include <stdbool.h>
#include <sys/types.h>

/* Join order follows util-linux nsenter; mount goes last so nothing after it needs old paths. */
enum ni_ns_kind {
	NI_NS_IPC,
	NI_NS_UTS,
	NI_NS_NET,
	NI_NS_PID,
	NI_NS_MNT,
	_NI_NS_MAX,
};

#define NI_NS_ALL ((1u << _NI_NS_MAX) - 1)

struct ni_ns {
	int fd[_NI_NS_MAX]; /* -1 where not wanted, or where it is already ours */
};

const char *ni_ns_name(enum ni_ns_kind kind);

/* The CLONE_NEW* flag of a kind, for setns(). */
int ni_ns_clone_flag(enum ni_ns_kind kind);

/*
 * Opens the namespaces in mask of process pid, from proc_fd (an O_PATH fd on a /proc mount).
 * Namespaces the caller already shares are left at -1 (setns into one's own user namespace is an
 * error, and skipping is cheaper for the rest). On failure returns -errno with *ret_failed set to
 * the kind that failed, or to _NI_NS_MAX when /proc/<pid> itself could not be opened.
 */
int ni_ns_open(int proc_fd, pid_t pid, unsigned mask, struct ni_ns *ret, enum ni_ns_kind *ret_failed);

/* Joins every open namespace; the PID namespace applies to children forked afterwards. */
int ni_ns_join(struct ni_ns *ns, enum ni_ns_kind *ret_failed);

void ni_ns_close(struct ni_ns *ns);

#endif
