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
	assert_non_null(strstr(f->problems, "20-dup.lua:1: recipe 'bad' is also defined in 10-bad.lua"));
	assert_non_null(strstr(f->problems, "30-syntax.lua:2:"));
	ni_recipe_set_free(f->L, &set);
}

/* Steps cannot be forged: a step is a handle showing nothing, locked; only step() makes one. */
static void test_forged_steps(void **state)
{
	struct fixture *f = *state;
	struct ni_recipe_set set;

	put(f, "10-forge.lua",
	    "local real = step \"real\" { function() end }\n"
	    "assert(next(real) == nil, 'a step shows a field')\n"
	    "local forged = { name = 'x\\27[2J', when = 'sometimes', line = 1, kind = 'lua', run = print,\n"
	    "                 fingerprint = string.rep('0', 64) }\n"
	    "recipe \"forged\" { forged, setmetatable({}, { __index = forged }) }\n"
	    "assert(not pcall(function() real.when = 'sometimes' end), 'a step could be changed')\n"
	    "assert(not pcall(setmetatable, real, nil), 'a step lost its metatable')\n"
	    "recipe \"real\" { real }\n"
	    "recipe \"twice\" { real }\n");
	put(f, "20-names.lua",
	    "recipe \"names\" {\n"
	    "  step \"c1 \\u{85}\" { function() end },\n"
	    "  step \"bidi \\u{202e}\" { function() end },\n"
	    "  step \"fine \\u{e4}\" { function() end },\n"
	    "}\n");
	assert_int_equal(load(f, &set), -EINVAL);
	assert_non_null(strstr(f->problems, "10-forge.lua:5: recipe 'forged': entry 1 is not a step"));
	assert_non_null(strstr(f->problems, "10-forge.lua:5: recipe 'forged': entry 2 is not a step"));
	assert_non_null(strstr(f->problems, "10-forge.lua:9: recipe 'twice': step 'real' is already in recipe 'real'"));
	assert_non_null(strstr(f->problems, "step name must be printable, not hold U+0085"));
	assert_null(strstr(f->problems, "U+00E4"));
	assert_null(strstr(f->problems, "\x1b"));
	ni_recipe_set_free(f->L, &set);

	/* bidi: its own file, since a recipe's first error ends the file's top-level code */
	put(f, "20-names.lua", "recipe \"names\" { step \"bidi \\u{202e}\" { function() end } }\n");
	put(f, "10-forge.lua", "recipe \"ok\" { }\n");
	assert_int_equal(load(f, &set), -EINVAL);
	assert_non_null(strstr(f->problems, "step name must be printable, not hold U+202E"));
	ni_recipe_set_free(f->L, &set);
}

/* One rule for step timeouts (ni_timeout_ms): sub-millisecond rounds up; non-finite, non-positive or absurd is a problem. */
static void test_timeouts(void **state)
{
	struct fixture *f = *state;
	struct ni_recipe_set set;

	put(f, "10-t.lua",
	    "recipe \"t\" {\n"
	    "  step \"tiny\" { timeout = 0.0001, function() end },\n"
	    "  step \"frac\" { timeout = 1.0005, function() end },\n"
	    "  step \"year\" { timeout = 366 * 86400, function() end },\n"
	    "}\n");
	put(f, "20-t.yaml", "recipe: y\nsteps:\n  - name: tiny\n    timeout: 0.0001\n    exec: [true]\n");
	assert_int_equal(load(f, &set), 0);
	assert_int_equal(set.recipes[0].steps[0].timeout_ms, 1);
	assert_int_equal(set.recipes[0].steps[1].timeout_ms, 1001);
	assert_int_equal(set.recipes[0].steps[2].timeout_ms, 366L * 86400 * 1000);
	assert_int_equal(set.recipes[1].steps[0].timeout_ms, 1);
	ni_recipe_set_free(f->L, &set);

	unlink("build/t/unit-recipe/20-t.yaml");
	put(f, "10-t.lua",
	    "recipe \"t\" {\n"
	    "  step \"huge\" { timeout = math.huge, function() end },\n"
	    "  step \"neg\" { timeout = -1, function() end },\n"
	    "  step \"nan\" { timeout = 0/0, function() end },\n"
	    "  step \"long\" { timeout = 366 * 86400 + 1, function() end },\n"
	    "  step \"ok\" { timeout = 1, function() end },\n"
	    "}\n");
	assert_int_equal(load(f, &set), -EINVAL);
	for (int line = 2; line <= 5; line++) {
		char want[128];
		snprintf(want, sizeof(want), "10-t.lua:%d: step '", line);
		assert_non_null(strstr(f->problems, want));
	}
	assert_non_null(strstr(f->problems, "timeout must be a positive number of seconds, at most 31622400 (a year)"));
	assert_null(strstr(f->problems, "step 'ok'"));
	ni_recipe_set_free(f->L, &set);
}

/* Running out of Lua memory anywhere in a load is a reported problem, never an abort (every entry is protected). */
static void test_load_out_of_memory(void **state)
{
	struct fixture *f = *state;
	size_t headroom;
	int r = -1;

	net(f, "c", "x", "1");
	put(f, "20-more.yaml", "recipe: more\nsteps:\n  - name: a\n    sysctl: { net.core.somaxconn: 1024 }\n");
	for (headroom = 0; headroom <= (4u << 20) && r != 0; headroom += headroom < 8192 ? 256 : headroom / 4) {
		lua_State *L = ni_lua_new(&f->ctx);
		struct ni_recipe_set set;
		size_t problems = 0;

		assert_non_null(L);
		ni_lua_limit_mem(L, headroom);
		f->problems[0] = '\0';
		r = ni_recipes_load(L, f->dir_fd, &set, collect, f, &problems);
		if (r != 0) {
			assert_int_equal(r, -EINVAL);
			assert_true(problems > 0);
			assert_non_null(strstr(f->problems, "memory"));
		}
		ni_recipe_set_free(L, &set);
		ni_lua_close(L);
	}
	assert_int_equal(r, 0); /* and with enough room it loads */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_and_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fingerprints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_problems, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forged_steps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeouts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_out_of_memory, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
