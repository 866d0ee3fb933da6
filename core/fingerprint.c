/* Step fingerprints: the canonical material of a step's parts, walked without recursion, and its SHA-256. */
#define _GNU_SOURCE
#include "fingerprint.h"

#include <lauxlib.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MATERIAL_MT "nodeinit.fingerprint.Material"
#define LINES_FIELD "line_starts" /* file_ctx's cached line index */
#define BUDGET 100000             /* values walked before the rest is elided */
#define FLUSH_AT (64u << 10)      /* streamed: bytes buffered before they are hashed */
#define ELLIPSIS "\xe2\x80\xa6"

/*
 * A table or function being walked. Its value sits at stack index base; a table's keys, in order,
 * at base + 1. The walk keeps its own stack of frames (a recipe can build tables nested tens of
 * thousands deep at load time, more than the C stack would take).
 */
struct frame {
	bool fn;
	int stage; /* tables: 0 the next key, 1 its value, 2 the "," after it */
	int base;
	lua_Integer i, n; /* the next key or upvalue (1-based); a table's key count */
};

/* A key being ordered: its type name, then its number or its (or its tostring()'s) bytes. */
struct key {
	const char *tname;
	bool isint;
	lua_Integer ival;
	lua_Number fval;
	const char *s;
	size_t len;
	lua_Integer pos; /* in the unsorted keys table */
};

/*
 * The walk's C memory, in a userdata whose __gc frees it: a raised error cannot leak it. Kept whole
 * (material(), for the golden tests) or streamed: hashed as it goes, so that what stays in memory
 * is FLUSH_AT bytes, whatever the material's size. A begin()..finish() handle is one of these, its
 * user values the names queue (1) and the file context (2).
 */
struct material {
	struct ni_buf out;
	bool stream, spent;
	struct ni_sha256 hash;
	size_t flushed; /* bytes of the material already hashed (stream) */
	lua_Integer budget, ids;
	struct frame *frames;
	size_t n_frames, cap_frames;
	struct key *keys;
	size_t cap_keys;
};

struct walk {
	lua_State *L;
	struct material *m;
	int seen, fc; /* stack indices: tables and functions met -> their number; the file context */
	int names;    /* stack index of the names queue (begin/finish), or 0: identifiers not collected */
	lua_Integer budget, ids;
};

static int material_gc(lua_State *L)
{
	struct material *m = luaL_checkudata(L, 1, MATERIAL_MT);

	ni_buf_free(&m->out);
	free(m->frames);
	free(m->keys);
	*m = (struct material){ 0 };
	return 0;
}

static void flush(struct material *m)
{
	ni_sha256_update(&m->hash, m->out.p, m->out.len);
	m->flushed += m->out.len;
	m->out.len = 0;
}

/* Appends bytes to the material; streamed, a large piece is hashed where it lies, never copied. */
static void emit(struct walk *w, const char *s, size_t n)
{
	struct material *m = w->m;

	if (m->stream && n >= FLUSH_AT) {
		flush(m);
		ni_sha256_update(&m->hash, s, n);
		m->flushed += n;
		return;
	}
	ni_buf_put(&m->out, s, n);
	if (m->stream && m->out.len >= FLUSH_AT && !m->out.err)
		flush(m);
}

/* Appends one part; parts are joined with '|'. */
static void part2(struct walk *w, const char *a, size_t na, const char *b, size_t nb)
{
	struct material *m = w->m;

	if (m->flushed + m->out.len > 0)
		emit(w, "|", 1);
	emit(w, a, na);
	emit(w, b, nb);
	if (m->out.err == -E2BIG || m->flushed + m->out.len > NI_FINGERPRINT_MATERIAL_MAX)
		luaL_error(w->L, "its fingerprint material (name, source, params, captured values and the globals its "
				 "functions use) is larger than %d MiB", (int)(NI_FINGERPRINT_MATERIAL_MAX >> 20));
	if (m->out.err)
		luaL_error(w->L, "not enough memory");
}

static void part(struct walk *w, const char *s, size_t n)
{
	part2(w, s, n, "", 0);
}

