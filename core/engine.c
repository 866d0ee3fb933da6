/* The engine: the pass (recipes, then the legacy script) and run_step. Loading is load.c's, plan and
 * status inspect.c's, the run loop runloop.c's. */
#define _GNU_SOURCE
#include "engine.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "cache.h"
#include "engine_int.h"
#include "exec.h"
#include "kube.h"
#include "legacy.h"
#include "luart.h"
#include "util.h"
#include "watchdog.h"

/* The kernel's PF_EXITING (include/linux/sched.h), in /proc/PID/stat's flags field: set at the start
 * of do_exit, before a PID namespace's init kills and waits for the rest of its namespace. */
#define TASK_PF_EXITING 0x00000004u

/*
 * The target exited or is exiting (the fake host was killed, the node goes down): nothing can be
 * started there now. An init that is dying only turns zombie after every other process of its PID
 * namespace is gone, including a command we have not reaped yet, so it is also gone while its
 * PF_EXITING flag is set: a step whose command that death killed, and whose body ignored that, is
 * then seen at once, and the pass does not end as converged. A caller that saw a step fail still
 * waits a little (wait_ms): the kill may not have reached the target's init when the command died.
 */
static bool target_gone(const struct ni_ctx *ctx, int wait_ms)
{
	for (long until = ni_now_ms() + wait_ms;; usleep(10 * 1000)) {
		_cleanup_close_ int fd = -1;
		char buf[512], state = '?';
		const char *paren;
		unsigned flags = 0;
		ssize_t n;

		if (!ctx->watch_target)
			return false;
		/* Reaped: /proc/PID is stale. A zombie (its parent has not reaped it yet): state Z or X. */
		fd = openat(ctx->target_fd, "stat", O_RDONLY | O_CLOEXEC);
		n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (n <= 0)
			return true;
		buf[n] = '\0';
		/* "PID (COMM) STATE PPID PGRP SESSION TTY_NR TPGID FLAGS ...": COMM may hold ") " itself */
		paren = strrchr(buf, ')');
		if (paren && sscanf(paren + 1, " %c %*d %*d %*d %*d %*d %u", &state, &flags) >= 1 &&
		    (state == 'Z' || state == 'X' || (flags & TASK_PF_EXITING)))
			return true;
		if (ni_now_ms() >= until)
			return false;
	}
}

/* Exit 3 (run ends, the pod restarts and finds the host's new init), with a line saying why. */
static int report_target_gone(const struct ni_ctx *ctx)
{
	char pid[16];

	snprintf(pid, sizeof(pid), "%d", (int)ctx->opt.target_pid);
	ni_log(&ctx->log, NI_LOG_ERROR, "the target process is gone; stopping", "target_pid", pid, NULL);
	return NI_EXIT_TARGET;
}

void ni_engine_read_boot_id(struct ni_engine *e)
{
	_cleanup_close_ int fd = openat(e->ctx->root_fd, "proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, e->boot_id, sizeof(e->boot_id) - 1);

	if (n <= 0) {
		snprintf(e->boot_id, sizeof(e->boot_id), "unknown");
		return;
	}
	e->boot_id[n] = '\0';
	e->boot_id[strcspn(e->boot_id, "\n")] = '\0';
}

static int open_state(struct ni_engine *e)
{
	int r;

	if (e->state_fd >= 0)
		return 0;
	r = ni_state_open(e->ctx->root_fd, e->ctx->opt.state_dir, 0, &e->state_fd, NULL);
	if (r < 0)
		ni_log(&e->ctx->log, NI_LOG_ERROR, "cannot open the state directory on the host", "dir",
		       e->ctx->opt.state_dir, "error", strerror(-r), NULL);
	return r;
}

/* In a protected call: the step table (1), the name of its field to call (2, light userdata). */
static int call_field(lua_State *L)
{
	lua_getfield(L, 1, lua_touserdata(L, 2));
	lua_call(L, 0, 1);
	return 1;
}

int ni_engine_call_step(struct ni_engine *e, const struct ni_step *s, const char *fn, bool *ret_truthy, char **ret_err)
{
	lua_State *L = e->L;
	int r;

	lua_pushcfunction(L, call_field);
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref);
	lua_pushlightuserdata(L, (void *)fn);
	r = ni_lua_pcall_step(L, 2, 1);
	if (r != LUA_OK) {
		*ret_err = strdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error)");
		lua_pop(L, 1);
		return 0;
	}
	*ret_truthy = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return 1;
}

