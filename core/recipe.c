/* Recipe loading: scans the directory through an fd, hands each file to lua/recipe.lua, keeps steps. */
#define _GNU_SOURCE
#include "recipe.h"

#include <dirent.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "fingerprint.h"
#include "luart.h"
#include "util.h"

const char *ni_when_name(enum ni_when w)
{
	static const char *const names[] = { [NI_WHEN_ONCE] = "once", [NI_WHEN_BOOT] = "boot", [NI_WHEN_ALWAYS] = "always" };

	return (unsigned)w < NI_ELEMENTSOF(names) ? names[w] : NULL;
}

static bool is_recipe_file(const char *name, const char **ret_kind)
{
	size_t n = strlen(name);

	if (name[0] == '.')
		return false;
	if (n > 4 && ni_streq(name + n - 4, ".lua"))
		*ret_kind = "load_lua";
	else if ((n > 5 && ni_streq(name + n - 5, ".yaml")) || (n > 4 && ni_streq(name + n - 4, ".yml")))
		*ret_kind = "load_yaml";
	else
		return false;
	return true;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The recipe file names of dir_fd, sorted. */
static int list_files(int dir_fd, char ***ret, size_t *ret_n)
{
	_cleanup_close_ int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;
	const char *kind;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d)
		return -errno;
	fd = -1; /* owned by d now */
	while ((de = readdir(d))) {
		char **nv;
		if (!is_recipe_file(de->d_name, &kind))
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv || !(nv[n] = strdup(de->d_name))) {
			free(nv ? nv : v);
			closedir(d);
			return -ENOMEM;
		}
		v = nv;
		n++;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_names);
	*ret = v;
	*ret_n = n;
	return 0;
}

/* What a recipe path names when it is not a regular file, for the refusal. */
static const char *file_type_name(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR:
		return "a directory";
	case S_IFIFO:
		return "a FIFO";
	case S_IFSOCK:
		return "a socket";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	default:
		return "not a regular file";
	}
}

/*
 * Opens a recipe file for reading, never blocking and never opening anything but a regular file:
 * each hop is looked at through O_PATH|O_NOFOLLOW first (opening a FIFO waits for a writer, opening a
 * device can act), symlinks are followed here, as openat would have (a ConfigMap's name ->
 * ..data/name; ..data itself, a directory link, the kernel follows), and only a regular file is then
 * opened, O_NONBLOCK|O_NOFOLLOW so that one swapped in since cannot block either. Returns the fd,
 * -errno, or -EBADFD with *ret_mode set when it is something else.
 */
