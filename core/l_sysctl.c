/* Lua module nodeinit.sysctl: get(key) and set(key, value) on the host's /proc/sys. */
#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "luart.h"
#include "sysctl.h"

static const char *check_key(lua_State *L, int arg)
{
	char path[NI_SYSCTL_KEY_MAX + 1];
	size_t len;
	const char *key = luaL_checklstring(L, arg, &len);

	luaL_argcheck(L, strlen(key) == len && ni_sysctl_normalize(key, path) == 0, arg,
		      lua_pushfstring(L, "invalid sysctl key '%s' (want a.b.c or a/b/c, no empty, '.' or '..' "
					 "parts, no blanks)", key));
	return key;
}

/* A value as the kernel takes it: a string, or an integer (1, or 1.0) written in decimal. */
static const char *check_value(lua_State *L, int arg)
{
	size_t len;
	int isint;
	lua_Integer i;
	const char *v;

	switch (lua_type(L, arg)) {
	case LUA_TSTRING:
		v = lua_tolstring(L, arg, &len);
		luaL_argcheck(L, strlen(v) == len, arg, "value holds a NUL byte");
		return v;
	case LUA_TNUMBER:
		i = lua_tointegerx(L, arg, &isint);
		luaL_argcheck(L, isint, arg, "number has no integer representation");
		return lua_pushfstring(L, "%I", (LUAI_UACINT)i);
	default:
		luaL_typeerror(L, arg, "string or integer");
		return NULL;
	}
}

/* The host's /proc/sys, opened on first use: by then nodeinit has joined the host's net namespace. */
static int proc_sys(struct ni_ctx *ctx)
{
	if (ctx->proc_sys_fd < 0) {
		int r = ni_sysctl_open(ctx->root_fd, &ctx->proc_sys_fd);
		if (r < 0)
			return r;
	}
	return ctx->proc_sys_fd;
}

static int l_sysctl_get(lua_State *L)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	const char *key;
	char **box;
	int fd, r;

	ni_lua_require_phase(L, NI_CAN_READ, "sysctl.get");
	key = check_key(L, 1);
	box = ni_lua_box_new(L);

	fd = proc_sys(ctx);
	if (fd < 0)
		return ni_lua_fail(L, fd, "/proc/sys");
	r = ni_sysctl_read(fd, key, box);
	if (r < 0)
		return ni_lua_fail(L, r, key);
	lua_pushstring(L, *box);
	free(*box);
	*box = NULL;
	return 1;
}

/*
 * Check mode: what set would do, from the current value (a write-only key cannot be compared, so it
 * would be written), as "sysctl KEY: CURRENT -> DESIRED", " (same)" when nothing would change.
 */
static int would_set(lua_State *L, int fd, const char *key, const char *value)
{
	char **box = ni_lua_box_new(L);
	int r = ni_sysctl_read(fd, key, box);
	bool changed = r < 0 || !ni_sysctl_value_equal(*box, value);
	luaL_Buffer b;

	if (r < 0 && r != -EACCES)
		return ni_lua_fail(L, r, key); /* what set would have met opening it */
	luaL_buffinit(L, &b);
	lua_pushfstring(L, "sysctl %s: ", key);
	luaL_addvalue(&b);
	if (r < 0)
		luaL_addstring(&b, "(write-only)");
	else
		ni_lua_plan_value(&b, *box, strlen(*box), false);
	luaL_addstring(&b, " -> ");
	ni_lua_plan_value(&b, value, strlen(value), false);
	if (!changed)
		luaL_addstring(&b, " (same)");
	luaL_pushresult(&b);
	ni_lua_plan_line(L, lua_tostring(L, -1), false);
	free(*box);
	*box = NULL;
	lua_pushboolean(L, changed);
	return 1;
}

static int l_sysctl_set(lua_State *L)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	enum ni_act act = ni_lua_require_phase(L, NI_CAN_CHANGE, "sysctl.set");
	const char *key = check_key(L, 1);
	const char *value = check_value(L, 2);
	bool changed;
	int fd, r;

	fd = proc_sys(ctx);
	if (fd < 0)
		return ni_lua_fail(L, fd, "/proc/sys");
	if (act == NI_ACT_REPORT)
		return would_set(L, fd, key, value);
	r = ni_sysctl_write(fd, key, value, &changed);
	if (r < 0)
		return ni_lua_fail(L, r, key);
	if (changed)
		ni_log(&ctx->log, NI_LOG_INFO, "changed", "step", ctx->step, "sysctl", key, "value",
		       ctx->sensitive ? "(sensitive)" : value, NULL);
	lua_pushboolean(L, changed);
	return 1;
}

/* sysctl.valid(key): whether get and set would take the key; lets YAML recipes be checked by lint. */
static int l_sysctl_valid(lua_State *L)
{
	char path[NI_SYSCTL_KEY_MAX + 1];
	size_t len;
	const char *key = luaL_checklstring(L, 1, &len);

	lua_pushboolean(L, strlen(key) == len && ni_sysctl_normalize(key, path) == 0);
	return 1;
}

static const luaL_Reg sysctl_funcs[] = {
	{ "get", l_sysctl_get },
	{ "set", l_sysctl_set },
	{ "valid", l_sysctl_valid },
	{ NULL, NULL },
};

int luaopen_nodeinit_sysctl(lua_State *L)
{
	luaL_newlib(L, sysctl_funcs);
	return 1;
}
