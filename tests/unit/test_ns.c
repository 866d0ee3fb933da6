/* ns.c with faked syscalls: open everything before joining, error paths name the namespace. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>

#include "ns.h"
#include "unit.h"

/* openat: the path is checked against the queue, then the queued result (fd or -errno) is returned. */
int __wrap_openat(int dirfd, const char *path, int flags, ...);
int __wrap_openat(int dirfd, const char *path, int flags, ...)
{
	int r;

	(void)dirfd;
	(void)flags;
	check_expected(path);
	r = mock_type(int);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return r;
}

int __wrap_setns(int fd, int nstype);
int __wrap_setns(int fd, int nstype)
{
	int r;

	check_expected(fd);
	check_expected(nstype);
	r = mock_type(int);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return 0;
}

/* Our own namespaces all have inode 1; a target's fd has the inode queued for it (1 = same as ours). */
int __wrap_fstatat(int dirfd, const char *path, struct stat *st, int flags);
int __wrap_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	(void)dirfd;
	(void)path;
	(void)flags;
	memset(st, 0, sizeof(*st));
	st->st_ino = 1;
	return 0;
}

int __wrap_fstat(int fd, struct stat *st);
int __wrap_fstat(int fd, struct stat *st)
{
	(void)fd;
	memset(st, 0, sizeof(*st));
	st->st_ino = mock_type(ino_t);
	return 0;
}

static void expect_open(const char *path, int result)
{
	expect_string(__wrap_openat, path, path);
	will_return(__wrap_openat, result);
}

/* Opens /proc/<pid> then each namespace in join order; ino 1 means "already ours". */
static void expect_all_opened(const ino_t inos[_NI_NS_MAX])
{
	static const char *const paths[_NI_NS_MAX] = { "ns/ipc", "ns/uts", "ns/net", "ns/pid", "ns/mnt" };

	expect_open("1234", 100);
	for (int k = 0; k < _NI_NS_MAX; k++) {
		expect_open(paths[k], 200 + k);
		will_return(__wrap_fstat, inos[k]);
	}
}

static void test_no_such_pid(void **state)
{
	struct ni_ns ns;
	enum ni_ns_kind failed = NI_NS_IPC;

	(void)state;
	expect_open("1234", -ENOENT);
	assert_int_equal(ni_ns_open(3, 1234, NI_NS_ALL, &ns, &failed), -ESRCH);
	assert_int_equal(failed, _NI_NS_MAX);
	assert_int_equal(ni_ns_open(3, 0, NI_NS_ALL, &ns, &failed), -ESRCH);
}

static void test_open_denied(void **state)
{
	struct ni_ns ns;
	enum ni_ns_kind failed = _NI_NS_MAX;

	(void)state;
	expect_open("1234", 100);
	expect_open("ns/ipc", 200);
	will_return(__wrap_fstat, 9);
	expect_open("ns/uts", 201);
	will_return(__wrap_fstat, 9);
	expect_open("ns/net", -EACCES);
	assert_int_equal(ni_ns_open(3, 1234, NI_NS_ALL, &ns, &failed), -EACCES);
	assert_int_equal(failed, NI_NS_NET);
	assert_string_equal(ni_ns_name(failed), "net");
}

/* Every fd is open before the first setns, the order is ipc uts net pid mnt, own namespaces skipped. */
static void test_open_then_join(void **state)
{
	static const ino_t inos[_NI_NS_MAX] = { 9, 1, 9, 9, 9 }; /* uts is already ours */
	struct ni_ns ns;
	enum ni_ns_kind failed = _NI_NS_MAX;
	unsigned unjoined = ~0u;

	(void)state;
	expect_all_opened(inos);
	assert_int_equal(ni_ns_open(3, 1234, NI_NS_ALL, &ns, &failed), 0);
	assert_int_equal(ns.fd[NI_NS_UTS], -1);

	const int order[] = { NI_NS_IPC, NI_NS_NET, NI_NS_PID, NI_NS_MNT };
	const int flags[] = { CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWNS };
	for (size_t i = 0; i < 4; i++) {
		expect_value(__wrap_setns, fd, 200 + order[i]);
		expect_value(__wrap_setns, nstype, flags[i]);
		will_return(__wrap_setns, 0);
	}
	assert_int_equal(ni_ns_join(&ns, &failed, &unjoined), 0);
	assert_int_equal(unjoined, 0);
	for (int k = 0; k < _NI_NS_MAX; k++)
		assert_int_equal(ns.fd[k], -1);
}

