/* The Lua runtime: limits (allocator cap, count hook), the sandboxed environment, guarded calls. */
#define _GNU_SOURCE
#include "luart.h"

#include <errno.h>
#include <lauxlib.h>
#include <poll.h>
#include <lualib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "embed.h"
#include "exec.h"
#include "fingerprint.h"
#include "kube.h"
#include "report.h"
#include "util.h"

#define HOOK_EVERY 10000

/* Lives as the allocator's userdata, so every binding can reach it from any lua_State. */
struct ni_lua {
	struct ni_ctx *ctx;
	size_t mem_used, mem_max;
	bool mem_hit;
	long instr_left;
	bool instr_hit;
};

static const char TEMPLATE_KEY = 'T'; /* registry: the globals every environment copies */
static const char MODULES_KEY = 'M';  /* registry: name -> module table, the originals */
static const char TRUSTED_KEY = 'E';  /* registry: name -> loaded embedded (lua/) module */
static const char MEMMSG_KEY = 'X';   /* registry: the memory limit message, made while memory was there */

/*
 * A step that holds one of these tables in an upvalue (`local file = file`) has in its fingerprint
 * the module's 0.1.0 functions and each one's upvalues (core/fingerprint.c, which freezes the keys):
 * adding a function re-runs nothing, adding an upvalue to a 0.1.0 binding re-runs such `once` steps
 * after an upgrade. test_fingerprint pins those fingerprints (tests/fixtures/modules).
 */
static const struct {
	const char *name;
	lua_CFunction open;
} c_modules[] = {
	{ "exec", luaopen_nodeinit_exec },
	{ "file", luaopen_nodeinit_file },
	{ "host", luaopen_nodeinit_host },
	{ "kube", luaopen_nodeinit_kube },
	{ "log", luaopen_nodeinit_log },
	{ "ns", luaopen_nodeinit_ns },
	{ "sysctl", luaopen_nodeinit_sysctl },
	{ "yaml", luaopen_nodeinit_yaml },
};

static struct ni_lua *state_of(lua_State *L)
{
	void *ud;

	lua_getallocf(L, &ud);
	return ud;
}

struct ni_ctx *ni_lua_ctx(lua_State *L)
{
	return state_of(L)->ctx;
}

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct ni_lua *s = ud;
	size_t old = ptr ? osize : 0; /* with ptr NULL, osize is a type tag, not a size */
	void *p;

	if (nsize == 0) {
		free(ptr);
		s->mem_used -= old;
		return NULL;
	}
	if (nsize > old && s->mem_used + (nsize - old) > s->mem_max) {
		s->mem_hit = true;
		return NULL;
	}
	p = realloc(ptr, nsize);
	if (!p)
		return NULL;
	s->mem_used = s->mem_used - old + nsize;
	return p;
}

bool ni_stop_pending(const struct ni_ctx *ctx)
{
	struct pollfd p = { .fd = ctx->sig_fd, .events = POLLIN };

	return ctx->sig_fd >= 0 && poll(&p, 1, 0) > 0;
}

/* Past the current step's deadline (the same test run_step makes when the step returns). */
static bool overdue(const struct ni_ctx *ctx)
{
	return ctx->deadline_ms && ni_now_ms() >= ctx->deadline_ms;
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
	struct ni_lua *s = state_of(L);
	const struct ni_ctx *ctx = s->ctx;

	(void)ar;
	/* The thread's own count: a coroutine left at 1 by an earlier hit must not be charged 10000. */
	s->instr_left -= lua_gethookcount(L);
	if (s->instr_left < 0)
		s->instr_hit = true;
	else if (!overdue(ctx) && !ni_stop_pending(ctx))
		return;
	/* A pcall in the recipe may catch this: it comes back at the very next instruction then, so
	 * every protected level is left in turn and a runaway cannot swallow its own stop. */
	lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
	if (s->instr_hit)
		luaL_error(L, "instruction limit exceeded (%I VM instructions): a runaway loop?",
			   (lua_Integer)NI_LUA_INSTR_MAX);
	if (overdue(ctx))
		luaL_error(L, "step timed out");
	luaL_error(L, "interrupted by a stop signal");
}

