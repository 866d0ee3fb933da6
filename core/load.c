/* The engine's recipe loading: from the fingerprint cache when it answers, else with a fresh Lua
 * state (whose steps then make the next cache), and dropping that state while idle. */
#define _GNU_SOURCE
#include "engine.h"


#include "cache.h"
#include "engine_int.h"
#include "luart.h"
#include "util.h"

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

int ni_engine_load_lua(struct ni_engine *e, ni_problem_fn fn, void *ud, size_t *ret_problems)
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
	return ni_engine_load_lua(e, fn, ud, ret_problems);
}

void ni_engine_drop_lua(struct ni_engine *e)
{
	for (size_t i = 0; i < e->set.n; i++)
		for (size_t k = 0; k < e->set.recipes[i].n_steps; k++)
			e->set.recipes[i].steps[k].ref = LUA_NOREF;
	ni_lua_close(e->L);
	e->L = NULL;
}
