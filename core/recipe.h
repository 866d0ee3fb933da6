/* Recipes: the *.lua and *.yaml files of the recipe directory, loaded into steps the engine runs. */
#ifndef NI_RECIPE_H
#define NI_RECIPE_H

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>

#include "digest.h"

enum ni_when {
	NI_WHEN_ONCE,
	NI_WHEN_BOOT,
	NI_WHEN_ALWAYS,
};

const char *ni_when_name(enum ni_when w); /* NULL when out of range */

struct ni_step {
	char *name;
	enum ni_when when;
	long timeout_ms; /* 0: none */
	bool sensitive;
	int line;
	bool has_check, has_describe, has_only; /* the step table has these functions */
	char fingerprint[NI_SHA256_HEX_LEN + 1];
	int ref; /* registry reference to the step's table: run, check, describe */
};

struct ni_recipe {
	char *name;
	char *file;
	int line; /* where the recipe is declared, for problems */
	struct ni_step *steps;
	size_t n_steps;
};

/* A recipe file as loaded: what its steps' fingerprints depend on besides its content (core/cache.h). */
struct ni_recipe_file {
	char *name;
	char hash[NI_SHA256_HEX_LEN + 1]; /* SHA-256 of the content */
	char **env;                       /* the environment variables its load-time code read (os.getenv) */
	size_t n_env;
	bool cacheable; /* false: its load-time code called something non-deterministic, or it had problems */
};

struct ni_recipe_set {
	struct ni_recipe *recipes;
	size_t n;
	struct ni_recipe_file *files; /* every recipe file seen, in load order; n_files of them */
	size_t n_files;               /* recipe files seen, for "nothing to do" */
};

/* Called once per problem found; line 0 when the problem is not about a line. */
typedef void (*ni_problem_fn)(void *userdata, const char *file, int line, const char *msg);

#define NI_RECIPE_MAX_SIZE (1u << 20)

/*
 * Loads every *.lua, *.yaml and *.yml file of dir_fd (dotfiles, and so a ConfigMap's ..data and
 * ..<timestamp> entries, are skipped; its symlinks are followed) in file-name order into L.
 * Every problem is reported through fn, not just the first (running out of Lua memory is one, with
 * file NULL). Returns 0; -EINVAL when problems were reported (*ret_problems says how many; *ret holds
 * what did load, free it); -errno when the directory cannot be read (*ret is empty).
 */
int ni_recipes_load(lua_State *L, int dir_fd, struct ni_recipe_set *ret, ni_problem_fn fn, void *userdata,
		    size_t *ret_problems);

/*
 * Lists and reads the recipe files of dir_fd as ni_recipes_load does and fills *ret_files (name and
 * content hash each; free with ni_recipe_files_free). -errno when the directory or a file cannot be read.
 */
int ni_recipes_scan(int dir_fd, struct ni_recipe_file **ret_files, size_t *ret_n);
void ni_recipe_files_free(struct ni_recipe_file *files, size_t n);

/* Recipe and step names across files must be unique (state files are per recipe): reports each clash, returns how many. */
size_t ni_recipes_check_duplicates(const struct ni_recipe_set *set, ni_problem_fn fn, void *userdata);

void ni_recipe_set_free(lua_State *L, struct ni_recipe_set *s);

#endif