static void string_part(struct walk *w, const char *s, size_t n)
{
	char head[32];
	size_t k = ni_i64_dec((int64_t)n, head + 1);

	head[0] = 's';
	head[k + 1] = ':';
	part2(w, head, k + 2, s, n);
}

/* Lua's string `<` (lvm.c l_strcmp): strcoll over the pieces between embedded NULs. */
static int lua_strcmp(const char *l, size_t ll, const char *r, size_t lr)
{
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

/* Lua's number `<` across integers and floats (lvm.c LTintfloat, LTfloatint); keys are never NaN. */
static bool int_lt_float(lua_Integer i, lua_Number f)
{
	if (i >= -(1LL << 53) && i <= (1LL << 53))
		return (lua_Number)i < f; /* exact */
	if (f >= 0x1p63)
		return true;
	if (f > -0x1p63)
		return i < (lua_Integer)__builtin_ceil(f);
	return false;
}

static bool float_lt_int(lua_Number f, lua_Integer i)
{
	if (i >= -(1LL << 53) && i <= (1LL << 53))
		return f < (lua_Number)i;
	if (f >= 0x1p63)
		return false;
	if (f >= -0x1p63)
		return (lua_Integer)__builtin_floor(f) < i;
	return true;
}

static bool num_lt(const struct key *a, const struct key *b)
{
	if (a->isint && b->isint)
		return a->ival < b->ival;
	if (!a->isint && !b->isint)
		return a->fval < b->fval;
	return a->isint ? int_lt_float(a->ival, b->fval) : float_lt_int(a->fval, b->ival);
}

/* The order lua/recipe.lua's sorted_keys() had: type name, then `<` for numbers and strings, else tostring. */
static int key_cmp(const void *pa, const void *pb)
{
	const struct key *a = pa, *b = pb;
	int t = strcmp(a->tname, b->tname);

	if (t != 0)
		return t;
	if (!a->s)
		return num_lt(a, b) ? -1 : num_lt(b, a) ? 1 : 0;
	return lua_strcmp(a->s, a->len, b->s, b->len);
}

/*
 * nodeinit's module tables, as each recipe environment holds them: table -> module name, weak keys
 * (ni_fingerprint_module() marks them). A step that keeps a module in an upvalue walks it like any
 * table, but nodeinit's own growth is not a change of the recipe: only the keys the module had in
 * release 0.1.0 enter the material (so a step's material is the one 0.1.0 computed), and a module
 * 0.1.0 did not have is its name alone ("m:<name>"), whatever functions it gains later. Frozen: never
 * add a key here (that re-runs such `once` steps on every upgraded node); test_fingerprint pins them.
 */
static const char MODULES_KEY = 0;

static const char *const keys_exec[] = { "ok", "run", NULL };
static const char *const keys_file[] = { "ensure_line", "exists", "mkdir", "read", "remove", "write", NULL };
static const char *const keys_log[] = { "debug", "error", "info", "warn", NULL };
static const char *const keys_ns[] = { "exec", "run", NULL };
static const char *const keys_sysctl[] = { "get", "set", "valid", NULL };
static const char *const keys_yaml[] = { "decode", "null", NULL };

static const struct {
	const char *name;
	const char *const *keys;
} modules_0_1_0[] = {
	{ "exec", keys_exec }, { "file", keys_file },	  { "log", keys_log },
	{ "ns", keys_ns },     { "sysctl", keys_sysctl }, { "yaml", keys_yaml },
};

void ni_fingerprint_module(lua_State *L, int idx, const char *name)
{
	idx = lua_absindex(L, idx);
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &MODULES_KEY) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_createtable(L, 0, 1);
		lua_pushliteral(L, "k");
		lua_setfield(L, -2, "__mode");
		lua_setmetatable(L, -2);
		lua_pushvalue(L, -1);
		lua_rawsetp(L, LUA_REGISTRYINDEX, &MODULES_KEY);
	}
	lua_pushvalue(L, idx);
	lua_pushstring(L, name);
	lua_rawset(L, -3);
	lua_pop(L, 1);
}

/*
 * Whether the table at t is one of nodeinit's modules: false, or true with its name pushed and
 * *ret_keys its 0.1.0 keys (NULL: a module 0.1.0 did not have).
 */