void ni_engine_start_watchdog(struct ni_engine *e)
{
	int r = ni_watchdog_new(&e->ctx->log, e->ctx->sig_fd, &e->wd);

	if (r < 0) {
		ni_log(&e->ctx->log, NI_LOG_WARN, "cannot start the step watchdog; a step stuck in C code will not be "
		       "cut short", "error", strerror(-r), NULL);
		e->wd = NULL;
	}
}

/*
 * Runs one due step: the "started" line goes to the journal (synced) first, so a crash shows it
 * interrupted; the "ended" line only after the body returned. Returns the result; INTERRUPTED when
 * a stop signal came while it ran (then no ended line is written), whatever the body returned: a
 * pcall in the recipe may have caught the stop. A step that ran past its timeout is FAILED, whatever
 * its body did after. The watchdog covers what the count hook cannot see (watchdog.h).
 */
static enum ni_result run_step(struct ni_engine *e, const struct ni_recipe *rc, const struct ni_step *s,
			       const struct ni_step_record *prev, struct ni_journal *j, enum ni_reason why)
{
	struct ni_ctx *ctx = e->ctx;
	struct ni_step_record rec = { .name = s->name, .exit_code = 0 };
	struct ni_watchdog *wd;
	_cleanup_free_ char *label = NULL, *err = NULL;
	char dur[24];
	/* An always step, or one whose check holds, that changes nothing logs at debug: idle stays quiet. */
	enum ni_log_level quiet = s->when == NI_WHEN_ALWAYS ? NI_LOG_DEBUG : NI_LOG_INFO;
	bool truthy = false, timed_out = false;
	long t0;
	int r;

	if (asprintf(&label, "%s/%s", rc->name, s->name) < 0)
		return NI_RESULT_FAILED;
	snprintf(rec.fingerprint, sizeof(rec.fingerprint), "%s", s->fingerprint);
	snprintf(rec.boot_id, sizeof(rec.boot_id), "%s", e->boot_id);
	rec.started_ms = ni_wall_ms();
	rec.failures = prev && prev->result == NI_RESULT_FAILED ? prev->failures : 0;

	r = ni_journal_begin(j, s->name, s->fingerprint, e->boot_id, rec.started_ms);
	if (r < 0) {
		/* Without a durable "started" line a crash could not be told apart: do not run. */
		ni_log(&ctx->log, NI_LOG_ERROR, "cannot record the step start; not running it", "recipe", rc->name,
		       "step", s->name, "error", strerror(-r), NULL);
		return NI_RESULT_FAILED;
	}

	ctx->step = label;
	ctx->sensitive = s->sensitive;
	ctx->changed = false;
	t0 = ni_now_ms();
	ctx->deadline_ms = s->timeout_ms > 0 ? t0 + s->timeout_ms : 0;
	wd = e->wd;
	if (wd) {
		struct ni_watchdog_step ws = { .recipe = rc->name, .rec = &rec, .journal_fd = j->fd, .t0_ms = t0,
					       .deadline_ms = ctx->deadline_ms, .interval_s = ctx->opt.interval_s };
		if ((r = ni_watchdog_arm(wd, &ws)) < 0)
			wd = NULL;
	}
	/* only first: a step that does not apply here is neither checked nor run */
	if (s->has_only && ni_engine_call_step(e, s, "only", &truthy, &err) && !truthy) {
		rec.result = NI_RESULT_SKIPPED;
	} else if (!err && s->has_check && ni_engine_call_step(e, s, "check", &truthy, &err) && truthy) {
		rec.result = NI_RESULT_KEPT;
	} else {
		if (!err)
			ni_log(&ctx->log, quiet, "step start", "recipe", rc->name, "step", s->name, "reason",
			       ni_reason_name(why), NULL);
		if (!err && ni_engine_call_step(e, s, "run", &truthy, &err)) {
			rec.result = NI_RESULT_OK;
		} else {
			rec.result = NI_RESULT_FAILED;
			rec.exit_code = 1;
		}
	}
	if (wd)
		ni_watchdog_disarm(wd);
	rec.duration_ms = ni_now_ms() - t0;
	timed_out = ctx->deadline_ms && ni_now_ms() >= ctx->deadline_ms;
	ctx->step = NULL;
	ctx->sensitive = false;
	ctx->deadline_ms = 0;
	snprintf(dur, sizeof(dur), "%lld", (long long)rec.duration_ms);

	/* The signal stays on the signalfd until the run loop reads it: pending now means it came during the step. */
	if (ni_stop_pending(ctx)) {
		ni_log(&ctx->log, NI_LOG_WARN, "step interrupted by a stop signal", "recipe", rc->name, "step", s->name,
		       "duration_ms", dur, "body", rec.result == NI_RESULT_FAILED ? NULL : "returned (the stop was caught)",
		       NULL);
		return NI_RESULT_INTERRUPTED;
	}
	if (rec.result == NI_RESULT_FAILED && target_gone(ctx, 100)) {
		char pid[16];

		/* Its failure says nothing about the step (a fork there gives ENOMEM): leave it interrupted. */
		snprintf(pid, sizeof(pid), "%d", (int)ctx->opt.target_pid);
		ni_log(&ctx->log, NI_LOG_ERROR, "the target process is gone; step not recorded, stopping", "recipe", rc->name,
		       "step", s->name, "target_pid", pid, NULL);
		return NI_RESULT_INTERRUPTED;
	}
	if (timed_out && rec.result != NI_RESULT_FAILED) {
		/* The timeout is the step's contract: a command it cut short (timed_out = true) does not make it ok. */
		rec.result = NI_RESULT_FAILED;
		rec.exit_code = 1;
		free(err);
		err = strdup("step timed out (it ran past its timeout; what it did after does not count)");
	}
	if (rec.result == NI_RESULT_FAILED) {
		rec.failures++;
		rec.retry_after_ms = rec.started_ms + rec.duration_ms + ni_backoff_ms(rec.failures, ctx->opt.interval_s);
	} else {
		rec.failures = 0;
	}
	ni_kube_note_step(ctx->kube, rc->name, s->name, why, rec.result, s->sensitive ? NULL : err);
	r = ni_journal_end(j, &rec);
	if (r < 0)
		ni_log(&ctx->log, NI_LOG_WARN, "cannot record the step end; it will run again", "recipe", rc->name,
		       "step", s->name, "error", strerror(-r), NULL);
	if (rec.result == NI_RESULT_FAILED) {
		/* The message says where; the traceback is for debugging. A sensitive step's may hold its values. */
		char *tb = err ? strstr(err, "\nstack traceback:") : NULL;
		if (tb)
			*tb = '\0';
		ni_log(&ctx->log, NI_LOG_ERROR, "step failed", "recipe", rc->name, "step", s->name, "duration_ms", dur,
		       "reason", timed_out ? "timeout" : NULL, "error", s->sensitive ? "(hidden: sensitive step)" : err, NULL);
		if (tb && !s->sensitive)
			ni_log(&ctx->log, NI_LOG_DEBUG, "step failed: traceback", "recipe", rc->name, "step", s->name,
			       "traceback", tb + 1, NULL);
	} else {
		bool did = ctx->changed || (rec.result == NI_RESULT_OK && s->when != NI_WHEN_ALWAYS);
		ni_log(&ctx->log, did ? NI_LOG_INFO : NI_LOG_DEBUG, "step done", "recipe", rc->name, "step", s->name,
		       "result", ni_result_name(rec.result), "duration_ms", dur, "changed", ctx->changed ? "yes" : "no", NULL);
	}
	ctx->changed = false;
	return rec.result;
}

