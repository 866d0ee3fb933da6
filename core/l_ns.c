/* Lua module nodeinit.ns: ns.run(spec, fn, ...) and ns.exec(spec, argv) in another namespace of the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "l_exec.h"
#include "luart.h"
#include "ns.h"
#include "util.h"

#define SWITCH_MT "nodeinit.NsSwitch"

/* Only these for a function: nodeinit itself moves, and mnt would leave file.* and sysctl.* on the
 * host's root fd while the function thinks it is elsewhere; pid applies to children only. */
#define RUN_KINDS ((1u << NI_NS_IPC) | (1u << NI_NS_UTS) | (1u << NI_NS_NET))

/*
 * One switch into other namespaces and back. A to-be-closed value on the binding's stack, so that
 * the way back runs however the call ends (return, error, memory or instruction limit).
 */
struct ns_switch {
	struct ni_ctx *ctx;
	struct ni_ns target, saved;
	bool entered;
};

struct spec {
	const char *netns;
	lua_Integer pid;
	unsigned mask;
};

static void switch_back(struct ns_switch *sw)
{
	enum ni_ns_kind failed = _NI_NS_MAX;

	if (sw->entered) {
		int r = ni_ns_restore(&sw->saved, &failed);
		if (r < 0) {
			/* Every later step would run in the wrong namespace: the one place a binding stops the
			 * process, so the pod restarts clean instead. */
			ni_log(&sw->ctx->log, NI_LOG_ERROR, "cannot return to nodeinit's own namespace, stopping", "step",
			       sw->ctx->step, "namespace", ni_ns_name(failed), "error", strerror(-r), NULL);
			_exit(NI_EXIT_FAILED);
		}
		sw->entered = false;
	}
	ni_ns_close(&sw->target);
	ni_ns_close(&sw->saved);
}

static int switch_close(lua_State *L)
{
	switch_back(luaL_checkudata(L, 1, SWITCH_MT));
	return 0;
}

/* Raw, so a metatable cannot hand out a string that nothing anchors once popped. */
static int rawfield(lua_State *L, int t, const char *key)
{
	lua_pushstring(L, key);
	return lua_rawget(L, t);
}

/* Checks the spec table at index 1 against what the caller allows (allowed: a mask of kinds). */
static void check_spec(lua_State *L, unsigned allowed, unsigned dflt, struct spec *ret)
{
	static const char *const keys[] = { "namespaces", "netns", "pid", NULL };
	int t;

	luaL_checktype(L, 1, LUA_TTABLE);
	*ret = (struct spec){ .mask = dflt };
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		int k = 0;
		const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		while (key && keys[k] && !ni_streq(keys[k], key))
			k++;
		if (!key || !keys[k])
			ni_lua_argerror(L, 1, "unknown key %s: {netns = NAME} or {pid = PID, namespaces = {...}}",
				  key ? lua_pushfstring(L, "'%s'", key) : luaL_typename(L, -2));
		lua_pop(L, 1);
	}

	if (rawfield(L, 1, "netns") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TSTRING)
			ni_lua_argerror(L, 1, "netns must be a string, got %s", luaL_typename(L, -1));
		ret->netns = lua_tostring(L, -1); /* anchored by the spec table */
		if (!ni_ns_netns_name_valid(ret->netns))
			ni_lua_argerror(L, 1, "bad netns name '%s' (a name under /run/netns: no '/', not '..')", ret->netns);
	}
	if (rawfield(L, 1, "pid") != LUA_TNIL) {
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) <= 0 || lua_tointeger(L, -1) > 0x7fffffff)
			ni_lua_argerror(L, 1, "pid must be a positive integer");
		ret->pid = lua_tointeger(L, -1);
	}
	if (!ret->netns == !ret->pid)
		ni_lua_argerror(L, 1, "give either netns = NAME or pid = PID");

	t = rawfield(L, 1, "namespaces");
	if (t != LUA_TNIL) {
		lua_Integer n = 0;
		if (ret->netns)
			ni_lua_argerror(L, 1, "namespaces goes with pid; netns is a network namespace only");
		if (t != LUA_TTABLE || (n = (lua_Integer)lua_rawlen(L, -1)) == 0)
			ni_lua_argerror(L, 1, "namespaces must be a non-empty list such as {\"net\", \"uts\"}");
		ret->mask = 0;
		for (lua_Integer i = 1; i <= n; i++) {
			const char *name;
			int k = 0;
			lua_rawgeti(L, -1, i);
			name = lua_tostring(L, -1);
			while (k < _NI_NS_MAX && !(name && ni_streq(name, ni_ns_name((enum ni_ns_kind)k))))
				k++;
			if (k == _NI_NS_MAX)
				ni_lua_argerror(L, 1, "unknown namespace '%s' (ipc, mnt, net, pid, uts)", name ? name : luaL_typename(L, -1));
			if (!(allowed & (1u << k)))
				ni_lua_argerror(L, 1, "ns.run cannot switch nodeinit itself into another %s namespace: use ns.exec",
					  ni_ns_name((enum ni_ns_kind)k));
			ret->mask |= 1u << k;
			lua_pop(L, 1);
		}
	}
	if (ret->netns)
		ret->mask = 1u << NI_NS_NET;
	lua_pop(L, 3);
}