/* A setns fails half way: the joined fds are closed, the rest stay open and are named as not joined
 * (uts was ours, so it was never to be joined and is not among them). */
static void test_join_denied(void **state)
{
	static const ino_t inos[_NI_NS_MAX] = { 9, 1, 9, 9, 9 };
	struct ni_ns ns;
	enum ni_ns_kind failed = _NI_NS_MAX;
	unsigned unjoined = 0;
	char names[NI_NS_NAMES_MAX];

	(void)state;
	expect_all_opened(inos);
	assert_int_equal(ni_ns_open(3, 1234, NI_NS_ALL, &ns, &failed), 0);
	expect_value(__wrap_setns, fd, 200);
	expect_value(__wrap_setns, nstype, CLONE_NEWIPC);
	will_return(__wrap_setns, 0);
	expect_value(__wrap_setns, fd, 202);
	expect_value(__wrap_setns, nstype, CLONE_NEWNET);
	will_return(__wrap_setns, -EPERM);
	assert_int_equal(ni_ns_join(&ns, &failed, &unjoined), -EPERM);
	assert_int_equal(failed, NI_NS_NET);
	assert_int_equal(unjoined, (1u << NI_NS_NET) | (1u << NI_NS_PID) | (1u << NI_NS_MNT));
	assert_string_equal(ni_ns_names(unjoined, names), "net, pid, mnt");
	assert_int_equal(ns.fd[NI_NS_IPC], -1);
	assert_int_equal(ns.fd[NI_NS_NET], 202);
	ns.fd[NI_NS_NET] = ns.fd[NI_NS_PID] = ns.fd[NI_NS_MNT] = -1; /* fake fds: nothing to close */
}

static void test_names(void **state)
{
	char names[NI_NS_NAMES_MAX];

	(void)state;
	assert_string_equal(ni_ns_names(0, names), "");
	assert_string_equal(ni_ns_names(1u << NI_NS_MNT, names), "mnt");
	assert_string_equal(ni_ns_names(NI_NS_ALL, names), "ipc, uts, net, pid, mnt");
}

/* Only the namespaces asked for are opened (nsenter -m -n). */
static void test_mask(void **state)
{
	struct ni_ns ns;
	enum ni_ns_kind failed = _NI_NS_MAX;

	(void)state;
	expect_open("1234", 100);
	expect_open("ns/net", 202);
	will_return(__wrap_fstat, 9);
	expect_open("ns/mnt", 204);
	will_return(__wrap_fstat, 9);
	assert_int_equal(ni_ns_open(3, 1234, (1u << NI_NS_NET) | (1u << NI_NS_MNT), &ns, &failed), 0);
	assert_int_equal(ns.fd[NI_NS_IPC], -1);
	assert_int_equal(ns.fd[NI_NS_NET], 202);
	assert_int_equal(ns.fd[NI_NS_MNT], 204);
	ns.fd[NI_NS_NET] = ns.fd[NI_NS_MNT] = -1; /* fake fds: nothing to close */
}

static void test_netns_names(void **state)
{
	char long_name[300];
	int fd = -1;

	(void)state;
	assert_true(ni_ns_netns_name_valid("blue"));
	assert_true(ni_ns_netns_name_valid("cni-1.2"));
	assert_false(ni_ns_netns_name_valid(""));
	assert_false(ni_ns_netns_name_valid("."));
	assert_false(ni_ns_netns_name_valid(".."));
	assert_false(ni_ns_netns_name_valid("a/b"));
	assert_false(ni_ns_netns_name_valid("/run/netns/blue"));
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_false(ni_ns_netns_name_valid(long_name));

	/* A refused name opens nothing; a good one is looked up under the host's root. */
	assert_int_equal(ni_ns_open_netns(5, "..", &fd), -EINVAL);
	expect_open("run/netns/blue", 42);
	assert_int_equal(ni_ns_open_netns(5, "blue", &fd), 0);
	assert_int_equal(fd, 42);
	expect_open("run/netns/gone", -ENOENT);
	assert_int_equal(ni_ns_open_netns(5, "gone", &fd), -ENOENT);
}