void ni_engine_records_file(const char *recipe, char buf[static NAME_MAX + 1])
{
	snprintf(buf, NAME_MAX + 1, "%s" NI_STATE_SUFFIX, recipe);
}

int ni_engine_load_records(struct ni_engine *e, const char *recipe, struct ni_recipe_state *st, bool *ret_exists)
{
	char file[NAME_MAX + 1];
	struct stat sb;

	ni_engine_records_file(recipe, file);
	*ret_exists = fstatat(e->state_fd, file, &sb, AT_SYMLINK_NOFOLLOW) == 0;
	return ni_state_load(e->state_fd, recipe, st);
}

/* Whether the records declare exactly these steps (as compact() writes them). */
static bool declared(const struct ni_recipe_state *st, const struct ni_recipe *rc)
{
	if (st->n_decls != rc->n_steps)
		return false;
	for (size_t i = 0; i < rc->n_steps; i++)
		if (!ni_streq(st->decls[i].name, rc->steps[i].name) ||
		    !ni_streq(st->decls[i].when, ni_when_name(rc->steps[i].when)) ||
		    !ni_streq(st->decls[i].fingerprint, rc->steps[i].fingerprint))
			return false;
	return true;
}

static void compact(struct ni_engine *e, const struct ni_recipe *rc, const struct ni_step_decl *decls,
		    const struct ni_recipe_state *st)
{
	int r = ni_state_compact(e->state_fd, rc->name, decls, rc->n_steps, st);

	if (r < 0)
		ni_log(&e->ctx->log, NI_LOG_WARN, "cannot compact the recipe's state", "recipe", rc->name, "error",
		       strerror(-r), NULL);
}

