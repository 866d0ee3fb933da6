/* The Lua runtime (luart.c) and the exec, ns and yaml bindings: sandbox escapes refused, limits, errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luart.h"
#include "unit.h"

struct fixture {
	struct ni_ctx ctx;
	char *log_buf;
	size_t log_len;
	lua_State *L;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->ctx.proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	f->ctx.root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	f->ctx.proc_sys_fd = -1;
	f->ctx.sig_fd = -1;
	f->ctx.step = "unit/step";
	f->ctx.phase = NI_PHASE_STEP; /* these tests call primitives as a step body does */
	f->ctx.log = (struct ni_log){ .format = NI_LOG_TEXT, .min_level = NI_LOG_INFO };
	f->ctx.log.out = open_memstream(&f->log_buf, &f->log_len);
	f->L = ni_lua_new(&f->ctx);
	if (!f->L || !f->ctx.log.out)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ni_lua_close(f->L);
	fclose(f->ctx.log.out);
	free(f->log_buf);
	close(f->ctx.proc_fd);
	close(f->ctx.root_fd);
	free(f);
	return 0;
}

/* Runs src in a fresh environment; leaves its first result (or the error message) on top. */
static int run_in(lua_State *L, const char *src)
{
	int r;

	lua_settop(L, 0);
	ni_lua_push_env(L);
	r = ni_lua_load(L, "=test", src, strlen(src), -1);
	if (r == LUA_OK)
		r = ni_lua_pcall(L, 0, 1);
	return r;
}

static const char *ok(struct fixture *f, const char *src)
{
	if (run_in(f->L, src) != LUA_OK)
		fail_msg("%s\n  failed: %s", src, lua_tostring(f->L, -1));
	return lua_tostring(f->L, -1);
}

/* src must fail, with needle in the message. */
static void refused(struct fixture *f, const char *src, const char *needle)
{
	const char *msg;

	if (run_in(f->L, src) == LUA_OK)
		fail_msg("%s\n  ran, but should have been refused", src);
	msg = lua_tostring(f->L, -1);
	if (!msg || !strstr(msg, needle))
		fail_msg("%s\n  refused with '%s', expected '%s'", src, msg ? msg : "(no message)", needle);
}

static void expect(struct fixture *f, const char *src, const char *want)
{
	const char *got = ok(f, src);

	if (!got || strcmp(got, want) != 0)
		fail_msg("%s\n  gave '%s', expected '%s'", src, got ? got : "(not a string)", want);
}

static void test_escapes_refused(void **state)
{
	struct fixture *f = *state;

	refused(f, "io.open('/etc/passwd')", "global 'io'");
	refused(f, "io.popen('id')", "global 'io'");
	refused(f, "os.execute('true')", "field 'execute'");
	refused(f, "os.exit(0)", "field 'exit'");
	refused(f, "os.remove('/tmp/x')", "field 'remove'");
	refused(f, "os.rename('/tmp/x', '/tmp/y')", "field 'rename'");
	refused(f, "os.tmpname()", "field 'tmpname'");
	refused(f, "return package.loadlib('libc.so.6', 'system')", "global 'package'");
	refused(f, "return package.path", "global 'package'");
	refused(f, "require('os')", "module 'os' not found");
	refused(f, "require('io')", "module 'io' not found");
	refused(f, "require('debug')", "module 'debug' not found");
	refused(f, "require('/etc/passwd')", "module '/etc/passwd' not found");
	refused(f, "require('./evil')", "recipes can require only nodeinit.*");
	refused(f, "debug.getregistry()", "global 'debug'");
	refused(f, "dofile('/etc/passwd')", "global 'dofile'");
	refused(f, "loadfile('/etc/passwd')", "global 'loadfile'");
	refused(f, "return string.dump(print)", "field 'dump'");
	refused(f, "return (''):dump()", "method 'dump'");
	refused(f, "collectgarbage('stop')", "invalid option 'stop'");
	refused(f, "collectgarbage('generational')", "invalid option 'generational'");
	refused(f, "collectgarbage('setpause', 1000)", "invalid option 'setpause'");
	/* The shared string metatable is hidden, so no recipe can change every string's methods. */
	refused(f, "getmetatable('').__index.upper = nil", "index a boolean value");
	expect(f, "return tostring(getmetatable(''))", "false");
	refused(f, "setmetatable('', {})", "bad argument #1 to 'setmetatable'");
	/* Bytecode: load() refuses binary chunks, and the "b" mode itself. */
	refused(f, "return load(string.char(27) .. 'LuaT\\0\\25\\147\\r\\n\\26\\n', 'x', 'b')", "only text chunks");
	expect(f, "local f, err = load(string.char(27) .. 'LuaT\\0\\25\\147\\r\\n\\26\\n'); return tostring(f) .. ' ' .. err",
	       "nil attempt to load a binary chunk (mode is 't')");
	/* load of text works, with this environment by default, or the one given. */
	expect(f, "x = 'mine'; return load('return x')()", "mine");
	expect(f, "return load('return x', 'c', 't', {x = 'given'})()", "given");
}

