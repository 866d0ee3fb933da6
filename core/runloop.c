/* The engine's run loop: a pass, then wait for the interval, a recipe change or a stop signal. */
#define _GNU_SOURCE
#include "engine.h"

#include <malloc.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>

#include "engine_int.h"
#include "legacy.h"
#include "luart.h"
#include "util.h"

#define DEBOUNCE_MS 200

static bool has_always(const struct ni_engine *e)
{
	for (size_t i = 0; i < e->set.n; i++)
		for (size_t k = 0; k < e->set.recipes[i].n_steps; k++)
			if (e->set.recipes[i].steps[k].when == NI_WHEN_ALWAYS)
				return true;
	return false;
}

/* Drains the inotify fd, then waits until it has been quiet for DEBOUNCE_MS (a ConfigMap swap is several events). */
static void settle(int inotify_fd)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	long until = ni_now_ms() + 2000;

	for (;;) {
		struct pollfd p = { .fd = inotify_fd, .events = POLLIN };
		while (read(inotify_fd, buf, sizeof(buf)) > 0)
			;
		if (ni_now_ms() >= until || poll(&p, 1, DEBOUNCE_MS) <= 0)
			return;
	}
}

int ni_engine_run(struct ni_engine *e, int inotify_fd)
{
	struct ni_ctx *ctx = e->ctx;

	e->honour_backoff = true;
	for (;;) {
		long deadline;
		int r = ni_engine_pass(e);

		if (r == NI_EXIT_TARGET)
			return r; /* the pod restarts and finds the host's new init */
		/*
		 * Idle memory independent of recipe size: nothing needs Lua until a step is due. An `always`
		 * step is due every interval, and reloading every interval would cost a load per interval, so
		 * with one the state stays (README: Performance has the numbers).
		 */
		if (e->L && e->use_cache && !has_always(e))
			ni_engine_drop_lua(e);
		/* What the pass allocated and freed (the records it read, the cache's text) is free but
		 * resident in the heap's holes: give it back before idling, Lua or not. */
		malloc_trim(0);

		/* The legacy contract: a failed STARTUP_SCRIPT ends the pod (Kubernetes restarts it with back-off). */
		if (r != NI_EXIT_OK && e->legacy.script) {
			bool done = false;
			ni_legacy_is_done(ctx->root_fd, e->legacy.checkpoint, &done);
			if (!done && !ni_stop_pending(ctx))
				return NI_EXIT_FAILED;
		}
		deadline = ni_now_ms() + (long)ctx->opt.interval_s * 1000;
		for (;;) {
			struct pollfd p[2] = { { .fd = ctx->sig_fd, .events = POLLIN }, { .fd = inotify_fd, .events = POLLIN } };
			long left = deadline - ni_now_ms();
			struct signalfd_siginfo si;

			if (left <= 0)
				break;
			if (poll(p, 2, (int)left) <= 0)
				continue;
			if (p[0].revents && read(ctx->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				ni_log(&ctx->log, NI_LOG_INFO, "stopping", "signal", strsignal((int)si.ssi_signo), NULL);
				return NI_EXIT_OK;
			}
			if (p[1].revents) {
				size_t problems;
				settle(inotify_fd);
				r = ni_engine_load(e, NULL, NULL, &problems);
				if (r < 0)
					ni_log(&ctx->log, NI_LOG_ERROR, "recipes changed but do not load; keeping the previous ones",
					       "problems", problems ? "see above" : strerror(-r), NULL);
				else
					ni_log(&ctx->log, NI_LOG_INFO, "recipes changed, applying", NULL);
				if (r == 0)
					break;
			}
		}
	}
}
