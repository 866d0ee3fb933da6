/* Recipe loading through the Lua DSL: order, fingerprints (what changes them, what does not), problems. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luart.h"
#include "recipe.h"
#include "unit.h"

struct fixture {
	struct ni_ctx ctx;
	lua_State *L;
	int dir_fd;
	char dir[256];
	char problems[4096];
};

static void collect(void *ud, const char *file, int line, const char *msg)
{
	struct fixture *f = ud;
	size_t n = strlen(f->problems);

	snprintf(f->problems + n, sizeof(f->problems) - n, "%s:%d: %s\n", file ? file : "-", line, msg);
}

static void put(struct fixture *f, const char *name, const char *text)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char cmd[600];

	snprintf(f->dir, sizeof(f->dir), "%s/t/unit-recipe", build);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", f->dir, f->dir);
	assert_int_equal(system(cmd), 0);
	f->dir_fd = open(f->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->dir_fd >= 0);
	f->ctx = (struct ni_ctx){ .proc_fd = -1, .root_fd = -1, .proc_sys_fd = -1, .sig_fd = -1 };
	f->ctx.log.out = stderr;
	f->L = ni_lua_new(&f->ctx);
	assert_non_null(f->L);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ni_lua_close(f->L);
	close(f->dir_fd);
	free(f);
	return 0;
}

static int load(struct fixture *f, struct ni_recipe_set *set)
{
	size_t problems;

	f->problems[0] = '\0';
	return ni_recipes_load(f->L, f->dir_fd, set, collect, f, &problems);
}

#define NET_FMT                                                                                                        \
	"-- %s\n"                                                                                                      \
	"local target = \"%s\"\n"                                                                                      \
	"recipe \"net\" {\n"                                                                                           \
	"  step \"one\" { when = \"boot\", function() return target end },\n"                                          \
	"  step \"two\" { function() return %s end },\n"                                                               \
	"}\n"

static void net(struct fixture *f, const char *comment, const char *target, const char *two)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), NET_FMT, comment, target, two);
	put(f, "10-net.lua", buf);
}

static void test_order_and_fields(void **state)
{
	struct fixture *f = *state;
	struct ni_recipe_set set;

	net(f, "c", "x", "1");
	put(f, "05-first.lua", "recipe \"first\" { step \"a\" { function() end, timeout = 2.5, sensitive = true } }\n");
	put(f, ".hidden.lua", "this is not lua");
	put(f, "notes.txt", "ignored");
	assert_int_equal(load(f, &set), 0);
	assert_string_equal(f->problems, "");
	assert_int_equal(set.n, 2);
	assert_string_equal(set.recipes[0].name, "first");
	assert_string_equal(set.recipes[1].name, "net");
	assert_string_equal(set.recipes[1].steps[0].name, "one");
	assert_int_equal(set.recipes[1].steps[0].when, NI_WHEN_BOOT);
	assert_int_equal(set.recipes[1].steps[0].line, 4);
	assert_string_equal(set.recipes[1].steps[1].name, "two");
	assert_int_equal(set.recipes[1].steps[1].when, NI_WHEN_ONCE);
	assert_int_equal(set.recipes[0].steps[0].timeout_ms, 2500);
	assert_true(set.recipes[0].steps[0].sensitive);
	ni_recipe_set_free(f->L, &set);
}

static void fingerprints(struct fixture *f, char one[65], char two[65])
{
	struct ni_recipe_set set;

	assert_int_equal(load(f, &set), 0);
	memcpy(one, set.recipes[0].steps[0].fingerprint, 65);
	memcpy(two, set.recipes[0].steps[1].fingerprint, 65);
	ni_recipe_set_free(f->L, &set);
}

static void test_fingerprints(void **state)
{
	struct fixture *f = *state;
	char one[65], two[65], one2[65], two2[65];

	net(f, "comment", "x", "1");
	fingerprints(f, one, two);
	assert_string_not_equal(one, two);

	net(f, "another comment entirely", "x", "1"); /* a comment elsewhere: nothing changes */
	fingerprints(f, one2, two2);
	assert_string_equal(one, one2);
	assert_string_equal(two, two2);

	net(f, "comment", "x", "2"); /* step two's own text: only two changes */
	fingerprints(f, one2, two2);
	assert_string_equal(one, one2);
	assert_string_not_equal(two, two2);

	net(f, "comment", "y", "1"); /* a value step one captures: only one changes */
	fingerprints(f, one2, two2);
	assert_string_not_equal(one, one2);
	assert_string_equal(two, two2);
}

