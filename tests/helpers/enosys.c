/*
 * enosys: runs a command as on an old kernel (RHEL 8's 4.18, Ubuntu 20.04's 5.4): a seccomp filter
 * answers ENOSYS for the system calls those kernels lack, for the command and everything it starts.
 *   enosys CMD [ARG...]   runs CMD under the filter
 *   enosys --probe        calls each of them under the filter and prints "NAME ERRNO-NAME" per line
 *   enosys --probe-bare   the same without the filter (on a new kernel: no ENOSYS)
 * A test helper only (tests/integration/oldkernel.sh); nodeinit itself never links libseccomp.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const struct {
	const char *name;
	long nr; /* for --probe */
} calls[] = {
	{ "openat2", __NR_openat2 },         /* 5.6 */
	{ "pidfd_open", __NR_pidfd_open },   /* 5.3 */
	{ "clone3", __NR_clone3 },           /* 5.3 */
	{ "close_range", __NR_close_range }, /* 5.9 */
	{ "faccessat2", __NR_faccessat2 },   /* 5.8 */
};

static int install(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r = ctx ? 0 : -ENOMEM;

	/* Not no_new_privs: we are root with CAP_SYS_ADMIN, and nodeinit's setuid-free world should see
	 * nothing else change. */
	if (r == 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	for (size_t i = 0; r == 0 && i < sizeof(calls) / sizeof(calls[0]); i++) {
		int nr = seccomp_syscall_resolve_name(calls[i].name);
		r = nr == __NR_SCMP_ERROR ? -ENOENT : seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
	}
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

/* Each call with arguments that would fail some other way (bad fd, bad pointer) if it got through. */
static int probe(void)
{
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		long r = syscall(calls[i].nr, -1L, 0L, 0L, 0L);
		printf("%s %s\n", calls[i].name, r < 0 ? strerrorname_np(errno) : "ok");
	}
	return 0;
}

int main(int argc, char **argv)
{
	int r;

	if (argc < 2) {
		fprintf(stderr, "usage: enosys CMD [ARG...] | enosys --probe\n");
		return 2;
	}
	if (strcmp(argv[1], "--probe-bare") == 0)
		return probe();
	r = install();
	if (r < 0) {
		fprintf(stderr, "enosys: cannot install the seccomp filter: %s\n", strerror(-r));
		return 125;
	}
	if (strcmp(argv[1], "--probe") == 0)
		return probe();
	execvp(argv[1], argv + 1);
	fprintf(stderr, "enosys: %s: %s\n", argv[1], strerror(errno));
	return 127;
}
