/* Lua module nodeinit.host: facts about the host (os, kernel, cpus, memory, interfaces, block devices, NUMA). */
#include <errno.h>
#include <lauxlib.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "host.h"
#include "luart.h"

/* How one C struct member becomes one field of a Lua table: the tables below drive every fact. */
struct field {
	const char *name;
	enum { F_CHARS, F_STRING, F_U64, F_UNSIGNED, F_BOOL } type; /* char[], char * (NULL: nil), ... */
	size_t offset;
};
#define FIELD(type, s, member) { #member, type, offsetof(s, member) }
#define END { NULL, 0, 0 }

static const struct field block_fields[] = {
	FIELD(F_CHARS, struct ni_host_block, name), FIELD(F_U64, struct ni_host_block, size),
	FIELD(F_BOOL, struct ni_host_block, rotational), FIELD(F_BOOL, struct ni_host_block, removable),
	FIELD(F_CHARS, struct ni_host_block, model), END,
};
static const struct field iface_fields[] = {
	FIELD(F_CHARS, struct ni_host_iface, name), FIELD(F_CHARS, struct ni_host_iface, mac),
	FIELD(F_UNSIGNED, struct ni_host_iface, mtu), FIELD(F_BOOL, struct ni_host_iface, up), END,
};
static const struct field kernel_fields[] = {
	FIELD(F_CHARS, struct utsname, release), FIELD(F_CHARS, struct utsname, version),
	{ "arch", F_CHARS, offsetof(struct utsname, machine) }, END,
};
static const struct field memory_fields[] = {
	FIELD(F_U64, struct ni_host_memory, total), FIELD(F_U64, struct ni_host_memory, available), END,
};
static const struct field os_fields[] = {
	FIELD(F_STRING, struct ni_host_os, id), FIELD(F_STRING, struct ni_host_os, version_id),
	FIELD(F_STRING, struct ni_host_os, pretty_name), END,
};

/* Pushes a table holding the fields of the struct at p. */
static void push_row(lua_State *L, const void *p, const struct field *f)
{
	lua_newtable(L);
	for (; f->name; f++) {
		const char *m = (const char *)p + f->offset;
		uint64_t u;

		switch (f->type) {
		case F_CHARS:
			lua_pushstring(L, m);
			break;
		case F_STRING:
			lua_pushstring(L, *(char *const *)m); /* NULL pushes nil */
			break;
		case F_U64:
			memcpy(&u, m, sizeof(u));
			lua_pushinteger(L, u > (uint64_t)LUA_MAXINTEGER ? LUA_MAXINTEGER : (lua_Integer)u);
			break;
		case F_UNSIGNED:
			lua_pushinteger(L, *(const unsigned *)m);
			break;
		case F_BOOL:
			lua_pushboolean(L, *(const bool *)m);
			break;
		}
		lua_setfield(L, -2, f->name);
	}
}

/*
 * A list fact: the pure layer's rows (size bytes each) go into a box made before the read (freed by
 * __gc, so a raise while Lua allocates frees them too), then out as a list of tables; or the failure
 * triple naming source.
 */
static int push_list(lua_State *L, enum ni_host_list which, const char *what, const char *source, size_t size,
		     const struct field *fields)
{
	char **box = ni_lua_box_new(L);
	void *rows = NULL;
	size_t n = 0;
	int r;

	ni_lua_require_phase(L, NI_CAN_READ, what);
	r = ni_host_list(ni_lua_ctx(L)->root_fd, which, &rows, &n);
	*box = rows;
	if (r < 0)
		return ni_lua_fail(L, r, source);
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		push_row(L, *box + i * size, fields);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* A count fact (CPUs, NUMA nodes), read by the pure layer's read. */
static int push_count(lua_State *L, const char *what, const char *source, int (*read)(int, unsigned *))
{
	unsigned n;
	int r;

	ni_lua_require_phase(L, NI_CAN_READ, what);
	r = read(ni_lua_ctx(L)->root_fd, &n);
	if (r < 0)
		return ni_lua_fail(L, r, source);
	lua_pushinteger(L, n);
	return 1;
}

static int l_host_block_devices(lua_State *L)
{
	return push_list(L, NI_HOST_BLOCK_DEVICES, "host.block_devices", "/sys/block", sizeof(struct ni_host_block),
			 block_fields);
}

static int l_host_cpus(lua_State *L)
{
	return push_count(L, "host.cpus", "/sys/devices/system/cpu/online", ni_host_cpus);
}

static int l_host_interfaces(lua_State *L)
{
	return push_list(L, NI_HOST_INTERFACES, "host.interfaces", "/sys/class/net", sizeof(struct ni_host_iface),
			 iface_fields);
}

/* uname() names the running kernel, which the host and every container on it share. */
static int l_host_kernel(lua_State *L)
{
	struct utsname u;

	ni_lua_require_phase(L, NI_CAN_READ, "host.kernel");
	if (uname(&u) < 0)
		return ni_lua_fail(L, -errno, "uname");
	push_row(L, &u, kernel_fields);
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
	push_row(L, &m, memory_fields);
	return 1;
}

static int l_host_numa_nodes(lua_State *L)
{
	return push_count(L, "host.numa_nodes", "/sys/devices/system/node", ni_host_numa_nodes);
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
	push_row(L, &os, os_fields);
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
