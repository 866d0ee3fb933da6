/* core/engine_int.h — what the engine's files (engine.c, load.c, inspect.c, runloop.c) share; the
 * engine's callers use engine.h. */
#ifndef NI_ENGINE_INT_H
#define NI_ENGINE_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "engine.h"

/* load.c */
/* A fresh Lua state loads the recipes (replacing the engine's set on success); with use_cache, the
 * cache text of what it gave waits in e->cache_out for the pass. */
int ni_engine_load_lua(struct ni_engine *e, ni_problem_fn fn, void *ud, size_t *ret_problems);
/*
 * Drops the Lua state (the run loop then gives the freed memory back) while the steps' names, whens and
 * fingerprints stay: the pass needs Lua only for a step that is due, and loads it again then.
 */
void ni_engine_drop_lua(struct ni_engine *e);

/* engine.c */
/* The host's boot_id, read in its mount namespace; "unknown" when it cannot be read. */
void ni_engine_read_boot_id(struct ni_engine *e);
/* Calls the step table's field fn (run or check) under the step's limits; 1 + result truthiness, or 0 on error. */
int ni_engine_call_step(struct ni_engine *e, const struct ni_step *s, const char *fn, bool *ret_truthy, char **ret_err);
/* The file a recipe's records are in (journal.h: "<recipe>.state"), for messages and the existence check. */
void ni_engine_records_file(const char *recipe, char buf[static NAME_MAX + 1]);
/*
 * Loads a recipe's records (ni_state_load: -EBADMSG for a file that is there but not ours) and says
 * whether its file exists: ni_state_load reads a missing file as empty, which for status must not
 * pass as converged.
 */
int ni_engine_load_records(struct ni_engine *e, const char *recipe, struct ni_recipe_state *st, bool *ret_exists);

#endif
