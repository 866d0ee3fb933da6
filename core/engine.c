/* The engine: the pass (recipes, then the legacy script), run_step, plan and status over the records, the run loop. */
#define _GNU_SOURCE
#include "engine.h"

#include <fcntl.h>
#include <lauxlib.h>
#include <malloc.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>

#include "cache.h"
#include "exec.h"
#include "kube.h"
#include "legacy.h"
#include "luart.h"
#include "report.h"
#include "util.h"
#include "watchdog.h"

#define DEBOUNCE_MS 200

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

/* The host's boot_id, read in its mount namespace; "unknown" when it cannot be read. */
static void read_boot_id(struct ni_engine *e)
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

static void problem_to_log(void *ud, const char *file, int line, const char *msg)
{
	struct ni_ctx *ctx = ud;
	char where[300];

	if (!file)
		snprintf(where, sizeof(where), "%s", "");
	else if (line > 0)
		snprintf(where, sizeof(where), "%s:%d", file, line);
	else
		snprintf(where, sizeof(where), "%s", file);
	ni_log(&ctx->log, NI_LOG_ERROR, msg, "at", *where ? where : NULL, NULL);
}

/* Replaces the engine's recipes with set (and its Lua state with L, NULL for none). */
static void take_set(struct ni_engine *e, struct ni_recipe_set *set, lua_State *L)
{
	ni_recipe_set_free(e->L, &e->set);
	ni_lua_close(e->L);
	e->L = L;
	e->set = *set;
	*set = (struct ni_recipe_set){ 0 };
}

static void ignore_problem(void *ud, const char *file, int line, const char *msg)
{
	(void)ud, (void)file, (void)line, (void)msg;
}

/* The steps from the fingerprint cache, when it holds every recipe file as it is now; -ESTALE (or
 * another -errno) when not, then the caller loads them with Lua. */
static int load_cached(struct ni_engine *e)
{
	_cleanup_free_ char *buf = NULL;
	struct ni_recipe_file *files = NULL;
	struct ni_recipe_set set;
	size_t n = 0, len = 0;
	int r;

	if (!e->cache_key[0] && (r = ni_cache_key(e->ctx->proc_fd, e->cache_key)) < 0)
		return r;
	/* the cache first: without one (a first apply) the files are read and hashed once, by the Lua load */
	r = ni_statedir_read_file(e->state_fd, NI_CACHE_FILE, &buf, &len);
	if (r == 0)
		r = ni_recipes_scan(e->recipes_fd, &files, &n);
	if (r == 0)
		r = ni_cache_lookup(buf, len, e->cache_key, files, n, &set);
	ni_recipe_files_free(files, n);
	if (r == -EBADMSG || r == -ENOLINK)
		/* never trusted: the Lua load that follows writes a good one */
		ni_log(&e->ctx->log, NI_LOG_WARN, "ignoring the fingerprint cache", "file", NI_CACHE_FILE, "error",
		       r == -EBADMSG ? "not a whole cache of ours" : strerror(-r), NULL);
	if (r < 0)
		return r;
	/* Each cached file loaded without problems, but names must also be unique across files. */
	if (ni_recipes_check_duplicates(&set, ignore_problem, NULL) > 0) {
		ni_recipe_set_free(NULL, &set);
		return -ESTALE;
	}
	take_set(e, &set, NULL);
	ni_log(&e->ctx->log, NI_LOG_DEBUG, "recipes from the fingerprint cache, no Lua load", NULL);
	return 0;
}

/* The cache text for what a Lua load just gave, for the pass to write under the lock. */
static void prepare_cache(struct ni_engine *e)
{
	ni_buf_free(&e->cache_out);
	e->cache_out = NI_BUF_INIT(0);
	if (!e->cache_key[0] && ni_cache_key(e->ctx->proc_fd, e->cache_key) < 0)
		return;
	if (ni_cache_format(e->cache_key, &e->set, &e->cache_out) < 0) {
		ni_buf_free(&e->cache_out);
		e->cache_out = NI_BUF_INIT(0);
	}
}

static int load_lua(struct ni_engine *e, ni_problem_fn fn, void *ud, size_t *ret_problems)
{
	struct ni_recipe_set set;
	lua_State *L;
	int r;

	L = ni_lua_new(e->ctx);
	if (!L)
		return -ENOMEM;
	r = ni_recipes_load(L, e->recipes_fd, &set, fn ? fn : problem_to_log, fn ? ud : e->ctx, ret_problems);
	if (r < 0) {
		if (r == -EINVAL)
			ni_recipe_set_free(L, &set);
		ni_lua_close(L);
		return r;
	}
	take_set(e, &set, L);
	if (e->use_cache && e->state_fd >= 0)
		prepare_cache(e);
	return 0;
}