/* A switch for one step: save ours (skipping what is ours already), enter, restore. */
static void test_save_enter_restore(void **state)
{
	struct ni_ns target = { { -1, -1, -1, -1, -1 } }, saved;
	enum ni_ns_kind failed = _NI_NS_MAX;
	unsigned unjoined = ~0u;

	(void)state;
	target.fd[NI_NS_UTS] = 201;
	target.fd[NI_NS_NET] = 202;
	target.fd[NI_NS_PID] = 203;
	expect_open("self/ns/uts", 301);
	will_return(__wrap_fstat, 5); /* ours */
	will_return(__wrap_fstat, 5); /* the target's: the same, so no switch */
	expect_open("self/ns/net", 302);
	will_return(__wrap_fstat, 7);
	will_return(__wrap_fstat, 8);
	expect_open("self/ns/pid_for_children", 303);
	will_return(__wrap_fstat, 7);
	will_return(__wrap_fstat, 9);
	assert_int_equal(ni_ns_save(3, &target, &saved, &failed), 0);
	assert_int_equal(target.fd[NI_NS_UTS], -1);
	assert_int_equal(saved.fd[NI_NS_UTS], -1);
	assert_int_equal(saved.fd[NI_NS_NET], 302);
	assert_int_equal(saved.fd[NI_NS_PID], 303);
	assert_int_equal(saved.fd[NI_NS_IPC], -1);

	expect_value(__wrap_setns, fd, 202);
	expect_value(__wrap_setns, nstype, CLONE_NEWNET);
	will_return(__wrap_setns, 0);
	expect_value(__wrap_setns, fd, 203);
	expect_value(__wrap_setns, nstype, CLONE_NEWPID);
	will_return(__wrap_setns, 0);
	assert_int_equal(ni_ns_enter(&target, &failed, &unjoined), 0);
	assert_int_equal(unjoined, 0);
	assert_int_equal(target.fd[NI_NS_NET], 202); /* kept: enter does not close */

	expect_value(__wrap_setns, fd, 302);
	expect_value(__wrap_setns, nstype, CLONE_NEWNET);
	will_return(__wrap_setns, 0);
	expect_value(__wrap_setns, fd, 303);
	expect_value(__wrap_setns, nstype, CLONE_NEWPID);
	will_return(__wrap_setns, 0);
	assert_int_equal(ni_ns_restore(&saved, &failed), 0);
}

/* enter stops at the first failure; restore tries every saved namespace and reports the first failure. */
static void test_enter_restore_errors(void **state)
{
	struct ni_ns target = { { 200, -1, 202, -1, -1 } }, saved = { { 300, -1, 302, -1, -1 } };
	enum ni_ns_kind failed = _NI_NS_MAX;
	unsigned unjoined = 0;

	(void)state;
	expect_value(__wrap_setns, fd, 200);
	expect_value(__wrap_setns, nstype, CLONE_NEWIPC);
	will_return(__wrap_setns, -EPERM);
	assert_int_equal(ni_ns_enter(&target, &failed, &unjoined), -EPERM);
	assert_int_equal(failed, NI_NS_IPC);
	assert_int_equal(unjoined, (1u << NI_NS_IPC) | (1u << NI_NS_NET)); /* net was never tried */

	expect_value(__wrap_setns, fd, 300);
	expect_value(__wrap_setns, nstype, CLONE_NEWIPC);
	will_return(__wrap_setns, -EINVAL);
	expect_value(__wrap_setns, fd, 302);
	expect_value(__wrap_setns, nstype, CLONE_NEWNET);
	will_return(__wrap_setns, 0);
	failed = _NI_NS_MAX;
	assert_int_equal(ni_ns_restore(&saved, &failed), -EINVAL);
	assert_int_equal(failed, NI_NS_IPC);
}

/* Our own namespaces could not be opened: nothing stays open, the kind is named. */
static void test_save_fails(void **state)
{
	struct ni_ns target = { { -1, -1, 202, -1, -1 } }, saved;
	enum ni_ns_kind failed = _NI_NS_MAX;

	(void)state;
	expect_open("self/ns/net", -ENOENT);
	assert_int_equal(ni_ns_save(3, &target, &saved, &failed), -ENOENT);
	assert_int_equal(failed, NI_NS_NET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_such_pid),    cmocka_unit_test(test_open_denied),
		cmocka_unit_test(test_open_then_join), cmocka_unit_test(test_join_denied),
		cmocka_unit_test(test_mask),           cmocka_unit_test(test_netns_names),
		cmocka_unit_test(test_save_enter_restore), cmocka_unit_test(test_enter_restore_errors),
		cmocka_unit_test(test_save_fails),     cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