static bool module_of(lua_State *L, int t, const char *const **ret_keys)
{
	const char *name;

	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &MODULES_KEY) != LUA_TTABLE) {
		lua_pop(L, 1);
		return false;
	}
	lua_pushvalue(L, t);
	name = lua_rawget(L, -2) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
	lua_remove(L, -2);
	if (!name) {
		lua_pop(L, 1);
		return false;
	}
	*ret_keys = NULL;
	for (size_t i = 0; i < NI_ELEMENTSOF(modules_0_1_0); i++)
		if (ni_streq(modules_0_1_0[i].name, name))
			*ret_keys = modules_0_1_0[i].keys;
	return true;
}

/* A module's 0.1.0 keys that it still has, into a new table on top. */
static lua_Integer frozen_keys(lua_State *L, int t, const char *const *keys)
{
	lua_Integer n = 0;

	lua_newtable(L);
	for (; *keys; keys++) {
		if (lua_getfield(L, t, *keys) != LUA_TNIL) {
			lua_pushstring(L, *keys);
			lua_rawseti(L, -3, ++n);
		}
		lua_pop(L, 1);
	}
	return n;
}

/* The keys of the table at t as pairs() lists them (a __pairs metamethod counts), into a new table on top. */
static lua_Integer collect_keys(lua_State *L, int t)
{
	lua_Integer n = 0;

	lua_newtable(L);
	if (luaL_getmetafield(L, t, "__pairs") != LUA_TNIL) {
		lua_pushvalue(L, t);
		lua_call(L, 1, 3); /* keys, iter, state, control */
		for (;;) {
			lua_pushvalue(L, -3);
			lua_pushvalue(L, -3);
			lua_pushvalue(L, -3);
			lua_call(L, 2, 1);
			if (lua_isnil(L, -1)) {
				lua_pop(L, 1);
				break;
			}
			lua_pushvalue(L, -1);
			lua_rawseti(L, -6, ++n);
			lua_replace(L, -2); /* the new control value */
		}
		lua_pop(L, 3);
		return n;
	}
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_rawseti(L, -3, ++n);
	}
	return n;
}

/* Pushes the keys of the table at t (a module: its 0.1.0 keys), in order, as a sequence; returns how many. */
static lua_Integer sorted_keys(struct walk *w, int t, const char *const *frozen)
{
	lua_State *L = w->L;
	struct material *m = w->m;
	lua_Integer n = frozen ? frozen_keys(L, t, frozen) : collect_keys(L, t);
	int keys = lua_gettop(L), strs = 0;

	if ((size_t)n > m->cap_keys) {
		struct key *k = realloc(m->keys, (size_t)n * sizeof(*k));
		if (!k)
			luaL_error(L, "not enough memory");
		m->keys = k;
		m->cap_keys = (size_t)n;
	}
	for (lua_Integer i = 1; i <= n; i++) {
		struct key *k = &m->keys[i - 1];
		int type = lua_rawgeti(L, keys, i);

		*k = (struct key){ .tname = lua_typename(L, type), .pos = i };
		if (type == LUA_TNUMBER) {
			k->isint = lua_isinteger(L, -1);
			k->ival = lua_tointeger(L, -1);
			k->fval = lua_tonumber(L, -1);
		} else if (type == LUA_TSTRING) {
			k->s = lua_tolstring(L, -1, &k->len); /* anchored in keys */
		} else {
			if (!strs) {
				lua_newtable(L);
				lua_insert(L, -2);
				strs = keys + 1;
			}
			luaL_tolstring(L, -1, NULL); /* __tostring and __name count, as in tostring() */
			lua_pushvalue(L, -1);
			lua_rawseti(L, strs, i);
			k->s = lua_tolstring(L, -1, &k->len); /* anchored in strs until the keys are ordered */
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	if (n > 1)
		qsort(m->keys, (size_t)n, sizeof(*m->keys), key_cmp);
	lua_createtable(L, (int)n, 0);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, keys, m->keys[i - 1].pos);
		lua_rawseti(L, -2, i);
	}
	lua_replace(L, keys);
	lua_settop(L, keys);
	return n;
}

