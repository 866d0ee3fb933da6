/* The step watchdog: a thread that ends nodeinit when a step is stuck where the Lua count hook cannot
 * see (C code such as a pattern match, finalizers, an xpcall handler, __close), past its timeout or a
 * stop signal. */
#ifndef NI_WATCHDOG_H
#define NI_WATCHDOG_H

#include <stdint.h>

#include "journal_text.h"
#include "log.h"

/*
 * How long the count hook (and a command's own deadline and cancel) get to end a step after its
 * timeout or a stop signal before the watchdog acts. The hook looks every 10000 VM instructions, so a
 * step it can reach ends within milliseconds; the grace is for a loaded machine, and it stays far below
 * the kubelet's 30 s termination grace, so the record is written before SIGKILL comes.
 */
#define NI_WATCHDOG_GRACE_MS 3000

struct ni_watchdog;

/* What the watchdog writes if it fires: rec with result, duration, failures and back-off filled in. */
struct ni_watchdog_step {
	const char *recipe;
	const struct ni_step_record *rec; /* name, fingerprint, boot_id, started_ms; failures: before this run */
	int journal_fd;                   /* the recipe's journal, open for appending */
	int64_t t0_ms;                    /* monotonic start of the step */
	int64_t deadline_ms;              /* monotonic; 0: no timeout (only a stop signal arms it) */
	unsigned interval_s;              /* for the back-off */
};

/*
 * Starts the watchdog thread (with every signal blocked), idle: blocked in poll, no wakeups. sig_fd
 * is the signalfd of stop signals; it is polled, never read. log outlives the watchdog.
 * Call it before joining the target's namespaces: a process that joined another PID namespace
 * cannot make threads (clone gives EINVAL). The thread takes its own file system attributes, so
 * the main thread can still join a mount namespace (setns refuses a thread that shares them).
 */
int ni_watchdog_new(const struct ni_log *log, int sig_fd, struct ni_watchdog **ret);

/*
 * Watches one step from now until ni_watchdog_disarm. If the step is still running
 * NI_WATCHDOG_GRACE_MS after its deadline or after a stop signal arrived, the watchdog appends the
 * step's "failed" record to the journal (synced), logs why, and ends the process with exit status 1:
 * what the step started dies with it (exec.h: the death signal and the group guard), the kubelet
 * restarts nodeinit, and the next pass applies the back-off. -EINVAL for a record that does not fit.
 */
int ni_watchdog_arm(struct ni_watchdog *wd, const struct ni_watchdog_step *s);

/* Ends the watch. If the watchdog fired meanwhile, never returns: the process is ending. */
void ni_watchdog_disarm(struct ni_watchdog *wd);

/* Stops and joins the thread (NULL is fine). */
void ni_watchdog_free(struct ni_watchdog *wd);

#endif
