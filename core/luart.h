/* The embedded Lua runtime: a sandboxed state, fresh environments, guarded calls. */
#ifndef NI_LUART_H
#define NI_LUART_H

#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"

#define NI_LUA_MEM_MAX (64u << 20)        /* bytes a state may hold */
#define NI_LUA_INSTR_MAX 2000000000L      /* VM instructions per guarded call */

/* A state with nodeinit's modules, the safe libraries and the limits; NULL when out of memory. */
lua_State *ni_lua_new(struct ni_ctx *ctx);
void ni_lua_close(lua_State *L);

/* Caps L's memory at what it holds now plus headroom bytes (tests: running out anywhere must be an error). */
void ni_lua_limit_mem(lua_State *L, size_t headroom);

/* The context a binding acts on (stored in the registry by ni_lua_new). */
struct ni_ctx *ni_lua_ctx(lua_State *L);

/*
 * Pushes a fresh environment: the safe base functions, copies of string, table, math, utf8,
 * coroutine and a few os functions, nodeinit's modules as globals, and a require that only
 * knows nodeinit.*. Each chunk gets its own, so one recipe cannot change another's globals.
 */
int ni_lua_push_env(lua_State *L); /* in a protected call; a LUA_* status, the error message pushed instead */

/*
 * Loads a text chunk (binary chunks are refused) with the environment at env_idx as its _ENV.
 * Pushes the function, or an error message; returns a LUA_* status.
 */
int ni_lua_load(lua_State *L, const char *chunkname, const char *src, size_t len, int env_idx);

/*
 * What runs when. Every primitive asks first, with what it needs:
 *   NI_CAN_READ    reads the host (file.read, file.exists, sysctl.get, host.*, entering namespaces);
 *   NI_CAN_CHANGE  changes the host or runs a command (sysctl.set, file.write, exec.*, sleep, ...).
 * Outside a step (ctx->phase is NI_PHASE_LOAD: a recipe file's top-level code in every command, a
 * finalizer, lua_close) both raise "<what>: only inside a step" with the caller's file:line, so a
 * load never depends on or touches the host. Inside a step it returns NI_ACT_DO, or NI_ACT_REPORT
 * for NI_CAN_CHANGE in plan's check mode: then the caller changes nothing and runs nothing, reports
 * with ni_lua_plan_line what it would do (current -> desired), and returns what it would have returned.
 */
#define NI_CAN_READ (1u << 0)
#define NI_CAN_CHANGE (1u << 1)
enum ni_act {
	NI_ACT_DO,
	NI_ACT_REPORT,
};
enum ni_act ni_lua_require_phase(lua_State *L, unsigned need, const char *what);

/* ni_lua_pcall for a step's own code (its body, check or describe): the phase is NI_PHASE_STEP meanwhile. */
int ni_lua_pcall_step(lua_State *L, int nargs, int nresults);

/*
 * Check mode: adds one line (escaped on output) to the running step's plan, when plan
 * collects them. command: the line names a command that was not run; the first other line after it
 * is preceded by a note that it depends on what the command does. A step's lines past
 * NI_PLAN_LINES_MAX are counted, not kept (plan says how many).
 */
#define NI_PLAN_LINES_MAX 1000
void ni_lua_plan_line(lua_State *L, const char *line, bool command);

/* Adds a value to a plan line being built: "(sensitive)" in a sensitive step; else cut after
 * NI_PLAN_VALUE_MAX bytes ("..." says so), in double quotes when quote is set. */
#define NI_PLAN_VALUE_MAX 200
void ni_lua_plan_value(luaL_Buffer *b, const char *v, size_t len, bool quote);

/* Pushes the embedded module lua/<name>.lua, loaded once, trusted, in a protected call; or an error message. */
int ni_lua_require_embedded(lua_State *L, const char *name);

/* A stop signal (SIGTERM, SIGINT) waiting on ctx->sig_fd; it is left there for the run loop to read. */
bool ni_stop_pending(const struct ni_ctx *ctx);

/*
 * After a primitive that waited (exec.run): when a stop signal is pending, the count hook raises at
 * the next VM instruction, and again after each pcall that catches it, so the step's body cannot
 * carry on as if the command had finished.
 */
void ni_lua_stop_soon(lua_State *L);

/*
 * A timeout in seconds (a step's, exec.run's) as whole milliseconds, rounded up (0.0001 is 1 ms).
 * -EINVAL unless it is more than 0 and at most NI_TIMEOUT_MAX_S (NaN and infinities are not).
 */
#define NI_TIMEOUT_MAX_S (366 * 86400)
int ni_timeout_ms(double seconds, int64_t *ret_ms);

/*
 * lua_pcall with a traceback handler and a fresh instruction budget. On error the message on top
 * says what happened, with a traceback; a hit memory or instruction limit says so plainly.
 */
int ni_lua_pcall(lua_State *L, int nargs, int nresults);

/*
 * Pushes a userdata holding one malloc'd pointer (initially NULL) that its __gc frees: a result
 * waiting to be pushed is not leaked when pushing it raises (out of memory).
 */
char **ni_lua_box_new(lua_State *L);

/* luaL_argerror with a formatted message (misuse raises, naming the argument). */
int ni_lua_argerror(lua_State *L, int arg, const char *fmt, ...); /* lua_pushfstring formats */

/* Lua's OS-failure convention: pushes nil, "<what>: <strerror>", errno; r is -errno. */
int ni_lua_fail(lua_State *L, int r, const char *what);

/* Module openers, one per binding file (l_<name>.c). */
int luaopen_nodeinit_exec(lua_State *L);
int luaopen_nodeinit_file(lua_State *L);
int luaopen_nodeinit_host(lua_State *L);
int luaopen_nodeinit_log(lua_State *L);
int luaopen_nodeinit_ns(lua_State *L);
int luaopen_nodeinit_sysctl(lua_State *L);
int luaopen_nodeinit_yaml(lua_State *L);

#endif