static void push_frame(struct walk *w, struct frame f)
{
	struct material *m = w->m;

	if (m->n_frames == m->cap_frames) {
		size_t cap = m->cap_frames ? 2 * m->cap_frames : 16;
		struct frame *v = realloc(m->frames, cap * sizeof(*v));
		if (!v)
			luaL_error(w->L, "not enough memory");
		m->frames = v;
		m->cap_frames = cap;
	}
	m->frames[m->n_frames++] = f;
}

/* The cached start offset of each line of file_ctx.src (and one past the end); NULL without a src. */
static const size_t *line_starts(struct walk *w, size_t *ret_n_lines)
{
	lua_State *L = w->L;
	const char *src;
	size_t len = 0, n = 1, *v;

	if (lua_getfield(L, w->fc, LINES_FIELD) == LUA_TUSERDATA) {
		v = lua_touserdata(L, -1);
		lua_pop(L, 1);
		*ret_n_lines = v[0];
		return v + 1;
	}
	lua_pop(L, 1);
	lua_getfield(L, w->fc, "src");
	src = lua_tolstring(L, -1, &len);
	if (!src)
		luaL_error(L, "fingerprint material: the file context has no src");
	for (const char *p = src; (p = memchr(p, '\n', len - (size_t)(p - src))); p++)
		n++;
	v = lua_newuserdatauv(L, (n + 2) * sizeof(*v), 0);
	v[0] = n;
	v[1] = 0;
	n = 1;
	for (size_t i = 0; i < len; i++)
		if (src[i] == '\n')
			v[1 + n++] = i + 1;
	v[1 + n] = len + 1; /* as if src ended with one more "\n" */
	lua_setfield(L, w->fc, LINES_FIELD);
	lua_pop(L, 1);
	*ret_n_lines = n;
	return v + 1;
}

static bool is_name_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(unsigned char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9');
}

static bool is_keyword(const char *s, size_t n)
{
	static const char *const kw[] = { "and", "break", "do", "else", "elseif", "end", "false", "for",
					  "function", "goto", "if", "in", "local", "nil", "not", "or",
					  "repeat", "return", "then", "true", "until", "while" };

	for (size_t i = 0; i < NI_ELEMENTSOF(kw); i++)
		if (strlen(kw[i]) == n && memcmp(kw[i], s, n) == 0)
			return true;
	return false;
}

/* At s[i] == '[': the level of a long bracket "[==[" opening there, or -1. */
static long long_open(const char *s, size_t n, size_t i)
{
	size_t j = i + 1;

	while (j < n && s[j] == '=')
		j++;
	return j < n && s[j] == '[' ? (long)(j - i - 1) : -1;
}

/* Past the "]==]" closing a long bracket of level lvl whose opening starts at s[i]. */
static size_t long_skip(const char *s, size_t n, size_t i, long lvl)
{
	for (i += (size_t)lvl + 2; i < n; i++) {
		size_t j = i + 1;

		if (s[i] != ']')
			continue;
		while (j < n && s[j] == '=')
			j++;
		if (j < n && s[j] == ']' && (long)(j - i - 1) == lvl)
			return j + 1;
	}
	return n;
}

/* Queues name (once) in the names queue: queue[k] = name and queue[name] = k, in the order first met. */
static void queue_name(struct walk *w, const char *s, size_t n)
{
	lua_State *L = w->L;

	lua_pushlstring(L, s, n);
	if (lua_rawget(L, w->names) == LUA_TNIL) {
		lua_Integer k = (lua_Integer)lua_rawlen(L, w->names) + 1;

		lua_pushlstring(L, s, n);
		lua_pushinteger(L, k);
		lua_rawset(L, w->names);
		lua_pushlstring(L, s, n);
		lua_rawseti(L, w->names, k);
	}
	lua_pop(L, 1);
}

/*
 * The identifiers of a function's own source text that can name a global: not a keyword, not a
 * field after '.' or ':', not inside a string or a comment. A cheap lexer, not a parser: a local or
 * a table key that shares a global's name also counts (a step then re-runs when that global changes,
 * never the other way round).
 */
