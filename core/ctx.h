/* The run context: everything a pass needs, made once in main and handed down (no globals). */
#ifndef NI_CTX_H
#define NI_CTX_H

#include <stdbool.h>

#include "cli.h"
#include "log.h"

struct ni_kube;

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
	struct ni_kube *kube; /* the cluster side (kube.h); NULL: nothing to tell */
};

#endif