/* Applies one recipe; returns false when a step failed, waits for its back-off, or was interrupted. */
static bool apply_recipe(struct ni_engine *e, const struct ni_recipe *rc, bool *ret_interrupted)
{
	struct ni_ctx *ctx = e->ctx;
	struct ni_recipe_state st = { 0 };
	struct ni_journal j = { .fd = -1 };
	_cleanup_free_ struct ni_step_decl *decls = calloc(rc->n_steps + 1, sizeof(*decls));
	_cleanup_free_ struct ni_step_decl *due = calloc(rc->n_steps + 1, sizeof(*due));
	_cleanup_free_ enum ni_reason *whys = calloc(rc->n_steps + 1, sizeof(*whys));
	_cleanup_free_ size_t *idx = calloc(rc->n_steps + 1, sizeof(*idx));
	size_t n_due = 0;
	bool ok = true, exists = false;
	char st_file[NAME_MAX + 1];
	int64_t now;
	int r;

	if (!decls || !due || !whys || !idx)
		return false;
	ni_engine_records_file(rc->name, st_file);
	for (size_t i = 0; i < rc->n_steps; i++) {
		decls[i].name = rc->steps[i].name;
		snprintf(decls[i].when, sizeof(decls[i].when), "%s", ni_when_name(rc->steps[i].when));
		snprintf(decls[i].fingerprint, sizeof(decls[i].fingerprint), "%s", rc->steps[i].fingerprint);
	}
	r = ni_engine_load_records(e, rc->name, &st, &exists);
	if (r == -EBADMSG) {
		char aside[NAME_MAX + 1];
		/* Kept for an operator to read; the steps have no trustworthy record, so they run again. */
		r = ni_state_set_aside(e->state_fd, rc->name, aside);
		if (r < 0) {
			ni_log(&ctx->log, NI_LOG_ERROR, "the recipe's state records are corrupt and cannot be moved aside",
			       "recipe", rc->name, "file", st_file, "error", strerror(-r), NULL);
			return false;
		}
		ni_log(&ctx->log, NI_LOG_ERROR, "the recipe's state records are corrupt; moved aside, running its steps again",
		       "recipe", rc->name, "file", st_file, "moved_to", aside, NULL);
		exists = false;
	} else if (r < 0) {
		ni_log(&ctx->log, NI_LOG_ERROR, "cannot read the recipe's state", "recipe", rc->name, "error",
		       strerror(-r), NULL);
		return false;
	}
	if (st.n_corrupt)
		ni_log(&ctx->log, NI_LOG_WARN, "skipped unreadable lines in the recipe's state", "recipe", rc->name, NULL);
	/*
	 * A new or edited recipe: declare its steps before any runs, so status sees them even after a
	 * crash. A recipe without steps gets its (empty) records too: status counts a missing file as
	 * not converged.
	 */
	if (!exists || !declared(&st, rc))
		compact(e, rc, decls, &st);

	/* The steps this pass runs, in order, up to one waiting for its back-off (later ones may depend on it). */
	now = ni_wall_ms();
	for (size_t i = 0; i < rc->n_steps; i++) {
		if (ni_step_due(&rc->steps[i], ni_recipe_state_find(&st, rc->steps[i].name), e->boot_id, now,
				e->honour_backoff, &whys[n_due])) {
			idx[n_due] = i;
			due[n_due++] = decls[i];
		} else if (whys[n_due] == NI_REASON_BACKOFF) {
			ni_kube_note_waiting(ctx->kube, rc->name, rc->steps[i].name);
			ok = false;
			break;
		}
	}
	/*
	 * One durable plan line per due step, synced once, instead of a synced start line per step: a crash
	 * anywhere in the pass still shows every step it had not finished as interrupted (DESIGN: State).
	 */
	if (n_due > 0) {
		r = ni_journal_open(e->state_fd, rc->name, &j);
		if (r < 0)
			ni_log(&ctx->log, NI_LOG_ERROR, "cannot open the recipe's journal", "recipe", rc->name, "error",
			       strerror(-r), NULL);
		else if ((r = ni_journal_plan(&j, due, n_due, e->boot_id, now)) < 0)
			/* Without a durable mark a crash could not be told apart: do not run. */
			ni_log(&ctx->log, NI_LOG_ERROR, "cannot record the pass start; not running its steps", "recipe",
			       rc->name, "error", strerror(-r), NULL);
		if (r < 0) {
			ok = false;
			n_due = 0;
		}
	}
	ni_kube_applying(ctx->kube, whys, n_due);
	for (size_t k = 0; k < n_due; k++) {
		const struct ni_step *s = &rc->steps[idx[k]];
		enum ni_result res;

		/* A stop signal that came while the last step was in C code (it could not cut that short). */
		if (ni_stop_pending(ctx)) {
			*ret_interrupted = true;
			ok = false;
			break;
		}
		res = run_step(e, rc, s, ni_recipe_state_find(&st, s->name), &j, whys[k]);

		if (res == NI_RESULT_INTERRUPTED)
			*ret_interrupted = true;
		if (!ni_result_converged(res)) {
			ok = false; /* later steps may depend on it */
			break;
		}
	}

	if (j.fd >= 0) {
		/* Compacted from what was loaded and what the pass wrote; re-read only when that cannot vouch. */
		r = ni_journal_close_compact(&j, e->state_fd, rc->name, decls, rc->n_steps, &st);
		if (r == -ESTALE) {
			ni_recipe_state_free(&st);
			if (ni_state_load(e->state_fd, rc->name, &st) == 0)
				compact(e, rc, decls, &st);
		} else if (r < 0)
			ni_log(&ctx->log, NI_LOG_WARN, "cannot compact the recipe's state", "recipe", rc->name, "error",
			       strerror(-r), NULL);
	}
	ni_recipe_state_free(&st);
	return ok;
}

