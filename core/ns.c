/* Namespace entry (the pure layer of `ns`): open all of a target's namespace fds, then setns. */
#define _GNU_SOURCE
#include "ns.h"

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/stat.h>

#include "util.h"

static const struct {
	const char *name;
	int flag;
} kinds[_NI_NS_MAX] = {
	[NI_NS_IPC] = { "ipc", CLONE_NEWIPC },
	[NI_NS_UTS] = { "uts", CLONE_NEWUTS },
	[NI_NS_NET] = { "net", CLONE_NEWNET },
	[NI_NS_PID] = { "pid", CLONE_NEWPID },
	[NI_NS_MNT] = { "mnt", CLONE_NEWNS },
};

const char *ni_ns_name(enum ni_ns_kind kind)
{
	return kind < _NI_NS_MAX ? kinds[kind].name : "proc";
}

int ni_ns_clone_flag(enum ni_ns_kind kind)
{
	return kinds[kind].flag;
}

/* True when fd names the namespace we are in already (same inode on nsfs). */
static bool ns_is_ours(int proc_fd, enum ni_ns_kind kind, int fd)
{
	char path[32];
	struct stat a, b;

	/* pid_for_children, not pid: what matters is where our children would land. */
	snprintf(path, sizeof(path), "self/ns/%s", kind == NI_NS_PID ? "pid_for_children" : kinds[kind].name);
	if (fstatat(proc_fd, path, &a, 0) < 0 || fstat(fd, &b) < 0)
		return false;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int ni_ns_open(int proc_fd, pid_t pid, unsigned mask, struct ni_ns *ret, enum ni_ns_kind *ret_failed)
{
	char path[32];
	_cleanup_close_ int pid_fd = -1;
	struct ni_ns ns;

	for (int k = 0; k < _NI_NS_MAX; k++)
		ns.fd[k] = -1;

	if (pid <= 0) {
		*ret_failed = _NI_NS_MAX;
		return -ESRCH;
	}
	snprintf(path, sizeof(path), "%d", (int)pid);
	pid_fd = openat(proc_fd, path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pid_fd < 0) {
		*ret_failed = _NI_NS_MAX;
		return errno == ENOENT ? -ESRCH : -errno;
	}

	for (int k = 0; k < _NI_NS_MAX; k++) {
		if (!(mask & (1u << k)))
			continue;
		snprintf(path, sizeof(path), "ns/%s", kinds[k].name);
		ns.fd[k] = openat(pid_fd, path, O_RDONLY | O_CLOEXEC);
		if (ns.fd[k] < 0) {
			int r = errno == ENOENT ? -ESRCH : -errno;
			*ret_failed = (enum ni_ns_kind)k;
			ni_ns_close(&ns);
			return r;
		}
		if (ns_is_ours(proc_fd, (enum ni_ns_kind)k, ns.fd[k]))
			ns.fd[k] = ni_safe_close(ns.fd[k]);
	}
	*ret = ns;
	return 0;
}

int ni_ns_join(struct ni_ns *ns, enum ni_ns_kind *ret_failed)
{
	for (int k = 0; k < _NI_NS_MAX; k++) {
		if (ns->fd[k] < 0)
			continue;
		if (setns(ns->fd[k], kinds[k].flag) < 0) {
			*ret_failed = (enum ni_ns_kind)k;
			return -errno;
		}
		ns->fd[k] = ni_safe_close(ns->fd[k]);
	}
	return 0;
}

void ni_ns_close(struct ni_ns *ns)
{
	for (int k = 0; k < _NI_NS_MAX; k++)
		ns->fd[k] = ni_safe_close(ns->fd[k]);
}
