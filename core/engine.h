/* The engine: which steps are due, one pass over recipes and the legacy script, plan, status, run loop. */
#ifndef NI_ENGINE_H
#define NI_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ctx.h"
#include "recipe.h"
#include "state.h"

/* Why a step runs or is skipped; the names are what plan prints (DESIGN.md "State on the host"). */
enum ni_reason {
	NI_REASON_NEW,
	NI_REASON_CHANGED,
	NI_REASON_BOOT,
	NI_REASON_ALWAYS,
	NI_REASON_FAILED,
	NI_REASON_INTERRUPTED,
	NI_REASON_DONE,
	NI_REASON_KEPT,
	NI_REASON_BACKOFF, /* failed, and its back-off has not run out (run only) */
};

const char *ni_reason_name(enum ni_reason r);

/*
 * Whether a step is due, from its last record (NULL: none) and the host's boot_id. A failed step
 * is due again at once unless honour_backoff, then once now_ms reaches its retry time.
 */
bool ni_step_due(const struct ni_step *s, const struct ni_step_record *rec, const char *boot_id, int64_t now_ms,
		 bool honour_backoff, enum ni_reason *ret_reason);

/* Back-off after the n-th failure in a row: interval << (n-1), capped at ten minutes. */
int64_t ni_backoff_ms(unsigned failures, unsigned interval_s);

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
};

/* Loads (or reloads) the recipes into a fresh Lua state; on problems the old set stays. */
int ni_engine_load(struct ni_engine *e, ni_problem_fn fn, void *userdata, size_t *ret_problems);

/* One pass. Returns an NI_EXIT_* code: 0 converged, 1 a step or the script failed. */
int ni_engine_pass(struct ni_engine *e);

/* Prints one line per step: RECIPE/STEP run|skip REASON, then the changes a sysctl or file step would make. */
int ni_engine_plan(struct ni_engine *e, FILE *out);

/* Prints what the state records say; ret_converged for --ready. Returns -errno on an unreadable state dir. */
int ni_engine_status(struct ni_engine *e, bool json, FILE *out, bool *ret_converged);

/* run: pass, then wait for the interval, a recipe change (inotify_fd, -1 for none) or a stop signal. */
int ni_engine_run(struct ni_engine *e, int inotify_fd);

void ni_engine_free(struct ni_engine *e);

#endif
