/* Lua module nodeinit.exec: exec.run{argv..., env=, stdin=, cwd=, timeout=} and exec.ok{...}. */
#include "l_exec.h"

#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <stdarg.h>
#include <string.h>

#include "exec.h"
#include "luart.h"
#include "util.h"

#define CAPTURE_MAX (1u << 20)    /* bytes kept per stream; the rest is counted and dropped */
#define LOG_LINE_MAX 4096         /* a longer output line reaches the log in pieces */
#define RESULT_MT "nodeinit.ExecResult"

extern char **environ;

static const char *const options[] = { "cwd", "env", "stdin", "timeout", NULL };

/* Output to log lines: one per line of output, partial lines kept until their newline arrives. */
struct line_buf {
	char buf[LOG_LINE_MAX + 1];
	size_t len;
};

struct streamer {
	struct ni_ctx *ctx;
	const char *cmd;
	struct line_buf lines[2];
	size_t logged[2]; /* bytes per stream; the log gets no more than the capture keeps */
};

static const char *stream_name(int stream)
{
	return stream == 1 ? "stdout" : "stderr";
}

static void flush_line(struct streamer *s, int stream)
{
	struct line_buf *lb = &s->lines[stream - 1];
	size_t before = s->logged[stream - 1];

	s->logged[stream - 1] += lb->len + 1;
	if (before <= CAPTURE_MAX) {
		const char *kv[] = { "step", s->ctx->step, "cmd", s->cmd, "stream", stream_name(stream) };

		/* The line goes with its length: the log escapes every byte (NUL, CR, ESC) in it. */
		if (s->logged[stream - 1] <= CAPTURE_MAX)
			ni_log_bytes(&s->ctx->log, NI_LOG_INFO, lb->buf, lb->len, kv, 3);
		else
			ni_log(&s->ctx->log, NI_LOG_WARN, "more output than the log takes from one command, not logged",
			       "step", s->ctx->step, "cmd", s->cmd, "stream", stream_name(stream), NULL);
	}
	lb->len = 0;
}

static void on_output(void *userdata, int stream, const char *buf, size_t len)
{
	struct streamer *s = userdata;
	struct line_buf *lb = &s->lines[stream - 1];

	while (len > 0) {
		const char *nl = memchr(buf, '\n', len);
		size_t line = nl ? (size_t)(nl - buf) : len, room = LOG_LINE_MAX - lb->len;
		size_t take = line < room ? line : room;

		memcpy(lb->buf + lb->len, buf, take);
		lb->len += take;
		buf += take;
		len -= take;
		if (nl && take == line) {
			flush_line(s, stream);
			buf++;
			len--;
		} else if (lb->len == LOG_LINE_MAX) {
			flush_line(s, stream);
		}
	}
}

/* Owns the captured output while Lua strings are made from it: a raised error must not leak it. */
static int result_gc(lua_State *L)
{
	ni_exec_result_free(luaL_checkudata(L, 1, RESULT_MT));
	return 0;
}