static void test_problems(void **state)
{
	struct fixture *f = *state;
	struct ni_recipe_set set;

	put(f, "10-bad.lua",
	    "recipe \"bad\" {\n"
	    "  step \"x\" { when = \"sometimes\", function() end },\n"
	    "  step \"x\" { function() end },\n"
	    "  step \"x\" { function() end },\n"
	    "  step \"y\" { wehn = \"boot\", function() end },\n"
	    "  step \"z\" { },\n"
	    "}\n"
	    "recipe \"bad name!\" { }\n");
	put(f, "20-dup.lua", "recipe \"bad\" { }\n");
	put(f, "30-syntax.lua", "recipe \"s\" {\n");
	assert_int_equal(load(f, &set), -EINVAL);
	assert_non_null(strstr(f->problems, "10-bad.lua:2: step 'x': when must be once, boot or always, not 'sometimes'"));
	assert_non_null(strstr(f->problems, "10-bad.lua:3: recipe 'bad': duplicate step name 'x' (first at line 2)"));
	assert_non_null(strstr(f->problems, "10-bad.lua:5: step 'y': unknown key 'wehn'"));
	assert_non_null(strstr(f->problems, "10-bad.lua:6: step 'z': needs a function as its body"));
	assert_non_null(strstr(f->problems, "10-bad.lua:8: recipe name 'bad name!' may hold only"));
	assert_non_null(strstr(f->problems, "20-dup.lua:0: recipe 'bad' is also defined in 10-bad.lua"));
	assert_non_null(strstr(f->problems, "30-syntax.lua:2:"));
	ni_recipe_set_free(f->L, &set);
}

/* The C material (ni_recipe_l_material) against lua/recipe.lua's material_lua, the definition: same bytes. */
static void test_native_material(void **state)
{
	static const char chunk[] =
		"local M = ...\n"
		"local fc = { src = 'local x = 1\\nreturn x\\n', chunkname = '@t.lua', file = 't.lua' }\n"
		"local shared = { 1, 2 }\n"
		"local cyc = {}; cyc.self = cyc\n"
		"local deep = {}; local d = deep; for i = 1, 150 do d.next = { i }; d = d.next end\n"
		"local mt = setmetatable({ a = 1 }, { __index = function() return 5 end })\n"
		"local wide = {}; for i = 1, 300 do wide['k' .. i] = i % 7 == 0 and { i, 'x' } or tostring(i) end\n"
		"local big = {}; for i = 1, 60000 do big['key' .. i] = i end\n"
		"local up = { 'captured' }\n"
		"local function f(a) return a, up end\n"
		"local bigf = {}; for i = 1, 60000 do bigf['f' .. i] = f end\n"
		"local cases = { 's', '', 1, -0.0, 1.5, 1e300, 0/0, math.huge, -math.huge, math.mininteger, true, false,\n"
		"  { yaml = { name = 'k', sysctl = { ['net.ipv4.ip_forward'] = '1', ['net.core.somaxconn'] = 4096 } } },\n"
		"  { 'a', 'b', x = 1, [true] = 2, [1.5] = 3, [-7] = 'neg' },\n"
		"  { a = shared, b = shared, c = { shared } }, cyc, deep, mt, { m = mt, n = mt },\n"
		"  { f = f, g = print, h = f, list = { f } }, wide, big, bigf,\n"
		"  { ['a\\0b'] = 1, a = 2, ['a\\0a'] = 3, ['\\xc3\\xa4'] = 4, B = 5, [''] = 6 },\n"
		"  { [shared] = 1, [f] = 2 }, { yaml = { nested = { deeper = { list = { 1, 2.5, 'three', false } } } } } }\n"
		"for i = 1, #cases do\n"
		"  local parts = { body = cases[i], when = 'once', shared = shared }\n"
		"  local a = M._canon_material('rec', 'step' .. i, parts, fc)\n"
		"  local b = M._canon_material_lua('rec', 'step' .. i, parts, fc)\n"
		"  if a ~= b then return i, a, b end\n"
		"end\n"
		"return 0, #cases\n";
	struct fixture *f = *state;
	lua_State *L = f->L;
	int top = lua_gettop(L);

	assert_int_equal(ni_lua_require_embedded(L, "recipe"), LUA_OK);
	lua_pushcfunction(L, ni_recipe_l_material);
	lua_setfield(L, -2, "native_material");
	ni_lua_push_env(L);
	assert_int_equal(ni_lua_load(L, "=native", chunk, sizeof(chunk) - 1, -1), LUA_OK);
	lua_remove(L, -2);
	lua_pushvalue(L, -2);
	if (ni_lua_pcall(L, 1, 3) != LUA_OK)
		fail_msg("%s", lua_tostring(L, -1));
	if (lua_tointeger(L, -3) != 0)
		fail_msg("case %d differs:\nC:   %.600s\nLua: %.600s", (int)lua_tointeger(L, -3), lua_tostring(L, -2),
			 lua_tostring(L, -1));
	assert_true(lua_tointeger(L, -2) >= 20);
	lua_settop(L, top);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_and_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fingerprints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_problems, setup, teardown),
		cmocka_unit_test_setup_teardown(test_native_material, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
