/* Lua module nodeinit.kube: node() -> {name=, labels=, annotations=, taints=}, or nil, message. */
#include <errno.h>
#include <lauxlib.h>

#include "kube.h"
#include "luart.h"

/* A JSON object of strings as a Lua table (other value types are skipped: labels are strings). */
static void push_string_map(lua_State *L, const json_t *obj)
{
	const char *key;
	json_t *v;

	lua_newtable(L);
	json_object_foreach((json_t *)obj, key, v) {
		if (!json_is_string(v))
			continue;
		lua_pushlstring(L, json_string_value(v), json_string_length(v));
		lua_setfield(L, -2, key);
	}
}

static void push_taints(lua_State *L, const json_t *arr)
{
	static const char *const fields[] = { "key", "value", "effect", "timeAdded" };
	size_t i;
	json_t *t;

	lua_newtable(L);
	json_array_foreach(arr, i, t) {
		lua_newtable(L);
		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
			json_t *v = json_object_get(t, fields[f]);
			if (json_is_string(v)) {
				lua_pushlstring(L, json_string_value(v), json_string_length(v));
				lua_setfield(L, -2, fields[f]);
			}
		}
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
}

/* kube.node(): the Node this pod runs on, read once a pass. */
static int l_kube_node(lua_State *L)
{
	struct ni_ctx *ctx = ni_lua_ctx(L);
	const json_t *node = NULL, *meta, *name;
	char why[300];
	int r;

	/* A read of the cluster, like file.read of the host: a step's, never a load's (plan may read). */
	ni_lua_require_phase(L, NI_CAN_READ, "kube.node");
	r = ni_kube_node(ctx->kube, &node, why, sizeof(why));
	if (r < 0) {
		luaL_pushfail(L);
		lua_pushstring(L, why);
		lua_pushinteger(L, -r);
		return 3;
	}
	meta = json_object_get(node, "metadata");
	name = json_object_get(meta, "name");
	lua_createtable(L, 0, 4);
	lua_pushstring(L, json_is_string(name) ? json_string_value(name) : "");
	lua_setfield(L, -2, "name");
	push_string_map(L, json_object_get(meta, "labels"));
	lua_setfield(L, -2, "labels");
	push_string_map(L, json_object_get(meta, "annotations"));
	lua_setfield(L, -2, "annotations");
	push_taints(L, json_object_get(json_object_get(node, "spec"), "taints"));
	lua_setfield(L, -2, "taints");
	return 1;
}

static const luaL_Reg kube_funcs[] = {
	{ "node", l_kube_node },
	{ NULL, NULL },
};

int luaopen_nodeinit_kube(lua_State *L)
{
	luaL_newlib(L, kube_funcs);
	return 1;
}