static int open_recipe(int dir_fd, const char *name, mode_t *ret_mode)
{
	char path[PATH_MAX], target[PATH_MAX];
	struct stat st;
	int fd;

	if (strlen(name) >= sizeof(path))
		return -ENAMETOOLONG;
	strcpy(path, name);
	for (unsigned hops = 0;; hops++) {
		_cleanup_close_ int pfd = openat(dir_fd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		const char *slash;
		ssize_t n;
		int k;

		if (pfd < 0 || fstat(pfd, &st) < 0)
			return -errno;
		if (!S_ISLNK(st.st_mode))
			break;
		if (hops >= NI_SYMLINK_HOPS)
			return -ELOOP;
		n = readlinkat(pfd, "", target, sizeof(target));
		if (n < 0)
			return -errno;
		if ((size_t)n >= sizeof(target))
			return -ENAMETOOLONG;
		target[n] = '\0';
		/* A relative target is relative to the directory holding the link. */
		slash = target[0] == '/' ? NULL : strrchr(path, '/');
		k = snprintf(path + (slash ? slash + 1 - path : 0), sizeof(path) - (size_t)(slash ? slash + 1 - path : 0),
			     "%s", target);
		if (k < 0 || (size_t)k >= sizeof(path) - (size_t)(slash ? slash + 1 - path : 0))
			return -ENAMETOOLONG;
	}
	if (!S_ISREG(st.st_mode)) {
		*ret_mode = st.st_mode;
		return -EBADFD;
	}
	fd = openat(dir_fd, path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int r = S_ISREG(st.st_mode) ? -errno : -EBADFD;
		*ret_mode = st.st_mode;
		close(fd);
		return r;
	}
	return fd;
}

/* Reads a recipe file; on failure why says what went wrong (the caller prefixes the file name). */
static int read_file(int dir_fd, const char *name, char **ret, size_t *ret_len, char *why, size_t why_len)
{
	mode_t mode = 0;
	_cleanup_close_ int fd = open_recipe(dir_fd, name, &mode);
	int r;

	if (fd == -EBADFD) {
		snprintf(why, why_len, "not a regular file (%s): only regular files load as recipes", file_type_name(mode));
		return fd;
	}
	if (fd < 0) {
		snprintf(why, why_len, "%s", strerror(-fd));
		return fd;
	}
	r = ni_read_fd_bounded(fd, NI_RECIPE_MAX_SIZE, ret, ret_len);
	if (r < 0)
		snprintf(why, why_len, "%s", r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
	return r;
}

static char *field_string(lua_State *L, int idx, const char *key)
{
	char *s = NULL;

	if (lua_getfield(L, idx, key) == LUA_TSTRING)
		s = strdup(lua_tostring(L, -1));
	lua_pop(L, 1);
	return s;
}

static bool field_is_function(lua_State *L, int idx, const char *key)
{
	bool is = lua_getfield(L, idx, key) == LUA_TFUNCTION;

	lua_pop(L, 1);
	return is;
}

/* Converts the step table on top of the stack (popped) into s; raises on running out of memory. */
static void take_step(lua_State *L, struct ni_step *s)
{
	int t = lua_gettop(L);
	const char *when;
	size_t len;
	const char *fp;

	s->name = field_string(L, t, "name");
	if (!s->name)
		luaL_error(L, "not enough memory");
	lua_getfield(L, t, "when");
	when = lua_tostring(L, -1);
	/* recipe.lua refused any other value; a step that still has one is a bug, never "always" */
	if (ni_streq(when ? when : "", "once"))
		s->when = NI_WHEN_ONCE;
	else if (ni_streq(when ? when : "", "boot"))
		s->when = NI_WHEN_BOOT;
	else if (ni_streq(when ? when : "", "always"))
		s->when = NI_WHEN_ALWAYS;
	else
		luaL_error(L, "step '%s': when is not once, boot or always", s->name);
	lua_pop(L, 1);
	lua_getfield(L, t, "timeout_ms"); /* recipe.lua checked it with ni_timeout_ms */
	s->timeout_ms = lua_isinteger(L, -1) ? (long)lua_tointeger(L, -1) : 0;
	lua_pop(L, 1);
	lua_getfield(L, t, "sensitive");
	s->sensitive = lua_toboolean(L, -1);
	lua_pop(L, 1);
	lua_getfield(L, t, "line");
	s->line = (int)lua_tointeger(L, -1);
	lua_pop(L, 1);
	s->has_check = field_is_function(L, t, "check");
	s->has_describe = field_is_function(L, t, "describe");
	s->has_only = field_is_function(L, t, "only");
	lua_getfield(L, t, "fingerprint");
	fp = lua_tolstring(L, -1, &len);
	if (!fp || len != NI_SHA256_HEX_LEN)
		luaL_error(L, "step '%s' has no fingerprint", s->name);
	memcpy(s->fingerprint, fp, len + 1);
	lua_pop(L, 1);
	s->ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Appends the recipes table on top of the stack (popped) to set; what is taken so far stays in set on error. */
static void take_recipes(lua_State *L, struct ni_recipe_set *set)
{
	int t = lua_gettop(L);
	lua_Integer n = luaL_len(L, t);

	for (lua_Integer i = 1; i <= n; i++) {
		struct ni_recipe *nv = realloc(set->recipes, (set->n + 1) * sizeof(*nv));
		struct ni_recipe *r;
		lua_Integer ns;

		if (!nv)
			luaL_error(L, "not enough memory");
		set->recipes = nv;
		r = &set->recipes[set->n++];
		*r = (struct ni_recipe){ 0 };
		lua_geti(L, t, i);
		r->name = field_string(L, -1, "name");
		r->file = field_string(L, -1, "file");
		if (!r->name || !r->file)
			luaL_error(L, "not enough memory");
		lua_getfield(L, -1, "line");
		r->line = (int)lua_tointeger(L, -1);
		lua_pop(L, 1);
		lua_getfield(L, -1, "steps");
		ns = luaL_len(L, -1);
		r->steps = calloc((size_t)ns + 1, sizeof(*r->steps));
		if (!r->steps)
			luaL_error(L, "not enough memory");
		for (lua_Integer j = 1; j <= ns; j++) {
			/* counted first: a raise half-way leaves it for ni_recipe_set_free */
			struct ni_step *s = &r->steps[r->n_steps++];
			*s = (struct ni_step){ .ref = LUA_NOREF };
			lua_geti(L, -1, j);
			take_step(L, s);
		}
		lua_pop(L, 2);
	}
	lua_pop(L, 1);
}

/* Reports the problems table on top of the stack (popped); returns how many. */
static size_t report_problems(lua_State *L, const char *file, ni_problem_fn fn, void *ud)
{
	lua_Integer n = luaL_len(L, -1);

	for (lua_Integer i = 1; i <= n; i++) {
		lua_geti(L, -1, i);
		lua_getfield(L, -1, "msg");
		lua_getfield(L, -2, "line");
		lua_getfield(L, -3, "raw");
		/* Raw messages come from Lua itself and already say "file:line:". */
		fn(ud, lua_toboolean(L, -1) ? NULL : file, (int)lua_tointeger(L, -2), lua_tostring(L, -3));
		lua_pop(L, 4);
	}
	lua_pop(L, 1);
	return (size_t)n;
}

size_t ni_recipes_check_duplicates(const struct ni_recipe_set *set, ni_problem_fn fn, void *ud)
{
	size_t problems = 0;

	for (size_t i = 1; i < set->n; i++)
		for (size_t j = 0; j < i; j++)
			if (ni_streq(set->recipes[i].name, set->recipes[j].name)) {
				char msg[400];
				snprintf(msg, sizeof(msg), "recipe '%s' is also defined in %s", set->recipes[i].name,
					 set->recipes[j].file);
				fn(ud, set->recipes[i].file, set->recipes[i].line, msg);
				problems++;
				break;
			}
	return problems;
}

/* recipe.lua's M.timeout_ms(seconds): whole milliseconds, or nil and why not (ni_timeout_ms decides). */
static int l_timeout_ms(lua_State *L)
{
	int64_t ms;

	if (lua_type(L, 1) == LUA_TNUMBER && ni_timeout_ms(lua_tonumber(L, 1), &ms) == 0) {
		lua_pushinteger(L, (lua_Integer)ms);
		return 1;
	}
	lua_pushnil(L);
	lua_pushfstring(L, "timeout must be a positive number of seconds, at most %d (a year)", (int)NI_TIMEOUT_MAX_S);
	return 2;
}

/*
 * What a file's load-time code reads decides whether its steps can be cached (core/cache.h). Its
 * environment's os.getenv is wrapped to note the names it reads (their values become part of the
 * cache key); the calls whose answers change from one run to the next without any input changing
 * mark the file not cacheable: os.time, os.clock, os.date, math.random, math.randomseed and
 * collectgarbage (it can report memory in use). Host primitives raise at load time (luart.c), so
 * they cannot feed a file's steps. The wrappers stay in the environment the steps run in, but
 * only note anything while the tracker (upvalue 2) is active: during the file's load.
 */
static const char *const nondet_os[] = { "time", "clock", "date", NULL };
static const char *const nondet_math[] = { "random", "randomseed", NULL };

static int call_original(lua_State *L)
{
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	return lua_gettop(L);
}

static int tracked_getenv(lua_State *L)
{
	if (lua_getfield(L, lua_upvalueindex(2), "active") == LUA_TBOOLEAN && lua_toboolean(L, -1) &&
	    (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER)) {
		lua_getfield(L, lua_upvalueindex(2), "env");
		lua_pushstring(L, lua_tostring(L, 1));
		lua_pushboolean(L, 1);
		lua_rawset(L, -3);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return call_original(L);
}

static int tracked_nondet(lua_State *L)
{
	if (lua_getfield(L, lua_upvalueindex(2), "active") == LUA_TBOOLEAN && lua_toboolean(L, -1)) {
		lua_pushboolean(L, 1);
		lua_setfield(L, lua_upvalueindex(2), "nondet");
	}
	lua_pop(L, 1);
	return call_original(L);
}

/* Wraps lib[name] (lib NULL: the environment itself) in env (an absolute index) with fn and tracker. */
static void wrap(lua_State *L, int env, int tracker, const char *lib, const char *name, lua_CFunction fn)
{
	int t = env;

	if (lib) {
		if (lua_getfield(L, env, lib) != LUA_TTABLE) {
			lua_pop(L, 1);
			return;
		}
		t = lua_gettop(L);
	}
	if (lua_getfield(L, t, name) == LUA_TFUNCTION) {
		lua_pushvalue(L, tracker);
		lua_pushcclosure(L, fn, 2);
		lua_setfield(L, t, name);
	} else
		lua_pop(L, 1);
	if (lib)
		lua_pop(L, 1);
}

static void track_env(lua_State *L, int env, int tracker)
{
	wrap(L, env, tracker, "os", "getenv", tracked_getenv);
	for (const char *const *k = nondet_os; *k; k++)
		wrap(L, env, tracker, "os", *k, tracked_nondet);
	for (const char *const *k = nondet_math; *k; k++)
		wrap(L, env, tracker, "math", *k, tracked_nondet);
	wrap(L, env, tracker, NULL, "collectgarbage", tracked_nondet);
}

/* Ends the tracking (tracker at idx) and fills f from it; raises on running out of memory. */
static void take_tracking(lua_State *L, int tracker, struct ni_recipe_file *f)
{
	lua_pushboolean(L, 0);
	lua_setfield(L, tracker, "active");
	if (lua_getfield(L, tracker, "nondet") == LUA_TBOOLEAN && lua_toboolean(L, -1))
		f->cacheable = false;
	lua_pop(L, 1);
	lua_getfield(L, tracker, "env");
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		char **nv = realloc(f->env, (f->n_env + 1) * sizeof(*nv));

		lua_pop(L, 1);
		if (!nv || !(nv[f->n_env] = strdup(lua_tostring(L, -1)))) {
			if (nv)
				f->env = nv;
			luaL_error(L, "not enough memory");
		}
		f->env = nv;
		f->n_env++;
	}
	lua_pop(L, 1);
	if (f->n_env > 1)
		qsort(f->env, f->n_env, sizeof(*f->env), cmp_names); /* the cache text does not depend on table order */
}

/* One load, its C memory reachable from here so the caller frees it whatever the protected call did. */
struct load_job {
	int dir_fd;
	char **files;
	size_t n_files;
	char *src; /* the file being loaded */
	ni_problem_fn fn;
	void *ud;
	struct ni_recipe_set set;
	size_t problems;
};

static void load_file(lua_State *L, struct load_job *j, const char *file)
{
	const char *kind = NULL;
	size_t len = 0, problems = j->problems;
	struct ni_recipe_file *f, *nv;
	int top = lua_gettop(L), r, tracker;
	char why[256];

	is_recipe_file(file, &kind);
	nv = realloc(j->set.files, (j->set.n_files + 1) * sizeof(*nv));
	if (!nv)
		luaL_error(L, "not enough memory");
	j->set.files = nv;
	f = &nv[j->set.n_files];
	*f = (struct ni_recipe_file){ .name = strdup(file) };
	if (!f->name)
		luaL_error(L, "not enough memory");
	j->set.n_files++;
	free(j->src);
	j->src = NULL;
	r = read_file(j->dir_fd, file, &j->src, &len, why, sizeof(why));
	if (r < 0) {
		j->fn(j->ud, file, 0, why);
		j->problems++;
		return;
	}
	ni_sha256_hex(j->src, len, f->hash);
	f->cacheable = true;
	if (ni_lua_require_embedded(L, "recipe") != LUA_OK)
		lua_error(L); /* lua/recipe.lua itself: nothing else can load either */
	lua_pushcfunction(L, ni_fingerprint_l_begin);
	lua_setfield(L, -2, "fingerprint_begin");
	lua_pushcfunction(L, ni_fingerprint_l_finish);
	lua_setfield(L, -2, "fingerprint_finish");
	lua_pushcfunction(L, l_timeout_ms);
	lua_setfield(L, -2, "timeout_ms");
	lua_createtable(L, 0, 3); /* the tracker */
	tracker = lua_gettop(L);
	lua_pushboolean(L, 1);
	lua_setfield(L, tracker, "active");
	lua_newtable(L);
	lua_setfield(L, tracker, "env");
	lua_getfield(L, -2, kind);
	lua_pushlstring(L, j->src, len);
	lua_pushstring(L, file);
	if (ni_lua_push_env(L) != LUA_OK)
		lua_error(L);
	track_env(L, lua_gettop(L), tracker);
	r = ni_lua_pcall(L, 3, 2);
	/* f stays put: j->set.files grows only in the next file's load */
	take_tracking(L, tracker, f);
	if (r != LUA_OK) {
		j->fn(j->ud, file, 0, lua_tostring(L, -1));
		j->problems++;
		f->cacheable = false;
		lua_settop(L, top);
		return;
	}
	j->problems += report_problems(L, file, j->fn, j->ud);
	if (j->problems != problems)
		f->cacheable = false;
	take_recipes(L, &j->set);
	lua_settop(L, top);
}

static int load_protected(lua_State *L)
{
	struct load_job *j = lua_touserdata(L, 1);

	for (size_t i = 0; i < j->n_files; i++)
		load_file(L, j, j->files[i]);
	return 0;
}

int ni_recipes_load(lua_State *L, int dir_fd, struct ni_recipe_set *ret, ni_problem_fn fn, void *ud,
		    size_t *ret_problems)
{
	struct load_job j = { .dir_fd = dir_fd, .fn = fn, .ud = ud };
	int r, top = lua_gettop(L);

	*ret = (struct ni_recipe_set){ 0 };
	*ret_problems = 0;
	r = list_files(dir_fd, &j.files, &j.n_files);
	if (r < 0)
		return r;
	/* Every call into Lua from here on runs protected: running out of memory is an error, not an abort. */
	lua_pushcfunction(L, load_protected);
	lua_pushlightuserdata(L, &j);
	if (ni_lua_pcall(L, 1, 0) != LUA_OK) {
		fn(ud, NULL, 0, lua_tostring(L, -1) ? lua_tostring(L, -1) : "cannot load the recipes");
		j.problems++;
	}
	lua_settop(L, top);
	free(j.src);
	ni_strv_free(j.files, j.n_files);
	j.problems += ni_recipes_check_duplicates(&j.set, fn, ud);
	*ret = j.set;
	*ret_problems = j.problems;
	return j.problems ? -EINVAL : 0;
}

void ni_recipe_set_free(lua_State *L, struct ni_recipe_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct ni_recipe *r = &s->recipes[i];
		for (size_t j = 0; j < r->n_steps; j++) {
			if (L)
				luaL_unref(L, LUA_REGISTRYINDEX, r->steps[j].ref);
			free(r->steps[j].name);
		}
		free(r->steps);
		free(r->name);
		free(r->file);
	}
	free(s->recipes);
	ni_recipe_files_free(s->files, s->n_files);
	*s = (struct ni_recipe_set){ 0 };
}

void ni_recipe_files_free(struct ni_recipe_file *files, size_t n)
{
	for (size_t i = 0; files && i < n; i++) {
		free(files[i].name);
		ni_strv_free(files[i].env, files[i].n_env);
	}
	free(files);
}

int ni_recipes_scan(int dir_fd, struct ni_recipe_file **ret_files, size_t *ret_n)
{
	char **names = NULL;
	struct ni_recipe_file *files;
	size_t n = 0;
	int r;

	*ret_files = NULL;
	*ret_n = 0;
	r = list_files(dir_fd, &names, &n);
	if (r < 0)
		return r;
	files = calloc(n + 1, sizeof(*files));
	if (!files) {
		ni_strv_free(names, n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *src = NULL;
		size_t len = 0;
		char why[256];

		files[i].name = steal_pointer(&names[i]);
		r = read_file(dir_fd, files[i].name, &src, &len, why, sizeof(why));
		if (r < 0) {
			ni_strv_free(names, n);
			ni_recipe_files_free(files, n);
			return r;
		}
		ni_sha256_hex(src, len, files[i].hash);
	}
	free(names);
	*ret_files = files;
	*ret_n = n;
	return 0;
}