void ni_lua_stop_soon(lua_State *L)
{
	/* A passed deadline is left to the hook's usual round: the body may still say which command
	 * timed out (recipe.lua does), and run_step records the step failed whatever it does. */
	if (!ni_stop_pending(ni_lua_ctx(L)))
		return;
	/* Here and on the main thread: the coroutine that called may yield back to it before running on. */
	lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
	lua_sethook(lua_tothread(L, -1), count_hook, LUA_MASKCOUNT, 1);
	lua_pop(L, 1);
}

static const char BOX_MT[] = "nodeinit.Box";

static int box_gc(lua_State *L)
{
	char **box = luaL_checkudata(L, 1, BOX_MT);

	free(*box);
	*box = NULL;
	return 0;
}

void ni_lua_set_locked_metatable(lua_State *L, const char *tname, const luaL_Reg *methods)
{
	if (luaL_newmetatable(L, tname)) {
		luaL_setfuncs(L, methods, 0);
		lua_pushboolean(L, 0);
		lua_setfield(L, -2, "__metatable");
	}
	lua_setmetatable(L, -2);
}

char **ni_lua_box_new(lua_State *L)
{
	static const luaL_Reg box_methods[] = { { "__gc", box_gc }, { NULL, NULL } };
	char **box = lua_newuserdatauv(L, sizeof(*box), 0);

	*box = NULL;
	ni_lua_set_locked_metatable(L, BOX_MT, box_methods);
	return box;
}

int ni_lua_argerror(lua_State *L, int arg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lua_pushvfstring(L, fmt, ap);
	va_end(ap);
	return luaL_argerror(L, arg, lua_tostring(L, -1));
}

int ni_lua_fail(lua_State *L, int r, const char *what)
{
	errno = -r;
	return luaL_fileresult(L, 0, what);
}

enum ni_act ni_lua_require_phase(lua_State *L, unsigned need, const char *what)
{
	const struct ni_ctx *ctx = ni_lua_ctx(L);

	if (ctx->phase != NI_PHASE_STEP)
		luaL_error(L, "%s: only inside a step: a recipe file's top-level code runs at every load (lint, plan, "
			      "apply, reloads) and may not touch the host; call it from a step's function", what);
	return ctx->check_mode && (need & NI_CAN_CHANGE) ? NI_ACT_REPORT : NI_ACT_DO;
}

int ni_lua_pcall_step(lua_State *L, int nargs, int nresults)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	enum ni_phase saved = ctx->phase;
	int r;

	ctx->phase = NI_PHASE_STEP;
	r = ni_lua_pcall(L, nargs, nresults);
	ctx->phase = saved;
	return r;
}

void ni_lua_plan_line(lua_State *L, const char *line, bool command)
{
	struct ni_plan_sink *p = ni_lua_ctx(L)->plan;

	if (!p)
		return;
	if (!command && p->exec_named && !p->exec_noted) {
		p->exec_noted = true;
		ni_lua_plan_line(L, "(after exec: the lines below depend on what the command does)", false);
	}
	p->exec_named |= command;
	if (p->lines++ >= NI_PLAN_LINES_MAX)
		p->dropped++;
	else
		ni_plan_detail(p->out, line);
}

void ni_lua_plan_value(luaL_Buffer *b, const char *v, size_t len, bool quote)
{
	if (ni_lua_ctx(b->L)->sensitive) {
		luaL_addstring(b, "(sensitive)");
		return;
	}
	if (quote)
		luaL_addchar(b, '"');
	luaL_addlstring(b, v, len > NI_PLAN_VALUE_MAX ? NI_PLAN_VALUE_MAX : len);
	if (len > NI_PLAN_VALUE_MAX)
		luaL_addstring(b, "...");
	if (quote)
		luaL_addchar(b, '"');
}

