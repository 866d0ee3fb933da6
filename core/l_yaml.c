/* Lua module nodeinit.yaml: yaml.decode(text [, {positions = true|depth}]) and the yaml.null sentinel. */
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "luart.h"
#include "util.h"
#include "yaml.h"

#define DOC_MT "nodeinit.YamlDoc"
#define NULL_MT "nodeinit.yaml.null"

/* The parsed tree lives in a userdata while Lua values are made from it: a raised error must not leak it. */
struct doc_box {
	struct ni_yaml_doc doc;
	bool live;
};

struct conv {
	lua_State *L;
	int null_idx; /* yaml.null */
	int pos_idx;  /* table -> {line =, column =}, or 0 */
	lua_Integer pos_depth, depth; /* positions for tables at most pos_depth deep (the top one is 0) */
	char err[400];
};

static void box_free(struct doc_box *box)
{
	if (box->live)
		ni_yaml_doc_free(&box->doc);
	box->live = false;
}

static int doc_gc(lua_State *L)
{
	box_free(luaL_checkudata(L, 1, DOC_MT));
	return 0;
}

static bool conv_fail(struct conv *c, const struct ni_yaml_node *n, const char *what)
{
	snprintf(c->err, sizeof(c->err), "yaml: line %u, column %u: %s", n->line, n->column, what);
	return false;
}

static void set_position(struct conv *c, const struct ni_yaml_node *n)
{
	lua_State *L = c->L;

	if (!c->pos_idx || c->depth > c->pos_depth)
		return;
	lua_pushvalue(L, -1);
	lua_createtable(L, 0, 2);
	lua_pushinteger(L, n->line);
	lua_setfield(L, -2, "line");
	lua_pushinteger(L, n->column);
	lua_setfield(L, -2, "column");
	if (n->type == NI_YAML_MAP) {
		lua_newtable(L);
		lua_setfield(L, -2, "keys");
	}
	lua_rawset(L, c->pos_idx);
}

static bool push_node(struct conv *c, const struct ni_yaml_node *n);

static bool push_map(struct conv *c, const struct ni_yaml_node *n)
{
	lua_State *L = c->L;
	char what[300];

	lua_createtable(L, 0, n->n > INT_MAX ? INT_MAX : (int)n->n);
	set_position(c, n);
	for (size_t i = 0; i < n->n; i++) {
		const struct ni_yaml_node *key = n->items[2 * i], *value = n->items[2 * i + 1];

		if (key->type == NI_YAML_SEQ || key->type == NI_YAML_MAP)
			return conv_fail(c, key, "mapping keys must be scalars");
		if (key->type == NI_YAML_NULL)
			return conv_fail(c, key, "a null mapping key (quote it: \"~\": or \"null\":)");
		if (key->type == NI_YAML_FLOAT && isnan(key->f))
			return conv_fail(c, key, "a NaN mapping key");
		push_node(c, key);
		lua_pushvalue(L, -1);
		if (lua_rawget(L, -3) != LUA_TNIL) {
			snprintf(what, sizeof(what), "duplicate key '%.200s'", key->str);
			return conv_fail(c, key, what);
		}
		lua_pop(L, 1);
		/* positions[map].keys[key] = the key's line, so a problem can point at the key itself */
		if (c->pos_idx && c->depth <= c->pos_depth) {
			lua_pushvalue(L, -2);
			lua_rawget(L, c->pos_idx);
			lua_getfield(L, -1, "keys");
			lua_pushvalue(L, -3);
			lua_pushinteger(L, key->line);
			lua_rawset(L, -3);
			lua_pop(L, 2);
		}
		c->depth++;
		if (!push_node(c, value))
			return false; /* the decode ends here: depth is not needed again */
		c->depth--;
		lua_rawset(L, -3);
	}
	return true;
}