static void scan_names(struct walk *w, const char *s, size_t n)
{
	bool field = false; /* the last token was '.' or ':' */
	size_t i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		long lvl;

		if (c == '-' && i + 1 < n && s[i + 1] == '-') {
			i += 2;
			if (i < n && s[i] == '[' && (lvl = long_open(s, n, i)) >= 0)
				i = long_skip(s, n, i, lvl);
			else
				while (i < n && s[i] != '\n')
					i++;
		} else if (c == '[' && (lvl = long_open(s, n, i)) >= 0) {
			i = long_skip(s, n, i, lvl);
			field = false;
		} else if (c == '"' || c == '\'') {
			for (i++; i < n && (unsigned char)s[i] != c && s[i] != '\n'; i++)
				if (s[i] == '\\')
					i++; /* an escaped quote or newline stays inside */
			i++;
			field = false;
		} else if ((c >= '0' && c <= '9') || (c == '.' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9')) {
			for (i++; i < n; i++) {
				if ((s[i] == '+' || s[i] == '-') && strchr("eEpP", s[i - 1]))
					continue;
				if (!is_name_char((unsigned char)s[i]) && s[i] != '.')
					break;
			}
			field = false;
		} else if (c == '.' || c == ':') {
			size_t j = i;

			while (j < n && s[j] == c)
				j++;
			field = j - i == 1; /* ".." and "..." are operators, "::" a label */
			i = j;
		} else if (is_name_start(c)) {
			size_t j = i;

			while (j < n && is_name_char((unsigned char)s[j]))
				j++;
			if (!field && !is_keyword(s + i, j - i))
				queue_name(w, s + i, j - i);
			field = false;
			i = j;
		} else {
			if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v')
				field = false;
			i++;
		}
	}
}

static void function_part(struct walk *w, int idx)
{
	lua_State *L = w->L;
	lua_Debug ar;
	const char *chunk;
	size_t chunk_len;

	lua_pushvalue(L, idx);
	lua_getinfo(L, ">S", &ar);
	lua_getfield(L, w->fc, "chunkname");
	chunk = lua_tolstring(L, -1, &chunk_len);
	if (ni_streq(ar.what, "C")) {
		part(w, "cfunction", 9);
	} else if (chunk && ar.srclen == chunk_len && memcmp(ar.source, chunk, chunk_len) == 0) {
		/* its own lines: what defines it, not where it sits in the file */
		size_t n_lines, a = ar.linedefined > 1 ? (size_t)ar.linedefined : 1, b = 0;
		const size_t *starts = line_starts(w, &n_lines);
		const char *src;

		if (ar.lastlinedefined > 0)
			b = (size_t)ar.lastlinedefined < n_lines ? (size_t)ar.lastlinedefined : n_lines;
		lua_getfield(L, w->fc, "src");
		src = lua_tostring(L, -1);
		if (a <= b) {
			part2(w, "f:", 2, src + starts[a - 1], starts[b] - 1 - starts[a - 1]);
			if (w->names)
				scan_names(w, src + starts[a - 1], starts[b] - 1 - starts[a - 1]);
		} else {
			part(w, "f:", 2);
		}
		lua_pop(L, 1);
	} else {
		char line[24];
		size_t k = ni_i64_dec(ar.linedefined, line + 1);

		line[0] = ':';
		part2(w, "f:", 2, ar.source, ar.srclen);
		emit(w, line, k + 1); /* an error sticks: the next part raises it */
	}
	lua_pop(L, 1);
}

