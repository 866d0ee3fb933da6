/* Step fingerprints: THE canonical material of a step (what defines it) and its SHA-256. */
#ifndef NI_FINGERPRINT_H
#define NI_FINGERPRINT_H

#include <lua.h>
#include <stddef.h>

#include "digest.h"

/*
 * The material is "nodeinit-step-1", the recipe name, the step name and the canonical text of the
 * step's parts, joined with '|'. Canonical text, value by value, in a depth-first walk:
 *   string "s<bytes>:<bytes>"; number "i" (integer) or "n" (float), then "%.17g" of it as a float;
 *   true, false, nil; a table or function seen before "@<n>" (n counts tables and functions in the
 *   order first met); a table "{", then for each key in order: key, "=", value, ",", then "}" (keys
 *   as pairs() lists them, ordered by type name, then numbers and strings by Lua's `<`, others by
 *   tostring(); values as t[k] gives them); a function "cfunction", or "f:" and its own source lines
 *   when it comes from the recipe file, else "f:<source>:<first line>", then "u:<name>=" and the
 *   value of each upvalue but _ENV; any other value its type name.
 * After 100000 values each further one is "…".
 * One of nodeinit's module tables is walked with only the keys it had in 0.1.0; a module 0.1.0 did
 * not have is "m:<name>" (ni_fingerprint_module()): nodeinit's growth is not a change of the recipe.
 *
 * Then the file-level globals the step's functions reach (a global helper is code the step runs as
 * much as a local one): for each identifier in the own source text of a function walked above (a
 * name, not a field after '.' or ':', not in a string or comment), in the order first met, that names
 * a global the file's top-level code set (new, or changed from the sandbox's own value): "g:<name>="
 * and its value, walked as above (its functions' identifiers join the queue) but with tables and
 * functions numbered anew after the first part's and the budget the first part left. A step that
 * reaches no such global has exactly the material of nodeinit 0.1.0.
 *
 * These bytes decide whether a `once` step re-runs after an upgrade: tests/unit/test_fingerprint.c
 * pins them, change nothing here without a new version tag.
 */
#define NI_FINGERPRINT_MATERIAL_MAX (64u << 20)

/*
 * Lua: material(recipe_name, step_name, parts, file_ctx) -> string. file_ctx is the file's table
 * with src (its text) and chunkname ("@" .. file); a line index is cached in it. Raises on a material
 * over NI_FINGERPRINT_MATERIAL_MAX bytes or out of memory.
 */
int ni_fingerprint_l_material(lua_State *L);

/*
 * Marks the table at idx as nodeinit's module `name` (luart.c, for each environment's copy): in the
 * material it is walked with only the keys it had in 0.1.0, or is "m:<name>" for a newer module.
 */
void ni_fingerprint_module(lua_State *L, int idx, const char *name);

/*
 * The same material, hashed as it is walked (never held whole: memory stays small whatever its size),
 * in two parts, since a file's globals are known only once its top-level code has run:
 *   begin(recipe_name, step_name, parts, file_ctx) -> handle   (at recipe{} time, as material())
 *   finish(handle, globals) -> lowercase hex SHA-256           (after the file's top-level code)
 * globals: the file-level globals, name -> value, or nil for none (YAML). Both raise on a material
 * over NI_FINGERPRINT_MATERIAL_MAX bytes, with a message the caller prefixes with the step.
 */
int ni_fingerprint_l_begin(lua_State *L);
int ni_fingerprint_l_finish(lua_State *L);

/* The fingerprint of a material: lowercase hex SHA-256. */
void ni_fingerprint_hex(const char *material, size_t len, char ret_hex[NI_SHA256_HEX_LEN + 1]);

#endif