/*
 * setmetatable() without finalizers: a __gc runs whenever the collector or lua_close gets to it, in
 * no step and under no phase (at the end of plan, say). Lua 5.4 marks an object for finalization
 * only when setmetatable gives it a metatable that already has __gc (lapi.c lua_setmetatable calls
 * lgc.c luaC_checkfinalizer, which returns early when gfasttm(g, mt, TM_GC) is NULL, a raw lookup),
 * so refusing such a metatable here leaves no way to get one: a __gc added to the metatable later
 * is never called. __close handlers need no such rule: they run where their variable goes out of
 * scope, so under the phase of the code that declared it. The rest is the base library's function.
 */
static int l_setmetatable(lua_State *L)
{
	int t = lua_type(L, 2);

	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
	if (t == LUA_TTABLE) {
		lua_pushliteral(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL)
			return luaL_error(L, "__gc is not available to recipes (finalizers run outside any step)");
		lua_pop(L, 1);
	}
	if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
		return luaL_error(L, "cannot change a protected metatable");
	lua_settop(L, 2);
	lua_setmetatable(L, 1);
	return 1;
}

/* load() for recipes: text only, and the caller's sandbox as the default environment. */
static int l_load(lua_State *L)
{
	size_t len;
	const char *chunk = luaL_checklstring(L, 1, &len);
	const char *name = luaL_optstring(L, 2, "=(load)");
	const char *mode = luaL_optstring(L, 3, "t");
	int env = lua_isnone(L, 4) ? lua_upvalueindex(1) : 4;

	luaL_argcheck(L, strcmp(mode, "t") == 0, 3, "only text chunks can be loaded (mode \"t\")");
	if (luaL_loadbufferx(L, chunk, len, name, "t") != LUA_OK) {
		lua_pushnil(L);
		lua_insert(L, -2);
		return 2;
	}
	lua_pushvalue(L, env);
	if (!lua_setupvalue(L, -2, 1))
		lua_pop(L, 1);
	return 1;
}

/* collectgarbage() without the options that would let a recipe starve or stall the collector. */
static int l_collectgarbage(lua_State *L)
{
	static const char *const opts[] = { "collect", "count", "step", "isrunning", NULL };
	int o = luaL_checkoption(L, 1, "collect", opts);

	switch (o) {
	case 0:
		lua_gc(L, LUA_GCCOLLECT);
		lua_pushinteger(L, 0);
		return 1;
	case 1: {
		int kb = lua_gc(L, LUA_GCCOUNT), b = lua_gc(L, LUA_GCCOUNTB);
		lua_pushnumber(L, (lua_Number)kb + (lua_Number)b / 1024);
		return 1;
	}
	case 2:
		lua_pushboolean(L, lua_gc(L, LUA_GCSTEP, (int)luaL_optinteger(L, 2, 0)));
		return 1;
	default:
		lua_pushboolean(L, lua_gc(L, LUA_GCISRUNNING));
		return 1;
	}
}

/* print() goes to nodeinit's log, tagged with the step, instead of a bare stdout line: one log line per
 * line printed, so a newline in a value cannot forge a line of its own. */
static int l_print(lua_State *L)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	const char *kv[] = { "step", ctx->step };
	const char *s, *end, *nl;
	luaL_Buffer b;
	size_t len;
	int n = lua_gettop(L);

	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, '\t');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	s = lua_tolstring(L, -1, &len);
	end = s + len;
	do {
		nl = memchr(s, '\n', (size_t)(end - s));
		ni_log_bytes(&ctx->log, NI_LOG_INFO, s, (size_t)((nl ? nl : end) - s), kv, 1);
		s = nl ? nl + 1 : end;
	} while (s < end);
	return 0;
}

/*
 * must(v, msg, ...): the primitives return changed (false when nothing changed) or nil, msg on
 * failure, so assert() would fail on "unchanged". must raises only on nil, with the caller's place.
 */
static int l_must(lua_State *L)
{
	if (!lua_isnoneornil(L, 1))
		return lua_gettop(L);
	luaL_where(L, 1);
	lua_pushstring(L, luaL_optstring(L, 2, "must: no value"));
	lua_concat(L, 2);
	return lua_error(L);
}