/* Two environments of one state: globals, libraries and modules changed in one are untouched in the other. */
static void test_env_isolation(void **state)
{
	struct fixture *f = *state;
	lua_State *L = f->L;
	const char *a = "leaked = 'yes'; string.rep = nil; table.insert = nil; log.info = nil; exec = nil;"
			"yaml.decode = nil; os.time = nil; _G.print = nil; return 'a done'";
	const char *b = "return table.concat({tostring(leaked), type(string.rep), type(table.insert), type(log.info),"
			"type(exec), type(yaml.decode), type(os.time), type(print),"
			"tostring(require('nodeinit.log') == log), type(require('nodeinit.exec').run)}, ' ')";
	int env_a, env_b;

	lua_settop(L, 0);
	ni_lua_push_env(L);
	env_a = lua_gettop(L);
	ni_lua_push_env(L);
	env_b = lua_gettop(L);
	assert_int_equal(ni_lua_load(L, "=a", a, strlen(a), env_a), LUA_OK);
	assert_int_equal(ni_lua_pcall(L, 0, 1), LUA_OK);
	assert_string_equal(lua_tostring(L, -1), "a done");
	lua_pop(L, 1);
	assert_int_equal(ni_lua_load(L, "=b", b, strlen(b), env_b), LUA_OK);
	assert_int_equal(ni_lua_pcall(L, 0, 1), LUA_OK);
	assert_string_equal(lua_tostring(L, -1), "nil function function function table function function function true function");
	lua_settop(L, 0);
	/* And a later environment too. */
	expect(f, "return type(string.rep) .. type(exec)", "functiontable");
}

/* A runaway loop ends with a plain message, even when the loop keeps catching its own stop with pcall. */
static void test_instruction_limit(void **state)
{
	struct fixture *f = *state;

	refused(f, "while true do pcall(function() while true do end end) end", "instruction limit exceeded");
	/* The state is fine afterwards, with a fresh budget. */
	expect(f, "local n = 0 for i = 1, 1000 do n = n + i end return tostring(n)", "500500");
}

static void test_memory_limit(void **state)
{
	struct fixture *f = *state;

	refused(f, "local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1000) .. i end", "memory limit exceeded (64 MiB)");
	refused(f, "return ('x'):rep(100 * 1024 * 1024)", "memory limit exceeded");
	expect(f, "return ('ok'):rep(2)", "okok");
}

static void test_traceback(void **state)
{
	struct fixture *f = *state;

	refused(f, "local function inner() error('boom') end\nlocal function outer() inner() end\nouter()",
		"test:1: boom\nstack traceback:");
	refused(f, "local function inner() error('boom') end\nlocal function outer() inner() end\nouter()",
		"in upvalue 'inner'");
	refused(f, "error({})", "(error object is a table value)");
	refused(f, "return 1 +", "test:1:");
}

static void test_require_and_print(void **state)
{
	struct fixture *f = *state;

	expect(f, "return tostring(require('nodeinit.exec') == exec and require('nodeinit.ns') == ns and "
		  "require('nodeinit.yaml') == yaml and require('nodeinit.log') == log)", "true");
	ok(f, "print('hello', 42, nil)");
	fflush(f->ctx.log.out);
	/* print's tab separators are control bytes: the log shows them escaped. */
	assert_non_null(strstr(f->log_buf, "hello\\t42\\tnil"));
	assert_non_null(strstr(f->log_buf, "step=unit/step"));
}

