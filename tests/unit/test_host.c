/* host.c and l_host.c: the parsers on fixture text, the readers and host.* on a fake root tree. */
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

#include "host.h"
#include "luart.h"
#include "unit.h"

static void test_os_release_quoting(void **state)
{
	struct ni_host_os os;

	(void)state;
	assert_int_equal(ni_host_parse_os_release("# comment\n\nNAME=\"Debian GNU/Linux\"\nID=debian\n"
						  "VERSION_ID=\"12\"\nPRETTY_NAME='Debian GNU/Linux 12 (bookworm)'\n",
						  &os), 0);
	assert_string_equal(os.id, "debian");
	assert_string_equal(os.version_id, "12");
	assert_string_equal(os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
	ni_host_os_free(&os);

	/* escapes inside double quotes, concatenation, a later assignment wins, blanks before a comment */
	assert_int_equal(ni_host_parse_os_release("ID=old\nID=\"ub\"untu  # x\nPRETTY_NAME=\"say \\\"hi\\\" \\$HOME \\n\"\n"
						  "VERSION_ID=22.04\n",
						  &os), 0);
	assert_string_equal(os.id, "ubuntu");
	assert_string_equal(os.pretty_name, "say \"hi\" $HOME \\n");
	assert_string_equal(os.version_id, "22.04");
	ni_host_os_free(&os);

	/* the spec's defaults; VERSION_ID has none */
	assert_int_equal(ni_host_parse_os_release("NAME=x\n", &os), 0);
	assert_string_equal(os.id, "linux");
	assert_string_equal(os.pretty_name, "Linux");
	assert_null(os.version_id);
	ni_host_os_free(&os);

	assert_int_equal(ni_host_parse_os_release("ID=\"open\n", &os), -EBADMSG);
	assert_int_equal(ni_host_parse_os_release("just words\n", &os), -EBADMSG);
	assert_int_equal(ni_host_parse_os_release("ID=two words\n", &os), -EBADMSG);
	assert_int_equal(ni_host_parse_os_release("BAD-KEY=1\n", &os), -EBADMSG);
}

static void test_cpu_list(void **state)
{
	unsigned n = 0;

	(void)state;
	assert_int_equal(ni_host_parse_cpu_list("0-3\n", &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(ni_host_parse_cpu_list("0\n", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ni_host_parse_cpu_list("0-3,8,10-11\n", &n), 0);
	assert_int_equal(n, 7);
	assert_int_equal(ni_host_parse_cpu_list("", &n), -EBADMSG);
	assert_int_equal(ni_host_parse_cpu_list("3-1\n", &n), -EBADMSG);
	assert_int_equal(ni_host_parse_cpu_list("0-\n", &n), -EBADMSG);
	assert_int_equal(ni_host_parse_cpu_list("a\n", &n), -EBADMSG);
	assert_int_equal(ni_host_parse_cpu_list("0,,1\n", &n), -EBADMSG);
}

static void test_meminfo(void **state)
{
	struct ni_host_memory m;

	(void)state;
	assert_int_equal(ni_host_parse_meminfo("MemTotal:       16303572 kB\nMemFree:         1000 kB\n"
					       "MemAvailable:   12000000 kB\nBuffers: 1 kB\n",
					       &m), 0);
	assert_true(m.total == 16303572ull * 1024);
	assert_true(m.available == 12000000ull * 1024);
	/* before Linux 3.14: free + buffers + cached */
	assert_int_equal(ni_host_parse_meminfo("MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 2 kB\nCached: 3 kB\n", &m), 0);
	assert_true(m.available == 15 * 1024);
	assert_int_equal(ni_host_parse_meminfo("MemFree: 10 kB\n", &m), -EBADMSG);
	assert_int_equal(ni_host_parse_meminfo("MemTotal: lots\n", &m), -EBADMSG);
	assert_int_equal(ni_host_parse_meminfo("MemTotal: 100 MB\nMemAvailable: 1 kB\n", &m), -EBADMSG);
}

/* A fake host root: etc, usr/lib, proc, sys as plain files and directories. */
struct fixture {
	char dir[512];
	int root_fd;
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

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("NI_TEST_TMP"), *build = getenv("BUILD");

	if (tmp)
		snprintf(f->dir, sizeof(f->dir), "%s/unit-host", tmp);
	else
		snprintf(f->dir, sizeof(f->dir), "%s/t/unit-host", build ? build : "build");
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	mkdirs(AT_FDCWD, f->dir);
	f->root_fd = open(f->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->root_fd >= 0);

	/* /etc/os-release as Debian ships it: a relative symlink into /usr/lib */
	put(f->root_fd, "usr/lib/os-release", "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n");
	mkdirs(f->root_fd, "etc");
	assert_int_equal(symlinkat("../usr/lib/os-release", f->root_fd, "etc/os-release"), 0);
	put(f->root_fd, "proc/meminfo", "MemTotal:        2048 kB\nMemFree: 1 kB\nMemAvailable:    1024 kB\n");
	put(f->root_fd, "sys/devices/system/cpu/online", "0-1,4\n");
	put(f->root_fd, "sys/class/net/eth0/address", "52:54:00:12:34:56\n");
	put(f->root_fd, "sys/class/net/eth0/mtu", "9001\n");
	put(f->root_fd, "sys/class/net/eth0/flags", "0x1003\n");
	put(f->root_fd, "sys/class/net/dummy0/address", "aa:bb:cc:dd:ee:ff\n");
	put(f->root_fd, "sys/class/net/dummy0/mtu", "1500\n");
	put(f->root_fd, "sys/class/net/dummy0/flags", "0x1002\n");
	put(f->root_fd, "sys/block/nvme0n1/size", "2097152\n");
	put(f->root_fd, "sys/block/nvme0n1/removable", "0\n");
	put(f->root_fd, "sys/block/nvme0n1/queue/rotational", "0\n");
	put(f->root_fd, "sys/block/nvme0n1/device/model", "Amazon EC2 NVMe Instance Storage        \n");
	put(f->root_fd, "sys/block/sda/size", "8\n");
	put(f->root_fd, "sys/block/sda/removable", "1\n");
	put(f->root_fd, "sys/block/sda/queue/rotational", "1\n");
	put(f->root_fd, "sys/devices/system/node/node0/cpulist", "0-1\n");
	put(f->root_fd, "sys/devices/system/node/node1/cpulist", "4\n");
	put(f->root_fd, "sys/devices/system/node/possible", "0-1\n");

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
	close(f->root_fd);
	free(f);
	return 0;
}

static void test_readers(void **state)
{
	struct fixture *f = *state;
	struct ni_host_os os;
	struct ni_host_memory m;
	struct ni_host_iface *ifs = NULL;
	struct ni_host_block *bs = NULL;
	size_t n = 0;
	unsigned c = 0;

	assert_int_equal(ni_host_os(f->root_fd, &os), 0);
	assert_string_equal(os.id, "debian");
	ni_host_os_free(&os);
	/* no /etc/os-release: /usr/lib/os-release */
	assert_int_equal(unlinkat(f->root_fd, "etc/os-release", 0), 0);
	assert_int_equal(ni_host_os(f->root_fd, &os), 0);
	assert_string_equal(os.version_id, "12");
	ni_host_os_free(&os);

	assert_int_equal(ni_host_memory(f->root_fd, &m), 0);
	assert_true(m.total == 2048 * 1024 && m.available == 1024 * 1024);
	assert_int_equal(ni_host_cpus(f->root_fd, &c), 0);
	assert_int_equal(c, 3);
	assert_int_equal(ni_host_numa_nodes(f->root_fd, &c), 0);
	assert_int_equal(c, 2);

	assert_int_equal(ni_host_interfaces(f->root_fd, &ifs, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ifs[0].name, "dummy0"); /* sorted */
	assert_false(ifs[0].up);
	assert_string_equal(ifs[1].name, "eth0");
	assert_string_equal(ifs[1].mac, "52:54:00:12:34:56");
	assert_int_equal(ifs[1].mtu, 9001);
	assert_true(ifs[1].up);
	free(ifs);

	assert_int_equal(ni_host_block_devices(f->root_fd, &bs, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(bs[0].name, "nvme0n1");
	assert_true(bs[0].size == 2097152ull * 512);
	assert_false(bs[0].rotational);
	assert_string_equal(bs[0].model, "Amazon EC2 NVMe Instance Storage");
	assert_string_equal(bs[1].name, "sda");
	assert_true(bs[1].rotational && bs[1].removable);
	assert_string_equal(bs[1].model, "");
	free(bs);
}

static void test_missing_facts(void **state)
{
	struct fixture *f = *state;
	struct ni_host_memory m;
	struct ni_host_os os;
	unsigned c = 0;

	/* no NUMA in the kernel: one node; no os-release anywhere: ENOENT; no meminfo: ENOENT */
	assert_int_equal(renameat(f->root_fd, "sys/devices/system/node", f->root_fd, "node.gone"), 0);
	assert_int_equal(ni_host_numa_nodes(f->root_fd, &c), 0);
	assert_int_equal(c, 1);
	assert_int_equal(unlinkat(f->root_fd, "etc/os-release", 0), 0);
	assert_int_equal(unlinkat(f->root_fd, "usr/lib/os-release", 0), 0);
	assert_int_equal(ni_host_os(f->root_fd, &os), -ENOENT);
	assert_int_equal(unlinkat(f->root_fd, "proc/meminfo", 0), 0);
	assert_int_equal(ni_host_memory(f->root_fd, &m), -ENOENT);
}

/* Runs src as a step's body runs (host.* read the host: only inside a step). */
static const char *run(struct fixture *f, const char *src)
{
	lua_settop(f->L, 0);
	ni_lua_push_env(f->L);
	if (ni_lua_load(f->L, "=test", src, strlen(src), -1) != LUA_OK || ni_lua_pcall_step(f->L, 0, 1) != LUA_OK)
		fail_msg("%s\n  failed: %s", src, lua_tostring(f->L, -1));
	return lua_tostring(f->L, -1);
}

/* Runs src as a recipe file's top-level code runs; returns its error, which it must raise. */
static const char *run_load_error(struct fixture *f, const char *src)
{
	lua_settop(f->L, 0);
	ni_lua_push_env(f->L);
	if (ni_lua_load(f->L, "=test", src, strlen(src), -1) != LUA_OK)
		fail_msg("%s\n  failed to load: %s", src, lua_tostring(f->L, -1));
	if (ni_lua_pcall(f->L, 0, 1) == LUA_OK)
		fail_msg("%s\n  ran at load time", src);
	return lua_tostring(f->L, -1);
}

static void test_lua_host_only_in_step(void **state)
{
	struct fixture *f = *state;
	static const char *const calls[] = { "host.os()", "host.kernel()", "host.cpus()", "host.memory()",
					     "host.numa_nodes()", "host.interfaces()", "host.block_devices()" };

	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		const char *err = run_load_error(f, calls[i]);

		if (!strstr(err, "only inside a step"))
			fail_msg("%s at load: %s", calls[i], err);
	}
}

static void test_lua_host(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(run(f, "local o = host.os() return o.id .. '|' .. o.version_id .. '|' .. o.pretty_name"),
			    "debian|12|Debian GNU/Linux 12 (bookworm)");
	assert_string_equal(run(f, "return require('nodeinit.host') == host and 'same' or 'other'"), "same");
	assert_string_equal(run(f, "return string.format('%d %d %d %d', host.cpus(), host.memory().total, "
				   "host.memory().available, host.numa_nodes())"),
			    "3 2097152 1048576 2");
	assert_string_equal(run(f, "local t = {} for _, i in ipairs(host.interfaces()) do "
				   "t[#t+1] = string.format('%s=%s/%d/%s', i.name, i.mac, i.mtu, tostring(i.up)) end "
				   "return table.concat(t, ' ')"),
			    "dummy0=aa:bb:cc:dd:ee:ff/1500/false eth0=52:54:00:12:34:56/9001/true");
	assert_string_equal(run(f, "local b = host.block_devices()[1] return string.format('%s %d %s %s %s', "
				   "b.name, b.size, tostring(b.rotational), tostring(b.removable), b.model)"),
			    "nvme0n1 1073741824 false false Amazon EC2 NVMe Instance Storage");
	/* uname: the machine's own kernel */
	assert_string_equal(run(f, "local k = host.kernel() return (type(k.release) == 'string' and #k.arch > 0 "
				   "and type(k.version) == 'string') and 'ok' or 'bad'"),
			    "ok");
	/* an OS failure: nil, message, errno */
	assert_int_equal(unlinkat(f->root_fd, "proc/meminfo", 0), 0);
	assert_string_equal(run(f, "local v, msg, errno = host.memory() return tostring(v) .. '|' .. msg .. '|' .. errno"),
			    "nil|/proc/meminfo: No such file or directory|2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_os_release_quoting),
		cmocka_unit_test(test_cpu_list),
		cmocka_unit_test(test_meminfo),
		cmocka_unit_test_setup_teardown(test_readers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_facts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lua_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lua_host_only_in_step, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