static bool push_node(struct conv *c, const struct ni_yaml_node *n)
{
	lua_State *L = c->L;

	/* Depth is bounded by NI_YAML_MAX_DEPTH, so a few slots a level is all it takes. */
	luaL_checkstack(L, 8, "yaml: nested too deeply");
	switch (n->type) {
	case NI_YAML_NULL:
		lua_pushvalue(L, c->null_idx);
		return true;
	case NI_YAML_BOOL:
		lua_pushboolean(L, n->b);
		return true;
	case NI_YAML_INT:
		lua_pushinteger(L, (lua_Integer)n->i);
		return true;
	case NI_YAML_FLOAT:
		lua_pushnumber(L, (lua_Number)n->f);
		return true;
	case NI_YAML_STR:
		lua_pushlstring(L, n->str, n->len);
		return true;
	case NI_YAML_SEQ:
		lua_createtable(L, n->n > INT_MAX ? INT_MAX : (int)n->n, 0);
		set_position(c, n);
		c->depth++;
		for (size_t i = 0; i < n->n; i++) {
			if (!push_node(c, n->items[i]))
				return false; /* as in push_map */
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		c->depth--;
		return true;
	case NI_YAML_MAP:
		return push_map(c, n);
	}
	return conv_fail(c, n, "unknown node type");
}

/* yaml.decode(text [, opts]): the document's value (and positions), or nil, "yaml: line L, column C: ...". */
static int l_yaml_decode(lua_State *L)
{
	size_t len;
	const char *text = luaL_checklstring(L, 1, &len);
	struct conv c = { .L = L, .null_idx = lua_upvalueindex(1), .pos_depth = LUA_MAXINTEGER };
	struct ni_yaml_error err;
	struct doc_box *box;
	bool positions = false;
	int base, r;

	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		lua_pushnil(L);
		while (lua_next(L, 2)) {
			luaL_argcheck(L, lua_type(L, -2) == LUA_TSTRING && ni_streq(lua_tostring(L, -2), "positions"), 2,
				      "unknown option (known: positions)");
			/* a depth spares the tables below it: a loader that needs only the steps' own lines */
			luaL_argcheck(L, lua_type(L, -1) == LUA_TBOOLEAN || (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0),
				      2, "positions must be a boolean or a depth (an integer >= 0)");
			positions = lua_type(L, -1) != LUA_TBOOLEAN || lua_toboolean(L, -1);
			if (lua_isinteger(L, -1))
				c.pos_depth = lua_tointeger(L, -1);
			lua_pop(L, 1);
		}
	}
	lua_settop(L, 1);

	box = lua_newuserdatauv(L, sizeof(*box), 0);
	box->live = false;
	luaL_setmetatable(L, DOC_MT);
	r = ni_yaml_parse(text, len, &box->doc, &err);
	if (r == -ENOMEM)
		return luaL_error(L, "yaml: out of memory");
	if (r < 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "yaml: line %d, column %d: %s", (int)err.line, (int)err.column, err.problem);
		return 2;
	}
	box->live = true;
	if (positions) {
		lua_newtable(L);
		c.pos_idx = lua_gettop(L);
	}
	base = lua_gettop(L);
	if (!push_node(&c, box->doc.root)) {
		box_free(box);
		lua_settop(L, base);
		lua_pushnil(L);
		lua_pushstring(L, c.err);
		return 2;
	}
	box_free(box);
	if (positions) {
		lua_pushvalue(L, c.pos_idx);
		return 2;
	}
	return 1;
}

static int null_tostring(lua_State *L)
{
	lua_pushliteral(L, "yaml.null");
	return 1;
}

static const luaL_Reg yaml_funcs[] = {
	{ "decode", l_yaml_decode },
	{ NULL, NULL },
};

int luaopen_nodeinit_yaml(lua_State *L)
{
	static const luaL_Reg null_methods[] = { { "__tostring", null_tostring }, { NULL, NULL } };

	if (luaL_newmetatable(L, DOC_MT)) {
		lua_pushcfunction(L, doc_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);

	luaL_newlibtable(L, yaml_funcs);
	/* yaml.null: one value per state, so every environment compares equal to it; its metatable is locked. */
	lua_newuserdatauv(L, 0, 0);
	ni_lua_set_locked_metatable(L, NULL_MT, null_methods);
	lua_pushvalue(L, -1);
	lua_setfield(L, -3, "null");
	luaL_setfuncs(L, yaml_funcs, 1);
	return 1;
}
