/* The engine: one pass over recipes and the legacy script, plan, status, the run loop (due-ness: schedule.h). */
#ifndef NI_ENGINE_H
#define NI_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ctx.h"
#include "recipe.h"
#include "schedule.h"
#include "state.h"

struct ni_legacy {
	const char *script; /* STARTUP_SCRIPT; NULL when unset */
	char *checkpoint;   /* resolved checkpoint path */
};

struct ni_engine {
	struct ni_ctx *ctx;
	lua_State *L;
	struct ni_recipe_set set;
	struct ni_legacy legacy;
	int recipes_fd;       /* the recipe directory, container side, O_PATH; -1 when it does not exist */
	int state_fd;         /* the state directory on the host; -1 until opened */
	bool honour_backoff;  /* run: yes; apply: retry failed steps at once */
	char boot_id[37];     /* the host's boot_id, 36 characters */
	bool use_cache;       /* apply, run: steps from the fingerprint cache (cache.h) when it answers */
	char cache_key[65];   /* ni_cache_key, once; "" until then */
	struct ni_buf cache_out; /* a fresh cache text for the next pass to write under the lock */
	struct ni_watchdog *wd; /* NULL: steps run unwatched (legacy only, plan) */
};

/*
 * Loads (or reloads) the recipes; on problems the old set stays. With use_cache and the state dir
 * open, a fingerprint cache that holds every recipe file as it is now gives the steps without Lua
 * (e->L NULL: the pass loads Lua only when a step is due); otherwise a fresh Lua state loads them
 * and the pass writes the new cache.
 */
int ni_engine_load(struct ni_engine *e, ni_problem_fn fn, void *userdata, size_t *ret_problems);

/* One pass. Returns an NI_EXIT_* code: 0 converged, 1 a step or the script failed. */
int ni_engine_pass(struct ni_engine *e);

/*
 * Prints one line per step: RECIPE/STEP run|skip REASON, then the changes a sysctl or file step would
 * make; a recipe whose records are corrupt is named (its steps run as new). Returns -errno when the
 * state dir or a recipe's records cannot be read for another reason, after printing everything.
 */
int ni_engine_plan(struct ni_engine *e, FILE *out);

/*
 * Prints what the state records say; ret_converged for --ready: false when a recipe of the index has
 * missing or unreadable records. Returns -errno on an unreadable state dir or index.
 */
int ni_engine_status(struct ni_engine *e, bool json, FILE *out, bool *ret_converged);

/*
 * Starts the step watchdog thread (watchdog.h) that run_step arms; before the host is entered, as a
 * process in another PID namespace cannot make threads. Logs when it cannot; steps then run unwatched.
 */
void ni_engine_start_watchdog(struct ni_engine *e);

/* run: pass, then wait for the interval, a recipe change (inotify_fd, -1 for none) or a stop signal. */
int ni_engine_run(struct ni_engine *e, int inotify_fd);

void ni_engine_free(struct ni_engine *e);

#endif