static void test_exec_run(void **state)
{
	struct fixture *f = *state;

	expect(f, "local r = exec.run{'sh', '-c', 'echo out; echo err >&2; exit 3'}\n"
		  "return table.concat({r.code, r.stdout, r.stderr, tostring(r.signal), tostring(r.timed_out),"
		  "tostring(r.truncated), r.stdout_dropped}, '|')",
	       "3|out\n|err\n|nil|false|false|0");
	/* Lines are streamed to the log with the step, also a last line without its newline. */
	fflush(f->ctx.log.out);
	assert_non_null(strstr(f->log_buf, "out step=unit/step cmd=sh stream=stdout"));
	assert_non_null(strstr(f->log_buf, "err step=unit/step cmd=sh stream=stderr"));
	ok(f, "exec.run{'printf', 'no newline at the end'}");
	fflush(f->ctx.log.out);
	assert_non_null(strstr(f->log_buf, "no newline at the end step=unit/step"));

	expect(f, "local r = exec.run{'sh', '-c', 'kill -KILL $$'} return r.code .. ' ' .. r.signal", "137 9");
	expect(f, "return exec.run{'cat', stdin = 'to stdin'}.stdout", "to stdin");
	expect(f, "return exec.run{'pwd'}.stdout", "/\n");
	expect(f, "return exec.run{'pwd', cwd = '/proc'}.stdout", "/proc\n");
	setenv("NI_TEST_KEPT", "kept", 1);
	setenv("NI_TEST_GONE", "there", 1);
	expect(f, "return exec.run{'sh', '-c', 'echo $NI_TEST_KEPT ${NI_TEST_GONE-unset} $NI_A $NI_N',"
		  "env = {NI_A = 'a b', NI_N = 7, NI_TEST_GONE = false}}.stdout", "kept unset a b 7\n");
	expect(f, "local r = exec.run{'sleep', '10', timeout = 0.2}\n"
		  "return tostring(r.timed_out) .. ' ' .. r.code .. ' ' .. r.signal", "true 137 9");
	expect(f, "local r = exec.run{'head', '-c', '3000000', '/dev/zero'}\n"
		  "return table.concat({#r.stdout, tostring(r.truncated), r.stdout_dropped}, ' ')",
	       "1048576 true 1951424");

	/* Not runnable: Lua's convention, nil, message, errno. */
	expect(f, "local r, msg, e = exec.run{'ni-no-such-command'} return tostring(r) .. '|' .. msg .. '|' .. e",
	       "nil|ni-no-such-command: No such file or directory|2");
	expect(f, "local r, msg = exec.run{'true', cwd = '/ni-no-such-dir'} return msg",
	       "/ni-no-such-dir: No such file or directory");
}

static void test_exec_misuse(void **state)
{
	struct fixture *f = *state;

	refused(f, "exec.run{}", "argv is empty");
	refused(f, "exec.run('ls')", "table expected");
	refused(f, "exec.run{'echo', 1}", "argv[2] must be a string");
	refused(f, "exec.run{'echo', nil, 'x'}", "argv");
	refused(f, "exec.run{'echo', timout = 1}", "unknown option 'timout'");
	refused(f, "exec.run{'echo', timeout = -1}", "timeout must be more than 0");
	refused(f, "exec.run{'echo', timeout = '1'}", "timeout must be a number");
	refused(f, "exec.run{'echo', env = {['A=B'] = 'x'}}", "env names");
	refused(f, "exec.run{'echo', env = {A = {}}}", "env A must be a string");
	refused(f, "exec.run{'echo', stdin = 5}", "stdin must be a string");
	refused(f, "exec.run{'echo', cwd = true}", "cwd must be a string");
	refused(f, "exec.run{'echo\\0x'}", "NUL");
}