/*
 * sleep(seconds): waits on the stop signal's fd, never past the step's deadline. Raises as the count
 * hook does, so a sleeping step ends as a timed-out or interrupted one would.
 */
static int l_sleep(lua_State *L)
{
	const struct ni_ctx *ctx = ni_lua_ctx(L);
	lua_Number s = luaL_checknumber(L, 1);
	int64_t until;

	luaL_argcheck(L, s >= 0 && s <= NI_TIMEOUT_MAX_S, 1, "seconds must be a number from 0 to a year");
	/* not the host's state, but time a step spends: plan says so and does not wait */
	if (ni_lua_require_phase(L, NI_CAN_CHANGE, "sleep") == NI_ACT_REPORT) {
		lua_pushfstring(L, "sleep %f s", (double)s);
		ni_lua_plan_line(L, lua_tostring(L, -1), false);
		return 0;
	}
	until = ni_now_ms() + (int64_t)ceil(s * 1000);
	for (;;) {
		struct pollfd p = { .fd = ctx->sig_fd, .events = POLLIN };
		int64_t now = ni_now_ms(), end = until;

		if (ctx->deadline_ms && ctx->deadline_ms < end)
			end = ctx->deadline_ms;
		if (now >= end)
			break;
		/* poll only looks: the signal stays queued for the engine to read */
		if (poll(&p, 1, (int)(end - now > INT32_MAX ? INT32_MAX : end - now)) > 0 && ctx->sig_fd >= 0)
			return luaL_error(L, "interrupted by a stop signal");
	}
	if (ctx->deadline_ms && ni_now_ms() >= ctx->deadline_ms && until > ctx->deadline_ms)
		return luaL_error(L, "step timed out");
	return 0;
}

/* require(name): nodeinit.* modules only; the environment's own copies, so globals and require agree. */
static int l_require(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);

	if (lua_getfield(L, lua_upvalueindex(1), name) != LUA_TNIL)
		return 1;
	return luaL_error(L, "module '%s' not found: recipes can require only nodeinit.* modules", name);
}

static void copy_table(lua_State *L, int src)
{
	src = lua_absindex(L, src);
	lua_newtable(L);
	lua_pushnil(L);
	while (lua_next(L, src)) {
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, -4);
	}
}

/* Base functions recipes may use; the rest of the base library (dofile, loadfile, ...) stays out. */
static const char *const safe_base[] = {
	"assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget",
	"rawlen", "rawset", "select", "tonumber", "tostring", "type", "xpcall", "_VERSION",
	NULL,
};
static const char *const safe_os[] = { "clock", "date", "difftime", "getenv", "time", NULL };
/* nodeinit's own globals, and the base functions it replaces with guarded versions. */
static const luaL_Reg own_base[] = {
	{ "collectgarbage", l_collectgarbage },
	{ "must", l_must },
	{ "print", l_print },
	{ "setmetatable", l_setmetatable },
	{ "sleep", l_sleep },
	{ NULL, NULL },
};

