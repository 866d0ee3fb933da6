/* The global names a piece of Lua source can mention (what a step's fingerprint covers). Pure: no Lua state. */
#ifndef NI_LUANAMES_H
#define NI_LUANAMES_H

#include <stddef.h>

typedef void (*ni_name_fn)(void *ud, const char *name, size_t len);

/*
 * The identifiers of a function's own source text that can name a global: not a keyword, not a
 * field after '.' or ':', not inside a string or a comment. A cheap lexer, not a parser: a local or
 * a table key that shares a global's name also counts (a step then re-runs when that global changes,
 * never the other way round).
 */
void ni_lua_global_names(const char *s, size_t n, ni_name_fn fn, void *ud);

#endif
