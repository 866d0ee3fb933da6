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

/* Room for every name in ni_ns_names: "ipc, uts, net, pid, mnt". */
#define NI_NS_NAMES_MAX 32

/* The names of the kinds in mask, in join order and ", "-separated, into buf; returns buf. */
const char *ni_ns_names(unsigned mask, char buf[static NI_NS_NAMES_MAX]);

/*
 * Opens the namespaces in mask of process pid, from proc_fd (an O_PATH fd on a /proc mount).
 * Namespaces the caller already shares are left at -1 (setns into one's own user namespace is an
 * error, and skipping is cheaper for the rest). On failure returns -errno with *ret_failed set to
 * the kind that failed, or to _NI_NS_MAX when /proc/<pid> itself could not be opened.
 */
int ni_ns_open(int proc_fd, pid_t pid, unsigned mask, struct ni_ns *ret, enum ni_ns_kind *ret_failed);

/*
 * ni_ns_open with two /proc mounts: pid is looked up in target_proc_fd (say the host's /proc, where
 * the host's pids are), "already ours" is decided through self_proc_fd (a /proc of the pid namespace
 * we live in: after entering a host, its /proc does not show us).
 */
int ni_ns_open_at(int target_proc_fd, int self_proc_fd, pid_t pid, unsigned mask, struct ni_ns *ret,
		  enum ni_ns_kind *ret_failed);

/* True for a name `ip netns add` could have made: not empty, no '/', not "." or "..", < NAME_MAX. */
bool ni_ns_netns_name_valid(const char *name);

/*
 * Opens the named network namespace run/netns/<name> under root_fd (the bind mount `ip netns add`
 * makes). -EINVAL for a name ni_ns_netns_name_valid refuses.
 */
int ni_ns_open_netns(int root_fd, const char *name, int *ret_fd);

/*
 * For a switch that must be undone (one step in a named netns): opens our own current namespace of
 * every kind open in target, through self_proc_fd ("self/ns/<kind>"; pid_for_children for PID).
 * Kinds where target is ours already are closed in both, so nothing switches needlessly.
 */
int ni_ns_save(int self_proc_fd, struct ni_ns *target, struct ni_ns *ret_saved, enum ni_ns_kind *ret_failed);

/*
 * Joins every open namespace of ns and keeps the fds (to switch again later); stops at the first
 * error. Afterwards every fd that was open must have been joined: *ret_unjoined gets the kinds that
 * were not (the failed one and those after it; 0 on success), so an error can name them.
 */
int ni_ns_enter(struct ni_ns *ns, enum ni_ns_kind *ret_failed, unsigned *ret_unjoined);

/* Joins back every saved namespace; tries them all, returns the first error. */
int ni_ns_restore(const struct ni_ns *saved, enum ni_ns_kind *ret_failed);

/* ni_ns_enter that closes each fd once joined; the PID namespace applies to children forked afterwards. */
int ni_ns_join(struct ni_ns *ns, enum ni_ns_kind *ret_failed, unsigned *ret_unjoined);

void ni_ns_close(struct ni_ns *ns);

#endif
