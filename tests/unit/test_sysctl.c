/* sysctl.c and l_sysctl.c against a fake /proc/sys made as a directory tree under the build dir. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctx.h"
#include "luart.h"
#include "sysctl.h"
#include "unit.h"

/* write() counted, so "no write when equal" is seen directly; everything else passes through. */
ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
static unsigned writes;

ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
	writes++;
	return __real_write(fd, buf, n);
}

/* read() counted: a value is one read() from offset 0, as procfs wants (a second read could tear it). */
ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __wrap_read(int fd, void *buf, size_t n);
static unsigned reads;

ssize_t __wrap_read(int fd, void *buf, size_t n)
{
	reads++;
	return __real_read(fd, buf, n);
}

/* An open for reading (O_RDONLY or O_RDWR) can be made to fail with EACCES, as for a write-only key. */
int __real_openat(int dirfd, const char *path, int flags, ...);
int __wrap_openat(int dirfd, const char *path, int flags, ...);
static bool deny_reads;
static unsigned opens; /* non-O_PATH opens: a key costs one */

int __wrap_openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & O_CREAT) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	if (!(flags & O_PATH))
		opens++;
	if (deny_reads && (flags & O_ACCMODE) != O_WRONLY && !(flags & O_PATH)) {
		errno = EACCES;
		return -1;
	}
	return __real_openat(dirfd, path, flags, mode);
}

struct fixture {
	char dir[512]; /* the fake root: <build>/t/unit-sysctl */
	int root_fd;
	int proc_sys_fd;
};

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void mkdir_p(const char *path)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	mkdir(buf, 0755);
}