/* Builds the template globals from a scratch table of opened libraries. */
static void build_template(lua_State *L)
{
	lua_newtable(L); /* template */

	luaL_requiref(L, "_G", luaopen_base, 0);
	for (const char *const *k = safe_base; *k; k++) {
		lua_getfield(L, -1, *k);
		lua_setfield(L, -3, *k);
	}
	lua_pop(L, 1);
	luaL_setfuncs(L, own_base, 0);

	luaL_requiref(L, "string", luaopen_string, 0);
	lua_pushnil(L);
	lua_setfield(L, -2, "dump"); /* bytecode out means bytecode in; neither */
	lua_setfield(L, -2, "string");
	/* The string metatable is shared by every string in the state: hide it. */
	lua_pushliteral(L, "");
	lua_getmetatable(L, -1);
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 2);

	luaL_requiref(L, "table", luaopen_table, 0);
	lua_setfield(L, -2, "table");
	luaL_requiref(L, "math", luaopen_math, 0);
	lua_setfield(L, -2, "math");
	luaL_requiref(L, "utf8", luaopen_utf8, 0);
	lua_setfield(L, -2, "utf8");
	luaL_requiref(L, "coroutine", luaopen_coroutine, 0);
	lua_setfield(L, -2, "coroutine");
	luaL_requiref(L, "os", luaopen_os, 0);
	lua_newtable(L);
	for (const char *const *k = safe_os; *k; k++) {
		lua_getfield(L, -2, *k);
		lua_setfield(L, -2, *k);
	}
	lua_setfield(L, -3, "os");
	lua_pop(L, 1);

	lua_rawsetp(L, LUA_REGISTRYINDEX, &TEMPLATE_KEY);

	lua_newtable(L); /* modules */
	for (size_t i = 0; i < NI_ELEMENTSOF(c_modules); i++) {
		lua_pushcfunction(L, c_modules[i].open);
		lua_call(L, 0, 1);
		lua_setfield(L, -2, c_modules[i].name);
	}
	lua_rawsetp(L, LUA_REGISTRYINDEX, &MODULES_KEY);
	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &TRUSTED_KEY);
	lua_pushfstring(L, "memory limit exceeded (%d MiB)", (int)(state_of(L)->mem_max >> 20));
	lua_rawsetp(L, LUA_REGISTRYINDEX, &MEMMSG_KEY);
}

static int build_template_protected(lua_State *L)
{
	build_template(L);
	return 0;
}

/*
 * The last resort: an error outside any protected call. Every entry into Lua goes through
 * ni_lua_pcall, so this means a bug; say so plainly before Lua aborts.
 */
static int panic(lua_State *L)
{
	const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(error object is not a string)";

	fprintf(stderr, "nodeinit: internal error: Lua error outside a protected call: %s\n", msg);
	fflush(stderr);
	return 0; /* Lua aborts */
}

lua_State *ni_lua_new(struct ni_ctx *ctx)
{
	struct ni_lua *s = calloc(1, sizeof(*s));
	lua_State *L;

	if (!s)
		return NULL;
	s->ctx = ctx;
	s->mem_max = NI_LUA_MEM_MAX;
	s->instr_left = NI_LUA_INSTR_MAX;
	L = lua_newstate(capped_alloc, s);
	if (!L) {
		free(s);
		return NULL;
	}
	lua_atpanic(L, panic);
	lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
	lua_pushcfunction(L, build_template_protected);
	if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
		ni_lua_close(L);
		return NULL;
	}
	return L;
}

void ni_lua_limit_mem(lua_State *L, size_t headroom)
{
	struct ni_lua *s = state_of(L);

	s->mem_max = s->mem_used + headroom;
}

void ni_lua_close(lua_State *L)
{
	struct ni_lua *s;

	if (!L)
		return;
	s = state_of(L);
	lua_close(L);
	free(s);
}

static int push_env(lua_State *L)
{
	int env, mods;

	lua_rawgetp(L, LUA_REGISTRYINDEX, &TEMPLATE_KEY);
	copy_table(L, -1);
	lua_remove(L, -2);
	env = lua_gettop(L);
	/* Libraries are tables: copy them too, so `string.rep = nil` stays in this environment. */
	lua_pushnil(L);
	while (lua_next(L, env)) {
		if (lua_type(L, -1) == LUA_TTABLE) {
			copy_table(L, -1);
			lua_pushvalue(L, -3);
			lua_insert(L, -2);
			lua_rawset(L, env);
		}
		lua_pop(L, 1);
	}
	lua_pushvalue(L, env);
	lua_setfield(L, env, "_G");

	lua_newtable(L); /* what require() finds: nodeinit.<name> -> this environment's copy */
	mods = lua_gettop(L);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &MODULES_KEY);
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		const char *name = lua_tostring(L, -2);
		copy_table(L, -1);
		ni_fingerprint_module(L, -1, name);
		lua_pushvalue(L, -1);
		lua_setfield(L, env, name);
		lua_pushfstring(L, "nodeinit.%s", name);
		lua_insert(L, -2);
		lua_rawset(L, mods);
		lua_pop(L, 1); /* the original module; its name stays for lua_next */
	}
	lua_pop(L, 1);
	lua_pushcclosure(L, l_require, 1);
	lua_setfield(L, env, "require");

	lua_pushvalue(L, env);
	lua_pushcclosure(L, l_load, 1);
	lua_setfield(L, env, "load");
	return 1;
}

