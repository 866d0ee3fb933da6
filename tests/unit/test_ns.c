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
	assert_int_equal(ni_ns_join(&ns, &failed), 0);
	for (int k = 0; k < _NI_NS_MAX; k++)
		assert_int_equal(ns.fd[k], -1);
}

static void test_join_denied(void **state)
{
	static const ino_t inos[_NI_NS_MAX] = { 9, 9, 9, 9, 9 };
	struct ni_ns ns;
	enum ni_ns_kind failed = _NI_NS_MAX;

	(void)state;
	expect_all_opened(inos);
	assert_int_equal(ni_ns_open(3, 1234, NI_NS_ALL, &ns, &failed), 0);
	expect_value(__wrap_setns, fd, 200);
	expect_value(__wrap_setns, nstype, CLONE_NEWIPC);
	will_return(__wrap_setns, -EPERM);
	assert_int_equal(ni_ns_join(&ns, &failed), -EPERM);
	assert_int_equal(failed, NI_NS_IPC);
	ni_ns_close(&ns);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_such_pid),    cmocka_unit_test(test_open_denied),
		cmocka_unit_test(test_open_then_join), cmocka_unit_test(test_join_denied),
		cmocka_unit_test(test_mask),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
