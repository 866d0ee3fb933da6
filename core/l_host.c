/* Lua module nodeinit.host: facts about the host (os, kernel, cpus, memory, interfaces, block devices, NUMA). */
#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <sys/utsname.h>

#include "host.h"
#include "luart.h"

static void set_string(lua_State *L, const char *k, const char *v)
{
	if (v)
		lua_pushstring(L, v);
	else
		lua_pushnil(L);
	lua_setfield(L, -2, k);
}

static void set_integer(lua_State *L, const char *k, uint64_t v)
{
	lua_pushinteger(L, v > (uint64_t)LUA_MAXINTEGER ? LUA_MAXINTEGER : (lua_Integer)v);
	lua_setfield(L, -2, k);
}

static void set_boolean(lua_State *L, const char *k, bool v)
{
	lua_pushboolean(L, v);
	lua_setfield(L, -2, k);
}

/* The C memory a call holds lives in a box (freed by __gc) while Lua allocates: a raise frees it too. */
static int l_host_block_devices(lua_State *L)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	char **box = ni_lua_box_new(L);
	struct ni_host_block *v = NULL;
	size_t n = 0;
	int r;

	ni_lua_require_phase(L, NI_CAN_READ, "host.block_devices");
	r = ni_host_block_devices(ctx->root_fd, &v, &n);
	if (r < 0)
		return ni_lua_fail(L, r, "/sys/block");
	*box = (char *)v;
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_createtable(L, 0, 5);
		set_string(L, "name", v[i].name);
		set_integer(L, "size", v[i].size);
		set_boolean(L, "rotational", v[i].rotational);
		set_boolean(L, "removable", v[i].removable);
		set_string(L, "model", v[i].model);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

static int l_host_cpus(lua_State *L)
{
	unsigned n;
	int r;

	ni_lua_require_phase(L, NI_CAN_READ, "host.cpus");
	r = ni_host_cpus(ni_lua_ctx(L)->root_fd, &n);
	if (r < 0)
		return ni_lua_fail(L, r, "/sys/devices/system/cpu/online");
	lua_pushinteger(L, n);
	return 1;
}

static int l_host_interfaces(lua_State *L)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	char **box = ni_lua_box_new(L);
	struct ni_host_iface *v = NULL;
	size_t n = 0;
	int r;

	ni_lua_require_phase(L, NI_CAN_READ, "host.interfaces");
	r = ni_host_interfaces(ctx->root_fd, &v, &n);
	if (r < 0)
		return ni_lua_fail(L, r, "/sys/class/net");
	*box = (char *)v;
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_createtable(L, 0, 4);
		set_string(L, "name", v[i].name);
		set_string(L, "mac", v[i].mac);
		set_integer(L, "mtu", v[i].mtu);
		set_boolean(L, "up", v[i].up);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* uname() names the running kernel, which the host and every container on it share. */
static int l_host_kernel(lua_State *L)
{
	struct utsname u;

	ni_lua_require_phase(L, NI_CAN_READ, "host.kernel");
	if (uname(&u) < 0)
		return ni_lua_fail(L, -errno, "uname");
	lua_createtable(L, 0, 3);
	set_string(L, "release", u.release);
	set_string(L, "version", u.version);
	set_string(L, "arch", u.machine);
	return 1;
}

static int l_host_memory(lua_State *L)
{
	struct ni_host_memory m;
	int r;

	ni_lua_require_phase(L, NI_CAN_READ, "host.memory");
	r = ni_host_memory(ni_lua_ctx(L)->root_fd, &m);
	if (r < 0)
		return ni_lua_fail(L, r, "/proc/meminfo");
	lua_createtable(L, 0, 2);
	set_integer(L, "total", m.total);
	set_integer(L, "available", m.available);
	return 1;
}

static int l_host_numa_nodes(lua_State *L)
{
	unsigned n;
	int r;

	ni_lua_require_phase(L, NI_CAN_READ, "host.numa_nodes");
	r = ni_host_numa_nodes(ni_lua_ctx(L)->root_fd, &n);
	if (r < 0)
		return ni_lua_fail(L, r, "/sys/devices/system/node");
	lua_pushinteger(L, n);
	return 1;
}

static int l_host_os(lua_State *L)
{
	/* Boxes first: the strings are freed by __gc even when a push below runs out of memory. */
	char **id = ni_lua_box_new(L), **version_id = ni_lua_box_new(L), **pretty_name = ni_lua_box_new(L);
	struct ni_host_os os;
	int r;

	ni_lua_require_phase(L, NI_CAN_READ, "host.os");
	r = ni_host_os(ni_lua_ctx(L)->root_fd, &os);
	if (r < 0)
		return ni_lua_fail(L, r, "/etc/os-release");
	*id = os.id;
	*version_id = os.version_id;
	*pretty_name = os.pretty_name;
	lua_createtable(L, 0, 3);
	set_string(L, "id", *id);
	set_string(L, "version_id", *version_id);
	set_string(L, "pretty_name", *pretty_name);
	return 1;
}

static const luaL_Reg host_funcs[] = {
	{ "block_devices", l_host_block_devices },
	{ "cpus", l_host_cpus },
	{ "interfaces", l_host_interfaces },
	{ "kernel", l_host_kernel },
	{ "memory", l_host_memory },
	{ "numa_nodes", l_host_numa_nodes },
	{ "os", l_host_os },
	{ NULL, NULL },
};

int luaopen_nodeinit_host(lua_State *L)
{
	luaL_newlib(L, host_funcs);
	return 1;
}