/* Checks argv and options of the table at t, before anything is taken; returns argc. */
static lua_Integer check_args(lua_State *L, int t, long *ret_timeout_ms)
{
	lua_Integer argc;

	luaL_checktype(L, t, LUA_TTABLE);
	argc = (lua_Integer)lua_rawlen(L, t);
	luaL_argcheck(L, argc >= 1, t, "argv is empty: exec.run{\"command\", \"arg\", ...}");
	for (lua_Integer i = 1; i <= argc; i++) {
		size_t len;
		const char *s;
		if (lua_rawgeti(L, t, i) != LUA_TSTRING)
			ni_lua_argerror(L, t, "argv[%I] must be a string, got %s", i, luaL_typename(L, -1));
		s = lua_tolstring(L, -1, &len);
		if (strlen(s) != len)
			ni_lua_argerror(L, t, "argv[%I] contains a NUL byte", i);
		lua_pop(L, 1);
	}

	/* Every other key is an option we know: a typo (timout=) must not pass silently. */
	lua_pushnil(L);
	while (lua_next(L, t)) {
		if (lua_type(L, -2) == LUA_TNUMBER && lua_isinteger(L, -2)) {
			lua_Integer i = lua_tointeger(L, -2);
			if (i < 1 || i > argc)
				ni_lua_argerror(L, t, "argv has a hole or a key out of 1..%I: %I", argc, i);
		} else if (lua_type(L, -2) != LUA_TSTRING) {
			ni_lua_argerror(L, t, "unexpected %s key", luaL_typename(L, -2));
		} else {
			const char *k = lua_tostring(L, -2);
			int o = 0;
			while (options[o] && strcmp(options[o], k) != 0)
				o++;
			if (!options[o])
				ni_lua_argerror(L, t, "unknown option '%s'; known: cwd, env, stdin, timeout", k);
		}
		lua_pop(L, 1);
	}

	if (lua_getfield(L, t, "cwd") != LUA_TNIL && lua_type(L, -1) != LUA_TSTRING)
		ni_lua_argerror(L, t, "cwd must be a string, got %s", luaL_typename(L, -1));
	if (lua_getfield(L, t, "stdin") != LUA_TNIL && lua_type(L, -1) != LUA_TSTRING)
		ni_lua_argerror(L, t, "stdin must be a string, got %s", luaL_typename(L, -1));
	*ret_timeout_ms = 0;
	if (lua_getfield(L, t, "timeout") != LUA_TNIL) {
		int64_t ms;
		if (lua_type(L, -1) != LUA_TNUMBER)
			ni_lua_argerror(L, t, "timeout must be a number of seconds, got %s", luaL_typename(L, -1));
		/* the same rule as a step's timeout (ni_timeout_ms): rounded up to 1 ms, at most a year */
		if (ni_timeout_ms(lua_tonumber(L, -1), &ms) < 0)
			ni_lua_argerror(L, t, "timeout must be more than 0 and at most a year of seconds");
		*ret_timeout_ms = (long)ms;
	}
	if (lua_getfield(L, t, "env") != LUA_TNIL) {
		int e = lua_gettop(L);
		if (lua_type(L, e) != LUA_TTABLE)
			ni_lua_argerror(L, t, "env must be a table of NAME = value, got %s", luaL_typename(L, e));
		lua_pushnil(L);
		while (lua_next(L, e)) {
			size_t len;
			const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
			int vt = lua_type(L, -1);
			if (!k || len == 0 || strlen(k) != len || strchr(k, '='))
				ni_lua_argerror(L, t, "env names must be non-empty strings without '='");
			if (vt == LUA_TSTRING) {
				const char *v = lua_tolstring(L, -1, &len);
				if (strlen(v) != len)
					ni_lua_argerror(L, t, "env %s contains a NUL byte", k);
			} else if (vt != LUA_TNUMBER && !(vt == LUA_TBOOLEAN && !lua_toboolean(L, -1))) {
				ni_lua_argerror(L, t, "env %s must be a string, a number or false, got %s", k,
					   luaL_typename(L, -1));
			}
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 4);
	return argc;
}

/*
 * Builds the command's environment: ours with env's entries replacing (or, when false, removing)
 * variables of the same name. Pushes the NULL-terminated array (a userdata) and a table that
 * anchors the strings it points to.
 */
static char **push_envp(lua_State *L, int env)
{
	size_t n = 0, i = 0;
	char **envp;
	int anchor;

	for (char **e = environ; *e; e++)
		n++;
	lua_pushnil(L);
	while (lua_next(L, env)) {
		n++;
		lua_pop(L, 1);
	}
	envp = lua_newuserdatauv(L, (n + 1) * sizeof(char *), 0);
	lua_newtable(L);
	anchor = lua_gettop(L);

	for (char **e = environ; *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq)
			continue;
		lua_pushlstring(L, *e, (size_t)(eq - *e));
		if (lua_rawget(L, env) == LUA_TNIL)
			envp[i++] = *e; /* environ's strings outlive the call */
		lua_pop(L, 1);
	}
	lua_pushnil(L);
	while (lua_next(L, env)) {
		if (lua_type(L, -1) != LUA_TBOOLEAN) {
			const char *value = luaL_tolstring(L, -1, NULL); /* a string or a number, checked before */
			lua_pushfstring(L, "%s=%s", lua_tostring(L, -3), value);
			envp[i++] = (char *)lua_tostring(L, -1);
			lua_rawseti(L, anchor, (lua_Integer)i);
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	envp[i] = NULL;
	return envp;
}

/* A word of a command line as a shell would need it to mean itself: bare when it is plain, else in single quotes. */
static void add_word(luaL_Buffer *b, const char *s, size_t len)
{
	bool plain = len > 0;

	for (size_t i = 0; i < len && plain; i++)
		plain = isalnum((unsigned char)s[i]) || strchr("_@%+=:,./-", s[i]);
	if (plain) {
		luaL_addlstring(b, s, len);
		return;
	}
	luaL_addchar(b, '\'');
	for (size_t i = 0; i < len && i < NI_PLAN_VALUE_MAX; i++) {
		if (s[i] == '\'')
			luaL_addstring(b, "'\\''");
		else
			luaL_addchar(b, s[i]);
	}
	luaL_addstring(b, len > NI_PLAN_VALUE_MAX ? "...'" : "'");
}

/*
 * Check mode: the command is named, not run ("exec: ARGV (not run in plan)"; a sensitive step shows
 * argv[1] only), and the result says so: code 0 and empty output, so the body goes on to plan what
 * follows, and not_run = true.
 */
static int would_exec(lua_State *L, int t, lua_Integer argc, const char *where)
{
	luaL_Buffer b;
	size_t len;
	const char *a;

	luaL_buffinit(L, &b);
	luaL_addstring(&b, "exec");
	if (where) {
		luaL_addstring(&b, " (in ");
		luaL_addstring(&b, where);
		luaL_addchar(&b, ')');
	}
	luaL_addstring(&b, ": ");
	for (lua_Integer i = 1; i <= argc; i++) {
		lua_rawgeti(L, t, i);
		a = lua_tolstring(L, -1, &len);
		lua_pop(L, 1); /* anchored by the argv table; the buffer needs the stack as it left it */
		if (i > 1)
			luaL_addchar(&b, ' ');
		add_word(&b, a, len);
		if (i < argc && ni_lua_ctx(L)->sensitive) {
			luaL_addstring(&b, " (arguments hidden: sensitive step)");
			break;
		}
		if (i < argc && luaL_bufflen(&b) > 16 * NI_PLAN_VALUE_MAX) {
			lua_pushfstring(L, " ... (%I more arguments)", argc - i);
			luaL_addvalue(&b);
			break;
		}
	}
	luaL_addstring(&b, " (not run in plan)");
	luaL_pushresult(&b);
	ni_lua_plan_line(L, lua_tostring(L, -1), true);

	lua_createtable(L, 0, 9);
	lua_pushboolean(L, 1);
	lua_setfield(L, -2, "not_run");
	lua_pushinteger(L, 0);
	lua_setfield(L, -2, "code");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "stdout");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "stderr");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "timed_out");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "truncated");
	lua_pushinteger(L, 0);
	lua_setfield(L, -2, "stdout_dropped");
	lua_pushinteger(L, 0);
	lua_setfield(L, -2, "stderr_dropped");
	lua_pushinteger(L, 0);
	lua_setfield(L, -2, "duration_ms");
	return 1;
}