/*
 * Opens the target's namespaces and ours, then switches. Pushes the to-be-closed switch and returns
 * 0, or pushes nil, message, errno and returns 3 (the switch, if any, is undone by then).
 */
static int enter(lua_State *L, const struct spec *sp)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	struct ns_switch *sw;
	enum ni_ns_kind failed = _NI_NS_MAX;
	char what[128 + NAME_MAX];
	int r, slot;

	sw = lua_newuserdatauv(L, sizeof(*sw), 0);
	sw->ctx = ctx;
	sw->entered = false;
	for (int k = 0; k < _NI_NS_MAX; k++)
		sw->target.fd[k] = sw->saved.fd[k] = -1;
	luaL_setmetatable(L, SWITCH_MT);
	slot = lua_gettop(L);
	lua_toclose(L, slot);

	if (sp->netns) {
		snprintf(what, sizeof(what), "/run/netns/%s", sp->netns);
		r = ni_ns_open_netns(ctx->root_fd, sp->netns, &sw->target.fd[NI_NS_NET]);
	} else {
		/* The pid is the host's: look it up in the host's /proc, decide "ours" in the one we started with. */
		int host_proc = openat(ctx->root_fd, "proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
		snprintf(what, sizeof(what), "/proc/%d", (int)sp->pid);
		r = host_proc < 0 ? -errno : ni_ns_open_at(host_proc, ctx->proc_fd, (pid_t)sp->pid, sp->mask, &sw->target, &failed);
		ni_safe_close(host_proc);
		if (r < 0 && failed != _NI_NS_MAX)
			snprintf(what, sizeof(what), "/proc/%d/ns/%s", (int)sp->pid, ni_ns_name(failed));
	}
	if (r == 0) {
		r = ni_ns_save(ctx->proc_fd, &sw->target, &sw->saved, &failed);
		if (r < 0)
			snprintf(what, sizeof(what), "our own %s namespace", ni_ns_name(failed));
	}
	if (r == 0) {
		char names[NI_NS_NAMES_MAX];
		unsigned unjoined = 0;
		sw->entered = true;
		r = ni_ns_enter(&sw->target, &failed, &unjoined);
		if (r < 0)
			snprintf(what, sizeof(what), "entering the %s namespace of %s%s (not joined: %s)", ni_ns_name(failed),
				 sp->netns ? "/run/netns/" : "pid ", sp->netns ? sp->netns : lua_pushfstring(L, "%d", (int)sp->pid),
				 ni_ns_names(unjoined, names));
	}
	if (r < 0) {
		lua_settop(L, slot - 1); /* closes the switch: back where we were */
		return ni_lua_fail(L, r, what);
	}
	return 0;
}

/* ns.run(spec, fn, ...): fn(...) with nodeinit inside the namespaces; its results, or nil, msg, errno. */
static int l_ns_run(lua_State *L)
{
	struct spec sp;
	int nargs = lua_gettop(L) - 2, slot;

	/* Entering namespaces changes nodeinit, not the host: in plan fn runs, its primitives in check mode. */
	ni_lua_require_phase(L, NI_CAN_READ, "ns.run");
	check_spec(L, RUN_KINDS, RUN_KINDS, &sp);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	if (enter(L, &sp) != 0)
		return 3;
	slot = lua_gettop(L);
	/* A plain call: an error unwinds through the to-be-closed switch after the traceback is taken
	 * (where it happened), and a yield across it is refused, so the way back always runs. */
	lua_pushvalue(L, 2);
	for (int i = 0; i < nargs; i++)
		lua_pushvalue(L, 3 + i);
	lua_call(L, nargs, LUA_MULTRET);
	lua_closeslot(L, slot);
	return lua_gettop(L) - slot;
}

/* ns.exec(spec, argv): exec.run in the namespaces (all five of pid by default; mnt and pid too). */
static int l_ns_exec(lua_State *L)
{
	enum ni_act act = ni_lua_require_phase(L, NI_CAN_CHANGE, "ns.exec");
	struct spec sp;
	int slot, n;

	check_spec(L, NI_NS_ALL, NI_NS_ALL, &sp);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 2);
	if (act == NI_ACT_REPORT) /* named, not run: no need to enter anything */
		return ni_lua_exec_push(L, 2, act, sp.netns ? lua_pushfstring(L, "netns %s", sp.netns)
							      : lua_pushfstring(L, "pid %d", (int)sp.pid));
	if (enter(L, &sp) != 0)
		return 3;
	slot = lua_gettop(L);
	n = ni_lua_exec_push(L, 2, act, NULL);
	lua_closeslot(L, slot);
	return n;
}

static const luaL_Reg ns_funcs[] = {
	{ "exec", l_ns_exec },
	{ "run", l_ns_run },
	{ NULL, NULL },
};

int luaopen_nodeinit_ns(lua_State *L)
{
	if (luaL_newmetatable(L, SWITCH_MT)) {
		lua_pushcfunction(L, switch_close);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, switch_close);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	luaL_newlib(L, ns_funcs);
	return 1;
}
