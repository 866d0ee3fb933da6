/* What nodeinit.exec shares with other bindings: ns.exec runs exec.run inside another namespace. */
#ifndef NI_L_EXEC_H
#define NI_L_EXEC_H

#include <lua.h>

#include "luart.h"

/*
 * exec.run itself over the argv-and-options table at index t: pushes what exec.run returns
 * (a result table, or nil, message, errno) and returns how many values it pushed. Raises on misuse.
 * act is what ni_lua_require_phase answered the caller: NI_ACT_REPORT names the command in the
 * plan ("exec (in WHERE): ..." when where is not NULL) and pushes a result with not_run = true.
 */
int ni_lua_exec_push(lua_State *L, int t, enum ni_act act, const char *where);

#endif