/* exec.run: fails with nil, msg, errno only when the command could not be started at all. */
int ni_lua_exec_push(lua_State *L, int t, enum ni_act act, const char *where)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	struct ni_exec_opts o = { .capture = true, .capture_limit = CAPTURE_MAX, .cwd = "/" };
	struct ni_exec_result *res;
	struct streamer *s;
	const char **argv;
	lua_Integer argc;
	long timeout_ms;
	int r;

	t = lua_absindex(L, t);
	argc = check_args(L, t, &timeout_ms);
	if (act == NI_ACT_REPORT)
		return would_exec(L, t, argc, where);

	argv = lua_newuserdatauv(L, ((size_t)argc + 1) * sizeof(char *), 0);
	for (lua_Integer i = 1; i <= argc; i++) {
		lua_rawgeti(L, t, i);
		argv[i - 1] = lua_tostring(L, -1); /* anchored by the argv table */
		lua_pop(L, 1);
	}
	argv[argc] = NULL;
	o.argv = argv;
	if (lua_getfield(L, t, "cwd") == LUA_TSTRING)
		o.cwd = lua_tostring(L, -1);
	if (lua_getfield(L, t, "stdin") == LUA_TSTRING) {
		o.stdin_mode = NI_EXEC_STDIN_DATA;
		o.stdin_data = lua_tolstring(L, -1, &o.stdin_len);
	}
	if (lua_getfield(L, t, "env") == LUA_TTABLE)
		o.envp = push_envp(L, lua_gettop(L));
	o.timeout_ms = timeout_ms;
	/* Inside a step with a timeout, a command gets at most the time the step has left. */
	if (ctx->deadline_ms) {
		long left = ctx->deadline_ms - ni_now_ms();
		if (left < 1)
			left = 1;
		if (o.timeout_ms <= 0 || left < o.timeout_ms)
			o.timeout_ms = left;
	}
	o.cancel_fd = ctx->sig_fd;
	/* The line buffers are big: a userdata rather than the C stack. */
	s = lua_newuserdatauv(L, sizeof(*s), 0);
	memset(s, 0, sizeof(*s));
	s->ctx = ctx;
	s->cmd = argv[0];
	if (!ctx->sensitive) {
		o.on_output = on_output;
		o.userdata = s;
	}

	res = lua_newuserdatauv(L, sizeof(*res), 0);
	memset(res, 0, sizeof(*res));
	luaL_setmetatable(L, RESULT_MT);

	r = ni_exec_run(&o, res);
	if (r < 0)
		return ni_lua_fail(L, r, argv[0]);
	ctx->changed = true; /* a command may change anything: its step's lines are not quiet */
	ni_lua_stop_soon(L); /* killed by a stop: the body must not carry on */
	for (int stream = 1; stream <= 2; stream++)
		if (s->lines[stream - 1].len > 0)
			flush_line(s, stream);
	if (res->canceled)
		return luaL_error(L, "interrupted: %s was killed (nodeinit is stopping)", argv[0]);
	if (res->exec_errno) {
		errno = res->exec_errno;
		return luaL_fileresult(L, 0, res->exec_stage == NI_EXEC_STAGE_CWD ? o.cwd : argv[0]);
	}

	lua_createtable(L, 0, 9);
	lua_pushinteger(L, res->code);
	lua_setfield(L, -2, "code");
	if (res->signal) {
		lua_pushinteger(L, res->signal);
		lua_setfield(L, -2, "signal");
	}
	lua_pushlstring(L, res->out ? res->out : "", res->out_len);
	lua_setfield(L, -2, "stdout");
	lua_pushlstring(L, res->err ? res->err : "", res->err_len);
	lua_setfield(L, -2, "stderr");
	lua_pushboolean(L, res->timed_out);
	lua_setfield(L, -2, "timed_out");
	lua_pushboolean(L, res->out_dropped || res->err_dropped);
	lua_setfield(L, -2, "truncated");
	lua_pushinteger(L, (lua_Integer)res->out_dropped);
	lua_setfield(L, -2, "stdout_dropped");
	lua_pushinteger(L, (lua_Integer)res->err_dropped);
	lua_setfield(L, -2, "stderr_dropped");
	lua_pushinteger(L, res->duration_ms);
	lua_setfield(L, -2, "duration_ms");
	ni_exec_result_free(res);
	return 1;
}