static void test_exec_ok_sensitive_cancel(void **state)
{
	struct fixture *f = *state;
	size_t before;
	int p[2];

	expect(f, "return (exec.ok{'echo', 'fine'})", "fine\n");
	refused(f, "exec.ok{'sh', '-c', 'echo first >&2; echo why >&2; exit 4'}", "sh exited with code 4: why");
	refused(f, "exec.ok{'ni-no-such-command'}", "ni-no-such-command: No such file or directory");
	refused(f, "exec.ok{'sleep', '5', timeout = 0.1}", "sleep timed out");

	/* Sensitive: no output reaches the log, and exec.ok keeps stderr out of its message. */
	fflush(f->ctx.log.out);
	before = f->log_len;
	f->ctx.sensitive = true;
	ok(f, "exec.run{'echo', 'secret-value'}");
	refused(f, "exec.ok{'sh', '-c', 'echo secret-value >&2; exit 1'}", "sh exited with code 1");
	assert_null(strstr(lua_tostring(f->L, -1), "secret-value"));
	f->ctx.sensitive = false;
	fflush(f->ctx.log.out);
	assert_null(strstr(f->log_buf + before, "secret-value"));

	/* A pending stop signal (the signalfd in nodeinit) kills the command and raises. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	f->ctx.sig_fd = p[0];
	refused(f, "exec.run{'sleep', '10'}", "interrupted");
	f->ctx.sig_fd = -1;
	close(p[0]);
	close(p[1]);
}

static void test_yaml_decode(void **state)
{
	struct fixture *f = *state;

	expect(f, "local v = yaml.decode('a: 1\\nb: 1.5\\nc: true\\nd: ~\\ne: \"1\"\\nf: [x, 2]\\ng: {h: i}\\n')\n"
		  "return table.concat({math.type(v.a), math.type(v.b), type(v.c), tostring(v.d == yaml.null),"
		  "type(v.e), #v.f, v.f[1], v.g.h}, ' ')",
	       "integer float boolean true string 2 x i");
	expect(f, "return tostring(yaml.null) .. ' ' .. tostring(getmetatable(yaml.null))", "yaml.null false");
	expect(f, "local v = yaml.decode('') return tostring(v == yaml.null)", "true");
	expect(f, "local v = yaml.decode('[1, ~, 3]') return #v .. tostring(v[2] == yaml.null)", "3true");
	expect(f, "local v = yaml.decode('a: &x {k: v}\\nb: *x\\n') v.a.k = 'changed' return v.b.k", "v");
	/* Positions: a side table from each mapping or sequence to where it starts. */
	expect(f, "local v, pos = yaml.decode('recipe: r\\nsteps:\\n  - name: a\\n    exec: [ls]\\n\\n  - name: b\\n',"
		  "{positions = true})\n"
		  "return table.concat({pos[v].line, pos[v.steps[1]].line, pos[v.steps[2]].line, pos[v.steps[2]].column,"
		  "pos[v.steps[1].exec].line, pos[v.steps[1].exec].column}, ' ')",
	       "1 3 6 5 4 11");
	/* Positions down to a depth: the document's table is 0; deeper tables have none. */
	expect(f, "local v, pos = yaml.decode('recipe: r\\nsteps:\\n  - name: a\\n    exec: [ls]\\n    sysctl: {k: 1}\\n',"
		  "{positions = 2})\n"
		  "return table.concat({pos[v].line, pos[v].keys.steps, pos[v.steps].line, pos[v.steps[1]].line,"
		  "pos[v.steps[1]].keys.exec, tostring(pos[v.steps[1].exec]), tostring(pos[v.steps[1].sysctl])}, ' ')",
	       "1 2 3 3 4 nil nil");
	expect(f, "local v, pos = yaml.decode('a: {b: {c: 1}}\\n', {positions = 0})\n"
		  "return tostring(pos[v].line) .. ' ' .. tostring(pos[v.a]) .. ' ' .. tostring(pos[v.a.b])",
	       "1 nil nil");
	refused(f, "yaml.decode('a: 1', {positions = -1})", "positions must be a boolean or a depth");
	refused(f, "yaml.decode('a: 1', {positions = 1.5})", "positions must be a boolean or a depth");
	/* Bad input: nil and a message with line and column. */
	expect(f, "local v, err = yaml.decode('a: 1\\nb: [1\\n') return tostring(v) .. ' ' .. err",
	       "nil yaml: line 3, column 1: did not find expected ',' or ']' (while parsing a flow sequence at line 2, column 4)");
	expect(f, "return select(2, yaml.decode('a: 1\\nb: 2\\na: 3\\n'))", "yaml: line 3, column 1: duplicate key 'a'");
	expect(f, "return select(2, yaml.decode('? [k]\\n: v\\n'))", "yaml: line 1, column 3: mapping keys must be scalars");
	expect(f, "return select(2, yaml.decode('a: 1\\n---\\nb: 2\\n'))",
	       "yaml: line 2, column 1: a second document in the stream (\"---\"): give one document only");
	refused(f, "yaml.decode({})", "string expected");
	refused(f, "yaml.decode('', {position = true})", "unknown option");
}

