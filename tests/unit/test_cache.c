/* The fingerprint cache: what a Lua load gives round-trips through the cache text; a changed file,
 * environment value or key is stale; every damaged byte and every cut is refused, never trusted. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "luart.h"
#include "recipe.h"
#include "unit.h"

struct fixture {
	char dir[512];
	int dir_fd;
	struct ni_ctx ctx;
	lua_State *L;
	struct ni_recipe_set set;
	struct ni_buf text;
};

static const char key[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void put(struct fixture *f, const char *name, const char *content)
{
	char path[600];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(content, fp);
	fclose(fp);
}

static void problem(void *ud, const char *file, int line, const char *msg)
{
	(void)ud;
	fail_msg("unexpected problem: %s:%d: %s", file ? file : "-", line, msg);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char cmd[1200];
	size_t problems;

	snprintf(f->dir, sizeof(f->dir), "%s/t/unit-cache", build);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", f->dir, f->dir);
	assert_int_equal(system(cmd), 0);
	f->dir_fd = open(f->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->dir_fd >= 0);
	put(f, "10-a.lua",
	    "local m = os.getenv('NI_TEST_CACHE_M') or 'none'\n"
	    "recipe 'a' { step 'one' { params = { m = m }, function() end }, step 'two' { when = 'always', function() end } }\n");
	put(f, "20-b.yaml", "recipe: b\nsteps:\n  - name: k\n    when: boot\n    sysctl: { net.ipv4.ip_forward: \"1\" }\n");
	put(f, "30-c.lua", "local t = os.time()\nrecipe 'c' { step 's' { function() end } }\n");
	setenv("NI_TEST_CACHE_M", "x", 1);
	f->ctx = (struct ni_ctx){ .proc_fd = -1, .root_fd = -1, .proc_sys_fd = -1, .sig_fd = -1 };
	f->ctx.log.out = stderr;
	f->L = ni_lua_new(&f->ctx);
	assert_non_null(f->L);
	assert_int_equal(ni_recipes_load(f->L, f->dir_fd, &f->set, problem, NULL, &problems), 0);
	f->text = NI_BUF_INIT(0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ni_recipe_set_free(f->L, &f->set);
	ni_lua_close(f->L);
	ni_buf_free(&f->text);
	close(f->dir_fd);
	free(f);
	return 0;
}

/* What a load saw, as ni_recipes_scan gives it, without 30-c.lua (never cached). */
static void scan(struct fixture *f, struct ni_recipe_file **files, size_t *n)
{
	assert_int_equal(ni_recipes_scan(f->dir_fd, files, n), 0);
}

static void test_tracking(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(f->set.n_files, 3);
	assert_string_equal(f->set.files[0].name, "10-a.lua");
	assert_true(f->set.files[0].cacheable);
	assert_int_equal(f->set.files[0].n_env, 1);
	assert_string_equal(f->set.files[0].env[0], "NI_TEST_CACHE_M");
	assert_true(f->set.files[1].cacheable);
	assert_int_equal(f->set.files[1].n_env, 0);
	assert_false(f->set.files[2].cacheable); /* os.time at load */
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct ni_recipe_file *files;
	struct ni_recipe_set got;
	size_t n;

	assert_int_equal(ni_cache_format(key, &f->set, &f->text), 0);
	assert_null(memmem(f->text.p, f->text.len, "30-c.lua", 8));
	/* every file present: c is not in the cache, so the directory as it is now is stale */
	scan(f, &files, &n);
	assert_int_equal(n, 3);
	assert_int_equal(ni_cache_lookup(f->text.p, f->text.len, key, files, n, &got), -ESTALE);
	/* without c: a hit, the same steps */
	assert_int_equal(ni_cache_lookup(f->text.p, f->text.len, key, files, 2, &got), 0);
	assert_int_equal(got.n, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_string_equal(got.recipes[i].name, f->set.recipes[i].name);
		assert_string_equal(got.recipes[i].file, f->set.recipes[i].file);
		assert_int_equal(got.recipes[i].n_steps, f->set.recipes[i].n_steps);
		for (size_t k = 0; k < got.recipes[i].n_steps; k++) {
			assert_string_equal(got.recipes[i].steps[k].name, f->set.recipes[i].steps[k].name);
			assert_int_equal(got.recipes[i].steps[k].when, f->set.recipes[i].steps[k].when);
			assert_string_equal(got.recipes[i].steps[k].fingerprint, f->set.recipes[i].steps[k].fingerprint);
			assert_int_equal(got.recipes[i].steps[k].ref, LUA_NOREF);
		}
	}
	ni_recipe_set_free(NULL, &got);

	/* another key, another value of the variable load-time code read, another content: stale */
	assert_int_equal(ni_cache_lookup(f->text.p, f->text.len,
					 "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", files, 2, &got),
			 -ESTALE);
	setenv("NI_TEST_CACHE_M", "y", 1);
	assert_int_equal(ni_cache_lookup(f->text.p, f->text.len, key, files, 2, &got), -ESTALE);
	unsetenv("NI_TEST_CACHE_M");
	assert_int_equal(ni_cache_lookup(f->text.p, f->text.len, key, files, 2, &got), -ESTALE);
	setenv("NI_TEST_CACHE_M", "x", 1);
	assert_int_equal(ni_cache_lookup(f->text.p, f->text.len, key, files, 2, &got), 0);
	ni_recipe_set_free(NULL, &got);
	files[1].hash[0] = files[1].hash[0] == '0' ? '1' : '0';
	assert_int_equal(ni_cache_lookup(f->text.p, f->text.len, key, files, 2, &got), -ESTALE);
	/* fewer files than the cache holds */
	assert_int_equal(ni_cache_lookup(f->text.p, f->text.len, key, files, 1, &got), -ESTALE);
	ni_recipe_files_free(files, n);
}

static void test_damage(void **state)
{
	struct fixture *f = *state;
	struct ni_recipe_file *files;
	struct ni_recipe_set got;
	size_t n;
	char *copy;

	assert_int_equal(ni_cache_format(key, &f->set, &f->text), 0);
	scan(f, &files, &n);
	copy = malloc(f->text.len);
	assert_non_null(copy);
	for (size_t i = 0; i < f->text.len; i++) {
		memcpy(copy, f->text.p, f->text.len);
		copy[i] ^= 0x01;
		assert_int_equal(ni_cache_lookup(copy, f->text.len, key, files, 2, &got), -EBADMSG);
	}
	for (size_t len = 0; len < f->text.len; len++)
		assert_int_equal(ni_cache_lookup(f->text.p, len, key, files, 2, &got), -EBADMSG);
	assert_int_equal(ni_cache_lookup(f->text.p, f->text.len, key, files, 2, &got), 0);
	ni_recipe_set_free(NULL, &got);
	free(copy);
	ni_recipe_files_free(files, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tracking, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
