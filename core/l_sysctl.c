/* Lua module nodeinit.sysctl: get(key) and set(key, value) on the host's /proc/sys. */
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
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
	ctx->changed |= changed;
	if (changed)
		ni_log(&ctx->log, NI_LOG_INFO, "changed", "step", ctx->step, "sysctl", key, "value",
		       ctx->sensitive ? "(sensitive)" : value, NULL);
	lua_pushboolean(L, changed);
	return 1;
}

/* sysctl.keys(glob): the existing keys matching glob, sorted (a key without glob characters: itself, if it exists). */
static int l_sysctl_keys(lua_State *L)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	const char *glob = check_key(L, 1);
	char **box = ni_lua_box_new(L);
	char **keys = NULL;
	size_t n = 0;
	int fd, r;

	ni_lua_require_phase(L, NI_CAN_READ, "sysctl.keys");
	fd = proc_sys(ctx);
	if (fd < 0)
		return ni_lua_fail(L, fd, "/proc/sys");
	r = ni_sysctl_keys(fd, glob, &keys, &n);
	if (r < 0)
		return ni_lua_fail(L, r, glob);
	/* the array in the box; each key freed once Lua holds its copy */
	*box = (char *)keys;
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_pushstring(L, keys[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
		free(keys[i]);
		keys[i] = NULL;
	}
	return 1;
}

static const char CONF_MT[] = "nodeinit.SysctlConf";

/* Parsed text and its resolution live in a userdata while Lua tables are built from them. */
struct conf_box {
	struct ni_sysctl_conf conf;
	struct ni_sysctl_assignment *a;
	size_t n;
};

static int conf_gc(lua_State *L)
{
	struct conf_box *b = luaL_checkudata(L, 1, CONF_MT);

	ni_sysctl_assignments_free(b->a, b->n);
	b->a = NULL;
	b->n = 0;
	ni_sysctl_conf_free(&b->conf);
	return 0;
}

static struct conf_box *conf_box_new(lua_State *L)
{
	struct conf_box *b = lua_newuserdatauv(L, sizeof(*b), 0);