/*
 * Whether this pass has anything to do: a step to run, or records to declare or repair (unreadable
 * records count as work: apply_recipe deals with them). *ret_waiting: a failed step waits for its
 * back-off, which makes the pass not converged, as apply_recipe would say.
 */
static bool pass_has_work(struct ni_engine *e, bool *ret_waiting)
{
	int64_t now = ni_wall_ms();

	*ret_waiting = false;
	for (size_t i = 0; i < e->set.n; i++) {
		const struct ni_recipe *rc = &e->set.recipes[i];
		struct ni_recipe_state st = { 0 };
		bool exists = false, work = false;
		enum ni_reason why;

		if (ni_engine_load_records(e, rc->name, &st, &exists) < 0 || !exists || !declared(&st, rc))
			work = true;
		for (size_t k = 0; k < rc->n_steps && !work; k++) {
			work = ni_step_due(&rc->steps[k], ni_recipe_state_find(&st, rc->steps[k].name), e->boot_id, now,
					   e->honour_backoff, &why);
			if (!work && why == NI_REASON_BACKOFF) {
				ni_kube_note_waiting(e->ctx->kube, rc->name, rc->steps[k].name);
				*ret_waiting = true;
				break; /* later steps wait for it */
			}
		}
		ni_recipe_state_free(&st);
		if (work)
			return true;
	}
	return false;
}

