/* Namespace entry (the pure layer of `ns`): open all of a target's namespace fds, then setns. */
#define _GNU_SOURCE
#include "ns.h"

#include <fcntl.h>
#include <limits.h>
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

const char *ni_ns_names(unsigned mask, char buf[static NI_NS_NAMES_MAX])
{
	size_t len = 0;

	buf[0] = '\0';
	for (int k = 0; k < _NI_NS_MAX; k++)
		if (mask & (1u << k))
			len += (size_t)snprintf(buf + len, NI_NS_NAMES_MAX - len, "%s%s", len ? ", " : "", kinds[k].name);
	return buf;
}

/* "self/ns/<kind>": pid_for_children, not pid, since what matters is where our children land. */
static void self_ns_path(enum ni_ns_kind kind, char *buf, size_t size)
{
	snprintf(buf, size, "self/ns/%s", kind == NI_NS_PID ? "pid_for_children" : kinds[kind].name);
}

static bool same_file(int a_fd, int b_fd)
{
	struct stat a, b;

	if (fstat(a_fd, &a) < 0 || fstat(b_fd, &b) < 0)
		return false;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* True when fd names the namespace we are in already (same inode on nsfs). */
static bool ns_is_ours(int proc_fd, enum ni_ns_kind kind, int fd)
{
	char path[32];
	struct stat a, b;

	self_ns_path(kind, path, sizeof(path));
	if (fstatat(proc_fd, path, &a, 0) < 0 || fstat(fd, &b) < 0)
		return false;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int ni_ns_open(int proc_fd, pid_t pid, unsigned mask, struct ni_ns *ret, enum ni_ns_kind *ret_failed)
{
	return ni_ns_open_at(proc_fd, proc_fd, pid, mask, ret, ret_failed);
}

int ni_ns_open_at(int proc_fd, int self_proc_fd, pid_t pid, unsigned mask, struct ni_ns *ret,
		  enum ni_ns_kind *ret_failed)
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
		if (ns_is_ours(self_proc_fd, (enum ni_ns_kind)k, ns.fd[k]))
			ns.fd[k] = ni_safe_close(ns.fd[k]);
	}
	*ret = ns;
	return 0;
}

bool ni_ns_netns_name_valid(const char *name)
{
	size_t len = strlen(name);

	return len > 0 && len < NAME_MAX && !strchr(name, '/') && !ni_streq(name, ".") && !ni_streq(name, "..");
}

int ni_ns_open_netns(int root_fd, const char *name, int *ret_fd)
{
	char path[32 + NAME_MAX];
	int fd;

	if (!ni_ns_netns_name_valid(name))
		return -EINVAL;
	snprintf(path, sizeof(path), "run/netns/%s", name);
	/* A symlink there is not something `ip netns` made: do not follow it elsewhere. */
	fd = openat(root_fd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	return 0;
}

int ni_ns_save(int self_proc_fd, struct ni_ns *target, struct ni_ns *ret_saved, enum ni_ns_kind *ret_failed)
{
	struct ni_ns saved;
	char path[32];

	for (int k = 0; k < _NI_NS_MAX; k++)
		saved.fd[k] = -1;
	for (int k = 0; k < _NI_NS_MAX; k++) {
		if (target->fd[k] < 0)
			continue;
		self_ns_path((enum ni_ns_kind)k, path, sizeof(path));
		saved.fd[k] = openat(self_proc_fd, path, O_RDONLY | O_CLOEXEC);
		if (saved.fd[k] < 0) {
			int r = -errno;
			*ret_failed = (enum ni_ns_kind)k;
			ni_ns_close(&saved);
			return r;
		}
		if (same_file(saved.fd[k], target->fd[k])) {
			saved.fd[k] = ni_safe_close(saved.fd[k]);
			target->fd[k] = ni_safe_close(target->fd[k]);
		}
	}
	*ret_saved = saved;
	return 0;
}

/*
 * setns(2), with one care for the mount namespace: the kernel refuses it (EINVAL) while another
 * thread shares our fs_struct (cwd, root). qemu-user runs such a thread in every emulated process, and
 * a helper thread of ours would too; unshare(CLONE_FS) gives this thread its own, and changes nothing
 * for a process whose fs_struct is already its own.
 */
static int enter_one(int fd, int flag)
{
	if (flag == CLONE_NEWNS && unshare(CLONE_FS) < 0)
		return -errno;
	return setns(fd, flag) < 0 ? -errno : 0;
}

/*
 * Joins the open namespaces in order, stopping at the first failure, then checks that every fd that
 * was open got used, as runc's nsexec.c does, and hands back the kinds that did not.
 */
static int join_each(struct ni_ns *ns, bool close_joined, enum ni_ns_kind *ret_failed, unsigned *ret_unjoined)
{
	unsigned open = 0, joined = 0;
	int r = 0;

	for (int k = 0; k < _NI_NS_MAX; k++) {
		if (ns->fd[k] < 0)
			continue;
		open |= 1u << k;
		if (r < 0)
			continue;
		if ((r = enter_one(ns->fd[k], kinds[k].flag)) < 0) {
			*ret_failed = (enum ni_ns_kind)k;
			continue;
		}
		joined |= 1u << k;
		if (close_joined)
			ns->fd[k] = ni_safe_close(ns->fd[k]);
	}
	*ret_unjoined = open & ~joined;
	return r;
}

int ni_ns_enter(struct ni_ns *ns, enum ni_ns_kind *ret_failed, unsigned *ret_unjoined)
{
	return join_each(ns, false, ret_failed, ret_unjoined);
}

int ni_ns_restore(const struct ni_ns *saved, enum ni_ns_kind *ret_failed)
{
	int r = 0;

	for (int k = 0; k < _NI_NS_MAX; k++) {
		int q;

		if (saved->fd[k] >= 0 && (q = enter_one(saved->fd[k], kinds[k].flag)) < 0 && r == 0) {
			*ret_failed = (enum ni_ns_kind)k;
			r = q;
		}
	}
	return r;
}

int ni_ns_join(struct ni_ns *ns, enum ni_ns_kind *ret_failed, unsigned *ret_unjoined)
{
	return join_each(ns, true, ret_failed, ret_unjoined);
}

void ni_ns_close(struct ni_ns *ns)
{
	for (int k = 0; k < _NI_NS_MAX; k++)
		ns->fd[k] = ni_safe_close(ns->fd[k]);
}