/* Walks the value on top of the stack: a scalar is written and popped; a table or function stays as a new frame. */
static void value(struct walk *w)
{
	lua_State *L = w->L;
	int type = lua_type(L, -1), top = lua_gettop(L);
	char num[64];
	size_t len;
	const char *s;
	const char *const *frozen = NULL;
	int k;

	luaL_checkstack(L, 8, "fingerprint material");
	if (--w->budget < 0) {
		part(w, ELLIPSIS, 3);
		lua_pop(L, 1);
		return;
	}
	switch (type) {
	case LUA_TSTRING:
		s = lua_tolstring(L, -1, &len);
		string_part(w, s, len);
		lua_pop(L, 1);
		return;
	case LUA_TNUMBER:
		/* string.format("%.17g", v) converted an integer to a float first, as this does. A NaN's
		 * sign is the CPU's choice (0/0 is -nan on x86-64, nan on arm64): every NaN is "-nan", as
		 * x86-64 always wrote it, so one recipe has one fingerprint on both. */
		if (!lua_isinteger(L, -1) && isnan(lua_tonumber(L, -1)))
			k = snprintf(num, sizeof(num), "n-nan");
		else
			k = snprintf(num, sizeof(num), "%c%.17g", lua_isinteger(L, -1) ? 'i' : 'n',
				     (double)lua_tonumber(L, -1));
		part(w, num, (size_t)k);
		lua_pop(L, 1);
		return;
	case LUA_TBOOLEAN:
		part(w, lua_toboolean(L, -1) ? "true" : "false", lua_toboolean(L, -1) ? 4 : 5);
		lua_pop(L, 1);
		return;
	case LUA_TNIL:
		part(w, "nil", 3);
		lua_pop(L, 1);
		return;
	default:
		break;
	}
	lua_pushvalue(L, -1);
	if (lua_rawget(L, w->seen) != LUA_TNIL) {
		num[0] = '@';
		k = (int)ni_i64_dec((int64_t)lua_tointeger(L, -1), num + 1) + 1;
		part(w, num, (size_t)k);
		lua_pop(L, 2);
		return;
	}
	lua_pop(L, 1);
	if (type != LUA_TTABLE && type != LUA_TFUNCTION) {
		s = luaL_typename(L, -1);
		part(w, s, strlen(s));
		lua_pop(L, 1);
		return;
	}
	lua_pushvalue(L, -1);
	lua_pushinteger(L, ++w->ids);
	lua_rawset(L, w->seen);
	if (type == LUA_TFUNCTION) {
		function_part(w, top);
		push_frame(w, (struct frame){ .fn = true, .base = top, .i = 1 });
		return;
	}
	if (module_of(L, top, &frozen)) {
		s = lua_tolstring(L, -1, &len);
		if (!frozen) {
			part2(w, "m:", 2, s, len);
			lua_settop(L, top - 1);
			return;
		}
		lua_pop(L, 1);
	}
	part(w, "{", 1);
	push_frame(w, (struct frame){ .base = top, .i = 1, .n = sorted_keys(w, top, frozen) });
}

/* One move of the walk on the innermost frame. */
static void step(struct walk *w)
{
	lua_State *L = w->L;
	struct frame *f = &w->m->frames[w->m->n_frames - 1];
	const char *name;

	if (f->fn) {
		name = lua_getupvalue(L, f->base, (int)f->i);
		if (!name) {
			lua_settop(L, f->base - 1);
			w->m->n_frames--;
			return;
		}
		f->i++;
		if (ni_streq(name, "_ENV")) {
			lua_pop(L, 1);
			return;
		}
		part2(w, "u:", 2, name, strlen(name));
		emit(w, "=", 1);
		value(w);
		return;
	}
	switch (f->stage) {
	case 0:
		if (f->i > f->n) {
			part(w, "}", 1);
			lua_settop(L, f->base - 1);
			w->m->n_frames--;
			return;
		}
		f->stage = 1;
		lua_rawgeti(L, f->base + 1, f->i);
		value(w); /* f may move: not used after this */
		return;
	case 1:
		f->stage = 2;
		part(w, "=", 1);
		lua_rawgeti(L, f->base + 1, f->i);
		lua_gettable(L, f->base); /* t[k], as the Lua definition read it (__index counts) */
		value(w);
		return;
	default:
		f->stage = 0;
		f->i++;
		part(w, ",", 1);
		return;
	}
}

/* Pushes a new walk's state, a userdata with two user values (names queue, file context). */
static struct material *new_material(lua_State *L, bool stream)
{
	struct material *m = lua_newuserdatauv(L, sizeof(*m), 2);