static int write_index(struct ni_engine *e)
{
	_cleanup_free_ char **names = calloc(e->set.n + 1, sizeof(char *));

	if (!names)
		return -ENOMEM;
	for (size_t i = 0; i < e->set.n; i++)
		names[i] = e->set.recipes[i].name;
	return ni_state_write_index(e->state_fd, names, e->set.n);
}

/* The legacy STARTUP_SCRIPT, as the startup-script images ran it. Returns an NI_EXIT_* code. */
static int legacy_pass(struct ni_engine *e)
{
	struct ni_ctx *ctx = e->ctx;
	struct ni_legacy *lg = &e->legacy;
	const char *argv[] = { "bash", "-c", lg->script, NULL };
	struct ni_exec_opts o = {
		.argv = argv,
		.cwd = "/",
		.stdin_mode = NI_EXEC_STDIN_INHERIT,
		.cancel_fd = ctx->sig_fd,
	};
	struct ni_exec_result res;
	struct ni_legacy_record rec = { .checkpoint = lg->checkpoint };
	char code[16], ms[24], untrusted[96];
	bool done, replaced;
	int r;

	r = ni_legacy_check(ctx->root_fd, lg->checkpoint, &done, untrusted, sizeof(untrusted));
	if (r < 0)
		ni_log(&ctx->log, NI_LOG_WARN, "cannot stat the legacy checkpoint, running the script", "step", "legacy",
		       "checkpoint", lg->checkpoint, "error", strerror(-r), NULL);
	else if (*untrusted)
		ni_log(&ctx->log, NI_LOG_WARN, "legacy checkpoint not trusted (only a root-owned file counts), running the script",
		       "step", "legacy", "checkpoint", lg->checkpoint, "found", untrusted, NULL);
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
	rec.exit_code = res.code;
	rec.duration_ms = res.duration_ms;
	rec.finished_ms = ni_wall_ms();
	if (res.code != 0) {
		snprintf(code, sizeof(code), "%d", res.code);
		ni_log(&ctx->log, NI_LOG_ERROR, "STARTUP_SCRIPT failed", "step", "legacy", "exit_code", code, "duration_ms",
		       ms, NULL);
		fprintf(stderr, NI_LEGACY_FAIL_FMT, res.code);
	} else if ((r = ni_legacy_mark_done(ctx->root_fd, lg->checkpoint, &replaced)) < 0) {
		/* The script ran but cannot be remembered: fail as `touch` failing under errexit did, with no
		 * `!!!` line (the script did not fail). */
		ni_log(&ctx->log, NI_LOG_ERROR, "STARTUP_SCRIPT succeeded, but the legacy checkpoint cannot be created",
		       "step", "legacy", "checkpoint", lg->checkpoint, "error", strerror(-r), NULL);
		rec.exit_code = 1;
	} else {
		if (replaced)
			ni_log(&ctx->log, NI_LOG_WARN, "replaced the untrusted legacy checkpoint with a root-owned file", "step",
			       "legacy", "checkpoint", lg->checkpoint, NULL);
		rec.done = true;
		fputs(NI_LEGACY_OK_LINE, stderr);
		ni_log(&ctx->log, NI_LOG_INFO, "STARTUP_SCRIPT done", "step", "legacy", "duration_ms", ms, NULL);
	}
	/* The record only feeds status; legacy mode works without a state directory, as it always did. */
	if (open_state(e) == 0 && (r = ni_state_write_legacy(e->state_fd, &rec)) < 0)
		ni_log(&ctx->log, NI_LOG_WARN, "cannot write the legacy record", "error", strerror(-r), NULL);
	return rec.done ? NI_EXIT_OK : NI_EXIT_FAILED;
}