static int l_exec_run(lua_State *L)
{
	return ni_lua_exec_push(L, 1, ni_lua_require_phase(L, NI_CAN_CHANGE, "exec.run"), NULL);
}

/* The last non-empty line of s (at most 200 bytes of it), for an error message. */
static void push_last_line(lua_State *L, const char *s, size_t len)
{
	size_t end = len, start;

	while (end > 0 && (s[end - 1] == '\n' || s[end - 1] == '\r' || s[end - 1] == ' '))
		end--;
	start = end;
	while (start > 0 && s[start - 1] != '\n' && end - start < 200)
		start--;
	lua_pushlstring(L, s + start, end - start);
}

/* exec.ok: exec.run that raises unless the command exits 0; returns its stdout and the result table. */
static int l_exec_ok(lua_State *L)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	enum ni_act act = ni_lua_require_phase(L, NI_CAN_CHANGE, "exec.ok");
	const char *cmd;
	lua_Integer code;
	size_t errlen;
	const char *err;

	lua_settop(L, 1);
	if (ni_lua_exec_push(L, 1, act, NULL) > 1)
		return luaL_error(L, "%s", lua_tostring(L, -2));
	lua_replace(L, 2);
	lua_settop(L, 2);
	lua_rawgeti(L, 1, 1);
	cmd = lua_tostring(L, -1);
	lua_getfield(L, 2, "timed_out");
	if (lua_toboolean(L, -1))
		return luaL_error(L, "%s timed out and was killed", cmd);
	lua_getfield(L, 2, "code");
	code = lua_tointeger(L, -1);
	if (code == 0) {
		lua_getfield(L, 2, "stdout");
		lua_pushvalue(L, 2);
		return 2;
	}
	if (lua_getfield(L, 2, "signal") != LUA_TNIL)
		return luaL_error(L, "%s was killed by signal %d", cmd, (int)lua_tointeger(L, -1));
	lua_getfield(L, 2, "stderr");
	err = lua_tolstring(L, -1, &errlen);
	push_last_line(L, err, errlen);
	if (ctx->sensitive || lua_rawlen(L, -1) == 0)
		return luaL_error(L, "%s exited with code %d", cmd, (int)code);
	return luaL_error(L, "%s exited with code %d: %s", cmd, (int)code, lua_tostring(L, -1));
}

static const luaL_Reg exec_funcs[] = {
	{ "ok", l_exec_ok },
	{ "run", l_exec_run },
	{ NULL, NULL },
};

int luaopen_nodeinit_exec(lua_State *L)
{
	if (luaL_newmetatable(L, RESULT_MT)) {
		lua_pushcfunction(L, result_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	luaL_newlib(L, exec_funcs);
	return 1;
}