	*m = (struct material){ .out = NI_BUF_INIT(stream ? 0 : NI_FINGERPRINT_MATERIAL_MAX), .stream = stream,
				.budget = BUDGET };
	if (stream)
		ni_sha256_init(&m->hash);
	if (luaL_newmetatable(L, MATERIAL_MT)) {
		lua_pushcfunction(L, material_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	return m;
}

/* Walks the value on top of the stack to its end. */
static void walk_value(struct walk *w)
{
	value(w);
	while (w->m->n_frames > 0)
		step(w);
}

/* The first part of every material: version, recipe name, step name, then the parts (args 1-4). */
static void walk_parts(struct walk *w)
{
	lua_State *L = w->L;
	size_t len;
	const char *s;

	part(w, "nodeinit-step-1", 15);
	s = lua_tolstring(L, 1, &len);
	string_part(w, s, len);
	s = lua_tolstring(L, 2, &len);
	string_part(w, s, len);
	lua_pushvalue(L, 3);
	walk_value(w);
}

static void check_parts_args(lua_State *L)
{
	luaL_checkstring(L, 1);
	luaL_checkstring(L, 2);
	luaL_checkany(L, 3);
	luaL_checktype(L, 4, LUA_TTABLE);
	lua_settop(L, 4);
}

int ni_fingerprint_l_material(lua_State *L)
{
	struct walk w = { .L = L, .budget = BUDGET, .fc = 4 };

	check_parts_args(L);
	lua_newtable(L);
	w.seen = lua_gettop(L);
	w.m = new_material(L, false);
	walk_parts(&w);
	if (w.m->out.err)
		return luaL_error(L, "not enough memory");
	lua_pushlstring(L, w.m->out.p, w.m->out.len);
	ni_buf_free(&w.m->out);
	return 1;
}

int ni_fingerprint_l_begin(lua_State *L)
{
	struct walk w = { .L = L, .budget = BUDGET, .fc = 4 };

	check_parts_args(L);
	lua_newtable(L);
	w.seen = lua_gettop(L);
	lua_newtable(L);
	w.names = lua_gettop(L);
	w.m = new_material(L, true);
	lua_pushvalue(L, w.names);
	lua_setiuservalue(L, -2, 1);
	lua_pushvalue(L, w.fc);
	lua_setiuservalue(L, -2, 2);
	walk_parts(&w);
	w.m->budget = w.budget;
	w.m->ids = w.ids;
	lua_settop(L, w.names + 1); /* the handle */
	return 1;
}

int ni_fingerprint_l_finish(lua_State *L)
{
	struct walk w = { .L = L };
	struct material *m = luaL_checkudata(L, 1, MATERIAL_MT);
	char hex[NI_SHA256_HEX_LEN + 1];

	luaL_argcheck(L, m->stream && !m->spent, 1, "not a fingerprint begun and not finished");
	if (!lua_isnoneornil(L, 2))
		luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 2);
	w.m = m;
	w.budget = m->budget;
	w.ids = m->ids;
	lua_getiuservalue(L, 1, 1);
	w.names = lua_gettop(L);
	lua_getiuservalue(L, 1, 2);
	w.fc = lua_gettop(L);
	lua_newtable(L); /* what this part walks is numbered anew: the first part's tables are not kept */
	w.seen = lua_gettop(L);
	/* The queue grows while it is walked: a global's functions name more globals. */
	for (lua_Integer i = 1; lua_istable(L, 2) && i <= (lua_Integer)lua_rawlen(L, w.names); i++) {
		size_t len;
		const char *name;

		lua_rawgeti(L, w.names, i);
		name = lua_tolstring(L, -1, &len);
		lua_pushvalue(L, -1);
		if (lua_rawget(L, 2) == LUA_TNIL) {
			lua_pop(L, 2);
			continue;
		}
		part2(&w, "g:", 2, name, len);
		emit(&w, "=", 1);
		lua_remove(L, -2);
		walk_value(&w);
	}
	if (m->out.err)
		return luaL_error(L, "not enough memory");
	flush(m);
	m->spent = true;
	ni_sha256_final_hex(&m->hash, hex);
	ni_buf_free(&m->out);
	lua_pushstring(L, hex);
	return 1;
}

void ni_fingerprint_hex(const char *material, size_t len, char ret_hex[NI_SHA256_HEX_LEN + 1])
{
	ni_sha256_hex(material, len, ret_hex);
}