static int pass(struct ni_engine *e)
{
	struct ni_ctx *ctx = e->ctx;
	_cleanup_close_ int lock_fd = -1;
	bool failed = false, interrupted = false, waiting = false;
	int r;

	/* Both paths, legacy-only too: nothing can be started in a target that has gone (and a script
	 * that cannot start there has not failed). */
	if (target_gone(ctx, 0))
		return report_target_gone(ctx);
	if (e->legacy.script && legacy_pass(e) != NI_EXIT_OK)
		failed = true;
	if (e->set.n == 0)
		return target_gone(ctx, failed ? 100 : 0) ? report_target_gone(ctx) : failed ? NI_EXIT_FAILED : NI_EXIT_OK;

	if (open_state(e) < 0)
		return NI_EXIT_FAILED;
	/* Another instance (a rolling update) may be applying: wait for it, then see what it did. */
	r = ni_state_lock(e->state_fd, true, ctx->sig_fd, &lock_fd);
	if (r < 0) {
		if (r != -ECANCELED)
			ni_log(&ctx->log, NI_LOG_ERROR, "cannot lock the state directory", "error", strerror(-r), NULL);
		return NI_EXIT_FAILED;
	}
	if ((r = ni_state_remove_temps(e->state_fd)) < 0)
		ni_log(&ctx->log, NI_LOG_WARN, "cannot remove temp files a killed run left", "error", strerror(-r), NULL);
	ni_engine_read_boot_id(e);
	/* The index first: status must know of every recipe this pass touches, even if it dies mid-way. */
	if ((r = write_index(e)) < 0)
		ni_log(&ctx->log, NI_LOG_WARN, "cannot write the state index", "error", strerror(-r), NULL);
	/*
	 * Steps from the cache: Lua only when there is work (a no-op pass loads nothing, and reads each
	 * recipe's records once).
	 */
	if (!e->L && !pass_has_work(e, &waiting)) {
		/* It went while this pass waited for the lock or read the records (a step may be waiting
		 * for its back-off): say so, as every other way out for a gone target does. */
		if (target_gone(ctx, 0))
			return report_target_gone(ctx);
		return failed || waiting ? NI_EXIT_FAILED : NI_EXIT_OK;
	}
	if (!e->L) {
		size_t problems;

		r = ni_engine_load_lua(e, NULL, NULL, &problems);
		if (r < 0) {
			ni_log(&ctx->log, NI_LOG_ERROR, "cannot load the recipes to run their due steps", "error",
			       problems ? "see above" : strerror(-r), NULL);
			return r == -EINVAL ? NI_EXIT_USAGE : NI_EXIT_FAILED;
		}
	}
	if (e->cache_out.len > 0) {
		if ((r = ni_statedir_write_atomic(e->state_fd, NI_CACHE_FILE, e->cache_out.p, e->cache_out.len)) < 0)
			ni_log(&ctx->log, NI_LOG_WARN, "cannot write the fingerprint cache", "error", strerror(-r), NULL);
		ni_buf_free(&e->cache_out);
		e->cache_out = NI_BUF_INIT(0);
	}
	for (size_t i = 0; i < e->set.n && !interrupted; i++)
		if (!apply_recipe(e, &e->set.recipes[i], &interrupted))
			failed = true;
	if (target_gone(ctx, 0))
		return report_target_gone(ctx);
	return failed || interrupted ? NI_EXIT_FAILED : NI_EXIT_OK;
}

int ni_engine_pass(struct ni_engine *e)
{
	int r;

	ni_kube_pass_begin(e->ctx->kube);
	r = pass(e);
	ni_kube_after_pass(e->ctx->kube, r);
	return r;
}

void ni_engine_free(struct ni_engine *e)
{
	ni_watchdog_free(e->wd);
	e->wd = NULL;
	ni_recipe_set_free(e->L, &e->set);
	ni_lua_close(e->L);
	e->L = NULL;
	ni_buf_free(&e->cache_out);
	free(e->legacy.checkpoint);
	e->legacy.checkpoint = NULL;
	e->recipes_fd = ni_safe_close(e->recipes_fd);
	e->state_fd = ni_safe_close(e->state_fd);
}