int ni_engine_load(struct ni_engine *e, ni_problem_fn fn, void *ud, size_t *ret_problems)
{
	*ret_problems = 0;
	if (e->recipes_fd < 0)
		return 0;
	if (e->use_cache && e->state_fd >= 0 && load_cached(e) == 0)
		return 0;
	return load_lua(e, fn, ud, ret_problems);
}

/*
 * Drops the Lua state (and gives the freed memory back) while the steps' names, whens and
 * fingerprints stay: the pass needs Lua only for a step that is due, and loads it again then.
 */
static void drop_lua(struct ni_engine *e)
{
	for (size_t i = 0; i < e->set.n; i++)
		for (size_t k = 0; k < e->set.recipes[i].n_steps; k++)
			e->set.recipes[i].steps[k].ref = LUA_NOREF;
	ni_lua_close(e->L);
	e->L = NULL;
	malloc_trim(0);
}

static bool has_always(const struct ni_engine *e)
{
	for (size_t i = 0; i < e->set.n; i++)
		for (size_t k = 0; k < e->set.recipes[i].n_steps; k++)
			if (e->set.recipes[i].steps[k].when == NI_WHEN_ALWAYS)
				return true;
	return false;
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

/* Calls the step table's field fn (run or check) under the step's limits; 1 + result truthiness, or 0 on error. */
static int call_step(struct ni_engine *e, const struct ni_step *s, const char *fn, bool *ret_truthy, char **ret_err)
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
	if (s->has_only && call_step(e, s, "only", &truthy, &err) && !truthy) {
		rec.result = NI_RESULT_SKIPPED;
	} else if (!err && s->has_check && call_step(e, s, "check", &truthy, &err) && truthy) {
		rec.result = NI_RESULT_KEPT;
	} else {
		if (!err)
			ni_log(&ctx->log, quiet, "step start", "recipe", rc->name, "step", s->name, "reason",
			       ni_reason_name(why), NULL);
		if (!err && call_step(e, s, "run", &truthy, &err)) {
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

/* The file state.c keeps a recipe's records in (state.h: "<recipe>.state"), for messages and the existence check. */
static void records_file(const char *recipe, char buf[static NAME_MAX + 1])
{
	snprintf(buf, NAME_MAX + 1, "%s.state", recipe);
}

/* ni_state_load's answer for records that are there but not ours (-EINVAL today, -EBADMSG after the state split). */
static bool records_corrupt(int r)
{
	return r == -EINVAL || r == -EBADMSG;
}

/*
 * Loads a recipe's records and says whether its file exists: ni_state_load reads a missing file as
 * empty, which for status must not pass as converged.
 */
static int load_records(struct ni_engine *e, const char *recipe, struct ni_recipe_state *st, bool *ret_exists)
{
	char file[NAME_MAX + 1];
	struct stat sb;

	records_file(recipe, file);
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
	records_file(rc->name, st_file);
	for (size_t i = 0; i < rc->n_steps; i++) {
		decls[i].name = rc->steps[i].name;
		snprintf(decls[i].when, sizeof(decls[i].when), "%s", ni_when_name(rc->steps[i].when));
		snprintf(decls[i].fingerprint, sizeof(decls[i].fingerprint), "%s", rc->steps[i].fingerprint);
	}
	r = load_records(e, rc->name, &st, &exists);
	if (records_corrupt(r)) {
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

		if (load_records(e, rc->name, &st, &exists) < 0 || !exists || !declared(&st, rc))
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
	read_boot_id(e);
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

		r = load_lua(e, NULL, NULL, &problems);
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

/* In a protected call: the step table (1), the buffer (2, light userdata), sensitive (3). */
static int describe_protected(lua_State *L)
{
	struct ni_buf *out = lua_touserdata(L, 2);
	lua_Integer n;

	lua_getfield(L, 1, "describe");
	lua_call(L, 0, 1);
	if (!lua_istable(L, -1))
		return luaL_error(L, "describe returned a %s", luaL_typename(L, -1));
	n = luaL_len(L, -1);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_geti(L, -1, i);
		ni_plan_detail(out, luaL_optstring(L, -1, ""));
		lua_pop(L, 1);
	}
	return 0;
}

/* A step's error for a plan line: its first line (the traceback is for debugging), or hidden when sensitive. */
static void plan_error(struct ni_buf *out, const char *what, const struct ni_step *s, char *err)
{
	_cleanup_free_ char *line = NULL;

	if (err)
		err[strcspn(err, "\n")] = '\0';
	if (asprintf(&line, "(%s: %s)", what, s->sensitive ? "hidden: sensitive step" : err ? err : "?") >= 0)
		ni_plan_detail(out, line);
}

/*
 * plan's details for a due step, in check mode (set for the whole process by main): primitives
 * report current -> desired and change nothing, commands are named, not run. A YAML sysctl or file
 * step describes its change as it always has; any other step runs its check, then (unless the
 * check says it is already in the desired state) its body.
 */
static void plan_details(struct ni_engine *e, const struct ni_recipe *rc, const struct ni_step *s, struct ni_buf *out)
{
	struct ni_ctx *ctx = e->ctx;
	struct ni_plan_sink sink = { .out = out };
	_cleanup_free_ char *label = NULL, *err = NULL;
	lua_State *L = e->L;
	bool truthy = false;

	if (s->has_describe) {
		lua_pushcfunction(L, describe_protected);
		lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref);
		lua_pushlightuserdata(L, out);
		if (ni_lua_pcall_step(L, 2, 0) != LUA_OK) {
			err = strdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
			plan_error(out, "cannot describe", s, err);
			lua_pop(L, 1);
		}
		return;
	}
	if (asprintf(&label, "%s/%s", rc->name, s->name) < 0)
		return;
	ctx->step = label;
	ctx->sensitive = s->sensitive;
	ctx->deadline_ms = s->timeout_ms > 0 ? ni_now_ms() + s->timeout_ms : 0;
	ctx->plan = &sink;
	if (s->has_check && !call_step(e, s, "check", &truthy, &err)) {
		plan_error(out, "would fail in its check", s, err);
	} else if (truthy && !sink.exec_named) {
		ni_plan_detail(out, "check: already in the desired state (would be recorded kept; the body does not run)");
	} else {
		if (truthy)
			ni_plan_detail(out, "(its check runs a command, not run in plan: if that says no, the body does this:)");
		sink.exec_named = sink.exec_noted = false;
		if (!call_step(e, s, "run", &truthy, &err))
			plan_error(out, "would fail", s, err);
	}
	if (sink.dropped) {
		char more[64];
		snprintf(more, sizeof(more), "(%zu more lines not shown)", sink.dropped);
		ni_plan_detail(out, more);
	}
	ctx->plan = NULL;
	ctx->step = NULL;
	ctx->sensitive = false;
	ctx->deadline_ms = 0;
}

static int plan_recipe(struct ni_engine *e, const struct ni_recipe *rc, int64_t now, struct ni_buf *out)
{
	struct ni_recipe_state st = { 0 };
	bool exists = false;
	int r = 0;

	if (e->state_fd >= 0)
		r = load_records(e, rc->name, &st, &exists);
	if (r < 0) {
		char file[NAME_MAX + 1], why[NAME_MAX + 128];

		records_file(rc->name, file);
		snprintf(why, sizeof(why), "%s: %s", file, records_corrupt(r) ? "not a nodeinit state file" : strerror(-r));
		ni_plan_unreadable(out, rc->name, why);
	}
	for (size_t k = 0; k < rc->n_steps; k++) {
		const struct ni_step *s = &rc->steps[k];
		enum ni_reason why;
		bool due = ni_step_due(s, ni_recipe_state_find(&st, s->name), e->boot_id, now, false, &why);
		_cleanup_free_ char *err = NULL;
		bool applies = true;

		/* A due step whose guard says it does not apply here would be recorded skipped: say so. */
		if (due && s->has_only && call_step(e, s, "only", &applies, &err) && !applies) {
			due = false;
			why = NI_REASON_ONLY;
		}
		ni_plan_step(out, rc->name, s->name, due, why);
		if (err) {
			char msg[600];
			char *tb = strstr(err, "\nstack traceback:");
			if (tb)
				*tb = '\0';
			snprintf(msg, sizeof(msg), "(cannot evaluate only: %s)", s->sensitive ? "hidden" : err);
			ni_plan_detail(out, msg);
		} else if (due) {
			plan_details(e, rc, s, out);
		}
	}
	ni_recipe_state_free(&st);
	/* corrupt records are what apply repairs; any other error (EACCES, EIO) it would stop at */
	return records_corrupt(r) ? 0 : r;
}

int ni_engine_plan(struct ni_engine *e, FILE *out)
{
	int64_t now = ni_wall_ms();
	struct ni_buf b = NI_BUF_INIT(0);
	int r = 0, k;

	/* main sets check mode before anything loads; set here too, so no caller of plan can run bodies
	 * for real. Never cleared: what runs later in this process (lua_close) is still plan's. */
	e->ctx->check_mode = true;
	read_boot_id(e);
	if (e->legacy.script) {
		bool done = false;
		ni_legacy_is_done(e->ctx->root_fd, e->legacy.checkpoint, &done);
		ni_plan_legacy(&b, done, e->legacy.checkpoint);
	}
	for (size_t i = 0; i < e->set.n; i++) {
		k = plan_recipe(e, &e->set.recipes[i], now, &b);
		if (r == 0)
			r = k;
		/* a recipe at a time: a long plan shows as it goes */
		if (b.len > 0 && fwrite(b.p, 1, b.len, out) != b.len && r == 0)
			r = -EIO;
		b.len = 0;
	}
	if (b.len > 0 && fwrite(b.p, 1, b.len, out) != b.len && r == 0)
		r = -EIO;
	if (r == 0)
		r = b.err;
	ni_buf_free(&b);
	return r;
}

/* The status model from the state dir: the index's recipes, their records, the legacy record and checkpoint. */
static int status_model(struct ni_engine *e, struct ni_status *m, struct ni_recipe_state *states, char **problems,
			char *const *names, size_t n, struct ni_legacy_record *lrec)
{
	int r;

	for (size_t i = 0; i < n; i++) {
		char file[NAME_MAX + 1];
		bool exists = false;

		records_file(names[i], file);
		r = load_records(e, names[i], &states[i], &exists);
		if (r < 0 && asprintf(&problems[i], "%s: %s", file,
				      records_corrupt(r) ? "not a nodeinit state file" : strerror(-r)) < 0)
			return -ENOMEM;
		if (r == 0 && !exists && asprintf(&problems[i], "%s: missing", file) < 0)
			return -ENOMEM;
		r = ni_status_add_recipe(m, names[i], &states[i], problems[i]);
		if (r < 0)
			return r;
	}
	/* The checkpoint itself is the truth for legacy, as for the old images. */
	if (e->legacy.script || lrec->checkpoint) {
		m->legacy = (struct ni_status_legacy){
			.present = true,
			.checkpoint = e->legacy.script ? e->legacy.checkpoint : lrec->checkpoint,
			.have_record = lrec->checkpoint != NULL,
			.exit_code = lrec->exit_code,
			.duration_ms = lrec->duration_ms,
		};
		ni_legacy_is_done(e->ctx->root_fd, m->legacy.checkpoint, &m->legacy.done);
	}
	ni_status_judge(m);
	return 0;
}

int ni_engine_status(struct ni_engine *e, bool json, FILE *out, bool *ret_converged)
{
	struct ni_status m = { 0 };
	struct ni_legacy_record lrec = { 0 };
	struct ni_buf b = NI_BUF_INIT(0);
	struct ni_recipe_state *states = NULL;
	char **names = NULL, **problems = NULL;
	size_t n = 0;
	int r;

	read_boot_id(e);
	m.boot_id = e->boot_id;
	if (e->state_fd >= 0 && (r = ni_state_read_index(e->state_fd, &names, &n)) < 0)
		return r;
	if (e->state_fd >= 0 && ni_state_read_legacy(e->state_fd, &lrec) < 0)
		lrec = (struct ni_legacy_record){ 0 };
	states = calloc(n + 1, sizeof(*states));
	problems = calloc(n + 1, sizeof(*problems));
	r = states && problems ? status_model(e, &m, states, problems, names, n, &lrec) : -ENOMEM;
	if (r == 0)
		r = ni_status_format(&m, json, &b);
	if (r == 0 && fwrite(b.p, 1, b.len, out) != b.len)
		r = -EIO;
	*ret_converged = r == 0 && m.converged;
	ni_buf_free(&b);
	ni_status_free(&m);
	for (size_t i = 0; states && i < n; i++)
		ni_recipe_state_free(&states[i]);
	free(states);
	ni_strv_free(problems, problems ? n : 0);
	ni_strv_free(names, n);
	ni_legacy_record_free(&lrec);
	return r;
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
			drop_lua(e);

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
