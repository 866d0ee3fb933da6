/* The run context: everything a pass needs, made once in main and handed down (no globals). */
#ifndef NI_CTX_H
#define NI_CTX_H

#include <stdbool.h>

#include "cli.h"
#include "log.h"

struct ni_kube;

/*
 * When Lua code runs, which decides what a primitive may do (ni_lua_require_phase in luart.h).
 * Zero is load: a context nobody set up lets no primitive touch the host.
 */
enum ni_phase {
	NI_PHASE_LOAD, /* a recipe file's top-level code, at every load (lint, plan, apply, run's reloads),
			* and anything else outside a step (finalizers, lua_close): no primitive may run */
	NI_PHASE_STEP, /* a step's body, check or describe, and eval: primitives act (or report, in check mode) */
};

/* plan's check mode: the lines a running step's primitives add (ni_lua_plan_line in luart.h). */
struct ni_plan_sink {
	struct ni_buf *out;
	size_t lines, dropped;        /* past NI_PLAN_LINES_MAX a step's lines are only counted */
	bool exec_named, exec_noted;  /* a command was named (not run); the lines after it say they depend on it */
};

struct ni_ctx {
	struct ni_options opt;
	struct ni_log log;
	int proc_fd;     /* the /proc we started with (container side), O_PATH */
	int root_fd;     /* the host's /, opened after entering its mount namespace, O_PATH */
	int proc_sys_fd; /* the host's /proc/sys, opened after joining its net namespace, O_PATH; -1 until needed */
	int sig_fd;      /* signalfd for SIGTERM/SIGINT: readable means stop, and cancels a running command */
	bool watch_target; /* target_fd is set (zero-initialised contexts watch nothing) */
	int target_fd;     /* the target's /proc/PID, O_PATH: its "stat" cannot be opened once it was reaped */
	const char *step;   /* "recipe/step" being applied, for log lines; NULL outside steps */
	bool sensitive;     /* the current step's values must not reach logs */
	long deadline_ms;   /* CLOCK_MONOTONIC ms by which the current step must end; 0: none */
	enum ni_phase phase; /* NI_PHASE_STEP inside ni_lua_pcall_step and for eval's chunk; else load */
	bool check_mode;     /* plan, for the whole process: primitives report what they would change and
			      * change nothing, commands are named and not run; set before anything loads, never cleared */
	struct ni_plan_sink *plan; /* check mode: where the running step's lines go; NULL: nowhere */
	bool changed;       /* the current step changed something (sysctl.set, file.*, exec.run): log it at info */
	struct ni_kube *kube; /* the cluster side (kube.h); NULL: nothing to tell */
};

#endif
