/* libFuzzer target for YAML recipes end to end: the file goes through ni_recipes_load, so libyaml,
 * yaml.decode, lua/recipe.lua's load_yaml and the C side that takes the steps all see it. Steps are
 * only loaded, never run: nothing touches the machine. The recipe file lives in a scratch directory
 * under the current directory (FUZZ_WORKDIR to choose another). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "ctx.h"
#include "luart.h"
#include "recipe.h"

static struct ni_ctx ctx = { .proc_fd = -1, .root_fd = -1, .proc_sys_fd = -1, .sig_fd = -1 };
static lua_State *L;
static int dir_fd = -1;

static void problem(void *ud, const char *file, int line, const char *msg)
{
	size_t *n = ud;

	CHECK(msg);
	CHECK(line >= 0);
	(void)file;
	(*n)++;
}

static void setup(void)
{
	char tmpl[] = "fuzz-work-XXXXXX";
	const char *dir = getenv("FUZZ_WORKDIR");

	ctx.log = (struct ni_log){ .format = NI_LOG_TEXT, .min_level = NI_LOG_ERROR, .out = fopen("/dev/null", "w") };
	CHECK(ctx.log.out);
	if (!dir) {
		dir = mkdtemp(tmpl);
		CHECK(dir);
	}
	dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	CHECK(dir_fd >= 0);
	L = ni_lua_new(&ctx);
	CHECK(L);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ni_recipe_set set = { 0 };
	size_t problems = 0, reported = 0;
	int fd, r;

	if (!L)
		setup();
	if (size > NI_RECIPE_MAX_SIZE)
		return 0;
	fd = openat(dir_fd, "r.yaml", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, data, size) == (ssize_t)size);
	close(fd);

	r = ni_recipes_load(L, dir_fd, &set, problem, &reported, &problems);
	CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
	CHECK(problems == reported);
	CHECK(r != -EINVAL || problems > 0);
	CHECK(r != 0 || problems == 0);
	CHECK(lua_gettop(L) == 0);
	for (size_t i = 0; r == 0 && i < set.n; i++) {
		const struct ni_recipe *rc = &set.recipes[i];

		CHECK(rc->name && rc->name[0] && rc->file);
		for (size_t k = 0; k < rc->n_steps; k++) {
			CHECK(rc->steps[k].name && rc->steps[k].name[0]);
			CHECK(strlen(rc->steps[k].fingerprint) == 64);
			for (size_t j = 0; j < k; j++)
				CHECK(strcmp(rc->steps[j].name, rc->steps[k].name) != 0);
		}
	}
	if (r == 0 || r == -EINVAL)
		ni_recipe_set_free(L, &set);
	/* One state for every input, as the engine keeps one per load: collect so it stays small. */
	lua_gc(L, LUA_GCCOLLECT);
	return 0;
}