static void put(int dirfd, const char *path, const char *content)
{
	int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(__real_write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

static char *get(int dirfd, const char *path)
{
	static char buf[4096];
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

/* A fake root holding proc/sys with a few keys, as the kernel prints them. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("NI_TEST_TMP"), *build = getenv("BUILD");

	/* Under the build dir (never /tmp): $NI_TEST_TMP, else $BUILD/t, else build/t. */
	if (tmp)
		snprintf(f->dir, sizeof(f->dir), "%s/unit-sysctl", tmp);
	else
		snprintf(f->dir, sizeof(f->dir), "%s/t/unit-sysctl", build ? build : "build");
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	mkdir_p(f->dir);
	f->root_fd = open(f->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->root_fd >= 0);
	mkdirat(f->root_fd, "proc", 0755);
	mkdirat(f->root_fd, "proc/sys", 0755);
	mkdirat(f->root_fd, "proc/sys/net", 0755);
	mkdirat(f->root_fd, "proc/sys/net/ipv4", 0755);
	mkdirat(f->root_fd, "proc/sys/net/ipv4/conf", 0755);
	mkdirat(f->root_fd, "proc/sys/net/ipv4/conf/eth0.100", 0755);
	mkdirat(f->root_fd, "proc/sys/net/core", 0755);
	mkdirat(f->root_fd, "proc/sys/vm", 0755);
	put(f->root_fd, "proc/sys/net/ipv4/ip_forward", "0\n");
	put(f->root_fd, "proc/sys/net/ipv4/ip_local_port_range", "32768\t60999\n");
	put(f->root_fd, "proc/sys/net/ipv4/conf/eth0.100/forwarding", "0\n");
	put(f->root_fd, "proc/sys/net/core/somaxconn", "4096\n");
	put(f->root_fd, "proc/sys/vm/drop_caches", "0\n");
	assert_int_equal(ni_sysctl_open(f->root_fd, &f->proc_sys_fd), 0);
	writes = 0;
	deny_reads = false;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->proc_sys_fd);
	close(f->root_fd);
	free(f);
	return 0;
}

static void test_normalize(void **state)
{
	static const struct {
		const char *key, *path; /* path NULL: refused */
	} t[] = {
		{ "net.ipv4.ip_forward", "net/ipv4/ip_forward" },
		{ "net/ipv4/ip_forward", "net/ipv4/ip_forward" },
		{ "kernel.pid_max", "kernel/pid_max" },
		{ "vm", "vm" },
		{ "net/ipv4/conf/eth0.100/forwarding", "net/ipv4/conf/eth0.100/forwarding" },
		{ "net.ipv4.conf.eth0-1.rp_filter", "net/ipv4/conf/eth0-1/rp_filter" },
		{ "net/a..b/c", "net/a..b/c" }, /* dots are literal in the slashed form */
		{ "", NULL },
		{ ".", NULL },
		{ "..", NULL },
		{ "net..ipv4", NULL },
		{ ".net.ipv4", NULL },
		{ "net.ipv4.", NULL },
		{ "/proc/sys/net/ipv4/ip_forward", NULL },
		{ "/net/ipv4", NULL },
		{ "net/../kernel/x", NULL },
		{ "net/./ipv4", NULL },
		{ "../etc/passwd", NULL },
		{ "net/ipv4/", NULL },
		{ "net//ipv4", NULL },
		{ "net/..", NULL },
		{ "net.ipv4.ip forward", NULL },
		{ "net.ipv4.ip_forward\n", NULL },
		{ "net\tipv4", NULL },
	};
	char path[NI_SYSCTL_KEY_MAX + 1];
	char long_key[NI_SYSCTL_KEY_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r = ni_sysctl_normalize(t[i].key, path);
		if (t[i].path) {
			if (r != 0)
				fail_msg("'%s' refused", t[i].key);
			assert_string_equal(path, t[i].path);
		} else if (r != -EINVAL) {
			fail_msg("'%s' accepted as '%s'", t[i].key, path);
		}
	}
	memset(long_key, 'a', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	assert_int_equal(ni_sysctl_normalize(long_key, path), -EINVAL);
	long_key[sizeof(long_key) - 2] = '\0';
	assert_int_equal(ni_sysctl_normalize(long_key, path), 0);
}

static void test_value_equal(void **state)
{
	(void)state;
	assert_true(ni_sysctl_value_equal("1", "1"));
	assert_true(ni_sysctl_value_equal("1\n", "1"));
	assert_true(ni_sysctl_value_equal("32768\t60999", "32768 60999"));
	assert_true(ni_sysctl_value_equal("  32768   60999 \n", "32768\t60999"));
	assert_true(ni_sysctl_value_equal("", ""));
	assert_true(ni_sysctl_value_equal(" \n", ""));
	assert_false(ni_sysctl_value_equal("1", "10"));
	assert_false(ni_sysctl_value_equal("10", "1"));
	assert_false(ni_sysctl_value_equal("1", ""));
	assert_false(ni_sysctl_value_equal("32768 60999", "32768 6099"));
	assert_false(ni_sysctl_value_equal("32768 60999", "3276860999"));
	assert_false(ni_sysctl_value_equal("a b", "a b c"));
}

static void test_read(void **state)
{
	struct fixture *f = *state;
	char *v = NULL;

	reads = 0;
	assert_int_equal(ni_sysctl_read(f->proc_sys_fd, "net.ipv4.ip_forward", &v), 0);
	assert_string_equal(v, "0");
	assert_int_equal(reads, 1); /* one read(), no second one to see the end */
	free(v);
	assert_int_equal(ni_sysctl_read(f->proc_sys_fd, "net/ipv4/ip_local_port_range", &v), 0);
	assert_string_equal(v, "32768\t60999");
	free(v);
	assert_int_equal(ni_sysctl_read(f->proc_sys_fd, "net/ipv4/conf/eth0.100/forwarding", &v), 0);
	assert_string_equal(v, "0");
	free(v);
	assert_int_equal(ni_sysctl_read(f->proc_sys_fd, "net.ipv4.nope", &v), -ENOENT);

	/* Longer than a page: read again whole from offset 0, not continued where the first read ended. */
	char *big = malloc(6001);
	assert_non_null(big);
	for (size_t i = 0; i < 6000; i++)
		big[i] = i % 100 == 99 ? '\t' : (char)('0' + i % 10);
	big[6000] = '\0';
	put(f->root_fd, "proc/sys/net/core/big", big);
	reads = 0;
	assert_int_equal(ni_sysctl_read(f->proc_sys_fd, "net.core.big", &v), 0);
	assert_int_equal(reads, 2);
	assert_string_equal(v, big);
	free(v);
	bool changed = true;
	assert_int_equal(ni_sysctl_write(f->proc_sys_fd, "net.core.big", big, &changed), 0);
	assert_false(changed); /* compared whole */
	free(big);

	assert_int_equal(ni_sysctl_read(f->proc_sys_fd, "net.ipv4", &v), -EISDIR);
	assert_int_equal(ni_sysctl_read(f->proc_sys_fd, "net/../../etc", &v), -EINVAL);
}

/* Compare, then one write only when different; equal after collapsing blanks means no write. */
static void test_write(void **state)
{
	struct fixture *f = *state;
	bool changed = true;

	assert_int_equal(ni_sysctl_write(f->proc_sys_fd, "net.ipv4.ip_forward", "0", &changed), 0);
	assert_false(changed);
	assert_int_equal(writes, 0);

	opens = 0;
	assert_int_equal(ni_sysctl_write(f->proc_sys_fd, "net.ipv4.ip_forward", "1", &changed), 0);
	assert_true(changed);
	assert_int_equal(writes, 1);
	assert_int_equal(opens, 1); /* read and write through one open */
	assert_string_equal(get(f->root_fd, "proc/sys/net/ipv4/ip_forward"), "1\n");

	assert_int_equal(ni_sysctl_write(f->proc_sys_fd, "net/ipv4/ip_forward", "1\n", &changed), 0);
	assert_false(changed);
	assert_int_equal(writes, 1);

	assert_int_equal(ni_sysctl_write(f->proc_sys_fd, "net.ipv4.ip_local_port_range", "32768 60999", &changed), 0);
	assert_false(changed);
	assert_int_equal(writes, 1);
	assert_int_equal(ni_sysctl_write(f->proc_sys_fd, "net.ipv4.ip_local_port_range", "1024 65000", &changed), 0);
	assert_true(changed);
	assert_int_equal(writes, 2);
	assert_string_equal(get(f->root_fd, "proc/sys/net/ipv4/ip_local_port_range"), "1024 65000\n");

	assert_int_equal(ni_sysctl_write(f->proc_sys_fd, "net.ipv4.nope", "1", &changed), -ENOENT);
	assert_false(changed);
	assert_int_equal(ni_sysctl_write(f->proc_sys_fd, "net..nope", "1", &changed), -EINVAL);
	assert_int_equal(writes, 2);
}

/* A key that cannot be read (vm.drop_caches is 0200) is written without comparing. */
static void test_write_only_key(void **state)
{
	struct fixture *f = *state;
	bool changed = false;

	deny_reads = true;
	assert_int_equal(ni_sysctl_write(f->proc_sys_fd, "vm.drop_caches", "0", &changed), 0);
	deny_reads = false;
	assert_true(changed);
	assert_int_equal(writes, 1);
}

/* Runs a chunk in a fresh environment; returns its status; results (or the message) are on top. */
static int run(lua_State *L, const char *src)
{
	int base = lua_gettop(L), r;

	ni_lua_push_env(L);
	r = ni_lua_load(L, "=test", src, strlen(src), -1);
	lua_remove(L, base + 1);
	if (r != LUA_OK)
		return r;
	return ni_lua_pcall(L, 0, LUA_MULTRET);
}

static void test_lua(void **state)
{
	struct fixture *f = *state;
	char *logbuf = NULL;
	size_t loglen = 0;
	FILE *logf = open_memstream(&logbuf, &loglen);
	struct ni_ctx ctx = { .root_fd = f->root_fd, .proc_sys_fd = -1, .proc_fd = -1, .sig_fd = -1, .step = "r/s",
			      .phase = NI_PHASE_STEP };
	lua_State *L;

	ctx.log = (struct ni_log){ .format = NI_LOG_TEXT, .min_level = NI_LOG_DEBUG, .out = logf };
	L = ni_lua_new(&ctx);
	assert_non_null(L);

	assert_int_equal(run(L, "return sysctl.get('net.ipv4.ip_forward'), require('nodeinit.sysctl').get('net/core/somaxconn')"), LUA_OK);
	assert_string_equal(lua_tostring(L, -2), "0");
	assert_string_equal(lua_tostring(L, -1), "4096");
	assert_true(ctx.proc_sys_fd >= 0); /* opened on first use, kept for the next */
	lua_settop(L, 0);

	/* Strings and integers are values; the second set is unchanged. */
	assert_int_equal(run(L, "return sysctl.set('net.ipv4.ip_forward', 1), sysctl.set('net.ipv4.ip_forward', '1'),"
				"sysctl.set('net.core.somaxconn', 8192.0)"), LUA_OK);
	assert_true(lua_toboolean(L, 1));
	assert_false(lua_toboolean(L, 2));
	assert_true(lua_toboolean(L, 3));
	assert_string_equal(get(f->root_fd, "proc/sys/net/core/somaxconn"), "8192\n");
	lua_settop(L, 0);

	/* An OS failure: nil, "<key>: <strerror>", errno. */
	assert_int_equal(run(L, "return sysctl.get('net.ipv4.nope')"), LUA_OK);
	assert_true(lua_isnil(L, 1));
	assert_string_equal(lua_tostring(L, 2), "net.ipv4.nope: No such file or directory");
	assert_int_equal(lua_tointeger(L, 3), ENOENT);
	lua_settop(L, 0);
	assert_int_equal(run(L, "return sysctl.set('net.ipv4.nope', '1')"), LUA_OK);
	assert_true(lua_isnil(L, 1));
	assert_int_equal(lua_tointeger(L, 3), ENOENT);
	lua_settop(L, 0);

	/* Misuse raises. */
	static const char *const misuse[] = {
		"sysctl.get('net..ipv4')", "sysctl.get('/proc/sys/net/ipv4/ip_forward')", "sysctl.get('net/../x')",
		"sysctl.get()", "sysctl.get({})", "sysctl.get('net.ipv4\\0.x')", "sysctl.set('net.ipv4.ip_forward')",
		"sysctl.set('net.ipv4.ip_forward', {})", "sysctl.set('net.ipv4.ip_forward', true)",
		"sysctl.set('net.ipv4.ip_forward', 1.5)", "sysctl.set('net.ipv4.ip_forward', '1\\0')",
	};
	for (size_t i = 0; i < sizeof(misuse) / sizeof(misuse[0]); i++) {
		if (run(L, misuse[i]) != LUA_ERRRUN)
			fail_msg("'%s' did not raise", misuse[i]);
		assert_non_null(strstr(lua_tostring(L, -1), "bad argument"));
		lua_settop(L, 0);
	}

	/* A change is logged with the value, unless the step is sensitive. */
	fflush(logf);
	assert_non_null(strstr(logbuf, "changed step=r/s sysctl=net.ipv4.ip_forward value=1"));
	ctx.sensitive = true;
	assert_int_equal(run(L, "return sysctl.set('net.ipv4.ip_local_port_range', '40000 50000')"), LUA_OK);
	assert_true(lua_toboolean(L, 1));
	fflush(logf);
	assert_null(strstr(logbuf, "40000"));
	assert_non_null(strstr(logbuf, "sysctl=net.ipv4.ip_local_port_range value=(sensitive)"));

	ni_lua_close(L);
	close(ctx.proc_sys_fd);
	fclose(logf);
	free(logbuf);
}

/* plan's check mode: set reads, compares, reports current -> desired and writes nothing. */
static void test_lua_check_mode(void **state)
{
	struct fixture *f = *state;
	struct ni_buf out = NI_BUF_INIT(0);
	struct ni_plan_sink sink = { .out = &out };
	struct ni_ctx ctx = { .root_fd = f->root_fd, .proc_sys_fd = -1, .proc_fd = -1, .sig_fd = -1, .step = "r/s",
			      .phase = NI_PHASE_STEP, .check_mode = true, .plan = &sink };
	char want[512], *lines;
	lua_State *L;

	ctx.log = (struct ni_log){ .min_level = NI_LOG_ERROR, .out = stderr };
	L = ni_lua_new(&ctx);
	assert_non_null(L);
	assert_int_equal(run(L, "return sysctl.set('net.ipv4.ip_forward', 1), sysctl.set('net.core.somaxconn', '4096'),"
				"sysctl.set('net.ipv4.nope', 1)"), LUA_OK);
	assert_true(lua_toboolean(L, 1));
	assert_false(lua_toboolean(L, 2));
	assert_true(lua_isnil(L, 3));
	assert_string_equal(lua_tostring(L, 4), "net.ipv4.nope: No such file or directory");
	lua_settop(L, 0);
	assert_string_equal(get(f->root_fd, "proc/sys/net/ipv4/ip_forward"), "0\n");
	ctx.sensitive = true;
	assert_int_equal(run(L, "return sysctl.set('net.ipv4.ip_forward', 'secret')"), LUA_OK);
	ctx.sensitive = false;
	assert_int_equal(run(L, "return sysctl.set('net.core.somaxconn', ('9'):rep(300))"), LUA_OK);
	assert_string_equal(get(f->root_fd, "proc/sys/net/core/somaxconn"), "4096\n");
	snprintf(want, sizeof(want),
		 "    sysctl net.ipv4.ip_forward: 0 -> 1\n"
		 "    sysctl net.core.somaxconn: 4096 -> 4096 (same)\n"
		 "    sysctl net.ipv4.ip_forward: (sensitive) -> (sensitive)\n"
		 "    sysctl net.core.somaxconn: 4096 -> %.*s...\n", NI_PLAN_VALUE_MAX,
		 "999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999"
		 "999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999");
	lines = ni_buf_steal(&out, NULL);
	assert_string_equal(lines, want);
	free(lines);
	ni_lua_close(L);
	close(ctx.proc_sys_fd);
}

/* No proc/sys under the root: the failure names /proc/sys. */
static void test_lua_no_proc(void **state)
{
	struct fixture *f = *state;
	struct ni_ctx ctx = { .root_fd = -1, .proc_sys_fd = -1, .proc_fd = -1, .sig_fd = -1, .phase = NI_PHASE_STEP };
	lua_State *L;

	ctx.root_fd = openat(f->root_fd, "proc/sys/net", O_PATH | O_DIRECTORY | O_CLOEXEC);
	ctx.log = (struct ni_log){ .min_level = NI_LOG_ERROR, .out = stderr };
	L = ni_lua_new(&ctx);
	assert_non_null(L);
	assert_int_equal(run(L, "return sysctl.get('net.ipv4.ip_forward')"), LUA_OK);
	assert_true(lua_isnil(L, 1));
	assert_string_equal(lua_tostring(L, 2), "/proc/sys: No such file or directory");
	ni_lua_close(L);
	close(ctx.root_fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_value_equal),
		cmocka_unit_test_setup_teardown(test_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_only_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lua, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lua_check_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lua_no_proc, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