static void test_ns_misuse_and_failures(void **state)
{
	struct fixture *f = *state;
	char src[256];

	refused(f, "ns.run({netns = '../x'}, print)", "bad netns name '../x'");
	refused(f, "ns.run({netns = 'a/b'}, print)", "bad netns name");
	refused(f, "ns.run({}, print)", "either netns = NAME or pid = PID");
	refused(f, "ns.run({netns = 'x', pid = 1}, print)", "either netns = NAME or pid = PID");
	refused(f, "ns.run({netns = 'x', namespaces = {'net'}}, print)", "namespaces goes with pid");
	refused(f, "ns.run({pid = 1, namespaces = {'mnt'}}, print)", "use ns.exec");
	refused(f, "ns.run({pid = 1, namespaces = {'pid'}}, print)", "use ns.exec");
	refused(f, "ns.run({pid = 1, namespaces = {'user'}}, print)", "unknown namespace 'user'");
	refused(f, "ns.run({pid = 1, namespaces = {}}, print)", "non-empty list");
	refused(f, "ns.run({pid = -1}, print)", "pid must be a positive integer");
	refused(f, "ns.run({pid = 1, netnz = 'x'}, print)", "unknown key 'netnz'");
	refused(f, "ns.run({netns = 'x'})", "function expected");
	refused(f, "ns.exec({netns = 'x'}, 'ls')", "table expected");

	/* Not there: nil, message, errno, and the function never runs. */
	expect(f, "local ran = false\n"
		  "local r, msg, e = ns.run({netns = 'ni-no-such-netns'}, function() ran = true end)\n"
		  "return table.concat({tostring(r), msg, e, tostring(ran)}, '|')",
	       "nil|/run/netns/ni-no-such-netns: No such file or directory|2|false");
	expect(f, "local r, msg = ns.exec({pid = 999999999}, {'true'}) return msg", "/proc/999999999: No such process");

	/* Into our own namespaces (nothing switches): results come back, errors go through with their place. */
	snprintf(src, sizeof(src), "return table.concat({ns.run({pid = %d}, function(a, b) return a + b, 'x' end, 1, 2)}, ' ')",
		 (int)getpid());
	expect(f, src, "3 x");
	snprintf(src, sizeof(src), "ns.run({pid = %d, namespaces = {'net', 'uts'}}, function() error('inside') end)",
		 (int)getpid());
	refused(f, src, "test:1: inside");
	snprintf(src, sizeof(src), "return ns.exec({pid = %d}, {'echo', 'hi'}).stdout", (int)getpid());
	expect(f, src, "hi\n");
}

/* At a tiny memory cap, a new environment or an embedded module is an error with a message, never an abort. */
static void test_entries_out_of_memory(void **state)
{
	struct fixture *f = *state;
	bool env_ok = false, mod_ok = false;

	for (size_t headroom = 0; headroom <= (1u << 20) && !(env_ok && mod_ok); headroom += 1024) {
		lua_State *L = ni_lua_new(&f->ctx);
		int r;

		assert_non_null(L);
		ni_lua_limit_mem(L, headroom);
		r = ni_lua_push_env(L);
		if (r == LUA_OK)
			env_ok = true;
		else
			assert_non_null(strstr(lua_tostring(L, -1), "memory"));
		lua_settop(L, 0);
		r = ni_lua_require_embedded(L, "recipe");
		if (r == LUA_OK)
			mod_ok = lua_istable(L, -1);
		else
			assert_non_null(strstr(lua_tostring(L, -1), "memory"));
		ni_lua_close(L);
	}
	assert_true(env_ok && mod_ok);
}

