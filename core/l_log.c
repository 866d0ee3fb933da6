/* Lua module nodeinit.log: log.debug/info/warn/error(msg [, fields]) into nodeinit's log lines. */
#include <lauxlib.h>
#include <string.h>

#include "log.h"
#include "luart.h"

#define MAX_FIELDS 16

static int log_at(lua_State *L, enum ni_log_level level)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	size_t msg_len;
	const char *msg = luaL_checklstring(L, 1, &msg_len);
	const char *kv[2 * (MAX_FIELDS + 1)];
	size_t n = 0;

	kv[n++] = "step";
	kv[n++] = ctx->step;
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		lua_settop(L, 2);
		/* Strings anchored in a scratch array, so the pointers stay valid until logged. */
		lua_newtable(L);
		lua_pushnil(L);
		while (lua_next(L, 2) && n < 2 * (MAX_FIELDS + 1)) {
			luaL_argcheck(L, lua_type(L, -2) == LUA_TSTRING, 2, "field names must be strings");
			luaL_tolstring(L, -1, NULL);
			lua_rawseti(L, 3, (lua_Integer)n + 2);
			lua_pop(L, 1);
			lua_pushvalue(L, -1);
			lua_rawseti(L, 3, (lua_Integer)n + 1);
			kv[n] = lua_tostring(L, -1);
			lua_rawgeti(L, 3, (lua_Integer)n + 2);
			kv[n + 1] = lua_tostring(L, -1);
			lua_pop(L, 1);
			n += 2;
		}
		/* Sorted by name: table order is arbitrary, log lines should not be. */
		for (size_t i = 4; i < n; i += 2)
			for (size_t j = i; j >= 4 && strcmp(kv[j - 2], kv[j]) > 0; j -= 2) {
				const char *k = kv[j], *v = kv[j + 1];
				kv[j] = kv[j - 2];
				kv[j + 1] = kv[j - 1];
				kv[j - 2] = k;
				kv[j - 1] = v;
			}
	}
	/* With its length: a NUL in the message shows escaped instead of ending it. */
	ni_log_bytes(&ctx->log, level, msg, msg_len, kv, n / 2);
	return 0;
}

static int l_log_debug(lua_State *L) { return log_at(L, NI_LOG_DEBUG); }
static int l_log_error(lua_State *L) { return log_at(L, NI_LOG_ERROR); }
static int l_log_info(lua_State *L) { return log_at(L, NI_LOG_INFO); }
static int l_log_warn(lua_State *L) { return log_at(L, NI_LOG_WARN); }

static const luaL_Reg log_funcs[] = {
	{ "debug", l_log_debug },
	{ "error", l_log_error },
	{ "info", l_log_info },
	{ "warn", l_log_warn },
	{ NULL, NULL },
};

int luaopen_nodeinit_log(lua_State *L)
{
	luaL_newlib(L, log_funcs);
	return 1;
}