int ni_lua_push_env(lua_State *L)
{
	lua_pushcfunction(L, push_env);
	return ni_lua_pcall(L, 0, 1);
}

/*
 * Our own lua/ modules run trusted: a sandbox environment plus the real load() and debug.getinfo
 * (recipe.lua names the line a step is written on). Recipes never reach them.
 */
static int require_embedded(lua_State *L)
{
	const char *name = lua_touserdata(L, 1);
	const struct ni_embedded *e;
	char chunkname[64];
	int r;

	lua_settop(L, 0);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &TRUSTED_KEY);
	if (lua_getfield(L, -1, name) != LUA_TNIL)
		return 1;
	lua_pop(L, 1);
	for (e = ni_embedded_lua; e->name && !ni_streq(e->name, name); e++)
		;
	if (!e->name)
		return luaL_error(L, "no embedded module '%s'", name);
	push_env(L);
	lua_pushglobaltable(L);
	lua_getfield(L, -1, "load");
	lua_setfield(L, -3, "load");
	lua_pop(L, 1);
	luaL_requiref(L, "debug", luaopen_debug, 0);
	lua_newtable(L);
	lua_getfield(L, -2, "getinfo");
	lua_setfield(L, -2, "getinfo");
	lua_setfield(L, -3, "debug");
	lua_pop(L, 1);
	snprintf(chunkname, sizeof(chunkname), "=lua/%s.lua", name);
	r = ni_lua_load(L, chunkname, e->data, e->len, -1);
	lua_remove(L, -2); /* the environment */
	if (r != LUA_OK)
		return lua_error(L);
	lua_call(L, 0, 1);
	lua_pushvalue(L, -1);
	lua_setfield(L, -3, name);
	return 1;
}

int ni_lua_require_embedded(lua_State *L, const char *name)
{
	lua_pushcfunction(L, require_embedded);
	lua_pushlightuserdata(L, (void *)name);
	return ni_lua_pcall(L, 1, 1);
}

int ni_timeout_ms(double seconds, int64_t *ret_ms)
{
	/* NaN fails both comparisons; the bound keeps the product far from int64_t's range */
	if (!(seconds > 0 && seconds <= NI_TIMEOUT_MAX_S))
		return -EINVAL;
	*ret_ms = (int64_t)ceil(seconds * 1000);
	return 0;
}

int ni_lua_load(lua_State *L, const char *chunkname, const char *src, size_t len, int env_idx)
{
	int r;

	env_idx = lua_absindex(L, env_idx);
	r = luaL_loadbufferx(L, src, len, chunkname, "t");
	if (r != LUA_OK)
		return r;
	lua_pushvalue(L, env_idx);
	lua_setupvalue(L, -2, 1);
	return LUA_OK;
}

static int msghandler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);

	if (!msg) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

int ni_lua_pcall(lua_State *L, int nargs, int nresults)
{
	struct ni_lua *s = state_of(L);
	int base = lua_gettop(L) - nargs, r;

	s->instr_left = NI_LUA_INSTR_MAX;
	s->mem_hit = s->instr_hit = false;
	lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
	lua_pushcfunction(L, msghandler);
	lua_insert(L, base);
	r = lua_pcall(L, nargs, nresults, base);
	lua_remove(L, base);
	if (r == LUA_ERRMEM || (r != LUA_OK && s->mem_hit)) {
		/* made by ni_lua_new: pushing it allocates nothing, which matters right after running out */
		lua_pop(L, 1);
		lua_rawgetp(L, LUA_REGISTRYINDEX, &MEMMSG_KEY);
		r = LUA_ERRMEM;
	}
	return r;
}