/* Load time is pure: outside a step every primitive raises, naming itself; inside one it acts. */
static void test_phase_load_refuses(void **state)
{
	static const char *const calls[][2] = {
		{ "sysctl.get('kernel.hostname')", "sysctl.get: only inside a step" },
		{ "sysctl.set('kernel.domainname', 'x')", "sysctl.set: only inside a step" },
		{ "file.read('/etc/hostname')", "file.read: only inside a step" },
		{ "file.exists('/etc/hostname')", "file.exists: only inside a step" },
		{ "file.write('/nonexistent-dir/x', 'x')", "file.write: only inside a step" },
		{ "file.ensure_line('/nonexistent-dir/x', 'x')", "file.ensure_line: only inside a step" },
		{ "file.mkdir('/nonexistent-dir/x')", "file.mkdir: only inside a step" },
		{ "file.remove('/nonexistent-dir/x')", "file.remove: only inside a step" },
		{ "exec.run{'true'}", "exec.run: only inside a step" },
		{ "exec.ok{'true'}", "exec.ok: only inside a step" },
		{ "ns.exec({netns = 'x'}, {'true'})", "ns.exec: only inside a step" },
		{ "ns.run({netns = 'x'}, print)", "ns.run: only inside a step" },
		{ "kube.node()", "kube.node: only inside a step" },
		/* misuse at load is still "only inside a step": no argument is looked at first */
		{ "exec.run()", "exec.run: only inside a step" },
	};
	struct fixture *f = *state;
	char where[128];

	for (int check_mode = 0; check_mode <= 1; check_mode++) {
		f->ctx.phase = NI_PHASE_LOAD;
		f->ctx.check_mode = check_mode;
		for (size_t i = 0; i < NI_ELEMENTSOF(calls); i++) {
			snprintf(where, sizeof(where), "test:1: %s", calls[i][1]);
			refused(f, calls[i][0], where);
		}
	}
	/* what touches nothing stays usable at load */
	expect(f, "return tostring(sysctl.valid('net.ipv4.ip_forward')) .. yaml.decode('a: 1').a", "true1");
	ok(f, "log.info('at load')");
	f->ctx.check_mode = false;

	/* ni_lua_pcall_step runs its function in the step phase, and puts the phase back */
	lua_settop(f->L, 0);
	ni_lua_push_env(f->L);
	assert_int_equal(ni_lua_load(f->L, "=test", "return file.exists('/')", 23, -1), LUA_OK);
	assert_int_equal(ni_lua_pcall_step(f->L, 0, 1), LUA_OK);
	assert_true(lua_toboolean(f->L, -1));
	assert_int_equal(f->ctx.phase, NI_PHASE_LOAD);
}

/* __gc is not available to recipes; a __gc added to a metatable after setmetatable is never called. */
static void test_no_finalizers(void **state)
{
	struct fixture *f = *state;

	refused(f, "setmetatable({}, {__gc = function() end})", "test:1: __gc is not available to recipes");
	refused(f, "setmetatable({}, {__gc = false})", "__gc is not available to recipes");
	/* Lua looks __gc up raw: one an __index would hand out is no finalizer */
	expect(f, "local mt = setmetatable({}, {__index = {__gc = function() hit = true end}})\n"
		  "do local t = setmetatable({}, mt) end collectgarbage() collectgarbage() return tostring(hit)", "nil");
	expect(f, "local mt = {} do local t = setmetatable({}, mt) end\n"
		  "mt.__gc = function() hit = true end\n"
		  "collectgarbage() collectgarbage() return tostring(hit)", "nil");
	/* everything else setmetatable did still works */
	expect(f, "return setmetatable({}, {__index = {a = 'A'}}).a", "A");
	expect(f, "local t = setmetatable({}, {}) return tostring(getmetatable(setmetatable(t, nil)))", "nil");
	refused(f, "setmetatable(setmetatable({}, {__metatable = 1}), {})", "cannot change a protected metatable");
	refused(f, "setmetatable('', {})", "bad argument #1 to 'setmetatable' (table expected, got string)");
	refused(f, "setmetatable({}, 1)", "bad argument #2 to 'setmetatable' (nil or table expected");
}

