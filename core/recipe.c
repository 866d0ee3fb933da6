/* Recipe loading: scans the directory through an fd, hands each file to lua/recipe.lua, keeps steps. */
#define _GNU_SOURCE
#include "recipe.h"

#include <dirent.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <sys/stat.h>

#include "file.h"
#include "luart.h"
#include "util.h"

const char *ni_when_name(enum ni_when w)
{
	static const char *const names[] = { "once", "boot", "always" };
	return names[w];
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

static int read_file(int dir_fd, const char *name, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EISDIR;
	return ni_file_read_fd(fd, NI_RECIPE_MAX_SIZE, ret, ret_len);
}

/* ---- fingerprint material in C: lua/recipe.lua's material(), byte for byte, minus the interpreter ---- */

#define CANON_BUF_MT "nodeinit.recipe.CanonBuf"
#define CANON_MAX_DEPTH 100 /* deeper tables go to the Lua canon, which has no C stack to overflow */

/* The material being built: a malloc'd buffer in a userdata, so a raised error cannot leak it. */
struct canon_buf {
	char *p;
	size_t len, cap;
};

static int canon_buf_gc(lua_State *L)
{
	struct canon_buf *b = luaL_checkudata(L, 1, CANON_BUF_MT);

	free(b->p);
	b->p = NULL;
	return 0;
}

struct canon {
	lua_State *L;
	struct canon_buf *b;
	int file_ctx, lua_canon, sorted_keys, seen, budget_tbl; /* stack indices */
	lua_Integer budget, ids;
};

/* Appends bytes; a part starts with '|' unless it is the first (material joins its parts with '|'). */
static void cb_put(struct canon *c, const char *s, size_t n)
{
	struct canon_buf *b = c->b;

	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap - b->len < n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			luaL_error(c->L, "not enough memory");
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void cb_part(struct canon *c, const char *s, size_t n)
{
	if (c->b->len)
		cb_put(c, "|", 1);
	cb_put(c, s, n);
}

static void cb_string_part(struct canon *c, const char *s, size_t n)
{
	char head[32];
	size_t k = ni_i64_dec((int64_t)n, head + 1);

	head[0] = 's';
	head[k + 1] = ':';
	cb_part(c, head, k + 2);
	cb_put(c, s, n);
}

/* Lua's own string order (lvm.c l_strcmp): strcoll over the parts between embedded NULs. */
struct skey {
	const char *s;
	size_t n;
};

static int skey_cmp(const void *pa, const void *pb)
{
	const struct skey *a = pa, *b = pb;
	const char *l = a->s, *r = b->s;
	size_t ll = a->n, lr = b->n;

	for (;;) {
		int t = strcoll(l, r);
		size_t len;

		if (t != 0)
			return t;
		len = strlen(l);
		if (len == lr)
			return len == ll ? 0 : 1;
		if (len == ll)
			return -1;
		len++;
		l += len, ll -= len, r += len, lr -= len;
	}
}

static void canon_value(struct canon *c, int idx, int depth);

/* The Lua canon for one value (functions, tables with a metatable, deep tables), sharing seen and budget. */
static void canon_in_lua(struct canon *c, int idx)
{
	lua_State *L = c->L;
	lua_Integer n;

	lua_pushinteger(L, c->budget); /* canon() takes the value's unit off itself */
	lua_setfield(L, c->budget_tbl, "n");
	lua_pushinteger(L, c->ids);
	lua_setfield(L, c->budget_tbl, "ids");
	lua_pushvalue(L, c->lua_canon);
	lua_pushvalue(L, idx);
	lua_pushvalue(L, c->file_ctx);
	lua_newtable(L);
	lua_pushvalue(L, -1);
	lua_insert(L, -5); /* keep `out` below the call */
	lua_pushvalue(L, c->seen);
	lua_pushvalue(L, c->budget_tbl);
	lua_call(L, 5, 0);
	lua_getfield(L, c->budget_tbl, "n");
	c->budget = lua_tointeger(L, -1);
	lua_getfield(L, c->budget_tbl, "ids");
	c->ids = lua_tointeger(L, -1);
	lua_pop(L, 2);
	n = (lua_Integer)lua_rawlen(L, -1);
	for (lua_Integer i = 1; i <= n; i++) {
		size_t len;
		const char *s;

		lua_rawgeti(L, -1, i);
		s = lua_tolstring(L, -1, &len);
		cb_part(c, s ? s : "", s ? len : 0);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* A table without a metatable: "{", then key "=" value "," for each key in order, then "}". */
static void canon_table(struct canon *c, int t, int depth)
{
	lua_State *L = c->L;
	struct skey *keys = NULL;
	size_t n = 0, cap = 0;
	bool strings = true;

	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING) {
			strings = false;
			lua_pop(L, 1);
			break;
		}
		if (n == cap) {
			struct skey *k = realloc(keys, (cap = cap ? 2 * cap : 8) * sizeof(*keys));
			if (!k) {
				free(keys);
				luaL_error(L, "not enough memory");
			}
			keys = k;
		}
		/* the key stays anchored in the table, which stays on the stack */
		keys[n].s = lua_tolstring(L, -1, &keys[n].n);
		n++;
	}
	cb_part(c, "{", 1);
	if (strings) {
		/* every YAML mapping: sorted as sorted_keys() sorts strings, by Lua's `<` */
		if (n > 1)
			qsort(keys, n, sizeof(*keys), skey_cmp);
		for (size_t i = 0; i < n; i++) {
			if (--c->budget < 0)
				cb_part(c, "\xe2\x80\xa6", 3);
			else
				cb_string_part(c, keys[i].s, keys[i].n);
			cb_part(c, "=", 1);
			lua_pushlstring(L, keys[i].s, keys[i].n);
			lua_rawget(L, t);
			canon_value(c, lua_gettop(L), depth + 1);
			lua_pop(L, 1);
			cb_part(c, ",", 1);
		}
		free(keys);
	} else {
		lua_Integer nk;

		free(keys);
		lua_pushvalue(L, c->sorted_keys);
		lua_pushvalue(L, t);
		lua_call(L, 1, 1);
		nk = (lua_Integer)lua_rawlen(L, -1);
		for (lua_Integer i = 1; i <= nk; i++) {
			lua_rawgeti(L, -1, i);
			canon_value(c, lua_gettop(L), depth + 1);
			cb_part(c, "=", 1);
			lua_rawget(L, t);
			canon_value(c, lua_gettop(L), depth + 1);
			lua_pop(L, 1);
			cb_part(c, ",", 1);
		}
		lua_pop(L, 1);
	}
	cb_part(c, "}", 1);
}

static void canon_value(struct canon *c, int idx, int depth)
{
	lua_State *L = c->L;
	char num[64];
	size_t len;
	const char *s;
	int k;

	luaL_checkstack(L, 8, "fingerprint material");
	switch (lua_type(L, idx)) {
	case LUA_TSTRING:
	case LUA_TNUMBER:
	case LUA_TBOOLEAN:
	case LUA_TNIL:
		break;
	default:
		if (lua_type(L, idx) == LUA_TFUNCTION || (lua_type(L, idx) == LUA_TTABLE && lua_getmetatable(L, idx) &&
							  (lua_pop(L, 1), true)) ||
		    depth > CANON_MAX_DEPTH) {
			canon_in_lua(c, idx);
			return;
		}
	}
	if (--c->budget < 0) {
		cb_part(c, "\xe2\x80\xa6", 3);
		return;
	}
	switch (lua_type(L, idx)) {
	case LUA_TSTRING:
		s = lua_tolstring(L, idx, &len);
		cb_string_part(c, s, len);
		return;
	case LUA_TNUMBER:
		/* string.format("%.17g", v) converts an integer to a float first, as this does */
		k = snprintf(num, sizeof(num), "%c%.17g", lua_isinteger(L, idx) ? 'i' : 'n', (double)lua_tonumber(L, idx));
		cb_part(c, num, (size_t)k);
		return;
	case LUA_TBOOLEAN:
		cb_part(c, lua_toboolean(L, idx) ? "true" : "false", lua_toboolean(L, idx) ? 4 : 5);
		return;
	case LUA_TNIL:
		cb_part(c, "nil", 3);
		return;
	default:
		break;
	}
	lua_pushvalue(L, idx);
	if (lua_rawget(L, c->seen) != LUA_TNIL) {
		num[0] = '@';
		k = (int)ni_i64_dec((int64_t)lua_tointeger(L, -1), num + 1) + 1;
		lua_pop(L, 1);
		cb_part(c, num, (size_t)k);
		return;
	}
	lua_pop(L, 1);
	if (lua_type(L, idx) != LUA_TTABLE) {
		s = luaL_typename(L, idx);
		cb_part(c, s, strlen(s));
		return;
	}
	lua_pushvalue(L, idx);
	lua_pushinteger(L, ++c->ids);
	lua_rawset(L, c->seen);
	canon_table(c, idx, depth);
}

int ni_recipe_l_material(lua_State *L)
{
	struct canon c = { .L = L, .budget = 100000 };
	size_t len;
	const char *rn = luaL_checklstring(L, 1, &len), *sn;

	(void)rn;
	luaL_checkstring(L, 2);
	luaL_checktype(L, 5, LUA_TFUNCTION);
	luaL_checktype(L, 6, LUA_TFUNCTION);
	lua_settop(L, 6);
	c.file_ctx = 4, c.lua_canon = 5, c.sorted_keys = 6;
	lua_newtable(L);
	c.seen = lua_gettop(L);
	lua_newtable(L);
	c.budget_tbl = lua_gettop(L);
	c.b = lua_newuserdatauv(L, sizeof(*c.b), 0);
	*c.b = (struct canon_buf){ 0 };
	if (luaL_newmetatable(L, CANON_BUF_MT)) {
		lua_pushcfunction(L, canon_buf_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	cb_part(&c, "nodeinit-step-1", 15);
	rn = lua_tolstring(L, 1, &len);
	cb_string_part(&c, rn, len);
	sn = lua_tolstring(L, 2, &len);
	cb_string_part(&c, sn, len);
	canon_value(&c, 3, 0);
	lua_pushlstring(L, c.b->p, c.b->len);
	free(c.b->p);
	*c.b = (struct canon_buf){ 0 };
	return 1;
}

static char *field_string(lua_State *L, int idx, const char *key)
{
	char *s = NULL;

	if (lua_getfield(L, idx, key) == LUA_TSTRING)
		s = strdup(lua_tostring(L, -1));
	lua_pop(L, 1);
	return s;
}

/* Converts the step table on top of the stack (popped) into s. */
static int take_step(lua_State *L, struct ni_step *s)
{
	int t = lua_gettop(L);
	const char *when;
	size_t len;
	const char *mat;

	*s = (struct ni_step){ .ref = LUA_NOREF };
	s->name = field_string(L, t, "name");
	if (!s->name) {
		lua_pop(L, 1);
		return -ENOMEM;
	}
	lua_getfield(L, t, "when");
	when = lua_tostring(L, -1);
	s->when = !when || ni_streq(when, "once") ? NI_WHEN_ONCE : ni_streq(when, "boot") ? NI_WHEN_BOOT : NI_WHEN_ALWAYS;
	lua_pop(L, 1);
	lua_getfield(L, t, "timeout");
	s->timeout_ms = lua_isnumber(L, -1) ? (long)(lua_tonumber(L, -1) * 1000) : 0;
	lua_pop(L, 1);
	lua_getfield(L, t, "sensitive");
	s->sensitive = lua_toboolean(L, -1);
	lua_pop(L, 1);
	lua_getfield(L, t, "line");
	s->line = (int)lua_tointeger(L, -1);
	lua_pop(L, 1);
	lua_getfield(L, t, "material");
	mat = lua_tolstring(L, -1, &len);
	ni_sha256_hex(mat ? mat : "", mat ? len : 0, s->fingerprint);
	lua_pop(L, 1);
	s->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

/* Appends the recipes table on top of the stack (popped) to set. */
static int take_recipes(lua_State *L, struct ni_recipe_set *set)
{
	int t = lua_gettop(L);
	lua_Integer n = luaL_len(L, t);

	for (lua_Integer i = 1; i <= n; i++) {
		struct ni_recipe *nv = realloc(set->recipes, (set->n + 1) * sizeof(*nv));
		struct ni_recipe *r;
		lua_Integer ns;

		if (!nv)
			return -ENOMEM;
		set->recipes = nv;
		r = &set->recipes[set->n];
		*r = (struct ni_recipe){ 0 };
		lua_geti(L, t, i);
		r->name = field_string(L, -1, "name");
		r->file = field_string(L, -1, "file");
		set->n++;
		if (!r->name || !r->file)
			return -ENOMEM;
		lua_getfield(L, -1, "steps");
		ns = luaL_len(L, -1);
		r->steps = calloc((size_t)ns + 1, sizeof(*r->steps));
		if (!r->steps)
			return -ENOMEM;
		for (lua_Integer j = 1; j <= ns; j++) {
			lua_geti(L, -1, j);
			if (take_step(L, &r->steps[r->n_steps]) < 0)
				return -ENOMEM;
			r->n_steps++;
		}
		lua_pop(L, 2);
	}
	lua_pop(L, 1);
	return 0;
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

/* Names must be unique across files: state files are per recipe name. */
static size_t check_duplicates(const struct ni_recipe_set *set, ni_problem_fn fn, void *ud)
{
	size_t problems = 0;

	for (size_t i = 1; i < set->n; i++)
		for (size_t j = 0; j < i; j++)
			if (ni_streq(set->recipes[i].name, set->recipes[j].name)) {
				char msg[400];
				snprintf(msg, sizeof(msg), "recipe '%s' is also defined in %s", set->recipes[i].name,
					 set->recipes[j].file);
				fn(ud, set->recipes[i].file, 0, msg);
				problems++;
				break;
			}
	return problems;
}

int ni_recipes_load(lua_State *L, int dir_fd, struct ni_recipe_set *ret, ni_problem_fn fn, void *ud,
		    size_t *ret_problems)
{
	struct ni_recipe_set set = { 0 };
	char **files = NULL;
	size_t n_files = 0, problems = 0;
	int r, top = lua_gettop(L);

	*ret_problems = 0;
	r = list_files(dir_fd, &files, &n_files);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_files; i++) {
		_cleanup_free_ char *src = NULL;
		const char *kind = NULL;
		size_t len = 0;

		is_recipe_file(files[i], &kind);
		r = read_file(dir_fd, files[i], &src, &len);
		if (r < 0) {
			fn(ud, files[i], 0, r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
			problems++;
			continue;
		}
		if (ni_lua_require_embedded(L, "recipe") != LUA_OK) {
			fn(ud, files[i], 0, lua_tostring(L, -1));
			problems++;
			lua_settop(L, top);
			continue;
		}
		lua_pushcfunction(L, ni_recipe_l_material);
		lua_setfield(L, -2, "native_material");
		lua_getfield(L, -1, kind);
		lua_pushlstring(L, src, len);
		lua_pushstring(L, files[i]);
		ni_lua_push_env(L);
		if (ni_lua_pcall(L, 3, 2) != LUA_OK) {
			fn(ud, files[i], 0, lua_tostring(L, -1));
			problems++;
			lua_settop(L, top);
			continue;
		}
		problems += report_problems(L, files[i], fn, ud);
		r = take_recipes(L, &set);
		lua_settop(L, top);
		if (r < 0)
			goto fail;
	}
	problems += check_duplicates(&set, fn, ud);
	set.n_files = n_files;
	ni_strv_free(files, n_files);
	*ret = set;
	*ret_problems = problems;
	return problems ? -EINVAL : 0;
fail:
	ni_strv_free(files, n_files);
	ni_recipe_set_free(L, &set);
	return r;
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
	*s = (struct ni_recipe_set){ 0 };
}