	*b = (struct conf_box){ 0 };
	if (luaL_newmetatable(L, CONF_MT)) {
		lua_pushcfunction(L, conf_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushboolean(L, 0);
		lua_setfield(L, -2, "__metatable");
	}
	lua_setmetatable(L, -2);
	return b;
}

/* Parses the text at arg into a new box (pushed); on bad text pushes nil, message, line and returns 3. */
static int parse_text(lua_State *L, int arg, struct conf_box **ret)
{
	size_t len;
	const char *text = luaL_checklstring(L, arg, &len);
	struct conf_box *b = conf_box_new(L);
	unsigned line;
	int r;

	r = ni_sysctl_conf_parse(text, len, &b->conf, &line);
	if (r == -ENOMEM)
		return luaL_error(L, "not enough memory");
	if (r < 0) {
		luaL_pushfail(L);
		if (line == 0)
			lua_pushliteral(L, "sysctl.d text holds a NUL byte");
		else
			lua_pushfstring(L, "sysctl.d text line %d: expected 'key = value', '-key = value' or '-key' "
					   "with a valid key (a.b.c or a/b/c, globs allowed)", (int)line);
		lua_pushinteger(L, (lua_Integer)line);
		return 3;
	}
	*ret = b;
	return 0;
}

/* sysctl.parse_conf(text): the lines as { key, value (nil: an exclusion), ignore_failure, glob, line }, or nil, msg, line. */
static int l_sysctl_parse_conf(lua_State *L)
{
	struct conf_box *b;
	int r = parse_text(L, 1, &b);

	if (r > 0)
		return r;
	lua_createtable(L, (int)b->conf.n, 0);
	for (size_t i = 0; i < b->conf.n; i++) {
		const struct ni_sysctl_conf_entry *e = &b->conf.v[i];
		lua_createtable(L, 0, 5);
		lua_pushstring(L, e->key);
		lua_setfield(L, -2, "key");
		if (e->value) {
			lua_pushstring(L, e->value);
			lua_setfield(L, -2, "value");
		}
		lua_pushboolean(L, e->ignore_failure);
		lua_setfield(L, -2, "ignore_failure");
		lua_pushboolean(L, e->glob);
		lua_setfield(L, -2, "glob");
		lua_pushinteger(L, e->line);
		lua_setfield(L, -2, "line");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* Parses and resolves the text at arg against the host (bad text raises: lint reports it first). */
static struct conf_box *resolve_text(lua_State *L, int arg)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	struct conf_box *b;
	int fd, r;

	if (parse_text(L, arg, &b) > 0)
		luaL_argerror(L, arg, lua_tostring(L, -2));
	fd = proc_sys(ctx);
	if (fd < 0) {
		ni_lua_fail(L, fd, "/proc/sys");
		lua_error(L);
	}
	r = ni_sysctl_conf_resolve(fd, &b->conf, &b->a, &b->n);
	if (r < 0) {
		errno = -r;
		luaL_error(L, "sysctl.d text: cannot resolve its globs: %s", strerror(-r));
	}
	return b;
}

/* sysctl.resolve_conf(text): what apply_conf would set, { key, value, ignore_failure, line } each. */
static int l_sysctl_resolve_conf(lua_State *L)
{
	struct conf_box *b;

	ni_lua_require_phase(L, NI_CAN_READ, "sysctl.resolve_conf");
	b = resolve_text(L, 1);
	lua_createtable(L, (int)b->n, 0);
	for (size_t i = 0; i < b->n; i++) {
		lua_createtable(L, 0, 4);
		lua_pushstring(L, b->a[i].key);
		lua_setfield(L, -2, "key");
		lua_pushstring(L, b->a[i].value);
		lua_setfield(L, -2, "value");
		lua_pushboolean(L, b->a[i].ignore_failure);
		lua_setfield(L, -2, "ignore_failure");
		lua_pushinteger(L, b->a[i].line);
		lua_setfield(L, -2, "line");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/*
 * sysctl.apply_conf(text): every assignment through sysctl.set (so each key is compared, written and
 * logged as one set() would be); a failure with '-' is logged and ignored, others are collected and
 * returned after all keys were tried, as systemd-sysctl does. Returns changed, or nil, msg, errno.
 */
static int l_sysctl_apply_conf(lua_State *L)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	struct conf_box *b;
	luaL_Buffer failed;
	int n_failed = 0, first_errno = 0;
	bool changed = false;

	/* phase: change (each key through sysctl.set below) */
	b = resolve_text(L, 1);
	luaL_buffinit(L, &failed);
	for (size_t i = 0; i < b->n; i++) {
		lua_pushcfunction(L, l_sysctl_set);
		lua_pushstring(L, b->a[i].key);
		lua_pushstring(L, b->a[i].value);
		lua_call(L, 2, 3);
		if (!lua_isnil(L, -3)) {
			changed = changed || lua_toboolean(L, -3);
		} else if (b->a[i].ignore_failure) {
			char line[16];
			snprintf(line, sizeof(line), "%u", b->a[i].line);
			ni_log(&ctx->log, NI_LOG_WARN, "sysctl not set; ignored ('-' before the key)", "step", ctx->step,
			       "key", b->a[i].key, "line", line, "error", lua_tostring(L, -2), NULL);
		} else {
			if (!first_errno)
				first_errno = (int)lua_tointeger(L, -1);
			lua_pop(L, 1);
			lua_pushfstring(L, "%s%s (line %d)", n_failed ? "; " : "", lua_tostring(L, -1), (int)b->a[i].line);
			lua_remove(L, -2);
			lua_insert(L, -2);
			lua_pop(L, 1);
			/* the buffer sits below: move the piece in */
			luaL_addvalue(&failed);
			n_failed++;
			continue;
		}
		lua_pop(L, 3);
	}
	if (n_failed) {
		luaL_pushresult(&failed);
		luaL_pushfail(L);
		lua_pushfstring(L, "%d of %d sysctls not set: %s", n_failed, (int)b->n, lua_tostring(L, -2));
		lua_pushinteger(L, first_errno ? first_errno : EIO);
		return 3;
	}
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
	{ "apply_conf", l_sysctl_apply_conf },
	{ "get", l_sysctl_get },
	{ "keys", l_sysctl_keys },
	{ "parse_conf", l_sysctl_parse_conf },
	{ "resolve_conf", l_sysctl_resolve_conf },
	{ "set", l_sysctl_set },
	{ "valid", l_sysctl_valid },
	{ NULL, NULL },
};

int luaopen_nodeinit_sysctl(lua_State *L)
{
	luaL_newlib(L, sysctl_funcs);
	return 1;
}