/* plan's check mode: commands are named in the plan, not run, and their result says so. */
static void test_check_mode_exec(void **state)
{
	struct fixture *f = *state;
	struct ni_buf out = NI_BUF_INIT(0);
	struct ni_plan_sink sink = { .out = &out };
	const char *build = getenv("BUILD");
	char rel[256], dir[PATH_MAX], src[1024 + 2 * PATH_MAX], *text;

	/* Under the build dir (never /tmp), as an absolute path: file.* takes host paths. */
	snprintf(rel, sizeof(rel), "%s/t", build ? build : "build");
	mkdir(rel, 0755);
	snprintf(rel, sizeof(rel), "%s/t/unit-lua-check", build ? build : "build");
	mkdir(rel, 0755);
	assert_non_null(realpath(rel, dir));
	snprintf(src, sizeof(src), "%s/ran", dir);
	unlink(src);
	f->ctx.check_mode = true;
	f->ctx.plan = &sink;
	snprintf(src, sizeof(src),
		 "local r = exec.run{'sh', '-c', 'touch %s/ran', timeout = 5}\n"
		 "local out, r2 = exec.ok{'touch', '%s/ran'}\n"
		 "local r3 = ns.exec({netns = 'blue'}, {'ip', 'link'})\n"
		 "must(file.exists('/'))\n"
		 "return table.concat({r.code, r.stdout, r.stderr, tostring(r.not_run), tostring(r.timed_out),"
		 " tostring(r.truncated), r.stdout_dropped, r.duration_ms, out, tostring(r2.not_run), tostring(r3.not_run)}, '|')",
		 dir, dir);
	expect(f, src, "0|||true|false|false|0|0||true|true");
	snprintf(src, sizeof(src), "%s/ran", dir);
	assert_int_equal(access(src, F_OK), -1); /* nothing ran */
	text = ni_buf_steal(&out, NULL);
	snprintf(src, sizeof(src),
		 "    exec: sh -c 'touch %s/ran' (not run in plan)\n"
		 "    exec: touch %s/ran (not run in plan)\n"
		 "    exec (in netns blue): ip link (not run in plan)\n",
		 dir, dir);
	assert_string_equal(text, src);
	free(text);

	/* a later change says it depends on the command; a sensitive step shows argv[1] only */
	out = NI_BUF_INIT(0);
	sink = (struct ni_plan_sink){ .out = &out };
	f->ctx.sensitive = true;
	snprintf(src, sizeof(src), "exec.run{'curl', '-H', 'token: s3cret'} file.remove('%s/never')", dir);
	ok(f, src);
	f->ctx.sensitive = false;
	text = ni_buf_steal(&out, NULL);
	snprintf(src, sizeof(src),
		 "    exec: curl (arguments hidden: sensitive step) (not run in plan)\n"
		 "    (after exec: the lines below depend on what the command does)\n"
		 "    file %s/never: absent -> absent (same)\n", dir);
	assert_string_equal(text, src);
	free(text);

	/* a step's lines are bounded: past NI_PLAN_LINES_MAX they are only counted */
	out = NI_BUF_INIT(0);
	sink = (struct ni_plan_sink){ .out = &out };
	ok(f, "for i = 1, 1005 do exec.run{'true', '\\27[2J\\n'} end");
	assert_int_equal(sink.lines, 1005);
	assert_int_equal(sink.dropped, 5);
	text = ni_buf_steal(&out, NULL);
	/* what a recipe passes is escaped: no control byte reaches the plan */
	assert_non_null(strstr(text, "    exec: true '\\x1b[2J\\n' (not run in plan)\n"));
	assert_null(strchr(text, '\x1b'));
	free(text);
	f->ctx.plan = NULL;
	f->ctx.check_mode = false;
}

static void test_timeout_ms(void **state)
{
	int64_t ms = -5;

	(void)state;
	assert_int_equal(ni_timeout_ms(0.0001, &ms), 0);
	assert_int_equal(ms, 1);
	assert_int_equal(ni_timeout_ms(2.5, &ms), 0);
	assert_int_equal(ms, 2500);
	assert_int_equal(ni_timeout_ms(NI_TIMEOUT_MAX_S, &ms), 0);
	assert_int_equal(ms, (int64_t)NI_TIMEOUT_MAX_S * 1000);
	ms = -5;
	assert_int_equal(ni_timeout_ms(NI_TIMEOUT_MAX_S + 0.5, &ms), -EINVAL);
	assert_int_equal(ni_timeout_ms(0, &ms), -EINVAL);
	assert_int_equal(ni_timeout_ms(-1, &ms), -EINVAL);
	assert_int_equal(ni_timeout_ms(1.0 / 0.0, &ms), -EINVAL);
	assert_int_equal(ni_timeout_ms(0.0 / 0.0, &ms), -EINVAL);
	assert_int_equal(ms, -5); /* untouched on error */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_escapes_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_isolation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_instruction_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_traceback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_require_and_print, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_misuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_ok_sensitive_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_yaml_decode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ns_misuse_and_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entries_out_of_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_phase_load_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_finalizers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_mode_exec, setup, teardown),
		cmocka_unit_test(test_timeout_ms),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
