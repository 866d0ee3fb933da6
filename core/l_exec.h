/* What nodeinit.exec shares with other bindings: ns.exec runs exec.run inside another namespace. */
#ifndef NI_L_EXEC_H
#define NI_L_EXEC_H

#include <lua.h>

/*
 * exec.run itself over the argv-and-options table at index t: pushes what exec.run returns
 * (a result table, or nil, message, errno) and returns how many values it pushed. Raises on misuse.
 */
int ni_lua_exec_push(lua_State *L, int t);

#endif
