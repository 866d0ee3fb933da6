/* The pass and the idle loop. The idle path only polls the signal fd with a timeout: no forks. */
#define _GNU_SOURCE
#include "engine.h"

#include <poll.h>
#include <stdio.h>
#include <sys/signalfd.h>

#include "exec.h"
#include "legacy.h"
#include "util.h"

static int legacy_pass(struct ni_ctx *ctx, struct ni_legacy *lg)
{
	const char *argv[] = { "bash", "-c", lg->script, NULL };
	struct ni_exec_opts o = {
		.argv = argv,
		.cwd = "/",
		.stdin_mode = NI_EXEC_STDIN_INHERIT,
		.cancel_fd = ctx->sig_fd,
	};
	struct ni_exec_result res;
	char code[16], ms[24];
	bool done;
	int r;

	r = ni_legacy_is_done(ctx->root_fd, lg->checkpoint, &done);
	if (r < 0)
		ni_log(&ctx->log, NI_LOG_WARN, "cannot stat the legacy checkpoint, running the script", "step", "legacy",
		       "checkpoint", lg->checkpoint, "error", strerror(-r), NULL);
	if (done)
		return NI_EXIT_OK;

	ni_log(&ctx->log, NI_LOG_INFO, "running STARTUP_SCRIPT with the host's bash", "step", "legacy", "checkpoint",
	       lg->checkpoint, NULL);
	r = ni_exec_run(&o, &res);
	if (r < 0) {
		ni_log(&ctx->log, NI_LOG_ERROR, "cannot start the host's bash", "step", "legacy", "error", strerror(-r), NULL);
		fprintf(stderr, NI_LEGACY_FAIL_FMT, 127);
		return NI_EXIT_FAILED;
	}
	ni_exec_result_free(&res);
	snprintf(ms, sizeof(ms), "%ld", res.duration_ms);
	if (res.canceled) {
		ni_log(&ctx->log, NI_LOG_WARN, "STARTUP_SCRIPT interrupted by a signal, not marked done", "step", "legacy",
		       "duration_ms", ms, NULL);
		return NI_EXIT_FAILED;
	}
	if (res.exec_errno)
		ni_log(&ctx->log, NI_LOG_ERROR, "the host has no usable bash", "step", "legacy", "error",
		       strerror(res.exec_errno), NULL);
	if (res.code != 0) {
		snprintf(code, sizeof(code), "%d", res.code);
		ni_log(&ctx->log, NI_LOG_ERROR, "STARTUP_SCRIPT failed", "step", "legacy", "exit_code", code,
		       "duration_ms", ms, NULL);
		fprintf(stderr, NI_LEGACY_FAIL_FMT, res.code);
		return NI_EXIT_FAILED;
	}
	r = ni_legacy_mark_done(ctx->root_fd, lg->checkpoint);
	if (r < 0) {
		/* The script ran but cannot be remembered: say so, and fail like `touch` failing did. */
		ni_log(&ctx->log, NI_LOG_ERROR, "cannot create the legacy checkpoint", "step", "legacy", "checkpoint",
		       lg->checkpoint, "error", strerror(-r), NULL);
		fprintf(stderr, NI_LEGACY_FAIL_FMT, 1);
		return NI_EXIT_FAILED;
	}
	fputs(NI_LEGACY_OK_LINE, stderr);
	ni_log(&ctx->log, NI_LOG_INFO, "STARTUP_SCRIPT done", "step", "legacy", "duration_ms", ms, NULL);
	return NI_EXIT_OK;
}

int ni_engine_pass(struct ni_ctx *ctx, struct ni_legacy *legacy)
{
	if (legacy->script)
		return legacy_pass(ctx, legacy);
	return NI_EXIT_OK;
}

/* Waits one interval; returns true when a stop signal arrived instead. */
static bool wait_interval(struct ni_ctx *ctx)
{
	long deadline = ni_now_ms() + (long)ctx->opt.interval_s * 1000;

	for (;;) {
		struct pollfd p = { .fd = ctx->sig_fd, .events = POLLIN };
		long left = deadline - ni_now_ms();
		struct signalfd_siginfo si;

		if (left <= 0)
			return false;
		if (poll(&p, 1, (int)left) > 0 && read(ctx->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			ni_log(&ctx->log, NI_LOG_INFO, "stopping", "signal", strsignal((int)si.ssi_signo), NULL);
			return true;
		}
	}
}

int ni_engine_loop(struct ni_ctx *ctx, struct ni_legacy *legacy, bool forever)
{
	for (;;) {
		int r = ni_engine_pass(ctx, legacy);
		if (r != NI_EXIT_OK || !forever)
			return r;
		if (wait_interval(ctx))
			return NI_EXIT_OK;
	}
}
