/* Issue 13's primitives: sysctl.d parsing and glob resolution (sysctl.c), sysctl.keys/apply_conf,
 * file.list/stat/symlink and sleep, on a fake root tree under the build dir. */
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

#include "file.h"
#include "luart.h"
#include "sysctl.h"
#include "unit.h"
#include "util.h"

struct fixture {
	char dir[512];
	int root_fd, proc_sys_fd;
	struct ni_ctx ctx;
	char *log_buf;
	size_t log_len;
	lua_State *L;
};

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void mkdirs(int root_fd, const char *path)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdirat(root_fd, buf, 0755);
			*p = '/';
		}
	mkdirat(root_fd, buf, 0755);
}

static void put(int root_fd, const char *path, const char *content)
{
	char dir[512];
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	mkdirs(root_fd, dir);
	fd = openat(root_fd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

static const char *get(int root_fd, const char *path)
{
	static char buf[256];
	int fd = openat(root_fd, path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static int setup(void **state)
{
	static const char *const keys[] = {
		"net/ipv4/conf/all/rp_filter", "net/ipv4/conf/default/rp_filter", "net/ipv4/conf/eth0/rp_filter",
		"net/ipv4/conf/eth0.100/rp_filter", "net/ipv4/conf/lo/rp_filter", "net/ipv4/conf/eth0/forwarding",
		"net/ipv4/ip_forward", "net/core/somaxconn", "vm/swappiness",
	};
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("NI_TEST_TMP"), *build = getenv("BUILD");

	if (tmp)
		snprintf(f->dir, sizeof(f->dir), "%s/unit-primitives", tmp);
	else
		snprintf(f->dir, sizeof(f->dir), "%s/t/unit-primitives", build ? build : "build");
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	mkdirs(AT_FDCWD, f->dir);
	f->root_fd = open(f->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->root_fd >= 0);
	for (size_t i = 0; i < NI_ELEMENTSOF(keys); i++) {
		char path[256];
		snprintf(path, sizeof(path), "proc/sys/%s", keys[i]);
		put(f->root_fd, path, "0\n");
	}
	assert_int_equal(ni_sysctl_open(f->root_fd, &f->proc_sys_fd), 0);
	put(f->root_fd, "srv/d/b.txt", "b");
	put(f->root_fd, "srv/d/a.txt", "aa");
	mkdirs(f->root_fd, "srv/d/sub");

	f->ctx.root_fd = f->root_fd;
	f->ctx.proc_fd = -1;
	f->ctx.proc_sys_fd = -1;
	f->ctx.sig_fd = -1;
	f->ctx.log = (struct ni_log){ .format = NI_LOG_TEXT, .min_level = NI_LOG_INFO };
	f->ctx.log.out = open_memstream(&f->log_buf, &f->log_len);
	f->L = ni_lua_new(&f->ctx);
	assert_non_null(f->L);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ni_lua_close(f->L);
	fclose(f->ctx.log.out);
	free(f->log_buf);
	close(f->proc_sys_fd);
	if (f->ctx.proc_sys_fd >= 0)
		close(f->ctx.proc_sys_fd);
	close(f->root_fd);
	free(f);
	return 0;
}

static void test_keys_glob(void **state)
{
	struct fixture *f = *state;
	char **k = NULL;
	size_t n = 0;

	assert_int_equal(ni_sysctl_keys(f->proc_sys_fd, "net.ipv4.conf.*.rp_filter", &k, &n), 0);
	assert_int_equal(n, 5);
	/* sorted; a part holding a dot comes back in the slashed form */
	assert_string_equal(k[0], "net.ipv4.conf.all.rp_filter");
	assert_string_equal(k[1], "net.ipv4.conf.default.rp_filter");
	assert_string_equal(k[2], "net.ipv4.conf.eth0.rp_filter");
	assert_string_equal(k[3], "net.ipv4.conf.lo.rp_filter");
	assert_string_equal(k[4], "net/ipv4/conf/eth0.100/rp_filter");
	ni_strv_free(k, n);
	/* '*' never spans a separator; a directory is not a key; no match is an empty list */
	assert_int_equal(ni_sysctl_keys(f->proc_sys_fd, "net.*", &k, &n), 0);
	assert_int_equal(n, 0);
	free(k);
	assert_int_equal(ni_sysctl_keys(f->proc_sys_fd, "net.ipv4.conf.eth?.*", &k, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(k[0], "net.ipv4.conf.eth0.forwarding");
	ni_strv_free(k, n);
	assert_int_equal(ni_sysctl_keys(f->proc_sys_fd, "vm.swappiness", &k, &n), 0);
	assert_int_equal(n, 1);
	ni_strv_free(k, n);
	assert_int_equal(ni_sysctl_keys(f->proc_sys_fd, "../etc", &k, &n), -EINVAL);
}

static void test_conf_parse(void **state)
{
	struct ni_sysctl_conf c;
	unsigned line;
	const char *text = "# comment\n; also\n\n  net.ipv4.ip_forward = 1  \n-net.core.somaxconn=4096\n"
			   "net.ipv4.conf.*.rp_filter = 2\n-net.ipv4.conf.all.rp_filter\nkernel.x =\n";

	(void)state;
	assert_int_equal(ni_sysctl_conf_parse(text, strlen(text), &c, &line), 0);
	assert_int_equal(c.n, 5);
	assert_string_equal(c.v[0].key, "net.ipv4.ip_forward");
	assert_string_equal(c.v[0].value, "1");
	assert_int_equal(c.v[0].line, 4);
	assert_false(c.v[0].ignore_failure);
	assert_string_equal(c.v[1].key, "net.core.somaxconn");
	assert_true(c.v[1].ignore_failure);
	assert_true(c.v[2].glob);
	assert_null(c.v[3].value); /* an exclusion */
	assert_false(c.v[3].ignore_failure);
	assert_string_equal(c.v[4].value, "");
	ni_sysctl_conf_free(&c);

	assert_int_equal(ni_sysctl_conf_parse("a.b = 1\nnot an assignment\n", 26, &c, &line), -EINVAL);
	assert_int_equal(line, 2);
	assert_int_equal(ni_sysctl_conf_parse("a..b = 1\n", 9, &c, &line), -EINVAL);
	assert_int_equal(line, 1);
	assert_int_equal(ni_sysctl_conf_parse("a.b = 1\0x\n", 10, &c, &line), -EINVAL);
}

/* resolves text; returns "key=value[!]" joined by spaces ('!': failure ignored) */
static const char *resolve(struct fixture *f, const char *text)
{
	static char out[1024];
	struct ni_sysctl_conf c;
	struct ni_sysctl_assignment *a = NULL;
	size_t n = 0, len = 0;
	unsigned line;

	assert_int_equal(ni_sysctl_conf_parse(text, strlen(text), &c, &line), 0);
	assert_int_equal(ni_sysctl_conf_resolve(f->proc_sys_fd, &c, &a, &n), 0);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s=%s%s", i ? " " : "", a[i].key, a[i].value,
					a[i].ignore_failure ? "!" : "");
	ni_sysctl_assignments_free(a, n);
	ni_sysctl_conf_free(&c);
	return out;
}

static void test_conf_resolve(void **state)
{
	struct fixture *f = *state;

	/* systemd's 50-default.conf lines: the glob skips the excluded key */
	assert_string_equal(resolve(f, "net.ipv4.conf.default.rp_filter = 2\n-net.ipv4.conf.*.rp_filter = 2\n"
				       "-net.ipv4.conf.all.rp_filter\n"),
			    "net.ipv4.conf.default.rp_filter=2 net.ipv4.conf.eth0.rp_filter=2! "
			    "net.ipv4.conf.lo.rp_filter=2! net/ipv4/conf/eth0.100/rp_filter=2!");
	/* an explicit key is excluded from every glob, before or after it */
	assert_string_equal(resolve(f, "net.ipv4.conf.*.rp_filter = 1\nnet.ipv4.conf.lo.rp_filter = 0\n"
				       "net/ipv4/conf/eth0.100/rp_filter = 0\n"),
			    "net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1 "
			    "net.ipv4.conf.eth0.rp_filter=1 net.ipv4.conf.lo.rp_filter=0 net/ipv4/conf/eth0.100/rp_filter=0");
	assert_string_equal(resolve(f, "net.ipv4.conf.lo.rp_filter = 0\nnet.ipv4.conf.*.rp_filter = 1\n"),
			    "net.ipv4.conf.lo.rp_filter=0 net.ipv4.conf.all.rp_filter=1 "
			    "net.ipv4.conf.default.rp_filter=1 net.ipv4.conf.eth0.rp_filter=1 "
			    "net/ipv4/conf/eth0.100/rp_filter=1");
	/* the later assignment of a key wins; an exclusion may be a glob; no match writes nothing */
	assert_string_equal(resolve(f, "vm.swappiness = 1\nvm.swappiness = 10\n"), "vm.swappiness=10");
	assert_string_equal(resolve(f, "net.ipv4.conf.*.rp_filter = 1\n-net.ipv4.conf.e*.rp_filter\n"
				       "-net/ipv4/conf/*.100/rp_filter\n"),
			    "net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1 net.ipv4.conf.lo.rp_filter=1");
	assert_string_equal(resolve(f, "net.nothing.* = 1\n"), "");
}

/* Runs src as a step's body runs (the primitives act only inside a step). */
static const char *run(struct fixture *f, const char *src)
{
	lua_settop(f->L, 0);
	ni_lua_push_env(f->L);
	if (ni_lua_load(f->L, "=test", src, strlen(src), -1) != LUA_OK || ni_lua_pcall_step(f->L, 0, 1) != LUA_OK)
		fail_msg("%s\n  failed: %s", src, lua_tostring(f->L, -1));
	return lua_tostring(f->L, -1);
}

/* src must raise needle: in a step, or (at_load) as a recipe file's top-level code. */
static void raises(struct fixture *f, const char *src, const char *needle, bool at_load)
{
	const char *msg;

	lua_settop(f->L, 0);
	ni_lua_push_env(f->L);
	if (ni_lua_load(f->L, "=test", src, strlen(src), -1) == LUA_OK &&
	    (at_load ? ni_lua_pcall(f->L, 0, 1) : ni_lua_pcall_step(f->L, 0, 1)) == LUA_OK)
		fail_msg("%s\n  ran, but should have raised", src);
	msg = lua_tostring(f->L, -1);
	if (!msg || !strstr(msg, needle))
		fail_msg("%s\n  raised '%s', expected '%s'", src, msg ? msg : "?", needle);
}

static void refused(struct fixture *f, const char *src, const char *needle)
{
	raises(f, src, needle, false);
}

/* The new readers and sleep at a recipe's top level: refused, so a load never reads or waits on the host. */
static void test_only_in_step(void **state)
{
	struct fixture *f = *state;
	static const char *const calls[] = { "file.list('/srv/d')", "file.stat('/srv/d/a.txt')",
					     "sysctl.keys('vm.*')", "sysctl.resolve_conf('vm.swappiness = 1\\n')",
					     "file.symlink('a.txt', '/srv/d/link')", "sleep(0)" };

	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
		raises(f, calls[i], "only inside a step", true);
	assert_int_equal(faccessat(f->root_fd, "srv/d/link", F_OK, AT_SYMLINK_NOFOLLOW), -1);
}

static void test_lua_sysctl(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(run(f, "return table.concat(sysctl.keys('net.ipv4.conf.e*.rp_filter'), ' ')"),
			    "net.ipv4.conf.eth0.rp_filter net/ipv4/conf/eth0.100/rp_filter");
	refused(f, "sysctl.keys('a..b')", "invalid sysctl key");
	assert_string_equal(run(f, "local e = sysctl.parse_conf('-a.b\\nc.* = 1\\n') return "
				   "string.format('%s %s %s %s', e[1].key, tostring(e[1].value), tostring(e[2].glob), e[2].line)"),
			    "a.b nil true 2");
	assert_string_equal(run(f, "return select(2, sysctl.parse_conf('x\\n'))"),
			    "sysctl.d text line 1: expected 'key = value', '-key = value' or '-key' with a valid key "
			    "(a.b.c or a/b/c, globs allowed)");
	/* apply: globs written, explicit keys win, '-' failures ignored, others reported after the rest */
	assert_string_equal(run(f, "return tostring(sysctl.apply_conf('net.ipv4.conf.*.rp_filter = 2\\n"
				   "net.ipv4.conf.lo.rp_filter = 0\\n-net.ipv4.conf.all.rp_filter\\n-no.such.key = 1\\n'))"),
			    "true");
	assert_string_equal(get(f->root_fd, "proc/sys/net/ipv4/conf/eth0.100/rp_filter"), "2\n");
	assert_string_equal(get(f->root_fd, "proc/sys/net/ipv4/conf/default/rp_filter"), "2\n");
	assert_string_equal(get(f->root_fd, "proc/sys/net/ipv4/conf/all/rp_filter"), "0\n");
	assert_string_equal(get(f->root_fd, "proc/sys/net/ipv4/conf/lo/rp_filter"), "0\n");
	assert_non_null(strstr(f->log_buf, "ignored"));
	assert_string_equal(run(f, "local ok, msg, errno = sysctl.apply_conf('no.such.key = 1\\nvm.swappiness = 5\\n') "
				   "return tostring(ok) .. '|' .. msg .. '|' .. errno"),
			    "nil|1 of 2 sysctls not set: no.such.key: No such file or directory (line 1)|2");
	assert_string_equal(get(f->root_fd, "proc/sys/vm/swappiness"), "5\n");
	refused(f, "sysctl.apply_conf('oops\\n')", "sysctl.d text line 1");
}

static void test_lua_file(void **state)
{
	struct fixture *f = *state;
	char buf[64];
	ssize_t n;

	assert_string_equal(run(f, "return table.concat(file.list('/srv/d'), ',')"), "a.txt,b.txt,sub");
	assert_string_equal(run(f, "local v, msg, e = file.list('/srv/none') return tostring(v) .. '|' .. e"), "nil|2");
	refused(f, "file.list('srv')", "absolute path");
	assert_string_equal(run(f, "local s = file.stat('/srv/d/a.txt') return string.format('%s %s %d %s %s', "
				   "s.type, s.mode, s.size, math.type(s.mtime), math.type(s.uid))"),
			    "file 0644 2 integer integer");
	assert_string_equal(run(f, "return file.stat('/srv/d').type"), "directory");
	assert_string_equal(run(f, "return select('#', file.stat('/srv/none')) .. tostring(file.stat('/srv/none'))"),
			    "1nil");
	/* symlink: made, then unchanged, then retargeted; a file at the path is not replaced */
	assert_string_equal(run(f, "return tostring(file.symlink('a.txt', '/srv/d/link'))"), "true");
	n = readlinkat(f->root_fd, "srv/d/link", buf, sizeof(buf) - 1);
	assert_int_equal(n, 5);
	assert_string_equal(run(f, "return tostring(file.symlink('a.txt', '/srv/d/link'))"), "false");
	assert_string_equal(run(f, "return file.stat('/srv/d/link').size .. ''"), "2"); /* stat follows it */
	assert_string_equal(run(f, "return tostring(file.symlink('/srv/d/b.txt', '/srv/d/link'))"), "true");
	n = readlinkat(f->root_fd, "srv/d/link", buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	assert_string_equal(buf, "/srv/d/b.txt");
	assert_string_equal(run(f, "local ok, msg, e = file.symlink('x', '/srv/d/a.txt') return tostring(ok) .. '|' .. msg .. '|' .. e"),
			    "nil|/srv/d/a.txt: exists and is not a symlink (not replaced)|17");
	assert_string_equal(get(f->root_fd, "srv/d/a.txt"), "aa");
	assert_string_equal(run(f, "return table.concat(file.list('/srv/d'), ',')"), "a.txt,b.txt,link,sub"); /* no temp left */
	refused(f, "file.symlink('', '/srv/d/x')", "non-empty");
}

static void test_sleep(void **state)
{
	struct fixture *f = *state;
	int64_t t0;

	t0 = ni_now_ms();
	run(f, "sleep(0.05) return 'ok'");
	assert_true(ni_now_ms() - t0 >= 50);
	refused(f, "sleep(-1)", "seconds must be");
	refused(f, "sleep('x')", "number expected");
	/* a step deadline cuts it short, as a timed-out step */
	f->ctx.deadline_ms = ni_now_ms() + 50;
	t0 = ni_now_ms();
	refused(f, "sleep(30)", "step timed out");
	assert_true(ni_now_ms() - t0 < 30000);
	f->ctx.deadline_ms = 0;
	/* a stop signal (the signalfd readable; a pipe stands in) ends it too, and stays unread */
	{
		int p[2];
		assert_int_equal(pipe(p), 0);
		assert_int_equal(write(p[1], "x", 1), 1);
		f->ctx.sig_fd = p[0];
		refused(f, "sleep(30)", "interrupted by a stop signal");
		assert_true(ni_stop_pending(&f->ctx));
		f->ctx.sig_fd = -1;
		close(p[0]);
		close(p[1]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_keys_glob, setup, teardown),
		cmocka_unit_test(test_conf_parse),
		cmocka_unit_test_setup_teardown(test_conf_resolve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lua_sysctl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lua_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sleep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_only_in_step, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
