/* The engine's read-only views: plan (each step run/skip with its reason and what it would change)
 * and status (what the records say), through report.c's model. */
#define _GNU_SOURCE
#include "engine.h"

#include <lauxlib.h>

#include "engine_int.h"
#include "legacy.h"
#include "luart.h"
#include "report.h"
#include "util.h"

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
	if (s->has_check && !ni_engine_call_step(e, s, "check", &truthy, &err)) {
		plan_error(out, "would fail in its check", s, err);
	} else if (truthy && !sink.exec_named) {
		ni_plan_detail(out, "check: already in the desired state (would be recorded kept; the body does not run)");
	} else {
		if (truthy)
			ni_plan_detail(out, "(its check runs a command, not run in plan: if that says no, the body does this:)");
		sink.exec_named = sink.exec_noted = false;
		if (!ni_engine_call_step(e, s, "run", &truthy, &err))
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

/* Room for "<recipe>.state: <why>". */
#define PROBLEM_MAX (NAME_MAX + 128)

/* What plan and status say about a recipe's records that cannot count: ni_engine_load_records' error r, or
 * "missing" (r = 0, no file). */
static void records_problem(const char *recipe, int r, char buf[static PROBLEM_MAX])
{
	char file[NAME_MAX + 1];

	ni_engine_records_file(recipe, file);
	snprintf(buf, PROBLEM_MAX, "%s: %s", file,
		 r == -EBADMSG ? "not a nodeinit state file" : r < 0 ? strerror(-r) : "missing");
}

static int plan_recipe(struct ni_engine *e, const struct ni_recipe *rc, int64_t now, struct ni_buf *out)
{
	struct ni_recipe_state st = { 0 };
	bool exists = false;
	int r = 0;

	if (e->state_fd >= 0)
		r = ni_engine_load_records(e, rc->name, &st, &exists);
	if (r < 0) {
		char why[PROBLEM_MAX];

		records_problem(rc->name, r, why);
		ni_plan_unreadable(out, rc->name, why);
	}
	for (size_t k = 0; k < rc->n_steps; k++) {
		const struct ni_step *s = &rc->steps[k];
		enum ni_reason why;
		bool due = ni_step_due(s, ni_recipe_state_find(&st, s->name), e->boot_id, now, false, &why);
		_cleanup_free_ char *err = NULL;
		bool applies = true;

		/* A due step whose guard says it does not apply here would be recorded skipped: say so. */
		if (due && s->has_only && ni_engine_call_step(e, s, "only", &applies, &err) && !applies) {
			due = false;
			why = NI_REASON_ONLY;
		}
		ni_plan_step(out, rc->name, s->name, due, why);
		if (err)
			plan_error(out, "cannot evaluate only", s, err);
		else if (due)
			plan_details(e, rc, s, out);
	}
	ni_recipe_state_free(&st);
	/* corrupt records are what apply repairs; any other error (EACCES, EIO) it would stop at */
	return r == -EBADMSG ? 0 : r;
}

int ni_engine_plan(struct ni_engine *e, FILE *out)
{
	int64_t now = ni_wall_ms();
	struct ni_buf b = NI_BUF_INIT(0);
	int r = 0, k;

	/* main sets check mode before anything loads; set here too, so no caller of plan can run bodies
	 * for real. Never cleared: what runs later in this process (lua_close) is still plan's. */
	e->ctx->check_mode = true;
	ni_engine_read_boot_id(e);
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
		bool exists = false;

		r = ni_engine_load_records(e, names[i], &states[i], &exists);
		if (r < 0 || !exists) {
			char why[PROBLEM_MAX];

			records_problem(names[i], r, why);
			problems[i] = strdup(why);
			if (!problems[i])
				return -ENOMEM;
		}
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

	ni_engine_read_boot_id(e);
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
